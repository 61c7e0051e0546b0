// Request/reply over the log: a command goes to `<prefix>.<name>.requested`, its answer to
// `<prefix>.<name>.succeeded` or `<prefix>.<name>.failed`, keyed like the request. A Responder is
// the smallest way to answer such commands: decode + handle, run as a Processor by the runtime.
// Malformed commands are answered on `.failed` (invalid_format) and committed, never retried;
// handlers that keep failing are answered on `.failed` (handler_failed) and dead-lettered.
// Delivery is at-least-once, so a reply can repeat: requesters match replies on `request`.
// Every reply, from a Responder or from a processor of its own (the ledger), starts from
// failedReplyBody or succeededReplyBody, so `request` and `error` have one shape everywhere.
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

/**
 * True for an outcome topic of the convention (`….succeeded`, `….failed`). Replies are signals to
 * whoever waits right now, so log retention may drop them by age when no group consumes them.
 */
export function isReplyTopic(topic: string): boolean {
  return topic.endsWith('.succeeded') || topic.endsWith('.failed');
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

/** The command is not JSON, or its decoder refused it: answered at once, committed past, never retried. */
export const invalidFormatCode = 'invalid_format';
/** The handler kept failing (not transiently) up to the last attempt: answered and dead-lettered. */
export const handlerFailedCode = 'handler_failed';

/** The message of an invalid_format reply to a record that is not JSON (the same from every responder). */
const notJsonMessage = 'the command is not JSON';

/** A command's parsed JSON, or the invalid_format message for a record that is not JSON. */
export function parseCommandJson(value: string): { readonly ok: true; readonly json: unknown } | { readonly ok: false; readonly message: string } {
  try {
    return { ok: true, json: JSON.parse(value) as unknown };
  } catch {
    return { ok: false, message: notJsonMessage };
  }
}

export function requestRef(record: ConsumedRecord): RequestRef {
  return { partition: record.partition, offset: record.offset, key: record.key };
}

/**
 * The body of a `.failed` reply. Processors that add fields of their own (the ledger adds the
 * decided `transfer`) start from it, so `request` and `error` look the same in every reply.
 * The message is bounded: a reply is a signal, not a log.
 */
export function failedReplyBody(request: RequestRef, code: string, message: string): FailedReply {
  return { request, error: { code, message: message.slice(0, limits.replyErrorMessageCharsMax) } };
}

/** The body of a `.succeeded` reply: the handler's output under `result`. */
export function succeededReplyBody<Output>(request: RequestRef, result: Output): SucceededReply<Output> {
  return { request, result };
}

/** The `.failed` record for a command, keyed like it. */
export function failedReply(record: ConsumedRecord, code: string, message: string): AppendRecord {
  return { key: record.key, value: JSON.stringify(failedReplyBody(requestRef(record), code, message)) };
}

export function succeededReply<Output>(record: ConsumedRecord, result: Output): AppendRecord {
  return { key: record.key, value: JSON.stringify(succeededReplyBody(requestRef(record), result)) };
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
      if (!decoded.ok) return { reply: failedReply(record, invalidFormatCode, decoded.message), failed: true, deadLetter: null };
      const result = await this.#definition.handle(decoded.input, { signal, request: requestRef(record) });
      return { reply: succeededReply(record, result), failed: false, deadLetter: null };
    } catch (error) {
      // Transient: the runtime retries the batch without limit. Otherwise the batch is retried
      // with backoff until the last attempt, where the command is answered and set aside.
      if (error instanceof TransientError || !lastAttempt) throw error;
      const message = error instanceof Error ? error.message : String(error);
      return { reply: failedReply(record, handlerFailedCode, message), failed: true, deadLetter: { record, code: handlerFailedCode, message } };
    }
  }

  #decode(value: string): Decoded<Input> {
    const parsed = parseCommandJson(value);
    return parsed.ok ? this.#definition.decode(parsed.json) : parsed;
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
 *
 * Log retention cannot take the awaited reply away: the reply is appended after the command, at
 * most `timeoutMs` before it is read, while the embedded log drops replies no group consumes only
 * once they are older than the retention (an hour at the least, 24 h by default); and once this
 * group has joined, the topic is consumed and keeps what the group has not committed past.
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
