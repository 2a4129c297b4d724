import { nobleEcdsa, opensslEcdsa } from "../../workers/crypto/ecdsa";
import { DerError } from "../../workers/smki/der";
import {
  matchKeyOfRfc2253,
  parseCertificate,
  parseCertificateCached,
  publicKeyOf,
} from "../../workers/smki/certificate";
import { TrustStore } from "../../workers/smki/trust";
import { decodeSmkiSnapshot, encodeSmkiSnapshot } from "../../workers/smki/snapshot";
import { TEST_POLICY_OID, buildTestPki, smkiKeyIdentifier } from "../../workers/testing/test-pki";
import { RECEIVED_AT, cast } from "./fixtures";

/** The result failed, for a reason matching `re`. */
function expectReason(r: { ok: boolean; reason?: string }, re: RegExp): void {
  expect(r.ok).toBe(false);
  expect(r.reason).toMatch(re);
}

describe("SMKI certificate reader", () => {
  test("xmlSign certificate: role from the hex OU, entity id, MPIDs from the CN, usage, SKI/AKI, policy", () => {
    const c = cast().supplierXmlSign.cert;
    expect(c.organisationalUnit).toBe("87");
    expect(c.role).toBe(135);
    expect(c.entityId).toBe("90-B3-D5-1F-30-01-00-00");
    expect(c.mpids).toEqual(["ACEE", "ACG"]);
    expect(c.keyUsage).toEqual(["digitalSignature"]);
    expect(c.keyUsageCritical).toBe(true);
    expect(c.policies).toEqual([TEST_POLICY_OID]);
    expect(c.subjectKeyId).toBe(smkiKeyIdentifier(c.publicKeyPoint).toString("hex").toUpperCase());
    expect(c.subjectKeyId![0]).toBe("4"); // SMKI rule: 0x4 nibble + 60 bits of SHA-1
    expect(c.authorityKeyId).toBe(cast().pki.oca.cert.subjectKeyId);
    expect(c.issuer.rfc2253).toBe("CN=Z1,OU=07");
    expect(c.serial.toString(16).length).toBe(32); // 16-byte serial
    expect(c.isCa).toBe(false);
  });

  test("CA certificates: basic constraints, keyCertSign; replacement KA: keyAgreement and no MPIDs", () => {
    const oca = cast().pki.oca.cert;
    expect(oca.isCa).toBe(true);
    expect(oca.basicConstraints).toEqual({ ca: true, pathLength: 0 });
    expect(oca.keyUsage).toEqual(["keyCertSign", "cRLSign"]);
    expect(oca.role).toBe(7);
    const ka = cast().replacementKa.cert;
    expect([ka.role, ka.keyUsage, ka.mpids]).toEqual([2, ["keyAgreement"], []]);
  });

  test("the DCC Boxed defect OU=137 (decimal) gives no role rather than a wrong one", () => {
    const pki = buildTestPki("defect");
    const c = pki.issue("dsp", { ou: "137", entityId: "90B3D51F30000002" }, ["digitalSignature"]).cert;
    expect([c.organisationalUnit, c.role]).toEqual(["137", null]);
  });

  test("X509IssuerName strings match structurally: order, case, spaces, OIDs, #hex values", () => {
    const key = cast().supplierXmlSign.cert.issuer.matchKey;
    for (const s of [
      "CN=Z1,OU=07",
      "CN=Z1, OU=07",
      "cn=z1,ou=07",
      "2.5.4.3=Z1,OID.2.5.4.11=07",
      "CN=#13025A31,OU=07",
    ]) {
      expect(matchKeyOfRfc2253(s)).toBe(key);
    }
    expect(matchKeyOfRfc2253("OU=07,CN=Z1")).not.toBe(key);
    expect(matchKeyOfRfc2253("CN=Z2,OU=07")).not.toBe(key);
    expect(matchKeyOfRfc2253("garbage")).toBeNull();
  });

  test("malformed DER is a DerError, never a crash", () => {
    const der = cast().supplierXmlSign.der;
    for (let cut = 0; cut < der.length; cut += 7)
      expect(() => parseCertificate(der.subarray(0, cut))).toThrow(DerError);
    const flipped = Buffer.from(der);
    flipped[1]! ^= 0x40;
    expect(() => parseCertificate(flipped)).toThrow(DerError);
  });

  test("parsed once per DER; public key imported once per implementation", () => {
    const der = Buffer.from(cast().replacementDs.der);
    const a = parseCertificateCached(der);
    expect(parseCertificateCached(Buffer.from(der))).toBe(a);
    expect(publicKeyOf(a, opensslEcdsa)).toBe(publicKeyOf(a, opensslEcdsa));
    expect(publicKeyOf(a, nobleEcdsa).impl).toBe("noble");
  });

  test("the cache never answers for a DER that differs in one byte, wherever its bytes sit", () => {
    const der = Buffer.from(cast().replacementKa.der);
    const a = parseCertificateCached(der);
    // The last byte lies in the signature's s: the DER stays well-formed, the certificate is another.
    const changed = Buffer.from(der);
    changed[changed.length - 1]! ^= 0x01;
    const b = parseCertificateCached(changed);
    expect(b).not.toBe(a);
    expect(b.derHash).not.toBe(a.derHash);
    expect(Buffer.from(b.signature).equals(Buffer.from(a.signature))).toBe(false);
    // A view into a larger buffer is keyed by its own bytes only.
    const framed = Buffer.concat([Buffer.from([1, 2, 3]), der, Buffer.from([4])]);
    expect(parseCertificateCached(framed.subarray(3, 3 + der.length))).toBe(a);
    expect(parseCertificateCached(new Uint8Array(changed))).toBe(b);
  });
});

describe("trust store: certificate paths", () => {
  const pki = cast().pki;
  const at = RECEIVED_AT;

  test.each([opensslEcdsa, nobleEcdsa])(
    "a supplier certificate chains to the root through the OCA (%#)",
    (ecdsa) => {
      const store = new TrustStore(cast().trust, ecdsa);
      const r = store.validate(cast().supplierXmlSign.cert, { at });
      expect(r.ok).toBe(true);
      if (r.ok)
        expect(r.chain.map((c) => c.subject.rfc2253)).toEqual([
          "2.5.4.45=#03090090B3D51F30010000,OU=87,CN=ACEE ACG",
          "CN=Z1,OU=07",
          "CN=ZA,OU=00",
        ]);
    },
  );

  test("an OCA can be the anchor itself", () => {
    const store = new TrustStore({ anchors: [pki.oca.der] }, opensslEcdsa);
    expect(store.validate(cast().replacementDs.cert, { at }).ok).toBe(true);
  });

  test("expired, not yet valid, revoked, unknown issuer, forged signature, non-CA issuer, unknown critical extension, path length", () => {
    const store = new TrustStore(cast().trust, opensslEcdsa);
    const expired = pki.issue("expired", { ou: "87", entityId: "90B3D51F30010000" }, ["digitalSignature"], {
      notAfter: new Date(Date.UTC(2021, 0, 1)),
    }).cert;
    expectReason(store.validate(expired, { at }), /not valid at/);
    expect(store.validate(expired, { at: null }).ok).toBe(true); // ApplyTimeBasedCPVChecks = false
    const future = pki.issue("future", { ou: "87" }, ["digitalSignature"], {
      notBefore: new Date(Date.UTC(2040, 0, 1)),
    }).cert;
    expect(store.validate(future, { at }).ok).toBe(false);

    const revoked = new TrustStore(
      { ...cast().trust, revokedSerials: [cast().supplierXmlSign.cert.serialHex.toLowerCase()] },
      opensslEcdsa,
    );
    expectReason(revoked.validate(cast().supplierXmlSign.cert, { at }), /revoked/);

    const stranger = buildTestPki("another-pki").issue("x", { ou: "87" }, ["digitalSignature"]).cert;
    expectReason(store.validate(stranger, { at }), /no trusted issuer/);

    // Same names and key ids as our OCA, signed by another key: the signature check catches it.
    const forged = buildTestPki("another-pki").issue("x", { ou: "87" }, ["digitalSignature"], {
      issuerPoint: pki.oca.point,
    }).cert;
    expect(forged.authorityKeyId).toBe(pki.oca.cert.subjectKeyId);
    expect(store.validate(forged, { at }).ok).toBe(false);

    const notCa = pki.issue("leaf-as-ca", { ou: "07", cn: "Z9", printable: true }, ["digitalSignature"]);
    const underLeaf = pki.issue("under-leaf", { ou: "87" }, ["digitalSignature"], {
      issuer: { ou: "07", cn: "Z9", printable: true },
      issuerPoint: notCa.point,
      signingKey: notCa.scalar,
    }).cert;
    const withLeaf = new TrustStore(pki.trust([notCa]), opensslEcdsa);
    expectReason(withLeaf.validate(underLeaf, { at }), /not a CA/);

    const critical = pki.issue("critical", { ou: "87" }, ["digitalSignature"], {
      extraExtensions: [{ oid: "1.2.3.4", critical: true, value: Buffer.from([5, 0]) }],
    }).cert;
    expectReason(store.validate(critical, { at }), /unknown critical extension 1.2.3.4/);

    // A second OCA under the pathlen-0 OCA: path length exceeded.
    const subCa = pki.issue("sub-ca", { ou: "07", cn: "Z1S", printable: true }, ["keyCertSign"], {
      ca: { pathLength: null },
    });
    const underSub = pki.issue("under-sub", { ou: "87" }, ["digitalSignature"], {
      issuer: { ou: "07", cn: "Z1S", printable: true },
      issuerPoint: subCa.point,
      signingKey: subCa.scalar,
    }).cert;
    const withSub = new TrustStore(pki.trust([subCa]), opensslEcdsa);
    expectReason(withSub.validate(underSub, { at }), /path length/);
  });

  test("required policies, when configured", () => {
    const store = new TrustStore({ ...cast().trust, requiredPolicies: ["1.2.3"] }, opensslEcdsa);
    expect(store.validate(cast().supplierXmlSign.cert, { at }).ok).toBe(false);
  });

  test("find by issuer and serial", () => {
    const store = new TrustStore(cast().trust, opensslEcdsa);
    const c = cast().supplierXmlSign.cert;
    expect(store.findByIssuerSerial("CN=Z1, OU=07", c.serial)?.derHash).toBe(c.derHash);
    expect(store.findByIssuerSerial("CN=Z1,OU=07", c.serial + 1n)).toBeUndefined();
    expect(store.findByIssuerSerial("CN=ZA,OU=00", c.serial)).toBeUndefined();
  });

  test("snapshot round trip", () => {
    const config = {
      ...cast().trust,
      revokedSerials: ["AB"],
      maxPathLength: 3,
      requiredPolicies: [TEST_POLICY_OID],
    };
    const back = decodeSmkiSnapshot(encodeSmkiSnapshot(config));
    expect(back.anchors.map((b) => Buffer.from(b))).toEqual(config.anchors.map((b) => Buffer.from(b)));
    expect(back.certificates!.map((b) => Buffer.from(b))).toEqual(
      config.certificates!.map((b) => Buffer.from(b)),
    );
    expect([back.revokedSerials, back.maxPathLength, back.requiredPolicies]).toEqual([
      ["AB"],
      3,
      [TEST_POLICY_OID],
    ]);
  });
});
