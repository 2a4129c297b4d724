import { formatLatency, parseLatency, sampleLatency, seededRandom } from "../../deploy/sim/random";
import { TimerQueue } from "../../deploy/sim/timer-queue";
import { simulatorConfig } from "../../deploy/sim/config";
import { thrownCode } from "./fixtures";

const percentile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(q * (s.length - 1))]!;
};

describe("seeded randomness and latency distributions", () => {
  test("the same seed parts give the same sequence; other parts another", () => {
    const a = seededRandom("s", "req-1");
    const b = seededRandom("s", "req-1");
    const c = seededRandom("s", "req-2");
    const xa = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(xa);
    expect(Array.from({ length: 5 }, c)).not.toEqual(xa);
    expect(xa.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  test("lognormal given by p50/p99 has those percentiles within tolerance for a seed", () => {
    const r = seededRandom("latency-test");
    const xs = Array.from({ length: 20_000 }, () =>
      sampleLatency({ kind: "lognormal", p50Ms: 2000, p99Ms: 12000 }, r),
    );
    expect(percentile(xs, 0.5)).toBeGreaterThan(1900);
    expect(percentile(xs, 0.5)).toBeLessThan(2100);
    expect(percentile(xs, 0.99)).toBeGreaterThan(10800);
    expect(percentile(xs, 0.99)).toBeLessThan(13200);
  });

  test("uniform stays within its bounds and spreads over them; fixed is fixed", () => {
    const r = seededRandom("uniform-test");
    const xs = Array.from({ length: 5000 }, () =>
      sampleLatency({ kind: "uniform", minMs: 500, maxMs: 1500 }, r),
    );
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...xs)).toBeLessThanOrEqual(1500);
    expect(Math.abs(percentile(xs, 0.5) - 1000)).toBeLessThan(40);
    expect(sampleLatency({ kind: "fixed", ms: 42 }, r)).toBe(42);
  });

  test("the CLI latency forms parse, print back, and bad ones are refused with the code", () => {
    expect(parseLatency("lognormal:p50=2s,p99=12000")).toEqual({
      kind: "lognormal",
      p50Ms: 2000,
      p99Ms: 12000,
    });
    expect(parseLatency("uniform:min=500,max=4000")).toEqual({ kind: "uniform", minMs: 500, maxMs: 4000 });
    expect(parseLatency("fixed:1500")).toEqual({ kind: "fixed", ms: 1500 });
    for (const s of ["lognormal:p50=2000,p99=12000", "uniform:min=1,max=2", "fixed:3"])
      expect(formatLatency(parseLatency(s))).toBe(s);
    for (const bad of [
      "lognormal:p50=5000,p99=100",
      "uniform:min=9,max=1",
      "gamma:k=2",
      "fixed:x",
      "lognormal:p50=1",
    ])
      expect(thrownCode(() => parseLatency(bad))).toBe("ECOS_CONFIG_INVALID");
  });

  test("profiles are validated: rates within 0–1, failure rates summing to at most 1, known statuses", () => {
    const base = simulatorConfig().defaultModel;
    expect(() => simulatorConfig({ defaultModel: { ...base, lossRate: 1.5 } })).toThrow(/lossRate/);
    expect(() =>
      simulatorConfig({ defaultModel: { ...base, failureRates: { other: 0.6, resourcesBusy: 0.6 } } }),
    ).toThrow(/more than 1/);
    expect(() =>
      simulatorConfig({ models: { M: { ...base, failureRates: { success: 0.1 } as never } } }),
    ).toThrow(/unknown failure status success/);
  });
});

describe("timer queue", () => {
  test("pops in time order, equal times in insertion order, nothing before it is due", () => {
    const q = new TimerQueue<string>();
    const times = [50, 10, 30, 10, 70, 30, 0];
    times.forEach((t, i) => q.push(t, `${t}/${i}`));
    expect(q.popDue(-1)).toBeNull();
    const out: string[] = [];
    for (let e = q.popDue(40); e; e = q.popDue(40)) out.push(e.value);
    expect(out).toEqual(["0/6", "10/1", "10/3", "30/2", "30/5"]);
    expect(q.peekAt()).toBe(50);
    expect(q.size).toBe(2);
  });
});
