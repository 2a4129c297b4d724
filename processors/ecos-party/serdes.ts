/**
 * Avro serdes of a CoS Party topology's topics over a schema registry (Confluent wire format), from
 * the `.avsc` files in schemas/: the DSP's envelope and inventory, the anomaly records, the CoS
 * contract (ecos.cos.CosAuthorisation) and the DUIS event records.
 */
import { avroSerde, loadSchema } from "../../schemas/avro";
import { EVENT_SCHEMAS } from "../../schemas/event-records";
import type { SchemaRegistry } from "../../schemas/registry";
import { ANOMALY_SCHEMAS } from "../anomaly/records";
import { COS_SCHEMAS } from "../cos/records";
import type { CosPartySerdes } from "./records";

export function cosPartyAvroSerdes(registry: SchemaRegistry): CosPartySerdes {
  return {
    envelope: avroSerde(registry, loadSchema(ANOMALY_SCHEMAS.serviceRequestEnvelope)),
    inventory: avroSerde(registry, loadSchema(EVENT_SCHEMAS.deviceSnapshot)),
    adtFile: avroSerde(registry, loadSchema(ANOMALY_SCHEMAS.adtFileSubmission)),
    adtResult: avroSerde(registry, loadSchema(ANOMALY_SCHEMAS.adtFileResult)),
    anomalyEvent: avroSerde(registry, loadSchema(ANOMALY_SCHEMAS.anomalyEvent)),
    authorisation: avroSerde(registry, loadSchema(COS_SCHEMAS.cosAuthorisation)),
    response: avroSerde(registry, loadSchema(EVENT_SCHEMAS.serviceResponseEvent)),
    stage: avroSerde(registry, loadSchema(EVENT_SCHEMAS.requestStageEvent)),
    alert: avroSerde(registry, loadSchema(EVENT_SCHEMAS.dccAlertEvent)),
  };
}
