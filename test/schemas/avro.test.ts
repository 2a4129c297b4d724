import * as crypto from "node:crypto";
import * as avsc from "avsc";
import { EcosError } from "../../processors/runtime/errors";
import { avroSerde, loadSchema, schemaText, topicSubject } from "../../schemas/avro";
import { DEVICE_COUNT_SCHEMA, METER_READING_SCHEMA } from "../../schemas/bench-records";
import type { DeviceCount, MeterReading } from "../../schemas/bench-records";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import type { SchemaRegistry } from "../../schemas/registry";
import { encodeFrame } from "../../schemas/wire";

const TOPIC = "bench.meter-readings";
const reading: MeterReading = {
  deviceId: "00-1A-2B-3C-4D-5E-6F-70",
  supplierMpid: "BGAS",
  readingWh: 12_345_678,
  readAt: 1_735_689_600_000,
  smetsGeneration: "SMETS2",
};

function isThenable(value: unknown): boolean {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/** What `fn` threw, synchronously or as a rejection. */
async function failureOf(fn: () => unknown): Promise<EcosError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EcosError);
    return err as EcosError;
  }
  throw new Error("expected a failure");
}

async function readingSerde(registry: SchemaRegistry = new InMemorySchemaRegistry()) {
  const serde = avroSerde<MeterReading>(registry, loadSchema(METER_READING_SCHEMA));
  await serde.prepare(TOPIC);
  return serde;
}

/**
 * Counts resolvers built for `readerType` (avsc types are frozen, so the spy sits on the prototype;
 * nested calls for field types have other `this` values and are not counted).
 */
function spyOnResolvers(readerType: avsc.Type): () => number {
  const spy = jest.spyOn(avsc.Type.prototype, "createResolver");
  return () => spy.mock.contexts.filter((self) => self === readerType).length;
}

afterEach(() => jest.restoreAllMocks());

describe("avroSerde", () => {
  it("round-trips a MeterReading as a plain data object", async () => {
    const serde = await readingSerde();
    const bytes = serde.serialize(TOPIC, reading);
    expect(bytes[0]).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(serde.schemaId(TOPIC));
    const read = await serde.deserialize(TOPIC, bytes);
    expect({ ...read }).toStrictEqual(reading);
    expect("toBuffer" in read).toBe(false); // omitRecordMethods: no avsc methods on values
    expect(serde.name).toBe("avro:ecos.bench.MeterReading");
  });

  it("writes the plain Avro encoding after the header", async () => {
    const serde = await readingSerde();
    const type = loadSchema(METER_READING_SCHEMA);
    expect(serde.serialize(TOPIC, reading).subarray(5).equals(type.toBuffer(reading))).toBe(true);
  });

  it("returns independent buffers (the encode scratch buffer is never handed out)", async () => {
    const serde = await readingSerde();
    const first = serde.serialize(TOPIC, reading);
    const copy = Buffer.from(first);
    serde.serialize(TOPIC, { ...reading, deviceId: "FF-FF-FF-FF-FF-FF-FF-FF", readingWh: 1 });
    expect(first.equals(copy)).toBe(true);
  });

  it("grows its encode buffer for a value larger than it", async () => {
    const serde = await readingSerde();
    const big = { ...reading, supplierMpid: "X".repeat(100_000) };
    const bytes = serde.serialize(TOPIC, big);
    expect(bytes.length).toBeGreaterThan(100_000);
    expect((await serde.deserialize(TOPIC, bytes)).supplierMpid).toBe(big.supplierMpid);
    expect({ ...(await serde.deserialize(TOPIC, serde.serialize(TOPIC, reading))) }).toEqual(reading);
  });

  describe("subjects", () => {
    it("registers the .avsc text as written (logical types, docs) under TopicNameStrategy", async () => {
      const registry = new InMemorySchemaRegistry();
      const serde = await readingSerde(registry);
      expect(registry.versions(`${TOPIC}-value`)).toEqual([serde.schemaId(TOPIC)]);
      const registered = JSON.parse(await registry.schemaById(serde.schemaId(TOPIC)!)) as {
        doc: string;
        fields: { name: string; type: unknown }[];
      };
      expect(registered.doc).toMatch(/register reading/);
      expect(registered.fields.find((f) => f.name === "readAt")!.type).toEqual({
        type: "long",
        logicalType: "timestamp-millis",
      });
      expect(registered).toEqual(JSON.parse(schemaText(loadSchema(METER_READING_SCHEMA))));
    });

    it("uses ${topic}-key for a key serde, an explicit subject, or a strategy", async () => {
      const registry = new InMemorySchemaRegistry();
      const type = loadSchema(DEVICE_COUNT_SCHEMA);
      await avroSerde<DeviceCount>(registry, type, { isKey: true }).prepare("counts");
      await avroSerde<DeviceCount>(registry, type, { subject: "shared-counts" }).prepare("counts");
      await avroSerde<DeviceCount>(registry, type, { subject: (t) => `${t}.by-record` }).prepare("counts");
      expect(topicSubject("counts", true)).toBe("counts-key");
      for (const subject of ["counts-key", "shared-counts", "counts.by-record"]) {
        expect(registry.versions(subject)).toHaveLength(1);
      }
      expect(registry.versions("counts-value")).toHaveLength(0);
    });

    it("registers once per topic, however many times and concurrently prepare is called", async () => {
      const registry = new InMemorySchemaRegistry();
      const spy = jest.spyOn(registry, "register");
      const serde = avroSerde<MeterReading>(registry, loadSchema(METER_READING_SCHEMA));
      await Promise.all([serde.prepare(TOPIC), serde.prepare(TOPIC), serde.prepare(TOPIC)]);
      await serde.prepare(TOPIC);
      await serde.prepare("other-topic");
      expect(spy).toHaveBeenCalledTimes(2);
      expect(serde.schemaId(TOPIC)).toBe(serde.schemaId("other-topic")); // one schema, one id
    });

    it("propagates a registry failure with its code and retries on the next prepare", async () => {
      const registry = new InMemorySchemaRegistry();
      const down = new EcosError("ECOS_REGISTRY_UNAVAILABLE", "connect ECONNREFUSED");
      jest.spyOn(registry, "register").mockRejectedValueOnce(down);
      const serde = avroSerde<MeterReading>(registry, loadSchema(METER_READING_SCHEMA));
      const failure = await failureOf(() => serde.prepare(TOPIC));
      expect(failure).toMatchObject({ code: "ECOS_REGISTRY_UNAVAILABLE", retriable: true });
      expect(failure.context).toMatchObject({ topic: TOPIC, subject: `${TOPIC}-value` });
      await serde.prepare(TOPIC);
      expect(serde.schemaId(TOPIC)).toBe(1);
    });
  });

  describe("serialize failures", () => {
    it("refuses to serialize for a topic that was not prepared", async () => {
      const serde = await readingSerde();
      const failure = await failureOf(() => serde.serialize("unprepared.topic", reading));
      expect(failure.code).toBe("ECOS_SERDE_ENCODE");
      expect(failure.message).toMatch(/unprepared\.topic.*prepare\("unprepared\.topic"\)/);
    });

    it.each([
      ["a string for a long", { readingWh: "12" }, /readingWh: "12" is not a long/],
      [
        "an unknown enum symbol",
        { smetsGeneration: "SMETS3" },
        /smetsGeneration: "SMETS3" is not a ecos\.bench\.SmetsGeneration/,
      ],
      ["a missing field", { deviceId: undefined }, /deviceId: undefined is not a string/],
      ["an unsafe long", { readAt: 2 ** 60 }, /readAt: \d+ is not a long/],
      ["a fractional long", { readingWh: 1.5 }, /readingWh: 1.5 is not a long/],
    ])("names the field and topic for %s", async (_label, patch, message) => {
      const serde = await readingSerde();
      const failure = await failureOf(() => serde.serialize(TOPIC, { ...reading, ...patch } as MeterReading));
      expect(failure.code).toBe("ECOS_SERDE_ENCODE");
      expect(failure.message).toContain(`topic ${TOPIC}`);
      expect(failure.message).toMatch(message);
      expect(failure.context).toMatchObject({ topic: TOPIC, schemaId: serde.schemaId(TOPIC) });
    });

    it.each([null, undefined, 42, "reading", []])("refuses %j as a value", async (value) => {
      const serde = await readingSerde();
      const failure = await failureOf(() => serde.serialize(TOPIC, value as unknown as MeterReading));
      expect(failure.code).toBe("ECOS_SERDE_ENCODE");
    });

    it("keeps working after a refused value", async () => {
      const serde = await readingSerde();
      expect(() =>
        serde.serialize(TOPIC, { ...reading, readingWh: "x" } as unknown as MeterReading),
      ).toThrow();
      expect({ ...(await serde.deserialize(TOPIC, serde.serialize(TOPIC, reading))) }).toEqual(reading);
    });
  });

  describe("resolver cache", () => {
    it("decodes 10,000 records of one writer id with one fetch and one resolver, plain values after the first", async () => {
      const registry = new InMemorySchemaRegistry();
      const writer = await readingSerde(registry);
      const frames = Array.from({ length: 10_000 }, (_, i) =>
        writer.serialize(TOPIC, { ...reading, readingWh: i, smetsGeneration: i % 2 ? "SMETS1" : "SMETS2" }),
      );
      const readerType = loadSchema(METER_READING_SCHEMA);
      const resolversBuilt = spyOnResolvers(readerType);
      const fetchSpy = jest.spyOn(registry, "schemaById");
      const reader = avroSerde<MeterReading>(registry, readerType);

      const first = reader.deserialize(TOPIC, frames[0]!);
      expect(isThenable(first)).toBe(true); // first sight of the id
      expect((await first).readingWh).toBe(0);
      for (let i = 1; i < frames.length; i++) {
        const value = reader.deserialize(TOPIC, frames[i]!);
        if (isThenable(value)) throw new Error(`record ${i} came back as a Promise`);
        expect((value as MeterReading).readingWh).toBe(i);
      }
      expect(resolversBuilt()).toBe(1);
      expect(fetchSpy).toHaveBeenCalledTimes(1);
    });

    it("fetches a writer schema once when many records of an unseen id arrive together", async () => {
      const registry = new InMemorySchemaRegistry();
      const writer = await readingSerde(registry);
      const readerType = loadSchema(METER_READING_SCHEMA);
      const resolversBuilt = spyOnResolvers(readerType);
      const fetchSpy = jest.spyOn(registry, "schemaById");
      const reader = avroSerde<MeterReading>(registry, readerType);
      const bytes = writer.serialize(TOPIC, reading);
      const reads = Array.from({ length: 50 }, () => reader.deserialize(TOPIC, bytes));
      expect(reads.every(isThenable)).toBe(true);
      for (const value of await Promise.all(reads.map((r) => Promise.resolve(r))))
        expect({ ...value }).toEqual(reading);
      expect(fetchSpy).toHaveBeenCalledTimes(1);
      expect(resolversBuilt()).toBe(1);
    });

    it("keeps one resolver per writer id", async () => {
      const registry = new InMemorySchemaRegistry();
      const v1 = avroSerde<object>(registry, loadSchema("fixtures/v1/ecos.fixture.SupplierSwitch"));
      const v2 = avroSerde<object>(registry, loadSchema("fixtures/v2/ecos.fixture.SupplierSwitch"));
      await v1.prepare("switches");
      await v2.prepare("switches");
      const readerType = loadSchema("fixtures/v2/ecos.fixture.SupplierSwitch");
      const resolversBuilt = spyOnResolvers(readerType);
      const reader = avroSerde<object>(registry, readerType);
      const a = v1.serialize("switches", {
        deviceId: "a",
        supplierMpid: "BGAS",
        switchDate: 1,
        tcosBatchRef: "",
      });
      const b = v2.serialize("switches", {
        deviceId: "b",
        supplierMpid: "BGAS",
        switchDate: 2,
        cosCredential: "TCOS",
      });
      for (let i = 0; i < 100; i++) {
        await reader.deserialize("switches", a);
        await reader.deserialize("switches", b);
      }
      expect(resolversBuilt()).toBe(2);
    });

    it("does not cache a failed fetch: the next record fetches again", async () => {
      const registry = new InMemorySchemaRegistry();
      const writer = await readingSerde(registry);
      const bytes = writer.serialize(TOPIC, reading);
      jest
        .spyOn(registry, "schemaById")
        .mockRejectedValueOnce(new EcosError("ECOS_REGISTRY_UNAVAILABLE", "503 from the registry"));
      const reader = avroSerde<MeterReading>(registry, loadSchema(METER_READING_SCHEMA));
      const failure = await failureOf(() => reader.deserialize(TOPIC, bytes));
      expect(failure).toMatchObject({ code: "ECOS_REGISTRY_UNAVAILABLE", retriable: true });
      expect(failure.context).toMatchObject({ topic: TOPIC, schemaId: writer.schemaId(TOPIC) });
      expect({ ...(await reader.deserialize(TOPIC, bytes)) }).toEqual(reading);
    });
  });

  describe("decode failures", () => {
    it("reports an unknown schema id as ECOS_SCHEMA_UNKNOWN with the id and topic", async () => {
      const serde = await readingSerde();
      const failure = await failureOf(() => serde.deserialize(TOPIC, encodeFrame(4242, Buffer.from([0]))));
      expect(failure.code).toBe("ECOS_SCHEMA_UNKNOWN");
      expect(failure.context).toMatchObject({ schemaId: 4242, topic: TOPIC });
    });

    it.each([
      ["an empty record", Buffer.alloc(0)],
      ["a JSON record", Buffer.from(JSON.stringify(reading))],
      ["a string", Buffer.from("hello")],
    ])("reports %s as ECOS_WIRE_FORMAT with the topic, synchronously", async (_label, bytes) => {
      const serde = await readingSerde();
      let thrown: unknown;
      try {
        void serde.deserialize(TOPIC, bytes);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toMatchObject({ code: "ECOS_WIRE_FORMAT", context: { topic: TOPIC } });
    });

    it("reports a truncated record as ECOS_SERDE_DECODE with the schema id", async () => {
      const serde = await readingSerde();
      const bytes = serde.serialize(TOPIC, reading);
      await serde.deserialize(TOPIC, bytes);
      for (let cut = 6; cut < bytes.length; cut++) {
        const failure = await failureOf(() => serde.deserialize(TOPIC, bytes.subarray(0, cut)));
        expect(failure.code).toBe("ECOS_SERDE_DECODE");
        expect(failure.message).toContain(`schema id ${serde.schemaId(TOPIC)}`);
        expect(failure.context).toMatchObject({ topic: TOPIC, schemaId: serde.schemaId(TOPIC) });
      }
    });

    it("reports trailing bytes as ECOS_SERDE_DECODE", async () => {
      const serde = await readingSerde();
      const bytes = Buffer.concat([serde.serialize(TOPIC, reading), Buffer.from([1, 2])]);
      const failure = await failureOf(() => serde.deserialize(TOPIC, bytes));
      expect(failure.code).toBe("ECOS_SERDE_DECODE");
      expect(failure.message).toMatch(/2 trailing byte/);
    });

    it("reports a record of another, unresolvable schema as ECOS_SERDE_DECODE", async () => {
      const registry = new InMemorySchemaRegistry();
      const counts = avroSerde<DeviceCount>(registry, loadSchema(DEVICE_COUNT_SCHEMA));
      await counts.prepare("counts");
      const serde = await readingSerde(registry);
      const bytes = counts.serialize("counts", { deviceId: "00-1A", count: 3, lastReadAt: 1 });
      const failure = await failureOf(() => serde.deserialize("counts", bytes));
      expect(failure.code).toBe("ECOS_SERDE_DECODE");
      expect(failure.message).toMatch(
        /ecos\.bench\.DeviceCount\) cannot be read as ecos\.bench\.MeterReading/,
      );
    });

    it("never crashes on garbage: every failure is an EcosError with a serde or wire code", async () => {
      const serde = await readingSerde();
      const id = serde.schemaId(TOPIC)!;
      await serde.deserialize(TOPIC, serde.serialize(TOPIC, reading));
      const codes = new Set<string>();
      let decoded = 0;
      for (let i = 0; i < 5_000; i++) {
        const random = crypto.randomBytes(i % 64);
        // Half with a valid header so the payload reaches the Avro decoder.
        const bytes = i % 2 === 0 ? encodeFrame(id, random) : random;
        try {
          const value = serde.deserialize(TOPIC, bytes);
          if (isThenable(value)) await value;
          decoded++;
        } catch (err) {
          if (!(err instanceof EcosError)) throw err;
          codes.add(err.code);
        }
      }
      expect(
        [...codes].every((c) => ["ECOS_WIRE_FORMAT", "ECOS_SERDE_DECODE", "ECOS_SCHEMA_UNKNOWN"].includes(c)),
      ).toBe(true);
      expect(codes).toContain("ECOS_WIRE_FORMAT");
      expect(codes).toContain("ECOS_SERDE_DECODE");
      expect(decoded).toBeLessThan(5_000);
    });
  });

  describe("loadSchema", () => {
    it("refuses a missing schema with ECOS_SCHEMA_UNKNOWN", () => {
      expect(() => loadSchema("ecos.bench.NoSuchRecord")).toThrow(
        expect.objectContaining({ code: "ECOS_SCHEMA_UNKNOWN" }) as Error,
      );
    });

    it("refuses a name outside schemas/", () => {
      expect(() => loadSchema("../package")).toThrow(
        expect.objectContaining({ code: "ECOS_CONFIG_INVALID" }) as Error,
      );
    });

    it("parses each load separately (no shared avsc name registry)", () => {
      expect(() => [loadSchema(METER_READING_SCHEMA), loadSchema(METER_READING_SCHEMA)]).not.toThrow();
    });
  });
});
