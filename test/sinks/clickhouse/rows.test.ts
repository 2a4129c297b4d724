/** Event records to rows: names, time conversion, and values no column can hold refused with the reason. */
import {
  day,
  migrationEventRow,
  seconds,
  serviceResponseRow,
  supplierRegistrationRow,
} from "../../../processors/sinks/clickhouse/rows";
import type { MigrationEvent, ServiceResponseEvent } from "../../../schemas/event-records";

const T = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

describe("rows", () => {
  test("times become whole UTC seconds; dates become YYYY-MM-DD", () => {
    expect(seconds("t", T)).toBe(Math.floor(T / 1000));
    expect(day("d", 19723)).toBe("2024-01-01");
    expect(() => seconds("t", -1000)).toThrow(/outside 1970..2105/);
    expect(() => day("d", 70000)).toThrow(/not a day/);
  });

  test("a service response keeps its response time in milliseconds", () => {
    const e: ServiceResponseEvent = {
      requestId: "r",
      userId: "u",
      supplierMpid: null,
      srv: "6.23",
      deviceId: "d",
      deviceType: null,
      smetsGeneration: "SMETS2",
      cosParty: "ECOS",
      responseCode: "I0",
      successful: true,
      receivedAt: T,
      respondedAt: T + 34_999,
    };
    expect(serviceResponseRow(e)).toMatchObject({
      response_time_ms: 34_999,
      successful: 1,
      cos_party: "ECOS",
    });
    expect(() => serviceResponseRow({ ...e, respondedAt: T - 1 })).toThrow(/before receivedAt/);
  });

  test("a migration event with an attempt number no column holds is refused with ECOS_SINK_ROW_REJECTED", () => {
    const e: MigrationEvent = {
      eventId: "m",
      deviceId: "d",
      deviceType: "ESME",
      deviceManufacturer: "M",
      deviceModel: "X",
      firmwareVersion: "1",
      chfDeviceId: null,
      responsibleSupplierMpid: null,
      batchId: "b",
      attemptNumber: 70_000,
      sessionRetry: 0,
      kind: "ATTEMPT_STARTED",
      step: null,
      errorCategory: null,
      errorCode: null,
      errorDetail: null,
      transient: false,
      attemptStartedAt: T,
      occurredAt: T,
      nextAttemptAfter: null,
    };
    expect(() => migrationEventRow(e)).toThrow(/attemptNumber: 70000 is not an integer in 0..65535/);
    let code: unknown;
    try {
      migrationEventRow(e);
    } catch (err) {
      code = (err as { code?: unknown }).code;
    }
    expect(code).toBe("ECOS_SINK_ROW_REJECTED");
    expect(migrationEventRow({ ...e, attemptNumber: 2 })).toMatchObject({ attempt_number: 2, transient: 0 });
  });

  test("a registration period must end after it starts", () => {
    const r = {
      mpxn: "1",
      fuel: "GAS" as const,
      supplierMpid: "ACG",
      effectiveFrom: 100,
      effectiveTo: 100,
      registrationVersion: 1,
      receivedAt: T,
    };
    expect(() => supplierRegistrationRow(r)).toThrow(/not after effectiveFrom/);
    expect(supplierRegistrationRow({ ...r, effectiveTo: null })).toMatchObject({ effective_to: null });
  });
});
