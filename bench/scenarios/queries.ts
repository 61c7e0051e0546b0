// Scenario "query": the two questions every dashboard opens with — a 30-day daily time series and
// the 30-day top-10 pages — over 1 M and 10 M events. Targets at 10 M: p99 ≤ 20 ms and within
// 1.5× of the same at 1 M; ≥ 2,000 queries/s at 20 connections. Measured cold (Cache-Control:
// no-cache: computed every time) and, for throughput, warm (answered from the query-result cache).
import { failures, failureText, noCache, postQueries, query, type QueryAnswer } from '../client.ts';
import { countryNote } from '../data.ts';
import { startServer, type BenchServer } from '../server.ts';
import type { Datasets, Dataset } from '../datasets.ts';
import { atLeast, atMost, quantile, formatCount, formatMs, row, type BenchContext, type Row, type ScenarioReport } from '../report.ts';
import { measureCpu } from './measure.ts';

const connections = 20;
const p99MsGoal = 20;
const growthRatioMax = 1.5;
const queriesPerSecondGoal = 2000;
/** Sequential queries before measuring: JIT, SQLite page cache. */
const warmupQueries = 200;
const dayCount = 30;

export interface NamedQuery {
  readonly name: string;
  readonly body: object;
  /** Throws when an answer cannot be right for a dataset of `events` events. */
  readonly check: (answer: QueryAnswer, events: number) => void;
}

/** The dashboard's first two questions; the distributed scenario asks them of Cassandra too. */
export const queries: readonly NamedQuery[] = [
  {
    name: '30-day daily series',
    body: { metrics: ['events', 'users'], date_range: '30d', dimensions: ['time:day'] },
    check(answer, events) {
      const total = answer.results.reduce((sum, result) => sum + (result.metrics[0] ?? 0), 0);
      if (answer.results.length !== dayCount || total !== events) {
        throw new Error(`the daily series has ${answer.results.length} days and ${total} events; expected ${dayCount} and ${events}`);
      }
    },
  },
  {
    name: '30-day top-10 paths',
    body: { metrics: ['users', 'events'], date_range: '30d', dimensions: ['event:path'], order_by: [['users', 'desc']], limit: 10 },
    check(answer) {
      if (answer.results.length !== 10) throw new Error(`top paths returned ${answer.results.length} rows, not 10`);
    },
  },
];

interface Measured {
  /** Alone: one connection, so the latency is the query's own, not a queue's. */
  readonly aloneP99Ms: number;
  readonly aloneP50Ms: number;
  /** Under 20 connections: throughput, and latency including the wait behind other queries. */
  readonly loadedP99Ms: number;
  readonly loadedP50Ms: number;
  readonly perSecond: number;
  /** The same load answered from the query-result cache (no batch applied meanwhile). */
  readonly cachedP99Ms: number;
  readonly cachedPerSecond: number;
}

export async function runQueries(context: BenchContext, datasets: Datasets): Promise<ScenarioReport> {
  const sizes = context.scale.querySizes;
  const measured = new Map<number, Map<string, Measured>>();
  const notes: string[] = [];
  for (const [index, size] of sizes.entries()) {
    const dataset = await datasets.get(size);
    notes.push(`query: ${formatCount(size)} events loaded through collect → SqliteEventLog → AnalyticsProcessor in ` +
      `${dataset.loadSeconds.toFixed(0)} s (${formatCount(size / dataset.loadSeconds)} events/s, no HTTP)${dataset.loadedNow ? '' : ', from the cache'}`);
    measured.set(size, await measureDataset(context, dataset, notes));
    // The baseline stays for the reprocess scenario; larger ones free their disk at once.
    if (index > 0) datasets.release(size);
  }
  notes.push(`query: ${countryNote}`);
  return { rows: queryRows(sizes, measured), notes };
}

async function measureDataset(context: BenchContext, dataset: Dataset, notes: string[]): Promise<Map<string, Measured>> {
  const server = await startServer({ dataDir: dataset.dataDir, keys: dataset.keys, nodeFlags: context.nodeFlags });
  const results = new Map<string, Measured>();
  try {
    for (const item of queries) {
      item.check(await query(server, item.body), dataset.events);
      for (let count = 0; count < warmupQueries; count++) await query(server, item.body, noCache);
      context.log(`query: ${item.name} at ${formatCount(dataset.events)} events: 1 connection, then ${connections}`);
      const alone = await timeAlone(server, item.body, Math.max(2, context.scale.querySeconds / 2));
      const cpu = measureCpu(server);
      const loaded = await postQueries(server, item.body, { connections, duration: context.scale.querySeconds }, noCache);
      const cpuNote = cpu.stop();
      const cached = await postQueries(server, item.body, { connections, duration: Math.max(2, context.scale.querySeconds / 2) });
      if (failures(cached)) notes.push(`query: ${item.name} at ${formatCount(dataset.events)}, cached: FAILURES ${failureText(cached)}`);
      if (failures(loaded)) notes.push(`query: ${item.name} at ${formatCount(dataset.events)}: FAILURES ${failureText(loaded)}`);
      notes.push(`query: ${item.name} at ${formatCount(dataset.events)}, ${connections} connections: ${cpuNote}`);
      results.set(item.name, {
        aloneP99Ms: quantile(alone, 0.99), aloneP50Ms: quantile(alone, 0.5),
        loadedP99Ms: loaded.latency.p99, loadedP50Ms: loaded.latency.p50, perSecond: loaded['2xx'] / loaded.duration,
        cachedP99Ms: cached.latency.p99, cachedPerSecond: cached['2xx'] / cached.duration,
      });
    }
  } finally {
    await server.stop();
  }
  return results;
}

/**
 * Per query and size: p99 alone (the query's own latency; its growth from the baseline size is
 * the "grows with history" check) and at 20 connections, and queries/s at 20 connections.
 */
/** One query after another for `seconds`: each one's latency in fractional milliseconds (cold unless `headers` say otherwise). */
export async function timeAlone(server: BenchServer, body: object, seconds: number, headers: Readonly<Record<string, string>> = noCache): Promise<number[]> {
  const latenciesMs: number[] = [];
  const endMs = performance.now() + seconds * 1000;
  while (performance.now() < endMs) {
    const startedMs = performance.now();
    await query(server, body, headers);
    latenciesMs.push(performance.now() - startedMs);
  }
  return latenciesMs;
}

function queryRows(sizes: readonly number[], measured: ReadonlyMap<number, ReadonlyMap<string, Measured>>): Row[] {
  const rows: Row[] = [];
  const baseline = sizes[0]!;
  for (const item of queries) {
    for (const size of sizes) {
      const figures = measured.get(size)?.get(item.name);
      if (!figures) continue;
      const scenario = `${item.name} @ ${shortCount(size)}`;
      rows.push(row(scenario, `p99 ≤ ${p99MsGoal} ms, 1 conn, cold`, `p99 ${formatMs(figures.aloneP99Ms)} (p50 ${formatMs(figures.aloneP50Ms)})`, atMost(figures.aloneP99Ms, p99MsGoal)));
      rows.push(row(scenario, `p99 ≤ ${p99MsGoal} ms, ${connections} conns, cold`, `p99 ${formatMs(figures.loadedP99Ms)} (p50 ${formatMs(figures.loadedP50Ms)})`, atMost(figures.loadedP99Ms, p99MsGoal)));
      rows.push(row(scenario, `≥ ${formatCount(queriesPerSecondGoal)} queries/s, ${connections} conns, cold`, `${formatCount(figures.perSecond)} queries/s`, atLeast(figures.perSecond, queriesPerSecondGoal)));
      rows.push(row(scenario, `≥ ${formatCount(queriesPerSecondGoal)} queries/s, ${connections} conns, cached`,
        `${formatCount(figures.cachedPerSecond)} queries/s (p99 ${formatMs(figures.cachedP99Ms)})`, atLeast(figures.cachedPerSecond, queriesPerSecondGoal)));
      const base = size === baseline ? undefined : measured.get(baseline)?.get(item.name);
      if (!base) continue;
      const ratio = figures.aloneP99Ms / base.aloneP99Ms;
      // autocannon keeps whole milliseconds: a floor of 1 ms keeps 0 → 1 ms from reading as infinite growth.
      const loadedRatio = Math.max(figures.loadedP99Ms, 1) / Math.max(base.loadedP99Ms, 1);
      rows.push(row(scenario, `p99 ≤ ${growthRatioMax}× of @ ${shortCount(baseline)}, 1 conn`,
        `${ratio.toFixed(2)}× (${formatMs(base.aloneP99Ms)} → ${formatMs(figures.aloneP99Ms)}); ${loadedRatio.toFixed(2)}× at ${connections} conns`, atMost(ratio, growthRatioMax)));
    }
  }
  return rows;
}

function shortCount(events: number): string {
  return events >= 1_000_000 ? `${events / 1_000_000} M` : `${events / 1000} k`;
}
