/** Avro serdes of the issue-5 topics (schemas/ecos.cos.*.avsc) over a schema registry. */
import { avroSerde, loadSchema } from "../../schemas/avro";
import type { SchemaRegistry } from "../../schemas/registry";
import type { Serde } from "../runtime/serde";
import {
  COS_SCHEMAS,
  type CosAuthorisation,
  type DeviceCommand,
  type DeviceResponse,
  type S1spRequest,
} from "./records";

export interface CosSerdes {
  authorisation: Serde<CosAuthorisation>;
  deviceCommand: Serde<DeviceCommand>;
  s1spRequest: Serde<S1spRequest>;
  deviceResponse: Serde<DeviceResponse>;
}

export function cosAvroSerdes(registry: SchemaRegistry): CosSerdes {
  return {
    authorisation: avroSerde(registry, loadSchema(COS_SCHEMAS.cosAuthorisation)),
    deviceCommand: avroSerde(registry, loadSchema(COS_SCHEMAS.deviceCommand)),
    s1spRequest: avroSerde(registry, loadSchema(COS_SCHEMAS.s1spRequest)),
    deviceResponse: avroSerde(registry, loadSchema(COS_SCHEMAS.deviceResponse)),
  };
}
