/**
 * The simulated estate from inventory records (schemas/ecos.inventory.DeviceSnapshot.avsc): SMETS2
 * devices become fleet devices holding the CoS Party certificate their `cosCredential` names (ECoS or
 * TCoS; UNKNOWN is taken as ECoS) and the losing supplier's certificates; SMETS1 devices are the
 * S1SP's. `seededInventory` gives the same devices as the load generator (bench/dsp-load.ts) for a
 * seed, so the simulators answer for exactly the devices the pipeline sends to.
 */
import type { DeviceSnapshot } from "../../schemas/event-records";
import { generateDspLoad } from "../../bench/dsp-load";
import type { FleetCredentials } from "./credentials";
import type { FleetDevice } from "./fleet";
import type { S1spDevice } from "./s1sp";

/** Inventory devices as the load generator makes them for `seed` (10% SMETS1, a third TCoS). */
export function seededInventory(devices: number, seed: string): DeviceSnapshot[] {
  return generateDspLoad({ requests: 0, devices, seed }).devices;
}

export function fleetDevice(snapshot: DeviceSnapshot, creds: FleetCredentials): FleetDevice {
  return {
    model: snapshot.deviceModel,
    state: {
      deviceId: snapshot.deviceId,
      root: creds.root,
      transitionalCoS: snapshot.cosCredential === "TCOS" ? creds.tcosParty : creds.ecosParty,
      supplierCells: {
        digitalSignature: creds.losingDs,
        keyAgreement: creds.losingKa,
        keyAgreementTopUp: creds.losingKaTopUp,
      },
      floors: { transitionalCoS: 0n, supplier: 0n, supplierPrepaymentTopUp: 0n },
      pending: null,
    },
    pendingRequestId: null,
    pendingCommand: null,
    alertCounter: 0n,
  };
}

/** The fleet's devices (SMETS2) and the S1SP's (SMETS1) of an inventory. */
export function splitInventory(
  snapshots: readonly DeviceSnapshot[],
  creds: FleetCredentials,
): { fleet: Array<[string, FleetDevice]>; s1sp: Array<[string, S1spDevice]> } {
  const fleet: Array<[string, FleetDevice]> = [];
  const s1sp: Array<[string, S1spDevice]> = [];
  for (const s of snapshots) {
    if (s.smetsGeneration === "SMETS2") fleet.push([s.deviceId, fleetDevice(s, creds)]);
    else s1sp.push([s.deviceId, { model: s.deviceModel, supplierId: null, seen: [], pending: null }]);
  }
  return { fleet, s1sp };
}
