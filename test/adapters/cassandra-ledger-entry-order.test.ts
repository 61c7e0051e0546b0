// The chain listEntries builds on Cassandra from per-source entries (no Cassandra needed: pure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { orderEntries, type StoredEntry } from '../../src/adapters/cassandra/ledger/entry-order.ts';

const home = 'ledger:t/0';
const other = 'ledger:t/1';
const third = 'ledger:t/2';

function credit(source: string, position: number, amount: bigint, transferId = `c_${source}_${position}`): StoredEntry {
  return { source, position, transferId, merchantId: 'm', amount, decidedBalance: null, seen: null, settledMs: 0 };
}

function debit(position: number, amount: bigint, decidedBalance: bigint, seen: Record<string, number>): StoredEntry {
  return { source: home, position, transferId: `d_${position}`, merchantId: 'm', amount: -amount, decidedBalance, seen: new Map(Object.entries(seen)), settledMs: 0 };
}

test('each debit follows exactly the credits it counted; the running balance is the one decided', () => {
  const chain = orderEntries([
    // Stored order is not the chain order: the merge decides it.
    credit(other, 9, 40n),
    debit(3, 70n, 130n, { [other]: 5, [third]: 2 }),
    credit(third, 2, 50n),
    credit(other, 5, 50n),
    credit(home, 1, 100n),
    debit(4, 30n, 100n, { [other]: 5, [third]: 2 }),
    credit(third, 7, 1n),
  ]);
  assert.deepEqual(chain.mismatches, []);
  assert.deepEqual(chain.entries.map((entry) => [entry.transferId, entry.balanceAfter]), [
    ['c_ledger:t/0_1', 100n], ['c_ledger:t/1_5', 150n], ['c_ledger:t/2_2', 200n], ['d_3', 130n], ['d_4', 100n], ['c_ledger:t/1_9', 140n], ['c_ledger:t/2_7', 141n],
  ]);
});

test('a debit decided against a balance the entries do not give is reported', () => {
  const chain = orderEntries([credit(other, 1, 100n), debit(2, 80n, 70n, { [other]: 1 })]);
  assert.equal(chain.mismatches.length, 1);
  assert.match(chain.mismatches[0]!, /d_2 debited with a balance of 70 decided, 20 along the entries/);
});

test('a debit that counted a credit the entries do not hold is reported, not reordered away', () => {
  // The debit saw position 4 of the other source; only position 1 exists: its balance cannot match.
  const chain = orderEntries([credit(other, 1, 10n), debit(2, 50n, 10n, { [other]: 4 })]);
  assert.ok(chain.mismatches.length > 0);
  assert.equal(chain.entries.length, 2);
});

test('credits alone, from several sources, all land and sum up', () => {
  const chain = orderEntries([credit(third, 3, 5n), credit(other, 1, 7n), credit(home, 2, 11n)]);
  assert.deepEqual(chain.mismatches, []);
  assert.equal(chain.entries.at(-1)?.balanceAfter, 23n);
  assert.equal(new Set(chain.entries.map((entry) => entry.transferId)).size, 3);
});
