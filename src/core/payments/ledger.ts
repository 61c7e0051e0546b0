// The ledger's domain: accounts, transfers, double-entry entries, and the one pure function that
// decides a transfer's outcome from the state it finds. Stores load that state and write what the
// decision says, atomically with the log offset (src/core/ports/ledger-store.ts); nothing here does
// I/O. Money is bigint minor units of an ISO 4217 currency; JSON carries it as integers ≤ 2^53 − 1.

export interface Account {
  readonly id: string;
  readonly merchantId: string;
  /** ISO 4217, upper case. */
  readonly currency: string;
  readonly name: string | null;
  /** A funding account: may go below zero. Money enters the ledger through such accounts. */
  readonly allowOverdraft: boolean;
  readonly metadata: Readonly<Record<string, string>>;
  /** Sum of credits minus sum of debits; moves only through transfers. */
  readonly balance: bigint;
  readonly createdMs: number;
}

export type TransferStatus = 'pending' | 'succeeded' | 'failed';

export type TransferFailureCode =
  | 'insufficient_funds'
  | 'account_not_found'
  | 'currency_mismatch'
  | 'same_account'
  /** The debit or the credit would take a balance past 64 bits (what SQLite and Cassandra store). */
  | 'balance_overflow';

/** What the API publishes on `<prefix>.transfer.requested`, keyed by fromAccountId. */
export interface TransferCommand {
  readonly id: string;
  readonly merchantId: string;
  readonly fromAccountId: string;
  readonly toAccountId: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly description: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly requestedMs: number;
}

export interface Transfer extends TransferCommand {
  readonly status: TransferStatus;
  readonly failureCode: TransferFailureCode | null;
  /** When the ledger decided it; null while pending. */
  readonly settledMs: number | null;
}

/** One side of a succeeded transfer: a debit (negative amount) or a credit (positive). */
export interface Entry {
  readonly transferId: string;
  readonly accountId: string;
  readonly merchantId: string;
  /** −amount on the debited account, +amount on the credited one. */
  readonly amount: bigint;
  /** The account's balance right after this entry (so replays can be checked entry by entry). */
  readonly balanceAfter: bigint;
  readonly settledMs: number;
}

/** The largest amount a transfer may move: JSON integers stay exact up to here. */
export const transferAmountMax = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Balances are signed 64-bit integers in every store. 1,024 maximal transfers reach the bound, so
 * it is a decision (the transfer fails), never a write that throws and blocks the partition.
 */
export const balanceMax = 2n ** 63n - 1n;
export const balanceMin = -(2n ** 63n);

/** The state a batch of commands is decided against, loaded by the store before deciding. */
export interface LedgerState {
  /** Every account a command of the batch names (absent: not found). Balances as stored now. */
  readonly accounts: ReadonlyMap<string, Account>;
  /** Transfers already decided (or pending) with an id the batch carries. */
  readonly transfers: ReadonlyMap<string, Transfer>;
}

export type Decision =
  /** New and applied: the two entries move the balances. */
  | { readonly kind: 'succeeded'; readonly transfer: Transfer; readonly entries: readonly [Entry, Entry] }
  /** New and refused: recorded as failed, no entries. */
  | { readonly kind: 'failed'; readonly transfer: Transfer }
  /** Already decided with the same payload (redelivery, resubmission): the stored outcome stands. */
  | { readonly kind: 'replayed'; readonly transfer: Transfer }
  /** Same id, different payload: refused, the stored transfer is untouched. */
  | { readonly kind: 'conflict'; readonly existing: Transfer; readonly command: TransferCommand };

/** True when two commands are the same request (everything but the time it was made). */
export function samePayload(left: TransferCommand, right: TransferCommand): boolean {
  return left.id === right.id && left.merchantId === right.merchantId && left.fromAccountId === right.fromAccountId &&
    left.toAccountId === right.toAccountId && left.amount === right.amount && left.currency === right.currency &&
    left.description === right.description && sameMetadata(left.metadata, right.metadata);
}

function sameMetadata(left: Readonly<Record<string, string>>, right: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(left);
  return keys.length === Object.keys(right).length && keys.every((key) => left[key] === right[key]);
}

/**
 * Decides each command in order against the state, carrying balance changes from one command to the
 * next (commands of one batch may debit the same account). Funds are checked here, where the write
 * happens; the API's check was only a fast pre-check. A failed transfer stays failed on redelivery
 * even if funds arrived since; a known id with another payload is a conflict, never a replay.
 */
export function decideTransfers(commands: readonly TransferCommand[], state: LedgerState, settledMs: number): Decision[] {
  const balances = new Map<string, bigint>();
  const decided = new Map<string, Transfer>(state.transfers);
  const balanceOf = (account: Account): bigint => balances.get(account.id) ?? account.balance;
  const decisions: Decision[] = [];
  for (const command of commands) {
    const known = decided.get(command.id);
    if (known && known.status !== 'pending') {
      decisions.push(samePayload(known, command) ? { kind: 'replayed', transfer: known } : { kind: 'conflict', existing: known, command });
      continue;
    }
    if (known && !samePayload(known, command)) {
      decisions.push({ kind: 'conflict', existing: known, command });
      continue;
    }
    const from = state.accounts.get(command.fromAccountId);
    const to = state.accounts.get(command.toAccountId);
    const failure = failureOf(command, from, to, from ? balanceOf(from) : 0n, to ? balanceOf(to) : 0n);
    if (failure !== null || !from || !to) {
      const transfer: Transfer = { ...command, status: 'failed', failureCode: failure ?? 'account_not_found', settledMs };
      decided.set(command.id, transfer);
      decisions.push({ kind: 'failed', transfer });
      continue;
    }
    const fromAfter = balanceOf(from) - command.amount;
    const toAfter = balanceOf(to) + command.amount;
    balances.set(from.id, fromAfter);
    balances.set(to.id, toAfter);
    const transfer: Transfer = { ...command, status: 'succeeded', failureCode: null, settledMs };
    decided.set(command.id, transfer);
    decisions.push({
      kind: 'succeeded',
      transfer,
      entries: [
        { transferId: command.id, accountId: from.id, merchantId: command.merchantId, amount: -command.amount, balanceAfter: fromAfter, settledMs },
        { transferId: command.id, accountId: to.id, merchantId: command.merchantId, amount: command.amount, balanceAfter: toAfter, settledMs },
      ],
    });
  }
  return decisions;
}

function failureOf(
  command: TransferCommand, from: Account | undefined, to: Account | undefined, fromBalance: bigint, toBalance: bigint,
): TransferFailureCode | null {
  // Accounts of another merchant are as good as absent: tenants never see each other.
  if (!from || !to || from.merchantId !== command.merchantId || to.merchantId !== command.merchantId) return 'account_not_found';
  if (from.id === to.id) return 'same_account';
  if (from.currency !== command.currency || to.currency !== command.currency) return 'currency_mismatch';
  if (!from.allowOverdraft && fromBalance < command.amount) return 'insufficient_funds';
  if (fromBalance - command.amount < balanceMin || toBalance + command.amount > balanceMax) return 'balance_overflow';
  return null;
}
