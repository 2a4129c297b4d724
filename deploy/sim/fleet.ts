/**
 * The device simulator's core: a fleet of simulated SMETS2+ devices, pure and clock-driven. No Kafka,
 * no timers: `receive(command, now)` acts on a DeviceCommand and schedules the device's answer on an
 * internal timer queue; `advance(now)` returns every DeviceResponse due by `now` (answers, and the
 * alerts of future-dated commands executed on the way). The Kafka process (deploy/sim/process.ts)
 * calls them with the wall clock; tests call them with any clock they like.
 *
 * Real (workers/gbcs/device.ts): the command's strict parse, addressing, the CoS Party signature with
 * the key in the device's transitionalCoS cell, the anti-replay floor, the replacement certificates'
 * checks and path to the device's root, the cell replacement and floor changes; the answers are
 * device-signed GBCS Response / Alert APDUs (workers/gbcs/device-response.ts).
 * Modelled, per device model (deploy/sim/config.ts): the WAN latency, loss, late answers and
 * injected device failures. Draws are seeded by (seed, request id, counter), so a run is reproducible
 * whatever order records arrive in.
 */
import type { DeviceCommand, DeviceResponse } from "../../processors/cos/records";
import type { EcdsaP256, EcPrivateKey } from "../../workers/crypto/ecdsa";
import {
  executeDue,
  receiveCommand,
  type CommandRefusal,
  type ExecutionOutcome,
  type SimulatedDevice,
} from "../../workers/gbcs/device";
import { buildDeviceAlert, buildDeviceResponse } from "../../workers/gbcs/device-response";
import { parseCertificateCached } from "../../workers/smki/certificate";
import { injectedStatus, profileFor, type BehaviourProfile, type SimulatorConfig } from "./config";
import { sampleLatency, seededRandom } from "./random";
import { TimerQueue } from "./timer-queue";

/** One device of the fleet as held by the simulator. */
export interface FleetDevice {
  /** Inventory DeviceModel: selects the behaviour profile. */
  readonly model: string;
  readonly state: SimulatedDevice;
  /** The request whose future-dated command the device holds (its alert is correlated by it). */
  readonly pendingRequestId: string | null;
  /** The held command's bytes, so the state file can keep it (null when nothing is held). */
  readonly pendingCommand: Buffer | null;
  /** The device's own alert counter (GBCS alerts carry the device's counter, not the command's). */
  readonly alertCounter: bigint;
}

/** What became of one DeviceCommand. */
export type CommandFate =
  | { readonly kind: "unknownDevice" }
  | { readonly kind: "lost" }
  | { readonly kind: "answered"; readonly status: string; readonly at: number; readonly late: boolean };

export interface FleetStats {
  commands: number;
  unknownDevice: number;
  lost: number;
  late: number;
  injectedFailures: number;
  /** Responses by status, alerts as ALERT:<status>. */
  answered: Record<string, number>;
}

type Event = { type: "response"; response: DeviceResponse } | { type: "execute"; deviceId: string };

const REFUSAL_STATUS: Record<CommandRefusal, string> = {
  malformed: "MALFORMED",
  notAddressedToDevice: "NOT_ADDRESSED_TO_DEVICE",
  unknownOriginator: "UNKNOWN_ORIGINATOR",
  signatureInvalid: "SIGNATURE_INVALID",
  counterReplayed: "COUNTER_REPLAYED",
};

function cellName(o: ExecutionOutcome["replacementOutcomes"][number]): string {
  const t = o.targetCell;
  return t.keyUsage === "digitalSignature"
    ? "digitalSignature"
    : t.cellUsage === undefined
      ? "keyAgreement"
      : "keyAgreementTopUp";
}

/** "digitalSignature: badCertificate (why); keyAgreement: other (…)" for a failed outcome. */
export function describeOutcome(o: ExecutionOutcome): string {
  if (o.success) return "";
  return o.replacementOutcomes
    .map((r) => `${cellName(r)}: ${r.status}${r.reason ? ` (${r.reason})` : ""}`)
    .join("; ");
}

export interface DeviceFleetOptions {
  readonly config: SimulatorConfig;
  readonly devices: Iterable<[string, FleetDevice]>;
  readonly ecdsa: EcdsaP256;
  /** The device's GBCS signing key. */
  readonly deviceKey: (deviceId: string) => EcPrivateKey;
}

export class DeviceFleet {
  readonly stats: FleetStats = {
    commands: 0,
    unknownDevice: 0,
    lost: 0,
    late: 0,
    injectedFailures: 0,
    answered: {},
  };
  private readonly devices = new Map<string, FleetDevice>();
  private readonly queue = new TimerQueue<Event>();
  private readonly config: SimulatorConfig;
  private readonly ecdsa: EcdsaP256;
  private readonly deviceKey: (deviceId: string) => EcPrivateKey;

  constructor(o: DeviceFleetOptions) {
    this.config = o.config;
    this.ecdsa = o.ecdsa;
    this.deviceKey = o.deviceKey;
    for (const [id, d] of o.devices) {
      this.devices.set(id, d);
      // A held future-dated command (restored from a state file) executes at its time.
      if (d.state.pending) this.queue.push(d.state.pending.at, { type: "execute", deviceId: id });
    }
  }

  get size(): number {
    return this.devices.size;
  }

  device(deviceId: string): FleetDevice | undefined {
    return this.devices.get(deviceId);
  }

  entries(): IterableIterator<[string, FleetDevice]> {
    return this.devices.entries();
  }

  /** Answers and alerts scheduled but not yet due. */
  get inFlight(): number {
    return this.queue.values().filter((e) => e.type === "response").length;
  }

  /** When the next answer or execution is due (null: nothing scheduled). */
  nextDueAt(): number | null {
    return this.queue.peekAt();
  }

  /**
   * A DeviceCommand reaches the fleet at `now`. The device acts on it at once (its state changes
   * now); its answer is scheduled for `now` + the drawn latency. Lost commands change nothing.
   */
  receive(cmd: DeviceCommand, now: number): CommandFate {
    this.stats.commands++;
    const d = this.devices.get(cmd.deviceId);
    // A device that does not exist never answers: the tracker's time-out is the only outcome.
    if (!d) {
      this.stats.unknownDevice++;
      return { kind: "unknownDevice" };
    }
    const profile = profileFor(this.config, d.model);
    const random = seededRandom(this.config.seed, "device", cmd.requestId, cmd.counter);
    const fate = this.fate(profile, random);
    if (fate === null) {
      this.stats.lost++;
      return { kind: "lost" };
    }
    const before = d.state;
    const r = receiveCommand(before, cmd.command, now, this.ecdsa);
    const failureDraw = random();
    let next: FleetDevice = { ...d, state: r.device };
    let status: string;
    let detail = "";
    let payload: Buffer | null = null;
    const cosPartyId = parseCertificateCached(before.transitionalCoS).entityId ?? "";
    const at = now + fate.latencyMs;
    const a = r.answer;
    if (a.kind === "refused") {
      status = REFUSAL_STATUS[a.reason];
      detail = a.detail;
    } else if (a.kind === "accepted") {
      status = "ACCEPTED";
      const held = r.device.pending !== null;
      next = {
        ...next,
        pendingRequestId: held ? cmd.requestId : null,
        pendingCommand: held ? Buffer.from(cmd.command) : null,
      };
      if (r.device.pending) this.queue.push(r.device.pending.at, { type: "execute", deviceId: cmd.deviceId });
      payload = buildDeviceResponse(
        { deviceId: cmd.deviceId, cosPartyId, counter: a.counter, at, outcome: null },
        this.ecdsa,
        this.deviceKey(cmd.deviceId),
      );
    } else {
      let outcome = a.outcome;
      const injected = outcome.success ? injectedStatus(profile, failureDraw) : null;
      if (injected !== null) {
        // The command was good but the device failed to apply it: the CoS counter is spent, nothing else.
        this.stats.injectedFailures++;
        outcome = failedOutcome(outcome, injected);
        next = { ...next, state: { ...before, floors: { ...before.floors, transitionalCoS: a.counter } } };
      }
      status = outcome.success ? "SUCCESS" : "FAILURE";
      detail = describeOutcome(outcome);
      payload = buildDeviceResponse(
        { deviceId: cmd.deviceId, cosPartyId, counter: a.counter, at, outcome },
        this.ecdsa,
        this.deviceKey(cmd.deviceId),
      );
    }
    this.devices.set(cmd.deviceId, next);
    if (fate.late) this.stats.late++;
    this.queue.push(at, {
      type: "response",
      response: {
        requestId: cmd.requestId,
        deviceId: cmd.deviceId,
        source: "DEVICE",
        kind: "RESPONSE",
        status,
        detail,
        payload,
        answeredAt: at,
      },
    });
    return { kind: "answered", status, at, late: fate.late };
  }

  /** Every answer and alert due by `now`, in time order; executes held commands whose time came. */
  advance(now: number): DeviceResponse[] {
    const out: DeviceResponse[] = [];
    for (let e = this.queue.popDue(now); e !== null; e = this.queue.popDue(now)) {
      if (e.value.type === "response") {
        const key =
          e.value.response.kind === "ALERT" ? `ALERT:${e.value.response.status}` : e.value.response.status;
        this.stats.answered[key] = (this.stats.answered[key] ?? 0) + 1;
        out.push(e.value.response);
      } else this.execute(e.value.deviceId, e.at);
    }
    return out;
  }

  private fate(p: BehaviourProfile, random: () => number): { latencyMs: number; late: boolean } | null {
    const u = random();
    if (u < p.lossRate) return null;
    const late = u < p.lossRate + p.timeoutRate;
    return { latencyMs: sampleLatency(late ? p.lateLatency : p.latency, random), late };
  }

  /** A held future-dated command's time came: execute it and schedule its alert (0x8F66 / 0x8F67). */
  private execute(deviceId: string, at: number): void {
    const d = this.devices.get(deviceId);
    if (!d || d.state.pending === null || d.state.pending.at > at) return; // cancelled or replaced
    const requestId = d.pendingRequestId ?? "";
    const before: SimulatedDevice = { ...d.state, pending: null };
    const r = executeDue(d.state, at, this.ecdsa);
    if (r.alert === null) return;
    const profile = profileFor(this.config, d.model);
    const random = seededRandom(this.config.seed, "alert", requestId, String(d.alertCounter + 1n));
    const fate = this.fate(profile, random);
    let state = r.device;
    let alert = r.alert;
    const injected = alert.outcome.success ? injectedStatus(profile, random()) : null;
    if (injected !== null) {
      this.stats.injectedFailures++;
      state = before;
      const outcome = failedOutcome(alert.outcome, injected);
      alert = { ...alert, outcome, alertCode: 0x8f67 };
    }
    const alertCounter = d.alertCounter + 1n;
    this.devices.set(deviceId, {
      ...d,
      state,
      pendingRequestId: null,
      pendingCommand: null,
      alertCounter,
    });
    // Alerts cross the WAN too: they can be lost or late. An on-time alert is seen at execution time.
    if (fate === null) {
      this.stats.lost++;
      return;
    }
    if (fate.late) this.stats.late++;
    const when = fate.late ? at + fate.latencyMs : at;
    const cosPartyId = parseCertificateCached(d.state.transitionalCoS).entityId ?? "";
    const payload = buildDeviceAlert(
      { deviceId, cosPartyId, alertCounter, alert },
      this.ecdsa,
      this.deviceKey(deviceId),
    );
    this.queue.push(when, {
      type: "response",
      response: {
        requestId,
        deviceId,
        source: "DEVICE",
        kind: "ALERT",
        status: alert.outcome.success ? "SUCCESS" : "FAILURE",
        detail: describeOutcome(alert.outcome),
        payload,
        answeredAt: when,
      },
    });
  }
}

/** The outcome of a good command that the device nevertheless failed to apply with `status`. */
function failedOutcome(
  o: ExecutionOutcome,
  status: ExecutionOutcome["replacementOutcomes"][number]["status"],
): ExecutionOutcome {
  return {
    ...o,
    success: false,
    seqNumberChanges: [],
    replacementOutcomes: o.replacementOutcomes.map((r) => ({
      ...r,
      status,
      newEntityId: "",
      newSki: "",
      reason: "injected by the simulator's failure rates",
    })),
  };
}
