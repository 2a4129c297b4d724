/**
 * `ecos run --kafka <brokers>`: the SRV 6.23 pipeline's stages (processors/pipeline/kafka-pipeline.ts)
 * on a Kafka cluster, until SIGTERM/SIGINT. Requests come from suppliers (`ecos dsp serve`,
 * `ecos dsp submit`, a load generator) on duis.requests; devices and the S1SP answer on
 * device.responses (`ecos sim` against the same cluster); Registration Data and the Smart Metering
 * Inventory are read from their compacted topics (`ecos dsp load`).
 *
 * stderr: start-up, then a progress line every `--progress-every` seconds (records committed per
 * stage, final responses, breaches of the 35 s / 21 s targets) and a summary when stopped.
 * stdout with `--events`: one JSON line per event (stage-started, start-retry, commit, restore,
 * final, started, failed, stopped) for tools and tests.
 * Exit: 0 after a clean stop, 1 when a stage fails (the error code and stage are printed).
 */
import * as path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { EcosError } from "../../processors/runtime/errors";
import { consoleLogger } from "../../processors/runtime/logger";
import {
  KafkaPipeline,
  type KafkaPipelineEvent,
  type KafkaStage,
} from "../../processors/pipeline/kafka-pipeline";
import type { DccUser } from "../../processors/dsp/csv";
import { seededCredentials } from "../sim/credentials";
import type { EcosConfig } from "../config/config";

export interface KafkaRunOptions {
  readonly stages: readonly KafkaStage[];
  readonly topicPrefix: string;
  /** Seed of the test PKI the stages sign and verify with (the simulators' `--seed`). */
  readonly seed: string;
  readonly crypto: "inline" | "pool";
  readonly partitions: number;
  readonly users?: readonly DccUser[];
  readonly ecosGoLiveAt?: number;
  readonly tcosDecommissionAt?: number | null;
  readonly deviceTimeoutMs?: number;
  readonly events: boolean;
  readonly progressEverySeconds: number;
}

const fmt = (n: number): string => n.toLocaleString("en-GB");

/** Upper bounds (ms) of the transaction-time buckets: a fixed histogram, so a long run keeps no samples. */
export const TRANSACTION_MS_BUCKETS = [
  1, 2, 3, 5, 8, 13, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000,
] as const;

/** Transactions of one stage: count, total time and a bucketed distribution. */
export class TransactionTimes {
  count = 0;
  totalMs = 0;
  private readonly buckets = new Array<number>(TRANSACTION_MS_BUCKETS.length + 1).fill(0);

  add(ms: number): void {
    this.count++;
    this.totalMs += ms;
    let i = 0;
    while (i < TRANSACTION_MS_BUCKETS.length && ms > TRANSACTION_MS_BUCKETS[i]!) i++;
    this.buckets[i]!++;
  }

  /** The bucket bound at or under which p % of the transactions took (Infinity past the last bound). */
  percentileAtMost(p: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return TRANSACTION_MS_BUCKETS[i] ?? Infinity;
    }
    return Infinity;
  }
}

/** Counts kept from the pipeline's events for the progress lines and the summary. */
export class KafkaRunTally {
  readonly committed = new Map<KafkaStage, number>();
  readonly transactions = new Map<KafkaStage, TransactionTimes>();
  readonly outputs = new Map<KafkaStage, number>();
  readonly restored = new Map<KafkaStage, number>();
  finals = 0;
  breaches = 0;
  readonly codes = new Map<string, number>();
  private readonly times: number[] = [];

  add(e: KafkaPipelineEvent): void {
    const bump = (m: Map<string, number>, k: string, n: number): void => void m.set(k, (m.get(k) ?? 0) + n);
    if (e.event === "commit") {
      bump(this.committed, e.stage, e.records);
      bump(this.outputs, e.stage, e.outputs);
      let times = this.transactions.get(e.stage);
      if (!times) this.transactions.set(e.stage, (times = new TransactionTimes()));
      times.add(e.transactionMs);
    } else if (e.event === "restore") bump(this.restored, e.stage, e.records);
    else if (e.event === "final") {
      this.finals++;
      if (e.breach) this.breaches++;
      bump(this.codes, e.code, 1);
      this.times.push(e.ms);
    }
  }

  /** Response-time percentile (ms) of the finals seen, or null without any. */
  percentile(p: number): number | null {
    if (this.times.length === 0) return null;
    const sorted = [...this.times].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  }

  progressLine(stages: readonly KafkaStage[]): string {
    const per = stages.map((s) => `${s} ${fmt(this.committed.get(s) ?? 0)}`).join(", ");
    return `records committed: ${per}; final responses ${fmt(this.finals)} (${fmt(this.breaches)} beyond target)`;
  }
}

export async function runKafkaPipeline(config: Readonly<EcosConfig>, o: KafkaRunOptions): Promise<void> {
  if (!config.registryUrl)
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      "ecos run --kafka needs the schema registry the stages share: --registry or ECOS_REGISTRY_URL",
    );
  const say = (obj: object): void => {
    if (o.events) process.stdout.write(`${JSON.stringify(obj)}\n`);
  };
  const err = (line: string): void => void process.stderr.write(`${line}\n`);
  const tally = new KafkaRunTally();
  const credentials = seededCredentials(o.seed);
  const appIdPrefix = `${config.applicationId}-`;
  const pipeline = new KafkaPipeline({
    brokers: config.kafkaBrokers,
    registryUrl: config.registryUrl,
    topicPrefix: o.topicPrefix,
    appIdPrefix,
    stateDir: path.join(config.stateDir, "pipeline"),
    credentials,
    stages: o.stages,
    crypto: o.crypto,
    partitions: o.partitions,
    replicationFactor: config.replicationFactor,
    connectTimeoutMs: config.connectTimeoutMs,
    deadLetterTopic: o.topicPrefix + config.deadLetterTopic,
    ...(o.users ? { users: o.users } : {}),
    ...(o.ecosGoLiveAt !== undefined ? { ecosGoLiveAt: o.ecosGoLiveAt } : {}),
    ...(o.tcosDecommissionAt !== undefined ? { tcosDecommissionAt: o.tcosDecommissionAt } : {}),
    ...(o.deviceTimeoutMs !== undefined ? { deviceTimeoutMs: o.deviceTimeoutMs } : {}),
    logger: consoleLogger(config.logLevel === "debug" ? "debug" : "warn"),
    onEvent: (e) => {
      tally.add(e);
      say(e);
      if (e.event === "stage-started") err(`  stage ${e.stage} running (application id ${e.applicationId})`);
      if (e.event === "start-retry")
        err(
          `  stage ${e.stage} start attempt ${e.attempt} failed (${e.code}: ${e.message}); starting it again`,
        );
    },
  });
  const started = Date.now();
  err(
    `ecos run: SRV 6.23 pipeline on Kafka ${config.kafkaBrokers.join(",")}, stages ${pipeline.stages.join(", ")}, ` +
      `topic prefix "${o.topicPrefix}", application ids ${appIdPrefix}<stage>, test PKI seed "${o.seed}", crypto ${o.crypto}`,
  );

  let stopRequested: (signal: string) => void = () => {};
  const stopSignal = new Promise<string>((resolve) => (stopRequested = resolve));
  let signalled = false;
  let stopping: Promise<void> | null = null;
  const stop = (why: string): Promise<void> =>
    (stopping ??= (async () => {
      err(`ecos run: ${why}: stopping every stage (open transactions are committed or aborted)`);
      await pipeline.stop();
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    signalled = true;
    stopRequested(signal);
    void stop(signal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  // How long callbacks waited for the one thread every stage shares (reported when stopped).
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  await pipeline.start(); // returns early when a signal stopped it meanwhile
  if (!signalled) {
    say({ event: "started", stages: pipeline.stages });
    err(
      `ecos run: every stage running after ${((Date.now() - started) / 1000).toFixed(1)} s; Ctrl-C (SIGINT) or SIGTERM stops`,
    );
  }
  const progress = setInterval(
    () => err(`  ${tally.progressLine(pipeline.stages)}`),
    o.progressEverySeconds * 1000,
  );
  const outcome = await Promise.race([
    pipeline.waitForFailure().then((f) => ({ kind: "failed" as const, ...f })),
    stopSignal.then(() => ({ kind: "stopped" as const })),
  ]);
  clearInterval(progress);
  if (outcome.kind === "failed") {
    say({ event: "failed", stage: outcome.stage, code: outcome.error.code, message: outcome.error.message });
    err(`ecos run: stage ${outcome.stage} failed: ${outcome.error.code}: ${outcome.error.message}`);
    await stop("failure");
    printKafkaSummary(tally, pipeline.stages, Date.now() - started, pipeline, o.events);
    process.exitCode = 1;
    return;
  }
  await stop("stopped");
  loopDelay.disable();
  const cpu = process.cpuUsage();
  say({
    event: "stopped",
    cpuUserMs: Math.round(cpu.user / 1000),
    cpuSystemMs: Math.round(cpu.system / 1000),
    // The histogram holds the intervals of its 10 ms sampling timer: the delay is what is beyond 10 ms.
    eventLoopDelayP99Ms: Math.max(0, Math.round(loopDelay.percentile(99) / 1e6) - 10),
    eventLoopDelayMaxMs: Math.max(0, Math.round(loopDelay.max / 1e6) - 10),
  });
  printKafkaSummary(tally, pipeline.stages, Date.now() - started, pipeline, o.events);
}

/** "N transactions, mean X ms, p50 ≤ Y ms, p99 ≤ Z ms" (bucket bounds), or "no transactions". */
export function transactionLine(t: TransactionTimes | undefined): string {
  if (!t || t.count === 0) return "no transactions";
  const at = (p: number): string => {
    const v = t.percentileAtMost(p);
    return v === Infinity ? `> ${TRANSACTION_MS_BUCKETS[TRANSACTION_MS_BUCKETS.length - 1]} ms` : `≤ ${v} ms`;
  };
  return `${fmt(t.count)} transactions, mean ${(t.totalMs / t.count).toFixed(0)} ms, p50 ${at(50)}, p99 ${at(99)}`;
}

function printKafkaSummary(
  t: KafkaRunTally,
  stages: readonly KafkaStage[],
  ms: number,
  pipeline: KafkaPipeline,
  /** stdout carries JSON event lines: the summary goes to stderr. */
  toStderr: boolean,
): void {
  const p = (q: number): string => {
    const v = t.percentile(q);
    return v === null ? "-" : `${(v / 1000).toFixed(1)} s`;
  };
  const lines = [
    "",
    "ecos run — summary (SRV 6.23 pipeline on Kafka, this process)",
    `  ran                  ${(ms / 1000).toFixed(1)} s, stages ${stages.join(", ")}`,
    ...stages.map(
      (s) =>
        `  ${s.padEnd(20)} ${fmt(t.committed.get(s) ?? 0)} records committed, ${fmt(t.outputs.get(s) ?? 0)} outputs, ` +
        `${fmt(t.restored.get(s) ?? 0)} state records restored at start; ${transactionLine(t.transactions.get(s))}`,
    ),
  ];
  if (stages.includes("tracker"))
    lines.push(
      `  final responses      ${fmt(t.finals)} (${[...t.codes].map(([c, n]) => `${c} ${fmt(n)}`).join(", ") || "none"})`,
      `  response time        p50 ${p(50)}, p99 ${p(99)}; ${fmt(t.breaches)} beyond the 35 s / 21 s targets`,
    );
  if (stages.includes("cos-alerts")) {
    const c = pipeline.cosAlertCounters.snapshot();
    const others = Object.entries(c)
      .filter(([k, n]) => k !== "alerted" && n > 0)
      .map(([k, n]) => `${k} ${fmt(n)}`);
    lines.push(
      `  N65 alerts           ${fmt(c.alerted)} sent; inventory snapshots without one: ${others.join(", ") || "none"}`,
    );
  }
  lines.push("");
  (toStderr ? process.stderr : process.stdout).write(lines.join("\n") + "\n");
}
