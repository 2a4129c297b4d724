/**
 * kafkajs 2.2.4 asks the cluster for the coordinator before every transactional request: a
 * FindCoordinator round trip ahead of each AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and
 * EndTxn, so an exactly-once commit costs about nine sequential round trips instead of five. Counted on
 * the 6.23 pipeline (`bench/cos-e2e.ts --rate 100 --seconds 20`): 5,895 FindCoordinator requests for
 * 1,557 transactions, the most frequent request of all.
 *
 * This wraps `Cluster.prototype.findGroupCoordinator` with a short-lived cache per (coordinator type,
 * id). A hit is used only while its broker is connected and younger than the time-to-live. A
 * coordinator that moved answers NOT_COORDINATOR, which kafkajs retries with back-off (about 9 s in
 * all by default); the cache forgets an entry after 2 s, so the retries find the new coordinator well
 * within that budget. Transaction semantics are untouched: only where a request is sent is cached.
 */
import { createRequire } from "node:module";

/** The coordinator lookup's arguments, as kafkajs passes them. */
export interface CoordinatorQuery {
  readonly groupId: string;
  readonly coordinatorType?: number;
}

/** What the lookup returns: a kafkajs Broker (only its connection state is read here). */
export interface CoordinatorBroker {
  isConnected(): boolean;
}

type Lookup<B extends CoordinatorBroker> = (this: unknown, q: CoordinatorQuery) => Promise<B>;

/** Default time-to-live of a cached coordinator. */
export const COORDINATOR_CACHE_TTL_MS = 2000;

/**
 * A caching version of `lookup`. The cache is kept per `this` (one per kafkajs Cluster, so clients do
 * not share entries). `now` is injectable for tests.
 */
export function cachingCoordinatorLookup<B extends CoordinatorBroker>(
  lookup: Lookup<B>,
  ttlMs = COORDINATOR_CACHE_TTL_MS,
  now: () => number = Date.now,
): Lookup<B> {
  const caches = new WeakMap<object, Map<string, { broker: B; until: number }>>();
  return async function (this: unknown, q: CoordinatorQuery): Promise<B> {
    const owner: object = typeof this === "object" && this !== null ? this : caches;
    let cache = caches.get(owner);
    if (!cache) {
      cache = new Map<string, { broker: B; until: number }>();
      caches.set(owner, cache);
    }
    const key = `${q.coordinatorType ?? 0}|${q.groupId}`;
    const hit = cache.get(key);
    if (hit && hit.until > now() && hit.broker.isConnected()) return hit.broker;
    cache.delete(key);
    const broker = await lookup.call(this, q);
    cache.set(key, { broker, until: now() + ttlMs });
    return broker;
  };
}

const INSTALLED = Symbol.for("ecos.kafkajs.coordinatorCache");

/** Installs the cache on kafkajs's Cluster class, once per process. Returns whether it is in place. */
export function installCoordinatorCache(): boolean {
  const require = createRequire(__filename);
  const Cluster = require("kafkajs/src/cluster/index.js") as {
    prototype: Record<string | symbol, unknown>;
  };
  const proto = Cluster.prototype;
  if (proto[INSTALLED]) return true;
  const original = proto["findGroupCoordinator"];
  if (typeof original !== "function") return false;
  proto["findGroupCoordinator"] = cachingCoordinatorLookup(original as Lookup<CoordinatorBroker>);
  proto[INSTALLED] = true;
  return true;
}
