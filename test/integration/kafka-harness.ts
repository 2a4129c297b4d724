/**
 * The Kafka driver behind the behavioural suite's harness, on the real broker: every harness gets
 * its own topics, application id (consumer group, changelogs) and dead-letter topic, and deletes
 * them when closed.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Kafka, logLevel, type Admin, type Producer } from "kafkajs";
import { KafkaDriver, createTopicsSettled } from "../../processors/runtime/kafka-driver";
import { consoleLogger, silentLogger, type Logger } from "../../processors/runtime/logger";
import { partitionForKey } from "../../processors/runtime/partitioner";
import type { Serde } from "../../processors/runtime/serde";
import type { Topology } from "../../processors/runtime/topology";
import type { Harness, HarnessRecord } from "../runtime/behaviour-suite";

export function uniquePrefix(label: string): string {
  return `t-${label}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}.`;
}

export interface KafkaHarness extends Harness {
  readonly admin: Admin;
  readonly applicationId: string;
  driver(): KafkaDriver | undefined;
}

export async function kafkaHarness(
  brokers: string[],
  label = "suite",
  logger: Logger = silentLogger,
): Promise<KafkaHarness> {
  const prefix = uniquePrefix(label);
  // ECOS_TEST_DRIVER_LOG_DIR=<dir>: each harness's driver logs to <dir>/<prefix>log (failure analysis).
  const logDir = process.env["ECOS_TEST_DRIVER_LOG_DIR"];
  if (logDir && logger === silentLogger)
    logger = consoleLogger("info", fs.createWriteStream(path.join(logDir, `${prefix}log`)));
  const partitions = 3;
  const applicationId = `${prefix}app`;
  const deadLetters = `${prefix}dead-letters`;
  const kafka = new Kafka({ clientId: `${prefix}harness`, brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-kafka-"));
  let driver: KafkaDriver | undefined;
  let topology: Topology | undefined;
  const partitionCount = new Map<string, number>();

  const startDriver = async (): Promise<void> => {
    driver = new KafkaDriver(topology as Topology, {
      applicationId,
      brokers,
      stateDir,
      logger,
      deadLetterTopic: deadLetters,
      createMissingTopics: { partitions },
      sessionTimeoutMs: 10000,
      commitEveryRecords: 1000,
    });
    await driver.start();
  };

  const partitionsOf = async (topic: string): Promise<number> => {
    let n = partitionCount.get(topic);
    if (n === undefined) {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      n = meta.topics[0]?.partitions.length ?? 1;
      partitionCount.set(topic, n);
    }
    return n;
  };

  const send = async (
    topic: string,
    records: Array<{ key: Buffer | null; value: Buffer | null; timestamp: number }>,
  ) => {
    const n = await partitionsOf(topic);
    for (let i = 0; i < records.length; i += 500) {
      await producer.send({
        topic,
        messages: records.slice(i, i + 500).map((r) => ({
          key: r.key,
          value: r.value,
          timestamp: String(r.timestamp),
          partition: r.key === null ? 0 : partitionForKey(r.key, n),
        })),
      });
    }
  };

  return {
    prefix,
    partitions,
    admin,
    applicationId,
    driver: () => driver,
    async start(t: Topology) {
      topology = t;
      await startDriver();
    },
    async pipe<V>(
      topic: string,
      records: Array<{ key: string | null; value: V; timestamp: number }>,
      serde: Serde<V>,
    ) {
      await serde.prepare?.(topic);
      await send(
        topic,
        records.map((r) => ({
          key: r.key === null ? null : Buffer.from(r.key),
          value: serde.serialize(topic, r.value),
          timestamp: r.timestamp,
        })),
      );
    },
    async pipeRaw(topic, records) {
      await send(topic, records);
    },
    async read<V>(topic: string, serde: Serde<V>, expected: number): Promise<Array<HarnessRecord<V>>> {
      return readTopic(kafka, topic, serde, expected);
    },
    deadLetterTopic: () => deadLetters,
    async storeEntries<V>(name: string) {
      return (driver as KafkaDriver).storeEntries<V>(name);
    },
    async restart() {
      await driver?.stop();
      await startDriver();
    },
    async close() {
      await driver?.stop();
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
      if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {});
      await admin.deleteGroups([applicationId]).catch(() => {});
      await producer.disconnect();
      await admin.disconnect();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * Reads a topic from the beginning with read_committed until `expected` records arrived, then keeps
 * reading for `settleMs` so that duplicates beyond the expected count would be seen too.
 */
export async function readTopic<V>(
  kafka: Kafka,
  topic: string,
  serde: Serde<V>,
  expected: number,
  opts: { timeoutMs?: number; settleMs?: number } = {},
): Promise<Array<HarnessRecord<V>>> {
  const consumer = kafka.consumer({
    groupId: `reader-${randomBytes(6).toString("hex")}`,
    readUncommitted: false,
  });
  const out: Array<HarnessRecord<V>> = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let reached: () => void = () => {};
    const done = new Promise<void>((r) => (reached = r));
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(m.headers ?? {}))
            if (v !== undefined) headers[k] = v.toString();
          out.push({
            key: m.key === null ? null : m.key.toString(),
            value: m.value === null ? (null as V) : await serde.deserialize(topic, m.value),
            partition: batch.partition,
            timestamp: Number(m.timestamp),
            headers,
          });
        }
        if (out.length >= expected) reached();
      },
    });
    const timeoutMs = opts.timeoutMs ?? 120000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([done, timedOut]);
    clearTimeout(timer);
    if (out.length >= expected) await new Promise((r) => setTimeout(r, opts.settleMs ?? 1500));
  } finally {
    await consumer.disconnect();
  }
  if (out.length < expected) throw new Error(`expected ${expected} records on ${topic}, read ${out.length}`);
  return out;
}

/** Creates the run's topics with the given partition count. */
export async function createTopics(admin: Admin, topics: string[], partitions: number): Promise<void> {
  await createTopicsSettled(
    admin,
    topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
  );
}

/** Deletes every topic under the run's prefix and the given consumer groups. */
export async function removeRun(admin: Admin, prefix: string, groups: string[]): Promise<void> {
  const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => {});
  await admin.deleteGroups(groups).catch(() => {});
}

/** Produces keyed values to `topic` on Kafka's murmur2 partitions, in sends of 2,000. */
export async function produceKeyed<V>(
  kafka: Kafka,
  topic: string,
  records: ReadonlyArray<{ key: string; value: V; timestamp: number }>,
  serde: Serde<V>,
  partitions: number,
): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await serde.prepare?.(topic);
    for (let i = 0; i < records.length; i += 2000) {
      await producer.send({
        topic,
        messages: records.slice(i, i + 2000).map((r) => ({
          key: r.key,
          value: serde.serialize(topic, r.value),
          timestamp: String(r.timestamp),
          partition: partitionForKey(Buffer.from(r.key), partitions),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Polls `pred` every 100 ms until it holds; fails after `ms` naming what it waited for. */
export async function waitFor(pred: () => boolean, what: string, ms = 120000): Promise<void> {
  const until = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Whether a consumer group's committed offsets have reached the end of every partition of its input
 * topics: the broker's own record of what was consumed, unlike counts an application prints after each
 * commit (a SIGKILL between a transaction's commit and the print loses the print, not the commit).
 * Input topics must be written without transactions, so the end offset is the last record + 1.
 */
export async function consumedToEnd(admin: Admin, groupId: string, topics: string[]): Promise<boolean> {
  for (const t of await admin.fetchOffsets({ groupId, topics })) {
    const ends = await admin.fetchTopicOffsets(t.topic);
    for (const e of ends) {
      if (BigInt(e.high) <= BigInt(e.low)) continue; // nothing to consume, nothing committed
      const committed = t.partitions.find((p) => p.partition === e.partition)?.offset ?? "-1";
      if (BigInt(committed) < BigInt(e.high)) return false;
    }
  }
  return true;
}

/**
 * Where a consumer group stands on its input topics, and how many records each output topic holds
 * committed vs in all (read_uncommitted): the evidence a failed read needs — input left unconsumed,
 * or outputs written but invisible behind an open transaction.
 */
export async function progressReport(
  kafka: Kafka,
  groupId: string,
  inputs: string[],
  outputs: string[],
): Promise<string> {
  const admin = kafka.admin();
  await admin.connect();
  const lines: string[] = [];
  try {
    for (const t of await admin.fetchOffsets({ groupId, topics: inputs })) {
      const ends = await admin.fetchTopicOffsets(t.topic);
      const parts = ends.map((e) => {
        const c = t.partitions.find((p) => p.partition === e.partition)?.offset ?? "?";
        return `p${e.partition} committed ${c}/end ${e.high}`;
      });
      lines.push(`input ${t.topic}: ${parts.join(", ")}`);
    }
    for (const topic of outputs) {
      const [all, committed] = await Promise.all([
        countRecords(kafka, topic, true),
        countRecords(kafka, topic, false),
      ]);
      lines.push(`output ${topic}: ${committed} committed records of ${all} written`);
    }
  } catch (err) {
    lines.push(`progress report failed: ${(err as Error).message}`);
  } finally {
    await admin.disconnect();
  }
  return lines.join("\n");
}

async function countRecords(kafka: Kafka, topic: string, readUncommitted: boolean): Promise<number> {
  const consumer = kafka.consumer({ groupId: `count-${randomBytes(6).toString("hex")}`, readUncommitted });
  let n = 0;
  let last = Date.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        n += batch.messages.length;
        last = Date.now();
      },
    });
    const start = Date.now();
    while (Date.now() - last < 3000 && Date.now() - start < 30000)
      await new Promise((r) => setTimeout(r, 200));
  } finally {
    await consumer.disconnect();
  }
  return n;
}
