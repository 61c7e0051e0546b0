// The Cache contract every adapter passes: get what was set, misses are null, a value larger than
// the byte bound is not kept; an adapter that evicts by its own bounds does so least recently used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Cache } from '../../src/core/ports/cache.ts';

export interface CacheContractOptions {
  /**
   * False for an adapter whose eviction belongs to its engine, not to per-cache bounds: Redis
   * bounds memory server-wide (maxmemory + allkeys-lru, shared by every prefix) and expires by TTL,
   * so entry counts and LRU order within one cache are not its to honour. Its cases are then
   * skipped; the value-size bound still applies. Default true.
   */
  readonly evictsByBounds?: boolean;
}

export function runCacheContract(
  name: string,
  create: (bounds: { entriesMax: number; bytesMax: number }) => Promise<Cache>,
  options: CacheContractOptions = {},
): void {
  const lruSkip = options.evictsByBounds === false ? 'its engine evicts, not per-cache LRU bounds' : false;

  test(`${name}: a value set is got back; an unknown key is a miss`, async () => {
    const cache = await create({ entriesMax: 10, bytesMax: 10_000 });
    await cache.set('k', 'v1');
    assert.equal(await cache.get('k'), 'v1');
    await cache.set('k', 'v2');
    assert.equal(await cache.get('k'), 'v2');
    assert.equal(await cache.get('missing'), null);
    await cache.close();
  });

  test(`${name}: past its entry bound it evicts the least recently used`, { skip: lruSkip }, async () => {
    const cache = await create({ entriesMax: 3, bytesMax: 10_000 });
    for (const key of ['a', 'b', 'c']) await cache.set(key, key);
    assert.equal(await cache.get('a'), 'a'); // a is now the most recently used
    await cache.set('d', 'd');
    assert.equal(await cache.get('b'), null);
    assert.deepEqual([await cache.get('a'), await cache.get('c'), await cache.get('d')], ['a', 'c', 'd']);
    await cache.close();
  });

  test(`${name}: past its byte bound it evicts the least recently used`, { skip: lruSkip }, async () => {
    const cache = await create({ entriesMax: 100, bytesMax: 100 });
    await cache.set('x', 'x'.repeat(20));
    await cache.set('y', 'y'.repeat(20));
    await cache.set('z', 'z'.repeat(20));
    assert.equal(await cache.get('x'), null, 'the oldest went to make room');
    assert.equal(await cache.get('z'), 'z'.repeat(20));
    await cache.close();
  });

  test(`${name}: a value larger than its byte bound is not kept, and evicts nothing`, async () => {
    const cache = await create({ entriesMax: 100, bytesMax: 100 });
    await cache.set('y', 'y'.repeat(20));
    await cache.set('z', 'z'.repeat(20));
    await cache.set('huge', 'h'.repeat(1000));
    assert.equal(await cache.get('huge'), null);
    assert.deepEqual([await cache.get('y'), await cache.get('z')], ['y'.repeat(20), 'z'.repeat(20)], 'a too-large value evicts nothing');
    await cache.close();
  });
}
