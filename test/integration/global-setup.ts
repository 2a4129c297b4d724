/**
 * Jest globalSetup of the "integration" project: chooses the real services (see services.ts for the
 * order), starts what is missing, waits until each answers, and publishes the endpoints to the test
 * files. global-teardown.ts stops only what this setup started.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import {
  REPO_DIR,
  SERVICES_ENV,
  externalServices,
  localServices,
  servicesFile,
  type ServiceSource,
  type TestServices,
} from "./services";

export type ServiceName = "kafka" | "registry" | "clickhouse";
const ALL_SERVICES: readonly ServiceName[] = ["kafka", "registry", "clickhouse"];

/** What setup started, handed to teardown through globalThis (jest runs both in one process). */
export interface SetupState {
  /** deploy/local services this run started (a start that failed half-way included). */
  localStarted: ServiceName[];
  /** Containers this run started. */
  containers: { name: string; stop(): Promise<unknown> }[];
  /** Where the chosen services were recorded. */
  file: string;
}
const STATE_KEY = "__ecosIntegrationServices";

export function setupState(): SetupState | undefined {
  return (globalThis as Record<string, unknown>)[STATE_KEY] as SetupState | undefined;
}

export function log(message: string): void {
  process.stdout.write(`[integration] ${message}\n`);
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const state: SetupState = { localStarted: [], containers: [], file: servicesFile() };
  (globalThis as Record<string, unknown>)[STATE_KEY] = state;

  const ext = externalServices();
  const missing = ALL_SERVICES.filter((name) => !isExternal(ext, name));
  for (const name of ALL_SERVICES) {
    if (isExternal(ext, name)) log(`${name}: external, from ECOS_TEST_* (${externalEndpoint(ext, name)})`);
  }

  let services: TestServices;
  try {
    if (missing.length === 0) {
      services = {
        kafkaBrokers: ext.kafkaBrokers!,
        registryUrl: ext.registryUrl!,
        clickhouseUrl: ext.clickhouseUrl!,
        source: "external",
      };
    } else {
      const provider = await chooseProvider();
      const provided =
        provider === "testcontainers"
          ? await startContainers(missing, state)
          : await startLocal(missing, state);
      services = {
        kafkaBrokers: ext.kafkaBrokers ?? provided.kafkaBrokers,
        registryUrl: ext.registryUrl ?? provided.registryUrl,
        clickhouseUrl: ext.clickhouseUrl ?? provided.clickhouseUrl,
        source: provider,
      };
    }
    await waitForAll(services, 60_000);
  } catch (err) {
    await stopStarted(state, "setup failed");
    throw err;
  }

  process.env[SERVICES_ENV] = JSON.stringify(services);
  mkdirSync(path.dirname(state.file), { recursive: true });
  writeFileSync(
    state.file,
    JSON.stringify({ ...services, writtenAt: new Date().toISOString() }, null, 2) + "\n",
  );
  log(
    `services ready in ${((Date.now() - started) / 1000).toFixed(1)}s (source ${services.source}): ` +
      `kafka ${services.kafkaBrokers.join(",")}, registry ${services.registryUrl}, clickhouse ${services.clickhouseUrl}`,
  );
}

/** Stops what setup started, in reverse order; used by teardown and by a failed setup. */
export async function stopStarted(state: SetupState, why: string): Promise<void> {
  if (process.env.ECOS_KEEP_SERVICES === "1") {
    const kept = [...state.localStarted, ...state.containers.map((c) => c.name)];
    if (kept.length > 0) log(`ECOS_KEEP_SERVICES=1: leaving ${kept.join(", ")} running (${why})`);
    return;
  }
  const stopping = state.containers.length + state.localStarted.length;
  for (const container of [...state.containers].reverse()) {
    log(`stopping container ${container.name} (${why})`);
    try {
      await container.stop();
    } catch (err) {
      log(`could not stop container ${container.name}: ${String(err)}`);
    }
  }
  state.containers = [];
  for (const name of [...state.localStarted].reverse()) {
    try {
      await runScript(name, "stop");
    } catch (err) {
      log(`could not stop ${name}: ${String(err)}`);
    }
  }
  state.localStarted = [];
  // The recorded endpoints are dead now; services this run only reused stay recorded.
  if (stopping > 0) rmSync(state.file, { force: true });
}

// ---- choosing a provider ---------------------------------------------------------------------

async function chooseProvider(): Promise<Exclude<ServiceSource, "external">> {
  const forced = process.env.ECOS_TEST_PROVIDER;
  if (forced === "local" || forced === "testcontainers") {
    log(`provider forced by ECOS_TEST_PROVIDER=${forced}`);
    return forced;
  }
  if (forced !== undefined && forced !== "") {
    throw new Error(`ECOS_TEST_PROVIDER=${forced}: expected "local" or "testcontainers"`);
  }
  if (!(await dockerAnswers())) {
    log("no Docker engine answers: using deploy/local");
    return "local";
  }
  if ((await loadTestcontainers()) === undefined) {
    log(
      "a Docker engine answers but the optional package testcontainers is not installed: using deploy/local",
    );
    return "local";
  }
  log("a Docker engine answers: using testcontainers");
  return "testcontainers";
}

/** True when a Docker engine answers GET /_ping within about a second. */
async function dockerAnswers(): Promise<boolean> {
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith("tcp://")) {
    const [hostname, portText] = host.slice("tcp://".length).split(":");
    return tcpConnects(hostname ?? "127.0.0.1", Number(portText ?? "2375"), 1000);
  }
  const sockets = host?.startsWith("unix://")
    ? [host.slice("unix://".length)]
    : [
        "/var/run/docker.sock",
        path.join(process.env.XDG_RUNTIME_DIR ?? `/run/user/${os.userInfo().uid}`, "docker.sock"),
        path.join(os.homedir(), ".docker", "run", "docker.sock"),
      ];
  for (const socketPath of sockets) {
    if (existsSync(socketPath) && (await pingDockerSocket(socketPath))) return true;
  }
  return false;
}

function pingDockerSocket(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: "/_ping", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

function tcpConnects(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

// ---- deploy/local ----------------------------------------------------------------------------

async function startLocal(missing: ServiceName[], state: SetupState): Promise<TestServices> {
  const local = localServices();
  // One after the other: on two cores, two JVMs starting together take longer than in turn.
  for (const name of missing) {
    if (await answers(name, local, 3000)) {
      // Started by someone else (a user's up.sh, another run with ECOS_KEEP_SERVICES=1, another
      // checkout): reuse it and leave it running.
      log(`${name}: already answering at ${endpoint(local, name)}; reusing it`);
      continue;
    }
    state.localStarted.push(name);
    await runScript(name, "start");
  }
  return local;
}

/** Runs deploy/local/<name>.sh <action>, its progress lines going to this process's output. */
export function runScript(name: ServiceName, action: "start" | "stop"): Promise<void> {
  const script = path.join(REPO_DIR, "deploy", "local", `${name}.sh`);
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script, action], {
      stdio: ["ignore", "inherit", "inherit"],
      env: process.env,
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`deploy/local/${name}.sh ${action} failed (${signal ?? `exit ${code}`})`));
    });
  });
}

// ---- testcontainers --------------------------------------------------------------------------

/** The part of the testcontainers API used here (the package is optional, so no type import). */
interface StartedContainer {
  getHost(): string;
  getMappedPort(port: number): number;
  copyContentToContainer(contents: { content: string; target: string; mode?: number }[]): Promise<void>;
  stop(): Promise<unknown>;
}
interface ContainerBuilder {
  withExposedPorts(...ports: number[]): ContainerBuilder;
  withEnvironment(env: Record<string, string>): ContainerBuilder;
  withEntrypoint(entrypoint: string[]): ContainerBuilder;
  withCommand(command: string[]): ContainerBuilder;
  withWaitStrategy(strategy: unknown): ContainerBuilder;
  withStartupTimeout(ms: number): ContainerBuilder;
  start(): Promise<StartedContainer>;
}
interface TestcontainersModule {
  GenericContainer: new (image: string) => ContainerBuilder;
  Wait: {
    forLogMessage(message: string): unknown;
    forHttp(path: string, port: number): { forStatusCode(code: number): unknown };
  };
}

async function loadTestcontainers(): Promise<TestcontainersModule | undefined> {
  // A variable module name keeps the optional package out of the type check.
  const name = "testcontainers";
  try {
    return (await import(name)) as TestcontainersModule;
  } catch {
    return undefined;
  }
}

async function startContainers(missing: ServiceName[], state: SetupState): Promise<TestServices> {
  const tc = await loadTestcontainers();
  if (tc === undefined) throw new Error("the optional package testcontainers is not installed (npm ci)");
  const out: TestServices = {
    kafkaBrokers: [],
    registryUrl: "",
    clickhouseUrl: "",
    source: "testcontainers",
  };
  const env = process.env;
  const startOne = async (name: ServiceName): Promise<void> => {
    const t0 = Date.now();
    if (name === "kafka") {
      // The broker must advertise the host's mapped port, known only once the container runs: the
      // container waits for a file with that listener, as testcontainers' own Kafka module does.
      // Inter-broker traffic (transaction markers) uses a separate in-container listener.
      const image = env.ECOS_TEST_KAFKA_IMAGE ?? "apache/kafka:4.1.1";
      const container = await new tc.GenericContainer(image)
        .withExposedPorts(9092)
        .withEnvironment({
          CLUSTER_ID: kafkaClusterId(),
          KAFKA_NODE_ID: "1",
          KAFKA_PROCESS_ROLES: "broker,controller",
          KAFKA_LISTENERS: "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9094,CONTROLLER://0.0.0.0:9093",
          KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
          KAFKA_INTER_BROKER_LISTENER_NAME: "BROKER",
          KAFKA_CONTROLLER_LISTENER_NAMES: "CONTROLLER",
          KAFKA_CONTROLLER_QUORUM_VOTERS: "1@localhost:9093",
          KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: "1",
          KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: "1",
          KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: "1",
          KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: "0",
          KAFKA_AUTO_CREATE_TOPICS_ENABLE: "false",
        })
        .withEntrypoint(["sh", "-c"])
        .withCommand([
          "echo ecos-waiting-for-listener; while [ ! -f /tmp/ecos-kafka.env ]; do sleep 0.1; done; " +
            ". /tmp/ecos-kafka.env; exec /etc/kafka/docker/run",
        ])
        .withWaitStrategy(tc.Wait.forLogMessage("ecos-waiting-for-listener"))
        .withStartupTimeout(180_000)
        .start();
      state.containers.push({ name: `kafka (${image})`, stop: () => container.stop() });
      const broker = `${container.getHost()}:${container.getMappedPort(9092)}`;
      await container.copyContentToContainer([
        {
          content: `export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://${broker},BROKER://localhost:9094\n`,
          target: "/tmp/ecos-kafka.env",
          mode: 0o644,
        },
      ]);
      out.kafkaBrokers = [broker];
      await waitFor("kafka", () => kafkaAnswers(out.kafkaBrokers, 3000), 180_000);
    } else if (name === "registry") {
      const image = env.ECOS_TEST_REGISTRY_IMAGE ?? "apicurio/apicurio-registry:3.3.3";
      const container = await new tc.GenericContainer(image)
        .withExposedPorts(8080)
        .withWaitStrategy(tc.Wait.forHttp("/apis/registry/v3/system/info", 8080).forStatusCode(200))
        .withStartupTimeout(180_000)
        .start();
      state.containers.push({ name: `registry (${image})`, stop: () => container.stop() });
      out.registryUrl = `http://${container.getHost()}:${container.getMappedPort(8080)}/apis/ccompat/v7`;
    } else {
      const image = env.ECOS_TEST_CLICKHOUSE_IMAGE ?? "clickhouse/clickhouse-server:25.8";
      const container = await new tc.GenericContainer(image)
        .withExposedPorts(8123)
        // Recent images refuse a password-less "default" user over the network unless told not to.
        .withEnvironment({ CLICKHOUSE_SKIP_USER_SETUP: "1" })
        .withWaitStrategy(tc.Wait.forHttp("/ping", 8123).forStatusCode(200))
        .withStartupTimeout(180_000)
        .start();
      state.containers.push({ name: `clickhouse (${image})`, stop: () => container.stop() });
      out.clickhouseUrl = `http://${container.getHost()}:${container.getMappedPort(8123)}`;
    }
    log(`${name}: container ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  };
  const results = await Promise.allSettled(missing.map(startOne));
  const failed = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
  if (failed.length > 0)
    throw new Error(`testcontainers could not start every service: ${failed.map(String).join("; ")}`);
  return out;
}

/** A KRaft cluster id: 16 random bytes, base64url, not starting with "-" (as Kafka's own). */
function kafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

// ---- health ----------------------------------------------------------------------------------

function answers(name: ServiceName, services: TestServices, timeoutMs: number): Promise<boolean> {
  switch (name) {
    case "kafka":
      return kafkaAnswers(services.kafkaBrokers, timeoutMs);
    case "registry":
      return httpAnswers(`${services.registryUrl}/subjects`, timeoutMs, (status) => status === 200);
    case "clickhouse":
      return httpAnswers(
        `${services.clickhouseUrl}/ping`,
        timeoutMs,
        (status, body) => status === 200 && body.trim() === "Ok.",
      );
  }
}

/** True when the brokers answer a metadata request and list at least one broker. */
export async function kafkaAnswers(brokers: string[], timeoutMs: number): Promise<boolean> {
  const admin = new Kafka({
    clientId: "ecos-integration-probe",
    brokers,
    connectionTimeout: Math.min(timeoutMs, 1000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function httpAnswers(
  url: string,
  timeoutMs: number,
  ok: (status: number, body: string) => boolean,
): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return ok(res.status, await res.text());
  } catch {
    return false;
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not answer within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Every chosen service answers (external ones included, so a wrong URL fails here, clearly). */
async function waitForAll(services: TestServices, timeoutMs: number): Promise<void> {
  await Promise.all(
    ALL_SERVICES.map((name) =>
      waitFor(`${name} at ${endpoint(services, name)}`, () => answers(name, services, 3000), timeoutMs),
    ),
  );
}

function endpoint(services: TestServices, name: ServiceName): string {
  if (name === "kafka") return services.kafkaBrokers.join(",");
  return name === "registry" ? services.registryUrl : services.clickhouseUrl;
}

function isExternal(ext: ReturnType<typeof externalServices>, name: ServiceName): boolean {
  if (name === "kafka") return ext.kafkaBrokers !== undefined;
  return name === "registry" ? ext.registryUrl !== undefined : ext.clickhouseUrl !== undefined;
}

function externalEndpoint(ext: ReturnType<typeof externalServices>, name: ServiceName): string {
  if (name === "kafka") return (ext.kafkaBrokers ?? []).join(",");
  return (name === "registry" ? ext.registryUrl : ext.clickhouseUrl) ?? "";
}
