// What the payments API accepts, checked field by field into typed inputs. Every refusal is a 400
// `invalid_request` naming the parameter (`param`, as Stripe does), so a client can fix the one
// field at fault; unknown parameters are refused rather than ignored. Money becomes bigint here.
import { TallyError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { transferAmountMax, type Account, type TransferCommand } from '../core/payments/ledger.ts';

/** What a client chooses of a new account (the id, merchant, zero balance and time are the server's). */
export type AccountInput = Pick<Account, 'currency' | 'name' | 'allowOverdraft' | 'metadata'>;

/** What a client chooses of a transfer (the id, merchant and time are the server's). */
export type TransferInput = Omit<TransferCommand, 'id' | 'merchantId' | 'requestedMs'>;

export interface PageInput {
  readonly limit: number;
  readonly startingAfter: string | null;
}

/** Ids are made by this API: a string of another shape names nothing, without a store read. */
export const accountIdPattern = /^acct_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const transferIdPattern = /^tr_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const currencies: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));
/** Longer than any id this API makes: refused before it reaches a store. */
const idCharsMax = 64;
/** Printable ASCII, like Stripe's keys: what every HTTP stack carries unchanged. */
const idempotencyKeyPattern = /^[\x21-\x7e]+$/;

function invalid(param: string, message: string): TallyError {
  return new TallyError('invalid_request', `${param}: ${message}`, { param });
}

function objectOf(value: unknown, param: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(param, 'must be a JSON object');
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!allowed.includes(key)) throw invalid(key, `unknown parameter; this endpoint takes ${allowed.join(', ')}`);
  }
  return fields;
}

function currencyOf(value: unknown): string {
  if (typeof value !== 'string' || !currencies.has(value)) throw invalid('currency', 'must be an ISO 4217 code in upper case, such as "USD"');
  return value;
}

function optionalText(value: unknown, param: string, charsMax: number): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > charsMax) throw invalid(param, `must be a string of 1 to ${charsMax} characters`);
  return value;
}

function metadataOf(value: unknown): Readonly<Record<string, string>> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('metadata', 'must be an object of string values');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > limits.metadataKeysMax) throw invalid('metadata', `at most ${limits.metadataKeysMax} keys`);
  for (const [key, item] of entries) {
    if (key.length === 0 || key.length > limits.metadataKeyCharsMax) throw invalid('metadata', `keys must be 1 to ${limits.metadataKeyCharsMax} characters`);
    if (typeof item !== 'string' || item.length > limits.metadataValueCharsMax) {
      throw invalid(`metadata[${key}]`, `must be a string of at most ${limits.metadataValueCharsMax} characters`);
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function accountIdOf(value: unknown, param: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > idCharsMax) throw invalid(param, 'must be an account id (acct_…)');
  return value;
}

export function parseAccountBody(body: unknown): AccountInput {
  const fields = objectOf(body, 'body', ['currency', 'name', 'allow_overdraft', 'metadata']);
  const allowOverdraft = fields.allow_overdraft ?? false;
  if (typeof allowOverdraft !== 'boolean') throw invalid('allow_overdraft', 'must be true or false');
  return {
    currency: currencyOf(fields.currency),
    name: optionalText(fields.name, 'name', limits.accountNameCharsMax),
    allowOverdraft,
    metadata: metadataOf(fields.metadata),
  };
}

export function parseTransferBody(body: unknown): TransferInput {
  const fields = objectOf(body, 'body', ['from_account_id', 'to_account_id', 'amount', 'currency', 'description', 'metadata']);
  const fromAccountId = accountIdOf(fields.from_account_id, 'from_account_id');
  const toAccountId = accountIdOf(fields.to_account_id, 'to_account_id');
  if (fromAccountId === toAccountId) throw invalid('to_account_id', 'must differ from from_account_id');
  // JSON numbers past 2^53 − 1 arrive rounded: refusing them (not safe integers) keeps amounts exact.
  const amount = fields.amount;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 1) {
    throw invalid('amount', `must be an integer number of minor units from 1 to ${transferAmountMax}`);
  }
  return {
    fromAccountId, toAccountId, amount: BigInt(amount),
    currency: currencyOf(fields.currency),
    description: optionalText(fields.description, 'description', limits.transferDescriptionCharsMax),
    metadata: metadataOf(fields.metadata),
  };
}

/** A query string value: Fastify gives an array when a parameter repeats, which is a mistake here. */
function queryValue(query: Record<string, unknown>, param: string): string | undefined {
  const value = query[param];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(param, 'must be given once');
  return value;
}

function integerParam(raw: string, param: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw invalid(param, `must be an integer from ${min} to ${max}`);
  return Number(raw);
}

export function parsePageQuery(query: unknown, cursorPattern: RegExp): PageInput {
  const fields = objectOf(query ?? {}, 'query', ['limit', 'starting_after']);
  const limit = queryValue(fields, 'limit');
  const startingAfter = queryValue(fields, 'starting_after') ?? null;
  if (startingAfter !== null && !cursorPattern.test(startingAfter)) throw invalid('starting_after', 'must be the id of an item of this list');
  return { limit: limit === undefined ? limits.pageItemsDefault : integerParam(limit, 'limit', 1, limits.pageItemsMax), startingAfter };
}

/** `?wait_ms=`: how long POST /v1/transfers may wait for the outcome (0: answer at once). */
export function parseWaitQuery(query: unknown): number {
  const fields = objectOf(query ?? {}, 'query', ['wait_ms']);
  const raw = queryValue(fields, 'wait_ms');
  return raw === undefined ? 0 : integerParam(raw, 'wait_ms', 0, limits.transferWaitMsMax);
}

/** The Idempotency-Key header; null when absent and not required. */
export function idempotencyKeyOf(headers: Record<string, unknown>, required: boolean): string | null {
  const raw = headers['idempotency-key'];
  if (raw === undefined || raw === '') {
    if (required) throw new TallyError('idempotency_key_required', 'send an Idempotency-Key header: the same key makes a retry safe');
    return null;
  }
  if (typeof raw !== 'string' || raw.length > limits.idempotencyKeyCharsMax || !idempotencyKeyPattern.test(raw)) {
    throw invalid('Idempotency-Key', `must be 1 to ${limits.idempotencyKeyCharsMax} printable ASCII characters, sent once`);
  }
  return raw;
}
