/**
 * Golden tests of ECOSMIG-001 … 006 on the fixed event set (test/emrr/fixture.ts), stored through the
 * sink writer into embedded ClickHouse (chDB). The same goldens are checked against the ClickHouse
 * server by test/integration/clickhouse-reports.test.ts. Regenerate after a deliberate change with
 * UPDATE_GOLDEN=1 and review the diff.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChdbConnection } from "../../processors/sinks/clickhouse/chdb-connection";
import { DEVICES } from "./fixture";
import { loadFixture, readGolden, runGoldenReports, writeGolden } from "./golden";

type Rows = { columns: string[]; rows: Array<Record<string, unknown>> };

describe("EMRR reports on the fixed event set (chDB)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-golden-"));
  const conn = new ChdbConnection(dir);
  let results = new Map<string, object>();

  beforeAll(async () => {
    await loadFixture(conn, "golden");
    results = await runGoldenReports(conn, "golden");
  }, 60_000);
  afterAll(async () => {
    await conn.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("every report matches its golden file", () => {
    expect(results.size).toBeGreaterThanOrEqual(19);
    for (const [name, value] of results) {
      if (process.env["UPDATE_GOLDEN"] === "1") writeGolden(name, value);
      expect({ name, value }).toEqual({ name, value: readGolden(name) });
    }
  });

  const rows = (name: string): Array<Record<string, unknown>> => (results.get(name) as Rows).rows;
  const devicesIn = (name: string): unknown[] => rows(name).map((r) => r["device_id"]);

  test("GPF rule: a GPF with a gas meter on its hub reports to the gas supplier", () => {
    expect(devicesIn("ECOSMIG-002_GASB_2024-03-12T0600_2024-03-12T1200")).toContain(DEVICES.GPF1);
    expect(devicesIn("ECOSMIG-002_ELEA_2024-03-12T0600_2024-03-12T1200")).not.toContain(DEVICES.GPF1);
    expect(devicesIn("ECOSMIG-006_GASB_2024-03-01_2024-04-01")).toContain(DEVICES.GPF6);
  });

  test("GPF rule: with no gas meter connected (none, or decommissioned) the electricity supplier", () => {
    expect(devicesIn("ECOSMIG-001_ELEA_2024-03-12_2024-03-13")).toContain(DEVICES.GPF2);
    // GPF4's gas meter is decommissioned; its electricity meter's MPAN moved to ELEC on 2024-03-10.
    expect(devicesIn("ECOSMIG-002_ELEC_2024-03-12T0600_2024-03-12T1200")).toEqual([DEVICES.GPF4]);
  });

  test("GPF rule: a GPF with no meter connected is reported to nobody", () => {
    for (const [, value] of results) expect(JSON.stringify(value)).not.toContain(DEVICES.GPF3);
  });

  test("a device unknown to the inventory goes to the supplier its migration events name", () => {
    expect(devicesIn("ECOSMIG-001_ELEA_2024-03-12_2024-03-13")).toContain(DEVICES.ESME5);
  });

  test("a change of supplier moves the device's reports and shows in the gaining supplier's history", () => {
    expect(devicesIn("ECOSMIG-001_ELEC_2024-03-12_2024-03-13")).toEqual([DEVICES.ESME4]);
    expect(devicesIn("ECOSMIG-001_ELEA_2024-03-12_2024-03-13")).not.toContain(DEVICES.ESME4);
    const history = rows("ECOSMIG-003_ELEC_2024-03-01_2024-04-01").filter(
      (r) => r["mpxn"] === "1100000000044",
    );
    expect(history.map((r) => [r["device_id"], r["losing_supplier_mpid"], r["migration_attempts"]])).toEqual([
      [DEVICES.ESME4, "ELEA", 2],
      [DEVICES.GPF4, "ELEA", 1],
    ]);
  });
});
