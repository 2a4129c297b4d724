/**
 * Threshold Anomaly Detection: counting throughput of the DSP anomaly topology on the in-process
 * driver (Avro ServiceRequestEnvelope in, Avro out, windows per User/SRV/period, request-id memory),
 * and the memory each tracked (User ID, SRV, period) costs.
 *
 *   npx tsx bench/anomaly.ts [knobs]        (see bench/README.md, section anomaly.ts, for every knob)
 *
 * Prints one JSON line per figure, e.g.
 *   {"bench":"anomaly","request_ids":"remember-ids","metric":"requests_per_s","value":57893,"baseline":...}
 * and a final {"bench":"anomaly","summary":...} line. Ratios compare with the "anomaly" section of
 * bench/baseline.json; `--update-baseline` rewrites that section from this run.
 */
import * as fs from "node:fs";
import { Session } from "node:inspector/promises";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import { ADT_HEADER, SEQUENCE_LABEL } from "../processors/anomaly/adt-file";
import { windowKey } from "../processors/anomaly/counter";
import {
  RequestDeduplicator,
  countedRequestIdsSerde,
  type CountedRequestIds,
} from "../processors/anomaly/request-ids";
import { applyAdtFile, type AdtHistory } from "../processors/anomaly/adt-table";
import { anomalyConfig, type AnomalyConfig } from "../processors/anomaly/config";
import { DspAnomalyProcessor } from "../processors/anomaly/processors";
import type { AdtFileSubmission, ServiceRequestEnvelope } from "../processors/anomaly/records";
import { anomalyAvroSerdes } from "../processors/anomaly/serdes";
import {
  DSP_ANOMALY_STORES,
  adtHistorySerde,
  anomalyTopics,
  buildDspAnomalyTopology,
  quarantineStoreSerde,
} from "../processors/anomaly/topology";
import { addRequest, newRing, windowSetSerde, type WindowSet } from "../processors/anomaly/window";
import { InProcessDriver } from "../processors/runtime/in-process-driver";
import type { ProcessorContext } from "../processors/runtime/api";
import { ChangeLoggingStore, InMemoryKeyValueStore } from "../processors/runtime/stores";
import { InMemorySchemaRegistry } from "../schemas/registry";
import { BASELINE_FILE, reportFigures } from "./baseline";

interface Knobs {
  requests: number;
  users: number;
  periods: number[];
  srvs: string[];
  partitions: number;
  rawBytes: number;
  spanMinutes: number;
  adt: number;
  memoryKeys: number;
  batch: number;
  rememberRequestIds: boolean;
  cpuProfile: string | undefined;
  baseline: string;
  updateBaseline: boolean;
}

function knobs(argv: string[]): Knobs {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const int = (name: string, def: number, min = 1): number => {
    const raw = get(name);
    const n = raw === undefined ? def : Number(raw);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${name} must be an integer >= ${min}, got ${raw}`);
    return n;
  };
  const periods = (get("periods") ?? "60,360,1440").split(",").map(Number);
  if (periods.some((p) => !Number.isInteger(p) || p < 1 || p > 1440))
    throw new Error("--periods: minutes in 1..1440");
  return {
    requests: int("requests", 1_000_000),
    users: int("users", 10_000),
    periods,
    srvs: (get("srvs") ?? "6.23").split(","),
    partitions: int("partitions", 3),
    rawBytes: int("raw-bytes", 512, 0),
    spanMinutes: int("span-minutes", 60),
    adt: int("adt", 1_000_000, 0),
    memoryKeys: int("memory-keys", 30_000),
    batch: int("batch", 10_000),
    cpuProfile: get("cpu-profile"),
    rememberRequestIds: (get("remember-request-ids") ?? "on") !== "off",
    baseline: get("baseline") ?? BASELINE_FILE,
    updateBaseline: argv.includes("--update-baseline"),
  };
}

function progress(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Heap plus ArrayBuffer backing stores (where the windows' bucket arrays live), after a full GC. */
function liveBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const rssMb = (): number => process.memoryUsage().rss / 1048576;

function userId(u: number): string {
  const hex = u.toString(16).toUpperCase().padStart(8, "0");
  return `90-B3-D5-1F-${hex.slice(0, 2)}-${hex.slice(2, 4)}-${hex.slice(4, 6)}-${hex.slice(6, 8)}`;
}

/** The request stream: users spread by a stride, SRVs in turn, receipt times evenly over the span. */
function* requests(
  k: Knobs,
  from: number,
  n: number,
  raw: Buffer,
  start: number,
): Generator<ServiceRequestEnvelope> {
  const step = (k.spanMinutes * 60_000) / k.requests;
  for (let i = from; i < from + n; i++) {
    const u = (i * 7919) % k.users;
    const user = userId(u);
    yield {
      requestId: `${user}:00-DB-00-00-00-00-00-01:${i}`,
      userId: user,
      srv: k.srvs[i % k.srvs.length] as string,
      receivedAt: start + Math.floor(i * step),
      deviceId: "00-DB-00-00-00-00-00-01",
      raw,
    };
  }
}

async function benchThroughput(k: Knobs, config: AnomalyConfig): Promise<Record<string, number>> {
  const serdes = anomalyAvroSerdes(new InMemorySchemaRegistry());
  const topics = anomalyTopics();
  const driver = await InProcessDriver.create(buildDspAnomalyTopology({ serdes, config }), {
    applicationId: "bench-anomaly",
    partitions: k.partitions,
    retainRecords: 10_000,
  });
  const start = Date.UTC(2026, 0, 1);
  const rows = k.srvs.flatMap((srv) => k.periods.map((p) => `${srv},${p},${k.adt},${k.adt}`));
  const files: AdtFileSubmission[] = [];
  for (let u = 0; u < k.users; u++) {
    files.push({
      submissionId: `bench-${u}`,
      userId: userId(u),
      fileName: "bench.csv",
      submittedAt: start - 1,
      content: Buffer.from([`${SEQUENCE_LABEL},1`, ADT_HEADER.join(","), ...rows].join("\n")),
    });
  }
  for (let i = 0; i < files.length; i += 5000) {
    await driver.pipeInput(
      topics.adtFiles,
      files.slice(i, i + 5000).map((f) => ({ key: f.userId, value: f, timestamp: f.submittedAt })),
      serdes.adtFile,
    );
  }
  const accepted = (await driver.readOutput(topics.adtResults, serdes.adtResult)).filter(
    (r) => r.value.outcome === "ACCEPTED",
  );
  if (accepted.length !== k.users)
    throw new Error(`only ${accepted.length} of ${k.users} ADT files accepted`);
  progress(`${k.users} ADT files loaded (${rows.length} thresholds each)`);

  await serdes.request.prepare?.(topics.requests);
  // Optional CPU profile of the timed part only (--cpu-profile <file.cpuprofile>).
  const session = k.cpuProfile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post("Profiler.enable");
  }
  const raw = Buffer.alloc(k.rawBytes, 0x3c);
  const slice = 100_000;
  let seconds = 0;
  let cpuSeconds = 0;
  let rssMax = rssMb();
  for (let done = 0; done < k.requests; done += slice) {
    const n = Math.min(slice, k.requests - done);
    const input: Array<{ key: Buffer; value: Buffer; timestamp: number }> = [];
    for (const r of requests(k, done, n, raw, start)) {
      input.push({
        key: Buffer.from(r.userId),
        value: serdes.request.serialize(topics.requests, r),
        timestamp: r.receivedAt,
      });
    }
    if (session) await session.post("Profiler.start");
    const t = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    for (let i = 0; i < input.length; i += k.batch)
      await driver.pipeRaw(topics.requests, input.slice(i, i + k.batch));
    seconds += Number(process.hrtime.bigint() - t) / 1e9;
    const used = process.cpuUsage(cpu);
    cpuSeconds += (used.user + used.system) / 1e6;
    if (session && k.cpuProfile) {
      const { profile } = await session.post("Profiler.stop");
      fs.writeFileSync(
        k.cpuProfile.replace(/(\.cpuprofile)?$/, `-${done}.cpuprofile`),
        JSON.stringify(profile),
      );
    }
    rssMax = Math.max(rssMax, rssMb());
    progress(`${done + n}/${k.requests} requests, rss=${rssMb().toFixed(0)}MB`);
  }
  // Every request lands in the longest window (the span is shorter than it): its totals must add up.
  const longest = Math.max(...k.periods);
  const windows = driver.storeEntries<WindowSet>(DSP_ANOMALY_STORES.windows);
  const counted = windows.reduce(
    (sum, [, w]) => sum + (w.rings.find((r) => r.periodMinutes === longest)?.total ?? 0),
    0,
  );
  const tracked = windows.reduce((sum, [, w]) => sum + w.rings.length, 0);
  await driver.close();
  if (k.spanMinutes < longest && counted !== k.requests)
    throw new Error(`counted ${counted}, expected ${k.requests}`);
  return {
    requests_per_s: Math.round(k.requests / seconds),
    // Per core: the same requests over the CPU time the process used (the machine may be shared).
    requests_per_cpu_s: Math.round(k.requests / cpuSeconds),
    tracked_windows: tracked,
    rss_max_mb: Math.round(rssMax),
  };
}

/**
 * Memory of the windows alone, built by the processor's own functions in an in-memory store: live
 * heap bytes per (User ID, SRV, period) window, the store's key strings and map entries included,
 * and their changelog size. Two fills: "sparse" (8 requests a day per key, 3 hours apart: a few
 * buckets in use) and "full" (a request in every bucket of every window: the upper bound).
 */
function benchWindowMemory(k: Knobs, config: AnomalyConfig): Record<string, number> {
  const n = config.bucketsPerWindow;
  const start = Date.UTC(2026, 0, 1);
  const measure = (sets: number, fill: (set: WindowSet) => void): { bytes: number; changelog: number } => {
    const before = liveBytes();
    const store = new InMemoryKeyValueStore<WindowSet>("windows");
    for (let s = 0; s < sets; s++) {
      const set: WindowSet = { rings: k.periods.map((p) => newRing(p, n)) };
      fill(set);
      store.put(windowKey(userId(s), "6.23"), set);
    }
    const after = liveBytes();
    let changelog = 0;
    for (const [key, v] of store.all()) changelog += key.length + windowSetSerde.serialize("c", v).length;
    const windows = sets * k.periods.length;
    return { bytes: Math.round((after - before) / windows), changelog: Math.round(changelog / windows) };
  };
  const sparse = measure(Math.ceil(k.memoryKeys / k.periods.length), (set) => {
    for (let r = 0; r < 8; r++) for (const ring of set.rings) addRequest(ring, start + r * 3 * 3_600_000);
  });
  const full = measure(Math.ceil(Math.min(k.memoryKeys, 3000) / k.periods.length), (set) => {
    for (const ring of set.rings) {
      const width = (ring.periodMinutes * 60_000) / n;
      for (let b = 0; b <= n; b++) addRequest(ring, start + Math.ceil(b * width));
    }
  });
  return {
    window_bytes_per_tracked_key_sparse: sparse.bytes,
    window_bytes_per_tracked_key_full: full.bytes,
    window_changelog_bytes_sparse: sparse.changelog,
    window_changelog_bytes_full: full.changelog,
    bucket_ms_longest_period: Math.round((Math.max(...k.periods) * 60_000) / n),
  };
}

/**
 * Memory of the windows as the DSP processor keeps them: the sparse fill of benchWindowMemory sent
 * through a DspAnomalyProcessor (request ids not remembered) over change-logging in-memory stores,
 * so its per-User cache (version, thresholds, window key and set per SRV) is included. ADT tables are
 * loaded before the first measurement; the changelog entries are drained (and dropped) at the end.
 */
const held: unknown[] = [];

function benchProcessorWindowMemory(k: Knobs, config: AnomalyConfig): Record<string, number> {
  const cfg = anomalyConfig({ ...config, rememberRequestIds: false });
  const s = DSP_ANOMALY_STORES;
  const stores = new Map<string, ChangeLoggingStore<unknown>>([
    [s.adtTables, new ChangeLoggingStore(new InMemoryKeyValueStore(s.adtTables), "t", adtHistorySerde)],
    [s.windows, new ChangeLoggingStore(new InMemoryKeyValueStore(s.windows), "w", windowSetSerde)],
    [
      s.countedRequests,
      new ChangeLoggingStore(new InMemoryKeyValueStore(s.countedRequests), "c", countedRequestIdsSerde),
    ],
    [
      s.quarantine,
      new ChangeLoggingStore(new InMemoryKeyValueStore(s.quarantine), "q", quarantineStoreSerde),
    ],
  ]);
  const context = {
    forward: () => {},
    getStateStore: (name: string) => stores.get(name),
  } as unknown as ProcessorContext<unknown>;
  const start = Date.UTC(2026, 0, 1);
  const users = Math.ceil(k.memoryKeys / k.periods.length);
  const rows = k.periods.map((p) => `6.23,${p},${k.adt},${k.adt}`);
  const content = Buffer.from([`${SEQUENCE_LABEL},1`, ADT_HEADER.join(","), ...rows].join("\n"));
  const tables = stores.get(s.adtTables) as ChangeLoggingStore<AdtHistory>;
  for (let u = 0; u < users; u++) {
    const outcome = applyAdtFile(
      undefined,
      { userId: userId(u), submissionId: "m", submittedAt: start - 1, content },
      cfg,
    );
    if (!outcome.ok) throw new Error(outcome.reason);
    tables.put(userId(u), outcome.history);
  }
  for (const store of stores.values()) store.discardDirty();
  const processor = new DspAnomalyProcessor(s, cfg, { passed: "p", quarantined: "q", events: "e" });
  processor.init(context);
  // Held until after the measurement, so the processor's cache is counted.
  held.push(processor);
  const raw = Buffer.alloc(0);
  const before = liveBytes();
  for (let r = 0; r < 8; r++) {
    for (let u = 0; u < users; u++) {
      const user = userId(u);
      const receivedAt = start + r * 3 * 3_600_000;
      processor.process({
        key: user,
        value: { requestId: `${user}:${r}`, userId: user, srv: "6.23", receivedAt, deviceId: "d", raw },
        timestamp: receivedAt,
      });
    }
  }
  for (const store of stores.values()) store.drainChangelog();
  const after = liveBytes();
  const windows = (stores.get(s.windows) as ChangeLoggingStore<WindowSet>)
    .all()
    .reduce((n, [, w]) => n + w.rings.length, 0);
  if (windows !== users * k.periods.length)
    throw new Error(`${windows} windows, expected ${users * k.periods.length}`);
  held.length = 0;
  return { window_bytes_per_tracked_key_processor: Math.round((after - before) / windows) };
}

/** Memory of remembering one counted request id (the deduplicator's set and its store entries). */
function benchIdMemory(k: Knobs, config: AnomalyConfig): Record<string, number> {
  const n = 200_000;
  const start = Date.UTC(2026, 0, 1);
  const before = liveBytes();
  const store = new InMemoryKeyValueStore<CountedRequestIds>("ids");
  const dedup = new RequestDeduplicator(store, config.dedupRetentionMinutes * 60_000);
  for (const r of requests({ ...k, requests: n }, 0, n, Buffer.alloc(0), start))
    dedup.remember(r.userId, r.requestId, r.receivedAt);
  const after = liveBytes();
  if (dedup.size !== n) throw new Error("ids were evicted during the measurement");
  return { bytes_per_remembered_request_id: Math.round((after - before) / n) };
}

async function main(): Promise<void> {
  const k = knobs(process.argv.slice(2));
  const config = anomalyConfig({ rememberRequestIds: k.rememberRequestIds });
  const memory = {
    ...benchWindowMemory(k, config),
    ...benchIdMemory(k, config),
    // Last: what it leaves behind is freed late (weakly held caches) and would skew a later figure.
    ...benchProcessorWindowMemory(k, config),
  };
  progress(`memory measured: ${JSON.stringify(memory)}`);
  const throughput = await benchThroughput(k, config);
  const figures = { ...throughput, ...memory };
  const variant = config.rememberRequestIds ? "remember-ids" : "no-ids";
  reportFigures(
    "anomaly",
    { [variant]: figures },
    { variantKey: "request_ids", update: k.updateBaseline, file: k.baseline },
  );
  const summary = {
    bench: "anomaly",
    summary: {
      users: k.users,
      periods_per_user: k.periods.length,
      srvs: k.srvs,
      requests: k.requests,
      raw_bytes: k.rawBytes,
      buckets_per_window: config.bucketsPerWindow,
      remember_request_ids: config.rememberRequestIds,
      target_requests_per_s: 100_000,
      // The target is per core: requests over the CPU time used (the machine is shared).
      meets_target: (figures.requests_per_cpu_s ?? 0) >= 100_000,
    },
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
