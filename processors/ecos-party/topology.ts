/**
 * The CoS Party (ECoS Party, or the TCoS Party until its decommission date): Countersigned CoS
 * Service Requests in, CoS Authorisation Responses out (seed 003 §3.3; reference §5).
 *
 *   cos.requests.ecos|tcos (key device id, ServiceRequestEnvelope countersigned by the DSP)
 *   inventory.devices (key device id, DeviceSnapshot)                 ─┐ sub-topology 0, co-partitioned
 *     cos-verify  processBatch → worker pool: the DSP's worker checks again, the DSP countersignature,
 *                 the party's countersignature; inventory: device checks, the device's CoS credential;
 *                 TCoS decommission date
 *        ├─ refused → duis.responses, duis.request-stages (COS_PARTY_REFUSED), duis.alerts (N63/N26)
 *        └─ passed  → internal <app>-<party>-party-by-user (key User ID)
 *   <app>-<party>-party-by-user + adt.files (key User ID)              ─┐ sub-topology 1
 *     CoS Party anomaly detection (processors/anomaly: the User's 1440-minute ADTs only)
 *        ├─ breach  → duis.responses, stages (COS_PARTY_REFUSED), duis.alerts (N63), anomaly.events;
 *        │            nothing quarantined: the request is finished, the supplier must resend
 *        └─ passed  → internal <app>-<party>-party-by-device (key device id)
 *   <app>-<party>-party-by-device                                      ─┐ sub-topology 2
 *     cos-authorise  per-device CoS counter reserved (SMETS2+), then processBatch → worker pool: the
 *                    GBCS pre-command signed with the party's transitionalCoS key
 *        → cos.authorisations (CosAuthorisation, key device id), stages (COS_PARTY_AUTHORISED)
 *
 * Anomaly detection counts per User, so the requests are repartitioned by User ID and back by device
 * id: the counter must be reserved on the device's partition (one writer per device), and the
 * anomaly windows on the User's. Two extra hops cost milliseconds against 35 s / 21 s.
 */
import type { Processor, ProcessorContext, RecordMetadata, StreamRecord } from "../runtime/api";
import { EcosError } from "../runtime/errors";
import type { KeyValueStore } from "../runtime/stores";
import { jsonSerde } from "../runtime/serde";
import { TopologyBuilder, type StoreBackendKind, type Topology } from "../runtime/topology";
import { ANOMALY_TOPICS, addEcosPartyAnomalyDetection, type StoreBackends } from "../anomaly/topology";
import type { AnomalyConfig } from "../anomaly/config";
import type { AnomalyEvent, ServiceRequestEnvelope } from "../anomaly/records";
import { COS_TOPICS, type CosAuthorisation, type CosParty, type SmetsGeneration } from "../cos/records";
import { DEFAULT_DSP_POLICY, deviceChecks, type DspPolicy } from "../dsp/checks";
import { InventoryTable } from "../dsp/reference-data";
import { DSP_TOPICS } from "../dsp/topology";
import type {
  DccAlertEvent,
  DeviceSnapshot,
  RequestStageEvent,
  ServiceResponseEvent,
} from "../../schemas/event-records";
import { CANCELLATION_EXECUTION_TIME } from "../../workers/duis/request";
import type { DuisVerification } from "../../workers/dsp/validate";
import { normaliseEui64 } from "../../workers/smki/certificate";
import {
  COS_PARTY_CHECK_IDS,
  DEFAULT_COS_PARTY_ALERTS,
  DEFAULT_COS_PARTY_RESPONSE_CODES,
  firstCosPartyFailure,
  type CosPartyAlertSpec,
  type CosPartyCheckId,
  type CosPartyFailure,
  type CosPartyResponseCodes,
} from "./checks";
import { COS_COUNTER_STORE, reserveCosCounter, type CosCounterEntry } from "./cos-counter";
import type { CosPartyCryptoPort, CosVerifyResult, PreCommandResult } from "./crypto";
import { pendingAuthorisationSerde, type CosPartySerdes, type PendingAuthorisation } from "./records";

/** "ecos-party" or "tcos-party": prefix of the party's store, internal topic and node names. */
export function partyPrefix(party: CosParty): string {
  return party === "ECOS" ? "ecos-party" : "tcos-party";
}

export interface CosPartyTopics {
  /** In: Countersigned CoS Service Requests for this party (key device id). */
  readonly requests: string;
  /** In (compacted table): the Smart Metering Inventory (key device id). */
  readonly inventory: string;
  /** In: ADT files (key User ID). */
  readonly adtFiles: string;
  /** Out: CoS Authorisation Responses (key device id). */
  readonly authorisations: string;
  /** Out: Service Responses of refused requests (key RequestID). */
  readonly responses: string;
  /** Out: COS_PARTY_AUTHORISED / COS_PARTY_REFUSED (key RequestID). */
  readonly stages: string;
  /** Out: DCC alerts to the User (key recipient User ID). */
  readonly alerts: string;
  /** Out: anomaly events (threshold breaches), for the ClickHouse sink (key User ID). */
  readonly anomalyEvents: string;
  /** Out: results of the ADT files this party loaded (key User ID). */
  readonly adtResults: string;
}

export function cosPartyTopics(party: CosParty, prefix = ""): CosPartyTopics {
  return {
    requests: prefix + (party === "ECOS" ? DSP_TOPICS.ecosParty : DSP_TOPICS.tcosParty),
    inventory: prefix + DSP_TOPICS.inventory,
    adtFiles: prefix + ANOMALY_TOPICS.adtFiles,
    authorisations: prefix + COS_TOPICS.authorisations,
    responses: prefix + DSP_TOPICS.responses,
    stages: prefix + DSP_TOPICS.stages,
    alerts: prefix + COS_TOPICS.alerts,
    anomalyEvents: prefix + ANOMALY_TOPICS.events,
    adtResults:
      prefix + (party === "ECOS" ? ANOMALY_TOPICS.ecosPartyAdtResults : "tcos-party.adt.file-results"),
  };
}

/** Store names (a compatibility surface: they name the changelog topics). */
export interface CosPartyStores {
  readonly inventory: string;
  /** Per-device CoS counter (cos-counter.ts). */
  readonly counters: string;
  /**
   * The last requests authorised per device (key device id, at most AUTHORISED_PER_DEVICE): a
   * redelivered request is not authorised twice, even after a newer request took the device's latest
   * counter. Bounded per device, so it grows with the device count like the counter store.
   */
  readonly authorised: string;
}

export function cosPartyStores(party: CosParty): CosPartyStores {
  const p = partyPrefix(party);
  return {
    inventory: `${p}-inventory`,
    counters: party === "ECOS" ? COS_COUNTER_STORE : "tcos-party-cos-counters",
    authorised: `${p}-authorised-requests`,
  };
}

/** Internal topics `<applicationId>-<party>-party-by-user` and `-by-device`. */
export function cosPartyInternalTopics(party: CosParty): { byUser: string; byDevice: string } {
  const p = partyPrefix(party);
  return { byUser: `${p}-by-user`, byDevice: `${p}-by-device` };
}

export interface CosPartyOptions {
  readonly party: CosParty;
  readonly serdes: CosPartySerdes;
  /** The worker pool (or the inline port in tests). */
  readonly crypto: CosPartyCryptoPort;
  /** Anomaly configuration (the 1440-minute period, dedup). */
  readonly anomaly: AnomalyConfig;
  /**
   * Epoch ms from which this party refuses every request ("decommissioned"): the TCoS Party once
   * it is switched off. Compared with the wall clock when the request is processed.
   */
  readonly decommissionAt?: number | null;
  readonly responseCodes?: CosPartyResponseCodes;
  /** The alert a refusal raises (default: N63 ECoSAlert for the ECoS Party, N26 for the TCoS Party). */
  readonly alert?: CosPartyAlertSpec;
  /** Device types, statuses and replacement counts (the DSP's policy by default). */
  readonly policy?: DspPolicy;
  /**
   * The device's known transitionalCoS anti-replay floor: the party's counters for the device start
   * above it (reference §5.4 item 5 — a migrated device keeps the last TCoS counter as its floor).
   * [GAP] the inventory carries no such field; default 0 for every device.
   */
  readonly counterFloorOf?: (device: DeviceSnapshot) => bigint;
  /**
   * [I] Whether a SMETS2+ device whose credential the inventory does not know (UNKNOWN) may be
   * authorised by this party. Default false: a pre-command the device cannot verify is not issued.
   */
  readonly acceptUnknownCredential?: boolean;
  readonly topicPrefix?: string;
  readonly backend?: StoreBackendKind;
  readonly anomalyBackends?: StoreBackends;
  /** Observes each outcome (metrics, tests). */
  readonly onOutcome?: (o: {
    requestId: string;
    outcome: CosPartyCheckId | "authorised" | "redelivered";
  }) => void;
}

/** Whether the device can be authorised by `party`'s transitionalCoS key (reference §5.2, seeds 000/002). */
export function holdsCredentialOf(device: DeviceSnapshot, party: CosParty, acceptUnknown = false): boolean {
  // SMETS1 devices hold no CoS credential; the S1SP does, and their requests go to the ECoS Party.
  if (device.smetsGeneration === "SMETS1") return party === "ECOS";
  if (device.cosCredential === "UNKNOWN") return acceptUnknown;
  return device.cosCredential === party;
}

/** Writes a refusal: the Service Response, the COS_PARTY_REFUSED stage and (optionally) the alert. */
class RefusalWriter {
  constructor(
    private readonly ctx: ProcessorContext<unknown>,
    private readonly opts: CosPartyOptions,
    private readonly sinkPrefix: string,
  ) {}

  private get codes(): CosPartyResponseCodes {
    return this.opts.responseCodes ?? DEFAULT_COS_PARTY_RESPONSE_CODES;
  }

  refuse(
    r: {
      requestId: string;
      userId: string;
      deviceId: string;
      srv: string;
      receivedAt: number;
      smetsGeneration: SmetsGeneration;
      deviceType: string | null;
    },
    failure: CosPartyFailure,
    withAlert = true,
  ): void {
    const now = this.ctx.currentSystemTimeMs();
    const code = this.codes[failure.checkId];
    const party = this.opts.party;
    const response: ServiceResponseEvent = {
      requestId: r.requestId,
      userId: r.userId,
      supplierMpid: null,
      srv: r.srv,
      deviceId: r.deviceId,
      deviceType: r.deviceType,
      smetsGeneration: r.smetsGeneration,
      cosParty: party,
      responseCode: code,
      successful: false,
      receivedAt: r.receivedAt,
      respondedAt: now,
    };
    this.ctx.forward(
      {
        key: r.requestId,
        value: response,
        timestamp: now,
        headers: {
          "ecos.cos-party.check": failure.checkId,
          "ecos.cos-party.reason": failure.message.slice(0, 1000),
        },
      },
      `${this.sinkPrefix}-responses-sink`,
    );
    const stage: RequestStageEvent = {
      eventId: `${r.requestId}:COS_PARTY_REFUSED:0`,
      requestId: r.requestId,
      userId: r.userId,
      srv: r.srv,
      deviceId: r.deviceId,
      smetsGeneration: r.smetsGeneration,
      stage: "COS_PARTY_REFUSED",
      cosParty: party,
      responseCode: code,
      receivedAt: r.receivedAt,
      occurredAt: now,
      detail: `${failure.checkId}: ${failure.message}`.slice(0, 500),
    };
    this.ctx.forward({ key: r.requestId, value: stage, timestamp: now }, `${this.sinkPrefix}-stages-sink`);
    if (withAlert && r.userId)
      this.alert(r.userId, r.deviceId, r.requestId, failure.checkId, code, failure.message, now);
    this.opts.onOutcome?.({ requestId: r.requestId, outcome: failure.checkId });
  }

  alert(
    userId: string,
    deviceId: string | null,
    requestId: string,
    checkId: CosPartyCheckId,
    code: string,
    message: string,
    now: number,
  ): void {
    const spec = this.opts.alert ?? DEFAULT_COS_PARTY_ALERTS[this.opts.party];
    // ECoSAlertCode is a string; a ChangeOfSupplier ECoSErrorCode is exactly 3 characters (DUIS 5.3).
    const ecosErrorCode = spec.alertType === "ChangeOfSupplier" ? (code.length === 3 ? code : null) : code;
    const alert: DccAlertEvent = {
      alertId: `${requestId}|${spec.alertCode}|${checkId}`,
      alertCode: spec.alertCode,
      alertType: spec.alertType,
      recipientUserId: userId,
      deviceId: deviceId || null,
      requestId,
      ecosErrorCode,
      raisedAt: now,
      detail: `${this.opts.party} Party refused the request (${checkId}): ${message}`.slice(0, 500),
    };
    this.ctx.forward({ key: userId, value: alert, timestamp: now }, `${this.sinkPrefix}-alerts-sink`);
  }
}

function isGateResult(
  v: CosVerifyResult["verification"],
): v is DuisVerification & { request: NonNullable<DuisVerification["request"]> } {
  return "request" in v && v.request !== undefined && "signer" in v && v.signer !== undefined;
}

const KNOWN_CHECKS = new Set<string>(COS_PARTY_CHECK_IDS);

function decommissioned(party: CosParty, at: number): CosPartyFailure {
  return {
    checkId: "decommissioned",
    message: `the ${party} Party was decommissioned at ${new Date(at).toISOString()}; the device must be migrated to the ECoS credential`,
  };
}

/** Stage 0: the checks on the worker pool, the inventory, the decommission date. */
export class CosVerifyProcessor implements Processor<ServiceRequestEnvelope, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private inventory!: InventoryTable;
  private refusals!: RefusalWriter;

  constructor(private readonly opts: CosPartyOptions) {}

  init(ctx: ProcessorContext<unknown>): void {
    this.ctx = ctx;
    this.inventory = new InventoryTable(
      ctx.getStateStore<DeviceSnapshot>(cosPartyStores(this.opts.party).inventory),
    );
    this.refusals = new RefusalWriter(ctx, this.opts, "verify");
  }

  process(record: StreamRecord<ServiceRequestEnvelope>): Promise<void> {
    const meta = this.ctx.recordMetadata();
    return this.processBatch([record], meta ? [meta] : []);
  }

  async processBatch(
    records: ReadonlyArray<StreamRecord<ServiceRequestEnvelope>>,
    _metadata: ReadonlyArray<RecordMetadata>,
  ): Promise<void> {
    const now = this.ctx.currentSystemTimeMs();
    const off = this.opts.decommissionAt ?? null;
    if (off !== null && now >= off) {
      // The transitional key is switched off: no signature work at all.
      for (const r of records)
        this.refuse(r.value, this.inventory.device(r.value.deviceId), decommissioned(this.opts.party, off));
      return;
    }
    const inputs = records.map((r) => ({ bytes: r.value.raw, receivedAt: r.value.receivedAt }));
    let results: CosVerifyResult[] | null = null;
    // A crashed worker thread: try the run once more, then answer rather than stall.
    for (let attempt = 0; attempt < 2 && !results; attempt++) {
      try {
        results = await this.opts.crypto.verifyBatch(inputs);
      } catch (err) {
        if (attempt === 1)
          results = records.map(() => ({
            verification: { ok: false, code: "ECOS_WORKER_FAILED", message: (err as Error).message },
            dspCountersignatureError: null,
            countersigned: null,
          }));
      }
    }
    records.forEach((r, i) => this.decide(r, results![i]!));
  }

  private refuse(env: ServiceRequestEnvelope, device: DeviceSnapshot | undefined, f: CosPartyFailure): void {
    this.refusals.refuse(
      {
        requestId: env.requestId,
        userId: env.userId,
        deviceId: env.deviceId,
        srv: env.srv,
        receivedAt: env.receivedAt,
        smetsGeneration: device?.smetsGeneration ?? "SMETS2",
        deviceType: device?.deviceType ?? null,
      },
      f,
    );
  }

  private decide(record: StreamRecord<ServiceRequestEnvelope>, result: CosVerifyResult): void {
    const env = record.value;
    const device = this.inventory.device(env.deviceId);
    const v = result.verification;
    if (!isGateResult(v)) {
      // A gate failed (or another SRV, or the worker crashed on this item): nothing else can be read.
      const checkId =
        "checkId" in v && v.checkId && KNOWN_CHECKS.has(v.checkId)
          ? (v.checkId as CosPartyCheckId)
          : v.code === "ECOS_SRV_UNSUPPORTED"
            ? "envelope-match"
            : "worker-failed";
      this.refuse(env, device, { checkId, message: v.message ?? "request refused" });
      return;
    }
    const req = v.request;
    const failures: CosPartyFailure[] = (v.failures ?? [])
      .filter((f) => KNOWN_CHECKS.has(f.checkId))
      .map((f) => ({ checkId: f.checkId as CosPartyCheckId, message: f.message }));
    if (result.dspCountersignatureError !== null)
      failures.push({
        checkId: "dsp-countersignature",
        message: `DSP countersignature: ${result.dspCountersignatureError}`,
      });
    const deviceId = normaliseEui64(req.businessTargetId) ?? req.businessTargetId;
    const userId = normaliseEui64(req.businessOriginatorId) ?? req.businessOriginatorId;
    if (
      req.requestId !== env.requestId ||
      deviceId !== env.deviceId ||
      userId !== env.userId ||
      (record.key !== null && record.key !== deviceId) ||
      env.srv !== "6.23"
    )
      failures.push({
        checkId: "envelope-match",
        message: `the envelope (${env.requestId}, key ${record.key ?? "null"}) does not match the signed request ${req.requestId}`,
      });
    for (const f of deviceChecks(req, device, this.opts.policy ?? DEFAULT_DSP_POLICY))
      if (KNOWN_CHECKS.has(f.checkId))
        failures.push({ checkId: f.checkId as CosPartyCheckId, message: f.message });
    if (device && !holdsCredentialOf(device, this.opts.party, this.opts.acceptUnknownCredential))
      failures.push({
        checkId: "cos-credential",
        message:
          device.smetsGeneration === "SMETS1"
            ? `SMETS1 device ${deviceId}: its CoS requests go to the ECoS Party, not the ${this.opts.party} Party`
            : `device ${deviceId} holds the ${device.cosCredential} CoS credential, not the ${this.opts.party} Party's`,
      });
    if (!failures.length && !result.countersigned)
      failures.push({
        checkId: "worker-failed",
        message: `countersigning failed: ${result.countersignError ?? "no countersignature"}`,
      });
    const first = firstCosPartyFailure(failures);
    if (first) {
      // Authenticated now: answer the signed request's User about the signed request's device.
      this.refuse({ ...env, requestId: req.requestId, userId, deviceId }, device, first);
      return;
    }
    const cs = result.countersigned!;
    const pending: PendingAuthorisation = {
      requestId: env.requestId,
      userId: env.userId,
      srv: env.srv,
      receivedAt: env.receivedAt,
      deviceId: env.deviceId,
      raw: Buffer.from(cs.buffer, cs.byteOffset, cs.byteLength),
      smetsGeneration: device!.smetsGeneration,
      deviceType: device!.deviceType,
      counterFloor: (this.opts.counterFloorOf?.(device!) ?? 0n).toString(),
      executionAt: req.form === "future-dated" ? req.executionTime : null,
      cancellation: req.form === "cancellation" || req.executionTime === CANCELLATION_EXECUTION_TIME,
    };
    this.ctx.forward({ key: env.userId, value: pending, timestamp: record.timestamp }, "by-user-sink");
  }
}

/** Requests stopped by CoS Party anomaly detection: finished with a refusal (no quarantine). */
class AnomalyRefusalProcessor implements Processor<PendingAuthorisation, unknown> {
  private refusals!: RefusalWriter;
  constructor(private readonly opts: CosPartyOptions) {}
  init(ctx: ProcessorContext<unknown>): void {
    this.refusals = new RefusalWriter(ctx, this.opts, "anomaly");
  }
  process(record: StreamRecord<PendingAuthorisation>): void {
    const p = record.value;
    // The N63 alert comes from the breach event, which carries the count and the threshold.
    this.refusals.refuse(
      p,
      {
        checkId: "anomaly-threshold",
        message: "the User's 1440-minute anomaly detection threshold for SRV 6.23 is exceeded",
      },
      false,
    );
  }
}

/** The breach events of CoS Party anomaly detection, as alerts to the User (N63). */
class AnomalyAlertProcessor implements Processor<AnomalyEvent, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private refusals!: RefusalWriter;
  constructor(private readonly opts: CosPartyOptions) {}
  init(ctx: ProcessorContext<unknown>): void {
    this.ctx = ctx;
    this.refusals = new RefusalWriter(ctx, this.opts, "anomaly");
  }
  process(record: StreamRecord<AnomalyEvent>): void {
    const e = record.value;
    this.ctx.forward(record, "anomaly-events-sink");
    if (e.kind !== "ECOS_PARTY_THRESHOLD_BREACHED" || e.requestId === null) return;
    const codes = this.opts.responseCodes ?? DEFAULT_COS_PARTY_RESPONSE_CODES;
    this.refusals.alert(
      e.userId,
      e.deviceId,
      e.requestId,
      "anomaly-threshold",
      codes["anomaly-threshold"],
      e.detail ?? "threshold exceeded",
      this.ctx.currentSystemTimeMs(),
    );
  }
}

/** Passed anomaly detection: back to the device's partition. */
class ToDeviceProcessor implements Processor<PendingAuthorisation, PendingAuthorisation> {
  private ctx!: ProcessorContext<PendingAuthorisation>;
  init(ctx: ProcessorContext<PendingAuthorisation>): void {
    this.ctx = ctx;
  }
  process(record: StreamRecord<PendingAuthorisation>): void {
    this.ctx.forward({ ...record, key: record.value.deviceId });
  }
}

/** Requests remembered per device in the authorised-requests store. */
export const AUTHORISED_PER_DEVICE = 16;

/** One authorised request, as the authorised-requests store keeps it (a list per device). */
export interface AuthorisedRequest {
  readonly requestId: string;
  /** The pre-command's counter (decimal), or null for SMETS1. */
  readonly counter: string | null;
  readonly authorisedAt: number;
}

/** Stage 2: the per-device counter, the signed pre-command, the CoS Authorisation Response. */
export class CosAuthoriseProcessor implements Processor<PendingAuthorisation, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private counters!: KeyValueStore<CosCounterEntry>;
  private authorised!: KeyValueStore<AuthorisedRequest[]>;
  private refusals!: RefusalWriter;
  /** Requests seen again after they were authorised: not authorised a second time. */
  redeliveries = 0;

  constructor(private readonly opts: CosPartyOptions) {}

  init(ctx: ProcessorContext<unknown>): void {
    this.ctx = ctx;
    const s = cosPartyStores(this.opts.party);
    this.counters = ctx.getStateStore<CosCounterEntry>(s.counters);
    this.authorised = ctx.getStateStore<AuthorisedRequest[]>(s.authorised);
    this.refusals = new RefusalWriter(ctx, this.opts, "authorise");
  }

  process(record: StreamRecord<PendingAuthorisation>): Promise<void> {
    const meta = this.ctx.recordMetadata();
    return this.processBatch([record], meta ? [meta] : []);
  }

  async processBatch(
    records: ReadonlyArray<StreamRecord<PendingAuthorisation>>,
    _metadata: ReadonlyArray<RecordMetadata>,
  ): Promise<void> {
    type Step =
      | { kind: "authorise"; p: PendingAuthorisation; counter: bigint | null; job: number }
      | { kind: "refuse"; p: PendingAuthorisation; failure: CosPartyFailure };
    const steps: Step[] = [];
    const jobs: { bytes: Uint8Array; counter: bigint }[] = [];
    const seen = new Set<string>();
    for (const r of records) {
      const p = r.value;
      if (seen.has(p.requestId) || this.wasAuthorised(p)) {
        this.redelivered(p);
        continue;
      }
      seen.add(p.requestId);
      const off = this.opts.decommissionAt ?? null;
      if (off !== null && this.ctx.currentSystemTimeMs() >= off) {
        // Checked again here: a request checked before the date may reach this stage after it.
        steps.push({ kind: "refuse", p, failure: decommissioned(this.opts.party, off) });
        continue;
      }
      if (p.smetsGeneration === "SMETS1") {
        steps.push({ kind: "authorise", p, counter: null, job: -1 });
        continue;
      }
      // Reserved before signing, in this record's transaction (cos-counter.ts): a crash before the
      // commit rolls the reservation back with the output; an emitted counter is never handed out again.
      let reservation;
      try {
        reservation = reserveCosCounter(this.counters, p.deviceId, p.requestId, BigInt(p.counterFloor));
      } catch (err) {
        if (err instanceof EcosError && err.code === "ECOS_COS_COUNTER_EXHAUSTED") {
          steps.push({ kind: "refuse", p, failure: { checkId: "counter-exhausted", message: err.message } });
          continue;
        }
        throw err;
      }
      if (!reservation.fresh) {
        // This request already holds the device's latest counter: its authorisation was committed.
        this.redelivered(p);
        continue;
      }
      jobs.push({ bytes: p.raw, counter: reservation.counter });
      steps.push({ kind: "authorise", p, counter: reservation.counter, job: jobs.length - 1 });
    }
    let signed: PreCommandResult[] = [];
    if (jobs.length) {
      try {
        signed = await this.opts.crypto.signPreCommands(jobs);
      } catch (err) {
        // Retriable: the run is rolled back with its reservations and retried from the last commit.
        throw err instanceof EcosError
          ? err
          : new EcosError("ECOS_WORKER_FAILED", `pre-command signing failed: ${(err as Error).message}`, {
              cause: err,
            });
      }
      if (signed.length !== jobs.length)
        throw new EcosError(
          "ECOS_WORKER_FAILED",
          `pre-command signing returned ${signed.length} of ${jobs.length}`,
        );
    }
    for (const s of steps) {
      if (s.kind === "refuse") {
        this.refusals.refuse(s.p, s.failure);
        continue;
      }
      let preCommand: Buffer | null = null;
      if (s.counter !== null) {
        const res = signed[s.job]!;
        if (res.preCommand === null) {
          // The counter stays burnt: never emitted, never handed out again, harmless to a device.
          this.refusals.refuse(s.p, { checkId: "worker-failed", message: `pre-command: ${res.error}` });
          continue;
        }
        preCommand = Buffer.from(res.preCommand.buffer, res.preCommand.byteOffset, res.preCommand.byteLength);
      }
      this.emit(s.p, s.counter, preCommand);
    }
  }

  private wasAuthorised(p: PendingAuthorisation): boolean {
    return (this.authorised.get(p.deviceId) ?? []).some((a) => a.requestId === p.requestId);
  }

  private redelivered(p: PendingAuthorisation): void {
    this.redeliveries++;
    this.opts.onOutcome?.({ requestId: p.requestId, outcome: "redelivered" });
  }

  private emit(p: PendingAuthorisation, counter: bigint | null, preCommand: Buffer | null): void {
    const now = this.ctx.currentSystemTimeMs();
    const auth: CosAuthorisation = {
      requestId: p.requestId,
      deviceId: p.deviceId,
      userId: p.userId,
      cosParty: this.opts.party,
      smetsGeneration: p.smetsGeneration,
      deviceType: p.deviceType,
      receivedAt: p.receivedAt,
      authorisedAt: now,
      countersigned: p.raw,
      preCommand,
      counter: counter === null ? null : counter.toString(),
      executionAt: p.executionAt,
      cancellation: p.cancellation,
    };
    const held = this.authorised.get(p.deviceId) ?? [];
    this.authorised.put(p.deviceId, [
      ...held.slice(-(AUTHORISED_PER_DEVICE - 1)),
      { requestId: p.requestId, counter: auth.counter, authorisedAt: now },
    ]);
    this.ctx.forward({ key: p.deviceId, value: auth, timestamp: now }, "authorisations-sink");
    const stage: RequestStageEvent = {
      eventId: `${p.requestId}:COS_PARTY_AUTHORISED:0`,
      requestId: p.requestId,
      userId: p.userId,
      srv: p.srv,
      deviceId: p.deviceId,
      smetsGeneration: p.smetsGeneration,
      stage: "COS_PARTY_AUTHORISED",
      cosParty: this.opts.party,
      responseCode: null,
      receivedAt: p.receivedAt,
      occurredAt: now,
      detail: counter === null ? null : `counter ${counter.toString()}`,
    };
    this.ctx.forward({ key: p.requestId, value: stage, timestamp: now }, "authorise-stages-sink");
    this.opts.onOutcome?.({ requestId: p.requestId, outcome: "authorised" });
  }
}

class InventoryTableProcessor implements Processor<DeviceSnapshot, never> {
  private table!: InventoryTable;
  constructor(private readonly store: string) {}
  init(ctx: ProcessorContext<never>): void {
    this.table = new InventoryTable(ctx.getStateStore<DeviceSnapshot>(this.store));
  }
  process(record: StreamRecord<DeviceSnapshot>): void {
    this.table.apply(record.value);
  }
}

/**
 * The topology of one CoS Party (both drivers run it). Run the ECoS Party and the TCoS Party as two
 * applications (two application ids): they share the anomaly store names of processors/anomaly.
 */
export function buildCosPartyTopology(opts: CosPartyOptions): Topology {
  const t = cosPartyTopics(opts.party, opts.topicPrefix);
  const s = cosPartyStores(opts.party);
  const internal = cosPartyInternalTopics(opts.party);
  const sd = opts.serdes;
  const backend = opts.backend ?? "memory";
  const pending = pendingAuthorisationSerde();
  const b = new TopologyBuilder()
    // Sub-topology 0: device-keyed checks.
    .addSource("requests", { topics: [t.requests], valueSerde: sd.envelope })
    .addSource("inventory", { topics: [t.inventory], valueSerde: sd.inventory })
    .addProcessor("cos-verify", () => new CosVerifyProcessor(opts), "requests")
    .addProcessor("inventory-table", () => new InventoryTableProcessor(s.inventory), "inventory")
    .addStateStore(
      { name: s.inventory, valueSerde: jsonSerde<DeviceSnapshot>(), backend },
      "cos-verify",
      "inventory-table",
    )
    .addInternalTopic(internal.byUser)
    .addSink("by-user-sink", { topic: internal.byUser, valueSerde: pending }, "cos-verify")
    // Sub-topology 1: the User's 1440-minute thresholds.
    .addSource("by-user", { topics: [internal.byUser], valueSerde: pending })
    .addSource("adt-files", { topics: [t.adtFiles], valueSerde: sd.adtFile });
  const anomaly = addEcosPartyAnomalyDetection(b, {
    requests: "by-user",
    adtFiles: "adt-files",
    config: opts.anomaly,
    namePrefix: `${partyPrefix(opts.party)}-anomaly`,
    ...(opts.anomalyBackends ? { backends: opts.anomalyBackends } : {}),
  });
  b.addProcessor("anomaly-refusal", () => new AnomalyRefusalProcessor(opts), anomaly.refused)
    .addProcessor("anomaly-alerts", () => new AnomalyAlertProcessor(opts), anomaly.events)
    .addProcessor("to-device", () => new ToDeviceProcessor(), anomaly.passed)
    .addSink("anomaly-events-sink", { topic: t.anomalyEvents, valueSerde: sd.anomalyEvent }, "anomaly-alerts")
    .addSink("adt-results-sink", { topic: t.adtResults, valueSerde: sd.adtResult }, anomaly.adtResults)
    .addInternalTopic(internal.byDevice)
    .addSink("by-device-sink", { topic: internal.byDevice, valueSerde: pending }, "to-device")
    // Sub-topology 2: counter, pre-command, authorisation.
    .addSource("by-device", { topics: [internal.byDevice], valueSerde: pending })
    .addProcessor("cos-authorise", () => new CosAuthoriseProcessor(opts), "by-device")
    .addStateStore({ name: s.counters, valueSerde: jsonSerde<CosCounterEntry>(), backend }, "cos-authorise")
    .addStateStore(
      { name: s.authorised, valueSerde: jsonSerde<AuthorisedRequest[]>(), backend },
      "cos-authorise",
    )
    .addSink(
      "authorisations-sink",
      { topic: t.authorisations, valueSerde: sd.authorisation },
      "cos-authorise",
    );
  const refusers = {
    verify: "cos-verify",
    anomaly: ["anomaly-refusal", "anomaly-alerts"],
    authorise: "cos-authorise",
  };
  for (const [prefix, parents] of Object.entries(refusers)) {
    const ps = Array.isArray(parents) ? parents : [parents];
    b.addSink(`${prefix}-responses-sink`, { topic: t.responses, valueSerde: sd.response }, ...ps)
      .addSink(`${prefix}-stages-sink`, { topic: t.stages, valueSerde: sd.stage }, ...ps)
      .addSink(`${prefix}-alerts-sink`, { topic: t.alerts, valueSerde: sd.alert }, ...ps);
  }
  return b.build();
}

/** The ECoS Party's topology. */
export function buildEcosPartyTopology(opts: Omit<CosPartyOptions, "party" | "decommissionAt">): Topology {
  return buildCosPartyTopology({ ...opts, party: "ECOS" });
}

/**
 * The TCoS Party's topology: the same processors with the transitional key (in `crypto`) and a
 * decommission date after which every request is refused ("decommissioned") with an alert.
 */
export function buildTcosPartyTopology(
  opts: Omit<CosPartyOptions, "party" | "decommissionAt"> & { readonly decommissionAt: number | null },
): Topology {
  return buildCosPartyTopology({ ...opts, party: "TCOS" });
}
