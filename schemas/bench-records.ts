/**
 * TypeScript shapes of the `ecos.bench` records (schemas/ecos.bench.*.avsc), for the benchmark and the
 * demo. A unit test checks each interface's keys against its schema's fields.
 */

/** Schema names, as passed to `loadSchema`. */
export const METER_READING_SCHEMA = "ecos.bench.MeterReading";
export const DEVICE_COUNT_SCHEMA = "ecos.bench.DeviceCount";

export type SmetsGeneration = "SMETS1" | "SMETS2";

export interface MeterReading {
  /** EUI-64 device id, e.g. "00-1A-2B-3C-4D-5E-6F-70". */
  deviceId: string;
  supplierMpid: string;
  readingWh: number;
  /** timestamp-millis: epoch milliseconds, UTC. */
  readAt: number;
  smetsGeneration: SmetsGeneration;
}

export interface DeviceCount {
  deviceId: string;
  count: number;
  /** timestamp-millis: epoch milliseconds, UTC. */
  lastReadAt: number;
}
