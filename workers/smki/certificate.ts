/**
 * SMKI Organisation (and Device) Certificates, read with a small DER reader (reference §1.2).
 *
 * Why not Node's X509Certificate or @peculiar/x509: the first has no key-usage or policy API and
 * renders x500UniqueIdentifier as raw bytes, the second costs 0.5–1.3 ms a certificate. This reads
 * exactly the profile: P-256 keys, ecdsa-with-SHA256, subject OU = remote party role in hex,
 * x500UniqueIdentifier = BIT STRING holding the 8-byte Entity ID, key usage, SKI/AKI, policies,
 * basic constraints. Parsed certificates are cached by their DER.
 */
import * as crypto from "node:crypto";
import type { EcdsaP256, EcPublicKey } from "../crypto/ecdsa";
import type { Tlv } from "./der";
import {
  DerError,
  TAG,
  children,
  decodeInteger,
  decodeOid,
  decodeTime,
  ecdsaDerToRaw,
  expectTlv,
  readTlv,
  value,
  whole,
} from "./der";

export const OID = {
  commonName: "2.5.4.3",
  organisationalUnit: "2.5.4.11",
  organisation: "2.5.4.10",
  country: "2.5.4.6",
  x500UniqueIdentifier: "2.5.4.45",
  ecPublicKey: "1.2.840.10045.2.1",
  prime256v1: "1.2.840.10045.3.1.7",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  keyUsage: "2.5.29.15",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  certificatePolicies: "2.5.29.32",
  basicConstraints: "2.5.29.19",
  subjectAltName: "2.5.29.17",
} as const;

/** Remote party role codes of the SMKI (reference §1.2), by the decimal value of the subject OU in hex. */
export const REMOTE_PARTY_ROLE = {
  root: 0,
  recovery: 1,
  supplier: 2,
  networkOperator: 3,
  accessControlBroker: 4,
  transitionalCoS: 5,
  wanProvider: 6,
  issuingAuthority: 7,
  loadController: 8,
  other: 127,
  xmlSign: 135,
  dSPXmlSign: 137,
} as const;

/** RFC 5280 key usage bits, by name. */
export const KEY_USAGE_BITS = [
  "digitalSignature",
  "nonRepudiation",
  "keyEncipherment",
  "dataEncipherment",
  "keyAgreement",
  "keyCertSign",
  "cRLSign",
  "encipherOnly",
  "decipherOnly",
] as const;
export type KeyUsage = (typeof KEY_USAGE_BITS)[number];

/** One attribute of a distinguished name. */
export interface NameAttribute {
  readonly type: string;
  /** Decoded string for string types; `#` + hex of the whole BER value otherwise (RFC 2253). */
  readonly value: string;
  readonly tag: number;
}

export interface DistinguishedName {
  /** The DER of the Name, for binary comparison (issuer of a child = subject of its CA). */
  readonly der: Buffer;
  /** RDNs in encoded order, each a set of attributes. */
  readonly rdns: readonly (readonly NameAttribute[])[];
  /** RFC 2253 string, as Java prints it (reverse order, no spaces): `CN=Z1,OU=07`. */
  readonly rfc2253: string;
  /** Comparison key: encoded order, types as OIDs, string values case-folded and space-collapsed. */
  readonly matchKey: string;
}

export interface SmkiCertificate {
  readonly der: Buffer;
  /** Hex SHA-256 of the DER: identifies the certificate (trust store links, indexes). */
  readonly derHash: string;
  readonly tbs: Buffer;
  /** The issuer's signature over `tbs`, as raw r‖s. */
  readonly signature: Uint8Array;
  readonly serial: bigint;
  /** Upper-case hex of the serial, without leading zeros. */
  readonly serialHex: string;
  readonly issuer: DistinguishedName;
  readonly subject: DistinguishedName;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Uncompressed P-256 point, 65 bytes. */
  readonly publicKeyPoint: Uint8Array;
  readonly keyUsage: readonly KeyUsage[];
  readonly keyUsageCritical: boolean;
  readonly subjectKeyId: string | null;
  readonly authorityKeyId: string | null;
  readonly policies: readonly string[];
  readonly basicConstraints: { readonly ca: boolean; readonly pathLength: number | null } | null;
  /** OIDs of critical extensions this reader does not understand (path validation refuses them). */
  readonly unknownCriticalExtensions: readonly string[];
  /** Subject OU as written. */
  readonly organisationalUnit: string | null;
  /** Remote party role from the subject OU read as two hex digits; null when the OU is not that. */
  readonly role: number | null;
  readonly commonName: string | null;
  /** Entity ID from x500UniqueIdentifier, as a DUIS EUI-64: `90-B3-D5-1F-30-01-00-00`. */
  readonly entityId: string | null;
  /** The supplier's MPIDs: the space-separated Common Name of an xmlSign certificate; [] otherwise. */
  readonly mpids: readonly string[];
  readonly isCa: boolean;
}

const STRING_TAGS = new Set<number>([
  TAG.UTF8_STRING,
  TAG.PRINTABLE_STRING,
  TAG.IA5_STRING,
  0x14 /* Teletex */,
  0x1e /* BMP */,
  0x12 /* Numeric */,
]);

const SHORT_NAMES: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.11": "OU",
  "2.5.4.10": "O",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "STREET",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
};
const BY_SHORT_NAME: Record<string, string> = Object.fromEntries(
  Object.entries(SHORT_NAMES).map(([k, v]) => [v, k]),
);

function decodeString(tag: number, v: Uint8Array): string {
  if (tag === 0x1e) return Buffer.from(v).swap16().toString("utf16le");
  if (tag === 0x14) return Buffer.from(v).toString("latin1");
  return Buffer.from(v).toString("utf8");
}

function normaliseValue(v: string): string {
  return v.startsWith("#") ? v.toLowerCase() : v.trim().replace(/\s+/g, " ").toLowerCase();
}

function escape2253(v: string): string {
  if (v.startsWith("#")) return v;
  let out = v.replace(/([,+"\\<>;=])/g, "\\$1");
  if (out.startsWith(" ")) out = "\\" + out;
  if (out.endsWith(" ") && !out.endsWith("\\ ")) out = out.slice(0, -1) + "\\ ";
  return out;
}

function nameKey(rdns: readonly (readonly NameAttribute[])[]): string {
  return rdns
    .map((rdn) =>
      rdn
        .map((a) => `${a.type}=${normaliseValue(a.value)}`)
        .sort()
        .join("+"),
    )
    .join(",");
}

function parseName(buf: Uint8Array, t: Tlv): DistinguishedName {
  if (t.tag !== TAG.SEQUENCE) throw new DerError("Name is not a SEQUENCE");
  const rdns: NameAttribute[][] = [];
  for (const set of children(buf, t)) {
    if (set.tag !== TAG.SET) throw new DerError("RDN is not a SET");
    const rdn: NameAttribute[] = [];
    for (const atv of children(buf, set)) {
      const [typ, val, extra] = children(buf, atv);
      if (atv.tag !== TAG.SEQUENCE || !typ || !val || extra || typ.tag !== TAG.OID)
        throw new DerError("malformed AttributeTypeAndValue");
      const type = decodeOid(value(buf, typ));
      const v = STRING_TAGS.has(val.tag)
        ? decodeString(val.tag, value(buf, val))
        : "#" + Buffer.from(whole(buf, val)).toString("hex");
      rdn.push({ type, value: v, tag: val.tag });
    }
    if (rdn.length === 0) throw new DerError("empty RDN");
    rdns.push(rdn);
  }
  const rfc2253 = [...rdns]
    .reverse()
    .map((rdn) =>
      rdn
        .map(
          (a) =>
            `${SHORT_NAMES[a.type] ?? a.type}=${escape2253(a.type in SHORT_NAMES ? a.value : a.value.startsWith("#") ? a.value.toUpperCase() : a.value)}`,
        )
        .join("+"),
    )
    .join(",");
  return { der: Buffer.from(whole(buf, t)), rdns, rfc2253, matchKey: nameKey(rdns) };
}

/**
 * The comparison key of an RFC 2253 / RFC 4514 distinguished name string (as in X509IssuerName), or
 * null when the string cannot be read. Compared with {@link DistinguishedName.matchKey}: types by
 * OID, values case-insensitive with white space collapsed, RDN order reversed to the encoded order.
 */
export function matchKeyOfRfc2253(name: string): string | null {
  const rdns: NameAttribute[][] = [];
  let i = 0;
  const s = name.trim();
  if (s.length === 0) return "";
  let rdn: NameAttribute[] = [];
  while (i <= s.length) {
    const eq = s.indexOf("=", i);
    if (eq < 0) return null;
    let type = s.slice(i, eq).trim();
    if (/^oid\./i.test(type)) type = type.slice(4);
    const oid = /^\d+(\.\d+)+$/.test(type) ? type : BY_SHORT_NAME[type.toUpperCase()];
    if (!oid) return null;
    let j = eq + 1;
    while (s[j] === " ") j++;
    let raw = "";
    let hex = false;
    if (s[j] === "#") {
      hex = true;
      const m = /^#([0-9A-Fa-f]+)/.exec(s.slice(j));
      if (!m) return null;
      raw = m[1]!;
      j += m[0].length;
    } else {
      while (j < s.length && s[j] !== "," && s[j] !== "+" && s[j] !== ";") {
        if (s[j] === "\\") {
          const pair = /^[0-9A-Fa-f]{2}/.exec(s.slice(j + 1));
          if (pair) {
            raw += String.fromCharCode(parseInt(pair[0], 16));
            j += 3;
          } else {
            if (j + 1 >= s.length) return null;
            raw += s[j + 1];
            j += 2;
          }
        } else {
          raw += s[j];
          j++;
        }
      }
    }
    let v: string;
    if (hex) {
      // A #hex value is the BER of the attribute value: compare string types by their text.
      const ber = Buffer.from(raw, "hex");
      try {
        const t = readTlv(ber, 0);
        v =
          STRING_TAGS.has(t.tag) && t.end === ber.length
            ? decodeString(t.tag, value(ber, t))
            : "#" + raw.toLowerCase();
      } catch {
        return null;
      }
    } else {
      v = raw;
    }
    rdn.push({ type: oid, value: v, tag: 0 });
    while (s[j] === " ") j++;
    if (j >= s.length) {
      rdns.push(rdn);
      break;
    }
    if (s[j] === "+") {
      i = j + 1;
      continue;
    }
    rdns.push(rdn);
    rdn = [];
    i = j + 1;
  }
  return nameKey(rdns.reverse());
}

/** Parses one certificate (no cache; see {@link parseCertificateCached}). Throws DerError. */
export function parseCertificate(derInput: Uint8Array): SmkiCertificate {
  const der = Buffer.from(derInput);
  const cert = expectTlv(der, 0, der.length, TAG.SEQUENCE, "Certificate");
  if (cert.end !== der.length) throw new DerError("trailing bytes after the certificate");
  const [tbsT, algT, sigT, extra] = children(der, cert);
  if (!tbsT || !algT || !sigT || extra) throw new DerError("Certificate is not tbs, algorithm, signature");
  if (tbsT.tag !== TAG.SEQUENCE || algT.tag !== TAG.SEQUENCE || sigT.tag !== TAG.BIT_STRING)
    throw new DerError("malformed Certificate");
  const algOid = decodeOid(
    value(der, expectTlv(der, algT.valueStart, algT.end, TAG.OID, "signatureAlgorithm")),
  );
  if (algOid !== OID.ecdsaWithSha256)
    throw new DerError(`signature algorithm ${algOid} is not ecdsa-with-SHA256`);
  const sigBits = value(der, sigT);
  if (sigBits[0] !== 0) throw new DerError("signature BIT STRING has unused bits");
  const signature = ecdsaDerToRaw(sigBits.subarray(1));

  const tbs = children(der, tbsT);
  let k = 0;
  const versionT = tbs[k];
  if (!versionT || versionT.tag !== 0xa0) throw new DerError("not an X.509 v3 certificate");
  const vInt = expectTlv(der, versionT.valueStart, versionT.end, TAG.INTEGER, "version");
  if (decodeInteger(value(der, vInt)) !== 2n) throw new DerError("not an X.509 v3 certificate");
  k++;
  const serialT = tbs[k++];
  const sigAlgT = tbs[k++];
  const issuerT = tbs[k++];
  const validityT = tbs[k++];
  const subjectT = tbs[k++];
  const spkiT = tbs[k++];
  if (!serialT || !sigAlgT || !issuerT || !validityT || !subjectT || !spkiT)
    throw new DerError("truncated TBSCertificate");
  if (serialT.tag !== TAG.INTEGER) throw new DerError("serial is not an INTEGER");
  const serial = decodeInteger(value(der, serialT));
  const innerAlg = decodeOid(
    value(der, expectTlv(der, sigAlgT.valueStart, sigAlgT.end, TAG.OID, "signature")),
  );
  if (innerAlg !== algOid) throw new DerError("TBS signature algorithm differs from the outer one");
  const issuer = parseName(der, issuerT);
  const subject = parseName(der, subjectT);
  const [nbT, naT] = children(der, validityT);
  if (!nbT || !naT) throw new DerError("malformed Validity");
  const notBefore = decodeTime(nbT.tag, value(der, nbT));
  const notAfter = decodeTime(naT.tag, value(der, naT));

  const [spkiAlg, spkiKey] = children(der, spkiT);
  if (!spkiAlg || !spkiKey || spkiKey.tag !== TAG.BIT_STRING)
    throw new DerError("malformed SubjectPublicKeyInfo");
  const [keyAlgT, curveT] = children(der, spkiAlg);
  if (!keyAlgT || !curveT || keyAlgT.tag !== TAG.OID || curveT.tag !== TAG.OID)
    throw new DerError("public key is not an EC key on a named curve");
  if (
    decodeOid(value(der, keyAlgT)) !== OID.ecPublicKey ||
    decodeOid(value(der, curveT)) !== OID.prime256v1
  ) {
    throw new DerError("public key is not ECDSA P-256");
  }
  const keyBits = value(der, spkiKey);
  if (keyBits.length !== 66 || keyBits[0] !== 0 || keyBits[1] !== 4)
    throw new DerError("public key is not an uncompressed P-256 point");
  const publicKeyPoint = Buffer.from(keyBits.subarray(1));

  let keyUsage: KeyUsage[] = [];
  let keyUsageCritical = false;
  let subjectKeyId: string | null = null;
  let authorityKeyId: string | null = null;
  const policies: string[] = [];
  let basicConstraints: SmkiCertificate["basicConstraints"] = null;
  const unknownCritical: string[] = [];
  for (; k < tbs.length; k++) {
    const t = tbs[k]!;
    if (t.tag === 0x81 || t.tag === 0x82) continue; // issuer/subject unique IDs: ignored
    if (t.tag !== 0xa3) throw new DerError(`unexpected field 0x${t.tag.toString(16)} in TBSCertificate`);
    const exts = expectTlv(der, t.valueStart, t.end, TAG.SEQUENCE, "extensions");
    const seen = new Set<string>();
    for (const ext of children(der, exts)) {
      const parts = children(der, ext);
      const oidT = parts[0];
      if (!oidT || oidT.tag !== TAG.OID) throw new DerError("malformed extension");
      const oid = decodeOid(value(der, oidT));
      if (seen.has(oid)) throw new DerError(`extension ${oid} appears twice`);
      seen.add(oid);
      let critical = false;
      let valT = parts[1];
      if (valT && valT.tag === TAG.BOOLEAN) {
        critical = value(der, valT)[0] === 0xff;
        valT = parts[2];
      }
      if (!valT || valT.tag !== TAG.OCTET_STRING) throw new DerError(`extension ${oid} has no value`);
      const inner = value(der, valT);
      const innerT = readTlv(inner, 0);
      switch (oid) {
        case OID.keyUsage: {
          if (innerT.tag !== TAG.BIT_STRING) throw new DerError("keyUsage is not a BIT STRING");
          const bits = value(inner, innerT);
          keyUsage = KEY_USAGE_BITS.filter((_, i) => {
            const byte = bits[1 + (i >> 3)];
            return byte !== undefined && (byte & (0x80 >> (i & 7))) !== 0;
          });
          keyUsageCritical = critical;
          break;
        }
        case OID.subjectKeyIdentifier:
          if (innerT.tag !== TAG.OCTET_STRING)
            throw new DerError("subjectKeyIdentifier is not an OCTET STRING");
          subjectKeyId = Buffer.from(value(inner, innerT)).toString("hex").toUpperCase();
          break;
        case OID.authorityKeyIdentifier: {
          for (const c of children(inner, innerT)) {
            if (c.tag === 0x80) authorityKeyId = Buffer.from(value(inner, c)).toString("hex").toUpperCase();
          }
          break;
        }
        case OID.certificatePolicies:
          for (const pi of children(inner, innerT)) {
            const pOid = expectTlv(inner, pi.valueStart, pi.end, TAG.OID, "policyIdentifier");
            policies.push(decodeOid(value(inner, pOid)));
          }
          break;
        case OID.basicConstraints: {
          let ca = false;
          let pathLength: number | null = null;
          for (const c of children(inner, innerT)) {
            if (c.tag === TAG.BOOLEAN) ca = value(inner, c)[0] === 0xff;
            else if (c.tag === TAG.INTEGER) pathLength = Number(decodeInteger(value(inner, c)));
          }
          basicConstraints = { ca, pathLength };
          break;
        }
        case OID.subjectAltName:
          break; // Device certificates carry the Device ID here (hardwareModuleName); not needed by the DSP.
        default:
          if (critical) unknownCritical.push(oid);
      }
    }
  }

  const attr = (dn: DistinguishedName, type: string): NameAttribute | undefined => {
    for (const rdn of dn.rdns) for (const a of rdn) if (a.type === type) return a;
    return undefined;
  };
  const ou = attr(subject, OID.organisationalUnit)?.value ?? null;
  const role = ou !== null && /^[0-9A-Fa-f]{2}$/.test(ou) ? parseInt(ou, 16) : null;
  const cn = attr(subject, OID.commonName)?.value ?? null;
  const uid = attr(subject, OID.x500UniqueIdentifier);
  let entityId: string | null = null;
  if (uid) {
    // BIT STRING 03 09 00 <8-byte EUI-64> (reference §1.2).
    const m = /^#0309(00)([0-9a-f]{16})$/.exec(uid.value);
    if (m) entityId = m[2]!.toUpperCase().match(/../g)!.join("-");
  }
  const mpids = role === REMOTE_PARTY_ROLE.xmlSign && cn ? cn.split(" ").filter((x) => x.length > 0) : [];
  return {
    der,
    derHash: crypto.createHash("sha256").update(der).digest("hex"),
    tbs: der.subarray(tbsT.start, tbsT.end),
    signature,
    serial,
    serialHex: serial.toString(16).toUpperCase(),
    issuer,
    subject,
    notBefore,
    notAfter,
    publicKeyPoint,
    keyUsage,
    keyUsageCritical,
    subjectKeyId,
    authorityKeyId,
    policies,
    basicConstraints,
    unknownCriticalExtensions: unknownCritical,
    organisationalUnit: ou,
    role,
    commonName: cn,
    entityId,
    mpids,
    isCa: basicConstraints?.ca === true,
  };
}

const MAX_CACHED = 20_000;
const parsed = new Map<string, SmkiCertificate>();
const publicKeys = new WeakMap<SmkiCertificate, Map<string, EcPublicKey>>();

/**
 * Parses a certificate once per distinct DER. A replacement certificate repeats across millions of
 * requests, so the DER is parsed and its key imported once. The cache key is the DER itself (as a
 * latin1 string, one character per byte): a lookup compares every byte, and costs a fraction of the
 * SHA-256 it replaced (hashing a 400-byte DER cost ~2 µs, five times a request, mostly in setting up
 * the hash). The SHA-256 (`derHash`) is still computed once per parse.
 */
export function parseCertificateCached(der: Uint8Array): SmkiCertificate {
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("latin1");
  const hit = parsed.get(key);
  if (hit) return hit;
  const cert = parseCertificate(der);
  if (parsed.size >= MAX_CACHED) parsed.clear(); // crude bound; the working set is small in practice
  parsed.set(key, cert);
  return cert;
}

/** The certificate's public key imported into `ecdsa`, once per certificate and implementation. */
export function publicKeyOf(cert: SmkiCertificate, ecdsa: EcdsaP256): EcPublicKey {
  let byImpl = publicKeys.get(cert);
  if (!byImpl) {
    byImpl = new Map();
    publicKeys.set(cert, byImpl);
  }
  let key = byImpl.get(ecdsa.name);
  if (!key) {
    key = ecdsa.importPublicKey(cert.publicKeyPoint);
    byImpl.set(ecdsa.name, key);
  }
  return key;
}

/** A DUIS EUI-64 (any case, with dashes) or a 16-hex-digit entity id, as `90-B3-D5-1F-30-01-00-00`. */
const EUI64_CANONICAL = /^[0-9A-F]{2}(?:-[0-9A-F]{2}){7}$/;

export function normaliseEui64(id: string): string | null {
  if (EUI64_CANONICAL.test(id)) return id; // already in the canonical form: the usual case
  const hex = id.replace(/-/g, "");
  if (
    !/^[0-9A-Fa-f]{16}$/.test(hex) ||
    (id.includes("-") && !/^([0-9A-Fa-f]{2}-){7}[0-9A-Fa-f]{2}$/.test(id))
  )
    return null;
  return hex.toUpperCase().match(/../g)!.join("-");
}
