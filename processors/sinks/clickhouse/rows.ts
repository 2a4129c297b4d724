/**
 * From event records to ClickHouse rows, one function per table. Column names are the records' field
 * names in snake_case (one concept, one name); docs/clickhouse.md lists every column.
 *
 * Times: records carry UTC epoch milliseconds; DateTime('UTC') columns get whole seconds (rows carry
 * the number, which both 18.16 and current versions read as a Unix timestamp), and durations that need
 * milliseconds (elapsed_ms, response_time_ms) are computed here from the milliseconds. A value that no
 * ClickHouse column can hold (a time before 1970 or after 2105, a negative count) is refused with
 * ECOS_SINK_ROW_REJECTED, and the sink dead-letters the record with that reason.
 */
import type { AnomalyEvent } from "../../anomaly/records";
import { EcosError } from "../../runtime/errors";
import type {
  DccAlertEvent,
  DeviceSnapshot,
  MigrationEvent,
  NonMigratableDeviceModel,
  RequestStageEvent,
  ServiceResponseEvent,
  SupplierRegistration,
} from "../../../schemas/event-records";

/** One row for JSONEachRow: column name to value. */
export type Row = Record<string, string | number | null>;

/** DateTime covers 1970-01-01 .. 2106-02-07; the last year is kept clear of the edge. */
const MAX_SECONDS = Date.UTC(2105, 11, 31) / 1000;
/** Date covers days 0 .. 65535 (2149-06-06). */
const MAX_DAYS = 65535;

function reject(field: string, why: string): never {
  throw new EcosError("ECOS_SINK_ROW_REJECTED", `${field}: ${why}`, { context: { field } });
}

/** Epoch milliseconds to DateTime seconds, checked. */
export function seconds(field: string, ms: number): number {
  if (!Number.isFinite(ms)) reject(field, `${ms} is not a time`);
  const s = Math.floor(ms / 1000);
  if (s < 0 || s > MAX_SECONDS) reject(field, `${new Date(ms).toISOString()} is outside 1970..2105`);
  return s;
}

function optionalSeconds(field: string, ms: number | null): number | null {
  return ms === null ? null : seconds(field, ms);
}

/** Avro date (days since 1970-01-01) to a ClickHouse Date literal 'YYYY-MM-DD'. */
export function day(field: string, days: number): string {
  if (!Number.isInteger(days) || days < 0 || days > MAX_DAYS)
    reject(field, `${days} is not a day in 1970..2149`);
  return new Date(days * 86_400_000).toISOString().slice(0, 10);
}

function unsigned(field: string, n: number | null, max: number): number | null {
  if (n === null) return null;
  if (!Number.isInteger(n) || n < 0 || n > max) reject(field, `${n} is not an integer in 0..${max}`);
  return n;
}

function required(field: string, s: string): string {
  if (s.length === 0) reject(field, "is empty");
  return s;
}

const U16 = 65_535;
const U32 = 4_294_967_295;

export function requestStageRow(e: RequestStageEvent): Row {
  return {
    event_id: required("eventId", e.eventId),
    request_id: required("requestId", e.requestId),
    user_id: e.userId,
    srv: e.srv,
    device_id: e.deviceId,
    smets_generation: e.smetsGeneration,
    stage: e.stage,
    cos_party: e.cosParty,
    response_code: e.responseCode,
    received_at: seconds("receivedAt", e.receivedAt),
    occurred_at: seconds("occurredAt", e.occurredAt),
    elapsed_ms: e.occurredAt - e.receivedAt,
    detail: e.detail,
  };
}

export function serviceResponseRow(e: ServiceResponseEvent): Row {
  if (e.respondedAt < e.receivedAt) reject("respondedAt", "is before receivedAt");
  return {
    request_id: required("requestId", e.requestId),
    user_id: e.userId,
    supplier_mpid: e.supplierMpid,
    srv: e.srv,
    device_id: e.deviceId,
    device_type: e.deviceType,
    smets_generation: e.smetsGeneration,
    cos_party: e.cosParty,
    response_code: required("responseCode", e.responseCode),
    successful: e.successful ? 1 : 0,
    received_at: seconds("receivedAt", e.receivedAt),
    received_at_ms: e.receivedAt,
    responded_at: seconds("respondedAt", e.respondedAt),
    response_time_ms: e.respondedAt - e.receivedAt,
  };
}

export function anomalyEventRow(e: AnomalyEvent): Row {
  return {
    event_id: required("eventId", e.eventId),
    kind: e.kind,
    party: e.party,
    user_id: e.userId,
    request_id: e.requestId,
    device_id: e.deviceId,
    srv: e.srv,
    period_minutes: unsigned("periodMinutes", e.periodMinutes, U32),
    request_count: unsigned("count", e.count, Number.MAX_SAFE_INTEGER),
    threshold: unsigned("threshold", e.threshold, Number.MAX_SAFE_INTEGER),
    adt_sequence_number: unsigned("adtSequenceNumber", e.adtSequenceNumber, Number.MAX_SAFE_INTEGER),
    received_at: optionalSeconds("receivedAt", e.receivedAt),
    occurred_at: seconds("occurredAt", e.occurredAt),
    quarantine_event_ref: e.quarantineEventRef,
    dcc_alert_code: e.dccAlertCode,
    detail: e.detail,
  };
}

export function dccAlertRow(e: DccAlertEvent): Row {
  return {
    alert_id: required("alertId", e.alertId),
    alert_code: required("alertCode", e.alertCode),
    alert_type: e.alertType,
    recipient_user_id: e.recipientUserId,
    device_id: e.deviceId,
    request_id: e.requestId,
    ecos_error_code: e.ecosErrorCode,
    raised_at: seconds("raisedAt", e.raisedAt),
    detail: e.detail,
  };
}

export function migrationEventRow(e: MigrationEvent): Row {
  return {
    event_id: required("eventId", e.eventId),
    device_id: required("deviceId", e.deviceId),
    device_type: e.deviceType,
    device_manufacturer: e.deviceManufacturer,
    device_model: e.deviceModel,
    firmware_version: e.firmwareVersion,
    chf_device_id: e.chfDeviceId,
    responsible_supplier_mpid: e.responsibleSupplierMpid,
    batch_id: e.batchId,
    attempt_number: unsigned("attemptNumber", e.attemptNumber, U16),
    session_retry: unsigned("sessionRetry", e.sessionRetry, U16),
    kind: e.kind,
    step: e.step,
    error_category: e.errorCategory,
    error_code: e.errorCode,
    error_detail: e.errorDetail,
    transient: e.transient ? 1 : 0,
    attempt_started_at: seconds("attemptStartedAt", e.attemptStartedAt),
    occurred_at: seconds("occurredAt", e.occurredAt),
    next_attempt_after: optionalSeconds("nextAttemptAfter", e.nextAttemptAfter),
  };
}

export function nonMigratableModelRow(e: NonMigratableDeviceModel): Row {
  return {
    device_manufacturer: e.deviceManufacturer,
    device_model: required("deviceModel", e.deviceModel),
    firmware_version: e.firmwareVersion,
    device_type: e.deviceType,
    status: e.status,
    status_from: seconds("statusFrom", e.statusFrom),
    reason: e.reason,
  };
}

export function deviceSnapshotRow(e: DeviceSnapshot): Row {
  return {
    device_id: required("deviceId", e.deviceId),
    device_type: e.deviceType,
    device_manufacturer: e.deviceManufacturer,
    device_model: e.deviceModel,
    firmware_version: e.firmwareVersion,
    smets_generation: e.smetsGeneration,
    device_status: e.deviceStatus,
    chf_device_id: e.chfDeviceId,
    import_mpxn: e.importMpxn,
    cos_credential: e.cosCredential,
    commissioned_at: optionalSeconds("commissionedAt", e.commissionedAt),
    snapshot_at: seconds("snapshotAt", e.snapshotAt),
  };
}

export function supplierRegistrationRow(e: SupplierRegistration): Row {
  if (e.effectiveTo !== null && e.effectiveTo <= e.effectiveFrom) {
    reject("effectiveTo", "is not after effectiveFrom");
  }
  return {
    mpxn: required("mpxn", e.mpxn),
    fuel: e.fuel,
    supplier_mpid: required("supplierMpid", e.supplierMpid),
    effective_from: day("effectiveFrom", e.effectiveFrom),
    effective_to: e.effectiveTo === null ? null : day("effectiveTo", e.effectiveTo),
    registration_version: unsigned("registrationVersion", e.registrationVersion, Number.MAX_SAFE_INTEGER),
    received_at: seconds("receivedAt", e.receivedAt),
  };
}
