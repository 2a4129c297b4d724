/**
 * The sink writer against an in-memory ClickHouse: batching by size and time, offsets committed only
 * after ClickHouse acknowledges, transient failures retried, refused rows isolated and dead-lettered,
 * replays and re-deliveries stored once, and fatal failures stopping the writer without a commit.
 */
import { collectingLogger } from "../../../processors/runtime/logger";
import { jsonSerde } from "../../../processors/runtime/serde";
import { EcosError } from "../../../processors/runtime/errors";
import { route, type SinkRoute } from "../../../processors/sinks/clickhouse/routes";
import {
  SinkWriter,
  type SinkWriterOptions,
  type SourceRecord,
} from "../../../processors/sinks/clickhouse/sink-writer";
import { SINK_PROGRESS_TABLE, TABLES } from "../../../processors/sinks/clickhouse/tables";
import { MemoryClickHouse, recordingCommitter } from "./fakes";

interface Ev {
  id: string;
  n: number;
}
const TOPIC = "events";
const DB = "ecos_test";
const TABLE = `${DB}.${TABLES.migrationEvents}`;
const DEAD = `${DB}.${TABLES.sinkDeadLetters}`;
const PROGRESS = `${DB}.${SINK_PROGRESS_TABLE}`;
const dataInserts = (ch: MemoryClickHouse): Array<{ table: string; rows: number }> =>
  ch.inserts.filter((i) => i.table !== PROGRESS);

const evRoute: SinkRoute = route("events", TOPIC, TABLES.migrationEvents, jsonSerde<Ev>(), (e) => {
  if (e.n < 0) throw new EcosError("ECOS_SINK_ROW_REJECTED", `n: ${e.n} is negative`);
  return { event_id: e.id, n: e.n };
});

function records(from: number, count: number, partition = 0): SourceRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const offset = from + i;
    return {
      topic: TOPIC,
      partition,
      offset: String(offset),
      key: Buffer.from(`k${offset}`),
      value: Buffer.from(JSON.stringify({ id: `p${partition}-e${offset}`, n: offset })),
      timestamp: 1_700_000_000_000 + offset,
    };
  });
}

function setup(over: Partial<SinkWriterOptions> = {}) {
  const ch = new MemoryClickHouse();
  const committer = recordingCommitter();
  const logger = collectingLogger();
  const sleeps: number[] = [];
  let clock = 0;
  const writer = new SinkWriter({
    database: DB,
    routes: [evRoute],
    clickhouse: ch,
    committer,
    logger,
    batchRows: 3,
    batchMs: 1000,
    maxRetries: 3,
    retryBaseMs: 100,
    now: () => clock,
    sleep: async (ms) => void sleeps.push(ms),
    ...over,
  });
  return { ch, committer, logger, sleeps, writer, advance: (ms: number) => (clock += ms) };
}

const ids = (rows: Array<Record<string, unknown>>): string[] => rows.map((r) => String(r["event_id"])).sort();

describe("SinkWriter", () => {
  test("flushes when the batch is full and commits the offsets it covered", async () => {
    const { ch, committer, writer } = setup();
    await writer.add(records(0, 2));
    expect(dataInserts(ch)).toEqual([]);
    await writer.add(records(2, 5));
    await writer.settled();
    // Two full batches of 3; the seventh record waits for the next flush.
    expect(dataInserts(ch)).toEqual([
      { table: TABLE, rows: 3 },
      { table: TABLE, rows: 3 },
    ]);
    expect(committer.commits).toEqual([
      [{ topic: TOPIC, partition: 0, offset: "3" }],
      [{ topic: TOPIC, partition: 0, offset: "6" }],
    ]);
    expect(writer.bufferedRows).toBe(1);
    const row = ch.rows(TABLE)[0];
    expect(row).toEqual({
      event_id: "p0-e0",
      n: 0,
      source_topic: TOPIC,
      source_partition: 0,
      source_offset: 0,
    });
  });

  test("flushes on time: the oldest buffered row waited batchMs", async () => {
    const { ch, committer, writer, advance } = setup({ batchRows: 100 });
    await writer.add(records(0, 2));
    advance(999);
    await writer.tick();
    expect(dataInserts(ch)).toEqual([]);
    advance(1);
    await writer.tick();
    expect(dataInserts(ch)).toEqual([{ table: TABLE, rows: 2 }]);
    expect(committer.commits).toEqual([[{ topic: TOPIC, partition: 0, offset: "2" }]]);
  });

  test("commits only after ClickHouse acknowledges the insert", async () => {
    const { ch, committer, writer } = setup({ batchRows: 100 });
    let release: () => void = () => {};
    ch.gate = (table) => (table === TABLE ? new Promise<void>((r) => (release = r)) : undefined);
    await writer.add(records(0, 5));
    const flushed = writer.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(committer.commits).toEqual([]);
    release();
    await flushed;
    expect(committer.commits).toEqual([[{ topic: TOPIC, partition: 0, offset: "5" }]]);
  });

  test("commits the offset consumption reached, past the last record (transaction markers)", async () => {
    const { committer, writer } = setup({ batchRows: 100 });
    await writer.add(records(0, 2), { topic: TOPIC, partition: 0, offset: "2" });
    await writer.flush();
    expect(committer.commits).toEqual([[{ topic: TOPIC, partition: 0, offset: "3" }]]);
  });

  test("retries a transient failure with growing delays, then stores once and commits", async () => {
    const { ch, committer, writer, sleeps, logger } = setup({ batchRows: 100 });
    ch.failures.push("connect ECONNREFUSED 127.0.0.1:18123", "Code: 252. DB::Exception: Too many parts");
    await writer.add(records(0, 3));
    await writer.flush();
    expect(sleeps).toEqual([100, 200]);
    expect(ids(ch.rows(TABLE))).toEqual(["p0-e0", "p0-e1", "p0-e2"]);
    expect(committer.commits).toHaveLength(1);
    expect(logger.lines.filter((l) => l.msg.includes("retrying"))).toHaveLength(2);
  });

  test("an insert that failed after landing (time-out) is not stored again by the retry", async () => {
    const { ch, committer, writer } = setup({ batchRows: 100 });
    ch.failures.push("ambiguous:Timeout error.");
    await writer.add(records(0, 3));
    await writer.flush();
    expect(ch.rows(TABLE)).toHaveLength(3);
    expect(dataInserts(ch)).toHaveLength(1);
    expect(committer.commits).toHaveLength(1);
  });

  test("retries exhausted: the writer stops and commits nothing", async () => {
    const { ch, committer, writer } = setup({ batchRows: 100, maxRetries: 2 });
    ch.failures.push("socket hang up", "socket hang up", "socket hang up");
    await writer.add(records(0, 3));
    await expect(writer.flush()).rejects.toMatchObject({ code: "ECOS_CLICKHOUSE_FAILED" });
    expect(committer.commits).toEqual([]);
    expect(writer.failed?.message).toMatch(/still failing after 3 attempts/);
    await expect(writer.add(records(3, 1))).rejects.toBe(writer.failed);
  });

  test("a fatal failure (unknown table) stops at once without retrying", async () => {
    const { ch, committer, writer, sleeps } = setup({ batchRows: 100 });
    ch.failures.push(
      "Code: 60, e.displayText() = DB::Exception: Table ecos_test.migration_events doesn't exist.",
    );
    await writer.add(records(0, 2));
    await expect(writer.flush()).rejects.toMatchObject({ code: "ECOS_CLICKHOUSE_FAILED" });
    expect(sleeps).toEqual([]);
    expect(committer.commits).toEqual([]);
  });

  test("rows ClickHouse refuses are isolated and dead-lettered with its message; the rest are stored", async () => {
    const { ch, committer, writer } = setup({ batchRows: 100 });
    ch.refuse = (row) => row["n"] === 2 || row["n"] === 5;
    await writer.add(records(0, 8));
    await writer.flush();
    expect(ids(ch.rows(TABLE))).toEqual(["p0-e0", "p0-e1", "p0-e3", "p0-e4", "p0-e6", "p0-e7"]);
    const dead = ch.rows(DEAD);
    expect(dead.map((d) => d["source_offset"]).sort()).toEqual([2, 5]);
    expect(dead[0]).toMatchObject({
      target_table: TABLES.migrationEvents,
      error_code: "ECOS_SINK_ROW_REJECTED",
    });
    expect(String(dead[0]?.["reason"])).toMatch(/ClickHouse refused the row \(code 27\)/);
    expect(committer.commits).toEqual([[{ topic: TOPIC, partition: 0, offset: "8" }]]);
  });

  test("when ClickHouse refuses every row, the table and the mapping disagree: stop, do not dead-letter all", async () => {
    const { ch, committer, writer } = setup({ batchRows: 100 });
    ch.refuse = () => true;
    await writer.add(records(0, 4));
    await expect(writer.flush()).rejects.toThrow(/refused every one of 4 rows/);
    expect(ch.rows(DEAD)).toEqual([]);
    expect(committer.commits).toEqual([]);
  });

  test("undecodable and invalid records are dead-lettered with their code; tombstones are skipped", async () => {
    const { ch, committer, writer } = setup({ batchRows: 100 });
    const [good, bad, invalid, tomb] = records(0, 4) as [
      SourceRecord,
      SourceRecord,
      SourceRecord,
      SourceRecord,
    ];
    await writer.add([
      good,
      { ...bad, value: Buffer.from("{not json") },
      { ...invalid, value: Buffer.from(JSON.stringify({ id: "x", n: -1 })) },
      { ...tomb, value: null },
    ]);
    await writer.flush();
    expect(ids(ch.rows(TABLE))).toEqual(["p0-e0"]);
    const dead = ch.rows(DEAD).sort((a, b) => Number(a["source_offset"]) - Number(b["source_offset"]));
    expect(dead.map((d) => [d["source_offset"], d["error_code"]])).toEqual([
      [1, "ECOS_SERDE_DECODE"],
      [2, "ECOS_SINK_ROW_REJECTED"],
    ]);
    expect(dead[1]?.["reason"]).toBe("n: -1 is negative");
    expect(Buffer.from(String(dead[0]?.["payload_base64"]), "base64").toString()).toBe("{not json");
    expect(dead[0]?.["record_key"]).toBe("k1");
    expect(committer.commits).toEqual([[{ topic: TOPIC, partition: 0, offset: "4" }]]);
  });

  test("a replay of the same records by a new writer stores nothing twice", async () => {
    const first = setup({ batchRows: 100 });
    first.ch.refuse = (row) => row["n"] === 3;
    await first.writer.add(records(0, 6));
    await first.writer.add(records(0, 4, 1));
    await first.writer.flush();
    const before = { data: first.ch.rows(TABLE).length, dead: first.ch.rows(DEAD).length };

    const again = setup({ batchRows: 100 });
    const replay = new SinkWriter({
      database: DB,
      routes: [evRoute],
      clickhouse: first.ch,
      committer: again.committer,
      logger: again.logger,
      batchRows: 4,
    });
    await replay.add(records(0, 6));
    await replay.add(records(0, 4, 1));
    await replay.add(records(4, 1, 1));
    await replay.flush();
    expect(first.ch.rows(TABLE)).toHaveLength(before.data + 1);
    expect(first.ch.rows(DEAD)).toHaveLength(before.dead);
    expect(replay.totals.alreadyStored).toBe(10);
    expect(ids(first.ch.rows(TABLE)).filter((id, i, a) => a.indexOf(id) !== i)).toEqual([]);
  });

  test("every flush records its progress; records through it are skipped undecoded by a later writer", async () => {
    const first = setup({ batchRows: 100 });
    await first.writer.add(records(0, 5));
    await first.writer.add(records(0, 3, 2));
    await first.writer.flush();
    expect(first.ch.rows(PROGRESS).map((r) => [r["source_partition"], r["stored_through"]])).toEqual([
      [0, 4],
      [2, 2],
    ]);
    let decoded = 0;
    const counting = { ...evRoute, decode: (v: Buffer) => (decoded++, evRoute.decode(v)) };
    const later = new SinkWriter({
      database: DB,
      routes: [counting],
      clickhouse: first.ch,
      committer: recordingCommitter(),
      logger: first.logger,
    });
    await later.add(records(0, 7));
    await later.flush();
    expect(decoded).toBe(2);
    expect(later.totals).toMatchObject({ alreadyStored: 5, rows: 2 });
    expect(ids(first.ch.rows(TABLE)).filter((id, i, a) => a.indexOf(id) !== i)).toEqual([]);
  });

  test("records delivered again while buffered replace the buffered copies", async () => {
    const { ch, writer, logger } = setup({ batchRows: 100 });
    await writer.add(records(0, 5));
    await writer.add(records(2, 5));
    await writer.flush();
    expect(ids(ch.rows(TABLE))).toEqual(["p0-e0", "p0-e1", "p0-e2", "p0-e3", "p0-e4", "p0-e5", "p0-e6"]);
    expect(logger.lines.some((l) => l.msg.includes("delivered again"))).toBe(true);
  });

  test("a failed commit is retried with the next flush; a rebalance drops what is buffered and foreign offsets", async () => {
    const { ch, committer, writer } = setup({ batchRows: 100 });
    committer.fail = 1;
    await writer.add(records(0, 2));
    await writer.flush();
    expect(committer.commits).toEqual([]);
    await writer.add(records(0, 1, 1));
    await writer.flush();
    expect(committer.commits).toEqual([
      [
        { topic: TOPIC, partition: 0, offset: "2" },
        { topic: TOPIC, partition: 1, offset: "1" },
      ],
    ]);
    await writer.add(records(2, 2));
    writer.rebalanced([{ topic: TOPIC, partition: 1 }]);
    await writer.flush();
    expect(ch.rows(TABLE)).toHaveLength(3);
    expect(committer.commits).toHaveLength(1);
  });
});
