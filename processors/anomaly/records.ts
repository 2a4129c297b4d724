/**
 * TypeScript shapes of the records on the anomaly-detection topics (schemas/ecos.*.avsc). A unit test
 * (test/anomaly/schemas.test.ts) checks each interface's keys against its schema's fields.
 */

/** Schema names, as passed to `loadSchema`. */
export const ANOMALY_SCHEMAS = {
  serviceRequestEnvelope: "ecos.duis.ServiceRequestEnvelope",
  adtFileSubmission: "ecos.anomaly.AdtFileSubmission",
  adtFileResult: "ecos.anomaly.AdtFileResult",
  anomalyEvent: "ecos.anomaly.AnomalyEvent",
  quarantinedRequest: "ecos.anomaly.QuarantinedRequest",
  exitQuarantineInstruction: "ecos.anomaly.ExitQuarantineInstruction",
} as const;

/**
 * A Service Request as it reaches anomaly detection: produced by the DSP validation stage for every
 * request that passed validation, keyed by User ID.
 */
export interface ServiceRequestEnvelope {
  /** DUIS RequestID: `<BusinessOriginatorID>:<BusinessTargetID>:<OriginatorCounter>`. */
  requestId: string;
  /** User ID (BusinessOriginatorID, EUI-64). */
  userId: string;
  /** Service Reference Variant, e.g. "6.23". */
  srv: string;
  /** timestamp-millis: when the DCC received the request at the DUIS interface. */
  receivedAt: number;
  /** Target device (BusinessTargetID, EUI-64). */
  deviceId: string;
  /** The DUIS XML exactly as received (never re-serialised). */
  raw: Buffer;
}

/** An ADT file as submitted by a User, keyed by User ID. */
export interface AdtFileSubmission {
  /** Unique id of this submission (correlates the result). */
  submissionId: string;
  userId: string;
  /** File name as submitted, for messages only. */
  fileName: string;
  /** timestamp-millis: when the DCC received the file; the thresholds apply from then on. */
  submittedAt: number;
  /** The CSV bytes exactly as submitted. */
  content: Buffer;
}

export type AdtEntryOrigin = "FILE" | "DEFAULT_CRITICAL" | "DEFAULT_COS_1440" | "NEVER_SUBMITTED";

/** One row of a User's ADT table. */
export interface AdtEntry {
  srv: string;
  periodMinutes: number;
  adt: number;
  warningThreshold: number;
  origin: AdtEntryOrigin;
}

export type AdtFileOutcome = "ACCEPTED" | "REJECTED";

/** Why an ADT file was rejected (whole-file rejection; see docs/anomaly-detection.md). */
export type AdtRejectionCode =
  | "FILE_TOO_LARGE"
  | "NOT_UTF8"
  | "BAD_CSV"
  | "BAD_STRUCTURE"
  | "TOO_MANY_ROWS"
  | "NOT_AN_INTEGER"
  | "NEGATIVE_NUMBER"
  | "NUMBER_TOO_LARGE"
  | "UNKNOWN_SRV"
  | "BAD_PERIOD"
  | "DUPLICATE_ENTRY"
  | "SEQUENCE_NOT_GREATER"
  | "USER_MISMATCH";

export interface AdtFileResult {
  submissionId: string;
  userId: string;
  fileName: string;
  /** The file's Sequence Number, when it could be read. */
  sequenceNumber: number | null;
  outcome: AdtFileOutcome;
  rejectionCode: AdtRejectionCode | null;
  rejectionReason: string | null;
  /** timestamp-millis: from when the table applies (accepted files only). */
  effectiveFrom: number | null;
  /** The whole table now in force, defaults included (empty when rejected). */
  entries: AdtEntry[];
}

export type AnomalyEventKind =
  | "WARNING_THRESHOLD_CROSSED"
  | "REQUEST_QUARANTINED"
  | "ECOS_PARTY_THRESHOLD_BREACHED"
  | "QUARANTINE_RELEASED"
  | "QUARANTINE_DELETED"
  | "EXIT_QUARANTINE_REJECTED";

export type AnomalyParty = "DSP" | "ECOS_PARTY";

/** Every warning, quarantine, breach and quarantine exit: the event stream for ClickHouse. */
export interface AnomalyEvent {
  /** Deterministic: the same request and cause always give the same id (idempotent inserts). */
  eventId: string;
  kind: AnomalyEventKind;
  party: AnomalyParty;
  userId: string;
  requestId: string | null;
  deviceId: string | null;
  srv: string | null;
  periodMinutes: number | null;
  /** Requests in the window, this one included. */
  count: number | null;
  /** The threshold crossed (Warning Threshold or ADT). */
  threshold: number | null;
  /** Sequence Number of the ADT file in force; null for the never-submitted defaults. */
  adtSequenceNumber: number | null;
  /** timestamp-millis of the request's receipt. */
  receivedAt: number | null;
  /** timestamp-millis of the event (receipt time, or the exit instruction's time). */
  occurredAt: number;
  /** DUIS QuarantineEventRef (decimal digits, at most 20). */
  quarantineEventRef: string | null;
  /** DUIS alert code sent to the User: "AD1" (quarantine), "N63" (ECoS Party breach). */
  dccAlertCode: string | null;
  /** Human-readable explanation. */
  detail: string;
}

/** A request held in quarantine at the DSP. */
export interface QuarantinedRequest {
  quarantineEventRef: string;
  requestId: string;
  userId: string;
  srv: string;
  receivedAt: number;
  deviceId: string;
  raw: Buffer;
  /** The breached window. */
  periodMinutes: number;
  count: number;
  adt: number;
  adtSequenceNumber: number | null;
}

export type ExitQuarantineAction = "RELEASE" | "DELETE";

/** A User's instruction for one quarantined request, keyed by User ID. */
export interface ExitQuarantineInstruction {
  instructionId: string;
  userId: string;
  quarantineEventRef: string;
  action: ExitQuarantineAction;
  /** timestamp-millis: when the DCC received the instruction. */
  issuedAt: number;
}
