import { opensslEcdsa } from "../../../workers/crypto/ecdsa";
import {
  ALERT_FUTURE_DATED_SUCCESS,
  executeDue,
  receiveCommand,
  type SimulatedDevice,
} from "../../../workers/gbcs/device";
import {
  buildDeviceAlert,
  buildDeviceResponse,
  dlmsDateTime,
  parseDeviceAlert,
  parseDeviceResponse,
} from "../../../workers/gbcs/device-response";
import { buildPreCommand, payloadFor623, verifyPreCommandSignature } from "../../../workers/gbcs/pre-command";
import { buildSrv623Cast } from "../../../workers/testing/test-pki";

const ecdsa = opensslEcdsa;
const cast = buildSrv623Cast("gbcs-response-test");
const ECOS_ID = "90-B3-D5-1F-30-00-00-04";
const DEVICE_ID = "00-DB-12-34-56-78-90-A0";
const ecos = cast.pki.issue("ecos", { ou: "05", entityId: ECOS_ID }, ["digitalSignature"]);
const losing = cast.pki.issue("losing", { ou: "02", entityId: "90-B3-D5-1F-30-03-00-00" }, [
  "digitalSignature",
]);
const losingKa = cast.pki.issue("losing-ka", { ou: "02", entityId: "90-B3-D5-1F-30-03-00-00" }, [
  "keyAgreement",
]);
// The device's own signing key (a device certificate is not needed to sign; the CoS Party would use it to verify).
const deviceCred = cast.pki.issue("device", { ou: "7F", entityId: DEVICE_ID }, ["digitalSignature"]);
const deviceKey = ecdsa.importPrivateKey(deviceCred.scalar);
const devicePublic = ecdsa.importPublicKey(deviceCred.point);
const h = (s: string): string => s.replace(/\s+/g, "").toLowerCase();

const device: SimulatedDevice = {
  deviceId: DEVICE_ID,
  root: cast.pki.root.der,
  transitionalCoS: ecos.der,
  supplierCells: {
    digitalSignature: losing.der,
    keyAgreement: losingKa.der,
    keyAgreementTopUp: losingKa.der,
  },
  floors: { transitionalCoS: 0n, supplier: 1n, supplierPrepaymentTopUp: 1n },
  pending: null,
};
const command = (counter: bigint, executionDateTime?: number): Buffer =>
  buildPreCommand(
    {
      cosPartyId: ECOS_ID,
      deviceId: DEVICE_ID,
      counter,
      payload: payloadFor623({
        ...(executionDateTime === undefined ? {} : { executionDateTime }),
        supplierFloorSeqNumber: 0n,
        supplierPrepaymentTopUpFloorSeqNumber: 0n,
        digitalSigningCertificate: cast.replacementDs.der,
        keyAgreementCertificate: cast.replacementKa.der,
        keyAgreementTopUpCertificate: cast.replacementKaTopUp.der,
        certificationPathCertificates: [cast.pki.oca.der],
        applyTimeBasedCpvChecks: true,
      }),
    },
    ecdsa,
    ecdsa.importPrivateKey(ecos.scalar),
  );

describe("device response and alert in GBCS form (reference §3.3)", () => {
  test("immediate: header, commandAccepted + ExecutionOutcome, signed by the device", () => {
    const at = Date.UTC(2027, 0, 1, 12, 30, 15);
    const r = receiveCommand(device, command(6001n), at, ecdsa);
    if (r.answer.kind !== "executed") throw new Error(r.answer.kind);
    const bytes = buildDeviceResponse(
      { deviceId: DEVICE_ID, cosPartyId: ECOS_ID, counter: 6001n, at, outcome: r.answer.outcome },
      ecdsa,
      deviceKey,
    );
    // CRA 2, same counter, originator device, recipient CoS Party, 12-byte date-time, message code 0x0107.
    expect(bytes.subarray(0, 45).toString("hex")).toBe(
      h("DF 09 02 0000000000001771 08 00DB1234567890A0 08 90B3D51F30000004 0C") +
        dlmsDateTime(at).toString("hex") +
        h("02 0107"),
    );
    expect(dlmsDateTime(at).toString("hex")).toBe(h("07EB 01 01 FF 0C 1E 0F 00 8000 FF"));
    const p = parseDeviceResponse(bytes);
    expect(p.outcome).toEqual(r.answer.outcome);
    // The payload starts as the RTDS response does: 30 82 00 xx 05 00 30 82 00 xx 02 02 17 71 02 01 07.
    expect(p.content.subarray(0, 4).toString("hex")).toMatch(/^308200/);
    expect(p.content.subarray(4, 19).toString("hex")).toMatch(/^0500308200..020217710201073012/);
    expect(verifyPreCommandSignature(p, ecdsa, devicePublic)).toBe(true);
    const tampered = Buffer.from(bytes);
    tampered[60] = tampered[60]! ^ 1;
    let ok = false;
    try {
      ok = verifyPreCommandSignature(parseDeviceResponse(tampered), ecdsa, devicePublic);
    } catch {
      ok = false;
    }
    expect(ok).toBe(false);
  });

  test("future-dated: commandAccepted only, then the 0x8F66 alert with the outcome", () => {
    const AT = Date.UTC(2030, 0, 2);
    const accepted = receiveCommand(device, command(6002n, AT), Date.UTC(2027, 0, 1), ecdsa);
    const response = buildDeviceResponse(
      { deviceId: DEVICE_ID, cosPartyId: ECOS_ID, counter: 6002n, at: Date.UTC(2027, 0, 1), outcome: null },
      ecdsa,
      deviceKey,
    );
    const p = parseDeviceResponse(response);
    expect(p.content.toString("hex")).toBe("30020500");
    expect(p.outcome).toBeNull();
    const due = executeDue(accepted.device, AT, ecdsa);
    const alert = buildDeviceAlert(
      { deviceId: DEVICE_ID, cosPartyId: ECOS_ID, alertCounter: 2001n, alert: due.alert! },
      ecdsa,
      deviceKey,
    );
    expect(alert.subarray(0, 33).toString("hex")).toBe(
      h("DF 09 03 00000000000007D1 08 00DB1234567890A0 08 90B3D51F30000004 00 02 00CB"),
    );
    const a = parseDeviceAlert(alert);
    expect(a.alertCode).toBe(ALERT_FUTURE_DATED_SUCCESS);
    expect(a.executionDateTime).toBe("20300102000000Z");
    expect(a.outcome).toEqual(due.alert!.outcome);
    expect(a.content.subarray(4, 9).toString("hex")).toBe("0203008f66");
    expect(verifyPreCommandSignature(a, ecdsa, devicePublic)).toBe(true);
  });
});
