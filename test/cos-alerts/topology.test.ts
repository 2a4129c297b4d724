/**
 * cos-cert-alerts through the in-process driver: the N65 inventory rule (reference §0.1) — joins with
 * a not-serving credential, go-live, identical re-sends, moves between hubs, effective-dated
 * Registration Data, devices without a responsible supplier, and a restart keeping the per-device
 * memory.
 */
import { InProcessDriver, type OutputRecord } from "../../processors/runtime/in-process-driver";
import type { DccAlertEvent, DeviceSnapshot, SupplierRegistration } from "../../schemas/event-records";
import { epochDay } from "../../processors/dsp/reference-data";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import {
  COS_ALERT_STORES,
  CosAlertCounters,
  buildCosCertificateAlertTopology,
  cosAlertTopics,
  jsonCosAlertSerdes,
  type CosAlertSerdes,
  type CosCertificateAlertOptions,
} from "../../processors/cos-alerts/topology";
import { cosAlertAvroSerdes } from "../../processors/cos-alerts/serdes";
import type { DeviceHubMemory } from "../../processors/cos-alerts/rule";
import {
  GO_LIVE,
  AFTER,
  BEFORE,
  DAY,
  ESME,
  GPF,
  CHF_1,
  CHF_2,
  USER_A,
  USER_A_GAS,
  USER_B,
  USERS,
  snapshot,
  registration,
} from "./fixtures";

interface Rig {
  readonly driver: InProcessDriver;
  readonly counters: CosAlertCounters;
  inventory(...snapshots: DeviceSnapshot[]): Promise<void>;
  alerts(): Promise<OutputRecord<DccAlertEvent>[]>;
}

async function rig(
  o: {
    registrations?: SupplierRegistration[];
    extra?: Partial<CosCertificateAlertOptions>;
    partitions?: number;
    serdes?: CosAlertSerdes;
  } = {},
): Promise<Rig> {
  const serdes = o.serdes ?? jsonCosAlertSerdes();
  const counters = new CosAlertCounters();
  const topology = buildCosCertificateAlertTopology({
    serdes,
    ecosGoLiveAt: GO_LIVE,
    users: new Map(USERS.map((u) => [u.userId, u])),
    counters,
    ...o.extra,
  });
  const driver = await InProcessDriver.create(topology, {
    applicationId: "cos-alerts-test",
    partitions: o.partitions ?? 1,
    startTimeMs: AFTER,
  });
  const t = cosAlertTopics();
  await driver.pipeInput(
    t.registration,
    (o.registrations ?? [registration()]).map((r) => ({ key: r.mpxn, value: r })),
    serdes.registration,
  );
  return {
    driver,
    counters,
    inventory: (...snapshots) =>
      driver.pipeInput(
        t.inventory,
        snapshots.map((s) => ({ key: s.deviceId, value: s, timestamp: s.snapshotAt })),
        serdes.inventory,
      ),
    alerts: () => driver.readOutput(t.alerts, serdes.alert),
  };
}

const rigs: Rig[] = [];
async function open(...args: Parameters<typeof rig>): Promise<Rig> {
  const r = await rig(...args);
  rigs.push(r);
  return r;
}
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.driver.close();
});

describe("cos-cert-alerts: the N65 inventory rule", () => {
  it("a TCoS device joining a hub after go-live alerts the registered supplier's User", async () => {
    const r = await open();
    await r.inventory(snapshot({ chfDeviceId: null, snapshotAt: AFTER - 1000 }), snapshot());
    const out = await r.alerts();
    expect(out).toHaveLength(1);
    const a = out[0]!;
    expect(a.key).toBe(USER_A);
    expect(a.value).toMatchObject({
      alertCode: "N65",
      alertType: "CoSCertificateAlert",
      recipientUserId: USER_A,
      deviceId: ESME,
      requestId: null,
      ecosErrorCode: null,
      raisedAt: AFTER,
    });
    expect(a.value.detail).toContain(CHF_1);
    expect(a.value.detail).toContain("TCOS");
    expect(a.value.detail).toContain("ACEE");
    expect(a.value.alertId).toContain(ESME);
    expect(r.counters.get("alerted")).toBe(1);
    expect(r.counters.get("not-joined")).toBe(1);
  });

  it("before go-live a TCoS credential serves the device: no alert", async () => {
    const r = await open();
    await r.inventory(snapshot({ snapshotAt: BEFORE }));
    expect(await r.alerts()).toHaveLength(0);
    expect(r.counters.get("credential-serving")).toBe(1);
    // The hub is remembered all the same: the same hub after go-live is not a new join.
    await r.inventory(snapshot({ snapshotAt: AFTER }));
    expect(await r.alerts()).toHaveLength(0);
    expect(r.counters.get("not-joined")).toBe(1);
  });

  it("an ECoS credential: no alert; UNKNOWN neither, unless configured as not serving", async () => {
    const r = await open();
    await r.inventory(
      snapshot({ cosCredential: "ECOS" }),
      snapshot({ deviceId: GPF, cosCredential: "UNKNOWN" }),
    );
    expect(await r.alerts()).toHaveLength(0);
    expect(r.counters.get("credential-serving")).toBe(2);

    const strict = await open({
      extra: {
        notServing: [{ credential: "UNKNOWN", from: GO_LIVE, reason: "no evidence of the credential" }],
      },
    });
    await strict.inventory(snapshot({ cosCredential: "UNKNOWN" }));
    const out = await strict.alerts();
    expect(out.map((o) => o.value.detail)).toEqual([
      expect.stringContaining("no evidence of the credential"),
    ]);
  });

  it("a configured table replaces go-live: TCoS alerts only from the decommission date", async () => {
    const decommission = AFTER + 10 * DAY;
    const r = await open({
      extra: { notServing: [{ credential: "TCOS", from: decommission, reason: "TCoS decommission" }] },
    });
    await r.inventory(snapshot({ snapshotAt: AFTER }));
    expect(await r.alerts()).toHaveLength(0);
    await r.inventory(snapshot({ chfDeviceId: CHF_2, snapshotAt: decommission }));
    const out = await r.alerts();
    expect(out).toHaveLength(1);
    expect(out[0]!.value.detail).toContain("TCoS decommission");
  });

  it("the same snapshot twice alerts once; a stale snapshot is ignored", async () => {
    const r = await open();
    await r.inventory(snapshot());
    await r.inventory(snapshot());
    expect(await r.alerts()).toHaveLength(1);
    await r.inventory(snapshot({ chfDeviceId: CHF_2, snapshotAt: AFTER - DAY }));
    expect(await r.alerts()).toHaveLength(0);
    expect(r.counters.get("stale-snapshot")).toBe(1);
  });

  it("moved to another hub alerts again, with a different alert id", async () => {
    const r = await open();
    await r.inventory(snapshot());
    await r.inventory(snapshot({ chfDeviceId: CHF_2, snapshotAt: AFTER + DAY }));
    const out = await r.alerts();
    expect(out).toHaveLength(2);
    expect(out[1]!.value.detail).toContain(`previously ${CHF_1}`);
    expect(out[1]!.value.raisedAt).toBe(AFTER + DAY);
    expect(new Set(out.map((o) => o.value.alertId)).size).toBe(2);
  });

  it("re-emitting the same join gives the same alert id (stored once downstream)", async () => {
    const a = await open();
    const b = await open();
    await a.inventory(snapshot());
    await b.inventory(snapshot());
    const [x] = await a.alerts();
    const [y] = await b.alerts();
    expect(x!.value.alertId).toBe(y!.value.alertId);
  });

  it("the supplier registered at the snapshot time is alerted (effective-dated Registration Data)", async () => {
    const switchDay = epochDay("2026-07-15");
    const r = await open({
      registrations: [
        registration({ supplierMpid: "ACEE", effectiveTo: switchDay }),
        registration({ supplierMpid: "BBEE", effectiveFrom: switchDay }),
      ],
    });
    await r.inventory(snapshot({ snapshotAt: Date.parse("2026-07-14T12:00:00Z") }));
    await r.inventory(snapshot({ chfDeviceId: CHF_2, snapshotAt: Date.parse("2026-07-15T12:00:00Z") }));
    const out = await r.alerts();
    expect(out.map((o) => o.value.recipientUserId)).toEqual([USER_A, USER_B]);
  });

  it("the UK calendar day decides: 23:30 UTC in summer is the next day in London", async () => {
    const switchDay = epochDay("2026-07-15");
    const r = await open({
      registrations: [
        registration({ supplierMpid: "ACEE", effectiveTo: switchDay }),
        registration({ supplierMpid: "BBEE", effectiveFrom: switchDay }),
      ],
    });
    await r.inventory(snapshot({ snapshotAt: Date.parse("2026-07-14T23:30:00Z") }));
    expect((await r.alerts()).map((o) => o.value.recipientUserId)).toEqual([USER_B]);
  });

  it("a gas MPRN goes to the Gas Supplier User of the MPID", async () => {
    const MPRN = "1234567890";
    const r = await open({ registrations: [registration({ mpxn: MPRN, fuel: "GAS", supplierMpid: "ACG" })] });
    await r.inventory(snapshot({ deviceType: "GSME", importMpxn: MPRN }));
    expect((await r.alerts()).map((o) => o.value.recipientUserId)).toEqual([USER_A_GAS]);
  });

  it("no MPxN, no registration or no User: no alert, each counted", async () => {
    const r = await open({ registrations: [registration({ effectiveFrom: epochDay("2027-01-01") })] });
    await r.inventory(
      snapshot({ deviceId: "00-DB-12-34-56-78-90-D0", deviceType: "PPMID", importMpxn: null }),
      snapshot(), // MPAN registered only from 2027
      snapshot({ deviceId: "00-DB-12-34-56-78-90-A1", importMpxn: "9999999999999" }),
    );
    expect(await r.alerts()).toHaveLength(0);
    expect(r.counters.get("no-mpxn")).toBe(1);
    expect(r.counters.get("no-registration")).toBe(2);

    const noUser = await open({ registrations: [registration({ supplierMpid: "ZZEE" })] });
    await noUser.inventory(snapshot());
    expect(await noUser.alerts()).toHaveLength(0);
    expect(noUser.counters.get("no-user")).toBe(1);
  });

  describe("GPF rule: the GPF's supplier follows the meters on its hub", () => {
    const MPRN = "1234567890";
    const gsme = (o: Partial<DeviceSnapshot> = {}): DeviceSnapshot =>
      snapshot({
        deviceId: "00-DB-12-34-56-78-90-E0",
        deviceType: "GSME",
        importMpxn: MPRN,
        cosCredential: "ECOS",
        snapshotAt: AFTER - 2000,
        ...o,
      });
    const esme = (o: Partial<DeviceSnapshot> = {}): DeviceSnapshot =>
      snapshot({ cosCredential: "ECOS", snapshotAt: AFTER - 1000, ...o });
    const gpf = (o: Partial<DeviceSnapshot> = {}): DeviceSnapshot =>
      snapshot({ deviceId: GPF, deviceType: "GPF", importMpxn: null, ...o });
    const regs = [
      registration({ supplierMpid: "BBEE" }),
      registration({ mpxn: MPRN, fuel: "GAS", supplierMpid: "ACG" }),
    ];

    it("a gas meter on the hub: the gas supplier's GS User", async () => {
      const r = await open({ registrations: regs });
      await r.inventory(gsme(), esme(), gpf());
      const out = await r.alerts();
      expect(out.map((o) => [o.value.deviceId, o.value.recipientUserId])).toEqual([[GPF, USER_A_GAS]]);
      expect(out[0]!.value.detail).toContain("GPF rule: GSME 00-DB-12-34-56-78-90-E0");
    });

    it("only an electricity meter: the electricity supplier", async () => {
      const r = await open({ registrations: regs });
      await r.inventory(esme(), gpf());
      expect((await r.alerts()).map((o) => o.value.recipientUserId)).toEqual([USER_B]);
    });

    it("no meter on the hub (or it moved away): no alert, counted", async () => {
      const r = await open({ registrations: regs });
      await r.inventory(gsme(), gsme({ chfDeviceId: CHF_2, snapshotAt: AFTER - 1500 }), gpf());
      expect(await r.alerts()).toHaveLength(0);
      expect(r.counters.get("gpf-no-meter")).toBe(1);
      // The gas meter is on CHF_2 now: a GPF joining that hub finds it.
      await r.inventory(gpf({ chfDeviceId: CHF_2, snapshotAt: AFTER + DAY }));
      expect((await r.alerts()).map((o) => o.value.recipientUserId)).toEqual([USER_A_GAS]);
    });
  });

  it("a restart keeps the per-device memory: the same snapshot does not alert again", async () => {
    const r = await open();
    await r.inventory(snapshot());
    expect(await r.alerts()).toHaveLength(1);
    await r.driver.restart();
    expect(r.driver.storeEntries<DeviceHubMemory>(COS_ALERT_STORES.deviceHub)).toEqual([
      [ESME, { chfDeviceId: CHF_1, snapshotAt: AFTER }],
    ]);
    await r.inventory(snapshot());
    expect(await r.alerts()).toHaveLength(0);
    await r.inventory(snapshot({ chfDeviceId: CHF_2, snapshotAt: AFTER + DAY }));
    expect(await r.alerts()).toHaveLength(1);
  });

  it("with several partitions, the join is re-keyed by MPxN and meets the registration there", async () => {
    const mpans = ["1312345678001", "1312345678002", "1312345678003", "1312345678004"];
    const r = await open({
      partitions: 3,
      registrations: mpans.map((m, i) => registration({ mpxn: m, supplierMpid: i % 2 ? "BBEE" : "ACEE" })),
    });
    await r.inventory(
      ...mpans.map((m, i) => snapshot({ deviceId: `00-DB-12-34-56-78-91-0${i}`, importMpxn: m })),
    );
    const out = await r.alerts();
    const byDevice = new Map(out.map((o) => [o.value.deviceId, o.value.recipientUserId]));
    expect(byDevice).toEqual(
      new Map(mpans.map((_m, i) => [`00-DB-12-34-56-78-91-0${i}`, i % 2 ? USER_B : USER_A])),
    );
  });

  it("runs on the Avro serdes of the schemas", async () => {
    const r = await open({ serdes: cosAlertAvroSerdes(new InMemorySchemaRegistry()) });
    await r.inventory(snapshot());
    const out = await r.alerts();
    expect(out.map((o) => o.value.alertCode)).toEqual(["N65"]);
  });
});
