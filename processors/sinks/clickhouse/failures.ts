/**
 * What a failed ClickHouse call means for the sink, by the ClickHouse error code in the message
 * ("Code: 27. DB::Exception ..." on current versions, "Code: 27, e.displayText() = ..." on 18.16) or the
 * Node network error:
 *
 * - `transient`: the target is unreachable, busy or timed out. Retry the same insert with backoff; the
 *   sink commits nothing meanwhile.
 * - `row`: ClickHouse refused the data (a value it cannot parse or store). The batch is split until
 *   the refused rows are found; those are dead-lettered with ClickHouse's message as the reason.
 * - `fatal`: retrying cannot help (unknown table or column, syntax, authentication). The sink stops
 *   without committing, so nothing is lost; an operator fixes the cause and restarts it.
 *
 * An error with no recognisable code is treated as transient: the retry budget bounds it.
 */

export type FailureKind = "transient" | "row" | "fatal";

export interface ClassifiedFailure {
  readonly kind: FailureKind;
  /** ClickHouse error code, when the message carries one. */
  readonly code: number | undefined;
  readonly message: string;
}

/** Codes for data ClickHouse could not parse or store: the rows' fault. */
const ROW_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  691, // UNKNOWN_ELEMENT_OF_ENUM
]);

/** Codes retrying cannot fix. */
const FATAL_CODES = new Set([
  16, // NO_SUCH_COLUMN_IN_TABLE
  47, // UNKNOWN_IDENTIFIER
  60, // UNKNOWN_TABLE
  62, // SYNTAX_ERROR
  81, // UNKNOWN_DATABASE
  192, // UNKNOWN_USER
  193, // WRONG_PASSWORD
  194, // REQUIRED_PASSWORD
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
]);

const NETWORK =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|socket hang up|Timeout error|timed out|aborted/i;

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function clickhouseCode(message: string): number | undefined {
  const m = /Code:\s*(\d+)/.exec(message);
  return m ? Number(m[1]) : undefined;
}

export function classifyFailure(err: unknown): ClassifiedFailure {
  const message = messageOf(err);
  const code = clickhouseCode(message);
  if (code !== undefined && ROW_CODES.has(code)) return { kind: "row", code, message };
  if (code !== undefined && FATAL_CODES.has(code)) return { kind: "fatal", code, message };
  if (code === undefined && !NETWORK.test(message) && /Unknown (table|database)/i.test(message)) {
    return { kind: "fatal", code, message };
  }
  return { kind: "transient", code, message };
}
