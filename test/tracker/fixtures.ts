/**
 * Shared by the tracker tests: the response-tracker topology on the in-process driver (manual clock,
 * Avro serdes over an in-memory registry), requests dispatched the way dispatch sends them (the CoS
 * Party's signed pre-command from test/dispatch/fixtures.ts), and device answers in GBCS form signed
 * with a device key derived from the test PKI seed.
 */
import type { CosAuthorisation, DeviceResponse } from "../../processors/cos/records";
import { cosAvroSerdes } from "../../processors/cos/serdes";
import { dspAvroSerdes } from "../../processors/dsp/serdes";
import { InProcessDriver, type OutputRecord } from "../../processors/runtime/in-process-driver";
import { trackerConfig, type TrackerConfig } from "../../processors/tracker/config";
import {
  buildTrackerTopology,
  trackerTopics,
  type DropReason,
  type TrackerSerdes,
} from "../../processors/tracker/topology";
import { avroSerde, loadSchema } from "../../schemas/avro";
import {
  EVENT_SCHEMAS,
  type DccAlertEvent,
  type RequestStage,
  type RequestStageEvent,
  type ServiceResponseEvent,
} from "../../schemas/event-records";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import {
  ALERT_FUTURE_DATED_FAILURE,
  ALERT_FUTURE_DATED_SUCCESS,
  type ExecutionOutcome,
  type ReplacementStatus,
} from "../../workers/gbcs/device";
import { buildDeviceAlert, buildDeviceResponse } from "../../workers/gbcs/device-response";
import { deriveScalar } from "../../workers/testing/test-pki";
import { authorisation, ECOS_ID, T0, type AuthorisationOptions } from "../dispatch/fixtures";

export { T0 };

const deviceKey = opensslEcdsa.importPrivateKey(deriveScalar("tracker-test", "device"));

export function trackerSerdes(): TrackerSerdes {
  const registry = new InMemorySchemaRegistry();
  const cos = cosAvroSerdes(registry);
  const dsp = dspAvroSerdes(registry);
  return {
    stage: dsp.stage,
    authorisation: cos.authorisation,
    deviceCommand: cos.deviceCommand,
    s1spRequest: cos.s1spRequest,
    deviceResponse: cos.deviceResponse,
    response: dsp.response,
    alert: avroSerde(registry, loadSchema(EVENT_SCHEMAS.dccAlertEvent)),
  };
}

/** An ExecutionOutcome for the three supplier cells, `failed` ones with the given status. */
export function outcome(
  counter: bigint,
  failed: Partial<Record<"ds" | "ka" | "kaTopUp", ReplacementStatus>> = {},
): ExecutionOutcome {
  const cell = (keyUsage: "digitalSignature" | "keyAgreement", topUp: boolean) => ({
    role: 2,
    keyUsage,
    ...(topUp ? { cellUsage: 1 } : {}),
  });
  const o = (k: "ds" | "ka" | "kaTopUp", keyUsage: "digitalSignature" | "keyAgreement", topUp: boolean) => ({
    targetCell: cell(keyUsage, topUp),
    status: failed[k] ?? "success",
    existingEntityId: "90B3D51F30010000",
    existingSki: "44899792D196F4B8",
    newEntityId: "90B3D51F30030000",
    newSki: "4A8103ADAC183A89",
  });
  const replacementOutcomes = [
    o("ds", "digitalSignature", false),
    o("ka", "keyAgreement", false),
    o("kaTopUp", "keyAgreement", true),
  ];
  return {
    authorisingSeqNumber: counter,
    mode: 7,
    seqNumberChanges: [],
    replacementOutcomes,
    success: replacementOutcomes.every((r) => r.status === "success"),
  };
}

export interface TrackerRig {
  readonly driver: InProcessDriver;
  readonly serdes: TrackerSerdes;
  readonly drops: Array<{ requestId: string; reason: DropReason }>;
  /** Sends what the pipeline before the tracker produces for one request, up to dispatch. */
  dispatch(o?: AuthorisationOptions & { quarantined?: boolean }): Promise<CosAuthorisation>;
  stage(
    a: CosAuthorisation,
    stage: RequestStage,
    occurredAt: number,
    responseCode?: string | null,
    detail?: string | null,
  ): Promise<void>;
  command(a: CosAuthorisation, dispatchedAt?: number): Promise<void>;
  authorised(a: CosAuthorisation): Promise<void>;
  /** A device or S1SP answer to `a` at the current wall clock. */
  answer(
    a: CosAuthorisation,
    o: Partial<DeviceResponse> & {
      failed?: Parameters<typeof outcome>[1];
      accepted?: boolean;
      alertCode?: number;
    },
  ): Promise<void>;
  /** Moves the manual wall clock to `t` (firing the punctuations on the way). */
  advanceTo(t: number): Promise<void>;
  responses(): Promise<Array<OutputRecord<ServiceResponseEvent>>>;
  stages(): Promise<Array<OutputRecord<RequestStageEvent>>>;
  alerts(): Promise<DccAlertEvent[]>;
}

export async function trackerRig(
  config: Partial<Parameters<typeof trackerConfig>[0]> = {},
): Promise<TrackerRig> {
  const serdes = trackerSerdes();
  const drops: Array<{ requestId: string; reason: DropReason }> = [];
  const cfg: TrackerConfig = trackerConfig({ punctuationMs: 1, ...config });
  const driver = await InProcessDriver.create(
    buildTrackerTopology({ serdes, config: cfg, onDrop: (d) => drops.push(d) }),
    { applicationId: "tracker-test", partitions: 3, startTimeMs: T0 },
  );
  const t = trackerTopics();
  const stageOf = (
    a: CosAuthorisation,
    stage: RequestStage,
    occurredAt: number,
    responseCode: string | null = null,
    detail: string | null = null,
  ): RequestStageEvent => ({
    eventId: `${a.requestId}:${stage}:0`,
    requestId: a.requestId,
    userId: a.userId,
    srv: "6.23",
    deviceId: a.deviceId,
    smetsGeneration: a.smetsGeneration,
    stage,
    cosParty: stage === "VALIDATED" ? null : a.cosParty,
    responseCode,
    receivedAt: a.receivedAt,
    occurredAt,
    detail,
  });
  const rig: TrackerRig = {
    driver,
    serdes,
    drops,
    async stage(a, stage, occurredAt, responseCode = null, detail = null) {
      await driver.pipeInput(
        t.stages,
        [{ key: a.requestId, value: stageOf(a, stage, occurredAt, responseCode, detail) }],
        serdes.stage,
      );
    },
    async authorised(a) {
      await driver.pipeInput(t.authorisations, [{ key: a.deviceId, value: a }], serdes.authorisation);
    },
    async command(a, dispatchedAt = driver.wallClock()) {
      if (a.smetsGeneration === "SMETS2")
        await driver.pipeInput(
          t.deviceCommands,
          [
            {
              key: a.deviceId,
              value: {
                requestId: a.requestId,
                deviceId: a.deviceId,
                command: a.preCommand!,
                counter: a.counter!,
                dispatchedAt,
                executionAt: a.executionAt,
                cancellation: a.cancellation,
              },
            },
          ],
          serdes.deviceCommand,
        );
      else
        await driver.pipeInput(
          t.s1spRequests,
          [
            {
              key: a.deviceId,
              value: {
                requestId: a.requestId,
                deviceId: a.deviceId,
                userId: a.userId,
                countersigned: a.countersigned,
                dispatchedAt,
                executionAt: a.executionAt,
                cancellation: a.cancellation,
              },
            },
          ],
          serdes.s1spRequest,
        );
    },
    async dispatch(o = {}) {
      const a = authorisation(o);
      await rig.stage(a, "VALIDATED", a.receivedAt + 100);
      await rig.stage(a, "COS_PARTY_REQUESTED", a.receivedAt + 100);
      await rig.authorised(a);
      await rig.stage(a, "COS_PARTY_AUTHORISED", a.authorisedAt);
      if (o.quarantined) {
        await rig.stage(a, "QUARANTINED", a.authorisedAt + 10);
        return a;
      }
      const at = Math.max(driver.wallClock(), a.authorisedAt + 50);
      await rig.stage(a, "DISPATCHED", at);
      await rig.command(a, at);
      return a;
    },
    async answer(a, o) {
      const now = driver.wallClock();
      const kind = o.kind ?? "RESPONSE";
      const status = o.status ?? "SUCCESS";
      let payload: Buffer | null = o.payload ?? null;
      if (o.payload === undefined && a.smetsGeneration === "SMETS2" && o.source !== "S1SP") {
        const counter = BigInt(a.counter!);
        if (kind === "RESPONSE")
          payload = buildDeviceResponse(
            {
              deviceId: a.deviceId,
              cosPartyId: ECOS_ID,
              counter,
              at: now,
              outcome: o.accepted ? null : outcome(counter, o.failed ?? {}),
            },
            opensslEcdsa,
            deviceKey,
          );
        else
          payload = buildDeviceAlert(
            {
              deviceId: a.deviceId,
              cosPartyId: ECOS_ID,
              alertCounter: 77n,
              alert: {
                alertCode:
                  o.alertCode ??
                  (status === "SUCCESS" ? ALERT_FUTURE_DATED_SUCCESS : ALERT_FUTURE_DATED_FAILURE),
                executionDateTime: a.executionAt ?? now,
                outcome: outcome(counter, o.failed ?? {}),
              },
            },
            opensslEcdsa,
            deviceKey,
          );
      }
      const r: DeviceResponse = {
        requestId: a.requestId,
        deviceId: a.deviceId,
        source: a.smetsGeneration === "SMETS2" ? "DEVICE" : "S1SP",
        kind,
        status,
        detail: "",
        payload,
        answeredAt: now,
        ...o,
      };
      delete (r as { failed?: unknown }).failed;
      delete (r as { accepted?: unknown }).accepted;
      delete (r as { alertCode?: unknown }).alertCode;
      await driver.pipeInput(t.deviceResponses, [{ key: r.deviceId, value: r }], serdes.deviceResponse);
    },
    async advanceTo(time) {
      const d = time - driver.wallClock();
      if (d < 0) throw new Error("the clock only moves forward");
      await driver.advanceWallClock(d);
    },
    responses: () => driver.readOutput(t.responses, serdes.response),
    stages: () => driver.readOutput(t.stages, serdes.stage),
    alerts: async () => (await driver.readOutput(t.alerts, serdes.alert)).map((r) => r.value),
  };
  return rig;
}
