// Runs the EventStore and MerchantStore contracts against the Cassandra adapters on a real
// Cassandra, each fixture in a fresh keyspace (created and migrated here, dropped afterwards), plus
// what only these adapters have: a schema `tally migrate` has not created is refused, and a closed
// store refuses calls while the shared session stays open.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CassandraEventStore, eventStoreSchema } from '../../src/adapters/cassandra/event-store.ts';
import { CassandraMerchantStore, merchantStoreSchema } from '../../src/adapters/cassandra/merchant-store.ts';
import { runEventStoreContract } from '../contracts/event-store.contract.ts';
import { runMerchantStoreContract } from '../contracts/merchant-store.contract.ts';
import { enginesMissing } from '../support/engines.ts';
import { cassandraFixture, connectTestSession as connect } from '../support/cassandra.ts';
import { makeEvent, makeStored, makeStoredBatch } from '../support/events.ts';
import { partitionForKey } from '../../src/core/partitioner.ts';

const missing = await enginesMissing('cassandra');

if (missing) {
  test('Cassandra stores', (t) => {
    t.skip(missing);
  });
} else {
  runEventStoreContract({
    name: 'cassandra',
    create: () => cassandraFixture('t_events', eventStoreSchema, (session) => CassandraEventStore.open({ session })),
  });
  runMerchantStoreContract({
    name: 'cassandra',
    create: () => cassandraFixture('t_merchants', merchantStoreSchema, (session) => CassandraMerchantStore.open({ session })),
  });

  describe('cassandra stores beyond the contracts', () => {
    test('a store refuses to open on a keyspace `tally migrate` has not brought to its schema', async () => {
      const session = await connect('t_unmigrated');
      try {
        await session.createKeyspace();
        await assert.rejects(CassandraEventStore.open({ session }), /tally migrate/);
        await assert.rejects(CassandraMerchantStore.open({ session }), /tally migrate/);
      } finally {
        await session.dropKeyspace();
        await session.close();
      }
    });

    test('a closed store refuses calls; the shared session stays open for the other stores', async () => {
      const fixture = await cassandraFixture('t_closed', eventStoreSchema, (session) => CassandraEventStore.open({ session }));
      try {
        await fixture.store.close();
        await fixture.store.close();
        await assert.rejects(fixture.store.ping(), /closed/);
        await assert.rejects(fixture.store.putBatch(makeStoredBatch(1)), /closed/);
        await assert.rejects(fixture.store.scan({ merchantId: 'm_test', fromMs: 0, toMs: 1, limit: 1 }), /closed/);
        const reopened = await fixture.reopen();
        assert.deepEqual(await reopened.putBatch(makeStoredBatch(2)), [true, true]);
      } finally {
        await fixture.dispose();
      }
    });

    test('id lookups and id rows span several shards per request, and split a crowded shard', async () => {
      const fixture = await cassandraFixture('t_idgroups', eventStoreSchema, (session) => CassandraEventStore.open({ session }));
      try {
        // 130 ids in one of the 1024 shards (more than one read or one id batch carries), and 400
        // spread over many shards (several shards per request), for two merchants.
        const crowded: string[] = [];
        for (let n = 0; crowded.length < 130; n++) if (partitionForKey(`crowd-${n}`, 1024) === 7) crowded.push(`crowd-${n}`);
        const spread = Array.from({ length: 400 }, (_, index) => `spread-${index}`);
        const ids = [...crowded, ...spread];
        const first = ['m_a', 'm_b'].flatMap((merchantId, m) =>
          ids.map((id, index) => makeStored(makeEvent({ merchantId, id }), { partition: m, offset: index })));
        assert.ok((await fixture.store.putBatch(first)).every(Boolean), 'all new');
        // Redelivered copies keep their answer (true); copies at other offsets are duplicates (false).
        const again = first.map((item, index) => (index % 2 === 0 ? item : makeStored(item.event, { partition: item.source.partition, offset: 10_000 + index })));
        assert.deepEqual(await fixture.store.putBatch(again), again.map((_, index) => index % 2 === 0));
        for (const merchantId of ['m_a', 'm_b']) {
          const page = await fixture.store.scan({ merchantId, fromMs: 0, toMs: Date.UTC(2100, 0, 1), limit: 10_000, after: null });
          assert.equal(page.events.length, ids.length, `${merchantId}: each id stored once`);
        }
      } finally {
        await fixture.dispose();
      }
    });

    test('a scan across many sparse hours pages through every event once, in order', async () => {
      const fixture = await cassandraFixture('t_hours', eventStoreSchema, (session) => CassandraEventStore.open({ session }));
      try {
        // 3 events every 7 hours over 30 days: the scan reads hour partitions several at a time.
        const batch = Array.from({ length: 103 }, (_, index) =>
          makeStoredBatch(3, { startMs: Date.UTC(2024, 0, 1) + index * 7 * 3_600_000, stepMs: 60_000, firstOffset: index * 3 })).flat();
        await fixture.store.putBatch(batch.toReversed());
        const expected = batch.map((stored) => stored.event.id);
        for (const limit of [1, 4, 50, 1000]) {
          const seen: string[] = [];
          let after: string | null = null;
          do {
            const page = await fixture.store.scan({ merchantId: 'm_test', fromMs: 0, toMs: Date.UTC(2025, 0, 1), limit, after });
            seen.push(...page.events.map((stored) => stored.event.id));
            after = page.next;
          } while (after);
          assert.deepEqual(seen, expected, `limit ${limit}`);
        }
      } finally {
        await fixture.dispose();
      }
    });
  });
}
