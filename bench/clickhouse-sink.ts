/**
 * ClickHouse sink throughput, rows/s, into embedded chDB and into the ClickHouse server, on two paths:
 *
 * - `writer`: MigrationEvent records already in memory (Avro, Confluent wire format) through the
 *   SinkWriter: decode, map, batch, insert, record progress, "commit" (a no-op committer). What the
 *   sink itself costs.
 * - `kafka`: the same records produced to a Kafka topic first (not timed), then the KafkaClickHouseSink
 *   consuming them: from its first stored batch to the group's commit of the last offset.
 *
 *   npx tsx bench/clickhouse-sink.ts [knobs]            (bench/README.md lists every knob)
 *
 * One JSON line per figure, e.g.
 *   {"bench":"clickhouse-sink","path":"writer","target":"chdb","metric":"rows_per_s","value":150000,"baseline":140000,"ratio":1.07}
 * and a summary line with the target (>= 50,000 rows/s into chDB).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { syntheticMigrationEvents } from "../processors/emrr/synthetic";
import { partitionForKey } from "../processors/runtime/partitioner";
import { consoleLogger, silentLogger } from "../processors/runtime/logger";
import { ChdbConnection } from "../processors/sinks/clickhouse/chdb-connection";
import type { ClickHouseConnection } from "../processors/sinks/clickhouse/connection";
import { KafkaClickHouseSink } from "../processors/sinks/clickhouse/kafka-sink";
import { migrate } from "../processors/sinks/clickhouse/migrations";
import { defaultRoutes } from "../processors/sinks/clickhouse/routes";
import { ServerConnection } from "../processors/sinks/clickhouse/server-connection";
import { SinkWriter, type SourceRecord } from "../processors/sinks/clickhouse/sink-writer";
import { avroSerde, loadSchema } from "../schemas/avro";
import { EVENT_SCHEMAS, type MigrationEvent } from "../schemas/event-records";
import { InMemorySchemaRegistry } from "../schemas/registry";

interface Knobs {
  paths: string[];
  targets: string[];
  rows: number;
  kafkaRows: number;
  batchRows: number;
  partitions: number;
  brokers: string[];
  clickhouseUrl: string;
  baseline: string;
  updateBaseline: boolean;
}

function knobs(argv: string[]): Knobs {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const int = (name: string, def: number): number => {
    const raw = get(name);
    const n = raw === undefined ? def : Number(raw);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${raw}`);
    return n;
  };
  return {
    paths: (get("paths") ?? "writer,kafka").split(","),
    targets: (get("targets") ?? "chdb,server").split(","),
    rows: int("rows", 300_000),
    kafkaRows: int("kafka-rows", 200_000),
    batchRows: int("batch-rows", 20_000),
    partitions: int("partitions", 3),
    brokers: (get("brokers") ?? process.env["ECOS_KAFKA_BROKERS"] ?? "127.0.0.1:19092").split(","),
    clickhouseUrl: get("clickhouse-url") ?? process.env["ECOS_CLICKHOUSE_URL"] ?? "http://127.0.0.1:18123",
    baseline: get("baseline") ?? path.join(__dirname, "clickhouse-sink.baseline.json"),
    updateBaseline: argv.includes("--update-baseline"),
  };
}

type Figures = Record<string, Record<string, number>>;

function open(target: string, k: Knobs, dir: string): ClickHouseConnection {
  return target === "chdb" ? new ChdbConnection(dir) : new ServerConnection({ url: k.clickhouseUrl });
}

/** Synthetic MigrationEvents as Kafka records (about 4 events per attempt). */
async function records(
  registry: InMemorySchemaRegistry,
  topic: string,
  rows: number,
  partitions: number,
): Promise<SourceRecord[]> {
  const serde = avroSerde<MigrationEvent>(registry, loadSchema(EVENT_SCHEMAS.migrationEvent));
  await serde.prepare(topic);
  const next = new Map<number, number>();
  const out: SourceRecord[] = [];
  for (const e of syntheticMigrationEvents({ attempts: rows, idPrefix: randomBytes(4).toString("hex") })) {
    if (out.length === rows) break;
    const p = partitionForKey(Buffer.from(e.deviceId), partitions);
    const offset = next.get(p) ?? 0;
    next.set(p, offset + 1);
    out.push({
      topic,
      partition: p,
      offset: String(offset),
      key: Buffer.from(e.deviceId),
      value: serde.serialize(topic, e),
      timestamp: e.occurredAt,
    });
  }
  return out;
}

async function writerPath(target: string, k: Knobs, dir: string): Promise<Record<string, number>> {
  const registry = new InMemorySchemaRegistry();
  const topic = "bench.migration-events";
  const routes = defaultRoutes(registry, { migrationEvents: topic }).filter(
    (r) => r.name === "migrationEvents",
  );
  const input = await records(registry, topic, k.rows, k.partitions);
  const conn = open(target, k, dir);
  const db = `bench_${randomBytes(3).toString("hex")}`;
  try {
    await migrate(conn, db);
    const writer = new SinkWriter({
      database: db,
      routes,
      clickhouse: conn,
      committer: { commit: async () => {} },
      logger: silentLogger,
      batchRows: k.batchRows,
    });
    const byPartition = new Map<number, SourceRecord[]>();
    for (const r of input) {
      let list = byPartition.get(r.partition);
      if (!list) byPartition.set(r.partition, (list = []));
      list.push(r);
    }
    const started = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    // Batches of 1,000 per partition in turn, as a consumer hands them over.
    const cursors = [...byPartition.values()].map((list) => ({ list, at: 0 }));
    while (cursors.some((c) => c.at < c.list.length)) {
      for (const c of cursors) {
        if (c.at >= c.list.length) continue;
        await writer.add(c.list.slice(c.at, c.at + 1000));
        c.at += 1000;
      }
    }
    await writer.flush();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(cpu);
    const stored = Number((await conn.query(`SELECT count() FROM ${db}.migration_events`)).rows[0]?.[0]);
    if (stored !== input.length) throw new Error(`stored ${stored} of ${input.length} rows`);
    return {
      rows_per_s: Math.round(input.length / seconds),
      // CPU of this process (all its threads, chDB's included) per row: steadier than wall time on a
      // shared machine. The server target's own CPU is not counted.
      cpu_us_per_row: Math.round(((used.user + used.system) / input.length) * 10) / 10,
      rows: input.length,
      flushes: writer.totals.flushes,
    };
  } finally {
    if (target === "server") await conn.exec(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
    await conn.close();
  }
}

async function kafkaPath(target: string, k: Knobs, dir: string): Promise<Record<string, number>> {
  const registry = new InMemorySchemaRegistry();
  const prefix = `bench-chsink-${Date.now().toString(36)}-${randomBytes(2).toString("hex")}`;
  const topic = `${prefix}.migration-events`;
  const kafka = new Kafka({ clientId: prefix, brokers: k.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: k.partitions, replicationFactor: 1 }],
  });
  const input = await records(registry, topic, k.kafkaRows, k.partitions);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < input.length; i += 5000) {
    await producer.send({
      topic,
      messages: input.slice(i, i + 5000).map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
    });
  }
  await producer.disconnect();
  const conn = open(target, k, dir);
  const db = `bench_${randomBytes(3).toString("hex")}`;
  await migrate(conn, db);
  const routes = defaultRoutes(registry, { migrationEvents: topic }).filter(
    (r) => r.name === "migrationEvents",
  );
  let first: bigint | undefined;
  let stored = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const sink = new KafkaClickHouseSink({
    brokers: k.brokers,
    groupId: `${prefix}-sink`,
    routes,
    clickhouse: conn,
    database: db,
    logger: consoleLogger("warn"),
    batchRows: k.batchRows,
    batchMs: 1000,
    migrate: false,
    onFlush: (f) => {
      first ??= process.hrtime.bigint();
      stored += f.rows;
      if (stored >= input.length) done();
    },
  });
  const startedAt = process.hrtime.bigint();
  try {
    await sink.start();
    await finished;
    const end = process.hrtime.bigint();
    // From the first stored batch (consumer-group start-up excluded) to the last commit.
    const seconds = Number(end - (first ?? startedAt)) / 1e9;
    const withStartup = Number(end - startedAt) / 1e9;
    return {
      rows_per_s: Math.round(input.length / seconds),
      rows_per_s_with_startup: Math.round(input.length / withStartup),
      rows: input.length,
    };
  } finally {
    await sink.stop();
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.deleteGroups([`${prefix}-sink`]).catch(() => {});
    await admin.disconnect();
    if (target === "server") await conn.exec(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
    await conn.close();
  }
}

async function main(): Promise<void> {
  const k = knobs(process.argv.slice(2));
  const baseline: Figures = fs.existsSync(k.baseline)
    ? (JSON.parse(fs.readFileSync(k.baseline, "utf8")) as Figures)
    : {};
  const figures: Figures = {};
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-bench-chdb-"));
  try {
    for (const p of k.paths) {
      for (const target of k.targets) {
        const key = `${p}/${target}`;
        const f = p === "writer" ? await writerPath(target, k, dir) : await kafkaPath(target, k, dir);
        figures[key] = f;
        for (const [metric, value] of Object.entries(f)) {
          const base = baseline[key]?.[metric];
          const line: Record<string, unknown> = { bench: "clickhouse-sink", path: p, target, metric, value };
          if (base !== undefined) {
            line["baseline"] = base;
            line["ratio"] = Math.round((value / base) * 100) / 100;
          }
          process.stdout.write(`${JSON.stringify(line)}\n`);
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const chdbFigures = ["writer/chdb", "kafka/chdb"]
    .map((key) => figures[key]?.["rows_per_s"])
    .filter((v): v is number => v !== undefined);
  const slowest = chdbFigures.length === 0 ? null : Math.min(...chdbFigures);
  process.stdout.write(
    `${JSON.stringify({
      bench: "clickhouse-sink",
      summary: {
        target_chdb_rows_per_s: 50_000,
        slowest_chdb_rows_per_s: slowest,
        met: slowest === null ? null : slowest >= 50_000,
        loadavg_1m: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
        cpus: os.cpus().length,
      },
    })}\n`,
  );
  if (k.updateBaseline) fs.writeFileSync(k.baseline, `${JSON.stringify(figures, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
