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
import { makeAccount, runLedgerStoreContract, type LedgerStoreFixture } from './ledger-store.contract.ts';

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
