/**
 * Optional: DCC Boxed's own JDK-signed vectors. They live in a GPL repository, so they are not copied
 * here; point ECOS_DCC_VECTORS_DIR at a folder holding `response.xml` (a DSP-signed DUIS response,
 * e.g. dccboxed-signing-tool's readfw-response-resigned.xml) and `signer.pem` (the DSP xml-sign
 * certificate that signed it) to run it. Skipped otherwise.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as crypto from "node:crypto";
import { nobleEcdsa, opensslEcdsa } from "../../workers/crypto/ecdsa";
import { parseCertificate } from "../../workers/smki/certificate";
import { canonicalizeExclusive } from "../../workers/xml/c14n";
import { parseXml } from "../../workers/xml/parser";
import { readDuisSignature, referenceOctets, signatureElements } from "../../workers/xmldsig/duis-signature";

const dir = process.env.ECOS_DCC_VECTORS_DIR;
const maybe = dir && fs.existsSync(path.join(dir, "response.xml")) ? test : test.skip;

maybe(
  "a DCC-signed response: inclusive-c14n digest and exclusive SignedInfo verify with both implementations",
  () => {
    const bytes = fs.readFileSync(path.join(dir!, "response.xml"));
    const pem = fs.readFileSync(path.join(dir!, "signer.pem"), "utf8");
    const cert = parseCertificate(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64"));
    const doc = parseXml(bytes);
    const sig = readDuisSignature(signatureElements(doc)[0]!);
    expect(crypto.createHash("sha256").update(referenceOctets(doc, 0), "utf8").digest()).toEqual(
      sig.digestValue,
    );
    const signedInfo = Buffer.from(canonicalizeExclusive(sig.signedInfo), "utf8");
    for (const ecdsa of [opensslEcdsa, nobleEcdsa]) {
      expect(ecdsa.verify(ecdsa.importPublicKey(cert.publicKeyPoint), signedInfo, sig.signatureValue)).toBe(
        true,
      );
    }
  },
);
