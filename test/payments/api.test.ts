// The payments API on the embedded deployment, in process: accounts (create, read, pages, tenant
// isolation), transfers (pre-checks, the decision waited for with wait_ms, the re-check where the
// ledger writes), Stripe-style idempotency keys (replay, reuse, concurrency, a failed append
// retried), payment revenue in /v1/query, and bad input that always gets a 4xx with a code.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { startTestTally, type TestTally } from '../support/tally.ts';
import { buildApp } from '../../src/http/app.ts';
import { LogUnavailableError, type EventLog } from '../../src/core/ports/event-log.ts';
import type { Services } from '../../src/app/services.ts';

interface Merchant {
  readonly id: string;
  readonly writeKey: string;
  readonly secretKey: string;
}

type Json = Record<string, unknown>;

let tally: TestTally;
let shop: Merchant;
let rival: Merchant;
let keyCounter = 0;
const newKey = (): string => `key-${process.pid}-${++keyCounter}`;

async function call(merchant: Merchant, method: InjectOptions['method'], url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return tally.app.inject({ method, url, headers: { authorization: `Bearer ${merchant.secretKey}`, ...headers }, ...(payload === undefined ? {} : { payload: payload as Json }) });
}

async function createAccount(merchant: Merchant, body: Json): Promise<Json> {
  const response = await call(merchant, 'POST', '/v1/accounts', body);
  assert.equal(response.statusCode, 201, response.body);
  return response.json() as Json;
}

function transfer(merchant: Merchant, body: Json, options: { key?: string; waitMs?: number } = {}): Promise<LightMyRequestResponse> {
  const query = options.waitMs === undefined ? '' : `?wait_ms=${options.waitMs}`;
  return call(merchant, 'POST', `/v1/transfers${query}`, body, { 'idempotency-key': options.key ?? newKey() });
}

async function balanceOf(merchant: Merchant, accountId: unknown): Promise<number> {
  const response = await call(merchant, 'GET', `/v1/accounts/${String(accountId)}`);
  assert.equal(response.statusCode, 200, response.body);
  return (response.json() as { balance: number }).balance;
}

/** A funding account (overdraft allowed) and a customer account funded with `amount`. */
async function fundedAccount(merchant: Merchant, amount: number, currency = 'USD'): Promise<{ funding: Json; customer: Json }> {
  const funding = await createAccount(merchant, { currency, name: 'funding', allow_overdraft: true });
  const customer = await createAccount(merchant, { currency, name: 'customer' });
  const funded = await transfer(merchant, { from_account_id: funding.id, to_account_id: customer.id, amount, currency }, { waitMs: 10_000 });
  assert.equal(funded.statusCode, 200, funded.body);
  assert.equal((funded.json() as Json).status, 'succeeded');
  return { funding, customer };
}

function assertError(response: LightMyRequestResponse, status: number, code: string): Json {
  assert.equal(response.statusCode, status, response.body);
  const body = response.json() as { error: Json };
  assert.equal(body.error.code, code, response.body);
  assert.doesNotMatch(response.body, /\bat .+\.ts:\d+|stack/i, 'no stack trace reaches the client');
  return body.error;
}

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('payments API (embedded)', () => {
  before(async () => {
    tally = await startTestTally();
    shop = await tally.createMerchant('shop');
    rival = await tally.createMerchant('rival');
    tally.startLedgerProcessor();
  });
  after(async () => {
    await tally.close();
  });

  describe('accounts', () => {
    test('an account is created with a zero balance and read back; another merchant sees nothing of it', async () => {
      const account = await createAccount(shop, { currency: 'EUR', name: 'Wallet of Ada', metadata: { customer: 'ada' } });
      assert.match(String(account.id), /^acct_[0-9a-f-]{36}$/);
      assert.deepEqual({ ...account, id: null, created_at: null }, {
        id: null, object: 'account', currency: 'EUR', balance: 0, allow_overdraft: false, name: 'Wallet of Ada', metadata: { customer: 'ada' }, created_at: null,
      });
      assert.ok(Math.abs(Date.parse(String(account.created_at)) - Date.now()) < 60_000);
      const read = await call(shop, 'GET', `/v1/accounts/${String(account.id)}`);
      assert.deepEqual(read.json(), account);
      assertError(await call(rival, 'GET', `/v1/accounts/${String(account.id)}`), 404, 'account_not_found');
      assertError(await call(shop, 'GET', '/v1/accounts/acct_00000000-0000-7000-8000-000000000000'), 404, 'account_not_found');
      assertError(await call(shop, 'GET', '/v1/accounts/nonsense'), 404, 'account_not_found');
      const rivalList = (await call(rival, 'GET', '/v1/accounts?limit=100')).json() as { data: Json[] };
      assert.ok(rivalList.data.every((item) => item.id !== account.id));
    });

    test('the write key cannot use the payments API, and no key is 401', async () => {
      const asWriter = await tally.app.inject({ method: 'GET', url: '/v1/accounts', headers: { authorization: `Bearer ${shop.writeKey}` } });
      assertError(asWriter, 403, 'forbidden');
      assertError(await tally.app.inject({ method: 'POST', url: '/v1/transfers', payload: {} }), 401, 'unauthorized');
    });

    test('accounts page oldest first with limit and starting_after, and has_more says when to stop', async () => {
      const merchant = await tally.createMerchant('pager');
      const created: unknown[] = [];
      for (let index = 0; index < 5; index++) created.push((await createAccount(merchant, { currency: 'USD', name: `a${index}` })).id);
      const seen: unknown[] = [];
      let cursor = '';
      for (let page = 0; page < 3; page++) {
        const response = await call(merchant, 'GET', `/v1/accounts?limit=2${cursor}`);
        assert.equal(response.statusCode, 200, response.body);
        const body = response.json() as { object: string; data: Json[]; has_more: boolean };
        assert.equal(body.object, 'list');
        seen.push(...body.data.map((item) => item.id));
        assert.equal(body.has_more, page < 2, `page ${page}`);
        cursor = `&starting_after=${String(body.data[body.data.length - 1]!.id)}`;
      }
      assert.deepEqual(seen, created);
      const all = (await call(merchant, 'GET', '/v1/accounts')).json() as { data: Json[]; has_more: boolean };
      assert.deepEqual([all.data.length, all.has_more], [5, false], 'the default page (10) holds all five');
      for (const bad of ['limit=0', 'limit=101', 'limit=ten', 'limit=1&limit=2', 'starting_after=x', 'colour=blue']) {
        assertError(await call(merchant, 'GET', `/v1/accounts?${bad}`), 400, 'invalid_request');
      }
    });

    test('bad account bodies are 400 invalid_request naming the parameter', async () => {
      const cases: [unknown, string][] = [
        [{}, 'currency'], [{ currency: 'usd' }, 'currency'], [{ currency: 'DOLLAR' }, 'currency'], [{ currency: 840 }, 'currency'],
        [{ currency: 'USD', allow_overdraft: 'yes' }, 'allow_overdraft'], [{ currency: 'USD', name: 'n'.repeat(101) }, 'name'],
        [{ currency: 'USD', name: '' }, 'name'], [{ currency: 'USD', metadata: { k: 1 } }, 'metadata[k]'],
        [{ currency: 'USD', metadata: Object.fromEntries(Array.from({ length: 51 }, (_, index) => [`k${index}`, 'v'])) }, 'metadata'],
        [{ currency: 'USD', metadata: { k: 'v'.repeat(501) } }, 'metadata[k]'], [{ currency: 'USD', metadata: { ['k'.repeat(41)]: 'v' } }, 'metadata'],
        [{ currency: 'USD', balance: 100 }, 'balance'], [[{ currency: 'USD' }], 'body'], ['USD', 'body'],
      ];
      for (const [body, param] of cases) {
        const response = await tally.app.inject({
          method: 'POST', url: '/v1/accounts', payload: JSON.stringify(body), headers: { authorization: `Bearer ${shop.secretKey}`, 'content-type': 'application/json' },
        });
        const error = assertError(response, 400, 'invalid_request');
        assert.equal(error.param, param, JSON.stringify(body));
      }
      assertError(await tally.app.inject({ method: 'POST', url: '/v1/accounts', headers: { authorization: `Bearer ${shop.secretKey}`, 'content-type': 'application/json' }, payload: '{"currency":' }), 400, 'invalid_json');
    });

    test('POST /v1/accounts honours an optional Idempotency-Key: one account per key', async () => {
      const key = newKey();
      const body = { currency: 'USD', name: 'once' };
      const first = await call(shop, 'POST', '/v1/accounts', body, { 'idempotency-key': key });
      const again = await call(shop, 'POST', '/v1/accounts', body, { 'idempotency-key': key });
      assert.equal(first.statusCode, 201);
      assert.equal(again.statusCode, 201);
      assert.deepEqual(again.json(), first.json());
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(first.headers['idempotent-replayed'], undefined);
      assertError(await call(shop, 'POST', '/v1/accounts', { currency: 'EUR' }, { 'idempotency-key': key }), 422, 'idempotency_key_reused');
    });
  });

  describe('transfers', () => {
    test('funding flow: money enters through an overdraft account; wait_ms answers 200 with the decision', async () => {
      const funding = await createAccount(shop, { currency: 'USD', name: 'funding', allow_overdraft: true });
      const customer = await createAccount(shop, { currency: 'USD', name: 'customer' });
      const response = await transfer(shop, { from_account_id: funding.id, to_account_id: customer.id, amount: 2500, currency: 'USD', description: 'top-up', metadata: { order: 'o-1' } }, { waitMs: 10_000 });
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json() as Json;
      assert.match(String(body.id), /^tr_[0-9a-f-]{36}$/);
      assert.deepEqual({ ...body, id: null, created_at: null, settled_at: null }, {
        id: null, object: 'transfer', status: 'succeeded', amount: 2500, currency: 'USD', from_account_id: funding.id, to_account_id: customer.id,
        description: 'top-up', metadata: { order: 'o-1' }, failure_code: null, created_at: null, settled_at: null,
      });
      assert.equal(await balanceOf(shop, funding.id), -2500);
      assert.equal(await balanceOf(shop, customer.id), 2500);
      const read = await call(shop, 'GET', `/v1/transfers/${String(body.id)}`);
      assert.deepEqual(read.json(), body);
      assertError(await call(rival, 'GET', `/v1/transfers/${String(body.id)}`), 404, 'transfer_not_found');
      assertError(await call(shop, 'GET', '/v1/transfers/tr_nonsense'), 404, 'transfer_not_found');
    });

    test('an account lists its transfers newest first, in pages', async () => {
      const { funding, customer } = await fundedAccount(shop, 1000);
      const shopOwner = await createAccount(shop, { currency: 'USD' });
      const ids = [];
      for (const amount of [10, 20, 30]) {
        const response = await transfer(shop, { from_account_id: customer.id, to_account_id: shopOwner.id, amount, currency: 'USD' }, { waitMs: 10_000 });
        ids.push((response.json() as Json).id);
      }
      const first = (await call(shop, 'GET', `/v1/accounts/${String(customer.id)}/transfers?limit=2`)).json() as { data: Json[]; has_more: boolean };
      assert.deepEqual(first.data.map((item) => item.id), [ids[2], ids[1]]);
      assert.equal(first.has_more, true);
      const rest = (await call(shop, 'GET', `/v1/accounts/${String(customer.id)}/transfers?limit=2&starting_after=${String(ids[1])}`)).json() as { data: Json[]; has_more: boolean };
      assert.equal(rest.data[0]!.id, ids[0]);
      assert.equal(rest.data[1]!.from_account_id, funding.id, 'the funding transfer credited it first');
      assert.equal(rest.has_more, false);
      assertError(await call(rival, 'GET', `/v1/accounts/${String(customer.id)}/transfers`), 404, 'account_not_found');
    });

    test('pre-checks fail fast: 402 insufficient_funds, 422 currency_mismatch, 404 account_not_found, 400 same account', async () => {
      const { customer } = await fundedAccount(shop, 100);
      const other = await createAccount(shop, { currency: 'USD' });
      const euros = await createAccount(shop, { currency: 'EUR' });
      const rivalAccount = await createAccount(rival, { currency: 'USD' });
      assertError(await transfer(shop, { from_account_id: customer.id, to_account_id: other.id, amount: 101, currency: 'USD' }), 402, 'insufficient_funds');
      assertError(await transfer(shop, { from_account_id: customer.id, to_account_id: euros.id, amount: 1, currency: 'USD' }), 422, 'currency_mismatch');
      assertError(await transfer(shop, { from_account_id: customer.id, to_account_id: other.id, amount: 1, currency: 'EUR' }), 422, 'currency_mismatch');
      const missing = assertError(await transfer(shop, { from_account_id: customer.id, to_account_id: rivalAccount.id, amount: 1, currency: 'USD' }), 404, 'account_not_found');
      assert.equal(missing.param, 'to_account_id', "another merchant's account is not found");
      const unknownFrom = assertError(await transfer(shop, { from_account_id: 'acct_nope', to_account_id: other.id, amount: 1, currency: 'USD' }), 404, 'account_not_found');
      assert.equal(unknownFrom.param, 'from_account_id');
      assertError(await transfer(shop, { from_account_id: customer.id, to_account_id: customer.id, amount: 1, currency: 'USD' }), 400, 'invalid_request');
      assert.equal(await balanceOf(shop, customer.id), 100, 'nothing moved');
      const listed = (await call(shop, 'GET', `/v1/accounts/${String(customer.id)}/transfers`)).json() as { data: Json[] };
      assert.equal(listed.data.length, 1, 'only the funding transfer exists');
    });

    test('funds that vanish between the pre-check and the ledger: the second transfer ends failed insufficient_funds', async () => {
      const { customer } = await fundedAccount(shop, 100);
      const merchantAccount = await createAccount(shop, { currency: 'USD' });
      await tally.stopLedgerProcessor();
      let restarted = false;
      try {
        const body = { from_account_id: customer.id, to_account_id: merchantAccount.id, amount: 70, currency: 'USD' };
        const [first, second] = await Promise.all([transfer(shop, body), transfer(shop, body)]);
        assert.equal(first.statusCode, 202, 'both pass the pre-check on the current balance');
        assert.equal(second.statusCode, 202);
        assert.equal((first.json() as Json).status, 'pending');
        const pending = await call(shop, 'GET', `/v1/transfers/${String((first.json() as Json).id)}`);
        assert.equal((pending.json() as Json).status, 'pending');
        tally.startLedgerProcessor();
        restarted = true;
        const outcomes = await Promise.all([first, second].map(async (response) => {
          const id = String((response.json() as Json).id);
          return waitFor(async () => (await call(shop, 'GET', `/v1/transfers/${id}`)).json() as Json, (value) => value.status !== 'pending');
        }));
        const byStatus = outcomes.map((outcome) => `${String(outcome.status)}:${String(outcome.failure_code)}`).sort();
        assert.deepEqual(byStatus, ['failed:insufficient_funds', 'succeeded:null']);
      } finally {
        if (!restarted) tally.startLedgerProcessor();
      }
      assert.equal(await balanceOf(shop, customer.id), 30);
      assert.equal(await balanceOf(shop, merchantAccount.id), 70);
    });

    test('wait_ms takes 0 to 10000; 0 answers 202 pending at once', async () => {
      const { customer } = await fundedAccount(shop, 100);
      const other = await createAccount(shop, { currency: 'USD' });
      const body = { from_account_id: customer.id, to_account_id: other.id, amount: 1, currency: 'USD' };
      for (const bad of ['-1', '10001', 'abc', '1.5', '']) {
        assertError(await call(shop, 'POST', `/v1/transfers?wait_ms=${bad}`, body, { 'idempotency-key': newKey() }), 400, 'invalid_request');
      }
      await tally.stopLedgerProcessor();
      try {
        const immediate = await transfer(shop, body, { waitMs: 0 });
        assert.equal(immediate.statusCode, 202);
        assert.equal((immediate.json() as Json).status, 'pending');
        const started = Date.now();
        const waited = await transfer(shop, body, { waitMs: 100 });
        assert.equal(waited.statusCode, 202, 'not decided within the wait: still 202');
        assert.ok(Date.now() - started >= 100, 'it did wait');
      } finally {
        tally.startLedgerProcessor();
      }
      const decided = await transfer(shop, body, { waitMs: 10_000 });
      assert.equal(decided.statusCode, 200);
    });

    test('bad transfer bodies are 400 with a code, never a 5xx or a stack trace', async () => {
      const { customer } = await fundedAccount(shop, 100);
      const other = await createAccount(shop, { currency: 'USD' });
      const valid = { from_account_id: customer.id, to_account_id: other.id, amount: 1, currency: 'USD' };
      const bodies: unknown[] = [
        null, [], 'transfer', 42, {}, { ...valid, amount: 0 }, { ...valid, amount: -5 }, { ...valid, amount: 1.5 }, { ...valid, amount: '10' },
        { ...valid, amount: 2 ** 53 }, { ...valid, amount: 1e300 }, { ...valid, currency: 'usd' }, { ...valid, from_account_id: 7 },
        { ...valid, to_account_id: null }, { ...valid, description: 'd'.repeat(1001) }, { ...valid, metadata: [] }, { ...valid, metadata: { a: { b: 'c' } } },
        { ...valid, extra: true }, { ...valid, from_account_id: 'x'.repeat(65) },
      ];
      for (const body of bodies) {
        const response = await tally.app.inject({
          method: 'POST', url: '/v1/transfers', payload: JSON.stringify(body),
          headers: { authorization: `Bearer ${shop.secretKey}`, 'idempotency-key': newKey(), 'content-type': 'application/json' },
        });
        assertError(response, 400, 'invalid_request');
      }
      const huge = await tally.app.inject({
        method: 'POST', url: '/v1/transfers', payload: `{"amount":${'9'.repeat(70_000)}}`,
        headers: { authorization: `Bearer ${shop.secretKey}`, 'idempotency-key': newKey(), 'content-type': 'application/json' },
      });
      assertError(huge, 413, 'body_too_large');
      const exact = await transfer(shop, { ...valid, amount: 2 ** 53 - 1 });
      assertError(exact, 402, 'insufficient_funds');
      assert.equal(await balanceOf(shop, customer.id), 100);
    });
  });

  describe('idempotency keys', () => {
    test('the same key and body replay the answer with Idempotent-Replayed; the ledger applies it once', async () => {
      const { customer } = await fundedAccount(shop, 500);
      const other = await createAccount(shop, { currency: 'USD' });
      const key = newKey();
      const body = { from_account_id: customer.id, to_account_id: other.id, amount: 200, currency: 'USD', metadata: { a: '1', b: '2' } };
      const first = await transfer(shop, body, { key, waitMs: 10_000 });
      assert.equal(first.statusCode, 200);
      assert.equal(first.headers['idempotent-replayed'], undefined);
      const reordered = { metadata: { b: '2', a: '1' }, currency: 'USD', amount: 200, to_account_id: other.id, from_account_id: customer.id };
      const again = await transfer(shop, reordered, { key, waitMs: 10_000 });
      assert.equal(again.statusCode, 200);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.deepEqual(again.json(), first.json());
      assert.equal(await balanceOf(shop, customer.id), 300, 'moved once');
      const listed = (await call(shop, 'GET', `/v1/accounts/${String(other.id)}/transfers`)).json() as { data: Json[] };
      assert.equal(listed.data.length, 1);
      assertError(await transfer(shop, { ...body, amount: 201 }, { key }), 422, 'idempotency_key_reused');
      assert.equal(await balanceOf(shop, customer.id), 300);
    });

    test('a key is scoped to its merchant', async () => {
      const key = newKey();
      const mine = await fundedAccount(shop, 50);
      const theirs = await fundedAccount(rival, 50);
      const a = await transfer(shop, { from_account_id: mine.customer.id, to_account_id: mine.funding.id, amount: 5, currency: 'USD' }, { key, waitMs: 10_000 });
      const b = await transfer(rival, { from_account_id: theirs.customer.id, to_account_id: theirs.funding.id, amount: 5, currency: 'USD' }, { key, waitMs: 10_000 });
      assert.equal(a.statusCode, 200);
      assert.equal(b.statusCode, 200);
      assert.equal(b.headers['idempotent-replayed'], undefined);
      assert.notEqual((a.json() as Json).id, (b.json() as Json).id);
    });

    test('a missing or malformed key is refused before anything happens', async () => {
      const { customer } = await fundedAccount(shop, 50);
      const other = await createAccount(shop, { currency: 'USD' });
      const body = { from_account_id: customer.id, to_account_id: other.id, amount: 5, currency: 'USD' };
      assertError(await call(shop, 'POST', '/v1/transfers', body), 400, 'idempotency_key_required');
      assertError(await call(shop, 'POST', '/v1/transfers', body, { 'idempotency-key': '' }), 400, 'idempotency_key_required');
      assertError(await call(shop, 'POST', '/v1/transfers', body, { 'idempotency-key': 'k'.repeat(256) }), 400, 'invalid_request');
      assertError(await call(shop, 'POST', '/v1/transfers', body, { 'idempotency-key': 'has space' }), 400, 'invalid_request');
      const longest = await call(shop, 'POST', '/v1/transfers', body, { 'idempotency-key': `${newKey()}-`.padEnd(255, 'k') });
      assert.equal(longest.statusCode, 202);
    });

    test('a refused pre-check is stored under its key and replayed, even after funds arrive', async () => {
      const { funding, customer } = await fundedAccount(shop, 10);
      const other = await createAccount(shop, { currency: 'USD' });
      const key = newKey();
      const body = { from_account_id: customer.id, to_account_id: other.id, amount: 50, currency: 'USD' };
      const refused = await transfer(shop, body, { key });
      assertError(refused, 402, 'insufficient_funds');
      await transfer(shop, { from_account_id: funding.id, to_account_id: customer.id, amount: 100, currency: 'USD' }, { waitMs: 10_000 });
      const replay = await transfer(shop, body, { key });
      assert.equal(replay.statusCode, 402);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.deepEqual(replay.json(), refused.json());
    });

    test('concurrent requests with one key agree on one transfer, appended once', async () => {
      const { customer } = await fundedAccount(shop, 1000);
      const other = await createAccount(shop, { currency: 'USD' });
      const key = newKey();
      const body = { from_account_id: customer.id, to_account_id: other.id, amount: 100, currency: 'USD' };
      const responses = await Promise.all(Array.from({ length: 8 }, () => transfer(shop, body, { key, waitMs: 10_000 })));
      const ids = new Set(responses.map((response) => (response.json() as Json).id));
      assert.equal(ids.size, 1, 'one transfer id for the key');
      assert.ok(responses.every((response) => response.statusCode === 200), responses.map((response) => response.statusCode).join());
      assert.equal(responses.filter((response) => response.headers['idempotent-replayed'] === 'true').length, 7);
      assert.equal(await balanceOf(shop, customer.id), 900);
      const listed = (await call(shop, 'GET', `/v1/accounts/${String(other.id)}/transfers`)).json() as { data: Json[] };
      assert.equal(listed.data.length, 1);
    });

    test('a refused append is 503 log_unavailable and no transfer; a retry with the key sends it once', async () => {
      const { customer } = await fundedAccount(shop, 100);
      const other = await createAccount(shop, { currency: 'USD' });
      const services = tally.embedded.services;
      const refusingLog: EventLog = { ...bindAll(services.log), append: async () => { throw new LogUnavailableError('broker down'); } };
      const downApp = await buildApp({ services: { ...services, log: refusingLog }, roles: ['query'] });
      // The retry comes after the claim went stale (the request that made it gave up).
      const laterApp = await buildApp({ services: { ...services, now: () => Date.now() + 60_000 } satisfies Services, roles: ['query'] });
      try {
        const key = newKey();
        const body = { from_account_id: customer.id, to_account_id: other.id, amount: 40, currency: 'USD' };
        const inject = (app: typeof downApp) => app.inject({
          method: 'POST', url: '/v1/transfers?wait_ms=10000', payload: body, headers: { authorization: `Bearer ${shop.secretKey}`, 'idempotency-key': key },
        });
        assertError(await inject(downApp), 503, 'log_unavailable');
        const listed = (await call(shop, 'GET', `/v1/accounts/${String(customer.id)}/transfers`)).json() as { data: Json[] };
        assert.equal(listed.data.length, 1, 'only the funding transfer: nothing was accepted');
        const retried = await inject(laterApp);
        assert.equal(retried.statusCode, 200, retried.body);
        assert.equal(retried.headers['idempotent-replayed'], 'true');
        assert.equal((retried.json() as Json).status, 'succeeded');
        assert.equal(await balanceOf(shop, customer.id), 60);
      } finally {
        await downApp.close();
        await laterApp.close();
      }
    });
  });

  test('succeeded transfers show as payment events and revenue in /v1/query', async () => {
    const merchant = await tally.createMerchant('revenue');
    const idle = await tally.createMerchant('idle');
    const { customer } = await fundedAccount(merchant, 10_000);
    const store = await createAccount(merchant, { currency: 'USD', name: 'store' });
    const paid = await transfer(merchant, { from_account_id: customer.id, to_account_id: store.id, amount: 1999, currency: 'USD' }, { waitMs: 10_000 });
    assert.equal(paid.statusCode, 200);
    assertError(await transfer(merchant, { from_account_id: customer.id, to_account_id: store.id, amount: 99_999, currency: 'USD' }), 402, 'insufficient_funds');
    const query = { metrics: ['events', 'revenue'], date_range: '7d', filters: [['is', 'event:type', ['payment']]] };
    const read = async (of: Merchant) => (await tally.app.inject({
      method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${of.secretKey}`, 'cache-control': 'no-cache' }, payload: query,
    })).json() as { results: { metrics: number[] }[] };
    tally.startProcessor();
    try {
      const result = await waitFor(() => read(merchant), (body) => body.results[0]?.metrics[0] === 2);
      assert.deepEqual(result.results[0]!.metrics, [2, 10_000 + 1999], 'the funding and the payment; the refused transfer is no revenue');
      await tally.waitCaughtUp();
      assert.deepEqual((await read(idle)).results[0]?.metrics ?? [0, 0], [0, 0], "another merchant's payments are not its revenue");
    } finally {
      await tally.stopProcessor();
    }
  });
});

/** The log's methods bound to it, so one of them can be replaced in a copy. */
function bindAll(log: EventLog): EventLog {
  return {
    ensureTopic: (topic, partitions) => log.ensureTopic(topic, partitions),
    append: (topic, records) => log.append(topic, records),
    consumer: (options) => log.consumer(options),
    endOffsets: (topic) => log.endOffsets(topic),
    committedOffsets: (group, topic) => log.committedOffsets(group, topic),
    ping: () => log.ping(),
    close: () => log.close(),
  };
}
