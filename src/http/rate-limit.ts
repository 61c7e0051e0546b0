// Per-key token buckets, in memory (per process: with N collectors a key gets N × the rate, which
// the operations doc states). Bounded: idle buckets are evicted oldest-first past the cap.
import { TallyError } from '../core/errors.ts';

const bucketsMax = 100_000;

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class RateLimiter {
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;

  constructor(perSecond: number, now: () => number = Date.now) {
    this.#perSecond = perSecond;
    this.#burst = perSecond * 2;
    this.#now = now;
  }

  /** Takes one token for the key, or throws rate_limited with the seconds to wait. */
  take(key: string): void {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= bucketsMax) this.#buckets.delete(this.#buckets.keys().next().value!);
      bucket = { tokens: this.#burst, updatedMs: now };
      this.#buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.updatedMs) / 1000) * this.#perSecond);
    bucket.updatedMs = now;
    if (bucket.tokens < 1) {
      const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / this.#perSecond));
      throw new TallyError('rate_limited', 'too many requests for this key', { retryAfterSeconds });
    }
    bucket.tokens -= 1;
  }
}
