// The JSON shapes of the payments API (snake_case, an `object` tag, ISO times, as Stripe does) and
// their way back: a claimed idempotency key stores a view, from which a retry rebuilds the command.
// Amounts are JSON integers; a balance can pass 2^53 − 1, so it is written as exact digits.
import type { Account, Transfer, TransferCommand, TransferFailureCode, TransferStatus } from '../core/payments/ledger.ts';

export interface AccountView {
  readonly id: string;
  readonly object: 'account';
  readonly currency: string;
  /** A number, or raw JSON digits past 2^53 − 1. */
  readonly balance: unknown;
  readonly allow_overdraft: boolean;
  readonly name: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly created_at: string;
}

export interface TransferView {
  readonly id: string;
  readonly object: 'transfer';
  readonly status: TransferStatus;
  readonly amount: number;
  readonly currency: string;
  readonly from_account_id: string;
  readonly to_account_id: string;
  readonly description: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly failure_code: TransferFailureCode | null;
  readonly created_at: string;
  readonly settled_at: string | null;
}

const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** A JSON integer with every digit: a plain number while exact, else raw JSON digits. */
function jsonInteger(value: bigint): unknown {
  const asNumber = Number(value);
  return Number.isSafeInteger(asNumber) ? asNumber : rawJson(value.toString());
}

const isoTime = (ms: number): string => new Date(ms).toISOString();

export function accountView(account: Account): AccountView {
  return {
    id: account.id, object: 'account', currency: account.currency, balance: jsonInteger(account.balance),
    allow_overdraft: account.allowOverdraft, name: account.name, metadata: account.metadata, created_at: isoTime(account.createdMs),
  };
}

export function transferView(transfer: Transfer): TransferView {
  return {
    id: transfer.id, object: 'transfer', status: transfer.status, amount: Number(transfer.amount), currency: transfer.currency,
    from_account_id: transfer.fromAccountId, to_account_id: transfer.toAccountId, description: transfer.description,
    metadata: transfer.metadata, failure_code: transfer.failureCode, created_at: isoTime(transfer.requestedMs),
    settled_at: transfer.settledMs === null ? null : isoTime(transfer.settledMs),
  };
}

export function pendingTransfer(command: TransferCommand): Transfer {
  return { ...command, status: 'pending', failureCode: null, settledMs: null };
}

/** The command a transfer view describes (the view carries every field of the payload). */
export function commandFromView(merchantId: string, view: TransferView): TransferCommand {
  return {
    id: view.id, merchantId, fromAccountId: view.from_account_id, toAccountId: view.to_account_id, amount: BigInt(view.amount),
    currency: view.currency, description: view.description, metadata: view.metadata, requestedMs: Date.parse(view.created_at),
  };
}

/** The new account an account view describes (views of new accounts have a zero balance). */
export function accountFromView(merchantId: string, view: AccountView): Account {
  return {
    id: view.id, merchantId, currency: view.currency, name: view.name, allowOverdraft: view.allow_overdraft,
    metadata: view.metadata, balance: 0n, createdMs: Date.parse(view.created_at),
  };
}
