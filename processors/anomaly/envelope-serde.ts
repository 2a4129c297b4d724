/**
 * The ServiceRequestEnvelope serde of the anomaly topics: Avro in the Confluent wire format, with a
 * fast path for the one case that matters for throughput — a record written with exactly this
 * code's schema (its id is one this serde registered itself), read by anomaly detection and then
 * passed on unchanged.
 *
 * - Decoding such a record reads the six fields straight from the frame; `raw` is a view into the
 *   frame, not a copy (the signed XML is never re-serialised anyway).
 * - The decoded value is frozen and remembers its frame, so passing it on writes the received bytes
 *   again instead of encoding the value afresh (identical Avro, only the header's schema id is
 *   rewritten when the output topic's id differs).
 *
 * Records of any other writer schema (an older or newer version), malformed records and values built
 * in code go through the generic Avro serde, with its schema resolution and its error messages.
 */
import { avroSerde, loadSchema, type AvroSerde } from "../../schemas/avro";
import type { SchemaRegistry } from "../../schemas/registry";
import { FRAME_HEADER_BYTES, MAGIC_BYTE } from "../../schemas/wire";
import { ANOMALY_SCHEMAS, type ServiceRequestEnvelope } from "./records";

/**
 * An envelope decoded from a frame written with the serde's own schema. Frozen: its fields cannot
 * change, so its frame always encodes exactly these values.
 */
export class FramedEnvelope implements ServiceRequestEnvelope {
  readonly #frame: Buffer;
  readonly #schemaId: number;
  constructor(
    readonly requestId: string,
    readonly userId: string,
    readonly srv: string,
    readonly receivedAt: number,
    readonly deviceId: string,
    readonly raw: Buffer,
    frame: Buffer,
    schemaId: number,
  ) {
    this.#frame = frame;
    this.#schemaId = schemaId;
    Object.freeze(this);
  }

  /** The framed bytes a value was decoded from (undefined for values not decoded by this serde). */
  static frameOf(value: ServiceRequestEnvelope): { frame: Buffer; schemaId: number } | undefined {
    return value instanceof FramedEnvelope ? { frame: value.#frame, schemaId: value.#schemaId } : undefined;
  }
}

/** Where decodeOwn reads next (decoding is synchronous: one cursor serves every call). */
let at = 0;

/** Zig-zag varint (Avro int/long) at `at`; NaN when truncated, too long or not exact in a double. */
function readLong(b: Buffer, end: number): number {
  let n = 0;
  let scale = 1;
  for (let k = 0; k < 10 && at < end; k++) {
    const byte = b[at++] as number;
    n += (byte & 0x7f) * scale;
    if (byte < 0x80) return Number.isSafeInteger(n) ? (n % 2 === 1 ? -(n + 1) / 2 : n / 2) : Number.NaN;
    scale *= 0x80;
  }
  return Number.NaN;
}

/** An Avro string or bytes length at `at`, or -1 when it is malformed or runs past `end`. */
function readLength(b: Buffer, end: number): number {
  const n = readLong(b, end);
  return n >= 0 && at + n <= end ? n : -1;
}

function readString(b: Buffer, end: number): string | undefined {
  const n = readLength(b, end);
  if (n < 0) return undefined;
  const s = b.toString("utf8", at, at + n);
  at += n;
  return s;
}

/** The SRV last decoded and its bytes: a partition's requests name few SRVs, so most reuse it. */
let lastSrv = "";
let lastSrvBytes = Buffer.alloc(0);

/** An Avro string that is most likely the SRV decoded last (the same string then, not a new one). */
function readSrv(b: Buffer, end: number): string | undefined {
  const n = readLength(b, end);
  if (n < 0) return undefined;
  const start = at;
  at += n;
  if (n === lastSrvBytes.length) {
    let k = 0;
    while (k < n && b[start + k] === lastSrvBytes[k]) k++;
    if (k === n) return lastSrv;
  }
  lastSrv = b.toString("utf8", start, at);
  lastSrvBytes = Buffer.from(b.subarray(start, at));
  return lastSrv;
}

/**
 * Decodes the payload of a frame written with the envelope schema, or returns undefined when it is
 * not well-formed (the generic serde then reports why). Field order of ecos.duis.ServiceRequestEnvelope:
 * requestId, userId, srv (strings), receivedAt (long), deviceId (string), raw (bytes).
 */
function decodeOwn(data: Buffer, schemaId: number): FramedEnvelope | undefined {
  const end = data.length;
  at = FRAME_HEADER_BYTES;
  const requestId = readString(data, end);
  const userId = readString(data, end);
  const srv = readSrv(data, end);
  const receivedAt = readLong(data, end);
  const deviceId = readString(data, end);
  const rawLength = readLength(data, end);
  if (
    requestId === undefined ||
    userId === undefined ||
    srv === undefined ||
    Number.isNaN(receivedAt) ||
    deviceId === undefined ||
    rawLength < 0 ||
    at + rawLength !== end
  )
    return undefined;
  const raw = data.subarray(at, end);
  return new FramedEnvelope(requestId, userId, srv, receivedAt, deviceId, raw, data, schemaId);
}

export function serviceRequestEnvelopeSerde(registry: SchemaRegistry): AvroSerde<ServiceRequestEnvelope> {
  const inner = avroSerde<ServiceRequestEnvelope>(
    registry,
    loadSchema(ANOMALY_SCHEMAS.serviceRequestEnvelope),
  );
  /** Ids the registry gave this serde's own schema: frames with one of them hold exactly its encoding. */
  const own = new Set<number>();
  return {
    name: inner.name,
    type: inner.type,
    schemaId: (topic) => inner.schemaId(topic),
    async prepare(topic) {
      await inner.prepare(topic);
      const id = inner.schemaId(topic);
      if (id !== undefined) own.add(id);
    },
    serialize(topic, value) {
      const framed = FramedEnvelope.frameOf(value);
      const id = inner.schemaId(topic);
      if (framed === undefined || id === undefined) return inner.serialize(topic, value);
      if (id === framed.schemaId) return framed.frame;
      // Same schema text under another id (a registry that numbers per subject): new header only.
      const out = Buffer.allocUnsafe(framed.frame.length);
      framed.frame.copy(out);
      out.writeInt32BE(id, 1);
      return out;
    },
    deserialize(topic, data) {
      if (data.length > FRAME_HEADER_BYTES && data[0] === MAGIC_BYTE) {
        const id = data.readInt32BE(1);
        if (own.has(id)) {
          const v = decodeOwn(data, id);
          if (v !== undefined) return v;
        }
      }
      return inner.deserialize(topic, data);
    },
  };
}
