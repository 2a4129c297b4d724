import { opensslEcdsa } from "../../../workers/crypto/ecdsa";
import {
  ALERT_FUTURE_DATED_FAILURE,
  ALERT_FUTURE_DATED_SUCCESS,
  executeDue,
  receiveCommand,
  type SimulatedDevice,
} from "../../../workers/gbcs/device";
import {
  buildPreCommand,
  DUIS_CANCELLATION_MS,
  payloadFor623,
  type Srv623Credentials,
} from "../../../workers/gbcs/pre-command";
import { buildSrv623Cast, buildTestPki, type TestCredential } from "../../../workers/testing/test-pki";

const ecdsa = opensslEcdsa;
const cast = buildSrv623Cast("gbcs-device-test");
const pki = cast.pki;
const ECOS_ID = "90-B3-D5-1F-30-00-00-04";
const DEVICE_ID = "00-DB-12-34-56-78-90-A0";
const NOW = Date.UTC(2027, 0, 1);
const ecosParty = pki.issue("ecos-party", { ou: "05", entityId: ECOS_ID }, ["digitalSignature"]);
const tcosParty = pki.issue("tcos-party", { ou: "05", entityId: "90-B3-D5-1F-30-00-00-05" }, [
  "digitalSignature",
]);
const LOSING = "90-B3-D5-1F-30-03-00-00";
const losingDs = pki.issue("losing-ds", { ou: "02", entityId: LOSING }, ["digitalSignature"]);
const losingKa = pki.issue("losing-ka", { ou: "02", entityId: LOSING }, ["keyAgreement"]);
const losingKaTopUp = pki.issue("losing-ka-topup", { ou: "02", entityId: LOSING }, ["keyAgreement"]);

const esme = (overrides: Partial<SimulatedDevice> = {}): SimulatedDevice => ({
  deviceId: DEVICE_ID,
  root: pki.root.der,
  transitionalCoS: ecosParty.der,
  supplierCells: {
    digitalSignature: losingDs.der,
    keyAgreement: losingKa.der,
    keyAgreementTopUp: losingKaTopUp.der,
  },
  floors: { transitionalCoS: 100n, supplier: 5000n, supplierPrepaymentTopUp: 70n },
  pending: null,
  ...overrides,
});

const request = (o: Partial<Srv623Credentials> = {}): Srv623Credentials => ({
  supplierFloorSeqNumber: 0n,
  supplierPrepaymentTopUpFloorSeqNumber: 0n,
  digitalSigningCertificate: cast.replacementDs.der,
  keyAgreementCertificate: cast.replacementKa.der,
  keyAgreementTopUpCertificate: cast.replacementKaTopUp.der,
  certificationPathCertificates: [pki.oca.der],
  applyTimeBasedCpvChecks: true,
  ...o,
});

const command = (
  counter: bigint,
  o: Partial<Srv623Credentials> = {},
  signer: TestCredential = ecosParty,
  ids: { cos?: string; device?: string } = {},
): Buffer =>
  buildPreCommand(
    {
      cosPartyId: ids.cos ?? ECOS_ID,
      deviceId: ids.device ?? DEVICE_ID,
      counter,
      payload: payloadFor623(request(o)),
    },
    ecdsa,
    ecdsa.importPrivateKey(signer.scalar),
  );

const ski = (c: TestCredential): string =>
  (c.cert.subjectKeyId ?? "").replace(/[^0-9A-F]/gi, "").toUpperCase();

describe("device: immediate CS02b", () => {
  test("verifies, replaces the three supplier cells and resets the supplier floors", () => {
    const { device, answer } = receiveCommand(esme(), command(101n), NOW, ecdsa);
    if (answer.kind !== "executed") throw new Error(JSON.stringify(answer));
    expect(answer.outcome.success).toBe(true);
    expect(answer.outcome.authorisingSeqNumber).toBe(101n);
    expect(answer.outcome.replacementOutcomes.map((o) => o.status)).toEqual([
      "success",
      "success",
      "success",
    ]);
    const ds = answer.outcome.replacementOutcomes[0]!;
    expect(ds.existingEntityId).toBe("90B3D51F30030000");
    expect(ds.existingSki).toBe(ski(losingDs));
    expect(ds.newEntityId).toBe("90B3D51F30010000");
    expect(ds.newSki).toBe(ski(cast.replacementDs));
    expect(Buffer.from(device.supplierCells.digitalSignature!).equals(cast.replacementDs.der)).toBe(true);
    expect(Buffer.from(device.supplierCells.keyAgreementTopUp!).equals(cast.replacementKaTopUp.der)).toBe(
      true,
    );
    expect(device.floors).toEqual({ transitionalCoS: 101n, supplier: 0n, supplierPrepaymentTopUp: 0n });
  });

  test("the same command again is a replay; a lower counter too", () => {
    const first = receiveCommand(esme(), command(101n), NOW, ecdsa);
    const again = receiveCommand(first.device, command(101n), NOW, ecdsa);
    expect(again.answer).toMatchObject({ kind: "refused", reason: "counterReplayed" });
    expect(again.device).toBe(first.device);
    expect(receiveCommand(esme(), command(100n), NOW, ecdsa).answer).toMatchObject({
      reason: "counterReplayed",
    });
  });

  test("a tampered command is refused and changes nothing", () => {
    const bytes = command(101n);
    for (const pos of [5, 40, 200, bytes.length - 70, bytes.length - 3]) {
      const t = Buffer.from(bytes);
      t[pos] = t[pos]! ^ 0x80;
      const r = receiveCommand(esme(), t, NOW, ecdsa);
      expect(r.answer.kind).toBe("refused");
      expect(r.device).toEqual(esme());
    }
  });

  test("addressing and originator: another device, a party not in the transitionalCoS cell", () => {
    expect(
      receiveCommand(esme(), command(101n, {}, ecosParty, { device: "00-DB-12-34-56-78-90-A1" }), NOW, ecdsa)
        .answer,
    ).toMatchObject({ reason: "notAddressedToDevice" });
    // A TCoS-signed command to a device whose cell holds the ECoS certificate (and the reverse).
    expect(
      receiveCommand(esme(), command(101n, {}, tcosParty, { cos: "90-B3-D5-1F-30-00-00-05" }), NOW, ecdsa)
        .answer,
    ).toMatchObject({ reason: "unknownOriginator" });
    expect(receiveCommand(esme(), command(101n, {}, tcosParty), NOW, ecdsa).answer).toMatchObject({
      reason: "signatureInvalid",
    });
  });

  test("a replacement certificate of the wrong role is badCertificate; nothing is applied", () => {
    const networkOperator = pki.issue("no-ds", { ou: "03", entityId: "90-B3-D5-1F-30-02-00-00" }, [
      "digitalSignature",
    ]);
    const { device, answer } = receiveCommand(
      esme(),
      command(101n, { digitalSigningCertificate: networkOperator.der }),
      NOW,
      ecdsa,
    );
    if (answer.kind !== "executed") throw new Error(answer.kind);
    expect(answer.outcome.success).toBe(false);
    expect(answer.outcome.replacementOutcomes.map((o) => o.status)).toEqual([
      "badCertificate",
      "other",
      "other",
    ]);
    expect(device.supplierCells).toEqual(esme().supplierCells);
    expect(device.floors).toEqual({ ...esme().floors, transitionalCoS: 101n }); // the command itself was authentic
  });

  test("a key-agreement certificate in the DS cell is badCertificate", () => {
    const r = receiveCommand(
      esme(),
      command(101n, { digitalSigningCertificate: cast.replacementKa.der }),
      NOW,
      ecdsa,
    );
    if (r.answer.kind !== "executed") throw new Error(r.answer.kind);
    expect(r.answer.outcome.replacementOutcomes[0]!.status).toBe("badCertificate");
  });

  test("a certificate from another PKI (issuer not in the path, not the root) is noTrustAnchor", () => {
    const other = buildTestPki("another-pki");
    const foreign = other.issue("foreign-ds", { ou: "02", entityId: "90-B3-D5-1F-30-01-00-00" }, [
      "digitalSignature",
    ]);
    const foreignNamed = buildTestPki("another-pki").issueOca("x", { ou: "07", cn: "Z9", printable: true });
    const r = receiveCommand(esme(), command(101n, { digitalSigningCertificate: foreign.der }), NOW, ecdsa);
    if (r.answer.kind !== "executed") throw new Error(r.answer.kind);
    // Same issuer name (Z1) as the device's OCA but a different key: the path does not verify.
    expect(r.answer.outcome.replacementOutcomes[0]!.status).toBe("badCertificate");
    const stranger = other.issue(
      "stranger",
      { ou: "02", entityId: "90-B3-D5-1F-30-01-00-00" },
      ["digitalSignature"],
      {
        issuer: { ou: "07", cn: "Z9", printable: true },
        issuerPoint: foreignNamed.point,
        signingKey: foreignNamed.scalar,
      },
    );
    const r2 = receiveCommand(esme(), command(101n, { digitalSigningCertificate: stranger.der }), NOW, ecdsa);
    if (r2.answer.kind !== "executed") throw new Error(r2.answer.kind);
    expect(r2.answer.outcome.replacementOutcomes[0]!.status).toBe("noTrustAnchor");
  });

  test("a device without a top-up cell answers trustAnchorNotFound for it", () => {
    const gpf = esme({ supplierCells: { digitalSignature: losingDs.der, keyAgreement: losingKa.der } });
    const r = receiveCommand(gpf, command(101n), NOW, ecdsa);
    if (r.answer.kind !== "executed") throw new Error(r.answer.kind);
    expect(r.answer.outcome.replacementOutcomes.map((o) => o.status)).toEqual([
      "other",
      "other",
      "trustAnchorNotFound",
    ]);
  });

  test("time-based CPV checks: an expired certificate fails when applied, passes when disapplied", () => {
    const expired = pki.issue(
      "expired-ds",
      { ou: "02", entityId: "90-B3-D5-1F-30-01-00-00" },
      ["digitalSignature"],
      {
        notAfter: new Date(Date.UTC(2026, 0, 1)),
      },
    );
    const applied = receiveCommand(
      esme(),
      command(101n, { digitalSigningCertificate: expired.der }),
      NOW,
      ecdsa,
    );
    if (applied.answer.kind !== "executed") throw new Error(applied.answer.kind);
    expect(applied.answer.outcome.replacementOutcomes[0]!.status).toBe("badCertificate");
    const disapplied = receiveCommand(
      esme(),
      command(101n, { digitalSigningCertificate: expired.der, applyTimeBasedCpvChecks: false }),
      NOW,
      ecdsa,
    );
    if (disapplied.answer.kind !== "executed") throw new Error(disapplied.answer.kind);
    expect(disapplied.answer.outcome.success).toBe(true);
  });
});

describe("device: future-dated and cancellation", () => {
  const AT = Date.UTC(2027, 5, 1);

  test("accepted now, executed at the time with alert 0x8F66", () => {
    const accepted = receiveCommand(esme(), command(101n, { executionDateTime: AT }), NOW, ecdsa);
    expect(accepted.answer).toEqual({ kind: "accepted", counter: 101n });
    expect(accepted.device.supplierCells).toEqual(esme().supplierCells);
    expect(executeDue(accepted.device, AT - 1, ecdsa).alert).toBeNull();
    const due = executeDue(accepted.device, AT, ecdsa);
    expect(due.alert?.alertCode).toBe(ALERT_FUTURE_DATED_SUCCESS);
    expect(due.alert?.outcome.authorisingSeqNumber).toBe(101n);
    expect(due.device.pending).toBeNull();
    expect(Buffer.from(due.device.supplierCells.digitalSignature!).equals(cast.replacementDs.der)).toBe(true);
  });

  test("a failing future-dated command alerts 0x8F67", () => {
    const bad = pki.issue("bad-ka-as-ds", { ou: "02", entityId: "90-B3-D5-1F-30-01-00-00" }, [
      "keyAgreement",
    ]);
    const accepted = receiveCommand(
      esme(),
      command(101n, { executionDateTime: AT, digitalSigningCertificate: bad.der }),
      NOW,
      ecdsa,
    );
    expect(executeDue(accepted.device, AT, ecdsa).alert?.alertCode).toBe(ALERT_FUTURE_DATED_FAILURE);
  });

  test("a cancellation (fresh counter) drops the held command", () => {
    const accepted = receiveCommand(esme(), command(101n, { executionDateTime: AT }), NOW, ecdsa);
    const cancelled = receiveCommand(
      accepted.device,
      command(102n, { executionDateTime: DUIS_CANCELLATION_MS }),
      NOW,
      ecdsa,
    );
    expect(cancelled.answer).toEqual({ kind: "accepted", counter: 102n });
    expect(cancelled.device.pending).toBeNull();
    expect(executeDue(cancelled.device, AT, ecdsa).alert).toBeNull();
  });
});
