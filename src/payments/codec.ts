// The payments job on the log, following the request/reply convention (docs/request-reply.md): the
// API publishes transfer commands on `payments.transfer.requested` (keyed by from_account_id), the
// ledger processor answers on `.succeeded` / `.failed`, each reply naming the command it answers by
// its position (`request`). JSON carries amounts as decimal strings (exact past 2^53 for any
// reader). The processor must not trust a record blindly (another producer, an old version, a
// corrupted record): a command that does not decode is answered with `invalid_format`, never retried.
import { transferAmountMax, type Transfer, type TransferCommand, type TransferFailureCode, type TransferStatus } from '../core/payments/ledger.ts';
import { failedReplyBody, parseCommandJson, requestReplyTopics, succeededReplyBody, type RequestRef } from '../runtime/request-reply.ts';

/** `payments.transfer.requested | succeeded | failed`, named by the convention's own function. */
export const transferTopics = requestReplyTopics('payments', 'transfer');
export const transferRequestedTopic = transferTopics.requested;
export const transferSucceededTopic = transferTopics.succeeded;
export const transferFailedTopic = transferTopics.failed;
export const ledgerGroup = 'ledger';
/** The ledger store's name for the command stream it settles (its offsets are kept per partition). */
export const ledgerStream = `${ledgerGroup}:${transferRequestedTopic}`;

/** The `.failed` code of a command whose transfer id is taken by another payload: refused, nothing stored. */
export const transferIdReusedCode = 'transfer_id_reused';

interface CommandJson {
  readonly id: string;
  readonly merchant_id: string;
  readonly from_account_id: string;
  readonly to_account_id: string;
  readonly amount: string;
  readonly currency: string;
  readonly description: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly requested_ms: number;
}

interface TransferJson extends CommandJson {
  readonly status: TransferStatus;
  readonly failure_code: TransferFailureCode | null;
  readonly settled_ms: number | null;
}

/** A reply as read back: the command it answers, and the transfer's outcome or why it was refused. */
export interface TransferReply {
  readonly request: RequestRef;
  /** The decided transfer; null when the command was refused before (invalid_format, transfer_id_reused). */
  readonly transfer: Transfer | null;
  /** Null on `.succeeded`; on `.failed` the failure code of the transfer, or the refusal. */
  readonly error: { readonly code: string; readonly message: string } | null;
}

function commandJson(command: TransferCommand): CommandJson {
  return {
    id: command.id, merchant_id: command.merchantId, from_account_id: command.fromAccountId, to_account_id: command.toAccountId,
    amount: command.amount.toString(), currency: command.currency, description: command.description, metadata: command.metadata,
    requested_ms: command.requestedMs,
  };
}

function transferJson(transfer: Transfer): TransferJson {
  return { ...commandJson(transfer), status: transfer.status, failure_code: transfer.failureCode, settled_ms: transfer.settledMs };
}

export function encodeTransferCommand(command: TransferCommand): string {
  return JSON.stringify(commandJson(command));
}

const failureMessages: Readonly<Record<TransferFailureCode, string>> = {
  insufficient_funds: 'the debited account did not hold the amount when the transfer was applied',
  account_not_found: 'an account of the transfer does not exist for this merchant',
  currency_mismatch: 'the transfer and both accounts must be in one currency',
  same_account: 'a transfer needs two different accounts',
  balance_overflow: 'a balance would pass the 64-bit limit',
};

/**
 * A decided transfer's reply: `.succeeded` `{ request, result: { transfer } }`, or `.failed`
 * `{ request, error: { code: failure_code, message }, transfer }` — the convention's bodies
 * (request-reply.ts), the failed one with the decided transfer beside the error.
 */
export function encodeTransferReply(request: RequestRef, transfer: Transfer): string {
  if (transfer.status === 'succeeded') return JSON.stringify(succeededReplyBody(request, { transfer: transferJson(transfer) }));
  if (transfer.status !== 'failed' || transfer.failureCode === null) throw new Error(`transfer ${transfer.id} is not decided: it has no reply yet`);
  return JSON.stringify({ ...failedReplyBody(request, transfer.failureCode, failureMessages[transfer.failureCode]), transfer: transferJson(transfer) });
}

/** The `.failed` reply to a command that reused a known transfer id with another payload: `{ request, error }`. */
export function encodeReusedIdReply(request: RequestRef, command: TransferCommand): string {
  const message = `transfer ${command.id} already exists with another payload; this command was not applied`;
  return JSON.stringify(failedReplyBody(request, transferIdReusedCode, message));
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const isNonEmptyString = (value: unknown): value is string => typeof value === 'string' && value !== '';
/** A positive integer without sign or leading zeros: one spelling per amount. */
const amountPattern = /^[1-9][0-9]*$/;
const currencyPattern = /^[A-Z]{3}$/;

/** A reply's JSON object, or why it is none. */
function parseObject(value: string): Json | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return 'record is not JSON';
  }
  return isObject(parsed) ? parsed : 'record is not a JSON object';
}

/**
 * The command, or a message saying why the record is not one (the invalid_format reply's message;
 * a record that is not JSON gets the same message as from any responder).
 */
export function decodeTransferCommand(value: string): TransferCommand | string {
  const parsed = parseCommandJson(value);
  if (!parsed.ok) return parsed.message;
  return isObject(parsed.json) ? decodeCommandFields(parsed.json) : 'the command is not a JSON object';
}

function decodeCommandFields(json: Json): TransferCommand | string {
  for (const field of ['id', 'merchant_id', 'from_account_id', 'to_account_id'] as const) {
    if (!isNonEmptyString(json[field])) return `${field} must be a non-empty string`;
  }
  const amount = json.amount;
  if (typeof amount !== 'string' || !amountPattern.test(amount) || amount.length > 16 || BigInt(amount) > transferAmountMax) {
    return `amount must be a decimal string of an integer in [1, ${transferAmountMax}]`;
  }
  if (typeof json.currency !== 'string' || !currencyPattern.test(json.currency)) return 'currency must be an ISO 4217 code';
  if (json.description !== null && typeof json.description !== 'string') return 'description must be a string or null';
  const metadata = json.metadata;
  if (!isObject(metadata) || !Object.values(metadata).every((entry) => typeof entry === 'string')) return 'metadata must be an object of strings';
  if (!Number.isSafeInteger(json.requested_ms) || (json.requested_ms as number) < 0) return 'requested_ms must be a non-negative integer';
  return {
    id: json.id as string, merchantId: json.merchant_id as string, fromAccountId: json.from_account_id as string,
    toAccountId: json.to_account_id as string, amount: BigInt(amount), currency: json.currency, description: json.description,
    metadata: { ...(metadata as Record<string, string>) }, requestedMs: json.requested_ms as number,
  };
}

const statuses: readonly string[] = ['pending', 'succeeded', 'failed'] satisfies TransferStatus[];

/** Reads back a reply on `.succeeded` or `.failed` (for whoever listens), or says why it is not one. */
export function decodeTransferReply(value: string): TransferReply | string {
  const parsed = parseObject(value);
  if (typeof parsed === 'string') return parsed;
  const { request, error, result } = parsed;
  if (!isObject(request) || !Number.isSafeInteger(request.partition) || !Number.isSafeInteger(request.offset) || typeof request.key !== 'string') {
    return 'request must name a partition, an offset and a key';
  }
  const ref: RequestRef = { partition: request.partition as number, offset: request.offset as number, key: request.key };
  if (error !== undefined && (!isObject(error) || typeof error.code !== 'string' || typeof error.message !== 'string')) return 'error needs a code and a message';
  const json = isObject(result) ? result.transfer : parsed.transfer;
  let transfer: Transfer | null = null;
  if (json !== undefined) {
    if (!isObject(json)) return 'transfer must be an object';
    const decoded = decodeTransferFields(json);
    if (typeof decoded === 'string') return decoded;
    transfer = decoded;
  }
  if (error === undefined && transfer === null) return 'a reply carries a transfer or an error';
  return { request: ref, transfer, error: error === undefined ? null : { code: error.code as string, message: error.message as string } };
}

function decodeTransferFields(json: Json): Transfer | string {
  const command = decodeCommandFields(json);
  if (typeof command === 'string') return command;
  if (typeof json.status !== 'string' || !statuses.includes(json.status)) return 'status must be pending, succeeded or failed';
  if (json.failure_code !== null && typeof json.failure_code !== 'string') return 'failure_code must be a string or null';
  if (json.settled_ms !== null && !Number.isSafeInteger(json.settled_ms)) return 'settled_ms must be an integer or null';
  return {
    ...command, status: json.status as TransferStatus, failureCode: json.failure_code as TransferFailureCode | null,
    settledMs: json.settled_ms as number | null,
  };
}
