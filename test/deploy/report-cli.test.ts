/**
 * `ecos report`, `ecos sql` and the prompt, in process on embedded ClickHouse (chDB) holding the EMRR
 * fixture: formats, default periods, errors, scheduled files written once, the HTML page.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { Command } from "commander";
import { registerReportCommands } from "../../deploy/cli/report";
import { ChdbConnection } from "../../processors/sinks/clickhouse/chdb-connection";
import { loadFixture, readGolden } from "../emrr/golden";

const state = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-report-cli-"));
const env = { ECOS_STATE_DIR: state, ECOS_KAFKA_BROKERS: "", ECOS_LOG_LEVEL: "warn" };

async function ecos(args: string[], opts: { now?: string; stdin?: string } = {}): Promise<string> {
  const out = new PassThrough();
  let text = "";
  out.on("data", (d: Buffer) => (text += d.toString()));
  const program = new Command().exitOverride();
  registerReportCommands(program, {
    env,
    stdout: out,
    stderr: new PassThrough(),
    now: () => new Date(opts.now ?? "2024-03-12T13:00:00Z"),
    ...(opts.stdin !== undefined ? { stdin: Readable.from([opts.stdin]) } : {}),
  });
  await program.parseAsync(args, { from: "user" });
  return text;
}

beforeAll(async () => {
  const conn = new ChdbConnection(path.join(state, "clickhouse"));
  await loadFixture(conn, "ecos");
  await conn.close();
}, 60_000);
afterAll(() => fs.rmSync(state, { recursive: true, force: true }));

type Golden = { columns: string[]; rows: Array<Record<string, unknown>> };
const golden002 = readGolden("ECOSMIG-002_GASB_2024-03-12T0600_2024-03-12T1200") as Golden;

describe("ecos report", () => {
  test("json: the golden rows, with the report, supplier and period", async () => {
    const out = await ecos([
      "report",
      "ECOSMIG-002",
      "--supplier",
      "GASB",
      "--from",
      "2024-03-12T06:00",
      "--to",
      "2024-03-12T12:00",
      "--format",
      "json",
    ]);
    const value = JSON.parse(out) as Golden & Record<string, unknown>;
    expect(value).toMatchObject({
      report: "ECOSMIG-002",
      supplier: "GASB",
      from: "2024-03-12T06:00:00.000Z",
      to: "2024-03-12T12:00:00.000Z",
    });
    expect(value.rows).toEqual(golden002.rows);
  });

  test("csv: a header and one line per row; the default period is the last complete one", async () => {
    // At 13:00 the last complete 6-hour period of ECOSMIG-002 is 06:00 to 12:00.
    const out = await ecos(["report", "ecosmig-002", "--supplier", "GASB", "--format", "csv"]);
    const lines = out.trimEnd().split("\r\n");
    expect(lines[0]).toBe(golden002.columns.join(","));
    expect(lines).toHaveLength(1 + golden002.rows.length);
    expect(lines[2]).toContain("a change of supplier is imminent");
  });

  test("table: titled and aligned", async () => {
    const out = await ecos([
      "report",
      "ECOSMIG-005",
      "--supplier",
      "ELEA",
      "--from",
      "2024-03-11",
      "--to",
      "2024-03-18",
    ]);
    expect(out).toMatch(
      /^ECOSMIG-005 Summary: ECoS migration activity for the previous week — ELEA — 2024-03-11T00:00Z \.\. 2024-03-18T00:00Z/,
    );
    expect(out).toMatch(/week_commencing\s+device_type\s+devices_attempted/);
    expect(out).toContain("(2 rows)");
  });

  test("--out writes the file", async () => {
    const file = path.join(state, "out", "r.csv");
    const out = await ecos([
      "report",
      "ECOSMIG-001",
      "--supplier",
      "ELEA",
      "--from",
      "2024-03-12",
      "--format",
      "csv",
      "--out",
      file,
    ]);
    expect(out).toMatch(/wrote 3 row\(s\)/);
    expect(fs.readFileSync(file, "utf8").split("\r\n")[0]).toMatch(/^device_id,device_type/);
  });

  test("mistakes stop with ECOS_CONFIG_INVALID and say what to do", async () => {
    await expect(ecos(["report", "ECOSMIG-009", "--supplier", "ELEA"])).rejects.toThrow(
      /unknown report "ECOSMIG-009"/,
    );
    await expect(ecos(["report", "ECOSMIG-001"])).rejects.toThrow(/needs --supplier/);
    await expect(ecos(["report", "ECOSMIG-001", "--supplier", "el'ea"])).rejects.toThrow(/is not an MPID/);
    await expect(
      ecos(["report", "ECOSMIG-001", "--supplier", "ELEA", "--from", "2024-02-30"]),
    ).rejects.toThrow(/is not a date/);
    await expect(ecos(["report"])).rejects.toThrow(/name a report/);
  });

  test("--schedule --once writes each report's last complete period once per supplier", async () => {
    const dir = path.join(state, "scheduled");
    const now = "2024-04-01T07:00:00Z";
    const first = await ecos(["report", "--schedule", dir, "--once", "--suppliers", "ELEA,GASB"], { now });
    expect(first).toMatch(/^12 report file\(s\) written/);
    const files = first
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.trim())
      .sort();
    expect(files).toContain(
      path.join("ECOSMIG-002", "GASB", "ECOSMIG-002_GASB_20240401T0000Z_20240401T0600Z.csv"),
    );
    expect(files).toContain(
      path.join("ECOSMIG-003", "GASB", "ECOSMIG-003_GASB_20240301T0000Z_20240401T0000Z.csv"),
    );
    expect(files).toContain(
      path.join("ECOSMIG-004", "ELEA", "ECOSMIG-004_ELEA_20240325T0000Z_20240401T0000Z.csv"),
    );
    expect(files).toContain(
      path.join("ECOSMIG-001", "ELEA", "ECOSMIG-001_ELEA_20240331T0000Z_20240401T0000Z.csv"),
    );
    const monthly = fs.readFileSync(
      path.join(dir, "ECOSMIG-006", "GASB", "ECOSMIG-006_GASB_20240301T0000Z_20240401T0000Z.csv"),
      "utf8",
    );
    expect(monthly.trimEnd().split("\r\n")).toHaveLength(3);
    expect(await ecos(["report", "--schedule", dir, "--once", "--suppliers", "ELEA,GASB"], { now })).toMatch(
      /^0 report file/,
    );
  });

  test("--html writes a self-contained page with charts", async () => {
    const dir = path.join(state, "html");
    const out = await ecos(["report", "--html", dir, "--from", "2024-03-01", "--to", "2024-04-01"]);
    const html = fs.readFileSync(path.join(dir, "index.html"), "utf8");
    expect(out).toContain(path.join(dir, "index.html"));
    expect(html.match(/<svg /g)).toHaveLength(5);
    expect(html).toContain("Failures by EMEHRA category");
    expect(html).not.toMatch(/<script|<link|\bsrc=|url\(/i);
  });
});

describe("ecos sql", () => {
  test("one query, in the product's formats or any ClickHouse format", async () => {
    expect(await ecos(["sql", "SELECT count() AS devices FROM devices_current"])).toMatch(
      /devices\n-+\n\s*24\n/,
    );
    expect(await ecos(["sql", "SELECT 1 AS a, 'x,y' AS b", "--format", "csv"])).toBe('a,b\r\n1,"x,y"\r\n');
    expect(await ecos(["sql", "SELECT 1 AS a", "--format", "JSONEachRow"])).toBe('{"a":1}\n');
    expect(await ecos(["sql", "CREATE TABLE scratch (a UInt8) ENGINE = Memory"])).toBe("OK\n");
  });

  test("the prompt runs statements ended by ';', lists tables, survives errors, quits", async () => {
    const out = await ecos(["sql"], {
      stdin:
        "SELECT 41 + 1\n  AS answer;\n\\d\nSELEC nonsense;\nSELECT 'still here' AS s;\n\\q\nSELECT 'not run';\n",
    });
    expect(out).toMatch(/answer\n-+\n\s*42/);
    expect(out).toMatch(/migration_events\s+ReplacingMergeTree/);
    expect(out).toMatch(/error: .*(Syntax error|UNKNOWN_IDENTIFIER)/);
    expect(out).toContain("still here");
    expect(out).not.toContain("not run");
  });
});
