/**
 * Strict CSV readers for the DSP reference data: Registration Data, the Smart Metering Inventory and
 * the DCC Users directory. Columns are documented in docs/dsp-validation.md. Every problem stops the
 * load with ECOS_REFERENCE_DATA_INVALID naming the source, the line and the column: a reference table
 * loaded half-right would accept or reject Service Requests wrongly.
 *
 * Format: UTF-8, a header line with exactly the documented column names (any order), comma-separated,
 * no quoting (no value needs a comma), blank lines and lines starting with `#` ignored.
 */
import { EcosError } from "../runtime/errors";
import { normaliseEui64 } from "../../workers/smki/certificate";
import type {
  CosCredential,
  DeviceSnapshot,
  DeviceStatus,
  DeviceType,
  SmetsGeneration,
  SupplierRegistration,
} from "../../schemas/event-records";
import { epochDay } from "./reference-data";

export const REGISTRATION_COLUMNS = [
  "mpxn",
  "fuel",
  "supplier_mpid",
  "effective_from",
  "effective_to",
  "registration_version",
] as const;

export const INVENTORY_COLUMNS = [
  "device_id",
  "device_type",
  "smets_generation",
  "device_status",
  "import_mpxn",
  "cos_credential",
  "manufacturer",
  "model",
  "firmware_version",
  "chf_device_id",
  "commissioned_at",
] as const;

export const USER_COLUMNS = ["user_id", "roles", "status", "mpids"] as const;

const DEVICE_TYPES: readonly DeviceType[] = ["ESME", "GSME", "GPF", "CHF", "HCALCS", "PPMID", "IHD", "CAD"];
const DEVICE_STATUSES: readonly DeviceStatus[] = [
  "PENDING",
  "WHITELISTED",
  "INSTALLED_NOT_COMMISSIONED",
  "COMMISSIONED",
  "DECOMMISSIONED",
  "WITHDRAWN",
  "SUSPENDED",
  "RECOVERY",
  "RECOVERED",
];
const COS_CREDENTIALS: readonly CosCredential[] = ["TCOS", "ECOS", "UNKNOWN"];
const SMETS: readonly SmetsGeneration[] = ["SMETS1", "SMETS2"];

/** A DCC User as the DSP knows it (SEC party/role register), for user-role and mpid-in-cert. */
export interface DccUser {
  readonly userId: string;
  /** User Roles, e.g. IS (Import Supplier), GS (Gas Supplier), ES, RSA, ED, GT, OU. */
  readonly roles: readonly string[];
  /** ACTIVE, or anything else (e.g. SUSPENDED) which the user-role check refuses. */
  readonly status: string;
  /** The MPIDs of the User's Supplier Party. */
  readonly mpids: readonly string[];
}

/** One data line; `get` takes a column of the header (checked when the header is read). */
type Row<_C extends string = string> = { readonly line: number; readonly get: (c: string) => string };

function fail(source: string, line: number, column: string | null, message: string): never {
  const where = column ? `${source}, line ${line}, column ${column}` : `${source}, line ${line}`;
  throw new EcosError("ECOS_REFERENCE_DATA_INVALID", `${where}: ${message}`, {
    context: { source, line, ...(column ? { column } : {}) },
  });
}

function* rows<C extends string>(text: string, source: string, columns: readonly C[]): Generator<Row<C>> {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  let header: string[] | null = null;
  let index = new Map<string, number>();
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const lineNo = i + 1;
    if (raw.trim() === "" || raw.startsWith("#")) continue;
    if (raw.includes('"')) fail(source, lineNo, null, "quotes are not accepted (no value needs them)");
    const cells = raw.split(",").map((c) => c.trim());
    if (!header) {
      header = cells;
      const seen = new Set<string>();
      for (const h of header) {
        if (!(columns as readonly string[]).includes(h))
          fail(source, lineNo, h, `unknown column; expected ${columns.join(",")}`);
        if (seen.has(h)) fail(source, lineNo, h, "column named twice");
        seen.add(h);
      }
      for (const c of columns) if (!seen.has(c)) fail(source, lineNo, c, "column missing from the header");
      index = new Map(header.map((h, k) => [h, k]));
      continue;
    }
    if (cells.length !== header.length)
      fail(source, lineNo, null, `${cells.length} values, but the header has ${header.length} columns`);
    yield { line: lineNo, get: (c: string) => cells[index.get(c)!]! };
  }
  if (!header) fail(source, 1, null, "no header line");
}

function required(source: string, row: Row<string>, column: string): string {
  const v = row.get(column);
  if (v === "") fail(source, row.line, column, "value required");
  return v;
}

function oneOf<T extends string>(source: string, row: Row<string>, column: string, allowed: readonly T[]): T {
  const v = required(source, row, column).toUpperCase();
  if (!(allowed as readonly string[]).includes(v))
    fail(source, row.line, column, `"${row.get(column)}" is not one of ${allowed.join(", ")}`);
  return v as T;
}

function date(source: string, row: Row<string>, column: string): number {
  const v = required(source, row, column);
  try {
    return epochDay(v);
  } catch (err) {
    return fail(source, row.line, column, (err as Error).message);
  }
}

function mpxn(source: string, row: Row<string>, column: string): string {
  const v = required(source, row, column);
  if (!/^\d{1,13}$/.test(v))
    fail(source, row.line, column, `"${v}" is not an MPAN core or MPRN (1–13 digits)`);
  return v;
}

function mpid(source: string, row: Row<string>, column: string, v: string): string {
  // Electricity supplier MPIDs have 4 characters, gas supplier ids 3 (seed 001: "ACEE ACG").
  if (!/^[A-Z0-9]{3,4}$/.test(v))
    fail(source, row.line, column, `"${v}" is not an MPID (3 or 4 capitals or digits)`);
  return v;
}

function deviceId(source: string, row: Row<string>, column: string, v: string): string {
  const id = normaliseEui64(v);
  if (!id) fail(source, row.line, column, `"${v}" is not an EUI-64 device id (e.g. 00-DB-12-34-56-78-90-A0)`);
  return id;
}

/** Registration Data rows as SupplierRegistration records (receivedAt = `receivedAt`). */
export function parseRegistrationCsv(
  text: string,
  source: string,
  receivedAt: number,
): SupplierRegistration[] {
  const out: SupplierRegistration[] = [];
  for (const row of rows(text, source, REGISTRATION_COLUMNS)) {
    const fuel = oneOf(source, row, "fuel", ["ELECTRICITY", "GAS"] as const);
    const m = mpxn(source, row, "mpxn");
    if (fuel === "ELECTRICITY" && m.length !== 13)
      fail(source, row.line, "mpxn", `an electricity MPAN core has 13 digits, "${m}" has ${m.length}`);
    if (fuel === "GAS" && m.length > 10)
      fail(source, row.line, "mpxn", `an MPRN has at most 10 digits, "${m}" has ${m.length}`);
    const from = date(source, row, "effective_from");
    const to = row.get("effective_to") === "" ? null : date(source, row, "effective_to");
    if (to !== null && to <= from)
      fail(
        source,
        row.line,
        "effective_to",
        "must be after effective_from (it is the first day of the next period)",
      );
    const version = required(source, row, "registration_version");
    if (!/^(0|[1-9]\d{0,14})$/.test(version))
      fail(source, row.line, "registration_version", `"${version}" is not a non-negative integer`);
    out.push({
      mpxn: m,
      fuel,
      supplierMpid: mpid(source, row, "supplier_mpid", required(source, row, "supplier_mpid")),
      effectiveFrom: from,
      effectiveTo: to,
      registrationVersion: Number(version),
      receivedAt,
    });
  }
  return out;
}

/** Inventory rows as DeviceSnapshot records (snapshotAt = `snapshotAt`). */
export function parseInventoryCsv(text: string, source: string, snapshotAt: number): DeviceSnapshot[] {
  const out: DeviceSnapshot[] = [];
  const seen = new Set<string>();
  for (const row of rows(text, source, INVENTORY_COLUMNS)) {
    const id = deviceId(source, row, "device_id", required(source, row, "device_id"));
    if (seen.has(id)) fail(source, row.line, "device_id", `device ${id} appears twice`);
    seen.add(id);
    const chf = row.get("chf_device_id");
    const commissioned = row.get("commissioned_at");
    let commissionedAt: number | null = null;
    if (commissioned !== "") {
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(commissioned))
        fail(source, row.line, "commissioned_at", `"${commissioned}" is not an ISO-8601 time with a zone`);
      commissionedAt = Date.parse(commissioned);
      if (Number.isNaN(commissionedAt))
        fail(source, row.line, "commissioned_at", `"${commissioned}" is not a valid time`);
    }
    out.push({
      deviceId: id,
      deviceType: oneOf(source, row, "device_type", DEVICE_TYPES),
      smetsGeneration: oneOf(source, row, "smets_generation", SMETS),
      deviceStatus: oneOf(source, row, "device_status", DEVICE_STATUSES),
      importMpxn: row.get("import_mpxn") === "" ? null : mpxn(source, row, "import_mpxn"),
      cosCredential: oneOf(source, row, "cos_credential", COS_CREDENTIALS),
      deviceManufacturer: row.get("manufacturer"),
      deviceModel: row.get("model"),
      firmwareVersion: row.get("firmware_version"),
      chfDeviceId: chf === "" ? null : deviceId(source, row, "chf_device_id", chf),
      commissionedAt,
      snapshotAt,
    });
  }
  return out;
}

/** DCC Users rows; roles and mpids are `|`-separated lists. */
export function parseUsersCsv(text: string, source: string): DccUser[] {
  const out: DccUser[] = [];
  for (const row of rows(text, source, USER_COLUMNS)) {
    const id = deviceId(source, row, "user_id", required(source, row, "user_id"));
    const roles = required(source, row, "roles")
      .split("|")
      .map((r) => r.trim().toUpperCase());
    for (const r of roles)
      if (!/^[A-Z]{2,4}$/.test(r)) fail(source, row.line, "roles", `"${r}" is not a User Role`);
    const list = row.get("mpids");
    out.push({
      userId: id,
      roles,
      status: required(source, row, "status").toUpperCase(),
      mpids: list === "" ? [] : list.split("|").map((m) => mpid(source, row, "mpids", m.trim())),
    });
  }
  return out;
}
