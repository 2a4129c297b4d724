/**
 * The behavioural suite every driver must pass. The in-process harness runs it as a unit test
 * (test/runtime/in-process-driver.test.ts); the Kafka harness runs it against the real broker
 * (test/integration/kafka-driver.test.ts). Same topology builder, same assertions.
 */
import type { Processor, ProcessorContext, StreamRecord } from "../../processors/runtime/api";
import { DEAD_LETTER_HEADERS } from "../../processors/runtime/task";
import { jsonSerde, type Serde } from "../../processors/runtime/serde";
import { TopologyBuilder, type StoreBackendKind, type Topology } from "../../processors/runtime/topology";
import { partitionForKey } from "../../processors/runtime/partitioner";
import {
  DEMO_STORES,
  buildCountingTopology,
  demoTopics,
  syntheticReadings,
  type DeviceCount,
  type MeterReading,
} from "../../processors/demo/counting";
import { countingViolations, mapDifferences, tally } from "../helpers/invariants";

export interface HarnessRecord<V> {
  key: string | null;
  value: V;
  partition: number;
  timestamp: number;
  headers: Record<string, string>;
}

/** What a driver must offer the suite. `prefix` makes every run's topics unique. */
export interface Harness {
  readonly prefix: string;
  readonly partitions: number;
  start(topology: Topology): Promise<void>;
  pipe<V>(
    topic: string,
    records: Array<{ key: string | null; value: V; timestamp: number }>,
    serde: Serde<V>,
  ): Promise<void>;
  pipeRaw(
    topic: string,
    records: Array<{ key: Buffer | null; value: Buffer | null; timestamp: number }>,
  ): Promise<void>;
  /** Waits until at least `expected` records are on `topic`, then returns all of them. */
  read<V>(topic: string, serde: Serde<V>, expected: number): Promise<Array<HarnessRecord<V>>>;
  deadLetterTopic(): string;
  storeEntries<V>(name: string): Promise<Array<[string, V]>>;
  /** Stops processing as after a crash and starts again from what was committed. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

const readingSerde = jsonSerde<MeterReading>("json:MeterReading");
const countSerde = jsonSerde<DeviceCount>("json:DeviceCount");

function finalCounts(records: Array<HarnessRecord<DeviceCount>>): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) m.set(r.key as string, Math.max(m.get(r.key as string) ?? 0, r.value.count));
  return m;
}

/** Emits, on each stream-time punctuation, how many records arrived since the previous one. */
class WindowTicker implements Processor<MeterReading, { seen: number; at: number }> {
  private ctx!: ProcessorContext<{ seen: number; at: number }>;
  private seen = 0;
  init(ctx: ProcessorContext<{ seen: number; at: number }>): void {
    this.ctx = ctx;
    ctx.schedule(60_000, "stream-time", (ts) => {
      this.ctx.forward({ key: "tick", value: { seen: this.seen, at: ts }, timestamp: ts });
      this.seen = 0;
    });
  }
  process(_r: StreamRecord<MeterReading>): void {
    this.seen++;
  }
}

/** Doubles values in batches; value 13 makes the whole batch throw. Counts how it was called. */
class BatchDoubler implements Processor<number, number> {
  static batches: number[] = [];
  static singles = 0;
  private ctx!: ProcessorContext<number>;
  init(ctx: ProcessorContext<number>): void {
    this.ctx = ctx;
  }
  process(_r: StreamRecord<number>): void {
    BatchDoubler.singles++;
  }
  async processBatch(records: ReadonlyArray<StreamRecord<number>>): Promise<void> {
    BatchDoubler.batches.push(records.length);
    await new Promise((r) => setImmediate(r));
    if (records.some((r) => r.value === 13)) throw new Error("thirteen spoils the batch");
    for (const r of records) this.ctx.forward({ key: r.key, value: r.value * 2, timestamp: r.timestamp });
  }
}

export function behaviourSuite(
  makeHarness: () => Promise<Harness>,
  opts: { backends: StoreBackendKind[] },
): void {
  let h: Harness;
  beforeEach(async () => {
    h = await makeHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  for (const backend of opts.backends) {
    test(`counts per device exactly, one update per record, in order (${backend} store)`, async () => {
      const topics = demoTopics(h.prefix);
      await h.start(buildCountingTopology({ readingSerde, countSerde, backend, topicPrefix: h.prefix }));
      const readings = [...syntheticReadings(600, 40)];
      await h.pipe(
        topics.readings,
        readings.map((r) => ({ key: r.deviceId, value: r, timestamp: r.readAt })),
        readingSerde,
      );
      const out = await h.read(topics.deviceCounts, countSerde, readings.length);
      expect(out).toHaveLength(readings.length);
      expect(
        countingViolations(
          out,
          tally(readings, (r) => r.deviceId),
        ),
      ).toEqual([]);
      const stored = new Map(
        (await h.storeEntries<DeviceCount>(DEMO_STORES.deviceCounts)).map(([k, v]) => [k, v.count]),
      );
      expect(
        mapDifferences(
          tally(readings, (r) => r.deviceId),
          stored,
        ),
      ).toEqual([]);
      // Output keys land on Kafka's murmur2 partition on both drivers.
      for (const r of out)
        expect(r.partition).toBe(partitionForKey(Buffer.from(r.key as string), h.partitions));
    });
  }

  test("re-keys through an internal topic and counts per supplier", async () => {
    const topics = demoTopics(h.prefix);
    await h.start(
      buildCountingTopology({ readingSerde, countSerde, bySupplier: true, topicPrefix: h.prefix }),
    );
    const readings = [...syntheticReadings(500, 50)];
    await h.pipe(
      topics.readings,
      readings.map((r) => ({ key: r.deviceId, value: r, timestamp: r.readAt })),
      readingSerde,
    );
    const out = await h.read(topics.supplierCounts, countSerde, readings.length);
    expect(out).toHaveLength(readings.length);
    expect(
      countingViolations(
        out,
        tally(readings, (r) => r.supplierMpid),
      ),
    ).toEqual([]);
  });

  test("a record that cannot be decoded goes to the dead-letter topic with its reason; nothing else is lost", async () => {
    const topics = demoTopics(h.prefix);
    await h.start(buildCountingTopology({ readingSerde, countSerde, topicPrefix: h.prefix }));
    const readings = [...syntheticReadings(30, 5)];
    const good = readings.map((r) => ({
      key: Buffer.from(r.deviceId),
      value: readingSerde.serialize("t", r),
      timestamp: r.readAt,
    }));
    const bad = {
      key: Buffer.from("00-00-00-00-00-00-00-BA"),
      value: Buffer.from("{not json"),
      timestamp: 1,
    };
    await h.pipeRaw(topics.readings, [...good.slice(0, 10), bad, ...good.slice(10)]);
    const out = await h.read(topics.deviceCounts, countSerde, readings.length);
    expect(
      mapDifferences(
        tally(readings, (r) => r.deviceId),
        finalCounts(out),
      ),
    ).toEqual([]);
    const dead = await h.read(
      h.deadLetterTopic(),
      { name: "raw", serialize: (_t, v: Buffer) => v, deserialize: (_t, b) => b },
      1,
    );
    const mine = dead.filter((d) => d.headers[DEAD_LETTER_HEADERS.topic] === topics.readings);
    expect(mine).toHaveLength(1);
    expect(mine[0]?.key).toBe("00-00-00-00-00-00-00-BA");
    expect(mine[0]?.value.toString()).toBe("{not json");
    expect(mine[0]?.headers[DEAD_LETTER_HEADERS.code]).toBe("ECOS_SERDE_DECODE");
    expect(mine[0]?.headers[DEAD_LETTER_HEADERS.message]).toMatch(/JSON/);
  });

  test("after a restart the store is restored from its changelog and counting continues", async () => {
    const topics = demoTopics(h.prefix);
    await h.start(buildCountingTopology({ readingSerde, countSerde, topicPrefix: h.prefix }));
    const readings = [...syntheticReadings(200, 20)];
    const first = readings.slice(0, 120);
    const second = readings.slice(120);
    await h.pipe(
      topics.readings,
      first.map((r) => ({ key: r.deviceId, value: r, timestamp: r.readAt })),
      readingSerde,
    );
    await h.read(topics.deviceCounts, countSerde, first.length);
    await h.restart();
    await h.pipe(
      topics.readings,
      second.map((r) => ({ key: r.deviceId, value: r, timestamp: r.readAt })),
      readingSerde,
    );
    const out = await h.read(topics.deviceCounts, countSerde, readings.length);
    expect(out).toHaveLength(readings.length);
    expect(
      countingViolations(
        out,
        tally(readings, (r) => r.deviceId),
      ),
    ).toEqual([]);
  });

  test("a batch processor gets runs of records, keeps their order, and a throwing batch is dead-lettered whole", async () => {
    BatchDoubler.batches = [];
    BatchDoubler.singles = 0;
    const input = `${h.prefix}batch.in`;
    const output = `${h.prefix}batch.out`;
    const numbers = jsonSerde<number>();
    const topology = new TopologyBuilder()
      .addSource("in", { topics: [input], valueSerde: numbers })
      .addProcessor("doubler", () => new BatchDoubler(), "in")
      .addSink("out", { topic: output, valueSerde: numbers }, "doubler")
      .build();
    await h.start(topology);
    const values = Array.from({ length: 300 }, (_, i) => i + 100);
    await h.pipe(
      input,
      values.map((v) => ({ key: `k${v % 7}`, value: v, timestamp: 1000 + v })),
      numbers,
    );
    const out = await h.read(output, numbers, values.length);
    expect(BatchDoubler.singles).toBe(0);
    expect(BatchDoubler.batches.reduce((a, b) => a + b, 0)).toBe(values.length);
    // Per key (one partition each), outputs come in input order.
    for (let k = 0; k < 7; k++) {
      const got = out.filter((r) => r.key === `k${k}`).map((r) => r.value);
      expect(got).toEqual(values.filter((v) => v % 7 === k).map((v) => v * 2));
    }
    // A batch holding 13 throws: every record of that batch goes to the dead-letter topic.
    BatchDoubler.batches = [];
    await h.pipe(input, [{ key: "k13", value: 13, timestamp: 5 }], numbers);
    const dead = await h.read(
      h.deadLetterTopic(),
      { name: "raw", serialize: (_t, v: Buffer) => v, deserialize: (_t, b) => b },
      1,
    );
    const mine = dead.filter((d) => d.headers[DEAD_LETTER_HEADERS.topic] === input);
    expect(mine.map((d) => d.value.toString())).toEqual(["13"]);
    expect(mine[0]?.headers[DEAD_LETTER_HEADERS.message]).toBe("thirteen spoils the batch");
    expect(mine[0]?.headers[DEAD_LETTER_HEADERS.node]).toBe("doubler");
  });

  test("outputs far larger than one produce request (12 MB in a commit) are all delivered", async () => {
    const input = `${h.prefix}inflate.in`;
    const output = `${h.prefix}inflate.out`;
    const numbers = jsonSerde<number>();
    const blobs = jsonSerde<string>();
    const topology = new TopologyBuilder()
      .addSource("in", { topics: [input], valueSerde: numbers })
      .addProcessor(
        "inflate",
        () => {
          let ctx: ProcessorContext<string>;
          return {
            init: (c: ProcessorContext<string>) => {
              ctx = c;
            },
            process: (r: StreamRecord<number>) =>
              ctx.forward({ key: r.key, value: `${r.value}:`.padEnd(25_000, "x"), timestamp: r.timestamp }),
          };
        },
        "in",
      )
      .addSink("out", { topic: output, valueSerde: blobs }, "inflate")
      .build();
    await h.start(topology);
    const values = Array.from({ length: 500 }, (_, i) => i);
    await h.pipe(
      input,
      values.map((v) => ({ key: "one-key", value: v, timestamp: 1000 + v })),
      numbers,
    );
    const out = await h.read(output, blobs, values.length);
    expect(out.map((r) => Number(r.value.split(":")[0]))).toEqual(values);
    expect(out.every((r) => r.value.length === 25_000)).toBe(true);
  });

  test("stream-time punctuation fires on record time, not on arrival", async () => {
    const input = `${h.prefix}ticks.in`;
    const output = `${h.prefix}ticks.out`;
    const tickSerde = jsonSerde<{ seen: number; at: number }>();
    const topology = new TopologyBuilder()
      .addSource("in", { topics: [input], valueSerde: readingSerde })
      .addProcessor("ticker", () => new WindowTicker(), "in")
      .addSink("out", { topic: output, valueSerde: tickSerde }, "ticker")
      .build();
    await h.start(topology);
    // One key, so one task sees all records: 10 records 10 s apart, then one 5 minutes later.
    const base = 1_767_225_600_000;
    const readings = [...syntheticReadings(11, 1)].map((r, i) => ({
      ...r,
      readAt: i < 10 ? base + i * 10_000 : base + 300_000,
    }));
    await h.pipe(
      input,
      readings.map((r) => ({ key: "one-device", value: r, timestamp: r.readAt })),
      readingSerde,
    );
    const ticks = await h.read(output, tickSerde, 2);
    // First tick when stream time reaches base+60 s (7 records seen: t=0..60 s), then one at the jump.
    expect(ticks.map((t) => t.value)).toEqual([
      { seen: 7, at: base + 60_000 },
      { seen: 4, at: base + 300_000 },
    ]);
  });
}
