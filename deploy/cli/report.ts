/**
 * The ClickHouse commands of `ecos`: `report` (the EMRR reports ECOSMIG-001 … 006, scheduled report
 * files, the HTML page), `sql` (one query, or an interactive prompt) and `sink` (the ClickHouse sink
 * from Kafka). Flags and environment are parsed here, at the edge (deploy/config/config.ts and
 * deploy/config/clickhouse.ts); nothing below reads the environment.
 *
 * main.ts adds them with `registerReportCommands(program)`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import { type Command, InvalidArgumentError, Option } from "commander";
import { formatInstant, parseInstant, resolvePeriod, type Period } from "../../processors/emrr/periods";
import { writeHtmlReport } from "../../processors/emrr/html";
import { OUTPUT_FORMATS, render, type OutputFormat } from "../../processors/emrr/render";
import { REPORTS, reportDefinition, runReport } from "../../processors/emrr/reports";
import { produceDue, runSchedule } from "../../processors/emrr/schedule";
import { EcosError } from "../../processors/runtime/errors";
import { consoleLogger, type Logger } from "../../processors/runtime/logger";
import { ChdbConnection } from "../../processors/sinks/clickhouse/chdb-connection";
import type { ClickHouseConnection } from "../../processors/sinks/clickhouse/connection";
import { KafkaClickHouseSink } from "../../processors/sinks/clickhouse/kafka-sink";
import { migrate } from "../../processors/sinks/clickhouse/migrations";
import { SINK_TOPICS, defaultRoutes } from "../../processors/sinks/clickhouse/routes";
import { ServerConnection } from "../../processors/sinks/clickhouse/server-connection";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import { loadClickHouseConfig, type ClickHouseConfig } from "../config/clickhouse";
import { loadConfig, type EcosConfig } from "../config/config";

/** What the commands talk to; tests replace them. */
export interface ReportCommandDeps {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
  readonly stdin?: NodeJS.ReadableStream;
  readonly now?: () => Date;
  /** Stops `report --schedule` and `sink` (default: SIGINT or SIGTERM). */
  readonly signal?: AbortSignal;
}

interface ClickHouseFlags {
  clickhouse?: string;
  database?: string;
  chdbDir?: string;
}

function addClickHouseOptions(cmd: Command): Command {
  return cmd
    .option(
      "--clickhouse <url>",
      "ClickHouse server HTTP URL (default $ECOS_CLICKHOUSE_URL; unset: embedded chDB)",
    )
    .option("--database <name>", "database of the tables (default $ECOS_CLICKHOUSE_DATABASE or ecos)")
    .option("--chdb-dir <dir>", "embedded chDB data folder (default $ECOS_CHDB_DIR or <state>/clickhouse)");
}

function configs(
  env: Readonly<Record<string, string | undefined>>,
  flags: ClickHouseFlags & { kafka?: string; registry?: string },
): { base: Readonly<EcosConfig>; ch: Readonly<ClickHouseConfig> } {
  const base = loadConfig(env, {
    ...(flags.kafka !== undefined ? { kafkaBrokers: flags.kafka } : {}),
    ...(flags.registry !== undefined ? { registryUrl: flags.registry } : {}),
  });
  const ch = loadClickHouseConfig(
    env,
    {
      ...(flags.clickhouse !== undefined ? { url: flags.clickhouse } : {}),
      ...(flags.database !== undefined ? { database: flags.database } : {}),
      ...(flags.chdbDir !== undefined ? { chdbDir: flags.chdbDir } : {}),
    },
    base.stateDir,
  );
  return { base, ch };
}

/** Opens the configured target, applies pending migrations and makes its database the default. */
export async function openClickHouse(
  ch: Readonly<ClickHouseConfig>,
  logger?: Logger,
): Promise<ClickHouseConnection> {
  const conn: ClickHouseConnection =
    ch.url === undefined
      ? new ChdbConnection(ch.chdbDir)
      : new ServerConnection({
          url: ch.url,
          ...(ch.username !== undefined ? { username: ch.username } : {}),
          ...(ch.password !== undefined ? { password: ch.password } : {}),
        });
  try {
    await migrate(conn, ch.database, logger);
    await conn.useDatabase(ch.database);
    return conn;
  } catch (err) {
    await conn.close().catch(() => {});
    throw err;
  }
}

function format(value: string): OutputFormat {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${OUTPUT_FORMATS.join(", ")}`);
  }
  return value as OutputFormat;
}

function stopSignal(deps: ReportCommandDeps): AbortSignal {
  if (deps.signal) return deps.signal;
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return ac.signal;
}

const READS = /^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b/i;

/** Runs one analyst statement and writes its output. */
export async function runSql(
  conn: ClickHouseConnection,
  sql: string,
  fmt: string,
  out: NodeJS.WritableStream,
): Promise<void> {
  const statement = sql.trim().replace(/;+\s*$/, "");
  if (statement === "") return;
  if (!READS.test(statement)) {
    await conn.exec(statement);
    out.write("OK\n");
    return;
  }
  if ((OUTPUT_FORMATS as readonly string[]).includes(fmt)) {
    out.write(render(await conn.query(statement), fmt as OutputFormat));
  } else {
    // Any ClickHouse output format by name (PrettyCompact, TSV, JSONEachRow, ...).
    out.write(await conn.queryText(statement, fmt));
  }
}

const PROMPT_HELP = `Statements end with ';'. \\d lists the tables and views, \\q (or quit, exit) leaves.
Examples are in docs/reports.md ("Example queries").
`;

/** The interactive prompt: statements end with ';'; errors are shown and the prompt goes on. */
async function prompt(
  conn: ClickHouseConnection,
  fmt: string,
  input: NodeJS.ReadableStream,
  out: NodeJS.WritableStream,
  banner: string,
): Promise<void> {
  const rl = readline.createInterface({ input, output: out, terminal: false });
  out.write(`${banner}\n${PROMPT_HELP}`);
  let buffer = "";
  const ask = (): void => void out.write(buffer === "" ? "ecos> " : "   -> ");
  ask();
  for await (const line of rl) {
    const trimmed = line.trim();
    if (buffer === "" && /^(\\q|quit|exit)$/i.test(trimmed)) break;
    if (buffer === "" && trimmed === "\\d") {
      await runSql(
        conn,
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name",
        fmt,
        out,
      ).catch((err: unknown) => showError(out, err));
      ask();
      continue;
    }
    if (buffer === "" && (trimmed === "\\h" || trimmed === "help")) {
      out.write(PROMPT_HELP);
      ask();
      continue;
    }
    buffer += `${line}\n`;
    if (trimmed.endsWith(";")) {
      const sql = buffer;
      buffer = "";
      await runSql(conn, sql, fmt, out).catch((err: unknown) => showError(out, err));
    }
    ask();
  }
  if (buffer.trim() !== "") await runSql(conn, buffer, fmt, out).catch((err: unknown) => showError(out, err));
  out.write("\n");
}

function showError(out: NodeJS.WritableStream, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  out.write(`error${err instanceof EcosError ? ` ${err.code}` : ""}: ${message.split("\n")[0] ?? message}\n`);
}

function periodLabel(p: Period): string {
  return `${formatInstant(p.from)} .. ${formatInstant(p.to)}`;
}

export function registerReportCommands(program: Command, deps: ReportCommandDeps = {}): void {
  const env = deps.env ?? process.env;
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const now = deps.now ?? (() => new Date());

  const report = program
    .command("report")
    .argument("[ref]", `report: ${REPORTS.map((r) => r.ref).join(", ")}`)
    .description(
      "EMRR reports from ClickHouse: one report for one Responsible Supplier (default: the last complete " +
        "period of its frequency); --schedule writes every report for every supplier as files at each " +
        "report's frequency; --html writes a self-contained page with charts.",
    )
    .option("--supplier <MPID>", "Responsible Supplier the report is for")
    .option("--from <when>", "period start, YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")
    .option("--to <when>", "period end (exclusive), YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")
    .addOption(new Option("--format <format>", "csv, json or table").argParser(format).default("table"))
    .option("--out <file>", "write to this file instead of standard output")
    .option("--html <dir>", "write the HTML page (index.html) into this folder")
    .option("--schedule [dir]", "write report files at each report's frequency (default $ECOS_REPORTS_DIR)")
    .option("--once", "with --schedule: write what is due now and exit (for cron)")
    .option(
      "--suppliers <list>",
      "with --schedule: comma-separated MPIDs (default: every supplier in the data)",
    );
  addClickHouseOptions(report).action(
    async (
      ref: string | undefined,
      opts: ClickHouseFlags & {
        supplier?: string;
        from?: string;
        to?: string;
        format: OutputFormat;
        out?: string;
        html?: string;
        schedule?: string | true;
        once?: boolean;
        suppliers?: string;
      },
    ) => {
      const { base, ch } = configs(env, opts);
      const logger = consoleLogger(base.logLevel, stderr);
      const conn = await openClickHouse(ch, logger);
      try {
        if (opts.html !== undefined) {
          const to = opts.to !== undefined ? parseInstant("--to", opts.to) : now();
          const from =
            opts.from !== undefined
              ? parseInstant("--from", opts.from)
              : new Date(to.getTime() - 28 * 86_400_000);
          if (to.getTime() <= from.getTime())
            throw new EcosError("ECOS_CONFIG_INVALID", "--to must be after --from");
          const file = await writeHtmlReport({
            clickhouse: conn,
            database: ch.database,
            dir: path.resolve(opts.html),
            period: { from, to },
            ...(opts.supplier !== undefined ? { supplier: opts.supplier } : {}),
            generatedAt: now(),
          });
          stdout.write(`wrote ${file}\n`);
          return;
        }
        if (opts.schedule !== undefined) {
          const dir = path.resolve(opts.schedule === true ? ch.reportsDir : opts.schedule);
          const schedule = {
            clickhouse: conn,
            database: ch.database,
            dir,
            logger,
            format: opts.format === "json" ? ("json" as const) : ("csv" as const),
            ...(opts.suppliers !== undefined
              ? {
                  suppliers: opts.suppliers
                    .split(",")
                    .map((s) => s.trim())
                    .filter((s) => s !== ""),
                }
              : {}),
          };
          if (opts.once) {
            const written = await produceDue(schedule, now());
            stdout.write(`${written.length} report file(s) written to ${dir}\n`);
            for (const f of written) stdout.write(`  ${path.relative(dir, f)}\n`);
          } else {
            stdout.write(`writing EMRR reports to ${dir} at each report's frequency; Ctrl-C stops\n`);
            await runSchedule(schedule, stopSignal(deps), now);
          }
          return;
        }
        if (ref === undefined) {
          throw new EcosError(
            "ECOS_CONFIG_INVALID",
            `name a report (${REPORTS.map((r) => r.ref).join(", ")}), or use --html or --schedule`,
          );
        }
        const def = reportDefinition(ref);
        if (opts.supplier === undefined)
          throw new EcosError("ECOS_CONFIG_INVALID", `${def.ref} needs --supplier <MPID>`);
        const period = resolvePeriod(def.frequency, now(), opts.from, opts.to);
        const result = await runReport(conn, def, { database: ch.database, supplier: opts.supplier, period });
        const meta = {
          report: def.ref,
          title: def.title,
          supplier: opts.supplier,
          from: period.from.toISOString(),
          to: period.to.toISOString(),
        };
        const text = render(
          result,
          opts.format,
          meta,
          `${def.ref} ${def.title} — ${opts.supplier} — ${periodLabel(period)}`,
        );
        if (opts.out !== undefined) {
          fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
          fs.writeFileSync(opts.out, text);
          stdout.write(`wrote ${result.rows.length} row(s) to ${opts.out}\n`);
        } else {
          stdout.write(text);
        }
      } finally {
        await conn.close();
      }
    },
  );

  const sql = program
    .command("sql")
    .argument("[query]", "the statement to run; without it, an interactive prompt")
    .description(
      "Analyst SQL against whichever ClickHouse is configured (tables and views: docs/clickhouse.md)",
    )
    .option(
      "--format <format>",
      "csv, json, table, or any ClickHouse output format (PrettyCompact, TSV, ...)",
      "table",
    );
  addClickHouseOptions(sql).action(
    async (query: string | undefined, opts: ClickHouseFlags & { format: string }) => {
      const { base, ch } = configs(env, opts);
      const conn = await openClickHouse(ch, consoleLogger(base.logLevel, stderr));
      try {
        if (query !== undefined) await runSql(conn, query, opts.format, stdout);
        else
          await prompt(
            conn,
            opts.format,
            deps.stdin ?? process.stdin,
            stdout,
            `ecos sql — ${conn.description}, database ${ch.database}`,
          );
      } finally {
        await conn.close();
      }
    },
  );

  const sink = program
    .command("sink")
    .description(
      "Run the ClickHouse sink: consume the event topics (docs/clickhouse.md) and store them, committing " +
        "offsets only after ClickHouse acknowledges. Runs until SIGINT/SIGTERM, then stores what it buffered.",
    )
    .option("--kafka <brokers>", "Kafka bootstrap brokers (default $ECOS_KAFKA_BROKERS)")
    .option("--registry <url>", "Confluent-compatible schema registry URL (default $ECOS_REGISTRY_URL)")
    .option("--group <id>", "consumer group (default $ECOS_SINK_GROUP_ID or ecos-clickhouse-sink)")
    .option(
      "--topic-prefix <prefix>",
      "read <prefix><topic> for every topic (docs/clickhouse.md, Topics and tables)",
    )
    .option("--create-topics", "create missing topics (3 partitions, replication $ECOS_REPLICATION_FACTOR)");
  addClickHouseOptions(sink).action(
    async (
      opts: ClickHouseFlags & {
        kafka?: string;
        registry?: string;
        group?: string;
        topicPrefix?: string;
        createTopics?: boolean;
      },
    ) => {
      const { base, ch } = configs(env, opts);
      if (base.kafkaBrokers.length === 0) {
        throw new EcosError(
          "ECOS_CONFIG_INVALID",
          "ecos sink needs Kafka: --kafka <brokers> or ECOS_KAFKA_BROKERS",
        );
      }
      if (base.registryUrl === undefined) {
        throw new EcosError(
          "ECOS_CONFIG_INVALID",
          "ecos sink needs a schema registry: --registry <url> or ECOS_REGISTRY_URL",
        );
      }
      const logger = consoleLogger(base.logLevel, stderr);
      const conn =
        ch.url === undefined
          ? new ChdbConnection(ch.chdbDir)
          : new ServerConnection({
              url: ch.url,
              ...(ch.username !== undefined ? { username: ch.username } : {}),
              ...(ch.password !== undefined ? { password: ch.password } : {}),
            });
      let rows = 0;
      let lastReport = Date.now();
      const sinkLoop = new KafkaClickHouseSink({
        brokers: base.kafkaBrokers,
        groupId: opts.group ?? ch.sinkGroupId,
        routes: defaultRoutes(
          new ConfluentSchemaRegistryClient({ host: base.registryUrl }),
          Object.fromEntries(
            Object.entries(SINK_TOPICS).map(([name, topic]) => [name, `${opts.topicPrefix ?? ""}${topic}`]),
          ),
        ),
        ...(opts.createTopics
          ? { createMissingTopics: { partitions: 3, replicationFactor: base.replicationFactor } }
          : {}),
        clickhouse: conn,
        database: ch.database,
        logger,
        batchRows: ch.batchRows,
        batchMs: ch.batchMs,
        maxRetries: ch.maxRetries,
        onFlush: (f) => {
          rows += f.rows;
          if (Date.now() - lastReport >= 10_000) {
            lastReport = Date.now();
            logger.info("ClickHouse sink progress", {
              rowsStored: rows,
              deadLettered: sinkLoop.writer.totals.deadLettered,
            });
          }
        },
      });
      try {
        await sinkLoop.start();
        stdout.write(`ClickHouse sink running: ${conn.description}, database ${ch.database}; Ctrl-C stops\n`);
        const signal = stopSignal(deps);
        const stopped = new Promise<void>((r) => signal.addEventListener("abort", () => r()));
        const failed = sinkLoop.waitForFailure();
        const outcome = await Promise.race([stopped.then(() => undefined), failed]);
        await sinkLoop.stop();
        if (outcome) throw outcome;
        stdout.write(
          `stopped: ${sinkLoop.writer.totals.rows} row(s) stored, ${sinkLoop.writer.totals.deadLettered} dead-lettered\n`,
        );
      } finally {
        await conn.close();
      }
    },
  );
}
