/**
 * DSP anomaly detection end to end on the in-process driver: threshold edges, the window sliding,
 * thresholds in force at receipt, quarantine release and deletion, redelivery, restoration.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { rememberedIds, type CountedRequestIds } from "../../processors/anomaly/request-ids";
import { RELEASED_HEADER, quarantineRefFor } from "../../processors/anomaly/processors";
import type { ExitQuarantineInstruction, ServiceRequestEnvelope } from "../../processors/anomaly/records";
import { DSP_ANOMALY_STORES, anomalyTopics } from "../../processors/anomaly/topology";
import type { WindowSet } from "../../processors/anomaly/window";
import { DEAD_LETTER_HEADERS } from "../../processors/runtime/task";
import { DEFAULT_DEAD_LETTER_TOPIC } from "../../processors/runtime/topics";
import { duplicateIds } from "../helpers/invariants";
import {
  MIN,
  T0,
  USER_A,
  USER_B,
  adtCsv,
  anomalyHarness,
  request,
  submission,
  type AnomalyHarness,
} from "./fixtures";

const BUCKET_60 = (60 * MIN) / 144; // 25 s

const ids = (rs: Array<{ requestId: string }>): string[] => rs.map((r) => r.requestId);
const passedIds = async (h: AnomalyHarness): Promise<string[]> =>
  (await h.passed()).map((r) => r.value.requestId);

function allStores(h: AnomalyHarness): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.values(DSP_ANOMALY_STORES)) out[name] = h.driver.storeEntries(name);
  return out;
}

describe("DSP anomaly detection: thresholds", () => {
  test("just below and at the ADT pass; just above is quarantined with an AD1 alert; one warning on crossing", async () => {
    const h = await anomalyHarness();
    const [res] = await h.submit(submission(USER_A, adtCsv(1, ["6.23,60,3,2", "6.23,1440,1000,1000"]), T0));
    expect(res).toMatchObject({ outcome: "ACCEPTED", sequenceNumber: 1, effectiveFrom: T0 });
    const reqs = [0, 1, 2, 3].map((k) => request(USER_A, k, T0 + 1000 + k));
    await h.send(...reqs);
    expect(await passedIds(h)).toEqual(ids(reqs.slice(0, 3)));
    const q = await h.quarantined();
    expect(q).toHaveLength(1);
    expect(q[0]).toMatchObject({
      requestId: reqs[3]!.requestId,
      quarantineEventRef: quarantineRefFor(reqs[3]!.requestId),
      periodMinutes: 60,
      count: 4,
      adt: 3,
      adtSequenceNumber: 1,
    });
    expect(q[0]?.quarantineEventRef).toMatch(/^[0-9]{1,20}$/);
    expect(Buffer.compare(q[0]!.raw, reqs[3]!.raw)).toBe(0);
    const events = await h.events();
    expect(events.map((e) => [e.kind, e.requestId, e.count, e.threshold, e.dccAlertCode])).toEqual([
      ["WARNING_THRESHOLD_CROSSED", reqs[2]!.requestId, 3, 2, null],
      ["REQUEST_QUARANTINED", reqs[3]!.requestId, 4, 3, "AD1"],
    ]);
    expect(events[1]?.quarantineEventRef).toBe(q[0]?.quarantineEventRef);
    expect(h.driver.storeEntries(DSP_ANOMALY_STORES.quarantine).map(([k]) => k)).toEqual([
      q[0]?.quarantineEventRef,
    ]);
    await h.driver.close();
  });

  test("the window slides past old requests: out one bucket after P, not before", async () => {
    const h = await anomalyHarness();
    const rows = ["6.23,60,2,2", "6.23,1440,1000,1000"];
    await h.submit(submission(USER_A, adtCsv(1, rows), T0), submission(USER_B, adtCsv(1, rows), T0));
    // Two requests in the first 25-second bucket of the hour for each User.
    await h.send(
      request(USER_A, 1, T0),
      request(USER_A, 2, T0 + 1),
      request(USER_B, 1, T0),
      request(USER_B, 2, T0 + 1),
    );
    // One millisecond before the end of the bucket holding T0 + 60 min: still counted -> 3 > 2.
    await h.send(request(USER_A, 3, T0 + 60 * MIN + BUCKET_60 - 1));
    // At the start of the next bucket both have slid out -> 1.
    await h.send(request(USER_B, 3, T0 + 60 * MIN + BUCKET_60));
    expect((await h.quarantined()).map((q) => q.requestId)).toEqual([request(USER_A, 3, 0).requestId]);
    expect(await passedIds(h)).toContain(request(USER_B, 3, 0).requestId);
    await h.driver.close();
  });

  test("every period the User set is counted; the tightest breached window is reported", async () => {
    const h = await anomalyHarness();
    await h.submit(submission(USER_A, adtCsv(1, ["7.1,10,1,1", "7.1,1440,100,50"]), T0));
    await h.send(
      request(USER_A, 1, T0, "7.1"),
      request(USER_A, 2, T0 + 11 * MIN, "7.1"),
      request(USER_A, 3, T0 + 12 * MIN, "7.1"),
    );
    const q = await h.quarantined();
    expect(q.map((x) => [x.requestId, x.periodMinutes, x.count])).toEqual([
      [request(USER_A, 3, 0).requestId, 10, 2],
    ]);
    const windows = h.driver.storeEntries<{ rings: Array<{ periodMinutes: number; total: number }> }>(
      DSP_ANOMALY_STORES.windows,
    );
    expect(windows.map(([k, v]) => [k, v.rings.map((r) => [r.periodMinutes, r.total])])).toEqual([
      [
        `${USER_A}|7.1`,
        [
          [10, 2],
          [1440, 3],
        ],
      ],
    ]);
    await h.driver.close();
  });

  test("a User ID that never submitted a file: critical requests are quarantined, others pass uncounted", async () => {
    const h = await anomalyHarness();
    await h.send(
      request(USER_A, 1, T0, "7.1"),
      request(USER_A, 2, T0, "4.1.1"),
      request(USER_A, 3, T0, "6.23"),
    );
    expect((await h.quarantined()).map((q) => [q.srv, q.adt, q.adtSequenceNumber])).toEqual([
      ["7.1", 0, null],
      ["6.23", 0, null],
    ]);
    expect(await passedIds(h)).toEqual([request(USER_A, 2, 0).requestId]);
    expect(
      rememberedIds(h.driver.storeEntries<CountedRequestIds>(DSP_ANOMALY_STORES.countedRequests)),
    ).toHaveLength(2);
    await h.driver.close();
  });

  test("a file setting 6.23 only for 60 minutes gets the zero 1440-minute default: 6.23 is quarantined", async () => {
    const h = await anomalyHarness();
    await h.submit(submission(USER_A, adtCsv(1, ["6.23,60,3,2"]), T0));
    await h.send(request(USER_A, 1, T0 + 1));
    expect((await h.quarantined()).map((q) => [q.periodMinutes, q.adt])).toEqual([[1440, 0]]);
    await h.driver.close();
  });

  test("a request is checked against the table in force when it was received, not when it is processed", async () => {
    const h = await anomalyHarness();
    await h.submit(submission(USER_A, adtCsv(1, ["6.23,1440,1,1"]), T0));
    // File 2 (ADT 5) received at T0+10 min is processed before requests received at T0+5 min.
    await h.submit(submission(USER_A, adtCsv(2, ["6.23,1440,5,5"]), T0 + 10 * MIN));
    await h.send(request(USER_A, 1, T0 + 5 * MIN), request(USER_A, 2, T0 + 5 * MIN + 1));
    const q = await h.quarantined();
    expect(q.map((x) => [x.requestId, x.adt, x.adtSequenceNumber])).toEqual([
      [request(USER_A, 2, 0).requestId, 1, 1],
    ]);
    // From T0+10 min file 2 applies: counts go on (3, 4, 5 ≤ 5), the sixth is quarantined.
    await h.send(...[3, 4, 5, 6].map((k) => request(USER_A, k, T0 + 10 * MIN + k)));
    expect((await h.quarantined()).map((x) => [x.requestId, x.count, x.adt, x.adtSequenceNumber])).toEqual([
      [request(USER_A, 6, 0).requestId, 6, 5, 2],
    ]);
    await h.driver.close();
  });

  test("a rejected file leaves the previous table in force", async () => {
    const h = await anomalyHarness();
    await h.submit(submission(USER_A, adtCsv(1, ["6.23,1440,2,2"]), T0));
    const [r] = await h.submit(
      submission(USER_A, adtCsv(2, ["6.23,1440,100,100", "6.23,1440,100,100"]), T0 + 1),
    );
    expect(r).toMatchObject({
      outcome: "REJECTED",
      rejectionCode: "DUPLICATE_ENTRY",
      sequenceNumber: 2,
      entries: [],
    });
    await h.send(...[1, 2, 3].map((k) => request(USER_A, k, T0 + 10 + k)));
    expect((await h.quarantined()).map((x) => x.count)).toEqual([3]);
    await h.driver.close();
  });
});

describe("DSP anomaly detection: quarantine exit", () => {
  async function quarantineTwo(h: AnomalyHarness): Promise<[string, string, ServiceRequestEnvelope[]]> {
    await h.submit(submission(USER_A, adtCsv(1, ["6.23,1440,1,1"]), T0));
    const reqs = [1, 2, 3].map((k) => request(USER_A, k, T0 + k));
    await h.send(...reqs);
    await h.passed();
    const q = await h.quarantined();
    expect(q).toHaveLength(2);
    return [q[0]!.quarantineEventRef, q[1]!.quarantineEventRef, reqs];
  }
  const exit = (
    userId: string,
    ref: string,
    action: "RELEASE" | "DELETE",
    n: number,
  ): ExitQuarantineInstruction => ({
    instructionId: `x${n}`,
    userId,
    quarantineEventRef: ref,
    action,
    issuedAt: T0 + 60 * MIN + n,
  });

  test("RELEASE forwards the held request unchanged; DELETE drops it; both leave the store", async () => {
    const h = await anomalyHarness();
    const [ref1, ref2, reqs] = await quarantineTwo(h);
    await h.events();
    await h.exit(exit(USER_A, ref1, "RELEASE", 1), exit(USER_A, ref2, "DELETE", 2));
    const passed = await h.passed();
    expect(passed).toHaveLength(1);
    expect(passed[0]?.value).toEqual(reqs[1]);
    expect(passed[0]?.headers[RELEASED_HEADER]).toBe(ref1);
    const events = await h.events();
    expect(events.map((e) => [e.kind, e.requestId, e.quarantineEventRef, e.eventId])).toEqual([
      ["QUARANTINE_RELEASED", reqs[1]!.requestId, ref1, "x1|QUARANTINE_RELEASED"],
      ["QUARANTINE_DELETED", reqs[2]!.requestId, ref2, "x2|QUARANTINE_DELETED"],
    ]);
    expect(h.driver.storeEntries(DSP_ANOMALY_STORES.quarantine)).toEqual([]);
    // Released requests are not counted again: the window still holds the three requests.
    const [[, w]] = h.driver.storeEntries<{ rings: Array<{ total: number }> }>(
      DSP_ANOMALY_STORES.windows,
    ) as [[string, { rings: Array<{ total: number }> }]];
    expect(w.rings[0]?.total).toBe(3);
    await h.driver.close();
  });

  test("an instruction for a reference not held (resolved already, unknown, another User's) changes nothing", async () => {
    const h = await anomalyHarness();
    const [ref1, ref2] = await quarantineTwo(h);
    await h.events();
    await h.exit(exit(USER_A, ref1, "RELEASE", 1));
    await h.exit(
      exit(USER_A, ref1, "DELETE", 2),
      exit(USER_A, "12345", "RELEASE", 3),
      exit(USER_B, ref2, "RELEASE", 4),
    );
    const events = await h.events();
    expect(events.map((e) => e.kind)).toEqual([
      "QUARANTINE_RELEASED",
      "EXIT_QUARANTINE_REJECTED",
      "EXIT_QUARANTINE_REJECTED",
      "EXIT_QUARANTINE_REJECTED",
    ]);
    expect(events[3]).toMatchObject({ userId: USER_B, quarantineEventRef: ref2, requestId: null });
    expect(h.driver.storeEntries(DSP_ANOMALY_STORES.quarantine).map(([k]) => k)).toEqual([ref2]);
    expect(await h.passed()).toHaveLength(1);
    await h.driver.close();
  });
});

describe("DSP anomaly detection: redelivery and restoration", () => {
  const traffic = (): ServiceRequestEnvelope[] => {
    const out: ServiceRequestEnvelope[] = [];
    for (let k = 0; k < 60; k++)
      out.push(request(k % 2 === 0 ? USER_A : USER_B, k, T0 + k * 30_000, k % 3 === 0 ? "7.1" : "6.23"));
    return out;
  };
  const files = () => [
    {
      ...submission(USER_A, adtCsv(1, ["6.23,60,8,6", "6.23,1440,20,15", "7.1,30,3,2"]), T0 - 1),
      submissionId: "a1",
    },
    {
      ...submission(USER_B, adtCsv(4, ["6.23,10,3,2", "6.23,1440,30,30", "7.1,1440,5,4"]), T0 - 1),
      submissionId: "b4",
    },
  ];

  test("a redelivered request is not counted or forwarded twice, before or after a restart", async () => {
    const once = await anomalyHarness();
    await once.submit(...files());
    await once.send(...traffic());
    const expected = {
      stores: allStores(once),
      passed: await passedIds(once),
      quarantined: ids(await once.quarantined()),
    };
    expect(expected.passed.length).toBeGreaterThan(10);
    expect(expected.quarantined.length).toBeGreaterThan(10);

    const twice = await anomalyHarness();
    await twice.submit(...files());
    const t = traffic();
    await twice.send(...t.slice(0, 40));
    await twice.send(...t.slice(20, 40)); // redelivered copies
    await twice.driver.restart();
    await twice.send(...t.slice(30, 60)); // copies again, then new ones
    const passed = await passedIds(twice);
    const quarantined = ids(await twice.quarantined());
    expect(duplicateIds([...passed, ...quarantined])).toEqual([]);
    expect({ stores: allStores(twice), passed, quarantined }).toEqual(expected);
    await once.driver.close();
    await twice.driver.close();
  });

  test("with rememberRequestIds off (an exactly-once producer), ids are not kept and a copy would count again", async () => {
    const h = await anomalyHarness("dsp", { rememberRequestIds: false });
    await h.submit(...files());
    const r = request(USER_A, 1, T0);
    await h.send(r, r);
    expect(h.driver.storeEntries(DSP_ANOMALY_STORES.countedRequests)).toEqual([]);
    const windows = h.driver.storeEntries<WindowSet>(DSP_ANOMALY_STORES.windows);
    expect(windows.map(([, w]) => w.rings.map((x) => x.total))).toEqual([[2, 2]]);
    await h.driver.close();
  });

  test.each(["memory", "lmdb"] as const)(
    "a restart restores every store exactly (%s backend)",
    async (backend) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-anomaly-"));
      try {
        const h = await anomalyHarness("dsp", {}, backend, dir);
        await h.submit(...files());
        await h.send(...traffic().slice(0, 45));
        const before = allStores(h);
        expect(Object.values(before).every((entries) => (entries as unknown[]).length > 0)).toBe(true);
        await h.driver.restart();
        expect(allStores(h)).toEqual(before);
        await h.driver.close();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe("DSP anomaly detection: wiring faults", () => {
  test("a request not keyed by its User ID goes to the dead letters; a mis-keyed file is rejected", async () => {
    const h = await anomalyHarness();
    const t = anomalyTopics();
    await h.driver.pipeInput(
      t.requests,
      [{ key: USER_B, value: request(USER_A, 1, T0), timestamp: T0 }],
      h.serdes.request,
    );
    const dead = h.driver.rawRecords(DEFAULT_DEAD_LETTER_TOPIC);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.headers?.[DEAD_LETTER_HEADERS.code]).toBe("ECOS_PROCESS_FAILED");
    expect(dead[0]?.headers?.[DEAD_LETTER_HEADERS.message]).toMatch(/needs records keyed by User ID/);
    const s = submission(USER_A, adtCsv(1, []), T0);
    await h.driver.pipeInput(t.adtFiles, [{ key: USER_B, value: s, timestamp: T0 }], h.serdes.adtFile);
    const [r] = (await h.driver.readOutput(t.adtResults, h.serdes.adtResult)).map((x) => x.value);
    expect(r).toMatchObject({ outcome: "REJECTED", rejectionCode: "USER_MISMATCH" });
    expect(h.driver.storeEntries(DSP_ANOMALY_STORES.adtTables)).toEqual([]);
    await h.driver.close();
  });
});
