/**
 * GBCS CS02b "Update Security Credentials" pre-command (message code 0x0107, credentialsReplacementMode 7
 * supplierByTransCoS) as the CoS Party produces it: the General-Signing APDU whose grouping header names
 * the CoS Party as originator with its own per-device counter, the DER command payload, and the CoS
 * Party's ECDSA P-256 signature as raw r‖s. Layout and field tags: docs/gbcs.md; reference §3.1–3.2.
 *
 * Pure bytes in, bytes out: it runs inline or on the worker pool. The decoder is strict: it accepts only
 * what the encoder would produce (DER re-encoding must give the same bytes), so the DSP dispatch check
 * and the device simulator can compare a pre-command with the request field by field and byte by byte.
 */
import type { EcdsaP256, EcPrivateKey, EcPublicKey } from "../crypto/ecdsa";
import { EcosError } from "../../processors/runtime/errors";
import { children, DerError, readTlv, type Tlv } from "../smki/der";

export const MESSAGE_CODE_CS02B = 0x0107;
export const MODE_SUPPLIER_BY_TRANS_COS = 7;
/** GBCS remote party roles used here (reference §1.2). */
export const ROLE_SUPPLIER = 2;
export const ROLE_TRANSITIONAL_COS = 5;
/** specialistFloorSeqNumbers usage 0 = prepayment top-up; trust anchor cellUsage 1 = prePaymentTopUp. */
export const SPECIALIST_USAGE_PREPAYMENT_TOP_UP = 0;
export const CELL_USAGE_PREPAYMENT_TOP_UP = 1;
/** The GBCS cancellation sentinel for executionDateTime (reference §2.6, RTDS cancellation vector). */
export const GBCS_CANCELLATION_SENTINEL = "99991231235959Z";
/** The DUIS cancellation ExecutionDateTime (3000-12-31T00:00:00Z) as epoch ms. */
export const DUIS_CANCELLATION_MS = Date.UTC(3000, 11, 31, 0, 0, 0);
/** General-Signing CRA flags. */
export const CRA_COMMAND = 1;
export const CRA_RESPONSE = 2;
export const CRA_ALERT = 3;
/** Largest floor sequence number DUIS allows (2^63 − 1). */
export const MAX_FLOOR = (1n << 63n) - 1n;
/** Largest originator counter the 8-byte header field holds. */
export const MAX_COUNTER = (1n << 64n) - 1n;

export type CellKeyUsage = "digitalSignature" | "keyAgreement";

/** Identifies a trust anchor cell on the device: role, key usage and (optionally) the cell usage. */
export interface TrustAnchorCellId {
  readonly role: number;
  readonly keyUsage: CellKeyUsage;
  /** 1 = prePaymentTopUp; absent for the default cell. */
  readonly cellUsage?: number;
}

export interface SpecialistFloor {
  readonly usage: number;
  readonly seqNumber: bigint;
}

export interface SeqNumberChange {
  readonly role: number;
  readonly floorSeqNumber: bigint;
  /** Empty → the field is absent. */
  readonly specialistFloors: readonly SpecialistFloor[];
}

export interface Replacement {
  readonly certificate: Uint8Array;
  readonly targetCell: TrustAnchorCellId;
}

export type Execution =
  | { readonly kind: "immediate" }
  | { readonly kind: "futureDated"; readonly at: number }
  | { readonly kind: "cancellation" };

/** The UpdateSecurityCredentials command payload (reference §3.2). */
export interface UpdateSecurityCredentials {
  readonly mode: number;
  /** true → [1] absent (device default "apply"); false → [1] = disapply(1). */
  readonly applyTimeBasedCpvChecks: boolean;
  readonly authorisingCell: TrustAnchorCellId;
  /** Equals the grouping header's originator counter. */
  readonly authorisingSeqNumber: bigint;
  /** null → [6] absent (cancellation). */
  readonly seqNumberChanges: readonly SeqNumberChange[] | null;
  readonly replacements: readonly Replacement[];
  readonly certificationPath: readonly Uint8Array[];
  readonly execution: Execution;
}

/** The General-Signing grouping header (reference §3.1). */
export interface GeneralSigningHeader {
  readonly cra: number;
  readonly originatorCounter: bigint;
  /** 8-byte entity ids. */
  readonly originator: Buffer;
  readonly recipient: Buffer;
  /** 12-byte DLMS date-time, or null (absent, as in every command). */
  readonly dateTime: Buffer | null;
  readonly messageCode: number;
}

export interface ParsedGeneralSigning {
  readonly header: GeneralSigningHeader;
  readonly content: Buffer;
  /** The bytes the signature covers: everything after 0xDF up to the end of the content. */
  readonly signedBytes: Buffer;
  /** Raw r‖s, or null when the APDU ends with an empty signature (0x00). */
  readonly signature: Buffer | null;
}

export interface ParsedPreCommand extends ParsedGeneralSigning {
  readonly payload: UpdateSecurityCredentials;
  readonly signature: Buffer;
}

function malformed(message: string, cause?: unknown): EcosError {
  return new EcosError("ECOS_GBCS_MALFORMED", message, cause === undefined ? {} : { cause });
}

// ---------------------------------------------------------------------------------------------------
// DER writing (definite, minimal lengths)

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

function integerContent(n: bigint): Buffer {
  if (n < 0n) throw malformed("negative INTEGER");
  let hex = n.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  const b = Buffer.from(hex, "hex");
  return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}

const integer = (n: bigint | number, tag = 0x02): Buffer => tlv(tag, integerContent(BigInt(n)));
const seq = (...parts: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(parts));

/** Key-usage BIT STRINGs exactly as GBCS writes them (reference §3.2). */
const KEY_USAGE_DER: Record<CellKeyUsage, Buffer> = {
  digitalSignature: Buffer.from("03020780", "hex"),
  keyAgreement: Buffer.from("03020308", "hex"),
};

function encodeCell(cell: TrustAnchorCellId, tag = 0x30): Buffer {
  const parts = [integer(cell.role), KEY_USAGE_DER[cell.keyUsage]];
  if (cell.cellUsage !== undefined) parts.push(integer(cell.cellUsage));
  return tlv(tag, Buffer.concat(parts));
}

function generalizedTime(ms: number): string {
  if (!Number.isFinite(ms) || ms % 1000 !== 0 || ms < 0 || ms >= Date.UTC(10000, 0, 1))
    throw malformed("executionDateTime must be a whole second in years 1970-9999");
  const iso = new Date(ms).toISOString(); // 2030-01-02T00:00:00.000Z
  return iso.slice(0, 19).replace(/[-:T]/g, "") + "Z";
}

/** DER of the UpdateSecurityCredentials payload. */
export function encodeUpdateSecurityCredentials(p: UpdateSecurityCredentials): Buffer {
  if (p.replacements.length === 0) throw malformed("a pre-command replaces at least one certificate");
  const control: Buffer[] = [integer(p.mode)];
  if (!p.applyTimeBasedCpvChecks) control.push(integer(1, 0x81));
  control.push(encodeCell(p.authorisingCell, 0xa2));
  control.push(integer(p.authorisingSeqNumber, 0x83));
  if (p.seqNumberChanges !== null) {
    const changes = p.seqNumberChanges.map((c) => {
      const parts = [integer(c.role), integer(c.floorSeqNumber)];
      if (c.specialistFloors.length > 0)
        parts.push(seq(...c.specialistFloors.map((s) => seq(integer(s.usage), integer(s.seqNumber)))));
      return seq(...parts);
    });
    control.push(tlv(0xa6, Buffer.concat(changes)));
  }
  const parts: Buffer[] = [
    seq(...control),
    seq(...p.replacements.map((r) => seq(Buffer.from(r.certificate), encodeCell(r.targetCell)))),
    seq(...p.certificationPath.map((c) => Buffer.from(c))),
  ];
  if (p.execution.kind === "futureDated") parts.push(tlv(0x18, Buffer.from(generalizedTime(p.execution.at))));
  if (p.execution.kind === "cancellation") parts.push(tlv(0x18, Buffer.from(GBCS_CANCELLATION_SENTINEL)));
  return seq(...parts);
}

// ---------------------------------------------------------------------------------------------------
// DER reading (strict)

function readInteger(buf: Buffer, t: Tlv, what: string): bigint {
  const v = buf.subarray(t.valueStart, t.end);
  if (v.length === 0 || v.length > 9) throw malformed(`${what}: INTEGER of ${v.length} bytes`);
  if (v[0]! & 0x80) throw malformed(`${what}: negative INTEGER`);
  if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) throw malformed(`${what}: INTEGER not minimal`);
  return BigInt("0x" + v.toString("hex"));
}

function expect(buf: Buffer, t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined) throw malformed(`${what} missing`);
  if (t.tag !== tag) throw malformed(`${what}: tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return t;
}

function decodeCell(buf: Buffer, t: Tlv, what: string): TrustAnchorCellId {
  const [role, usage, cellUsage, extra] = children(buf, t);
  if (extra) throw malformed(`${what}: trailing element`);
  const ku = buf.subarray(expect(buf, usage, 0x03, `${what} keyUsage`).start, usage!.end);
  const keyUsage = (Object.keys(KEY_USAGE_DER) as CellKeyUsage[]).find((k) => KEY_USAGE_DER[k].equals(ku));
  if (!keyUsage) throw malformed(`${what}: key usage ${ku.toString("hex")} is neither DS nor KA`);
  const cell: TrustAnchorCellId = {
    role: Number(readInteger(buf, expect(buf, role, 0x02, `${what} role`), `${what} role`)),
    keyUsage,
  };
  if (cellUsage === undefined) return cell;
  return {
    ...cell,
    cellUsage: Number(
      readInteger(buf, expect(buf, cellUsage, 0x02, `${what} cellUsage`), `${what} cellUsage`),
    ),
  };
}

function parseGeneralizedTime(s: string): Execution {
  if (s === GBCS_CANCELLATION_SENTINEL) return { kind: "cancellation" };
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw malformed(`executionDateTime ${JSON.stringify(s)} is not YYYYMMDDHHMMSSZ`);
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const at = Date.UTC(y, mo - 1, d, h, mi, se);
  if (generalizedTime(at) !== s) throw malformed(`executionDateTime ${s} is not a valid date`);
  return { kind: "futureDated", at };
}

/** Decodes an UpdateSecurityCredentials payload; throws ECOS_GBCS_MALFORMED unless it is exactly canonical. */
export function decodeUpdateSecurityCredentials(der: Uint8Array): UpdateSecurityCredentials {
  const buf = Buffer.from(der);
  let p: UpdateSecurityCredentials;
  try {
    const top = readTlv(buf, 0);
    if (top.end !== buf.length) throw malformed("bytes after the payload");
    const [controlT, replT, pathT, timeT, extra] = children(buf, expect(buf, top, 0x30, "payload"));
    if (extra) throw malformed("payload: trailing element");
    const control = children(buf, expect(buf, controlT, 0x30, "authorisingRemotePartyControl"));
    let i = 0;
    const mode = Number(readInteger(buf, expect(buf, control[i++], 0x02, "mode"), "mode"));
    let applyTimeBasedCpvChecks = true;
    if (control[i]?.tag === 0x81) {
      const v = readInteger(buf, control[i++]!, "applyTimeBasedCPVChecks");
      if (v !== 1n) throw malformed("applyTimeBasedCPVChecks present but not disapply(1)");
      applyTimeBasedCpvChecks = false;
    }
    const authorisingCell = decodeCell(buf, expect(buf, control[i++], 0xa2, "TA cell identifier"), "TA cell");
    const authorisingSeqNumber = readInteger(
      buf,
      expect(buf, control[i++], 0x83, "authorisingRemotePartySeqNumber"),
      "authorisingRemotePartySeqNumber",
    );
    let seqNumberChanges: SeqNumberChange[] | null = null;
    if (control[i]?.tag === 0xa6) {
      seqNumberChanges = children(buf, control[i++]!).map((c) => {
        const [role, floor, specialist, more] = children(buf, expect(buf, c, 0x30, "seqNumberChange"));
        if (more) throw malformed("seqNumberChange: trailing element");
        return {
          role: Number(readInteger(buf, expect(buf, role, 0x02, "change role"), "change role")),
          floorSeqNumber: readInteger(buf, expect(buf, floor, 0x02, "floorSeqNumber"), "floorSeqNumber"),
          specialistFloors:
            specialist === undefined
              ? []
              : children(buf, expect(buf, specialist, 0x30, "specialistFloorSeqNumbers")).map((s) => {
                  const [u, n, x] = children(buf, expect(buf, s, 0x30, "specialistFloor"));
                  if (x) throw malformed("specialistFloor: trailing element");
                  return {
                    usage: Number(readInteger(buf, expect(buf, u, 0x02, "usage"), "usage")),
                    seqNumber: readInteger(buf, expect(buf, n, 0x02, "seqNumber"), "seqNumber"),
                  };
                }),
        };
      });
    }
    if (control[i] !== undefined)
      throw malformed(`unexpected control element tag 0x${control[i]!.tag.toString(16)}`);
    const replacements = children(buf, expect(buf, replT, 0x30, "replacements")).map((r) => {
      const [cert, cell, x] = children(buf, expect(buf, r, 0x30, "replacement"));
      if (x) throw malformed("replacement: trailing element");
      const c = expect(buf, cert, 0x30, "replacement certificate");
      return {
        certificate: Buffer.from(buf.subarray(c.start, c.end)),
        targetCell: decodeCell(buf, expect(buf, cell, 0x30, "targetCell"), "targetCell"),
      };
    });
    const certificationPath = children(buf, expect(buf, pathT, 0x30, "certificationPathCertificates")).map(
      (c) => Buffer.from(buf.subarray(expect(buf, c, 0x30, "path certificate").start, c.end)),
    );
    const execution: Execution =
      timeT === undefined
        ? { kind: "immediate" }
        : parseGeneralizedTime(
            buf
              .subarray(expect(buf, timeT, 0x18, "executionDateTime").valueStart, timeT.end)
              .toString("latin1"),
          );
    p = {
      mode,
      applyTimeBasedCpvChecks,
      authorisingCell,
      authorisingSeqNumber,
      seqNumberChanges,
      replacements,
      certificationPath,
      execution,
    };
  } catch (err) {
    if (err instanceof EcosError) throw err;
    if (err instanceof DerError) throw malformed(`payload: ${err.message}`, err);
    throw err;
  }
  // Strictness: only the canonical encoding is accepted (no BER variants, no non-minimal forms).
  if (!encodeUpdateSecurityCredentials(p).equals(buf)) throw malformed("payload is not in canonical DER");
  return p;
}

// ---------------------------------------------------------------------------------------------------
// General-Signing APDU

/** 8-byte entity id from a DUIS EUI-64 (`90-B3-D5-1F-30-00-00-04`) or 16 hex digits. */
export function entityIdBytes(id: string): Buffer {
  const hex = id.replace(/-/g, "");
  if (!/^[0-9A-Fa-f]{16}$/.test(hex)) throw malformed(`entity id ${JSON.stringify(id)} is not an EUI-64`);
  return Buffer.from(hex, "hex");
}

/** DUIS form of an 8-byte entity id. */
export function entityIdString(b: Uint8Array): string {
  return Buffer.from(b).toString("hex").toUpperCase().match(/../g)!.join("-");
}

/** The General-Signing APDU without a signature (ends with 0x00), as the signer sees it. */
export function encodeGeneralSigning(h: GeneralSigningHeader, content: Uint8Array): Buffer {
  if (h.originator.length !== 8 || h.recipient.length !== 8) throw malformed("entity ids are 8 bytes");
  if (h.originatorCounter < 0n || h.originatorCounter > MAX_COUNTER) throw malformed("counter out of range");
  if (h.dateTime !== null && h.dateTime.length !== 12) throw malformed("DLMS date-time is 12 bytes");
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(h.originatorCounter);
  const code = Buffer.alloc(2);
  code.writeUInt16BE(h.messageCode);
  return Buffer.concat([
    Buffer.from([0xdf, 0x09, h.cra]),
    counter,
    Buffer.from([0x08]),
    h.originator,
    Buffer.from([0x08]),
    h.recipient,
    h.dateTime === null ? Buffer.from([0x00]) : Buffer.concat([Buffer.from([0x0c]), h.dateTime]),
    Buffer.from([0x02]),
    code,
    lengthBytes(content.length),
    content,
    Buffer.from([0x00]),
  ]);
}

/** Signs an unsigned General-Signing APDU (GBCS rule, reference §3.1): drop the trailing 0x00, sign after 0xDF. */
export function signGeneralSigning(unsigned: Uint8Array, ecdsa: EcdsaP256, key: EcPrivateKey): Buffer {
  const u = Buffer.from(unsigned);
  if (u[0] !== 0xdf || u[u.length - 1] !== 0x00) throw malformed("not an unsigned General-Signing APDU");
  const body = u.subarray(0, u.length - 1);
  const signature = ecdsa.sign(key, body.subarray(1));
  return Buffer.concat([body, Buffer.from([0x40]), signature]);
}

/** Parses a General-Signing APDU strictly (no trailing bytes; signature absent or exactly 64 bytes). */
export function parseGeneralSigning(bytes: Uint8Array): ParsedGeneralSigning {
  const b = Buffer.from(bytes);
  let pos = 0;
  const need = (n: number, what: string): Buffer => {
    if (pos + n > b.length) throw malformed(`General-Signing truncated in ${what}`);
    const out = b.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const fixed = (value: number, what: string): void => {
    const v = need(1, what)[0];
    if (v !== value) throw malformed(`${what}: 0x${v?.toString(16)} where 0x${value.toString(16)} belongs`);
  };
  fixed(0xdf, "General-Signing tag");
  fixed(0x09, "transaction id length");
  const cra = need(1, "CRA flag")[0]!;
  if (cra < 1 || cra > 3) throw malformed(`CRA flag ${cra}`);
  const originatorCounter = need(8, "originator counter").readBigUInt64BE();
  fixed(0x08, "originator system title length");
  const originator = Buffer.from(need(8, "originator"));
  fixed(0x08, "recipient system title length");
  const recipient = Buffer.from(need(8, "recipient"));
  const dtLen = need(1, "date-time")[0]!;
  if (dtLen !== 0 && dtLen !== 12) throw malformed(`date-time length ${dtLen}`);
  const dateTime = dtLen === 0 ? null : Buffer.from(need(12, "date-time"));
  fixed(0x02, "other-information length");
  const messageCode = need(2, "message code").readUInt16BE();
  // The content length is a BER definite length; read it with the DER reader's rules (minimal form).
  let contentLength: number;
  let contentStart: number;
  try {
    const t = readTlv(Buffer.concat([Buffer.from([0x04]), b.subarray(pos)]), 0);
    contentLength = t.end - t.valueStart;
    contentStart = pos + t.valueStart - 1;
  } catch (err) {
    throw malformed(
      `General-Signing content length: ${err instanceof Error ? err.message : String(err)}`,
      err,
    );
  }
  pos = contentStart;
  const content = Buffer.from(need(contentLength, "content"));
  const signedBytes = Buffer.from(b.subarray(1, pos));
  const sigLen = need(1, "signature length")[0]!;
  if (sigLen !== 0 && sigLen !== 64) throw malformed(`signature length ${sigLen}`);
  const signature = sigLen === 0 ? null : Buffer.from(need(64, "signature"));
  if (pos !== b.length) throw malformed(`${b.length - pos} bytes after the General-Signing APDU`);
  return {
    header: { cra, originatorCounter, originator, recipient, dateTime, messageCode },
    content,
    signedBytes,
    signature,
  };
}

// ---------------------------------------------------------------------------------------------------
// The pre-command

export interface PreCommandInput {
  /** The CoS Party's entity id (originator). */
  readonly cosPartyId: string;
  /** The target device's id (recipient). */
  readonly deviceId: string;
  /** The CoS Party's per-device counter: header originator counter and authorisingRemotePartySeqNumber. */
  readonly counter: bigint;
  readonly payload: Omit<UpdateSecurityCredentials, "authorisingSeqNumber">;
}

/** The unsigned pre-command APDU (ends with the empty signature 0x00). */
export function encodeUnsignedPreCommand(input: PreCommandInput): Buffer {
  const payload = encodeUpdateSecurityCredentials({ ...input.payload, authorisingSeqNumber: input.counter });
  return encodeGeneralSigning(
    {
      cra: CRA_COMMAND,
      originatorCounter: input.counter,
      originator: entityIdBytes(input.cosPartyId),
      recipient: entityIdBytes(input.deviceId),
      dateTime: null,
      messageCode: MESSAGE_CODE_CS02B,
    },
    payload,
  );
}

/** Encodes and signs a pre-command with the CoS Party's transitionalCoS key. */
export function buildPreCommand(input: PreCommandInput, ecdsa: EcdsaP256, cosPartyKey: EcPrivateKey): Buffer {
  return signGeneralSigning(encodeUnsignedPreCommand(input), ecdsa, cosPartyKey);
}

/**
 * Parses a signed pre-command strictly: General-Signing with CRA 1, message code 0x0107, no date-time,
 * a 64-byte signature, a canonical payload in mode 7 whose authorisingRemotePartySeqNumber equals the
 * header counter and whose authorising cell is the transitionalCoS digitalSignature cell.
 */
export function parsePreCommand(bytes: Uint8Array): ParsedPreCommand {
  const g = parseGeneralSigning(bytes);
  if (g.header.cra !== CRA_COMMAND) throw malformed(`CRA flag ${g.header.cra}, a command has 1`);
  if (g.header.messageCode !== MESSAGE_CODE_CS02B)
    throw malformed(`message code 0x${g.header.messageCode.toString(16)}, CS02b is 0x0107`);
  if (g.header.dateTime !== null) throw malformed("a command carries no date-time");
  if (g.signature === null) throw malformed("the pre-command is not signed");
  const payload = decodeUpdateSecurityCredentials(g.content);
  if (payload.mode !== MODE_SUPPLIER_BY_TRANS_COS)
    throw malformed(`credentialsReplacementMode ${payload.mode}`);
  if (payload.authorisingSeqNumber !== g.header.originatorCounter)
    throw malformed("authorisingRemotePartySeqNumber differs from the header counter");
  const c = payload.authorisingCell;
  if (c.role !== ROLE_TRANSITIONAL_COS || c.keyUsage !== "digitalSignature" || c.cellUsage !== undefined)
    throw malformed("authorising cell is not the transitionalCoS digitalSignature cell");
  return { ...g, signature: g.signature, payload };
}

/** Verifies the CoS Party signature over a parsed pre-command. */
export function verifyPreCommandSignature(
  p: ParsedGeneralSigning,
  ecdsa: EcdsaP256,
  key: EcPublicKey,
): boolean {
  return p.signature !== null && ecdsa.verify(key, p.signedBytes, p.signature);
}

/**
 * The DSP dispatch check (reference §5.4 item 4): everything the pre-command says, compared with what the
 * request asks for. The expected APDU is re-encoded from the request and compared byte for byte; on a
 * difference, the differing fields are named. Empty list = mirrors exactly.
 */
export function preCommandMismatches(p: ParsedPreCommand, expected: PreCommandInput): string[] {
  const want = encodeUnsignedPreCommand(expected);
  const got = Buffer.concat([Buffer.from([0xdf]), p.signedBytes, Buffer.from([0x00])]);
  if (want.equals(got)) return [];
  const out: string[] = [];
  const e = parseGeneralSigning(want);
  const ep = decodeUpdateSecurityCredentials(e.content);
  if (e.header.originatorCounter !== p.header.originatorCounter) out.push("counter");
  if (!e.header.originator.equals(p.header.originator)) out.push("originator");
  if (!e.header.recipient.equals(p.header.recipient)) out.push("recipient");
  const a = p.payload;
  if (ep.applyTimeBasedCpvChecks !== a.applyTimeBasedCpvChecks) out.push("applyTimeBasedCpvChecks");
  const ser = (x: unknown): string =>
    JSON.stringify(x, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  if (ser(ep.seqNumberChanges) !== ser(a.seqNumberChanges)) out.push("seqNumberChanges");
  if (ser(ep.execution) !== ser(a.execution)) out.push("execution");
  const sameList = (x: readonly Uint8Array[], y: readonly Uint8Array[]): boolean =>
    x.length === y.length && x.every((v, i) => Buffer.from(v).equals(Buffer.from(y[i]!)));
  if (
    !sameList(
      ep.replacements.map((r) => r.certificate),
      a.replacements.map((r) => r.certificate),
    )
  )
    out.push("replacementCertificates");
  if (ser(ep.replacements.map((r) => r.targetCell)) !== ser(a.replacements.map((r) => r.targetCell)))
    out.push("targetCells");
  if (!sameList(ep.certificationPath, a.certificationPath)) out.push("certificationPath");
  return out.length > 0 ? out : ["encoding"];
}

// ---------------------------------------------------------------------------------------------------
// From a 6.23 request to the payload

/** The parts of a DUIS 6.23 body the pre-command mirrors (reference §2.2). */
export interface Srv623Credentials {
  /** DUIS ExecutionDateTime as epoch ms; absent → immediate; 3000-12-31T00:00:00Z → cancellation. */
  readonly executionDateTime?: number;
  readonly supplierFloorSeqNumber: bigint;
  readonly supplierPrepaymentTopUpFloorSeqNumber?: bigint;
  readonly digitalSigningCertificate: Uint8Array;
  readonly keyAgreementCertificate?: Uint8Array;
  readonly keyAgreementTopUpCertificate?: Uint8Array;
  readonly certificationPathCertificates: readonly Uint8Array[];
  readonly applyTimeBasedCpvChecks: boolean;
}

/**
 * The pre-command payload (without the counter) for a 6.23: mode 7, authorised by the transitionalCoS
 * DS cell; replacements DS, KA, KA top-up in that order (RTDS order); floors as [6] unless cancelling.
 */
export function payloadFor623(r: Srv623Credentials): Omit<UpdateSecurityCredentials, "authorisingSeqNumber"> {
  for (const f of [r.supplierFloorSeqNumber, r.supplierPrepaymentTopUpFloorSeqNumber]) {
    if (f !== undefined && (f < 0n || f > MAX_FLOOR)) throw malformed("floor sequence number out of range");
  }
  const replacements: Replacement[] = [
    {
      certificate: r.digitalSigningCertificate,
      targetCell: { role: ROLE_SUPPLIER, keyUsage: "digitalSignature" },
    },
  ];
  if (r.keyAgreementCertificate)
    replacements.push({
      certificate: r.keyAgreementCertificate,
      targetCell: { role: ROLE_SUPPLIER, keyUsage: "keyAgreement" },
    });
  if (r.keyAgreementTopUpCertificate)
    replacements.push({
      certificate: r.keyAgreementTopUpCertificate,
      targetCell: { role: ROLE_SUPPLIER, keyUsage: "keyAgreement", cellUsage: CELL_USAGE_PREPAYMENT_TOP_UP },
    });
  const execution: Execution =
    r.executionDateTime === undefined
      ? { kind: "immediate" }
      : r.executionDateTime === DUIS_CANCELLATION_MS
        ? { kind: "cancellation" }
        : { kind: "futureDated", at: r.executionDateTime };
  const topUp = r.supplierPrepaymentTopUpFloorSeqNumber;
  return {
    mode: MODE_SUPPLIER_BY_TRANS_COS,
    applyTimeBasedCpvChecks: r.applyTimeBasedCpvChecks,
    authorisingCell: { role: ROLE_TRANSITIONAL_COS, keyUsage: "digitalSignature" },
    // The RTDS cancellation command carries no sequence-number changes (reference §2.6).
    seqNumberChanges:
      execution.kind === "cancellation"
        ? null
        : [
            {
              role: ROLE_SUPPLIER,
              floorSeqNumber: r.supplierFloorSeqNumber,
              specialistFloors:
                topUp === undefined ? [] : [{ usage: SPECIALIST_USAGE_PREPAYMENT_TOP_UP, seqNumber: topUp }],
            },
          ],
    replacements,
    certificationPath: r.certificationPathCertificates,
    execution,
  };
}
