/**
 * The DSP checks on a DUIS 6.23 that need nothing but the request, the SMKI trust store and a clock —
 * the ones the worker pool runs. Each has a stable check id (issue 3); the response code of each is
 * kept as data by the topology (several are [GAP] in the reference, §4).
 *
 * Check order (SRPD order as the reference gives it, §4 and §0.1). Checks marked T need reference
 * data and are the topology's; the rest run here:
 *   xml, schema, signature, signer-role, user-id-match,
 *   T user-role, T command-variant, T device-known, T device-type, T device-status, T mpxn-match,
 *   T mpid-in-cert, T registration-supplier, T replacement-count,
 *   replacement-role, key-usage, prepayment-floor, oca-present, oca-used, cert-valid, execution-date,
 *   T replay.
 * A failure of one of the first five stops the request (nothing after it can be trusted). Failures of
 * the later pure checks are all reported, in order, so the topology can pick the first failure of the
 * whole list once it has run its own checks.
 */
import type { ErrorCode } from "../../processors/runtime/errors";
import type { EcdsaP256 } from "../crypto/ecdsa";
import type { Srv623Request } from "../duis/request";
import { CANCELLATION_EXECUTION_TIME } from "../duis/request";
import type { SmkiCertificate } from "../smki/certificate";
import { REMOTE_PARTY_ROLE, normaliseEui64, parseCertificateCached } from "../smki/certificate";
import type { TrustStore } from "../smki/trust";

export const DSP_CHECK_IDS = [
  "xml",
  "schema",
  "signature",
  "signer-role",
  "user-id-match",
  "user-role",
  "command-variant",
  "device-known",
  "device-type",
  "device-status",
  "mpxn-match",
  "mpid-in-cert",
  "registration-supplier",
  "replacement-count",
  "replacement-role",
  "key-usage",
  "prepayment-floor",
  "oca-present",
  "oca-used",
  "cert-valid",
  "execution-date",
  "replay",
] as const;
export type DspCheckId = (typeof DSP_CHECK_IDS)[number];

/** The checks this module (and so the worker pool) runs, in order. */
export const WORKER_CHECK_IDS: readonly DspCheckId[] = [
  "xml",
  "schema",
  "signature",
  "signer-role",
  "user-id-match",
  "replacement-role",
  "key-usage",
  "prepayment-floor",
  "oca-present",
  "oca-used",
  "cert-valid",
  "execution-date",
];

/** A failure of one of these ends validation: later checks would read untrusted data. */
export const GATE_CHECK_IDS: readonly DspCheckId[] = [
  "xml",
  "schema",
  "signature",
  "signer-role",
  "user-id-match",
];

/** The error code each worker check reports under. */
export const CHECK_ERROR_CODE: Readonly<Partial<Record<DspCheckId, ErrorCode>>> = {
  xml: "ECOS_DUIS_MALFORMED",
  schema: "ECOS_DUIS_SCHEMA_INVALID",
  signature: "ECOS_SIGNATURE_INVALID",
  "signer-role": "ECOS_CERTIFICATE_INVALID",
  "user-id-match": "ECOS_CERTIFICATE_INVALID",
  "replacement-role": "ECOS_CERTIFICATE_INVALID",
  "key-usage": "ECOS_CERTIFICATE_INVALID",
  "prepayment-floor": "ECOS_DUIS_SCHEMA_INVALID",
  "oca-present": "ECOS_CERTIFICATE_INVALID",
  "oca-used": "ECOS_CERTIFICATE_INVALID",
  "cert-valid": "ECOS_CERTIFICATE_INVALID",
  "execution-date": "ECOS_DUIS_SCHEMA_INVALID",
};

export interface CheckFailure {
  readonly checkId: DspCheckId;
  readonly code: ErrorCode;
  readonly message: string;
}

export function failure(checkId: DspCheckId, message: string): CheckFailure {
  return { checkId, code: CHECK_ERROR_CODE[checkId] ?? "ECOS_PROCESS_FAILED", message };
}

/** Position of a check in the SRPD order: the smaller, the earlier it is reported. */
export function checkRank(id: DspCheckId): number {
  return DSP_CHECK_IDS.indexOf(id);
}

/** The first failure of a list in check order (for merging worker and topology failures). */
export function firstFailure<T extends { checkId: DspCheckId }>(failures: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const f of failures) if (!best || checkRank(f.checkId) < checkRank(best.checkId)) best = f;
  return best;
}

export interface ExecutionDatePolicy {
  /**
   * Latest execution time accepted, as days after receipt. [GAP] DUIS future-dating horizon for 6.23
   * is not in the reference; 365 is a placeholder to be confirmed.
   */
  readonly maxFutureDays: number;
}

export const DEFAULT_EXECUTION_DATE_POLICY: ExecutionDatePolicy = Object.freeze({ maxFutureDays: 365 });

/** signer-role: the signing certificate has Remote Party Role xmlSign (OU 87, role 135) — E65. */
export function checkSignerRole(
  signer: SmkiCertificate,
  role: number = REMOTE_PARTY_ROLE.xmlSign,
): CheckFailure | null {
  if (signer.role === role) return null;
  return failure(
    "signer-role",
    `signer certificate has role ${signer.organisationalUnit ?? "(no OU)"}, not ${role.toString(16).toUpperCase()} (xmlSign)`,
  );
}

/** user-id-match: BusinessOriginatorID = the signer certificate's entity id (x500UniqueIdentifier). */
export function checkUserIdMatch(
  request: Srv623Request | { header: Srv623Request["header"] },
  signer: SmkiCertificate,
): CheckFailure | null {
  const user = normaliseEui64(request.header.requestId.businessOriginatorId);
  if (signer.entityId !== null && user === signer.entityId) return null;
  return failure(
    "user-id-match",
    `BusinessOriginatorID ${request.header.requestId.businessOriginatorId} is not the signer's entity id ${signer.entityId ?? "(none)"}`,
  );
}

interface NamedCertificate {
  readonly slot: "DigitalSigningCertificate" | "KeyAgreementCertificate" | "KeyAgreementTopUpCertificate";
  readonly cert: SmkiCertificate;
}

export interface ReplacementFacts {
  readonly replacements: readonly NamedCertificate[];
  readonly path: readonly SmkiCertificate[];
  /** Certificates that could not be decoded, by slot: reported by cert-valid. */
  readonly undecodable: readonly string[];
}

/** Decodes the request's certificates (through the DER-hash cache); decoding failures are kept as data. */
export function replacementFacts(request: Srv623Request): ReplacementFacts {
  const replacements: NamedCertificate[] = [];
  const undecodable: string[] = [];
  const rc = request.replacementCertificates;
  addReplacement(replacements, undecodable, "DigitalSigningCertificate", rc.digitalSigning);
  addReplacement(replacements, undecodable, "KeyAgreementCertificate", rc.keyAgreement);
  addReplacement(replacements, undecodable, "KeyAgreementTopUpCertificate", rc.keyAgreementTopUp);
  const path: SmkiCertificate[] = [];
  const ders = request.certificationPathCertificates;
  for (let i = 0; i < ders.length; i++) {
    try {
      path.push(parseCertificateCached(ders[i]!));
    } catch (err) {
      undecodable.push(`Certificate[${i + 1}]: ${(err as Error).message}`);
    }
  }
  return { replacements, path, undecodable };
}

// (Plain functions and loops on this path, not closures: tsx wraps every closure it creates at run
// time, which costs on every request.)
function addReplacement(
  replacements: NamedCertificate[],
  undecodable: string[],
  slot: NamedCertificate["slot"],
  der: Buffer | null,
): void {
  if (!der) return;
  try {
    replacements.push({ slot, cert: parseCertificateCached(der) });
  } catch (err) {
    undecodable.push(`${slot}: ${(err as Error).message}`);
  }
}

/** The CertificationPathCertificates entry that issued `cert` (subject = issuer, SKI = AKI when both). */
function includedIssuerOf(
  path: readonly SmkiCertificate[],
  cert: SmkiCertificate,
): SmkiCertificate | undefined {
  for (const ca of path)
    if (
      ca.subject.der.equals(cert.issuer.der) &&
      (!cert.authorityKeyId || !ca.subjectKeyId || ca.subjectKeyId === cert.authorityKeyId)
    )
      return ca;
  return undefined;
}

export interface ReplacementCheckContext {
  readonly trust: TrustStore;
  readonly ecdsa: EcdsaP256;
  /** Time of receipt (epoch ms). */
  readonly receivedAt: number;
  readonly executionDate?: ExecutionDatePolicy;
}

/**
 * replacement-role … execution-date, in order; every failure is returned (the caller takes the first
 * of the merged list).
 */
export function checkReplacementCertificates(
  request: Srv623Request,
  facts: ReplacementFacts,
  ctx: ReplacementCheckContext,
): CheckFailure[] {
  const out: CheckFailure[] = [];
  // replacement-role: every replacement certificate has the supplier role (OU 02).
  for (const { slot, cert } of facts.replacements) {
    if (cert.role !== REMOTE_PARTY_ROLE.supplier) {
      out.push(
        failure(
          "replacement-role",
          `${slot} has role ${cert.organisationalUnit ?? "(no OU)"}, not 02 (supplier)`,
        ),
      );
      break;
    }
  }
  // key-usage: DS → digitalSignature; KA and KA top-up → keyAgreement (each exactly that use).
  for (const { slot, cert } of facts.replacements) {
    const want = slot === "DigitalSigningCertificate" ? "digitalSignature" : "keyAgreement";
    const other = want === "digitalSignature" ? "keyAgreement" : "digitalSignature";
    if (!cert.keyUsage.includes(want) || cert.keyUsage.includes(other)) {
      out.push(
        failure("key-usage", `${slot} has key usage ${cert.keyUsage.join("+") || "(none)"}, not ${want}`),
      );
      break;
    }
  }
  // prepayment-floor: replacing the top-up KA key needs the new top-up floor (seed 003, §3.3 item 9).
  if (
    request.replacementCertificates.keyAgreementTopUp &&
    request.supplierPrepaymentTopUpFloorSeqNumber === null
  ) {
    out.push(
      failure(
        "prepayment-floor",
        "KeyAgreementTopUpCertificate is replaced but SupplierPrepaymentTopUpFloorSeqNumber is absent",
      ),
    );
  }
  // oca-present: each replacement certificate's issuing OCA certificate is in CertificationPathCertificates
  // (or it is issued directly by a trusted root the device already holds).
  for (const { slot, cert } of facts.replacements) {
    if (!includedIssuerOf(facts.path, cert) && !issuedByTrustedRoot(cert, ctx.trust)) {
      out.push(
        failure(
          "oca-present",
          `the issuing OCA certificate of ${slot} (${cert.issuer.rfc2253}, AKI ${cert.authorityKeyId ?? "none"}) is not included`,
        ),
      );
      break;
    }
  }
  // oca-used: each included OCA certificate issued at least one of the replacement certificates.
  for (const ca of facts.path) {
    let used = false;
    for (const r of facts.replacements) if (includedIssuerOf(facts.path, r.cert) === ca) used = true;
    if (!used) {
      out.push(
        failure(
          "oca-used",
          `CertificationPathCertificates holds ${ca.subject.rfc2253} (SKI ${ca.subjectKeyId ?? "none"}), which issued none of the replacements`,
        ),
      );
      break;
    }
  }
  // cert-valid: decodable, chained to a trust anchor through the included OCA certificates, not
  // revoked, and inside the validity period when ApplyTimeBasedCPVChecks is true.
  const at = request.applyTimeBasedCpvChecks ? ctx.receivedAt : null;
  if (facts.undecodable.length) {
    out.push(failure("cert-valid", `certificate cannot be decoded: ${facts.undecodable[0]!}`));
  } else {
    const certs: SmkiCertificate[] = [];
    for (const r of facts.replacements) certs.push(r.cert);
    for (const c of facts.path) certs.push(c);
    const options = { at, intermediates: facts.path };
    for (const c of certs) {
      const path = ctx.trust.validate(c, options);
      if (!path.ok) {
        out.push(failure("cert-valid", path.reason));
        break;
      }
    }
  }
  // execution-date: future (after receipt) and within the horizon, or the cancellation sentinel.
  if (request.executionTime !== null && request.executionTime !== CANCELLATION_EXECUTION_TIME) {
    const policy = ctx.executionDate ?? DEFAULT_EXECUTION_DATE_POLICY;
    if (request.executionTime <= ctx.receivedAt) {
      out.push(
        failure(
          "execution-date",
          `ExecutionDateTime ${request.executionDateTime ?? ""} is not after the time of receipt`,
        ),
      );
    } else if (request.executionTime > ctx.receivedAt + policy.maxFutureDays * 86_400_000) {
      out.push(
        failure(
          "execution-date",
          `ExecutionDateTime ${request.executionDateTime ?? ""} is more than ${policy.maxFutureDays} days ahead`,
        ),
      );
    }
  }
  return out;
}

function issuedByTrustedRoot(cert: SmkiCertificate, trust: TrustStore): boolean {
  const path = trust.validate(cert, { at: null });
  return path.ok && path.chain.length === 2 && path.chain[1]!.subject.der.equals(path.chain[1]!.issuer.der);
}
