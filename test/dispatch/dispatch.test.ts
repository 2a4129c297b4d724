/**
 * dsp-dispatch on the in-process driver: routing (SMETS2+ → device.commands, SMETS1 → s1sp.requests),
 * every refusal kind answered with its code and a REJECTED stage and no command, the mirror check
 * naming the field that differs, one command per request across redeliveries and a restart, the
 * counter rule, and DSP anomaly detection (processors/anomaly) between the check and the send.
 */
import {
  DEFAULT_DISPATCH_CODES,
  dispatchResponseCodes,
  type DispatchRefusal,
} from "../../processors/dispatch/codes";
import { DISPATCH_STORES, REFUSAL_HEADER } from "../../processors/dispatch/topology";
import type { CosAuthorisation } from "../../processors/cos/records";
import type { PreCommandInput } from "../../workers/gbcs/pre-command";
import {
  adtFile,
  authorisation,
  cast,
  dispatchRig,
  ecosPreCommand,
  impostorXml,
  SMETS1_DEVICE,
  SMETS2_DEVICE,
  T0,
  TCOS_ID,
  tcosPreCommand,
  trust,
  type DispatchRig,
} from "./fixtures";

async function rigWithAdt(adt = 1000, opts: Parameters<typeof dispatchRig>[0] = {}): Promise<DispatchRig> {
  const rig = await dispatchRig(opts);
  await rig.submitAdt(adtFile(adt));
  return rig;
}

/** Sends one authorisation that must be refused; checks the answer and that nothing was sent on. */
async function expectRefused(
  rig: DispatchRig,
  a: CosAuthorisation,
  refusal: DispatchRefusal,
  detail?: RegExp,
): Promise<void> {
  await rig.send(a);
  const responses = await rig.responses();
  expect(responses).toHaveLength(1);
  const r = responses[0]!;
  expect(r.key).toBe(a.requestId);
  expect(r.headers[REFUSAL_HEADER]).toBe(refusal);
  if (detail) expect(r.headers["ecos.dispatch.reason"]).toMatch(detail);
  expect(r.value).toMatchObject({
    requestId: a.requestId,
    responseCode: DEFAULT_DISPATCH_CODES[refusal],
    successful: false,
    smetsGeneration: a.smetsGeneration,
    cosParty: a.cosParty,
    receivedAt: a.receivedAt,
  });
  const stages = await rig.stages();
  expect(stages.map((s) => s.stage)).toEqual(["COS_PARTY_AUTHORISED", "REJECTED"]);
  expect(stages[1]!.responseCode).toBe(DEFAULT_DISPATCH_CODES[refusal]);
  expect(await rig.commands()).toHaveLength(0);
  expect(await rig.s1sp()).toHaveLength(0);
}

describe("dispatch routing", () => {
  test("SMETS2+: the checked pre-command goes to device.commands, keyed by device, with stages", async () => {
    const rig = await rigWithAdt();
    const a = authorisation({ counter: 6001n });
    await rig.send(a);
    const commands = await rig.commands();
    expect(commands).toHaveLength(1);
    const c = commands[0]!;
    expect(c.key).toBe(SMETS2_DEVICE);
    expect(c.value).toMatchObject({
      requestId: a.requestId,
      deviceId: SMETS2_DEVICE,
      counter: "6001",
      dispatchedAt: rig.driver.wallClock(),
      executionAt: null,
      cancellation: false,
    });
    expect(c.value.command.equals(a.preCommand!)).toBe(true);
    expect(await rig.s1sp()).toHaveLength(0);
    expect(await rig.responses()).toHaveLength(0);
    const stages = await rig.stages();
    expect(stages.map((s) => s.stage)).toEqual(["COS_PARTY_AUTHORISED", "ANOMALY_CHECKED", "DISPATCHED"]);
    expect(stages[0]!.occurredAt).toBe(a.authorisedAt);
    expect(stages.every((s) => s.receivedAt === a.receivedAt && s.cosParty === "ECOS")).toBe(true);
    expect(new Set(stages.map((s) => s.eventId)).size).toBe(3);
  });

  test("SMETS1: the CoS Party's countersigned request goes to s1sp.requests, no device command", async () => {
    const rig = await rigWithAdt();
    const a = authorisation({ smets: "SMETS1" });
    await rig.send(a);
    const s1 = await rig.s1sp();
    expect(s1).toHaveLength(1);
    expect(s1[0]!.key).toBe(SMETS1_DEVICE);
    expect(s1[0]!.value).toMatchObject({
      requestId: a.requestId,
      userId: cast.supplierId,
      cancellation: false,
    });
    expect(s1[0]!.value.countersigned.equals(a.countersigned)).toBe(true);
    expect(await rig.commands()).toHaveLength(0);
    expect((await rig.stages()).map((s) => [s.stage, s.smetsGeneration])).toContainEqual([
      "DISPATCHED",
      "SMETS1",
    ]);
  });

  test("future-dated and cancellation carry their execution time and flag to the device", async () => {
    const rig = await rigWithAdt();
    const fd = authorisation({
      userCounter: 2001,
      counter: 7001n,
      xml: { executionDateTime: "2030-01-02T00:00:00Z" },
    });
    const cancel = authorisation({
      userCounter: 2002,
      counter: 7002n,
      xml: { executionDateTime: "3000-12-31T00:00:00Z" },
    });
    expect(cancel.cancellation).toBe(true);
    await rig.send(fd, cancel);
    const cs = (await rig.commands()).map((c) => c.value);
    expect(cs.map((c) => [c.counter, c.executionAt, c.cancellation])).toEqual([
      ["7001", Date.UTC(2030, 0, 2), false],
      ["7002", cancel.executionAt, true],
    ]);
  });

  test("a TCoS authorisation is checked against the TCoS Party's keys", async () => {
    const rig = await rigWithAdt();
    await rig.send(authorisation({ cosParty: "TCOS", userCounter: 1 }));
    expect((await rig.commands()).map((c) => c.value.counter)).toEqual(["6001"]);
    expect((await rig.stages()).map((s) => s.stage)).toContain("DISPATCHED");
    // The ECoS key cannot stand in for the TCoS Party.
    await expectRefused(
      rig,
      authorisation({
        cosParty: "TCOS",
        userCounter: 2,
        counter: 6002n,
        preCommandKey: ecosPreCommand.scalar,
      }),
      "pre-command-signature",
    );
  });
});

describe("dispatch refuses a tampered or inconsistent authorisation", () => {
  test("pre-command: malformed, another originator, a bad signature, missing", async () => {
    const rig = await rigWithAdt();
    await expectRefused(
      rig,
      authorisation({ userCounter: 1, alter: (a) => ({ ...a, preCommand: a.preCommand!.subarray(0, 40) }) }),
      "pre-command-malformed",
    );
    await expectRefused(
      rig,
      authorisation({
        userCounter: 2,
        alterPreCommand: (i) => ({ ...i, cosPartyId: TCOS_ID }),
        preCommandKey: tcosPreCommand.scalar,
      }),
      "pre-command-cos-party",
    );
    const flipped = (a: CosAuthorisation): CosAuthorisation => {
      const p = Buffer.from(a.preCommand!);
      p[p.length - 5] = p[p.length - 5]! ^ 0x01;
      return { ...a, preCommand: p };
    };
    await expectRefused(rig, authorisation({ userCounter: 3, alter: flipped }), "pre-command-signature");
    await expectRefused(
      rig,
      authorisation({ userCounter: 4, preCommandKey: tcosPreCommand.scalar }),
      "pre-command-signature",
    );
    await expectRefused(
      rig,
      authorisation({ userCounter: 5, alter: (a) => ({ ...a, preCommand: null }) }),
      "pre-command-missing",
    );
  });

  test.each([
    [
      "seqNumberChanges",
      (i: PreCommandInput): PreCommandInput => ({
        ...i,
        payload: { ...i.payload, seqNumberChanges: [{ role: 2, floorSeqNumber: 99n, specialistFloors: [] }] },
      }),
    ],
    [
      "replacementCertificates",
      (i: PreCommandInput): PreCommandInput => ({
        ...i,
        payload: {
          ...i.payload,
          replacements: i.payload.replacements.map((r, n) =>
            n === 0 ? { ...r, certificate: cast.dspXmlSign.der } : r,
          ),
        },
      }),
    ],
    [
      "certificationPath",
      (i: PreCommandInput): PreCommandInput => ({
        ...i,
        payload: { ...i.payload, certificationPath: [cast.pki.root.der] },
      }),
    ],
    [
      "execution",
      (i: PreCommandInput): PreCommandInput => ({
        ...i,
        payload: { ...i.payload, execution: { kind: "futureDated", at: Date.UTC(2031, 0, 1) } },
      }),
    ],
    [
      "recipient",
      (i: PreCommandInput): PreCommandInput => ({
        ...i,
        deviceId: "00-DB-12-34-56-78-90-FF",
      }),
    ],
  ] as Array<[string, (i: PreCommandInput) => PreCommandInput]>)(
    "a pre-command that does not mirror the request is refused, naming %s",
    async (field, alter) => {
      const rig = await rigWithAdt();
      await expectRefused(
        rig,
        authorisation({ alterPreCommand: alter }),
        "pre-command-mirror",
        new RegExp(`differs from the request in .*\\b${field}\\b`),
      );
    },
  );

  test("countersignatures: the CoS Party's by another key, missing, tampered; the DSP's not the DSP's", async () => {
    const rig = await rigWithAdt();
    await expectRefused(
      rig,
      authorisation({ userCounter: 1, cosXmlSigner: impostorXml }),
      "cos-countersignature",
      /not by the ECOS Party/,
    );
    // Only the User's and the DSP's signatures: the CoS Party never countersigned.
    const two = authorisation({ userCounter: 2 });
    const cut = two.countersigned.toString("utf8");
    const last = cut.lastIndexOf("<ds:Signature ");
    await expectRefused(
      rig,
      {
        ...two,
        countersigned: Buffer.from(cut.slice(0, last) + cut.slice(cut.indexOf("</ds:Signature>", last) + 15)),
      },
      "cos-countersignature",
      /2 signatures/,
    );
    const three = authorisation({ userCounter: 3 });
    const text = three.countersigned.toString("utf8");
    const sv = text.lastIndexOf("<ds:SignatureValue>") + "<ds:SignatureValue>".length;
    const swapped = text.slice(0, sv) + (text[sv] === "A" ? "B" : "A") + text.slice(sv + 1);
    await expectRefused(rig, { ...three, countersigned: Buffer.from(swapped) }, "cos-countersignature");
    // Content changed after everyone signed: the DSP's countersignature (checked first) no longer holds.
    const four = authorisation({ userCounter: 4 });
    const changed = four.countersigned
      .toString("utf8")
      .replace("<sr:ImportMPxN>1312345678333<", "<sr:ImportMPxN>1312345678334<");
    await expectRefused(
      rig,
      { ...four, countersigned: Buffer.from(changed) },
      "dsp-countersignature",
      /DigestValue/,
    );
  });

  test("SMETS1: the CoS Party's countersignature is all there is to check, and it is checked", async () => {
    const rig = await rigWithAdt();
    await expectRefused(
      rig,
      authorisation({ smets: "SMETS1", userCounter: 1, cosXmlSigner: impostorXml }),
      "cos-countersignature",
    );
    const withPreCommand = authorisation({ userCounter: 2 });
    await expectRefused(
      rig,
      { ...authorisation({ smets: "SMETS1", userCounter: 3 }), preCommand: withPreCommand.preCommand },
      "authorisation-fields",
      /preCommand/,
    );
  });

  test("the DSP countersignature must be the DSP's", async () => {
    const rig = await rigWithAdt(1000, {
      trust: { ...trust, dspSigners: [cast.supplierXmlSign.cert.derHash] },
    });
    await expectRefused(rig, authorisation(), "dsp-countersignature", /not by a DSP certificate/);
  });

  test("record fields that differ from the signed bytes are named; unreadable requests; unknown CoS Party", async () => {
    const rig = await rigWithAdt(1000, { trust: { ...trust, tcos: undefined } as never });
    await expectRefused(
      rig,
      authorisation({ userCounter: 1, alter: (a) => ({ ...a, counter: "6002" }) }),
      "authorisation-fields",
      /counter/,
    );
    await expectRefused(
      rig,
      authorisation({ userCounter: 2, alter: (a) => ({ ...a, executionAt: T0 + 86_400_000 }) }),
      "authorisation-fields",
      /executionAt/,
    );
    const other = authorisation({ userCounter: 3 });
    await expectRefused(
      rig,
      { ...other, deviceId: "00-DB-12-34-56-78-90-A7" },
      "authorisation-fields",
      /deviceId/,
    );
    await expectRefused(
      rig,
      authorisation({ userCounter: 4, alter: (a) => ({ ...a, countersigned: Buffer.from("<sr:Request") }) }),
      "authorisation-malformed",
    );
    await expectRefused(rig, authorisation({ userCounter: 5, cosParty: "TCOS" }), "cos-party-unknown");
  });

  test("the counter must be above every counter already dispatched to the device", async () => {
    const rig = await rigWithAdt();
    await rig.send(authorisation({ userCounter: 1, counter: 6005n }));
    expect(await rig.commands()).toHaveLength(1);
    await rig.stages();
    await expectRefused(rig, authorisation({ userCounter: 2, counter: 6005n }), "counter-stale");
    await expectRefused(rig, authorisation({ userCounter: 3, counter: 6004n }), "counter-stale");
    await rig.send(authorisation({ userCounter: 4, counter: 6006n }));
    expect((await rig.commands()).map((c) => c.value.counter)).toEqual(["6006"]);
  });

  test("refusal codes are data: a deployment's table is used", async () => {
    const rig = await rigWithAdt(1000, {
      responseCodes: dispatchResponseCodes({ "pre-command-missing": "E062306" }),
    });
    await rig.send(authorisation({ alter: (a) => ({ ...a, preCommand: null }) }));
    expect((await rig.responses()).map((r) => r.value.responseCode)).toEqual(["E062306"]);
    expect(() => dispatchResponseCodes({ nonsense: "E1" } as never)).toThrow(/unknown refusal/);
  });
});

describe("one command per request", () => {
  test("a redelivered authorisation, and a second one for the same request, are dropped; also after a restart", async () => {
    const rig = await rigWithAdt();
    const a = authorisation({ counter: 6001n });
    await rig.send(a);
    await rig.send(a);
    // The same request re-authorised with a new counter (a CoS Party re-run): still not a second command.
    await rig.send(authorisation({ counter: 6002n }));
    expect(await rig.commands()).toHaveLength(1);
    expect(await rig.responses()).toHaveLength(0);
    await rig.driver.restart();
    await rig.send(a);
    expect(await rig.commands()).toHaveLength(0);
    expect(rig.driver.storeEntries(DISPATCH_STORES.requests).map(([k, v]) => [k, v])).toEqual([
      [a.requestId.toUpperCase(), expect.objectContaining({ outcome: "passed" })],
    ]);
    // A refused request stays refused: its redelivery is not answered twice either.
    const bad = authorisation({ userCounter: 9, counter: 6009n, alter: (x) => ({ ...x, preCommand: null }) });
    await rig.send(bad);
    await rig.send(bad);
    expect(await rig.responses()).toHaveLength(1);
  });
});

describe("DSP anomaly detection between the check and the send", () => {
  test("over the ADT: quarantined (stage + AD1 event), no command; released: sent once", async () => {
    const rig = await rigWithAdt(1);
    await rig.send(authorisation({ userCounter: 1, counter: 6001n }));
    await rig.send(authorisation({ userCounter: 2, counter: 6002n }));
    expect((await rig.commands()).map((c) => c.value.counter)).toEqual(["6001"]);
    const stages = await rig.stages();
    const held = stages.filter((s) => s.stage === "QUARANTINED");
    expect(held).toHaveLength(1);
    const events = await rig.anomalyEvents();
    const q = events.find((e) => e.kind === "REQUEST_QUARANTINED")!;
    expect(q).toMatchObject({ requestId: held[0]!.requestId, dccAlertCode: "AD1", party: "DSP" });
    expect(held[0]!.detail).toContain(q.quarantineEventRef!);
    await rig.exit({
      instructionId: "x-1",
      userId: cast.supplierId,
      quarantineEventRef: q.quarantineEventRef!,
      action: "RELEASE",
      issuedAt: T0 + 10_000,
    });
    expect((await rig.commands()).map((c) => c.value.counter)).toEqual(["6002"]);
    expect(rig.driver.storeEntries(DISPATCH_STORES.held)).toEqual([]);
  });

  test("deleted from quarantine: never sent, and the held authorisation is dropped", async () => {
    const rig = await rigWithAdt(0);
    const a = authorisation();
    await rig.send(a);
    const q = (await rig.anomalyEvents()).find((e) => e.kind === "REQUEST_QUARANTINED")!;
    expect(rig.driver.storeEntries(DISPATCH_STORES.held).map(([k]) => k)).toEqual([a.requestId]);
    await rig.exit({
      instructionId: "x-2",
      userId: cast.supplierId,
      quarantineEventRef: q.quarantineEventRef!,
      action: "DELETE",
      issuedAt: T0 + 10_000,
    });
    expect(await rig.commands()).toHaveLength(0);
    expect(rig.driver.storeEntries(DISPATCH_STORES.held)).toEqual([]);
    expect((await rig.anomalyEvents()).map((e) => e.kind)).toEqual(["QUARANTINE_DELETED"]);
  });

  test("a User that never sent an ADT file has threshold 0 for 6.23: held; without anomaly detection: sent", async () => {
    const rig = await dispatchRig();
    await rig.send(authorisation());
    expect(await rig.commands()).toHaveLength(0);
    expect((await rig.stages()).map((s) => s.stage)).toContain("QUARANTINED");
    const bare = await dispatchRig({ anomaly: null });
    await bare.send(authorisation());
    expect(await bare.commands()).toHaveLength(1);
  });
});
