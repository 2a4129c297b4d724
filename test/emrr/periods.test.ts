/** Report periods and the schedule's timing, with a fixed clock. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  lastCompletedPeriod,
  parseInstant,
  resolvePeriod,
  type Frequency,
} from "../../processors/emrr/periods";
import { REPORTS } from "../../processors/emrr/reports";
import { nextDue, reportFile, runSchedule } from "../../processors/emrr/schedule";
import { collectingLogger } from "../../processors/runtime/logger";
import type { ClickHouseConnection } from "../../processors/sinks/clickhouse/connection";

const at = (iso: string): Date => new Date(iso);
const iso = (p: { from: Date; to: Date }): [string, string] => [p.from.toISOString(), p.to.toISOString()];

describe("periods", () => {
  test.each<[Frequency, string, string, string]>([
    ["daily", "2024-03-12T13:00:00Z", "2024-03-11T00:00:00.000Z", "2024-03-12T00:00:00.000Z"],
    ["6-hourly", "2024-03-12T13:00:00Z", "2024-03-12T06:00:00.000Z", "2024-03-12T12:00:00.000Z"],
    ["6-hourly", "2024-03-12T03:00:00Z", "2024-03-11T18:00:00.000Z", "2024-03-12T00:00:00.000Z"],
    ["weekly", "2024-03-13T10:00:00Z", "2024-03-04T00:00:00.000Z", "2024-03-11T00:00:00.000Z"],
    ["weekly", "2024-03-11T00:00:00Z", "2024-03-04T00:00:00.000Z", "2024-03-11T00:00:00.000Z"],
    ["monthly", "2024-03-01T00:00:01Z", "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"],
    ["monthly", "2024-01-15T00:00:00Z", "2023-12-01T00:00:00.000Z", "2024-01-01T00:00:00.000Z"],
  ])("%s at %s: the last complete period", (freq, now, from, to) => {
    expect(iso(lastCompletedPeriod(freq, at(now)))).toEqual([from, to]);
  });

  test("--from alone covers one period of the report's frequency; --to alone ends one", () => {
    const now = at("2024-06-01T00:00:00Z");
    expect(iso(resolvePeriod("weekly", now, "2024-03-11"))).toEqual([
      "2024-03-11T00:00:00.000Z",
      "2024-03-18T00:00:00.000Z",
    ]);
    expect(iso(resolvePeriod("monthly", now, undefined, "2024-03-01"))).toEqual([
      "2024-02-01T00:00:00.000Z",
      "2024-03-01T00:00:00.000Z",
    ]);
    expect(iso(resolvePeriod("daily", now, "2024-03-12T06:00", "2024-03-12T12:00"))).toEqual([
      "2024-03-12T06:00:00.000Z",
      "2024-03-12T12:00:00.000Z",
    ]);
    expect(() => resolvePeriod("daily", now, "2024-03-12", "2024-03-11")).toThrow(
      /--to must be after --from/,
    );
    expect(() => parseInstant("--from", "12/03/2024")).toThrow(/is not a date/);
  });
});

describe("schedule", () => {
  test("the next run is the next 6-hour boundary plus the grace period", () => {
    expect(nextDue(at("2024-03-12T13:00:00Z")).toISOString()).toBe("2024-03-12T18:05:00.000Z");
    expect(nextDue(at("2024-03-12T18:04:00Z")).toISOString()).toBe("2024-03-12T18:05:00.000Z");
    expect(nextDue(at("2024-03-12T18:05:00Z")).toISOString()).toBe("2024-03-13T00:05:00.000Z");
  });

  test("files are named by report, supplier and period", () => {
    const p = { from: at("2024-03-12T06:00:00Z"), to: at("2024-03-12T12:00:00Z") };
    expect(reportFile("d", "ECOSMIG-002", "GASB", p, "csv")).toBe(
      path.join("d", "ECOSMIG-002", "GASB", "ECOSMIG-002_GASB_20240312T0600Z_20240312T1200Z.csv"),
    );
  });

  test("runs at each boundary until stopped, and a failing run is logged, not fatal", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-sched-"));
    let clock = at("2024-03-12T13:00:00Z").getTime();
    const queries: string[] = [];
    let fail = true;
    const conn = {
      query: async (sql: string) => {
        queries.push(sql);
        if (fail) throw new Error("ClickHouse is down");
        return { columns: [], rows: [] };
      },
    } as unknown as ClickHouseConnection;
    const logger = collectingLogger();
    const ac = new AbortController();
    const sleeps: number[] = [];
    await runSchedule(
      {
        clickhouse: conn,
        database: "ecos",
        dir,
        suppliers: ["ELEA"],
        logger,
        reports: REPORTS.filter((r) => r.ref === "ECOSMIG-002"),
      },
      ac.signal,
      () => new Date(clock),
      async (ms) => {
        sleeps.push(ms);
        clock += ms;
        fail = false;
        if (sleeps.length === 2) ac.abort();
      },
    );
    expect(sleeps).toEqual([5 * 3600_000 + 300_000, 6 * 3600_000]);
    expect(logger.lines.some((l) => l.level === "error" && l.msg === "scheduled reports failed")).toBe(true);
    // The second run found the columns missing (the fake returns none): also logged, never thrown.
    expect(queries.length).toBe(2);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
