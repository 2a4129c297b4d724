/**
 * A User's current thresholds and counts, for `ecos adt status`: built from the ADT table and window
 * store values, whichever way they were obtained (an in-process run, or a read of the changelogs).
 */
import { adtVersionAt, entriesOf, type AdtHistory } from "./adt-table";
import type { AnomalyConfig } from "./config";
import type { AdtEntry } from "./records";
import { copyRing, countAt, type WindowSet } from "./window";

export interface AdtStatusEntry extends AdtEntry {
  /** Requests counted in the window ending at `at`; 0 when nothing was counted yet. */
  readonly count: number;
}

export interface AdtStatus {
  readonly userId: string;
  /** Epoch ms the status describes. */
  readonly at: number;
  /** Sequence Number of the table in force at `at`; null for the never-submitted defaults. */
  readonly sequenceNumber: number | null;
  readonly effectiveFrom: number | null;
  /** Highest Sequence Number accepted (anti-replay); null when no file was ever accepted. */
  readonly lastSequenceNumber: number | null;
  readonly entries: readonly AdtStatusEntry[];
  /** Versions kept, oldest first. */
  readonly versions: ReadonlyArray<{ sequenceNumber: number | null; effectiveFrom: number }>;
}

/** `windows` maps an SRV to its window store value. Nothing passed in is modified. */
export function adtStatus(
  userId: string,
  history: AdtHistory | undefined,
  windows: ReadonlyMap<string, WindowSet>,
  at: number,
  config: AnomalyConfig,
): AdtStatus {
  const version = adtVersionAt(history, at, config);
  const entries = entriesOf(version).map((e) => {
    const ring = windows.get(e.srv)?.rings.find((r) => r.periodMinutes === e.periodMinutes);
    const count = ring ? countAt(copyRing(ring), at) : 0;
    return { ...e, count };
  });
  return {
    userId,
    at,
    sequenceNumber: version.sequenceNumber,
    effectiveFrom: Number.isFinite(version.effectiveFrom) ? version.effectiveFrom : null,
    lastSequenceNumber: history ? history.lastSequenceNumber : null,
    entries,
    versions: (history?.versions ?? []).map((v) => ({
      sequenceNumber: v.sequenceNumber,
      effectiveFrom: v.effectiveFrom,
    })),
  };
}

/** The status as an aligned text table. */
export function formatAdtStatus(s: AdtStatus): string {
  const iso = (t: number | null): string => (t === null ? "-" : new Date(t).toISOString());
  const lines = [
    `User ID            ${s.userId}`,
    `as of              ${iso(s.at)}`,
    `table in force     ${s.sequenceNumber === null ? "defaults (no ADT file accepted)" : `Sequence Number ${s.sequenceNumber}, from ${iso(s.effectiveFrom)}`}`,
    `highest accepted   ${s.lastSequenceNumber ?? "-"}`,
    `versions kept      ${s.versions.map((v) => `${v.sequenceNumber ?? "defaults"}@${iso(v.effectiveFrom)}`).join(", ") || "-"}`,
    "",
  ];
  const rows = [["SRV", "period (min)", "count", "warning", "ADT", "origin"]];
  for (const e of s.entries) {
    rows.push([
      e.srv,
      String(e.periodMinutes),
      String(e.count),
      String(e.warningThreshold),
      String(e.adt),
      e.origin,
    ]);
  }
  const widths = (rows[0] as string[]).map((_, k) => Math.max(...rows.map((r) => (r[k] as string).length)));
  for (const r of rows)
    lines.push(
      r
        .map((c, k) => c.padEnd(widths[k] as number))
        .join("  ")
        .trimEnd(),
    );
  return lines.join("\n");
}
