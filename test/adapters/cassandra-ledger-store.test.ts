// The LedgerStore contract on a real Cassandra, and what only this adapter has to get right: a
// member that dies between claiming a batch and finishing it, a zombie that applies an old batch
// late, two members settling one range, credits arriving from many partitions at once while the
// home partition debits, and one transfer id reaching two partitions with two payloads.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CassandraLedgerStore, ledgerStoreSchema, type LedgerFaults, type LedgerStep } from '../../src/adapters/cassandra/ledger-store.ts';
import type { CassandraSession } from '../../src/adapters/cassandra/session.ts';
import type { Decision, TransferCommand } from '../../src/core/payments/ledger.ts';
import { LedgerConflictError, type LedgerStore, type SettleBatch } from '../../src/core/ports/ledger-store.ts';
import { makeAccount, makeCommand, runLedgerStoreContract } from '../contracts/ledger-store.contract.ts';
import { cassandraFixture, connectTestSession } from '../support/cassandra.ts';
import { enginesMissing } from '../support/engines.ts';

const stream = 'ledger:payments.transfer.requested';
const merchant = 'm_shop';
const settledMs = 1_700_000_100_000;

/** A fresh keyspace with the ledger schema; stores opened on it share the session. */
async function withKeyspace(body: (session: CassandraSession) => Promise<void>): Promise<void> {
  const session = await connectTestSession('t_ledger');
  try {
    await session.createKeyspace();
    await session.migrate(ledgerStoreSchema);
    await body(session);
  } finally {
    await session.dropKeyspace().finally(() => session.close());
  }
}

/** Crashes (throws) at one step of the next settle that reaches it, once. */
function crashAt(step: LedgerStep): LedgerFaults & { crashed: boolean } {
  return {
    crashed: false,
    async reached(at) {
      if (at !== step || this.crashed) return;
      this.crashed = true;
      throw new Error(`crash at ${step}`);
    },
  };
}

function batchOf(partition: number, fromOffset: number, commands: TransferCommand[]): SettleBatch {
  return { stream, partition, fromOffset, throughOffset: fromOffset + Math.max(commands.length, 1) - 1, commands, settledMs };
}

async function balanceOf(store: LedgerStore, id: string): Promise<bigint | undefined> {
  return (await store.getAccount(merchant, id))?.balance;
}

/** fund (overdraft) → each account gets `funds` in partition 0's first batch. */
async function openAccounts(store: LedgerStore, ids: readonly string[], funds: bigint): Promise<number> {
  await store.createAccount(makeAccount('fund', { allowOverdraft: true }));
  for (const id of ids) await store.createAccount(makeAccount(id));
  if (funds === 0n) return 0;
  const commands = ids.map((id) => makeCommand(`t_fund_${id}`, 'fund', id, funds));
  await store.settle(batchOf(0, 0, commands));
  return commands.length;
}

const missing = await enginesMissing('cassandra');

if (missing) {
  test('Cassandra ledger store', (t) => {
    t.skip(missing);
  });
} else {
  runLedgerStoreContract({
    name: 'cassandra',
    create: () => cassandraFixture('t_ledger', ledgerStoreSchema, (session) => CassandraLedgerStore.open({ session })),
  });

  describe('cassandra ledger store: crashes, zombies and concurrent partitions', () => {
    for (const step of ['claimed', 'applied'] as const) {
      test(`a member that dies once its batch is ${step} leaves it to the next, who finishes it exactly once`, () =>
        withKeyspace(async (session) => {
          const faults = crashAt(step);
          const dying = await CassandraLedgerStore.open({ session, faults });
          const next = await CassandraLedgerStore.open({ session });
          const used = await openAccounts(next, ['a', 'b'], 500n);
          const batch = batchOf(0, used, [makeCommand('t_1', 'a', 'b', 200n), makeCommand('t_2', 'b', 'a', 50n), makeCommand('t_3', 'a', 'b', 10_000n)]);
          await assert.rejects(dying.settle(batch), /crash at/);
          assert.equal(faults.crashed, true);
          // The next member's own try at the range meets the pending batch, finishes it and yields.
          await assert.rejects(next.settle(batch), LedgerConflictError);
          assert.equal(await next.settledOffset(stream, 0), batch.throughOffset);
          assert.deepEqual([await balanceOf(next, 'a'), await balanceOf(next, 'b')], [350n, 650n]);
          assert.deepEqual((await next.listEntries(merchant, 'a')).map((entry) => entry.balanceAfter), [500n, 300n, 350n]);
          assert.equal((await next.getTransfer(merchant, 't_3'))?.failureCode, 'insufficient_funds');
          // Redelivered later, the same commands are answered, never applied again.
          const again = await next.settle(batchOf(0, batch.throughOffset + 1, batch.commands.slice()));
          assert.deepEqual(again.map((decision) => decision.kind), ['replayed', 'replayed', 'replayed']);
          assert.deepEqual([await balanceOf(next, 'a'), await balanceOf(next, 'b')], [350n, 650n]);
        }));
    }

    test('a zombie that applies its batch after the partition moved on changes nothing', () =>
      withKeyspace(async (session) => {
        let release!: () => void;
        const paused = new Promise<void>((resolve) => {
          release = resolve;
        });
        let reachedApply!: () => void;
        const atApply = new Promise<void>((resolve) => {
          reachedApply = resolve;
        });
        const zombie = await CassandraLedgerStore.open({
          session,
          faults: {
            async reached(step) {
              if (step !== 'claimed') return;
              reachedApply();
              await paused;
            },
          },
        });
        const owner = await CassandraLedgerStore.open({ session });
        const used = await openAccounts(owner, ['a', 'b'], 1000n);
        const first = batchOf(0, used, [makeCommand('t_1', 'a', 'b', 100n)]);
        const zombieSettle = zombie.settle(first);
        await atApply;
        // The new owner finds the zombie's batch pending, finishes it, then settles two more batches.
        assert.equal(await owner.settledOffset(stream, 0), first.throughOffset);
        await owner.settle(batchOf(0, first.throughOffset + 1, [makeCommand('t_2', 'a', 'b', 300n)]));
        await owner.settle(batchOf(0, first.throughOffset + 2, [makeCommand('t_3', 'b', 'a', 50n)]));
        release();
        await zombieSettle; // it applies its intent again, late, and its finish finds nothing to do
        assert.deepEqual([await balanceOf(owner, 'a'), await balanceOf(owner, 'b')], [650n, 1350n]);
        assert.equal(await owner.settledOffset(stream, 0), first.throughOffset + 2);
        assert.deepEqual((await owner.listEntries(merchant, 'b')).map((entry) => entry.balanceAfter), [1000n, 1100n, 1400n, 1350n]);
      }));

    test('two members settling one range: exactly one applies it, the other is told to reload', () =>
      withKeyspace(async (session) => {
        const [left, right] = await Promise.all([CassandraLedgerStore.open({ session }), CassandraLedgerStore.open({ session })]);
        const used = await openAccounts(left, ['a', 'b'], 1000n);
        const commands = Array.from({ length: 20 }, (_, index) => makeCommand(`t_${index}`, 'a', 'b', 10n));
        const outcomes = await Promise.allSettled([left.settle(batchOf(0, used, commands)), right.settle(batchOf(0, used, commands))]);
        const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
        const lost = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
        assert.equal(won.length, 1, 'exactly one member settles the range');
        assert.ok(lost[0]!.reason instanceof LedgerConflictError, String(lost[0]!.reason));
        assert.deepEqual([await balanceOf(left, 'a'), await balanceOf(left, 'b')], [800n, 1200n]);
        assert.equal((await left.listEntries(merchant, 'b')).length, 21);
      }));

    test('credits from many partitions at once, while the home partition debits, lose nothing and never overdraw', () =>
      withKeyspace(async (session) => {
        const partitions = 4;
        const stores = await Promise.all(Array.from({ length: partitions + 1 }, () => CassandraLedgerStore.open({ session })));
        const payers = Array.from({ length: partitions }, (_, index) => `payer_${index}`);
        const used = await openAccounts(stores[0]!, [...payers, 'shop'], 0n);
        await stores[0]!.settle(batchOf(0, used, payers.map((payer) => makeCommand(`t_fund_more_${payer}`, 'fund', payer, 10_000n))));
        // Partitions 1..4 each pay the shop 40 × 7 in 8 batches; partition 5 (the shop's home)
        // meanwhile tries to pay out 30 from the shop, 40 times.
        const credits = payers.map(async (payer, index) => {
          for (let round = 0; round < 8; round++) {
            const commands = Array.from({ length: 5 }, (_, n) => makeCommand(`t_${payer}_${round}_${n}`, payer, 'shop', 7n));
            await stores[index]!.settle(batchOf(index + 1, round * 5, commands));
          }
        });
        const payouts = (async () => {
          const decisions: Decision[] = [];
          for (let round = 0; round < 40; round++) {
            decisions.push(...(await stores[partitions]!.settle(batchOf(partitions + 1, round, [makeCommand(`t_payout_${round}`, 'shop', 'fund', 30n)]))));
          }
          return decisions;
        })();
        await Promise.all(credits);
        const decided = await payouts;
        const paidOut = BigInt(decided.filter((decision) => decision.kind === 'succeeded').length) * 30n;
        const shop = stores[0]!;
        assert.equal(await balanceOf(shop, 'shop'), BigInt(partitions * 40 * 7) - paidOut, 'every credit counted once');
        for (const payer of payers) assert.equal(await balanceOf(shop, payer), 10_000n - 280n);
        // The chain agrees with every decision (listEntries checks each debit) and never dips below zero.
        const entries = await shop.listEntries(merchant, 'shop');
        assert.equal(entries.length, partitions * 40 + Number(paidOut / 30n));
        assert.ok(entries.every((entry) => entry.balanceAfter >= 0n), 'no prefix of the shop\'s chain is negative');
        assert.equal(entries.at(-1)?.balanceAfter, await balanceOf(shop, 'shop'));
        let total = 0n;
        for (const id of ['fund', 'shop', ...payers]) total += (await balanceOf(shop, id))!;
        assert.equal(total, 0n, 'the sum of balances stays zero');
      }));

    test('a pending record that names its partition is that partition\'s claim: it settles there and nowhere else', () =>
      withKeyspace(async (session) => {
        const store = await CassandraLedgerStore.open({ session });
        await openAccounts(store, ['a', 'b'], 1000n);
        const command = makeCommand('t_api', 'a', 'b', 100n);
        await store.recordPending(command, { stream, partition: 3 });
        assert.equal((await store.getTransfer(merchant, 't_api'))?.status, 'pending');
        // The same command reaching another partition (a wrongly keyed producer) is refused there.
        const [elsewhere] = await store.settle(batchOf(4, 0, [command]));
        assert.equal(elsewhere?.kind, 'conflict');
        const [home] = await store.settle(batchOf(3, 0, [command]));
        assert.equal(home?.kind, 'succeeded');
        assert.deepEqual([await balanceOf(store, 'a'), await balanceOf(store, 'b')], [900n, 1100n]);
        const listed = await store.listAccountTransfers({ merchantId: merchant, accountId: 'b', limit: 10 });
        assert.deepEqual(listed.items.map((transfer) => [transfer.id, transfer.status]), [['t_fund_b', 'succeeded'], ['t_api', 'succeeded']], 'one requestedMs: newest first ties by id, descending');
      }));

    test('one transfer id on two partitions with two payloads is applied once, even while the first is undecided', () =>
      withKeyspace(async (session) => {
        // Partition 1 holds the id and stops before its writes; partition 2 meets the id undecided.
        let release!: () => void;
        const paused = new Promise<void>((resolve) => {
          release = resolve;
        });
        let claimed!: () => void;
        const atClaimed = new Promise<void>((resolve) => {
          claimed = resolve;
        });
        const left = await CassandraLedgerStore.open({
          session,
          faults: {
            async reached(step) {
              if (step !== 'claimed') return;
              claimed();
              await paused;
            },
          },
        });
        const right = await CassandraLedgerStore.open({ session });
        await openAccounts(right, ['a', 'b', 'c'], 1000n);
        const fromA = left.settle(batchOf(1, 0, [makeCommand('t_same', 'a', 'c', 100n)]));
        await atClaimed;
        const fromB = await right.settle(batchOf(2, 0, [makeCommand('t_same', 'b', 'c', 200n)]));
        release();
        assert.deepEqual([(await fromA)[0]!.kind, fromB[0]!.kind], ['succeeded', 'conflict']);
        assert.deepEqual([await balanceOf(right, 'a'), await balanceOf(right, 'b'), await balanceOf(right, 'c')], [900n, 1000n, 1100n]);
        assert.equal((await right.listEntries(merchant, 'c')).filter((entry) => entry.transferId === 't_same').length, 1);
      }));
  });
}
