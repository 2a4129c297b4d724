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

describe("Kafka driver request splitting", () => {
  test("a commit's messages are split into produce requests under the size limit, order kept", async () => {
    const { splitBySize } = await import("../../processors/runtime/kafka-driver");
    const big = (i: number) => ({ key: `k${i}`, value: Buffer.alloc(300_000, i) });
    const byTopic = new Map([
      ["a", [big(1), big(2), big(3)]],
      ["b", [big(4), { key: "small", value: Buffer.from("x") }]],
    ]);
    const requests = splitBySize(byTopic, 512 * 1024);
    // 300 KB messages: one per request (two would exceed 512 KiB); the small one rides with big(4).
    expect(requests.map((r) => r.map((t) => [t.topic, t.messages.map((m) => m.key)]))).toEqual([
      [["a", ["k1"]]],
      [["a", ["k2"]]],
      [["a", ["k3"]]],
      [["b", ["k4", "small"]]],
    ]);
    const flat = splitBySize(
      new Map([["t", Array.from({ length: 10 }, (_, i) => ({ key: String(i), value: Buffer.from("v") }))]]),
      1 << 20,
    );
    expect(flat).toHaveLength(1);
    expect(flat[0]?.[0]?.messages.map((m) => m.key)).toEqual([
      "0",
      "1",
      "2",
      "3",
      "4",
      "5",
      "6",
      "7",
      "8",
      "9",
    ]);
  });
});
