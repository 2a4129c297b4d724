/**
 * Deterministic synthetic event streams (seeded), for the sink benchmark, the kill test and the demo
 * page: a population of migrating devices whose attempts succeed or fail by EMEHRA category, and
 * SRV 6.23 Service Responses whose response times spread around the Target Response Times.
 */
import type {
  DeviceType,
  MigrationErrorCategory,
  MigrationEvent,
  MigrationStep,
  ServiceResponseEvent,
} from "../../schemas/event-records";

/** A small, fast, seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function syntheticDeviceId(n: number): string {
  const hex = n.toString(16).toUpperCase().padStart(8, "0");
  return `00-5E-${hex.slice(0, 2)}-${hex.slice(2, 4)}-${hex.slice(4, 6)}-${hex.slice(6, 8)}-00-01`;
}

const TYPES: DeviceType[] = ["ESME", "ESME", "GSME", "GPF"];
const MODELS: Record<string, Array<[string, string, string]>> = {
  ESME: [
    ["ACME", "E-1", "2.0"],
    ["BETA", "E-7", "3.1"],
    ["GAMMA", "E-3", "0.9"],
  ],
  GSME: [
    ["ACME", "G-1", "1.0"],
    ["BETA", "G-2", "4.0"],
  ],
  GPF: [
    ["ACME", "GPF-1", "1.0"],
    ["ACME", "GPF-9", "1.0"],
  ],
};
const CATEGORIES: MigrationErrorCategory[] = [
  "FAILED_MIGRATION",
  "FAILED_MIGRATION",
  "FAILED_MIGRATION",
  "DEVICE_DATA_VALIDATION",
  "MIGRATION_SYSTEMS",
  "ANCILLARY_SYSTEMS",
];
const STEPS: MigrationStep[] = [
  "MCC_INSTRUCTION",
  "TCOS_REVIEW",
  "CREDENTIAL_REPLACEMENT",
  "COMPLETION_CONFIRMATION",
];

export interface SyntheticMigrationOptions {
  /** Attempts to generate (each gives 2 to 6 events). */
  readonly attempts: number;
  readonly seed?: number;
  /** First attempt time (epoch ms); attempts spread over `days` days. */
  readonly start?: number;
  readonly days?: number;
  /** MPIDs the engine names as Responsible Supplier, chosen per device. */
  readonly suppliers?: readonly string[];
  /** Prefix of event ids (keeps runs apart). */
  readonly idPrefix?: string;
  /** Share of attempts that fail (default 0.15). */
  readonly failureRate?: number;
}

/** Migration events, attempt by attempt, in time order per device. */
export function* syntheticMigrationEvents(o: SyntheticMigrationOptions): Generator<MigrationEvent> {
  const rnd = prng(o.seed ?? 1);
  const start = o.start ?? Date.UTC(2024, 2, 4);
  const spanMs = (o.days ?? 28) * 86_400_000;
  const suppliers = o.suppliers ?? ["ELEA", "ELEC", "GASB"];
  const failureRate = o.failureRate ?? 0.15;
  const prefix = o.idPrefix ?? "syn";
  for (let i = 0; i < o.attempts; i++) {
    const deviceNo = i;
    const deviceType = TYPES[deviceNo % TYPES.length] as DeviceType;
    const models = MODELS[deviceType] ?? [["ACME", "X", "1"]];
    const [manufacturer, model, firmware] = models[Math.floor(rnd() * models.length)] ?? ["ACME", "X", "1"];
    const startedAt = start + Math.floor((i / o.attempts) * spanMs);
    const failed = rnd() < failureRate || model === "GPF-9";
    const base = {
      deviceId: syntheticDeviceId(deviceNo),
      deviceType,
      deviceManufacturer: manufacturer,
      deviceModel: model,
      firmwareVersion: firmware,
      chfDeviceId: null,
      responsibleSupplierMpid: suppliers[deviceNo % suppliers.length] ?? null,
      batchId: `B-${new Date(startedAt).toISOString().slice(0, 10)}`,
      attemptNumber: 1,
      sessionRetry: 0,
      step: null,
      errorCategory: null,
      errorCode: null,
      errorDetail: null,
      transient: false,
      attemptStartedAt: startedAt,
      nextAttemptAfter: null,
    } satisfies Omit<MigrationEvent, "eventId" | "kind" | "occurredAt">;
    const id = (s: string): string => `${prefix}-${i}-${s}`;
    yield { ...base, eventId: id("start"), kind: "ATTEMPT_STARTED", occurredAt: startedAt };
    const category = CATEGORIES[Math.floor(rnd() * CATEGORIES.length)] ?? "FAILED_MIGRATION";
    const failedStepIndex =
      category === "FAILED_MIGRATION" ? 2 : category === "DEVICE_DATA_VALIDATION" ? 1 : 0;
    const steps = failed ? failedStepIndex : STEPS.length;
    for (let s = 0; s < steps; s++) {
      yield {
        ...base,
        eventId: id(`s${s}`),
        kind: "STEP_SUCCEEDED",
        step: STEPS[s] ?? null,
        occurredAt: startedAt + (s + 1) * 20_000,
      };
    }
    const endedAt = startedAt + (failed ? 1_800_000 : 100_000) + Math.floor(rnd() * 60_000);
    if (!failed) {
      yield { ...base, eventId: id("ok"), kind: "ATTEMPT_SUCCEEDED", occurredAt: endedAt };
      continue;
    }
    yield {
      ...base,
      eventId: id("fail"),
      kind: "ATTEMPT_FAILED",
      step: STEPS[failedStepIndex] ?? null,
      errorCategory: model === "GPF-9" ? "FAILED_MIGRATION" : category,
      errorCode: category === "FAILED_MIGRATION" || model === "GPF-9" ? "E20" : "V01",
      errorDetail: "synthetic failure",
      transient: category === "DEVICE_DATA_VALIDATION",
      occurredAt: endedAt,
      nextAttemptAfter: endedAt + 30 * 86_400_000,
    };
  }
}

export interface SyntheticResponseOptions {
  readonly count: number;
  readonly seed?: number;
  readonly start?: number;
  readonly days?: number;
  readonly suppliers?: readonly string[];
}

/** SRV 6.23 Service Responses: response times mostly well inside the targets, with a tail beyond. */
export function* syntheticServiceResponses(o: SyntheticResponseOptions): Generator<ServiceResponseEvent> {
  const rnd = prng(o.seed ?? 2);
  const start = o.start ?? Date.UTC(2024, 2, 4);
  const spanMs = (o.days ?? 28) * 86_400_000;
  const suppliers = o.suppliers ?? ["ELEA", "ELEC", "GASB"];
  for (let i = 0; i < o.count; i++) {
    const smets1 = rnd() < 0.25;
    const target = smets1 ? 21_000 : 35_000;
    // Lognormal-ish: median about a third of the target, a few per cent beyond it.
    const z = Math.sqrt(-2 * Math.log(rnd() || 1e-9)) * Math.cos(2 * Math.PI * rnd());
    const ms = Math.max(800, Math.round((target / 3) * Math.exp(0.55 * z)));
    const receivedAt = start + Math.floor((i / o.count) * spanMs);
    const failed = rnd() < 0.04;
    yield {
      requestId: `90-B3-D5-1F-30-01-00-00:${syntheticDeviceId(i)}:${i}`,
      userId: "90-B3-D5-1F-30-01-00-00",
      supplierMpid: suppliers[i % suppliers.length] ?? null,
      srv: "6.23",
      deviceId: syntheticDeviceId(i),
      deviceType: smets1 ? "ESME" : (TYPES[i % TYPES.length] ?? "ESME"),
      smetsGeneration: smets1 ? "SMETS1" : "SMETS2",
      cosParty: rnd() < 0.7 ? "ECOS" : "TCOS",
      responseCode: failed ? "E062305" : "I0",
      successful: !failed,
      receivedAt,
      respondedAt: receivedAt + ms,
    };
  }
}
