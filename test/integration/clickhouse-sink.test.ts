/**
 * The ClickHouse sink on the real broker, per target (embedded chDB and the ClickHouse server): the
 * EMRR fixture plus 20,000 synthetic migration events go through Kafka (Avro, Confluent wire format,
 * the real schema registry) into ClickHouse; both targets then give exactly the golden report rows (so
 * the same rows as each other), and a replay of the same records by a fresh consumer group leaves
 * every table's row count unchanged, raw and FINAL.
 */
import { consoleLogger } from "../../processors/runtime/logger";
import type { ClickHouseConnection } from "../../processors/sinks/clickhouse/connection";
import { KafkaClickHouseSink } from "../../processors/sinks/clickhouse/kafka-sink";
import { defaultRoutes, type RouteName, type SinkRoute } from "../../processors/sinks/clickhouse/routes";
import { syntheticMigrationEvents } from "../../processors/emrr/synthetic";
import { avroSerde, loadSchema } from "../../schemas/avro";
import { EVENT_SCHEMAS, type MigrationEvent } from "../../schemas/event-records";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import { FIXTURE } from "../emrr/fixture";
import { readGolden, runGoldenReports } from "../emrr/golden";
import {
  kafkaAdmin,
  produce,
  tableCounts,
  targets,
  uniqueName,
  waitForCommitted,
  type Target,
} from "./clickhouse-helpers";
import { testServices } from "./services";

const SYNTHETIC = 20_000;
const SCHEMA_OF: Record<string, string> = {
  deviceSnapshots: EVENT_SCHEMAS.deviceSnapshot,
  supplierRegistrations: EVENT_SCHEMAS.supplierRegistration,
  nonMigratableModels: EVENT_SCHEMAS.nonMigratableDeviceModel,
  migrationEvents: EVENT_SCHEMAS.migrationEvent,
};

describe("ClickHouse sink from Kafka, per target", () => {
  const services = testServices();
  const brokers = services.kafkaBrokers;
  const registry = new ConfluentSchemaRegistryClient({ host: services.registryUrl });
  const admin = kafkaAdmin(brokers);
  const prefix = `${uniqueName("t-chsink")}.`;
  const topics: Partial<Record<RouteName, string>> = {};
  for (const part of FIXTURE) topics[part.route] = `${prefix}${part.route}`;
  const routes: SinkRoute[] = defaultRoutes(registry, topics).filter((r) => r.topic.startsWith(prefix));
  const all = targets(services.clickhouseUrl);
  const database = uniqueName("ecos_it");
  const results = new Map<string, Map<string, object>>();
  let produced = 0;

  beforeAll(async () => {
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: routes.map((r) => ({ topic: r.topic, numPartitions: 3, replicationFactor: 1 })),
    });
    for (const part of FIXTURE) {
      const serde = avroSerde<object>(registry, loadSchema(SCHEMA_OF[part.route] as string));
      produced += await produce(
        brokers,
        topics[part.route] as string,
        3,
        part.events,
        part.key as (e: object) => string,
        serde,
      );
    }
    const migration = avroSerde<MigrationEvent>(registry, loadSchema(EVENT_SCHEMAS.migrationEvent));
    produced += await produce(
      brokers,
      topics.migrationEvents as string,
      3,
      syntheticMigrationEvents({ attempts: SYNTHETIC / 4, suppliers: ["SYNT"], idPrefix: "it" }),
      (e) => e.deviceId,
      migration,
    );
  }, 120_000);

  afterAll(async () => {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    await admin.deleteTopics({ topics: mine }).catch(() => {});
    for (const t of all) await t.cleanup(database);
    await admin.disconnect();
  });

  async function sinkAll(
    target: Target,
    conn: ClickHouseConnection,
    group: string,
  ): Promise<KafkaClickHouseSink> {
    const sink = new KafkaClickHouseSink({
      brokers,
      groupId: group,
      routes,
      clickhouse: conn,
      database,
      logger: consoleLogger("warn"),
      batchRows: 5000,
      batchMs: 300,
      sessionTimeoutMs: 10_000,
    });
    await sink.start();
    await waitForCommitted(
      admin,
      group,
      routes.map((r) => r.topic),
    );
    await sink.stop();
    await admin.deleteGroups([group]).catch(() => {});
    expect(sink.writer.failed).toBeUndefined();
    return sink;
  }

  describe.each(all.map((t) => [t.name, t] as const))("%s", (_name, target) => {
    test("stores every event once; the golden report rows come out", async () => {
      const conn = target.open();
      try {
        const sink = await sinkAll(target, conn, `${prefix}${target.name}-first`);
        expect(sink.writer.totals.records).toBe(produced);
        expect(sink.writer.totals.deadLettered).toBe(0);
        const counts = await tableCounts(conn, database);
        expect(counts["migration_events"]?.raw).toBe(
          produced -
            FIXTURE.filter((p) => p.route !== "migrationEvents").reduce((n, p) => n + p.events.length, 0),
        );
        expect(counts["device_snapshots"]).toEqual({
          raw: FIXTURE[0]?.events.length,
          final: FIXTURE[0]?.events.length,
        });
        const reports = await runGoldenReports(conn, database);
        for (const [name, value] of reports)
          expect({ name, value }).toEqual({ name, value: readGolden(name) });
        results.set(target.name, reports);
      } finally {
        await conn.close();
      }
    });

    test("a replay of the same records (a fresh consumer group) leaves row counts unchanged", async () => {
      const conn = target.open();
      try {
        const before = await tableCounts(conn, database);
        const sink = await sinkAll(target, conn, `${prefix}${target.name}-replay`);
        expect(sink.writer.totals.records).toBe(produced);
        expect(sink.writer.totals.rows).toBe(0);
        expect(sink.writer.totals.alreadyStored).toBe(produced);
        expect(await tableCounts(conn, database)).toEqual(before);
        // Nothing stored twice: raw equals FINAL except where a record superseded another by design (the
        // closed version of MPAN 1100000000044's registration period), until ClickHouse merges them.
        for (const [table, c] of Object.entries(before)) {
          if (table !== "registration_history")
            expect({ table, raw: c.raw }).toEqual({ table, raw: c.final });
        }
      } finally {
        await conn.close();
      }
    });
  });

  test("the same events give the same report rows on chDB and on the server", () => {
    expect(results.get("chdb")?.size).toBeGreaterThan(0);
    expect([...(results.get("server") ?? new Map<string, object>())]).toEqual([
      ...(results.get("chdb") ?? new Map<string, object>()),
    ]);
  });
});
