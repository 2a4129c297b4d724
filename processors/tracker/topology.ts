/**
 * response-tracker: one final Service Response per request, its stage timestamps, and its response
 * time against the Target Response Time (35 s SMETS2+, 21 s SMETS1; seed 003 §3.1).
 *
 *   duis.request-stages (key RequestID) ─▶ tracker-rekey ─▶ <app>-tracker-stages-by-device   sub-topology 0
 *   <app>-tracker-stages-by-device ┐
 *   cos.authorisations             │ (all keyed by device id: co-partitioned)               sub-topology 1
 *   device.commands                ├─▶ response-tracker ─▶ duis.responses (ServiceResponseEvent)
 *   s1sp.requests                  │                     ─▶ duis.request-stages (RECEIVED, DEVICE_RESPONDED,
 *   device.responses               ┘                        RESPONSE_SENT)
 *                                                        ─▶ duis.alerts (future-dated outcome alerts)
 *
 * Per request (store `tracker-requests`, by RequestID) it keeps what it learnt: the receipt time and
 * stage times, what was dispatched (counter, execution time), the final answer once sent. The first
 * answer that decides the request sends the one final Service Response (it replaces the DSP's I99
 * acknowledgement, which has the same RequestID key); a later or repeated answer is counted and
 * dropped. A wall-clock punctuation answers E21 when no answer came within the device time-out, and
 * E30 (as an alert) when a future-dated command's execution alert never comes. Each request's one
 * pending deadline is in its entry; a heap rebuilt from the store at start indexes them by time, so a
 * punctuation reads only what is due.
 *
 * Device answers are correlated by RequestID and checked against what was dispatched: the device id,
 * and for a SMETS2+ GBCS Response its originator (the device), recipient (the CoS Party that signed
 * the command) and counter (the command's). The device's signature over its response is not checked:
 * the DCC side here holds no device certificates (modelled; see docs/dispatch-and-tracking.md).
 *
 * Breaches of the Target Response Time are flagged on the RESPONSE_SENT stage (detail `TARGET
 * BREACHED`, header ecos.tracker.breach=true) and on the Service Response's headers: neither event
 * record has a field for it.
 */
import type { DspCheckId } from "../../workers/dsp/checks";
import type { Processor, ProcessorContext, StreamRecord } from "../runtime/api";
import type { KeyValueStore } from "../runtime/stores";
import type { Serde } from "../runtime/serde";
import { TopologyBuilder, type StoreBackendKind, type Topology } from "../runtime/topology";
import {
  COS_TOPICS,
  type CosAuthorisation,
  type DeviceCommand,
  type DeviceResponse,
  type S1spRequest,
} from "../cos/records";
import type {
  CosParty,
  DccAlertEvent,
  RequestStage,
  RequestStageEvent,
  ServiceResponseEvent,
  SmetsGeneration,
} from "../../schemas/event-records";
import { parseDeviceAlert, parseDeviceResponse } from "../../workers/gbcs/device-response";
import { entityIdString, parseGeneralSigning } from "../../workers/gbcs/pre-command";
import { DEFAULT_TRACKER_CONFIG, type TrackerConfig } from "./config";
import { DeadlineHeap } from "./deadline-heap";

export const TRACKER_TOPICS = {
  /** In and out: request stages, key RequestID. */
  stages: "duis.request-stages",
  /** In: CoS Authorisation Responses (receipt time, device type, execution time), key device id. */
  authorisations: COS_TOPICS.authorisations,
  /** In: what dispatch sent, key device id. */
  deviceCommands: COS_TOPICS.deviceCommands,
  s1spRequests: COS_TOPICS.s1spRequests,
  /** In: device and S1SP answers, key device id. */
  deviceResponses: COS_TOPICS.deviceResponses,
  /** Out: the final Service Response, key RequestID. */
  responses: "duis.responses",
  /** Out: future-dated outcome alerts, key recipient User ID. */
  alerts: COS_TOPICS.alerts,
} as const;

export type TrackerTopics = { -readonly [K in keyof typeof TRACKER_TOPICS]: string };

export function trackerTopics(prefix = ""): TrackerTopics {
  const out = {} as TrackerTopics;
  for (const [k, v] of Object.entries(TRACKER_TOPICS)) out[k as keyof TrackerTopics] = prefix + v;
  return out;
}

/** Internal (repartition) topic: `<applicationId>-tracker-stages-by-device`. */
export const STAGES_BY_DEVICE_TOPIC = "tracker-stages-by-device";

/** Store names: part of the compatibility surface (they name the changelog topics). */
export const TRACKER_STORES = {
  requests: "tracker-requests",
} as const;

/** Headers on the final Service Response and its RESPONSE_SENT stage. */
export const TRACKER_HEADERS = {
  responseTimeMs: "ecos.tracker.response-time-ms",
  targetMs: "ecos.tracker.target-ms",
  breach: "ecos.tracker.breach",
} as const;

/** Stages the tracker writes itself: not read back. */
const OWN_STAGES: ReadonlySet<RequestStage> = new Set<RequestStage>([
  "RECEIVED",
  "DEVICE_RESPONDED",
  "RESPONSE_SENT",
]);
/** Stages after which another processor has sent the final Service Response. */
/** The DSP's check id for a RequestID already seen (workers/dsp/checks.ts): its refusals answer a replay. */
const DSP_REPLAY_CHECK: DspCheckId = "replay";

const UPSTREAM_FINAL: ReadonlySet<RequestStage> = new Set<RequestStage>(["REJECTED", "COS_PARTY_REFUSED"]);
/** Order of the stages in the RESPONSE_SENT summary. */
const STAGE_ORDER: readonly RequestStage[] = [
  "RECEIVED",
  "VALIDATED",
  "COS_PARTY_REQUESTED",
  "COS_PARTY_AUTHORISED",
  "QUARANTINED",
  "ANOMALY_CHECKED",
  "DISPATCHED",
  "DEVICE_RESPONDED",
  "RESPONSE_SENT",
];
/** How long a decided answer waits for the receipt time before it is sent with the dispatch time instead. */
const HOLD_FOR_RECEIPT_MS = 5_000;
/** Answers kept for a request the tracker does not know yet (it may be in flight on another topic). */
const MAX_EARLY = 4;

/**
 * Why news of a request was dropped. "other-submission": an upstream refusal of another submission
 * under the same RequestID (the DSP's answer to a replay), which must not close the tracked one.
 */
export type DropReason = "late" | "duplicate" | "mismatched" | "unknown" | "other-submission";

export interface FinalAnswer {
  readonly code: string;
  readonly successful: boolean;
  readonly by: "device" | "timeout" | "upstream";
  readonly detail: string;
}

/** What the tracker keeps per request (store `tracker-requests`, JSON). */
export interface TrackedRequest {
  readonly requestId: string;
  userId: string;
  deviceId: string;
  smetsGeneration: SmetsGeneration;
  cosParty: CosParty | null;
  deviceType: string | null;
  /** When the DCC received the request; null until a stage or the authorisation says. */
  receivedAt: number | null;
  /** First time each stage was reached. */
  stages: Partial<Record<RequestStage, number>>;
  quarantined: boolean;
  dispatch: {
    at: number;
    counter: string | null;
    /** Entity id of the pre-command's originator (the CoS Party): a device Response's recipient. */
    cosPartyEntity: string | null;
  } | null;
  executionAt: number | null;
  cancellation: boolean;
  /** The pending deadline in the index (time-out, alert time-out, hold or expiry), or null. */
  deadline: number | null;
  final: (FinalAnswer & { at: number; responseTimeMs: number }) | null;
  /** An answer decided while the receipt time was unknown. */
  held: FinalAnswer | null;
  /** A future-dated command was accepted: its execution alert is awaited. */
  expectAlert: boolean;
  /** Alert code received (8F66/8F67), or the time-out code; null while none. */
  alert: string | null;
  /** Answers that came before anything else about the request. */
  early: DeviceResponse[];
  dropped: { late: number; duplicate: number; mismatched: number };
}

/** What reaches the tracker, tagged by source. */
export type TrackerInput =
  | { readonly kind: "stage"; readonly stage: RequestStageEvent }
  | { readonly kind: "authorisation"; readonly authorisation: CosAuthorisation }
  | { readonly kind: "command"; readonly command: DeviceCommand }
  | { readonly kind: "s1sp"; readonly request: S1spRequest }
  | { readonly kind: "response"; readonly response: DeviceResponse };

export interface TrackerSerdes {
  readonly stage: Serde<RequestStageEvent>;
  readonly authorisation: Serde<CosAuthorisation>;
  readonly deviceCommand: Serde<DeviceCommand>;
  readonly s1spRequest: Serde<S1spRequest>;
  readonly deviceResponse: Serde<DeviceResponse>;
  readonly response: Serde<ServiceResponseEvent>;
  readonly alert: Serde<DccAlertEvent>;
}

export interface TrackerOptions {
  readonly serdes: TrackerSerdes;
  readonly config?: TrackerConfig;
  readonly topicPrefix?: string;
  readonly backend?: StoreBackendKind;
  /** Observes dropped answers (metrics, tests). */
  readonly onDrop?: (d: { requestId: string; reason: DropReason }) => void;
  /** Observes each final answer with its response time (metrics, benchmarks). */
  readonly onFinal?: (d: {
    requestId: string;
    code: string;
    responseTimeMs: number;
    breach: boolean;
  }) => void;
}

/** JSON, with Buffers (in early answers) written as base64. */
export const trackedRequestSerde: Serde<TrackedRequest> = {
  name: "json:TrackedRequest",
  serialize: (_t, v) =>
    Buffer.from(
      JSON.stringify({
        ...v,
        early: v.early.map((r) => ({
          ...r,
          payload: r.payload === null ? null : r.payload.toString("base64"),
        })),
      }),
      "utf8",
    ),
  deserialize: (_t, data) => {
    const o = JSON.parse(data.toString("utf8")) as Omit<TrackedRequest, "early"> & {
      early: Array<Omit<DeviceResponse, "payload"> & { payload: string | null }>;
    };
    return {
      ...o,
      early: o.early.map((r) => ({
        ...r,
        payload: r.payload === null ? null : Buffer.from(r.payload, "base64"),
      })),
    };
  },
};

/** User ID from a RequestID `<user>:<device>:<counter>`. */
const userOf = (requestId: string): string => requestId.split(":")[0] ?? "";

function hexStatus(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, "0");
}

/** Sub-topology 0: stage events re-keyed by device id (only 6.23, only those written by others). */
class StageRekeyProcessor implements Processor<RequestStageEvent, RequestStageEvent> {
  private ctx!: ProcessorContext<RequestStageEvent>;
  init(ctx: ProcessorContext<RequestStageEvent>): void {
    this.ctx = ctx;
  }
  process(record: StreamRecord<RequestStageEvent>): void {
    const s = record.value;
    if (s.srv !== "6.23" || OWN_STAGES.has(s.stage) || !s.deviceId) return;
    this.ctx.forward({ ...record, key: s.deviceId });
  }
}

/** Tags a source's records for the tracker. */
class Tag<V> implements Processor<V, TrackerInput> {
  private ctx!: ProcessorContext<TrackerInput>;
  constructor(private readonly tag: (v: V) => TrackerInput) {}
  init(ctx: ProcessorContext<TrackerInput>): void {
    this.ctx = ctx;
  }
  process(record: StreamRecord<V>): void {
    this.ctx.forward({ ...record, value: this.tag(record.value) });
  }
}

/** The response tracker (sub-topology 1). */
export class ResponseTrackerProcessor implements Processor<TrackerInput, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private requests!: KeyValueStore<TrackedRequest>;
  private readonly deadlines = new DeadlineHeap();
  private readonly cfg: TrackerConfig;
  /** Counters for metrics (this instance, since its start). */
  readonly counts = {
    late: 0,
    duplicate: 0,
    mismatched: 0,
    unknown: 0,
    "other-submission": 0,
    finals: 0,
    breaches: 0,
    timeouts: 0,
  };

  constructor(private readonly opts: TrackerOptions) {
    this.cfg = opts.config ?? DEFAULT_TRACKER_CONFIG;
  }

  init(ctx: ProcessorContext<unknown>): void {
    this.ctx = ctx;
    this.requests = ctx.getStateStore<TrackedRequest>(TRACKER_STORES.requests);
    // The index of deadlines is rebuilt from the restored store.
    for (const [id, e] of this.requests.all()) if (e.deadline !== null) this.deadlines.push(e.deadline, id);
    ctx.schedule(this.cfg.punctuationMs, "wall-clock-time", (now) => this.punctuate(now));
  }

  process(record: StreamRecord<TrackerInput>): void {
    const now = this.ctx.currentSystemTimeMs();
    const input = record.value;
    switch (input.kind) {
      case "stage":
        return this.onStage(input.stage, now);
      case "authorisation":
        return this.onAuthorisation(input.authorisation, now);
      case "command":
        return this.onDispatch(input.command.requestId, input.command.deviceId, "SMETS2", now, input.command);
      case "s1sp":
        return this.onDispatch(input.request.requestId, input.request.deviceId, "SMETS1", now, input.request);
      case "response":
        return this.onResponse(input.response, now);
    }
  }

  // ---- inputs -----------------------------------------------------------------------------------

  private entry(requestId: string, deviceId: string, smets: SmetsGeneration): TrackedRequest {
    return (
      this.requests.get(requestId) ?? {
        requestId,
        userId: userOf(requestId),
        deviceId,
        smetsGeneration: smets,
        cosParty: null,
        deviceType: null,
        receivedAt: null,
        stages: {},
        quarantined: false,
        dispatch: null,
        executionAt: null,
        cancellation: false,
        deadline: null,
        final: null,
        held: null,
        expectAlert: false,
        alert: null,
        early: [],
        dropped: { late: 0, duplicate: 0, mismatched: 0 },
      }
    );
  }

  private learnReceipt(e: TrackedRequest, receivedAt: number, now: number): void {
    if (e.receivedAt !== null) return;
    e.receivedAt = receivedAt;
    this.noteStage(e, "RECEIVED", receivedAt);
    this.emitStage(e, "RECEIVED", receivedAt, null, null, now);
    if (e.held && !e.final) {
      const held = e.held;
      e.held = null;
      this.sendFinal(e, held, now);
    }
  }

  private noteStage(e: TrackedRequest, stage: RequestStage, at: number): void {
    const was = e.stages[stage];
    if (was === undefined || at < was) e.stages[stage] = at;
  }

  /**
   * True for news of a request the tracker does not know, about something that happened at `at` at
   * least a retention ago: the request was answered and forgotten, and a replayed or very late stage,
   * authorisation or command must not start a second life (and a second final response) for it. An
   * entry is forgotten a retention after its final answer, which is after receipt and dispatch.
   */
  private forgotten(requestId: string, at: number, now: number): boolean {
    if (now - at < this.cfg.retentionMs || this.requests.get(requestId) !== undefined) return false;
    this.drop(null, requestId, "unknown");
    return true;
  }

  private onStage(s: RequestStageEvent, now: number): void {
    // Dispatch after a release from quarantine may come long after receipt: judged by its own time.
    const at = s.stage === "DISPATCHED" || s.stage === "ANOMALY_CHECKED" ? s.occurredAt : s.receivedAt;
    if (this.forgotten(s.requestId, at, now)) return;
    const known = this.requests.get(s.requestId);
    if (UPSTREAM_FINAL.has(s.stage)) {
      // A refusal of a request the tracker is not tracking was answered by the refusing processor and
      // needs nothing more; keeping no entry also keeps the DSP's refusal of a replay — which can reach
      // the tracker before the original's own first stage — from closing the original once it arrives.
      if (known === undefined) return;
      // The DSP decides each submission once (VALIDATED or REJECTED, detail "<check id>: <reason>"): its
      // refusal with the replay check, or any refusal with another receipt time, answered another
      // submission under this RequestID and says nothing of this one.
      const replayRefusal = s.stage === "REJECTED" && (s.detail ?? "").startsWith(`${DSP_REPLAY_CHECK}:`);
      if (replayRefusal || (known.receivedAt !== null && known.receivedAt !== s.receivedAt)) {
        this.drop(known, s.requestId, "other-submission");
        return;
      }
    }
    const e = this.entry(s.requestId, s.deviceId, s.smetsGeneration);
    e.userId = s.userId;
    e.smetsGeneration = s.smetsGeneration;
    if (s.cosParty) e.cosParty = s.cosParty;
    this.noteStage(e, s.stage, s.occurredAt);
    if (s.stage === "QUARANTINED") e.quarantined = true;
    if (UPSTREAM_FINAL.has(s.stage) && !e.final && !e.held) {
      // Another processor answered (a DSP, dispatch or CoS Party refusal): nothing more to send.
      e.final = {
        code: s.responseCode ?? "",
        successful: false,
        by: "upstream",
        detail: s.detail ?? s.stage,
        at: s.occurredAt,
        responseTimeMs: s.occurredAt - s.receivedAt,
      };
    }
    this.learnReceipt(e, s.receivedAt, now);
    this.settle(e, now);
  }

  private onAuthorisation(a: CosAuthorisation, now: number): void {
    if (this.forgotten(a.requestId, a.receivedAt, now)) return;
    const e = this.entry(a.requestId, a.deviceId, a.smetsGeneration);
    e.userId = a.userId;
    e.smetsGeneration = a.smetsGeneration;
    e.cosParty = a.cosParty;
    e.deviceType = a.deviceType;
    e.executionAt = a.executionAt;
    e.cancellation = a.cancellation;
    this.noteStage(e, "COS_PARTY_AUTHORISED", a.authorisedAt);
    this.learnReceipt(e, a.receivedAt, now);
    this.settle(e, now);
  }

  private onDispatch(
    requestId: string,
    deviceId: string,
    smets: SmetsGeneration,
    now: number,
    d: DeviceCommand | S1spRequest,
  ): void {
    if (this.forgotten(requestId, d.dispatchedAt, now)) return;
    const e = this.entry(requestId, deviceId, smets);
    e.smetsGeneration = smets;
    if (!e.dispatch) {
      let cosPartyEntity: string | null = null;
      if ("command" in d) {
        try {
          cosPartyEntity = entityIdString(parseGeneralSigning(d.command).header.originator);
        } catch {
          cosPartyEntity = null; // dispatch checked it; a malformed copy here only loses the recipient check
        }
      }
      e.dispatch = { at: d.dispatchedAt, counter: "counter" in d ? d.counter : null, cosPartyEntity };
      e.executionAt = d.executionAt;
      e.cancellation = d.cancellation;
      this.noteStage(e, "DISPATCHED", d.dispatchedAt);
    }
    const early = e.early;
    e.early = [];
    this.settle(e, now);
    for (const r of early) this.onResponse(r, now);
  }

  private drop(e: TrackedRequest | null, requestId: string, reason: DropReason): void {
    this.counts[reason]++;
    if (e && reason !== "unknown" && reason !== "other-submission") e.dropped[reason]++;
    this.opts.onDrop?.({ requestId, reason });
  }

  private onResponse(r: DeviceResponse, now: number): void {
    let e = this.requests.get(r.requestId);
    if (!e || !e.dispatch) {
      // Not dispatched as far as the tracker knows: the command may still be in flight to it.
      if (!e && r.requestId.split(":").length === 3) {
        e = this.entry(r.requestId, r.deviceId, r.source === "S1SP" ? "SMETS1" : "SMETS2");
      }
      if (!e || e.final || e.early.length >= MAX_EARLY) {
        this.drop(e ?? null, r.requestId, e?.final ? "late" : "unknown");
        if (e) this.requests.put(e.requestId, e);
        return;
      }
      e.early.push(r);
      this.settle(e, now);
      return;
    }
    this.timeOutIfDue(e, now);
    if (r.deviceId !== e.deviceId) {
      this.drop(e, r.requestId, "mismatched");
      this.requests.put(e.requestId, e);
      return;
    }
    const gbcs = this.readGbcs(e, r);
    if (gbcs === null) {
      this.drop(e, r.requestId, "mismatched");
      this.requests.put(e.requestId, e);
      return;
    }
    if (r.kind === "ALERT") this.onAlert(e, r, gbcs, now);
    else if (e.final) this.drop(e, r.requestId, e.final.by === "device" ? "duplicate" : "late");
    else {
      this.noteStage(e, "DEVICE_RESPONDED", r.answeredAt);
      this.emitStage(e, "DEVICE_RESPONDED", r.answeredAt, null, `${r.source} ${r.status}${gbcs.detail}`, now);
      const answer = this.answerFor(r, gbcs.detail);
      e.expectAlert =
        r.status === "ACCEPTED" && e.executionAt !== null && !e.cancellation && answer.successful;
      this.finalise(e, answer, now);
    }
    this.settle(e, now);
  }

  private onAlert(
    e: TrackedRequest,
    r: DeviceResponse,
    gbcs: { detail: string; alertCode: string | null },
    now: number,
  ): void {
    if (e.alert !== null) {
      this.drop(e, r.requestId, "duplicate");
      return;
    }
    if (e.final && e.final.by !== "device") {
      this.drop(e, r.requestId, "late");
      return;
    }
    const code = gbcs.alertCode ?? (r.status === "SUCCESS" ? "8F66" : "8F67");
    e.alert = code;
    this.noteStage(e, "DEVICE_RESPONDED", r.answeredAt);
    this.emitStage(
      e,
      "DEVICE_RESPONDED",
      r.answeredAt,
      null,
      `${r.source} alert ${code}${gbcs.detail}`,
      now,
      1,
    );
    if (!e.final) {
      // The acceptance never arrived; the alert is the device's answer.
      this.finalise(e, this.answerFor(r, gbcs.detail), now);
    }
    this.emitAlert(e, code, "FutureDatedDeviceAlertMessage", `${r.status}${gbcs.detail}`, now);
  }

  /** Checks a SMETS2+ device's GBCS bytes against the dispatched command; null when they do not match. */
  private readGbcs(
    e: TrackedRequest,
    r: DeviceResponse,
  ): { detail: string; alertCode: string | null } | null {
    if (r.source !== "DEVICE" || r.payload === null)
      return { detail: r.detail ? `: ${r.detail}` : "", alertCode: null };
    try {
      const counter = e.dispatch?.counter ?? null;
      if (r.kind === "RESPONSE") {
        const p = parseDeviceResponse(r.payload);
        if (entityIdString(p.header.originator) !== e.deviceId) return null;
        if (counter !== null && p.header.originatorCounter.toString() !== counter) return null;
        const cos = e.dispatch?.cosPartyEntity ?? null;
        if (cos !== null && entityIdString(p.header.recipient) !== cos) return null;
        const failed = (p.outcome?.replacementOutcomes ?? []).filter((o) => o.status !== "success");
        const statuses = failed.map(
          (o) => `${o.targetCell.keyUsage}${o.targetCell.cellUsage ? "/topUp" : ""} ${o.status}`,
        );
        return { detail: statuses.length ? `: ${statuses.join(", ")}` : "", alertCode: null };
      }
      const a = parseDeviceAlert(r.payload);
      if (entityIdString(a.header.originator) !== e.deviceId) return null;
      if (counter !== null && a.outcome.authorisingSeqNumber.toString() !== counter) return null;
      const failed = a.outcome.replacementOutcomes.filter((o) => o.status !== "success").map((o) => o.status);
      return { detail: failed.length ? `: ${failed.join(", ")}` : "", alertCode: hexStatus(a.alertCode) };
    } catch {
      return null;
    }
  }

  private answerFor(r: DeviceResponse, detail: string): FinalAnswer {
    const c = this.cfg.codes;
    const status = r.status;
    const d = `${r.source} ${status}${detail}`;
    if (status === "SUCCESS") return { code: c.success, successful: true, by: "device", detail: d };
    if (status === "ACCEPTED") return { code: c.accepted, successful: true, by: "device", detail: d };
    if (status === "FAILURE") return { code: c.deviceFailure, successful: false, by: "device", detail: d };
    if (this.cfg.unreachableStatuses.includes(status))
      return { code: c.unreachable, successful: false, by: "device", detail: d };
    return { code: c.deviceRefused, successful: false, by: "device", detail: d };
  }

  // ---- decisions --------------------------------------------------------------------------------

  /** Sends the final answer now, or holds it until the receipt time is known. */
  private finalise(e: TrackedRequest, answer: FinalAnswer, now: number): void {
    if (e.final) return;
    if (e.receivedAt === null) {
      e.held = answer;
      return;
    }
    this.sendFinal(e, answer, now);
  }

  private sendFinal(e: TrackedRequest, answer: FinalAnswer, now: number): void {
    const receivedAt = e.receivedAt ?? e.dispatch?.at ?? now;
    const responseTimeMs = now - receivedAt;
    const targetMs = this.cfg.targetMs[e.smetsGeneration];
    const breach = responseTimeMs > targetMs;
    e.final = { ...answer, at: now, responseTimeMs };
    this.noteStage(e, "RESPONSE_SENT", now);
    const headers = {
      [TRACKER_HEADERS.responseTimeMs]: String(responseTimeMs),
      [TRACKER_HEADERS.targetMs]: String(targetMs),
      [TRACKER_HEADERS.breach]: String(breach),
    };
    const response: ServiceResponseEvent = {
      requestId: e.requestId,
      userId: e.userId,
      supplierMpid: null,
      srv: "6.23",
      deviceId: e.deviceId,
      deviceType: e.deviceType,
      smetsGeneration: e.smetsGeneration,
      cosParty: e.cosParty,
      responseCode: answer.code,
      successful: answer.successful,
      receivedAt,
      respondedAt: now,
    };
    this.ctx.forward({ key: e.requestId, value: response, timestamp: now, headers }, "responses-sink");
    const times = STAGE_ORDER.filter((s) => e.stages[s] !== undefined)
      .map((s) => `${s}+${e.stages[s]! - receivedAt}`)
      .join(" ");
    const detail =
      `${answer.detail}; response time ${responseTimeMs} ms, target ${targetMs} ms` +
      `${breach ? ": TARGET BREACHED" : ""}${e.receivedAt === null ? " (receipt time unknown: from dispatch)" : ""}; ${times}`;
    this.emitStage(e, "RESPONSE_SENT", now, answer.code, detail, now, 0, headers);
    this.counts.finals++;
    if (breach) this.counts.breaches++;
    this.opts.onFinal?.({ requestId: e.requestId, code: answer.code, responseTimeMs, breach });
  }

  private dispatched(e: TrackedRequest): boolean {
    return e.dispatch !== null || e.stages.DISPATCHED !== undefined;
  }

  private timeOutIfDue(e: TrackedRequest, now: number): void {
    if (e.final || e.held || e.deadline === null || now < e.deadline) return;
    this.timeOut(e, now);
  }

  private timeOut(e: TrackedRequest, now: number): void {
    const c = this.cfg.codes;
    this.counts.timeouts++;
    const answer: FinalAnswer = this.dispatched(e)
      ? { code: c.noResponse, successful: false, by: "timeout", detail: "no response from the device" }
      : { code: c.notDispatched, successful: false, by: "timeout", detail: "not dispatched in time" };
    this.sendFinal(e, answer, now);
  }

  /** Re-arms the one deadline the request needs next, and stores it (or forgets it when done). */
  private settle(e: TrackedRequest, now: number): void {
    let next: number | null = null;
    if (!e.final) {
      if (e.held) next = (e.dispatch?.at ?? now) + HOLD_FOR_RECEIPT_MS;
      else if (e.quarantined && !this.dispatched(e))
        // Held by anomaly detection: no time-out runs; forgotten if the User never releases it.
        next = (e.stages.QUARANTINED ?? now) + this.cfg.quarantineRetentionMs;
      else {
        const base = e.quarantined
          ? (e.dispatch?.at ?? e.stages.DISPATCHED)
          : (e.receivedAt ?? e.dispatch?.at);
        next =
          base === undefined || base === null ? null : base + this.cfg.deviceTimeoutMs[e.smetsGeneration];
        if (next === null && e.early.length > 0) next = now + this.cfg.retentionMs;
      }
    } else if (e.expectAlert && e.alert === null && e.executionAt !== null) {
      next = e.executionAt + this.cfg.alertGraceMs;
    } else {
      next = e.final.at + this.cfg.retentionMs;
    }
    if (e.deadline !== next) {
      if (next !== null) this.deadlines.push(next, e.requestId);
      e.deadline = next;
    }
    this.requests.put(e.requestId, e);
  }

  private punctuate(now: number): void {
    for (let due = this.deadlines.popDue(now); due !== null; due = this.deadlines.popDue(now)) {
      const requestId = due.requestId;
      const e = this.requests.get(requestId);
      if (!e || e.deadline !== due.at) continue; // moved or forgotten since
      e.deadline = null;
      if (!e.final && e.held) {
        const held = e.held;
        e.held = null;
        this.sendFinal(e, held, now);
      } else if (!e.final && e.quarantined && !this.dispatched(e)) {
        this.requests.delete(requestId); // quarantined and never released (or deleted by the User)
        continue;
      } else if (!e.final && (e.dispatch || e.receivedAt !== null)) {
        this.timeOut(e, now);
      } else if (e.final && e.expectAlert && e.alert === null) {
        e.alert = this.cfg.codes.futureDatedTimeout;
        this.emitAlert(e, e.alert, "FutureDatedCommandTimeout", "no execution alert from the device", now);
      } else {
        // Done and past retention (or never identified): forgotten.
        if (e.early.length > 0) for (const r of e.early) this.drop(null, r.requestId, "unknown");
        this.requests.delete(requestId);
        continue;
      }
      this.settle(e, now);
    }
  }

  // ---- outputs ----------------------------------------------------------------------------------

  private emitStage(
    e: TrackedRequest,
    stage: RequestStage,
    occurredAt: number,
    responseCode: string | null,
    detail: string | null,
    now: number,
    seq = 0,
    headers?: Record<string, string>,
  ): void {
    const value: RequestStageEvent = {
      eventId: `${e.requestId}:${stage}:${seq}`,
      requestId: e.requestId,
      userId: e.userId,
      srv: "6.23",
      deviceId: e.deviceId,
      smetsGeneration: e.smetsGeneration,
      stage,
      cosParty: e.cosParty,
      responseCode,
      receivedAt: e.receivedAt ?? e.dispatch?.at ?? occurredAt,
      occurredAt,
      detail: detail === null ? null : detail.slice(0, 1000),
    };
    this.ctx.forward(
      { key: e.requestId, value, timestamp: now, ...(headers ? { headers } : {}) },
      "stages-sink",
    );
  }

  private emitAlert(e: TrackedRequest, code: string, type: string, detail: string, now: number): void {
    const alert: DccAlertEvent = {
      alertId: `${e.requestId}:${code}`,
      alertCode: code,
      alertType: type,
      recipientUserId: e.userId,
      deviceId: e.deviceId,
      requestId: e.requestId,
      ecosErrorCode: null,
      raisedAt: now,
      detail: detail.slice(0, 500),
    };
    this.ctx.forward({ key: e.userId, value: alert, timestamp: now }, "alerts-sink");
  }
}

/** The response-tracker topology (both drivers run it). */
export function buildTrackerTopology(opts: TrackerOptions): Topology {
  const t = trackerTopics(opts.topicPrefix);
  const sd = opts.serdes;
  const backend = opts.backend ?? "memory";
  return new TopologyBuilder()
    .addSource("stages", { topics: [t.stages], valueSerde: sd.stage })
    .addProcessor("tracker-rekey", () => new StageRekeyProcessor(), "stages")
    .addInternalTopic(STAGES_BY_DEVICE_TOPIC)
    .addSink(
      "stages-by-device-sink",
      { topic: STAGES_BY_DEVICE_TOPIC, valueSerde: sd.stage },
      "tracker-rekey",
    )
    .addSource("stages-by-device", { topics: [STAGES_BY_DEVICE_TOPIC], valueSerde: sd.stage })
    .addSource("authorisations", { topics: [t.authorisations], valueSerde: sd.authorisation })
    .addSource("device-commands", { topics: [t.deviceCommands], valueSerde: sd.deviceCommand })
    .addSource("s1sp-requests", { topics: [t.s1spRequests], valueSerde: sd.s1spRequest })
    .addSource("device-responses", { topics: [t.deviceResponses], valueSerde: sd.deviceResponse })
    .addProcessor(
      "tag-stage",
      () => new Tag<RequestStageEvent>((stage) => ({ kind: "stage", stage })),
      "stages-by-device",
    )
    .addProcessor(
      "tag-authorisation",
      () => new Tag<CosAuthorisation>((authorisation) => ({ kind: "authorisation", authorisation })),
      "authorisations",
    )
    .addProcessor(
      "tag-command",
      () => new Tag<DeviceCommand>((command) => ({ kind: "command", command })),
      "device-commands",
    )
    .addProcessor(
      "tag-s1sp",
      () => new Tag<S1spRequest>((request) => ({ kind: "s1sp", request })),
      "s1sp-requests",
    )
    .addProcessor(
      "tag-response",
      () => new Tag<DeviceResponse>((response) => ({ kind: "response", response })),
      "device-responses",
    )
    .addProcessor(
      "response-tracker",
      () => new ResponseTrackerProcessor(opts),
      "tag-stage",
      "tag-authorisation",
      "tag-command",
      "tag-s1sp",
      "tag-response",
    )
    .addStateStore(
      { name: TRACKER_STORES.requests, valueSerde: trackedRequestSerde, backend },
      "response-tracker",
    )
    .addSink("responses-sink", { topic: t.responses, valueSerde: sd.response }, "response-tracker")
    .addSink("stages-sink", { topic: t.stages, valueSerde: sd.stage }, "response-tracker")
    .addSink("alerts-sink", { topic: t.alerts, valueSerde: sd.alert }, "response-tracker")
    .build();
}
