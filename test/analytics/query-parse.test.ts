// Behaviour of query request validation: every error code from a minimal offending request, the
// limits at their edge and one past it, and the defaults a minimal request gets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuery } from '../../src/analytics/query/parse.ts';
import type { ErrorCode } from '../../src/core/errors.ts';
import { TallyError } from '../../src/core/errors.ts';
import { limits } from '../../src/core/limits.ts';

const nowMs = Date.parse('2026-11-21T10:15:00Z');
const range = ['2026-11-01T00:00:00Z', '2026-11-08T00:00:00Z'];
const minimal = { metrics: ['events'], date_range: range };

function rejects(body: unknown, code: ErrorCode): void {
  assert.throws(() => parseQuery(body, nowMs), (error: unknown) => {
    assert.ok(error instanceof TallyError, `expected a TallyError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function withFields(fields: Record<string, unknown>): Record<string, unknown> {
  return { ...minimal, ...fields };
}

describe('query parse: defaults', () => {
  test('a minimal request gets UTC, no dimensions or filters, the default order, 1000 rows from offset 0', () => {
    const query = parseQuery(minimal, nowMs);
    assert.deepEqual(query.metrics, ['events']);
    assert.deepEqual(query.range, { fromMs: Date.parse(range[0]!), toMs: Date.parse(range[1]!) });
    assert.equal(query.timeZone, 'UTC');
    assert.deepEqual(query.dimensions, []);
    assert.equal(query.timeDimension, null);
    assert.deepEqual(query.filters, []);
    assert.deepEqual(query.orderBy, []);
    assert.equal(query.limit, limits.queryRowsDefault);
    assert.equal(query.offset, 0);
  });

  test('a full request keeps metrics, dimensions and filters in the order given', () => {
    const query = parseQuery({
      metrics: ['revenue', 'users'], date_range: range, dimensions: ['event:path', 'time:day'],
      filters: [['contains', 'event:path', ['/blog']], ['is_not', 'prop:plan', ['free']]],
      order_by: [['users', 'desc'], ['time:day', 'asc']], limit: 10, offset: 20, timezone: 'europe/berlin',
    }, nowMs);
    assert.deepEqual(query.metrics, ['revenue', 'users']);
    assert.deepEqual(query.dimensions, ['event:path', 'time:day']);
    assert.equal(query.timeDimension, 'time:day');
    assert.deepEqual(query.filters, [
      { operator: 'contains', dimension: 'event:path', values: ['/blog'] },
      { operator: 'is_not', dimension: 'prop:plan', values: ['free'] },
    ]);
    assert.deepEqual(query.orderBy, [{ name: 'users', direction: 'desc' }, { name: 'time:day', direction: 'asc' }]);
    assert.equal(query.timeZone, 'Europe/Berlin', 'the zone name is canonicalised');
    assert.equal(query.limit, 10);
    assert.equal(query.offset, 20);
  });

  test('RFC 3339 bounds with offsets and fractions resolve to UTC epoch ms, the end exclusive', () => {
    const query = parseQuery(withFields({ date_range: ['2026-11-01T01:00:00.5+01:00', '2026-11-01t00:00:01.999999z'] }), nowMs);
    assert.deepEqual(query.range, { fromMs: Date.parse('2026-11-01T00:00:00.500Z'), toMs: Date.parse('2026-11-01T00:00:01.999Z') });
  });
});

describe('query parse: invalid_request', () => {
  const cases: Array<[string, unknown]> = [
    ['a body that is null', null],
    ['a body that is an array', [minimal]],
    ['a body that is a string', 'events'],
    ['an unknown field', withFields({ site_id: 'x' })],
    ['missing metrics', { date_range: range }],
    ['empty metrics', withFields({ metrics: [] })],
    ['metrics that are not an array', withFields({ metrics: 'events' })],
    ['a metric that is not a string', withFields({ metrics: [1] })],
    ['a metric listed twice', withFields({ metrics: ['events', 'events'] })],
    ['missing date_range', { metrics: ['events'] }],
    ['a date_range of the wrong type', withFields({ date_range: 7 })],
    ['a date_range with one bound', withFields({ date_range: [range[0]] })],
    ['a date_range with a number bound', withFields({ date_range: [range[0], 5] })],
    ['dimensions that are not an array', withFields({ dimensions: 'event:path' })],
    ['a dimension that is not a string', withFields({ dimensions: [null] })],
    ['a dimension listed twice', withFields({ dimensions: ['event:path', 'event:path'] })],
    ['two time dimensions', withFields({ dimensions: ['time:day', 'time:hour'] })],
    ['one dimension more than allowed', withFields({ dimensions: ['event:path', 'event:type', 'visit:source', 'visit:country'] })],
    ['filters that are not an array', withFields({ filters: {} })],
    ['a filter of two parts', withFields({ filters: [['is', 'event:path']] })],
    ['a filter operator that is not a string', withFields({ filters: [[1, 'event:path', ['/']]] })],
    ['a filter dimension that is not a string', withFields({ filters: [['is', 1, ['/']]] })],
    ['a filter on a time dimension', withFields({ filters: [['is', 'time:day', ['x']]] })],
    ['filter values that are not an array', withFields({ filters: [['is', 'event:path', '/']] })],
    ['empty filter values', withFields({ filters: [['is', 'event:path', []]] })],
    ['a filter value that is a number', withFields({ filters: [['is', 'prop:seats', [3]]] })],
    ['a filter value longer than any stored value', withFields({ filters: [['is', 'event:path', ['/' + 'a'.repeat(limits.urlCharsMax)]]] })],
    ['one filter more than allowed', withFields({ filters: Array.from({ length: limits.queryFiltersMax + 1 }, () => ['is', 'event:path', ['/']]) })],
    ['one filter value more than allowed', withFields({ filters: [['is', 'event:path', Array.from({ length: limits.queryFilterValuesMax + 1 }, (_, i) => `/${i}`)]] })],
    ['order_by that is not an array', withFields({ order_by: 'events' })],
    ['an order_by entry without direction', withFields({ order_by: [['events']] })],
    ['an order_by direction other than asc or desc', withFields({ order_by: [['events', 'up']] })],
    ['an order_by on a metric the query does not ask for', withFields({ order_by: [['users', 'desc']] })],
    ['an order_by on a dimension the query does not have', withFields({ order_by: [['event:path', 'asc']] })],
    ['an order_by naming a field twice', withFields({ order_by: [['events', 'asc'], ['events', 'desc']] })],
    ['a limit of 0', withFields({ limit: 0 })],
    ['a limit one past the maximum', withFields({ limit: limits.queryRowsMax + 1 })],
    ['a fractional limit', withFields({ limit: 1.5 })],
    ['a limit given as a string', withFields({ limit: '10' })],
    ['a negative offset', withFields({ offset: -1 })],
    ['an offset given as a string', withFields({ offset: '0' })],
    ['a timezone that is not a string', withFields({ timezone: 1 })],
  ];
  for (const [name, body] of cases) {
    test(`rejects ${name}`, () => rejects(body, 'invalid_request'));
  }

  test('accepts the limits at their edge: max dimensions, filters, values and rows', () => {
    const query = parseQuery(withFields({
      dimensions: ['event:path', 'event:type', 'time:day'],
      filters: Array.from({ length: limits.queryFiltersMax }, () => ['is', 'event:path', Array.from({ length: limits.queryFilterValuesMax }, (_, i) => `/${i}`)]),
      limit: limits.queryRowsMax,
    }), nowMs);
    assert.equal(query.dimensions.length, limits.queryDimensionsMax);
    assert.equal(query.filters.length, limits.queryFiltersMax);
    assert.equal(query.limit, limits.queryRowsMax);
  });
});

describe('query parse: specific codes', () => {
  test('unknown_metric for a metric Tally does not know, in metrics or in order_by', () => {
    rejects(withFields({ metrics: ['visitors'] }), 'unknown_metric');
    rejects(withFields({ order_by: [['visitors', 'desc']] }), 'unknown_metric');
  });

  test('unknown_dimension in dimensions, filters and order_by, and for an empty property name', () => {
    rejects(withFields({ dimensions: ['event:nope'] }), 'unknown_dimension');
    rejects(withFields({ dimensions: ['prop:'] }), 'unknown_dimension');
    rejects(withFields({ filters: [['is', 'visit:nope', ['x']]] }), 'unknown_dimension');
    rejects(withFields({ order_by: [['visit:nope', 'asc']] }), 'unknown_dimension');
  });

  test('unknown_operator for a filter operator other than is, is_not and contains', () => {
    rejects(withFields({ filters: [['matches', 'event:path', ['/']]] }), 'unknown_operator');
  });

  test('invalid_timezone for a name that is not an IANA zone, including bare offsets', () => {
    rejects(withFields({ timezone: 'Mars/Olympus_Mons' }), 'invalid_timezone');
    rejects(withFields({ timezone: '+05:30' }), 'invalid_timezone');
    rejects(withFields({ timezone: '' }), 'invalid_timezone');
  });

  const invalidRanges: Array<[string, unknown]> = [
    ['an unknown relative range', 'yesterday'],
    ['date-only bounds', ['2026-11-01', '2026-11-08']],
    ['a bound without an offset', ['2026-11-01T00:00:00', range[1]]],
    ['a day that does not exist', ['2026-02-29T00:00:00Z', range[1]]],
    ['an hour past 23', ['2026-11-01T24:00:00Z', range[1]]],
    ['a leap second', ['2026-11-01T00:00:60Z', range[1]]],
    ['a reversed range', [range[1], range[0]]],
    ['an empty range', [range[0], range[0]]],
    ['a range one millisecond longer than allowed', ['2020-01-01T00:00:00Z', new Date(Date.parse('2020-01-01T00:00:00Z') + limits.queryRangeMsMax + 1).toISOString()]],
  ];
  for (const [name, value] of invalidRanges) {
    test(`invalid_date_range for ${name}`, () => rejects(withFields({ date_range: value }), 'invalid_date_range'));
  }

  test('a range exactly as long as allowed is accepted', () => {
    const to = new Date(Date.parse('2020-01-01T00:00:00Z') + limits.queryRangeMsMax).toISOString();
    assert.doesNotThrow(() => parseQuery(withFields({ date_range: ['2020-01-01T00:00:00Z', to] }), nowMs));
  });

  test('time:minute takes a range of at most 48 hours; one millisecond more is invalid_date_range', () => {
    const fromMs = Date.parse('2026-11-01T00:00:00Z');
    const at = (ms: number): string => new Date(ms).toISOString();
    assert.doesNotThrow(() => parseQuery(withFields({ dimensions: ['time:minute'], date_range: [at(fromMs), at(fromMs + limits.minuteRangeMsMax)] }), nowMs));
    rejects(withFields({ dimensions: ['time:minute'], date_range: [at(fromMs), at(fromMs + limits.minuteRangeMsMax + 1)] }), 'invalid_date_range');
    assert.doesNotThrow(() => parseQuery(withFields({ dimensions: ['time:hour'], date_range: [at(fromMs), at(fromMs + limits.minuteRangeMsMax + 1)] }), nowMs));
  });
});
