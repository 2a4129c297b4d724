/**
 * Behaviour of the standalone DSP anomaly topology that every driver must show: run on the
 * in-process driver by test/anomaly/anomaly-drivers.test.ts and on the real broker by
 * test/integration/anomaly-kafka.test.ts, through the runtime's Harness.
 */
import { anomalyConfig } from "../../processors/anomaly/config";
import { quarantineRefFor } from "../../processors/anomaly/processors";
import type { ExitQuarantineInstruction, ServiceRequestEnvelope } from "../../processors/anomaly/records";
import { anomalyAvroSerdes } from "../../processors/anomaly/serdes";
import {
  DSP_ANOMALY_STORES,
  anomalyTopics,
  buildDspAnomalyTopology,
} from "../../processors/anomaly/topology";
import type { WindowSet } from "../../processors/anomaly/window";
import type { SchemaRegistry } from "../../schemas/registry";
import type { Harness } from "../runtime/behaviour-suite";
import { duplicateIds } from "../helpers/invariants";
import { MIN, T0, USER_A, USER_B, adtCsv, request, submission } from "./fixtures";

export function anomalySuite(makeHarness: () => Promise<Harness>, registry: () => SchemaRegistry): void {
  let h: Harness;
  beforeEach(async () => {
    h = await makeHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const setup = async () => {
    const serdes = anomalyAvroSerdes(registry());
    const topics = anomalyTopics(h.prefix);
    await h.start(buildDspAnomalyTopology({ serdes, config: anomalyConfig(), topicPrefix: h.prefix }));
    const files = [
      submission(USER_A, adtCsv(1, ["6.23,60,3,2", "6.23,1440,1000,1000"]), T0),
      submission(USER_B, adtCsv(1, ["6.23,1440,1,1"]), T0),
    ];
    await h.pipe(
      topics.adtFiles,
      files.map((f) => ({ key: f.userId, value: f, timestamp: f.submittedAt })),
      serdes.adtFile,
    );
    const results = await h.read(topics.adtResults, serdes.adtResult, 2);
    expect(results.map((r) => r.value.outcome)).toEqual(["ACCEPTED", "ACCEPTED"]);
    const send = (rs: ServiceRequestEnvelope[]) =>
      h.pipe(
        topics.requests,
        rs.map((r) => ({ key: r.userId, value: r, timestamp: r.receivedAt })),
        serdes.request,
      );
    return { serdes, topics, send };
  };

  test("thresholds, warning, quarantine with AD1, release and deletion, copies not counted", async () => {
    const { serdes, topics, send } = await setup();
    const a = [1, 2, 3, 4, 5].map((k) => request(USER_A, k, T0 + k * MIN));
    const b = [1, 2, 3].map((k) => request(USER_B, k, T0 + k * MIN));
    await send([...a, ...b]);
    await send([a[0]!, b[2]!]); // redelivered copies
    const passed = await h.read(topics.passed, serdes.request, 4);
    const quarantined = await h.read(topics.quarantined, serdes.quarantined, 4);
    const ids = (rs: ServiceRequestEnvelope[]) => rs.map((r) => r.requestId).sort();
    expect(ids(passed.map((r) => r.value))).toEqual(ids([a[0]!, a[1]!, a[2]!, b[0]!]));
    expect(ids(quarantined.map((r) => r.value))).toEqual(ids([a[3]!, a[4]!, b[1]!, b[2]!]));
    for (const q of quarantined) expect(q.value.quarantineEventRef).toBe(quarantineRefFor(q.value.requestId));

    const exits: ExitQuarantineInstruction[] = [
      {
        instructionId: "x1",
        userId: USER_A,
        quarantineEventRef: quarantineRefFor(a[3]!.requestId),
        action: "RELEASE",
        issuedAt: T0 + 90 * MIN,
      },
      {
        instructionId: "x2",
        userId: USER_B,
        quarantineEventRef: quarantineRefFor(b[1]!.requestId),
        action: "DELETE",
        issuedAt: T0 + 90 * MIN,
      },
    ];
    await h.pipe(
      topics.exitQuarantine,
      exits.map((x) => ({ key: x.userId, value: x, timestamp: x.issuedAt })),
      serdes.exit,
    );
    const after = await h.read(topics.passed, serdes.request, 5);
    expect(duplicateIds(after.map((r) => r.value.requestId))).toEqual([]);
    expect(after.map((r) => r.value.requestId)).toContain(a[3]!.requestId);
    const events = await h.read(topics.events, serdes.event, 7);
    const kinds = events.map((e) => e.value.kind).sort();
    expect(kinds).toEqual([
      "QUARANTINE_DELETED",
      "QUARANTINE_RELEASED",
      "REQUEST_QUARANTINED",
      "REQUEST_QUARANTINED",
      "REQUEST_QUARANTINED",
      "REQUEST_QUARANTINED",
      "WARNING_THRESHOLD_CROSSED",
    ]);
    expect(
      events
        .filter((e) => e.value.kind === "REQUEST_QUARANTINED")
        .every((e) => e.value.dccAlertCode === "AD1"),
    ).toBe(true);
    const held = await h.storeEntries(DSP_ANOMALY_STORES.quarantine);
    expect(held.map(([ref]) => ref).sort()).toEqual(
      [quarantineRefFor(a[4]!.requestId), quarantineRefFor(b[2]!.requestId)].sort(),
    );
    const windows = new Map(await h.storeEntries<WindowSet>(DSP_ANOMALY_STORES.windows));
    expect(windows.get(`${USER_A}|6.23`)?.rings.map((r) => r.total)).toEqual([5, 5]);
    expect(windows.get(`${USER_B}|6.23`)?.rings.map((r) => r.total)).toEqual([3]);
  });

  test("after a restart the windows, tables and request ids are restored and counting goes on exactly", async () => {
    const { serdes, topics, send } = await setup();
    await send([1, 2].map((k) => request(USER_A, k, T0 + k * MIN)));
    await h.read(topics.passed, serdes.request, 2);
    const before = {
      windows: await h.storeEntries(DSP_ANOMALY_STORES.windows),
      tables: await h.storeEntries(DSP_ANOMALY_STORES.adtTables),
      ids: await h.storeEntries(DSP_ANOMALY_STORES.countedRequests),
    };
    await h.restart();
    // The Kafka driver restores its tasks after it joined the group: poll until they are back.
    const restored = async () => ({
      windows: await h.storeEntries(DSP_ANOMALY_STORES.windows),
      tables: await h.storeEntries(DSP_ANOMALY_STORES.adtTables),
      ids: await h.storeEntries(DSP_ANOMALY_STORES.countedRequests),
    });
    const until = Date.now() + 120_000;
    let now = await restored();
    while (JSON.stringify(now) !== JSON.stringify(before) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      now = await restored();
    }
    // As JSON: a counted-requests entry is its minute and ids there (its bytes are not own fields).
    expect(JSON.parse(JSON.stringify(now))).toEqual(JSON.parse(JSON.stringify(before)));
    // A copy of request 2 and requests 3 and 4: 3 reaches the ADT (3), 4 is above it.
    await send([2, 3, 4].map((k) => request(USER_A, k, T0 + k * MIN)));
    const q = await h.read(topics.quarantined, serdes.quarantined, 1);
    expect(q.map((r) => [r.value.requestId, r.value.count])).toEqual([[request(USER_A, 4, 0).requestId, 4]]);
    expect(await h.read(topics.passed, serdes.request, 3)).toHaveLength(3);
  });
}
