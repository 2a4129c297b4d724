/**
 * Invariants every end-to-end test checks, kept in one place and tested themselves
 * (test/helpers/invariants.test.ts). Each returns a list of human-readable violations (empty = ok),
 * so a failing test says exactly what was lost or duplicated.
 */

/** Ids that appear more than once. */
export function duplicateIds(ids: Iterable<string>): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) dup.add(id);
    seen.add(id);
  }
  return [...dup].sort();
}

/** Expected ids that never appeared. */
export function missingIds(expected: Iterable<string>, actual: Iterable<string>): string[] {
  const got = new Set(actual);
  return [...expected].filter((id) => !got.has(id)).sort();
}

/**
 * For a running count per key, in the order the updates were read from one partition: every key's
 * counts must be exactly 1, 2, 3, ... — a repeat means an update was produced twice, a jump means one
 * was lost. Returns violations like `key K: expected 4, got 3`.
 */
export function countSequenceViolations(updates: Iterable<{ key: string; count: number }>): string[] {
  const last = new Map<string, number>();
  const out: string[] = [];
  for (const u of updates) {
    const expected = (last.get(u.key) ?? 0) + 1;
    if (u.count !== expected) out.push(`key ${u.key}: expected ${expected}, got ${u.count}`);
    last.set(u.key, u.count);
  }
  return out;
}

/** Keys whose final value differs from the expected one (missing keys included). */
export function mapDifferences(
  expected: ReadonlyMap<string, number>,
  actual: ReadonlyMap<string, number>,
): string[] {
  const out: string[] = [];
  for (const [k, v] of expected)
    if (actual.get(k) !== v) out.push(`${k}: expected ${v}, got ${actual.get(k)}`);
  for (const k of actual.keys()) if (!expected.has(k)) out.push(`${k}: unexpected`);
  return out;
}

/** Committed offset must equal the last processed offset + 1 for every partition. */
export function offsetViolations(
  committed: ReadonlyMap<number, bigint>,
  lastProcessed: ReadonlyMap<number, bigint>,
): string[] {
  const out: string[] = [];
  for (const [p, last] of lastProcessed) {
    const c = committed.get(p);
    if (c !== last + 1n) out.push(`partition ${p}: committed ${c}, last processed ${last}`);
  }
  return out;
}

/**
 * For running-count updates read back from an output topic (in partition order), the violations of
 * "exactly once": repeated or skipped counts per key, and final counts that differ from the input.
 */
export function countingViolations(
  updates: ReadonlyArray<{ key: string | null; partition: number; value: { count: number } }>,
  expected: ReadonlyMap<string, number>,
): string[] {
  const ordered = [...updates].sort((a, b) => a.partition - b.partition);
  const sequence = countSequenceViolations(ordered.map((r) => ({ key: r.key ?? "", count: r.value.count })));
  const final = new Map<string, number>();
  for (const r of updates) final.set(r.key ?? "", Math.max(final.get(r.key ?? "") ?? 0, r.value.count));
  return [...sequence, ...mapDifferences(expected, final)];
}

/** How many times each key occurs. */
export function tally<T>(items: Iterable<T>, keyOf: (item: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) m.set(keyOf(i), (m.get(keyOf(i)) ?? 0) + 1);
  return m;
}
