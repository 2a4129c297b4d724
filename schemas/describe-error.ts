/**
 * Error text for messages. Duck-typed rather than `instanceof Error`: errors from Node's own fetch
 * come from another realm under jest's sandbox and would fail that check.
 */
function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null && key in value
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  const message = field(err, "message");
  return typeof message === "string" ? message : String(err);
}

/** The message plus the cause's code and message, where fetch hides the reason (ECONNREFUSED…). */
export function describeFailure(err: unknown): string {
  const cause = field(err, "cause");
  if (cause === undefined) return messageOf(err);
  const code = field(cause, "code");
  return `${messageOf(err)} (${typeof code === "string" ? `${code}: ` : ""}${messageOf(cause)})`;
}
