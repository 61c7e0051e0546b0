// Behaviour of query execution against the memory adapters: a seeded set of a few hundred events
// over six days (across Berlin's spring DST change) is stored raw and rolled up with the real
// CellBuilder, and every answer is compared with ground truth computed here from the events.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventStore } from '../../src/adapters/memory/event-store.ts';
import { MemoryRollupStore } from '../../src/adapters/memory/rollup-store.ts';
import { CellBuilder } from '../../src/core/analytics/rollup.ts';
import { defineRules } from '../../src/core/analytics/rules.ts';
import { dimensionValue } from '../../src/core/analytics/dimensions.ts';
import { TallyError } from '../../src/core/errors.ts';
import { time } from '../../src/core/limits.ts';
import type { PropertyValue, TrackedEvent } from '../../src/core/event.ts';
import type { EventStore } from '../../src/core/ports/event-store.ts';
import { parseQuery, planQuery, runQuery, type QueryContext, type QueryResponse } from '../../src/analytics/query/index.ts';
import { makeEvent } from '../support/events.ts';

const shop = 'm_shop';
const other = 'm_other';
const currencies: Record<string, string> = { [shop]: 'USD', [other]: 'EUR' };
const rules = defineRules({ version: 1, botBrowserPatterns: ['bot'], spamSources: ['spam.example'] });
/** Thursday 26 March 2026, 00:00 UTC; Berlin moves to summer time on Sunday the 29th. */
const startMs = Date.UTC(2026, 2, 26);
const days = 6;
const endMs = startMs + days * time.dayMs;
const nowMs = endMs + time.hourMs;

const paths = ['/', '/pricing', '/blog/a', '/blog/b', '/Docs/Start', '/checkout'];
const sources = [null, 'google', 'twitter', 'news.ycombinator.com'];
const countries = ['DE', 'US', 'IN', null];

/** mulberry32: a seeded generator, so the data (and any failure) is the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function makeEvents(merchantId: string, count: number, seed: number): TrackedEvent[] {
  const random = seeded(seed);
  const events: TrackedEvent[] = [];
  for (let index = 0; index < count; index++) {
    // Every tenth event sits exactly on a whole hour or minute: range edges must be half-open.
    const timestampMs = index % 10 === 0
      ? startMs + Math.floor(random() * days * 24) * time.hourMs + (index % 20 === 0 ? 0 : Math.floor(random() * 60) * time.minuteMs)
      : startMs + Math.floor(random() * days * time.dayMs);
    const type = random() < 0.7 ? 'pageview' : random() < 0.5 ? 'purchase' : 'signup';
    const visitor = Math.floor(random() * 40);
    const sessionRoll = random();
    const properties: Record<string, PropertyValue> | null = random() < 0.5 ? null : random() < 0.5
      ? { plan: pick(random, ['free', 'pro']) }
      : { plan: pick(random, ['free', 'pro', 'team']), seats: pick(random, [1, 3, 10]), beta: random() < 0.5 };
    const currency = pick(random, ['USD', 'USD', 'EUR', 'GBP']);
    events.push(makeEvent({
      merchantId,
      id: `${merchantId}-${index}`,
      type,
      timestampMs,
      receivedMs: timestampMs + 100,
      visitorId: `v:${merchantId}-${visitor}`,
      sessionId: sessionRoll < 0.1 ? null : `s:${visitor}-${Math.floor(sessionRoll * 3)}`,
      properties,
      revenue: type === 'purchase' ? { amount: 100 + Math.floor(random() * 9900), currency } : null,
      page: type === 'purchase' && random() < 0.3 ? null : { path: merchantId === other ? '/other-only' : pick(random, paths), host: 'shop.example', referrer: null, title: null },
      visit: {
        source: random() < 0.04 ? 'spam.example' : pick(random, sources),
        browser: random() < 0.04 ? 'GoodBot' : pick(random, ['Chrome', 'Firefox', 'Safari']),
        country: pick(random, countries),
      },
    }));
  }
  return events;
}

const shopEvents = makeEvents(shop, 700, 7);
const otherEvents = makeEvents(other, 150, 11);
let context: QueryContext;
let rollups: MemoryRollupStore;
let events: MemoryEventStore;

async function storeAll(): Promise<void> {
  events = MemoryEventStore.create();
  rollups = MemoryRollupStore.create({ logicVersion: rules.logicVersion });
  const all = [...shopEvents, ...otherEvents];
  await events.putBatch(all.map((event, offset) => ({ event, source: { partition: 0, offset } })));
  const builder = new CellBuilder((merchantId) => currencies[merchantId]!);
  for (const event of all) if (!rules.isExcluded(event)) builder.add(event, 1);
  const layout = await rollups.layout();
  await rollups.apply({ stream: 'analytics:events', partition: 0, fromOffset: 0, throughOffset: all.length - 1, layoutEpoch: layout.epoch, cells: builder.cells() });
  context = { merchantId: shop, merchantCurrency: 'USD', rollups, events, rules };
}

// ----- ground truth --------------------------------------------------------------------------

interface Truth {
  events: number;
  revenue: bigint;
  readonly users: Set<string>;
  readonly sessions: Set<string>;
}

interface TruthOptions {
  readonly fromMs: number;
  readonly toMs: number;
  readonly keep?: (event: TrackedEvent) => boolean;
  /** The row an event belongs to; undefined drops it. */
  readonly key?: (event: TrackedEvent) => string | undefined;
  /** Revenue of every currency (a breakdown by currency), else the merchant's only. */
  readonly allCurrencies?: boolean;
  readonly source?: readonly TrackedEvent[];
}

function truth(options: TruthOptions): Map<string, Truth> {
  const rows = new Map<string, Truth>();
  for (const event of options.source ?? shopEvents) {
    if (event.timestampMs < options.fromMs || event.timestampMs >= options.toMs || rules.isExcluded(event)) continue;
    if (options.keep && !options.keep(event)) continue;
    const key = options.key ? options.key(event) : '';
    if (key === undefined) continue;
    let row = rows.get(key);
    if (!row) {
      row = { events: 0, revenue: 0n, users: new Set(), sessions: new Set() };
      rows.set(key, row);
    }
    row.events += 1;
    if (event.revenue && (options.allCurrencies || event.revenue.currency === 'USD')) row.revenue += BigInt(event.revenue.amount);
    row.users.add(event.visitorId);
    if (event.sessionId !== null) row.sessions.add(event.sessionId);
  }
  return rows;
}

/** Sketch estimates: within 2 %, or one for the small counts here (a register collision). */
function assertClose(actual: unknown, expected: number, what: string): void {
  assert.equal(typeof actual, 'number', what);
  const tolerance = Math.max(1, expected * 0.02);
  assert.ok(Math.abs((actual as number) - expected) <= tolerance, `${what}: ${String(actual)} is not within ${tolerance} of ${expected}`);
}

/** Compares a row's [events, users, sessions, revenue] with the truth (zeros when absent). */
function assertMetrics(metrics: readonly unknown[], expected: Truth | undefined, what: string): void {
  assert.equal(metrics[0], expected?.events ?? 0, `${what}: events`);
  assertClose(metrics[1], expected?.users.size ?? 0, `${what}: users`);
  assertClose(metrics[2], expected?.sessions.size ?? 0, `${what}: sessions`);
  assert.equal(metrics[3], Number(expected?.revenue ?? 0n), `${what}: revenue`);
}

const allMetrics = ['events', 'users', 'sessions', 'revenue'];
const iso = (ms: number): string => new Date(ms).toISOString();

async function query(body: Record<string, unknown>, overrides: Partial<QueryContext> = {}): Promise<QueryResponse> {
  return runQuery(body, { ...context, ...overrides }, nowMs);
}

async function sourceOf(body: Record<string, unknown>, merchantId = shop): Promise<string> {
  return planQuery(parseQuery(body, nowMs), await rollups.layout(), merchantId).source.kind;
}

function typeIs(...types: string[]): (event: TrackedEvent) => boolean {
  return (event) => types.includes(event.type);
}

// ----- tests ---------------------------------------------------------------------------------

describe('query execute', () => {
  before(storeAll);

  test('the fixture exercises what the queries need: excluded events, both merchants, every path', () => {
    assert.ok(shopEvents.some((event) => rules.isExcluded(event)), 'some events are excluded');
    assert.ok(shopEvents.some((event) => event.sessionId === null), 'some events have no session');
    for (const path of paths) assert.ok(shopEvents.some((event) => event.page?.path === path), path);
  });

  test('totals over a range not aligned to hours use minute cells and raw edges and equal the truth', async () => {
    const fromMs = startMs + time.dayMs + 10 * time.hourMs + 7 * time.minuteMs + 13_500;
    const toMs = startMs + 4 * time.dayMs + 3 * time.hourMs + 52 * time.minuteMs + 1_000;
    const body = { metrics: allMetrics, date_range: [iso(fromMs), iso(toMs)] };
    const plan = planQuery(parseQuery(body, nowMs), await rollups.layout(), shop);
    assert.equal(plan.source.kind, 'rollup');
    if (plan.source.kind === 'rollup') {
      assert.deepEqual(new Set(plan.source.reads.map((read) => read.granularity)), new Set(['day', 'hour', 'minute']));
      assert.equal(plan.scans.length, 2, 'a sub-minute raw edge at each end');
    }
    const response = await query(body);
    assert.equal(response.results.length, 1);
    assert.deepEqual(response.results[0]!.dimensions, []);
    assertMetrics(response.results[0]!.metrics, truth({ fromMs, toMs }).get(''), 'totals');
    assert.equal(response.meta.total_rows, 1);
    assert.equal(response.meta.version, 'analytics@1');
    assert.equal(typeof response.meta.took_ms, 'number');
  });

  test('a range starting and ending on an event counts the first and not the last (half-open)', async () => {
    const onHour = shopEvents.filter((event) => event.timestampMs % time.hourMs === 0 && !rules.isExcluded(event));
    assert.ok(onHour.length >= 2);
    const fromMs = onHour[0]!.timestampMs;
    const toMs = onHour[1]!.timestampMs === fromMs ? fromMs + time.hourMs : onHour[1]!.timestampMs;
    const response = await query({ metrics: ['events'], date_range: [iso(fromMs), iso(toMs)] });
    assert.equal(response.results[0]!.metrics[0], truth({ fromMs, toMs }).get('')?.events ?? 0);
  });

  test('a daily series in UTC has one row per day, zero-filled outside the data, each equal to the truth', async () => {
    const fromMs = startMs - 2 * time.dayMs;
    const response = await query({ metrics: allMetrics, date_range: [iso(fromMs), iso(endMs)], dimensions: ['time:day'] });
    assert.equal(response.results.length, days + 2);
    assert.equal(response.meta.total_rows, days + 2);
    response.results.forEach((row, index) => {
      const dayMs = fromMs + index * time.dayMs;
      assert.deepEqual(row.dimensions, [iso(dayMs).replace('.000Z', '+00:00')]);
      assertMetrics(row.metrics, truth({ fromMs: dayMs, toMs: dayMs + time.dayMs }).get(''), `day ${index}`);
    });
    assert.deepEqual(response.results[0]!.metrics, [0, 0, 0, 0]);
  });

  test('a daily series in Europe/Berlin across the DST change sums local days of 24 and 23 hours', async () => {
    const response = await query({
      metrics: allMetrics, date_range: ['2026-03-26T00:00:00+01:00', '2026-04-01T00:00:00+02:00'],
      dimensions: ['time:day'], timezone: 'Europe/Berlin',
    });
    const starts = ['2026-03-26T00:00:00+01:00', '2026-03-27T00:00:00+01:00', '2026-03-28T00:00:00+01:00', '2026-03-29T00:00:00+01:00',
      '2026-03-30T00:00:00+02:00', '2026-03-31T00:00:00+02:00', '2026-04-01T00:00:00+02:00'];
    assert.deepEqual(response.results.map((row) => row.dimensions[0]), starts.slice(0, -1));
    response.results.forEach((row, index) => {
      const expected = truth({ fromMs: Date.parse(starts[index]!), toMs: Date.parse(starts[index + 1]!) }).get('');
      assertMetrics(row.metrics, expected, starts[index]!);
    });
  });

  test('a daily series in Asia/Kolkata (+05:30) is built from hour and minute cells and equals the truth', async () => {
    const body = { metrics: allMetrics, date_range: ['2026-03-27T00:00:00+05:30', '2026-03-31T00:00:00+05:30'], dimensions: ['time:day'], timezone: 'Asia/Kolkata' };
    const plan = planQuery(parseQuery(body, nowMs), await rollups.layout(), shop);
    assert.ok(plan.source.kind === 'rollup' && plan.source.reads.some((read) => read.granularity === 'minute'));
    const response = await query(body);
    assert.equal(response.results.length, 4);
    response.results.forEach((row, index) => {
      const dayMs = Date.parse('2026-03-27T00:00:00+05:30') + index * time.dayMs;
      assert.equal(row.dimensions[0], `2026-03-${27 + index}T00:00:00+05:30`);
      assertMetrics(row.metrics, truth({ fromMs: dayMs, toMs: dayMs + time.dayMs }).get(''), row.dimensions[0]!);
    });
  });

  test('paths by day in Asia/Kolkata take raw scans for the half hours no cell fits', async () => {
    const fromMs = Date.parse('2026-03-27T00:00:00+05:30');
    const body = { metrics: allMetrics, date_range: [iso(fromMs), iso(fromMs + 3 * time.dayMs)], dimensions: ['time:day', 'event:path'], timezone: 'Asia/Kolkata' };
    const plan = planQuery(parseQuery(body, nowMs), await rollups.layout(), shop);
    assert.ok(plan.source.kind === 'rollup' && plan.scans.length > 0);
    const response = await query(body);
    const expected = truth({ fromMs, toMs: fromMs + 3 * time.dayMs, key: (event) => `${Math.floor((event.timestampMs - fromMs) / time.dayMs)}|${dimensionValue(event, 'event:path')}` });
    assert.equal(response.meta.total_rows, expected.size);
    for (const row of response.results) {
      const day = Number(row.dimensions[0]!.slice(8, 10)) - 27;
      assertMetrics(row.metrics, expected.get(`${day}|${row.dimensions[1]}`), row.dimensions.join(' '));
    }
    // Default order with a time dimension: time ascending, then the first metric descending.
    const order = response.results.map((row) => [row.dimensions[0]!, -(row.metrics[0] as number), row.dimensions[1]!] as const);
    const sorted = [...order].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0)));
    assert.deepEqual(order, sorted);
  });

  test('top paths: events descending with ties by path, limit and offset page it, total_rows counts all', async () => {
    const body = { metrics: ['events', 'users'], date_range: [iso(startMs), iso(endMs)], dimensions: ['event:path'] };
    assert.equal(await sourceOf(body), 'rollup');
    const expected = [...truth({ fromMs: startMs, toMs: endMs, key: (event) => dimensionValue(event, 'event:path') })]
      .sort((a, b) => b[1].events - a[1].events || (a[0] < b[0] ? -1 : 1));
    const full = await query(body);
    assert.deepEqual(full.results.map((row) => row.dimensions[0]), expected.map(([path]) => path));
    assert.ok(full.results.some((row) => row.dimensions[0] === '(none)'), 'events without a page are the (none) path');
    const page = await query({ ...body, limit: 3, offset: 1 });
    assert.equal(page.meta.total_rows, expected.length);
    assert.deepEqual(page.results.map((row) => row.dimensions[0]), expected.slice(1, 4).map(([path]) => path));
    page.results.forEach((row, index) => {
      const [, row_truth] = expected[index + 1]!;
      assert.equal(row.metrics[0], row_truth.events);
      assertClose(row.metrics[1], row_truth.users.size, `users of ${row.dimensions[0]}`);
    });
    const past = await query({ ...body, offset: expected.length });
    assert.deepEqual(past.results, []);
    assert.equal(past.meta.total_rows, expected.length);
  });

  test('order_by sorts by the named dimension or metric in the named direction', async () => {
    const body = { metrics: ['events', 'users'], date_range: [iso(startMs), iso(endMs)], dimensions: ['event:path'] };
    const byPath = await query({ ...body, order_by: [['event:path', 'desc']] });
    const names = byPath.results.map((row) => row.dimensions[0]!);
    assert.deepEqual(names, [...names].sort().reverse());
    const byUsers = await query({ ...body, order_by: [['users', 'asc']] });
    const users = byUsers.results.map((row) => row.metrics[1] as number);
    assert.deepEqual(users, [...users].sort((a, b) => a - b));
  });

  test('is_not and case-insensitive contains filters on the breakdown dimension are answered from rollups', async () => {
    const body = {
      metrics: allMetrics, date_range: [iso(startMs), iso(endMs)], dimensions: ['event:path'],
      filters: [['is_not', 'event:path', ['/blog/b']], ['contains', 'event:path', ['BLOG', 'docs']]],
    };
    assert.equal(await sourceOf(body), 'rollup');
    const response = await query(body);
    assert.deepEqual(response.results.map((row) => row.dimensions[0]).sort(), ['/Docs/Start', '/blog/a']);
    const expected = truth({ fromMs: startMs, toMs: endMs, key: (event) => dimensionValue(event, 'event:path') });
    for (const row of response.results) assertMetrics(row.metrics, expected.get(row.dimensions[0]!), row.dimensions[0]!);
  });

  test('an event:type filter without a breakdown reads event:type cells; is values push down', async () => {
    const body = { metrics: allMetrics, date_range: [iso(startMs + 1234), iso(endMs - 5678)], filters: [['is', 'event:type', ['purchase', 'signup']]] };
    const plan = planQuery(parseQuery(body, nowMs), await rollups.layout(), shop);
    assert.ok(plan.source.kind === 'rollup' && plan.source.dimension === 'event:type');
    assert.deepEqual(plan.source.kind === 'rollup' ? plan.source.values : null, ['purchase', 'signup']);
    const response = await query(body);
    assertMetrics(response.results[0]!.metrics, truth({ fromMs: startMs + 1234, toMs: endMs - 5678, keep: typeIs('purchase', 'signup') }).get(''), 'purchases and signups');
  });

  test('is filters that share no value answer zero, not an error', async () => {
    const response = await query({
      metrics: ['events'], date_range: [iso(startMs), iso(endMs)],
      filters: [['is', 'event:type', ['purchase']], ['is', 'event:type', ['signup']]],
    });
    assert.deepEqual(response.results, [{ dimensions: [], metrics: [0] }]);
  });

  test('an event:type filter with a path breakdown is a raw scan and equals the truth', async () => {
    const body = { metrics: allMetrics, date_range: [iso(startMs), iso(endMs)], dimensions: ['event:path'], filters: [['is', 'event:type', ['pageview']]] };
    assert.equal(await sourceOf(body), 'scan');
    const response = await query(body);
    const expected = truth({ fromMs: startMs, toMs: endMs, keep: typeIs('pageview'), key: (event) => dimensionValue(event, 'event:path') });
    assert.equal(response.meta.total_rows, expected.size);
    for (const row of response.results) assertMetrics(row.metrics, expected.get(row.dimensions[0]!), row.dimensions[0]!);
    assert.equal(response.meta.version, 'analytics@1');
  });

  test('is_not and contains on the raw-scan path: countries of visits not from google, sources containing "O"', async () => {
    const body = {
      metrics: allMetrics, date_range: [iso(startMs), iso(endMs)], dimensions: ['visit:country', 'time:day'],
      filters: [['is_not', 'visit:source', ['google']], ['contains', 'visit:source', ['O']]],
    };
    assert.equal(await sourceOf(body), 'scan');
    const response = await query(body);
    const keep = (event: TrackedEvent): boolean => {
      const source = dimensionValue(event, 'visit:source')!;
      return source !== 'google' && source.toLowerCase().includes('o');
    };
    const expected = truth({ fromMs: startMs, toMs: endMs, keep, key: (event) => `${dimensionValue(event, 'visit:country')}|${Math.floor((event.timestampMs - startMs) / time.dayMs)}` });
    assert.equal(response.meta.total_rows, expected.size);
    for (const row of response.results) {
      const day = (Date.parse(row.dimensions[1]!) - startMs) / time.dayMs;
      assertMetrics(row.metrics, expected.get(`${row.dimensions[0]}|${day}`), row.dimensions.join(' '));
    }
    assert.ok(response.results.some((row) => row.dimensions[0] === '(none)'), 'a filter or breakdown on (none) works like any value');
  });

  test('revenue is split by event:currency from rollups; without the split only the merchant currency counts', async () => {
    const range = [iso(startMs), iso(endMs)];
    const split = await query({ metrics: ['revenue', 'events'], date_range: range, dimensions: ['event:currency'] });
    const expected = truth({ fromMs: startMs, toMs: endMs, key: (event) => dimensionValue(event, 'event:currency'), allCurrencies: true });
    assert.deepEqual(new Set(split.results.map((row) => row.dimensions[0])), new Set(['USD', 'EUR', 'GBP', '(none)']));
    for (const row of split.results) {
      assert.equal(row.metrics[0], Number(expected.get(row.dimensions[0]!)!.revenue), `revenue in ${row.dimensions[0]}`);
      assert.equal(row.metrics[1], expected.get(row.dimensions[0]!)!.events);
    }
    const total = await query({ metrics: ['revenue'], date_range: range });
    assert.equal(total.results[0]!.metrics[0], Number(truth({ fromMs: startMs, toMs: endMs }).get('')!.revenue));
    // A currency filter without the split keeps the rule: EUR purchases add no USD revenue.
    const euro = await query({ metrics: ['revenue', 'events'], date_range: range, filters: [['is', 'event:currency', ['EUR', 'USD']]] });
    assert.equal(euro.results[0]!.metrics[0], Number(expected.get('USD')!.revenue));
    assert.equal(euro.results[0]!.metrics[1], expected.get('USD')!.events + expected.get('EUR')!.events);
  });

  test('revenue split by currency and country on the raw-scan path sums each currency on its own', async () => {
    const body = { metrics: allMetrics, date_range: [iso(startMs), iso(endMs)], dimensions: ['event:currency', 'visit:country'] };
    assert.equal(await sourceOf(body), 'scan');
    const response = await query(body);
    const expected = truth({ fromMs: startMs, toMs: endMs, allCurrencies: true, key: (event) => `${dimensionValue(event, 'event:currency')}|${dimensionValue(event, 'visit:country')}` });
    assert.equal(response.meta.total_rows, expected.size);
    for (const row of response.results) assertMetrics(row.metrics, expected.get(row.dimensions.join('|')), row.dimensions.join(' '));
  });

  test('prop:<name> breakdowns count only events that have the property; numbers come out as strings', async () => {
    const range = [iso(startMs), iso(endMs)];
    const plans = await query({ metrics: allMetrics, date_range: range, dimensions: ['prop:plan'] });
    const expected = truth({ fromMs: startMs, toMs: endMs, key: (event) => dimensionValue(event, 'prop:plan') });
    assert.deepEqual(new Set(plans.results.map((row) => row.dimensions[0])), new Set(['free', 'pro', 'team']));
    for (const row of plans.results) assertMetrics(row.metrics, expected.get(row.dimensions[0]!), row.dimensions[0]!);
    const seats = await query({ metrics: ['events'], date_range: range, dimensions: ['prop:seats'], order_by: [['prop:seats', 'asc']] });
    assert.deepEqual(seats.results.map((row) => row.dimensions[0]), ['1', '10', '3']);
  });

  test('a prop breakdown filtered by event:type is a raw scan; an is_not on a prop skips events without it', async () => {
    const body = {
      metrics: allMetrics, date_range: [iso(startMs), iso(endMs)], dimensions: ['prop:beta'],
      filters: [['is', 'event:type', ['pageview', 'signup']], ['is_not', 'prop:plan', ['team']]],
    };
    assert.equal(await sourceOf(body), 'scan');
    const response = await query(body);
    const keep = (event: TrackedEvent): boolean => event.type !== 'purchase' && event.properties?.plan !== undefined && event.properties.plan !== 'team';
    const expected = truth({ fromMs: startMs, toMs: endMs, keep, key: (event) => dimensionValue(event, 'prop:beta') });
    assert.deepEqual(new Set(response.results.map((row) => row.dimensions[0])), new Set(expected.keys()));
    for (const row of response.results) assertMetrics(row.metrics, expected.get(row.dimensions[0]!), row.dimensions[0]!);
    // The same is_not alone is answered from prop:plan cells and agrees with the scan's rule.
    const cells = await query({ metrics: ['events'], date_range: [iso(startMs), iso(endMs)], filters: [['is_not', 'prop:plan', ['team']]] });
    const withPlan = truth({ fromMs: startMs, toMs: endMs, keep: (event) => event.properties?.plan !== undefined && event.properties.plan !== 'team' }).get('')!;
    assert.equal(cells.results[0]!.metrics[0], withPlan.events);
  });

  test('a minute series of paths has no minute cells and is scanned; a minute series of totals uses minute cells', async () => {
    const fromMs = startMs + 2 * time.dayMs + 9 * time.hourMs;
    const range = [iso(fromMs), iso(fromMs + 3 * time.hourMs)];
    const pathPlan = planQuery(parseQuery({ metrics: ['events'], date_range: range, dimensions: ['time:minute', 'event:path'] }, nowMs), await rollups.layout(), shop);
    assert.ok(pathPlan.source.kind === 'rollup' && pathPlan.source.reads.length === 0 && pathPlan.scans.length === 1);
    const response = await query({ metrics: ['events'], date_range: range, dimensions: ['time:minute'] });
    assert.equal(response.results.length, 180);
    response.results.forEach((row, index) => {
      const minuteMs = fromMs + index * time.minuteMs;
      assert.equal(row.metrics[0], truth({ fromMs: minuteMs, toMs: minuteMs + time.minuteMs }).get('')?.events ?? 0, row.dimensions[0]);
    });
    const paths = await query({ metrics: ['events'], date_range: range, dimensions: ['time:minute', 'event:path'] });
    const expected = truth({ fromMs, toMs: fromMs + 3 * time.hourMs, key: (event) => `${iso(Math.floor(event.timestampMs / time.minuteMs) * time.minuteMs).replace('.000Z', '+00:00')}|${dimensionValue(event, 'event:path')}` });
    assert.equal(paths.meta.total_rows, expected.size);
    for (const row of paths.results) assert.equal(row.metrics[0], expected.get(row.dimensions.join('|'))!.events);
  });

  test('"today" at exactly local midnight is an empty series and a zero total, not an error', async () => {
    const midnightMs = Date.parse('2026-03-29T00:00:00+01:00');
    const series = await runQuery({ metrics: ['events'], date_range: 'today', dimensions: ['time:hour'], timezone: 'Europe/Berlin' }, context, midnightMs);
    assert.deepEqual(series.results, []);
    assert.equal(series.meta.total_rows, 0);
    const total = await runQuery({ metrics: ['events', 'users'], date_range: 'today', timezone: 'Europe/Berlin' }, context, midnightMs);
    assert.deepEqual(total.results, [{ dimensions: [], metrics: [0, 0] }]);
    const oneHour = await runQuery({ metrics: ['events'], date_range: 'today', dimensions: ['time:hour'], timezone: 'Europe/Berlin' }, context, midnightMs + time.hourMs);
    assert.deepEqual(oneHour.results, [{ dimensions: ['2026-03-29T00:00:00+01:00'], metrics: [truth({ fromMs: midnightMs, toMs: midnightMs + time.hourMs }).get('')?.events ?? 0] }]);
  });

  test('too_many_buckets comes from execution for an hourly series longer than the bucket limit', async () => {
    await assert.rejects(query({ metrics: ['events'], date_range: ['2025-01-01T00:00:00Z', '2026-01-01T00:00:00Z'], dimensions: ['time:hour'] }),
      (error: unknown) => error instanceof TallyError && error.code === 'too_many_buckets');
  });
});

describe('query execute: the scan bound', () => {
  before(storeAll);
  const scanBody = (fromMs: number, toMs: number): Record<string, unknown> => ({
    metrics: ['events'], date_range: [iso(fromMs), iso(toMs)], dimensions: ['event:path', 'visit:source'],
  });

  test('a scan of exactly the bound succeeds and one event fewer allowed is query_too_large', async () => {
    // Under an hour, so no totals cell fits and the refusal comes from the scan itself.
    const fromMs = startMs + 30 * time.hourMs + 10 * time.minuteMs;
    const toMs = fromMs + 50 * time.minuteMs;
    const stored = shopEvents.filter((event) => event.timestampMs >= fromMs && event.timestampMs < toMs).length;
    assert.ok(stored >= 2, `the window holds ${stored} events`);
    await assert.doesNotReject(query(scanBody(fromMs, toMs), { scanEventsMax: stored }));
    await assert.rejects(query(scanBody(fromMs, toMs), { scanEventsMax: stored - 1 }), (error: unknown) => {
      assert.ok(error instanceof TallyError && error.code === 'query_too_large');
      assert.match(error.message, /narrow the date range/);
      return true;
    });
  });

  /** The memory event store, counting scan calls. */
  function countingScans(): { store: EventStore; scans: () => number } {
    let scans = 0;
    const store: EventStore = {
      putBatch: (items) => events.putBatch(items),
      scan: (request) => {
        scans++;
        return events.scan(request);
      },
      ping: () => events.ping(),
      close: () => events.close(),
    };
    return { store, scans: () => scans };
  }

  test('a scan the totals cells already show too large is refused before reading events, with a range suggestion', async () => {
    const { store: counting, scans } = countingScans();
    await assert.rejects(query(scanBody(startMs, endMs), { scanEventsMax: 100, events: counting }), (error: unknown) => {
      assert.ok(error instanceof TallyError && error.code === 'query_too_large');
      assert.match(error.message, /about \d+ (hours|days)/);
      return true;
    });
    assert.equal(scans(), 0);
  });

  test('a minute breakdown with no minute cells is refused from the totals cells too, before any scan', async () => {
    const fromMs = startMs + 2 * time.dayMs;
    const { store, scans } = countingScans();
    await assert.rejects(
      query({ metrics: ['events'], date_range: [iso(fromMs), iso(fromMs + 12 * time.hourMs)], dimensions: ['time:minute', 'event:path'] }, { scanEventsMax: 10, events: store }),
      (error: unknown) => error instanceof TallyError && error.code === 'query_too_large',
    );
    assert.equal(scans(), 0);
  });

  test('rollup queries are not limited by the scan bound beyond their raw edges', async () => {
    const response = await query({ metrics: ['events'], date_range: [iso(startMs), iso(endMs)], dimensions: ['event:path'] }, { scanEventsMax: 0 });
    assert.ok(response.meta.total_rows > 0);
  });
});

describe('query execute: tenants and generations', () => {
  before(storeAll);

  test("another merchant's data never appears, on the rollup path or the scan path", async () => {
    const range = [iso(startMs), iso(endMs)];
    const fromRollups = await query({ metrics: ['events'], date_range: range, dimensions: ['event:path'] });
    const fromScan = await query({ metrics: ['events'], date_range: range, dimensions: ['event:path', 'event:type'] });
    for (const row of [...fromRollups.results, ...fromScan.results]) assert.notEqual(row.dimensions[0], '/other-only');
    const total = await query({ metrics: ['events', 'revenue'], date_range: range });
    const expected = truth({ fromMs: startMs, toMs: endMs }).get('')!;
    assert.deepEqual(total.results[0]!.metrics, [expected.events, Number(expected.revenue)]);
    const theirs = await query({ metrics: ['events'], date_range: range, dimensions: ['event:path'] }, { merchantId: other, merchantCurrency: 'EUR' });
    const expectedTheirs = truth({ fromMs: startMs, toMs: endMs, source: otherEvents, key: (event) => dimensionValue(event, 'event:path') });
    assert.deepEqual(new Set(theirs.results.map((row) => row.dimensions[0])), new Set(['/other-only', '(none)']));
    for (const row of theirs.results) assert.equal(row.metrics[0], expectedTheirs.get(row.dimensions[0]!)!.events);
  });

  test('a piece inside an overlay reads the overlay generation; the rest reads the base; version names both', async () => {
    // Rebuild days 2 and 3 with rules that also exclude Firefox, as a reprocessing job would.
    const rulesV2 = defineRules({ version: 2, botBrowserPatterns: ['bot', 'firefox'], spamSources: ['spam.example'] });
    const overlayFromMs = startMs + 2 * time.dayMs;
    const overlayToMs = startMs + 4 * time.dayMs;
    const job = await rollups.startReprocess({ id: 'job-1', stream: 'analytics:events', merchantId: shop, fromMs: overlayFromMs, toMs: overlayToMs, logicVersion: rulesV2.logicVersion, nowMs });
    const builder = new CellBuilder(() => 'USD');
    for (const event of shopEvents) {
      if (event.timestampMs >= overlayFromMs && event.timestampMs < overlayToMs && !rulesV2.isExcluded(event)) builder.add(event, job.generation);
    }
    await rollups.writeReprocessStep({ jobId: job.id, cells: builder.cells(), doneThroughMs: overlayToMs, eventsDone: 1, eventsTotal: null, nowMs });
    const body = { metrics: ['events'], date_range: [iso(startMs), iso(endMs)], dimensions: ['time:day'] };
    const building = await query(body);
    assert.equal(building.meta.version, 'analytics@1', 'a generation still building is not read');
    await rollups.finishReprocess(job.id, nowMs);

    const response = await query(body);
    assert.equal(response.meta.version, 'analytics@1,analytics@2');
    response.results.forEach((row, index) => {
      const dayMs = startMs + index * time.dayMs;
      const inOverlay = dayMs >= overlayFromMs && dayMs < overlayToMs;
      const keep = inOverlay ? (event: TrackedEvent) => !rulesV2.isExcluded(event) : undefined;
      assert.equal(row.metrics[0], truth({ fromMs: dayMs, toMs: dayMs + time.dayMs, keep }).get('')?.events ?? 0, `day ${index}`);
    });
    const firefoxDay = shopEvents.some((event) => event.visit.browser === 'Firefox' && event.timestampMs >= overlayFromMs && event.timestampMs < overlayToMs);
    assert.ok(firefoxDay, 'the overlay changes something');
    const outside = await query({ ...body, date_range: [iso(startMs), iso(overlayFromMs)] });
    assert.equal(outside.meta.version, 'analytics@1');
    assert.equal(await sourceOf({ metrics: ['events'], date_range: [iso(startMs), iso(endMs)] }, other), 'rollup');
    const theirs = await query({ metrics: ['events'], date_range: [iso(startMs), iso(endMs)] }, { merchantId: other, merchantCurrency: 'EUR' });
    assert.equal(theirs.meta.version, 'analytics@1', "another merchant's overlay does not apply");
  });
});
