// Behaviour of query time handling: bucket starts in zones with DST and with :30/:45 offsets,
// relative ranges at their boundaries, the bucket limit, and RFC 3339 labels.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TallyError } from '../../src/core/errors.ts';
import { limits, time } from '../../src/core/limits.ts';
import { parseQuery } from '../../src/analytics/query/parse.ts';
import {
  bucketStartAt, formatBucket, parseRfc3339, resolveRelativeRange, resolveTimeZone, timeBuckets, type TimeBucket,
} from '../../src/analytics/query/time-range.ts';

function labels(buckets: readonly TimeBucket[]): string[] {
  return buckets.map(formatBucket);
}

function lengthsHours(buckets: readonly TimeBucket[], toMs: number): number[] {
  return buckets.map((bucket, index) => ((buckets[index + 1]?.startMs ?? toMs) - bucket.startMs) / time.hourMs);
}

describe('query time: buckets', () => {
  test('Europe/Berlin day buckets across the spring change: the local day of 29 March 2026 has 23 hours', () => {
    const range = { fromMs: Date.parse('2026-03-27T00:00:00+01:00'), toMs: Date.parse('2026-03-31T00:00:00+02:00') };
    const buckets = timeBuckets('Europe/Berlin', 'day', range, 100);
    assert.deepEqual(labels(buckets), [
      '2026-03-27T00:00:00+01:00', '2026-03-28T00:00:00+01:00', '2026-03-29T00:00:00+01:00', '2026-03-30T00:00:00+02:00',
    ]);
    assert.deepEqual(lengthsHours(buckets, range.toMs), [24, 24, 23, 24]);
  });

  test('Europe/Berlin across the autumn change: a 25-hour day, and the repeated 02:00 hour is two hour buckets', () => {
    const day = { fromMs: Date.parse('2026-10-25T00:00:00+02:00'), toMs: Date.parse('2026-10-26T00:00:00+01:00') };
    assert.deepEqual(lengthsHours(timeBuckets('Europe/Berlin', 'day', day, 100), day.toMs), [25]);
    const hours = timeBuckets('Europe/Berlin', 'hour', day, 100);
    assert.equal(hours.length, 25);
    assert.deepEqual(labels(hours).slice(1, 5), [
      '2026-10-25T01:00:00+02:00', '2026-10-25T02:00:00+02:00', '2026-10-25T02:00:00+01:00', '2026-10-25T03:00:00+01:00',
    ]);
  });

  test('Asia/Kolkata (+05:30) day buckets start at 18:30 UTC and are labelled local midnight', () => {
    const range = { fromMs: Date.parse('2026-01-01T00:00:00Z'), toMs: Date.parse('2026-01-03T00:00:00Z') };
    const buckets = timeBuckets('Asia/Kolkata', 'day', range, 100);
    assert.deepEqual(buckets.map((bucket) => new Date(bucket.startMs).toISOString()), [
      '2025-12-31T18:30:00.000Z', '2026-01-01T18:30:00.000Z', '2026-01-02T18:30:00.000Z',
    ]);
    assert.deepEqual(labels(buckets), ['2026-01-01T00:00:00+05:30', '2026-01-02T00:00:00+05:30', '2026-01-03T00:00:00+05:30']);
  });

  test('Asia/Kathmandu (+05:45) hour buckets start at a quarter past the UTC hour', () => {
    const buckets = timeBuckets('Asia/Kathmandu', 'hour', { fromMs: Date.parse('2026-01-01T00:15:00Z'), toMs: Date.parse('2026-01-01T02:15:00Z') }, 100);
    assert.deepEqual(buckets.map((bucket) => new Date(bucket.startMs).toISOString()), ['2026-01-01T00:15:00.000Z', '2026-01-01T01:15:00.000Z']);
    assert.deepEqual(labels(buckets), ['2026-01-01T06:00:00+05:45', '2026-01-01T07:00:00+05:45']);
  });

  test('a day whose midnight never happens (America/Santiago, 6 Sep 2026) starts at the change, 01:00 local', () => {
    const range = { fromMs: Date.parse('2026-09-05T00:00:00-04:00'), toMs: Date.parse('2026-09-07T00:00:00-03:00') };
    assert.deepEqual(labels(timeBuckets('America/Santiago', 'day', range, 100)), ['2026-09-05T00:00:00-04:00', '2026-09-06T01:00:00-03:00']);
  });

  test('UTC buckets are labelled with +00:00, the first bucket starting before an unaligned range', () => {
    const buckets = timeBuckets('UTC', 'hour', { fromMs: Date.parse('2026-01-01T00:30:00Z'), toMs: Date.parse('2026-01-01T02:00:01Z') }, 100);
    assert.deepEqual(labels(buckets), ['2026-01-01T00:00:00+00:00', '2026-01-01T01:00:00+00:00', '2026-01-01T02:00:00+00:00']);
  });

  test('the bucket limit holds at its edge and refuses one more with too_many_buckets', () => {
    const fromMs = Date.parse('2026-01-01T00:00:00Z');
    const exact = { fromMs, toMs: fromMs + limits.queryBucketsMax * time.hourMs };
    assert.equal(timeBuckets('UTC', 'hour', exact, limits.queryBucketsMax).length, limits.queryBucketsMax);
    const over = { fromMs, toMs: exact.toMs + 1 };
    assert.throws(() => timeBuckets('UTC', 'hour', over, limits.queryBucketsMax), (error: unknown) => error instanceof TallyError && error.code === 'too_many_buckets');
    const year = { fromMs, toMs: fromMs + 366 * time.dayMs };
    assert.throws(() => timeBuckets('Europe/Berlin', 'hour', year, limits.queryBucketsMax), (error: unknown) => error instanceof TallyError && error.code === 'too_many_buckets');
  });

  test('bucketStartAt is the start of the local bucket holding the instant', () => {
    const instant = Date.parse('2026-03-29T12:34:56Z');
    assert.equal(bucketStartAt('Europe/Berlin', 'day', instant), Date.parse('2026-03-28T23:00:00Z'));
    assert.equal(bucketStartAt('Asia/Kolkata', 'hour', instant), Date.parse('2026-03-29T12:30:00Z'));
    assert.equal(bucketStartAt('UTC', 'minute', instant), Date.parse('2026-03-29T12:34:00Z'));
  });
});

describe('query time: relative ranges', () => {
  const nowMs = Date.parse('2026-11-21T10:15:30Z');

  test('"24h" is the 24 hours before now, whatever the zone', () => {
    assert.deepEqual(resolveRelativeRange('24h', 'Asia/Kolkata', nowMs), { fromMs: nowMs - time.dayMs, toMs: nowMs });
  });

  test('"today" runs from local midnight to now', () => {
    assert.deepEqual(resolveRelativeRange('today', 'Europe/Berlin', nowMs), { fromMs: Date.parse('2026-11-20T23:00:00Z'), toMs: nowMs });
    assert.deepEqual(resolveRelativeRange('today', 'Asia/Kolkata', nowMs), { fromMs: Date.parse('2026-11-20T18:30:00Z'), toMs: nowMs });
    // 23:00 in New York is still the 20th there.
    assert.deepEqual(resolveRelativeRange('today', 'America/New_York', Date.parse('2026-11-21T04:00:00Z')), {
      fromMs: Date.parse('2026-11-20T05:00:00Z'), toMs: Date.parse('2026-11-21T04:00:00Z'),
    });
  });

  test('"today" at exactly local midnight is empty, one millisecond later it is not', () => {
    const midnight = Date.parse('2026-11-20T23:00:00Z');
    assert.deepEqual(resolveRelativeRange('today', 'Europe/Berlin', midnight), { fromMs: midnight, toMs: midnight });
    assert.deepEqual(resolveRelativeRange('today', 'Europe/Berlin', midnight + 1), { fromMs: midnight, toMs: midnight + 1 });
  });

  test('"7d" is today and the six local days before it, ending at the end of today', () => {
    const range = resolveRelativeRange('7d', 'Europe/Berlin', nowMs);
    assert.deepEqual(range, { fromMs: Date.parse('2026-11-14T23:00:00Z'), toMs: Date.parse('2026-11-21T23:00:00Z') });
    assert.deepEqual(labels(timeBuckets('Europe/Berlin', 'day', range, 100)), [
      '2026-11-15T00:00:00+01:00', '2026-11-16T00:00:00+01:00', '2026-11-17T00:00:00+01:00', '2026-11-18T00:00:00+01:00',
      '2026-11-19T00:00:00+01:00', '2026-11-20T00:00:00+01:00', '2026-11-21T00:00:00+01:00',
    ]);
  });

  test('"7d" one millisecond before local midnight still ends at that midnight; at midnight it moves a day', () => {
    const midnight = Date.parse('2026-11-21T23:00:00Z');
    assert.equal(resolveRelativeRange('7d', 'Europe/Berlin', midnight - 1).toMs, midnight);
    assert.deepEqual(resolveRelativeRange('7d', 'Europe/Berlin', midnight), { fromMs: Date.parse('2026-11-15T23:00:00Z'), toMs: midnight + time.dayMs });
  });

  test('"30d" over a DST change spans 30 local days, one of them 25 hours long', () => {
    const range = resolveRelativeRange('30d', 'Europe/Berlin', Date.parse('2026-11-10T12:00:00Z'));
    assert.deepEqual(range, { fromMs: Date.parse('2026-10-11T22:00:00Z'), toMs: Date.parse('2026-11-10T23:00:00Z') });
    assert.equal(timeBuckets('Europe/Berlin', 'day', range, 100).length, 30);
    assert.equal(range.toMs - range.fromMs, 30 * time.dayMs + time.hourMs);
  });

  test('parseQuery resolves relative ranges in the requested zone', () => {
    const query = parseQuery({ metrics: ['events'], date_range: 'today', timezone: 'Asia/Kolkata' }, nowMs);
    assert.deepEqual(query.range, { fromMs: Date.parse('2026-11-20T18:30:00Z'), toMs: nowMs });
  });
});

describe('query time: parsing', () => {
  test('parseRfc3339 takes offsets, fractions and leap days, and refuses impossible dates', () => {
    assert.equal(parseRfc3339('2028-02-29T00:00:00.123456+05:30'), Date.parse('2028-02-28T18:30:00.123Z'));
    assert.equal(parseRfc3339('2026-11-20T00:00:00-00:30'), Date.parse('2026-11-20T00:30:00Z'));
    assert.equal(parseRfc3339('2026-02-29T00:00:00Z'), null);
    assert.equal(parseRfc3339('2026-04-31T00:00:00Z'), null);
    assert.equal(parseRfc3339('2026-11-20 00:00:00Z'), null);
    assert.equal(parseRfc3339('2026-11-20T00:00:00+24:00'), null);
    assert.equal(parseRfc3339('20261120T000000Z'), null);
  });

  test('resolveTimeZone maps case variants and aliases to one name and refuses unknown ones', () => {
    // Which alias is canonical is ICU's choice (V8 still says Asia/Calcutta); only sameness matters.
    assert.equal(resolveTimeZone('asia/kolkata'), resolveTimeZone('Asia/Kolkata'));
    assert.equal(resolveTimeZone('Asia/Kolkata'), resolveTimeZone('Asia/Calcutta'));
    assert.equal(resolveTimeZone('Etc/UTC'), 'UTC');
    assert.throws(() => resolveTimeZone('Europe/Atlantis'), (error: unknown) => error instanceof TallyError && error.code === 'invalid_timezone');
  });
});
