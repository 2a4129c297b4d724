/**
 * What the DSP and the ECoS Party share: remembering counted request ids (so a redelivered copy is
 * never counted twice) and counting a request into the windows of its (User ID, SRV).
 */
import type { Serde } from "../runtime/serde";
import type { KeyValueStore } from "../runtime/stores";
import type { AdtThreshold } from "./adt-table";
import { addAt, bucketIndex, newRing, slideTo, type WindowRing, type WindowSet } from "./window";

const MINUTE = 60_000;

export type Remembered = "new" | "duplicate" | "too-old";

/**
 * Request ids counted within the retention (store key: see `keyOf`; value: the start of the receipt
 * minute, epoch ms).
 *
 * Why a store of ids and not idempotence by design: the count is a sum, and a sum cannot tell a
 * redelivered copy from a new request with the same content; DUIS RequestIDs carry a counter, but its
 * monotonicity per User ID is not confirmed ([GAP], reference §4 check 4), so a high-water mark could
 * drop genuine requests. The Kafka driver's transactions already stop redelivery inside the
 * application; this catches copies produced upstream (an at-least-once producer, a replayed topic).
 * The retention is the longest window plus one bucket: a copy older than that could not change any
 * count, so it is never counted at all (`too-old`).
 *
 * Expiry is exact to the receipt minute and independent of arrival order, so a restored instance
 * evicts exactly what the original would have: entries are indexed by receipt minute, and every
 * minute older than (newest receipt minute - retention) is dropped whole. The retention is a whole
 * number of minutes, so nothing finer than the receipt minute is ever used: that is what the store
 * holds (the minute's start, epoch ms), and the ids of one minute then share one changelog value
 * (`epochMillisSerde` hands out the same bytes for a repeated value) instead of costing a buffer
 * each. Entries written with the exact receipt time (before this) are read the same way.
 */
export class RequestDeduplicator {
  private readonly byMinute = new Map<number, string[]>();
  private newestMinute = Number.NEGATIVE_INFINITY;
  private cutoffMinute = Number.NEGATIVE_INFINITY;
  private readonly retentionMinutes: number;
  /** The list of `byMinute` that `index` used last, and its minute. */
  private lastMinute = Number.NaN;
  private lastKeys: string[] = [];

  constructor(
    private readonly store: KeyValueStore<number>,
    retentionMs: number,
  ) {
    if (!Number.isInteger(retentionMs / MINUTE))
      throw new RangeError(`request-id retention must be whole minutes, got ${retentionMs} ms`);
    this.retentionMinutes = retentionMs / MINUTE;
    for (const [key, receivedAt] of store.all()) {
      const m = Math.floor(receivedAt / MINUTE);
      this.index(key, m);
      if (m > this.newestMinute) this.newestMinute = m;
    }
    this.cutoffMinute = this.newestMinute - this.retentionMinutes;
  }

  private index(key: string, minute: number): void {
    // Ids arrive in receipt order almost always: the last minute's list saves a map lookup.
    if (minute !== this.lastMinute) {
      let keys = this.byMinute.get(minute);
      if (!keys) this.byMinute.set(minute, (keys = []));
      this.lastMinute = minute;
      this.lastKeys = keys;
    }
    this.lastKeys.push(key);
  }

  /**
   * The store key of a request: its RequestID when that begins with the User ID and a colon (the DUIS
   * form, BusinessOriginatorID first), else `<userId>|<requestId>`. The two forms cannot collide as
   * long as User IDs hold no "|" (they are EUI-64s; the window store's keys rely on that too).
   */
  static keyOf(userId: string, requestId: string): string {
    return requestId.startsWith(userId) && requestId.charCodeAt(userId.length) === 58
      ? requestId
      : `${userId}|${requestId}`;
  }

  /** Remembers a request id; says whether it is new, a copy already counted, or too old to count. */
  remember(userId: string, requestId: string, receivedAt: number): Remembered {
    const minute = Math.floor(receivedAt / MINUTE);
    if (minute < this.cutoffMinute) return "too-old";
    const key = RequestDeduplicator.keyOf(userId, requestId);
    if (this.store.get(key) !== undefined) return "duplicate";
    this.store.put(key, minute * MINUTE);
    this.index(key, minute);
    if (minute > this.newestMinute) {
      this.newestMinute = minute;
      this.cutoffMinute = minute - this.retentionMinutes;
      this.evict();
    }
    return "new";
  }

  private evict(): void {
    for (const [m, keys] of this.byMinute) {
      if (m >= this.cutoffMinute) continue;
      for (const k of keys) this.store.delete(k);
      this.byMinute.delete(m);
      if (m === this.lastMinute) this.lastMinute = Number.NaN;
    }
  }
}

/** The bytes last written by epochMillisSerde and the value they hold. */
let lastMillis = Number.NaN;
let lastMillisBytes: Buffer = Buffer.alloc(8);

/**
 * Epoch milliseconds as a signed 64-bit big-endian integer (the encoding of Int64Serde, without a
 * BigInt per value: one is written for every counted request). A value equal to the previous one
 * gets the very same Buffer (the ids of one receipt minute share their value): the buffers it
 * returns are shared and must never be written to.
 */
export const epochMillisSerde: Serde<number> = {
  name: "int64:epoch-millis",
  serialize: (_topic, value) => {
    if (value === lastMillis) return lastMillisBytes;
    const b = Buffer.allocUnsafe(8);
    b.writeInt32BE(Math.floor(value / 0x1_0000_0000), 0);
    b.writeUInt32BE(value >>> 0, 4);
    lastMillis = value;
    lastMillisBytes = b;
    return b;
  },
  deserialize: (_topic, data) => data.readInt32BE(0) * 0x1_0000_0000 + data.readUInt32BE(4),
};

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
