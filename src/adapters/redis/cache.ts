// Redis-backed query Cache for the distributed deployment: every query process shares one cache.
// Keys carry the data version, so an entry is never stale, only unused: entries simply expire by
// TTL, and memory is bounded server-wide by Redis's own maxmemory policy (allkeys-lru), not here.
// A cache is an optimisation, so Redis being down or slow must never fail or stall a query: with
// no offline queue, no per-request retries and a short command timeout, every call fails fast while
// ioredis reconnects in the background, and a failure reads as a miss (get) or a no-op (set).

import { Redis } from 'ioredis';
import type { Cache } from '../../core/ports/cache.ts';

export interface RedisCacheLogger {
  warn(object: object, message: string): void;
  info(object: object, message: string): void;
}

export interface RedisCacheOptions {
  /** redis:// or rediss:// URL (credentials and db index included). */
  readonly url: string;
  /** Namespaces this deployment's entries in a shared Redis. */
  readonly keyPrefix?: string;
  /** Entries expire after this long: unused versions of an answer leave on their own. */
  readonly ttlSeconds?: number;
  /** Values longer than this (UTF-8 bytes) are not stored: one huge answer must not crowd out many. */
  readonly valueBytesMax?: number;
  /** Longest a get or set may delay a query before it counts as a miss. */
  readonly commandTimeoutMs?: number;
  /** Longest one connection attempt may take before ioredis gives up and retries later. */
  readonly connectTimeoutMs?: number;
  /** Told once when Redis becomes unusable and once when it is back; never per request. */
  readonly logger?: RedisCacheLogger;
}

const redisCacheDefaults = Object.freeze({
  keyPrefix: 'tally:q:',
  ttlSeconds: 3600,
  valueBytesMax: 1024 * 1024,
  commandTimeoutMs: 50,
  connectTimeoutMs: 1000,
});

export class RedisCache implements Cache {
  readonly #client: Redis;
  readonly #keyPrefix: string;
  readonly #ttlSeconds: number;
  readonly #valueBytesMax: number;
  readonly #logger: RedisCacheLogger | undefined;
  #healthy = true;
  #closed = false;

  /**
   * Waits for the first connection's outcome, ready or failed; an unreachable Redis is logged, not
   * thrown, and retried in the background. Waits on events rather than connect()'s promise, which
   * ioredis settles only after a grace period of up to 2 s when a server stops answering.
   */
  static async open(options: RedisCacheOptions): Promise<RedisCache> {
    const cache = new RedisCache(options);
    const client = cache.#client;
    let settle = (): void => {};
    const firstOutcome = new Promise<void>((resolve) => {
      settle = resolve;
      client.once('ready', settle);
      client.once('error', settle);
    });
    const connecting = client.connect().catch((error: unknown) => cache.#markUnavailable(error));
    await Promise.race([firstOutcome, connecting]);
    client.off('ready', settle);
    client.off('error', settle);
    return cache;
  }

  private constructor(options: RedisCacheOptions) {
    // Field by field: an option passed as undefined still takes its default.
    const settings = {
      keyPrefix: options.keyPrefix ?? redisCacheDefaults.keyPrefix,
      ttlSeconds: options.ttlSeconds ?? redisCacheDefaults.ttlSeconds,
      valueBytesMax: options.valueBytesMax ?? redisCacheDefaults.valueBytesMax,
      commandTimeoutMs: options.commandTimeoutMs ?? redisCacheDefaults.commandTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs ?? redisCacheDefaults.connectTimeoutMs,
    };
    positiveInteger('ttlSeconds', settings.ttlSeconds);
    positiveInteger('valueBytesMax', settings.valueBytesMax);
    positiveInteger('commandTimeoutMs', settings.commandTimeoutMs);
    positiveInteger('connectTimeoutMs', settings.connectTimeoutMs);
    this.#keyPrefix = settings.keyPrefix;
    this.#ttlSeconds = settings.ttlSeconds;
    this.#valueBytesMax = settings.valueBytesMax;
    this.#logger = options.logger;
    this.#client = new Redis(options.url, {
      lazyConnect: true,
      // Fail fast instead of queueing while disconnected, and drop (not replay) commands caught
      // by a connection loss: a late cache answer is worth nothing to the query that waited.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: settings.commandTimeoutMs,
      connectTimeout: settings.connectTimeoutMs,
    });
    // Without a listener ioredis prints every reconnection failure; this logs the outage once.
    this.#client.on('error', (error: unknown) => this.#markUnavailable(error));
    this.#client.on('ready', () => this.#markAvailable());
  }

  async get(key: string): Promise<string | null> {
    if (this.#client.status !== 'ready') return null;
    try {
      const value = await this.#client.get(this.#keyPrefix + key);
      this.#markAvailable();
      return value;
    } catch (error) {
      this.#markUnavailable(error);
      return null;
    }
  }

  async set(key: string, value: string): Promise<void> {
    if (Buffer.byteLength(value, 'utf8') > this.#valueBytesMax) return;
    if (this.#client.status !== 'ready') return;
    try {
      await this.#client.set(this.#keyPrefix + key, value, 'EX', this.#ttlSeconds);
      this.#markAvailable();
    } catch (error) {
      this.#markUnavailable(error);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#client.status === 'ready') {
      // QUIT lets Redis finish what was sent; if it cannot answer, drop the socket instead.
      await this.#client.quit().catch(() => this.#client.disconnect());
    } else {
      this.#client.disconnect();
    }
  }

  #markUnavailable(error: unknown): void {
    if (this.#closed || !this.#healthy) return;
    this.#healthy = false;
    const reason = error instanceof Error ? error.message : String(error);
    this.#logger?.warn({ reason }, 'query cache (Redis) unavailable: answering misses until it is back');
  }

  #markAvailable(): void {
    if (this.#healthy) return;
    this.#healthy = true;
    if (!this.#closed) this.#logger?.info({}, 'query cache (Redis) available again');
  }
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
}
