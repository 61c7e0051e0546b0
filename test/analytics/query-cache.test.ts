// Cached query results are never stale: a repeated query is answered without reading the store
// until a batch is applied (or a reprocessing switches); Cache-Control: no-cache recomputes; the
// cache can be turned off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestTally, type TestTally } from '../support/tally.ts';
import type { RollupStore } from '../../src/core/ports/rollup-store.ts';

const body = { metrics: ['events', 'users'], date_range: '7d', dimensions: ['event:path'] };

async function setUp(env: Record<string, string> = {}): Promise<{ tally: TestTally; keys: { writeKey: string; secretKey: string }; reads: () => number }> {
  const tally = await startTestTally({ env });
  tally.startProcessor();
  const keys = await tally.createMerchant('cached');
  const rollups = tally.embedded.services.rollups as RollupStore & { readCells: RollupStore['readCells'] };
  let count = 0;
  const original = rollups.readCells.bind(rollups);
  rollups.readCells = async (request) => {
    count++;
    return original(request);
  };
  return { tally, keys, reads: () => count };
}

async function send(tally: TestTally, writeKey: string, path: string, count: number): Promise<void> {
  const events = Array.from({ length: count }, (_, i) => ({ type: 'pageview', user_id: `u${path}${i}`, context: { page: { url: `https://shop.example${path}` } } }));
  const response = await tally.app.inject({ method: 'POST', url: '/v1/events', headers: { authorization: `Bearer ${writeKey}` }, payload: events });
  assert.equal(response.statusCode, 202);
  await tally.waitCaughtUp();
}

async function query(tally: TestTally, secretKey: string, headers: Record<string, string> = {}): Promise<{ results: unknown[] }> {
  const response = await tally.app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${secretKey}`, ...headers }, payload: body });
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

describe('query result cache', () => {
  let rig: Awaited<ReturnType<typeof setUp>>;
  before(async () => {
    rig = await setUp();
  });
  after(async () => rig?.tally.close());

  test('a repeated query is answered from the cache, without reading the store', async () => {
    const { tally, keys, reads } = rig;
    await send(tally, keys.writeKey, '/a', 3);
    const first = await query(tally, keys.secretKey);
    const readsAfterFirst = reads();
    assert.ok(readsAfterFirst > 0);
    const second = await query(tally, keys.secretKey);
    assert.deepEqual(second.results, first.results);
    assert.equal(reads(), readsAfterFirst);
  });

  test('newly processed events invalidate the answer by construction', async () => {
    const { tally, keys } = rig;
    const before = await query(tally, keys.secretKey);
    await send(tally, keys.writeKey, '/b', 2);
    const afterwards = await query(tally, keys.secretKey);
    assert.notDeepEqual(afterwards.results, before.results);
    assert.deepEqual(afterwards.results, [{ dimensions: ['/a'], metrics: [3, 3] }, { dimensions: ['/b'], metrics: [2, 2] }]);
  });

  test('Cache-Control: no-cache computes afresh', async () => {
    const { tally, keys, reads } = rig;
    await query(tally, keys.secretKey);
    const before = reads();
    await query(tally, keys.secretKey, { 'cache-control': 'no-cache' });
    assert.ok(reads() > before);
  });

  test('another merchant never gets a cached answer of this one', async () => {
    const { tally } = rig;
    const other = await tally.createMerchant('other');
    const answer = await query(tally, other.secretKey);
    assert.deepEqual(answer.results, []);
  });

  test('TALLY_QUERY_CACHE_MB=0 turns it off', async () => {
    const off = await setUp({ TALLY_QUERY_CACHE_MB: '0' });
    try {
      await query(off.tally, off.keys.secretKey);
      const before = off.reads();
      await query(off.tally, off.keys.secretKey);
      assert.ok(off.reads() > before);
    } finally {
      await off.tally.close();
    }
  });
});
