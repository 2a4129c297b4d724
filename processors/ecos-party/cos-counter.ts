/**
 * The CoS Party's per-device counter: the originator counter of every Update Security Credentials
 * pre-command it signs for a device (GBCS grouping header and authorisingRemotePartySeqNumber, reference
 * §3.1–3.2). A device refuses a command whose counter is not above the last one it accepted from the
 * transitionalCoS cell, so the counter must be strictly increasing per device and never reused.
 *
 * Crash safety comes from where the reservation lives, not from this code: the store is a logged
 * `KeyValueStore` (a `ChangeLoggingStore`, compacted changelog topic), and the processor reserves the
 * counter here *before* it signs and forwards the pre-command, in the same record's processing. The
 * driver commits the changelog entry, the output and the input offset in one Kafka transaction, so
 * either both the reservation and the pre-command become visible or neither does. A crash before the
 * commit aborts both: the request is reprocessed against the restored store, and the counter that was
 * reserved but never emitted is handed out again, which is safe because no device ever saw it. A
 * counter that was emitted is always in the changelog, so it is never handed out again.
 *
 * Idempotence: the entry remembers which request took the counter. The same request seen again after a
 * committed transaction (an upstream redelivery) gets the same counter back (`fresh: false`), so one
 * request never yields two commands a device would accept: the device's anti-replay floor refuses the
 * second, and dispatch can drop it by `fresh`.
 */
import { EcosError } from "../runtime/errors";
import type { KeyValueStore } from "../runtime/stores";

/** Store name (a compatibility surface: renaming it is a migration). Keyed by device id. */
export const COS_COUNTER_STORE = "ecos-party-cos-counters";

/** Largest value of the 8-byte GBCS originator counter. */
export const MAX_COS_COUNTER = (1n << 64n) - 1n;

/** One device's entry. Decimal strings so the value survives any JSON/Avro serde unchanged. */
export interface CosCounterEntry {
  /** The last counter reserved for the device. */
  readonly counter: string;
  /** The request that reserved it. */
  readonly requestId: string;
}

export interface CosCounterReservation {
  readonly counter: bigint;
  /** false when this request already holds the device's latest counter (a redelivery). */
  readonly fresh: boolean;
}

/**
 * Reserves the next counter for `deviceId` on behalf of `requestId`. `floor` is the device's known
 * transitionalCoS anti-replay floor (e.g. the last TCoS counter of a migrated device, reference §5.4
 * item 5): the counter is always above it. Throws ECOS_COS_COUNTER_EXHAUSTED at 2^64 − 1.
 */
export function reserveCosCounter(
  store: KeyValueStore<CosCounterEntry>,
  deviceId: string,
  requestId: string,
  floor = 0n,
): CosCounterReservation {
  const entry = store.get(deviceId);
  const last = entry === undefined ? 0n : BigInt(entry.counter);
  if (entry !== undefined && entry.requestId === requestId && last > floor)
    return { counter: last, fresh: false };
  const next = (last > floor ? last : floor) + 1n;
  if (next > MAX_COS_COUNTER)
    throw new EcosError("ECOS_COS_COUNTER_EXHAUSTED", `CoS counter for ${deviceId} is exhausted`, {
      context: { deviceId, requestId },
    });
  store.put(deviceId, { counter: next.toString(), requestId });
  return { counter: next, fresh: true };
}

/** The last counter reserved for a device (0 when none). */
export function lastCosCounter(store: KeyValueStore<CosCounterEntry>, deviceId: string): bigint {
  const entry = store.get(deviceId);
  return entry === undefined ? 0n : BigInt(entry.counter);
}

/**
 * The dispatch side of the same rule (reference §5.4 item 5): a pre-command is released only if its
 * counter is strictly above every counter already dispatched to the device. Records it when accepted.
 * Returns false (and records nothing) for a replayed or stale counter.
 */
export function acceptDispatchedCounter(
  store: KeyValueStore<CosCounterEntry>,
  deviceId: string,
  requestId: string,
  counter: bigint,
): boolean {
  if (counter <= lastCosCounter(store, deviceId) || counter > MAX_COS_COUNTER) return false;
  store.put(deviceId, { counter: counter.toString(), requestId });
  return true;
}
