// Runs the RollupStore contract against the Cassandra adapter on a real Cassandra, each fixture in a
// fresh keyspace (created and migrated here, dropped afterwards), plus the cases only a distributed
// store has: members that die after their claim or halfway through their cells, a zombie applying
// another offset range, a zombie's late write, and a reprocessing snapshot taken while members are
// mid-apply — every record must count exactly once, checked against the memory adapter's merge.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CassandraRollupStore, rollupStoreSchema, type RollupFaultEvent, type RollupFaults } from '../../src/adapters/cassandra/rollup-store.ts';
import { CassandraSession } from '../../src/adapters/cassandra/session.ts';
import { seededRandom } from '../../src/adapters/memory/prng.ts';
import { estimateHllBytes } from '../../src/core/analytics/hll.ts';
import { CellBuilder, targetGenerations } from '../../src/core/analytics/rollup.ts';
import type { TrackedEvent } from '../../src/core/event.ts';
import { time } from '../../src/core/limits.ts';
import { RollupConflictError, type ApplyBatch, type Cell, type RollupLayout, type RollupStore } from '../../src/core/ports/rollup-store.ts';
import { runRollupStoreContract } from '../contracts/rollup-store.contract.ts';
import { snapshotCells, type CellSnapshot } from '../support/analytics.ts';
import { engineAddresses, enginesMissing, uniqueName } from '../support/engines.ts';
import { makeEvent } from '../support/events.ts';

async function connect(keyspace: string): Promise<CassandraSession> {
  const addresses = engineAddresses();
  return CassandraSession.connect({
    contactPoints: addresses.cassandraContactPoints,
    localDataCenter: addresses.cassandraDc,
    keyspace,
    replication: { [addresses.cassandraDc]: 1 },
  });
}

/**
 * A fresh, migrated keyspace. Each `open` connects its own session (a member in its own process);
 * dispose closes them all and drops the keyspace.
 */
class Installation {
  readonly keyspace = uniqueName('t_rollups');
  readonly #sessions: CassandraSession[] = [];

  static async create(): Promise<Installation> {
    const installation = new Installation();
    const session = await installation.session();
    try {
      await session.createKeyspace();
      await session.migrate(rollupStoreSchema);
    } catch (error) {
      await installation.dispose();
      throw error;
    }
    return installation;
  }

  async session(): Promise<CassandraSession> {
    const session = await connect(this.keyspace);
    this.#sessions.push(session);
    return session;
  }

  async open(options: { logicVersion?: string; faults?: RollupFaults } = {}): Promise<CassandraRollupStore> {
    const session = await this.session();
    return CassandraRollupStore.open({ session, logicVersion: options.logicVersion ?? 'analytics@1', ...(options.faults ? { faults: options.faults } : {}) });
  }

  async dispose(): Promise<void> {
    try {
      await this.#sessions[0]?.dropKeyspace();
    } finally {
      await Promise.all(this.#sessions.map((session) => session.close()));
    }
  }
}

const stream = 'analytics:events';
/** 2024-01-15T00:00:00Z; records fall within the two days from here. */
const dayStartMs = Date.UTC(2024, 0, 15);
/** A reprocessing range covering every record. */
const jobRange = { fromMs: dayStartMs, toMs: dayStartMs + 3 * time.dayMs };

interface LogRecord {
  readonly event: TrackedEvent;
  readonly partition: number;
  readonly offset: number;
}

/** `count` varied records of one partition (two merchants, paths, sources, browsers, devices, some revenue), offsets from 0. */
function makeRecords(options: { partition: number; count: number; seed: number; spanMs?: number }): LogRecord[] {
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  return Array.from({ length: options.count }, (_, offset) => {
    const purchase = random() < 0.15;
    const visitor = Math.floor(random() * 40);
    const event = makeEvent({
      merchantId: pick(['m_a', 'm_b']),
      type: purchase ? 'purchase' : 'pageview',
      timestampMs: dayStartMs + Math.floor(random() * (options.spanMs ?? 2 * time.dayMs)),
      visitorId: `a:visitor-${visitor}`,
      sessionId: `session-${visitor}-${Math.floor(random() * 3)}`,
      revenue: purchase ? { amount: 100 + Math.floor(random() * 100_000), currency: 'USD' } : null,
      // Non-ASCII paths too: intents and rows carry UTF-8.
      page: { path: `/${pick(['products', 'produits/été', '商品'])}/${Math.floor(random() * random() * 30)}`, host: 'shop.example', referrer: null, title: null },
      visit: { source: pick([null, 'google', 'newsletter']), browser: pick(['Chrome', 'Firefox', 'Safari']), device: pick(['desktop', 'mobile']) },
    });
    return { event, partition: options.partition, offset };
  });
}

/** The batch a processor would apply for these records under `layout`. */
function batchOf(records: readonly LogRecord[], layout: RollupLayout): ApplyBatch {
  const builder = new CellBuilder(() => 'USD');
  for (const record of records) {
    for (const generation of targetGenerations(layout, record)) builder.add(record.event, generation);
  }
  const first = records[0]!;
  return {
    stream, partition: first.partition, fromOffset: first.offset, throughOffset: records[records.length - 1]!.offset,
    layoutEpoch: layout.epoch, cells: builder.cells(),
  };
}

/** The reference: every record added exactly once, in one pass, as snapshotCells reports cells. */
function referenceCells(records: readonly LogRecord[], generation: number): { cells: Cell[]; snapshot: Map<string, CellSnapshot> } {
  const builder = new CellBuilder(() => 'USD');
  for (const record of records) builder.add(record.event, generation);
  const cells = builder.cells();
  const snapshot = new Map<string, CellSnapshot>();
  for (const { key, value } of cells) {
    snapshot.set(`${key.merchantId}|${key.granularity}|${key.bucketMs}|${key.dimension}|${key.value}`, {
      events: value.events, revenue: value.revenue.toString(), users: estimateHllBytes(value.users), sessions: estimateHllBytes(value.sessions),
    });
  }
  return { cells, snapshot };
}

async function assertCountedOnce(store: RollupStore, records: readonly LogRecord[], generation: number): Promise<void> {
  const reference = referenceCells(records, generation);
  const merchants = [...new Set(reference.cells.map((cell) => cell.key.merchantId))];
  const dimensions = [...new Set(reference.cells.map((cell) => cell.key.dimension))];
  assert.deepEqual(await snapshotCells(store, merchants, dimensions, generation), reference.snapshot);
}

class InjectedCrash extends Error {
  constructor(event: RollupFaultEvent) {
    super(`injected crash at ${event.point} of ${event.source}@${event.seq}`);
    this.name = 'InjectedCrash';
  }
}

function isConflict(reason: 'offset' | 'layout'): (error: unknown) => boolean {
  return (error) => error instanceof RollupConflictError && error.reason === reason;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/**
 * Starts a write that must stall at a fault point: resolves once it has reached it, with the
 * write's eventual outcome (taken at once, so an early failure is never an unhandled rejection).
 * Rejects if the write settles before stalling — a test waiting for it would otherwise hang.
 */
async function stalledAt(reached: Promise<void>, write: Promise<unknown>): Promise<{ outcome: Promise<unknown> }> {
  const outcome = write.then(() => 'done', (error: unknown) => error);
  await Promise.race([reached, outcome.then((result) => {
    throw new Error(`the write settled before reaching its fault point: ${String(result)}`);
  })]);
  return { outcome };
}

function describeCrashesAndZombies(): void {
  describe('cassandra rollup store: crashes and zombies', () => {
    test('members that die after their claim or halfway through their cells, and a zombie applying another range: every record counts once', async () => {
      const installation = await Installation.create();
      try {
        const records = makeRecords({ partition: 0, count: 300, seed: 1 });
        const range = (from: number, through: number) => records.slice(from, through + 1);
        let faultsOfA: RollupFaults | null = null;
        let faultsOfB: RollupFaults | null = null;
        const a = await installation.open({ faults: (event) => faultsOfA?.(event) });
        const b = await installation.open({ faults: (event) => faultsOfB?.(event) });
        const layout = await a.layout();

        await a.apply(batchOf(range(0, 49), layout));
        faultsOfA = (event) => {
          if (event.point === 'claimed') throw new InjectedCrash(event);
        };
        await assert.rejects(a.apply(batchOf(range(50, 119), layout)), InjectedCrash);
        faultsOfA = null;
        assert.equal(await b.appliedOffset(stream, 0), 119, 'the next owner finishes the batch its predecessor claimed');

        let batchesTotal = 0;
        faultsOfB = (event) => {
          if (event.point !== 'cell-batch') return;
          batchesTotal = event.batchesTotal!;
          if (event.batchIndex! >= event.batchesTotal! / 2) throw new InjectedCrash(event);
        };
        await assert.rejects(b.apply(batchOf(range(120, 199), layout)), InjectedCrash);
        faultsOfB = null;
        assert.ok(batchesTotal >= 4, `the batch spans several cell batches, so half of them were written (${batchesTotal})`);

        // The zombie still believes 49 is applied and sends another range: it finishes B's half-written batch instead, and is refused.
        await assert.rejects(a.apply(batchOf(range(50, 149), layout)), isConflict('offset'));
        const c = await installation.open();
        assert.equal(await c.appliedOffset(stream, 0), 199);
        await c.apply(batchOf(range(200, 299), layout));
        assert.equal(await c.appliedOffset(stream, 0), 299);
        await assertCountedOnce(c, records, 1);
      } finally {
        await installation.dispose();
      }
    });

    test("a zombie's late write of an older state loses to the newer one: write timestamps are offsets", async () => {
      const installation = await Installation.create();
      try {
        const records = makeRecords({ partition: 0, count: 40, seed: 2, spanMs: time.hourMs });
        const stalled = deferred();
        const resume = deferred();
        const zombie = await installation.open({
          faults: async (event) => {
            if (event.point !== 'cell-batch' || event.seq !== 19) return;
            stalled.resolve();
            await resume.promise;
          },
        });
        const owner = await installation.open();
        const layout = await owner.layout();
        // The zombie has read its rows and merged them, and stalls before writing them.
        const late = await stalledAt(stalled.promise, zombie.apply(batchOf(records.slice(0, 20), layout)));
        assert.equal(await owner.appliedOffset(stream, 0), 19);
        await owner.apply(batchOf(records.slice(20), layout));
        resume.resolve();
        assert.equal(await late.outcome, 'done', 'its batch is applied (by the owner), so the zombie\'s apply succeeds');
        await assertCountedOnce(owner, records, 1);

        const session = await installation.session();
        const merchantId = records[0]!.event.merchantId;
        const row = (await session.execute(
          `SELECT seq, writetime(events) AS written FROM ${session.table('rollup_cells')}
           WHERE merchant_id = ? AND generation = 1 AND granularity = 'hour' AND dimension = '' AND span_start_ms = ? AND bucket_ms = ? AND value = '' AND source = ?`,
          [merchantId, dayStartMs, dayStartMs, `${stream}/0`], { idempotent: true },
        )).first();
        assert.deepEqual([Number(row?.get('seq')), Number(row?.get('written'))], [39, 39], 'the row carries the newest batch, written at its offset');
      } finally {
        await installation.dispose();
      }
    });

    test('a reprocessing snapshot taken while members are mid-apply counts every record in the new generation exactly once', async () => {
      const installation = await Installation.create();
      try {
        const partition0 = makeRecords({ partition: 0, count: 200, seed: 3 });
        const partition1 = makeRecords({ partition: 1, count: 200, seed: 4 });
        const claimed = deferred();
        const checked = deferred();
        const resume = deferred();
        const pauseAt = (point: RollupFaultEvent['point'], source: string, reached: () => void): RollupFaults => async (event) => {
          if (event.point !== point || event.source !== source || event.seq !== 99) return;
          reached();
          await resume.promise;
        };
        const claimer = await installation.open({ faults: pauseAt('claimed', `${stream}/0`, claimed.resolve) });
        const checker = await installation.open({ faults: pauseAt('layout-checked', `${stream}/1`, checked.resolve) });
        const starter = await installation.open();
        const before = await starter.layout();
        await claimer.apply(batchOf(partition0.slice(0, 50), before));
        await claimer.apply(batchOf(partition1.slice(0, 50), before));
        // One member has claimed [50, 99] of partition 0; another has checked the layout for [50, 99] of partition 1.
        const [claimedApply, checkedApply] = await Promise.all([
          stalledAt(claimed.promise, claimer.apply(batchOf(partition0.slice(50, 100), before))),
          stalledAt(checked.promise, checker.apply(batchOf(partition1.slice(50, 100), before))),
        ]);

        const job = await starter.startReprocess({ id: 'job-r', stream, merchantId: '*', ...jobRange, logicVersion: 'analytics@2', nowMs: 1 });
        resume.resolve();
        assert.equal(await claimedApply.outcome, 'done', 'the snapshot finished it: inside the boundary');
        assert.ok(isConflict('layout')(await checkedApply.outcome), 'the fence refuses a claim routed before the snapshot');
        const after = await starter.layout();
        assert.deepEqual(after.building.map((building) => building.boundary), [{ 0: 99, 1: 49 }]);

        // Live: the rest, routed with the boundary (records past it go to generation 2 as well).
        await starter.apply(batchOf(partition0.slice(100), after));
        await starter.apply(batchOf(partition1.slice(50), after));
        // The rebuild: records at or below the boundary, as if scanned from the raw store.
        const boundary = after.building[0]!.boundary;
        const rebuilt = [...partition0, ...partition1].filter((record) => record.offset <= (boundary[record.partition] ?? -1));
        const builder = new CellBuilder(() => 'USD');
        for (const record of rebuilt) builder.add(record.event, job.generation);
        await starter.writeReprocessStep({
          jobId: job.id, cells: builder.cells(), doneThroughMs: job.toMs, eventsDone: rebuilt.length, eventsTotal: rebuilt.length, nowMs: 2,
        });

        const everything = [...partition0, ...partition1];
        await assertCountedOnce(starter, everything, job.generation);
        await assertCountedOnce(starter, everything, 1);
      } finally {
        await installation.dispose();
      }
    });

    test('a reprocessing start that dies before taking its boundary blocks nothing: the next member takes it', async () => {
      const installation = await Installation.create();
      try {
        const records = makeRecords({ partition: 0, count: 60, seed: 5 });
        const starter = await installation.open({
          faults: (event) => {
            if (event.point === 'snapshot-started') throw new InjectedCrash(event);
          },
        });
        const member = await installation.open();
        const before = await member.layout();
        await member.apply(batchOf(records.slice(0, 30), before));
        await assert.rejects(starter.startReprocess({ id: 'job-s', stream, merchantId: '*', ...jobRange, logicVersion: 'analytics@2', nowMs: 1 }), InjectedCrash);
        await assert.rejects(member.apply(batchOf(records.slice(30), before)), isConflict('layout'));
        const after = await member.layout();
        assert.deepEqual(after.building.map((building) => [building.generation, building.boundary]), [[2, { 0: 29 }]]);
        await member.apply(batchOf(records.slice(30), after));
        assert.equal(await member.appliedOffset(stream, 0), 59);
        assert.equal((await member.reprocessJob('job-s'))?.state, 'building');
      } finally {
        await installation.dispose();
      }
    });
  });
}

function describeStoreLifecycle(): void {
  describe('cassandra rollup store: lifecycle', () => {
    test('a store refuses a keyspace `tally migrate` has not set up; a closed store refuses calls while its session stays open', async () => {
      const session = await connect(uniqueName('t_rollups_bare'));
      try {
        await session.createKeyspace();
        await assert.rejects(CassandraRollupStore.open({ session, logicVersion: 'analytics@1' }), /tally migrate/);
        await session.migrate(rollupStoreSchema);
        const store = await CassandraRollupStore.open({ session, logicVersion: 'analytics@1' });
        await store.ping();
        await store.close();
        await assert.rejects(store.layout(), /closed/);
        await session.ping();
      } finally {
        await session.dropKeyspace();
        await session.close();
      }
    });
  });
}

const missing = await enginesMissing('cassandra');

if (missing) {
  test('Cassandra rollup store', (t) => {
    t.skip(missing);
  });
} else {
  runRollupStoreContract({
    name: 'cassandra',
    create: async ({ logicVersion }) => {
      const installation = await Installation.create();
      const session = await installation.session();
      let current = await CassandraRollupStore.open({ session, logicVersion });
      return {
        store: current,
        async reopen(options) {
          await current.close();
          current = await CassandraRollupStore.open({ session, logicVersion: options.logicVersion });
          return current;
        },
        async dispose() {
          await current.close();
          await installation.dispose();
        },
      };
    },
  });
  describeCrashesAndZombies();
  describeStoreLifecycle();
}
