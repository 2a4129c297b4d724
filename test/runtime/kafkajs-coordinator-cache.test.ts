import { createRequire } from "node:module";
import {
  COORDINATOR_CACHE_TTL_MS,
  cachingCoordinatorLookup,
  installCoordinatorCache,
  type CoordinatorQuery,
} from "../../processors/runtime/kafkajs-coordinator-cache";

class FakeBroker {
  connected = true;
  constructor(readonly nodeId: number) {}
  isConnected(): boolean {
    return this.connected;
  }
}

function rig() {
  let clock = 1_000;
  const asked: CoordinatorQuery[] = [];
  let nodeId = 0;
  const lookup = cachingCoordinatorLookup(
    async function (q: CoordinatorQuery) {
      asked.push(q);
      return new FakeBroker(++nodeId);
    },
    COORDINATOR_CACHE_TTL_MS,
    () => clock,
  );
  return {
    asked,
    lookup,
    advance: (ms: number) => void (clock += ms),
  };
}

describe("kafkajs coordinator cache", () => {
  test("a repeated lookup within the time-to-live is answered from the cache", async () => {
    const r = rig();
    const owner = {};
    const a = await r.lookup.call(owner, { groupId: "app-0_1", coordinatorType: 1 });
    const b = await r.lookup.call(owner, { groupId: "app-0_1", coordinatorType: 1 });
    expect(b).toBe(a);
    expect(r.asked).toHaveLength(1);
  });

  test("entries are per coordinator type and id, and per cluster", async () => {
    const r = rig();
    const one = {};
    const two = {};
    await r.lookup.call(one, { groupId: "app", coordinatorType: 0 });
    await r.lookup.call(one, { groupId: "app", coordinatorType: 1 });
    await r.lookup.call(one, { groupId: "other", coordinatorType: 0 });
    await r.lookup.call(two, { groupId: "app", coordinatorType: 0 });
    expect(r.asked).toHaveLength(4);
  });

  test("an entry older than the time-to-live is looked up again (a moved coordinator is found)", async () => {
    const r = rig();
    const owner = {};
    const a = await r.lookup.call(owner, { groupId: "app" });
    r.advance(COORDINATOR_CACHE_TTL_MS - 1);
    expect(await r.lookup.call(owner, { groupId: "app" })).toBe(a);
    r.advance(1);
    const b = await r.lookup.call(owner, { groupId: "app" });
    expect(b).not.toBe(a);
    expect(b.nodeId).toBe(2);
  });

  test("a disconnected broker is not handed out", async () => {
    const r = rig();
    const owner = {};
    const a = await r.lookup.call(owner, { groupId: "app" });
    a.connected = false;
    const b = await r.lookup.call(owner, { groupId: "app" });
    expect(b).not.toBe(a);
    expect(r.asked).toHaveLength(2);
  });

  test("a failed lookup is not cached", async () => {
    let fail = true;
    const lookup = cachingCoordinatorLookup(async () => {
      if (fail) throw new Error("GROUP_COORDINATOR_NOT_AVAILABLE");
      return new FakeBroker(7);
    });
    const owner = {};
    await expect(lookup.call(owner, { groupId: "app" })).rejects.toThrow("NOT_AVAILABLE");
    fail = false;
    expect((await lookup.call(owner, { groupId: "app" })).nodeId).toBe(7);
  });

  test("it installs on kafkajs's Cluster once", () => {
    const Cluster = createRequire(__filename)("kafkajs/src/cluster/index.js") as {
      prototype: { findGroupCoordinator: unknown };
    };
    expect(installCoordinatorCache()).toBe(true);
    const installed = Cluster.prototype.findGroupCoordinator;
    expect(installCoordinatorCache()).toBe(true);
    expect(Cluster.prototype.findGroupCoordinator).toBe(installed);
  });
});
