/**
 * TypeScript shapes of the event records the ClickHouse sink stores and the EMRR reports read
 * (schemas/ecos.{duis,migration,inventory,registration}.*.avsc). A unit test
 * (test/schemas/event-records.test.ts) checks each interface's keys against its schema's fields.
 *
 * Times are timestamp-millis (UTC epoch milliseconds) and dates are Avro `date` (days since
 * 1970-01-01), both plain numbers; optional values are `null`, never `undefined`.
 */

/** Schema names, as passed to `loadSchema`. */
export const EVENT_SCHEMAS = {
  requestStageEvent: "ecos.duis.RequestStageEvent",
  serviceResponseEvent: "ecos.duis.ServiceResponseEvent",
  dccAlertEvent: "ecos.duis.DccAlertEvent",
  migrationEvent: "ecos.migration.MigrationEvent",
  nonMigratableDeviceModel: "ecos.migration.NonMigratableDeviceModel",
  deviceSnapshot: "ecos.inventory.DeviceSnapshot",
  supplierRegistration: "ecos.registration.SupplierRegistration",
} as const;

export type DeviceType = "ESME" | "GSME" | "GPF" | "CHF" | "HCALCS" | "PPMID" | "IHD" | "CAD";
export type SmetsGeneration = "SMETS1" | "SMETS2";
export type CosParty = "ECOS" | "TCOS";

export type RequestStage =
  | "RECEIVED"
  | "ACKNOWLEDGED"
  | "VALIDATED"
  | "REJECTED"
  | "ANOMALY_CHECKED"
  | "QUARANTINED"
  | "COS_PARTY_REQUESTED"
  | "COS_PARTY_AUTHORISED"
  | "COS_PARTY_REFUSED"
  | "DISPATCHED"
  | "DEVICE_RESPONDED"
  | "RESPONSE_SENT";

/** One stage of a Service Request's lifecycle (ecos.duis.RequestStageEvent). */
export interface RequestStageEvent {
  eventId: string;
  requestId: string;
  userId: string;
  srv: string;
  deviceId: string;
  smetsGeneration: SmetsGeneration;
  stage: RequestStage;
  cosParty: CosParty | null;
  responseCode: string | null;
  receivedAt: number;
  occurredAt: number;
  detail: string | null;
}

/** The Service Response sent for one request (ecos.duis.ServiceResponseEvent). */
export interface ServiceResponseEvent {
  requestId: string;
  userId: string;
  supplierMpid: string | null;
  srv: string;
  deviceId: string;
  deviceType: string | null;
  smetsGeneration: SmetsGeneration;
  cosParty: CosParty | null;
  responseCode: string;
  successful: boolean;
  receivedAt: number;
  respondedAt: number;
}

/** A CoS-relevant alert sent to a User (ecos.duis.DccAlertEvent). */
export interface DccAlertEvent {
  alertId: string;
  alertCode: string;
  alertType: string;
  recipientUserId: string;
  deviceId: string | null;
  requestId: string | null;
  ecosErrorCode: string | null;
  raisedAt: number;
  detail: string | null;
}

export type MigrationEventKind =
  "ATTEMPT_STARTED" | "STEP_SUCCEEDED" | "STEP_FAILED" | "ATTEMPT_SUCCEEDED" | "ATTEMPT_FAILED";

/** The four ETMAD steps of one device's migration, (a) to (d). */
export type MigrationStep =
  "MCC_INSTRUCTION" | "TCOS_REVIEW" | "CREDENTIAL_REPLACEMENT" | "COMPLETION_CONFIRMATION";

/** The four EMEHRA error kinds, (a) to (d). */
export type MigrationErrorCategory =
  "ANCILLARY_SYSTEMS" | "MIGRATION_SYSTEMS" | "DEVICE_DATA_VALIDATION" | "FAILED_MIGRATION";

/** One event of a device's TCoS to ECoS migration (ecos.migration.MigrationEvent). */
export interface MigrationEvent {
  eventId: string;
  deviceId: string;
  deviceType: DeviceType;
  deviceManufacturer: string;
  deviceModel: string;
  firmwareVersion: string;
  chfDeviceId: string | null;
  responsibleSupplierMpid: string | null;
  batchId: string;
  attemptNumber: number;
  sessionRetry: number;
  kind: MigrationEventKind;
  step: MigrationStep | null;
  errorCategory: MigrationErrorCategory | null;
  errorCode: string | null;
  errorDetail: string | null;
  transient: boolean;
  attemptStartedAt: number;
  occurredAt: number;
  nextAttemptAfter: number | null;
}

/** A change to DCC's Non-Migratable Device Model list (ecos.migration.NonMigratableDeviceModel). */
export interface NonMigratableDeviceModel {
  deviceManufacturer: string;
  deviceModel: string;
  firmwareVersion: string;
  deviceType: "ESME" | "GSME" | "GPF";
  status: "NON_MIGRATABLE" | "MIGRATABLE";
  statusFrom: number;
  reason: string | null;
}

export type DeviceStatus =
  | "PENDING"
  | "WHITELISTED"
  | "INSTALLED_NOT_COMMISSIONED"
  | "COMMISSIONED"
  | "DECOMMISSIONED"
  | "WITHDRAWN"
  | "SUSPENDED"
  | "RECOVERY"
  | "RECOVERED";

export type CosCredential = "TCOS" | "ECOS" | "UNKNOWN";

/** The state of one device in the inventory replica (ecos.inventory.DeviceSnapshot). */
export interface DeviceSnapshot {
  deviceId: string;
  deviceType: DeviceType;
  deviceManufacturer: string;
  deviceModel: string;
  firmwareVersion: string;
  smetsGeneration: SmetsGeneration;
  deviceStatus: DeviceStatus;
  chfDeviceId: string | null;
  importMpxn: string | null;
  cosCredential: CosCredential;
  commissionedAt: number | null;
  snapshotAt: number;
}

/** One period of Registration Data for an MPxN (ecos.registration.SupplierRegistration). */
export interface SupplierRegistration {
  mpxn: string;
  fuel: "ELECTRICITY" | "GAS";
  supplierMpid: string;
  /** Days since 1970-01-01. */
  effectiveFrom: number;
  /** Days since 1970-01-01; null while open. */
  effectiveTo: number | null;
  registrationVersion: number;
  receivedAt: number;
}
