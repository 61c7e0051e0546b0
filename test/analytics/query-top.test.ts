// "Top N by users" reads sketches only for the rows that can still reach the page. It must give
// exactly the rows, values and total_rows of the full computation, for any page of any ordering.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventStore } from '../../src/adapters/memory/event-store.ts';
import { MemoryRollupStore } from '../../src/adapters/memory/rollup-store.ts';
import { CellBuilder } from '../../src/core/analytics/rollup.ts';
import { currentRules } from '../../src/core/analytics/rules.ts';
import { time } from '../../src/core/limits.ts';
import type { Cell, CellRangeRequest } from '../../src/core/ports/rollup-store.ts';
import { runQuery, type QueryContext } from '../../src/analytics/query/index.ts';
import { seededRandom } from '../../src/adapters/memory/prng.ts';
import { makeEvent } from '../support/events.ts';

const dayStartMs = Date.UTC(2026, 5, 1);
const nowMs = dayStartMs + 10 * time.dayMs;
const range = [new Date(dayStartMs).toISOString(), new Date(dayStartMs + 10 * time.dayMs).toISOString()];

/** 300 paths with a skewed popularity, as real sites have; users overlap across paths. */
async function skewedStore(): Promise<{ context: QueryContext; sketchReads: () => number }> {
  const random = seededRandom(42);
  const rollups = MemoryRollupStore.create({ logicVersion: currentRules.logicVersion });
  const builder = new CellBuilder(() => 'USD');
  for (let i = 0; i < 20_000; i++) {
    const path = `/p${Math.floor(300 * random() ** 3)}`;
    const user = `u${Math.floor(random() * 4000)}`;
    builder.add(makeEvent({
      merchantId: 'm', id: `e${i}`, timestampMs: dayStartMs + Math.floor(random() * 10 * time.dayMs),
      visitorId: user, sessionId: `${user}-${Math.floor(random() * 3)}`, page: { path, host: null, referrer: null, title: null },
    }), 1);
  }
  await rollups.apply({ stream: 's', partition: 0, fromOffset: 0, throughOffset: 0, layoutEpoch: (await rollups.layout()).epoch, cells: builder.cells() });
  let sketchCells = 0;
  const counting = Object.create(rollups) as MemoryRollupStore;
  counting.readCells = async (request: CellRangeRequest): Promise<Cell[]> => {
    const cells = await rollups.readCells(request);
    if ((request.sketches ?? ['users', 'sessions']).length > 0) sketchCells += cells.length;
    return cells;
  };
  counting.layout = () => rollups.layout();
  const context: QueryContext = { merchantId: 'm', merchantCurrency: 'USD', rollups: counting, events: MemoryEventStore.create(), rules: currentRules };
  return { context, sketchReads: () => sketchCells };
}

describe('top N by a sketch metric', () => {
  test('every page equals the same page of the full ordering, with the same total_rows', async () => {
    const { context } = await skewedStore();
    for (const metric of ['users', 'sessions'] as const) {
      const body = { metrics: [metric, 'events'], date_range: range, dimensions: ['event:path'], order_by: [[metric, 'desc']] };
      const full = await runQuery({ ...body, limit: 10_000 }, context, nowMs);
      assert.ok(full.results.length > 250, 'enough rows to prune');
      for (const [limit, offset] of [[10, 0], [1, 0], [5, 7], [25, 40]] as const) {
        const page = await runQuery({ ...body, limit, offset }, context, nowMs);
        assert.deepEqual(page.results, full.results.slice(offset, offset + limit), `${metric} limit ${limit} offset ${offset}`);
        assert.equal(page.meta.total_rows, full.meta.total_rows);
      }
    }
  });

  test("it reads the sketches of far fewer cells than the full computation", async (t) => {
    const { context, sketchReads } = await skewedStore();
    const body = { metrics: ['users'], date_range: range, dimensions: ['event:path'], order_by: [['users', 'desc']] };
    await runQuery({ ...body, limit: 10_000 }, context, nowMs);
    const fullReads = sketchReads();
    await runQuery({ ...body, limit: 10 }, context, nowMs);
    const prunedReads = sketchReads() - fullReads;
    assert.ok(prunedReads * 3 < fullReads, `sketch cells read: ${prunedReads} for the top 10 vs ${fullReads} for all`);
    t.diagnostic(`sketch cells read: ${prunedReads} for the top 10 vs ${fullReads} for all`);
  });
});
