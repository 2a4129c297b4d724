/**
 * The real services answer as the product needs them: Kafka with partitioned topics, consumer groups
 * and transactions on one node; the registry's Confluent-compatible API; a ClickHouse server over
 * HTTP; and the embedded chDB. Each test uses its own names and removes what it made.
 */
import { randomUUID } from "node:crypto";
import { query as chdbQuery } from "chdb";
import { Kafka, Partitioners, logLevel, type Admin } from "kafkajs";
import { testServices } from "./services";

// Kafka's first transaction and first consumer group create internal topics; allow for that.
jest.setTimeout(120_000);

const services = testServices();
const unique = (prefix: string): string => `${prefix}-${Date.now()}-${randomUUID().slice(0, 8)}`;

describe(`infrastructure (${services.source})`, () => {
  describe("Kafka", () => {
    const kafka = new Kafka({
      clientId: "ecos-infrastructure-test",
      brokers: services.kafkaBrokers,
      // kafkajs logs retriable errors (a coordinator still loading on a fresh broker) as ERROR;
      // a real failure still throws.
      logLevel: logLevel.NOTHING,
    });
    let admin: Admin;

    beforeAll(async () => {
      admin = kafka.admin();
      await admin.connect();
    });
    afterAll(async () => {
      await admin.disconnect();
    });

    it("creates a topic with 3 partitions", async () => {
      const topic = unique("ecos-infra-partitions");
      try {
        expect(
          await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true }),
        ).toBe(true);
        const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
        expect(metadata.topics[0]?.partitions).toHaveLength(3);
      } finally {
        await admin.deleteTopics({ topics: [topic] });
      }
    });

    it("commits a transaction on one node, and a read_committed consumer sees only committed records", async () => {
      const topic = unique("ecos-infra-tx");
      const groupId = unique("ecos-infra-group");
      const transactionalId = unique("ecos-infra-txid");
      await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
      const producer = kafka.producer({
        transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      // A short fetch wait: disconnect() waits for the fetch in flight, 5 s by default.
      const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 200 });
      try {
        await producer.connect();
        // An aborted record first, then a committed one: the transaction coordinator and the markers
        // it writes must both work for the consumer to see exactly the second.
        const aborted = await producer.transaction();
        await aborted.send({ topic, messages: [{ key: "device-1", value: "aborted" }] });
        await aborted.abort();
        const committed = await producer.transaction();
        await committed.send({ topic, messages: [{ key: "device-1", value: "committed" }] });
        await committed.commit();

        const seen: string[] = [];
        let resolveSeen!: () => void;
        const gotOne = new Promise<void>((resolve) => (resolveSeen = resolve));
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value?.toString() ?? "");
            resolveSeen();
          },
        });
        await gotOne;
        // Give a stray aborted record a moment to show up if the isolation level were broken.
        await new Promise((r) => setTimeout(r, 500));
        expect(seen).toEqual(["committed"]);
      } finally {
        await consumer.disconnect();
        await producer.disconnect();
        await admin.deleteGroups([groupId]).catch(() => undefined);
        await admin.deleteTopics({ topics: [topic] });
      }
    });
  });

  describe("schema registry (Confluent API)", () => {
    const contentType = "application/vnd.schemaregistry.v1+json";

    it("registers an Avro schema and reads it back by id", async () => {
      const subject = unique("ecos-infra") + "-value";
      const schema = JSON.stringify({
        type: "record",
        name: "InfrastructureProbe",
        namespace: "uk.ecos.test",
        doc: "A record registered by the infrastructure test.",
        fields: [{ name: "deviceId", type: "string", doc: "Any text." }],
      });
      const base = services.registryUrl;
      try {
        const registered = await fetch(`${base}/subjects/${encodeURIComponent(subject)}/versions`, {
          method: "POST",
          headers: { "Content-Type": contentType },
          body: JSON.stringify({ schema }),
        });
        expect(registered.status).toBe(200);
        const { id } = (await registered.json()) as { id: number };
        expect(Number.isInteger(id)).toBe(true);

        const byId = await fetch(`${base}/schemas/ids/${id}`);
        expect(byId.status).toBe(200);
        const fetched = (await byId.json()) as { schema: string };
        expect(JSON.parse(fetched.schema)).toEqual(JSON.parse(schema));

        const latest = await fetch(`${base}/subjects/${encodeURIComponent(subject)}/versions/latest`);
        expect(((await latest.json()) as { id: number }).id).toBe(id);
      } finally {
        // Confluent semantics: a soft delete first, then the permanent one.
        await fetch(`${base}/subjects/${encodeURIComponent(subject)}`, { method: "DELETE" });
        await fetch(`${base}/subjects/${encodeURIComponent(subject)}?permanent=true`, { method: "DELETE" });
      }
    });
  });

  describe("ClickHouse server (HTTP)", () => {
    const run = async (sql: string): Promise<string> => {
      const res = await fetch(services.clickhouseUrl, { method: "POST", body: sql });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`ClickHouse answered ${res.status} to ${sql}: ${text}`);
      return text;
    };

    it("answers SELECT 1", async () => {
      expect((await run("SELECT 1")).trim()).toBe("1");
    });

    it("creates, fills, reads and drops a table", async () => {
      const table = unique("ecos_infra").replace(/-/g, "_");
      try {
        await run(`CREATE TABLE ${table} (device_id String, n UInt32) ENGINE = MergeTree ORDER BY device_id`);
        await run(`INSERT INTO ${table} FORMAT JSONEachRow {"device_id":"b","n":2} {"device_id":"a","n":1}`);
        const rows = (await run(`SELECT device_id, n FROM ${table} ORDER BY device_id FORMAT JSONEachRow`))
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line) as unknown);
        expect(rows).toEqual([
          { device_id: "a", n: 1 },
          { device_id: "b", n: 2 },
        ]);
      } finally {
        await run(`DROP TABLE IF EXISTS ${table}`);
      }
    });
  });

  describe("chDB (embedded)", () => {
    it("answers a query", () => {
      expect(chdbQuery("SELECT 1 + 1 AS two", "JSONEachRow").trim()).toBe('{"two":2}');
    });
  });
});
