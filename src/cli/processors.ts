// Everything the processor role runs, each processor on its own ProcessorRuntime (its own consumer
// group, so a slow ledger never holds back analytics): the analytics processor, the ledger
// processor and the pruning of old idempotency keys, and the built-in ping
// responder. Used inline by `tally processor` and by the worker thread of `tally start`.
import type { Services } from '../app/services.ts';
import { AnalyticsProcessor } from '../analytics/processor.ts';
import { LedgerProcessor } from '../payments/processor.ts';
import { pingPartitions, pingResponder } from '../ping/responder.ts';
import { ProcessorRuntime } from '../runtime/processor-runtime.ts';
import type { Processor } from '../runtime/processor.ts';
import { ensureRequestReplyTopics } from '../runtime/request-reply.ts';
import { startLogRetention, type LogRetention } from '../runtime/log-retention.ts';
import { limits } from '../core/limits.ts';
import type { LedgerStore } from '../core/ports/ledger-store.ts';

export interface RunningProcessors {
  /** Drains every runtime (finish and commit the batch in hand), then stops the pruning. */
  stop(): Promise<void>;
}

export async function startProcessors(services: Services): Promise<RunningProcessors> {
  const { log, logger, metrics } = services;
  await ensureRequestReplyTopics(log, pingResponder.topics, pingPartitions);
  // Responders answer a caller who is waiting (wait_ms, ping): they take what a poll brings at once.
  // Analytics lingers for fuller batches (limits.pollLingerMs): nobody waits on one event.
  const processors: { processor: Processor; pollLingerMs?: number }[] = [
    { processor: new AnalyticsProcessor({ events: services.events, rollups: services.rollups, merchants: services.merchants, rules: services.rules, observer: metrics }) },
    { processor: pingResponder.processor({ log }), pollLingerMs: 0 },
    { processor: new LedgerProcessor({ ledger: services.ledger, log, observer: metrics, now: services.now }), pollLingerMs: 0 },
  ];
  const runtimes = processors.map(({ processor, pollLingerMs }) => new ProcessorRuntime({
    log, processor, logger, observer: metrics, ...(pollLingerMs === undefined ? {} : { pollLingerMs }),
  }));
  for (const runtime of runtimes) runtime.start();
  const pruning = startIdempotencyPruning(services.ledger, services);
  return {
    async stop() {
      const results = await Promise.allSettled([...runtimes.map((runtime) => runtime.stop()), pruning.stop()]);
      const failed = results.find((result) => result.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    },
  };
}

/** Keys are kept idempotencyKeyRetentionMs (a day) and pruned hourly, on the log-retention timer. */
function startIdempotencyPruning(ledger: LedgerStore, services: Services): LogRetention {
  const keys = { prune: async ({ olderThanMs }: { olderThanMs: number }) => ({ recordsDeleted: await ledger.pruneIdempotency(services.now() - olderThanMs) }) };
  return startLogRetention(keys, {
    retentionMs: limits.idempotencyKeyRetentionMs, intervalMs: limits.idempotencyPruneIntervalMs,
    logger: services.logger.child({ task: 'idempotency keys' }),
  });
}
