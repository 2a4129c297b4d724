/**
 * Synthetic supplier traffic for the embedded pipeline: the load generator's signed SRV 6.23 requests
 * (bench/dsp-load.ts: valid SMETS2 ECoS/TCoS and SMETS1 requests, and six kinds of invalid ones),
 * plus future-dated requests and cancellations signed with the same test PKI, each given a time of
 * receipt at a steady arrival rate. Deterministic for a seed: two runs submit the same bytes at the
 * same simulated times. No private key leaves the test PKI's objects.
 */
import { generateDspLoad, type DspLoad } from "../../bench/dsp-load";
import type { DeviceSnapshot, SupplierRegistration } from "../../schemas/event-records";
import { castSrv623Xml, type Srv623Cast } from "../../workers/testing/test-pki";
import { parseXml } from "../../workers/xml/parser";
import { signDuisDocument } from "../../workers/xmldsig/duis-signature";

/** The GBCS / DUIS cancellation sentinel for ExecutionDateTime (workers/duis/request.ts). */
export const CANCELLATION_DATE_TIME = "3000-12-31T00:00:00Z";

/** What a request is, for the summary and the tests. */
export type TrafficKind =
  | "valid"
  | "future-dated"
  | "cancellation"
  /** Invalid, by the check expected to refuse it (bench/dsp-load.ts). */
  | `invalid:${string}`;

export interface TimedRequest {
  readonly requestId: string;
  readonly deviceId: string;
  readonly bytes: Buffer;
  /** Time of receipt at the DCC (simulated epoch ms). */
  readonly receivedAt: number;
  readonly kind: TrafficKind;
}

export interface SyntheticTraffic {
  readonly cast: Srv623Cast;
  readonly devices: DeviceSnapshot[];
  readonly registrations: SupplierRegistration[];
  /** In order of receipt. */
  readonly requests: TimedRequest[];
}

export interface TrafficOptions {
  readonly requests: number;
  readonly devices: number;
  /** Test PKI seed (default "ecos-stream-test-pki": the seeded simulators' credentials). */
  readonly seed?: string;
  /** Time of receipt of the first request, epoch ms. */
  readonly startAt: number;
  /** Arrival rate, requests per simulated second (default 50). */
  readonly perSecond?: number;
  /** Share of invalid requests (default 0.15). */
  readonly invalidShare?: number;
  /** Share of future-dated requests (default 0.04) and of cancellations (default 0.02). */
  readonly futureDatedShare?: number;
  readonly cancellationShare?: number;
  /** How far ahead a future-dated request is to be executed (default 2 minutes). */
  readonly executionDelayMs?: number;
}

/** The first User counter of the requests made here (the load generator's start at 1,000,000). */
const EXTRA_COUNTER = 5_000_000;

export function syntheticTraffic(o: TrafficOptions): SyntheticTraffic {
  const seed = o.seed ?? "ecos-stream-test-pki";
  const futureShare = o.futureDatedShare ?? 0.04;
  const cancelShare = o.cancellationShare ?? 0.02;
  const extraFuture = Math.round(o.requests * futureShare);
  const extraCancel = Math.round(o.requests * cancelShare);
  const base = Math.max(0, o.requests - extraFuture - extraCancel);
  const load: DspLoad = generateDspLoad({
    requests: base,
    devices: o.devices,
    seed,
    invalidShare: o.invalidShare ?? 0.15,
  });
  const cast = load.cast;
  const key = cast.supplierXmlSign.signingKey();
  const sign = (xml: string): Buffer => {
    const bytes = Buffer.from(xml, "utf8");
    return signDuisDocument(bytes, parseXml(bytes), key);
  };
  // Future-dated and cancellation requests go to devices registered to the supplier (every 7th MPxN
  // belongs to another supplier in the load), spread over the estate with a fixed stride.
  const eligible = load.devices.filter((_, i) => i % 7 !== 6);
  const perSecond = o.perSecond ?? 50;
  const gap = 1000 / perSecond;
  type Unplaced = Omit<TimedRequest, "receivedAt">;
  const extras: Unplaced[] = [];
  const extraCount = extraFuture + extraCancel;
  for (let n = 0; n < extraCount && eligible.length > 0; n++) {
    const d = eligible[(n * 7919 + 13) % eligible.length]!;
    const counter = EXTRA_COUNTER + n;
    const cancellation = n >= extraFuture;
    // The execution time is fixed when the request is placed (below); a placeholder keeps the slot.
    extras.push({
      requestId: `${cast.supplierId}:${d.deviceId}:${counter}`,
      deviceId: d.deviceId,
      bytes: Buffer.alloc(0),
      kind: cancellation ? "cancellation" : "future-dated",
    });
  }
  const baseRequests: Unplaced[] = load.requests.map((r) => ({
    requestId: r.requestId,
    deviceId: r.deviceId,
    bytes: r.bytes,
    kind: r.expected === "accepted" ? "valid" : `invalid:${r.expected}`,
  }));
  // Interleave the extras evenly among the load's requests.
  const all: Unplaced[] = [];
  const every = extras.length === 0 ? Infinity : Math.max(1, Math.floor(baseRequests.length / extras.length));
  let e = 0;
  baseRequests.forEach((r, i) => {
    all.push(r);
    if ((i + 1) % every === 0 && e < extras.length) all.push(extras[e++]!);
  });
  while (e < extras.length) all.push(extras[e++]!);

  const mpxnOf = new Map(load.devices.map((d) => [d.deviceId, d.importMpxn ?? ""]));
  const requests: TimedRequest[] = all.map((r, i) => {
    const receivedAt = o.startAt + Math.round(i * gap);
    if (r.kind !== "future-dated" && r.kind !== "cancellation") return { ...r, receivedAt };
    const counter = Number(r.requestId.split(":").pop());
    const executionDateTime =
      r.kind === "cancellation"
        ? CANCELLATION_DATE_TIME
        : // Whole seconds: DUIS date-times carry no fractions here.
          new Date(Math.ceil((receivedAt + (o.executionDelayMs ?? 120_000)) / 1000) * 1000)
            .toISOString()
            .replace(".000Z", "Z");
    const xml = castSrv623Xml(cast, r.deviceId, counter, {
      importMpxn: mpxnOf.get(r.deviceId) ?? "",
      executionDateTime,
    });
    return { ...r, bytes: sign(xml), receivedAt };
  });
  return { cast, devices: load.devices, registrations: load.registrations, requests };
}
