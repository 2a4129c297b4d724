/**
 * An in-memory ClickHouse for the sink writer's unit tests: it stores JSONEachRow rows per table,
 * answers the two stored-offset queries the writer makes, and can be told to fail (transiently, by
 * refusing rows, fatally, or "ambiguously": storing the rows and then failing).
 */
import type {
  ClickHouseConnection,
  Inserter,
  QueryResult,
} from "../../../processors/sinks/clickhouse/connection";

export type Stored = Record<string, unknown>;

export class MemoryClickHouse implements Inserter, Pick<ClickHouseConnection, "query"> {
  readonly tables = new Map<string, Stored[]>();
  readonly inserts: Array<{ table: string; rows: number }> = [];
  readonly queries: string[] = [];
  /** Errors for the next inserts, in order; "ambiguous:" ones store the rows first. */
  readonly failures: string[] = [];
  /** A row matching this is refused with ClickHouse code 27 (the whole insert fails, as in ClickHouse). */
  refuse: ((row: Stored) => boolean) | undefined;
  /** Called before each insert resolves (tests hold an insert open with it). */
  gate: ((table: string) => Promise<void> | undefined) | undefined;

  rows(table: string): Stored[] {
    return this.tables.get(table) ?? [];
  }

  async insertJsonEachRow(table: string, payload: Buffer): Promise<void> {
    const rows = payload
      .toString("utf8")
      .split("\n")
      .map((l) => JSON.parse(l) as Stored);
    const failure = this.failures.shift();
    if (failure !== undefined && !failure.startsWith("ambiguous:")) throw new Error(failure);
    const bad = this.refuse ? rows.find(this.refuse) : undefined;
    if (bad) {
      throw new Error(
        `Code: 27. DB::Exception: Cannot parse input: row ${JSON.stringify(bad)}. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)`,
      );
    }
    if (this.gate) await this.gate(table);
    let list = this.tables.get(table);
    if (!list) this.tables.set(table, (list = []));
    list.push(...rows);
    this.inserts.push({ table, rows: rows.length });
    if (failure !== undefined) throw new Error(failure.slice("ambiguous:".length));
  }

  async query(sql: string): Promise<QueryResult> {
    this.queries.push(sql);
    const table = /FROM (\S+)/.exec(sql)?.[1] ?? "";
    const topic = /source_topic = '([^']*)'/.exec(sql)?.[1];
    const rows = this.rows(table).filter((r) => r["source_topic"] === topic);
    if (/stored_through/.test(sql)) {
      const p = Number(/source_partition = (\d+)/.exec(sql)?.[1]);
      const marks = rows.filter((r) => r["source_partition"] === p).map((r) => r["stored_through"] as number);
      return {
        columns: [
          { name: "count()", type: "UInt64" },
          { name: "max", type: "UInt64" },
        ],
        rows: [[marks.length, marks.length === 0 ? 0 : Math.max(...marks)]],
      };
    }
    const max = /max\(source_offset\)/.test(sql);
    if (max) {
      const parts = new Set((/source_partition IN \(([^)]*)\)/.exec(sql)?.[1] ?? "").split(", ").map(Number));
      const by = new Map<number, number>();
      for (const r of rows) {
        const p = r["source_partition"] as number;
        if (parts.has(p)) by.set(p, Math.max(by.get(p) ?? -1, r["source_offset"] as number));
      }
      return {
        columns: [
          { name: "source_partition", type: "UInt32" },
          { name: "max", type: "UInt64" },
        ],
        rows: [...by].map(([p, m]) => [p, m]),
      };
    }
    const p = Number(/source_partition = (\d+)/.exec(sql)?.[1]);
    const lo = Number(/source_offset >= (\d+)/.exec(sql)?.[1]);
    const hi = Number(/source_offset <= (\d+)/.exec(sql)?.[1]);
    const offsets = new Set(
      rows
        .filter((r) => r["source_partition"] === p)
        .map((r) => r["source_offset"] as number)
        .filter((o) => o >= lo && o <= hi),
    );
    return { columns: [{ name: "source_offset", type: "UInt64" }], rows: [...offsets].map((o) => [o]) };
  }
}

/** A committer that records what it was asked to commit. */
export function recordingCommitter(): {
  commits: Array<Array<{ topic: string; partition: number; offset: string }>>;
  fail: number;
  commit(offsets: ReadonlyArray<{ topic: string; partition: number; offset: string }>): Promise<void>;
} {
  const c = {
    commits: [] as Array<Array<{ topic: string; partition: number; offset: string }>>,
    fail: 0,
    async commit(offsets: ReadonlyArray<{ topic: string; partition: number; offset: string }>) {
      if (c.fail > 0) {
        c.fail--;
        throw new Error("The coordinator is not aware of this member");
      }
      c.commits.push(offsets.map((o) => ({ ...o })));
    },
  };
  return c;
}
