/**
 * The DSP's reference data: Registration Data (effective-dated, keyed by MPxN) and the Smart Metering
 * Inventory (keyed by device id), as held in state stores fed from the compacted topics
 * registration.changes (ecos.registration.SupplierRegistration) and inventory.devices
 * (ecos.inventory.DeviceSnapshot).
 *
 * Registration is time-indexed (reference §9.1): "the registered supplier of an MPxN on day D" is the
 * period with effectiveFrom ≤ D < effectiveTo. Updates arrive late and get corrected: a period is
 * identified by (mpxn, effectiveFrom) and the highest registrationVersion of it wins, whatever the
 * order of arrival, so the store value is the whole history of an MPxN.
 */
import type { KeyValueStore } from "../runtime/stores";
import type { DeviceSnapshot, SupplierRegistration } from "../../schemas/event-records";

// ---- Dates ------------------------------------------------------------------------------------------

const DAY_MS = 86_400_000;

const londonDay = new Intl.DateTimeFormat("en-CA", {
  timeZone: "Europe/London",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
});

/** Days since 1970-01-01 of an ISO calendar date `YYYY-MM-DD` (no time zone: a calendar day). */
export function epochDay(isoDate: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(isoDate);
  if (!m) throw new RangeError(`"${isoDate}" is not a date of the form YYYY-MM-DD`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(y, mo - 1, d);
  const back = new Date(t);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d)
    throw new RangeError(`"${isoDate}" is not a calendar date`);
  return t / DAY_MS;
}

/** `YYYY-MM-DD` of an epoch day. */
export function isoDate(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** The UK calendar day (Europe/London, so BST-aware) of an instant, as days since 1970-01-01. */
export function ukCalendarDay(epochMs: number): number {
  return epochDay(londonDay.format(new Date(epochMs)));
}

/**
 * The switch date of a 6.23 (reference §0.1 item 4, §9.1): the UK calendar day of the execution time
 * for a future-dated request, else the UK calendar day of receipt (immediate requests, and
 * cancellations, whose 3000-12-31 sentinel is not a date of supply). [GAP] the DCC's time-zone
 * convention is not confirmed; supply start dates are UK calendar days, so Europe/London is used.
 */
export function switchDate(
  request: {
    readonly form: "immediate" | "future-dated" | "cancellation";
    readonly executionTime: number | null;
  },
  receivedAt: number,
): number {
  if (request.form === "future-dated" && request.executionTime !== null)
    return ukCalendarDay(request.executionTime);
  return ukCalendarDay(receivedAt);
}

// ---- Registration Data ----------------------------------------------------------------------------

/** One period of an MPxN's registration as kept in the store (dates as epoch days). */
export interface RegistrationPeriod {
  readonly supplierMpid: string;
  readonly effectiveFrom: number;
  readonly effectiveTo: number | null;
  readonly registrationVersion: number;
}

/** The store value: every period of one MPxN, sorted by effectiveFrom. */
export interface RegistrationHistory {
  readonly mpxn: string;
  readonly fuel: "ELECTRICITY" | "GAS";
  readonly periods: readonly RegistrationPeriod[];
}

/**
 * Merges one Registration Data record into an MPxN's history: a new period is added; a period with
 * the same effectiveFrom is replaced only by a higher registrationVersion (a late, older version is
 * ignored). Returns the history unchanged (same object) when the record changes nothing.
 */
export function mergeRegistration(
  history: RegistrationHistory | undefined,
  r: SupplierRegistration,
): RegistrationHistory {
  const period: RegistrationPeriod = {
    supplierMpid: r.supplierMpid,
    effectiveFrom: r.effectiveFrom,
    effectiveTo: r.effectiveTo,
    registrationVersion: r.registrationVersion,
  };
  if (!history) return { mpxn: r.mpxn, fuel: r.fuel, periods: [period] };
  const existing = history.periods.find((p) => p.effectiveFrom === r.effectiveFrom);
  if (existing && existing.registrationVersion >= r.registrationVersion) return history;
  const periods = history.periods.filter((p) => p.effectiveFrom !== r.effectiveFrom);
  periods.push(period);
  periods.sort((a, b) => a.effectiveFrom - b.effectiveFrom);
  return { mpxn: history.mpxn, fuel: r.fuel, periods };
}

/**
 * The supplier MPID registered for the MPxN on `day` (epoch days): the latest period starting on or
 * before the day, unless it has ended by then (effectiveTo ≤ day) — an MPxN can be unregistered.
 * A later period's start also ends the one before it, even when that one's effectiveTo was never
 * corrected.
 */
export function registeredPeriodAsOf(
  history: RegistrationHistory | undefined,
  day: number,
): RegistrationPeriod | null {
  if (!history) return null;
  let hit: RegistrationPeriod | null = null;
  for (const p of history.periods) if (p.effectiveFrom <= day) hit = p;
  if (!hit || (hit.effectiveTo !== null && hit.effectiveTo <= day)) return null;
  return hit;
}

/** Registration Data over a store keyed by MPxN. */
export class RegistrationTable {
  constructor(private readonly store: KeyValueStore<RegistrationHistory>) {}

  /** Applies one record from registration.changes; returns true when the history changed. */
  apply(r: SupplierRegistration): boolean {
    const before = this.store.get(r.mpxn);
    const after = mergeRegistration(before, r);
    if (after === before) return false;
    this.store.put(r.mpxn, after);
    return true;
  }

  history(mpxn: string): RegistrationHistory | undefined {
    return this.store.get(mpxn);
  }

  /** The registered supplier MPID of `mpxn` on `day` (epoch days or `YYYY-MM-DD`), or null. */
  mpidAsOf(mpxn: string, day: number | string): string | null {
    const d = typeof day === "string" ? epochDay(day) : day;
    return registeredPeriodAsOf(this.store.get(mpxn), d)?.supplierMpid ?? null;
  }
}

// ---- Smart Metering Inventory ---------------------------------------------------------------------

/** The Smart Metering Inventory over a store keyed by device id (latest snapshot wins). */
export class InventoryTable {
  constructor(private readonly store: KeyValueStore<DeviceSnapshot>) {}

  /** Applies one snapshot; an older snapshot than the one held (late arrival) is ignored. */
  apply(s: DeviceSnapshot): boolean {
    const held = this.store.get(s.deviceId);
    if (held && held.snapshotAt > s.snapshotAt) return false;
    this.store.put(s.deviceId, s);
    return true;
  }

  device(deviceId: string): DeviceSnapshot | undefined {
    return this.store.get(deviceId);
  }
}
