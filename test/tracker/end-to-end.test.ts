/**
 * Dispatch, a simulated device (workers/gbcs/device.ts: it really verifies the CoS Party's signature
 * with the key in its transitionalCoS cell and replaces its supplier cells) and the tracker, each on
 * its own in-process driver, records carried between them as on Kafka: a good SMETS2+ request ends
 * with the device holding the gaining supplier's certificates and exactly one I0; a tampered
 * pre-command is refused by dispatch and never reaches the device; the same command replayed to the
 * device is refused by the device, and its answer after the final response is dropped.
 */
import type { DeviceResponse } from "../../processors/cos/records";
import { trackerTopics } from "../../processors/tracker/topology";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import { receiveCommand, type SimulatedDevice } from "../../workers/gbcs/device";
import { buildDeviceResponse } from "../../workers/gbcs/device-response";
import { deriveScalar } from "../../workers/testing/test-pki";
import {
  adtFile,
  authorisation,
  cast,
  dispatchRig,
  ecosPreCommand,
  SMETS2_DEVICE,
  T0,
} from "../dispatch/fixtures";
import { trackerRig } from "./fixtures";

const deviceKey = opensslEcdsa.importPrivateKey(deriveScalar("e2e", "device"));

test("authorisation → dispatch → device → tracker: one command, new certificates on the device, one final response", async () => {
  const dispatch = await dispatchRig();
  await dispatch.submitAdt(adtFile(100));
  const tracker = await trackerRig();
  const ts = tracker.serdes;
  const tt = trackerTopics();

  let device: SimulatedDevice = {
    deviceId: SMETS2_DEVICE,
    root: cast.pki.root.der,
    transitionalCoS: ecosPreCommand.der,
    supplierCells: {
      digitalSignature: cast.dspXmlSign.der, // the losing supplier's (any certificate will do here)
      keyAgreement: cast.dspXmlSign.der,
      keyAgreementTopUp: cast.dspXmlSign.der,
    },
    floors: { transitionalCoS: 6000n, supplier: 0n, supplierPrepaymentTopUp: 0n },
    pending: null,
  };

  const good = authorisation({ userCounter: 1, counter: 6001n });
  const tampered = authorisation({
    userCounter: 2,
    counter: 6002n,
    alterPreCommand: (i) => ({
      ...i,
      payload: { ...i.payload, certificationPath: [cast.pki.root.der] },
    }),
  });
  await dispatch.send(good, tampered);

  // Carry dispatch's outputs (and the authorisations it read) to the tracker.
  await tracker.driver.pipeInput(
    tt.authorisations,
    [good, tampered].map((a) => ({ key: a.deviceId, value: a })),
    ts.authorisation,
  );
  const stages = await dispatch.stages();
  await tracker.driver.pipeInput(
    tt.stages,
    stages.map((s) => ({ key: s.requestId, value: s })),
    ts.stage,
  );
  const commands = await dispatch.commands();
  expect(commands.map((c) => c.value.requestId)).toEqual([good.requestId]);
  await tracker.driver.pipeInput(
    tt.deviceCommands,
    commands.map((c) => ({ key: c.key, value: c.value })),
    ts.deviceCommand,
  );
  const refusals = await dispatch.responses();
  expect(refusals.map((r) => [r.value.requestId, r.headers["ecos.dispatch.refusal"]])).toEqual([
    [tampered.requestId, "pre-command-mirror"],
  ]);

  // The device verifies and executes the command, then answers in GBCS form.
  const answer = async (command: Buffer): Promise<DeviceResponse> => {
    const now = tracker.driver.wallClock();
    const r = receiveCommand(device, command, now, opensslEcdsa);
    device = r.device;
    const a = r.answer;
    const response: DeviceResponse = {
      requestId: good.requestId,
      deviceId: SMETS2_DEVICE,
      source: "DEVICE",
      kind: "RESPONSE",
      status:
        a.kind === "executed"
          ? a.outcome.success
            ? "SUCCESS"
            : "FAILURE"
          : a.kind === "refused"
            ? "COUNTER_REPLAYED"
            : "ACCEPTED",
      detail: a.kind === "refused" ? a.detail : "",
      payload:
        a.kind === "executed"
          ? buildDeviceResponse(
              {
                deviceId: SMETS2_DEVICE,
                cosPartyId: ecosPreCommand.cert.entityId!,
                counter: a.counter,
                at: now,
                outcome: a.outcome,
              },
              opensslEcdsa,
              deviceKey,
            )
          : null,
      answeredAt: now,
    };
    await tracker.driver.pipeInput(
      tt.deviceResponses,
      [{ key: SMETS2_DEVICE, value: response }],
      ts.deviceResponse,
    );
    return response;
  };
  await tracker.advanceTo(T0 + 5_000);
  expect((await answer(commands[0]!.value.command)).status).toBe("SUCCESS");
  expect(device.supplierCells.digitalSignature).toEqual(cast.replacementDs.der);
  expect(device.supplierCells.keyAgreement).toEqual(cast.replacementKa.der);
  expect(device.supplierCells.keyAgreementTopUp).toEqual(cast.replacementKaTopUp.der);
  expect(device.floors.transitionalCoS).toBe(6001n);

  // A replay of the same command: the device refuses it, the tracker drops the answer.
  expect((await answer(commands[0]!.value.command)).status).toBe("COUNTER_REPLAYED");
  await tracker.advanceTo(T0 + 60_000);

  const finals = await tracker.responses();
  expect(finals.map((r) => [r.value.requestId, r.value.responseCode, r.value.successful])).toEqual([
    [good.requestId, "I0", true],
  ]);
  expect(tracker.drops).toEqual([{ requestId: good.requestId, reason: "duplicate" }]);
  const sent = (await tracker.stages()).filter((s) => s.value.stage === "RESPONSE_SENT");
  expect(sent).toHaveLength(1);
  expect(sent[0]!.value.detail).toContain("DISPATCHED+");
  expect(sent[0]!.value.detail).toContain("ANOMALY_CHECKED+");
});
