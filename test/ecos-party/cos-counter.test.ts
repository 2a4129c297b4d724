import { EcosError } from "../../processors/runtime/errors";
import { jsonSerde } from "../../processors/runtime/serde";
import {
  ChangeLoggingStore,
  InMemoryKeyValueStore,
  type ChangelogEntry,
} from "../../processors/runtime/stores";
import {
  acceptDispatchedCounter,
  COS_COUNTER_STORE,
  lastCosCounter,
  MAX_COS_COUNTER,
  reserveCosCounter,
  type CosCounterEntry,
} from "../../processors/ecos-party/cos-counter";

const D1 = "00-DB-12-34-56-78-90-A0";
const D2 = "00-DB-12-34-56-78-90-A1";
const store = (): InMemoryKeyValueStore<CosCounterEntry> => new InMemoryKeyValueStore(COS_COUNTER_STORE);

describe("per-device CoS counter", () => {
  test("strictly increasing per device, independent across devices", () => {
    const s = store();
    expect(reserveCosCounter(s, D1, "r1")).toEqual({ counter: 1n, fresh: true });
    expect(reserveCosCounter(s, D1, "r2")).toEqual({ counter: 2n, fresh: true });
    expect(reserveCosCounter(s, D2, "r3")).toEqual({ counter: 1n, fresh: true });
    expect(reserveCosCounter(s, D1, "r4")).toEqual({ counter: 3n, fresh: true });
    expect(lastCosCounter(s, D1)).toBe(3n);
  });

  test("starts above the device's transitionalCoS floor (a migrated device keeps its TCoS floor)", () => {
    const s = store();
    expect(reserveCosCounter(s, D1, "r1", 6000n).counter).toBe(6001n);
    expect(reserveCosCounter(s, D1, "r2", 10n).counter).toBe(6002n);
    expect(reserveCosCounter(s, D1, "r3", 9000n).counter).toBe(9001n);
  });

  test("a redelivered request gets its counter back, not a new one", () => {
    const s = store();
    reserveCosCounter(s, D1, "r1");
    expect(reserveCosCounter(s, D1, "r1")).toEqual({ counter: 1n, fresh: false });
    reserveCosCounter(s, D1, "r2");
    // Once another request has taken a later counter, an old request is a new reservation.
    expect(reserveCosCounter(s, D1, "r1")).toEqual({ counter: 3n, fresh: true });
  });

  test("exhaustion is an error, not a wrap", () => {
    const s = store();
    s.put(D1, { counter: (MAX_COS_COUNTER - 1n).toString(), requestId: "x" });
    expect(reserveCosCounter(s, D1, "r1").counter).toBe(MAX_COS_COUNTER);
    expect(() => reserveCosCounter(s, D1, "r2")).toThrow(EcosError);
    try {
      reserveCosCounter(s, D1, "r2");
    } catch (err) {
      expect((err as EcosError).code).toBe("ECOS_COS_COUNTER_EXHAUSTED");
    }
  });

  test("crash: an aborted transaction's reservation is rolled back with its output; a committed one survives", async () => {
    const serde = jsonSerde<CosCounterEntry>();
    const changelog = new Map<string, Buffer | null>(); // the compacted changelog topic
    const open = async (): Promise<ChangeLoggingStore<CosCounterEntry>> => {
      const s = new ChangeLoggingStore(
        new InMemoryKeyValueStore<CosCounterEntry>(COS_COUNTER_STORE),
        "cl",
        serde,
      );
      for (const [k, v] of changelog) await s.restore(k, v);
      return s;
    };
    const commit = (entries: ChangelogEntry[], outputs: bigint[], emitted: bigint[]): void => {
      for (const e of entries) changelog.set(e.key, e.value);
      emitted.push(...outputs);
    };
    const emitted: bigint[] = [];
    // Transaction 1 commits: counter 1 reserved and its pre-command emitted together.
    let s = await open();
    const c1 = reserveCosCounter(s, D1, "r1").counter;
    commit(s.drainChangelog(), [c1], emitted);
    // Transaction 2: counter 2 reserved, then the process dies before the commit.
    reserveCosCounter(s, D1, "r2");
    // Restart: restore from the changelog; r2 is reprocessed and gets 2 (never emitted before).
    s = await open();
    const c2 = reserveCosCounter(s, D1, "r2").counter;
    commit(s.drainChangelog(), [c2], emitted);
    // Restart again after the commit: r3 must get 3, never a counter already emitted.
    s = await open();
    const c3 = reserveCosCounter(s, D1, "r3").counter;
    commit(s.drainChangelog(), [c3], emitted);
    expect(emitted).toEqual([1n, 2n, 3n]);
  });
});

describe("dispatch high-water mark", () => {
  test("releases only counters above every counter already dispatched to the device", () => {
    const s = store();
    expect(acceptDispatchedCounter(s, D1, "r1", 5n)).toBe(true);
    expect(acceptDispatchedCounter(s, D1, "r2", 5n)).toBe(false);
    expect(acceptDispatchedCounter(s, D1, "r2", 4n)).toBe(false);
    expect(acceptDispatchedCounter(s, D1, "r2", 6n)).toBe(true);
    expect(acceptDispatchedCounter(s, D2, "r3", 1n)).toBe(true);
    expect(acceptDispatchedCounter(s, D2, "r3", MAX_COS_COUNTER + 1n)).toBe(false);
  });
});
