// The one loop every processor runs in: poll a bounded batch → handle → (idempotent write inside
// handle) → dead-letter what can never succeed → commit. Transient failures retry with capped
// exponential backoff and full jitter, indefinitely (the store being down pauses, never drops);
// other failures retry a bounded number of times, then the batch is split to isolate the
// poison records, which go to `<topic>.dlq` with the reason. Shutdown drains: stop polling,
// finish the batch in hand, commit, close.
import { LogFencedError, LogUnavailableError, type ConsumedRecord, type EventLog, type LogConsumer, type LogPosition } from '../core/ports/event-log.ts';
import { limits } from '../core/limits.ts';
import { TransientError, type DeadLetter, type Processor } from './processor.ts';

export interface RuntimeObserver {
  batchHandled(processor: string, records: readonly ConsumedRecord[], durationMs: number): void;
  deadLettered(processor: string, letter: DeadLetter): void;
  retried(processor: string, transient: boolean, error: unknown): void;
}

export interface RuntimeLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface RuntimeOptions {
  readonly log: EventLog;
  readonly processor: Processor;
  readonly logger: RuntimeLogger;
  readonly observer?: RuntimeObserver;
  readonly pollRecordsMax?: number;
  readonly pollWaitMs?: number;
  /** A small batch waits this long for more records (0: handle at once, as tests do). */
  readonly pollLingerMs?: number;
  readonly retryAttemptsMax?: number;
  readonly retryBaseDelayMs?: number;
  readonly retryDelayMsMax?: number;
  /** Injected for tests: seeded jitter. */
  readonly random?: () => number;
}

export const deadLetterTopic = (topic: string): string => `${topic}.dlq`;

/** Dead letters are few and read by people: one partition keeps them in order. */
const deadLetterPartitions = 1;

/** Shutdown came while a batch was still failing: leave it uncommitted; it is redelivered. */
class BatchAbandoned extends Error {}

export class ProcessorRuntime {
  readonly #options: RuntimeOptions;
  readonly #abort = new AbortController();
  #consumer: LogConsumer | null = null;
  #loop: Promise<void> | null = null;

  constructor(options: RuntimeOptions) {
    this.#options = options;
  }

  get name(): string {
    return this.#options.processor.name;
  }

  start(): void {
    if (this.#loop) throw new Error(`processor ${this.name} already started`);
    const { processor } = this.#options;
    this.#consumer = this.#options.log.consumer({
      group: processor.group,
      topics: processor.topics,
      onAssigned: async (partitions) => processor.onAssigned?.(partitions),
      onRevoked: async (partitions) => processor.onRevoked?.(partitions),
    });
    this.#loop = this.#run(this.#consumer).catch((error: unknown) => {
      this.#options.logger.error({ err: error, processor: this.name }, 'processor loop stopped on an unexpected error');
      throw error;
    });
  }

  /** Graceful stop: the batch in hand finishes and is committed, then the consumer closes. */
  async stop(): Promise<void> {
    this.#abort.abort();
    try {
      await this.#loop;
    } finally {
      await this.#consumer?.close();
      this.#consumer = null;
    }
  }

  async #run(consumer: LogConsumer): Promise<void> {
    if (!(await this.#ensureDeadLetterTopics())) return;
    const recordsMax = this.#options.pollRecordsMax ?? limits.pollRecordsMax;
    const waitMs = this.#options.pollWaitMs ?? 200;
    while (!this.#abort.signal.aborted) {
      const batch = await this.#pollBatch(consumer, recordsMax, waitMs);
      if (batch.length === 0) continue;
      const startedMs = performance.now();
      try {
        await this.#handleWithRetries(batch);
      } catch (error) {
        if (error instanceof BatchAbandoned) return;
        throw error;
      }
      await this.#commit(consumer, batch);
      this.#options.observer?.batchHandled(this.name, batch, performance.now() - startedMs);
    }
  }

  /**
   * Every batch costs a transaction and a read-modify-write of its cells, whatever its size: a
   * small batch waits a moment for more records, so a trickle becomes fewer, fuller batches.
   */
  async #pollBatch(consumer: LogConsumer, recordsMax: number, waitMs: number): Promise<ConsumedRecord[]> {
    const batch = await consumer.poll(recordsMax, waitMs);
    const lingerMs = this.#options.pollLingerMs ?? limits.pollLingerMs;
    // A full poll (even one below pollLingerRecordsMin, when the runtime was given a small maximum)
    // has nothing to wait for: asking for zero more records would be an error.
    if (batch.length === 0 || batch.length >= Math.min(limits.pollLingerRecordsMin, recordsMax) || lingerMs === 0) return batch;
    await new Promise((resolve) => setTimeout(resolve, lingerMs));
    if (this.#abort.signal.aborted) return batch;
    return batch.concat(await consumer.poll(recordsMax - batch.length, 0));
  }

  async #handleWithRetries(batch: readonly ConsumedRecord[]): Promise<void> {
    const attemptsMax = this.#options.retryAttemptsMax ?? limits.retryAttemptsMax;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.#options.processor.handle(batch, { signal: this.#abort.signal, attempt });
        await this.#deadLetter(result.deadLetters);
        return;
      } catch (error) {
        const transient = error instanceof TransientError;
        this.#options.observer?.retried(this.name, transient, error);
        if (!transient && attempt >= attemptsMax) {
          this.#options.logger.warn({ err: error, processor: this.name, records: batch.length }, 'batch keeps failing: isolating records');
          await this.#isolate(batch, error);
          return;
        }
        this.#options.logger.warn({ err: error, processor: this.name, attempt, transient }, 'batch failed: retrying');
        await this.#sleep(this.#backoffMs(attempt));
      }
    }
  }

  /** Splits a failing batch in halves until the records that fail on their own are found. */
  async #isolate(batch: readonly ConsumedRecord[], error: unknown): Promise<void> {
    if (batch.length === 1) {
      const record = batch[0]!;
      const message = error instanceof Error ? error.message : String(error);
      await this.#deadLetter([{ record, code: 'handler_failed', message }]);
      return;
    }
    const middle = Math.ceil(batch.length / 2);
    for (const half of [batch.slice(0, middle), batch.slice(middle)]) {
      await this.#handleOnceOrIsolate(half);
    }
  }

  async #handleOnceOrIsolate(batch: readonly ConsumedRecord[]): Promise<void> {
    const attemptsMax = this.#options.retryAttemptsMax ?? limits.retryAttemptsMax;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attemptsMax; attempt++) {
      try {
        const result = await this.#options.processor.handle(batch, { signal: this.#abort.signal, attempt });
        await this.#deadLetter(result.deadLetters);
        return;
      } catch (error) {
        lastError = error;
        this.#options.observer?.retried(this.name, error instanceof TransientError, error);
        // A transient failure says nothing about the records: keep trying without counting it.
        if (error instanceof TransientError) attempt--;
        await this.#sleep(this.#backoffMs(attempt));
      }
    }
    await this.#isolate(batch, lastError);
  }

  async #deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const byTopic = new Map<string, DeadLetter[]>();
    for (const letter of letters) {
      const list = byTopic.get(letter.record.topic) ?? [];
      list.push(letter);
      byTopic.set(letter.record.topic, list);
    }
    for (const [topic, list] of byTopic) {
      const records = list.map((letter) => ({
        key: letter.record.key,
        value: JSON.stringify({
          processor: this.name,
          error: { code: letter.code, message: letter.message },
          source: { topic: letter.record.topic, partition: letter.record.partition, offset: letter.record.offset },
          key: letter.record.key,
          value: letter.record.value,
          failedAtMs: Date.now(),
        }),
      }));
      await this.#appendDurably(deadLetterTopic(topic), records);
      for (const letter of list) this.#options.observer?.deadLettered(this.name, letter);
    }
  }

  /** The dead-letter write must land before the commit skips the records: retry it until it does. */
  async #appendDurably(topic: string, records: { key: string; value: string }[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#options.log.append(topic, records);
        return;
      } catch (error) {
        this.#options.logger.warn({ err: error, topic, attempt }, 'dead-letter append failed: retrying');
        await this.#sleep(this.#backoffMs(attempt));
      }
    }
  }

  async #commit(consumer: LogConsumer, batch: readonly ConsumedRecord[]): Promise<void> {
    const next = new Map<string, LogPosition>();
    for (const record of batch) {
      const id = `${record.topic}\u0000${record.partition}`;
      const known = next.get(id);
      if (!known || known.offset <= record.offset) {
        next.set(id, { topic: record.topic, partition: record.partition, offset: record.offset + 1 });
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await consumer.commit([...next.values()]);
        return;
      } catch (error) {
        // Another member owns the partition now; it will redeliver, and handlers are idempotent.
        if (error instanceof LogFencedError) {
          this.#options.logger.warn({ processor: this.name, err: error }, 'commit fenced: partition moved to another member');
          return;
        }
        if (!(error instanceof LogUnavailableError)) throw error;
        // The log is down: the work is applied (and fenced by the stores), only the position is
        // not saved yet. Keep trying; a shutdown meanwhile leaves it to redelivery, which is harmless.
        this.#options.logger.warn({ processor: this.name, err: error, attempt }, 'commit failed: log unavailable, retrying');
        try {
          await this.#sleep(this.#backoffMs(attempt));
        } catch (abandoned) {
          if (abandoned instanceof BatchAbandoned) return;
          throw abandoned;
        }
      }
    }
  }

  /** Dead-letter topics must exist before the first poison record; the log may still be starting. */
  async #ensureDeadLetterTopics(): Promise<boolean> {
    for (const topic of this.#options.processor.topics) {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#options.log.ensureTopic(deadLetterTopic(topic), deadLetterPartitions);
          break;
        } catch (error) {
          if (!(error instanceof LogUnavailableError)) throw error;
          this.#options.logger.warn({ processor: this.name, err: error, attempt }, 'log unavailable at start: retrying');
          try {
            await this.#sleep(this.#backoffMs(attempt));
          } catch (abandoned) {
            if (abandoned instanceof BatchAbandoned) return false;
            throw abandoned;
          }
        }
      }
    }
    return true;
  }

  /** Capped exponential backoff with full jitter (spreads retries of many members apart). */
  #backoffMs(attempt: number): number {
    const base = this.#options.retryBaseDelayMs ?? limits.retryBaseDelayMs;
    const cap = this.#options.retryDelayMsMax ?? limits.retryDelayMsMax;
    const ceiling = Math.min(cap, base * 2 ** Math.min(attempt - 1, 30));
    const random = this.#options.random ?? Math.random;
    return Math.floor(random() * ceiling);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#abort.signal.aborted) return Promise.reject(new BatchAbandoned('shutting down'));
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#abort.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }
}
