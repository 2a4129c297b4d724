/**
 * dsp-dispatch: CoS Authorisation Responses in, commands to devices (SMETS2+) or countersigned requests
 * to the S1SP (SMETS1) out — after the DSP has checked the authorisation and run its own anomaly
 * detection (seed 003 §3.3).
 *
 *   cos.authorisations (key device id, CosAuthorisation)                              sub-topology 0
 *     dispatch-check   first-seen RequestID only (a redelivery is dropped) → checkAuthorisation
 *                      (countersignatures, pre-command signature and mirror) → counter above every
 *                      counter dispatched to the device → internal topic dispatch-by-user (key User ID)
 *        └─ refused → duis.responses (ServiceResponseEvent, header ecos.dispatch.refusal) + REJECTED stage
 *   <app>-dispatch-by-user + adt.files + anomaly.exit-quarantine (key User ID)        sub-topology 1
 *     dispatch-hold    keeps the authorisation by RequestID, hands the countersigned request on as a
 *                      ServiceRequestEnvelope to DSP anomaly detection (processors/anomaly, reused as is)
 *     dsp-anomaly-*    windows per (User ID, SRV) against the User's ADT table; warning; quarantine
 *     dispatch-send    passed (or released) → device.commands (DeviceCommand) or s1sp.requests
 *                      (S1spRequest), key device id; ANOMALY_CHECKED + DISPATCHED stages
 *     dispatch-held    quarantined → QUARANTINED stage
 *
 * Stage events (duis.request-stages, key RequestID): COS_PARTY_AUTHORISED (at authorisedAt),
 * REJECTED, QUARANTINED, ANOMALY_CHECKED, DISPATCHED. Anomaly events go to anomaly.events.
 *
 * Why the repartition: DSP anomaly detection counts per User, and its stores are keyed by User ID;
 * the authorisations are keyed by device so that one device's requests stay in order for the counter
 * check. One internal hop costs milliseconds against the 35 s / 21 s Target Response Time.
 */
import type { Processor, ProcessorContext, StreamRecord } from "../runtime/api";
import type { KeyValueStore } from "../runtime/stores";
import { jsonSerde, type Serde } from "../runtime/serde";
import { TopologyBuilder, type StoreBackendKind, type Topology } from "../runtime/topology";
import { COS_TOPICS, type CosAuthorisation, type DeviceCommand, type S1spRequest } from "../cos/records";
import type { RequestStage, RequestStageEvent, ServiceResponseEvent } from "../../schemas/event-records";
import { acceptDispatchedCounter, type CosCounterEntry } from "../ecos-party/cos-counter";
import type { AnomalyConfig } from "../anomaly/config";
import type {
  AdtFileSubmission,
  AnomalyEvent,
  ExitQuarantineInstruction,
  ServiceRequestEnvelope,
} from "../anomaly/records";
import { ANOMALY_TOPICS, addDspAnomalyDetection } from "../anomaly/topology";
import { checkAuthorisation, type AuthorisationTrust } from "./authorisation-check";
import { DEFAULT_DISPATCH_CODES, type DispatchCodeTable, type DispatchRefusal } from "./codes";

export const DISPATCH_TOPICS = {
  /** In: CoS Authorisation Responses, key device id. */
  authorisations: COS_TOPICS.authorisations,
  /** In (anomaly detection): ADT files, key User ID. */
  adtFiles: ANOMALY_TOPICS.adtFiles,
  /** In (anomaly detection): exit-quarantine instructions, key User ID. */
  exitQuarantine: ANOMALY_TOPICS.exitQuarantine,
  /** Out: commands to SMETS2+ devices, key device id. */
  deviceCommands: COS_TOPICS.deviceCommands,
  /** Out: countersigned requests to the S1SP, key device id. */
  s1spRequests: COS_TOPICS.s1spRequests,
  /** Out: Service Responses for refused authorisations, key RequestID. */
  responses: "duis.responses",
  /** Out: request stages, key RequestID. */
  stages: "duis.request-stages",
  /** Out: anomaly warnings and quarantines, key User ID. */
  anomalyEvents: ANOMALY_TOPICS.events,
} as const;

export type DispatchTopics = { -readonly [K in keyof typeof DISPATCH_TOPICS]: string };

export function dispatchTopics(prefix = ""): DispatchTopics {
  const out = {} as DispatchTopics;
  for (const [k, v] of Object.entries(DISPATCH_TOPICS)) out[k as keyof DispatchTopics] = prefix + v;
  return out;
}

/** Internal (repartition) topic: `<applicationId>-dispatch-by-user`. */
export const BY_USER_TOPIC = "dispatch-by-user";

/** Store names: part of the compatibility surface (they name the changelog topics). */
export const DISPATCH_STORES = {
  /** RequestID (upper case) → what was decided: a second authorisation for it is dropped. */
  requests: "dispatch-requests",
  /** Device id → the last CoS counter dispatched to it. */
  counters: "dispatch-cos-counters",
  /** RequestID → the checked authorisation while anomaly detection decides (and while quarantined). */
  held: "dispatch-held",
} as const;

/** Record header naming the refusal on a dispatch Service Response. */
export const REFUSAL_HEADER = "ecos.dispatch.refusal";

export interface DispatchSerdes {
  readonly authorisation: Serde<CosAuthorisation>;
  readonly deviceCommand: Serde<DeviceCommand>;
  readonly s1spRequest: Serde<S1spRequest>;
  readonly response: Serde<ServiceResponseEvent>;
  readonly stage: Serde<RequestStageEvent>;
  /** Anomaly detection's inputs and events (processors/anomaly/serdes.ts in the product). */
  readonly adtFile: Serde<AdtFileSubmission>;
  readonly exit: Serde<ExitQuarantineInstruction>;
  readonly anomalyEvent: Serde<AnomalyEvent>;
}

export interface DispatchOptions {
  readonly serdes: DispatchSerdes;
  readonly trust: AuthorisationTrust;
  /** DSP anomaly detection's configuration; null runs dispatch without it (a seam for deployments that do it elsewhere). */
  readonly anomaly: AnomalyConfig | null;
  readonly responseCodes?: DispatchCodeTable;
  readonly topicPrefix?: string;
  readonly backend?: StoreBackendKind;
  /** Observes each decision (metrics, tests). */
  readonly onDecision?: (d: {
    requestId: string;
    outcome: DispatchRefusal | "passed" | "redelivery";
  }) => void;
}

/** What the idempotency store keeps per RequestID. */
export interface DispatchClaim {
  readonly outcome: DispatchRefusal | "passed";
  readonly decidedAt: number;
}

function stageEvent(
  a: CosAuthorisation,
  stage: RequestStage,
  occurredAt: number,
  responseCode: string | null = null,
  detail: string | null = null,
): StreamRecord<RequestStageEvent> {
  return {
    key: a.requestId,
    timestamp: occurredAt,
    value: {
      eventId: `${a.requestId}:${stage}:0`,
      requestId: a.requestId,
      userId: a.userId,
      srv: "6.23",
      deviceId: a.deviceId,
      smetsGeneration: a.smetsGeneration,
      stage,
      cosParty: a.cosParty,
      responseCode,
      receivedAt: a.receivedAt,
      occurredAt,
      detail,
    },
  };
}

/** Sub-topology 0: idempotency, the authorisation check, the counter; refusals answered here. */
export class DispatchCheckProcessor implements Processor<CosAuthorisation, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private requests!: KeyValueStore<DispatchClaim>;
  private counters!: KeyValueStore<CosCounterEntry>;
  private readonly codes: DispatchCodeTable;
  /** Authorisations dropped because their RequestID was already decided (redeliveries, re-sends). */
  redeliveries = 0;

  constructor(private readonly opts: DispatchOptions) {
    this.codes = opts.responseCodes ?? DEFAULT_DISPATCH_CODES;
  }

  init(ctx: ProcessorContext<unknown>): void {
    this.ctx = ctx;
    this.requests = ctx.getStateStore<DispatchClaim>(DISPATCH_STORES.requests);
    this.counters = ctx.getStateStore<CosCounterEntry>(DISPATCH_STORES.counters);
  }

  process(record: StreamRecord<CosAuthorisation>): void {
    const a = record.value;
    const claimKey = a.requestId.toUpperCase();
    if (this.requests.get(claimKey)) {
      // Never two commands for one request: whatever the copy says, the first decision stands.
      this.redeliveries++;
      this.opts.onDecision?.({ requestId: a.requestId, outcome: "redelivery" });
      return;
    }
    const now = this.ctx.currentSystemTimeMs();
    this.ctx.forward(stageEvent(a, "COS_PARTY_AUTHORISED", a.authorisedAt), "check-stages-sink");
    // Certificate paths are judged at the time the CoS Party authorised (as the DSP judged the User's at receipt).
    const v = checkAuthorisation(a, this.opts.trust, a.authorisedAt);
    let refusal: { refusal: DispatchRefusal; detail: string } | null = v.ok ? null : v;
    if (
      v.ok &&
      v.counter !== null &&
      !acceptDispatchedCounter(this.counters, a.deviceId, a.requestId, v.counter)
    )
      refusal = {
        refusal: "counter-stale",
        detail: `counter ${v.counter} is not above the last counter dispatched to ${a.deviceId}`,
      };
    this.requests.put(claimKey, { outcome: refusal ? refusal.refusal : "passed", decidedAt: now });
    this.opts.onDecision?.({ requestId: a.requestId, outcome: refusal ? refusal.refusal : "passed" });
    if (!refusal) {
      this.ctx.forward({ key: a.userId, value: a, timestamp: record.timestamp }, "by-user-sink");
      return;
    }
    const code = this.codes[refusal.refusal];
    const response: ServiceResponseEvent = {
      requestId: a.requestId,
      userId: a.userId,
      supplierMpid: null,
      srv: "6.23",
      deviceId: a.deviceId,
      deviceType: a.deviceType,
      smetsGeneration: a.smetsGeneration,
      cosParty: a.cosParty,
      responseCode: code,
      successful: false,
      receivedAt: a.receivedAt,
      respondedAt: now,
    };
    this.ctx.forward(
      {
        key: a.requestId,
        value: response,
        timestamp: now,
        headers: { [REFUSAL_HEADER]: refusal.refusal, "ecos.dispatch.reason": refusal.detail.slice(0, 1000) },
      },
      "check-responses-sink",
    );
    this.ctx.forward(
      stageEvent(a, "REJECTED", now, code, `${refusal.refusal}: ${refusal.detail}`.slice(0, 500)),
      "check-stages-sink",
    );
  }
}

/** Sub-topology 1, first node: keeps the authorisation and hands its request to anomaly detection. */
export class DispatchHoldProcessor implements Processor<CosAuthorisation, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private held!: KeyValueStore<CosAuthorisation>;
  init(ctx: ProcessorContext<unknown>): void {
    this.ctx = ctx;
    this.held = ctx.getStateStore<CosAuthorisation>(DISPATCH_STORES.held);
  }
  process(record: StreamRecord<CosAuthorisation>): void {
    const a = record.value;
    this.held.put(a.requestId, a);
    const envelope: ServiceRequestEnvelope = {
      requestId: a.requestId,
      userId: a.userId,
      srv: "6.23",
      receivedAt: a.receivedAt,
      deviceId: a.deviceId,
      raw: a.countersigned,
    };
    this.ctx.forward({ key: a.userId, value: envelope, timestamp: record.timestamp });
  }
}

/** Sends what passed anomaly detection (or was released from quarantine) to the device or the S1SP. */
export class DispatchSendProcessor implements Processor<ServiceRequestEnvelope, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private held!: KeyValueStore<CosAuthorisation>;
  /** Passed requests with no held authorisation (already sent): dropped. */
  orphans = 0;
  init(ctx: ProcessorContext<unknown>): void {
    this.ctx = ctx;
    this.held = ctx.getStateStore<CosAuthorisation>(DISPATCH_STORES.held);
  }
  process(record: StreamRecord<ServiceRequestEnvelope>): void {
    const a = this.held.get(record.value.requestId);
    if (!a) {
      this.orphans++;
      return;
    }
    this.held.delete(a.requestId);
    const now = this.ctx.currentSystemTimeMs();
    this.ctx.forward(stageEvent(a, "ANOMALY_CHECKED", now), "send-stages-sink");
    if (a.smetsGeneration === "SMETS2") {
      // [I] modelled: the DSP would wrap the pre-command in the ACB General-Ciphering MAC here (§3.1).
      const command: DeviceCommand = {
        requestId: a.requestId,
        deviceId: a.deviceId,
        command: a.preCommand!,
        counter: a.counter!,
        dispatchedAt: now,
        executionAt: a.executionAt,
        cancellation: a.cancellation,
      };
      this.ctx.forward({ key: a.deviceId, value: command, timestamp: now }, "device-commands-sink");
    } else {
      const request: S1spRequest = {
        requestId: a.requestId,
        deviceId: a.deviceId,
        userId: a.userId,
        countersigned: a.countersigned,
        dispatchedAt: now,
        executionAt: a.executionAt,
        cancellation: a.cancellation,
      };
      this.ctx.forward({ key: a.deviceId, value: request, timestamp: now }, "s1sp-requests-sink");
    }
    const detail = a.smetsGeneration === "SMETS2" ? `device command, counter ${a.counter}` : "S1SP request";
    this.ctx.forward(stageEvent(a, "DISPATCHED", now, null, detail), "send-stages-sink");
  }
}

/** A quarantined request: its QUARANTINED stage (the authorisation stays held until released). */
class DispatchQuarantinedProcessor implements Processor<
  { requestId: string; quarantineEventRef: string },
  unknown
> {
  private ctx!: ProcessorContext<unknown>;
  private held!: KeyValueStore<CosAuthorisation>;
  init(ctx: ProcessorContext<unknown>): void {
    this.ctx = ctx;
    this.held = ctx.getStateStore<CosAuthorisation>(DISPATCH_STORES.held);
  }
  process(record: StreamRecord<{ requestId: string; quarantineEventRef: string }>): void {
    const a = this.held.get(record.value.requestId);
    if (!a) return;
    const now = this.ctx.currentSystemTimeMs();
    this.ctx.forward(
      stageEvent(a, "QUARANTINED", now, null, `QuarantineEventRef ${record.value.quarantineEventRef}`),
      "quarantined-stages-sink",
    );
  }
}

/** A quarantined request the User deleted: its held authorisation is dropped (it is never sent). */
class DispatchDeletedProcessor implements Processor<AnomalyEvent, unknown> {
  private held!: KeyValueStore<CosAuthorisation>;
  init(ctx: ProcessorContext<unknown>): void {
    this.held = ctx.getStateStore<CosAuthorisation>(DISPATCH_STORES.held);
  }
  process(record: StreamRecord<AnomalyEvent>): void {
    const e = record.value;
    if (e.kind === "QUARANTINE_DELETED" && e.requestId !== null) this.held.delete(e.requestId);
  }
}

/** The dsp-dispatch topology (both drivers run it). */
export function buildDispatchTopology(opts: DispatchOptions): Topology {
  const t = dispatchTopics(opts.topicPrefix);
  const sd = opts.serdes;
  const backend = opts.backend ?? "memory";
  const b = new TopologyBuilder()
    .addSource("authorisations", { topics: [t.authorisations], valueSerde: sd.authorisation })
    .addProcessor("dispatch-check", () => new DispatchCheckProcessor(opts), "authorisations")
    .addStateStore(
      { name: DISPATCH_STORES.requests, valueSerde: jsonSerde<DispatchClaim>(), backend },
      "dispatch-check",
    )
    .addStateStore(
      { name: DISPATCH_STORES.counters, valueSerde: jsonSerde<CosCounterEntry>(), backend },
      "dispatch-check",
    )
    .addSink("check-responses-sink", { topic: t.responses, valueSerde: sd.response }, "dispatch-check")
    .addSink("check-stages-sink", { topic: t.stages, valueSerde: sd.stage }, "dispatch-check")
    .addInternalTopic(BY_USER_TOPIC)
    .addSink("by-user-sink", { topic: BY_USER_TOPIC, valueSerde: sd.authorisation }, "dispatch-check")
    .addSource("by-user", { topics: [BY_USER_TOPIC], valueSerde: sd.authorisation })
    .addProcessor("dispatch-hold", () => new DispatchHoldProcessor(), "by-user");

  let passed = "dispatch-hold";
  const holders = ["dispatch-hold", "dispatch-send"];
  if (opts.anomaly) {
    b.addSource("adt-files", { topics: [t.adtFiles], valueSerde: sd.adtFile }).addSource("exit-quarantine", {
      topics: [t.exitQuarantine],
      valueSerde: sd.exit,
    });
    const out = addDspAnomalyDetection(b, {
      requests: "dispatch-hold",
      adtFiles: "adt-files",
      exitInstructions: "exit-quarantine",
      config: opts.anomaly,
      backends: { state: backend, countedRequests: backend },
      namePrefix: "dispatch-anomaly",
    });
    passed = out.passed;
    b.addProcessor("dispatch-quarantined", () => new DispatchQuarantinedProcessor(), out.quarantined)
      .addSink("quarantined-stages-sink", { topic: t.stages, valueSerde: sd.stage }, "dispatch-quarantined")
      .addSink("anomaly-events-sink", { topic: t.anomalyEvents, valueSerde: sd.anomalyEvent }, out.events);
    b.addProcessor("dispatch-deleted", () => new DispatchDeletedProcessor(), out.events);
    holders.push("dispatch-quarantined", "dispatch-deleted");
    // ADT file results are the validation-stage anomaly topology's to publish: not sent twice.
  }
  b.addProcessor("dispatch-send", () => new DispatchSendProcessor(), passed)
    .addStateStore({ name: DISPATCH_STORES.held, valueSerde: heldAuthorisationSerde, backend }, ...holders)
    .addSink(
      "device-commands-sink",
      { topic: t.deviceCommands, valueSerde: sd.deviceCommand },
      "dispatch-send",
    )
    .addSink("s1sp-requests-sink", { topic: t.s1spRequests, valueSerde: sd.s1spRequest }, "dispatch-send")
    .addSink("send-stages-sink", { topic: t.stages, valueSerde: sd.stage }, "dispatch-send");
  return b.build();
}

/** JSON with the byte fields in base64: the held store's changelog stays readable and schema-free. */
export const heldAuthorisationSerde: Serde<CosAuthorisation> = {
  name: "json:CosAuthorisation",
  serialize: (_topic, a) =>
    Buffer.from(
      JSON.stringify({
        ...a,
        countersigned: a.countersigned.toString("base64"),
        preCommand: a.preCommand === null ? null : a.preCommand.toString("base64"),
      }),
      "utf8",
    ),
  deserialize: (_topic, data) => {
    const o = JSON.parse(data.toString("utf8")) as Omit<CosAuthorisation, "countersigned" | "preCommand"> & {
      countersigned: string;
      preCommand: string | null;
    };
    return {
      ...o,
      countersigned: Buffer.from(o.countersigned, "base64"),
      preCommand: o.preCommand === null ? null : Buffer.from(o.preCommand, "base64"),
    };
  },
};
