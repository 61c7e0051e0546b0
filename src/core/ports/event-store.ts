// EventStore port: the raw event store, Tally's master dataset. Rollups are derived from it and
// can be rebuilt from it (reprocessing). Writes are idempotent by (merchantId, event id): the
// first stored copy wins and later copies change nothing.
import type { TrackedEvent } from '../event.ts';

/** Where a stored event came from on the log: decides which copy of a resent event counts. */
export interface EventSource {
  readonly partition: number;
  readonly offset: number;
}

export interface StoredEvent {
  readonly event: TrackedEvent;
  readonly source: EventSource;
}

export interface ScanRequest {
  readonly merchantId: string;
  /** Event time range [fromMs, toMs). */
  readonly fromMs: number;
  readonly toMs: number;
  /** Page size; adapters may return fewer. */
  readonly limit: number;
  /** Cursor from the previous page's `next`. */
  readonly after?: string | null;
}

export interface ScanPage {
  /** Ordered by (timestampMs, id). */
  readonly events: StoredEvent[];
  /** Opaque cursor for the next page; null when the range is exhausted. */
  readonly next: string | null;
}

export interface EventStore {
  /**
   * Stores each event unless (merchantId, id) is stored already. Returns, per input, whether the
   * stored copy is this one: true for a first write and for the same log record put again
   * (same source), false for a resent event that arrived as another record. A crash between
   * this call and the rollup write is therefore harmless: redelivery sees `true` again.
   */
  putBatch(items: readonly StoredEvent[]): Promise<boolean[]>;
  scan(request: ScanRequest): Promise<ScanPage>;
  /** Resolves when the store answers (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
