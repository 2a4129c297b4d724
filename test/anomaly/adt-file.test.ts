/**
 * The ADT file rules of seed 003 §3.2 and the strict parser: anti-replay, duplicates, defaults on
 * load, whole-file rejection, the never-submitted User, and every kind of malformed file.
 */
import { loadAdtTable, neverSubmittedTable, parseAdtFile } from "../../processors/anomaly/adt-file";
import {
  adtVersionAt,
  applyAdtFile,
  entriesOf,
  type AdtHistory,
  type AdtVersion,
} from "../../processors/anomaly/adt-table";
import { anomalyConfig } from "../../processors/anomaly/config";
import type { AdtEntry } from "../../processors/anomaly/records";
import { CRITICAL_COMMAND_SRVS, KNOWN_SRVS, SRV_CATALOGUE } from "../../processors/anomaly/srv-catalogue";
import { HEADER, T0, USER_A, adtCsv } from "./fixtures";

const config = anomalyConfig();

function parse(text: string | Buffer, last: number | null = null) {
  return parseAdtFile(typeof text === "string" ? Buffer.from(text, "utf8") : text, config, last);
}

function rejection(text: string | Buffer, last: number | null = null): { code: string; reason: string } {
  const r = parse(text, last);
  if (r.ok) throw new Error(`expected a rejection, the file was accepted: ${JSON.stringify(r)}`);
  return { code: r.code, reason: r.reason };
}

let n = 0;
function apply(history: AdtHistory | undefined, text: string, submittedAt = T0) {
  return applyAdtFile(
    history,
    { userId: USER_A, submissionId: `s${++n}`, submittedAt, content: Buffer.from(text) },
    config,
  );
}

function accepted(history: AdtHistory | undefined, text: string, submittedAt = T0): AdtHistory {
  const r = apply(history, text, submittedAt);
  if (!r.ok) throw new Error(`expected acceptance: ${r.code} ${r.reason}`);
  return r.history;
}

const table = (v: AdtVersion): AdtEntry[] => entriesOf(v);
const bySrv = (entries: AdtEntry[], srv: string): AdtEntry[] => entries.filter((e) => e.srv === srv);

describe("the SRV catalogue (configuration data)", () => {
  test("Critical-Command SRVs are known SRVs, 6.23 among them, reads not", () => {
    expect(CRITICAL_COMMAND_SRVS.every((s) => KNOWN_SRVS.includes(s))).toBe(true);
    expect(CRITICAL_COMMAND_SRVS).toEqual(
      expect.arrayContaining(["6.23", "7.1", "7.2", "11.3", "6.15.1", "1.1.1"]),
    );
    expect(CRITICAL_COMMAND_SRVS).not.toEqual(expect.arrayContaining(["4.1.1"]));
    expect(new Set(KNOWN_SRVS).size).toBe(SRV_CATALOGUE.length);
  });
});

describe("parsing a good file", () => {
  test("rows, LF or CRLF line ends, optional final line end, BOM, RFC 4180 quotes", () => {
    const lf = parse(adtCsv(7, ["6.23,1440,500,400", "7.1,60,20,15"]));
    expect(lf).toEqual({
      ok: true,
      sequenceNumber: 7,
      rows: [
        { srv: "6.23", periodMinutes: 1440, adt: 500, warningThreshold: 400, line: 3 },
        { srv: "7.1", periodMinutes: 60, adt: 20, warningThreshold: 15, line: 4 },
      ],
    });
    const crlf = `SequenceNumber,7\r\n${HEADER}\r\n6.23,1440,500,400\r\n7.1,60,20,15`;
    expect(parse(crlf)).toEqual(lf);
    const quoted = `\uFEFF"SequenceNumber","7"\n"SRV","TimePeriodApplicable","ADT","WarningThreshold"\n"6.23",1440,"500",400\n7.1,"60",20,15\n`;
    expect(parse(quoted)).toEqual(lf);
  });

  test("a file with no rows is valid (every threshold comes from the defaults)", () => {
    expect(parse(adtCsv(1, []))).toEqual({ ok: true, sequenceNumber: 1, rows: [] });
  });

  test("the same SRV with different periods is allowed", () => {
    const r = parse(adtCsv(1, ["6.23,60,5,4", "6.23,1440,50,40"]));
    expect(r.ok).toBe(true);
  });
});

describe("anti-replay: the Sequence Number must exceed every one processed for the User ID", () => {
  test("first file: any Sequence Number; then only greater ones", () => {
    const h1 = accepted(undefined, adtCsv(5, ["6.23,1440,10,5"]));
    expect(h1.lastSequenceNumber).toBe(5);
    const same = apply(h1, adtCsv(5, ["6.23,1440,99,5"]));
    expect(same).toMatchObject({ ok: false, code: "SEQUENCE_NOT_GREATER", sequenceNumber: 5 });
    expect(!same.ok && same.reason).toMatch(/5 is not greater than 5/);
    expect(apply(h1, adtCsv(4, ["6.23,1440,99,5"]))).toMatchObject({
      ok: false,
      code: "SEQUENCE_NOT_GREATER",
    });
    const h2 = accepted(h1, adtCsv(6, ["6.23,1440,99,5"]), T0 + 1000);
    expect(h2.lastSequenceNumber).toBe(6);
  });

  test("a rejected file does not raise the highest Sequence Number", () => {
    const h1 = accepted(undefined, adtCsv(1, ["6.23,1440,10,5"]));
    const bad = apply(h1, adtCsv(9, ["6.23,1440,-1,5"]));
    expect(bad).toMatchObject({ ok: false, code: "NEGATIVE_NUMBER", sequenceNumber: 9 });
    // 2 is still accepted: file 9 was never processed successfully.
    expect(accepted(h1, adtCsv(2, ["6.23,1440,10,5"])).lastSequenceNumber).toBe(2);
  });

  test("anti-replay is checked before the rows", () => {
    expect(rejection(adtCsv(3, ["6.23,1440,x,5"]), 3).code).toBe("SEQUENCE_NOT_GREATER");
  });
});

describe("no two entries for the same SRV and period", () => {
  test("a repeated SRV+period rejects the whole file, naming both lines", () => {
    const r = rejection(adtCsv(1, ["6.23,1440,10,5", "7.1,60,1,1", "6.23,1440,11,5"]));
    expect(r).toEqual({
      code: "DUPLICATE_ENTRY",
      reason: "line 5 repeats SRV 6.23 with Time Period Applicable 1440 (first on line 3)",
    });
  });
});

describe("defaults on load", () => {
  test("Critical-Command SRVs without an entry get ADT 0 / Warning 0 over 1440 minutes", () => {
    const entries = loadAdtTable([{ srv: "7.1", periodMinutes: 60, adt: 20, warningThreshold: 15 }], config);
    // 7.1 has an entry (60 minutes only): no 1440 default is added for it.
    expect(bySrv(entries, "7.1")).toEqual([
      { srv: "7.1", periodMinutes: 60, adt: 20, warningThreshold: 15, origin: "FILE" },
    ]);
    for (const srv of CRITICAL_COMMAND_SRVS.filter((s) => s !== "7.1")) {
      expect(bySrv(entries, srv)).toEqual([
        { srv, periodMinutes: 1440, adt: 0, warningThreshold: 0, origin: "DEFAULT_CRITICAL" },
      ]);
    }
  });

  test("6.23 without a 1440-minute entry gets one with zeros; with one it is kept", () => {
    const only60 = loadAdtTable([{ srv: "6.23", periodMinutes: 60, adt: 5, warningThreshold: 4 }], config);
    expect(bySrv(only60, "6.23")).toEqual([
      { srv: "6.23", periodMinutes: 60, adt: 5, warningThreshold: 4, origin: "FILE" },
      { srv: "6.23", periodMinutes: 1440, adt: 0, warningThreshold: 0, origin: "DEFAULT_COS_1440" },
    ]);
    const with1440 = loadAdtTable(
      [{ srv: "6.23", periodMinutes: 1440, adt: 50, warningThreshold: 40 }],
      config,
    );
    expect(bySrv(with1440, "6.23")).toEqual([
      { srv: "6.23", periodMinutes: 1440, adt: 50, warningThreshold: 40, origin: "FILE" },
    ]);
  });

  test("6.23's 1440 rule holds even when 6.23 is not configured as critical", () => {
    const cfg = anomalyConfig({ criticalSrvs: ["7.1"] });
    const entries = loadAdtTable([], cfg);
    expect(entries).toEqual([
      { srv: "6.23", periodMinutes: 1440, adt: 0, warningThreshold: 0, origin: "DEFAULT_COS_1440" },
      { srv: "7.1", periodMinutes: 1440, adt: 0, warningThreshold: 0, origin: "DEFAULT_CRITICAL" },
    ]);
  });

  test("other SRVs without an entry get no threshold, and earlier values are not kept", () => {
    const h1 = accepted(undefined, adtCsv(1, ["4.1.1,60,100,90", "6.23,1440,10,5"]));
    expect(bySrv(table(adtVersionAt(h1, T0, config)), "4.1.1")).toHaveLength(1);
    const h2 = accepted(h1, adtCsv(2, ["6.23,1440,10,5"]), T0 + 1000);
    const now = table(adtVersionAt(h2, T0 + 1000, config));
    expect(bySrv(now, "4.1.1")).toEqual([]);
    expect(now.every((e) => e.srv === "6.23" || CRITICAL_COMMAND_SRVS.includes(e.srv))).toBe(true);
  });
});

describe("a User ID that never sent a file", () => {
  test("has ADT and Warning Threshold 0 over 1440 minutes for every Critical-Command SRV", () => {
    const v = adtVersionAt(undefined, T0, config);
    expect(v.sequenceNumber).toBeNull();
    const entries = table(v);
    expect(entries.map((e) => e.srv).sort()).toEqual([...CRITICAL_COMMAND_SRVS].sort());
    for (const e of entries)
      expect(e).toMatchObject({
        periodMinutes: 1440,
        adt: 0,
        warningThreshold: 0,
        origin: "NEVER_SUBMITTED",
      });
    expect(neverSubmittedTable(config)).toEqual(entries);
  });

  test("requests received before the first file took effect use those defaults", () => {
    const h = accepted(undefined, adtCsv(1, ["6.23,1440,10,5"]), T0 + 60_000);
    expect(adtVersionAt(h, T0 + 59_999, config).sequenceNumber).toBeNull();
    expect(adtVersionAt(h, T0 + 60_000, config).sequenceNumber).toBe(1);
  });
});

describe("versions: the table in force at receipt", () => {
  test("each accepted file adds a version; lookup by time picks the newest effective one", () => {
    const h1 = accepted(undefined, adtCsv(1, ["6.23,1440,10,5"]), T0);
    const h2 = accepted(h1, adtCsv(2, ["6.23,1440,20,5"]), T0 + 3_600_000);
    expect(h2.versions.map((v) => v.sequenceNumber)).toEqual([1, 2]);
    expect(bySrv(table(adtVersionAt(h2, T0 + 3_599_999, config)), "6.23")[0]?.adt).toBe(10);
    expect(bySrv(table(adtVersionAt(h2, T0 + 3_600_000, config)), "6.23")[0]?.adt).toBe(20);
  });

  test("a later file with an earlier receipt time takes effect no earlier than its predecessor", () => {
    const h1 = accepted(undefined, adtCsv(1, ["6.23,1440,10,5"]), T0 + 5000);
    const h2 = accepted(h1, adtCsv(2, ["6.23,1440,20,5"]), T0);
    expect(h2.versions.map((v) => v.effectiveFrom)).toEqual([T0 + 5000, T0 + 5000]);
  });

  test("versions out of every window are dropped; the newest always stays", () => {
    const day = 86_400_000;
    let h = accepted(undefined, adtCsv(1, []), T0);
    h = accepted(h, adtCsv(2, []), T0 + day);
    h = accepted(h, adtCsv(3, []), T0 + 3 * day);
    // Version 1 was superseded 2 days before version 3: no request inside a window can need it.
    expect(h.versions.map((v) => v.sequenceNumber)).toEqual([2, 3]);
  });
});

describe("whole-file rejection with a precise reason", () => {
  test("one bad row among good ones rejects everything and leaves the table untouched", () => {
    const h1 = accepted(undefined, adtCsv(1, ["6.23,1440,10,5"]));
    const r = apply(h1, adtCsv(2, ["6.23,1440,99,5", "7.1,60,5,4", "7.2,60,abc,4"]), T0 + 1);
    expect(r).toEqual({
      ok: false,
      code: "NOT_AN_INTEGER",
      reason: 'line 5, ADT: "abc" is not a non-negative integer in plain decimal digits',
      sequenceNumber: 2,
    });
    expect(bySrv(table(adtVersionAt(h1, T0 + 10, config)), "6.23")[0]?.adt).toBe(10);
  });
});

describe("malformed files", () => {
  const good = ["6.23,1440,10,5"];
  test.each([
    [
      "unterminated quote",
      `SequenceNumber,1\n${HEADER}\n6.23,1440,10,"5`,
      "BAD_CSV",
      /line 3, field 4: quoted field is not closed/,
    ],
    [
      "quote inside an unquoted field",
      `SequenceNumber,1\n${HEADER}\n6."23,1440,10,5\n`,
      "BAD_CSV",
      /line 3, field 1: quote inside/,
    ],
    [
      "text after a closing quote",
      `SequenceNumber,1\n${HEADER}\n"6.23"x,1440,10,5\n`,
      "BAD_CSV",
      /after the closing quote/,
    ],
    [
      "line break inside quotes",
      `SequenceNumber,1\n${HEADER}\n"6.\n23",1440,10,5\n`,
      "BAD_CSV",
      /line break inside/,
    ],
    ["lone carriage return", `SequenceNumber,1\r${HEADER}\n`, "BAD_CSV", /carriage return/],
  ])("bad quoting: %s", (_name, text, code, reason) => {
    const r = rejection(text);
    expect(r.code).toBe(code);
    expect(r.reason).toMatch(reason);
  });

  test.each([
    ["decimal", "1.5", "NOT_AN_INTEGER"],
    ["word", "ten", "NOT_AN_INTEGER"],
    ["empty", "", "NOT_AN_INTEGER"],
    ["leading space", " 10", "NOT_AN_INTEGER"],
    ["plus sign", "+10", "NOT_AN_INTEGER"],
    ["leading zero", "010", "NOT_AN_INTEGER"],
    ["exponent", "1e3", "NOT_AN_INTEGER"],
    ["hex", "0x10", "NOT_AN_INTEGER"],
    ["negative", "-1", "NEGATIVE_NUMBER"],
    ["negative zero", "-0", "NEGATIVE_NUMBER"],
    ["too large", "1000000001", "NUMBER_TOO_LARGE"],
    ["far too large", "99999999999999999999999", "NUMBER_TOO_LARGE"],
  ])("wrong type in ADT: %s", (_name, value, code) => {
    const r = rejection(adtCsv(1, [`6.23,1440,${value},5`]));
    expect(r.code).toBe(code);
    expect(r.reason).toContain("line 3, ADT");
  });

  test("wrong types and negatives in the other columns name the column", () => {
    expect(rejection(adtCsv(1, ["6.23,1440,10,-5"]))).toEqual({
      code: "NEGATIVE_NUMBER",
      reason: 'line 3, WarningThreshold: "-5" is negative',
    });
    expect(rejection(adtCsv(1, ["6.23,-60,10,5"])).reason).toMatch(
      /line 3, TimePeriodApplicable: "-60" is negative/,
    );
    expect(rejection(adtCsv(1, ["6.23,sixty,10,5"])).code).toBe("NOT_AN_INTEGER");
    expect(rejection(`SequenceNumber,-3\n${HEADER}\n`).code).toBe("NEGATIVE_NUMBER");
    expect(rejection(`SequenceNumber,3.0\n${HEADER}\n`)).toMatchObject({ code: "NOT_AN_INTEGER" });
  });

  test("periods outside 1..maxPeriodMinutes", () => {
    expect(rejection(adtCsv(1, ["6.23,0,10,5"])).code).toBe("BAD_PERIOD");
    expect(rejection(adtCsv(1, ["6.23,1441,10,5"]))).toEqual({
      code: "BAD_PERIOD",
      reason: "line 3, TimePeriodApplicable: 1441 minutes is outside 1..1440",
    });
  });

  test("unknown SRVs", () => {
    expect(rejection(adtCsv(1, ["6.99,1440,10,5"]))).toEqual({
      code: "UNKNOWN_SRV",
      reason: 'line 3, SRV: "6.99" is not a known Service Reference Variant',
    });
    expect(rejection(adtCsv(1, ["SRV 6.23,1440,10,5"])).code).toBe("UNKNOWN_SRV");
    expect(rejection(adtCsv(1, [" 6.23,1440,10,5"])).code).toBe("UNKNOWN_SRV");
  });

  test("structure: missing or wrong first line, header, field counts, blank lines", () => {
    expect(rejection("").code).toBe("BAD_STRUCTURE");
    expect(rejection(`${HEADER}\n6.23,1440,10,5\n`).reason).toMatch(/line 1 must be "SequenceNumber,<n>"/);
    expect(rejection("SequenceNumber,1\n").reason).toMatch(/line 2 must be the header/);
    expect(rejection(`SequenceNumber,1\nsrv,TimePeriodApplicable,ADT,WarningThreshold\n`).code).toBe(
      "BAD_STRUCTURE",
    );
    expect(rejection(adtCsv(1, ["6.23,1440,10"]))).toEqual({
      code: "BAD_STRUCTURE",
      reason: "line 3 has 3 fields, expected 4",
    });
    expect(rejection(adtCsv(1, ["6.23,1440,10,5,1"])).code).toBe("BAD_STRUCTURE");
    expect(rejection(adtCsv(1, [...good, "", "7.1,60,1,1"]))).toEqual({
      code: "BAD_STRUCTURE",
      reason: "line 4 is empty",
    });
    expect(rejection(adtCsv(1, good) + "\n").code).toBe("BAD_STRUCTURE");
  });

  test("not UTF-8", () => {
    const bytes = Buffer.concat([
      Buffer.from(`SequenceNumber,1\n${HEADER}\n6.23,1440,`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(",5\n"),
    ]);
    expect(rejection(bytes).code).toBe("NOT_UTF8");
  });

  test("huge files: over the byte limit, or over the row limit, are refused without parsing everything", () => {
    const big = Buffer.alloc(config.maxFileBytes + 1, 0x41);
    expect(rejection(big)).toEqual({
      code: "FILE_TOO_LARGE",
      reason: `file is ${config.maxFileBytes + 1} bytes, the limit is ${config.maxFileBytes}`,
    });
    const small = anomalyConfig({ maxRows: 3 });
    const rows = ["6.23,1,1,1", "6.23,2,1,1", "6.23,3,1,1", "6.23,4,1,1"];
    const r = parseAdtFile(Buffer.from(adtCsv(1, rows)), small);
    expect(r).toMatchObject({
      ok: false,
      code: "TOO_MANY_ROWS",
      reason: "more than 3 threshold rows (limit 3)",
    });
    expect(parseAdtFile(Buffer.from(adtCsv(1, rows.slice(0, 3))), small).ok).toBe(true);
  });
});
