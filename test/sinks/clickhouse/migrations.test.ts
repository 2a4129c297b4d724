/**
 * DDL migrations on embedded ClickHouse (chDB): applied once in order and recorded, re-running is a
 * no-op, an edited shipped migration or a version this code does not know stops the start.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChdbConnection } from "../../../processors/sinks/clickhouse/chdb-connection";
import { MIGRATIONS, migrate, type Migration } from "../../../processors/sinks/clickhouse/migrations";
import { serviceResponseRow } from "../../../processors/sinks/clickhouse/rows";
import { serviceResponsesBySubmissionDdl } from "../../../processors/sinks/clickhouse/tables";
import type { ServiceResponseEvent } from "../../../schemas/event-records";

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
    const version = Math.max(...MIGRATIONS.map((m) => m.version)) + 1;
    const next: Migration = {
      version,
      name: "extra",
      statements: (db) => [`CREATE TABLE IF NOT EXISTS ${db}.extra (a UInt8) ENGINE = MergeTree ORDER BY a`],
    };
    expect(await migrate(conn, "m1", undefined, [...MIGRATIONS, next])).toMatchObject({ applied: [version] });
  });

  test("service responses: one row per submission; an acknowledgement is replaced by its final response", async () => {
    await migrate(conn, "m2");
    const base: ServiceResponseEvent = {
      requestId: "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1006",
      userId: "90-B3-D5-1F-30-01-00-00",
      supplierMpid: "BGAS",
      srv: "6.23",
      deviceId: "00-DB-12-34-56-78-90-A0",
      deviceType: "ESME",
      smetsGeneration: "SMETS2",
      cosParty: "ECOS",
      responseCode: "I99",
      successful: true,
      receivedAt: Date.UTC(2026, 10, 23, 12, 0, 0, 120),
      respondedAt: Date.UTC(2026, 10, 23, 12, 0, 0, 300),
    };
    const row = (e: ServiceResponseEvent, offset: number): string =>
      JSON.stringify({
        ...serviceResponseRow(e),
        source_topic: "duis.responses",
        source_partition: 0,
        source_offset: offset,
      });
    const rows = [
      row(base, 10), // the acknowledgement
      row({ ...base, responseCode: "I0", respondedAt: base.receivedAt + 9000 }, 20), // its final response
      // the same request sent again 500 ms later (same second): the DSP refuses the replay
      row(
        {
          ...base,
          responseCode: "E062399",
          successful: false,
          cosParty: null,
          receivedAt: base.receivedAt + 500,
          respondedAt: base.receivedAt + 600,
        },
        21,
      ),
      row({ ...base, responseCode: "I0", respondedAt: base.receivedAt + 9000 }, 20), // stored twice
    ];
    await conn.insertJsonEachRow("m2.service_responses", Buffer.from(rows.join("\n") + "\n"));
    const r = await conn.query(
      "SELECT response_code, received_at_ms, source_offset FROM m2.service_responses FINAL ORDER BY received_at_ms",
    );
    expect(r.rows.map((x) => x.map(String))).toEqual([
      ["I0", String(base.receivedAt), "20"],
      ["E062399", String(base.receivedAt + 500), "21"],
    ]);
  });

  test("migration 4 interrupted after its ALTER (not recorded) is completed, not run twice", async () => {
    await migrate(
      conn,
      "m3",
      undefined,
      MIGRATIONS.filter((m) => m.version < 4),
    );
    for (const st of serviceResponsesBySubmissionDdl("m3")) await conn.exec(st);
    expect(await migrate(conn, "m3")).toEqual({ applied: [4], alreadyApplied: [1, 2, 3] });
    const key = await conn.query(
      "SELECT sorting_key FROM system.tables WHERE database = 'm3' AND name = 'service_responses'",
    );
    expect(String(key.rows[0]?.[0])).toBe("srv, request_id, received_at_ms");
  });
});
