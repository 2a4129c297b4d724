/**
 * A deterministic test PKI following the SMKI Organisation Certificate profile (reference §1.2), and
 * a DUIS 6.23 request builder. For tests, the benchmark and the load generator only.
 *
 * Keys are derived from a seed string (SHA-256 of seed/label, reduced mod n), certificates are signed
 * with @noble/curves' RFC 6979 deterministic ECDSA, so the same seed always gives byte-identical
 * certificates. Private keys live in memory only: never write them to a file or a log.
 */
import * as crypto from "node:crypto";
import type { EcdsaP256, EcPrivateKey } from "../crypto/ecdsa";
import { P256_N, nobleEcdsa, opensslEcdsa } from "../crypto/ecdsa";
import type { KeyUsage, SmkiCertificate } from "../smki/certificate";
import { KEY_USAGE_BITS, OID, parseCertificate } from "../smki/certificate";
import type { TrustStoreConfig } from "../smki/trust";
import type { XmlSigningKey } from "../xmldsig/duis-signature";
import {
  bitString,
  bool,
  ctx,
  ecdsaRawToDer,
  integer,
  octets,
  oid,
  printable,
  seq,
  set,
  time,
  utf8,
} from "./der-writer";

/** Deterministic P-256 scalar for `label` under `seed`. */
export function deriveScalar(seed: string, label: string): Buffer {
  const h = BigInt("0x" + crypto.createHash("sha256").update(`${seed}/${label}`).digest("hex"));
  const d = (h % (P256_N - 1n)) + 1n;
  return Buffer.from(d.toString(16).padStart(64, "0"), "hex");
}

export interface NameSpec {
  /** Remote party role as written in the OU (e.g. "87"); omitted when undefined. */
  readonly ou?: string;
  readonly cn?: string;
  /** Entity ID (EUI-64, with or without dashes) for x500UniqueIdentifier. */
  readonly entityId?: string;
  /** CA certificates use PrintableString, end-entity ones UTF8String (as ZAZ1). */
  readonly printable?: boolean;
  /** Encoded order of the attributes. Default: EE "cn,ou,uid"; CA (printable) "ou,cn". */
  readonly order?: readonly ("cn" | "ou" | "uid")[];
}

export function encodeName(n: NameSpec): Buffer {
  const str = n.printable ? printable : utf8;
  const order = n.order ?? (n.printable ? ["ou", "cn", "uid"] : ["cn", "ou", "uid"]);
  const rdns: Buffer[] = [];
  for (const part of order) {
    if (part === "cn" && n.cn !== undefined) rdns.push(set(seq(oid(OID.commonName), str(n.cn))));
    if (part === "ou" && n.ou !== undefined) rdns.push(set(seq(oid(OID.organisationalUnit), str(n.ou))));
    if (part === "uid" && n.entityId !== undefined) {
      const eui = Buffer.from(n.entityId.replace(/-/g, ""), "hex");
      rdns.push(set(seq(oid(OID.x500UniqueIdentifier), bitString(eui))));
    }
  }
  return seq(...rdns);
}

/** SMKI SKI rule: 0x4 nibble + the low 60 bits of SHA-1 over the uncompressed point (RFC 5280 method 2). */
export function smkiKeyIdentifier(point: Uint8Array): Buffer {
  const h = crypto.createHash("sha1").update(point).digest().subarray(12);
  const out = Buffer.from(h);
  out[0] = (out[0]! & 0x0f) | 0x40;
  return out;
}

export interface CertificateSpec {
  readonly serial: bigint;
  readonly issuer: NameSpec;
  readonly subject: NameSpec;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicPoint: Uint8Array;
  readonly keyUsage: readonly KeyUsage[];
  /** Basic constraints CA:TRUE with this path length (null = none); absent for end entities. */
  readonly ca?: { readonly pathLength: number | null };
  /** Default: the SMKI rule over publicPoint. */
  readonly subjectKeyId?: Buffer | null;
  /** Default: the issuer's SKI when issuerPoint is given. */
  readonly authorityKeyId?: Buffer | null;
  readonly issuerPoint?: Uint8Array;
  readonly policies?: readonly string[];
  readonly extraExtensions?: readonly {
    readonly oid: string;
    readonly critical: boolean;
    readonly value: Buffer;
  }[];
  /** The key that signs the certificate, and the implementation to sign with (default noble, deterministic). */
  readonly signingKey: Uint8Array;
  readonly signWith?: EcdsaP256;
}

/** The ZAZ1 Organisation Certificate policy (reference §1.2). [GAP] production OIDs differ. */
export const TEST_POLICY_OID = "1.2.826.0.1.8641679.1.2.1.4";

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function keyUsageValue(usages: readonly KeyUsage[]): Buffer {
  let bits = 0;
  let highest = -1;
  for (const u of usages) {
    const i = KEY_USAGE_BITS.indexOf(u);
    bits |= 1 << (15 - i);
    highest = Math.max(highest, i);
  }
  const nBytes = highest < 8 ? 1 : 2;
  const bytes = nBytes === 1 ? Buffer.from([bits >> 8]) : Buffer.from([bits >> 8, bits & 0xff]);
  const unused = nBytes * 8 - (highest + 1);
  return bitString(bytes, unused);
}

/** Builds and signs a certificate; returns its DER. */
export function buildCertificate(spec: CertificateSpec): Buffer {
  const ecdsaSha256 = seq(oid(OID.ecdsaWithSha256));
  const spki = seq(seq(oid(OID.ecPublicKey), oid(OID.prime256v1)), bitString(spec.publicPoint));
  const exts: Buffer[] = [];
  exts.push(extension(OID.keyUsage, true, keyUsageValue(spec.keyUsage)));
  if (spec.ca) {
    const inner =
      spec.ca.pathLength === null ? seq(bool(true)) : seq(bool(true), integer(BigInt(spec.ca.pathLength)));
    exts.push(extension(OID.basicConstraints, true, inner));
  }
  const policies = spec.policies ?? [TEST_POLICY_OID];
  if (policies.length)
    exts.push(extension(OID.certificatePolicies, true, seq(...policies.map((p) => seq(oid(p))))));
  const ski = spec.subjectKeyId === undefined ? smkiKeyIdentifier(spec.publicPoint) : spec.subjectKeyId;
  if (ski) exts.push(extension(OID.subjectKeyIdentifier, false, octets(ski)));
  const aki =
    spec.authorityKeyId === undefined
      ? spec.issuerPoint
        ? smkiKeyIdentifier(spec.issuerPoint)
        : null
      : spec.authorityKeyId;
  if (aki) exts.push(extension(OID.authorityKeyIdentifier, false, seq(ctx(0, aki, false))));
  for (const e of spec.extraExtensions ?? []) exts.push(extension(e.oid, e.critical, e.value));
  const tbs = seq(
    ctx(0, integer(2n)),
    integer(spec.serial),
    ecdsaSha256,
    encodeName(spec.issuer),
    seq(time(spec.notBefore), time(spec.notAfter)),
    encodeName(spec.subject),
    spki,
    ctx(3, seq(...exts)),
  );
  const signer = spec.signWith ?? nobleEcdsa;
  const raw = signer.sign(signer.importPrivateKey(spec.signingKey), tbs);
  return seq(tbs, ecdsaSha256, bitString(ecdsaRawToDer(raw)));
}

/** A party of the test PKI: its certificate and (in memory only) its private key. */
export interface TestCredential {
  readonly der: Buffer;
  readonly cert: SmkiCertificate;
  readonly scalar: Buffer;
  readonly point: Buffer;
  /** A signing key for DUIS documents with the given implementation (default OpenSSL). */
  signingKey(ecdsa?: EcdsaP256): XmlSigningKey;
}

export interface TestPki {
  readonly seed: string;
  readonly root: TestCredential;
  readonly oca: TestCredential;
  /** Issues an end-entity certificate under the OCA. */
  issue(
    label: string,
    subject: NameSpec,
    keyUsage: readonly KeyUsage[],
    overrides?: Partial<CertificateSpec>,
  ): TestCredential;
  /** Issues a CA certificate under the root (another OCA). */
  issueOca(label: string, subject: NameSpec, overrides?: Partial<CertificateSpec>): TestCredential;
  /** Trust configuration with the root as the anchor and the given certificates as known ones. */
  trust(certificates: readonly TestCredential[], revokedSerials?: readonly string[]): TrustStoreConfig;
}

export const TEST_VALIDITY = {
  notBefore: new Date(Date.UTC(2020, 0, 1)),
  notAfter: new Date(Date.UTC(2045, 0, 1)),
} as const;

function serialFor(seed: string, label: string): bigint {
  // 16-byte positive serials, as the SMKI issues.
  const h = crypto.createHash("sha256").update(`serial/${seed}/${label}`).digest().subarray(0, 16);
  h[0] = (h[0]! & 0x7f) | 0x10;
  return BigInt("0x" + h.toString("hex"));
}

function credential(der: Buffer, scalar: Buffer): TestCredential {
  const cert = parseCertificate(der);
  const keys = new Map<string, EcPrivateKey>();
  return {
    der,
    cert,
    scalar,
    point: Buffer.from(cert.publicKeyPoint),
    signingKey(ecdsa: EcdsaP256 = opensslEcdsa): XmlSigningKey {
      let k = keys.get(ecdsa.name);
      if (!k) {
        k = ecdsa.importPrivateKey(scalar);
        keys.set(ecdsa.name, k);
      }
      return { ecdsa, privateKey: k, certificate: cert };
    },
  };
}

/** Builds the root ("ZA", OU 00) and OCA ("Z1", OU 07) of a test PKI from a seed. */
export function buildTestPki(seed = "ecos-stream-test-pki"): TestPki {
  const pointOf = (scalar: Buffer): Buffer =>
    Buffer.from(nobleEcdsa.publicPointOf(nobleEcdsa.importPrivateKey(scalar)));
  const rootScalar = deriveScalar(seed, "root");
  const rootPoint = pointOf(rootScalar);
  const rootName: NameSpec = { ou: "00", cn: "ZA", printable: true };
  const rootDer = buildCertificate({
    serial: serialFor(seed, "root"),
    issuer: rootName,
    subject: rootName,
    ...TEST_VALIDITY,
    publicPoint: rootPoint,
    keyUsage: ["keyCertSign", "cRLSign"],
    ca: { pathLength: null },
    issuerPoint: rootPoint,
    signingKey: rootScalar,
  });
  const root = credential(rootDer, rootScalar);
  const ocaName: NameSpec = { ou: "07", cn: "Z1", printable: true };
  const issueOca = (
    label: string,
    subject: NameSpec,
    overrides: Partial<CertificateSpec> = {},
  ): TestCredential => {
    const scalar = deriveScalar(seed, label);
    const der = buildCertificate({
      serial: serialFor(seed, label),
      issuer: rootName,
      subject,
      ...TEST_VALIDITY,
      publicPoint: pointOf(scalar),
      keyUsage: ["keyCertSign", "cRLSign"],
      ca: { pathLength: 0 },
      issuerPoint: rootPoint,
      signingKey: rootScalar,
      ...overrides,
    });
    return credential(der, scalar);
  };
  const oca = issueOca("oca", ocaName);
  const issue = (
    label: string,
    subject: NameSpec,
    keyUsage: readonly KeyUsage[],
    overrides: Partial<CertificateSpec> = {},
  ): TestCredential => {
    const scalar = deriveScalar(seed, label);
    const der = buildCertificate({
      serial: serialFor(seed, label),
      issuer: ocaName,
      subject,
      ...TEST_VALIDITY,
      publicPoint: pointOf(scalar),
      keyUsage,
      issuerPoint: oca.point,
      signingKey: oca.scalar,
      ...overrides,
    });
    return credential(der, scalar);
  };
  return {
    seed,
    root,
    oca,
    issue,
    issueOca,
    trust: (certificates, revokedSerials = []) => ({
      anchors: [root.der],
      certificates: [oca.der, ...certificates.map((c) => c.der)],
      revokedSerials,
    }),
  };
}

/** The usual cast of a 6.23: a gaining supplier's xmlSign and replacement certificates, the DSP. */
export interface Srv623Cast {
  readonly pki: TestPki;
  /** Gaining supplier's User ID. */
  readonly supplierId: string;
  /** xmlSign (OU 87) of the gaining supplier, CN = its MPIDs. */
  readonly supplierXmlSign: TestCredential;
  /** Replacement DS, KA and KA top-up certificates of the gaining supplier (OU 02). */
  readonly replacementDs: TestCredential;
  readonly replacementKa: TestCredential;
  readonly replacementKaTopUp: TestCredential;
  /** The DSP's dSPXmlSign certificate (OU 89), for countersigning. */
  readonly dspXmlSign: TestCredential;
  /** Trust configuration: root anchor; OCA, supplier and DSP signing certificates known. */
  readonly trust: TrustStoreConfig;
}

export const TEST_SUPPLIER_ID = "90-B3-D5-1F-30-01-00-00";
export const TEST_DSP_ID = "90-B3-D5-1F-30-00-00-02";

export function buildSrv623Cast(
  seed = "ecos-stream-test-pki",
  supplierId = TEST_SUPPLIER_ID,
  mpids = "ACEE ACG",
): Srv623Cast {
  const pki = buildTestPki(seed);
  const supplierXmlSign = pki.issue(`xmlsign/${supplierId}`, { cn: mpids, ou: "87", entityId: supplierId }, [
    "digitalSignature",
  ]);
  const replacementDs = pki.issue(`ds/${supplierId}`, { ou: "02", entityId: supplierId }, [
    "digitalSignature",
  ]);
  const replacementKa = pki.issue(`ka/${supplierId}`, { ou: "02", entityId: supplierId }, ["keyAgreement"]);
  const replacementKaTopUp = pki.issue(`ka-topup/${supplierId}`, { ou: "02", entityId: supplierId }, [
    "keyAgreement",
  ]);
  const dspXmlSign = pki.issue("dsp-xmlsign", { ou: "89", entityId: TEST_DSP_ID }, ["digitalSignature"]);
  return {
    pki,
    supplierId,
    supplierXmlSign,
    replacementDs,
    replacementKa,
    replacementKaTopUp,
    dspXmlSign,
    trust: pki.trust([supplierXmlSign, dspXmlSign]),
  };
}

export interface Srv623XmlOptions {
  readonly requestId: string;
  readonly commandVariant?: number;
  readonly schemaVersion?: string;
  readonly executionDateTime?: string | null;
  readonly supplierFloorSeqNumber?: string;
  readonly supplierPrepaymentTopUpFloorSeqNumber?: string | null;
  readonly digitalSigning: Uint8Array;
  readonly keyAgreement?: Uint8Array | null;
  readonly keyAgreementTopUp?: Uint8Array | null;
  readonly certificationPath: readonly Uint8Array[];
  readonly applyTimeBasedCpvChecks?: boolean;
  readonly importMpxn?: string;
}

/** An unsigned 6.23 request laid out like the DUIS templates (two-space indentation). */
export function srv623Xml(o: Srv623XmlOptions): string {
  const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<sr:Request xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" schemaVersion="${o.schemaVersion ?? "5.4"}">`,
    `  <sr:Header>`,
    `    <sr:RequestID>${o.requestId}</sr:RequestID>`,
    `    <sr:CommandVariant>${o.commandVariant ?? 1}</sr:CommandVariant>`,
    `    <sr:ServiceReference>6.23</sr:ServiceReference>`,
    `    <sr:ServiceReferenceVariant>6.23</sr:ServiceReferenceVariant>`,
    `  </sr:Header>`,
    `  <sr:Body>`,
    `    <sr:UpdateSecurityCredentialsCoS>`,
  ];
  if (o.executionDateTime)
    lines.push(`      <sr:ExecutionDateTime>${o.executionDateTime}</sr:ExecutionDateTime>`);
  lines.push(
    `      <sr:SupplierFloorSeqNumber>${o.supplierFloorSeqNumber ?? "0"}</sr:SupplierFloorSeqNumber>`,
  );
  const topUpFloor =
    o.supplierPrepaymentTopUpFloorSeqNumber === undefined ? "0" : o.supplierPrepaymentTopUpFloorSeqNumber;
  if (topUpFloor !== null)
    lines.push(
      `      <sr:SupplierPrepaymentTopUpFloorSeqNumber>${topUpFloor}</sr:SupplierPrepaymentTopUpFloorSeqNumber>`,
    );
  lines.push(`      <sr:SupplierReplacementCertificates>`);
  lines.push(`        <sr:DigitalSigningCertificate>${b64(o.digitalSigning)}</sr:DigitalSigningCertificate>`);
  if (o.keyAgreement)
    lines.push(`        <sr:KeyAgreementCertificate>${b64(o.keyAgreement)}</sr:KeyAgreementCertificate>`);
  if (o.keyAgreementTopUp)
    lines.push(
      `        <sr:KeyAgreementTopUpCertificate>${b64(o.keyAgreementTopUp)}</sr:KeyAgreementTopUpCertificate>`,
    );
  lines.push(`      </sr:SupplierReplacementCertificates>`, `      <sr:CertificationPathCertificates>`);
  for (const c of o.certificationPath) lines.push(`        <sr:Certificate>${b64(c)}</sr:Certificate>`);
  lines.push(
    `      </sr:CertificationPathCertificates>`,
    `      <sr:ApplyTimeBasedCPVChecks>${o.applyTimeBasedCpvChecks ?? true}</sr:ApplyTimeBasedCPVChecks>`,
    `      <sr:ImportMPxN>${o.importMpxn ?? "1312345678333"}</sr:ImportMPxN>`,
    `    </sr:UpdateSecurityCredentialsCoS>`,
    `  </sr:Body>`,
    `</sr:Request>`,
    ``,
  );
  return lines.join("\n");
}

/** A valid unsigned 6.23 of the cast's supplier for `deviceId`, with all three replacements. */
export function castSrv623Xml(
  cast: Srv623Cast,
  deviceId: string,
  counter: number | bigint,
  overrides: Partial<Srv623XmlOptions> = {},
): string {
  return srv623Xml({
    requestId: `${cast.supplierId}:${deviceId}:${counter}`,
    digitalSigning: cast.replacementDs.der,
    keyAgreement: cast.replacementKa.der,
    keyAgreementTopUp: cast.replacementKaTopUp.der,
    certificationPath: [cast.pki.oca.der],
    ...overrides,
  });
}
