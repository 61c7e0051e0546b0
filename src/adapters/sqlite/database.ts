// Opens node:sqlite databases the one way every SQLite adapter needs them: WAL, synchronous=FULL
// (a commit survives power loss), a busy timeout so processes sharing the file wait instead of
// failing, and foreign keys on. Also the one transaction helper (BEGIN IMMEDIATE … COMMIT).

import { DatabaseSync } from 'node:sqlite';

/** How long a statement waits for another connection's write lock before failing with SQLITE_BUSY. */
export const busyTimeoutMsDefault = 5000;

export interface OpenDatabaseOptions {
  readonly readOnly?: boolean;
  readonly busyTimeoutMs?: number;
}

/** Page cache per connection (KiB). */
const pageCacheKib = 64 * 1024;
/** WAL pages before an automatic checkpoint (~40 MiB of WAL at 4 KiB pages). */
const walCheckpointPages = 10_000;

export function openDatabase(path: string, options: OpenDatabaseOptions = {}): DatabaseSync {
  const readOnly = options.readOnly ?? false;
  const busyTimeoutMs = options.busyTimeoutMs ?? busyTimeoutMsDefault;
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(`busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}`);
  }
  const db = new DatabaseSync(path, {
    readOnly,
    timeout: busyTimeoutMs,
    enableForeignKeyConstraints: true,
  });
  try {
    // Set before anything else so even the first statement waits for a busy writer.
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    db.exec('PRAGMA foreign_keys = ON');
    if (!readOnly) {
      // journal_mode is persistent in the file; a read-only connection inherits it.
      const mode = db.prepare('PRAGMA journal_mode = WAL').get();
      const journalMode = mode === undefined ? undefined : mode['journal_mode'];
      if (journalMode !== 'wal' && path !== ':memory:') {
        throw new Error(`sqlite: could not switch ${path} to WAL (journal_mode=${String(journalMode)})`);
      }
      // In WAL mode FULL syncs the WAL on every commit: an acknowledged write survives power loss.
      db.exec('PRAGMA synchronous = FULL');
      // A ledger batch of 1,000 random transfers dirties ~3,000 pages: with SQLite's defaults
      // (2 MiB cache, checkpoint every 1,000 pages) every commit also checkpoints and re-reads.
      // Measured on settle: 15,400 → 23,000 transfers/s (bench/ledger-settle.ts).
      db.exec(`PRAGMA cache_size = -${pageCacheKib}`);
      db.exec(`PRAGMA wal_autocheckpoint = ${walCheckpointPages}`);
    }
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Runs `fn` in one write transaction. BEGIN IMMEDIATE takes the write lock up front, so reads
 * inside `fn` see the state the writes are based on (no lost update across processes).
 * `fn` must be synchronous: an await inside would let other code run mid-transaction.
 */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  if (db.isTransaction) {
    throw new Error('sqlite: transactions do not nest; this is a bug in the caller');
  }
  db.exec('BEGIN IMMEDIATE');
  let result: T;
  try {
    result = fn();
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
  if (result instanceof Promise) {
    db.exec('ROLLBACK');
    throw new Error('sqlite: transaction callbacks must be synchronous');
  }
  try {
    db.exec('COMMIT');
  } catch (error) {
    // A failed COMMIT (disk full, I/O error) can leave the transaction open; never leak it.
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
  return result;
}

export interface SchemaComponent {
  /** Which store's tables these are, e.g. 'events'. Several stores may share one file. */
  readonly component: string;
  readonly version: number;
  /** Human name for errors, e.g. 'event store'. */
  readonly label: string;
  /** Creates the tables of `version` (idempotent statements). */
  readonly create: (db: DatabaseSync) => void;
}

/**
 * Brings one store's tables to this build's schema version, in one transaction. A file written
 * by a newer build is refused rather than silently misread.
 */
export function migrateComponent(db: DatabaseSync, schema: SchemaComponent): void {
  transaction(db, () => {
    db.exec('CREATE TABLE IF NOT EXISTS tally_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL) STRICT');
    const row = db.prepare('SELECT version FROM tally_schema WHERE component = ?').get(schema.component);
    const version = row ? Number(row.version) : 0;
    if (version > schema.version) {
      throw new Error(`${schema.label}: database schema ${version} is newer than this build's ${schema.version}; upgrade Tally`);
    }
    if (version === schema.version) return;
    schema.create(db);
    db.prepare('INSERT INTO tally_schema (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version')
      .run(schema.component, schema.version);
  });
}

/**
 * A store's hold on its database: a connection it opened itself (from a path) and must close, or
 * one borrowed from the composition root (several stores share a file) and left open. Set-up
 * failures close what it opened; use after close is refused.
 */
export class StoreConnection {
  readonly db: DatabaseSync;
  readonly #owned: boolean;
  readonly #name: string;
  #closed = false;

  constructor(source: DatabaseSync | string, name: string, setUp: (db: DatabaseSync) => void) {
    this.#owned = typeof source === 'string';
    this.#name = name;
    this.db = typeof source === 'string' ? openDatabase(source) : source;
    try {
      setUp(this.db);
    } catch (error) {
      if (this.#owned) this.db.close();
      throw error;
    }
  }

  assertOpen(): void {
    if (this.#closed) throw new Error(`${this.#name} is closed`);
  }

  /** Idempotent; closes the database only if this store opened it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) this.db.close();
  }
}
