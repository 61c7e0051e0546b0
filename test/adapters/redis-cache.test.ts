// The Redis cache beyond the contract: entries expire, oversized values stay out, and an absent,
// silent or dropped Redis costs a query at most one short timeout — misses, never errors — with one
// warning per outage and background reconnection.
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisCache, type RedisCacheLogger } from '../../src/adapters/redis/cache.ts';
import { engineAddresses, enginesMissing } from '../support/engines.ts';
import { deleteKeysWithPrefix, uniqueKeyPrefix } from '../support/redis.ts';

/** Generous against scheduler noise, yet far below what a hung connection would cost. */
const fastMs = 200;

interface LogLine {
  readonly level: 'warn' | 'info';
  readonly message: string;
}

function recordingLogger(): { logger: RedisCacheLogger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    logger: {
      warn: (_object, message) => lines.push({ level: 'warn', message }),
      info: (_object, message) => lines.push({ level: 'info', message }),
    },
  };
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function listen(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

test('options out of range are refused at construction', async () => {
  await assert.rejects(RedisCache.open({ url: 'redis://127.0.0.1:1', ttlSeconds: 0 }), /ttlSeconds/);
  await assert.rejects(RedisCache.open({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 1.5 }), /commandTimeoutMs/);
});

test('with nothing listening, get misses and set resolves at once, and the outage is logged once', async () => {
  const { logger, lines } = recordingLogger();
  const opened = await timed(() => RedisCache.open({ url: 'redis://127.0.0.1:1', logger }));
  const cache = opened.value;
  assert.ok(opened.ms < 1000, `open took ${opened.ms} ms`);
  // Long enough for ioredis to fail a few background reconnection attempts too.
  for (let round = 0; round < 5; round++) {
    const got = await timed(() => cache.get('k'));
    assert.equal(got.value, null);
    assert.ok(got.ms < fastMs, `get took ${got.ms} ms`);
    const set = await timed(() => cache.set('k', 'v'));
    assert.ok(set.ms < fastMs, `set took ${set.ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(lines.map((line) => line.level), ['warn'], 'one warning for the whole outage');
  await cache.close();
});

test('a server that accepts but never answers: open gives up after one command timeout, calls miss at once', async () => {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  const port = await listen(server);
  const { logger, lines } = recordingLogger();
  const opened = await timed(() => RedisCache.open({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 50, logger }));
  const cache = opened.value;
  try {
    assert.ok(opened.ms < fastMs, `open took ${opened.ms} ms`);
    const got = await timed(() => cache.get('k'));
    assert.equal(got.value, null);
    assert.ok(got.ms < fastMs, `get took ${got.ms} ms`);
    const set = await timed(() => cache.set('k', 'v'));
    assert.ok(set.ms < fastMs, `set took ${set.ms} ms`);
    assert.deepEqual(lines.map((line) => line.level), ['warn']);
  } finally {
    await cache.close();
    for (const socket of sockets) socket.destroy();
    server.close();
  }
});

const redisMissing = await enginesMissing('redis');

describe('redis cache against a real Redis', { skip: redisMissing ?? false }, () => {
  const redisUrl = engineAddresses().redisUrl;
  const runPrefix = uniqueKeyPrefix('redis_cache');
  let fixtures = 0;
  let admin: Redis;
  const openCache = (options: { ttlSeconds?: number; valueBytesMax?: number; url?: string; logger?: RedisCacheLogger } = {}) => {
    const keyPrefix = `${runPrefix}${++fixtures}:`;
    return RedisCache.open({ url: redisUrl, keyPrefix, ...options }).then((cache) => ({ cache, keyPrefix }));
  };

  before(async () => {
    admin = new Redis(redisUrl, { lazyConnect: true });
    await admin.connect();
  });
  after(async () => {
    await deleteKeysWithPrefix(runPrefix, redisUrl);
    await admin.quit();
  });

  test('entries are stored under the key prefix, with the TTL set', async () => {
    const { cache, keyPrefix } = await openCache({ ttlSeconds: 120 });
    await cache.set('query:m1:v1', '{"results":[]}');
    assert.equal(await admin.get(`${keyPrefix}query:m1:v1`), '{"results":[]}');
    const pttl = await admin.pttl(`${keyPrefix}query:m1:v1`);
    assert.ok(pttl > 0 && pttl <= 120_000, `PTTL ${pttl}`);
    await cache.close();
  });

  test('a value over valueBytesMax (UTF-8 bytes, not characters) is not stored', async () => {
    const { cache, keyPrefix } = await openCache({ valueBytesMax: 16 });
    await cache.set('fits', 'é'.repeat(8)); // 16 bytes
    await cache.set('over', 'é'.repeat(9)); // 9 characters, 18 bytes
    assert.equal(await cache.get('fits'), 'é'.repeat(8));
    assert.equal(await cache.get('over'), null);
    assert.equal(await admin.exists(`${keyPrefix}over`), 0);
    await cache.close();
  });

  test('close quits cleanly; a closed cache answers misses', async () => {
    const { cache } = await openCache();
    await cache.set('k', 'v');
    await cache.close();
    assert.equal(await cache.get('k'), null);
    await cache.set('k', 'w'); // a no-op, not a throw
  });

  test('a stall answers misses within the timeout; a dropped connection comes back by itself', async () => {
    const [upstreamHost, upstreamPort] = [new URL(redisUrl).hostname, Number(new URL(redisUrl).port || 6379)];
    const sockets = new Set<Socket>();
    let frozen = false;
    const proxy = createServer((downstream) => {
      const upstream = connect(upstreamPort, upstreamHost);
      for (const socket of [downstream, upstream]) {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          sockets.delete(socket);
          downstream.destroy();
          upstream.destroy();
        });
      }
      downstream.pipe(upstream);
      upstream.pipe(downstream);
      if (frozen) downstream.pause();
    });
    const port = await listen(proxy);
    const viaProxy = new URL(redisUrl);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(port);
    const { logger, lines } = recordingLogger();
    const { cache } = await openCache({ url: viaProxy.toString(), logger });
    try {
      await cache.set('k', 'v');
      assert.equal(await cache.get('k'), 'v');

      // Stall: Redis stops answering on an open connection (a slow server looks the same).
      frozen = true;
      for (const socket of sockets) socket.pause();
      for (let round = 0; round < 3; round++) {
        const got = await timed(() => cache.get('k'));
        assert.equal(got.value, null);
        assert.ok(got.ms < fastMs, `stalled get took ${got.ms} ms`);
      }
      frozen = false;
      for (const socket of sockets) socket.resume();
      await eventually(async () => (await cache.get('k')) === 'v', 2000, 'answers again after the stall');
      assert.deepEqual(lines.map((line) => line.level), ['warn', 'info'], 'one warning per outage, one recovery');

      // Drop: the connection dies and nothing listens for a while.
      await new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      const got = await timed(() => cache.get('k'));
      assert.equal(got.value, null);
      assert.ok(got.ms < fastMs, `get while down took ${got.ms} ms`);
      await listen(proxy, port);
      await eventually(async () => (await cache.get('k')) === 'v', 10_000, 'reconnects in the background');
      assert.deepEqual(lines.map((line) => line.level), ['warn', 'info', 'warn', 'info']);
    } finally {
      await cache.close();
      for (const socket of sockets) socket.destroy();
      proxy.close();
    }
  });

  test('the test cleanup deletes exactly the keys under a prefix', async () => {
    const prefix = uniqueKeyPrefix('cleanup');
    const neighbour = uniqueKeyPrefix('cleanup');
    await admin.set(`${prefix}a`, '1', 'EX', 60);
    await admin.set(`${prefix}b`, '2', 'EX', 60);
    await admin.set(`${neighbour}a`, '3', 'EX', 60);
    assert.equal(await deleteKeysWithPrefix(prefix, redisUrl), 2);
    assert.equal(await admin.exists(`${prefix}a`, `${prefix}b`), 0);
    assert.equal(await admin.get(`${neighbour}a`), '3');
    await admin.unlink(`${neighbour}a`);
  });
});
