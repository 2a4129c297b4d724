/**
 * A stream task: one partition of one sub-topology, with its own processor instances and stores.
 * Drivers hand it decoded-from-the-wire records (bytes) and take back what it produced: output
 * records and changelog entries. Drivers decide when that becomes durable (the Kafka driver: one
 * transaction with the input offsets; the in-process driver: at once).
 */
import type {
  Cancellable,
  FailureAction,
  Processor,
  ProcessorContext,
  PunctuationType,
  RecordMetadata,
  StreamRecord,
} from "./api";
import { EcosError, asEcosError } from "./errors";
import type { ChangelogEntry, KeyValueStore, StoreBackend } from "./stores";
import { ChangeLoggingStore } from "./stores";
import type { Subtopology, Topology, TopologyNode } from "./topology";

/** A record as read from a topic partition. */
export interface IncomingRecord {
  /** Logical topic name (as in the topology). */
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: number;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A record to be written; `topic` is logical, the driver resolves internal names. */
export interface OutgoingRecord {
  readonly topic: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface TaskChangelog {
  readonly store: string;
  readonly changelogTopic: string;
  readonly entries: ChangelogEntry[];
}

/** Headers written on every dead letter, so an operator can find and replay the original record. */
export const DEAD_LETTER_HEADERS = {
  code: "ecos.error.code",
  message: "ecos.error.message",
  topic: "ecos.source.topic",
  partition: "ecos.source.partition",
  offset: "ecos.source.offset",
  node: "ecos.error.node",
} as const;

export interface TaskOptions {
  readonly topology: Topology;
  readonly subtopology: Subtopology;
  readonly partition: number;
  readonly applicationId: string;
  /** Store backends by name; logged ones are wrapped here. */
  readonly stores: ReadonlyMap<string, StoreBackend<unknown>>;
  readonly changelogTopic: (store: string) => string;
  readonly clock: () => number;
  readonly onFailure: FailureAction;
  /** Logical name of the dead-letter topic. */
  readonly deadLetterTopic: string;
}

interface Schedule {
  readonly interval: number;
  readonly type: PunctuationType;
  readonly fn: (timestamp: number) => void;
  next: number;
  cancelled: boolean;
}

interface Work {
  readonly node: string;
  readonly record: StreamRecord<unknown>;
}

type SourceNode = Extract<TopologyNode, { kind: "source" }>;

/** The record in flight and the node it reached, for dead-letter reasons. */
interface Step {
  readonly rec: IncomingRecord;
  readonly source: SourceNode;
  readonly mark: number;
  stage: string;
}

export class StreamTask {
  readonly id: string;
  private readonly processors = new Map<string, Processor<unknown, unknown>>();
  private readonly stores = new Map<string, KeyValueStore<unknown>>();
  private readonly logged: ChangeLoggingStore<unknown>[] = [];
  private readonly schedules: Schedule[] = [];
  private readonly sources = new Map<string, SourceNode>();
  private outputs: OutgoingRecord[] = [];
  private queue: Work[] = [];
  private current: RecordMetadata | undefined;
  private streamTime = -1;
  /** Records processed since creation (for progress and tests). */
  processed = 0;
  deadLettered = 0;

  constructor(private readonly opts: TaskOptions) {
    this.id = `${opts.subtopology.id}_${opts.partition}`;
    for (const name of opts.subtopology.stores) {
      const backend = opts.stores.get(name);
      const spec = opts.topology.stores.get(name);
      if (!backend || !spec)
        throw new EcosError("ECOS_STORE_UNKNOWN", `task ${this.id}: no backend for "${name}"`);
      if (spec.logged) {
        const s = new ChangeLoggingStore(backend, opts.changelogTopic(name), spec.valueSerde);
        this.logged.push(s);
        this.stores.set(name, s);
      } else {
        this.stores.set(name, backend);
      }
    }
  }

  get partition(): number {
    return this.opts.partition;
  }

  get subtopology(): Subtopology {
    return this.opts.subtopology;
  }

  /** Stores backed by a changelog, for restoration. */
  loggedStores(): readonly ChangeLoggingStore<unknown>[] {
    return this.logged;
  }

  store<V>(name: string): KeyValueStore<V> | undefined {
    return this.stores.get(name) as KeyValueStore<V> | undefined;
  }

  private node(name: string): TopologyNode {
    return this.opts.topology.nodes.get(name) as TopologyNode;
  }

  async init(): Promise<void> {
    for (const name of this.opts.subtopology.nodes) {
      const node = this.node(name);
      if (node.kind !== "processor") continue;
      const processor = node.supplier();
      this.processors.set(name, processor);
      if (processor.init) await processor.init(this.contextFor(name));
    }
  }

  private contextFor(nodeName: string): ProcessorContext<unknown> {
    const node = this.node(nodeName) as Extract<TopologyNode, { kind: "processor" }>;
    // The context's methods are called by processors as plain functions; they act on this task.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const task = this;
    return {
      applicationId: this.opts.applicationId,
      taskId: this.id,
      partition: this.opts.partition,
      forward(record, childName) {
        if (childName === undefined) {
          for (const c of node.children) task.queue.push({ node: c, record });
        } else {
          if (!node.children.includes(childName)) {
            throw new EcosError("ECOS_TOPOLOGY_INVALID", `"${nodeName}" has no child "${childName}"`);
          }
          task.queue.push({ node: childName, record });
        }
      },
      getStateStore<V>(name: string): KeyValueStore<V> {
        const s = node.stores.includes(name) ? task.stores.get(name) : undefined;
        if (!s)
          throw new EcosError(
            "ECOS_STORE_UNKNOWN",
            `processor "${nodeName}" is not connected to store "${name}"`,
          );
        return s as KeyValueStore<V>;
      },
      schedule(intervalMs, type, punctuator): Cancellable {
        if (!(intervalMs > 0))
          throw new EcosError("ECOS_TOPOLOGY_INVALID", `punctuation interval must be > 0`);
        const base = type === "wall-clock-time" ? task.opts.clock() : task.streamTime;
        const s: Schedule = {
          interval: intervalMs,
          type,
          fn: punctuator,
          next: base < 0 ? Number.NaN : base + intervalMs,
          cancelled: false,
        };
        task.schedules.push(s);
        return {
          cancel: () => {
            s.cancelled = true;
          },
        };
      },
      recordMetadata: () => task.current,
      currentStreamTimeMs: () => task.streamTime,
      currentSystemTimeMs: () => task.opts.clock(),
    };
  }

  /**
   * Runs consecutive records of one topic partition. When the source's only child implements
   * `processBatch`, the whole run goes to it at once; otherwise each record is processed in turn.
   */
  processMany(recs: readonly IncomingRecord[]): void | Promise<void> {
    const first = recs[0];
    if (!first) return;
    const batcher = this.batchProcessorFor(first.topic);
    if (batcher) return this.processBatchMode(batcher, recs);
    for (let i = 0; i < recs.length; i++) {
      const pending = this.process(recs[i] as IncomingRecord);
      if (pending) return pending.then(() => this.processMany(recs.slice(i + 1)));
    }
  }

  private batchProcessorFor(
    topic: string,
  ): { name: string; processor: Processor<unknown, unknown> } | undefined {
    const source = this.sourceFor(topic);
    if (source.children.length !== 1) return undefined;
    const name = source.children[0] as string;
    const processor = this.processors.get(name);
    return processor?.processBatch ? { name, processor } : undefined;
  }

  private async processBatchMode(
    batcher: { name: string; processor: Processor<unknown, unknown> },
    recs: readonly IncomingRecord[],
  ): Promise<void> {
    const decoded: Array<{ rec: IncomingRecord; record: StreamRecord<unknown> }> = [];
    for (const rec of recs) {
      const source = this.sourceFor(rec.topic);
      try {
        if (rec.value === null)
          throw new EcosError("ECOS_SERDE_DECODE", `record has no value (tombstones are not input)`);
        const value = await source.valueSerde.deserialize(rec.topic, rec.value);
        decoded.push({
          rec,
          record: {
            key: rec.key === null ? null : rec.key.toString("utf8"),
            value,
            timestamp: rec.timestamp,
            ...(rec.headers ? { headers: rec.headers } : {}),
          },
        });
        if (rec.timestamp > this.streamTime) this.streamTime = rec.timestamp;
      } catch (err) {
        const e = asEcosError(err, "ECOS_SERDE_DECODE", { topic: rec.topic, offset: rec.offset });
        // A transient failure (e.g. the registry did not answer) is not bad input: retry, never dead-letter.
        if (e.retriable) throw e;
        this.deadLetter(rec, e, source.name);
      }
    }
    if (decoded.length > 0) {
      const last = (decoded[decoded.length - 1] as { rec: IncomingRecord }).rec;
      this.current = { topic: last.topic, partition: last.partition, offset: last.offset };
      const mark = this.outputs.length;
      const step = { stage: batcher.name };
      try {
        // batchProcessorFor only returns processors that implement processBatch.
        await batcher.processor.processBatch?.(
          decoded.map((d) => d.record),
          decoded.map((d) => ({ topic: d.rec.topic, partition: d.rec.partition, offset: d.rec.offset })),
        );
        const pending = this.drain(step as Step);
        if (pending) await pending;
        this.processed += decoded.length;
      } catch (err) {
        this.queue = [];
        this.outputs.length = mark;
        const code = err instanceof EcosError ? err.code : "ECOS_PROCESS_FAILED";
        const e = asEcosError(err, code, { topic: last.topic, partition: last.partition, node: step.stage });
        if (this.opts.onFailure === "fail" || e.retriable) throw e;
        for (const d of decoded) this.deadLetter(d.rec, e, step.stage);
      } finally {
        this.current = undefined;
      }
    }
    await this.punctuate("stream-time", this.streamTime);
  }

  /**
   * Runs one input record through the sub-topology, including everything it forwards. Returns a
   * promise only when a serde or processor went asynchronous; the common path stays synchronous
   * (a promise per record costs more than the counting itself).
   */
  process(rec: IncomingRecord): void | Promise<void> {
    const source = this.sourceFor(rec.topic);
    this.current = { topic: rec.topic, partition: rec.partition, offset: rec.offset };
    const step: Step = { rec, source, mark: this.outputs.length, stage: source.name };
    try {
      if (rec.value === null) {
        throw new EcosError("ECOS_SERDE_DECODE", `record has no value (tombstones are not input)`);
      }
      const value = source.valueSerde.deserialize(rec.topic, rec.value);
      if (value instanceof Promise) {
        return value.then(
          (v) => this.runFrom(step, v),
          (err: unknown) => this.onRecordError(step, err),
        );
      }
      return this.runFrom(step, value);
    } catch (err) {
      return this.onRecordError(step, err);
    }
  }

  private runFrom(step: Step, value: unknown): void | Promise<void> {
    try {
      const { rec, source } = step;
      const record: StreamRecord<unknown> = {
        key: rec.key === null ? null : rec.key.toString("utf8"),
        value,
        timestamp: rec.timestamp,
        ...(rec.headers ? { headers: rec.headers } : {}),
      };
      if (rec.timestamp > this.streamTime) this.streamTime = rec.timestamp;
      for (const c of source.children) this.queue.push({ node: c, record });
      const pending = this.drain(step);
      if (pending) {
        return pending.then(
          () => this.finishRecord(),
          (err: unknown) => this.onRecordError(step, err),
        );
      }
      return this.finishRecord();
    } catch (err) {
      return this.onRecordError(step, err);
    }
  }

  /** Runs queued work until empty; continues asynchronously from the first node that returns a promise. */
  private drain(step: Step | undefined): void | Promise<void> {
    while (this.queue.length > 0) {
      const work = this.queue.shift() as Work;
      if (step) step.stage = work.node;
      const r = this.runNode(work);
      if (r) return r.then(() => this.drain(step));
    }
  }

  private finishRecord(): void | Promise<void> {
    this.processed++;
    this.current = undefined;
    return this.punctuate("stream-time", this.streamTime);
  }

  private onRecordError(step: Step, err: unknown): void | Promise<void> {
    const { rec, source } = step;
    this.queue = [];
    this.outputs.length = step.mark;
    this.current = undefined;
    const code =
      err instanceof EcosError
        ? err.code
        : step.stage === source.name
          ? "ECOS_SERDE_DECODE"
          : "ECOS_PROCESS_FAILED";
    const e = asEcosError(err, code, {
      topic: rec.topic,
      partition: rec.partition,
      offset: rec.offset,
      node: step.stage,
    });
    // Retriable failures (registry or broker unavailable) stop the run so the driver retries it from
    // the last commit; only records that can never succeed go to the dead-letter topic.
    if (this.opts.onFailure === "fail" || e.retriable) throw e;
    this.deadLetter(rec, e, step.stage);
    return this.punctuate("stream-time", this.streamTime);
  }

  private deadLetter(rec: IncomingRecord, e: EcosError, node: string): void {
    this.deadLettered++;
    this.outputs.push({
      topic: this.opts.deadLetterTopic,
      key: rec.key,
      value: rec.value,
      timestamp: rec.timestamp,
      headers: {
        [DEAD_LETTER_HEADERS.code]: e.code,
        [DEAD_LETTER_HEADERS.message]: e.message.slice(0, 1000),
        [DEAD_LETTER_HEADERS.topic]: rec.topic,
        [DEAD_LETTER_HEADERS.partition]: String(rec.partition),
        [DEAD_LETTER_HEADERS.offset]: rec.offset,
        [DEAD_LETTER_HEADERS.node]: node,
      },
    });
  }

  private sourceFor(topic: string): SourceNode {
    const cached = this.sources.get(topic);
    if (cached) return cached;
    for (const name of this.opts.subtopology.nodes) {
      const node = this.node(name);
      if (node.kind === "source" && node.topics.includes(topic)) {
        this.sources.set(topic, node);
        return node;
      }
    }
    throw new EcosError("ECOS_TOPOLOGY_INVALID", `task ${this.id} does not read topic "${topic}"`);
  }

  private runNode(work: Work): void | Promise<void> {
    const node = this.node(work.node);
    if (node.kind === "sink") {
      const { record } = work;
      let value: Buffer;
      try {
        value = node.valueSerde.serialize(node.topic, record.value);
      } catch (err) {
        throw asEcosError(err, "ECOS_SERDE_ENCODE", { topic: node.topic });
      }
      this.outputs.push({
        topic: node.topic,
        key: record.key === null ? null : Buffer.from(record.key, "utf8"),
        value,
        timestamp: record.timestamp,
        ...(record.headers ? { headers: record.headers } : {}),
      });
      return;
    }
    const processor = this.processors.get(work.node);
    if (!processor) throw new EcosError("ECOS_TOPOLOGY_INVALID", `"${work.node}" is not a processor`);
    return processor.process(work.record);
  }

  /** Fires due punctuations of one type; their forwards run like a record's. */
  punctuate(type: PunctuationType, now: number): void | Promise<void> {
    if (now < 0 || this.schedules.length === 0) return;
    for (let i = 0; i < this.schedules.length; i++) {
      const s = this.schedules[i] as Schedule;
      if (s.cancelled || s.type !== type) continue;
      if (Number.isNaN(s.next)) s.next = now + s.interval;
      if (now < s.next) continue;
      // Fire once for the elapsed span, then align to the interval (no burst after a gap).
      s.next = s.next + s.interval * Math.max(1, Math.ceil((now - s.next + 1) / s.interval));
      s.fn(now);
      const pending = this.drain(undefined);
      if (pending) return pending.then(() => this.punctuate(type, now));
    }
  }

  /** Takes the outputs produced since the last call. */
  takeOutputs(): OutgoingRecord[] {
    const out = this.outputs;
    this.outputs = [];
    return out;
  }

  takeChangelog(): TaskChangelog[] {
    const out: TaskChangelog[] = [];
    for (const s of this.logged) {
      const entries = s.drainChangelog();
      if (entries.length > 0) out.push({ store: s.name, changelogTopic: s.changelogTopic, entries });
    }
    return out;
  }

  hasPendingWrites(): boolean {
    return this.outputs.length > 0 || this.logged.some((s) => s.dirtyCount > 0);
  }

  async close(): Promise<void> {
    for (const p of this.processors.values()) if (p.close) await p.close();
    this.processors.clear();
  }
}
