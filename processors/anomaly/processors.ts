/**
 * The anomaly-detection processors. Each sees records, its context and its stores — nothing else.
 *
 * - `AdtFileLoader`: applies submitted ADT files to the versioned ADT table (one per party).
 * - `DspAnomalyProcessor`: counts each request per (User ID, SRV) over every period the User set,
 *   warns on crossing a Warning Threshold, quarantines on crossing an ADT.
 * - `ExitQuarantineProcessor`: releases or deletes quarantined requests on the User's instruction.
 * - `EcosPartyAnomalyProcessor`: the ECoS Party's narrower check — the User's own 1440-minute
 *   thresholds only; a breach stops the request (N63 alert), nothing is quarantined.
 *
 * All of them expect records keyed by User ID (partitioning is what keeps a User's state together);
 * a record keyed otherwise is a wiring fault and goes to the dead letters.
 */
import { createHash } from "node:crypto";
import type { Processor, ProcessorContext, StreamRecord } from "../runtime/api";
import { EcosError } from "../runtime/errors";
import type { KeyValueStore } from "../runtime/stores";
import {
  adtVersionAt,
  applyAdtFile,
  entriesOf,
  type AdtHistory,
  type AdtThreshold,
  type AdtVersion,
} from "./adt-table";
import type { AnomalyConfig } from "./config";
import { alignRings, countInto, windowKey, type MutableWindowCheck, type WindowCheck } from "./counter";
import type {
  AdtFileResult,
  AdtFileSubmission,
  AnomalyEvent,
  AnomalyParty,
  ExitQuarantineInstruction,
  QuarantinedRequest,
  ServiceRequestEnvelope,
} from "./records";
import { RequestDeduplicator, type CountedRequestIds } from "./request-ids";
import type { WindowSet } from "./window";

/** DUIS alert codes used here ([A] codes exist; their use for these triggers is [I], reference §6, §7.2). */
export const DCC_ALERT_CODES = { quarantine: "AD1", ecosPartyBreach: "N63" } as const;

/** Header on a request released from quarantine, naming its QuarantineEventRef. */
export const RELEASED_HEADER = "ecos.anomaly.released";

/** Names of a party's stores (part of the compatibility surface: they name changelog topics). */
export interface AnomalyStoreNames {
  readonly adtTables: string;
  readonly windows: string;
  readonly countedRequests: string;
  /** DSP only. */
  readonly quarantine?: string;
}

function keyedByUser(record: StreamRecord<{ userId: string }>, what: string): void {
  if (record.key !== record.value.userId) {
    throw new EcosError(
      "ECOS_PROCESS_FAILED",
      `${what} for User ID ${record.value.userId} is keyed ${JSON.stringify(record.key)}: anomaly detection needs records keyed by User ID`,
    );
  }
}

/**
 * A counter per ADT tables store (one per task), raised by AdtFileLoader before every change, so the
 * request checker knows when a User's table may have changed without reading the store per request.
 * Only these two processors are connected to the tables store (addDsp/EcosPartyAnomalyDetection), and
 * a restore builds new processors, so nothing else changes a table behind the counter's back.
 */
const tableChanges = new WeakMap<object, { n: number }>();

function tableChangesOf(store: KeyValueStore<AdtHistory>): { n: number } {
  let c = tableChanges.get(store);
  if (!c) tableChanges.set(store, (c = { n: 0 }));
  return c;
}

/** Passes every record on unchanged: the named output nodes callers attach sinks to. */
export class PassThrough<V> implements Processor<V, V> {
  private ctx!: ProcessorContext<V>;
  init(context: ProcessorContext<V>): void {
    this.ctx = context;
  }
  process(record: StreamRecord<V>): void {
    this.ctx.forward(record);
  }
}

/** Applies ADT files: anti-replay, whole-file checks, defaults on load; forwards one result per file. */
export class AdtFileLoader implements Processor<AdtFileSubmission, AdtFileResult> {
  private ctx!: ProcessorContext<AdtFileResult>;
  private tables!: KeyValueStore<AdtHistory>;
  private changes!: { n: number };
  constructor(
    private readonly storeName: string,
    private readonly config: AnomalyConfig,
  ) {}
  init(context: ProcessorContext<AdtFileResult>): void {
    this.ctx = context;
    this.tables = context.getStateStore<AdtHistory>(this.storeName);
    this.changes = tableChangesOf(this.tables);
  }
  process(record: StreamRecord<AdtFileSubmission>): void {
    const s = record.value;
    const base = { submissionId: s.submissionId, userId: s.userId, fileName: s.fileName };
    let result: AdtFileResult;
    if (record.key !== s.userId) {
      result = {
        ...base,
        sequenceNumber: null,
        outcome: "REJECTED",
        rejectionCode: "USER_MISMATCH",
        rejectionReason: `submission for User ID ${s.userId} arrived keyed ${JSON.stringify(record.key)}`,
        effectiveFrom: null,
        entries: [],
      };
    } else {
      const outcome = applyAdtFile(this.tables.get(s.userId), s, this.config);
      if (outcome.ok) {
        this.changes.n++;
        this.tables.put(s.userId, outcome.history);
        result = {
          ...base,
          sequenceNumber: outcome.version.sequenceNumber,
          outcome: "ACCEPTED",
          rejectionCode: null,
          rejectionReason: null,
          effectiveFrom: outcome.version.effectiveFrom,
          entries: entriesOf(outcome.version),
        };
      } else {
        result = {
          ...base,
          sequenceNumber: outcome.sequenceNumber,
          outcome: "REJECTED",
          rejectionCode: outcome.code,
          rejectionReason: outcome.reason,
          effectiveFrom: null,
          entries: [],
        };
      }
    }
    this.ctx.forward({ key: s.userId, value: result, timestamp: record.timestamp });
  }
}

/** DUIS QuarantineEventRef for a request: a stable 63-bit number (≤ 19 digits) from its RequestID. */
export function quarantineRefFor(requestId: string, attempt = 0): string {
  const h = createHash("sha256").update(requestId).digest();
  const n = h.readBigUInt64BE(0) & 0x7fff_ffff_ffff_ffffn;
  return ((n + BigInt(attempt)) & 0x7fff_ffff_ffff_ffffn).toString();
}

interface Checked {
  readonly record: StreamRecord<ServiceRequestEnvelope>;
  readonly checks: readonly WindowCheck[];
  readonly sequenceNumber: number | null;
}

/**
 * What the checker keeps per (User ID, SRV), derived from the stores: the window set, and the ADT
 * version in force with the thresholds it sets for the SRV. One object per (User, SRV) — a User's
 * SRVs linked from the one the cache's map holds — so a request reads one object of state before its
 * window set: with many Users, every object read is a likely cache miss.
 */
interface SrvState {
  readonly srv: string;
  /** Store key of the window set (built and hashed once). */
  readonly key: string;
  /** The window set: the very object the store holds (or the one put there at every request). */
  readonly set: WindowSet;
  /** The User's ADT history `version` was selected from (the tables store's value). */
  history: AdtHistory | undefined;
  /** The tables' change counter when `history` was last found current. */
  seen: number;
  /** The version in force for receipt times in [from, until); undefined: not selected yet. */
  version: AdtVersion | undefined;
  sequenceNumber: number | null;
  from: number;
  until: number;
  /** The thresholds `version` sets for the SRV (as this party selects them). */
  thresholds: readonly AdtThreshold[];
  /** Thresholds the set's rings were last aligned with. */
  aligned: readonly AdtThreshold[] | undefined;
  /** The same User's state for another SRV. */
  next: SrvState | undefined;
}

/** Most User IDs whose derived state is kept; beyond it the cache starts again (it is only a cache). */
const MAX_CACHED_USERS = 100_000;

/**
 * Shared by both parties: dedup, thresholds in force at receipt, counting.
 *
 * Per User ID it caches what it derived from the stores: the version in force and its thresholds per
 * SRV, the window store key and the window set itself. The cache never holds state of its own: every
 * change to a window set is put into the store at once (the changelog and a restore see exactly what
 * the processor counted), the set cached is the one the store holds or was just given, and the
 * version and thresholds are selected again as soon as the tables store holds another history for
 * the User (checked again after any ADT file was applied: see tableChanges). Only this processor
 * writes the window store, and a restore always builds new processor instances.
 */
class RequestChecker {
  readonly tables: KeyValueStore<AdtHistory>;
  readonly windows: KeyValueStore<WindowSet>;
  readonly dedup: RequestDeduplicator;
  private readonly tableChanges: { n: number };
  private readonly selected = new WeakMap<AdtVersion, Map<string, readonly AdtThreshold[]>>();
  /** Per User ID: the state of the SRV it sent last, linking its other SRVs'. */
  private users = new Map<string, SrvState>();
  private readonly checks: MutableWindowCheck[] = [];
  private readonly result: {
    record: StreamRecord<ServiceRequestEnvelope>;
    checks: readonly WindowCheck[];
    sequenceNumber: number | null;
  };
  constructor(
    context: ProcessorContext<unknown>,
    stores: AnomalyStoreNames,
    private readonly config: AnomalyConfig,
    private readonly select: (thresholds: readonly AdtThreshold[]) => readonly AdtThreshold[],
  ) {
    this.tables = context.getStateStore<AdtHistory>(stores.adtTables);
    this.windows = context.getStateStore<WindowSet>(stores.windows);
    this.tableChanges = tableChangesOf(this.tables);
    this.dedup = new RequestDeduplicator(
      context.getStateStore<CountedRequestIds>(stores.countedRequests),
      config.dedupRetentionMinutes * 60_000,
    );
    this.result = {
      record: undefined as unknown as StreamRecord<ServiceRequestEnvelope>,
      checks: this.checks,
      sequenceNumber: null,
    };
  }

  /**
   * The thresholds this party applies to an SRV under a version, selected once per (version, SRV):
   * a version object is immutable and, in memory, the store hands out the same object every time.
   */
  private thresholdsOf(version: AdtVersion, srv: string): readonly AdtThreshold[] {
    let bySrv = this.selected.get(version);
    if (!bySrv) this.selected.set(version, (bySrv = new Map<string, readonly AdtThreshold[]>()));
    let list = bySrv.get(srv);
    if (list === undefined) {
      const all = Object.prototype.hasOwnProperty.call(version.thresholds, srv)
        ? version.thresholds[srv]
        : undefined;
      list = all ? this.select(all) : [];
      bySrv.set(srv, list);
    }
    return list;
  }

  /** The User's state for an SRV, its version cache dropped if the User's ADT history changed. */
  private srvState(userId: string, srv: string): SrvState {
    const first = this.users.get(userId);
    let s = first;
    while (s !== undefined && s.srv !== srv) s = s.next;
    if (s === undefined) {
      if (first === undefined && this.users.size >= MAX_CACHED_USERS) this.users = new Map();
      const key = windowKey(userId, srv);
      s = {
        srv,
        key,
        set: this.windows.get(key) ?? { rings: [] },
        history: this.tables.get(userId),
        seen: this.tableChanges.n,
        version: undefined,
        sequenceNumber: null,
        from: 0,
        until: 0,
        thresholds: [],
        aligned: undefined,
        next: first,
      };
      this.users.set(userId, s);
    } else if (s.seen !== this.tableChanges.n) {
      const history = this.tables.get(userId);
      if (history !== s.history) {
        s.history = history;
        s.version = undefined;
      }
      s.seen = this.tableChanges.n;
    }
    return s;
  }

  /**
   * Makes `s.version` the version in force at `at` (as adtVersionAt), remembered with the span it is
   * in force for, and `s.thresholds` the thresholds it sets for the SRV.
   */
  private selectVersion(s: SrvState, at: number): void {
    if (s.version !== undefined && at >= s.from && at < s.until) return;
    const vs = s.history?.versions ?? [];
    let k = vs.length - 1;
    while (k >= 0 && (vs[k] as AdtVersion).effectiveFrom > at) k--;
    const version = k >= 0 ? (vs[k] as AdtVersion) : adtVersionAt(undefined, at, this.config);
    s.version = version;
    s.sequenceNumber = version.sequenceNumber;
    s.from = k >= 0 ? version.effectiveFrom : Number.NEGATIVE_INFINITY;
    s.until = k + 1 < vs.length ? (vs[k + 1] as AdtVersion).effectiveFrom : Number.POSITIVE_INFINITY;
    s.thresholds = this.thresholdsOf(version, s.srv);
  }

  /**
   * "no-threshold": nothing to count for this SRV (pass it); "duplicate": a copy already counted (drop
   * it). The result and its checks are reused by the next call: read them before checking another.
   */
  check(record: StreamRecord<ServiceRequestEnvelope>): Checked | "no-threshold" | "duplicate" {
    const r = record.value;
    keyedByUser(record, "request");
    const s = this.srvState(r.userId, r.srv);
    this.selectVersion(s, r.receivedAt);
    const thresholds = s.thresholds;
    if (thresholds.length === 0) return "no-threshold";
    const seen = this.config.rememberRequestIds
      ? this.dedup.remember(r.userId, r.requestId, r.receivedAt)
      : "new";
    if (seen === "duplicate") return "duplicate";
    if (s.aligned !== thresholds) {
      alignRings(s.set, thresholds, this.config.bucketsPerWindow);
      s.aligned = thresholds;
    }
    countInto(s.set, thresholds, r.receivedAt, seen === "new", this.checks);
    // Always written back: sliding and the warned flag change the value even when nothing is counted.
    this.windows.put(s.key, s.set);
    this.result.record = record;
    this.result.sequenceNumber = s.sequenceNumber;
    return this.result;
  }
}

/** The first check whose count is above its ADT (a loop: this runs for every request). */
function firstBreach(checks: readonly WindowCheck[]): WindowCheck | undefined {
  for (let k = 0; k < checks.length; k++) if ((checks[k] as WindowCheck).breached) return checks[k];
  return undefined;
}

function event(
  party: AnomalyParty,
  r: ServiceRequestEnvelope,
  kind: AnomalyEvent["kind"],
  c: WindowCheck,
  threshold: number,
  sequenceNumber: number | null,
  extra: { quarantineEventRef?: string; dccAlertCode?: string; detail: string },
): AnomalyEvent {
  return {
    eventId: `${r.requestId}|${kind}|${c.periodMinutes}`,
    kind,
    party,
    userId: r.userId,
    requestId: r.requestId,
    deviceId: r.deviceId,
    srv: r.srv,
    periodMinutes: c.periodMinutes,
    count: c.count,
    threshold,
    adtSequenceNumber: sequenceNumber,
    receivedAt: r.receivedAt,
    occurredAt: r.receivedAt,
    quarantineEventRef: extra.quarantineEventRef ?? null,
    dccAlertCode: extra.dccAlertCode ?? null,
    detail: extra.detail,
  };
}

export interface DspOutputs {
  readonly passed: string;
  readonly quarantined: string;
  readonly events: string;
}

/**
 * DSP anomaly detection. A request whose SRV has thresholds is counted in every window the User set
 * for it (as in force at receipt); the first count above a Warning Threshold raises a warning event;
 * a count above an ADT quarantines the request: it is held in the quarantine store, forwarded to the
 * quarantined output, and an event with its QuarantineEventRef (alert AD1) is raised. Every other
 * request is forwarded to the passed output. Quarantined requests are counted too: they are
 * communications the User sent, and counting them keeps a flood quarantined.
 */
export class DspAnomalyProcessor implements Processor<ServiceRequestEnvelope, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private checker!: RequestChecker;
  private quarantine!: KeyValueStore<QuarantinedRequest>;
  constructor(
    private readonly stores: AnomalyStoreNames,
    private readonly config: AnomalyConfig,
    private readonly outputs: DspOutputs,
  ) {}
  init(context: ProcessorContext<unknown>): void {
    this.ctx = context;
    this.checker = new RequestChecker(context, this.stores, this.config, (all) => all);
    if (!this.stores.quarantine)
      throw new EcosError("ECOS_TOPOLOGY_INVALID", "DSP anomaly detection needs a quarantine store");
    this.quarantine = context.getStateStore<QuarantinedRequest>(this.stores.quarantine);
  }
  process(record: StreamRecord<ServiceRequestEnvelope>): void {
    const result = this.checker.check(record);
    if (result === "duplicate") return;
    if (result === "no-threshold") {
      this.ctx.forward(record, this.outputs.passed);
      return;
    }
    const r = record.value;
    const ts = record.timestamp;
    for (const c of result.checks) {
      if (!c.warning) continue;
      const e = event("DSP", r, "WARNING_THRESHOLD_CROSSED", c, c.warningThreshold, result.sequenceNumber, {
        detail: `${c.count} requests for SRV ${r.srv} in ${c.periodMinutes} minutes exceed the Warning Threshold ${c.warningThreshold}`,
      });
      this.ctx.forward({ key: r.userId, value: e, timestamp: ts }, this.outputs.events);
    }
    const breach = firstBreach(result.checks);
    if (!breach) {
      this.ctx.forward(record, this.outputs.passed);
      return;
    }
    let attempt = 0;
    let ref = quarantineRefFor(r.requestId);
    for (
      let held = this.quarantine.get(ref);
      held && held.requestId !== r.requestId;
      held = this.quarantine.get(ref)
    ) {
      ref = quarantineRefFor(r.requestId, ++attempt);
    }
    const q: QuarantinedRequest = {
      quarantineEventRef: ref,
      requestId: r.requestId,
      userId: r.userId,
      srv: r.srv,
      receivedAt: r.receivedAt,
      deviceId: r.deviceId,
      // A copy: a decoded request's raw bytes may be a view into the whole input record (or batch),
      // which a long-held request would otherwise keep in memory.
      raw: Buffer.from(r.raw),
      periodMinutes: breach.periodMinutes,
      count: breach.count,
      adt: breach.adt,
      adtSequenceNumber: result.sequenceNumber,
    };
    this.quarantine.put(ref, q);
    this.ctx.forward({ key: r.userId, value: q, timestamp: ts }, this.outputs.quarantined);
    const e = event("DSP", r, "REQUEST_QUARANTINED", breach, breach.adt, result.sequenceNumber, {
      quarantineEventRef: ref,
      dccAlertCode: DCC_ALERT_CODES.quarantine,
      detail: `${breach.count} requests for SRV ${r.srv} in ${breach.periodMinutes} minutes exceed the ADT ${breach.adt}: quarantined`,
    });
    this.ctx.forward({ key: r.userId, value: e, timestamp: ts }, this.outputs.events);
  }
}

/**
 * Exit quarantine: RELEASE forwards the held request to the passed output (header
 * `ecos.anomaly.released`), DELETE drops it; both remove it from the store and raise an event. An
 * instruction for a reference that is not held (never issued, already resolved, or another User's)
 * raises EXIT_QUARANTINE_REJECTED and changes nothing.
 */
export class ExitQuarantineProcessor implements Processor<ExitQuarantineInstruction, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private quarantine!: KeyValueStore<QuarantinedRequest>;
  constructor(
    private readonly quarantineStore: string,
    private readonly outputs: Pick<DspOutputs, "passed" | "events">,
  ) {}
  init(context: ProcessorContext<unknown>): void {
    this.ctx = context;
    this.quarantine = context.getStateStore<QuarantinedRequest>(this.quarantineStore);
  }
  process(record: StreamRecord<ExitQuarantineInstruction>): void {
    const x = record.value;
    keyedByUser(record, "exit-quarantine instruction");
    const held = this.quarantine.get(x.quarantineEventRef);
    const base = {
      party: "DSP" as const,
      userId: x.userId,
      periodMinutes: null,
      count: null,
      threshold: null,
      occurredAt: x.issuedAt,
      quarantineEventRef: x.quarantineEventRef,
      dccAlertCode: null,
    };
    if (!held || held.userId !== x.userId) {
      const e: AnomalyEvent = {
        ...base,
        eventId: `${x.instructionId}|EXIT_QUARANTINE_REJECTED`,
        kind: "EXIT_QUARANTINE_REJECTED",
        requestId: null,
        deviceId: null,
        srv: null,
        adtSequenceNumber: null,
        receivedAt: null,
        detail: `${x.action}: no request of this User ID is held under QuarantineEventRef ${x.quarantineEventRef}`,
      };
      this.ctx.forward({ key: x.userId, value: e, timestamp: record.timestamp }, this.outputs.events);
      return;
    }
    this.quarantine.delete(x.quarantineEventRef);
    const kind = x.action === "RELEASE" ? "QUARANTINE_RELEASED" : "QUARANTINE_DELETED";
    if (x.action === "RELEASE") {
      const request: ServiceRequestEnvelope = {
        requestId: held.requestId,
        userId: held.userId,
        srv: held.srv,
        receivedAt: held.receivedAt,
        deviceId: held.deviceId,
        raw: held.raw,
      };
      this.ctx.forward(
        {
          key: x.userId,
          value: request,
          timestamp: record.timestamp,
          headers: { [RELEASED_HEADER]: x.quarantineEventRef },
        },
        this.outputs.passed,
      );
    }
    const e: AnomalyEvent = {
      ...base,
      eventId: `${x.instructionId}|${kind}`,
      kind,
      requestId: held.requestId,
      deviceId: held.deviceId,
      srv: held.srv,
      adtSequenceNumber: held.adtSequenceNumber,
      receivedAt: held.receivedAt,
      detail:
        x.action === "RELEASE"
          ? "released by the User: processing continues"
          : "deleted by the User: not processed",
    };
    this.ctx.forward({ key: x.userId, value: e, timestamp: record.timestamp }, this.outputs.events);
  }
}

export interface EcosPartyOutputs {
  readonly passed: string;
  readonly refused: string;
  readonly events: string;
}

/**
 * ECoS Party anomaly detection (seed 003 §3.3): only the User's own thresholds whose Time Period
 * Applicable is 1440 minutes (no global thresholds exist here). A count above the ADT stops the
 * request: an ECOS_PARTY_THRESHOLD_BREACHED event (ECoS alert N63) and the request on the refused
 * output, where the ECoS Party path finishes it; nothing is quarantined and the supplier must resend.
 * Refused requests are counted, as at the DSP. Warning Thresholds are not applied ([GAP]: the seed
 * names only the threshold).
 */
export class EcosPartyAnomalyProcessor implements Processor<ServiceRequestEnvelope, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private checker!: RequestChecker;
  constructor(
    private readonly stores: AnomalyStoreNames,
    private readonly config: AnomalyConfig,
    private readonly outputs: EcosPartyOutputs,
  ) {}
  init(context: ProcessorContext<unknown>): void {
    this.ctx = context;
    const period = this.config.defaultPeriodMinutes;
    const noWarnings = (t: AdtThreshold): AdtThreshold => ({
      ...t,
      warningThreshold: Number.MAX_SAFE_INTEGER,
    });
    this.checker = new RequestChecker(context, this.stores, this.config, (all) =>
      all.filter((t) => t.periodMinutes === period).map(noWarnings),
    );
  }
  process(record: StreamRecord<ServiceRequestEnvelope>): void {
    const result = this.checker.check(record);
    if (result === "duplicate") return;
    if (result === "no-threshold") {
      this.ctx.forward(record, this.outputs.passed);
      return;
    }
    const breach = firstBreach(result.checks);
    if (!breach) {
      this.ctx.forward(record, this.outputs.passed);
      return;
    }
    const r = record.value;
    const e = event(
      "ECOS_PARTY",
      r,
      "ECOS_PARTY_THRESHOLD_BREACHED",
      breach,
      breach.adt,
      result.sequenceNumber,
      {
        dccAlertCode: DCC_ALERT_CODES.ecosPartyBreach,
        detail: `${breach.count} requests for SRV ${r.srv} in ${breach.periodMinutes} minutes exceed the User's ADT ${breach.adt}: not authorised, resend required`,
      },
    );
    this.ctx.forward({ key: r.userId, value: e, timestamp: record.timestamp }, this.outputs.events);
    this.ctx.forward(record, this.outputs.refused);
  }
}
