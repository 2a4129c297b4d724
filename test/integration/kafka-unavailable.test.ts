/**
 * A broker that is down at start: the driver says clearly what it cannot reach and retries with
 * backoff; it gives up with ECOS_BROKER_UNAVAILABLE after the configured time, and it starts normally
 * when the broker appears while it is retrying. No crash loop, no unhandled rejection.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { EcosError } from "../../processors/runtime/errors";
import { KafkaDriver } from "../../processors/runtime/kafka-driver";
import { collectingLogger } from "../../processors/runtime/logger";
import { jsonSerde } from "../../processors/runtime/serde";
import { buildCountingTopology, type DeviceCount, type MeterReading } from "../../processors/demo/counting";
import { uniquePrefix } from "./kafka-harness";
import { testServices } from "./services";

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function topology(prefix: string) {
  return buildCountingTopology({
    readingSerde: jsonSerde<MeterReading>(),
    countSerde: jsonSerde<DeviceCount>(),
    topicPrefix: prefix,
  });
}

describe("Kafka driver when the broker is down at start", () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-down-"));
  afterAll(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  test("gives a clear ECOS_BROKER_UNAVAILABLE after retrying, naming the address", async () => {
    const port = await freePort();
    const logger = collectingLogger();
    const prefix = uniquePrefix("down");
    const driver = new KafkaDriver(topology(prefix), {
      applicationId: `${prefix}app`,
      brokers: [`127.0.0.1:${port}`],
      stateDir,
      logger,
      connectTimeoutMs: 4000,
    });
    const started = Date.now();
    const err = await driver.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    await driver.stop();
    expect(err).toBeInstanceOf(EcosError);
    expect((err as EcosError).code).toBe("ECOS_BROKER_UNAVAILABLE");
    expect((err as EcosError).retriable).toBe(true);
    expect((err as EcosError).message).toContain(`127.0.0.1:${port}`);
    expect((err as EcosError).message).toMatch(/kafka\.sh start|ECOS_KAFKA_BROKERS/);
    const retries = logger.lines.filter((l) => l.msg.includes("retrying"));
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries[0]?.fields["attempt"]).toBe(1);
    expect(Date.now() - started).toBeLessThan(15000);
  });

  test("keeps retrying and starts once the broker becomes reachable", async () => {
    const [host, realPort] = (testServices().kafkaBrokers[0] as string).split(":") as [string, string];
    const port = await freePort();
    const logger = collectingLogger();
    const prefix = uniquePrefix("late");
    const driver = new KafkaDriver(topology(prefix), {
      applicationId: `${prefix}app`,
      brokers: [`127.0.0.1:${port}`],
      stateDir,
      logger,
      connectTimeoutMs: 60000,
      createMissingTopics: { partitions: 1 },
    });
    // The "broker" (a proxy to the real one) comes up 2.5 s after the driver starts trying.
    const sockets: net.Socket[] = [];
    const proxy = net.createServer((s) => {
      const up = net.connect(Number(realPort), host);
      sockets.push(s, up);
      s.pipe(up).pipe(s);
      s.on("error", () => up.destroy());
      up.on("error", () => s.destroy());
    });
    const timer = setTimeout(() => proxy.listen(port, "127.0.0.1"), 2500);
    try {
      await driver.start();
      expect(logger.lines.some((l) => l.msg.includes("retrying"))).toBe(true);
      expect(logger.lines.some((l) => l.msg === "Kafka is reachable")).toBe(true);
    } finally {
      clearTimeout(timer);
      await driver.stop();
      sockets.forEach((s) => s.destroy());
      proxy.close();
      const { Kafka, logLevel } = await import("kafkajs");
      const admin = new Kafka({ brokers: testServices().kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
      await admin.deleteTopics({ topics: mine }).catch(() => {});
      await admin.disconnect();
    }
  });
});
