// Cache port: a bounded store of derived answers (query results), by key. Losing an entry is
// always safe — it is recomputed — so adapters evict freely; keys carry the data version they
// were computed at, so an entry is never stale, only unused (memory in-process; Redis later).

export interface Cache {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
  close(): Promise<void>;
}
