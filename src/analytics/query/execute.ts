// Runs a planned query against the ports: rollup cells read per piece from the generation that
// serves it, raw events scanned (through the processing logic's exclusion rule, so scans agree
// with rollups) for what cells cannot answer, under a bound on the events a query may read.
import { dimensionValue, revenueContribution, totalDimension } from '../../core/analytics/dimensions.ts';
import type { AnalyticsRules } from '../../core/analytics/rules.ts';
import { TallyError } from '../../core/errors.ts';
import type { TrackedEvent } from '../../core/event.ts';
import { limits, time } from '../../core/limits.ts';
import type { EventStore } from '../../core/ports/event-store.ts';
import type { Cell, RollupStore, SketchName } from '../../core/ports/rollup-store.ts';
import { Aggregation, filterPredicate, slotIndex } from './aggregate.ts';
import { estimateUnion } from '../../core/analytics/hll.ts';
import { parseQuery, type Query } from './parse.ts';
import { planQuery, type Plan, type RollupSource } from './plan.ts';
import { pageResults, zeroFillSlots, type QueryResult } from './results.ts';
import type { DateRange } from './time-range.ts';

export interface QueryContext {
  readonly merchantId: string;
  /** ISO 4217: `revenue` sums this currency unless the query breaks down by event:currency. */
  readonly merchantCurrency: string;
  readonly rollups: RollupStore;
  readonly events: EventStore;
  /** The processing logic: its exclusion rule filters scanned events, its version labels them. */
  readonly rules: Pick<AnalyticsRules, 'logicVersion' | 'isExcluded'>;
  /** Raw events one query may read; defaults to limits.queryScanEventsMax. */
  readonly scanEventsMax?: number;
  /** Monotonic milliseconds for took_ms; defaults to performance.now. */
  readonly clockMs?: () => number;
}

export interface QueryResponse {
  readonly results: QueryResult[];
  readonly meta: {
    /** Logic versions of the data read, e.g. "analytics@1" (comma-separated when several). */
    readonly version: string;
    readonly took_ms: number;
    /** Rows before limit and offset. */
    readonly total_rows: number;
  };
}

/** Raw events asked for per scan call: bounds one page's memory. */
const scanPageEventsMax = 5000;

/** Parses and runs a request body: what POST /v1/query calls. */
export async function runQuery(body: unknown, context: QueryContext, nowMs: number): Promise<QueryResponse> {
  const startedMs = (context.clockMs ?? performance.now.bind(performance))();
  return executeQuery(parseQuery(body, nowMs), context, startedMs);
}

export async function executeQuery(query: Query, context: QueryContext, startedMs?: number): Promise<QueryResponse> {
  const clockMs = context.clockMs ?? performance.now.bind(performance);
  const started = startedMs ?? clockMs();
  const plan = planQuery(query, await context.rollups.layout(), context.merchantId);
  const aggregation = new Aggregation(query.metrics);
  const budget = new ScanBudget(context.scanEventsMax ?? limits.queryScanEventsMax);
  await refuseOversizedScan(query, plan, context, budget);
  let totalRows: number | null = null;
  if (plan.source.kind === 'rollup') {
    const pruned = await topByUnionCandidates(query, plan, plan.source, context);
    if (pruned) totalRows = pruned.totalRows;
    await readRollups(query, plan, pruned ? { ...plan.source, values: pruned.values } : plan.source, context, aggregation);
  }
  for (const range of plan.scans) await scanRange(query, plan, range, context, aggregation, budget);
  for (const slot of zeroFillSlots(query, plan.buckets)) aggregation.touch(slot, []);
  const rows = aggregation.rows();
  const results = pageResults(query, plan.buckets, rows);
  const versions = new Set(plan.versions);
  if (budget.scanned) versions.add(context.rules.logicVersion);
  if (versions.size === 0) versions.add(context.rules.logicVersion);
  return {
    results,
    meta: { version: [...versions].sort().join(','), took_ms: Math.round((clockMs() - started) * 100) / 100, total_rows: totalRows ?? rows.length },
  };
}

/** Rounds of the top-by-users search grow from the page size up to this many rows. */
const candidatesPerRoundMax = 256;

/**
 * "Top N by users (or sessions)" over one dimension needs every row's union of sketches — at
 * 10 M events, 15,000 day cells of sketch bytes for a 30-day top-10. But a row's users never
 * exceed its events (the output is capped so), so: read counts only, visit rows by events
 * descending, union sketches for them a round at a time, and stop when the page's last row beats
 * the next row's events — no row after it can enter the page. Exact, not approximate. Returns
 * the rows to read in full and the row count, or null when the shortcut does not apply.
 */
async function topByUnionCandidates(
  query: Query, plan: Plan, source: RollupSource, context: QueryContext,
): Promise<{ values: string[]; totalRows: number } | null> {
  const first = query.orderBy[0];
  const metric = first?.name;
  if (!first || first.direction !== 'desc' || (metric !== 'users' && metric !== 'sessions')) return null;
  if (plan.scans.length > 0 || query.timeDimension !== null || source.values !== null) return null;
  if (query.dimensions.length !== 1 || query.dimensions[0] !== source.dimension) return null;
  const predicates = query.filters.map(filterPredicate);
  const events = new Map<string, number>();
  const counted = await Promise.all(source.reads.map((read) => context.rollups.readCells({
    merchantId: context.merchantId, generation: read.generation, granularity: read.granularity,
    fromMs: read.fromMs, toMs: read.toMs, dimension: source.dimension, sketches: [],
  })));
  for (const cells of counted) {
    for (const { key, value } of cells) {
      if (predicates.every((matches) => matches(key.value))) events.set(key.value, (events.get(key.value) ?? 0) + value.events);
    }
  }
  const ordered = [...events].sort((a, b) => b[1] - a[1]);
  const needed = query.offset + query.limit;
  if (ordered.length <= needed) return null;
  const estimated: { value: string; estimate: number }[] = [];
  let roundSize = needed + 1;
  while (estimated.length < ordered.length) {
    const threshold = estimated.length >= needed ? estimated[needed - 1]!.estimate : -1;
    if (ordered[estimated.length]![1] < threshold) break;
    const round = ordered.slice(estimated.length, estimated.length + roundSize);
    const estimates = await unionEstimates(round, metric, source, context);
    round.forEach(([value], index) => estimated.push({ value, estimate: estimates[index]! }));
    estimated.sort((a, b) => b.estimate - a.estimate);
    roundSize = Math.min(candidatesPerRoundMax, roundSize * 2);
  }
  // Only rows that can be on the page are read in full; ties at its edge are all kept, so the
  // usual ordering (and its tie-break by dimension) decides among them.
  const edge = estimated[needed - 1]!.estimate;
  const page = estimated.filter(({ estimate }) => estimate >= edge).map(({ value }) => value);
  return { values: page, totalRows: ordered.length };
}

/** Each row's output value of `metric` (the union estimate, capped at its events). */
async function unionEstimates(
  rows: readonly (readonly [string, number])[], metric: SketchName, source: RollupSource, context: QueryContext,
): Promise<number[]> {
  const values = rows.map(([value]) => value);
  const parts = new Map<string, Uint8Array[]>(values.map((value) => [value, []]));
  const batches = await Promise.all(source.reads.map((read) => context.rollups.readCells({
    merchantId: context.merchantId, generation: read.generation, granularity: read.granularity,
    fromMs: read.fromMs, toMs: read.toMs, dimension: source.dimension, values, sketches: [metric],
  })));
  for (const cells of batches) for (const { key, value } of cells) parts.get(key.value)?.push(value[metric]);
  return rows.map(([value, count]) => Math.min(count, Math.round(estimateUnion(parts.get(value) ?? []))));
}

async function readRollups(query: Query, plan: Plan, source: RollupSource, context: QueryContext, aggregation: Aggregation): Promise<void> {
  if (source.values?.length === 0) return; // `is` filters that share no value match nothing
  const grouped = query.dimensions.includes(source.dimension);
  const predicates = query.filters.map(filterPredicate);
  // Cells of event:currency carry each currency's own sum; unsplit, only the merchant's counts.
  const foreignRevenue = source.dimension === 'event:currency' && !grouped;
  const batches = await Promise.all(source.reads.map((read) => context.rollups.readCells({
    merchantId: context.merchantId, generation: read.generation, granularity: read.granularity,
    fromMs: read.fromMs, toMs: read.toMs, dimension: source.dimension, ...(source.values ? { values: source.values } : {}),
    sketches: sketchesFor(query),
  })));
  for (const [index, cells] of batches.entries()) {
    const read = source.reads[index]!;
    for (const cell of cells) {
      assertCellAnswers(cell, context.merchantId, read, source.dimension);
      const value = cell.key.value;
      if (!predicates.every((matches) => matches(value))) continue;
      const { events, revenue, users, sessions } = cell.value;
      const counted = foreignRevenue && value !== context.merchantCurrency ? 0n : revenue;
      aggregation.addCell(slotIndex(plan.slotStartsMs, cell.key.bucketMs), grouped ? value : null, events, counted, users, sessions);
    }
  }
}

/** Sketch blobs are most of a cell's bytes: read only those the metrics need. */
function sketchesFor(query: Query): SketchName[] {
  return (['users', 'sessions'] as const).filter((name) => query.metrics.includes(name));
}

/** A cell outside what was asked is an adapter bug: counting it would corrupt the answer. */
function assertCellAnswers(cell: Cell, merchantId: string, read: DateRange & { generation: number }, dimension: string): void {
  const key = cell.key;
  if (key.merchantId !== merchantId || key.generation !== read.generation || key.dimension !== dimension
    || key.bucketMs < read.fromMs || key.bucketMs >= read.toMs) {
    throw new Error(`readCells returned a cell outside the request: ${JSON.stringify(key)}`);
  }
}

/** The totals cells count (at least) the events a scan would read: refuse before scanning. */
async function refuseOversizedScan(query: Query, plan: Plan, context: QueryContext, budget: ScanBudget): Promise<void> {
  const batches = await Promise.all(plan.preflight.map((read) => context.rollups.readCells({
    merchantId: context.merchantId, generation: read.generation, granularity: read.granularity,
    fromMs: read.fromMs, toMs: read.toMs, dimension: totalDimension, sketches: [],
  })));
  let counted = 0;
  for (const cells of batches) for (const cell of cells) counted += cell.value.events;
  if (counted > budget.eventsMax) throw budget.refusal(query.range, counted);
}

async function scanRange(query: Query, plan: Plan, range: DateRange, context: QueryContext, aggregation: Aggregation, budget: ScanBudget): Promise<void> {
  const accept = eventAcceptor(query, plan, context, aggregation);
  let after: string | null = null;
  do {
    const page = await context.events.scan({
      merchantId: context.merchantId, fromMs: range.fromMs, toMs: range.toMs,
      limit: Math.min(scanPageEventsMax, budget.remaining + 1), after,
    });
    if (page.events.length === 0 && page.next !== null) throw new Error('EventStore.scan returned an empty page with a cursor');
    budget.take(page.events.length, query.range);
    for (const stored of page.events) {
      const event = stored.event;
      if (event.merchantId !== context.merchantId || event.timestampMs < range.fromMs || event.timestampMs >= range.toMs) {
        throw new Error(`EventStore.scan returned an event outside the request: ${event.merchantId}/${event.id}`);
      }
      accept(event);
    }
    after = page.next;
  } while (after !== null);
}

/** Adds one scanned event to its row, or drops it: excluded, filtered out, or no value. */
function eventAcceptor(query: Query, plan: Plan, context: QueryContext, aggregation: Aggregation): (event: TrackedEvent) => void {
  const filters = query.filters.map((filter) => ({ dimension: filter.dimension, matches: filterPredicate(filter) }));
  const breakdown = query.dimensions.filter((name) => name !== query.timeDimension);
  const revenueDimension = breakdown.includes('event:currency') ? 'event:currency' : totalDimension;
  return (event) => {
    if (context.rules.isExcluded(event)) return;
    for (const filter of filters) {
      const value = dimensionValue(event, filter.dimension);
      // An event without the property takes no part in that property, so no filter on it holds.
      if (value === undefined || !filter.matches(value)) return;
    }
    const values: string[] = [];
    for (const dimension of breakdown) {
      const value = dimensionValue(event, dimension);
      if (value === undefined) return;
      values.push(value);
    }
    const revenue = revenueContribution(event, revenueDimension, context.merchantCurrency);
    aggregation.addEvent(slotIndex(plan.slotStartsMs, event.timestampMs), values, revenue, event.visitorId, event.sessionId);
  };
}

/** Raw events read so far against the query's bound (excluded events count: they were read). */
class ScanBudget {
  readonly eventsMax: number;
  #read = 0;
  scanned = false;

  constructor(eventsMax: number) {
    if (!Number.isSafeInteger(eventsMax) || eventsMax < 0) throw new RangeError(`scanEventsMax must be a non-negative integer, got ${eventsMax}`);
    this.eventsMax = eventsMax;
  }

  get remaining(): number {
    return Math.max(0, this.eventsMax - this.#read);
  }

  take(count: number, range: DateRange): void {
    this.scanned = true;
    this.#read += count;
    if (this.#read > this.eventsMax) throw this.refusal(range, null);
  }

  /** query_too_large, suggesting a range the bound would allow when the event count is known. */
  refusal(range: DateRange, eventsInRange: number | null): TallyError {
    const spanMs = range.toMs - range.fromMs;
    const hint = eventsInRange === null
      ? 'narrow the date range'
      : `narrow the date range to about ${describeSpan(Math.floor(spanMs * (this.eventsMax / eventsInRange)))}`;
    return new TallyError(
      'query_too_large',
      `this breakdown needs a scan of more than ${this.eventsMax} raw events; ${hint}, or break down by one dimension with filters only on it (answered from rollups)`,
      { scanEventsMax: this.eventsMax },
    );
  }
}

function describeSpan(spanMs: number): string {
  if (spanMs >= 2 * time.dayMs) return `${Math.floor(spanMs / time.dayMs)} days`;
  if (spanMs >= 2 * time.hourMs) return `${Math.floor(spanMs / time.hourMs)} hours`;
  return `${Math.max(1, Math.floor(spanMs / time.minuteMs))} minutes`;
}
