// Time zones, date ranges and time buckets of analytics queries. Everything is UTC epoch ms; a
// zone is known only through its offsets (from Intl, cached per zone and UTC year), so local
// days of 23 or 25 hours and :30/:45 offsets fall out of one rule instead of special cases.
import { TallyError } from '../../core/errors.ts';
import { time } from '../../core/limits.ts';
import type { Granularity } from '../../core/ports/rollup-store.ts';

export const granularityMs: Readonly<Record<Granularity, number>> = {
  minute: time.minuteMs,
  hour: time.hourMs,
  day: time.dayMs,
};

/** A stretch of time with one UTC offset; it ends where the next segment starts. */
export interface OffsetSegment {
  readonly startMs: number;
  /** Local wall time minus UTC. */
  readonly offsetMs: number;
}

/** One bucket of a time series: where it starts and the zone's offset there (for its label). */
export interface TimeBucket {
  readonly startMs: number;
  readonly offsetMs: number;
}

export interface DateRange {
  readonly fromMs: number;
  readonly toMs: number;
}

export const relativeRanges = ['24h', '7d', '30d', 'today'] as const;
export type RelativeRange = (typeof relativeRanges)[number];

export const utcZone = 'UTC';

/**
 * Offsets are sampled once a day and transitions found by bisection: zones never change offset
 * twice within a day (Samoa's skipped day in 2011 is one change of 24 hours).
 */
const samplesStepMs = time.dayMs;
/** Cached (zone, year) offset tables: a few hundred bytes each; cleared whole when full. */
const offsetCacheEntriesMax = 4096;
/** Time zone names (IANA): letters first, so Intl's offset zones like "+05:30" are refused. */
const zoneNamePattern = /^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/;
/** How far before an instant its bucket may start: one bucket plus the largest offset change. */
const lookbackMs = 2 * time.dayMs;

const formatters = new Map<string, Intl.DateTimeFormat>();
const zoneNames = new Map<string, string | null>();
const offsetCache = new Map<string, OffsetSegment[]>();

/** The canonical name of an IANA time zone ("europe/berlin" → "Europe/Berlin"), or invalid_timezone. */
export function resolveTimeZone(name: string): string {
  let canonical = zoneNames.get(name);
  if (canonical === undefined) {
    canonical = zoneNamePattern.test(name) ? canonicalZone(name) : null;
    if (zoneNames.size >= offsetCacheEntriesMax) zoneNames.clear();
    zoneNames.set(name, canonical);
  }
  if (canonical === null) throw new TallyError('invalid_timezone', `"${name.slice(0, 64)}" is not an IANA time zone name`);
  return canonical;
}

function canonicalZone(name: string): string | null {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** The zone's offset at an instant, straight from Intl (the cached tables are built from it). */
export function offsetAt(zone: string, instantMs: number): number {
  if (zone === utcZone) return 0;
  let formatter = formatters.get(zone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
    formatters.set(zone, formatter);
  }
  const part = formatter.formatToParts(instantMs).find((item) => item.type === 'timeZoneName');
  const match = /^GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(part?.value ?? '');
  if (!match) throw new Error(`time zone ${zone}: unexpected offset "${part?.value}"`);
  if (match[1] === undefined) return 0;
  const magnitude = Number(match[2]) * time.hourMs + Number(match[3]) * time.minuteMs + Number(match[4] ?? 0) * 1000;
  return match[1] === '-' ? -magnitude : magnitude;
}

/** Offset segments covering [fromMs, toMs): the first starts at or before fromMs. */
export function offsetSegments(zone: string, fromMs: number, toMs: number): OffsetSegment[] {
  if (zone === utcZone) return [{ startMs: fromMs, offsetMs: 0 }];
  const segments: OffsetSegment[] = [];
  const lastYear = new Date(Math.max(fromMs, toMs - 1)).getUTCFullYear();
  for (let year = new Date(fromMs).getUTCFullYear(); year <= lastYear; year++) {
    for (const segment of yearSegments(zone, year)) {
      if (segments.at(-1)?.offsetMs !== segment.offsetMs) segments.push(segment);
    }
  }
  return segments;
}

function yearSegments(zone: string, year: number): OffsetSegment[] {
  const key = `${zone}\u0000${year}`;
  const cached = offsetCache.get(key);
  if (cached) return cached;
  const startMs = utcYearStart(year);
  const endMs = utcYearStart(year + 1);
  const segments: OffsetSegment[] = [{ startMs, offsetMs: offsetAt(zone, startMs) }];
  let previousMs = startMs;
  let previousOffset = segments[0]!.offsetMs;
  for (let sampleMs = startMs + samplesStepMs; previousMs < endMs; sampleMs += samplesStepMs) {
    const atMs = Math.min(sampleMs, endMs);
    const offset = offsetAt(zone, atMs);
    if (offset !== previousOffset) {
      segments.push({ startMs: transitionBetween(zone, previousMs, atMs, previousOffset), offsetMs: offset });
    }
    previousMs = atMs;
    previousOffset = offset;
  }
  if (segments.at(-1)!.startMs === endMs) segments.pop();
  if (offsetCache.size >= offsetCacheEntriesMax) offsetCache.clear();
  offsetCache.set(key, segments);
  return segments;
}

/** The first instant in (lowMs, highMs] whose offset differs from `lowOffset`. */
function transitionBetween(zone: string, lowMs: number, highMs: number, lowOffset: number): number {
  let low = lowMs;
  let high = highMs;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (offsetAt(zone, middle) === lowOffset) low = middle;
    else high = middle;
  }
  return high;
}

function utcYearStart(year: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, 0, 1);
  return date.getTime();
}

function floorLocal(wallMs: number, granularity: Granularity): number {
  const size = granularityMs[granularity];
  return Math.floor(wallMs / size) * size;
}

/**
 * Bucket boundaries in [fromMs, toMs): every instant whose local time is a whole minute / hour /
 * day, plus each offset change that moves the local clock into another bucket (a midnight that
 * never happens starts the day at the change). A repeated local hour is two buckets.
 */
function boundariesIn(segments: readonly OffsetSegment[], granularity: Granularity, fromMs: number, toMs: number): number[] {
  const size = granularityMs[granularity];
  const boundaries: number[] = [];
  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index]!;
    const endMs = segments[index + 1]?.startMs ?? Infinity;
    const lowMs = Math.max(segment.startMs, fromMs);
    const highMs = Math.min(endMs, toMs);
    if (lowMs >= highMs) continue;
    const offset = segment.offsetMs;
    if (index > 0 && segment.startMs >= fromMs) {
      const before = floorLocal(segment.startMs - 1 + segments[index - 1]!.offsetMs, granularity);
      if (before !== floorLocal(segment.startMs + offset, granularity)) boundaries.push(segment.startMs);
    }
    const firstMs = Math.ceil((lowMs + offset) / size) * size - offset;
    for (let instantMs = firstMs; instantMs < highMs; instantMs += size) {
      if (boundaries.at(-1) !== instantMs) boundaries.push(instantMs);
    }
  }
  return boundaries;
}

/** The start of the local bucket holding an instant: the last boundary at or before it. */
export function bucketStartAt(zone: string, granularity: Granularity, instantMs: number): number {
  const segments = offsetSegments(zone, instantMs - lookbackMs, instantMs + 1);
  for (let index = segmentIndexAt(segments, instantMs); index >= 0; index--) {
    const segment = segments[index]!;
    const latestMs = Math.min(instantMs, (segments[index + 1]?.startMs ?? Infinity) - 1);
    const candidateMs = floorLocal(latestMs + segment.offsetMs, granularity) - segment.offsetMs;
    if (candidateMs >= segment.startMs) return candidateMs;
    if (index > 0) {
      const before = floorLocal(segment.startMs - 1 + segments[index - 1]!.offsetMs, granularity);
      if (before !== floorLocal(segment.startMs + segment.offsetMs, granularity)) return segment.startMs;
    }
  }
  // Only reachable when no boundary lies within the lookback, which no real zone allows.
  throw new Error(`time zone ${zone}: no ${granularity} boundary before ${instantMs}`);
}

function segmentIndexAt(segments: readonly OffsetSegment[], instantMs: number): number {
  let low = 0;
  let high = segments.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (segments[middle]!.startMs <= instantMs) low = middle;
    else high = middle - 1;
  }
  return low;
}

/**
 * The buckets of a time series over [fromMs, toMs): the first starts at or before fromMs (a
 * range starting at 10:37 has an hour bucket labelled 10:00 holding [10:37, 11:00)).
 */
export function timeBuckets(zone: string, granularity: Granularity, range: DateRange, bucketsMax: number): TimeBucket[] {
  if (range.fromMs >= range.toMs) return [];
  const estimate = Math.floor((range.toMs - range.fromMs) / granularityMs[granularity]);
  if (estimate > bucketsMax + 1) throw tooManyBuckets(granularity, estimate, bucketsMax);
  const segments = offsetSegments(zone, range.fromMs - lookbackMs, range.toMs);
  const starts = [bucketStartAt(zone, granularity, range.fromMs), ...boundariesIn(segments, granularity, range.fromMs + 1, range.toMs)];
  if (starts.length > bucketsMax) throw tooManyBuckets(granularity, starts.length, bucketsMax);
  return starts.map((startMs) => ({ startMs, offsetMs: segments[segmentIndexAt(segments, startMs)]!.offsetMs }));
}

function tooManyBuckets(granularity: Granularity, count: number, bucketsMax: number): TallyError {
  return new TallyError(
    'too_many_buckets',
    `time:${granularity} over this range gives about ${count} buckets, more than ${bucketsMax}; use a coarser granularity or a shorter range`,
    { bucketsMax },
  );
}

/**
 * Resolves a relative range at `nowMs` in the zone. "24h" is the 24 hours before now; "today" is
 * local midnight to now; "7d" and "30d" are whole local days — today and the 6 (29) days before
 * it — ending at the end of today (Plausible's meaning), so a daily series has exactly 7 (30)
 * buckets and today's bucket is not cut short.
 */
export function resolveRelativeRange(range: RelativeRange, zone: string, nowMs: number): DateRange {
  if (range === '24h') return { fromMs: nowMs - time.dayMs, toMs: nowMs };
  const todayMs = bucketStartAt(zone, 'day', nowMs);
  if (range === 'today') return { fromMs: todayMs, toMs: nowMs };
  let fromMs = todayMs;
  for (let day = 1; day < (range === '7d' ? 7 : 30); day++) fromMs = bucketStartAt(zone, 'day', fromMs - 1);
  const segments = offsetSegments(zone, nowMs - lookbackMs, nowMs + lookbackMs);
  const tomorrowMs = boundariesIn(segments, 'day', nowMs + 1, nowMs + lookbackMs)[0];
  if (tomorrowMs === undefined) throw new Error(`time zone ${zone}: no day boundary after ${nowMs}`);
  return { fromMs, toMs: tomorrowMs };
}

const rfc3339Pattern = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** An RFC 3339 date-time (offset required, leap seconds refused) as epoch ms, or null. */
export function parseRfc3339(text: string): number | null {
  const match = rfc3339Pattern.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const fractionMs = Math.floor(Number(`0.${match[7] ?? '0'}`) * 1000);
  const offsetHours = Number(match[10] ?? 0);
  const offsetMinutes = Number(match[11] ?? 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, fractionMs);
  const offsetMs = (offsetHours * 60 + offsetMinutes) * time.minuteMs;
  return date.getTime() - (match[9] === '-' ? -offsetMs : offsetMs);
}

function daysInMonth(year: number, month: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month, 0);
  return date.getUTCDate();
}

/** A bucket start as RFC 3339 local time with its offset; offset zero is written "+00:00". */
export function formatBucket(bucket: TimeBucket): string {
  const local = new Date(bucket.startMs + bucket.offsetMs).toISOString();
  const sign = bucket.offsetMs < 0 ? '-' : '+';
  const minutes = Math.floor(Math.abs(bucket.offsetMs) / time.minuteMs);
  const offset = `${sign}${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
  // toISOString writes years past 9999 with a sign; query ranges never reach them.
  return `${local.slice(0, 19)}${offset}`;
}

function pad(value: number): string {
  return value.toString().padStart(2, '0');
}
