/**
 * The server target: a ClickHouse server over HTTP through the official client (`@clickhouse/client`).
 * Works with the Debian 18.16 server of deploy/local and current servers alike: it sends plain SQL and
 * JSONEachRow bodies, no query parameters or settings that 18.16 lacks.
 */
import { Readable } from "node:stream";
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import {
  checkIdentifier,
  parseTsvWithNamesAndTypes,
  type ClickHouseConnection,
  type QueryResult,
  type TargetKind,
} from "./connection";

export interface ServerConnectionOptions {
  /** HTTP interface, e.g. http://127.0.0.1:18123 (no credentials in it). */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  /** Database unqualified names resolve in (analyst SQL); the product's own SQL is qualified. */
  readonly database?: string;
  /** Per-request timeout (default 60 s). */
  readonly requestTimeoutMs?: number;
}

export class ServerConnection implements ClickHouseConnection {
  readonly target: TargetKind = "server";
  readonly description: string;
  private client: ClickHouseClient;

  constructor(private readonly opts: ServerConnectionOptions) {
    this.client = ServerConnection.clientFor(opts);
    this.description = `ClickHouse server at ${opts.url}`;
  }

  private static clientFor(opts: ServerConnectionOptions): ClickHouseClient {
    return createClient({
      url: opts.url,
      ...(opts.username !== undefined ? { username: opts.username } : {}),
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      ...(opts.database !== undefined ? { database: opts.database } : {}),
      request_timeout: opts.requestTimeoutMs ?? 60_000,
      // Below the server's keep_alive_timeout (3 s on deploy/local), so no request meets a closed socket.
      keep_alive: { enabled: true, idle_socket_ttl: 2000 },
    });
  }

  async useDatabase(database: string): Promise<void> {
    await this.client.close();
    this.client = ServerConnection.clientFor({ ...this.opts, database: checkIdentifier(database) });
  }

  async exec(sql: string): Promise<void> {
    await this.client.command({ query: sql });
  }

  async query(sql: string): Promise<QueryResult> {
    return parseTsvWithNamesAndTypes(await this.queryText(sql, "TabSeparatedWithNamesAndTypes"));
  }

  async queryText(sql: string, format: string): Promise<string> {
    const rs = await this.client.exec({ query: `${stripSemicolon(sql)}\nFORMAT ${format}` });
    const chunks: Buffer[] = [];
    for await (const chunk of rs.stream) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks).toString("utf8");
  }

  async insertJsonEachRow(table: string, payload: Buffer): Promise<void> {
    // The payload is already JSONEachRow: send it as the body, the INSERT as the query parameter.
    const rs = await this.client.exec({
      query: `INSERT INTO ${table} FORMAT JSONEachRow`,
      values: Readable.from([payload]),
    });
    // The answer to an INSERT is empty; drain it so the socket returns to the pool.
    for await (const chunk of rs.stream) void chunk;
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

function stripSemicolon(sql: string): string {
  return sql.trim().replace(/;+\s*$/, "");
}
