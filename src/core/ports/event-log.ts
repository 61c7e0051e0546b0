// EventLog port: the durable, partitioned log every write goes through first (SQLite embedded,
// Kafka distributed). Semantics the rest of Tally relies on:
// - append resolves only once every record is durable (a crash after it loses nothing);
// - records with the same key land in the same partition, in append order;
// - a consumer group sees each partition through one member at a time and commits the next
//   offset to read; delivery is at-least-once, so handlers must be idempotent.

export interface AppendRecord {
  /** Partitioning key (merchant id for analytics, from_account_id for payments). */
  readonly key: string;
  readonly value: string;
}

export interface LogPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface LogPosition extends LogPartition {
  readonly offset: number;
}

export interface ConsumedRecord extends LogPosition {
  readonly key: string;
  readonly value: string;
  /** When the log took the record (epoch ms): lag in seconds is measured from it. */
  readonly appendedMs: number;
}

export interface ConsumerOptions {
  readonly group: string;
  readonly topics: readonly string[];
  /** Called after partitions are assigned to this member, before records from them are returned. */
  readonly onAssigned?: (partitions: readonly LogPartition[]) => Promise<void>;
  /** Called before partitions are taken away: finish, flush and commit inside it. */
  readonly onRevoked?: (partitions: readonly LogPartition[]) => Promise<void>;
}

export interface LogConsumer {
  /** Up to maxRecords records, waiting at most maxWaitMs when none are ready; [] on time-out. */
  poll(maxRecords: number, maxWaitMs: number): Promise<ConsumedRecord[]>;
  /**
   * Commits, per partition, the next offset to read (last handled + 1). Rejects with a
   * LogFencedError when this member no longer owns a partition: its work must not count.
   */
  commit(positions: readonly LogPosition[]): Promise<void>;
  assignment(): readonly LogPartition[];
  close(): Promise<void>;
}

export interface EventLog {
  /** Creates the topic with a fixed partition count if it does not exist (counts never change). */
  ensureTopic(topic: string, partitions: number): Promise<void>;
  /** Durably appends; resolves with each record's position, in input order. */
  append(topic: string, records: readonly AppendRecord[]): Promise<LogPosition[]>;
  consumer(options: ConsumerOptions): LogConsumer;
  /** Next offset to be written, per partition. */
  endOffsets(topic: string): Promise<Map<number, number>>;
  /** Committed next-offset-to-read per partition for a group (missing: nothing committed). */
  committedOffsets(group: string, topic: string): Promise<Map<number, number>>;
  /** Resolves when the log answers; rejects otherwise (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** This member lost a partition to another: its uncommitted work must be dropped, not committed. */
export class LogFencedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogFencedError';
  }
}

/** The log cannot take or serve records right now; callers answer 503 / retry. */
export class LogUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LogUnavailableError';
  }
}
