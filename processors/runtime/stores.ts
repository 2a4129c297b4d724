/**
 * State stores: one key-value interface, two backends.
 *
 * - `InMemoryKeyValueStore`: a Map; the default.
 * - `LmdbKeyValueStore`: an embedded on-disk store (LMDB) for tables that outgrow memory (national
 *   scale is ~30 million devices).
 *
 * Durability never comes from the backend: every logged store is wrapped by `ChangeLoggingStore`,
 * whose dirty entries the driver writes to a compacted changelog topic in the same Kafka transaction
 * as the outputs and input offsets. On start or rebalance the backend is wiped and rebuilt from the
 * changelog, so a killed process loses nothing and a half-written local file is never trusted.
 */
import { open, type RootDatabase } from "lmdb";
import * as fs from "node:fs";
import type { Serde } from "./serde";

export interface KeyValueStore<V> {
  readonly name: string;
  get(key: string): V | undefined;
  put(key: string, value: V): void;
  delete(key: string): void;
  /** Entries with from <= key < to (string order), sorted by key. */
  range(from: string, to: string): Array<[string, V]>;
  /** All entries, sorted by key. */
  all(): Array<[string, V]>;
  approximateNumEntries(): number;
}

/** What a backend must also offer to the runtime (clearing and restoring raw bytes). */
export interface StoreBackend<V> extends KeyValueStore<V> {
  clear(): void;
  close(): Promise<void>;
}

export class InMemoryKeyValueStore<V> implements StoreBackend<V> {
  private readonly map = new Map<string, V>();
  constructor(readonly name: string) {}
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  put(key: string, value: V): void {
    this.map.set(key, value);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  range(from: string, to: string): Array<[string, V]> {
    return this.all().filter(([k]) => k >= from && k < to);
  }
  all(): Array<[string, V]> {
    return [...this.map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
  approximateNumEntries(): number {
    return this.map.size;
  }
  clear(): void {
    this.map.clear();
  }
  async close(): Promise<void> {}
}

/**
 * LMDB-backed store; values are kept as the serde's bytes, so the file format is the changelog's.
 *
 * Writes are held in memory (`pending`) and written to the file together, in one LMDB write
 * transaction, when `PENDING_WRITES_LIMIT` of them have built up or before a range scan, a count or a
 * close. One write transaction per put cost ~5 % of the 6.23 pipeline's main thread (`finishTxn`).
 * Reads see pending writes first, so the store behaves exactly as if each put had gone to the file.
 * Pending values are held as given, like the in-memory store and the changelog's dirty map (a value
 * changed in place after its put is written as it is at the flush, as the changelog logs it).
 */
export class LmdbKeyValueStore<V> implements StoreBackend<V> {
  private readonly db: RootDatabase<Buffer, string>;
  /** Writes not yet in the file: key -> value, undefined = deleted. */
  private pending = new Map<string, V | undefined>();
  /**
   * `serdeTopic` is the topic name handed to the serde (the store's changelog topic), so a
   * registry-backed serde frames local values exactly as the changelog does.
   */
  constructor(
    readonly name: string,
    readonly path: string,
    private readonly serde: Serde<V>,
    private readonly serdeTopic: string = name,
  ) {
    fs.mkdirSync(path, { recursive: true });
    // noSync: durability comes from the changelog topic, not from fsyncs of the local file.
    this.db = open<Buffer, string>({ path, encoding: "binary", noSync: true, noMetaSync: true });
  }
  private decode(bytes: Buffer | undefined): V | undefined {
    if (bytes === undefined) return undefined;
    const v = this.serde.deserialize(this.serdeTopic, bytes);
    if (v instanceof Promise) throw new Error(`store ${this.name}: value serde must decode synchronously`);
    return v;
  }
  get(key: string): V | undefined {
    if (this.pending.has(key)) return this.pending.get(key);
    return this.decode(this.db.get(key));
  }
  put(key: string, value: V): void {
    this.pending.set(key, value);
    if (this.pending.size >= PENDING_WRITES_LIMIT) this.flush();
  }
  delete(key: string): void {
    this.pending.set(key, undefined);
    if (this.pending.size >= PENDING_WRITES_LIMIT) this.flush();
  }
  /** Writes the pending puts and deletes to the file in one write transaction. */
  flush(): void {
    if (this.pending.size === 0) return;
    const writes = this.pending;
    this.pending = new Map();
    this.db.transactionSync(() => {
      for (const [key, value] of writes) {
        if (value === undefined) this.db.removeSync(key);
        else this.db.putSync(key, this.serde.serialize(this.serdeTopic, value));
      }
    });
  }
  range(from: string, to: string): Array<[string, V]> {
    this.flush();
    const out: Array<[string, V]> = [];
    for (const { key, value } of this.db.getRange({ start: from, end: to })) {
      out.push([key, this.decode(value) as V]);
    }
    return out;
  }
  all(): Array<[string, V]> {
    this.flush();
    const out: Array<[string, V]> = [];
    for (const { key, value } of this.db.getRange({})) out.push([key, this.decode(value) as V]);
    return out;
  }
  approximateNumEntries(): number {
    this.flush();
    return (this.db.getStats() as { entryCount: number }).entryCount;
  }
  clear(): void {
    this.pending = new Map();
    this.db.clearSync();
  }
  async close(): Promise<void> {
    this.flush();
    await this.db.close();
  }
}

/** Pending writes of one LMDB store at most before they are written to the file. */
export const PENDING_WRITES_LIMIT = 1024;

/** A changelog entry: the latest value of a key (undefined = deleted) since the last commit. */
export interface ChangelogEntry {
  readonly key: string;
  readonly value: Buffer | null;
}

/**
 * Wraps a backend and remembers which keys changed since the last commit. Only the latest value of a
 * key is logged per commit, as Kafka Streams' caching layer does.
 */
export class ChangeLoggingStore<V> implements KeyValueStore<V> {
  private dirty = new Map<string, V | undefined>();
  constructor(
    readonly backend: StoreBackend<V>,
    readonly changelogTopic: string,
    private readonly serde: Serde<V>,
  ) {}
  get name(): string {
    return this.backend.name;
  }
  get(key: string): V | undefined {
    return this.backend.get(key);
  }
  put(key: string, value: V): void {
    this.backend.put(key, value);
    this.dirty.set(key, value);
  }
  delete(key: string): void {
    this.backend.delete(key);
    this.dirty.set(key, undefined);
  }
  range(from: string, to: string): Array<[string, V]> {
    return this.backend.range(from, to);
  }
  all(): Array<[string, V]> {
    return this.backend.all();
  }
  approximateNumEntries(): number {
    return this.backend.approximateNumEntries();
  }
  get dirtyCount(): number {
    return this.dirty.size;
  }
  /** Takes the entries changed since the last call, encoded for the changelog. */
  drainChangelog(): ChangelogEntry[] {
    if (this.dirty.size === 0) return [];
    const out: ChangelogEntry[] = [];
    for (const [key, value] of this.dirty) {
      out.push({ key, value: value === undefined ? null : this.serde.serialize(this.changelogTopic, value) });
    }
    this.dirty = new Map();
    return out;
  }
  /** Forgets changes not yet logged (the transaction that would have logged them was aborted). */
  discardDirty(): void {
    this.dirty = new Map();
  }
  /** Applies one changelog record during restoration (not logged again). */
  async restore(key: string, value: Buffer | null): Promise<void> {
    if (value === null) {
      this.backend.delete(key);
      return;
    }
    const decoded = await this.serde.deserialize(this.changelogTopic, value);
    this.backend.put(key, decoded);
  }
}
