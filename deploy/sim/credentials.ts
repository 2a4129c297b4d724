/**
 * The simulated fleet's key material from a seed, the same deterministic test PKI the rest of the
 * pipeline's tests and the load generator use (workers/testing/test-pki.ts, bench/dsp-load.ts): the
 * root, the OCA, the gaining supplier's cast, the ECoS and TCoS Parties' transitionalCoS credentials,
 * a losing supplier's DS/KA/KA top-up certificates, and one signing key per device.
 *
 * [GAP] The test PKI names no CoS Party credentials; the labels and entity ids here are those the GBCS
 * tests use (`ecos-party` 90-B3-D5-1F-30-00-00-04, `tcos-party` …-05). A CoS Party built with other
 * labels must hand its certificates to the fleet (`FleetCredentials` is plain data for that reason).
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
}

export function seededCredentials(seed = "ecos-stream-test-pki"): SeededCredentials {
  const cast = buildSrv623Cast(seed);
  const pki = cast.pki;
  const ecos = pki.issue("ecos-party", { ou: "05", entityId: SIM_ECOS_PARTY_ID }, ["digitalSignature"]);
  const tcos = pki.issue("tcos-party", { ou: "05", entityId: SIM_TCOS_PARTY_ID }, ["digitalSignature"]);
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
    losingDs: losingDs.der,
    losingKa: losingKa.der,
    losingKaTopUp: losingKaTopUp.der,
    xmlSigners: [cast.supplierXmlSign.der, cast.dspXmlSign.der, ecos.der, tcos.der],
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
