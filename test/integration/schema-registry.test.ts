/**
 * The schemas/ serde and registry client against the real schema registry (Apicurio Registry through
 * its Confluent-compatible API, or any Confluent-compatible registry named by ECOS_TEST_REGISTRY_URL).
 *
 * Checks wire-format interop both ways with @kafkajs/confluent-schema-registry, stable ids, a
 * compatible evolution and a refused incompatible one. Every subject carries this run's unique prefix
 * and is deleted at the end.
 */
import { randomBytes } from "node:crypto";
import { SchemaRegistry as KafkajsSchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { EcosError } from "../../processors/runtime/errors";
import { avroSerde, loadSchema, parseSchema, schemaText, topicSubject } from "../../schemas/avro";
import { METER_READING_SCHEMA } from "../../schemas/bench-records";
import type { MeterReading } from "../../schemas/bench-records";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import { testServices } from "./services";

const { registryUrl } = testServices();
const RUN = `it-schemas-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
const subjects = new Set<string>();

/** A topic unique to this run; its value subject is deleted after the suite. */
function topic(name: string): string {
  const t = `${RUN}.${name}`;
  subjects.add(topicSubject(t));
  return t;
}

const reading: MeterReading = {
  deviceId: "00-1A-2B-3C-4D-5E-6F-70",
  supplierMpid: "BGAS",
  readingWh: 98_765_432_109,
  readAt: 1_735_689_600_123,
  smetsGeneration: "SMETS1",
};

const v1Switch = {
  deviceId: "00-1A-2B-3C-4D-5E-6F-71",
  supplierMpid: "EONU",
  switchDate: 1_735_776_000_000,
  tcosBatchRef: "T-0042",
};

afterAll(async () => {
  // Soft delete, then permanent delete, as the Confluent API requires; a registry that refuses
  // deletion only leaves uniquely named subjects behind.
  for (const subject of subjects) {
    for (const query of ["", "?permanent=true"]) {
      await fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}${query}`, {
        method: "DELETE",
        signal: AbortSignal.timeout(5000),
      }).catch(() => undefined);
    }
  }
});

describe(`schemas/ against the real registry (${registryUrl})`, () => {
  const client = new ConfluentSchemaRegistryClient({ host: registryUrl });
  const kafkajs = new KafkajsSchemaRegistry({ host: registryUrl });

  it("registers a schema and assigns the same id to the same schema, from any client", async () => {
    const subject = topicSubject(topic("readings"));
    const text = schemaText(loadSchema(METER_READING_SCHEMA));
    const id = await client.register(subject, text);
    expect(id).toBeGreaterThan(0);
    expect(await client.register(subject, text)).toBe(id);
    const fresh = new ConfluentSchemaRegistryClient({ host: registryUrl });
    expect(await fresh.register(subject, text)).toBe(id);
    const { id: viaLibrary } = await kafkajs.register({ type: SchemaType.AVRO, schema: text }, { subject });
    expect(viaLibrary).toBe(id);
  });

  it("registers under a new subject from several clients at once: every one gets the same id", async () => {
    // Each client first sets the subject's compatibility level when it finds none; the losers of that
    // race get "a rule named 'COMPATIBILITY' already exists" (409) from Apicurio, which used to fail
    // a driver's start (seen in the two-process e2e test).
    const text = schemaText(loadSchema(METER_READING_SCHEMA));
    for (let round = 0; round < 3; round++) {
      const subject = topicSubject(topic(`concurrent-${round}`));
      const clients = Array.from(
        { length: 6 },
        () => new ConfluentSchemaRegistryClient({ host: registryUrl }),
      );
      const ids = await Promise.all(clients.map((c) => c.register(subject, text)));
      expect(new Set(ids).size).toBe(1);
      expect(ids[0]).toBeGreaterThan(0);
    }
  });

  it("gives back the registered schema by id, logical types included", async () => {
    const subject = topicSubject(topic("by-id"));
    const text = schemaText(loadSchema(METER_READING_SCHEMA));
    const id = await client.register(subject, text);
    const fetchedText = await client.schemaById(id);
    const fetched = JSON.parse(fetchedText) as { doc: string; fields: { name: string; type: unknown }[] };
    // The registry may normalise the text (Apicurio drops a nested type's redundant namespace), so
    // compare the schemas, then what a re-export by avsc would lose: docs and logical types.
    expect(parseSchema(fetchedText).equals(loadSchema(METER_READING_SCHEMA))).toBe(true);
    expect(fetched.doc).toBe((JSON.parse(text) as { doc: string }).doc);
    expect(fetched.fields.find((f) => f.name === "readAt")!.type).toEqual({
      type: "long",
      logicalType: "timestamp-millis",
    });
  });

  it("reports an unknown id as ECOS_SCHEMA_UNKNOWN", async () => {
    await expect(client.schemaById(2_000_000_000)).rejects.toMatchObject({ code: "ECOS_SCHEMA_UNKNOWN" });
  });

  it("writes bytes the library decodes, and decodes bytes the library encodes (wire format interop)", async () => {
    const t = topic("interop");
    const serde = avroSerde<MeterReading>(client, loadSchema(METER_READING_SCHEMA));
    await serde.prepare(t);
    const id = serde.schemaId(t)!;

    const ours = serde.serialize(t, reading);
    expect({ ...(await kafkajs.decode(ours)) }).toEqual(reading);

    const theirs = await kafkajs.encode(id, { ...reading, smetsGeneration: "SMETS2" });
    expect(theirs.equals(serde.serialize(t, { ...reading, smetsGeneration: "SMETS2" }))).toBe(true);
    const reader = avroSerde<MeterReading>(
      new ConfluentSchemaRegistryClient({ host: registryUrl }),
      loadSchema(METER_READING_SCHEMA),
    );
    expect({ ...(await reader.deserialize(t, theirs)) }).toEqual({ ...reading, smetsGeneration: "SMETS2" });
    // Cached now: the next record of that id decodes synchronously.
    const next = reader.deserialize(t, theirs);
    expect(typeof (next as { then?: unknown }).then).toBe("undefined");
  });

  it("registers a compatible v2 as a new version; v1 and v2 records read each other", async () => {
    const t = topic("evolution");
    const v1 = avroSerde<typeof v1Switch>(client, loadSchema("fixtures/v1/ecos.fixture.SupplierSwitch"));
    const v2 = avroSerde<Record<string, unknown>>(
      client,
      loadSchema("fixtures/v2/ecos.fixture.SupplierSwitch"),
    );
    await client.setCompatibility(topicSubject(t), "BACKWARD");
    await v1.prepare(t);
    await v2.prepare(t);
    expect(v2.schemaId(t)).not.toBe(v1.schemaId(t));

    const written = v1.serialize(t, v1Switch);
    const { tcosBatchRef: _dropped, ...kept } = v1Switch;
    expect({ ...(await v2.deserialize(t, written)) }).toEqual({ ...kept, cosCredential: "ECOS" });

    const newer = v2.serialize(t, { ...kept, cosCredential: "TCOS" });
    expect({ ...(await v1.deserialize(t, newer)) }).toEqual({ ...kept, tcosBatchRef: "" });
  });

  it("is refused an incompatible version by the registry under BACKWARD (ECOS_SCHEMA_INCOMPATIBLE)", async () => {
    const t = topic("incompatible");
    const subject = topicSubject(t);
    await client.setCompatibility(subject, "BACKWARD");
    const v1 = avroSerde<typeof v1Switch>(client, loadSchema("fixtures/v1/ecos.fixture.SupplierSwitch"));
    await v1.prepare(t);
    const bad = avroSerde<unknown>(client, loadSchema("fixtures/incompatible/ecos.fixture.SupplierSwitch"));
    let refused: unknown;
    try {
      await bad.prepare(t);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(EcosError);
    expect(refused).toMatchObject({ code: "ECOS_SCHEMA_INCOMPATIBLE", retriable: false });
    // Refused by the registry itself (HTTP 409), not by a client-side check.
    expect((refused as EcosError).context).toMatchObject({ topic: t, subject, status: 409 });
    // The subject still has its one good version.
    const response = await fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}/versions`);
    const versions: unknown = await response.json();
    expect(versions).toEqual([1]);
  });

  it("reports a registry that does not answer as retriable ECOS_REGISTRY_UNAVAILABLE", async () => {
    const down = new ConfluentSchemaRegistryClient({
      host: "http://127.0.0.1:9/apis/ccompat/v7",
      retries: 0,
    });
    await expect(
      down.register(topicSubject(`${RUN}.down`), schemaText(loadSchema(METER_READING_SCHEMA))),
    ).rejects.toMatchObject({
      code: "ECOS_REGISTRY_UNAVAILABLE",
      retriable: true,
    });
  });
});
