import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { formatSummary, registerSimCommand } from "../../deploy/cli/sim";
import { seededCredentials } from "../../deploy/sim/credentials";
import { seededInventory, splitInventory } from "../../deploy/sim/inventory";

function program(env: Record<string, string> = {}): Command {
  const p = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerSimCommand(p, { env, signal: AbortSignal.abort() });
  return p;
}

async function failure(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code?: string; message: string }> {
  try {
    await program(env).parseAsync(["node", "ecos", "sim", ...args]);
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error("expected a failure");
}

describe("ecos sim: flags", () => {
  test("refuses to start without brokers, or without a registry unless --json-records", async () => {
    expect(await failure([])).toMatchObject({
      code: "ECOS_CONFIG_INVALID",
      message: expect.stringMatching(/--brokers/) as string,
    });
    expect(await failure(["--brokers", "127.0.0.1:1"])).toMatchObject({
      code: "ECOS_CONFIG_INVALID",
      message: expect.stringMatching(/--registry/) as string,
    });
  });

  test("refuses a bad latency, rate or failure list before connecting anywhere", async () => {
    expect((await failure(["--latency", "lognormal:p50=9000,p99=10"])).message).toMatch(/p50 <= p99/);
    expect((await failure(["--loss", "1.5"])).message).toMatch(/between 0 and 1/);
    expect((await failure(["--failures", "success=0.1"])).message).toMatch(/statuses badCertificate/);
  });

  test("--ecos-cert must hold exactly one certificate", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-sim-cli-"));
    try {
      const creds = seededCredentials("cli-seed");
      const pem = (der: Buffer): string =>
        `-----BEGIN CERTIFICATE-----\n${der.toString("base64")}\n-----END CERTIFICATE-----\n`;
      const file = path.join(dir, "two.pem");
      fs.writeFileSync(file, pem(creds.ecosParty) + pem(creds.tcosParty));
      const e = await failure([
        "--brokers",
        "127.0.0.1:1",
        "--json-records",
        "--seed",
        "cli-seed",
        "--ecos-cert",
        file,
      ]);
      expect(e).toMatchObject({
        code: "ECOS_CONFIG_INVALID",
        message: expect.stringMatching(/holds 2 certificates/) as string,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the summary names the counts", () => {
    const text = formatSummary({
      devices: 9,
      s1spDevices: 1,
      deviceCommands: 5,
      s1spRequests: 1,
      undecodable: 0,
      responsesProduced: 6,
      produceFailures: 0,
      unsentAtStop: 2,
      device: {
        commands: 5,
        unknownDevice: 1,
        lost: 1,
        late: 0,
        injectedFailures: 0,
        answered: { SUCCESS: 3 },
      },
      s1sp: { requests: 1, lost: 0, late: 0, injectedFailures: 0, answered: { SUCCESS: 1 } },
    });
    expect(text).toContain("device commands 5: answered SUCCESS=3; lost 1");
    expect(text).toContain("unknown device 1");
    expect(text).toContain("unsent at stop 2");
  });
});

describe("the seeded fleet", () => {
  test("is the load generator's inventory: SMETS1 devices go to the S1SP, each SMETS2 device holds its CoS credential", () => {
    const creds = seededCredentials("fleet-seed");
    const inventory = seededInventory(30, "fleet-seed");
    const { fleet, s1sp } = splitInventory(inventory, creds);
    expect(fleet.length + s1sp.length).toBe(30);
    expect(s1sp.map(([id]) => id)).toEqual(
      inventory.filter((d) => d.smetsGeneration === "SMETS1").map((d) => d.deviceId),
    );
    for (const [id, d] of fleet) {
      const want =
        inventory.find((s) => s.deviceId === id)!.cosCredential === "TCOS"
          ? creds.tcosParty
          : creds.ecosParty;
      expect(Buffer.from(d.state.transitionalCoS).equals(want)).toBe(true);
      expect(Buffer.from(d.state.supplierCells.digitalSignature!).equals(creds.losingDs)).toBe(true);
    }
    expect(fleet.some(([, d]) => Buffer.from(d.state.transitionalCoS).equals(creds.tcosParty))).toBe(true);
    // Another seed: another PKI.
    expect(seededCredentials("another").ecosParty.equals(creds.ecosParty)).toBe(false);
  });
});
