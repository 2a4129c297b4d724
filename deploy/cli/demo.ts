/**
 * `ecos demo --kafka <brokers>`: the foundation's demo topology — Avro meter readings counted per
 * device and per supplier (through a repartition topic) with exactly-once transactions on the Kafka
 * driver, checked against everything on the input topic, then summarised with embedded ClickHouse.
 * A smoke test of a Kafka cluster and the runtime, separate from the 6.23 pipeline (`ecos run`).
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
import { EcosError } from "../../processors/runtime/errors";
import { KafkaDriver } from "../../processors/runtime/kafka-driver";
import { consoleLogger } from "../../processors/runtime/logger";
import { partitionForKey } from "../../processors/runtime/partitioner";
import { avroSerde, loadSchema } from "../../schemas/avro";
import { DEVICE_COUNT_SCHEMA, METER_READING_SCHEMA } from "../../schemas/bench-records";
import {
  ConfluentSchemaRegistryClient,
  InMemorySchemaRegistry,
  type SchemaRegistry,
} from "../../schemas/registry";
import { loadConfig, type EcosConfig } from "../config/config";

/** Sizes of the Kafka demo. */
export interface DemoRunOptions {
  readonly records: number;
  readonly devices: number;
  readonly partitions: number;
}

const fmt = (n: number): string => n.toLocaleString("en-GB");

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "The foundation's demo topology on a Kafka cluster: synthetic Avro meter readings counted per device " +
        "and per supplier with exactly-once transactions, checked against the input topic, summarised with chDB.",
    )
    .option("--kafka <brokers>", "Kafka brokers, comma-separated (default ECOS_KAFKA_BROKERS)")
    .option("--registry <url>", "Confluent-compatible schema registry URL (default: in-memory)")
    .option("--application-id <id>", "consumer group and changelog prefix")
    .option("--records <n>", "synthetic meter readings", positiveInt, 200_000)
    .option("--devices <n>", "distinct devices", positiveInt, 5_000)
    .option("--partitions <n>", "partitions of the topics the demo creates", positiveInt, 3)
    .action(
      async (opts: {
        kafka?: string;
        registry?: string;
        applicationId?: string;
        records: number;
        devices: number;
        partitions: number;
      }) => {
        const config = loadConfig(process.env, {
          ...(opts.kafka !== undefined ? { kafkaBrokers: opts.kafka } : {}),
          ...(opts.registry !== undefined ? { registryUrl: opts.registry } : {}),
          ...(opts.applicationId !== undefined ? { applicationId: opts.applicationId } : {}),
        });
        if (config.kafkaBrokers.length === 0)
          throw new EcosError(
            "ECOS_CONFIG_INVALID",
            "ecos demo needs Kafka brokers: --kafka or ECOS_KAFKA_BROKERS",
          );
        await runDemo(config, { records: opts.records, devices: opts.devices, partitions: opts.partitions });
      },
    );
}

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

/** `ecos demo`: the demo counting topology on the Kafka driver. */
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
    `ecos demo: Kafka driver on ${brokers.join(",")}, ${fmt(opts.records)} synthetic readings\n`,
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
    "ecos demo — summary",
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
