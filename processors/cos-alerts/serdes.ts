/**
 * Avro serdes of the cos-cert-alerts topics over a schema registry (Confluent wire format), from the
 * `.avsc` files in schemas/.
 */
import { avroSerde, loadSchema } from "../../schemas/avro";
import { EVENT_SCHEMAS } from "../../schemas/event-records";
import type { SchemaRegistry } from "../../schemas/registry";
import type { CosAlertSerdes } from "./topology";

export function cosAlertAvroSerdes(registry: SchemaRegistry): CosAlertSerdes {
  return {
    inventory: avroSerde(registry, loadSchema(EVENT_SCHEMAS.deviceSnapshot)),
    registration: avroSerde(registry, loadSchema(EVENT_SCHEMAS.supplierRegistration)),
    alert: avroSerde(registry, loadSchema(EVENT_SCHEMAS.dccAlertEvent)),
  };
}
