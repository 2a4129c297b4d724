/**
 * Load generator for dsp-validate: realistic signed SRV 6.23 requests from the deterministic test PKI
 * (workers/testing), a mix of valid and invalid ones, plus the reference data they are checked
 * against. Used by bench/dsp-validate.ts and the integration test; no private key is stored anywhere.
 *
 *   import { generateDspLoad } from "./dsp-load";
 *   const load = generateDspLoad({ requests: 10_000, invalidShare: 0.3 });
 *
 * Each request carries its expected outcome ("accepted" or the check id that must reject it), so a
 * run can be checked request by request.
 */
import type { DeviceSnapshot, SupplierRegistration } from "../schemas/event-records";
import { epochDay } from "../processors/dsp/reference-data";
import { buildSrv623Cast, castSrv623Xml, type Srv623Cast } from "../workers/testing/test-pki";
import { parseXml } from "../workers/xml/parser";
import { signDuisDocument } from "../workers/xmldsig/duis-signature";

export interface GeneratedRequest {
  readonly requestId: string;
  readonly deviceId: string;
  readonly bytes: Buffer;
  /** "accepted", or the check id expected to reject it. */
  readonly expected: string;
}

export interface DspLoad {
  readonly cast: Srv623Cast;
  readonly devices: DeviceSnapshot[];
  readonly registrations: SupplierRegistration[];
  readonly requests: GeneratedRequest[];
}

export interface DspLoadOptions {
  readonly requests: number;
  /** Share of invalid requests, 0–1 (default 0.3), spread over the kinds below. */
  readonly invalidShare?: number;
  /** Distinct target devices (default 2,000). */
  readonly devices?: number;
  readonly seed?: string;
}

const INVALID_KINDS = [
  "signature",
  "device-known",
  "registration-supplier",
  "command-variant",
  "xml",
  "replay",
] as const;

function deviceIdOf(i: number): string {
  const hex = (0x00db_0000_0000_0000n + BigInt(i)).toString(16).padStart(16, "0").toUpperCase();
  return hex.match(/../g)!.join("-");
}

function mpanOf(i: number): string {
  return (1_300_000_000_000 + i).toString();
}

/** A deterministic pseudo-random sequence (xorshift), so two runs generate the same load. */
function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

export function generateDspLoad(o: DspLoadOptions): DspLoad {
  const cast = buildSrv623Cast(o.seed ?? "ecos-stream-test-pki");
  const nDevices = o.devices ?? 2000;
  const invalidShare = o.invalidShare ?? 0.3;
  const devices: DeviceSnapshot[] = [];
  const registrations: SupplierRegistration[] = [];
  for (let i = 0; i < nDevices; i++) {
    devices.push({
      deviceId: deviceIdOf(i),
      deviceType: "ESME",
      deviceManufacturer: "ACME",
      deviceModel: "M1",
      firmwareVersion: "1.0",
      smetsGeneration: i % 10 === 0 ? "SMETS1" : "SMETS2",
      deviceStatus: "COMMISSIONED",
      chfDeviceId: null,
      importMpxn: mpanOf(i),
      cosCredential: i % 3 === 0 ? "TCOS" : "ECOS",
      commissionedAt: null,
      snapshotAt: 1,
    });
    registrations.push({
      mpxn: mpanOf(i),
      fuel: "ELECTRICITY",
      // Every 7th MPxN is registered to another supplier: a request for it fails registration-supplier.
      supplierMpid: i % 7 === 6 ? "BGAS" : "ACEE",
      effectiveFrom: epochDay("2024-01-01"),
      effectiveTo: null,
      registrationVersion: 1,
      receivedAt: 1,
    });
  }
  const key = cast.supplierXmlSign.signingKey();
  const sign = (xml: string): Buffer => {
    const bytes = Buffer.from(xml, "utf8");
    return signDuisDocument(bytes, parseXml(bytes), key);
  };
  const random = rng(0x5eed);
  const requests: GeneratedRequest[] = [];
  const validDevices = Array.from({ length: nDevices }, (_, i) => i).filter((i) => i % 7 !== 6);
  for (let n = 0; n < o.requests; n++) {
    const counter = 1_000_000 + n;
    const invalid = random() < invalidShare;
    const kind = invalid ? INVALID_KINDS[Math.floor(random() * INVALID_KINDS.length)]! : null;
    let d = validDevices[Math.floor(random() * validDevices.length)]!;
    if (kind === "registration-supplier")
      d = 6 + 7 * Math.floor(random() * Math.floor((nDevices - 6) / 7 + 1));
    if (kind === "replay" && requests.some((r) => r.expected === "accepted")) {
      const earlier =
        requests.find((r, i) => r.expected === "accepted" && i >= n - 50) ??
        requests.find((r) => r.expected === "accepted")!;
      requests.push({ ...earlier, expected: "replay" });
      continue;
    }
    const deviceId = kind === "device-known" ? deviceIdOf(nDevices + n) : deviceIdOf(d);
    const xml = castSrv623Xml(cast, deviceId, counter, {
      importMpxn: mpanOf(kind === "device-known" ? 0 : d),
      ...(kind === "command-variant" ? { commandVariant: 2 } : {}),
    });
    let bytes = kind === "xml" ? Buffer.from(xml.slice(0, 900)) : sign(xml); // "xml": cut after the header, named but not well-formed
    if (kind === "signature")
      bytes = Buffer.from(
        bytes.toString("utf8").replace("<sr:SupplierFloorSeqNumber>0<", "<sr:SupplierFloorSeqNumber>9<"),
      );
    requests.push({
      requestId: `${cast.supplierId}:${deviceId}:${counter}`,
      deviceId,
      bytes,
      expected: kind === "replay" ? "accepted" : (kind ?? "accepted"),
    });
  }
  return { cast, devices, registrations, requests };
}
