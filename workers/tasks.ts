/**
 * Worker-pool task functions. Plain named functions: plain objects and byte arrays in, plain objects
 * out; nothing but data crosses the boundary. Unit tests call them inline; workers/pool.ts runs them
 * on piscina threads (through pool-worker.cjs).
 *
 * One task is a batch: handing a task to a thread costs ~110 µs of CPU, more than one ECDSA verify,
 * so dozens of requests travel together. Their bytes come packed in one ArrayBuffer (transferred, not
 * copied) with offsets.
 */
import type { ErrorCode } from "../processors/runtime/errors";
import type { EcdsaImplementationName } from "./crypto/ecdsa";
import { ecdsaImplementation } from "./crypto/ecdsa";
import type { ExecutionDatePolicy } from "./dsp/checks";
import type { DspValidationContext, DuisVerification } from "./dsp/validate";
import { validateDuisRequest } from "./dsp/validate";
import type { SmkiSnapshot } from "./smki/snapshot";
import { decodeSmkiSnapshot } from "./smki/snapshot";
import { TrustStore } from "./smki/trust";
import type { XmlLimits } from "./xml/parser";

/** One request of a batch: its bytes are `data[offset, offset + length)`. */
export interface DuisBatchItem {
  readonly offset: number;
  readonly length: number;
  /** Time of receipt, epoch ms: decides certificate validity and the execution-date check. */
  readonly receivedAt: number;
}

export interface VerifyDuisBatchTask {
  readonly data: ArrayBuffer | SharedArrayBuffer | Uint8Array;
  readonly items: readonly DuisBatchItem[];
  readonly smki: SmkiSnapshot;
  /** Default "openssl". */
  readonly implementation?: EcdsaImplementationName;
  readonly xmlLimits?: XmlLimits;
  readonly executionDate?: ExecutionDatePolicy;
}

/** A result per item: the verification, or `{ ok: false, code, message }` when the item itself crashed. */
export type DuisBatchResult =
  DuisVerification | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

// The trust store of this thread, rebuilt when a task brings another snapshot.
const stores = new Map<string, TrustStore>();

function trustStoreFor(snapshot: SmkiSnapshot, implementation: EcdsaImplementationName): TrustStore {
  const key = `${snapshot.id}/${implementation}`;
  let store = stores.get(key);
  if (!store) {
    if (stores.size >= 4) stores.clear(); // old snapshots are dropped; parsed certificates stay cached
    store = new TrustStore(decodeSmkiSnapshot(snapshot), ecdsaImplementation(implementation));
    stores.set(key, store);
  }
  return store;
}

/** The validation context of a batch task on this thread (trust store, ECDSA, limits, policy). */
export function batchValidationContext(
  task: VerifyDuisBatchTask | Omit<VerifyDuisBatchTask, "data" | "items">,
): DspValidationContext {
  const implementation = task.implementation ?? "openssl";
  return {
    trust: trustStoreFor(task.smki, implementation),
    ecdsa: ecdsaImplementation(implementation),
    ...(task.xmlLimits ? { xmlLimits: task.xmlLimits } : {}),
    ...(task.executionDate ? { executionDate: task.executionDate } : {}),
  };
}

/** Runs the worker-side DSP checks on every request of a batch; one result per item, in order. */
export function verifyDuisBatch(task: VerifyDuisBatchTask): DuisBatchResult[] {
  const data = task.data instanceof Uint8Array ? task.data : new Uint8Array(task.data);
  const ctx = batchValidationContext(task);
  return task.items.map((item): DuisBatchResult => {
    try {
      return validateDuisRequest(data.subarray(item.offset, item.offset + item.length), item.receivedAt, ctx);
    } catch (err) {
      // A bug, not bad input (bad input is a failed check): report it for this item and go on.
      return {
        ok: false,
        code: "ECOS_PROCESS_FAILED",
        message: err instanceof Error ? err.message : String(err),
      };
    }
  });
}
