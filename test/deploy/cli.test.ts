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

  test("run on the embedded default runs the 6.23 pipeline end to end and summarises with chDB", () => {
    const r = ecos(["run", "--requests", "300", "--devices", "120", "--partitions", "2"]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("ecos run: embedded SRV 6.23 pipeline");
    expect(r.stderr).toMatch(/submitted 300 \/ 300/);
    expect(r.stdout).toContain("ecos run — summary (embedded SRV 6.23 pipeline)");
    expect(r.stdout).toContain("OK: every one of the 300 submissions has exactly one");
    expect(r.stdout).toMatch(/response-tracker\s+I0\s+successful\s+\d+/);
    expect(r.stdout).toMatch(/dsp-validate\s+GAP-replay\s+not successful/);
    expect(r.stdout).toMatch(
      /devices updated\s+[1-9]\d* SMETS2 devices hold the gaining supplier's certificates; [1-9]\d* SMETS1/,
    );
    expect(r.stdout).toMatch(
      /SMETS2\s+[\d,]+ answers\s+p50 [\d.]+ s\s+p95 [\d.]+ s\s+p99 [\d.]+ s.*target 35\.0 s\s+breaches \d+/,
    );
    expect(r.stdout).toMatch(/SMETS1\s+[\d,]+ answers.*target 21\.0 s/);
    expect(r.stdout).toMatch(/alerts\s+8F66 FutureDatedDeviceAlertMessage \d+/);
    // Rows read back from chDB with SQL: the stored responses and the aggregate by generation.
    expect(r.stdout).toMatch(/service_responses [1-9][\d,]*, request_stage_events [1-9]/);
    expect(r.stdout).toMatch(/│ SMETS2\s+│\s+\d+ │/);
  });

  test("a bad flag or setting stops with a clear message and a non-zero exit", () => {
    const badFlag = ecos(["run", "--requests", "-5"]);
    expect(badFlag.code).not.toBe(0);
    expect(badFlag.stderr).toMatch(/--requests.*positive integer/);
    const badEnv = ecos(["run", "--requests", "10"], { ECOS_ON_FAILURE: "ignore" });
    expect(badEnv.code).toBe(1);
    expect(badEnv.stderr).toMatch(/error ECOS_CONFIG_INVALID: ECOS_ON_FAILURE="ignore" is not valid/);
  });
});
