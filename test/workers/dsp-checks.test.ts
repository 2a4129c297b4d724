import { DSP_CHECK_IDS, WORKER_CHECK_IDS, firstFailure } from "../../workers/dsp/checks";
import type { DuisVerification } from "../../workers/dsp/validate";
import { validateDuisRequest } from "../../workers/dsp/validate";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import { readDuisRequest } from "../../workers/duis/request";
import type { Srv623Request } from "../../workers/duis/request";
import { parseXmlString } from "../../workers/xml/parser";
import { DEVICE_ID, RECEIVED_AT, cast, sign, signed623, trustStore, unsigned623 } from "./fixtures";

const trust = trustStore();
const run = (bytes: Buffer, at = RECEIVED_AT): DuisVerification =>
  validateDuisRequest(bytes, at, { trust, ecdsa: opensslEcdsa });

describe("6.23 structure: forms and the header", () => {
  test("immediate, future-dated and cancellation forms", () => {
    const read = (exec?: string): Srv623Request =>
      readDuisRequest(
        parseXmlString(unsigned623(exec ? { executionDateTime: exec } : {}).toString()),
      ) as Srv623Request;
    expect(read().form).toBe("immediate");
    const fd = read("2030-01-02T00:00:00.00Z");
    expect([fd.form, fd.executionTime]).toEqual(["future-dated", Date.UTC(2030, 0, 2)]);
    expect(read("3000-12-31T00:00:00.00Z").form).toBe("cancellation");
    expect(read("2030-01-02T01:00:00+01:00").executionTime).toBe(Date.UTC(2030, 0, 2));
  });

  test("the request id, floors and certificates are typed", () => {
    const r = readDuisRequest(
      parseXmlString(unsigned623({ supplierFloorSeqNumber: "+0009223372036854775807" }).toString()),
    ) as Srv623Request;
    expect(r.header.requestId).toEqual({
      text: `90-B3-D5-1F-30-01-00-00:${DEVICE_ID}:1006`,
      businessOriginatorId: "90-B3-D5-1F-30-01-00-00",
      businessTargetId: DEVICE_ID,
      originatorCounter: "1006",
    });
    expect(r.supplierFloorSeqNumber).toBe("9223372036854775807");
    expect(r.replacementCertificates.digitalSigning).toEqual(cast().replacementDs.der);
    expect(r.certificationPathCertificates).toHaveLength(1);
  });

  test("another SRV is recognised from the header and reported as unsupported", () => {
    const text = unsigned623()
      .toString()
      .replace(/6\.23<\/sr:ServiceReference>/, "4.1</sr:ServiceReference>")
      .replace(/6\.23<\/sr:ServiceReferenceVariant>/, "4.1.1</sr:ServiceReferenceVariant>")
      .replace(/<sr:Body>[\s\S]*<\/sr:Body>/, "<sr:Body><sr:ReadInstantaneousImportRegisters/></sr:Body>");
    expect(run(Buffer.from(text))).toMatchObject({ ok: false, code: "ECOS_SRV_UNSUPPORTED", srv: "4.1.1" });
  });
});

/** Every element of the 6.23 missing, out of order, or of the wrong type: a schema failure naming it. */
const SCHEMA_CASES: [string, string, string, RegExp][] = [
  ["RequestID missing", /<sr:RequestID>[^<]*<\/sr:RequestID>/.source, "", /RequestID is missing/],
  ["RequestID malformed", ":1006</sr:RequestID>", ":01006</sr:RequestID>", /not EUI-64:EUI-64:counter/],
  ["counter too large", ":1006</sr:RequestID>", ":18446744073709551616</sr:RequestID>", /larger than/],
  ["CommandVariant 10", "<sr:CommandVariant>1<", "<sr:CommandVariant>10<", /CommandVariant/],
  [
    "ServiceReference missing",
    /<sr:ServiceReference>6.23<\/sr:ServiceReference>/.source,
    "",
    /ServiceReference is missing/,
  ],
  [
    "header out of order",
    /(<sr:CommandVariant>1<\/sr:CommandVariant>)(\s*)(<sr:ServiceReference>6.23<\/sr:ServiceReference>)/
      .source,
    "$3$2$1",
    /out of order/,
  ],
  [
    "variant of another SRV",
    "6.23</sr:ServiceReferenceVariant>",
    "6.24</sr:ServiceReferenceVariant>",
    /does not belong/,
  ],
  ["schemaVersion 4.0", 'schemaVersion="5.4"', 'schemaVersion="4.0"', /DUIS 5.x only/],
  [
    "wrong root namespace",
    'xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway"',
    'xmlns:sr="urn:other"',
    /not sr:Request/,
  ],
  [
    "body element unknown",
    "<sr:UpdateSecurityCredentialsCoS>",
    "<sr:UpdateSecurityCredentialsCoS><sr:Foo/>",
    /unexpected element Foo|Foo/,
  ],
  [
    "SupplierFloorSeqNumber missing",
    /<sr:SupplierFloorSeqNumber>0<\/sr:SupplierFloorSeqNumber>/.source,
    "",
    /SupplierFloorSeqNumber is missing/,
  ],
  [
    "floor negative",
    "<sr:SupplierFloorSeqNumber>0<",
    "<sr:SupplierFloorSeqNumber>-1<",
    /not a non-negative integer/,
  ],
  [
    "floor above 2^63-1",
    "<sr:SupplierFloorSeqNumber>0<",
    "<sr:SupplierFloorSeqNumber>9223372036854775808<",
    /larger than/,
  ],
  [
    "replacements missing",
    /<sr:SupplierReplacementCertificates>[\s\S]*<\/sr:SupplierReplacementCertificates>/.source,
    "",
    /SupplierReplacementCertificates is missing/,
  ],
  [
    "DS certificate missing",
    /<sr:DigitalSigningCertificate>[^<]*<\/sr:DigitalSigningCertificate>/.source,
    "",
    /DigitalSigningCertificate is missing/,
  ],
  [
    "certificate not base64",
    "<sr:DigitalSigningCertificate>",
    "<sr:DigitalSigningCertificate>!",
    /not base64/,
  ],
  ["four path certificates", /(<sr:Certificate>[^<]*<\/sr:Certificate>)/.source, "$1$1$1$1", /more than 3/],
  ["no path certificate", /<sr:Certificate>[^<]*<\/sr:Certificate>/.source, "", /Certificate is missing/],
  [
    "ApplyTimeBasedCPVChecks yes",
    ">true</sr:ApplyTimeBasedCPVChecks>",
    ">yes</sr:ApplyTimeBasedCPVChecks>",
    /not an xs:boolean/,
  ],
  ["ImportMPxN too long", ">1312345678333<", ">13123456783330<", /1 to 13/],
  [
    "ImportMPxN before ApplyTimeBased",
    /(<sr:ApplyTimeBasedCPVChecks>true<\/sr:ApplyTimeBasedCPVChecks>)(\s*)(<sr:ImportMPxN>1312345678333<\/sr:ImportMPxN>)/
      .source,
    "$3$2$1",
    /out of order/,
  ],
  [
    "ExecutionDateTime invalid",
    "<sr:SupplierFloorSeqNumber>",
    "<sr:ExecutionDateTime>2030-02-30T00:00:00Z</sr:ExecutionDateTime><sr:SupplierFloorSeqNumber>",
    /not a valid date/,
  ],
  [
    "ExecutionDateTime after floor",
    "<sr:ImportMPxN>",
    "<sr:ExecutionDateTime>2030-01-01T00:00:00Z</sr:ExecutionDateTime><sr:ImportMPxN>",
    /out of order|unexpected/,
  ],
  ["text in element-only content", "<sr:Body>", "<sr:Body>x", /text is not allowed/],
  ["foreign attribute", "<sr:Header>", '<sr:Header id="1">', /attribute id is not allowed/],
];

describe("schema check: each element's presence, order, type and limits", () => {
  test.each(SCHEMA_CASES)("%s", (_name, from, to, message) => {
    const text = unsigned623().toString("utf8").replace(new RegExp(from), to);
    expect(text).not.toBe(unsigned623().toString("utf8"));
    const r = run(sign(text));
    expect(r).toMatchObject({ ok: false, checkId: "schema", code: "ECOS_DUIS_SCHEMA_INVALID" });
    expect(r.message).toMatch(message);
  });
});

describe("each worker check fails on its own request and passes its near miss", () => {
  test("the valid request passes every worker check and carries the facts the topology needs", () => {
    const r = run(signed623());
    expect(r.ok).toBe(true);
    expect(r.request).toMatchObject({
      businessTargetId: DEVICE_ID,
      importMpxn: "1312345678333",
      replacementCount: 3,
      form: "immediate",
    });
    expect(r.signer).toMatchObject({ role: 135, mpids: ["ACEE", "ACG"], entityId: cast().supplierId });
  });

  test("xml", () => {
    expect(run(Buffer.from("<sr:Request"))).toMatchObject({
      ok: false,
      checkId: "xml",
      code: "ECOS_DUIS_MALFORMED",
    });
  });

  test("signature: body changed after signing / near miss: white space outside the document element", () => {
    const signed = signed623();
    expect(run(Buffer.from(signed.toString().replace("1312345678333", "1312345678334")))).toMatchObject({
      checkId: "signature",
    });
    expect(run(Buffer.concat([signed, Buffer.from("\n\n")])).ok).toBe(true);
  });

  test("signer-role (E65): signed with the supplier's DS certificate instead of xmlSign / near miss xmlSign", () => {
    const ds = cast().pki.issue("ds-as-signer", { ou: "02", entityId: cast().supplierId }, [
      "digitalSignature",
    ]);
    const store = trustStore(opensslEcdsa, {
      ...cast(),
      trust: cast().pki.trust([cast().supplierXmlSign, ds]),
    });
    expect(
      validateDuisRequest(sign(unsigned623(), ds), RECEIVED_AT, { trust: store, ecdsa: opensslEcdsa }),
    ).toMatchObject({ checkId: "signer-role" });
    expect(validateDuisRequest(signed623(), RECEIVED_AT, { trust: store, ecdsa: opensslEcdsa }).ok).toBe(
      true,
    );
  });

  test("user-id-match: BusinessOriginatorID is another user / near miss: same id in lower case", () => {
    expect(run(sign(unsigned623({ requestId: `90-B3-D5-1F-30-03-00-00:${DEVICE_ID}:1` })))).toMatchObject({
      checkId: "user-id-match",
    });
    expect(run(sign(unsigned623({ requestId: `90-b3-d5-1f-30-01-00-00:${DEVICE_ID}:1` }))).ok).toBe(true);
  });

  test("replacement-role: a KA certificate of another role / near miss: role 02", () => {
    const ka = cast().pki.issue("ka-role-03", { ou: "03", entityId: cast().supplierId }, ["keyAgreement"]);
    expect(run(sign(unsigned623({ keyAgreement: ka.der })))).toMatchObject({ checkId: "replacement-role" });
    expect(run(sign(unsigned623({ keyAgreement: cast().replacementKaTopUp.der }))).ok).toBe(true);
  });

  test("key-usage: a digitalSignature certificate in the KA slot / near miss: keyAgreement", () => {
    expect(run(sign(unsigned623({ keyAgreement: cast().replacementDs.der })))).toMatchObject({
      checkId: "key-usage",
    });
    expect(run(sign(unsigned623({ keyAgreement: cast().replacementKa.der }))).ok).toBe(true);
  });

  test("prepayment-floor: top-up KA without the top-up floor / near miss: no top-up KA either", () => {
    expect(run(sign(unsigned623({ supplierPrepaymentTopUpFloorSeqNumber: null })))).toMatchObject({
      checkId: "prepayment-floor",
    });
    expect(
      run(sign(unsigned623({ supplierPrepaymentTopUpFloorSeqNumber: null, keyAgreementTopUp: null }))).ok,
    ).toBe(true);
  });

  test("oca-present: the issuing OCA is not included / oca-used: an extra OCA issued nothing", () => {
    const otherOca = cast().pki.issueOca("oca-2", { ou: "07", cn: "Z2", printable: true });
    expect(run(sign(unsigned623({ certificationPath: [otherOca.der] })))).toMatchObject({
      checkId: "oca-present",
    });
    const r = run(sign(unsigned623({ certificationPath: [cast().pki.oca.der, otherOca.der] })));
    expect(r).toMatchObject({ checkId: "oca-used" });
    expect(run(sign(unsigned623({ certificationPath: [cast().pki.oca.der] }))).ok).toBe(true);
  });

  test("cert-valid: an expired replacement when time checks apply / near miss: ApplyTimeBasedCPVChecks false", () => {
    const old = cast().pki.issue("ka-expired", { ou: "02", entityId: cast().supplierId }, ["keyAgreement"], {
      notAfter: new Date(Date.UTC(2022, 0, 1)),
    });
    expect(run(sign(unsigned623({ keyAgreement: old.der })))).toMatchObject({ checkId: "cert-valid" });
    expect(run(sign(unsigned623({ keyAgreement: old.der, applyTimeBasedCpvChecks: false }))).ok).toBe(true);
    const undecodable = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]);
    const broken = run(sign(unsigned623({ keyAgreement: undecodable })));
    expect(broken.checkId).toBe("cert-valid");
    expect(broken.message).toMatch(/cannot be decoded/);
  });

  test("execution-date: in the past, or beyond the horizon / near misses: tomorrow, and the cancellation sentinel", () => {
    const day = 86_400_000;
    const iso = (t: number): string => new Date(t).toISOString();
    expect(run(sign(unsigned623({ executionDateTime: iso(RECEIVED_AT - day) })))).toMatchObject({
      checkId: "execution-date",
    });
    expect(run(sign(unsigned623({ executionDateTime: iso(RECEIVED_AT + 400 * day) })))).toMatchObject({
      checkId: "execution-date",
    });
    expect(run(sign(unsigned623({ executionDateTime: iso(RECEIVED_AT + day) }))).ok).toBe(true);
    expect(run(sign(unsigned623({ executionDateTime: "3000-12-31T00:00:00.00Z" }))).ok).toBe(true);
  });

  test("all later failures are listed in check order; firstFailure merges with topology failures", () => {
    const r = run(
      sign(
        unsigned623({
          supplierPrepaymentTopUpFloorSeqNumber: null,
          keyAgreement: cast().replacementDs.der,
          executionDateTime: "2020-01-01T00:00:00Z",
        }),
      ),
    );
    expect(r.failures!.map((f) => f.checkId)).toEqual(["key-usage", "prepayment-floor", "execution-date"]);
    expect(firstFailure([...r.failures!, { checkId: "mpxn-match" }])!.checkId).toBe("mpxn-match");
    expect(WORKER_CHECK_IDS.every((id) => DSP_CHECK_IDS.includes(id))).toBe(true);
  });
});

describe("work remembered across requests never answers for different bytes", () => {
  const read = (xml: Buffer | string): Srv623Request =>
    readDuisRequest(parseXmlString(xml.toString())) as Srv623Request;
  const dsText = cast().replacementDs.der.toString("base64");

  test("a certificate text seen before: the same DER, as a copy the caller may change", () => {
    const first = read(unsigned623());
    first.replacementCertificates.digitalSigning.fill(0);
    const again = read(unsigned623());
    expect(again.replacementCertificates.digitalSigning).toEqual(cast().replacementDs.der);
  });

  test("a certificate text one character away from a remembered one is checked and decoded afresh", () => {
    read(unsigned623()); // remembers the DS certificate's text
    // One base64 character changed inside the text: another DER (the same length).
    const i = 200;
    const swapped = dsText.slice(0, i) + (dsText[i] === "A" ? "B" : "A") + dsText.slice(i + 1);
    const other = read(unsigned623().toString().replace(dsText, swapped));
    expect(other.replacementCertificates.digitalSigning.equals(cast().replacementDs.der)).toBe(false);
    expect(other.replacementCertificates.digitalSigning).toEqual(Buffer.from(swapped, "base64"));
    // Not base64, and not canonical base64 (non-zero bits in the last character before the padding).
    const notBase64 = dsText.slice(0, i) + "*" + dsText.slice(i + 1);
    expect(() => read(unsigned623().toString().replace(dsText, notBase64))).toThrow(/is not base64/);
    const padded = cast().replacementKa.der.toString("base64");
    expect(padded.endsWith("=")).toBe(true);
    const last = padded.length - (padded.endsWith("==") ? 3 : 2);
    const loose =
      padded.slice(0, last) + String.fromCharCode(padded.charCodeAt(last) ^ 1) + padded.slice(last + 1);
    read(unsigned623()); // the canonical text is remembered; its loose twin is still refused
    expect(() => read(unsigned623().toString().replace(padded, loose))).toThrow(
      /not canonical base64|not base64/,
    );
  });

  test("certificate summaries are shared and frozen, one per certificate", () => {
    const a = run(signed623({}, 2001));
    const b = run(signed623({}, 2002));
    expect(a.ok && b.ok).toBe(true);
    expect(b.signer).toBe(a.signer);
    expect(Object.isFrozen(a.signer)).toBe(true);
    expect(Object.isFrozen(a.signer!.keyUsage)).toBe(true);
    expect(a.signer!.mpids).toEqual(cast().supplierXmlSign.cert.mpids);
    // Another certificate in a slot gets that certificate's summary, not the slot's last one.
    const swapped = run(signed623({ keyAgreement: cast().replacementDs.der }, 2003));
    expect(swapped.request!.replacementCertificates.keyAgreement).toBe(
      a.request!.replacementCertificates.digitalSigning,
    );
    expect(swapped.request!.replacementCertificates.keyAgreement!.serialHex).not.toBe(
      a.request!.replacementCertificates.keyAgreement!.serialHex,
    );
  });
});
