/**
 * The SMKI trust store the DSP validates against: configured trust anchors (root or OCA
 * certificates), the other known certificates (signers, intermediates — the SMKI repository topic),
 * and a revocation list of serial numbers. Certificate paths are validated per RFC 5280 as far as the
 * SMKI profile needs: name chaining (issuer DER = CA subject DER) with AKI = SKI where both are
 * present, the CA's ECDSA signature over the child, CA basic constraints and keyCertSign, path length,
 * validity at the given time, revocation, and no unknown critical extension.
 *
 * Costs are paid once: a child→issuer signature that verified is remembered (by both DER hashes), so
 * a path repeated across millions of requests costs a few map look-ups; times and revocation are
 * re-checked on every call because they change.
 */
import type { EcdsaP256 } from "../crypto/ecdsa";
import type { SmkiCertificate } from "./certificate";
import { matchKeyOfRfc2253, parseCertificateCached, publicKeyOf } from "./certificate";

export interface TrustStoreConfig {
  /** DER of the trusted roots or OCA certificates. A path ends at the first anchor it reaches. */
  readonly anchors: readonly Uint8Array[];
  /** DER of the other known certificates: users' signing certificates and intermediate CAs. */
  readonly certificates?: readonly Uint8Array[];
  /** Revoked serial numbers, hex (any case, leading zeros ignored). [GAP] CRL format not modelled. */
  readonly revokedSerials?: readonly string[];
  /** Longest chain accepted below the anchor (leaf + intermediates). Default 4. */
  readonly maxPathLength?: number;
  /** When set, an end-entity certificate must assert one of these policy OIDs. [GAP] production OIDs. */
  readonly requiredPolicies?: readonly string[];
}

export type PathResult =
  | { readonly ok: true; readonly chain: readonly SmkiCertificate[] }
  | { readonly ok: false; readonly reason: string };

export interface ValidateOptions {
  /** Time the certificates must be valid at (epoch ms); null skips validity-period checks. */
  readonly at: number | null;
  /** Extra CA certificates that may serve as intermediates (e.g. a 6.23's CertificationPathCertificates). */
  readonly intermediates?: readonly SmkiCertificate[];
}

function normaliseSerialHex(hex: string): string {
  return hex
    .trim()
    .replace(/^0x/i, "")
    .replace(/^0+(?=.)/, "")
    .toUpperCase();
}

export class TrustStore {
  private readonly anchors = new Map<string, SmkiCertificate>();
  private readonly bySubject = new Map<string, SmkiCertificate[]>();
  private readonly byIssuerSerial = new Map<string, SmkiCertificate>();
  private readonly revoked: Set<string>;
  private readonly maxPathLength: number;
  private readonly requiredPolicies: readonly string[] | undefined;
  /** Signatures that verified: child DER hash → the DER hashes of the issuers whose key verified it. */
  private readonly verifiedLinks = new Map<string, Set<string>>();
  /** Hex of each certificate's issuer DER (the bySubject key), computed once per certificate. */
  private readonly issuerKeys = new WeakMap<SmkiCertificate, string>();
  /** matchKeyOfRfc2253 of the X509IssuerName texts seen (bounded). */
  private readonly issuerNameKeys = new Map<string, string | null>();

  constructor(
    config: TrustStoreConfig,
    private readonly ecdsa: EcdsaP256,
  ) {
    for (const der of config.anchors) {
      const c = parseCertificateCached(der);
      this.anchors.set(c.derHash, c);
      this.index(c);
    }
    for (const der of config.certificates ?? []) this.index(parseCertificateCached(der));
    this.revoked = new Set((config.revokedSerials ?? []).map(normaliseSerialHex));
    this.maxPathLength = config.maxPathLength ?? 4;
    this.requiredPolicies = config.requiredPolicies;
  }

  private index(c: SmkiCertificate): void {
    const key = c.subject.der.toString("hex");
    const list = this.bySubject.get(key);
    if (!list) this.bySubject.set(key, [c]);
    else if (!list.some((x) => x.derHash === c.derHash)) list.push(c);
    this.byIssuerSerial.set(`${c.issuer.matchKey}|${c.serial.toString()}`, c);
  }

  /**
   * The certificate named by an XMLDSig X509IssuerSerial: issuer as an RFC 2253 string (compared
   * structurally, not as text — reference §2.7 rule 6) and the serial number.
   */
  findByIssuerSerial(issuerName: string, serial: bigint): SmkiCertificate | undefined {
    // Every request names its signer's issuer as text: its match key is remembered by that exact
    // text (bounded in number and length, so hostile names cannot grow it).
    let key = this.issuerNameKeys.get(issuerName);
    if (key === undefined) {
      key = matchKeyOfRfc2253(issuerName);
      if (issuerName.length <= 512) {
        if (this.issuerNameKeys.size >= 1024) this.issuerNameKeys.clear();
        this.issuerNameKeys.set(issuerName, key);
      }
    }
    if (key === null) return undefined;
    return this.byIssuerSerial.get(`${key}|${serial.toString()}`);
  }

  isAnchor(c: SmkiCertificate): boolean {
    return this.anchors.has(c.derHash);
  }

  isRevoked(c: SmkiCertificate): boolean {
    return this.revoked.has(c.serialHex);
  }

  /** Validates the path from `leaf` to a trust anchor. */
  validate(leaf: SmkiCertificate, options: ValidateOptions): PathResult {
    const at = options.at;
    const chain: SmkiCertificate[] = [leaf];
    if (
      this.requiredPolicies &&
      !leaf.isCa &&
      !leaf.policies.some((p) => this.requiredPolicies!.includes(p))
    ) {
      return { ok: false, reason: `certificate ${leaf.serialHex} asserts none of the required policies` };
    }
    let current = leaf;
    for (let depth = 0; ; depth++) {
      const problem = this.checkOne(current, at);
      if (problem) return { ok: false, reason: problem };
      if (this.isAnchor(current)) return { ok: true, chain };
      if (depth >= this.maxPathLength) return { ok: false, reason: "certification path too long" };
      const issuer = this.findIssuer(current, options.intermediates ?? []);
      if (!issuer)
        return {
          ok: false,
          reason: `no trusted issuer found for certificate ${current.serialHex} (${current.issuer.rfc2253})`,
        };
      if (!issuer.isCa || !issuer.keyUsage.includes("keyCertSign")) {
        return {
          ok: false,
          reason: `issuer ${issuer.subject.rfc2253} is not a CA allowed to sign certificates`,
        };
      }
      const pathLen = issuer.basicConstraints?.pathLength ?? null;
      const casBelow = chain.length - 1; // intermediates between issuer and leaf
      if (pathLen !== null && casBelow > pathLen)
        return { ok: false, reason: `path length constraint of ${issuer.subject.rfc2253} exceeded` };
      if (chain.includes(issuer)) return { ok: false, reason: "certification path loops" };
      chain.push(issuer);
      current = issuer;
    }
  }

  private checkOne(c: SmkiCertificate, at: number | null): string | null {
    if (at !== null && (at < c.notBefore || at > c.notAfter)) {
      return `certificate ${c.serialHex} (${c.subject.rfc2253 || "no subject"}) is not valid at ${new Date(at).toISOString()}`;
    }
    if (this.isRevoked(c)) return `certificate ${c.serialHex} is revoked`;
    if (c.unknownCriticalExtensions.length)
      return `certificate ${c.serialHex} has unknown critical extension ${c.unknownCriticalExtensions[0]}`;
    return null;
  }

  /** A CA whose subject is `c`'s issuer (and SKI its AKI) and whose key verifies `c`'s signature. */
  private findIssuer(
    c: SmkiCertificate,
    intermediates: readonly SmkiCertificate[],
  ): SmkiCertificate | undefined {
    const candidates: SmkiCertificate[] = [];
    for (const x of intermediates) if (x.subject.der.equals(c.issuer.der)) candidates.push(x);
    let issuerKey = this.issuerKeys.get(c);
    if (issuerKey === undefined) {
      issuerKey = c.issuer.der.toString("hex");
      this.issuerKeys.set(c, issuerKey);
    }
    for (const x of this.bySubject.get(issuerKey) ?? []) candidates.push(x);
    for (const ca of candidates) {
      if (c.authorityKeyId && ca.subjectKeyId && c.authorityKeyId !== ca.subjectKeyId) continue;
      if (this.signatureVerifies(c, ca)) return ca;
    }
    return undefined;
  }

  /** Whether `issuer`'s key verifies `child`'s signature; remembered once true. */
  signatureVerifies(child: SmkiCertificate, issuer: SmkiCertificate): boolean {
    const issuers = this.verifiedLinks.get(child.derHash);
    if (issuers?.has(issuer.derHash)) return true;
    const ok = this.ecdsa.verify(publicKeyOf(issuer, this.ecdsa), child.tbs, child.signature);
    if (ok) {
      if (issuers) issuers.add(issuer.derHash);
      else this.verifiedLinks.set(child.derHash, new Set([issuer.derHash]));
    }
    return ok;
  }
}
