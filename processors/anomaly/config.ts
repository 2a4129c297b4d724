/**
 * Configuration of Threshold Anomaly Detection: a typed, validated, frozen object built once at the
 * edge (the CLI, a test, the benchmark) and handed to the topology builder. Every field's default is
 * listed in docs/anomaly-detection.md.
 */
import { EcosError } from "../runtime/errors";
import { CRITICAL_COMMAND_SRVS, KNOWN_SRVS } from "./srv-catalogue";

export interface AnomalyConfig {
  /** SRVs an ADT file may name; any other SRV rejects the whole file. */
  readonly knownSrvs: readonly string[];
  /** SRVs that give rise to a Critical Command: zero 1440-minute defaults when a file omits them. */
  readonly criticalSrvs: readonly string[];
  /** The CoS SRV that always gets a 1440-minute entry (seed 003 §3.2). */
  readonly cosSrv: string;
  /** Time Period Applicable of every default entry and of the ECoS Party's check (1 day). */
  readonly defaultPeriodMinutes: number;
  /** Largest Time Period Applicable a file may set ([GAP]: the TADP's list of periods). */
  readonly maxPeriodMinutes: number;
  /** Buckets per sliding window: the window is exact to periodMinutes / bucketsPerWindow. */
  readonly bucketsPerWindow: number;
  /** Largest ADT file accepted, in bytes. */
  readonly maxFileBytes: number;
  /** Largest number of threshold rows in an ADT file. */
  readonly maxRows: number;
  /** Largest ADT or Warning Threshold value (counts are kept as unsigned 32-bit integers). */
  readonly maxThreshold: number;
  /** ADT versions kept per user beyond the newest (older ones are dropped once out of every window). */
  readonly maxAdtVersions: number;
  /**
   * How long a request id is remembered to ignore a redelivered copy, in minutes. Default: the
   * longest window plus one bucket, so a copy that could still change a count is always caught.
   */
  readonly dedupRetentionMinutes: number;
  /**
   * Remember counted request ids so a redelivered copy is not counted twice (default true). Only a
   * producer that can write a copy (not transactional, or replayed by hand) makes this necessary:
   * inside the exactly-once Kafka pipeline a copy cannot occur. Off saves ~110 B of memory and about a
   * microsecond of CPU per counted request (see bench/README.md).
   */
  readonly rememberRequestIds: boolean;
}

const DEFAULT_MAX_PERIOD = 1440;
const DEFAULT_BUCKETS = 144;

export const DEFAULT_ANOMALY_CONFIG: Readonly<AnomalyConfig> = Object.freeze({
  knownSrvs: KNOWN_SRVS,
  criticalSrvs: CRITICAL_COMMAND_SRVS,
  cosSrv: "6.23",
  defaultPeriodMinutes: 1440,
  maxPeriodMinutes: DEFAULT_MAX_PERIOD,
  bucketsPerWindow: DEFAULT_BUCKETS,
  maxFileBytes: 256 * 1024,
  maxRows: 2000,
  maxThreshold: 1_000_000_000,
  maxAdtVersions: 8,
  dedupRetentionMinutes: DEFAULT_MAX_PERIOD + Math.ceil(DEFAULT_MAX_PERIOD / DEFAULT_BUCKETS),
  rememberRequestIds: true,
});

function invalid(field: string, why: string): EcosError {
  return new EcosError("ECOS_CONFIG_INVALID", `anomaly configuration: ${field} ${why}`);
}

function intIn(field: string, v: number, min: number, max: number): void {
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw invalid(field, `must be an integer in ${min}..${max}, got ${v}`);
}

const SRV_PATTERN = /^[0-9]{1,2}(\.[0-9]{1,2}){1,2}$/;

/**
 * The default configuration with `overrides` applied, validated and frozen. `dedupRetentionMinutes`
 * follows `maxPeriodMinutes` and `bucketsPerWindow` unless given.
 */
export function anomalyConfig(overrides: Partial<AnomalyConfig> = {}): Readonly<AnomalyConfig> {
  const base = { ...DEFAULT_ANOMALY_CONFIG, ...overrides };
  if (overrides.dedupRetentionMinutes === undefined) {
    base.dedupRetentionMinutes =
      base.maxPeriodMinutes + Math.ceil(base.maxPeriodMinutes / base.bucketsPerWindow);
  }
  intIn("defaultPeriodMinutes", base.defaultPeriodMinutes, 1, base.maxPeriodMinutes);
  intIn("maxPeriodMinutes", base.maxPeriodMinutes, 1, 44_640);
  // t * buckets must stay an exact double (< 2^53) for epoch milliseconds beyond the year 2100.
  intIn("bucketsPerWindow", base.bucketsPerWindow, 1, 1440);
  intIn("maxFileBytes", base.maxFileBytes, 64, 64 * 1024 * 1024);
  intIn("maxRows", base.maxRows, 1, 1_000_000);
  intIn("maxThreshold", base.maxThreshold, 0, 0xffffffff);
  intIn("maxAdtVersions", base.maxAdtVersions, 1, 1000);
  // Shorter than the longest window, a request still inside a window would be "too old" to count.
  intIn("dedupRetentionMinutes", base.dedupRetentionMinutes, base.maxPeriodMinutes, 10 * 44_640);
  for (const srv of base.knownSrvs)
    if (!SRV_PATTERN.test(srv)) throw invalid("knownSrvs", `has a malformed SRV "${srv}"`);
  const known = new Set(base.knownSrvs);
  if (known.size !== base.knownSrvs.length) throw invalid("knownSrvs", "lists an SRV twice");
  for (const srv of base.criticalSrvs)
    if (!known.has(srv)) throw invalid("criticalSrvs", `names "${srv}", not a known SRV`);
  if (!known.has(base.cosSrv)) throw invalid("cosSrv", `"${base.cosSrv}" is not a known SRV`);
  return Object.freeze({
    ...base,
    knownSrvs: Object.freeze([...base.knownSrvs]),
    criticalSrvs: Object.freeze([...new Set(base.criticalSrvs)]),
  });
}
