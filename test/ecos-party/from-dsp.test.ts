/**
 * The contract with the DSP: what dsp-validate writes to cos.requests.ecos (its envelope, its key,
 * its countersignature) is what the ECoS Party authorises, unchanged.
 */
import { dspRig } from "../dsp/fixtures";
import { signed623 } from "../workers/fixtures";
import { DEVICE_ID, SUPPLIER, partyRig } from "./fixtures";

test("a request accepted by dsp-validate is authorised by the ECoS Party", async () => {
  const dsp = await dspRig();
  await dsp.submit(signed623({}, 1006));
  const forwarded = await dsp.toCosParty("ecos");
  expect(forwarded.map((r) => r.key)).toEqual([DEVICE_ID]);
  const party = await partyRig();
  await party.send(...forwarded.map((r) => r.value));
  const auths = (await party.authorisations()).map((r) => r.value);
  expect(auths.map((a) => [a.requestId, a.userId, a.deviceId, a.counter])).toEqual([
    [`${SUPPLIER}:${DEVICE_ID}:1006`, SUPPLIER, DEVICE_ID, "1"],
  ]);
  // The party's countersignature is appended to exactly the bytes the DSP sent.
  const sent = forwarded[0]!.value.raw;
  expect(
    auths[0]!.countersigned
      .subarray(0, sent.lastIndexOf("</sr:Request>"))
      .equals(sent.subarray(0, sent.lastIndexOf("</sr:Request>"))),
  ).toBe(true);
  expect(await party.responses()).toEqual([]);
  await dsp.driver.close();
  await party.driver.close();
});
