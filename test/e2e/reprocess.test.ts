// Reprocessing history: change a processing rule (referrer spam that was counted), reprocess the
// affected range from raw events, and the affected buckets are corrected while every other bucket
// stays identical; during the rebuild queries still read the old version; a job interrupted
// before its switch leaves the old version serving and resumes to the same result.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestTally, adminToken, type TestTally } from '../support/tally.ts';
import { defineRules } from '../../src/core/analytics/rules.ts';
import { runReprocess, startReprocess } from '../../src/analytics/reprocess.ts';
import { reprocessDependencies } from '../../src/admin/routes.ts';

const dayMs = 86_400_000;
const todayMs = Math.floor(Date.now() / dayMs) * dayMs;
const range = [new Date(todayMs - 6 * dayMs).toISOString(), new Date(todayMs + dayMs).toISOString()];
const spamDayMs = todayMs - 3 * dayMs;
const rulesV1 = defineRules({ version: 1, botBrowserPatterns: [], spamSources: [] });
const rulesV2 = defineRules({ version: 2, botBrowserPatterns: [], spamSources: ['spam.example'] });

function event(id: string, tsMs: number, utmSource: string | null): object {
  const query = utmSource ? `?utm_source=${utmSource}` : '';
  return { id, type: 'pageview', timestamp: new Date(tsMs).toISOString(), user_id: `u-${id}`, context: { page: { url: `https://shop.example/p${query}` } } };
}

describe('reprocessing', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tally-reprocess-'));
  let merchant: { id: string; writeKey: string; secretKey: string };
  let tally: TestTally;

  before(async () => {
    const v1 = await startTestTally({ dataDir, rules: rulesV1 });
    v1.startProcessor();
    merchant = await v1.createMerchant('shop');
    const events: object[] = [];
    for (let day = 1; day <= 5; day++) {
      for (let i = 0; i < 40; i++) events.push(event(`d${day}-${i}`, todayMs - day * dayMs + i * 60_000, 'news'));
    }
    for (let i = 0; i < 25; i++) events.push(event(`spam-${i}`, spamDayMs + 3_600_000 + i * 1000, 'spam.example'));
    const response = await v1.app.inject({ method: 'POST', url: '/v1/events', headers: { authorization: `Bearer ${merchant.writeKey}` }, payload: events });
    assert.equal(response.statusCode, 202, response.body);
    await v1.waitCaughtUp();
    await v1.close();
    // A new build of Tally with the new rule starts on the same data.
    tally = await startTestTally({ dataDir, rules: rulesV2 });
  });

  after(async () => {
    await tally?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function daily(): Promise<{ rows: [string, number][]; version: string }> {
    const response = await tally.app.inject({
      method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${merchant.secretKey}` },
      payload: { metrics: ['events'], date_range: range, dimensions: ['time:day'] },
    });
    assert.equal(response.statusCode, 200, response.body);
    const body = response.json() as { results: { dimensions: string[]; metrics: number[] }[]; meta: { version: string } };
    return { rows: body.results.map((r) => [r.dimensions[0]!, r.metrics[0]!]), version: body.meta.version };
  }

  test('an interrupted rebuild keeps the old version serving; the rerun corrects only the affected day', async () => {
    const before = await daily();
    const spamDay = new Date(spamDayMs).toISOString().replace('.000Z', 'Z');
    const beforeSpamDay = before.rows.find(([day]) => Date.parse(day) === spamDayMs);
    assert.equal(beforeSpamDay?.[1], 65, `the spam day counts the spam under v1 (${spamDay})`);

    const deps = reprocessDependencies(tally.embedded.services);
    const job = await startReprocess(deps, { fromMs: spamDayMs - dayMs, toMs: spamDayMs + 2 * dayMs, merchantId: merchant.id });
    // Interrupt after the first day of three: the job stays building and reads stay on v1.
    const interrupt = new AbortController();
    await runReprocess(deps, job.id, () => interrupt.abort(), interrupt.signal);
    const midway = await tally.embedded.services.rollups.reprocessJob(job.id);
    assert.equal(midway?.state, 'building');
    assert.deepEqual(await daily(), before, 'queries read the old version during the rebuild');

    const done = await runReprocess(deps, job.id);
    assert.equal(done.state, 'done');
    const afterwards = await daily();
    for (const [day, count] of afterwards.rows) {
      const old = before.rows.find(([d]) => d === day)?.[1];
      if (Date.parse(day) === spamDayMs) assert.equal(count, 40, 'spam removed from the affected day');
      else assert.equal(count, old, `unaffected day ${day} identical`);
    }
    assert.match(afterwards.version, /analytics@2/);
  });

  test('the admin API starts a job and reports its progress until done', async () => {
    const auth = { authorization: `Bearer ${adminToken}` };
    const started = await tally.app.inject({
      method: 'POST', url: '/v1/admin/reprocess', headers: auth,
      payload: { from: new Date(todayMs - 5 * dayMs).toISOString(), to: new Date(todayMs).toISOString(), merchant_id: merchant.id },
    });
    assert.equal(started.statusCode, 202, started.body);
    const { id } = started.json() as { id: string };
    let status: { state: string; progress: number } = { state: 'building', progress: 0 };
    for (let i = 0; i < 200 && status.state === 'building'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      status = (await tally.app.inject({ method: 'GET', url: `/v1/admin/reprocess/${id}`, headers: auth })).json();
    }
    assert.equal(status.state, 'done');
    assert.equal(status.progress, 1);
    const missing = await tally.app.inject({ method: 'GET', url: '/v1/admin/reprocess/rp_nope', headers: auth });
    assert.equal(missing.statusCode, 404);
    const reversed = await tally.app.inject({ method: 'POST', url: '/v1/admin/reprocess', headers: auth, payload: { from: '2026-01-02', to: '2026-01-01' } });
    assert.equal(reversed.statusCode, 400);
  });
});
