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
      const ends = await admin.fetchTopicOffsets(internal);
      expect(ends.reduce((n, p) => n + Number(p.high), 0)).toBeGreaterThanOrEqual(readings.length);
      // The purge catches up with the committed offsets: the internal topic's start offsets reach its end
      // (the last transaction marker may remain after the last record).
      const deadline = Date.now() + 30000;
      let lows: number[] = [];
      for (;;) {
        const offsets = await admin.fetchTopicOffsets(internal);
        lows = offsets.map((p) => Number(p.low));
        const highs = offsets.map((p) => Number(p.high));
        if (lows.every((l, i) => l >= (highs[i] ?? 0) - 1) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const highs = (await admin.fetchTopicOffsets(internal)).map((p) => Number(p.high));
      lows.forEach((l, i) => expect(l).toBeGreaterThanOrEqual((highs[i] ?? 0) - 1));
      expect(lows.some((l) => l > 0)).toBe(true);
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
