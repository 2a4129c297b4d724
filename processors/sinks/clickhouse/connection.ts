/**
 * The ClickHouse ports. Everything above them (the sink, the DDL migrations, the EMRR reports, the
 * `ecos sql` prompt) speaks to ClickHouse only through these, so the same code runs on the two targets:
 *
 * - chDB (`chdb-connection.ts`): embedded ClickHouse 26.x in this process, data in a local folder; the
 *   default on one machine;
 * - a ClickHouse server through the official `@clickhouse/client` (`server-connection.ts`); the
 *   production target (the local one is Debian's 18.16, so the SQL sent here keeps to what 18.16 runs;
 *   see docs/clickhouse.md "What runs where").
 *
 * Unit tests use an in-memory `Inserter` (test/sinks/clickhouse/fakes.ts).
 */

/** Which kind of ClickHouse a connection talks to. */
export type TargetKind = "chdb" | "server";

/**
 * Inserts rows. Resolves only once ClickHouse has acknowledged the insert (the rows are in a part on
 * disk): the sink commits Kafka offsets after that and never before.
 */
export interface Inserter {
  /**
   * Inserts a JSONEachRow payload (one JSON object per line) into `table` (database-qualified).
   *
   * @throws Error whatever the target raised; `classifyFailure` (failures.ts) says whether it is
   *   transient, attributable to a row, or fatal.
   */
  insertJsonEachRow(table: string, payload: Buffer): Promise<void>;
}

/** A value of a result cell: numbers for integer and float columns, strings otherwise, null for NULL. */
export type CellValue = string | number | null;

export interface QueryColumn {
  readonly name: string;
  /** ClickHouse type name as the target reports it, e.g. `Nullable(String)`, `DateTime('UTC')`. */
  readonly type: string;
}

/** A query result, parsed from TabSeparatedWithNamesAndTypes the same way on both targets. */
export interface QueryResult {
  readonly columns: readonly QueryColumn[];
  readonly rows: ReadonlyArray<readonly CellValue[]>;
}

/** A connection to one ClickHouse (embedded or server): DDL, queries and inserts. */
export interface ClickHouseConnection extends Inserter {
  readonly target: TargetKind;
  /** For logs and messages, e.g. `chDB at .local/state/clickhouse` (never a password). */
  readonly description: string;
  /** Runs a statement that returns nothing (DDL, INSERT ... VALUES). */
  exec(sql: string): Promise<void>;
  /** Runs a SELECT and parses its rows. Do not add a FORMAT clause. */
  query(sql: string): Promise<QueryResult>;
  /** Runs a statement and returns the target's output in `format` as text (analyst SQL). */
  queryText(sql: string, format: string): Promise<string>;
  /** Makes unqualified names resolve in `database` (analyst SQL); the database must exist. */
  useDatabase(database: string): Promise<void>;
  close(): Promise<void>;
}

const TSV_ESCAPES: Readonly<Record<string, string>> = {
  t: "\t",
  n: "\n",
  r: "\r",
  b: "\b",
  f: "\f",
  "0": "\0",
  "\\": "\\",
  "'": "'",
  '"': '"',
};

/** Undoes ClickHouse's TabSeparated escaping of one field. */
export function unescapeTsv(field: string): string {
  if (!field.includes("\\")) return field;
  let out = "";
  for (let i = 0; i < field.length; i++) {
    const c = field[i] as string;
    if (c !== "\\" || i + 1 >= field.length) {
      out += c;
      continue;
    }
    const next = field[++i] as string;
    out += TSV_ESCAPES[next] ?? next;
  }
  return out;
}

const NUMERIC = /^(U?Int(8|16|32|64|128|256)|Float(32|64)|Decimal.*)$/;

/** Strips Nullable(...) and LowCardinality(...) wrappers. */
function baseType(type: string): { base: string; nullable: boolean } {
  let t = type;
  let nullable = false;
  for (;;) {
    const m = /^(Nullable|LowCardinality)\((.*)\)$/.exec(t);
    if (!m) break;
    if (m[1] === "Nullable") nullable = true;
    t = m[2] as string;
  }
  return { base: t, nullable };
}

/** Converts one TSV field of a column of `type` into a cell value. */
export function cellOf(raw: string, type: string): CellValue {
  const { base, nullable } = baseType(type);
  if (raw === "\\N" && (nullable || base === "Nothing")) return null;
  const text = unescapeTsv(raw);
  if (NUMERIC.test(base)) {
    if (text === "nan" || text === "inf" || text === "-inf") return text;
    const n = Number(text);
    // 64-bit integers beyond 2^53 stay exact as strings.
    if (/^U?Int/.test(base) && !Number.isSafeInteger(n)) return text;
    return n;
  }
  return text;
}

/**
 * Parses TabSeparatedWithNamesAndTypes output (names line, types line, then rows). Raw newlines and
 * tabs never occur inside fields in this format: ClickHouse escapes them.
 */
export function parseTsvWithNamesAndTypes(text: string): QueryResult {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length < 2) return { columns: [], rows: [] };
  const names = (lines[0] as string).split("\t").map(unescapeTsv);
  const types = (lines[1] as string).split("\t").map(unescapeTsv);
  const columns = names.map((name, i) => ({ name, type: types[i] ?? "String" }));
  const rows: CellValue[][] = [];
  for (let l = 2; l < lines.length; l++) {
    const fields = (lines[l] as string).split("\t");
    rows.push(columns.map((c, i) => cellOf(fields[i] ?? "", c.type)));
  }
  return { columns, rows };
}

/** Rows as objects keyed by column name (for JSON output and tests). */
export function rowObjects(result: QueryResult): Array<Record<string, CellValue>> {
  return result.rows.map((r) => {
    const o: Record<string, CellValue> = {};
    result.columns.forEach((c, i) => (o[c.name] = r[i] ?? null));
    return o;
  });
}

/** A ClickHouse string literal: quoted, with backslash and quote escaped. */
export function stringLiteral(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A database or table name the product creates: letters, digits and underscores only. */
export function checkIdentifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name)) {
    throw new Error(`${JSON.stringify(name)} is not a plain ClickHouse identifier (letters, digits, _)`);
  }
  return name;
}
