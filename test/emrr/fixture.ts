/**
 * The fixed event set of the EMRR golden tests: a handful of premises chosen so that each report has
 * rows, and so that the GPF rule is exercised every way (seed 002 §2, para 25):
 *
 *   CHF1  ESME1 (M1, ELEA) + GSME1 (G1, GASB) + GPF1   -> GPF1 reports go to GASB (gas meter connected)
 *   CHF2  ESME2 (M2, ELEA) + GPF2                      -> GPF2 reports go to ELEA (electricity only)
 *   CHF3  GPF3 alone                                   -> no report for GPF3
 *   CHF4  ESME4 (M4: ELEA, ELEC from 2024-03-10) + GSME4 (decommissioned) + GPF4 (non-migratable GPF-9)
 *                                                      -> GPF4 follows the electricity meter: ELEC
 *   ESME5 unknown to the inventory; the migration engine names ELEA -> routed to ELEA
 *   CHF6  ESME6 (M6, ELEA) + GSME6 (G6, GASB) + GPF6, installed with ECoS in March -> ECOSMIG-006
 *   ESME7 on CHF6 installed in March with TCoS         -> not newly installed ECoS
 *   CHF8  ESME8 (M8, ELEA) + GPF8 (GPF-9)              -> GPF8 counts for ELEA in ECOSMIG-004
 *   CHF9  GSME9 (G9: OTHR, GASB from 2024-03-15) + GPF9 -> ECOSMIG-003 for GASB
 *
 * Suppliers: ELEA and ELEC (electricity), GASB (gas), OTHR (a gas supplier that lost G9).
 */
import type {
  DeviceSnapshot,
  DeviceType,
  MigrationEvent,
  MigrationErrorCategory,
  MigrationStep,
  NonMigratableDeviceModel,
  SupplierRegistration,
} from "../../schemas/event-records";
import type { RouteName } from "../../processors/sinks/clickhouse/routes";

export const at = (iso: string): number => Date.parse(iso.endsWith("Z") ? iso : `${iso}Z`);
const days = (isoDay: string): number => Math.round(at(`${isoDay}T00:00:00`) / 86_400_000);

const dev = (n: string): string => `00-DB-12-34-56-78-00-${n}`;
export const DEVICES = {
  CHF1: dev("C1"),
  ESME1: dev("E1"),
  GSME1: dev("A1"),
  GPF1: dev("F1"),
  CHF2: dev("C2"),
  ESME2: dev("E2"),
  GPF2: dev("F2"),
  CHF3: dev("C3"),
  GPF3: dev("F3"),
  CHF4: dev("C4"),
  ESME4: dev("E4"),
  GSME4: dev("A4"),
  GPF4: dev("F4"),
  ESME5: dev("E5"),
  CHF6: dev("C6"),
  ESME6: dev("E6"),
  GSME6: dev("A6"),
  GPF6: dev("F6"),
  ESME7: dev("E7"),
  CHF8: dev("C8"),
  ESME8: dev("E8"),
  GPF8: dev("F8"),
  CHF9: dev("C9"),
  GSME9: dev("A9"),
  GPF9: dev("F9"),
} as const;

const MODELS: Record<string, [string, string, string]> = {
  CHF: ["ACME", "CH-1", "1.0"],
  ESME: ["ACME", "E-1", "2.0"],
  GSME: ["ACME", "G-1", "1.0"],
  GPF: ["ACME", "GPF-1", "1.0"],
  GPF9: ["ACME", "GPF-9", "1.0"],
  ESME4: ["BETA", "E-7", "3.1"],
};

function snapshot(
  name: keyof typeof DEVICES,
  type: DeviceType,
  chf: keyof typeof DEVICES | null,
  mpxn: string | null,
  over: Partial<DeviceSnapshot> = {},
): DeviceSnapshot {
  const [manufacturer, model, firmware] = MODELS[name] ??
    (["GPF4", "GPF8"].includes(name) ? MODELS["GPF9"] : MODELS[type]) ?? ["ACME", "X", "1"];
  return {
    deviceId: DEVICES[name],
    deviceType: type,
    deviceManufacturer: manufacturer,
    deviceModel: model,
    firmwareVersion: firmware,
    smetsGeneration: "SMETS2",
    deviceStatus: "COMMISSIONED",
    chfDeviceId: chf === null ? null : DEVICES[chf],
    importMpxn: mpxn,
    cosCredential: type === "CHF" ? "UNKNOWN" : "TCOS",
    commissionedAt: at("2022-05-01T10:00:00"),
    snapshotAt: at("2024-02-01T00:00:00"),
    ...over,
  };
}

export const deviceSnapshots: DeviceSnapshot[] = [
  snapshot("CHF1", "CHF", null, null),
  snapshot("ESME1", "ESME", "CHF1", "1100000000011"),
  snapshot("ESME1", "ESME", "CHF1", "1100000000011", {
    cosCredential: "ECOS",
    snapshotAt: at("2024-03-12T07:05:00"),
  }),
  snapshot("GSME1", "GSME", "CHF1", "9100000011"),
  snapshot("GPF1", "GPF", "CHF1", null),
  snapshot("CHF2", "CHF", null, null),
  snapshot("ESME2", "ESME", "CHF2", "1100000000022"),
  snapshot("ESME2", "ESME", "CHF2", "1100000000022", {
    cosCredential: "ECOS",
    snapshotAt: at("2024-03-13T09:00:00"),
  }),
  snapshot("GPF2", "GPF", "CHF2", null),
  snapshot("GPF2", "GPF", "CHF2", null, { cosCredential: "ECOS", snapshotAt: at("2024-03-12T09:03:00") }),
  snapshot("CHF3", "CHF", null, null),
  snapshot("GPF3", "GPF", "CHF3", null),
  snapshot("CHF4", "CHF", null, null),
  snapshot("ESME4", "ESME", "CHF4", "1100000000044"),
  snapshot("ESME4", "ESME", "CHF4", "1100000000044", {
    cosCredential: "ECOS",
    snapshotAt: at("2024-03-12T10:04:00"),
  }),
  snapshot("GSME4", "GSME", "CHF4", "9100000044", { deviceStatus: "DECOMMISSIONED" }),
  snapshot("GPF4", "GPF", "CHF4", null),
  snapshot("CHF6", "CHF", null, null, {
    commissionedAt: at("2024-03-20T09:00:00"),
    snapshotAt: at("2024-03-20T09:00:00"),
  }),
  snapshot("ESME6", "ESME", "CHF6", "1100000000066", {
    cosCredential: "ECOS",
    commissionedAt: at("2024-03-20T09:30:00"),
    snapshotAt: at("2024-03-20T09:30:00"),
  }),
  snapshot("GSME6", "GSME", "CHF6", "9100000066", {
    cosCredential: "ECOS",
    commissionedAt: at("2024-03-21T11:00:00"),
    snapshotAt: at("2024-03-21T11:00:00"),
  }),
  snapshot("GPF6", "GPF", "CHF6", null, {
    cosCredential: "ECOS",
    commissionedAt: at("2024-03-20T09:10:00"),
    snapshotAt: at("2024-03-20T09:10:00"),
  }),
  snapshot("ESME7", "ESME", "CHF6", "1100000000077", {
    commissionedAt: at("2024-03-22T12:00:00"),
    snapshotAt: at("2024-03-22T12:00:00"),
  }),
  snapshot("CHF8", "CHF", null, null),
  snapshot("ESME8", "ESME", "CHF8", "1100000000088"),
  snapshot("GPF8", "GPF", "CHF8", null),
  snapshot("CHF9", "CHF", null, null),
  snapshot("GSME9", "GSME", "CHF9", "9100000099"),
  snapshot("GPF9", "GPF", "CHF9", null),
];

function reg(
  mpxn: string,
  fuel: "ELECTRICITY" | "GAS",
  supplierMpid: string,
  from: string,
  to: string | null,
  version = 1,
): SupplierRegistration {
  return {
    mpxn,
    fuel,
    supplierMpid,
    effectiveFrom: days(from),
    effectiveTo: to === null ? null : days(to),
    registrationVersion: version,
    receivedAt: at(`${from}T06:00:00`),
  };
}

export const registrations: SupplierRegistration[] = [
  reg("1100000000011", "ELECTRICITY", "ELEA", "2020-01-01", null),
  reg("9100000011", "GAS", "GASB", "2020-01-01", null),
  reg("1100000000022", "ELECTRICITY", "ELEA", "2021-06-01", null),
  // M4 switches from ELEA to ELEC on 2024-03-10: the open period is closed by a later version.
  reg("1100000000044", "ELECTRICITY", "ELEA", "2019-01-01", null, 1),
  reg("1100000000044", "ELECTRICITY", "ELEA", "2019-01-01", "2024-03-10", 2),
  reg("1100000000044", "ELECTRICITY", "ELEC", "2024-03-10", null),
  reg("9100000044", "GAS", "GASB", "2020-01-01", null),
  reg("1100000000066", "ELECTRICITY", "ELEA", "2024-03-20", null),
  reg("9100000066", "GAS", "GASB", "2024-03-21", null),
  reg("1100000000077", "ELECTRICITY", "ELEC", "2024-03-22", null),
  reg("1100000000088", "ELECTRICITY", "ELEA", "2022-01-01", null),
  reg("9100000099", "GAS", "OTHR", "2018-01-01", "2024-03-15", 2),
  reg("9100000099", "GAS", "GASB", "2024-03-15", null),
];

export const nonMigratableModels: NonMigratableDeviceModel[] = [
  {
    deviceManufacturer: "ACME",
    deviceModel: "GPF-9",
    firmwareVersion: "1.0",
    deviceType: "GPF",
    status: "NON_MIGRATABLE",
    statusFrom: at("2024-03-01T00:00:00"),
    reason: "firmware rejects the CS02b replacement",
  },
  {
    deviceManufacturer: "BETA",
    deviceModel: "E-7",
    firmwareVersion: "3.1",
    deviceType: "ESME",
    status: "NON_MIGRATABLE",
    statusFrom: at("2024-03-01T00:00:00"),
    reason: null,
  },
  {
    deviceManufacturer: "BETA",
    deviceModel: "E-7",
    firmwareVersion: "3.1",
    deviceType: "ESME",
    status: "MIGRATABLE",
    statusFrom: at("2024-03-20T00:00:00"),
    reason: "fixed by firmware 3.1 patch",
  },
];

interface AttemptSpec {
  device: keyof typeof DEVICES;
  type: DeviceType;
  attempt: number;
  start: string;
  end: string;
  outcome: "SUCCEEDED" | "FAILED";
  failedStep?: MigrationStep;
  category?: MigrationErrorCategory;
  code?: string;
  detail?: string;
  transient?: boolean;
  retries?: number;
  next?: string;
  engineSupplier?: string | null;
  model?: [string, string, string];
}

const STEPS: MigrationStep[] = [
  "MCC_INSTRUCTION",
  "TCOS_REVIEW",
  "CREDENTIAL_REPLACEMENT",
  "COMPLETION_CONFIRMATION",
];

/** The events the migration engine would emit for one attempt. */
function attemptEvents(s: AttemptSpec): MigrationEvent[] {
  const model = s.model ??
    (s.device === "GPF4" || s.device === "GPF8" ? MODELS["GPF9"] : (MODELS[s.device] ?? MODELS[s.type])) ?? [
      "ACME",
      "X",
      "1",
    ];
  const base = {
    deviceId: DEVICES[s.device],
    deviceType: s.type,
    deviceManufacturer: model[0],
    deviceModel: model[1],
    firmwareVersion: model[2],
    chfDeviceId: null,
    responsibleSupplierMpid: s.engineSupplier ?? null,
    batchId: `B-${s.start.slice(0, 10)}`,
    attemptNumber: s.attempt,
    sessionRetry: 0,
    step: null,
    errorCategory: null,
    errorCode: null,
    errorDetail: null,
    transient: false,
    attemptStartedAt: at(s.start),
    nextAttemptAfter: null,
  } satisfies Omit<MigrationEvent, "eventId" | "kind" | "occurredAt">;
  const id = (suffix: string): string => `${s.device}:${s.attempt}:${suffix}`;
  const out: MigrationEvent[] = [
    { ...base, eventId: id("start"), kind: "ATTEMPT_STARTED", occurredAt: at(s.start) },
  ];
  const stop =
    s.outcome === "FAILED" ? STEPS.indexOf(s.failedStep ?? "CREDENTIAL_REPLACEMENT") : STEPS.length;
  for (let i = 0; i < stop; i++) {
    out.push({
      ...base,
      eventId: id(`step${i}`),
      kind: "STEP_SUCCEEDED",
      step: STEPS[i] ?? null,
      occurredAt: at(s.start) + (i + 1) * 30_000,
    });
  }
  if (s.outcome === "SUCCEEDED") {
    out.push({ ...base, eventId: id("done"), kind: "ATTEMPT_SUCCEEDED", occurredAt: at(s.end) });
    return out;
  }
  const failure = {
    step: s.failedStep ?? "CREDENTIAL_REPLACEMENT",
    errorCategory: s.category ?? "FAILED_MIGRATION",
    errorCode: s.code ?? "E20",
    errorDetail: s.detail ?? "command not processed before it timed out",
    transient: s.transient ?? false,
  };
  for (let r = 0; r < (s.retries ?? 0); r++) {
    out.push({
      ...base,
      ...failure,
      eventId: id(`retry${r}`),
      kind: "STEP_FAILED",
      sessionRetry: r,
      occurredAt: at(s.start) + (r + 5) * 300_000,
    });
  }
  out.push({
    ...base,
    ...failure,
    eventId: id("failed"),
    kind: "ATTEMPT_FAILED",
    sessionRetry: s.retries ?? 0,
    occurredAt: at(s.end),
    nextAttemptAfter: s.next === undefined ? null : at(s.next),
  });
  return out;
}

export const migrationEvents: MigrationEvent[] = [
  {
    device: "ESME1",
    type: "ESME",
    attempt: 1,
    start: "2024-03-12T07:00:00",
    end: "2024-03-12T07:05:00",
    outcome: "SUCCEEDED",
  },
  {
    device: "GSME1",
    type: "GSME",
    attempt: 1,
    start: "2024-03-12T07:10:00",
    end: "2024-03-12T07:40:00",
    outcome: "FAILED",
    retries: 3,
    next: "2024-04-12T07:10:00",
  },
  {
    device: "GPF1",
    type: "GPF",
    attempt: 1,
    start: "2024-03-12T08:00:00",
    end: "2024-03-12T08:01:00",
    outcome: "FAILED",
    failedStep: "TCOS_REVIEW",
    category: "DEVICE_DATA_VALIDATION",
    code: "COS_IMMINENT",
    detail: "a change of supplier is imminent",
    transient: true,
  },
  {
    device: "GPF2",
    type: "GPF",
    attempt: 1,
    start: "2024-03-12T09:00:00",
    end: "2024-03-12T09:03:00",
    outcome: "SUCCEEDED",
  },
  {
    device: "GPF3",
    type: "GPF",
    attempt: 1,
    start: "2024-03-12T09:30:00",
    end: "2024-03-12T09:50:00",
    outcome: "FAILED",
  },
  {
    device: "ESME4",
    type: "ESME",
    attempt: 1,
    start: "2024-03-05T10:00:00",
    end: "2024-03-05T10:40:00",
    outcome: "FAILED",
    retries: 2,
    next: "2024-03-12T10:00:00",
  },
  {
    device: "ESME4",
    type: "ESME",
    attempt: 2,
    start: "2024-03-12T10:00:00",
    end: "2024-03-12T10:04:00",
    outcome: "SUCCEEDED",
  },
  {
    device: "GPF4",
    type: "GPF",
    attempt: 1,
    start: "2024-03-12T11:00:00",
    end: "2024-03-12T11:02:00",
    outcome: "FAILED",
    code: "badCertificate",
    detail: "device refused the replacement certificate",
  },
  {
    device: "ESME5",
    type: "ESME",
    attempt: 1,
    start: "2024-03-12T13:00:00",
    end: "2024-03-12T13:04:00",
    outcome: "SUCCEEDED",
    engineSupplier: "ELEA",
    model: ["GAMMA", "E-3", "0.9"],
  },
  {
    device: "ESME2",
    type: "ESME",
    attempt: 1,
    start: "2024-03-13T08:55:00",
    end: "2024-03-13T09:00:00",
    outcome: "SUCCEEDED",
  },
  {
    device: "ESME8",
    type: "ESME",
    attempt: 1,
    start: "2024-03-14T08:00:00",
    end: "2024-03-14T08:00:30",
    outcome: "FAILED",
    failedStep: "MCC_INSTRUCTION",
    category: "MIGRATION_SYSTEMS",
    code: "BATCH_FILE_NAME",
    detail: "batch file name invalid",
  },
  {
    device: "GSME9",
    type: "GSME",
    attempt: 1,
    start: "2024-02-20T08:00:00",
    end: "2024-02-20T08:30:00",
    outcome: "FAILED",
    category: "ANCILLARY_SYSTEMS",
    failedStep: "MCC_INSTRUCTION",
    code: "SHAREPOINT",
    detail: "file exchange unavailable",
  },
].flatMap((s) => attemptEvents(s as AttemptSpec));

/** The fixed event set, by the sink route that stores it. */
export const FIXTURE: ReadonlyArray<{
  route: RouteName;
  events: readonly object[];
  key: (e: never) => string;
}> = [
  { route: "deviceSnapshots", events: deviceSnapshots, key: (e: DeviceSnapshot) => e.deviceId },
  { route: "supplierRegistrations", events: registrations, key: (e: SupplierRegistration) => e.mpxn },
  {
    route: "nonMigratableModels",
    events: nonMigratableModels,
    key: (e: NonMigratableDeviceModel) => `${e.deviceManufacturer}/${e.deviceModel}/${e.firmwareVersion}`,
  },
  { route: "migrationEvents", events: migrationEvents, key: (e: MigrationEvent) => e.deviceId },
];

/** The golden runs: each report for each supplier over the period of the fixture it is checked on. */
export const GOLDEN_RUNS: ReadonlyArray<{ ref: string; supplier: string; from: string; to: string }> = [
  ...["ELEA", "ELEC", "GASB"].flatMap((supplier) => [
    { ref: "ECOSMIG-001", supplier, from: "2024-03-12", to: "2024-03-13" },
    { ref: "ECOSMIG-002", supplier, from: "2024-03-12T06:00", to: "2024-03-12T12:00" },
    { ref: "ECOSMIG-004", supplier, from: "2024-03-11", to: "2024-03-18" },
    { ref: "ECOSMIG-005", supplier, from: "2024-03-11", to: "2024-03-18" },
    { ref: "ECOSMIG-006", supplier, from: "2024-03-01", to: "2024-04-01" },
  ]),
  { ref: "ECOSMIG-003", supplier: "ELEC", from: "2024-03-01", to: "2024-04-01" },
  { ref: "ECOSMIG-003", supplier: "GASB", from: "2024-03-01", to: "2024-04-01" },
  { ref: "ECOSMIG-003", supplier: "ELEA", from: "2024-03-01", to: "2024-04-01" },
  { ref: "ECOSMIG-004", supplier: "ELEC", from: "2024-03-25", to: "2024-04-01" },
];
