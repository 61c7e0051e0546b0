// Input rules every RollupStore adapter enforces the same way, and the one cell merge: malformed
// cells and reprocessing steps are bugs in the caller, so they throw before anything changes.
import { estimateHllBytes, mergeHllBytes } from '../analytics/hll.ts';
import { TallyError } from '../errors.ts';
import { time } from '../limits.ts';
import type { ApplyBatch, Cell, CellValue, Granularity, ReprocessJob } from './rollup-store.ts';

export interface StartReprocessInput {
  readonly id: string;
  readonly stream: string;
  readonly merchantId: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly logicVersion: string;
  readonly nowMs: number;
}

export interface ReprocessStepInput {
  readonly jobId: string;
  readonly cells: readonly Cell[];
  readonly doneThroughMs: number;
  readonly eventsDone: number;
  readonly eventsTotal: number | null;
  readonly nowMs: number;
}

/** Revenue sums are stored as signed 64-bit integers (SQLite INTEGER, Cassandra bigint). */
export const int64Max = 2n ** 63n - 1n;
export const int64Min = -(2n ** 63n);

const granularityMs: Readonly<Record<Granularity, number>> = { minute: time.minuteMs, hour: time.hourMs, day: time.dayMs };

/** Counts and revenue add, sketches union; revenue past 64 bits is refused, never wrapped. */
export function mergeCellValues(a: CellValue, b: CellValue): CellValue {
  const revenue = a.revenue + b.revenue;
  if (revenue > int64Max || revenue < int64Min) throw new RangeError('cell revenue exceeds 64-bit integer range');
  return { events: a.events + b.events, revenue, users: mergeHllBytes(a.users, b.users), sessions: mergeHllBytes(a.sessions, b.sessions) };
}

export function assertOffsetRange(batch: ApplyBatch): void {
  if (!Number.isSafeInteger(batch.partition) || batch.partition < 0) throw new RangeError(`apply needs a partition number, got ${batch.partition}`);
  if (!Number.isSafeInteger(batch.fromOffset) || !Number.isSafeInteger(batch.throughOffset) || batch.fromOffset < 0 || batch.throughOffset < batch.fromOffset) {
    throw new RangeError(`apply needs 0 <= fromOffset <= throughOffset, got [${batch.fromOffset}, ${batch.throughOffset}]`);
  }
}

/** A malformed cell is a bug in the caller: it crashes the write before anything changes. */
export function assertCell(cell: Cell): void {
  const { key, value } = cell;
  const size = granularityMs[key.granularity];
  if (size === undefined) throw new RangeError(`unknown granularity ${String(key.granularity)}`);
  if (!Number.isSafeInteger(key.bucketMs) || key.bucketMs % size !== 0) throw new RangeError(`bucket ${key.bucketMs} is not aligned to ${key.granularity}`);
  if (!Number.isSafeInteger(key.generation)) throw new RangeError(`cell generation must be an integer, got ${key.generation}`);
  if (typeof key.merchantId !== 'string' || key.merchantId === '' || typeof key.dimension !== 'string' || typeof key.value !== 'string') {
    throw new RangeError('cell key needs a merchant id, a dimension and a value');
  }
  if (!Number.isSafeInteger(value.events) || value.events < 0) throw new RangeError(`cell events must be a non-negative integer, got ${value.events}`);
  if (typeof value.revenue !== 'bigint' || value.revenue > int64Max || value.revenue < int64Min) throw new RangeError('cell revenue must be a 64-bit bigint');
  if (!(value.users instanceof Uint8Array) || !(value.sessions instanceof Uint8Array)) throw new RangeError('cell sketches must be bytes');
  // Decoding is the cheapest full check hll.ts offers (no allocation): corrupt bytes never reach the store.
  estimateHllBytes(value.users);
  estimateHllBytes(value.sessions);
}

export function assertCellInJob(job: ReprocessJob, cell: Cell): void {
  if (cell.key.generation !== job.generation) throw new RangeError(`reprocess job ${job.id} writes generation ${job.generation}, not ${cell.key.generation}`);
  if (job.merchantId !== '*' && cell.key.merchantId !== job.merchantId) throw new RangeError(`reprocess job ${job.id} covers merchant ${job.merchantId} only`);
}

export function assertReprocessInput(input: StartReprocessInput): void {
  if (typeof input.merchantId !== 'string' || input.merchantId === '') throw new RangeError('reprocess needs a merchant id or *');
  if (!Number.isSafeInteger(input.fromMs) || !Number.isSafeInteger(input.toMs) || input.fromMs >= input.toMs) {
    throw new TallyError('reprocess_range_invalid', `reprocess range [${input.fromMs}, ${input.toMs}) is empty or malformed`);
  }
}

export function assertStep(job: ReprocessJob, input: ReprocessStepInput): void {
  if (input.doneThroughMs < job.doneThroughMs || input.doneThroughMs > job.toMs) {
    throw new RangeError(`reprocess progress must move forward within the range: ${job.doneThroughMs} -> ${input.doneThroughMs}`);
  }
  if (!Number.isSafeInteger(input.eventsDone) || input.eventsDone < job.eventsDone) throw new RangeError('reprocess eventsDone must not go back');
}
