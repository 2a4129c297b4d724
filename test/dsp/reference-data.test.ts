import { EcosError } from "../../processors/runtime/errors";
import { InMemoryKeyValueStore } from "../../processors/runtime/stores";
import { parseInventoryCsv, parseRegistrationCsv, parseUsersCsv } from "../../processors/dsp/csv";
import {
  RegistrationTable,
  InventoryTable,
  epochDay,
  switchDate,
  ukCalendarDay,
  type RegistrationHistory,
} from "../../processors/dsp/reference-data";
import type { DeviceSnapshot } from "../../schemas/event-records";
import { device, registration } from "./fixtures";

const table = () => new RegistrationTable(new InMemoryKeyValueStore<RegistrationHistory>("r"));
const M = "1312345678333";

describe("Registration Data: mpidAsOf", () => {
  test("effective-dated: the period in force on the day; gaps and the end of a period", () => {
    const t = table();
    t.apply(
      registration({
        supplierMpid: "AAAA",
        effectiveFrom: epochDay("2025-01-01"),
        effectiveTo: epochDay("2025-06-01"),
      }),
    );
    t.apply(registration({ supplierMpid: "BBBB", effectiveFrom: epochDay("2025-07-01") }));
    expect(t.mpidAsOf(M, "2024-12-31")).toBeNull();
    expect(t.mpidAsOf(M, "2025-01-01")).toBe("AAAA");
    expect(t.mpidAsOf(M, "2025-05-31")).toBe("AAAA");
    expect(t.mpidAsOf(M, "2025-06-01")).toBeNull(); // effectiveTo is the first day after the period
    expect(t.mpidAsOf(M, "2025-07-01")).toBe("BBBB");
    expect(t.mpidAsOf("999", "2025-07-01")).toBeNull();
  });

  test("late and corrected updates: the highest version of a period wins whatever the arrival order", () => {
    const t = table();
    const from = epochDay("2025-03-01");
    t.apply(registration({ supplierMpid: "CCCC", effectiveFrom: from, registrationVersion: 5 }));
    expect(t.apply(registration({ supplierMpid: "OLD1", effectiveFrom: from, registrationVersion: 4 }))).toBe(
      false,
    );
    expect(t.mpidAsOf(M, "2025-03-02")).toBe("CCCC");
    t.apply(registration({ supplierMpid: "DDDD", effectiveFrom: from, registrationVersion: 6 }));
    expect(t.mpidAsOf(M, "2025-03-02")).toBe("DDDD");
    // A late record for an earlier period slots in before the later one.
    t.apply(
      registration({ supplierMpid: "EEEE", effectiveFrom: epochDay("2025-01-01"), registrationVersion: 1 }),
    );
    expect(t.mpidAsOf(M, "2025-02-01")).toBe("EEEE");
    expect(t.mpidAsOf(M, "2025-03-01")).toBe("DDDD");
  });

  test("switch date: UK calendar day of the execution time (future-dated) or of receipt", () => {
    // 23:30 UTC on 9 June is 00:30 BST on 10 June; in winter UTC and UK days agree.
    expect(ukCalendarDay(Date.UTC(2026, 5, 9, 23, 30))).toBe(epochDay("2026-06-10"));
    expect(ukCalendarDay(Date.UTC(2026, 0, 9, 23, 30))).toBe(epochDay("2026-01-09"));
    const at = Date.UTC(2026, 5, 1, 12);
    expect(switchDate({ form: "immediate", executionTime: null }, at)).toBe(epochDay("2026-06-01"));
    expect(switchDate({ form: "future-dated", executionTime: Date.UTC(2026, 5, 9, 23, 30) }, at)).toBe(
      epochDay("2026-06-10"),
    );
    expect(switchDate({ form: "cancellation", executionTime: Date.UTC(3000, 11, 31) }, at)).toBe(
      epochDay("2026-06-01"),
    );
    expect(() => epochDay("2026-02-30")).toThrow(/not a calendar date/);
  });
});

describe("Smart Metering Inventory", () => {
  test("latest snapshot wins; a late older snapshot is ignored", () => {
    const t = new InventoryTable(new InMemoryKeyValueStore<DeviceSnapshot>("i"));
    t.apply(device({ snapshotAt: 10, deviceStatus: "SUSPENDED" }));
    expect(t.apply(device({ snapshotAt: 5 }))).toBe(false);
    expect(t.device(device().deviceId)!.deviceStatus).toBe("SUSPENDED");
  });
});

describe("CSV loaders: strict, with precise errors", () => {
  const REG = "mpxn,fuel,supplier_mpid,effective_from,effective_to,registration_version\n";
  test("registration CSV", () => {
    const rows = parseRegistrationCsv(
      `${REG}1312345678333,ELECTRICITY,ACEE,2025-01-01,,3\n# comment\n\n1234567890,gas,ACG1,2025-01-01,2026-01-01,1\n`,
      "reg.csv",
      7,
    );
    expect(rows).toEqual([
      {
        mpxn: M,
        fuel: "ELECTRICITY",
        supplierMpid: "ACEE",
        effectiveFrom: epochDay("2025-01-01"),
        effectiveTo: null,
        registrationVersion: 3,
        receivedAt: 7,
      },
      {
        mpxn: "1234567890",
        fuel: "GAS",
        supplierMpid: "ACG1",
        effectiveFrom: epochDay("2025-01-01"),
        effectiveTo: epochDay("2026-01-01"),
        registrationVersion: 1,
        receivedAt: 7,
      },
    ]);
  });

  test.each([
    [
      "a bad date",
      `${REG}1312345678333,ELECTRICITY,ACEE,2025-13-01,,1`,
      /reg\.csv, line 2, column effective_from: .*not a calendar date/,
    ],
    [
      "an MPAN of 12 digits",
      `${REG}131234567833,ELECTRICITY,ACEE,2025-01-01,,1`,
      /line 2, column mpxn: .*13 digits/,
    ],
    ["a lower-case MPID", `${REG}1312345678333,ELECTRICITY,acee,2025-01-01,,1`, /column supplier_mpid/],
    [
      "an end before the start",
      `${REG}1312345678333,ELECTRICITY,ACEE,2025-01-01,2025-01-01,1`,
      /column effective_to/,
    ],
    ["a missing column", "mpxn,fuel\n1,GAS", /line 1, column supplier_mpid: column missing/],
    ["an unknown column", `${REG.trim()},extra\n`, /line 1, column extra: unknown column/],
    ["too few values", `${REG}1312345678333,ELECTRICITY`, /line 2: 2 values, but the header has 6/],
    ["an unknown fuel", `${REG}1312345678333,WATER,ACEE,2025-01-01,,1`, /column fuel: "WATER" is not one of/],
    [
      "a negative version",
      `${REG}1312345678333,ELECTRICITY,ACEE,2025-01-01,,-1`,
      /column registration_version/,
    ],
    ["quotes", `${REG}"1312345678333",ELECTRICITY,ACEE,2025-01-01,,1`, /quotes are not accepted/],
    ["an empty file", ``, /no header/],
  ])("registration CSV with %s is refused", (_what, text, message) => {
    let err: unknown;
    try {
      parseRegistrationCsv(text, "reg.csv", 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EcosError);
    expect((err as EcosError).code).toBe("ECOS_REFERENCE_DATA_INVALID");
    expect((err as EcosError).message).toMatch(message);
  });

  const INV =
    "device_id,device_type,smets_generation,device_status,import_mpxn,cos_credential,manufacturer,model,firmware_version,chf_device_id,commissioned_at\n";
  test("inventory CSV", () => {
    const [d] = parseInventoryCsv(
      `${INV}00db1234567890a0,esme,SMETS2,COMMISSIONED,1312345678333,ECOS,ACME,M1,1.0,00-DB-12-34-56-78-90-FF,2024-01-01T00:00:00Z\n`,
      "inv.csv",
      9,
    );
    expect(d).toMatchObject({
      deviceId: "00-DB-12-34-56-78-90-A0",
      deviceType: "ESME",
      chfDeviceId: "00-DB-12-34-56-78-90-FF",
      commissionedAt: Date.UTC(2024, 0, 1),
      snapshotAt: 9,
    });
    expect(() =>
      parseInventoryCsv(`${INV}00-DB,ESME,SMETS2,COMMISSIONED,1,ECOS,a,b,c,,`, "inv.csv", 0),
    ).toThrow(/line 2, column device_id: .*EUI-64/);
    expect(() =>
      parseInventoryCsv(`${INV}00DB1234567890A0,ESME,SMETS3,COMMISSIONED,1,ECOS,a,b,c,,`, "inv.csv", 0),
    ).toThrow(/column smets_generation/);
    expect(() =>
      parseInventoryCsv(
        `${INV}00DB1234567890A0,ESME,SMETS2,COMMISSIONED,1,ECOS,a,b,c,,2024-01-01`,
        "inv.csv",
        0,
      ),
    ).toThrow(/column commissioned_at/);
    const dup = `${INV}00DB1234567890A0,ESME,SMETS2,COMMISSIONED,1,ECOS,a,b,c,,\n00DB1234567890A0,GSME,SMETS2,COMMISSIONED,1,ECOS,a,b,c,,`;
    expect(() => parseInventoryCsv(dup, "inv.csv", 0)).toThrow(/line 3, column device_id: .*appears twice/);
  });

  test("users CSV", () => {
    expect(
      parseUsersCsv("user_id,roles,status,mpids\n90-B3-D5-1F-30-01-00-00,IS|GS,active,ACEE|ACG\n", "u.csv"),
    ).toEqual([
      { userId: "90-B3-D5-1F-30-01-00-00", roles: ["IS", "GS"], status: "ACTIVE", mpids: ["ACEE", "ACG"] },
    ]);
    expect(() =>
      parseUsersCsv("user_id,roles,status,mpids\n90-B3-D5-1F-30-01-00-00,I S,ACTIVE,\n", "u.csv"),
    ).toThrow(/column roles/);
  });
});
