/**
 * The TypeScript shapes in schemas/event-records.ts against their .avsc files: same field names, and a
 * sample of each shape is valid for its schema (so the sink, the reports and the future migration
 * engine agree on one contract).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadSchema } from "../../schemas/avro";
import {
  EVENT_SCHEMAS,
  type DccAlertEvent,
  type DeviceSnapshot,
  type MigrationEvent,
  type NonMigratableDeviceModel,
  type RequestStageEvent,
  type ServiceResponseEvent,
  type SupplierRegistration,
} from "../../schemas/event-records";

const fieldNames = (name: string): string[] =>
  (
    JSON.parse(fs.readFileSync(path.join(__dirname, "../../schemas", `${name}.avsc`), "utf8")) as {
      fields: { name: string }[];
    }
  ).fields
    .map((f) => f.name)
    .sort();

const T = Date.UTC(2024, 0, 2, 3, 4, 5);
const DEVICE = "00-1A-2B-3C-4D-5E-6F-70";

const samples: Record<keyof typeof EVENT_SCHEMAS, object> = {
  requestStageEvent: {
    eventId: "e1",
    requestId: "90-B3-D5-1F-30-01-00-00:00-1A-2B-3C-4D-5E-6F-70:1",
    userId: "90-B3-D5-1F-30-01-00-00",
    srv: "6.23",
    deviceId: DEVICE,
    smetsGeneration: "SMETS2",
    stage: "RECEIVED",
    cosParty: null,
    responseCode: null,
    receivedAt: T,
    occurredAt: T,
    detail: null,
  } satisfies Required<RequestStageEvent>,
  serviceResponseEvent: {
    requestId: "r1",
    userId: "90-B3-D5-1F-30-01-00-00",
    supplierMpid: "ACEE",
    srv: "6.23",
    deviceId: DEVICE,
    deviceType: "ESME",
    smetsGeneration: "SMETS1",
    cosParty: "ECOS",
    responseCode: "I0",
    successful: true,
    receivedAt: T,
    respondedAt: T + 1000,
  } satisfies Required<ServiceResponseEvent>,
  dccAlertEvent: {
    alertId: "a1",
    alertCode: "N63",
    alertType: "ECoSAlert",
    recipientUserId: "90-B3-D5-1F-30-01-00-00",
    deviceId: DEVICE,
    requestId: null,
    ecosErrorCode: "A01",
    raisedAt: T,
    detail: null,
  } satisfies Required<DccAlertEvent>,
  migrationEvent: {
    eventId: "m1",
    deviceId: DEVICE,
    deviceType: "GPF",
    deviceManufacturer: "ACME",
    deviceModel: "GPF-1",
    firmwareVersion: "1.0",
    chfDeviceId: null,
    responsibleSupplierMpid: "ACG",
    batchId: "B1",
    attemptNumber: 1,
    sessionRetry: 0,
    kind: "ATTEMPT_FAILED",
    step: "CREDENTIAL_REPLACEMENT",
    errorCategory: "FAILED_MIGRATION",
    errorCode: "E20",
    errorDetail: "timed out",
    transient: false,
    attemptStartedAt: T,
    occurredAt: T,
    nextAttemptAfter: null,
  } satisfies Required<MigrationEvent>,
  nonMigratableDeviceModel: {
    deviceManufacturer: "ACME",
    deviceModel: "GPF-1",
    firmwareVersion: "1.0",
    deviceType: "GPF",
    status: "NON_MIGRATABLE",
    statusFrom: T,
    reason: null,
  } satisfies Required<NonMigratableDeviceModel>,
  deviceSnapshot: {
    deviceId: DEVICE,
    deviceType: "ESME",
    deviceManufacturer: "ACME",
    deviceModel: "E-1",
    firmwareVersion: "2.1",
    smetsGeneration: "SMETS2",
    deviceStatus: "COMMISSIONED",
    chfDeviceId: "00-1A-2B-3C-4D-5E-00-01",
    importMpxn: "1900000000001",
    cosCredential: "TCOS",
    commissionedAt: T,
    snapshotAt: T,
  } satisfies Required<DeviceSnapshot>,
  supplierRegistration: {
    mpxn: "1900000000001",
    fuel: "ELECTRICITY",
    supplierMpid: "ACEE",
    effectiveFrom: 19723,
    effectiveTo: null,
    registrationVersion: 1,
    receivedAt: T,
  } satisfies Required<SupplierRegistration>,
};

describe("TypeScript shapes of the event records", () => {
  it.each(Object.entries(EVENT_SCHEMAS))(
    "%s has exactly the schema's fields and a valid sample",
    (k, name) => {
      const sample = samples[k as keyof typeof EVENT_SCHEMAS];
      expect(Object.keys(sample).sort()).toEqual(fieldNames(name));
      expect(loadSchema(name).isValid(sample)).toBe(true);
    },
  );
});
