// In-process EventLog with the SQLite log's semantics but no durability: for unit tests and
// single-process experiments. Seeded fault injection (failed appends, redelivery) exercises the
// runtime's retry and idempotence logic in fast, repeatable tests.

import { limits } from '../../core/limits.ts';
import {
  assertAppendRecords,
  assertPollArguments,
  assertConsumerOptions,
  positiveInteger,
  assertTopicShape,
  partitionForKey,
} from '../../core/partitioner.ts';
import { LogFencedError, LogUnavailableError } from '../../core/ports/event-log.ts';
import type {
  AppendRecord,
  ConsumedRecord,
  ConsumerOptions,
  EventLog,
  LogConsumer,
  LogPartition,
  LogPosition,
} from '../../core/ports/event-log.ts';
import { randomInteger, seededRandom } from './prng.ts';
import type { Random } from './prng.ts';

export interface MemoryFaultOptions {
  readonly seed: number;
  /** Chance, per partition and poll, that the previous batch is partly re-delivered (a rewind). */
  readonly duplicateRate?: number;
  /** Chance that an append rejects with LogUnavailableError (nothing of it is stored). */
  readonly appendFailureRate?: number;
}

export interface MemoryEventLogOptions {
  /** A member that stopped polling keeps its partitions this long after its last heartbeat. */
  readonly sessionTimeoutMs?: number;
  /** A member that has not polled for this long stops heartbeating (Kafka's max.poll.interval). */
  readonly pollIntervalMsMax?: number;
  readonly appendQueueRecordsMax?: number;
  readonly faults?: MemoryFaultOptions;
}

export const memoryEventLogDefaults = {
  sessionTimeoutMs: 10_000,
  pollIntervalMsMax: 300_000,
  appendQueueRecordsMax: limits.appendQueueRecordsMax,
} as const;

/** A waiting poll re-checks membership this often, so it notices freed or expired partitions. */
const rebalanceCheckMsMax = 100;

interface StoredRecord {
  readonly key: string;
  readonly value: string;
  readonly appendedMs: number;
}

interface Lease {
  owner: MemoryConsumer | undefined;
  generation: number;
}

interface Group {
  readonly members: Set<MemoryConsumer>;
  readonly leases: Map<string, Lease>;
  readonly committed: Map<string, number>;
}

interface PendingAppend {
  readonly topic: string;
  readonly records: readonly AppendRecord[];
  readonly partitions: readonly number[];
  readonly resolve: (positions: LogPosition[]) => void;
}

interface OwnedPartition {
  readonly topic: string;
  readonly partition: number;
  readonly generation: number;
  /** Next offset this member returns (past the committed offset once records were returned). */
  position: number;
  /** Where the last batch from this partition started: a duplicate fault rewinds into it. */
  lastBatchStart: number;
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export class MemoryEventLog implements EventLog {
  readonly sessionTimeoutMs: number;
  readonly pollIntervalMsMax: number;
  readonly #appendQueueRecordsMax: number;
  readonly #topics = new Map<string, StoredRecord[][]>();
  readonly #groups = new Map<string, Group>();
  readonly #consumers = new Set<MemoryConsumer>();
  readonly #waiters = new Set<() => void>();
  readonly #faults: { random: Random; duplicateRate: number; appendFailureRate: number } | undefined;
  #pending: PendingAppend[] = [];
  #pendingRecords = 0;
  #flushScheduled = false;
  #closed = false;
  #membersCreated = 0;

  static create(options: MemoryEventLogOptions = {}): MemoryEventLog {
    return new MemoryEventLog(options);
  }

  constructor(options: MemoryEventLogOptions = {}) {
    this.sessionTimeoutMs = positiveInteger('sessionTimeoutMs', options.sessionTimeoutMs, memoryEventLogDefaults.sessionTimeoutMs);
    this.pollIntervalMsMax = positiveInteger('pollIntervalMsMax', options.pollIntervalMsMax, memoryEventLogDefaults.pollIntervalMsMax);
    this.#appendQueueRecordsMax = positiveInteger(
      'appendQueueRecordsMax',
      options.appendQueueRecordsMax,
      memoryEventLogDefaults.appendQueueRecordsMax,
    );
    const faults = options.faults;
    if (faults !== undefined) {
      this.#faults = {
        random: seededRandom(faults.seed),
        duplicateRate: rate('duplicateRate', faults.duplicateRate),
        appendFailureRate: rate('appendFailureRate', faults.appendFailureRate),
      };
    }
  }

  async ensureTopic(topic: string, partitions: number): Promise<void> {
    this.#assertOpen();
    assertTopicShape(topic, partitions);
    const existing = this.#topics.get(topic);
    if (existing === undefined) {
      this.#topics.set(topic, Array.from({ length: partitions }, (): StoredRecord[] => []));
      return;
    }
    if (existing.length !== partitions) {
      throw new Error(
        `topic "${topic}" has ${existing.length} partitions; asked for ${partitions}. ` +
          'Partition counts never change (that would move keys to other partitions).',
      );
    }
  }

  append(topic: string, records: readonly AppendRecord[]): Promise<LogPosition[]> {
    try {
      this.#assertOpen();
      assertAppendRecords(topic, records);
      const partitions = this.#partitionsOf(topic);
      if (records.length > this.#appendQueueRecordsMax) {
        throw new RangeError(`append of ${records.length} records can never fit the queue of ${this.#appendQueueRecordsMax}`);
      }
      if (records.length === 0) return Promise.resolve([]);
      if (this.#faults !== undefined && this.#faults.random() < this.#faults.appendFailureRate) {
        throw new LogUnavailableError(`append to "${topic}" failed (injected fault)`);
      }
      if (this.#pendingRecords + records.length > this.#appendQueueRecordsMax) {
        throw new LogUnavailableError(
          `append queue is full (${this.#pendingRecords} + ${records.length} records > ${this.#appendQueueRecordsMax})`,
        );
      }
      const recordPartitions = records.map((record) => partitionForKey(record.key, partitions.length));
      return new Promise<LogPosition[]>((resolve) => {
        this.#pending.push({ topic, records, partitions: recordPartitions, resolve });
        this.#pendingRecords += records.length;
        this.#scheduleFlush();
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  consumer(options: ConsumerOptions): LogConsumer {
    this.#assertOpen();
    assertConsumerOptions(options);
    this.#membersCreated += 1;
    const consumer = new MemoryConsumer(this, options, `member-${String(this.#membersCreated).padStart(6, '0')}`);
    this.#consumers.add(consumer);
    return consumer;
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    this.#assertOpen();
    const partitions = this.#partitionsOf(topic);
    return new Map(partitions.map((records, partition) => [partition, records.length]));
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    this.#assertOpen();
    const partitions = this.#partitionsOf(topic);
    const committed = new Map<number, number>();
    const groupState = this.#groups.get(group);
    if (groupState === undefined) return committed;
    for (let partition = 0; partition < partitions.length; partition++) {
      const offset = groupState.committed.get(partitionKey(topic, partition));
      if (offset !== undefined) committed.set(partition, offset);
    }
    return committed;
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    const consumers = [...this.#consumers];
    await Promise.allSettled(consumers.map((consumer) => consumer.close()));
    this.wakeWaiters();
  }

  // Internal API for MemoryConsumer (same module).

  get closed(): boolean {
    return this.#closed;
  }

  get faults(): { random: Random; duplicateRate: number } | undefined {
    return this.#faults;
  }

  partitionsOrUndefined(topic: string): StoredRecord[][] | undefined {
    return this.#topics.get(topic);
  }

  group(name: string): Group {
    let group = this.#groups.get(name);
    if (group === undefined) {
      group = { members: new Set(), leases: new Map(), committed: new Map() };
      this.#groups.set(name, group);
    }
    return group;
  }

  forget(consumer: MemoryConsumer): void {
    this.#consumers.delete(consumer);
  }

  /** Resolves after an append lands or `waitMs` passes, whichever is first. */
  waitForAppend(waitMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, waitMs);
      this.#waiters.add(wake);
    });
  }

  #partitionsOf(topic: string): StoredRecord[][] {
    const partitions = this.#topics.get(topic);
    if (partitions === undefined) throw new Error(`unknown topic "${topic}": call ensureTopic first`);
    return partitions;
  }

  #assertOpen(): void {
    if (this.#closed) throw new LogUnavailableError('the event log is closed');
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // One flush per event-loop turn: the in-memory twin of the SQLite group commit.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingRecords = 0;
    const appendedMs = Date.now();
    for (const append of batch) {
      const partitions = this.#partitionsOf(append.topic);
      const positions = append.records.map((record, index): LogPosition => {
        const partition = append.partitions[index]!;
        const stored = partitions[partition]!;
        stored.push({ key: record.key, value: record.value, appendedMs });
        return { topic: append.topic, partition, offset: stored.length - 1 };
      });
      append.resolve(positions);
    }
    if (batch.length > 0) this.wakeWaiters();
  }

  /** Wakes every waiting poll: records arrived, or a consumer closed and must stop waiting. */
  wakeWaiters(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

class MemoryConsumer implements LogConsumer {
  readonly memberId: string;
  readonly #log: MemoryEventLog;
  readonly #options: ConsumerOptions;
  readonly #owned = new Map<string, OwnedPartition>();
  #joined = false;
  #lastPollMs = 0;
  #polling = false;
  #closed = false;
  #readRotation = 0;

  constructor(log: MemoryEventLog, options: ConsumerOptions, memberId: string) {
    this.#log = log;
    this.#options = options;
    this.memberId = memberId;
  }

  /** Alive: it polled recently enough that, heartbeating, its session has not run out. */
  isAlive(nowMs: number): boolean {
    return !this.#closed && this.#joined && nowMs - this.#lastPollMs < this.#log.pollIntervalMsMax + this.#log.sessionTimeoutMs;
  }

  async poll(maxRecords: number, maxWaitMs: number): Promise<ConsumedRecord[]> {
    assertPollArguments(maxRecords, maxWaitMs);
    if (this.#closed) throw new Error(`consumer ${this.memberId} of group "${this.#options.group}" is closed`);
    if (this.#polling) throw new Error('poll is already in progress on this consumer');
    this.#polling = true;
    try {
      const deadlineMs = Date.now() + maxWaitMs;
      for (;;) {
        if (this.#closed) return [];
        await this.#rebalance();
        if (this.#closed) return [];
        const records = this.#read(maxRecords);
        if (records.length > 0) return records;
        const remainingMs = deadlineMs - Date.now();
        if (remainingMs <= 0) return [];
        await this.#log.waitForAppend(Math.min(remainingMs, rebalanceCheckMsMax));
      }
    } finally {
      this.#polling = false;
    }
  }

  async commit(positions: readonly LogPosition[]): Promise<void> {
    const group = this.#log.group(this.#options.group);
    for (const position of positions) {
      const key = partitionKey(position.topic, position.partition);
      const owned = this.#owned.get(key);
      const lease = group.leases.get(key);
      if (owned === undefined || lease === undefined || lease.owner !== this || lease.generation !== owned.generation) {
        throw new LogFencedError(
          `group "${this.#options.group}": member ${this.memberId} no longer owns ${position.topic}[${position.partition}]`,
        );
      }
      const end = this.#log.partitionsOrUndefined(position.topic)?.[position.partition]?.length ?? 0;
      if (!Number.isSafeInteger(position.offset) || position.offset < 0 || position.offset > end) {
        throw new RangeError(`commit ${position.topic}[${position.partition}]: offset ${position.offset} is outside 0..${end}`);
      }
    }
    // Checked all first, then applied: a fenced commit changes nothing.
    for (const position of positions) group.committed.set(partitionKey(position.topic, position.partition), position.offset);
  }

  assignment(): readonly LogPartition[] {
    return [...this.#owned.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const group = this.#log.group(this.#options.group);
    const owned = [...this.#owned.values()];
    try {
      if (owned.length > 0 && this.#options.onRevoked !== undefined) await this.#options.onRevoked(partitionsOf(owned));
    } finally {
      for (const lease of group.leases.values()) if (lease.owner === this) lease.owner = undefined;
      this.#owned.clear();
      group.members.delete(this);
      this.#log.forget(this);
      this.#log.wakeWaiters();
    }
  }

  async #rebalance(): Promise<void> {
    const nowMs = Date.now();
    this.#lastPollMs = nowMs;
    this.#joined = true;
    const group = this.#log.group(this.#options.group);
    group.members.add(this);
    await this.#revokeLost(group);
    const quota = this.#quota(group, nowMs);
    if (this.#owned.size > quota) await this.#releaseExtras(group, this.#owned.size - quota);
    else if (this.#owned.size < quota) await this.#claimFree(group, nowMs, quota - this.#owned.size);
  }

  /** Partitions another member took while this one was silent: tell the handler, after the fact. */
  async #revokeLost(group: Group): Promise<void> {
    const lost: OwnedPartition[] = [];
    for (const [key, owned] of this.#owned) {
      const lease = group.leases.get(key);
      if (lease === undefined || lease.owner !== this || lease.generation !== owned.generation) lost.push(owned);
    }
    if (lost.length === 0) return;
    for (const owned of lost) this.#owned.delete(partitionKey(owned.topic, owned.partition));
    if (this.#options.onRevoked !== undefined) await this.#options.onRevoked(partitionsOf(lost));
  }

  /** This member's fair share: live members sorted by id, the first (P mod M) take one extra. */
  #quota(group: Group, nowMs: number): number {
    const live = [...group.members].filter((member) => member.isAlive(nowMs));
    live.sort((left, right) => (left.memberId < right.memberId ? -1 : left.memberId > right.memberId ? 1 : 0));
    const rank = live.indexOf(this);
    const total = this.#subscribedPartitions().length;
    return Math.floor(total / live.length) + (rank < total % live.length ? 1 : 0);
  }

  async #releaseExtras(group: Group, count: number): Promise<void> {
    const extras = [...this.#owned.values()].slice(-count);
    // The handler finishes and commits while this member still owns them.
    if (this.#options.onRevoked !== undefined) await this.#options.onRevoked(partitionsOf(extras));
    for (const owned of extras) {
      const key = partitionKey(owned.topic, owned.partition);
      const lease = group.leases.get(key);
      if (lease !== undefined && lease.owner === this && lease.generation === owned.generation) lease.owner = undefined;
      this.#owned.delete(key);
    }
  }

  async #claimFree(group: Group, nowMs: number, count: number): Promise<void> {
    const claimed: OwnedPartition[] = [];
    for (const { topic, partition } of this.#subscribedPartitions()) {
      if (claimed.length === count) break;
      const key = partitionKey(topic, partition);
      const lease = group.leases.get(key) ?? { owner: undefined, generation: 0 };
      if (lease.owner !== undefined && (lease.owner === this || lease.owner.isAlive(nowMs))) continue;
      // A new generation fences the previous owner's commits.
      lease.owner = this;
      lease.generation += 1;
      group.leases.set(key, lease);
      const position = group.committed.get(key) ?? 0;
      const owned: OwnedPartition = { topic, partition, generation: lease.generation, position, lastBatchStart: position };
      this.#owned.set(key, owned);
      claimed.push(owned);
    }
    if (claimed.length > 0 && this.#options.onAssigned !== undefined) await this.#options.onAssigned(partitionsOf(claimed));
  }

  #subscribedPartitions(): LogPartition[] {
    const all: LogPartition[] = [];
    for (const topic of new Set(this.#options.topics)) {
      const partitions = this.#log.partitionsOrUndefined(topic);
      if (partitions !== undefined) for (let partition = 0; partition < partitions.length; partition++) all.push({ topic, partition });
    }
    return all;
  }

  #read(maxRecords: number): ConsumedRecord[] {
    const owned = [...this.#owned.values()];
    const records: ConsumedRecord[] = [];
    // Rotate the first partition read so one busy partition cannot starve the others.
    this.#readRotation = (this.#readRotation + 1) % Math.max(owned.length, 1);
    for (let index = 0; index < owned.length && records.length < maxRecords; index++) {
      const entry = owned[(this.#readRotation + index) % owned.length]!;
      this.#maybeRewind(entry);
      const stored = this.#log.partitionsOrUndefined(entry.topic)?.[entry.partition] ?? [];
      const start = entry.position;
      const end = Math.min(stored.length, start + maxRecords - records.length);
      for (let offset = start; offset < end; offset++) {
        const record = stored[offset]!;
        records.push({ topic: entry.topic, partition: entry.partition, offset, key: record.key, value: record.value, appendedMs: record.appendedMs });
      }
      if (end > start) {
        entry.lastBatchStart = start;
        entry.position = end;
      }
    }
    return records;
  }

  /** Duplicate fault: replay part of the last batch, as after a crash between a write and its commit. */
  #maybeRewind(entry: OwnedPartition): void {
    const faults = this.#log.faults;
    if (faults === undefined || faults.duplicateRate === 0 || entry.position <= entry.lastBatchStart) return;
    if (faults.random() < faults.duplicateRate) entry.position = randomInteger(faults.random, entry.lastBatchStart, entry.position);
  }
}

function partitionsOf(owned: readonly OwnedPartition[]): LogPartition[] {
  return owned.map(({ topic, partition }) => ({ topic, partition }));
}

function rate(name: string, value: number | undefined): number {
  const chosen = value ?? 0;
  if (!Number.isFinite(chosen) || chosen < 0 || chosen > 1) throw new RangeError(`faults.${name} must be from 0 to 1, got ${chosen}`);
  return chosen;
}
