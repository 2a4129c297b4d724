/**
 * Configuration, parsed once at the edge (the CLI) into a typed, validated, frozen object. Nothing
 * below the edge reads process.env. Every field, its variable and its default are listed in
 * CONFIG_FIELDS, which docs/configuration.md must mirror (a unit test checks).
 */
import * as path from "node:path";
import type { FailureAction } from "../../processors/runtime/api";
import { EcosError } from "../../processors/runtime/errors";
import type { LogLevel } from "../../processors/runtime/logger";
import { DEFAULT_DEAD_LETTER_TOPIC } from "../../processors/runtime/topics";

export interface EcosConfig {
  /** Kafka bootstrap brokers; empty means the embedded in-process driver. */
  readonly kafkaBrokers: readonly string[];
  readonly applicationId: string;
  /** Confluent-compatible schema registry base URL; undefined means the in-memory registry. */
  readonly registryUrl: string | undefined;
  readonly stateDir: string;
  readonly logLevel: LogLevel;
  readonly onFailure: FailureAction;
  readonly deadLetterTopic: string;
  readonly replicationFactor: number;
  readonly connectTimeoutMs: number;
}

export interface ConfigField {
  readonly env: string;
  readonly defaultValue: string;
  readonly doc: string;
}

/** The documented surface: one row per environment variable. */
export const CONFIG_FIELDS: readonly ConfigField[] = [
  {
    env: "ECOS_KAFKA_BROKERS",
    defaultValue: "(unset)",
    doc: "Comma-separated Kafka bootstrap brokers. Unset: the embedded in-process driver.",
  },
  {
    env: "ECOS_APPLICATION_ID",
    defaultValue: "ecos-stream",
    doc: "Consumer group id and prefix of changelog and internal topics.",
  },
  {
    env: "ECOS_REGISTRY_URL",
    defaultValue: "(unset)",
    doc: "Confluent-compatible schema registry URL (Apicurio: .../apis/ccompat/v7). Unset: in-memory registry.",
  },
  {
    env: "ECOS_STATE_DIR",
    defaultValue: ".local/state",
    doc: "Folder for on-disk (LMDB) state stores and embedded ClickHouse data.",
  },
  { env: "ECOS_LOG_LEVEL", defaultValue: "info", doc: "debug, info, warn or error." },
  {
    env: "ECOS_ON_FAILURE",
    defaultValue: "continue",
    doc: "Per-record failure handling: continue (dead-letter and go on) or fail (stop).",
  },
  {
    env: "ECOS_DEAD_LETTER_TOPIC",
    defaultValue: DEFAULT_DEAD_LETTER_TOPIC,
    doc: "Topic for records that cannot be decoded or processed, with the reason in headers.",
  },
  {
    env: "ECOS_REPLICATION_FACTOR",
    defaultValue: "1",
    doc: "Replication factor of topics the driver creates (3 on a production cluster).",
  },
  {
    env: "ECOS_CONNECT_TIMEOUT_MS",
    defaultValue: "60000",
    doc: "How long to retry reaching Kafka at start before failing with ECOS_BROKER_UNAVAILABLE.",
  },
];

function invalid(env: string, value: string, expected: string): EcosError {
  return new EcosError(
    "ECOS_CONFIG_INVALID",
    `${env}=${JSON.stringify(value)} is not valid: expected ${expected}`,
  );
}

function oneOf<T extends string>(env: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw invalid(env, value, allowed.join(" | "));
}

function positiveInt(env: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw invalid(env, value, "a positive integer");
  return n;
}

/**
 * Builds the configuration from environment variables, with CLI flags (already named like the
 * fields) taking precedence. `root` anchors relative folders (the repository or working folder).
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  flags: Partial<Record<keyof EcosConfig, string>> = {},
  root = process.cwd(),
): Readonly<EcosConfig> {
  const get = (key: keyof EcosConfig, name: string, def: string): string => flags[key] ?? env[name] ?? def;
  const brokers = get("kafkaBrokers", "ECOS_KAFKA_BROKERS", "")
    .split(",")
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  for (const b of brokers) {
    if (!/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/.test(b)) throw invalid("ECOS_KAFKA_BROKERS", b, "host:port");
  }
  const registry = get("registryUrl", "ECOS_REGISTRY_URL", "");
  if (registry !== "" && !/^https?:\/\//.test(registry))
    throw invalid("ECOS_REGISTRY_URL", registry, "an http(s) URL");
  const applicationId = get("applicationId", "ECOS_APPLICATION_ID", "ecos-stream");
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(applicationId)) {
    throw invalid("ECOS_APPLICATION_ID", applicationId, "letters, digits, '.', '_' or '-'");
  }
  return Object.freeze({
    kafkaBrokers: Object.freeze(brokers),
    applicationId,
    registryUrl: registry === "" ? undefined : registry,
    stateDir: path.resolve(root, get("stateDir", "ECOS_STATE_DIR", ".local/state")),
    logLevel: oneOf("ECOS_LOG_LEVEL", get("logLevel", "ECOS_LOG_LEVEL", "info"), [
      "debug",
      "info",
      "warn",
      "error",
    ] as const),
    onFailure: oneOf("ECOS_ON_FAILURE", get("onFailure", "ECOS_ON_FAILURE", "continue"), [
      "continue",
      "fail",
    ] as const),
    deadLetterTopic: get("deadLetterTopic", "ECOS_DEAD_LETTER_TOPIC", DEFAULT_DEAD_LETTER_TOPIC),
    replicationFactor: positiveInt(
      "ECOS_REPLICATION_FACTOR",
      get("replicationFactor", "ECOS_REPLICATION_FACTOR", "1"),
    ),
    connectTimeoutMs: positiveInt(
      "ECOS_CONNECT_TIMEOUT_MS",
      get("connectTimeoutMs", "ECOS_CONNECT_TIMEOUT_MS", "60000"),
    ),
  });
}
