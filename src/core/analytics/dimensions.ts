// The analytics vocabulary: metrics, dimensions, and the one function that derives a dimension's
// value from an event. Rollup building and raw-event scans both call `dimensionValue`, so a
// breakdown answered from rollups and one answered by a scan agree by construction.
import type { TrackedEvent } from '../event.ts';
import type { Granularity } from '../ports/rollup-store.ts';

export const metricNames = ['events', 'users', 'sessions', 'revenue'] as const;
export type MetricName = (typeof metricNames)[number];

export const timeDimensions = ['time:minute', 'time:hour', 'time:day'] as const;
export type TimeDimension = (typeof timeDimensions)[number];

/** Dimensions with a fixed name; `prop:<name>` is the open-ended one. */
export const eventDimensions = [
  'event:type',
  'event:path',
  'event:currency',
  'visit:source',
  'visit:utm_source',
  'visit:utm_medium',
  'visit:utm_campaign',
  'visit:country',
  'visit:browser',
  'visit:os',
  'visit:device',
] as const;
export type EventDimension = (typeof eventDimensions)[number];

export const propDimensionPrefix = 'prop:';

/** The value a dimension takes when the event has none (e.g. a direct visit's source). */
export const noneValue = '(none)';

/** The totals cell of a bucket: no dimension. */
export const totalDimension = '';

const eventDimensionSet: ReadonlySet<string> = new Set(eventDimensions);

export function isMetricName(name: string): name is MetricName {
  return (metricNames as readonly string[]).includes(name);
}

export function isTimeDimension(name: string): name is TimeDimension {
  return (timeDimensions as readonly string[]).includes(name);
}

/** A non-time dimension Tally knows: a fixed one or `prop:<name>` with a valid property name. */
export function isEventDimension(name: string): boolean {
  if (eventDimensionSet.has(name)) return true;
  if (!name.startsWith(propDimensionPrefix)) return false;
  const prop = name.slice(propDimensionPrefix.length);
  return prop.length > 0 && prop.length <= 128;
}

export function granularityOf(dimension: TimeDimension): Granularity {
  return dimension === 'time:minute' ? 'minute' : dimension === 'time:hour' ? 'hour' : 'day';
}

/**
 * Granularities at which a dimension has rollup cells. Minute cells exist only for totals and
 * event:type: a minute series is for "what is happening now", and minute cells for every path,
 * source and property would outnumber the raw events. Other minute breakdowns scan raw events.
 */
export function rollupGranularities(dimension: string): readonly Granularity[] {
  if (dimension === totalDimension || dimension === 'event:type') return allGranularities;
  return hourAndDay;
}

const allGranularities: readonly Granularity[] = ['minute', 'hour', 'day'];
const hourAndDay: readonly Granularity[] = ['hour', 'day'];

/**
 * The event's value for a dimension, or undefined when the event does not take part in it
 * (only `prop:<name>` for an event without that property). Missing values are `noneValue`.
 */
export function dimensionValue(event: TrackedEvent, dimension: string): string | undefined {
  switch (dimension) {
    case 'event:type':
      return event.type;
    case 'event:path':
      return event.page?.path ?? noneValue;
    case 'event:currency':
      return event.revenue?.currency ?? noneValue;
    case 'visit:source':
      return event.visit.source ?? noneValue;
    case 'visit:utm_source':
      return event.visit.utmSource ?? noneValue;
    case 'visit:utm_medium':
      return event.visit.utmMedium ?? noneValue;
    case 'visit:utm_campaign':
      return event.visit.utmCampaign ?? noneValue;
    case 'visit:country':
      return event.visit.country ?? noneValue;
    case 'visit:browser':
      return event.visit.browser ?? noneValue;
    case 'visit:os':
      return event.visit.os ?? noneValue;
    case 'visit:device':
      return event.visit.device ?? noneValue;
    default: {
      if (!dimension.startsWith(propDimensionPrefix)) return undefined;
      const value = event.properties?.[dimension.slice(propDimensionPrefix.length)];
      return value === undefined ? undefined : String(value);
    }
  }
}

/** The dimensions an event contributes rollup cells to (besides the totals cell). */
export function rolledUpDimensions(event: TrackedEvent): string[] {
  const dims: string[] = [...eventDimensions];
  if (event.properties) {
    for (const name of Object.keys(event.properties)) dims.push(propDimensionPrefix + name);
  }
  return dims;
}

/**
 * Revenue an event adds to a cell. Without the currency dimension, `revenue` sums only amounts
 * in the merchant's currency (no exchange rates are guessed); the event:currency cells carry
 * each currency's own sum, so a breakdown by currency splits it.
 */
export function revenueContribution(event: TrackedEvent, dimension: string, merchantCurrency: string): bigint {
  const revenue = event.revenue;
  if (!revenue) return 0n;
  if (dimension === 'event:currency' || revenue.currency === merchantCurrency) return BigInt(revenue.amount);
  return 0n;
}
