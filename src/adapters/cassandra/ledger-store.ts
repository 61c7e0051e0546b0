// Cassandra LedgerStore: double entry without counters and without transactions across Cassandra
// partitions. docs/ledger-on-cassandra.md gives the choice and its argument at length; in short:
//
// Balances are derived from append-only entries, not kept in a balance row under lightweight
// transactions. Commands are keyed by the debited account, so all debits of an account come from
// one log partition (its home) and only that partition's owner checks its funds; credits come
// from every partition at once. An LWT per balance change would serialize those credits on hot
// accounts (a merchant's revenue account is credited by all its customers) at four round trips
// each. Instead each source (log partition) keeps, per account it touched, one row with the net of
// its entries there (ledger_accounts, clustering column `source`), and balance = Σ net. A source's
// row has one writer — the source's owner, fenced below — so read-add-write loses nothing, and the
// funds check reads the account's partition: its home row is exact, the others only credit it and
// only grow, so a stale read under-counts the balance and can never overdraw it.
//
// settle(batch), per log partition (ledger/batches.ts):
//  1. Read the partition's row at SERIAL: a batch left pending (claimed, not finished) is finished
//     from its intent first and the caller retries; the settled offset must be fromOffset − 1.
//  2. Load the accounts the commands name (attributes and per-source nets).
//  3. Claim each new transfer id: the ledger_transfers row is created IF NOT EXISTS by whoever names
//     the id first (the API's pending record or this claim) and holds its payload; a pending record
//     of this very command is taken for this partition IF claim_source = null. An id held by another
//     payload or partition is a conflict: one id is applied at most once, whatever partitions its
//     commands reach.
//  4. Decide (core decideTransfers) and record the writes as an intent (ledger_intents, TTL).
//  5. Claim the batch: IF settled_offset = from − 1 AND pending_id = ''. A member that lost the
//     partition (a zombie) fails here, before writing anything but its intent, so it cannot apply
//     a batch twice or decide on a stale view.
//  6. Apply: entries and the accounts' transfer index, then the nets `USING TIMESTAMP
//     throughOffset + 1`, then the final statuses (a transfer read as decided has its balances) —
//     anyone may apply an intent again with the same result, and a late repetition of an older
//     batch loses to newer nets whatever the clocks.
//  7. Finish: settled_offset = through, pending_id = '' IF pending_id = ours; drop the intent.
// A timed-out LWT is settled by a SERIAL read of its row, never resent blindly.
//
// The order of an account's entries (ledger/entry-order.ts): a debit records the balance it was
// decided against and the last position of every other source it counted, so listEntries merges
// the sources into the one chain every decision agrees with, and checks each debit against it.
// Rules that keep this sound: a source's offsets never go back (a recreated topic needs a new
// stream name), and account partitions are never deleted with a clock timestamp (it would shadow
// the nets written with sequence timestamps).
import { TallyError } from '../../core/errors.ts';
import type { Account, Entry, Transfer, TransferCommand } from '../../core/payments/ledger.ts';
import { assertCommand, assertNewAccount, assertPageRequest, assertSettleBatch, unknownCursor } from '../../core/ports/ledger-store-rules.ts';
import type { Decision } from '../../core/payments/ledger.ts';
import type { IdempotencyRecord, LedgerSource, LedgerStore, Page, PageRequest, SettleBatch } from '../../core/ports/ledger-store.ts';
import { bigintOf, conditionalWrite, longOf, readAll, readSerial, requestsInFlightMax } from './cql.ts';
import type { CassandraSession } from './session.ts';
import { LedgerBatches, sourceName, type LedgerFaults } from './ledger/batches.ts';

export type { LedgerFaults, LedgerStep } from './ledger/batches.ts';
import { orderEntries, type StoredEntry } from './ledger/entry-order.ts';
import {
  accountColumns, accountFromRows, commandValues, exactLongOf, idempotencyFromRow, long, payloadColumns, transferColumns, transferFromRow,
} from './ledger/rows.ts';
import { idempotencyTtlSeconds, ledgerStoreSchema } from './ledger/schema.ts';

export { ledgerStoreSchema } from './ledger/schema.ts';

const hourMs = 3_600_000;

/** Where a page of an index partition starts: the (time, id) of the last row of the previous one. */
type IndexCursor = readonly [number, string];
/** ledger_idempotency_hours keeps every hour in one small partition. */
const hoursShard = 0;

export interface CassandraLedgerStoreOptions {
  /** Shared with the other stores; the caller owns it and closes it. */
  readonly session: CassandraSession;
  /** Tests only: stops settles between their steps. */
  readonly faults?: LedgerFaults;
}

export class CassandraLedgerStore implements LedgerStore {
  readonly #session: CassandraSession;
  readonly #batches: LedgerBatches;
  #closed = false;

  /** Checks the schema (`tally migrate` creates it); statements are prepared on first use. */
  static async open(options: CassandraLedgerStoreOptions): Promise<CassandraLedgerStore> {
    await options.session.assertSchema(ledgerStoreSchema);
    return new CassandraLedgerStore(options.session, options.faults ?? null);
  }

  private constructor(session: CassandraSession, faults: LedgerFaults | null) {
    this.#session = session;
    this.#batches = new LedgerBatches(session, faults);
  }

  async createAccount(account: Account): Promise<void> {
    this.#assertOpen();
    assertNewAccount(account);
    // The listing row first: a create that dies between the two leaves a listing row that lists
    // nothing (listAccounts shows an account only where its own row agrees), never a hidden account.
    await this.#session.execute(
      `INSERT INTO ${this.#table('ledger_accounts_by_merchant')} (merchant_id, created_ms, id) VALUES (?, ?, ?)`,
      [account.merchantId, long(account.createdMs), account.id], { idempotent: true });
    const query = `INSERT INTO ${this.#table('ledger_accounts')} (id, merchant_id, currency, name, allow_overdraft, metadata, created_ms)
                   VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`;
    const applied = await conditionalWrite(this.#session, query,
      [account.id, account.merchantId, account.currency, account.name, account.allowOverdraft, JSON.stringify(account.metadata), long(account.createdMs)]);
    if (applied === true) return;
    if (applied === undefined) {
      // Timed out: the SERIAL read says whether our insert is the one that holds the id.
      const row = await readSerial(this.#session,
        `SELECT merchant_id, currency, created_ms, metadata FROM ${this.#table('ledger_accounts')} WHERE id = ? LIMIT 1`, [account.id]);
      if (row && row.merchant_id === account.merchantId && row.currency === account.currency && longOf(row.created_ms) === account.createdMs &&
        row.metadata === JSON.stringify(account.metadata)) return;
    }
    throw new TallyError('account_exists', `an account with id ${account.id} already exists`);
  }

  async getAccount(merchantId: string, accountId: string): Promise<Account | null> {
    this.#assertOpen();
    const account = await this.#readAccount(accountId);
    return account && account.merchantId === merchantId ? account : null;
  }

  async listAccounts(request: PageRequest): Promise<Page<Account>> {
    this.#assertOpen();
    assertPageRequest(request);
    const table = this.#table('ledger_accounts_by_merchant');
    let cursor: IndexCursor | null = null;
    if (request.startingAfter) {
      const after = await this.getAccount(request.merchantId, request.startingAfter);
      if (!after) throw unknownCursor(request.startingAfter);
      cursor = [after.createdMs, after.id];
    }
    return this.#pageIndex(request.limit, request.merchantId, cursor, {
      first: `SELECT created_ms AS ms, id FROM ${table} WHERE merchant_id = ? LIMIT ?`,
      after: `SELECT created_ms AS ms, id FROM ${table} WHERE merchant_id = ? AND (created_ms, id) > (?, ?) LIMIT ?`,
    }, async (createdMs, id) => {
      // A listing row whose account does not agree is an interrupted create's: skipped.
      const account = await this.#readAccount(id);
      return account && account.merchantId === request.merchantId && account.createdMs === createdMs ? account : null;
    });
  }

  async recordPending(command: TransferCommand, appendedTo?: LedgerSource): Promise<void> {
    this.#assertOpen();
    assertCommand(command);
    // The index rows first: an index row of a transfer that was never recorded shows nothing.
    await this.#writeIndex(command);
    // IF NOT EXISTS: the first record of an id holds it; a known id (pending or final) is left alone.
    // Knowing the partition the command went to, the record is that partition's claim as well, so
    // settling it needs no lightweight transaction of its own. A timed-out insert needs no
    // read-back: either way the id is held by whoever was first.
    const claimSource = appendedTo ? sourceName(appendedTo) : null;
    await conditionalWrite(this.#session,
      `INSERT INTO ${this.#table('ledger_transfers')} (id, ${payloadColumns}, claim_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
      [command.id, ...commandValues(command), claimSource]);
  }

  async getTransfer(merchantId: string, transferId: string): Promise<Transfer | null> {
    this.#assertOpen();
    const row = (await this.#session.execute(
      `SELECT ${transferColumns} FROM ${this.#table('ledger_transfers')} WHERE id = ?`,
      [transferId], { idempotent: true })).first();
    if (!row) return null;
    const { transfer } = transferFromRow(row);
    return transfer.merchantId === merchantId ? transfer : null;
  }

  async listAccountTransfers(request: PageRequest & { readonly accountId: string }): Promise<Page<Transfer>> {
    this.#assertOpen();
    assertPageRequest(request);
    const table = this.#table('ledger_account_transfers');
    const names = (transfer: Transfer): boolean => transfer.fromAccountId === request.accountId || transfer.toAccountId === request.accountId;
    let cursor: IndexCursor | null = null;
    if (request.startingAfter) {
      const after = await this.getTransfer(request.merchantId, request.startingAfter);
      if (!after || !names(after)) throw unknownCursor(request.startingAfter);
      cursor = [after.requestedMs, after.id];
    }
    return this.#pageIndex(request.limit, request.accountId, cursor, {
      first: `SELECT requested_ms AS ms, transfer_id AS id FROM ${table} WHERE account_id = ? LIMIT ?`,
      after: `SELECT requested_ms AS ms, transfer_id AS id FROM ${table} WHERE account_id = ? AND (requested_ms, transfer_id) < (?, ?) LIMIT ?`,
    }, async (requestedMs, id) => {
      // The id's holder must be the transfer the row was written for (not a refused reuse of its id).
      const transfer = await this.getTransfer(request.merchantId, id);
      return transfer && names(transfer) && transfer.requestedMs === requestedMs ? transfer : null;
    });
  }

  async listEntries(merchantId: string, accountId: string): Promise<Entry[]> {
    this.#assertOpen();
    const rows = await readAll(this.#session,
      `SELECT source, position, transfer_id, merchant_id, amount, decided_balance, seen, settled_ms FROM ${this.#table('ledger_entries')} WHERE account_id = ?`,
      [accountId]);
    const stored: StoredEntry[] = rows.filter((row) => row.merchant_id === merchantId).map((row) => {
      const amount = exactLongOf(row.amount);
      const seen = row.seen as Record<string, unknown> | null;
      return {
        source: row.source as string,
        position: longOf(row.position),
        transferId: row.transfer_id as string,
        merchantId: row.merchant_id as string,
        amount,
        decidedBalance: row.decided_balance === null ? null : bigintOf(row.decided_balance),
        // An empty map reads back as null: a debit is told by its sign.
        seen: amount < 0n ? new Map(Object.entries(seen ?? {}).map(([source, position]) => [source, longOf(position)])) : null,
        settledMs: longOf(row.settled_ms),
      };
    });
    const chain = orderEntries(stored);
    if (chain.mismatches.length > 0) {
      throw new Error(`ledger store: the entries of account ${accountId} disagree with their decisions: ${chain.mismatches.slice(0, 3).join('; ')}`);
    }
    return chain.entries.map((entry) => ({
      transferId: entry.transferId, accountId, merchantId: entry.merchantId, amount: entry.amount, balanceAfter: entry.balanceAfter, settledMs: entry.settledMs,
    }));
  }

  async settledOffset(stream: string, partition: number): Promise<number> {
    this.#assertOpen();
    return this.#batches.settledOffset(stream, partition);
  }

  async settle(batch: SettleBatch): Promise<Decision[]> {
    this.#assertOpen();
    assertSettleBatch(batch);
    return this.#batches.settle(batch);
  }

  async getIdempotency(merchantId: string, key: string): Promise<IdempotencyRecord | null> {
    this.#assertOpen();
    const row = (await this.#session.execute(
      this.#idempotencyQuery,
      [merchantId, key], { idempotent: true })).first();
    return row ? idempotencyFromRow(row) : null;
  }

  async putIdempotency(record: IdempotencyRecord): Promise<IdempotencyRecord> {
    this.#assertOpen();
    const wanted = { ...record };
    const hour = Math.floor(wanted.createdMs / hourMs);
    // Pruning's index first, so no record escapes it.
    await Promise.all([
      this.#session.execute(`INSERT INTO ${this.#table('ledger_idempotency_hours')} (shard, hour) VALUES (?, ?)`, [hoursShard, long(hour)], { idempotent: true }),
      this.#session.execute(`INSERT INTO ${this.#table('ledger_idempotency_by_hour')} (hour, merchant_id, key) VALUES (?, ?, ?)`,
        [long(hour), wanted.merchantId, wanted.key], { idempotent: true }),
    ]);
    const applied = await conditionalWrite(this.#session,
      `INSERT INTO ${this.#table('ledger_idempotency')} (merchant_id, key, request_hash, status, body, created_ms) VALUES (?, ?, ?, ?, ?, ?)
       IF NOT EXISTS USING TTL ${idempotencyTtlSeconds}`,
      [wanted.merchantId, wanted.key, wanted.requestHash, wanted.status, wanted.body, long(wanted.createdMs)]);
    if (applied === true) return wanted;
    // Refused (another request holds the key) or timed out: the SERIAL read says who holds it.
    const row = await readSerial(this.#session,
      this.#idempotencyQuery,
      [wanted.merchantId, wanted.key]);
    if (!row) throw new TallyError('store_unavailable', `ledger store: idempotency key ${wanted.key} is unsettled; retry`);
    return idempotencyFromRow(row);
  }

  async pruneIdempotency(olderThanMs: number): Promise<number> {
    this.#assertOpen();
    const cutoffHour = Math.floor(olderThanMs / hourMs);
    const hours = (await readAll(this.#session,
      `SELECT hour FROM ${this.#table('ledger_idempotency_hours')} WHERE shard = ? AND hour <= ?`, [hoursShard, long(cutoffHour)]))
      .map((row) => longOf(row.hour));
    let pruned = 0;
    for (const hour of hours) {
      const keys = await readAll(this.#session,
        `SELECT merchant_id, key FROM ${this.#table('ledger_idempotency_by_hour')} WHERE hour = ?`, [long(hour)]);
      let kept = 0;
      await this.#session.forEachConcurrently(keys, requestsInFlightMax, async ({ merchant_id: merchantId, key }) => {
        const record = await this.getIdempotency(merchantId as string, key as string);
        if (record && record.createdMs >= olderThanMs) {
          kept++;
          return;
        }
        if (record) {
          await this.#session.execute(`DELETE FROM ${this.#table('ledger_idempotency')} WHERE merchant_id = ? AND key = ?`, [merchantId, key], { idempotent: true });
          pruned++;
        }
        await this.#session.execute(`DELETE FROM ${this.#table('ledger_idempotency_by_hour')} WHERE hour = ? AND merchant_id = ? AND key = ?`,
          [long(hour), merchantId, key], { idempotent: true });
      });
      if (kept === 0) {
        await this.#session.execute(`DELETE FROM ${this.#table('ledger_idempotency_hours')} WHERE shard = ? AND hour = ?`, [hoursShard, long(hour)], { idempotent: true });
      }
    }
    return pruned;
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    await this.#session.ping();
  }

  /** The session is shared: closing the store only stops this store's use of it. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /**
   * A page of an index partition clustered by (time, id): rows are read from the cursor on and
   * resolved to items; rows that resolve to nothing (left by an interrupted write) are skipped and
   * more are read, until limit + 1 items say whether another page follows.
   */
  async #pageIndex<T>(
    limit: number, key: string, cursor: IndexCursor | null, queries: { readonly first: string; readonly after: string },
    resolve: (ms: number, id: string) => Promise<T | null>,
  ): Promise<Page<T>> {
    const items: T[] = [];
    for (;;) {
      const wanted = limit + 1 - items.length;
      const rows = cursor
        ? (await this.#session.execute(queries.after, [key, long(cursor[0]), cursor[1], wanted], { idempotent: true })).rows
        : (await this.#session.execute(queries.first, [key, wanted], { idempotent: true })).rows;
      const resolved = await Promise.all(rows.map((row) => resolve(longOf(row.ms), row.id as string)));
      for (const item of resolved) if (item !== null) items.push(item);
      const last = rows.at(-1);
      if (items.length > limit || rows.length < wanted || !last) break;
      cursor = [longOf(last.ms), last.id as string];
    }
    return { items: items.slice(0, limit), hasMore: items.length > limit };
  }

  async #readAccount(accountId: string): Promise<Account | null> {
    const rows = await readAll(this.#session,
      `SELECT ${accountColumns} FROM ${this.#table('ledger_accounts')} WHERE id = ?`,
      [accountId]);
    return accountFromRows(rows)?.account ?? null;
  }

  async #writeIndex(command: TransferCommand): Promise<void> {
    const query = `INSERT INTO ${this.#table('ledger_account_transfers')} (account_id, requested_ms, transfer_id, merchant_id) VALUES (?, ?, ?, ?)`;
    await Promise.all([...new Set([command.fromAccountId, command.toAccountId])].map((accountId) =>
      this.#session.execute(query, [accountId, long(command.requestedMs), command.id, command.merchantId], { idempotent: true })));
  }

  get #idempotencyQuery(): string {
    return `SELECT merchant_id, key, request_hash, status, body, created_ms FROM ${this.#table('ledger_idempotency')} WHERE merchant_id = ? AND key = ?`;
  }

  #table(name: string): string {
    return this.#session.table(name);
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('ledger store is closed');
  }
}
