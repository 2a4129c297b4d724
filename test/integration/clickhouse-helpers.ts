/**
 * Shared by the ClickHouse integration tests: the two targets (embedded chDB in a temporary folder, and
 * the ClickHouse server of testServices()), producing Avro events to Kafka the way an upstream
 * processor would, and waiting for a consumer group to commit everything.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Kafka, logLevel, type Admin } from "kafkajs";
import { partitionForKey } from "../../processors/runtime/partitioner";
import { ChdbConnection } from "../../processors/sinks/clickhouse/chdb-connection";
import type { ClickHouseConnection } from "../../processors/sinks/clickhouse/connection";
import { ServerConnection } from "../../processors/sinks/clickhouse/server-connection";
import { TABLES } from "../../processors/sinks/clickhouse/tables";
import type { Serde } from "../../processors/runtime/serde";

export type TargetName = "chdb" | "server";

export interface Target {
  readonly name: TargetName;
  /** How a separate process opens it: `chdb:<dir>` or `server:<url>`. */
  readonly spec: string;
  open(): ClickHouseConnection;
  /** Removes the database (server) or the folder (chDB). */
  cleanup(database: string): Promise<void>;
}

export function targets(clickhouseUrl: string): Target[] {
  // Created on first use: a test that only needs the server leaves no folder behind.
  let made: string | undefined;
  const folder = (): string => (made ??= fs.mkdtempSync(path.join(os.tmpdir(), "ecos-chdb-it-")));
  return [
    {
      name: "chdb",
      get spec() {
        return `chdb:${folder()}`;
      },
      open: () => new ChdbConnection(folder()),
      cleanup: async () => {
        if (made !== undefined) fs.rmSync(made, { recursive: true, force: true });
      },
    },
    {
      name: "server",
      spec: `server:${clickhouseUrl}`,
      open: () => new ServerConnection({ url: clickhouseUrl }),
      cleanup: async (database) => {
        const c = new ServerConnection({ url: clickhouseUrl });
        await c.exec(`DROP DATABASE IF EXISTS ${database}`);
        await c.close();
      },
    },
  ];
}

/** Opens a target from its spec (the kill test's child process). */
export function openTarget(spec: string): ClickHouseConnection {
  if (spec.startsWith("chdb:")) return new ChdbConnection(spec.slice(5));
  if (spec.startsWith("server:")) return new ServerConnection({ url: spec.slice(7) });
  throw new Error(`unknown target ${spec}`);
}

export const uniqueName = (label: string): string =>
  `${label}_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;

/** Produces values (serialised with `serde`) keyed by `key`, partitioned as the runtime does. */
export async function produce<V>(
  brokers: string[],
  topic: string,
  partitions: number,
  values: Iterable<V>,
  key: (v: V) => string,
  serde: Serde<V>,
): Promise<number> {
  const kafka = new Kafka({ clientId: "ch-it-producer", brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await serde.prepare?.(topic);
  let batch: Array<{ key: string; value: Buffer; partition: number }> = [];
  let n = 0;
  const send = async (): Promise<void> => {
    if (batch.length > 0) await producer.send({ topic, messages: batch });
    batch = [];
  };
  for (const v of values) {
    const k = key(v);
    batch.push({
      key: k,
      value: serde.serialize(topic, v),
      partition: partitionForKey(Buffer.from(k), partitions),
    });
    n++;
    if (batch.length === 2000) await send();
  }
  await send();
  await producer.disconnect();
  return n;
}

/** Waits until `group` has committed the end offset of every partition of `topics`. */
export async function waitForCommitted(
  admin: Admin,
  group: string,
  topics: string[],
  timeoutMs = 120_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let behind = 0;
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      const committed = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions ?? [];
      for (const e of ends) {
        const c = committed.find((x) => x.partition === e.partition);
        const at = c === undefined || c.offset === "-1" ? 0n : BigInt(c.offset);
        if (at < BigInt(e.high)) behind += Number(BigInt(e.high) - at);
      }
    }
    if (behind === 0) return;
    if (Date.now() > until)
      throw new Error(`group ${group} still ${behind} records behind after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Raw and FINAL row counts of every sink table. */
export async function tableCounts(
  conn: ClickHouseConnection,
  db: string,
): Promise<Record<string, { raw: number; final: number }>> {
  const out: Record<string, { raw: number; final: number }> = {};
  for (const t of Object.values(TABLES)) {
    const raw = await conn.query(`SELECT count() FROM ${db}.${t}`);
    const fin = await conn.query(`SELECT count() FROM ${db}.${t} FINAL`);
    out[t] = { raw: Number(raw.rows[0]?.[0]), final: Number(fin.rows[0]?.[0]) };
  }
  return out;
}

export function kafkaAdmin(brokers: string[]): Admin {
  return new Kafka({ clientId: "ch-it-admin", brokers, logLevel: logLevel.NOTHING }).admin();
}
