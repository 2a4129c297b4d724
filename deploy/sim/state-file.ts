/**
 * The simulators' durable state: every device's trust anchor cells, anti-replay floors, held
 * future-dated command and alert counter, and the S1SP's devices, in one JSON file written atomically
 * (temporary file, fsync, rename). Certificates repeat across the fleet, so the file keeps each
 * distinct DER once and devices refer to it by its SHA-256.
 *
 * The Kafka process saves the file before it commits its consumer offsets, so after a crash or a
 * restart every command is either in the saved state (and a redelivered copy is refused as a replay,
 * as a real device would) or is delivered again and acted on then. Answers scheduled but not yet sent
 * when the process stops are lost, as a WAN would lose them (the tracker times them out).
 * No private key is in the file: device keys are derived from the seed when needed.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { EcosError } from "../../processors/runtime/errors";
import type { SupplierCell } from "../../workers/gbcs/device";
import { parsePreCommand } from "../../workers/gbcs/pre-command";
import type { FleetDevice } from "./fleet";
import type { S1spDevice } from "./s1sp";

const FORMAT = "ecos-sim-state/1";

interface DeviceJson {
  m: string;
  root: string;
  cos: string;
  cells: Partial<Record<SupplierCell, string>>;
  /** transitionalCoS, supplier, supplierPrepaymentTopUp floors (decimal). */
  floors: [string, string, string];
  alerts: string;
  pending: { requestId: string; command: string } | null;
}

interface StateJson {
  format: string;
  seed: string;
  savedAt: number;
  certificates: Record<string, string>;
  devices: Record<string, DeviceJson>;
  s1sp: Record<string, S1spDevice>;
}

export interface SimState {
  readonly seed: string;
  readonly fleet: Array<[string, FleetDevice]>;
  readonly s1sp: Array<[string, S1spDevice]>;
}

export function encodeState(
  seed: string,
  fleet: Iterable<[string, FleetDevice]>,
  s1sp: Iterable<[string, S1spDevice]>,
  savedAt: number,
): string {
  const certificates: Record<string, string> = {};
  const ref = (der: Uint8Array): string => {
    const h = createHash("sha256").update(der).digest("hex");
    certificates[h] ??= Buffer.from(der).toString("base64");
    return h;
  };
  const devices: Record<string, DeviceJson> = {};
  for (const [id, d] of fleet) {
    const cells: Partial<Record<SupplierCell, string>> = {};
    for (const [k, v] of Object.entries(d.state.supplierCells) as Array<[SupplierCell, Uint8Array]>)
      cells[k] = ref(v);
    const f = d.state.floors;
    devices[id] = {
      m: d.model,
      root: ref(d.state.root),
      cos: ref(d.state.transitionalCoS),
      cells,
      floors: [f.transitionalCoS.toString(), f.supplier.toString(), f.supplierPrepaymentTopUp.toString()],
      alerts: d.alertCounter.toString(),
      pending:
        d.state.pending && d.pendingCommand
          ? { requestId: d.pendingRequestId ?? "", command: d.pendingCommand.toString("base64") }
          : null,
    };
  }
  const out: StateJson = {
    format: FORMAT,
    seed,
    savedAt,
    certificates,
    devices,
    s1sp: Object.fromEntries(s1sp),
  };
  return JSON.stringify(out);
}

export function decodeState(text: string): SimState {
  const j = JSON.parse(text) as StateJson;
  if (j.format !== FORMAT)
    throw new EcosError("ECOS_CONFIG_INVALID", `simulator state file format ${j.format}`);
  const der = (h: string): Buffer => {
    const b64 = j.certificates[h];
    if (b64 === undefined)
      throw new EcosError("ECOS_CONFIG_INVALID", `simulator state: certificate ${h} missing`);
    return Buffer.from(b64, "base64");
  };
  const fleet: Array<[string, FleetDevice]> = Object.entries(j.devices).map(([id, d]) => {
    const cells: Partial<Record<SupplierCell, Uint8Array>> = {};
    for (const [k, h] of Object.entries(d.cells) as Array<[SupplierCell, string]>) cells[k] = der(h);
    const command = d.pending ? Buffer.from(d.pending.command, "base64") : null;
    let pending = null;
    if (command) {
      const payload = parsePreCommand(command).payload;
      if (payload.execution.kind === "futureDated") pending = { at: payload.execution.at, payload };
    }
    return [
      id,
      {
        model: d.m,
        state: {
          deviceId: id,
          root: der(d.root),
          transitionalCoS: der(d.cos),
          supplierCells: cells,
          floors: {
            transitionalCoS: BigInt(d.floors[0]),
            supplier: BigInt(d.floors[1]),
            supplierPrepaymentTopUp: BigInt(d.floors[2]),
          },
          pending,
        },
        pendingRequestId: pending ? (d.pending?.requestId ?? null) : null,
        pendingCommand: pending ? command : null,
        alertCounter: BigInt(d.alerts),
      },
    ];
  });
  return { seed: j.seed, fleet, s1sp: Object.entries(j.s1sp) };
}

/** Writes the state atomically: a reader (or a restart) sees the old file or the new one, never half. */
export function saveStateFile(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, "w");
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** The saved state, or null when there is no file yet. A file for another seed is refused. */
export function loadStateFile(file: string, seed: string): SimState | null {
  if (!fs.existsSync(file)) return null;
  const state = decodeState(fs.readFileSync(file, "utf8"));
  if (state.seed !== seed)
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `simulator state ${file} was made with seed ${JSON.stringify(state.seed)}, not ${JSON.stringify(seed)}: use another --state file or the same seed`,
    );
  return state;
}
