/**
 * The simulated fleet's key material from a seed, the same deterministic test PKI the rest of the
 * pipeline's tests and the load generator use (workers/testing/test-pki.ts, bench/dsp-load.ts): the
 * root, the OCA, the gaining supplier's cast, the ECoS and TCoS Parties' transitionalCoS credentials,
 * a losing supplier's DS/KA/KA top-up certificates, and one signing key per device.
 *
 * [GAP] The test PKI names no CoS Party credentials; the labels and entity ids here are those the CoS
 * Party's tests use (test/ecos-party/fixtures.ts: `ECOS-cos` / `TCOS-cos`, the transitionalCoS
 * certificates, OU 05; `ECOS-xmlsign` / `TCOS-xmlsign`, the countersigning certificates, OU 87;
 * entity ids 90-B3-D5-1F-30-00-00-04 and …-05). A CoS Party with other key material must hand its
 * certificates to the simulators (`FleetCredentials` is plain data for that reason).
 *
 * Private keys stay in memory; nothing here is logged or written to the state file.
 */
import type { EcdsaP256, EcPrivateKey } from "../../workers/crypto/ecdsa";
import {
  buildSrv623Cast,
  deriveScalar,
  type Srv623Cast,
  type TestCredential,
} from "../../workers/testing/test-pki";

export const SIM_ECOS_PARTY_ID = "90-B3-D5-1F-30-00-00-04";
export const SIM_TCOS_PARTY_ID = "90-B3-D5-1F-30-00-00-05";
export const SIM_LOSING_SUPPLIER_ID = "90-B3-D5-1F-30-03-00-00";

export interface FleetCredentials {
  /** Root (the device's root trust anchor cell) and OCA. */
  readonly root: Buffer;
  readonly oca: Buffer;
  /** transitionalCoS certificates: the ECoS Party's and the TCoS Party's. */
  readonly ecosParty: Buffer;
  readonly tcosParty: Buffer;
  /** The losing supplier's certificates every device starts with. */
  readonly losingDs: Buffer;
  readonly losingKa: Buffer;
  readonly losingKaTopUp: Buffer;
  /** Certificates whose XML signatures the S1SP accepts (supplier, DSP, CoS Parties). */
  readonly xmlSigners: readonly Buffer[];
}

export interface SeededCredentials extends FleetCredentials {
  readonly cast: Srv623Cast;
  /** With private keys, for tests and the load generator (sign pre-commands, countersign). */
  readonly ecosPartyCredential: TestCredential;
  readonly tcosPartyCredential: TestCredential;
  /** The CoS Parties' XML countersigning credentials. */
  readonly ecosXmlSign: TestCredential;
  readonly tcosXmlSign: TestCredential;
}

export function seededCredentials(seed = "ecos-stream-test-pki"): SeededCredentials {
  const cast = buildSrv623Cast(seed);
  const pki = cast.pki;
  const ecos = pki.issue("ECOS-cos", { ou: "05", entityId: SIM_ECOS_PARTY_ID }, ["digitalSignature"]);
  const tcos = pki.issue("TCOS-cos", { ou: "05", entityId: SIM_TCOS_PARTY_ID }, ["digitalSignature"]);
  const ecosXml = pki.issue("ECOS-xmlsign", { ou: "87", cn: "ECOS", entityId: SIM_ECOS_PARTY_ID }, [
    "digitalSignature",
  ]);
  const tcosXml = pki.issue("TCOS-xmlsign", { ou: "87", cn: "TCOS", entityId: SIM_TCOS_PARTY_ID }, [
    "digitalSignature",
  ]);
  const L = SIM_LOSING_SUPPLIER_ID;
  const losingDs = pki.issue(`ds/${L}`, { ou: "02", entityId: L }, ["digitalSignature"]);
  const losingKa = pki.issue(`ka/${L}`, { ou: "02", entityId: L }, ["keyAgreement"]);
  const losingKaTopUp = pki.issue(`ka-topup/${L}`, { ou: "02", entityId: L }, ["keyAgreement"]);
  return {
    cast,
    root: pki.root.der,
    oca: pki.oca.der,
    ecosParty: ecos.der,
    tcosParty: tcos.der,
    ecosPartyCredential: ecos,
    tcosPartyCredential: tcos,
    ecosXmlSign: ecosXml,
    tcosXmlSign: tcosXml,
    losingDs: losingDs.der,
    losingKa: losingKa.der,
    losingKaTopUp: losingKaTopUp.der,
    xmlSigners: [cast.supplierXmlSign.der, cast.dspXmlSign.der, ecosXml.der, tcosXml.der],
  };
}

/** The device's own signing key (for its GBCS responses and alerts), derived from the seed. */
export function deviceKeyring(seed: string, ecdsa: EcdsaP256): (deviceId: string) => EcPrivateKey {
  const keys = new Map<string, EcPrivateKey>();
  return (deviceId) => {
    let k = keys.get(deviceId);
    if (!k) {
      k = ecdsa.importPrivateKey(deriveScalar(seed, `device/${deviceId}`));
      keys.set(deviceId, k);
    }
    return k;
  };
}
