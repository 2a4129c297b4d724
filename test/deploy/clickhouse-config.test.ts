/** The ClickHouse configuration: parsed and checked at the edge, and documented in docs/clickhouse.md. */
import * as fs from "node:fs";
import * as path from "node:path";
import { CLICKHOUSE_FIELDS, loadClickHouseConfig } from "../../deploy/config/clickhouse";

const doc = fs.readFileSync(path.join(__dirname, "../../docs/clickhouse.md"), "utf8");

describe("ClickHouse configuration", () => {
  test("docs/clickhouse.md lists exactly the variables, with their defaults", () => {
    const rows = new Map<string, string[]>();
    for (const line of doc.split("\n")) {
      const cells = line
        .split("|")
        .slice(1, -1)
        .map((c) => c.trim());
      const key = /^`(ECOS_[A-Z0-9_]+)`$/.exec(cells[0] ?? "")?.[1];
      if (key) rows.set(key, cells.slice(1));
    }
    expect([...rows.keys()]).toEqual(CLICKHOUSE_FIELDS.map((f) => f.env));
    for (const f of CLICKHOUSE_FIELDS) expect(rows.get(f.env)?.[0]).toBe(`\`${f.defaultValue}\``);
  });

  test("defaults: embedded chDB under the state folder, database ecos", () => {
    const c = loadClickHouseConfig({}, {}, "/state", "/repo");
    expect(c).toMatchObject({
      url: undefined,
      database: "ecos",
      chdbDir: path.join("/state", "clickhouse"),
      sinkGroupId: "ecos-clickhouse-sink",
      batchRows: 10000,
      batchMs: 1000,
      maxRetries: 10,
      reportsDir: path.join("/repo", ".local/reports"),
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  test("flags win over the environment; bad values name the variable", () => {
    const env = { ECOS_CLICKHOUSE_URL: "http://a:1/", ECOS_SINK_BATCH_ROWS: "5" };
    expect(loadClickHouseConfig(env, { url: "http://b:2" }, "/s")).toMatchObject({
      url: "http://b:2",
      batchRows: 5,
    });
    expect(loadClickHouseConfig(env, {}, "/s").url).toBe("http://a:1");
    expect(() => loadClickHouseConfig({ ECOS_SINK_BATCH_MS: "0" }, {}, "/s")).toThrow(
      /ECOS_SINK_BATCH_MS="0"/,
    );
    expect(() => loadClickHouseConfig({ ECOS_CLICKHOUSE_DATABASE: "a-b" }, {}, "/s")).toThrow(
      /ECOS_CLICKHOUSE_DATABASE/,
    );
    expect(() => loadClickHouseConfig({ ECOS_CLICKHOUSE_URL: "ftp://x" }, {}, "/s")).toThrow(/http\(s\) URL/);
  });
});
