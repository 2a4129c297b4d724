/**
 * The ClickHouse sink's core, independent of the Kafka client: it turns consumed records into rows,
 * batches them by size or time, stores them idempotently, dead-letters what cannot be stored, and
 * commits the consumed offsets only after ClickHouse has acknowledged every row they cover.
 *
 * Delivery: effectively once. The Kafka offsets and the rows cannot share a transaction (ClickHouse
 * is outside Kafka), so the order is: insert, wait for ClickHouse's acknowledgement, then commit the
 * offsets. A crash between the two, or a replay by a fresh consumer group, delivers records again;
 * they are not stored twice, by two marks kept in ClickHouse itself:
 *
 * 1. after every flush the writer records, per source partition, the offset through which every record
 *    is stored (table `sink_progress`); a record at or below that mark is skipped without decoding;
 * 2. every row carries its source coordinates (source_topic, source_partition, source_offset); records
 *    above the progress mark but at or below the highest offset a table holds for their partition (a
 *    flush that stored rows but died before recording its progress) are looked up and skipped when
 *    there (see `dropStored`).
 *
 * In steady state every new record is above both marks and no look-up is made. As a last line, every
 * table is a ReplacingMergeTree on a deterministic event key read with FINAL, so a duplicate that slips
 * through anyway (two instances inserting the same partition around a rebalance) is never counted twice.
 *
 * Failures: a transient ClickHouse failure is retried with exponential backoff (and the stored-offset
 * check re-run first, because an insert that timed out may have landed); a refusal attributable to data
 * splits the batch until the refused rows are isolated, which go to the `sink_dead_letters` table with
 * ClickHouse's message; an undecodable record or one no column can hold goes there too, with its code.
 * Anything else (retries exhausted, unknown table, every row refused) stops the writer without
 * committing: nothing is lost, and the restarted sink resumes from the last commit.
 */
import { EcosError, asEcosError, type ErrorCode } from "../../runtime/errors";
import type { Logger } from "../../runtime/logger";
import { checkIdentifier, stringLiteral, type ClickHouseConnection, type Inserter } from "./connection";
import { classifyFailure, messageOf, type ClassifiedFailure } from "./failures";
import type { SinkRoute } from "./routes";
import { SINK_PROGRESS_TABLE, TABLES } from "./tables";

/** One consumed Kafka record, as any consumer loop hands it over. */
export interface SourceRecord {
  readonly topic: string;
  readonly partition: number;
  /** Kafka offset, decimal. */
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** Record timestamp, epoch milliseconds. */
  readonly timestamp: number;
}

/** The next offset to consume for a partition (the value a consumer group commits). */
export interface TopicPartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** The port through which the writer commits consumed offsets (kafkajs in kafka-sink.ts). */
export interface OffsetCommitter {
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>;
}

/** What one flush did. */
export interface FlushStats {
  readonly rows: number;
  /** Rows not inserted because ClickHouse already held their source offsets. */
  readonly alreadyStored: number;
  readonly deadLettered: number;
  readonly insertMs: number;
  readonly committed: readonly TopicPartitionOffset[];
}

export interface SinkWriterOptions {
  readonly database: string;
  readonly routes: readonly SinkRoute[];
  /** Inserts and the stored-offset queries. */
  readonly clickhouse: Inserter & Pick<ClickHouseConnection, "query">;
  readonly committer: OffsetCommitter;
  readonly logger: Logger;
  /** Flush when this many rows are buffered (default 10,000). */
  readonly batchRows?: number;
  /** Flush when the oldest buffered row is this old (default 1,000 ms). */
  readonly batchMs?: number;
  /** Retries of a transient failure before the writer stops (default 10). */
  readonly maxRetries?: number;
  /** First retry delay, doubled each time up to retryMaxMs (defaults 200 ms and 10 s). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Called once a flush's rows are acknowledged, before its progress and offsets are recorded: the
   * widest window a crash can hit (tests kill the sink here).
   */
  readonly afterInsert?: (stats: { rows: number }) => Promise<void> | void;
  readonly onFlush?: (stats: FlushStats) => void;
}

interface PendingRow {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  /** The row as one JSONEachRow line, source columns included. */
  readonly line: string;
}

type PendingResult = { table: string; row: PendingRow } | undefined;

interface Consumed {
  readonly topic: string;
  readonly partition: number;
  readonly next: bigint;
}

/** What one flush stores and commits, taken from the buffer when the flush is asked for. */
interface Snapshot {
  readonly pending: Map<string, PendingRow[]>;
  readonly rows: number;
  readonly consumed: Map<string, Consumed>;
}

interface DeadLetter {
  readonly record: SourceRecord;
  readonly table: string;
  readonly code: string;
  readonly reason: string;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Longest reason kept with a dead letter. */
const MAX_REASON = 2000;

export class SinkWriter {
  private readonly db: string;
  private readonly routes = new Map<string, SinkRoute>();
  private readonly batchRows: number;
  private readonly batchMs: number;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  /** Rows waiting for the next flush, per table. */
  private pending = new Map<string, PendingRow[]>();
  private pendingCount = 0;
  private oldestPendingAt: number | undefined;
  /** Offsets consumed since the last flush, per partition: the next offset to commit. */
  private consumed = new Map<string, Consumed>();
  /** Offsets whose commit failed, retried with the next flush. */
  private uncommitted = new Map<string, TopicPartitionOffset>();
  /** The next offset expected per partition: an earlier one means Kafka delivers records again. */
  private nextExpected = new Map<string, bigint>();
  /** Per partition, the offset through which every record is stored (sink_progress; -1 when none). */
  private progress = new Map<string, bigint>();
  /** Highest source offset each table holds per partition (-1 when none), loaded on demand. */
  private stored = new Map<string, Map<string, bigint>>();
  /** Serialises flushes. */
  private flushing: Promise<void> = Promise.resolve();
  /** The flush started by a full batch, still storing (at most one: back-pressure). */
  private inFlight: Promise<void> = Promise.resolve();
  private failure: EcosError | undefined;
  /** Partitions this instance owns, when the consumer loop says (offsets of others are not committed). */
  private assigned: Set<string> | undefined;

  readonly totals = { rows: 0, alreadyStored: 0, deadLettered: 0, flushes: 0, records: 0 };

  constructor(private readonly opts: SinkWriterOptions) {
    this.db = checkIdentifier(opts.database);
    for (const r of opts.routes) this.routes.set(r.topic, r);
    this.batchRows = opts.batchRows ?? 10_000;
    this.batchMs = opts.batchMs ?? 1000;
    this.maxRetries = opts.maxRetries ?? 10;
    this.retryBaseMs = opts.retryBaseMs ?? 200;
    this.retryMaxMs = opts.retryMaxMs ?? 10_000;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? defaultSleep;
  }

  /** The error that stopped the writer, if any. */
  get failed(): EcosError | undefined {
    return this.failure;
  }

  get bufferedRows(): number {
    return this.pendingCount;
  }

  /**
   * Takes consumed records of one partition, in offset order. `lastOffset` (default: the last record's)
   * is the offset consumption reached, which may be past the last record (transaction markers).
   * Resolves once they are buffered. A full batch starts a flush that stores in the background while
   * the next batch fills; a second full batch waits for it (back-pressure: one flush in flight).
   */
  async add(
    records: readonly SourceRecord[],
    lastOffset?: { topic: string; partition: number; offset: string },
  ): Promise<void> {
    if (this.failure) throw this.failure;
    const first = records[0];
    if (first) {
      const key = tpKey(first.topic, first.partition);
      this.noticeRedelivery(first);
      if (!this.progress.has(key)) await this.loadProgress(first);
      const through = this.progress.get(key) ?? -1n;
      const route = this.routes.get(first.topic);
      let last = -1n;
      for (const rec of records) {
        if (rec.partition !== first.partition || rec.topic !== first.topic) {
          throw new Error("SinkWriter.add takes the records of one partition at a time");
        }
        const offset = BigInt(rec.offset);
        last = offset;
        this.totals.records++;
        // Stored by an earlier flush (this writer's or a previous run's): nothing to do.
        if (offset <= through) {
          this.totals.alreadyStored++;
          continue;
        }
        let row = this.toPending(rec, offset, route);
        if (row instanceof Promise) row = await row;
        if (row) this.push(row.table, row.row);
        if (this.pendingCount >= this.batchRows) {
          this.setConsumed(first.topic, first.partition, offset);
          await this.flushInBackground();
        }
      }
      this.setConsumed(first.topic, first.partition, last);
    }
    if (lastOffset) this.setConsumed(lastOffset.topic, lastOffset.partition, BigInt(lastOffset.offset));
  }

  /** Flushes when the oldest buffered row has waited batchMs (call it from a timer). */
  async tick(): Promise<void> {
    if (this.failure) return;
    const due = this.oldestPendingAt !== undefined && this.now() - this.oldestPendingAt >= this.batchMs;
    const commitsOnly = this.pendingCount === 0 && (this.consumed.size > 0 || this.uncommitted.size > 0);
    if (due || commitsOnly) await this.flush().catch(() => {});
  }

  /**
   * Stores everything buffered now, then commits its offsets; flushes complete in the order they were
   * asked for. Rejects (and stops the writer) on failure.
   */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const snapshot: Snapshot = { pending: this.pending, rows: this.pendingCount, consumed: this.consumed };
    this.pending = new Map();
    this.pendingCount = 0;
    this.oldestPendingAt = undefined;
    this.consumed = new Map();
    const run = this.flushing.then(() => this.store(snapshot));
    this.flushing = run.catch(() => {});
    return run;
  }

  /** Resolves when every flush asked for so far has finished (successfully or not). */
  async settled(): Promise<void> {
    await this.flushing;
  }

  private async flushInBackground(): Promise<void> {
    await this.inFlight;
    if (this.failure) throw this.failure;
    // A failure is kept in this.failure and surfaces at the next add, tick or flush.
    this.inFlight = this.flush().catch(() => {});
  }

  /**
   * The consumer group was rebalanced: Kafka restarts every assigned partition at its committed offset,
   * so what is buffered (all uncommitted) will come again and is dropped, and the stored-offset marks are
   * reloaded (another instance may have written meanwhile). A flush in progress completes.
   */
  rebalanced(assigned?: ReadonlyArray<{ topic: string; partition: number }>): void {
    this.assigned =
      assigned === undefined ? undefined : new Set(assigned.map((a) => tpKey(a.topic, a.partition)));
    this.pending = new Map();
    this.pendingCount = 0;
    this.oldestPendingAt = undefined;
    this.consumed = new Map();
    this.uncommitted = new Map();
    this.nextExpected = new Map();
    this.stored = new Map();
    this.progress = new Map();
  }

  private async loadProgress(sample: SourceRecord): Promise<void> {
    const res = await this.withRetry("sink progress", () =>
      this.opts.clickhouse.query(
        `SELECT count(), max(stored_through) FROM ${this.db}.${SINK_PROGRESS_TABLE} ` +
          `WHERE source_topic = ${stringLiteral(sample.topic)} AND source_partition = ${sample.partition}`,
      ),
    );
    const [count, max] = res.rows[0] ?? [0, 0];
    // max() over no rows is 0 on ClickHouse, hence the count.
    this.progress.set(tpKey(sample.topic, sample.partition), Number(count) > 0 ? BigInt(String(max)) : -1n);
  }

  private noticeRedelivery(first: SourceRecord): void {
    const key = tpKey(first.topic, first.partition);
    const expected = this.nextExpected.get(key);
    const offset = BigInt(first.offset);
    if (expected === undefined || offset >= expected) return;
    // Kafka went back (a seek or a restarted fetch): what is buffered from here on comes again.
    let dropped = 0;
    for (const [table, rows] of this.pending) {
      const kept = rows.filter(
        (r) => !(r.topic === first.topic && r.partition === first.partition && r.offset >= offset),
      );
      dropped += rows.length - kept.length;
      this.pending.set(table, kept);
    }
    this.pendingCount -= dropped;
    // Consumption is back at `offset`: nothing from there on may be committed until it is buffered again.
    this.nextExpected.set(key, offset);
    this.consumed.delete(key);
    for (const marks of this.stored.values()) marks.delete(key);
    this.opts.logger.warn("records delivered again; buffered copies dropped", {
      topic: first.topic,
      partition: first.partition,
      from: first.offset,
      dropped,
    });
  }

  private setConsumed(topic: string, partition: number, offset: bigint): void {
    if (offset < 0n) return;
    const key = tpKey(topic, partition);
    const next = offset + 1n;
    const prev = this.nextExpected.get(key);
    if (prev !== undefined && next <= prev) return;
    this.nextExpected.set(key, next);
    this.consumed.set(key, { topic, partition, next });
  }

  private push(table: string, row: PendingRow): void {
    let rows = this.pending.get(table);
    if (!rows) this.pending.set(table, (rows = []));
    rows.push(row);
    this.pendingCount++;
    this.oldestPendingAt ??= this.now();
  }

  /**
   * The row for a record, a dead letter when it cannot be stored, or nothing for a tombstone; a promise
   * only while a new writer schema is fetched (or the registry is retried).
   */
  private toPending(
    rec: SourceRecord,
    offset: bigint,
    route: SinkRoute | undefined,
  ): PendingResult | Promise<PendingResult> {
    if (!route) {
      return this.deadLetter({
        record: rec,
        table: "",
        code: "ECOS_CONFIG_INVALID",
        reason: `no route for topic ${rec.topic}`,
      });
    }
    // A null value is a tombstone on a compacted topic: nothing to store.
    if (rec.value === null) return undefined;
    const value = rec.value;
    let decoded: unknown;
    try {
      decoded = route.decode(value);
    } catch (err) {
      return this.decodeFailed(route, rec, offset, value, err);
    }
    if (decoded instanceof Promise) {
      return decoded.then(
        (v: unknown) => this.mapRow(route, rec, offset, v),
        (err: unknown) => this.decodeFailed(route, rec, offset, value, err),
      );
    }
    return this.mapRow(route, rec, offset, decoded);
  }

  private async decodeFailed(
    route: SinkRoute,
    rec: SourceRecord,
    offset: bigint,
    value: Buffer,
    err: unknown,
  ): Promise<PendingResult> {
    let e = asEcosError(err, "ECOS_SERDE_DECODE");
    if (e.retriable) {
      try {
        return this.mapRow(route, rec, offset, await this.decode(route, value));
      } catch (again) {
        e = asEcosError(again, "ECOS_SERDE_DECODE");
        if (e.retriable) throw this.stop(e);
      }
    }
    return this.deadLetter({ record: rec, table: route.table, code: e.code, reason: e.message });
  }

  private mapRow(route: SinkRoute, rec: SourceRecord, offset: bigint, value: unknown): PendingResult {
    let json: string;
    try {
      json = JSON.stringify(route.toRow(value));
    } catch (err) {
      const e = asEcosError(err, "ECOS_SINK_ROW_REJECTED");
      return this.deadLetter({ record: rec, table: route.table, code: e.code, reason: e.message });
    }
    return { table: route.table, row: this.pendingRow(rec, offset, json) };
  }

  /** Decodes, retrying while the registry is unreachable (a retriable failure is not the record's fault). */
  private async decode(route: SinkRoute, value: Buffer): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        const v = route.decode(value);
        return v instanceof Promise ? await v : v;
      } catch (err) {
        const e = asEcosError(err, "ECOS_SERDE_DECODE");
        if (!e.retriable || attempt >= this.maxRetries) throw e;
        this.opts.logger.warn("decoding failed; retrying", {
          topic: route.topic,
          code: e.code,
          error: e.message,
          attempt: attempt + 1,
        });
        await this.sleep(this.backoff(attempt));
      }
    }
  }

  private pendingRow(rec: SourceRecord, offset: bigint, rowJson: string): PendingRow {
    const line =
      `${rowJson.slice(0, -1)},"source_topic":${JSON.stringify(rec.topic)},` +
      `"source_partition":${rec.partition},"source_offset":${rec.offset}}`;
    return { topic: rec.topic, partition: rec.partition, offset, line };
  }

  private deadLetter(d: DeadLetter): PendingResult {
    const r = d.record;
    const reason = d.reason.length > MAX_REASON ? `${d.reason.slice(0, MAX_REASON - 3)}...` : d.reason;
    const json = JSON.stringify({
      target_table: d.table,
      error_code: d.code,
      reason,
      record_key: r.key === null ? null : r.key.toString("utf8"),
      payload_base64: r.value === null ? "" : r.value.toString("base64"),
      record_timestamp: Math.max(0, Math.floor(r.timestamp / 1000)),
    });
    this.opts.logger.warn("record dead-lettered", {
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      code: d.code,
      reason,
    });
    return { table: TABLES.sinkDeadLetters, row: this.pendingRow(r, BigInt(r.offset), json) };
  }

  private stop(err: unknown): EcosError {
    this.failure ??= asEcosError(err, "ECOS_CLICKHOUSE_FAILED");
    return this.failure;
  }

  private backoff(attempt: number): number {
    return Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt);
  }

  private async store(snapshot: Snapshot): Promise<void> {
    if (this.failure) throw this.failure;
    const batch = snapshot.pending;
    const consumed = new Map<string, TopicPartitionOffset>();
    for (const [k, c] of snapshot.consumed) {
      consumed.set(k, { topic: c.topic, partition: c.partition, offset: c.next.toString() });
    }
    if (snapshot.rows === 0 && consumed.size === 0 && this.uncommitted.size === 0) return;
    const started = this.now();
    let stored = 0;
    let alreadyStored = 0;
    let deadLettered = 0;
    try {
      // Data tables first; rows ClickHouse refuses join the dead letters, which are stored last.
      const deadLetters = [...(batch.get(TABLES.sinkDeadLetters) ?? [])];
      batch.delete(TABLES.sinkDeadLetters);
      for (const [table, rows] of batch) {
        const fresh = await this.dropStored(table, rows);
        alreadyStored += rows.length - fresh.length;
        const refused = await this.insertAll(table, fresh);
        if (refused.length > 1 && refused.length === fresh.length) {
          throw new EcosError(
            "ECOS_CLICKHOUSE_FAILED",
            `ClickHouse refused every one of ${refused.length} rows for ${this.db}.${table} (${refused[0]?.failure.message}); the table and the sink's mapping disagree`,
            { context: { table } },
          );
        }
        stored += fresh.length - refused.length;
        for (const { row, failure } of refused) deadLetters.push(this.refusedRow(table, row, failure));
      }
      if (deadLetters.length > 0) {
        const fresh = await this.dropStored(TABLES.sinkDeadLetters, deadLetters);
        alreadyStored += deadLetters.length - fresh.length;
        const refused = await this.insertAll(TABLES.sinkDeadLetters, fresh);
        if (refused.length > 0) {
          throw new EcosError(
            "ECOS_CLICKHOUSE_FAILED",
            `ClickHouse refused dead letters: ${refused[0]?.failure.message}`,
          );
        }
        deadLettered = fresh.length;
      }
      if (this.opts.afterInsert) await this.opts.afterInsert({ rows: stored + deadLettered });
      if (consumed.size > 0) await this.recordProgress([...consumed.values()]);
    } catch (err) {
      throw this.stop(err);
    }
    const insertMs = this.now() - started;
    for (const [k, v] of consumed) this.uncommitted.set(k, v);
    // A partition given to another instance is no longer ours to commit.
    if (this.assigned)
      for (const k of [...this.uncommitted.keys()]) if (!this.assigned.has(k)) this.uncommitted.delete(k);
    const offsets = [...this.uncommitted.values()];
    try {
      if (offsets.length > 0) await this.opts.committer.commit(offsets);
      this.uncommitted = new Map();
    } catch (err) {
      // The rows are stored; a replay of these records is skipped by the stored-offset check.
      this.opts.logger.warn("offset commit failed; it is retried with the next flush", {
        error: messageOf(err),
        partitions: offsets.length,
      });
    }
    this.totals.rows += stored;
    this.totals.alreadyStored += alreadyStored;
    this.totals.deadLettered += deadLettered;
    this.totals.flushes++;
    this.opts.onFlush?.({ rows: stored, alreadyStored, deadLettered, insertMs, committed: offsets });
  }

  /** Records, per partition, that every record before the given next offsets is stored. */
  private async recordProgress(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    const at = Math.floor(this.now() / 1000);
    const lines = offsets.map((o) =>
      JSON.stringify({
        source_topic: o.topic,
        source_partition: o.partition,
        stored_through: Number(BigInt(o.offset) - 1n),
        recorded_at: Math.max(0, at),
      }),
    );
    const refused = await this.insertAll(
      SINK_PROGRESS_TABLE,
      lines.map((line, i) => ({
        topic: offsets[i]?.topic ?? "",
        partition: offsets[i]?.partition ?? 0,
        offset: -1n,
        line,
      })),
      false,
    );
    if (refused.length > 0)
      throw new EcosError(
        "ECOS_CLICKHOUSE_FAILED",
        `cannot record sink progress: ${refused[0]?.failure.message}`,
      );
    for (const o of offsets) {
      const k = tpKey(o.topic, o.partition);
      const through = BigInt(o.offset) - 1n;
      if (through > (this.progress.get(k) ?? -1n)) this.progress.set(k, through);
    }
  }

  /** The dead-letter row for a row ClickHouse refused (its original record is not at hand: keep the row). */
  private refusedRow(table: string, row: PendingRow, failure: ClassifiedFailure): PendingRow {
    const reason =
      failure.message.length > MAX_REASON
        ? `${failure.message.slice(0, MAX_REASON - 3)}...`
        : failure.message;
    const json = JSON.stringify({
      target_table: table,
      error_code: "ECOS_SINK_ROW_REJECTED" satisfies ErrorCode,
      reason: `ClickHouse refused the row${failure.code === undefined ? "" : ` (code ${failure.code})`}: ${reason}`,
      record_key: null,
      payload_base64: Buffer.from(row.line, "utf8").toString("base64"),
      record_timestamp: 0,
    });
    this.opts.logger.warn("row refused by ClickHouse; dead-lettered", {
      table,
      topic: row.topic,
      partition: row.partition,
      offset: row.offset.toString(),
      reason,
    });
    return {
      topic: row.topic,
      partition: row.partition,
      offset: row.offset,
      line:
        `${json.slice(0, -1)},"source_topic":${JSON.stringify(row.topic)},` +
        `"source_partition":${row.partition},"source_offset":${row.offset}}`,
    };
  }

  /**
   * Rows whose source offsets the table does not hold yet. Only rows at or below the table's highest
   * stored offset for their partition need a look-up; in steady state there are none.
   */
  private async dropStored(table: string, rows: readonly PendingRow[]): Promise<PendingRow[]> {
    if (rows.length === 0) return [];
    let marks = this.stored.get(table);
    if (!marks) this.stored.set(table, (marks = new Map<string, bigint>()));
    const byPartition = new Map<string, PendingRow[]>();
    for (const r of rows) {
      const k = tpKey(r.topic, r.partition);
      let list = byPartition.get(k);
      if (!list) byPartition.set(k, (list = []));
      list.push(r);
    }
    const unknown = [...byPartition.keys()].filter((k) => !marks.has(k));
    if (unknown.length > 0)
      await this.loadMarks(
        table,
        marks,
        unknown.map((k) => byPartition.get(k)?.[0] as PendingRow),
      );
    const out: PendingRow[] = [];
    for (const [k, list] of byPartition) {
      const mark = marks.get(k) ?? -1n;
      const suspect = list.filter((r) => r.offset <= mark);
      if (suspect.length === 0) {
        out.push(...list);
        continue;
      }
      const present = await this.storedOffsets(table, suspect);
      for (const r of list) if (!present.has(r.offset)) out.push(r);
    }
    return out;
  }

  private async loadMarks(
    table: string,
    marks: Map<string, bigint>,
    samples: readonly PendingRow[],
  ): Promise<void> {
    const byTopic = new Map<string, number[]>();
    for (const s of samples) {
      let list = byTopic.get(s.topic);
      if (!list) byTopic.set(s.topic, (list = []));
      list.push(s.partition);
      marks.set(tpKey(s.topic, s.partition), -1n);
    }
    for (const [topic, partitions] of byTopic) {
      const res = await this.withRetry(`stored offsets of ${table}`, () =>
        this.opts.clickhouse.query(
          `SELECT source_partition, max(source_offset) FROM ${this.db}.${table} ` +
            `WHERE source_topic = ${stringLiteral(topic)} AND source_partition IN (${partitions.join(", ")}) ` +
            `GROUP BY source_partition`,
        ),
      );
      for (const [p, max] of res.rows) marks.set(tpKey(topic, Number(p)), BigInt(String(max)));
    }
  }

  private async storedOffsets(table: string, rows: readonly PendingRow[]): Promise<Set<bigint>> {
    const first = rows[0] as PendingRow;
    let lo = first.offset;
    let hi = first.offset;
    for (const r of rows) {
      if (r.offset < lo) lo = r.offset;
      if (r.offset > hi) hi = r.offset;
    }
    const res = await this.withRetry(`stored offsets of ${table}`, () =>
      this.opts.clickhouse.query(
        `SELECT DISTINCT source_offset FROM ${this.db}.${table} WHERE source_topic = ${stringLiteral(first.topic)} ` +
          `AND source_partition = ${first.partition} AND source_offset >= ${lo} AND source_offset <= ${hi}`,
      ),
    );
    return new Set(res.rows.map(([o]) => BigInt(String(o))));
  }

  /** Runs a query, retrying transient failures like an insert. */
  private async withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const f = classifyFailure(err);
        if (f.kind !== "transient" || attempt >= this.maxRetries) {
          throw new EcosError("ECOS_CLICKHOUSE_FAILED", `${what}: ${f.message}`, { cause: err });
        }
        this.opts.logger.warn("ClickHouse query failed; retrying", {
          what,
          error: f.message,
          attempt: attempt + 1,
        });
        await this.sleep(this.backoff(attempt));
      }
    }
  }

  /**
   * Inserts rows, retrying transient failures and isolating refused rows by halving. Returns the rows
   * ClickHouse refused, with why.
   */
  private async insertAll(
    table: string,
    rows: readonly PendingRow[],
    recheck = true,
  ): Promise<Array<{ row: PendingRow; failure: ClassifiedFailure }>> {
    if (rows.length === 0) return [];
    let todo = rows;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.opts.clickhouse.insertJsonEachRow(
          `${this.db}.${table}`,
          Buffer.from(todo.map((r) => r.line).join("\n"), "utf8"),
        );
        return [];
      } catch (err) {
        const f = classifyFailure(err);
        if (f.kind === "row") {
          if (todo.length === 1) return [{ row: todo[0] as PendingRow, failure: f }];
          const mid = Math.ceil(todo.length / 2);
          return [
            ...(await this.insertAll(table, todo.slice(0, mid), recheck)),
            ...(await this.insertAll(table, todo.slice(mid), recheck)),
          ];
        }
        if (f.kind === "fatal") {
          throw new EcosError(
            "ECOS_CLICKHOUSE_FAILED",
            `insert into ${this.db}.${table} cannot succeed: ${f.message}`,
            {
              cause: err,
              context: { table },
            },
          );
        }
        if (attempt >= this.maxRetries) {
          throw new EcosError(
            "ECOS_CLICKHOUSE_FAILED",
            `insert into ${this.db}.${table} still failing after ${attempt + 1} attempts: ${f.message}`,
            { cause: err, context: { table } },
          );
        }
        const wait = this.backoff(attempt);
        this.opts.logger.warn("ClickHouse insert failed; retrying", {
          table,
          rows: todo.length,
          error: f.message,
          attempt: attempt + 1,
          retryInMs: wait,
        });
        await this.sleep(wait);
        // The failed insert may have landed (a timeout after ClickHouse wrote the part): look again.
        // (Progress rows need no look-up: a second copy of one changes no max().)
        if (!recheck) continue;
        const marks = this.stored.get(table);
        for (const r of todo) marks?.delete(tpKey(r.topic, r.partition));
        todo = await this.dropStored(table, todo);
        if (todo.length === 0) return [];
      }
    }
  }
}
