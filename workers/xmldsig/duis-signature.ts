/**
 * The XML signature exactly as DUIS uses it (reference §2.7), verification and signing.
 *
 * Form accepted (anything else is refused, which also rules out signature-wrapping tricks):
 *   ds:Signature, a child of the document element, after the body
 *     ds:SignedInfo
 *       ds:CanonicalizationMethod  Algorithm = exclusive c14n 1.0 (no InclusiveNamespaces)
 *       ds:SignatureMethod         Algorithm = ecdsa-sha256
 *       ds:Reference URI=""        exactly one
 *         ds:Transforms            exactly the enveloped-signature transform (optionally followed by
 *                                  inclusive c14n 1.0 without comments, which is the same octets)
 *         ds:DigestMethod          Algorithm = sha256
 *         ds:DigestValue           base64 of 32 bytes
 *     ds:SignatureValue            base64 of raw r‖s, 64 bytes (white space and &#13; stripped)
 *     ds:KeyInfo/ds:X509Data/ds:X509IssuerSerial (X509IssuerName RFC 2253, X509SerialNumber decimal)
 *
 * Digest: SHA-256 of the INCLUSIVE canonical form of the whole document with the signature removed.
 * Signed octets: the EXCLUSIVE canonical form of ds:SignedInfo.
 *
 * Countersigning [GAP — the DSP↔CoS Party interface is not public]: a countersignature is one more
 * enveloped signature of the same form appended after the existing one(s), by the countersigning
 * party's key. Its digest therefore covers the document *with* the earlier signature(s). Signature
 * number k is verified over the document with signatures k, k+1, … removed, so the User's signature
 * still verifies after the DSP and the CoS Party have countersigned, and the last signature verifies
 * with any standard XMLDSig verifier.
 */
import * as crypto from "node:crypto";
import type { EcdsaP256, EcPrivateKey } from "../crypto/ecdsa";
import type { SmkiCertificate } from "../smki/certificate";
import { publicKeyOf } from "../smki/certificate";
import type { TrustStore } from "../smki/trust";
import { canonicalizeDocument, canonicalizeDocumentSegments, canonicalizeExclusive } from "../xml/c14n";
import type { XmlDocument, XmlElement } from "../xml/parser";
import { textContent } from "../xml/parser";

export const DSIG_NS = "http://www.w3.org/2000/09/xmldsig#";
export const ALGORITHM = {
  exclusiveC14n: "http://www.w3.org/2001/10/xml-exc-c14n#",
  inclusiveC14n: "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
  ecdsaSha256: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
  envelopedSignature: "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
  sha256: "http://www.w3.org/2001/04/xmlenc#sha256",
} as const;

/** A ds:Signature that is not in the DUIS form. */
export class SignatureFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureFormatError";
  }
}

export interface DuisSignature {
  readonly element: XmlElement;
  readonly signedInfo: XmlElement;
  readonly digestValue: Buffer;
  readonly signatureValue: Buffer;
  /** X509IssuerName as written. */
  readonly issuerName: string;
  readonly serial: bigint;
}

/** The ds:Signature children of the document element, in document order. */
export function signatureElements(doc: XmlDocument): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of doc.root.children)
    if (c.kind === "element" && c.ns === DSIG_NS && c.local === "Signature") out.push(c);
  return out;
}

function dsChildren(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) {
    if (c.kind === "text") {
      if (c.value.trim() !== "") throw new SignatureFormatError(`text inside ${el.local}`);
    } else {
      if (c.ns !== DSIG_NS) throw new SignatureFormatError(`element {${c.ns}}${c.local} inside ${el.local}`);
      out.push(c);
    }
  }
  return out;
}

// (Loops, not closures, on this per-request path: tsx wraps every closure it creates at run time.)
function expectNames(el: XmlElement, names: readonly string[]): XmlElement[] {
  const kids = dsChildren(el);
  let same = kids.length === names.length;
  for (let i = 0; same && i < kids.length; i++) same = kids[i]!.local === names[i];
  if (!same) {
    const got: string[] = [];
    for (const k of kids) got.push(k.local);
    throw new SignatureFormatError(
      `${el.local} must contain ${names.join(", ")}; found ${got.join(", ") || "nothing"}`,
    );
  }
  return kids;
}

/** The unqualified attribute `local` of `el`, if any. */
function attributeOf(el: XmlElement, local: string): string | undefined {
  for (const a of el.attributes) if (a.ns === "" && a.local === local) return a.value;
  return undefined;
}

function algorithmOf(el: XmlElement): string {
  const a = attributeOf(el, "Algorithm");
  if (a === undefined) throw new SignatureFormatError(`${el.local} has no Algorithm`);
  if (dsChildren(el).length) throw new SignatureFormatError(`${el.local} may not have parameters here`);
  return a;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
function base64Value(el: XmlElement, bytes: number): Buffer {
  // The JDK wraps at 76 characters with &#13; + LF (reference §2.7 rule 5): strip all white space.
  const text = textContent(el).replace(/[\s]/g, "");
  if (text.length % 4 !== 0 || !BASE64.test(text))
    throw new SignatureFormatError(`${el.local} is not base64`);
  const out = Buffer.from(text, "base64");
  if (out.length !== bytes)
    throw new SignatureFormatError(`${el.local} is ${out.length} bytes, not ${bytes}`);
  return out;
}

/** Reads a ds:Signature in the DUIS form, or throws SignatureFormatError. */
export function readDuisSignature(sig: XmlElement): DuisSignature {
  const [signedInfo, signatureValueEl, keyInfo] = expectNames(sig, [
    "SignedInfo",
    "SignatureValue",
    "KeyInfo",
  ]) as [XmlElement, XmlElement, XmlElement];
  const [c14nEl, sigMethodEl, referenceEl] = expectNames(signedInfo, [
    "CanonicalizationMethod",
    "SignatureMethod",
    "Reference",
  ]) as [XmlElement, XmlElement, XmlElement];
  if (algorithmOf(c14nEl) !== ALGORITHM.exclusiveC14n)
    throw new SignatureFormatError("CanonicalizationMethod is not exclusive c14n");
  if (algorithmOf(sigMethodEl) !== ALGORITHM.ecdsaSha256)
    throw new SignatureFormatError("SignatureMethod is not ecdsa-sha256");
  if (attributeOf(referenceEl, "URI") !== "")
    throw new SignatureFormatError('Reference URI must be "" (the whole document)');
  const [transformsEl, digestMethodEl, digestValueEl] = expectNames(referenceEl, [
    "Transforms",
    "DigestMethod",
    "DigestValue",
  ]) as [XmlElement, XmlElement, XmlElement];
  const transforms: string[] = [];
  for (const t of dsChildren(transformsEl)) {
    if (t.local !== "Transform") throw new SignatureFormatError(`${t.local} inside Transforms`);
    transforms.push(algorithmOf(t));
  }
  const envelopedOnly = transforms.length === 1 && transforms[0] === ALGORITHM.envelopedSignature;
  const envelopedThenC14n =
    transforms.length === 2 &&
    transforms[0] === ALGORITHM.envelopedSignature &&
    transforms[1] === ALGORITHM.inclusiveC14n;
  if (!envelopedOnly && !envelopedThenC14n)
    throw new SignatureFormatError(
      `Transforms must be the enveloped-signature transform; found ${transforms.join(", ")}`,
    );
  if (algorithmOf(digestMethodEl) !== ALGORITHM.sha256)
    throw new SignatureFormatError("DigestMethod is not sha256");
  const digestValue = base64Value(digestValueEl, 32);
  const signatureValue = base64Value(signatureValueEl, 64);
  const [x509Data] = expectNames(keyInfo, ["X509Data"]) as [XmlElement];
  const [issuerSerial] = expectNames(x509Data, ["X509IssuerSerial"]) as [XmlElement];
  const [issuerNameEl, serialEl] = expectNames(issuerSerial, ["X509IssuerName", "X509SerialNumber"]) as [
    XmlElement,
    XmlElement,
  ];
  const issuerName = textContent(issuerNameEl).trim();
  const serialText = textContent(serialEl).trim();
  if (!/^[0-9]{1,60}$/.test(serialText))
    throw new SignatureFormatError("X509SerialNumber is not a decimal integer");
  return { element: sig, signedInfo, digestValue, signatureValue, issuerName, serial: BigInt(serialText) };
}

/** Octets of the Reference digest for signature number `index` (see the countersigning note above). */
export function referenceOctets(doc: XmlDocument, index: number): string {
  const sigs = signatureElements(doc);
  return canonicalizeDocument(doc, { omit: new Set(sigs.slice(index)) });
}

/**
 * The inclusive canonical form of a parsed document cut around its signatures, computed once and
 * shared by the verification of a signature and the countersignature that follows it (which would
 * otherwise canonicalise the same document twice). Segment 2k+1 is signature k; see
 * canonicalizeDocumentSegments. Valid only while the tree is unchanged.
 */
export interface CanonicalDocument {
  readonly doc: XmlDocument;
  readonly signatures: readonly XmlElement[];
  readonly segments: readonly string[];
  /**
   * SHA-256 state after the first segment (everything before the first signature: nearly the whole
   * document), which every digest starts with; digests continue from a copy of it, so the body is
   * hashed once for the User's digest and the countersignature together. Never finalised itself.
   */
  readonly head: crypto.Hash;
}

export function canonicalDocument(doc: XmlDocument): CanonicalDocument {
  const signatures = signatureElements(doc);
  const segments = canonicalizeDocumentSegments(doc, signatures);
  const head = crypto.createHash("sha256").update(segments[0]!, "utf8");
  return { doc, signatures, segments, head };
}

/** SHA-256 of the document with signatures `from`, `from + 1`, … left out (all in: `from` = their count). */
function digestWithout(c: CanonicalDocument, from: number): Buffer {
  const h = c.head.copy();
  const segs = c.segments;
  for (let i = 1; i < segs.length; i++) if (i % 2 === 0 || (i - 1) / 2 < from) h.update(segs[i]!, "utf8");
  return h.digest();
}

export type SignatureVerdict =
  | { readonly ok: true; readonly signer: SmkiCertificate; readonly chain: readonly SmkiCertificate[] }
  | { readonly ok: false; readonly reason: string; readonly signer?: SmkiCertificate };

export interface VerifyOptions {
  readonly trust: TrustStore;
  readonly ecdsa: EcdsaP256;
  /** Time the signer's certificate path must be valid at (epoch ms), normally the time of receipt. */
  readonly at: number;
  /** Which signature: 0 = the User's, 1 = the first countersignature, … Default 0. */
  readonly index?: number;
  /** canonicalDocument(doc), when the caller keeps it for countersigning; computed here otherwise. */
  readonly canonical?: CanonicalDocument;
}

/**
 * Verifies signature number `index` of a parsed DUIS document: form, digest, signer certificate
 * (found by issuer and serial, path to a trust anchor valid at `at`, not revoked, digitalSignature)
 * and the ECDSA signature over the exclusive canonical SignedInfo. Role and entity checks are the
 * caller's (they have their own check ids).
 */
export function verifyDuisSignature(doc: XmlDocument, options: VerifyOptions): SignatureVerdict {
  const index = options.index ?? 0;
  const sigEl = signatureElements(doc)[index];
  if (!sigEl)
    return {
      ok: false,
      reason: index === 0 ? "the request has no ds:Signature" : `there is no signature number ${index}`,
    };
  let sig: DuisSignature;
  try {
    sig = readDuisSignature(sigEl);
  } catch (err) {
    return { ok: false, reason: `signature not in the DUIS form: ${(err as Error).message}` };
  }
  const canonical = options.canonical;
  if (canonical && canonical.doc !== doc) throw new Error("canonical form of another document");
  const digest = canonical
    ? digestWithout(canonical, index)
    : crypto.createHash("sha256").update(referenceOctets(doc, index), "utf8").digest();
  if (!digest.equals(sig.digestValue))
    return { ok: false, reason: "DigestValue does not match the document (the signed content was changed)" };
  const signer = options.trust.findByIssuerSerial(sig.issuerName, sig.serial);
  if (!signer)
    return { ok: false, reason: `signer certificate ${sig.issuerName} / ${sig.serial} is not known` };
  const path = options.trust.validate(signer, { at: options.at });
  if (!path.ok) return { ok: false, reason: `signer certificate rejected: ${path.reason}`, signer };
  if (!signer.keyUsage.includes("digitalSignature"))
    return { ok: false, reason: "signer certificate is not for digital signatures", signer };
  const signedInfo = Buffer.from(canonicalizeExclusive(sig.signedInfo), "utf8");
  if (!options.ecdsa.verify(publicKeyOf(signer, options.ecdsa), signedInfo, sig.signatureValue)) {
    return { ok: false, reason: "SignatureValue does not verify with the signer's key", signer };
  }
  return { ok: true, signer, chain: path.chain };
}

// ---- Signing ------------------------------------------------------------------------------------

export interface XmlSigningKey {
  readonly ecdsa: EcdsaP256;
  readonly privateKey: EcPrivateKey;
  /** The signer's certificate: its issuer and serial go into KeyInfo. */
  readonly certificate: SmkiCertificate;
}

function escapeXmlText(v: string): string {
  return v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

const DS = `xmlns:ds="${DSIG_NS}"`;

/**
 * The exclusive canonical form of the SignedInfo this module writes. Written into the document
 * without the `xmlns:ds` (declared on ds:Signature), so exclusive c14n gives back exactly this string.
 */
function canonicalSignedInfo(digestB64: string): string {
  return (
    `<ds:SignedInfo ${DS}>` +
    `<ds:CanonicalizationMethod Algorithm="${ALGORITHM.exclusiveC14n}"></ds:CanonicalizationMethod>` +
    `<ds:SignatureMethod Algorithm="${ALGORITHM.ecdsaSha256}"></ds:SignatureMethod>` +
    `<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="${ALGORITHM.envelopedSignature}"></ds:Transform></ds:Transforms>` +
    `<ds:DigestMethod Algorithm="${ALGORITHM.sha256}"></ds:DigestMethod><ds:DigestValue>${digestB64}</ds:DigestValue></ds:Reference>` +
    `</ds:SignedInfo>`
  );
}

/** White space as the regular expression \s sees it, among the characters a byte maps to in latin1. */
function isTrailingSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0xa0;
}

/**
 * Byte offset of the document element's end tag (`</name>`): skips trailing white space and comments
 * from the end. Works on the bytes (markup is ASCII in UTF-8), so the rest stays byte-for-byte, and
 * looks only at the tail of the document rather than decoding all of it.
 */
function rootEndTagOffset(bytes: Buffer, rootName: string): number {
  const tag = `</${rootName}`;
  let end = bytes.length;
  for (;;) {
    while (end > 0 && isTrailingSpace(bytes[end - 1]!)) end--;
    if (end >= 3 && bytes[end - 1] === 0x3e && bytes[end - 2] === 0x2d && bytes[end - 3] === 0x2d) {
      const start = bytes.lastIndexOf("<!--", end - 3, "latin1");
      if (start < 0) break;
      end = start;
      continue;
    }
    break;
  }
  // A name beyond ASCII has no latin1 form to look for (and is not a DUIS root).
  const ascii = Buffer.byteLength(tag, "utf8") === tag.length;
  const tagStart = ascii ? bytes.lastIndexOf(tag, end, "latin1") : -1;
  if (tagStart < 0 || !/^<\/[^>\s]+\s*>$/.test(bytes.toString("latin1", tagStart, end)))
    throw new Error("cannot find the end tag of the document element");
  return tagStart;
}

/**
 * Appends an enveloped DUIS signature as the last child of the document element and returns the new
 * bytes; everything else is kept byte-for-byte. `doc` must be the parse of `bytes`.
 */
export function appendDuisSignature(
  bytes: Uint8Array,
  doc: XmlDocument,
  key: XmlSigningKey,
  canonical?: CanonicalDocument,
): Buffer {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (canonical && canonical.doc !== doc) throw new Error("canonical form of another document");
  // Everything now in the document is covered, earlier signatures included (countersigning).
  const digest = (
    canonical
      ? digestWithout(canonical, canonical.signatures.length)
      : crypto.createHash("sha256").update(canonicalizeDocument(doc), "utf8").digest()
  ).toString("base64");
  const signedInfo = canonicalSignedInfo(digest);
  const signatureValue = Buffer.from(
    key.ecdsa.sign(key.privateKey, Buffer.from(signedInfo, "utf8")),
  ).toString("base64");
  const issuer = escapeXmlText(key.certificate.issuer.rfc2253);
  const signature =
    `<ds:Signature ${DS}>` +
    signedInfo.replace(`<ds:SignedInfo ${DS}>`, "<ds:SignedInfo>") +
    `<ds:SignatureValue>${signatureValue}</ds:SignatureValue>` +
    `<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>${issuer}</ds:X509IssuerName>` +
    `<ds:X509SerialNumber>${key.certificate.serial.toString()}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo>` +
    `</ds:Signature>`;
  const at = rootEndTagOffset(buf, doc.root.name);
  // One output buffer: the bytes before the end tag, the signature written in place, the rest.
  const length = Buffer.byteLength(signature, "utf8");
  const out = Buffer.allocUnsafe(buf.length + length);
  buf.copy(out, 0, 0, at);
  out.write(signature, at, length, "utf8");
  buf.copy(out, at + length, at);
  return out;
}

/** Signs an unsigned DUIS document (the User's signature; also the test and load-generator signer). */
export function signDuisDocument(bytes: Uint8Array, doc: XmlDocument, key: XmlSigningKey): Buffer {
  if (signatureElements(doc).length) throw new Error("document is already signed; countersign it instead");
  return appendDuisSignature(bytes, doc, key);
}

/**
 * Countersigns a signed DUIS document (the DSP or the CoS Party adding its signature). `canonical`:
 * canonicalDocument(doc) if the caller already has it (from verifying the document).
 */
export function countersignDuisDocument(
  bytes: Uint8Array,
  doc: XmlDocument,
  key: XmlSigningKey,
  canonical?: CanonicalDocument,
): Buffer {
  if (!(canonical ? canonical.signatures : signatureElements(doc)).length)
    throw new Error("document has no signature to countersign");
  return appendDuisSignature(bytes, doc, key, canonical);
}
