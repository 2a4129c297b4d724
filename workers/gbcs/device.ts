/**
 * The device side of a CS02b Update Security Credentials command, for the device simulator: a device's
 * trust anchor cells and anti-replay floors, and what it does with a command (reference §3.3). Pure:
 * `receiveCommand` and `executeDue` take a device state and return the next one with the answer.
 *
 * What is real: the General-Signing parse (strict), the addressing, the CoS Party signature checked
 * with the key in the device's transitionalCoS cell, the counter against the cell's anti-replay floor,
 * the replacement certificates' role, key usage and certification path up to the device's root, time
 * checks unless disapplied, the cell replacement and the supplier floors the command sets.
 * What is modelled: the ACB MAC (not checked here; the device topic carries the pre-command APDU), the
 * answer (a structured GBCS-style response, not the signed response APDU), and the behaviour on a
 * refused command (GBCS devices raise an alert; here it is a `refused` answer with a reason) [GAP].
 */
import type { EcdsaP256 } from "../crypto/ecdsa";
import { parseCertificateCached, publicKeyOf, type SmkiCertificate } from "../smki/certificate";
import { TrustStore } from "../smki/trust";
import { EcosError } from "../../processors/runtime/errors";
import {
  CELL_USAGE_PREPAYMENT_TOP_UP,
  entityIdBytes,
  MODE_SUPPLIER_BY_TRANS_COS,
  parsePreCommand,
  ROLE_SUPPLIER,
  SPECIALIST_USAGE_PREPAYMENT_TOP_UP,
  verifyPreCommandSignature,
  type SeqNumberChange,
  type TrustAnchorCellId,
  type UpdateSecurityCredentials,
} from "./pre-command";

/** ReplacementOutcome status codes (GBCS ENUMERATED, reference §3.3). */
export const REPLACEMENT_STATUS = {
  success: 0,
  badCertificate: 5,
  noTrustAnchor: 10,
  insufficientMemory: 17,
  trustAnchorNotFound: 25,
  resourcesBusy: 30,
  other: 127,
} as const;
export type ReplacementStatus = keyof typeof REPLACEMENT_STATUS;

/** Alert codes raised at the execution of a future-dated command (reference §3.3). */
export const ALERT_FUTURE_DATED_SUCCESS = 0x8f66;
export const ALERT_FUTURE_DATED_FAILURE = 0x8f67;

/** The supplier trust anchor cells a 6.23 can replace. */
export type SupplierCell = "digitalSignature" | "keyAgreement" | "keyAgreementTopUp";

export interface DeviceFloors {
  /** Last counter accepted from the transitionalCoS cell's key. */
  readonly transitionalCoS: bigint;
  readonly supplier: bigint;
  readonly supplierPrepaymentTopUp: bigint;
}

export interface SimulatedDevice {
  readonly deviceId: string;
  /** DER of the root the device validates certification paths against (its root trust anchor cell). */
  readonly root: Uint8Array;
  /** DER of the CoS Party certificate in the transitionalCoS cell (ECoS or TCoS). */
  readonly transitionalCoS: Uint8Array;
  /** The supplier cells this device has (a missing key = no such cell on this device type). */
  readonly supplierCells: Readonly<Partial<Record<SupplierCell, Uint8Array>>>;
  readonly floors: DeviceFloors;
  /** An accepted future-dated command waiting for its execution time. */
  readonly pending: PendingCommand | null;
}

export interface PendingCommand {
  readonly at: number;
  readonly payload: UpdateSecurityCredentials;
}

export interface ReplacementOutcome {
  readonly targetCell: TrustAnchorCellId;
  readonly status: ReplacementStatus;
  /** Entity ids and SKIs as 16 upper-case hex digits ("" when not known). */
  readonly existingEntityId: string;
  readonly existingSki: string;
  readonly newEntityId: string;
  readonly newSki: string;
  /** Why the status is not success (for logs; not on the wire). */
  readonly reason?: string;
}

export interface ExecutionOutcome {
  readonly authorisingSeqNumber: bigint;
  readonly mode: number;
  readonly seqNumberChanges: readonly SeqNumberChange[];
  readonly replacementOutcomes: readonly ReplacementOutcome[];
  /** All replacements applied (they are applied all or none). */
  readonly success: boolean;
}

export type CommandRefusal =
  "malformed" | "notAddressedToDevice" | "unknownOriginator" | "signatureInvalid" | "counterReplayed";

export type DeviceAnswer =
  | { readonly kind: "refused"; readonly reason: CommandRefusal; readonly detail: string }
  /** Future-dated or cancellation: GBCS `commandAccepted`. */
  | { readonly kind: "accepted"; readonly counter: bigint }
  /** Immediate: `commandAccepted` plus the ExecutionOutcome. */
  | { readonly kind: "executed"; readonly counter: bigint; readonly outcome: ExecutionOutcome };

export interface DeviceAlert {
  readonly alertCode: number;
  readonly executionDateTime: number;
  readonly outcome: ExecutionOutcome;
}

const hex16 = (s: string | null | undefined): string => (s ?? "").replace(/[^0-9A-Fa-f]/g, "").toUpperCase();

function cellOf(id: TrustAnchorCellId): SupplierCell | null {
  if (id.role !== ROLE_SUPPLIER) return null;
  if (id.keyUsage === "digitalSignature") return id.cellUsage === undefined ? "digitalSignature" : null;
  if (id.cellUsage === undefined) return "keyAgreement";
  return id.cellUsage === CELL_USAGE_PREPAYMENT_TOP_UP ? "keyAgreementTopUp" : null;
}

/** One trust store per (root, implementation): its verified-signature cache spans the fleet. */
const trustStores = new Map<string, TrustStore>();
function trustFor(root: Uint8Array, ecdsa: EcdsaP256): TrustStore {
  const key = `${ecdsa.name}|${parseCertificateCached(root).derHash}`;
  let t = trustStores.get(key);
  if (!t) {
    t = new TrustStore({ anchors: [root] }, ecdsa);
    trustStores.set(key, t);
  }
  return t;
}

function checkReplacement(
  device: SimulatedDevice,
  cert: Uint8Array,
  cell: SupplierCell,
  path: readonly SmkiCertificate[],
  at: number | null,
  ecdsa: EcdsaP256,
): { status: ReplacementStatus; reason?: string; parsed?: SmkiCertificate } {
  let c: SmkiCertificate;
  try {
    c = parseCertificateCached(cert);
  } catch (err) {
    return { status: "badCertificate", reason: err instanceof Error ? err.message : String(err) };
  }
  if (c.role !== ROLE_SUPPLIER || c.isCa)
    return { status: "badCertificate", reason: "not a supplier certificate" };
  const wantUsage = cell === "digitalSignature" ? "digitalSignature" : "keyAgreement";
  if (c.keyUsage.length !== 1 || c.keyUsage[0] !== wantUsage)
    return {
      status: "badCertificate",
      reason: `key usage ${c.keyUsage.join(",")} does not suit the ${cell} cell`,
    };
  const result = trustFor(device.root, ecdsa).validate(c, { at, intermediates: path });
  if (result.ok) return { status: "success", parsed: c };
  // No issuer at all among the path certificates and the root → the device cannot anchor it.
  const root = parseCertificateCached(device.root);
  const issuerKnown = [...path, root].some((x) => x.subject.der.equals(c.issuer.der));
  return { status: issuerKnown ? "badCertificate" : "noTrustAnchor", reason: result.reason };
}

/** Applies a payload's replacements all or none; returns the next device state and the outcome. */
function apply(
  device: SimulatedDevice,
  p: UpdateSecurityCredentials,
  now: number,
  ecdsa: EcdsaP256,
): { device: SimulatedDevice; outcome: ExecutionOutcome } {
  let path: SmkiCertificate[] = [];
  let pathProblem: string | null = null;
  try {
    path = p.certificationPath.map((d) => parseCertificateCached(d));
  } catch (err) {
    pathProblem = err instanceof Error ? err.message : String(err);
  }
  const at = p.applyTimeBasedCpvChecks ? now : null;
  const seen = new Set<SupplierCell>();
  const checked = p.replacements.map((r) => {
    const cell = cellOf(r.targetCell);
    const existing = cell === null ? undefined : device.supplierCells[cell];
    const existingCert = existing === undefined ? undefined : parseCertificateCached(existing);
    const base = {
      targetCell: r.targetCell,
      existingEntityId: hex16(existingCert?.entityId),
      existingSki: hex16(existingCert?.subjectKeyId),
    };
    let verdict: { status: ReplacementStatus; reason?: string; parsed?: SmkiCertificate };
    if (cell === null || existing === undefined || seen.has(cell))
      verdict = {
        status: "trustAnchorNotFound",
        reason: "the device has no such cell (or it is named twice)",
      };
    else if (pathProblem !== null) verdict = { status: "badCertificate", reason: pathProblem };
    else verdict = checkReplacement(device, r.certificate, cell, path, at, ecdsa);
    if (cell !== null) seen.add(cell);
    return { cell, cert: r.certificate, base, verdict };
  });
  const success = checked.every((c) => c.verdict.status === "success");
  const replacementOutcomes: ReplacementOutcome[] = checked.map(({ base, verdict }) => {
    const status: ReplacementStatus = success || verdict.status !== "success" ? verdict.status : "other";
    const o = {
      ...base,
      status,
      newEntityId: status === "success" ? hex16(verdict.parsed?.entityId) : "",
      newSki: status === "success" ? hex16(verdict.parsed?.subjectKeyId) : "",
    };
    const reason = status === "other" ? "not applied: another replacement failed" : verdict.reason;
    return reason === undefined || status === "success" ? o : { ...o, reason };
  });
  const outcome = {
    authorisingSeqNumber: p.authorisingSeqNumber,
    mode: p.mode,
    seqNumberChanges: success ? (p.seqNumberChanges ?? []) : [],
    replacementOutcomes,
    success,
  };
  if (!success) return { device, outcome };
  const cells: Partial<Record<SupplierCell, Uint8Array>> = { ...device.supplierCells };
  for (const c of checked) if (c.cell !== null) cells[c.cell] = c.cert;
  let floors = device.floors;
  // otherRemotePartySeqNumberChanges resets the supplier's anti-replay floors (reference §3.2).
  for (const change of p.seqNumberChanges ?? []) {
    if (change.role !== ROLE_SUPPLIER) continue;
    floors = { ...floors, supplier: change.floorSeqNumber };
    for (const s of change.specialistFloors)
      if (s.usage === SPECIALIST_USAGE_PREPAYMENT_TOP_UP)
        floors = { ...floors, supplierPrepaymentTopUp: s.seqNumber };
  }
  return { device: { ...device, supplierCells: cells, floors }, outcome };
}

function refuse(device: SimulatedDevice, reason: CommandRefusal, detail: string): Received {
  return { device, answer: { kind: "refused", reason, detail } };
}

export interface Received {
  readonly device: SimulatedDevice;
  readonly answer: DeviceAnswer;
}

/**
 * A device receives a CS02b command (the signed pre-command APDU). Checks, in order: strict parse,
 * recipient = this device, originator = the entity in the transitionalCoS cell, the signature with that
 * cell's key, counter above the cell's floor. Then the floor moves to the counter and the command is
 * executed (immediate), held (future-dated, replacing any held one) or the held one dropped (cancellation).
 */
export function receiveCommand(
  device: SimulatedDevice,
  command: Uint8Array,
  now: number,
  ecdsa: EcdsaP256,
): Received {
  let parsed;
  try {
    parsed = parsePreCommand(command);
  } catch (err) {
    if (err instanceof EcosError) return refuse(device, "malformed", err.message);
    throw err;
  }
  const h = parsed.header;
  if (!h.recipient.equals(entityIdBytes(device.deviceId)))
    return refuse(device, "notAddressedToDevice", "recipient is another device");
  const cos = parseCertificateCached(device.transitionalCoS);
  if (cos.entityId === null || !h.originator.equals(entityIdBytes(cos.entityId)))
    return refuse(device, "unknownOriginator", "originator is not the party in the transitionalCoS cell");
  if (!verifyPreCommandSignature(parsed, ecdsa, publicKeyOf(cos, ecdsa)))
    return refuse(device, "signatureInvalid", "CoS Party signature does not verify");
  if (h.originatorCounter <= device.floors.transitionalCoS)
    return refuse(
      device,
      "counterReplayed",
      `counter ${h.originatorCounter} <= floor ${device.floors.transitionalCoS}`,
    );
  if (parsed.payload.mode !== MODE_SUPPLIER_BY_TRANS_COS) return refuse(device, "malformed", "mode");
  const counted: SimulatedDevice = {
    ...device,
    floors: { ...device.floors, transitionalCoS: h.originatorCounter },
  };
  const e = parsed.payload.execution;
  if (e.kind === "cancellation")
    return {
      device: { ...counted, pending: null },
      answer: { kind: "accepted", counter: h.originatorCounter },
    };
  if (e.kind === "futureDated")
    return {
      device: { ...counted, pending: { at: e.at, payload: parsed.payload } },
      answer: { kind: "accepted", counter: h.originatorCounter },
    };
  const done = apply(counted, parsed.payload, now, ecdsa);
  return {
    device: done.device,
    answer: { kind: "executed", counter: h.originatorCounter, outcome: done.outcome },
  };
}

/** Executes a held future-dated command once its time has come; the alert is 0x8F66 or 0x8F67. */
export function executeDue(
  device: SimulatedDevice,
  now: number,
  ecdsa: EcdsaP256,
): { device: SimulatedDevice; alert: DeviceAlert | null } {
  const p = device.pending;
  if (p === null || now < p.at) return { device, alert: null };
  const done = apply({ ...device, pending: null }, p.payload, now, ecdsa);
  return {
    device: done.device,
    alert: {
      alertCode: done.outcome.success ? ALERT_FUTURE_DATED_SUCCESS : ALERT_FUTURE_DATED_FAILURE,
      executionDateTime: p.at,
      outcome: done.outcome,
    },
  };
}
