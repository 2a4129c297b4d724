/**
 * Avro serdes of the dsp-validate topics over a schema registry (Confluent wire format), from the
 * `.avsc` files in schemas/: the event records of the ClickHouse sink and issue 4's request envelope.
 */
import { avroSerde, loadSchema } from "../../schemas/avro";
import { EVENT_SCHEMAS } from "../../schemas/event-records";
import type { SchemaRegistry } from "../../schemas/registry";
import type { DspSerdes } from "./topology";

export function dspAvroSerdes(registry: SchemaRegistry): DspSerdes {
  return {
    registration: avroSerde(registry, loadSchema(EVENT_SCHEMAS.supplierRegistration)),
    inventory: avroSerde(registry, loadSchema(EVENT_SCHEMAS.deviceSnapshot)),
    response: avroSerde(registry, loadSchema(EVENT_SCHEMAS.serviceResponseEvent)),
    stage: avroSerde(registry, loadSchema(EVENT_SCHEMAS.requestStageEvent)),
    envelope: avroSerde(registry, loadSchema("ecos.duis.ServiceRequestEnvelope")),
  };
}
