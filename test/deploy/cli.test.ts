/** The `ecos` command as a user runs it: a real process, its exit code, what it prints. */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const BIN = path.join(__dirname, "..", "..", "deploy", "cli", "bin.cjs");

function ecos(args: string[], env: Record<string, string> = {}) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-cli-"));
  try {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      env: { ...process.env, ECOS_STATE_DIR: stateDir, ECOS_KAFKA_BROKERS: "", ...env },
      encoding: "utf8",
      timeout: 120000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

describe("ecos CLI", () => {
  test("--help lists the run command", () => {
    const r = ecos(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: ecos/);
    expect(r.stdout).toMatch(/\brun\b/);
  });

  test("run on the embedded default counts every reading once and summarises with chDB", () => {
    const r = ecos(["run", "--records", "3000", "--devices", "120", "--partitions", "2"]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("embedded (in-process driver");
    expect(r.stdout).toMatch(/devices counted\s+120 \(store device-counts\), 3,000 readings/);
    expect(r.stdout).toContain("OK: every reading counted exactly once (3,000 on the topic)");
    // The chDB table agrees: 120 devices, 3000 readings, 25 per device.
    expect(r.stdout).toMatch(/│\s+120 │\s+3000 │\s+25 │\s+25 │\s+25 │/);
  });

  test("a bad flag or setting stops with a clear message and a non-zero exit", () => {
    const badFlag = ecos(["run", "--records", "-5"]);
    expect(badFlag.code).not.toBe(0);
    expect(badFlag.stderr).toMatch(/--records.*positive integer/);
    const badEnv = ecos(["run", "--records", "10"], { ECOS_ON_FAILURE: "ignore" });
    expect(badEnv.code).toBe(1);
    expect(badEnv.stderr).toMatch(/error ECOS_CONFIG_INVALID: ECOS_ON_FAILURE="ignore" is not valid/);
  });
});
