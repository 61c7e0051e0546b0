// End to end over HTTP, unchanged on both deployments (embedded SQLite; Kafka + Cassandra + Redis): two merchants, a generated stream with resent
// duplicates, late and invalid events; wait until processed; every query compared with ground
// truth computed here, independently of Tally's rollup and query code. And tenant isolation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestTally, type TestDeployment, type TestTally } from '../support/tally.ts';
import { enginesMissing } from '../support/engines.ts';
import { seededRandom } from '../../src/adapters/memory/prng.ts';

const dayMs = 86_400_000;
const nowMs = Date.now();
const todayMs = Math.floor(nowMs / dayMs) * dayMs;
const rangeFrom = todayMs - 6 * dayMs;
const rangeTo = todayMs + dayMs;
const range = [new Date(rangeFrom).toISOString(), new Date(rangeTo).toISOString()];

interface SentEvent {
  id: string;
  type: string;
  timestamp: string;
  user_id: string;
  session_id: string;
  revenue?: { amount: number; currency: string };
  properties?: Record<string, string>;
  context: { page: { url: string }; user_agent: string };
}

interface Truth {
  path: string;
  utm: string;
  tsMs: number;
  event: SentEvent;
}

const userAgent = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const paths = ['/', '/pricing', '/docs', '/blog', '/checkout'];
const pathWeights = [40, 25, 15, 12, 8];

function generate(seed: number, merchant: string, count: number): Truth[] {
  const random = seededRandom(seed);
  const weighted = (): string => {
    let r = random() * 100;
    for (let i = 0; i < paths.length; i++) if ((r -= pathWeights[i]!) < 0) return paths[i]!;
    return paths[0]!;
  };
  const out: Truth[] = [];
  for (let i = 0; i < count; i++) {
    // Within the last ~5.5 days: inside the 7-day late window, and some are "late" (days old).
    const tsMs = nowMs - Math.floor(random() * 5.5 * dayMs);
    const path = weighted();
    const utm = ['news', 'ads', 'none'][Math.floor(random() * 3)]!;
    const purchase = random() < 0.15;
    const event: SentEvent = {
      id: `${merchant}-${i}`, type: purchase ? 'purchase' : 'pageview', timestamp: new Date(tsMs).toISOString(),
      user_id: `user-${Math.floor(random() * 300)}`, session_id: `sess-${Math.floor(random() * 700)}`,
      context: { page: { url: `https://shop.example${path}${utm === 'none' ? '' : `?utm_source=${utm}`}` }, user_agent: userAgent },
    };
    if (purchase) event.revenue = { amount: 500 + Math.floor(random() * 10_000), currency: random() < 0.8 ? 'USD' : 'EUR' };
    if (random() < 0.5) event.properties = { plan: random() < 0.5 ? 'free' : 'pro' };
    out.push({ path, utm: utm === 'none' ? '(none)' : utm, tsMs, event });
  }
  return out;
}

for (const deployment of ['embedded', 'distributed'] as const) {
  const missing = deployment === 'distributed' ? await enginesMissing('kafka', 'cassandra', 'redis') : null;
  if (missing) test(`${deployment} pipeline end to end`, (t) => t.skip(missing));
  else describePipeline(deployment);
}

function describePipeline(deployment: TestDeployment): void {
  describe(`${deployment} pipeline end to end`, () => {
    let tally: TestTally;
    const merchants: Record<'a' | 'b', { id: string; writeKey: string; secretKey: string; truth: Truth[] }> = {} as never;

    before(async () => {
      tally = await startTestTally({ deployment });
      tally.startProcessor();
      for (const [name, seed, count] of [['a', 11, 2400], ['b', 22, 900]] as const) {
        const merchant = await tally.createMerchant(`shop-${name}`, 'USD');
        merchants[name] = { ...merchant, truth: generate(seed, name, count) };
      }
      for (const name of ['a', 'b'] as const) {
        const { writeKey, truth } = merchants[name];
        const events = truth.map((t) => t.event);
        // Batches of 100, then a resend of a whole batch and of single events: they count once.
        for (let i = 0; i < events.length; i += 100) await post(writeKey, events.slice(i, i + 100), 0);
        await post(writeKey, events.slice(0, 100), 0);
        for (const event of events.slice(500, 520)) await post(writeKey, event, 0);
      }
      await tally.waitCaughtUp();
    });

    after(async () => tally?.close());

    async function post(writeKey: string, payload: unknown, expectedRejected: number): Promise<{ accepted: number; rejected: { index: number; code: string }[] }> {
      const response = await tally.app.inject({ method: 'POST', url: '/v1/events', headers: { authorization: `Bearer ${writeKey}` }, payload: payload as object });
      assert.equal(response.statusCode, 202, response.body);
      const body = response.json() as { accepted: number; rejected: { index: number; code: string }[] };
      assert.equal(body.rejected.length, expectedRejected, response.body);
      return body;
    }

    async function query(secretKey: string, body: object): Promise<{ results: { dimensions: (string | null)[]; metrics: number[] }[]; meta: { total_rows: number; version: string } }> {
      const response = await tally.app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${secretKey}` }, payload: body });
      assert.equal(response.statusCode, 200, response.body);
      return response.json();
    }

    const within = (actual: number, expected: number, ratio: number, what: string): void =>
      assert.ok(Math.abs(actual - expected) <= Math.max(1, expected * ratio), `${what}: ${actual} vs ${expected}`);

    test('invalid events are rejected per item while the valid ones in the batch are kept', async () => {
      const { writeKey } = merchants.b;
      const batch = [
        { id: 'bad-type', type: 'has space' },
        { id: 'future', type: 'pageview', timestamp: new Date(nowMs + 3_600_000).toISOString() },
        { id: 'too-old', type: 'pageview', timestamp: new Date(nowMs - 8 * dayMs).toISOString() },
        { id: 'bad-ts', type: 'pageview', timestamp: 'yesterday' },
        { id: 'bad-revenue', type: 'purchase', revenue: { amount: 1.5, currency: 'USD' } },
        { id: 'valid-one', type: 'marker_event', timestamp: new Date(nowMs - 1000).toISOString(), user_id: 'marker-user' },
      ];
      const body = await post(writeKey, batch, 5);
      assert.equal(body.accepted, 1);
      assert.deepEqual(body.rejected.map((r) => [r.index, r.code]), [
        [0, 'invalid_event_type'], [1, 'timestamp_in_future'], [2, 'timestamp_too_old'], [3, 'invalid_timestamp'], [4, 'invalid_revenue'],
      ]);
      const none = await tally.app.inject({ method: 'POST', url: '/v1/events', headers: { authorization: `Bearer ${writeKey}` }, payload: [{ type: '' }] });
      assert.equal(none.statusCode, 400);
      assert.equal((none.json() as { error: { code: string } }).error.code, 'no_valid_events');
      await tally.waitCaughtUp();
      const marker = await query(merchants.b.secretKey, { metrics: ['events'], date_range: range, filters: [['is', 'event:type', ['marker_event']]] });
      assert.deepEqual(marker.results.map((r) => r.metrics), [[1]]);
    });

    test('totals over the range equal the ground truth (events and revenue exact, users and sessions within 2%)', async () => {
      const { truth, secretKey } = merchants.a;
      const result = await query(secretKey, { metrics: ['events', 'users', 'sessions', 'revenue'], date_range: range });
      const [events, users, sessions, revenue] = result.results[0]!.metrics as [number, number, number, number];
      assert.equal(events, truth.length);
      within(users, new Set(truth.map((t) => t.event.user_id)).size, 0.02, 'users');
      within(sessions, new Set(truth.map((t) => t.event.session_id)).size, 0.02, 'sessions');
      assert.equal(revenue, truth.reduce((sum, t) => sum + (t.event.revenue?.currency === 'USD' ? t.event.revenue.amount : 0), 0));
      assert.equal(result.meta.version, 'analytics@1');
    });

    test('the daily series has every day of the range, with exact counts and revenue per day', async () => {
      const { truth, secretKey } = merchants.a;
      const result = await query(secretKey, { metrics: ['events', 'revenue'], date_range: range, dimensions: ['time:day'] });
      assert.equal(result.results.length, 7);
      for (const row of result.results) {
        const dayStart = Date.parse(row.dimensions[0]!);
        const inDay = truth.filter((t) => t.tsMs >= dayStart && t.tsMs < dayStart + dayMs);
        assert.deepEqual(row.metrics, [inDay.length, inDay.reduce((s, t) => s + (t.event.revenue?.currency === 'USD' ? t.event.revenue.amount : 0), 0)], row.dimensions[0]!);
      }
    });

    test('top paths come back in order with limit, offset and total_rows', async () => {
      const { truth, secretKey } = merchants.a;
      const counts = new Map<string, number>();
      for (const t of truth) counts.set(t.path, (counts.get(t.path) ?? 0) + 1);
      const expected = [...counts].sort((x, y) => y[1] - x[1]);
      const top = await query(secretKey, { metrics: ['events'], date_range: range, dimensions: ['event:path'], order_by: [['events', 'desc']], limit: 3 });
      assert.deepEqual(top.results.map((r) => [r.dimensions[0], r.metrics[0]]), expected.slice(0, 3));
      assert.equal(top.meta.total_rows, paths.length);
      const rest = await query(secretKey, { metrics: ['events'], date_range: range, dimensions: ['event:path'], order_by: [['events', 'desc']], limit: 3, offset: 3 });
      assert.deepEqual(rest.results.map((r) => [r.dimensions[0], r.metrics[0]]), expected.slice(3));
    });

    test('revenue splits by currency; a type filter and a cross-dimension filter (raw scan) match the truth', async () => {
      const { truth, secretKey } = merchants.a;
      const byCurrency = await query(secretKey, { metrics: ['revenue'], date_range: range, dimensions: ['event:currency'], filters: [['is', 'event:type', ['purchase']]] });
      for (const currency of ['USD', 'EUR']) {
        const sum = truth.reduce((s, t) => s + (t.event.revenue?.currency === currency ? t.event.revenue.amount : 0), 0);
        assert.equal(byCurrency.results.find((r) => r.dimensions[0] === currency)?.metrics[0], sum, currency);
      }
      const purchases = await query(secretKey, { metrics: ['events'], date_range: range, filters: [['is', 'event:type', ['purchase']]] });
      assert.equal(purchases.results[0]?.metrics[0], truth.filter((t) => t.event.type === 'purchase').length);
      const newsPaths = await query(secretKey, { metrics: ['events'], date_range: range, dimensions: ['event:path'], filters: [['is', 'visit:utm_source', ['news']]] });
      for (const path of paths) {
        const expected = truth.filter((t) => t.utm === 'news' && t.path === path).length;
        assert.equal(newsPaths.results.find((r) => r.dimensions[0] === path)?.metrics[0] ?? 0, expected, path);
      }
      const plans = await query(secretKey, { metrics: ['events'], date_range: range, dimensions: ['prop:plan'] });
      for (const plan of ['free', 'pro']) {
        assert.equal(plans.results.find((r) => r.dimensions[0] === plan)?.metrics[0], truth.filter((t) => t.event.properties?.plan === plan).length, plan);
      }
    });

    test('an hourly series in Europe/Berlin adds up to the same total', async () => {
      const { truth, secretKey } = merchants.a;
      const result = await query(secretKey, { metrics: ['events'], date_range: range, dimensions: ['time:hour'], timezone: 'Europe/Berlin' });
      assert.ok(result.results.length >= 7 * 24 - 1 && result.results.length <= 7 * 24 + 1, `hour buckets: ${result.results.length}`);
      assert.match(result.results[0]!.dimensions[0]!, /\+0[12]:00$/);
      assert.equal(result.results.reduce((sum, r) => sum + r.metrics[0]!, 0), truth.length);
    });

    test('/metrics reports accepted and rejected events by code, processing, lag and freshness', async () => {
      await tally.waitCaughtUp();
      const response = await tally.app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(response.statusCode, 200);
      const value = (pattern: RegExp): number => Number(pattern.exec(response.body)?.[1] ?? Number.NaN);
      const sent = merchants.a.truth.length + merchants.b.truth.length;
      assert.ok(value(/^tally_events_accepted_total (\d+)$/m) >= sent + 120, 'accepted counts every 202-ed event, resends included');
      assert.equal(value(/^tally_events_rejected_total\{code="timestamp_too_old"\} (\d+)$/m), 1);
      assert.equal(value(/^tally_processor_lag_records\{processor="analytics"\} (\d+)$/m), 0);
      assert.ok(value(/^tally_analytics_events_processed_total\{outcome="counted"\} (\d+)$/m) >= sent);
      assert.ok(value(/^tally_analytics_events_processed_total\{outcome="duplicate"\} (\d+)$/m) >= 120, 'resends seen as duplicates');
      assert.ok(value(/^tally_analytics_freshness_seconds ([\d.e+-]+)$/m) >= 0);
      assert.match(response.body, /^tally_http_request_duration_seconds_bucket\{le="0.005",route="\/v1\/events",method="POST",status="202"\} \d+$/m);
    });

    test('a merchant sees only its own data, and keys are confined to their job', async () => {
      const b = await query(merchants.b.secretKey, { metrics: ['events'], date_range: range, filters: [['is_not', 'event:type', ['marker_event']]] });
      assert.equal(b.results[0]?.metrics[0], merchants.b.truth.length);
      const asWriteKey = await tally.app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${merchants.a.writeKey}` }, payload: { metrics: ['events'], date_range: '7d' } });
      assert.equal(asWriteKey.statusCode, 403);
      const unknown = await tally.app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: 'Bearer ts_not_a_real_key' }, payload: { metrics: ['events'], date_range: '7d' } });
      assert.equal(unknown.statusCode, 401);
      const secretOnIngest = await tally.app.inject({ method: 'POST', url: '/v1/events', headers: { authorization: `Bearer ${merchants.a.secretKey}` }, payload: { type: 'x' } });
      assert.equal(secretOnIngest.statusCode, 403);
      const noAdmin = await tally.app.inject({ method: 'GET', url: '/v1/admin/merchants', headers: { authorization: `Bearer ${merchants.a.secretKey}` } });
      assert.equal(noAdmin.statusCode, 401);
    });
  });
}
