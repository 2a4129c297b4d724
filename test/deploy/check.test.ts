/**
 * `ecos check` as a supplier runs it: real files (PEM certificates from the test PKI, CSV reference
 * data, a signed request), a real process, the JSON verdict on the last line and the exit status.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DEVICE_ID, RECEIVED_AT, cast, signed623 } from "../workers/fixtures";

const BIN = path.join(__dirname, "..", "..", "deploy", "cli", "bin.cjs");
const MPAN = "1312345678333";

function pem(ders: readonly Uint8Array[]): string {
  return ders
    .map((d) => {
      const b64 = Buffer.from(d)
        .toString("base64")
        .replace(/(.{64})/g, "$1\n");
      return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
    })
    .join("");
}

describe("ecos check", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-check-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string | Buffer): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content);
    return p;
  };
  const c = cast();
  const trust = file("anchors.pem", pem(c.trust.anchors));
  const certs = file("certs.pem", pem(c.trust.certificates ?? []));
  const inventory = file(
    "inventory.csv",
    "device_id,device_type,smets_generation,device_status,import_mpxn,cos_credential,manufacturer,model,firmware_version,chf_device_id,commissioned_at\n" +
      `${DEVICE_ID},ESME,SMETS2,COMMISSIONED,${MPAN},ECOS,ACME,M1,1.0,,\n`,
  );
  const registration = (mpid: string): string =>
    file(
      `registration-${mpid}.csv`,
      "mpxn,fuel,supplier_mpid,effective_from,effective_to,registration_version\n" +
        `${MPAN},ELECTRICITY,${mpid},2026-01-01,,1\n`,
    );
  const request = file("request.xml", signed623());
  const at = new Date(RECEIVED_AT).toISOString();

  function run(args: string[]) {
    const r = spawnSync(process.execPath, [BIN, "check", ...args], { encoding: "utf8", timeout: 120000 });
    const lines = r.stdout.trim().split("\n");
    return {
      code: r.status,
      stderr: r.stderr,
      verdict: JSON.parse(lines[lines.length - 1] || "null") as unknown,
    };
  }

  test("a valid request is accepted: exit 0, JSON verdict with nulls", () => {
    const r = run([
      request,
      "--trust",
      trust,
      "--certs",
      certs,
      "--registration",
      registration("ACEE"),
      "--inventory",
      inventory,
      "--at",
      at,
    ]);
    expect(r.stderr).toBe("");
    expect(r.verdict).toEqual({
      requestId: expect.stringContaining(":") as unknown,
      outcome: "accepted",
      check: null,
      responseCode: null,
      reason: null,
    });
    expect(r.code).toBe(0);
  });

  test("another registered supplier on the switch date: rejected by registration-supplier, exit 1", () => {
    const r = run([
      request,
      "--trust",
      trust,
      "--certs",
      certs,
      "--registration",
      registration("ZZZZ"),
      "--inventory",
      inventory,
      "--at",
      at,
    ]);
    expect(r.code).toBe(1);
    expect(r.verdict).toMatchObject({
      outcome: "rejected",
      check: "registration-supplier",
      responseCode: "E4",
    });
    expect((r.verdict as { reason: string }).reason).toMatch(/ZZZZ|registered/);
  });

  test("a tampered body fails the signature check", () => {
    const tampered = file(
      "tampered.xml",
      Buffer.from(signed623().toString("utf8").replace(MPAN, "1312345678334")),
    );
    const r = run([
      tampered,
      "--trust",
      trust,
      "--certs",
      certs,
      "--registration",
      registration("ACEE"),
      "--inventory",
      inventory,
      "--at",
      at,
    ]);
    expect(r.code).toBe(1);
    expect(r.verdict).toMatchObject({ outcome: "rejected", check: "signature" });
  });

  test("usage and input-file errors exit 2 with a clear message", () => {
    const missing = spawnSync(
      process.execPath,
      [
        BIN,
        "check",
        request,
        "--trust",
        path.join(dir, "nope.pem"),
        "--registration",
        registration("ACEE"),
        "--inventory",
        inventory,
      ],
      { encoding: "utf8" },
    );
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/nope\.pem does not exist/);
    const badAt = spawnSync(
      process.execPath,
      [
        BIN,
        "check",
        request,
        "--trust",
        trust,
        "--registration",
        registration("ACEE"),
        "--inventory",
        inventory,
        "--at",
        "yesterday",
      ],
      { encoding: "utf8" },
    );
    expect(badAt.status).toBe(2);
    const badCsv = file("bad.csv", "mpxn,fuel\n1,ELECTRICITY\n");
    const csv = spawnSync(
      process.execPath,
      [BIN, "check", request, "--trust", trust, "--registration", badCsv, "--inventory", inventory],
      { encoding: "utf8" },
    );
    expect(csv.status).toBe(2);
    expect(csv.stderr).toMatch(/ECOS_REFERENCE_DATA_INVALID/);
  });
});
