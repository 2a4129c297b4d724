/**
 * `ecos sim`: the device simulator and the S1SP simulator against a Kafka cluster (issue 5 items 4
 * and 7). Flags and environment are parsed here, at the edge, into the simulators' frozen
 * configuration (deploy/sim/config.ts); nothing below reads the environment. docs/simulators.md
 * describes every flag.
 *
 * main.ts adds it with `registerSimCommand(program)`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { cosTopics } from "../../processors/cos/records";
import { cosAvroSerdes } from "../../processors/cos/serdes";
import { EcosError } from "../../processors/runtime/errors";
import { consoleLogger } from "../../processors/runtime/logger";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import { loadConfig } from "../config/config";
import { readCertificates } from "./check";
import { parseCertificate } from "../../workers/smki/certificate";
import {
  DEFAULT_DEVICE_PROFILE,
  DEFAULT_S1SP_PROFILE,
  INJECTABLE_STATUSES,
  perfectProfile,
  simulatorConfig,
  type BehaviourProfile,
  type InjectedStatus,
} from "../sim/config";
import { deviceKeyring, seededCredentials } from "../sim/credentials";
import { DeviceFleet } from "../sim/fleet";
import { seededInventory, splitInventory } from "../sim/inventory";
import { jsonSimSerdes, SimulatorProcess, type SimSummary } from "../sim/process";
import { parseLatency, type LatencySpec } from "../sim/random";
import { S1spSimulator } from "../sim/s1sp";
import { loadStateFile } from "../sim/state-file";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function rate(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError("expected a rate between 0 and 1");
  return n;
}

function latency(value: string): LatencySpec {
  try {
    return parseLatency(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** `resourcesBusy=0.01,other=0.002` */
function failures(value: string): Partial<Record<InjectedStatus, number>> {
  const out: Partial<Record<InjectedStatus, number>> = {};
  for (const part of value.split(",").filter((p) => p.trim() !== "")) {
    const [k, v] = part.split("=", 2).map((s) => s.trim());
    if (!k || v === undefined || !(INJECTABLE_STATUSES as readonly string[]).includes(k))
      throw new InvalidArgumentError(
        `expected status=rate pairs, statuses ${INJECTABLE_STATUSES.join(", ")}`,
      );
    out[k as InjectedStatus] = rate(v);
  }
  return out;
}

export interface SimFlags {
  brokers?: string;
  registry?: string;
  jsonRecords?: boolean;
  devices: number;
  seed: string;
  latency?: LatencySpec;
  loss?: number;
  timeoutRate?: number;
  lateLatency?: LatencySpec;
  failures?: Partial<Record<InjectedStatus, number>>;
  s1spLatency?: LatencySpec;
  s1spLoss?: number;
  s1spFailures?: Partial<Record<InjectedStatus, number>>;
  profiles?: string;
  perfect?: boolean;
  topicPrefix: string;
  group?: string;
  state?: string | false;
  fromBeginning?: boolean;
  createTopics?: number;
  summaryJson?: boolean;
  ecosCert?: string;
  tcosCert?: string;
  s1spTrust?: string[];
}

/** The one certificate of a file (PEM or DER). */
function oneCertificate(file: string, what: string): Buffer {
  const certs = readCertificates(file);
  if (certs.length !== 1)
    throw new EcosError("ECOS_CONFIG_INVALID", `${what} ${file} holds ${certs.length} certificates, not 1`);
  return Buffer.from(certs[0]!);
}

/** Profiles file: `{ "default": {...}, "models": { "M1": {...} }, "s1sp": {...} }`, each a BehaviourProfile. */
interface ProfilesFile {
  default?: Partial<BehaviourProfile>;
  models?: Record<string, Partial<BehaviourProfile>>;
  s1sp?: Partial<BehaviourProfile>;
}

function profileWith(base: BehaviourProfile, o: Partial<BehaviourProfile>): BehaviourProfile {
  return { ...base, ...o };
}

export function formatSummary(s: SimSummary): string {
  const by = (r: Record<string, number>): string =>
    Object.entries(r)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(" ") || "-";
  return [
    `devices ${s.devices} (SMETS2), ${s.s1spDevices} behind the S1SP`,
    `device commands ${s.deviceCommands}: answered ${by(s.device.answered)}; lost ${s.device.lost}, late ${s.device.late}, injected failures ${s.device.injectedFailures}, unknown device ${s.device.unknownDevice}`,
    `S1SP requests ${s.s1spRequests}: answered ${by(s.s1sp.answered)}; lost ${s.s1sp.lost}, late ${s.s1sp.late}, injected failures ${s.s1sp.injectedFailures}`,
    `responses produced ${s.responsesProduced}, produce failures ${s.produceFailures}, undecodable records ${s.undecodable}, unsent at stop ${s.unsentAtStop}`,
  ].join("\n");
}

export interface SimCommandIo {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
  /** Stops the simulators (default: SIGINT or SIGTERM). */
  readonly signal?: AbortSignal;
}

/** Adds `sim` to the `ecos` program. */
export function registerSimCommand(program: Command, io: SimCommandIo = {}): Command {
  return program
    .command("sim")
    .description(
      "Run the device simulator (SMETS2+ devices answering device.commands) and the S1SP simulator " +
        "(s1sp.requests) against a Kafka cluster; answers go to device.responses at their simulated time. " +
        "Runs until SIGINT/SIGTERM, then prints a summary. See docs/simulators.md.",
    )
    .option("--brokers <list>", "Kafka bootstrap brokers, comma-separated (default $ECOS_KAFKA_BROKERS)")
    .option("--registry <url>", "Confluent-compatible schema registry URL (default $ECOS_REGISTRY_URL)")
    .option("--json-records", "read and write the CoS records as JSON instead of Avro (tests; no registry)")
    .option(
      "--devices <n>",
      "inventory size: devices generated as bench/dsp-load.ts does (10% SMETS1)",
      positiveInt,
      2000,
    )
    .option("--seed <s>", "seed of the test PKI, the inventory and every random draw", "ecos-stream-test-pki")
    .option(
      "--latency <spec>",
      "device answer latency: lognormal:p50=<ms>,p99=<ms> | uniform:min=,max= | fixed:<ms>",
      latency,
    )
    .option("--loss <rate>", "share of device commands lost (no answer)", rate)
    .option("--timeout-rate <rate>", "share of device answers that arrive late", rate)
    .option("--late-latency <spec>", "latency of a late answer", latency)
    .option("--failures <list>", "injected device failures, e.g. resourcesBusy=0.01,other=0.002", failures)
    .option("--s1sp-latency <spec>", "S1SP answer latency", latency)
    .option("--s1sp-loss <rate>", "share of S1SP requests lost", rate)
    .option("--s1sp-failures <list>", "injected S1SP failures (status=rate,...)", failures)
    .option(
      "--profiles <file>",
      "JSON file of per-model profiles: {default, models: {<DeviceModel>: {...}}, s1sp}",
    )
    .option("--perfect", "no loss, no late answers, no injected failures (latency still applies)")
    .option("--topic-prefix <p>", "prefix of the topic names", "")
    .option("--group <id>", "consumer group (default <application id>-sim)")
    .option("--state <file>", "state file (default <state dir>/sim/state.json)")
    .option("--no-state", "keep device state in memory only (floors reset at every start)")
    .option("--from-beginning", "a new consumer group reads the topics from the beginning (default: latest)")
    .option("--create-topics <partitions>", "create missing topics with this many partitions", positiveInt)
    .option("--summary-json", "print the final summary as one JSON line on stdout")
    .option(
      "--ecos-cert <file>",
      "the ECoS Party's transitionalCoS certificate for the cells (default: seeded)",
    )
    .option(
      "--tcos-cert <file>",
      "the TCoS Party's transitionalCoS certificate for the cells (default: seeded)",
    )
    .option(
      "--s1sp-trust <path>",
      "more certificates the S1SP knows (PEM/DER file or folder; self-signed ones become anchors); repeatable",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .action(async (flags: SimFlags) => {
      const env = io.env ?? process.env;
      const stdout = io.stdout ?? process.stdout;
      const config = loadConfig(env, {
        ...(flags.brokers !== undefined ? { kafkaBrokers: flags.brokers } : {}),
        ...(flags.registry !== undefined ? { registryUrl: flags.registry } : {}),
      });
      if (config.kafkaBrokers.length === 0)
        throw new EcosError("ECOS_CONFIG_INVALID", "ecos sim needs --brokers (or ECOS_KAFKA_BROKERS)");
      if (!flags.jsonRecords && config.registryUrl === undefined)
        throw new EcosError(
          "ECOS_CONFIG_INVALID",
          "ecos sim needs --registry (or ECOS_REGISTRY_URL), or --json-records",
        );
      const file: ProfilesFile = flags.profiles
        ? (JSON.parse(fs.readFileSync(flags.profiles, "utf8")) as ProfilesFile)
        : {};
      const flagged = (base: BehaviourProfile, f: Partial<BehaviourProfile>): BehaviourProfile =>
        flags.perfect ? { ...perfectProfile(), latency: f.latency ?? base.latency } : profileWith(base, f);
      const deviceFlags: Partial<BehaviourProfile> = {
        ...(flags.latency ? { latency: flags.latency } : {}),
        ...(flags.loss !== undefined ? { lossRate: flags.loss } : {}),
        ...(flags.timeoutRate !== undefined ? { timeoutRate: flags.timeoutRate } : {}),
        ...(flags.lateLatency ? { lateLatency: flags.lateLatency } : {}),
        ...(flags.failures ? { failureRates: flags.failures } : {}),
      };
      const s1spFlags: Partial<BehaviourProfile> = {
        ...(flags.s1spLatency ? { latency: flags.s1spLatency } : {}),
        ...(flags.s1spLoss !== undefined ? { lossRate: flags.s1spLoss } : {}),
        ...(flags.s1spFailures ? { failureRates: flags.s1spFailures } : {}),
      };
      const defaultModel = flagged(profileWith(DEFAULT_DEVICE_PROFILE, file.default ?? {}), deviceFlags);
      const models: Record<string, BehaviourProfile> = {};
      for (const [m, p] of Object.entries(file.models ?? {}))
        models[m] = flagged(profileWith(defaultModel, p), {});
      const simConfig = simulatorConfig({
        seed: `sim/${flags.seed}`,
        defaultModel,
        models,
        s1sp: flagged(profileWith(DEFAULT_S1SP_PROFILE, file.s1sp ?? {}), s1spFlags),
      });

      const logger = consoleLogger(config.logLevel, io.stderr ?? process.stderr);
      const ecdsa = opensslEcdsa;
      const seeded = seededCredentials(flags.seed);
      const creds = {
        ...seeded,
        ...(flags.ecosCert ? { ecosParty: oneCertificate(flags.ecosCert, "--ecos-cert") } : {}),
        ...(flags.tcosCert ? { tcosParty: oneCertificate(flags.tcosCert, "--tcos-cert") } : {}),
      };
      const extra = (flags.s1spTrust ?? []).flatMap((p) => readCertificates(p).map((c) => Buffer.from(c)));
      const selfSigned = (der: Buffer): boolean => {
        const c = parseCertificate(der);
        return c.issuer.der.equals(c.subject.der);
      };
      const stateFile =
        flags.state === false
          ? null
          : path.resolve(flags.state ?? path.join(config.stateDir, "sim", "state.json"));
      const saved = stateFile === null ? null : loadStateFile(stateFile, flags.seed);
      const initial = splitInventory(seededInventory(flags.devices, flags.seed), creds);
      // Saved devices keep their state; devices new to this inventory size start fresh.
      const merge = <T>(
        fresh: Array<[string, T]>,
        kept: Array<[string, T]> | undefined,
      ): Array<[string, T]> => {
        const m = new Map(fresh);
        for (const [id, d] of kept ?? []) m.set(id, d);
        return [...m];
      };
      const fleet = new DeviceFleet({
        config: simConfig,
        devices: merge(initial.fleet, saved?.fleet),
        ecdsa,
        deviceKey: deviceKeyring(flags.seed, ecdsa),
      });
      const s1sp = new S1spSimulator({
        config: simConfig,
        devices: merge(initial.s1sp, saved?.s1sp),
        trust: {
          anchors: [creds.root, ...extra.filter(selfSigned)],
          certificates: [creds.oca, ...creds.xmlSigners, ...extra.filter((c) => !selfSigned(c))],
        },
        ecdsa,
      });
      if (saved)
        logger.info("sim state restored", {
          file: stateFile,
          devices: saved.fleet.length + saved.s1sp.length,
        });
      const topics = cosTopics(flags.topicPrefix);
      const serdes = flags.jsonRecords
        ? jsonSimSerdes()
        : cosAvroSerdes(new ConfluentSchemaRegistryClient({ host: config.registryUrl! }));
      const sim = new SimulatorProcess({
        brokers: config.kafkaBrokers,
        topics,
        serdes,
        groupId: flags.group ?? `${config.applicationId}-sim`,
        fleet,
        s1sp,
        seed: flags.seed,
        stateFile,
        logger,
        fromBeginning: flags.fromBeginning ?? false,
        ...(flags.createTopics
          ? { createTopics: { partitions: flags.createTopics, replicationFactor: config.replicationFactor } }
          : {}),
      });
      const signal = io.signal ?? stopSignal();
      await sim.start();
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
      logger.info("sim stopping");
      const summary = await sim.stop();
      stdout.write(flags.summaryJson ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
    });
}

function stopSignal(): AbortSignal {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return ac.signal;
}
