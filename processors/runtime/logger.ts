/**
 * A small structured logger port. The CLI prints human-readable lines to stderr; tests pass a
 * collecting logger. Never log key material: callers pass ids and codes, not keys or payloads.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function render(fields: LogFields | undefined): string {
  if (!fields) return "";
  return Object.entries(fields)
    .map(([k, v]) => ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join("");
}

/** Lines like `12:00:01.123 warn  broker unreachable brokers="..." attempt=2` on stderr. */
export function consoleLogger(
  level: LogLevel = "info",
  stream: NodeJS.WritableStream = process.stderr,
): Logger {
  const emit = (l: LogLevel, msg: string, fields?: LogFields): void => {
    if (ORDER[l] < ORDER[level]) return;
    const t = new Date().toISOString().slice(11, 23);
    stream.write(`${t} ${l.padEnd(5)} ${msg}${render(fields)}\n`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

export const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** Keeps every line in memory (tests assert on what an operator would read). */
export function collectingLogger(): Logger & {
  lines: Array<{ level: LogLevel; msg: string; fields: LogFields }>;
} {
  const lines: Array<{ level: LogLevel; msg: string; fields: LogFields }> = [];
  const push = (level: LogLevel) => (msg: string, fields?: LogFields) =>
    lines.push({ level, msg, fields: fields ?? {} });
  return { lines, debug: push("debug"), info: push("info"), warn: push("warn"), error: push("error") };
}
