// Cassandra EventStore: the raw event store (master dataset) of the distributed deployment.
//
// Tables (created by `tally migrate`, eventStoreSchema below):
// - events_by_hour PRIMARY KEY ((merchant_id, hour_ms), ts_ms, id) → body (the event as JSON),
//   src_partition, src_offset: one partition per merchant and UTC hour of event time, clustered in
//   scan order. Bound: at 1 M events per merchant and day a partition averages ~42k rows (~24 MB at
//   the measured ~580 B of a realistic event), ~70 MB in a 3× peak hour — under Cassandra's ~100 MB
//   per-partition guidance. Cassandra compares text by its bytes, so ids order by their UTF-8 bytes
//   as in the SQLite adapter (the contract's case passes). Compaction is size-tiered, set
//   explicitly: rows are written once (a redelivery rewrites identical cells) and an hour's
//   partition is written mostly during that hour, so it sits in few SSTables; leveled compaction
//   would multiply the write cost of the firehose (~10× write amplification) for little read gain.
//   Time-window compaction is wrong here: late events (up to the 7-day late window) land in old
//   hours, so a partition would spread over SSTables of many windows that TWCS never merges, and
//   TWCS is made for TTL'd data — the master dataset never expires. LZ4 compression on disk.
// - event_hours PRIMARY KEY ((merchant_id), hour_ms): the hours that hold events, so a 30-day scan
//   lists them with one query (≤ 8,784 rows a year) and then reads only populated hours.
// - event_ids PRIMARY KEY ((merchant_id, shard), id) → src_partition, src_offset, ts_ms: which log
//   record's copy of (merchant, id) is stored; ts_ms (hence hour_ms) locates its event row. shard =
//   Kafka's murmur2 of the id mod idShards (fixed forever). These partitions never stop growing
//   (dedup is forever, as the port says), so the shard count sets how fast: ~65 B a row, so at 1 M
//   events per merchant and day a partition gains ~4 MB a day with 16 shards (100 MB in ~25 days)
//   and ~60 KB a day with 1024 (100 MB in ~4 years). Measured on one local node, reading and writing
//   the ids of a 20,000-event batch costs the same with 16, 256 or 1024 shards (~0.2 s: ~20 ids per
//   `IN ?` instead of 100) and doubles only at 4096; a 1,000-event batch pays ~0.1 s more with 1024
//   than with 16 — small batches only happen when the processor has time to spare. Hence 1024.
//   (Those costs were with one request per shard; ids are now read and written across up to 10
//   shards per request — see idShardsPerRequestMax below — which took a 3,700-event batch from ~3,000
//   id requests each way to ~300.)
//
// putBatch: dedupes inside the batch (first copy wins), reads the stored sources of the batch's ids
// (`shard IN ? AND id IN ?`, ≤ 10 shards and ≤ 100 ids a read), then writes the new events' rows in
// order — event rows and hour rows (unlogged batches of ≤ 100 statements for one partition each),
// then id rows (unlogged batches of ≤ 25 rows over ≤ 10 shards). A crash between the steps leaves an
// id row only where the event row is stored and listed, and a redelivered record writes identical
// rows again, so every write is idempotent and the driver may retry it.
//
// Read-before-write without lightweight transactions is safe because the log is keyed by merchant:
// all of a merchant's events pass through one log partition, handled by its single owner in offset
// order, and that owner commits an offset only after putBatch resolved. Its reads see its earlier
// writes because both use the configured consistency, LOCAL_QUORUM by default (ONE or LOCAL_ONE with
// a replication factor above 1 would not: a later copy could miss the id row and count twice).
// For one id, the earliest record in the log is therefore always decided first — alone, or as the
// first copy in its batch — and any later copy finds its id row. A zombie owner that lost the
// partition re-handles the same records in the same order: it reaches the same decisions and writes
// identical rows. (This relies on the topic's partition count never changing, which `tally migrate`
// fixes.) Measured for 20,000 realistic events on one local node
// (2 cores shared with other test runs: ranges over runs):
//   read-before-write (this adapter): putBatch of new events 0.5–1.7 s (12,000–40,000 events/s), of
//   which the dedup step (id reads, id rows) is 0.2–0.5 s; the batch redelivered 0.2–0.45 s;
//   one `INSERT … IF NOT EXISTS` per id instead: 3.4–9.0 s for the dedup step alone (64 or 256 in
//   flight), 10–20× slower — Paxos costs four round trips per id, more across racks.
//
// scan: lists the populated hours of the range, then reads hour partitions in order, after the
// cursor (the shared codec) with `(ts_ms, id) > (?, ?)`, several hours at once when the hours read
// so far were sparse. A 30-day scan of 100,000 events ran at 50,000–115,000 events/s (5,000- and
// 20,000-event pages, same machine).
import { assertScanRequest, decodeScanCursor, encodeScanCursor, type ScanPosition } from '../../core/ports/event-store-rules.ts';
import { partitionForKey } from '../../core/partitioner.ts';
import { time } from '../../core/limits.ts';
import type { TrackedEvent } from '../../core/event.ts';
import type { EventSource, EventStore, ScanPage, ScanRequest, StoredEvent } from '../../core/ports/event-store.ts';
import type cassandra from 'cassandra-driver';
import type { BatchStatement, CassandraSession, Row, SchemaComponent } from './session.ts';

export const eventStoreSchema: SchemaComponent = {
  component: 'events',
  migrations: [[
    `CREATE TABLE IF NOT EXISTS {keyspace}.events_by_hour (
       merchant_id text, hour_ms bigint, ts_ms bigint, id text,
       body text, src_partition int, src_offset bigint,
       PRIMARY KEY ((merchant_id, hour_ms), ts_ms, id)
     ) WITH CLUSTERING ORDER BY (ts_ms ASC, id ASC)
       AND compaction = {'class': 'SizeTieredCompactionStrategy'}
       AND compression = {'class': 'LZ4Compressor'}`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.event_hours (
       merchant_id text, hour_ms bigint,
       PRIMARY KEY ((merchant_id), hour_ms)
     ) WITH CLUSTERING ORDER BY (hour_ms ASC)`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.event_ids (
       merchant_id text, shard int, id text,
       src_partition int, src_offset bigint, ts_ms bigint,
       PRIMARY KEY ((merchant_id, shard), id)
     ) WITH compaction = {'class': 'SizeTieredCompactionStrategy'}`,
  ]],
};

/** Shards of a merchant's id index; part of the stored data: changing it needs a migration. */
const idShards = 1024;
/** Statements per unlogged batch of event or hour rows (one partition each). */
const batchStatementsMax = 100;
/**
 * Id-index shards one id read (`shard IN ? AND id IN ?`) or one id write (an unlogged batch) covers.
 * A batch's ids spread over most of the 1024 shards, so one request per shard meant ~0.8 id reads
 * and ~0.8 id batches per event: measured, a 3,700-event batch of 8 merchants sent 2,973 of each,
 * and its putBatch calls took 0.38–0.90 s together; 10 shards a request: 301 of each, 0.15–0.27 s,
 * with Cassandra's CPU for the whole batch down by about a third. Cassandra still reads and writes
 * every shard's partition, at the same consistency, and answers only when all are done. 10 shards
 * stays within unlogged_batch_across_partitions_warn_threshold (10: more gets logged as a warning);
 * 25 rows keep a batch near batch_size_warn_threshold (5 KiB) even with 64-character ids and far
 * below batch_size_fail_threshold (50 KiB); a read's cartesian product stays ≤ 1,000 names.
 */
const idShardsPerRequestMax = 10;
const idsPerReadMax = 100;
const idsPerWriteMax = 25;
/** Requests of one putBatch step in flight at once: keeps the coordinator busy without flooding it. */
const requestsInFlightMax = 32;
/** Hours listed per request while scanning. */
const hoursPageSize = 1000;
/** Rows per response page within one hour partition (a scan page may be larger: it pages on). */
const rowsPageSize = 5000;
/** Hour partitions read at once by a scan, when the hours seen so far were sparse. */
const hoursInFlightMax = 16;
/** CQL's LIMIT is a 32-bit int; a larger page is read as this many rows, the caller pages on. */
const cqlLimitMax = 2_147_483_647;

export interface CassandraEventStoreOptions {
  /** Shared with the other stores; the caller owns it and closes it. */
  readonly session: CassandraSession;
}

interface Statements {
  readonly insertEvent: string;
  readonly insertHour: string;
  readonly insertId: string;
  readonly readIds: string;
  readonly listHours: string;
  readonly scanFrom: string;
  readonly scanAfter: string;
}

export class CassandraEventStore implements EventStore {
  readonly #session: CassandraSession;
  readonly #cql: Statements;
  #closed = false;

  /** Checks the schema (`tally migrate` creates it); statements are prepared on first use. */
  static async open(options: CassandraEventStoreOptions): Promise<CassandraEventStore> {
    await options.session.assertSchema(eventStoreSchema);
    return new CassandraEventStore(options.session);
  }

  private constructor(session: CassandraSession) {
    this.#session = session;
    const events = session.table('events_by_hour');
    const hours = session.table('event_hours');
    const ids = session.table('event_ids');
    const scanColumns = 'body, src_partition, src_offset';
    this.#cql = {
      insertEvent: `INSERT INTO ${events} (merchant_id, hour_ms, ts_ms, id, body, src_partition, src_offset) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      insertHour: `INSERT INTO ${hours} (merchant_id, hour_ms) VALUES (?, ?)`,
      insertId: `INSERT INTO ${ids} (merchant_id, shard, id, src_partition, src_offset, ts_ms) VALUES (?, ?, ?, ?, ?, ?)`,
      readIds: `SELECT id, src_partition, src_offset FROM ${ids} WHERE merchant_id = ? AND shard IN ? AND id IN ?`,
      listHours: `SELECT hour_ms FROM ${hours} WHERE merchant_id = ? AND hour_ms >= ? AND hour_ms < ?`,
      scanFrom: `SELECT ${scanColumns} FROM ${events} WHERE merchant_id = ? AND hour_ms = ? AND ts_ms >= ? AND ts_ms < ? LIMIT ?`,
      scanAfter: `SELECT ${scanColumns} FROM ${events} WHERE merchant_id = ? AND hour_ms = ? AND (ts_ms, id) > (?, ?) AND ts_ms < ? LIMIT ?`,
    };
  }

  async putBatch(items: readonly StoredEvent[]): Promise<boolean[]> {
    this.#assertOpen();
    if (items.length === 0) return [];
    // The first copy of each (merchant, id) in the batch stands for the batch's copies.
    const firstIndex = new Map<string, number>();
    items.forEach((item, index) => {
      const key = eventKey(item.event);
      if (!firstIndex.has(key)) firstIndex.set(key, index);
    });
    const firsts = [...firstIndex.values()].map((index) => items[index]!);
    const stored = await this.#readStoredSources(firsts);
    const fresh = firsts.filter((item) => !stored.has(eventKey(item.event)));
    await this.#write(fresh);
    return items.map((item) => {
      const key = eventKey(item.event);
      const winner = stored.get(key) ?? items[firstIndex.get(key)!]!.source;
      return winner.partition === item.source.partition && winner.offset === item.source.offset;
    });
  }

  async scan(request: ScanRequest): Promise<ScanPage> {
    this.#assertOpen();
    assertScanRequest(request);
    const cursor = request.after ? decodeScanCursor(request.after) : null;
    // A cursor before the range (the caller narrowed it) just means "from the start".
    const after = cursor && cursor.timestampMs >= request.fromMs ? cursor : null;
    const fromMs = after ? after.timestampMs : request.fromMs;
    if (fromMs >= request.toMs) return { events: [], next: null };
    const pageSize = Math.min(request.limit, cqlLimitMax - 1);
    // One row past the page says whether another page exists, so `next` is null at the end.
    const events = await this.#readRange(request.merchantId, fromMs, request.toMs, after, pageSize + 1);
    const more = events.length > pageSize;
    if (more) events.pop();
    const last = events.at(-1);
    return { events, next: more && last ? encodeScanCursor({ timestampMs: last.event.timestampMs, id: last.event.id }) : null };
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    await this.#session.ping();
  }

  /** The session is shared and stays open: the composition root closes it. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /** The stored source of each item's (merchant, id), for those stored already. */
  async #readStoredSources(items: readonly StoredEvent[]): Promise<Map<string, EventSource>> {
    const stored = new Map<string, EventSource>();
    await this.#session.forEachConcurrently(idRequests(items, idsPerReadMax), requestsInFlightMax, async (group) => {
      const { merchantId } = group[0]!.event;
      const shards = [...new Set(group.map((item) => shardOf(item.event.id)))];
      const ids = group.map((item) => item.event.id);
      // An id row exists only in its own shard: the other (shard, id) pairs of the IN lists find nothing.
      const result = await this.#session.execute(this.#cql.readIds, [merchantId, shards, ids], { idempotent: true, fetchSize: ids.length });
      for (const row of result.rows) {
        stored.set(`${merchantId}\u0000${row.get('id') as string}`, rowSource(row));
      }
    });
    return stored;
  }

  /** Event rows and hour rows first, then id rows: an id row implies its event row is readable. */
  async #write(items: readonly StoredEvent[]): Promise<void> {
    if (items.length === 0) return;
    const cql = this.#cql;
    const hours = [...groupBy(items, (item) => `${item.event.merchantId}\u0000${hourOf(item.event.timestampMs)}`).values()].map((group) => group[0]!);
    // Event rows and hour rows go out together (one round trip less per batch): only the id rows
    // must wait for both. An hour row whose events are not written yet lists an hour a scan finds
    // empty, as a crash between the two steps always could.
    await Promise.all([
      this.#writePartitions(items, (event) => `${event.merchantId}\u0000${hourOf(event.timestampMs)}`, ({ event, source }) => ({
        query: cql.insertEvent,
        params: [event.merchantId, hourOf(event.timestampMs), event.timestampMs, event.id, JSON.stringify(event), source.partition, source.offset],
      })),
      this.#writePartitions(hours, (event) => event.merchantId, ({ event }) => ({
        query: cql.insertHour,
        params: [event.merchantId, hourOf(event.timestampMs)],
      })),
    ]);
    await this.#session.forEachConcurrently(idRequests(items, idsPerWriteMax), requestsInFlightMax, (batch) =>
      this.#session.batch(batch.map(({ event, source }) => ({
        query: cql.insertId,
        params: [event.merchantId, shardOf(event.id), event.id, source.partition, source.offset, event.timestampMs],
      })), { logged: false, idempotent: true }),
    );
  }

  /** Writes one statement per item, as unlogged batches that each touch one partition. */
  async #writePartitions(
    items: readonly StoredEvent[],
    partitionOf: (event: TrackedEvent) => string,
    statementOf: (item: StoredEvent) => BatchStatement,
  ): Promise<void> {
    const batches = [...groupBy(items, (item) => partitionOf(item.event)).values()].flatMap((group) => chunk(group, batchStatementsMax));
    await this.#session.forEachConcurrently(batches, requestsInFlightMax, (batch) =>
      this.#session.batch(batch.map(statementOf), { logged: false, idempotent: true }),
    );
  }

  /** Up to `wanted` events of [fromMs, toMs) in scan order, strictly after `after` when given. */
  async #readRange(merchantId: string, fromMs: number, toMs: number, after: ScanPosition | null, wanted: number): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    let hoursRead = 0;
    for await (const hours of this.#populatedHours(merchantId, hourOf(fromMs), toMs)) {
      for (let next = 0; next < hours.length && events.length < wanted; ) {
        // Read as many hours at once as the density seen so far says the page still needs.
        const needed = wanted - events.length;
        const perHour = hoursRead === 0 ? needed : Math.max(1, events.length / hoursRead);
        const window = hours.slice(next, next + Math.min(hoursInFlightMax, Math.ceil(needed / perHour)));
        const pages = await Promise.all(window.map((hourMs) => this.#readHour(merchantId, hourMs, fromMs, toMs, after, needed)));
        for (const page of pages) events.push(...page.slice(0, wanted - events.length));
        hoursRead += window.length;
        next += window.length;
      }
      if (events.length >= wanted) break;
    }
    return events;
  }

  /** The populated hours from `fromHourMs` up to `toMs`, a page of hours at a time. */
  async *#populatedHours(merchantId: string, fromHourMs: number, toMs: number): AsyncGenerator<number[]> {
    let pageState: string | undefined;
    do {
      const result = await this.#session.execute(this.#cql.listHours, [merchantId, fromHourMs, toMs], {
        idempotent: true, fetchSize: hoursPageSize, ...(pageState ? { pageState } : {}),
      });
      yield result.rows.map((row) => longToNumber(row.get('hour_ms')));
      pageState = result.pageState ?? undefined;
    } while (pageState);
  }

  /** Up to `limit` events of one hour partition within the range, in scan order. */
  async #readHour(merchantId: string, hourMs: number, fromMs: number, toMs: number, after: ScanPosition | null, limit: number): Promise<StoredEvent[]> {
    const fromCursor = after !== null && hourOf(after.timestampMs) === hourMs;
    const [query, params] = fromCursor
      ? [this.#cql.scanAfter, [merchantId, hourMs, after.timestampMs, after.id, toMs, limit]]
      : [this.#cql.scanFrom, [merchantId, hourMs, fromMs, toMs, limit]];
    const events: StoredEvent[] = [];
    let pageState: string | undefined;
    do {
      const result = await this.#session.execute(query, params, {
        idempotent: true, fetchSize: Math.min(limit, rowsPageSize), ...(pageState ? { pageState } : {}),
      });
      for (const row of result.rows) events.push({ event: JSON.parse(row.get('body') as string) as TrackedEvent, source: rowSource(row) });
      pageState = result.pageState ?? undefined;
    } while (pageState && events.length < limit);
    return events;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('CassandraEventStore is closed');
  }
}

function hourOf(timestampMs: number): number {
  return Math.floor(timestampMs / time.hourMs) * time.hourMs;
}

function shardOf(id: string): number {
  return partitionForKey(id, idShards);
}

function eventKey(event: TrackedEvent): string {
  return `${event.merchantId}\u0000${event.id}`;
}

function rowSource(row: Row): EventSource {
  return { partition: row.get('src_partition') as number, offset: longToNumber(row.get('src_offset')) };
}

/** bigint columns read back as the driver's Long; every stored value is a safe integer. */
function longToNumber(value: unknown): number {
  return (value as cassandra.types.Long).toNumber();
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

/**
 * The items in requests of one merchant each, covering up to idShardsPerRequestMax shards and
 * `idsMax` ids (a crowded shard is split over several requests). With 1024 shards most shards hold
 * one or two of a batch's ids: see idShardsPerRequestMax.
 */
function idRequests(items: readonly StoredEvent[], idsMax: number): StoredEvent[][] {
  const requests: StoredEvent[][] = [];
  for (const merchantItems of groupBy(items, (item) => item.event.merchantId).values()) {
    let request: StoredEvent[] = [];
    let shards = 0;
    for (const shardItems of groupBy(merchantItems, (item) => String(shardOf(item.event.id))).values()) {
      for (const part of chunk(shardItems, idsMax)) {
        if (request.length > 0 && (shards >= idShardsPerRequestMax || request.length + part.length > idsMax)) {
          requests.push(request);
          request = [];
          shards = 0;
        }
        request.push(...part);
        shards++;
      }
    }
    if (request.length > 0) requests.push(request);
  }
  return requests;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}
