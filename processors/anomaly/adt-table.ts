/**
 * The versioned ADT table of each User ID (store value, keyed by User ID). Every accepted file adds a
 * version effective from the file's receipt; a request is checked against the version in force when
 * the request was received, so a file processed after a request that arrived before it never changes
 * that request's outcome. Versions no request inside any window can still need are dropped.
 */
import { compareSrv, loadAdtTable, neverSubmittedTable, parseAdtFile } from "./adt-file";
import type { AnomalyConfig } from "./config";
import type { AdtEntry, AdtEntryOrigin, AdtRejectionCode } from "./records";

/** One threshold of an SRV in a version. */
export interface AdtThreshold {
  readonly periodMinutes: number;
  readonly adt: number;
  readonly warningThreshold: number;
  readonly origin: AdtEntryOrigin;
}

export interface AdtVersion {
  /** The file's Sequence Number; null for the never-submitted defaults. */
  readonly sequenceNumber: number | null;
  readonly submissionId: string | null;
  /** Epoch ms from which this version applies (receipt time of the file). */
  readonly effectiveFrom: number;
  /** Thresholds by SRV, each list ordered by period. SRVs without an entry have no threshold. */
  readonly thresholds: Readonly<Record<string, readonly AdtThreshold[]>>;
}

/** The store value: a User ID's accepted versions, oldest first. */
export interface AdtHistory {
  readonly userId: string;
  /** Highest Sequence Number processed successfully (anti-replay). */
  readonly lastSequenceNumber: number;
  readonly versions: readonly AdtVersion[];
}

/**
 * Identical threshold lists are shared: most of every table is the same zero defaults, and a table
 * per User ID would otherwise cost ~10 KB of heap. Bounded, so hostile variety cannot grow it forever.
 */
const interned = new Map<string, readonly AdtThreshold[]>();
const MAX_INTERNED = 50_000;

export function internThresholds(list: readonly AdtThreshold[]): readonly AdtThreshold[] {
  let key = "";
  for (const t of list) key += `${t.periodMinutes},${t.adt},${t.warningThreshold},${t.origin};`;
  const shared = interned.get(key);
  if (shared) return shared;
  const frozen = Object.freeze(list.map((t) => Object.freeze({ ...t })));
  if (interned.size < MAX_INTERNED) interned.set(key, frozen);
  return frozen;
}

/** Shares the threshold lists of a history decoded from the changelog (see internThresholds). */
export function internHistory(h: AdtHistory): AdtHistory {
  return {
    ...h,
    versions: h.versions.map((v) => {
      const thresholds: Record<string, readonly AdtThreshold[]> = {};
      for (const [srv, list] of Object.entries(v.thresholds)) thresholds[srv] = internThresholds(list);
      return { ...v, thresholds };
    }),
  };
}

export function versionFromEntries(
  entries: readonly AdtEntry[],
  meta: { sequenceNumber: number | null; submissionId: string | null; effectiveFrom: number },
): AdtVersion {
  const thresholds: Record<string, AdtThreshold[]> = {};
  for (const e of entries) {
    const t: AdtThreshold = {
      periodMinutes: e.periodMinutes,
      adt: e.adt,
      warningThreshold: e.warningThreshold,
      origin: e.origin,
    };
    (thresholds[e.srv] ??= []).push(t);
  }
  const shared: Record<string, readonly AdtThreshold[]> = {};
  for (const [srv, list] of Object.entries(thresholds)) {
    shared[srv] = internThresholds(list.sort((a, b) => a.periodMinutes - b.periodMinutes));
  }
  return { ...meta, thresholds: shared };
}

/** The version's table as flat entries, ordered by SRV and period. */
export function entriesOf(version: AdtVersion): AdtEntry[] {
  const out: AdtEntry[] = [];
  for (const [srv, list] of Object.entries(version.thresholds)) {
    for (const t of list) out.push({ srv, ...t });
  }
  return out.sort((a, b) => compareSrv(a.srv, b.srv) || a.periodMinutes - b.periodMinutes);
}

const neverSubmitted = new WeakMap<object, AdtVersion>();

/** The defaults of a User ID that never had a file accepted (one shared object per configuration). */
export function neverSubmittedVersion(config: AnomalyConfig): AdtVersion {
  let v = neverSubmitted.get(config);
  if (!v) {
    v = versionFromEntries(neverSubmittedTable(config), {
      sequenceNumber: null,
      submissionId: null,
      effectiveFrom: Number.NEGATIVE_INFINITY,
    });
    neverSubmitted.set(config, v);
  }
  return v;
}

/** The version in force at `at` (epoch ms): the newest one effective by then, else the defaults. */
export function adtVersionAt(history: AdtHistory | undefined, at: number, config: AnomalyConfig): AdtVersion {
  if (history) {
    const vs = history.versions;
    for (let k = vs.length - 1; k >= 0; k--) {
      const v = vs[k] as AdtVersion;
      if (v.effectiveFrom <= at) return v;
    }
  }
  return neverSubmittedVersion(config);
}

export type AdtSubmissionOutcome =
  | { readonly ok: true; readonly history: AdtHistory; readonly version: AdtVersion }
  | {
      readonly ok: false;
      readonly code: AdtRejectionCode;
      readonly reason: string;
      readonly sequenceNumber: number | null;
    };

/**
 * Applies one submitted file to a User ID's history: parse and check (anti-replay against the
 * history), load with defaults, add the version and drop versions no window can need any more.
 * Returns a rejection, leaving the history untouched, when any check fails.
 */
export function applyAdtFile(
  history: AdtHistory | undefined,
  submission: { userId: string; submissionId: string; submittedAt: number; content: Uint8Array },
  config: AnomalyConfig,
): AdtSubmissionOutcome {
  const parsed = parseAdtFile(submission.content, config, history ? history.lastSequenceNumber : null);
  if (!parsed.ok) return parsed;
  const previous = history?.versions[history.versions.length - 1];
  // Versions stay ordered by effective time even if a later file carries an earlier receipt time.
  const effectiveFrom = Math.max(submission.submittedAt, previous?.effectiveFrom ?? Number.NEGATIVE_INFINITY);
  const version = versionFromEntries(loadAdtTable(parsed.rows, config), {
    sequenceNumber: parsed.sequenceNumber,
    submissionId: submission.submissionId,
    effectiveFrom,
  });
  const versions = [...(history?.versions ?? []), version];
  // A version is needed while a request received before its successor took effect can still be
  // inside a window (and could still arrive): keep those within the dedup retention of the newest.
  const horizon = effectiveFrom - config.dedupRetentionMinutes * 60_000;
  let drop = 0;
  while (drop < versions.length - 1 && (versions[drop + 1] as AdtVersion).effectiveFrom <= horizon) drop++;
  drop = Math.max(drop, versions.length - 1 - config.maxAdtVersions);
  return {
    ok: true,
    version,
    history: {
      userId: submission.userId,
      lastSequenceNumber: parsed.sequenceNumber,
      versions: versions.slice(drop),
    },
  };
}
