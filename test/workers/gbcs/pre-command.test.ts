import * as fs from "node:fs";
import * as path from "node:path";
import { nobleEcdsa, opensslEcdsa } from "../../../workers/crypto/ecdsa";
import { EcosError } from "../../../processors/runtime/errors";
import {
  buildPreCommand,
  decodeUpdateSecurityCredentials,
  DUIS_CANCELLATION_MS,
  encodeUnsignedPreCommand,
  entityIdString,
  parsePreCommand,
  payloadFor623,
  preCommandMismatches,
  signGeneralSigning,
  verifyPreCommandSignature,
  type PreCommandInput,
  type Srv623Credentials,
} from "../../../workers/gbcs/pre-command";
import { buildSrv623Cast } from "../../../workers/testing/test-pki";
import {
  encodeExecutionOutcome,
  parseDeviceAlert,
  parseDeviceResponse,
} from "../../../workers/gbcs/device-response";

const cast = buildSrv623Cast("gbcs-test");
const cosParty = cast.pki.issue("ecos-party", { ou: "05", entityId: "90-B3-D5-1F-30-00-00-04" }, [
  "digitalSignature",
]);
const cosKey = opensslEcdsa.importPrivateKey(cosParty.scalar);
const cosPublic = opensslEcdsa.importPublicKey(cosParty.point);

/** The reference vector's inputs (reference §2.3, §3.1): ids, floors 0/0, CPV checks applied. */
const COS_PARTY_ID = "90-B3-D5-1F-30-00-00-04";
const DEVICE_ID = "00-DB-12-34-56-78-90-A0";
const request = (executionDateTime?: number): Srv623Credentials => ({
  ...(executionDateTime === undefined ? {} : { executionDateTime }),
  supplierFloorSeqNumber: 0n,
  supplierPrepaymentTopUpFloorSeqNumber: 0n,
  digitalSigningCertificate: cast.replacementDs.der,
  keyAgreementCertificate: cast.replacementKa.der,
  keyAgreementTopUpCertificate: cast.replacementKaTopUp.der,
  certificationPathCertificates: [cast.pki.oca.der],
  applyTimeBasedCpvChecks: true,
});
const input = (counter: bigint, executionDateTime?: number): PreCommandInput => ({
  cosPartyId: COS_PARTY_ID,
  deviceId: DEVICE_ID,
  counter,
  payload: payloadFor623(request(executionDateTime)),
});

// Test-side DER scaffolding, written out from reference §3.1–3.2 (not from the encoder).
const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const len = (n: number): Buffer =>
  n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
const wrap = (tag: number, ...parts: Buffer[]): Buffer => {
  const c = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(c.length), c]);
};
const replacementsAndPath = (): Buffer[] => [
  wrap(
    0x30,
    wrap(0x30, cast.replacementDs.der, h("3007 020102 03020780")),
    wrap(0x30, cast.replacementKa.der, h("3007 020102 03020308")),
    wrap(0x30, cast.replacementKaTopUp.der, h("300A 020102 03020308 020101")),
  ),
  wrap(0x30, cast.pki.oca.der),
];
const header = (counterHex: string, contentLength: number): Buffer =>
  Buffer.concat([
    h(`DF 09 01 000000000000${counterHex} 08 90B3D51F30000004 08 00DB1234567890A0 00 02 0107`),
    len(contentLength),
  ]);

describe("CS02b pre-command against the reference structure (§3.1–3.2)", () => {
  const cases = [
    {
      name: "future-dated (counter 6002, executionDateTime 20300102000000Z)",
      counter: 6002n,
      at: Date.UTC(2030, 0, 2),
      control: "3024 020107 A207 020105 03020780 83021772 A612 3010 020102 020100 3008 3006 020100 020100",
      time: h("180F").toString("hex") + Buffer.from("20300102000000Z").toString("hex"),
    },
    {
      name: "immediate (counter 6001, no executionDateTime)",
      counter: 6001n,
      at: undefined,
      control: "3024 020107 A207 020105 03020780 83021771 A612 3010 020102 020100 3008 3006 020100 020100",
      time: "",
    },
    {
      name: "cancellation (counter 6003, GBCS sentinel, no sequence-number changes)",
      counter: 6003n,
      at: DUIS_CANCELLATION_MS,
      control: "3010 020107 A207 020105 03020780 83021773",
      time: h("180F").toString("hex") + Buffer.from("99991231235959Z").toString("hex"),
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const apdu = buildPreCommand(input(c.counter, c.at), opensslEcdsa, cosKey);
      const payload = wrap(0x30, h(c.control), ...replacementsAndPath(), h(c.time));
      const expected = Buffer.concat([
        header(c.counter.toString(16).padStart(4, "0"), payload.length),
        payload,
      ]);
      // Byte for byte up to the signature; then 0x40 and a 64-byte raw r‖s signature.
      expect(apdu.subarray(0, expected.length).toString("hex")).toBe(expected.toString("hex"));
      expect(apdu.length).toBe(expected.length + 65);
      expect(apdu[expected.length]).toBe(0x40);
      const parsed = parsePreCommand(apdu);
      expect(parsed.signedBytes.equals(expected.subarray(1))).toBe(true);
      expect(verifyPreCommandSignature(parsed, opensslEcdsa, cosPublic)).toBe(true);
      expect(verifyPreCommandSignature(parsed, nobleEcdsa, nobleEcdsa.importPublicKey(cosParty.point))).toBe(
        true,
      );
    });
  }

  test("ApplyTimeBasedCPVChecks false writes [1] disapply(1) after the mode", () => {
    const i = input(7n);
    const apdu = encodeUnsignedPreCommand({
      ...i,
      payload: { ...i.payload, applyTimeBasedCpvChecks: false },
    });
    expect(apdu.toString("hex")).toContain(
      h("3026 020107 810101 A207 020105 03020780 830107").toString("hex"),
    );
  });
});

describe("decoding", () => {
  test("round trip, and a noble signature verifies with OpenSSL", () => {
    const i = input(123456789012n, Date.UTC(2031, 5, 30, 12, 0, 0));
    const apdu = buildPreCommand(i, nobleEcdsa, nobleEcdsa.importPrivateKey(cosParty.scalar));
    const p = parsePreCommand(apdu);
    expect(p.header.originatorCounter).toBe(123456789012n);
    expect(entityIdString(p.header.originator)).toBe(COS_PARTY_ID);
    expect(entityIdString(p.header.recipient)).toBe(DEVICE_ID);
    expect(p.payload).toEqual({ ...i.payload, authorisingSeqNumber: 123456789012n });
    expect(verifyPreCommandSignature(p, opensslEcdsa, cosPublic)).toBe(true);
    expect(preCommandMismatches(p, i)).toEqual([]);
  });

  test("every single-byte change is refused by the decoder or the signature check", () => {
    const apdu = buildPreCommand(input(6001n), opensslEcdsa, cosKey);
    let refusedByDecoder = 0;
    for (let pos = 0; pos < apdu.length; pos++) {
      const t = Buffer.from(apdu);
      t[pos] = t[pos]! ^ 0x01;
      let ok: boolean;
      try {
        ok = verifyPreCommandSignature(parsePreCommand(t), opensslEcdsa, cosPublic);
      } catch (err) {
        expect((err as EcosError).code).toBe("ECOS_GBCS_MALFORMED");
        refusedByDecoder++;
        ok = false;
      }
      if (ok) throw new Error(`tampered byte ${pos} accepted`);
    }
    expect(refusedByDecoder).toBeGreaterThan(0);
  });

  const malformed = (bytes: Buffer): string => {
    try {
      parsePreCommand(bytes);
    } catch (err) {
      expect(err).toBeInstanceOf(EcosError);
      expect((err as EcosError).code).toBe("ECOS_GBCS_MALFORMED");
      return (err as EcosError).message;
    }
    throw new Error("accepted");
  };

  test("strictness: trailing bytes, truncation, unsigned, wrong CRA or message code", () => {
    const apdu = buildPreCommand(input(6001n), opensslEcdsa, cosKey);
    malformed(Buffer.concat([apdu, Buffer.from([0])]));
    malformed(apdu.subarray(0, apdu.length - 1));
    malformed(encodeUnsignedPreCommand(input(6001n)));
    const cra = Buffer.from(apdu);
    cra[2] = 2;
    expect(malformed(cra)).toMatch(/CRA/);
    const code = Buffer.from(apdu);
    code[31] = 0x02; // message code 0x0107 → 0x0207
    expect(malformed(code)).toMatch(/message code/);
  });

  test("strictness: header counter must equal authorisingRemotePartySeqNumber", () => {
    const unsigned = encodeUnsignedPreCommand(input(6001n));
    unsigned[10] = 0x72; // header counter 6002, payload still 6001
    expect(malformed(signGeneralSigning(unsigned, opensslEcdsa, cosKey))).toMatch(/header counter/);
  });

  test("strictness: a non-minimal DER length in the payload is refused even when signed", () => {
    const p = encodeUnsignedPreCommand(input(6001n));
    // Rewrite the mode INTEGER 02 01 07 as a BER long-form length 02 81 01 07: not DER.
    const at = p.indexOf(h("020107"));
    const ber = Buffer.concat([p.subarray(0, at), h("02810107"), p.subarray(at + 3)]);
    expect(() => decodeUpdateSecurityCredentials(ber.subarray(ber.indexOf(0x30, 34)))).toThrow(EcosError);
  });

  test("dispatch mirror check names the fields that differ", () => {
    const apdu = parsePreCommand(buildPreCommand(input(10n), opensslEcdsa, cosKey));
    const floor = { ...request(), supplierFloorSeqNumber: 5n };
    expect(preCommandMismatches(apdu, { ...input(10n), payload: payloadFor623(floor) })).toEqual([
      "seqNumberChanges",
    ]);
    expect(preCommandMismatches(apdu, input(11n))).toEqual(["counter"]);
    expect(preCommandMismatches(apdu, { ...input(10n), deviceId: "00-DB-12-34-56-78-90-A1" })).toEqual([
      "recipient",
    ]);
    const otherCert = { ...request(), keyAgreementCertificate: cast.replacementKaTopUp.der };
    expect(preCommandMismatches(apdu, { ...input(10n), payload: payloadFor623(otherCert) })).toEqual([
      "replacementCertificates",
    ]);
    expect(preCommandMismatches(apdu, input(10n, Date.UTC(2030, 0, 2)))).toEqual(["execution"]);
  });

  test("payloadFor623: DS only, no top-up floor, cancellation sentinel", () => {
    const p = payloadFor623({
      supplierFloorSeqNumber: 9n,
      digitalSigningCertificate: cast.replacementDs.der,
      certificationPathCertificates: [cast.pki.oca.der],
      applyTimeBasedCpvChecks: true,
    });
    expect(p.replacements).toHaveLength(1);
    expect(p.seqNumberChanges).toEqual([{ role: 2, floorSeqNumber: 9n, specialistFloors: [] }]);
    const cancel = payloadFor623({ ...request(), executionDateTime: DUIS_CANCELLATION_MS });
    expect(cancel.execution).toEqual({ kind: "cancellation" });
    expect(cancel.seqNumberChanges).toBeNull();
    expect(() => payloadFor623({ ...request(), supplierFloorSeqNumber: 1n << 63n })).toThrow(EcosError);
    expect(() =>
      encodeUnsignedPreCommand({
        ...input(1n),
        payload: { ...input(1n).payload, execution: { kind: "futureDated", at: 1.5 } },
      }),
    ).toThrow(EcosError);
  });
});

/**
 * The public RTDS 4.5.0 CS02b command vectors are not committed (their repository is GPL). Point
 * ECOS_RTDS_CS02B_DIR at a directory holding the *_COMMAND_GBCS.HEX files to check that the decoder reads
 * them and the encoder rewrites every byte up to the signature.
 */
const rtdsDir = process.env["ECOS_RTDS_CS02B_DIR"];
(rtdsDir ? describe : describe.skip)("RTDS CS02b command vectors (opt-in)", () => {
  test("decode and re-encode byte for byte up to the signature", () => {
    const files = fs.readdirSync(rtdsDir!).filter((f) => f.endsWith("_COMMAND_GBCS.HEX"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const all = Buffer.from(fs.readFileSync(path.join(rtdsDir!, f), "utf8").replace(/\s+/g, ""), "hex");
      const apdu = all.subarray(all.indexOf(0xdf, 7), all.length - 12); // drop the ACB MAC header and tag
      const p = parsePreCommand(apdu);
      const again = encodeUnsignedPreCommand({
        cosPartyId: entityIdString(p.header.originator),
        deviceId: entityIdString(p.header.recipient),
        counter: p.header.originatorCounter,
        payload: p.payload,
      });
      expect(again.subarray(0, -1).equals(apdu.subarray(0, -65))).toBe(true);
    }
  });

  test("device responses and alerts: the ExecutionOutcome re-encodes byte for byte", () => {
    const files = fs.readdirSync(rtdsDir!).filter((f) => /_(RESPONSE|ALERT)_GBCS\.HEX$/.test(f));
    for (const f of files) {
      const apdu = Buffer.from(fs.readFileSync(path.join(rtdsDir!, f), "utf8").replace(/\s+/g, ""), "hex");
      const p = f.includes("_ALERT_") ? parseDeviceAlert(apdu) : parseDeviceResponse(apdu);
      if (p.outcome) {
        const o = encodeExecutionOutcome(p.outcome);
        expect(p.content.subarray(p.content.length - o.length).equals(o)).toBe(true);
      }
    }
  });
});
