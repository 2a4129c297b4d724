/**
 * The demo topology of the foundation: meter readings in, a running count per device out.
 *
 *   meter.readings (key deviceId) ─▶ count-per-device [store device-counts] ─▶ device.counts
 *
 * With `bySupplier`, a second branch re-keys readings by supplier MPID through an internal
 * (repartition) topic and counts per supplier — the shape every join on another key will use.
 * The demo, its tests, the Kafka kill test and the first benchmark all build it with this function.
 */
import type { Processor, ProcessorContext, StreamRecord } from "../runtime/api";
import type { Serde } from "../runtime/serde";
import type { KeyValueStore } from "../runtime/stores";
import { TopologyBuilder, type StoreBackendKind, type Topology } from "../runtime/topology";
import type { DeviceCount, MeterReading } from "../../schemas/bench-records";

export type { DeviceCount, MeterReading };

export const DEMO_TOPICS = {
  readings: "meter.readings",
  deviceCounts: "device.counts",
  supplierCounts: "supplier.counts",
  /** Internal: readings re-keyed by supplier MPID. */
  readingsBySupplier: "readings-by-supplier-repartition",
} as const;

export const DEMO_STORES = { deviceCounts: "device-counts", supplierCounts: "supplier-counts" } as const;

/** Counts records per key in a store and forwards the new count. */
export class CountProcessor implements Processor<MeterReading, DeviceCount> {
  private ctx!: ProcessorContext<DeviceCount>;
  private store!: KeyValueStore<DeviceCount>;
  constructor(private readonly storeName: string) {}
  init(context: ProcessorContext<DeviceCount>): void {
    this.ctx = context;
    this.store = context.getStateStore<DeviceCount>(this.storeName);
  }
  process(record: StreamRecord<MeterReading>): void {
    const key = record.key ?? record.value.deviceId;
    const prev = this.store.get(key);
    const next: DeviceCount = {
      deviceId: key,
      count: (prev?.count ?? 0) + 1,
      lastReadAt: Math.max(prev?.lastReadAt ?? 0, record.value.readAt),
    };
    this.store.put(key, next);
    this.ctx.forward({ key, value: next, timestamp: record.timestamp });
  }
}

/** Re-keys a reading by its supplier MPID. */
export class RekeyBySupplier implements Processor<MeterReading, MeterReading> {
  private ctx!: ProcessorContext<MeterReading>;
  init(context: ProcessorContext<MeterReading>): void {
    this.ctx = context;
  }
  process(record: StreamRecord<MeterReading>): void {
    this.ctx.forward({ key: record.value.supplierMpid, value: record.value, timestamp: record.timestamp });
  }
}

export interface CountingTopologyOptions {
  readonly readingSerde: Serde<MeterReading>;
  readonly countSerde: Serde<DeviceCount>;
  readonly backend?: StoreBackendKind;
  readonly bySupplier?: boolean;
  /** Prefix for the external topic names (tests give each run its own topics). */
  readonly topicPrefix?: string;
}

/** The demo's external topic names under a prefix. */
export function demoTopics(prefix = ""): { readings: string; deviceCounts: string; supplierCounts: string } {
  return {
    readings: prefix + DEMO_TOPICS.readings,
    deviceCounts: prefix + DEMO_TOPICS.deviceCounts,
    supplierCounts: prefix + DEMO_TOPICS.supplierCounts,
  };
}

export function buildCountingTopology(opts: CountingTopologyOptions): Topology {
  const topics = demoTopics(opts.topicPrefix);
  const b = new TopologyBuilder()
    .addSource("readings", { topics: [topics.readings], valueSerde: opts.readingSerde })
    .addProcessor("count-per-device", () => new CountProcessor(DEMO_STORES.deviceCounts), "readings")
    .addStateStore(
      { name: DEMO_STORES.deviceCounts, valueSerde: opts.countSerde, backend: opts.backend ?? "memory" },
      "count-per-device",
    )
    .addSink(
      "device-counts-sink",
      { topic: topics.deviceCounts, valueSerde: opts.countSerde },
      "count-per-device",
    );
  if (opts.bySupplier) {
    b.addInternalTopic(DEMO_TOPICS.readingsBySupplier)
      .addProcessor("rekey-by-supplier", () => new RekeyBySupplier(), "readings")
      .addSink(
        "repartition-sink",
        { topic: DEMO_TOPICS.readingsBySupplier, valueSerde: opts.readingSerde },
        "rekey-by-supplier",
      )
      .addSource("readings-by-supplier", {
        topics: [DEMO_TOPICS.readingsBySupplier],
        valueSerde: opts.readingSerde,
      })
      .addProcessor(
        "count-per-supplier",
        () => new CountProcessor(DEMO_STORES.supplierCounts),
        "readings-by-supplier",
      )
      .addStateStore(
        { name: DEMO_STORES.supplierCounts, valueSerde: opts.countSerde, backend: opts.backend ?? "memory" },
        "count-per-supplier",
      )
      .addSink(
        "supplier-counts-sink",
        { topic: topics.supplierCounts, valueSerde: opts.countSerde },
        "count-per-supplier",
      );
  }
  return b.build();
}

/** Deterministic synthetic readings: `devices` meters spread over a few suppliers. */
export function* syntheticReadings(
  count: number,
  devices: number,
  startMs = 1_767_225_600_000,
): Generator<MeterReading> {
  const suppliers = ["ACEE", "BGAS", "CELE", "DPOW", "EDFE"];
  for (let i = 0; i < count; i++) {
    const d = (i * 7919) % devices;
    const hex = d.toString(16).padStart(16, "0").toUpperCase();
    yield {
      deviceId: hex.match(/../g)?.join("-") ?? hex,
      supplierMpid: suppliers[d % suppliers.length] as string,
      readingWh: 1000 + ((i * 37) % 5000),
      readAt: startMs + i * 1000,
      smetsGeneration: d % 10 === 0 ? "SMETS1" : "SMETS2",
    };
  }
}
