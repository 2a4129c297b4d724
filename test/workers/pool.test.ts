import * as path from "node:path";
import { EcosError } from "../../processors/runtime/errors";
import { DuisVerifierPool } from "../../workers/pool";
import { encodeSmkiSnapshot } from "../../workers/smki/snapshot";
import { verifyDuisBatch } from "../../workers/tasks";
import { validateAndCountersignBatch, validateAndCountersignRequests } from "../../workers/dsp/dsp-task";
import { packInputs } from "../../processors/dsp/verifier";
import { RECEIVED_AT, cast, signed623 } from "./fixtures";

function pack(docs: Buffer[]): {
  data: ArrayBuffer;
  items: { offset: number; length: number; receivedAt: number }[];
} {
  const data = new Uint8Array(docs.reduce((n, d) => n + d.length, 0));
  const items = [];
  let at = 0;
  for (const d of docs) {
    data.set(d, at);
    items.push({ offset: at, length: d.length, receivedAt: RECEIVED_AT });
    at += d.length;
  }
  return { data: data.buffer, items };
}

describe("verifyDuisBatch (inline, no pool)", () => {
  test("one plain result per item, in order; the SMKI snapshot is read once per id", () => {
    const docs = [signed623({}, 1), Buffer.from("<not-xml"), signed623({}, 2)];
    const smki = encodeSmkiSnapshot(cast().trust);
    const results = verifyDuisBatch({ ...pack(docs), smki });
    expect(results.map((r) => (r.ok ? "ok" : "checkId" in r ? r.checkId : r.code))).toEqual([
      "ok",
      "xml",
      "ok",
    ]);
    expect(JSON.parse(JSON.stringify(results))).toEqual(results); // plain data only
    const noble = verifyDuisBatch({ ...pack(docs.slice(0, 1)), smki, implementation: "noble" });
    expect(noble[0]!.ok).toBe(true);
  });
});

describe("the dsp-validate task, packed for a thread or on the requests' own buffers", () => {
  test("the same results either way; the requests' bytes, views into a larger buffer, are not changed", () => {
    const docs = [signed623({}, 11), Buffer.from("<not-xml"), signed623({ commandVariant: 2 }, 12)];
    // The first request as a view in the middle of another buffer (as Kafka hands out record values).
    const framed = Buffer.concat([Buffer.from("<junk>"), docs[0]!, Buffer.from("</junk>")]);
    const inputs = [
      { bytes: framed.subarray(6, 6 + docs[0]!.length), receivedAt: RECEIVED_AT },
      { bytes: docs[1]!, receivedAt: RECEIVED_AT },
      { bytes: docs[2]!, receivedAt: RECEIVED_AT + 1 },
    ];
    const before = inputs.map((x) => Buffer.from(x.bytes));
    const framedBefore = Buffer.from(framed);
    const options = {
      smki: encodeSmkiSnapshot(cast().trust),
      countersignWith: { scalar: cast().dspXmlSign.scalar, certificate: cast().dspXmlSign.der },
    };
    const direct = validateAndCountersignRequests(inputs, options);
    const packed = packInputs(inputs);
    const viaPack = validateAndCountersignBatch({ ...options, data: packed.data, items: packed.items });
    expect(direct.map((r) => r.verification.ok)).toEqual([true, false, true]);
    expect(direct[0]!.countersigned).not.toBeNull();
    // ECDSA signatures are randomised: compare everything but the countersignature's value.
    const strip = (b: Uint8Array | null): string | null =>
      b &&
      Buffer.from(b)
        .toString("utf8")
        .replace(/<ds:SignatureValue>[^<]*</g, "<ds:SignatureValue><");
    expect(direct.map((r) => [r.verification, strip(r.countersigned)])).toEqual(
      viaPack.map((r) => [r.verification, strip(r.countersigned)]),
    );
    expect(inputs.map((x) => Buffer.from(x.bytes))).toEqual(before);
    expect(framed).toEqual(framedBefore);
  });
});

describe("DuisVerifierPool (piscina threads)", () => {
  let pool: DuisVerifierPool;
  beforeAll(() => {
    pool = new DuisVerifierPool({ trust: cast().trust, threads: 1, batchSize: 8 });
  });
  afterAll(async () => {
    await pool.destroy();
  });

  test("batches requests per task, transfers a copy and leaves the caller's bytes intact", async () => {
    const docs = Array.from({ length: 20 }, (_, i) => signed623({}, 100 + i));
    const before = docs.map((d) => Buffer.from(d));
    const results = await pool.verifyMany(docs.map((bytes) => ({ bytes, receivedAt: RECEIVED_AT })));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(results.map((r) => r.request!.originatorCounter)).toEqual(docs.map((_, i) => String(100 + i)));
    expect(docs).toEqual(before);
    expect(pool.stats.tasks).toBe(3); // 20 requests in batches of 8
  }, 60_000);

  test("verify() gathers single requests into batches", async () => {
    const tasksBefore = pool.stats.tasks;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        pool.verify({ bytes: signed623({}, 200 + i), receivedAt: RECEIVED_AT }),
      ),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(pool.stats.tasks - tasksBefore).toBe(1);
    const bad = await pool.verify({ bytes: Buffer.from("<r>&xxe;</r>"), receivedAt: RECEIVED_AT });
    expect(bad).toMatchObject({ ok: false, checkId: "xml" });
  }, 60_000);

  test("a crashing task rejects its batch with ECOS_WORKER_FAILED; the pool keeps serving", async () => {
    const crashing = new DuisVerifierPool({
      trust: cast().trust,
      threads: 1,
      batchSize: 4,
      workerFile: path.join(__dirname, "fixtures", "crashing-worker.cjs"),
    });
    try {
      const err = await crashing
        .verify({ bytes: Buffer.from("CRASH-THIS-WORKER"), receivedAt: RECEIVED_AT })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EcosError);
      expect((err as EcosError).code).toBe("ECOS_WORKER_FAILED");
      expect((err as EcosError).retriable).toBe(true);
      const after = await crashing.verify({ bytes: signed623({}, 300), receivedAt: RECEIVED_AT });
      expect(after.ok).toBe(true);
    } finally {
      await crashing.destroy();
    }
  }, 60_000);
});
