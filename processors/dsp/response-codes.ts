/**
 * DUIS response codes of the DSP checks, kept as data (reference §0.1, §4, §7.1): several meanings are
 * [GAP] in the public record, so the table is configuration, overridable per deployment once the DUIS
 * code list is in hand. Codes confirmed by the reference are used as they are; the rest carry a
 * placeholder `GAP-<check>` that is obviously not a DUIS code, so no guess reaches a User unnoticed.
 */
import type { DspCheckId } from "../../workers/dsp/checks";

/** The outcome a response code is chosen for: a DSP check id, or one of these. */
export type DspOutcomeId = DspCheckId | "accepted" | "srv-unsupported" | "worker-failed";

export type ResponseCodeTable = Readonly<Record<DspOutcomeId, string>>;

export const DEFAULT_RESPONSE_CODES: ResponseCodeTable = Object.freeze({
  // I99: acknowledged, passed the DSP's checks and sent on (reference §4, generic codes [P]).
  accepted: "I99",
  xml: "GAP-xml", // [GAP] E40–E64 range likely (reference §4 row 1)
  schema: "GAP-schema", // [GAP]
  signature: "GAP-signature", // [GAP]
  "signer-role": "E65", // seed 003 §3.3: signer not xmlSign
  "user-id-match": "GAP-user-id-match", // [GAP]
  "user-role": "E2", // [P] role not allowed this service reference (E1/E3 for unknown user or status)
  "command-variant": "E12", // [P] request / command variant combination not valid
  "device-known": "E19", // [P] device does not exist
  "device-type": "E11", // [P] service reference incompatible with device type
  "device-status": "E5", // [P] device SMI status incompatible
  "mpxn-match": "GAP-mpxn-match", // [GAP] likely one of E062301–E062306
  "mpid-in-cert": "GAP-mpid-in-cert", // [GAP] an ECoS-era code (E062305/E062306 or E65–E71)
  "registration-supplier": "E4", // [P] not authorised for the device at the required date-time
  "replacement-count": "GAP-replacement-count",
  "replacement-role": "GAP-replacement-role",
  "key-usage": "GAP-key-usage",
  "prepayment-floor": "GAP-prepayment-floor",
  "oca-present": "GAP-oca-present",
  "oca-used": "GAP-oca-used",
  "cert-valid": "GAP-cert-valid",
  "execution-date": "GAP-execution-date",
  replay: "GAP-replay", // [GAP] reference §4 row 4
  "srv-unsupported": "E13", // [P] request type not valid (this service is not offered here)
  "worker-failed": "GAP-worker-failed", // an internal fault, answered rather than left unanswered
});

/** The default table with some codes replaced (e.g. from a deployment's configuration). */
export function responseCodes(overrides: Partial<Record<DspOutcomeId, string>> = {}): ResponseCodeTable {
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in DEFAULT_RESPONSE_CODES)) throw new RangeError(`unknown check or outcome id "${k}"`);
    if (typeof v !== "string" || !/^[A-Z0-9-]{1,32}$/.test(v))
      throw new RangeError(`response code for "${k}" must be 1–32 capitals, digits or '-'`);
  }
  return Object.freeze({ ...DEFAULT_RESPONSE_CODES, ...overrides });
}
