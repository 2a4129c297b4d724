import { simulatorConfig } from "../../deploy/sim/config";
import { S1spSimulator, type S1spDevice } from "../../deploy/sim/s1sp";
import { cast, creds, ecdsa, fixedProfile, NOW, s1spRequest } from "./fixtures";

const S1 = "00-DB-00-00-00-00-00-10";
const LATENCY = 2_000;

function s1sp(profile = fixedProfile(LATENCY), devices: string[] = [S1]): S1spSimulator {
  return new S1spSimulator({
    config: simulatorConfig({ seed: "sim-test", s1sp: profile }),
    devices: devices.map((d): [string, S1spDevice] => [
      d,
      { model: "S1", supplierId: null, seen: [], pending: null },
    ]),
    trust: { anchors: [creds.root], certificates: [creds.oca, ...creds.xmlSigners] },
    ecdsa,
  });
}

describe("S1SP simulator", () => {
  test("a request signed by the User and countersigned by the DSP and the CoS Party succeeds after the latency", () => {
    const sim = s1sp();
    const r = s1spRequest(S1, 2001);
    expect(sim.receive(r, NOW)).toEqual({
      kind: "answered",
      status: "SUCCESS",
      at: NOW + LATENCY,
      late: false,
    });
    expect(sim.advance(NOW + LATENCY - 1)).toEqual([]);
    expect(sim.advance(NOW + LATENCY)).toEqual([
      {
        requestId: r.requestId,
        deviceId: S1,
        source: "S1SP",
        kind: "RESPONSE",
        status: "SUCCESS",
        detail: "",
        payload: null,
        answeredAt: NOW + LATENCY,
      },
    ]);
    expect(sim.device(S1)!.supplierId).toBe(cast.supplierId);
  });

  test("a request changed after the CoS Party countersigned it is refused", () => {
    const sim = s1sp();
    const r = s1spRequest(S1, 2002);
    const text = r.countersigned
      .toString("utf8")
      .replace("<sr:SupplierFloorSeqNumber>0<", "<sr:SupplierFloorSeqNumber>9<");
    expect(text).not.toBe(r.countersigned.toString("utf8"));
    expect(sim.receive({ ...r, countersigned: Buffer.from(text) }, NOW)).toMatchObject({
      status: "SIGNATURE_INVALID",
    });
    expect(sim.advance(NOW + LATENCY)[0]!.detail).toMatch(/the User's signature: DigestValue/);
    expect(sim.device(S1)!.supplierId).toBeNull();
  });

  test("without the CoS Party's countersignature the request is refused", () => {
    const sim = s1sp();
    expect(sim.receive(s1spRequest(S1, 2003, { signatures: 2 }), NOW)).toMatchObject({
      status: "COUNTERSIGNATURE_MISSING",
    });
  });

  test("a countersignature by an unknown certificate is refused", () => {
    const sim = new S1spSimulator({
      config: simulatorConfig({ seed: "sim-test", s1sp: fixedProfile(LATENCY) }),
      devices: [[S1, { model: "S1", supplierId: null, seen: [], pending: null }]],
      // The CoS Parties' certificates are not known to this S1SP.
      trust: {
        anchors: [creds.root],
        certificates: [creds.oca, cast.supplierXmlSign.der, cast.dspXmlSign.der],
      },
      ecdsa,
    });
    sim.receive(s1spRequest(S1, 2004), NOW);
    const [answer] = sim.advance(NOW + LATENCY);
    expect(answer).toMatchObject({ status: "SIGNATURE_INVALID" });
    expect(answer!.detail).toMatch(/^the CoS Party's countersignature: signer certificate .* is not known/);
  });

  test("a record that names another request than the signed XML is refused; a replay is refused", () => {
    const sim = s1sp();
    const r = s1spRequest(S1, 2005);
    expect(sim.receive({ ...r, requestId: `${cast.supplierId}:${S1}:9999` }, NOW)).toMatchObject({
      status: "REQUEST_MISMATCH",
    });
    expect(sim.receive(r, NOW)).toMatchObject({ status: "SUCCESS" });
    expect(sim.receive(r, NOW + 1)).toMatchObject({ status: "REQUEST_REPLAYED" });
    expect(sim.receive(s1spRequest("00-DB-00-00-00-00-77-77", 2006), NOW)).toMatchObject({
      status: "DEVICE_UNKNOWN",
    });
  });

  test("future-dated: accepted, then an alert at the execution time; a cancellation drops it", () => {
    const EXEC = Date.UTC(2027, 0, 1, 13, 0, 0);
    const at = "2027-01-01T13:00:00Z";
    const sim = s1sp(fixedProfile(LATENCY), [S1, "00-DB-00-00-00-00-00-11"]);
    const fd = s1spRequest(S1, 2007, { xml: { executionDateTime: at }, executionAt: EXEC });
    expect(sim.receive(fd, NOW)).toMatchObject({ status: "ACCEPTED" });
    const other = "00-DB-00-00-00-00-00-11";
    sim.receive(s1spRequest(other, 2008, { xml: { executionDateTime: at }, executionAt: EXEC }), NOW);
    sim.receive(
      s1spRequest(other, 2009, { xml: { executionDateTime: "3000-12-31T00:00:00Z" }, cancellation: true }),
      NOW + 10,
    );
    expect(sim.advance(EXEC - 1).map((a) => a.status)).toEqual(["ACCEPTED", "ACCEPTED", "ACCEPTED"]);
    expect(sim.device(S1)!.supplierId).toBeNull();
    expect(sim.advance(EXEC)).toEqual([
      expect.objectContaining({
        requestId: fd.requestId,
        kind: "ALERT",
        status: "SUCCESS",
        answeredAt: EXEC,
      }),
    ]);
    expect(sim.device(S1)!.supplierId).toBe(cast.supplierId);
    expect(sim.device(other)!.supplierId).toBeNull();
  });

  test("loss and failure rates roughly as configured", () => {
    const N = 300;
    const hex = (n: number): string => n.toString(16).padStart(2, "0").toUpperCase();
    const devices = Array.from({ length: N }, (_, i) => `00-DB-00-00-00-00-${hex(i >> 8)}-${hex(i & 255)}`);
    const sim = s1sp(fixedProfile(LATENCY, { lossRate: 0.2, failureRates: { other: 0.25 } }), devices);
    const fates = devices.map((d, i) => sim.receive(s1spRequest(d, 3000 + i), NOW));
    const lost = fates.filter((f) => f.kind === "lost").length / N;
    const failed =
      fates.filter((f) => f.kind === "answered" && f.status === "FAILURE").length / (N - lost * N);
    expect(lost).toBeGreaterThan(0.13);
    expect(lost).toBeLessThan(0.27);
    expect(failed).toBeGreaterThan(0.17);
    expect(failed).toBeLessThan(0.33);
    expect(sim.advance(NOW + LATENCY).length).toBe(N - lost * N);
  });
});
