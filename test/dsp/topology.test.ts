/**
 * dsp-validate through the in-process driver: every one of the 22 check ids has a request that fails
 * exactly that check (the response names it) and a near miss that passes; the routing, the replay
 * guard, other SRVs and the switch-date rule.
 */
import { DSP_CHECK_IDS, type DspCheckId } from "../../workers/dsp/checks";
import { verifyDuisSignature } from "../../workers/xmldsig/duis-signature";
import { parseXml } from "../../workers/xml/parser";
import { TrustStore } from "../../workers/smki/trust";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import { epochDay } from "../../processors/dsp/reference-data";
import { BY_MPXN_TOPIC, pendingDecisionSerde } from "../../processors/dsp/topology";
import { DEFAULT_RESPONSE_CODES } from "../../processors/dsp/response-codes";
import { sign, signed623, unsigned623 } from "../workers/fixtures";
import {
  DEVICE_ID,
  RECEIVED_AT,
  SUPPLIER,
  SUPPLIER_USER,
  cast,
  device,
  dsAsSigner,
  dspRig,
  registration,
  type RigOptions,
} from "./fixtures";

const DAY = 86_400_000;
const iso = (t: number): string => new Date(t).toISOString();

interface Case {
  /** A request failing exactly this check, with the reference data it needs. */
  readonly bad: () => { bytes: Buffer | string; rig?: RigOptions; at?: number };
  /** The near miss: differs in the one thing the check looks at, and passes. */
  readonly near: () => { bytes: Buffer | string; rig?: RigOptions; at?: number };
}

const otherOca = () => cast().pki.issueOca("oca-2", { ou: "07", cn: "Z2", printable: true });

const CASES: Record<DspCheckId, Case> = {
  xml: { bad: () => ({ bytes: "<sr:Request" }), near: () => ({ bytes: signed623() }) },
  schema: {
    bad: () => ({
      bytes: sign(unsigned623().toString().replace("<sr:CommandVariant>1<", "<sr:CommandVariant>10<")),
    }),
    near: () => ({ bytes: signed623() }),
  },
  signature: {
    bad: () => ({
      bytes: signed623().toString().replace("<sr:SupplierFloorSeqNumber>0<", "<sr:SupplierFloorSeqNumber>1<"),
    }),
    near: () => ({ bytes: Buffer.concat([signed623(), Buffer.from("\n")]) }),
  },
  "signer-role": {
    bad: () => ({ bytes: sign(unsigned623(), dsAsSigner()) }),
    near: () => ({ bytes: signed623() }),
  },
  "user-id-match": {
    bad: () => ({ bytes: sign(unsigned623({ requestId: `90-B3-D5-1F-30-03-00-00:${DEVICE_ID}:1` })) }),
    near: () => ({ bytes: sign(unsigned623({ requestId: `90-b3-d5-1f-30-01-00-00:${DEVICE_ID}:1` })) }),
  },
  "user-role": {
    bad: () => ({ bytes: signed623(), rig: { users: [{ ...SUPPLIER_USER, roles: ["GS"] }] } }),
    near: () => ({ bytes: signed623(), rig: { users: [{ ...SUPPLIER_USER, roles: ["IS"] }] } }),
  },
  "command-variant": {
    bad: () => ({ bytes: sign(unsigned623({ commandVariant: 2 })) }),
    near: () => ({ bytes: sign(unsigned623({ commandVariant: 1 })) }),
  },
  "device-known": {
    bad: () => ({ bytes: signed623(), rig: { devices: [device({ deviceId: "00-DB-12-34-56-78-90-A1" })] } }),
    near: () => ({ bytes: signed623(), rig: { devices: [device()] } }),
  },
  "device-type": {
    bad: () => ({ bytes: signed623(), rig: { devices: [device({ deviceType: "CHF" })] } }),
    near: () => ({ bytes: signed623(), rig: { devices: [device({ deviceType: "GSME" })] } }),
  },
  "device-status": {
    bad: () => ({ bytes: signed623(), rig: { devices: [device({ deviceStatus: "DECOMMISSIONED" })] } }),
    near: () => ({ bytes: signed623(), rig: { devices: [device({ deviceStatus: "COMMISSIONED" })] } }),
  },
  "mpxn-match": {
    bad: () => ({ bytes: signed623(), rig: { devices: [device({ importMpxn: "1312345678334" })] } }),
    near: () => ({ bytes: signed623(), rig: { devices: [device({ importMpxn: "1312345678333" })] } }),
  },
  "mpid-in-cert": {
    bad: () => ({ bytes: signed623(), rig: { users: [{ ...SUPPLIER_USER, mpids: ["ACEE"] }] } }),
    near: () => ({ bytes: signed623(), rig: { users: [{ ...SUPPLIER_USER, mpids: ["ACEE", "ACG"] }] } }),
  },
  "registration-supplier": {
    // Registered to another supplier until 10 June (UK); an immediate request on 1 June fails …
    bad: () => ({ bytes: signed623(), rig: { registrations: switchOn10June() } }),
    // … a request future-dated to 00:30 BST on 10 June (23:30 UTC on the 9th) passes.
    near: () => ({
      bytes: sign(unsigned623({ executionDateTime: "2026-06-09T23:30:00Z" })),
      rig: { registrations: switchOn10June() },
    }),
  },
  "replacement-count": {
    bad: () => ({ bytes: sign(unsigned623({ keyAgreement: null })) }),
    near: () => ({ bytes: sign(unsigned623({ keyAgreementTopUp: null })) }),
  },
  "replacement-role": {
    bad: () => ({
      bytes: sign(
        unsigned623({
          keyAgreement: cast().pki.issue("ka-role-03", { ou: "03", entityId: SUPPLIER }, ["keyAgreement"])
            .der,
        }),
      ),
    }),
    near: () => ({ bytes: sign(unsigned623({ keyAgreement: cast().replacementKaTopUp.der })) }),
  },
  "key-usage": {
    bad: () => ({ bytes: sign(unsigned623({ keyAgreement: cast().replacementDs.der })) }),
    near: () => ({ bytes: sign(unsigned623({ keyAgreement: cast().replacementKa.der })) }),
  },
  "prepayment-floor": {
    bad: () => ({ bytes: sign(unsigned623({ supplierPrepaymentTopUpFloorSeqNumber: null })) }),
    near: () => ({
      bytes: sign(unsigned623({ supplierPrepaymentTopUpFloorSeqNumber: null, keyAgreementTopUp: null })),
    }),
  },
  "oca-present": {
    bad: () => ({ bytes: sign(unsigned623({ certificationPath: [otherOca().der] })) }),
    near: () => ({ bytes: sign(unsigned623({ certificationPath: [cast().pki.oca.der] })) }),
  },
  "oca-used": {
    bad: () => ({ bytes: sign(unsigned623({ certificationPath: [cast().pki.oca.der, otherOca().der] })) }),
    near: () => ({ bytes: sign(unsigned623({ certificationPath: [cast().pki.oca.der] })) }),
  },
  "cert-valid": {
    bad: () => ({ bytes: sign(unsigned623({ keyAgreement: expiredKa().der })) }),
    near: () => ({
      bytes: sign(unsigned623({ keyAgreement: expiredKa().der, applyTimeBasedCpvChecks: false })),
    }),
  },
  "execution-date": {
    bad: () => ({ bytes: sign(unsigned623({ executionDateTime: iso(RECEIVED_AT - DAY) })) }),
    near: () => ({ bytes: sign(unsigned623({ executionDateTime: iso(RECEIVED_AT + DAY) })) }),
  },
  replay: {
    bad: () => ({ bytes: signed623({}, 7) }),
    near: () => ({ bytes: signed623({}, 8) }),
  },
};

function switchOn10June() {
  return [
    registration({
      supplierMpid: "BGAS",
      effectiveFrom: epochDay("2026-01-01"),
      effectiveTo: epochDay("2026-06-10"),
    }),
    registration({ supplierMpid: "ACEE", effectiveFrom: epochDay("2026-06-10") }),
  ];
}

function expiredKa() {
  return cast().pki.issue("ka-expired", { ou: "02", entityId: SUPPLIER }, ["keyAgreement"], {
    notAfter: new Date(Date.UTC(2022, 0, 1)),
  });
}

describe("dsp-validate: each check id fails on its own request and passes its near miss", () => {
  test("the table covers all 22 check ids", () => {
    expect(Object.keys(CASES).sort()).toEqual([...DSP_CHECK_IDS].sort());
  });

  for (const id of DSP_CHECK_IDS) {
    test(`${id} (${DEFAULT_RESPONSE_CODES[id]})`, async () => {
      const bad = CASES[id].bad();
      const rig = await dspRig(bad.rig);
      if (id === "replay") await rig.submit(bad.bytes, bad.at); // the first use of the RequestID
      await rig.submit(bad.bytes, bad.at);
      const out = await rig.responses();
      const last = out[out.length - 1]!;
      expect(last.headers["ecos.dsp.check"]).toBe(id);
      expect(last.value).toMatchObject({ successful: false, responseCode: DEFAULT_RESPONSE_CODES[id] });
      expect(last.headers["ecos.dsp.reason"]).toBeTruthy();
      if (id === "replay") expect(out.map((r) => r.value.successful)).toEqual([true, false]);
      else expect(out).toHaveLength(1);

      const near = CASES[id].near();
      const rig2 = await dspRig(near.rig);
      await rig2.submit(near.bytes, near.at);
      const ok = await rig2.responses();
      expect(ok.map((r) => [r.headers["ecos.dsp.check"], r.value.responseCode])).toEqual([
        ["accepted", "I99"],
      ]);
    });
  }
});

describe("dsp-validate: outputs and routing", () => {
  test("an accepted request goes to anomaly detection as received and to its CoS Party countersigned", async () => {
    const rig = await dspRig();
    const bytes = signed623();
    await rig.submit(bytes);
    const [anomaly] = await rig.toAnomaly();
    expect(anomaly!.key).toBe(SUPPLIER);
    expect(anomaly!.value.raw.equals(bytes)).toBe(true);
    const [cos] = await rig.toCosParty("ecos");
    expect(cos!.key).toBe(DEVICE_ID);
    const trust = new TrustStore(cast().trust, opensslEcdsa);
    const doc = parseXml(cos!.value.raw);
    // The supplier's signature still verifies over the countersigned bytes, and so does the DSP's.
    expect(verifyDuisSignature(doc, { trust, ecdsa: opensslEcdsa, at: RECEIVED_AT, index: 0 }).ok).toBe(true);
    const dsp = verifyDuisSignature(doc, { trust, ecdsa: opensslEcdsa, at: RECEIVED_AT, index: 1 });
    expect(dsp.ok && dsp.signer.role).toBe(0x89);
    expect(await rig.toCosParty("tcos")).toHaveLength(0);
    expect((await rig.stages()).map((s) => s.value.stage)).toEqual(["VALIDATED", "COS_PARTY_REQUESTED"]);
    const [response] = await rig.responses();
    expect(response!.value).toMatchObject({ supplierMpid: "ACEE", cosParty: "ECOS", deviceType: "ESME" });
  });

  test("without the anomaly copy, nothing goes to anomaly.requests and the request crosses the internal hop once, inside the countersigned bytes", async () => {
    const rig = await dspRig({ extra: { anomalyCopy: false } });
    const bytes = signed623();
    await rig.submit(bytes);
    expect(await rig.toAnomaly()).toHaveLength(0);
    const [cos] = await rig.toCosParty("ecos");
    const doc = parseXml(cos!.value.raw);
    const trust = new TrustStore(cast().trust, opensslEcdsa);
    expect(verifyDuisSignature(doc, { trust, ecdsa: opensslEcdsa, at: RECEIVED_AT, index: 0 }).ok).toBe(true);
    expect(verifyDuisSignature(doc, { trust, ecdsa: opensslEcdsa, at: RECEIVED_AT, index: 1 }).ok).toBe(true);
    const [pending] = await rig.driver.readOutput(BY_MPXN_TOPIC, pendingDecisionSerde());
    expect(pending!.value.raw).toHaveLength(0);
    expect(pending!.value.countersigned!.length).toBeGreaterThan(bytes.length);
    // With the copy (the default), the internal record carries the bytes received as well.
    const withCopy = await dspRig();
    await withCopy.submit(bytes);
    const [both] = await withCopy.driver.readOutput(BY_MPXN_TOPIC, pendingDecisionSerde());
    expect(both!.value.raw.equals(bytes)).toBe(true);
  });

  test("a TCoS-credentialled SMETS2 device is routed to the TCoS Party; a SMETS1 device to the ECoS Party", async () => {
    const tcos = await dspRig({ devices: [device({ cosCredential: "TCOS" })] });
    await tcos.submit(signed623());
    expect(await tcos.toCosParty("tcos")).toHaveLength(1);
    const s1 = await dspRig({ devices: [device({ cosCredential: "TCOS", smetsGeneration: "SMETS1" })] });
    await s1.submit(signed623());
    expect(await s1.toCosParty("ecos")).toHaveLength(1);
  });

  test("another SRV is answered 'not supported' (E13) and goes nowhere else", async () => {
    const rig = await dspRig();
    const text = unsigned623()
      .toString()
      .replace(/6\.23<\/sr:ServiceReference>/, "4.1</sr:ServiceReference>")
      .replace(/6\.23<\/sr:ServiceReferenceVariant>/, "4.1.1</sr:ServiceReferenceVariant>")
      .replace(/<sr:Body>[\s\S]*<\/sr:Body>/, "<sr:Body><sr:ReadInstantaneousImportRegisters/></sr:Body>");
    await rig.submit(text);
    const [r] = await rig.responses();
    expect(r!.headers["ecos.dsp.check"]).toBe("srv-unsupported");
    expect(r!.value).toMatchObject({ responseCode: "E13", srv: "4.1.1", successful: false });
    expect(r!.headers["ecos.dsp.reason"]).toMatch(/not processed here/);
    expect(await rig.toAnomaly()).toHaveLength(0);
  });

  test("the first failure in check order wins across the two stages (device-status before registration-supplier)", async () => {
    const rig = await dspRig({
      devices: [device({ deviceStatus: "SUSPENDED" })],
      registrations: [registration({ supplierMpid: "BGAS" })],
    });
    await rig.submit(sign(unsigned623({ supplierPrepaymentTopUpFloorSeqNumber: null })));
    const [r] = await rig.responses();
    expect(r!.headers["ecos.dsp.check"]).toBe("device-status");
  });

  test("registration-supplier before replacement-count and the worker checks after it", async () => {
    const rig = await dspRig({ registrations: [registration({ supplierMpid: "BGAS" })] });
    await rig.submit(sign(unsigned623({ keyAgreement: null, supplierPrepaymentTopUpFloorSeqNumber: null })));
    const [r] = await rig.responses();
    expect(r!.headers["ecos.dsp.check"]).toBe("registration-supplier");
    expect(r!.value.responseCode).toBe("E4");
  });

  test("a replayed request is rejected even after a restart (the replay store is restored)", async () => {
    const rig = await dspRig();
    const bytes = signed623({}, 42);
    await rig.submit(bytes);
    await rig.driver.restart();
    await rig.submit(bytes, RECEIVED_AT + 1000);
    const out = await rig.responses();
    expect(out.map((r) => r.headers["ecos.dsp.check"])).toEqual(["accepted", "replay"]);
  });

  test("each refused submission of a RequestID has its own REJECTED event id (its receipt time)", async () => {
    const rig = await dspRig({ registrations: [registration({ supplierMpid: "BGAS" })] });
    // The original is refused (registration), then resent twice; the same record read twice (a
    // redelivery) must keep its id, so a re-emitted event is still stored once.
    const bytes = sign(unsigned623({}, 45));
    await rig.submit(bytes);
    await rig.submit(bytes, RECEIVED_AT + 1000);
    await rig.submit(bytes, RECEIVED_AT + 2000);
    const stages = await rig.stages();
    expect(stages.map((s) => s.value.stage)).toEqual(["REJECTED", "REJECTED", "REJECTED"]);
    const rid = stages[0]!.value.requestId;
    expect(stages.map((s) => s.value.eventId)).toEqual([
      `${rid}:REJECTED:${RECEIVED_AT}`,
      `${rid}:REJECTED:${RECEIVED_AT + 1000}`,
      `${rid}:REJECTED:${RECEIVED_AT + 2000}`,
    ]);
  });

  test("an accepted request's stages keep sequence 0; its replay's refusal does not collide with them", async () => {
    const rig = await dspRig();
    const bytes = signed623({}, 46);
    await rig.submit(bytes);
    await rig.submit(bytes, RECEIVED_AT + 1000);
    const ids = (await rig.stages()).map((s) => s.value.eventId.replace(/^.*?:(\w+:\d+)$/, "$1"));
    expect(ids).toEqual(["VALIDATED:0", "COS_PARTY_REQUESTED:0", `REJECTED:${RECEIVED_AT + 1000}`]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test("a forged request cannot burn another User's RequestID: only authenticated requests claim it", async () => {
    const rig = await dspRig();
    const genuine = signed623({}, 43);
    await rig.submit(
      genuine.toString().replace("<sr:SupplierFloorSeqNumber>0<", "<sr:SupplierFloorSeqNumber>5<"),
    );
    await rig.submit(genuine);
    expect((await rig.responses()).map((r) => r.headers["ecos.dsp.check"])).toEqual([
      "signature",
      "accepted",
    ]);
  });

  test("the response code table is data: a deployment can override a [GAP] code", async () => {
    const { responseCodes } = await import("../../processors/dsp/response-codes");
    const rig = await dspRig({ extra: { responseCodes: responseCodes({ replay: "E062399" }) } });
    const bytes = signed623({}, 44);
    await rig.submit(bytes);
    await rig.submit(bytes);
    expect((await rig.responses()).map((r) => r.value.responseCode)).toEqual(["I99", "E062399"]);
    expect(() => responseCodes({ nope: "E1" } as never)).toThrow(/unknown check/);
  });
});
