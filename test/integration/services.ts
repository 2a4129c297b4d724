/**
 * Where the integration tests find the real services: Kafka, the schema registry (its
 * Confluent-compatible API) and a ClickHouse server.
 *
 * Jest's globalSetup (global-setup.ts) chooses them once per run, in this order, per service:
 *
 *   1. external services named by environment variables:
 *        ECOS_TEST_KAFKA_BROKERS    comma-separated host:port list
 *        ECOS_TEST_REGISTRY_URL     Confluent-compatible base URL (Apicurio: http://host:port/apis/ccompat/v7;
 *                                   Confluent Schema Registry: http://host:port)
 *        ECOS_TEST_CLICKHOUSE_URL   ClickHouse HTTP interface, e.g. http://127.0.0.1:8123
 *   2. otherwise containers through testcontainers, when a Docker engine answers;
 *   3. otherwise the local services of deploy/local (started with the same scripts a user runs).
 *
 * ECOS_TEST_PROVIDER=local or =testcontainers skips the Docker probe and forces step 2 or 3.
 * The choice is published to the test files in process.env (ECOS_TEST_SERVICES_JSON) and in
 * "$ECOS_LOCAL_DIR/test-services.json"; test files read it with testServices().
 * docs/local-infrastructure.md describes the whole arrangement.
 */
import { readFileSync } from "node:fs";
import path from "node:path";

/** Which provider supplied the services: all named externally, containers, or deploy/local. */
export type ServiceSource = "external" | "testcontainers" | "local";

/** The endpoints of the real services the integration tests use. */
export interface TestServices {
  /** Bootstrap brokers, "host:port". */
  kafkaBrokers: string[];
  /** Base URL of the Confluent-compatible registry API, e.g. http://127.0.0.1:18081/apis/ccompat/v7. */
  registryUrl: string;
  /** ClickHouse server HTTP interface, e.g. http://127.0.0.1:18123. */
  clickhouseUrl: string;
  /**
   * "external" when every service came from ECOS_TEST_* variables; otherwise the provider that
   * supplied the rest ("testcontainers" or "local").
   */
  source: ServiceSource;
}

/** Environment variable through which globalSetup hands the chosen services to the test files. */
export const SERVICES_ENV = "ECOS_TEST_SERVICES_JSON";

/** The repository root, derived from this file's location. */
export const REPO_DIR = path.resolve(__dirname, "..", "..");

/** The data folder of deploy/local (ECOS_LOCAL_DIR, default <repo>/.local). */
export function localDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.ECOS_LOCAL_DIR ?? path.join(REPO_DIR, ".local"));
}

/** The file in the data folder where globalSetup records the chosen services. */
export function servicesFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(localDir(env), "test-services.json");
}

/** The endpoints named by ECOS_TEST_* variables; a service without a variable is absent. */
export interface ExternalServices {
  kafkaBrokers?: string[];
  registryUrl?: string;
  clickhouseUrl?: string;
}

export function externalServices(env: NodeJS.ProcessEnv = process.env): ExternalServices {
  const out: ExternalServices = {};
  const brokers = (env.ECOS_TEST_KAFKA_BROKERS ?? "")
    .split(",")
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  if (brokers.length > 0) out.kafkaBrokers = brokers;
  const registry = env.ECOS_TEST_REGISTRY_URL?.trim();
  if (registry) out.registryUrl = stripSlash(registry);
  const clickhouse = env.ECOS_TEST_CLICKHOUSE_URL?.trim();
  if (clickhouse) out.clickhouseUrl = stripSlash(clickhouse);
  return out;
}

/** The endpoints of deploy/local's services for the ports in the environment (defaults as the scripts). */
export function localServices(env: NodeJS.ProcessEnv = process.env): TestServices {
  const kafka = port(env, "ECOS_KAFKA_PORT", 19092);
  const registry = port(env, "ECOS_REGISTRY_PORT", 18081);
  const clickhouse = port(env, "ECOS_CLICKHOUSE_HTTP_PORT", 18123);
  return {
    kafkaBrokers: [`127.0.0.1:${kafka}`],
    registryUrl: `http://127.0.0.1:${registry}/apis/ccompat/v7`,
    clickhouseUrl: `http://127.0.0.1:${clickhouse}`,
    source: "local",
  };
}

/**
 * The services chosen by globalSetup for this test run. Falls back to the ECOS_TEST_* variables
 * when all three are set, then to the file the last globalSetup wrote (for a test run without
 * globalSetup, e.g. from an editor). Throws with what to do when none is available.
 */
export function testServices(): TestServices {
  const fromEnv = process.env[SERVICES_ENV];
  if (fromEnv) return parseServices(fromEnv, SERVICES_ENV);
  const ext = externalServices();
  if (ext.kafkaBrokers && ext.registryUrl && ext.clickhouseUrl) {
    return {
      kafkaBrokers: ext.kafkaBrokers,
      registryUrl: ext.registryUrl,
      clickhouseUrl: ext.clickhouseUrl,
      source: "external",
    };
  }
  const file = servicesFile();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new Error(
      "No integration services chosen: run the tests through jest's integration project " +
        "(npx jest --selectProjects integration), whose globalSetup starts them, or set " +
        "ECOS_TEST_KAFKA_BROKERS, ECOS_TEST_REGISTRY_URL and ECOS_TEST_CLICKHOUSE_URL.",
    );
  }
  return parseServices(text, file);
}

/** Parses and checks the JSON form of TestServices (as written by globalSetup). */
export function parseServices(text: string, origin: string): TestServices {
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null) throw new Error(`${origin}: not a JSON object`);
  const v = value as Record<string, unknown>;
  const brokers = v.kafkaBrokers;
  if (
    !Array.isArray(brokers) ||
    brokers.length === 0 ||
    !brokers.every((b): b is string => typeof b === "string")
  ) {
    throw new Error(`${origin}: kafkaBrokers must be a non-empty list of host:port strings`);
  }
  if (typeof v.registryUrl !== "string") throw new Error(`${origin}: registryUrl must be a string`);
  if (typeof v.clickhouseUrl !== "string") throw new Error(`${origin}: clickhouseUrl must be a string`);
  const source = v.source;
  if (source !== "external" && source !== "testcontainers" && source !== "local") {
    throw new Error(`${origin}: source must be external, testcontainers or local`);
  }
  return { kafkaBrokers: brokers, registryUrl: v.registryUrl, clickhouseUrl: v.clickhouseUrl, source };
}

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`${name}=${raw} is not a TCP port number`);
  return n;
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, "");
}
