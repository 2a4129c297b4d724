/**
 * Shared by the anomaly tests: ADT file text, requests, submissions and an in-process harness running
 * the standalone topologies with Avro serdes over an in-memory registry.
 */
import { anomalyConfig, type AnomalyConfig } from "../../processors/anomaly/config";
import type {
  AdtFileResult,
  AdtFileSubmission,
  AnomalyEvent,
  ExitQuarantineInstruction,
  QuarantinedRequest,
  ServiceRequestEnvelope,
} from "../../processors/anomaly/records";
import { anomalyAvroSerdes } from "../../processors/anomaly/serdes";
import {
  anomalyTopics,
  buildDspAnomalyTopology,
  buildEcosPartyAnomalyTopology,
  type AnomalySerdes,
} from "../../processors/anomaly/topology";
import { InProcessDriver, type OutputRecord } from "../../processors/runtime/in-process-driver";
import { InMemorySchemaRegistry } from "../../schemas/registry";

export const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
export const MIN = 60_000;
export const USER_A = "90-B3-D5-1F-30-01-00-0A";
export const USER_B = "90-B3-D5-1F-30-01-00-0B";
export const DEVICE = "00-DB-12-34-56-78-90-A0";
export const HEADER = "SRV,TimePeriodApplicable,ADT,WarningThreshold";

/** ADT file text: a SequenceNumber line, the header and `rows` ("srv,period,adt,warning"). */
export function adtCsv(sequenceNumber: number, rows: readonly string[]): string {
  return [`SequenceNumber,${sequenceNumber}`, HEADER, ...rows].join("\n") + "\n";
}

let submissions = 0;
export function submission(userId: string, content: string | Buffer, submittedAt: number): AdtFileSubmission {
  return {
    submissionId: `sub-${++submissions}`,
    userId,
    fileName: `adt-${submissions}.csv`,
    submittedAt,
    content: typeof content === "string" ? Buffer.from(content, "utf8") : content,
  };
}

export function request(userId: string, n: number, receivedAt: number, srv = "6.23"): ServiceRequestEnvelope {
  return {
    requestId: `${userId}:${DEVICE}:${n}`,
    userId,
    srv,
    receivedAt,
    deviceId: DEVICE,
    raw: Buffer.from(`<sr:Request counter="${n}"/>`),
  };
}

export interface AnomalyHarness {
  readonly driver: InProcessDriver;
  readonly serdes: AnomalySerdes;
  readonly config: AnomalyConfig;
  submit(...s: AdtFileSubmission[]): Promise<AdtFileResult[]>;
  send(...r: ServiceRequestEnvelope[]): Promise<void>;
  exit(...x: ExitQuarantineInstruction[]): Promise<void>;
  passed(): Promise<Array<OutputRecord<ServiceRequestEnvelope>>>;
  quarantined(): Promise<QuarantinedRequest[]>;
  events(): Promise<AnomalyEvent[]>;
  refused(): Promise<ServiceRequestEnvelope[]>;
}

/** The DSP (or ECoS Party) standalone topology on the in-process driver, 3 partitions. */
export async function anomalyHarness(
  party: "dsp" | "ecos-party" = "dsp",
  overrides: Partial<AnomalyConfig> = {},
  backend: "memory" | "lmdb" = "memory",
  stateDir?: string,
): Promise<AnomalyHarness> {
  const serdes = anomalyAvroSerdes(new InMemorySchemaRegistry());
  const config = anomalyConfig(overrides);
  const build = party === "dsp" ? buildDspAnomalyTopology : buildEcosPartyAnomalyTopology;
  const driver = await InProcessDriver.create(
    build({ serdes, config, backends: { state: backend, countedRequests: backend } }),
    { applicationId: `test-${party}`, partitions: 3, ...(stateDir ? { stateDir } : {}) },
  );
  const t = anomalyTopics();
  return {
    driver,
    serdes,
    config,
    async submit(...s) {
      await driver.pipeInput(
        t.adtFiles,
        s.map((x) => ({ key: x.userId, value: x, timestamp: x.submittedAt })),
        serdes.adtFile,
      );
      const topic = party === "dsp" ? t.adtResults : t.ecosPartyAdtResults;
      return (await driver.readOutput(topic, serdes.adtResult)).map((r) => r.value);
    },
    async send(...r) {
      const topic = party === "dsp" ? t.requests : t.ecosPartyRequests;
      await driver.pipeInput(
        topic,
        r.map((x) => ({ key: x.userId, value: x, timestamp: x.receivedAt })),
        serdes.request,
      );
    },
    async exit(...x) {
      await driver.pipeInput(
        t.exitQuarantine,
        x.map((i) => ({ key: i.userId, value: i, timestamp: i.issuedAt })),
        serdes.exit,
      );
    },
    passed: () => driver.readOutput(party === "dsp" ? t.passed : t.ecosPartyPassed, serdes.request),
    quarantined: async () => (await driver.readOutput(t.quarantined, serdes.quarantined)).map((r) => r.value),
    events: async () => (await driver.readOutput(t.events, serdes.event)).map((r) => r.value),
    refused: async () => (await driver.readOutput(t.ecosPartyRefused, serdes.request)).map((r) => r.value),
  };
}
