/**
 * The in-process driver: runs a topology in one process, deterministically, with a controllable
 * clock — the embedded default, the demo and the fast tests (in the spirit of Kafka Streams'
 * TopologyTestDriver). Topics are in-memory partitioned logs of bytes, so records cross every topic
 * boundary serialised exactly as on Kafka, and keys are partitioned with Kafka's murmur2.
 *
 * Every batch is "committed" at once: outputs and changelog entries are appended to their logs after
 * each partition's batch. `restart()` throws the tasks and their stores away and rebuilds them from
 * the changelog logs, exercising the same restoration path as the Kafka driver.
 */
import * as path from "node:path";
import type { FailureAction } from "./api";
import { EcosError } from "./errors";
import { partitionForKey } from "./partitioner";
import type { Serde } from "./serde";
import type { StoreBackend } from "./stores";
import { InMemoryKeyValueStore, LmdbKeyValueStore } from "./stores";
import { StreamTask, type IncomingRecord, type OutgoingRecord } from "./task";
import { DEFAULT_DEAD_LETTER_TOPIC, changelogTopicName, topicResolver } from "./topics";
import type { Topology } from "./topology";

export interface InProcessDriverOptions {
  readonly applicationId: string;
  /** Partitions of every topic not listed in `topicPartitions` (default 1). */
  readonly partitions?: number;
  readonly topicPartitions?: Readonly<Record<string, number>>;
  /** Start of the manual wall clock, epoch ms (default 0). */
  readonly startTimeMs?: number;
  /** Folder for on-disk (LMDB) stores; required when the topology has one. */
  readonly stateDir?: string;
  /** Per-record failure handling (default "continue": dead-letter and go on). */
  readonly onFailure?: FailureAction;
  readonly deadLetterTopic?: string;
  /**
   * Records kept per topic partition (default: all). Older records are dropped once every task
   * reading the topic has processed them, so a long run (the embedded default on endless traffic)
   * keeps memory flat. Changelogs are always compacted: one entry per key.
   */
  readonly retainRecords?: number;
  /** Most records handed to a task in one run (and to a `processBatch`), default 500. */
  readonly maxBatchRecords?: number;
}

/** One partition of an in-memory topic: absolute offsets start at `base` after trimming. */
class PartitionLog {
  base = 0;
  records: LogRecord[] = [];
  get end(): number {
    return this.base + this.records.length;
  }
  at(offset: number): LogRecord {
    return this.records[offset - this.base] as LogRecord;
  }
  /** Drops records below `offset`. */
  trimTo(offset: number): void {
    const n = Math.min(offset - this.base, this.records.length);
    if (n <= 0) return;
    this.records = this.records.slice(n);
    this.base += n;
  }
}

/** A record as stored in an in-memory topic log. */
export interface LogRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface OutputRecord<V> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: V;
  readonly timestamp: number;
  readonly headers: Readonly<Record<string, string>>;
}

export class InProcessDriver {
  private readonly logs = new Map<string, PartitionLog[]>();
  /** Compacted changelogs: topic -> partition -> key -> latest value (null = tombstone). */
  private readonly changelogs = new Map<string, Array<Map<string, Buffer | null>>>();
  private readonly positions = new Map<string, number>();
  private readonly readPositions = new Map<string, number>();
  private tasks: StreamTask[] = [];
  private backends: StoreBackend<unknown>[] = [];
  private now: number;
  private roundRobin = 0;
  private readonly resolve: (logical: string) => string;
  private readonly deadLetterTopic: string;
  private readonly sourceTopics = new Set<string>();
  private readonly maxBatch: number;

  private constructor(
    readonly topology: Topology,
    private readonly opts: InProcessDriverOptions,
  ) {
    this.now = opts.startTimeMs ?? 0;
    this.resolve = topicResolver(topology, opts.applicationId);
    this.deadLetterTopic = opts.deadLetterTopic ?? DEFAULT_DEAD_LETTER_TOPIC;
    this.maxBatch = opts.maxBatchRecords ?? 500;
    for (const st of topology.subtopologies)
      for (const t of st.sourceTopics) this.sourceTopics.add(this.resolve(t));
  }

  static async create(topology: Topology, opts: InProcessDriverOptions): Promise<InProcessDriver> {
    const d = new InProcessDriver(topology, opts);
    for (const node of topology.nodes.values()) {
      if (node.kind === "source") for (const t of node.topics) await node.valueSerde.prepare?.(t);
      if (node.kind === "sink") await node.valueSerde.prepare?.(node.topic);
    }
    for (const spec of topology.stores.values()) {
      await spec.valueSerde.prepare?.(changelogTopicName(opts.applicationId, spec.name));
    }
    await d.buildTasks();
    return d;
  }

  partitionsOf(topic: string): number {
    return this.opts.topicPartitions?.[topic] ?? this.opts.partitions ?? 1;
  }

  private log(actualTopic: string, partitions: number): PartitionLog[] {
    let l = this.logs.get(actualTopic);
    if (!l) {
      l = Array.from({ length: partitions }, () => new PartitionLog());
      this.logs.set(actualTopic, l);
    }
    return l;
  }

  private async buildTasks(): Promise<void> {
    const tasks: StreamTask[] = [];
    for (const st of this.topology.subtopologies) {
      const counts = new Set(st.sourceTopics.map((t) => this.partitionsOf(t)));
      if (counts.size !== 1) {
        throw new EcosError(
          "ECOS_TOPOLOGY_INVALID",
          `sub-topology ${st.id} reads topics with different partition counts`,
        );
      }
      const n = [...counts][0] as number;
      for (let p = 0; p < n; p++) {
        const stores = new Map<string, StoreBackend<unknown>>();
        for (const name of st.stores) {
          const spec = this.topology.stores.get(name);
          if (!spec) continue;
          let backend: StoreBackend<unknown>;
          if (spec.backend === "lmdb") {
            if (!this.opts.stateDir) {
              throw new EcosError(
                "ECOS_CONFIG_INVALID",
                `store "${name}" is on disk: give the driver a stateDir`,
              );
            }
            backend = new LmdbKeyValueStore(
              name,
              path.join(this.opts.stateDir, `${st.id}_${p}`, name),
              spec.valueSerde,
              changelogTopicName(this.opts.applicationId, name),
            );
            backend.clear();
          } else {
            backend = new InMemoryKeyValueStore(name);
          }
          this.backends.push(backend);
          stores.set(name, backend);
        }
        const task = new StreamTask({
          topology: this.topology,
          subtopology: st,
          partition: p,
          applicationId: this.opts.applicationId,
          stores,
          changelogTopic: (s) => changelogTopicName(this.opts.applicationId, s),
          clock: () => this.now,
          onFailure: this.opts.onFailure ?? "continue",
          deadLetterTopic: this.deadLetterTopic,
        });
        // Restore from the changelog logs (empty on first start).
        for (const store of task.loggedStores()) {
          const log = this.changelogs.get(store.changelogTopic)?.[p] ?? new Map<string, Buffer | null>();
          for (const [key, value] of log) await store.restore(key, value);
        }
        await task.init();
        tasks.push(task);
      }
    }
    this.tasks = tasks;
  }

  /** Serialises and appends records to an input topic, then processes until nothing is left. */
  async pipeInput<V>(
    topic: string,
    records: ReadonlyArray<{
      key: string | null;
      value: V;
      timestamp?: number;
      headers?: Record<string, string>;
    }>,
    serde: Serde<V>,
  ): Promise<void> {
    await serde.prepare?.(topic);
    this.pipeRawNoRun(
      topic,
      records.map((r) => ({
        key: r.key === null ? null : Buffer.from(r.key, "utf8"),
        value: serde.serialize(topic, r.value),
        timestamp: r.timestamp ?? this.now,
        ...(r.headers ? { headers: r.headers } : {}),
      })),
    );
    await this.runUntilIdle();
  }

  /** Appends raw bytes (e.g. a record that cannot be decoded), then processes until idle. */
  async pipeRaw(topic: string, records: readonly LogRecord[]): Promise<void> {
    this.pipeRawNoRun(topic, records);
    await this.runUntilIdle();
  }

  private pipeRawNoRun(topic: string, records: readonly LogRecord[]): void {
    const n = this.partitionsOf(topic);
    const log = this.log(topic, n);
    for (const r of records) this.append(log, r);
  }

  private append(log: PartitionLog[], r: LogRecord): void {
    const p = r.key === null ? this.roundRobin++ % log.length : partitionForKey(r.key, log.length);
    (log[p] as PartitionLog).records.push(r);
  }

  /** Processes every pending record of every source topic, including internal topics, until idle. */
  async runUntilIdle(): Promise<number> {
    let total = 0;
    for (;;) {
      let progress = 0;
      for (const task of this.tasks) {
        const st = task.subtopology;
        for (const logical of st.sourceTopics) {
          const actual = this.resolve(logical);
          const part = this.logs.get(actual)?.[task.partition];
          if (!part) continue;
          const posKey = `${actual}/${task.partition}`;
          let pos = this.positions.get(posKey) ?? 0;
          while (pos < part.end) {
            const upTo = Math.min(part.end, pos + this.maxBatch);
            const run: IncomingRecord[] = [];
            for (let o = pos; o < upTo; o++) {
              const r = part.at(o);
              run.push({
                topic: logical,
                partition: task.partition,
                offset: String(o),
                key: r.key,
                value: r.value,
                timestamp: r.timestamp,
                ...(r.headers ? { headers: r.headers } : {}),
              });
            }
            try {
              const pending = task.processMany(run);
              if (pending) await pending;
            } catch (err) {
              // Like an aborted transaction: drop what the run did and rebuild every task from the
              // committed changelogs, so a retry (the caller's) starts from this run again.
              this.positions.set(posKey, pos);
              await this.restart();
              throw err;
            }
            progress += upTo - pos;
            pos = upTo;
          }
          this.positions.set(posKey, pos);
          this.commit(task);
        }
      }
      total += progress;
      if (progress === 0) {
        this.trim();
        return total;
      }
    }
  }

  /** Applies `retainRecords`: never drops a record a task has not processed yet. */
  private trim(): void {
    const keep = this.opts.retainRecords;
    if (keep === undefined) return;
    for (const [topic, parts] of this.logs) {
      parts.forEach((part, p) => {
        if (part.records.length <= keep) return;
        let upTo = part.end - keep;
        const pos = this.positions.get(`${topic}/${p}`);
        const isSource = this.sourceTopics.has(topic);
        if (isSource) upTo = Math.min(upTo, pos ?? 0);
        part.trimTo(upTo);
      });
    }
  }

  private commit(task: StreamTask): void {
    for (const o of task.takeOutputs()) this.appendOutput(o);
    for (const c of task.takeChangelog()) {
      let parts = this.changelogs.get(c.changelogTopic);
      if (!parts) {
        const n = this.partitionsOf(task.subtopology.sourceTopics[0] ?? "");
        parts = Array.from({ length: n }, () => new Map<string, Buffer | null>());
        this.changelogs.set(c.changelogTopic, parts);
      }
      const log = parts[task.partition] as Map<string, Buffer | null>;
      for (const e of c.entries) log.set(e.key, e.value);
    }
  }

  private appendOutput(o: OutgoingRecord): void {
    const actual = this.resolve(o.topic);
    const log = this.log(actual, this.partitionsOf(o.topic));
    this.append(log, {
      key: o.key,
      value: o.value,
      timestamp: o.timestamp,
      ...(o.headers ? { headers: o.headers } : {}),
    });
  }

  /** Moves the wall clock forward, fires due wall-clock punctuations and processes what they emit. */
  async advanceWallClock(ms: number): Promise<void> {
    this.now += ms;
    for (const task of this.tasks) {
      await task.punctuate("wall-clock-time", this.now);
      this.commit(task);
    }
    await this.runUntilIdle();
  }

  wallClock(): number {
    return this.now;
  }

  /** Decodes the records appended to a topic since the last read of it. */
  async readOutput<V>(topic: string, serde: Serde<V>): Promise<OutputRecord<V>[]> {
    const actual = this.resolve(topic);
    const log = this.logs.get(actual) ?? [];
    const out: OutputRecord<V>[] = [];
    for (let p = 0; p < log.length; p++) {
      const part = log[p] as PartitionLog;
      const key = `${actual}/${p}`;
      for (let i = Math.max(part.base, this.readPositions.get(key) ?? 0); i < part.end; i++) {
        const r = part.at(i);
        const value = r.value === null ? (null as V) : await serde.deserialize(topic, r.value);
        out.push({
          topic,
          partition: p,
          offset: i,
          key: r.key === null ? null : r.key.toString("utf8"),
          value,
          timestamp: r.timestamp,
          headers: r.headers ?? {},
        });
      }
      this.readPositions.set(key, part.end);
    }
    return out;
  }

  /** Raw records of a topic (all of them), e.g. dead letters with their headers. */
  rawRecords(topic: string): LogRecord[] {
    return (this.logs.get(this.resolve(topic)) ?? []).flatMap((p) => p.records);
  }

  /** Every entry of a store across all partitions, sorted by key. */
  storeEntries<V>(name: string): Array<[string, V]> {
    const out: Array<[string, V]> = [];
    for (const t of this.tasks) {
      const s = t.store<V>(name);
      if (s) out.push(...s.all());
    }
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Records processed by all tasks (since the last restart). */
  processedCount(): number {
    return this.tasks.reduce((n, t) => n + t.processed, 0);
  }

  /** Drops every task and store and rebuilds them from the changelogs, as after a crash. */
  async restart(): Promise<void> {
    await this.closeTasks();
    await this.buildTasks();
  }

  private async closeTasks(): Promise<void> {
    for (const t of this.tasks) await t.close();
    for (const b of this.backends) await b.close();
    this.tasks = [];
    this.backends = [];
  }

  async close(): Promise<void> {
    await this.closeTasks();
  }
}
