/**
 * ECDSA P-256 with SHA-256, behind one interface, in two independent implementations:
 *
 * - {@link opensslEcdsa}: Node's crypto (OpenSSL). The hot path. A public key is turned into a
 *   `KeyObject` once, when the caller imports it (building one from SPKI costs about two verifies);
 *   callers cache the returned handle per certificate (smki/ does).
 * - {@link nobleEcdsa}: `@noble/curves` (pure JS). Deterministic RFC 6979 signatures for reproducible
 *   test vectors, and a second opinion in cross-implementation tests. Verifies with `lowS: false`:
 *   OpenSSL, the JDK and DCC's own signatures are high-S about half the time and are valid ECDSA.
 *
 * Signatures are always the raw 64-byte r‖s form (XMLDSig 1.1 / RFC 4050, "ieee-p1363"), which is
 * what a DUIS SignatureValue holds (reference §2.7 rule 4). Data is hashed with SHA-256 inside.
 */
import * as crypto from "node:crypto";
import { Module } from "node:module";
import type * as NobleNist from "@noble/curves/nist.js";

/** An imported public key. Opaque: only the implementation that made it can use it. */
export interface EcPublicKey {
  readonly impl: EcdsaImplementationName;
  /** Uncompressed point 04‖X‖Y (65 bytes). */
  readonly point: Uint8Array;
}

/** An imported private key. Never log or serialise one. */
export interface EcPrivateKey {
  readonly impl: EcdsaImplementationName;
}

export type EcdsaImplementationName = "openssl" | "noble";

export interface EcdsaP256 {
  readonly name: EcdsaImplementationName;
  /** Imports a public key from SubjectPublicKeyInfo DER or a 65-byte uncompressed point. Cache the result. */
  importPublicKey(spkiOrPoint: Uint8Array): EcPublicKey;
  /** Imports a private key from its 32-byte big-endian scalar. */
  importPrivateKey(scalar: Uint8Array): EcPrivateKey;
  /** SHA-256 + ECDSA verify of a raw r‖s signature. False (never a throw) for a wrong-length or bad signature. */
  verify(key: EcPublicKey, data: Uint8Array, signature: Uint8Array): boolean;
  /** SHA-256 + ECDSA sign; returns raw r‖s (64 bytes). */
  sign(key: EcPrivateKey, data: Uint8Array): Uint8Array;
  /** The public point of a private key (04‖X‖Y). */
  publicPointOf(key: EcPrivateKey): Uint8Array;
}

/** DER prefix of a P-256 SubjectPublicKeyInfo holding an uncompressed point (the point follows). */
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");

/** The uncompressed point inside a P-256 SPKI, or the input itself when it already is a point. */
export function pointFromSpki(spkiOrPoint: Uint8Array): Uint8Array {
  if (spkiOrPoint.length === 65 && spkiOrPoint[0] === 4) return spkiOrPoint;
  if (spkiOrPoint.length === 91 && Buffer.from(spkiOrPoint.subarray(0, 26)).equals(P256_SPKI_PREFIX)) {
    return spkiOrPoint.subarray(26);
  }
  throw new Error("not a P-256 public key with an uncompressed point");
}

export function spkiFromPoint(point: Uint8Array): Buffer {
  return Buffer.concat([P256_SPKI_PREFIX, point]);
}

/** Curve order n of P-256. */
export const P256_N = BigInt("0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");

/** The same signature with s replaced by n − s (valid too): to test that high-S signatures pass. */
export function flipS(signature: Uint8Array): Uint8Array {
  const s = BigInt("0x" + Buffer.from(signature.subarray(32, 64)).toString("hex"));
  const flipped = (P256_N - s).toString(16).padStart(64, "0");
  return Buffer.concat([signature.subarray(0, 32), Buffer.from(flipped, "hex")]);
}

/** True when s > n/2 (a "high-S" signature). */
export function isHighS(signature: Uint8Array): boolean {
  const s = BigInt("0x" + Buffer.from(signature.subarray(32, 64)).toString("hex"));
  return s > P256_N >> 1n;
}

interface OpensslPublicKey extends EcPublicKey {
  readonly impl: "openssl";
  readonly keyObject: crypto.KeyObject;
}
interface OpensslPrivateKey extends EcPrivateKey {
  readonly impl: "openssl";
  readonly keyObject: crypto.KeyObject;
  readonly point: Uint8Array;
}

function b64url(b: Uint8Array): string {
  return Buffer.from(b).toString("base64url");
}

export const opensslEcdsa: EcdsaP256 = {
  name: "openssl",
  importPublicKey(spkiOrPoint) {
    const point = pointFromSpki(spkiOrPoint);
    const keyObject = crypto.createPublicKey({ key: spkiFromPoint(point), format: "der", type: "spki" });
    const key: OpensslPublicKey = { impl: "openssl", point: Buffer.from(point), keyObject };
    return key;
  },
  importPrivateKey(scalar) {
    if (scalar.length !== 32) throw new Error("a P-256 private key is 32 bytes");
    // A JWK private key needs x and y as well as d: derive the point once through OpenSSL's ECDH.
    const ecdh = crypto.createECDH("prime256v1");
    ecdh.setPrivateKey(Buffer.from(scalar));
    const point = ecdh.getPublicKey();
    const keyObject = crypto.createPrivateKey({
      key: {
        kty: "EC",
        crv: "P-256",
        d: b64url(scalar),
        x: b64url(point.subarray(1, 33)),
        y: b64url(point.subarray(33, 65)),
      },
      format: "jwk",
    });
    const key: OpensslPrivateKey = { impl: "openssl", keyObject, point };
    return key;
  },
  verify(key, data, signature) {
    if (key.impl !== "openssl") throw new Error("key imported by another ECDSA implementation");
    if (signature.length !== 64) return false;
    try {
      return crypto.verify(
        "sha256",
        data,
        { key: (key as OpensslPublicKey).keyObject, dsaEncoding: "ieee-p1363" },
        signature,
      );
    } catch {
      return false;
    }
  },
  sign(key, data) {
    if (key.impl !== "openssl") throw new Error("key imported by another ECDSA implementation");
    return crypto.sign("sha256", data, {
      key: (key as OpensslPrivateKey).keyObject,
      dsaEncoding: "ieee-p1363",
    });
  },
  publicPointOf(key) {
    if (key.impl !== "openssl") throw new Error("key imported by another ECDSA implementation");
    return (key as OpensslPrivateKey).point;
  },
};

// ---- @noble/curves ---------------------------------------------------------------------------

type NobleP256 = (typeof NobleNist)["p256"];
let nobleP256: NobleP256 | undefined;

/**
 * @noble/curves 2.x is ESM-only. Node 20.19+ can `require()` it, but Jest's module registry cannot,
 * so load it through a plain Node `Module` (its `require` is Node's own loader, outside any test
 * sandbox). Loaded on first use; never on the OpenSSL hot path.
 */
function noble(): NobleP256 {
  if (!nobleP256) {
    const path = require.resolve("@noble/curves/nist.js");
    const host = new Module(__filename);
    nobleP256 = (host.require(path) as typeof NobleNist).p256;
  }
  return nobleP256;
}

interface NoblePublicKey extends EcPublicKey {
  readonly impl: "noble";
}
interface NoblePrivateKey extends EcPrivateKey {
  readonly impl: "noble";
  readonly scalar: Uint8Array;
  readonly point: Uint8Array;
}

export const nobleEcdsa: EcdsaP256 = {
  name: "noble",
  importPublicKey(spkiOrPoint) {
    const point = Uint8Array.from(pointFromSpki(spkiOrPoint));
    noble().Point.fromBytes(point).assertValidity(); // refuse points not on the curve at import
    const key: NoblePublicKey = { impl: "noble", point };
    return key;
  },
  importPrivateKey(scalar) {
    if (scalar.length !== 32) throw new Error("a P-256 private key is 32 bytes");
    const s = Uint8Array.from(scalar);
    const key: NoblePrivateKey = { impl: "noble", scalar: s, point: noble().getPublicKey(s, false) };
    return key;
  },
  verify(key, data, signature) {
    if (key.impl !== "noble") throw new Error("key imported by another ECDSA implementation");
    if (signature.length !== 64) return false;
    try {
      return noble().verify(Uint8Array.from(signature), Uint8Array.from(data), key.point, {
        lowS: false,
        prehash: true,
      });
    } catch {
      return false;
    }
  },
  sign(key, data) {
    if (key.impl !== "noble") throw new Error("key imported by another ECDSA implementation");
    // RFC 6979 deterministic k (noble's default without extraEntropy): same key + data → same bytes.
    const sig = noble().sign(Uint8Array.from(data), (key as NoblePrivateKey).scalar, {
      prehash: true,
      lowS: true,
    });
    return Buffer.from(sig);
  },
  publicPointOf(key) {
    if (key.impl !== "noble") throw new Error("key imported by another ECDSA implementation");
    return Buffer.from((key as NoblePrivateKey).point);
  },
};

export function ecdsaImplementation(name: EcdsaImplementationName): EcdsaP256 {
  return name === "noble" ? nobleEcdsa : opensslEcdsa;
}
