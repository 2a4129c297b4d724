/**
 * `ecos sink` and `ecos report` as commands, on the real broker, registry and ClickHouse server: the
 * EMRR fixture produced to prefixed topics, the sink command run until stopped, then a report read
 * back equal to its golden rows.
 */
import { PassThrough } from "node:stream";
import { Command } from "commander";
import { registerReportCommands } from "../../deploy/cli/report";
import { SINK_TOPICS } from "../../processors/sinks/clickhouse/routes";
import { avroSerde, loadSchema } from "../../schemas/avro";
import { EVENT_SCHEMAS } from "../../schemas/event-records";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import { FIXTURE } from "../emrr/fixture";
import { readGolden } from "../emrr/golden";
import { kafkaAdmin, produce, targets, uniqueName, waitForCommitted } from "./clickhouse-helpers";
import { testServices } from "./services";

const SCHEMA_OF: Record<string, string> = {
  deviceSnapshots: EVENT_SCHEMAS.deviceSnapshot,
  supplierRegistrations: EVENT_SCHEMAS.supplierRegistration,
  nonMigratableModels: EVENT_SCHEMAS.nonMigratableDeviceModel,
  migrationEvents: EVENT_SCHEMAS.migrationEvent,
};

describe("ecos sink and ecos report as commands", () => {
  const services = testServices();
  const admin = kafkaAdmin(services.kafkaBrokers);
  const prefix = `${uniqueName("t-chcli")}.`;
  const database = uniqueName("ecos_cli");
  const group = `${prefix}sink`;
  const env = { ECOS_KAFKA_BROKERS: "", ECOS_LOG_LEVEL: "warn" };

  function ecos(args: string[], signal?: AbortSignal): { done: Promise<void>; output: () => string } {
    const out = new PassThrough();
    let text = "";
    out.on("data", (d: Buffer) => (text += d.toString()));
    const program = new Command().exitOverride();
    registerReportCommands(program, {
      env,
      stdout: out,
      stderr: new PassThrough(),
      ...(signal ? { signal } : {}),
    });
    return { done: program.parseAsync(args, { from: "user" }).then(() => {}), output: () => text };
  }

  beforeAll(async () => {
    await admin.connect();
    const registry = new ConfluentSchemaRegistryClient({ host: services.registryUrl });
    await admin.createTopics({
      waitForLeaders: true,
      topics: FIXTURE.map((p) => ({
        topic: `${prefix}${SINK_TOPICS[p.route]}`,
        numPartitions: 2,
        replicationFactor: 1,
      })),
    });
    for (const part of FIXTURE) {
      const serde = avroSerde<object>(registry, loadSchema(SCHEMA_OF[part.route] as string));
      await produce(
        services.kafkaBrokers,
        `${prefix}${SINK_TOPICS[part.route]}`,
        2,
        part.events,
        part.key as (e: object) => string,
        serde,
      );
    }
  }, 120_000);

  afterAll(async () => {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    await admin.deleteTopics({ topics: mine }).catch(() => {});
    await admin.deleteGroups([group]).catch(() => {});
    const server = targets(services.clickhouseUrl).find((t) => t.name === "server");
    await server?.cleanup(database);
    await admin.disconnect();
  });

  test("the sink stores the events until stopped; the report reads them back", async () => {
    const common = ["--clickhouse", services.clickhouseUrl, "--database", database];
    const missing = ecos([
      "sink",
      "--kafka",
      services.kafkaBrokers.join(","),
      "--registry",
      services.registryUrl,
      ...common,
      "--topic-prefix",
      prefix,
      "--group",
      group,
    ]);
    await expect(missing.done).rejects.toThrow(
      /topics do not exist: .*duis\.request-stages.*--create-topics/,
    );

    const ac = new AbortController();
    const sink = ecos(
      [
        "sink",
        "--kafka",
        services.kafkaBrokers.join(","),
        "--registry",
        services.registryUrl,
        ...common,
        "--topic-prefix",
        prefix,
        "--group",
        group,
        "--create-topics",
      ],
      ac.signal,
    );
    await waitForCommitted(
      admin,
      group,
      FIXTURE.map((p) => `${prefix}${SINK_TOPICS[p.route]}`),
    );
    ac.abort();
    await sink.done;
    expect(sink.output()).toMatch(
      /ClickHouse sink running: ClickHouse server at .*\nstopped: \d+ row\(s\) stored, 0 dead-lettered/,
    );

    const report = ecos([
      "report",
      "ECOSMIG-003",
      "--supplier",
      "GASB",
      "--from",
      "2024-03-01",
      "--to",
      "2024-04-01",
      "--format",
      "json",
      ...common,
    ]);
    await report.done;
    const golden = readGolden("ECOSMIG-003_GASB_2024-03-01_2024-04-01") as { rows: unknown[] };
    expect((JSON.parse(report.output()) as { rows: unknown[] }).rows).toEqual(golden.rows);
  }, 180_000);
});
