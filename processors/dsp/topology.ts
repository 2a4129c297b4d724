/**
 * dsp-validate: DUIS requests in (raw bytes), DSP decisions out.
 *
 *   duis.requests (key: device id = BusinessTargetID, value: the bytes received, timestamp: receipt)
 *   inventory.devices (key: device id, DeviceSnapshot)           ─┐ sub-topology 0, co-partitioned
 *     dsp-verify  processBatch → worker pool (parse, schema, signature, signer, user, 6.23 certificate
 *                 checks, countersign) → users directory, inventory join, replay guard by RequestID
 *        ├─ decided already (a gate failed, other SRV, or a failure ranked before mpid-in-cert) → outputs
 *        └─ else → internal topic dsp-validate-by-mpxn (key: ImportMPxN)
 *   <app>-dsp-validate-by-mpxn + registration.changes (key: MPxN, SupplierRegistration) ─┐ sub-topology 1
 *     dsp-decide  Registration Data as of the switch date → first failure of all 22 checks → outputs
 *
 * Outputs: duis.responses (ServiceResponseEvent, key RequestID, headers ecos.dsp.check/ecos.dsp.reason),
 * duis.request-stages (RequestStageEvent), anomaly.requests (ServiceRequestEnvelope as received, key
 * User ID) and, routed by the device's CoS credential, cos.requests.ecos / cos.requests.tcos
 * (ServiceRequestEnvelope countersigned by the DSP, key device id).
 *
 * Registration Data is joined by repartitioning rather than as a global table: at national scale it is
 * ~30 million MPxNs, which a global table would copy into every instance, and the runtime has no
 * global tables; one extra hop costs milliseconds against a 35 s / 21 s Target Response Time.
 */
import type { Processor, ProcessorContext, RecordMetadata, StreamRecord } from "../runtime/api";
import type { KeyValueStore } from "../runtime/stores";
import { BytesSerde, jsonSerde, type Serde } from "../runtime/serde";
import { TopologyBuilder, type StoreBackendKind, type Topology } from "../runtime/topology";
import type {
  CosParty,
  DeviceSnapshot,
  RequestStageEvent,
  ServiceResponseEvent,
  SmetsGeneration,
  SupplierRegistration,
} from "../../schemas/event-records";
import { checkRank, firstFailure, type DspCheckId } from "../../workers/dsp/checks";
import type { DuisVerification, SignerSummary } from "../../workers/dsp/validate";
import { normaliseEui64 } from "../../workers/smki/certificate";
import {
  DEFAULT_DSP_POLICY,
  deviceChecks,
  registrationChecks,
  userChecks,
  type DspPolicy,
  type TopologyFailure,
} from "./checks";
import type { DccUser } from "./csv";
import { InventoryTable, RegistrationTable, switchDate, type RegistrationHistory } from "./reference-data";
import { DEFAULT_RESPONSE_CODES, type DspOutcomeId, type ResponseCodeTable } from "./response-codes";
import type { DspBatchItemResult, DspVerifierPort } from "./verifier";
import type { ServiceRequestEnvelope } from "../anomaly/records";

/** The request envelope anomaly detection and the CoS Parties read (schemas/ecos.duis.ServiceRequestEnvelope.avsc). */
export type { ServiceRequestEnvelope };

export const DSP_TOPICS = {
  /** In: raw DUIS requests, key device id (BusinessTargetID), timestamp = time of receipt. */
  requests: "duis.requests",
  /** In (compacted table): Registration Data, key MPxN. */
  registration: "registration.changes",
  /** In (compacted table): Smart Metering Inventory, key device id. */
  inventory: "inventory.devices",
  /** Out: one Service Response per request, key RequestID. */
  responses: "duis.responses",
  /** Out: request lifecycle events (VALIDATED, REJECTED, COS_PARTY_REQUESTED), key RequestID. */
  stages: "duis.request-stages",
  /** Out: validated requests as received, for DSP anomaly detection (issue 4's input), key User ID. */
  anomaly: "anomaly.requests",
  /** Out: countersigned requests for the ECoS Party, key device id. */
  ecosParty: "cos.requests.ecos",
  /** Out: countersigned requests for the TCoS Party, key device id. */
  tcosParty: "cos.requests.tcos",
} as const;

export type DspTopics = { -readonly [K in keyof typeof DSP_TOPICS]: string };

export function dspTopics(prefix = ""): DspTopics {
  const out = {} as DspTopics;
  for (const [k, v] of Object.entries(DSP_TOPICS)) out[k as keyof DspTopics] = prefix + v;
  return out;
}

/** Internal (repartition) topic: `<applicationId>-dsp-validate-by-mpxn`. */
export const BY_MPXN_TOPIC = "dsp-validate-by-mpxn";

/** Store names: part of the compatibility surface (they name the changelog topics). */
export const DSP_STORES = {
  inventory: "dsp-inventory",
  registration: "dsp-registration",
  requestIds: "dsp-request-ids",
} as const;

export interface DspSerdes {
  readonly registration: Serde<SupplierRegistration>;
  readonly inventory: Serde<DeviceSnapshot>;
  readonly response: Serde<ServiceResponseEvent>;
  readonly stage: Serde<RequestStageEvent>;
  readonly envelope: Serde<ServiceRequestEnvelope>;
}

/** JSON serdes for tests (the product uses Avro through the registry: serdes.ts). */
export function jsonDspSerdes(): DspSerdes {
  const envelope: Serde<ServiceRequestEnvelope> = {
    name: "json:envelope",
    serialize: (_t, v) => Buffer.from(JSON.stringify({ ...v, raw: v.raw.toString("base64") }), "utf8"),
    deserialize: (_t, data) => {
      const o = JSON.parse(data.toString("utf8")) as Omit<ServiceRequestEnvelope, "raw"> & { raw: string };
      return { ...o, raw: Buffer.from(o.raw, "base64") };
    },
  };
  return {
    registration: jsonSerde("json:registration"),
    inventory: jsonSerde("json:inventory"),
    response: jsonSerde("json:response"),
    stage: jsonSerde("json:stage"),
    envelope,
  };
}

/** What the replay store keeps per RequestID: where the request that first used it was read. */
export interface RequestIdClaim {
  readonly partition: number;
  readonly offset: string;
  readonly receivedAt: number;
}

/**
 * The record on the internal topic between the two stages (internal, versioned; see
 * pendingDecisionSerde). The request bytes travel as bytes, not base64.
 */
export interface PendingDecision {
  readonly v: 2;
  readonly requestId: string;
  readonly userId: string;
  readonly deviceId: string;
  readonly receivedAt: number;
  readonly importMpxn: string;
  readonly switchDay: number;
  readonly signer: SignerSummary;
  readonly failures: readonly TopologyFailure[];
  readonly device: { smetsGeneration: SmetsGeneration; deviceType: string; cosParty: CosParty } | null;
  /** The bytes received. */
  readonly raw: Buffer;
  /** The DSP-countersigned bytes, when countersigning is configured and succeeded. */
  readonly countersigned: Buffer | null;
}

/** Version 1 of the internal record: all JSON, the bytes in base64 (read for records still in flight). */
type PendingDecisionV1 = Omit<PendingDecision, "v" | "raw" | "countersigned"> & {
  readonly v: 1;
  readonly raw: string;
  readonly countersigned: string | null;
};

const PENDING_V2 = 2;

/**
 * Serde of the internal topic. Version 2: byte 2, then three length-prefixed (uint32 big-endian)
 * parts: the JSON of every field but the two byte fields, the bytes received, the countersigned
 * bytes (length 0xFFFFFFFF: none). Version 1 (JSON starting with `{`, bytes in base64) is still
 * read, so an upgrade can start with records of the old version in the topic. Base64 made every
 * request about a third bigger twice over and cost an encode and a decode of each copy.
 */
export function pendingDecisionSerde(): Serde<PendingDecision> {
  return {
    name: "dsp-pending-v2",
    serialize: (_topic, p) => {
      const { raw, countersigned } = p;
      const json = pendingJson(p);
      const jsonLength = Buffer.byteLength(json, "utf8");
      const cs = countersigned ? countersigned.length : 0;
      const out = Buffer.allocUnsafe(1 + 12 + jsonLength + raw.length + cs);
      out[0] = PENDING_V2;
      let at = 1;
      out.writeUInt32BE(jsonLength, at);
      out.write(json, (at += 4), jsonLength, "utf8");
      out.writeUInt32BE(raw.length, (at += jsonLength));
      raw.copy(out, (at += 4));
      out.writeUInt32BE(countersigned ? cs : 0xffffffff, (at += raw.length));
      if (countersigned) countersigned.copy(out, at + 4);
      return out;
    },
    deserialize: (_topic, data) => {
      if (data[0] === 0x7b) {
        const o = JSON.parse(data.toString("utf8")) as PendingDecisionV1;
        return {
          ...o,
          v: 2,
          raw: Buffer.from(o.raw, "base64"),
          countersigned: o.countersigned === null ? null : Buffer.from(o.countersigned, "base64"),
        };
      }
      if (data[0] !== PENDING_V2 || data.length < 13)
        throw new Error(`dsp-validate internal record: unknown version ${data[0]}`);
      let at = 1;
      const part = (nullable: boolean): Buffer | null => {
        if (at + 4 > data.length) throw new Error("dsp-validate internal record: truncated");
        const n = data.readUInt32BE(at);
        at += 4;
        if (nullable && n === 0xffffffff) return null;
        if (at + n > data.length) throw new Error("dsp-validate internal record: truncated");
        at += n;
        return data.subarray(at - n, at);
      };
      const json = part(false)!;
      const raw = part(false)!;
      const countersigned = part(true);
      // The parsed object is fresh: the two byte fields are added to it rather than copied around it.
      const rest = JSON.parse(json.toString("utf8")) as Record<string, unknown>;
      rest.raw = raw;
      rest.countersigned = countersigned;
      return rest as unknown as PendingDecision;
    },
  };
}

/** The fields of the JSON part of a version-2 record, in the record's order (all but the bytes). */
const PENDING_JSON_FIELDS = [
  "v",
  "requestId",
  "userId",
  "deviceId",
  "receivedAt",
  "importMpxn",
  "switchDay",
  "signer",
  "failures",
  "device",
] as const;
/**
 * Compile-time guard: a field added to PendingDecision and not to PENDING_JSON_FIELDS (where it would
 * be dropped from the record) fails the type check here.
 */
export type PendingJsonFieldsListed = NeverOrError<
  Exclude<keyof PendingDecision, (typeof PENDING_JSON_FIELDS)[number] | "raw" | "countersigned">
>;
type NeverOrError<T extends never> = T;

/** JSON of a shared (frozen) signer summary, once per summary: the same few signers sign every request. */
const signerJson = new WeakMap<SignerSummary, string>();

/**
 * The JSON part of a version-2 record, byte for byte what JSON.stringify of the record without its
 * two byte fields gives (the signer's JSON is reused when the summary is a shared, frozen one).
 */
function pendingJson(p: PendingDecision): string {
  let out = "{";
  for (const field of PENDING_JSON_FIELDS) {
    let json: string | undefined;
    if (field === "signer") {
      json = signerJson.get(p.signer);
      if (json === undefined) {
        json = JSON.stringify(p.signer);
        if (Object.isFrozen(p.signer)) signerJson.set(p.signer, json);
      }
    } else {
      json = JSON.stringify(p[field]);
    }
    out += (out.length > 1 ? ',"' : '"') + field + '":' + json;
  }
  return out + "}";
}

export interface DspValidateOptions {
  readonly serdes: DspSerdes;
  /** The worker pool (or the inline verifier in tests). */
  readonly verifier: DspVerifierPort;
  /** DCC Users directory for user-role and mpid-in-cert; undefined: certificate only ([I]). */
  readonly users?: ReadonlyMap<string, DccUser>;
  readonly policy?: DspPolicy;
  readonly responseCodes?: ResponseCodeTable;
  readonly topicPrefix?: string;
  readonly backend?: StoreBackendKind;
  /** Forward accepted requests to the ECoS/TCoS Party topics (default true). */
  readonly routeToCosParty?: boolean;
  /**
   * Write accepted requests as received to anomaly.requests, the standalone anomaly application's
   * input (default true). The 6.23 pipeline runs DSP anomaly detection in dispatch, after the CoS
   * Authorisation Response (seed 003 §3.3), so it turns this off: the copy was ~4.5 KB per request
   * through the broker that nothing read, and the internal record then carries only the
   * countersigned bytes (which hold the request received) instead of both.
   */
  readonly anomalyCopy?: boolean;
  /** Observes each decision (metrics, tests). */
  readonly onDecision?: (d: { requestId: string; outcome: DspOutcomeId; stage: "verify" | "decide" }) => void;
}

/** One decision, ready to be written out. */
interface Decision {
  readonly requestId: string;
  readonly userId: string;
  readonly deviceId: string;
  readonly srv: string;
  readonly receivedAt: number;
  readonly smetsGeneration: SmetsGeneration;
  readonly deviceType: string | null;
  readonly supplierMpid: string | null;
  /** null = accepted. */
  readonly failure: { outcome: DspOutcomeId; message: string } | null;
  readonly cosParty: CosParty | null;
  readonly raw: Buffer | null;
  readonly countersigned: Buffer | null;
}

const REQUEST_ID = /<(?:[A-Za-z_][\w.-]*:)?RequestID>\s*([^<]{1,200}?)\s*<\//;

/**
 * The RequestID of a request without parsing it (the first `RequestID` element in the first 8 KiB),
 * for ingest keys and for answering requests too broken to parse. Null when there is none.
 */
export function sniffRequestId(
  bytes: Uint8Array,
): { requestId: string; userId: string; deviceId: string } | null {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 8192)).toString(
    "latin1",
  );
  const m = REQUEST_ID.exec(head);
  if (!m) return null;
  const requestId = m[1]!;
  const parts = requestId.split(":");
  return {
    requestId,
    userId: (parts.length === 3 && normaliseEui64(parts[0]!)) || "",
    deviceId: (parts.length === 3 && normaliseEui64(parts[1]!)) || "",
  };
}

function cosPartyOf(device: DeviceSnapshot): CosParty {
  // [I] Routed by the credential the device holds (seed 002); SMETS1 devices hold none and go to the
  // ECoS Party from go-live (seed 000); an UNKNOWN credential goes to the ECoS Party too.
  return device.smetsGeneration === "SMETS2" && device.cosCredential === "TCOS" ? "TCOS" : "ECOS";
}

class DecisionWriter {
  constructor(
    private readonly ctx: ProcessorContext<unknown>,
    private readonly opts: DspValidateOptions,
    private readonly codes: ResponseCodeTable,
    private readonly stage: "verify" | "decide",
  ) {
    this.sinks = {
      responses: this.sink("responses-sink"),
      stages: this.sink("stages-sink"),
      anomaly: this.sink("anomaly-sink"),
      ecos: this.sink("ecos-sink"),
      tcos: this.sink("tcos-sink"),
    };
  }

  /** The stage's sink names, built once. */
  private readonly sinks: Readonly<Record<"responses" | "stages" | "anomaly" | "ecos" | "tcos", string>>;

  /** Each stage has its own sinks, so the two stages stay separate sub-topologies. */
  private sink(name: string): string {
    return `${this.stage}-${name}`;
  }

  write(d: Decision): void {
    const now = this.ctx.currentSystemTimeMs();
    const code = this.codes[d.failure ? d.failure.outcome : "accepted"];
    const response: ServiceResponseEvent = {
      requestId: d.requestId,
      userId: d.userId,
      supplierMpid: d.supplierMpid,
      srv: d.srv,
      deviceId: d.deviceId,
      deviceType: d.deviceType,
      smetsGeneration: d.smetsGeneration,
      cosParty: d.failure ? null : d.cosParty,
      responseCode: code,
      successful: d.failure === null,
      receivedAt: d.receivedAt,
      respondedAt: now,
    };
    const headers: Record<string, string> = d.failure
      ? { "ecos.dsp.check": d.failure.outcome, "ecos.dsp.reason": d.failure.message.slice(0, 1000) }
      : { "ecos.dsp.check": "accepted" };
    this.ctx.forward({ key: d.requestId, value: response, timestamp: now, headers }, this.sinks.responses);
    if (d.failure) {
      this.writeStage(d, now, code, "REJECTED", `${d.failure.outcome}: ${d.failure.message}`.slice(0, 500));
    } else {
      this.writeStage(d, now, code, "VALIDATED", null);
      if (d.raw) {
        const envelope: ServiceRequestEnvelope = {
          requestId: d.requestId,
          userId: d.userId,
          srv: d.srv,
          receivedAt: d.receivedAt,
          deviceId: d.deviceId,
          raw: d.raw,
        };
        if (this.opts.anomalyCopy !== false)
          this.ctx.forward({ key: d.userId, value: envelope, timestamp: d.receivedAt }, this.sinks.anomaly);
        if (this.opts.routeToCosParty !== false && d.countersigned && d.cosParty) {
          this.ctx.forward(
            { key: d.deviceId, value: { ...envelope, raw: d.countersigned }, timestamp: d.receivedAt },
            d.cosParty === "ECOS" ? this.sinks.ecos : this.sinks.tcos,
          );
          this.writeStage(d, now, code, "COS_PARTY_REQUESTED", null);
        }
      }
    }
    this.opts.onDecision?.({
      requestId: d.requestId,
      outcome: d.failure ? d.failure.outcome : "accepted",
      stage: this.stage,
    });
  }

  /** One duis.request-stages event of the decision (a method, not a closure per decision). */
  private writeStage(
    d: Decision,
    now: number,
    code: string,
    stage: RequestStageEvent["stage"],
    detail: string | null,
  ): void {
    // Several submissions may use one RequestID (a replay, a request resent after a refusal), and
    // each refused one gets a REJECTED event: its receipt time tells them apart, so a refusal is
    // stored beside the earlier ones instead of replacing them. Only one submission per RequestID is
    // accepted (the replay guard), so the other stages keep sequence 0.
    const sequence = stage === "REJECTED" ? String(d.receivedAt) : "0";
    const event: RequestStageEvent = {
      eventId: `${d.requestId}:${stage}:${sequence}`,
      requestId: d.requestId,
      userId: d.userId,
      srv: d.srv,
      deviceId: d.deviceId,
      smetsGeneration: d.smetsGeneration,
      stage,
      cosParty: stage === "COS_PARTY_REQUESTED" ? d.cosParty : null,
      responseCode: stage === "REJECTED" ? code : null,
      receivedAt: d.receivedAt,
      occurredAt: now,
      detail,
    };
    this.ctx.forward({ key: d.requestId, value: event, timestamp: now }, this.sinks.stages);
  }
}

/** The rank at which Registration Data is needed: failures before it decide without the second stage. */
const REGISTRATION_RANK = checkRank("mpid-in-cert");

/** Stage 1: worker checks, users, inventory, replay; decides or hands on to the MPxN stage. */
export class DspVerifyProcessor implements Processor<Buffer, unknown> {
  private ctx!: ProcessorContext<unknown>;
  private inventory!: InventoryTable;
  private requestIds!: KeyValueStore<RequestIdClaim>;
  private writer!: DecisionWriter;
  private readonly policy: DspPolicy;
  /** Redeliveries recognised (same RequestID, same partition and offset): not processed again. */
  redeliveries = 0;

  constructor(private readonly opts: DspValidateOptions) {
    this.policy = opts.policy ?? DEFAULT_DSP_POLICY;
  }

  init(ctx: ProcessorContext<unknown>): void {
    this.ctx = ctx;
    this.inventory = new InventoryTable(ctx.getStateStore<DeviceSnapshot>(DSP_STORES.inventory));
    this.requestIds = ctx.getStateStore<RequestIdClaim>(DSP_STORES.requestIds);
    this.writer = new DecisionWriter(
      ctx,
      this.opts,
      this.opts.responseCodes ?? DEFAULT_RESPONSE_CODES,
      "verify",
    );
  }

  process(record: StreamRecord<Buffer>): Promise<void> {
    const meta = this.ctx.recordMetadata();
    return this.processBatch([record], meta ? [meta] : []);
  }

  async processBatch(
    records: ReadonlyArray<StreamRecord<Buffer>>,
    metadata: ReadonlyArray<RecordMetadata>,
  ): Promise<void> {
    const inputs = records.map((r) => ({ bytes: r.value, receivedAt: r.timestamp }));
    let results: DspBatchItemResult[] | null = null;
    // A crashed worker thread is retriable: try the run once more, then answer rather than stall.
    for (let attempt = 0; attempt < 2 && !results; attempt++) {
      try {
        results = await this.opts.verifier.verifyBatch(inputs);
      } catch (err) {
        if (attempt === 1) results = records.map(() => crashed((err as Error).message));
      }
    }
    records.forEach((record, i) => {
      const meta = metadata[i];
      this.decide(record, results![i]!, meta?.offset ?? null, meta?.partition ?? this.ctx.partition);
    });
  }

  private decide(
    record: StreamRecord<Buffer>,
    result: DspBatchItemResult,
    offset: string | null,
    partition: number,
  ): void {
    const v = result.verification as DuisVerification;
    const receivedAt = record.timestamp;
    // The user and device of a request that did not get through the gates come from sniffing the
    // bytes; an authenticated 6.23 has them from the parse, so the sniff (8 KiB of latin1 and a
    // regular expression) is skipped.
    const sniffed = v.request && v.signer && v.requestId ? null : sniffRequestId(record.value);
    const requestId = v.requestId ?? sniffed?.requestId ?? "";
    const base = {
      requestId,
      userId: sniffed?.userId ?? "",
      deviceId: sniffed?.deviceId ?? record.key ?? "",
      srv: v.srv ?? "",
      receivedAt,
      smetsGeneration: "SMETS2" as SmetsGeneration,
      deviceType: null,
      supplierMpid: null,
      cosParty: null,
      raw: null,
      countersigned: null,
    };
    if (!v.request || !v.signer) {
      // A gate failed, another SRV, or the worker crashed on this item: decided here.
      const outcome: DspOutcomeId =
        v.checkId ?? (v.code === "ECOS_SRV_UNSUPPORTED" ? "srv-unsupported" : "worker-failed");
      this.writer.write({ ...base, failure: { outcome, message: v.message ?? "request refused" } });
      return;
    }
    const req = v.request;
    const userId = normaliseEui64(req.businessOriginatorId) ?? req.businessOriginatorId;
    const deviceId = normaliseEui64(req.businessTargetId) ?? req.businessTargetId;
    // Replay guard: only an authenticated request (the gates passed) claims its RequestID, so nobody
    // can burn another User's RequestID with a forged request.
    const claimKey = requestId.toUpperCase();
    const claim = this.requestIds.get(claimKey);
    if (claim && offset !== null && claim.partition === partition && claim.offset === offset) {
      this.redeliveries++; // the same Kafka record again: already answered, not processed twice
      return;
    }
    const failures: TopologyFailure[] = [];
    for (const f of v.failures ?? []) failures.push({ checkId: f.checkId, message: f.message });
    if (claim)
      failures.push({
        checkId: "replay",
        message: `RequestID ${requestId} was already received at ${new Date(claim.receivedAt).toISOString()}`,
      });
    else this.requestIds.put(claimKey, { partition, offset: offset ?? "-1", receivedAt });
    failures.push(...userChecks(req, this.opts.users, this.policy));
    const device = this.inventory.device(deviceId);
    failures.push(...deviceChecks(req, device, this.policy));
    if (result.countersignError && !failures.length)
      failures.push({ checkId: "cert-valid", message: `countersigning failed: ${result.countersignError}` });
    const first = firstFailure(failures);
    const dev = device
      ? {
          smetsGeneration: device.smetsGeneration,
          deviceType: device.deviceType,
          cosParty: cosPartyOf(device),
        }
      : null;
    const decided = {
      ...base,
      userId,
      deviceId,
      srv: "6.23",
      smetsGeneration: dev?.smetsGeneration ?? "SMETS2",
    };
    if (first && checkRank(first.checkId) < REGISTRATION_RANK) {
      this.writer.write({
        ...decided,
        deviceType: dev?.deviceType ?? null,
        failure: { outcome: first.checkId, message: first.message },
      });
      return;
    }
    const countersigned = result.countersigned;
    const pending: PendingDecision = {
      v: 2,
      requestId,
      userId,
      deviceId,
      receivedAt,
      importMpxn: req.importMpxn,
      switchDay: switchDate(req, receivedAt),
      signer: v.signer,
      failures,
      device: dev,
      // Without the anomaly copy, only the countersigned bytes go on (they hold the request received).
      raw: countersigned && this.opts.anomalyCopy === false ? NO_BYTES : record.value,
      countersigned: countersigned
        ? Buffer.from(countersigned.buffer, countersigned.byteOffset, countersigned.byteLength)
        : null,
    };
    this.ctx.forward({ key: req.importMpxn, value: pending, timestamp: receivedAt }, "by-mpxn-sink");
  }
}

const NO_BYTES = Buffer.alloc(0);

function crashed(message: string): DspBatchItemResult {
  return { verification: { ok: false, code: "ECOS_WORKER_FAILED", message }, countersigned: null };
}

/** Stage 2: Registration Data as of the switch date, then the first failure of all checks. */
export class DspDecideProcessor implements Processor<PendingDecision, unknown> {
  private registration!: RegistrationTable;
  private writer!: DecisionWriter;
  constructor(private readonly opts: DspValidateOptions) {}

  init(ctx: ProcessorContext<unknown>): void {
    this.registration = new RegistrationTable(
      ctx.getStateStore<RegistrationHistory>(DSP_STORES.registration),
    );
    this.writer = new DecisionWriter(
      ctx,
      this.opts,
      this.opts.responseCodes ?? DEFAULT_RESPONSE_CODES,
      "decide",
    );
  }

  process(record: StreamRecord<PendingDecision>): void {
    const p = record.value;
    const reg = registrationChecks(
      { importMpxn: p.importMpxn, businessOriginatorId: p.userId },
      p.signer,
      this.registration.history(p.importMpxn),
      p.switchDay,
      this.opts.users,
    );
    const first = firstFailure<{ checkId: DspCheckId; message: string }>([...p.failures, ...reg.failures]);
    this.writer.write({
      requestId: p.requestId,
      userId: p.userId,
      deviceId: p.deviceId,
      srv: "6.23",
      receivedAt: p.receivedAt,
      smetsGeneration: p.device?.smetsGeneration ?? "SMETS2",
      deviceType: p.device?.deviceType ?? null,
      supplierMpid: reg.registeredMpid,
      failure: first ? { outcome: first.checkId, message: first.message } : null,
      cosParty: p.device?.cosParty ?? null,
      raw: p.raw,
      countersigned: p.countersigned,
    });
  }
}

class InventoryTableProcessor implements Processor<DeviceSnapshot, never> {
  private table!: InventoryTable;
  init(ctx: ProcessorContext<never>): void {
    this.table = new InventoryTable(ctx.getStateStore<DeviceSnapshot>(DSP_STORES.inventory));
  }
  process(record: StreamRecord<DeviceSnapshot>): void {
    this.table.apply(record.value);
  }
}

class RegistrationTableProcessor implements Processor<SupplierRegistration, never> {
  private table!: RegistrationTable;
  init(ctx: ProcessorContext<never>): void {
    this.table = new RegistrationTable(ctx.getStateStore<RegistrationHistory>(DSP_STORES.registration));
  }
  process(record: StreamRecord<SupplierRegistration>): void {
    this.table.apply(record.value);
  }
}

/** The dsp-validate topology (both drivers run it). */
export function buildDspValidateTopology(opts: DspValidateOptions): Topology {
  const t = dspTopics(opts.topicPrefix);
  const sd = opts.serdes;
  const backend = opts.backend ?? "memory";
  const pendingSerde = pendingDecisionSerde();
  const b = new TopologyBuilder()
    .addSource("requests", { topics: [t.requests], valueSerde: BytesSerde })
    .addSource("inventory", { topics: [t.inventory], valueSerde: sd.inventory })
    .addProcessor("dsp-verify", () => new DspVerifyProcessor(opts), "requests")
    .addProcessor("inventory-table", () => new InventoryTableProcessor(), "inventory")
    .addStateStore(
      { name: DSP_STORES.inventory, valueSerde: jsonSerde<DeviceSnapshot>(), backend },
      "dsp-verify",
      "inventory-table",
    )
    .addStateStore(
      { name: DSP_STORES.requestIds, valueSerde: jsonSerde<RequestIdClaim>(), backend },
      "dsp-verify",
    )
    .addInternalTopic(BY_MPXN_TOPIC)
    .addSink("by-mpxn-sink", { topic: BY_MPXN_TOPIC, valueSerde: pendingSerde }, "dsp-verify")
    .addSource("pending", { topics: [BY_MPXN_TOPIC], valueSerde: pendingSerde })
    .addSource("registration", { topics: [t.registration], valueSerde: sd.registration })
    .addProcessor("dsp-decide", () => new DspDecideProcessor(opts), "pending")
    .addProcessor("registration-table", () => new RegistrationTableProcessor(), "registration")
    .addStateStore(
      { name: DSP_STORES.registration, valueSerde: jsonSerde<RegistrationHistory>(), backend },
      "dsp-decide",
      "registration-table",
    );

  for (const stage of ["verify", "decide"] as const) {
    const parent = `dsp-${stage}`;
    b.addSink(`${stage}-responses-sink`, { topic: t.responses, valueSerde: sd.response }, parent)
      .addSink(`${stage}-stages-sink`, { topic: t.stages, valueSerde: sd.stage }, parent)
      .addSink(`${stage}-anomaly-sink`, { topic: t.anomaly, valueSerde: sd.envelope }, parent)
      .addSink(`${stage}-ecos-sink`, { topic: t.ecosParty, valueSerde: sd.envelope }, parent)
      .addSink(`${stage}-tcos-sink`, { topic: t.tcosParty, valueSerde: sd.envelope }, parent);
  }
  return b.build();
}
