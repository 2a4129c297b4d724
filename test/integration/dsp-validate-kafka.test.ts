/**
 * dsp-validate on the real broker: 10,000 mixed valid and invalid signed 6.23 requests (bench/dsp-load)
 * through the topology in a separate process, SIGKILLed once mid-stream and restarted. Every request
 * is answered exactly once (a replayed RequestID is answered once per submission: accepted, then
 * replay), each with the outcome the generator expects, and nothing reaches the dead-letter topic.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { Kafka, logLevel } from "kafkajs";
import { partitionForKey } from "../../processors/runtime/partitioner";
import { dspTopics, jsonDspSerdes } from "../../processors/dsp/topology";
import { generateDspLoad } from "../../bench/dsp-load";
import { duplicateIds, missingIds } from "../helpers/invariants";
import { createTopics, progressReport, readTopic, uniquePrefix } from "./kafka-harness";
import { testServices } from "./services";
import { trackChild } from "./children";

const REQUESTS = Number(process.env.ECOS_DSP_IT_REQUESTS ?? 10_000);
const APP = path.join(__dirname, "fixtures", "dsp-app.ts");
const SEED = "ecos-stream-test-pki";

function startApp(args: string[]): {
  child: ChildProcess;
  committed: () => number;
  committedAll: () => number;
  exited: Promise<void>;
  stderr: () => string;
} {
  const child = trackChild(
    spawn(process.execPath, ["--import", "tsx", APP, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let committed = 0;
  let committedAll = 0;
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const e = JSON.parse(line) as { event: string; records?: number; taskId?: string };
    if (e.event === "commit") committedAll += e.records ?? 0;
    if (e.event === "commit" && e.taskId?.startsWith("0_")) committed += e.records ?? 0;
  });
  return {
    child,
    committed: () => committed,
    committedAll: () => committedAll,
    exited: new Promise((r) => child.on("exit", () => r())),
    stderr: () => stderr,
  };
}

describe("dsp-validate on Kafka: every request answered exactly once across a SIGKILL", () => {
  const brokers = testServices().kafkaBrokers;
  const kafka = new Kafka({ clientId: "dsp-it", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const prefix = uniquePrefix("dsp");
  const topics = dspTopics(prefix);
  const appId = `${prefix}app`;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-dsp-it-"));

  beforeAll(async () => {
    await admin.connect();
    await createTopics(admin, Object.values(topics), 3);
  });

  afterAll(async () => {
    // ECOS_KEEP_TOPICS=1 leaves the run's topics for inspection after a failure.
    if (process.env["ECOS_KEEP_TOPICS"] === "1") return void (await admin.disconnect());
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    await admin.deleteTopics({ topics: mine }).catch(() => {});
    await admin.deleteGroups([appId]).catch(() => {});
    await admin.disconnect();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test(`${REQUESTS} mixed requests, one SIGKILL mid-stream`, async () => {
    const load = generateDspLoad({ requests: REQUESTS, invalidShare: 0.3, devices: 2000, seed: SEED });
    const serdes = jsonDspSerdes();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const send = async (
      topic: string,
      messages: Array<{ key: string; value: Buffer; timestamp: number }>,
    ) => {
      for (let i = 0; i < messages.length; i += 100)
        await producer.send({
          topic,
          messages: messages.slice(i, i + 100).map((m) => ({
            key: m.key,
            value: m.value,
            timestamp: String(m.timestamp),
            partition: partitionForKey(Buffer.from(m.key), 3),
          })),
        });
    };
    await send(
      topics.inventory,
      load.devices.map((d) => ({ key: d.deviceId, value: serdes.inventory.serialize("", d), timestamp: 1 })),
    );
    await send(
      topics.registration,
      load.registrations.map((r) => ({
        key: r.mpxn,
        value: serdes.registration.serialize("", r),
        timestamp: 1,
      })),
    );
    const args = [brokers.join(","), appId, prefix, stateDir, SEED];
    const first = startApp(args);
    const until = Date.now() + 120_000;
    // The runtime does not order a task's inputs by timestamp across topics (no table bootstrap), so
    // the reference tables are consumed before the requests are produced, as in a running system.
    while (first.committedAll() < load.devices.length + load.registrations.length) {
      if (Date.now() > until)
        throw new Error(`tables not loaded: ${first.committedAll()}; ${first.stderr()}`);
      if (first.child.exitCode !== null) throw new Error(`app exited: ${first.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const base = first.committed();
    const receivedAt = Date.UTC(2026, 5, 1, 12);
    await send(
      topics.requests,
      load.requests.map((r, i) => ({ key: r.deviceId, value: r.bytes, timestamp: receivedAt + i })),
    );
    await producer.disconnect();
    while (first.committed() - base < REQUESTS / 3) {
      if (Date.now() > until)
        throw new Error(`no progress: ${first.committed()} committed; ${first.stderr()}`);
      if (first.child.exitCode !== null) throw new Error(`app exited: ${first.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    first.child.kill("SIGKILL");
    await first.exited;
    const killedAfter = first.committed() - base;

    const second = startApp(args);
    const out = await readTopic(kafka, topics.responses, serdes.response, REQUESTS, {
      settleMs: 3000,
      timeoutMs: 150_000,
    }).catch(async (err: Error) => {
      const log = path.join(os.tmpdir(), `${prefix}second-app.log`);
      fs.writeFileSync(log, second.stderr());
      fs.writeFileSync(log.replace("second-app", "first-app"), first.stderr());
      const report = await progressReport(kafka, appId, [topics.requests], [topics.responses]);
      throw new Error(
        `${err.message}\n${report}\napp stderr (whole in ${log}): ${second.stderr().slice(-2000)}`,
      );
    });
    second.child.kill("SIGTERM");
    await second.exited;

    expect(killedAfter).toBeLessThan(REQUESTS);
    // Apart from replays (answered once per submission, compared below), no RequestID answered twice.
    expect(
      duplicateIds(out.filter((r) => r.headers["ecos.dsp.check"] !== "replay").map((r) => r.value.requestId)),
    ).toEqual([]);
    expect(out).toHaveLength(REQUESTS);
    // Exactly once: each (RequestID, submission) answered once; a replayed RequestID twice.
    const submissions = new Map<string, string[]>();
    for (const r of load.requests)
      submissions.set(r.requestId, [...(submissions.get(r.requestId) ?? []), r.expected]);
    const answers = new Map<string, string[]>();
    for (const r of out)
      answers.set(r.value.requestId, [
        ...(answers.get(r.value.requestId) ?? []),
        r.headers["ecos.dsp.check"] ?? "?",
      ]);
    expect(missingIds(submissions.keys(), answers.keys())).toEqual([]);
    const wrong: string[] = [];
    for (const [id, expected] of submissions) {
      const got = answers.get(id) ?? [];
      if (JSON.stringify([...got].sort()) !== JSON.stringify([...expected].sort()))
        wrong.push(`${id}: expected ${expected.join(",")}, got ${got.join(",")}`);
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    const dead = await readTopic(kafka, `${prefix}dead-letters`, serdes.response, 0, {
      settleMs: 500,
      timeoutMs: 5000,
    }).catch(() => []);
    expect(dead).toHaveLength(0);
  });
});
