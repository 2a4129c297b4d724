/**
 * The port through which a CoS Party processor hands signature work to the workers. The processor
 * sees only this interface: production passes the piscina pool (worker-pool.ts), tests the inline
 * implementation below, which runs the very same task functions on the calling thread.
 */
import type { EcdsaImplementationName } from "../../workers/crypto/ecdsa";
import type { ExecutionDatePolicy } from "../../workers/dsp/checks";
import { encodeSmkiSnapshot, type SmkiSnapshot } from "../../workers/smki/snapshot";
import type { TrustStoreConfig } from "../../workers/smki/trust";
import type { XmlLimits } from "../../workers/xml/parser";
import {
  packBytes,
  signPreCommandBatch,
  verifyCosRequestBatch,
  type CosVerifyResult,
  type CosVerifyTask,
  type PreCommandResult,
  type PreCommandTask,
  type XmlSigningCredential,
} from "./party-task";

export type { CosVerifyResult, PreCommandResult, XmlSigningCredential };

export interface CosVerifyInput {
  /** The Countersigned CoS Service Request, as the DSP sent it. */
  readonly bytes: Uint8Array;
  /** Time the DCC received the request (certificate validity, execution-date). */
  readonly receivedAt: number;
}

export interface PreCommandJob {
  /** The request as countersigned by the CoS Party (what the pre-command must mirror). */
  readonly bytes: Uint8Array;
  readonly counter: bigint;
}

export interface CosPartyCryptoPort {
  /** One result per input, in order. Rejects only when the work itself failed (a crashed thread). */
  verifyBatch(inputs: readonly CosVerifyInput[]): Promise<CosVerifyResult[]> | CosVerifyResult[];
  /** One signed pre-command per job, in order. Rejects only when the work itself failed. */
  signPreCommands(jobs: readonly PreCommandJob[]): Promise<PreCommandResult[]> | PreCommandResult[];
  /** Replaces the SMKI trust configuration for later batches. */
  setTrust(trust: TrustStoreConfig): void;
  close(): Promise<void>;
}

/** A CoS Party's keys and identity (one per party: the ECoS Party, the TCoS Party). */
export interface CosPartyKeys {
  /** The party's entity id (EUI-64): originator of its pre-commands. */
  readonly entityId: string;
  /** Private scalar of the party's transitionalCoS digitalSignature key (the one in device cells). */
  readonly preCommandScalar: Uint8Array;
  /** The party's XML-signing credential, for its countersignature. */
  readonly xmlSigning: XmlSigningCredential;
}

export interface CosPartyCryptoOptions {
  readonly trust: TrustStoreConfig;
  readonly keys: CosPartyKeys;
  /** When set, the DSP countersignature must be by this entity id. */
  readonly dspEntityId?: string;
  readonly implementation?: EcdsaImplementationName;
  readonly xmlLimits?: XmlLimits;
  readonly executionDate?: ExecutionDatePolicy;
}

/** The verify task for a batch (shared by the inline port and the pool). */
export function verifyTaskFor(
  options: CosPartyCryptoOptions,
  smki: SmkiSnapshot,
  inputs: readonly CosVerifyInput[],
): CosVerifyTask {
  const { data, spans } = packBytes(inputs.map((x) => x.bytes));
  return {
    data,
    items: spans.map((s, i) => ({ ...s, receivedAt: inputs[i]!.receivedAt })),
    smki,
    countersignWith: options.keys.xmlSigning,
    ...(options.dspEntityId ? { dspEntityId: options.dspEntityId } : {}),
    ...(options.implementation ? { implementation: options.implementation } : {}),
    ...(options.xmlLimits ? { xmlLimits: options.xmlLimits } : {}),
    ...(options.executionDate ? { executionDate: options.executionDate } : {}),
  };
}

/** The pre-command task for a batch (shared by the inline port and the pool). */
export function preCommandTaskFor(
  options: CosPartyCryptoOptions,
  jobs: readonly PreCommandJob[],
): PreCommandTask {
  const { data, spans } = packBytes(jobs.map((j) => j.bytes));
  return {
    data,
    items: spans.map((s, i) => ({ ...s, counter: jobs[i]!.counter.toString() })),
    cosPartyId: options.keys.entityId,
    scalar: options.keys.preCommandScalar,
    ...(options.implementation ? { implementation: options.implementation } : {}),
    ...(options.xmlLimits ? { xmlLimits: options.xmlLimits } : {}),
  };
}

/** Runs the worker tasks on the calling thread: tests and tiny deployments. */
export class InlineCosPartyCrypto implements CosPartyCryptoPort {
  private smki: SmkiSnapshot;
  constructor(private readonly options: CosPartyCryptoOptions) {
    this.smki = encodeSmkiSnapshot(options.trust);
  }
  verifyBatch(inputs: readonly CosVerifyInput[]): CosVerifyResult[] {
    return verifyCosRequestBatch(verifyTaskFor(this.options, this.smki, inputs));
  }
  signPreCommands(jobs: readonly PreCommandJob[]): PreCommandResult[] {
    return signPreCommandBatch(preCommandTaskFor(this.options, jobs));
  }
  setTrust(trust: TrustStoreConfig): void {
    this.smki = encodeSmkiSnapshot(trust);
  }
  async close(): Promise<void> {}
}
