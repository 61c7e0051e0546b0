// What a processor is: the unit of extension. The runtime (processor-runtime.ts) polls a bounded
// batch from the processor's topics, calls `handle`, then commits. Handlers must be idempotent:
// delivery is at-least-once, and a crash between their write and the commit redelivers.
import { LogUnavailableError, type ConsumedRecord, type LogPartition } from '../core/ports/event-log.ts';
import { TallyError } from '../core/errors.ts';

export interface DeadLetter {
  readonly record: ConsumedRecord;
  /** A stable machine-readable reason, e.g. 'invalid_format'. */
  readonly code: string;
  readonly message: string;
}

export interface HandleResult {
  /** Records that can never succeed: the runtime sends them to `<topic>.dlq` and commits past them. */
  readonly deadLetters: readonly DeadLetter[];
}

export interface HandleContext {
  /** Aborted when the runtime shuts down: long handlers should finish their current step. */
  readonly signal: AbortSignal;
  readonly attempt: number;
}

export interface Processor {
  readonly name: string;
  readonly group: string;
  readonly topics: readonly string[];
  handle(batch: readonly ConsumedRecord[], context: HandleContext): Promise<HandleResult>;
  /** Partitions just assigned to this member: reload any per-partition state. */
  onAssigned?(partitions: readonly LogPartition[]): Promise<void>;
  /** Partitions about to be taken away: drop per-partition state. */
  onRevoked?(partitions: readonly LogPartition[]): Promise<void>;
}

/**
 * A failure worth retrying with the same input: the store or log is unavailable, or a
 * conditional write lost a race. Anything else thrown from `handle` is treated as a possible
 * poison record: retried a bounded number of times, then isolated and dead-lettered.
 */
export class TransientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/**
 * Store and log failures are availability problems, not poison records: processors rethrow them as
 * TransientError so the runtime retries without limit. Adapters say so with a retryable TallyError
 * or LogUnavailableError; SQLite's own busy/locked errors (another process holds the write lock
 * past the busy timeout) and a refused connection mean the same.
 */
export function asTransient(error: unknown): unknown {
  if (error instanceof TransientError) return error;
  if ((error instanceof TallyError && error.canRetry) || error instanceof LogUnavailableError) {
    return new TransientError(error.message, { cause: error });
  }
  if (error instanceof Error && /SQLITE_BUSY|SQLITE_LOCKED|database is locked|ECONNREFUSED/i.test(`${error.name} ${error.message}`)) {
    return new TransientError(error.message, { cause: error });
  }
  return error;
}
