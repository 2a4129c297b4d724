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
import { batchValidationContext, type DuisBatchResult, type VerifyDuisBatchTask } from "../tasks";
import {
  countersignDuisDocument,
  type CanonicalDocument,
  type XmlSigningKey,
} from "../xmldsig/duis-signature";
import { validateDuisRequestKeeping, type DspValidationContext } from "./validate";

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

/**
 * The checks of verifyDuisBatch, then the DSP countersignature on each request that passed, over the
 * document and canonical form the verification already built (no second parse or canonicalisation).
 */
export function validateAndCountersignBatch(task: DspBatchTask): DspBatchItemResult[] {
  const data = task.data instanceof Uint8Array ? task.data : new Uint8Array(task.data);
  const ctx = batchValidationContext(task);
  const key = countersigningKey(task);
  const out: DspBatchItemResult[] = [];
  for (const item of task.items)
    out.push(
      validateAndCountersignOne(
        data.subarray(item.offset, item.offset + item.length),
        item.receivedAt,
        ctx,
        key,
      ),
    );
  return out;
}

/** One request of a {@link DspRequestsTask}: its bytes as received and its time of receipt. */
export interface DspRequest {
  readonly bytes: Uint8Array;
  readonly receivedAt: number;
}

/** A batch task whose requests are given one by one rather than packed into one buffer. */
export type DspRequestsTask = Omit<DspBatchTask, "data" | "items">;

/**
 * validateAndCountersignBatch over requests that are already separate buffers, for a caller on the
 * same thread (the inline verifier): packing them into one buffer only pays off when it is
 * transferred to a worker. The bytes are only read.
 */
export function validateAndCountersignRequests(
  requests: readonly DspRequest[],
  task: DspRequestsTask,
): DspBatchItemResult[] {
  const ctx = batchValidationContext(task);
  const key = countersigningKey(task);
  const out: DspBatchItemResult[] = [];
  for (const r of requests) out.push(validateAndCountersignOne(r.bytes, r.receivedAt, ctx, key));
  return out;
}

/** The task's signing key, imported once per thread; a bad key fails each request's countersignature. */
function countersigningKey(task: DspRequestsTask): XmlSigningKey | Error | null {
  const cred = task.countersignWith;
  if (!cred) return null;
  try {
    return signingKey(cred, task.implementation ?? "openssl");
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

function validateAndCountersignOne(
  bytes: Uint8Array,
  receivedAt: number,
  ctx: DspValidationContext,
  key: XmlSigningKey | Error | null,
): DspBatchItemResult {
  let verification: DuisBatchResult;
  let canonical: CanonicalDocument | null = null;
  try {
    const kept = validateDuisRequestKeeping(bytes, receivedAt, ctx);
    verification = kept.verification;
    canonical = kept.canonical;
  } catch (err) {
    // A bug, not bad input (bad input is a failed check): report it for this item and go on.
    verification = {
      ok: false,
      code: "ECOS_PROCESS_FAILED",
      message: err instanceof Error ? err.message : String(err),
    };
  }
  return countersignItem(verification, canonical, bytes, key);
}

function countersignItem(
  verification: DuisBatchResult,
  canonical: CanonicalDocument | null,
  bytes: Uint8Array,
  key: XmlSigningKey | Error | null,
): DspBatchItemResult {
  if (!key || !verification.ok) return { verification, countersigned: null };
  try {
    if (key instanceof Error) throw key;
    if (!canonical) throw new Error("no parsed document for a request that passed");
    const signed = countersignDuisDocument(bytes, canonical.doc, key, canonical);
    return {
      verification,
      countersigned: new Uint8Array(signed.buffer, signed.byteOffset, signed.byteLength),
    };
  } catch (err) {
    return { verification, countersigned: null, countersignError: (err as Error).message };
  }
}
