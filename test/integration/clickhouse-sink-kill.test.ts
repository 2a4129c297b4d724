/**
 * The ClickHouse sink under SIGKILL, per target: 60,000-odd migration events on 3 partitions; the sink
 * process is killed (1) right after ClickHouse acknowledged a batch and before its progress and offsets
 * were recorded, and (2) at an arbitrary moment mid-stream; a third run finishes. Every event must then
 * be in ClickHouse exactly once: nothing lost, nothing stored twice (raw counts, not just FINAL).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as readline from "node:readline";
import { syntheticMigrationEvents } from "../../processors/emrr/synthetic";
import { avroSerde, loadSchema } from "../../schemas/avro";
import { EVENT_SCHEMAS, type MigrationEvent } from "../../schemas/event-records";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import { kafkaAdmin, produce, targets, uniqueName, waitForCommitted } from "./clickhouse-helpers";
import { testServices } from "./services";
import { trackChild } from "./children";

const APP = path.join(__dirname, "fixtures", "clickhouse-sink-app.ts");
const ATTEMPTS = 15_000;

interface Run {
  child: ChildProcess;
  inserted: number;
  alreadyStored: number;
  paused: boolean;
  exited: Promise<void>;
  waitFor(pred: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

function startApp(args: string[]): Run {
  const child = trackChild(
    spawn(process.execPath, ["--import", "tsx", APP, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let stderr = "";
  const run: Run = {
    child,
    inserted: 0,
    alreadyStored: 0,
    paused: false,
    exited: new Promise((r) => child.on("exit", () => r())),
    async waitFor(pred, what, timeoutMs = 120_000) {
      const until = Date.now() + timeoutMs;
      while (!pred()) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${stderr}`);
        if (child.exitCode !== null)
          throw new Error(`sink exited (${child.exitCode}) waiting for ${what}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    const e = JSON.parse(line) as { event: string; rows?: number; alreadyStored?: number };
    if (e.event === "inserted") run.inserted += e.rows ?? 0;
    if (e.event === "flush") run.alreadyStored += e.alreadyStored ?? 0;
    if (e.event === "paused") run.paused = true;
  });
  return run;
}

describe("ClickHouse sink: SIGKILL mid-batch loses and duplicates nothing", () => {
  const services = testServices();
  const brokers = services.kafkaBrokers;
  const registry = new ConfluentSchemaRegistryClient({ host: services.registryUrl });
  const admin = kafkaAdmin(brokers);
  const topic = `${uniqueName("t-chkill")}.migration-events`;
  const database = uniqueName("ecos_kill");
  const all = targets(services.clickhouseUrl);
  let produced = 0;

  beforeAll(async () => {
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
    });
    const serde = avroSerde<MigrationEvent>(registry, loadSchema(EVENT_SCHEMAS.migrationEvent));
    produced = await produce(
      brokers,
      topic,
      3,
      syntheticMigrationEvents({ attempts: ATTEMPTS, idPrefix: "kill" }),
      (e) => e.deviceId,
      serde,
    );
  }, 120_000);

  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    for (const t of all) await t.cleanup(database);
    await admin.disconnect();
  });

  test.each(all.map((t) => [t.name, t] as const))(
    "%s: killed after an acknowledged insert, then mid-stream; every event stored exactly once",
    async (_name, target) => {
      const group = `${topic}-${target.name}`;
      const args = (pause: number): string[] => [
        brokers.join(","),
        group,
        topic,
        target.spec,
        database,
        services.registryUrl,
        String(pause),
      ];

      const first = startApp(args(3));
      await first.waitFor(() => first.paused, "the third batch to be acknowledged");
      first.child.kill("SIGKILL");
      await first.exited;

      const second = startApp(args(0));
      await second.waitFor(() => second.inserted >= 10_000, "10,000 more rows");
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
      second.child.kill("SIGKILL");
      await second.exited;

      const third = startApp(args(0));
      await third.waitFor(() => third.inserted > 0 || third.alreadyStored > 0, "the last run to store");
      await waitForCommitted(admin, group, [topic]);
      third.child.kill("SIGTERM");
      await third.exited;
      await admin.deleteGroups([group]).catch(() => {});

      // The acknowledged-but-unrecorded batch came again and was recognised, not stored twice.
      expect(second.alreadyStored + third.alreadyStored).toBeGreaterThan(0);
      const conn = target.open();
      try {
        const [row] = (
          await conn.query(
            `SELECT count(), uniqExact(event_id), uniqExact(source_partition, source_offset) FROM ${database}.migration_events`,
          )
        ).rows;
        expect(row).toEqual([produced, produced, produced]);
        const final = await conn.query(`SELECT count() FROM ${database}.migration_events FINAL`);
        expect(final.rows[0]?.[0]).toBe(produced);
        const dead = await conn.query(`SELECT count() FROM ${database}.sink_dead_letters`);
        expect(dead.rows[0]?.[0]).toBe(0);
      } finally {
        await conn.close();
      }
    },
    300_000,
  );
});
