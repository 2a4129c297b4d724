/**
 * The pure parts of `ecos run --kafka`: stage lists, application ids, the default users directory and
 * the tally behind the progress lines and summary. The pipeline itself runs on the real broker in
 * test/integration/cos-e2e-kafka.test.ts and test/integration/run-kafka.test.ts.
 */
import {
  DEFAULT_ECOS_GO_LIVE_AT,
  KAFKA_STAGES,
  kafkaStageAppIds,
  parseStages,
  seededUsers,
} from "../../processors/pipeline/kafka-pipeline";
import { KafkaRunTally, TransactionTimes, transactionLine } from "../../deploy/cli/run-kafka";
import { seededCredentials } from "../../deploy/sim/credentials";

describe("parseStages", () => {
  test("all is every stage, in start order", () => {
    expect(parseStages("all")).toEqual([...KAFKA_STAGES]);
  });
  test("a list is returned in start order whatever order it was given in, without repeats", () => {
    expect(parseStages("tracker, dsp,ecos,dsp")).toEqual(["dsp", "ecos", "tracker"]);
  });
  test("an unknown or empty list is a configuration error naming what was wrong", () => {
    expect(() => parseStages("dsp,dspatch")).toThrow(/unknown stage\(s\) "dspatch"/);
    expect(() => parseStages(" , ")).toThrow(/ECOS_CONFIG_INVALID|unknown stage/);
    expect(() => parseStages("all,dsp")).toThrow(/unknown stage\(s\) "all"/);
  });
});

test("application ids are <prefix><stage>, one per stage", () => {
  const ids = kafkaStageAppIds("ecos-");
  expect(Object.keys(ids)).toEqual([...KAFKA_STAGES]);
  expect(ids.dsp).toBe("ecos-dsp");
  expect(ids["cos-alerts"]).toBe("ecos-cos-alerts");
  expect(new Set(Object.values(ids)).size).toBe(KAFKA_STAGES.length);
});

test("the default users directory is the test PKI's supplier with the MPIDs of its xmlSign certificate", () => {
  const creds = seededCredentials("kafka-pipeline-unit");
  const [user, ...rest] = seededUsers(creds);
  expect(rest).toEqual([]);
  expect(user?.userId).toBe(creds.cast.supplierId);
  expect(user?.mpids).toEqual([...creds.cast.supplierXmlSign.cert.mpids]);
  expect(user?.mpids.length).toBeGreaterThan(0);
  expect(user?.status).toBe("ACTIVE");
});

test("ECoS go-live defaults to the end of June 2023", () => {
  expect(new Date(DEFAULT_ECOS_GO_LIVE_AT).toISOString()).toBe("2023-06-30T00:00:00.000Z");
});

test("the run tally counts commits per stage, finals, codes, breaches and response-time percentiles", () => {
  const t = new KafkaRunTally();
  expect(t.percentile(99)).toBeNull();
  t.add({ event: "commit", stage: "dsp", taskId: "0_0", records: 10, outputs: 30, transactionMs: 12 });
  t.add({ event: "commit", stage: "dsp", taskId: "0_1", records: 5, outputs: 15, transactionMs: 40 });
  t.add({ event: "restore", stage: "tracker", taskId: "0_0", store: "s", records: 7, ms: 3 });
  for (let i = 1; i <= 100; i++)
    t.add({
      event: "final",
      requestId: `r${i}`,
      code: i === 100 ? "E21" : "I0",
      ms: i * 100,
      breach: i === 100,
    });
  expect(t.committed.get("dsp")).toBe(15);
  expect(transactionLine(t.transactions.get("dsp"))).toBe(
    "2 transactions, mean 26 ms, p50 ≤ 13 ms, p99 ≤ 50 ms",
  );
  expect(transactionLine(t.transactions.get("tracker"))).toBe("no transactions");
  expect(t.outputs.get("dsp")).toBe(45);
  expect(t.restored.get("tracker")).toBe(7);
  expect(t.finals).toBe(100);
  expect(t.breaches).toBe(1);
  expect(t.codes.get("I0")).toBe(99);
  expect(t.percentile(50)).toBe(5000);
  expect(t.percentile(99)).toBe(9900);
  expect(t.progressLine(["dsp", "tracker"])).toBe(
    "records committed: dsp 15, tracker 0; final responses 100 (1 beyond target)",
  );
});

test("transaction times: bucket bounds for percentiles, and beyond the last bound", () => {
  const times = new TransactionTimes();
  for (let i = 0; i < 98; i++) times.add(4);
  times.add(700);
  times.add(60_000);
  expect(times.percentileAtMost(50)).toBe(5);
  expect(times.percentileAtMost(99)).toBe(750);
  expect(times.percentileAtMost(100)).toBe(Infinity);
  expect(transactionLine(times)).toBe("100 transactions, mean 611 ms, p50 ≤ 5 ms, p99 ≤ 750 ms");
  times.add(60_000);
  times.add(60_000);
  expect(transactionLine(times)).toMatch(/p99 > 10000 ms$/);
});
