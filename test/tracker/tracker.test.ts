/**
 * response-tracker on the in-process driver with a manual clock: exactly one final Service Response
 * per request — device success, device failures and refusals, E20, future-dated acceptance then the
 * alert outcome (or its E30 time-out), E21 exactly at the time-out edge; late and duplicate answers
 * counted and dropped; stage timestamps; response time against 35 s / 21 s; state across a restart.
 */
import { TRACKER_HEADERS, TRACKER_STORES, type TrackedRequest } from "../../processors/tracker/topology";
import { authorisation, SMETS1_DEVICE } from "../dispatch/fixtures";
import { T0, trackerRig, type TrackerRig } from "./fixtures";

const OWN = new Set(["RECEIVED", "DEVICE_RESPONDED", "RESPONSE_SENT"]);
async function ownStages(rig: TrackerRig) {
  return (await rig.stages()).filter((s) => OWN.has(s.value.stage));
}
function entry(rig: TrackerRig, requestId: string): TrackedRequest | undefined {
  return rig.driver.storeEntries<TrackedRequest>(TRACKER_STORES.requests).find(([k]) => k === requestId)?.[1];
}

describe("final responses from device answers", () => {
  test("SMETS2+ success: one I0, stage times recorded, response time within 35 s", async () => {
    const rig = await trackerRig();
    await rig.advanceTo(T0 + 600);
    const a = await rig.dispatch();
    await rig.advanceTo(T0 + 4_000);
    await rig.answer(a, {});
    const responses = await rig.responses();
    expect(responses).toHaveLength(1);
    expect(responses[0]!.key).toBe(a.requestId);
    expect(responses[0]!.value).toMatchObject({
      requestId: a.requestId,
      userId: a.userId,
      deviceId: a.deviceId,
      deviceType: "ESME",
      smetsGeneration: "SMETS2",
      cosParty: "ECOS",
      responseCode: "I0",
      successful: true,
      receivedAt: T0,
      respondedAt: T0 + 4_000,
    });
    expect(responses[0]!.headers).toMatchObject({
      [TRACKER_HEADERS.responseTimeMs]: "4000",
      [TRACKER_HEADERS.targetMs]: "35000",
      [TRACKER_HEADERS.breach]: "false",
    });
    const stages = await ownStages(rig);
    expect(stages.map((s) => [s.value.stage, s.value.occurredAt])).toEqual([
      ["RECEIVED", T0],
      ["DEVICE_RESPONDED", T0 + 4_000],
      ["RESPONSE_SENT", T0 + 4_000],
    ]);
    const sent = stages[2]!.value;
    expect(sent.responseCode).toBe("I0");
    expect(sent.detail).toContain("response time 4000 ms, target 35000 ms;");
    expect(sent.detail).toContain(
      "RECEIVED+0 VALIDATED+100 COS_PARTY_REQUESTED+100 COS_PARTY_AUTHORISED+400 DISPATCHED+600 DEVICE_RESPONDED+4000 RESPONSE_SENT+4000",
    );
    expect(new Set(stages.map((s) => s.value.eventId)).size).toBe(3);
  });

  test("device failure statuses: FAILURE names the failed cells; a refusal and an unreachable device get their codes", async () => {
    const rig = await trackerRig();
    const failed = await rig.dispatch({ userCounter: 1, counter: 6001n });
    const refused = await rig.dispatch({ userCounter: 2, counter: 6002n });
    const unreachable = await rig.dispatch({ userCounter: 3, counter: 6003n });
    const s1 = await rig.dispatch({ userCounter: 4, smets: "SMETS1" });
    await rig.advanceTo(T0 + 2_000);
    await rig.answer(failed, {
      status: "FAILURE",
      failed: { ka: "badCertificate", kaTopUp: "noTrustAnchor" },
    });
    await rig.answer(refused, {
      status: "SIGNATURE_INVALID",
      payload: null,
      detail: "CoS Party signature does not verify",
    });
    await rig.answer(unreachable, { status: "UNREACHABLE", payload: null });
    await rig.answer(s1, { status: "FAILURE", detail: "S1SP: device rejected the credentials" });
    const byId = new Map((await rig.responses()).map((r) => [r.value.requestId, r.value]));
    expect(byId.size).toBe(4);
    expect(byId.get(failed.requestId)).toMatchObject({ responseCode: "I0", successful: false });
    expect(byId.get(refused.requestId)).toMatchObject({
      responseCode: "GAP-device-refused",
      successful: false,
    });
    expect(byId.get(unreachable.requestId)).toMatchObject({ responseCode: "E20", successful: false });
    expect(byId.get(s1.requestId)).toMatchObject({
      responseCode: "I0",
      successful: false,
      smetsGeneration: "SMETS1",
    });
    const sent = (await ownStages(rig)).filter((s) => s.value.stage === "RESPONSE_SENT").map((s) => s.value);
    const detail = (id: string) => sent.find((s) => s.requestId === id)!.detail!;
    expect(detail(failed.requestId)).toMatch(
      /^DEVICE FAILURE: keyAgreement badCertificate, keyAgreement\/topUp noTrustAnchor;/,
    );
    expect(detail(refused.requestId)).toMatch(
      /^DEVICE SIGNATURE_INVALID: CoS Party signature does not verify;/,
    );
    expect(detail(s1.requestId)).toMatch(/^S1SP FAILURE: S1SP: device rejected/);
  });

  test("codes are data: a deployment's table is used", async () => {
    const rig = await trackerRig({ codes: { deviceRefused: "E062306", noResponse: "E21X" } });
    const a = await rig.dispatch({ userCounter: 1, counter: 6001n });
    const b = await rig.dispatch({ userCounter: 2, counter: 6002n });
    await rig.answer(a, { status: "COUNTER_REPLAYED", payload: null });
    await rig.advanceTo(T0 + 34_000);
    expect((await rig.responses()).map((r) => [r.value.requestId, r.value.responseCode])).toEqual([
      [a.requestId, "E062306"],
      [b.requestId, "E21X"],
    ]);
  });
});

describe("future-dated commands", () => {
  const executionAt = Date.UTC(2026, 5, 2, 0, 0, 0);
  const fd = { xml: { executionDateTime: "2026-06-02T00:00:00Z" } };

  test("acceptance is the Service Response; the 8F66 alert follows as an alert, once", async () => {
    const rig = await trackerRig();
    const a = await rig.dispatch(fd);
    expect(a.executionAt).toBe(executionAt);
    await rig.advanceTo(T0 + 3_000);
    await rig.answer(a, { status: "ACCEPTED", accepted: true });
    expect(
      (await rig.responses()).map((r) => [r.value.responseCode, r.value.successful, r.value.respondedAt]),
    ).toEqual([["I0", true, T0 + 3_000]]);
    expect(await rig.alerts()).toEqual([]);
    await rig.advanceTo(executionAt);
    await rig.answer(a, { kind: "ALERT", status: "SUCCESS" });
    await rig.answer(a, { kind: "ALERT", status: "SUCCESS" });
    const alerts = await rig.alerts();
    expect(alerts).toEqual([
      expect.objectContaining({
        alertId: `${a.requestId}:8F66`,
        alertCode: "8F66",
        alertType: "FutureDatedDeviceAlertMessage",
        recipientUserId: a.userId,
        requestId: a.requestId,
        deviceId: a.deviceId,
        raisedAt: executionAt,
      }),
    ]);
    expect(await rig.responses()).toHaveLength(0);
    expect(rig.drops).toEqual([{ requestId: a.requestId, reason: "duplicate" }]);
    const responded = (await ownStages(rig)).filter((s) => s.value.stage === "DEVICE_RESPONDED");
    expect(responded.map((s) => s.value.eventId)).toEqual([
      `${a.requestId}:DEVICE_RESPONDED:0`,
      `${a.requestId}:DEVICE_RESPONDED:1`,
    ]);
  });

  test("a failed execution raises 8F67; a missing alert raises E30 after the grace period, exactly at it", async () => {
    const rig = await trackerRig({ alertGraceMs: 60_000 });
    const failing = await rig.dispatch({ ...fd, userCounter: 1, counter: 6001n });
    const silent = await rig.dispatch({ ...fd, userCounter: 2, counter: 6002n });
    await rig.answer(failing, { status: "ACCEPTED", accepted: true });
    await rig.answer(silent, { status: "ACCEPTED", accepted: true });
    await rig.advanceTo(executionAt);
    await rig.answer(failing, { kind: "ALERT", status: "FAILURE", failed: { ds: "badCertificate" } });
    expect((await rig.alerts()).map((x) => [x.requestId, x.alertCode, x.detail])).toEqual([
      [failing.requestId, "8F67", "FAILURE: badCertificate"],
    ]);
    await rig.advanceTo(executionAt + 59_999);
    expect(await rig.alerts()).toEqual([]);
    await rig.advanceTo(executionAt + 60_000);
    expect((await rig.alerts()).map((x) => [x.requestId, x.alertCode, x.alertType])).toEqual([
      [silent.requestId, "E30", "FutureDatedCommandTimeout"],
    ]);
    expect((await rig.responses()).map((r) => r.value.responseCode)).toEqual(["I0", "I0"]);
  });

  test("a cancellation's acceptance is final: no alert is awaited", async () => {
    const rig = await trackerRig({ alertGraceMs: 1_000 });
    const c = await rig.dispatch({ xml: { executionDateTime: "3000-12-31T00:00:00Z" } });
    expect(c.cancellation).toBe(true);
    await rig.answer(c, { status: "ACCEPTED", accepted: true });
    await rig.advanceTo(T0 + 86_400_000 * 2);
    expect(await rig.alerts()).toEqual([]);
    expect(await rig.responses()).toHaveLength(1);
  });
});

describe("time-outs at the edge", () => {
  test.each([
    ["SMETS2", 34_000],
    ["SMETS1", 20_000],
  ] as const)(
    "%s: answered just before the time-out → device answer; at it → E21; just after → dropped as late",
    async (smets, timeout) => {
      const rig = await trackerRig();
      const before = await rig.dispatch({ smets, userCounter: 1, counter: 6001n });
      const at = await rig.dispatch({ smets, userCounter: 2, counter: 6002n });
      const after = await rig.dispatch({ smets, userCounter: 3, counter: 6003n });
      await rig.advanceTo(T0 + timeout - 1);
      expect(await rig.responses()).toEqual([]);
      await rig.answer(before, {});
      await rig.advanceTo(T0 + timeout);
      const responses = (await rig.responses())
        .map((r) => [r.value.requestId, r.value.responseCode, r.value.respondedAt])
        .sort((x, y) => String(x[0]).localeCompare(String(y[0])));
      expect(responses).toEqual([
        [before.requestId, "I0", T0 + timeout - 1],
        [at.requestId, "E21", T0 + timeout],
        [after.requestId, "E21", T0 + timeout],
      ]);
      await rig.advanceTo(T0 + timeout + 1);
      await rig.answer(after, {});
      await rig.answer(at, { status: "FAILURE" });
      expect(await rig.responses()).toEqual([]);
      expect(rig.drops).toEqual([
        { requestId: after.requestId, reason: "late" },
        { requestId: at.requestId, reason: "late" },
      ]);
      expect(entry(rig, before.requestId)!.final).toMatchObject({ by: "device", code: "I0" });
      expect(entry(rig, after.requestId)!.dropped).toEqual({ late: 1, duplicate: 0, mismatched: 0 });
      // A time-out answer itself meets the target: not a breach.
      const sent = (await ownStages(rig)).filter((s) => s.value.stage === "RESPONSE_SENT");
      expect(sent.every((s) => s.headers[TRACKER_HEADERS.breach] === "false")).toBe(true);
    },
  );

  test("an answer processed at the deadline, before the punctuation ran, is late: the time-out wins", async () => {
    const rig = await trackerRig({ punctuationMs: 10_000_000 });
    const a = await rig.dispatch();
    await rig.advanceTo(T0 + 34_000);
    await rig.answer(a, {});
    expect((await rig.responses()).map((r) => r.value.responseCode)).toEqual(["E21"]);
    expect(rig.drops).toEqual([{ requestId: a.requestId, reason: "late" }]);
  });

  test("never dispatched: answered with the not-dispatched code at the time-out; quarantine stops the clock", async () => {
    const rig = await trackerRig();
    const stuck = authorisation({ userCounter: 1 });
    await rig.stage(stuck, "VALIDATED", T0 + 100);
    await rig.stage(stuck, "COS_PARTY_REQUESTED", T0 + 100);
    const held = await rig.dispatch({ userCounter: 2, counter: 6002n, quarantined: true });
    await rig.advanceTo(T0 + 34_000);
    expect((await rig.responses()).map((r) => [r.value.requestId, r.value.responseCode])).toEqual([
      [stuck.requestId, "GAP-not-dispatched"],
    ]);
    // Released hours later: the device gets its full time-out from dispatch.
    await rig.advanceTo(T0 + 3_600_000);
    await rig.stage(held, "DISPATCHED", T0 + 3_600_000);
    await rig.command(held, T0 + 3_600_000);
    await rig.advanceTo(T0 + 3_600_000 + 33_999);
    expect(await rig.responses()).toEqual([]);
    await rig.advanceTo(T0 + 3_600_000 + 34_000);
    expect((await rig.responses()).map((r) => [r.value.requestId, r.value.responseCode])).toEqual([
      [held.requestId, "E21"],
    ]);
  });

  test("a quarantined request never released is forgotten unanswered after the quarantine retention", async () => {
    const rig = await trackerRig({ quarantineRetentionMs: 86_400_000 });
    const held = await rig.dispatch({ quarantined: true });
    await rig.advanceTo(held.authorisedAt + 10 + 86_400_000 - 1);
    expect(entry(rig, held.requestId)).toBeDefined();
    await rig.advanceTo(held.authorisedAt + 10 + 86_400_000);
    expect(entry(rig, held.requestId)).toBeUndefined();
    expect(await rig.responses()).toEqual([]);
  });
});

describe("one final response per request", () => {
  test("a duplicate answer, and any answer after the final one, is counted and dropped", async () => {
    const rig = await trackerRig();
    const a = await rig.dispatch();
    await rig.answer(a, {});
    await rig.answer(a, {});
    await rig.answer(a, { status: "FAILURE", failed: { ds: "other" } });
    expect((await rig.responses()).map((r) => r.value.responseCode)).toEqual(["I0"]);
    expect(rig.drops).toEqual([
      { requestId: a.requestId, reason: "duplicate" },
      { requestId: a.requestId, reason: "duplicate" },
    ]);
    expect(entry(rig, a.requestId)!.dropped).toEqual({ late: 0, duplicate: 2, mismatched: 0 });
    expect((await ownStages(rig)).filter((s) => s.value.stage === "RESPONSE_SENT")).toHaveLength(1);
  });

  test("a GBCS response with the wrong counter or device is dropped as mismatched; the right one then decides", async () => {
    const rig = await trackerRig();
    const a = await rig.dispatch();
    await rig.answer({ ...a, counter: "6999" }, {});
    await rig.answer(a, { payload: Buffer.from("not gbcs") });
    expect(await rig.responses()).toEqual([]);
    expect(rig.drops.map((d) => d.reason)).toEqual(["mismatched", "mismatched"]);
    await rig.answer(a, {});
    expect((await rig.responses()).map((r) => r.value.responseCode)).toEqual(["I0"]);
    expect(entry(rig, a.requestId)!.dropped.mismatched).toBe(2);
  });

  test("a request refused upstream gets no response from the tracker, and a device answer for it is late", async () => {
    const rig = await trackerRig();
    const a = authorisation();
    await rig.stage(a, "VALIDATED", T0 + 100);
    await rig.authorised(a);
    await rig.stage(a, "REJECTED", T0 + 500, "GAP-dispatch-pre-command-mirror");
    await rig.advanceTo(T0 + 60_000);
    await rig.command(a);
    await rig.answer(a, {});
    expect(await rig.responses()).toEqual([]);
    expect(rig.drops).toEqual([{ requestId: a.requestId, reason: "late" }]);
  });

  test("the DSP's refusal of a replay (another submission under the RequestID) does not close the request in flight", async () => {
    const rig = await trackerRig();
    const a = await rig.dispatch();
    // The replay was received 5 s after the original and refused by the DSP's replay guard.
    await rig.stage({ ...a, receivedAt: T0 + 5_000 }, "REJECTED", T0 + 5_010, "GAP-replay");
    await rig.advanceTo(T0 + 6_000);
    await rig.answer(a, {});
    const responses = await rig.responses();
    expect(responses.map((r) => [r.value.responseCode, r.value.successful])).toEqual([["I0", true]]);
    expect(rig.drops).toEqual([{ requestId: a.requestId, reason: "other-submission" }]);
    expect(entry(rig, a.requestId)!.final).toMatchObject({ by: "device", code: "I0" });
  });

  test("the replay's refusal reaching the tracker before the original's first stage does not close it either", async () => {
    const rig = await trackerRig();
    const a = authorisation();
    await rig.stage({ ...a, receivedAt: T0 + 5_000 }, "REJECTED", T0 + 5_010, "GAP-replay");
    const dispatched = await rig.dispatch();
    expect(dispatched.requestId).toBe(a.requestId);
    await rig.advanceTo(T0 + 6_000);
    await rig.answer(dispatched, {});
    expect((await rig.responses()).map((r) => r.value.responseCode)).toEqual(["I0"]);
    expect(rig.drops).toEqual([]);
  });

  test("the DSP's replay refusal with the same receipt time (same millisecond) is told apart by its check id", async () => {
    const rig = await trackerRig();
    const a = await rig.dispatch();
    await rig.stage(a, "REJECTED", T0 + 5_010, "GAP-replay", "replay: RequestID already received");
    await rig.stage(a, "REJECTED", T0 + 5_020, "E4", "registration-supplier: not the registered supplier");
    expect(rig.drops.map((d) => d.reason)).toEqual(["other-submission"]);
    // A refusal of this submission by another check (same receipt time) does close it.
    await rig.advanceTo(T0 + 6_000);
    await rig.answer(a, {});
    expect(await rig.responses()).toEqual([]);
    expect(entry(rig, a.requestId)!.final).toMatchObject({ by: "upstream", code: "E4" });
  });

  test("a refusal of a request never tracked creates no entry and no time-out answer", async () => {
    const rig = await trackerRig();
    const a = authorisation();
    await rig.stage(a, "REJECTED", T0 + 10, "E19");
    await rig.advanceTo(T0 + 120_000);
    expect(await rig.responses()).toEqual([]);
    expect(entry(rig, a.requestId)).toBeUndefined();
  });

  test("an answer that overtakes its command waits for it; one that overtakes the receipt time waits for that", async () => {
    const rig = await trackerRig();
    const a = authorisation();
    await rig.advanceTo(T0 + 2_000);
    await rig.answer(a, {});
    expect(await rig.responses()).toEqual([]);
    await rig.command(a, T0 + 600);
    // Command known, receipt time not yet: held.
    expect(await rig.responses()).toEqual([]);
    await rig.advanceTo(T0 + 2_500);
    await rig.stage(a, "DISPATCHED", T0 + 600);
    const r = await rig.responses();
    expect(r.map((x) => [x.value.responseCode, x.value.receivedAt, x.value.respondedAt])).toEqual([
      ["I0", T0, T0 + 2_500],
    ]);
    expect(rig.drops).toEqual([]);
  });
});

describe("response time against the Target Response Time", () => {
  test.each([
    ["SMETS2", 35_000, false],
    ["SMETS2", 35_001, true],
    ["SMETS1", 21_000, false],
    ["SMETS1", 21_001, true],
  ] as const)("%s answered after %i ms: breach %s", async (smets, ms, breach) => {
    const rig = await trackerRig({ deviceTimeoutMs: { SMETS1: 60_000, SMETS2: 60_000 } });
    const a = await rig.dispatch({ smets });
    await rig.advanceTo(T0 + ms);
    await rig.answer(a, {});
    const [response] = await rig.responses();
    expect(response!.headers[TRACKER_HEADERS.breach]).toBe(String(breach));
    expect(response!.headers[TRACKER_HEADERS.targetMs]).toBe(smets === "SMETS2" ? "35000" : "21000");
    const sent = (await ownStages(rig)).find((s) => s.value.stage === "RESPONSE_SENT")!;
    expect(sent.headers[TRACKER_HEADERS.breach]).toBe(String(breach));
    expect(sent.value.detail!.includes("TARGET BREACHED")).toBe(breach);
  });
});

describe("state survives a restart", () => {
  test("pending deadlines fire after a restart; a finished request stays finished", async () => {
    const rig = await trackerRig();
    const answered = await rig.dispatch({ userCounter: 1, counter: 6001n });
    const pending = await rig.dispatch({
      userCounter: 2,
      counter: 6002n,
      smets: "SMETS1",
      deviceId: SMETS1_DEVICE,
    });
    await rig.answer(answered, {});
    expect(await rig.responses()).toHaveLength(1);
    await rig.driver.restart();
    await rig.answer(answered, {});
    await rig.advanceTo(T0 + 19_999);
    expect(await rig.responses()).toEqual([]);
    await rig.advanceTo(T0 + 20_000);
    expect((await rig.responses()).map((r) => [r.value.requestId, r.value.responseCode])).toEqual([
      [pending.requestId, "E21"],
    ]);
    expect(rig.drops).toEqual([{ requestId: answered.requestId, reason: "duplicate" }]);
    // After the retention the request is forgotten; an answer for it is unknown, a replayed stage
    // or authorisation does not bring it back (no second response, no second time-out).
    await rig.advanceTo(T0 + 20_000 + 900_000);
    expect(rig.driver.storeEntries(TRACKER_STORES.requests)).toEqual([]);
    await rig.stage(pending, "VALIDATED", T0 + 100);
    await rig.authorised(answered);
    await rig.command(answered, T0 + 600);
    await rig.advanceTo(T0 + 20_000 + 900_000 + 60_000);
    expect(await rig.responses()).toEqual([]);
    expect(rig.drops.slice(1).map((d) => d.reason)).toEqual(["unknown", "unknown", "unknown"]);
    expect(rig.driver.storeEntries(TRACKER_STORES.requests)).toEqual([]);
  });
});
