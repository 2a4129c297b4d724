/**
 * The processor contract, shaped like Kafka Streams' Processor API.
 *
 * A processor sees records, a context, its named state stores and a clock — never a Kafka client.
 * Each task (one partition of one sub-topology) gets its own processor instances, built by the
 * supplier given to the topology builder, so per-partition state in fields is safe.
 */
import type { KeyValueStore } from "./stores";

/** One record flowing through a topology. Keys are strings (device ids, MPxNs, user ids). */
export interface StreamRecord<V> {
  readonly key: string | null;
  readonly value: V;
  /** Event time in epoch milliseconds; drives stream-time punctuation. */
  readonly timestamp: number;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Where the record being processed came from (undefined inside a punctuation). */
export interface RecordMetadata {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export type PunctuationType = "stream-time" | "wall-clock-time";

export interface Cancellable {
  cancel(): void;
}

export interface ProcessorContext<VOut> {
  /** `<applicationId>`: names consumer groups, changelog and repartition topics. */
  readonly applicationId: string;
  /** `<subtopology>_<partition>`, as in Kafka Streams. */
  readonly taskId: string;
  readonly partition: number;
  /**
   * Sends a record to every child (or to the named child). Children run after the current
   * `process` call returns, in forward order, before the next input record is taken.
   */
  forward(record: StreamRecord<VOut>, childName?: string): void;
  /** A store connected to this processor with `addStateStore`. */
  getStateStore<V>(name: string): KeyValueStore<V>;
  /**
   * Calls `punctuator` every `intervalMs`: on stream time (advanced by record timestamps, per task) or
   * on wall-clock time (the driver's clock; controllable in the in-process driver).
   */
  schedule(intervalMs: number, type: PunctuationType, punctuator: (timestamp: number) => void): Cancellable;
  /** Metadata of the record being processed, or undefined during punctuation. */
  recordMetadata(): RecordMetadata | undefined;
  /** Largest record timestamp this task has seen. */
  currentStreamTimeMs(): number;
  /** The driver's wall clock. */
  currentSystemTimeMs(): number;
}

export interface Processor<VIn, VOut = VIn> {
  init?(context: ProcessorContext<VOut>): void | Promise<void>;
  /** May return a promise (e.g. work handed to the worker pool); the task awaits it before the next record. */
  process(record: StreamRecord<VIn>): void | Promise<void>;
  /**
   * Optional: handle a run of consecutive input records of one partition at once — for work that is
   * cheaper in batches, such as one worker-pool task for dozens of signature checks. Used instead of
   * `process` when this processor is the only child of a source. Outputs must be forwarded in input
   * order; a record-level rejection is an output (e.g. a response code), not a thrown error. If it
   * throws, every record of the run is dead-lettered (or the task fails, per the failure handler).
   */
  processBatch?(
    records: ReadonlyArray<StreamRecord<VIn>>,
    /** Where each record came from, index for index (records that failed to decode are not in the run). */
    metadata: ReadonlyArray<RecordMetadata>,
  ): void | Promise<void>;
  close?(): void | Promise<void>;
}

export type ProcessorSupplier<VIn, VOut> = () => Processor<VIn, VOut>;

/** What to do with a record that cannot be decoded or whose processing throws. */
export type FailureAction = "continue" | "fail";
