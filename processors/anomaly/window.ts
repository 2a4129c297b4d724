/**
 * Sliding-window counts, exact to a bucket.
 *
 * A window of P minutes is a ring of N+1 buckets of P/N each (N = `bucketsPerWindow`). Bucket k holds
 * the requests received in [k·P/N, (k+1)·P/N). The count at time t is the sum of the N+1 buckets
 * ending with t's bucket, so it covers every request received in the last P minutes and, at most, the
 * requests of one more bucket before that: a request received at t0 is counted until the end of the
 * bucket holding t0 + P — for at least P and less than P + P/N. Over-counting by less than one bucket
 * (rather than under-counting) is the safe side for a threshold meant to stop floods.
 *
 * Bucket indices are computed as floor(t·N / P) in exact integer arithmetic (t·N < 2^53 for any
 * epoch millisecond before the year 2100 with N ≤ 1440), so no bucket boundary drifts.
 */
import type { Serde } from "../runtime/serde";

export interface WindowRing {
  readonly periodMinutes: number;
  /** Absolute index of the newest bucket; -1 before the first request. */
  head: number;
  /** Requests currently in the window (the sum of `counts`). */
  total: number;
  /** A warning was raised and the count has not been at or below the Warning Threshold since. */
  warned: boolean;
  /** N+1 bucket counts; absolute bucket k lives in slot k mod (N+1). */
  readonly counts: Uint32Array;
}

/** The store value: every window of one (User ID, SRV), one ring per Time Period Applicable. */
export interface WindowSet {
  rings: WindowRing[];
}

export function newRing(periodMinutes: number, bucketsPerWindow: number): WindowRing {
  return { periodMinutes, head: -1, total: 0, warned: false, counts: new Uint32Array(bucketsPerWindow + 1) };
}

/** floor(t·N / P) with P in ms, exactly. */
export function bucketIndex(t: number, periodMinutes: number, buckets: number): number {
  const p = periodMinutes * 60_000;
  const tn = t * buckets;
  const r = tn % p;
  return (tn - (r < 0 ? r + p : r)) / p;
}

/** Start (epoch ms, rounded up) of absolute bucket `k`. */
export function bucketStart(k: number, periodMinutes: number, buckets: number): number {
  return Math.ceil((k * periodMinutes * 60_000) / buckets);
}

/** Moves the ring's newest bucket forward to `index`, emptying the buckets that fall out. */
function slideTo(ring: WindowRing, index: number): void {
  if (index <= ring.head) return;
  const len = ring.counts.length;
  if (ring.head < 0 || index - ring.head >= len) {
    ring.counts.fill(0);
    ring.total = 0;
  } else {
    for (let k = ring.head + 1; k <= index; k++) {
      const slot = k % len;
      ring.total -= ring.counts[slot] as number;
      ring.counts[slot] = 0;
    }
  }
  ring.head = index;
}

/**
 * The number of requests in the window ending at the later of `t` and the newest request seen for
 * the ring (a late request is checked against the newest window, never an older one).
 */
export function countAt(ring: WindowRing, t: number): number {
  const len = ring.counts.length;
  slideTo(ring, bucketIndex(t, ring.periodMinutes, len - 1));
  return ring.total;
}

/**
 * Counts one request received at `t`. Returns false (and counts nothing) when `t` falls before the
 * oldest bucket of the ring: the request could not be inside any window the ring still answers for.
 */
export function addRequest(ring: WindowRing, t: number): boolean {
  const len = ring.counts.length;
  const index = bucketIndex(t, ring.periodMinutes, len - 1);
  slideTo(ring, index);
  if (index <= ring.head - len) return false;
  const slot = index % len;
  ring.counts[slot] = (ring.counts[slot] as number) + 1;
  ring.total++;
  return true;
}

const FORMAT_VERSION = 1;

/**
 * Compact binary changelog form of a WindowSet: only non-empty buckets are written, so an idle or
 * sparse window costs a few bytes. Layout (big-endian): u8 version, u16 rings; per ring: u32 period
 * minutes, u16 buckets+1, f64 head, u8 warned, u16 non-empty buckets, then (u16 slot, u32 count) each.
 */
export const windowSetSerde: Serde<WindowSet> = {
  name: "binary:WindowSet",
  serialize(_topic, value) {
    let size = 3;
    for (const r of value.rings) {
      size += 4 + 2 + 8 + 1 + 2;
      for (const c of r.counts) if (c !== 0) size += 6;
    }
    const b = Buffer.allocUnsafe(size);
    let o = b.writeUInt8(FORMAT_VERSION, 0);
    o = b.writeUInt16BE(value.rings.length, o);
    for (const r of value.rings) {
      o = b.writeUInt32BE(r.periodMinutes, o);
      o = b.writeUInt16BE(r.counts.length, o);
      o = b.writeDoubleBE(r.head, o);
      o = b.writeUInt8(r.warned ? 1 : 0, o);
      const at = o;
      o += 2;
      let n = 0;
      for (let s = 0; s < r.counts.length; s++) {
        const c = r.counts[s] as number;
        if (c === 0) continue;
        o = b.writeUInt16BE(s, o);
        o = b.writeUInt32BE(c, o);
        n++;
      }
      b.writeUInt16BE(n, at);
    }
    return b;
  },
  deserialize(_topic, data) {
    if (data.readUInt8(0) !== FORMAT_VERSION)
      throw new Error(`WindowSet: unknown format version ${data.readUInt8(0)}`);
    const rings: WindowRing[] = [];
    const count = data.readUInt16BE(1);
    let o = 3;
    for (let k = 0; k < count; k++) {
      const periodMinutes = data.readUInt32BE(o);
      const len = data.readUInt16BE(o + 4);
      const head = data.readDoubleBE(o + 6);
      const warned = data.readUInt8(o + 14) === 1;
      const n = data.readUInt16BE(o + 15);
      o += 17;
      const counts = new Uint32Array(len);
      let total = 0;
      for (let j = 0; j < n; j++) {
        const c = data.readUInt32BE(o + 2);
        counts[data.readUInt16BE(o)] = c;
        total += c;
        o += 6;
      }
      rings.push({ periodMinutes, head, total, warned, counts });
    }
    if (o !== data.length) throw new Error(`WindowSet: ${data.length - o} trailing bytes`);
    return { rings };
  },
};
