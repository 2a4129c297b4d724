// The library's framing is internal to it; the integration suite checks interop through its public API.
import { encode as kafkajsEncode } from "@kafkajs/confluent-schema-registry/dist/wireEncoder";
import { EcosError } from "../../processors/runtime/errors";
import {
  FRAME_HEADER_BYTES,
  MAX_SCHEMA_ID,
  decodeFrame,
  encodeFrame,
  readSchemaId,
  writeFrameHeader,
} from "../../schemas/wire";

function expectWireError(fn: () => unknown, message: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(EcosError);
  expect((thrown as EcosError).code).toBe("ECOS_WIRE_FORMAT");
  expect((thrown as EcosError).retriable).toBe(false);
  expect((thrown as EcosError).message).toMatch(message);
}

describe("Confluent wire format", () => {
  it("frames as magic byte 0, big-endian id, payload", () => {
    const frame = encodeFrame(0x01020304, Buffer.from([0xaa, 0xbb]));
    expect([...frame]).toEqual([0, 1, 2, 3, 4, 0xaa, 0xbb]);
  });

  it.each([0, 1, 42, 65_536, MAX_SCHEMA_ID])("round-trips schema id %d", (id) => {
    const payload = Buffer.from("avro payload");
    const { schemaId, payload: out } = decodeFrame(encodeFrame(id, payload));
    expect(schemaId).toBe(id);
    expect(out.equals(payload)).toBe(true);
  });

  it("round-trips an empty payload (a record with no fields)", () => {
    const frame = encodeFrame(7, Buffer.alloc(0));
    expect(frame.length).toBe(FRAME_HEADER_BYTES);
    expect(decodeFrame(frame)).toEqual({ schemaId: 7, payload: Buffer.alloc(0) });
  });

  it("returns the payload as a view, not a copy", () => {
    const frame = encodeFrame(3, Buffer.from([1, 2, 3]));
    const { payload } = decodeFrame(frame);
    frame[FRAME_HEADER_BYTES] = 9;
    expect(payload[0]).toBe(9);
  });

  it("writes a header in place for callers that encode after it", () => {
    const buf = Buffer.alloc(8, 0xff);
    writeFrameHeader(buf, 258, 2);
    expect([...buf]).toEqual([0xff, 0xff, 0, 0, 0, 1, 2, 0xff]);
    expect(readSchemaId(buf.subarray(2))).toBe(258);
  });

  it.each([0, 1, 4])("refuses a %d-byte buffer as shorter than the header", (length) => {
    expectWireError(() => decodeFrame(Buffer.alloc(length)), /shorter than the 5-byte Confluent header/);
  });

  it.each([
    ["a JSON record", Buffer.from('{"deviceId":"00-1A"}')],
    ["magic byte 1", Buffer.from([1, 0, 0, 0, 1, 2])],
    ["magic byte 0xff", Buffer.from([0xff, 0, 0, 0, 1])],
  ])("refuses %s as a wrong magic byte", (_label, buf) => {
    expectWireError(() => decodeFrame(buf), /unknown magic byte 0x[0-9a-f]{2}, expected 0x00/);
  });

  it("refuses a negative schema id in a header", () => {
    expectWireError(() => decodeFrame(Buffer.from([0, 0x80, 0, 0, 0, 1])), /negative schema id/);
  });

  it.each([-1, 1.5, MAX_SCHEMA_ID + 1, Number.NaN])("refuses to frame with schema id %d", (id) => {
    expectWireError(() => encodeFrame(id, Buffer.alloc(1)), /not a non-negative 32-bit integer/);
  });

  it("frames byte for byte as @kafkajs/confluent-schema-registry does", () => {
    const payload = Buffer.from([5, 6, 7]);
    expect(kafkajsEncode(123_456, payload).equals(encodeFrame(123_456, payload))).toBe(true);
  });
});
