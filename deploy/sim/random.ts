/**
 * Seeded randomness and latency distributions for the simulators. Every draw comes from a generator
 * seeded by (simulator seed, what the draw is for), e.g. `(seed, "device", requestId)`, so a run is
 * deterministic and does not depend on the order in which Kafka delivers records: the same request
 * gets the same latency, loss and failure draw whatever else is in flight.
 */
import { createHash } from "node:crypto";
import { EcosError } from "../../processors/runtime/errors";

/** A uniform [0, 1) generator. */
export type Random = () => number;

/** sfc32 seeded from SHA-256 of the parts: fast, 128-bit state, good enough for simulation. */
export function seededRandom(...parts: readonly string[]): Random {
  const h = createHash("sha256").update(parts.join("\u0000")).digest();
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12);
  return () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** Standard normal draw (Box–Muller). */
export function normal(random: Random): number {
  const u = 1 - random(); // (0, 1]: log(0) is avoided
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** z of the 99th percentile of the standard normal. */
const Z99 = 2.326347874;

/**
 * A latency distribution in milliseconds.
 * - `lognormal`: given by its median and 99th percentile (the way WAN round trips are quoted);
 *   sigma = ln(p99 / p50) / z0.99.
 * - `uniform`: between min and max.
 * - `fixed`: always the same (tests, and a device next to the DCC).
 */
export type LatencySpec =
  | { readonly kind: "lognormal"; readonly p50Ms: number; readonly p99Ms: number }
  | { readonly kind: "uniform"; readonly minMs: number; readonly maxMs: number }
  | { readonly kind: "fixed"; readonly ms: number };

/** One draw, whole milliseconds, never negative. */
export function sampleLatency(spec: LatencySpec, random: Random): number {
  switch (spec.kind) {
    case "fixed":
      return Math.max(0, Math.round(spec.ms));
    case "uniform":
      return Math.max(0, Math.round(spec.minMs + (spec.maxMs - spec.minMs) * random()));
    case "lognormal": {
      const mu = Math.log(spec.p50Ms);
      const sigma = Math.log(spec.p99Ms / spec.p50Ms) / Z99;
      return Math.max(0, Math.round(Math.exp(mu + sigma * normal(random))));
    }
  }
}

function bad(text: string, why: string): EcosError {
  return new EcosError(
    "ECOS_CONFIG_INVALID",
    `latency "${text}" is not valid (${why}): expected lognormal:p50=<ms>,p99=<ms> | uniform:min=<ms>,max=<ms> | fixed:<ms>`,
  );
}

/**
 * Parses the CLI form: `lognormal:p50=2000,p99=12000`, `uniform:min=500,max=4000`, `fixed:1500`.
 * Times accept an `s` suffix (`p50=2s`).
 */
export function parseLatency(text: string): LatencySpec {
  const [kind, rest = ""] = text.trim().split(":", 2) as [string, string?];
  const ms = (v: string | undefined, name: string): number => {
    if (v === undefined) throw bad(text, `${name} missing`);
    const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(v.trim());
    if (!m) throw bad(text, `${name}=${v}`);
    return Number(m[1]) * (m[2] === "s" ? 1000 : 1);
  };
  const kv = new Map(
    rest
      .split(",")
      .filter((p) => p.includes("="))
      .map((p) => p.split("=", 2).map((s) => s.trim()) as [string, string]),
  );
  let spec: LatencySpec;
  if (kind === "fixed") spec = { kind, ms: ms(rest, "ms") };
  else if (kind === "uniform")
    spec = { kind, minMs: ms(kv.get("min"), "min"), maxMs: ms(kv.get("max"), "max") };
  else if (kind === "lognormal")
    spec = { kind, p50Ms: ms(kv.get("p50"), "p50"), p99Ms: ms(kv.get("p99"), "p99") };
  else throw bad(text, `unknown kind ${kind}`);
  validateLatency(spec, text);
  return spec;
}

export function validateLatency(spec: LatencySpec, text = JSON.stringify(spec)): void {
  if (spec.kind === "uniform" && !(spec.minMs <= spec.maxMs)) throw bad(text, "min > max");
  if (spec.kind === "lognormal" && !(spec.p50Ms > 0 && spec.p99Ms >= spec.p50Ms))
    throw bad(text, "needs 0 < p50 <= p99");
}

export function formatLatency(spec: LatencySpec): string {
  if (spec.kind === "fixed") return `fixed:${spec.ms}`;
  if (spec.kind === "uniform") return `uniform:min=${spec.minMs},max=${spec.maxMs}`;
  return `lognormal:p50=${spec.p50Ms},p99=${spec.p99Ms}`;
}
