/**
 * Shared by the dispatch tests: a test PKI cast with an ECoS and a TCoS Party, CoS Authorisation
 * Responses built the way the CoS Party builds them (the User's signature, the DSP's and the CoS
 * Party's countersignatures, the pre-command signed with the CoS Party's transitionalCoS key), and the
 * dispatch topology on the in-process driver with Avro serdes over an in-memory registry.
 */
import { anomalyConfig } from "../../processors/anomaly/config";
import { anomalyAvroSerdes } from "../../processors/anomaly/serdes";
import type {
  AdtFileSubmission,
  AnomalyEvent,
  ExitQuarantineInstruction,
} from "../../processors/anomaly/records";
import type { CosAuthorisation, DeviceCommand, S1spRequest } from "../../processors/cos/records";
import { cosAvroSerdes } from "../../processors/cos/serdes";
import { dspAvroSerdes } from "../../processors/dsp/serdes";
import type { AuthorisationTrust } from "../../processors/dispatch/authorisation-check";
import {
  buildDispatchTopology,
  dispatchTopics,
  type DispatchOptions,
  type DispatchSerdes,
} from "../../processors/dispatch/topology";
import { InProcessDriver, type OutputRecord } from "../../processors/runtime/in-process-driver";
import type { RequestStageEvent, ServiceResponseEvent } from "../../schemas/event-records";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import { isSrv623, readDuisRequest, type Srv623Request } from "../../workers/duis/request";
import { preCommandInputFor623 } from "../../workers/gbcs/from-duis";
import { buildPreCommand, type PreCommandInput } from "../../workers/gbcs/pre-command";
import {
  buildSrv623Cast,
  castSrv623Xml,
  type Srv623XmlOptions,
  type TestCredential,
} from "../../workers/testing/test-pki";
import { parseXml } from "../../workers/xml/parser";
import { countersignDuisDocument, signDuisDocument } from "../../workers/xmldsig/duis-signature";

export const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);
export const SMETS2_DEVICE = "00-DB-12-34-56-78-90-A0";
export const SMETS1_DEVICE = "00-DB-12-34-56-78-90-B1";
export const ECOS_ID = "90-B3-D5-1F-30-00-00-04";
export const TCOS_ID = "90-B3-D5-1F-30-00-00-05";

export const cast = buildSrv623Cast("dispatch-test");
/** The ECoS Party's transitionalCoS (role 5) key: signs pre-commands. */
export const ecosPreCommand = cast.pki.issue("ecos-ds", { ou: "05", entityId: ECOS_ID }, [
  "digitalSignature",
]);
/** The ECoS Party's XML-signing key: countersigns requests ([GAP] its role; configured by certificate). */
export const ecosXml = cast.pki.issue("ecos-xml", { ou: "05", entityId: ECOS_ID }, ["digitalSignature"]);
export const tcosPreCommand = cast.pki.issue("tcos-ds", { ou: "05", entityId: TCOS_ID }, [
  "digitalSignature",
]);
export const tcosXml = cast.pki.issue("tcos-xml", { ou: "05", entityId: TCOS_ID }, ["digitalSignature"]);
/** Somebody else's keys, with the right-looking certificates. */
export const impostorXml = cast.pki.issue("impostor-xml", { ou: "05", entityId: ECOS_ID }, [
  "digitalSignature",
]);

export const trust: AuthorisationTrust = {
  ecos: { entityId: ECOS_ID, preCommandCertificate: ecosPreCommand.cert, xmlSigners: [ecosXml.cert.derHash] },
  tcos: { entityId: TCOS_ID, preCommandCertificate: tcosPreCommand.cert, xmlSigners: [tcosXml.cert.derHash] },
  dspSigners: [cast.dspXmlSign.cert.derHash],
  trust: cast.pki.trust([cast.supplierXmlSign, cast.dspXmlSign, ecosXml, tcosXml, impostorXml]),
  ecdsa: opensslEcdsa,
};

const sign = (bytes: Buffer, key: TestCredential): Buffer =>
  countersignDuisDocument(bytes, parseXml(bytes), key.signingKey());

export interface AuthorisationOptions {
  readonly deviceId?: string;
  readonly smets?: "SMETS1" | "SMETS2";
  readonly cosParty?: "ECOS" | "TCOS";
  /** The User's counter in the RequestID. */
  readonly userCounter?: number;
  /** The CoS Party's counter in the pre-command. */
  readonly counter?: bigint;
  readonly xml?: Partial<Srv623XmlOptions>;
  readonly receivedAt?: number;
  /** Signer of the CoS Party countersignature (default the party's XML key). */
  readonly cosXmlSigner?: TestCredential;
  /** Signer of the pre-command (default the party's transitionalCoS key). */
  readonly preCommandKey?: Buffer;
  /** Changes the pre-command's input before it is signed (a CoS Party that does not mirror the request). */
  readonly alterPreCommand?: (input: PreCommandInput) => PreCommandInput;
  /** Changes the signed record afterwards (tampering in transit). */
  readonly alter?: (a: CosAuthorisation) => CosAuthorisation;
}

/** The request a CoS Authorisation Response carries, User-signed and DSP-countersigned. */
export function dspCountersigned(
  deviceId: string,
  userCounter: number,
  xml: Partial<Srv623XmlOptions> = {},
): Buffer {
  const unsigned = Buffer.from(castSrv623Xml(cast, deviceId, userCounter, xml), "utf8");
  const userSigned = signDuisDocument(unsigned, parseXml(unsigned), cast.supplierXmlSign.signingKey());
  return sign(userSigned, cast.dspXmlSign);
}

export function read623(bytes: Buffer): Srv623Request {
  const r = readDuisRequest(parseXml(bytes), { maxSignatures: 3 });
  if (!isSrv623(r)) throw new Error("not a 6.23");
  return r;
}

/** A CoS Authorisation Response as the CoS Party would produce it. */
export function authorisation(o: AuthorisationOptions = {}): CosAuthorisation {
  const smets = o.smets ?? "SMETS2";
  const deviceId = o.deviceId ?? (smets === "SMETS2" ? SMETS2_DEVICE : SMETS1_DEVICE);
  const party = o.cosParty ?? "ECOS";
  const userCounter = o.userCounter ?? 1006;
  const counter = o.counter ?? 6001n;
  const receivedAt = o.receivedAt ?? T0;
  const dspSigned = dspCountersigned(deviceId, userCounter, o.xml);
  const request = read623(dspSigned);
  const countersigned = sign(dspSigned, o.cosXmlSigner ?? (party === "ECOS" ? ecosXml : tcosXml));
  let preCommand: Buffer | null = null;
  if (smets === "SMETS2") {
    const input = preCommandInputFor623(request, party === "ECOS" ? ECOS_ID : TCOS_ID, counter);
    const key = o.preCommandKey ?? (party === "ECOS" ? ecosPreCommand.scalar : tcosPreCommand.scalar);
    preCommand = buildPreCommand(
      o.alterPreCommand ? o.alterPreCommand(input) : input,
      opensslEcdsa,
      opensslEcdsa.importPrivateKey(key),
    );
  }
  const a: CosAuthorisation = {
    requestId: request.header.requestId.text,
    deviceId,
    userId: cast.supplierId,
    cosParty: party,
    smetsGeneration: smets,
    deviceType: "ESME",
    receivedAt,
    authorisedAt: receivedAt + 400,
    countersigned,
    preCommand,
    counter: smets === "SMETS2" ? counter.toString() : null,
    executionAt: request.form === "immediate" ? null : request.executionTime,
    cancellation: request.form === "cancellation",
  };
  return o.alter ? o.alter(a) : a;
}

/** An ADT file letting the cast's supplier send `adt` 6.23s a day (so nothing is quarantined by default). */
let submissions = 0;
export function adtFile(adt: number, sequenceNumber = 1, submittedAt = T0 - 86_400_000): AdtFileSubmission {
  const content = [
    `SequenceNumber,${sequenceNumber}`,
    "SRV,TimePeriodApplicable,ADT,WarningThreshold",
    `6.23,1440,${adt},${adt}`,
  ].join("\n");
  return {
    submissionId: `dispatch-sub-${++submissions}`,
    userId: cast.supplierId,
    fileName: `adt-${submissions}.csv`,
    submittedAt,
    content: Buffer.from(content + "\n", "utf8"),
  };
}

export interface DispatchRig {
  readonly driver: InProcessDriver;
  readonly serdes: DispatchSerdes;
  send(...a: CosAuthorisation[]): Promise<void>;
  submitAdt(f: AdtFileSubmission): Promise<void>;
  exit(x: ExitQuarantineInstruction): Promise<void>;
  commands(): Promise<Array<OutputRecord<DeviceCommand>>>;
  s1sp(): Promise<Array<OutputRecord<S1spRequest>>>;
  responses(): Promise<Array<OutputRecord<ServiceResponseEvent>>>;
  stages(): Promise<RequestStageEvent[]>;
  anomalyEvents(): Promise<AnomalyEvent[]>;
}

export function dispatchSerdes(): DispatchSerdes {
  const registry = new InMemorySchemaRegistry();
  const cos = cosAvroSerdes(registry);
  const dsp = dspAvroSerdes(registry);
  const anomaly = anomalyAvroSerdes(registry);
  return {
    authorisation: cos.authorisation,
    deviceCommand: cos.deviceCommand,
    s1spRequest: cos.s1spRequest,
    response: dsp.response,
    stage: dsp.stage,
    adtFile: anomaly.adtFile,
    exit: anomaly.exit,
    anomalyEvent: anomaly.event,
  };
}

/** The dispatch topology on the in-process driver (3 partitions), anomaly detection on unless `anomaly: null`. */
export async function dispatchRig(opts: Partial<DispatchOptions> = {}): Promise<DispatchRig> {
  const serdes = dispatchSerdes();
  const driver = await InProcessDriver.create(
    buildDispatchTopology({ serdes, trust, anomaly: anomalyConfig(), ...opts }),
    { applicationId: "dispatch-test", partitions: 3, startTimeMs: T0 + 500 },
  );
  const t = dispatchTopics();
  return {
    driver,
    serdes,
    send: (...a) =>
      driver.pipeInput(
        t.authorisations,
        a.map((x) => ({ key: x.deviceId, value: x, timestamp: x.authorisedAt })),
        serdes.authorisation,
      ),
    submitAdt: (f) =>
      driver.pipeInput(t.adtFiles, [{ key: f.userId, value: f, timestamp: f.submittedAt }], serdes.adtFile),
    exit: (x) =>
      driver.pipeInput(t.exitQuarantine, [{ key: x.userId, value: x, timestamp: x.issuedAt }], serdes.exit),
    commands: () => driver.readOutput(t.deviceCommands, serdes.deviceCommand),
    s1sp: () => driver.readOutput(t.s1spRequests, serdes.s1spRequest),
    responses: () => driver.readOutput(t.responses, serdes.response),
    stages: async () => (await driver.readOutput(t.stages, serdes.stage)).map((r) => r.value),
    anomalyEvents: async () =>
      (await driver.readOutput(t.anomalyEvents, serdes.anomalyEvent)).map((r) => r.value),
  };
}
