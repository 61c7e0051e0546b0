// The distributed EventLog on Kafka (@platformatic/kafka). Appends from many callers are batched
// (linger) into one idempotent, acks=all produce request at a time: an append resolves only when
// the broker has every record on all in-sync replicas, with the offsets Kafka gave them. Records
// go to the partition partitionForKey names (Kafka's murmur2), the same placement as the embedded
// log. Consumers are Kafka consumer groups (see consumer.ts); offsets and topics go through the
// admin client. Every call is bounded by requestTimeoutMs: an unreachable broker is a
// LogUnavailableError, never a hang.

import { Admin, Producer } from '@platformatic/kafka';
import type { CompressionAlgorithmValue, MessageToProduce } from '@platformatic/kafka';
import { limits } from '../../core/limits.ts';
import {
  assertAppendRecords,
  assertConsumerOptions,
  assertTopicShape,
  partitionForKey,
  positiveInteger,
} from '../../core/partitioner.ts';
import { LogUnavailableError } from '../../core/ports/event-log.ts';
import type { AppendRecord, ConsumerOptions, EventLog, LogConsumer, LogPosition } from '../../core/ports/event-log.ts';
import { KafkaLogConsumer } from './consumer.ts';
import type { GroupSettings } from './consumer.ts';
import { asLogError, withDeadline } from './errors.ts';
import { ensureTopicExists, requirePartitionCount } from './topics.ts';

export interface KafkaEventLogOptions {
  /** host:port of one or more brokers (the rest are discovered). */
  readonly brokers: readonly string[];
  readonly clientId?: string;
  /** Replicas of each topic ensureTopic creates (production: 3). */
  readonly replicationFactor?: number;
  /** Replicas that must have a record before acks=all answers (production: 2). */
  readonly minInsyncReplicas?: number;
  /** A consumer whose process stops heartbeating loses its partitions after this (broker-bounded). */
  readonly sessionTimeoutMs?: number;
  readonly heartbeatIntervalMs?: number;
  /**
   * A member that has not polled for this long gives its partitions up when another member of
   * its group is waiting for them (Kafka's max.poll.interval.ms; also the rebalance timeout).
   */
  readonly pollIntervalMsMax?: number;
  /** Longest any call waits for Kafka before it fails with LogUnavailableError. */
  readonly requestTimeoutMs?: number;
  /** Records accepted but not yet acknowledged; past it appends reject with LogUnavailableError. */
  readonly appendQueueRecordsMax?: number;
  /** How long an append waits for others to share its produce request. */
  readonly lingerMs?: number;
  /** Bytes of records per produce request, each counted with its overhead (below the broker's message.max.bytes, before compression). */
  readonly produceBytesMax?: number;
  readonly compression?: CompressionAlgorithmValue;
  /** Longest one fetch waits at the broker for records: bounds how late a poll notices a rebalance. */
  readonly fetchWaitMsMax?: number;
}

export const kafkaEventLogDefaults = {
  clientId: 'tally',
  replicationFactor: 1,
  minInsyncReplicas: 1,
  sessionTimeoutMs: 45_000,
  heartbeatIntervalMs: 3_000,
  pollIntervalMsMax: 300_000,
  requestTimeoutMs: 10_000,
  appendQueueRecordsMax: limits.appendQueueRecordsMax,
  // One produce request is in flight at a time, and appends arriving meanwhile share the next:
  // under load requests fill up by themselves, so a lone append need not wait.
  lingerMs: 0,
  // Below the broker's default message.max.bytes (1,048,588), with room for the batch headers.
  produceBytesMax: 1_000_000,
  // Pure JavaScript/WebAssembly in the client (no native addon); see the measurements in the report.
  compression: 'lz4',
  fetchWaitMsMax: 500,
} as const;

/** Longest ensureTopic waits for a new topic's partitions to be created and served. */
const topicCreationTimeoutMs = 60_000;

/** Client retries inside one call; requestTimeoutMs bounds the call as a whole. */
const clientRetries = 3;
const clientRetryDelayMs = 200;

/**
 * What a record adds to its key and value in a record batch, at most: length, attributes,
 * timestamp and offset deltas, key and value lengths (varints) and the header count. Counted so a
 * request of many small records, or of incompressible ones, stays under the broker's bound.
 */
const recordOverheadBytes = 32;

interface PendingAppend {
  readonly topic: string;
  readonly records: readonly AppendRecord[];
  readonly partitions: readonly number[];
  readonly bytes: number;
  readonly resolve: (positions: LogPosition[]) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  settled: boolean;
}

export class KafkaEventLog implements EventLog {
  readonly requestTimeoutMs: number;
  readonly #group: GroupSettings;
  readonly #clientOptions;
  readonly #replication;
  readonly #appendQueueRecordsMax: number;
  readonly #lingerMs: number;
  readonly #produceBytesMax: number;
  readonly #admin: Admin;
  readonly #producer: Producer;
  readonly #partitionCounts = new Map<string, number>();
  readonly #consumers = new Set<KafkaLogConsumer>();
  #queue: PendingAppend[] = [];
  /** Records of appends not yet settled (queued, looking up their topic, or being produced). */
  #pendingRecords = 0;
  #sending: Promise<void> | undefined;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;

  /** Connects lazily: the first call opens the connections. */
  static connect(options: KafkaEventLogOptions): KafkaEventLog {
    return new KafkaEventLog(options);
  }

  constructor(options: KafkaEventLogOptions) {
    const defaults = kafkaEventLogDefaults;
    if (!Array.isArray(options.brokers) || options.brokers.length === 0) throw new TypeError('brokers must list at least one host:port');
    const sessionTimeoutMs = positiveInteger('sessionTimeoutMs', options.sessionTimeoutMs, defaults.sessionTimeoutMs);
    const heartbeatIntervalMs = positiveInteger('heartbeatIntervalMs', options.heartbeatIntervalMs, defaults.heartbeatIntervalMs);
    if (heartbeatIntervalMs >= sessionTimeoutMs) {
      throw new RangeError('heartbeatIntervalMs must be below sessionTimeoutMs, or live members lose their partitions');
    }
    this.requestTimeoutMs = positiveInteger('requestTimeoutMs', options.requestTimeoutMs, defaults.requestTimeoutMs);
    const replicationFactor = positiveInteger('replicationFactor', options.replicationFactor, defaults.replicationFactor);
    const minInsyncReplicas = positiveInteger('minInsyncReplicas', options.minInsyncReplicas, defaults.minInsyncReplicas);
    if (minInsyncReplicas > replicationFactor) {
      throw new RangeError(`minInsyncReplicas (${minInsyncReplicas}) cannot exceed replicationFactor (${replicationFactor}): no write could succeed`);
    }
    this.#replication = { replicationFactor, minInsyncReplicas };
    this.#appendQueueRecordsMax = positiveInteger('appendQueueRecordsMax', options.appendQueueRecordsMax, defaults.appendQueueRecordsMax);
    this.#lingerMs = options.lingerMs ?? defaults.lingerMs;
    if (!Number.isSafeInteger(this.#lingerMs) || this.#lingerMs < 0) throw new RangeError(`lingerMs must be a non-negative integer, got ${this.#lingerMs}`);
    this.#produceBytesMax = positiveInteger('produceBytesMax', options.produceBytesMax, defaults.produceBytesMax);
    this.#clientOptions = {
      clientId: options.clientId ?? defaults.clientId,
      bootstrapBrokers: [...options.brokers],
      // A request (connect included) never waits longer than a whole call may.
      timeout: this.requestTimeoutMs,
      requestTimeout: this.requestTimeoutMs,
      connectTimeout: this.requestTimeoutMs,
      retries: clientRetries,
      retryDelay: clientRetryDelayMs,
    };
    this.#group = {
      sessionTimeoutMs,
      heartbeatIntervalMs,
      pollIntervalMsMax: positiveInteger('pollIntervalMsMax', options.pollIntervalMsMax, defaults.pollIntervalMsMax),
      fetchWaitMsMax: positiveInteger('fetchWaitMsMax', options.fetchWaitMsMax, defaults.fetchWaitMsMax),
      requestTimeoutMs: this.requestTimeoutMs,
    };
    this.#admin = new Admin(this.#clientOptions);
    this.#producer = new Producer({
      ...this.#clientOptions,
      // Idempotent implies acks=all and one request in flight: retries never duplicate or reorder.
      idempotent: true,
      compression: options.compression ?? defaults.compression,
    });
  }

  async ensureTopic(topic: string, partitions: number): Promise<void> {
    this.#assertOpen();
    assertTopicShape(topic, partitions);
    // Creating a topic is rare (migrate, start) and slow for many partitions on a busy cluster:
    // it gets its own, longer budget than a request on the hot path.
    const timeoutMs = Math.max(this.requestTimeoutMs, topicCreationTimeoutMs);
    await withDeadline(
      ensureTopicExists(this.#admin, topic, partitions, this.#replication, timeoutMs),
      timeoutMs,
      `ensureTopic "${topic}"`,
    );
    this.#partitionCounts.set(topic, partitions);
  }

  append(topic: string, records: readonly AppendRecord[]): Promise<LogPosition[]> {
    try {
      this.#assertOpen();
      assertAppendRecords(topic, records);
      if (records.length > this.#appendQueueRecordsMax) {
        throw new RangeError(`append of ${records.length} records can never fit the queue of ${this.#appendQueueRecordsMax}`);
      }
      if (this.#pendingRecords + records.length > this.#appendQueueRecordsMax) {
        throw new LogUnavailableError(
          `append queue is full (${this.#pendingRecords} + ${records.length} records > ${this.#appendQueueRecordsMax})`,
        );
      }
    } catch (error) {
      return Promise.reject(error);
    }
    // Counted at once, before any await: the bound holds for appends fired together.
    this.#pendingRecords += records.length;
    return this.#appendToTopic(topic, records).finally(() => {
      this.#pendingRecords -= records.length;
    });
  }

  consumer(options: ConsumerOptions): LogConsumer {
    if (this.#closing !== undefined) throw new LogUnavailableError('the event log is closing');
    assertConsumerOptions(options);
    const consumer = new KafkaLogConsumer({
      clientOptions: this.#clientOptions,
      group: this.#group,
      consumer: options,
      admin: this.#admin,
      forget: (closed) => this.#consumers.delete(closed),
    });
    this.#consumers.add(consumer);
    return consumer;
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    this.#assertOpen();
    return withDeadline(this.#endOffsets(topic), this.requestTimeoutMs, `endOffsets "${topic}"`);
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    this.#assertOpen();
    return withDeadline(this.#committedOffsets(group, topic), this.requestTimeoutMs, `committedOffsets "${group}" "${topic}"`);
  }

  /** A metadata request: answers when at least one broker does. */
  async ping(): Promise<void> {
    this.#assertOpen();
    await withDeadline(this.#admin.metadata({ topics: [], forceUpdate: true }), this.requestTimeoutMs, 'ping');
  }

  /** Closes consumers (their onRevoked may still commit), flushes queued appends, then the clients. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
    clearTimeout(this.#lingerTimer);
    this.#startSending();
    while (this.#sending !== undefined) await this.#sending;
    this.#closed = true;
    await Promise.allSettled([this.#producer.close(true), this.#admin.close()]);
  }

  async #appendToTopic(topic: string, records: readonly AppendRecord[]): Promise<LogPosition[]> {
    const startedMs = Date.now();
    const partitionCount = this.#partitionCounts.get(topic) ?? (await this.#lookUpPartitionCount(topic));
    if (records.length === 0) return [];
    const partitions = records.map((record) => partitionForKey(record.key, partitionCount));
    const sizes = records.map((record) => Buffer.byteLength(record.key) + Buffer.byteLength(record.value) + recordOverheadBytes);
    const remainingMs = Math.max(0, this.requestTimeoutMs - (Date.now() - startedMs));
    // An append larger than one produce request (a processor's replies to a 20,000-record batch)
    // goes as several pieces, queued in order, so each request stays under the broker's bound; it
    // resolves once every piece is acknowledged, and fails as a whole if one piece fails.
    const pieces: { start: number; end: number; bytes: number }[] = [];
    for (let start = 0; start < records.length;) {
      let end = start;
      let bytes = 0;
      while (end < records.length && (end === start || bytes + sizes[end]! <= this.#produceBytesMax)) bytes += sizes[end++]!;
      pieces.push({ start, end, bytes });
      start = end;
    }
    const queued: PendingAppend[] = [];
    const fail = (error: unknown): void => {
      for (const piece of queued) this.#settle(piece, error);
      this.#queue = this.#queue.filter((pending) => !queued.includes(pending));
    };
    const done = pieces.map(({ start, end, bytes }) => new Promise<LogPosition[]>((resolve, reject) => {
      const pending: PendingAppend = {
        topic,
        records: records.slice(start, end),
        partitions: partitions.slice(start, end),
        bytes,
        resolve,
        reject,
        settled: false,
        // Queue wait and produce together stay within the promised time.
        timer: setTimeout(() => fail(new LogUnavailableError(`append to "${topic}": Kafka did not acknowledge within ${this.requestTimeoutMs} ms`)), remainingMs),
      };
      queued.push(pending);
      this.#queue.push(pending);
    }));
    this.#scheduleSend();
    try {
      return (await Promise.all(done)).flat();
    } catch (error) {
      fail(error);
      throw error;
    }
  }

  async #lookUpPartitionCount(topic: string): Promise<number> {
    const count = await withDeadline(requirePartitionCount(this.#admin, topic), this.requestTimeoutMs, `append to "${topic}"`);
    // Partition counts never change: remembered for the life of the log.
    this.#partitionCounts.set(topic, count);
    return count;
  }

  #scheduleSend(): void {
    if (this.#sending !== undefined) return;
    const full = (): boolean => this.#queue.reduce((sum, pending) => sum + pending.bytes, 0) >= this.#produceBytesMax;
    if (this.#lingerMs === 0 || this.#closing !== undefined || full()) {
      this.#startSending();
      return;
    }
    this.#lingerTimer ??= setTimeout(() => {
      this.#lingerTimer = undefined;
      this.#startSending();
    }, this.#lingerMs);
  }

  /** One produce request at a time; appends that arrive meanwhile share the next one. */
  #startSending(): void {
    if (this.#sending !== undefined) return;
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    this.#sending = this.#drainQueue().finally(() => {
      this.#sending = undefined;
      // Appends that arrived after the last request was put together.
      if (this.#queue.length > 0) this.#scheduleSend();
    });
  }

  async #drainQueue(): Promise<void> {
    while (this.#queue.length > 0) await this.#produce(this.#takeBatch());
  }

  /** Whole appends up to produceBytesMax (always at least one), so one request stays under the broker's bound. */
  #takeBatch(): PendingAppend[] {
    let bytes = 0;
    let count = 0;
    while (count < this.#queue.length && (count === 0 || bytes + this.#queue[count]!.bytes <= this.#produceBytesMax)) {
      bytes += this.#queue[count]!.bytes;
      count += 1;
    }
    return this.#queue.splice(0, count);
  }

  async #produce(batch: readonly PendingAppend[]): Promise<void> {
    const live = batch.filter((pending) => !pending.settled);
    if (live.length === 0) return;
    // Within one request each partition's records form one batch, in this order, from its base offset.
    const perPartition = new Map<string, number>();
    const indexes: number[][] = [];
    const messages: MessageToProduce[] = [];
    for (const pending of live) {
      indexes.push(
        pending.records.map((record, position) => {
          const partition = pending.partitions[position]!;
          const key = `${pending.topic}\u0000${partition}`;
          const index = perPartition.get(key) ?? 0;
          perPartition.set(key, index + 1);
          messages.push({ topic: pending.topic, partition, key: Buffer.from(record.key), value: Buffer.from(record.value) });
          return index;
        }),
      );
    }
    try {
      const result = await this.#producer.send({ messages });
      const baseOffsets = new Map((result.offsets ?? []).map((entry) => [`${entry.topic}\u0000${entry.partition}`, Number(entry.offset)]));
      live.forEach((pending, appendIndex) => {
        const positions = pending.partitions.map((partition, position): LogPosition => {
          const base = baseOffsets.get(`${pending.topic}\u0000${partition}`);
          if (base === undefined) throw new LogUnavailableError(`append to "${pending.topic}": Kafka answered without partition ${partition}`);
          return { topic: pending.topic, partition, offset: base + indexes[appendIndex]![position]! };
        });
        this.#settle(pending, undefined, positions);
      });
    } catch (error) {
      const failure = asLogError(error, 'append');
      for (const pending of live) this.#settle(pending, failure);
    }
  }

  #settle(pending: PendingAppend, error: unknown, positions?: LogPosition[]): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    if (positions !== undefined) pending.resolve(positions);
    else pending.reject(error);
  }

  async #endOffsets(topic: string): Promise<Map<number, number>> {
    const partitions = await this.#partitionsOf(topic);
    const listed = await this.#admin.listOffsets({
      topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp: -1n })) }],
    });
    const ends = new Map<number, number>();
    for (const entry of listed) for (const partition of entry.partitions) ends.set(partition.partitionIndex, Number(partition.offset));
    return new Map([...ends].sort(([left], [right]) => left - right));
  }

  async #committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    const partitions = await this.#partitionsOf(topic);
    const [listed] = await this.#admin.listConsumerGroupOffsets({
      groups: [{ groupId: group, topics: [{ name: topic, partitionIndexes: partitions }] }],
    });
    const committed = new Map<number, number>();
    for (const entry of listed?.topics ?? []) {
      // -1: nothing committed for that partition.
      for (const partition of entry.partitions) if (partition.committedOffset >= 0n) committed.set(partition.partitionIndex, Number(partition.committedOffset));
    }
    return committed;
  }

  async #partitionsOf(topic: string): Promise<number[]> {
    const count = this.#partitionCounts.get(topic) ?? (await this.#lookUpPartitionCount(topic));
    return Array.from({ length: count }, (_, index) => index);
  }

  #assertOpen(): void {
    if (this.#closed) throw new LogUnavailableError('the event log is closed');
  }
}
