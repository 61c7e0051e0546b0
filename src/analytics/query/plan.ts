// Decides how a query is answered — from one dimension's rollup cells or by a bounded raw scan —
// and splits its range into UTC-aligned pieces: whole days, then hours, then minutes where the
// dimension has them, raw scans for the remaining edges; each read from its serving generation.
import { granularityOf, rollupGranularities, totalDimension } from '../../core/analytics/dimensions.ts';
import { servingGeneration } from '../../core/analytics/rollup.ts';
import { limits } from '../../core/limits.ts';
import type { Granularity, RollupLayout } from '../../core/ports/rollup-store.ts';
import type { Query } from './parse.ts';
import { granularityMs, timeBuckets, type DateRange, type TimeBucket } from './time-range.ts';

export interface CellRead {
  readonly generation: number;
  readonly granularity: Granularity;
  readonly fromMs: number;
  readonly toMs: number;
}

export interface RollupSource {
  readonly kind: 'rollup';
  /** The dimension whose cells are read: '' for the totals. */
  readonly dimension: string;
  /** Only these values, when `is` filters name them (their intersection); null for all. */
  readonly values: readonly string[] | null;
  readonly reads: readonly CellRead[];
}

export interface ScanSource {
  readonly kind: 'scan';
}

export interface Plan {
  readonly source: RollupSource | ScanSource;
  /**
   * Raw-event ranges: the whole range for a scan; for rollups the edges no cell fits (sub-hour
   * for most dimensions, sub-minute for totals and event:type), or all of a minute breakdown.
   */
  readonly scans: readonly DateRange[];
  /** Totals cells inside the scans: their event count refuses an oversized scan before it starts. */
  readonly preflight: readonly CellRead[];
  /** The time series' buckets; empty without a time dimension. */
  readonly buckets: readonly TimeBucket[];
  /** Where each output slot's data starts (ascending); one slot without a time dimension. */
  readonly slotStartsMs: readonly number[];
  /** Logic versions of the generations the reads touch. */
  readonly versions: readonly string[];
}

interface GenerationSpan extends DateRange {
  readonly generation: number;
}

type Piece = (CellRead & { readonly kind: 'cells' }) | (DateRange & { readonly kind: 'raw' });

const coarseToFine: readonly Granularity[] = ['day', 'hour', 'minute'];

export function planQuery(query: Query, layout: RollupLayout, merchantId: string): Plan {
  const buckets = query.timeDimension === null
    ? null
    : timeBuckets(query.timeZone, granularityOf(query.timeDimension), query.range, limits.queryBucketsMax);
  const slots = slotRanges(buckets, query.range);
  const spans = generationSpans(layout, merchantId, query.range);
  const dimension = cellDimension(query);
  const levels = dimension === null ? [] : coarseToFine.filter((granularity) => rollupGranularities(dimension).includes(granularity));
  const pieces = decompose(slots, spans, levels);
  const reads = pieces.filter((piece) => piece.kind === 'cells');
  const scans = pieces.filter((piece) => piece.kind === 'raw');
  return {
    source: dimension === null ? { kind: 'scan' } : { kind: 'rollup', dimension, values: pushedDownValues(query, dimension), reads },
    scans,
    preflight: decompose(scans, spans, ['day', 'hour']).filter((piece) => piece.kind === 'cells'),
    buckets: buckets ?? [],
    slotStartsMs: slots.map((slot) => slot.fromMs),
    versions: logicVersions(layout, reads),
  };
}

/**
 * The one dimension whose cells answer the query, or null when only a scan can: single-dimension
 * cells hold no combination of two dimensions, so every breakdown and filter must name the same
 * one. A filter alone (no breakdown) reads its dimension's cells and keeps the matching values.
 */
export function cellDimension(query: Query): string | null {
  const breakdown = query.dimensions.filter((name) => query.timeDimension !== name);
  if (breakdown.length > 1) return null;
  const dimension = breakdown[0] ?? query.filters[0]?.dimension ?? totalDimension;
  return query.filters.every((filter) => filter.dimension === dimension) ? dimension : null;
}

function pushedDownValues(query: Query, dimension: string): string[] | null {
  let values: string[] | null = null;
  for (const filter of query.filters) {
    if (filter.dimension !== dimension || filter.operator !== 'is') continue;
    values = values === null ? [...new Set(filter.values)] : values.filter((value) => filter.values.includes(value));
  }
  return values;
}

/** Each output slot's data range: its bucket clipped to the query range; the range without buckets. */
function slotRanges(buckets: readonly TimeBucket[] | null, range: DateRange): DateRange[] {
  if (buckets === null) return [range];
  return buckets.map((bucket, index) => ({
    fromMs: Math.max(bucket.startMs, range.fromMs),
    toMs: Math.min(buckets[index + 1]?.startMs ?? range.toMs, range.toMs),
  }));
}

/** The range cut where the serving generation changes (overlays, later ones winning). */
function generationSpans(layout: RollupLayout, merchantId: string, range: DateRange): GenerationSpan[] {
  const edges = new Set([range.fromMs, range.toMs]);
  for (const overlay of layout.overlays) {
    if (overlay.merchantId !== '*' && overlay.merchantId !== merchantId) continue;
    if (overlay.fromMs > range.fromMs && overlay.fromMs < range.toMs) edges.add(overlay.fromMs);
    if (overlay.toMs > range.fromMs && overlay.toMs < range.toMs) edges.add(overlay.toMs);
  }
  const sorted = [...edges].sort((a, b) => a - b);
  const spans: GenerationSpan[] = [];
  for (let index = 0; index + 1 < sorted.length; index++) {
    const fromMs = sorted[index]!;
    const generation = servingGeneration(layout, merchantId, fromMs);
    const last = spans.at(-1);
    if (last && last.generation === generation) spans[spans.length - 1] = { ...last, toMs: sorted[index + 1]! };
    else spans.push({ fromMs, toMs: sorted[index + 1]!, generation });
  }
  return spans;
}

/** Pieces of every slot in time order; touching pieces of one kind (and generation) merge. */
function decompose(slots: readonly DateRange[], spans: readonly GenerationSpan[], levels: readonly Granularity[]): Piece[] {
  const pieces: Piece[] = [];
  const lastRead = new Map<string, number>();
  const push = (piece: Piece): void => {
    const key = piece.kind === 'raw' ? 'raw' : `${piece.generation}/${piece.granularity}`;
    const index = lastRead.get(key);
    const previous = index === undefined ? undefined : pieces[index];
    if (previous && previous.toMs === piece.fromMs) pieces[index!] = { ...previous, toMs: piece.toMs };
    else {
      lastRead.set(key, pieces.length);
      pieces.push(piece);
    }
  };
  let spanIndex = 0;
  for (const slot of slots) {
    while (spans[spanIndex] && spans[spanIndex]!.toMs <= slot.fromMs) spanIndex++;
    for (let index = spanIndex; spans[index] && spans[index]!.fromMs < slot.toMs; index++) {
      const span = spans[index]!;
      split(Math.max(slot.fromMs, span.fromMs), Math.min(slot.toMs, span.toMs), span.generation, levels, push);
    }
  }
  return pieces;
}

/** Whole units of the coarsest level in the middle, the edges split further, in time order. */
function split(fromMs: number, toMs: number, generation: number, levels: readonly Granularity[], push: (piece: Piece) => void): void {
  if (fromMs >= toMs) return;
  const [granularity, ...finer] = levels;
  if (granularity === undefined) {
    push({ kind: 'raw', fromMs, toMs });
    return;
  }
  const size = granularityMs[granularity];
  const wholeFromMs = Math.ceil(fromMs / size) * size;
  const wholeToMs = Math.floor(toMs / size) * size;
  if (wholeFromMs >= wholeToMs) {
    split(fromMs, toMs, generation, finer, push);
    return;
  }
  split(fromMs, wholeFromMs, generation, finer, push);
  push({ kind: 'cells', generation, granularity, fromMs: wholeFromMs, toMs: wholeToMs });
  split(wholeToMs, toMs, generation, finer, push);
}

function logicVersions(layout: RollupLayout, reads: readonly CellRead[]): string[] {
  const versions = new Set<string>();
  for (const read of reads) {
    const info = layout.generations.find((item) => item.generation === read.generation)
      ?? (layout.base.generation === read.generation ? layout.base : undefined);
    if (!info) throw new Error(`layout names generation ${read.generation} without its logic version`);
    versions.add(info.logicVersion);
  }
  return [...versions].sort();
}
