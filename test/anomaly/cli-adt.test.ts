/**
 * `ecos adt submit` and `ecos adt status` in the embedded default: the submissions log under the
 * state folder is replayed through the DSP anomaly topology on every command.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { registerAdtCommands } from "../../deploy/cli/adt";
import { EcosError } from "../../processors/runtime/errors";
import { T0, USER_A, USER_B, adtCsv } from "./fixtures";

describe("ecos adt (embedded default)", () => {
  let dir: string;
  let out: string[];
  let clock: number;
  const program = (): Command => {
    const p = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerAdtCommands(p, { env: { ECOS_STATE_DIR: dir }, out: (t) => out.push(t), now: () => clock });
    return p;
  };
  const run = (...args: string[]): Promise<Command> => program().parseAsync(args, { from: "user" });
  const failure = async (...args: string[]): Promise<{ code: string; message: string }> => {
    const err = await run(...args).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof EcosError)) throw new Error(`expected an EcosError, got ${String(err)}`);
    return { code: err.code, message: err.message };
  };
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-adt-cli-"));
    out = [];
    clock = T0;
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("submit accepts a file and prints the table; status shows it; anti-replay holds across commands", async () => {
    await run(
      "adt",
      "submit",
      file("a.csv", adtCsv(3, ["6.23,1440,500,400", "7.1,60,20,15"])),
      "--user",
      USER_A,
    );
    expect(out[0]).toBe(
      `ADT file a.csv for User ID ${USER_A}: ACCEPTED, Sequence Number 3, in force from 2026-01-01T00:00:00.000Z`,
    );
    expect(out[1]).toMatch(/6\.23 +1440 +0 +400 +500 +FILE/);
    expect(out[1]).toMatch(/7\.1 +60 +0 +15 +20 +FILE/);
    expect(out[1]).toMatch(/7\.2 +1440 +0 +0 +0 +DEFAULT_CRITICAL/);

    out = [];
    clock = T0 + 1000;
    await expect(
      run("adt", "submit", file("b.csv", adtCsv(3, ["6.23,1440,9,9"])), "--user", USER_A),
    ).rejects.toThrow(
      new EcosError(
        "ECOS_ADT_FILE_REJECTED",
        `ADT file b.csv for User ID ${USER_A} rejected (SEQUENCE_NOT_GREATER): Sequence Number 3 is not greater than 3, the highest already processed for this User ID`,
      ),
    );

    await run("adt", "status", "--user", USER_A, "--json");
    const status = JSON.parse(out[out.length - 1] as string) as {
      sequenceNumber: number;
      entries: Array<{ srv: string; adt: number }>;
    };
    expect(status.sequenceNumber).toBe(3);
    expect(status.entries.find((e) => e.srv === "6.23")?.adt).toBe(500);
    expect(
      fs
        .readFileSync(path.join(dir, "adt", "submissions.jsonl"), "utf8")
        .trim()
        .split("\n"),
    ).toHaveLength(2);
  });

  test("a malformed file is rejected whole with its reason; a User without files shows the defaults", async () => {
    const bad = await failure(
      "adt",
      "submit",
      file("bad.csv", adtCsv(1, ["6.23,1440,10,5", '7.1,"60,1,1'])),
      "--user",
      USER_A,
    );
    expect(bad.code).toBe("ECOS_ADT_FILE_REJECTED");
    expect(bad.message).toMatch(/\(BAD_CSV\): line 4, field 2: line break inside a quoted field/);
    await run("adt", "status", "--user", USER_A);
    expect(out[0]).toMatch(/table in force +defaults \(no ADT file accepted\)/);
    expect(out[0]).toMatch(/6\.23 +1440 +0 +0 +0 +NEVER_SUBMITTED/);
    await run("adt", "status", "--user", USER_B, "--json");
    expect(JSON.parse(out[1] as string)).toMatchObject({
      userId: USER_B,
      sequenceNumber: null,
      lastSequenceNumber: null,
    });
  });

  test("refuses a huge file before reading it, a malformed User ID, and --kafka without a registry", async () => {
    const huge = file("huge.csv", "x".repeat(300 * 1024));
    const tooLarge = await failure("adt", "submit", huge, "--user", USER_A);
    expect(tooLarge.code).toBe("ECOS_ADT_FILE_REJECTED");
    expect(tooLarge.message).toMatch(/FILE_TOO_LARGE/);
    await expect(run("adt", "status", "--user", "not-a-user")).rejects.toThrow(/EUI-64/);
    const good = file("good.csv", adtCsv(1, []));
    expect((await failure("adt", "submit", good, "--user", USER_A, "--kafka", "127.0.0.1:1")).code).toBe(
      "ECOS_CONFIG_INVALID",
    );
  });
});
