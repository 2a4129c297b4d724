/**
 * Report and query results as CSV (RFC 4180, header row, NULL as an empty field), JSON and an aligned
 * text table for a terminal.
 */
import type { CellValue, QueryResult } from "../sinks/clickhouse/connection";
import { rowObjects } from "../sinks/clickhouse/connection";

export type OutputFormat = "csv" | "json" | "table";

export const OUTPUT_FORMATS: readonly OutputFormat[] = ["csv", "json", "table"];

const csvField = (v: CellValue): string => {
  if (v === null) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(result: QueryResult): string {
  const lines = [result.columns.map((c) => csvField(c.name)).join(",")];
  for (const row of result.rows) lines.push(row.map(csvField).join(","));
  return `${lines.join("\r\n")}\r\n`;
}

/** JSON: `{ ...meta, columns, rows: [{column: value}] }`, or just the rows without meta. */
export function toJson(result: QueryResult, meta?: Record<string, unknown>): string {
  const rows = rowObjects(result);
  const value = meta ? { ...meta, columns: result.columns.map((c) => c.name), rows } : rows;
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** An aligned table; numbers right-aligned, NULL shown as an empty cell. */
export function toTable(result: QueryResult, title?: string): string {
  const header = result.columns.map((c) => c.name);
  const cells = result.rows.map((r) => r.map((v) => (v === null ? "" : String(v).replace(/\s+/g, " "))));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const numeric = result.columns.map((c) => /Int|Float|Decimal/.test(c.type));
  const line = (values: string[], isHeader = false): string =>
    values
      .map((v, i) => (numeric[i] && !isHeader ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const out: string[] = [];
  if (title) out.push(title, "");
  out.push(line(header, true), widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells) out.push(line(r));
  out.push("", `(${result.rows.length} row${result.rows.length === 1 ? "" : "s"})`);
  return `${out.join("\n")}\n`;
}

export function render(
  result: QueryResult,
  format: OutputFormat,
  meta?: Record<string, unknown>,
  title?: string,
): string {
  switch (format) {
    case "csv":
      return toCsv(result);
    case "json":
      return toJson(result, meta);
    case "table":
      return toTable(result, title);
  }
}
