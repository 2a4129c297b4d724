/**
 * Throughput of consume-transform-produce — Avro in, Avro out, one stateful count per device — on
 * the in-process driver and on the Kafka driver (real broker), measured in one run.
 *
 *   npx tsx bench/throughput.ts [knobs]        (see bench/README.md for every knob)
 *
 * Prints one JSON line per figure, e.g.
 *   {"bench":"throughput","driver":"kafka","metric":"records_per_s","value":23512,"baseline":22000,"ratio":1.07}
 * and a final {"bench":"throughput","summary":...} line. Ratios compare with bench/baseline.json;
 * `--update-baseline` rewrites it from this run.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Kafka, logLevel } from "kafkajs";
import {
  DEMO_STORES,
  buildCountingTopology,
  demoTopics,
  syntheticReadings,
} from "../processors/demo/counting";
import { InProcessDriver } from "../processors/runtime/in-process-driver";
import { KafkaDriver } from "../processors/runtime/kafka-driver";
import { consoleLogger } from "../processors/runtime/logger";
import { partitionForKey } from "../processors/runtime/partitioner";
import type { Topology } from "../processors/runtime/topology";
import { avroSerde, loadSchema, type AvroSerde } from "../schemas/avro";
import {
  DEVICE_COUNT_SCHEMA,
  METER_READING_SCHEMA,
  type DeviceCount,
  type MeterReading,
} from "../schemas/bench-records";
import { InMemorySchemaRegistry } from "../schemas/registry";
import { BASELINE_FILE, reportFigures, type Figures } from "./baseline";

interface Knobs {
  drivers: string[];
  inProcessRecords: number;
  kafkaRecords: number;
  devices: number;
  partitions: number;
  brokers: string[];
  backend: "memory" | "lmdb";
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
  const backend = get("backend") ?? "memory";
  if (backend !== "memory" && backend !== "lmdb") throw new Error("--backend must be memory or lmdb");
  return {
    drivers: (get("drivers") ?? "in-process,kafka").split(","),
    inProcessRecords: int("in-process-records", 1_000_000),
    kafkaRecords: int("kafka-records", 300_000),
    devices: int("devices", 10_000),
    partitions: int("partitions", 3),
    brokers: (get("brokers") ?? process.env["ECOS_KAFKA_BROKERS"] ?? "127.0.0.1:19092").split(","),
    backend,
    baseline: get("baseline") ?? BASELINE_FILE,
    updateBaseline: argv.includes("--update-baseline"),
  };
}

function serdes(): {
  registry: InMemorySchemaRegistry;
  reading: AvroSerde<MeterReading>;
  count: AvroSerde<DeviceCount>;
} {
  const registry = new InMemorySchemaRegistry();
  return {
    registry,
    reading: avroSerde<MeterReading>(registry, loadSchema(METER_READING_SCHEMA)),
    count: avroSerde<DeviceCount>(registry, loadSchema(DEVICE_COUNT_SCHEMA)),
  };
}

function progress(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

const rssMb = (): number => process.memoryUsage().rss / 1048576;

async function inputBytes(serde: AvroSerde<MeterReading>, topic: string, n: number, devices: number) {
  await serde.prepare(topic);
  const out: Array<{ key: Buffer; value: Buffer; timestamp: number }> = [];
  for (const r of syntheticReadings(n, devices)) {
    out.push({ key: Buffer.from(r.deviceId), value: serde.serialize(topic, r), timestamp: r.readAt });
  }
  return out;
}

async function benchInProcess(k: Knobs): Promise<Figures> {
  const s = serdes();
  const prefix = "";
  const topology: Topology = buildCountingTopology({
    readingSerde: s.reading,
    countSerde: s.count,
    backend: k.backend,
    topicPrefix: prefix,
  });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-bench-"));
  const driver = await InProcessDriver.create(topology, {
    applicationId: "bench",
    partitions: k.partitions,
    stateDir,
    retainRecords: 10_000,
  });
  const topic = demoTopics(prefix).readings;
  // Input is generated in slices so the generator's own memory is not what we measure.
  const slice = 100_000;
  let seconds = 0;
  const rssStart = rssMb();
  let rssMax = rssStart;
  const rssSamples: number[] = [];
  for (let done = 0; done < k.inProcessRecords; done += slice) {
    const n = Math.min(slice, k.inProcessRecords - done);
    const input = await inputBytes(s.reading, topic, n, k.devices);
    const t = process.hrtime.bigint();
    for (let i = 0; i < input.length; i += 10_000) await driver.pipeRaw(topic, input.slice(i, i + 10_000));
    seconds += Number(process.hrtime.bigint() - t) / 1e9;
    const rss = rssMb();
    rssSamples.push(rss);
    rssMax = Math.max(rssMax, rss);
    progress(`in-process ${done + n}/${k.inProcessRecords} rss=${rss.toFixed(0)}MB`);
  }
  const counted = driver
    .storeEntries<DeviceCount>(DEMO_STORES.deviceCounts)
    .reduce((n, [, c]) => n + c.count, 0);
  await driver.close();
  fs.rmSync(stateDir, { recursive: true, force: true });
  if (counted !== k.inProcessRecords)
    throw new Error(`in-process counted ${counted}, expected ${k.inProcessRecords}`);
  const half = rssSamples[Math.floor(rssSamples.length / 2)] ?? rssStart;
  return {
    records_per_s: Math.round(k.inProcessRecords / seconds),
    rss_max_mb: Math.round(rssMax),
    // Growth over the second half of the run: ~0 when memory is flat.
    rss_growth_second_half_mb: Math.round((rssSamples[rssSamples.length - 1] ?? half) - half),
  };
}

async function benchKafka(k: Knobs): Promise<Figures> {
  const s = serdes();
  const prefix = `bench-${Date.now().toString(36)}-${randomBytes(2).toString("hex")}.`;
  const topics = demoTopics(prefix);
  const kafka = new Kafka({ clientId: "bench", brokers: k.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [topics.readings, topics.deviceCounts].map((topic) => ({
      topic,
      numPartitions: k.partitions,
      replicationFactor: 1,
    })),
  });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-bench-"));
  try {
    progress(`kafka: producing ${k.kafkaRecords} Avro records to ${topics.readings}`);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let done = 0; done < k.kafkaRecords; done += 100_000) {
      const input = await inputBytes(
        s.reading,
        topics.readings,
        Math.min(100_000, k.kafkaRecords - done),
        k.devices,
      );
      for (let i = 0; i < input.length; i += 10_000) {
        await producer.send({
          topic: topics.readings,
          messages: input.slice(i, i + 10_000).map((r) => ({
            key: r.key,
            value: r.value,
            timestamp: String(r.timestamp),
            partition: partitionForKey(r.key, k.partitions),
          })),
        });
      }
    }
    await producer.disconnect();
    const topology = buildCountingTopology({
      readingSerde: s.reading,
      countSerde: s.count,
      backend: k.backend,
      topicPrefix: prefix,
    });
    let committed = 0;
    let firstAt = 0n;
    let firstRecords = 0;
    let lastAt = 0n;
    let rssMax = rssMb();
    const driver = new KafkaDriver(topology, {
      applicationId: `${prefix}app`,
      brokers: k.brokers,
      stateDir,
      logger: consoleLogger("warn"),
      deadLetterTopic: `${prefix}dead-letters`,
      onCommit: (c) => {
        if (c.records === 0) return;
        const now = process.hrtime.bigint();
        if (firstAt === 0n) {
          firstAt = now;
          firstRecords = c.records;
        }
        committed += c.records;
        lastAt = now;
      },
    });
    progress("kafka: starting the driver (exactly-once transactions)");
    await driver.start();
    const deadline = Date.now() + 600_000;
    let lastReport = 0;
    while (committed < k.kafkaRecords) {
      if (Date.now() > deadline) throw new Error(`kafka: only ${committed} committed after 10 minutes`);
      await new Promise((r) => setTimeout(r, 100));
      rssMax = Math.max(rssMax, rssMb());
      if (committed - lastReport >= 50_000) {
        progress(`kafka ${committed}/${k.kafkaRecords}`);
        lastReport = committed;
      }
    }
    await driver.stop();
    const seconds = Number(lastAt - firstAt) / 1e9;
    return {
      records_per_s: Math.round((committed - firstRecords) / seconds),
      rss_max_mb: Math.round(rssMax),
    };
  } finally {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    await admin.deleteTopics({ topics: mine }).catch(() => {});
    await admin.disconnect();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const k = knobs(process.argv.slice(2));
  const results: Record<string, Figures> = {};
  for (const d of k.drivers) {
    if (d === "in-process") results[d] = await benchInProcess(k);
    else if (d === "kafka") results[d] = await benchKafka(k);
    else throw new Error(`unknown driver ${d}: use in-process and/or kafka`);
  }
  reportFigures("throughput", results, { variantKey: "driver", update: k.updateBaseline, file: k.baseline });
  const ip = results["in-process"]?.["records_per_s"];
  const kf = results["kafka"]?.["records_per_s"];
  process.stdout.write(
    `${JSON.stringify({
      bench: "throughput",
      summary: {
        knobs: { ...k, brokers: undefined, baseline: undefined },
        in_process_over_kafka: ip && kf ? Number((ip / kf).toFixed(2)) : null,
        targets: {
          kafka_records_per_s: { target: 20000, met: kf === undefined ? null : kf >= 20000 },
          in_process_records_per_s: { target: 200000, met: ip === undefined ? null : ip >= 200000 },
          rss_under_500mb: Object.values(results).every((f) => (f["rss_max_mb"] ?? 0) < 500),
        },
      },
    })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
