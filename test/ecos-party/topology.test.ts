/**
 * The ECoS Party and TCoS Party topology on the in-process driver: authorisations for SMETS2+ (a
 * pre-command that verifies with the party's key and mirrors the request) and SMETS1, future-dated
 * and cancellation, every refusal with its code, stage and alert, and the per-device counter across
 * restarts, crashes and redeliveries.
 */
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import { isSrv623, readDuisRequest, type Srv623Request } from "../../workers/duis/request";
import { checkPreCommand } from "../../workers/gbcs/dispatch-check";
import { preCommandInputFor623 } from "../../workers/gbcs/from-duis";
import { parsePreCommand } from "../../workers/gbcs/pre-command";
import { TrustStore } from "../../workers/smki/trust";
import { parseXml } from "../../workers/xml/parser";
import {
  countersignDuisDocument,
  signatureElements,
  verifyDuisSignature,
} from "../../workers/xmldsig/duis-signature";
import type { CosAuthorisation } from "../../processors/cos/records";
import { COS_COUNTER_STORE, type CosCounterEntry } from "../../processors/ecos-party/cos-counter";
import { DEFAULT_COS_PARTY_RESPONSE_CODES, type CosPartyCheckId } from "../../processors/ecos-party/checks";
import { InlineCosPartyCrypto, type PreCommandJob } from "../../processors/ecos-party/crypto";
import {
  AUTHORISED_PER_DEVICE,
  cosPartyStores,
  type AuthorisedRequest,
} from "../../processors/ecos-party/topology";
import { cosPartyAvroSerdes } from "../../processors/ecos-party/serdes";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import {
  DEVICE_2,
  DEVICE_ID,
  ECOS_ID,
  RECEIVED_AT,
  SUPPLIER,
  TCOS_ID,
  cast,
  countersigned623,
  cryptoOptions,
  device,
  dsAsSigner,
  envelope,
  party,
  partyRig,
  sign,
  unsigned623,
  type PartyRigOptions,
} from "./fixtures";

const DAY = 86_400_000;

function request623(bytes: Buffer): Srv623Request {
  const r = readDuisRequest(parseXml(bytes));
  if (!isSrv623(r)) throw new Error("not a 6.23");
  return r;
}

/** The dispatch-side check of a pre-command against the request it carries and a party certificate. */
function checkAgainst(a: CosAuthorisation, p: "ECOS" | "TCOS" = "ECOS"): ReturnType<typeof checkPreCommand> {
  const creds = party(p);
  const { counter: _c, ...expected } = preCommandInputFor623(request623(a.countersigned), creds.entityId, 0n);
  return checkPreCommand(a.preCommand!, expected, creds.cos.cert, opensslEcdsa);
}

describe("ECoS Party: authorisations", () => {
  test("SMETS2+: countersigned by the party, pre-command signed with its key and mirroring the request, counter per device", async () => {
    const rig = await partyRig();
    await rig.send(
      envelope(countersigned623({}, 1006)),
      envelope(countersigned623({}, 1007), 1007),
      envelope(countersigned623({}, 1008, DEVICE_2), 1008, DEVICE_2),
    );
    const out = await rig.authorisations();
    expect(out.map((r) => [r.key, r.value.requestId, r.value.counter])).toEqual([
      [DEVICE_ID, `${SUPPLIER}:${DEVICE_ID}:1006`, "1"],
      [DEVICE_ID, `${SUPPLIER}:${DEVICE_ID}:1007`, "2"],
      [DEVICE_2, `${SUPPLIER}:${DEVICE_2}:1008`, "1"],
    ]);
    const a = out[0]!.value;
    expect(a).toMatchObject({
      deviceId: DEVICE_ID,
      userId: SUPPLIER,
      cosParty: "ECOS",
      smetsGeneration: "SMETS2",
      deviceType: "ESME",
      receivedAt: RECEIVED_AT,
      authorisedAt: RECEIVED_AT + 1000,
      executionAt: null,
      cancellation: false,
    });
    // The pre-command: the dispatch check passes (originator, signature, byte-for-byte mirror) …
    const verdict = checkAgainst(a);
    expect(verdict).toMatchObject({ ok: true });
    const pc = parsePreCommand(a.preCommand!);
    expect(pc.header.originatorCounter).toBe(1n);
    expect(pc.payload.authorisingSeqNumber).toBe(1n);
    expect(Buffer.from(pc.header.recipient).toString("hex")).toBe(DEVICE_ID.replace(/-/g, "").toLowerCase());
    expect(Buffer.from(pc.payload.replacements[0]!.certificate).equals(cast().replacementDs.der)).toBe(true);
    // … and fails with the TCoS Party's key (a device holding the ECoS credential would refuse it).
    expect(
      checkPreCommand(
        a.preCommand!,
        { ...preCommandInputFor623(request623(a.countersigned), ECOS_ID, 0n) },
        party("TCOS").cos.cert,
        opensslEcdsa,
      ),
    ).toMatchObject({ ok: false });
    // The countersigned request: the User's, the DSP's and the party's signatures all verify.
    const doc = parseXml(a.countersigned);
    expect(signatureElements(doc)).toHaveLength(3);
    const c = cast();
    const trust = new TrustStore(
      c.pki.trust([c.supplierXmlSign, c.dspXmlSign, party("ECOS").xmlSign]),
      opensslEcdsa,
    );
    const signers = [0, 1, 2].map((index) => {
      const v = verifyDuisSignature(doc, { trust, ecdsa: opensslEcdsa, at: RECEIVED_AT, index });
      return v.ok ? v.signer.entityId : v.reason;
    });
    expect(signers).toEqual([SUPPLIER, c.dspXmlSign.cert.entityId, ECOS_ID]);
    const stages = await rig.stages();
    expect(stages.map((s) => [s.requestId, s.stage, s.cosParty])).toEqual(
      out.map((r) => [r.value.requestId, "COS_PARTY_AUTHORISED", "ECOS"]),
    );
    expect(await rig.responses()).toEqual([]);
    expect(await rig.alerts()).toEqual([]);
    await rig.driver.close();
  });

  test("SMETS1: the countersigned request only, no pre-command and no counter", async () => {
    const rig = await partyRig({
      devices: [device({ smetsGeneration: "SMETS1", cosCredential: "UNKNOWN" })],
    });
    await rig.send(envelope(countersigned623()));
    const [a] = (await rig.authorisations()).map((r) => r.value);
    expect(a).toMatchObject({ smetsGeneration: "SMETS1", preCommand: null, counter: null, cosParty: "ECOS" });
    expect(signatureElements(parseXml(a!.countersigned))).toHaveLength(3);
    expect(rig.driver.storeEntries(COS_COUNTER_STORE)).toEqual([]);
    await rig.driver.close();
  });

  test("future-dated carries the execution time; a cancellation carries the flag and the GBCS sentinel", async () => {
    const rig = await partyRig();
    const at = RECEIVED_AT + 10 * DAY;
    await rig.send(
      envelope(countersigned623({ executionDateTime: new Date(at).toISOString() }, 1010), 1010),
      envelope(countersigned623({ executionDateTime: "3000-12-31T00:00:00Z" }, 1011), 1011),
    );
    const [fd, cancel] = (await rig.authorisations()).map((r) => r.value);
    expect(fd).toMatchObject({ executionAt: at, cancellation: false, counter: "1" });
    expect(parsePreCommand(fd!.preCommand!).payload.execution).toEqual({ kind: "futureDated", at });
    expect(checkAgainst(fd!)).toMatchObject({ ok: true });
    expect(cancel).toMatchObject({ executionAt: null, cancellation: true, counter: "2" });
    const pc = parsePreCommand(cancel!.preCommand!);
    expect(pc.payload.execution).toEqual({ kind: "cancellation" });
    expect(pc.payload.seqNumberChanges).toBeNull();
    expect(checkAgainst(cancel!)).toMatchObject({ ok: true });
    await rig.driver.close();
  });

  test("the same topology with the Avro serdes of the contract (schemas/ecos.cos.CosAuthorisation.avsc)", async () => {
    const rig = await partyRig({ serdes: cosPartyAvroSerdes(new InMemorySchemaRegistry()) });
    await rig.send(envelope(countersigned623()));
    const [a] = (await rig.authorisations()).map((r) => r.value);
    expect(a!.counter).toBe("1");
    expect(checkAgainst(a!)).toMatchObject({ ok: true });
    await rig.driver.close();
  });
});

interface RefusalCase {
  readonly check: CosPartyCheckId;
  readonly bytes: () => Buffer;
  readonly rig?: PartyRigOptions;
  readonly code?: string;
}

const REFUSALS: Record<string, RefusalCase> = {
  "bad supplier signature": {
    check: "signature",
    bytes: () => {
      const signed = sign(unsigned623())
        .toString()
        .replace("<sr:SupplierFloorSeqNumber>0<", "<sr:SupplierFloorSeqNumber>1<");
      // The DSP countersigns what it was given; the User's signature no longer matches it.
      const b = Buffer.from(signed);
      return countersignDuisDocument(b, parseXml(b), cast().dspXmlSign.signingKey());
    },
  },
  "bad DSP countersignature (signed by the supplier's key)": {
    check: "dsp-countersignature",
    bytes: () => countersigned623({}, 1006, DEVICE_ID, cast().supplierXmlSign),
  },
  "no DSP countersignature": {
    check: "dsp-countersignature",
    bytes: () => sign(unsigned623()),
  },
  "DSP countersignature that does not cover the document": {
    check: "dsp-countersignature",
    bytes: () => {
      const s = countersigned623().toString();
      // Flip one character of the DSP's (second) SignatureValue.
      const at = s.lastIndexOf("<ds:SignatureValue>") + "<ds:SignatureValue>".length;
      const ch = s[at] === "A" ? "B" : "A";
      return Buffer.from(s.slice(0, at) + ch + s.slice(at + 1));
    },
  },
  "wrong signer role (supplier DS certificate, not xmlSign)": {
    check: "signer-role",
    code: "E65",
    bytes: () => {
      const signed = sign(unsigned623(), dsAsSigner());
      return countersignDuisDocument(signed, parseXml(signed), cast().dspXmlSign.signingKey());
    },
  },
  "user id in the request is not the signer's": {
    check: "user-id-match",
    bytes: () => countersigned623({ requestId: `90-B3-D5-1F-30-03-00-00:${DEVICE_ID}:1006` }),
  },
  "device holds the TCoS credential": {
    check: "cos-credential",
    bytes: () => countersigned623(),
    rig: { devices: [device({ cosCredential: "TCOS" })] },
  },
  "device's credential is unknown": {
    check: "cos-credential",
    bytes: () => countersigned623(),
    rig: { devices: [device({ cosCredential: "UNKNOWN" })] },
  },
  "device not in the inventory": {
    check: "device-known",
    code: "E19",
    bytes: () => countersigned623(),
    rig: { devices: [device({ deviceId: DEVICE_2 })] },
  },
  "replacement certificates issued by an OCA that is not included": {
    check: "oca-present",
    bytes: () =>
      countersigned623({
        certificationPath: [
          cast().pki.issueOca("ecos-party-oca-2", { ou: "07", cn: "Z2", printable: true }).der,
        ],
      }),
  },
};

describe("ECoS Party: refusals (response, COS_PARTY_REFUSED stage, N63 alert, no authorisation)", () => {
  test.each(Object.entries(REFUSALS))("%s", async (_name, c) => {
    const rig = await partyRig(c.rig);
    await rig.send(envelope(c.bytes()));
    expect(await rig.authorisations()).toEqual([]);
    const responses = await rig.responses();
    expect(responses).toHaveLength(1);
    const code = c.code ?? DEFAULT_COS_PARTY_RESPONSE_CODES[c.check];
    expect(responses[0]!.headers["ecos.cos-party.check"]).toBe(c.check);
    expect(responses[0]!.value).toMatchObject({
      requestId: `${SUPPLIER}:${DEVICE_ID}:1006`,
      responseCode: code,
      successful: false,
      cosParty: "ECOS",
    });
    expect(await rig.stages()).toEqual([
      expect.objectContaining({ stage: "COS_PARTY_REFUSED", responseCode: code, cosParty: "ECOS" }),
    ]);
    const alerts = await rig.alerts();
    expect(alerts.map((a) => [a.key, a.value.alertCode, a.value.alertType, a.value.ecosErrorCode])).toEqual([
      [SUPPLIER, "N63", "ECoSAlert", code],
    ]);
    expect(rig.driver.storeEntries(COS_COUNTER_STORE)).toEqual([]);
    await rig.driver.close();
  });

  test("an envelope that names another device than the signed request: envelope-match, answered to the signer", async () => {
    const rig = await partyRig();
    const forged = {
      ...envelope(countersigned623({}, 1006)),
      deviceId: DEVICE_2,
      userId: "90-B3-D5-1F-30-09-00-00",
    };
    await rig.send(forged);
    expect(await rig.authorisations()).toEqual([]);
    const [r] = await rig.responses();
    expect(r!.headers["ecos.cos-party.check"]).toBe("envelope-match");
    expect(r!.value).toMatchObject({
      requestId: `${SUPPLIER}:${DEVICE_ID}:1006`,
      userId: SUPPLIER,
      deviceId: DEVICE_ID,
    });
    expect((await rig.alerts()).map((a) => a.value.recipientUserId)).toEqual([SUPPLIER]);
    await rig.driver.close();
  });

  test("the codes are data: an override reaches the response and the alert", async () => {
    const { cosPartyResponseCodes } = await import("../../processors/ecos-party/checks");
    const rig = await partyRig({
      devices: [device({ cosCredential: "TCOS" })],
      extra: { responseCodes: cosPartyResponseCodes({ "cos-credential": "E062306" }) },
    });
    await rig.send(envelope(countersigned623()));
    expect((await rig.responses()).map((r) => r.value.responseCode)).toEqual(["E062306"]);
    expect((await rig.alerts()).map((r) => r.value.ecosErrorCode)).toEqual(["E062306"]);
    expect(() => cosPartyResponseCodes({ "no-such-check": "E1" } as never)).toThrow(RangeError);
    await rig.driver.close();
  });

  test("anomaly breach: N63 with the count, nothing quarantined, the request finished; resend after the day passes", async () => {
    const rig = await partyRig({ adtRows: ["6.23,1440,1,1"] });
    await rig.send(envelope(countersigned623({}, 1006)), envelope(countersigned623({}, 1007), 1007));
    const auths = await rig.authorisations();
    expect(auths.map((r) => r.value.requestId)).toEqual([`${SUPPLIER}:${DEVICE_ID}:1006`]);
    const responses = await rig.responses();
    expect(
      responses.map((r) => [r.value.requestId, r.value.responseCode, r.headers["ecos.cos-party.check"]]),
    ).toEqual([
      [
        `${SUPPLIER}:${DEVICE_ID}:1007`,
        DEFAULT_COS_PARTY_RESPONSE_CODES["anomaly-threshold"],
        "anomaly-threshold",
      ],
    ]);
    const alerts = (await rig.alerts()).map((a) => a.value);
    expect(alerts).toEqual([
      expect.objectContaining({
        alertCode: "N63",
        alertType: "ECoSAlert",
        recipientUserId: SUPPLIER,
        requestId: `${SUPPLIER}:${DEVICE_ID}:1007`,
        deviceId: DEVICE_ID,
      }),
    ]);
    expect(alerts[0]!.detail).toMatch(/2 requests .* exceed the User's ADT 1/);
    const events = await rig.anomalyEvents();
    expect(events.map((e) => [e.kind, e.dccAlertCode, e.count, e.threshold])).toEqual([
      ["ECOS_PARTY_THRESHOLD_BREACHED", "N63", 2, 1],
    ]);
    // No quarantine anywhere in the party's topology; the refused request took no counter.
    expect([...rig.driver.topology.sinkTopics].some((t) => t.includes("quarantin"))).toBe(false);
    expect(rig.driver.storeEntries<CosCounterEntry>(COS_COUNTER_STORE).map(([, e]) => e.counter)).toEqual([
      "1",
    ]);
    // The supplier resends the next day: authorised.
    await rig.send(envelope(countersigned623({}, 1008), 1008, DEVICE_ID, RECEIVED_AT + 2 * DAY));
    expect((await rig.authorisations()).map((r) => r.value.counter)).toEqual(["2"]);
    await rig.driver.close();
  });
});

describe("TCoS Party", () => {
  const decommissionAt = RECEIVED_AT + 30 * DAY;

  test("before its decommission date: authorises TCoS devices with the transitional key only", async () => {
    const rig = await partyRig({ party: "TCOS", extra: { decommissionAt } });
    await rig.send(envelope(countersigned623()));
    const [a] = (await rig.authorisations()).map((r) => r.value);
    expect(a).toMatchObject({ cosParty: "TCOS", counter: "1" });
    expect(parsePreCommand(a!.preCommand!).header.originator.toString("hex")).toBe(
      TCOS_ID.replace(/-/g, "").toLowerCase(),
    );
    expect(checkAgainst(a!, "TCOS")).toMatchObject({ ok: true });
    const ecosExpect = preCommandInputFor623(request623(a!.countersigned), TCOS_ID, 0n);
    expect(checkPreCommand(a!.preCommand!, ecosExpect, party("ECOS").cos.cert, opensslEcdsa)).toMatchObject({
      ok: false,
    });
    expect(rig.driver.storeEntries(cosPartyStores("TCOS").counters)).toHaveLength(1);
    await rig.driver.close();
  });

  test("refuses an ECoS device and a SMETS1 device", async () => {
    const rig = await partyRig({
      party: "TCOS",
      devices: [device({ cosCredential: "ECOS" }), device({ deviceId: DEVICE_2, smetsGeneration: "SMETS1" })],
    });
    await rig.send(
      envelope(countersigned623()),
      envelope(countersigned623({}, 1007, DEVICE_2), 1007, DEVICE_2),
    );
    expect(await rig.authorisations()).toEqual([]);
    expect((await rig.responses()).map((r) => r.headers["ecos.cos-party.check"])).toEqual([
      "cos-credential",
      "cos-credential",
    ]);
    await rig.driver.close();
  });

  test("after its decommission date: every request refused with the decommissioned code and an N26 alert", async () => {
    const rig = await partyRig({ party: "TCOS", extra: { decommissionAt }, startTimeMs: decommissionAt });
    await rig.send(envelope(countersigned623()));
    expect(await rig.authorisations()).toEqual([]);
    const [r] = await rig.responses();
    expect(r!.value).toMatchObject({
      responseCode: "GAP-tcos-decommissioned",
      cosParty: "TCOS",
      successful: false,
    });
    expect(r!.headers["ecos.cos-party.reason"]).toMatch(
      /decommissioned at .*migrated to the ECoS credential/,
    );
    expect(
      (await rig.alerts()).map((a) => [a.value.alertCode, a.value.alertType, a.value.recipientUserId]),
    ).toEqual([["N26", "ChangeOfSupplier", SUPPLIER]]);
    expect(await rig.stages()).toEqual([
      expect.objectContaining({ stage: "COS_PARTY_REFUSED", cosParty: "TCOS" }),
    ]);
    await rig.driver.close();
  });
});

/** Counts the pre-command jobs, and fails the next `failNext` calls after doing the work. */
class CountingCrypto extends InlineCosPartyCrypto {
  jobs: bigint[] = [];
  failNext = 0;
  override signPreCommands(jobs: readonly PreCommandJob[]) {
    this.jobs.push(...jobs.map((j) => j.counter));
    const out = super.signPreCommands(jobs);
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("worker thread died");
    }
    return out;
  }
}

function countingCrypto(): CountingCrypto {
  return new CountingCrypto(cryptoOptions("ECOS"));
}

describe("TCoS Party: decommission between the checks and the signature", () => {
  test("a request checked before the date but signed after it is refused, not signed", async () => {
    const decommissionAt = RECEIVED_AT + DAY;
    const crypto = new CountingCrypto(cryptoOptions("TCOS"));
    const rig = await partyRig({ party: "TCOS", crypto, extra: { decommissionAt } });
    crypto.failNext = 1;
    await expect(rig.send(envelope(countersigned623()))).rejects.toThrow(/worker/);
    // The retry of the authorise stage runs after the decommission date.
    await rig.driver.advanceWallClock(DAY);
    expect(await rig.authorisations()).toEqual([]);
    expect((await rig.responses()).map((r) => r.headers["ecos.cos-party.check"])).toEqual(["decommissioned"]);
    expect(crypto.jobs).toEqual([1n]); // signed once, in the run that was rolled back
    expect(rig.driver.storeEntries(cosPartyStores("TCOS").counters)).toEqual([]);
    await rig.driver.close();
  });
});

describe("ECoS Party: the per-device counter", () => {
  test("never reused across a driver restart (restored from the changelog)", async () => {
    const rig = await partyRig();
    await rig.send(envelope(countersigned623({}, 1006)));
    await rig.driver.restart();
    await rig.send(envelope(countersigned623({}, 1007), 1007));
    await rig.driver.restart();
    await rig.send(envelope(countersigned623({}, 1008), 1008));
    expect((await rig.authorisations()).map((r) => r.value.counter)).toEqual(["1", "2", "3"]);
    await rig.driver.close();
  });

  test("a crash between reservation and commit emits nothing; the retry emits one authorisation", async () => {
    const crypto = countingCrypto();
    const rig = await partyRig({ crypto: crypto });
    await rig.send(envelope(countersigned623({}, 1006)));
    crypto.failNext = 1;
    await expect(rig.send(envelope(countersigned623({}, 1007), 1007))).rejects.toThrow(/worker/);
    // Rolled back like an aborted transaction: no output, the reservation not in the store.
    expect((await rig.authorisations()).map((r) => r.value.counter)).toEqual(["1"]);
    expect(rig.driver.storeEntries<CosCounterEntry>(COS_COUNTER_STORE).map(([, e]) => e.counter)).toEqual([
      "1",
    ]);
    await rig.driver.runUntilIdle();
    const after = await rig.authorisations();
    expect(after.map((r) => [r.value.requestId, r.value.counter])).toEqual([
      [`${SUPPLIER}:${DEVICE_ID}:1007`, "2"],
    ]);
    // Counter 2 was signed twice but emitted once: no device ever saw the first signature.
    expect(crypto.jobs).toEqual([1n, 2n, 2n]);
    await rig.driver.close();
  });

  test("starts above the device's transitionalCoS floor (a migrated device keeps the last TCoS counter)", async () => {
    const rig = await partyRig({
      extra: { counterFloorOf: (d) => (d.deviceId === DEVICE_ID ? 6000n : 0n) },
    });
    await rig.send(
      envelope(countersigned623({}, 1006)),
      envelope(countersigned623({}, 1007, DEVICE_2), 1007, DEVICE_2),
    );
    const [a, b] = (await rig.authorisations()).map((r) => r.value);
    expect([a!.counter, b!.counter]).toEqual(["6001", "1"]);
    expect(parsePreCommand(a!.preCommand!).header.originatorCounter).toBe(6001n);
    expect(checkAgainst(a!)).toMatchObject({ ok: true });
    await rig.driver.close();
  });

  test("the authorised-requests memory is bounded per device", async () => {
    const rig = await partyRig();
    const n = AUTHORISED_PER_DEVICE + 2;
    await rig.send(
      ...Array.from({ length: n }, (_, i) => envelope(countersigned623({}, 5000 + i), 5000 + i)),
    );
    expect((await rig.authorisations()).map((r) => r.value.counter)).toEqual(
      Array.from({ length: n }, (_, i) => String(i + 1)),
    );
    const [[, held]] = rig.driver.storeEntries<AuthorisedRequest[]>(cosPartyStores("ECOS").authorised) as [
      [string, AuthorisedRequest[]],
    ];
    expect(held.map((h) => h.counter)).toEqual(
      Array.from({ length: AUTHORISED_PER_DEVICE }, (_, i) => String(n - AUTHORISED_PER_DEVICE + i + 1)),
    );
    await rig.driver.close();
  });

  test.each([true, false])(
    "a redelivered request yields no second authorisation and no fresh counter (anomaly dedup %s)",
    async (rememberRequestIds) => {
      const crypto = countingCrypto();
      const rig = await partyRig({ crypto: crypto, anomaly: { rememberRequestIds } });
      const e = envelope(countersigned623({}, 1006));
      await rig.send(e);
      await rig.send(envelope(countersigned623({}, 1007), 1007));
      await rig.driver.restart();
      await rig.send(e); // the first request again, after another one took the device's latest counter
      expect((await rig.authorisations()).map((r) => [r.value.requestId, r.value.counter])).toEqual([
        [`${SUPPLIER}:${DEVICE_ID}:1006`, "1"],
        [`${SUPPLIER}:${DEVICE_ID}:1007`, "2"],
      ]);
      expect(crypto.jobs).toEqual([1n, 2n]);
      expect(rig.driver.storeEntries<CosCounterEntry>(COS_COUNTER_STORE).map(([, v]) => v.counter)).toEqual([
        "2",
      ]);
      expect(await rig.responses()).toEqual([]);
      await rig.driver.close();
    },
  );
});

describe("ECoS Party: a crashing verify task", () => {
  class FlakyVerify extends InlineCosPartyCrypto {
    failures = 0;
    calls = 0;
    override verifyBatch(inputs: Parameters<InlineCosPartyCrypto["verifyBatch"]>[0]) {
      this.calls++;
      if (this.failures > 0) {
        this.failures--;
        throw new Error("worker thread died");
      }
      return super.verifyBatch(inputs);
    }
  }

  test("one crash is retried; two answer worker-failed rather than stall", async () => {
    const crypto = new FlakyVerify(cryptoOptions("ECOS"));
    const rig = await partyRig({ crypto });
    crypto.failures = 1;
    await rig.send(envelope(countersigned623({}, 1006)));
    expect((await rig.authorisations()).map((r) => r.value.counter)).toEqual(["1"]);
    crypto.failures = 2;
    await rig.send(envelope(countersigned623({}, 1007), 1007));
    expect(await rig.authorisations()).toEqual([]);
    const [r] = await rig.responses();
    expect(r!.headers["ecos.cos-party.check"]).toBe("worker-failed");
    expect(r!.value.responseCode).toBe(DEFAULT_COS_PARTY_RESPONSE_CODES["worker-failed"]);
    expect(crypto.calls).toBe(4);
    await rig.driver.close();
  });
});
