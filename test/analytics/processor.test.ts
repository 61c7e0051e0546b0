// The analytics processor's promises: every event counts exactly once in every cell it belongs
// to, whatever the redelivery, resends, transient failures or batch boundaries; malformed records
// are dead-lettered with a reason and never block the partition.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { analyticsRig, appendEvents, processAll, snapshotCells } from '../support/analytics.ts';
import { baseTimeMs, makeEvent } from '../support/events.ts';
import { eventsTopic } from '../../src/analytics/processor.ts';
import { time } from '../../src/core/limits.ts';
import type { TrackedEvent } from '../../src/core/event.ts';
import { seededRandom } from '../../src/adapters/memory/prng.ts';

const dims = ['', 'event:type', 'event:path', 'event:currency', 'visit:source', 'prop:plan'];

/** A reproducible stream: 2 merchants, 3 days, paths, sources, revenue in two currencies, resends. */
export function generateStream(seed: number, count: number): TrackedEvent[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const out: TrackedEvent[] = [];
  for (let i = 0; i < count; i++) {
    const merchantId = pick(['m_one', 'm_two']);
    const user = `u${Math.floor(random() * 60)}`;
    const paid = random() < 0.2;
    out.push(makeEvent({
      merchantId, id: `${merchantId}-e${i}`,
      type: paid ? 'purchase' : pick(['pageview', 'signup']),
      timestampMs: baseTimeMs + Math.floor(random() * 3 * time.dayMs),
      userId: user, visitorId: `u:${user}`, sessionId: `s${Math.floor(random() * 120)}`,
      revenue: paid ? { amount: 100 + Math.floor(random() * 5000), currency: pick(['USD', 'EUR']) } : null,
      properties: random() < 0.5 ? { plan: pick(['free', 'pro']) } : null,
      page: { path: pick(['/', '/pricing', '/docs', '/blog']), host: 'shop.example', referrer: null, title: null },
      visit: { source: pick([null, 'Google', 'Twitter']) },
    }));
  }
  // A client resends a tenth of the events as new records: they must count once.
  const resent = out.filter(() => random() < 0.1);
  return [...out, ...resent];
}

/** Ground truth computed directly from the distinct events, independent of the rollup code. */
function expectedDailyTotals(events: readonly TrackedEvent[], merchantId: string, currency: string): Map<number, { events: number; revenue: bigint }> {
  const seen = new Set<string>();
  const out = new Map<number, { events: number; revenue: bigint }>();
  for (const event of events) {
    if (event.merchantId !== merchantId || seen.has(event.id)) continue;
    seen.add(event.id);
    const day = Math.floor(event.timestampMs / time.dayMs) * time.dayMs;
    const entry = out.get(day) ?? { events: 0, revenue: 0n };
    entry.events += 1;
    if (event.revenue?.currency === currency) entry.revenue += BigInt(event.revenue.amount);
    out.set(day, entry);
  }
  return out;
}

describe('analytics processor', () => {
  test('daily totals equal the ground truth, with resent events counted once', async () => {
    const stream = generateStream(1, 1500);
    const rig = await analyticsRig();
    await appendEvents(rig.log, stream);
    await processAll(rig);
    const cells = await snapshotCells(rig.rollups, ['m_one', 'm_two'], ['']);
    for (const [merchantId, currency] of [['m_one', 'USD'], ['m_two', 'EUR']] as const) {
      const expected = expectedDailyTotals(stream, merchantId, currency);
      assert.ok(expected.size >= 3, 'the stream spans at least three days');
      for (const [day, truth] of expected) {
        const cell = cells.get(`${merchantId}|day|${day}||`);
        assert.ok(cell, `a day cell for ${merchantId} ${new Date(day).toISOString()}`);
        assert.equal(cell.events, truth.events);
        assert.equal(cell.revenue, truth.revenue.toString());
      }
    }
  });

  test('duplicate delivery and transient store failures leave every cell as a clean run does', async () => {
    const stream = generateStream(2, 1200);
    const clean = await analyticsRig();
    await appendEvents(clean.log, stream);
    await processAll(clean);
    const faulty = await analyticsRig({ logFaults: { seed: 7, duplicateRate: 0.3 }, rollupFaults: { seed: 9, applyFailureRate: 0.2 } });
    await appendEvents(faulty.log, stream);
    await processAll(faulty);
    const merchants = ['m_one', 'm_two'];
    const expected = await snapshotCells(clean.rollups, merchants, dims);
    assert.ok(expected.size > 100, 'the clean run produced cells to compare');
    assert.deepEqual(await snapshotCells(faulty.rollups, merchants, dims), expected);
  });

  test('a malformed record is dead-lettered with its reason and the partition moves on', async () => {
    const rig = await analyticsRig({ partitions: 1 });
    await rig.log.append(eventsTopic, [{ key: 'm_one', value: '{not json' }]);
    await appendEvents(rig.log, [makeEvent({ merchantId: 'm_one', id: 'after-the-bad-one' })]);
    await processAll(rig);
    const dlq = rig.log.consumer({ group: 'test-dlq', topics: [`${eventsTopic}.dlq`] });
    const letters = await dlq.poll(10, 2000);
    await dlq.close();
    assert.equal(letters.length, 1);
    const letter = JSON.parse(letters[0]!.value) as { error: { code: string }; source: { offset: number }; value: string };
    assert.equal(letter.error.code, 'invalid_format');
    assert.equal(letter.source.offset, 0);
    assert.equal(letter.value, '{not json');
    const cells = await snapshotCells(rig.rollups, ['m_one'], ['']);
    assert.equal([...cells.values()].find((cell) => cell.events > 0)?.events, 1, 'the good event after it counted');
  });

  test('any split of the stream into batches, with any redelivered prefix, gives identical rollups', async () => {
    const stream = generateStream(3, 240);
    const reference = await analyticsRig({ partitions: 1 });
    await appendEvents(reference.log, stream);
    await processAll(reference);
    const expected = await snapshotCells(reference.rollups, ['m_one', 'm_two'], dims);
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 97 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      async (batchSize, seed) => {
        const rig = await analyticsRig({ partitions: 1, logFaults: { seed, duplicateRate: 0.5 } });
        await appendEvents(rig.log, stream);
        await processAll(rig, { pollRecordsMax: batchSize });
        assert.deepEqual(await snapshotCells(rig.rollups, ['m_one', 'm_two'], dims), expected);
      },
    ), { numRuns: 12 });
  });
});
