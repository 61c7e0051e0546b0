// Validates a POST /v1/query body (parsed JSON of unknown shape) into a typed Query, modelled on
// Plausible's Stats API v2. Every field is checked for type, size and meaning; the first problem
// found is thrown as a TallyError with the most specific code the catalogue has.
import { TallyError } from '../../core/errors.ts';
import { limits } from '../../core/limits.ts';
import {
  isEventDimension, isMetricName, isTimeDimension, type MetricName, type TimeDimension,
} from '../../core/analytics/dimensions.ts';
import {
  parseRfc3339, relativeRanges, resolveRelativeRange, resolveTimeZone, utcZone, type DateRange, type RelativeRange,
} from './time-range.ts';

export const filterOperators = ['is', 'is_not', 'contains'] as const;
export type FilterOperator = (typeof filterOperators)[number];
export type SortDirection = 'asc' | 'desc';

export interface Filter {
  readonly operator: FilterOperator;
  readonly dimension: string;
  readonly values: readonly string[];
}

export interface OrderTerm {
  /** A metric or a dimension of the query. */
  readonly name: string;
  readonly direction: SortDirection;
}

export interface Query {
  readonly metrics: readonly MetricName[];
  /** Half-open [fromMs, toMs), resolved in the time zone at parse time. */
  readonly range: DateRange;
  /** Canonical IANA name. */
  readonly timeZone: string;
  /** As requested, in order; the time dimension (if any) among them. */
  readonly dimensions: readonly string[];
  readonly timeDimension: TimeDimension | null;
  readonly filters: readonly Filter[];
  /** As requested; empty means the default order (see execute.ts). */
  readonly orderBy: readonly OrderTerm[];
  readonly limit: number;
  readonly offset: number;
}

/** A filter value longer than any stored dimension value (URL paths) cannot match anything. */
export const filterValueCharsMax = limits.urlCharsMax;

/** Unknown fields are refused: a typo ("filter", "timeZone") would otherwise silently change the answer. */
const knownFields: ReadonlySet<string> = new Set([
  'metrics', 'date_range', 'dimensions', 'filters', 'order_by', 'limit', 'offset', 'timezone',
]);

/** The request body as a Query; `nowMs` anchors relative ranges ("7d", "today"). */
export function parseQuery(body: unknown, nowMs: number): Query {
  if (!isRecord(body)) throw invalid('the query must be a JSON object');
  for (const field of Object.keys(body)) {
    if (!knownFields.has(field)) throw invalid(`unknown field "${field.slice(0, 64)}"`);
  }
  const metrics = parseMetrics(body.metrics);
  const dimensions = parseDimensions(body.dimensions);
  const timeDimension = (dimensions.find(isTimeDimension) ?? null) as TimeDimension | null;
  const timeZone = parseTimeZone(body.timezone);
  const range = parseDateRange(body.date_range, timeZone, nowMs);
  if (timeDimension === 'time:minute' && range.toMs - range.fromMs > limits.minuteRangeMsMax) {
    // invalid_date_range rather than too_many_buckets: the catalogue's "too long for the
    // granularity", and a minute series of two days fits the bucket limit anyway.
    throw new TallyError('invalid_date_range', `time:minute needs a date range of at most ${limits.minuteRangeMsMax / 3_600_000} hours`);
  }
  return {
    metrics,
    range,
    timeZone,
    dimensions,
    timeDimension,
    filters: parseFilters(body.filters),
    orderBy: parseOrderBy(body.order_by, metrics, dimensions),
    limit: parseCount(body.limit, 'limit', 1, limits.queryRowsMax, limits.queryRowsDefault),
    offset: parseCount(body.offset, 'offset', 0, Number.MAX_SAFE_INTEGER, 0),
  };
}

function parseMetrics(value: unknown): MetricName[] {
  if (value === undefined) throw invalid('"metrics" is required');
  if (!Array.isArray(value) || value.length === 0) throw invalid('"metrics" must be a non-empty array of metric names');
  const metrics: MetricName[] = [];
  for (const item of value) {
    if (typeof item !== 'string') throw invalid('"metrics" must hold strings');
    if (!isMetricName(item)) throw new TallyError('unknown_metric', `unknown metric "${item.slice(0, 64)}"`);
    if (metrics.includes(item)) throw invalid(`metric "${item}" is listed twice`);
    metrics.push(item);
  }
  return metrics;
}

function parseDimensions(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('"dimensions" must be an array of dimension names');
  if (value.length > limits.queryDimensionsMax) throw invalid(`at most ${limits.queryDimensionsMax} dimensions`);
  const dimensions: string[] = [];
  for (const item of value) {
    if (typeof item !== 'string') throw invalid('"dimensions" must hold strings');
    if (!isTimeDimension(item) && !isEventDimension(item)) throw unknownDimension(item);
    if (dimensions.includes(item)) throw invalid(`dimension "${item}" is listed twice`);
    if (isTimeDimension(item) && dimensions.some(isTimeDimension)) throw invalid('at most one time dimension');
    dimensions.push(item);
  }
  return dimensions;
}

function parseTimeZone(value: unknown): string {
  if (value === undefined) return utcZone;
  if (typeof value !== 'string') throw invalid('"timezone" must be a string');
  return resolveTimeZone(value);
}

function parseDateRange(value: unknown, timeZone: string, nowMs: number): DateRange {
  if (value === undefined) throw invalid('"date_range" is required');
  if (typeof value === 'string') {
    if (!(relativeRanges as readonly string[]).includes(value)) {
      throw new TallyError('invalid_date_range', `"date_range" must be one of ${relativeRanges.join(', ')} or [from, to]`);
    }
    return resolveRelativeRange(value as RelativeRange, timeZone, nowMs);
  }
  if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'string' || typeof value[1] !== 'string') {
    throw invalid('"date_range" must be a relative range name or two RFC 3339 date-times');
  }
  const fromMs = parseRfc3339(value[0]);
  const toMs = parseRfc3339(value[1]);
  if (fromMs === null || toMs === null) {
    throw new TallyError('invalid_date_range', '"date_range" bounds must be RFC 3339 date-times with an offset, e.g. 2026-11-20T00:00:00Z');
  }
  if (fromMs >= toMs) throw new TallyError('invalid_date_range', '"date_range" must start before it ends (the end is exclusive)');
  if (toMs - fromMs > limits.queryRangeMsMax) {
    throw new TallyError('invalid_date_range', `"date_range" may span at most ${limits.queryRangeMsMax / 86_400_000} days`);
  }
  return { fromMs, toMs };
}

function parseFilters(value: unknown): Filter[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('"filters" must be an array of [operator, dimension, values]');
  if (value.length > limits.queryFiltersMax) throw invalid(`at most ${limits.queryFiltersMax} filters`);
  return value.map(parseFilter);
}

function parseFilter(value: unknown): Filter {
  if (!Array.isArray(value) || value.length !== 3) throw invalid('a filter must be [operator, dimension, values]');
  const [operator, dimension, values] = value as [unknown, unknown, unknown];
  if (typeof operator !== 'string') throw invalid('a filter operator must be a string');
  if (!(filterOperators as readonly string[]).includes(operator)) {
    throw new TallyError('unknown_operator', `unknown filter operator "${operator.slice(0, 64)}"; use is, is_not or contains`);
  }
  if (typeof dimension !== 'string') throw invalid('a filter dimension must be a string');
  if (isTimeDimension(dimension)) throw invalid('filter on the time range with "date_range", not on a time dimension');
  if (!isEventDimension(dimension)) throw unknownDimension(dimension);
  if (!Array.isArray(values) || values.length === 0 || values.length > limits.queryFilterValuesMax) {
    throw invalid(`filter values must be a non-empty array of at most ${limits.queryFilterValuesMax} strings`);
  }
  for (const item of values) {
    if (typeof item !== 'string' || item.length > filterValueCharsMax) {
      throw invalid(`filter values must be strings of at most ${filterValueCharsMax} characters`);
    }
  }
  return { operator: operator as FilterOperator, dimension, values: [...(values as string[])] };
}

function parseOrderBy(value: unknown, metrics: readonly MetricName[], dimensions: readonly string[]): OrderTerm[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('"order_by" must be an array of [name, "asc" | "desc"]');
  const terms: OrderTerm[] = [];
  for (const item of value) {
    if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== 'string') throw invalid('an order_by entry must be [name, "asc" | "desc"]');
    const [name, direction] = item as [string, unknown];
    if (direction !== 'asc' && direction !== 'desc') throw invalid('an order_by direction must be "asc" or "desc"');
    const known = isMetricName(name) || isTimeDimension(name) || isEventDimension(name);
    if (!known) throw name.includes(':') ? unknownDimension(name) : new TallyError('unknown_metric', `unknown metric "${name.slice(0, 64)}" in order_by`);
    if (!(metrics as readonly string[]).includes(name) && !dimensions.includes(name)) {
      throw invalid(`order_by "${name}" must be one of the query's metrics or dimensions`);
    }
    if (terms.some((term) => term.name === name)) throw invalid(`order_by lists "${name}" twice`);
    terms.push({ name, direction });
  }
  return terms;
}

function parseCount(value: unknown, field: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`"${field}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): TallyError {
  return new TallyError('invalid_request', message);
}

function unknownDimension(name: string): TallyError {
  return new TallyError('unknown_dimension', `unknown dimension "${name.slice(0, 140)}"`);
}
