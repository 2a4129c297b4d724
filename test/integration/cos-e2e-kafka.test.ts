/**
 * SRV 6.23 end to end on the real broker and schema registry: a few hundred signed requests (SMETS2
 * devices holding the ECoS or the TCoS credential, SMETS1 devices, future-dated requests,
 * cancellations, invalid ones) through dsp-validate, the ECoS and TCoS Parties, dispatch and the
 * response tracker — `ecos run --kafka` as an operator starts it, a Kafka driver per stage in one child
 * process — to the device and S1SP simulators (`ecos sim`, another process, same seed) and back. The
 * stages run in two processes as an operator may split them (A: DSP, tracker, N65; B: CoS Parties,
 * dispatch); B is SIGKILLed at a third of the answers and restarted, A at two thirds.
 *
 * Shown: every request gets exactly one final Service Response (the DSP's I99 acknowledgement is not
 * final; a DSP, CoS Party or dispatch refusal, or the tracker's answer, is); SMETS2+ requests are
 * answered SUCCESS and the simulated devices hold the gaining supplier's certificates; SMETS1 requests
 * went through the S1SP; future-dated requests are accepted and executed at their time (alert 8F66),
 * cancelled ones never executed; no device got two commands for one request; each device's CoS
 * counters on device.commands strictly increase. No timing assertions: everything is awaited.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { anomalyAvroSerdes } from "../../processors/anomaly/serdes";
import { ANOMALY_TOPICS } from "../../processors/anomaly/topology";
import { cosTopics } from "../../processors/cos/records";
import { cosAvroSerdes } from "../../processors/cos/serdes";
import { dspAvroSerdes } from "../../processors/dsp/serdes";
import { dspTopics } from "../../processors/dsp/topology";
import { BytesSerde } from "../../processors/runtime/serde";
import { avroSerde, loadSchema } from "../../schemas/avro";
import { EVENT_SCHEMAS, type DccAlertEvent } from "../../schemas/event-records";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import { loadStateFile } from "../../deploy/sim/state-file";
import {
  ACKNOWLEDGEMENT_CODE,
  e2eTopics,
  e2eTraffic,
  produceValues,
  startPipelineApp,
  type PipelineAppConfig,
  startSim,
  waitForGroups,
  type PipelineAppHandle,
} from "../../bench/cos-e2e";
import { duplicateIds } from "../helpers/invariants";
import { trackChild } from "./children";
import { progressReport, readTopic, removeRun, uniquePrefix } from "./kafka-harness";
import { testServices } from "./services";
import { kafkaStageAppIds } from "../../processors/pipeline/kafka-pipeline";

const SEED = "cos-e2e-it";
const DEVICES = 400;
const REQUESTS = Number(process.env["ECOS_COS_E2E_REQUESTS"] ?? 300);
const FUTURE = 12;
const CANCELLED = 4;
/**
 * The load generator's replayed RequestIDs are sent too (the DSP refuses each replay; the original is
 * answered once by the tracker). ECOS_COS_E2E_REPLAYS=0 leaves them out.
 */
const REPLAYS = process.env["ECOS_COS_E2E_REPLAYS"] !== "0";
/** Future-dated requests execute this long after they are signed: after the kill and the restart. */
const EXECUTION_DELAY_MS = 75_000;

describe("SRV 6.23 end to end on Kafka with the simulators, across a SIGKILL of each stage process", () => {
  const services = testServices();
  const brokers = services.kafkaBrokers;
  const kafka = new Kafka({ clientId: "cos-e2e-it", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const prefix = uniquePrefix("cos-e2e");
  const applicationId = `${prefix}app`;
  const ids = kafkaStageAppIds(`${applicationId}-`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-cos-e2e-it-"));
  const stateFile = path.join(dir, "sim-state.json");
  const registry = new ConfluentSchemaRegistryClient({ host: services.registryUrl });
  const dsp = dspAvroSerdes(registry);
  const cos = cosAvroSerdes(registry);
  const anomaly = anomalyAvroSerdes(registry);
  const alertSerde = avroSerde<DccAlertEvent>(registry, loadSchema(EVENT_SCHEMAS.dccAlertEvent));
  const t = { ...dspTopics(prefix), ...cosTopics(prefix), adtFiles: prefix + ANOMALY_TOPICS.adtFiles };

  beforeAll(async () => {
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: e2eTopics(prefix).map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 })),
    });
  });

  afterAll(async () => {
    if (process.env["ECOS_KEEP_TOPICS"] === "1") return void (await admin.disconnect());
    await removeRun(admin, prefix, [...Object.values(ids), `${prefix}sim`]);
    await admin.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test(`~${REQUESTS} requests (SMETS2 ECoS/TCoS, SMETS1, future-dated, cancellations, invalid), both stage processes SIGKILLed once`, async () => {
    // Deterministic for the seed; signed again just before sending, with the execution time then.
    const trafficAt = (executionAt: number) =>
      e2eTraffic({
        requests: REQUESTS,
        devices: DEVICES,
        seed: SEED,
        invalidShare: 0.15,
        futureDated: FUTURE,
        cancellations: CANCELLED,
        executionAt,
        replays: REPLAYS,
      });
    const traffic = trafficAt(Date.now() + EXECUTION_DELAY_MS);
    const cast = traffic.cast;

    await produceValues(
      kafka,
      t.inventory,
      traffic.devices.map((d) => ({ key: d.deviceId, value: d, timestamp: 1 })),
      dsp.inventory,
    );
    await produceValues(
      kafka,
      t.registration,
      traffic.registrations.map((r) => ({ key: r.mpxn, value: r, timestamp: 1 })),
      dsp.registration,
    );
    await produceValues(
      kafka,
      t.adtFiles,
      [{ key: traffic.adt.userId, value: traffic.adt, timestamp: traffic.adt.submittedAt }],
      anomaly.adtFile,
    );

    const sim = await startSim(
      {
        brokers,
        registryUrl: services.registryUrl,
        prefix,
        group: `${prefix}sim`,
        devices: DEVICES,
        seed: SEED,
        stateFile,
        flags: [
          "--perfect",
          "--latency",
          "uniform:min=200,max=1500",
          "--s1sp-latency",
          "uniform:min=200,max=1500",
        ],
      },
      trackChild,
    );
    const appConfig: PipelineAppConfig = {
      brokers,
      registryUrl: services.registryUrl,
      topicPrefix: prefix,
      applicationId,
      stateDir: path.join(dir, "app"),
      seed: SEED,
      crypto: "inline",
      // The test is about delivery, not response times: no answer may lose to a time-out while the
      // pipeline restarts on a loaded machine.
      deviceTimeoutMs: 600_000,
    };
    const waitStarted = async (app: PipelineAppHandle): Promise<void> => {
      const until = Date.now() + 150_000;
      while (!app.started()) {
        if (app.child.exitCode !== null) throw new Error(`pipeline app exited: ${app.stderr()}`);
        if (Date.now() > until) throw new Error(`pipeline app did not start: ${app.stderr()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    // Two processes, as an operator splits the stages: A runs the DSP, the tracker and N65; B the CoS
    // Parties and dispatch. Each is SIGKILLed once while the other keeps running.
    const configA: PipelineAppConfig = {
      ...appConfig,
      stages: "dsp,tracker,cos-alerts",
      stateDir: path.join(dir, "a"),
    };
    const configB: PipelineAppConfig = {
      ...appConfig,
      stages: "ecos,tcos,dispatch",
      stateDir: path.join(dir, "b"),
    };
    const a1 = startPipelineApp(configA, trackChild);
    const b1 = startPipelineApp(configB, trackChild);
    await waitStarted(a1);
    await waitStarted(b1);
    await waitForGroups(
      admin,
      [
        { group: ids.dsp, topics: [t.inventory, t.registration] },
        { group: ids.ecos, topics: [t.inventory, t.adtFiles] },
        { group: ids.tcos, topics: [t.inventory, t.adtFiles] },
        { group: ids.dispatch, topics: [t.adtFiles] },
      ],
      150_000,
    );

    // The requests, receipt time = when they are produced.
    const requests = trafficAt(Math.ceil((Date.now() + EXECUTION_DELAY_MS) / 1000) * 1000).requests;
    const receivedAt = Date.now();
    await produceValues(
      kafka,
      t.requests,
      requests.map((r) => ({ key: r.deviceId, value: r.bytes, timestamp: receivedAt })),
      BytesSerde,
    );

    // SIGKILL B (CoS Parties, dispatch) once a third of the requests have their tracker answer, restart
    // it; SIGKILL A (DSP, tracker) at two thirds, restart it.
    const accepted = requests.filter((r) => r.dspAccepts);
    const waitFinals = async (n: number, running: PipelineAppHandle[]): Promise<void> => {
      const until = Date.now() + 150_000;
      while (a1.finals() < n) {
        for (const app of running)
          if (app.child.exitCode !== null) throw new Error(`pipeline app exited: ${app.stderr()}`);
        if (Date.now() > until) throw new Error(`no progress before the kill: ${a1.stderr().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await waitFinals(accepted.length / 3, [a1, b1]);
    b1.child.kill("SIGKILL");
    await b1.exited;
    const b2 = startPipelineApp(configB, trackChild);
    await waitFinals((2 * accepted.length) / 3, [a1, b2]);
    a1.child.kill("SIGKILL");
    await a1.exited;
    const killedAfter = a1.finals();
    const a2 = startPipelineApp(configA, trackChild);
    const apps = { a1, b1, a2, b2 };

    const diagnose = async (err: Error): Promise<never> => {
      const log = path.join(os.tmpdir(), `${prefix}pipeline.log`);
      fs.writeFileSync(
        log,
        Object.entries(apps)
          .map(([name, app]) => `--- ${name}\n${app.stderr()}\n`)
          .join("") + `--- sim\n${sim.stderr()}`,
      );
      const reports = await Promise.all([
        progressReport(kafka, ids.dsp, [t.requests], [t.responses]),
        progressReport(kafka, ids.ecos, [t.ecosParty], [t.authorisations]),
        progressReport(kafka, ids.tcos, [t.tcosParty], []),
        progressReport(kafka, ids.dispatch, [t.authorisations], [t.deviceCommands, t.s1spRequests]),
        progressReport(kafka, ids.tracker, [t.authorisations, t.deviceResponses], []),
        progressReport(kafka, `${prefix}sim`, [t.deviceCommands, t.s1spRequests], [t.deviceResponses]),
      ]);
      throw new Error(
        `${err.message}\n${reports.join("\n")}\nlogs in ${log}; a2: ${a2.stderr().slice(-2000)}`,
      );
    };

    // Every submission: one final response; every request the DSP accepted: also its I99.
    const expected = requests.length + accepted.length;
    const out = await readTopic(kafka, t.responses, dsp.response, expected, {
      settleMs: 5000,
      timeoutMs: 150_000,
    }).catch(diagnose);
    // Future-dated requests not cancelled execute at their time: one alert each.
    const executed = requests.filter(
      (r) => r.kind === "future-dated" && !requests.some((c) => c.cancels === r.requestId),
    );
    const alerts = (
      await readTopic(kafka, t.alerts, alertSerde, executed.length, {
        settleMs: 3000,
        timeoutMs: 150_000,
      }).catch(diagnose)
    ).map((r) => r.value);
    const smets2 = accepted.filter((r) => r.smets === "SMETS2");
    const smets1 = accepted.filter((r) => r.smets === "SMETS1");
    const commands = await readTopic(kafka, t.deviceCommands, cos.deviceCommand, smets2.length, {
      settleMs: 3000,
    }).catch(diagnose);
    const s1sp = await readTopic(kafka, t.s1spRequests, cos.s1spRequest, smets1.length, {
      settleMs: 1000,
    }).catch(diagnose);
    const dead = await readTopic(kafka, `${prefix}dead-letters`, BytesSerde, 0, {
      settleMs: 500,
      timeoutMs: 5000,
    });

    a2.child.kill("SIGTERM");
    b2.child.kill("SIGTERM");
    expect(await a2.exited).toBe(0);
    expect(await b2.exited).toBe(0);
    sim.child.kill("SIGTERM");
    expect(await sim.exited).toBe(0);

    process.stderr.write(
      `cos-e2e: ${requests.length} requests, ${accepted.length} passed the DSP; CoS Parties + dispatch killed ` +
        `after a third, DSP + tracker after ${killedAfter} tracker finals; ${commands.length} device commands, ` +
        `${s1sp.length} S1SP requests; driver start retries: ` +
        `${JSON.stringify(Object.values(apps).flatMap((app) => app.startRetries()))}\n`,
    );
    expect(killedAfter).toBeLessThan(accepted.length);
    expect(dead).toHaveLength(0);

    // Exactly one final response per submission (a replayed RequestID is submitted twice).
    const finals = out.filter((r) => r.value.responseCode !== ACKNOWLEDGEMENT_CODE);
    const acks = out.filter((r) => r.value.responseCode === ACKNOWLEDGEMENT_CODE);
    expect(duplicateIds(acks.map((r) => r.value.requestId))).toEqual([]);
    const submissions = new Map<string, number>();
    for (const r of requests) submissions.set(r.requestId, (submissions.get(r.requestId) ?? 0) + 1);
    const finalsOf = new Map<string, typeof finals>();
    for (const r of finals) finalsOf.set(r.value.requestId, [...(finalsOf.get(r.value.requestId) ?? []), r]);
    const wrongCount = [...submissions].filter(([id, n]) => (finalsOf.get(id)?.length ?? 0) !== n);
    expect(
      wrongCount.map(([id, n]) => `${id}: ${n} submitted, ${finalsOf.get(id)?.length ?? 0} final`),
    ).toEqual([]);
    expect([...finalsOf.keys()].filter((id) => !submissions.has(id))).toEqual([]);
    expect(finals).toHaveLength(requests.length);

    // Outcomes by kind. A replayed RequestID has two finals: the DSP's replay refusal answers the replay,
    // the other one the original submission.
    const isReplayRefusal = (f: (typeof finals)[number]) => f.headers["ecos.dsp.check"] === "replay";
    const finalFor = (r: (typeof requests)[number]) => {
      const all = finalsOf.get(r.requestId)!;
      return (
        (r.kind === "replay" ? all.find(isReplayRefusal) : all.find((f) => !isReplayRefusal(f))) ?? all[0]!
      );
    };
    const outcomeOf = (f: (typeof finals)[number]) =>
      `${f.value.responseCode}${f.value.successful ? "" : "!"}`;
    const wrongOutcome: string[] = [];
    for (const r of requests) {
      const f = finalFor(r);
      if (r.kind.startsWith("invalid:") || r.kind === "replay") {
        if (
          f.value.successful ||
          f.headers["ecos.dsp.check"] !== (r.kind === "replay" ? "replay" : r.kind.slice(8))
        )
          wrongOutcome.push(`${r.requestId} ${r.kind}: ${outcomeOf(f)} ${f.headers["ecos.dsp.check"]}`);
      } else if (!f.value.successful || f.value.responseCode !== "I0")
        wrongOutcome.push(`${r.requestId} ${r.kind}: ${outcomeOf(f)} ${JSON.stringify(f.headers)}`);
    }
    expect(wrongOutcome.slice(0, 20)).toEqual([]);
    const immediate = accepted.filter((r) => r.kind === "immediate");
    expect(immediate.filter((r) => r.smets === "SMETS2").length).toBeGreaterThan(50);
    expect(immediate.filter((r) => r.smets === "SMETS1").length).toBeGreaterThan(5);

    // Commands: one per request that reached dispatch, never two for one request; counters per device
    // strictly increasing (the topic is keyed by device id: one partition, in order).
    expect(duplicateIds(commands.map((c) => c.value.requestId))).toEqual([]);
    expect(commands.map((c) => c.value.requestId).sort()).toEqual(smets2.map((r) => r.requestId).sort());
    const counters = new Map<string, bigint[]>();
    for (const c of commands)
      counters.set(c.value.deviceId, [...(counters.get(c.value.deviceId) ?? []), BigInt(c.value.counter)]);
    const notIncreasing = [...counters].filter(([, cs]) => cs.some((c, i) => i > 0 && c <= cs[i - 1]!));
    expect(notIncreasing.map(([d, cs]) => `${d}: ${cs.join(",")}`)).toEqual([]);
    expect([...counters.values()].some((cs) => cs.length > 1)).toBe(true);
    expect(duplicateIds(s1sp.map((c) => c.value.requestId))).toEqual([]);
    expect(s1sp.map((c) => c.value.requestId).sort()).toEqual(smets1.map((r) => r.requestId).sort());

    // Future-dated: accepted (the final response), executed at their time, cancelled ones never.
    expect(alerts.map((a) => [a.requestId, a.alertCode]).sort()).toEqual(
      executed.map((r) => [r.requestId, "8F66"]).sort(),
    );

    // The simulators' state: the devices hold the gaining supplier's certificates.
    const state = loadStateFile(stateFile, SEED)!;
    const fleet = new Map(state.fleet);
    const s1spState = new Map(state.s1sp);
    const cancelledDevices = new Set(
      requests.filter((r) => r.kind === "cancellation").map((r) => r.deviceId),
    );
    const notReplaced: string[] = [];
    for (const r of smets2) {
      if (cancelledDevices.has(r.deviceId)) continue;
      const cells = fleet.get(r.deviceId)?.state.supplierCells;
      if (!cells || !Buffer.from(cells.digitalSignature ?? []).equals(cast.replacementDs.der))
        notReplaced.push(r.deviceId);
    }
    expect(notReplaced).toEqual([]);
    for (const d of cancelledDevices) expect(fleet.get(d)?.state.pending ?? null).toBeNull();
    expect(smets1.filter((r) => s1spState.get(r.deviceId)?.supplierId !== cast.supplierId)).toEqual([]);
  });
});
