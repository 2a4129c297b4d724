import * as crypto from "node:crypto";
import { SignedXml } from "xml-crypto";
import type { EcdsaP256 } from "../../workers/crypto/ecdsa";
import { nobleEcdsa, opensslEcdsa } from "../../workers/crypto/ecdsa";
import { TrustStore } from "../../workers/smki/trust";
import { canonicalizeDocument, canonicalizeExclusive } from "../../workers/xml/c14n";
import { parseXml } from "../../workers/xml/parser";
import {
  canonicalDocument,
  countersignDuisDocument,
  readDuisSignature,
  referenceOctets,
  signatureElements,
  signDuisDocument,
  verifyDuisSignature,
} from "../../workers/xmldsig/duis-signature";
import { RECEIVED_AT, cast, sign, trustStore, unsigned623 } from "./fixtures";

/** The result failed, for a reason matching `re`. */
function expectReason(r: { ok: boolean; reason?: string }, re: RegExp): void {
  expect(r.ok).toBe(false);
  expect(r.reason).toMatch(re);
}

const verify = (bytes: Buffer, ecdsa: EcdsaP256 = opensslEcdsa, index = 0) =>
  verifyDuisSignature(parseXml(bytes), { trust: trustStore(ecdsa), ecdsa, at: RECEIVED_AT, index });

describe("DUIS XML signature", () => {
  test.each([
    ["OpenSSL", "noble", opensslEcdsa, nobleEcdsa],
    ["noble", "OpenSSL", nobleEcdsa, opensslEcdsa],
  ])("signed with %s, verified with %s; the body is kept byte for byte", (_a, _b, signer, verifier) => {
    const unsigned = unsigned623();
    const signed = sign(unsigned, cast().supplierXmlSign, signer);
    const end = unsigned.lastIndexOf("</sr:Request>");
    expect(signed.subarray(0, end)).toEqual(unsigned.subarray(0, end));
    const r = verify(signed, verifier);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.signer.serial).toBe(cast().supplierXmlSign.cert.serial);
  });

  test("the signature goes right before the root's end tag, past a trailer of comments and white space, in a view of a larger buffer", () => {
    const trailer = "\r\n<!-- after </sr:Request> -->\n \t<!---->\r\n";
    const body = Buffer.from(unsigned623().toString("utf8").replace(/\s*$/, "") + trailer, "utf8");
    const framed = Buffer.concat([Buffer.from("junk</sr:Request>"), body, Buffer.from("</sr:Request>junk")]);
    const view = framed.subarray(17, 17 + body.length);
    const signed = signDuisDocument(view, parseXml(view), cast().supplierXmlSign.signingKey(opensslEcdsa));
    // The root's own end tag, not the one quoted in the trailing comment.
    const end = body.length - Buffer.byteLength(trailer) - "</sr:Request>".length;
    expect(body.subarray(end, end + 13).toString()).toBe("</sr:Request>");
    expect(signed.subarray(0, end)).toEqual(body.subarray(0, end));
    expect(signed.subarray(signed.length - (body.length - end))).toEqual(body.subarray(end));
    expect(signed.subarray(end, end + 14).toString()).toBe("<ds:Signature ");
    expect(verify(signed).ok).toBe(true);
  });

  test("noble signatures are reproducible byte for byte", () => {
    expect(sign(unsigned623(), cast().supplierXmlSign, nobleEcdsa)).toEqual(
      sign(unsigned623(), cast().supplierXmlSign, nobleEcdsa),
    );
  });

  test("the SignedInfo written is its own exclusive canonical form (ds declared on SignedInfo, no self-closing tags)", () => {
    const doc = parseXml(sign(unsigned623()));
    const sig = readDuisSignature(signatureElements(doc)[0]!);
    expect(canonicalizeExclusive(sig.signedInfo)).toMatch(
      /^<ds:SignedInfo xmlns:ds="http:\/\/www.w3.org\/2000\/09\/xmldsig#"><ds:CanonicalizationMethod Algorithm="[^"]+"><\/ds:CanonicalizationMethod>/,
    );
    expect(sig.issuerName).toBe("CN=Z1,OU=07");
  });

  test("one changed byte of the body, of the digest or of the signature value fails", () => {
    const signed = sign(unsigned623());
    const text = signed.toString("latin1");
    const at = text.indexOf("<sr:ImportMPxN>") + "<sr:ImportMPxN>".length;
    const body = Buffer.from(signed);
    body[at] = body[at] === 0x31 ? 0x32 : 0x31;
    expectReason(verify(body), /DigestValue does not match/);
    const sv = text.indexOf("<ds:SignatureValue>") + 19;
    const sigByte = Buffer.from(signed);
    sigByte[sv] = sigByte[sv] === 0x41 ? 0x42 : 0x41;
    expectReason(verify(sigByte), /does not verify/);
    // White space inside the signed content counts too (inclusive c14n keeps it).
    const ws = Buffer.from(text.replace("<sr:Header>", "<sr:Header> "), "latin1");
    expect(verify(ws).ok).toBe(false);
  });

  test("the JDK's wrapped SignatureValue (76 characters, &#13; + line feed) is read", () => {
    const text = sign(unsigned623()).toString("utf8");
    const wrapped = text.replace(
      /<ds:SignatureValue>([^<]+)<\/ds:SignatureValue>/,
      (_m, v: string) => `<ds:SignatureValue>${v.slice(0, 76)}&#13;\n${v.slice(76)}</ds:SignatureValue>`,
    );
    expect(wrapped).not.toBe(text);
    expect(verify(Buffer.from(wrapped)).ok).toBe(true);
  });

  test("signatures not in the DUIS form are refused", () => {
    const text = sign(unsigned623()).toString("utf8");
    const cases: [string, string, RegExp][] = [
      [
        "inclusive SignedInfo c14n",
        text.replace(
          'CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"',
          'CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"',
        ),
        /exclusive/,
      ],
      ["rsa", text.replace("xmldsig-more#ecdsa-sha256", "xmldsig-more#rsa-sha256"), /ecdsa-sha256/],
      ["reference to an id", text.replace('Reference URI=""', 'Reference URI="#x"'), /URI/],
      ["sha1", text.replace("xmlenc#sha256", "xmldsig#sha1"), /sha256/],
      ["xpath transform", text.replace("#enveloped-signature", "#base64"), /enveloped/],
      ["no signature", unsigned623().toString("utf8"), /no ds:Signature/],
    ];
    for (const [, doc, reason] of cases) expectReason(verify(Buffer.from(doc)), reason);
  });

  test("unknown signer, and a signer whose certificate path fails", () => {
    const stranger = cast().pki.issue("not-in-store", { ou: "87", entityId: cast().supplierId }, [
      "digitalSignature",
    ]);
    expectReason(verify(sign(unsigned623(), stranger)), /not known/);
    const trust = { ...cast().trust, revokedSerials: [cast().supplierXmlSign.cert.serialHex] };
    const doc = parseXml(sign(unsigned623()));
    expectReason(
      verifyDuisSignature(doc, {
        trust: new TrustStore(trust, opensslEcdsa),
        ecdsa: opensslEcdsa,
        at: RECEIVED_AT,
      }),
      /revoked/,
    );
  });

  test("countersigning: the DSP's signature covers the User's; both still verify, each over its own layer", () => {
    const userSigned = sign(unsigned623());
    const dsp = cast().dspXmlSign.signingKey(opensslEcdsa);
    const counter = countersignDuisDocument(userSigned, parseXml(userSigned), dsp);
    expect(signatureElements(parseXml(counter))).toHaveLength(2);
    expect(counter.subarray(0, userSigned.lastIndexOf("</sr:Request>"))).toEqual(
      userSigned.subarray(0, userSigned.lastIndexOf("</sr:Request>")),
    );
    const user = verify(counter, nobleEcdsa, 0);
    const dspCheck = verify(counter, nobleEcdsa, 1);
    expect(user.ok && user.signer.role).toBe(135);
    expect(dspCheck.ok && dspCheck.signer.role).toBe(0x89);
    // Tampering with the User's signature breaks the countersignature only.
    const t = counter.toString("latin1");
    const at = t.indexOf("<ds:X509SerialNumber>");
    const tampered = Buffer.from(t.slice(0, at) + "<!-- -->" + t.slice(at), "latin1");
    expect(verify(tampered, opensslEcdsa, 0).ok).toBe(true); // comments are not signed content
    const tampered2 = Buffer.from(t.replace("<ds:KeyInfo>", "<ds:KeyInfo> "), "latin1");
    expect(verify(tampered2, opensslEcdsa, 1).ok).toBe(false);
    expect(() => signDuisDocument(userSigned, parseXml(userSigned), dsp)).toThrow(/already signed/);
  });

  test("one canonical pass serves every signature's digest and the countersignature", () => {
    const userSigned = sign(unsigned623());
    const dsp = cast().dspXmlSign.signingKey(opensslEcdsa);
    const counter = countersignDuisDocument(userSigned, parseXml(userSigned), dsp);
    const doc = parseXml(counter);
    const c = canonicalDocument(doc);
    expect(c.signatures).toHaveLength(2);
    expect(c.segments).toHaveLength(5);
    expect(c.segments.join("")).toBe(canonicalizeDocument(doc));
    expect(c.segments[0]! + c.segments[2]! + c.segments[4]!).toBe(referenceOctets(doc, 0));
    expect(c.segments.slice(0, 4).join("") + c.segments[4]!).toBe(canonicalizeDocument(doc));
    expect(c.segments.slice(0, 3).join("") + c.segments[4]!).toBe(referenceOctets(doc, 1));
    const trust = trustStore();
    for (const index of [0, 1]) {
      const viaSegments = verifyDuisSignature(doc, {
        trust,
        ecdsa: opensslEcdsa,
        at: RECEIVED_AT,
        index,
        canonical: c,
      });
      expect(viaSegments.ok).toBe(true);
    }
    // A tampered document fails the digest the same way with or without the shared canonical form.
    const tampered = parseXml(
      Buffer.from(counter.toString("latin1").replace("<sr:Header>", "<sr:Header> "), "latin1"),
    );
    for (const canonical of [undefined, canonicalDocument(tampered)]) {
      const v = verifyDuisSignature(tampered, {
        trust,
        ecdsa: opensslEcdsa,
        at: RECEIVED_AT,
        ...(canonical ? { canonical } : {}),
      });
      expect(v.ok ? "" : v.reason).toMatch(/DigestValue/);
    }
    expect(() =>
      verifyDuisSignature(tampered, { trust, ecdsa: opensslEcdsa, at: RECEIVED_AT, canonical: c }),
    ).toThrow(/another document/);
    // Countersigning with the kept canonical form writes the same DigestValue as without it.
    const digestOf = (b: Buffer): string =>
      /<ds:DigestValue>([^<]*)<\/ds:DigestValue>(?![\s\S]*<ds:DigestValue>)/.exec(b.toString("latin1"))![1]!;
    const userDoc = parseXml(userSigned);
    const kept = countersignDuisDocument(userSigned, userDoc, dsp, canonicalDocument(userDoc));
    expect(digestOf(kept)).toBe(digestOf(counter));
    expect(verify(kept, nobleEcdsa, 1).ok).toBe(true);
  });
});

/** xml-crypto's SignedXml with an ECDSA P-256 / raw r‖s algorithm plugged in (it has none built in). */
class EcdsaSha256P1363 {
  getSignature(signedInfo: crypto.BinaryLike, privateKey: crypto.KeyLike): string {
    return crypto
      .sign("sha256", Buffer.from(signedInfo as string), {
        key: privateKey as crypto.KeyObject,
        dsaEncoding: "ieee-p1363",
      })
      .toString("base64");
  }
  verifySignature(material: string, key: crypto.KeyLike, signatureValue: string): boolean {
    return crypto.verify(
      "sha256",
      Buffer.from(material),
      { key: key as crypto.KeyObject, dsaEncoding: "ieee-p1363" },
      Buffer.from(signatureValue, "base64"),
    );
  }
  getAlgorithmName(): string {
    return "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
  }
}

function xmlCryptoSign(xml: string): string {
  const cred = cast().supplierXmlSign;
  const privateKey = crypto.createPrivateKey({
    key: {
      kty: "EC",
      crv: "P-256",
      d: cred.scalar.toString("base64url"),
      x: cred.point.subarray(1, 33).toString("base64url"),
      y: cred.point.subarray(33).toString("base64url"),
    },
    format: "jwk",
  });
  const sig = new SignedXml({
    privateKey,
    canonicalizationAlgorithm: "http://www.w3.org/2001/10/xml-exc-c14n#",
    signatureAlgorithm: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    getKeyInfoContent: (args) => {
      const prefix = args?.prefix ?? "ds";
      return (
        `<${prefix}:X509Data><${prefix}:X509IssuerSerial><${prefix}:X509IssuerName>${cred.cert.issuer.rfc2253}</${prefix}:X509IssuerName>` +
        `<${prefix}:X509SerialNumber>${cred.cert.serial.toString()}</${prefix}:X509SerialNumber></${prefix}:X509IssuerSerial></${prefix}:X509Data>`
      );
    },
  });
  (sig.SignatureAlgorithms as Record<string, unknown>)[
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
  ] = EcdsaSha256P1363;
  // Only the enveloped transform: the digest is then over the inclusive c14n, exactly as DUIS.
  sig.addReference({
    xpath: "/*",
    transforms: ["http://www.w3.org/2000/09/xmldsig#enveloped-signature"],
    digestAlgorithm: "http://www.w3.org/2001/04/xmlenc#sha256",
    isEmptyUri: true,
  });
  sig.computeSignature(xml, { prefix: "ds", location: { reference: "/*", action: "append" } });
  return sig.getSignedXml();
}

describe("an independent XMLDSig implementation (xml-crypto) signs; we verify", () => {
  test("its signature over a 6.23 verifies with both our implementations, and fails when one body byte changes", () => {
    const signed = xmlCryptoSign(unsigned623().toString("utf8"));
    expect(signed).toContain('<ds:Reference URI="">');
    for (const ecdsa of [opensslEcdsa, nobleEcdsa]) expect(verify(Buffer.from(signed), ecdsa).ok).toBe(true);
    const changed = signed.replace("<sr:SupplierFloorSeqNumber>0<", "<sr:SupplierFloorSeqNumber>1<");
    expect(changed).not.toBe(signed);
    expectReason(verify(Buffer.from(changed)), /DigestValue/);
  });

  test("our signature verifies with xml-crypto", () => {
    const signed = sign(unsigned623()).toString("utf8");
    const cred = cast().supplierXmlSign;
    const v = new SignedXml({
      publicCert: crypto.createPublicKey({
        key: Buffer.concat([
          Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex"),
          cred.point,
        ]),
        format: "der",
        type: "spki",
      }),
    });
    (v.SignatureAlgorithms as Record<string, unknown>)[
      "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    ] = EcdsaSha256P1363;
    v.loadSignature(signed.slice(signed.indexOf("<ds:Signature "), signed.indexOf("</ds:Signature>") + 15));
    expect(v.checkSignature(signed)).toBe(true);
  });
});
