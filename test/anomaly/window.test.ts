/**
 * Sliding windows exact to a bucket, the request-id memory, and the changelog form of a window.
 */
import { RequestDeduplicator, countAndCheck, epochMillisSerde } from "../../processors/anomaly/counter";
import { Int64Serde } from "../../processors/runtime/serde";
import type { AdtThreshold } from "../../processors/anomaly/adt-table";
import {
  addRequest,
  bucketIndex,
  bucketStart,
  countAt,
  newRing,
  windowSetSerde,
  type WindowSet,
} from "../../processors/anomaly/window";
import { InMemoryKeyValueStore } from "../../processors/runtime/stores";
import { MIN, T0 } from "./fixtures";

const N = 144;

describe("bucket arithmetic", () => {
  test("bucket k starts exactly at k·P/N, also where P/N is not a whole millisecond", () => {
    for (const period of [1, 7, 60, 1440]) {
      const p = period * MIN;
      for (const k of [0, 1, 143, 144, 1_000_003]) {
        const start = bucketStart(k, period, N);
        expect(bucketIndex(start, period, N)).toBe(k);
        expect(bucketIndex(start - 1, period, N)).toBe(k - 1);
        expect(start).toBe(Math.ceil((k * p) / N));
      }
    }
  });

  test("epoch milliseconds far in the future stay exact", () => {
    const t = Date.UTC(2099, 11, 31, 23, 59, 59, 999);
    const k = bucketIndex(t, 1440, 1440);
    expect(bucketStart(k, 1440, 1440)).toBeLessThanOrEqual(t);
    expect(bucketStart(k + 1, 1440, 1440)).toBeGreaterThan(t);
  });
});

describe("a window of P minutes", () => {
  test("counts a request for at least P and less than P + P/N after it was received", () => {
    for (const period of [1, 60, 1440]) {
      const p = period * MIN;
      for (const offset of [0, 1, 12_345, p / N - 1]) {
        const t0 = T0 + offset;
        const ring = newRing(period, N);
        addRequest(ring, t0);
        const expiry = bucketStart(bucketIndex(t0, period, N) + N + 1, period, N);
        expect(expiry).toBeGreaterThan(t0 + p - 1);
        expect(expiry).toBeLessThanOrEqual(t0 + p + Math.ceil(p / N));
        expect(countAt(ring, t0 + p - 1)).toBe(1);
        expect(countAt(ring, expiry - 1)).toBe(1);
        expect(countAt(ring, expiry)).toBe(0);
      }
    }
  });

  test("slides past old requests bucket by bucket and clears after a long gap", () => {
    const ring = newRing(60, N); // buckets of 25 s
    for (let k = 0; k < 10; k++) addRequest(ring, T0 + k * 25_000);
    expect(countAt(ring, T0 + 9 * 25_000)).toBe(10);
    // The window covers buckets head-144 .. head (145 buckets): the first request, in bucket 0, is
    // still counted in bucket 144 (t0 + P) and drops out when bucket 145 begins.
    expect(countAt(ring, T0 + 145 * 25_000 - 1)).toBe(10);
    expect(countAt(ring, T0 + 145 * 25_000)).toBe(9);
    expect(countAt(ring, T0 + 151 * 25_000)).toBe(3);
    expect(countAt(ring, T0 + 10 * 60 * MIN)).toBe(0);
    expect(ring.idx).toEqual([]);
  });

  test("a late request inside the ring is counted; one older than the ring is not", () => {
    const ring = newRing(60, N);
    addRequest(ring, T0 + 60 * MIN);
    expect(addRequest(ring, T0 + 30 * MIN)).toBe(true);
    expect(ring.total).toBe(2);
    expect(addRequest(ring, T0 - 1)).toBe(false);
    expect(ring.total).toBe(2);
  });
});

describe("threshold edges (countAndCheck)", () => {
  const t: AdtThreshold = { periodMinutes: 60, adt: 3, warningThreshold: 2, origin: "FILE" };

  test("just below, at and just above the Warning Threshold and the ADT", () => {
    const store = new InMemoryKeyValueStore<WindowSet>("w");
    const checks = [0, 1, 2, 3, 4].map((k) => countAndCheck(store, "u|6.23", [t], T0 + k, N)[0]);
    expect(checks.map((c) => [c?.count, c?.warning, c?.breached])).toEqual([
      [1, false, false],
      [2, false, false], // at the Warning Threshold: no warning
      [3, true, false], // just above it: one warning; at the ADT: passes
      [4, false, true], // just above the ADT: breach
      [5, false, true],
    ]);
  });

  test("a warning is raised again only after the count fell back to the Warning Threshold", () => {
    const store = new InMemoryKeyValueStore<WindowSet>("w");
    const high: AdtThreshold = { ...t, adt: 100 };
    const warn = (at: number) => countAndCheck(store, "k", [high], at, N)[0]?.warning;
    expect([warn(T0), warn(T0 + 1), warn(T0 + 2), warn(T0 + 3)]).toEqual([false, false, true, false]);
    // An hour and a bucket later the old requests are gone: crossing again warns again.
    const later = T0 + 61 * MIN;
    expect([warn(later), warn(later + 1), warn(later + 2)]).toEqual([false, false, true]);
  });

  test("rings follow the thresholds in force: a new period starts empty, a dropped one goes", () => {
    const store = new InMemoryKeyValueStore<WindowSet>("w");
    countAndCheck(store, "k", [t], T0, N);
    countAndCheck(store, "k", [t], T0 + 1, N);
    const day: AdtThreshold = { periodMinutes: 1440, adt: 10, warningThreshold: 10, origin: "FILE" };
    const both = countAndCheck(store, "k", [t, day], T0 + 2, N);
    expect(both.map((c) => c.count)).toEqual([3, 1]);
    countAndCheck(store, "k", [day], T0 + 3, N);
    expect(store.get("k")?.rings.map((r) => [r.periodMinutes, r.total])).toEqual([[1440, 2]]);
  });
});

describe("request-id memory", () => {
  const retention = 60 * MIN;

  test("a copy within the retention is a duplicate; a new id is new", () => {
    const d = new RequestDeduplicator(new InMemoryKeyValueStore<number>("d"), retention);
    expect(d.remember("u", "r1", T0)).toBe("new");
    expect(d.remember("u", "r1", T0)).toBe("duplicate");
    expect(d.remember("v", "r1", T0)).toBe("new");
  });

  test("ids older than the retention are forgotten (by receipt minute) and later copies are too old to count", () => {
    const store = new InMemoryKeyValueStore<number>("d");
    const d = new RequestDeduplicator(store, retention);
    d.remember("u", "old", T0);
    d.remember("u", "mid", T0 + 30 * MIN);
    d.remember("u", "new", T0 + 61 * MIN);
    expect(store.all().map(([k]) => k)).toEqual(["u|mid", "u|new"]);
    expect(d.remember("u", "old", T0)).toBe("too-old");
    expect(d.remember("u", "mid", T0 + 30 * MIN)).toBe("duplicate");
  });

  test("DUIS RequestIDs (User ID first) are their own key; others are prefixed with the User ID", () => {
    expect(RequestDeduplicator.keyOf("U1", "U1:D:7")).toBe("U1:D:7");
    expect(RequestDeduplicator.keyOf("U1", "U2:D:7")).toBe("U1|U2:D:7");
    expect(RequestDeduplicator.keyOf("U1", "U1X:D:7")).toBe("U1|U1X:D:7");
  });

  test("receipt times are written as Int64Serde writes them, without a BigInt", () => {
    for (const t of [0, 1, T0, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
      const bytes = epochMillisSerde.serialize("t", t);
      expect(bytes).toEqual(Int64Serde.serialize("t", t));
      expect(epochMillisSerde.deserialize("t", bytes)).toBe(t);
    }
  });

  test("remembers the receipt minute, and the ids of one minute share their changelog bytes", () => {
    const store = new InMemoryKeyValueStore<number>("d");
    const d = new RequestDeduplicator(store, retention);
    d.remember("u", "a", T0 + 5 * MIN + 1_234);
    d.remember("u", "b", T0 + 5 * MIN + 59_999);
    expect(store.all()).toEqual([
      ["u|a", T0 + 5 * MIN],
      ["u|b", T0 + 5 * MIN],
    ]);
    const first = epochMillisSerde.serialize("t", T0 + 5 * MIN);
    expect(epochMillisSerde.serialize("t", T0 + 5 * MIN)).toBe(first);
    const other = epochMillisSerde.serialize("t", T0 + 6 * MIN);
    expect(other).not.toBe(first);
    expect(epochMillisSerde.deserialize("t", first)).toBe(T0 + 5 * MIN);
    expect(epochMillisSerde.deserialize("t", other)).toBe(T0 + 6 * MIN);
  });

  test("a store written with exact receipt times is read as the same minutes", () => {
    const times = [T0 + 2 * MIN + 59_999, T0 + 30 * MIN + 1, T0 + 62 * MIN + 30_000];
    const exact = new InMemoryKeyValueStore<number>("exact");
    const byMinute = new InMemoryKeyValueStore<number>("minutes");
    times.forEach((t, k) => {
      exact.put(`u|r${k}`, t);
      byMinute.put(`u|r${k}`, Math.floor(t / MIN) * MIN);
    });
    const a = new RequestDeduplicator(exact, retention);
    const b = new RequestDeduplicator(byMinute, retention);
    // The newest is in minute 62: minute 2 (r0) is still inside the retention for both, minute 63
    // cuts it off; a copy from minute 1 is too old for both.
    for (const d of [a, b]) {
      expect(d.remember("u", "r0", T0 + 2 * MIN + 59_999)).toBe("duplicate");
      expect(d.remember("u", "late", T0 + 63 * MIN + 10)).toBe("new");
      expect(d.remember("u", "r1", T0 + 30 * MIN + 1)).toBe("duplicate");
      expect(d.remember("u", "x", T0 + MIN)).toBe("too-old");
    }
    expect(exact.all().map(([k]) => k)).toEqual(byMinute.all().map(([k]) => k));
    expect(exact.all().map(([k]) => k)).toEqual(["u|late", "u|r1", "u|r2"]);
  });

  test("a retention that is not whole minutes is refused", () => {
    expect(() => new RequestDeduplicator(new InMemoryKeyValueStore<number>("d"), MIN + 1)).toThrow(
      /whole minutes/,
    );
  });

  test("rebuilt from its store, it evicts exactly what the original would have", () => {
    const a = new InMemoryKeyValueStore<number>("a");
    const b = new InMemoryKeyValueStore<number>("b");
    const first = new RequestDeduplicator(a, retention);
    const times = [T0 + 5 * MIN, T0, T0 + 20 * MIN, T0 + 2 * MIN, T0 + 40 * MIN];
    times.forEach((t, k) => first.remember("u", `r${k}`, t));
    for (const [k, v] of a.all()) b.put(k, v);
    const restored = new RequestDeduplicator(b, retention);
    first.remember("u", "late", T0 + 63 * MIN);
    restored.remember("u", "late", T0 + 63 * MIN);
    expect(b.all()).toEqual(a.all());
    // Cut-off: minute 3 (63 - 60): r1 (minute 0) and r3 (minute 2) are gone.
    expect(a.all().map(([k]) => k)).toEqual(["u|late", "u|r0", "u|r2", "u|r4"]);
  });
});

describe("changelog form of a window set", () => {
  test("round-trips exactly and writes only non-empty buckets", () => {
    const set: WindowSet = { rings: [newRing(60, N), newRing(1440, N)] };
    for (let k = 0; k < 500; k++) {
      addRequest(set.rings[0]!, T0 + k * 7_919);
      addRequest(set.rings[1]!, T0 + k * 7_919);
    }
    set.rings[0]!.warned = true;
    const bytes = windowSetSerde.serialize("t", set);
    const back = windowSetSerde.deserialize("t", bytes) as WindowSet;
    expect(back).toEqual(set);
    const empty = windowSetSerde.serialize("t", { rings: [newRing(1440, N)] });
    expect(empty.length).toBe(3 + 15);
  });

  test("late buckets inserted in the middle round-trip too", () => {
    const set: WindowSet = { rings: [newRing(60, N)] };
    for (const k of [10, 3, 7, 7, 1, 10, 5]) addRequest(set.rings[0]!, T0 + k * 25_000);
    expect(set.rings[0]!.idx.map((i) => i - set.rings[0]!.idx[0]!)).toEqual([0, 2, 4, 6, 9]);
    expect(set.rings[0]!.cnt).toEqual([1, 1, 1, 2, 2]);
    expect(windowSetSerde.deserialize("t", windowSetSerde.serialize("t", set))).toEqual(set);
  });

  test("multi-byte bucket offsets and counts are sized exactly", () => {
    const set: WindowSet = { rings: [newRing(1440, 1440), newRing(60, N)] };
    const day = set.rings[0]!;
    // Buckets of one minute: 1,000 gaps and counts of 200 and 20,000 need two- and three-byte varints.
    for (let k = 0; k < 200; k++) addRequest(day, T0);
    for (let k = 0; k < 20_000; k++) addRequest(day, T0 + 1_000 * MIN);
    addRequest(day, T0 + 1_439 * MIN);
    addRequest(set.rings[1]!, T0);
    const bytes = windowSetSerde.serialize("t", set);
    // Header 3, two rings of 15; day (offset + count per bucket): 1 + 2, 2 + 3, 2 + 1; hour: 2 + 1.
    expect(bytes.length).toBe(3 + 15 + 3 + 5 + 3 + 15 + 3);
    expect(windowSetSerde.deserialize("t", bytes)).toEqual(set);
  });

  test("refuses an unknown format or trailing bytes", () => {
    const bytes = windowSetSerde.serialize("t", { rings: [newRing(60, N)] });
    expect(() => windowSetSerde.deserialize("t", Buffer.concat([bytes, Buffer.from([0])]))).toThrow(
      /trailing/,
    );
    const bad = Buffer.from(bytes);
    bad[0] = 9;
    expect(() => windowSetSerde.deserialize("t", bad)).toThrow(/format version/);
  });
});
