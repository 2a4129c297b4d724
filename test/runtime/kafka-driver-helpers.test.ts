/**
 * The Kafka driver's retry while a fresh broker's metadata catches up with created topics: retried
 * only for the two "not there yet" errors, given up after the timeout, other errors thrown at once.
 */
import { whileMetadataSettles } from "../../processors/runtime/kafka-driver";

const kafkaError = (type: string): Error => Object.assign(new Error(type), { type });

describe("whileMetadataSettles", () => {
  test("retries the three 'not settled yet' errors until the call succeeds, refreshing before each retry", async () => {
    const errors = [
      kafkaError("UNKNOWN_TOPIC_OR_PARTITION"),
      kafkaError("LEADER_NOT_AVAILABLE"),
      kafkaError("NOT_LEADER_FOR_PARTITION"),
    ];
    let calls = 0;
    let refreshes = 0;
    const out = await whileMetadataSettles(
      async () => {
        calls++;
        const e = errors.shift();
        if (e) throw e;
        return "ok";
      },
      30000,
      async () => refreshes++,
    );
    expect(out).toBe("ok");
    expect(calls).toBe(4);
    expect(refreshes).toBe(3);
  });

  test("throws any other error at once", async () => {
    let calls = 0;
    await expect(
      whileMetadataSettles(async () => {
        calls++;
        throw kafkaError("TOPIC_AUTHORIZATION_FAILED");
      }),
    ).rejects.toThrow("TOPIC_AUTHORIZATION_FAILED");
    expect(calls).toBe(1);
  });

  test("gives up with the last error after the timeout", async () => {
    let calls = 0;
    const started = Date.now();
    await expect(
      whileMetadataSettles(async () => {
        calls++;
        throw kafkaError("UNKNOWN_TOPIC_OR_PARTITION");
      }, 350),
    ).rejects.toThrow("UNKNOWN_TOPIC_OR_PARTITION");
    expect(calls).toBeGreaterThan(1);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
