import { Partitioners } from "kafkajs";
import { murmur2, partitionForKey } from "../../processors/runtime/partitioner";

describe("partitioner", () => {
  test("matches kafkajs' Java-compatible default partitioner for keyed records", () => {
    const partitioner = Partitioners.DefaultPartitioner();
    for (const n of [1, 3, 7, 12]) {
      const partitionMetadata = Array.from({ length: n }, (_, i) => ({
        partitionId: i,
        leader: 0,
        replicas: [0],
        isr: [0],
        partitionErrorCode: 0,
      }));
      for (let i = 0; i < 500; i++) {
        const key = `00-1A-2B-3C-${i.toString(16).padStart(8, "0")}${"x".repeat(i % 5)}`;
        const expected = partitioner({ topic: "t", partitionMetadata, message: { key, value: null } });
        expect(partitionForKey(Buffer.from(key), n)).toBe(expected);
      }
    }
  });
  test("murmur2 of known inputs (values from Kafka's Java client)", () => {
    // org.apache.kafka.common.utils.Utils.murmur2 on UTF-8 bytes.
    expect(murmur2(Buffer.from("21"))).toBe(-973932308);
    expect(murmur2(Buffer.from("foobar"))).toBe(-790332482);
    expect(murmur2(Buffer.from("a-little-bit-long-string"))).toBe(-985981536);
    expect(murmur2(Buffer.from(""))).toBe(275646681);
  });
});
