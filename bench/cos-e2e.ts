/**
 * SRV 6.23 end to end through the real broker: signed supplier requests in on duis.requests, the
 * DCC pipeline (`ecos run --kafka`: dsp-validate, ECoS and TCoS Parties, dispatch, response tracker,
 * N65 alerts — one process, a Kafka driver per stage), the device and S1SP simulators
 * (`ecos sim`, its own process, with WAN latency), and the final Service Responses out on
 * duis.responses. Offered at a fixed rate (default 200 requests/s for 60 s) or all at once
 * (`--rate max`).
 *
 *   npx tsx bench/cos-e2e.ts [--rate 200|max] [--seconds 60] [--requests N] [knobs, see bench/README.md]
 *
 * Per request it measures, from the records and from when this process saw them (read_committed):
 *   received   the record timestamp of the request (= when it was produced, the DSP's time of receipt)
 *   dispatched DeviceCommand / S1spRequest `dispatchedAt`
 *   answered   DeviceResponse `answeredAt` (the simulated device's or S1SP's answer)
 *   sent       when the final Service Response became visible on duis.responses
 * and reports the DCC-internal time (sent − received) − (answered − dispatched), p50/p95/p99, the
 * end-to-end time against the 35 s / 21 s Target Response Times, and the throughput of final
 * responses. One JSON line per figure (bench/baseline.ts), compared with bench/cos-e2e.baseline.json.
 *
 * The helpers (traffic, topics, the two child processes) are shared with
 * test/integration/cos-e2e-kafka.test.ts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { Kafka, logLevel, type Admin } from "kafkajs";
import type { AdtFileSubmission } from "../processors/anomaly/records";
import { ANOMALY_TOPICS } from "../processors/anomaly/topology";
import { cosTopics } from "../processors/cos/records";
import { dispatchTopics } from "../processors/dispatch/topology";
import { dspTopics } from "../processors/dsp/topology";
import { cosPartyTopics } from "../processors/ecos-party/topology";
import { partitionForKey } from "../processors/runtime/partitioner";
import type { Serde } from "../processors/runtime/serde";
import { trackerTopics } from "../processors/tracker/topology";
import type { DeviceSnapshot, SmetsGeneration, SupplierRegistration } from "../schemas/event-records";
import { castSrv623Xml, type Srv623Cast } from "../workers/testing/test-pki";
import { parseXml } from "../workers/xml/parser";
import { signDuisDocument } from "../workers/xmldsig/duis-signature";
import { reportFigures, type Figures } from "./baseline";
import { generateDspLoad } from "./dsp-load";
import { pidFromFile, startCpuWindow } from "./proc-cpu";

export const REPO_ROOT = path.resolve(__dirname, "..");
export const ECOS_BIN = path.join(REPO_ROOT, "deploy", "cli", "bin.cjs");
/** DUIS cancellation sentinel for ExecutionDateTime. */
export const CANCELLATION_DATE_TIME = "3000-12-31T00:00:00Z";
/** The DSP's acknowledgement (passed its checks, sent on): not a final response. */
export const ACKNOWLEDGEMENT_CODE = "I99";

// ---------------------------------------------------------------------------------------------
// Traffic

export type RequestKind = "immediate" | "future-dated" | "cancellation" | "replay" | `invalid:${string}`;

export interface E2eRequest {
  readonly requestId: string;
  readonly deviceId: string;
  readonly bytes: Buffer;
  readonly kind: RequestKind;
  /** The inventory's generation of the device (null: not in the inventory). */
  readonly smets: SmetsGeneration | null;
  /** True when dsp-validate is expected to pass it on (and acknowledge it with I99). */
  readonly dspAccepts: boolean;
  /** For a cancellation: the future-dated request it cancels. */
  readonly cancels?: string;
}

export interface E2eTraffic {
  readonly cast: Srv623Cast;
  readonly devices: DeviceSnapshot[];
  readonly registrations: SupplierRegistration[];
  readonly adt: AdtFileSubmission;
  readonly requests: E2eRequest[];
}

export interface E2eTrafficOptions {
  readonly requests: number;
  readonly devices: number;
  readonly seed: string;
  /** Share of invalid requests (the load generator's kinds; default 0.1). */
  readonly invalidShare?: number;
  /** Future-dated requests (to SMETS2 devices no other request targets) and cancellations of some of them. */
  readonly futureDated?: number;
  readonly cancellations?: number;
  /** Execution time of the future-dated requests, epoch ms (whole seconds). */
  readonly executionAt?: number;
  /** Keep the load generator's replayed RequestIDs (default false: see docs/end-to-end.md). */
  readonly replays?: boolean;
}

/**
 * Signed requests from the load generator's test PKI (bench/dsp-load.ts: SMETS2 ECoS, SMETS2 TCoS,
 * SMETS1 and invalid requests) plus future-dated requests and cancellations, in sending order. The
 * future-dated requests are spread over the first half, each cancellation comes a quarter of the run
 * after the request it cancels.
 */
export function e2eTraffic(o: E2eTrafficOptions): E2eTraffic {
  const futureCount = o.futureDated ?? 0;
  const cancelCount = Math.min(o.cancellations ?? 0, futureCount);
  const load = generateDspLoad({
    requests: o.requests - futureCount - cancelCount,
    devices: o.devices,
    seed: o.seed,
    invalidShare: o.invalidShare ?? 0.1,
  });
  const cast = load.cast;
  const generation = new Map(load.devices.map((d) => [d.deviceId, d.smetsGeneration]));
  const base = load.requests.filter((r) => o.replays === true || r.expected !== "replay");
  const targeted = new Set(base.map((r) => r.deviceId));
  // Free SMETS2 devices registered to the supplier (every 7th MPxN is another supplier's).
  const free = load.devices.filter(
    (d, i) => d.smetsGeneration === "SMETS2" && i % 7 !== 6 && !targeted.has(d.deviceId),
  );
  if (free.length < futureCount) throw new Error(`only ${free.length} free devices for ${futureCount}`);
  const key = cast.supplierXmlSign.signingKey();
  const sign = (deviceId: string, counter: number, executionDateTime: string): Buffer => {
    const xml = castSrv623Xml(cast, deviceId, counter, {
      importMpxn: load.devices.find((d) => d.deviceId === deviceId)?.importMpxn ?? "",
      executionDateTime,
    });
    const bytes = Buffer.from(xml, "utf8");
    return signDuisDocument(bytes, parseXml(bytes), key);
  };
  const slotted: Array<{ slot: number; r: E2eRequest }> = base.map((r, i) => ({
    slot: i,
    r: {
      requestId: r.requestId,
      deviceId: r.deviceId,
      bytes: r.bytes,
      kind:
        r.expected === "accepted"
          ? "immediate"
          : r.expected === "replay"
            ? "replay"
            : (`invalid:${r.expected}` as const),
      smets: generation.get(r.deviceId) ?? null,
      dspAccepts: r.expected === "accepted",
    },
  }));
  const executionAt = o.executionAt ?? Math.ceil((Date.now() + 120_000) / 1000) * 1000;
  const at = new Date(executionAt).toISOString().replace(".000Z", "Z");
  const span = Math.max(1, base.length);
  for (let k = 0; k < futureCount; k++) {
    const d = free[k]!;
    const requestId = `${cast.supplierId}:${d.deviceId}:${7_000_000 + k}`;
    const slot = ((k + 0.5) * span) / (2 * futureCount);
    slotted.push({
      slot,
      r: {
        requestId,
        deviceId: d.deviceId,
        bytes: sign(d.deviceId, 7_000_000 + k, at),
        kind: "future-dated",
        smets: "SMETS2",
        dspAccepts: true,
      },
    });
    if (k < cancelCount)
      slotted.push({
        slot: slot + span / 4,
        r: {
          requestId: `${cast.supplierId}:${d.deviceId}:${8_000_000 + k}`,
          deviceId: d.deviceId,
          bytes: sign(d.deviceId, 8_000_000 + k, CANCELLATION_DATE_TIME),
          kind: "cancellation",
          smets: "SMETS2",
          dspAccepts: true,
          cancels: requestId,
        },
      });
  }
  slotted.sort((a, b) => a.slot - b.slot);
  return {
    cast,
    devices: load.devices,
    registrations: load.registrations,
    adt: adtSubmission(cast.supplierId, Date.now() - 3_600_000),
    requests: slotted.map((s) => s.r),
  };
}

/** An ADT file high enough that neither the CoS Party nor DSP anomaly detection stops anything. */
export function adtSubmission(userId: string, submittedAt: number): AdtFileSubmission {
  const content = [
    "SequenceNumber,1",
    "SRV,TimePeriodApplicable,ADT,WarningThreshold",
    "6.23,1440,10000000,10000000",
  ];
  return {
    submissionId: `cos-e2e-${randomBytes(4).toString("hex")}`,
    userId,
    fileName: "cos-e2e-adt.csv",
    submittedAt,
    content: Buffer.from(`${content.join("\n")}\n`, "utf8"),
  };
}

// ---------------------------------------------------------------------------------------------
// Topics and reference data

/** Every external topic the five stages and the simulators use, under `prefix`. */
export function e2eTopics(prefix: string): string[] {
  const names = (o: object): string[] => Object.values(o) as string[];
  const all = new Set<string>([
    ...names(dspTopics(prefix)),
    ...names(cosPartyTopics("ECOS", prefix)),
    ...names(cosPartyTopics("TCOS", prefix)),
    ...names(dispatchTopics(prefix)),
    ...names(trackerTopics(prefix)),
    ...names(cosTopics(prefix)),
    prefix + ANOMALY_TOPICS.adtResults,
    `${prefix}dead-letters`,
  ]);
  return [...all];
}

/** Produces keyed values on Kafka's murmur2 partitions (of `partitions`) with the given timestamps. */
export async function produceValues<V>(
  kafka: Kafka,
  topic: string,
  records: ReadonlyArray<{ key: string; value: V; timestamp: number }>,
  serde: Serde<V>,
  partitions = 3,
): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await serde.prepare?.(topic);
    for (let i = 0; i < records.length; i += 500)
      await producer.send({
        topic,
        messages: records.slice(i, i + 500).map((r) => ({
          key: r.key,
          value: serde.serialize(topic, r.value),
          timestamp: String(r.timestamp),
          partition: partitionForKey(Buffer.from(r.key), partitions),
        })),
      });
  } finally {
    await producer.disconnect();
  }
}

/**
 * Waits until each consumer group has committed every record of its topics (the reference tables
 * are consumed before requests are sent: the runtime does not order a task's inputs across topics).
 */
export async function waitForGroups(
  admin: Admin,
  want: ReadonlyArray<{ group: string; topics: string[] }>,
  timeoutMs: number,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let behind: string[] = [];
  while (Date.now() < until) {
    behind = [];
    for (const w of want) {
      for (const t of await admin.fetchOffsets({ groupId: w.group, topics: w.topics })) {
        const ends = await admin.fetchTopicOffsets(t.topic);
        for (const e of ends) {
          const c = t.partitions.find((p) => p.partition === e.partition)?.offset ?? "-1";
          if (BigInt(e.high) > 0n && BigInt(c) < BigInt(e.high))
            behind.push(`${w.group} ${t.topic} p${e.partition} ${c}/${e.high}`);
        }
      }
    }
    if (behind.length === 0) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`consumer groups behind after ${timeoutMs} ms: ${behind.join("; ")}`);
}

// ---------------------------------------------------------------------------------------------
// The two child processes

export interface ChildHandle {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

export interface PipelineAppHandle extends ChildHandle {
  /** Finals the tracker reported (processed, not necessarily committed). */
  finals(): number;
  started(): boolean;
  /** Records committed per stage. */
  committed(stage: string): number;
  /** CPU time (user + system) of the whole process, from its `stopped` event (null before). */
  cpuMs(): number | null;
  /** Transactions committed by every stage (one `commit` event each). */
  transactions(): number;
  /** Per stage, the time of each transaction (start to the commit's answer), in ms. */
  transactionMs(): ReadonlyMap<string, readonly number[]>;
  /** The pipeline's event-loop delay (p99, max; ms) from its `stopped` event (null before). */
  eventLoopDelay(): { p99Ms: number; maxMs: number } | null;
  /** Drivers restarted during start-up (`start-retry` events: stage, code, message). */
  startRetries(): string[];
}

function capture(child: ChildProcess, keepStdout: boolean): { out: () => string; err: () => string } {
  let out = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 400_000) err = err.slice(-200_000);
  });
  if (keepStdout) child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  return { out: () => out, err: () => err };
}

/**
 * Extra Node.js flags for the pipeline app, from ECOS_PIPELINE_NODE_ARGS (space-separated), e.g.
 * `--cpu-prof --cpu-prof-dir=.local/prof` to profile the DCC side of a run.
 */
function pipelineNodeArgs(): string[] {
  return (process.env["ECOS_PIPELINE_NODE_ARGS"] ?? "").split(/\s+/).filter((a) => a.length > 0);
}

/** How a test or bench starts `ecos run --kafka` (the DCC side of the 6.23 path). */
export interface PipelineAppConfig {
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  readonly topicPrefix: string;
  /** Stage application ids are `<applicationId>-<stage>` (kafkaStageAppIds). */
  readonly applicationId: string;
  readonly stateDir: string;
  /** Seed of the test PKI (the simulators' `--seed`). */
  readonly seed: string;
  readonly crypto?: "inline" | "pool";
  /** The tracker's device time-out for both generations. */
  readonly deviceTimeoutMs?: number;
  /** Comma-separated stages (default all). */
  readonly stages?: string;
  /** More `ecos run` flags, e.g. ["--users", file, "--ecos-go-live", time]. */
  readonly extraArgs?: readonly string[];
}

/** Starts `ecos run --kafka … --events` as an operator would (deploy/cli/bin.cjs). */
export function startPipelineApp(
  config: PipelineAppConfig,
  track: <C extends ChildProcess>(c: C) => C = (c) => c,
): PipelineAppHandle {
  const args = [
    ECOS_BIN,
    "run",
    ...["--kafka", config.brokers.join(","), "--registry", config.registryUrl],
    ...["--application-id", config.applicationId, "--topic-prefix", config.topicPrefix],
    ...["--seed", config.seed, "--crypto", config.crypto ?? "pool", "--stages", config.stages ?? "all"],
    ...(config.deviceTimeoutMs !== undefined ? ["--device-timeout-ms", String(config.deviceTimeoutMs)] : []),
    ...(config.extraArgs ?? []),
    "--events",
  ];
  const child = track(
    spawn(process.execPath, [...pipelineNodeArgs(), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: REPO_ROOT,
      env: { ...process.env, ECOS_STATE_DIR: config.stateDir },
    }),
  );
  const io = capture(child, false);
  let finals = 0;
  let started = false;
  let cpuMs: number | null = null;
  let transactions = 0;
  const committed = new Map<string, number>();
  const transactionMs = new Map<string, number[]>();
  let loopDelay: { p99Ms: number; maxMs: number } | null = null;
  const retries: string[] = [];
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    let e: {
      event?: string;
      stage?: string;
      records?: number;
      code?: string;
      message?: string;
      cpuUserMs?: number;
      cpuSystemMs?: number;
      transactionMs?: number;
      eventLoopDelayP99Ms?: number;
      eventLoopDelayMaxMs?: number;
    };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      return;
    }
    if (e.event === "final") finals++;
    else if (e.event === "started") started = true;
    else if (e.event === "stopped") {
      cpuMs = (e.cpuUserMs ?? 0) + (e.cpuSystemMs ?? 0);
      if (e.eventLoopDelayP99Ms !== undefined)
        loopDelay = { p99Ms: e.eventLoopDelayP99Ms, maxMs: e.eventLoopDelayMaxMs ?? NaN };
    } else if (e.event === "start-retry") retries.push(`${e.stage}: ${e.code} ${e.message}`);
    else if (e.event === "commit" && e.stage) {
      committed.set(e.stage, (committed.get(e.stage) ?? 0) + (e.records ?? 0));
      transactions++;
      if (e.transactionMs !== undefined) {
        let list = transactionMs.get(e.stage);
        if (!list) transactionMs.set(e.stage, (list = []));
        list.push(e.transactionMs);
      }
    }
  });
  return {
    child,
    exited: new Promise((r) => child.on("exit", (code) => r(code))),
    stdout: () => "",
    stderr: io.err,
    finals: () => finals,
    started: () => started,
    committed: (stage) => committed.get(stage) ?? 0,
    startRetries: () => retries,
    cpuMs: () => cpuMs,
    transactions: () => transactions,
    transactionMs: () => transactionMs,
    eventLoopDelay: () => loopDelay,
  };
}

export interface SimOptions {
  readonly brokers: string[];
  readonly registryUrl: string;
  readonly prefix: string;
  readonly group: string;
  readonly devices: number;
  readonly seed: string;
  readonly stateFile: string;
  /** Extra flags, e.g. ["--perfect", "--latency", "fixed:300"]. */
  readonly flags?: readonly string[];
}

/** Starts `ecos sim` as a user would (deploy/cli/bin.cjs) and waits until its consumer joined. */
export async function startSim(
  o: SimOptions,
  track: <C extends ChildProcess>(c: C) => C = (c) => c,
): Promise<ChildHandle> {
  const child = track(
    spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, "deploy", "cli", "bin.cjs"),
        "sim",
        ...["--brokers", o.brokers.join(","), "--registry", o.registryUrl],
        ...["--devices", String(o.devices), "--seed", o.seed, "--topic-prefix", o.prefix],
        ...["--group", o.group, "--state", o.stateFile, "--from-beginning", "--summary-json"],
        ...(o.flags ?? []),
      ],
      { stdio: ["ignore", "pipe", "pipe"], cwd: REPO_ROOT },
    ),
  );
  const io = capture(child, true);
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const until = Date.now() + 90_000;
  while (!io.err().includes("sim ready")) {
    if (child.exitCode !== null || Date.now() > until) throw new Error(`ecos sim did not start: ${io.err()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, exited, stdout: io.out, stderr: io.err };
}

// ---------------------------------------------------------------------------------------------
// Statistics

/** Per stage: transaction time p50/p99 (ms), from the start of a transaction to its commit's answer. */
export function transactionFigures(byStage: ReadonlyMap<string, readonly number[]>): Figures {
  const out: Figures = {};
  for (const [stage, list] of [...byStage].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const sorted = [...list].sort((a, b) => a - b);
    const name = stage.replace(/[^a-z0-9]+/gi, "_").toLowerCase();
    out[`txn_${name}_p50_ms`] = percentile(sorted, 50);
    out[`txn_${name}_p99_ms`] = percentile(sorted, 99);
  }
  return out;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

// ---------------------------------------------------------------------------------------------
// The benchmark

interface BenchArgs {
  rate: number | "max";
  seconds: number;
  requests: number | undefined;
  devices: number;
  seed: string;
  invalidShare: number;
  latency: string;
  s1spLatency: string;
  perfect: boolean;
  crypto: "inline" | "pool";
  brokers: string[];
  registryUrl: string;
  drainSeconds: number;
  baseline: string;
  update: boolean;
  keepTopics: boolean;
  partitions: number;
}

function parseArgs(argv: string[]): BenchArgs {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const rate = get("rate") ?? "200";
  return {
    rate: rate === "max" ? "max" : Number(rate),
    seconds: Number(get("seconds") ?? 60),
    requests: get("requests") === undefined ? undefined : Number(get("requests")),
    devices: Number(get("devices") ?? 10_000),
    seed: get("seed") ?? "ecos-stream-test-pki",
    invalidShare: Number(get("invalid-share") ?? 0.05),
    latency: get("latency") ?? "lognormal:p50=4000,p99=20000",
    s1spLatency: get("s1sp-latency") ?? "lognormal:p50=3000,p99=12000",
    perfect: argv.includes("--perfect"),
    crypto: get("crypto") === "inline" ? "inline" : "pool",
    brokers: (get("brokers") ?? process.env["ECOS_KAFKA_BROKERS"] ?? "127.0.0.1:19092").split(","),
    registryUrl:
      get("registry") ?? process.env["ECOS_REGISTRY_URL"] ?? "http://127.0.0.1:18081/apis/ccompat/v7",
    drainSeconds: Number(get("drain-seconds") ?? 45),
    baseline: get("baseline") ?? path.join(__dirname, "cos-e2e.baseline.json"),
    update: argv.includes("--update-baseline"),
    keepTopics: argv.includes("--keep-topics"),
    partitions: Number(get("partitions") ?? 3),
  };
}

const log = (msg: string): void => void process.stderr.write(`cos-e2e: ${msg}\n`);

interface Observed {
  received: number;
  smets: SmetsGeneration | null;
  dispatched?: number;
  dispatchSeen?: number;
  answered?: number;
  sent?: number;
  code?: string;
  finals: number;
  /** Offsets from receipt of each stage, from the tracker's RESPONSE_SENT detail. */
  stages?: Record<string, number>;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const { cosAvroSerdes } = await import("../processors/cos/serdes");
  const { dspAvroSerdes } = await import("../processors/dsp/serdes");
  const { anomalyAvroSerdes } = await import("../processors/anomaly/serdes");
  const { ConfluentSchemaRegistryClient } = await import("../schemas/registry");
  const registry = new ConfluentSchemaRegistryClient({ host: a.registryUrl });
  const cos = cosAvroSerdes(registry);
  const dsp = dspAvroSerdes(registry);
  const anomaly = anomalyAvroSerdes(registry);

  const total = a.requests ?? (a.rate === "max" ? 6000 : Math.round(a.rate * a.seconds));
  log(
    `signing ${total} requests (${a.rate === "max" ? "all at once" : `${a.rate}/s`}) for ${a.devices} devices`,
  );
  const traffic = e2eTraffic({
    requests: total,
    devices: a.devices,
    seed: a.seed,
    invalidShare: a.invalidShare,
  });
  // The load generator's replayed RequestIDs are left out: what remains is offered.
  const offered = traffic.requests.length;

  const kafka = new Kafka({ clientId: "cos-e2e-bench", brokers: a.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const prefix = `b-cos-e2e-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}.`;
  const applicationId = `${prefix}app`;
  const appIdPrefix = `${applicationId}-`;
  const t = { ...dspTopics(prefix), ...cosTopics(prefix), adtFiles: prefix + ANOMALY_TOPICS.adtFiles };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-cos-e2e-"));
  const children: ChildProcess[] = [];
  const track = <C extends ChildProcess>(c: C): C => (children.push(c), c);
  const cleanup = async (): Promise<void> => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    if (!a.keepTopics) {
      const mine = (await admin.listTopics()).filter((x) => x.startsWith(prefix));
      if (mine.length) await admin.deleteTopics({ topics: mine }).catch(() => {});
    }
    await admin.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: e2eTopics(prefix).map((topic) => ({
        topic,
        numPartitions: a.partitions,
        replicationFactor: 1,
      })),
    });
    await produceValues(
      kafka,
      t.inventory,
      traffic.devices.map((d) => ({ key: d.deviceId, value: d, timestamp: 1 })),
      dsp.inventory,
      a.partitions,
    );
    await produceValues(
      kafka,
      t.registration,
      traffic.registrations.map((r) => ({ key: r.mpxn, value: r, timestamp: 1 })),
      dsp.registration,
      a.partitions,
    );
    await produceValues(
      kafka,
      t.adtFiles,
      [{ key: traffic.adt.userId, value: traffic.adt, timestamp: traffic.adt.submittedAt }],
      anomaly.adtFile,
      a.partitions,
    );
    const sim = await startSim(
      {
        brokers: a.brokers,
        registryUrl: a.registryUrl,
        prefix,
        group: `${prefix}sim`,
        devices: a.devices,
        seed: a.seed,
        stateFile: path.join(dir, "sim-state.json"),
        flags: ["--latency", a.latency, "--s1sp-latency", a.s1spLatency, ...(a.perfect ? ["--perfect"] : [])],
      },
      track,
    );
    const app = startPipelineApp(
      {
        brokers: a.brokers,
        registryUrl: a.registryUrl,
        topicPrefix: prefix,
        applicationId,
        stateDir: path.join(dir, "app"),
        seed: a.seed,
        crypto: a.crypto,
        extraArgs: ["--partitions", String(a.partitions)],
      },
      track,
    );
    const ids = {
      dsp: `${appIdPrefix}dsp`,
      ecos: `${appIdPrefix}ecos`,
      tcos: `${appIdPrefix}tcos`,
      dispatch: `${appIdPrefix}dispatch`,
    };
    const startedAt = Date.now();
    while (!app.started()) {
      if (app.child.exitCode !== null) throw new Error(`pipeline app exited: ${app.stderr()}`);
      if (Date.now() - startedAt > 180_000) throw new Error(`pipeline app did not start: ${app.stderr()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitForGroups(
      admin,
      [
        { group: ids.dsp, topics: [t.inventory, t.registration] },
        { group: ids.ecos, topics: [t.inventory, t.adtFiles] },
        { group: ids.tcos, topics: [t.inventory, t.adtFiles] },
        { group: ids.dispatch, topics: [t.adtFiles] },
      ],
      180_000,
    );
    log(`pipeline up in ${Date.now() - startedAt} ms; tables loaded`);

    // The observer: what this process sees committed on the output topics, and when.
    const seen = new Map<string, Observed>();
    const of = (id: string): Observed | undefined => seen.get(id);
    const observer = kafka.consumer({
      groupId: `${prefix}observer`,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
    });
    await observer.connect();
    await observer.subscribe({
      topics: [t.responses, t.stages, t.deviceCommands, t.s1spRequests, t.deviceResponses],
      fromBeginning: true,
    });
    let finals = 0;
    let lastFinalAt = 0;
    let duplicates = 0;
    await observer.run({
      eachBatch: async ({ batch }) => {
        const now = Date.now();
        for (const m of batch.messages) {
          if (!m.value) continue;
          if (batch.topic === t.responses) {
            const r = await dsp.response.deserialize(batch.topic, m.value);
            if (r.responseCode === ACKNOWLEDGEMENT_CODE) continue;
            const o = of(r.requestId);
            if (!o) continue;
            o.finals++;
            if (o.finals > 1) duplicates++;
            else {
              o.sent = now;
              o.code = r.responseCode;
              finals++;
              lastFinalAt = now;
            }
          } else if (batch.topic === t.stages) {
            const e = await dsp.stage.deserialize(batch.topic, m.value);
            const o = e.stage === "RESPONSE_SENT" ? of(e.requestId) : undefined;
            if (o && e.detail) {
              o.stages = {};
              for (const [, stage, ms] of e.detail.matchAll(/([A-Z_]+)\+(\d+)/g))
                o.stages[stage!] = Number(ms);
            }
          } else if (batch.topic === t.deviceCommands) {
            const c = await cos.deviceCommand.deserialize(batch.topic, m.value);
            const o = of(c.requestId);
            if (o && o.dispatched === undefined) [o.dispatched, o.dispatchSeen] = [c.dispatchedAt, now];
          } else if (batch.topic === t.s1spRequests) {
            const c = await cos.s1spRequest.deserialize(batch.topic, m.value);
            const o = of(c.requestId);
            if (o && o.dispatched === undefined) [o.dispatched, o.dispatchSeen] = [c.dispatchedAt, now];
          } else {
            const d = await cos.deviceResponse.deserialize(batch.topic, m.value);
            const o = of(d.requestId);
            if (o && d.kind === "RESPONSE" && o.answered === undefined) o.answered = d.answeredAt;
          }
        }
      },
    });

    // Offer the load.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const cpu0 = process.cpuUsage();
    // The local services' pid files (deploy/local); a broker elsewhere is simply not counted.
    const localDir = process.env["ECOS_LOCAL_DIR"] ?? path.join(REPO_ROOT, ".local");
    const machine = startCpuWindow({
      pipeline: app.child.pid,
      sim: sim.child.pid,
      broker: pidFromFile(path.join(localDir, "kafka", "kafka.pid")),
      registry: pidFromFile(path.join(localDir, "registry", "registry.pid")),
      bench: process.pid,
    });
    const sendStart = Date.now();
    const perTick = a.rate === "max" ? offered : Math.max(1, Math.round(a.rate / 20));
    const tickMs = a.rate === "max" ? 0 : (1000 * perTick) / a.rate;
    let sent = 0;
    let behindMs = 0;
    while (sent < offered) {
      const due =
        a.rate === "max"
          ? offered
          : Math.min(offered, Math.floor(((Date.now() - sendStart) / tickMs + 1) * perTick));
      const batch = traffic.requests.slice(sent, Math.max(sent + 1, due)).slice(0, 150);
      const ts = Date.now();
      for (const r of batch) seen.set(r.requestId, { received: ts, smets: r.smets, finals: 0 });
      await producer.send({
        topic: t.requests,
        messages: batch.map((r) => ({
          key: r.deviceId,
          value: r.bytes,
          timestamp: String(ts),
          partition: partitionForKey(Buffer.from(r.deviceId), a.partitions),
        })),
      });
      sent += batch.length;
      if (a.rate !== "max") {
        const next = sendStart + (sent / perTick) * tickMs;
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        else behindMs = Math.max(behindMs, -wait);
      }
    }
    const sendEnd = Date.now();
    await producer.disconnect();
    log(`offered ${offered} in ${sendEnd - sendStart} ms; waiting for the final responses`);

    // Wait for every request's final response (or until the drain time passes without progress).
    let lastProgress = Date.now();
    let lastCount = -1;
    while (finals < offered) {
      if (finals !== lastCount) [lastCount, lastProgress] = [finals, Date.now()];
      if (Date.now() - lastProgress > a.drainSeconds * 1000) break;
      if (app.child.exitCode !== null) throw new Error(`pipeline app exited: ${app.stderr().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 2000));
    const cpu = process.cpuUsage(cpu0);
    const window = machine.end();
    await observer.disconnect();
    app.child.kill("SIGTERM");
    sim.child.kill("SIGTERM");
    await Promise.all([app.exited, sim.exited]);
    await new Promise((r) => setTimeout(r, 300)); // the last stdout lines (the `stopped` event)

    // A time-out's final response says nothing about the DCC's own time: it is left out of the
    // DCC-internal figures and counted apart.
    const timeoutCodes = new Set(["E21", "GAP-not-dispatched"]);
    const internal: number[] = [];
    const internalStrict: number[] = [];
    const e2e: Record<SmetsGeneration, number[]> = { SMETS1: [], SMETS2: [] };
    let timeouts = 0;
    let answeredFinals = 0;
    let lastAnsweredFinal = sendStart;
    let dispatchedCount = 0;
    let lastDispatch = sendStart;
    for (const o of seen.values()) {
      if (o.dispatchSeen !== undefined) {
        dispatchedCount++;
        lastDispatch = Math.max(lastDispatch, o.dispatchSeen);
      }
      if (o.sent === undefined) continue;
      if (o.smets) e2e[o.smets].push(o.sent - o.received);
      if (timeoutCodes.has(o.code ?? "")) {
        timeouts++;
        continue;
      }
      answeredFinals++;
      lastAnsweredFinal = Math.max(lastAnsweredFinal, o.sent);
      if (o.dispatched !== undefined && o.answered !== undefined && o.dispatchSeen !== undefined) {
        const wan = o.answered - o.dispatched;
        internal.push(o.sent - o.received - wan);
        internalStrict.push(o.sent - o.received - (o.answered - o.dispatchSeen));
      }
    }
    const sort = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
    // Where the DCC's time goes: each stage's time since receipt as the stage's processor saw it
    // (not when its transaction committed), for requests a device or the S1SP answered in time.
    const stageOffsets = new Map<string, number[]>();
    for (const o of seen.values())
      if (o.stages && !timeoutCodes.has(o.code ?? ""))
        for (const [stage, ms] of Object.entries(o.stages))
          stageOffsets.set(stage, [...(stageOffsets.get(stage) ?? []), ms]);
    const stageFigures: Figures = {};
    for (const stage of ["VALIDATED", "COS_PARTY_AUTHORISED", "ANOMALY_CHECKED", "DISPATCHED"]) {
      const xs = sort(stageOffsets.get(stage) ?? []);
      stageFigures[`stage_${stage.toLowerCase()}_p50_ms`] = percentile(xs, 50);
      stageFigures[`stage_${stage.toLowerCase()}_p99_ms`] = percentile(xs, 99);
    }
    const afterAnswer = sort(
      [...seen.values()]
        .filter((o) => o.sent !== undefined && o.answered !== undefined && !timeoutCodes.has(o.code ?? ""))
        .map((o) => o.sent! - o.answered!),
    );
    stageFigures["answered_to_sent_p50_ms"] = percentile(afterAnswer, 50);
    stageFigures["answered_to_sent_p99_ms"] = percentile(afterAnswer, 99);
    const si = sort(internal);
    const ss = sort(internalStrict);
    const s2 = sort(e2e.SMETS2);
    const s1 = sort(e2e.SMETS1);
    const perS = (n: number, until: number): number => Number((n / ((until - sendStart) / 1000)).toFixed(1));
    const variant = a.rate === "max" ? "max" : `rate-${a.rate}`;
    const figures: Figures = {
      offered_per_s: perS(offered, sendEnd),
      final_responses_per_s: perS(finals, lastFinalAt),
      answered_finals_per_s: perS(answeredFinals, lastAnsweredFinal),
      dispatched_per_s: perS(dispatchedCount, lastDispatch),
      requests: offered,
      final_responses: finals,
      duplicate_finals: duplicates,
      timed_out: timeouts,
      dcc_internal_p50_ms: percentile(si, 50),
      dcc_internal_p95_ms: percentile(si, 95),
      dcc_internal_p99_ms: percentile(si, 99),
      dcc_internal_strict_p99_ms: percentile(ss, 99),
      dcc_internal_samples: si.length,
      e2e_smets2_p50_ms: percentile(s2, 50),
      e2e_smets2_p99_ms: percentile(s2, 99),
      e2e_smets2_over_35s: s2.filter((x) => x > 35_000).length,
      e2e_smets1_p50_ms: percentile(s1, 50),
      e2e_smets1_p99_ms: percentile(s1, 99),
      e2e_smets1_over_21s: s1.filter((x) => x > 21_000).length,
      ...stageFigures,
      sender_behind_max_ms: behindMs,
      bench_process_cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(1)),
      // The pipeline process's CPU per offered request, start-up and table loading included.
      pipeline_cpu_ms_per_request:
        app.cpuMs() === null ? NaN : Number(((app.cpuMs() ?? 0) / offered).toFixed(2)),
      // Exactly-once costs a transaction (≥ 5 broker round trips) per task batch: how many per request.
      pipeline_transactions_per_request: Number((app.transactions() / offered).toFixed(2)),
      ...transactionFigures(app.transactionMs()),
      pipeline_event_loop_delay_p99_ms: app.eventLoopDelay()?.p99Ms ?? NaN,
      pipeline_event_loop_delay_max_ms: app.eventLoopDelay()?.maxMs ?? NaN,
      // From the first request offered to the last final response: every process's CPU per request,
      // and how busy the whole machine was (1 = every core busy all the time).
      ...Object.fromEntries(
        Object.entries(window.processMs).map(([name, ms]) => [
          `window_cpu_ms_per_request_${name}`,
          Number((ms / offered).toFixed(2)),
        ]),
      ),
      machine_cpu_busy_share: Number(window.machineBusyShare.toFixed(3)),
    };
    reportFigures("cos-e2e", { [variant]: figures }, { update: a.update, file: a.baseline });
    const p99 = figures["dcc_internal_p99_ms"]!;
    process.stdout.write(
      `${JSON.stringify({
        bench: "cos-e2e",
        summary: true,
        variant,
        target: "DCC-internal p99 < 500 ms at 200 requests/s",
        dcc_internal_p99_ms: p99,
        met: a.rate === 200 ? p99 < 500 && timeouts * 100 < offered : null,
        load_avg_1m: Number(os.loadavg()[0]!.toFixed(2)),
        cpus: os.cpus().length,
        sim_summary: sim.stdout().trim().split("\n").pop() ?? null,
      })}\n`,
    );
  } finally {
    await cleanup();
  }
}

if (require.main === module)
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
