/**
 * The ADT file: a strict, bounded CSV parser and the load rules of seed 003 §3.2. Format (defined
 * here; the TADP's own column layout is [GAP]), documented in docs/anomaly-detection.md:
 *
 *   SequenceNumber,42
 *   SRV,TimePeriodApplicable,ADT,WarningThreshold
 *   6.23,1440,500,400
 *   7.1,60,20,15
 *
 * Any failed check rejects the whole file with one precise reason; nothing is half-applied because
 * the caller only ever sees a complete, valid table or a rejection.
 */
import type { AnomalyConfig } from "./config";
import type { AdtEntry, AdtRejectionCode } from "./records";

export const SEQUENCE_LABEL = "SequenceNumber";
export const ADT_HEADER = ["SRV", "TimePeriodApplicable", "ADT", "WarningThreshold"] as const;

export interface AdtRow {
  readonly srv: string;
  readonly periodMinutes: number;
  readonly adt: number;
  readonly warningThreshold: number;
  /** 1-based line of the file. */
  readonly line: number;
}

export interface AdtFileParsed {
  readonly ok: true;
  readonly sequenceNumber: number;
  readonly rows: readonly AdtRow[];
}

export interface AdtFileRejected {
  readonly ok: false;
  readonly code: AdtRejectionCode;
  readonly reason: string;
  /** Set when the Sequence Number line was read before the failure. */
  readonly sequenceNumber: number | null;
}

export type AdtParseResult = AdtFileParsed | AdtFileRejected;

/** Internal: unwinds the parser at the first failed check (never escapes parseAdtFile). */
class Rejection extends Error {
  constructor(
    readonly code: AdtRejectionCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Splits CSV text into lines of fields (RFC 4180 quoting; LF or CRLF line ends; no line breaks inside
 * fields). Stops with TOO_MANY_ROWS once `maxLines` is exceeded so a huge file is never fully split.
 */
function splitCsv(text: string, maxLines: number): string[][] {
  const lines: string[][] = [];
  let fields: string[] = [];
  let i = 0;
  const n = text.length;
  let line = 1;
  const endLine = (): void => {
    lines.push(fields);
    fields = [];
    line++;
    if (lines.length > maxLines) {
      throw new Rejection(
        "TOO_MANY_ROWS",
        `more than ${maxLines - 2} threshold rows (limit ${maxLines - 2})`,
      );
    }
  };
  if (n === 0) return [];
  for (;;) {
    // At the start of a field.
    let value = "";
    const col = fields.length + 1;
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new Rejection("BAD_CSV", `line ${line}, field ${col}: quoted field is not closed`);
        const c = text[i] as string;
        if (c === '"') {
          if (text[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (c === "\n" || c === "\r") {
          throw new Rejection("BAD_CSV", `line ${line}, field ${col}: line break inside a quoted field`);
        }
        value += c;
        i++;
      }
      const next = text[i];
      if (next !== undefined && next !== "," && next !== "\n" && next !== "\r") {
        throw new Rejection("BAD_CSV", `line ${line}, field ${col}: characters after the closing quote`);
      }
    } else {
      const start = i;
      while (i < n) {
        const c = text[i] as string;
        if (c === "," || c === "\n" || c === "\r") break;
        if (c === '"')
          throw new Rejection("BAD_CSV", `line ${line}, field ${col}: quote inside an unquoted field`);
        i++;
      }
      value = text.slice(start, i);
    }
    fields.push(value);
    if (i >= n) {
      endLine();
      return lines;
    }
    const c = text[i];
    if (c === ",") {
      i++;
      continue;
    }
    if (c === "\r") {
      if (text[i + 1] !== "\n")
        throw new Rejection("BAD_CSV", `line ${line}: carriage return not followed by a line feed`);
      i++;
    }
    i++; // the line feed
    endLine();
    if (i >= n) return lines; // a final line end, not an empty last line
  }
}

const CANONICAL_INT = /^(0|[1-9][0-9]*)$/;

/** A non-negative integer in canonical decimal form, at most `max`. */
function integerField(value: string, what: string, line: number, max: number): number {
  if (!CANONICAL_INT.test(value)) {
    if (/^-[0-9]+$/.test(value))
      throw new Rejection("NEGATIVE_NUMBER", `line ${line}, ${what}: ${show(value)} is negative`);
    throw new Rejection(
      "NOT_AN_INTEGER",
      `line ${line}, ${what}: ${show(value)} is not a non-negative integer in plain decimal digits`,
    );
  }
  const n = value.length > 16 ? Number.POSITIVE_INFINITY : Number(value);
  if (n > max)
    throw new Rejection("NUMBER_TOO_LARGE", `line ${line}, ${what}: ${show(value)} exceeds ${max}`);
  return n;
}

function show(value: string): string {
  const s = JSON.stringify(value);
  return s.length > 40 ? `${s.slice(0, 37)}..."` : s;
}

/**
 * Parses and checks an ADT file. `lastSequenceNumber` (the highest accepted so far for the User ID,
 * if any) makes the anti-replay check the first check after the Sequence Number is read.
 */
export function parseAdtFile(
  content: Uint8Array,
  config: Pick<AnomalyConfig, "maxFileBytes" | "maxRows" | "knownSrvs" | "maxPeriodMinutes" | "maxThreshold">,
  lastSequenceNumber: number | null = null,
): AdtParseResult {
  let sequenceNumber: number | null = null;
  try {
    if (content.length > config.maxFileBytes) {
      throw new Rejection(
        "FILE_TOO_LARGE",
        `file is ${content.length} bytes, the limit is ${config.maxFileBytes}`,
      );
    }
    let text: string;
    try {
      text = utf8.decode(content);
    } catch {
      throw new Rejection("NOT_UTF8", "file is not valid UTF-8 text");
    }
    const lines = splitCsv(text, config.maxRows + 2);
    const first = lines[0];
    if (!first) throw new Rejection("BAD_STRUCTURE", `file is empty: line 1 must be "${SEQUENCE_LABEL},<n>"`);
    if (first.length !== 2 || first[0] !== SEQUENCE_LABEL) {
      throw new Rejection(
        "BAD_STRUCTURE",
        `line 1 must be "${SEQUENCE_LABEL},<n>", found ${show(first.join(","))}`,
      );
    }
    sequenceNumber = integerField(first[1] as string, SEQUENCE_LABEL, 1, Number.MAX_SAFE_INTEGER);
    if (lastSequenceNumber !== null && sequenceNumber <= lastSequenceNumber) {
      throw new Rejection(
        "SEQUENCE_NOT_GREATER",
        `Sequence Number ${sequenceNumber} is not greater than ${lastSequenceNumber}, the highest already processed for this User ID`,
      );
    }
    const header = lines[1];
    if (!header || header.length !== ADT_HEADER.length || header.some((h, k) => h !== ADT_HEADER[k])) {
      throw new Rejection(
        "BAD_STRUCTURE",
        `line 2 must be the header "${ADT_HEADER.join(",")}", found ${show(header?.join(",") ?? "(end of file)")}`,
      );
    }
    const known = new Set(config.knownSrvs);
    const firstLine = new Map<string, number>();
    const rows: AdtRow[] = [];
    for (let k = 2; k < lines.length; k++) {
      const fields = lines[k] as string[];
      const line = k + 1;
      if (fields.length === 1 && fields[0] === "")
        throw new Rejection("BAD_STRUCTURE", `line ${line} is empty`);
      if (fields.length !== ADT_HEADER.length) {
        throw new Rejection(
          "BAD_STRUCTURE",
          `line ${line} has ${fields.length} fields, expected ${ADT_HEADER.length}`,
        );
      }
      const [srv, period, adt, warning] = fields as [string, string, string, string];
      if (!known.has(srv))
        throw new Rejection(
          "UNKNOWN_SRV",
          `line ${line}, SRV: ${show(srv)} is not a known Service Reference Variant`,
        );
      const periodMinutes = integerField(period, "TimePeriodApplicable", line, Number.MAX_SAFE_INTEGER);
      if (periodMinutes < 1 || periodMinutes > config.maxPeriodMinutes) {
        throw new Rejection(
          "BAD_PERIOD",
          `line ${line}, TimePeriodApplicable: ${periodMinutes} minutes is outside 1..${config.maxPeriodMinutes}`,
        );
      }
      const row: AdtRow = {
        srv,
        periodMinutes,
        adt: integerField(adt, "ADT", line, config.maxThreshold),
        warningThreshold: integerField(warning, "WarningThreshold", line, config.maxThreshold),
        line,
      };
      const key = `${srv}|${periodMinutes}`;
      const seen = firstLine.get(key);
      if (seen !== undefined) {
        throw new Rejection(
          "DUPLICATE_ENTRY",
          `line ${line} repeats SRV ${srv} with Time Period Applicable ${periodMinutes} (first on line ${seen})`,
        );
      }
      firstLine.set(key, line);
      rows.push(row);
    }
    return { ok: true, sequenceNumber, rows };
  } catch (err) {
    if (err instanceof Rejection) return { ok: false, code: err.code, reason: err.reason, sequenceNumber };
    throw err;
  }
}

/** Orders SRVs numerically part by part ("6.2.10" after "6.2.9", "6.23" after "6.4.1"). */
export function compareSrv(a: string, b: string): number {
  const pa = a.split(".");
  const pb = b.split(".");
  for (let k = 0; k < Math.max(pa.length, pb.length); k++) {
    const d = Number(pa[k] ?? -1) - Number(pb[k] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

function sortEntries(entries: AdtEntry[]): AdtEntry[] {
  return entries.sort((x, y) => compareSrv(x.srv, y.srv) || x.periodMinutes - y.periodMinutes);
}

/**
 * The table a good file loads (seed 003 §3.2): its rows, plus a zero ADT and Warning Threshold with
 * the default period (1440 minutes) for every Critical-Command SRV without any row, plus a zero
 * 1440-minute entry for the CoS SRV (6.23) when the file has none for that period. Other SRVs without
 * a row get no threshold; nothing from an earlier file is kept.
 */
export function loadAdtTable(
  rows: readonly Pick<AdtRow, "srv" | "periodMinutes" | "adt" | "warningThreshold">[],
  config: Pick<AnomalyConfig, "criticalSrvs" | "cosSrv" | "defaultPeriodMinutes">,
): AdtEntry[] {
  const entries: AdtEntry[] = rows.map((r) => ({
    srv: r.srv,
    periodMinutes: r.periodMinutes,
    adt: r.adt,
    warningThreshold: r.warningThreshold,
    origin: "FILE",
  }));
  const withRows = new Set(rows.map((r) => r.srv));
  const period = config.defaultPeriodMinutes;
  for (const srv of config.criticalSrvs) {
    if (!withRows.has(srv))
      entries.push({ srv, periodMinutes: period, adt: 0, warningThreshold: 0, origin: "DEFAULT_CRITICAL" });
  }
  if (!entries.some((e) => e.srv === config.cosSrv && e.periodMinutes === period)) {
    entries.push({
      srv: config.cosSrv,
      periodMinutes: period,
      adt: 0,
      warningThreshold: 0,
      origin: "DEFAULT_COS_1440",
    });
  }
  return sortEntries(entries);
}

/**
 * The table of a User ID that has never had a file accepted: zero ADT and Warning Threshold with the
 * default period for every Critical-Command SRV (and the CoS SRV, which the ECoS Party always checks).
 */
export function neverSubmittedTable(
  config: Pick<AnomalyConfig, "criticalSrvs" | "cosSrv" | "defaultPeriodMinutes">,
): AdtEntry[] {
  const srvs = new Set([...config.criticalSrvs, config.cosSrv]);
  return sortEntries(
    [...srvs].map((srv) => ({
      srv,
      periodMinutes: config.defaultPeriodMinutes,
      adt: 0,
      warningThreshold: 0,
      origin: "NEVER_SUBMITTED" as const,
    })),
  );
}
