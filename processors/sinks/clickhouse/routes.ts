/**
 * Which topic goes to which table: the sink's routes. Each route decodes a record's value (Avro in the
 * Confluent wire format, through the schema registry) and maps it to one row of one table.
 *
 * Topic names follow docs/ARCHITECTURE where it names them and are overridable per route; every topic
 * carries one record type, keyed as its schema says.
 */
import type { AnomalyEvent } from "../../anomaly/records";
import type { Serde } from "../../runtime/serde";
import { avroSerde, loadSchema } from "../../../schemas/avro";
import {
  EVENT_SCHEMAS,
  type DccAlertEvent,
  type DeviceSnapshot,
  type MigrationEvent,
  type NonMigratableDeviceModel,
  type RequestStageEvent,
  type ServiceResponseEvent,
  type SupplierRegistration,
} from "../../../schemas/event-records";
import type { SchemaRegistry } from "../../../schemas/registry";
import {
  anomalyEventRow,
  dccAlertRow,
  deviceSnapshotRow,
  migrationEventRow,
  nonMigratableModelRow,
  requestStageRow,
  serviceResponseRow,
  supplierRegistrationRow,
  type Row,
} from "./rows";
import { TABLES, type SinkTable } from "./tables";

/** Default topic of each route. */
export const SINK_TOPICS = {
  requestStages: "duis.request-stages",
  serviceResponses: "duis.responses",
  dccAlerts: "duis.alerts",
  anomalyEvents: "anomaly.events",
  migrationEvents: "migration.events",
  nonMigratableModels: "migration.non-migratable-models",
  deviceSnapshots: "inventory.devices",
  supplierRegistrations: "registration.changes",
} as const;

export type RouteName = keyof typeof SINK_TOPICS;

/** A topic stored in a table. */
export interface SinkRoute {
  readonly name: string;
  readonly topic: string;
  readonly table: SinkTable;
  /** Decodes a value; a promise only while a new writer schema is fetched. */
  decode(value: Buffer): unknown;
  /** The row for a decoded value; throws ECOS_SINK_ROW_REJECTED for a value no column can hold. */
  toRow(value: unknown): Row;
}

/** A route from a serde and a mapper. */
export function route<T>(
  name: string,
  topic: string,
  table: SinkTable,
  serde: Serde<T>,
  toRow: (value: T) => Row,
): SinkRoute {
  return {
    name,
    topic,
    table,
    decode: (value) => serde.deserialize(topic, value),
    toRow: (value) => toRow(value as T),
  };
}

/** The product's routes over `registry`; `topics` renames any of them (tests use unique names). */
export function defaultRoutes(
  registry: SchemaRegistry,
  topics: Partial<Record<RouteName, string>> = {},
): SinkRoute[] {
  const t = { ...SINK_TOPICS, ...topics };
  const serde = <T>(schema: string): Serde<T> => avroSerde<T>(registry, loadSchema(schema));
  return [
    route(
      "requestStages",
      t.requestStages,
      TABLES.requestStageEvents,
      serde<RequestStageEvent>(EVENT_SCHEMAS.requestStageEvent),
      requestStageRow,
    ),
    route(
      "serviceResponses",
      t.serviceResponses,
      TABLES.serviceResponses,
      serde<ServiceResponseEvent>(EVENT_SCHEMAS.serviceResponseEvent),
      serviceResponseRow,
    ),
    route(
      "dccAlerts",
      t.dccAlerts,
      TABLES.dccAlerts,
      serde<DccAlertEvent>(EVENT_SCHEMAS.dccAlertEvent),
      dccAlertRow,
    ),
    route(
      "anomalyEvents",
      t.anomalyEvents,
      TABLES.anomalyEvents,
      serde<AnomalyEvent>("ecos.anomaly.AnomalyEvent"),
      anomalyEventRow,
    ),
    route(
      "migrationEvents",
      t.migrationEvents,
      TABLES.migrationEvents,
      serde<MigrationEvent>(EVENT_SCHEMAS.migrationEvent),
      migrationEventRow,
    ),
    route(
      "nonMigratableModels",
      t.nonMigratableModels,
      TABLES.nonMigratableDeviceModels,
      serde<NonMigratableDeviceModel>(EVENT_SCHEMAS.nonMigratableDeviceModel),
      nonMigratableModelRow,
    ),
    route(
      "deviceSnapshots",
      t.deviceSnapshots,
      TABLES.deviceSnapshots,
      serde<DeviceSnapshot>(EVENT_SCHEMAS.deviceSnapshot),
      deviceSnapshotRow,
    ),
    route(
      "supplierRegistrations",
      t.supplierRegistrations,
      TABLES.registrationHistory,
      serde<SupplierRegistration>(EVENT_SCHEMAS.supplierRegistration),
      supplierRegistrationRow,
    ),
  ];
}
