/**
 * cos-cert-alerts: the N65 inventory rule (reference §0.1, seed 003 §3.4). A device added to a
 * Communications Hub Function's device log while its transitionalCoS trust anchor cell holds the
 * certificate of a CoS Party that does not serve it (a TCoS certificate once ECoS is live) is reported
 * to its Responsible Supplier, so the installer can act before leaving site.
 *
 *   inventory.devices (key device id, DeviceSnapshot)                           sub-topology 0
 *     cos-cert-detect  [store cos-alerts-device-hub: last CHF per device]
 *        ├─ joined a hub with a not-serving credential and has an ImportMPxN
 *        │    └─▶ internal topic <app>-cos-alerts-by-mpxn (key ImportMPxN, CosCertificateJoin)
 *        └─ a meter's hub membership (ESME/GSME), or a GPF's join with a not-serving credential
 *             └─▶ internal topic <app>-cos-alerts-by-chf (key CHF device id, HubEvent)
 *   <app>-cos-alerts-by-chf                                                       sub-topology 1
 *     cos-cert-gpf  [store cos-alerts-hub-meters] GPF rule (reference §0.1): the gas meter's MPRN on the
 *        same hub, else the electricity meter's MPAN ─▶ <app>-cos-alerts-by-mpxn
 *   <app>-cos-alerts-by-mpxn + registration.changes (key MPxN, SupplierRegistration)  sub-topology 2
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
/** Internal (repartition) topic: `<applicationId>-cos-alerts-by-chf`. */
export const COS_ALERTS_BY_CHF_TOPIC = "cos-alerts-by-chf";

/** Store names: part of the compatibility surface (they name the changelog topics). */
export const COS_ALERT_STORES = {
  deviceHub: "cos-alerts-device-hub",
  registration: "cos-alerts-registration",
  hubMeters: "cos-alerts-hub-meters",
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
  /** No responsible supplier: the device has no ImportMPxN and is not a GPF (CHF, HAN devices). */
  | "no-mpxn"
  /** No responsible supplier: a GPF on a hub with no gas or electricity meter known when it joined. */
  | "gpf-no-meter"
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
  "gpf-no-meter",
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
  /** How the MPxN was found when it is not the device's own: the GPF rule's meter, e.g. "GSME 00-…". */
  readonly mpxnFrom: string | null;
  readonly cosCredential: CosCredential;
  /** Why the credential does not serve the device, and since when. */
  readonly notServingReason: string;
  readonly notServingFrom: number;
  readonly snapshotAt: number;
}

/** A meter on a hub, as the GPF rule needs it. */
export interface HubMeter {
  readonly deviceType: "ESME" | "GSME";
  readonly importMpxn: string;
}

/** What the hub-keyed stage keeps per CHF: the meters on its device log, by device id. */
export interface HubMeters {
  readonly meters: Readonly<Record<string, HubMeter>>;
}

/** The record on the by-CHF internal topic (internal, versioned). */
export type HubEvent =
  | {
      readonly v: 1;
      readonly kind: "meter";
      readonly chfDeviceId: string;
      readonly deviceId: string;
      /** The meter as on this hub now; null: it left this hub (or lost its MPxN). */
      readonly meter: HubMeter | null;
    }
  | {
      readonly v: 1;
      readonly kind: "gpf-join";
      readonly join: Omit<CosCertificateJoin, "importMpxn" | "mpxnFrom">;
    };

function versioned<T extends { readonly v: number }>(name: string): Serde<T> {
  const json = jsonSerde<T>(name);
  return {
    ...json,
    deserialize: (topic, data) => {
      const o = json.deserialize(topic, data) as T;
      if (o.v !== 1) throw new Error(`cos-cert-alerts internal record: unknown version ${String(o.v)}`);
      return o;
    },
  };
}

/** Stage 1 (by device): remembers each device's CHF and spots joins with a not-serving credential. */
class CosCertificateDetector implements Processor<DeviceSnapshot, CosCertificateJoin | HubEvent> {
  private ctx!: ProcessorContext<CosCertificateJoin | HubEvent>;
  private memory!: KeyValueStore<DeviceHubMemory>;
  private readonly table: readonly NotServingCredential[];

  constructor(
    opts: CosCertificateAlertOptions,
    private readonly counters: CosAlertCounters,
  ) {
    this.table = opts.notServing ?? defaultNotServing(opts.ecosGoLiveAt);
  }

  init(ctx: ProcessorContext<CosCertificateJoin | HubEvent>): void {
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
    if (s.deviceType === "ESME" || s.deviceType === "GSME") this.meterMembership(record, previous);
    if (!joinedHub(previous, s) || s.chfDeviceId === null) {
      this.counters.count("not-joined");
      return;
    }
    const notServing = notServingAt(this.table, s.cosCredential, s.snapshotAt);
    if (!notServing) {
      this.counters.count("credential-serving");
      return;
    }
    const join = {
      v: 1 as const,
      deviceId: s.deviceId,
      deviceType: s.deviceType,
      chfDeviceId: s.chfDeviceId,
      previousChfDeviceId: previous?.chfDeviceId ?? null,
      cosCredential: s.cosCredential,
      notServingReason: notServing.reason,
      notServingFrom: notServing.from,
      snapshotAt: s.snapshotAt,
    };
    if (s.importMpxn !== null && s.importMpxn !== "") {
      const value: CosCertificateJoin = { ...join, importMpxn: s.importMpxn, mpxnFrom: null };
      this.ctx.forward({ key: s.importMpxn, value, timestamp: record.timestamp }, "by-mpxn-sink");
    } else if (s.deviceType === "GPF") {
      // The GPF has no MPxN of its own: its Responsible Supplier follows the meters on its hub.
      const value: HubEvent = { v: 1, kind: "gpf-join", join };
      this.ctx.forward({ key: s.chfDeviceId, value, timestamp: record.timestamp }, "by-chf-sink");
    } else {
      this.counters.count("no-mpxn");
    }
  }

  /** Tells the hub stage where a meter is now (and that it left its previous hub). */
  private meterMembership(record: StreamRecord<DeviceSnapshot>, previous: DeviceHubMemory | undefined): void {
    const s = record.value;
    const ts = record.timestamp;
    const was = previous?.chfDeviceId ?? null;
    if (was !== null && was !== s.chfDeviceId) {
      const left: HubEvent = { v: 1, kind: "meter", chfDeviceId: was, deviceId: s.deviceId, meter: null };
      this.ctx.forward({ key: was, value: left, timestamp: ts }, "by-chf-sink");
    }
    if (s.chfDeviceId === null) return;
    const meter: HubMeter | null =
      s.importMpxn !== null && s.importMpxn !== ""
        ? { deviceType: s.deviceType as "ESME" | "GSME", importMpxn: s.importMpxn }
        : null;
    const on: HubEvent = { v: 1, kind: "meter", chfDeviceId: s.chfDeviceId, deviceId: s.deviceId, meter };
    this.ctx.forward({ key: s.chfDeviceId, value: on, timestamp: ts }, "by-chf-sink");
  }
}

/**
 * Stage 1b (by CHF): the meters on each hub, and the GPF rule (reference §0.1, §8.5): a GPF's
 * Responsible Supplier is the gas supplier when a gas meter is on its hub, else the electricity
 * supplier when an electricity meter is; with neither, nobody ([GAP] the SEC rule for that case).
 */
class GpfResponsibleSupplier implements Processor<HubEvent, CosCertificateJoin> {
  private ctx!: ProcessorContext<CosCertificateJoin>;
  private hubs!: KeyValueStore<HubMeters>;

  constructor(private readonly counters: CosAlertCounters) {}

  init(ctx: ProcessorContext<CosCertificateJoin>): void {
    this.ctx = ctx;
    this.hubs = ctx.getStateStore<HubMeters>(COS_ALERT_STORES.hubMeters);
  }

  process(record: StreamRecord<HubEvent>): void {
    const e = record.value;
    if (e.kind === "meter") {
      const meters = { ...(this.hubs.get(e.chfDeviceId)?.meters ?? {}) };
      if (e.meter) meters[e.deviceId] = e.meter;
      else delete meters[e.deviceId];
      if (Object.keys(meters).length) this.hubs.put(e.chfDeviceId, { meters });
      else this.hubs.delete(e.chfDeviceId);
      return;
    }
    const meters = Object.entries(this.hubs.get(e.join.chfDeviceId)?.meters ?? {}).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    const pick =
      meters.find(([, m]) => m.deviceType === "GSME") ?? meters.find(([, m]) => m.deviceType === "ESME");
    if (!pick) {
      this.counters.count("gpf-no-meter");
      return;
    }
    const [meterId, meter] = pick;
    const value: CosCertificateJoin = {
      ...e.join,
      importMpxn: meter.importMpxn,
      mpxnFrom: `${meter.deviceType} ${meterId}`,
    };
    this.ctx.forward({ key: meter.importMpxn, value, timestamp: record.timestamp });
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
      `${period.supplierMpid}, registered for ${j.importMpxn}` +
      `${j.mpxnFrom ? ` (GPF rule: ${j.mpxnFrom} on the same hub)` : ""} on ${isoDate(day)}.`;
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
  const join = versioned<CosCertificateJoin>("cos-alerts-join-v1");
  const hub = versioned<HubEvent>("cos-alerts-hub-v1");
  return new TopologyBuilder()
    .addSource("inventory", { topics: [t.inventory], valueSerde: sd.inventory })
    .addProcessor("cos-cert-detect", () => new CosCertificateDetector(opts, counters), "inventory")
    .addStateStore(
      { name: COS_ALERT_STORES.deviceHub, valueSerde: jsonSerde<DeviceHubMemory>(), backend },
      "cos-cert-detect",
    )
    .addInternalTopic(COS_ALERTS_BY_MPXN_TOPIC)
    .addInternalTopic(COS_ALERTS_BY_CHF_TOPIC)
    .addSink("by-chf-sink", { topic: COS_ALERTS_BY_CHF_TOPIC, valueSerde: hub }, "cos-cert-detect")
    .addSource("hub-events", { topics: [COS_ALERTS_BY_CHF_TOPIC], valueSerde: hub })
    .addProcessor("cos-cert-gpf", () => new GpfResponsibleSupplier(counters), "hub-events")
    .addStateStore(
      { name: COS_ALERT_STORES.hubMeters, valueSerde: jsonSerde<HubMeters>(), backend },
      "cos-cert-gpf",
    )
    .addSink(
      "by-mpxn-sink",
      { topic: COS_ALERTS_BY_MPXN_TOPIC, valueSerde: join },
      "cos-cert-detect",
      "cos-cert-gpf",
    )
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
