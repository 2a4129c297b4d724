/**
 * The CoS Party's internal record and the JSON serdes of its topics for tests (the product uses
 * Avro through the registry: serdes.ts).
 */
import type {
  AdtFileResult,
  AdtFileSubmission,
  AnomalyEvent,
  ServiceRequestEnvelope,
} from "../anomaly/records";
import type { CosAuthorisation, SmetsGeneration } from "../cos/records";
import { jsonSerde, type Serde } from "../runtime/serde";
import type {
  DccAlertEvent,
  DeviceSnapshot,
  RequestStageEvent,
  ServiceResponseEvent,
} from "../../schemas/event-records";

/**
 * A request that passed the CoS Party's checks, on its way through anomaly detection (keyed by User
 * ID) and back to the authorising stage (keyed by device id). It is a ServiceRequestEnvelope, so
 * the anomaly processors take it as it is; `raw` is the request countersigned by the CoS Party.
 */
export interface PendingAuthorisation extends ServiceRequestEnvelope {
  readonly smetsGeneration: SmetsGeneration;
  readonly deviceType: string;
  /** The device's transitionalCoS floor (decimal): its counter starts above it. */
  readonly counterFloor: string;
  /** Execution time of a future-dated request; null when immediate or a cancellation. */
  readonly executionAt: number | null;
  readonly cancellation: boolean;
}

const PENDING_V1 = 1;

/**
 * Serde of the internal topics. Version 1: byte 1, uint32 big-endian length of the JSON of every
 * field but `raw`, that JSON, then the bytes of `raw` (no base64 on the hot path).
 */
export function pendingAuthorisationSerde(): Serde<PendingAuthorisation> {
  return {
    name: "cos-party-pending-v1",
    serialize: (_topic, p) => {
      const { raw, ...rest } = p;
      const json = Buffer.from(JSON.stringify(rest), "utf8");
      const out = Buffer.allocUnsafe(5 + json.length + raw.length);
      out[0] = PENDING_V1;
      out.writeUInt32BE(json.length, 1);
      json.copy(out, 5);
      raw.copy(out, 5 + json.length);
      return out;
    },
    deserialize: (_topic, data) => {
      if (data[0] !== PENDING_V1 || data.length < 5)
        throw new Error(`cos-party internal record: unknown version ${data[0]}`);
      const n = data.readUInt32BE(1);
      if (5 + n > data.length) throw new Error("cos-party internal record: truncated");
      const rest = JSON.parse(data.subarray(5, 5 + n).toString("utf8")) as Omit<PendingAuthorisation, "raw">;
      return { ...rest, raw: Buffer.from(data.subarray(5 + n)) };
    },
  };
}

/** The serdes of a CoS Party topology's topics. */
export interface CosPartySerdes {
  /** In: Countersigned CoS Service Requests from the DSP. */
  readonly envelope: Serde<ServiceRequestEnvelope>;
  /** In: the Smart Metering Inventory table. */
  readonly inventory: Serde<DeviceSnapshot>;
  /** In: ADT files (the party's copy of the Users' tables). */
  readonly adtFile: Serde<AdtFileSubmission>;
  readonly adtResult: Serde<AdtFileResult>;
  readonly anomalyEvent: Serde<AnomalyEvent>;
  readonly authorisation: Serde<CosAuthorisation>;
  readonly response: Serde<ServiceResponseEvent>;
  readonly stage: Serde<RequestStageEvent>;
  readonly alert: Serde<DccAlertEvent>;
}

/** JSON with the named Buffer fields as base64 (null stays null). */
function jsonWithBytes<T extends object>(name: string, fields: readonly string[]): Serde<T> {
  return {
    name,
    serialize: (_t, v) => {
      const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
      for (const f of fields) if (Buffer.isBuffer(o[f])) o[f] = o[f].toString("base64");
      return Buffer.from(JSON.stringify(o), "utf8");
    },
    deserialize: (_t, data) => {
      const o = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
      for (const f of fields) if (typeof o[f] === "string") o[f] = Buffer.from(o[f], "base64");
      return o as T;
    },
  };
}

/** JSON serdes for tests. */
export function jsonCosPartySerdes(): CosPartySerdes {
  return {
    envelope: jsonWithBytes("json:envelope", ["raw"]),
    inventory: jsonSerde("json:inventory"),
    adtFile: jsonWithBytes("json:adt-file", ["content"]),
    adtResult: jsonSerde("json:adt-result"),
    anomalyEvent: jsonSerde("json:anomaly-event"),
    authorisation: jsonWithBytes("json:cos-authorisation", ["countersigned", "preCommand"]),
    response: jsonSerde("json:response"),
    stage: jsonSerde("json:stage"),
    alert: jsonSerde("json:alert"),
  };
}
