/**
 * The golden harness shared by the unit test (chDB) and the integration test (ClickHouse server): it
 * stores the fixed event set through the sink writer (Avro, as on Kafka) and runs every golden report.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { silentLogger } from "../../processors/runtime/logger";
import type { ClickHouseConnection } from "../../processors/sinks/clickhouse/connection";
import { rowObjects } from "../../processors/sinks/clickhouse/connection";
import { migrate } from "../../processors/sinks/clickhouse/migrations";
import { defaultRoutes, type SinkRoute } from "../../processors/sinks/clickhouse/routes";
import { SinkWriter, type SourceRecord } from "../../processors/sinks/clickhouse/sink-writer";
import { reportDefinition, runReport } from "../../processors/emrr/reports";
import { resolvePeriod } from "../../processors/emrr/periods";
import { avroSerde, loadSchema } from "../../schemas/avro";
import { EVENT_SCHEMAS } from "../../schemas/event-records";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import { FIXTURE, GOLDEN_RUNS } from "./fixture";

export const GOLDEN_DIR = path.join(__dirname, "golden");

const SCHEMA_OF: Record<string, string> = {
  deviceSnapshots: EVENT_SCHEMAS.deviceSnapshot,
  supplierRegistrations: EVENT_SCHEMAS.supplierRegistration,
  nonMigratableModels: EVENT_SCHEMAS.nonMigratableDeviceModel,
  migrationEvents: EVENT_SCHEMAS.migrationEvent,
};

/** The fixture as Kafka records in the Confluent wire format, per route topic (one partition). */
export async function fixtureRecords(
  registry: InMemorySchemaRegistry,
  routes: readonly SinkRoute[],
): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for (const part of FIXTURE) {
    const r = routes.find((x) => x.name === part.route);
    const schema = SCHEMA_OF[part.route];
    if (!r || !schema) throw new Error(`no route or schema for ${part.route}`);
    const serde = avroSerde<object>(registry, loadSchema(schema));
    await serde.prepare(r.topic);
    part.events.forEach((e, i) =>
      out.push({
        topic: r.topic,
        partition: 0,
        offset: String(i),
        key: Buffer.from((part.key as (x: object) => string)(e)),
        value: serde.serialize(r.topic, e),
        timestamp: 1_710_000_000_000,
      }),
    );
  }
  return out;
}

/** Migrates `db` and stores the fixture through the sink writer. */
export async function loadFixture(conn: ClickHouseConnection, db: string): Promise<void> {
  await migrate(conn, db);
  const registry = new InMemorySchemaRegistry();
  const routes = defaultRoutes(registry);
  const writer = new SinkWriter({
    database: db,
    routes,
    clickhouse: conn,
    committer: { commit: async () => {} },
    logger: silentLogger,
    batchRows: 1_000_000,
  });
  const records = await fixtureRecords(registry, routes);
  for (const r of records) await writer.add([r]);
  await writer.flush();
  if (writer.totals.deadLettered > 0)
    throw new Error(`${writer.totals.deadLettered} fixture records were dead-lettered`);
}

export const goldenName = (r: { ref: string; supplier: string; from: string; to: string }): string =>
  `${r.ref}_${r.supplier}_${r.from.replace(/:/g, "")}_${r.to.replace(/:/g, "")}`;

/** Every golden report's rows, by golden name. */
export async function runGoldenReports(conn: ClickHouseConnection, db: string): Promise<Map<string, object>> {
  const out = new Map<string, object>();
  for (const run of GOLDEN_RUNS) {
    const def = reportDefinition(run.ref);
    const period = resolvePeriod(def.frequency, new Date(), run.from, run.to);
    const result = await runReport(conn, def, { database: db, supplier: run.supplier, period });
    out.set(goldenName(run), { columns: result.columns.map((c) => c.name), rows: rowObjects(result) });
  }
  return out;
}

export function readGolden(name: string): unknown {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, `${name}.json`), "utf8")) as unknown;
}

export function writeGolden(name: string, value: object): void {
  fs.mkdirSync(GOLDEN_DIR, { recursive: true });
  fs.writeFileSync(path.join(GOLDEN_DIR, `${name}.json`), `${JSON.stringify(value, null, 2)}\n`);
}
