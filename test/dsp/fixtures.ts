/** Shared fixtures for the dsp-validate tests: reference data, a driver, signed requests. */
import { InProcessDriver, type OutputRecord } from "../../processors/runtime/in-process-driver";
import type { DccUser } from "../../processors/dsp/csv";
import { epochDay } from "../../processors/dsp/reference-data";
import {
  buildDspValidateTopology,
  dspTopics,
  jsonDspSerdes,
  type DspValidateOptions,
  type ServiceRequestEnvelope,
} from "../../processors/dsp/topology";
import { InlineDspVerifier, type DspVerifierPort } from "../../processors/dsp/verifier";
import type {
  DeviceSnapshot,
  RequestStageEvent,
  ServiceResponseEvent,
  SupplierRegistration,
} from "../../schemas/event-records";
import type { TestCredential } from "../../workers/testing/test-pki";
import { DEVICE_ID, RECEIVED_AT, cast } from "../workers/fixtures";

export { DEVICE_ID, RECEIVED_AT, cast };
export const MPAN = "1312345678333";
export const SUPPLIER = "90-B3-D5-1F-30-01-00-00";

let dsSigner: TestCredential | undefined;
/** The supplier's DS certificate, known to the trust store so that signing with it reaches signer-role. */
export function dsAsSigner(): TestCredential {
  dsSigner ??= cast().pki.issue("ds-as-signer", { ou: "02", entityId: cast().supplierId }, [
    "digitalSignature",
  ]);
  return dsSigner;
}

export function device(overrides: Partial<DeviceSnapshot> = {}): DeviceSnapshot {
  return {
    deviceId: DEVICE_ID,
    deviceType: "ESME",
    deviceManufacturer: "ACME",
    deviceModel: "M1",
    firmwareVersion: "1.0",
    smetsGeneration: "SMETS2",
    deviceStatus: "COMMISSIONED",
    chfDeviceId: null,
    importMpxn: MPAN,
    cosCredential: "ECOS",
    commissionedAt: null,
    snapshotAt: 1,
    ...overrides,
  };
}

export function registration(overrides: Partial<SupplierRegistration> = {}): SupplierRegistration {
  return {
    mpxn: MPAN,
    fuel: "ELECTRICITY",
    supplierMpid: "ACEE",
    effectiveFrom: epochDay("2026-01-01"),
    effectiveTo: null,
    registrationVersion: 1,
    receivedAt: 1,
    ...overrides,
  };
}

export const SUPPLIER_USER: DccUser = {
  userId: SUPPLIER,
  roles: ["IS", "GS"],
  status: "ACTIVE",
  mpids: ["ACEE", "ACG"],
};

export interface DspRig {
  readonly driver: InProcessDriver;
  readonly verifier: DspVerifierPort;
  submit(bytes: Buffer | string, receivedAt?: number, key?: string | null): Promise<void>;
  responses(): Promise<OutputRecord<ServiceResponseEvent>[]>;
  stages(): Promise<OutputRecord<RequestStageEvent>[]>;
  toCosParty(party: "ecos" | "tcos"): Promise<OutputRecord<ServiceRequestEnvelope>[]>;
  toAnomaly(): Promise<OutputRecord<ServiceRequestEnvelope>[]>;
}

export interface RigOptions {
  readonly devices?: readonly DeviceSnapshot[];
  readonly registrations?: readonly SupplierRegistration[];
  readonly users?: readonly DccUser[] | null;
  readonly verifier?: DspVerifierPort;
  readonly partitions?: number;
  readonly extra?: Partial<DspValidateOptions>;
}

export async function dspRig(o: RigOptions = {}): Promise<DspRig> {
  const c = cast();
  const verifier =
    o.verifier ??
    new InlineDspVerifier({
      trust: c.pki.trust([c.supplierXmlSign, c.dspXmlSign, dsAsSigner()]),
      countersignWith: { scalar: c.dspXmlSign.scalar, certificate: c.dspXmlSign.der },
    });
  const serdes = jsonDspSerdes();
  const users =
    o.users === null ? undefined : new Map((o.users ?? [SUPPLIER_USER]).map((u) => [u.userId, u]));
  const topology = buildDspValidateTopology({ serdes, verifier, ...(users ? { users } : {}), ...o.extra });
  const driver = await InProcessDriver.create(topology, {
    applicationId: "dsp-test",
    partitions: o.partitions ?? 1,
    startTimeMs: RECEIVED_AT,
  });
  const t = dspTopics();
  await driver.pipeInput(
    t.inventory,
    (o.devices ?? [device()]).map((d) => ({ key: d.deviceId, value: d })),
    serdes.inventory,
  );
  await driver.pipeInput(
    t.registration,
    (o.registrations ?? [registration()]).map((r) => ({ key: r.mpxn, value: r })),
    serdes.registration,
  );
  return {
    driver,
    verifier,
    async submit(bytes, receivedAt = RECEIVED_AT, key = DEVICE_ID) {
      const value = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
      await driver.pipeRaw(t.requests, [
        { key: key === null ? null : Buffer.from(key), value, timestamp: receivedAt },
      ]);
    },
    responses: () => driver.readOutput(t.responses, serdes.response),
    stages: () => driver.readOutput(t.stages, serdes.stage),
    toCosParty: (party) => driver.readOutput(party === "ecos" ? t.ecosParty : t.tcosParty, serdes.envelope),
    toAnomaly: () => driver.readOutput(t.anomaly, serdes.envelope),
  };
}
