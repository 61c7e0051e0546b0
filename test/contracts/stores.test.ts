// Runs the EventStore, RollupStore and MerchantStore contracts against every adapter (memory,
// sqlite), plus what only one adapter has: SQLite's shared database file and schema versions,
// the memory rollup store's seeded faults.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryEventStore } from '../../src/adapters/memory/event-store.ts';
import { MemoryMerchantStore } from '../../src/adapters/memory/merchant-store.ts';
import { MemoryRollupStore } from '../../src/adapters/memory/rollup-store.ts';
import { openDatabase } from '../../src/adapters/sqlite/database.ts';
import { SqliteEventStore } from '../../src/adapters/sqlite/event-store.ts';
import { SqliteMerchantStore } from '../../src/adapters/sqlite/merchant-store.ts';
import { SqliteRollupStore } from '../../src/adapters/sqlite/rollup-store.ts';
import { isTallyError } from '../../src/core/errors.ts';
import type { ApplyBatch } from '../../src/core/ports/rollup-store.ts';
import { runEventStoreContract } from './event-store.contract.ts';
import { runMerchantStoreContract } from './merchant-store.contract.ts';
import { makeCell, runRollupStoreContract } from './rollup-store.contract.ts';
import { makeStoredBatch } from '../support/events.ts';

interface Closable {
  close(): Promise<void>;
}

/** A fresh database file per fixture; reopen closes the current store and opens one on the same file. */
function sqliteFixture<T extends Closable>(open: (path: string) => T): { store: T; reopen: () => Promise<T>; dispose(): Promise<void> } {
  const directory = mkdtempSync(join(tmpdir(), 'tally-stores-'));
  const path = join(directory, 'store.db');
  let current = open(path);
  return {
    store: current,
    async reopen() {
      await current.close();
      current = open(path);
      return current;
    },
    async dispose() {
      await current.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

function memoryFixture<T extends Closable>(store: T): { store: T; reopen: null; dispose(): Promise<void> } {
  return { store, reopen: null, dispose: () => store.close() };
}

runEventStoreContract({ name: 'memory', create: async () => memoryFixture(MemoryEventStore.create()) });
runEventStoreContract({ name: 'sqlite', create: async () => sqliteFixture((db) => SqliteEventStore.create({ db })) });

runRollupStoreContract({ name: 'memory', create: async ({ logicVersion }) => memoryFixture(MemoryRollupStore.create({ logicVersion })) });
runRollupStoreContract({
  name: 'sqlite',
  create: async ({ logicVersion }) => {
    let version = logicVersion;
    const fixture = sqliteFixture((db) => SqliteRollupStore.create({ db, logicVersion: version }));
    return {
      ...fixture,
      reopen: (options: { logicVersion: string }) => {
        version = options.logicVersion;
        return fixture.reopen();
      },
    };
  },
});

runMerchantStoreContract({ name: 'memory', create: async () => memoryFixture(MemoryMerchantStore.create()) });
runMerchantStoreContract({ name: 'sqlite', create: async () => sqliteFixture((db) => SqliteMerchantStore.create({ db })) });

describe('sqlite stores sharing one database', () => {
  test('the three stores open on one connection, and closing them leaves the shared connection open', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'tally-shared-'));
    const db = openDatabase(join(directory, 'store.db'));
    try {
      const events = SqliteEventStore.create({ db });
      const rollups = SqliteRollupStore.create({ db, logicVersion: 'analytics@1' });
      const merchants = SqliteMerchantStore.create({ db });
      await merchants.create({ merchant: { id: 'm_1', name: 'Shop', currency: 'EUR', allowedOrigins: [], createdMs: 1 }, writeKeyHash: 'w', secretKeyHash: 's' });
      assert.deepEqual(await events.putBatch(makeStoredBatch(2, { merchantId: 'm_1' })), [true, true]);
      await rollups.apply({ stream: 's', partition: 0, fromOffset: 0, throughOffset: 1, layoutEpoch: 1, cells: [makeCell({ merchantId: 'm_1' })] });
      await Promise.all([events.close(), rollups.close(), merchants.close()]);
      assert.equal(db.isOpen, true);
      const versions = db.prepare('SELECT component, version FROM tally_schema ORDER BY component').all();
      assert.deepEqual(versions.map((row) => [row.component, row.version]), [['events', 1], ['merchants', 1], ['rollups', 2]]);
      const reopened = SqliteRollupStore.create({ db, logicVersion: 'analytics@1' });
      assert.equal(await reopened.appliedOffset('s', 0), 1);
      await reopened.close();
    } finally {
      db.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('a version-1 rollup store gains the counts index when opened by this build', async () => {
    const db = openDatabase(':memory:');
    SqliteRollupStore.create({ db, logicVersion: 'analytics@1' });
    db.exec("DROP INDEX rollup_cells_counts; UPDATE tally_schema SET version = 1 WHERE component = 'rollups'");
    SqliteRollupStore.create({ db, logicVersion: 'analytics@1' });
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'rollup_cells_counts'").all();
    assert.equal(indexes.length, 1);
    assert.equal(db.prepare("SELECT version FROM tally_schema WHERE component = 'rollups'").get()?.version, 2);
    db.close();
  });

  test('a database written by a newer schema version is refused rather than misread', () => {
    const directory = mkdtempSync(join(tmpdir(), 'tally-schema-'));
    const path = join(directory, 'store.db');
    try {
      const db = openDatabase(path);
      db.exec('CREATE TABLE tally_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL) STRICT');
      db.exec("INSERT INTO tally_schema VALUES ('events', 99), ('rollups', 99), ('merchants', 99)");
      assert.throws(() => SqliteEventStore.create({ db }), /newer/);
      assert.throws(() => SqliteRollupStore.create({ db, logicVersion: 'analytics@1' }), /newer/);
      assert.throws(() => SqliteMerchantStore.create({ db }), /newer/);
      db.close();
      assert.throws(() => SqliteEventStore.create({ db: path }), /newer/, 'also when the store opens the file itself');
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('a closed store refuses calls', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'tally-closed-'));
    try {
      const store = SqliteEventStore.create({ db: join(directory, 'store.db') });
      await store.close();
      await store.close();
      await assert.rejects(store.ping(), /closed/);
      await assert.rejects(store.putBatch([]), /closed/);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('memory rollup store fault injection', () => {
  const apply = (fromOffset: number): ApplyBatch => ({
    stream: 's', partition: 0, fromOffset, throughOffset: fromOffset, layoutEpoch: 1, cells: [makeCell()],
  });

  test('an injected failure is a retryable store_unavailable and changes nothing', async () => {
    const store = MemoryRollupStore.create({ logicVersion: 'v1', faults: { seed: 1, applyFailureRate: 1 } });
    await assert.rejects(store.apply(apply(0)), (error) => isTallyError(error) && error.code === 'store_unavailable' && error.canRetry);
    assert.equal(await store.appliedOffset('s', 0), -1);
    assert.deepEqual(await store.readCells({ merchantId: 'm_test', generation: 1, granularity: 'hour', dimension: '', fromMs: 0, toMs: Number.MAX_SAFE_INTEGER }), []);
  });

  test('the same seed fails the same applies; a retry after a failure succeeds eventually', async () => {
    const outcomes = async (seed: number): Promise<string> => {
      const store = MemoryRollupStore.create({ logicVersion: 'v1', faults: { seed, applyFailureRate: 0.5 } });
      let trace = '';
      for (let offset = 0; offset < 20; ) {
        try {
          await store.apply(apply(offset));
          trace += 'ok ';
          offset += 1;
        } catch {
          trace += 'fail ';
        }
      }
      assert.equal(await store.appliedOffset('s', 0), 19);
      return trace;
    };
    const first = await outcomes(7);
    assert.equal(await outcomes(7), first);
    assert.match(first, /fail/);
    assert.notEqual(await outcomes(8), first);
  });

  test('a failure rate outside [0, 1] is refused', () => {
    assert.throws(() => MemoryRollupStore.create({ logicVersion: 'v1', faults: { seed: 1, applyFailureRate: 1.5 } }), RangeError);
    assert.throws(() => MemoryRollupStore.create({ logicVersion: 'v1', faults: { seed: 1, applyFailureRate: Number.NaN } }), RangeError);
  });
});
