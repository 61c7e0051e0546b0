// The RollupStore contract: every adapter runs these cases (test/contracts/stores.test.ts).
// apply() is the exactly-once heart: contiguous offsets, the layout epoch and the cell merge must
// hold together or not at all. Reprocessing switches generations atomically.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { estimateHllBytes, Hll, mergeHllBytes } from '../../src/core/analytics/hll.ts';
import { isTallyError } from '../../src/core/errors.ts';
import { time } from '../../src/core/limits.ts';
import { RollupConflictError } from '../../src/core/ports/rollup-store.ts';
import type { ApplyBatch, Cell, CellKey, RollupStore } from '../../src/core/ports/rollup-store.ts';
import { baseTimeMs } from '../support/events.ts';

export interface RollupStoreFixture {
  readonly store: RollupStore;
  /** Closes the store and opens a new one over the same data; null when the adapter keeps nothing. */
  readonly reopen: ((options: { logicVersion: string }) => Promise<RollupStore>) | null;
  dispose(): Promise<void>;
}

export interface RollupStoreContractOptions {
  readonly name: string;
  /** A store over fresh, empty state whose base generation is built by `logicVersion`. */
  create(options: { logicVersion: string }): Promise<RollupStoreFixture>;
}

const logicVersion = 'analytics@1';
const stream = 'analytics:events';
const hourMs = time.hourMs;
const dayMs = time.dayMs;
/** 2024-01-15T00:00:00Z. */
const dayStartMs = baseTimeMs - 10 * hourMs;

export function sketch(...values: string[]): Uint8Array {
  const hll = Hll.empty();
  for (const value of values) hll.add(value);
  return hll.toBytes();
}

export function makeCell(key: Partial<CellKey> = {}, value: { events?: number; revenue?: bigint; users?: string[]; sessions?: string[] } = {}): Cell {
  return {
    key: { merchantId: 'm_test', generation: 1, granularity: 'hour', bucketMs: baseTimeMs, dimension: '', value: '', ...key },
    value: {
      events: value.events ?? 1,
      revenue: value.revenue ?? 0n,
      users: sketch(...(value.users ?? ['u1'])),
      sessions: sketch(...(value.sessions ?? ['s1'])),
    },
  };
}

function batch(fromOffset: number, throughOffset: number, cells: readonly Cell[], extra: Partial<ApplyBatch> = {}): ApplyBatch {
  return { stream, partition: 0, fromOffset, throughOffset, layoutEpoch: 1, cells, ...extra };
}

function isConflict(reason: 'offset' | 'layout'): (error: unknown) => boolean {
  return (error) => error instanceof RollupConflictError && error.reason === reason;
}

const hourTotals = { merchantId: 'm_test', generation: 1, granularity: 'hour', dimension: '', fromMs: 0, toMs: 8_640_000_000_000_000 } as const;

type WithStore = (body: (fixture: RollupStoreFixture) => Promise<void>) => Promise<void>;

export function runRollupStoreContract(options: RollupStoreContractOptions): void {
  const withStore: WithStore = async (body) => {
    const fixture = await options.create({ logicVersion });
    try {
      await body(fixture);
    } finally {
      await fixture.dispose();
    }
  };

  describe(`RollupStore contract: ${options.name}`, () => {
    describeInitialState(withStore);
    describeApplyMerge(withStore);
    describeApplyProperty(withStore);
    describeApplyGuards(withStore);
    describeAllOrNothing(withStore);
    describeReadCells(withStore);
    describeReprocessLifecycle(withStore);
    describeReprocessErrors(withStore);
    describePersistence(options);
  });
}

function describeInitialState(withStore: WithStore): void {
  test('a new store has generation 1 as its base, no overlays, nothing building and no applied offsets', () =>
    withStore(async ({ store }) => {
      const layout = await store.layout();
      assert.deepEqual(layout.base, { generation: 1, logicVersion });
      assert.deepEqual(layout.generations, [{ generation: 1, logicVersion }]);
      assert.deepEqual(layout.overlays, []);
      assert.deepEqual(layout.building, []);
      assert.equal(await store.appliedOffset(stream, 0), -1);
      assert.deepEqual(await store.reprocessJobs(), []);
      assert.equal(await store.reprocessJob('nope'), null);
      await store.ping();
    }));
}

function describeApplyMerge(withStore: WithStore): void {
  test('apply stores new cells and sets the applied offset to throughOffset', () =>
    withStore(async ({ store }) => {
      const cell = makeCell({}, { events: 3, revenue: 1250n, users: ['u1', 'u2'], sessions: ['s1'] });
      await store.apply(batch(0, 9, [cell]));
      assert.equal(await store.appliedOffset(stream, 0), 9);
      assert.deepEqual(await store.readCells(hourTotals), [cell]);
    }));

  test('apply merges into existing cells: counts add, revenue adds exactly past 2^53, sketches union', () =>
    withStore(async ({ store }) => {
      const big = 2n ** 53n + 1n;
      await store.apply(batch(0, 4, [makeCell({}, { events: 2, revenue: big, users: ['u1', 'u2'], sessions: ['s1'] })]));
      await store.apply(batch(5, 9, [makeCell({}, { events: 5, revenue: big, users: ['u2', 'u3'], sessions: ['s2'] })]));
      const [cell] = await store.readCells(hourTotals);
      assert.ok(cell);
      assert.equal(cell.value.events, 7);
      assert.equal(cell.value.revenue, 2n ** 54n + 2n);
      assert.deepEqual(cell.value.users, mergeHllBytes(sketch('u1', 'u2'), sketch('u2', 'u3')));
      assert.equal(estimateHllBytes(cell.value.users), 3);
      assert.equal(estimateHllBytes(cell.value.sessions), 2);
    }));

  test('cells with the same key inside one batch merge with each other', () =>
    withStore(async ({ store }) => {
      await store.apply(batch(0, 1, [makeCell({}, { events: 1, users: ['a'] }), makeCell({}, { events: 2, users: ['b'] })]));
      const cells = await store.readCells(hourTotals);
      assert.equal(cells.length, 1);
      assert.equal(cells[0]?.value.events, 3);
      assert.equal(estimateHllBytes(cells[0]?.value.users ?? new Uint8Array()), 2);
    }));

  test('a batch with zero cells still advances the offset', () =>
    withStore(async ({ store }) => {
      await store.apply(batch(0, 99, []));
      assert.equal(await store.appliedOffset(stream, 0), 99);
      await store.apply(batch(100, 100, []));
      assert.equal(await store.appliedOffset(stream, 0), 100);
    }));

  test('partitions and streams keep separate offsets', () =>
    withStore(async ({ store }) => {
      await store.apply(batch(0, 9, [], { partition: 0 }));
      await store.apply(batch(0, 4, [], { partition: 1 }));
      await store.apply(batch(0, 2, [], { stream: 'other:events' }));
      assert.equal(await store.appliedOffset(stream, 0), 9);
      assert.equal(await store.appliedOffset(stream, 1), 4);
      assert.equal(await store.appliedOffset('other:events', 0), 2);
      assert.equal(await store.appliedOffset(stream, 2), -1);
    }));
}

function describeApplyProperty(withStore: WithStore): void {
  test('splitting the same cells into any contiguous batches gives the same cells as one batch', async () => {
    const cellArbitrary = fc.record({
      hour: fc.integer({ min: 0, max: 3 }),
      value: fc.constantFrom('a', 'b'),
      events: fc.integer({ min: 0, max: 1000 }),
      revenue: fc.bigInt({ min: 0n, max: 2n ** 60n }),
      user: fc.constantFrom('u1', 'u2', 'u3', 'u4'),
    });
    await withStore(async ({ store }) => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(cellArbitrary, { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 12, maxLength: 12 }), async (specs, sizes) => {
          run += 1;
          const toCell = (spec: (typeof specs)[number], merchantId: string): Cell =>
            makeCell({ merchantId, bucketMs: dayStartMs + spec.hour * hourMs, dimension: 'event:type', value: spec.value }, { events: spec.events, revenue: spec.revenue, users: [spec.user], sessions: [spec.user] });
          const whole = `m_whole_${run}`;
          const split = `m_split_${run}`;
          await store.apply(batch(0, 0, specs.map((spec) => toCell(spec, whole)), { partition: run * 2 }));
          let offset = 0;
          for (let start = 0, part = 0; start < specs.length; part += 1) {
            const size = sizes[part % sizes.length] as number;
            await store.apply(batch(offset, offset, specs.slice(start, start + size).map((spec) => toCell(spec, split)), { partition: run * 2 + 1 }));
            start += size;
            offset += 1;
          }
          const read = async (merchantId: string): Promise<unknown[]> =>
            (await store.readCells({ ...hourTotals, merchantId, dimension: 'event:type' })).map((cell) => ({ ...cell.key, merchantId: '', ...cell.value }));
          assert.deepEqual(await read(split), await read(whole));
        }),
        { numRuns: 25, seed: 4242 },
      );
    });
  });
}

function describeApplyGuards(withStore: WithStore): void {
  test('a gap after the applied offset is rejected as an offset conflict and changes nothing', () =>
    withStore(async ({ store }) => {
      await store.apply(batch(0, 9, [makeCell()]));
      await assert.rejects(store.apply(batch(11, 20, [makeCell()])), isConflict('offset'));
      assert.equal(await store.appliedOffset(stream, 0), 9);
      assert.equal((await store.readCells(hourTotals))[0]?.value.events, 1);
    }));

  test('a first batch must start at offset 0', () =>
    withStore(async ({ store }) => {
      await assert.rejects(store.apply(batch(1, 5, [])), isConflict('offset'));
      assert.equal(await store.appliedOffset(stream, 0), -1);
    }));

  test('an overlapping batch and a replayed batch are rejected and change nothing', () =>
    withStore(async ({ store }) => {
      const first = batch(0, 9, [makeCell({}, { events: 2 })]);
      await store.apply(first);
      await assert.rejects(store.apply(first), isConflict('offset'), 'replay');
      await assert.rejects(store.apply(batch(5, 14, [makeCell()])), isConflict('offset'), 'overlap');
      await assert.rejects(store.apply(batch(9, 9, [makeCell()])), isConflict('offset'), 'last offset again');
      assert.equal(await store.appliedOffset(stream, 0), 9);
      assert.equal((await store.readCells(hourTotals))[0]?.value.events, 2);
    }));

  test('a batch routed with a stale layout epoch is rejected as a layout conflict and changes nothing', () =>
    withStore(async ({ store }) => {
      const { epoch } = await store.layout();
      await store.startReprocess({ id: 'job-1', stream, merchantId: '*', fromMs: dayStartMs, toMs: dayStartMs + dayMs, logicVersion: 'analytics@2', nowMs: 1 });
      await assert.rejects(store.apply(batch(0, 9, [makeCell()], { layoutEpoch: epoch })), isConflict('layout'));
      assert.equal(await store.appliedOffset(stream, 0), -1);
      assert.deepEqual(await store.readCells(hourTotals), []);
      await store.apply(batch(0, 9, [makeCell()], { layoutEpoch: (await store.layout()).epoch }));
      assert.equal(await store.appliedOffset(stream, 0), 9);
    }));

  test('offsets that are not a forward range are a caller bug and throw', () =>
    withStore(async ({ store }) => {
      await assert.rejects(store.apply(batch(5, 4, [])), RangeError);
      await assert.rejects(store.apply(batch(-1, 4, [])), RangeError);
      await assert.rejects(store.apply(batch(0, 4, [], { partition: -1 })), RangeError);
      assert.equal(await store.appliedOffset(stream, 0), -1);
    }));
}

function describeAllOrNothing(withStore: WithStore): void {
  const rejectsWithoutEffect = async (store: RollupStore, cells: Cell[]): Promise<void> => {
    await store.apply(batch(0, 0, [makeCell({}, { events: 1 })]));
    await assert.rejects(store.apply(batch(1, 1, cells)));
    assert.equal(await store.appliedOffset(stream, 0), 0);
    assert.deepEqual((await store.readCells({ ...hourTotals, fromMs: 0 })).map((cell) => [cell.key.bucketMs, cell.value.events]), [[baseTimeMs, 1]]);
  };

  test('a corrupt sketch in the second cell rejects the whole batch', () =>
    withStore(async ({ store }) => {
      const corrupt = makeCell({ bucketMs: baseTimeMs + hourMs });
      const cells = [makeCell({}, { events: 5 }), { key: corrupt.key, value: { ...corrupt.value, users: new Uint8Array([9, 9, 9]) } }];
      await rejectsWithoutEffect(store, cells);
    }));

  test('a corrupt sketch merging into an existing cell rejects the whole batch', () =>
    withStore(async ({ store }) => {
      const good = makeCell({ bucketMs: baseTimeMs + hourMs }, { events: 5 });
      const corrupt = makeCell();
      await rejectsWithoutEffect(store, [good, { key: corrupt.key, value: { ...corrupt.value, sessions: new Uint8Array([1, 14, 5]) } }]);
    }));

  test('a cell of an unknown generation rejects the whole batch', () =>
    withStore(async ({ store }) => {
      await rejectsWithoutEffect(store, [makeCell({ bucketMs: baseTimeMs + hourMs }), makeCell({ generation: 7 })]);
    }));

  test('a bucket not aligned to its granularity rejects the whole batch', () =>
    withStore(async ({ store }) => {
      await rejectsWithoutEffect(store, [makeCell({ bucketMs: baseTimeMs + hourMs }), makeCell({ granularity: 'day', bucketMs: baseTimeMs })]);
    }));

  test('revenue that would overflow 64 bits rejects the whole batch instead of rounding', () =>
    withStore(async ({ store }) => {
      const max = 2n ** 63n - 1n;
      await store.apply(batch(0, 0, [makeCell({ bucketMs: baseTimeMs + hourMs }, { revenue: max })]));
      await assert.rejects(store.apply(batch(1, 1, [makeCell({}, { events: 4 }), makeCell({ bucketMs: baseTimeMs + hourMs }, { revenue: 1n })])));
      await assert.rejects(store.apply(batch(1, 1, [makeCell({}, { revenue: 2n ** 63n })])), 'a cell beyond 64 bits on its own');
      assert.equal(await store.appliedOffset(stream, 0), 0);
      const cells = await store.readCells(hourTotals);
      assert.deepEqual(cells.map((cell) => [cell.key.bucketMs, cell.value.revenue]), [[baseTimeMs + hourMs, max]]);
    }));

  test('negative or fractional event counts are a caller bug and change nothing', () =>
    withStore(async ({ store }) => {
      await rejectsWithoutEffect(store, [makeCell({ bucketMs: baseTimeMs + hourMs }), makeCell({}, { events: -1 })]);
      await assert.rejects(store.apply(batch(1, 1, [makeCell({}, { events: 1.5 })])), RangeError);
    }));
}

function describeReadCells(withStore: WithStore): void {
  const seed = async (store: RollupStore): Promise<void> => {
    await store.startReprocess({ id: 'gen-2', stream, merchantId: '*', fromMs: dayStartMs, toMs: dayStartMs + dayMs, logicVersion: 'analytics@2', nowMs: 1 });
    const { epoch } = await store.layout();
    const cells: Cell[] = [];
    for (let hour = 0; hour < 24; hour += 1) {
      for (const value of ['/a', '/b', '/c']) cells.push(makeCell({ bucketMs: dayStartMs + hour * hourMs, dimension: 'event:path', value }, { events: hour + 1 }));
    }
    cells.push(makeCell({ merchantId: 'm_other', bucketMs: dayStartMs, dimension: 'event:path', value: '/a' }, { events: 100 }));
    cells.push(makeCell({ merchantId: 'm_test_suffix', bucketMs: dayStartMs, dimension: 'event:path', value: '/a' }, { events: 101 }));
    cells.push(makeCell({ generation: 2, bucketMs: dayStartMs, dimension: 'event:path', value: '/a' }, { events: 200 }));
    cells.push(makeCell({ granularity: 'day', bucketMs: dayStartMs, dimension: 'event:path', value: '/a' }, { events: 300 }));
    cells.push(makeCell({ bucketMs: dayStartMs, dimension: 'event:type', value: '/a' }, { events: 400 }));
    await store.apply(batch(0, 0, cells, { layoutEpoch: epoch }));
  };
  const request = { merchantId: 'm_test', generation: 1, granularity: 'hour', dimension: 'event:path', fromMs: dayStartMs, toMs: dayStartMs + dayMs } as const;

  test('readCells returns one (merchant, generation, granularity, dimension) ordered by bucket then value', () =>
    withStore(async ({ store }) => {
      await seed(store);
      const cells = await store.readCells(request);
      assert.equal(cells.length, 72);
      assert.deepEqual(cells.slice(0, 4).map((cell) => [cell.key.bucketMs - dayStartMs, cell.key.value]), [[0, '/a'], [0, '/b'], [0, '/c'], [hourMs, '/a']]);
      assert.ok(cells.every((cell) => cell.key.merchantId === 'm_test' && cell.key.generation === 1 && cell.key.granularity === 'hour' && cell.key.dimension === 'event:path'));
    }));

  test('readCells covers buckets in [fromMs, toMs)', () =>
    withStore(async ({ store }) => {
      await seed(store);
      const cells = await store.readCells({ ...request, fromMs: dayStartMs + hourMs, toMs: dayStartMs + 3 * hourMs });
      assert.deepEqual([...new Set(cells.map((cell) => cell.key.bucketMs - dayStartMs))], [hourMs, 2 * hourMs]);
      assert.deepEqual(await store.readCells({ ...request, fromMs: dayStartMs + hourMs, toMs: dayStartMs + hourMs }), []);
    }));

  test('readCells with values returns only those values; an empty list returns nothing', () =>
    withStore(async ({ store }) => {
      await seed(store);
      const cells = await store.readCells({ ...request, values: ['/b', '/missing', '/b'] });
      assert.equal(cells.length, 24);
      assert.ok(cells.every((cell) => cell.key.value === '/b'));
      assert.deepEqual(await store.readCells({ ...request, values: [] }), []);
    }));

  test('dataVersion moves on with every apply and layout change, and only then', () =>
    withStore(async ({ store }) => {
      const first = await store.dataVersion();
      assert.equal(await store.dataVersion(), first, 'stable while nothing changes');
      const epoch = (await store.layout()).epoch;
      await store.apply({ stream: 's', partition: 0, fromOffset: 0, throughOffset: 4, layoutEpoch: epoch, cells: [makeCell()] });
      const afterApply = await store.dataVersion();
      assert.notEqual(afterApply, first);
      await store.readCells(request);
      assert.equal(await store.dataVersion(), afterApply, 'reads change nothing');
      await store.apply({ stream: 's', partition: 1, fromOffset: 0, throughOffset: 0, layoutEpoch: epoch, cells: [] });
      const afterEmptyApply = await store.dataVersion();
      assert.notEqual(afterEmptyApply, afterApply, 'even an apply without cells (its records may have been scanned raw)');
      await store.startReprocess({ id: 'job-v', stream: 's', merchantId: '*', fromMs: dayStartMs, toMs: dayStartMs + 86_400_000, logicVersion: 'analytics@2', nowMs: 1 });
      assert.notEqual(await store.dataVersion(), afterEmptyApply, 'a layout change');
    }));

  test('readCells reads only the sketches asked for; the others come back empty', () =>
    withStore(async ({ store }) => {
      await seed(store);
      const full = await store.readCells(request);
      assert.ok(full.some((cell) => estimateHllBytes(cell.value.users) > 0), 'the seeded cells carry sketches');
      const sameCounts = (cells: Cell[]) => assert.deepEqual(cells.map((c) => [c.key, c.value.events, c.value.revenue]), full.map((c) => [c.key, c.value.events, c.value.revenue]));
      const none = await store.readCells({ ...request, sketches: [] });
      sameCounts(none);
      assert.ok(none.every((cell) => estimateHllBytes(cell.value.users) === 0 && estimateHllBytes(cell.value.sessions) === 0));
      const users = await store.readCells({ ...request, sketches: ['users'] });
      sameCounts(users);
      assert.deepEqual(users.map((cell) => cell.value.users), full.map((cell) => cell.value.users));
      assert.ok(users.every((cell) => estimateHllBytes(cell.value.sessions) === 0));
    }));

  test("readCells never returns another merchant's, generation's, granularity's or dimension's cells", () =>
    withStore(async ({ store }) => {
      await seed(store);
      const first = async (overrides: object): Promise<number | undefined> => (await store.readCells({ ...request, ...overrides, values: ['/a'] }))[0]?.value.events;
      assert.equal(await first({ merchantId: 'm_other' }), 100);
      assert.equal(await first({ merchantId: 'm_test_suffix' }), 101);
      assert.equal(await first({ generation: 2 }), 200);
      assert.equal(await first({ granularity: 'day' }), 300);
      assert.equal(await first({ dimension: 'event:type' }), 400);
      assert.equal(await first({ merchantId: 'm_none' }), undefined);
      assert.equal(await first({ generation: 3 }), undefined);
    }));

  test('mutating cells read back does not change the store', () =>
    withStore(async ({ store }) => {
      await store.apply(batch(0, 0, [makeCell({}, { users: ['a'] })]));
      const [cell] = await store.readCells(hourTotals);
      cell?.value.users.fill(0);
      assert.deepEqual((await store.readCells(hourTotals))[0]?.value.users, sketch('a'));
    }));
}

const reprocessRange = { fromMs: dayStartMs, toMs: dayStartMs + dayMs };

function startJob(store: RollupStore, id = 'job-1', merchantId = 'm_test') {
  return store.startReprocess({ id, stream, merchantId, ...reprocessRange, logicVersion: 'analytics@2', nowMs: 1000 });
}

function describeReprocessLifecycle(withStore: WithStore): void {
  const range = reprocessRange;
  const start = startJob;

  test('startReprocess allocates the next generation, snapshots applied offsets as the boundary and bumps the epoch', () =>
    withStore(async ({ store }) => {
      await store.apply(batch(0, 41, [], { partition: 0 }));
      await store.apply(batch(0, 7, [], { partition: 3 }));
      await store.apply(batch(0, 99, [], { stream: 'other:events' }));
      const before = await store.layout();
      const job = await start(store);
      assert.deepEqual(job, {
        id: 'job-1', generation: 2, merchantId: 'm_test', ...range, logicVersion: 'analytics@2', state: 'building',
        doneThroughMs: range.fromMs, eventsDone: 0, eventsTotal: null, createdMs: 1000, updatedMs: 1000, error: null,
      });
      const layout = await store.layout();
      assert.notEqual(layout.epoch, before.epoch);
      assert.deepEqual(layout.building, [{ generation: 2, merchantId: 'm_test', ...range, boundary: { 0: 41, 3: 7 } }]);
      assert.deepEqual(layout.generations, [{ generation: 1, logicVersion }, { generation: 2, logicVersion: 'analytics@2' }]);
      assert.deepEqual(layout.base, before.base, 'the base does not move');
      assert.deepEqual(layout.overlays, []);
      assert.deepEqual(await store.reprocessJob('job-1'), job);
    }));

  test('steps merge rebuilt cells into the new generation and record progress', () =>
    withStore(async ({ store }) => {
      await store.apply(batch(0, 0, [makeCell({}, { events: 9 })]));
      const job = await start(store);
      const cell = (events: number) => makeCell({ generation: job.generation }, { events });
      await store.writeReprocessStep({ jobId: 'job-1', cells: [cell(2)], doneThroughMs: range.fromMs + hourMs, eventsDone: 2, eventsTotal: 10, nowMs: 2000 });
      await store.writeReprocessStep({ jobId: 'job-1', cells: [cell(3)], doneThroughMs: range.fromMs + 2 * hourMs, eventsDone: 5, eventsTotal: 10, nowMs: 3000 });
      assert.equal((await store.readCells({ ...hourTotals, generation: 2 }))[0]?.value.events, 5);
      assert.equal((await store.readCells(hourTotals))[0]?.value.events, 9, 'the serving generation is untouched');
      const progress = await store.reprocessJob('job-1');
      assert.deepEqual([progress?.doneThroughMs, progress?.eventsDone, progress?.eventsTotal, progress?.updatedMs, progress?.state], [range.fromMs + 2 * hourMs, 5, 10, 3000, 'building']);
    }));

  test('a step with a cell of another generation or merchant, or progress going back, changes nothing', () =>
    withStore(async ({ store }) => {
      const job = await start(store);
      await store.writeReprocessStep({ jobId: 'job-1', cells: [], doneThroughMs: range.fromMs + hourMs, eventsDone: 4, eventsTotal: null, nowMs: 2000 });
      const step = { jobId: 'job-1', doneThroughMs: range.fromMs + 2 * hourMs, eventsDone: 8, eventsTotal: null, nowMs: 3000 };
      await assert.rejects(store.writeReprocessStep({ ...step, cells: [makeCell({ generation: job.generation }), makeCell({ generation: 1 })] }), RangeError);
      await assert.rejects(store.writeReprocessStep({ ...step, cells: [makeCell({ generation: job.generation, merchantId: 'm_other' })] }), RangeError);
      await assert.rejects(store.writeReprocessStep({ ...step, cells: [], doneThroughMs: range.fromMs }), RangeError);
      await assert.rejects(store.writeReprocessStep({ ...step, cells: [], doneThroughMs: range.toMs + 1 }), RangeError);
      await assert.rejects(store.writeReprocessStep({ ...step, cells: [], eventsDone: 3 }), RangeError);
      const unchanged = await store.reprocessJob('job-1');
      assert.deepEqual([unchanged?.doneThroughMs, unchanged?.eventsDone, unchanged?.updatedMs], [range.fromMs + hourMs, 4, 2000]);
      assert.deepEqual(await store.readCells({ ...hourTotals, generation: job.generation }), []);
    }));

  test('finishReprocess adds the overlay, marks the job done and bumps the epoch in one step', () =>
    withStore(async ({ store }) => {
      const job = await start(store);
      await store.writeReprocessStep({ jobId: 'job-1', cells: [makeCell({ generation: job.generation })], doneThroughMs: range.toMs, eventsDone: 1, eventsTotal: 1, nowMs: 2000 });
      const before = await store.layout();
      const done = await store.finishReprocess('job-1', 5000);
      assert.deepEqual([done.state, done.updatedMs, done.error], ['done', 5000, null]);
      const layout = await store.layout();
      assert.notEqual(layout.epoch, before.epoch);
      assert.deepEqual(layout.overlays, [{ merchantId: 'm_test', ...range, generation: job.generation }]);
      assert.deepEqual(layout.building, []);
      assert.deepEqual(await store.reprocessJobs(), [done]);
      await assert.rejects(store.apply(batch(0, 0, [], { layoutEpoch: before.epoch })), isConflict('layout'));
    }));

}

function describeReprocessErrors(withStore: WithStore): void {
  const range = reprocessRange;
  const start = startJob;

  test('a job cannot finish before its range is complete, nor finish or step twice', () =>
    withStore(async ({ store }) => {
      await start(store);
      await store.writeReprocessStep({ jobId: 'job-1', cells: [], doneThroughMs: range.toMs - 1, eventsDone: 0, eventsTotal: 0, nowMs: 2000 });
      await assert.rejects(store.finishReprocess('job-1', 3000));
      assert.equal((await store.reprocessJob('job-1'))?.state, 'building');
      assert.deepEqual((await store.layout()).overlays, []);
      await store.writeReprocessStep({ jobId: 'job-1', cells: [], doneThroughMs: range.toMs, eventsDone: 0, eventsTotal: 0, nowMs: 2000 });
      await store.finishReprocess('job-1', 3000);
      await assert.rejects(store.finishReprocess('job-1', 4000));
      await assert.rejects(store.writeReprocessStep({ jobId: 'job-1', cells: [], doneThroughMs: range.toMs, eventsDone: 0, eventsTotal: 0, nowMs: 4000 }));
      assert.equal((await store.layout()).overlays.length, 1);
    }));

  test('failReprocess marks the job failed, drops it from building and adds no overlay; failing again is a no-op', () =>
    withStore(async ({ store }) => {
      await start(store);
      const before = await store.layout();
      await store.failReprocess('job-1', 'disk full', 6000);
      const layout = await store.layout();
      assert.notEqual(layout.epoch, before.epoch);
      assert.deepEqual(layout.building, []);
      assert.deepEqual(layout.overlays, []);
      const failed = await store.reprocessJob('job-1');
      assert.deepEqual([failed?.state, failed?.error, failed?.updatedMs], ['failed', 'disk full', 6000]);
      await store.failReprocess('job-1', 'again', 7000);
      assert.equal((await store.reprocessJob('job-1'))?.error, 'disk full');
      assert.equal((await store.layout()).epoch, layout.epoch);
      await assert.rejects(store.finishReprocess('job-1', 8000));
    }));

  test('a done job cannot fail; unknown jobs are reprocess_job_not_found', () =>
    withStore(async ({ store }) => {
      await start(store);
      await store.writeReprocessStep({ jobId: 'job-1', cells: [], doneThroughMs: range.toMs, eventsDone: 0, eventsTotal: 0, nowMs: 2000 });
      await store.finishReprocess('job-1', 3000);
      await assert.rejects(store.failReprocess('job-1', 'late', 4000));
      assert.equal((await store.reprocessJob('job-1'))?.state, 'done');
      const notFound = (error: unknown) => isTallyError(error) && error.code === 'reprocess_job_not_found';
      await assert.rejects(store.writeReprocessStep({ jobId: 'nope', cells: [], doneThroughMs: 0, eventsDone: 0, eventsTotal: null, nowMs: 1 }), notFound);
      await assert.rejects(store.finishReprocess('nope', 1), notFound);
      await assert.rejects(store.failReprocess('nope', 'x', 1), notFound);
    }));

  test('startReprocess rejects an empty or reversed range and a reused id, changing nothing', () =>
    withStore(async ({ store }) => {
      const invalid = (error: unknown) => isTallyError(error) && error.code === 'reprocess_range_invalid';
      await assert.rejects(store.startReprocess({ id: 'a', stream, merchantId: '*', fromMs: 5, toMs: 5, logicVersion: 'v', nowMs: 1 }), invalid);
      await assert.rejects(store.startReprocess({ id: 'a', stream, merchantId: '*', fromMs: 6, toMs: 5, logicVersion: 'v', nowMs: 1 }), invalid);
      const epoch = (await store.layout()).epoch;
      await start(store, 'job-1');
      await assert.rejects(start(store, 'job-1'));
      const layout = await store.layout();
      assert.equal(layout.generations.length, 2);
      assert.equal(layout.building.length, 1);
      assert.notEqual(layout.epoch, epoch);
    }));

  test('generations keep counting up after a failed job, and later overlays come last', () =>
    withStore(async ({ store }) => {
      await start(store, 'job-1');
      await store.failReprocess('job-1', 'bug', 2000);
      const second = await start(store, 'job-2', '*');
      assert.equal(second.generation, 3);
      await store.writeReprocessStep({ jobId: 'job-2', cells: [], doneThroughMs: range.toMs, eventsDone: 0, eventsTotal: 0, nowMs: 3000 });
      await store.finishReprocess('job-2', 4000);
      const third = await start(store, 'job-3');
      await store.writeReprocessStep({ jobId: 'job-3', cells: [], doneThroughMs: range.toMs, eventsDone: 0, eventsTotal: 0, nowMs: 5000 });
      await store.finishReprocess('job-3', 6000);
      assert.deepEqual((await store.layout()).overlays.map((overlay) => [overlay.merchantId, overlay.generation]), [['*', 3], ['m_test', 4]]);
      assert.deepEqual((await store.reprocessJobs()).map((job) => [job.id, job.state]), [['job-1', 'failed'], ['job-2', 'done'], ['job-3', 'done']]);
    }));

  test('live batches may write a building generation alongside the serving one', () =>
    withStore(async ({ store }) => {
      const job = await start(store);
      const { epoch } = await store.layout();
      await store.apply(batch(0, 0, [makeCell({}, { events: 1 }), makeCell({ generation: job.generation }, { events: 1 })], { layoutEpoch: epoch }));
      assert.equal((await store.readCells({ ...hourTotals, generation: job.generation }))[0]?.value.events, 1);
      assert.equal((await store.readCells(hourTotals))[0]?.value.events, 1);
    }));
}

function describePersistence(options: RollupStoreContractOptions): void {
  test('cells, offsets, layout and jobs survive closing and reopening; the stored base logic version is kept', async (t) => {
    const fixture = await options.create({ logicVersion });
    try {
      if (!fixture.reopen) {
        t.skip('the adapter keeps no state across instances');
        return;
      }
      const store = fixture.store;
      await store.apply(batch(0, 4, [makeCell({}, { events: 3, revenue: 2n ** 60n })]));
      const building = await store.startReprocess({ id: 'job-1', stream, merchantId: '*', fromMs: dayStartMs, toMs: dayStartMs + dayMs, logicVersion: 'analytics@2', nowMs: 1 });
      await store.writeReprocessStep({ jobId: 'job-1', cells: [makeCell({ generation: 2 })], doneThroughMs: dayStartMs + hourMs, eventsDone: 1, eventsTotal: 2, nowMs: 2 });
      await store.startReprocess({ id: 'job-2', stream, merchantId: 'm_x', fromMs: dayStartMs, toMs: dayStartMs + hourMs, logicVersion: 'analytics@2', nowMs: 3 });
      await store.writeReprocessStep({ jobId: 'job-2', cells: [], doneThroughMs: dayStartMs + hourMs, eventsDone: 0, eventsTotal: 0, nowMs: 4 });
      await store.finishReprocess('job-2', 5);
      const layout = await store.layout();
      const jobs = await store.reprocessJobs();
      const cells = await store.readCells(hourTotals);

      const reopened = await fixture.reopen({ logicVersion: 'analytics@9' });
      assert.deepEqual(await reopened.layout(), layout);
      assert.equal((await reopened.layout()).base.logicVersion, logicVersion);
      assert.deepEqual(await reopened.reprocessJobs(), jobs);
      assert.deepEqual(await reopened.reprocessJob(building.id), jobs[0]);
      assert.deepEqual(await reopened.readCells(hourTotals), cells);
      assert.equal(await reopened.appliedOffset(stream, 0), 4);
      await assert.rejects(reopened.apply(batch(0, 4, [makeCell()], { layoutEpoch: layout.epoch })), isConflict('offset'), 'a replay after restart still conflicts');
      await reopened.apply(batch(5, 5, [makeCell()], { layoutEpoch: layout.epoch }));
      assert.equal((await reopened.readCells(hourTotals))[0]?.value.events, 4);
    } finally {
      await fixture.dispose();
    }
  });
}
