// The embedded EventLog on one SQLite file (WAL, synchronous=FULL). Appends from many callers
// share one transaction and one fsync (group commit). Consumer groups coordinate through lease
// rows with generations (fencing tokens), so collector and processors may be separate processes.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { threadId } from 'node:worker_threads';
import type { DatabaseSync, SQLOutputValue, StatementSync } from 'node:sqlite';
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
import { openDatabase, transaction } from './database.ts';

export interface SqliteEventLogOptions {
  readonly path: string;
  /** A member that stopped heartbeating keeps its partitions this long (then another takes them). */
  readonly sessionTimeoutMs?: number;
  /** How often a member renews its leases; well under the session timeout. */
  readonly heartbeatIntervalMs?: number;
  /** A member that has not polled for this long stops heartbeating (Kafka's max.poll.interval). */
  readonly pollIntervalMsMax?: number;
  /** Appends arriving within this window share one transaction and one fsync. */
  readonly groupCommitWindowMs?: number;
  /** A queue this large is written at once instead of waiting for the window to end. */
  readonly groupCommitRecordsMax?: number;
  /** Records waiting for a group commit; past it appends reject with LogUnavailableError. */
  readonly appendQueueRecordsMax?: number;
  readonly busyTimeoutMs?: number;
}

export interface PruneOptions {
  /** Only records appended longer ago than this go. */
  readonly olderThanMs: number;
  /**
   * Says of a topic no group has ever consumed whether its records go by age alone. Without it, or
   * when it says false, such a topic keeps everything (a dead-letter topic, or a topic whose
   * consumer has not started yet).
   */
  readonly expireUnconsumed?: (topic: string) => boolean;
}

export const sqliteEventLogDefaults = {
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 3_000,
  pollIntervalMsMax: 300_000,
  groupCommitWindowMs: limits.groupCommitWindowMs,
  groupCommitRecordsMax: 5_000,
  appendQueueRecordsMax: limits.appendQueueRecordsMax,
} as const;

/** A waiting poll re-reads the file at most this often: appends from other processes show up. */
const pollBackoffMsMax = 20;
const pollBackoffMsMin = 1;
/** Records deleted per prune transaction: keeps the write lock short for appenders. */
const pruneBatchRecordsMax = 10_000;

export interface SqliteEventLogStats {
  readonly groupCommits: number;
  readonly recordsAppended: number;
  readonly queuedRecords: number;
}

interface TopicMeta {
  readonly name: string;
  readonly id: number;
  readonly partitions: number;
}

interface QueuedAppend {
  readonly topic: TopicMeta;
  readonly records: readonly AppendRecord[];
  readonly partitions: readonly number[];
  readonly resolve: (positions: LogPosition[]) => void;
  readonly reject: (error: unknown) => void;
}

type Row = Record<string, SQLOutputValue>;

const schema = `
CREATE TABLE IF NOT EXISTS log_topics (
  topic_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  partitions INTEGER NOT NULL CHECK (partitions > 0)
);
CREATE TABLE IF NOT EXISTS log_partitions (
  topic_id INTEGER NOT NULL REFERENCES log_topics (topic_id),
  partition INTEGER NOT NULL,
  next_offset INTEGER NOT NULL,
  PRIMARY KEY (topic_id, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_records (
  topic_id INTEGER NOT NULL,
  partition INTEGER NOT NULL,
  record_offset INTEGER NOT NULL,
  appended_ms INTEGER NOT NULL,
  record_key TEXT NOT NULL,
  record_value TEXT NOT NULL,
  PRIMARY KEY (topic_id, partition, record_offset)
);
CREATE TABLE IF NOT EXISTS log_members (
  group_name TEXT NOT NULL,
  member_id TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY (group_name, member_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_leases (
  group_name TEXT NOT NULL,
  topic_id INTEGER NOT NULL REFERENCES log_topics (topic_id),
  partition INTEGER NOT NULL,
  owner TEXT,
  generation INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY (group_name, topic_id, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_committed (
  group_name TEXT NOT NULL,
  topic_id INTEGER NOT NULL REFERENCES log_topics (topic_id),
  partition INTEGER NOT NULL,
  next_offset INTEGER NOT NULL,
  committed_ms INTEGER NOT NULL,
  PRIMARY KEY (group_name, topic_id, partition)
) WITHOUT ROWID;
`;

function prepareStatements(db: DatabaseSync) {
  const prepare = (sql: string): StatementSync => db.prepare(sql);
  return {
    selectTopic: prepare('SELECT topic_id, partitions FROM log_topics WHERE name = ?'),
    insertTopic: prepare('INSERT INTO log_topics (name, partitions) VALUES (?, ?)'),
    insertPartition: prepare('INSERT INTO log_partitions (topic_id, partition, next_offset) VALUES (?, ?, 0)'),
    selectNextOffset: prepare('SELECT next_offset FROM log_partitions WHERE topic_id = ? AND partition = ?'),
    selectNextOffsets: prepare('SELECT partition, next_offset FROM log_partitions WHERE topic_id = ? ORDER BY partition'),
    updateNextOffset: prepare('UPDATE log_partitions SET next_offset = ? WHERE topic_id = ? AND partition = ?'),
    insertRecord: prepare(
      'INSERT INTO log_records (topic_id, partition, record_offset, appended_ms, record_key, record_value) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    selectRecords: prepare(
      'SELECT record_offset, appended_ms, record_key, record_value FROM log_records ' +
        'WHERE topic_id = ? AND partition = ? AND record_offset >= ? ORDER BY record_offset LIMIT ?',
    ),
    upsertMember: prepare(
      'INSERT INTO log_members (group_name, member_id, expires_ms) VALUES (?, ?, ?) ' +
        'ON CONFLICT (group_name, member_id) DO UPDATE SET expires_ms = excluded.expires_ms',
    ),
    deleteExpiredMembers: prepare('DELETE FROM log_members WHERE group_name = ? AND expires_ms < ?'),
    deleteMember: prepare('DELETE FROM log_members WHERE group_name = ? AND member_id = ?'),
    selectLiveMembers: prepare('SELECT member_id FROM log_members WHERE group_name = ? AND expires_ms >= ? ORDER BY member_id'),
    renewLeases: prepare('UPDATE log_leases SET expires_ms = ? WHERE group_name = ? AND owner = ?'),
    selectHeldLeases: prepare('SELECT topic_id, partition, generation FROM log_leases WHERE group_name = ? AND owner = ?'),
    selectLease: prepare('SELECT owner, generation, expires_ms FROM log_leases WHERE group_name = ? AND topic_id = ? AND partition = ?'),
    upsertLease: prepare(
      'INSERT INTO log_leases (group_name, topic_id, partition, owner, generation, expires_ms) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET ' +
        'owner = excluded.owner, generation = excluded.generation, expires_ms = excluded.expires_ms',
    ),
    releaseLease: prepare(
      'UPDATE log_leases SET owner = NULL, expires_ms = 0 ' +
        'WHERE group_name = ? AND topic_id = ? AND partition = ? AND owner = ? AND generation = ?',
    ),
    releaseAllLeases: prepare('UPDATE log_leases SET owner = NULL, expires_ms = 0 WHERE group_name = ? AND owner = ?'),
    selectCommitted: prepare('SELECT next_offset FROM log_committed WHERE group_name = ? AND topic_id = ? AND partition = ?'),
    selectCommittedOfTopic: prepare('SELECT partition, next_offset FROM log_committed WHERE group_name = ? AND topic_id = ?'),
    upsertCommitted: prepare(
      'INSERT INTO log_committed (group_name, topic_id, partition, next_offset, committed_ms) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET ' +
        'next_offset = excluded.next_offset, committed_ms = excluded.committed_ms',
    ),
    selectAllTopics: prepare('SELECT topic_id, name, partitions FROM log_topics ORDER BY topic_id'),
    selectGroupsOfTopic: prepare(
      'SELECT group_name FROM log_committed WHERE topic_id = ? UNION SELECT group_name FROM log_leases WHERE topic_id = ?',
    ),
    deleteOldRecords: prepare(
      'DELETE FROM log_records WHERE topic_id = ? AND partition = ? AND record_offset IN (' +
        'SELECT record_offset FROM log_records WHERE topic_id = ? AND partition = ? AND record_offset < ? AND appended_ms < ? ' +
        'ORDER BY record_offset LIMIT ?)',
    ),
    ping: prepare('SELECT 1 AS ok'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteEventLog implements EventLog {
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly pollIntervalMsMax: number;
  readonly #db: DatabaseSync;
  readonly #statements: Statements;
  readonly #groupCommitWindowMs: number;
  readonly #groupCommitRecordsMax: number;
  readonly #appendQueueRecordsMax: number;
  readonly #topics = new Map<string, TopicMeta>();
  readonly #consumers = new Set<SqliteConsumer>();
  readonly #waiters = new Set<() => void>();
  #queue: QueuedAppend[] = [];
  #queuedRecords = 0;
  #windowTimer: ReturnType<typeof setTimeout> | undefined;
  #flushSoon: ReturnType<typeof setImmediate> | undefined;
  /** performance.now() when the last group commit began: commits start at most once a window. */
  #lastFlushStartMs = Number.NEGATIVE_INFINITY;
  #groupCommits = 0;
  #recordsAppended = 0;
  /** Set when close begins: no new consumers. */
  #closing = false;
  /** Set once consumers are closed: no new appends; the database is closed right after. */
  #closed = false;

  static open(options: SqliteEventLogOptions): SqliteEventLog {
    return new SqliteEventLog(options);
  }

  constructor(options: SqliteEventLogOptions) {
    const defaults = sqliteEventLogDefaults;
    this.sessionTimeoutMs = positiveInteger('sessionTimeoutMs', options.sessionTimeoutMs, defaults.sessionTimeoutMs);
    this.heartbeatIntervalMs = positiveInteger(
      'heartbeatIntervalMs',
      options.heartbeatIntervalMs,
      Math.min(defaults.heartbeatIntervalMs, Math.max(1, Math.floor(this.sessionTimeoutMs / 3))),
    );
    if (this.heartbeatIntervalMs >= this.sessionTimeoutMs) {
      throw new RangeError('heartbeatIntervalMs must be below sessionTimeoutMs, or live members lose their partitions');
    }
    this.pollIntervalMsMax = positiveInteger('pollIntervalMsMax', options.pollIntervalMsMax, defaults.pollIntervalMsMax);
    this.#groupCommitWindowMs = nonNegativeInteger('groupCommitWindowMs', options.groupCommitWindowMs, defaults.groupCommitWindowMs);
    this.#groupCommitRecordsMax = positiveInteger('groupCommitRecordsMax', options.groupCommitRecordsMax, defaults.groupCommitRecordsMax);
    this.#appendQueueRecordsMax = positiveInteger('appendQueueRecordsMax', options.appendQueueRecordsMax, defaults.appendQueueRecordsMax);
    this.#db = openDatabase(options.path, options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs });
    try {
      this.#db.exec(schema);
      this.#statements = prepareStatements(this.#db);
    } catch (error) {
      this.#db.close();
      throw error;
    }
  }

  async ensureTopic(topic: string, partitions: number): Promise<void> {
    this.#assertOpen();
    assertTopicShape(topic, partitions);
    const meta = transaction(this.#db, (): TopicMeta => {
      const existing = this.#readTopic(topic);
      if (existing !== undefined) return existing;
      const inserted = this.#statements.insertTopic.run(topic, partitions);
      const id = Number(inserted.lastInsertRowid);
      for (let partition = 0; partition < partitions; partition++) this.#statements.insertPartition.run(id, partition);
      return { name: topic, id, partitions };
    });
    if (meta.partitions !== partitions) {
      throw new Error(
        `topic "${topic}" has ${meta.partitions} partitions; asked for ${partitions}. ` +
          'Partition counts never change (that would move keys to other partitions).',
      );
    }
    this.#topics.set(topic, meta);
  }

  append(topic: string, records: readonly AppendRecord[]): Promise<LogPosition[]> {
    try {
      this.#assertOpen();
      assertAppendRecords(topic, records);
      const meta = this.topicMeta(topic);
      if (meta === undefined) throw new Error(`unknown topic "${topic}": call ensureTopic first`);
      if (records.length > this.#appendQueueRecordsMax) {
        throw new RangeError(`append of ${records.length} records can never fit the queue of ${this.#appendQueueRecordsMax}`);
      }
      if (records.length === 0) return Promise.resolve([]);
      if (this.#queuedRecords + records.length > this.#appendQueueRecordsMax) {
        throw new LogUnavailableError(
          `append queue is full (${this.#queuedRecords} + ${records.length} records > ${this.#appendQueueRecordsMax})`,
        );
      }
      const partitions = records.map((record) => partitionForKey(record.key, meta.partitions));
      return new Promise<LogPosition[]>((resolve, reject) => {
        this.#queue.push({ topic: meta, records, partitions, resolve, reject });
        this.#queuedRecords += records.length;
        this.#scheduleFlush();
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  consumer(options: ConsumerOptions): LogConsumer {
    if (this.#closing) throw new LogUnavailableError('the event log is closing');
    assertConsumerOptions(options);
    const consumer = new SqliteConsumer(this, options);
    this.#consumers.add(consumer);
    return consumer;
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    this.#assertOpen();
    const meta = this.#knownTopic(topic);
    const rows = this.#statements.selectNextOffsets.all(meta.id);
    return new Map(rows.map((row) => [integerColumn(row, 'partition'), integerColumn(row, 'next_offset')]));
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    this.#assertOpen();
    const meta = this.#knownTopic(topic);
    const rows = this.#statements.selectCommittedOfTopic.all(group, meta.id);
    return new Map(rows.map((row) => [integerColumn(row, 'partition'), integerColumn(row, 'next_offset')]));
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    try {
      this.#statements.ping.get();
    } catch (error) {
      throw new LogUnavailableError('the event log database does not answer', { cause: error });
    }
  }

  /** Flushes queued appends, revokes and releases every consumer's partitions, closes the file. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // Consumers first: their onRevoked may still commit (and so needs the database).
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
    this.#flush();
    this.#closed = true;
    this.wakeWaiters();
    this.#db.close();
  }

  stats(): SqliteEventLogStats {
    return { groupCommits: this.#groupCommits, recordsAppended: this.#recordsAppended, queuedRecords: this.#queuedRecords };
  }

  /**
   * Retention: deletes records appended more than `olderThanMs` ago that every group consuming the
   * topic has committed past. A group that holds a lease but has committed nothing holds the whole
   * partition. A topic no group has consumed keeps everything, unless `expireUnconsumed` says its
   * records may go by age alone (reply topics nobody listens to); offsets are never reused either way.
   */
  async prune(options: PruneOptions): Promise<{ recordsDeleted: number }> {
    this.#assertOpen();
    if (!Number.isSafeInteger(options.olderThanMs) || options.olderThanMs < 0) {
      throw new RangeError(`prune: olderThanMs must be a non-negative integer, got ${options.olderThanMs}`);
    }
    const cutoffMs = Date.now() - options.olderThanMs;
    let recordsDeleted = 0;
    for (const row of this.#statements.selectAllTopics.all()) {
      const topic: TopicMeta = { id: integerColumn(row, 'topic_id'), name: textColumn(row, 'name'), partitions: integerColumn(row, 'partitions') };
      const floors = this.#committedFloors(topic) ?? (options.expireUnconsumed?.(topic.name) === true ? this.#noFloors(topic) : null);
      if (floors === null) continue;
      for (const [partition, floor] of floors) {
        recordsDeleted += await this.#prunePartition(topic, partition, floor, cutoffMs);
      }
    }
    return { recordsDeleted };
  }

  // Internal API for SqliteConsumer (same module).

  get db(): DatabaseSync {
    return this.#db;
  }

  get statements(): Statements {
    return this.#statements;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** Topic metadata, from the cache or the file (another process may have created the topic). */
  topicMeta(topic: string): TopicMeta | undefined {
    const cached = this.#topics.get(topic);
    if (cached !== undefined) return cached;
    const meta = this.#readTopic(topic);
    // Only hits are cached: partition counts never change, but a topic may appear later.
    if (meta !== undefined) this.#topics.set(topic, meta);
    return meta;
  }

  forget(consumer: SqliteConsumer): void {
    this.#consumers.delete(consumer);
  }

  /** Resolves after an append in this process commits or `waitMs` passes, whichever is first. */
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

  wakeWaiters(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  #readTopic(topic: string): TopicMeta | undefined {
    const row = this.#statements.selectTopic.get(topic);
    if (row === undefined) return undefined;
    return { name: topic, id: integerColumn(row, 'topic_id'), partitions: integerColumn(row, 'partitions') };
  }

  #knownTopic(topic: string): TopicMeta {
    const meta = this.topicMeta(topic);
    if (meta === undefined) throw new Error(`unknown topic "${topic}": call ensureTopic first`);
    return meta;
  }

  #assertOpen(): void {
    if (this.#closed) throw new LogUnavailableError('the event log is closed');
  }

  /**
   * Group commits start at most once per window: appends arriving while one is written or within
   * the window after it began share the next one (one fsync); an idle log writes on the next turn,
   * so a lone append waits for no window. A full queue is written at once.
   */
  #scheduleFlush(): void {
    if (this.#flushSoon !== undefined) return;
    const waitMs = this.#lastFlushStartMs + this.#groupCommitWindowMs - performance.now();
    if (this.#queuedRecords >= this.#groupCommitRecordsMax || waitMs <= 0) {
      clearTimeout(this.#windowTimer);
      this.#windowTimer = undefined;
      this.#flushSoon = setImmediate(() => this.#flush());
      return;
    }
    this.#windowTimer ??= setTimeout(() => this.#flush(), Math.ceil(waitMs));
  }

  /** One group commit: every queued append in one transaction, then all their promises settle. */
  #flush(): void {
    clearTimeout(this.#windowTimer);
    clearImmediate(this.#flushSoon);
    this.#windowTimer = undefined;
    this.#flushSoon = undefined;
    const batch = this.#queue;
    if (batch.length === 0) return;
    const recordCount = this.#queuedRecords;
    this.#lastFlushStartMs = performance.now();
    this.#queue = [];
    this.#queuedRecords = 0;
    let positions: LogPosition[][];
    try {
      positions = transaction(this.#db, () => this.#writeBatch(batch));
    } catch (error) {
      const failure = new LogUnavailableError('the group commit failed; none of its records were appended', { cause: error });
      for (const append of batch) append.reject(failure);
      return;
    }
    this.#groupCommits += 1;
    this.#recordsAppended += recordCount;
    batch.forEach((append, index) => append.resolve(positions[index]!));
    this.wakeWaiters();
  }

  /** Offsets come from log_partitions inside the write lock, so processes sharing the file agree. */
  #writeBatch(batch: readonly QueuedAppend[]): LogPosition[][] {
    const appendedMs = Date.now();
    const nextOffsets = new Map<string, { topicId: number; partition: number; offset: number }>();
    const { insertRecord, selectNextOffset, updateNextOffset } = this.#statements;
    const positions = batch.map((append) =>
      append.records.map((record, index): LogPosition => {
        const partition = append.partitions[index]!;
        const slotKey = `${append.topic.id}:${partition}`;
        let slot = nextOffsets.get(slotKey);
        if (slot === undefined) {
          const offset = integerColumn(selectNextOffset.get(append.topic.id, partition), 'next_offset');
          slot = { topicId: append.topic.id, partition, offset };
          nextOffsets.set(slotKey, slot);
        }
        const offset = slot.offset;
        slot.offset += 1;
        insertRecord.run(append.topic.id, partition, offset, appendedMs, record.key, record.value);
        return { topic: append.topic.name, partition, offset };
      }),
    );
    for (const slot of nextOffsets.values()) updateNextOffset.run(slot.offset, slot.topicId, slot.partition);
    return positions;
  }

  /**
   * Per partition, the lowest committed offset over every group that consumes the topic (0 where a
   * group holds a lease without a commit); null when no group has ever consumed the topic.
   */
  #committedFloors(topic: TopicMeta): Map<number, number> | null {
    const groups = this.#statements.selectGroupsOfTopic.all(topic.id, topic.id).map((row) => textColumn(row, 'group_name'));
    if (groups.length === 0) return null;
    const floors = this.#noFloors(topic);
    for (const group of groups) {
      const committed = new Map(
        this.#statements.selectCommittedOfTopic.all(group, topic.id).map((row) => [integerColumn(row, 'partition'), integerColumn(row, 'next_offset')]),
      );
      for (const [partition, floor] of floors) floors.set(partition, Math.min(floor, committed.get(partition) ?? 0));
    }
    return floors;
  }

  /** Every partition without an offset bound: only the age of a record decides. */
  #noFloors(topic: TopicMeta): Map<number, number> {
    const floors = new Map<number, number>();
    for (let partition = 0; partition < topic.partitions; partition++) floors.set(partition, Number.MAX_SAFE_INTEGER);
    return floors;
  }

  async #prunePartition(topic: TopicMeta, partition: number, floor: number, cutoffMs: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      const result = transaction(this.#db, () =>
        this.#statements.deleteOldRecords.run(topic.id, partition, topic.id, partition, floor, cutoffMs, pruneBatchRecordsMax),
      );
      deleted += Number(result.changes);
      if (Number(result.changes) < pruneBatchRecordsMax) return deleted;
      // Let queued group commits run between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

interface OwnedPartition {
  readonly topic: TopicMeta;
  readonly partition: number;
  readonly generation: number;
  /** Next offset this member returns (past the committed offset once records were returned). */
  position: number;
}

interface Heartbeat {
  /** Leases this member holds in the file: "topicId:partition" → generation. */
  readonly held: Map<string, number>;
  readonly liveMembers: readonly string[];
}

function ownedKey(topicId: number, partition: number): string {
  return `${topicId}:${partition}`;
}

/**
 * Member ids name their host and process, so a member on the same host can tell that an owner's
 * process has died and take its partitions at once instead of after the session timeout.
 */
function localMemberId(): string {
  return `${hostname()}/${process.pid}/${threadId}/${randomUUID()}`;
}

/** True only when the member ran on this host in a process that no longer exists. */
function isDeadLocalMember(memberId: string): boolean {
  const [host, pidText] = memberId.split('/');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: the process exists under another user. Only "no such process" means dead; a recycled
    // pid reads as alive, which falls back to the session timeout (safe, just slower).
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * One member of a consumer group. Partitions are shared: live members (rows in log_members) sorted
 * by id each take floor(P/M) partitions, the first P mod M one more. Membership changes only
 * inside poll; a timer renews leases between polls so a long batch does not lose them.
 */
class SqliteConsumer implements LogConsumer {
  readonly memberId = localMemberId();
  readonly #log: SqliteEventLog;
  readonly #options: ConsumerOptions;
  readonly #owned = new Map<string, OwnedPartition>();
  /** Partitions the timer found taken by another member; onRevoked hears of them at the next poll. */
  #lost: OwnedPartition[] = [];
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #joined = false;
  #polling = false;
  #closed = false;
  #lastPollMs = 0;
  /** When a poll last rebalanced; the timer's heartbeats renew leases but never rebalance. */
  #lastRebalanceMs = 0;
  #readRotation = 0;

  constructor(log: SqliteEventLog, options: ConsumerOptions) {
    this.#log = log;
    this.#options = options;
  }

  async poll(maxRecords: number, maxWaitMs: number): Promise<ConsumedRecord[]> {
    assertPollArguments(maxRecords, maxWaitMs);
    if (this.#closed) throw new Error(`consumer ${this.memberId} of group "${this.#options.group}" is closed`);
    if (this.#polling) throw new Error('poll is already in progress on this consumer');
    this.#polling = true;
    try {
      const deadlineMs = Date.now() + maxWaitMs;
      let backoffMs = pollBackoffMsMin;
      for (;;) {
        if (this.#closed) return [];
        await this.#rebalance();
        if (this.#closed) return [];
        const records = this.#read(maxRecords);
        if (records.length > 0) return records;
        const remainingMs = deadlineMs - Date.now();
        if (remainingMs <= 0) return [];
        await this.#log.waitForAppend(Math.min(remainingMs, backoffMs));
        backoffMs = Math.min(backoffMs * 2, pollBackoffMsMax);
      }
    } catch (error) {
      throw asLogError(error);
    } finally {
      this.#polling = false;
    }
  }

  async commit(positions: readonly LogPosition[]): Promise<void> {
    if (positions.length === 0) return;
    const owned = positions.map((position) => {
      const meta = this.#log.topicMeta(position.topic);
      const entry = meta === undefined ? undefined : this.#owned.get(ownedKey(meta.id, position.partition));
      if (entry === undefined) throw this.#fenced(position);
      if (!Number.isSafeInteger(position.offset) || position.offset < 0) {
        throw new RangeError(`commit ${position.topic}[${position.partition}]: offset ${position.offset} is not a non-negative integer`);
      }
      return { entry, offset: position.offset, position };
    });
    const { selectLease, selectNextOffset, upsertCommitted } = this.#log.statements;
    try {
      transaction(this.#log.db, () => {
        const nowMs = Date.now();
        for (const { entry, offset, position } of owned) {
          // The fencing check and the write share one transaction: no other member can slip between.
          const lease = selectLease.get(this.#options.group, entry.topic.id, entry.partition);
          if (lease === undefined || lease['owner'] !== this.memberId || integerColumn(lease, 'generation') !== entry.generation) {
            throw this.#fenced(position);
          }
          const end = integerColumn(selectNextOffset.get(entry.topic.id, entry.partition), 'next_offset');
          if (offset > end) throw new RangeError(`commit ${position.topic}[${position.partition}]: offset ${offset} is past the end ${end}`);
          upsertCommitted.run(this.#options.group, entry.topic.id, entry.partition, offset, nowMs);
        }
      });
    } catch (error) {
      throw asLogError(error);
    }
  }

  assignment(): readonly LogPartition[] {
    return [...this.#owned.values()].map(partitionOf);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeatTimer);
    this.#log.wakeWaiters();
    const revoked = [...this.#lost, ...this.#owned.values()];
    this.#lost = [];
    try {
      if (revoked.length > 0 && this.#options.onRevoked !== undefined) await this.#options.onRevoked(revoked.map(partitionOf));
    } finally {
      this.#owned.clear();
      this.#log.forget(this);
      if (this.#joined) {
        // Released now rather than left to expire: the next member starts without waiting.
        transaction(this.#log.db, () => {
          this.#log.statements.releaseAllLeases.run(this.#options.group, this.memberId);
          this.#log.statements.deleteMember.run(this.#options.group, this.memberId);
        });
      }
    }
  }

  #fenced(position: LogPosition): LogFencedError {
    return new LogFencedError(
      `group "${this.#options.group}": member ${this.memberId} no longer owns ${position.topic}[${position.partition}]`,
    );
  }

  /** Heartbeat when due, hand lost partitions to onRevoked, then move toward this member's quota. */
  async #rebalance(): Promise<void> {
    const nowMs = Date.now();
    this.#lastPollMs = nowMs;
    if (!this.#joined) this.#join();
    if (nowMs - this.#lastRebalanceMs >= this.#log.heartbeatIntervalMs) {
      this.#lastRebalanceMs = nowMs;
      const heartbeat = this.#heartbeat(nowMs);
      await this.#revokeLost();
      const quota = this.#quota(heartbeat.liveMembers);
      if (this.#owned.size > quota) await this.#releaseExtras(this.#owned.size - quota);
      else if (this.#owned.size < quota) await this.#claimFree(quota - this.#owned.size);
    } else {
      await this.#revokeLost();
    }
  }

  #join(): void {
    this.#joined = true;
    this.#heartbeatTimer = setInterval(() => this.#heartbeatBetweenPolls(), this.#log.heartbeatIntervalMs);
    this.#heartbeatTimer.unref();
  }

  /** Keeps leases alive during a long batch, but not for a member that stopped polling. */
  #heartbeatBetweenPolls(): void {
    const nowMs = Date.now();
    if (this.#closed || this.#log.closing || nowMs - this.#lastPollMs >= this.#log.pollIntervalMsMax) return;
    try {
      this.#heartbeat(nowMs);
    } catch {
      // The file is busy or failing: the next poll heartbeats again and reports the error there.
    }
  }

  /** Renews this member and its leases in one transaction; moves lost partitions to #lost. */
  #heartbeat(nowMs: number): Heartbeat {
    const { group } = this.#options;
    const statements = this.#log.statements;
    const heartbeat = transaction(this.#log.db, (): Heartbeat => {
      const expiresMs = nowMs + this.#log.sessionTimeoutMs;
      statements.upsertMember.run(group, this.memberId, expiresMs);
      statements.deleteExpiredMembers.run(group, nowMs);
      // A member whose process is gone (SIGKILL, crash) on this host need not be waited out.
      for (const row of statements.selectLiveMembers.all(group, nowMs)) {
        const member = textColumn(row, 'member_id');
        if (member === this.memberId || !isDeadLocalMember(member)) continue;
        statements.deleteMember.run(group, member);
        statements.releaseAllLeases.run(group, member);
      }
      statements.renewLeases.run(expiresMs, group, this.memberId);
      const held = new Map(
        statements.selectHeldLeases
          .all(group, this.memberId)
          .map((row) => [ownedKey(integerColumn(row, 'topic_id'), integerColumn(row, 'partition')), integerColumn(row, 'generation')]),
      );
      const liveMembers = statements.selectLiveMembers.all(group, nowMs).map((row) => textColumn(row, 'member_id'));
      return { held, liveMembers };
    });
    for (const [key, entry] of this.#owned) {
      if (heartbeat.held.get(key) !== entry.generation) {
        this.#owned.delete(key);
        this.#lost.push(entry);
      }
    }
    return heartbeat;
  }

  /** Partitions another member took while this one was silent: the handler hears after the fact. */
  async #revokeLost(): Promise<void> {
    if (this.#lost.length === 0) return;
    const lost = this.#lost;
    this.#lost = [];
    if (this.#options.onRevoked !== undefined) await this.#options.onRevoked(lost.map(partitionOf));
  }

  #quota(liveMembers: readonly string[]): number {
    const total = this.#subscribedPartitions().length;
    const rank = liveMembers.indexOf(this.memberId);
    // Not listed only if the clock jumped past our own expiry: claim nothing until the next heartbeat.
    if (rank < 0) return Math.min(this.#owned.size, total);
    return Math.floor(total / liveMembers.length) + (rank < total % liveMembers.length ? 1 : 0);
  }

  async #releaseExtras(count: number): Promise<void> {
    const extras = [...this.#owned.values()].slice(-count);
    // The handler finishes and commits while this member still owns the partitions.
    if (this.#options.onRevoked !== undefined) await this.#options.onRevoked(extras.map(partitionOf));
    const { releaseLease } = this.#log.statements;
    transaction(this.#log.db, () => {
      for (const entry of extras) releaseLease.run(this.#options.group, entry.topic.id, entry.partition, this.memberId, entry.generation);
    });
    for (const entry of extras) this.#owned.delete(ownedKey(entry.topic.id, entry.partition));
  }

  async #claimFree(count: number): Promise<void> {
    const { group } = this.#options;
    const { selectLease, upsertLease, selectCommitted } = this.#log.statements;
    const claimed = transaction(this.#log.db, (): OwnedPartition[] => {
      const nowMs = Date.now();
      const taken: OwnedPartition[] = [];
      for (const { topic, partition } of this.#subscribedPartitions()) {
        if (taken.length === count) break;
        if (this.#owned.has(ownedKey(topic.id, partition))) continue;
        const lease = selectLease.get(group, topic.id, partition);
        const free = lease === undefined || lease['owner'] === null || integerColumn(lease, 'expires_ms') < nowMs;
        if (!free) continue;
        // A new generation fences whatever the previous owner still tries to commit.
        const generation = (lease === undefined ? 0 : integerColumn(lease, 'generation')) + 1;
        upsertLease.run(group, topic.id, partition, this.memberId, generation, nowMs + this.#log.sessionTimeoutMs);
        const committed = selectCommitted.get(group, topic.id, partition);
        const position = committed === undefined ? 0 : integerColumn(committed, 'next_offset');
        taken.push({ topic, partition, generation, position });
      }
      return taken;
    });
    for (const entry of claimed) this.#owned.set(ownedKey(entry.topic.id, entry.partition), entry);
    if (claimed.length > 0 && this.#options.onAssigned !== undefined) await this.#options.onAssigned(claimed.map(partitionOf));
  }

  #subscribedPartitions(): { topic: TopicMeta; partition: number }[] {
    const all: { topic: TopicMeta; partition: number }[] = [];
    for (const name of new Set(this.#options.topics)) {
      const topic = this.#log.topicMeta(name);
      if (topic !== undefined) for (let partition = 0; partition < topic.partitions; partition++) all.push({ topic, partition });
    }
    return all;
  }

  #read(maxRecords: number): ConsumedRecord[] {
    const owned = [...this.#owned.values()];
    const records: ConsumedRecord[] = [];
    const { selectRecords } = this.#log.statements;
    // Rotate the first partition read so one busy partition cannot starve the others.
    this.#readRotation = (this.#readRotation + 1) % Math.max(owned.length, 1);
    for (let index = 0; index < owned.length && records.length < maxRecords; index++) {
      const entry = owned[(this.#readRotation + index) % owned.length]!;
      const rows = selectRecords.all(entry.topic.id, entry.partition, entry.position, maxRecords - records.length);
      for (const row of rows) {
        const offset = integerColumn(row, 'record_offset');
        records.push({
          topic: entry.topic.name,
          partition: entry.partition,
          offset,
          key: textColumn(row, 'record_key'),
          value: textColumn(row, 'record_value'),
          appendedMs: integerColumn(row, 'appended_ms'),
        });
        // Pruned records leave gaps below every committed offset: follow the offsets read.
        entry.position = offset + 1;
      }
    }
    return records;
  }
}

function partitionOf(entry: { readonly topic: TopicMeta; readonly partition: number }): LogPartition {
  return { topic: entry.topic.name, partition: entry.partition };
}

/** Driver failures become LogUnavailableError (retry later); the port's own errors pass through. */
function asLogError(error: unknown): unknown {
  if (error instanceof LogFencedError || error instanceof LogUnavailableError || error instanceof RangeError || error instanceof TypeError) {
    return error;
  }
  if (error instanceof Error && 'code' in error && typeof error.code === 'string' && error.code.startsWith('ERR_SQLITE')) {
    return new LogUnavailableError(`the event log database failed: ${error.message}`, { cause: error });
  }
  return error;
}

function integerColumn(row: Row | undefined, column: string): number {
  const value = row?.[column];
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new Error(`sqlite event log: column ${column} is ${String(value)}, expected an integer`);
  }
  return value;
}

function textColumn(row: Row | undefined, column: string): string {
  const value = row?.[column];
  if (typeof value !== 'string') throw new Error(`sqlite event log: column ${column} is ${String(value)}, expected text`);
  return value;
}

function nonNegativeInteger(name: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 0) throw new RangeError(`${name} must be a non-negative integer, got ${chosen}`);
  return chosen;
}
