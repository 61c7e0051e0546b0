// In-memory LedgerStore for tests and the memory profile: the same rules as the SQLite adapter.
// settle() decides the whole batch with the pure domain function first and only then writes, so
// a batch is all or nothing without a transaction (nothing after the decision can throw).
import { TallyError } from '../../core/errors.ts';
import { decideTransfers, type Account, type Decision, type Entry, type Transfer, type TransferCommand } from '../../core/payments/ledger.ts';
import {
  assertCommand, assertNewAccount, assertPageRequest, assertSettleBatch, compareIds, unknownCursor,
} from '../../core/ports/ledger-store-rules.ts';
import { LedgerConflictError } from '../../core/ports/ledger-store.ts';
import type { IdempotencyRecord, LedgerStore, Page, PageRequest, SettleBatch } from '../../core/ports/ledger-store.ts';

export class MemoryLedgerStore implements LedgerStore {
  readonly #accounts = new Map<string, Account>();
  readonly #transfers = new Map<string, Transfer>();
  /** Entries per account, in the order they were applied. */
  readonly #entries = new Map<string, Entry[]>();
  /** Settled offset per `stream\0partition`. */
  readonly #offsets = new Map<string, number>();
  readonly #idempotency = new Map<string, IdempotencyRecord>();
  #closed = false;

  static create(): MemoryLedgerStore {
    return new MemoryLedgerStore();
  }

  async createAccount(account: Account): Promise<void> {
    this.#assertOpen();
    assertNewAccount(account);
    if (this.#accounts.has(account.id)) throw new TallyError('account_exists', `account ${account.id} already exists`);
    this.#accounts.set(account.id, copyAccount(account));
  }

  async getAccount(merchantId: string, accountId: string): Promise<Account | null> {
    this.#assertOpen();
    const account = this.#accounts.get(accountId);
    return account && account.merchantId === merchantId ? copyAccount(account) : null;
  }

  async listAccounts(request: PageRequest): Promise<Page<Account>> {
    this.#assertOpen();
    assertPageRequest(request);
    const mine = [...this.#accounts.values()].filter((account) => account.merchantId === request.merchantId)
      .sort((a, b) => a.createdMs - b.createdMs || compareIds(a.id, b.id));
    return page(mine, request, (account) => account.id, copyAccount);
  }

  async recordPending(command: TransferCommand): Promise<void> {
    this.#assertOpen();
    assertCommand(command);
    if (this.#transfers.has(command.id)) return;
    this.#transfers.set(command.id, copyTransfer({ ...command, status: 'pending', failureCode: null, settledMs: null }));
  }

  async getTransfer(merchantId: string, transferId: string): Promise<Transfer | null> {
    this.#assertOpen();
    const transfer = this.#transfers.get(transferId);
    return transfer && transfer.merchantId === merchantId ? copyTransfer(transfer) : null;
  }

  async listAccountTransfers(request: PageRequest & { readonly accountId: string }): Promise<Page<Transfer>> {
    this.#assertOpen();
    assertPageRequest(request);
    const naming = [...this.#transfers.values()]
      .filter((transfer) => transfer.merchantId === request.merchantId &&
        (transfer.fromAccountId === request.accountId || transfer.toAccountId === request.accountId))
      .sort((a, b) => b.requestedMs - a.requestedMs || compareIds(b.id, a.id));
    return page(naming, request, (transfer) => transfer.id, copyTransfer);
  }

  async listEntries(merchantId: string, accountId: string): Promise<Entry[]> {
    this.#assertOpen();
    return (this.#entries.get(accountId) ?? []).filter((entry) => entry.merchantId === merchantId).map((entry) => ({ ...entry }));
  }

  async settledOffset(stream: string, partition: number): Promise<number> {
    this.#assertOpen();
    return this.#offsets.get(offsetKey(stream, partition)) ?? -1;
  }

  async settle(batch: SettleBatch): Promise<Decision[]> {
    this.#assertOpen();
    assertSettleBatch(batch);
    const key = offsetKey(batch.stream, batch.partition);
    const stored = this.#offsets.get(key) ?? -1;
    if (stored !== batch.fromOffset - 1) {
      throw new LedgerConflictError(`${batch.stream}/${batch.partition}: settled offset is ${stored}, batch starts at ${batch.fromOffset}`);
    }
    const accounts = new Map<string, Account>();
    const transfers = new Map<string, Transfer>();
    for (const command of batch.commands) {
      for (const id of [command.fromAccountId, command.toAccountId]) {
        const account = this.#accounts.get(id);
        if (account) accounts.set(id, account);
      }
      const transfer = this.#transfers.get(command.id);
      // A copy: a replayed decision hands it to the caller.
      if (transfer) transfers.set(command.id, copyTransfer(transfer));
    }
    const decisions = decideTransfers(batch.commands, { accounts, transfers }, batch.settledMs);
    for (const decision of decisions) {
      if (decision.kind === 'failed') this.#transfers.set(decision.transfer.id, copyTransfer(decision.transfer));
      if (decision.kind !== 'succeeded') continue;
      this.#transfers.set(decision.transfer.id, copyTransfer(decision.transfer));
      for (const entry of decision.entries) {
        const list = this.#entries.get(entry.accountId) ?? [];
        list.push({ ...entry });
        this.#entries.set(entry.accountId, list);
        this.#accounts.set(entry.accountId, { ...this.#accounts.get(entry.accountId)!, balance: entry.balanceAfter });
      }
    }
    this.#offsets.set(key, batch.throughOffset);
    return decisions;
  }

  async getIdempotency(merchantId: string, key: string): Promise<IdempotencyRecord | null> {
    this.#assertOpen();
    const record = this.#idempotency.get(idempotencyKey(merchantId, key));
    return record ? { ...record } : null;
  }

  async putIdempotency(record: IdempotencyRecord): Promise<IdempotencyRecord> {
    this.#assertOpen();
    const key = idempotencyKey(record.merchantId, record.key);
    const stored = this.#idempotency.get(key);
    if (stored) return { ...stored };
    this.#idempotency.set(key, { ...record });
    return { ...record };
  }

  async pruneIdempotency(olderThanMs: number): Promise<number> {
    this.#assertOpen();
    let pruned = 0;
    for (const [key, record] of this.#idempotency) {
      if (record.createdMs < olderThanMs) {
        this.#idempotency.delete(key);
        pruned++;
      }
    }
    return pruned;
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('MemoryLedgerStore is closed');
  }
}

/** Copies of the items after the cursor (which must be one of them), up to the limit, and whether more follow. */
function page<T>(items: readonly T[], request: PageRequest, idOf: (item: T) => string, copy: (item: T) => T): Page<T> {
  let start = 0;
  if (request.startingAfter) {
    const index = items.findIndex((item) => idOf(item) === request.startingAfter);
    if (index < 0) throw unknownCursor(request.startingAfter);
    start = index + 1;
  }
  return { items: items.slice(start, start + request.limit).map(copy), hasMore: start + request.limit < items.length };
}

function offsetKey(stream: string, partition: number): string {
  return `${stream}\u0000${partition}`;
}

function idempotencyKey(merchantId: string, key: string): string {
  return `${merchantId}\u0000${key}`;
}

function copyAccount(account: Account): Account {
  return { ...account, metadata: { ...account.metadata } };
}

function copyTransfer(transfer: Transfer): Transfer {
  return { ...transfer, metadata: { ...transfer.metadata } };
}
