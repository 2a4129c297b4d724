/**
 * The port through which dsp-validate hands requests to the crypto workers. The processor sees only
 * this interface: production passes the piscina pool (workers/dsp-pool.ts), unit tests and the
 * `ecos check` pre-flight the inline implementation below, which runs the very same task function on
 * the calling thread.
 */
import type { EcdsaImplementationName } from "../../workers/crypto/ecdsa";
import type { ExecutionDatePolicy } from "../../workers/dsp/checks";
import {
  validateAndCountersignRequests,
  type DspBatchItemResult,
  type DspSigningCredential,
} from "../../workers/dsp/dsp-task";
import { encodeSmkiSnapshot, type SmkiSnapshot } from "../../workers/smki/snapshot";
import type { TrustStoreConfig } from "../../workers/smki/trust";
import type { DuisBatchItem } from "../../workers/tasks";
import type { XmlLimits } from "../../workers/xml/parser";

export type { DspBatchItemResult, DspSigningCredential };

export interface DspWorkInput {
  /** The bytes received, unchanged. */
  readonly bytes: Uint8Array;
  /** Time of receipt, epoch ms. */
  readonly receivedAt: number;
}

export interface DspVerifierPort {
  /** One result per input, in input order. Rejects only when the work itself failed (e.g. a crashed thread). */
  verifyBatch(inputs: readonly DspWorkInput[]): Promise<DspBatchItemResult[]> | DspBatchItemResult[];
  /** Replaces the SMKI trust configuration for later batches. */
  setTrust(trust: TrustStoreConfig): void;
  close(): Promise<void>;
}

export interface DspVerifierOptions {
  readonly trust: TrustStoreConfig;
  /** The DSP's XML-signing credential; without it accepted requests are forwarded uncountersigned. */
  readonly countersignWith?: DspSigningCredential;
  readonly implementation?: EcdsaImplementationName;
  readonly xmlLimits?: XmlLimits;
  readonly executionDate?: ExecutionDatePolicy;
}

/**
 * Packs inputs into one buffer with offsets, as a pool task carries them. The buffer is a fresh
 * ArrayBuffer of its own (it is transferred), not zero-filled first: every byte is written.
 */
export function packInputs(inputs: readonly DspWorkInput[]): { data: Uint8Array; items: DuisBatchItem[] } {
  let total = 0;
  for (const x of inputs) total += x.bytes.length;
  const data = Buffer.allocUnsafeSlow(total);
  const items: DuisBatchItem[] = [];
  let at = 0;
  for (const x of inputs) {
    data.set(x.bytes, at);
    items.push({ offset: at, length: x.bytes.length, receivedAt: x.receivedAt });
    at += x.bytes.length;
  }
  return { data, items };
}

/** Runs the worker task on the calling thread: for tests, the CLI pre-flight and tiny deployments. */
export class InlineDspVerifier implements DspVerifierPort {
  private smki: SmkiSnapshot;
  constructor(private readonly options: DspVerifierOptions) {
    this.smki = encodeSmkiSnapshot(options.trust);
  }
  verifyBatch(inputs: readonly DspWorkInput[]): DspBatchItemResult[] {
    // The same task function as the pool's, on the inputs' own bytes (nothing to transfer here).
    return validateAndCountersignRequests(inputs, {
      smki: this.smki,
      ...(this.options.countersignWith ? { countersignWith: this.options.countersignWith } : {}),
      ...(this.options.implementation ? { implementation: this.options.implementation } : {}),
      ...(this.options.xmlLimits ? { xmlLimits: this.options.xmlLimits } : {}),
      ...(this.options.executionDate ? { executionDate: this.options.executionDate } : {}),
    });
  }
  setTrust(trust: TrustStoreConfig): void {
    this.smki = encodeSmkiSnapshot(trust);
  }
  async close(): Promise<void> {}
}
