// The MerchantStore contract: every adapter runs these cases (test/contracts/stores.test.ts).
// A key hash names exactly one merchant and kind; nothing resolves across merchants.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Merchant, MerchantStore, NewMerchant } from '../../src/core/ports/merchant-store.ts';

export interface MerchantStoreFixture {
  readonly store: MerchantStore;
  /** Closes the store and opens a new one over the same data; null when the adapter keeps nothing. */
  readonly reopen: (() => Promise<MerchantStore>) | null;
  dispose(): Promise<void>;
}

export interface MerchantStoreContractOptions {
  readonly name: string;
  create(): Promise<MerchantStoreFixture>;
}

function merchant(id: string, overrides: Partial<Merchant> = {}): Merchant {
  return { id, name: `Shop ${id}`, currency: 'EUR', allowedOrigins: ['https://shop.example'], createdMs: 1_700_000_000_000, ...overrides };
}

function newMerchant(id: string, overrides: Partial<Merchant> = {}): NewMerchant {
  return { merchant: merchant(id, overrides), writeKeyHash: `write-hash-${id}`, secretKeyHash: `secret-hash-${id}` };
}

type WithStore = (body: (fixture: MerchantStoreFixture) => Promise<void>) => Promise<void>;

export function runMerchantStoreContract(options: MerchantStoreContractOptions): void {
  const withStore: WithStore = async (body) => {
    const fixture = await options.create();
    try {
      await body(fixture);
    } finally {
      await fixture.dispose();
    }
  };

  describe(`MerchantStore contract: ${options.name}`, () => {
    describeLookups(withStore);
    describeConflicts(withStore);

    test('list returns every merchant, oldest first, ties by id', () =>
      withStore(async ({ store }) => {
        assert.deepEqual(await store.list(), []);
        await store.create(newMerchant('m_b', { createdMs: 2000 }));
        await store.create(newMerchant('m_c', { createdMs: 1000 }));
        await store.create(newMerchant('m_a', { createdMs: 2000 }));
        assert.deepEqual((await store.list()).map((item) => item.id), ['m_c', 'm_a', 'm_b']);
      }));

    test('names need not be unique; allowed origins round-trip, empty included', () =>
      withStore(async ({ store }) => {
        await store.create(newMerchant('m_1', { name: 'Same', allowedOrigins: [] }));
        await store.create(newMerchant('m_2', { name: 'Same', allowedOrigins: ['https://a.example', 'http://localhost:3000'] }));
        assert.deepEqual((await store.get('m_1'))?.allowedOrigins, []);
        assert.deepEqual((await store.get('m_2'))?.allowedOrigins, ['https://a.example', 'http://localhost:3000']);
      }));

    test('mutating a created or returned merchant does not change the stored one', () =>
      withStore(async ({ store }) => {
        const input = newMerchant('m_1');
        await store.create(input);
        (input.merchant.allowedOrigins as string[]).push('https://evil.example');
        const read = await store.get('m_1');
        (read?.allowedOrigins as string[]).push('https://evil.example');
        assert.deepEqual((await store.get('m_1'))?.allowedOrigins, ['https://shop.example']);
      }));

    test('ping resolves on an open store', () => withStore(async ({ store }) => {
      await store.ping();
    }));

    test('merchants and keys survive closing and reopening the store', async (t) => {
      const fixture = await options.create();
      try {
        if (!fixture.reopen) {
          t.skip('the adapter keeps no state across instances');
          return;
        }
        await fixture.store.create(newMerchant('m_1'));
        const reopened = await fixture.reopen();
        assert.deepEqual(await reopened.get('m_1'), merchant('m_1'));
        assert.deepEqual(await reopened.findByKeyHash('secret-hash-m_1'), { merchant: merchant('m_1'), kind: 'secret' });
      } finally {
        await fixture.dispose();
      }
    });
  });
}

function describeLookups(withStore: WithStore): void {
  test('a created merchant is found by id', () =>
    withStore(async ({ store }) => {
      await store.create(newMerchant('m_1'));
      assert.deepEqual(await store.get('m_1'), merchant('m_1'));
      assert.deepEqual(await store.list(), [merchant('m_1')]);
    }));

  test('an unknown id or key hash finds nothing', () =>
    withStore(async ({ store }) => {
      await store.create(newMerchant('m_1'));
      assert.equal(await store.get('m_2'), null);
      assert.equal(await store.get(''), null);
      assert.equal(await store.findByKeyHash('no-such-hash'), null);
      assert.equal(await store.findByKeyHash('write-hash-m_'), null, 'a prefix of a hash is not the hash');
      assert.equal(await store.findByKeyHash('m_1'), null, 'a merchant id is not a key');
    }));

  test('each key hash finds its own merchant and kind, never another merchant', () =>
    withStore(async ({ store }) => {
      await store.create(newMerchant('m_1'));
      await store.create(newMerchant('m_2', { currency: 'USD' }));
      assert.deepEqual(await store.findByKeyHash('write-hash-m_1'), { merchant: merchant('m_1'), kind: 'write' });
      assert.deepEqual(await store.findByKeyHash('secret-hash-m_1'), { merchant: merchant('m_1'), kind: 'secret' });
      assert.deepEqual(await store.findByKeyHash('write-hash-m_2'), { merchant: merchant('m_2', { currency: 'USD' }), kind: 'write' });
      assert.deepEqual(await store.findByKeyHash('secret-hash-m_2'), { merchant: merchant('m_2', { currency: 'USD' }), kind: 'secret' });
    }));
}

function describeConflicts(withStore: WithStore): void {
  test("a key hash already in use is rejected and the new merchant is not created", () =>
    withStore(async ({ store }) => {
      await store.create(newMerchant('m_1'));
      const reusesWrite = { ...newMerchant('m_2'), secretKeyHash: 'write-hash-m_1' };
      await assert.rejects(store.create(reusesWrite));
      assert.equal(await store.get('m_2'), null);
      assert.equal(await store.findByKeyHash('write-hash-m_2'), null, 'the other key of the failed create is not stored');
      assert.deepEqual(await store.findByKeyHash('write-hash-m_1'), { merchant: merchant('m_1'), kind: 'write' });
      assert.deepEqual((await store.list()).map((item) => item.id), ['m_1']);
    }));

  test('an id already in use is rejected and the existing merchant is unchanged', () =>
    withStore(async ({ store }) => {
      await store.create(newMerchant('m_1'));
      await assert.rejects(store.create({ merchant: merchant('m_1', { name: 'Other' }), writeKeyHash: 'w2', secretKeyHash: 's2' }));
      assert.equal((await store.get('m_1'))?.name, 'Shop m_1');
      assert.equal(await store.findByKeyHash('w2'), null);
    }));

  test('the same hash for the write and the secret key is rejected', () =>
    withStore(async ({ store }) => {
      await assert.rejects(store.create({ merchant: merchant('m_1'), writeKeyHash: 'same', secretKeyHash: 'same' }));
      assert.equal(await store.get('m_1'), null);
      assert.equal(await store.findByKeyHash('same'), null);
    }));
}
