// In-memory RollupStore for tests and the memory profile: the same exactly-once rules as the SQLite
// adapter (contiguous offsets, layout epoch, all-or-nothing merge), plus seeded fault injection
// so the runtime's retry path runs in fast unit tests.
import { TallyError } from '../../core/errors.ts';
import {
  assertCell, assertCellInJob, assertOffsetRange, assertReprocessInput, assertStep, mergeCellValues,
  type ReprocessStepInput, type StartReprocessInput,
} from '../../core/ports/rollup-store-rules.ts';
import { Hll } from '../../core/analytics/hll.ts';
import { RollupConflictError, type SketchName } from '../../core/ports/rollup-store.ts';
import type {
  ApplyBatch, BuildingGeneration, Cell, CellKey, CellRangeRequest, CellValue, GenerationInfo, Granularity,
  LayoutOverlay, ReprocessJob, RollupLayout, RollupStore,
} from '../../core/ports/rollup-store.ts';
import { seededRandom } from './prng.ts';

export interface MemoryRollupFaults {
  readonly seed: number;
  /** Probability in [0, 1] that an apply fails before it changes anything (a transient error). */
  readonly applyFailureRate: number;
}

export interface MemoryRollupStoreOptions {
  /** Logic version of generation 1, the initial base. */
  readonly logicVersion: string;
  readonly faults?: MemoryRollupFaults;
}

interface JobRecord {
  job: ReprocessJob;
  readonly building: BuildingGeneration;
}

/** Cells of one (merchant, generation, granularity, dimension): the unit readCells serves. */
type CellGroup = Map<string, Cell>;


export class MemoryRollupStore implements RollupStore {
  readonly #groups = new Map<string, CellGroup>();
  /** Applied offset per stream, then per partition. */
  readonly #offsets = new Map<string, Map<number, number>>();
  readonly #generations = new Map<number, GenerationInfo>();
  readonly #overlays: LayoutOverlay[] = [];
  readonly #jobs = new Map<string, JobRecord>();
  readonly #baseGeneration: number;
  readonly #faults: { readonly random: () => number; readonly rate: number } | null;
  #epoch = 1;
  #closed = false;

  static create(options: MemoryRollupStoreOptions): MemoryRollupStore {
    return new MemoryRollupStore(options);
  }

  constructor(options: MemoryRollupStoreOptions) {
    this.#baseGeneration = 1;
    this.#generations.set(1, { generation: 1, logicVersion: options.logicVersion });
    const faults = options.faults;
    if (faults && !(faults.applyFailureRate >= 0 && faults.applyFailureRate <= 1)) {
      throw new RangeError(`applyFailureRate must be within [0, 1], got ${faults.applyFailureRate}`);
    }
    this.#faults = faults ? { random: seededRandom(faults.seed), rate: faults.applyFailureRate } : null;
  }

  async appliedOffset(stream: string, partition: number): Promise<number> {
    this.#assertOpen();
    return this.#offsets.get(stream)?.get(partition) ?? -1;
  }

  async apply(batch: ApplyBatch): Promise<void> {
    this.#assertOpen();
    if (this.#faults && this.#faults.random() < this.#faults.rate) {
      throw new TallyError('store_unavailable', 'rollup store unavailable (injected fault)');
    }
    assertOffsetRange(batch);
    const stored = this.#offsets.get(batch.stream)?.get(batch.partition) ?? -1;
    if (stored !== batch.fromOffset - 1) {
      throw new RollupConflictError('offset', `${batch.stream}/${batch.partition}: applied offset is ${stored}, batch starts at ${batch.fromOffset}`);
    }
    if (batch.layoutEpoch !== this.#epoch) {
      throw new RollupConflictError('layout', `layout epoch is ${this.#epoch}, batch was routed with ${batch.layoutEpoch}`);
    }
    for (const cell of batch.cells) this.#assertCell(cell);
    this.#mergeAll(batch.cells);
    let partitions = this.#offsets.get(batch.stream);
    if (!partitions) {
      partitions = new Map();
      this.#offsets.set(batch.stream, partitions);
    }
    partitions.set(batch.partition, batch.throughOffset);
  }

  async readCells(request: CellRangeRequest): Promise<Cell[]> {
    this.#assertOpen();
    const group = this.#groups.get(groupKey(request));
    if (!group) return [];
    const wanted = request.values ? new Set(request.values) : null;
    const cells: Cell[] = [];
    for (const cell of group.values()) {
      if (cell.key.bucketMs < request.fromMs || cell.key.bucketMs >= request.toMs) continue;
      if (wanted && !wanted.has(cell.key.value)) continue;
      cells.push(withSketches(cell, request.sketches ?? ['users', 'sessions']));
    }
    return cells.sort(compareCells);
  }

  async dataVersion(): Promise<string> {
    this.#assertOpen();
    const offsets = [...this.#offsets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([stream, partitions]) => [...partitions].sort(([a], [b]) => a - b).map(([partition, offset]) => `${stream}:${partition}:${offset}`));
    return `${this.#epoch}/${offsets.join(',')}`;
  }

  async layout(): Promise<RollupLayout> {
    this.#assertOpen();
    const base = this.#generations.get(this.#baseGeneration) as GenerationInfo;
    const building: BuildingGeneration[] = [];
    for (const record of this.#jobs.values()) {
      if (record.job.state === 'building') building.push(copyBuilding(record.building));
    }
    return {
      epoch: this.#epoch,
      base: { ...base },
      overlays: this.#overlays.map((overlay) => ({ ...overlay })),
      generations: [...this.#generations.values()].sort((a, b) => a.generation - b.generation).map((info) => ({ ...info })),
      building: building.sort((a, b) => a.generation - b.generation),
    };
  }

  async startReprocess(input: StartReprocessInput): Promise<ReprocessJob> {
    this.#assertOpen();
    assertReprocessInput(input);
    if (this.#jobs.has(input.id)) throw new Error(`reprocess job ${input.id} already exists`);
    const generation = Math.max(...this.#generations.keys()) + 1;
    const boundary: Record<number, number> = {};
    for (const [partition, offset] of this.#offsets.get(input.stream) ?? []) boundary[partition] = offset;
    const job: ReprocessJob = {
      id: input.id, generation, merchantId: input.merchantId, fromMs: input.fromMs, toMs: input.toMs,
      logicVersion: input.logicVersion, state: 'building', doneThroughMs: input.fromMs, eventsDone: 0,
      eventsTotal: null, createdMs: input.nowMs, updatedMs: input.nowMs, error: null,
    };
    const building = { generation, merchantId: input.merchantId, fromMs: input.fromMs, toMs: input.toMs, boundary };
    this.#generations.set(generation, { generation, logicVersion: input.logicVersion });
    this.#jobs.set(input.id, { job, building });
    this.#epoch += 1;
    return { ...job };
  }

  async writeReprocessStep(input: ReprocessStepInput): Promise<void> {
    this.#assertOpen();
    const record = this.#buildingJob(input.jobId);
    assertStep(record.job, input);
    for (const cell of input.cells) {
      this.#assertCell(cell);
      assertCellInJob(record.job, cell);
    }
    this.#mergeAll(input.cells);
    record.job = {
      ...record.job, doneThroughMs: input.doneThroughMs, eventsDone: input.eventsDone,
      eventsTotal: input.eventsTotal, updatedMs: input.nowMs,
    };
  }

  async finishReprocess(jobId: string, nowMs: number): Promise<ReprocessJob> {
    this.#assertOpen();
    const record = this.#buildingJob(jobId);
    const job = record.job;
    if (job.doneThroughMs < job.toMs) {
      throw new Error(`reprocess job ${jobId} is complete only through ${job.doneThroughMs}, not ${job.toMs}`);
    }
    this.#overlays.push({ merchantId: job.merchantId, fromMs: job.fromMs, toMs: job.toMs, generation: job.generation });
    record.job = { ...job, state: 'done', updatedMs: nowMs };
    this.#epoch += 1;
    return { ...record.job };
  }

  async failReprocess(jobId: string, error: string, nowMs: number): Promise<void> {
    this.#assertOpen();
    const record = this.#jobs.get(jobId);
    if (!record) throw new TallyError('reprocess_job_not_found', `no reprocessing job ${jobId}`);
    // Failing twice is a retried call, not a bug: the first one already took effect.
    if (record.job.state === 'failed') return;
    if (record.job.state !== 'building') throw new Error(`reprocess job ${jobId} is ${record.job.state}, not building`);
    record.job = { ...record.job, state: 'failed', error, updatedMs: nowMs };
    this.#epoch += 1;
  }

  async reprocessJob(jobId: string): Promise<ReprocessJob | null> {
    this.#assertOpen();
    const record = this.#jobs.get(jobId);
    return record ? { ...record.job } : null;
  }

  async reprocessJobs(): Promise<ReprocessJob[]> {
    this.#assertOpen();
    return [...this.#jobs.values()].map((record) => ({ ...record.job })).sort((a, b) => a.generation - b.generation);
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Merges into copies first and swaps them in last, so a throwing merge changes nothing. */
  #mergeAll(cells: readonly Cell[]): void {
    const staged = new Map<string, Map<string, Cell>>();
    for (const cell of cells) {
      const group = groupKey(cell.key);
      let stagedGroup = staged.get(group);
      if (!stagedGroup) {
        stagedGroup = new Map();
        staged.set(group, stagedGroup);
      }
      const id = cellId(cell.key);
      const current = stagedGroup.get(id) ?? this.#groups.get(group)?.get(id);
      stagedGroup.set(id, current ? { key: current.key, value: mergeCellValues(current.value, cell.value) } : copyCell(cell));
    }
    for (const [group, stagedGroup] of staged) {
      let target = this.#groups.get(group);
      if (!target) {
        target = new Map();
        this.#groups.set(group, target);
      }
      for (const [id, cell] of stagedGroup) target.set(id, cell);
    }
  }

  #buildingJob(jobId: string): JobRecord {
    const record = this.#jobs.get(jobId);
    if (!record) throw new TallyError('reprocess_job_not_found', `no reprocessing job ${jobId}`);
    if (record.job.state !== 'building') throw new Error(`reprocess job ${jobId} is ${record.job.state}, not building`);
    return record;
  }

  #assertCell(cell: Cell): void {
    assertCell(cell);
    if (!this.#generations.has(cell.key.generation)) throw new RangeError(`cell names unknown generation ${cell.key.generation}`);
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('MemoryRollupStore is closed');
  }
}


function groupKey(key: { merchantId: string; generation: number; granularity: Granularity; dimension: string }): string {
  return JSON.stringify([key.merchantId, key.generation, key.granularity, key.dimension]);
}

function cellId(key: CellKey): string {
  return `${key.bucketMs}\u0000${key.value}`;
}

/** Ordered by (bucketMs, value), values in UTF-8 byte order as SQLite's BINARY collation. */
function compareCells(a: Cell, b: Cell): number {
  if (a.key.bucketMs !== b.key.bucketMs) return a.key.bucketMs - b.key.bucketMs;
  return Buffer.compare(Buffer.from(a.key.value), Buffer.from(b.key.value));
}

function copyCell(cell: Cell): Cell {
  return {
    key: { ...cell.key },
    value: { events: cell.value.events, revenue: cell.value.revenue, users: cell.value.users.slice(), sessions: cell.value.sessions.slice() },
  };
}

const emptySketchBytes = Hll.empty().toBytes();

/** A copy carrying only the wanted sketches; the others empty, as the port says. */
function withSketches(cell: Cell, wanted: readonly SketchName[]): Cell {
  const { users, sessions } = copyCell(cell).value;
  return {
    key: { ...cell.key },
    value: {
      events: cell.value.events, revenue: cell.value.revenue,
      users: wanted.includes('users') ? users : emptySketchBytes, sessions: wanted.includes('sessions') ? sessions : emptySketchBytes,
    },
  };
}

function copyBuilding(building: BuildingGeneration): BuildingGeneration {
  return { ...building, boundary: { ...building.boundary } };
}
