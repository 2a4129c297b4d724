/**
 * The anomaly records' TypeScript shapes match their .avsc files field for field, and sample values
 * round-trip through the Avro serde (Confluent framing, in-memory registry).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadSchema } from "../../schemas/avro";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import {
  ANOMALY_SCHEMAS,
  type AdtFileResult,
  type AdtFileSubmission,
  type AnomalyEvent,
  type ExitQuarantineInstruction,
  type QuarantinedRequest,
  type ServiceRequestEnvelope,
} from "../../processors/anomaly/records";
import { anomalyAvroSerdes } from "../../processors/anomaly/serdes";
import type { AnomalySerdes } from "../../processors/anomaly/topology";
import type { Serde } from "../../processors/runtime/serde";
import { DEVICE, T0, USER_A } from "./fixtures";

const fieldNames = (name: string): string[] =>
  (
    JSON.parse(fs.readFileSync(path.join(__dirname, "../../schemas", `${name}.avsc`), "utf8")) as {
      fields: { name: string }[];
    }
  ).fields
    .map((f) => f.name)
    .sort();

const request: Required<ServiceRequestEnvelope> = {
  requestId: `${USER_A}:${DEVICE}:1`,
  userId: USER_A,
  srv: "6.23",
  receivedAt: T0,
  deviceId: DEVICE,
  raw: Buffer.from("<sr:Request/>"),
};
const submission: Required<AdtFileSubmission> = {
  submissionId: "s",
  userId: USER_A,
  fileName: "a.csv",
  submittedAt: T0,
  content: Buffer.from("SequenceNumber,1\n"),
};
const result: Required<AdtFileResult> = {
  submissionId: "s",
  userId: USER_A,
  fileName: "a.csv",
  sequenceNumber: 1,
  outcome: "ACCEPTED",
  rejectionCode: null,
  rejectionReason: null,
  effectiveFrom: T0,
  entries: [{ srv: "6.23", periodMinutes: 1440, adt: 0, warningThreshold: 0, origin: "DEFAULT_COS_1440" }],
};
const rejected: AdtFileResult = {
  ...result,
  sequenceNumber: null,
  outcome: "REJECTED",
  rejectionCode: "BAD_CSV",
  rejectionReason: "line 3: quote",
  effectiveFrom: null,
  entries: [],
};
const event: Required<AnomalyEvent> = {
  eventId: "e",
  kind: "REQUEST_QUARANTINED",
  party: "DSP",
  userId: USER_A,
  requestId: request.requestId,
  deviceId: DEVICE,
  srv: "6.23",
  periodMinutes: 1440,
  count: 4,
  threshold: 3,
  adtSequenceNumber: null,
  receivedAt: T0,
  occurredAt: T0,
  quarantineEventRef: "12345678901234567890",
  dccAlertCode: "AD1",
  detail: "d",
};
const quarantined: Required<QuarantinedRequest> = {
  quarantineEventRef: "1",
  requestId: request.requestId,
  userId: USER_A,
  srv: "6.23",
  receivedAt: T0,
  deviceId: DEVICE,
  raw: Buffer.from("<x/>"),
  periodMinutes: 60,
  count: 2,
  adt: 1,
  adtSequenceNumber: 3,
};
const exit: Required<ExitQuarantineInstruction> = {
  instructionId: "i",
  userId: USER_A,
  quarantineEventRef: "1",
  action: "DELETE",
  issuedAt: T0,
};

const cases: Array<[string, string, object, keyof AnomalySerdes]> = [
  ["ServiceRequestEnvelope", ANOMALY_SCHEMAS.serviceRequestEnvelope, request, "request"],
  ["AdtFileSubmission", ANOMALY_SCHEMAS.adtFileSubmission, submission, "adtFile"],
  ["AdtFileResult", ANOMALY_SCHEMAS.adtFileResult, result, "adtResult"],
  ["AnomalyEvent", ANOMALY_SCHEMAS.anomalyEvent, event, "event"],
  ["QuarantinedRequest", ANOMALY_SCHEMAS.quarantinedRequest, quarantined, "quarantined"],
  ["ExitQuarantineInstruction", ANOMALY_SCHEMAS.exitQuarantineInstruction, exit, "exit"],
];

describe("anomaly records", () => {
  test.each(cases)(
    "%s has exactly the schema's fields and round-trips",
    async (_n, schema, sample, serdeName) => {
      expect(Object.keys(sample).sort()).toEqual(fieldNames(schema));
      expect(loadSchema(schema).isValid(sample)).toBe(true);
      const serde = anomalyAvroSerdes(new InMemorySchemaRegistry())[serdeName] as Serde<object>;
      await serde.prepare?.("t");
      expect(await serde.deserialize("t", serde.serialize("t", sample))).toEqual(sample);
    },
  );

  test("a rejected file result round-trips with its nulls", async () => {
    const serde = anomalyAvroSerdes(new InMemorySchemaRegistry()).adtResult;
    await serde.prepare?.("t");
    expect(await serde.deserialize("t", serde.serialize("t", rejected))).toEqual(rejected);
  });
});
