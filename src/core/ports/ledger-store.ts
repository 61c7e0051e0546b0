// LedgerStore port: accounts, transfers, entries and idempotency keys of the payments job. The
// ledger processor settles a contiguous offset range of one log partition in one atomic step,
// like RollupStore.apply: redelivery and a zombie member (one that lost its partition) can never
// apply a transfer twice. All reads and writes are scoped by merchant: tenants never see each other.
import type { Account, Entry, Transfer, TransferCommand, Decision } from '../payments/ledger.ts';

export interface PageRequest {
  readonly merchantId: string;
  readonly limit: number;
  /**
   * Id of the last item of the previous page (cursor pagination, like Stripe's starting_after). An
   * id that is not an item of this very list rejects with TallyError `invalid_request`.
   */
  readonly startingAfter?: string | null;
}

export interface Page<T> {
  readonly items: T[];
  readonly hasMore: boolean;
}

/** A stored answer to an idempotent request: replayed for the same key and the same body. */
export interface IdempotencyRecord {
  readonly merchantId: string;
  readonly key: string;
  /** SHA-256 of the canonical request (method, path, body): another body with the key is refused. */
  readonly requestHash: string;
  readonly status: number;
  readonly body: string;
  readonly createdMs: number;
}

/** A log partition of a consumer group's stream: where commands are settled in order. */
export interface LedgerSource {
  /** Consumer group and topic, e.g. 'ledger:payments.transfer.requested'. */
  readonly stream: string;
  readonly partition: number;
}

export interface SettleBatch {
  /** Consumer group and topic, e.g. 'ledger:payments.transfer.requested'. */
  readonly stream: string;
  readonly partition: number;
  /** The offset range [fromOffset, throughOffset] this batch covers. */
  readonly fromOffset: number;
  readonly throughOffset: number;
  /** Valid commands of the range, in offset order (malformed records were already answered). */
  readonly commands: readonly TransferCommand[];
  readonly settledMs: number;
}

export interface LedgerStore {
  /**
   * Creates the account; rejects with TallyError `account_exists` if the id is taken (by any
   * merchant). A new account's balance must be 0: money moves only through transfers.
   */
  createAccount(account: Account): Promise<void>;
  getAccount(merchantId: string, accountId: string): Promise<Account | null>;
  /** Oldest first (by creation, then id). */
  listAccounts(request: PageRequest): Promise<Page<Account>>;

  /**
   * Records a transfer the API accepted, as pending, unless the id is known (never downgrades).
   * `appendedTo` says which stream and log partition will settle it (the API appended it there):
   * a store whose settle must claim each id (Cassandra) claims it here for that partition at once.
   */
  recordPending(command: TransferCommand, appendedTo?: LedgerSource): Promise<void>;
  getTransfer(merchantId: string, transferId: string): Promise<Transfer | null>;
  /** Transfers that debit or credit the account (pending, failed and succeeded), newest first by requestedMs, then id. */
  listAccountTransfers(request: PageRequest & { readonly accountId: string }): Promise<Page<Transfer>>;
  /** The entries of one account in the order they were applied (for audits and replays). */
  listEntries(merchantId: string, accountId: string): Promise<Entry[]>;

  /** Last offset of the partition whose commands are settled; -1 when none. */
  settledOffset(stream: string, partition: number): Promise<number>;
  /**
   * Loads the state the commands need, decides them (decideTransfers), writes transfers, entries and
   * balances and sets the partition's settled offset to throughOffset — all or nothing. Rejects with
   * LedgerConflictError when the stored offset is not fromOffset − 1 (another member settled these).
   * Returns one decision per command, in order.
   */
  settle(batch: SettleBatch): Promise<Decision[]>;

  getIdempotency(merchantId: string, key: string): Promise<IdempotencyRecord | null>;
  /** Stores the record unless one exists for (merchant, key); returns the stored one either way. */
  putIdempotency(record: IdempotencyRecord): Promise<IdempotencyRecord>;
  /** Drops records created before the cutoff (kept at least 24 hours). Returns how many. */
  pruneIdempotency(olderThanMs: number): Promise<number>;

  ping(): Promise<void>;
  close(): Promise<void>;
}

/** settle() found the partition moved on: reload the settled offset and retry, never force. */
export class LedgerConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerConflictError';
  }
}
