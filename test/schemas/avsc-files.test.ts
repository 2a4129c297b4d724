/**
 * The schema conventions of schemas/README.md, checked on every .avsc file under schemas/: one record
 * per file named <namespace>.<Name>.avsc, `namespace` and `doc` on the record, `doc` on every field and
 * on every named type inside it, and a schema avsc accepts (defaults valid for their types).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadSchema } from "../../schemas/avro";
import { DEVICE_COUNT_SCHEMA, METER_READING_SCHEMA } from "../../schemas/bench-records";
import type { DeviceCount, MeterReading } from "../../schemas/bench-records";

const SCHEMAS = path.join(__dirname, "../../schemas");

function avscFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return avscFiles(full);
    return entry.name.endsWith(".avsc") ? [full] : [];
  });
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const hasText = (v: unknown): boolean => typeof v === "string" && v.trim().length > 0;

/** Every convention breach in a schema node, as "path: problem". */
function breaches(node: unknown, where: string, top: boolean): string[] {
  if (Array.isArray(node)) return node.flatMap((branch, i) => breaches(branch, `${where}[${i}]`, false));
  if (!isObject(node)) return [];
  const problems: string[] = [];
  const kind = node["type"];
  if (kind === "record" || kind === "error" || kind === "enum" || kind === "fixed") {
    const name = `${where}<${String(node["name"])}>`;
    if (!hasText(node["doc"])) problems.push(`${name}: no doc`);
    if (top && !hasText(node["namespace"])) problems.push(`${name}: no namespace`);
  }
  if (kind === "record" || kind === "error") {
    const fields = node["fields"];
    if (!Array.isArray(fields)) return [...problems, `${where}: fields is not an array`];
    for (const field of fields) {
      const fieldName = `${where}.${isObject(field) ? String(field["name"]) : "?"}`;
      if (!isObject(field) || !hasText(field["doc"])) problems.push(`${fieldName}: no doc`);
      if (isObject(field)) problems.push(...breaches(field["type"], fieldName, false));
    }
  }
  if (kind === "array") problems.push(...breaches(node["items"], `${where}[]`, false));
  if (kind === "map") problems.push(...breaches(node["values"], `${where}{}`, false));
  if (isObject(kind) || Array.isArray(kind)) problems.push(...breaches(kind, where, false));
  return problems;
}

const files = avscFiles(SCHEMAS).map((file) => path.relative(SCHEMAS, file));

describe("schemas/**/*.avsc conventions", () => {
  it("finds the product's schemas and the evolution fixtures", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "ecos.bench.MeterReading.avsc",
        "ecos.bench.DeviceCount.avsc",
        path.join("fixtures", "v1", "ecos.fixture.SupplierSwitch.avsc"),
        path.join("fixtures", "v2", "ecos.fixture.SupplierSwitch.avsc"),
      ]),
    );
  });

  describe.each(files)("%s", (file) => {
    const json = JSON.parse(fs.readFileSync(path.join(SCHEMAS, file), "utf8")) as unknown;

    it("is one record named after its file", () => {
      expect(isObject(json)).toBe(true);
      const record = json as Json;
      expect(record["type"]).toBe("record");
      expect(path.basename(file)).toBe(`${String(record["namespace"])}.${String(record["name"])}.avsc`);
    });

    it("has namespace and doc on the record, doc on every field and nested named type", () => {
      expect(breaches(json, "", true)).toEqual([]);
    });

    it("parses with avsc, defaults included", () => {
      expect(() => loadSchema(file.replace(/\.avsc$/, ""))).not.toThrow();
    });
  });

  it("detects a missing doc or namespace (the check itself works)", () => {
    const bad = {
      type: "record",
      name: "Bad",
      doc: "d",
      fields: [
        { name: "a", type: "string" },
        { name: "b", doc: "d", type: { type: "enum", name: "E", symbols: ["X"] } },
      ],
    };
    expect(breaches(bad, "", true)).toEqual(["<Bad>: no namespace", ".a: no doc", ".b<E>: no doc"]);
  });
});

describe("TypeScript shapes of the ecos.bench records", () => {
  const fieldNames = (name: string): string[] =>
    (
      JSON.parse(fs.readFileSync(path.join(SCHEMAS, `${name}.avsc`), "utf8")) as {
        fields: { name: string }[];
      }
    ).fields
      .map((f) => f.name)
      .sort();

  it("MeterReading has exactly the schema's fields and a valid sample", () => {
    const sample: Required<MeterReading> = {
      deviceId: "00-1A-2B-3C-4D-5E-6F-70",
      supplierMpid: "BGAS",
      readingWh: 1,
      readAt: 0,
      smetsGeneration: "SMETS1",
    };
    expect(Object.keys(sample).sort()).toEqual(fieldNames(METER_READING_SCHEMA));
    expect(loadSchema(METER_READING_SCHEMA).isValid(sample)).toBe(true);
  });

  it("DeviceCount has exactly the schema's fields and a valid sample", () => {
    const sample: Required<DeviceCount> = { deviceId: "00-1A-2B-3C-4D-5E-6F-70", count: 2, lastReadAt: 0 };
    expect(Object.keys(sample).sort()).toEqual(fieldNames(DEVICE_COUNT_SCHEMA));
    expect(loadSchema(DEVICE_COUNT_SCHEMA).isValid(sample)).toBe(true);
  });
});
