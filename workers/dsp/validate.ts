/**
 * One DUIS request through the worker-side DSP checks: parse (xml), structure (schema), signature,
 * signer role, user id, then the pure 6.23 certificate and date checks. Data in (the bytes received
 * and the time of receipt), a plain object out: it crosses the worker boundary as it is.
 */
import type { ErrorCode } from "../../processors/runtime/errors";
import type { EcdsaP256 } from "../crypto/ecdsa";
import type { ExecutionForm, Srv623Request } from "../duis/request";
import { DuisSchemaError, isSrv623, readDuisRequest } from "../duis/request";
import type { SmkiCertificate } from "../smki/certificate";
import { REMOTE_PARTY_ROLE } from "../smki/certificate";
import type { TrustStore } from "../smki/trust";
import type { XmlDocument, XmlLimits } from "../xml/parser";
import { DEFAULT_XML_LIMITS, XmlError, parseXml } from "../xml/parser";
import { canonicalDocument, verifyDuisSignature, type CanonicalDocument } from "../xmldsig/duis-signature";
import type { CheckFailure, DspCheckId, ExecutionDatePolicy } from "./checks";
import {
  checkReplacementCertificates,
  checkSignerRole,
  checkUserIdMatch,
  failure,
  replacementFacts,
} from "./checks";

/** What the topology needs of a certificate without its DER. */
export interface CertificateSummary {
  readonly serialHex: string;
  readonly issuer: string;
  readonly subject: string;
  readonly role: number | null;
  readonly entityId: string | null;
  readonly keyUsage: readonly string[];
  readonly subjectKeyId: string | null;
  readonly authorityKeyId: string | null;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** The 6.23 facts the topology's checks need (user, device, MPxN, dates, replacement set). */
export interface Srv623Summary {
  readonly requestId: string;
  readonly businessOriginatorId: string;
  readonly businessTargetId: string;
  readonly originatorCounter: string;
  readonly commandVariant: number;
  readonly schemaVersion: string;
  readonly form: ExecutionForm;
  readonly executionDateTime: string | null;
  readonly executionTime: number | null;
  readonly supplierFloorSeqNumber: string;
  readonly supplierPrepaymentTopUpFloorSeqNumber: string | null;
  readonly importMpxn: string;
  readonly applyTimeBasedCpvChecks: boolean;
  readonly replacementCertificates: {
    readonly digitalSigning: CertificateSummary | null;
    readonly keyAgreement: CertificateSummary | null;
    readonly keyAgreementTopUp: CertificateSummary | null;
  };
  /** Number of replacement certificates present (1–3), for replacement-count against the device type. */
  readonly replacementCount: number;
  readonly certificationPathCount: number;
}

export interface SignerSummary extends CertificateSummary {
  /** MPIDs in the xmlSign certificate's Common Name (mpid-in-cert). */
  readonly mpids: readonly string[];
}

/**
 * The outcome of the worker-side checks for one request. `ok` is true when every worker check passed.
 * `checkId`/`code`/`message` describe the first failure; `failures` lists every worker check that
 * failed, in check order (only the first when it is a gate check). `request` and `signer` are present
 * once the request is known to be an authentic 6.23 (after user-id-match).
 */
export interface DuisVerification {
  readonly ok: boolean;
  readonly checkId?: DspCheckId;
  readonly code?: ErrorCode;
  readonly message?: string;
  readonly failures?: readonly CheckFailure[];
  /** The SRV from the header, once the header has been read. */
  readonly srv?: string;
  readonly requestId?: string;
  readonly request?: Srv623Summary;
  readonly signer?: SignerSummary;
}

export interface DspValidationContext {
  readonly trust: TrustStore;
  readonly ecdsa: EcdsaP256;
  readonly xmlLimits?: XmlLimits;
  readonly executionDate?: ExecutionDatePolicy;
}

// Summaries are pure functions of a parsed certificate (itself cached per DER): built once per
// certificate and shared, frozen, by every request that names it.
const summaries = new WeakMap<SmkiCertificate, CertificateSummary>();
const signerSummaries = new WeakMap<SmkiCertificate, SignerSummary>();

export function summariseCertificate(c: SmkiCertificate): CertificateSummary {
  let summary = summaries.get(c);
  if (!summary) {
    summary = Object.freeze({
      serialHex: c.serialHex,
      issuer: c.issuer.rfc2253,
      subject: c.subject.rfc2253,
      role: c.role,
      entityId: c.entityId,
      keyUsage: Object.freeze([...c.keyUsage]),
      subjectKeyId: c.subjectKeyId,
      authorityKeyId: c.authorityKeyId,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
    });
    summaries.set(c, summary);
  }
  return summary;
}

/** summariseCertificate plus the MPIDs of an xmlSign certificate, once per certificate. */
export function summariseSigner(c: SmkiCertificate): SignerSummary {
  let summary = signerSummaries.get(c);
  if (!summary) {
    summary = Object.freeze({ ...summariseCertificate(c), mpids: Object.freeze([...c.mpids]) });
    signerSummaries.set(c, summary);
  }
  return summary;
}

function summarise623(r: Srv623Request, replacements: ReturnType<typeof replacementFacts>): Srv623Summary {
  // (Loops, not closures: tsx wraps every closure it creates at run time.)
  let digitalSigning: CertificateSummary | null = null;
  let keyAgreement: CertificateSummary | null = null;
  let keyAgreementTopUp: CertificateSummary | null = null;
  for (const x of replacements.replacements) {
    if (x.slot === "DigitalSigningCertificate") digitalSigning ??= summariseCertificate(x.cert);
    else if (x.slot === "KeyAgreementCertificate") keyAgreement ??= summariseCertificate(x.cert);
    else keyAgreementTopUp ??= summariseCertificate(x.cert);
  }
  const rc = r.replacementCertificates;
  return {
    requestId: r.header.requestId.text,
    businessOriginatorId: r.header.requestId.businessOriginatorId,
    businessTargetId: r.header.requestId.businessTargetId,
    originatorCounter: r.header.requestId.originatorCounter,
    commandVariant: r.header.commandVariant,
    schemaVersion: r.header.schemaVersion,
    form: r.form,
    executionDateTime: r.executionDateTime,
    executionTime: r.executionTime,
    supplierFloorSeqNumber: r.supplierFloorSeqNumber,
    supplierPrepaymentTopUpFloorSeqNumber: r.supplierPrepaymentTopUpFloorSeqNumber,
    importMpxn: r.importMpxn,
    applyTimeBasedCpvChecks: r.applyTimeBasedCpvChecks,
    replacementCertificates: { digitalSigning, keyAgreement, keyAgreementTopUp },
    replacementCount:
      (rc.digitalSigning !== null ? 1 : 0) +
      (rc.keyAgreement !== null ? 1 : 0) +
      (rc.keyAgreementTopUp !== null ? 1 : 0),
    certificationPathCount: r.certificationPathCertificates.length,
  };
}

function fail(f: CheckFailure, extra: Partial<DuisVerification> = {}): DuisVerification {
  return { ok: false, checkId: f.checkId, code: f.code, message: f.message, failures: [f], ...extra };
}

/**
 * Runs the worker-side checks on the bytes of one DUIS request received at `receivedAt` (epoch ms).
 * Never throws for bad input: every problem is a failed check.
 */
export function validateDuisRequest(
  bytes: Uint8Array,
  receivedAt: number,
  ctx: DspValidationContext,
): DuisVerification {
  return validateDuisRequestKeeping(bytes, receivedAt, ctx).verification;
}

/**
 * validateDuisRequest, also returning the parsed document and its canonical form once the signature
 * has been read (null before), so that the countersignature needs neither a second parse nor a
 * second canonicalisation.
 */
export function validateDuisRequestKeeping(
  bytes: Uint8Array,
  receivedAt: number,
  ctx: DspValidationContext,
): { readonly verification: DuisVerification; readonly canonical: CanonicalDocument | null } {
  let doc: XmlDocument;
  try {
    doc = parseXml(bytes, ctx.xmlLimits ?? DEFAULT_XML_LIMITS);
  } catch (err) {
    if (err instanceof XmlError) return { verification: fail(failure("xml", err.message)), canonical: null };
    throw err;
  }
  let request;
  try {
    request = readDuisRequest(doc);
  } catch (err) {
    if (err instanceof DuisSchemaError)
      return { verification: fail(failure("schema", err.message)), canonical: null };
    throw err;
  }
  const requestId = request.header.requestId.text;
  if (!isSrv623(request)) {
    return {
      verification: {
        ok: false,
        code: "ECOS_SRV_UNSUPPORTED",
        message: `SRV ${request.srv} is recognised but not processed here (only 6.23)`,
        srv: request.srv,
        requestId,
      },
      canonical: null,
    };
  }
  const canonical = canonicalDocument(doc);
  return { verification: validate623(request, requestId, canonical, receivedAt, ctx), canonical };
}

function validate623(
  request: Srv623Request,
  requestId: string,
  canonical: CanonicalDocument,
  receivedAt: number,
  ctx: DspValidationContext,
): DuisVerification {
  const ids = { srv: "6.23", requestId };
  const sig = verifyDuisSignature(canonical.doc, {
    trust: ctx.trust,
    ecdsa: ctx.ecdsa,
    at: receivedAt,
    index: 0,
    canonical,
  });
  if (!sig.ok) return fail(failure("signature", sig.reason), ids);
  const signer = sig.signer;
  const signerSummary = summariseSigner(signer);
  const roleFailure = checkSignerRole(signer, REMOTE_PARTY_ROLE.xmlSign);
  if (roleFailure) return fail(roleFailure, { ...ids, signer: signerSummary });
  const userFailure = checkUserIdMatch(request, signer);
  if (userFailure) return fail(userFailure, { ...ids, signer: signerSummary });

  const facts = replacementFacts(request);
  const failures = checkReplacementCertificates(request, facts, {
    trust: ctx.trust,
    ecdsa: ctx.ecdsa,
    receivedAt,
    ...(ctx.executionDate ? { executionDate: ctx.executionDate } : {}),
  });
  const summary = summarise623(request, facts);
  const first = failures[0];
  if (first)
    return {
      ok: false,
      checkId: first.checkId,
      code: first.code,
      message: first.message,
      failures,
      ...ids,
      request: summary,
      signer: signerSummary,
    };
  return { ok: true, ...ids, request: summary, signer: signerSummary };
}
