/**
 * DDL migrations on embedded ClickHouse (chDB): applied once in order and recorded, re-running is a
 * no-op, an edited shipped migration or a version this code does not know stops the start.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChdbConnection } from "../../../processors/sinks/clickhouse/chdb-connection";
import { MIGRATIONS, migrate, type Migration } from "../../../processors/sinks/clickhouse/migrations";

describe("migrate (chDB)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-mig-"));
  const conn = new ChdbConnection(dir);
  afterAll(async () => {
    await conn.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("applies every migration once, then nothing", async () => {
    expect(await migrate(conn, "m1")).toEqual({
      applied: MIGRATIONS.map((m) => m.version),
      alreadyApplied: [],
    });
    expect(await migrate(conn, "m1")).toEqual({
      applied: [],
      alreadyApplied: MIGRATIONS.map((m) => m.version),
    });
    const rules = await conn.query(
      "SELECT device_type, rule FROM m1.responsible_supplier_rules FINAL WHERE device_type = 'GPF'",
    );
    expect(rules.rows).toEqual([["GPF", "GAS_METER_ELSE_ELECTRICITY_METER_ON_CHF"]]);
    const trt = await conn.query(
      "SELECT smets_generation, target_response_time_ms FROM m1.target_response_times FINAL ORDER BY 1",
    );
    expect(trt.rows).toEqual([
      ["SMETS1", 21000],
      ["SMETS2", 35000],
    ]);
  });

  test("an edited shipped migration is refused", async () => {
    const edited: Migration[] = MIGRATIONS.map((m) =>
      m.version === 2 ? { ...m, statements: (db) => [...m.statements(db), "SELECT 1"] } : m,
    );
    await expect(migrate(conn, "m1", undefined, edited)).rejects.toThrow(
      /migration 2 .* was applied .* checksum/,
    );
    await expect(migrate(conn, "m1", undefined, edited)).rejects.toMatchObject({
      code: "ECOS_CLICKHOUSE_MIGRATION",
    });
  });

  test("a database written by a newer release is refused", async () => {
    const older = MIGRATIONS.slice(0, 2);
    await expect(migrate(conn, "m1", undefined, older)).rejects.toThrow(
      /migration 3, which this version .* does not know/,
    );
    await expect(migrate(conn, "m1", undefined, older)).rejects.toMatchObject({
      code: "ECOS_CLICKHOUSE_MIGRATION",
    });
  });

  test("a new migration is applied on top", async () => {
    const next: Migration = {
      version: 4,
      name: "extra",
      statements: (db) => [`CREATE TABLE IF NOT EXISTS ${db}.extra (a UInt8) ENGINE = MergeTree ORDER BY a`],
    };
    expect(await migrate(conn, "m1", undefined, [...MIGRATIONS, next])).toMatchObject({ applied: [4] });
  });
});
