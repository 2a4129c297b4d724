/**
 * A minimal DER reader: enough for the SMKI certificate profile (reference §1.2). Definite lengths
 * only (DER), single-byte tags (every tag in the profile is one byte), bounded to the enclosing value.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** One TLV: `tag` byte, header at `start`, value in [valueStart, end). */
export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Reads the TLV at `pos`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, pos: number, limit: number = buf.length): Tlv {
  if (pos + 2 > limit) throw new DerError("truncated DER header");
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte DER tags are not in the SMKI profile");
  let len = buf[pos + 1]!;
  let valueStart = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError("indefinite length is not DER");
    if (n > 4) throw new DerError("DER length too long");
    if (valueStart + n > limit) throw new DerError("truncated DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[valueStart + i]!;
    if (len < 0x80 || (n > 1 && buf[valueStart] === 0)) throw new DerError("DER length not minimal");
    valueStart += n;
  }
  const end = valueStart + len;
  if (end > limit) throw new DerError("DER value runs past its container");
  return { tag, start: pos, valueStart, end };
}

/** Reads a TLV and checks its tag. */
export function expectTlv(buf: Uint8Array, pos: number, limit: number, tag: number, what: string): Tlv {
  const t = readTlv(buf, pos, limit);
  if (t.tag !== tag)
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${t.tag.toString(16)}`);
  return t;
}

/** The TLVs directly inside a constructed value. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.valueStart;
  while (pos < parent.end) {
    const t = readTlv(buf, pos, parent.end);
    out.push(t);
    pos = t.end;
  }
  return out;
}

export function value(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.valueStart, t.end);
}

export function whole(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.start, t.end);
}

/** Dotted form of an OBJECT IDENTIFIER value. */
export function decodeOid(v: Uint8Array): string {
  if (v.length === 0) throw new DerError("empty OID");
  const parts: number[] = [];
  let acc = 0;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (acc === 0 && b === 0x80) throw new DerError("OID sub-identifier not minimal");
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) throw new DerError("OID sub-identifier too large");
    if (!(b & 0x80)) {
      parts.push(acc);
      acc = 0;
    } else if (i === v.length - 1) {
      throw new DerError("truncated OID");
    }
  }
  const first = parts[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...parts.slice(1)].join(".");
}

/** An INTEGER value as a bigint (two's complement). */
export function decodeInteger(v: Uint8Array): bigint {
  if (v.length === 0) throw new DerError("empty INTEGER");
  if (v.length > 1 && ((v[0] === 0 && !(v[1]! & 0x80)) || (v[0] === 0xff && v[1]! & 0x80))) {
    throw new DerError("INTEGER not minimally encoded");
  }
  let n = BigInt("0x" + Buffer.from(v).toString("hex"));
  if (v[0]! & 0x80) n -= 1n << BigInt(v.length * 8);
  return n;
}

/** UTCTime (YYMMDDHHMMSSZ, years 1950–2049) or GeneralizedTime (YYYYMMDDHHMMSSZ) → epoch ms. */
export function decodeTime(tag: number, v: Uint8Array): number {
  const s = Buffer.from(v).toString("latin1");
  let m: RegExpExecArray | null;
  let year: number;
  if (tag === TAG.UTC_TIME) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw new DerError(`malformed UTCTime ${s}`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tag === TAG.GENERALIZED_TIME) {
    m = /^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw new DerError(`malformed GeneralizedTime ${s}`);
    year = Number(m[1]);
  } else {
    throw new DerError("expected a UTCTime or GeneralizedTime");
  }
  const t = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (Number.isNaN(t)) throw new DerError(`invalid time ${s}`);
  return t;
}

/** An ECDSA-Sig-Value (SEQUENCE { r INTEGER, s INTEGER }) → raw 64-byte r‖s for P-256. */
export function ecdsaDerToRaw(der: Uint8Array): Uint8Array {
  const seq = expectTlv(der, 0, der.length, TAG.SEQUENCE, "ECDSA signature");
  if (seq.end !== der.length) throw new DerError("trailing bytes after ECDSA signature");
  const [r, s, extra] = children(der, seq);
  if (!r || !s || extra || r.tag !== TAG.INTEGER || s.tag !== TAG.INTEGER)
    throw new DerError("malformed ECDSA signature");
  const out = Buffer.alloc(64);
  for (const [t, off] of [
    [r, 0],
    [s, 32],
  ] as const) {
    const n = decodeInteger(value(der, t));
    if (n <= 0n || n >= 1n << 256n) throw new DerError("ECDSA signature component out of range");
    Buffer.from(n.toString(16).padStart(64, "0"), "hex").copy(out, off);
  }
  return out;
}
