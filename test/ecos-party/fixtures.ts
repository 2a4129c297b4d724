/**
 * Shared by the CoS Party tests: the party credentials (issued by the tests' own deterministic PKI),
 * DSP-countersigned requests, an ADT file, and an in-process rig around buildCosPartyTopology.
 */
import { anomalyConfig, type AnomalyConfig } from "../../processors/anomaly/config";
import type { ServiceRequestEnvelope } from "../../processors/anomaly/records";
import type { CosAuthorisation, CosParty } from "../../processors/cos/records";
import {
  InlineCosPartyCrypto,
  type CosPartyCryptoOptions,
  type CosPartyCryptoPort,
} from "../../processors/ecos-party/crypto";
import { jsonCosPartySerdes, type CosPartySerdes } from "../../processors/ecos-party/records";
import {
  buildCosPartyTopology,
  cosPartyTopics,
  type CosPartyOptions,
} from "../../processors/ecos-party/topology";
import { InProcessDriver, type OutputRecord } from "../../processors/runtime/in-process-driver";
import type {
  DccAlertEvent,
  DeviceSnapshot,
  RequestStageEvent,
  ServiceResponseEvent,
} from "../../schemas/event-records";
import type { AnomalyEvent } from "../../processors/anomaly/records";
import type { TestCredential } from "../../workers/testing/test-pki";
import type { Srv623XmlOptions } from "../../workers/testing/test-pki";
import { parseXml } from "../../workers/xml/parser";
import { countersignDuisDocument } from "../../workers/xmldsig/duis-signature";
import { adtCsv, submission } from "../anomaly/fixtures";
import { device as dspDevice } from "../dsp/fixtures";
import { DEVICE_ID, RECEIVED_AT, cast, sign, unsigned623 } from "../workers/fixtures";

export { DEVICE_ID, RECEIVED_AT, cast, sign, unsigned623 };
export const SUPPLIER = "90-B3-D5-1F-30-01-00-00";
export const DEVICE_2 = "00-DB-12-34-56-78-90-A1";
export const ECOS_ID = "90-B3-D5-1F-30-00-00-04";
export const TCOS_ID = "90-B3-D5-1F-30-00-00-05";
const DAY = 86_400_000;

export interface PartyCredentials {
  /** transitionalCoS (OU 05) digitalSignature certificate: the key in the devices' cells. */
  readonly cos: TestCredential;
  /** The party's XML-signing certificate. [GAP] its role: xmlSign (OU 87) here. */
  readonly xmlSign: TestCredential;
  readonly entityId: string;
}

const parties = new Map<CosParty, PartyCredentials>();
export function party(p: CosParty): PartyCredentials {
  let c = parties.get(p);
  if (!c) {
    const entityId = p === "ECOS" ? ECOS_ID : TCOS_ID;
    const pki = cast().pki;
    c = {
      entityId,
      cos: pki.issue(`${p}-cos`, { ou: "05", entityId }, ["digitalSignature"]),
      xmlSign: pki.issue(`${p}-xmlsign`, { ou: "87", cn: p, entityId }, ["digitalSignature"]),
    };
    parties.set(p, c);
  }
  return c;
}

export function device(overrides: Partial<DeviceSnapshot> = {}): DeviceSnapshot {
  return dspDevice(overrides);
}

/** A request for `deviceId` signed by the supplier and countersigned by the DSP (or `dspSigner`). */
export function countersigned623(
  overrides: Partial<Srv623XmlOptions> = {},
  counter = 1006,
  deviceId = DEVICE_ID,
  dspSigner: TestCredential = cast().dspXmlSign,
): Buffer {
  const requestId = overrides.requestId ?? `${SUPPLIER}:${deviceId}:${counter}`;
  const signed = sign(unsigned623({ requestId, ...overrides }, counter));
  return countersignDuisDocument(signed, parseXml(signed), dspSigner.signingKey());
}

export function envelope(
  raw: Buffer,
  counter = 1006,
  deviceId = DEVICE_ID,
  receivedAt = RECEIVED_AT,
): ServiceRequestEnvelope {
  return {
    requestId: `${SUPPLIER}:${deviceId}:${counter}`,
    userId: SUPPLIER,
    srv: "6.23",
    receivedAt,
    deviceId,
    raw,
  };
}

export interface PartyRig {
  readonly driver: InProcessDriver;
  readonly serdes: CosPartySerdes;
  readonly crypto: CosPartyCryptoPort;
  send(...e: ServiceRequestEnvelope[]): Promise<void>;
  adt(rows: readonly string[], sequenceNumber?: number): Promise<void>;
  authorisations(): Promise<OutputRecord<CosAuthorisation>[]>;
  responses(): Promise<OutputRecord<ServiceResponseEvent>[]>;
  stages(): Promise<RequestStageEvent[]>;
  alerts(): Promise<OutputRecord<DccAlertEvent>[]>;
  anomalyEvents(): Promise<AnomalyEvent[]>;
}

export interface PartyRigOptions {
  readonly party?: CosParty;
  readonly devices?: readonly DeviceSnapshot[];
  /** ADT rows loaded first (default: a 6.23 threshold of 1000 a day); null loads no file. */
  readonly adtRows?: readonly string[] | null;
  readonly anomaly?: Partial<AnomalyConfig>;
  readonly crypto?: CosPartyCryptoPort;
  readonly serdes?: CosPartySerdes;
  readonly partitions?: number;
  readonly startTimeMs?: number;
  readonly extra?: Partial<CosPartyOptions>;
}

export function inlineCrypto(p: CosParty = "ECOS"): InlineCosPartyCrypto {
  return new InlineCosPartyCrypto(cryptoOptions(p));
}

/** The party's crypto configuration: trust (root, supplier, DSP, party), keys, the DSP's entity id. */
export function cryptoOptions(p: CosParty = "ECOS"): CosPartyCryptoOptions {
  const c = cast();
  const creds = party(p);
  return {
    trust: c.pki.trust([c.supplierXmlSign, c.dspXmlSign, creds.xmlSign, dsAsSigner()]),
    keys: {
      entityId: creds.entityId,
      preCommandScalar: creds.cos.scalar,
      xmlSigning: { scalar: creds.xmlSign.scalar, certificate: creds.xmlSign.der },
    },
    dspEntityId: c.dspXmlSign.cert.entityId!,
  };
}

let dsSigner: TestCredential | undefined;
/** The supplier's DS certificate (OU 02), known to the trust store: signing with it fails signer-role. */
export function dsAsSigner(): TestCredential {
  dsSigner ??= cast().pki.issue("ecos-party-ds-as-signer", { ou: "02", entityId: SUPPLIER }, [
    "digitalSignature",
  ]);
  return dsSigner;
}

export async function partyRig(o: PartyRigOptions = {}): Promise<PartyRig> {
  const p = o.party ?? "ECOS";
  const serdes = o.serdes ?? jsonCosPartySerdes();
  const crypto = o.crypto ?? inlineCrypto(p);
  const topology = buildCosPartyTopology({
    party: p,
    serdes,
    crypto,
    anomaly: anomalyConfig(o.anomaly ?? {}),
    ...o.extra,
  });
  const driver = await InProcessDriver.create(topology, {
    applicationId: `${p.toLowerCase()}-party-test`,
    partitions: o.partitions ?? 1,
    startTimeMs: o.startTimeMs ?? RECEIVED_AT + 1000,
  });
  const t = cosPartyTopics(p);
  await driver.pipeInput(
    t.inventory,
    (o.devices ?? [device({ cosCredential: p }), device({ deviceId: DEVICE_2, cosCredential: p })]).map(
      (d) => ({ key: d.deviceId, value: d }),
    ),
    serdes.inventory,
  );
  const rig: PartyRig = {
    driver,
    serdes,
    crypto,
    async send(...e) {
      await driver.pipeInput(
        t.requests,
        e.map((x) => ({ key: x.deviceId, value: x, timestamp: x.receivedAt })),
        serdes.envelope,
      );
    },
    async adt(rows, sequenceNumber = 1) {
      const s = submission(SUPPLIER, adtCsv(sequenceNumber, rows), RECEIVED_AT - DAY);
      await driver.pipeInput(
        t.adtFiles,
        [{ key: SUPPLIER, value: s, timestamp: s.submittedAt }],
        serdes.adtFile,
      );
    },
    authorisations: () => driver.readOutput(t.authorisations, serdes.authorisation),
    responses: () => driver.readOutput(t.responses, serdes.response),
    stages: async () => (await driver.readOutput(t.stages, serdes.stage)).map((r) => r.value),
    alerts: () => driver.readOutput(t.alerts, serdes.alert),
    anomalyEvents: async () =>
      (await driver.readOutput(t.anomalyEvents, serdes.anomalyEvent)).map((r) => r.value),
  };
  if (o.adtRows !== null) await rig.adt(o.adtRows ?? ["6.23,1440,1000,1000"]);
  return rig;
}
