// Test wiring for the ledger processor: its topics, a runtime that runs until the group has
// committed every command, and readers of the replies it wrote.
import { eventsTopic } from '../../src/analytics/processor.ts';
import { decodeTrackedEvent } from '../../src/analytics/event-codec.ts';
import type { TrackedEvent } from '../../src/core/event.ts';
import type { ConsumedRecord, EventLog } from '../../src/core/ports/event-log.ts';
import type { TransferCommand } from '../../src/core/payments/ledger.ts';
import {
  decodeTransferCommand, decodeTransferReply, ledgerGroup, transferFailedTopic, transferRequestedTopic, transferSucceededTopic, type TransferReply,
} from '../../src/payments/codec.ts';
import type { Processor } from '../../src/runtime/processor.ts';
import { ProcessorRuntime, type RuntimeLogger } from '../../src/runtime/processor-runtime.ts';

export const quietLogger: RuntimeLogger = { info() {}, warn() {}, error() {} };

/** Creates the topics the ledger processor reads and writes. */
export async function ensureLedgerTopics(log: EventLog, requestedPartitions: number): Promise<void> {
  await log.ensureTopic(transferRequestedTopic, requestedPartitions);
  for (const topic of [transferSucceededTopic, transferFailedTopic, eventsTopic]) await log.ensureTopic(topic, 2);
}

/** True when the ledger group has committed every record of the command topic. */
export async function ledgerCaughtUp(log: EventLog): Promise<boolean> {
  const [ends, committed] = await Promise.all([log.endOffsets(transferRequestedTopic), log.committedOffsets(ledgerGroup, transferRequestedTopic)]);
  for (const [partition, end] of ends) if ((committed.get(partition) ?? 0) < end) return false;
  return true;
}

/** Runs the processor in a runtime until its group has committed every command, then stops it. */
export async function processCommands(log: EventLog, processor: Processor, options: { pollRecordsMax?: number; timeoutMs?: number } = {}): Promise<void> {
  const runtime = new ProcessorRuntime({
    log, processor, logger: quietLogger, pollRecordsMax: options.pollRecordsMax ?? 500,
    pollWaitMs: 20, pollLingerMs: 0, retryBaseDelayMs: 1, retryDelayMsMax: 5,
  });
  runtime.start();
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  try {
    while (!(await ledgerCaughtUp(log))) {
      if (Date.now() > deadline) throw new Error('the ledger processor did not catch up in time');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await runtime.stop();
  }
}

let readers = 0;
/** A fresh Kafka group needs a join and a rebalance before its first records: seconds on a busy machine. */
const readTopicMsMax = 30_000;

/** Every record of a topic, read by a fresh group from the start. */
export async function readTopic(log: EventLog, topic: string): Promise<ConsumedRecord[]> {
  const ends = await log.endOffsets(topic);
  const total = [...ends.values()].reduce((sum, end) => sum + end, 0);
  const consumer = log.consumer({ group: `test-reader-${process.pid}-${readers++}`, topics: [topic] });
  const records: ConsumedRecord[] = [];
  try {
    const deadline = Date.now() + readTopicMsMax;
    while (records.length < total) {
      if (Date.now() > deadline) throw new Error(`read ${records.length} of ${total} records of ${topic}`);
      records.push(...(await consumer.poll(5_000, 100)));
    }
  } finally {
    await consumer.close();
  }
  return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** A record of the command topic, decoded: null when it is no command (a malformed record). */
export interface CommandRecord {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  readonly command: TransferCommand | null;
}

/** The command topic as the ledger read it, in (partition, offset) order. */
export async function readCommandRecords(log: EventLog): Promise<CommandRecord[]> {
  return (await readTopic(log, transferRequestedTopic)).map((record) => {
    const command = decodeTransferCommand(record.value);
    return { partition: record.partition, offset: record.offset, key: record.key, command: typeof command === 'string' ? null : command };
  });
}

export interface Reply extends TransferReply {
  readonly topic: string;
  readonly key: string;
  /** The command the reply answers (found by the request's position); null when that record was no command. */
  readonly command: TransferCommand | null;
  /** The transfer's status, or the error code when it was refused: what the reply says, in a word. */
  readonly says: string;
}

/** Every reply on `.succeeded` and `.failed`, decoded (a reply that does not decode fails the test), with its command (read here unless given). */
export async function readReplies(log: EventLog, commandRecords?: readonly CommandRecord[]): Promise<Reply[]> {
  const commands = new Map<string, TransferCommand | null>();
  for (const record of commandRecords ?? (await readCommandRecords(log))) commands.set(`${record.partition}:${record.offset}`, record.command);
  const replies: Reply[] = [];
  for (const topic of [transferSucceededTopic, transferFailedTopic]) {
    for (const record of await readTopic(log, topic)) {
      const reply = decodeTransferReply(record.value);
      if (typeof reply === 'string') throw new Error(`a reply on ${topic} does not decode: ${reply}: ${record.value}`);
      const command = commands.get(`${reply.request.partition}:${reply.request.offset}`);
      if (command === undefined) throw new Error(`a reply names no command: ${record.value}`);
      replies.push({ ...reply, topic, key: record.key, command, says: reply.error?.code ?? reply.transfer!.status });
    }
  }
  return replies;
}

export async function readPaymentEvents(log: EventLog): Promise<{ key: string; event: TrackedEvent }[]> {
  return (await readTopic(log, eventsTopic)).map((record) => {
    const event = decodeTrackedEvent(record.value);
    if (typeof event === 'string') throw new Error(`an analytics event does not decode: ${event}`);
    return { key: record.key, event };
  });
}
