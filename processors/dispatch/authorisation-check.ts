/**
 * The DSP's check of a CoS Authorisation Response before anything is sent towards a device (reference
 * §5.4; seed 003 §3.3: "the DSP checks that response, runs its own anomaly detection, and then sends").
 * Pure: data in, a verdict out, so it can run inline or be moved onto the worker pool unchanged.
 *
 * In order (the first failure is the answer):
 *  1. the countersigned request parses as a DUIS 6.23 and names the same request, user and device as
 *     the record (a record field that disagrees with the signed bytes is named);
 *  2. the DSP's own countersignature (signature 1) verifies and is by a configured DSP certificate —
 *     what the CoS Party got is what the DSP sent;
 *  3. the CoS Party's countersignature (the last one, covering everything before it) verifies, by a
 *     configured XML-signing certificate of the CoS Party named in the record;
 *  4. SMETS2+: the pre-command is present, is the CoS Party's (transitionalCoS certificate), its
 *     signature verifies and it mirrors the request byte for byte (workers/gbcs/dispatch-check.ts);
 *     the record's counter equals the pre-command's originator counter; execution time and
 *     cancellation in the record equal the signed request's.
 * The counter's freshness against what was already dispatched needs state: the processor does it.
 */
import type { CosAuthorisation } from "../cos/records";
import type { EcdsaP256 } from "../../workers/crypto/ecdsa";
import { checkPreCommand } from "../../workers/gbcs/dispatch-check";
import { preCommandInputFor623 } from "../../workers/gbcs/from-duis";
import { isSrv623, readDuisRequest, type Srv623Request } from "../../workers/duis/request";
import { normaliseEui64, type SmkiCertificate } from "../../workers/smki/certificate";
import { TrustStore, type TrustStoreConfig } from "../../workers/smki/trust";
import { parseXml } from "../../workers/xml/parser";
import {
  canonicalDocument,
  signatureElements,
  verifyDuisSignature,
} from "../../workers/xmldsig/duis-signature";
import type { DispatchRefusal } from "./codes";

/** What dispatch trusts of one CoS Party. */
export interface CosPartyTrust {
  /** Entity ID of the CoS Party (originator of its pre-commands), EUI-64 with hyphens. */
  readonly entityId: string;
  /** Its transitionalCoS (role 5) digitalSignature certificate: the key in the devices' cell. */
  readonly preCommandCertificate: SmkiCertificate;
  /**
   * DER hashes (SmkiCertificate.derHash) of the certificates it countersigns requests with. [GAP] the
   * role of the CoS Party's XML-signing certificate is not public: the certificates are configured.
   */
  readonly xmlSigners: readonly string[];
}

export interface AuthorisationTrust {
  readonly ecos: CosPartyTrust;
  /** Absent: TCoS-authorised requests are refused (the TCoS Party is not configured or decommissioned). */
  readonly tcos?: CosPartyTrust;
  /** DER hashes of the DSP's own countersigning certificates (dSPXmlSign, OU 89). */
  readonly dspSigners: readonly string[];
  /** Paths of the countersigning certificates: SMKI anchors and known certificates. */
  readonly trust: TrustStoreConfig;
  readonly ecdsa: EcdsaP256;
}

export type AuthorisationVerdict =
  | { readonly ok: true; readonly request: Srv623Request; readonly counter: bigint | null }
  | { readonly ok: false; readonly refusal: DispatchRefusal; readonly detail: string };

const refuse = (refusal: DispatchRefusal, detail: string): AuthorisationVerdict => ({
  ok: false,
  refusal,
  detail,
});

const trustStores = new WeakMap<AuthorisationTrust, TrustStore>();
function trustStoreOf(t: AuthorisationTrust): TrustStore {
  let s = trustStores.get(t);
  if (!s) trustStores.set(t, (s = new TrustStore(t.trust, t.ecdsa)));
  return s;
}

/** Checks one CoS Authorisation Response. `at`: the time certificate paths must be valid at. */
export function checkAuthorisation(
  a: CosAuthorisation,
  t: AuthorisationTrust,
  at: number,
): AuthorisationVerdict {
  const party = a.cosParty === "ECOS" ? t.ecos : t.tcos;
  if (!party) return refuse("cos-party-unknown", `no ${a.cosParty} Party is configured`);

  // 1. The signed request, and the record's fields against it.
  let request: Srv623Request;
  let doc;
  try {
    doc = parseXml(a.countersigned);
    const r = readDuisRequest(doc, { maxSignatures: 3 });
    if (!isSrv623(r)) return refuse("authorisation-malformed", "the countersigned request is not a 6.23");
    request = r;
  } catch (err) {
    return refuse("authorisation-malformed", `countersigned request unreadable: ${(err as Error).message}`);
  }
  const id = request.header.requestId;
  const fields: Array<[string, boolean]> = [
    ["requestId", id.text === a.requestId],
    ["userId", normaliseEui64(id.businessOriginatorId) === normaliseEui64(a.userId)],
    ["deviceId", normaliseEui64(id.businessTargetId) === normaliseEui64(a.deviceId)],
    [
      "executionAt",
      request.form === "immediate"
        ? a.executionAt === null
        : a.executionAt === request.executionTime ||
          (request.form === "cancellation" && a.executionAt === null),
    ],
    ["cancellation", (request.form === "cancellation") === a.cancellation],
  ];
  const wrong = fields.filter(([, ok]) => !ok).map(([f]) => f);
  if (wrong.length > 0)
    return refuse("authorisation-fields", `record differs from the signed request in ${wrong.join(", ")}`);

  // 2–3. Countersignatures: the DSP's (1) and the CoS Party's (the last).
  const count = signatureElements(doc).length;
  if (count < 3)
    return refuse(
      "cos-countersignature",
      `${count} signatures: the User's, the DSP's and the CoS Party's expected`,
    );
  const canonical = canonicalDocument(doc);
  const trust = trustStoreOf(t);
  const dsp = verifyDuisSignature(doc, { trust, ecdsa: t.ecdsa, at, index: 1, canonical });
  if (!dsp.ok) return refuse("dsp-countersignature", `DSP countersignature: ${dsp.reason}`);
  if (!t.dspSigners.includes(dsp.signer.derHash))
    return refuse("dsp-countersignature", "DSP countersignature is not by a DSP certificate");
  const cos = verifyDuisSignature(doc, { trust, ecdsa: t.ecdsa, at, index: count - 1, canonical });
  if (!cos.ok) return refuse("cos-countersignature", `${a.cosParty} Party countersignature: ${cos.reason}`);
  if (!party.xmlSigners.includes(cos.signer.derHash))
    return refuse("cos-countersignature", `countersignature is not by the ${a.cosParty} Party`);

  if (a.smetsGeneration === "SMETS1") {
    // An S1SP gets the countersigned request; a pre-command would be a CoS Party fault, not used.
    if (a.preCommand !== null) return refuse("authorisation-fields", "record differs in preCommand (SMETS1)");
    return { ok: true, request, counter: null };
  }

  // 4. The pre-command.
  if (a.preCommand === null || a.counter === null)
    return refuse("pre-command-missing", "SMETS2+ authorisation without a pre-command and counter");
  const expected = preCommandInputFor623(request, party.entityId, 0n);
  const v = checkPreCommand(
    a.preCommand,
    { cosPartyId: expected.cosPartyId, deviceId: expected.deviceId, payload: expected.payload },
    party.preCommandCertificate,
    t.ecdsa,
  );
  if (!v.ok) {
    const refusal: DispatchRefusal =
      v.reason === "malformed"
        ? "pre-command-malformed"
        : v.reason === "wrongCosParty"
          ? "pre-command-cos-party"
          : v.reason === "signatureInvalid"
            ? "pre-command-signature"
            : "pre-command-mirror";
    return refuse(refusal, v.detail);
  }
  const counter = v.preCommand.header.originatorCounter;
  if (!/^\d{1,20}$/.test(a.counter) || BigInt(a.counter) !== counter)
    return refuse("authorisation-fields", `record differs from the pre-command in counter`);
  return { ok: true, request, counter };
}
