/**
 * The issue 5 path with pure functions only: a DUIS 6.23 → the ECoS Party reserves a counter and signs
 * the pre-command → the DSP dispatch check (signature, mirror, high-water mark) → the device.
 */
import { opensslEcdsa } from "../../../workers/crypto/ecdsa";
import { readDuisRequest, type Srv623Request } from "../../../workers/duis/request";
import { receiveCommand, type SimulatedDevice } from "../../../workers/gbcs/device";
import { credentialsOf623, preCommandInputFor623 } from "../../../workers/gbcs/from-duis";
import {
  buildPreCommand,
  parsePreCommand,
  preCommandMismatches,
  verifyPreCommandSignature,
} from "../../../workers/gbcs/pre-command";
import { castSrv623Xml, buildSrv623Cast, type Srv623XmlOptions } from "../../../workers/testing/test-pki";
import { parseXmlString } from "../../../workers/xml/parser";
import { InMemoryKeyValueStore } from "../../../processors/runtime/stores";
import {
  acceptDispatchedCounter,
  reserveCosCounter,
  type CosCounterEntry,
} from "../../../processors/ecos-party/cos-counter";

const ecdsa = opensslEcdsa;
const cast = buildSrv623Cast("gbcs-from-duis");
const ECOS_ID = "90-B3-D5-1F-30-00-00-04";
const DEVICE_ID = "00-DB-12-34-56-78-90-A0";
const ecos = cast.pki.issue("ecos-party", { ou: "05", entityId: ECOS_ID }, ["digitalSignature"]);
const ecosKey = ecdsa.importPrivateKey(ecos.scalar);
const losing = cast.pki.issue("losing-ds", { ou: "02", entityId: "90-B3-D5-1F-30-03-00-00" }, [
  "digitalSignature",
]);
const losingKa = cast.pki.issue("losing-ka", { ou: "02", entityId: "90-B3-D5-1F-30-03-00-00" }, [
  "keyAgreement",
]);

const read = (counter: number, o: Partial<Srv623XmlOptions> = {}): Srv623Request =>
  readDuisRequest(parseXmlString(castSrv623Xml(cast, DEVICE_ID, counter, o))) as Srv623Request;

describe("6.23 to pre-command", () => {
  test("credentials: forms, floors and optional certificates map as reference §2.2 → §3.2", () => {
    expect(credentialsOf623(read(1)).executionDateTime).toBeUndefined();
    expect(
      credentialsOf623(read(2, { executionDateTime: "2030-01-02T00:00:00.00Z" })).executionDateTime,
    ).toBe(Date.UTC(2030, 0, 2));
    const cancel = preCommandInputFor623(
      read(3, { executionDateTime: "3000-12-31T00:00:00.00Z" }),
      ECOS_ID,
      9n,
    );
    expect(cancel.payload.execution).toEqual({ kind: "cancellation" });
    const noTopUp = credentialsOf623(
      read(4, {
        keyAgreementTopUp: null,
        supplierPrepaymentTopUpFloorSeqNumber: null,
        supplierFloorSeqNumber: "77",
      }),
    );
    expect(noTopUp.keyAgreementTopUpCertificate).toBeUndefined();
    expect(noTopUp.supplierPrepaymentTopUpFloorSeqNumber).toBeUndefined();
    expect(noTopUp.supplierFloorSeqNumber).toBe(77n);
  });

  test("ECoS Party → dispatch check → device, and a second request for the device gets a higher counter", () => {
    const counters = new InMemoryKeyValueStore<CosCounterEntry>("ecos-party-cos-counters");
    const dispatched = new InMemoryKeyValueStore<CosCounterEntry>("dsp-dispatched-cos-counters");
    let device: SimulatedDevice = {
      deviceId: DEVICE_ID,
      root: cast.pki.root.der,
      transitionalCoS: ecos.der,
      supplierCells: {
        digitalSignature: losing.der,
        keyAgreement: losingKa.der,
        keyAgreementTopUp: losingKa.der,
      },
      floors: { transitionalCoS: 6000n, supplier: 10n, supplierPrepaymentTopUp: 10n },
      pending: null,
    };
    for (const userCounter of [1006, 1007]) {
      const request = read(userCounter);
      const requestId = request.header.requestId.text;
      // ECoS Party: reserve above the device's known floor, then sign.
      const { counter } = reserveCosCounter(counters, DEVICE_ID, requestId, 6000n);
      const apdu = buildPreCommand(preCommandInputFor623(request, ECOS_ID, counter), ecdsa, ecosKey);
      // DSP dispatch: signature with the ECoS certificate, mirror of the request, counter above the last.
      const parsed = parsePreCommand(apdu);
      expect(verifyPreCommandSignature(parsed, ecdsa, ecdsa.importPublicKey(ecos.point))).toBe(true);
      expect(preCommandMismatches(parsed, preCommandInputFor623(request, ECOS_ID, counter))).toEqual([]);
      expect(acceptDispatchedCounter(dispatched, DEVICE_ID, requestId, parsed.header.originatorCounter)).toBe(
        true,
      );
      // Device.
      const r = receiveCommand(device, apdu, Date.UTC(2027, 0, 1), ecdsa);
      expect(r.answer).toMatchObject({ kind: "executed", counter, outcome: { success: true } });
      device = r.device;
    }
    expect(device.floors.transitionalCoS).toBe(6002n);
    expect(Buffer.from(device.supplierCells.keyAgreementTopUp!).equals(cast.replacementKaTopUp.der)).toBe(
      true,
    );
  });
});
