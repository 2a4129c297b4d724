/**
 * The request envelope serde's fast path (decode in place, pass the received frame on) must give
 * exactly what the generic Avro serde gives, and step aside for everything it does not cover.
 */
import { FramedEnvelope, serviceRequestEnvelopeSerde } from "../../processors/anomaly/envelope-serde";
import { ANOMALY_SCHEMAS, type ServiceRequestEnvelope } from "../../processors/anomaly/records";
import { EcosError } from "../../processors/runtime/errors";
import { avroSerde, loadSchema, parseSchema } from "../../schemas/avro";
import { InMemorySchemaRegistry, type SchemaRegistry } from "../../schemas/registry";
import { DEVICE, T0, USER_A } from "./fixtures";

const sample: ServiceRequestEnvelope = {
  requestId: `${USER_A}:${DEVICE}:7`,
  userId: USER_A,
  srv: "6.23",
  receivedAt: T0,
  deviceId: DEVICE,
  raw: Buffer.from('<sr:Request note="é ✓"/>'),
};

const plain = (v: ServiceRequestEnvelope) => ({ ...v, raw: Buffer.from(v.raw) });

async function serdes(registry: SchemaRegistry = new InMemorySchemaRegistry()) {
  const generic = avroSerde<ServiceRequestEnvelope>(
    registry,
    loadSchema(ANOMALY_SCHEMAS.serviceRequestEnvelope),
  );
  const fast = serviceRequestEnvelopeSerde(registry);
  for (const t of ["in", "out"]) {
    await generic.prepare(t);
    await fast.prepare(t);
  }
  return { generic, fast };
}

describe("ServiceRequestEnvelope serde", () => {
  test("decodes a record written with its own schema to the generic serde's value, frozen", async () => {
    const { generic, fast } = await serdes();
    const bytes = generic.serialize("in", sample);
    const v = await fast.deserialize("in", bytes);
    expect(v).toBeInstanceOf(FramedEnvelope);
    expect(plain(v)).toEqual(plain(await generic.deserialize("in", bytes)));
    expect(Object.isFrozen(v)).toBe(true);
    expect(() => {
      (v as { srv: string }).srv = "1.1.1";
    }).toThrow(TypeError);
    expect(v.srv).toBe("6.23");
  });

  test("an SRV is read right whether or not it is the one decoded before", async () => {
    const { generic, fast } = await serdes();
    const srvOf = async (srv: string) =>
      (await fast.deserialize("in", generic.serialize("in", { ...sample, srv }))).srv;
    // Repeats, same length with other bytes, other lengths, empty, multi-byte UTF-8.
    const seq = ["6.23", "6.23", "6.24", "6.23", "1.1.1", "", "6.23", "8.1.1", "6.2é", "6.2é"];
    const got: string[] = [];
    for (const srv of seq) got.push(await srvOf(srv));
    expect(got).toEqual(seq);
  });

  test("passes a decoded record on as the bytes received; a value built in code is encoded", async () => {
    const { generic, fast } = await serdes();
    const bytes = generic.serialize("in", sample);
    const v = await fast.deserialize("in", bytes);
    expect(fast.serialize("out", v)).toBe(bytes);
    const built = { ...v };
    expect(built).not.toBeInstanceOf(FramedEnvelope);
    expect(fast.serialize("out", built).equals(bytes)).toBe(true);
    const changed = { ...v, srv: "1.1.1" };
    expect((await generic.deserialize("out", fast.serialize("out", changed))).srv).toBe("1.1.1");
  });

  test("a registry with another id for the same schema on the output topic: only the header changes", async () => {
    // Numbers every (subject, schema) pair apart, as a registry with per-subject ids would.
    const texts = new Map<number, string>();
    const ids = new Map<string, number>();
    const registry: SchemaRegistry = {
      register: async (subject, schema) => {
        const key = `${subject}\n${schema}`;
        let id = ids.get(key);
        if (id === undefined) {
          id = 100 + ids.size;
          ids.set(key, id);
          texts.set(id, schema);
        }
        return id;
      },
      schemaById: async (id) => texts.get(id) as string,
    };
    const { generic, fast } = await serdes(registry);
    expect(fast.schemaId("in")).not.toBe(fast.schemaId("out"));
    const bytes = generic.serialize("in", sample);
    const v = await fast.deserialize("in", bytes);
    const out = fast.serialize("out", v);
    expect(out.readInt32BE(1)).toBe(fast.schemaId("out"));
    expect(out.equals(generic.serialize("out", sample))).toBe(true);
    expect(plain(await generic.deserialize("out", out))).toEqual(plain(sample));
  });

  test("a record of another schema version is resolved by the generic serde, not the fast path", async () => {
    const registry = new InMemorySchemaRegistry();
    const v1 = JSON.parse(JSON.stringify(loadSchema(ANOMALY_SCHEMAS.serviceRequestEnvelope).schema())) as {
      fields: unknown[];
    };
    const v2Schema = JSON.stringify({
      ...v1,
      fields: [...v1.fields, { name: "channel", type: "string", default: "DUIS" }],
    });
    const v2 = avroSerde<ServiceRequestEnvelope & { channel: string }>(registry, parseSchema(v2Schema));
    await v2.prepare("in");
    const { fast } = await serdes(registry);
    const bytes = v2.serialize("in", { ...sample, channel: "X" });
    const v = await fast.deserialize("in", bytes);
    expect(v).not.toBeInstanceOf(FramedEnvelope);
    expect(plain(v)).toEqual(plain(sample));
    // Passed on, it is written with this code's schema, not as the v2 bytes received.
    const out = fast.serialize("out", v);
    expect(out.readInt32BE(1)).toBe(fast.schemaId("out"));
    expect(out.equals(bytes)).toBe(false);
  });

  test("malformed records fail as with the generic serde", async () => {
    const { generic, fast } = await serdes();
    const bytes = generic.serialize("in", sample);
    const broken = [
      bytes.subarray(0, bytes.length - 3), // truncated raw
      Buffer.concat([bytes, Buffer.from([0])]), // trailing byte
      Buffer.concat([bytes.subarray(0, 5), Buffer.from([0x03])]), // negative string length
      Buffer.concat([bytes.subarray(0, 5), Buffer.alloc(11, 0xff)]), // varint that never ends
    ];
    for (const b of broken) {
      const expected = await Promise.resolve()
        .then(() => generic.deserialize("in", b))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(expected).toBeInstanceOf(EcosError);
      await expect(Promise.resolve().then(() => fast.deserialize("in", b))).rejects.toMatchObject({
        code: (expected as EcosError).code,
        message: (expected as EcosError).message,
      });
    }
  });

  test("receipt times far from the epoch and empty fields decode exactly", async () => {
    const { generic, fast } = await serdes();
    for (const receivedAt of [0, -1, 1, Date.UTC(2099, 11, 31), -Date.UTC(2200, 0, 1)]) {
      const value = { ...sample, receivedAt, srv: "", raw: Buffer.alloc(0) };
      const v = await fast.deserialize("in", generic.serialize("in", value));
      expect(v).toBeInstanceOf(FramedEnvelope);
      expect(plain(v)).toEqual(plain(value));
    }
    // Beyond 2^52 the zig-zag form is no longer exact in a double: the generic serde decodes those.
    for (const receivedAt of [2 ** 52 + 1, -(2 ** 52) - 1]) {
      const bytes = generic.serialize("in", { ...sample, receivedAt });
      const v = await fast.deserialize("in", bytes);
      expect(v).not.toBeInstanceOf(FramedEnvelope);
      expect(plain(v)).toEqual(plain(await generic.deserialize("in", bytes)));
    }
  });
});
