// The LedgerStore contract: every adapter runs these cases (test/contracts/ledger-store.test.ts).
// settle() is the heart: contiguous offsets, the decision of each command against the state the
// batch finds (and makes), and the writes of transfers, entries, balances and the offset must hold
// together or not at all. Everything is scoped by merchant.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isTallyError } from '../../src/core/errors.ts';
import { balanceMin, transferAmountMax, type Account, type Decision, type TransferCommand } from '../../src/core/payments/ledger.ts';
import { LedgerConflictError, type IdempotencyRecord, type LedgerStore, type SettleBatch } from '../../src/core/ports/ledger-store.ts';

export interface LedgerStoreFixture {
  readonly store: LedgerStore;
  /** Closes the store and opens a new one over the same data; null when the adapter keeps nothing. */
  readonly reopen: (() => Promise<LedgerStore>) | null;
  dispose(): Promise<void>;
}

export interface LedgerStoreContractOptions {
  readonly name: string;
  /** A store over fresh, empty state. */
  create(): Promise<LedgerStoreFixture>;
}

const stream = 'ledger:payments.transfer.requested';
const merchant = 'm_shop';
const otherMerchant = 'm_other';
const createdMs = 1_700_000_000_000;
const settledMs = 1_700_000_100_000;

export function makeAccount(id: string, overrides: Partial<Account> = {}): Account {
  return {
    id, merchantId: merchant, currency: 'USD', name: null, allowOverdraft: false, metadata: {}, balance: 0n, createdMs, ...overrides,
  };
}

export function makeCommand(id: string, from: string, to: string, amount: bigint, overrides: Partial<TransferCommand> = {}): TransferCommand {
  return {
    id, merchantId: merchant, fromAccountId: from, toAccountId: to, amount, currency: 'USD', description: null, metadata: {},
    requestedMs: createdMs, ...overrides,
  };
}

/** Settles commands as the next contiguous range of partition 0, one offset per command. */
class Settler {
  next = 0;
  readonly #store: LedgerStore;
  constructor(store: LedgerStore) {
    this.#store = store;
  }

  async settle(...commands: TransferCommand[]): Promise<Decision[]> {
    const batch: SettleBatch = {
      stream, partition: 0, fromOffset: this.next, throughOffset: this.next + Math.max(commands.length, 1) - 1, commands, settledMs,
    };
    const decisions = await this.#store.settle(batch);
    this.next = batch.throughOffset + 1;
    return decisions;
  }
}

/** A funding account (overdraft) and two customer accounts; `a` starts with `funds`. */
async function fundedAccounts(store: LedgerStore, settler: Settler, funds: bigint): Promise<void> {
  await store.createAccount(makeAccount('fund', { allowOverdraft: true, createdMs: createdMs - 1 }));
  await store.createAccount(makeAccount('a'));
  await store.createAccount(makeAccount('b'));
  if (funds > 0n) await settler.settle(makeCommand('t_fund', 'fund', 'a', funds));
}

async function balances(store: LedgerStore, ...ids: string[]): Promise<(bigint | null)[]> {
  return Promise.all(ids.map(async (id) => (await store.getAccount(merchant, id))?.balance ?? null));
}

const isConflict = (error: unknown): boolean => error instanceof LedgerConflictError;
const isInvalidRequest = (error: unknown): boolean => isTallyError(error) && error.code === 'invalid_request';

type WithStore = (body: (fixture: LedgerStoreFixture) => Promise<void>) => Promise<void>;

export function runLedgerStoreContract(options: LedgerStoreContractOptions): void {
  const withStore: WithStore = async (body) => {
    const fixture = await options.create();
    try {
      await body(fixture);
    } finally {
      await fixture.dispose();
    }
  };

  describe(`LedgerStore contract: ${options.name}`, () => {
    describeAccounts(withStore);
    describePending(withStore);
    describeSettleOffsets(withStore);
    describeSettleDecisions(withStore);
    describeSettleProperty(withStore);
    describeListings(withStore);
    describeIdempotency(withStore);
    describePersistence(options);
  });
}

function describeAccounts(withStore: WithStore): void {
  test('an account round-trips; another merchant and an unknown id see nothing', () =>
    withStore(async ({ store }) => {
      const account = makeAccount('acc_1', { name: 'Wallet', allowOverdraft: true, metadata: { customer: 'c_9' } });
      await store.createAccount(account);
      assert.deepEqual(await store.getAccount(merchant, 'acc_1'), account);
      assert.equal(await store.getAccount(otherMerchant, 'acc_1'), null);
      assert.equal(await store.getAccount(merchant, 'acc_nope'), null);
      await store.ping();
    }));

  test('an id already taken, by this merchant or another, is account_exists and changes nothing', () =>
    withStore(async ({ store }) => {
      await store.createAccount(makeAccount('acc_1', { name: 'first' }));
      for (const merchantId of [merchant, otherMerchant]) {
        await assert.rejects(store.createAccount(makeAccount('acc_1', { merchantId, name: 'second' })),
          (error) => isTallyError(error) && error.code === 'account_exists' && error.status === 409);
      }
      assert.equal((await store.getAccount(merchant, 'acc_1'))?.name, 'first');
    }));

  test('a new account must start at zero: money enters only through transfers', () =>
    withStore(async ({ store }) => {
      await assert.rejects(store.createAccount(makeAccount('acc_1', { balance: 100n })), RangeError);
      await assert.rejects(store.createAccount(makeAccount('acc_2', { currency: 'usd' })), RangeError);
      assert.equal(await store.getAccount(merchant, 'acc_1'), null);
    }));

  test('listAccounts pages oldest first (ties by id) with a cursor, and shows only the merchant\'s accounts', () =>
    withStore(async ({ store }) => {
      await store.createAccount(makeAccount('acc_c', { createdMs: createdMs + 2 }));
      await store.createAccount(makeAccount('acc_b', { createdMs }));
      await store.createAccount(makeAccount('acc_x', { merchantId: otherMerchant, createdMs: createdMs + 1 }));
      await store.createAccount(makeAccount('acc_a', { createdMs: createdMs + 2 }));
      await store.createAccount(makeAccount('acc_d', { createdMs: createdMs + 3 }));
      const first = await store.listAccounts({ merchantId: merchant, limit: 2 });
      assert.deepEqual(first.items.map((account) => account.id), ['acc_b', 'acc_a']);
      assert.equal(first.hasMore, true);
      const second = await store.listAccounts({ merchantId: merchant, limit: 2, startingAfter: 'acc_a' });
      assert.deepEqual(second.items.map((account) => account.id), ['acc_c', 'acc_d']);
      assert.equal(second.hasMore, false);
      const all = await store.listAccounts({ merchantId: merchant, limit: 10, startingAfter: null });
      assert.deepEqual(all.items.map((account) => account.id), ['acc_b', 'acc_a', 'acc_c', 'acc_d']);
      assert.equal(all.hasMore, false);
      assert.deepEqual(await store.listAccounts({ merchantId: 'm_none', limit: 10 }), { items: [], hasMore: false });
      await assert.rejects(store.listAccounts({ merchantId: merchant, limit: 2, startingAfter: 'acc_x' }), isInvalidRequest, 'another merchant\'s account is no cursor');
      await assert.rejects(store.listAccounts({ merchantId: merchant, limit: 2, startingAfter: 'acc_nope' }), isInvalidRequest);
      await assert.rejects(store.listAccounts({ merchantId: merchant, limit: 0 }), RangeError);
    }));

  test('mutating a created or returned account does not change the stored one', () =>
    withStore(async ({ store }) => {
      const input = makeAccount('acc_1', { metadata: { a: '1' } });
      await store.createAccount(input);
      (input.metadata as Record<string, string>).a = 'changed';
      const read = await store.getAccount(merchant, 'acc_1');
      (read?.metadata as Record<string, string>).b = 'added';
      assert.deepEqual((await store.getAccount(merchant, 'acc_1'))?.metadata, { a: '1' });
    }));
}

function describePending(withStore: WithStore): void {
  test('recordPending stores a pending transfer that only its merchant sees', () =>
    withStore(async ({ store }) => {
      const command = makeCommand('t_1', 'a', 'b', 100n, { description: 'rent', metadata: { order: 'o_1' } });
      await store.recordPending(command);
      assert.deepEqual(await store.getTransfer(merchant, 't_1'), { ...command, status: 'pending', failureCode: null, settledMs: null });
      assert.equal(await store.getTransfer(otherMerchant, 't_1'), null);
      assert.equal(await store.getTransfer(merchant, 't_nope'), null);
    }));

  test('settling a pending transfer makes it final; recordPending never downgrades a final one', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 500n);
      const command = makeCommand('t_1', 'a', 'b', 200n);
      await store.recordPending(command);
      const [decision] = await settler.settle(command);
      assert.equal(decision?.kind, 'succeeded');
      await store.recordPending(command);
      await store.recordPending(makeCommand('t_1', 'a', 'b', 999n));
      assert.deepEqual(await store.getTransfer(merchant, 't_1'), { ...command, status: 'succeeded', failureCode: null, settledMs });
      assert.deepEqual(await balances(store, 'a', 'b'), [300n, 200n]);
    }));

  test('a second recordPending of a known id keeps the first', () =>
    withStore(async ({ store }) => {
      await store.recordPending(makeCommand('t_1', 'a', 'b', 100n));
      await store.recordPending(makeCommand('t_1', 'a', 'b', 700n));
      assert.equal((await store.getTransfer(merchant, 't_1'))?.amount, 100n);
    }));
}

function describeSettleOffsets(withStore: WithStore): void {
  test('a new store has settled nothing; settle moves the offset of its own stream and partition only', () =>
    withStore(async ({ store }) => {
      assert.equal(await store.settledOffset(stream, 0), -1);
      await store.settle({ stream, partition: 0, fromOffset: 0, throughOffset: 9, commands: [], settledMs });
      await store.settle({ stream, partition: 1, fromOffset: 0, throughOffset: 3, commands: [], settledMs });
      await store.settle({ stream: 'other:stream', partition: 0, fromOffset: 0, throughOffset: 1, commands: [], settledMs });
      assert.equal(await store.settledOffset(stream, 0), 9);
      assert.equal(await store.settledOffset(stream, 1), 3);
      assert.equal(await store.settledOffset('other:stream', 0), 1);
      assert.equal(await store.settledOffset(stream, 2), -1);
    }));

  test('a batch that skips ahead, overlaps or replays settled offsets is a conflict and changes nothing', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 1000n);
      const command = makeCommand('t_1', 'a', 'b', 100n);
      await store.settle({ stream, partition: 0, fromOffset: 1, throughOffset: 4, commands: [command], settledMs });
      const before = await balances(store, 'a', 'b');
      const attempts: [number, number][] = [[0, 0], [0, 4], [1, 2], [3, 6], [6, 8]];
      for (const [fromOffset, throughOffset] of attempts) {
        await assert.rejects(
          store.settle({ stream, partition: 0, fromOffset, throughOffset, commands: [makeCommand('t_2', 'a', 'b', 1n)], settledMs }),
          isConflict, `[${fromOffset}, ${throughOffset}] after 4`,
        );
      }
      assert.equal(await store.settledOffset(stream, 0), 4);
      assert.deepEqual(await balances(store, 'a', 'b'), before);
      assert.equal(await store.getTransfer(merchant, 't_2'), null);
      assert.equal((await store.listEntries(merchant, 'a')).length, 2);
    }));

  test('malformed batches are refused before anything changes', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 1000n);
      const bad: SettleBatch[] = [
        { stream, partition: 0, fromOffset: 1, throughOffset: 1, commands: [makeCommand('t_1', 'a', 'b', 0n)], settledMs },
        { stream, partition: 0, fromOffset: 1, throughOffset: 1, commands: [makeCommand('t_1', 'a', 'b', -5n)], settledMs },
        { stream, partition: 0, fromOffset: 1, throughOffset: 1, commands: [makeCommand('t_1', 'a', 'b', transferAmountMax + 1n)], settledMs },
        { stream, partition: 0, fromOffset: 1, throughOffset: 1, commands: [makeCommand('t_1', 'a', 'b', 1n), makeCommand('t_2', 'a', 'b', 1n)], settledMs },
        { stream, partition: 0, fromOffset: 2, throughOffset: 1, commands: [], settledMs },
        { stream, partition: -1, fromOffset: 1, throughOffset: 1, commands: [], settledMs },
      ];
      for (const batch of bad) await assert.rejects(store.settle(batch), RangeError);
      assert.equal(await store.settledOffset(stream, 0), 0);
      assert.deepEqual(await balances(store, 'a', 'b'), [1000n, 0n]);
    }));
}

function describeSettleDecisions(withStore: WithStore): void {
  test('each command gets one decision, in order; failures name their reason and write no entries', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 100n);
      await store.createAccount(makeAccount('eur', { currency: 'EUR' }));
      await store.createAccount(makeAccount('theirs', { merchantId: otherMerchant }));
      const decisions = await settler.settle(
        makeCommand('t_ok', 'a', 'b', 40n),
        makeCommand('t_poor', 'a', 'b', 61n),
        makeCommand('t_ghost', 'a', 'nobody', 1n),
        makeCommand('t_foreign', 'a', 'theirs', 1n),
        makeCommand('t_eur', 'a', 'eur', 1n),
        makeCommand('t_self', 'a', 'a', 1n),
        makeCommand('t_gbp', 'a', 'b', 1n, { currency: 'GBP' }),
      );
      assert.deepEqual(decisions.map((decision) => decision.kind), ['succeeded', 'failed', 'failed', 'failed', 'failed', 'failed', 'failed']);
      const codes = decisions.map((decision) => (decision.kind === 'failed' ? decision.transfer.failureCode : null));
      assert.deepEqual(codes, [null, 'insufficient_funds', 'account_not_found', 'account_not_found', 'currency_mismatch', 'same_account', 'currency_mismatch']);
      for (const id of ['t_poor', 't_ghost', 't_foreign', 't_eur', 't_self', 't_gbp']) {
        const stored = await store.getTransfer(merchant, id);
        assert.equal(stored?.status, 'failed', id);
        assert.equal(stored?.settledMs, settledMs, id);
      }
      assert.deepEqual(await balances(store, 'a', 'b', 'eur'), [60n, 40n, 0n]);
      assert.equal((await store.getAccount(otherMerchant, 'theirs'))?.balance, 0n);
      assert.deepEqual((await store.listEntries(merchant, 'a')).map((entry) => entry.transferId), ['t_fund', 't_ok']);
    }));

  test('a succeeded transfer writes one debit and one credit; balanceAfter chains per account', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 1000n);
      const [decision] = await settler.settle(makeCommand('t_1', 'a', 'b', 250n));
      assert.equal(decision?.kind, 'succeeded');
      if (decision?.kind !== 'succeeded') return;
      assert.deepEqual(decision.entries, [
        { transferId: 't_1', accountId: 'a', merchantId: merchant, amount: -250n, balanceAfter: 750n, settledMs },
        { transferId: 't_1', accountId: 'b', merchantId: merchant, amount: 250n, balanceAfter: 250n, settledMs },
      ]);
      await settler.settle(makeCommand('t_2', 'b', 'a', 50n), makeCommand('t_3', 'a', 'b', 700n));
      const entriesOfA = await store.listEntries(merchant, 'a');
      assert.deepEqual(entriesOfA.map((entry) => [entry.transferId, entry.amount, entry.balanceAfter]), [
        ['t_fund', 1000n, 1000n], ['t_1', -250n, 750n], ['t_2', 50n, 800n], ['t_3', -700n, 100n],
      ]);
      assert.deepEqual(await balances(store, 'fund', 'a', 'b'), [-1000n, 100n, 900n]);
      assert.deepEqual(await store.listEntries(otherMerchant, 'a'), []);
      assert.deepEqual(await store.listEntries(merchant, 'nobody'), []);
    }));

  test('commands of one batch see each other\'s debits and credits', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 100n);
      await store.createAccount(makeAccount('c'));
      const decisions = await settler.settle(
        makeCommand('t_1', 'a', 'b', 60n),
        makeCommand('t_2', 'a', 'c', 60n),
        makeCommand('t_3', 'b', 'c', 60n),
        makeCommand('t_4', 'b', 'c', 1n),
      );
      assert.deepEqual(decisions.map((decision) => decision.kind), ['succeeded', 'failed', 'succeeded', 'failed']);
      assert.deepEqual(await balances(store, 'a', 'b', 'c'), [40n, 0n, 60n]);
    }));

  test('a failed transfer stays failed when redelivered later, even once the funds are there', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 0n);
      const poor = makeCommand('t_poor', 'a', 'b', 500n);
      assert.equal((await settler.settle(poor))[0]?.kind, 'failed');
      await settler.settle(makeCommand('t_fund', 'fund', 'a', 1000n));
      const [redelivered] = await settler.settle({ ...poor, requestedMs: createdMs + 5 });
      assert.equal(redelivered?.kind, 'replayed');
      assert.equal(redelivered?.kind === 'replayed' ? redelivered.transfer.status : null, 'failed');
      assert.equal((await store.getTransfer(merchant, 't_poor'))?.failureCode, 'insufficient_funds');
      assert.deepEqual(await balances(store, 'a', 'b'), [1000n, 0n]);
    }));

  test('a succeeded transfer redelivered in a later batch or the same one is replayed, not applied again', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 1000n);
      const command = makeCommand('t_1', 'a', 'b', 100n);
      const decisions = await settler.settle(command, command);
      assert.deepEqual(decisions.map((decision) => decision.kind), ['succeeded', 'replayed']);
      const [again] = await settler.settle(command);
      assert.equal(again?.kind === 'replayed' ? again.transfer.status : null, 'succeeded');
      assert.deepEqual(await balances(store, 'a', 'b'), [900n, 100n]);
      assert.deepEqual((await store.listEntries(merchant, 'b')).map((entry) => entry.transferId), ['t_1']);
    }));

  test('the same id with another payload is a conflict that leaves the stored transfer untouched', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 1000n);
      await store.createAccount(makeAccount('theirs_1', { merchantId: otherMerchant, allowOverdraft: true }));
      await store.createAccount(makeAccount('theirs_2', { merchantId: otherMerchant }));
      const original = makeCommand('t_1', 'a', 'b', 100n);
      const failedOriginal = makeCommand('t_2', 'a', 'b', 5000n);
      await store.recordPending(makeCommand('t_3', 'a', 'b', 10n));
      await settler.settle(original, failedOriginal);
      const decisions = await settler.settle(
        { ...original, amount: 101n },
        { ...failedOriginal, description: 'now with a description' },
        makeCommand('t_3', 'a', 'b', 11n),
        makeCommand('t_1', 'theirs_1', 'theirs_2', 100n, { merchantId: otherMerchant }),
      );
      assert.deepEqual(decisions.map((decision) => decision.kind), ['conflict', 'conflict', 'conflict', 'conflict']);
      assert.equal(decisions[0]?.kind === 'conflict' ? decisions[0].command.amount : null, 101n);
      assert.deepEqual(await store.getTransfer(merchant, 't_1'), { ...original, status: 'succeeded', failureCode: null, settledMs });
      assert.equal((await store.getTransfer(merchant, 't_2'))?.description, null);
      assert.equal((await store.getTransfer(merchant, 't_3'))?.status, 'pending');
      assert.equal(await store.getTransfer(otherMerchant, 't_1'), null, 'the other merchant\'s command stored nothing');
      assert.deepEqual(await balances(store, 'a', 'b'), [900n, 100n]);
      assert.equal((await store.getAccount(otherMerchant, 'theirs_2'))?.balance, 0n);
    }));

  test('an overdraft account may go below zero; one without never does', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 0n);
      const decisions = await settler.settle(
        makeCommand('t_1', 'fund', 'a', 300n),
        makeCommand('t_2', 'fund', 'b', 200n),
        makeCommand('t_3', 'a', 'b', 301n),
        makeCommand('t_4', 'a', 'b', 300n),
        makeCommand('t_5', 'a', 'b', 1n),
      );
      assert.deepEqual(decisions.map((decision) => decision.kind), ['succeeded', 'succeeded', 'failed', 'succeeded', 'failed']);
      assert.deepEqual(await balances(store, 'fund', 'a', 'b'), [-500n, 0n, 500n]);
    }));

  test('a balance that would pass 64 bits fails the transfer with balance_overflow; balances near the bound are exact', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 0n);
      await store.createAccount(makeAccount('fund_2', { allowOverdraft: true }));
      // 1,024 maximal debits leave the funding account just above -2^63; the next one would pass it.
      const commands = Array.from({ length: 1025 }, (_, index) => makeCommand(`t_${index}`, 'fund', index % 2 === 0 ? 'a' : 'b', transferAmountMax));
      const decisions = await settler.settle(...commands);
      assert.equal(decisions.filter((decision) => decision.kind === 'succeeded').length, 1024);
      const last = decisions[1024];
      assert.equal(last?.kind === 'failed' ? last.transfer.failureCode : null, 'balance_overflow');
      const [fund, a, b] = await balances(store, 'fund', 'a', 'b');
      assert.equal(fund, -1024n * transferAmountMax);
      assert.ok(fund! > balanceMin);
      assert.equal(a! + b!, 1024n * transferAmountMax);
      // The credit side is bounded too: `a` holds 512 maximal amounts; 512 more fit, the 513th would pass 2^63 − 1.
      const credits = Array.from({ length: 514 }, (_, index) => makeCommand(`c_${index}`, 'fund_2', 'a', transferAmountMax));
      const creditDecisions = await settler.settle(...credits);
      assert.equal(creditDecisions.filter((decision) => decision.kind === 'succeeded').length, 512);
      assert.deepEqual(creditDecisions.slice(512).map((decision) => (decision.kind === 'failed' ? decision.transfer.failureCode : null)), ['balance_overflow', 'balance_overflow']);
    }));
}

/** Random batches among a few accounts: the ledger's invariants hold after every settle. */
function describeSettleProperty(withStore: WithStore): void {
  const accountIds = ['fund', 'a', 'b', 'c'];
  const commandArbitrary = fc.record({
    from: fc.constantFrom(...accountIds),
    to: fc.constantFrom(...accountIds, 'ghost'),
    amount: fc.bigInt({ min: 1n, max: 400n }),
    /** Some draws redeliver an earlier command verbatim, to mix replays in. */
    redeliver: fc.option(fc.nat(), { freq: 5 }),
  });

  test('sum of balances stays zero, no account without overdraft goes negative, balances replay their entries', () =>
    withStore(async ({ store }) => {
      await store.createAccount(makeAccount('fund', { allowOverdraft: true }));
      for (const id of ['a', 'b', 'c']) await store.createAccount(makeAccount(id));
      const settler = new Settler(store);
      let next = 0;
      const issued: TransferCommand[] = [];
      await fc.assert(fc.asyncProperty(fc.array(commandArbitrary, { minLength: 1, maxLength: 12 }), async (drawn) => {
        const commands = drawn.map((draw) => (draw.redeliver !== null && issued.length > 0
          ? issued[draw.redeliver % issued.length]!
          : makeCommand(`t_${next++}`, draw.from, draw.to, draw.amount)));
        issued.push(...commands);
        await settler.settle(...commands);
        let sum = 0n;
        for (const id of accountIds) {
          const account = await store.getAccount(merchant, id);
          assert.ok(account);
          sum += account.balance;
          if (!account.allowOverdraft) assert.ok(account.balance >= 0n, `${id} is ${account.balance}`);
          const entries = await store.listEntries(merchant, id);
          let replayed = 0n;
          for (const entry of entries) {
            replayed += entry.amount;
            assert.equal(entry.balanceAfter, replayed, `${id} entry ${entry.transferId}`);
            if (!account.allowOverdraft) assert.ok(entry.balanceAfter >= 0n);
          }
          assert.equal(account.balance, replayed);
        }
        assert.equal(sum, 0n);
      }), { numRuns: 40, seed: 4 });
    }));
}

function describeListings(withStore: WithStore): void {
  test('listAccountTransfers: debits, credits, failed and pending, newest first, paged by cursor, per merchant', () =>
    withStore(async ({ store }) => {
      const settler = new Settler(store);
      await fundedAccounts(store, settler, 0n);
      await store.createAccount(makeAccount('theirs', { merchantId: otherMerchant }));
      await settler.settle(
        makeCommand('t_1', 'fund', 'a', 100n, { requestedMs: createdMs + 1 }),
        makeCommand('t_2', 'a', 'b', 30n, { requestedMs: createdMs + 2 }),
        makeCommand('t_3', 'b', 'a', 500n, { requestedMs: createdMs + 3 }),
        makeCommand('t_4', 'a', 'a', 1n, { requestedMs: createdMs + 3 }),
        makeCommand('t_5', 'fund', 'b', 1n, { requestedMs: createdMs + 4 }),
        makeCommand('t_6', 'theirs', 'a', 1n, { merchantId: otherMerchant, requestedMs: createdMs + 5 }),
      );
      await store.recordPending(makeCommand('t_7', 'b', 'a', 5n, { requestedMs: createdMs + 6 }));
      const all = await store.listAccountTransfers({ merchantId: merchant, accountId: 'a', limit: 10 });
      assert.deepEqual(all.items.map((transfer) => [transfer.id, transfer.status]), [
        ['t_7', 'pending'], ['t_4', 'failed'], ['t_3', 'failed'], ['t_2', 'succeeded'], ['t_1', 'succeeded'],
      ]);
      assert.equal(all.hasMore, false);
      const pages: string[][] = [];
      let cursor: string | null = null;
      for (;;) {
        const page = await store.listAccountTransfers({ merchantId: merchant, accountId: 'a', limit: 2, startingAfter: cursor });
        pages.push(page.items.map((transfer) => transfer.id));
        if (!page.hasMore) break;
        cursor = page.items[page.items.length - 1]!.id;
      }
      assert.deepEqual(pages, [['t_7', 't_4'], ['t_3', 't_2'], ['t_1']]);
      assert.deepEqual((await store.listAccountTransfers({ merchantId: otherMerchant, accountId: 'a', limit: 10 })).items.map((transfer) => transfer.id), ['t_6']);
      await assert.rejects(store.listAccountTransfers({ merchantId: merchant, accountId: 'a', limit: 2, startingAfter: 't_5' }), isInvalidRequest, 't_5 does not name a');
      await assert.rejects(store.listAccountTransfers({ merchantId: merchant, accountId: 'a', limit: 2, startingAfter: 't_6' }), isInvalidRequest, 't_6 is another merchant\'s');
      assert.deepEqual(await store.listAccountTransfers({ merchantId: merchant, accountId: 'nobody', limit: 5 }), { items: [], hasMore: false });
    }));
}

function describeIdempotency(withStore: WithStore): void {
  const record = (key: string, overrides: Partial<IdempotencyRecord> = {}): IdempotencyRecord => ({
    merchantId: merchant, key, requestHash: 'hash-1', status: 202, body: '{"id":"t_1"}', createdMs, ...overrides,
  });

  test('the first record of a key wins; keys are per merchant', () =>
    withStore(async ({ store }) => {
      assert.equal(await store.getIdempotency(merchant, 'k1'), null);
      assert.deepEqual(await store.putIdempotency(record('k1')), record('k1'));
      const second = record('k1', { requestHash: 'hash-2', status: 422, body: '{}', createdMs: createdMs + 1 });
      assert.deepEqual(await store.putIdempotency(second), record('k1'));
      assert.deepEqual(await store.getIdempotency(merchant, 'k1'), record('k1'));
      const theirs = record('k1', { merchantId: otherMerchant, requestHash: 'hash-3' });
      assert.deepEqual(await store.putIdempotency(theirs), theirs);
      assert.equal((await store.getIdempotency(merchant, 'k1'))?.requestHash, 'hash-1');
    }));

  test('pruning drops records created before the cutoff and counts them', () =>
    withStore(async ({ store }) => {
      await store.putIdempotency(record('old_1', { createdMs: 1000 }));
      await store.putIdempotency(record('old_2', { createdMs: 1999, merchantId: otherMerchant }));
      await store.putIdempotency(record('edge', { createdMs: 2000 }));
      await store.putIdempotency(record('new', { createdMs: 3000 }));
      assert.equal(await store.pruneIdempotency(2000), 2);
      assert.equal(await store.getIdempotency(merchant, 'old_1'), null);
      assert.equal(await store.getIdempotency(otherMerchant, 'old_2'), null);
      assert.ok(await store.getIdempotency(merchant, 'edge'));
      assert.ok(await store.getIdempotency(merchant, 'new'));
      assert.equal(await store.pruneIdempotency(2000), 0);
      assert.deepEqual(await store.putIdempotency(record('old_1', { createdMs: 5000 })), record('old_1', { createdMs: 5000 }), 'a pruned key is free again');
    }));
}

function describePersistence(options: LedgerStoreContractOptions): void {
  test('accounts, transfers, entries, offsets and idempotency records survive closing and reopening', async (t) => {
    const fixture = await options.create();
    try {
      if (!fixture.reopen) {
        t.skip('the adapter keeps no state across instances');
        return;
      }
      const settler = new Settler(fixture.store);
      await fundedAccounts(fixture.store, settler, 700n);
      await settler.settle(makeCommand('t_1', 'a', 'b', 200n), makeCommand('t_2', 'a', 'b', 9000n));
      await fixture.store.recordPending(makeCommand('t_3', 'b', 'a', 1n));
      await fixture.store.putIdempotency({ merchantId: merchant, key: 'k1', requestHash: 'h', status: 202, body: '{}', createdMs });
      const store = await fixture.reopen();
      assert.deepEqual(await balances(store, 'fund', 'a', 'b'), [-700n, 500n, 200n]);
      assert.equal(await store.settledOffset(stream, 0), settler.next - 1);
      assert.equal((await store.getTransfer(merchant, 't_2'))?.failureCode, 'insufficient_funds');
      assert.equal((await store.getTransfer(merchant, 't_3'))?.status, 'pending');
      assert.deepEqual((await store.listEntries(merchant, 'a')).map((entry) => entry.balanceAfter), [700n, 500n]);
      assert.equal((await store.getIdempotency(merchant, 'k1'))?.status, 202);
      // And the reopened store keeps deciding from where it was.
      const [redelivered] = await store.settle({ stream, partition: 0, fromOffset: settler.next, throughOffset: settler.next, commands: [makeCommand('t_1', 'a', 'b', 200n)], settledMs });
      assert.equal(redelivered?.kind, 'replayed');
    } finally {
      await fixture.dispose();
    }
  });

  test('a closed store refuses calls', async () => {
    const fixture = await options.create();
    try {
      await fixture.store.close();
      await assert.rejects(fixture.store.ping(), /closed/);
      await assert.rejects(fixture.store.settledOffset(stream, 0), /closed/);
    } finally {
      await fixture.dispose();
    }
  });
}
