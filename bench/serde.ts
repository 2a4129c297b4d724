/**
 * Micro-benchmark of the Avro serde: MeterReading through `avroSerde` with the in-memory registry.
 *
 *   npx tsx bench/serde.ts [--records N] [--rounds R]
 *
 * Knobs: --records (distinct values encoded per round, default 100000), --rounds (timed rounds after
 * one warm-up, default 5; the best round is reported). Prints one JSON line per figure:
 *   {"bench":"serde","metric":"encode_per_s","value":...}
 *   {"bench":"serde","metric":"decode_per_s","value":...}          (writer schema = reader schema)
 *   {"bench":"serde","metric":"decode_evolved_per_s","value":...}  (v1 writer resolved into v2 reader)
 *   {"bench":"serde","metric":"record_bytes","value":...}
 */
import { avroSerde, loadSchema } from "../schemas/avro";
import { METER_READING_SCHEMA } from "../schemas/bench-records";
import type { MeterReading } from "../schemas/bench-records";
import { InMemorySchemaRegistry } from "../schemas/registry";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : undefined;
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
  return n;
}

function deviceId(i: number): string {
  const hex = i.toString(16).toUpperCase().padStart(16, "0");
  return hex.match(/../g)!.join("-");
}

function emit(metric: string, value: number): void {
  console.log(JSON.stringify({ bench: "serde", metric, value: Math.round(value) }));
}

/** Best-of-rounds throughput of `work` over `n` items, per second. */
function bestRate(rounds: number, n: number, work: () => void): number {
  work(); // warm-up: JIT and caches
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    work();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    best = Math.max(best, n / seconds);
  }
  return best;
}

async function main(): Promise<void> {
  const records = arg("records", 100_000);
  const rounds = arg("rounds", 5);
  const topic = "bench.meter-readings";
  const registry = new InMemorySchemaRegistry();
  const serde = avroSerde<MeterReading>(registry, loadSchema(METER_READING_SCHEMA));
  await serde.prepare(topic);

  const values: MeterReading[] = [];
  for (let i = 0; i < records; i++) {
    values.push({
      deviceId: deviceId(i),
      supplierMpid: i % 2 === 0 ? "BGAS" : "EONU",
      readingWh: 1_000_000 + i * 37,
      readAt: 1_735_689_600_000 + i * 1000,
      smetsGeneration: i % 5 === 0 ? "SMETS1" : "SMETS2",
    });
  }

  let frames: Buffer[] = [];
  emit(
    "encode_per_s",
    bestRate(rounds, records, () => {
      frames = values.map((v) => serde.serialize(topic, v));
    }),
  );
  emit("record_bytes", frames.reduce((sum, f) => sum + f.length, 0) / frames.length);

  await serde.deserialize(topic, frames[0]!); // first sight of the id: fetch and build the resolver
  let sink = 0;
  emit(
    "decode_per_s",
    bestRate(rounds, records, () => {
      for (const frame of frames) sink += (serde.deserialize(topic, frame) as MeterReading).readingWh;
    }),
  );

  // Evolution on the hot path: records written with fixture v1, read with v2 through a cached resolver.
  const v1 = avroSerde<Record<string, unknown>>(
    registry,
    loadSchema("fixtures/v1/ecos.fixture.SupplierSwitch"),
    {
      subject: "bench.evolution-value",
    },
  );
  const v2 = avroSerde<Record<string, unknown>>(
    registry,
    loadSchema("fixtures/v2/ecos.fixture.SupplierSwitch"),
    {
      subject: "bench.evolution-value",
    },
  );
  await v1.prepare(topic);
  const evolved = values.map((v) =>
    v1.serialize(topic, {
      deviceId: v.deviceId,
      supplierMpid: v.supplierMpid,
      switchDate: v.readAt,
      tcosBatchRef: "B-0001",
    }),
  );
  await v2.deserialize(topic, evolved[0]!);
  emit(
    "decode_evolved_per_s",
    bestRate(rounds, records, () => {
      for (const frame of evolved)
        sink += (v2.deserialize(topic, frame) as { switchDate: number }).switchDate;
    }),
  );
  if (sink === 42) console.error("(unlikely) keeps the decoded values alive");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
