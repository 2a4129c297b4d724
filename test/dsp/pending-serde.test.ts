import { pendingDecisionSerde, type PendingDecision } from "../../processors/dsp/topology";

const SIGNER = {
  serialHex: "01",
  issuer: "CN=Issuing CA",
  subject: "CN=ABC",
  role: 135,
  entityId: "90-B3-D5-1F-30-01-00-00",
  keyUsage: ["digitalSignature"],
  subjectKeyId: null,
  authorityKeyId: null,
  notBefore: 0,
  notAfter: 1,
  mpids: ["ABCD"],
};

function pending(countersigned: Buffer | null): PendingDecision {
  return {
    v: 2,
    requestId: "90-B3-D5-1F-30-01-00-00:00-00-00-00-00-00-00-01:1",
    userId: "90-B3-D5-1F-30-01-00-00",
    deviceId: "00-00-00-00-00-00-00-01",
    receivedAt: 1_780_000_000_000,
    importMpxn: "1234567890123",
    switchDay: 20_000,
    signer: SIGNER,
    failures: [{ checkId: "replay", message: "seen ✓ before" }],
    device: { smetsGeneration: "SMETS2", deviceType: "ESME", cosParty: "ECOS" },
    raw: Buffer.from("<sr:Request>é\u0000\xff</sr:Request>", "utf8"),
    countersigned,
  };
}

describe("dsp-validate internal topic serde", () => {
  const serde = pendingDecisionSerde();

  test("version 2 carries the bytes as bytes, with and without a countersignature", () => {
    for (const cs of [Buffer.from([0, 1, 2, 255]), Buffer.alloc(0), null]) {
      const p = pending(cs);
      const bytes = serde.serialize("t", p);
      expect(bytes[0]).toBe(2);
      expect(bytes.includes(p.raw)).toBe(true);
      expect(serde.deserialize("t", bytes)).toEqual(p);
    }
  });

  test("the JSON part is what JSON.stringify of the fields gives; a reused signer's JSON follows its own content", () => {
    const jsonPart = (bytes: Buffer): string => bytes.subarray(5, 5 + bytes.readUInt32BE(1)).toString("utf8");
    const p = pending(Buffer.from("cs"));
    const { raw: _raw, countersigned: _cs, ...fields } = p;
    expect(jsonPart(serde.serialize("t", p))).toBe(JSON.stringify(fields));
    // Shared (frozen) signer summaries have their JSON remembered: another signer must get its own,
    // and an unfrozen one (which could change) is written afresh each time.
    const a = Object.freeze({ ...SIGNER, mpids: Object.freeze(["AAAA"]) });
    const b = Object.freeze({ ...SIGNER, mpids: Object.freeze(["BBBB"]) });
    for (const signer of [a, b, a, b]) {
      const bytes = serde.serialize("t", { ...p, signer });
      expect((serde.deserialize("t", bytes) as PendingDecision).signer).toEqual(signer);
    }
    const mutable = { ...SIGNER, mpids: ["CCCC"] };
    const mpidsOf = (x: PendingDecision): readonly string[] =>
      (serde.deserialize("t", serde.serialize("t", x)) as PendingDecision).signer.mpids;
    expect(mpidsOf({ ...p, signer: mutable })).toEqual(["CCCC"]);
    mutable.mpids = ["DDDD"];
    expect(mpidsOf({ ...p, signer: mutable })).toEqual(["DDDD"]);
  });

  test("version 1 records (JSON, base64) still read", () => {
    const p = pending(Buffer.from("countersigned"));
    const v1 = {
      ...p,
      v: 1,
      raw: p.raw.toString("base64"),
      countersigned: p.countersigned!.toString("base64"),
    };
    expect(serde.deserialize("t", Buffer.from(JSON.stringify(v1), "utf8"))).toEqual(p);
    expect(serde.deserialize("t", Buffer.from(JSON.stringify({ ...v1, countersigned: null })))).toEqual(
      pending(null),
    );
  });

  test("truncated or unknown records are refused", () => {
    const bytes = serde.serialize("t", pending(Buffer.from("x")));
    expect(() => serde.deserialize("t", bytes.subarray(0, bytes.length - 1))).toThrow(/truncated/);
    expect(() => serde.deserialize("t", Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(
      /unknown version/,
    );
  });
});
