/**
 * Sliding-window counts, exact to a bucket.
 *
 * A window of P minutes is made of buckets of P/N each (N = `bucketsPerWindow`). Bucket k holds the
 * requests received in [k·P/N, (k+1)·P/N). The count at time t is the sum of the N+1 buckets ending
 * with t's bucket, so it covers every request received in the last P minutes and, at most, the
 * requests of one more bucket before that: a request received at t0 is counted until the end of the
 * bucket holding t0 + P — for at least P and less than P + P/N. Over-counting by less than one bucket
 * (rather than under-counting) is the safe side for a threshold meant to stop floods.
 *
 * Only non-empty buckets are kept (absolute index and count, oldest first), so a window costs memory
 * in proportion to the buckets its traffic actually uses — at most N+1 — and serialising it for the
 * changelog never scans empty ones.
 *
 * Bucket indices are computed as floor(t·N / P) in exact integer arithmetic (t·N < 2^53 for any
 * epoch millisecond before the year 2100 with N ≤ 1440), so no bucket boundary drifts.
 */
import type { Serde } from "../runtime/serde";

export interface WindowRing {
  readonly periodMinutes: number;
  /** N: the window is N+1 buckets of periodMinutes/N. */
  readonly buckets: number;
  /** Absolute index of the newest bucket; -1 before the first request. */
  head: number;
  /** Requests currently in the window (the sum of `cnt`). */
  total: number;
  /** A warning was raised and the count has not been at or below the Warning Threshold since. */
  warned: boolean;
  /** Absolute indices of the non-empty buckets, ascending, all within [head - N, head]. */
  idx: number[];
  /** Request count of each bucket in `idx`. */
  cnt: number[];
}

/** The store value: every window of one (User ID, SRV), one ring per Time Period Applicable. */
export interface WindowSet {
  rings: WindowRing[];
}

export function newRing(periodMinutes: number, bucketsPerWindow: number): WindowRing {
  return { periodMinutes, buckets: bucketsPerWindow, head: -1, total: 0, warned: false, idx: [], cnt: [] };
}

/**
 * floor(t·N / P) with P in ms, exactly: t·N and P are integers below 2^53, so a quotient that is not
 * a whole number lies at least 1/P from one, farther than the division's rounding error (below
 * t·N/(P·2^53) < 1/P) can carry it — the floor of the rounded quotient is the exact one.
 */
export function bucketIndex(t: number, periodMinutes: number, buckets: number): number {
  return Math.floor((t * buckets) / (periodMinutes * 60_000));
}

/** Start (epoch ms, rounded up) of absolute bucket `k`. */
export function bucketStart(k: number, periodMinutes: number, buckets: number): number {
  return Math.ceil((k * periodMinutes * 60_000) / buckets);
}

/** Moves the newest bucket forward to `index`, dropping the buckets that fall out of the window. */
export function slideTo(ring: WindowRing, index: number): void {
  if (index <= ring.head) return;
  ring.head = index;
  const oldest = index - ring.buckets;
  const idx = ring.idx;
  let drop = 0;
  while (drop < idx.length && (idx[drop] as number) < oldest) {
    ring.total -= ring.cnt[drop] as number;
    drop++;
  }
  if (drop > 0) {
    idx.splice(0, drop);
    ring.cnt.splice(0, drop);
  }
}

/**
 * The number of requests in the window ending at the later of `t` and the newest request seen for
 * the ring (a late request is checked against the newest window, never an older one).
 */
export function countAt(ring: WindowRing, t: number): number {
  slideTo(ring, bucketIndex(t, ring.periodMinutes, ring.buckets));
  return ring.total;
}

/**
 * Counts one request received at `t`. Returns false (and counts nothing) when `t` falls before the
 * oldest bucket of the window: the request could not be inside any window the ring answers for.
 */
export function addRequest(ring: WindowRing, t: number): boolean {
  const index = bucketIndex(t, ring.periodMinutes, ring.buckets);
  slideTo(ring, index);
  return addAt(ring, index);
}

/** Counts one request into absolute bucket `index` of a ring already slid to at least `index`. */
export function addAt(ring: WindowRing, index: number): boolean {
  if (index < ring.head - ring.buckets) return false;
  const { idx, cnt } = ring;
  let k = idx.length - 1;
  // Requests arrive in receipt order almost always: the newest bucket is the common case.
  while (k >= 0 && (idx[k] as number) > index) k--;
  if (k >= 0 && idx[k] === index) cnt[k] = (cnt[k] as number) + 1;
  else if (k === idx.length - 1) {
    idx.push(index);
    cnt.push(1);
  } else {
    idx.splice(k + 1, 0, index);
    cnt.splice(k + 1, 0, 1);
  }
  ring.total++;
  return true;
}

/** A copy that can be slid without touching the original (for read-only views). */
export function copyRing(ring: WindowRing): WindowRing {
  return { ...ring, idx: ring.idx.slice(), cnt: ring.cnt.slice() };
}

const FORMAT_VERSION = 3;

/** Writes `n` as an unsigned LEB128 varint at `o`; returns the offset after it. */
export function writeVarint(b: Uint8Array, o: number, n: number): number {
  while (n >= 0x80) {
    b[o++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  b[o++] = n;
  return o;
}

/** Bytes of `n` as an unsigned LEB128 varint. */
export function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    bytes++;
  }
  return bytes;
}

/** Where window sets are written before their exact-size copy (grown as needed, never shrunk). */
let scratch = Buffer.allocUnsafe(4096);

/**
 * Compact binary changelog form of a WindowSet, written at every commit for every window touched
 * since the previous one. Layout: u8 version, u16 rings (big-endian); per ring: u32 period minutes,
 * u16 N, u48 head+1 (0: no request yet), u8 warned, u16 non-empty buckets, then per bucket its index
 * (the first as an offset from head-N, the others as the distance from the previous one) and its
 * count, as unsigned LEB128 varints. Written in one pass over the rings into a scratch buffer (the
 * bucket arrays of a set touched a while ago are rarely in cache: a second, sizing pass cost ~25 %
 * more), then copied into a buffer of the exact size.
 */
export const windowSetSerde: Serde<WindowSet> = {
  name: "binary:WindowSet",
  serialize(_topic, value) {
    const rings = value.rings;
    // An upper bound: 15 bytes of ring header, two varints of at most 8 bytes per bucket.
    let max = 3;
    for (let k = 0; k < rings.length; k++) max += 15 + (rings[k] as WindowRing).idx.length * 16;
    if (scratch.length < max) scratch = Buffer.allocUnsafe(max * 2);
    const b = scratch;
    b[0] = FORMAT_VERSION;
    b[1] = rings.length >>> 8;
    b[2] = rings.length & 0xff;
    let o = 3;
    for (let k = 0; k < rings.length; k++) {
      const r = rings[k] as WindowRing;
      const p = r.periodMinutes;
      b[o] = p >>> 24;
      b[o + 1] = (p >>> 16) & 0xff;
      b[o + 2] = (p >>> 8) & 0xff;
      b[o + 3] = p & 0xff;
      b[o + 4] = r.buckets >>> 8;
      b[o + 5] = r.buckets & 0xff;
      const h = r.head + 1;
      const hi = Math.floor(h / 0x1_0000_0000);
      const lo = h >>> 0;
      b[o + 6] = hi >>> 8;
      b[o + 7] = hi & 0xff;
      b[o + 8] = lo >>> 24;
      b[o + 9] = (lo >>> 16) & 0xff;
      b[o + 10] = (lo >>> 8) & 0xff;
      b[o + 11] = lo & 0xff;
      b[o + 12] = r.warned ? 1 : 0;
      const { idx, cnt } = r;
      const n = idx.length;
      b[o + 13] = n >>> 8;
      b[o + 14] = n & 0xff;
      o += 15;
      let prev = r.head - r.buckets;
      for (let j = 0; j < n; j++) {
        const i = idx[j] as number;
        const d = i - prev;
        const c = cnt[j] as number;
        // One byte each almost always (deltas within a window, counts below 128).
        if (d < 0x80) b[o++] = d;
        else o = writeVarint(b, o, d);
        if (c < 0x80) b[o++] = c;
        else o = writeVarint(b, o, c);
        prev = i;
      }
    }
    const out = Buffer.allocUnsafe(o);
    out.set(b.subarray(0, o));
    return out;
  },
  deserialize(_topic, data) {
    let o = 0;
    const need = (n: number): void => {
      if (o + n > data.length) throw new Error("WindowSet: truncated");
    };
    const varint = (): number => {
      let n = 0;
      let scale = 1;
      for (;;) {
        need(1);
        const byte = data[o++] as number;
        n += (byte & 0x7f) * scale;
        if (byte < 0x80) return n;
        scale *= 0x80;
        if (scale > 2 ** 49) throw new Error("WindowSet: varint too long");
      }
    };
    need(3);
    if (data[0] !== FORMAT_VERSION) throw new Error(`WindowSet: unknown format version ${data[0]}`);
    const count = data.readUInt16BE(1);
    o = 3;
    const rings: WindowRing[] = [];
    for (let k = 0; k < count; k++) {
      need(15);
      const periodMinutes = data.readUInt32BE(o);
      const buckets = data.readUInt16BE(o + 4);
      const head = data.readUIntBE(o + 6, 6) - 1;
      const warned = data[o + 12] === 1;
      const n = data.readUInt16BE(o + 13);
      o += 15;
      const idx: number[] = [];
      const cnt: number[] = [];
      let total = 0;
      let i = head - buckets;
      for (let j = 0; j < n; j++) {
        i += varint();
        const c = varint();
        if (i > head || c === 0) throw new Error(`WindowSet: bad bucket ${i} (count ${c}) for head ${head}`);
        idx.push(i);
        cnt.push(c);
        total += c;
      }
      rings.push({ periodMinutes, buckets, head, total, warned, idx, cnt });
    }
    if (o !== data.length) throw new Error(`WindowSet: ${data.length - o} trailing bytes`);
    return { rings };
  },
};
