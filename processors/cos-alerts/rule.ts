/**
 * The N65 inventory rule (reference §0.1 "Inventory alert", seed 003 §3.4), as pure functions over a
 * device's previous and current inventory snapshot: did the device join a Communications Hub
 * Function's device log, and does the CoS credential it holds belong to a CoS Party that no longer
 * serves it? Which credentials are "not serving", from when, and the alert's code and shape are data
 * ([GAP]/[I] in reference §7.2), never constants in the processors.
 */
import type { CosCredential, DeviceSnapshot } from "../../schemas/event-records";
import type { DccUser } from "../dsp/csv";

/** From `from` (timestamp-millis) on, a device holding `credential` holds a CoS certificate of a CoS Party that does not serve it. */
export interface NotServingCredential {
  readonly credential: CosCredential;
  readonly from: number;
  /** Why, for the alert's detail, e.g. "ECoS go-live" or "TCoS decommission". */
  readonly reason: string;
}

/** Alert code and DUIS shape of the CoS certificate alert ([I] N65 ↔ CoSCertificateAlert, reference §7.2). */
export interface CosCertificateAlertCode {
  readonly alertCode: string;
  readonly alertType: string;
}

export const DEFAULT_COS_CERTIFICATE_ALERT: CosCertificateAlertCode = Object.freeze({
  alertCode: "N65",
  alertType: "CoSCertificateAlert",
});

/** The default table: a TCoS certificate does not serve a device once ECoS is live (reference §0.1). */
export function defaultNotServing(ecosGoLiveAt: number): readonly NotServingCredential[] {
  return Object.freeze([{ credential: "TCOS", from: ecosGoLiveAt, reason: "ECoS go-live" }]);
}

/** The entry that makes `credential` not serving at `at`, or null when the credential serves the device then. */
export function notServingAt(
  table: readonly NotServingCredential[],
  credential: CosCredential,
  at: number,
): NotServingCredential | null {
  let hit: NotServingCredential | null = null;
  for (const e of table)
    if (e.credential === credential && e.from <= at && (!hit || e.from < hit.from)) hit = e;
  return hit;
}

/** What the detector remembers per device (store value): the CHF whose device log it is on. */
export interface DeviceHubMemory {
  readonly chfDeviceId: string | null;
  readonly snapshotAt: number;
}

/**
 * Whether `current` records the device being added to a CHF's device log: it names a CHF and the
 * previous snapshot named none or another one. A device never seen before that already names a CHF
 * counts as joining it (decided: the replica cannot tell an install from a first load; docs).
 */
export function joinedHub(previous: DeviceHubMemory | undefined, current: DeviceSnapshot): boolean {
  return current.chfDeviceId !== null && current.chfDeviceId !== (previous?.chfDeviceId ?? null);
}

/** The supplier role that is Responsible Supplier for an MPxN of the fuel (Import Supplier / Gas Supplier). */
export function supplierRoleFor(fuel: "ELECTRICITY" | "GAS"): string {
  return fuel === "ELECTRICITY" ? "IS" : "GS";
}

/**
 * The User IDs of the Supplier Party with `mpid` acting in the supplier role for the fuel, from the
 * DSP's users directory (processors/dsp/csv.ts parseUsersCsv). Only ACTIVE users; sorted, so the
 * outcome does not depend on the directory's order.
 */
export function supplierUserIds(
  users: ReadonlyMap<string, DccUser>,
  mpid: string,
  fuel: "ELECTRICITY" | "GAS",
): string[] {
  const role = supplierRoleFor(fuel);
  const out: string[] = [];
  for (const u of users.values())
    if (u.status === "ACTIVE" && u.roles.includes(role) && u.mpids.includes(mpid)) out.push(u.userId);
  return out.sort();
}

/**
 * Deterministic alert id: the same join (device, hub, snapshot time) to the same recipient always
 * gets the same id, so a re-emitted alert (redelivery, replay of the inventory) is stored once.
 */
export function cosCertificateAlertId(
  code: string,
  deviceId: string,
  chfDeviceId: string,
  snapshotAt: number,
  recipientUserId: string,
): string {
  return `${code}:${deviceId}:${chfDeviceId}:${snapshotAt}:${recipientUserId}`;
}
