/**
 * DSP commands: `ecos load registration|inventory <csv>`, `ecos submit <files...>` and `ecos serve`.
 *
 * - load: strict CSV → SupplierRegistration / DeviceSnapshot records (Avro through the registry) on
 *   registration.changes / inventory.devices, keyed by MPxN / device id. Without Kafka (`--dry-run`
 *   or no brokers configured) the file is only checked and counted.
 * - submit: POSTs each file to an ingest endpoint (`--url`), or writes it straight to duis.requests
 *   (`--kafka`); one JSON line per file.
 * - serve: the HTTP ingest endpoint (duis.requests on Kafka); with `--validate` the dsp-validate
 *   topology runs in the same process on the Kafka driver with its worker pool.
 *
 * Flags are parsed here, at the edge, with deploy/config/config.ts; nothing below reads the environment.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { Kafka, logLevel } from "kafkajs";
import { parseInventoryCsv, parseRegistrationCsv, parseUsersCsv } from "../../processors/dsp/csv";
import { dspAvroSerdes } from "../../processors/dsp/serdes";
import { buildDspValidateTopology, dspTopics, sniffRequestId } from "../../processors/dsp/topology";
import type { DspSigningCredential } from "../../processors/dsp/verifier";
import { EcosError } from "../../processors/runtime/errors";
import { KafkaDriver } from "../../processors/runtime/kafka-driver";
import { consoleLogger } from "../../processors/runtime/logger";
import { partitionForKey } from "../../processors/runtime/partitioner";
import type { Serde } from "../../processors/runtime/serde";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import { DspWorkerPool } from "../../workers/dsp-pool";
import type { TrustStoreConfig } from "../../workers/smki/trust";
import { buildSrv623Cast } from "../../workers/testing/test-pki";
import { loadConfig, type EcosConfig } from "../config/config";
import { KafkaRequestLog, startIngestServer } from "../dsp/ingest";

export interface DspCommandIo {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly out?: (text: string) => void;
  readonly now?: () => number;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new EcosError("ECOS_REFERENCE_DATA_INVALID", `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Every certificate in PEM files or folders of them (.pem, .crt, .cer). */
export function readPemCertificates(paths: readonly string[]): Buffer[] {
  const files = paths.flatMap((p) =>
    fs.statSync(p).isDirectory()
      ? fs
          .readdirSync(p)
          .filter((f) => /\.(pem|crt|cer)$/i.test(f))
          .map((f) => path.join(p, f))
      : [p],
  );
  const out: Buffer[] = [];
  for (const f of files) {
    const text = fs.readFileSync(f, "utf8");
    for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g))
      out.push(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
  }
  return out;
}

/** The 32-byte scalar of a P-256 private key in PEM (PKCS#8 or SEC1). */
export function scalarOfPemKey(pem: string): Buffer {
  const jwk = crypto.createPrivateKey(pem).export({ format: "jwk" });
  if (jwk.crv !== "P-256" || !jwk.d)
    throw new EcosError("ECOS_CONFIG_INVALID", "the DSP key is not a P-256 private key");
  return Buffer.from(jwk.d, "base64url");
}

function config(
  io: DspCommandIo,
  flags: { kafka?: string; registry?: string; applicationId?: string },
): Readonly<EcosConfig> {
  return loadConfig(io.env ?? process.env, {
    ...(flags.kafka !== undefined ? { kafkaBrokers: flags.kafka } : {}),
    ...(flags.registry !== undefined ? { registryUrl: flags.registry } : {}),
    ...(flags.applicationId !== undefined ? { applicationId: flags.applicationId } : {}),
  });
}

async function produce<V>(
  brokers: readonly string[],
  topic: string,
  serde: Serde<V>,
  records: ReadonlyArray<{ key: string; value: V; timestamp: number }>,
): Promise<void> {
  const kafka = new Kafka({ clientId: "ecos-load", brokers: [...brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const meta = await admin.fetchTopicMetadata({ topics: [topic] }).finally(() => admin.disconnect());
  const n = meta.topics[0]?.partitions.length ?? 1;
  await serde.prepare?.(topic);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += 1000)
      await producer.send({
        topic,
        acks: -1,
        messages: records.slice(i, i + 1000).map((r) => ({
          key: r.key,
          value: serde.serialize(topic, r.value),
          timestamp: String(r.timestamp),
          partition: partitionForKey(Buffer.from(r.key), n),
        })),
      });
  } finally {
    await producer.disconnect();
  }
}

export function registerDspCommands(program: Command, io: DspCommandIo = {}): Command {
  const out = io.out ?? ((t: string) => void process.stdout.write(`${t}\n`));
  const now = io.now ?? Date.now;

  const load = program
    .command("load")
    .description(
      "Load DSP reference data from CSV onto its compacted topic (columns: docs/dsp-validation.md)",
    );
  for (const kind of ["registration", "inventory"] as const) {
    load
      .command(`${kind} <csv>`)
      .description(
        kind === "registration"
          ? "Registration Data: mpxn,fuel,supplier_mpid,effective_from,effective_to,registration_version → registration.changes"
          : "Smart Metering Inventory: device_id,device_type,smets_generation,device_status,import_mpxn,cos_credential,manufacturer,model,firmware_version,chf_device_id,commissioned_at → inventory.devices",
      )
      .option("--kafka <brokers>", "Kafka brokers (default ECOS_KAFKA_BROKERS); none: check only")
      .option("--registry <url>", "schema registry URL (default ECOS_REGISTRY_URL); required with Kafka")
      .option("--topic <name>", "topic to write (default registration.changes / inventory.devices)")
      .option("--dry-run", "check and count the file, write nothing")
      .action(
        async (
          csv: string,
          opts: { kafka?: string; registry?: string; topic?: string; dryRun?: boolean },
        ) => {
          const cfg = config(io, opts);
          const at = now();
          const text = readText(csv);
          const source = path.basename(csv);
          const topic =
            opts.topic ?? (kind === "registration" ? dspTopics().registration : dspTopics().inventory);
          const registrations = kind === "registration" ? parseRegistrationCsv(text, source, at) : [];
          const devices = kind === "inventory" ? parseInventoryCsv(text, source, at) : [];
          const count = registrations.length + devices.length;
          if (opts.dryRun || cfg.kafkaBrokers.length === 0) {
            out(JSON.stringify({ kind, file: csv, records: count, topic, written: false }));
            return;
          }
          if (!cfg.registryUrl)
            throw new EcosError(
              "ECOS_CONFIG_INVALID",
              "writing to Kafka needs the schema registry: --registry or ECOS_REGISTRY_URL",
            );
          const serdes = dspAvroSerdes(new ConfluentSchemaRegistryClient({ host: cfg.registryUrl }));
          if (kind === "registration")
            await produce(
              cfg.kafkaBrokers,
              topic,
              serdes.registration,
              registrations.map((r) => ({ key: r.mpxn, value: r, timestamp: at })),
            );
          else
            await produce(
              cfg.kafkaBrokers,
              topic,
              serdes.inventory,
              devices.map((d) => ({ key: d.deviceId, value: d, timestamp: at })),
            );
          out(JSON.stringify({ kind, file: csv, records: count, topic, written: true }));
        },
      );
  }

  program
    .command("submit <files...>")
    .description(
      "Submit signed DUIS requests: POST each file to an ingest endpoint, or write it to duis.requests",
    )
    .option("--url <url>", "ingest endpoint, e.g. http://127.0.0.1:8080/duis")
    .option("--kafka <brokers>", "write straight to Kafka instead (default ECOS_KAFKA_BROKERS)")
    .option("--topic <name>", "request topic with --kafka", dspTopics().requests)
    .action(async (files: string[], opts: { url?: string; kafka?: string; topic: string }) => {
      const cfg = config(io, opts);
      if (!opts.url && cfg.kafkaBrokers.length === 0)
        throw new EcosError(
          "ECOS_CONFIG_INVALID",
          "submit needs --url or Kafka brokers (--kafka / ECOS_KAFKA_BROKERS)",
        );
      const log = opts.url ? null : new KafkaRequestLog(cfg.kafkaBrokers, opts.topic);
      let failed = 0;
      try {
        for (const file of files) {
          const bytes = fs.readFileSync(file);
          const id = sniffRequestId(bytes);
          if (opts.url) {
            const res = await fetch(opts.url, {
              method: "POST",
              body: new Uint8Array(bytes),
              headers: { "content-type": "application/xml" },
            });
            const body = await res.text();
            if (!res.ok) failed++;
            out(
              JSON.stringify({
                file,
                requestId: id?.requestId ?? null,
                status: res.status,
                body: body.trim(),
              }),
            );
          } else {
            if (!id) {
              failed++;
              out(JSON.stringify({ file, requestId: null, status: "refused", reason: "no sr:RequestID" }));
              continue;
            }
            await log!.append(id.deviceId || null, bytes, now());
            out(JSON.stringify({ file, requestId: id.requestId, status: "durable", topic: opts.topic }));
          }
        }
      } finally {
        await log?.close();
      }
      if (failed) process.exitCode = 1;
    });

  program
    .command("serve")
    .description("HTTP ingest of DUIS requests into Kafka; with --validate also the dsp-validate topology")
    .option("--port <n>", "port", positiveInt, 8080)
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--max-body <bytes>", "largest request accepted", positiveInt, 512 * 1024)
    .option("--kafka <brokers>", "Kafka brokers (default ECOS_KAFKA_BROKERS)")
    .option("--registry <url>", "schema registry URL (default ECOS_REGISTRY_URL)")
    .option("--application-id <id>", "consumer group and changelog prefix of dsp-validate")
    .option("--validate", "run dsp-validate in this process too")
    .option("--trust <pem-or-dir>", "trust anchor certificates (root or OCA); repeatable", collect)
    .option("--certs <pem-or-dir>", "other known certificates (signers, OCAs); repeatable", collect)
    .option("--dsp-cert <pem>", "the DSP's XML-signing certificate (countersigning)")
    .option("--dsp-key <pem>", "its P-256 private key (PKCS#8 or SEC1 PEM)")
    .option(
      "--test-pki <seed>",
      "use the deterministic test PKI of this seed instead of PEM files (demos only)",
    )
    .option("--users <csv>", "DCC Users directory: user_id,roles,status,mpids")
    .option("--threads <n>", "crypto worker threads", positiveInt)
    .action(
      async (opts: {
        port: number;
        host: string;
        maxBody: number;
        kafka?: string;
        registry?: string;
        applicationId?: string;
        validate?: boolean;
        trust?: string[];
        certs?: string[];
        dspCert?: string;
        dspKey?: string;
        testPki?: string;
        users?: string;
        threads?: number;
      }) => {
        const cfg = config(io, opts);
        if (cfg.kafkaBrokers.length === 0)
          throw new EcosError(
            "ECOS_CONFIG_INVALID",
            "serve needs Kafka brokers: --kafka or ECOS_KAFKA_BROKERS",
          );
        const log = new KafkaRequestLog(cfg.kafkaBrokers, dspTopics().requests);
        const server = await startIngestServer({
          log,
          port: opts.port,
          host: opts.host,
          maxBodyBytes: opts.maxBody,
        });
        out(JSON.stringify({ event: "listening", url: server.url }));
        if (!opts.validate) return;
        if (!cfg.registryUrl)
          throw new EcosError(
            "ECOS_CONFIG_INVALID",
            "--validate needs the schema registry: --registry or ECOS_REGISTRY_URL",
          );
        let trust: TrustStoreConfig;
        let countersignWith: DspSigningCredential | undefined;
        if (opts.testPki) {
          const c = buildSrv623Cast(opts.testPki);
          trust = c.trust;
          countersignWith = { scalar: c.dspXmlSign.scalar, certificate: c.dspXmlSign.der };
        } else {
          if (!opts.trust?.length)
            throw new EcosError("ECOS_CONFIG_INVALID", "--validate needs --trust (or --test-pki)");
          trust = {
            anchors: readPemCertificates(opts.trust),
            certificates: readPemCertificates(opts.certs ?? []),
          };
          if (opts.dspCert && opts.dspKey)
            countersignWith = {
              scalar: scalarOfPemKey(fs.readFileSync(opts.dspKey, "utf8")),
              certificate: readPemCertificates([opts.dspCert])[0]!,
            };
        }
        const users = opts.users
          ? new Map(parseUsersCsv(readText(opts.users), path.basename(opts.users)).map((u) => [u.userId, u]))
          : undefined;
        const pool = new DspWorkerPool({
          trust,
          ...(countersignWith ? { countersignWith } : {}),
          ...(opts.threads ? { threads: opts.threads } : {}),
        });
        const topology = buildDspValidateTopology({
          serdes: dspAvroSerdes(new ConfluentSchemaRegistryClient({ host: cfg.registryUrl })),
          verifier: pool,
          ...(users ? { users } : {}),
          backend: "lmdb",
        });
        const driver = new KafkaDriver(topology, {
          applicationId: cfg.applicationId,
          brokers: cfg.kafkaBrokers,
          stateDir: cfg.stateDir,
          logger: consoleLogger(cfg.logLevel),
          onFailure: cfg.onFailure,
          deadLetterTopic: cfg.deadLetterTopic,
          replicationFactor: cfg.replicationFactor,
          connectTimeoutMs: cfg.connectTimeoutMs,
          // A request yields ~25 KB of outputs and the driver sends a transaction's outputs in one
          // produce request, which must fit the broker's message.max.bytes (1 MB by default).
          commitEveryRecords: 24,
        });
        await driver.start();
        out(JSON.stringify({ event: "validating", applicationId: cfg.applicationId }));
        const err = await driver.waitForFailure();
        await server.close();
        await pool.close();
        throw err;
      },
    );
  return program;
}
