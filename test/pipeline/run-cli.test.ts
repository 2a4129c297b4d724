/**
 * `ecos run` as a user runs it (a child process): a small embedded run completes, prints the summary,
 * and is deterministic for a seed; `--help` says what the embedded default and `--kafka` run.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const BIN = path.join(__dirname, "..", "..", "deploy", "cli", "bin.cjs");

function ecos(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-run-"));
  try {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      env: { ...process.env, ECOS_STATE_DIR: stateDir, ECOS_KAFKA_BROKERS: "", ECOS_REGISTRY_URL: "" },
      encoding: "utf8",
      timeout: 120_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

/** The lines of the summary that do not depend on the machine (elapsed time, folders). */
function decided(stdout: string): string[] {
  return stdout.split("\n").filter((l) => !/elapsed|chDB at /.test(l));
}

test("ecos run --requests 200 runs the pipeline, prints the summary, and repeats itself for a seed", () => {
  const a = ecos(["run", "--requests", "200", "--devices", "80", "--seed", "run-cli-test"]);
  expect(a.stderr).not.toMatch(/error/i);
  expect(a.code).toBe(0);
  // Progress on stderr, the summary on stdout.
  expect(a.stderr).toMatch(/t\+\s+[\d.]+ s simulated\s+submitted 200 \/ 200\s+final responses 200/);
  expect(a.stdout).not.toContain("simulated  submitted");
  for (const heading of [
    "ecos run — summary (embedded SRV 6.23 pipeline)",
    "final Service Responses by stage and response code:",
    "one final response   OK: every one of the 200 submissions has exactly one",
    "response time (receipt → final response",
    "rows per table (FINAL):",
    "SELECT … FROM service_response_times GROUP BY smets_generation:",
  ])
    expect(a.stdout).toContain(heading);
  expect(a.stdout).toMatch(/seed "run-cli-test"/);
  const b = ecos(["run", "--requests", "200", "--devices", "80", "--seed", "run-cli-test"]);
  expect(b.code).toBe(0);
  expect(decided(b.stdout)).toEqual(decided(a.stdout));
}, 120_000);

test("ecos run --help says what the embedded default and --kafka run", () => {
  const r = ecos(["run", "--help"]);
  expect(r.code).toBe(0);
  for (const flag of [
    "--requests",
    "--devices",
    "--seed",
    "--rate",
    "--partitions",
    "--kafka",
    "--stages",
    "--events",
  ])
    expect(r.stdout).toContain(flag);
  const text = r.stdout.replace(/\s+/g, " ");
  expect(text).toMatch(
    /With --kafka: the pipeline's stages \(dsp, ecos, tcos, dispatch, tracker, cos-alerts\)/,
  );
});

test("ecos run --kafka refuses an unknown stage and a missing registry before touching the cluster", () => {
  // Nothing listens on port 1: a configuration error must be reported before any connection attempt.
  const badStage = ecos([
    "run",
    "--kafka",
    "127.0.0.1:1",
    "--registry",
    "http://127.0.0.1:1",
    "--stages",
    "dsp,dspatch",
  ]);
  expect(badStage.code).toBe(1);
  expect(badStage.stderr).toContain("ECOS_CONFIG_INVALID");
  expect(badStage.stderr).toContain('unknown stage(s) "dspatch"');
  const noRegistry = ecos(["run", "--kafka", "127.0.0.1:1"]);
  expect(noRegistry.code).toBe(1);
  expect(noRegistry.stderr).toMatch(/ECOS_CONFIG_INVALID: ecos run --kafka needs the schema registry/);
  const badCrypto = ecos([
    "run",
    "--kafka",
    "127.0.0.1:1",
    "--registry",
    "http://127.0.0.1:1",
    "--crypto",
    "gpu",
  ]);
  expect(badCrypto.code).toBe(1);
  expect(badCrypto.stderr).toContain('--crypto "gpu": expected inline or pool');
});

test("ecos demo needs Kafka brokers and says so", () => {
  const r = ecos(["demo"]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("ECOS_CONFIG_INVALID: ecos demo needs Kafka brokers");
});
