/**
 * A tiny DER writer, for the test PKI only (certificates for tests, the benchmark and the load
 * generator). Production code reads DER (smki/der.ts) and never writes it.
 */

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

export const seq = (...parts: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(parts));
export const set = (...parts: Uint8Array[]): Buffer => tlv(0x31, Buffer.concat(parts));
export const octets = (b: Uint8Array): Buffer => tlv(0x04, b);
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, "utf8"));
export const printable = (s: string): Buffer => tlv(0x13, Buffer.from(s, "latin1"));
export const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
/** Context-specific tag `n`, constructed (explicit) or primitive (implicit). */
export const ctx = (n: number, content: Uint8Array, constructed = true): Buffer =>
  tlv((constructed ? 0xa0 : 0x80) | n, content);

export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

export function integer(n: bigint): Buffer {
  if (n < 0n) throw new Error("negative integers are not needed here");
  let hex = n.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  let b = Buffer.from(hex, "hex");
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const pad = (n: number): string => String(n).padStart(2, "0");
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${pad(y % 100)}${rest}`, "latin1"));
  return tlv(0x18, Buffer.from(`${String(y).padStart(4, "0")}${rest}`, "latin1"));
}

/** Raw r‖s (64 bytes) → ECDSA-Sig-Value DER. */
export function ecdsaRawToDer(raw: Uint8Array): Buffer {
  const r = BigInt("0x" + Buffer.from(raw.subarray(0, 32)).toString("hex"));
  const s = BigInt("0x" + Buffer.from(raw.subarray(32, 64)).toString("hex"));
  return seq(integer(r), integer(s));
}
