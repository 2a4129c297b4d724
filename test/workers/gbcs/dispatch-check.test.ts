import { nobleEcdsa, opensslEcdsa } from "../../../workers/crypto/ecdsa";
import { checkPreCommand } from "../../../workers/gbcs/dispatch-check";
import { buildPreCommand, payloadFor623, type PreCommandInput } from "../../../workers/gbcs/pre-command";
import { buildSrv623Cast } from "../../../workers/testing/test-pki";

const ecdsa = opensslEcdsa;
const cast = buildSrv623Cast("gbcs-dispatch-test");
const ECOS_ID = "90-B3-D5-1F-30-00-00-04";
const ecos = cast.pki.issue("ecos", { ou: "05", entityId: ECOS_ID }, ["digitalSignature"]);
const impostor = cast.pki.issue("impostor", { ou: "05", entityId: ECOS_ID }, ["digitalSignature"]);
const supplierAsCos = cast.pki.issue("not-cos", { ou: "02", entityId: ECOS_ID }, ["digitalSignature"]);
const expected: Omit<PreCommandInput, "counter"> = {
  cosPartyId: ECOS_ID,
  deviceId: "00-DB-12-34-56-78-90-A0",
  payload: payloadFor623({
    supplierFloorSeqNumber: 3n,
    digitalSigningCertificate: cast.replacementDs.der,
    keyAgreementCertificate: cast.replacementKa.der,
    certificationPathCertificates: [cast.pki.oca.der],
    applyTimeBasedCpvChecks: false,
  }),
};
const sign = (input: PreCommandInput, key = ecos.scalar): Buffer =>
  buildPreCommand(input, nobleEcdsa, nobleEcdsa.importPrivateKey(key));

describe("dispatch check of the pre-command (reference §5.4)", () => {
  test("accepts the ECoS Party's pre-command that mirrors the request", () => {
    const v = checkPreCommand(sign({ ...expected, counter: 42n }), expected, ecos.cert, ecdsa);
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.preCommand.header.originatorCounter).toBe(42n);
  });

  test("refuses: tampered bytes, another key, a non-CoS certificate, a payload that does not mirror", () => {
    const good = sign({ ...expected, counter: 42n });
    const t = Buffer.from(good);
    t[good.length - 10] = t[good.length - 10]! ^ 4;
    expect(checkPreCommand(t, expected, ecos.cert, ecdsa)).toMatchObject({
      ok: false,
      reason: "signatureInvalid",
    });
    expect(checkPreCommand(good.subarray(0, 50), expected, ecos.cert, ecdsa)).toMatchObject({
      reason: "malformed",
    });
    expect(
      checkPreCommand(sign({ ...expected, counter: 42n }, impostor.scalar), expected, ecos.cert, ecdsa),
    ).toMatchObject({ reason: "signatureInvalid" });
    expect(checkPreCommand(good, expected, supplierAsCos.cert, ecdsa)).toMatchObject({
      reason: "wrongCosParty",
    });
    const otherFloor = {
      ...expected,
      payload: {
        ...expected.payload,
        seqNumberChanges: [{ role: 2, floorSeqNumber: 4n, specialistFloors: [] }],
      },
    };
    expect(checkPreCommand(sign({ ...otherFloor, counter: 42n }), expected, ecos.cert, ecdsa)).toMatchObject({
      reason: "mirrorMismatch",
      detail: "differs from the request in seqNumberChanges",
    });
    const otherDevice = { ...expected, deviceId: "00-DB-12-34-56-78-90-A1" };
    expect(checkPreCommand(sign({ ...otherDevice, counter: 42n }), expected, ecos.cert, ecdsa)).toMatchObject(
      {
        reason: "mirrorMismatch",
        detail: "differs from the request in recipient",
      },
    );
  });
});
