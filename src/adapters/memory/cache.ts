// In-process LRU cache: the embedded deployment's Cache. Bounded by entries and by the bytes of
// the values it holds; the least recently used entries go first.

import type { Cache } from '../../core/ports/cache.ts';

export interface MemoryCacheOptions {
  readonly entriesMax: number;
  readonly bytesMax: number;
}

export class MemoryCache implements Cache {
  readonly #entries = new Map<string, string>();
  readonly #entriesMax: number;
  readonly #bytesMax: number;
  #bytes = 0;

  constructor(options: MemoryCacheOptions) {
    if (!Number.isSafeInteger(options.entriesMax) || options.entriesMax < 1) throw new RangeError('entriesMax must be a positive integer');
    if (!Number.isSafeInteger(options.bytesMax) || options.bytesMax < 1) throw new RangeError('bytesMax must be a positive integer');
    this.#entriesMax = options.entriesMax;
    this.#bytesMax = options.bytesMax;
  }

  async get(key: string): Promise<string | null> {
    const value = this.#entries.get(key);
    if (value === undefined) return null;
    // Re-inserting moves the entry to the young end of the Map's insertion order.
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  async set(key: string, value: string): Promise<void> {
    const size = sizeOf(key, value);
    if (size > this.#bytesMax) return; // larger than the whole cache: not worth evicting everything
    const old = this.#entries.get(key);
    if (old !== undefined) {
      this.#entries.delete(key);
      this.#bytes -= sizeOf(key, old);
    }
    this.#entries.set(key, value);
    this.#bytes += size;
    for (const [oldestKey, oldestValue] of this.#entries) {
      if (this.#entries.size <= this.#entriesMax && this.#bytes <= this.#bytesMax) break;
      this.#entries.delete(oldestKey);
      this.#bytes -= sizeOf(oldestKey, oldestValue);
    }
  }

  async close(): Promise<void> {
    this.#entries.clear();
    this.#bytes = 0;
  }
}

/** UTF-16 strings: two bytes per code unit is what they cost in memory. */
function sizeOf(key: string, value: string): number {
  return 2 * (key.length + value.length);
}
