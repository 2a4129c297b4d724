/**
 * Wiring of Threshold Anomaly Detection.
 *
 * `addDspAnomalyDetection` and `addEcosPartyAnomalyDetection` add a party's processors and stores to
 * a TopologyBuilder under given parent nodes — the DSP validation and ECoS Party topologies call them
 * — and return the names of their output nodes, to which the caller attaches sinks or processors.
 * The standalone topologies read and write topics of their own:
 *
 *   anomaly.requests ──▶ dsp-anomaly ─┬─▶ anomaly.passed
 *   adt.files ─────────▶ adt loader   ├─▶ anomaly.quarantined
 *   anomaly.exit-quarantine ─▶ exit   ├─▶ anomaly.events
 *                                     └─▶ adt.file-results
 *
 * Every input is keyed by User ID, so a User's requests, files, instructions and state share a
 * partition (one sub-topology, co-partitioned sources).
 */
import type { Serde } from "../runtime/serde";
import { jsonSerde } from "../runtime/serde";
import { TopologyBuilder, type StoreBackendKind, type Topology } from "../runtime/topology";
import { internHistory, type AdtHistory } from "./adt-table";
import type { AnomalyConfig } from "./config";
import {
  AdtFileLoader,
  DspAnomalyProcessor,
  EcosPartyAnomalyProcessor,
  ExitQuarantineProcessor,
  PassThrough,
  type AnomalyStoreNames,
} from "./processors";
import { countedRequestIdsSerde } from "./request-ids";
import type {
  AdtFileResult,
  AdtFileSubmission,
  AnomalyEvent,
  ExitQuarantineInstruction,
  QuarantinedRequest,
  ServiceRequestEnvelope,
} from "./records";
import { windowSetSerde } from "./window";

/** Store names: part of the compatibility surface (they name the changelog topics). */
export const DSP_ANOMALY_STORES = {
  adtTables: "dsp-adt-tables",
  windows: "dsp-anomaly-windows",
  countedRequests: "dsp-anomaly-counted-requests",
  quarantine: "dsp-quarantine",
} as const satisfies AnomalyStoreNames;

export const ECOS_PARTY_ANOMALY_STORES = {
  adtTables: "ecos-party-adt-tables",
  windows: "ecos-party-anomaly-windows",
  countedRequests: "ecos-party-anomaly-counted-requests",
} as const satisfies AnomalyStoreNames;

/** Held requests with their raw bytes as base64 (JSON keeps the changelog readable). */
export const quarantineStoreSerde: Serde<QuarantinedRequest> = {
  name: "json:QuarantinedRequest",
  serialize: (_topic, v) => Buffer.from(JSON.stringify({ ...v, raw: v.raw.toString("base64") }), "utf8"),
  deserialize: (_topic, data) => {
    const o = JSON.parse(data.toString("utf8")) as Omit<QuarantinedRequest, "raw"> & { raw: string };
    return { ...o, raw: Buffer.from(o.raw, "base64") };
  },
};

const adtHistoryJson = jsonSerde<AdtHistory>("json:AdtHistory");

/** JSON, with the decoded threshold lists shared (internHistory) as freshly loaded ones are. */
export const adtHistorySerde: Serde<AdtHistory> = {
  name: adtHistoryJson.name,
  serialize: (topic, value) => adtHistoryJson.serialize(topic, value),
  deserialize: (topic, data) => internHistory(adtHistoryJson.deserialize(topic, data) as AdtHistory),
};

export interface StoreBackends {
  /** ADT tables, windows and quarantine (default memory). */
  readonly state?: StoreBackendKind;
  /**
   * Counted request ids (default memory): an entry per 64 ids of a receipt minute within the
   * retention. The deduplicator holds every id in memory as well, for its lookup.
   */
  readonly countedRequests?: StoreBackendKind;
}

export interface DspAnomalyWiring {
  /** Node emitting ServiceRequestEnvelope records keyed by User ID (validated requests). */
  readonly requests: string;
  /** Node emitting AdtFileSubmission records keyed by User ID. */
  readonly adtFiles: string;
  /** Node emitting ExitQuarantineInstruction records keyed by User ID. */
  readonly exitInstructions: string;
  readonly config: AnomalyConfig;
  readonly backends?: StoreBackends;
  /** Prefix of the processor node names (default "dsp-anomaly"); store names are fixed. */
  readonly namePrefix?: string;
}

/** Output nodes of the DSP's anomaly detection. */
export interface DspAnomalyNodes {
  /** ServiceRequestEnvelope: requests that passed, and released ones (header ecos.anomaly.released). */
  readonly passed: string;
  /** QuarantinedRequest: requests held in quarantine. */
  readonly quarantined: string;
  /** AnomalyEvent: warnings, quarantines, releases, deletions, rejected exit instructions. */
  readonly events: string;
  /** AdtFileResult: one per submitted file. */
  readonly adtResults: string;
}

/** Adds DSP anomaly detection under existing nodes; returns its output nodes. */
export function addDspAnomalyDetection(b: TopologyBuilder, w: DspAnomalyWiring): DspAnomalyNodes {
  const p = w.namePrefix ?? "dsp-anomaly";
  const out: DspAnomalyNodes = {
    passed: `${p}-passed`,
    quarantined: `${p}-quarantined`,
    events: `${p}-events`,
    adtResults: `${p}-adt-results`,
  };
  const loader = `${p}-adt-loader`;
  const check = `${p}-check`;
  const exit = `${p}-exit-quarantine`;
  const s = DSP_ANOMALY_STORES;
  b.addProcessor(loader, () => new AdtFileLoader(s.adtTables, w.config), w.adtFiles)
    .addProcessor(out.adtResults, () => new PassThrough(), loader)
    .addProcessor(check, () => new DspAnomalyProcessor(s, w.config, out), w.requests)
    .addProcessor(exit, () => new ExitQuarantineProcessor(s.quarantine, out), w.exitInstructions)
    .addProcessor(out.passed, () => new PassThrough(), check, exit)
    .addProcessor(out.quarantined, () => new PassThrough(), check)
    .addProcessor(out.events, () => new PassThrough(), check, exit);
  const state = w.backends?.state ?? "memory";
  b.addStateStore({ name: s.adtTables, valueSerde: adtHistorySerde, backend: state }, loader, check)
    .addStateStore({ name: s.windows, valueSerde: windowSetSerde, backend: state }, check)
    .addStateStore(
      {
        name: s.countedRequests,
        valueSerde: countedRequestIdsSerde,
        backend: w.backends?.countedRequests ?? "memory",
      },
      check,
    )
    .addStateStore({ name: s.quarantine, valueSerde: quarantineStoreSerde, backend: state }, check, exit);
  return out;
}

export interface EcosPartyAnomalyWiring {
  /** Node emitting the Countersigned CoS Service Requests (ServiceRequestEnvelope) keyed by User ID. */
  readonly requests: string;
  /** Node emitting AdtFileSubmission records keyed by User ID (the ECoS Party's copy of the tables). */
  readonly adtFiles: string;
  readonly config: AnomalyConfig;
  readonly backends?: StoreBackends;
  /** Prefix of the processor node names (default "ecos-party-anomaly"). */
  readonly namePrefix?: string;
}

export interface EcosPartyAnomalyNodes {
  /** ServiceRequestEnvelope: requests that may be authorised. */
  readonly passed: string;
  /** ServiceRequestEnvelope: requests stopped by a breach; the request is finished. */
  readonly refused: string;
  /** AnomalyEvent: ECOS_PARTY_THRESHOLD_BREACHED (N63). */
  readonly events: string;
  readonly adtResults: string;
}

export function addEcosPartyAnomalyDetection(
  b: TopologyBuilder,
  w: EcosPartyAnomalyWiring,
): EcosPartyAnomalyNodes {
  const p = w.namePrefix ?? "ecos-party-anomaly";
  const out: EcosPartyAnomalyNodes = {
    passed: `${p}-passed`,
    refused: `${p}-refused`,
    events: `${p}-events`,
    adtResults: `${p}-adt-results`,
  };
  const loader = `${p}-adt-loader`;
  const check = `${p}-check`;
  const s = ECOS_PARTY_ANOMALY_STORES;
  b.addProcessor(loader, () => new AdtFileLoader(s.adtTables, w.config), w.adtFiles)
    .addProcessor(out.adtResults, () => new PassThrough(), loader)
    .addProcessor(check, () => new EcosPartyAnomalyProcessor(s, w.config, out), w.requests)
    .addProcessor(out.passed, () => new PassThrough(), check)
    .addProcessor(out.refused, () => new PassThrough(), check)
    .addProcessor(out.events, () => new PassThrough(), check);
  const state = w.backends?.state ?? "memory";
  b.addStateStore({ name: s.adtTables, valueSerde: adtHistorySerde, backend: state }, loader, check)
    .addStateStore({ name: s.windows, valueSerde: windowSetSerde, backend: state }, check)
    .addStateStore(
      {
        name: s.countedRequests,
        valueSerde: countedRequestIdsSerde,
        backend: w.backends?.countedRequests ?? "memory",
      },
      check,
    );
  return out;
}

/** Topics of the standalone topologies. */
export const ANOMALY_TOPICS = {
  /** In: validated requests (ServiceRequestEnvelope), produced by DSP validation, key User ID. */
  requests: "anomaly.requests",
  /** In: ADT files (AdtFileSubmission), key User ID. */
  adtFiles: "adt.files",
  /** In: exit-quarantine instructions, key User ID. */
  exitQuarantine: "anomaly.exit-quarantine",
  passed: "anomaly.passed",
  quarantined: "anomaly.quarantined",
  /** Every warning, quarantine, breach and exit (both parties): the ClickHouse event table's source. */
  events: "anomaly.events",
  adtResults: "adt.file-results",
  /** In: Countersigned CoS Service Requests at the ECoS Party, key User ID. */
  ecosPartyRequests: "ecos-party.anomaly.requests",
  ecosPartyPassed: "ecos-party.anomaly.passed",
  ecosPartyRefused: "ecos-party.anomaly.refused",
  ecosPartyAdtResults: "ecos-party.adt.file-results",
} as const;

export type AnomalyTopics = { -readonly [K in keyof typeof ANOMALY_TOPICS]: string };

/** The standalone topics under a prefix (tests give each run its own). */
export function anomalyTopics(prefix = ""): AnomalyTopics {
  const out = {} as AnomalyTopics;
  for (const [k, v] of Object.entries(ANOMALY_TOPICS)) out[k as keyof AnomalyTopics] = prefix + v;
  return out;
}

/** Serdes of the anomaly topics (Avro through a registry in the product: see schemas.ts). */
export interface AnomalySerdes {
  readonly request: Serde<ServiceRequestEnvelope>;
  readonly adtFile: Serde<AdtFileSubmission>;
  readonly adtResult: Serde<AdtFileResult>;
  readonly event: Serde<AnomalyEvent>;
  readonly quarantined: Serde<QuarantinedRequest>;
  readonly exit: Serde<ExitQuarantineInstruction>;
}

export interface StandaloneOptions {
  readonly serdes: AnomalySerdes;
  readonly config: AnomalyConfig;
  readonly backends?: StoreBackends;
  readonly topicPrefix?: string;
}

/** Requests, ADT files and exit instructions in; passed, quarantined, events and file results out. */
export function buildDspAnomalyTopology(opts: StandaloneOptions): Topology {
  const t = anomalyTopics(opts.topicPrefix);
  const sd = opts.serdes;
  const b = new TopologyBuilder()
    .addSource("requests", { topics: [t.requests], valueSerde: sd.request })
    .addSource("adt-files", { topics: [t.adtFiles], valueSerde: sd.adtFile })
    .addSource("exit-quarantine", { topics: [t.exitQuarantine], valueSerde: sd.exit });
  const out = addDspAnomalyDetection(b, {
    requests: "requests",
    adtFiles: "adt-files",
    exitInstructions: "exit-quarantine",
    config: opts.config,
    ...(opts.backends ? { backends: opts.backends } : {}),
  });
  return b
    .addSink("passed-sink", { topic: t.passed, valueSerde: sd.request }, out.passed)
    .addSink("quarantined-sink", { topic: t.quarantined, valueSerde: sd.quarantined }, out.quarantined)
    .addSink("events-sink", { topic: t.events, valueSerde: sd.event }, out.events)
    .addSink("adt-results-sink", { topic: t.adtResults, valueSerde: sd.adtResult }, out.adtResults)
    .build();
}

/** Countersigned CoS requests and ADT files in; passed, refused, events and file results out. */
export function buildEcosPartyAnomalyTopology(opts: StandaloneOptions): Topology {
  const t = anomalyTopics(opts.topicPrefix);
  const sd = opts.serdes;
  const b = new TopologyBuilder()
    .addSource("requests", { topics: [t.ecosPartyRequests], valueSerde: sd.request })
    .addSource("adt-files", { topics: [t.adtFiles], valueSerde: sd.adtFile });
  const out = addEcosPartyAnomalyDetection(b, {
    requests: "requests",
    adtFiles: "adt-files",
    config: opts.config,
    ...(opts.backends ? { backends: opts.backends } : {}),
  });
  return b
    .addSink("passed-sink", { topic: t.ecosPartyPassed, valueSerde: sd.request }, out.passed)
    .addSink("refused-sink", { topic: t.ecosPartyRefused, valueSerde: sd.request }, out.refused)
    .addSink("events-sink", { topic: t.events, valueSerde: sd.event }, out.events)
    .addSink("adt-results-sink", { topic: t.ecosPartyAdtResults, valueSerde: sd.adtResult }, out.adtResults)
    .build();
}
