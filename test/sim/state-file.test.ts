import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { simulatorConfig } from "../../deploy/sim/config";
import { deviceKeyring } from "../../deploy/sim/credentials";
import { DeviceFleet } from "../../deploy/sim/fleet";
import { decodeState, encodeState, loadStateFile, saveStateFile } from "../../deploy/sim/state-file";
import type { S1spDevice } from "../../deploy/sim/s1sp";
import {
  cast,
  deviceCommand,
  ecdsa,
  ESME,
  fixedProfile,
  fleetOf,
  NOW,
  snapshot,
  thrownCode,
} from "./fixtures";

const OTHER = "00-DB-00-00-00-00-00-02";
const EXEC = NOW + 3_600_000;

describe("simulator state file", () => {
  test("a restored fleet keeps cells, floors and the held future-dated command: replays refused, the alert still comes", () => {
    const fleet = fleetOf({ defaultModel: fixedProfile(1000) }, [snapshot(ESME), snapshot(OTHER)]);
    fleet.receive(deviceCommand(5n), NOW);
    fleet.receive(deviceCommand(6n, { deviceId: OTHER, request: { executionDateTime: EXEC } }), NOW);
    fleet.advance(NOW + 1000);
    const s1sp: Array<[string, S1spDevice]> = [
      ["00-DB-00-00-00-00-00-10", { model: "S1", supplierId: "X", seen: ["a:b:1"], pending: null }],
    ];
    const text = encodeState("sim-test", fleet.entries(), s1sp, NOW);
    // Each distinct certificate once: root, ECoS cert, 3 losing + 3 gaining supplier certificates.
    expect(Object.keys((JSON.parse(text) as { certificates: object }).certificates)).toHaveLength(8);
    expect(text).not.toMatch(/scalar|private/i);
    const state = decodeState(text);
    expect(state.s1sp).toEqual(s1sp);
    const restored = new DeviceFleet({
      config: simulatorConfig({ seed: "sim-test", defaultModel: fixedProfile(1000) }),
      devices: state.fleet,
      ecdsa,
      deviceKey: deviceKeyring("sim-test", ecdsa),
    });
    expect(restored.device(ESME)!.state).toEqual(fleet.device(ESME)!.state);
    expect(restored.device(OTHER)!.state.floors).toEqual(fleet.device(OTHER)!.state.floors);
    expect(restored.device(OTHER)!.pendingRequestId).toBe(fleet.device(OTHER)!.pendingRequestId);
    restored.receive(deviceCommand(5n), NOW + 5000);
    expect(restored.advance(NOW + 6000).map((r) => r.status)).toEqual(["COUNTER_REPLAYED"]);
    expect(restored.nextDueAt()).toBe(EXEC);
    const [alert] = restored.advance(EXEC);
    expect(alert).toMatchObject({ kind: "ALERT", status: "SUCCESS", deviceId: OTHER });
    expect(
      Buffer.from(restored.device(OTHER)!.state.supplierCells.digitalSignature!).equals(
        cast.replacementDs.der,
      ),
    ).toBe(true);
  });

  test("saved atomically, loaded back; a file of another seed is refused; no file is null", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-sim-state-"));
    try {
      const file = path.join(dir, "nested", "sim.json");
      expect(loadStateFile(file, "sim-test")).toBeNull();
      const fleet = fleetOf({});
      saveStateFile(file, encodeState("sim-test", fleet.entries(), [], NOW));
      expect(fs.readdirSync(path.dirname(file))).toEqual(["sim.json"]);
      expect(loadStateFile(file, "sim-test")!.fleet.map(([id]) => id)).toEqual([ESME]);
      expect(thrownCode(() => loadStateFile(file, "other-seed"))).toBe("ECOS_CONFIG_INVALID");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
