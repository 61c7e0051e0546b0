// Runs the Cache contract against every adapter: memory (embedded) and Redis (distributed).
import { after, describe } from 'node:test';
import { runCacheContract } from './cache.contract.ts';
import { MemoryCache } from '../../src/adapters/memory/cache.ts';
import { RedisCache } from '../../src/adapters/redis/cache.ts';
import { engineAddresses, enginesMissing } from '../support/engines.ts';
import { deleteKeysWithPrefix, uniqueKeyPrefix } from '../support/redis.ts';

runCacheContract('memory cache', async (bounds) => new MemoryCache(bounds));

const redisMissing = await enginesMissing('redis');

describe('redis cache', { skip: redisMissing ?? false }, () => {
  // One prefix per fixture, all under the run's: cleanup deletes the run's keys in one scan.
  const runPrefix = uniqueKeyPrefix('cache_contract');
  let fixtures = 0;
  after(() => deleteKeysWithPrefix(runPrefix));

  // Redis bounds memory server-wide and expires by TTL; only the value-size bound is per cache.
  runCacheContract(
    'redis cache',
    (bounds) => RedisCache.open({ url: engineAddresses().redisUrl, keyPrefix: `${runPrefix}${++fixtures}:`, valueBytesMax: bounds.bytesMax }),
    { evictsByBounds: false },
  );
});
