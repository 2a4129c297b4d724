import * as crypto from "node:crypto";
import {
  flipS,
  isHighS,
  nobleEcdsa,
  opensslEcdsa,
  pointFromSpki,
  spkiFromPoint,
} from "../../workers/crypto/ecdsa";
import { deriveScalar } from "../../workers/testing/test-pki";

const impls = [opensslEcdsa, nobleEcdsa];

describe("ECDSA P-256: OpenSSL and noble behind one interface", () => {
  const scalar = deriveScalar("crypto-test", "key");
  const data = Buffer.from("<ds:SignedInfo>…</ds:SignedInfo>", "utf8");

  test("both derive the same public point from a scalar", () => {
    expect(Buffer.from(opensslEcdsa.publicPointOf(opensslEcdsa.importPrivateKey(scalar)))).toEqual(
      Buffer.from(nobleEcdsa.publicPointOf(nobleEcdsa.importPrivateKey(scalar))),
    );
  });

  test.each([
    [opensslEcdsa, nobleEcdsa],
    [nobleEcdsa, opensslEcdsa],
    [opensslEcdsa, opensslEcdsa],
    [nobleEcdsa, nobleEcdsa],
  ])("%#: a signature made by one verifies with the other; a changed byte fails", (signer, verifier) => {
    const sk = signer.importPrivateKey(scalar);
    const pk = verifier.importPublicKey(signer.publicPointOf(sk));
    for (let i = 0; i < 8; i++) {
      const msg = Buffer.concat([data, Buffer.from([i])]);
      const sig = signer.sign(sk, msg);
      expect(sig.length).toBe(64);
      expect(verifier.verify(pk, msg, sig)).toBe(true);
      const bad = Buffer.from(msg);
      bad[0]! ^= 1;
      expect(verifier.verify(pk, bad, sig)).toBe(false);
    }
  });

  test("high-S signatures (as OpenSSL, the JDK and DCC produce half the time) are accepted by both", () => {
    const sk = nobleEcdsa.importPrivateKey(scalar);
    const low = nobleEcdsa.sign(sk, data);
    expect(isHighS(low)).toBe(false); // noble signs low-S
    const high = flipS(low);
    expect(isHighS(high)).toBe(true);
    for (const v of impls)
      expect(v.verify(v.importPublicKey(nobleEcdsa.publicPointOf(sk)), data, high)).toBe(true);
    // And OpenSSL's own signatures, high-S or not, verify with noble.
    const osk = opensslEcdsa.importPrivateKey(scalar);
    const npk = nobleEcdsa.importPublicKey(opensslEcdsa.publicPointOf(osk));
    let sawHigh = false;
    for (let i = 0; i < 24; i++) {
      const sig = opensslEcdsa.sign(osk, data);
      sawHigh ||= isHighS(sig);
      expect(nobleEcdsa.verify(npk, data, sig)).toBe(true);
    }
    expect(sawHigh).toBe(true);
  });

  test("noble signs deterministically (RFC 6979): the RFC's P-256/SHA-256 'sample' vector", () => {
    // RFC 6979 A.2.5; noble normalises to low-S, so compare after flipping s back.
    const key = nobleEcdsa.importPrivateKey(
      Buffer.from("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721", "hex"),
    );
    const sig = Buffer.from(nobleEcdsa.sign(key, Buffer.from("sample")));
    expect(Buffer.from(nobleEcdsa.sign(key, Buffer.from("sample")))).toEqual(sig);
    const rs = (isHighS(sig) ? sig : Buffer.from(flipS(sig))).toString("hex").toUpperCase();
    expect(rs).toBe(
      "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716" +
        "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
    );
  });

  test("bad signatures and keys: wrong length, zero, off-curve point", () => {
    const sk = opensslEcdsa.importPrivateKey(scalar);
    for (const v of impls) {
      const pk = v.importPublicKey(opensslEcdsa.publicPointOf(sk));
      expect(v.verify(pk, data, Buffer.alloc(63))).toBe(false);
      expect(v.verify(pk, data, Buffer.alloc(64))).toBe(false);
      const offCurve = Buffer.from(opensslEcdsa.publicPointOf(sk));
      offCurve[64]! ^= 1;
      expect(() => v.importPublicKey(offCurve)).toThrow();
    }
    expect(() =>
      opensslEcdsa.verify(nobleEcdsa.importPublicKey(opensslEcdsa.publicPointOf(sk)), data, Buffer.alloc(64)),
    ).toThrow(/another ECDSA/);
  });

  test("SPKI and point forms are interchangeable; SPKI matches Node's export", () => {
    const { publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const spki = publicKey.export({ format: "der", type: "spki" });
    const point = pointFromSpki(spki);
    expect(point.length).toBe(65);
    expect(spkiFromPoint(point)).toEqual(spki);
  });
});
