/**
 * Stable error codes for the whole product. Every code is listed in docs/errors.md; a unit test fails
 * when this list and that document disagree. Codes are a compatibility surface: never reuse one.
 */
export const ERROR_CODES = {
  ECOS_CONFIG_INVALID: { retriable: false, summary: "Configuration value missing or out of range" },
  ECOS_TOPOLOGY_INVALID: {
    retriable: false,
    summary: "Topology wiring is wrong (unknown parent, store, duplicate name)",
  },
  ECOS_STORE_UNKNOWN: {
    retriable: false,
    summary: "A processor asked for a state store it was not connected to",
  },
  ECOS_SERDE_DECODE: { retriable: false, summary: "A record's key or value could not be decoded" },
  ECOS_SERDE_ENCODE: { retriable: false, summary: "A record's key or value could not be encoded" },
  ECOS_SCHEMA_UNKNOWN: { retriable: false, summary: "A schema id or subject is not known to the registry" },
  ECOS_SCHEMA_INCOMPATIBLE: { retriable: false, summary: "The registry refused a schema as incompatible" },
  ECOS_REGISTRY_UNAVAILABLE: { retriable: true, summary: "The schema registry did not answer" },
  ECOS_WIRE_FORMAT: {
    retriable: false,
    summary: "Bytes are not in the Confluent wire format (magic byte, schema id)",
  },
  ECOS_PROCESS_FAILED: { retriable: false, summary: "A processor threw while handling a record" },
  ECOS_BROKER_UNAVAILABLE: { retriable: true, summary: "The Kafka cluster could not be reached" },
  ECOS_TRANSACTION_FAILED: {
    retriable: true,
    summary: "A Kafka transaction could not be committed; the task is restored",
  },
  ECOS_RESTORE_FAILED: { retriable: true, summary: "A state store could not be restored from its changelog" },
  ECOS_SERVICE_UNAVAILABLE: {
    retriable: true,
    summary: "A local service (Kafka, registry, ClickHouse) did not become healthy",
  },
  ECOS_CLICKHOUSE_FAILED: { retriable: true, summary: "ClickHouse refused or failed a query" },
  ECOS_DUIS_MALFORMED: {
    retriable: false,
    summary: "DUIS XML not well-formed or hostile (DOCTYPE, entity, size, depth)",
  },
  ECOS_DUIS_SCHEMA_INVALID: {
    retriable: false,
    summary: "DUIS request breaks the schema: element missing, out of order or of the wrong type",
  },
  ECOS_SRV_UNSUPPORTED: {
    retriable: false,
    summary: "A well-formed DUIS request for a Service Request this product does not process",
  },
  ECOS_SIGNATURE_INVALID: {
    retriable: false,
    summary: "XML signature missing, not in the DUIS form, or not verifying",
  },
  ECOS_CERTIFICATE_INVALID: {
    retriable: false,
    summary: "SMKI certificate unparsable, unknown, untrusted, revoked, expired or of the wrong role or use",
  },
  ECOS_WORKER_FAILED: {
    retriable: true,
    summary: "A crypto worker task crashed or was aborted; the batch can be retried",
  },
  ECOS_ADT_FILE_REJECTED: {
    retriable: false,
    summary: "An ADT file failed a check and was rejected whole (reason and line in the message)",
  },
  ECOS_CLICKHOUSE_MIGRATION: {
    retriable: false,
    summary: "The ClickHouse schema differs from this version's DDL migrations, or a migration failed",
  },
  ECOS_SINK_ROW_REJECTED: {
    retriable: false,
    summary: "A record the ClickHouse sink cannot store (undecodable, invalid or refused); dead-lettered",
  },
  ECOS_REFERENCE_DATA_INVALID: {
    retriable: false,
    summary:
      "A Registration Data or inventory (or users) CSV line is invalid (file, line and column in the message)",
  },
  ECOS_DSP_REJECTED: {
    retriable: false,
    summary: "A DSP check on a Service Request failed; the check id and DUIS response code say which",
  },
  ECOS_INGEST_REJECTED: {
    retriable: false,
    summary: "A request refused at ingest before reaching Kafka (too big, empty, no readable RequestID)",
  },
  ECOS_INGEST_UNAVAILABLE: {
    retriable: true,
    summary: "A request could not be made durable in Kafka; the sender may retry",
  },
  ECOS_GBCS_MALFORMED: {
    retriable: false,
    summary: "GBCS bytes (General-Signing APDU or CS02b payload) not in the exact form this product writes",
  },
  ECOS_COS_COUNTER_EXHAUSTED: {
    retriable: false,
    summary: "A device's CoS Party counter reached 2^64 - 1; no further pre-command can be signed for it",
  },
} as const satisfies Record<string, { retriable: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Where an error happened, for logs and dead letters. */
export interface ErrorContext {
  topic?: string;
  partition?: number;
  offset?: string;
  requestId?: string;
  [key: string]: unknown;
}

/** The one error type of the product: a stable code, a retriable flag, a cause and context. */
export class EcosError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; context?: ErrorContext } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EcosError";
    this.code = code;
    this.retriable = ERROR_CODES[code].retriable;
    this.context = options.context ?? {};
  }

  /** Plain form for crossing a worker boundary or writing a dead letter. */
  toJSON(): { code: ErrorCode; message: string; context: ErrorContext } {
    return { code: this.code, message: this.message, context: this.context };
  }
}

/** Wraps anything thrown into an EcosError, keeping an EcosError as it is. */
export function asEcosError(err: unknown, code: ErrorCode, context: ErrorContext = {}): EcosError {
  if (err instanceof EcosError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new EcosError(code, message, { cause: err, context });
}
