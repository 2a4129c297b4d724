/**
 * `ecos run --kafka --stages cos-alerts`: the N65 CoS certificate alert stage as an operator runs it,
 * on the real broker and registry, across a SIGKILL. A TCoS device joining a Communications Hub after
 * ECoS go-live raises one N65 to the Responsible Supplier's user (from the users directory given with
 * --users); an ECoS device joining, and a TCoS device joining before go-live, raise none. After the
 * process is SIGKILLed and started again, the same snapshot re-sent raises nothing (the per-device hub
 * memory came back from its changelog) and a move to another hub raises the second alert.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { cosAlertAvroSerdes } from "../../processors/cos-alerts/serdes";
import { cosAlertTopics } from "../../processors/cos-alerts/topology";
import { kafkaStageAppIds } from "../../processors/pipeline/kafka-pipeline";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import {
  produceValues,
  startPipelineApp,
  type PipelineAppConfig,
  type PipelineAppHandle,
} from "../../bench/cos-e2e";
import {
  AFTER,
  BEFORE,
  CHF_1,
  CHF_2,
  ESME,
  GO_LIVE,
  USER_A as USER,
  USER_B as OTHER_USER,
  registration,
  snapshot,
} from "../cos-alerts/fixtures";
import { trackChild } from "./children";
import { createTopics, readTopic, removeRun, uniquePrefix, waitFor } from "./kafka-harness";
import { testServices } from "./services";

const MPAN_2 = "1312345678444";
const TCOS_ESME = ESME;
const ECOS_ESME = "00-DB-12-34-56-78-90-A1";
const EARLY_ESME = "00-DB-12-34-56-78-90-A2";

describe("ecos run --kafka: the N65 stage on the real broker, across a SIGKILL", () => {
  const services = testServices();
  const brokers = services.kafkaBrokers;
  const kafka = new Kafka({ clientId: "run-kafka-it", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const prefix = uniquePrefix("run-kafka");
  const applicationId = `${prefix}app`;
  const ids = kafkaStageAppIds(`${applicationId}-`);
  const t = cosAlertTopics(prefix);
  const serdes = cosAlertAvroSerdes(new ConfluentSchemaRegistryClient({ host: services.registryUrl }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-run-kafka-it-"));
  const usersCsv = path.join(dir, "users.csv");

  beforeAll(async () => {
    await admin.connect();
    await createTopics(admin, [t.inventory, t.registration, t.alerts], 3);
    fs.writeFileSync(
      usersCsv,
      `user_id,roles,status,mpids\n${USER},IS|GS,ACTIVE,ACEE|ACG\n${OTHER_USER},IS|GS,ACTIVE,BBEE\n`,
    );
  });

  afterAll(async () => {
    await removeRun(admin, prefix, Object.values(ids));
    await admin.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("one N65 per join with a not-serving credential, none repeated after the restart", async () => {
    const config: PipelineAppConfig = {
      brokers,
      registryUrl: services.registryUrl,
      topicPrefix: prefix,
      applicationId,
      stateDir: path.join(dir, "state"),
      seed: "run-kafka-it",
      stages: "cos-alerts",
      extraArgs: ["--users", usersCsv, "--ecos-go-live", new Date(GO_LIVE).toISOString()],
    };
    const started = async (app: PipelineAppHandle): Promise<void> =>
      waitFor(() => app.started() || app.child.exitCode !== null, "ecos run --kafka started", 150_000).then(
        () => {
          if (!app.started()) throw new Error(`ecos run --kafka exited: ${app.stderr()}`);
        },
      );

    await produceValues(
      kafka,
      t.registration,
      [registration(), registration({ mpxn: MPAN_2, supplierMpid: "BBEE" })].map((r) => ({
        key: r.mpxn,
        value: r,
        timestamp: 1,
      })),
      serdes.registration,
    );
    const first = startPipelineApp(config, trackChild);
    await started(first);
    // Registration Data first (the stage joins the inventory to it by MPxN), then the joins.
    await waitFor(() => first.committed("cos-alerts") >= 2, "registration data committed", 60_000);
    const snapshots = [
      snapshot({ deviceId: TCOS_ESME }),
      snapshot({ deviceId: ECOS_ESME, cosCredential: "ECOS" }),
      snapshot({ deviceId: EARLY_ESME, importMpxn: MPAN_2, snapshotAt: BEFORE }),
    ];
    await produceValues(
      kafka,
      t.inventory,
      snapshots.map((s) => ({ key: s.deviceId, value: s, timestamp: s.snapshotAt })),
      serdes.inventory,
    );
    const firstAlerts = await readTopic(kafka, t.alerts, serdes.alert, 1, { settleMs: 5000 });
    expect(firstAlerts.map((a) => [a.key, a.value.alertCode, a.value.alertType, a.value.deviceId])).toEqual([
      [USER, "N65", "CoSCertificateAlert", TCOS_ESME],
    ]);
    expect(firstAlerts[0]?.value.detail).toContain(CHF_1);

    // Everything committed (3 snapshots through the repartition hops): then SIGKILL and restart.
    await waitFor(() => first.committed("cos-alerts") >= 2 + 3, "snapshots committed", 60_000);
    first.child.kill("SIGKILL");
    await first.exited;
    const second = startPipelineApp(config, trackChild);
    await started(second);
    await produceValues(
      kafka,
      t.inventory,
      [
        { key: TCOS_ESME, value: snapshot({ deviceId: TCOS_ESME }), timestamp: AFTER }, // the same again: no alert
        {
          key: TCOS_ESME,
          value: snapshot({ deviceId: TCOS_ESME, chfDeviceId: CHF_2, snapshotAt: AFTER + 60_000 }),
          timestamp: AFTER + 60_000,
        },
      ],
      serdes.inventory,
    );
    const all = await readTopic(kafka, t.alerts, serdes.alert, 2, { settleMs: 8000 });
    expect(all.map((a) => [a.key, a.value.alertCode, a.value.deviceId, a.value.raisedAt])).toEqual([
      [USER, "N65", TCOS_ESME, AFTER],
      [USER, "N65", TCOS_ESME, AFTER + 60_000],
    ]);
    expect(all[1]?.value.detail).toContain(CHF_2);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    // Where the time went: every commit reports its transaction time, the stop the event-loop delay.
    const txns = second.transactionMs().get("cos-alerts") ?? [];
    expect(txns.length).toBeGreaterThan(0);
    expect(txns.every((ms) => Number.isInteger(ms) && ms >= 0 && ms < 60_000)).toBe(true);
    const loop = second.eventLoopDelay();
    expect(loop).not.toBeNull();
    expect(loop!.maxMs).toBeGreaterThanOrEqual(loop!.p99Ms);
    expect(loop!.p99Ms).toBeGreaterThanOrEqual(0);
  }, 400_000);
});
