// RollupStore port: derived metrics per time bucket, stamped with a generation (a build of the
// rollups by one version of the processing logic). Exactly-once effect comes from `apply`: it
// merges a contiguous offset range of one log partition atomically with that partition's
// watermark, so redelivery or a zombie member can never add the same records twice.

export type Granularity = 'minute' | 'hour' | 'day';

/** One rollup cell: a (dimension, value) within one bucket. Totals use dimension '' and value ''. */
export interface CellKey {
  readonly merchantId: string;
  readonly generation: number;
  readonly granularity: Granularity;
  /** Bucket start, UTC epoch ms, aligned to the granularity. */
  readonly bucketMs: number;
  readonly dimension: string;
  readonly value: string;
}

export interface CellValue {
  readonly events: number;
  /** Sum of revenue amounts in minor units (see the analytics rules for which currency). */
  readonly revenue: bigint;
  /** Serialized HyperLogLog sketches (src/core/analytics/hll.ts); merge by union. */
  readonly users: Uint8Array;
  readonly sessions: Uint8Array;
}

export interface Cell {
  readonly key: CellKey;
  readonly value: CellValue;
}

export interface ApplyBatch {
  /** Who applies: consumer group and topic, e.g. 'analytics:events'. */
  readonly stream: string;
  readonly partition: number;
  /** The offset range [fromOffset, throughOffset] this batch covers, handled records or not. */
  readonly fromOffset: number;
  readonly throughOffset: number;
  /** The layout epoch the cells were routed with (see RollupLayout). */
  readonly layoutEpoch: number;
  readonly cells: readonly Cell[];
}

export type SketchName = 'users' | 'sessions';

export interface CellRangeRequest {
  readonly merchantId: string;
  readonly generation: number;
  readonly granularity: Granularity;
  /** Buckets with bucketMs in [fromMs, toMs). */
  readonly fromMs: number;
  readonly toMs: number;
  readonly dimension: string;
  /** When given, only these values of the dimension. */
  readonly values?: readonly string[];
  /**
   * Which sketches to read (default both). Sketch blobs are most of a cell's bytes: one left out
   * is not read and comes back as an empty sketch.
   */
  readonly sketches?: readonly SketchName[];
}

/** Which generation serves which time range, per merchant ('*' = every merchant). */
export interface LayoutOverlay {
  readonly merchantId: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly generation: number;
}

export interface GenerationInfo {
  readonly generation: number;
  /** Version of the processing logic that built it, e.g. 'analytics@2'. */
  readonly logicVersion: string;
}

export interface RollupLayout {
  /** Changes whenever overlays or building jobs change; apply() rejects a stale epoch. */
  readonly epoch: number;
  /** Generation serving everything no overlay covers. */
  readonly base: GenerationInfo;
  /** Later entries win where they overlap. */
  readonly overlays: readonly LayoutOverlay[];
  readonly generations: readonly GenerationInfo[];
  /** Generations being rebuilt: live records past `boundary` must be applied to them as well. */
  readonly building: readonly BuildingGeneration[];
}

export interface BuildingGeneration {
  readonly generation: number;
  readonly merchantId: string;
  readonly fromMs: number;
  readonly toMs: number;
  /** Per partition of the stream: the last offset the rebuild covers from raw events. */
  readonly boundary: Readonly<Record<number, number>>;
}

export type ReprocessState = 'building' | 'done' | 'failed';

export interface ReprocessJob {
  readonly id: string;
  readonly generation: number;
  readonly merchantId: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly logicVersion: string;
  readonly state: ReprocessState;
  /** Event time up to which the rebuild is complete (resume point after a crash). */
  readonly doneThroughMs: number;
  readonly eventsDone: number;
  readonly eventsTotal: number | null;
  readonly createdMs: number;
  readonly updatedMs: number;
  readonly error: string | null;
}

export interface RollupStore {
  /** Last offset of the partition whose effects are applied; -1 when none. */
  appliedOffset(stream: string, partition: number): Promise<number>;
  /**
   * Merges the cells and sets the partition's applied offset to throughOffset, all or nothing.
   * Rejects with RollupConflictError when the stored applied offset is not fromOffset - 1
   * (another member applied these records) or the layout epoch moved on.
   */
  apply(batch: ApplyBatch): Promise<void>;
  readCells(request: CellRangeRequest): Promise<Cell[]>;
  layout(): Promise<RollupLayout>;
  /**
   * Changes whenever what queries read can change: any apply (applied offsets move) or layout
   * change (a reprocessing switch). Cached query results are keyed by it.
   */
  dataVersion(): Promise<string>;

  /** Registers a rebuild into a new generation, snapshotting the stream's applied offsets. */
  startReprocess(input: { id: string; stream: string; merchantId: string; fromMs: number; toMs: number; logicVersion: string; nowMs: number }): Promise<ReprocessJob>;
  /** Merges rebuilt cells and records progress in one atomic step (a crash resumes from it). */
  writeReprocessStep(input: { jobId: string; cells: readonly Cell[]; doneThroughMs: number; eventsDone: number; eventsTotal: number | null; nowMs: number }): Promise<void>;
  /** Switches reads for the job's range to its generation, atomically. */
  finishReprocess(jobId: string, nowMs: number): Promise<ReprocessJob>;
  failReprocess(jobId: string, error: string, nowMs: number): Promise<void>;
  reprocessJob(jobId: string): Promise<ReprocessJob | null>;
  reprocessJobs(): Promise<ReprocessJob[]>;

  ping(): Promise<void>;
  close(): Promise<void>;
}

/** apply() found the partition or layout moved on: reload and recompute, never force. */
export class RollupConflictError extends Error {
  readonly reason: 'offset' | 'layout';
  constructor(reason: 'offset' | 'layout', message: string) {
    super(message);
    this.name = 'RollupConflictError';
    this.reason = reason;
  }
}
