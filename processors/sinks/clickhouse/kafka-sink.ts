/**
 * The ClickHouse sink as its own Kafka consumer loop (kafkajs), around the Kafka-agnostic SinkWriter.
 *
 * Why not a processor in a topology: the runtime's Kafka driver gets exactly-once by putting a task's
 * outputs and its consumed offsets in one Kafka transaction. A ClickHouse insert cannot join that
 * transaction, so inside a topology the offsets would be committed when the transaction commits, not
 * when ClickHouse acknowledges. Here the loop owns the commit: `autoCommit` is off, records are
 * resolved for fetching as they are buffered, and offsets are committed by the writer only after the
 * rows they cover are acknowledged (docs/clickhouse.md, "Delivery").
 *
 * Consumer group `<groupId>`; reads with isolation read_committed, so records of aborted transactions
 * upstream are never stored.
 */
import {
  Kafka,
  logLevel as KafkaLogLevel,
  type Consumer,
  type EachBatchPayload,
  type LogEntry,
} from "kafkajs";
import { EcosError, asEcosError } from "../../runtime/errors";
import type { Logger } from "../../runtime/logger";
import type { ClickHouseConnection } from "./connection";
import { migrate } from "./migrations";
import type { SinkRoute } from "./routes";
import { SinkWriter, type FlushStats, type SourceRecord } from "./sink-writer";

export interface KafkaClickHouseSinkOptions {
  readonly brokers: readonly string[];
  /** Consumer group id (default `ecos-clickhouse-sink`). */
  readonly groupId: string;
  readonly clientId?: string;
  readonly routes: readonly SinkRoute[];
  readonly clickhouse: ClickHouseConnection;
  readonly database: string;
  readonly logger: Logger;
  readonly batchRows?: number;
  readonly batchMs?: number;
  readonly maxRetries?: number;
  readonly retryBaseMs?: number;
  /** Where a group with no committed offset starts (default: the earliest record). */
  readonly fromBeginning?: boolean;
  readonly sessionTimeoutMs?: number;
  /** Create route topics that do not exist, with this many partitions (default: fail, naming them). */
  readonly createMissingTopics?: { readonly partitions: number; readonly replicationFactor?: number };
  /** Apply the DDL migrations before consuming (default true). */
  readonly migrate?: boolean;
  readonly afterInsert?: (stats: { rows: number }) => Promise<void> | void;
  readonly onFlush?: (stats: FlushStats) => void;
}

export class KafkaClickHouseSink {
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  readonly writer: SinkWriter;
  private timer: NodeJS.Timeout | undefined;
  private fatal: EcosError | undefined;
  private readonly waiters: Array<(e: EcosError) => void> = [];
  private stopped = false;
  /** The batch being buffered, so that stop() flushes after it. */
  private adding: Promise<void> = Promise.resolve();

  constructor(private readonly opts: KafkaClickHouseSinkOptions) {
    const logger = opts.logger;
    this.kafka = new Kafka({
      clientId: opts.clientId ?? opts.groupId,
      brokers: [...opts.brokers],
      connectionTimeout: 3000,
      logLevel: KafkaLogLevel.WARN,
      logCreator:
        () =>
        ({ level, log }: LogEntry) => {
          const { message, ...rest } = log;
          const fields: Record<string, unknown> = { component: "kafkajs", ...rest };
          delete fields["timestamp"];
          delete fields["logger"];
          if (level <= KafkaLogLevel.ERROR) logger.error(message, fields);
          else logger.warn(message, fields);
        },
      retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 5000 },
    });
    this.writer = new SinkWriter({
      database: opts.database,
      routes: opts.routes,
      clickhouse: opts.clickhouse,
      logger,
      committer: {
        commit: async (offsets) => {
          await this.consumer?.commitOffsets(offsets.map((o) => ({ ...o })));
        },
      },
      ...(opts.batchRows !== undefined ? { batchRows: opts.batchRows } : {}),
      ...(opts.batchMs !== undefined ? { batchMs: opts.batchMs } : {}),
      ...(opts.maxRetries !== undefined ? { maxRetries: opts.maxRetries } : {}),
      ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}),
      ...(opts.afterInsert ? { afterInsert: opts.afterInsert } : {}),
      ...(opts.onFlush ? { onFlush: opts.onFlush } : {}),
    });
  }

  /** Migrates the schema, joins the consumer group and starts storing. */
  async start(): Promise<void> {
    if (this.opts.migrate ?? true) await migrate(this.opts.clickhouse, this.opts.database, this.opts.logger);
    await this.ensureTopics();
    const consumer = this.kafka.consumer({
      groupId: this.opts.groupId,
      readUncommitted: false,
      sessionTimeout: this.opts.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: 3000,
      maxBytesPerPartition: 4 << 20,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = Object.entries(e.payload.memberAssignment).flatMap(([topic, partitions]) =>
        partitions.map((partition) => ({ topic, partition })),
      );
      this.writer.rebalanced(assigned);
      this.opts.logger.info("ClickHouse sink joined its consumer group", {
        group: this.opts.groupId,
        partitions: assigned.map((a) => `${a.topic}/${a.partition}`).join(","),
      });
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) this.fail(asEcosError(e.payload.error, "ECOS_BROKER_UNAVAILABLE"));
    });
    await consumer.connect();
    await consumer.subscribe({
      topics: this.opts.routes.map((r) => r.topic),
      fromBeginning: this.opts.fromBeginning ?? true,
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(payload),
    });
    const every = Math.max(20, Math.min(250, Math.floor((this.opts.batchMs ?? 1000) / 4)));
    this.timer = setInterval(() => {
      void this.writer.tick().then(() => {
        if (this.writer.failed) this.fail(this.writer.failed);
      });
    }, every);
  }

  private async ensureTopics(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = [...new Set(this.opts.routes.map((r) => r.topic))].filter((t) => !existing.has(t));
      if (missing.length === 0) return;
      const create = this.opts.createMissingTopics;
      if (!create) {
        throw new EcosError(
          "ECOS_CONFIG_INVALID",
          `topics do not exist: ${missing.join(", ")}. Create them, or let the sink create them (ecos sink --create-topics).`,
        );
      }
      await admin
        .createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({
            topic,
            numPartitions: create.partitions,
            replicationFactor: create.replicationFactor ?? 1,
          })),
        })
        .catch((err: unknown) => {
          if (!(err instanceof Error && /already exists/i.test(err.message))) throw err;
        });
    } finally {
      await admin.disconnect();
    }
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs passes plain closures
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    if (!isRunning() || isStale() || this.fatal || this.stopped) return;
    const records: SourceRecord[] = batch.messages.map((m) => ({
      topic: batch.topic,
      partition: batch.partition,
      offset: m.offset,
      key: m.key,
      value: m.value,
      timestamp: Number(m.timestamp),
    }));
    const last = batch.lastOffset();
    const adding = this.writer.add(records, { topic: batch.topic, partition: batch.partition, offset: last });
    this.adding = adding.catch(() => {});
    try {
      await adding;
    } catch (err) {
      this.fail(err);
      return;
    }
    // Fetching moves on; the commit waits for ClickHouse (the writer commits after each flush).
    resolveOffset(last);
    await heartbeat();
  }

  private fail(err: unknown): void {
    if (this.fatal) return;
    this.fatal = asEcosError(err, "ECOS_CLICKHOUSE_FAILED");
    this.opts.logger.error("ClickHouse sink stopped", { code: this.fatal.code, error: this.fatal.message });
    for (const w of this.waiters.splice(0)) w(this.fatal);
  }

  /** Resolves with the error that stopped the sink. */
  waitForFailure(): Promise<EcosError> {
    if (this.fatal) return Promise.resolve(this.fatal);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Flushes what is buffered (storing it and committing its offsets), then leaves the group. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    // Store what is buffered and commit it while still a group member; batches arriving meanwhile are
    // left unresolved and come again to whoever consumes next.
    this.consumer?.pause(this.opts.routes.map((r) => ({ topic: r.topic })));
    await this.adding;
    if (!this.fatal) await this.writer.flush().catch((err: unknown) => this.fail(err));
    await this.consumer?.disconnect().catch(() => {});
  }
}
