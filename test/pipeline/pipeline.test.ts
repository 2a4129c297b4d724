/**
 * The embedded pipeline end to end on the in-process drivers: 300 signed requests (valid SMETS2 ECoS
 * and TCoS, SMETS1, future-dated, cancellations, six kinds of invalid ones) through dsp-validate, the
 * CoS Parties, dispatch, the simulated devices and S1SP and the response tracker, on a perfect WAN;
 * one authorisation is tampered with between the CoS Party and dispatch.
 */
import { DEFAULT_RESPONSE_CODES, type DspOutcomeId } from "../../processors/dsp/response-codes";
import { REFUSAL_HEADER } from "../../processors/dispatch/topology";
import type { CosAuthorisation } from "../../processors/cos/records";
import type { EmbeddedPipeline, ObservedResponse, PipelineRun } from "../../processors/pipeline/pipeline";
import { summarise } from "../../processors/pipeline/summary";
import { DEVICE_LATENCY_MS, S1SP_LATENCY_MS, runPipeline, seeded } from "./fixtures";

const { traffic, credentials } = seeded();
const cast = traffic.cast;
const generation = new Map(traffic.devices.map((d) => [d.deviceId, d.smetsGeneration]));
const timesTargeted = new Map<string, number>();
for (const r of traffic.requests) timesTargeted.set(r.deviceId, (timesTargeted.get(r.deviceId) ?? 0) + 1);

/** A valid SMETS2 request whose device gets no other request: its device shows what it did. */
const tampered = traffic.requests.find(
  (r) => r.kind === "valid" && generation.get(r.deviceId) === "SMETS2" && timesTargeted.get(r.deviceId) === 1,
)!;

let pipeline: EmbeddedPipeline;
let run: PipelineRun;
let finals: Map<string, ObservedResponse[]>;

/** The final answers to the request with this id, leaving out the refusals of its replays. */
function answersTo(requestId: string): ObservedResponse[] {
  return (finals.get(requestId) ?? []).filter(
    (a) => !(a.origin === "dsp-validate" && a.headers["ecos.dsp.check"] === "replay"),
  );
}

beforeAll(async () => {
  ({ pipeline, run } = await runPipeline({
    // Tampering in transit: the pre-command's last signature byte changes after the CoS Party signed it.
    alterAuthorisation: (a: CosAuthorisation) => {
      if (a.requestId !== tampered.requestId || a.preCommand === null) return a;
      const preCommand = Buffer.from(a.preCommand);
      const last = preCommand.length - 1;
      preCommand.writeUInt8(preCommand.readUInt8(last) ^ 0x01, last);
      return { ...a, preCommand };
    },
  }));
  finals = new Map();
  for (const r of run.responses.filter((x) => x.final)) {
    const list = finals.get(r.response.requestId) ?? [];
    list.push(r);
    finals.set(r.response.requestId, list);
  }
}, 60_000);

afterAll(async () => {
  await pipeline?.close();
});

test("the traffic mixes every kind of request", () => {
  const kinds = new Set(traffic.requests.map((r) => r.kind));
  for (const k of ["valid", "future-dated", "cancellation", "invalid:signature", "invalid:replay"])
    expect(kinds).toContain(k);
  expect(traffic.requests.some((r) => generation.get(r.deviceId) === "SMETS1" && r.kind === "valid")).toBe(
    true,
  );
  expect(traffic.devices.some((d) => d.cosCredential === "TCOS")).toBe(true);
});

test("every submission gets exactly one final Service Response, and the run ends with nothing in flight", () => {
  expect(run.timedOut).toBe(false);
  expect(pipeline.unanswered()).toBe(0);
  const s = summarise(run, traffic.requests, pipeline, {
    supplierId: cast.supplierId,
    digitalSigning: cast.replacementDs.der,
  });
  expect(s.oneFinalResponse).toEqual({ ok: traffic.requests.length, missing: 0, extra: 0 });
  // Each request id is answered as many times as it was submitted (a replay is a second submission).
  const submissions = new Map<string, number>();
  for (const r of traffic.requests) submissions.set(r.requestId, (submissions.get(r.requestId) ?? 0) + 1);
  for (const [id, n] of submissions) expect([id, finals.get(id)?.length ?? 0]).toEqual([id, n]);
  expect(pipeline.fleet.nextDueAt()).toBeNull();
  expect(pipeline.s1sp.nextDueAt()).toBeNull();
});

test("valid SMETS2 requests leave the device holding the gaining supplier's certificates", () => {
  const valid = traffic.requests.filter(
    (r) => r.kind === "valid" && generation.get(r.deviceId) === "SMETS2" && r !== tampered,
  );
  expect(valid.length).toBeGreaterThan(100);
  for (const r of valid) {
    const answer = answersTo(r.requestId);
    expect([
      r.requestId,
      answer.map((a) => [a.origin, a.response.responseCode, a.response.successful]),
    ]).toEqual([r.requestId, [["response-tracker", "I0", true]]]);
    const cells = pipeline.fleet.device(r.deviceId)!.state.supplierCells;
    expect(Buffer.from(cells.digitalSignature!).equals(cast.replacementDs.der)).toBe(true);
    expect(Buffer.from(cells.keyAgreement!).equals(cast.replacementKa.der)).toBe(true);
    expect(Buffer.from(cells.keyAgreementTopUp!).equals(cast.replacementKaTopUp.der)).toBe(true);
  }
  // Both CoS Parties authorised some: TCoS devices got pre-commands the devices verified too.
  const parties = new Set(
    run.responses
      .filter((r) => r.origin === "response-tracker" && r.response.smetsGeneration === "SMETS2")
      .map((r) => r.response.cosParty),
  );
  expect(parties).toEqual(new Set(["ECOS", "TCOS"]));
});

test("SMETS1 requests go through the S1SP, never to a device", () => {
  const smets1 = traffic.requests.filter(
    (r) => r.kind === "valid" && generation.get(r.deviceId) === "SMETS1",
  );
  expect(smets1.length).toBeGreaterThan(5);
  const viaS1sp = new Set(run.s1spRequests.map((r) => r.requestId));
  const viaDevice = new Set(run.deviceCommands.map((c) => c.requestId));
  for (const r of smets1) {
    expect(viaS1sp.has(r.requestId)).toBe(true);
    expect(viaDevice.has(r.requestId)).toBe(false);
    const [answer] = answersTo(r.requestId);
    expect([answer!.origin, answer!.response.responseCode, answer!.response.smetsGeneration]).toEqual([
      "response-tracker",
      "I0",
      "SMETS1",
    ]);
    expect(pipeline.s1sp.device(r.deviceId)!.supplierId).toBe(cast.supplierId);
  }
  // The S1SP checked every request's signatures and countersignatures: it refused none.
  for (const status of Object.keys(pipeline.s1sp.stats.answered))
    expect(["SUCCESS", "ACCEPTED", "ALERT:SUCCESS"]).toContain(status);
});

test("invalid requests are refused by dsp-validate with their check's response code", () => {
  const invalid = traffic.requests.filter((r) => r.kind.startsWith("invalid:"));
  expect(invalid.length).toBeGreaterThan(20);
  for (const r of invalid) {
    const check = r.kind.slice("invalid:".length) as DspOutcomeId;
    const refusal = finals.get(r.requestId)!.find((a) => a.origin === "dsp-validate");
    expect([r.requestId, refusal?.headers["ecos.dsp.check"], refusal?.response.responseCode]).toEqual([
      r.requestId,
      check,
      DEFAULT_RESPONSE_CODES[check],
    ]);
    expect(refusal!.response.successful).toBe(false);
  }
  // Nothing refused by the DSP reached a device or the S1SP.
  const refusedIds = new Set(invalid.filter((r) => r.kind !== "invalid:replay").map((r) => r.requestId));
  for (const c of [...run.deviceCommands, ...run.s1spRequests])
    expect(refusedIds.has(c.requestId)).toBe(false);
});

test("a future-dated request is accepted at once, then its execution alert arrives at the execution time", () => {
  const future = traffic.requests.filter((r) => r.kind === "future-dated");
  expect(future.length).toBeGreaterThan(5);
  for (const r of future) {
    const [answer] = answersTo(r.requestId);
    expect([answer!.origin, answer!.response.responseCode, answer!.response.successful]).toEqual([
      "response-tracker",
      "I0",
      true,
    ]);
    const latency = generation.get(r.deviceId) === "SMETS1" ? S1SP_LATENCY_MS : DEVICE_LATENCY_MS;
    expect(answer!.response.respondedAt - r.receivedAt).toBe(latency);
    const alerts = run.alerts.filter((a) => a.requestId === r.requestId);
    expect(alerts.map((a) => a.alertCode)).toEqual(["8F66"]);
    // Executed two minutes after receipt (whole seconds), well after the acceptance.
    expect(alerts[0]!.raisedAt).toBeGreaterThanOrEqual(r.receivedAt + 120_000);
    expect(alerts[0]!.raisedAt).toBeLessThan(r.receivedAt + 122_000);
  }
});

test("a cancellation is accepted and answered once", () => {
  const cancellations = traffic.requests.filter((r) => r.kind === "cancellation");
  expect(cancellations.length).toBeGreaterThan(2);
  for (const r of cancellations) {
    expect(
      finals.get(r.requestId)!.map((a) => [a.origin, a.response.responseCode, a.response.successful]),
    ).toEqual([["response-tracker", "I0", true]]);
    expect(run.alerts.filter((a) => a.requestId === r.requestId)).toEqual([]);
  }
});

test("a pre-command tampered with between the CoS Party and dispatch is refused by dispatch and never reaches the device", () => {
  const answer = answersTo(tampered.requestId);
  expect(answer).toHaveLength(1);
  expect(answer[0]!.origin).toBe("dispatch");
  expect(answer[0]!.response.successful).toBe(false);
  expect(answer[0]!.headers[REFUSAL_HEADER]).toBeTruthy();
  expect(answer[0]!.response.responseCode).toBe(`GAP-dispatch-${answer[0]!.headers[REFUSAL_HEADER]}`);
  expect(run.deviceCommands.some((c) => c.requestId === tampered.requestId)).toBe(false);
  const cells = pipeline.fleet.device(tampered.deviceId)!.state.supplierCells;
  expect(Buffer.from(cells.digitalSignature!).equals(credentials.losingDs)).toBe(true);
});

test("response times are recorded for every tracked request against 35 s / 21 s", () => {
  const tracked = run.responses.filter((r) => r.final && r.origin === "response-tracker");
  expect(run.responseTimes.map((t) => t.requestId).sort()).toEqual(
    tracked.map((r) => r.response.requestId).sort(),
  );
  const byId = new Map(tracked.map((r) => [r.response.requestId, r.response]));
  for (const t of run.responseTimes) {
    const response = byId.get(t.requestId)!;
    const expected = response.smetsGeneration === "SMETS1" ? S1SP_LATENCY_MS : DEVICE_LATENCY_MS;
    expect([t.requestId, t.responseTimeMs, t.breach]).toEqual([t.requestId, expected, false]);
    expect(response.respondedAt - response.receivedAt).toBe(expected);
  }
  const s = summarise(run, traffic.requests, pipeline, {
    supplierId: cast.supplierId,
    digitalSigning: cast.replacementDs.der,
  });
  expect(s.responseTimes.map((r) => [r.smetsGeneration, r.targetMs, r.p50, r.p99, r.breaches])).toEqual([
    ["SMETS2", 35_000, DEVICE_LATENCY_MS, DEVICE_LATENCY_MS, 0],
    ["SMETS1", 21_000, S1SP_LATENCY_MS, S1SP_LATENCY_MS, 0],
  ]);
});
