/**
 * One Kafka hop through the runtime, at a low offered rate: a producer writes records stamped with
 * their send time, a stateless pass-through topology on the Kafka driver (exactly-once, one transaction
 * per batch) forwards them, a read_committed consumer measures send → visible. The floor under every
 * stage-to-stage hop of the 6.23 path (bench/cos-e2e.ts), without any processing cost.
 *
 *   npx tsx bench/kafka-hop.ts [--records N] [--rate R] [--brokers host:port]
 *
 * Knobs: --records (default 200), --rate (records/s, default 20), --brokers (default the local broker,
 * 127.0.0.1:19092; start it with deploy/local/up.sh). Prints one JSON line:
 *   {"bench":"kafka-hop","records":200,"rate":20,"p50_ms":..,"p95_ms":..,"p99_ms":..,"max_ms":..}
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Kafka, logLevel } from "kafkajs";
import type { Processor, ProcessorContext, StreamRecord } from "../processors/runtime/api";
import { KafkaDriver } from "../processors/runtime/kafka-driver";
import { silentLogger } from "../processors/runtime/logger";
import { BytesSerde } from "../processors/runtime/serde";
import { TopologyBuilder } from "../processors/runtime/topology";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

class PassThrough implements Processor<Buffer> {
  private ctx!: ProcessorContext<Buffer>;
  init(ctx: ProcessorContext<Buffer>): void {
    this.ctx = ctx;
  }
  process(record: StreamRecord<Buffer>): void {
    this.ctx.forward(record);
  }
}

async function main(): Promise<void> {
  const records = Number(arg("records", "200"));
  const rate = Number(arg("rate", "20"));
  const brokers = arg("brokers", "127.0.0.1:19092").split(",");
  const prefix = `bench-hop-${Date.now().toString(36)}.`;
  const kafka = new Kafka({ clientId: "bench-hop", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: `${prefix}in`, numPartitions: 3 },
      { topic: `${prefix}out`, numPartitions: 3 },
    ],
  });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-bench-hop-"));
  const topology = new TopologyBuilder()
    .addSource("in", { topics: [`${prefix}in`], valueSerde: BytesSerde })
    .addProcessor("pass", () => new PassThrough(), "in")
    .addSink("out", { topic: `${prefix}out`, valueSerde: BytesSerde }, "pass")
    .build();
  const driver = new KafkaDriver(topology, {
    applicationId: `${prefix}app`,
    brokers,
    stateDir,
    logger: silentLogger,
    deadLetterTopic: `${prefix}dead-letters`,
  });
  const consumer = kafka.consumer({ groupId: `${prefix}reader`, readUncommitted: false });
  const producer = kafka.producer();
  const latencies: number[] = [];
  try {
    await driver.start();
    await consumer.connect();
    await consumer.subscribe({ topic: `${prefix}out`, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        latencies.push(Date.now() - Number(message.value?.toString() ?? "0"));
      },
    });
    await producer.connect();
    await new Promise((r) => setTimeout(r, 5000)); // group joins settle
    for (let i = 0; i < records; i++) {
      await producer.send({
        topic: `${prefix}in`,
        messages: [{ key: String(i), value: String(Date.now()) }],
      });
      await new Promise((r) => setTimeout(r, 1000 / rate));
    }
    const until = Date.now() + 30000;
    while (latencies.length < records && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await producer.disconnect().catch(() => {});
    await consumer.disconnect().catch(() => {});
    await driver.stop();
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    await admin.deleteTopics({ topics: mine }).catch(() => {});
    await admin.disconnect();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const q = (x: number): number => sorted[Math.min(sorted.length - 1, Math.floor(x * sorted.length))] ?? NaN;
  console.log(
    JSON.stringify({
      bench: "kafka-hop",
      records: latencies.length,
      rate,
      p50_ms: q(0.5),
      p95_ms: q(0.95),
      p99_ms: q(0.99),
      max_ms: sorted[sorted.length - 1] ?? NaN,
    }),
  );
  if (latencies.length < records) {
    process.stderr.write(`only ${latencies.length} of ${records} records came through in time\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`kafka-hop: ${(err as Error).message}\n`);
  process.exit(1);
});
