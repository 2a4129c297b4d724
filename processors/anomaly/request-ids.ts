/**
 * The request-id memory: request ids counted within the retention, so a redelivered copy is never
 * counted twice (see `RequestDeduplicator`).
 *
 * Ids are kept as their UTF-8 bytes, not as strings: in the store, entries of up to IDS_PER_ENTRY ids
 * of one receipt minute hold the bytes of their ids in their changelog form; in memory, an open-addressing table of
 * (hash, entry, offset) in typed arrays points into those same bytes. So remembering an id costs its
 * bytes and a few table slots, no object of its own, and the garbage collector never walks or copies
 * the ids (hundreds of thousands of long-lived strings and map entries were much of its work).
 */
import { randomBytes } from "node:crypto";
import type { Serde } from "../runtime/serde";
import type { KeyValueStore } from "../runtime/stores";
import { varintBytes, writeVarint } from "./window";

const MINUTE = 60_000;

export type Remembered = "new" | "duplicate" | "too-old";

/** Ids per entry: an entry is closed when it holds this many (see CountedRequestIds). */
export const IDS_PER_ENTRY = 64;

/**
 * A value of the counted-requests store: up to IDS_PER_ENTRY ids (see `RequestDeduplicator.keyOf`)
 * first counted in one receipt minute, in arrival order, kept in their changelog form
 * (`countedRequestIdsSerde`). Where an entry ends depends only on the ids (a minute's ids fill
 * entries of IDS_PER_ENTRY in turn), so the store holds the same entries whatever the commits were;
 * a commit writes one record per entry changed since the last (not one per request), and ids are
 * only ever appended, so a serialisation is a view of the bytes so far that later ids never touch.
 * Serialising marks the entry `logged`: the deduplicator puts it into the store again before it adds
 * the next id, so the changelog (and an on-disk store) hears of every change once.
 *
 * An entry of the older form (one entry per id, the value an epoch-millisecond receipt time) holds
 * no bytes: its store key is the id. As JSON an entry is its minute and ids (the older form's: none).
 */
export class CountedRequestIds {
  #bytes: Buffer;
  #used: number;
  #count: number;
  #logged: boolean;
  constructor(
    /** Start of the receipt minute, epoch ms. */
    readonly minute: number,
    bytes: Buffer,
    used: number,
    count: number,
    logged: boolean,
  ) {
    this.#bytes = bytes;
    this.#used = used;
    this.#count = count;
    this.#logged = logged;
  }

  /** The changelog form so far: `bytes[0, used)` (empty for the older form). */
  get bytes(): Buffer {
    return this.#bytes;
  }
  get used(): number {
    return this.#used;
  }
  /** Ids held. */
  get count(): number {
    return this.#count;
  }
  /** Serialised since it was last put into the store. */
  get logged(): boolean {
    return this.#logged;
  }
  /** The entry was put into the store (again). */
  markPut(): void {
    this.#logged = false;
  }
  /** The changelog form; the entry is `logged` from now on. */
  serialize(): Buffer {
    this.#logged = true;
    if (this.#used > 0) return this.#bytes.subarray(0, this.#used);
    const b = Buffer.allocUnsafe(LEGACY_BYTES);
    writeEpochMillis(b, 0, this.minute);
    return b;
  }
  /** Appends an id (its UTF-8 bytes `id[0, n)`); returns where its length starts. */
  append(id: Uint8Array, n: number): number {
    const need = varintBytes(n) + n;
    if (this.#used + need > this.#bytes.length) {
      // A new buffer: views already handed out by serialize() keep the old one unchanged.
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.#bytes.length * 2, this.#used + need));
      this.#bytes.copy(bigger, 0, 0, this.#used);
      this.#bytes = bigger;
    }
    const offset = this.#used;
    const bytes = this.#bytes;
    const o = writeVarint(bytes, offset, n);
    for (let k = 0; k < n; k++) bytes[o + k] = id[k] as number;
    this.#used = o + n;
    this.#count++;
    return offset;
  }
  toJSON(): { minute: number; ids: string[] } {
    return { minute: this.minute, ids: this.#used > 0 ? idsOf("", this) : [] };
  }
}

const FORMAT = 1;
/** Format byte and the minute (int64). */
const HEADER_BYTES = 9;
/** Bytes of the older form: the receipt time alone, as Int64Serde writes it. */
const LEGACY_BYTES = 8;
const NO_BYTES = Buffer.alloc(0);

function writeEpochMillis(b: Buffer, o: number, value: number): void {
  b.writeInt32BE(Math.floor(value / 0x1_0000_0000), o);
  b.writeUInt32BE(value >>> 0, o + 4);
}

function readEpochMillis(b: Buffer, o: number): number {
  return b.readInt32BE(o) * 0x1_0000_0000 + b.readUInt32BE(o + 4);
}

/** Where the varint at `o` ends (its value in `varintValue`); -1 when it is truncated or too long. */
let varintValue = 0;
function readVarint(b: Buffer, o: number, end: number): number {
  let n = 0;
  let scale = 1;
  while (o < end && scale <= 2 ** 28) {
    const byte = b[o++] as number;
    n += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      varintValue = n;
      return o;
    }
    scale *= 0x80;
  }
  return -1;
}

/**
 * Changelog form of `CountedRequestIds`: u8 format (1), the minute's start as a signed 64-bit
 * big-endian integer, then each id as an unsigned LEB128 length and its UTF-8 bytes. Serialising
 * marks the entry `logged` (see CountedRequestIds). An 8-byte value is the older form and decodes
 * to an entry without bytes.
 */
export const countedRequestIdsSerde: Serde<CountedRequestIds> = {
  name: "binary:CountedRequestIds",
  serialize: (_topic, value) => value.serialize(),
  deserialize(_topic, data) {
    if (data.length === LEGACY_BYTES)
      return new CountedRequestIds(readEpochMillis(data, 0), NO_BYTES, 0, 1, true);
    if (data.length < HEADER_BYTES || data[0] !== FORMAT)
      throw new Error(`CountedRequestIds: unknown format ${data[0]} (${data.length} bytes)`);
    let count = 0;
    for (let o = HEADER_BYTES; o < data.length; o += varintValue) {
      o = readVarint(data, o, data.length);
      if (o < 0 || o + varintValue > data.length) throw new Error("CountedRequestIds: truncated");
      count++;
    }
    // A copy: the bytes are held as long as the minute is remembered, and what was read may be a
    // view into a whole fetched batch or a buffer the reader reuses.
    return new CountedRequestIds(readEpochMillis(data, 1), Buffer.from(data), data.length, count, true);
  },
};

/** The ids an entry holds (its store key for one of the older form). */
export function idsOf(key: string, value: CountedRequestIds): string[] {
  if (value.used === 0) return [key];
  const out: string[] = [];
  for (let o = HEADER_BYTES; o < value.used; o += varintValue) {
    o = readVarint(value.bytes, o, value.used);
    out.push(value.bytes.toString("utf8", o, o + varintValue));
  }
  return out;
}

/** Every id held by entries of the counted-requests store, sorted (for tests and figures). */
export function rememberedIds(entries: Iterable<readonly [string, CountedRequestIds]>): string[] {
  const out: string[] = [];
  for (const [key, value] of entries) out.push(...idsOf(key, value));
  return out.sort();
}

/**
 * A new entry of the newer form with room for `n` bytes of ids before it must grow. Its bytes are a
 * buffer of their own (not a slice of Node's shared pool): they live for the retention, and a pool
 * slab would be kept for them with the short-lived buffers around them.
 */
function newEntry(minute: number, n: number): CountedRequestIds {
  const bytes = Buffer.allocUnsafeSlow(HEADER_BYTES + n);
  bytes[0] = FORMAT;
  writeEpochMillis(bytes, 1, minute);
  return new CountedRequestIds(minute, bytes, HEADER_BYTES, 0, false);
}

/** An entry's store key and value. */
interface Held {
  readonly key: string;
  readonly value: CountedRequestIds;
}

/** Seeds the id hash per process, so nobody can choose ids that collide on purpose. */
const HASH_SEED = randomBytes(4).readInt32LE(0);

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over bytes [from, to), finished with murmur3's mixer (linear probing wants every bit mixed). */
function hashBytes(b: Uint8Array, from: number, to: number): number {
  let h = HASH_SEED ^ FNV_OFFSET;
  for (let k = from; k < to; k++) h = Math.imul(h ^ (b[k] as number), FNV_PRIME);
  return fmix(h);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const EMPTY = -1;

function newSlots(n: number): Int32Array {
  const slots = new Int32Array(3 * n);
  for (let i = 0; i < n; i++) slots[3 * i + 1] = EMPTY;
  return slots;
}

/**
 * Request ids counted within the retention.
 *
 * Why a store of ids and not idempotence by design: the count is a sum, and a sum cannot tell a
 * redelivered copy from a new request with the same content; DUIS RequestIDs carry a counter, but its
 * monotonicity per User ID is not confirmed ([GAP], reference §4 check 4), so a high-water mark could
 * drop genuine requests. The Kafka driver's transactions already stop redelivery inside the
 * application; this catches copies produced upstream (an at-least-once producer, a replayed topic).
 * The retention is the longest window plus one bucket: a copy older than that could not change any
 * count, so it is never counted at all (`too-old`).
 *
 * Expiry is exact to the receipt minute and independent of arrival order, so a restored instance
 * evicts exactly what the original would have: every minute older than (newest receipt minute -
 * retention) is dropped whole — its store entries deleted, its ids taken out of the table. The
 * retention is a whole number of minutes, so nothing finer than the receipt minute is ever used.
 * Entries of the older one-id-per-entry form (exact receipt times included) are read the same way.
 *
 * In memory: every entry's bytes (`held`, by entry number) and a linear-probing table whose slot
 * holds an id's hash, entry number and offset (EMPTY entry: a free slot), at most half full.
 */
export class RequestDeduplicator {
  private held: Array<Held | undefined> = [];
  private readonly freeNumbers: number[] = [];
  /** Per receipt minute: the numbers of its entries. */
  private readonly byMinute = new Map<number, number[]>();
  /** Per receipt minute: the number of the entry its new ids go to (until that one is full). */
  private readonly open = new Map<number, number>();
  /**
   * The table: slot i is [3i] hash, [3i+1] entry number (EMPTY: free), [3i+2] offset — one array, so
   * a probe reads one cache line, not three.
   */
  private slots = newSlots(1024);
  /** Slots - 1 (a power of two). */
  private mask = 1023;
  private count = 0;
  /** The id being remembered, as UTF-8, and its hash. */
  private scratch = Buffer.allocUnsafe(256);
  private encodedHash = 0;
  private newestMinute = Number.NEGATIVE_INFINITY;
  private cutoffMinute = Number.NEGATIVE_INFINITY;
  private readonly retentionMinutes: number;

  constructor(
    private readonly store: KeyValueStore<CountedRequestIds>,
    retentionMs: number,
  ) {
    if (!Number.isInteger(retentionMs / MINUTE))
      throw new RangeError(`request-id retention must be whole minutes, got ${retentionMs} ms`);
    this.retentionMinutes = retentionMs / MINUTE;
    // A minute's entry that is not full yet is the one its next ids go to, as if never restored.
    for (const [key, stored] of store.all()) {
      const m = Math.floor(stored.minute / MINUTE);
      let value = stored;
      if (value.used === 0) {
        // The older form: the id is the key; its bytes are held here only, never added to.
        const id = Buffer.from(key, "utf8");
        value = newEntry(m * MINUTE, varintBytes(id.length) + id.length);
        value.append(id, id.length);
      } else if (value.count < IDS_PER_ENTRY) {
        this.open.set(m, this.held.length);
      }
      const e = this.hold(key, value, m);
      for (let o = HEADER_BYTES; o < value.used; o += varintValue) {
        const at = o;
        o = readVarint(value.bytes, o, value.used);
        this.place(hashBytes(value.bytes, o, o + varintValue), e, at);
      }
      if (m > this.newestMinute) this.newestMinute = m;
    }
    this.cutoffMinute = this.newestMinute - this.retentionMinutes;
  }

  /** Ids remembered. */
  get size(): number {
    return this.count;
  }

  /**
   * The store key of a request: its RequestID when that begins with the User ID and a colon (the DUIS
   * form, BusinessOriginatorID first), else `<userId>|<requestId>`. The two forms cannot collide as
   * long as User IDs hold no "|" (they are EUI-64s; the window store's keys rely on that too).
   */
  static keyOf(userId: string, requestId: string): string {
    return requestId.startsWith(userId) && requestId.charCodeAt(userId.length) === 58
      ? requestId
      : `${userId}|${requestId}`;
  }

  /** Remembers a request id; says whether it is new, a copy already counted, or too old to count. */
  remember(userId: string, requestId: string, receivedAt: number): Remembered {
    const minute = Math.floor(receivedAt / MINUTE);
    if (minute < this.cutoffMinute) return "too-old";
    const id = RequestDeduplicator.keyOf(userId, requestId);
    const n = this.encode(id);
    const h = this.encodedHash;
    const slots = this.slots;
    const mask = this.mask;
    let i = h & mask;
    for (let e = slots[3 * i + 1] as number; e !== EMPTY; e = slots[3 * i + 1] as number) {
      if (slots[3 * i] === h && this.holds(e, slots[3 * i + 2] as number, n)) return "duplicate";
      i = (i + 1) & mask;
    }
    this.add(minute, id, n, h, i);
    if (minute > this.newestMinute) {
      this.newestMinute = minute;
      this.cutoffMinute = minute - this.retentionMinutes;
      this.evict();
    }
    return "new";
  }

  /** Writes `id` as UTF-8 into `scratch` and hashes it (into `encodedHash`); returns its length. */
  private encode(id: string): number {
    if (this.scratch.length < id.length * 3) this.scratch = Buffer.allocUnsafe(id.length * 3);
    const s = this.scratch;
    // ASCII (every DUIS RequestID) in one pass: the hash of hashBytes, byte by byte as written.
    let h = HASH_SEED ^ FNV_OFFSET;
    for (let k = 0; k < id.length; k++) {
      const c = id.charCodeAt(k);
      if (c >= 0x80) {
        const n = s.write(id, 0, "utf8");
        this.encodedHash = hashBytes(s, 0, n);
        return n;
      }
      s[k] = c;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    this.encodedHash = fmix(h);
    return id.length;
  }

  /** Whether entry `e` holds, at `offset`, the `n` bytes in `scratch`. */
  private holds(e: number, offset: number, n: number): boolean {
    const b = (this.held[e] as Held).value.bytes;
    const o = readVarint(b, offset, b.length);
    if (varintValue !== n) return false;
    const s = this.scratch;
    for (let k = 0; k < n; k++) if (b[o + k] !== s[k]) return false;
    return true;
  }

  /**
   * Appends the id in `scratch` to its minute's open entry (a new one when there is none or it is
   * full), puts the entry into the store if it is new or was serialised since, and the id into free
   * slot `i`. The id is appended before the put: a store that serialises at once gets it too.
   */
  private add(minute: number, id: string, n: number, h: number, i: number): void {
    let e = this.open.get(minute);
    const held = e === undefined ? undefined : this.held[e];
    if (held === undefined || held.value.count >= IDS_PER_ENTRY) {
      // Room for a whole entry when the minute already filled one, else for a few ids.
      const room = held === undefined ? 8 : IDS_PER_ENTRY;
      const value = newEntry(minute * MINUTE, room * (varintBytes(n) + n));
      // Its first id makes the key unique: an id is in one entry at most.
      const key = `m${minute}:${id}`;
      e = this.hold(key, value, minute);
      this.open.set(minute, e);
      value.markPut();
      const offset = value.append(this.scratch, n);
      this.store.put(key, value);
      this.fill(i, h, e, offset);
      return;
    }
    const value = held.value;
    const offset = value.append(this.scratch, n);
    if (value.logged) {
      value.markPut();
      this.store.put(held.key, value);
    }
    this.fill(i, h, e as number, offset);
  }

  private hold(key: string, value: CountedRequestIds, minute: number): number {
    const e = this.freeNumbers.pop() ?? this.held.length;
    this.held[e] = { key, value };
    let list = this.byMinute.get(minute);
    if (!list) this.byMinute.set(minute, (list = []));
    list.push(e);
    return e;
  }

  /** Puts an id known to be absent into the table. */
  private place(h: number, e: number, offset: number): void {
    const mask = this.mask;
    let i = h & mask;
    while (this.slots[3 * i + 1] !== EMPTY) i = (i + 1) & mask;
    this.fill(i, h, e, offset);
  }

  /** Puts an id into free slot `i`; keeps the table at most half full. */
  private fill(i: number, h: number, e: number, offset: number): void {
    const slots = this.slots;
    slots[3 * i] = h;
    slots[3 * i + 1] = e;
    slots[3 * i + 2] = offset;
    if (++this.count * 2 > this.mask + 1) this.resize((this.mask + 1) * 2);
  }

  private resize(capacity: number): void {
    const old = this.slots;
    this.slots = newSlots(capacity);
    this.mask = capacity - 1;
    this.count = 0;
    for (let k = 0; k < old.length; k += 3) {
      const e = old[k + 1] as number;
      if (e !== EMPTY) this.place(old[k] as number, e, old[k + 2] as number);
    }
  }

  /** Takes the id of entry `e` at `offset` out of the table (backward-shift deletion). */
  private unplace(h: number, e: number, offset: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let i = h & mask;
    while (slots[3 * i + 1] !== e || slots[3 * i + 2] !== offset) {
      if (slots[3 * i + 1] === EMPTY) return;
      i = (i + 1) & mask;
    }
    // Later slots of the same run move back into the hole unless their home lies after it.
    for (let j = (i + 1) & mask; slots[3 * j + 1] !== EMPTY; j = (j + 1) & mask) {
      const home = (slots[3 * j] as number) & mask;
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (between) continue;
      slots.copyWithin(3 * i, 3 * j, 3 * j + 3);
      i = j;
    }
    slots[3 * i + 1] = EMPTY;
    this.count--;
  }

  private evict(): void {
    for (const [m, numbers] of this.byMinute) {
      if (m >= this.cutoffMinute) continue;
      for (const e of numbers) {
        const { key, value } = this.held[e] as Held;
        for (let o = HEADER_BYTES; o < value.used; o += varintValue) {
          const at = o;
          o = readVarint(value.bytes, o, value.used);
          this.unplace(hashBytes(value.bytes, o, o + varintValue), e, at);
        }
        this.store.delete(key);
        this.held[e] = undefined;
        this.freeNumbers.push(e);
      }
      this.byMinute.delete(m);
      this.open.delete(m);
    }
  }
}
