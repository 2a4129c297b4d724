/**
 * What every composition of the 6.23 stages over the seeded test PKI needs alike — the embedded
 * pipeline (pipeline.ts) and the real-broker application of the end-to-end test and bench
 * (kafka-pipeline.ts, `ecos run --kafka`): the CoS Parties' key material, the trust dispatch
 * places in both parties and the DSP, and the dispatch and tracker serdes taken from the product's.
 */
import type { AnomalySerdes } from "../anomaly/topology";
import type { CosSerdes } from "../cos/serdes";
import type { AuthorisationTrust } from "../dispatch/authorisation-check";
import type { DispatchSerdes } from "../dispatch/topology";
import type { DspSerdes } from "../dsp/topology";
import type { CosPartyCryptoOptions } from "../ecos-party/crypto";
import type { Serde } from "../runtime/serde";
import type { TrackerSerdes } from "../tracker/topology";
import { EVENT_SCHEMAS, type DccAlertEvent } from "../../schemas/event-records";
import { avroSerde, loadSchema } from "../../schemas/avro";
import type { SchemaRegistry } from "../../schemas/registry";
import { anomalyAvroSerdes } from "../anomaly/serdes";
import { cosAvroSerdes } from "../cos/serdes";
import { dspAvroSerdes } from "../dsp/serdes";
import { cosPartyAvroSerdes } from "../ecos-party/serdes";
import type { CosPartySerdes } from "../ecos-party/records";
import type { SeededCredentials } from "../../deploy/sim/credentials";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";

/** The ECoS or TCoS Party's signing keys and trust, from the seeded credentials. */
export function seededCosPartyCrypto(
  creds: SeededCredentials,
  party: "ECOS" | "TCOS",
): CosPartyCryptoOptions {
  const cast = creds.cast;
  const cosKey = party === "ECOS" ? creds.ecosPartyCredential : creds.tcosPartyCredential;
  const xmlSign = party === "ECOS" ? creds.ecosXmlSign : creds.tcosXmlSign;
  return {
    trust: cast.pki.trust([cast.supplierXmlSign, cast.dspXmlSign, xmlSign]),
    keys: {
      entityId: cosKey.cert.entityId ?? "",
      preCommandScalar: cosKey.scalar,
      xmlSigning: { scalar: xmlSign.scalar, certificate: xmlSign.der },
    },
    dspEntityId: cast.dspXmlSign.cert.entityId ?? "",
  };
}

/** Whom dispatch trusts: both CoS Parties (pre-command and XML signers) and the DSP's countersigner. */
export function seededDispatchTrust(creds: SeededCredentials): AuthorisationTrust {
  const cast = creds.cast;
  return {
    ecos: {
      entityId: creds.ecosPartyCredential.cert.entityId ?? "",
      preCommandCertificate: creds.ecosPartyCredential.cert,
      xmlSigners: [creds.ecosXmlSign.cert.derHash],
    },
    tcos: {
      entityId: creds.tcosPartyCredential.cert.entityId ?? "",
      preCommandCertificate: creds.tcosPartyCredential.cert,
      xmlSigners: [creds.tcosXmlSign.cert.derHash],
    },
    dspSigners: [cast.dspXmlSign.cert.derHash],
    trust: cast.pki.trust([cast.supplierXmlSign, cast.dspXmlSign, creds.ecosXmlSign, creds.tcosXmlSign]),
    ecdsa: opensslEcdsa,
  };
}

/** The serdes of the stages, as the product builds them over one registry. */
export interface StageSerdes {
  readonly dsp: DspSerdes;
  readonly cos: CosSerdes;
  readonly anomaly: AnomalySerdes;
  readonly alert: Serde<DccAlertEvent>;
}

/** The stages' serdes plus the CoS Parties', all Avro over one schema registry. */
export function stageSerdesOver(registry: SchemaRegistry): StageSerdes & { readonly party: CosPartySerdes } {
  return {
    dsp: dspAvroSerdes(registry),
    cos: cosAvroSerdes(registry),
    anomaly: anomalyAvroSerdes(registry),
    alert: avroSerde<DccAlertEvent>(registry, loadSchema(EVENT_SCHEMAS.dccAlertEvent)),
    party: cosPartyAvroSerdes(registry),
  };
}

export function dispatchSerdesOf(s: StageSerdes): DispatchSerdes {
  return {
    authorisation: s.cos.authorisation,
    deviceCommand: s.cos.deviceCommand,
    s1spRequest: s.cos.s1spRequest,
    response: s.dsp.response,
    stage: s.dsp.stage,
    adtFile: s.anomaly.adtFile,
    exit: s.anomaly.exit,
    anomalyEvent: s.anomaly.event,
  };
}

export function trackerSerdesOf(s: StageSerdes): TrackerSerdes {
  return {
    stage: s.dsp.stage,
    authorisation: s.cos.authorisation,
    deviceCommand: s.cos.deviceCommand,
    s1spRequest: s.cos.s1spRequest,
    deviceResponse: s.cos.deviceResponse,
    response: s.dsp.response,
    alert: s.alert,
  };
}
