// The ledger processor: transfer commands → the LedgerStore → replies on `.succeeded` / `.failed`
// (docs/request-reply.md; and a `payment` analytics event per succeeded transfer). Per log
// partition, in offset order:
//   1. records above the partition's settled offset are decided and written in one settle() with
//      the new offset (a conflict means another member moved it: reload and recompute);
//   2. records at or below it were decided before: their stored outcome is answered again, so a
//      crash between the settle and the replies loses no reply (replies are at-least-once:
//      listeners deduplicate by the request's position; analytics by the event id `payment:<transfer id>`);
//   3. a record that is no command is answered with `invalid_format` and committed past;
//   4. a command that keeps failing (not transiently) is answered `handler_failed` on its last
//      attempt and dead-lettered, as every responder's is; its transfer stays pending in the store.
// Replies are appended before handle() returns: the runtime commits only once they are durable.
import { type AppendRecord, type ConsumedRecord, type EventLog, type LogPartition } from '../core/ports/event-log.ts';
import { LedgerConflictError, type LedgerStore } from '../core/ports/ledger-store.ts';
import { samePayload, type Decision, type Transfer, type TransferCommand } from '../core/payments/ledger.ts';
import { emptyVisit, type TrackedEvent } from '../core/event.ts';
import { encodeTrackedEvent } from '../analytics/event-codec.ts';
import { eventsTopic } from '../analytics/processor.ts';
import { limits } from '../core/limits.ts';
import { asTransient, TransientError, type HandleContext, type HandleResult, type Processor } from '../runtime/processor.ts';
import { failedReply, handlerFailedCode, invalidFormatCode, requestRef } from '../runtime/request-reply.ts';
import {
  decodeTransferCommand, encodeReusedIdReply, encodeTransferReply, ledgerGroup, ledgerStream, transferFailedTopic, transferRequestedTopic, transferSucceededTopic,
} from './codec.ts';


/** How the commands of one handled batch ended. */
export interface LedgerCounts {
  readonly succeeded: number;
  readonly failed: number;
  /** Redelivered or resubmitted commands answered with their stored outcome. */
  readonly replayed: number;
  /** Commands that reused a transfer id with another payload. */
  readonly rejected: number;
  /** Records that were no transfer command (answered with invalid_format). */
  readonly malformed: number;
}

export interface LedgerObserver {
  transfersDecided(counts: LedgerCounts): void;
}

export interface LedgerProcessorOptions {
  readonly ledger: LedgerStore;
  /** Where replies and analytics events go (the log the commands come from). */
  readonly log: EventLog;
  readonly observer?: LedgerObserver;
  /** The settle time stamped on decided transfers (tests pin it). */
  readonly now?: () => number;
  /**
   * The attempt at which a single command that still fails is answered `.failed` handler_failed and
   * dead-lettered; keep it at (or below) the runtime's retryAttemptsMax, as for a responder.
   */
  readonly attemptsMax?: number;
}

/** Conflicts (another member settled the same offsets) are resolved by reloading: bounded. */
const conflictRetriesMax = 5;

interface Reply extends AppendRecord {
  readonly topic: string;
}

type Counter = { -readonly [K in keyof LedgerCounts]: number };

export class LedgerProcessor implements Processor {
  readonly name = 'ledger';
  readonly group = ledgerGroup;
  readonly topics = [transferRequestedTopic] as const;
  readonly #options: LedgerProcessorOptions;
  readonly #now: () => number;
  /** Settled offset per partition, as last read or written by this member. */
  readonly #settled = new Map<number, number>();

  constructor(options: LedgerProcessorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  async onAssigned(partitions: readonly LogPartition[]): Promise<void> {
    for (const { partition } of partitions) this.#settled.delete(partition);
  }

  async onRevoked(partitions: readonly LogPartition[]): Promise<void> {
    for (const { partition } of partitions) this.#settled.delete(partition);
  }

  async handle(batch: readonly ConsumedRecord[], context: HandleContext): Promise<HandleResult> {
    try {
      return await this.#handleBatch(batch);
    } catch (error) {
      // The runtime isolates a failing batch down to single commands; on a single command's last
      // attempt the convention answers it and sets it aside. Transient failures never run out.
      const lastAttempt = context.attempt >= (this.#options.attemptsMax ?? limits.retryAttemptsMax);
      if (error instanceof TransientError || batch.length !== 1 || !lastAttempt) throw error;
      const record = batch[0]!;
      const message = error instanceof Error ? error.message : String(error);
      const reply = failedReply(record, handlerFailedCode, message);
      await this.#append([{ topic: transferFailedTopic, ...reply }]);
      return { deadLetters: [{ record, code: handlerFailedCode, message }] };
    }
  }

  async #handleBatch(batch: readonly ConsumedRecord[]): Promise<HandleResult> {
    const counts: Counter = { succeeded: 0, failed: 0, replayed: 0, rejected: 0, malformed: 0 };
    // Log partitions are independent lineages (each its own settled offset): settled concurrently.
    const answered = await Promise.all([...Map.groupBy(batch, (record) => record.partition)]
      .map(([partition, records]) => this.#answerPartition(partition, records.toSorted((a, b) => a.offset - b.offset), counts)));
    await this.#append(answered.flat());
    this.#options.observer?.transfersDecided(counts);
    // Nothing is dead-lettered: a malformed command is answered on `.failed` instead.
    return { deadLetters: [] };
  }

  async #answerPartition(partition: number, records: readonly ConsumedRecord[], counts: Counter): Promise<Reply[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        // Counting starts once the settle is through: a conflict never counts twice.
        return await this.#settlePartition(partition, records, counts);
      } catch (error) {
        if (!(error instanceof LedgerConflictError)) throw asTransient(error);
        // Another member settled past our view of the partition: reload it and recompute.
        this.#settled.delete(partition);
        if (attempt >= conflictRetriesMax) throw new TransientError('ledger conflicts persist', { cause: error });
      }
    }
  }

  async #settlePartition(partition: number, records: readonly ConsumedRecord[], counts: Counter): Promise<Reply[]> {
    const settled = await this.#settledOffset(partition);
    const decoded = records.map((record) => ({ record, command: decodeTransferCommand(record.value) }));
    const fresh = decoded.filter((item) => item.record.offset > settled);
    let decisions: Decision[] = [];
    if (fresh.length > 0) {
      const throughOffset = fresh[fresh.length - 1]!.record.offset;
      const commands = fresh.flatMap((item) => (typeof item.command === 'string' ? [] : [item.command]));
      decisions = await this.#options.ledger.settle({ stream: ledgerStream, partition, fromOffset: settled + 1, throughOffset, commands, settledMs: this.#now() });
      this.#settled.set(partition, throughOffset);
    }
    const replies: Reply[] = [];
    let nextDecision = 0;
    for (const { record, command } of decoded) {
      if (typeof command === 'string') {
        counts.malformed++;
        replies.push({ topic: transferFailedTopic, ...failedReply(record, invalidFormatCode, command) });
      } else if (record.offset > settled) {
        replies.push(...repliesTo(record, decisions[nextDecision++]!, counts));
      } else {
        replies.push(...(await this.#storedReplies(record, command, counts)));
      }
    }
    return replies;
  }

  /** The answer to a command settled before (a redelivery after a crash or a rebalance), read from the store. */
  async #storedReplies(record: ConsumedRecord, command: TransferCommand, counts: Counter): Promise<Reply[]> {
    const stored = await this.#options.ledger.getTransfer(command.merchantId, command.id);
    if (stored && samePayload(stored, command)) {
      // settle() decides every command of its range with its offset: a settled command's transfer is final.
      if (stored.status === 'pending') throw new Error(`ledger: transfer ${command.id} is settled but still pending`);
      counts.replayed++;
      return transferReplies(record, stored);
    }
    // Another payload holds the id (this merchant's, or another's, which this merchant cannot see).
    counts.rejected++;
    return [reusedIdReply(record, command)];
  }

  async #settledOffset(partition: number): Promise<number> {
    const known = this.#settled.get(partition);
    if (known !== undefined) return known;
    const offset = await this.#options.ledger.settledOffset(ledgerStream, partition);
    this.#settled.set(partition, offset);
    return offset;
  }

  async #append(replies: readonly Reply[]): Promise<void> {
    const byTopic = Map.groupBy(replies, (reply) => reply.topic);
    try {
      await Promise.all([...byTopic].map(([topic, list]) => this.#options.log.append(topic, list.map(({ key, value }) => ({ key, value })))));
    } catch (error) {
      throw asTransient(error);
    }
  }
}

function repliesTo(record: ConsumedRecord, decision: Decision, counts: Counter): Reply[] {
  switch (decision.kind) {
    case 'succeeded':
      counts.succeeded++;
      return transferReplies(record, decision.transfer);
    case 'failed':
      counts.failed++;
      return transferReplies(record, decision.transfer);
    case 'replayed':
      counts.replayed++;
      return transferReplies(record, decision.transfer);
    case 'conflict':
      counts.rejected++;
      return [reusedIdReply(record, decision.command)];
  }
}

/** A decided transfer's reply, keyed like its command; a succeeded one also feeds the merchant's analytics. */
function transferReplies(record: ConsumedRecord, transfer: Transfer): Reply[] {
  const reply = { key: record.key, value: encodeTransferReply(requestRef(record), transfer) };
  if (transfer.status !== 'succeeded') return [{ topic: transferFailedTopic, ...reply }];
  return [
    { topic: transferSucceededTopic, ...reply },
    { topic: eventsTopic, key: transfer.merchantId, value: encodeTrackedEvent(paymentEvent(transfer)) },
  ];
}

function reusedIdReply(record: ConsumedRecord, command: TransferCommand): Reply {
  return { topic: transferFailedTopic, key: record.key, value: encodeReusedIdReply(requestRef(record), command) };
}

/**
 * The analytics event of a succeeded transfer. Its id is derived from the transfer's, so analytics
 * counts it once however often it is re-emitted; its time is the settle time, so the same event is
 * emitted every time. The paying account stands for the visitor (unique payers).
 */
export function paymentEvent(transfer: Transfer): TrackedEvent {
  const settledMs = transfer.settledMs;
  if (settledMs === null) throw new Error(`ledger: transfer ${transfer.id} is not decided; it has no payment event`);
  return {
    merchantId: transfer.merchantId,
    id: `payment:${transfer.id}`,
    type: 'payment',
    timestampMs: settledMs,
    receivedMs: settledMs,
    userId: null,
    anonymousId: transfer.fromAccountId,
    sessionId: null,
    visitorId: `a:${transfer.fromAccountId}`,
    properties: null,
    // Transfer amounts are at most 2^53 − 1 (the codec and the store refuse more): exact as a number.
    revenue: { amount: Number(transfer.amount), currency: transfer.currency },
    page: null,
    visit: emptyVisit,
    locale: null,
  };
}

