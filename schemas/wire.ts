/**
 * The Confluent wire format, the one place in the product that knows it.
 *
 * ```
 * byte 0      magic byte, always 0
 * bytes 1..4  schema id, signed 32-bit big-endian (ids are non-negative Java ints in the registry)
 * bytes 5..   the Avro binary encoding of the value, written with that schema
 * ```
 *
 * The same framing is used by Confluent's serialisers, @kafkajs/confluent-schema-registry and
 * Apicurio's ccompat clients, so records written here are readable by all of them and vice versa.
 */
import { EcosError } from "../processors/runtime/errors";

export const MAGIC_BYTE = 0;
/** Magic byte plus schema id. */
export const FRAME_HEADER_BYTES = 5;
/** Largest id the registry can hand out (a Java int). */
export const MAX_SCHEMA_ID = 0x7fffffff;

export interface Frame {
  readonly schemaId: number;
  /** The Avro payload: a view into the decoded buffer, not a copy. */
  readonly payload: Buffer;
}

function checkSchemaId(schemaId: number): void {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > MAX_SCHEMA_ID) {
    throw new EcosError(
      "ECOS_WIRE_FORMAT",
      `schema id ${String(schemaId)} is not a non-negative 32-bit integer`,
      {
        context: { schemaId },
      },
    );
  }
}

/** Writes the 5-byte header at `offset` of `target` (for callers that encode the payload in place). */
export function writeFrameHeader(target: Buffer, schemaId: number, offset = 0): void {
  checkSchemaId(schemaId);
  target[offset] = MAGIC_BYTE;
  target.writeInt32BE(schemaId, offset + 1);
}

/** Frames an already-encoded payload: one allocation, one copy. */
export function encodeFrame(schemaId: number, payload: Buffer): Buffer {
  checkSchemaId(schemaId);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out[0] = MAGIC_BYTE;
  out.writeInt32BE(schemaId, 1);
  payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Checks the header of a framed record and returns its schema id; the payload starts at
 * {@link FRAME_HEADER_BYTES}. The decode hot path uses this to avoid allocating a payload view.
 *
 * @throws EcosError ECOS_WIRE_FORMAT when the buffer is shorter than the header, the magic byte is not
 *   0 (plain JSON, a string, a record from another serialiser) or the id is negative.
 */
export function readSchemaId(buf: Buffer): number {
  if (buf.length < FRAME_HEADER_BYTES) {
    throw new EcosError(
      "ECOS_WIRE_FORMAT",
      `record of ${buf.length} byte(s) is shorter than the ${FRAME_HEADER_BYTES}-byte Confluent header`,
      { context: { length: buf.length } },
    );
  }
  const magic = buf[0];
  if (magic !== MAGIC_BYTE) {
    throw new EcosError(
      "ECOS_WIRE_FORMAT",
      `unknown magic byte 0x${(magic ?? 0).toString(16).padStart(2, "0")}, expected 0x00 (Confluent wire format)`,
      { context: { magicByte: magic } },
    );
  }
  const schemaId = buf.readInt32BE(1);
  if (schemaId < 0) {
    throw new EcosError("ECOS_WIRE_FORMAT", `negative schema id ${schemaId} in record header`, {
      context: { schemaId },
    });
  }
  return schemaId;
}

/**
 * Splits a framed record into schema id and payload.
 *
 * @throws EcosError ECOS_WIRE_FORMAT as {@link readSchemaId}.
 */
export function decodeFrame(buf: Buffer): Frame {
  const schemaId = readSchemaId(buf);
  return { schemaId, payload: buf.subarray(FRAME_HEADER_BYTES) };
}
