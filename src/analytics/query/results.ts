// Turns aggregated rows into the response: zero-filled time buckets, the requested or default
// order (ties broken by every dimension, so pages are stable), limit/offset, and JSON values.
import type { MetricName } from '../../core/analytics/dimensions.ts';
import type { Row } from './aggregate.ts';
import type { Query, SortDirection } from './parse.ts';
import { formatBucket, type TimeBucket } from './time-range.ts';

/** Revenue beyond this is not exact as a JSON number, so it is sent as a decimal string. */
const revenueNumberMax = BigInt(Number.MAX_SAFE_INTEGER);

export type MetricValue = number | string;

export interface QueryResult {
  readonly dimensions: string[];
  readonly metrics: MetricValue[];
}

interface SortKey {
  readonly compare: (a: Row, b: Row) => number;
  readonly direction: SortDirection;
}

/**
 * Rows shown even without data: every bucket when time is the only dimension, the one row of a
 * plain total. With another dimension only combinations that have data appear (zero-filling
 * every bucket × value would pad a top-N with rows that say nothing).
 */
export function zeroFillSlots(query: Query, buckets: readonly TimeBucket[]): number[] {
  if (query.dimensions.some((name) => name !== query.timeDimension)) return [];
  if (query.timeDimension === null) return [0];
  return buckets.map((_, index) => index);
}

/** Orders, pages and formats; sketches are estimated only for the sort and the page. */
export function pageResults(query: Query, buckets: readonly TimeBucket[], rows: Row[]): QueryResult[] {
  const keys = sortKeys(query);
  rows.sort((a, b) => {
    for (const key of keys) {
      const order = key.compare(a, b);
      if (order !== 0) return key.direction === 'asc' ? order : -order;
    }
    return 0;
  });
  return rows.slice(query.offset, query.offset + query.limit).map((row) => ({
    dimensions: query.dimensions.map((name) => dimensionOutput(query, buckets, row, name)),
    metrics: query.metrics.map((metric) => metricOutput(row, metric)),
  }));
}

/**
 * The explicit order_by, else time ascending then the first metric descending; then every
 * dimension ascending as the tie-break (distinct rows differ in some dimension).
 */
function sortKeys(query: Query): SortKey[] {
  const terms = query.orderBy.length > 0
    ? [...query.orderBy]
    : [
      ...(query.timeDimension === null ? [] : [{ name: query.timeDimension, direction: 'asc' as const }]),
      { name: query.metrics[0]!, direction: 'desc' as const },
    ];
  for (const name of query.dimensions) {
    if (!terms.some((term) => term.name === name)) terms.push({ name, direction: 'asc' });
  }
  return terms.map((term) => ({ compare: comparator(query, term.name), direction: term.direction }));
}

function comparator(query: Query, name: string): (a: Row, b: Row) => number {
  if (name === query.timeDimension) return (a, b) => a.slot - b.slot;
  const position = breakdownPosition(query, name);
  if (position >= 0) return (a, b) => compareValues(a.values[position]!, b.values[position]!);
  const metric = name as MetricName;
  return (a, b) => compareValues(metricValue(a, metric), metricValue(b, metric));
}

/** Plain code-unit order: deterministic and locale-free. */
function compareValues<T extends string | number | bigint>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function breakdownPosition(query: Query, name: string): number {
  return query.dimensions.filter((dimension) => dimension !== query.timeDimension).indexOf(name);
}

/** Users and sessions never exceed events: a sketch's error must not show more people than hits. */
function metricValue(row: Row, metric: MetricName): number | bigint {
  switch (metric) {
    case 'events':
      return row.events;
    case 'revenue':
      return row.revenue;
    case 'users':
      return Math.min(row.events, Math.round(row.users.estimate()));
    case 'sessions':
      return Math.min(row.events, Math.round(row.sessions.estimate()));
  }
}

function metricOutput(row: Row, metric: MetricName): MetricValue {
  const value = metricValue(row, metric);
  if (typeof value === 'number') return value;
  return value <= revenueNumberMax && value >= -revenueNumberMax ? Number(value) : value.toString();
}

function dimensionOutput(query: Query, buckets: readonly TimeBucket[], row: Row, name: string): string {
  if (name === query.timeDimension) return formatBucket(buckets[row.slot]!);
  return row.values[breakdownPosition(query, name)]!;
}
