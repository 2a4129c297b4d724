/**
 * The S1SP simulator's core: the SMETS1 Service Provider, pure and clock-driven like the fleet
 * (deploy/sim/fleet.ts). It takes S1spRequests (the 6.23 as countersigned by the DSP and the CoS
 * Party) and answers DeviceResponses with source S1SP after a drawn latency.
 *
 * Real: the request XML is parsed and read as a DUIS 6.23 (workers/duis), its header must name the
 * record's request, device and User; every XML signature is verified as DUIS does it
 * (workers/xmldsig: digest, signer certificate path to the root, ECDSA) — the User's, the DSP's
 * countersignature and the CoS Party's; the User's signer must be the requesting User and the DSP's
 * a dSPXmlSign certificate. A request id seen before for the device is refused as a replay.
 * Modelled: what the S1SP does behind its interface (SMETS1 devices hold no GBCS trust anchor cells;
 * here the device's "supplier" simply becomes the gaining User), latency, loss, late answers and
 * failures (FAILURE with the drawn status as detail).
 */
import type { DeviceResponse, S1spRequest } from "../../processors/cos/records";
import type { EcdsaP256 } from "../../workers/crypto/ecdsa";
import { isSrv623, readDuisRequest, type Srv623Request } from "../../workers/duis/request";
import { REMOTE_PARTY_ROLE } from "../../workers/smki/certificate";
import { TrustStore, type TrustStoreConfig } from "../../workers/smki/trust";
import { parseXml } from "../../workers/xml/parser";
import {
  canonicalDocument,
  signatureElements,
  verifyDuisSignature,
} from "../../workers/xmldsig/duis-signature";
import { injectedStatus, type BehaviourProfile, type SimulatorConfig } from "./config";
import type { CommandFate } from "./fleet";
import { sampleLatency, seededRandom } from "./random";
import { TimerQueue } from "./timer-queue";

/** A SMETS1 device as the S1SP simulator holds it. */
export interface S1spDevice {
  readonly model: string;
  /** The User whose credentials the device holds after the last successful change; null: the original. */
  readonly supplierId: string | null;
  /** The latest request ids processed for the device (replay guard), newest last. */
  readonly seen: readonly string[];
  readonly pending: { readonly requestId: string; readonly userId: string; readonly at: number } | null;
}

/** How many request ids per device the replay guard remembers. */
const SEEN_PER_DEVICE = 32;

export type S1spCheck =
  | { readonly ok: true; readonly request: Srv623Request }
  | { readonly ok: false; readonly status: string; readonly detail: string };

const SIGNATURE_NAMES = [
  "the User's signature",
  "the DSP's countersignature",
  "the CoS Party's countersignature",
];

/** The S1SP's checks on a countersigned request (see the module comment). */
export function checkS1spRequest(
  r: S1spRequest,
  trust: TrustStore,
  ecdsa: EcdsaP256,
  now: number,
): S1spCheck {
  const fail = (status: string, detail: string): S1spCheck => ({ ok: false, status, detail });
  let doc;
  let request;
  try {
    doc = parseXml(r.countersigned);
    request = readDuisRequest(doc);
  } catch (err) {
    return fail("MALFORMED", err instanceof Error ? err.message : String(err));
  }
  if (!isSrv623(request)) return fail("MALFORMED", "not an SRV 6.23 request");
  const id = request.header.requestId;
  if (id.text !== r.requestId || id.businessTargetId !== r.deviceId || id.businessOriginatorId !== r.userId)
    return fail(
      "REQUEST_MISMATCH",
      `the request is ${id.text}, the record names ${r.requestId} / ${r.userId}`,
    );
  const form = r.cancellation ? "cancellation" : r.executionAt === null ? "immediate" : "future-dated";
  if (request.form !== form || (form === "future-dated" && request.executionTime !== r.executionAt))
    return fail("REQUEST_MISMATCH", `the request is ${request.form}, the record says ${form}`);
  const canonical = canonicalDocument(doc);
  if (canonical.signatures.length < 3 || signatureElements(doc).length < 3)
    return fail(
      "COUNTERSIGNATURE_MISSING",
      `${canonical.signatures.length} signature(s); the User's, the DSP's and the CoS Party's are needed`,
    );
  for (let index = 0; index < canonical.signatures.length; index++) {
    const v = verifyDuisSignature(doc, { trust, ecdsa, at: now, index, canonical });
    const name = SIGNATURE_NAMES[index] ?? `signature ${index}`;
    if (!v.ok) return fail("SIGNATURE_INVALID", `${name}: ${v.reason}`);
    if (index === 0 && v.signer.entityId !== r.userId)
      return fail("SIGNATURE_INVALID", `${name} is by ${v.signer.entityId ?? "?"}, not the User ${r.userId}`);
    if (index === 1 && v.signer.role !== REMOTE_PARTY_ROLE.dSPXmlSign)
      return fail("SIGNATURE_INVALID", `${name} is not by a dSPXmlSign certificate`);
  }
  return { ok: true, request };
}

export interface S1spStats {
  requests: number;
  lost: number;
  late: number;
  injectedFailures: number;
  answered: Record<string, number>;
}

type Event =
  { type: "response"; response: DeviceResponse } | { type: "execute"; deviceId: string; requestId: string };

export interface S1spSimulatorOptions {
  readonly config: SimulatorConfig;
  readonly devices: Iterable<[string, S1spDevice]>;
  /** Anchors and known signer certificates (supplier xmlSign, DSP, CoS Parties). */
  readonly trust: TrustStoreConfig;
  readonly ecdsa: EcdsaP256;
}

export class S1spSimulator {
  readonly stats: S1spStats = { requests: 0, lost: 0, late: 0, injectedFailures: 0, answered: {} };
  private readonly devices = new Map<string, S1spDevice>();
  private readonly queue = new TimerQueue<Event>();
  private readonly trust: TrustStore;
  private readonly profile: BehaviourProfile;

  constructor(private readonly o: S1spSimulatorOptions) {
    this.profile = o.config.s1sp;
    this.trust = new TrustStore(o.trust, o.ecdsa);
    for (const [id, d] of o.devices) {
      this.devices.set(id, d);
      if (d.pending)
        this.queue.push(d.pending.at, { type: "execute", deviceId: id, requestId: d.pending.requestId });
    }
  }

  get size(): number {
    return this.devices.size;
  }

  device(deviceId: string): S1spDevice | undefined {
    return this.devices.get(deviceId);
  }

  entries(): IterableIterator<[string, S1spDevice]> {
    return this.devices.entries();
  }

  get inFlight(): number {
    return this.queue.values().filter((e) => e.type === "response").length;
  }

  nextDueAt(): number | null {
    return this.queue.peekAt();
  }

  /** An S1spRequest reaches the S1SP at `now`; its answer is scheduled after the drawn latency. */
  receive(r: S1spRequest, now: number): CommandFate {
    this.stats.requests++;
    const random = seededRandom(this.o.config.seed, "s1sp", r.requestId);
    const u = random();
    const p = this.profile;
    if (u < p.lossRate) {
      this.stats.lost++;
      return { kind: "lost" };
    }
    const late = u < p.lossRate + p.timeoutRate;
    const at = now + sampleLatency(late ? p.lateLatency : p.latency, random);
    if (late) this.stats.late++;
    const failureDraw = random();
    const answer = (status: string, detail = ""): CommandFate => {
      this.queue.push(at, {
        type: "response",
        response: this.response(r.requestId, r.deviceId, "RESPONSE", status, detail, at),
      });
      return { kind: "answered", status, at, late };
    };
    const d = this.devices.get(r.deviceId);
    if (!d) return answer("DEVICE_UNKNOWN", `the S1SP has no SMETS1 device ${r.deviceId}`);
    if (d.seen.includes(r.requestId))
      return answer("REQUEST_REPLAYED", `${r.requestId} was processed before`);
    const check = checkS1spRequest(r, this.trust, this.o.ecdsa, now);
    if (!check.ok) return answer(check.status, check.detail);
    const seen = [...d.seen, r.requestId].slice(-SEEN_PER_DEVICE);
    if (r.cancellation) {
      this.devices.set(r.deviceId, { ...d, seen, pending: null });
      return answer("ACCEPTED");
    }
    if (r.executionAt !== null) {
      this.devices.set(r.deviceId, {
        ...d,
        seen,
        pending: { requestId: r.requestId, userId: r.userId, at: r.executionAt },
      });
      this.queue.push(r.executionAt, { type: "execute", deviceId: r.deviceId, requestId: r.requestId });
      return answer("ACCEPTED");
    }
    const injected = injectedStatus(p, failureDraw);
    if (injected !== null) {
      this.stats.injectedFailures++;
      this.devices.set(r.deviceId, { ...d, seen });
      return answer("FAILURE", `S1SP: ${injected}`);
    }
    this.devices.set(r.deviceId, { ...d, seen, supplierId: r.userId });
    return answer("SUCCESS");
  }

  advance(now: number): DeviceResponse[] {
    const out: DeviceResponse[] = [];
    for (let e = this.queue.popDue(now); e !== null; e = this.queue.popDue(now)) {
      const v = e.value;
      if (v.type === "response") {
        const key = v.response.kind === "ALERT" ? `ALERT:${v.response.status}` : v.response.status;
        this.stats.answered[key] = (this.stats.answered[key] ?? 0) + 1;
        out.push(v.response);
        continue;
      }
      const d = this.devices.get(v.deviceId);
      // Cancelled, replaced by a later request, or not yet due.
      if (!d?.pending || d.pending.requestId !== v.requestId || d.pending.at > e.at) continue;
      const random = seededRandom(this.o.config.seed, "s1sp-alert", v.requestId);
      const u = random();
      const p = this.profile;
      const late = u >= p.lossRate && u < p.lossRate + p.timeoutRate;
      const lateBy = late ? sampleLatency(p.lateLatency, random) : 0;
      const injected = injectedStatus(p, random());
      this.devices.set(v.deviceId, {
        ...d,
        pending: null,
        supplierId: injected === null ? d.pending.userId : d.supplierId,
      });
      if (injected !== null) this.stats.injectedFailures++;
      if (u < p.lossRate) {
        this.stats.lost++;
        continue;
      }
      if (late) this.stats.late++;
      const when = e.at + lateBy;
      const response = this.response(
        v.requestId,
        v.deviceId,
        "ALERT",
        injected === null ? "SUCCESS" : "FAILURE",
        injected === null ? "" : `S1SP: ${injected}`,
        when,
      );
      this.queue.push(when, { type: "response", response });
    }
    return out;
  }

  private response(
    requestId: string,
    deviceId: string,
    kind: "RESPONSE" | "ALERT",
    status: string,
    detail: string,
    at: number,
  ): DeviceResponse {
    return { requestId, deviceId, source: "S1SP", kind, status, detail, payload: null, answeredAt: at };
  }
}
