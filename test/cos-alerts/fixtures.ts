/**
 * The N65 tests' cast: times around an ECoS go-live, devices, hubs, an MPAN, users, and builders of
 * inventory snapshots and registrations (the in-process topology test and the real-broker
 * `ecos run --kafka` test share them).
 */
import type { DccUser } from "../../processors/dsp/csv";
import { MPAN, registration } from "../dsp/fixtures";
import type { DeviceSnapshot } from "../../schemas/event-records";

export const GO_LIVE = Date.parse("2026-06-01T00:00:00Z");
export const AFTER = Date.parse("2026-07-10T09:00:00Z");
export const BEFORE = Date.parse("2026-05-20T09:00:00Z");
export const DAY = 86_400_000;

export const ESME = "00-DB-12-34-56-78-90-A0";
export const GPF = "00-DB-12-34-56-78-90-B0";
export const CHF_1 = "00-DB-12-34-56-78-90-C1";
export const CHF_2 = "00-DB-12-34-56-78-90-C2";

export const USER_A = "90-B3-D5-1F-30-01-00-00";
export const USER_A_GAS = "90-B3-D5-1F-30-01-00-01";
export const USER_B = "90-B3-D5-1F-30-03-00-00";

export const USERS: DccUser[] = [
  { userId: USER_A, roles: ["IS"], status: "ACTIVE", mpids: ["ACEE", "ACG"] },
  { userId: USER_A_GAS, roles: ["GS"], status: "ACTIVE", mpids: ["ACEE", "ACG"] },
  { userId: USER_B, roles: ["IS", "GS"], status: "ACTIVE", mpids: ["BBEE"] },
];

export function snapshot(overrides: Partial<DeviceSnapshot> = {}): DeviceSnapshot {
  return {
    deviceId: ESME,
    deviceType: "ESME",
    deviceManufacturer: "ACME",
    deviceModel: "M1",
    firmwareVersion: "1.0",
    smetsGeneration: "SMETS2",
    deviceStatus: "COMMISSIONED",
    chfDeviceId: CHF_1,
    importMpxn: MPAN,
    cosCredential: "TCOS",
    commissionedAt: null,
    snapshotAt: AFTER,
    ...overrides,
  };
}

// The DSP tests' Registration Data fixture and its MPAN serve here unchanged.
export { MPAN, registration };
