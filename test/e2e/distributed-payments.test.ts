// The payments API, the ledger processor and the ping responder on the distributed deployment, end
// to end: `tally migrate`, then real `tally query` (two of them, the payments API) and `tally
// processor` (the ledger, analytics and ping processors) children on Kafka and Cassandra, talked to
// over HTTP only. What test/payments/api.test.ts proves in process on SQLite, this proves across
// processes that share nothing but the engines: accounts and their pages, transfers decided by the
// ledger processor and waited for with ?wait_ms, the fail-fast pre-checks, the ledger's own re-check
// (concurrent debits, funds that vanish while the processor is down), credits from many partitions
// at once, Idempotency-Key replays across two API processes, payments counted by /v1/query, and
// `tally ping`. Redis is left out on purpose: nothing here reads the query cache.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { enginesMissing } from '../support/engines.ts';
import { TallyProcesses, type TallyChild } from '../support/processes.ts';
import { distributedTestEnv, dropTestKeyspace } from '../support/tally.ts';
import { installationConfig, runMigrate } from '../support/distributed.ts';
import { createMerchant, type MerchantKeys } from '../support/traffic.ts';
import { PaymentsApi, assertError, newIdempotencyKey, waitFor, waitMsMax, type ApiAnswer, type Json } from '../support/payments-api.ts';

const missing = await enginesMissing('kafka', 'cassandra');

const mainPath = resolve(import.meta.dirname, '../../src/cli/main.ts');
const repositoryRoot = resolve(import.meta.dirname, '../..');
/** Three node children start at once on a 2-core box next to the engines. */
const childStartTimeoutMs = 60_000;
/** A restarted processor joins the ledger group and works off what waited: seconds, bounded generously. */
const decidedAfterRestartMsMax = 60_000;
/** Payment events go through the events topic and the analytics processor before /v1/query counts them. */
const countedMsMax = 60_000;
const commandPartitions = 4;

/** Runs `tally <args>` against the installation; resolves with its exit code and output. */
async function runTally(args: readonly string[], env: Readonly<Record<string, string>>, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // The parent's TALLY_* settings must not leak into the child: it talks to exactly `env`.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TALLY_')));
  const child = spawn(process.execPath, [mainPath, ...args], { cwd: repositoryRoot, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = await new Promise<[number | null]>((resolveExit) => child.once('exit', (exitCode) => resolveExit([exitCode])));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** "succeeded:null" or "failed:insufficient_funds": a final transfer in a word. */
const outcome = (transfer: Json): string => `${String(transfer.status)}:${String(transfer.failure_code)}`;

describe('payments on the distributed deployment: tally query ×2 and tally processor on Kafka + Cassandra', { skip: missing ?? false }, () => {
  const env: Record<string, string> = {
    ...distributedTestEnv(),
    TALLY_EVENTS_PARTITIONS: '2',
    TALLY_PAYMENTS_PARTITIONS: String(commandPartitions),
    // Concurrent requests with one secret key: the per-key limit is not what these tests are about.
    TALLY_RATE_LIMIT_PER_SECOND: '1000000',
  };
  delete env.TALLY_REDIS_URL;
  const config = installationConfig(env);
  let processes: TallyProcesses;
  let processor: TallyChild;
  /** Two API processes: requests alternate or race between them, as behind a load balancer. */
  let api: PaymentsApi;
  let otherApi: PaymentsApi;
  let shop: MerchantKeys;
  let rival: MerchantKeys;
  /** Every merchant the tests created, for the closing audit. */
  const merchants: MerchantKeys[] = [];

  before(async () => {
    const migration = await runMigrate(env);
    assert.match(migration, new RegExp(`topic payments\\.transfer\\.requested: ${commandPartitions} partitions`), migration);
    assert.match(migration, /schema [^:\n]*ledger[^:\n]*: /i, `tally migrate creates the ledger's tables\n${migration}`);
    processes = new TallyProcesses({ env });
    const [first, second, started] = await Promise.all([
      processes.start('query', { startTimeoutMs: childStartTimeoutMs }),
      processes.start('query', { startTimeoutMs: childStartTimeoutMs }),
      processes.start('processor', { startTimeoutMs: childStartTimeoutMs }),
    ]);
    api = new PaymentsApi(first!.url);
    otherApi = new PaymentsApi(second!.url);
    processor = started!;
    shop = await createMerchant(api.url, 'shop');
    rival = await createMerchant(api.url, 'rival');
    merchants.push(shop, rival);
  }, { timeout: 180_000 });

  after(async () => {
    await processes?.close();
    await dropTestKeyspace(config);
  }, { timeout: 60_000 });

  test('accounts are created with a zero balance, read back from either API process, and invisible to another merchant', { timeout: 60_000 }, async () => {
    const account = await api.createAccount(shop, { currency: 'EUR', name: 'Wallet of Ada', metadata: { customer: 'ada' } });
    assert.match(String(account.id), /^acct_[0-9a-f-]{36}$/);
    assert.deepEqual({ ...account, id: null, created_at: null }, {
      id: null, object: 'account', currency: 'EUR', balance: 0, allow_overdraft: false, name: 'Wallet of Ada', metadata: { customer: 'ada' }, created_at: null,
    });
    for (const reader of [api, otherApi]) {
      const read = await reader.call(shop, 'GET', `/v1/accounts/${String(account.id)}`);
      assert.equal(read.status, 200, read.body);
      assert.deepEqual(read.json(), account);
    }
    assertError(await otherApi.call(rival, 'GET', `/v1/accounts/${String(account.id)}`), 404, 'account_not_found');
    assertError(await api.call(shop, 'GET', '/v1/accounts/acct_00000000-0000-7000-8000-000000000000'), 404, 'account_not_found');
    assert.ok((await api.listAll(rival, '/v1/accounts')).every((item) => item.id !== account.id), "the rival's list holds none of the shop's accounts");
    assertError(await api.call({ ...shop, secretKey: shop.writeKey }, 'GET', '/v1/accounts'), 403, 'forbidden');
    assertError(await api.call(shop, 'POST', '/v1/accounts', { currency: 'usd' }), 400, 'invalid_request');
  });

  test('GET /v1/accounts pages oldest first with limit and starting_after; has_more says when to stop', { timeout: 60_000 }, async () => {
    const pager = await createMerchant(api.url, 'pager');
    merchants.push(pager);
    const created: unknown[] = [];
    for (let index = 0; index < 5; index++) created.push((await api.createAccount(pager, { currency: 'USD', name: `a${index}` })).id);
    const seen: unknown[] = [];
    let cursor = '';
    for (let page = 0; page < 3; page++) {
      // The pages alternate between the API processes: the cursor is the store's, not a process's.
      const body = await (page % 2 === 0 ? api : otherApi).page(pager, `/v1/accounts?limit=2${cursor}`);
      assert.equal(body.object, 'list');
      assert.equal(body.data.length, page < 2 ? 2 : 1, `page ${page}`);
      assert.equal(body.has_more, page < 2, `page ${page}`);
      seen.push(...body.data.map((item) => item.id));
      cursor = `&starting_after=${String(body.data[body.data.length - 1]!.id)}`;
    }
    assert.deepEqual(seen, created);
    const all = await api.page(pager, '/v1/accounts');
    assert.deepEqual([all.data.map((item) => item.id), all.has_more], [created, false], 'the default page (10) holds all five');
    assertError(await api.call(pager, 'GET', '/v1/accounts?starting_after=acct_00000000-0000-7000-8000-000000000000'), 400, 'invalid_request');
  });

  test('money enters through an overdraft account: wait_ms answers 200 succeeded, balances move, the transfer reads back everywhere', { timeout: 60_000 }, async () => {
    const funding = await api.createAccount(shop, { currency: 'USD', name: 'funding', allow_overdraft: true });
    const customer = await api.createAccount(shop, { currency: 'USD', name: 'customer' });
    const response = await api.transfer(shop, {
      from_account_id: funding.id, to_account_id: customer.id, amount: 2500, currency: 'USD', description: 'top-up', metadata: { order: 'o-1' },
    }, { waitMs: waitMsMax });
    assert.equal(response.status, 200, response.body);
    const body = response.json();
    assert.match(String(body.id), /^tr_[0-9a-f-]{36}$/);
    assert.deepEqual({ ...body, id: null, created_at: null, settled_at: null }, {
      id: null, object: 'transfer', status: 'succeeded', amount: 2500, currency: 'USD', from_account_id: funding.id, to_account_id: customer.id,
      description: 'top-up', metadata: { order: 'o-1' }, failure_code: null, created_at: null, settled_at: null,
    });
    assert.ok(Date.parse(String(body.settled_at)) >= Date.parse(String(body.created_at)), 'settled at or after it was created');
    assert.equal(await otherApi.balanceOf(shop, funding.id), -2500);
    assert.equal(await otherApi.balanceOf(shop, customer.id), 2500);
    assert.deepEqual(await otherApi.getTransfer(shop, body.id), body);
    assertError(await api.call(rival, 'GET', `/v1/transfers/${String(body.id)}`), 404, 'transfer_not_found');
    assertError(await api.call(shop, 'GET', '/v1/transfers/tr_00000000-0000-7000-8000-000000000000'), 404, 'transfer_not_found');
  });

  test('pre-checks fail fast: 402 insufficient_funds, 422 currency_mismatch, 404 account_not_found; nothing moves', { timeout: 60_000 }, async () => {
    const { customer } = await api.fundedAccount(shop, 100);
    const other = await api.createAccount(shop, { currency: 'USD' });
    const euros = await api.createAccount(shop, { currency: 'EUR' });
    const rivalAccount = await api.createAccount(rival, { currency: 'USD' });
    assertError(await api.transfer(shop, { from_account_id: customer.id, to_account_id: other.id, amount: 101, currency: 'USD' }), 402, 'insufficient_funds');
    assertError(await otherApi.transfer(shop, { from_account_id: customer.id, to_account_id: euros.id, amount: 1, currency: 'USD' }), 422, 'currency_mismatch');
    assertError(await api.transfer(shop, { from_account_id: customer.id, to_account_id: other.id, amount: 1, currency: 'EUR' }), 422, 'currency_mismatch');
    const notFound = assertError(await otherApi.transfer(shop, { from_account_id: customer.id, to_account_id: rivalAccount.id, amount: 1, currency: 'USD' }), 404, 'account_not_found');
    assert.equal(notFound.param, 'to_account_id', "another merchant's account is not found");
    const unknownFrom = assertError(await api.transfer(shop, { from_account_id: 'acct_nope', to_account_id: other.id, amount: 1, currency: 'USD' }), 404, 'account_not_found');
    assert.equal(unknownFrom.param, 'from_account_id');
    assertError(await api.transfer(shop, { from_account_id: customer.id, to_account_id: customer.id, amount: 1, currency: 'USD' }), 400, 'invalid_request');
    assertError(await api.call(shop, 'POST', '/v1/transfers', { from_account_id: customer.id, to_account_id: other.id, amount: 1, currency: 'USD' }), 400, 'idempotency_key_required');
    assert.equal(await api.balanceOf(shop, customer.id), 100, 'nothing moved');
    assert.equal((await api.listAll(shop, `/v1/accounts/${String(customer.id)}/transfers`)).length, 1, 'only the funding transfer exists');
  });

  test('the ledger re-checks funds: of 6 concurrent debits of 30 from 100, exactly 3 succeed', { timeout: 90_000 }, async () => {
    const { customer } = await api.fundedAccount(shop, 100);
    const store = await api.createAccount(shop, { currency: 'USD', name: 'store' });
    const body = { from_account_id: customer.id, to_account_id: store.id, amount: 30, currency: 'USD' };
    // Both API processes at once: each pre-check sees the balance as it is, the ledger decides in order.
    const answers = await Promise.all(Array.from({ length: 6 }, (_, index) => (index % 2 === 0 ? api : otherApi).transfer(shop, body, { waitMs: waitMsMax })));
    const outcomes: string[] = [];
    for (const answer of answers) {
      if (answer.status === 402) {
        assertError(answer, 402, 'insufficient_funds');
        outcomes.push('refused by the pre-check');
        continue;
      }
      assert.ok(answer.status === 200 || answer.status === 202, answer.body);
      const id = answer.json().id;
      const final = await waitFor('the transfer decided', () => api.getTransfer(shop, id), (transfer) => transfer.status !== 'pending');
      outcomes.push(outcome(final));
    }
    assert.equal(outcomes.filter((item) => item === 'succeeded:null').length, 3, outcomes.join(', '));
    assert.ok(outcomes.every((item) => ['succeeded:null', 'failed:insufficient_funds', 'refused by the pre-check'].includes(item)), outcomes.join(', '));
    assert.equal(await api.balanceOf(shop, customer.id), 10);
    assert.equal(await otherApi.balanceOf(shop, store.id), 90);
  });

  test('credits from many accounts at once (commands on several partitions) all land, and the credited account can spend them', { timeout: 120_000 }, async () => {
    const payers = 12;
    const store = await api.createAccount(shop, { currency: 'USD', name: 'busy store' });
    const customers = await Promise.all(Array.from({ length: payers }, async (_, index) => (await (index % 2 === 0 ? api : otherApi).fundedAccount(shop, 100)).customer));
    const paid = await Promise.all(customers.map((customer, index) =>
      (index % 2 === 0 ? otherApi : api).transfer(shop, { from_account_id: customer.id, to_account_id: store.id, amount: 40, currency: 'USD' }, { waitMs: waitMsMax })));
    for (const answer of paid) {
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.json().status, 'succeeded', answer.body);
    }
    assert.equal(await api.balanceOf(shop, store.id), payers * 40);
    const payout = await api.createAccount(shop, { currency: 'USD', name: 'payout' });
    // Every credit counted: the whole balance can leave in one debit, and not one unit more.
    assertError(await api.transfer(shop, { from_account_id: store.id, to_account_id: payout.id, amount: payers * 40 + 1, currency: 'USD' }), 402, 'insufficient_funds');
    const spent = await otherApi.transfer(shop, { from_account_id: store.id, to_account_id: payout.id, amount: payers * 40, currency: 'USD' }, { waitMs: waitMsMax });
    assert.equal(spent.status, 200, spent.body);
    assert.equal(spent.json().status, 'succeeded', spent.body);
    assert.equal(await api.balanceOf(shop, store.id), 0);
    assert.equal(await api.balanceOf(shop, payout.id), payers * 40);
    assert.equal((await api.listAll(shop, `/v1/accounts/${String(store.id)}/transfers`)).length, payers + 1);
  });

  test('an account lists its transfers newest first, in pages', { timeout: 60_000 }, async () => {
    const { funding, customer } = await api.fundedAccount(shop, 1000);
    const owner = await api.createAccount(shop, { currency: 'USD' });
    const ids: unknown[] = [];
    for (const amount of [10, 20, 30]) {
      const response = await api.transfer(shop, { from_account_id: customer.id, to_account_id: owner.id, amount, currency: 'USD' }, { waitMs: waitMsMax });
      assert.equal(response.status, 200, response.body);
      ids.push(response.json().id);
    }
    const first = await otherApi.page(shop, `/v1/accounts/${String(customer.id)}/transfers?limit=2`);
    assert.deepEqual(first.data.map((item) => item.id), [ids[2], ids[1]]);
    assert.equal(first.has_more, true);
    const rest = await api.page(shop, `/v1/accounts/${String(customer.id)}/transfers?limit=2&starting_after=${String(ids[1])}`);
    assert.equal(rest.data.length, 2);
    assert.equal(rest.data[0]!.id, ids[0]);
    assert.equal(rest.data[1]!.from_account_id, funding.id, 'the funding transfer credited it first');
    assert.equal(rest.has_more, false);
    assert.deepEqual((await api.listAll(shop, `/v1/accounts/${String(owner.id)}/transfers`, 1)).map((item) => item.id), [ids[2], ids[1], ids[0]]);
    assertError(await api.call(rival, 'GET', `/v1/accounts/${String(customer.id)}/transfers`), 404, 'account_not_found');
  });

  describe('idempotency keys, across two API processes', () => {
    test('the same key and body replay the answer with Idempotent-Replayed; another body is 422 idempotency_key_reused', { timeout: 60_000 }, async () => {
      const { customer } = await api.fundedAccount(shop, 500);
      const other = await api.createAccount(shop, { currency: 'USD' });
      const key = newIdempotencyKey();
      const body = { from_account_id: customer.id, to_account_id: other.id, amount: 200, currency: 'USD', metadata: { a: '1', b: '2' } };
      const first = await api.transfer(shop, body, { key, waitMs: waitMsMax });
      assert.equal(first.status, 200, first.body);
      assert.equal(first.headers.get('idempotent-replayed'), null);
      const reordered = { metadata: { b: '2', a: '1' }, currency: 'USD', amount: 200, to_account_id: other.id, from_account_id: customer.id };
      const again = await otherApi.transfer(shop, reordered, { key, waitMs: waitMsMax });
      assert.equal(again.status, 200, again.body);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(again.json(), first.json());
      assert.equal(await api.balanceOf(shop, customer.id), 300, 'moved once');
      assert.equal((await api.listAll(shop, `/v1/accounts/${String(other.id)}/transfers`)).length, 1);
      assertError(await otherApi.transfer(shop, { ...body, amount: 201 }, { key }), 422, 'idempotency_key_reused');
      assert.equal(await api.balanceOf(shop, customer.id), 300);
      // A key is the merchant's own: the rival's first use of it is no replay.
      const theirs = await api.fundedAccount(rival, 50);
      const rivals = await api.transfer(rival, { from_account_id: theirs.customer.id, to_account_id: theirs.funding.id, amount: 5, currency: 'USD' }, { key, waitMs: waitMsMax });
      assert.equal(rivals.status, 200, rivals.body);
      assert.equal(rivals.headers.get('idempotent-replayed'), null);
      assert.notEqual(rivals.json().id, first.json().id);
    });

    test('concurrent requests with one key on both API processes agree on one transfer, applied once', { timeout: 60_000 }, async () => {
      const { customer } = await api.fundedAccount(shop, 1000);
      const other = await api.createAccount(shop, { currency: 'USD' });
      const key = newIdempotencyKey();
      const body = { from_account_id: customer.id, to_account_id: other.id, amount: 100, currency: 'USD' };
      const answers = await Promise.all(Array.from({ length: 8 }, (_, index) => (index % 2 === 0 ? api : otherApi).transfer(shop, body, { key, waitMs: waitMsMax })));
      assert.deepEqual(answers.map((answer) => answer.status), Array(8).fill(200), answers.map((answer) => answer.body).join('\n'));
      assert.equal(new Set(answers.map((answer) => answer.json().id)).size, 1, 'one transfer id for the key');
      assert.equal(answers.filter((answer) => answer.headers.get('idempotent-replayed') === 'true').length, 7);
      assert.equal(await api.balanceOf(shop, customer.id), 900);
      assert.equal((await otherApi.listAll(shop, `/v1/accounts/${String(other.id)}/transfers`)).length, 1);
    });

    test('a refused pre-check is stored under its key and replayed, even after funds arrive', { timeout: 60_000 }, async () => {
      const { funding, customer } = await api.fundedAccount(shop, 10);
      const other = await api.createAccount(shop, { currency: 'USD' });
      const key = newIdempotencyKey();
      const body = { from_account_id: customer.id, to_account_id: other.id, amount: 50, currency: 'USD' };
      const refused = await api.transfer(shop, body, { key });
      assertError(refused, 402, 'insufficient_funds');
      const topUp = await api.transfer(shop, { from_account_id: funding.id, to_account_id: customer.id, amount: 100, currency: 'USD' }, { waitMs: waitMsMax });
      assert.equal(topUp.status, 200, topUp.body);
      const replay = await otherApi.transfer(shop, body, { key });
      assert.equal(replay.status, 402, replay.body);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(replay.json(), refused.json());
      assert.equal(await api.balanceOf(shop, customer.id), 110);
    });
  });

  test('with no ledger processor running transfers stay pending (202); once one is back the ledger decides them, re-checking funds', { timeout: 180_000 }, async () => {
    const { customer } = await api.fundedAccount(shop, 100);
    const merchantAccount = await api.createAccount(shop, { currency: 'USD' });
    const stopped = await processor.kill('SIGTERM');
    assert.equal(stopped.code, 0, `the processor stops cleanly on SIGTERM\n${processor.output()}`);
    const body = { from_account_id: customer.id, to_account_id: merchantAccount.id, amount: 70, currency: 'USD' };
    const [first, second] = await Promise.all([api.transfer(shop, body, { waitMs: 0 }), otherApi.transfer(shop, body, { waitMs: 0 })]);
    for (const answer of [first, second]) {
      assert.equal(answer.status, 202, `both pass the pre-check on the current balance: ${answer.body}`);
      assert.equal(answer.json().status, 'pending');
      assert.equal((await otherApi.getTransfer(shop, answer.json().id)).status, 'pending');
    }
    const waitedFromMs = Date.now();
    const waited = await api.transfer(shop, { ...body, amount: 1 }, { waitMs: 300 });
    assert.equal(waited.status, 202, `not decided within the wait: still 202 (${waited.body})`);
    assert.ok(Date.now() - waitedFromMs >= 300, 'it did wait');
    processor = await processes.start('processor', { startTimeoutMs: childStartTimeoutMs });
    const decided = await Promise.all([first, second, waited].map((answer: ApiAnswer) => waitFor('the transfer decided after the restart',
      () => api.getTransfer(shop, answer.json().id), (transfer) => transfer.status !== 'pending', decidedAfterRestartMsMax, 100)));
    assert.deepEqual(decided.slice(0, 2).map(outcome).sort(), ['failed:insufficient_funds', 'succeeded:null'], 'one 70 fits in 100, the other does not');
    assert.equal(outcome(decided[2]!), 'succeeded:null', 'the 1 fits in what is left');
    assert.equal(await api.balanceOf(shop, customer.id), 29);
    assert.equal(await otherApi.balanceOf(shop, merchantAccount.id), 71);
    // A failed transfer reads back failed from either process, with its code.
    const failed = decided.find((transfer) => transfer.status === 'failed')!;
    assert.deepEqual(await otherApi.getTransfer(shop, failed.id), failed);
  });

  test('succeeded transfers show in /v1/query as payment events with revenue for their merchant, and only for it', { timeout: 120_000 }, async () => {
    const merchant = await createMerchant(api.url, 'revenue');
    const idle = await createMerchant(api.url, 'idle');
    merchants.push(merchant, idle);
    const { customer } = await api.fundedAccount(merchant, 10_000);
    const store = await api.createAccount(merchant, { currency: 'USD', name: 'store' });
    const paid = await api.transfer(merchant, { from_account_id: customer.id, to_account_id: store.id, amount: 1999, currency: 'USD' }, { waitMs: waitMsMax });
    assert.equal(paid.status, 200, paid.body);
    assertError(await api.transfer(merchant, { from_account_id: customer.id, to_account_id: store.id, amount: 99_999, currency: 'USD' }), 402, 'insufficient_funds');
    const question = { metrics: ['events', 'revenue'], date_range: '7d', filters: [['is', 'event:type', ['payment']]] };
    const totals = async (of: MerchantKeys): Promise<number[]> => {
      const answer = await otherApi.query(of, question);
      assert.equal(answer.status, 200, answer.body);
      return answer.json<{ results: { metrics: number[] }[] }>().results[0]?.metrics ?? [0, 0];
    };
    const counted = await waitFor('both payments counted', () => totals(merchant), (metrics) => metrics[0]! >= 2, countedMsMax, 200);
    assert.deepEqual(counted, [2, 10_000 + 1999], 'the funding and the payment; the refused transfer is no revenue');
    assert.deepEqual(await totals(idle), [0, 0], "another merchant's payments are not its revenue");
  });

  test('`tally ping` gets its pong from the ping responder of the processor role, over Kafka', { timeout: 60_000 }, async () => {
    const ping = await runTally(['ping'], { ...env, TALLY_DATA_DIR: processes.dataDir, TALLY_LOG_LEVEL: 'warn' }, 45_000);
    assert.equal(ping.code, 0, `tally ping exited ${ping.code}\n${ping.stdout}${ping.stderr}\n--- processor ---\n${processor.output().slice(-4_000)}`);
    assert.match(ping.stdout, /^\{"message":"pong"\} in \d+ ms \(tally\.ping\.requested → tally\.ping\.succeeded\)\n$/);
  });

  test('afterwards, per merchant: balances sum to 0, none below 0 without overdraft, each equals its succeeded transfers, none pending', { timeout: 120_000 }, async () => {
    let transfersSeen = 0;
    for (const merchant of merchants) {
      const accounts = await api.listAll(merchant, '/v1/accounts');
      const byCurrency = new Map<string, number>();
      for (const account of accounts) {
        const balance = account.balance as number;
        byCurrency.set(String(account.currency), (byCurrency.get(String(account.currency)) ?? 0) + balance);
        if (account.allow_overdraft !== true) assert.ok(balance >= 0, `${String(account.id)} is below zero without overdraft: ${balance}`);
        let replayed = 0;
        for (const transfer of await otherApi.listAll(merchant, `/v1/accounts/${String(account.id)}/transfers`)) {
          transfersSeen++;
          assert.notEqual(transfer.status, 'pending', `transfer ${String(transfer.id)} is still pending`);
          if (transfer.status !== 'succeeded') continue;
          if (transfer.to_account_id === account.id) replayed += transfer.amount as number;
          if (transfer.from_account_id === account.id) replayed -= transfer.amount as number;
        }
        assert.equal(balance, replayed, `${String(account.id)}: its balance is its succeeded credits minus debits`);
      }
      for (const [currency, sum] of byCurrency) assert.equal(sum, 0, `merchant ${merchant.id}: ${currency} balances sum to 0`);
    }
    assert.ok(transfersSeen > 50, `the tests above made transfers (${transfersSeen} listings seen)`);
  });
});
