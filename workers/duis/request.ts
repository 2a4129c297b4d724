/**
 * DUIS request structure (schema 5.x) and the SRV 6.23 body, validated for presence, order, type and
 * limits as the reference gives them (§2.2). The result is a typed object or a {@link DuisSchemaError}.
 *
 * XSD rules reproduced: elementFormDefault qualified (every element in the ServiceUserGateway
 * namespace), sequences in order with their occurrence bounds, element-only content (white space
 * between elements only), no attributes other than `xsi:*` (plus `schemaVersion` on the root), and
 * the simple types with their whiteSpace facet (token, boolean, integer, dateTime and base64Binary
 * collapse white space; xs:string keeps it).
 *
 * Requests for other SRVs are recognised from the header and returned as {@link OtherSrvRequest}; their
 * bodies are not validated here.
 */
import type { XmlDocument, XmlElement } from "../xml/parser";
import { textContent } from "../xml/parser";

export const SR_NS = "http://www.dccinterface.co.uk/ServiceUserGateway";
export const XSI_NS = "http://www.w3.org/2001/XMLSchema-instance";
const DSIG_NS = "http://www.w3.org/2000/09/xmldsig#";

/** The DUIS sentinel that cancels a pending future-dated 6.23 (reference §2.6). */
export const CANCELLATION_EXECUTION_TIME = Date.UTC(3000, 11, 31, 0, 0, 0);

export class DuisSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DuisSchemaError";
  }
}

export interface RequestId {
  /** As written (after token white-space collapse). */
  readonly text: string;
  /** Sending User ID, upper case with dashes. */
  readonly businessOriginatorId: string;
  /** Target Device ID, upper case with dashes. */
  readonly businessTargetId: string;
  /** Decimal, no leading zeros (0 … 18446744073709551615). */
  readonly originatorCounter: string;
}

export interface DuisHeader {
  readonly schemaVersion: string;
  readonly requestId: RequestId;
  readonly firstInSequence: boolean | null;
  readonly precedingServiceRequestId: RequestId | null;
  readonly commandVariant: number;
  readonly serviceReference: string;
  readonly serviceReferenceVariant: string;
}

export interface ReplacementCertificates {
  readonly digitalSigning: Buffer;
  readonly keyAgreement: Buffer | null;
  readonly keyAgreementTopUp: Buffer | null;
}

export type ExecutionForm = "immediate" | "future-dated" | "cancellation";

/** A structurally valid SRV 6.23 "Update Security Credentials (CoS)" request. */
export interface Srv623Request {
  readonly srv: "6.23";
  readonly header: DuisHeader;
  readonly form: ExecutionForm;
  /** ExecutionDateTime as written; null for an immediate request. */
  readonly executionDateTime: string | null;
  /** ExecutionDateTime as epoch ms (a missing time zone is read as UTC); null when immediate. */
  readonly executionTime: number | null;
  /** Decimal strings (0 … 2^63−1): they do not fit a JS number. */
  readonly supplierFloorSeqNumber: string;
  readonly supplierPrepaymentTopUpFloorSeqNumber: string | null;
  readonly replacementCertificates: ReplacementCertificates;
  /** DER of each CertificationPathCertificates/Certificate (1 … 3). */
  readonly certificationPathCertificates: readonly Buffer[];
  readonly applyTimeBasedCpvChecks: boolean;
  readonly importMpxn: string;
}

/** A well-formed DUIS request whose header names another SRV: recognised, not processed. */
export interface OtherSrvRequest {
  readonly srv: string;
  readonly header: DuisHeader;
}

export type DuisRequest = Srv623Request | OtherSrvRequest;

export function isSrv623(r: DuisRequest): r is Srv623Request {
  return r.srv === "6.23";
}

// ---- simple types ---------------------------------------------------------------------------------

const collapse = (s: string): string => s.replace(/[\t\n\r ]+/g, " ").trim();
const EUI = "[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}";
const REQUEST_ID = new RegExp(`^(${EUI}):(${EUI}):(0|[1-9][0-9]{0,19})$`);
const MAX_COUNTER = 18446744073709551615n;
const MAX_FLOOR = 9223372036854775807n;
const DATE_TIME = /^(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$/;

function parseRequestId(raw: string, what: string): RequestId {
  const text = collapse(raw);
  const m = REQUEST_ID.exec(text);
  if (!m) throw new DuisSchemaError(`${what} '${text}' is not EUI-64:EUI-64:counter`);
  if (BigInt(m[3]!) > MAX_COUNTER)
    throw new DuisSchemaError(`${what} counter is larger than 18446744073709551615`);
  return {
    text,
    businessOriginatorId: m[1]!.toUpperCase(),
    businessTargetId: m[2]!.toUpperCase(),
    originatorCounter: m[3]!,
  };
}

function parseBoolean(raw: string, what: string): boolean {
  const v = collapse(raw);
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new DuisSchemaError(`${what} '${v}' is not an xs:boolean`);
}

function parseNonNegative(raw: string, what: string, max: bigint): string {
  const v = collapse(raw);
  if (!/^\+?[0-9]{1,40}$/.test(v)) throw new DuisSchemaError(`${what} '${v}' is not a non-negative integer`);
  const n = BigInt(v.replace(/^\+/, ""));
  if (n > max) throw new DuisSchemaError(`${what} ${n} is larger than ${max}`);
  return n.toString();
}

function parseDateTime(raw: string, what: string): [string, number] {
  const v = collapse(raw);
  const m = DATE_TIME.exec(v);
  if (!m) throw new DuisSchemaError(`${what} '${v}' is not an xs:dateTime`);
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const endOfDay = hour === 24 && minute === 0 && second === 0 && (!frac || /^\.0+$/.test(frac));
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > 31 ||
    (hour > 23 && !endOfDay) ||
    minute > 59 ||
    second > 59
  ) {
    throw new DuisSchemaError(`${what} '${v}' is not a valid date and time`);
  }
  const date = new Date(Date.UTC(year, month - 1, day));
  date.setUTCFullYear(year);
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day)
    throw new DuisSchemaError(`${what} '${v}' is not a valid date`);
  let t = date.getTime() + ((endOfDay ? 24 : hour) * 3600 + minute * 60 + second) * 1000;
  if (frac) t += Math.floor(Number(`0${frac}`) * 1000);
  if (tz && tz !== "Z") {
    const sign = tz[0] === "-" ? -1 : 1;
    const oh = Number(tz.slice(1, 3));
    const om = Number(tz.slice(4, 6));
    if (oh > 14 || om > 59) throw new DuisSchemaError(`${what} '${v}' has an invalid time zone`);
    t -= sign * (oh * 60 + om) * 60_000;
  }
  return [v, t];
}

const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;
/** Largest certificate accepted (SMKI certificates are about 400–500 bytes). [I] */
export const MAX_CERTIFICATE_BYTES = 4096;

/**
 * DER of certificate texts that passed the checks below, by their exact text (after white space is
 * removed): the same few replacement and OCA certificates arrive in request after request, and the
 * alphabet, decode and re-encode checks cost ~1.5 µs each. A hit hands out a copy, so no caller can
 * change what the next request gets. Bounded in entries and in text length.
 */
const checkedCertificates = new Map<string, Buffer>();
const MAX_CHECKED_CERTIFICATES = 1024;
const MAX_CERTIFICATE_TEXT = Math.ceil(MAX_CERTIFICATE_BYTES / 3) * 4;

function parseCertificate(raw: string, what: string): Buffer {
  const v =
    raw.indexOf(" ") >= 0 || raw.indexOf("\n") >= 0 || raw.indexOf("\t") >= 0 || raw.indexOf("\r") >= 0
      ? raw.replace(/[\t\n\r ]+/g, "")
      : raw;
  const known = checkedCertificates.get(v);
  if (known) return Buffer.from(known);
  const der = checkCertificateText(v, what);
  if (v.length <= MAX_CERTIFICATE_TEXT) {
    if (checkedCertificates.size >= MAX_CHECKED_CERTIFICATES) checkedCertificates.clear();
    checkedCertificates.set(v, Buffer.from(der));
  }
  return der;
}

function checkCertificateText(v: string, what: string): Buffer {
  // Node's decoder skips bad characters silently: check the alphabet and the padding, then that the
  // bytes encode back to the same text (a cheap canonical check, no backtracking regex).
  if (v.length === 0 || v.length % 4 !== 0 || !BASE64_TEXT.test(v))
    throw new DuisSchemaError(`${what} is not base64`);
  const der = Buffer.from(v, "base64");
  if (der.toString("base64") !== v) throw new DuisSchemaError(`${what} is not canonical base64`);
  if (der.length > MAX_CERTIFICATE_BYTES)
    throw new DuisSchemaError(`${what} is ${der.length} bytes, more than ${MAX_CERTIFICATE_BYTES}`);
  return der;
}

function optionalCertificate(el: XmlElement | undefined, what: string): Buffer | null {
  return el ? parseCertificate(simpleText(el), what) : null;
}

// ---- structure --------------------------------------------------------------------------------------

/** Element-only content: the element children, refusing non-white-space text and foreign elements. */
function elementChildren(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) {
    if (c.kind === "text") {
      if (c.value.trim() !== "") throw new DuisSchemaError(`text is not allowed directly inside ${el.local}`);
    } else {
      out.push(c);
    }
  }
  return out;
}

/** Simple content: text only, no child elements. */
function simpleText(el: XmlElement): string {
  for (const c of el.children)
    if (c.kind === "element") throw new DuisSchemaError(`${el.local} may not contain the element ${c.local}`);
  return textContent(el);
}

function checkAttributes(el: XmlElement, allowed: readonly string[] = []): void {
  for (const a of el.attributes) {
    if (a.ns === XSI_NS) {
      if (a.local === "nil" || a.local === "type")
        throw new DuisSchemaError(`xsi:${a.local} is not accepted on ${el.local}`);
      continue;
    }
    if (a.ns === "" && allowed.includes(a.local)) continue;
    throw new DuisSchemaError(`attribute ${a.name} is not allowed on ${el.local}`);
  }
}

interface Particle {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly ns?: string;
}

/**
 * Matches element children against a sequence of particles; returns them grouped by particle, or
 * throws a message that says which element is missing, unexpected or out of order.
 */
function matchSequence(
  parent: XmlElement,
  kids: readonly XmlElement[],
  particles: readonly Particle[],
): XmlElement[][] {
  const groups: XmlElement[][] = [];
  for (let p = 0; p < particles.length; p++) groups.push([]);
  let i = 0;
  for (let p = 0; p < particles.length; p++) {
    const part = particles[p]!;
    const ns = part.ns ?? SR_NS;
    while (i < kids.length && kids[i]!.local === part.name && kids[i]!.ns === ns) {
      if (groups[p]!.length >= part.max)
        throw new DuisSchemaError(`${part.name} appears more than ${part.max} time(s) in ${parent.local}`);
      groups[p]!.push(kids[i]!);
      i++;
    }
    if (groups[p]!.length < part.min) {
      const found = kids[i];
      if (found && !isParticle(particles, found)) throw unexpected(found, parent);
      if (kids.some((k, j) => j >= i && k.local === part.name && k.ns === ns))
        throw new DuisSchemaError(`${part.name} is out of order in ${parent.local}`);
      throw new DuisSchemaError(
        `${part.name} is missing from ${parent.local}${found ? ` (found ${found.local})` : ""}`,
      );
    }
  }
  if (i < kids.length) {
    const extra = kids[i]!;
    if (isParticle(particles, extra))
      throw new DuisSchemaError(`${extra.local} is out of order or repeated in ${parent.local}`);
    throw unexpected(extra, parent);
  }
  return groups;
}

function isParticle(particles: readonly Particle[], el: XmlElement): boolean {
  for (const q of particles) if (q.name === el.local && (q.ns ?? SR_NS) === el.ns) return true;
  return false;
}

function unexpected(el: XmlElement, parent: XmlElement): DuisSchemaError {
  return new DuisSchemaError(
    `unexpected element ${el.ns === SR_NS ? el.local : `{${el.ns}}${el.local}`} in ${parent.local}`,
  );
}

const first = (g: XmlElement[][], i: number): XmlElement | undefined => g[i]![0];

/** Header: reference §2.2 (RequestID, FirstInSequence?, PrecedingServiceRequestID?, CommandVariant, ServiceReference, ServiceReferenceVariant). */
const HEADER: readonly Particle[] = [
  { name: "RequestID", min: 1, max: 1 },
  { name: "FirstInSequence", min: 0, max: 1 },
  { name: "PrecedingServiceRequestID", min: 0, max: 1 },
  { name: "CommandVariant", min: 1, max: 1 },
  { name: "ServiceReference", min: 1, max: 1 },
  { name: "ServiceReferenceVariant", min: 1, max: 1 },
];

/** Body of a 6.23: reference §2.2, rows 1–7, in this order. */
const UPDATE_SECURITY_CREDENTIALS_COS: readonly Particle[] = [
  { name: "ExecutionDateTime", min: 0, max: 1 },
  { name: "SupplierFloorSeqNumber", min: 1, max: 1 },
  { name: "SupplierPrepaymentTopUpFloorSeqNumber", min: 0, max: 1 },
  { name: "SupplierReplacementCertificates", min: 1, max: 1 },
  { name: "CertificationPathCertificates", min: 1, max: 1 },
  { name: "ApplyTimeBasedCPVChecks", min: 1, max: 1 },
  { name: "ImportMPxN", min: 1, max: 1 },
];

/** ReplacementCertificatesCoS: DS (1), KA (0..1), KA top-up (0..1). */
const REPLACEMENT_CERTIFICATES_COS: readonly Particle[] = [
  { name: "DigitalSigningCertificate", min: 1, max: 1 },
  { name: "KeyAgreementCertificate", min: 0, max: 1 },
  { name: "KeyAgreementTopUpCertificate", min: 0, max: 1 },
];

function parseHeader(header: XmlElement, schemaVersion: string): DuisHeader {
  checkAttributes(header);
  const g = matchSequence(header, elementChildren(header), HEADER);
  for (const group of g) for (const el of group) checkAttributes(el);
  const requestId = parseRequestId(simpleText(first(g, 0)!), "RequestID");
  const fis = first(g, 1);
  const psr = first(g, 2);
  const cvText = collapse(simpleText(first(g, 3)!));
  if (!/^\+?0*[1-9]$/.test(cvText))
    throw new DuisSchemaError(`CommandVariant '${cvText}' is not one of 1 … 9`);
  const serviceReference = collapse(simpleText(first(g, 4)!));
  const serviceReferenceVariant = collapse(simpleText(first(g, 5)!));
  // The enumerations are long and change between schema versions: accept their shape here; the
  // SRV itself decides what is processed.
  if (!/^\d{1,2}\.\d{1,2}$/.test(serviceReference))
    throw new DuisSchemaError(`ServiceReference '${serviceReference}' is not an SRV number`);
  if (!/^\d{1,2}(\.\d{1,2}){1,3}$/.test(serviceReferenceVariant)) {
    throw new DuisSchemaError(`ServiceReferenceVariant '${serviceReferenceVariant}' is not an SRV variant`);
  }
  if (
    !serviceReferenceVariant.startsWith(serviceReference) ||
    !/^(\.|$)/.test(serviceReferenceVariant.slice(serviceReference.length))
  ) {
    throw new DuisSchemaError(
      `ServiceReferenceVariant ${serviceReferenceVariant} does not belong to ServiceReference ${serviceReference}`,
    );
  }
  return {
    schemaVersion,
    requestId,
    firstInSequence: fis ? parseBoolean(simpleText(fis), "FirstInSequence") : null,
    precedingServiceRequestId: psr ? parseRequestId(simpleText(psr), "PrecedingServiceRequestID") : null,
    commandVariant: Number(cvText),
    serviceReference,
    serviceReferenceVariant,
  };
}

function parseSrv623Body(body: XmlElement, header: DuisHeader): Srv623Request {
  const usc = matchSequence(body, elementChildren(body), [
    { name: "UpdateSecurityCredentialsCoS", min: 1, max: 1 },
  ])[0]![0]!;
  checkAttributes(usc);
  const g = matchSequence(usc, elementChildren(usc), UPDATE_SECURITY_CREDENTIALS_COS);
  for (const group of g) for (const el of group) checkAttributes(el);
  const execEl = first(g, 0);
  let executionDateTime: string | null = null;
  let executionTime: number | null = null;
  if (execEl) [executionDateTime, executionTime] = parseDateTime(simpleText(execEl), "ExecutionDateTime");
  const form: ExecutionForm =
    executionTime === null
      ? "immediate"
      : executionTime === CANCELLATION_EXECUTION_TIME
        ? "cancellation"
        : "future-dated";
  const supplierFloorSeqNumber = parseNonNegative(
    simpleText(first(g, 1)!),
    "SupplierFloorSeqNumber",
    MAX_FLOOR,
  );
  const topUpEl = first(g, 2);
  const supplierPrepaymentTopUpFloorSeqNumber = topUpEl
    ? parseNonNegative(simpleText(topUpEl), "SupplierPrepaymentTopUpFloorSeqNumber", MAX_FLOOR)
    : null;

  const rcEl = first(g, 3)!;
  const rc = matchSequence(rcEl, elementChildren(rcEl), REPLACEMENT_CERTIFICATES_COS);
  for (const group of rc) for (const el of group) checkAttributes(el);
  const replacementCertificates: ReplacementCertificates = {
    digitalSigning: optionalCertificate(first(rc, 0), "DigitalSigningCertificate")!,
    keyAgreement: optionalCertificate(first(rc, 1), "KeyAgreementCertificate"),
    keyAgreementTopUp: optionalCertificate(first(rc, 2), "KeyAgreementTopUpCertificate"),
  };

  const cpEl = first(g, 4)!;
  const cp = matchSequence(cpEl, elementChildren(cpEl), [{ name: "Certificate", min: 1, max: 3 }])[0]!;
  const certificationPathCertificates: Buffer[] = [];
  for (let i = 0; i < cp.length; i++) {
    checkAttributes(cp[i]!);
    certificationPathCertificates.push(
      parseCertificate(simpleText(cp[i]!), `CertificationPathCertificates/Certificate[${i + 1}]`),
    );
  }
  const applyTimeBasedCpvChecks = parseBoolean(simpleText(first(g, 5)!), "ApplyTimeBasedCPVChecks");
  const importMpxn = simpleText(first(g, 6)!);
  if (importMpxn.length < 1 || importMpxn.length > 13)
    throw new DuisSchemaError(`ImportMPxN must be 1 to 13 characters; it is ${importMpxn.length}`);
  return {
    srv: "6.23",
    header,
    form,
    executionDateTime,
    executionTime,
    supplierFloorSeqNumber,
    supplierPrepaymentTopUpFloorSeqNumber,
    replacementCertificates,
    certificationPathCertificates,
    applyTimeBasedCpvChecks,
    importMpxn,
  };
}

export interface ReadRequestOptions {
  /** Most ds:Signature elements accepted after the body (the User's + countersignatures). Default 3. */
  readonly maxSignatures?: number;
}

/**
 * Reads a parsed DUIS document as a request: the root, the header, and — for SRV 6.23 — the body.
 * Throws DuisSchemaError with a message that names the element at fault.
 */
export function readDuisRequest(doc: XmlDocument, options: ReadRequestOptions = {}): DuisRequest {
  const root = doc.root;
  if (root.ns !== SR_NS || root.local !== "Request") {
    throw new DuisSchemaError(
      `the document element is {${root.ns}}${root.local}, not sr:Request in ${SR_NS}`,
    );
  }
  checkAttributes(root, ["schemaVersion"]);
  const sv = root.attributes.find((a) => a.ns === "" && a.local === "schemaVersion");
  if (!sv) throw new DuisSchemaError("sr:Request has no schemaVersion");
  const schemaVersion = collapse(sv.value);
  if (!/^\+?0*5(\.\d+)?$/.test(schemaVersion))
    throw new DuisSchemaError(`schemaVersion '${schemaVersion}' is not accepted (DUIS 5.x only)`);
  const kids = elementChildren(root);
  const [headers, bodies] = matchSequence(root, kids, [
    { name: "Header", min: 1, max: 1 },
    { name: "Body", min: 1, max: 1 },
    { name: "Signature", min: 0, max: options.maxSignatures ?? 3, ns: DSIG_NS },
  ]);
  const header = parseHeader(headers![0]!, schemaVersion);
  const body = bodies![0]!;
  checkAttributes(body);
  if (header.serviceReference !== "6.23") return { srv: header.serviceReferenceVariant, header };
  if (header.serviceReferenceVariant !== "6.23")
    throw new DuisSchemaError(`ServiceReferenceVariant ${header.serviceReferenceVariant} is not 6.23`);
  return parseSrv623Body(body, header);
}
