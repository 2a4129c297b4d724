import * as fs from "node:fs";
import * as path from "node:path";
import { EcosError } from "../../processors/runtime/errors";
import { InMemorySchemaRegistry, compatibilityFailure, parseSchemaText } from "../../schemas/registry";

const SCHEMAS = path.join(__dirname, "../../schemas");
const read = (name: string): string => fs.readFileSync(path.join(SCHEMAS, `${name}.avsc`), "utf8");
const v1 = read("fixtures/v1/ecos.fixture.SupplierSwitch");
const v2 = read("fixtures/v2/ecos.fixture.SupplierSwitch");
const incompatible = read("fixtures/incompatible/ecos.fixture.SupplierSwitch");
const reading = read("ecos.bench.MeterReading");
const count = read("ecos.bench.DeviceCount");

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(EcosError);
    return (err as EcosError).code;
  }
  throw new Error("expected a rejection");
}

describe("InMemorySchemaRegistry", () => {
  it("hands out ids 1, 2, 3… in registration order", async () => {
    const registry = new InMemorySchemaRegistry();
    expect(await registry.register("bench.readings-value", reading)).toBe(1);
    expect(await registry.register("bench.counts-value", count)).toBe(2);
    expect(await registry.register("switches-value", v1)).toBe(3);
  });

  it("gives the same schema under the same subject the same id, whitespace aside", async () => {
    const registry = new InMemorySchemaRegistry();
    const id = await registry.register("bench.readings-value", reading);
    expect(await registry.register("bench.readings-value", reading)).toBe(id);
    expect(await registry.register("bench.readings-value", JSON.stringify(JSON.parse(reading)))).toBe(id);
    expect(registry.versions("bench.readings-value")).toEqual([id]);
  });

  it("gives the same schema under two subjects one id, as Confluent does", async () => {
    const registry = new InMemorySchemaRegistry();
    const a = await registry.register("a-value", reading);
    const b = await registry.register("b-value", reading);
    expect(b).toBe(a);
    expect(registry.versions("b-value")).toEqual([a]);
  });

  it("is deterministic across instances", async () => {
    const ids = async (): Promise<number[]> => {
      const registry = new InMemorySchemaRegistry();
      return [
        await registry.register("x-value", v1),
        await registry.register("x-value", v2),
        await registry.register("y-value", reading),
      ];
    };
    expect(await ids()).toEqual(await ids());
  });

  it("returns the registered text by id", async () => {
    const registry = new InMemorySchemaRegistry();
    const id = await registry.register("bench.readings-value", reading);
    expect(JSON.parse(await registry.schemaById(id))).toEqual(JSON.parse(reading));
  });

  it("refuses an unknown id with ECOS_SCHEMA_UNKNOWN", async () => {
    const registry = new InMemorySchemaRegistry();
    expect(await codeOf(registry.schemaById(99))).toBe("ECOS_SCHEMA_UNKNOWN");
  });

  it("accepts a BACKWARD compatible version as a new version", async () => {
    const registry = new InMemorySchemaRegistry();
    const first = await registry.register("switches-value", v1);
    const second = await registry.register("switches-value", v2);
    expect(second).not.toBe(first);
    expect(registry.versions("switches-value")).toEqual([first, second]);
  });

  it("refuses an incompatible version with ECOS_SCHEMA_INCOMPATIBLE and keeps the subject as it was", async () => {
    const registry = new InMemorySchemaRegistry();
    const first = await registry.register("switches-value", v1);
    const refused = registry.register("switches-value", incompatible);
    await expect(refused).rejects.toMatchObject({
      code: "ECOS_SCHEMA_INCOMPATIBLE",
      message: expect.stringMatching(/switches-value \(BACKWARD\).*mpxn/) as unknown,
    });
    expect(registry.versions("switches-value")).toEqual([first]);
  });

  it("refuses a different record under a used subject", async () => {
    const registry = new InMemorySchemaRegistry();
    await registry.register("bench.readings-value", reading);
    expect(await codeOf(registry.register("bench.readings-value", count))).toBe("ECOS_SCHEMA_INCOMPATIBLE");
  });

  it("lets the incompatible version in with compatibility NONE, globally or per subject", async () => {
    const open = new InMemorySchemaRegistry({ compatibility: "NONE" });
    await open.register("s-value", v1);
    await expect(open.register("s-value", incompatible)).resolves.toEqual(expect.any(Number));

    const perSubject = new InMemorySchemaRegistry();
    perSubject.setCompatibility("s-value", "NONE");
    await perSubject.register("s-value", v1);
    await expect(perSubject.register("s-value", incompatible)).resolves.toEqual(expect.any(Number));
  });

  it("refuses text that is not an Avro schema", async () => {
    const registry = new InMemorySchemaRegistry();
    expect(await codeOf(registry.register("s-value", "{not json"))).toBe("ECOS_SCHEMA_INCOMPATIBLE");
    expect(await codeOf(registry.register("s-value", '{"type":"record","name":"R"}'))).toBe(
      "ECOS_SCHEMA_INCOMPATIBLE",
    );
  });
});

describe("compatibilityFailure", () => {
  const t1 = parseSchemaText(v1);
  const t2 = parseSchemaText(v2);
  const bad = parseSchemaText(incompatible);

  it("checks BACKWARD (new reads old), FORWARD (old reads new) and FULL (both)", () => {
    expect(compatibilityFailure("BACKWARD", t2, [t1])).toBeUndefined();
    expect(compatibilityFailure("FORWARD", t2, [t1])).toBeUndefined();
    expect(compatibilityFailure("FULL", t2, [t1])).toBeUndefined();
    expect(compatibilityFailure("BACKWARD", bad, [t1])).toMatch(/new schema cannot read.*mpxn/);
    // The old version ignores mpxn, so reading the refused version's records works: FORWARD only.
    expect(compatibilityFailure("FORWARD", bad, [t1])).toBeUndefined();
    expect(compatibilityFailure("FULL", bad, [t1])).toMatch(/mpxn/);
  });

  it("checks only the latest version unless transitive", () => {
    // v3 makes cosCredential required: it reads v2 records but not v1 records (which lack it).
    const v3json = JSON.parse(v2) as { fields: { name: string; default?: unknown }[] };
    delete v3json.fields.find((f) => f.name === "cosCredential")!.default;
    const t3 = parseSchemaText(JSON.stringify(v3json));
    expect(compatibilityFailure("BACKWARD", t3, [t1, t2])).toBeUndefined();
    expect(compatibilityFailure("BACKWARD_TRANSITIVE", t3, [t1, t2])).toMatch(/cosCredential/);
    expect(compatibilityFailure("FULL_TRANSITIVE", t3, [t1, t2])).toMatch(/cosCredential/);
    expect(compatibilityFailure("NONE", bad, [t1, t2])).toBeUndefined();
  });
});
