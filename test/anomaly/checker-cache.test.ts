/**
 * The request checker caches what it derives per User ID (version in force, thresholds, the window
 * set). These tests pin down that the cache changes nothing: the changelog holds every change at every
 * commit, and a processor that kept its cache across table changes decides exactly as fresh ones do.
 */
import type { ServiceRequestEnvelope } from "../../processors/anomaly/records";
import { DSP_ANOMALY_STORES } from "../../processors/anomaly/topology";
import type { WindowSet } from "../../processors/anomaly/window";
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

const USER_C = "90-B3-D5-1F-30-01-00-0C";

/** Every store's entries as JSON (windows as their changelog would restore them). */
function stores(h: AnomalyHarness): string {
  const s = DSP_ANOMALY_STORES;
  return JSON.stringify({
    windows: h.driver.storeEntries<WindowSet>(s.windows),
    ids: h.driver.storeEntries(s.countedRequests),
    tables: h.driver.storeEntries(s.adtTables),
    quarantine: h.driver.storeEntries(s.quarantine).map(([k]) => k),
  });
}

/** Requests of three Users on two SRVs, `n` of them from `k0`, received 20 s apart from `t0`. */
function traffic(k0: number, n: number, t0: number): ServiceRequestEnvelope[] {
  const users = [USER_A, USER_B, USER_C];
  const out: ServiceRequestEnvelope[] = [];
  for (let k = k0; k < k0 + n; k++)
    out.push(request(users[k % 3] as string, k, t0 + (k - k0) * 20_000, k % 4 === 0 ? "7.1" : "6.23"));
  return out;
}

/**
 * Files and requests in steps: a new table for A (a period added, 7.1 dropped) and B (tighter), late
 * requests received before the new tables took effect, copies of counted requests.
 */
function steps(): Array<{ files?: Parameters<typeof submission>[]; requests?: ServiceRequestEnvelope[] }> {
  const first = traffic(0, 45, T0);
  return [
    {
      files: [
        [USER_A, adtCsv(1, ["6.23,60,12,8", "6.23,1440,30,20", "7.1,30,2,1"]), T0 - 1],
        [USER_B, adtCsv(1, ["6.23,10,6,4", "6.23,1440,40,40", "7.1,1440,5,4"]), T0 - 1],
        [USER_C, adtCsv(1, ["6.23,1440,9,5"]), T0 - 1],
      ],
    },
    { requests: first.slice(0, 30) },
    {
      files: [
        [USER_A, adtCsv(2, ["6.23,10,4,3", "6.23,60,12,8", "6.23,1440,30,20"]), T0 + 12 * MIN],
        [USER_B, adtCsv(2, ["6.23,1440,14,10"]), T0 + 12 * MIN],
      ],
    },
    // Received before and after the new tables took effect, and copies of counted requests.
    { requests: [...first.slice(30), ...first.slice(10, 14), ...traffic(100, 30, T0 + 13 * MIN)] },
    { requests: traffic(200, 40, T0 + 2 * 60 * MIN) },
  ];
}

async function run(restartBeforeEachStep: boolean, checkRestore = false) {
  const h = await anomalyHarness();
  for (const step of steps()) {
    if (restartBeforeEachStep) await h.driver.restart();
    if (step.files)
      await h.submit(...step.files.map((f, i) => ({ ...submission(...f), submissionId: `${f[0]}-${i}` })));
    if (step.requests) await h.send(...step.requests);
    if (checkRestore) {
      // What the changelog holds after this commit must be exactly the live state.
      const live = stores(h);
      await h.driver.restart();
      expect(stores(h)).toBe(live);
    }
  }
  const result = {
    passed: (await h.passed()).map((r) => r.value.requestId),
    quarantined: (await h.quarantined()).map((q) => [q.requestId, q.periodMinutes, q.count]),
    events: (await h.events()).map((e) => [e.eventId, e.count, e.threshold]),
    stores: stores(h),
  };
  await h.driver.close();
  return result;
}

describe("the request checker's cache", () => {
  test("after every commit, the state restored from the changelog equals the live state", async () => {
    const r = await run(false, true);
    expect(r.quarantined.length).toBeGreaterThan(5);
  });

  test("a processor kept across table changes decides exactly as a fresh one per step", async () => {
    const kept = await run(false);
    const fresh = await run(true);
    expect(kept.passed.length).toBeGreaterThan(20);
    expect(kept.quarantined.length).toBeGreaterThan(5);
    expect(kept.events.some(([id]) => String(id).includes("WARNING"))).toBe(true);
    expect(kept).toEqual(fresh);
  });

  test("a new table takes effect for the next request of a User whose state is cached", async () => {
    const h = await anomalyHarness();
    await h.submit(submission(USER_A, adtCsv(1, ["6.23,1440,2,2"]), T0));
    await h.send(request(USER_A, 1, T0 + MIN), request(USER_A, 2, T0 + 2 * MIN));
    // Raised before the third request: it passes where the old table would have quarantined it.
    await h.submit(submission(USER_A, adtCsv(2, ["6.23,1440,5,5"]), T0 + 3 * MIN));
    await h.send(request(USER_A, 3, T0 + 4 * MIN));
    // Dropped again to 3: the fourth request is the fourth in the window and is quarantined.
    await h.submit(submission(USER_A, adtCsv(3, ["6.23,1440,3,3"]), T0 + 5 * MIN));
    await h.send(request(USER_A, 4, T0 + 6 * MIN));
    expect((await h.passed()).map((r) => r.value.requestId)).toEqual(
      [1, 2, 3].map((k) => request(USER_A, k, 0).requestId),
    );
    expect((await h.quarantined()).map((q) => [q.requestId, q.count, q.adt])).toEqual([
      [request(USER_A, 4, 0).requestId, 4, 3],
    ]);
    await h.driver.close();
  });
});
