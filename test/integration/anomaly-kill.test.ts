/**
 * DSP anomaly detection across SIGKILL on the real broker: the standalone topology runs in a separate
 * process (Avro through the real registry, exactly-once Kafka driver), is killed mid-stream and
 * restarted, then killed once more at the end and restarted. The same input run through the
 * in-process driver is the reference: every store (windows, ADT tables, counted request ids,
 * quarantine) must be identical to it after processing and again after the final restore, and every
 * output must be there exactly once. The CLI's Kafka paths (adt status from the changelogs, adt
 * submit with its result) are checked against the same state.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { Kafka, logLevel } from "kafkajs";
import { readAdtStateOnKafka, submitAdtFileOnKafka } from "../../deploy/cli/adt";
import { loadConfig } from "../../deploy/config/config";
import { anomalyConfig } from "../../processors/anomaly/config";
import { quarantineRefFor } from "../../processors/anomaly/processors";
import type {
  AdtFileSubmission,
  ExitQuarantineInstruction,
  ServiceRequestEnvelope,
} from "../../processors/anomaly/records";
import { anomalyAvroSerdes } from "../../processors/anomaly/serdes";
import {
  DSP_ANOMALY_STORES,
  anomalyTopics,
  buildDspAnomalyTopology,
  type AnomalySerdes,
} from "../../processors/anomaly/topology";
import { InProcessDriver } from "../../processors/runtime/in-process-driver";
import { partitionForKey } from "../../processors/runtime/partitioner";
import type { Serde } from "../../processors/runtime/serde";
import { ConfluentSchemaRegistryClient, InMemorySchemaRegistry } from "../../schemas/registry";
import { duplicateIds } from "../helpers/invariants";
import { consumedToEnd, progressReport, readTopic, uniquePrefix } from "./kafka-harness";
import { testServices } from "./services";
import { trackChild } from "./children";

const APP = path.join(__dirname, "fixtures", "anomaly-app.ts");
const PARTITIONS = 3;
const USERS = 120;
const REQUESTS = 6000;
const T0 = Date.UTC(2026, 0, 1);
const HEADER = "SRV,TimePeriodApplicable,ADT,WarningThreshold";

const hex = (n: number): string => n.toString(16).toUpperCase().padStart(2, "0");
const userId = (u: number): string => `90-B3-D5-1F-30-01-${hex(u >> 8)}-${hex(u & 255)}`;

/** ADT files: most Users set small thresholds; every tenth never submits; two send bad files. */
function files(): AdtFileSubmission[] {
  const out: AdtFileSubmission[] = [];
  const file = (u: number, n: number, text: string): void =>
    void out.push({
      submissionId: `f-${u}-${n}`,
      userId: userId(u),
      fileName: `adt-${u}-${n}.csv`,
      submittedAt: T0 - 60_000 + n,
      content: Buffer.from(text),
    });
  for (let u = 0; u < USERS; u++) {
    if (u % 10 === 0) continue;
    const rows = [
      `6.23,60,${4 + (u % 7)},${2 + (u % 5)}`,
      `6.23,1440,${30 + (u % 13)},25`,
      `7.1,30,${2 + (u % 3)},1`,
    ];
    file(u, 1, `SequenceNumber,${u}\n${HEADER}\n${rows.join("\n")}\n`);
  }
  file(1, 2, `SequenceNumber,1\n${HEADER}\n6.23,1440,999,999\n`); // replayed Sequence Number
  file(2, 2, `SequenceNumber,99\n${HEADER}\n6.23,1440,"999,999\n`); // bad quoting
  return out;
}

/** Requests over two hours (windows slide), a quarter without thresholds, every 97th sent twice. */
function requests(): ServiceRequestEnvelope[] {
  const out: ServiceRequestEnvelope[] = [];
  const srvs = ["6.23", "6.23", "7.1", "4.1.1"];
  for (let i = 0; i < REQUESTS; i++) {
    const u = (i * 37) % USERS;
    const r: ServiceRequestEnvelope = {
      requestId: `${userId(u)}:00-DB-12-34-56-78-90-A0:${i}`,
      userId: userId(u),
      srv: srvs[i % srvs.length] as string,
      receivedAt: T0 + i * 1200,
      deviceId: "00-DB-12-34-56-78-90-A0",
      raw: Buffer.from(`<sr:Request n="${i}"/>`),
    };
    out.push(r);
    if (i % 97 === 0) out.push(r);
  }
  return out;
}

/** Exit instructions for the first quarantined requests (release or delete in turn) and bogus ones. */
function exits(quarantined: readonly ServiceRequestEnvelope[]): ExitQuarantineInstruction[] {
  const out: ExitQuarantineInstruction[] = quarantined.slice(0, 40).map((q, k) => ({
    instructionId: `x-${k}`,
    userId: q.userId,
    quarantineEventRef: quarantineRefFor(q.requestId),
    action: k % 2 === 0 ? "RELEASE" : "DELETE",
    issuedAt: T0 + 3 * 3_600_000 + k,
  }));
  for (let k = 0; k < 3; k++) {
    out.push({
      instructionId: `bogus-${k}`,
      userId: userId(k + 1),
      quarantineEventRef: String(k),
      action: "RELEASE",
      issuedAt: T0 + 4 * 3_600_000,
    });
  }
  return out;
}

type Stores = Record<string, unknown>;
/** Store entries as the dump prints them (JSON), so both sides compare alike. */
const normalise = (stores: Stores): Stores => JSON.parse(JSON.stringify(stores)) as Stores;

interface Reference {
  exits: ExitQuarantineInstruction[];
  stores: Stores;
  passed: string[];
  quarantined: string[];
  events: string[];
  adtResults: number;
}

async function reference(input: ReturnType<typeof inputs>): Promise<Reference> {
  const serdes = anomalyAvroSerdes(new InMemorySchemaRegistry());
  const t = anomalyTopics();
  const d = await InProcessDriver.create(buildDspAnomalyTopology({ serdes, config: anomalyConfig() }), {
    applicationId: "reference",
    partitions: PARTITIONS,
  });
  await d.pipeInput(
    t.adtFiles,
    input.files.map((f) => ({ key: f.userId, value: f, timestamp: f.submittedAt })),
    serdes.adtFile,
  );
  await d.pipeInput(
    t.requests,
    input.requests.map((r) => ({ key: r.userId, value: r, timestamp: r.receivedAt })),
    serdes.request,
  );
  const quarantinedBeforeExits = (await d.readOutput(t.quarantined, serdes.quarantined)).map((r) => r.value);
  const x = exits(quarantinedBeforeExits);
  await d.pipeInput(
    t.exitQuarantine,
    x.map((i) => ({ key: i.userId, value: i, timestamp: i.issuedAt })),
    serdes.exit,
  );
  const stores: Stores = {};
  for (const name of Object.values(DSP_ANOMALY_STORES)) stores[name] = d.storeEntries(name);
  const ref: Reference = {
    exits: x,
    stores: normalise(stores),
    passed: (await d.readOutput(t.passed, serdes.request)).map((r) => r.value.requestId).sort(),
    quarantined: quarantinedBeforeExits.map((q) => q.requestId).sort(),
    events: (await d.readOutput(t.events, serdes.event)).map((r) => r.value.eventId).sort(),
    adtResults: (await d.readOutput(t.adtResults, serdes.adtResult)).length,
  };
  await d.close();
  return ref;
}

const inputs = () => ({ files: files(), requests: requests() });

interface Run {
  child: ChildProcess;
  committed: number;
  restores: number;
  restoredRecords: number;
  dumps: Stores[];
  exited: Promise<void>;
  waitFor(pred: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

function startApp(args: string[]): Run {
  const child = trackChild(
    spawn(process.execPath, ["--import", "tsx", APP, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
    }),
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const run: Run = {
    child,
    committed: 0,
    restores: 0,
    restoredRecords: 0,
    dumps: [],
    exited: new Promise((r) => child.on("exit", () => r())),
    async waitFor(pred, what, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      while (!pred()) {
        if (Date.now() > until)
          throw new Error(`timed out waiting for ${what} (committed ${run.committed}): ${stderr}`);
        if (child.exitCode !== null)
          throw new Error(`app exited (${child.exitCode}) while waiting for ${what}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const e = JSON.parse(line) as { event: string; records?: number; stores?: Stores };
    if (e.event === "commit") run.committed += e.records ?? 0;
    if (e.event === "restore") {
      run.restores++;
      run.restoredRecords += e.records ?? 0;
    }
    if (e.event === "dump" && e.stores) run.dumps.push(e.stores);
  });
  return run;
}

async function dump(run: Run): Promise<Stores> {
  const n = run.dumps.length;
  run.child.stdin?.write("dump\n");
  await run.waitFor(() => run.dumps.length > n, "a store dump", 10_000);
  return run.dumps[n] as Stores;
}

async function kill(run: Run): Promise<number> {
  run.child.kill("SIGKILL");
  await run.exited;
  return run.committed;
}

describe("DSP anomaly detection: exact state across SIGKILL on the real broker", () => {
  const services = testServices();
  const brokers = services.kafkaBrokers;
  const kafka = new Kafka({ clientId: "anomaly-kill", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const prefix = uniquePrefix("anomkill");
  const topics = anomalyTopics(prefix);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-anomaly-kill-"));
  const appId = `${prefix}app`;
  const registry = new ConfluentSchemaRegistryClient({ host: services.registryUrl });
  const serdes: AnomalySerdes = anomalyAvroSerdes(registry);

  beforeAll(async () => {
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: Object.values(topics).map((topic) => ({
        topic,
        numPartitions: PARTITIONS,
        replicationFactor: 1,
      })),
    });
  });

  afterAll(async () => {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    await admin.deleteTopics({ topics: mine }).catch(() => {});
    await admin.deleteGroups([appId]).catch(() => {});
    await admin.disconnect();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  async function produce<V>(
    topic: string,
    records: Array<{ key: string; value: V; timestamp: number }>,
    serde: Serde<V>,
  ) {
    await serde.prepare?.(topic);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < records.length; i += 1000) {
      await producer.send({
        topic,
        messages: records.slice(i, i + 1000).map((r) => ({
          key: r.key,
          value: serde.serialize(topic, r.value),
          timestamp: String(r.timestamp),
          partition: partitionForKey(Buffer.from(r.key), PARTITIONS),
        })),
      });
    }
    await producer.disconnect();
  }

  /**
   * Waits until the group's committed offsets reach the end of the inputs (the broker's record, which
   * a kill cannot make the test miscount); on a time-out the error shows where each partition stands.
   */
  async function consumed(run: Run, inputs: string[], what: string): Promise<void> {
    let done = false;
    let checking = false;
    const poll = setInterval(() => {
      if (checking || done) return;
      checking = true;
      consumedToEnd(admin, appId, inputs)
        .then((d) => void (done = d))
        .catch(() => {})
        .finally(() => void (checking = false));
    }, 250);
    try {
      await run.waitFor(() => done, what, 120_000);
    } catch (err) {
      const report = await progressReport(kafka, appId, inputs, [topics.passed, topics.quarantined]);
      throw new Error(`${(err as Error).message}\n${report}`);
    } finally {
      clearInterval(poll);
    }
  }

  test("counts, ADT tables, request ids and quarantine identical to the reference after kills and restores", async () => {
    const input = inputs();
    const ref = await reference(input);
    const started = Date.now();
    expect(ref.quarantined.length).toBeGreaterThan(100);
    expect(ref.passed.length).toBeGreaterThan(1000);
    const args = [brokers.join(","), appId, prefix, stateDir, services.registryUrl];

    let total = 0;
    let run = startApp(args);
    await produce(
      topics.adtFiles,
      input.files.map((f) => ({ key: f.userId, value: f, timestamp: f.submittedAt })),
      serdes.adtFile,
    );
    await run.waitFor(() => run.committed >= input.files.length, "the ADT files");
    await produce(
      topics.requests,
      input.requests.map((r) => ({ key: r.userId, value: r, timestamp: r.receivedAt })),
      serdes.request,
    );
    const inputCount = input.files.length + input.requests.length;
    await run.waitFor(
      () => run.committed >= input.files.length + input.requests.length / 3,
      "a third of the requests",
    );
    total += await kill(run);
    expect(total).toBeLessThan(inputCount); // killed mid-stream

    run = startApp(args);
    await consumed(run, [topics.adtFiles, topics.requests], "every request after a kill");
    expect(run.restoredRecords).toBeGreaterThan(0);
    await produce(
      topics.exitQuarantine,
      ref.exits.map((x) => ({ key: x.userId, value: x, timestamp: x.issuedAt })),
      serdes.exit,
    );
    await consumed(run, [topics.adtFiles, topics.requests, topics.exitQuarantine], "the exit instructions");

    // Outputs: everything exactly once (read committed).
    const passed = await readTopic(kafka, topics.passed, serdes.request, ref.passed.length, {
      settleMs: 1000,
    });
    const quarantined = await readTopic(
      kafka,
      topics.quarantined,
      serdes.quarantined,
      ref.quarantined.length,
      { settleMs: 0 },
    );
    const events = await readTopic(kafka, topics.events, serdes.event, ref.events.length, { settleMs: 0 });
    expect(duplicateIds(quarantined.map((r) => r.value.requestId))).toEqual([]);
    expect(passed.map((r) => r.value.requestId).sort()).toEqual(ref.passed);
    expect(quarantined.map((r) => r.value.requestId).sort()).toEqual(ref.quarantined);
    expect(events.map((r) => r.value.eventId).sort()).toEqual(ref.events);

    // State after processing, then after a SIGKILL and a restore from the changelogs.
    expect(normalise(await dump(run))).toEqual(ref.stores);
    total += await kill(run);
    run = startApp(args);
    await run.waitFor(
      () => run.restores >= Object.keys(DSP_ANOMALY_STORES).length * PARTITIONS,
      "the restore",
    );
    let restored = normalise(await dump(run));
    const until = Date.now() + 30_000;
    while (JSON.stringify(restored) !== JSON.stringify(ref.stores) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 300));
      restored = normalise(await dump(run));
    }
    expect(restored).toEqual(ref.stores);

    // The CLI's Kafka paths: status from the changelogs, submit with its result.
    const config = loadConfig(
      {},
      { kafkaBrokers: brokers.join(","), applicationId: appId, registryUrl: services.registryUrl },
    );
    const user = userId(7);
    const state = await readAdtStateOnKafka(config, user, { idleMs: 1000 });
    const refTables = new Map(ref.stores[DSP_ANOMALY_STORES.adtTables] as Array<[string, unknown]>);
    expect(normalise({ h: state.history })).toEqual({ h: refTables.get(user) });
    const refWindows = (ref.stores[DSP_ANOMALY_STORES.windows] as Array<[string, unknown]>).filter(([k]) =>
      k.startsWith(`${user}|`),
    );
    expect(normalise({ w: [...state.windows].map(([srv, w]) => [`${user}|${srv}`, w]) })).toEqual({
      w: refWindows,
    });
    const result = await submitAdtFileOnKafka(
      config,
      {
        submissionId: "cli-1",
        userId: user,
        fileName: "cli.csv",
        submittedAt: T0 + 5 * 3_600_000,
        content: Buffer.from(`SequenceNumber,1000\n${HEADER}\n6.23,1440,5,4\n`),
      },
      { timeoutMs: 30_000, topicPrefix: prefix },
    );
    expect(result).toMatchObject({ outcome: "ACCEPTED", sequenceNumber: 1000, submissionId: "cli-1" });
    run.child.kill("SIGTERM");
    await run.exited;
    process.stdout.write(
      `anomaly kill test: Kafka part took ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  });
});
