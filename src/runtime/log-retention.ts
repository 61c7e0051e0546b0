// Keeps the embedded log from growing without bound: on a timer, records older than the retention
// are deleted where nobody still needs them —
//   - a topic some group consumes loses only what every such group has committed past;
//   - a reply topic (`….succeeded` / `….failed`) no group consumes loses records by age alone: a
//     reply is a signal to whoever waits for it now, and the truth it reports lives in a store;
//   - any other topic no group consumes keeps everything: dead letters (`….dlq`) are kept for
//     people to read, and a command or event topic whose processor has not started yet still has
//     a group coming to process it.
// Pruning by age cannot break a live waiter. requestOnce (`tally ping`) reads a reply appended
// after its command, at most its time-out (seconds) before, while the retention is 24 h by default
// and an hour at the least (TALLY_LOG_RETENTION_HOURS); the consumer it reads with skips pruned
// offsets. `?wait_ms=` on POST /v1/transfers reads the ledger store, never the reply topics.
// A failed pass is logged and retried on the next tick.
import { isReplyTopic } from './request-reply.ts';

export interface PrunableLog {
  prune(options: { readonly olderThanMs: number; readonly expireUnconsumed?: (topic: string) => boolean }): Promise<{ recordsDeleted: number }>;
}

export interface RetentionOptions {
  readonly retentionMs: number;
  readonly intervalMs: number;
  readonly logger: { info(object: object, message: string): void; warn(object: object, message: string): void };
  /** Which topics no group consumes may lose records by age alone; reply topics by default. */
  readonly expireUnconsumed?: (topic: string) => boolean;
}

export interface LogRetention {
  /** Runs one pass now (also what the timer runs); never throws. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

export function startLogRetention(log: PrunableLog, options: RetentionOptions): LogRetention {
  let running: Promise<number> | null = null;
  const runOnce = (): Promise<number> => {
    // One pass at a time: a slow pass is not stacked behind by the next tick.
    running ??= log.prune({ olderThanMs: options.retentionMs, expireUnconsumed: options.expireUnconsumed ?? isReplyTopic })
      .then(({ recordsDeleted }) => {
        if (recordsDeleted > 0) options.logger.info({ recordsDeleted }, 'log retention: pruned records');
        return recordsDeleted;
      })
      .catch((error: unknown) => {
        options.logger.warn({ err: error }, 'log retention: pass failed; retrying on the next tick');
        return 0;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = setInterval(() => void runOnce(), options.intervalMs);
  timer.unref();
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
