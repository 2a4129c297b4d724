/**
 * The dsp-validate worker task: the worker-side DSP checks of a batch of DUIS requests and, for every
 * request that passes them, the DSP countersignature over the bytes received (reference §2.7: an
 * enveloped signature appended as the last child, everything else byte-for-byte). Countersigning here,
 * in the same task as the verify, costs one ECDSA sign and no extra task round trip; a request that a
 * later topology check rejects wastes that sign, which is cheaper than a second pool task for the rest.
 *
 * Plain data in and out: the DSP's signing key travels as its 32-byte scalar and certificate DER and
 * is imported once per thread.
 */
import * as crypto from "node:crypto";
import { ecdsaImplementation, type EcPrivateKey } from "../crypto/ecdsa";
import { parseCertificateCached } from "../smki/certificate";
import { verifyDuisBatch, type DuisBatchResult, type VerifyDuisBatchTask } from "../tasks";
import { parseXml } from "../xml/parser";
import { countersignDuisDocument, type XmlSigningKey } from "../xmldsig/duis-signature";

/** The DSP's XML-signing credential (dSPXmlSign certificate and its private key). */
export interface DspSigningCredential {
  /** 32-byte big-endian private scalar. Never logged. */
  readonly scalar: Uint8Array;
  readonly certificate: Uint8Array;
}

export interface DspBatchTask extends VerifyDuisBatchTask {
  /** Absent: no countersigning (the result's `countersigned` is null). */
  readonly countersignWith?: DspSigningCredential;
}

export interface DspBatchItemResult {
  readonly verification: DuisBatchResult;
  /** The countersigned bytes of a request that passed every worker check, else null. */
  readonly countersigned: Uint8Array | null;
  /** Why countersigning failed (a bug or a bad key), when it did. */
  readonly countersignError?: string;
}

const keys = new Map<string, XmlSigningKey>();

function signingKey(cred: DspSigningCredential, implementation: "openssl" | "noble"): XmlSigningKey {
  const id = crypto
    .createHash("sha256")
    .update(implementation)
    .update(cred.scalar)
    .update(cred.certificate)
    .digest("hex");
  let key = keys.get(id);
  if (!key) {
    if (keys.size >= 4) keys.clear();
    const ecdsa = ecdsaImplementation(implementation);
    const privateKey: EcPrivateKey = ecdsa.importPrivateKey(cred.scalar);
    key = { ecdsa, privateKey, certificate: parseCertificateCached(cred.certificate) };
    keys.set(id, key);
  }
  return key;
}

/** verifyDuisBatch, then the DSP countersignature on each request that passed. */
export function validateAndCountersignBatch(task: DspBatchTask): DspBatchItemResult[] {
  const results = verifyDuisBatch(task);
  const data = task.data instanceof Uint8Array ? task.data : new Uint8Array(task.data);
  const cred = task.countersignWith;
  return results.map((verification, i): DspBatchItemResult => {
    if (!cred || !verification.ok) return { verification, countersigned: null };
    const item = task.items[i]!;
    const bytes = data.subarray(item.offset, item.offset + item.length);
    try {
      const doc = parseXml(bytes, task.xmlLimits);
      const out = countersignDuisDocument(bytes, doc, signingKey(cred, task.implementation ?? "openssl"));
      return { verification, countersigned: new Uint8Array(out.buffer, out.byteOffset, out.byteLength) };
    } catch (err) {
      return { verification, countersigned: null, countersignError: (err as Error).message };
    }
  });
}
