// Latency of the query engine's two target queries (30-day daily series, 30-day top 10 paths) over
// the rollup cells of synthetic events in the memory rollup store: `node bench/query-engine.ts
// [events]`. Figures, not pass/fail; "engine only" reads through a cache to leave out the adapter.
import { MemoryEventStore } from '../src/adapters/memory/event-store.ts';
import { MemoryRollupStore } from '../src/adapters/memory/rollup-store.ts';
import { CellBuilder } from '../src/core/analytics/rollup.ts';
import { currentRules } from '../src/core/analytics/rules.ts';
import { emptyVisit, type TrackedEvent } from '../src/core/event.ts';
import { time } from '../src/core/limits.ts';
import type { Cell, CellRangeRequest, RollupStore } from '../src/core/ports/rollup-store.ts';
import { runQuery, type QueryContext } from '../src/analytics/query/index.ts';

const eventsTotal = Number(process.argv[2] ?? 1_000_000);
const merchantId = 'm_bench';
const days = 30;
/** Today at 12:00 UTC: "30d" covers 30 whole UTC days ending at midnight tonight. */
const nowMs = Date.UTC(2026, 10, 21, 12);
const fromMs = Date.UTC(2026, 10, 21) - (days - 1) * time.dayMs;
const batchEvents = 20_000;
const iterations = 300;

/** Deterministic pseudo-random numbers (xorshift32). */
let state = 2463534242;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4294967296;
}

/** Zipf-like choice among `count` items: a few popular paths, a long tail. */
function skewed(count: number): number {
  return Math.min(count - 1, Math.floor(count * random() ** 3));
}

function syntheticEvent(index: number): TrackedEvent {
  const timestampMs = fromMs + Math.floor(random() * days * time.dayMs);
  const visitor = skewed(60_000);
  const purchase = random() < 0.03;
  return {
    merchantId, id: `e${index}`, type: purchase ? 'purchase' : random() < 0.8 ? 'pageview' : 'signup',
    timestampMs, receivedMs: timestampMs, userId: null, anonymousId: null,
    sessionId: `s${visitor}-${Math.floor(timestampMs / (6 * time.hourMs))}`, visitorId: `v:${visitor}`,
    properties: random() < 0.2 ? { plan: random() < 0.7 ? 'free' : 'pro' } : null,
    revenue: purchase ? { amount: 500 + Math.floor(random() * 20_000), currency: random() < 0.8 ? 'USD' : 'EUR' } : null,
    page: { path: `/p/${skewed(500)}`, host: 'shop.example', referrer: null, title: null },
    visit: { ...emptyVisit, source: ['google', 'twitter', null, 'bing'][skewed(4)]!, country: ['US', 'DE', 'IN', 'FR', 'BR'][skewed(5)]!, browser: 'Chrome', os: 'Linux', device: 'desktop' },
    locale: null,
  };
}

async function load(rollups: MemoryRollupStore): Promise<number> {
  let cells = 0;
  for (let first = 0; first < eventsTotal; first += batchEvents) {
    const builder = new CellBuilder(() => 'USD');
    const count = Math.min(batchEvents, eventsTotal - first);
    for (let index = 0; index < count; index++) builder.add(syntheticEvent(first + index), 1);
    const batch = builder.cells();
    cells += batch.length;
    const layout = await rollups.layout();
    await rollups.apply({ stream: 'analytics:events', partition: 0, fromOffset: first, throughOffset: first + count - 1, layoutEpoch: layout.epoch, cells: batch });
  }
  return cells;
}

/** The same store with readCells answered from a cache: what the engine costs on its own. */
function cached(store: RollupStore): RollupStore {
  const cache = new Map<string, Promise<Cell[]>>();
  return Object.assign(Object.create(store) as RollupStore, {
    readCells(request: CellRangeRequest): Promise<Cell[]> {
      const key = JSON.stringify(request);
      let cells = cache.get(key);
      if (!cells) {
        cells = store.readCells(request);
        cache.set(key, cells);
      }
      return cells;
    },
    layout: () => store.layout(),
  });
}

async function measure(name: string, body: unknown, context: QueryContext): Promise<void> {
  const samples: number[] = [];
  for (let index = 0; index < iterations; index++) {
    const started = performance.now();
    await runQuery(body, context, nowMs);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const at = (quantile: number): string => samples[Math.min(samples.length - 1, Math.floor(quantile * samples.length))]!.toFixed(2);
  const totalMs = samples.reduce((sum, value) => sum + value, 0);
  console.log(`${name.padEnd(52)} p50 ${at(0.5)} ms  p99 ${at(0.99)} ms  ${(iterations / (totalMs / 1000)).toFixed(0)} queries/s (one at a time)`);
}

const rollups = MemoryRollupStore.create({ logicVersion: currentRules.logicVersion });
const loadStarted = performance.now();
const cells = await load(rollups);
console.log(`${eventsTotal} events over ${days} days → ${cells} cell writes in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`);

const base = { merchantId, merchantCurrency: 'USD', events: MemoryEventStore.create(), rules: currentRules };
const series = { metrics: ['events', 'users', 'sessions', 'revenue'], date_range: '30d', dimensions: ['time:day'] };
const topPaths = { metrics: ['events', 'users'], date_range: '30d', dimensions: ['event:path'], limit: 10 };
for (const [label, store] of [['memory store', rollups], ['engine only', cached(rollups)]] as const) {
  const context: QueryContext = { ...base, rollups: store };
  await measure(`30-day daily series, UTC (${label})`, series, context);
  await measure(`30-day daily series, Europe/Berlin (${label})`, { ...series, timezone: 'Europe/Berlin' }, context);
  await measure(`30-day top 10 paths (${label})`, topPaths, context);
  await measure(`30-day top 10 paths by users (${label})`, { ...topPaths, order_by: [['users', 'desc']] }, context);
}
