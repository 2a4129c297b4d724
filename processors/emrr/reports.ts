/**
 * The ECoS Migration Reporting Regime (EMRR) reports ECOSMIG-001 … 006 as SQL, one query per report
 * for one Responsible Supplier and one period, over the tables of processors/sinks/clickhouse.
 *
 * The seed documents give each report's name, recipient and frequency (seed 002 §2) but not its
 * columns: the columns here are designed from the event data and documented in docs/reports.md (a test
 * keeps that document and `REPORTS` in step).
 *
 * Responsible Supplier. A device's Responsible Supplier is the supplier registered, on the period's
 * last day, for the MPxN its rule names (table responsible_supplier_rules): its own MPxN for a meter;
 * for a GPF the MPRN of the gas meter connected to the same Communications Hub, else the MPAN of the
 * electricity meter, else none, in which case no report carries it (seed 002 §2, para 25). Device state
 * (model, firmware, CHF, status, credential) is the latest inventory snapshot before the period ends. A
 * device the inventory does not know is routed by the Responsible Supplier the migration event names.
 * [GAP] whether responsibility is fixed at the event's time or at the report's: the report's is used,
 * so that the supplier who can act on a failure is the one told.
 *
 * Every query runs unchanged on chDB and on the ClickHouse 18.16 server (see tables.ts on dialect).
 */
import { EcosError } from "../runtime/errors";
import { stringLiteral, type ClickHouseConnection, type QueryResult } from "../sinks/clickhouse/connection";
import {
  NO_TIME,
  RETIRED_STATUSES,
  dateLiteral,
  dateTimeLiteral,
  devicesSql,
  deviceSupplierMpxnSql,
  migrationAttemptsSql,
  nonMigratableModelsSql,
  responsibleDevicesSql,
} from "../sinks/clickhouse/tables";
import { responsibilityDay, type Frequency, type Period } from "./periods";

export type ReportRef =
  "ECOSMIG-001" | "ECOSMIG-002" | "ECOSMIG-003" | "ECOSMIG-004" | "ECOSMIG-005" | "ECOSMIG-006";

export interface ReportColumn {
  readonly name: string;
  readonly doc: string;
}

export interface ReportParams {
  readonly database: string;
  /** MPID of the Responsible Supplier the report is for. */
  readonly supplier: string;
  readonly period: Period;
}

export interface ReportDefinition {
  readonly ref: ReportRef;
  readonly title: string;
  readonly frequency: Frequency;
  readonly columns: readonly ReportColumn[];
  sql(p: ReportParams): string;
}

/** A DateTime column out as text, or NULL when it holds the epoch (ClickHouse's "no value"). */
const timeOrNull = (expr: string): string => `if(toUnixTimestamp(${expr}) = 0, NULL, toString(${expr}))`;

const supplierLiteral = (mpid: string): string => {
  if (!/^[A-Z0-9]{2,8}$/.test(mpid)) {
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `--supplier ${JSON.stringify(mpid)} is not an MPID (2 to 8 upper-case letters or digits)`,
    );
  }
  return stringLiteral(mpid);
};

/**
 * Migration attempts (ending or starting in the period, by `where`) with the Responsible Supplier of
 * their device; only those of `supplier`.
 */
export function routedAttempts(p: ReportParams, where: string): string {
  const day = responsibilityDay(p.period);
  return `SELECT
  a.device_id AS device_id, a.attempt_number AS attempt_number, a.batch_id AS batch_id,
  a.device_type AS device_type, a.device_manufacturer AS device_manufacturer, a.device_model AS device_model,
  a.firmware_version AS firmware_version, a.started_at AS started_at, a.outcome AS outcome, a.ended_at AS ended_at,
  a.failed_step AS failed_step, a.error_category AS error_category, a.error_code AS error_code,
  a.error_detail AS error_detail, a.transient AS transient, a.next_attempt_after AS next_attempt_after,
  a.session_retries AS session_retries, rd.supplier_mpxn AS mpxn
FROM (SELECT * FROM (${migrationAttemptsSql(p.database)}) WHERE ${where}) AS a
ALL LEFT JOIN (
  SELECT device_id, supplier_mpxn, known, responsible_supplier_mpid
  FROM (${responsibleDevicesSql(p.database, p.period.to, day)})
) AS rd USING device_id
WHERE if(rd.known = 1, rd.responsible_supplier_mpid, a.engine_supplier_mpid) = ${supplierLiteral(p.supplier)}`;
}

const from = (p: ReportParams): string => dateTimeLiteral(p.period.from);
const to = (p: ReportParams): string => dateTimeLiteral(p.period.to);

const DEVICE_COLUMNS: readonly ReportColumn[] = [
  { name: "device_id", doc: "Device ID (EUI-64)." },
  { name: "device_type", doc: "DUIS DeviceType: ESME, GSME or GPF." },
  { name: "device_manufacturer", doc: "DeviceManufacturer." },
  { name: "device_model", doc: "DeviceModel." },
  { name: "firmware_version", doc: "DeviceFirmwareVersion." },
];

const MPXN_COLUMN: ReportColumn = {
  name: "mpxn",
  doc: "The MPxN that makes the recipient the Responsible Supplier (for a GPF: the connected gas meter's MPRN, else the electricity meter's MPAN); empty for a device unknown to the inventory.",
};

export const REPORTS: readonly ReportDefinition[] = [
  {
    ref: "ECOSMIG-001",
    title: "Detail: ECoS migrations completed successfully",
    frequency: "daily",
    columns: [
      ...DEVICE_COLUMNS,
      MPXN_COLUMN,
      { name: "batch_id", doc: "Migration batch of the attempt." },
      { name: "attempt_number", doc: "Which attempt succeeded (1 = the first)." },
      { name: "attempt_started_at", doc: "When the attempt started (UTC)." },
      { name: "migrated_at", doc: "When both Service Providers confirmed the migration (step d), UTC." },
    ],
    sql: (p) => `SELECT device_id, device_type, device_manufacturer, device_model, firmware_version, mpxn,
  batch_id, attempt_number, toString(started_at) AS attempt_started_at, toString(ended_at) AS migrated_at
FROM (${routedAttempts(p, `outcome = 'SUCCEEDED' AND ended_at >= ${from(p)} AND ended_at < ${to(p)}`)})
ORDER BY migrated_at, device_id, attempt_number`,
  },
  {
    ref: "ECOSMIG-002",
    title: "Detail: ECoS migrations completed unsuccessfully",
    frequency: "6-hourly",
    columns: [
      ...DEVICE_COLUMNS,
      MPXN_COLUMN,
      { name: "batch_id", doc: "Migration batch of the attempt." },
      { name: "attempt_number", doc: "Which attempt failed (1 = the first)." },
      {
        name: "failed_step",
        doc: "The step that failed: MCC_INSTRUCTION, TCOS_REVIEW, CREDENTIAL_REPLACEMENT or COMPLETION_CONFIRMATION (ETMAD steps a-d).",
      },
      {
        name: "error_category",
        doc: "EMEHRA category: ANCILLARY_SYSTEMS, MIGRATION_SYSTEMS, DEVICE_DATA_VALIDATION or FAILED_MIGRATION.",
      },
      {
        name: "error_code",
        doc: "The failing party's code (DUIS response code, GBCS outcome or validation reason).",
      },
      { name: "error_detail", doc: "Description of the error." },
      {
        name: "transient",
        doc: "1 when the failure is expected to clear by itself (the device joins a later batch).",
      },
      { name: "session_retries", doc: "Automatic retries made within the attempt's session." },
      { name: "failed_at", doc: "When the attempt ended unsuccessfully (UTC)." },
      { name: "next_attempt_after", doc: "Earliest planned next attempt (UTC), empty when none is planned." },
      {
        name: "non_migratable_model",
        doc: "1 when the device's model, manufacturer and firmware are on the Non-Migratable list at the period's end.",
      },
    ],
    sql: (p) => `SELECT device_id, device_type, device_manufacturer, device_model, firmware_version, mpxn,
  batch_id, attempt_number, failed_step, error_category, error_code, error_detail, transient, session_retries,
  toString(ended_at) AS failed_at, ${timeOrNull("next_attempt_after")} AS next_attempt_after,
  toUInt8((device_manufacturer, device_model, firmware_version) IN (
    SELECT device_manufacturer, device_model, firmware_version
    FROM (${nonMigratableModelsSql(p.database, p.period.to)}) WHERE status = 'NON_MIGRATABLE')) AS non_migratable_model
FROM (${routedAttempts(p, `outcome = 'FAILED' AND ended_at >= ${from(p)} AND ended_at < ${to(p)}`)})
ORDER BY failed_at, device_id, attempt_number`,
  },
  {
    ref: "ECOSMIG-003",
    title: "Detail: gaining supplier devices history",
    frequency: "monthly",
    columns: [
      {
        name: "mpxn",
        doc: "MPAN or MPRN the recipient became the registered supplier of during the period.",
      },
      { name: "fuel", doc: "ELECTRICITY or GAS." },
      { name: "gained_on", doc: "Supply start date of the recipient's registration." },
      {
        name: "losing_supplier_mpid",
        doc: "MPID registered for the MPxN before (empty for a new connection).",
      },
      ...DEVICE_COLUMNS,
      {
        name: "cos_credential",
        doc: "CoS credential the device holds at the period's end: TCOS, ECOS or UNKNOWN.",
      },
      { name: "migration_attempts", doc: "Migration attempts made for the device before the period's end." },
      {
        name: "last_attempt_outcome",
        doc: "Outcome of the latest attempt: SUCCEEDED, FAILED, IN_PROGRESS; empty when none.",
      },
      { name: "migrated_at", doc: "When the device's migration succeeded (UTC), empty if it has not." },
    ],
    sql: (p) => {
      const db = p.database;
      const inPeriod = `effective_from >= ${dateLiteral(p.period.from)} AND effective_from < ${dateLiteral(p.period.to)}`;
      const gained = `SELECT gx.mpxn AS mpxn, gx.fuel AS fuel, gx.gained_on AS gained_on,
    argMaxIf(pr.supplier_mpid, pr.effective_from, pr.effective_from < gx.gained_on) AS losing_supplier_mpid
  FROM (
    SELECT mpxn, fuel, effective_from AS gained_on FROM ${db}.registration_history FINAL
    WHERE supplier_mpid = ${supplierLiteral(p.supplier)} AND ${inPeriod}
  ) AS gx
  ALL LEFT JOIN (SELECT mpxn, supplier_mpid, effective_from FROM ${db}.registration_history FINAL) AS pr USING mpxn
  GROUP BY gx.mpxn, gx.fuel, gx.gained_on`;
      const devices = `SELECT supplier_mpxn AS mpxn, device_id, device_type, device_manufacturer, device_model,
    firmware_version, cos_credential
  FROM (${deviceSupplierMpxnSql(db, devicesSql(db, p.period.to))}) WHERE supplier_mpxn != ''`;
      const history = `SELECT device_id, toUInt32(count()) AS migration_attempts,
    argMax(outcome, attempt_number) AS last_attempt_outcome,
    maxIf(ended_at, outcome = 'SUCCEEDED') AS migrated
  FROM (${migrationAttemptsSql(db)}) WHERE started_at < ${to(p)} GROUP BY device_id`;
      return `SELECT mpxn, fuel, toString(gained_on) AS gained_on, losing_supplier_mpid, device_id, device_type,
  device_manufacturer, device_model, firmware_version, cos_credential,
  migration_attempts, last_attempt_outcome, ${timeOrNull("migrated")} AS migrated_at
FROM (
  SELECT g.mpxn AS mpxn, g.fuel AS fuel, g.gained_on AS gained_on, g.losing_supplier_mpid AS losing_supplier_mpid,
    dv.device_id AS device_id, dv.device_type AS device_type, dv.device_manufacturer AS device_manufacturer,
    dv.device_model AS device_model, dv.firmware_version AS firmware_version, dv.cos_credential AS cos_credential
  FROM (${gained}) AS g
  ALL INNER JOIN (${devices}) AS dv USING mpxn
) AS gd
ALL LEFT JOIN (${history}) AS h USING device_id
ORDER BY gained_on, mpxn, device_id`;
    },
  },
  {
    ref: "ECOSMIG-004",
    title: "Summary: device count by Non-Migratable Device Model",
    frequency: "weekly",
    columns: [
      { name: "device_type", doc: "DUIS DeviceType of the model's devices." },
      { name: "device_manufacturer", doc: "DeviceManufacturer of the Non-Migratable Device Model." },
      { name: "device_model", doc: "DeviceModel of the Non-Migratable Device Model." },
      { name: "firmware_version", doc: "DeviceFirmwareVersion the listing applies to." },
      { name: "non_migratable_since", doc: "When DCC listed the model as Non-Migratable (UTC)." },
      {
        name: "firmware_upgrade_by",
        doc: "Who must upgrade the firmware so the devices can migrate: DCC for GPF, SUPPLIER otherwise (EMEHRA).",
      },
      {
        name: "device_count",
        doc: "In-service devices of the model, not yet on ECoS, for which the recipient is Responsible Supplier at the period's end.",
      },
    ],
    sql: (p) => {
      const day = responsibilityDay(p.period);
      const retired = RETIRED_STATUSES.map(stringLiteral).join(", ");
      return `SELECT d.device_type AS device_type, d.device_manufacturer AS device_manufacturer, d.device_model AS device_model,
  d.firmware_version AS firmware_version, toString(n.status_since) AS non_migratable_since,
  if(d.device_type = 'GPF', 'DCC', 'SUPPLIER') AS firmware_upgrade_by, toUInt32(count()) AS device_count
FROM (
  SELECT device_id, device_type, device_manufacturer, device_model, firmware_version
  FROM (${responsibleDevicesSql(p.database, p.period.to, day)})
  WHERE responsible_supplier_mpid = ${supplierLiteral(p.supplier)} AND cos_credential != 'ECOS'
    AND device_status NOT IN (${retired})
) AS d
ALL INNER JOIN (
  SELECT device_manufacturer, device_model, firmware_version, status_since
  FROM (${nonMigratableModelsSql(p.database, p.period.to)}) WHERE status = 'NON_MIGRATABLE'
) AS n USING (device_manufacturer, device_model, firmware_version)
GROUP BY device_type, device_manufacturer, device_model, firmware_version, non_migratable_since, firmware_upgrade_by
ORDER BY device_count DESC, device_type, device_manufacturer, device_model, firmware_version`;
    },
  },
  {
    ref: "ECOSMIG-005",
    title: "Summary: ECoS migration activity for the previous week",
    frequency: "weekly",
    columns: [
      { name: "week_commencing", doc: "First day of the period." },
      { name: "device_type", doc: "DUIS DeviceType the row counts." },
      { name: "devices_attempted", doc: "Distinct devices with an attempt started in the period." },
      { name: "attempts_started", doc: "Attempts started in the period." },
      { name: "migrations_succeeded", doc: "Attempts that ended successfully in the period." },
      { name: "migrations_failed", doc: "Attempts that ended unsuccessfully in the period." },
      { name: "failed_ancillary_systems", doc: "Of those, EMEHRA category (a) ancillary systems." },
      { name: "failed_migration_systems", doc: "Of those, category (b) migration systems and files." },
      { name: "failed_device_data_validation", doc: "Of those, category (c) device data validation." },
      {
        name: "failed_credential_replacement",
        doc: "Of those, category (d) Failed Migrations (replacing the credential failed).",
      },
      {
        name: "success_rate_pct",
        doc: "migrations_succeeded / (succeeded + failed) in per cent, one decimal; empty when none ended.",
      },
    ],
    sql: (p) => {
      const started = `started_at >= ${from(p)} AND started_at < ${to(p)}`;
      const ended = `ended_at >= ${from(p)} AND ended_at < ${to(p)}`;
      const failedIn = (category: string): string =>
        `toUInt32(countIf(outcome = 'FAILED' AND ${ended} AND error_category = '${category}'))`;
      return `SELECT toString(${dateLiteral(p.period.from)}) AS week_commencing, device_type,
  toUInt32(uniqExactIf(device_id, ${started})) AS devices_attempted,
  toUInt32(countIf(${started})) AS attempts_started,
  toUInt32(countIf(outcome = 'SUCCEEDED' AND ${ended})) AS migrations_succeeded,
  toUInt32(countIf(outcome = 'FAILED' AND ${ended})) AS migrations_failed,
  ${failedIn("ANCILLARY_SYSTEMS")} AS failed_ancillary_systems,
  ${failedIn("MIGRATION_SYSTEMS")} AS failed_migration_systems,
  ${failedIn("DEVICE_DATA_VALIDATION")} AS failed_device_data_validation,
  ${failedIn("FAILED_MIGRATION")} AS failed_credential_replacement,
  if(migrations_succeeded + migrations_failed = 0, NULL,
     round(100 * migrations_succeeded / (migrations_succeeded + migrations_failed), 1)) AS success_rate_pct
FROM (${routedAttempts(p, `(${started}) OR (${ended})`)})
GROUP BY device_type
ORDER BY device_type`;
    },
  },
  {
    ref: "ECOSMIG-006",
    title: "Detail: newly installed ECoS devices",
    frequency: "monthly",
    columns: [
      ...DEVICE_COLUMNS,
      MPXN_COLUMN,
      { name: "chf_device_id", doc: "Communications Hub Function the device is connected to." },
      { name: "commissioned_at", doc: "DateCommissioned (UTC), within the period." },
      {
        name: "cos_credential",
        doc: "ECOS: installed with the ECoS credential (devices that reached ECoS by migration are not listed).",
      },
    ],
    sql: (p) => {
      const day = responsibilityDay(p.period);
      return `SELECT device_id, device_type, device_manufacturer, device_model, firmware_version, supplier_mpxn AS mpxn,
  chf_device_id, toString(commissioned) AS commissioned_at, cos_credential
FROM (
  SELECT device_id, device_type, device_manufacturer, device_model, firmware_version, supplier_mpxn, chf_device_id,
    commissioned_at AS commissioned, cos_credential
  FROM (${responsibleDevicesSql(p.database, p.period.to, day)})
  WHERE responsible_supplier_mpid = ${supplierLiteral(p.supplier)} AND cos_credential = 'ECOS'
    AND device_type IN ('ESME', 'GSME', 'GPF')
    AND commissioned_at >= ${from(p)} AND commissioned_at < ${to(p)} AND commissioned_at != ${NO_TIME}
    AND device_id NOT IN (SELECT device_id FROM (${migrationAttemptsSql(p.database)}) WHERE outcome = 'SUCCEEDED')
)
ORDER BY commissioned, device_id`;
    },
  },
];

export function reportDefinition(ref: string): ReportDefinition {
  const def = REPORTS.find((r) => r.ref === ref.toUpperCase());
  if (!def) {
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `unknown report ${JSON.stringify(ref)}: expected one of ${REPORTS.map((r) => r.ref).join(", ")}`,
    );
  }
  return def;
}

/** Runs a report and checks its columns are the documented ones. */
export async function runReport(
  conn: ClickHouseConnection,
  def: ReportDefinition,
  params: ReportParams,
): Promise<QueryResult> {
  const result = await conn.query(def.sql(params));
  const names = result.columns.map((c) => c.name);
  const expected = def.columns.map((c) => c.name);
  if (names.join() !== expected.join()) {
    throw new EcosError(
      "ECOS_CLICKHOUSE_FAILED",
      `${def.ref} returned columns ${names.join(", ")}, expected ${expected.join(", ")}`,
    );
  }
  return result;
}

/**
 * Suppliers with data to report on: every MPID in Registration Data plus those named by migration
 * events (for devices unknown to the inventory).
 */
export async function knownSuppliers(conn: ClickHouseConnection, database: string): Promise<string[]> {
  const res = await conn.query(
    `SELECT DISTINCT supplier_mpid AS mpid FROM ${database}.registration_history
     UNION ALL SELECT DISTINCT ifNull(responsible_supplier_mpid, '') AS mpid FROM ${database}.migration_events`,
  );
  return [...new Set(res.rows.map(([m]) => String(m)).filter((m) => /^[A-Z0-9]{2,8}$/.test(m)))].sort();
}
