// Keeps the embedded log from growing without bound: on a timer, records older than the retention
// that every consumer group has committed past are deleted. Dead-letter topics, which no group
// consumes, are kept for people to read. A failed pass is logged and retried on the next tick.

export interface PrunableLog {
  prune(options: { readonly olderThanMs: number }): Promise<{ recordsDeleted: number }>;
}

export interface RetentionOptions {
  readonly retentionMs: number;
  readonly intervalMs: number;
  readonly logger: { info(object: object, message: string): void; warn(object: object, message: string): void };
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
    running ??= log.prune({ olderThanMs: options.retentionMs })
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
