// Conversions between the Cassandra ledger's rows and the domain's values. Amounts are bigint
// columns (≤ 2^53 − 1, the API's bound); nets and balances are varint: a sum never wraps in storage.
import cassandra from 'cassandra-driver';
import type { Account, Transfer, TransferCommand, TransferFailureCode, TransferStatus } from '../../../core/payments/ledger.ts';
import type { IdempotencyRecord } from '../../../core/ports/ledger-store.ts';
import { bigintOf, longOf, optionalLongOf } from '../cql.ts';
import type { Row } from '../session.ts';

const { Integer, Long } = cassandra.types;

export function varint(value: bigint): cassandra.types.Integer {
  return Integer.fromString(value.toString());
}

export function long(value: bigint | number): cassandra.types.Long {
  return Long.fromString(value.toString());
}

/** A bigint column read back exactly (the driver's Long), never through a float. */
export function exactLongOf(value: unknown): bigint {
  return BigInt((value as cassandra.types.Long).toString());
}

/** Per source: the net of its entries on the account and the position of the last of them. */
export interface SourceNet {
  readonly net: bigint;
  readonly lastPosition: number;
}

export interface AccountState {
  readonly account: Account;
  readonly nets: ReadonlyMap<string, SourceNet>;
}

/** What accountFromRows reads of an account partition. */
export const accountColumns = 'id, source, merchant_id, currency, name, allow_overdraft, metadata, created_ms, net, last_position';

/** The rows of one account partition (static attributes repeated on each source row), or null. */
export function accountFromRows(rows: readonly Row[]): AccountState | null {
  const first = rows[0];
  if (!first || first.merchant_id === null || first.merchant_id === undefined) return null;
  const nets = new Map<string, SourceNet>();
  let balance = 0n;
  for (const row of rows) {
    if (row.source === null || row.net === null) continue;
    const net = bigintOf(row.net);
    nets.set(row.source as string, { net, lastPosition: longOf(row.last_position) });
    balance += net;
  }
  const account: Account = {
    id: first.id as string,
    merchantId: first.merchant_id as string,
    currency: first.currency as string,
    name: (first.name as string | null) ?? null,
    allowOverdraft: first.allow_overdraft === true,
    metadata: JSON.parse(first.metadata as string) as Record<string, string>,
    balance,
    createdMs: longOf(first.created_ms),
  };
  return { account, nets };
}

/** The columns that hold a transfer's payload, in the order commandValues gives them. */
export const payloadColumns = 'merchant_id, from_account_id, to_account_id, amount, currency, description, metadata, requested_ms';

export function commandValues(command: TransferCommand): unknown[] {
  return [
    command.merchantId, command.fromAccountId, command.toAccountId, long(command.amount), command.currency,
    command.description, JSON.stringify(command.metadata), long(command.requestedMs),
  ];
}

/** What transferFromRow reads of a ledger_transfers row. */
export const transferColumns = `id, ${payloadColumns}, claim_source, status, failure_code, settled_ms`;

export interface TransferRow {
  readonly transfer: Transfer;
  /** The log partition deciding it (null: only the API's pending record holds the id so far). */
  readonly claimSource: string | null;
}

/** A ledger_transfers row: pending until a status is set. */
export function transferFromRow(row: Row): TransferRow {
  const status = (row.status as TransferStatus | null) ?? 'pending';
  return {
    transfer: {
      id: row.id as string,
      merchantId: row.merchant_id as string,
      fromAccountId: row.from_account_id as string,
      toAccountId: row.to_account_id as string,
      amount: exactLongOf(row.amount),
      currency: row.currency as string,
      description: (row.description as string | null) ?? null,
      metadata: JSON.parse(row.metadata as string) as Record<string, string>,
      requestedMs: longOf(row.requested_ms),
      status,
      failureCode: (row.failure_code as TransferFailureCode | null) ?? null,
      settledMs: optionalLongOf(row.settled_ms),
    },
    claimSource: (row.claim_source as string | null) ?? null,
  };
}

export function idempotencyFromRow(row: Row): IdempotencyRecord {
  return {
    merchantId: row.merchant_id as string,
    key: row.key as string,
    requestHash: row.request_hash as string,
    status: row.status as number,
    body: row.body as string,
    createdMs: longOf(row.created_ms),
  };
}
