// Runs the LedgerStore contract against the memory and SQLite adapters, plus what only SQLite has:
// its place in the shared store.db (schema component 'ledger') and its schema guard.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLedgerStore } from '../../src/adapters/memory/ledger-store.ts';
import { openDatabase } from '../../src/adapters/sqlite/database.ts';
import { SqliteLedgerStore } from '../../src/adapters/sqlite/ledger-store.ts';
import { SqliteRollupStore } from '../../src/adapters/sqlite/rollup-store.ts';
import { isTallyError } from '../../src/core/errors.ts';
import type { IdempotencyRecord } from '../../src/core/ports/ledger-store.ts';
import { makeAccount, makeCommand, runLedgerStoreContract, type LedgerStoreFixture } from './ledger-store.contract.ts';

function sqliteFixture(): LedgerStoreFixture {
  const directory = mkdtempSync(join(tmpdir(), 'tally-ledger-'));
  const path = join(directory, 'store.db');
  let current = SqliteLedgerStore.create({ db: path });
  return {
    store: current,
    async reopen() {
      await current.close();
      current = SqliteLedgerStore.create({ db: path });
      return current;
    },
    async dispose() {
      await current.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

runLedgerStoreContract({
  name: 'memory',
  create: async () => {
    const store = MemoryLedgerStore.create();
    return { store, reopen: null, dispose: () => store.close() };
  },
});
runLedgerStoreContract({ name: 'sqlite', create: async () => sqliteFixture() });

describe('sqlite ledger store in the shared database', () => {
  test('it opens beside the other stores on one connection and leaves that connection open', async () => {
    const db = openDatabase(':memory:');
    try {
      const rollups = SqliteRollupStore.create({ db, logicVersion: 'analytics@1' });
      const ledger = SqliteLedgerStore.create({ db });
      await ledger.createAccount(makeAccount('acc_1'));
      await Promise.all([ledger.close(), rollups.close()]);
      assert.equal(db.isOpen, true);
      const versions = db.prepare('SELECT component, version FROM tally_schema ORDER BY component').all();
      assert.deepEqual(versions.map((row) => [row.component, row.version]), [['ledger', 1], ['rollups', 2]]);
      const reopened = SqliteLedgerStore.create({ db });
      assert.equal((await reopened.getAccount('m_shop', 'acc_1'))?.balance, 0n);
      await reopened.close();
    } finally {
      db.close();
    }
  });

  test('a database written by a newer ledger schema is refused rather than misread', () => {
    const directory = mkdtempSync(join(tmpdir(), 'tally-ledger-schema-'));
    try {
      const db = openDatabase(join(directory, 'store.db'));
      db.exec('CREATE TABLE tally_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL) STRICT');
      db.exec("INSERT INTO tally_schema VALUES ('ledger', 99)");
      assert.throws(() => SqliteLedgerStore.create({ db }), /newer/);
      db.close();
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('the table constraints refuse a negative balance without overdraft even if a write tried one', () => {
    const db = openDatabase(':memory:');
    try {
      SqliteLedgerStore.create({ db });
      db.prepare("INSERT INTO ledger_accounts (id, merchant_id, currency, allow_overdraft, metadata, balance, created_ms) VALUES ('acc_1', 'm_shop', 'USD', 0, '{}', 0, 1)").run();
      assert.throws(() => db.prepare("UPDATE ledger_accounts SET balance = -1 WHERE id = 'acc_1'").run(), /CHECK constraint failed/);
    } finally {
      db.close();
    }
  });
});

describe('sqlite ledger store: group commit of the API writes', () => {
  const claim = (key: string, caller: number): IdempotencyRecord => ({
    merchantId: 'm_shop', key, requestHash: `hash-${caller}`, status: 202, body: `{"caller":${caller}}`, createdMs: 1_700_000_000_000 + caller,
  });

  async function withFileStore(fn: (store: SqliteLedgerStore, path: string) => Promise<void>, writeQueueMax?: number): Promise<void> {
    const directory = mkdtempSync(join(tmpdir(), 'tally-ledger-group-'));
    const path = join(directory, 'store.db');
    const store = SqliteLedgerStore.create(writeQueueMax === undefined ? { db: path } : { db: path, writeQueueMax });
    try {
      await fn(store, path);
    } finally {
      await store.close();
      rmSync(directory, { recursive: true, force: true });
    }
  }

  test('a burst of claims and pending transfers, duplicates included, shares commits and answers each call as alone', () =>
    withFileStore(async (store) => {
      await store.createAccount(makeAccount('fund', { allowOverdraft: true }));
      await store.createAccount(makeAccount('a'));
      const decided = makeCommand('t_decided', 'fund', 'a', 50n);
      await store.settle({ stream: 's', partition: 0, fromOffset: 0, throughOffset: 0, commands: [decided], settledMs: 1_700_000_100_000 });
      const before = store.stats();

      // 40 claims on 8 keys (5 callers each, interleaved) and 41 pending records on 20 ids (two each, the
      // second with another amount) plus one for the decided transfer — all issued before any commit.
      const claims = Array.from({ length: 40 }, (_, caller) => store.putIdempotency(claim(`k${caller % 8}`, caller)));
      const pendings = Array.from({ length: 40 }, (_, index) =>
        store.recordPending(makeCommand(`t_${index % 20}`, 'fund', 'a', index < 20 ? 100n : 999n)));
      pendings.push(store.recordPending(makeCommand('t_decided', 'fund', 'a', 7n)));
      assert.equal(store.stats().queuedWrites, 81);
      const answers = await Promise.all(claims);
      await Promise.all(pendings);

      answers.forEach((answer, caller) => assert.deepEqual(answer, claim(`k${caller % 8}`, caller % 8), `caller ${caller} gets the first claim of its key`));
      for (let key = 0; key < 8; key++) assert.deepEqual(await store.getIdempotency('m_shop', `k${key}`), claim(`k${key}`, key));
      for (let index = 0; index < 20; index++) {
        const transfer = await store.getTransfer('m_shop', `t_${index}`);
        assert.deepEqual([transfer?.status, transfer?.amount], ['pending', 100n], `t_${index} keeps its first record`);
      }
      const final = await store.getTransfer('m_shop', 't_decided');
      assert.deepEqual([final?.status, final?.amount], ['succeeded', 50n], 'a decided transfer is never downgraded');

      const after = store.stats();
      assert.equal(after.writesCommitted - before.writesCommitted, 81);
      assert.ok(after.groupCommits - before.groupCommits < 81, `81 writes took ${after.groupCommits - before.groupCommits} commits`);
      assert.equal(after.queuedWrites, 0);
    }));

  test('a write that fails alone fails only its own call; the rest of its group commits', () =>
    withFileStore(async (store) => {
      const before = store.stats().groupCommits;
      // STRICT refuses a REAL in the integer status column: that statement fails, the transaction goes on.
      const results = await Promise.allSettled([
        store.putIdempotency(claim('k_ok_1', 1)),
        store.putIdempotency({ ...claim('k_bad', 2), status: 202.5 }),
        store.putIdempotency(claim('k_ok_2', 3)),
      ]);
      assert.deepEqual(results.map((result) => result.status), ['fulfilled', 'rejected', 'fulfilled']);
      assert.equal(store.stats().groupCommits - before, 1);
      assert.deepEqual(await store.getIdempotency('m_shop', 'k_ok_1'), claim('k_ok_1', 1));
      assert.deepEqual(await store.getIdempotency('m_shop', 'k_ok_2'), claim('k_ok_2', 3));
      assert.equal(await store.getIdempotency('m_shop', 'k_bad'), null);
    }));

  test('past the queue bound a write is refused with the retryable store_unavailable', () =>
    withFileStore(async (store) => {
      const queued = [store.putIdempotency(claim('k1', 1)), store.recordPending(makeCommand('t_1', 'a', 'b', 10n))];
      await assert.rejects(store.putIdempotency(claim('k2', 2)), (error) => isTallyError(error) && error.code === 'store_unavailable' && error.canRetry);
      await Promise.all(queued);
      assert.deepEqual(await store.putIdempotency(claim('k2', 2)), claim('k2', 2), 'room again once the queue is committed');
    }, 2));

  test('close commits the writes still queued', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'tally-ledger-group-close-'));
    const path = join(directory, 'store.db');
    try {
      const store = SqliteLedgerStore.create({ db: path });
      const pending = [store.putIdempotency(claim('k1', 1)), store.recordPending(makeCommand('t_1', 'a', 'b', 10n))];
      await store.close();
      await Promise.all(pending);
      const reopened = SqliteLedgerStore.create({ db: path });
      assert.deepEqual(await reopened.getIdempotency('m_shop', 'k1'), claim('k1', 1));
      assert.equal((await reopened.getTransfer('m_shop', 't_1'))?.status, 'pending');
      await reopened.close();
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
