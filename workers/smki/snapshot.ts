/**
 * The SMKI trust configuration as an immutable snapshot in a SharedArrayBuffer, so every pool task
 * can carry it for the cost of a handle (a SharedArrayBuffer is shared, not copied, by postMessage).
 * A worker rebuilds its TrustStore only when a task brings a snapshot id it has not seen; the
 * certificates it already parsed come from the DER-hash cache, so an update costs only the new ones.
 *
 * Layout: "SMK1", u32 anchors, u32 certificates, u32 revoked, u32 maxPathLength (0 = default), u32
 * requiredPolicies, then each entry as u32 length + bytes (DER, or UTF-8 for serials and policies).
 */
import * as crypto from "node:crypto";
import type { TrustStoreConfig } from "./trust";

export interface SmkiSnapshot {
  /** Unique per encoding: workers compare ids, never contents. */
  readonly id: string;
  readonly buffer: SharedArrayBuffer;
}

const MAGIC = 0x534d4b31; // "SMK1"

export function encodeSmkiSnapshot(config: TrustStoreConfig): SmkiSnapshot {
  const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
  const sections: Uint8Array[][] = [
    [...config.anchors],
    [...(config.certificates ?? [])],
    (config.revokedSerials ?? []).map(utf8),
    (config.requiredPolicies ?? []).map(utf8),
  ];
  let size = 4 * 6;
  for (const s of sections) for (const e of s) size += 4 + e.length;
  const buffer = new SharedArrayBuffer(size);
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  view.setUint32(0, MAGIC);
  view.setUint32(4, sections[0]!.length);
  view.setUint32(8, sections[1]!.length);
  view.setUint32(12, sections[2]!.length);
  view.setUint32(16, config.maxPathLength ?? 0);
  view.setUint32(20, sections[3]!.length);
  let at = 24;
  for (const s of sections) {
    for (const e of s) {
      view.setUint32(at, e.length);
      bytes.set(e, at + 4);
      at += 4 + e.length;
    }
  }
  return { id: crypto.randomUUID(), buffer };
}

export function decodeSmkiSnapshot(snapshot: SmkiSnapshot): TrustStoreConfig {
  const view = new DataView(snapshot.buffer);
  const bytes = new Uint8Array(snapshot.buffer);
  if (view.getUint32(0) !== MAGIC) throw new Error("not an SMKI snapshot");
  const counts = [view.getUint32(4), view.getUint32(8), view.getUint32(12), view.getUint32(20)];
  const maxPathLength = view.getUint32(16);
  let at = 24;
  const read = (n: number): Uint8Array[] => {
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const len = view.getUint32(at);
      out.push(bytes.slice(at + 4, at + 4 + len));
      at += 4 + len;
    }
    return out;
  };
  const anchors = read(counts[0]!);
  const certificates = read(counts[1]!);
  const revokedSerials = read(counts[2]!).map((b) => Buffer.from(b).toString("utf8"));
  const requiredPolicies = read(counts[3]!).map((b) => Buffer.from(b).toString("utf8"));
  return {
    anchors,
    certificates,
    revokedSerials,
    ...(maxPathLength ? { maxPathLength } : {}),
    ...(requiredPolicies.length ? { requiredPolicies } : {}),
  };
}
