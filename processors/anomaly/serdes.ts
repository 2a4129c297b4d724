/**
 * Avro serdes of the anomaly topics over a schema registry (Confluent wire format), built from the
 * `.avsc` files in schemas/. The request envelope's serde reads and passes on records written with its
 * own schema without re-encoding them (envelope-serde.ts).
 */
import { avroSerde, loadSchema } from "../../schemas/avro";
import type { SchemaRegistry } from "../../schemas/registry";
import { serviceRequestEnvelopeSerde } from "./envelope-serde";
import { ANOMALY_SCHEMAS } from "./records";
import type { AnomalySerdes } from "./topology";

export function anomalyAvroSerdes(registry: SchemaRegistry): AnomalySerdes {
  return {
    request: serviceRequestEnvelopeSerde(registry),
    adtFile: avroSerde(registry, loadSchema(ANOMALY_SCHEMAS.adtFileSubmission)),
    adtResult: avroSerde(registry, loadSchema(ANOMALY_SCHEMAS.adtFileResult)),
    event: avroSerde(registry, loadSchema(ANOMALY_SCHEMAS.anomalyEvent)),
    quarantined: avroSerde(registry, loadSchema(ANOMALY_SCHEMAS.quarantinedRequest)),
    exit: avroSerde(registry, loadSchema(ANOMALY_SCHEMAS.exitQuarantineInstruction)),
  };
}
