/**
 * What the DSP and the ECoS Party share: counting a request into the windows of its (User ID, SRV).
 * The request-id memory they share too is in request-ids.ts.
 */
import type { KeyValueStore } from "../runtime/stores";
import type { AdtThreshold } from "./adt-table";
import { addAt, bucketIndex, newRing, slideTo, type WindowRing, type WindowSet } from "./window";

/** The outcome of counting one request into one window. */
export interface WindowCheck {
  readonly periodMinutes: number;
  /** Requests in the window, this one included. */
  readonly count: number;
  readonly adt: number;
  readonly warningThreshold: number;
  /** count > ADT. */
  readonly breached: boolean;
  /** count > Warning Threshold for the first time since it was last at or below it (and no breach). */
  readonly warning: boolean;
}

export function windowKey(userId: string, srv: string): string {
  return `${userId}|${srv}`;
}

/**
 * Counts a request into the windows of its (User ID, SRV) for the given thresholds and checks each.
 * Rings follow the thresholds in force: a period the table no longer sets is dropped, a new one
 * starts empty. With `count: false` (a request too old to count) the windows are only checked.
 */
export function countAndCheck(
  store: KeyValueStore<WindowSet>,
  key: string,
  thresholds: readonly AdtThreshold[],
  receivedAt: number,
  bucketsPerWindow: number,
  count = true,
): WindowCheck[] {
  const set = store.get(key) ?? { rings: [] };
  alignRings(set, thresholds, bucketsPerWindow);
  const out: MutableWindowCheck[] = [];
  countInto(set, thresholds, receivedAt, count, out);
  // Always written back: sliding and the warned flag change the value even when nothing is counted,
  // and a backend that decodes a fresh copy per get (LMDB) must see the same state as memory.
  store.put(key, set);
  return out;
}

/** A WindowCheck the request checker fills in place (one set of them serves every request). */
export type MutableWindowCheck = { -readonly [K in keyof WindowCheck]: WindowCheck[K] };

/** Makes the set's rings follow `thresholds` (same periods, same order), keeping rings that stay. */
export function alignRings(
  set: WindowSet,
  thresholds: readonly AdtThreshold[],
  bucketsPerWindow: number,
): void {
  if (sameRings(set.rings, thresholds, bucketsPerWindow)) return;
  const old = set.rings;
  set.rings = thresholds.map(
    (t) =>
      old.find((r) => r.periodMinutes === t.periodMinutes && r.buckets === bucketsPerWindow) ??
      newRing(t.periodMinutes, bucketsPerWindow),
  );
}

/**
 * Counts (or with `count: false` only checks) a request in the rings of a set already aligned with
 * `thresholds`, writing one check per threshold into `out` (reusing its objects; its length is set).
 */
export function countInto(
  set: WindowSet,
  thresholds: readonly AdtThreshold[],
  receivedAt: number,
  count: boolean,
  out: MutableWindowCheck[],
): void {
  const rings = set.rings;
  for (let k = 0; k < thresholds.length; k++) {
    const t = thresholds[k] as AdtThreshold;
    const ring = rings[k] as WindowRing;
    const index = bucketIndex(receivedAt, ring.periodMinutes, ring.buckets);
    slideTo(ring, index);
    if (ring.total <= t.warningThreshold) ring.warned = false;
    const n = count && addAt(ring, index) ? ring.total : ring.total + 1;
    const breached = n > t.adt;
    let warning = false;
    if (n > t.warningThreshold) {
      warning = !ring.warned && !breached;
      ring.warned = true;
    }
    let c = out[k];
    if (c === undefined) {
      c = { periodMinutes: 0, count: 0, adt: 0, warningThreshold: 0, breached: false, warning: false };
      out.push(c);
    }
    c.periodMinutes = t.periodMinutes;
    c.count = n;
    c.adt = t.adt;
    c.warningThreshold = t.warningThreshold;
    c.breached = breached;
    c.warning = warning;
  }
  out.length = thresholds.length;
}

function sameRings(
  rings: readonly WindowRing[],
  thresholds: readonly AdtThreshold[],
  buckets: number,
): boolean {
  if (rings.length !== thresholds.length) return false;
  for (let k = 0; k < rings.length; k++) {
    const r = rings[k] as WindowRing;
    if (r.periodMinutes !== (thresholds[k] as AdtThreshold).periodMinutes || r.buckets !== buckets)
      return false;
  }
  return true;
}
