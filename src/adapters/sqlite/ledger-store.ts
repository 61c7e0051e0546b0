// SQLite LedgerStore: accounts, transfers, double-entry entries, per-partition settled offsets and
// idempotency records, in the same store.db as the other stores. `settle` is one transaction:
// check the offset, load what the commands name, decide (the pure domain function), write the
// transfers, entries, balances and the new offset. BEGIN IMMEDIATE serializes it against every
// other writer of the file, so a zombie member can never apply a batch twice; and a transfer row
// that is already final is never written again, so neither can a redelivered command.
// Entries are numbered per account (the account row keeps the count). The rows are appended in
// the order they are applied (rowid); the small (account, number) key finds an account's history.
// That measured faster than rows clustered by account: a batch's random writes land in the
// narrow key, not in the rows (bench/ledger-settle.ts).
// The API's two writes per transfer (putIdempotency, recordPending) are group-committed, as the
// event log's appends are: calls arriving while a commit is pending share the next transaction
// and its one fsync, and each promise settles only once that transaction committed. One commit
// per call (each with its fsync blocking the event loop) measured 1,300 transfers/s over HTTP;
// group commit 2,100–2,300 (npm run bench -- --only=ledger --scale=small).
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { TallyError } from '../../core/errors.ts';
import { limits } from '../../core/limits.ts';
import {
  decideTransfers, type Account, type Decision, type Entry, type Transfer, type TransferCommand, type TransferFailureCode, type TransferStatus,
} from '../../core/payments/ledger.ts';
import { assertCommand, assertNewAccount, assertPageRequest, assertSettleBatch, unknownCursor } from '../../core/ports/ledger-store-rules.ts';
import { LedgerConflictError } from '../../core/ports/ledger-store.ts';
import type { IdempotencyRecord, LedgerStore, Page, PageRequest, SettleBatch } from '../../core/ports/ledger-store.ts';
import { migrateComponent, StoreConnection, transaction } from './database.ts';

export interface SqliteLedgerStoreOptions {
  /** An open database (shared with other stores, owned by the caller) or a file path to open and own. */
  readonly db: DatabaseSync | string;
  /** Writes waiting for a group commit; past it they are refused with store_unavailable. */
  readonly writeQueueMax?: number;
}

export interface SqliteLedgerStoreStats {
  /** Transactions that committed queued writes (each is one fsync). */
  readonly groupCommits: number;
  /** Writes (putIdempotency, recordPending) those transactions carried. */
  readonly writesCommitted: number;
  readonly queuedWrites: number;
}

/** A write waiting for the next group commit: run inside its transaction, answered once it committed. */
interface QueuedWrite {
  readonly write: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

type WriteOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

const schemaComponent = 'ledger';
const schemaVersion = 1;

// STRICT: an amount or balance past 64 bits fails instead of turning into a REAL. The CHECKs are
// defence in depth: even a bug in the decision cannot store a negative balance without overdraft,
// a second entry of a transfer on one account, or overwrite a decided transfer.
const createTablesSql = `
  CREATE TABLE IF NOT EXISTS ledger_accounts (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    name TEXT,
    allow_overdraft INTEGER NOT NULL CHECK (allow_overdraft IN (0, 1)),
    metadata TEXT NOT NULL,
    balance INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    -- How many entries the account has: the number of its next entry is one more.
    entry_count INTEGER NOT NULL DEFAULT 0,
    CHECK (allow_overdraft = 1 OR balance >= 0)
  ) STRICT;
  CREATE INDEX IF NOT EXISTS ledger_accounts_by_merchant ON ledger_accounts (merchant_id, created_ms, id);
  CREATE TABLE IF NOT EXISTS ledger_transfers (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    from_account_id TEXT NOT NULL,
    to_account_id TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    requested_ms INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    failure_code TEXT,
    settled_ms INTEGER
  ) STRICT;
  CREATE INDEX IF NOT EXISTS ledger_transfers_by_from ON ledger_transfers (from_account_id, requested_ms, id);
  CREATE INDEX IF NOT EXISTS ledger_transfers_by_to ON ledger_transfers (to_account_id, requested_ms, id);
  CREATE TABLE IF NOT EXISTS ledger_entries (
    account_id TEXT NOT NULL,
    entry_number INTEGER NOT NULL,
    transfer_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount <> 0),
    balance_after INTEGER NOT NULL,
    settled_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, entry_number)
  ) STRICT;
  CREATE TABLE IF NOT EXISTS ledger_offsets (
    stream TEXT NOT NULL,
    log_partition INTEGER NOT NULL,
    settled_offset INTEGER NOT NULL,
    PRIMARY KEY (stream, log_partition)
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS ledger_idempotency (
    merchant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, key)
  ) STRICT;
  CREATE INDEX IF NOT EXISTS ledger_idempotency_by_age ON ledger_idempotency (created_ms);
`;

const accountColumns = 'id, merchant_id, currency, name, allow_overdraft, metadata, balance, created_ms';
/** What settle() reads of an account: the account and how many entries it has (the next entry's number). */
const settleAccountColumns = `${accountColumns}, entry_count`;
const transferColumns = 'id, merchant_id, from_account_id, to_account_id, amount, currency, description, metadata, requested_ms, status, failure_code, settled_ms';
const idempotencyColumns = 'merchant_id, key, request_hash, status, body, created_ms';

/** Transfers naming an account, newest first; the credit branch skips what the debit branch has. */
function accountTransfersSql(afterCursor: boolean): string {
  const cursor = afterCursor ? 'AND (requested_ms, id) < ($cursorMs, $cursorId)' : '';
  return `SELECT ${transferColumns} FROM (
      SELECT ${transferColumns} FROM ledger_transfers WHERE from_account_id = $account AND merchant_id = $merchant ${cursor}
      UNION ALL
      SELECT ${transferColumns} FROM ledger_transfers
        WHERE to_account_id = $account AND from_account_id <> $account AND merchant_id = $merchant ${cursor}
    ) ORDER BY requested_ms DESC, id DESC LIMIT $limit`;
}

interface Statements {
  readonly insertAccount: StatementSync;
  readonly account: StatementSync;
  readonly accountsFirst: StatementSync;
  readonly accountsAfter: StatementSync;
  readonly accountsByIds: StatementSync;
  readonly setBalance: StatementSync;
  readonly insertPending: StatementSync;
  readonly transfer: StatementSync;
  readonly transfersByIds: StatementSync;
  readonly writeDecided: StatementSync;
  readonly accountTransfersFirst: StatementSync;
  readonly accountTransfersAfter: StatementSync;
  readonly insertEntry: StatementSync;
  readonly entries: StatementSync;
  readonly settledOffset: StatementSync;
  readonly setOffset: StatementSync;
  readonly idempotency: StatementSync;
  readonly insertIdempotency: StatementSync;
  readonly pruneIdempotency: StatementSync;
  readonly ping: StatementSync;
}

export class SqliteLedgerStore implements LedgerStore {
  readonly #db: DatabaseSync;
  readonly #connection: StoreConnection;
  readonly #statements: Statements;
  readonly #writeQueueMax: number;
  #queue: QueuedWrite[] = [];
  #flushSoon: ReturnType<typeof setImmediate> | undefined;
  #groupCommits = 0;
  #writesCommitted = 0;

  static create(options: SqliteLedgerStoreOptions): SqliteLedgerStore {
    return new SqliteLedgerStore(options);
  }

  constructor(options: SqliteLedgerStoreOptions) {
    const writeQueueMax = options.writeQueueMax ?? limits.ledgerWriteQueueMax;
    if (!Number.isSafeInteger(writeQueueMax) || writeQueueMax < 1) throw new RangeError(`writeQueueMax must be a positive integer, got ${writeQueueMax}`);
    this.#writeQueueMax = writeQueueMax;
    this.#connection = new StoreConnection(options.db, 'SqliteLedgerStore', (db) =>
      migrateComponent(db, { component: schemaComponent, version: schemaVersion, label: 'ledger store', create: (d) => d.exec(createTablesSql) }));
    this.#db = this.#connection.db;
    this.#statements = prepareStatements(this.#db);
  }

  async createAccount(account: Account): Promise<void> {
    this.#assertOpen();
    assertNewAccount(account);
    const inserted = this.#statements.insertAccount.run(
      account.id, account.merchantId, account.currency, account.name, account.allowOverdraft ? 1 : 0,
      JSON.stringify(account.metadata), account.balance, account.createdMs,
    );
    if (Number(inserted.changes) === 0) throw new TallyError('account_exists', `account ${account.id} already exists`);
  }

  async getAccount(merchantId: string, accountId: string): Promise<Account | null> {
    this.#assertOpen();
    const row = this.#statements.account.get(accountId, merchantId);
    return row ? rowToAccount(row) : null;
  }

  async listAccounts(request: PageRequest): Promise<Page<Account>> {
    this.#assertOpen();
    assertPageRequest(request);
    const statements = this.#statements;
    let rows: Record<string, unknown>[];
    if (request.startingAfter) {
      const cursor = statements.account.get(request.startingAfter, request.merchantId);
      if (!cursor) throw unknownCursor(request.startingAfter);
      rows = statements.accountsAfter.all(request.merchantId, cursor.created_ms as bigint, cursor.id as string, request.limit + 1);
    } else {
      rows = statements.accountsFirst.all(request.merchantId, request.limit + 1);
    }
    return toPage(rows, request.limit, rowToAccount);
  }

  async recordPending(command: TransferCommand): Promise<void> {
    this.#assertOpen();
    assertCommand(command);
    const values = commandValues(command);
    await this.#enqueue(() => {
      this.#statements.insertPending.run(...values);
    });
  }

  async getTransfer(merchantId: string, transferId: string): Promise<Transfer | null> {
    this.#assertOpen();
    const row = this.#statements.transfer.get(transferId, merchantId);
    return row ? rowToTransfer(row) : null;
  }

  async listAccountTransfers(request: PageRequest & { readonly accountId: string }): Promise<Page<Transfer>> {
    this.#assertOpen();
    assertPageRequest(request);
    const statements = this.#statements;
    const parameters = { merchant: request.merchantId, account: request.accountId, limit: request.limit + 1 };
    let rows: Record<string, unknown>[];
    if (request.startingAfter) {
      const cursor = statements.transfer.get(request.startingAfter, request.merchantId);
      if (!cursor || (cursor.from_account_id !== request.accountId && cursor.to_account_id !== request.accountId)) {
        throw unknownCursor(request.startingAfter);
      }
      rows = statements.accountTransfersAfter.all({ ...parameters, cursorMs: cursor.requested_ms as bigint, cursorId: cursor.id as string });
    } else {
      rows = statements.accountTransfersFirst.all(parameters);
    }
    return toPage(rows, request.limit, rowToTransfer);
  }

  async listEntries(merchantId: string, accountId: string): Promise<Entry[]> {
    this.#assertOpen();
    return this.#statements.entries.all(accountId, merchantId).map(rowToEntry);
  }

  async settledOffset(stream: string, partition: number): Promise<number> {
    this.#assertOpen();
    return this.#readOffset(stream, partition);
  }

  async settle(batch: SettleBatch): Promise<Decision[]> {
    this.#assertOpen();
    assertSettleBatch(batch);
    const statements = this.#statements;
    return transaction(this.#db, () => {
      const stored = this.#readOffset(batch.stream, batch.partition);
      if (stored !== batch.fromOffset - 1) {
        throw new LedgerConflictError(`${batch.stream}/${batch.partition}: settled offset is ${stored}, batch starts at ${batch.fromOffset}`);
      }
      const state = this.#loadState(batch.commands);
      const decisions = decideTransfers(batch.commands, state, batch.settledMs);
      /** Per account touched: its balance and entry count after the batch. */
      const touched = new Map<string, { balance: bigint; entries: number }>();
      for (const decision of decisions) {
        if (decision.kind !== 'succeeded' && decision.kind !== 'failed') continue;
        const { transfer } = decision;
        const written = statements.writeDecided.run(...commandValues(transfer), transfer.status, transfer.failureCode, transfer.settledMs);
        // Zero changes: the id is already decided, which the decision had to see. Never overwrite it.
        if (Number(written.changes) !== 1) throw new Error(`ledger store: transfer ${transfer.id} is already decided`);
        if (decision.kind !== 'succeeded') continue;
        for (const entry of decision.entries) {
          const entryNumber = (touched.get(entry.accountId)?.entries ?? state.entryCounts.get(entry.accountId)!) + 1;
          statements.insertEntry.run(entry.accountId, entryNumber, entry.transferId, entry.merchantId, entry.amount, entry.balanceAfter, entry.settledMs);
          touched.set(entry.accountId, { balance: entry.balanceAfter, entries: entryNumber });
        }
      }
      for (const [accountId, { balance, entries }] of touched) statements.setBalance.run(balance, entries, accountId);
      statements.setOffset.run(batch.stream, batch.partition, batch.throughOffset);
      return decisions;
    });
  }

  async getIdempotency(merchantId: string, key: string): Promise<IdempotencyRecord | null> {
    this.#assertOpen();
    const row = this.#statements.idempotency.get(merchantId, key);
    return row ? rowToIdempotency(row) : null;
  }

  async putIdempotency(record: IdempotencyRecord): Promise<IdempotencyRecord> {
    this.#assertOpen();
    const statements = this.#statements;
    const wanted = { ...record };
    // Inside the group's transaction a second claim of one key sees the first one's row.
    return this.#enqueue((): IdempotencyRecord => {
      const inserted = statements.insertIdempotency.run(wanted.merchantId, wanted.key, wanted.requestHash, wanted.status, wanted.body, wanted.createdMs);
      if (Number(inserted.changes) === 1) return wanted;
      const stored = statements.idempotency.get(wanted.merchantId, wanted.key);
      if (!stored) throw new Error(`ledger store: idempotency record ${wanted.key} vanished while being read`);
      return rowToIdempotency(stored);
    });
  }

  async pruneIdempotency(olderThanMs: number): Promise<number> {
    this.#assertOpen();
    return Number(this.#statements.pruneIdempotency.run(olderThanMs).changes);
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    this.#statements.ping.get();
  }

  /** Writes already queued are committed first: what a caller was promised is not dropped. */
  async close(): Promise<void> {
    this.#flush();
    this.#connection.close();
  }

  stats(): SqliteLedgerStoreStats {
    return { groupCommits: this.#groupCommits, writesCommitted: this.#writesCommitted, queuedWrites: this.#queue.length };
  }

  /** Queues a write for the next group commit; it resolves with what `write` returned once that committed. */
  #enqueue<T>(write: () => T): Promise<T> {
    if (this.#queue.length >= this.#writeQueueMax) {
      return Promise.reject(new TallyError('store_unavailable', `ledger store: ${this.#queue.length} writes are waiting for a commit; retry later`));
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ write, resolve: resolve as (value: unknown) => void, reject });
      // The next turn of the event loop, after the I/O already read: every call that arrived by
      // then joins this commit, and a lone call waits for nothing else.
      this.#flushSoon ??= setImmediate(() => this.#flush());
    });
  }

  /** One group commit: every queued write in one transaction, then each promise settles. */
  #flush(): void {
    clearImmediate(this.#flushSoon);
    this.#flushSoon = undefined;
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    let outcomes: WriteOutcome[];
    try {
      outcomes = transaction(this.#db, () => batch.map((queued) => this.#attempt(queued)));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const failure = new TallyError('store_unavailable', `ledger store: the commit of ${batch.length} writes failed, none was stored (${reason}); retry later`);
      for (const queued of batch) queued.reject(failure);
      return;
    }
    this.#groupCommits += 1;
    this.#writesCommitted += batch.length;
    batch.forEach((queued, index) => {
      const outcome = outcomes[index]!;
      if (outcome.ok) queued.resolve(outcome.value);
      else queued.reject(outcome.error);
    });
  }

  /**
   * A write that fails alone (its statement is undone, the transaction goes on) fails only its own
   * call, as it did with a commit per call; an error that ended the transaction fails the group.
   */
  #attempt(queued: QueuedWrite): WriteOutcome {
    try {
      return { ok: true, value: queued.write() };
    } catch (error) {
      if (!this.#db.isTransaction) throw error;
      return { ok: false, error };
    }
  }

  /** Every account and known transfer the commands name, in two reads (ids travel as JSON arrays). */
  #loadState(commands: readonly TransferCommand[]): { accounts: Map<string, Account>; entryCounts: Map<string, number>; transfers: Map<string, Transfer> } {
    const accountIds = new Set<string>();
    for (const command of commands) {
      accountIds.add(command.fromAccountId);
      accountIds.add(command.toAccountId);
    }
    const accounts = new Map<string, Account>();
    const entryCounts = new Map<string, number>();
    for (const row of this.#statements.accountsByIds.all(JSON.stringify([...accountIds]))) {
      accounts.set(row.id as string, rowToAccount(row));
      entryCounts.set(row.id as string, Number(row.entry_count));
    }
    const transfers = new Map<string, Transfer>();
    const transferIds = JSON.stringify([...new Set(commands.map((command) => command.id))]);
    for (const row of this.#statements.transfersByIds.all(transferIds)) transfers.set(row.id as string, rowToTransfer(row));
    return { accounts, entryCounts, transfers };
  }

  #readOffset(stream: string, partition: number): number {
    const row = this.#statements.settledOffset.get(stream, partition);
    return row ? Number(row.settled_offset) : -1;
  }

  #assertOpen(): void {
    this.#connection.assertOpen();
  }
}

function prepareStatements(db: DatabaseSync): Statements {
  // Amounts and balances are read as bigint: past 2^53 a number would round.
  const exact = { readBigInts: true };
  return {
    insertAccount: db.prepare(`INSERT INTO ledger_accounts (${accountColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
    account: db.prepare(`SELECT ${accountColumns} FROM ledger_accounts WHERE id = ? AND merchant_id = ?`, exact),
    accountsFirst: db.prepare(`SELECT ${accountColumns} FROM ledger_accounts WHERE merchant_id = ? ORDER BY created_ms, id LIMIT ?`, exact),
    accountsAfter: db.prepare(
      `SELECT ${accountColumns} FROM ledger_accounts WHERE merchant_id = ? AND (created_ms, id) > (?, ?) ORDER BY created_ms, id LIMIT ?`, exact,
    ),
    accountsByIds: db.prepare(`SELECT ${settleAccountColumns} FROM ledger_accounts WHERE id IN (SELECT value FROM json_each(?))`, exact),
    setBalance: db.prepare('UPDATE ledger_accounts SET balance = ?, entry_count = ? WHERE id = ?'),
    insertPending: db.prepare(
      `INSERT INTO ledger_transfers (${transferColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL) ON CONFLICT (id) DO NOTHING`,
    ),
    transfer: db.prepare(`SELECT ${transferColumns} FROM ledger_transfers WHERE id = ? AND merchant_id = ?`, exact),
    transfersByIds: db.prepare(`SELECT ${transferColumns} FROM ledger_transfers WHERE id IN (SELECT value FROM json_each(?))`, exact),
    // A pending row (the API recorded it) becomes final; a final row is never touched (0 changes).
    writeDecided: db.prepare(
      `INSERT INTO ledger_transfers (${transferColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, failure_code = excluded.failure_code, settled_ms = excluded.settled_ms
       WHERE ledger_transfers.status = 'pending'`,
    ),
    accountTransfersFirst: db.prepare(accountTransfersSql(false), exact),
    accountTransfersAfter: db.prepare(accountTransfersSql(true), exact),
    insertEntry: db.prepare(
      'INSERT INTO ledger_entries (account_id, entry_number, transfer_id, merchant_id, amount, balance_after, settled_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    entries: db.prepare(
      'SELECT transfer_id, account_id, merchant_id, amount, balance_after, settled_ms FROM ledger_entries WHERE account_id = ? AND merchant_id = ? ORDER BY entry_number',
      exact,
    ),
    settledOffset: db.prepare('SELECT settled_offset FROM ledger_offsets WHERE stream = ? AND log_partition = ?'),
    setOffset: db.prepare(
      `INSERT INTO ledger_offsets (stream, log_partition, settled_offset) VALUES (?, ?, ?)
       ON CONFLICT (stream, log_partition) DO UPDATE SET settled_offset = excluded.settled_offset`,
    ),
    idempotency: db.prepare(`SELECT ${idempotencyColumns} FROM ledger_idempotency WHERE merchant_id = ? AND key = ?`),
    insertIdempotency: db.prepare(`INSERT INTO ledger_idempotency (${idempotencyColumns}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
    pruneIdempotency: db.prepare('DELETE FROM ledger_idempotency WHERE created_ms < ?'),
    ping: db.prepare('SELECT 1'),
  };
}

/** The first nine transfer columns, from a command (or a transfer, which extends it). */
function commandValues(command: TransferCommand): [string, string, string, string, bigint, string, string | null, string, number] {
  return [
    command.id, command.merchantId, command.fromAccountId, command.toAccountId, command.amount, command.currency,
    command.description, JSON.stringify(command.metadata), command.requestedMs,
  ];
}

/** Rows were read with one extra beyond the limit: its presence says another page follows. */
function toPage<T>(rows: readonly Record<string, unknown>[], limit: number, map: (row: Record<string, unknown>) => T): Page<T> {
  return { items: rows.slice(0, limit).map(map), hasMore: rows.length > limit };
}

function rowToAccount(row: Record<string, unknown>): Account {
  return {
    id: row.id as string,
    merchantId: row.merchant_id as string,
    currency: row.currency as string,
    name: row.name as string | null,
    allowOverdraft: Number(row.allow_overdraft) === 1,
    metadata: JSON.parse(row.metadata as string) as Record<string, string>,
    balance: row.balance as bigint,
    createdMs: Number(row.created_ms),
  };
}

function rowToTransfer(row: Record<string, unknown>): Transfer {
  return {
    id: row.id as string,
    merchantId: row.merchant_id as string,
    fromAccountId: row.from_account_id as string,
    toAccountId: row.to_account_id as string,
    amount: row.amount as bigint,
    currency: row.currency as string,
    description: row.description as string | null,
    metadata: JSON.parse(row.metadata as string) as Record<string, string>,
    requestedMs: Number(row.requested_ms),
    status: row.status as TransferStatus,
    failureCode: row.failure_code as TransferFailureCode | null,
    settledMs: row.settled_ms === null ? null : Number(row.settled_ms),
  };
}

function rowToEntry(row: Record<string, unknown>): Entry {
  return {
    transferId: row.transfer_id as string,
    accountId: row.account_id as string,
    merchantId: row.merchant_id as string,
    amount: row.amount as bigint,
    balanceAfter: row.balance_after as bigint,
    settledMs: Number(row.settled_ms),
  };
}

function rowToIdempotency(row: Record<string, unknown>): IdempotencyRecord {
  return {
    merchantId: row.merchant_id as string,
    key: row.key as string,
    requestHash: row.request_hash as string,
    status: Number(row.status),
    body: row.body as string,
    createdMs: Number(row.created_ms),
  };
}
