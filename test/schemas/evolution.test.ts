/**
 * Reader/writer resolution of the SupplierSwitch fixture (schemas/fixtures/): v2 drops tcosBatchRef
 * (which has a default in v1) and adds cosCredential with a default, so each version reads the other's
 * records; the "incompatible" version adds mpxn without a default and must be refused.
 */
import { EcosError } from "../../processors/runtime/errors";
import { avroSerde, loadSchema } from "../../schemas/avro";
import { InMemorySchemaRegistry } from "../../schemas/registry";

interface SwitchV1 {
  deviceId: string;
  supplierMpid: string;
  switchDate: number;
  tcosBatchRef: string;
}
interface SwitchV2 {
  deviceId: string;
  supplierMpid: string;
  switchDate: number;
  cosCredential: "ECOS" | "TCOS";
}

const TOPIC = "fixture.supplier-switches";
const v1Values: SwitchV1[] = [
  {
    deviceId: "00-1A-2B-3C-4D-5E-6F-70",
    supplierMpid: "BGAS",
    switchDate: 1_735_689_600_000,
    tcosBatchRef: "T-0001",
  },
  { deviceId: "00-1A-2B-3C-4D-5E-6F-71", supplierMpid: "EONU", switchDate: 0, tcosBatchRef: "" },
  { deviceId: "", supplierMpid: "", switchDate: -1, tcosBatchRef: "ünïcødé" },
];
const v2Values: SwitchV2[] = [
  {
    deviceId: "00-1A-2B-3C-4D-5E-6F-72",
    supplierMpid: "BGAS",
    switchDate: 1_735_776_000_000,
    cosCredential: "TCOS",
  },
  { deviceId: "00-1A-2B-3C-4D-5E-6F-73", supplierMpid: "SWEB", switchDate: 2 ** 52, cosCredential: "ECOS" },
];

async function setup(): Promise<{
  registry: InMemorySchemaRegistry;
  v1: ReturnType<typeof avroSerde<SwitchV1>>;
  v2: ReturnType<typeof avroSerde<SwitchV2>>;
}> {
  const registry = new InMemorySchemaRegistry(); // BACKWARD, like the product's subjects
  const v1 = avroSerde<SwitchV1>(registry, loadSchema("fixtures/v1/ecos.fixture.SupplierSwitch"));
  const v2 = avroSerde<SwitchV2>(registry, loadSchema("fixtures/v2/ecos.fixture.SupplierSwitch"));
  await v1.prepare(TOPIC); // v1 first, then v2 evolves the subject
  await v2.prepare(TOPIC);
  return { registry, v1, v2 };
}

describe("schema evolution of ecos.fixture.SupplierSwitch", () => {
  it("registers v1 then v2 as two versions of one subject", async () => {
    const { registry, v1, v2 } = await setup();
    expect(registry.versions(`${TOPIC}-value`)).toEqual([v1.schemaId(TOPIC), v2.schemaId(TOPIC)]);
    expect(v1.schemaId(TOPIC)).not.toBe(v2.schemaId(TOPIC));
  });

  it.each(v1Values)("reads a v1 record with the v2 reader: %j", async (written) => {
    const { v1, v2 } = await setup();
    const read = await v2.deserialize(TOPIC, v1.serialize(TOPIC, written));
    const { tcosBatchRef: _dropped, ...kept } = written;
    expect({ ...read }).toStrictEqual({ ...kept, cosCredential: "ECOS" });
  });

  it.each(v2Values)("reads a v2 record with the v1 reader: %j", async (written) => {
    const { v1, v2 } = await setup();
    const read = await v1.deserialize(TOPIC, v2.serialize(TOPIC, written));
    const { cosCredential: _added, ...kept } = written;
    expect({ ...read }).toStrictEqual({ ...kept, tcosBatchRef: "" });
  });

  it("reads each version's own records unchanged", async () => {
    const { v1, v2 } = await setup();
    for (const value of v1Values)
      expect({ ...(await v1.deserialize(TOPIC, v1.serialize(TOPIC, value))) }).toEqual(value);
    for (const value of v2Values)
      expect({ ...(await v2.deserialize(TOPIC, v2.serialize(TOPIC, value))) }).toEqual(value);
  });

  it("reads a topic holding both versions, each record with its own writer schema", async () => {
    const { v1, v2 } = await setup();
    const log = [
      v1.serialize(TOPIC, v1Values[0]!),
      v2.serialize(TOPIC, v2Values[0]!),
      v1.serialize(TOPIC, v1Values[1]!),
    ];
    const read: SwitchV2[] = [];
    for (const bytes of log) read.push(await v2.deserialize(TOPIC, bytes));
    expect(read.map((r) => r.cosCredential)).toEqual(["ECOS", "TCOS", "ECOS"]);
    expect(read.map((r) => r.deviceId)).toEqual([
      v1Values[0]!.deviceId,
      v2Values[0]!.deviceId,
      v1Values[1]!.deviceId,
    ]);
  });

  it("refuses the incompatible version at registration (BACKWARD)", async () => {
    const { registry } = await setup();
    const bad = avroSerde<unknown>(registry, loadSchema("fixtures/incompatible/ecos.fixture.SupplierSwitch"));
    await expect(bad.prepare(TOPIC)).rejects.toMatchObject({
      code: "ECOS_SCHEMA_INCOMPATIBLE",
      context: { topic: TOPIC, subject: `${TOPIC}-value` },
    });
    expect(registry.versions(`${TOPIC}-value`)).toHaveLength(2);
  });

  it("fails a read with the incompatible reader as ECOS_SERDE_DECODE naming the writer id", async () => {
    const { registry, v1 } = await setup();
    // A reader only reads: it needs no registration, so the refused schema can still be tried.
    const reader = avroSerde<unknown>(
      registry,
      loadSchema("fixtures/incompatible/ecos.fixture.SupplierSwitch"),
    );
    const bytes = v1.serialize(TOPIC, v1Values[0]!);
    const id = v1.schemaId(TOPIC)!;
    const spy = jest.spyOn(registry, "schemaById");
    const first = Promise.resolve(reader.deserialize(TOPIC, bytes));
    await expect(first).rejects.toMatchObject({
      code: "ECOS_SERDE_DECODE",
      context: { schemaId: id, topic: TOPIC },
    });
    await expect(first).rejects.toThrow(/mpxn/);
    // The failure is remembered: the next record fails at once, without another fetch.
    expect(() => reader.deserialize(TOPIC, bytes)).toThrow(EcosError);
    expect(spy).toHaveBeenCalledTimes(1);
  });
});
