/**
 * The DSP crypto pool: piscina threads running {@link verifyDuisBatch}, fed in batches.
 *
 * Handing a task to a thread costs ~110 µs of CPU, about one ECDSA verify, so requests are gathered
 * into batches (default 48) before they cross: `verify()` queues one request and the batch leaves when
 * it is full or at the end of the current turn of the event loop, whichever comes first;
 * `verifyMany()` cuts a known list into batches. A batch's bytes are copied once into a fresh
 * ArrayBuffer that is transferred (moved, not cloned) to the thread; the caller keeps its own bytes
 * (the DSP forwards the bytes received). The SMKI trust snapshot travels as a SharedArrayBuffer handle.
 *
 * Errors come back as `{ code, message }` and are rebuilt here as EcosError: a crashed thread rejects
 * every request of its batch with ECOS_WORKER_FAILED (retriable); piscina replaces the thread.
 */
import * as os from "node:os";
import * as path from "node:path";
import { Piscina } from "piscina";
import type { ErrorCode } from "../processors/runtime/errors";
import { EcosError } from "../processors/runtime/errors";
import type { EcdsaImplementationName } from "./crypto/ecdsa";
import type { ExecutionDatePolicy } from "./dsp/checks";
import type { DuisVerification } from "./dsp/validate";
import type { SmkiSnapshot } from "./smki/snapshot";
import { encodeSmkiSnapshot } from "./smki/snapshot";
import type { TrustStoreConfig } from "./smki/trust";
import type { DuisBatchItem, DuisBatchResult, VerifyDuisBatchTask } from "./tasks";
import type { XmlLimits } from "./xml/parser";

export interface DuisRequestInput {
  /** The bytes received, unchanged. */
  readonly bytes: Uint8Array;
  /** Time of receipt, epoch ms. */
  readonly receivedAt: number;
}

export interface DuisVerifierPoolOptions {
  /** SMKI trust anchors, known certificates and revoked serials. Replace later with setTrust(). */
  readonly trust: TrustStoreConfig;
  /** Worker threads. Default: available parallelism − 1, at least 1. */
  readonly threads?: number;
  /** Requests per task. Default 48. */
  readonly batchSize?: number;
  /** Batches queued beyond the running ones before `verify` waits (piscina maxQueue). Default 64. */
  readonly maxQueuedBatches?: number;
  /** ECDSA implementation in the threads. Default "openssl". */
  readonly implementation?: EcdsaImplementationName;
  readonly xmlLimits?: XmlLimits;
  readonly executionDate?: ExecutionDatePolicy;
  /** Thread entry exporting `verifyDuisBatch` (tests substitute a crashing one). Default pool-worker.cjs. */
  readonly workerFile?: string;
}

interface Pending {
  readonly input: DuisRequestInput;
  readonly resolve: (v: DuisVerification) => void;
  readonly reject: (e: unknown) => void;
}

function asVerification(r: DuisBatchResult): DuisVerification {
  // A result without a check id and with a crash code is an item that threw inside the worker.
  if (!r.ok && !("checkId" in r && r.checkId) && r.code === "ECOS_PROCESS_FAILED")
    throw new EcosError(r.code, r.message ?? "worker task failed");
  return r;
}

export class DuisVerifierPool {
  private readonly pool: Piscina;
  private readonly batchSize: number;
  private smki: SmkiSnapshot;
  private pending: Pending[] = [];
  private flushScheduled = false;
  private tasks = 0;
  private items = 0;

  constructor(private readonly options: DuisVerifierPoolOptions) {
    const threads = options.threads ?? Math.max(1, os.availableParallelism() - 1);
    this.batchSize = options.batchSize ?? 48;
    this.smki = encodeSmkiSnapshot(options.trust);
    this.pool = new Piscina({
      filename: options.workerFile ?? path.join(__dirname, "pool-worker.cjs"),
      minThreads: threads,
      maxThreads: threads,
      maxQueue: options.maxQueuedBatches ?? 64,
      idleTimeout: 60_000,
    });
  }

  /** Replaces the SMKI trust configuration for every batch sent from now on. */
  setTrust(trust: TrustStoreConfig): void {
    this.smki = encodeSmkiSnapshot(trust);
  }

  /** Tasks and requests sent so far. */
  get stats(): { readonly tasks: number; readonly items: number; readonly threads: number } {
    return { tasks: this.tasks, items: this.items, threads: this.pool.threads.length };
  }

  /** Queues one request; it leaves in the next batch. */
  verify(input: DuisRequestInput): Promise<DuisVerification> {
    return new Promise<DuisVerification>((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (this.pending.length >= this.batchSize) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Verifies a list of requests in batches, all batches in parallel; results in input order. */
  async verifyMany(inputs: readonly DuisRequestInput[]): Promise<DuisVerification[]> {
    const batches: Promise<DuisVerification[]>[] = [];
    for (let i = 0; i < inputs.length; i += this.batchSize) {
      batches.push(this.runBatch(inputs.slice(i, i + this.batchSize)).then((rs) => rs.map(asVerification)));
    }
    return (await Promise.all(batches)).flat();
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.batchSize);
      this.runBatch(batch.map((p) => p.input)).then(
        (results) =>
          batch.forEach((p, i) => {
            try {
              p.resolve(asVerification(results[i]!));
            } catch (err) {
              p.reject(err);
            }
          }),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      );
    }
  }

  private async runBatch(inputs: readonly DuisRequestInput[]): Promise<DuisBatchResult[]> {
    let total = 0;
    for (const x of inputs) total += x.bytes.length;
    const data = new ArrayBuffer(total);
    const view = new Uint8Array(data);
    const items: DuisBatchItem[] = [];
    let at = 0;
    for (const x of inputs) {
      view.set(x.bytes, at);
      items.push({ offset: at, length: x.bytes.length, receivedAt: x.receivedAt });
      at += x.bytes.length;
    }
    const task: VerifyDuisBatchTask = {
      data,
      items,
      smki: this.smki,
      ...(this.options.implementation ? { implementation: this.options.implementation } : {}),
      ...(this.options.xmlLimits ? { xmlLimits: this.options.xmlLimits } : {}),
      ...(this.options.executionDate ? { executionDate: this.options.executionDate } : {}),
    };
    this.tasks++;
    this.items += inputs.length;
    try {
      return (await this.pool.run(task, {
        name: "verifyDuisBatch",
        transferList: [data],
      })) as DuisBatchResult[];
    } catch (err) {
      throw rebuildError(err);
    }
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}

/** A failure from the pool (thread crash, abort, queue full) as an EcosError. */
function rebuildError(err: unknown): EcosError {
  if (err instanceof EcosError) return err;
  const plain = err as { code?: unknown; message?: unknown } | null;
  const message = typeof plain?.message === "string" ? plain.message : String(err);
  const code: ErrorCode = "ECOS_WORKER_FAILED";
  return new EcosError(code, `crypto worker task failed: ${message}`, { cause: err });
}
