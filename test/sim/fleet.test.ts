import { parseDeviceAlert, parseDeviceResponse } from "../../workers/gbcs/device-response";
import { DUIS_CANCELLATION_MS } from "../../workers/gbcs/pre-command";
import { deriveScalar } from "../../workers/testing/test-pki";
import { describeOutcome } from "../../deploy/sim/fleet";
import { SIM_TCOS_PARTY_ID } from "../../deploy/sim/credentials";
import { cast, creds, deviceCommand, ecdsa, ESME, fixedProfile, fleetOf, NOW, snapshot } from "./fixtures";

const LATENCY = 3_000;
const perfect = { defaultModel: fixedProfile(LATENCY) };

const sameDer = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
  a !== undefined && Buffer.from(a).equals(b);

describe("device fleet: immediate commands", () => {
  test("really verifies, replaces the cells, moves the floors and answers a device-signed GBCS response after the latency", () => {
    const fleet = fleetOf(perfect);
    const fate = fleet.receive(deviceCommand(7n), NOW);
    expect(fate).toEqual({ kind: "answered", status: "SUCCESS", at: NOW + LATENCY, late: false });
    expect(fleet.advance(NOW + LATENCY - 1)).toEqual([]);
    const [r, ...rest] = fleet.advance(NOW + LATENCY);
    expect(rest).toEqual([]);
    expect(r).toMatchObject({
      source: "DEVICE",
      kind: "RESPONSE",
      status: "SUCCESS",
      detail: "",
      answeredAt: NOW + LATENCY,
    });
    const parsed = parseDeviceResponse(r!.payload!);
    expect(parsed.header.originatorCounter).toBe(7n);
    expect(parsed.outcome?.replacementOutcomes.map((o) => o.status)).toEqual([
      "success",
      "success",
      "success",
    ]);
    const devicePoint = ecdsa.publicPointOf(
      ecdsa.importPrivateKey(deriveScalar("sim-test", `device/${ESME}`)),
    );
    expect(ecdsa.verify(ecdsa.importPublicKey(devicePoint), parsed.signedBytes, parsed.signature!)).toBe(
      true,
    );
    const d = fleet.device(ESME)!.state;
    expect(sameDer(d.supplierCells.digitalSignature, cast.replacementDs.der)).toBe(true);
    expect(sameDer(d.supplierCells.keyAgreement, cast.replacementKa.der)).toBe(true);
    expect(sameDer(d.supplierCells.keyAgreementTopUp, cast.replacementKaTopUp.der)).toBe(true);
    expect(d.floors).toEqual({ transitionalCoS: 7n, supplier: 0n, supplierPrepaymentTopUp: 0n });
  });

  test("a tampered command is refused and changes nothing", () => {
    const fleet = fleetOf(perfect);
    const before = fleet.device(ESME)!.state;
    const cmd = deviceCommand(7n);
    const bytes = Buffer.from(cmd.command);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0x01; // inside the signature
    const payloadFlip = Buffer.from(cmd.command);
    payloadFlip[60] = payloadFlip[60]! ^ 0x01; // inside the payload: the signature no longer covers it
    expect(fleet.receive({ ...cmd, command: bytes }, NOW)).toMatchObject({ status: "SIGNATURE_INVALID" });
    expect(fleet.receive({ ...cmd, command: payloadFlip }, NOW)).toMatchObject({ kind: "answered" });
    const answers = fleet.advance(NOW + LATENCY);
    expect(answers.map((a) => a.status)).toEqual([
      "SIGNATURE_INVALID",
      expect.stringMatching(/SIGNATURE_INVALID|MALFORMED/),
    ]);
    expect(answers[0]!.payload).toBeNull();
    expect(fleet.device(ESME)!.state).toEqual(before);
  });

  test("garbage, truncated or misaddressed commands are refused, not thrown", () => {
    const fleet = fleetOf(perfect);
    const good = deviceCommand(7n);
    for (const bytes of [Buffer.alloc(0), Buffer.from("hello"), good.command.subarray(0, 100)])
      expect(fleet.receive({ ...good, command: bytes }, NOW)).toMatchObject({ status: "MALFORMED" });
    const elsewhere = deviceCommand(7n, { deviceId: "00-DB-00-00-00-00-00-09" });
    expect(fleet.receive({ ...elsewhere, deviceId: ESME }, NOW)).toMatchObject({
      status: "NOT_ADDRESSED_TO_DEVICE",
    });
    expect(fleet.device(ESME)!.state.floors.transitionalCoS).toBe(0n);
  });

  test("a command signed with another key than the transitionalCoS cell's is refused", () => {
    const fleet = fleetOf(perfect);
    fleet.receive(deviceCommand(7n, { signer: creds.tcosPartyCredential }), NOW);
    expect(fleet.advance(NOW + LATENCY)[0]).toMatchObject({ status: "SIGNATURE_INVALID" });
    expect(fleet.device(ESME)!.state.floors.transitionalCoS).toBe(0n);
  });

  test("a device holding the TCoS credential refuses an ECoS command and accepts the TCoS Party's", () => {
    const fleet = fleetOf(perfect, [snapshot(ESME, { cosCredential: "TCOS" })]);
    fleet.receive(deviceCommand(3n), NOW);
    fleet.receive(
      deviceCommand(4n, { signer: creds.tcosPartyCredential, cosPartyId: SIM_TCOS_PARTY_ID }),
      NOW + 1,
    );
    expect(fleet.advance(NOW + LATENCY + 1).map((a) => a.status)).toEqual(["UNKNOWN_ORIGINATOR", "SUCCESS"]);
  });

  test("a replayed command (same counter, or lower) is refused; a higher counter is accepted", () => {
    const fleet = fleetOf(perfect);
    fleet.receive(deviceCommand(7n), NOW);
    fleet.receive(deviceCommand(7n), NOW + 10);
    fleet.receive(deviceCommand(5n), NOW + 20);
    fleet.receive(deviceCommand(8n), NOW + 30);
    expect(fleet.advance(NOW + 60_000).map((a) => a.status)).toEqual([
      "SUCCESS",
      "COUNTER_REPLAYED",
      "COUNTER_REPLAYED",
      "SUCCESS",
    ]);
    expect(fleet.device(ESME)!.state.floors.transitionalCoS).toBe(8n);
  });

  test("a command for a device not in the fleet gets no answer", () => {
    const fleet = fleetOf(perfect);
    expect(fleet.receive(deviceCommand(1n, { deviceId: "00-DB-00-00-00-00-99-99" }), NOW)).toEqual({
      kind: "unknownDevice",
    });
    expect(fleet.advance(NOW + 3_600_000)).toEqual([]);
    expect(fleet.stats.unknownDevice).toBe(1);
  });

  test("a replacement that is not a supplier certificate is refused per cell and nothing is replaced", () => {
    const fleet = fleetOf(perfect);
    const before = fleet.device(ESME)!.state.supplierCells;
    fleet.receive(
      deviceCommand(9n, { request: { digitalSigningCertificate: cast.supplierXmlSign.der } }),
      NOW,
    );
    const [r] = fleet.advance(NOW + LATENCY);
    expect(r!.status).toBe("FAILURE");
    expect(r!.detail).toMatch(/^digitalSignature: badCertificate/);
    expect(parseDeviceResponse(r!.payload!).outcome?.success).toBe(false);
    expect(fleet.device(ESME)!.state.supplierCells).toEqual(before);
    expect(fleet.device(ESME)!.state.floors.transitionalCoS).toBe(9n);
  });
});

describe("device fleet: future-dated commands and cancellations", () => {
  const EXEC = NOW + 10 * 60_000;

  test("accepted after the latency, then an 0x8F66 alert at the execution time; cells change only then", () => {
    const fleet = fleetOf(perfect);
    const cmd = deviceCommand(11n, { request: { executionDateTime: EXEC } });
    expect(cmd.executionAt).toBe(EXEC);
    fleet.receive(cmd, NOW);
    const [accepted] = fleet.advance(NOW + LATENCY);
    expect(accepted).toMatchObject({ kind: "RESPONSE", status: "ACCEPTED", requestId: cmd.requestId });
    expect(parseDeviceResponse(accepted!.payload!).outcome).toBeNull();
    expect(sameDer(fleet.device(ESME)!.state.supplierCells.digitalSignature, creds.losingDs)).toBe(true);
    expect(fleet.nextDueAt()).toBe(EXEC);
    expect(fleet.advance(EXEC - 1)).toEqual([]);
    const [alert, ...rest] = fleet.advance(EXEC);
    expect(rest).toEqual([]);
    expect(alert).toMatchObject({
      kind: "ALERT",
      status: "SUCCESS",
      requestId: cmd.requestId,
      answeredAt: EXEC,
    });
    const parsed = parseDeviceAlert(alert!.payload!);
    expect(parsed.alertCode).toBe(0x8f66);
    expect(parsed.header.originatorCounter).toBe(1n); // the device's own alert counter
    expect(parsed.outcome.authorisingSeqNumber).toBe(11n);
    expect(sameDer(fleet.device(ESME)!.state.supplierCells.digitalSignature, cast.replacementDs.der)).toBe(
      true,
    );
    expect(fleet.device(ESME)!.pendingRequestId).toBeNull();
  });

  test("a cancellation drops the held command: no alert at the execution time, cells unchanged", () => {
    const fleet = fleetOf(perfect);
    fleet.receive(deviceCommand(11n, { request: { executionDateTime: EXEC } }), NOW);
    const cancel = deviceCommand(12n, { request: { executionDateTime: DUIS_CANCELLATION_MS } });
    expect(cancel.cancellation).toBe(true);
    fleet.receive(cancel, NOW + 1000);
    expect(fleet.advance(NOW + 1000 + LATENCY).map((a) => a.status)).toEqual(["ACCEPTED", "ACCEPTED"]);
    expect(fleet.advance(EXEC + 3_600_000)).toEqual([]);
    expect(sameDer(fleet.device(ESME)!.state.supplierCells.digitalSignature, creds.losingDs)).toBe(true);
    expect(fleet.device(ESME)!.state.floors.transitionalCoS).toBe(12n);
  });

  test("an injected failure at execution gives an 0x8F67 alert and leaves the cells", () => {
    const fleet = fleetOf({ defaultModel: fixedProfile(LATENCY, { failureRates: { resourcesBusy: 1 } }) });
    fleet.receive(deviceCommand(11n, { request: { executionDateTime: EXEC } }), NOW);
    expect(fleet.advance(NOW + LATENCY)[0]!.status).toBe("ACCEPTED");
    const [alert] = fleet.advance(EXEC);
    expect(alert).toMatchObject({ kind: "ALERT", status: "FAILURE" });
    expect(alert!.detail).toContain("resourcesBusy");
    expect(parseDeviceAlert(alert!.payload!).alertCode).toBe(0x8f67);
    expect(sameDer(fleet.device(ESME)!.state.supplierCells.digitalSignature, creds.losingDs)).toBe(true);
  });
});

describe("device fleet: modelled WAN and failures", () => {
  const N = 1500;
  const run = (profile: Parameters<typeof fixedProfile>[1], latency = fixedProfile(LATENCY).latency) => {
    const fleet = fleetOf({ defaultModel: { ...fixedProfile(LATENCY, profile), latency } });
    const fates = [];
    for (let i = 1; i <= N; i++) fates.push(fleet.receive(deviceCommand(BigInt(i)), NOW + i));
    return { fleet, fates, answers: fleet.advance(NOW + 10_000_000) };
  };

  test("loss: a lost command gets no answer and changes nothing; the rate is about as configured", () => {
    const all = fleetOf({ defaultModel: fixedProfile(LATENCY, { lossRate: 1 }) });
    expect(all.receive(deviceCommand(1n), NOW)).toEqual({ kind: "lost" });
    expect(all.advance(NOW + 3_600_000)).toEqual([]);
    expect(all.device(ESME)!.state.floors.transitionalCoS).toBe(0n);
    const { fates, answers } = run({ lossRate: 0.2 });
    const lost = fates.filter((f) => f.kind === "lost").length;
    expect(lost / N).toBeGreaterThan(0.16);
    expect(lost / N).toBeLessThan(0.24);
    expect(answers.length).toBe(N - lost);
  });

  test("late answers come after the late latency", () => {
    const { answers, fleet } = run({ timeoutRate: 1, lateLatency: { kind: "fixed", ms: 50_000 } });
    expect(answers.every((a, i) => a.answeredAt === NOW + i + 1 + 50_000)).toBe(true);
    expect(fleet.stats.late).toBe(N);
  });

  test("failure rates: statuses roughly as configured, and failed commands replace nothing", () => {
    const { answers } = run({ failureRates: { resourcesBusy: 0.2, insufficientMemory: 0.1 } });
    const busy = answers.filter((a) => a.detail.includes("resourcesBusy")).length / N;
    const memory = answers.filter((a) => a.detail.includes("insufficientMemory")).length / N;
    expect(busy).toBeGreaterThan(0.16);
    expect(busy).toBeLessThan(0.24);
    expect(memory).toBeGreaterThan(0.07);
    expect(memory).toBeLessThan(0.13);
    const failure = answers.find((a) => a.status === "FAILURE")!;
    const outcome = parseDeviceResponse(failure.payload!).outcome!;
    expect(outcome.success).toBe(false);
    expect(describeOutcome(outcome)).toMatch(/digitalSignature: (resourcesBusy|insufficientMemory)/);
    expect(answers.filter((a) => a.status === "SUCCESS").length / N).toBeGreaterThan(0.64);
  });

  test("latency percentiles of the answers follow the configured lognormal", () => {
    const { answers } = run({}, { kind: "lognormal", p50Ms: 4000, p99Ms: 20000 });
    // Each command was received at NOW + i; recover each answer's latency from its request.
    const byReq = new Map(answers.map((a) => [a.requestId, a.answeredAt]));
    const latencies = [...byReq.entries()]
      .map(([id, at]) => at - NOW - Number(BigInt(id.split(":")[2]!) - 1000n))
      .sort((x, y) => x - y);
    expect(latencies.length).toBe(N);
    const p = (q: number): number => latencies[Math.floor(q * (latencies.length - 1))]!;
    expect(p(0.5)).toBeGreaterThan(3600);
    expect(p(0.5)).toBeLessThan(4400);
    expect(p(0.99)).toBeGreaterThan(14000);
    expect(p(0.99)).toBeLessThan(27000);
  });

  test("deterministic for a seed; another seed draws differently", () => {
    const profile = { lossRate: 0.1, failureRates: { other: 0.1 } };
    const latency = { kind: "lognormal", p50Ms: 4000, p99Ms: 20000 } as const;
    const a = run(profile, latency).answers.map((r) => [r.requestId, r.status, r.answeredAt]);
    const b = run(profile, latency).answers.map((r) => [r.requestId, r.status, r.answeredAt]);
    expect(b).toEqual(a);
    const other = fleetOf({ seed: "another", defaultModel: { ...fixedProfile(0, profile), latency } });
    for (let i = 1; i <= 50; i++) other.receive(deviceCommand(BigInt(i)), NOW + i);
    const c = other.advance(NOW + 10_000_000).map((r) => [r.requestId, r.status, r.answeredAt]);
    expect(c).not.toEqual(a.slice(0, c.length));
  });

  test("profiles are chosen by device model", () => {
    const fleet = fleetOf({ defaultModel: fixedProfile(1000), models: { SLOW: fixedProfile(30_000) } }, [
      snapshot(ESME),
      snapshot("00-DB-00-00-00-00-00-02", { deviceModel: "SLOW" }),
    ]);
    expect(fleet.receive(deviceCommand(1n), NOW)).toMatchObject({ at: NOW + 1000 });
    expect(fleet.receive(deviceCommand(1n, { deviceId: "00-DB-00-00-00-00-00-02" }), NOW)).toMatchObject({
      at: NOW + 30_000,
    });
  });
});
