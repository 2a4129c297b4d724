/**
 * `ecos run`: the main job.
 *
 * Embedded default (no `--kafka`): the SRV 6.23 pipeline of processors/pipeline — DSP validation,
 * the ECoS and TCoS Parties, dispatch, the simulated devices and S1SP, the response tracker and the
 * ClickHouse sink into embedded ClickHouse (chDB) — over synthetic signed supplier traffic from the
 * seeded test PKI, on a simulated clock. Progress goes to stderr; the summary (outcomes, devices
 * updated, response times against 35 s / 21 s, alerts, anomaly events, rows in chDB and a SQL
 * aggregate read back from it) to stdout.
 *
 * `--kafka <brokers>`: still the foundation's demo topology (Avro meter readings counted per device
 * and per supplier) on the Kafka driver; the 6.23 pipeline on Kafka is run stage by stage for now
 * (docs/pipeline.md).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { Kafka, Partitioners, logLevel } from "kafkajs";
import { Session } from "chdb";
import {
  DEMO_STORES,
  buildCountingTopology,
  demoTopics,
  syntheticReadings,
  type DeviceCount,
  type MeterReading,
} from "../../processors/demo/counting";
import { EmbeddedPipeline, type RunProgress } from "../../processors/pipeline/pipeline";
import { summarise, type PipelineSummary } from "../../processors/pipeline/summary";
import { syntheticTraffic } from "../../processors/pipeline/traffic";
import { KafkaDriver } from "../../processors/runtime/kafka-driver";
import { consoleLogger } from "../../processors/runtime/logger";
import { partitionForKey } from "../../processors/runtime/partitioner";
import { ChdbConnection } from "../../processors/sinks/clickhouse/chdb-connection";
import { rowObjects } from "../../processors/sinks/clickhouse/connection";
import { migrate } from "../../processors/sinks/clickhouse/migrations";
import { TABLES } from "../../processors/sinks/clickhouse/tables";
import { avroSerde, loadSchema } from "../../schemas/avro";
import { DEVICE_COUNT_SCHEMA, METER_READING_SCHEMA } from "../../schemas/bench-records";
import {
  ConfluentSchemaRegistryClient,
  InMemorySchemaRegistry,
  type SchemaRegistry,
} from "../../schemas/registry";
import { seededCredentials } from "../sim/credentials";
import { loadConfig, type EcosConfig } from "../config/config";

/** Sizes of the embedded run. */
export interface PipelineRunOptions {
  readonly requests: number;
  readonly devices: number;
  /** Test PKI and simulator seed. */
  readonly seed: string;
  /** Arrival rate, requests per simulated second. */
  readonly rate: number;
  readonly partitions: number;
}

/** Sizes of the Kafka demo. */
export interface DemoRunOptions {
  readonly records: number;
  readonly devices: number;
  readonly partitions: number;
}

/** Simulated time of the first request: fixed, so that two runs with one seed are the same run. */
export const PIPELINE_START = Date.UTC(2026, 5, 1, 12, 0, 0);

const fmt = (n: number): string => n.toLocaleString("en-GB");
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

export function registerRunCommand(program: Command): void {
  program
    .command("run")
    .description(
      "Run the main job. With no --kafka: the embedded SRV 6.23 pipeline (DSP validation, ECoS/TCoS Parties, " +
        "dispatch, simulated devices and S1SP, response tracker, ClickHouse sink into embedded chDB) over " +
        "synthetic signed traffic on a simulated clock, then a summary. With --kafka: the foundation's demo " +
        "topology (meter readings counted per device and supplier) on the Kafka driver — the 6.23 pipeline " +
        "is not yet wired on Kafka as one job.",
    )
    .option("--requests <n>", "synthetic 6.23 requests (embedded pipeline)", positiveInt, 3_000)
    .option("--devices <n>", "devices in the estate (embedded) / distinct devices (Kafka demo)", positiveInt)
    .option("--seed <text>", "seed of the test PKI and the simulators (embedded)", "ecos-stream-test-pki")
    .option("--rate <n>", "arrival rate, requests per simulated second (embedded)", positiveInt, 50)
    .option("--partitions <n>", "partitions of every topic", positiveInt)
    .option("--records <n>", "synthetic meter readings (--kafka demo only)", positiveInt, 200_000)
    .option("--kafka <brokers>", "run the demo topology on a Kafka cluster (comma-separated brokers)")
    .option("--registry <url>", "Confluent-compatible schema registry URL (default: in-memory)")
    .option("--application-id <id>", "consumer group and changelog prefix")
    .action(
      async (opts: {
        requests: number;
        devices?: number;
        seed: string;
        rate: number;
        partitions?: number;
        records: number;
        kafka?: string;
        registry?: string;
        applicationId?: string;
      }) => {
        const config = loadConfig(process.env, {
          ...(opts.kafka !== undefined ? { kafkaBrokers: opts.kafka } : {}),
          ...(opts.registry !== undefined ? { registryUrl: opts.registry } : {}),
          ...(opts.applicationId !== undefined ? { applicationId: opts.applicationId } : {}),
        });
        if (config.kafkaBrokers.length > 0) {
          await runDemo(config, {
            records: opts.records,
            devices: opts.devices ?? 5_000,
            partitions: opts.partitions ?? 3,
          });
        } else {
          await runPipeline(config, {
            requests: opts.requests,
            devices: opts.devices ?? 2_000,
            seed: opts.seed,
            rate: opts.rate,
            partitions: opts.partitions ?? 1,
          });
        }
      },
    );
}

/** The embedded default: the whole 6.23 pipeline in this process, then the summary. */
export async function runPipeline(config: Readonly<EcosConfig>, opts: PipelineRunOptions): Promise<void> {
  const started = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(
    `ecos run: embedded SRV 6.23 pipeline (in-process drivers, simulated clock), ${fmt(opts.requests)} requests, ` +
      `${fmt(opts.devices)} devices, seed "${opts.seed}"\n`,
  );
  const traffic = syntheticTraffic({
    requests: opts.requests,
    devices: opts.devices,
    seed: opts.seed,
    startAt: PIPELINE_START,
    perSecond: opts.rate,
  });
  const credentials = seededCredentials(opts.seed);
  process.stderr.write(
    `  generated and signed ${fmt(traffic.requests.length)} requests (${elapsed().toFixed(1)} s)\n`,
  );

  // A fresh chDB folder per run: the sink skips offsets it has stored, and every run restarts them.
  const chdbDir = path.join(config.stateDir, "pipeline", "clickhouse");
  fs.rmSync(chdbDir, { recursive: true, force: true });
  const database = "ecos";
  const conn = new ChdbConnection(chdbDir);
  let pipeline: EmbeddedPipeline | undefined;
  try {
    await migrate(conn, database);
    await conn.useDatabase(database);
    pipeline = await EmbeddedPipeline.create({
      credentials,
      devices: traffic.devices,
      registrations: traffic.registrations,
      users: [
        { userId: traffic.cast.supplierId, roles: ["IS", "GS"], status: "ACTIVE", mpids: ["ACEE", "ACG"] },
      ],
      startTimeMs: PIPELINE_START,
      partitions: opts.partitions,
      simulator: { seed: `${opts.seed}/sim` },
      // A warning threshold below the day's volume, so the anomaly path shows; the ADT itself is not
      // reached (a quarantined request waits for an operator, which a batch run has not got).
      adt: {
        threshold: opts.requests * 10,
        warningThreshold: Math.max(1, Math.floor(opts.requests * 0.5)),
      },
      clickhouse: { connection: conn, database },
      logger: consoleLogger(config.logLevel === "debug" ? "debug" : "warn"),
    });
    const progress = (p: RunProgress): void => {
      process.stderr.write(
        `  t+${secs(p.simulatedMs).padStart(8)} simulated  submitted ${fmt(p.submitted)} / ${fmt(p.total)}  ` +
          `final responses ${fmt(p.answered)}  (${elapsed().toFixed(1)} s)\n`,
      );
    };
    const run = await pipeline.run(traffic.requests, { onProgress: progress, progressEveryMs: 15_000 });
    const summary = summarise(run, traffic.requests, pipeline, {
      supplierId: traffic.cast.supplierId,
      digitalSigning: traffic.cast.replacementDs.der,
    });
    const sql = await chdbReadBack(conn);
    printPipelineSummary(opts, summary, run.simulatedMs, elapsed(), run.sinkRows, sql, chdbDir);
    if (run.timedOut || summary.oneFinalResponse.missing > 0 || summary.oneFinalResponse.extra > 0)
      process.exitCode = 2;
  } finally {
    await pipeline?.close();
    await conn.close();
  }
}

interface ReadBack {
  readonly rows: ReadonlyArray<[string, number]>;
  readonly aggregate: string;
}

/** Rows per table, and the response times by generation as an analyst would ask ClickHouse for them. */
async function chdbReadBack(conn: ChdbConnection): Promise<ReadBack> {
  const tables = [
    TABLES.serviceResponses,
    TABLES.requestStageEvents,
    TABLES.dccAlerts,
    TABLES.anomalyEvents,
    TABLES.deviceSnapshots,
    TABLES.registrationHistory,
  ];
  const counted = rowObjects(
    // FINAL: a replacing table's row count is the same whether or not its parts have merged yet.
    await conn.query(
      tables.map((t) => `SELECT '${t}' AS t, count() AS n FROM ${t} FINAL`).join(" UNION ALL "),
    ),
  );
  const rows = tables.map((t): [string, number] => [t, Number(counted.find((r) => r.t === t)?.n ?? 0)]);
  // The final answer per request is the response with the highest offset (the table is a
  // ReplacingMergeTree on it): FINAL drops dsp-validate's I99 acknowledgements of answered requests.
  const aggregate = await conn.queryText(
    `SELECT smets_generation, count() AS requests, countIf(successful = 1) AS successful,
            round(quantile(0.5)(response_time_ms) / 1000, 1) AS p50_s,
            round(quantile(0.99)(response_time_ms) / 1000, 1) AS p99_s,
            any(target_response_time_ms) / 1000 AS target_s,
            countIf(target_response_time_ms > 0 AND within_target = 0) AS beyond_target
       FROM service_response_times
      WHERE srv = '6.23'
      GROUP BY smets_generation ORDER BY smets_generation DESC`,
    "PrettyCompactNoEscapes",
  );
  return { rows, aggregate: aggregate.trimEnd() };
}

/** A path relative to the working folder when it is inside it. */
function shortPath(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r === "" || r.startsWith("..") || path.isAbsolute(r) ? p : r;
}

function printPipelineSummary(
  opts: PipelineRunOptions,
  s: PipelineSummary,
  simulatedMs: number,
  seconds: number,
  sinkRows: number,
  sql: ReadBack,
  chdbDir: string,
): void {
  const pad = (text: string, n: number): string => text.padEnd(n);
  const lines: string[] = [
    "",
    "ecos run — summary (embedded SRV 6.23 pipeline)",
    `  requests             ${fmt(s.submitted)} submitted over ${secs(simulatedMs)} of simulated time ` +
      `(${fmt(opts.rate)}/s), ${fmt(opts.devices)} devices, seed "${opts.seed}"`,
    `  traffic              ${s.byKind.map(([k, n]) => `${k} ${fmt(n)}`).join(", ")}`,
    `  elapsed              ${seconds.toFixed(1)} s (${fmt(Math.round(s.submitted / seconds))} requests/s)`,
    "",
    "  final Service Responses by stage and response code:",
    ...s.outcomes.map(
      (o) =>
        `    ${pad(o.origin, 17)} ${pad(o.code, 14)} ${pad(o.successful ? "successful" : "not successful", 15)} ` +
        `${fmt(o.count).padStart(6)}  ${o.reason}`,
    ),
    `    (plus ${fmt(s.acknowledgements)} dsp-validate I99 acknowledgements of requests sent on)`,
    `  one final response   ${
      s.oneFinalResponse.missing === 0 && s.oneFinalResponse.extra === 0
        ? `OK: every one of the ${fmt(s.submitted)} submissions has exactly one`
        : `MISMATCH: ${fmt(s.oneFinalResponse.missing)} missing, ${fmt(s.oneFinalResponse.extra)} extra`
    }`,
    `  devices updated      ${fmt(s.devicesUpdated.smets2)} SMETS2 devices hold the gaining supplier's certificates; ` +
      `${fmt(s.devicesUpdated.smets1)} SMETS1 devices switched at the S1SP`,
    "",
    "  response time (receipt → final response; simulated WAN and device time, DCC processing takes none):",
    ...s.responseTimes.map(
      (r) =>
        `    ${pad(r.smetsGeneration, 7)} ${fmt(r.count).padStart(6)} answers  p50 ${secs(r.p50)}  p95 ${secs(r.p95)}  ` +
        `p99 ${secs(r.p99)}  max ${secs(r.max)}  target ${secs(r.targetMs)}  breaches ${fmt(r.breaches)}`,
    ),
    `  alerts               ${s.alertsByCode.length === 0 ? "none" : s.alertsByCode.map(([k, n]) => `${k} ${fmt(n)}`).join(", ")}`,
    `  anomaly events       ${
      s.anomalyByKind.length === 0 ? "none" : s.anomalyByKind.map(([k, n]) => `${k} ${fmt(n)}`).join(", ")
    }`,
    "",
    `  embedded ClickHouse (chDB at ${shortPath(chdbDir)}): ${fmt(sinkRows)} rows inserted by the sink; rows per table (FINAL):`,
    `    ${sql.rows.map(([t, n]) => `${t} ${fmt(n)}`).join(", ")}`,
    "  SELECT … FROM service_response_times GROUP BY smets_generation:",
    ...sql.aggregate.split("\n").map((l) => `    ${l}`),
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

// ---------------------------------------------------------------------------------------------------
// The foundation's demo topology, still what `ecos run --kafka` runs.

interface RunResult {
  readonly mode: string;
  readonly seconds: number;
  readonly deviceCounts: Array<[string, DeviceCount]>;
  readonly supplierCounts: Array<[string, DeviceCount]>;
  readonly deadLetters: number;
  /** Readings the counts must cover (more than this run's on a Kafka topic with earlier data). */
  readonly expectedTotal: number;
}

function progress(label: string, done: number, total: number): void {
  process.stderr.write(`  ${label} ${fmt(done)} / ${fmt(total)} (${Math.round((100 * done) / total)}%)\n`);
}

/** `ecos run --kafka`: the demo counting topology on the Kafka driver. */
export async function runDemo(config: Readonly<EcosConfig>, opts: DemoRunOptions): Promise<void> {
  const registry: SchemaRegistry = config.registryUrl
    ? new ConfluentSchemaRegistryClient({ host: config.registryUrl })
    : new InMemorySchemaRegistry();
  const readingSerde = avroSerde<MeterReading>(registry, loadSchema(METER_READING_SCHEMA));
  const countSerde = avroSerde<DeviceCount>(registry, loadSchema(DEVICE_COUNT_SCHEMA));
  const topology = buildCountingTopology({ readingSerde, countSerde, bySupplier: true });
  const result = await runOnKafka(config, opts, topology, readingSerde);
  printSummary(config, opts, result);
}

async function runOnKafka(
  config: Readonly<EcosConfig>,
  opts: DemoRunOptions,
  topology: ReturnType<typeof buildCountingTopology>,
  readingSerde: ReturnType<typeof avroSerde<MeterReading>>,
): Promise<RunResult> {
  const brokers = [...config.kafkaBrokers];
  process.stderr.write(
    `ecos run: Kafka driver on ${brokers.join(",")}, ${fmt(opts.records)} synthetic readings\n`,
  );
  const logger = consoleLogger(config.logLevel);
  let committed = 0;
  let expectedTotal = 0;
  const driver = new KafkaDriver(topology, {
    applicationId: config.applicationId,
    brokers,
    stateDir: config.stateDir,
    logger,
    onFailure: config.onFailure,
    deadLetterTopic: config.deadLetterTopic,
    replicationFactor: config.replicationFactor,
    connectTimeoutMs: config.connectTimeoutMs,
    createMissingTopics: { partitions: opts.partitions },
    onCommit: (c) => (committed += c.records),
  });
  await driver.start();
  const kafka = new Kafka({
    clientId: `${config.applicationId}-loadgen`,
    brokers,
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const topic = demoTopics().readings;
  await readingSerde.prepare(topic);
  const admin = kafka.admin();
  await admin.connect();
  const n = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions.length ?? 1;
  const started = process.hrtime.bigint();
  let batch: Array<{ key: string; value: Buffer; timestamp: string; partition: number }> = [];
  for (const r of syntheticReadings(opts.records, opts.devices)) {
    const key = Buffer.from(r.deviceId);
    batch.push({
      key: r.deviceId,
      value: readingSerde.serialize(topic, r),
      timestamp: String(r.readAt),
      partition: partitionForKey(key, n),
    });
    if (batch.length === 5000) {
      await producer.send({ topic, messages: batch });
      batch = [];
    }
  }
  if (batch.length > 0) await producer.send({ topic, messages: batch });
  await producer.disconnect();
  // The topic may hold readings from earlier runs: the counts must cover everything in it, each once.
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const inTopic = offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0);
  const counted = (store: string): number =>
    driver.storeEntries<DeviceCount>(store).reduce((sum, [, c]) => sum + c.count, 0);
  let last = 0;
  while (counted(DEMO_STORES.deviceCounts) < inTopic || counted(DEMO_STORES.supplierCounts) < inTopic) {
    await new Promise((r) => setTimeout(r, 200));
    if (committed - last >= 100_000) {
      progress("committed", committed, inTopic * 2);
      last = committed;
    }
  }
  expectedTotal = inTopic;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const result: RunResult = {
    mode: `Kafka (${brokers.join(",")}), exactly-once transactions`,
    seconds,
    deviceCounts: driver.storeEntries<DeviceCount>(DEMO_STORES.deviceCounts),
    supplierCounts: driver.storeEntries<DeviceCount>(DEMO_STORES.supplierCounts),
    deadLetters: 0,
    expectedTotal,
  };
  await driver.stop();
  return result;
}

/** Aggregates the device counts with embedded ClickHouse, as analysts will query the real tables. */
function chdbSummary(config: Readonly<EcosConfig>, counts: Array<[string, DeviceCount]>): string {
  const dir = path.join(config.stateDir, "chdb-demo");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const session = new Session(dir);
  try {
    session.query(
      "CREATE TABLE device_counts (device_id String, readings UInt64, last_read_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY device_id",
    );
    const rows = counts.map(([, c]) =>
      JSON.stringify({ device_id: c.deviceId, readings: c.count, last_read_at: c.lastReadAt }),
    );
    for (let i = 0; i < rows.length; i += 10_000) {
      session.query(`INSERT INTO device_counts FORMAT JSONEachRow ${rows.slice(i, i + 10_000).join("\n")}`);
    }
    return session
      .query(
        "SELECT count() AS devices, sum(readings) AS total_readings, min(readings) AS min_per_device, " +
          "round(avg(readings), 1) AS avg_per_device, max(readings) AS max_per_device, " +
          "max(last_read_at) AS last_reading FROM device_counts",
        "PrettyCompactNoEscapes",
      )
      .trimEnd();
  } finally {
    session.cleanup?.();
  }
}

function printSummary(config: Readonly<EcosConfig>, opts: DemoRunOptions, r: RunResult): void {
  const total = r.deviceCounts.reduce((n, [, c]) => n + c.count, 0);
  const lines = [
    "",
    "ecos run — summary",
    `  mode                 ${r.mode}`,
    `  readings in          ${fmt(opts.records)} on meter.readings (${opts.partitions} partitions, Avro)`,
    `  devices counted      ${fmt(r.deviceCounts.length)} (store ${DEMO_STORES.deviceCounts}), ${fmt(total)} readings`,
    `  suppliers counted    ${r.supplierCounts.map(([k, c]) => `${k}=${fmt(c.count)}`).join("  ")}`,
    `  dead letters         ${fmt(r.deadLetters)}`,
    `  elapsed              ${r.seconds.toFixed(2)} s (${fmt(Math.round(opts.records / r.seconds))} readings/s)`,
    `  check                ${
      total === r.expectedTotal
        ? `OK: every reading counted exactly once (${fmt(r.expectedTotal)} on the topic)`
        : `MISMATCH: ${fmt(total)} counted, ${fmt(r.expectedTotal)} expected`
    }`,
    "",
    "  embedded ClickHouse (chDB) over the device counts:",
    ...chdbSummary(config, r.deviceCounts)
      .split("\n")
      .map((l) => `    ${l}`),
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
  if (total !== r.expectedTotal) process.exitCode = 2;
}
