/**
 * The response tracker's codes and times, kept as data (reference §4 "generic response codes", §7.1,
 * §7.3; seed 003 §3.1). Codes whose use here is confirmed by the reference's generic list: I0 (success),
 * E20 (cannot communicate with the device), E21 (no response from the device), E30 (time-out of a
 * future-dated command). What DUIS answers for a device that refuses a command, or for a request that
 * never reached dispatch, is [GAP]: those carry `GAP-…` placeholders, obviously not DUIS codes.
 */
import type { SmetsGeneration } from "../cos/records";

/** What a response code is chosen for. */
export interface TrackerCodes {
  /** The device or S1SP carried the command out (SUCCESS). */
  readonly success: string;
  /** A future-dated or cancellation command was accepted (ACCEPTED): the Service Response; the outcome follows as an alert. */
  readonly accepted: string;
  /** The device answered but a replacement failed (FAILURE; statuses in the ExecutionOutcome). [I] I0: the device responded. */
  readonly deviceFailure: string;
  /** The device refused the command: any other status (SIGNATURE_INVALID, COUNTER_REPLAYED, …). [GAP] */
  readonly deviceRefused: string;
  /** The CSP or S1SP reports it cannot reach the device (a status in `unreachableStatuses`). */
  readonly unreachable: string;
  /** No answer within the device time-out. */
  readonly noResponse: string;
  /** Never dispatched within the time-out (the CoS Party round trip did not finish). [GAP] */
  readonly notDispatched: string;
  /** Code of the alert raised when a future-dated command's execution alert never comes. */
  readonly futureDatedTimeout: string;
}

export interface TrackerConfig {
  readonly codes: TrackerCodes;
  /** Target Response Times (seed 003 §3.1): 35 s SMETS2+, 21 s SMETS1. */
  readonly targetMs: Readonly<Record<SmetsGeneration, number>>;
  /**
   * Device time-out, from receipt (or from dispatch for a request released from quarantine): after it
   * the request is answered `noResponse` (E21). Default: the target less one second, so that a
   * time-out answer itself meets the Target Response Time.
   */
  readonly deviceTimeoutMs: Readonly<Record<SmetsGeneration, number>>;
  /** How long after a future-dated command's execution time its alert may come before `futureDatedTimeout`. */
  readonly alertGraceMs: number;
  /**
   * How long a finished request is remembered, to recognise late and duplicate answers (after it, an
   * answer is `unknown`: still dropped). Memory: about rate × retention entries (200/s × 15 min ≈
   * 180 000); use the "lmdb" backend for much longer.
   */
  readonly retentionMs: number;
  /** How long a request held in quarantine (and not dispatched) is remembered before it is forgotten unanswered. */
  readonly quarantineRetentionMs: number;
  /** Wall-clock punctuation interval of the time-out check. */
  readonly punctuationMs: number;
  /** DeviceResponse statuses that mean the CSP or S1SP could not reach the device (→ `unreachable`). */
  readonly unreachableStatuses: readonly string[];
}

export const DEFAULT_TRACKER_CODES: TrackerCodes = Object.freeze({
  success: "I0",
  accepted: "I0",
  deviceFailure: "I0",
  deviceRefused: "GAP-device-refused",
  unreachable: "E20",
  noResponse: "E21",
  notDispatched: "GAP-not-dispatched",
  futureDatedTimeout: "E30",
});

export const DEFAULT_TRACKER_CONFIG: TrackerConfig = Object.freeze({
  codes: DEFAULT_TRACKER_CODES,
  targetMs: Object.freeze({ SMETS2: 35_000, SMETS1: 21_000 }),
  deviceTimeoutMs: Object.freeze({ SMETS2: 34_000, SMETS1: 20_000 }),
  alertGraceMs: 3_600_000,
  retentionMs: 900_000,
  quarantineRetentionMs: 30 * 86_400_000,
  punctuationMs: 250,
  unreachableStatuses: Object.freeze(["UNREACHABLE", "COMMS_FAILURE"]),
});

/** The default configuration with overrides, validated and frozen. */
export function trackerConfig(
  overrides: Partial<Omit<TrackerConfig, "codes">> & { codes?: Partial<TrackerCodes> } = {},
): TrackerConfig {
  const c: TrackerConfig = {
    ...DEFAULT_TRACKER_CONFIG,
    ...overrides,
    codes: Object.freeze({ ...DEFAULT_TRACKER_CODES, ...overrides.codes }),
  };
  for (const g of ["SMETS1", "SMETS2"] as const) {
    if (!(c.targetMs[g] > 0) || !(c.deviceTimeoutMs[g] > 0))
      throw new RangeError(`tracker: target and device time-out for ${g} must be > 0`);
  }
  for (const [k, v] of Object.entries(c.codes) as Array<[string, string]>)
    if (!/^[A-Z0-9-]{1,32}$/i.test(v))
      throw new RangeError(`tracker: code for ${k} must be 1–32 letters, digits or '-'`);
  if (
    !(c.punctuationMs > 0) ||
    !(c.retentionMs > 0) ||
    !(c.quarantineRetentionMs > 0) ||
    !(c.alertGraceMs >= 0)
  )
    throw new RangeError("tracker: punctuation, retention and alert grace must be positive");
  return Object.freeze(c);
}
