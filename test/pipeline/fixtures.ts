/**
 * Shared by the pipeline tests: seeded traffic and credentials (built once per test file: the test
 * PKI and the signatures cost a few hundred milliseconds) and a pipeline over them on a perfect WAN
 * (fixed latencies, no loss, no injected failures), so that every outcome is exact.
 */
import { perfectProfile } from "../../deploy/sim/config";
import { seededCredentials, type SeededCredentials } from "../../deploy/sim/credentials";
import { EmbeddedPipeline, type PipelineOptions, type PipelineRun } from "../../processors/pipeline/pipeline";
import { syntheticTraffic, type SyntheticTraffic } from "../../processors/pipeline/traffic";

export const START = Date.UTC(2026, 5, 1, 12, 0, 0);
export const DEVICE_LATENCY_MS = 3_000;
export const S1SP_LATENCY_MS = 2_000;

let cached: { traffic: SyntheticTraffic; credentials: SeededCredentials } | undefined;

/** 300 requests over 120 devices (10% SMETS1, a third TCoS), with the test PKI's seed. */
export function seeded(): { traffic: SyntheticTraffic; credentials: SeededCredentials } {
  cached ??= {
    traffic: syntheticTraffic({ requests: 300, devices: 120, startAt: START, perSecond: 20 }),
    credentials: seededCredentials(),
  };
  return cached;
}

export async function runPipeline(
  extra: Partial<PipelineOptions> = {},
): Promise<{ pipeline: EmbeddedPipeline; run: PipelineRun }> {
  const { traffic, credentials } = seeded();
  const pipeline = await EmbeddedPipeline.create({
    credentials,
    devices: traffic.devices,
    registrations: traffic.registrations,
    users: [
      { userId: traffic.cast.supplierId, roles: ["IS", "GS"], status: "ACTIVE", mpids: ["ACEE", "ACG"] },
    ],
    startTimeMs: START,
    simulator: {
      seed: "pipeline-test",
      defaultModel: perfectProfile(DEVICE_LATENCY_MS),
      s1sp: perfectProfile(S1SP_LATENCY_MS),
    },
    ...extra,
  });
  const run = await pipeline.run(traffic.requests);
  return { pipeline, run };
}
