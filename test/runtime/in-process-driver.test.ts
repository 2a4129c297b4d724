import { InProcessDriver } from "../../processors/runtime/in-process-driver";
import type { ProcessorContext, StreamRecord } from "../../processors/runtime/api";
import { jsonSerde } from "../../processors/runtime/serde";
import { DEAD_LETTER_HEADERS } from "../../processors/runtime/task";
import { TopologyBuilder } from "../../processors/runtime/topology";
import {
  DEMO_STORES,
  buildCountingTopology,
  demoTopics,
  syntheticReadings,
  type MeterReading,
} from "../../processors/demo/counting";
import { DEFAULT_DEAD_LETTER_TOPIC } from "../../processors/runtime/topics";
import { behaviourSuite } from "./behaviour-suite";
import { inProcessHarness } from "./in-process-harness";

describe("in-process driver: behavioural suite", () => {
  behaviourSuite(() => inProcessHarness("suite"), { backends: ["memory", "lmdb"] });
});

describe("in-process driver specifics", () => {
  test("retainRecords keeps topic logs bounded without dropping unprocessed records", async () => {
    const serde = jsonSerde<MeterReading>();
    const driver = await InProcessDriver.create(
      buildCountingTopology({ readingSerde: serde, countSerde: jsonSerde(), bySupplier: true }),
      { applicationId: "retain", partitions: 2, retainRecords: 50 },
    );
    const readings = [...syntheticReadings(5000, 100)];
    for (let i = 0; i < readings.length; i += 1000) {
      await driver.pipeInput(
        demoTopics().readings,
        readings.slice(i, i + 1000).map((r) => ({ key: r.deviceId, value: r })),
        serde,
      );
    }
    expect(driver.rawRecords(demoTopics().readings).length).toBeLessThanOrEqual(100);
    expect(driver.rawRecords(demoTopics().deviceCounts).length).toBeLessThanOrEqual(100);
    const counts = driver.storeEntries<{ count: number }>(DEMO_STORES.deviceCounts);
    expect(counts.reduce((n, [, c]) => n + c.count, 0)).toBe(5000);
    const suppliers = driver.storeEntries<{ count: number }>(DEMO_STORES.supplierCounts);
    expect(suppliers.reduce((n, [, c]) => n + c.count, 0)).toBe(5000);
    // The compacted changelog still restores every device after a restart.
    await driver.restart();
    expect(driver.storeEntries<{ count: number }>(DEMO_STORES.deviceCounts)).toEqual(counts);
    await driver.close();
  });

  test("wall-clock punctuation follows the controllable clock", async () => {
    const fired: number[] = [];
    const topology = new TopologyBuilder()
      .addSource("in", { topics: ["in"], valueSerde: jsonSerde<number>() })
      .addProcessor(
        "p",
        () => ({
          init(ctx: ProcessorContext<number>) {
            ctx.schedule(1000, "wall-clock-time", (ts) => {
              fired.push(ts);
              ctx.forward({ key: "k", value: ts, timestamp: ts });
            });
          },
          process() {},
        }),
        "in",
      )
      .addSink("out", { topic: "out", valueSerde: jsonSerde<number>() }, "p")
      .build();
    const driver = await InProcessDriver.create(topology, { applicationId: "clock", startTimeMs: 10_000 });
    await driver.advanceWallClock(999);
    expect(fired).toEqual([]);
    await driver.advanceWallClock(1);
    expect(fired).toEqual([11_000]);
    await driver.advanceWallClock(3500);
    expect(fired).toEqual([11_000, 14_500]);
    expect((await driver.readOutput("out", jsonSerde<number>())).map((r) => r.value)).toEqual([
      11_000, 14_500,
    ]);
    await driver.close();
  });
});

describe("asynchronous processors", () => {
  test("an async processor keeps record order; a rejection dead-letters only its record", async () => {
    const topology = new TopologyBuilder()
      .addSource("in", { topics: ["in"], valueSerde: jsonSerde<number>() })
      .addProcessor(
        "slow-double",
        () => {
          let ctx: ProcessorContext<number>;
          return {
            init(c: ProcessorContext<number>) {
              ctx = c;
            },
            async process(r: StreamRecord<number>) {
              // Later records finish sooner if order were not kept.
              await new Promise((res) => setTimeout(res, 5 - (r.value % 5)));
              if (r.value === 7) throw new Error("seven is refused");
              ctx.forward({ key: r.key, value: r.value * 2, timestamp: r.timestamp });
            },
          };
        },
        "in",
      )
      .addSink("out", { topic: "out", valueSerde: jsonSerde<number>() }, "slow-double")
      .build();
    const driver = await InProcessDriver.create(topology, { applicationId: "async" });
    await driver.pipeInput(
      "in",
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => ({ key: "k", value: v })),
      jsonSerde<number>(),
    );
    expect((await driver.readOutput("out", jsonSerde<number>())).map((r) => r.value)).toEqual([
      2, 4, 6, 8, 10, 12, 16, 18,
    ]);
    const dead = driver.rawRecords(DEFAULT_DEAD_LETTER_TOPIC);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.headers?.[DEAD_LETTER_HEADERS.code]).toBe("ECOS_PROCESS_FAILED");
    expect(dead[0]?.headers?.[DEAD_LETTER_HEADERS.node]).toBe("slow-double");
    expect(dead[0]?.headers?.[DEAD_LETTER_HEADERS.message]).toBe("seven is refused");
    await driver.close();
  });

  test("onFailure 'fail' stops with ECOS_PROCESS_FAILED and the record's position", async () => {
    const topology = new TopologyBuilder()
      .addSource("in", { topics: ["in"], valueSerde: jsonSerde<number>() })
      .addProcessor(
        "boom",
        () => ({
          process() {
            throw new Error("boom");
          },
        }),
        "in",
      )
      .build();
    const driver = await InProcessDriver.create(topology, { applicationId: "fail", onFailure: "fail" });
    await expect(driver.pipeInput("in", [{ key: "k", value: 1 }], jsonSerde<number>())).rejects.toMatchObject(
      {
        code: "ECOS_PROCESS_FAILED",
        context: { topic: "in", partition: 0, offset: "0", node: "boom" },
      },
    );
    await driver.close();
  });
});

describe("transient failures", () => {
  test("a retriable decode failure is never dead-lettered: the run is rolled back and a retry processes it once", async () => {
    const { EcosError } = await import("../../processors/runtime/errors");
    let registryDown = true;
    const flaky = {
      ...jsonSerde<MeterReading>(),
      name: "flaky",
      deserialize: (topic: string, data: Buffer) => {
        const v = JSON.parse(data.toString()) as MeterReading;
        if (registryDown && v.readingWh === 4242)
          throw new EcosError("ECOS_REGISTRY_UNAVAILABLE", "registry did not answer");
        return v;
      },
    };
    const driver = await InProcessDriver.create(
      buildCountingTopology({ readingSerde: flaky, countSerde: jsonSerde() }),
      {
        applicationId: "transient",
      },
    );
    const readings = [...syntheticReadings(10, 3)].map((r, i) => ({
      ...r,
      readingWh: i === 6 ? 4242 : r.readingWh,
    }));
    const input = readings.map((r) => ({ key: r.deviceId, value: r }));
    await expect(driver.pipeInput(demoTopics().readings, input, flaky)).rejects.toMatchObject({
      code: "ECOS_REGISTRY_UNAVAILABLE",
    });
    expect(driver.rawRecords(DEFAULT_DEAD_LETTER_TOPIC)).toHaveLength(0);
    registryDown = false;
    await driver.runUntilIdle();
    const counts = driver.storeEntries<{ count: number }>(DEMO_STORES.deviceCounts);
    expect(counts.reduce((n, [, c]) => n + c.count, 0)).toBe(10);
    const out = await driver.readOutput(demoTopics().deviceCounts, jsonSerde<{ count: number }>());
    expect(out).toHaveLength(10);
    expect(driver.rawRecords(DEFAULT_DEAD_LETTER_TOPIC)).toHaveLength(0);
    await driver.close();
  });
});
