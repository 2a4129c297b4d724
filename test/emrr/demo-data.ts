/** Synthetic migrations and 6.23 responses stored through the sink writer (for the HTML page tests). */
import { silentLogger } from "../../processors/runtime/logger";
import type { ClickHouseConnection } from "../../processors/sinks/clickhouse/connection";
import { defaultRoutes } from "../../processors/sinks/clickhouse/routes";
import { SinkWriter, type SourceRecord } from "../../processors/sinks/clickhouse/sink-writer";
import { syntheticMigrationEvents, syntheticServiceResponses } from "../../processors/emrr/synthetic";
import { avroSerde, loadSchema } from "../../schemas/avro";
import { EVENT_SCHEMAS } from "../../schemas/event-records";
import { InMemorySchemaRegistry } from "../../schemas/registry";

export async function loadDemoData(
  conn: ClickHouseConnection,
  db: string,
  o: { attempts: number; responses: number; start: number; days: number },
): Promise<void> {
  const registry = new InMemorySchemaRegistry();
  const routes = defaultRoutes(registry, {
    migrationEvents: "demo.migration",
    serviceResponses: "demo.responses",
  });
  const writer = new SinkWriter({
    database: db,
    routes,
    clickhouse: conn,
    committer: { commit: async () => {} },
    logger: silentLogger,
    batchRows: 50_000,
  });
  const feed = async (topic: string, schema: string, values: Iterable<object>): Promise<void> => {
    const serde = avroSerde<object>(registry, loadSchema(schema));
    await serde.prepare(topic);
    const records: SourceRecord[] = [];
    let offset = 0;
    for (const v of values) {
      records.push({
        topic,
        partition: 0,
        offset: String(offset++),
        key: null,
        value: serde.serialize(topic, v),
        timestamp: 0,
      });
    }
    await writer.add(records);
  };
  await feed(
    "demo.migration",
    EVENT_SCHEMAS.migrationEvent,
    syntheticMigrationEvents({ attempts: o.attempts, start: o.start, days: o.days, idPrefix: "demo" }),
  );
  await feed(
    "demo.responses",
    EVENT_SCHEMAS.serviceResponseEvent,
    syntheticServiceResponses({ count: o.responses, start: o.start, days: o.days }),
  );
  await writer.flush();
}
