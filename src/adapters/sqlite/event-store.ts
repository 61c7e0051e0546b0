// SQLite EventStore: the raw event store (master dataset) in one table keyed by (merchant, event
// id). A batch is one transaction of multi-row INSERT … ON CONFLICT DO NOTHING: the first stored
// copy wins, and the sources of conflicting rows are read back to tell the caller which copy counts.
import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';
import { TallyError } from '../../core/errors.ts';
import type { TrackedEvent } from '../../core/event.ts';
import type { EventStore, ScanPage, ScanRequest, StoredEvent } from '../../core/ports/event-store.ts';
import { openDatabase, transaction } from './database.ts';

export interface SqliteEventStoreOptions {
  /** An open database (shared with other stores, owned by the caller) or a file path to open and own. */
  readonly db: DatabaseSync | string;
}

const schemaComponent = 'events';
const schemaVersion = 1;

/**
 * Rows per INSERT statement: one statement call per row costs more than the row itself, and
 * 7 parameters × 256 rows stays far below SQLite's 32,766 bound parameters per statement.
 */
const insertRowsMax = 256;
/** Keys per read-back statement of conflicting rows (2 parameters each). */
const lookupKeysMax = 256;

const createTablesSql = `
  CREATE TABLE IF NOT EXISTS events (
    merchant_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (merchant_id, event_id)
  ) STRICT;
  CREATE INDEX IF NOT EXISTS events_by_time ON events (merchant_id, ts_ms, event_id);
`;

const scanColumns = 'ts_ms, event_id, source_partition, source_offset, body';

export class SqliteEventStore implements EventStore {
  readonly #db: DatabaseSync;
  readonly #ownsDb: boolean;
  readonly #inserts = new Map<number, StatementSync>();
  readonly #lookups = new Map<number, StatementSync>();
  readonly #scanFirst: StatementSync;
  readonly #scanAfter: StatementSync;
  readonly #ping: StatementSync;
  #closed = false;

  static create(options: SqliteEventStoreOptions): SqliteEventStore {
    return new SqliteEventStore(options);
  }

  constructor(options: SqliteEventStoreOptions) {
    this.#ownsDb = typeof options.db === 'string';
    this.#db = typeof options.db === 'string' ? openDatabase(options.db) : options.db;
    try {
      migrate(this.#db);
    } catch (error) {
      if (this.#ownsDb) this.#db.close();
      throw error;
    }
    const range = 'merchant_id = ? AND ts_ms >= ? AND ts_ms < ?';
    this.#scanFirst = this.#db.prepare(`SELECT ${scanColumns} FROM events WHERE ${range} ORDER BY ts_ms, event_id LIMIT ?`);
    this.#scanAfter = this.#db.prepare(
      `SELECT ${scanColumns} FROM events WHERE ${range} AND (ts_ms, event_id) > (?, ?) ORDER BY ts_ms, event_id LIMIT ?`,
    );
    this.#ping = this.#db.prepare('SELECT 1');
  }

  async putBatch(items: readonly StoredEvent[]): Promise<boolean[]> {
    this.#assertOpen();
    if (items.length === 0) return [];
    return transaction(this.#db, () => {
      const results = new Array<boolean>(items.length).fill(true);
      for (let start = 0; start < items.length; start += insertRowsMax) {
        const end = Math.min(items.length, start + insertRowsMax);
        const inserted = this.#insertRows(items, start, end);
        // Every row of the chunk went in: each stored copy is this item's (first write).
        if (inserted < end - start) this.#compareSources(items, start, end, results);
      }
      return results;
    });
  }

  async scan(request: ScanRequest): Promise<ScanPage> {
    this.#assertOpen();
    assertScanRequest(request);
    const after = request.after ? decodeCursor(request.after) : null;
    // One row past the page says whether another page exists, so `next` is null at the end.
    const rows = after
      ? this.#scanAfter.all(request.merchantId, request.fromMs, request.toMs, after.timestampMs, after.id, request.limit + 1)
      : this.#scanFirst.all(request.merchantId, request.fromMs, request.toMs, request.limit + 1);
    const more = rows.length > request.limit;
    if (more) rows.pop();
    const events = rows.map(rowToStored);
    const last = events.at(-1);
    return { events, next: more && last ? encodeCursor(last.event.timestampMs, last.event.id) : null };
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    this.#ping.get();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsDb) this.#db.close();
  }

  /** Inserts items[start, end) in one statement; returns how many rows went in. */
  #insertRows(items: readonly StoredEvent[], start: number, end: number): number {
    const parameters: SQLInputValue[] = [];
    for (let index = start; index < end; index += 1) {
      const { event, source } = items[index] as StoredEvent;
      parameters.push(event.merchantId, event.id, event.timestampMs, event.receivedMs, source.partition, source.offset, JSON.stringify(event));
    }
    return Number(this.#insertStatement(end - start).run(...parameters).changes);
  }

  /** results[i] = whether the stored copy of items[i] came from items[i]'s log record. */
  #compareSources(items: readonly StoredEvent[], start: number, end: number, results: boolean[]): void {
    const stored = new Map<string, { partition: number; offset: number }>();
    for (let from = start; from < end; from += lookupKeysMax) {
      const to = Math.min(end, from + lookupKeysMax);
      const parameters: string[] = [];
      for (let index = from; index < to; index += 1) {
        const { event } = items[index] as StoredEvent;
        parameters.push(event.merchantId, event.id);
      }
      for (const row of this.#lookupStatement(to - from).all(...parameters)) {
        stored.set(storedKey(row.merchant_id as string, row.event_id as string), {
          partition: row.source_partition as number,
          offset: row.source_offset as number,
        });
      }
    }
    for (let index = start; index < end; index += 1) {
      const { event, source } = items[index] as StoredEvent;
      const copy = stored.get(storedKey(event.merchantId, event.id));
      if (!copy) throw new Error(`event store: ${event.merchantId}/${event.id} missing right after its insert`);
      results[index] = copy.partition === source.partition && copy.offset === source.offset;
    }
  }

  #insertStatement(rows: number): StatementSync {
    let statement = this.#inserts.get(rows);
    if (!statement) {
      const values = new Array<string>(rows).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ');
      statement = this.#db.prepare(
        `INSERT INTO events (merchant_id, event_id, ts_ms, received_ms, source_partition, source_offset, body)
         VALUES ${values} ON CONFLICT (merchant_id, event_id) DO NOTHING`,
      );
      this.#inserts.set(rows, statement);
    }
    return statement;
  }

  #lookupStatement(keys: number): StatementSync {
    let statement = this.#lookups.get(keys);
    if (!statement) {
      const values = new Array<string>(keys).fill('(?, ?)').join(', ');
      statement = this.#db.prepare(
        `SELECT merchant_id, event_id, source_partition, source_offset FROM events
         WHERE (merchant_id, event_id) IN (VALUES ${values})`,
      );
      this.#lookups.set(keys, statement);
    }
    return statement;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('SqliteEventStore is closed');
  }
}

function migrate(db: DatabaseSync): void {
  transaction(db, () => {
    db.exec('CREATE TABLE IF NOT EXISTS tally_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL) STRICT');
    const row = db.prepare('SELECT version FROM tally_schema WHERE component = ?').get(schemaComponent);
    const version = row ? Number(row.version) : 0;
    if (version > schemaVersion) {
      throw new Error(`event store: database schema ${version} is newer than this build's ${schemaVersion}; upgrade Tally`);
    }
    if (version === schemaVersion) return;
    db.exec(createTablesSql);
    db.prepare('INSERT INTO tally_schema (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version')
      .run(schemaComponent, schemaVersion);
  });
}

function storedKey(merchantId: string, eventId: string): string {
  return `${merchantId}\u0000${eventId}`;
}

function rowToStored(row: Record<string, unknown>): StoredEvent {
  return {
    event: JSON.parse(row.body as string) as TrackedEvent,
    source: { partition: row.source_partition as number, offset: row.source_offset as number },
  };
}

function encodeCursor(timestampMs: number, id: string): string {
  return Buffer.from(JSON.stringify([timestampMs, id])).toString('base64url');
}

function decodeCursor(cursor: string): { timestampMs: number; id: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new TallyError('invalid_request', 'malformed scan cursor');
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || !Number.isSafeInteger(parsed[0]) || typeof parsed[1] !== 'string') {
    throw new TallyError('invalid_request', 'malformed scan cursor');
  }
  return { timestampMs: parsed[0] as number, id: parsed[1] };
}

function assertScanRequest(request: ScanRequest): void {
  if (!Number.isSafeInteger(request.limit) || request.limit < 1) throw new RangeError(`scan limit must be a positive integer, got ${request.limit}`);
  if (!Number.isSafeInteger(request.fromMs) || !Number.isSafeInteger(request.toMs)) throw new RangeError('scan range must be integer epoch ms');
}
