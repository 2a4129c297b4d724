/**
 * `ecos sim` on the real broker and schema registry: DeviceCommands carrying pre-commands signed with
 * the seeded CoS Party test keys and an S1spRequest countersigned by the DSP and the ECoS Party go in
 * (Avro); the simulator process answers on device.responses; the state file it leaves shows the
 * devices' cells replaced and floors moved. No timing assertions: answers are awaited, not timed.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Kafka, logLevel } from "kafkajs";
import {
  cosTopics,
  type DeviceCommand,
  type DeviceResponse,
  type S1spRequest,
} from "../../processors/cos/records";
import { cosAvroSerdes } from "../../processors/cos/serdes";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import { parseDeviceAlert, parseDeviceResponse } from "../../workers/gbcs/device-response";
import { buildPreCommand, payloadFor623 } from "../../workers/gbcs/pre-command";
import { castSrv623Xml, type TestCredential } from "../../workers/testing/test-pki";
import { parseXml } from "../../workers/xml/parser";
import { countersignDuisDocument, signDuisDocument } from "../../workers/xmldsig/duis-signature";
import { seededCredentials, SIM_ECOS_PARTY_ID, SIM_TCOS_PARTY_ID } from "../../deploy/sim/credentials";
import { seededInventory } from "../../deploy/sim/inventory";
import { loadStateFile } from "../../deploy/sim/state-file";
import { trackChild } from "./children";
import { createTopics, produceKeyed, readTopic, removeRun, uniquePrefix } from "./kafka-harness";
import { REPO_DIR, testServices } from "./services";

const SEED = "sim-kafka-it";
const ecdsa = opensslEcdsa;
const creds = seededCredentials(SEED);
const cast = creds.cast;
const inventory = seededInventory(30, SEED);
const smets2 = (credential: "ECOS" | "TCOS") =>
  inventory
    .filter((d) => d.smetsGeneration === "SMETS2" && d.cosCredential === credential)
    .map((d) => d.deviceId);
const [A, B, D] = smets2("ECOS") as [string, string, string];
const C = smets2("TCOS")[0]!;
const E = inventory.find((d) => d.smetsGeneration === "SMETS1")!.deviceId;

function command(
  deviceId: string,
  counter: bigint,
  o: { executionAt?: number; signer?: TestCredential; cosId?: string } = {},
): DeviceCommand {
  const bytes = buildPreCommand(
    {
      cosPartyId: o.cosId ?? SIM_ECOS_PARTY_ID,
      deviceId,
      counter,
      payload: payloadFor623({
        supplierFloorSeqNumber: 0n,
        supplierPrepaymentTopUpFloorSeqNumber: 0n,
        digitalSigningCertificate: cast.replacementDs.der,
        keyAgreementCertificate: cast.replacementKa.der,
        keyAgreementTopUpCertificate: cast.replacementKaTopUp.der,
        certificationPathCertificates: [cast.pki.oca.der],
        applyTimeBasedCpvChecks: true,
        ...(o.executionAt !== undefined ? { executionDateTime: o.executionAt } : {}),
      }),
    },
    ecdsa,
    ecdsa.importPrivateKey((o.signer ?? creds.ecosPartyCredential).scalar),
  );
  return {
    requestId: `${cast.supplierId}:${deviceId}:${5000n + counter}`,
    deviceId,
    command: bytes,
    counter: counter.toString(),
    dispatchedAt: Date.now(),
    executionAt: o.executionAt ?? null,
    cancellation: false,
  };
}

function s1spRequest(deviceId: string, counter: number): S1spRequest {
  const xml = Buffer.from(castSrv623Xml(cast, deviceId, counter), "utf8");
  let bytes = signDuisDocument(xml, parseXml(xml), cast.supplierXmlSign.signingKey());
  for (const signer of [cast.dspXmlSign, creds.ecosXmlSign])
    bytes = countersignDuisDocument(bytes, parseXml(bytes), signer.signingKey());
  return {
    requestId: `${cast.supplierId}:${deviceId}:${counter}`,
    deviceId,
    userId: cast.supplierId,
    countersigned: bytes,
    dispatchedAt: Date.now(),
    executionAt: null,
    cancellation: false,
  };
}

describe("ecos sim on the real broker", () => {
  const services = testServices();
  const kafka = new Kafka({ clientId: "sim-it", brokers: services.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const prefix = uniquePrefix("sim");
  const topics = cosTopics(prefix);
  const group = `${prefix}sim`;
  const serdes = cosAvroSerdes(new ConfluentSchemaRegistryClient({ host: services.registryUrl }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-sim-it-"));
  const stateFile = path.join(dir, "state.json");

  beforeAll(async () => {
    await admin.connect();
    await createTopics(admin, [topics.deviceCommands, topics.s1spRequests, topics.deviceResponses], 3);
  });

  afterAll(async () => {
    await removeRun(admin, prefix, [group]);
    await admin.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Starts `ecos sim` as a user would and waits until its consumer joined. */
  async function startSim(): Promise<{ stop(): Promise<number | null>; stdout(): string; stderr(): string }> {
    const child = trackChild(
      spawn(
        process.execPath,
        [
          path.join(REPO_DIR, "deploy", "cli", "bin.cjs"),
          "sim",
          ...["--brokers", services.kafkaBrokers.join(","), "--registry", services.registryUrl],
          ...["--devices", "30", "--seed", SEED, "--latency", "fixed:300", "--s1sp-latency", "fixed:300"],
          ...["--perfect", "--topic-prefix", prefix, "--group", group, "--state", stateFile],
          ...["--from-beginning", "--summary-json"],
        ],
        { stdio: ["ignore", "pipe", "pipe"], cwd: REPO_DIR },
      ),
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const until = Date.now() + 60_000;
    while (!stderr.includes("sim ready")) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`ecos sim did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      stop: async () => {
        child.kill("SIGTERM");
        return exited;
      },
      stdout: () => stdout,
      stderr: () => stderr,
    };
  }

  test("verifies and executes signed commands, refuses tampered and replayed ones, alerts future-dated ones, answers the S1SP request; floors survive a restart", async () => {
    let sim = await startSim();
    const good = command(A, 1n);
    const tampered = command(B, 1n);
    const t = Buffer.from(tampered.command);
    t[t.length - 5] = t[t.length - 5]! ^ 0x01;
    const tcos = command(C, 1n, { signer: creds.tcosPartyCredential, cosId: SIM_TCOS_PARTY_ID });
    const executionAt = Math.ceil((Date.now() + 4000) / 1000) * 1000;
    const futureDated = command(D, 1n, { executionAt });
    const commands = [good, good, { ...tampered, command: t }, tcos, futureDated];
    await produceKeyed(
      kafka,
      topics.deviceCommands,
      commands.map((c) => ({ key: c.deviceId, value: c, timestamp: Date.now() })),
      serdes.deviceCommand,
      3,
    );
    const s1 = s1spRequest(E, 7001);
    await produceKeyed(
      kafka,
      topics.s1spRequests,
      [{ key: E, value: s1, timestamp: Date.now() }],
      serdes.s1spRequest,
      3,
    );

    const records = await readTopic(kafka, topics.deviceResponses, serdes.deviceResponse, 7, {
      timeoutMs: 30_000,
    });
    const answers = records.map((r) => r.value);
    const of = (requestId: string, kind: DeviceResponse["kind"] = "RESPONSE"): DeviceResponse[] =>
      answers.filter((a) => a.requestId === requestId && a.kind === kind);
    expect(answers).toHaveLength(7);
    expect(records.every((r) => r.key === r.value.deviceId)).toBe(true);
    expect(
      of(good.requestId)
        .map((a) => a.status)
        .sort(),
    ).toEqual(["COUNTER_REPLAYED", "SUCCESS"]);
    const success = of(good.requestId).find((a) => a.status === "SUCCESS")!;
    expect(parseDeviceResponse(success.payload!).outcome?.success).toBe(true);
    expect(of(tampered.requestId).map((a) => a.status)).toEqual(["SIGNATURE_INVALID"]);
    expect(of(tcos.requestId).map((a) => a.status)).toEqual(["SUCCESS"]);
    expect(of(futureDated.requestId).map((a) => a.status)).toEqual(["ACCEPTED"]);
    const [alert] = of(futureDated.requestId, "ALERT");
    expect(alert).toMatchObject({ status: "SUCCESS", source: "DEVICE", answeredAt: executionAt });
    expect(parseDeviceAlert(alert!.payload!).alertCode).toBe(0x8f66);
    expect(of(s1.requestId)).toEqual([
      expect.objectContaining({ source: "S1SP", status: "SUCCESS", payload: null }),
    ]);

    expect(await sim.stop()).toBe(0);
    const summary = JSON.parse(sim.stdout().trim().split("\n").pop()!) as {
      deviceCommands: number;
      s1spRequests: number;
      responsesProduced: number;
    };
    expect(summary).toMatchObject({ deviceCommands: 5, s1spRequests: 1, responsesProduced: 7 });

    const state = loadStateFile(stateFile, SEED)!;
    const device = (id: string) => state.fleet.find(([d]) => d === id)![1].state;
    const ds = (id: string) => Buffer.from(device(id).supplierCells.digitalSignature!);
    expect(ds(A).equals(cast.replacementDs.der)).toBe(true);
    expect(device(A).floors).toEqual({ transitionalCoS: 1n, supplier: 0n, supplierPrepaymentTopUp: 0n });
    expect(ds(B).equals(creds.losingDs)).toBe(true);
    expect(device(B).floors.transitionalCoS).toBe(0n);
    expect(ds(C).equals(cast.replacementDs.der)).toBe(true);
    expect(ds(D).equals(cast.replacementDs.der)).toBe(true);
    expect(state.s1sp.find(([d]) => d === E)![1].supplierId).toBe(cast.supplierId);

    // Restarted on its state file: the floors survived, so the same command is a replay; the next counter works.
    sim = await startSim();
    expect(sim.stderr()).toContain("sim state restored");
    const next = command(A, 2n);
    await produceKeyed(
      kafka,
      topics.deviceCommands,
      [good, next].map((c) => ({ key: c.deviceId, value: c, timestamp: Date.now() })),
      serdes.deviceCommand,
      3,
    );
    const all = (
      await readTopic(kafka, topics.deviceResponses, serdes.deviceResponse, 9, { timeoutMs: 30_000 })
    ).map((r) => r.value);
    expect(all).toHaveLength(9);
    expect(all.filter((a) => a.requestId === good.requestId).map((a) => a.status)).toEqual([
      "SUCCESS",
      "COUNTER_REPLAYED",
      "COUNTER_REPLAYED",
    ]);
    expect(all.filter((a) => a.requestId === next.requestId).map((a) => a.status)).toEqual(["SUCCESS"]);
    expect(await sim.stop()).toBe(0);
    expect(
      loadStateFile(stateFile, SEED)!.fleet.find(([d]) => d === A)![1].state.floors.transitionalCoS,
    ).toBe(2n);
  });
});
