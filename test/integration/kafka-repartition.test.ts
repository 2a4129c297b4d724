/**
 * Repartition topics on the real broker: created (or switched) to retention.ms = -1, so records with
 * old event timestamps are not deleted by time before they are processed, and purged instead once the
 * group has committed past them.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigResourceTypes, Kafka, logLevel } from "kafkajs";
import { KafkaDriver } from "../../processors/runtime/kafka-driver";
import { silentLogger } from "../../processors/runtime/logger";
import { jsonSerde } from "../../processors/runtime/serde";
import { internalTopicName } from "../../processors/runtime/topics";
import {
  DEMO_TOPICS,
  buildCountingTopology,
  demoTopics,
  syntheticReadings,
  type DeviceCount,
  type MeterReading,
} from "../../processors/demo/counting";
import { createTopics, produceKeyed, readTopic, removeRun, uniquePrefix, waitFor } from "./kafka-harness";
import { testServices } from "./services";

describe("Kafka driver: repartition topics", () => {
  const brokers = testServices().kafkaBrokers;
  const kafka = new Kafka({ clientId: "repartition-test", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const prefix = uniquePrefix("repart");
  const topics = demoTopics(prefix);
  const appId = `${prefix}app`;
  const internal = internalTopicName(appId, DEMO_TOPICS.readingsBySupplier);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-repart-"));

  beforeAll(async () => {
    await admin.connect();
    await createTopics(admin, [topics.readings, topics.deviceCounts, topics.supplierCounts], 2);
    // As an earlier version left it: the broker's time-based retention.
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic: internal,
          numPartitions: 2,
          replicationFactor: 1,
          configEntries: [{ name: "retention.ms", value: "604800000" }],
        },
      ],
    });
  });
  afterAll(async () => {
    await removeRun(admin, prefix, [appId]);
    await admin.disconnect();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test("no time-based retention; records the group committed past are deleted; counts exact", async () => {
    const serde = jsonSerde<MeterReading>();
    // Event times six years back: far beyond any broker's default retention.
    const readings = [...syntheticReadings(3000, 60, Date.UTC(2020, 0, 1))];
    await produceKeyed(
      kafka,
      topics.readings,
      readings.map((r) => ({ key: r.deviceId, value: r, timestamp: r.readAt })),
      serde,
      2,
    );
    let committed = 0;
    const purgeFailures: string[] = [];
    const driver = new KafkaDriver(
      buildCountingTopology({
        readingSerde: serde,
        countSerde: jsonSerde<DeviceCount>(),
        topicPrefix: prefix,
        bySupplier: true,
      }),
      {
        applicationId: appId,
        brokers,
        stateDir,
        logger: {
          ...silentLogger,
          warn: (m: string, f?: object) => {
            if (m.startsWith("could not delete")) purgeFailures.push(`${m} ${JSON.stringify(f)}`);
          },
        },
        deadLetterTopic: `${prefix}dead-letters`,
        commitEveryRecords: 500,
        repartitionPurgeIntervalMs: 500,
        onCommit: (c) => (committed += c.records),
      },
    );
    await driver.start();
    try {
      const config = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: internal, configNames: ["retention.ms"] }],
      });
      expect(
        config.resources[0]?.configEntries.find((e) => e.configName === "retention.ms")?.configValue,
      ).toBe("-1");
      // Both sub-topologies consume every reading once.
      await waitFor(
        () => committed >= 2 * readings.length,
        "all readings processed twice (device, supplier)",
      );
      // The purge catches up with the group: each partition's start offset reaches the group's committed
      // offset (not necessarily the end: an aborted transaction's records and markers after the last
      // consumed record stay until later records are consumed past them).
      const committedOf = async (): Promise<Map<number, number>> => {
        const [t] = await admin.fetchOffsets({ groupId: appId, topics: [internal] });
        return new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      };
      const deadline = Date.now() + 30000;
      let lows = new Map<number, number>();
      let groupOffsets = new Map<number, number>();
      for (;;) {
        groupOffsets = await committedOf();
        lows = new Map((await admin.fetchTopicOffsets(internal)).map((p) => [p.partition, Number(p.low)]));
        if ([...groupOffsets].every(([p, c]) => lows.get(p) === c) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(Object.fromEntries(lows)).toEqual(Object.fromEntries(groupOffsets));
      expect(groupOffsets.size).toBe(2);
      const highs = await admin.fetchTopicOffsets(internal);
      expect(highs.reduce((n, p) => n + Number(p.high), 0)).toBeGreaterThanOrEqual(readings.length);
      expect([...lows.values()].some((l) => l > 0)).toBe(true);
      expect(purgeFailures).toEqual([]);
    } finally {
      await driver.stop();
    }
    // Nothing was lost to retention: the last count per supplier is that supplier's number of readings.
    const counts = await readTopic(kafka, topics.supplierCounts, jsonSerde<DeviceCount>(), readings.length, {
      settleMs: 500,
    });
    const last = new Map<string, number>();
    for (const c of counts) last.set(c.key ?? "", c.value.count);
    const expected = new Map<string, number>();
    for (const r of readings) expected.set(r.supplierMpid, (expected.get(r.supplierMpid) ?? 0) + 1);
    expect(Object.fromEntries(last)).toEqual(Object.fromEntries(expected));
  });
});
