import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { registerDspCommands } from "../../deploy/cli/dsp";
import { MemoryRequestLog, startIngestServer } from "../../deploy/dsp/ingest";
import { signed623 } from "../workers/fixtures";

describe("HTTP ingest", () => {
  const log = new MemoryRequestLog();
  let srv: Awaited<ReturnType<typeof startIngestServer>>;
  beforeAll(async () => {
    srv = await startIngestServer({ log, port: 0, maxBodyBytes: 64 * 1024, now: () => 1_000 });
  });
  afterAll(() => srv.close());

  const post = (body: Buffer | string) =>
    fetch(srv.url, {
      method: "POST",
      body: typeof body === "string" ? body : new Uint8Array(body),
      headers: { "content-type": "application/xml" },
    });

  test("a request is acknowledged (I99) once durable, keyed by its target device, stamped with receipt", async () => {
    const bytes = signed623({}, 77);
    const res = await post(bytes);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/<sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:77<\/sr:RequestID>/);
    expect(text).toMatch(/<sr:ResponseCode>I99<\/sr:ResponseCode>/);
    const rec = log.records.at(-1)!;
    expect([rec.key, rec.receivedAt, rec.bytes.equals(bytes)]).toEqual([
      "00-DB-12-34-56-78-90-A0",
      1_000,
      true,
    ]);
  });

  test("clear errors: too big (413), empty or unnamed (400), not POST (405), Kafka down (503)", async () => {
    const n = log.records.length;
    const big = await post(Buffer.alloc(100 * 1024, 0x20));
    expect(big.status).toBe(413);
    expect(await big.text()).toMatch(/ECOS_INGEST_REJECTED.*over the 65536/);
    expect((await post("")).status).toBe(400);
    const unnamed = await post("<a>no id</a>");
    expect([unnamed.status, await unnamed.text()]).toEqual([400, expect.stringMatching(/no sr:RequestID/)]);
    expect((await fetch(srv.url)).status).toBe(405);
    log.fail = new Error("broker down");
    const down = await post(signed623({}, 78));
    expect([down.status, down.headers.get("retry-after")]).toEqual([503, "1"]);
    expect(await down.text()).toMatch(/ECOS_INGEST_UNAVAILABLE/);
    log.fail = null;
    expect(log.records.length).toBe(n);
  });
});

describe("ecos load / submit", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-dsp-cli-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = async (args: string[]): Promise<string[]> => {
    const lines: string[] = [];
    const program = new Command().exitOverride();
    registerDspCommands(program, { env: {}, out: (t) => lines.push(t), now: () => 5 });
    await program.parseAsync(["node", "ecos", ...args]);
    return lines;
  };

  test("load checks a CSV without Kafka and reports what it would write", async () => {
    const csv = path.join(dir, "reg.csv");
    fs.writeFileSync(
      csv,
      "mpxn,fuel,supplier_mpid,effective_from,effective_to,registration_version\n1312345678333,ELECTRICITY,ACEE,2025-01-01,,1\n",
    );
    expect(JSON.parse((await run(["load", "registration", csv]))[0]!)).toEqual({
      kind: "registration",
      file: csv,
      records: 1,
      topic: "registration.changes",
      written: false,
    });
    fs.writeFileSync(csv, "mpxn,fuel\n");
    await expect(run(["load", "registration", csv])).rejects.toThrow(
      /reg\.csv, line 1, column supplier_mpid/,
    );
  });

  test("submit POSTs each file to the ingest endpoint", async () => {
    const log = new MemoryRequestLog();
    const srv = await startIngestServer({ log, port: 0 });
    try {
      const f = path.join(dir, "r.xml");
      fs.writeFileSync(f, signed623({}, 79));
      const [line] = await run(["submit", f, "--url", srv.url]);
      const r = JSON.parse(line!) as { status: number; requestId: string };
      expect(r.status).toBe(200);
      expect(r.requestId).toMatch(/:79$/);
      expect(log.records).toHaveLength(1);
    } finally {
      await srv.close();
    }
  });
});
