/**
 * ClickHouse configuration of the `ecos` commands that use it (sink, report, sql), parsed once at the
 * edge into a typed, validated, frozen object like deploy/config/config.ts. Every field, its variable
 * and its default are in CLICKHOUSE_FIELDS, which docs/clickhouse.md must mirror (a unit test checks).
 */
import * as path from "node:path";
import { EcosError } from "../../processors/runtime/errors";
import type { ConfigField } from "./config";

export interface ClickHouseConfig {
  /** ClickHouse server HTTP URL; undefined means embedded chDB in chdbDir. */
  readonly url: string | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly database: string;
  readonly chdbDir: string;
  readonly sinkGroupId: string;
  readonly batchRows: number;
  readonly batchMs: number;
  readonly maxRetries: number;
  readonly reportsDir: string;
}

export const CLICKHOUSE_FIELDS: readonly ConfigField[] = [
  {
    env: "ECOS_CLICKHOUSE_URL",
    defaultValue: "(unset)",
    doc: "ClickHouse server HTTP interface, e.g. http://127.0.0.1:18123. Unset: embedded chDB in ECOS_CHDB_DIR.",
  },
  {
    env: "ECOS_CLICKHOUSE_USER",
    defaultValue: "(unset)",
    doc: "User for the server (its default user when unset).",
  },
  {
    env: "ECOS_CLICKHOUSE_PASSWORD",
    defaultValue: "(unset)",
    doc: "Password for the server user; never logged.",
  },
  {
    env: "ECOS_CLICKHOUSE_DATABASE",
    defaultValue: "ecos",
    doc: "Database of the sink's tables and views (created, and migrated, at start).",
  },
  {
    env: "ECOS_CHDB_DIR",
    defaultValue: "<ECOS_STATE_DIR>/clickhouse",
    doc: "Data folder of embedded chDB; one process at a time may open it.",
  },
  {
    env: "ECOS_SINK_GROUP_ID",
    defaultValue: "ecos-clickhouse-sink",
    doc: "Consumer group of the ClickHouse sink (its committed offsets).",
  },
  {
    env: "ECOS_SINK_BATCH_ROWS",
    defaultValue: "10000",
    doc: "The sink flushes when this many rows are buffered.",
  },
  {
    env: "ECOS_SINK_BATCH_MS",
    defaultValue: "1000",
    doc: "... or when the oldest buffered row has waited this many milliseconds.",
  },
  {
    env: "ECOS_SINK_MAX_RETRIES",
    defaultValue: "10",
    doc: "Retries of a transient ClickHouse failure (backoff 200 ms doubling to 10 s) before the sink stops.",
  },
  {
    env: "ECOS_REPORTS_DIR",
    defaultValue: ".local/reports",
    doc: "Where `ecos report --schedule` writes report files.",
  },
];

function positiveInt(env: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `${env}=${JSON.stringify(value)} is not valid: expected a positive integer`,
    );
  }
  return n;
}

/** Builds the ClickHouse configuration from the environment and flags (named like the fields). */
export function loadClickHouseConfig(
  env: Readonly<Record<string, string | undefined>>,
  flags: Partial<Record<keyof ClickHouseConfig, string>>,
  stateDir: string,
  root = process.cwd(),
): Readonly<ClickHouseConfig> {
  const get = (key: keyof ClickHouseConfig, name: string): string | undefined => flags[key] ?? env[name];
  const url = get("url", "ECOS_CLICKHOUSE_URL")?.trim();
  if (url !== undefined && url !== "" && !/^https?:\/\/[^\s/]+(\/.*)?$/.test(url)) {
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `ECOS_CLICKHOUSE_URL=${JSON.stringify(url)} is not valid: expected an http(s) URL`,
    );
  }
  const database = get("database", "ECOS_CLICKHOUSE_DATABASE") ?? "ecos";
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(database)) {
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `ECOS_CLICKHOUSE_DATABASE=${JSON.stringify(database)} is not valid: expected letters, digits and _`,
    );
  }
  const chdb = get("chdbDir", "ECOS_CHDB_DIR");
  const user = get("username", "ECOS_CLICKHOUSE_USER");
  const password = get("password", "ECOS_CLICKHOUSE_PASSWORD");
  return Object.freeze({
    url: url === undefined || url === "" ? undefined : url.replace(/\/+$/, ""),
    username: user === undefined || user === "" ? undefined : user,
    password: password === undefined || password === "" ? undefined : password,
    database,
    chdbDir: chdb === undefined || chdb === "" ? path.join(stateDir, "clickhouse") : path.resolve(root, chdb),
    sinkGroupId: get("sinkGroupId", "ECOS_SINK_GROUP_ID") ?? "ecos-clickhouse-sink",
    batchRows: positiveInt("ECOS_SINK_BATCH_ROWS", get("batchRows", "ECOS_SINK_BATCH_ROWS") ?? "10000"),
    batchMs: positiveInt("ECOS_SINK_BATCH_MS", get("batchMs", "ECOS_SINK_BATCH_MS") ?? "1000"),
    maxRetries: positiveInt("ECOS_SINK_MAX_RETRIES", get("maxRetries", "ECOS_SINK_MAX_RETRIES") ?? "10"),
    reportsDir: path.resolve(root, get("reportsDir", "ECOS_REPORTS_DIR") ?? ".local/reports"),
  });
}
