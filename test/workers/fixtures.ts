/** Shared fixtures for the worker tests: one deterministic test PKI per run, signed 6.23 builders. */
import type { EcdsaP256 } from "../../workers/crypto/ecdsa";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import { TrustStore } from "../../workers/smki/trust";
import type { Srv623Cast, Srv623XmlOptions } from "../../workers/testing/test-pki";
import { buildSrv623Cast, castSrv623Xml } from "../../workers/testing/test-pki";
import { parseXml } from "../../workers/xml/parser";
import { signDuisDocument } from "../../workers/xmldsig/duis-signature";

export const DEVICE_ID = "00-DB-12-34-56-78-90-A0";
/** Time of receipt used by the tests: inside the test PKI's validity (2020–2045). */
export const RECEIVED_AT = Date.UTC(2026, 5, 1, 12, 0, 0);

let cached: Srv623Cast | undefined;
export function cast(): Srv623Cast {
  cached ??= buildSrv623Cast();
  return cached;
}

export function trustStore(ecdsa: EcdsaP256 = opensslEcdsa, c: Srv623Cast = cast()): TrustStore {
  return new TrustStore(c.trust, ecdsa);
}

export function unsigned623(overrides: Partial<Srv623XmlOptions> = {}, counter = 1006): Buffer {
  return Buffer.from(castSrv623Xml(cast(), DEVICE_ID, counter, overrides), "utf8");
}

/** Signs any document with the cast's supplier xmlSign key (or `signer`). */
export function sign(
  xml: Buffer | string,
  signer = cast().supplierXmlSign,
  ecdsa: EcdsaP256 = opensslEcdsa,
): Buffer {
  const bytes = typeof xml === "string" ? Buffer.from(xml, "utf8") : xml;
  return signDuisDocument(bytes, parseXml(bytes), signer.signingKey(ecdsa));
}

export function signed623(overrides: Partial<Srv623XmlOptions> = {}, counter = 1006): Buffer {
  return sign(unsigned623(overrides, counter));
}
