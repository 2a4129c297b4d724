/**
 * The embedded target: chDB (ClickHouse 26.x in this process) with its data in a local folder.
 *
 * One chDB engine serves one data folder, and a folder must not be opened by two processes at once:
 * run the sink, `ecos report` and `ecos sql` on a chDB folder one after the other (or in one process),
 * or use a ClickHouse server when they must run side by side. A process may have one chDB folder open
 * at a time (chDB refuses a second until the first is closed).
 */
import * as fs from "node:fs";
import { Session } from "chdb";
import {
  checkIdentifier,
  parseTsvWithNamesAndTypes,
  type ClickHouseConnection,
  type QueryResult,
  type TargetKind,
} from "./connection";

export class ChdbConnection implements ClickHouseConnection {
  readonly target: TargetKind = "chdb";
  readonly description: string;
  private readonly session: Session;
  private closed = false;

  /** Opens (creating if needed) the chDB data folder `dir`. */
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.session = new Session(dir);
    this.description = `chDB at ${dir}`;
  }

  async exec(sql: string): Promise<void> {
    await this.session.queryAsync(sql, { format: "TabSeparated" });
  }

  async query(sql: string): Promise<QueryResult> {
    const res = await this.session.queryAsync(sql, { format: "TabSeparatedWithNamesAndTypes" });
    return parseTsvWithNamesAndTypes(res.text());
  }

  async queryText(sql: string, format: string): Promise<string> {
    const res = await this.session.queryAsync(sql, { format });
    return res.text();
  }

  async insertJsonEachRow(table: string, payload: Buffer): Promise<void> {
    // The raw passthrough insert: the engine parses the bytes; resolves when the part is written.
    // Serial parsing: the batch is small, and on few cores parsing threads compete with the sink's own.
    await this.session.insert({
      table,
      values: payload,
      format: "JSONEachRow",
      settings: { input_format_parallel_parsing: 0 },
    });
  }

  async useDatabase(database: string): Promise<void> {
    await this.exec(`USE ${checkIdentifier(database)}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.session.close();
  }
}
