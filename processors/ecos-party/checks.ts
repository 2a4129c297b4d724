/**
 * The CoS Party's checks on a Countersigned CoS Service Request (seed 003 §3.3, SRPD clause 8.1/8.2;
 * reference §5.2–5.3), each with a stable id, and the response code and alert each refusal is
 * answered with — kept as data, because most of the codes are [GAP] in the public record (reference
 * §4, §7.1). Codes the DSP table already fixes for the same check are taken from it, so the DSP and
 * the CoS Parties cannot answer one failure with two codes.
 */
import type { CosParty } from "../cos/records";
import { DEFAULT_RESPONSE_CODES } from "../dsp/response-codes";

/** Check ids in the order a failure is reported (the first failure of this list wins). */
export const COS_PARTY_CHECK_IDS = [
  // Gates, on the worker pool: nothing after them can be trusted when one fails.
  "xml",
  "schema",
  "signature",
  "signer-role",
  "user-id-match",
  // The DSP's countersignature (signature number 1, role dSPXmlSign), on the worker pool.
  "dsp-countersignature",
  // The envelope (key, RequestID, User, device) says what the signed request says.
  "envelope-match",
  // TCoS Party after its decommission date: the transitional key is no longer used.
  "decommissioned",
  // Against the Smart Metering Inventory (the DSP's own device checks, repeated).
  "device-known",
  "device-type",
  "device-status",
  "mpxn-match",
  // The device's transitionalCoS cell must hold this party's credential (reference §5.2).
  "cos-credential",
  "replacement-count",
  // Pure checks of the replacement certificates and dates, on the worker pool.
  "replacement-role",
  "key-usage",
  "prepayment-floor",
  "oca-present",
  "oca-used",
  "cert-valid",
  "execution-date",
  // CoS Party anomaly detection: the User's own 1440-minute thresholds (N63, nothing quarantined).
  "anomaly-threshold",
  // The per-device counter reached 2^64 − 1: no pre-command can be issued any more.
  "counter-exhausted",
  // An internal fault (a crashed worker, a signing failure): answered rather than left unanswered.
  "worker-failed",
] as const;
export type CosPartyCheckId = (typeof COS_PARTY_CHECK_IDS)[number];

export interface CosPartyFailure {
  readonly checkId: CosPartyCheckId;
  readonly message: string;
}

export function cosPartyCheckRank(id: CosPartyCheckId): number {
  return COS_PARTY_CHECK_IDS.indexOf(id);
}

/** The failure that is reported: the earliest in check order. */
export function firstCosPartyFailure(failures: readonly CosPartyFailure[]): CosPartyFailure | undefined {
  let best: CosPartyFailure | undefined;
  for (const f of failures)
    if (!best || cosPartyCheckRank(f.checkId) < cosPartyCheckRank(best.checkId)) best = f;
  return best;
}

export type CosPartyResponseCodes = Readonly<Record<CosPartyCheckId, string>>;

/**
 * Default response codes. Shared check ids take the DSP's code (E65 for signer-role, E19/E11/E5 for
 * the device checks, placeholders elsewhere). The CoS-Party-only ones are [GAP]: DUIS 5.1 added
 * E062305/E062306 and E65–E71 for ECoS (reference §0.1) but their meanings could not be read, so
 * they carry `GAP-…` placeholders that no User would mistake for a DUIS code.
 */
export const DEFAULT_COS_PARTY_RESPONSE_CODES: CosPartyResponseCodes = Object.freeze({
  xml: DEFAULT_RESPONSE_CODES.xml,
  schema: DEFAULT_RESPONSE_CODES.schema,
  signature: DEFAULT_RESPONSE_CODES.signature,
  "signer-role": DEFAULT_RESPONSE_CODES["signer-role"],
  "user-id-match": DEFAULT_RESPONSE_CODES["user-id-match"],
  "dsp-countersignature": "GAP-dsp-countersignature",
  "envelope-match": "GAP-envelope-match",
  decommissioned: "GAP-tcos-decommissioned",
  "device-known": DEFAULT_RESPONSE_CODES["device-known"],
  "device-type": DEFAULT_RESPONSE_CODES["device-type"],
  "device-status": DEFAULT_RESPONSE_CODES["device-status"],
  "mpxn-match": DEFAULT_RESPONSE_CODES["mpxn-match"],
  "cos-credential": "GAP-cos-credential",
  "replacement-count": DEFAULT_RESPONSE_CODES["replacement-count"],
  "replacement-role": DEFAULT_RESPONSE_CODES["replacement-role"],
  "key-usage": DEFAULT_RESPONSE_CODES["key-usage"],
  "prepayment-floor": DEFAULT_RESPONSE_CODES["prepayment-floor"],
  "oca-present": DEFAULT_RESPONSE_CODES["oca-present"],
  "oca-used": DEFAULT_RESPONSE_CODES["oca-used"],
  "cert-valid": DEFAULT_RESPONSE_CODES["cert-valid"],
  "execution-date": DEFAULT_RESPONSE_CODES["execution-date"],
  "anomaly-threshold": "GAP-cos-party-anomaly",
  "counter-exhausted": "GAP-cos-counter-exhausted",
  "worker-failed": DEFAULT_RESPONSE_CODES["worker-failed"],
});

const CODE = /^[A-Z0-9-]{1,32}$/;

/** The default table with some codes replaced (e.g. once the DUIS code list is in hand). */
export function cosPartyResponseCodes(
  overrides: Partial<Record<CosPartyCheckId, string>> = {},
): CosPartyResponseCodes {
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in DEFAULT_COS_PARTY_RESPONSE_CODES)) throw new RangeError(`unknown CoS Party check id "${k}"`);
    if (typeof v !== "string" || !CODE.test(v))
      throw new RangeError(`response code for "${k}" must be 1–32 capitals, digits or '-'`);
  }
  return Object.freeze({ ...DEFAULT_COS_PARTY_RESPONSE_CODES, ...overrides });
}

/** The DCC alert a refusal raises to the User (reference §7.2). */
export interface CosPartyAlertSpec {
  /** DCC Alert Code, e.g. N63. */
  readonly alertCode: string;
  /** DUIS shape of the alert body, e.g. ECoSAlert. */
  readonly alertType: string;
}

/**
 * [B]/[I] Every ECoS Party refusal raises N63 (ECoSAlert, DUIS 5.1; its ECoSAlertCode carries the
 * response code). A TCoS Party refusal raises N26 (ChangeOfSupplier: "the CoS request failed at the
 * CoS Party", reference §7.2 [I]) — the pairing is unverified, so it is configuration too.
 */
export const DEFAULT_COS_PARTY_ALERTS: Readonly<Record<CosParty, CosPartyAlertSpec>> = Object.freeze({
  ECOS: Object.freeze({ alertCode: "N63", alertType: "ECoSAlert" }),
  TCOS: Object.freeze({ alertCode: "N26", alertType: "ChangeOfSupplier" }),
});
