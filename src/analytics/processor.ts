// The analytics processor: events topic → raw event store (master dataset) → rollups.
// Exactly-once effect without cross-store transactions, per log partition:
//   1. skip records at or below the partition's applied offset (already in the rollups);
//   2. put the rest into the raw store, which says which copy of each (merchant, id) it keeps;
//   3. build cells from the kept copies and apply them atomically with the new applied offset.
// A crash anywhere redelivers; step 2 answers the same again, step 3 happens once.
import type { ConsumedRecord, LogPartition } from '../core/ports/event-log.ts';
import type { EventStore, StoredEvent } from '../core/ports/event-store.ts';
import type { MerchantStore } from '../core/ports/merchant-store.ts';
import { RollupConflictError, type RollupLayout, type RollupStore } from '../core/ports/rollup-store.ts';
import type { AnalyticsRules } from '../core/analytics/rules.ts';
import { CellBuilder, targetGenerations } from '../core/analytics/rollup.ts';
import { decodeTrackedEvent } from './event-codec.ts';
import { asTransient, TransientError, type DeadLetter, type HandleResult, type Processor } from '../runtime/processor.ts';

export const analyticsGroup = 'analytics';
export const eventsTopic = 'events';
export const analyticsStream = `${analyticsGroup}:${eventsTopic}`;

export interface AnalyticsObserver {
  /** Newest arrival time among processed events (freshness = now − this). */
  processed(events: number, excluded: number, duplicates: number, newestReceivedMs: number): void;
}

export interface AnalyticsProcessorOptions {
  readonly events: EventStore;
  readonly rollups: RollupStore;
  readonly merchants: MerchantStore;
  readonly rules: AnalyticsRules;
  readonly observer?: AnalyticsObserver;
}

/** Conflicts (a layout switch, another member's apply) are resolved by reloading: bounded. */
const conflictRetriesMax = 5;

export class AnalyticsProcessor implements Processor {
  readonly name = 'analytics';
  readonly group = analyticsGroup;
  readonly topics = [eventsTopic] as const;
  readonly #options: AnalyticsProcessorOptions;
  readonly #applied = new Map<number, number>();
  readonly #currencies = new Map<string, string>();
  #layout: RollupLayout | null = null;

  constructor(options: AnalyticsProcessorOptions) {
    this.#options = options;
  }

  async onAssigned(partitions: readonly LogPartition[]): Promise<void> {
    for (const { partition } of partitions) this.#applied.delete(partition);
  }

  async onRevoked(partitions: readonly LogPartition[]): Promise<void> {
    for (const { partition } of partitions) this.#applied.delete(partition);
  }

  async handle(batch: readonly ConsumedRecord[]): Promise<HandleResult> {
    const deadLetters: DeadLetter[] = [];
    for (const [partition, records] of groupByPartition(batch)) {
      deadLetters.push(...(await this.#handlePartition(partition, records)));
    }
    return { deadLetters };
  }

  async #handlePartition(partition: number, records: readonly ConsumedRecord[]): Promise<DeadLetter[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#applyPartition(partition, records);
      } catch (error) {
        if (!(error instanceof RollupConflictError)) throw asTransient(error);
        // Someone moved the applied offset or the layout: reload both and recompute.
        this.#applied.delete(partition);
        this.#layout = null;
        if (attempt >= conflictRetriesMax) throw new TransientError('rollup conflicts persist', { cause: error });
      }
    }
  }

  async #applyPartition(partition: number, records: readonly ConsumedRecord[]): Promise<DeadLetter[]> {
    const { events, rollups, rules } = this.#options;
    const applied = await this.#appliedOffset(partition);
    const fresh = records.filter((record) => record.offset > applied);
    if (fresh.length === 0) return [];

    const deadLetters: DeadLetter[] = [];
    const stored: StoredEvent[] = [];
    for (const record of fresh) {
      const decoded = decodeTrackedEvent(record.value);
      if (typeof decoded === 'string') deadLetters.push({ record, code: 'invalid_format', message: decoded });
      else stored.push({ event: decoded, source: { partition, offset: record.offset } });
    }
    const kept = stored.length > 0 ? await events.putBatch(stored) : [];
    const layout = await this.#currentLayout();
    await this.#loadCurrencies(stored);
    const builder = new CellBuilder((merchantId) => this.#currencies.get(merchantId) ?? 'USD');
    let excluded = 0;
    let newestReceivedMs = 0;
    stored.forEach((item, index) => {
      if (!kept[index]) return;
      if (rules.isExcluded(item.event)) {
        excluded++;
        return;
      }
      newestReceivedMs = Math.max(newestReceivedMs, item.event.receivedMs);
      for (const generation of targetGenerations(layout, { event: item.event, partition, offset: item.source.offset })) {
        builder.add(item.event, generation);
      }
    });
    const throughOffset = fresh[fresh.length - 1]!.offset;
    await rollups.apply({
      stream: analyticsStream, partition, fromOffset: applied + 1, throughOffset,
      layoutEpoch: layout.epoch, cells: builder.cells(),
    });
    this.#applied.set(partition, throughOffset);
    const duplicates = kept.filter((isKept) => !isKept).length;
    this.#options.observer?.processed(stored.length - duplicates - excluded, excluded, duplicates, newestReceivedMs);
    return deadLetters;
  }

  async #appliedOffset(partition: number): Promise<number> {
    const known = this.#applied.get(partition);
    if (known !== undefined) return known;
    const offset = await this.#options.rollups.appliedOffset(analyticsStream, partition);
    this.#applied.set(partition, offset);
    return offset;
  }

  /** The layout is cached between batches; apply() rejects a stale one, which reloads it. */
  async #currentLayout(): Promise<RollupLayout> {
    this.#layout ??= await this.#options.rollups.layout();
    return this.#layout;
  }

  async #loadCurrencies(stored: readonly StoredEvent[]): Promise<void> {
    for (const { event } of stored) {
      if (this.#currencies.has(event.merchantId)) continue;
      const merchant = await this.#options.merchants.get(event.merchantId);
      this.#currencies.set(event.merchantId, merchant?.currency ?? 'USD');
    }
  }
}

function groupByPartition(batch: readonly ConsumedRecord[]): Map<number, ConsumedRecord[]> {
  const groups = new Map<number, ConsumedRecord[]>();
  for (const record of batch) {
    const list = groups.get(record.partition);
    if (list) list.push(record);
    else groups.set(record.partition, [record]);
  }
  for (const list of groups.values()) list.sort((a, b) => a.offset - b.offset);
  return groups;
}


