// The payments API as a client sees it over real HTTP (fetch against a running `tally` child): the
// calls the end-to-end payments tests make, the assertions they share (a catalogued error and
// nothing else), and a wait for an eventually true condition. The embedded API test
// (test/payments/api.test.ts) has the same vocabulary over app.inject.
import assert from 'node:assert/strict';
import type { MerchantKeys } from './traffic.ts';

export type Json = Record<string, unknown>;

/** One answered request: status, headers and the body, parsed on demand. */
export interface ApiAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  json<T = Json>(): T;
}

export interface TransferOptions {
  /** The Idempotency-Key; a fresh one when absent. */
  readonly key?: string;
  /** ?wait_ms= (absent: no wait, 202 at once). */
  readonly waitMs?: number;
}

/** A single page of a list (`GET /v1/accounts`, `GET /v1/accounts/{id}/transfers`). */
export interface ListPage {
  readonly object: string;
  readonly data: Json[];
  readonly has_more: boolean;
}

/** No request of these tests may hang: a stuck server is a failure with a message, not a test time-out. */
const requestTimeoutMs = 30_000;
/** Longest wait_ms the API takes (limits.transferWaitMsMax). */
export const waitMsMax = 10_000;

let keyCounter = 0;

/** An Idempotency-Key no other request of this process used. */
export function newIdempotencyKey(): string {
  return `key-${process.pid}-${Date.now().toString(36)}-${++keyCounter}`;
}

/** The payments API of one `tally` process serving the query role. */
export class PaymentsApi {
  readonly url: string;

  constructor(url: string) {
    this.url = url;
  }

  /** A request with the merchant's secret key; `payload` is sent as JSON. */
  async call(merchant: MerchantKeys, method: string, path: string, payload?: unknown, headers: Readonly<Record<string, string>> = {}): Promise<ApiAnswer> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${merchant.secretKey}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    const body = await response.text();
    return { status: response.status, headers: response.headers, body, json: <T>() => JSON.parse(body) as T };
  }

  async createAccount(merchant: MerchantKeys, body: Json): Promise<Json> {
    const answer = await this.call(merchant, 'POST', '/v1/accounts', body);
    assert.equal(answer.status, 201, answer.body);
    return answer.json();
  }

  transfer(merchant: MerchantKeys, body: Json, options: TransferOptions = {}): Promise<ApiAnswer> {
    const query = options.waitMs === undefined ? '' : `?wait_ms=${options.waitMs}`;
    return this.call(merchant, 'POST', `/v1/transfers${query}`, body, { 'idempotency-key': options.key ?? newIdempotencyKey() });
  }

  async getTransfer(merchant: MerchantKeys, transferId: unknown): Promise<Json> {
    const answer = await this.call(merchant, 'GET', `/v1/transfers/${String(transferId)}`);
    assert.equal(answer.status, 200, answer.body);
    return answer.json();
  }

  async balanceOf(merchant: MerchantKeys, accountId: unknown): Promise<number> {
    const answer = await this.call(merchant, 'GET', `/v1/accounts/${String(accountId)}`);
    assert.equal(answer.status, 200, answer.body);
    return answer.json<{ balance: number }>().balance;
  }

  async page(merchant: MerchantKeys, path: string): Promise<ListPage> {
    const answer = await this.call(merchant, 'GET', path);
    assert.equal(answer.status, 200, answer.body);
    return answer.json<ListPage>();
  }

  /** Every item of a cursor-paginated list, following starting_after page by page. */
  async listAll(merchant: MerchantKeys, path: string, limit = 100): Promise<Json[]> {
    const items: Json[] = [];
    for (let after: unknown = null; ;) {
      const page = await this.page(merchant, `${path}?limit=${limit}${after === null ? '' : `&starting_after=${String(after)}`}`);
      items.push(...page.data);
      if (!page.has_more) return items;
      after = page.data[page.data.length - 1]!.id;
    }
  }

  /**
   * A funding account (overdraft allowed) and a customer account funded with `amount` through a
   * transfer waited for: money enters the ledger only this way.
   */
  async fundedAccount(merchant: MerchantKeys, amount: number, currency = 'USD'): Promise<{ funding: Json; customer: Json }> {
    const funding = await this.createAccount(merchant, { currency, name: 'funding', allow_overdraft: true });
    const customer = await this.createAccount(merchant, { currency, name: 'customer' });
    const funded = await this.transfer(merchant, { from_account_id: funding.id, to_account_id: customer.id, amount, currency }, { waitMs: waitMsMax });
    assert.equal(funded.status, 200, funded.body);
    assert.equal(funded.json().status, 'succeeded', funded.body);
    return { funding, customer };
  }

  /** POST /v1/query, computed (no cache): what the analytics processor has counted so far. */
  async query(merchant: MerchantKeys, body: Json): Promise<ApiAnswer> {
    return this.call(merchant, 'POST', '/v1/query', body, { 'cache-control': 'no-cache' });
  }
}

/** A catalogued error with this status and code, and nothing a client should not see (no stack trace, no driver message). */
export function assertError(answer: ApiAnswer, status: number, code: string): Json {
  assert.equal(answer.status, status, answer.body);
  const body = answer.json<{ error: Json }>();
  assert.equal(body.error.code, code, answer.body);
  assert.deepEqual(Object.keys(body), ['error'], answer.body);
  assert.doesNotMatch(answer.body, /\bat .+:\d+:\d+|stack|node_modules/i, 'no stack trace reaches the client');
  return body.error;
}

/** Reads until `done` holds, every `everyMs`; fails with the last value after `timeoutMs`. */
export async function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms; last seen ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
