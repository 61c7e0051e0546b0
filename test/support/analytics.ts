// Test wiring for the analytics processor: memory adapters, a runtime that runs until the group has
// committed everything, and a snapshot of every rollup cell for exact comparisons.
import { MemoryEventLog, type MemoryFaultOptions } from '../../src/adapters/memory/event-log.ts';
import { MemoryEventStore } from '../../src/adapters/memory/event-store.ts';
import { MemoryRollupStore, type MemoryRollupFaults } from '../../src/adapters/memory/rollup-store.ts';
import { MemoryMerchantStore } from '../../src/adapters/memory/merchant-store.ts';
import { AnalyticsProcessor, analyticsGroup, eventsTopic } from '../../src/analytics/processor.ts';
import { encodeTrackedEvent } from '../../src/analytics/event-codec.ts';
import { currentRules, type AnalyticsRules } from '../../src/core/analytics/rules.ts';
import { estimateHllBytes } from '../../src/core/analytics/hll.ts';
import { ProcessorRuntime, type RuntimeLogger } from '../../src/runtime/processor-runtime.ts';
import type { TrackedEvent } from '../../src/core/event.ts';
import type { EventLog } from '../../src/core/ports/event-log.ts';
import type { Granularity, RollupStore } from '../../src/core/ports/rollup-store.ts';

export const quietLogger: RuntimeLogger = { info() {}, warn() {}, error() {} };

export interface AnalyticsRig {
  readonly log: MemoryEventLog;
  readonly events: MemoryEventStore;
  readonly rollups: MemoryRollupStore;
  readonly merchants: MemoryMerchantStore;
  readonly processor: AnalyticsProcessor;
}

export async function analyticsRig(options: {
  partitions?: number;
  logFaults?: MemoryFaultOptions;
  rollupFaults?: MemoryRollupFaults;
  rules?: AnalyticsRules;
} = {}): Promise<AnalyticsRig> {
  const log = MemoryEventLog.create(options.logFaults ? { faults: options.logFaults } : {});
  await log.ensureTopic(eventsTopic, options.partitions ?? 4);
  const events = MemoryEventStore.create();
  const rules = options.rules ?? currentRules;
  const rollups = MemoryRollupStore.create({ logicVersion: rules.logicVersion, ...(options.rollupFaults ? { faults: options.rollupFaults } : {}) });
  const merchants = MemoryMerchantStore.create();
  for (const [id, currency] of [['m_one', 'USD'], ['m_two', 'EUR'], ['m_test', 'USD']] as const) {
    await merchants.create({ merchant: { id, name: id, currency, allowedOrigins: [], createdMs: 0 }, writeKeyHash: `w-${id}`, secretKeyHash: `s-${id}` });
  }
  const processor = new AnalyticsProcessor({ events, rollups, merchants, rules });
  return { log, events, rollups, merchants, processor };
}

export async function appendEvents(log: EventLog, events: readonly TrackedEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    const chunk = events.slice(i, i + 500).map((event) => ({ key: event.merchantId, value: encodeTrackedEvent(event) }));
    for (;;) {
      try {
        await log.append(eventsTopic, chunk);
        break;
      } catch {
        // injected append failures: the collector would answer 503 and the client resend
      }
    }
  }
}

/** Runs the processor until its group has committed every record, then stops it gracefully. */
export async function processAll(rig: Pick<AnalyticsRig, 'log' | 'processor'>, options: { pollRecordsMax?: number; timeoutMs?: number } = {}): Promise<void> {
  const runtime = new ProcessorRuntime({
    log: rig.log, processor: rig.processor, logger: quietLogger, pollRecordsMax: options.pollRecordsMax ?? 300,
    pollWaitMs: 20, pollLingerMs: 0, retryBaseDelayMs: 1, retryDelayMsMax: 5,
  });
  runtime.start();
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  try {
    while (!(await caughtUp(rig.log))) {
      if (Date.now() > deadline) throw new Error('processor did not catch up in time');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await runtime.stop();
  }
}

async function caughtUp(log: EventLog): Promise<boolean> {
  const [ends, committed] = await Promise.all([log.endOffsets(eventsTopic), log.committedOffsets(analyticsGroup, eventsTopic)]);
  for (const [partition, end] of ends) if ((committed.get(partition) ?? 0) < end) return false;
  return true;
}

export interface CellSnapshot {
  events: number;
  revenue: string;
  users: number;
  sessions: number;
}

/** Every cell of the given merchants and dimensions in one generation, keyed for deep-equality checks. */
export async function snapshotCells(
  rollups: RollupStore, merchantIds: readonly string[], dimensions: readonly string[], generation = 1,
  range: { fromMs: number; toMs: number } = { fromMs: 0, toMs: Date.UTC(2100, 0, 1) },
): Promise<Map<string, CellSnapshot>> {
  const out = new Map<string, CellSnapshot>();
  for (const merchantId of merchantIds) {
    for (const granularity of ['minute', 'hour', 'day'] as Granularity[]) {
      for (const dimension of dimensions) {
        const cells = await rollups.readCells({ merchantId, generation, granularity, dimension, ...range });
        for (const { key, value } of cells) {
          out.set(`${merchantId}|${granularity}|${key.bucketMs}|${dimension}|${key.value}`, {
            events: value.events, revenue: value.revenue.toString(),
            users: estimateHllBytes(value.users), sessions: estimateHllBytes(value.sessions),
          });
        }
      }
    }
  }
  return out;
}
