/**
 * `ecos check`: the pre-flight a supplier or operator runs on one request. It runs the very same
 * dsp-validate topology as production (in-process driver, crypto inline) over the reference data
 * given as files, and prints one JSON object as the last line of standard output:
 *
 *   {"requestId", "outcome": "accepted"|"rejected", "check", "responseCode", "reason"}
 *
 * Exit status: 0 accepted, 1 rejected, 2 a usage or input-file error.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import {
  parseInventoryCsv,
  parseRegistrationCsv,
  parseUsersCsv,
  type DccUser,
} from "../../processors/dsp/csv";
import {
  buildDspValidateTopology,
  dspTopics,
  jsonDspSerdes,
  sniffRequestId,
} from "../../processors/dsp/topology";
import { InlineDspVerifier } from "../../processors/dsp/verifier";
import { EcosError } from "../../processors/runtime/errors";
import { InProcessDriver } from "../../processors/runtime/in-process-driver";
import { DEFAULT_DEAD_LETTER_TOPIC } from "../../processors/runtime/topics";

export interface CheckInputs {
  readonly request: string;
  readonly trust: readonly string[];
  readonly certs: readonly string[];
  readonly registration: string;
  readonly inventory: string;
  readonly users?: string;
  /** Time of receipt, epoch ms. */
  readonly at: number;
}

export interface CheckVerdict {
  readonly requestId: string | null;
  readonly outcome: "accepted" | "rejected";
  readonly check: string | null;
  readonly responseCode: string | null;
  readonly reason: string | null;
}

function inputError(message: string): EcosError {
  return new EcosError("ECOS_CONFIG_INVALID", message);
}

function readFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw inputError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

const PEM = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;

/** Every certificate in a PEM file, or in the .pem/.crt/.cer files of a folder (DER files too). */
export function readCertificates(where: string): Uint8Array[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(where);
  } catch {
    throw inputError(`certificate path ${where} does not exist`);
  }
  const files = stat.isDirectory()
    ? fs
        .readdirSync(where)
        .filter((f) => /\.(pem|crt|cer|der)$/i.test(f))
        .sort()
        .map((f) => path.join(where, f))
    : [where];
  const out: Uint8Array[] = [];
  for (const file of files) {
    const bytes = readFile(file, "certificate file");
    const text = bytes.toString("latin1");
    if (text.includes("-----BEGIN")) {
      const found = [...text.matchAll(PEM)].map((m) =>
        Buffer.from((m[1] ?? "").replace(/\s+/g, ""), "base64"),
      );
      if (found.length === 0) throw inputError(`${file} holds no PEM CERTIFICATE block`);
      out.push(...found);
    } else if (bytes[0] === 0x30) {
      out.push(bytes);
    } else {
      throw inputError(`${file} is neither PEM nor DER`);
    }
  }
  if (out.length === 0) throw inputError(`no certificates found under ${where}`);
  return out;
}

/** Runs one request through the dsp-validate topology and returns its verdict. */
export async function checkRequest(inputs: CheckInputs): Promise<CheckVerdict> {
  const request = readFile(inputs.request, "request");
  const anchors = inputs.trust.flatMap(readCertificates);
  const certificates = inputs.certs.flatMap(readCertificates);
  const registrations = parseRegistrationCsv(
    readFile(inputs.registration, "registration CSV").toString("utf8"),
    inputs.registration,
    inputs.at,
  );
  const devices = parseInventoryCsv(
    readFile(inputs.inventory, "inventory CSV").toString("utf8"),
    inputs.inventory,
    inputs.at,
  );
  const users: DccUser[] | undefined =
    inputs.users === undefined
      ? undefined
      : parseUsersCsv(readFile(inputs.users, "users CSV").toString("utf8"), inputs.users);

  const serdes = jsonDspSerdes();
  const verifier = new InlineDspVerifier({ trust: { anchors, certificates } });
  const topology = buildDspValidateTopology({
    serdes,
    verifier,
    routeToCosParty: false,
    ...(users ? { users: new Map(users.map((u) => [u.userId, u])) } : {}),
  });
  const driver = await InProcessDriver.create(topology, {
    applicationId: "ecos-check",
    startTimeMs: inputs.at,
  });
  try {
    const t = dspTopics();
    await driver.pipeInput(
      t.inventory,
      devices.map((d) => ({ key: d.deviceId, value: d, timestamp: inputs.at })),
      serdes.inventory,
    );
    await driver.pipeInput(
      t.registration,
      registrations.map((r) => ({ key: r.mpxn, value: r, timestamp: inputs.at })),
      serdes.registration,
    );
    const sniffed = sniffRequestId(request);
    await driver.pipeRaw(t.requests, [
      { key: sniffed?.deviceId ? Buffer.from(sniffed.deviceId) : null, value: request, timestamp: inputs.at },
    ]);
    const responses = await driver.readOutput(t.responses, serdes.response);
    const r = responses[responses.length - 1];
    if (!r) {
      const dead = driver.rawRecords(DEFAULT_DEAD_LETTER_TOPIC);
      const reason = dead[0]?.headers?.["ecos.error.message"] ?? "no response was produced";
      return {
        requestId: sniffed?.requestId ?? null,
        outcome: "rejected",
        check: "xml",
        responseCode: null,
        reason,
      };
    }
    const check = r.headers["ecos.dsp.check"] ?? null;
    const accepted = r.value.successful;
    return {
      requestId: r.value.requestId || (sniffed?.requestId ?? null),
      outcome: accepted ? "accepted" : "rejected",
      check: accepted ? null : check,
      responseCode: accepted ? null : r.value.responseCode,
      reason: accepted ? null : (r.headers["ecos.dsp.reason"] ?? null),
    };
  } finally {
    await driver.close();
    await verifier.close();
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerCheckCommand(program: Command): Command {
  program
    .command("check")
    .description(
      "Pre-flight one DUIS request through the DSP checks; prints a JSON verdict as the last line " +
        "(exit 0 accepted, 1 rejected, 2 usage or input-file error). CSV columns: docs/dsp-validation.md",
    )
    .argument("<request.xml>", "the signed DUIS request, as a supplier would send it")
    .requiredOption(
      "--trust <pem-or-dir>",
      "trusted anchors (root or OCA certificates); repeatable",
      collect,
      [],
    )
    .option(
      "--certs <pem-or-dir>",
      "other known certificates (signers, intermediates); repeatable",
      collect,
      [],
    )
    .requiredOption("--registration <csv>", "Registration Data CSV")
    .requiredOption("--inventory <csv>", "Smart Metering Inventory CSV")
    .option("--users <csv>", "DCC Users directory CSV")
    .option("--at <iso-8601>", "time of receipt to assume (default: now)")
    .action(
      async (
        request: string,
        o: {
          trust: string[];
          certs: string[];
          registration: string;
          inventory: string;
          users?: string;
          at?: string;
        },
      ) => {
        let at = Date.now();
        if (o.at !== undefined) {
          at = Date.parse(o.at);
          if (!/^\d{4}-\d{2}-\d{2}T/.test(o.at) || Number.isNaN(at)) {
            process.stderr.write(`error: --at ${JSON.stringify(o.at)} is not an ISO-8601 time\n`);
            process.exit(2);
          }
        }
        try {
          const verdict = await checkRequest({
            request,
            trust: o.trust,
            certs: o.certs,
            registration: o.registration,
            inventory: o.inventory,
            ...(o.users !== undefined ? { users: o.users } : {}),
            at,
          });
          process.stdout.write(`${JSON.stringify(verdict)}\n`);
          process.exit(verdict.outcome === "accepted" ? 0 : 1);
        } catch (err) {
          const e = err instanceof EcosError ? err : new EcosError("ECOS_CONFIG_INVALID", String(err));
          process.stderr.write(`error ${e.code}: ${e.message}\n`);
          process.exit(2);
        }
      },
    );
  return program;
}
