/**
 * The pipeline under other conditions: more partitions (the same answers), a decommissioned TCoS
 * Party (its devices' requests refused by it, with an alert), a WAN that loses every command (the
 * tracker's time-outs answer within the target) and one that alters a command after dispatch (the
 * device refuses it).
 */
import { EmbeddedPipeline, type PipelineRun } from "../../processors/pipeline/pipeline";
import { perfectProfile } from "../../deploy/sim/config";
import { START, runPipeline, seeded } from "./fixtures";

const { traffic } = seeded();
const device = new Map(traffic.devices.map((d) => [d.deviceId, d]));

/** requestId → "origin code" of its final answers, sorted: what a run decided, independent of timing. */
function decisions(run: PipelineRun): string[] {
  return run.responses
    .filter((r) => r.final)
    .map((r) => `${r.response.requestId} ${r.origin} ${r.response.responseCode} ${r.response.successful}`)
    .sort();
}

test("three partitions per topic give the same answers as one", async () => {
  const one = await runPipeline();
  const three = await runPipeline({ partitions: 3 });
  expect(decisions(three.run)).toEqual(decisions(one.run));
  expect(three.run.responseTimes.map((t) => t.responseTimeMs).sort()).toEqual(
    one.run.responseTimes.map((t) => t.responseTimeMs).sort(),
  );
  await one.pipeline.close();
  await three.pipeline.close();
}, 60_000);

test("a decommissioned TCoS Party refuses its devices' requests, with an alert to the supplier", async () => {
  const { pipeline, run } = await runPipeline({ tcosDecommissionAt: START - 1 });
  const tcosValid = traffic.requests.filter(
    (r) =>
      r.kind === "valid" &&
      device.get(r.deviceId)?.cosCredential === "TCOS" &&
      device.get(r.deviceId)?.smetsGeneration === "SMETS2",
  );
  expect(tcosValid.length).toBeGreaterThan(10);
  const refusedByTcos = new Set(
    run.responses
      .filter((r) => r.final && r.origin === "tcos-party")
      .map((r) => {
        expect(r.headers["ecos.cos-party.check"]).toBe("decommissioned");
        return r.response.requestId;
      }),
  );
  for (const r of tcosValid) expect(refusedByTcos.has(r.requestId)).toBe(true);
  const alerted = new Set(run.alerts.map((a) => a.requestId));
  for (const r of tcosValid) expect(alerted.has(r.requestId)).toBe(true);
  // Still one final answer each; the ECoS Party's devices are unaffected.
  expect(pipeline.unanswered()).toBe(0);
  expect(
    run.responses.some((r) => r.final && r.origin === "response-tracker" && r.response.cosParty === "ECOS"),
  ).toBe(true);
  await pipeline.close();
}, 60_000);

test("commands lost on the WAN are answered E21 by the tracker's time-out, inside the target", async () => {
  const lossy = { ...perfectProfile(3_000), lossRate: 1 };
  const { pipeline, run } = await runPipeline({
    simulator: { seed: "lossy", defaultModel: lossy, s1sp: lossy },
  });
  const tracked = run.responses.filter((r) => r.final && r.origin === "response-tracker");
  expect(tracked.length).toBeGreaterThan(100);
  // Future-dated and cancellation commands are lost too: their requests time out the same way.
  for (const r of tracked)
    expect([r.response.requestId, r.response.responseCode]).toEqual([r.response.requestId, "E21"]);
  for (const t of run.responseTimes) {
    expect([t.code, t.breach]).toEqual(["E21", false]);
  }
  const s2 = run.responseTimes.filter((t) => t.responseTimeMs >= 34_000 && t.responseTimeMs < 35_000);
  const s1 = run.responseTimes.filter((t) => t.responseTimeMs >= 20_000 && t.responseTimeMs < 21_000);
  expect(s2.length + s1.length).toBe(run.responseTimes.length);
  expect(s1.length).toBeGreaterThan(0);
  expect(pipeline.unanswered()).toBe(0);
  await pipeline.close();
}, 60_000);

test("a command tampered with on the WAN after dispatch is refused by the device, and the supplier is told", async () => {
  const { credentials } = seeded();
  const targeted = new Map<string, number>();
  for (const r of traffic.requests) targeted.set(r.deviceId, (targeted.get(r.deviceId) ?? 0) + 1);
  const victim = traffic.requests.find(
    (r) =>
      r.kind === "valid" &&
      device.get(r.deviceId)?.smetsGeneration === "SMETS2" &&
      targeted.get(r.deviceId) === 1,
  )!;
  const { pipeline, run } = await runPipeline({
    alterDeviceCommand: (c) => {
      if (c.requestId !== victim.requestId) return c;
      const command = Buffer.from(c.command);
      const last = command.length - 1;
      command.writeUInt8(command.readUInt8(last) ^ 0x01, last);
      return { ...c, command };
    },
  });
  expect(pipeline.fleet.stats.answered["SIGNATURE_INVALID"]).toBe(1);
  const answer = run.responses.filter((r) => r.final && r.response.requestId === victim.requestId);
  expect(answer.map((a) => [a.origin, a.response.responseCode, a.response.successful])).toEqual([
    ["response-tracker", "GAP-device-refused", false],
  ]);
  const cells = pipeline.fleet.device(victim.deviceId)!.state.supplierCells;
  expect(Buffer.from(cells.digitalSignature!).equals(credentials.losingDs)).toBe(true);
  await pipeline.close();
}, 60_000);

test("a hand-over that outruns the drivers' retention stops the pipeline instead of losing records", async () => {
  // A run hands requests over one time of receipt at a time; a burst of 50 at once does not fit in 5.
  const { credentials } = seeded();
  const small = await EmbeddedPipeline.create({
    credentials,
    devices: traffic.devices,
    registrations: traffic.registrations,
    users: [{ userId: traffic.cast.supplierId, roles: ["IS"], status: "ACTIVE", mpids: ["ACEE", "ACG"] }],
    startTimeMs: START,
    retainRecords: 5,
  });
  await expect(small.submit(traffic.requests.slice(0, 50))).rejects.toThrow(
    /dropped before the pump read them/,
  );
  await small.close();
}, 60_000);
