/**
 * The issue-5 contract records' TypeScript shapes match their .avsc files field for field, and sample
 * values (with and without their optional parts) round-trip through the Avro serde.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadSchema } from "../../schemas/avro";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import {
  COS_SCHEMAS,
  cosTopics,
  type CosAuthorisation,
  type DeviceCommand,
  type DeviceResponse,
  type S1spRequest,
} from "../../processors/cos/records";
import { cosAvroSerdes, type CosSerdes } from "../../processors/cos/serdes";
import type { Serde } from "../../processors/runtime/serde";

const fieldNames = (name: string): string[] =>
  (
    JSON.parse(fs.readFileSync(path.join(__dirname, "../../schemas", `${name}.avsc`), "utf8")) as {
      fields: { name: string }[];
    }
  ).fields
    .map((f) => f.name)
    .sort();

const DEVICE = "00-11-22-33-44-55-66-77";
const USER = "90-B3-D5-1F-30-01-00-02";
const T0 = Date.UTC(2026, 10, 23, 9);

const authorisation: Required<CosAuthorisation> = {
  requestId: `${USER}:${DEVICE}:1`,
  deviceId: DEVICE,
  userId: USER,
  cosParty: "ECOS",
  smetsGeneration: "SMETS2",
  deviceType: "ESME",
  receivedAt: T0,
  authorisedAt: T0 + 40,
  countersigned: Buffer.from("<sr:Request/>"),
  preCommand: Buffer.from([0xdf, 0x09, 0x01]),
  counter: "18446744073709551615",
  executionAt: T0 + 86_400_000,
  cancellation: false,
};
const smets1: CosAuthorisation = {
  ...authorisation,
  smetsGeneration: "SMETS1",
  cosParty: "TCOS",
  preCommand: null,
  counter: null,
  executionAt: null,
  cancellation: true,
};
const command: Required<DeviceCommand> = {
  requestId: authorisation.requestId,
  deviceId: DEVICE,
  command: Buffer.from([1, 2, 3]),
  counter: "7",
  dispatchedAt: T0 + 60,
  executionAt: null,
  cancellation: false,
};
const s1sp: Required<S1spRequest> = {
  requestId: authorisation.requestId,
  deviceId: DEVICE,
  userId: USER,
  countersigned: Buffer.from("<x/>"),
  dispatchedAt: T0 + 60,
  executionAt: T0 + 1000,
  cancellation: false,
};
const response: Required<DeviceResponse> = {
  requestId: authorisation.requestId,
  deviceId: DEVICE,
  source: "DEVICE",
  kind: "RESPONSE",
  status: "SUCCESS",
  detail: "",
  payload: Buffer.from([9]),
  answeredAt: T0 + 3000,
};

const cases: Array<[string, string, object, keyof CosSerdes]> = [
  ["CosAuthorisation", COS_SCHEMAS.cosAuthorisation, authorisation, "authorisation"],
  ["CosAuthorisation (SMETS1, nulls)", COS_SCHEMAS.cosAuthorisation, smets1, "authorisation"],
  ["DeviceCommand", COS_SCHEMAS.deviceCommand, command, "deviceCommand"],
  ["S1spRequest", COS_SCHEMAS.s1spRequest, s1sp, "s1spRequest"],
  ["DeviceResponse", COS_SCHEMAS.deviceResponse, response, "deviceResponse"],
  [
    "DeviceResponse (S1SP)",
    COS_SCHEMAS.deviceResponse,
    { ...response, source: "S1SP", payload: null },
    "deviceResponse",
  ],
];

describe("CoS contract records", () => {
  test.each(cases)(
    "%s has exactly the schema's fields and round-trips",
    async (_n, schema, sample, serdeName) => {
      expect(Object.keys(sample).sort()).toEqual(fieldNames(schema));
      expect(loadSchema(schema).isValid(sample)).toBe(true);
      const serde = cosAvroSerdes(new InMemorySchemaRegistry())[serdeName] as Serde<object>;
      await serde.prepare?.("t");
      expect(await serde.deserialize("t", serde.serialize("t", sample))).toEqual(sample);
    },
  );

  test("an unknown enum symbol is refused by the schema", () => {
    expect(loadSchema(COS_SCHEMAS.cosAuthorisation).isValid({ ...authorisation, cosParty: "OTHER" })).toBe(
      false,
    );
  });

  test("topic names take the prefix", () => {
    expect(cosTopics("t.").deviceCommands).toBe("t.device.commands");
    expect(cosTopics().authorisations).toBe("cos.authorisations");
  });
});
