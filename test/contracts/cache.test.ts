// Runs the Cache contract against every adapter (Redis joins with the distributed deployment).
import { runCacheContract } from './cache.contract.ts';
import { MemoryCache } from '../../src/adapters/memory/cache.ts';

runCacheContract('memory cache', async (bounds) => new MemoryCache(bounds));
