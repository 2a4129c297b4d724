/**
 * `ecos run`: the main job.
 *
 * Embedded default (no `--kafka`): the SRV 6.23 pipeline of processors/pipeline — DSP validation,
 * the ECoS and TCoS Parties, dispatch, the simulated devices and S1SP, the response tracker and the
 * ClickHouse sink into embedded ClickHouse (chDB) — over synthetic signed supplier traffic from the
 * seeded test PKI, on a simulated clock. Progress goes to stderr; the summary (outcomes, devices
 * updated, response times against 35 s / 21 s, alerts, anomaly events, rows in chDB and a SQL
 * aggregate read back from it) to stdout.
 *
 * `--kafka <brokers>`: the same stages on a Kafka cluster, each its own application (run-kafka.ts),
 * until stopped; devices and the S1SP are `ecos sim`, requests come from suppliers. The foundation's
 * demo topology moved to `ecos demo`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { EmbeddedPipeline, type RunProgress } from "../../processors/pipeline/pipeline";
import { summarise, type PipelineSummary } from "../../processors/pipeline/summary";
import { syntheticTraffic } from "../../processors/pipeline/traffic";
import { consoleLogger } from "../../processors/runtime/logger";
import { EcosError } from "../../processors/runtime/errors";
import { parseStages } from "../../processors/pipeline/kafka-pipeline";
import { parseUsersCsv } from "../../processors/dsp/csv";
import { ChdbConnection } from "../../processors/sinks/clickhouse/chdb-connection";
import { rowObjects } from "../../processors/sinks/clickhouse/connection";
import { migrate } from "../../processors/sinks/clickhouse/migrations";
import { TABLES } from "../../processors/sinks/clickhouse/tables";
import { seededCredentials } from "../sim/credentials";
import { loadConfig, type EcosConfig } from "../config/config";
import { runKafkaPipeline } from "./run-kafka";

/** Sizes of the embedded run. */
export interface PipelineRunOptions {
  readonly requests: number;
  readonly devices: number;
  /** Test PKI and simulator seed. */
  readonly seed: string;
  /** Arrival rate, requests per simulated second. */
  readonly rate: number;
  readonly partitions: number;
}

/** Simulated time of the first request: fixed, so that two runs with one seed are the same run. */
export const PIPELINE_START = Date.UTC(2026, 5, 1, 12, 0, 0);

const fmt = (n: number): string => n.toLocaleString("en-GB");
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

/** An ISO-8601 instant as epoch ms. */
function instant(value: string): number {
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(t))
    throw new InvalidArgumentError("expected an ISO-8601 time such as 2026-06-01T00:00:00Z");
  return t;
}

export function registerRunCommand(program: Command): void {
  program
    .command("run")
    .description(
      "Run the main job. With no --kafka: the embedded SRV 6.23 pipeline (DSP validation, ECoS/TCoS Parties, " +
        "dispatch, simulated devices and S1SP, response tracker, ClickHouse sink into embedded chDB) over " +
        "synthetic signed traffic on a simulated clock, then a summary. With --kafka: the pipeline's stages " +
        "(dsp, ecos, tcos, dispatch, tracker, cos-alerts) on the Kafka cluster, each its own application, " +
        "until SIGINT/SIGTERM; devices and the S1SP are `ecos sim`, requests come from suppliers on duis.requests.",
    )
    .option("--requests <n>", "synthetic 6.23 requests (embedded)", positiveInt, 3_000)
    .option("--devices <n>", "devices in the estate (embedded)", positiveInt, 2_000)
    .option("--seed <text>", "seed of the test PKI (and of the embedded simulators)", "ecos-stream-test-pki")
    .option("--rate <n>", "arrival rate, requests per simulated second (embedded)", positiveInt, 50)
    .option(
      "--partitions <n>",
      "partitions of every topic (embedded: 1; --kafka: of topics it creates, 3)",
      positiveInt,
    )
    .option(
      "--kafka <brokers>",
      "run the stages on this Kafka cluster (comma-separated brokers; default ECOS_KAFKA_BROKERS)",
    )
    .option("--registry <url>", "Confluent-compatible schema registry URL (required with --kafka)")
    .option(
      "--application-id <id>",
      "with --kafka: stage application ids are <id>-<stage> (default ECOS_APPLICATION_ID)",
    )
    .option("--stages <list>", "with --kafka: the stages this process runs, comma-separated, or all", "all")
    .option("--topic-prefix <prefix>", "with --kafka: prefix of every external topic", "")
    .option(
      "--crypto <mode>",
      "with --kafka: inline (stream thread) or pool (a worker thread per crypto stage)",
      "pool",
    )
    .option(
      "--users <csv>",
      "with --kafka: DCC Users directory (user_id,roles,status,mpids) for the DSP and N65",
    )
    .option(
      "--ecos-go-live <time>",
      "with --kafka: ECoS go-live, ISO-8601 (TCoS devices joining a hub after it raise N65)",
      instant,
    )
    .option(
      "--tcos-decommission <time>",
      "with --kafka: the TCoS Party refuses requests from this ISO-8601 time",
      instant,
    )
    .option(
      "--device-timeout-ms <ms>",
      "with --kafka: the tracker's device time-out for both generations",
      positiveInt,
    )
    .option("--events", "with --kafka: one JSON line per event on stdout (summary then goes to stderr)")
    .option("--progress-every <s>", "with --kafka: seconds between progress lines", positiveInt, 10)
    .action(
      async (opts: {
        requests: number;
        devices: number;
        seed: string;
        rate: number;
        partitions?: number;
        kafka?: string;
        registry?: string;
        applicationId?: string;
        stages: string;
        topicPrefix: string;
        crypto: string;
        users?: string;
        ecosGoLive?: number;
        tcosDecommission?: number;
        deviceTimeoutMs?: number;
        events?: boolean;
        progressEvery: number;
      }) => {
        const config = loadConfig(process.env, {
          ...(opts.kafka !== undefined ? { kafkaBrokers: opts.kafka } : {}),
          ...(opts.registry !== undefined ? { registryUrl: opts.registry } : {}),
          ...(opts.applicationId !== undefined ? { applicationId: opts.applicationId } : {}),
        });
        if (config.kafkaBrokers.length > 0) {
          if (opts.crypto !== "inline" && opts.crypto !== "pool")
            throw new EcosError(
              "ECOS_CONFIG_INVALID",
              `--crypto ${JSON.stringify(opts.crypto)}: expected inline or pool`,
            );
          const users = opts.users
            ? parseUsersCsv(fs.readFileSync(opts.users, "utf8"), path.basename(opts.users))
            : undefined;
          await runKafkaPipeline(config, {
            stages: parseStages(opts.stages),
            topicPrefix: opts.topicPrefix,
            seed: opts.seed,
            crypto: opts.crypto,
            partitions: opts.partitions ?? 3,
            ...(users ? { users } : {}),
            ...(opts.ecosGoLive !== undefined ? { ecosGoLiveAt: opts.ecosGoLive } : {}),
            ...(opts.tcosDecommission !== undefined ? { tcosDecommissionAt: opts.tcosDecommission } : {}),
            ...(opts.deviceTimeoutMs !== undefined ? { deviceTimeoutMs: opts.deviceTimeoutMs } : {}),
            events: opts.events === true,
            progressEverySeconds: opts.progressEvery,
          });
        } else {
          await runPipeline(config, {
            requests: opts.requests,
            devices: opts.devices,
            seed: opts.seed,
            rate: opts.rate,
            partitions: opts.partitions ?? 1,
          });
        }
      },
    );
}

/** The embedded default: the whole 6.23 pipeline in this process, then the summary. */
export async function runPipeline(config: Readonly<EcosConfig>, opts: PipelineRunOptions): Promise<void> {
  const started = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(
    `ecos run: embedded SRV 6.23 pipeline (in-process drivers, simulated clock), ${fmt(opts.requests)} requests, ` +
      `${fmt(opts.devices)} devices, seed "${opts.seed}"\n`,
  );
  const traffic = syntheticTraffic({
    requests: opts.requests,
    devices: opts.devices,
    seed: opts.seed,
    startAt: PIPELINE_START,
    perSecond: opts.rate,
  });
  const credentials = seededCredentials(opts.seed);
  process.stderr.write(
    `  generated and signed ${fmt(traffic.requests.length)} requests (${elapsed().toFixed(1)} s)\n`,
  );

  // A fresh chDB folder per run: the sink skips offsets it has stored, and every run restarts them.
  const chdbDir = path.join(config.stateDir, "pipeline", "clickhouse");
  fs.rmSync(chdbDir, { recursive: true, force: true });
  const database = "ecos";
  const conn = new ChdbConnection(chdbDir);
  let pipeline: EmbeddedPipeline | undefined;
  try {
    await migrate(conn, database);
    await conn.useDatabase(database);
    pipeline = await EmbeddedPipeline.create({
      credentials,
      devices: traffic.devices,
      registrations: traffic.registrations,
      users: [
        { userId: traffic.cast.supplierId, roles: ["IS", "GS"], status: "ACTIVE", mpids: ["ACEE", "ACG"] },
      ],
      startTimeMs: PIPELINE_START,
      partitions: opts.partitions,
      simulator: { seed: `${opts.seed}/sim` },
      // A warning threshold below the day's volume, so the anomaly path shows; the ADT itself is not
      // reached (a quarantined request waits for an operator, which a batch run has not got).
      adt: {
        threshold: opts.requests * 10,
        warningThreshold: Math.max(1, Math.floor(opts.requests * 0.5)),
      },
      clickhouse: { connection: conn, database },
      logger: consoleLogger(config.logLevel === "debug" ? "debug" : "warn"),
    });
    const progress = (p: RunProgress): void => {
      process.stderr.write(
        `  t+${secs(p.simulatedMs).padStart(8)} simulated  submitted ${fmt(p.submitted)} / ${fmt(p.total)}  ` +
          `final responses ${fmt(p.answered)}  (${elapsed().toFixed(1)} s)\n`,
      );
    };
    const run = await pipeline.run(traffic.requests, { onProgress: progress, progressEveryMs: 15_000 });
    const summary = summarise(run, traffic.requests, pipeline, {
      supplierId: traffic.cast.supplierId,
      digitalSigning: traffic.cast.replacementDs.der,
    });
    const sql = await chdbReadBack(conn);
    printPipelineSummary(opts, summary, run.simulatedMs, elapsed(), run.sinkRows, sql, chdbDir);
    if (run.timedOut || summary.oneFinalResponse.missing > 0 || summary.oneFinalResponse.extra > 0)
      process.exitCode = 2;
  } finally {
    await pipeline?.close();
    await conn.close();
  }
}

interface ReadBack {
  readonly rows: ReadonlyArray<[string, number]>;
  readonly aggregate: string;
}

/** Rows per table, and the response times by generation as an analyst would ask ClickHouse for them. */
async function chdbReadBack(conn: ChdbConnection): Promise<ReadBack> {
  const tables = [
    TABLES.serviceResponses,
    TABLES.requestStageEvents,
    TABLES.dccAlerts,
    TABLES.anomalyEvents,
    TABLES.deviceSnapshots,
    TABLES.registrationHistory,
  ];
  const counted = rowObjects(
    // FINAL: a replacing table's row count is the same whether or not its parts have merged yet.
    await conn.query(
      tables.map((t) => `SELECT '${t}' AS t, count() AS n FROM ${t} FINAL`).join(" UNION ALL "),
    ),
  );
  const rows = tables.map((t): [string, number] => [t, Number(counted.find((r) => r.t === t)?.n ?? 0)]);
  // The final answer per request is the response with the highest offset (the table is a
  // ReplacingMergeTree on it): FINAL drops dsp-validate's I99 acknowledgements of answered requests.
  const aggregate = await conn.queryText(
    `SELECT smets_generation, count() AS requests, countIf(successful = 1) AS successful,
            round(quantile(0.5)(response_time_ms) / 1000, 1) AS p50_s,
            round(quantile(0.99)(response_time_ms) / 1000, 1) AS p99_s,
            any(target_response_time_ms) / 1000 AS target_s,
            countIf(target_response_time_ms > 0 AND within_target = 0) AS beyond_target
       FROM service_response_times
      WHERE srv = '6.23'
      GROUP BY smets_generation ORDER BY smets_generation DESC`,
    "PrettyCompactNoEscapes",
  );
  return { rows, aggregate: aggregate.trimEnd() };
}

/** A path relative to the working folder when it is inside it. */
function shortPath(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r === "" || r.startsWith("..") || path.isAbsolute(r) ? p : r;
}

function printPipelineSummary(
  opts: PipelineRunOptions,
  s: PipelineSummary,
  simulatedMs: number,
  seconds: number,
  sinkRows: number,
  sql: ReadBack,
  chdbDir: string,
): void {
  const pad = (text: string, n: number): string => text.padEnd(n);
  const lines: string[] = [
    "",
    "ecos run — summary (embedded SRV 6.23 pipeline)",
    `  requests             ${fmt(s.submitted)} submitted over ${secs(simulatedMs)} of simulated time ` +
      `(${fmt(opts.rate)}/s), ${fmt(opts.devices)} devices, seed "${opts.seed}"`,
    `  traffic              ${s.byKind.map(([k, n]) => `${k} ${fmt(n)}`).join(", ")}`,
    `  elapsed              ${seconds.toFixed(1)} s (${fmt(Math.round(s.submitted / seconds))} requests/s)`,
    "",
    "  final Service Responses by stage and response code:",
    ...s.outcomes.map(
      (o) =>
        `    ${pad(o.origin, 17)} ${pad(o.code, 14)} ${pad(o.successful ? "successful" : "not successful", 15)} ` +
        `${fmt(o.count).padStart(6)}  ${o.reason}`,
    ),
    `    (plus ${fmt(s.acknowledgements)} dsp-validate I99 acknowledgements of requests sent on)`,
    `  one final response   ${
      s.oneFinalResponse.missing === 0 && s.oneFinalResponse.extra === 0
        ? `OK: every one of the ${fmt(s.submitted)} submissions has exactly one`
        : `MISMATCH: ${fmt(s.oneFinalResponse.missing)} missing, ${fmt(s.oneFinalResponse.extra)} extra`
    }`,
    `  devices updated      ${fmt(s.devicesUpdated.smets2)} SMETS2 devices hold the gaining supplier's certificates; ` +
      `${fmt(s.devicesUpdated.smets1)} SMETS1 devices switched at the S1SP`,
    "",
    "  response time (receipt → final response; simulated WAN and device time, DCC processing takes none):",
    ...s.responseTimes.map(
      (r) =>
        `    ${pad(r.smetsGeneration, 7)} ${fmt(r.count).padStart(6)} answers  p50 ${secs(r.p50)}  p95 ${secs(r.p95)}  ` +
        `p99 ${secs(r.p99)}  max ${secs(r.max)}  target ${secs(r.targetMs)}  breaches ${fmt(r.breaches)}`,
    ),
    `  alerts               ${s.alertsByCode.length === 0 ? "none" : s.alertsByCode.map(([k, n]) => `${k} ${fmt(n)}`).join(", ")}`,
    `  anomaly events       ${
      s.anomalyByKind.length === 0 ? "none" : s.anomalyByKind.map(([k, n]) => `${k} ${fmt(n)}`).join(", ")
    }`,
    "",
    `  embedded ClickHouse (chDB at ${shortPath(chdbDir)}): ${fmt(sinkRows)} rows inserted by the sink; rows per table (FINAL):`,
    `    ${sql.rows.map(([t, n]) => `${t} ${fmt(n)}`).join(", ")}`,
    "  SELECT … FROM service_response_times GROUP BY smets_generation:",
    ...sql.aggregate.split("\n").map((l) => `    ${l}`),
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
