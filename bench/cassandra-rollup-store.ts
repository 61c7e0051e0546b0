// Figures for the Cassandra rollup store on the running engine (not a test): apply throughput for
// 20,000-event batches built by the processor's CellBuilder — live batches (events of the last
// minutes) and backfill batches (a day each) — and readCells latency for a 30-day daily series and
// a top-paths read (counts of every path, then sketches of the top ten), on 30 days of data.
// Run: node bench/cassandra-rollup-store.ts   (a keyspace bench_rollups_<time> is created and dropped)
import { CassandraRollupStore, rollupStoreSchema, type RollupFaultEvent } from '../src/adapters/cassandra/rollup-store.ts';
import { CassandraSession } from '../src/adapters/cassandra/session.ts';
import { seededRandom } from '../src/adapters/memory/prng.ts';
import { CellBuilder } from '../src/core/analytics/rollup.ts';
import { emptyVisit, type TrackedEvent } from '../src/core/event.ts';
import { time } from '../src/core/limits.ts';
import type { ApplyBatch, CellRangeRequest, RollupStore } from '../src/core/ports/rollup-store.ts';

const batchEvents = 20_000;
const stream = 'analytics:events';
const merchantId = 'm_bench';
const todayMs = Math.floor(Date.now() / time.dayMs) * time.dayMs;

const random = seededRandom(7);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const paths = Array.from({ length: 500 }, (_, index) => `/products/item-${index}`);
const sources = [null, 'google', 'bing', 'newsletter', ...Array.from({ length: 46 }, (_, index) => `blog-${index}.example`)];
const browsers = ['Chrome', 'Firefox', 'Safari', 'Edge', 'Opera', 'Samsung Internet'];

/** Shop traffic: a few paths get most views (squared uniform), 100,000 visitors, 3% purchases. */
function makeEvent(timestampMs: number): TrackedEvent {
  const visitor = Math.floor(random() * 100_000);
  const purchase = random() < 0.03;
  return {
    merchantId, id: `e-${random().toString(36).slice(2)}`, type: purchase ? 'purchase' : 'pageview', timestampMs, receivedMs: timestampMs,
    userId: null, anonymousId: `anon-${visitor}`, sessionId: `s-${visitor}-${Math.floor(timestampMs / (30 * time.minuteMs))}`,
    visitorId: `a:anon-${visitor}`, properties: null,
    revenue: purchase ? { amount: 500 + Math.floor(random() * 20_000), currency: 'USD' } : null,
    page: { path: paths[Math.floor(random() * random() * paths.length)]!, host: 'shop.example', referrer: null, title: null },
    visit: { ...emptyVisit, source: pick(sources), browser: pick(browsers), os: pick(['Windows', 'macOS', 'iOS', 'Android']), device: pick(['desktop', 'mobile', 'tablet']) },
    locale: 'en-US',
  };
}

function batchOf(fromOffset: number, startMs: number, spanMs: number, epoch: number): ApplyBatch {
  const builder = new CellBuilder(() => 'USD');
  for (let index = 0; index < batchEvents; index++) builder.add(makeEvent(startMs + Math.floor((index / batchEvents) * spanMs)), 1);
  return { stream, partition: 0, fromOffset, throughOffset: fromOffset + batchEvents - 1, layoutEpoch: epoch, cells: builder.cells() };
}

interface Phases { checked: number; claimed: number; firstWrite: number; written: number }

async function applyTimed(store: RollupStore, batch: ApplyBatch, phases: Phases): Promise<number> {
  const startedMs = performance.now();
  phases.checked = phases.claimed = phases.firstWrite = phases.written = 0;
  await store.apply(batch);
  return performance.now() - startedMs;
}

async function applyRun(store: RollupStore, label: string, batches: readonly ApplyBatch[], phases: Phases): Promise<void> {
  let totalMs = 0;
  let cells = 0;
  const perPhase = { check: 0, intentAndClaim: 0, readAndMerge: 0, writes: 0, finish: 0 };
  for (const batch of batches) {
    const startedMs = performance.now();
    const elapsedMs = await applyTimed(store, batch, phases);
    totalMs += elapsedMs;
    cells += batch.cells.length;
    perPhase.check += phases.checked - startedMs;
    perPhase.intentAndClaim += phases.claimed - phases.checked;
    perPhase.readAndMerge += (phases.firstWrite || phases.written) - phases.claimed;
    perPhase.writes += phases.written - (phases.firstWrite || phases.written);
    perPhase.finish += startedMs + elapsedMs - phases.written;
  }
  const events = batches.length * batchEvents;
  const share = Object.entries(perPhase).map(([name, ms]) => `${name} ${(ms / batches.length).toFixed(0)} ms`).join(', ');
  console.log(`${label}: ${batches.length} batches of ${batchEvents} events, ${(cells / batches.length).toFixed(0)} cells each; `
    + `${(totalMs / batches.length).toFixed(0)} ms per batch → ${(events / (totalMs / 1000)).toFixed(0)} events/s, ${(cells / (totalMs / 1000)).toFixed(0)} cells/s`);
  console.log(`  per batch: ${share}`);
}

async function latency(label: string, runs: number, read: () => Promise<number>): Promise<void> {
  const times: number[] = [];
  let cells = 0;
  for (let run = 0; run < runs; run++) {
    const startedMs = performance.now();
    cells = await read();
    times.push(performance.now() - startedMs);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1);
  console.log(`${label}: ${cells} cells, median ${at(0.5)} ms, p90 ${at(0.9)} ms (${runs} runs)`);
}

const session = await CassandraSession.connect({
  contactPoints: (process.env.TALLY_CASSANDRA_CONTACT_POINTS ?? process.env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042').split(','),
  localDataCenter: process.env.TALLY_CASSANDRA_DC ?? process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1',
  keyspace: `bench_rollups_${Date.now().toString(36)}`,
  replication: { [process.env.TALLY_CASSANDRA_DC ?? process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1']: 1 },
});
try {
  await session.createKeyspace();
  await session.migrate(rollupStoreSchema);
  const phases: Phases = { checked: 0, claimed: 0, firstWrite: 0, written: 0 };
  const mark = (event: RollupFaultEvent): void => {
    const nowMs = performance.now();
    if (event.point === 'layout-checked') phases.checked = nowMs;
    else if (event.point === 'claimed') phases.claimed = nowMs;
    else if (event.point === 'cell-batch' && phases.firstWrite === 0) phases.firstWrite = nowMs;
    else if (event.point === 'cells-written') phases.written = nowMs;
  };
  const store = await CassandraRollupStore.open({ session, logicVersion: 'analytics@1', faults: mark });
  const { epoch } = await store.layout();

  // Backfill: 30 days, one batch per day (also the data the reads below run on).
  const backfill = Array.from({ length: 30 }, (_, day) => batchOf(day * batchEvents, todayMs - (30 - day) * time.dayMs, time.dayMs, epoch));
  await applyRun(store, 'backfill (a day per batch)', backfill, phases);
  // Live: consecutive batches of events from the last minutes (~330 events/s), into today's cells.
  const live = Array.from({ length: 10 }, (_, index) =>
    batchOf((30 + index) * batchEvents, todayMs + index * time.minuteMs, time.minuteMs, epoch));
  await applyRun(store, 'live (a minute per batch)', live, phases);

  const month: CellRangeRequest = { merchantId, generation: 1, granularity: 'day', dimension: '', fromMs: todayMs - 30 * time.dayMs, toMs: todayMs };
  await latency('30-day daily series (totals, with sketches)', 30, async () => (await store.readCells(month)).length);
  const pathCounts = { ...month, dimension: 'event:path', sketches: [] } as const;
  await latency('top paths, step 1: 30 days of day cells of every path, counts only', 30, async () => (await store.readCells(pathCounts)).length);
  const counts = new Map<string, number>();
  for (const cell of await store.readCells(pathCounts)) counts.set(cell.key.value, (counts.get(cell.key.value) ?? 0) + cell.value.events);
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([value]) => value);
  await latency('top paths, step 2: users sketches of the top 10 paths over 30 days', 30, async () =>
    (await store.readCells({ ...month, dimension: 'event:path', values: top, sketches: ['users'] })).length);
  const hours = { ...month, granularity: 'hour', dimension: 'event:path', sketches: [] } as const;
  await latency('30 days of hour cells of every path, counts only', 5, async () => (await store.readCells(hours)).length);
} finally {
  await session.dropKeyspace();
  await session.close();
}
