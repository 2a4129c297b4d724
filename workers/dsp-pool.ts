/**
 * The dsp-validate crypto pool: piscina threads running validateAndCountersignBatch (verify + the
 * DSP countersignature) on batches handed over by the dsp-validate processor's processBatch. A run of
 * records is cut into tasks of `batchSize` (default 48: one task hand-off costs about one ECDSA
 * verify), all in flight at once; their bytes are copied once into a transferred ArrayBuffer.
 */
import * as os from "node:os";
import * as path from "node:path";
import { Piscina } from "piscina";
import { EcosError } from "../processors/runtime/errors";
import type { DspVerifierOptions, DspVerifierPort, DspWorkInput } from "../processors/dsp/verifier";
import { packInputs } from "../processors/dsp/verifier";
import type { DspBatchItemResult, DspBatchTask } from "./dsp/dsp-task";
import { encodeSmkiSnapshot, type SmkiSnapshot } from "./smki/snapshot";
import type { TrustStoreConfig } from "./smki/trust";

export interface DspWorkerPoolOptions extends DspVerifierOptions {
  /** Worker threads. Default: available parallelism − 1, at least 1. */
  readonly threads?: number;
  /** Requests per task (default 48). */
  readonly batchSize?: number;
}

export class DspWorkerPool implements DspVerifierPort {
  private readonly pool: Piscina;
  private readonly batchSize: number;
  private smki: SmkiSnapshot;
  private tasks = 0;

  constructor(private readonly options: DspWorkerPoolOptions) {
    const threads = options.threads ?? Math.max(1, os.availableParallelism() - 1);
    this.batchSize = options.batchSize ?? 48;
    this.smki = encodeSmkiSnapshot(options.trust);
    this.pool = new Piscina({
      filename: path.join(__dirname, "dsp-pool-worker.cjs"),
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
    });
  }

  get stats(): { readonly tasks: number; readonly threads: number } {
    return { tasks: this.tasks, threads: this.pool.threads.length };
  }

  async verifyBatch(inputs: readonly DspWorkInput[]): Promise<DspBatchItemResult[]> {
    const parts: Promise<DspBatchItemResult[]>[] = [];
    for (let i = 0; i < inputs.length; i += this.batchSize)
      parts.push(this.run(inputs.slice(i, i + this.batchSize)));
    return (await Promise.all(parts)).flat();
  }

  private async run(inputs: readonly DspWorkInput[]): Promise<DspBatchItemResult[]> {
    const { data, items } = packInputs(inputs);
    const task: DspBatchTask = {
      data: data.buffer,
      items,
      smki: this.smki,
      ...(this.options.countersignWith ? { countersignWith: this.options.countersignWith } : {}),
      ...(this.options.implementation ? { implementation: this.options.implementation } : {}),
      ...(this.options.xmlLimits ? { xmlLimits: this.options.xmlLimits } : {}),
      ...(this.options.executionDate ? { executionDate: this.options.executionDate } : {}),
    };
    this.tasks++;
    try {
      return (await this.pool.run(task, {
        name: "validateAndCountersignBatch",
        transferList: [data.buffer as ArrayBuffer],
      })) as DspBatchItemResult[];
    } catch (err) {
      throw new EcosError(
        "ECOS_WORKER_FAILED",
        `dsp-validate worker task failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  setTrust(trust: TrustStoreConfig): void {
    this.smki = encodeSmkiSnapshot(trust);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
