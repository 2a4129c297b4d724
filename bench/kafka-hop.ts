/**
 * Kafka hops through the runtime: a producer writes records stamped with their send time, a chain of
 * stateless pass-through stages on the Kafka driver (exactly-once, one transaction per batch, each
 * stage its own sub-topology reading the previous stage's topic) forwards them, and a read_committed
 * consumer measures send → visible at the end of the chain. The floor under the stage-to-stage hops of
 * the 6.23 path (bench/cos-e2e.ts), without any processing cost.
 *
 *   npx tsx bench/kafka-hop.ts [--records N] [--rate R] [--hops H] [--bytes B] [--partitions P]
 *                              [--brokers host:port]
 *
 * Knobs: --records (default 200), --rate (records/s, default 20, paced on an absolute schedule),
 * --hops (pass-through stages in series, default 1; the 6.23 path has about 8), --bytes (value size,
 * default 13: just the stamp; the 6.23 path's records are 4-10 KB), --partitions (default 3),
 * --concurrency (the driver's concurrentPartitions; default the driver's: one per task),
 * --brokers (default the local broker, 127.0.0.1:19092; start it with deploy/local/up.sh).
 * Prints one JSON line:
 *   {"bench":"kafka-hop","records":200,"rate":20,"hops":1,"bytes":13,"p50_ms":..,"p95_ms":..,
 *    "p99_ms":..,"max_ms":..,"cpu_ms_per_record":..,"load_avg_1m":..}
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
  const hops = Number(arg("hops", "1"));
  const bytes = Math.max(13, Number(arg("bytes", "13")));
  const partitions = Number(arg("partitions", "3"));
  const concurrency = arg("concurrency", "");
  if (![records, rate, hops, partitions].every((n) => Number.isInteger(n) && n > 0))
    throw new Error("--records, --rate, --hops and --partitions take positive whole numbers");
  const brokers = arg("brokers", "127.0.0.1:19092").split(",");
  const prefix = `bench-hop-${Date.now().toString(36)}.`;
  const kafka = new Kafka({ clientId: "bench-hop", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = (i: number): string =>
    i === 0 ? `${prefix}in` : i === hops ? `${prefix}out` : `${prefix}hop${i}`;
  await admin.createTopics({
    waitForLeaders: true,
    topics: Array.from({ length: hops + 1 }, (_, i) => ({ topic: topic(i), numPartitions: partitions })),
  });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-bench-hop-"));
  const builder = new TopologyBuilder();
  for (let h = 0; h < hops; h++) {
    builder
      .addSource(`in${h}`, { topics: [topic(h)], valueSerde: BytesSerde })
      .addProcessor(`pass${h}`, () => new PassThrough(), `in${h}`)
      .addSink(`out${h}`, { topic: topic(h + 1), valueSerde: BytesSerde }, `pass${h}`);
  }
  const topology = builder.build();
  const driver = new KafkaDriver(topology, {
    applicationId: `${prefix}app`,
    brokers,
    stateDir,
    logger: silentLogger,
    deadLetterTopic: `${prefix}dead-letters`,
    ...(concurrency ? { concurrentPartitions: Number(concurrency) } : {}),
  });
  const consumer = kafka.consumer({ groupId: `${prefix}reader`, readUncommitted: false });
  const producer = kafka.producer();
  const latencies: number[] = [];
  let cpuMsPerRecord = NaN;
  try {
    await driver.start();
    await consumer.connect();
    await consumer.subscribe({ topic: `${prefix}out`, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        latencies.push(Date.now() - Number(message.value?.subarray(0, 13).toString() ?? "0"));
      },
    });
    await producer.connect();
    await new Promise((r) => setTimeout(r, 5000)); // group joins settle
    const pad = Buffer.alloc(bytes - 13, 0x20);
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    let sent = 0;
    while (sent < records) {
      const due = Math.min(records, Math.floor(((Date.now() - t0) * rate) / 1000) + 1);
      const messages = [];
      for (; sent < due; sent++) {
        const stamp = String(Date.now()).padStart(13, "0");
        messages.push({ key: String(sent), value: Buffer.concat([Buffer.from(stamp), pad]) });
      }
      if (messages.length > 0) await producer.send({ topic: `${prefix}in`, messages });
      const next = t0 + (sent * 1000) / rate;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
    const until = Date.now() + 30000;
    while (latencies.length < records && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const cpu = process.cpuUsage(cpu0);
    cpuMsPerRecord = (cpu.user + cpu.system) / 1000 / Math.max(1, latencies.length);
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
      hops,
      bytes,
      partitions,
      concurrency: concurrency || "default",
      p50_ms: q(0.5),
      p95_ms: q(0.95),
      p99_ms: q(0.99),
      max_ms: sorted[sorted.length - 1] ?? NaN,
      cpu_ms_per_record: Number(cpuMsPerRecord.toFixed(3)),
      load_avg_1m: Number(os.loadavg()[0]?.toFixed(2)),
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
