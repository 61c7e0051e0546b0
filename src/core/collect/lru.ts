// A bounded least-recently-used cache over Map's insertion order. Enrichment memoizes per user
// agent (and geo per data record) with it, so a flood of distinct keys costs bounded memory.

export class LruCache<K, V> {
  readonly entriesMax: number;
  readonly #entries = new Map<K, V>();

  constructor(entriesMax: number) {
    if (!Number.isSafeInteger(entriesMax) || entriesMax < 1) {
      throw new Error(`LruCache: entriesMax must be a positive integer, got ${entriesMax}`);
    }
    this.entriesMax = entriesMax;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value === undefined) return undefined;
    // Re-inserting moves the key to the young end of the insertion order.
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.entriesMax) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }
}
