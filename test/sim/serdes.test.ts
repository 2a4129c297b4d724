import type { DeviceResponse } from "../../processors/cos/records";
import { cosAvroSerdes } from "../../processors/cos/serdes";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import { jsonSimSerdes } from "../../deploy/sim/process";
import { deviceCommand, ESME, NOW, s1spRequest } from "./fixtures";

describe("the simulators' record serdes", () => {
  const command = deviceCommand(3n);
  const request = s1spRequest("00-DB-00-00-00-00-00-10", 4001);
  const responses: DeviceResponse[] = [
    {
      requestId: command.requestId,
      deviceId: ESME,
      source: "DEVICE",
      kind: "RESPONSE",
      status: "SUCCESS",
      detail: "",
      payload: Buffer.from("df0102", "hex"),
      answeredAt: NOW,
    },
    {
      ...{ requestId: request.requestId, deviceId: request.deviceId },
      source: "S1SP",
      kind: "ALERT",
      status: "FAILURE",
      detail: "S1SP: other",
      payload: null,
      answeredAt: NOW + 1,
    },
  ];

  test("JSON (--json-records) round-trips every field, bytes included", async () => {
    const s = jsonSimSerdes();
    expect(await s.deviceCommand.deserialize("t", s.deviceCommand.serialize("t", command))).toEqual(command);
    expect(await s.s1spRequest.deserialize("t", s.s1spRequest.serialize("t", request))).toEqual(request);
    for (const r of responses)
      expect(await s.deviceResponse.deserialize("t", s.deviceResponse.serialize("t", r))).toEqual(r);
  });

  test("the records the simulators write are valid Avro of the contract's schema", async () => {
    const s = cosAvroSerdes(new InMemorySchemaRegistry());
    await s.deviceResponse.prepare?.("device.responses");
    for (const r of responses) {
      const bytes = s.deviceResponse.serialize("device.responses", r);
      expect(bytes[0]).toBe(0); // Confluent framing
      expect(await s.deviceResponse.deserialize("device.responses", bytes)).toEqual(r);
    }
  });
});
