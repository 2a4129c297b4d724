/**
 * `ecos report --html <dir>`: one self-contained HTML page (inline CSS and SVG, no script, nothing
 * fetched) with the migration and change-of-supplier picture for a period: migration progress over
 * time, failures by EMEHRA category and by device model, and SRV 6.23 response times against the
 * Target Response Times (35 s SMETS2+, 21 s SMETS1, from table target_response_times).
 *
 * With a supplier, migrations are those of devices it is Responsible Supplier for (as the EMRR
 * reports route them) and responses those of requests made under its MPID; without one, everything.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { CellValue, ClickHouseConnection } from "../sinks/clickhouse/connection";
import { stringLiteral } from "../sinks/clickhouse/connection";
import { dateTimeLiteral, migrationAttemptsSql, serviceResponseTimesSql } from "../sinks/clickhouse/tables";
import { barChart, columnChart, escapeXml, histogram, lineChart } from "./charts";
import { formatInstant, type Period } from "./periods";
import { routedAttempts } from "./reports";

export interface HtmlReportOptions {
  readonly clickhouse: ClickHouseConnection;
  readonly database: string;
  /** Folder the page is written to (as index.html). */
  readonly dir: string;
  readonly period: Period;
  readonly supplier?: string;
  readonly generatedAt: Date;
}

/** What the page shows, as queried. */
export interface HtmlReportData {
  readonly days: string[];
  readonly succeededPerDay: number[];
  readonly failedPerDay: number[];
  readonly migratedBefore: number;
  readonly failuresByCategory: Array<[string, number]>;
  readonly failuresByModel: Array<[string, number]>;
  readonly buckets: number[];
  readonly responsesPerBucket: Record<string, number[]>;
  readonly targets: Record<string, number>;
  readonly complianceDays: string[];
  readonly compliancePerDay: Record<string, number[]>;
  readonly responses: Record<string, { total: number; within: number }>;
}

const COLORS = {
  ok: "#2e7d32",
  failed: "#c62828",
  total: "#1565c0",
  SMETS1: "#ef6c00",
  SMETS2: "#1565c0",
};

const CATEGORY_NAMES: Record<string, string> = {
  ANCILLARY_SYSTEMS: "(a) ancillary systems",
  MIGRATION_SYSTEMS: "(b) migration systems and files",
  DEVICE_DATA_VALIDATION: "(c) device data validation",
  FAILED_MIGRATION: "(d) Failed Migration (credential replacement)",
};

const num = (v: CellValue | undefined): number => (typeof v === "number" ? v : Number(v ?? 0));
const str = (v: CellValue | undefined): string => (v === null || v === undefined ? "" : String(v));

function daysOf(p: Period): string[] {
  const out: string[] = [];
  for (
    let t = Date.UTC(p.from.getUTCFullYear(), p.from.getUTCMonth(), p.from.getUTCDate());
    t < p.to.getTime();
    t += 86_400_000
  ) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

export async function htmlReportData(o: HtmlReportOptions): Promise<HtmlReportData> {
  const db = o.database;
  const from = dateTimeLiteral(o.period.from);
  const to = dateTimeLiteral(o.period.to);
  const attempts = (where: string): string =>
    o.supplier === undefined
      ? `SELECT * FROM (${migrationAttemptsSql(db)}) WHERE ${where}`
      : routedAttempts({ database: db, supplier: o.supplier, period: o.period }, where);
  const ended = `ended_at >= ${from} AND ended_at < ${to}`;

  const perDay = await o.clickhouse.query(
    `SELECT toString(toDate(ended_at)) AS day, toUInt32(countIf(outcome = 'SUCCEEDED')) AS ok, toUInt32(countIf(outcome = 'FAILED')) AS failed
     FROM (${attempts(ended)}) GROUP BY day ORDER BY day`,
  );
  const before = await o.clickhouse.query(
    `SELECT toUInt32(uniqExact(device_id)) FROM (${attempts(`outcome = 'SUCCEEDED' AND ended_at < ${from}`)})`,
  );
  const byCategory = await o.clickhouse.query(
    `SELECT error_category, toUInt32(count()) AS n FROM (${attempts(`outcome = 'FAILED' AND ${ended}`)})
     GROUP BY error_category ORDER BY n DESC, error_category`,
  );
  const byModel = await o.clickhouse.query(
    `SELECT concat(device_manufacturer, ' ', device_model, ' fw ', firmware_version, ' (', device_type, ')') AS model,
       toUInt32(count()) AS n
     FROM (${attempts(`outcome = 'FAILED' AND ${ended}`)}) GROUP BY model ORDER BY n DESC, model LIMIT 10`,
  );
  const responseWhere =
    `received_at >= ${from} AND received_at < ${to} AND srv = '6.23'` +
    (o.supplier === undefined ? "" : ` AND ifNull(supplier_mpid, '') = ${stringLiteral(o.supplier)}`);
  const responses = `SELECT * FROM (${serviceResponseTimesSql(db)}) WHERE ${responseWhere}`;
  const hist = await o.clickhouse.query(
    `SELECT smets_generation, toUInt32(least(intDiv(response_time_ms, 1000), 60)) AS second, toUInt32(count()) AS n
     FROM (${responses}) GROUP BY smets_generation, second ORDER BY smets_generation, second`,
  );
  const compliance = await o.clickhouse.query(
    `SELECT toString(toDate(received_at)) AS day, smets_generation, toUInt32(count()) AS total, toUInt32(sum(within_target)) AS within
     FROM (${responses}) GROUP BY day, smets_generation ORDER BY day, smets_generation`,
  );
  const targets = await o.clickhouse.query(
    `SELECT smets_generation, target_response_time_ms FROM ${db}.target_response_times FINAL WHERE srv = '6.23' ORDER BY smets_generation`,
  );

  const days = daysOf(o.period);
  const okBy = new Map(perDay.rows.map((r) => [str(r[0]), num(r[1])]));
  const failedBy = new Map(perDay.rows.map((r) => [str(r[0]), num(r[2])]));
  const buckets = Array.from({ length: 61 }, (_, i) => i);
  const responsesPerBucket: Record<string, number[]> = {};
  for (const r of hist.rows) {
    const g = str(r[0]);
    (responsesPerBucket[g] ??= buckets.map(() => 0))[num(r[1])] = num(r[2]);
  }
  const complianceDays = [...new Set(compliance.rows.map((r) => str(r[0])))];
  const compliancePerDay: Record<string, number[]> = {};
  const totals: Record<string, { total: number; within: number }> = {};
  for (const r of compliance.rows) {
    const g = str(r[1]);
    const series = (compliancePerDay[g] ??= complianceDays.map(() => 0));
    series[complianceDays.indexOf(str(r[0]))] = num(r[2]) === 0 ? 0 : (100 * num(r[3])) / num(r[2]);
    const t = (totals[g] ??= { total: 0, within: 0 });
    t.total += num(r[2]);
    t.within += num(r[3]);
  }
  return {
    days,
    succeededPerDay: days.map((d) => okBy.get(d) ?? 0),
    failedPerDay: days.map((d) => failedBy.get(d) ?? 0),
    migratedBefore: num(before.rows[0]?.[0]),
    failuresByCategory: byCategory.rows.map((r) => [
      CATEGORY_NAMES[str(r[0])] ?? (str(r[0]) || "(none)"),
      num(r[1]),
    ]),
    failuresByModel: byModel.rows.map((r) => [str(r[0]), num(r[1])]),
    buckets,
    responsesPerBucket,
    targets: Object.fromEntries(targets.rows.map((r) => [str(r[0]), num(r[1])])),
    complianceDays,
    compliancePerDay,
    responses: totals,
  };
}

const pct = (n: number, d: number): string => (d === 0 ? "–" : `${((100 * n) / d).toFixed(1)} %`);

export function renderHtml(
  d: HtmlReportData,
  o: Pick<HtmlReportOptions, "period" | "supplier" | "generatedAt">,
): string {
  const succeeded = d.succeededPerDay.reduce((a, b) => a + b, 0);
  const failed = d.failedPerDay.reduce((a, b) => a + b, 0);
  let running = d.migratedBefore;
  const cumulative = d.succeededPerDay.map((v) => (running += v));
  const scope = o.supplier === undefined ? "all suppliers" : `Responsible Supplier ${o.supplier}`;
  const title = `ECoS migration and change of supplier — ${scope}`;
  const tiles: Array<[string, string]> = [
    ["Migrations succeeded", succeeded.toLocaleString("en-GB")],
    ["Migrations failed", failed.toLocaleString("en-GB")],
    ["Success rate", pct(succeeded, succeeded + failed)],
    ...Object.entries(d.responses).map(([g, t]): [string, string] => [
      `6.23 ${g} within ${(d.targets[g] ?? 0) / 1000} s`,
      `${pct(t.within, t.total)} of ${t.total.toLocaleString("en-GB")}`,
    ]),
  ];
  const groups = Object.keys(d.responsesPerBucket).sort();
  const charts = [
    columnChart({
      title: "Migration progress",
      labels: d.days.map((x) => x.slice(5)),
      series: [
        { name: "succeeded", color: COLORS.ok, values: d.succeededPerDay },
        { name: "failed", color: COLORS.failed, values: d.failedPerDay },
      ],
      stacked: true,
      yLabel: "attempts ended per day",
      line: {
        name: "devices migrated (cumulative)",
        color: COLORS.total,
        values: cumulative,
        axisLabel: "devices migrated",
      },
    }),
    barChart({
      title: "Failures by EMEHRA category",
      labels: d.failuresByCategory.map(([l]) => l),
      values: d.failuresByCategory.map(([, v]) => v),
      color: COLORS.failed,
      unit: "failed attempts",
    }),
    barChart({
      title: "Failures by device model (top 10)",
      labels: d.failuresByModel.map(([l]) => l),
      values: d.failuresByModel.map(([, v]) => v),
      color: "#6a1b9a",
      unit: "failed attempts",
    }),
    histogram({
      title: "SRV 6.23 response times against the Target Response Times",
      buckets: d.buckets,
      series: groups.map((g) => ({
        name: g,
        color: COLORS[g as "SMETS1" | "SMETS2"] ?? "#555",
        values: d.responsesPerBucket[g] ?? [],
      })),
      markers: Object.entries(d.targets).map(([g, ms]) => ({
        at: ms / 1000,
        label: `${g} target ${ms / 1000} s`,
        color: COLORS[g as "SMETS1" | "SMETS2"] ?? "#555",
      })),
      xLabel: "response time, seconds (60 = 60 s or more)",
    }),
    lineChart({
      title: "Responses within the Target Response Time, per day",
      labels: d.complianceDays.map((x) => x.slice(5)),
      series: Object.entries(d.compliancePerDay).map(([g, v]) => ({
        name: g,
        color: COLORS[g as "SMETS1" | "SMETS2"] ?? "#555",
        values: v,
      })),
      yLabel: "% within target",
      yMax: 100,
    }),
  ];
  const headings = [
    "Migration progress over time",
    "Failures by category",
    "Failures by device model",
    "Response-time distribution against the targets",
    "Response-time compliance by day",
  ];
  return `<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 960px; color: #222; background: #fafafa; }
  h1 { font-size: 22px; margin-bottom: 4px; }
  .meta { color: #555; margin-bottom: 20px; }
  .tiles { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 24px; }
  .tile { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; min-width: 150px; }
  .tile .v { font-size: 20px; font-weight: 600; }
  .tile .k { font-size: 12px; color: #555; }
  section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 12px; margin-bottom: 20px; }
  h2 { font-size: 16px; margin: 0 0 8px; }
  svg { max-width: 100%; height: auto; }
  footer { color: #777; font-size: 12px; }
</style>
</head>
<body>
<h1>${escapeXml(title)}</h1>
<div class="meta">${escapeXml(`${formatInstant(o.period.from)} to ${formatInstant(o.period.to)} (UTC) · generated ${o.generatedAt.toISOString().slice(0, 19)}Z by ecos-stream`)}</div>
<div class="tiles">${tiles.map(([k, v]) => `<div class="tile"><div class="v">${escapeXml(v)}</div><div class="k">${escapeXml(k)}</div></div>`).join("")}</div>
${charts.map((c, i) => `<section><h2>${escapeXml(headings[i] ?? "")}</h2>${c}</section>`).join("\n")}
<footer>Migrations: attempts that ended in the period, by day (ETMAD steps a–d; EMEHRA categories a–d). Responses: SRV 6.23 Service Responses received in the period. Targets from table target_response_times ([B] seed 003 §3.1). Times UTC.</footer>
</body>
</html>
`;
}

/** Queries, renders and writes `<dir>/index.html`; returns its path. */
export async function writeHtmlReport(o: HtmlReportOptions): Promise<string> {
  const html = renderHtml(await htmlReportData(o), o);
  fs.mkdirSync(o.dir, { recursive: true });
  const file = path.join(o.dir, "index.html");
  fs.writeFileSync(file, html);
  return file;
}
