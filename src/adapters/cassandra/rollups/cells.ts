// Cell rows: one row per (cell, source), see ../rollup-store.ts. A write merges a source's delta
// into that source's own rows — read them, merge, write back with the write's seq as the Cassandra
// timestamp — and a read merges a cell's rows across sources.
import { Hll } from '../../../core/analytics/hll.ts';
import { time } from '../../../core/limits.ts';
import { mergeCellValues } from '../../../core/ports/rollup-store-rules.ts';
import type { Cell, CellKey, CellRangeRequest, CellValue, Granularity, SketchName } from '../../../core/ports/rollup-store.ts';
import type { BatchStatement, CassandraSession, Row } from '../session.ts';
import { bigintOf, bufferOf, longOf, readAll, requestsInFlightMax } from '../cql.ts';

const granularityMs: Readonly<Record<Granularity, number>> = { minute: time.minuteMs, hour: time.hourMs, day: time.dayMs };
/** Values per `value IN ?` list when reading a write's current rows. */
const valuesPerReadMax = 100;
/** Rows per unlogged single-partition batch, and their bytes (single-partition batches are one mutation). */
const batchRowsMax = 100;
const batchBytesMax = 512 * 1024;
/** (bucket, value) pairs one read of named values may ask for (`bucket_ms IN ? AND value IN ?`). */
const namedCellsPerReadMax = 1000;
/** Ranges spanning more partitions than this list the populated spans first. */
const directSpansMax = 8;
/** Span-index rows this store remembers having written (cleared past it: they are rewritten, idempotently). */
const knownSpansMax = 100_000;

/**
 * Minute and hour cells: one UTC day per partition (≤ 1,440 minute or 24 hour buckets of one
 * dimension); day cells: one UTC month. A high-cardinality dimension such as paths then stays a
 * bounded partition, and a 30-day daily series reads one or two partitions.
 */
export function spanStart(granularity: Granularity, bucketMs: number): number {
  if (granularity !== 'day') return Math.floor(bucketMs / time.dayMs) * time.dayMs;
  const date = new Date(bucketMs);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
}

function spanEnd(granularity: Granularity, startMs: number): number {
  if (granularity !== 'day') return startMs + time.dayMs;
  const date = new Date(startMs);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
}

/** What a cell read without a sketch carries in its place. */
const emptySketchBytes = Hll.empty().toBytes();

/** The cells of one write that share a Cassandra partition, by bucket. */
interface PartitionCells {
  readonly key: readonly [string, number, Granularity, string, number];
  readonly buckets: Map<number, Cell[]>;
}

interface StoredRow {
  readonly value: CellValue;
  readonly seq: number;
}

export type WriteHook = (batchIndex: number, batchesTotal: number) => void | Promise<void>;

export class CellRows {
  readonly #session: CassandraSession;
  readonly #cql: {
    readonly current: string;
    readonly insert: string;
    readonly insertSpan: string;
    readonly spans: string;
  };
  readonly #knownSpans = new Set<string>();

  constructor(session: CassandraSession) {
    this.#session = session;
    const cells = session.table('rollup_cells');
    const spans = session.table('rollup_cell_spans');
    this.#cql = {
      current: `SELECT value, events, revenue, users, sessions, seq FROM ${cells}
        WHERE merchant_id = ? AND generation = ? AND granularity = ? AND dimension = ? AND span_start_ms = ?
          AND bucket_ms = ? AND value IN ? AND source = ?`,
      insert: `INSERT INTO ${cells} (merchant_id, generation, granularity, dimension, span_start_ms, bucket_ms, value, source,
          events, revenue, users, sessions, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
      insertSpan: `INSERT INTO ${spans} (merchant_id, generation, granularity, dimension, span_start_ms) VALUES (?, ?, ?, ?, ?)`,
      spans: `SELECT span_start_ms FROM ${spans}
        WHERE merchant_id = ? AND generation = ? AND granularity = ? AND dimension = ? AND span_start_ms >= ? AND span_start_ms < ?`,
    };
  }

  /**
   * Merges `cells` (one entry per key) into `source`'s rows as of `seq`. Every row is read and
   * merged before the first write, so a merge that fails (revenue past 64 bits) writes nothing —
   * and fails the same way for anyone who retries the same write. Rows already at `seq` or later
   * already hold this write (or a later one) and are left alone.
   */
  async merge(cells: readonly Cell[], source: string, seq: number, beforeBatch?: WriteHook): Promise<void> {
    const groups = groupByPartition(cells);
    const merged = await this.#mergedRows(groups, source, seq);
    await this.#recordSpans(groups.filter((_, index) => merged[index]!.length > 0));
    const batches = groups.flatMap((group, index) => this.#insertBatches(group, merged[index]!, source, seq));
    let started = 0;
    await this.#session.forEachConcurrently(batches, requestsInFlightMax, async (batch) => {
      await beforeBatch?.(started++, batches.length);
      await this.#session.batch(batch, { logged: false, idempotent: true });
    });
  }

  async read(request: CellRangeRequest): Promise<Cell[]> {
    const { fromMs, toMs, granularity } = request;
    if (request.values?.length === 0 || toMs <= fromMs) return [];
    const spans = await this.#spansOf(request);
    const wanted = request.sketches ?? ['users', 'sessions'];
    const columns = ['bucket_ms', 'value', 'events', 'revenue', ...wanted.filter((name) => name === 'users' || name === 'sessions')];
    const bySpan: Cell[][] = new Array(spans.length);
    await this.#session.forEachConcurrently(spans.map((start, index) => ({ start, index })), requestsInFlightMax, async ({ start, index }) => {
      const fromInSpan = Math.max(fromMs, start);
      const toInSpan = Math.min(toMs, spanEnd(granularity, start));
      const rows = request.values
        ? await this.#readValues(request, columns, start, fromInSpan, toInSpan)
        : await this.#readRange(request, columns, start, fromInSpan, toInSpan);
      bySpan[index] = mergeSources(rows, request, new Set(wanted));
    });
    return bySpan.flat();
  }

  /** Phase 1: per partition, the rows to write (merged with what the source holds now). */
  async #mergedRows(groups: readonly PartitionCells[], source: string, seq: number): Promise<Cell[][]> {
    const merged: Cell[][] = groups.map(() => []);
    const reads = groups.flatMap((group, index) => [...group.buckets].flatMap(([bucketMs, cells]) =>
      chunked(cells, valuesPerReadMax).map((chunk) => ({ group, index, bucketMs, cells: chunk }))));
    await this.#session.forEachConcurrently(reads, requestsInFlightMax, async ({ group, index, bucketMs, cells }) => {
      const values = cells.map((cell) => cell.key.value);
      const result = await this.#session.execute(this.#cql.current, [...group.key, bucketMs, values, source], { idempotent: true });
      const stored = new Map<string, StoredRow>();
      for (const row of result.rows) stored.set(row.get('value') as string, { value: cellValueOf(row, true, true), seq: longOf(row.get('seq')) });
      for (const cell of cells) {
        const current = stored.get(cell.key.value);
        if (current && current.seq >= seq) continue;
        merged[index]!.push(current ? { key: cell.key, value: mergeCellValues(current.value, cell.value) } : cell);
      }
    });
    return merged;
  }

  #insertBatches(group: PartitionCells, rows: readonly Cell[], source: string, seq: number): BatchStatement[][] {
    const batches: BatchStatement[][] = [];
    let batch: BatchStatement[] = [];
    let bytes = 0;
    for (const { key, value } of rows) {
      const size = value.users.byteLength + value.sessions.byteLength + key.value.length + 64;
      if (batch.length > 0 && (batch.length >= batchRowsMax || bytes + size > batchBytesMax)) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push({
        query: this.#cql.insert,
        params: [
          ...group.key, key.bucketMs, key.value, source,
          value.events, value.revenue.toString(), bufferOf(value.users), bufferOf(value.sessions), seq, seq,
        ],
      });
      bytes += size;
    }
    if (batch.length > 0) batches.push(batch);
    return batches;
  }

  /** Span-index rows go in before the cells, so a reader that finds a cell can also find its span. */
  async #recordSpans(groups: readonly PartitionCells[]): Promise<void> {
    const fresh = groups.filter((group) => !this.#knownSpans.has(JSON.stringify(group.key)));
    await this.#session.forEachConcurrently(fresh, requestsInFlightMax, async (group) => {
      await this.#session.execute(this.#cql.insertSpan, group.key, { idempotent: true });
    });
    if (this.#knownSpans.size + fresh.length > knownSpansMax) this.#knownSpans.clear();
    for (const group of fresh) this.#knownSpans.add(JSON.stringify(group.key));
  }

  /** Start of every partition that may hold cells of the request, in time order. */
  async #spansOf(request: CellRangeRequest): Promise<number[]> {
    const { merchantId, generation, granularity, dimension, fromMs, toMs } = request;
    const first = spanStart(granularity, fromMs);
    // Months are at least 28 days: a cheap upper bound of the spans to enumerate.
    const spanDaysMin = granularity === 'day' ? 28 : 1;
    if ((toMs - first) / (spanDaysMin * time.dayMs) <= directSpansMax) {
      const starts: number[] = [];
      for (let start = first; start < toMs; start = spanEnd(granularity, start)) starts.push(start);
      return starts;
    }
    const rows = await readAll(this.#session, this.#cql.spans, [merchantId, generation, granularity, dimension, first, toMs]);
    return rows.map((row) => longOf(row.get('span_start_ms')));
  }

  async #readRange(request: CellRangeRequest, columns: readonly string[], start: number, fromMs: number, toMs: number): Promise<Row[]> {
    return readAll(this.#session,
      `SELECT ${columns.join(', ')} FROM ${this.#session.table('rollup_cells')} WHERE ${partitionWhere} AND bucket_ms >= ? AND bucket_ms < ?`,
      [...partitionOf(request, start), fromMs, toMs]);
  }

  /**
   * Named values only: `bucket_ms IN ? AND value IN ?` reads exactly those cells. When the
   * buckets are too many to pair with each value (minute cells), the partition's slice is filtered
   * by Cassandra instead — either way no other value leaves the node.
   */
  async #readValues(request: CellRangeRequest, columns: readonly string[], start: number, fromMs: number, toMs: number): Promise<Row[]> {
    const values = [...new Set(request.values)];
    const size = granularityMs[request.granularity];
    const buckets: number[] = [];
    for (let bucket = Math.ceil(fromMs / size) * size; bucket < toMs; bucket += size) buckets.push(bucket);
    if (buckets.length === 0) return [];
    const table = this.#session.table('rollup_cells');
    const partition = partitionOf(request, start);
    const pairs = buckets.length <= namedCellsPerReadMax;
    const valuesPerRead = pairs ? Math.max(1, Math.min(valuesPerReadMax, Math.floor(namedCellsPerReadMax / buckets.length))) : valuesPerReadMax;
    const query = pairs
      ? `SELECT ${columns.join(', ')} FROM ${table} WHERE ${partitionWhere} AND bucket_ms IN ? AND value IN ?`
      : `SELECT ${columns.join(', ')} FROM ${table} WHERE ${partitionWhere} AND bucket_ms >= ? AND bucket_ms < ? AND value IN ? ALLOW FILTERING`;
    const parts = await Promise.all(chunked(values, valuesPerRead).map((chunk) =>
      readAll(this.#session, query, pairs ? [...partition, buckets, chunk] : [...partition, fromMs, toMs, chunk])));
    if (parts.length === 1) return parts[0]!;
    // Each read is in clustering order; together they are put back into it (values compare as
    // Cassandra compares text: by UTF-8 bytes).
    const rank = new Map(values.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((value, index) => [value, index]));
    return parts.flat().sort((a, b) =>
      longOf(a.get('bucket_ms')) - longOf(b.get('bucket_ms')) || rank.get(a.get('value') as string)! - rank.get(b.get('value') as string)!);
  }
}

const partitionWhere = 'merchant_id = ? AND generation = ? AND granularity = ? AND dimension = ? AND span_start_ms = ?';

function partitionOf(request: CellRangeRequest, start: number): unknown[] {
  return [request.merchantId, request.generation, request.granularity, request.dimension, start];
}

function groupByPartition(cells: readonly Cell[]): PartitionCells[] {
  const groups = new Map<string, PartitionCells>();
  for (const cell of cells) {
    const { merchantId, generation, granularity, dimension, bucketMs } = cell.key;
    const start = spanStart(granularity, bucketMs);
    const id = `${merchantId}\u0000${generation}\u0000${granularity}\u0000${dimension}\u0000${start}`;
    let group = groups.get(id);
    if (!group) {
      group = { key: [merchantId, generation, granularity, dimension, start], buckets: new Map() };
      groups.set(id, group);
    }
    const bucket = group.buckets.get(bucketMs);
    if (bucket) bucket.push(cell);
    else group.buckets.set(bucketMs, [cell]);
  }
  return [...groups.values()];
}

/** Rows in clustering order (bucket, value, source) → one cell per (bucket, value). */
function mergeSources(rows: readonly Row[], request: CellRangeRequest, wanted: ReadonlySet<SketchName>): Cell[] {
  const cells: Cell[] = [];
  const users = wanted.has('users');
  const sessions = wanted.has('sessions');
  let last: { key: CellKey; value: CellValue } | null = null;
  for (const row of rows) {
    const bucketMs = longOf(row.get('bucket_ms'));
    const value = row.get('value') as string;
    const stored = cellValueOf(row, users, sessions);
    if (last && last.key.bucketMs === bucketMs && last.key.value === value) {
      last.value = mergeCellValues(last.value, stored);
      continue;
    }
    const { merchantId, generation, granularity, dimension } = request;
    last = { key: { merchantId, generation, granularity, bucketMs, dimension, value }, value: stored };
    cells.push(last);
  }
  return cells;
}

function cellValueOf(row: Row, users: boolean, sessions: boolean): CellValue {
  return {
    events: longOf(row.get('events')),
    revenue: bigintOf(row.get('revenue')),
    // Copies: the driver's buffers are views into its response frames.
    users: users ? new Uint8Array(row.get('users') as Buffer) : emptySketchBytes,
    sessions: sessions ? new Uint8Array(row.get('sessions') as Buffer) : emptySketchBytes,
  };
}

function chunked<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

/** One cell per key: cells with the same key inside one write merge with each other. */
export function combineCells(cells: readonly Cell[]): Cell[] {
  const byKey = new Map<string, Cell>();
  for (const cell of cells) {
    const { merchantId, generation, granularity, bucketMs, dimension, value } = cell.key;
    const id = `${merchantId}\u0000${generation}\u0000${granularity}\u0000${bucketMs}\u0000${dimension}\u0000${value}`;
    const current = byKey.get(id);
    byKey.set(id, current ? { key: current.key, value: mergeCellValues(current.value, cell.value) } : cell);
  }
  return [...byKey.values()];
}
