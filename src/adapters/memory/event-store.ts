// In-memory EventStore: the raw event store for tests and the memory profile. Same semantics as
// the SQLite adapter (first stored copy wins, scans ordered by (timestampMs, id) with ids in
// UTF-8 byte order, as SQLite compares TEXT), so the contract suite holds for both.
import { assertScanRequest, decodeScanCursor, encodeScanCursor } from '../../core/ports/event-store-rules.ts';
import type { TrackedEvent } from '../../core/event.ts';
import type { EventStore, ScanPage, ScanRequest, StoredEvent } from '../../core/ports/event-store.ts';

interface MerchantEvents {
  readonly byId: Map<string, StoredEvent>;
  /** All events of the merchant; sorted by (timestampMs, id) whenever `sorted` is true. */
  readonly ordered: StoredEvent[];
  sorted: boolean;
}

interface Position {
  readonly timestampMs: number;
  readonly id: string;
}

export class MemoryEventStore implements EventStore {
  readonly #merchants = new Map<string, MerchantEvents>();
  #closed = false;

  static create(): MemoryEventStore {
    return new MemoryEventStore();
  }

  async putBatch(items: readonly StoredEvent[]): Promise<boolean[]> {
    this.#assertOpen();
    const results: boolean[] = [];
    for (const item of items) {
      const merchant = this.#merchant(item.event.merchantId);
      const stored = merchant.byId.get(item.event.id);
      if (stored) {
        results.push(stored.source.partition === item.source.partition && stored.source.offset === item.source.offset);
        continue;
      }
      const copy = copyStored(item);
      merchant.byId.set(copy.event.id, copy);
      const last = merchant.ordered.at(-1);
      if (last && comparePositions(positionOf(last), positionOf(copy)) > 0) merchant.sorted = false;
      merchant.ordered.push(copy);
      results.push(true);
    }
    return results;
  }

  async scan(request: ScanRequest): Promise<ScanPage> {
    this.#assertOpen();
    assertScanRequest(request);
    const merchant = this.#merchants.get(request.merchantId);
    if (!merchant) return { events: [], next: null };
    if (!merchant.sorted) {
      merchant.ordered.sort((a, b) => comparePositions(positionOf(a), positionOf(b)));
      merchant.sorted = true;
    }
    const after = request.after ? decodeScanCursor(request.after) : null;
    const start = after && after.timestampMs >= request.fromMs ? after : { timestampMs: request.fromMs, id: '' };
    const inclusive = after === null || after.timestampMs < request.fromMs;
    let index = lowerBound(merchant.ordered, start, inclusive);
    const events: StoredEvent[] = [];
    for (; index < merchant.ordered.length && events.length < request.limit; index += 1) {
      const stored = merchant.ordered[index] as StoredEvent;
      if (stored.event.timestampMs >= request.toMs) break;
      events.push(copyStored(stored));
    }
    const following = merchant.ordered[index];
    const more = following !== undefined && following.event.timestampMs < request.toMs && events.length > 0;
    const last = events.at(-1);
    return { events, next: more && last ? encodeScanCursor(positionOf(last)) : null };
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #merchant(merchantId: string): MerchantEvents {
    let merchant = this.#merchants.get(merchantId);
    if (!merchant) {
      merchant = { byId: new Map(), ordered: [], sorted: true };
      this.#merchants.set(merchantId, merchant);
    }
    return merchant;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('MemoryEventStore is closed');
  }
}

function positionOf(stored: StoredEvent): Position {
  return { timestampMs: stored.event.timestampMs, id: stored.event.id };
}

/** First index whose position is >= `start` (inclusive) or > `start` (exclusive). */
function lowerBound(ordered: readonly StoredEvent[], start: Position, inclusive: boolean): number {
  let low = 0;
  let high = ordered.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const order = comparePositions(positionOf(ordered[middle] as StoredEvent), start);
    if (order < 0 || (!inclusive && order === 0)) low = middle + 1;
    else high = middle;
  }
  return low;
}

function comparePositions(a: Position, b: Position): number {
  if (a.timestampMs !== b.timestampMs) return a.timestampMs < b.timestampMs ? -1 : 1;
  return compareUtf8(a.id, b.id);
}

/**
 * Orders strings as their UTF-8 bytes compare (SQLite's BINARY collation). UTF-16 code units
 * agree with that except surrogates against U+E000..U+FFFF, which this remaps before comparing.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index += 1) {
    const left = a.charCodeAt(index);
    const right = b.charCodeAt(index);
    if (left !== right) return codePointRank(left) < codePointRank(right) ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}


/** Stored events are copied in and out: a caller mutating its object must not change the store. */
function copyStored(stored: StoredEvent): StoredEvent {
  return { event: structuredClone(stored.event) as TrackedEvent, source: { partition: stored.source.partition, offset: stored.source.offset } };
}
