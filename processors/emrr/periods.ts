/**
 * Report periods. Every EMRR report covers a half-open interval [from, to) in UTC; its default is the
 * last complete period of the report's frequency before "now": the previous day (daily), the previous
 * six-hour block starting at 00, 06, 12 or 18 (6-hourly), the previous Monday-to-Monday week (weekly),
 * the previous calendar month (monthly).
 *
 * [GAP] the EMRR's own period boundaries and time zone are not in the seed documents; UTC calendar
 * boundaries are assumed (UK local time would shift each period by an hour in summer).
 */
import { EcosError } from "../runtime/errors";

export type Frequency = "daily" | "6-hourly" | "weekly" | "monthly";

export interface Period {
  readonly from: Date;
  readonly to: Date;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The start of the period of `freq` that contains `at`. */
export function periodStart(freq: Frequency, at: Date): Date {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth();
  const d = at.getUTCDate();
  switch (freq) {
    case "daily":
      return new Date(Date.UTC(y, m, d));
    case "6-hourly":
      return new Date(Date.UTC(y, m, d, Math.floor(at.getUTCHours() / 6) * 6));
    case "weekly": {
      const day = new Date(Date.UTC(y, m, d));
      const sinceMonday = (day.getUTCDay() + 6) % 7;
      return new Date(day.getTime() - sinceMonday * DAY);
    }
    case "monthly":
      return new Date(Date.UTC(y, m, 1));
  }
}

/** The start of the period after the one starting at `start`. */
export function nextPeriodStart(freq: Frequency, start: Date): Date {
  switch (freq) {
    case "daily":
      return new Date(start.getTime() + DAY);
    case "6-hourly":
      return new Date(start.getTime() + 6 * HOUR);
    case "weekly":
      return new Date(start.getTime() + 7 * DAY);
    case "monthly":
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
  }
}

/** The last complete period of `freq` before `now`. */
export function lastCompletedPeriod(freq: Frequency, now: Date): Period {
  const to = periodStart(freq, now);
  const from = periodStart(freq, new Date(to.getTime() - 1));
  return { from, to };
}

/**
 * Parses a --from/--to value: `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM[:SS][Z]` (UTC).
 * @throws EcosError ECOS_CONFIG_INVALID
 */
export function parseInstant(flag: string, value: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?Z?)?$/.exec(value);
  const date = m
    ? new Date(
        Date.UTC(
          Number(m[1]),
          Number(m[2]) - 1,
          Number(m[3]),
          Number(m[4] ?? 0),
          Number(m[5] ?? 0),
          Number(m[6] ?? 0),
        ),
      )
    : undefined;
  if (!m || !date || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value.slice(0, 10)) {
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `${flag} ${JSON.stringify(value)} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)`,
    );
  }
  return date;
}

/** The period a report covers: the flags where given, the last complete period otherwise. */
export function resolvePeriod(freq: Frequency, now: Date, from?: string, to?: string): Period {
  const last = lastCompletedPeriod(freq, now);
  const start = from === undefined ? undefined : parseInstant("--from", from);
  const end = to === undefined ? undefined : parseInstant("--to", to);
  let period: Period;
  if (start && end) period = { from: start, to: end };
  else if (start) period = { from: start, to: nextPeriodStart(freq, start) };
  else if (end) period = { from: periodStart(freq, new Date(end.getTime() - 1)), to: end };
  else period = last;
  if (period.to.getTime() <= period.from.getTime()) {
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `--to must be after --from (${formatInstant(period.from)} .. ${formatInstant(period.to)})`,
    );
  }
  return period;
}

/** `2024-03-12T06:00Z` style, for file names and headings. */
export function formatInstant(at: Date): string {
  return `${at.toISOString().slice(0, 16)}Z`;
}

/** The day on which Responsible Suppliers are determined for a period: its last day. */
export function responsibilityDay(p: Period): Date {
  return new Date(p.to.getTime() - 1000);
}
