/**
 * DSP crypto hot path: validation of signed SRV 6.23 requests per core, the crypto-only ceiling for
 * the same work, and the main thread's event-loop delay while the piscina pool does it.
 *
 *   npx tsx bench/dsp-crypto.ts [--requests N] [--rounds R] [--threads T] [--batch B] [--pool-requests P]
 *
 * Knobs: --requests (distinct signed 6.23 requests validated per round, default 2000), --rounds (timed
 * rounds after a warm-up, best reported, default 3), --threads (pool threads, default 1 so the figure is
 * per core), --batch (requests per pool task, default 48), --pool-requests (requests sent through the
 * pool, default 20000). Prints one JSON line per figure:
 *   {"bench":"dsp-crypto","metric":"validate_per_s",...}           parse + schema + digest + verify + path + 6.23 checks, one core
 *   {"bench":"dsp-crypto","metric":"validate_countersign_per_s",...} the same plus the DSP countersignature
 *   {"bench":"dsp-crypto","metric":"crypto_only_per_s",...}         one ECDSA verify + one ECDSA sign (OpenSSL), the ceiling
 *   {"bench":"dsp-crypto","metric":"noble_verify_per_s",...}        one @noble/curves verify (reference)
 *   {"bench":"dsp-crypto","metric":"pool_validate_per_s",...}       through the pool (T threads, batches of B)
 *   {"bench":"dsp-crypto","metric":"pool_event_loop_delay_p99_ms",...} main thread, monitorEventLoopDelay, during the pool run
 *   {"bench":"dsp-crypto","metric":"pool_event_loop_delay_max_ms",...}
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { nobleEcdsa, opensslEcdsa } from "../workers/crypto/ecdsa";
import { validateDuisRequest } from "../workers/dsp/validate";
import { DuisVerifierPool } from "../workers/pool";
import { TrustStore } from "../workers/smki/trust";
import { buildSrv623Cast, castSrv623Xml } from "../workers/testing/test-pki";
import { parseXml } from "../workers/xml/parser";
import { countersignDuisDocument, signDuisDocument } from "../workers/xmldsig/duis-signature";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : undefined;
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const requests = arg("requests", 2000);
const rounds = arg("rounds", 3);
const threads = arg("threads", 1);
const batch = arg("batch", 48);
const poolRequests = arg("pool-requests", 20000);

function emit(metric: string, value: number, extra: Record<string, unknown> = {}): void {
  console.log(
    JSON.stringify({ bench: "dsp-crypto", metric, value: Math.round(value * 100) / 100, ...extra }),
  );
}

function bestRate(n: number, work: () => void): number {
  work();
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    work();
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    best = Math.max(best, n / s);
  }
  return best;
}

async function main(): Promise<void> {
  const cast = buildSrv623Cast("bench-pki");
  const receivedAt = Date.UTC(2026, 5, 1);
  const userKey = cast.supplierXmlSign.signingKey(opensslEcdsa);
  const dspKey = cast.dspXmlSign.signingKey(opensslEcdsa);
  const docs: Buffer[] = [];
  for (let i = 0; i < requests; i++) {
    const device = (0x00db123456780000n + BigInt(i))
      .toString(16)
      .toUpperCase()
      .padStart(16, "0")
      .match(/../g)!
      .join("-");
    const xml = Buffer.from(castSrv623Xml(cast, device, 10_000 + i), "utf8");
    docs.push(signDuisDocument(xml, parseXml(xml), userKey));
  }
  const trust = new TrustStore(cast.trust, opensslEcdsa);
  const ctx = { trust, ecdsa: opensslEcdsa };
  const sample = validateDuisRequest(docs[0]!, receivedAt, ctx);
  if (!sample.ok) throw new Error(`bench request does not validate: ${sample.message ?? ""}`);
  const size = docs[0]!.length;

  emit(
    "validate_per_s",
    bestRate(requests, () => {
      for (const d of docs) validateDuisRequest(d, receivedAt, ctx);
    }),
    { requests, bytes: size },
  );
  emit(
    "validate_countersign_per_s",
    bestRate(requests, () => {
      for (const d of docs) {
        validateDuisRequest(d, receivedAt, ctx);
        countersignDuisDocument(d, parseXml(d), dspKey);
      }
    }),
    { requests },
  );

  const data = Buffer.alloc(700, 0x61); // about the size of an exclusive-canonical SignedInfo
  const pub = opensslEcdsa.importPublicKey(cast.supplierXmlSign.point);
  const sigs = Array.from({ length: 64 }, (_, i) =>
    opensslEcdsa.sign(userKey.privateKey, Buffer.concat([data, Buffer.from([i])])),
  );
  const msgs = sigs.map((_, i) => Buffer.concat([data, Buffer.from([i])]));
  emit(
    "crypto_only_per_s",
    bestRate(requests, () => {
      for (let i = 0; i < requests; i++) {
        opensslEcdsa.verify(pub, msgs[i & 63]!, sigs[i & 63]!);
        opensslEcdsa.sign(dspKey.privateKey, msgs[i & 63]!);
      }
    }),
    { per_request: "1 verify + 1 sign" },
  );
  const npub = nobleEcdsa.importPublicKey(cast.supplierXmlSign.point);
  const nobleN = Math.max(50, Math.floor(requests / 20));
  emit(
    "noble_verify_per_s",
    bestRate(nobleN, () => {
      for (let i = 0; i < nobleN; i++) nobleEcdsa.verify(npub, msgs[i & 63]!, sigs[i & 63]!);
    }),
  );

  const pool = new DuisVerifierPool({
    trust: cast.trust,
    threads,
    batchSize: batch,
    maxQueuedBatches: 1_000_000,
  });
  try {
    await pool.verifyMany(docs.slice(0, batch * threads * 2).map((bytes) => ({ bytes, receivedAt }))); // warm-up: threads load tsx and the PKI
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    const start = process.hrtime.bigint();
    const inputs = Array.from({ length: poolRequests }, (_, i) => ({
      bytes: docs[i % docs.length]!,
      receivedAt,
    }));
    // Feed as a stream would: a window of in-flight batches, not everything at once.
    let next = 0;
    let okCount = 0;
    const window = threads * 4;
    const worker = async (): Promise<void> => {
      while (next < inputs.length) {
        const slice = inputs.slice(next, next + batch);
        next += batch;
        const rs = await pool.verifyMany(slice);
        for (const r of rs) if (r.ok) okCount++;
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    histogram.disable();
    if (okCount !== poolRequests) throw new Error(`${poolRequests - okCount} requests failed in the pool`);
    emit("pool_validate_per_s", poolRequests / seconds, { threads, batch, requests: poolRequests });
    emit("pool_event_loop_delay_p99_ms", histogram.percentile(99) / 1e6, { threads, batch });
    emit("pool_event_loop_delay_max_ms", histogram.max / 1e6, { threads, batch });
  } finally {
    await pool.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
