/**
 * The CoS Party's worker tasks: plain functions, data in and data out, run inline (tests, small
 * deployments) or on piscina threads (worker-pool.ts). Two tasks, batched like the DSP's:
 *
 * - `verifyCosRequestBatch`: per Countersigned CoS Service Request, the DSP's worker checks again
 *   (parse, schema, the User's signature, signer role, user id, the replacement certificates and the
 *   OCA path — seed 003 §3.3: for SMETS1 targets as well), then the DSP's countersignature (signature
 *   number 1: digest over the User-signed document, a known dSPXmlSign certificate), then the CoS
 *   Party's own countersignature over the whole (signature number 2), from the parse and canonical
 *   form the checks already built.
 * - `signPreCommandBatch`: per authorised SMETS2+ request, the GBCS CS02b pre-command (0x0107,
 *   mode 7) mirroring the request, with the counter reserved by the processor, signed with the
 *   party's transitionalCoS key (reference §3.1–3.2).
 *
 * Keys travel as 32-byte scalars and are imported once per thread; they are never logged.
 */
import * as crypto from "node:crypto";
import {
  ecdsaImplementation,
  type EcdsaImplementationName,
  type EcPrivateKey,
} from "../../workers/crypto/ecdsa";
import type { ExecutionDatePolicy } from "../../workers/dsp/checks";
import { validateDuisRequestKeeping, type DuisVerification } from "../../workers/dsp/validate";
import { isSrv623, readDuisRequest } from "../../workers/duis/request";
import { preCommandInputFor623 } from "../../workers/gbcs/from-duis";
import { buildPreCommand } from "../../workers/gbcs/pre-command";
import { normaliseEui64, parseCertificateCached, REMOTE_PARTY_ROLE } from "../../workers/smki/certificate";
import type { SmkiSnapshot } from "../../workers/smki/snapshot";
import { batchValidationContext } from "../../workers/tasks";
import { DEFAULT_XML_LIMITS, parseXml, type XmlLimits } from "../../workers/xml/parser";
import {
  countersignDuisDocument,
  signatureElements,
  verifyDuisSignature,
  type XmlSigningKey,
} from "../../workers/xmldsig/duis-signature";

/** An XML-signing credential: the private scalar (never logged) and the certificate DER. */
export interface XmlSigningCredential {
  readonly scalar: Uint8Array;
  readonly certificate: Uint8Array;
}

/** One request of a batch: `data[offset, offset + length)`. */
export interface CosVerifyItem {
  readonly offset: number;
  readonly length: number;
  readonly receivedAt: number;
}

export interface CosVerifyTask {
  readonly data: ArrayBuffer | SharedArrayBuffer | Uint8Array;
  readonly items: readonly CosVerifyItem[];
  readonly smki: SmkiSnapshot;
  /** The CoS Party's XML-signing credential (its countersignature). */
  readonly countersignWith: XmlSigningCredential;
  /** When set, the DSP countersignature must be by this entity id. */
  readonly dspEntityId?: string;
  readonly implementation?: EcdsaImplementationName;
  readonly xmlLimits?: XmlLimits;
  readonly executionDate?: ExecutionDatePolicy;
}

export interface CosVerifyResult {
  /** The DSP's worker checks on the User-signed request (as the DSP ran them). */
  readonly verification: DuisVerification | { ok: false; code: string; message: string };
  /** null when the DSP countersignature verifies; otherwise why not (not checked after a gate failure). */
  readonly dspCountersignatureError: string | null;
  /** The request countersigned by the CoS Party, when every worker check passed. */
  readonly countersigned: Uint8Array | null;
  /** Why the CoS Party countersignature could not be made, when it could not. */
  readonly countersignError?: string;
}

// Imported private keys of this thread, by a hash of implementation and scalar.
const keys = new Map<string, EcPrivateKey>();

function importKey(scalar: Uint8Array, implementation: EcdsaImplementationName): EcPrivateKey {
  const id = crypto.createHash("sha256").update(implementation).update(scalar).digest("hex");
  let k = keys.get(id);
  if (!k) {
    if (keys.size >= 8) keys.clear();
    k = ecdsaImplementation(implementation).importPrivateKey(scalar);
    keys.set(id, k);
  }
  return k;
}

function xmlSigningKey(cred: XmlSigningCredential, implementation: EcdsaImplementationName): XmlSigningKey {
  return {
    ecdsa: ecdsaImplementation(implementation),
    privateKey: importKey(cred.scalar, implementation),
    certificate: parseCertificateCached(cred.certificate),
  };
}

/** The DSP's worker checks, the DSP countersignature and the CoS Party countersignature, per item. */
export function verifyCosRequestBatch(task: CosVerifyTask): CosVerifyResult[] {
  const data = task.data instanceof Uint8Array ? task.data : new Uint8Array(task.data);
  const ctx = batchValidationContext({
    data,
    items: [],
    smki: task.smki,
    ...(task.implementation ? { implementation: task.implementation } : {}),
    ...(task.xmlLimits ? { xmlLimits: task.xmlLimits } : {}),
    ...(task.executionDate ? { executionDate: task.executionDate } : {}),
  });
  let key: XmlSigningKey | Error;
  try {
    key = xmlSigningKey(task.countersignWith, task.implementation ?? "openssl");
  } catch (err) {
    key = err instanceof Error ? err : new Error(String(err));
  }
  const dspId = task.dspEntityId === undefined ? null : normaliseEui64(task.dspEntityId);
  return task.items.map((item): CosVerifyResult => {
    const bytes = data.subarray(item.offset, item.offset + item.length);
    try {
      const kept = validateDuisRequestKeeping(bytes, item.receivedAt, ctx);
      const v = kept.verification;
      // After a gate failure (or for another SRV) nothing else is read.
      if (!kept.canonical || !v.request || !v.signer)
        return { verification: v, dspCountersignatureError: null, countersigned: null };
      const doc = kept.canonical.doc;
      let dspError: string | null = null;
      const count = signatureElements(doc).length;
      if (count !== 2) {
        dspError = `the request carries ${count} signatures; a Countersigned CoS Service Request carries the User's and the DSP's`;
      } else {
        const dsp = verifyDuisSignature(doc, {
          trust: ctx.trust,
          ecdsa: ctx.ecdsa,
          at: item.receivedAt,
          index: 1,
          canonical: kept.canonical,
        });
        if (!dsp.ok) dspError = dsp.reason;
        else if (dsp.signer.role !== REMOTE_PARTY_ROLE.dSPXmlSign)
          dspError = `countersignature by a certificate with role ${dsp.signer.organisationalUnit ?? "(no OU)"}, not 89 (dSPXmlSign)`;
        else if (dspId !== null && dsp.signer.entityId !== dspId)
          dspError = `countersignature by ${dsp.signer.entityId ?? "(no entity id)"}, not the DSP ${dspId}`;
      }
      if (!v.ok || dspError !== null)
        return { verification: v, dspCountersignatureError: dspError, countersigned: null };
      try {
        if (key instanceof Error) throw key;
        const signed = countersignDuisDocument(bytes, doc, key, kept.canonical);
        return {
          verification: v,
          dspCountersignatureError: null,
          countersigned: new Uint8Array(signed.buffer, signed.byteOffset, signed.byteLength),
        };
      } catch (err) {
        return {
          verification: v,
          dspCountersignatureError: null,
          countersigned: null,
          countersignError: (err as Error).message,
        };
      }
    } catch (err) {
      // A bug, not bad input (bad input is a failed check): reported for this item only.
      return {
        verification: { ok: false, code: "ECOS_PROCESS_FAILED", message: (err as Error).message },
        dspCountersignatureError: null,
        countersigned: null,
      };
    }
  });
}

/** One pre-command to sign: the CoS-Party-countersigned request and the counter reserved for it. */
export interface PreCommandItem {
  readonly offset: number;
  readonly length: number;
  /** Decimal; bigint does not cross every worker boundary. */
  readonly counter: string;
}

export interface PreCommandTask {
  readonly data: ArrayBuffer | SharedArrayBuffer | Uint8Array;
  readonly items: readonly PreCommandItem[];
  /** The CoS Party's entity id: originator of the pre-command. */
  readonly cosPartyId: string;
  /** The private scalar of the party's transitionalCoS digitalSignature key. */
  readonly scalar: Uint8Array;
  readonly implementation?: EcdsaImplementationName;
  readonly xmlLimits?: XmlLimits;
}

export type PreCommandResult =
  | { readonly preCommand: Uint8Array; readonly error?: undefined }
  | { readonly preCommand: null; readonly error: string };

/** Builds and signs the pre-command of each request (reference §3.1: signature over all after 0xDF). */
export function signPreCommandBatch(task: PreCommandTask): PreCommandResult[] {
  const data = task.data instanceof Uint8Array ? task.data : new Uint8Array(task.data);
  const implementation = task.implementation ?? "openssl";
  const ecdsa = ecdsaImplementation(implementation);
  const key = importKey(task.scalar, implementation);
  return task.items.map((item): PreCommandResult => {
    try {
      const bytes = data.subarray(item.offset, item.offset + item.length);
      const request = readDuisRequest(parseXml(bytes, task.xmlLimits ?? DEFAULT_XML_LIMITS));
      if (!isSrv623(request)) throw new Error(`SRV ${request.srv} has no pre-command`);
      const input = preCommandInputFor623(request, task.cosPartyId, BigInt(item.counter));
      const signed = buildPreCommand(input, ecdsa, key);
      return { preCommand: new Uint8Array(signed.buffer, signed.byteOffset, signed.byteLength) };
    } catch (err) {
      return { preCommand: null, error: (err as Error).message };
    }
  });
}

/** Packs byte arrays into one buffer with offsets, as a pool task carries them. */
export function packBytes(parts: readonly Uint8Array[]): {
  data: Uint8Array;
  spans: Array<{ offset: number; length: number }>;
} {
  let total = 0;
  for (const p of parts) total += p.length;
  const data = new Uint8Array(total);
  const spans: Array<{ offset: number; length: number }> = [];
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    spans.push({ offset: at, length: p.length });
    at += p.length;
  }
  return { data, spans };
}
