/**
 * The embedded SRV 6.23 pipeline: every stage topology on its own in-process driver, the device and
 * S1SP simulators, the response tracker and the ClickHouse sink, moved forward together on one
 * simulated clock.
 *
 *   duis.requests ─▶ [dsp-validate] ─▶ cos.requests.ecos ─▶ [ecos-party] ─┐
 *                                  └─▶ cos.requests.tcos ─▶ [tcos-party] ─┴▶ cos.authorisations
 *   cos.authorisations ─▶ [dispatch] ─▶ device.commands ─▶ DeviceFleet ─┐
 *                                   └─▶ s1sp.requests  ─▶ S1spSimulator ┴▶ device.responses
 *   stages, authorisations, commands, device.responses ─▶ [response-tracker] ─▶ duis.responses
 *   duis.responses, duis.request-stages, duis.alerts, anomaly.events, inventory, registration
 *     ─▶ SinkWriter ─▶ ClickHouse (chDB)
 *
 * Why one driver per stage: the stage topologies cannot be merged into one topology. Several read
 * the same topic (cos.authorisations: dispatch and the tracker; inventory.devices: the DSP and both
 * CoS Parties), which the topology builder refuses, and the ECoS and TCoS Parties share anomaly store
 * names (they are meant to run as two applications). So each runs on its own InProcessDriver, as each
 * would run as its own application on Kafka, and a pump carries records between their topics as
 * serialised bytes (Avro over one in-memory schema registry), headers and timestamps unchanged: the
 * same bytes a Kafka cluster would carry. Each driver's `readOutput` is its consumer position.
 *
 * Time: every driver starts at the same simulated instant and is advanced by the same steps
 * (`advanceWallClock`, which fires the tracker's time-out punctuation); the simulators are pure and
 * clock-driven, so a run with WAN latencies of seconds takes as long as its CPU work. Processing inside
 * the DCC takes no simulated time: response times are those of the simulated WAN and devices.
 */
import type { AdtFileSubmission, AnomalyEvent } from "../anomaly/records";
import { anomalyConfig } from "../anomaly/config";
import { anomalyAvroSerdes } from "../anomaly/serdes";
import type { CosAuthorisation, DeviceCommand, S1spRequest } from "../cos/records";
import { COS_TOPICS } from "../cos/records";
import { cosAvroSerdes } from "../cos/serdes";
import type { DccUser } from "../dsp/csv";
import type { dspAvroSerdes } from "../dsp/serdes";
import { buildDspValidateTopology, DSP_TOPICS } from "../dsp/topology";
import { InlineDspVerifier, type DspVerifierPort } from "../dsp/verifier";
import { buildDispatchTopology, DISPATCH_TOPICS } from "../dispatch/topology";
import { InlineCosPartyCrypto, type CosPartyCryptoPort } from "../ecos-party/crypto";
import type { cosPartyAvroSerdes } from "../ecos-party/serdes";
import { buildEcosPartyTopology, buildTcosPartyTopology, cosPartyTopics } from "../ecos-party/topology";
import { EcosError } from "../runtime/errors";
import { InProcessDriver, type LogRecord, type OutputRecord } from "../runtime/in-process-driver";
import type { Logger } from "../runtime/logger";
import { silentLogger } from "../runtime/logger";
import { BytesSerde, type Serde } from "../runtime/serde";
import type { ClickHouseConnection } from "../sinks/clickhouse/connection";
import { defaultRoutes, SINK_TOPICS } from "../sinks/clickhouse/routes";
import { SinkWriter, type SourceRecord } from "../sinks/clickhouse/sink-writer";
import { trackerConfig, type TrackerConfig } from "../tracker/config";
import { buildTrackerTopology, TRACKER_TOPICS } from "../tracker/topology";
import {
  dispatchSerdesOf,
  seededCosPartyCrypto,
  seededDispatchTrust,
  stageSerdesOver,
  trackerSerdesOf,
} from "./seeded-stages";
import { avroSerde, loadSchema } from "../../schemas/avro";
import {
  EVENT_SCHEMAS,
  type DccAlertEvent,
  type DeviceSnapshot,
  type RequestStageEvent,
  type ServiceResponseEvent,
  type SupplierRegistration,
} from "../../schemas/event-records";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import { deviceKeyring, type SeededCredentials } from "../../deploy/sim/credentials";
import { simulatorConfig, type SimulatorConfig } from "../../deploy/sim/config";
import { DeviceFleet } from "../../deploy/sim/fleet";
import { splitInventory } from "../../deploy/sim/inventory";
import { S1spSimulator } from "../../deploy/sim/s1sp";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";

/** Which stage wrote a Service Response. */
export type ResponseOrigin = "dsp-validate" | "ecos-party" | "tcos-party" | "dispatch" | "response-tracker";

/** One Service Response as it left the pipeline, with where it came from. */
export interface ObservedResponse {
  readonly origin: ResponseOrigin;
  /**
   * False for dsp-validate's acknowledgement (I99: passed the DSP's checks, sent on); every other
   * Service Response is a request's final one.
   */
  readonly final: boolean;
  readonly response: ServiceResponseEvent;
  readonly headers: Readonly<Record<string, string>>;
}

/** The tracker's measurement of one final answer (its onFinal hook). */
export interface ResponseTime {
  readonly requestId: string;
  readonly code: string;
  readonly responseTimeMs: number;
  readonly breach: boolean;
}

export interface PipelineOptions {
  /** The seeded credentials: the test PKI's cast, the CoS Parties' keys, the fleet's certificates. */
  readonly credentials: SeededCredentials;
  readonly devices: readonly DeviceSnapshot[];
  readonly registrations: readonly SupplierRegistration[];
  /** The DCC Users directory (the cast's supplier, by default with its MPIDs). */
  readonly users: readonly DccUser[];
  /** Simulated epoch ms at which every driver's clock starts. */
  readonly startTimeMs: number;
  /** Partitions of every topic (default 1). */
  readonly partitions?: number;
  /** The simulators' behaviour (WAN latency, loss, failures) and seed. */
  readonly simulator?: Partial<SimulatorConfig>;
  readonly tracker?: TrackerConfig;
  /** ADT and warning threshold of the supplier's 6.23s per 1440 minutes (default: no anomaly). */
  readonly adt?: { readonly threshold: number; readonly warningThreshold: number };
  /** The TCoS Party's decommission time (default: none). */
  readonly tcosDecommissionAt?: number | null;
  /** The crypto ports (default: inline, on this thread). */
  readonly dspVerifier?: DspVerifierPort;
  readonly ecosCrypto?: CosPartyCryptoPort;
  readonly tcosCrypto?: CosPartyCryptoPort;
  /** The ClickHouse target of the sink (migrated, its database selected); null: no sink. */
  readonly clickhouse?: { readonly connection: ClickHouseConnection; readonly database: string } | null;
  /**
   * Changes CoS Authorisation Responses between the CoS Parties and dispatch (tests: tampering in
   * transit). Dispatch and the tracker both see the changed record.
   */
  readonly alterAuthorisation?: (a: CosAuthorisation) => CosAuthorisation;
  /**
   * Changes a DeviceCommand on its way from dispatch to the device, after the tracker saw it (tests:
   * tampering on the WAN, which only the device can catch).
   */
  readonly alterDeviceCommand?: (c: DeviceCommand) => DeviceCommand;
  /** Records kept per topic partition in every driver (default 2,000). */
  readonly retainRecords?: number;
  /** Time step of the simulated clock while requests are in flight (default: the tracker's punctuation). */
  readonly stepMs?: number;
  readonly logger?: Logger;
}

/** A request to submit at a simulated time of receipt. */
export interface Submission {
  readonly requestId: string;
  readonly deviceId: string;
  readonly bytes: Buffer;
  readonly receivedAt: number;
}

export interface RunProgress {
  readonly submitted: number;
  readonly total: number;
  readonly answered: number;
  readonly simulatedMs: number;
}

/** A command or S1SP request handed to the simulators (its bytes are not kept). */
export interface Sent {
  readonly requestId: string;
  readonly deviceId: string;
  /** Simulated time it was handed over. */
  readonly at: number;
}

/** Everything a run observed. */
export interface PipelineRun {
  readonly submitted: number;
  readonly responses: ObservedResponse[];
  readonly responseTimes: ResponseTime[];
  readonly alerts: DccAlertEvent[];
  readonly anomalyEvents: AnomalyEvent[];
  readonly stages: number;
  /** What dispatch sent to the simulators. */
  readonly deviceCommands: readonly Sent[];
  readonly s1spRequests: readonly Sent[];
  readonly deviceResponses: number;
  /** Simulated time from the first receipt to the end of the run. */
  readonly simulatedMs: number;
  /** Rows the sink stored (0 without a sink). */
  readonly sinkRows: number;
  /** True when the run stopped at its simulated-time limit with requests still unanswered. */
  readonly timedOut: boolean;
}

type Raw = LogRecord;

const DEFAULT_RETAIN_RECORDS = 2_000;

const RAW: Serde<Buffer> = BytesSerde;

/** The composed pipeline. Create with `EmbeddedPipeline.create`, then `run`, then `close`. */
export class EmbeddedPipeline {
  readonly fleet: DeviceFleet;
  readonly s1sp: S1spSimulator;
  private now: number;
  private readonly responseSerde: Serde<ServiceResponseEvent>;
  private readonly alertSerde: Serde<DccAlertEvent>;
  private readonly anomalySerde: Serde<AnomalyEvent>;
  private readonly stageSerde: Serde<RequestStageEvent>;
  private readonly cos: ReturnType<typeof cosAvroSerdes>;
  private readonly sink: SinkWriter | null;
  private readonly sinkOffsets = new Map<string, number>();
  /** Per driver, the next offset the pump expects per topic partition. */
  private readonly readUpTo = new Map<InProcessDriver, Map<string, number>>();
  private readonly observed = {
    responses: [] as ObservedResponse[],
    times: [] as ResponseTime[],
    alerts: [] as DccAlertEvent[],
    anomaly: [] as AnomalyEvent[],
    stages: 0,
    commands: [] as Sent[],
    s1sp: [] as Sent[],
    deviceResponses: 0,
  };
  /** Final responses still due per RequestID (a replayed request is submitted twice under one id). */
  private readonly answered = new Map<string, number>();
  private answeredTotal = 0;
  private waiting = 0;

  private constructor(
    private readonly o: PipelineOptions,
    private readonly drivers: {
      dsp: InProcessDriver;
      ecos: InProcessDriver;
      tcos: InProcessDriver;
      dispatch: InProcessDriver;
      tracker: InProcessDriver;
    },
    sim: { fleet: DeviceFleet; s1sp: S1spSimulator },
    sink: SinkWriter | null,
    registry: InMemorySchemaRegistry,
    times: ResponseTime[],
  ) {
    this.observed.times = times;
    this.now = o.startTimeMs;
    this.cos = cosAvroSerdes(registry);
    this.fleet = sim.fleet;
    this.s1sp = sim.s1sp;
    this.sink = sink;
    // Decoders over the registry the stages' encoders registered their schemas with.
    this.responseSerde = avroSerde(registry, loadSchema(EVENT_SCHEMAS.serviceResponseEvent));
    this.alertSerde = avroSerde(registry, loadSchema(EVENT_SCHEMAS.dccAlertEvent));
    this.anomalySerde = anomalyAvroSerdes(registry).event;
    this.stageSerde = avroSerde(registry, loadSchema(EVENT_SCHEMAS.requestStageEvent));
  }

  static async create(o: PipelineOptions): Promise<EmbeddedPipeline> {
    const creds = o.credentials;
    const cast = creds.cast;
    const registry = new InMemorySchemaRegistry();
    const stageSerdes = stageSerdesOver(registry);
    const { dsp, anomaly, party } = stageSerdes;
    const driverOptions = (applicationId: string) => ({
      applicationId,
      partitions: o.partitions ?? 1,
      startTimeMs: o.startTimeMs,
      // Older records are dropped, so memory does not grow with the run's length. The pump reads
      // every output after each hand-over, which produces far fewer records than that (checked).
      retainRecords: o.retainRecords ?? DEFAULT_RETAIN_RECORDS,
    });
    const dspVerifier =
      o.dspVerifier ??
      new InlineDspVerifier({
        trust: cast.trust,
        countersignWith: { scalar: cast.dspXmlSign.scalar, certificate: cast.dspXmlSign.der },
      });
    const partyCrypto = (p: "ECOS" | "TCOS"): CosPartyCryptoPort =>
      new InlineCosPartyCrypto(seededCosPartyCrypto(creds, p));
    const users = new Map(o.users.map((u) => [u.userId, u]));
    const anomalyCfg = anomalyConfig();
    const partyOptions = {
      serdes: party,
      anomaly: anomalyCfg,
    };
    const created = await Promise.all([
      InProcessDriver.create(
        buildDspValidateTopology({
          serdes: dsp,
          verifier: dspVerifier,
          users,
          anomalyCopy: false, // DSP anomaly detection runs inside dispatch
        }),
        driverOptions("ecos-dsp-validate"),
      ),
      InProcessDriver.create(
        buildEcosPartyTopology({ ...partyOptions, crypto: o.ecosCrypto ?? partyCrypto("ECOS") }),
        driverOptions("ecos-ecos-party"),
      ),
      InProcessDriver.create(
        buildTcosPartyTopology({
          ...partyOptions,
          crypto: o.tcosCrypto ?? partyCrypto("TCOS"),
          decommissionAt: o.tcosDecommissionAt ?? null,
        }),
        driverOptions("ecos-tcos-party"),
      ),
      InProcessDriver.create(
        buildDispatchTopology({
          serdes: dispatchSerdesOf(stageSerdes),
          trust: seededDispatchTrust(creds),
          anomaly: anomalyCfg,
        }),
        driverOptions("ecos-dispatch"),
      ),
    ]);
    const [dspDriver, ecosDriver, tcosDriver, dispatchDriver] = created;
    // The tracker's measurements, shared with the pipeline's observations.
    const times: ResponseTime[] = [];
    const trackerDriver = await InProcessDriver.create(
      buildTrackerTopology({
        serdes: trackerSerdesOf(stageSerdes),
        config: o.tracker ?? trackerConfig(),
        onFinal: (f) => times.push(f),
      }),
      driverOptions("ecos-response-tracker"),
    );

    const simConfig = simulatorConfig({ seed: "ecos-stream-sim", ...o.simulator });
    const estate = splitInventory(o.devices, creds);
    const fleet = new DeviceFleet({
      config: simConfig,
      devices: estate.fleet,
      ecdsa: opensslEcdsa,
      deviceKey: deviceKeyring(simConfig.seed, opensslEcdsa),
    });
    const s1sp = new S1spSimulator({
      config: simConfig,
      devices: estate.s1sp,
      trust: { anchors: [creds.root], certificates: [creds.oca, ...creds.xmlSigners] },
      ecdsa: opensslEcdsa,
    });

    const sink = o.clickhouse
      ? new SinkWriter({
          database: o.clickhouse.database,
          routes: defaultRoutes(registry),
          clickhouse: o.clickhouse.connection,
          committer: { commit: async () => {} },
          logger: o.logger ?? silentLogger,
          batchRows: 20_000,
          // Flushed by the pipeline at the end of the run, not by age.
          batchMs: Number.MAX_SAFE_INTEGER,
        })
      : null;
    const pipeline = new EmbeddedPipeline(
      o,
      {
        dsp: dspDriver,
        ecos: ecosDriver,
        tcos: tcosDriver,
        dispatch: dispatchDriver,
        tracker: trackerDriver,
      },
      { fleet, s1sp },
      sink,
      registry,
      times,
    );
    // Encoders used outside a topology register their writer schemas first.
    await pipeline.cos.deviceResponse.prepare?.(COS_TOPICS.deviceResponses);
    await pipeline.cos.authorisation.prepare?.(COS_TOPICS.authorisations);
    await dsp.inventory.prepare?.(SINK_TOPICS.deviceSnapshots);
    await dsp.registration.prepare?.(SINK_TOPICS.supplierRegistrations);
    await pipeline.loadReferenceData(dsp, party, anomaly.adtFile);
    return pipeline;
  }

  /** Inventory, Registration Data and the supplier's ADT file, into every stage that reads them. */
  private async loadReferenceData(
    dsp: ReturnType<typeof dspAvroSerdes>,
    party: ReturnType<typeof cosPartyAvroSerdes>,
    adtSerde: Serde<AdtFileSubmission>,
  ): Promise<void> {
    const d = this.drivers;
    const inventory = this.o.devices.map((v) => ({ key: v.deviceId, value: v, timestamp: this.now }));
    const registration = this.o.registrations.map((r) => ({ key: r.mpxn, value: r, timestamp: this.now }));
    await d.dsp.pipeInput(DSP_TOPICS.inventory, inventory, dsp.inventory);
    await d.dsp.pipeInput(DSP_TOPICS.registration, registration, dsp.registration);
    for (const p of [d.ecos, d.tcos]) await p.pipeInput(DSP_TOPICS.inventory, inventory, party.inventory);
    const threshold = this.o.adt ?? { threshold: 1_000_000_000, warningThreshold: 1_000_000_000 };
    const adt = (userId: string, n: number): AdtFileSubmission => ({
      submissionId: `pipeline-adt-${n}`,
      userId,
      fileName: "pipeline-adt.csv",
      submittedAt: this.now - 86_400_000,
      content: Buffer.from(
        [
          "SequenceNumber,1",
          "SRV,TimePeriodApplicable,ADT,WarningThreshold",
          `6.23,1440,${threshold.threshold},${threshold.warningThreshold}`,
          "",
        ].join("\n"),
        "utf8",
      ),
    });
    const files = this.o.users.map((u, i) => ({
      key: u.userId,
      value: adt(u.userId, i),
      timestamp: this.now,
    }));
    for (const p of [d.ecos, d.tcos, d.dispatch])
      await p.pipeInput(DISPATCH_TOPICS.adtFiles, files, adtSerde);
    // The reference data is analysts' data too.
    await this.toSink(
      SINK_TOPICS.deviceSnapshots,
      inventory.map((r) => ({
        key: Buffer.from(r.key),
        value: dsp.inventory.serialize(SINK_TOPICS.deviceSnapshots, r.value),
        timestamp: r.timestamp,
      })),
    );
    await this.toSink(
      SINK_TOPICS.supplierRegistrations,
      registration.map((r) => ({
        key: Buffer.from(r.key),
        value: dsp.registration.serialize(SINK_TOPICS.supplierRegistrations, r.value),
        timestamp: r.timestamp,
      })),
    );
    await this.pump();
  }

  /** The simulated clock. */
  clock(): number {
    return this.now;
  }

  /** Hands requests to dsp-validate (as `ecos serve` would put them on duis.requests) and pumps. */
  async submit(requests: readonly Submission[]): Promise<void> {
    if (requests.length === 0) return;
    for (const r of requests) this.answered.set(r.requestId, (this.answered.get(r.requestId) ?? 0) + 1);
    this.waiting += requests.length;
    await this.drivers.dsp.pipeRaw(
      DSP_TOPICS.requests,
      requests.map((r) => ({
        key: Buffer.from(r.deviceId, "utf8"),
        value: r.bytes,
        timestamp: r.receivedAt,
      })),
    );
    await this.pump();
  }

  /** Moves every driver's clock and the simulators forward by `ms`, then pumps. */
  async advance(ms: number): Promise<void> {
    this.now += ms;
    const d = this.drivers;
    for (const driver of [d.dsp, d.ecos, d.tcos, d.dispatch, d.tracker]) await driver.advanceWallClock(ms);
    const answers = [...this.fleet.advance(this.now), ...this.s1sp.advance(this.now)];
    if (answers.length > 0) {
      this.observed.deviceResponses += answers.length;
      const topic = COS_TOPICS.deviceResponses;
      await d.tracker.pipeRaw(
        topic,
        answers.map((a) => ({
          key: Buffer.from(a.deviceId, "utf8"),
          value: this.cos.deviceResponse.serialize(topic, a),
          timestamp: a.answeredAt,
        })),
      );
    }
    await this.pump();
  }

  /** RequestIDs still waiting for a final Service Response. */
  unansweredRequestIds(): string[] {
    return [...this.answered].filter(([, v]) => v > 0).map(([k]) => k);
  }

  /** Submissions still waiting for their final Service Response. */
  unanswered(): number {
    return this.waiting;
  }

  /**
   * Submits every request at its time of receipt, then runs the clock until each has its Service
   * Response and the simulators have nothing left to deliver (future-dated alerts included), or until
   * `maxDrainMs` of simulated time after the last receipt.
   */
  async run(
    requests: readonly Submission[],
    opts: { maxDrainMs?: number; onProgress?: (p: RunProgress) => void; progressEveryMs?: number } = {},
  ): Promise<PipelineRun> {
    const sorted = [...requests].sort((a, b) => a.receivedAt - b.receivedAt);
    const first = sorted[0]?.receivedAt ?? this.now;
    const last = sorted[sorted.length - 1]?.receivedAt ?? this.now;
    if (first > this.now) await this.advance(first - this.now);
    const step = this.o.stepMs ?? (this.o.tracker ?? trackerConfig()).punctuationMs;
    const limit = last + (opts.maxDrainMs ?? 2 * 3_600_000);
    const progressEvery = opts.progressEveryMs ?? 10_000;
    let nextProgress = this.now + progressEvery;
    let i = 0;
    let timedOut = false;
    for (;;) {
      let j = i;
      while (j < sorted.length && sorted[j]!.receivedAt <= this.now) j++;
      if (j > i) await this.submit(sorted.slice(i, j));
      i = j;
      if (opts.onProgress && this.now >= nextProgress) {
        opts.onProgress(this.progress(i, sorted.length));
        nextProgress = this.now + progressEvery;
      }
      const simIdle = this.fleet.nextDueAt() === null && this.s1sp.nextDueAt() === null;
      const allAnswered = this.unanswered() === 0;
      if (i >= sorted.length && allAnswered && simIdle) break;
      if (this.now >= limit) {
        timedOut = !allAnswered;
        break;
      }
      // While a request waits for its answer, step at the tracker's punctuation so that time-outs are
      // answered on time; once all are answered, jump to the next arrival or simulator event.
      // Requests are handed over at their exact time of receipt and answers at their exact time of
      // answer, so that no simulated time passes inside the DCC.
      const next = Math.min(
        sorted[i]?.receivedAt ?? Infinity,
        this.fleet.nextDueAt() ?? Infinity,
        this.s1sp.nextDueAt() ?? Infinity,
      );
      const to = allAnswered && Number.isFinite(next) ? next : Math.min(this.now + step, next);
      await this.advance(to - this.now);
    }
    opts.onProgress?.(this.progress(i, sorted.length));
    if (this.sink) {
      await this.sink.flush();
      await this.sink.settled();
      if (this.sink.failed) throw this.sink.failed;
    }
    const o = this.observed;
    return {
      submitted: sorted.length,
      responses: o.responses,
      responseTimes: o.times,
      alerts: o.alerts,
      anomalyEvents: o.anomaly,
      stages: o.stages,
      deviceCommands: o.commands,
      s1spRequests: o.s1sp,
      deviceResponses: o.deviceResponses,
      simulatedMs: this.now - first,
      sinkRows: this.sink?.totals.rows ?? 0,
      timedOut,
    };
  }

  private progress(submitted: number, total: number): RunProgress {
    return {
      submitted,
      total,
      answered: this.answeredTotal,
      simulatedMs: this.now - this.o.startTimeMs,
    };
  }

  /**
   * Carries every new output record to the stages that read it, until nothing moves. The order within
   * one topic is kept; each record keeps its key, value bytes, headers and timestamp.
   */
  private async pump(): Promise<void> {
    const d = this.drivers;
    for (let moved = true; moved;) {
      moved = false;
      const take = async (driver: InProcessDriver, topic: string): Promise<Raw[]> => {
        const out = await driver.readOutput(topic, RAW);
        if (out.length > 0) moved = true;
        this.checkNoGap(driver, topic, out);
        return out.map((r) => ({
          key: r.key === null ? null : Buffer.from(r.key, "utf8"),
          value: r.value,
          timestamp: r.timestamp,
          ...(Object.keys(r.headers).length > 0 ? { headers: r.headers } : {}),
        }));
      };
      const stages: Raw[] = [];

      // dsp-validate
      await this.responses("dsp-validate", await take(d.dsp, DSP_TOPICS.responses));
      stages.push(...(await take(d.dsp, DSP_TOPICS.stages)));
      const toEcos = await take(d.dsp, DSP_TOPICS.ecosParty);
      const toTcos = await take(d.dsp, DSP_TOPICS.tcosParty);
      if (toEcos.length > 0) await d.ecos.pipeRaw(DSP_TOPICS.ecosParty, toEcos);
      if (toTcos.length > 0) await d.tcos.pipeRaw(DSP_TOPICS.tcosParty, toTcos);

      // The CoS Parties
      let authorisations: Raw[] = [];
      for (const [name, driver] of [
        ["ecos-party", d.ecos],
        ["tcos-party", d.tcos],
      ] as const) {
        const t = cosPartyTopics(name === "ecos-party" ? "ECOS" : "TCOS");
        authorisations.push(...(await take(driver, t.authorisations)));
        await this.responses(name, await take(driver, t.responses));
        stages.push(...(await take(driver, t.stages)));
        await this.alerts(await take(driver, t.alerts));
        await this.anomalyEvents(await take(driver, t.anomalyEvents));
        await take(driver, t.adtResults);
      }
      if (authorisations.length > 0) {
        authorisations = await this.alter(authorisations);
        await d.tracker.pipeRaw(COS_TOPICS.authorisations, authorisations);
        await d.dispatch.pipeRaw(COS_TOPICS.authorisations, authorisations);
      }

      // dispatch, then the simulators
      const commands = await take(d.dispatch, DISPATCH_TOPICS.deviceCommands);
      const s1spRequests = await take(d.dispatch, DISPATCH_TOPICS.s1spRequests);
      await this.responses("dispatch", await take(d.dispatch, DISPATCH_TOPICS.responses));
      stages.push(...(await take(d.dispatch, DISPATCH_TOPICS.stages)));
      await this.anomalyEvents(await take(d.dispatch, DISPATCH_TOPICS.anomalyEvents));
      // The tracker learns of each command before its answer can exist.
      if (commands.length > 0) await d.tracker.pipeRaw(COS_TOPICS.deviceCommands, commands);
      if (s1spRequests.length > 0) await d.tracker.pipeRaw(COS_TOPICS.s1spRequests, s1spRequests);
      for (const c of commands) {
        const cmd: DeviceCommand = await this.cos.deviceCommand.deserialize(
          COS_TOPICS.deviceCommands,
          c.value!,
        );
        this.observed.commands.push({ requestId: cmd.requestId, deviceId: cmd.deviceId, at: this.now });
        this.fleet.receive(this.o.alterDeviceCommand ? this.o.alterDeviceCommand(cmd) : cmd, this.now);
      }
      for (const r of s1spRequests) {
        const req: S1spRequest = await this.cos.s1spRequest.deserialize(COS_TOPICS.s1spRequests, r.value!);
        this.observed.s1sp.push({ requestId: req.requestId, deviceId: req.deviceId, at: this.now });
        this.s1sp.receive(req, this.now);
      }

      // Every stage event goes to the tracker's copy of duis.request-stages, which then holds the
      // whole topic (the tracker's own events included): that copy is what the sink stores.
      if (stages.length > 0) await d.tracker.pipeRaw(TRACKER_TOPICS.stages, stages);
      const allStages = await take(d.tracker, TRACKER_TOPICS.stages);
      this.observed.stages += allStages.length;
      await this.toSink(SINK_TOPICS.requestStages, allStages);
      await this.responses("response-tracker", await take(d.tracker, TRACKER_TOPICS.responses));
      await this.alerts(await take(d.tracker, TRACKER_TOPICS.alerts));
    }
  }

  /**
   * The drivers keep only the last `retainRecords` records of a partition: a hand-over producing more
   * than that before the pump read them would lose records silently. It is checked, not assumed.
   */
  private checkNoGap(
    driver: InProcessDriver,
    topic: string,
    records: ReadonlyArray<OutputRecord<Buffer>>,
  ): void {
    let next = this.readUpTo.get(driver);
    if (!next) this.readUpTo.set(driver, (next = new Map<string, number>()));
    for (const r of records) {
      const k = `${topic}/${r.partition}`;
      const expected = next.get(k) ?? 0;
      if (r.offset !== expected)
        throw new EcosError(
          "ECOS_CONFIG_INVALID",
          `pipeline: ${r.offset - expected} records of ${topic} partition ${r.partition} were dropped before ` +
            `the pump read them; raise retainRecords (now ${this.o.retainRecords ?? DEFAULT_RETAIN_RECORDS})`,
        );
      next.set(k, r.offset + 1);
    }
  }

  private async alter(records: Raw[]): Promise<Raw[]> {
    const f = this.o.alterAuthorisation;
    if (!f) return records;
    const topic = COS_TOPICS.authorisations;
    const out: Raw[] = [];
    for (const r of records) {
      const a = f(await this.cos.authorisation.deserialize(topic, r.value!));
      out.push({ ...r, value: this.cos.authorisation.serialize(topic, a) });
    }
    return out;
  }

  private async responses(origin: ResponseOrigin, records: Raw[]): Promise<void> {
    if (records.length === 0) return;
    for (const r of records) {
      const response = await this.responseSerde.deserialize(DSP_TOPICS.responses, r.value!);
      const final = !(origin === "dsp-validate" && response.successful);
      this.observed.responses.push({ origin, final, response, headers: r.headers ?? {} });
      if (!final) continue;
      const left = this.answered.get(response.requestId);
      if (left !== undefined && left > 0) {
        this.answered.set(response.requestId, left - 1);
        this.answeredTotal++;
        this.waiting--;
      }
    }
    await this.toSink(SINK_TOPICS.serviceResponses, records);
  }

  private async alerts(records: Raw[]): Promise<void> {
    for (const r of records)
      this.observed.alerts.push(await this.alertSerde.deserialize(COS_TOPICS.alerts, r.value!));
    await this.toSink(SINK_TOPICS.dccAlerts, records);
  }

  private async anomalyEvents(records: Raw[]): Promise<void> {
    for (const r of records)
      this.observed.anomaly.push(await this.anomalySerde.deserialize(SINK_TOPICS.anomalyEvents, r.value!));
    await this.toSink(SINK_TOPICS.anomalyEvents, records);
  }

  /** Hands records to the sink as one partition of `topic`, offsets in the order they were produced. */
  private async toSink(topic: string, records: Raw[]): Promise<void> {
    if (!this.sink || records.length === 0) return;
    let offset = this.sinkOffsets.get(topic) ?? 0;
    const batch: SourceRecord[] = records.map((r) => ({
      topic,
      partition: 0,
      offset: String(offset++),
      key: r.key,
      value: r.value,
      timestamp: r.timestamp,
    }));
    this.sinkOffsets.set(topic, offset);
    await this.sink.add(batch);
  }

  async close(): Promise<void> {
    const d = this.drivers;
    for (const driver of [d.dsp, d.ecos, d.tcos, d.dispatch, d.tracker]) await driver.close();
  }
}
