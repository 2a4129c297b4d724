/**
 * The ClickHouse data model of ecos-stream: event tables (one per record type the sink stores),
 * reference data kept as data (Target Response Times, Responsible Supplier rules), and the SQL that
 * derives current state from events (latest device snapshot, the GPF rule, registrations in force,
 * migration attempts). docs/clickhouse.md documents every column.
 *
 * Dialect: everything here runs on chDB 26.x and on the ClickHouse 18.16 server of deploy/local, so it
 * keeps to what 18.16 understands: ReplacingMergeTree with PARTITION BY/ORDER BY, DateTime('UTC'), no
 * LowCardinality, no DateTime64, at most one JOIN per SELECT (nested subqueries instead), explicit
 * ALL/ANY join strictness, no query parameters (literals are rendered by `lit`).
 *
 * Idempotency: every table is a ReplacingMergeTree whose ORDER BY is a deterministic key of the event
 * (never the time it was stored), so a row stored twice collapses on merge, and every read here goes
 * through FINAL (or GROUP BY the key) so that not-yet-merged duplicates never count twice. The sink also
 * avoids storing a Kafka record twice in the first place (source_topic/partition/offset, see
 * sink-writer.ts).
 */
import { checkIdentifier, stringLiteral } from "./connection";

/** Source coordinates every sunk table carries: which Kafka record a row came from. */
const SOURCE_COLUMNS = `
  source_topic String,
  source_partition UInt32,
  source_offset UInt64`;

/** The tables the sink writes, by name (unqualified). */
export const TABLES = {
  requestStageEvents: "request_stage_events",
  serviceResponses: "service_responses",
  anomalyEvents: "anomaly_events",
  dccAlerts: "dcc_alerts",
  migrationEvents: "migration_events",
  nonMigratableDeviceModels: "non_migratable_device_models",
  deviceSnapshots: "device_snapshots",
  registrationHistory: "registration_history",
  sinkDeadLetters: "sink_dead_letters",
} as const;

/** The sink's own ledger: per source partition, the offset through which every record is stored. */
export const SINK_PROGRESS_TABLE = "sink_progress";

export type SinkTable = (typeof TABLES)[keyof typeof TABLES];

/** The views derived from the tables (unqualified). */
export const VIEWS = {
  devicesCurrent: "devices_current",
  chfConnectedMeters: "chf_connected_meters",
  deviceSupplierMpxn: "device_supplier_mpxn",
  registrationsInForce: "registrations",
  migrationAttempts: "migration_attempts",
  nonMigratableModelsCurrent: "non_migratable_models_current",
  serviceResponseTimes: "service_response_times",
} as const;

/** CREATE TABLE statements of the event tables (migration 1). */
export function eventTablesDdl(db: string): string[] {
  const d = checkIdentifier(db);
  return [
    `CREATE TABLE IF NOT EXISTS ${d}.request_stage_events (
  event_id String,
  request_id String,
  user_id String,
  srv String,
  device_id String,
  smets_generation String,
  stage String,
  cos_party Nullable(String),
  response_code Nullable(String),
  received_at DateTime('UTC'),
  occurred_at DateTime('UTC'),
  elapsed_ms Int64,
  detail Nullable(String),${SOURCE_COLUMNS}
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY (request_id, event_id)`,
    `CREATE TABLE IF NOT EXISTS ${d}.service_responses (
  request_id String,
  user_id String,
  supplier_mpid Nullable(String),
  srv String,
  device_id String,
  device_type Nullable(String),
  smets_generation String,
  cos_party Nullable(String),
  response_code String,
  successful UInt8,
  received_at DateTime('UTC'),
  responded_at DateTime('UTC'),
  response_time_ms Int64,${SOURCE_COLUMNS}
) ENGINE = ReplacingMergeTree(source_offset) PARTITION BY toYYYYMM(received_at) ORDER BY (srv, request_id)`,
    `CREATE TABLE IF NOT EXISTS ${d}.anomaly_events (
  event_id String,
  kind String,
  party String,
  user_id String,
  request_id Nullable(String),
  device_id Nullable(String),
  srv Nullable(String),
  period_minutes Nullable(UInt32),
  request_count Nullable(UInt64),
  threshold Nullable(UInt64),
  adt_sequence_number Nullable(UInt64),
  received_at Nullable(DateTime('UTC')),
  occurred_at DateTime('UTC'),
  quarantine_event_ref Nullable(String),
  dcc_alert_code Nullable(String),
  detail String,${SOURCE_COLUMNS}
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY (user_id, event_id)`,
    `CREATE TABLE IF NOT EXISTS ${d}.dcc_alerts (
  alert_id String,
  alert_code String,
  alert_type String,
  recipient_user_id String,
  device_id Nullable(String),
  request_id Nullable(String),
  ecos_error_code Nullable(String),
  raised_at DateTime('UTC'),
  detail Nullable(String),${SOURCE_COLUMNS}
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(raised_at) ORDER BY (alert_code, alert_id)`,
    `CREATE TABLE IF NOT EXISTS ${d}.migration_events (
  event_id String,
  device_id String,
  device_type String,
  device_manufacturer String,
  device_model String,
  firmware_version String,
  chf_device_id Nullable(String),
  responsible_supplier_mpid Nullable(String),
  batch_id String,
  attempt_number UInt16,
  session_retry UInt16,
  kind String,
  step Nullable(String),
  error_category Nullable(String),
  error_code Nullable(String),
  error_detail Nullable(String),
  transient UInt8,
  attempt_started_at DateTime('UTC'),
  occurred_at DateTime('UTC'),
  next_attempt_after Nullable(DateTime('UTC')),${SOURCE_COLUMNS}
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY (device_id, attempt_number, event_id)`,
    `CREATE TABLE IF NOT EXISTS ${d}.non_migratable_device_models (
  device_manufacturer String,
  device_model String,
  firmware_version String,
  device_type String,
  status String,
  status_from DateTime('UTC'),
  reason Nullable(String),${SOURCE_COLUMNS}
) ENGINE = ReplacingMergeTree(source_offset) ORDER BY (device_manufacturer, device_model, firmware_version, status_from)`,
    `CREATE TABLE IF NOT EXISTS ${d}.device_snapshots (
  device_id String,
  device_type String,
  device_manufacturer String,
  device_model String,
  firmware_version String,
  smets_generation String,
  device_status String,
  chf_device_id Nullable(String),
  import_mpxn Nullable(String),
  cos_credential String,
  commissioned_at Nullable(DateTime('UTC')),
  snapshot_at DateTime('UTC'),${SOURCE_COLUMNS}
) ENGINE = ReplacingMergeTree(source_offset) PARTITION BY toYYYYMM(snapshot_at) ORDER BY (device_id, snapshot_at)`,
    `CREATE TABLE IF NOT EXISTS ${d}.registration_history (
  mpxn String,
  fuel String,
  supplier_mpid String,
  effective_from Date,
  effective_to Nullable(Date),
  registration_version UInt64,
  received_at DateTime('UTC'),${SOURCE_COLUMNS}
) ENGINE = ReplacingMergeTree(registration_version) ORDER BY (mpxn, effective_from)`,
    `CREATE TABLE IF NOT EXISTS ${d}.${SINK_PROGRESS_TABLE} (
  source_topic String,
  source_partition UInt32,
  stored_through UInt64,
  recorded_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(stored_through) ORDER BY (source_topic, source_partition)`,
    `CREATE TABLE IF NOT EXISTS ${d}.sink_dead_letters (
  target_table String,
  error_code String,
  reason String,
  record_key Nullable(String),
  payload_base64 String,
  record_timestamp DateTime('UTC'),${SOURCE_COLUMNS}
) ENGINE = ReplacingMergeTree ORDER BY (source_topic, source_partition, source_offset)`,
  ];
}

/**
 * Reference data as data (migration 2): facts from the seed documents that later evidence may change,
 * kept in tables rather than in SQL text, with the evidence label of docs/domain (§0).
 */
export function referenceDataDdl(db: string): string[] {
  const d = checkIdentifier(db);
  return [
    `CREATE TABLE IF NOT EXISTS ${d}.target_response_times (
  srv String,
  smets_generation String,
  target_response_time_ms UInt32,
  evidence String
) ENGINE = ReplacingMergeTree ORDER BY (srv, smets_generation)`,
    `INSERT INTO ${d}.target_response_times (srv, smets_generation, target_response_time_ms, evidence) VALUES
  ('6.23', 'SMETS2', 35000, '[B] seed 003 §3.1: 35 s for SMETS2+ targets'),
  ('6.23', 'SMETS1', 21000, '[B] seed 003 §3.1: 21 s for SMETS1 targets')`,
    `CREATE TABLE IF NOT EXISTS ${d}.responsible_supplier_rules (
  device_type String,
  rule String,
  evidence String
) ENGINE = ReplacingMergeTree ORDER BY device_type`,
    `INSERT INTO ${d}.responsible_supplier_rules (device_type, rule, evidence) VALUES
  ('ESME', 'OWN_MPXN', '[B] the Import Supplier registered for the MPAN of the ESME'),
  ('GSME', 'OWN_MPXN', '[B] the Gas Supplier registered for the MPRN of the GSME'),
  ('GPF', 'GAS_METER_ELSE_ELECTRICITY_METER_ON_CHF', '[B] seed 002 §2 para 25: gas supplier if a gas meter is connected to the Communications Hub, else electricity supplier if an electricity meter is, else no report'),
  ('CHF', 'NONE', '[GAP] DCC is responsible for the Communications Hub; no supplier report assumed'),
  ('HCALCS', 'NONE', '[GAP] HAN devices hold no CoS credential'),
  ('PPMID', 'NONE', '[GAP] HAN devices hold no CoS credential'),
  ('IHD', 'NONE', '[GAP] HAN devices hold no CoS credential'),
  ('CAD', 'NONE', '[GAP] HAN devices hold no CoS credential')`,
  ];
}

/** A DateTime literal in UTC from an instant. */
export function dateTimeLiteral(at: Date): string {
  return `toDateTime(${stringLiteral(at.toISOString().slice(0, 19).replace("T", " "))}, 'UTC')`;
}

/** A Date literal (the UTC calendar day of an instant). */
export function dateLiteral(at: Date): string {
  return `toDate(${stringLiteral(at.toISOString().slice(0, 10))})`;
}

/** The epoch instant, ClickHouse's default for a DateTime that has no value. */
export const NO_TIME = "toDateTime(0, 'UTC')";

/**
 * Device statuses in which a device counts as connected to its Communications Hub for the GPF rule.
 * [GAP] the ETMAD does not say; installed or commissioned is assumed.
 */
export const CONNECTED_STATUSES = ["COMMISSIONED", "INSTALLED_NOT_COMMISSIONED"] as const;

/** Statuses of devices that are no longer in service (left out of device counts). */
export const RETIRED_STATUSES = ["DECOMMISSIONED", "WITHDRAWN"] as const;

const inList = (values: readonly string[]): string => values.map(stringLiteral).join(", ");

/**
 * Each device's latest snapshot, as of `asOf` (exclusive) or now. Nullable columns come out as ''
 * (strings) or the epoch (commissioned_at) so that joins and aggregates behave the same on every version.
 */
export function devicesSql(db: string, asOf?: Date): string {
  const d = checkIdentifier(db);
  const where = asOf ? `\nWHERE snapshot_at < ${dateTimeLiteral(asOf)}` : "";
  return `SELECT
  device_id,
  argMax(device_type, snapshot_at) AS device_type,
  argMax(device_manufacturer, snapshot_at) AS device_manufacturer,
  argMax(device_model, snapshot_at) AS device_model,
  argMax(firmware_version, snapshot_at) AS firmware_version,
  argMax(smets_generation, snapshot_at) AS smets_generation,
  argMax(device_status, snapshot_at) AS device_status,
  argMax(ifNull(chf_device_id, ''), snapshot_at) AS chf_device_id,
  argMax(ifNull(import_mpxn, ''), snapshot_at) AS import_mpxn,
  argMax(cos_credential, snapshot_at) AS cos_credential,
  argMax(ifNull(commissioned_at, ${NO_TIME}), snapshot_at) AS commissioned_at,
  max(snapshot_at) AS last_snapshot_at
FROM ${d}.device_snapshots FINAL${where}
GROUP BY device_id`;
}

/** Per Communications Hub Function: the MPRN of a connected gas meter and the MPAN of a connected electricity meter ('' if none). */
export function chfConnectedMetersSql(devices: string): string {
  return `SELECT
  chf_device_id,
  minIf(import_mpxn, device_type = 'GSME' AND import_mpxn != '') AS gas_mpxn,
  minIf(import_mpxn, device_type = 'ESME' AND import_mpxn != '') AS electricity_mpxn
FROM (${devices})
WHERE chf_device_id != '' AND device_status IN (${inList(CONNECTED_STATUSES)})
GROUP BY chf_device_id`;
}

/**
 * Every device with the MPxN whose registered supplier is its Responsible Supplier, by the rule for its
 * device type (table responsible_supplier_rules): its own ImportMPxN for a meter; for a GPF the MPRN of
 * the gas meter connected to the same Communications Hub, else the MPAN of the electricity meter, else
 * none (''), as seed document 002 §2 gives the GPF rule.
 */
export function deviceSupplierMpxnSql(db: string, devices: string): string {
  const d = checkIdentifier(db);
  return `SELECT
  dr.device_id AS device_id,
  dr.device_type AS device_type,
  dr.device_manufacturer AS device_manufacturer,
  dr.device_model AS device_model,
  dr.firmware_version AS firmware_version,
  dr.smets_generation AS smets_generation,
  dr.device_status AS device_status,
  dr.chf_device_id AS chf_device_id,
  dr.import_mpxn AS import_mpxn,
  dr.cos_credential AS cos_credential,
  dr.commissioned_at AS commissioned_at,
  dr.rule AS rule,
  multiIf(
    dr.rule = 'OWN_MPXN', dr.import_mpxn,
    dr.rule = 'GAS_METER_ELSE_ELECTRICITY_METER_ON_CHF', if(m.gas_mpxn != '', m.gas_mpxn, m.electricity_mpxn),
    '') AS supplier_mpxn
FROM (
  SELECT dv.*, r.rule AS rule
  FROM (${devices}) AS dv
  ALL LEFT JOIN (SELECT device_type, rule FROM ${d}.responsible_supplier_rules FINAL) AS r USING device_type
) AS dr
ALL LEFT JOIN (${chfConnectedMetersSql(devices)}) AS m USING chf_device_id`;
}

/** Per MPxN, the supplier registered for it on day `on` (the latest version of each period). */
export function registeredSuppliersSql(db: string, on: Date): string {
  const d = checkIdentifier(db);
  const day = dateLiteral(on);
  return `SELECT mpxn, argMax(supplier_mpid, effective_from) AS supplier_mpid
FROM ${d}.registration_history FINAL
WHERE effective_from <= ${day} AND (isNull(effective_to) OR ${day} < effective_to)
GROUP BY mpxn`;
}

/**
 * Every device known to the inventory as of `asOf` with its Responsible Supplier on day `on`
 * (responsible_supplier_mpid, '' when none), the MPxN that decided it (supplier_mpxn) and `known = 1`.
 * A device joined against this and not found has known = 0: reports then fall back to the Responsible
 * Supplier the event itself names.
 */
export function responsibleDevicesSql(db: string, asOf: Date, on: Date): string {
  return `SELECT
  s.device_id AS device_id,
  s.device_type AS device_type,
  s.device_manufacturer AS device_manufacturer,
  s.device_model AS device_model,
  s.firmware_version AS firmware_version,
  s.device_status AS device_status,
  s.chf_device_id AS chf_device_id,
  s.cos_credential AS cos_credential,
  s.commissioned_at AS commissioned_at,
  s.supplier_mpxn AS supplier_mpxn,
  rs.supplier_mpid AS responsible_supplier_mpid,
  toUInt8(1) AS known
FROM (${deviceSupplierMpxnSql(db, devicesSql(db, asOf))}) AS s
ALL LEFT JOIN (SELECT mpxn AS supplier_mpxn, supplier_mpid FROM (${registeredSuppliersSql(db, on)})) AS rs USING supplier_mpxn`;
}

/** One row per (device, attempt): how the attempt went, from its events. */
export function migrationAttemptsSql(db: string): string {
  const d = checkIdentifier(db);
  // Ties on occurred_at are broken by event_id so both targets pick the same event.
  const last = "(occurred_at, event_id)";
  const failed = "kind = 'ATTEMPT_FAILED'";
  return `SELECT
  device_id,
  attempt_number,
  argMax(batch_id, ${last}) AS batch_id,
  argMax(device_type, ${last}) AS device_type,
  argMax(device_manufacturer, ${last}) AS device_manufacturer,
  argMax(device_model, ${last}) AS device_model,
  argMax(firmware_version, ${last}) AS firmware_version,
  argMax(ifNull(chf_device_id, ''), ${last}) AS chf_device_id,
  argMax(ifNull(responsible_supplier_mpid, ''), ${last}) AS engine_supplier_mpid,
  min(attempt_started_at) AS started_at,
  multiIf(countIf(kind = 'ATTEMPT_SUCCEEDED') > 0, 'SUCCEEDED', countIf(${failed}) > 0, 'FAILED', 'IN_PROGRESS') AS outcome,
  maxIf(occurred_at, kind IN ('ATTEMPT_SUCCEEDED', 'ATTEMPT_FAILED')) AS ended_at,
  argMaxIf(ifNull(step, ''), ${last}, ${failed}) AS failed_step,
  argMaxIf(ifNull(error_category, ''), ${last}, ${failed}) AS error_category,
  argMaxIf(ifNull(error_code, ''), ${last}, ${failed}) AS error_code,
  argMaxIf(ifNull(error_detail, ''), ${last}, ${failed}) AS error_detail,
  argMaxIf(transient, ${last}, ${failed}) AS transient,
  argMaxIf(ifNull(next_attempt_after, ${NO_TIME}), ${last}, ${failed}) AS next_attempt_after,
  max(session_retry) AS session_retries
FROM ${d}.migration_events FINAL
GROUP BY device_id, attempt_number`;
}

/** The status in force per Device Model as of `asOf` (exclusive) or now. */
export function nonMigratableModelsSql(db: string, asOf?: Date): string {
  const d = checkIdentifier(db);
  const where = asOf ? `\nWHERE status_from < ${dateTimeLiteral(asOf)}` : "";
  return `SELECT
  device_manufacturer,
  device_model,
  firmware_version,
  argMax(device_type, status_from) AS device_type,
  argMax(status, status_from) AS status,
  max(status_from) AS status_since,
  argMax(ifNull(reason, ''), status_from) AS reason
FROM ${d}.non_migratable_device_models FINAL${where}
GROUP BY device_manufacturer, device_model, firmware_version`;
}

/** Service responses with their Target Response Time and whether they met it. */
export function serviceResponseTimesSql(db: string): string {
  const d = checkIdentifier(db);
  return `SELECT
  sr.*,
  t.target_response_time_ms AS target_response_time_ms,
  toUInt8(t.target_response_time_ms > 0 AND sr.response_time_ms <= t.target_response_time_ms) AS within_target
FROM (SELECT * FROM ${d}.service_responses FINAL) AS sr
ALL LEFT JOIN (SELECT srv, smets_generation, target_response_time_ms FROM ${d}.target_response_times FINAL) AS t
USING (srv, smets_generation)`;
}

/** Migration 4's column, which tells one submission of a RequestID from another. */
const SUBMISSION_COLUMN = "received_at_ms";

/**
 * Migration 4: a Service Response row per submission, not per RequestID. A replayed request (its
 * RequestID used again) is refused by the DSP under the same RequestID; keyed by (srv, request_id)
 * alone, that refusal replaced the original's response. The submission is told apart by its receipt
 * time in milliseconds: an acknowledgement and the final response of one submission share it (the
 * final one, at a later offset, still replaces the acknowledgement), a replay has its own. Rows stored
 * before this migration have 0 there and stay one per RequestID. The server (18.16) allows a column
 * added in the same ALTER at the end of the sorting key; it cannot have a default expression.
 */
export function serviceResponsesBySubmissionDdl(db: string): string[] {
  const d = checkIdentifier(db);
  return [
    `ALTER TABLE ${d}.${TABLES.serviceResponses} ADD COLUMN ${SUBMISSION_COLUMN} UInt64, MODIFY ORDER BY (srv, request_id, ${SUBMISSION_COLUMN})`,
  ];
}

/** Above 0 when migration 4's ALTER already ran (it has no IF NOT EXISTS on the 18.16 server). */
export function serviceResponsesBySubmissionDone(db: string): string {
  return `SELECT count() FROM system.columns WHERE database = ${stringLiteral(checkIdentifier(db))} AND table = ${stringLiteral(TABLES.serviceResponses)} AND name = ${stringLiteral(SUBMISSION_COLUMN)}`;
}

/** CREATE VIEW statements for analysts (migration 3); the reports build the same SQL with an "as of". */
export function viewsDdl(db: string): string[] {
  const d = checkIdentifier(db);
  const view = (name: string, sql: string): string => `CREATE VIEW IF NOT EXISTS ${d}.${name} AS\n${sql}`;
  return [
    view(VIEWS.devicesCurrent, devicesSql(d)),
    view(VIEWS.chfConnectedMeters, chfConnectedMetersSql(devicesSql(d))),
    view(VIEWS.deviceSupplierMpxn, deviceSupplierMpxnSql(d, devicesSql(d))),
    view(VIEWS.registrationsInForce, `SELECT * FROM ${d}.registration_history FINAL`),
    view(VIEWS.migrationAttempts, migrationAttemptsSql(d)),
    view(VIEWS.nonMigratableModelsCurrent, nonMigratableModelsSql(d)),
    view(VIEWS.serviceResponseTimes, serviceResponseTimesSql(d)),
  ];
}
