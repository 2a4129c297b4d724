/**
 * The CoS Party crypto pool: piscina threads running verifyCosRequestBatch and signPreCommandBatch
 * (party-task.ts) on batches handed over by the processors' processBatch. A run is cut into tasks of
 * `batchSize` (default 48: one hand-off costs about one ECDSA verify), all in flight at once; their
 * bytes are copied once into a transferred ArrayBuffer. Shaped like workers/dsp-pool.ts; it lives
 * here only because this folder is the CoS Party's (it belongs in workers/).
 */
import * as os from "node:os";
import * as path from "node:path";
import { Piscina } from "piscina";
import { EcosError } from "../runtime/errors";
import { encodeSmkiSnapshot, type SmkiSnapshot } from "../../workers/smki/snapshot";
import type { TrustStoreConfig } from "../../workers/smki/trust";
import {
  preCommandTaskFor,
  verifyTaskFor,
  type CosPartyCryptoOptions,
  type CosPartyCryptoPort,
  type CosVerifyInput,
  type CosVerifyResult,
  type PreCommandJob,
  type PreCommandResult,
} from "./crypto";

export interface CosPartyWorkerPoolOptions extends CosPartyCryptoOptions {
  /** Worker threads. Default: available parallelism − 1, at least 1. */
  readonly threads?: number;
  /** Requests per task (default 48). */
  readonly batchSize?: number;
}

export class CosPartyWorkerPool implements CosPartyCryptoPort {
  private readonly pool: Piscina;
  private readonly batchSize: number;
  private smki: SmkiSnapshot;
  private tasks = 0;

  constructor(private readonly options: CosPartyWorkerPoolOptions) {
    const threads = options.threads ?? Math.max(1, os.availableParallelism() - 1);
    this.batchSize = options.batchSize ?? 48;
    this.smki = encodeSmkiSnapshot(options.trust);
    this.pool = new Piscina({
      filename: path.join(__dirname, "pool-worker.cjs"),
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
    });
  }

  get stats(): { readonly tasks: number; readonly threads: number } {
    return { tasks: this.tasks, threads: this.pool.threads.length };
  }

  async verifyBatch(inputs: readonly CosVerifyInput[]): Promise<CosVerifyResult[]> {
    const parts: Promise<CosVerifyResult[]>[] = [];
    for (let i = 0; i < inputs.length; i += this.batchSize) {
      const task = verifyTaskFor(this.options, this.smki, inputs.slice(i, i + this.batchSize));
      parts.push(this.run<CosVerifyResult>("verifyCosRequestBatch", task, task.data as Uint8Array));
    }
    return (await Promise.all(parts)).flat();
  }

  async signPreCommands(jobs: readonly PreCommandJob[]): Promise<PreCommandResult[]> {
    const parts: Promise<PreCommandResult[]>[] = [];
    for (let i = 0; i < jobs.length; i += this.batchSize) {
      const task = preCommandTaskFor(this.options, jobs.slice(i, i + this.batchSize));
      parts.push(this.run<PreCommandResult>("signPreCommandBatch", task, task.data as Uint8Array));
    }
    return (await Promise.all(parts)).flat();
  }

  private async run<R>(name: string, task: object, data: Uint8Array): Promise<R[]> {
    this.tasks++;
    try {
      return (await this.pool.run(
        { ...task, data: data.buffer },
        { name, transferList: [data.buffer as ArrayBuffer] },
      )) as R[];
    } catch (err) {
      throw new EcosError("ECOS_WORKER_FAILED", `CoS Party worker task failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  setTrust(trust: TrustStoreConfig): void {
    this.smki = encodeSmkiSnapshot(trust);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
