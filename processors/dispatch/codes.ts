/**
 * DUIS response codes for dispatch's refusals of a CoS Authorisation Response, kept as data (reference
 * §4 rows 19–20, §5.4, §7.1). Which code DUIS uses when the DSP refuses what a CoS Party authorised is
 * [GAP] (probably one of E062305/E062306 or E65–E71, whose meanings are not public here), so every
 * refusal carries a `GAP-dispatch-<kind>` placeholder that is obviously not a DUIS code: no guess
 * reaches a User unnoticed. A deployment overrides them with `dispatchResponseCodes`.
 */

/** Why dispatch refused an authorisation. */
export const DISPATCH_REFUSALS = [
  /** The record names a CoS Party that is not configured (e.g. TCoS after decommissioning). */
  "cos-party-unknown",
  /** The countersigned request does not parse as a DUIS 6.23. */
  "authorisation-malformed",
  /** A record field (requestId, userId, deviceId, executionAt, cancellation, counter) differs from the signed bytes. */
  "authorisation-fields",
  /** The DSP's own countersignature is missing, does not verify or is not by a DSP certificate. */
  "dsp-countersignature",
  /** The CoS Party's countersignature is missing, does not verify or is not by that CoS Party. */
  "cos-countersignature",
  /** SMETS2+ without a pre-command. */
  "pre-command-missing",
  /** The pre-command is not a strict CS02b General-Signing APDU (checkPreCommand: malformed). */
  "pre-command-malformed",
  /** Its originator is not the CoS Party's transitionalCoS certificate (checkPreCommand: wrongCosParty). */
  "pre-command-cos-party",
  /** The CoS Party's signature over it does not verify (checkPreCommand: signatureInvalid). */
  "pre-command-signature",
  /** It does not mirror the request byte for byte; the detail names the fields (checkPreCommand: mirrorMismatch). */
  "pre-command-mirror",
  /** Its counter is not above every counter already dispatched to the device (reference §5.4 item 5). */
  "counter-stale",
] as const;

export type DispatchRefusal = (typeof DISPATCH_REFUSALS)[number];

export type DispatchCodeTable = Readonly<Record<DispatchRefusal, string>>;

export const DEFAULT_DISPATCH_CODES: DispatchCodeTable = Object.freeze(
  Object.fromEntries(DISPATCH_REFUSALS.map((r) => [r, `GAP-dispatch-${r}`])) as Record<
    DispatchRefusal,
    string
  >,
);

/** The default table with some codes replaced (e.g. from a deployment's configuration). */
export function dispatchResponseCodes(
  overrides: Partial<Record<DispatchRefusal, string>> = {},
): DispatchCodeTable {
  for (const [k, v] of Object.entries(overrides)) {
    if (!(DISPATCH_REFUSALS as readonly string[]).includes(k)) throw new RangeError(`unknown refusal "${k}"`);
    if (typeof v !== "string" || !/^[A-Z0-9-]{1,32}$/i.test(v))
      throw new RangeError(`response code for "${k}" must be 1–32 letters, digits or '-'`);
  }
  return Object.freeze({ ...DEFAULT_DISPATCH_CODES, ...overrides });
}
