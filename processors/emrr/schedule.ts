/**
 * Scheduled production of the EMRR reports as files, at each report's frequency: after every period
 * boundary (plus a grace period for late events) the last complete period of each report is written
 * for each Responsible Supplier, once. A file that exists is never written again, so a restart, or
 * `--once` from cron, produces exactly what is missing for the latest periods.
 *
 * Files: `<dir>/<ref>/<supplier>/<ref>_<supplier>_<from>_<to>.<csv|json>`, e.g.
 * `ECOSMIG-002/ELEA/ECOSMIG-002_ELEA_20240312T0600Z_20240312T1200Z.csv`, written to a temporary name
 * and renamed, so a reader never sees half a file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Logger } from "../runtime/logger";
import type { ClickHouseConnection } from "../sinks/clickhouse/connection";
import { lastCompletedPeriod, nextPeriodStart, periodStart, type Period } from "./periods";
import { REPORTS, knownSuppliers, runReport, type ReportDefinition } from "./reports";
import { render } from "./render";

export interface ScheduleOptions {
  readonly clickhouse: ClickHouseConnection;
  readonly database: string;
  readonly dir: string;
  /** Suppliers to report for; default: every supplier the data names. */
  readonly suppliers?: readonly string[];
  readonly format?: "csv" | "json";
  readonly reports?: readonly ReportDefinition[];
  readonly logger: Logger;
  /** Wait this long after a boundary before producing (late events), default 5 minutes. */
  readonly graceMs?: number;
}

const stamp = (d: Date): string => d.toISOString().slice(0, 16).replace(/[-:]/g, "") + "Z";

export function reportFile(dir: string, ref: string, supplier: string, p: Period, format: string): string {
  return path.join(dir, ref, supplier, `${ref}_${supplier}_${stamp(p.from)}_${stamp(p.to)}.${format}`);
}

/** Writes every report file due at `now` that does not exist yet; returns the files written. */
export async function produceDue(o: ScheduleOptions, now: Date): Promise<string[]> {
  const format = o.format ?? "csv";
  const grace = o.graceMs ?? 300_000;
  const at = new Date(now.getTime() - grace);
  const suppliers = o.suppliers ?? (await knownSuppliers(o.clickhouse, o.database));
  const written: string[] = [];
  for (const def of o.reports ?? REPORTS) {
    const period = lastCompletedPeriod(def.frequency, at);
    for (const supplier of suppliers) {
      const file = reportFile(o.dir, def.ref, supplier, period, format);
      if (fs.existsSync(file)) continue;
      const result = await runReport(o.clickhouse, def, { database: o.database, supplier, period });
      const meta = {
        report: def.ref,
        title: def.title,
        supplier,
        from: period.from.toISOString(),
        to: period.to.toISOString(),
      };
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.tmp-${process.pid}`;
      fs.writeFileSync(tmp, render(result, format, meta));
      fs.renameSync(tmp, file);
      written.push(file);
      o.logger.info("report written", { report: def.ref, supplier, rows: result.rows.length, file });
    }
  }
  return written;
}

/** When the next report falls due after `now` (the next boundary of the most frequent report, plus grace). */
export function nextDue(now: Date, reports: readonly ReportDefinition[] = REPORTS, graceMs = 300_000): Date {
  const at = new Date(now.getTime() - graceMs);
  let next = Infinity;
  for (const def of reports)
    next = Math.min(next, nextPeriodStart(def.frequency, periodStart(def.frequency, at)).getTime());
  return new Date(next + graceMs);
}

/**
 * Produces what is due, then sleeps until the next boundary, until `signal` aborts. `clock` and
 * `sleep` are injectable for tests.
 */
export async function runSchedule(
  o: ScheduleOptions,
  signal: AbortSignal,
  clock: () => Date = () => new Date(),
  sleep: (ms: number, signal: AbortSignal) => Promise<void> = abortableSleep,
): Promise<void> {
  while (!signal.aborted) {
    try {
      await produceDue(o, clock());
    } catch (err) {
      // ClickHouse down or a report failing: log it and try again at the next boundary.
      o.logger.error("scheduled reports failed", { error: err instanceof Error ? err.message : String(err) });
    }
    const wait = nextDue(clock(), o.reports, o.graceMs).getTime() - clock().getTime();
    o.logger.info("next reports due", { inMs: wait });
    await sleep(Math.max(1000, wait), signal);
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
}
