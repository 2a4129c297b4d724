/**
 * ECoS Party anomaly detection (seed 003 §3.3): only the User's own 1440-minute thresholds; a breach
 * stops the request with an N63 alert; nothing is quarantined; the supplier must resend.
 */
import { ECOS_PARTY_ANOMALY_STORES, buildEcosPartyAnomalyTopology } from "../../processors/anomaly/topology";
import { anomalyConfig } from "../../processors/anomaly/config";
import { anomalyAvroSerdes } from "../../processors/anomaly/serdes";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import { MIN, T0, USER_A, adtCsv, anomalyHarness, request, submission } from "./fixtures";

const DAY = 1440 * MIN;

describe("ECoS Party anomaly detection", () => {
  test("applies only the 1440-minute threshold: a tighter 60-minute ADT is ignored (the DSP applies it)", async () => {
    const rows = ["6.23,60,1,1", "6.23,1440,3,2"];
    const party = await anomalyHarness("ecos-party");
    const dsp = await anomalyHarness("dsp");
    for (const h of [party, dsp]) await h.submit(submission(USER_A, adtCsv(1, rows), T0));
    const reqs = [1, 2, 3, 4].map((k) => request(USER_A, k, T0 + k * MIN));
    await party.send(...reqs);
    await dsp.send(...reqs);
    expect((await party.passed()).map((r) => r.value.requestId)).toEqual(
      reqs.slice(0, 3).map((r) => r.requestId),
    );
    expect((await party.refused()).map((r) => r.requestId)).toEqual([reqs[3]!.requestId]);
    const events = await party.events();
    expect(events).toHaveLength(1); // no warning events at the ECoS Party
    expect(events[0]).toMatchObject({
      kind: "ECOS_PARTY_THRESHOLD_BREACHED",
      party: "ECOS_PARTY",
      dccAlertCode: "N63",
      requestId: reqs[3]!.requestId,
      deviceId: reqs[3]!.deviceId,
      periodMinutes: 1440,
      count: 4,
      threshold: 3,
      quarantineEventRef: null,
    });
    // The DSP, with the same table, quarantines from the second request (60-minute ADT 1).
    expect((await dsp.quarantined()).map((q) => [q.requestId, q.periodMinutes])).toEqual(
      reqs.slice(1).map((r) => [r.requestId, 60]),
    );
    await party.driver.close();
    await dsp.driver.close();
  });

  test("quarantines nothing: no quarantine store or output exists, and the refused request is finished", async () => {
    const serdes = anomalyAvroSerdes(new InMemorySchemaRegistry());
    const topology = buildEcosPartyAnomalyTopology({ serdes, config: anomalyConfig() });
    expect([...topology.stores.keys()].sort()).toEqual(Object.values(ECOS_PARTY_ANOMALY_STORES).sort());
    expect([...topology.sinkTopics].some((t) => t.includes("quarantin"))).toBe(false);
    const h = await anomalyHarness("ecos-party");
    await h.submit(submission(USER_A, adtCsv(1, ["6.23,1440,0,0"]), T0));
    await h.send(request(USER_A, 1, T0 + 1));
    expect(await h.refused()).toHaveLength(1);
    expect(await h.passed()).toHaveLength(0);
    await h.driver.close();
  });

  test("an SRV with thresholds for other periods only is not checked", async () => {
    const h = await anomalyHarness("ecos-party");
    await h.submit(submission(USER_A, adtCsv(1, ["7.1,60,0,0", "6.23,1440,5,5"]), T0));
    await h.send(request(USER_A, 1, T0 + 1, "7.1"), request(USER_A, 2, T0 + 2, "7.1"));
    expect(await h.passed()).toHaveLength(2);
    expect(h.driver.storeEntries(ECOS_PARTY_ANOMALY_STORES.windows)).toEqual([]);
    await h.driver.close();
  });

  test("a User ID that never submitted a file: every 6.23 is refused", async () => {
    const h = await anomalyHarness("ecos-party");
    await h.send(request(USER_A, 1, T0), request(USER_A, 2, T0 + 1));
    expect((await h.events()).map((e) => [e.kind, e.threshold, e.adtSequenceNumber])).toEqual([
      ["ECOS_PARTY_THRESHOLD_BREACHED", 0, null],
      ["ECOS_PARTY_THRESHOLD_BREACHED", 0, null],
    ]);
    await h.driver.close();
  });

  test("the supplier must resend: refused while the day's count is above the ADT, accepted once it slid out", async () => {
    const h = await anomalyHarness("ecos-party");
    await h.submit(submission(USER_A, adtCsv(1, ["6.23,1440,2,2"]), T0));
    await h.send(request(USER_A, 1, T0 + 1), request(USER_A, 2, T0 + 2), request(USER_A, 3, T0 + 3));
    expect(await h.refused()).toHaveLength(1);
    await h.send(request(USER_A, 4, T0 + 12 * 60 * MIN)); // resent the same day: still refused
    expect(await h.refused()).toHaveLength(1);
    // A day and one 10-minute bucket later the first three have slid out.
    await h.send(request(USER_A, 5, T0 + DAY + 10 * MIN));
    expect((await h.passed()).map((r) => r.value.requestId)).toEqual(
      [1, 2, 5].map((k) => request(USER_A, k, 0).requestId),
    );
    await h.driver.close();
  });
});
