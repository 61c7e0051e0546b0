// Redis helpers for tests: a key prefix no parallel run shares, and the cleanup that deletes it.
import { Redis } from 'ioredis';
import { engineAddresses, uniqueName } from './engines.ts';

/** A prefix for one test run's keys, e.g. `tally:test:cache_lq3x…:`. */
export function uniqueKeyPrefix(label: string): string {
  return `tally:test:${uniqueName(label)}:`;
}

/** Deletes every key under the prefix (SCAN, not KEYS, so a shared Redis is never blocked). */
export async function deleteKeysWithPrefix(prefix: string, url = engineAddresses().redisUrl): Promise<number> {
  const client = new Redis(url, { lazyConnect: true });
  await client.connect();
  try {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 500);
      if (keys.length > 0) deleted += await client.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
    return deleted;
  } finally {
    await client.quit();
  }
}

/** SCAN MATCH is a glob: a prefix is matched literally only with its glob characters escaped. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
