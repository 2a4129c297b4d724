/**
 * Bad input through dsp-validate: malformed, hostile and truncated requests are each answered once
 * with a clear check id, none crashes a worker or blocks the partition (a valid request after them is
 * accepted) — inline and through the real worker pool.
 */
import { DspWorkerPool } from "../../workers/dsp-pool";
import { signed623 } from "../workers/fixtures";
import { cast, dsAsSigner, dspRig } from "./fixtures";

function corpus(): Array<[string, Buffer]> {
  const valid = signed623({}, 900);
  const laughs =
    `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">` +
    Array.from(
      { length: 9 },
      (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? "" : i};`.repeat(10)}">`,
    ).join("") +
    `]><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">&lol9;</sr:Request>`;
  const xxe = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">&x;</sr:Request>`;
  const deep = `${"<a>".repeat(100_000)}${"</a>".repeat(100_000)}`;
  const cases: Array<[string, Buffer]> = [
    ["empty", Buffer.alloc(0)],
    ["binary garbage", Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 37) % 256))],
    ["billion laughs", Buffer.from(laughs)],
    ["external entity", Buffer.from(xxe)],
    ["deep nesting", Buffer.from(deep)],
    ["UTF-16 BOM", Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("<a/>", "utf16le")])],
    ["processing instruction soup", Buffer.from("<?xml version='1.0'?><?pi x?><?pi y?>")],
    [
      "unclosed root",
      Buffer.from('<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">'),
    ],
    ["wrong namespace", Buffer.from('<sr:Request xmlns:sr="urn:other" schemaVersion="5.4"/>')],
  ];
  for (const cut of [10, 200, 1000, Math.floor(valid.length / 2), valid.length - 20])
    cases.push([`truncated at ${cut}`, valid.subarray(0, cut)]);
  return cases;
}

describe("bad input through dsp-validate", () => {
  test("inline: each is answered once with a clear reason; a 100 MB body too; the partition goes on", async () => {
    const rig = await dspRig();
    const cases = corpus();
    cases.push(["100 MB body", Buffer.alloc(100 * 1024 * 1024, 0x20)]);
    for (const [, bytes] of cases) await rig.submit(bytes);
    await rig.submit(signed623({}, 901));
    const out = await rig.responses();
    expect(out).toHaveLength(cases.length + 1);
    out.slice(0, -1).forEach((r, i) => {
      expect([cases[i]![0], r.value.successful]).toEqual([cases[i]![0], false]);
      expect(["xml", "schema", "signature"]).toContain(r.headers["ecos.dsp.check"]);
      expect(r.headers["ecos.dsp.reason"]!.length).toBeGreaterThan(5);
    });
    expect(out[cases.length - 1]!.headers["ecos.dsp.reason"]).toMatch(/more than the 524288 accepted/);
    expect(out[out.length - 1]!.headers["ecos.dsp.check"]).toBe("accepted");
    expect(rig.driver.rawRecords("ecos.dead-letters")).toHaveLength(0);
  });

  test("through the worker pool: the same corpus in one run, then valid requests", async () => {
    const c = cast();
    const pool = new DspWorkerPool({
      trust: c.pki.trust([c.supplierXmlSign, c.dspXmlSign, dsAsSigner()]),
      countersignWith: { scalar: c.dspXmlSign.scalar, certificate: c.dspXmlSign.der },
      threads: 1,
      batchSize: 4,
    });
    try {
      const rig = await dspRig({ verifier: pool });
      const cases = corpus();
      const t = "duis.requests";
      await rig.driver.pipeRaw(t, [
        ...cases.map(([, value]) => ({
          key: Buffer.from("00-DB-12-34-56-78-90-A0"),
          value,
          timestamp: rig.driver.wallClock(),
        })),
        {
          key: Buffer.from("00-DB-12-34-56-78-90-A0"),
          value: signed623({}, 902),
          timestamp: rig.driver.wallClock(),
        },
      ]);
      const out = await rig.responses();
      expect(out.map((r) => r.headers["ecos.dsp.check"] === "accepted")).toEqual([
        ...cases.map(() => false),
        true,
      ]);
      expect(pool.stats.tasks).toBeGreaterThan(1);
      // The countersigned request left through the pool.
      expect(await rig.toCosParty("ecos")).toHaveLength(1);
    } finally {
      await pool.close();
    }
  });
});
