/**
 * Rebalance on the real broker: a second instance joins the group mid-stream, tasks move to it and
 * are restored there from their changelogs; when it leaves again they move back. The counts read
 * from the output topic stay exact: every key's updates are 1, 2, 3, ... across all owners.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { KafkaDriver } from "../../processors/runtime/kafka-driver";
import { silentLogger } from "../../processors/runtime/logger";
import { jsonSerde } from "../../processors/runtime/serde";
import {
  buildCountingTopology,
  demoTopics,
  syntheticReadings,
  type DeviceCount,
  type MeterReading,
} from "../../processors/demo/counting";
import { countingViolations, tally } from "../helpers/invariants";
import { createTopics, produceKeyed, readTopic, removeRun, uniquePrefix, waitFor } from "./kafka-harness";
import { testServices } from "./services";

describe("Kafka driver: rebalance between two instances", () => {
  const brokers = testServices().kafkaBrokers;
  const kafka = new Kafka({ clientId: "rebalance-test", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const prefix = uniquePrefix("rebalance");
  const topics = demoTopics(prefix);
  const appId = `${prefix}app`;
  const dirs: string[] = [];

  beforeAll(async () => {
    await admin.connect();
    await createTopics(admin, [topics.readings, topics.deviceCounts], 4);
  });
  afterAll(async () => {
    await removeRun(admin, prefix, [appId]);
    await admin.disconnect();
    dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
  });

  test("tasks move to a joining instance and back, restored from changelogs, counts exact", async () => {
    const serde = jsonSerde<MeterReading>();
    const readings = [...syntheticReadings(24_000, 400)];
    const send = (slice: MeterReading[]): Promise<void> =>
      produceKeyed(
        kafka,
        topics.readings,
        slice.map((r) => ({ key: r.deviceId, value: r, timestamp: r.readAt })),
        serde,
        4,
      );
    const restores = new Map<string, number>();
    let committed = 0;
    const instance = (name: string): KafkaDriver => {
      const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `ecos-${name}-`));
      dirs.push(stateDir);
      return new KafkaDriver(
        buildCountingTopology({
          readingSerde: serde,
          countSerde: jsonSerde<DeviceCount>(),
          topicPrefix: prefix,
          backend: "lmdb",
        }),
        {
          applicationId: appId,
          brokers,
          stateDir,
          logger: silentLogger,
          deadLetterTopic: `${prefix}dead-letters`,
          sessionTimeoutMs: 10000,
          commitEveryRecords: 500,
          onCommit: (c) => (committed += c.records),
          onRestore: (r) =>
            restores.set(`${name}:${r.taskId}`, (restores.get(`${name}:${r.taskId}`) ?? 0) + r.records),
        },
      );
    };
    const a = instance("a");
    await a.start();
    await send(readings.slice(0, 8_000));
    await waitFor(() => committed >= 8_000, "first third processed by instance a");
    expect(a.taskIds()).toEqual(["0_0", "0_1", "0_2", "0_3"]);

    const b = instance("b");
    await b.start();
    await waitFor(
      () => b.taskIds().length > 0 && a.taskIds().length + b.taskIds().length === 4,
      "tasks split over a and b",
    );
    const moved = b.taskIds();
    await send(readings.slice(8_000, 16_000));
    await waitFor(() => committed >= 16_000, "second third processed by a and b");
    // Each task that moved to b was rebuilt there from its changelog, holding a's counts.
    for (const t of moved) expect(restores.get(`b:${t}`)).toBeGreaterThan(0);

    await b.stop();
    await waitFor(() => a.taskIds().length === 4, "tasks back on a");
    await send(readings.slice(16_000));
    const out = await readTopic(kafka, topics.deviceCounts, jsonSerde<DeviceCount>(), readings.length, {
      settleMs: 3000,
    });
    await a.stop();

    expect(out).toHaveLength(readings.length);
    expect(
      countingViolations(
        out,
        tally(readings, (r) => r.deviceId),
      ),
    ).toEqual([]);
  });
});
