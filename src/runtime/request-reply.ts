// Request/reply over the log: a command goes to `<prefix>.<name>.requested`, its answer to
// `<prefix>.<name>.succeeded` or `<prefix>.<name>.failed`, keyed like the request. A Responder is
// the smallest way to answer such commands: decode + handle, run as a Processor by the runtime.
// Malformed commands are answered on `.failed` (invalid_format) and committed, never retried;
// handlers that keep failing are answered on `.failed` (handler_failed) and dead-lettered.
// Delivery is at-least-once, so a reply can repeat: requesters match replies on `request`.
import type { AppendRecord, ConsumedRecord, EventLog, LogPosition } from '../core/ports/event-log.ts';
import { limits } from '../core/limits.ts';
import { TransientError, type DeadLetter, type HandleContext, type HandleResult, type Processor } from './processor.ts';

export interface RequestReplyTopics {
  readonly requested: string;
  readonly succeeded: string;
  readonly failed: string;
}

/** A prefix or name: dot-separated words of Kafka's topic characters, so the three topics are legal. */
const topicPartPattern = /^[a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*$/;

export function requestReplyTopics(prefix: string, name: string): RequestReplyTopics {
  for (const part of [prefix, name]) {
    if (!topicPartPattern.test(part)) throw new Error(`request/reply: ${JSON.stringify(part)} is not a topic name part (a-z A-Z 0-9 _ - and inner dots)`);
  }
  const base = `${prefix}.${name}`;
  return { requested: `${base}.requested`, succeeded: `${base}.succeeded`, failed: `${base}.failed` };
}

/** Creates the three topics with one partition count (replies keep their request's key). */
export async function ensureRequestReplyTopics(log: EventLog, topics: RequestReplyTopics, partitions: number): Promise<void> {
  for (const topic of [topics.requested, topics.succeeded, topics.failed]) await log.ensureTopic(topic, partitions);
}

/** Where the answered command sits in the log: requesters match replies on it. */
export interface RequestRef {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
}

export interface SucceededReply<Output> {
  readonly request: RequestRef;
  readonly result: Output;
}

export interface FailedReply {
  readonly request: RequestRef;
  readonly error: { readonly code: string; readonly message: string };
}

export function requestRef(record: ConsumedRecord): RequestRef {
  return { partition: record.partition, offset: record.offset, key: record.key };
}

/** The `.failed` record for a command; the message is bounded (a reply is a signal, not a log). */
export function failedReply(record: ConsumedRecord, code: string, message: string): AppendRecord {
  const reply: FailedReply = { request: requestRef(record), error: { code, message: message.slice(0, limits.replyErrorMessageCharsMax) } };
  return { key: record.key, value: JSON.stringify(reply) };
}

export function succeededReply<Output>(record: ConsumedRecord, result: Output): AppendRecord {
  const reply: SucceededReply<Output> = { request: requestRef(record), result };
  return { key: record.key, value: JSON.stringify(reply) };
}

export type Decoded<Input> = { readonly ok: true; readonly input: Input } | { readonly ok: false; readonly message: string };

export interface ResponderDefinition<Input, Output> {
  /** First part of the topic names: an installation or environment ('tally' for built-ins). */
  readonly prefix: string;
  readonly name: string;
  /** Checks a command's parsed JSON; a refusal is answered `.failed` invalid_format with the message. */
  decode(json: unknown): Decoded<Input>;
  /**
   * Computes the answer (JSON-serialisable). Runs at least once per command, so effects must be
   * idempotent. Throw TransientError for "try again later" (retried without limit: a store that is
   * down pauses the responder, never drops a command); any other error is retried a bounded number
   * of times, then answered `.failed` handler_failed and dead-lettered.
   */
  handle(input: Input, context: { readonly signal: AbortSignal; readonly request: RequestRef }): Promise<Output>;
}

export interface ResponderOptions {
  readonly log: EventLog;
  /**
   * The attempt at which a command that still fails is answered `.failed` and dead-lettered. Keep
   * it at (or below) the runtime's retryAttemptsMax, so the responder, not the runtime's own
   * isolation, gives up first and the requester gets its answer.
   */
  readonly attemptsMax?: number;
}

export interface Responder {
  readonly topics: RequestReplyTopics;
  readonly group: string;
  processor(options: ResponderOptions): Processor;
}

export function defineResponder<Input, Output>(definition: ResponderDefinition<Input, Output>): Responder {
  const topics = requestReplyTopics(definition.prefix, definition.name);
  const group = `${definition.prefix}.${definition.name}.responder`;
  return { topics, group, processor: (options) => new ResponderProcessor(definition, topics, group, options) };
}

type Answer = { readonly reply: AppendRecord; readonly failed: boolean; readonly deadLetter: DeadLetter | null };

class ResponderProcessor<Input, Output> implements Processor {
  readonly name: string;
  readonly group: string;
  readonly topics: readonly string[];
  readonly #definition: ResponderDefinition<Input, Output>;
  readonly #replyTopics: RequestReplyTopics;
  readonly #options: ResponderOptions;

  constructor(definition: ResponderDefinition<Input, Output>, topics: RequestReplyTopics, group: string, options: ResponderOptions) {
    this.name = `${definition.name} responder`;
    this.group = group;
    this.topics = [topics.requested];
    this.#definition = definition;
    this.#replyTopics = topics;
    this.#options = options;
  }

  /**
   * Answers every command of the batch in offset order, then appends the answers in one step per
   * topic: a failure mid-batch appends nothing, and the retried batch answers each command once more.
   */
  async handle(batch: readonly ConsumedRecord[], context: HandleContext): Promise<HandleResult> {
    const lastAttempt = context.attempt >= (this.#options.attemptsMax ?? limits.retryAttemptsMax);
    const answers: Answer[] = [];
    for (const record of batch) answers.push(await this.#answer(record, context.signal, lastAttempt));
    const succeeded = answers.filter((answer) => !answer.failed).map((answer) => answer.reply);
    const failed = answers.filter((answer) => answer.failed).map((answer) => answer.reply);
    if (succeeded.length > 0) await this.#options.log.append(this.#replyTopics.succeeded, succeeded);
    if (failed.length > 0) await this.#options.log.append(this.#replyTopics.failed, failed);
    return { deadLetters: answers.flatMap((answer) => (answer.deadLetter ? [answer.deadLetter] : [])) };
  }

  async #answer(record: ConsumedRecord, signal: AbortSignal, lastAttempt: boolean): Promise<Answer> {
    try {
      const decoded = this.#decode(record.value);
      if (!decoded.ok) return { reply: failedReply(record, 'invalid_format', decoded.message), failed: true, deadLetter: null };
      const result = await this.#definition.handle(decoded.input, { signal, request: requestRef(record) });
      return { reply: succeededReply(record, result), failed: false, deadLetter: null };
    } catch (error) {
      // Transient: the runtime retries the batch without limit. Otherwise the batch is retried
      // with backoff until the last attempt, where the command is answered and set aside.
      if (error instanceof TransientError || !lastAttempt) throw error;
      const message = error instanceof Error ? error.message : String(error);
      return { reply: failedReply(record, 'handler_failed', message), failed: true, deadLetter: { record, code: 'handler_failed', message } };
    }
  }

  #decode(value: string): Decoded<Input> {
    let json: unknown;
    try {
      json = JSON.parse(value);
    } catch {
      return { ok: false, message: 'the command is not JSON' };
    }
    return this.#definition.decode(json);
  }
}

export type Reply = { readonly outcome: 'succeeded'; readonly result: unknown } | { readonly outcome: 'failed'; readonly error: FailedReply['error'] };

/** Replies read per poll while waiting for one. */
const replyPollRecordsMax = 500;
/** Longest single poll while waiting: the time-out is noticed within this. */
const replyPollWaitMsMax = 200;

/**
 * The smallest requester: appends one command and waits for the reply to it, matched on the
 * command's position (partition and offset), not its key. The group commits what it read, so the
 * next request through it starts past earlier replies. Null when no reply came in time (is a
 * responder running?). `tally ping` is built on it.
 */
export async function requestOnce(log: EventLog, topics: RequestReplyTopics, command: AppendRecord, options: { readonly group: string; readonly timeoutMs: number }): Promise<Reply | null> {
  const [position] = await log.append(topics.requested, [command]);
  const consumer = log.consumer({ group: options.group, topics: [topics.succeeded, topics.failed] });
  const deadline = performance.now() + options.timeoutMs;
  try {
    while (performance.now() < deadline) {
      const records = await consumer.poll(replyPollRecordsMax, Math.min(replyPollWaitMsMax, Math.max(0, deadline - performance.now())));
      if (records.length === 0) continue;
      await consumer.commit(nextPositions(records));
      for (const record of records) {
        const reply = replyTo(record, position!);
        if (reply) return reply;
      }
    }
    return null;
  } finally {
    await consumer.close();
  }
}

/** Per partition, the offset after the last record read. */
function nextPositions(records: readonly ConsumedRecord[]): LogPosition[] {
  const next = new Map<string, LogPosition>();
  for (const { topic, partition, offset } of records) {
    const id = `${topic}\u0000${partition}`;
    if ((next.get(id)?.offset ?? -1) <= offset) next.set(id, { topic, partition, offset: offset + 1 });
  }
  return [...next.values()];
}

function replyTo(record: ConsumedRecord, position: { partition: number; offset: number }): Reply | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(record.value);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const reply = parsed as { request?: Partial<RequestRef>; result?: unknown; error?: FailedReply['error'] };
  if (reply.request?.partition !== position.partition || reply.request.offset !== position.offset) return null;
  return reply.error ? { outcome: 'failed', error: reply.error } : { outcome: 'succeeded', result: reply.result };
}
