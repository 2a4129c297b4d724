/**
 * `ecos adt submit <file.csv> --user <id>` and `ecos adt status --user <id>`.
 *
 * Embedded default (no --kafka): the submissions are kept in a local log,
 * `<ECOS_STATE_DIR>/adt/submissions.jsonl` — the embedded stand-in for the adt.files topic. Each command
 * replays that log through the DSP anomaly topology on the in-process driver and answers from the
 * state it rebuilt, so outcomes (anti-replay included) are exactly those of the running product. No
 * Service Requests flow in the embedded default, so its counts are all 0.
 *
 * With --kafka: `submit` produces an AdtFileSubmission to adt.files and waits for its AdtFileResult on
 * adt.file-results (a running anomaly application answers); `status` reads the ADT table and window
 * changelog topics of the application (`--application-id`) and shows the state they hold. Both need
 * the schema registry the application uses (--registry or ECOS_REGISTRY_URL).
 */
import { randomBytes, randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { Kafka, logLevel } from "kafkajs";
import type { AdtHistory } from "../../processors/anomaly/adt-table";
import { anomalyConfig, type AnomalyConfig } from "../../processors/anomaly/config";
import type { AdtFileResult, AdtFileSubmission } from "../../processors/anomaly/records";
import { anomalyAvroSerdes } from "../../processors/anomaly/serdes";
import { adtStatus, formatAdtStatus, type AdtStatus } from "../../processors/anomaly/status";
import {
  DSP_ANOMALY_STORES,
  adtHistorySerde,
  anomalyTopics,
  buildDspAnomalyTopology,
} from "../../processors/anomaly/topology";
import { windowSetSerde, type WindowSet } from "../../processors/anomaly/window";
import { EcosError } from "../../processors/runtime/errors";
import { InProcessDriver } from "../../processors/runtime/in-process-driver";
import { partitionForKey } from "../../processors/runtime/partitioner";
import { changelogTopicName } from "../../processors/runtime/topics";
import { ConfluentSchemaRegistryClient, InMemorySchemaRegistry } from "../../schemas/registry";
import { loadConfig, type EcosConfig } from "../config/config";

/** What the commands need from outside; tests pass their own. */
export interface AdtCommandIo {
  /** Environment for loadConfig (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where results are written (default stdout). */
  readonly out?: (text: string) => void;
  /** The clock: receipt time of a submission (default Date.now). */
  readonly now?: () => number;
  readonly anomaly?: AnomalyConfig;
}

const EUI64 = /^[0-9A-F]{2}(-[0-9A-F]{2}){7}$/;

function userId(value: string): string {
  if (!EUI64.test(value))
    throw new InvalidArgumentError("expected a User ID as EUI-64, e.g. 90-B3-D5-1F-30-01-00-00");
  return value;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function instant(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("expected an ISO 8601 time or epoch milliseconds");
  return n;
}

interface CommonFlags {
  user: string;
  kafka?: string;
  registry?: string;
  applicationId?: string;
  json?: boolean;
}

function configFrom(io: AdtCommandIo, flags: CommonFlags): Readonly<EcosConfig> {
  return loadConfig(io.env ?? process.env, {
    ...(flags.kafka !== undefined ? { kafkaBrokers: flags.kafka } : {}),
    ...(flags.registry !== undefined ? { registryUrl: flags.registry } : {}),
    ...(flags.applicationId !== undefined ? { applicationId: flags.applicationId } : {}),
  });
}

/** Adds `adt submit` and `adt status` to the `ecos` program. */
export function registerAdtCommands(program: Command, io: AdtCommandIo = {}): Command {
  const out = io.out ?? ((text: string) => void process.stdout.write(`${text}\n`));
  const now = io.now ?? Date.now;
  const anomaly = io.anomaly ?? anomalyConfig();
  const adt = program
    .command("adt")
    .description("Anomaly Detection Threshold (ADT) files: submit one, show a User's thresholds and counts");
  const common = (c: Command): Command =>
    c
      .requiredOption("--user <id>", "User ID (EUI-64, e.g. 90-B3-D5-1F-30-01-00-00)", userId)
      .option(
        "--kafka <brokers>",
        "use the Kafka cluster (comma-separated brokers) instead of the embedded default",
      )
      .option("--registry <url>", "Confluent-compatible schema registry URL (required with --kafka)")
      .option("--application-id <id>", "the anomaly application's id (names its changelog topics)")
      .option("--json", "print JSON instead of text");

  common(
    adt
      .command("submit <file>")
      .description(
        "Submit an ADT file (CSV, format in docs/anomaly-detection.md) for a User ID and print the outcome. " +
          "A rejected file changes nothing and exits with ECOS_ADT_FILE_REJECTED.",
      )
      .option("--timeout <ms>", "with --kafka: how long to wait for the result", positiveInt, 30_000),
  ).action(async (file: string, flags: CommonFlags & { timeout: number }) => {
    const config = configFrom(io, flags);
    const submission: AdtFileSubmission = {
      submissionId: randomUUID(),
      userId: flags.user,
      fileName: path.basename(file),
      submittedAt: now(),
      content: readBounded(file, anomaly.maxFileBytes),
    };
    let result: AdtFileResult | undefined;
    let status: AdtStatus | undefined;
    if (config.kafkaBrokers.length === 0) {
      const log = new EmbeddedAdtLog(config.stateDir);
      const state = await replayEmbedded([...log.load(), submission], anomaly);
      log.append(submission);
      result = state.results.get(submission.submissionId);
      status = adtStatus(
        submission.userId,
        state.tables.get(submission.userId),
        new Map(),
        submission.submittedAt,
        anomaly,
      );
    } else {
      result = await submitAdtFileOnKafka(config, submission, { timeoutMs: flags.timeout });
      if (!result) {
        out(
          `submitted ${submission.fileName} (submission ${submission.submissionId}); no result within ${flags.timeout} ms — is the anomaly application running?`,
        );
        process.exitCode = 2;
        return;
      }
    }
    if (!result)
      throw new EcosError("ECOS_PROCESS_FAILED", `no result for submission ${submission.submissionId}`);
    if (flags.json) out(JSON.stringify(result));
    if (result.outcome === "REJECTED") {
      throw new EcosError(
        "ECOS_ADT_FILE_REJECTED",
        `ADT file ${result.fileName} for User ID ${result.userId} rejected (${result.rejectionCode}): ${result.rejectionReason}`,
      );
    }
    if (!flags.json) {
      out(
        `ADT file ${result.fileName} for User ID ${result.userId}: ACCEPTED, Sequence Number ${result.sequenceNumber}, ` +
          `in force from ${new Date(result.effectiveFrom ?? 0).toISOString()}`,
      );
      if (status) out(formatAdtStatus(status));
    }
  });

  common(
    adt
      .command("status")
      .description("Show the thresholds in force for a User ID and the current count of every window")
      .option("--at <time>", "describe this moment (ISO 8601 or epoch ms) instead of now", instant),
  ).action(async (flags: CommonFlags & { at?: number }) => {
    const config = configFrom(io, flags);
    const at = flags.at ?? now();
    let status: AdtStatus;
    if (config.kafkaBrokers.length === 0) {
      const state = await replayEmbedded(new EmbeddedAdtLog(config.stateDir).load(), anomaly);
      status = adtStatus(flags.user, state.tables.get(flags.user), new Map(), at, anomaly);
    } else {
      const state = await readAdtStateOnKafka(config, flags.user);
      status = adtStatus(flags.user, state.history, state.windows, at, anomaly);
    }
    out(flags.json ? JSON.stringify(status) : formatAdtStatus(status));
  });
  return adt;
}

/** Reads a file, refusing one larger than `limit` before reading it (the parser enforces it too). */
function readBounded(file: string, limit: number): Buffer {
  const size = fs.statSync(file).size;
  if (size > limit) {
    throw new EcosError(
      "ECOS_ADT_FILE_REJECTED",
      `ADT file ${file} rejected (FILE_TOO_LARGE): ${size} bytes, the limit is ${limit}`,
    );
  }
  return fs.readFileSync(file);
}

/** The embedded default's record of every submission (JSON lines, content in base64). */
export class EmbeddedAdtLog {
  readonly file: string;
  constructor(stateDir: string) {
    this.file = path.join(stateDir, "adt", "submissions.jsonl");
  }
  load(): AdtFileSubmission[] {
    if (!fs.existsSync(this.file)) return [];
    return fs
      .readFileSync(this.file, "utf8")
      .split("\n")
      .filter((l) => l.length > 0)
      .map((l) => {
        const o = JSON.parse(l) as Omit<AdtFileSubmission, "content"> & { content: string };
        return { ...o, content: Buffer.from(o.content, "base64") };
      });
  }
  append(s: AdtFileSubmission): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    fs.appendFileSync(this.file, `${JSON.stringify({ ...s, content: s.content.toString("base64") })}\n`);
  }
}

/** Replays submissions through the DSP anomaly topology in-process; returns results and tables. */
export async function replayEmbedded(
  submissions: readonly AdtFileSubmission[],
  anomaly: AnomalyConfig,
): Promise<{ results: Map<string, AdtFileResult>; tables: Map<string, AdtHistory> }> {
  const serdes = anomalyAvroSerdes(new InMemorySchemaRegistry());
  const driver = await InProcessDriver.create(buildDspAnomalyTopology({ serdes, config: anomaly }), {
    applicationId: "ecos-adt-cli",
  });
  try {
    const topics = anomalyTopics();
    await driver.pipeInput(
      topics.adtFiles,
      submissions.map((s) => ({ key: s.userId, value: s, timestamp: s.submittedAt })),
      serdes.adtFile,
    );
    const results = new Map<string, AdtFileResult>();
    for (const r of await driver.readOutput(topics.adtResults, serdes.adtResult))
      results.set(r.value.submissionId, r.value);
    return { results, tables: new Map(driver.storeEntries<AdtHistory>(DSP_ANOMALY_STORES.adtTables)) };
  } finally {
    await driver.close();
  }
}

function kafkaClient(config: Readonly<EcosConfig>, label: string): Kafka {
  return new Kafka({
    clientId: `${config.applicationId}-adt-${label}`,
    brokers: [...config.kafkaBrokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 3 },
  });
}

function registryOf(config: Readonly<EcosConfig>): ConfluentSchemaRegistryClient {
  if (!config.registryUrl) {
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      "adt with --kafka needs the schema registry the anomaly application uses: --registry or ECOS_REGISTRY_URL",
    );
  }
  return new ConfluentSchemaRegistryClient({ host: config.registryUrl });
}

/**
 * Produces a submission to adt.files and waits for its result on adt.file-results (read from the
 * end of the result partition of the User ID, as it was before producing). Undefined on time-out.
 */
export async function submitAdtFileOnKafka(
  config: Readonly<EcosConfig>,
  submission: AdtFileSubmission,
  opts: { timeoutMs: number; topicPrefix?: string },
): Promise<AdtFileResult | undefined> {
  const topics = anomalyTopics(opts.topicPrefix);
  const serdes = anomalyAvroSerdes(registryOf(config));
  await serdes.adtFile.prepare?.(topics.adtFiles);
  const kafka = kafkaClient(config, "submit");
  const admin = kafka.admin();
  await admin.connect();
  const consumer = kafka.consumer({
    groupId: `ecos-adt-cli-${randomBytes(6).toString("hex")}`,
    readUncommitted: false,
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    const [filesMeta, resultsMeta] = (
      await admin.fetchTopicMetadata({ topics: [topics.adtFiles, topics.adtResults] })
    ).topics;
    const key = Buffer.from(submission.userId);
    const resultPartition = partitionForKey(key, resultsMeta?.partitions.length ?? 1);
    const end =
      (await admin.fetchTopicOffsets(topics.adtResults)).find((p) => p.partition === resultPartition)
        ?.offset ?? "0";
    let found: (r: AdtFileResult) => void = () => {};
    const result = new Promise<AdtFileResult>((resolve) => (found = resolve));
    await consumer.connect();
    await consumer.subscribe({ topics: [topics.adtResults] });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (partition !== resultPartition || message.value === null) return;
        const r = await serdes.adtResult.deserialize(topics.adtResults, message.value);
        if (r.submissionId === submission.submissionId) found(r);
      },
    });
    consumer.seek({ topic: topics.adtResults, partition: resultPartition, offset: end });
    await producer.connect();
    await producer.send({
      topic: topics.adtFiles,
      messages: [
        {
          key,
          value: serdes.adtFile.serialize(topics.adtFiles, submission),
          timestamp: String(submission.submittedAt),
          partition: partitionForKey(key, filesMeta?.partitions.length ?? 1),
        },
      ],
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>(
      (resolve) => (timer = setTimeout(() => resolve(undefined), opts.timeoutMs)),
    );
    const r = await Promise.race([result, timedOut]);
    clearTimeout(timer);
    return r;
  } finally {
    await producer.disconnect().catch(() => {});
    await consumer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

/**
 * A User's ADT history and windows as held by the anomaly application's changelog topics (compacted,
 * read committed from the beginning of the User's partition until idle).
 */
export async function readAdtStateOnKafka(
  config: Readonly<EcosConfig>,
  user: string,
  opts: { idleMs?: number; timeoutMs?: number } = {},
): Promise<{ history: AdtHistory | undefined; windows: Map<string, WindowSet> }> {
  const tablesTopic = changelogTopicName(config.applicationId, DSP_ANOMALY_STORES.adtTables);
  const windowsTopic = changelogTopicName(config.applicationId, DSP_ANOMALY_STORES.windows);
  const kafka = kafkaClient(config, "status");
  const admin = kafka.admin();
  await admin.connect();
  let topics: string[];
  try {
    const existing = new Set(await admin.listTopics());
    topics = [tablesTopic, windowsTopic].filter((t) => existing.has(t));
  } finally {
    await admin.disconnect();
  }
  let history: AdtHistory | undefined;
  const windows = new Map<string, WindowSet>();
  if (topics.length === 0) return { history, windows };
  const consumer = kafka.consumer({
    groupId: `ecos-adt-cli-${randomBytes(6).toString("hex")}`,
    readUncommitted: false,
  });
  const prefix = `${user}|`;
  let last = Date.now();
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
    last = Date.now();
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        last = Date.now();
        const key = message.key?.toString("utf8");
        if (key === undefined) return;
        if (topic === tablesTopic && key === user) {
          history =
            message.value === null ? undefined : await adtHistorySerde.deserialize(topic, message.value);
        } else if (topic === windowsTopic && key.startsWith(prefix)) {
          const srv = key.slice(prefix.length);
          if (message.value === null) windows.delete(srv);
          else windows.set(srv, await windowSetSerde.deserialize(topic, message.value));
        }
      },
    });
    // Changelogs end with transaction markers, which are never delivered: read until idle.
    const idle = opts.idleMs ?? 1500;
    const until = Date.now() + (opts.timeoutMs ?? 30_000);
    while ((!joined || Date.now() - last < idle) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
  } finally {
    await consumer.disconnect();
  }
  return { history, windows };
}
