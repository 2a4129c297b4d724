/**
 * Versioned DDL migrations, applied at start by the sink (and by `ecos report`/`ecos sql` on an empty
 * target). Applied versions are recorded in `<db>.schema_migrations` with a checksum of their statements;
 * a recorded migration whose statements changed since, or a version this code does not know (a newer
 * release wrote the database), stops the start with ECOS_CLICKHOUSE_MIGRATION. To change the schema,
 * append a migration; never edit one that has shipped.
 *
 * Every statement is idempotent (IF NOT EXISTS; reference rows land in ReplacingMergeTree tables read
 * with FINAL), so a migration interrupted half-way, or two instances starting at the same moment,
 * re-apply it harmlessly. An ALTER cannot say IF NOT EXISTS on the ClickHouse 18.16 server, so such a
 * migration has a `done` query that tells whether its change is already in place.
 */
import { createHash } from "node:crypto";
import { EcosError } from "../../runtime/errors";
import type { Logger } from "../../runtime/logger";
import { checkIdentifier, stringLiteral, type ClickHouseConnection } from "./connection";
import { messageOf } from "./failures";
import {
  eventTablesDdl,
  referenceDataDdl,
  serviceResponsesBySubmissionDdl,
  serviceResponsesBySubmissionDone,
  viewsDdl,
} from "./tables";

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** The statements for database `db`. */
  statements(db: string): string[];
  /**
   * A query answering one number: above 0 when the migration's change is already in place (an
   * ALTER that ran before the migration could be recorded), so its statements are not run again.
   */
  done?(db: string): string;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "event tables", statements: eventTablesDdl },
  {
    version: 2,
    name: "reference data: target response times, responsible supplier rules",
    statements: referenceDataDdl,
  },
  { version: 3, name: "views for analysts and reports", statements: viewsDdl },
  {
    version: 4,
    name: "service responses: one row per submission (a replay's refusal no longer replaces the original's response)",
    statements: serviceResponsesBySubmissionDdl,
    done: serviceResponsesBySubmissionDone,
  },
];

/** The table recording applied migrations. */
export const MIGRATIONS_TABLE = "schema_migrations";

/** Checksum of a migration's statements, independent of the database name. */
export function migrationChecksum(m: Migration): string {
  return createHash("sha256").update(m.statements("ecos_checksum").join("\n;\n")).digest("hex").slice(0, 16);
}

export interface MigrationOutcome {
  readonly applied: number[];
  readonly alreadyApplied: number[];
}

/** Creates the database if needed and applies every pending migration in order. */
export async function migrate(
  conn: ClickHouseConnection,
  database: string,
  logger?: Logger,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationOutcome> {
  const db = checkIdentifier(database);
  const fail = (message: string, cause?: unknown): EcosError =>
    new EcosError("ECOS_CLICKHOUSE_MIGRATION", message, {
      ...(cause !== undefined ? { cause } : {}),
      context: { database: db, target: conn.description },
    });
  try {
    await conn.exec(`CREATE DATABASE IF NOT EXISTS ${db}`);
    await conn.exec(
      `CREATE TABLE IF NOT EXISTS ${db}.${MIGRATIONS_TABLE} (version UInt32, name String, checksum String, applied_at DateTime('UTC')) ENGINE = ReplacingMergeTree ORDER BY version`,
    );
  } catch (err) {
    throw new EcosError(
      "ECOS_CLICKHOUSE_FAILED",
      `cannot prepare ${db} on ${conn.description}: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  const recorded = await conn.query(
    `SELECT version, checksum FROM ${db}.${MIGRATIONS_TABLE} FINAL ORDER BY version`,
  );
  const applied = new Map<number, string>();
  for (const [version, checksum] of recorded.rows) applied.set(Number(version), String(checksum));
  const known = new Set(migrations.map((m) => m.version));
  for (const v of applied.keys()) {
    if (!known.has(v)) {
      throw fail(
        `${db} has migration ${v}, which this version of ecos-stream does not know: the database was written by a newer release`,
      );
    }
  }
  const outcome: MigrationOutcome = { applied: [], alreadyApplied: [] };
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    const checksum = migrationChecksum(m);
    const previous = applied.get(m.version);
    if (previous !== undefined) {
      if (previous !== checksum) {
        throw fail(
          `migration ${m.version} (${m.name}) was applied to ${db} with checksum ${previous}, but this version's statements have checksum ${checksum}: a shipped migration was edited; add a new one instead`,
        );
      }
      outcome.alreadyApplied.push(m.version);
      continue;
    }
    const done = m.done ? Number((await conn.query(m.done(db))).rows[0]?.[0] ?? 0) > 0 : false;
    for (const statement of done ? [] : m.statements(db)) {
      try {
        await conn.exec(statement);
      } catch (err) {
        throw fail(
          `migration ${m.version} (${m.name}) failed on ${conn.description}: ${messageOf(err)}`,
          err,
        );
      }
    }
    await conn.exec(
      `INSERT INTO ${db}.${MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES (${m.version}, ${stringLiteral(m.name)}, ${stringLiteral(checksum)}, now())`,
    );
    outcome.applied.push(m.version);
    logger?.info("ClickHouse migration applied", { database: db, version: m.version, name: m.name });
  }
  return outcome;
}
