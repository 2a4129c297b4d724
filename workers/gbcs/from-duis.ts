/**
 * From a structurally valid DUIS 6.23 (workers/duis/request.ts) to the pre-command the CoS Party signs
 * and the dispatch check expects (reference §2.2 → §3.2). One function for both sides, so the ECoS
 * Party and the DSP cannot disagree about the mapping.
 */
import type { Srv623Request } from "../duis/request";
import {
  DUIS_CANCELLATION_MS,
  payloadFor623,
  type PreCommandInput,
  type Srv623Credentials,
} from "./pre-command";

/** The credential fields of a 6.23 body, typed for the GBCS encoder. */
export function credentialsOf623(r: Srv623Request): Srv623Credentials {
  const certs = r.replacementCertificates;
  const executionDateTime =
    r.form === "cancellation" ? DUIS_CANCELLATION_MS : r.form === "future-dated" ? r.executionTime : null;
  return {
    ...(executionDateTime === null ? {} : { executionDateTime }),
    supplierFloorSeqNumber: BigInt(r.supplierFloorSeqNumber),
    ...(r.supplierPrepaymentTopUpFloorSeqNumber === null
      ? {}
      : { supplierPrepaymentTopUpFloorSeqNumber: BigInt(r.supplierPrepaymentTopUpFloorSeqNumber) }),
    digitalSigningCertificate: certs.digitalSigning,
    ...(certs.keyAgreement === null ? {} : { keyAgreementCertificate: certs.keyAgreement }),
    ...(certs.keyAgreementTopUp === null ? {} : { keyAgreementTopUpCertificate: certs.keyAgreementTopUp }),
    certificationPathCertificates: r.certificationPathCertificates,
    applyTimeBasedCpvChecks: r.applyTimeBasedCpvChecks,
  };
}

/** The pre-command a 6.23 calls for: addressed to the request's BusinessTargetID, from the CoS Party. */
export function preCommandInputFor623(
  r: Srv623Request,
  cosPartyId: string,
  counter: bigint,
): PreCommandInput {
  return {
    cosPartyId,
    deviceId: r.header.requestId.businessTargetId,
    counter,
    payload: payloadFor623(credentialsOf623(r)),
  };
}
