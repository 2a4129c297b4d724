/**
 * Configuration of the device and S1SP simulators: per device model, how the simulated WAN and the
 * device behave. Parsed once at the edge (deploy/cli/sim.ts); the simulator core only sees this frozen
 * object. Defaults are chosen to sit inside the 35 s (SMETS2+) and 21 s (SMETS1) targets most of the
 * time, with a tail and a little loss so that time-outs happen (reference §7.3).
 */
import { EcosError } from "../../processors/runtime/errors";
import type { ReplacementStatus } from "../../workers/gbcs/device";
import { validateLatency, type LatencySpec } from "./random";

/** Replacement statuses a device can be made to answer although the command was good (reference §3.3). */
export const INJECTABLE_STATUSES = [
  "badCertificate",
  "noTrustAnchor",
  "insufficientMemory",
  "trustAnchorNotFound",
  "resourcesBusy",
  "other",
] as const satisfies readonly ReplacementStatus[];
export type InjectedStatus = (typeof INJECTABLE_STATUSES)[number];

/** How one device model (or the S1SP) behaves. Rates are probabilities per command, 0–1. */
export interface BehaviourProfile {
  /** Dispatch → answer seen on device.responses (the WAN round trip plus the device's work). */
  readonly latency: LatencySpec;
  /** The command never reaches the device: no state change, no answer (the tracker times out). */
  readonly lossRate: number;
  /** The device acts on the command but its answer arrives late, after `lateLatency`. */
  readonly timeoutRate: number;
  /** Latency of a late answer; by default beyond the response-time target. */
  readonly lateLatency: LatencySpec;
  /**
   * Authentic commands (or future-dated executions) that the device nevertheless fails, by status:
   * every replacement gets that status, no cell is replaced, the supplier floors stay; the CoS
   * counter is consumed. Their sum must be ≤ 1.
   */
  readonly failureRates: Readonly<Partial<Record<InjectedStatus, number>>>;
}

export interface SimulatorConfig {
  /** Seed of every random draw (and, with the fleet, of the test PKI). */
  readonly seed: string;
  /** Profile of a device model not named in `models`. */
  readonly defaultModel: BehaviourProfile;
  /** Profiles by inventory DeviceModel. */
  readonly models: Readonly<Record<string, BehaviourProfile>>;
  /** The SMETS1 Service Provider. Its failure statuses are reported as FAILURE with the status as detail. */
  readonly s1sp: BehaviourProfile;
}

export const DEFAULT_DEVICE_PROFILE: BehaviourProfile = Object.freeze({
  latency: { kind: "lognormal", p50Ms: 4000, p99Ms: 20000 },
  lossRate: 0.002,
  timeoutRate: 0.002,
  lateLatency: { kind: "uniform", minMs: 40000, maxMs: 90000 },
  failureRates: { resourcesBusy: 0.005, insufficientMemory: 0.001, other: 0.001 },
} as const);

export const DEFAULT_S1SP_PROFILE: BehaviourProfile = Object.freeze({
  latency: { kind: "lognormal", p50Ms: 3000, p99Ms: 12000 },
  lossRate: 0.001,
  timeoutRate: 0.002,
  lateLatency: { kind: "uniform", minMs: 25000, maxMs: 60000 },
  failureRates: { other: 0.005 },
} as const);

/** A perfect WAN: fixed latency, no loss, no failures (tests, and `--perfect`). */
export function perfectProfile(latencyMs = 0): BehaviourProfile {
  return {
    latency: { kind: "fixed", ms: latencyMs },
    lossRate: 0,
    timeoutRate: 0,
    lateLatency: { kind: "fixed", ms: latencyMs },
    failureRates: {},
  };
}

function invalid(what: string, why: string): EcosError {
  return new EcosError("ECOS_CONFIG_INVALID", `simulator ${what}: ${why}`);
}

export function validateProfile(p: BehaviourProfile, what: string): BehaviourProfile {
  validateLatency(p.latency);
  validateLatency(p.lateLatency);
  const rate = (v: number, name: string): void => {
    if (!(Number.isFinite(v) && v >= 0 && v <= 1)) throw invalid(what, `${name} ${v} is not within 0–1`);
  };
  rate(p.lossRate, "lossRate");
  rate(p.timeoutRate, "timeoutRate");
  let sum = 0;
  for (const [status, r] of Object.entries(p.failureRates)) {
    if (!(INJECTABLE_STATUSES as readonly string[]).includes(status))
      throw invalid(what, `unknown failure status ${status} (one of ${INJECTABLE_STATUSES.join(", ")})`);
    rate(r, `failureRates.${status}`);
    sum += r;
  }
  if (sum > 1) throw invalid(what, "failure rates add up to more than 1");
  if (p.lossRate + p.timeoutRate > 1) throw invalid(what, "lossRate + timeoutRate > 1");
  return Object.freeze({ ...p, failureRates: Object.freeze({ ...p.failureRates }) });
}

export function simulatorConfig(o: Partial<SimulatorConfig> = {}): Readonly<SimulatorConfig> {
  const models: Record<string, BehaviourProfile> = {};
  for (const [m, p] of Object.entries(o.models ?? {})) models[m] = validateProfile(p, `model ${m}`);
  return Object.freeze({
    seed: o.seed ?? "ecos-stream-sim",
    defaultModel: validateProfile(o.defaultModel ?? DEFAULT_DEVICE_PROFILE, "default model"),
    models: Object.freeze(models),
    s1sp: validateProfile(o.s1sp ?? DEFAULT_S1SP_PROFILE, "s1sp"),
  });
}

export function profileFor(config: SimulatorConfig, model: string): BehaviourProfile {
  return config.models[model] ?? config.defaultModel;
}

/** What one command's draws decided. */
export type Fate =
  | { readonly kind: "lost" }
  | { readonly kind: "answered"; readonly latencyMs: number; readonly late: boolean };

/** Picks an injected failure status for one draw u ∈ [0,1), or null. */
export function injectedStatus(p: BehaviourProfile, u: number): InjectedStatus | null {
  let acc = 0;
  for (const s of INJECTABLE_STATUSES) {
    acc += p.failureRates[s] ?? 0;
    if (u < acc) return s;
  }
  return null;
}
