/** Shared fixtures of the simulator tests: a seeded PKI, devices, and commands signed by a CoS Party. */
import type { DeviceCommand, S1spRequest } from "../../processors/cos/records";
import type { DeviceSnapshot } from "../../schemas/event-records";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import {
  buildPreCommand,
  DUIS_CANCELLATION_MS,
  payloadFor623,
  type Srv623Credentials,
} from "../../workers/gbcs/pre-command";
import { castSrv623Xml, type Srv623XmlOptions, type TestCredential } from "../../workers/testing/test-pki";
import { parseXml } from "../../workers/xml/parser";
import { countersignDuisDocument, signDuisDocument } from "../../workers/xmldsig/duis-signature";
import { simulatorConfig, type BehaviourProfile, type SimulatorConfig } from "../../deploy/sim/config";
import { deviceKeyring, seededCredentials, SIM_ECOS_PARTY_ID } from "../../deploy/sim/credentials";
import { DeviceFleet } from "../../deploy/sim/fleet";
import { fleetDevice } from "../../deploy/sim/inventory";

export const ecdsa = opensslEcdsa;
export const creds = seededCredentials("sim-test");
export const cast = creds.cast;
export const NOW = Date.UTC(2027, 0, 1, 12, 0, 0);
export const ESME = "00-DB-00-00-00-00-00-01";

export function snapshot(deviceId: string, o: Partial<DeviceSnapshot> = {}): DeviceSnapshot {
  return {
    deviceId,
    deviceType: "ESME",
    deviceManufacturer: "ACME",
    deviceModel: "M1",
    firmwareVersion: "1.0",
    smetsGeneration: "SMETS2",
    deviceStatus: "COMMISSIONED",
    chfDeviceId: null,
    importMpxn: "1300000000001",
    cosCredential: "ECOS",
    commissionedAt: null,
    snapshotAt: 1,
    ...o,
  };
}

export function fleetOf(
  config: Partial<SimulatorConfig>,
  devices: readonly DeviceSnapshot[] = [snapshot(ESME)],
): DeviceFleet {
  return new DeviceFleet({
    config: simulatorConfig({ seed: "sim-test", ...config }),
    devices: devices.map(
      (s) => [s.deviceId, fleetDevice(s, creds)] as [string, ReturnType<typeof fleetDevice>],
    ),
    ecdsa,
    deviceKey: deviceKeyring("sim-test", ecdsa),
  });
}

export function fixedProfile(ms: number, o: Partial<BehaviourProfile> = {}): BehaviourProfile {
  return {
    latency: { kind: "fixed", ms },
    lossRate: 0,
    timeoutRate: 0,
    lateLatency: { kind: "fixed", ms: 60_000 },
    failureRates: {},
    ...o,
  };
}

export function credentials623(o: Partial<Srv623Credentials> = {}): Srv623Credentials {
  return {
    supplierFloorSeqNumber: 0n,
    supplierPrepaymentTopUpFloorSeqNumber: 0n,
    digitalSigningCertificate: cast.replacementDs.der,
    keyAgreementCertificate: cast.replacementKa.der,
    keyAgreementTopUpCertificate: cast.replacementKaTopUp.der,
    certificationPathCertificates: [cast.pki.oca.der],
    applyTimeBasedCpvChecks: true,
    ...o,
  };
}

/** A DeviceCommand carrying a pre-command signed by the CoS Party (ECoS by default). */
export function deviceCommand(
  counter: bigint,
  o: {
    deviceId?: string;
    request?: Partial<Srv623Credentials>;
    signer?: TestCredential;
    cosPartyId?: string;
    requestId?: string;
  } = {},
): DeviceCommand {
  const deviceId = o.deviceId ?? ESME;
  const request = credentials623(o.request);
  const command = buildPreCommand(
    { cosPartyId: o.cosPartyId ?? SIM_ECOS_PARTY_ID, deviceId, counter, payload: payloadFor623(request) },
    ecdsa,
    ecdsa.importPrivateKey((o.signer ?? creds.ecosPartyCredential).scalar),
  );
  const execution = request.executionDateTime;
  return {
    requestId: o.requestId ?? `${cast.supplierId}:${deviceId}:${1000n + counter}`,
    deviceId,
    command,
    counter: counter.toString(),
    dispatchedAt: NOW,
    executionAt: execution === undefined || execution === DUIS_CANCELLATION_MS ? null : execution,
    cancellation: execution === DUIS_CANCELLATION_MS,
  };
}

export const DEFAULT_CONFIG = simulatorConfig({ seed: "sim-test" });

/** A 6.23 signed by the User, countersigned by the DSP and by the CoS Party, as an S1spRequest. */
export function s1spRequest(
  deviceId: string,
  counter: number,
  o: {
    xml?: Partial<Srv623XmlOptions>;
    signatures?: number;
    executionAt?: number | null;
    cancellation?: boolean;
  } = {},
): S1spRequest {
  const xml = Buffer.from(castSrv623Xml(cast, deviceId, counter, o.xml ?? {}), "utf8");
  let bytes = signDuisDocument(xml, parseXml(xml), cast.supplierXmlSign.signingKey());
  const signers = [cast.dspXmlSign, creds.ecosXmlSign].slice(0, (o.signatures ?? 3) - 1);
  for (const s of signers) bytes = countersignDuisDocument(bytes, parseXml(bytes), s.signingKey());
  return {
    requestId: `${cast.supplierId}:${deviceId}:${counter}`,
    deviceId,
    userId: cast.supplierId,
    countersigned: bytes,
    dispatchedAt: NOW,
    executionAt: o.executionAt ?? null,
    cancellation: o.cancellation ?? false,
  };
}

/** The error code `fn` throws with (undefined when it does not throw). */
export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? "(no code)";
  }
  return undefined;
}
