/**
 * cos-cert-alerts: the N65 inventory rule (reference §0.1, seed 003 §3.4). A device added to a
 * Communications Hub Function's device log while its transitionalCoS trust anchor cell holds the
 * certificate of a CoS Party that does not serve it (a TCoS certificate once ECoS is live) is reported
 * to its Responsible Supplier, so the installer can act before leaving site.
 *
 *   inventory.devices (key device id, DeviceSnapshot)                           sub-topology 0
 *     cos-cert-detect  [store cos-alerts-device-hub: last CHF per device]
 *        joined a hub with a not-serving credential and has an ImportMPxN
 *        └─▶ internal topic <app>-cos-alerts-by-mpxn (key ImportMPxN, CosCertificateJoin)
 *   <app>-cos-alerts-by-mpxn + registration.changes (key MPxN, SupplierRegistration)  sub-topology 1
 *     cos-cert-alert  [store cos-alerts-registration] registered supplier on the snapshot's UK day
 *        → its supplier-role User IDs (users directory) → duis.alerts (DccAlertEvent, key User ID)
 *
 * Registration Data is joined by repartitioning on the MPxN, as in dsp-validate (same reasons: it is
 * national-scale and the runtime has no global tables).
 */
import type { Processor, ProcessorContext, StreamRecord } from "../runtime/api";
import type { KeyValueStore } from "../runtime/stores";
import { jsonSerde, type Serde } from "../runtime/serde";
import { TopologyBuilder, type StoreBackendKind, type Topology } from "../runtime/topology";
import type {
  CosCredential,
  DccAlertEvent,
  DeviceSnapshot,
  DeviceType,
  SupplierRegistration,
} from "../../schemas/event-records";
import { COS_TOPICS } from "../cos/records";
import { DSP_TOPICS } from "../dsp/topology";
import type { DccUser } from "../dsp/csv";
import {
  RegistrationTable,
  isoDate,
  registeredPeriodAsOf,
  ukCalendarDay,
  type RegistrationHistory,
} from "../dsp/reference-data";
import {
  DEFAULT_COS_CERTIFICATE_ALERT,
  cosCertificateAlertId,
  defaultNotServing,
  joinedHub,
  notServingAt,
  supplierUserIds,
  type CosCertificateAlertCode,
  type DeviceHubMemory,
  type NotServingCredential,
} from "./rule";

export const COS_ALERT_TOPICS = {
  /** In (compacted table): Smart Metering Inventory, key device id. */
  inventory: DSP_TOPICS.inventory,
  /** In (compacted table): Registration Data, key MPxN. */
  registration: DSP_TOPICS.registration,
  /** Out: DCC alerts (DccAlertEvent), key recipient User ID. */
  alerts: COS_TOPICS.alerts,
} as const;

export type CosAlertTopics = { -readonly [K in keyof typeof COS_ALERT_TOPICS]: string };

export function cosAlertTopics(prefix = ""): CosAlertTopics {
  return {
    inventory: prefix + COS_ALERT_TOPICS.inventory,
    registration: prefix + COS_ALERT_TOPICS.registration,
    alerts: prefix + COS_ALERT_TOPICS.alerts,
  };
}

/** Internal (repartition) topic: `<applicationId>-cos-alerts-by-mpxn`. */
export const COS_ALERTS_BY_MPXN_TOPIC = "cos-alerts-by-mpxn";

/** Store names: part of the compatibility surface (they name the changelog topics). */
export const COS_ALERT_STORES = {
  deviceHub: "cos-alerts-device-hub",
  registration: "cos-alerts-registration",
} as const;

export interface CosAlertSerdes {
  readonly inventory: Serde<DeviceSnapshot>;
  readonly registration: Serde<SupplierRegistration>;
  readonly alert: Serde<DccAlertEvent>;
}

/** JSON serdes for tests (the product uses Avro through the registry: serdes.ts). */
export function jsonCosAlertSerdes(): CosAlertSerdes {
  return {
    inventory: jsonSerde("json:inventory"),
    registration: jsonSerde("json:registration"),
    alert: jsonSerde("json:alert"),
  };
}

/** Why a snapshot did or did not lead to an alert; each is counted. */
export type CosAlertOutcome =
  /** An alert was sent (counted per alert, i.e. per recipient). */
  | "alerted"
  /** Older than the snapshot already seen for the device: ignored. */
  | "stale-snapshot"
  /** The device did not join a hub (no CHF, same CHF, or an identical snapshot again). */
  | "not-joined"
  /** It joined a hub, but its credential serves it at the snapshot time (ECOS; TCOS before go-live). */
  | "credential-serving"
  /** No responsible supplier: the device has no ImportMPxN (CHF, GPF, HAN devices; GPF rule not applied). */
  | "no-mpxn"
  /** No responsible supplier: no supplier is registered for the MPxN on the snapshot's day. */
  | "no-registration"
  /** The registered MPID has no active User in the supplier role for the fuel. */
  | "no-user";

export const COS_ALERT_OUTCOMES: readonly CosAlertOutcome[] = [
  "alerted",
  "stale-snapshot",
  "not-joined",
  "credential-serving",
  "no-mpxn",
  "no-registration",
  "no-user",
];

/**
 * Outcome counters shared by every task of the topology in this process (metrics, not state: they
 * start at zero after a restart). Inject one to read them; the topology makes its own otherwise.
 */
export class CosAlertCounters {
  private readonly counts = new Map<CosAlertOutcome, number>();
  count(outcome: CosAlertOutcome, n = 1): void {
    this.counts.set(outcome, this.get(outcome) + n);
  }
  get(outcome: CosAlertOutcome): number {
    return this.counts.get(outcome) ?? 0;
  }
  snapshot(): Record<CosAlertOutcome, number> {
    const out = {} as Record<CosAlertOutcome, number>;
    for (const o of COS_ALERT_OUTCOMES) out[o] = this.get(o);
    return out;
  }
}

export interface CosCertificateAlertOptions {
  readonly serdes: CosAlertSerdes;
  /** ECoS go-live, timestamp-millis: from then on a TCoS certificate does not serve the device (default table). */
  readonly ecosGoLiveAt: number;
  /**
   * Which credentials are not serving from when; replaces the default `[{TCOS from ecosGoLiveAt}]`
   * (e.g. add UNKNOWN, or move TCOS to the TCoS decommission date).
   */
  readonly notServing?: readonly NotServingCredential[];
  /** The DCC Users directory (as dsp-validate's `users`, from parseUsersCsv): MPID → User IDs. */
  readonly users: ReadonlyMap<string, DccUser>;
  /** Alert code and shape (default N65 / CoSCertificateAlert). */
  readonly alertCode?: CosCertificateAlertCode;
  readonly counters?: CosAlertCounters;
  readonly topicPrefix?: string;
  readonly backend?: StoreBackendKind;
}

/** The record on the internal topic (internal, versioned). */
export interface CosCertificateJoin {
  readonly v: 1;
  readonly deviceId: string;
  readonly deviceType: DeviceType;
  readonly chfDeviceId: string;
  readonly previousChfDeviceId: string | null;
  readonly importMpxn: string;
  readonly cosCredential: CosCredential;
  /** Why the credential does not serve the device, and since when. */
  readonly notServingReason: string;
  readonly notServingFrom: number;
  readonly snapshotAt: number;
}

function joinSerde(): Serde<CosCertificateJoin> {
  const json = jsonSerde<CosCertificateJoin>("cos-alerts-join-v1");
  return {
    ...json,
    deserialize: (topic, data) => {
      const o = json.deserialize(topic, data) as CosCertificateJoin;
      if (o.v !== 1) throw new Error(`cos-cert-alerts internal record: unknown version ${String(o.v)}`);
      return o;
    },
  };
}

/** Stage 1 (by device): remembers each device's CHF and spots joins with a not-serving credential. */
class CosCertificateDetector implements Processor<DeviceSnapshot, CosCertificateJoin> {
  private ctx!: ProcessorContext<CosCertificateJoin>;
  private memory!: KeyValueStore<DeviceHubMemory>;
  private readonly table: readonly NotServingCredential[];

  constructor(
    opts: CosCertificateAlertOptions,
    private readonly counters: CosAlertCounters,
  ) {
    this.table = opts.notServing ?? defaultNotServing(opts.ecosGoLiveAt);
  }

  init(ctx: ProcessorContext<CosCertificateJoin>): void {
    this.ctx = ctx;
    this.memory = ctx.getStateStore<DeviceHubMemory>(COS_ALERT_STORES.deviceHub);
  }

  process(record: StreamRecord<DeviceSnapshot>): void {
    const s = record.value;
    const previous = this.memory.get(s.deviceId);
    // A later snapshot supersedes an earlier one (schema doc): a late, older one changes nothing.
    if (previous && s.snapshotAt < previous.snapshotAt) {
      this.counters.count("stale-snapshot");
      return;
    }
    this.memory.put(s.deviceId, { chfDeviceId: s.chfDeviceId, snapshotAt: s.snapshotAt });
    if (!joinedHub(previous, s) || s.chfDeviceId === null) {
      this.counters.count("not-joined");
      return;
    }
    const notServing = notServingAt(this.table, s.cosCredential, s.snapshotAt);
    if (!notServing) {
      this.counters.count("credential-serving");
      return;
    }
    if (s.importMpxn === null || s.importMpxn === "") {
      // [GAP] reference §8.5: the GPF's supplier follows the meters on its hub; not applied here.
      this.counters.count("no-mpxn");
      return;
    }
    const join: CosCertificateJoin = {
      v: 1,
      deviceId: s.deviceId,
      deviceType: s.deviceType,
      chfDeviceId: s.chfDeviceId,
      previousChfDeviceId: previous?.chfDeviceId ?? null,
      importMpxn: s.importMpxn,
      cosCredential: s.cosCredential,
      notServingReason: notServing.reason,
      notServingFrom: notServing.from,
      snapshotAt: s.snapshotAt,
    };
    this.ctx.forward({ key: s.importMpxn, value: join, timestamp: record.timestamp }, "by-mpxn-sink");
  }
}

/** Stage 2 (by MPxN): the Responsible Supplier at the snapshot time, then one alert per its User ID. */
class CosCertificateAlerter implements Processor<CosCertificateJoin, DccAlertEvent> {
  private ctx!: ProcessorContext<DccAlertEvent>;
  private registration!: RegistrationTable;
  private readonly code: CosCertificateAlertCode;

  constructor(
    private readonly opts: CosCertificateAlertOptions,
    private readonly counters: CosAlertCounters,
  ) {
    this.code = opts.alertCode ?? DEFAULT_COS_CERTIFICATE_ALERT;
  }

  init(ctx: ProcessorContext<DccAlertEvent>): void {
    this.ctx = ctx;
    this.registration = new RegistrationTable(
      ctx.getStateStore<RegistrationHistory>(COS_ALERT_STORES.registration),
    );
  }

  process(record: StreamRecord<CosCertificateJoin>): void {
    const j = record.value;
    // Supply start dates are UK calendar days: the registered supplier on the snapshot's UK day.
    const day = ukCalendarDay(j.snapshotAt);
    const history = this.registration.history(j.importMpxn);
    const period = registeredPeriodAsOf(history, day);
    if (!history || !period) {
      this.counters.count("no-registration");
      return;
    }
    const recipients = supplierUserIds(this.opts.users, period.supplierMpid, history.fuel);
    if (recipients.length === 0) {
      this.counters.count("no-user");
      return;
    }
    const detail =
      `Device ${j.deviceId} (${j.deviceType}) was added to the device log of Communications Hub Function ` +
      `${j.chfDeviceId}${j.previousChfDeviceId ? ` (previously ${j.previousChfDeviceId})` : ""} at ` +
      `${new Date(j.snapshotAt).toISOString()}; its transitionalCoS trust anchor cell holds a ` +
      `${j.cosCredential} certificate, whose CoS Party does not serve the device since ` +
      `${new Date(j.notServingFrom).toISOString()} (${j.notServingReason}). Responsible Supplier: ` +
      `${period.supplierMpid}, registered for ${j.importMpxn} on ${isoDate(day)}.`;
    for (const recipientUserId of recipients) {
      const alert: DccAlertEvent = {
        alertId: cosCertificateAlertId(
          this.code.alertCode,
          j.deviceId,
          j.chfDeviceId,
          j.snapshotAt,
          recipientUserId,
        ),
        alertCode: this.code.alertCode,
        alertType: this.code.alertType,
        recipientUserId,
        deviceId: j.deviceId,
        requestId: null,
        ecosErrorCode: null,
        raisedAt: j.snapshotAt,
        detail,
      };
      this.counters.count("alerted");
      this.ctx.forward({ key: recipientUserId, value: alert, timestamp: record.timestamp });
    }
  }
}

class RegistrationTableProcessor implements Processor<SupplierRegistration, never> {
  private table!: RegistrationTable;
  init(ctx: ProcessorContext<never>): void {
    this.table = new RegistrationTable(ctx.getStateStore<RegistrationHistory>(COS_ALERT_STORES.registration));
  }
  process(record: StreamRecord<SupplierRegistration>): void {
    this.table.apply(record.value);
  }
}

/** The cos-cert-alerts topology (both drivers run it). */
export function buildCosCertificateAlertTopology(opts: CosCertificateAlertOptions): Topology {
  const t = cosAlertTopics(opts.topicPrefix);
  const sd = opts.serdes;
  const backend = opts.backend ?? "memory";
  const counters = opts.counters ?? new CosAlertCounters();
  const join = joinSerde();
  return new TopologyBuilder()
    .addSource("inventory", { topics: [t.inventory], valueSerde: sd.inventory })
    .addProcessor("cos-cert-detect", () => new CosCertificateDetector(opts, counters), "inventory")
    .addStateStore(
      { name: COS_ALERT_STORES.deviceHub, valueSerde: jsonSerde<DeviceHubMemory>(), backend },
      "cos-cert-detect",
    )
    .addInternalTopic(COS_ALERTS_BY_MPXN_TOPIC)
    .addSink("by-mpxn-sink", { topic: COS_ALERTS_BY_MPXN_TOPIC, valueSerde: join }, "cos-cert-detect")
    .addSource("joins", { topics: [COS_ALERTS_BY_MPXN_TOPIC], valueSerde: join })
    .addSource("registration", { topics: [t.registration], valueSerde: sd.registration })
    .addProcessor("cos-cert-alert", () => new CosCertificateAlerter(opts, counters), "joins")
    .addProcessor("registration-table", () => new RegistrationTableProcessor(), "registration")
    .addStateStore(
      { name: COS_ALERT_STORES.registration, valueSerde: jsonSerde<RegistrationHistory>(), backend },
      "cos-cert-alert",
      "registration-table",
    )
    .addSink("alerts-sink", { topic: t.alerts, valueSerde: sd.alert }, "cos-cert-alert")
    .build();
}
