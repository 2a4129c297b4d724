/**
 * The DSP's check of a CoS Authorisation Response's pre-command before dispatch (reference §5.4 items
 * 2–4): strict form, originator = the CoS Party whose certificate is configured, its signature, and
 * the byte-for-byte mirror of the request. The counter's high-water mark (item 5) needs state and is
 * `acceptDispatchedCounter` in processors/ecos-party/cos-counter.ts. Pure: runs inline or on the pool.
 */
import type { EcdsaP256 } from "../crypto/ecdsa";
import { publicKeyOf, type SmkiCertificate } from "../smki/certificate";
import { EcosError } from "../../processors/runtime/errors";
import {
  entityIdBytes,
  parsePreCommand,
  preCommandMismatches,
  ROLE_TRANSITIONAL_COS,
  verifyPreCommandSignature,
  type ParsedPreCommand,
  type PreCommandInput,
} from "./pre-command";

export type PreCommandRefusal = "malformed" | "wrongCosParty" | "signatureInvalid" | "mirrorMismatch";

export type PreCommandVerdict =
  | { readonly ok: true; readonly preCommand: ParsedPreCommand }
  | { readonly ok: false; readonly reason: PreCommandRefusal; readonly detail: string };

/**
 * Checks `bytes` against the request it should carry out (`expected`, from `preCommandInputFor623`
 * with the counter the pre-command claims) and the CoS Party certificate (role 5, digitalSignature)
 * whose key sits in the device's transitionalCoS cell.
 */
export function checkPreCommand(
  bytes: Uint8Array,
  expected: Omit<PreCommandInput, "counter">,
  cosParty: SmkiCertificate,
  ecdsa: EcdsaP256,
): PreCommandVerdict {
  let p: ParsedPreCommand;
  try {
    p = parsePreCommand(bytes);
  } catch (err) {
    if (err instanceof EcosError) return { ok: false, reason: "malformed", detail: err.message };
    throw err;
  }
  if (
    cosParty.role !== ROLE_TRANSITIONAL_COS ||
    !cosParty.keyUsage.includes("digitalSignature") ||
    cosParty.entityId === null ||
    !p.header.originator.equals(entityIdBytes(cosParty.entityId)) ||
    !p.header.originator.equals(entityIdBytes(expected.cosPartyId))
  )
    return { ok: false, reason: "wrongCosParty", detail: "originator is not the configured CoS Party" };
  if (!verifyPreCommandSignature(p, ecdsa, publicKeyOf(cosParty, ecdsa)))
    return { ok: false, reason: "signatureInvalid", detail: "CoS Party signature does not verify" };
  const diff = preCommandMismatches(p, { ...expected, counter: p.header.originatorCounter });
  if (diff.length > 0)
    return { ok: false, reason: "mirrorMismatch", detail: `differs from the request in ${diff.join(", ")}` };
  return { ok: true, preCommand: p };
}
