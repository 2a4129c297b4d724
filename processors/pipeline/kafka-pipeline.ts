/**
 * The DCC side of SRV 6.23 on a Kafka cluster, as `ecos run --kafka` runs it: dsp-validate, the ECoS
 * Party, the TCoS Party, dsp-dispatch, the response tracker and the N65 CoS certificate alerts, each
 * on its own KafkaDriver — its own application id (consumer group, changelogs, transactional ids) —
 * over one topic prefix, Avro through the schema registry.
 *
 *   duis.requests ─▶ [dsp] ─▶ cos.requests.ecos ─▶ [ecos] ─┐
 *                       └──▶ cos.requests.tcos ─▶ [tcos] ─┴▶ cos.authorisations ─▶ [dispatch]
 *     [dispatch] ─▶ device.commands / s1sp.requests ─▶ (devices, S1SP: `ecos sim`) ─▶ device.responses
 *     stages, authorisations, commands, device.responses ─▶ [tracker] ─▶ duis.responses
 *     inventory.devices, registration.changes ─▶ [cos-alerts] ─▶ duis.alerts (N65)
 *
 * Why one driver per stage, as in the embedded pipeline (pipeline.ts): several stages read the same
 * topic, and the CoS Parties share store names; on Kafka each is an application of its own, so a
 * process may run any subset (`stages`) and an operator scales a stage by starting more processes
 * with the same application ids — the consumer groups share the partitions out.
 *
 * Key material: the seeded test PKI (deploy/sim/credentials.ts) — the same credentials `ecos sim`
 * builds its fleet from. No key is logged. Production keys (an HSM behind the CoS Parties) are not
 * modelled here; docs/pipeline.md says what a deployment would replace.
 */
import { anomalyConfig } from "../anomaly/config";
import { cosAlertAvroSerdes } from "../cos-alerts/serdes";
import { buildCosCertificateAlertTopology, CosAlertCounters } from "../cos-alerts/topology";
import { buildDispatchTopology } from "../dispatch/topology";
import type { DccUser } from "../dsp/csv";
import { buildDspValidateTopology } from "../dsp/topology";
import { InlineDspVerifier, type DspVerifierPort } from "../dsp/verifier";
import { InlineCosPartyCrypto, type CosPartyCryptoPort } from "../ecos-party/crypto";
import { buildEcosPartyTopology, buildTcosPartyTopology } from "../ecos-party/topology";
import { CosPartyWorkerPool } from "../ecos-party/worker-pool";
import { EcosError, asEcosError } from "../runtime/errors";
import { KafkaDriver } from "../runtime/kafka-driver";
import type { Logger } from "../runtime/logger";
import type { StoreBackendKind, Topology } from "../runtime/topology";
import { trackerConfig } from "../tracker/config";
import { buildTrackerTopology } from "../tracker/topology";
import {
  dispatchSerdesOf,
  seededCosPartyCrypto,
  seededDispatchTrust,
  stageSerdesOver,
  trackerSerdesOf,
} from "./seeded-stages";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import type { SeededCredentials } from "../../deploy/sim/credentials";
import { DspWorkerPool } from "../../workers/dsp-pool";

/** The stages, in the order they are started. */
export const KAFKA_STAGES = ["dsp", "ecos", "tcos", "dispatch", "tracker", "cos-alerts"] as const;
export type KafkaStage = (typeof KAFKA_STAGES)[number];

/** The application id of each stage: `<appIdPrefix><stage>`. */
export function kafkaStageAppIds(appIdPrefix: string): Record<KafkaStage, string> {
  const ids = {} as Record<KafkaStage, string>;
  for (const s of KAFKA_STAGES) ids[s] = `${appIdPrefix}${s}`;
  return ids;
}

/** Parses a comma-separated stage list (`all` = every stage), naming what is wrong. */
export function parseStages(text: string): KafkaStage[] {
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 1 && names[0] === "all") return [...KAFKA_STAGES];
  const unknown = names.filter((n) => !(KAFKA_STAGES as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0)
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `unknown stage(s) ${JSON.stringify(unknown.length ? unknown.join(",") : text)}: ` +
        `expected "all" or a comma-separated list of ${KAFKA_STAGES.join(", ")}`,
    );
  return KAFKA_STAGES.filter((s) => names.includes(s));
}

/** What the pipeline reports while it runs (progress, tests, benchmarks). */
export type KafkaPipelineEvent =
  | { readonly event: "stage-started"; readonly stage: KafkaStage; readonly applicationId: string }
  | {
      readonly event: "start-retry";
      readonly stage: KafkaStage;
      readonly attempt: number;
      readonly code: string;
      readonly message: string;
    }
  | {
      readonly event: "commit";
      readonly stage: KafkaStage;
      readonly taskId: string;
      readonly records: number;
      readonly outputs: number;
      /** From the transaction's start to its commit's answer. */
      readonly transactionMs: number;
    }
  | {
      readonly event: "restore";
      readonly stage: KafkaStage;
      readonly taskId: string;
      readonly store: string;
      readonly records: number;
      readonly ms: number;
    }
  | {
      /** The tracker's final answer, reported when processed (before its transaction commits). */
      readonly event: "final";
      readonly requestId: string;
      readonly code: string;
      readonly ms: number;
      readonly breach: boolean;
    };

export interface KafkaPipelineOptions {
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  /** Prefix of every external topic (default none). */
  readonly topicPrefix?: string;
  /** Application ids are `<appIdPrefix><stage>` (default "ecos-"). */
  readonly appIdPrefix?: string;
  /** Folder of the stages' on-disk state (a sub-folder each). */
  readonly stateDir: string;
  /** The seeded credentials (test PKI, CoS Party keys) the stages sign and verify with. */
  readonly credentials: SeededCredentials;
  /** Which stages this process runs (default: all). */
  readonly stages?: readonly KafkaStage[];
  /** "inline": crypto on the stream thread; "pool": one worker thread per crypto stage. */
  readonly crypto?: "inline" | "pool";
  /** Store backend (default lmdb: state on disk, rebuilt from changelogs at start). */
  readonly backend?: StoreBackendKind;
  /**
   * The DCC Users directory. dsp-validate checks user ids and roles against it when given; the N65
   * stage needs it to find a device's Responsible Supplier's users (default: the test PKI's supplier,
   * roles IS and GS, with the MPIDs in its certificate).
   */
  readonly users?: readonly DccUser[];
  /** ECoS go-live: from then on a TCoS credential does not serve a device (N65). Default DEFAULT_ECOS_GO_LIVE_AT. */
  readonly ecosGoLiveAt?: number;
  /** The TCoS Party's decommission time (default: none). */
  readonly tcosDecommissionAt?: number | null;
  /** The tracker's device time-out for both generations (default: 34 s / 20 s). */
  readonly deviceTimeoutMs?: number;
  /** Partitions of topics the drivers create (default 3). */
  readonly partitions?: number;
  readonly replicationFactor?: number;
  readonly sessionTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly deadLetterTopic?: string;
  readonly logger: Logger;
  readonly onEvent?: (e: KafkaPipelineEvent) => void;
}

/** The default users directory: the test PKI's supplier. */
export function seededUsers(credentials: SeededCredentials): DccUser[] {
  const cast = credentials.cast;
  return [
    {
      userId: cast.supplierId,
      roles: ["IS", "GS"],
      status: "ACTIVE",
      mpids: [...cast.supplierXmlSign.cert.mpids],
    },
  ];
}

const START_ATTEMPTS = 5;

/**
 * ECoS go-live when none is configured: the end of June 2023, when the SEC Panel and DESNZ approved
 * it (reference §1, tagged [P]: the DCC's public page, not a seed document). Data, not a rule:
 * `ecos run --ecos-go-live` replaces it.
 */
export const DEFAULT_ECOS_GO_LIVE_AT = Date.UTC(2023, 5, 30);

export class KafkaPipeline {
  private readonly drivers = new Map<KafkaStage, KafkaDriver>();
  private readonly closers: Array<() => Promise<void>> = [];
  private stopping = false;
  /** N65 outcomes, counted since this process started. */
  readonly cosAlertCounters = new CosAlertCounters();

  constructor(private readonly o: KafkaPipelineOptions) {}

  /** The stages this pipeline runs. */
  get stages(): KafkaStage[] {
    return KAFKA_STAGES.filter((s) => (this.o.stages ?? KAFKA_STAGES).includes(s));
  }

  get applicationIds(): Record<KafkaStage, string> {
    return kafkaStageAppIds(this.o.appIdPrefix ?? "ecos-");
  }

  /**
   * Starts the stages one after the other (drivers starting together race to create the topics they
   * share). A driver whose consumer fails in its first seconds — a broker that has just created a
   * topic may still answer NOT_LEADER_FOR_PARTITION / UNKNOWN_TOPIC_OR_PARTITION, on which kafkajs
   * gives up — is replaced and started again (a `start-retry` event each time, at most 5 attempts).
   */
  async start(): Promise<void> {
    const topologies = this.buildTopologies();
    for (const [stage, topology] of topologies) {
      for (let attempt = 1; ; attempt++) {
        if (this.stopping) return;
        const d = this.driver(stage, topology);
        let failure: EcosError | null = null;
        /** start() itself threw: the driver already retried the connection for connectTimeoutMs. */
        let startThrew = false;
        void d.waitForFailure().then((e) => (failure = e));
        try {
          await d.start();
          await new Promise((r) => setTimeout(r, 1500));
        } catch (err) {
          startThrew = true;
          failure ??= asEcosError(err, "ECOS_BROKER_UNAVAILABLE");
        }
        if (failure === null) {
          this.drivers.set(stage, d);
          this.emit({ event: "stage-started", stage, applicationId: this.applicationIds[stage] });
          break;
        }
        const f: EcosError = failure;
        await d.stop().catch(() => {});
        // Configuration wrong, or the broker never reached (start() retried for connectTimeoutMs):
        // starting again would only repeat the same error.
        const hopeless =
          f.code === "ECOS_CONFIG_INVALID" || (startThrew && f.code === "ECOS_BROKER_UNAVAILABLE");
        if (hopeless || attempt >= START_ATTEMPTS) {
          await this.stop();
          throw new EcosError(
            f.code,
            `stage ${stage} (${this.applicationIds[stage]}) did not start: ${f.message}`,
          );
        }
        this.emit({ event: "start-retry", stage, attempt, code: f.code, message: f.message });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Resolves with the first fatal error of any stage (a stage that fails after start-up). */
  async waitForFailure(): Promise<{ stage: KafkaStage; error: EcosError }> {
    return Promise.race(
      [...this.drivers].map(([stage, d]) => d.waitForFailure().then((error) => ({ stage, error }))),
    );
  }

  /** Stops every stage (each commits or aborts its open transaction), then the worker pools. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await Promise.allSettled([...this.drivers.values()].map((d) => d.stop()));
    await Promise.allSettled(this.closers.map((c) => c()));
  }

  private emit(e: KafkaPipelineEvent): void {
    this.o.onEvent?.(e);
  }

  private driver(stage: KafkaStage, topology: Topology): KafkaDriver {
    const o = this.o;
    return new KafkaDriver(topology, {
      applicationId: this.applicationIds[stage],
      brokers: o.brokers,
      stateDir: `${o.stateDir}/${stage}`,
      logger: o.logger,
      deadLetterTopic: o.deadLetterTopic ?? `${o.topicPrefix ?? ""}dead-letters`,
      createMissingTopics: { partitions: o.partitions ?? 3 },
      ...(o.replicationFactor !== undefined ? { replicationFactor: o.replicationFactor } : {}),
      ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
      sessionTimeoutMs: o.sessionTimeoutMs ?? 10_000,
      // Time-outs are checked by the tracker's punctuation: a tick of the wall clock every 250 ms.
      wallClockTickMs: 250,
      onCommit: (info) =>
        this.emit({
          event: "commit",
          stage,
          taskId: info.taskId,
          records: info.records,
          outputs: info.outputs,
          transactionMs: info.transactionMs,
        }),
      onRestore: (info) => this.emit({ event: "restore", stage, ...info }),
    });
  }

  private buildTopologies(): Array<[KafkaStage, Topology]> {
    const o = this.o;
    const creds = o.credentials;
    const cast = creds.cast;
    const registry = new ConfluentSchemaRegistryClient({ host: o.registryUrl });
    const stageSerdes = stageSerdesOver(registry);
    const { dsp, party } = stageSerdes;
    const pooled = o.crypto === "pool";
    const topicPrefix = o.topicPrefix ?? "";
    const backend = o.backend ?? "lmdb";
    const users = o.users ?? seededUsers(creds);
    const wanted = new Set(this.stages);
    const out: Array<[KafkaStage, Topology]> = [];

    if (wanted.has("dsp")) {
      const dspOptions = {
        trust: cast.trust,
        countersignWith: { scalar: cast.dspXmlSign.scalar, certificate: cast.dspXmlSign.der },
      };
      let verifier: DspVerifierPort;
      if (pooled) {
        const pool = new DspWorkerPool({ ...dspOptions, threads: 1 });
        this.closers.push(() => pool.close());
        verifier = pool;
      } else verifier = new InlineDspVerifier(dspOptions);
      const dspUsers = o.users ? new Map(o.users.map((u) => [u.userId, u])) : undefined;
      out.push([
        "dsp",
        buildDspValidateTopology({
          serdes: dsp,
          verifier,
          topicPrefix,
          backend,
          anomalyCopy: false, // DSP anomaly detection runs inside dispatch
          ...(dspUsers ? { users: dspUsers } : {}),
        }),
      ]);
    }
    const partyCrypto = (p: "ECOS" | "TCOS"): CosPartyCryptoPort => {
      const options = seededCosPartyCrypto(creds, p);
      if (!pooled) return new InlineCosPartyCrypto(options);
      const pool = new CosPartyWorkerPool({ ...options, threads: 1 });
      this.closers.push(() => pool.close());
      return pool;
    };
    const partyOptions = { serdes: party, anomaly: anomalyConfig(), topicPrefix, backend };
    if (wanted.has("ecos"))
      out.push(["ecos", buildEcosPartyTopology({ ...partyOptions, crypto: partyCrypto("ECOS") })]);
    if (wanted.has("tcos"))
      out.push([
        "tcos",
        buildTcosPartyTopology({
          ...partyOptions,
          crypto: partyCrypto("TCOS"),
          decommissionAt: o.tcosDecommissionAt ?? null,
        }),
      ]);
    if (wanted.has("dispatch"))
      out.push([
        "dispatch",
        buildDispatchTopology({
          serdes: dispatchSerdesOf(stageSerdes),
          trust: seededDispatchTrust(creds),
          anomaly: anomalyConfig(),
          topicPrefix,
          backend,
        }),
      ]);
    if (wanted.has("tracker"))
      out.push([
        "tracker",
        buildTrackerTopology({
          serdes: trackerSerdesOf(stageSerdes),
          config: trackerConfig(
            o.deviceTimeoutMs === undefined
              ? {}
              : { deviceTimeoutMs: { SMETS1: o.deviceTimeoutMs, SMETS2: o.deviceTimeoutMs } },
          ),
          topicPrefix,
          backend,
          onFinal: (f) =>
            this.emit({
              event: "final",
              requestId: f.requestId,
              code: f.code,
              ms: f.responseTimeMs,
              breach: f.breach,
            }),
        }),
      ]);
    if (wanted.has("cos-alerts"))
      out.push([
        "cos-alerts",
        buildCosCertificateAlertTopology({
          serdes: cosAlertAvroSerdes(registry),
          ecosGoLiveAt: o.ecosGoLiveAt ?? DEFAULT_ECOS_GO_LIVE_AT,
          users: new Map(users.map((u) => [u.userId, u])),
          counters: this.cosAlertCounters,
          topicPrefix,
          backend,
        }),
      ]);
    return out;
  }
}
