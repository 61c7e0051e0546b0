// Reads an event timestamp: an RFC 3339 date-time string or epoch milliseconds. Hand-parsed
// because Date.parse also takes many non-RFC forms and silently drops sub-millisecond digits.

/** Longest RFC 3339 text we read (nanosecond fraction and an offset fit well within it). */
const timestampCharsMax = 40;

// Section 5.6 of RFC 3339: full-date "T" full-time; "t" and a space are allowed by its notes.
const rfc3339Pattern =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Epoch ms of the timestamp, or null when it is neither form. Fractions of a ms are dropped. */
export function parseTimestamp(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.floor(value) : null;
  if (typeof value !== 'string' || value.length > timestampCharsMax) return null;
  const match = rfc3339Pattern.exec(value);
  if (match === null) return null;
  const [, year, month, day, hour, minute, second, fraction, sign, offsetHour, offsetMinute] = match;
  const fields = {
    year: Number(year),
    month: Number(month),
    day: Number(day),
    hour: Number(hour),
    minute: Number(minute),
    // 60 is a leap second; Date.UTC rolls it into the next minute, as POSIX time does.
    second: Number(second),
  };
  if (!isValidDateTime(fields)) return null;
  const offsetMinutes = sign === undefined ? 0 : Number(offsetHour) * 60 + Number(offsetMinute);
  if (sign !== undefined && (Number(offsetHour) > 23 || Number(offsetMinute) > 59)) return null;
  const milliseconds = fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'));
  const date = new Date(
    Date.UTC(2000, fields.month - 1, fields.day, fields.hour, fields.minute, fields.second, milliseconds),
  );
  // Date.UTC maps years 0–99 to 1900–1999; setting the year afterwards keeps it literal.
  date.setUTCFullYear(fields.year);
  const offsetMs = offsetMinutes * 60_000;
  return sign === '-' ? date.getTime() + offsetMs : date.getTime() - offsetMs;
}

interface DateTimeFields {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

function isValidDateTime(fields: DateTimeFields): boolean {
  if (fields.month < 1 || fields.month > 12) return false;
  if (fields.day < 1 || fields.day > daysInMonth(fields.year, fields.month)) return false;
  return fields.hour <= 23 && fields.minute <= 59 && fields.second <= 60;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}
