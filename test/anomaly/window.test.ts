/**
 * Sliding windows exact to a bucket, the request-id memory, and the changelog form of a window.
 */
import { countAndCheck } from "../../processors/anomaly/counter";
import {
  RequestDeduplicator,
  countedRequestIdsSerde,
  IDS_PER_ENTRY,
  idsOf,
  rememberedIds,
  type CountedRequestIds,
} from "../../processors/anomaly/request-ids";
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
import { ChangeLoggingStore, InMemoryKeyValueStore } from "../../processors/runtime/stores";
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
  const decode = (bytes: Buffer) => countedRequestIdsSerde.deserialize("t", bytes) as CountedRequestIds;
  const idStore = (name = "d") => new InMemoryKeyValueStore<CountedRequestIds>(name);
  /** A store as the changelog would restore it: every entry through the serde. */
  const restoredCopy = (from: InMemoryKeyValueStore<CountedRequestIds>) => {
    const to = idStore("restored");
    for (const [k, v] of from.all()) to.put(k, decode(countedRequestIdsSerde.serialize("t", v)));
    return to;
  };

  test("a copy within the retention is a duplicate; a new id is new", () => {
    const d = new RequestDeduplicator(idStore(), retention);
    expect(d.remember("u", "r1", T0)).toBe("new");
    expect(d.remember("u", "r1", T0)).toBe("duplicate");
    expect(d.remember("v", "r1", T0)).toBe("new");
    expect(d.size).toBe(2);
  });

  test("ids older than the retention are forgotten (by receipt minute) and later copies are too old to count", () => {
    const store = idStore();
    const d = new RequestDeduplicator(store, retention);
    d.remember("u", "old", T0);
    d.remember("u", "mid", T0 + 30 * MIN);
    d.remember("u", "new", T0 + 61 * MIN);
    expect(rememberedIds(store.all())).toEqual(["u|mid", "u|new"]);
    expect(d.size).toBe(2);
    expect(d.remember("u", "old", T0)).toBe("too-old");
    expect(d.remember("u", "mid", T0 + 30 * MIN)).toBe("duplicate");
  });

  test("an expired minute's ids are forgotten: the same id received again in a newer minute is new", () => {
    const d = new RequestDeduplicator(idStore(), retention);
    d.remember("u", "r", T0);
    d.remember("u", "later", T0 + 61 * MIN);
    expect(d.remember("u", "r", T0 + 61 * MIN)).toBe("new");
    expect(d.size).toBe(2);
  });

  test("DUIS RequestIDs (User ID first) are their own key; others are prefixed with the User ID", () => {
    expect(RequestDeduplicator.keyOf("U1", "U1:D:7")).toBe("U1:D:7");
    expect(RequestDeduplicator.keyOf("U1", "U2:D:7")).toBe("U1|U2:D:7");
    expect(RequestDeduplicator.keyOf("U1", "U1X:D:7")).toBe("U1|U1X:D:7");
  });

  test("a commit logs only the entries that changed: a minute's ids go to one entry until it is full", () => {
    const store = new ChangeLoggingStore(idStore(), "c", countedRequestIdsSerde);
    const d = new RequestDeduplicator(store, retention);
    d.remember("u", "a", T0 + 5 * MIN + 1_234);
    d.remember("u", "b", T0 + 5 * MIN + 59_999);
    d.remember("u", "c", T0 + 6 * MIN);
    const first = store.drainChangelog();
    expect(first.map((e) => [e.key, idsOf("", decode(e.value as Buffer))])).toEqual([
      [`m${T0 / MIN + 5}:u|a`, ["u|a", "u|b"]],
      [`m${T0 / MIN + 6}:u|c`, ["u|c"]],
    ]);
    expect(decode(first[0]?.value as Buffer).minute).toBe(T0 + 5 * MIN);
    expect(store.drainChangelog()).toEqual([]);
    // An id added to a logged entry logs that entry again; what was written before is unchanged.
    d.remember("u", "d", T0 + 5 * MIN + 10);
    const second = store.drainChangelog();
    expect(second.map((e) => [e.key, idsOf("", decode(e.value as Buffer))])).toEqual([
      [`m${T0 / MIN + 5}:u|a`, ["u|a", "u|b", "u|d"]],
    ]);
    expect(idsOf("", decode(first[0]?.value as Buffer))).toEqual(["u|a", "u|b"]);
    // A full entry is closed: the minute's next id starts another.
    for (let k = 0; k < IDS_PER_ENTRY + 1; k++) d.remember("u", `f${k}`, T0 + 7 * MIN);
    const third = store.drainChangelog();
    expect(third.map((e) => decode(e.value as Buffer).count)).toEqual([IDS_PER_ENTRY, 1]);
    expect(third[1]?.key).toBe(`m${T0 / MIN + 7}:u|f${IDS_PER_ENTRY}`);
    // Expiry deletes every entry of the minute.
    d.remember("u", "e", T0 + 66 * MIN);
    expect(
      store
        .drainChangelog()
        .filter((e) => e.value === null)
        .map((e) => e.key),
    ).toEqual([`m${T0 / MIN + 5}:u|a`]);
  });

  test("the store's entries do not depend on when commits or restores happened", () => {
    const never = idStore("never");
    const often = new ChangeLoggingStore(idStore("often"), "c", countedRequestIdsSerde);
    let restored = idStore("restored");
    const a = new RequestDeduplicator(never, retention);
    const b = new RequestDeduplicator(often, retention);
    let c = new RequestDeduplicator(restored, retention);
    for (let k = 0; k < 500; k++) {
      const t = T0 + Math.floor(k / 150) * MIN + (k % 7) * 1_000;
      for (const d of [a, b, c]) d.remember("u", `r${k % 450}`, t);
      if (k % 3 === 0) often.drainChangelog();
      if (k % 97 === 0) c = new RequestDeduplicator((restored = restoredCopy(restored)), retention);
    }
    expect(JSON.stringify(often.all())).toBe(JSON.stringify(never.all()));
    expect(JSON.stringify(restored.all())).toBe(JSON.stringify(never.all()));
    expect(never.all().length).toBeGreaterThan(4);
  });

  test("ids of any length and characters are told apart, and their changelog form round-trips", () => {
    const store = idStore();
    const d = new RequestDeduplicator(store, retention);
    const ids = ["a", "", "é".repeat(100), "x".repeat(300), "x".repeat(299), "e\u0301", "é"];
    for (const id of ids) expect(d.remember("u", id, T0 + 7 * MIN)).toBe("new");
    for (const id of ids) expect(d.remember("u", id, T0 + 7 * MIN)).toBe("duplicate");
    const [[key, value]] = store.all() as [[string, CountedRequestIds]];
    const bytes = Buffer.from(countedRequestIdsSerde.serialize("t", value));
    expect(value.logged).toBe(true);
    const back = decode(bytes);
    expect(back.minute).toBe(T0 + 7 * MIN);
    expect(idsOf(key, back)).toEqual(ids.map((id) => `u|${id}`));
    // Decoded entries hold their own copy: the bytes read may be reused by whoever read them.
    bytes.fill(0);
    expect(idsOf(key, back)).toEqual(ids.map((id) => `u|${id}`));
    const written = countedRequestIdsSerde.serialize("t", value);
    expect(() => decode(written.subarray(0, written.length - 1))).toThrow(/truncated/);
    expect(() => decode(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/unknown format/);
  });

  test("matches a plain set over many ids arriving out of order while minutes expire (table growth and deletion)", () => {
    const store = new ChangeLoggingStore(idStore(), "c", countedRequestIdsSerde);
    const d = new RequestDeduplicator(store, retention);
    const model = new Map<string, number>();
    const wrong: string[] = [];
    let newest = -Infinity;
    let seed = 7;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let k = 0; k < 20_000; k++) {
      const minute = Math.floor(k / 100) + random(5) - 2;
      const id = `r${random(6_000)}`;
      const t = T0 + minute * MIN;
      const cutoff = newest - 60;
      let expected: string;
      if (minute < cutoff) expected = "too-old";
      else if (model.has(id)) expected = "duplicate";
      else {
        expected = "new";
        model.set(id, minute);
        if (minute > newest) {
          newest = minute;
          for (const [i, m] of model) if (m < newest - 60) model.delete(i);
        }
      }
      const got = d.remember("u", id, t);
      if (got !== expected) wrong.push(`${k}: ${id} ${got}, expected ${expected}`);
      if (k % 97 === 0) store.drainChangelog();
    }
    expect(wrong).toEqual([]);
    expect(d.size).toBe(model.size);
    expect(rememberedIds(store.all())).toEqual([...model.keys()].map((id) => `u|${id}`).sort());
  });

  test("a store of the older form (one entry per id, exact receipt times as Int64) is read as the same minutes", () => {
    const times = [T0 + 2 * MIN + 59_999, T0 + 30 * MIN + 1, T0 + 62 * MIN + 30_000];
    const older = idStore("older");
    const current = idStore("current");
    const writer = new RequestDeduplicator(current, retention);
    times.forEach((t, k) => {
      older.put(`u|r${k}`, decode(Int64Serde.serialize("t", t)));
      writer.remember("u", `r${k}`, t);
    });
    const a = new RequestDeduplicator(older, retention);
    const b = new RequestDeduplicator(restoredCopy(current), retention);
    // The newest is in minute 62: minute 2 (r0) is still inside the retention for both, minute 63
    // cuts it off; a copy from minute 1 is too old for both.
    for (const d of [a, b]) {
      expect(d.remember("u", "r0", T0 + 2 * MIN + 59_999)).toBe("duplicate");
      expect(d.remember("u", "late", T0 + 63 * MIN + 10)).toBe("new");
      expect(d.remember("u", "r1", T0 + 30 * MIN + 1)).toBe("duplicate");
      expect(d.remember("u", "x", T0 + MIN)).toBe("too-old");
    }
    expect(rememberedIds(older.all())).toEqual(["u|late", "u|r1", "u|r2"]);
    expect(older.all().map(([k]) => k)).toContain("u|r1");
  });

  test("a retention that is not whole minutes is refused", () => {
    expect(() => new RequestDeduplicator(idStore(), MIN + 1)).toThrow(/whole minutes/);
  });

  test("rebuilt from its changelog, it remembers and evicts exactly what the original does", () => {
    const a = idStore("a");
    const first = new RequestDeduplicator(a, retention);
    const times = [T0 + 5 * MIN, T0, T0 + 20 * MIN, T0 + 2 * MIN, T0 + 40 * MIN];
    times.forEach((t, k) => first.remember("u", `r${k}`, t));
    first.remember("u", "é", T0 + 40 * MIN);
    const b = restoredCopy(a);
    const restored = new RequestDeduplicator(b, retention);
    expect(restored.size).toBe(first.size);
    for (const d of [first, restored]) {
      expect(d.remember("u", "r2", T0 + 20 * MIN)).toBe("duplicate");
      // Hashed from the stored bytes on restore, as the id was when encoded: ASCII or not.
      expect(d.remember("u", "é", T0 + 40 * MIN)).toBe("duplicate");
      expect(d.remember("u", "late", T0 + 63 * MIN)).toBe("new");
    }
    expect(rememberedIds(b.all())).toEqual(rememberedIds(a.all()));
    // Cut-off: minute 3 (63 - 60): r1 (minute 0) and r3 (minute 2) are gone.
    expect(rememberedIds(a.all())).toEqual(["u|late", "u|r0", "u|r2", "u|r4", "u|é"]);
    expect(restored.remember("u", "r3", T0 + 2 * MIN)).toBe("too-old");
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
