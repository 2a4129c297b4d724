/**
 * The CoS Party on real piscina threads (worker-pool.ts): several partitions, several Users and
 * devices, so requests cross both repartitions (by User for anomaly detection, back by device for
 * the counter); the results equal the inline port's, record for record.
 */
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import { isSrv623, readDuisRequest } from "../../workers/duis/request";
import { checkPreCommand } from "../../workers/gbcs/dispatch-check";
import { preCommandInputFor623 } from "../../workers/gbcs/from-duis";
import { parseXml } from "../../workers/xml/parser";
import { CosPartyWorkerPool } from "../../processors/ecos-party/worker-pool";
import type { CosAuthorisation } from "../../processors/cos/records";
import {
  DEVICE_2,
  DEVICE_ID,
  countersigned623,
  cryptoOptions,
  device,
  envelope,
  party,
  partyRig,
  sign,
  unsigned623,
} from "./fixtures";

const DEVICES = [DEVICE_ID, DEVICE_2, "00-DB-12-34-56-78-90-A2", "00-DB-12-34-56-78-90-A3"];

function verifies(a: CosAuthorisation): boolean {
  const r = readDuisRequest(parseXml(a.countersigned));
  if (!isSrv623(r)) return false;
  const { counter: _c, ...expected } = preCommandInputFor623(r, party("ECOS").entityId, 0n);
  return checkPreCommand(a.preCommand!, expected, party("ECOS").cos.cert, opensslEcdsa).ok;
}

async function run(pool: CosPartyWorkerPool | null) {
  const rig = await partyRig({
    partitions: 3,
    devices: DEVICES.map((d) => device({ deviceId: d, cosCredential: "ECOS" })),
    ...(pool ? { crypto: pool } : {}),
  });
  const envs = DEVICES.flatMap((d, i) => [
    envelope(countersigned623({}, 2000 + i, d), 2000 + i, d),
    envelope(countersigned623({}, 3000 + i, d), 3000 + i, d),
  ]);
  // One request whose User signature is broken: refused on the pool like inline.
  const broken = sign(unsigned623({ requestId: `90-B3-D5-1F-30-01-00-00:${DEVICE_ID}:4000` }, 4000))
    .toString()
    .replace("<sr:SupplierFloorSeqNumber>0<", "<sr:SupplierFloorSeqNumber>9<");
  await rig.send(...envs, envelope(Buffer.from(broken), 4000));
  const auths = (await rig.authorisations()).map((r) => r.value);
  const responses = (await rig.responses()).map((r) => r.headers["ecos.cos-party.check"]);
  await rig.driver.close();
  return { auths, responses };
}

test("authorisations through the worker pool on 3 partitions: one per request, counters 1 and 2 per device, pre-commands verify", async () => {
  const pool = new CosPartyWorkerPool({ ...cryptoOptions("ECOS"), threads: 1, batchSize: 3 });
  try {
    const pooled = await run(pool);
    expect(pool.stats.tasks).toBeGreaterThanOrEqual(2);
    const inline = await run(null);
    const byDevice = (auths: CosAuthorisation[]) =>
      DEVICES.map((d) => auths.filter((a) => a.deviceId === d).map((a) => [a.requestId, a.counter]));
    expect(byDevice(pooled.auths)).toEqual(
      DEVICES.map((d, i) => [
        [`90-B3-D5-1F-30-01-00-00:${d}:${2000 + i}`, "1"],
        [`90-B3-D5-1F-30-01-00-00:${d}:${3000 + i}`, "2"],
      ]),
    );
    expect(byDevice(pooled.auths)).toEqual(byDevice(inline.auths));
    expect(pooled.auths.every(verifies)).toBe(true);
    expect(pooled.responses).toEqual(["signature"]);
    expect(inline.responses).toEqual(["signature"]);
  } finally {
    await pool.close();
  }
});
