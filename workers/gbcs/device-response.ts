/**
 * The device's answers to a CS02b command in GBCS form (reference §3.3): the Response (CRA 2, message
 * code 0x0107, recipient = the CoS Party, the command's counter, a 12-byte DLMS date-time) and the
 * future-dated execution Alert (CRA 3, message code 0x00CB, the device's own alert counter), both
 * device-signed General-Signing APDUs. Byte layout in docs/gbcs.md.
 *
 * The device writes DER lengths of 128 and more in the two-byte long form (`82 00 CA`), as the RTDS
 * device responses do; the encoder copies that and the decoder accepts both forms.
 */
import type { EcdsaP256, EcPrivateKey } from "../crypto/ecdsa";
import { EcosError } from "../../processors/runtime/errors";
import type { DeviceAlert, ExecutionOutcome, ReplacementOutcome, ReplacementStatus } from "./device";
import { REPLACEMENT_STATUS } from "./device";
import {
  CRA_ALERT,
  CRA_RESPONSE,
  encodeGeneralSigning,
  entityIdBytes,
  MESSAGE_CODE_CS02B,
  parseGeneralSigning,
  signGeneralSigning,
  type GeneralSigningHeader,
  type ParsedGeneralSigning,
  type SeqNumberChange,
  type TrustAnchorCellId,
} from "./pre-command";

/** Message code of the future-dated execution alert. */
export const MESSAGE_CODE_FUTURE_DATED_ALERT = 0x00cb;

const malformed = (message: string): EcosError => new EcosError("ECOS_GBCS_MALFORMED", message);

// Writing, with the device's length style.
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n > 0xffff) throw malformed("device payload too long");
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}
const tlv = (tag: number, ...parts: Uint8Array[]): Buffer => {
  const c = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(c.length), c]);
};
function int(n: bigint | number): Buffer {
  let hex = BigInt(n).toString(16);
  if (hex.length % 2) hex = "0" + hex;
  const b = Buffer.from(hex, "hex");
  return tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}
const KU: Record<TrustAnchorCellId["keyUsage"], string> = {
  digitalSignature: "03020780",
  keyAgreement: "03020308",
};
const cell = (c: TrustAnchorCellId): Buffer =>
  tlv(
    0x30,
    int(c.role),
    Buffer.from(KU[c.keyUsage], "hex"),
    ...(c.cellUsage === undefined ? [] : [int(c.cellUsage)]),
  );
const id8 = (hex: string): Buffer => tlv(0x04, hex === "" ? Buffer.alloc(8) : Buffer.from(hex, "hex"));

function changes(cs: readonly SeqNumberChange[]): Buffer {
  return tlv(
    0x30,
    ...cs.map((c) =>
      tlv(
        0x30,
        int(c.role),
        int(c.floorSeqNumber),
        ...(c.specialistFloors.length === 0
          ? []
          : [tlv(0x30, ...c.specialistFloors.map((s) => tlv(0x30, int(s.usage), int(s.seqNumber))))]),
      ),
    ),
  );
}

/** ExecutionOutcome DER. Unknown ids/SKIs (a failed replacement) are written as 8 zero bytes [I]. */
export function encodeExecutionOutcome(o: ExecutionOutcome): Buffer {
  return tlv(
    0x30,
    int(o.authorisingSeqNumber),
    int(o.mode),
    changes(o.seqNumberChanges),
    tlv(
      0x30,
      ...o.replacementOutcomes.map((r) =>
        tlv(
          0x30,
          cell(r.targetCell),
          tlv(0x0a, Buffer.from([REPLACEMENT_STATUS[r.status]])),
          id8(r.existingEntityId),
          id8(r.existingSki),
          id8(r.newEntityId),
          id8(r.newSki),
        ),
      ),
    ),
  );
}

/** 12-byte DLMS date-time (UTC, day of week and deviation "not specified", as the RTDS device writes). */
export function dlmsDateTime(ms: number): Buffer {
  const d = new Date(ms);
  const b = Buffer.alloc(12);
  b.writeUInt16BE(d.getUTCFullYear(), 0);
  b[2] = d.getUTCMonth() + 1;
  b[3] = d.getUTCDate();
  b[4] = 0xff;
  b[5] = d.getUTCHours();
  b[6] = d.getUTCMinutes();
  b[7] = d.getUTCSeconds();
  b[8] = Math.floor(d.getUTCMilliseconds() / 10);
  b.writeUInt16BE(0x8000, 9);
  b[11] = 0xff;
  return b;
}

export interface DeviceResponseInput {
  readonly deviceId: string;
  readonly cosPartyId: string;
  /** The command's originator counter, echoed. */
  readonly counter: bigint;
  readonly at: number;
  /** null → `commandAccepted` only (future-dated, cancellation). */
  readonly outcome: ExecutionOutcome | null;
}

/** The device-signed Response to a CS02b command. */
export function buildDeviceResponse(
  r: DeviceResponseInput,
  ecdsa: EcdsaP256,
  deviceKey: EcPrivateKey,
): Buffer {
  const content = tlv(
    0x30,
    Buffer.from([0x05, 0x00]),
    ...(r.outcome ? [encodeExecutionOutcome(r.outcome)] : []),
  );
  const header: GeneralSigningHeader = {
    cra: CRA_RESPONSE,
    originatorCounter: r.counter,
    originator: entityIdBytes(r.deviceId),
    recipient: entityIdBytes(r.cosPartyId),
    dateTime: dlmsDateTime(r.at),
    messageCode: MESSAGE_CODE_CS02B,
  };
  return signGeneralSigning(encodeGeneralSigning(header, content), ecdsa, deviceKey);
}

export interface DeviceAlertInput {
  readonly deviceId: string;
  readonly cosPartyId: string;
  /** The device's own alert counter (not the command's; the command's is inside the outcome). */
  readonly alertCounter: bigint;
  readonly alert: DeviceAlert;
}

/** The device-signed 0x8F66/0x8F67 alert at a future-dated command's execution. */
export function buildDeviceAlert(a: DeviceAlertInput, ecdsa: EcdsaP256, deviceKey: EcPrivateKey): Buffer {
  const time = new Date(a.alert.executionDateTime).toISOString().slice(0, 19).replace(/[-:T]/g, "") + "Z";
  const content = tlv(
    0x30,
    int(a.alert.alertCode),
    tlv(0x18, Buffer.from(time, "latin1")),
    encodeExecutionOutcome(a.alert.outcome),
  );
  const header: GeneralSigningHeader = {
    cra: CRA_ALERT,
    originatorCounter: a.alertCounter,
    originator: entityIdBytes(a.deviceId),
    recipient: entityIdBytes(a.cosPartyId),
    dateTime: null,
    messageCode: MESSAGE_CODE_FUTURE_DATED_ALERT,
  };
  return signGeneralSigning(encodeGeneralSigning(header, content), ecdsa, deviceKey);
}

// Reading (either length form).
interface T {
  tag: number;
  start: number;
  v: number;
  end: number;
}
function read(b: Buffer, pos: number, limit: number): T {
  if (pos + 2 > limit) throw malformed("device payload truncated");
  const tag = b[pos]!;
  let n = b[pos + 1]!;
  let v = pos + 2;
  if (n & 0x80) {
    const k = n & 0x7f;
    if (k < 1 || k > 2 || v + k > limit) throw malformed("device payload length");
    n = k === 1 ? b[v]! : b.readUInt16BE(v);
    v += k;
  }
  if (v + n > limit) throw malformed("device payload value runs past its container");
  return { tag, start: pos, v, end: v + n };
}
function kids(b: Buffer, t: T, tag: number, what: string): T[] {
  if (t.tag !== tag) throw malformed(`${what}: tag 0x${t.tag.toString(16)}`);
  const out: T[] = [];
  for (let p = t.v; p < t.end;) {
    const c = read(b, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}
const val = (b: Buffer, t: T | undefined, tag: number, what: string): Buffer => {
  if (!t || t.tag !== tag) throw malformed(`${what} missing or of the wrong type`);
  return b.subarray(t.v, t.end);
};
const big = (b: Buffer, t: T | undefined, what: string): bigint => {
  const v = val(b, t, 0x02, what);
  if (v.length === 0 || v[0]! & 0x80) throw malformed(`${what}: not a non-negative INTEGER`);
  return BigInt("0x" + v.toString("hex"));
};
const STATUS_BY_CODE = new Map<number, ReplacementStatus>(
  (Object.entries(REPLACEMENT_STATUS) as Array<[ReplacementStatus, number]>).map(([k, v]) => [v, k]),
);

function readCell(b: Buffer, t: T | undefined): TrustAnchorCellId {
  if (!t) throw malformed("targetCell missing");
  const [role, ku, usage] = kids(b, t, 0x30, "targetCell");
  const kuHex = b.subarray(ku?.start ?? 0, ku?.end ?? 0).toString("hex");
  const keyUsage =
    kuHex === KU.digitalSignature ? "digitalSignature" : kuHex === KU.keyAgreement ? "keyAgreement" : null;
  if (!keyUsage) throw malformed("targetCell key usage");
  const base = { role: Number(big(b, role, "role")), keyUsage } as const;
  return usage ? { ...base, cellUsage: Number(big(b, usage, "cellUsage")) } : base;
}

export function decodeExecutionOutcome(b: Buffer, t: T): ExecutionOutcome {
  const [seqT, modeT, changesT, outcomesT] = kids(b, t, 0x30, "ExecutionOutcome");
  if (!changesT || !outcomesT) throw malformed("ExecutionOutcome incomplete");
  const seqNumberChanges: SeqNumberChange[] = kids(b, changesT, 0x30, "changes").map((c) => {
    const [role, floor, spec] = kids(b, c, 0x30, "change");
    return {
      role: Number(big(b, role, "role")),
      floorSeqNumber: big(b, floor, "floor"),
      specialistFloors: spec
        ? kids(b, spec, 0x30, "specialist").map((s) => {
            const [u, n] = kids(b, s, 0x30, "specialist floor");
            return { usage: Number(big(b, u, "usage")), seqNumber: big(b, n, "seqNumber") };
          })
        : [],
    };
  });
  const replacementOutcomes: ReplacementOutcome[] = kids(b, outcomesT, 0x30, "outcomes").map((r) => {
    const [c, s, e1, e2, n1, n2] = kids(b, r, 0x30, "ReplacementOutcome");
    const code = val(b, s, 0x0a, "status");
    const status = code.length === 1 ? STATUS_BY_CODE.get(code[0]!) : undefined;
    if (!status) throw malformed(`status ${code.toString("hex")}`);
    const hex = (x: T | undefined, w: string): string => {
      const v = val(b, x, 0x04, w);
      return v.every((y) => y === 0) ? "" : v.toString("hex").toUpperCase();
    };
    return {
      targetCell: readCell(b, c),
      status,
      existingEntityId: hex(e1, "existing entity id"),
      existingSki: hex(e2, "existing SKI"),
      newEntityId: hex(n1, "new entity id"),
      newSki: hex(n2, "new SKI"),
    };
  });
  return {
    authorisingSeqNumber: big(b, seqT, "authorisingRemotePartySeqNumber"),
    mode: Number(big(b, modeT, "mode")),
    seqNumberChanges,
    replacementOutcomes,
    success: replacementOutcomes.every((r) => r.status === "success"),
  };
}

export interface ParsedDeviceResponse extends ParsedGeneralSigning {
  /** null → commandAccepted only. */
  readonly outcome: ExecutionOutcome | null;
}

/** Parses a device Response to a CS02b command (CRA 2, message code 0x0107, signed). */
export function parseDeviceResponse(bytes: Uint8Array): ParsedDeviceResponse {
  const g = parseGeneralSigning(bytes);
  if (g.header.cra !== CRA_RESPONSE || g.header.messageCode !== MESSAGE_CODE_CS02B)
    throw malformed("not a CS02b response");
  if (g.signature === null) throw malformed("the response is not signed");
  const b = g.content;
  const top = read(b, 0, b.length);
  if (top.end !== b.length) throw malformed("bytes after the response payload");
  const [accepted, outcome, extra] = kids(b, top, 0x30, "response");
  if (!accepted || accepted.tag !== 0x05 || accepted.end !== accepted.v || extra)
    throw malformed("response is not commandAccepted [ExecutionOutcome]");
  return { ...g, outcome: outcome ? decodeExecutionOutcome(b, outcome) : null };
}

export interface ParsedDeviceAlert extends ParsedGeneralSigning {
  readonly alertCode: number;
  /** GeneralizedTime as written, e.g. `20300102000000Z`. */
  readonly executionDateTime: string;
  readonly outcome: ExecutionOutcome;
}

/** Parses a future-dated execution alert (CRA 3, message code 0x00CB, signed). */
export function parseDeviceAlert(bytes: Uint8Array): ParsedDeviceAlert {
  const g = parseGeneralSigning(bytes);
  if (g.header.cra !== CRA_ALERT || g.header.messageCode !== MESSAGE_CODE_FUTURE_DATED_ALERT)
    throw malformed("not a future-dated execution alert");
  if (g.signature === null) throw malformed("the alert is not signed");
  const b = g.content;
  const top = read(b, 0, b.length);
  if (top.end !== b.length) throw malformed("bytes after the alert payload");
  const [code, time, outcome, extra] = kids(b, top, 0x30, "alert");
  if (!outcome || extra) throw malformed("alert is not {alertCode, executionDateTime, ExecutionOutcome}");
  return {
    ...g,
    alertCode: Number(big(b, code, "alertCode")),
    executionDateTime: val(b, time, 0x18, "executionDateTime").toString("latin1"),
    outcome: decodeExecutionOutcome(b, outcome),
  };
}
