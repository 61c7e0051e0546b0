// Input rules every LedgerStore adapter enforces the same way. What they reject is a bug in the
// caller (the API and the codec validate first), so they throw before anything changes; a wrong
// pagination cursor is the client's mistake and gets a catalogued error.
import { TallyError } from '../errors.ts';
import { transferAmountMax, type Account, type TransferCommand } from '../payments/ledger.ts';
import type { PageRequest, SettleBatch } from './ledger-store.ts';

const currencyPattern = /^[A-Z]{3}$/;

function assertId(value: unknown, what: string): void {
  if (typeof value !== 'string' || value === '') throw new RangeError(`${what} must be a non-empty string`);
}

function assertMetadata(metadata: Readonly<Record<string, string>>, what: string): void {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw new RangeError(`${what} metadata must be an object`);
  for (const value of Object.values(metadata)) {
    if (typeof value !== 'string') throw new RangeError(`${what} metadata values must be strings`);
  }
}

/** A new account starts at zero: balances move only through transfers (the sum per currency is constant). */
export function assertNewAccount(account: Account): void {
  assertId(account.id, 'account id');
  assertId(account.merchantId, 'account merchant id');
  if (!currencyPattern.test(account.currency)) throw new RangeError(`account currency must be ISO 4217, got ${account.currency}`);
  if (account.balance !== 0n) throw new RangeError('a new account starts with a zero balance: money moves only through transfers');
  if (typeof account.allowOverdraft !== 'boolean') throw new RangeError('allowOverdraft must be a boolean');
  if (!Number.isSafeInteger(account.createdMs)) throw new RangeError(`account createdMs must be an integer, got ${account.createdMs}`);
  assertMetadata(account.metadata, 'account');
}

export function assertCommand(command: TransferCommand): void {
  assertId(command.id, 'transfer id');
  assertId(command.merchantId, 'transfer merchant id');
  assertId(command.fromAccountId, 'from account id');
  assertId(command.toAccountId, 'to account id');
  if (typeof command.amount !== 'bigint' || command.amount < 1n || command.amount > transferAmountMax) {
    throw new RangeError(`transfer amount must be a bigint in [1, ${transferAmountMax}], got ${String(command.amount)}`);
  }
  if (!currencyPattern.test(command.currency)) throw new RangeError(`transfer currency must be ISO 4217, got ${command.currency}`);
  if (!Number.isSafeInteger(command.requestedMs)) throw new RangeError(`transfer requestedMs must be an integer, got ${command.requestedMs}`);
  assertMetadata(command.metadata, 'transfer');
}

export function assertSettleBatch(batch: SettleBatch): void {
  if (!Number.isSafeInteger(batch.partition) || batch.partition < 0) throw new RangeError(`settle needs a partition number, got ${batch.partition}`);
  if (!Number.isSafeInteger(batch.fromOffset) || !Number.isSafeInteger(batch.throughOffset) || batch.fromOffset < 0 || batch.throughOffset < batch.fromOffset) {
    throw new RangeError(`settle needs 0 <= fromOffset <= throughOffset, got [${batch.fromOffset}, ${batch.throughOffset}]`);
  }
  if (batch.commands.length > batch.throughOffset - batch.fromOffset + 1) {
    throw new RangeError(`${batch.commands.length} commands cannot come from ${batch.throughOffset - batch.fromOffset + 1} offsets`);
  }
  if (!Number.isSafeInteger(batch.settledMs)) throw new RangeError(`settledMs must be an integer, got ${batch.settledMs}`);
  for (const command of batch.commands) assertCommand(command);
}

export function assertPageRequest(request: PageRequest): void {
  assertId(request.merchantId, 'merchant id');
  if (!Number.isSafeInteger(request.limit) || request.limit < 1) throw new RangeError(`page limit must be a positive integer, got ${request.limit}`);
}

/** `starting_after` must name an item of the very list being paged: anything else is the client's mistake. */
export function unknownCursor(startingAfter: string): TallyError {
  return new TallyError('invalid_request', `starting_after: no such item in this list: ${startingAfter}`);
}

/** SQLite's BINARY collation (UTF-8 byte order), so the memory adapter pages in the same order. */
export function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
