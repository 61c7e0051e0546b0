// Scenario "query": the two questions every dashboard opens with — a 30-day daily time series and
// the 30-day top-10 pages — over 1 M and 10 M events. Targets at 10 M: p99 ≤ 20 ms and within
// 1.5× of the same at 1 M; ≥ 2,000 queries/s at 20 connections.
import { failures, failureText, postQueries, query, type QueryAnswer } from '../client.ts';
import { countryNote } from '../data.ts';
import { startServer } from '../server.ts';
import type { Datasets, Dataset } from '../datasets.ts';
import { atLeast, atMost, formatCount, formatMs, row, type BenchContext, type Row, type ScenarioReport } from '../report.ts';
import { measureCpu } from './measure.ts';

const connections = 20;
const p99MsGoal = 20;
const growthRatioMax = 1.5;
const queriesPerSecondGoal = 2000;
/** Sequential queries before measuring: JIT, SQLite page cache. */
const warmupQueries = 200;
const dayCount = 30;

interface NamedQuery {
  readonly name: string;
  readonly body: object;
  /** Throws when an answer cannot be right for a dataset of `events` events. */
  readonly check: (answer: QueryAnswer, events: number) => void;
}

const queries: readonly NamedQuery[] = [
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
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly perSecond: number;
  readonly singleP50Ms: number;
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
  const server = await startServer({ dataDir: dataset.dataDir, keys: dataset.keys, profileDir: context.profileDir });
  const results = new Map<string, Measured>();
  try {
    for (const item of queries) {
      item.check(await query(server, item.body), dataset.events);
      for (let count = 0; count < warmupQueries; count++) await query(server, item.body);
      context.log(`query: ${item.name} at ${formatCount(dataset.events)} events: 1 connection, then ${connections}`);
      const single = await postQueries(server, item.body, { connections: 1, duration: Math.max(2, context.scale.querySeconds / 2) });
      const cpu = measureCpu(server);
      const loaded = await postQueries(server, item.body, { connections, duration: context.scale.querySeconds });
      const cpuNote = cpu.stop();
      const failed = failures(single) + failures(loaded);
      if (failed) notes.push(`query: ${item.name} at ${formatCount(dataset.events)}: FAILURES ${failureText(single)} ${failureText(loaded)}`);
      notes.push(`query: ${item.name} at ${formatCount(dataset.events)}: 1 connection p50 ${formatMs(single.latency.p50)} p99 ${formatMs(single.latency.p99)}; ${cpuNote}`);
      results.set(item.name, {
        p50Ms: loaded.latency.p50, p99Ms: loaded.latency.p99, perSecond: loaded['2xx'] / loaded.duration, singleP50Ms: single.latency.p50,
      });
    }
  } finally {
    await server.stop();
  }
  return results;
}

function queryRows(sizes: readonly number[], measured: ReadonlyMap<number, ReadonlyMap<string, Measured>>): Row[] {
  const rows: Row[] = [];
  const baseline = sizes[0]!;
  for (const item of queries) {
    for (const size of sizes) {
      const figures = measured.get(size)?.get(item.name);
      if (!figures) continue;
      const scenario = `${item.name} @ ${shortCount(size)}`;
      rows.push(row(scenario, `p99 ≤ ${p99MsGoal} ms at ${connections} conns`, `p99 ${formatMs(figures.p99Ms)} (p50 ${formatMs(figures.p50Ms)})`, atMost(figures.p99Ms, p99MsGoal)));
      rows.push(row(scenario, `≥ ${formatCount(queriesPerSecondGoal)} queries/s`, `${formatCount(figures.perSecond)} queries/s`, atLeast(figures.perSecond, queriesPerSecondGoal)));
      if (size === baseline) continue;
      const base = measured.get(baseline)?.get(item.name);
      if (!base) continue;
      const ratio = figures.p99Ms / Math.max(base.p99Ms, 1);
      rows.push(row(scenario, `p99 ≤ ${growthRatioMax}× of @ ${shortCount(baseline)}`, `${ratio.toFixed(2)}× (${formatMs(base.p99Ms)} → ${formatMs(figures.p99Ms)})`, atMost(ratio, growthRatioMax)));
    }
  }
  return rows;
}

function shortCount(events: number): string {
  return events >= 1_000_000 ? `${events / 1_000_000} M` : `${events / 1000} k`;
}
