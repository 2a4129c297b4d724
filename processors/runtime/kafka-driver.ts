/**
 * The Kafka driver: runs a topology on a Kafka cluster with kafkajs.
 *
 * Delivery guarantee: exactly-once processing through Kafka transactions (as Kafka Streams'
 * `exactly_once` with one transactional producer per task). For each batch of one input partition,
 * the task's outputs, its state-store changelog entries and the consumed offsets are written in one
 * transaction; consumers (ours and downstream) read with isolation read_committed. A process killed
 * mid-batch leaves an open transaction that the restarted task's producer aborts (fencing by the
 * stable transactional id `<applicationId>-<subtopology>_<partition>`), after which the store is
 * rebuilt from the committed changelog and processing resumes at the committed offset: nothing is
 * lost and nothing is counted twice.
 *
 * Tasks are (sub-topology, partition) pairs; a co-partitioning assignor gives partition p of every
 * source topic of a sub-topology to the same member. Internal (repartition) topics and compacted
 * changelog topics are created at start.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  AssignerProtocol,
  Kafka,
  Partitioners,
  logLevel as KafkaLogLevel,
  ConfigResourceTypes,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type LogEntry,
  type Message,
  type PartitionAssigner,
  type Producer,
} from "kafkajs";
import type { FailureAction } from "./api";
import { assertReadCommittedFilter } from "./kafkajs-check";
import { installCoordinatorCache } from "./kafkajs-coordinator-cache";
import { EcosError, asEcosError } from "./errors";
import type { Logger } from "./logger";
import { partitionForKey } from "./partitioner";
import type { ChangeLoggingStore, StoreBackend } from "./stores";
import { InMemoryKeyValueStore, LmdbKeyValueStore } from "./stores";
import { StreamTask } from "./task";
import { DEFAULT_DEAD_LETTER_TOPIC, changelogTopicName, topicResolver } from "./topics";
import type { Topology } from "./topology";

export interface KafkaDriverOptions {
  readonly applicationId: string;
  readonly brokers: readonly string[];
  readonly clientId?: string;
  /** Folder for on-disk stores (rebuilt from changelogs at every start). */
  readonly stateDir: string;
  readonly logger: Logger;
  readonly onFailure?: FailureAction;
  readonly deadLetterTopic?: string;
  /** Create missing external topics with this many partitions (default: fail with a clear error). */
  readonly createMissingTopics?: { readonly partitions: number };
  /** Replication factor for topics the driver creates (default 1; use 3 on a real cluster). */
  readonly replicationFactor?: number;
  /** How long to keep retrying the first connection before giving up (default 60 s). */
  readonly connectTimeoutMs?: number;
  /** Commit (one transaction) at least every this many records within a batch (default 5000). */
  readonly commitEveryRecords?: number;
  /**
   * Partitions processed at once by this instance (default: one per task, at most 64). Tasks are
   * independent (own producer, own transactions), so while one waits for its commit another computes.
   * kafkajs fetches again only when every batch of the previous fetch is done, so with fewer workers
   * than tasks the batches of one fetch queue behind each other's commits and every hop between
   * sub-topologies waits for the slowest queue.
   */
  readonly concurrentPartitions?: number;
  /**
   * Largest produce request within a transaction (default 512 KiB); a commit's outputs are sent in
   * as many requests as needed, so no record batch exceeds the broker's message.max.bytes (1 MiB).
   */
  readonly maxRequestBytes?: number;
  /**
   * How often records of internal (repartition) topics that every consumer has committed past are
   * deleted (default 30000 ms; 0 never deletes). Internal topics keep records without a time limit
   * (retention.ms = -1), so records carrying old event timestamps are never removed by retention
   * before they are processed; this purge is what bounds their size.
   */
  readonly repartitionPurgeIntervalMs?: number;
  /** Period of the wall-clock punctuation check (default 1000 ms). */
  readonly wallClockTickMs?: number;
  readonly sessionTimeoutMs?: number;
  /**
   * Called after every committed transaction (progress reporting, tests, benchmarks): `transactionMs`
   * is from the transaction's start to its commit's answer (the produce, offset and end requests).
   */
  readonly onCommit?: (info: {
    taskId: string;
    records: number;
    outputs: number;
    changelog: number;
    transactionMs: number;
  }) => void;
  /** Called after a task's stores were restored. */
  readonly onRestore?: (info: { taskId: string; store: string; records: number; ms: number }) => void;
}

interface TaskState {
  readonly task: StreamTask;
  readonly producer: Producer;
  readonly backends: StoreBackend<unknown>[];
  /** Serialises batches and punctuations of one task. */
  chain: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class KafkaDriver {
  private readonly kafka: Kafka;
  private admin: Admin | undefined;
  private consumer: Consumer | undefined;
  private readonly tasks = new Map<string, TaskState>();
  private pendingTasks: Promise<void> = Promise.resolve();
  private assignment = new Set<string>();
  private readonly partitionCounts = new Map<string, number>();
  private readonly resolve: (logical: string) => string;
  private readonly logicalOf = new Map<string, string>();
  private readonly deadLetterTopic: string;
  private wallClockTimer: NodeJS.Timeout | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  /** Internal topic partition → offset committed past (records before it may be deleted). */
  private readonly purgeable = new Map<string, { topic: string; partition: number; offset: string }>();
  private stopped = false;
  private fatal: EcosError | undefined;
  private readonly fatalWaiters: Array<(e: EcosError) => void> = [];

  constructor(
    readonly topology: Topology,
    private readonly opts: KafkaDriverOptions,
  ) {
    const logger = opts.logger;
    this.kafka = new Kafka({
      clientId: opts.clientId ?? opts.applicationId,
      brokers: [...opts.brokers],
      connectionTimeout: 3000,
      logLevel: KafkaLogLevel.WARN,
      logCreator:
        () =>
        ({ level, log }: LogEntry) => {
          const { message, ...rest } = log;
          // Expected with transactional producers, whose failures abort the transaction instead.
          if (message.startsWith("Limiting retries for the idempotent producer")) return;
          const fields = { component: "kafkajs", ...(rest as Record<string, unknown>) };
          delete (fields as Record<string, unknown>)["timestamp"];
          delete (fields as Record<string, unknown>)["logger"];
          if (level <= KafkaLogLevel.ERROR) logger.error(message, fields);
          else logger.warn(message, fields);
        },
      // A short first retry: CONCURRENT_TRANSACTIONS (the previous commit still completing) clears in ms.
      retry: { retries: 10, initialRetryTime: 50, maxRetryTime: 5000 },
    });
    this.resolve = topicResolver(topology, opts.applicationId);
    this.deadLetterTopic = opts.deadLetterTopic ?? DEFAULT_DEAD_LETTER_TOPIC;
    for (const st of topology.subtopologies)
      for (const t of st.sourceTopics) this.logicalOf.set(this.resolve(t), t);
  }

  private get groupId(): string {
    return this.opts.applicationId;
  }

  /** Connects (retrying while the broker is down), creates topics, joins the group and starts processing. */
  async start(): Promise<void> {
    // Exactly-once needs a correct read_committed filter in kafkajs (deploy/patches/README.md).
    assertReadCommittedFilter();
    // One FindCoordinator per transactional request otherwise (kafkajs-coordinator-cache.ts).
    installCoordinatorCache();
    this.admin = await this.connectAdmin();
    await this.ensureTopics(this.admin);
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      readUncommitted: false,
      partitionAssigners: [copartitionedAssigner(this.topology, this.resolve)],
      sessionTimeout: this.opts.sessionTimeoutMs ?? 30000,
      heartbeatInterval: 3000,
      maxBytesPerPartition: 1 << 20,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = new Set<string>();
      for (const [topic, partitions] of Object.entries(e.payload.memberAssignment)) {
        const logical = this.logicalOf.get(topic);
        const st = logical === undefined ? undefined : this.topology.subtopologyOfTopic.get(logical);
        if (st === undefined) continue;
        for (const p of partitions) assigned.add(`${st}_${p}`);
      }
      this.assignment = assigned;
      this.opts.logger.info("joined consumer group", {
        group: this.groupId,
        tasks: [...assigned].sort().join(","),
      });
      this.pendingTasks = this.pendingTasks
        .then(() => this.reconcileTasks())
        .catch((err: unknown) => this.fail(err));
    });
    consumer.on(consumer.events.CRASH, (e) => {
      const err = e.payload.error;
      if (e.payload.restart) {
        this.opts.logger.warn("consumer crashed; kafkajs restarts it", { error: err.message });
      } else {
        this.fail(asEcosError(err, "ECOS_BROKER_UNAVAILABLE"));
      }
    });
    await consumer.connect();
    for (const st of this.topology.subtopologies) {
      await consumer.subscribe({ topics: st.sourceTopics.map(this.resolve), fromBeginning: true });
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.concurrentPartitions ?? Math.min(64, this.taskCount()),
      eachBatch: (payload) => this.onBatch(payload),
    });
    const tick = this.opts.wallClockTickMs ?? 1000;
    this.wallClockTimer = setInterval(() => void this.wallClockPunctuate(), tick);
    const purgeEvery = this.opts.repartitionPurgeIntervalMs ?? 30000;
    if (purgeEvery > 0 && this.topology.internalTopics.size > 0)
      this.purgeTimer = setInterval(() => void this.purgeRepartitionTopics(), purgeEvery);
  }

  /** Tasks of this topology: one per partition of each sub-topology (topics must exist). */
  private taskCount(): number {
    let n = 0;
    for (const st of this.topology.subtopologies) {
      const first = st.sourceTopics[0];
      n +=
        first === undefined
          ? 0
          : (this.partitionCounts.get(first) ?? this.partitionCounts.get(this.resolve(first)) ?? 1);
    }
    return Math.max(1, n);
  }

  /** Resolves when the driver stops; rejects with the fatal error if it fails. */
  waitForFailure(): Promise<EcosError> {
    if (this.fatal) return Promise.resolve(this.fatal);
    return new Promise((resolve) => this.fatalWaiters.push(resolve));
  }

  private fail(err: unknown): void {
    const e = asEcosError(err, "ECOS_PROCESS_FAILED");
    if (this.fatal) return;
    this.fatal = e;
    this.opts.logger.error("driver failed", { code: e.code, error: e.message });
    for (const w of this.fatalWaiters.splice(0)) w(e);
  }

  private async connectAdmin(): Promise<Admin> {
    const deadline = Date.now() + (this.opts.connectTimeoutMs ?? 60000);
    const brokers = this.opts.brokers.join(",");
    // Probe with a client that does not retry by itself, so each attempt is short and reported.
    const probe = new Kafka({
      clientId: `${this.opts.clientId ?? this.opts.applicationId}-probe`,
      brokers: [...this.opts.brokers],
      connectionTimeout: 3000,
      logLevel: KafkaLogLevel.NOTHING,
      retry: { retries: 0 },
    });
    for (let attempt = 1; ; attempt++) {
      const probeAdmin = probe.admin();
      try {
        await probeAdmin.connect();
        await probeAdmin.listTopics();
        await probeAdmin.disconnect();
        if (attempt > 1) this.opts.logger.info("Kafka is reachable", { brokers, attempt });
        const admin = this.kafka.admin();
        await admin.connect();
        return admin;
      } catch (err) {
        await probeAdmin.disconnect().catch(() => {});
        const reason = err instanceof Error ? err.message : String(err);
        const wait = Math.min(5000, 500 * 2 ** (attempt - 1));
        if (Date.now() + wait > deadline) {
          throw new EcosError(
            "ECOS_BROKER_UNAVAILABLE",
            `Kafka at ${brokers} did not answer after ${attempt} attempts (${reason}). ` +
              `Start it (deploy/local/kafka.sh start) or set ECOS_KAFKA_BROKERS to a reachable cluster.`,
            { cause: err },
          );
        }
        this.opts.logger.warn("Kafka is not reachable yet; retrying", {
          brokers,
          attempt,
          retryInMs: wait,
          reason,
        });
        await sleep(wait);
      }
    }
  }

  private async ensureTopics(admin: Admin): Promise<void> {
    const existing = new Set(await admin.listTopics());
    const external = new Set<string>();
    for (const st of this.topology.subtopologies) for (const t of st.sourceTopics) external.add(t);
    for (const t of this.topology.sinkTopics) external.add(t);
    for (const t of this.topology.internalTopics) external.delete(t);
    const missing = [...external].filter((t) => !existing.has(t));
    const rf = this.opts.replicationFactor ?? 1;
    if (missing.length > 0) {
      if (!this.opts.createMissingTopics) {
        throw new EcosError(
          "ECOS_CONFIG_INVALID",
          `topics do not exist: ${missing.join(", ")}. Create them, or run with topic creation enabled.`,
        );
      }
      await createTopicsSettled(
        admin,
        missing.map((topic) => ({
          topic,
          numPartitions: this.opts.createMissingTopics?.partitions ?? 1,
          replicationFactor: rf,
        })),
      );
    }
    const meta = await whileMetadataSettles(() => admin.fetchTopicMetadata({ topics: [...external] }));
    for (const t of meta.topics) this.partitionCounts.set(t.name, t.partitions.length);
    // Internal topics get the partition count of the widest external source.
    let width = 1;
    for (const st of this.topology.subtopologies) {
      for (const t of st.sourceTopics)
        if (!this.topology.internalTopics.has(t)) width = Math.max(width, this.partitionCounts.get(t) ?? 1);
    }
    const toCreate: Array<{
      topic: string;
      numPartitions: number;
      replicationFactor: number;
      configEntries?: Array<{ name: string; value: string }>;
    }> = [];
    const retentionFixes: string[] = [];
    for (const t of this.topology.internalTopics) {
      const actual = this.resolve(t);
      this.partitionCounts.set(t, width);
      // No time-based retention: records keep their source timestamps, which may be older than the
      // broker's retention (a backfill, a replay, a test's fixed clock); the purge bounds the size.
      if (!existing.has(actual))
        toCreate.push({
          topic: actual,
          numPartitions: width,
          replicationFactor: rf,
          configEntries: [{ name: "retention.ms", value: "-1" }],
        });
      else retentionFixes.push(actual);
    }
    for (const st of this.topology.subtopologies) {
      const counts = new Set(st.sourceTopics.map((t) => this.partitionCounts.get(t)));
      if (counts.size !== 1) {
        throw new EcosError(
          "ECOS_TOPOLOGY_INVALID",
          `sub-topology ${st.id} reads ${st.sourceTopics.join(", ")} which are not co-partitioned (partition counts differ)`,
        );
      }
      for (const s of st.stores) {
        const spec = this.topology.stores.get(s);
        if (!spec?.logged) continue;
        const topic = changelogTopicName(this.opts.applicationId, s);
        this.partitionCounts.set(topic, [...counts][0] as number);
        if (!existing.has(topic)) {
          toCreate.push({
            topic,
            numPartitions: [...counts][0] as number,
            replicationFactor: rf,
            configEntries: [{ name: "cleanup.policy", value: "compact" }],
          });
        }
      }
    }
    if (!existing.has(this.deadLetterTopic)) {
      toCreate.push({ topic: this.deadLetterTopic, numPartitions: 1, replicationFactor: rf });
    }
    if (toCreate.length > 0) {
      await createTopicsSettled(admin, toCreate);
    }
    // Internal topics created by an earlier version kept the broker's time-based retention.
    if (retentionFixes.length > 0) {
      await admin.alterConfigs({
        validateOnly: false,
        resources: retentionFixes.map((name) => ({
          type: ConfigResourceTypes.TOPIC,
          name,
          configEntries: [{ name: "retention.ms", value: "-1" }],
        })),
      });
    }
    const deadMeta = await whileMetadataSettles(() =>
      admin.fetchTopicMetadata({ topics: [this.deadLetterTopic] }),
    );
    this.partitionCounts.set(this.deadLetterTopic, deadMeta.topics[0]?.partitions.length ?? 1);
    for (const node of this.topology.nodes.values()) {
      if (node.kind === "source") for (const t of node.topics) await node.valueSerde.prepare?.(t);
      if (node.kind === "sink") await node.valueSerde.prepare?.(node.topic);
    }
    for (const spec of this.topology.stores.values()) {
      await spec.valueSerde.prepare?.(changelogTopicName(this.opts.applicationId, spec.name));
    }
  }

  /** Closes revoked tasks and creates (fences, restores, initialises) newly assigned ones. */
  private async reconcileTasks(heartbeat?: () => Promise<void>): Promise<void> {
    for (const [id, state] of this.tasks) {
      if (!this.assignment.has(id)) {
        this.tasks.delete(id);
        await state.chain;
        await this.closeTask(state);
        this.opts.logger.info("task revoked", { task: id });
      }
    }
    const created: TaskState[] = [];
    for (const id of [...this.assignment].sort()) {
      if (this.tasks.has(id)) continue;
      const [stId, p] = id.split("_").map(Number) as [number, number];
      created.push(await this.createTask(stId, p));
    }
    if (created.length === 0) return;
    await this.restore(created, heartbeat);
    for (const s of created) {
      await s.task.init();
      this.tasks.set(s.task.id, s);
    }
  }

  private async createTask(stId: number, partition: number): Promise<TaskState> {
    const st = this.topology.subtopologies[stId];
    if (!st) throw new EcosError("ECOS_TOPOLOGY_INVALID", `no sub-topology ${stId}`);
    const stores = new Map<string, StoreBackend<unknown>>();
    const backends: StoreBackend<unknown>[] = [];
    for (const name of st.stores) {
      const spec = this.topology.stores.get(name);
      if (!spec) continue;
      let backend: StoreBackend<unknown>;
      if (spec.backend === "lmdb") {
        const dir = path.join(this.opts.stateDir, this.opts.applicationId, `${stId}_${partition}`, name);
        fs.mkdirSync(dir, { recursive: true });
        backend = new LmdbKeyValueStore(
          name,
          dir,
          spec.valueSerde,
          changelogTopicName(this.opts.applicationId, name),
        );
      } else {
        backend = new InMemoryKeyValueStore(name);
      }
      // The local copy is never trusted after a restart: the changelog is the truth.
      backend.clear();
      backends.push(backend);
      stores.set(name, backend);
    }
    const task = new StreamTask({
      topology: this.topology,
      subtopology: st,
      partition,
      applicationId: this.opts.applicationId,
      stores,
      changelogTopic: (s) => changelogTopicName(this.opts.applicationId, s),
      clock: () => Date.now(),
      onFailure: this.opts.onFailure ?? "continue",
      deadLetterTopic: this.deadLetterTopic,
    });
    const producer = this.kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      transactionalId: `${this.opts.applicationId}-${task.id}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 60000,
    });
    await producer.connect();
    // Initialising the producer id fences any earlier incarnation of this task and aborts its open
    // transaction, so the changelog read below ends at a stable offset.
    const fence = await producer.transaction();
    await fence.abort();
    return { task, producer, backends, chain: Promise.resolve() };
  }

  /**
   * A topic's low and high offsets; while a just-created topic's leadership settles (the broker says
   * it is not the leader yet), the metadata is refreshed and the call retried — kafkajs gives up at once.
   */
  private topicOffsets(topic: string): ReturnType<Admin["fetchTopicOffsets"]> {
    const admin = this.admin as Admin;
    return whileMetadataSettles(
      () => admin.fetchTopicOffsets(topic),
      30000,
      () => admin.fetchTopicMetadata({ topics: [topic] }),
    );
  }

  /** Rebuilds the logged stores of new tasks from their changelog partitions (read_committed). */
  private async restore(states: TaskState[], heartbeat?: () => Promise<void>): Promise<void> {
    const wanted = new Map<
      string,
      { store: ChangeLoggingStore<unknown>; end: bigint; taskId: string; records: number }
    >();
    for (const s of states) {
      for (const store of s.task.loggedStores()) {
        const offsets = await this.topicOffsets(store.changelogTopic);
        const o = offsets.find((x) => x.partition === s.task.partition);
        const end = BigInt(o?.high ?? "0");
        const low = BigInt(o?.low ?? "0");
        if (end > low)
          wanted.set(`${store.changelogTopic}/${s.task.partition}`, {
            store,
            end,
            taskId: s.task.id,
            records: 0,
          });
        else this.opts.onRestore?.({ taskId: s.task.id, store: store.name, records: 0, ms: 0 });
      }
    }
    if (wanted.size === 0) return;
    const started = Date.now();
    const topics = [...new Set([...wanted.keys()].map((k) => k.slice(0, k.lastIndexOf("/"))))];
    const restoreConsumer = this.kafka.consumer({
      groupId: `${this.opts.applicationId}-restore-${randomUUID()}`,
      readUncommitted: false,
      maxBytesPerPartition: 4 << 20,
    });
    const done = new Set<string>();
    let resolveDone: () => void = () => {};
    const allDone = new Promise<void>((r) => (resolveDone = r));
    const mark = (key: string, lastOffset: string): void => {
      const w = wanted.get(key);
      if (!w || done.has(key)) return;
      if (BigInt(lastOffset) >= w.end - 1n) {
        done.add(key);
        this.opts.onRestore?.({
          taskId: w.taskId,
          store: w.store.name,
          records: w.records,
          ms: Date.now() - started,
        });
        this.opts.logger.info("store restored from changelog", {
          task: w.taskId,
          store: w.store.name,
          records: w.records,
        });
        if (done.size === wanted.size) resolveDone();
      }
    };
    // Batches holding only transaction markers never reach eachBatch; this event still reports them.
    restoreConsumer.on(restoreConsumer.events.END_BATCH_PROCESS, (e) => {
      mark(`${e.payload.topic}/${e.payload.partition}`, e.payload.lastOffset);
    });
    try {
      await restoreConsumer.connect();
      await restoreConsumer.subscribe({ topics, fromBeginning: true });
      await restoreConsumer.run({
        eachBatch: async ({ batch }) => {
          const key = `${batch.topic}/${batch.partition}`;
          const w = wanted.get(key);
          if (!w || done.has(key)) return;
          for (const m of batch.messages) {
            if (m.key === null) continue;
            await w.store.restore(m.key.toString("utf8"), m.value);
            w.records++;
          }
          if (heartbeat) await heartbeat();
        },
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new EcosError(
                "ECOS_RESTORE_FAILED",
                `changelog restore did not finish in 120 s (${done.size}/${wanted.size} partitions done)`,
              ),
            ),
          120000,
        );
      });
      try {
        await Promise.race([allDone, timeout]);
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await restoreConsumer.disconnect().catch(() => {});
    }
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    // kafkajs hands these over as plain closures, not methods bound to an object.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    if (this.fatal) return;
    const logical = this.logicalOf.get(batch.topic);
    const stId = logical === undefined ? undefined : this.topology.subtopologyOfTopic.get(logical);
    if (logical === undefined || stId === undefined) return;
    const taskId = `${stId}_${batch.partition}`;
    await this.pendingTasks;
    let state = this.tasks.get(taskId);
    if (!state) {
      // Assignment event not yet processed for this partition (or racing); reconcile now.
      this.pendingTasks = this.pendingTasks.then(() => this.reconcileTasks(heartbeat));
      await this.pendingTasks;
      state = this.tasks.get(taskId);
      if (!state) return;
    }
    const s = state;
    const run = async (): Promise<void> => {
      // The task was rebuilt (recoverTask) while this batch waited: leave the records unresolved;
      // the consumer fetches them again from the position recovery sought to.
      if (this.tasks.get(taskId) !== s || this.fatal) return;
      const every = this.opts.commitEveryRecords ?? 5000;
      const messages = batch.messages;
      let first: string | undefined;
      try {
        for (let i = 0; i < messages.length; i += every) {
          if (!isRunning() || isStale() || this.fatal) break;
          const chunk = messages.slice(i, i + every);
          first = chunk[0]?.offset;
          const pending = s.task.processMany(
            chunk.map((m) => ({
              topic: logical,
              partition: batch.partition,
              offset: m.offset,
              key: m.key,
              value: m.value,
              timestamp: Number(m.timestamp),
              ...(m.headers ? { headers: decodeHeaders(m.headers) } : {}),
            })),
          );
          if (pending) await pending;
          const last = (chunk[chunk.length - 1] as { offset: string }).offset;
          await this.commitTask(
            s,
            { topic: batch.topic, partition: batch.partition, offset: last },
            chunk.length,
          );
          resolveOffset(last);
          first = undefined;
          await heartbeat();
        }
      } catch (err) {
        await this.recoverTask(s, err, { topic: batch.topic, partition: batch.partition, offset: first });
      }
    };
    s.chain = s.chain.then(run);
    await s.chain;
    await heartbeat();
  }

  /**
   * After a failed batch or commit: the transaction is aborted, so the store may be ahead of what
   * Kafka holds. Rebuild the task from its changelog and seek back to the first uncommitted record.
   */
  private async recoverTask(
    s: TaskState,
    err: unknown,
    from: { topic: string; partition: number; offset: string | undefined },
  ): Promise<void> {
    const e = asEcosError(err, "ECOS_TRANSACTION_FAILED", { topic: from.topic, partition: from.partition });
    if (this.opts.onFailure === "fail" && e.code === "ECOS_PROCESS_FAILED") {
      this.fail(e);
      return;
    }
    this.opts.logger.warn("task failed; restoring it from its changelog and retrying", {
      task: s.task.id,
      code: e.code,
      error: e.message,
    });
    // A pause before the retry, so a registry or broker outage is not a hot loop.
    await sleep(e.code === "ECOS_TRANSACTION_FAILED" ? 100 : 1000);
    // The old state stays in the map until its replacement is ready, so a batch arriving meanwhile
    // waits on this chain instead of building a second task (and producer) with the same id.
    await this.closeTask(s);
    try {
      const [stId, p] = s.task.id.split("_").map(Number) as [number, number];
      const fresh = await this.createTask(stId, p);
      await this.restore([fresh]);
      await fresh.task.init();
      if (this.tasks.get(s.task.id) === s) this.tasks.set(fresh.task.id, fresh);
      else await this.closeTask(fresh); // revoked meanwhile
      await this.seekToCommitted(fresh);
    } catch (again) {
      this.fail(again);
    }
  }

  /**
   * Puts every source partition of a rebuilt task back at the group's committed offset. The store was
   * restored to what Kafka committed, so the consumer must resume exactly there — for every source
   * topic of the task, and whether or not a failed commit had in fact gone through (fencing in
   * createTask settles an in-doubt transaction before the offsets are read).
   */
  private async seekToCommitted(s: TaskState): Promise<void> {
    const admin = this.admin as Admin;
    const topics = s.task.subtopology.sourceTopics.map(this.resolve);
    const committed = await admin.fetchOffsets({ groupId: this.groupId, topics });
    for (const t of committed) {
      const p = t.partitions.find((x) => x.partition === s.task.partition);
      let offset = p?.offset ?? "-1";
      if (offset === "-1" || offset === "") {
        const ends = await this.topicOffsets(t.topic);
        offset = ends.find((x) => x.partition === s.task.partition)?.low ?? "0";
      }
      this.consumer?.seek({ topic: t.topic, partition: s.task.partition, offset });
    }
  }

  private async commitTask(
    s: TaskState,
    consumed: { topic: string; partition: number; offset: string } | undefined,
    records = 0,
  ): Promise<void> {
    const outputs = s.task.takeOutputs();
    const changelog = s.task.takeChangelog();
    const byTopic = new Map<string, Message[]>();
    const push = (topic: string, m: Message): void => {
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, (list = []));
      list.push(m);
    };
    for (const o of outputs) {
      const actual = this.resolve(o.topic);
      const n = this.partitionCounts.get(o.topic) ?? this.partitionCounts.get(actual) ?? 1;
      push(actual, {
        key: o.key,
        value: o.value,
        timestamp: String(o.timestamp),
        partition: o.key === null ? s.task.partition % n : partitionForKey(o.key, n),
        ...(o.headers ? { headers: { ...o.headers } } : {}),
      });
    }
    let changelogCount = 0;
    for (const c of changelog) {
      for (const e of c.entries) {
        push(c.changelogTopic, { key: e.key, value: e.value, partition: s.task.partition });
        changelogCount++;
      }
    }
    if (byTopic.size === 0 && !consumed) return;
    const began = Date.now();
    const tx = await s.producer.transaction();
    try {
      for (const topicMessages of splitBySize(byTopic, this.opts.maxRequestBytes ?? 512 * 1024)) {
        await tx.sendBatch({ topicMessages });
      }
      if (consumed) {
        await tx.sendOffsets({
          consumerGroupId: this.groupId,
          topics: [
            {
              topic: consumed.topic,
              partitions: [
                { partition: consumed.partition, offset: (BigInt(consumed.offset) + 1n).toString() },
              ],
            },
          ],
        });
      }
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => {});
      throw asEcosError(err, "ECOS_TRANSACTION_FAILED", { ...(consumed ?? {}) });
    }
    if (consumed && this.topology.internalTopics.has(this.logicalOf.get(consumed.topic) ?? "")) {
      const offset = (BigInt(consumed.offset) + 1n).toString();
      this.purgeable.set(`${consumed.topic}/${consumed.partition}`, { ...consumed, offset });
    }
    this.opts.onCommit?.({
      taskId: s.task.id,
      records,
      outputs: outputs.length,
      changelog: changelogCount,
      transactionMs: Date.now() - began,
    });
  }

  /**
   * Deletes the records of internal topics that this instance's tasks have committed past. Safe under
   * exactly-once: a committed offset never moves back, so no consumer needs a record before it.
   */
  private async purgeRepartitionTopics(): Promise<void> {
    if (this.stopped || this.fatal || !this.admin || this.purgeable.size === 0) return;
    const byTopic = new Map<string, Array<{ partition: number; offset: string }>>();
    const taken = [...this.purgeable.entries()];
    for (const [, e] of taken) {
      let list = byTopic.get(e.topic);
      if (!list) byTopic.set(e.topic, (list = []));
      list.push({ partition: e.partition, offset: e.offset });
    }
    for (const [k, e] of taken) if (this.purgeable.get(k) === e) this.purgeable.delete(k);
    for (const [topic, partitions] of byTopic) {
      try {
        // kafkajs finds partition leaders only for topics already in the admin's metadata.
        await this.admin.fetchTopicMetadata({ topics: [topic] });
        await this.admin.deleteTopicRecords({ topic, partitions });
      } catch (err) {
        this.opts.logger.warn("could not delete consumed records of an internal topic; retrying later", {
          topic,
          error: (err as Error).message,
          partitions: ((err as { partitions?: Array<{ partition: number; error?: Error }> }).partitions ?? [])
            .map((p) => `${p.partition}: ${p.error?.message ?? "?"}`)
            .join("; "),
        });
      }
    }
  }

  private async wallClockPunctuate(): Promise<void> {
    if (this.stopped || this.fatal) return;
    for (const s of this.tasks.values()) {
      s.chain = s.chain.then(async () => {
        if (this.tasks.get(s.task.id) !== s || this.fatal) return; // rebuilt or revoked meanwhile
        try {
          await s.task.punctuate("wall-clock-time", Date.now());
          if (s.task.hasPendingWrites()) await this.commitTask(s, undefined);
        } catch (err) {
          await this.recoverTask(s, err, { topic: "", partition: s.task.partition, offset: undefined });
        }
      });
    }
  }

  private async closeTask(s: TaskState): Promise<void> {
    await s.task.close().catch(() => {});
    await s.producer.disconnect().catch(() => {});
    for (const b of s.backends) await b.close().catch(() => {});
  }

  /** Entries of a store across the tasks this instance owns. */
  storeEntries<V>(name: string): Array<[string, V]> {
    const out: Array<[string, V]> = [];
    for (const s of this.tasks.values()) {
      const st = s.task.store<V>(name);
      if (st) out.push(...st.all());
    }
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  taskIds(): string[] {
    return [...this.tasks.keys()].sort();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.wallClockTimer) clearInterval(this.wallClockTimer);
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    await this.consumer?.disconnect().catch(() => {});
    for (const s of this.tasks.values()) {
      await s.chain.catch(() => {});
      await this.closeTask(s);
    }
    this.tasks.clear();
    await this.admin?.disconnect().catch(() => {});
  }
}

/**
 * Retries `fn` while the broker's metadata has not caught up with topics just created (KRaft answers
 * UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE for a moment, notably on a freshly started broker,
 * and kafkajs's waitForLeaders gives up on the former).
 */
export async function whileMetadataSettles<T>(
  fn: () => Promise<T>,
  timeoutMs = 30000,
  beforeRetry?: () => Promise<unknown>,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      const type = (err as { type?: string }).type;
      const settling =
        type === "UNKNOWN_TOPIC_OR_PARTITION" ||
        type === "LEADER_NOT_AVAILABLE" ||
        type === "NOT_LEADER_FOR_PARTITION";
      if (!settling || Date.now() + delay > until) throw err;
      await sleep(delay);
      await beforeRetry?.().catch(() => {});
    }
  }
}

/** Creates topics, tolerating ones another instance (or an earlier attempt) created meanwhile. */
export async function createTopicsSettled(
  admin: Admin,
  topics: Array<{
    topic: string;
    numPartitions: number;
    replicationFactor: number;
    configEntries?: Array<{ name: string; value: string }>;
  }>,
): Promise<void> {
  await whileMetadataSettles(async () => {
    const existing = new Set(await admin.listTopics());
    const todo = topics.filter((t) => !existing.has(t.topic));
    if (todo.length === 0) return;
    try {
      await admin.createTopics({ waitForLeaders: true, topics: todo });
    } catch (err) {
      // Another instance may have created them at the same moment.
      if (!(err instanceof Error && /already exists/i.test(err.message))) throw err;
    }
  });
}

/** Approximate bytes of a message on the wire (key, value, headers). */
function messageBytes(m: Message): number {
  let n = 64 + (m.key ? m.key.length : 0) + (m.value ? (m.value as Buffer).length : 0);
  if (m.headers) for (const [k, v] of Object.entries(m.headers)) n += k.length + (v ? String(v).length : 0);
  return n;
}

/** Splits a commit's messages into produce requests of at most `limit` bytes each (a single larger message goes alone). */
export function splitBySize(
  byTopic: ReadonlyMap<string, Message[]>,
  limit: number,
): Array<Array<{ topic: string; messages: Message[] }>> {
  const requests: Array<Array<{ topic: string; messages: Message[] }>> = [];
  let current: Array<{ topic: string; messages: Message[] }> = [];
  let size = 0;
  for (const [topic, messages] of byTopic) {
    let slot: { topic: string; messages: Message[] } | undefined;
    for (const m of messages) {
      const b = messageBytes(m);
      if (size > 0 && size + b > limit) {
        requests.push(current);
        current = [];
        size = 0;
        slot = undefined;
      }
      if (!slot) {
        slot = { topic, messages: [] };
        current.push(slot);
      }
      slot.messages.push(m);
      size += b;
    }
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

function decodeHeaders(h: IHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = first.toString();
  }
  return out;
}

/**
 * Gives partition p of every source topic of a sub-topology to one member (Kafka Streams'
 * co-partitioning), dealing tasks round-robin over the members sorted by id.
 */
export function copartitionedAssigner(topology: Topology, resolve: (t: string) => string): PartitionAssigner {
  return ({ cluster }) => ({
    name: "ecos-copartitioned",
    version: 1,
    async assign({ members, topics }) {
      const sorted = [...members].map((m) => m.memberId).sort();
      const perMember = new Map<string, Record<string, number[]>>(sorted.map((m) => [m, {}]));
      const units: Array<{ topics: string[]; partition: number }> = [];
      for (const st of topology.subtopologies) {
        const actual = st.sourceTopics.map(resolve).filter((t) => topics.includes(t));
        if (actual.length === 0) continue;
        const counts = actual.map((t) => cluster.findTopicPartitionMetadata(t).length);
        const n = Math.min(...counts);
        for (let p = 0; p < n; p++) units.push({ topics: actual, partition: p });
      }
      units.forEach((u, i) => {
        const member = sorted[i % sorted.length] as string;
        const a = perMember.get(member) as Record<string, number[]>;
        for (const t of u.topics) (a[t] ??= []).push(u.partition);
      });
      return sorted.map((memberId) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: perMember.get(memberId) ?? {},
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: "ecos-copartitioned",
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
      };
    },
  });
}
