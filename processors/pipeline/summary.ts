/**
 * What a pipeline run shows, computed from what it observed: final Service Responses by origin and
 * response code, the one-final-response check, devices that hold the gaining supplier's certificates,
 * response times against the 35 s / 21 s Target Response Times, alerts and anomaly events.
 */
import type { SmetsGeneration } from "../cos/records";
import { REFUSAL_HEADER } from "../dispatch/topology";
import type { EmbeddedPipeline, ObservedResponse, PipelineRun, ResponseOrigin } from "./pipeline";
import type { TimedRequest } from "./traffic";

export interface OutcomeRow {
  readonly origin: ResponseOrigin;
  readonly code: string;
  readonly successful: boolean;
  /** The check or answer behind it: the refusing stage's check header, or what the device did. */
  readonly reason: string;
  readonly count: number;
}

/** Headers naming the check that refused a request, by the stage that wrote the response. */
const CHECK_HEADERS = ["ecos.dsp.check", "ecos.cos-party.check", REFUSAL_HEADER] as const;

function reasonOf(r: ObservedResponse): string {
  for (const h of CHECK_HEADERS) if (r.headers[h]) return r.headers[h];
  if (r.origin !== "response-tracker") return "";
  const code = r.response.responseCode;
  if (r.response.successful) return "executed, or accepted for later";
  if (code === "E21") return "no answer from the device (time-out)";
  if (code === "E20") return "device unreachable";
  if (code.startsWith("I")) return "device answered: replacement failed";
  return "device refused the command";
}

export interface ResponseTimeRow {
  readonly smetsGeneration: SmetsGeneration;
  readonly targetMs: number;
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  /** Final answers later than the target (the tracker's breach flag). */
  readonly breaches: number;
}

export interface PipelineSummary {
  readonly submitted: number;
  readonly byKind: ReadonlyArray<[string, number]>;
  readonly outcomes: readonly OutcomeRow[];
  /** Submissions with exactly one final Service Response (a replay is a submission of its own). */
  readonly oneFinalResponse: { readonly ok: number; readonly missing: number; readonly extra: number };
  readonly acknowledgements: number;
  readonly devicesUpdated: { readonly smets2: number; readonly smets1: number };
  readonly responseTimes: readonly ResponseTimeRow[];
  readonly alertsByCode: ReadonlyArray<[string, number]>;
  readonly anomalyByKind: ReadonlyArray<[string, number]>;
}

export const TARGET_MS: Readonly<Record<SmetsGeneration, number>> = { SMETS2: 35_000, SMETS1: 21_000 };

/** The nearest-rank percentile of sorted values (0 for none). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

function tally<T>(items: readonly T[], key: (t: T) => string): Array<[string, number]> {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

export function summarise(
  run: PipelineRun,
  requests: readonly TimedRequest[],
  pipeline: Pick<EmbeddedPipeline, "fleet" | "s1sp">,
  gaining: { readonly supplierId: string; readonly digitalSigning: Buffer },
): PipelineSummary {
  const finals = run.responses.filter((r) => r.final);
  const outcomeMap = new Map<string, OutcomeRow>();
  for (const f of finals) {
    const reason = reasonOf(f);
    const k = `${f.origin}\u0000${f.response.responseCode}\u0000${f.response.successful}\u0000${reason}`;
    const row = outcomeMap.get(k);
    outcomeMap.set(k, {
      origin: f.origin,
      code: f.response.responseCode,
      successful: f.response.successful,
      reason,
      count: (row?.count ?? 0) + 1,
    });
  }
  const outcomes = [...outcomeMap.values()].sort((a, b) => b.count - a.count);

  const submissions = new Map<string, number>();
  for (const r of requests) submissions.set(r.requestId, (submissions.get(r.requestId) ?? 0) + 1);
  const answers = new Map<string, number>();
  for (const f of finals) answers.set(f.response.requestId, (answers.get(f.response.requestId) ?? 0) + 1);
  let ok = 0;
  let missing = 0;
  let extra = 0;
  for (const [id, n] of submissions) {
    const a = answers.get(id) ?? 0;
    ok += Math.min(n, a);
    if (a < n) missing += n - a;
    if (a > n) extra += a - n;
  }
  for (const [id, a] of answers) if (!submissions.has(id)) extra += a;

  let smets2 = 0;
  for (const [, d] of pipeline.fleet.entries()) {
    const cell = d.state.supplierCells.digitalSignature;
    if (cell && Buffer.from(cell).equals(gaining.digitalSigning)) smets2++;
  }
  let smets1 = 0;
  for (const [, d] of pipeline.s1sp.entries()) if (d.supplierId === gaining.supplierId) smets1++;

  // Response times of the tracker's final answers, by the generation its Service Response names.
  const generationOf = new Map<string, SmetsGeneration>();
  for (const f of finals)
    if (f.origin === "response-tracker") generationOf.set(f.response.requestId, f.response.smetsGeneration);
  const responseTimes: ResponseTimeRow[] = [];
  for (const g of ["SMETS2", "SMETS1"] as const) {
    const rows = run.responseTimes.filter((t) => (generationOf.get(t.requestId) ?? "SMETS2") === g);
    const times = rows.map((t) => t.responseTimeMs).sort((a, b) => a - b);
    responseTimes.push({
      smetsGeneration: g,
      targetMs: TARGET_MS[g],
      count: times.length,
      p50: percentile(times, 50),
      p95: percentile(times, 95),
      p99: percentile(times, 99),
      max: times[times.length - 1] ?? 0,
      breaches: rows.filter((t) => t.breach).length,
    });
  }

  return {
    submitted: requests.length,
    byKind: tally(requests, (r) => r.kind),
    outcomes,
    oneFinalResponse: { ok, missing, extra },
    acknowledgements: run.responses.length - finals.length,
    devicesUpdated: { smets2, smets1 },
    responseTimes,
    alertsByCode: tally(run.alerts, (a) => `${a.alertCode} ${a.alertType}`),
    anomalyByKind: tally(run.anomalyEvents, (e) => `${e.party} ${e.kind}`),
  };
}
