/**
 * Exactly-once under SIGKILL on the real broker: a counting topology over 100,000 records on 3
 * partitions, its process killed with SIGKILL twice mid-stream and restarted. The final counts must
 * equal the input exactly, every key's updates must be exactly 1, 2, 3, ... (nothing lost, nothing
 * counted twice), and each restart must restore the store from its changelog.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { Kafka, logLevel } from "kafkajs";
import { jsonSerde } from "../../processors/runtime/serde";
import {
  demoTopics,
  syntheticReadings,
  type DeviceCount,
  type MeterReading,
} from "../../processors/demo/counting";
import { countingViolations, tally } from "../helpers/invariants";
import { createTopics, produceKeyed, readTopic, removeRun, uniquePrefix } from "./kafka-harness";
import { testServices } from "./services";
import { trackChild } from "./children";

const RECORDS = 100_000;
const DEVICES = 2_000;
const APP = path.join(__dirname, "fixtures", "counting-app.ts");

interface Run {
  child: ChildProcess;
  committed: number;
  restored: number;
  restoreEvents: number;
  exited: Promise<void>;
  waitFor(pred: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

function startApp(args: string[]): Run {
  const child = trackChild(
    spawn(process.execPath, ["--import", "tsx", APP, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const run: Run = {
    child,
    committed: 0,
    restored: 0,
    restoreEvents: 0,
    exited: new Promise((r) => child.on("exit", () => r())),
    async waitFor(pred, what, timeoutMs = 180000) {
      const until = Date.now() + timeoutMs;
      while (!pred()) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what} (committed ${run.committed})`);
        if (child.exitCode !== null)
          throw new Error(`app exited (${child.exitCode}) while waiting for ${what}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const e = JSON.parse(line) as { event: string; records?: number };
    if (e.event === "commit") run.committed += e.records ?? 0;
    if (e.event === "restore") {
      run.restored += e.records ?? 0;
      run.restoreEvents++;
    }
  });
  return run;
}

describe("Kafka driver: exactly-once across SIGKILL", () => {
  const brokers = testServices().kafkaBrokers;
  const kafka = new Kafka({ clientId: "kill-test", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const prefix = uniquePrefix("kill");
  const topics = demoTopics(prefix);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-kill-"));
  const appId = `${prefix}app`;

  beforeAll(async () => {
    await admin.connect();
    await createTopics(admin, [topics.readings, topics.deviceCounts], 3);
  });

  afterAll(async () => {
    await removeRun(admin, prefix, [appId]);
    await admin.disconnect();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test("100,000 records, two SIGKILLs mid-stream: counts exact, no duplicate or lost update, store restored", async () => {
    const readings = [...syntheticReadings(RECORDS, DEVICES)];
    const input = readings.map((r) => ({ key: r.deviceId, value: r, timestamp: r.readAt }));
    await produceKeyed(kafka, topics.readings, input, jsonSerde<MeterReading>(), 3);

    const args = [brokers.join(","), appId, prefix, stateDir, "lmdb"];
    const killAt = [25_000, 60_000];
    let total = 0;
    const restoredAfterKill: number[] = [];
    for (let round = 0; round <= killAt.length; round++) {
      const run = startApp(args);
      if (round > 0) {
        // Every restarted run restores the store from the changelog before processing.
        await run.waitFor(() => run.restoreEvents >= 3, "restore of 3 partitions");
        restoredAfterKill.push(run.restored);
      }
      const target = killAt[round];
      if (target !== undefined) {
        await run.waitFor(() => total + run.committed >= target, `${target} committed records`);
        run.child.kill("SIGKILL");
        await run.exited;
        total += run.committed;
      } else {
        const out = await readTopic(kafka, topics.deviceCounts, jsonSerde<DeviceCount>(), RECORDS, {
          settleMs: 5000,
        });
        run.child.kill("SIGTERM");
        await run.exited;
        expect(out).toHaveLength(RECORDS);
        expect(
          countingViolations(
            out,
            tally(readings, (r) => r.deviceId),
          ),
        ).toEqual([]);
      }
    }
    expect(restoredAfterKill).toHaveLength(2);
    for (const n of restoredAfterKill) expect(n).toBeGreaterThan(0);
  });
});
