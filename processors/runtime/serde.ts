/**
 * Serialisation contract used by both drivers at topic boundaries.
 *
 * `serialize` is synchronous so the hot path never awaits; a serde that needs the network (a schema
 * registry) does that work in `prepare`, which every driver calls once before the first record.
 * `deserialize` may return a promise (an unseen schema id must be fetched once); callers check.
 */
export interface Serde<T> {
  /** Human-readable name for errors and docs, e.g. "avro:ecos.bench.Reading" or "string". */
  readonly name: string;
  prepare?(topic: string): Promise<void>;
  serialize(topic: string, value: T): Buffer;
  deserialize(topic: string, data: Buffer): T | Promise<T>;
}

export const StringSerde: Serde<string> = {
  name: "string",
  serialize: (_topic, value) => Buffer.from(value, "utf8"),
  deserialize: (_topic, data) => data.toString("utf8"),
};

export const BytesSerde: Serde<Buffer> = {
  name: "bytes",
  serialize: (_topic, value) => value,
  deserialize: (_topic, data) => data,
};

/** JSON for internal state and changelogs where no registry is involved. */
export function jsonSerde<T>(name = "json"): Serde<T> {
  return {
    name,
    serialize: (_topic, value) => Buffer.from(JSON.stringify(value), "utf8"),
    deserialize: (_topic, data) => JSON.parse(data.toString("utf8")) as T,
  };
}

/** Signed 64-bit big-endian counters, the same encoding Kafka Streams uses for Long. */
export const Int64Serde: Serde<number> = {
  name: "int64",
  serialize: (_topic, value) => {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(BigInt(value));
    return b;
  },
  deserialize: (_topic, data) => Number(data.readBigInt64BE(0)),
};
