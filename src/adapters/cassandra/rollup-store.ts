// Cassandra RollupStore: exactly-once rollups without counters and without cross-partition
// transactions. The tables are in rollups/schema.ts, each part of the protocol in rollups/*.ts.
//
// Why not the obvious. A logged batch of cells plus the offset is atomic but not isolated, and it
// cannot be fenced (an LWT batch must stay in one partition), so a zombie's batch lands anyway.
// Counters cannot be made idempotent. An LWT per cell costs four round trips per cell and still
// breaks when a zombie applies a different offset range than the partition's new owner.
//
// 1. Per-source cell rows. rollup_cells has one row per (cell, source): `<stream>/<partition>` for
//    live batches ('analytics:events/3'), `job:<id>` for a reprocessing job. Each source is one
//    sequential lineage of writes (the claims of 3 order them), so a row never has two independent
//    writers: read-merge-write without LWTs loses no update. readCells merges a cell's rows across
//    sources (counts and exact revenue add, sketches union). Partitions: minute and hour cells one
//    UTC day, day cells one UTC month (rollups/cells.ts says why); sketches are their own columns so
//    a counts-only read leaves them on disk; rollup_cell_spans lists the populated partitions.
//    Read-merge-write across members needs reads that see every completed write: reads and writes
//    at a quorum level (the configuration accepts no other).
// 2. Timestamps are sequence numbers. A source's rows are written `USING TIMESTAMP seq` with the
//    write's seq (a live batch's throughOffset; a job's step number), and a row records its seq. A
//    slow zombie's late write of an older state loses to a newer one by Cassandra's
//    last-write-wins, whatever the clocks. The value a row holds at seq s is a function of the writes
//    up to s — anyone who (re)does write s computes the same bytes — so duplicate writes are no-ops.
//    Hence two rules: a stream's offsets never go back (a recreated topic needs a new stream name),
//    and cell rows are never deleted with a clock timestamp (micros since 1970 would shadow every
//    later write): dropping a generation must delete with an explicit timestamp or drop partitions.
// 3. Intent, claim, merge, finish (per log partition; rollups/partitions.ts). rollup_partitions
//    holds applied_offset, fence_epoch and the one pending batch, and changes only by LWT.
//    apply(batch): check the input (core rules); register the partition in its stream's index (first
//    batch); check the layout (epoch equal, no snapshot under way, generations known); write the
//    batch's cells as an intent (rollup_intents, TTL); claim
//    `IF applied_offset = from − 1 AND pending_id = '' AND fence_epoch < batch epoch`; merge each
//    cell into the source's row unless the row's seq is already ≥ through (every row is read and
//    merged before the first write, so a merge that cannot happen — revenue past 64 bits — writes
//    nothing, the claim is released and the batch rejected); finish
//    `SET applied_offset = through, pending_id = '' IF pending_id = ours`; record the data version;
//    delete the intent. A claim, once made, is never abandoned: whoever finds it pending — the next
//    owner in appliedOffset(), a member whose claim it blocked, a reprocessing snapshot — finishes it
//    from the intent, safely alongside its owner (2). A timed-out LWT is settled by a SERIAL read,
//    never by resending it.
//    The lead's sketch checked the layout after the claim and released the claim on a mismatch; a
//    release can race with someone finishing the claim from its intent — cells half written, the
//    offset not moved, and the re-polled batch counted twice. So the layout is checked before the
//    claim, and reprocessing fences claims per partition instead (4).
// 4. Layout and reprocessing (rollups/layout.ts, rollups/jobs.ts). One layout row — epoch,
//    generations, overlays, every job's identity and state, `snapshot` — changes only by
//    `IF epoch = ?` LWTs, so a switch or a failure is one step. startReprocess: (i) register the job
//    building without a boundary and set snapshot (epoch + 1); (ii) for each partition of the stream
//    (from the index): finish any pending batch, then raise its fence to that epoch
//    `IF pending_id = '' AND applied_offset = a` — a is its boundary; (iii) store the boundary and
//    clear the snapshot (epoch + 1). Why every record reaches the new generation exactly once: a
//    batch whose layout check saw the layout before (i) was routed without the job; if it claimed
//    before (ii) fenced its partition, (ii) finished it first and the boundary covers it (the rebuild
//    counts it from raw events); if it claims after, the fence refuses it. A check that starts after
//    (i) returned sees the snapshot or a newer epoch (layout LWTs commit at the quorum it reads) and
//    refuses the batch, until (iii) publishes the boundary, whose epoch passes the fence — those
//    batches route records past the boundary to the new generation. A partition
//    first claimed during (ii) registered in the index before its check: either (ii) lists and
//    fences it, or its check ran after (i). Steps (ii)–(iii) are idempotent, and anyone who meets a
//    snapshot under way (apply, layout()) completes it, so a start that died midway blocks nothing.
//    Steps (writeReprocessStep) are the same intent–claim–merge–finish on the job's row: source
//    `job:<id>`, seq = step number, claim `IF step = ? AND pending_id = '' AND closed = false`,
//    progress set by the finishing LWT. finishReprocess closes the job's row to steps, then adds the
//    overlay, marks the job done and bumps the epoch in one layout LWT; failReprocess is one LWT.
// 5. dataVersion = layout epoch + a digest of rollup_data_versions (one partition of applied
//    offsets, written after each finish `USING TIMESTAMP offset` so it only moves forward; rewritten
//    by appliedOffset() should a finisher die between the two). It changes with every apply and
//    layout change, and only then.
// Reads are not isolated from a merge in progress: for the milliseconds a batch's cell writes take,
// a query may see part of it. dataVersion moves only once the batch is finished, so a cache entry
// built from a partial read is keyed by the version before: served until the finish, then never.
import { randomUUID } from 'node:crypto';
import {
  assertCell, assertCellInJob, assertOffsetRange, assertReprocessInput, assertStep,
  type ReprocessStepInput, type StartReprocessInput,
} from '../../core/ports/rollup-store-rules.ts';
import { RollupConflictError } from '../../core/ports/rollup-store.ts';
import type { ApplyBatch, Cell, CellRangeRequest, ReprocessJob, RollupLayout, RollupStore } from '../../core/ports/rollup-store.ts';
import type { CassandraSession } from './session.ts';
import { CellRows, combineCells, type WriteHook } from './rollups/cells.ts';
import { requestsInFlightMax, stillContended } from './cql.ts';
import { encodeIntent, IntentRows } from './rollups/intents.ts';
import { composeJob, initialProgress, JobRows, type JobProgress, type PendingStep } from './rollups/jobs.ts';
import { buildingEntry, findJob, LayoutRow, toRollupLayout, withJob, type JobEntry, type LayoutState } from './rollups/layout.ts';
import { PartitionRows, type PartitionState, type PendingBatch } from './rollups/partitions.ts';
import { rollupStoreSchema } from './rollups/schema.ts';

export { rollupStoreSchema };

/** Re-reads of a contended layout or partition row before giving up with store_unavailable. */
const contendedRoundsMax = 10;

export type RollupFaultPoint = 'layout-checked' | 'claimed' | 'cell-batch' | 'cells-written' | 'snapshot-started';

export interface RollupFaultEvent {
  readonly point: RollupFaultPoint;
  /** The cell source being written and the write's seq (for 'snapshot-started': the job and the epoch). */
  readonly source: string;
  readonly seq: number;
  /** For 'cell-batch': which of the write's cell batches is about to be sent. */
  readonly batchIndex?: number;
  readonly batchesTotal?: number;
}

/**
 * Test hook (fault injection), called at the steps of a write: after apply's layout check, after a
 * claim, before each batch of cell writes, before the finishing LWT; and after startReprocess
 * registered its job (before the snapshot). Throwing simulates a crash at that point; a promise
 * that waits simulates a stalled member (a zombie). Production code never sets it.
 */
export type RollupFaults = (event: RollupFaultEvent) => void | Promise<void>;

export interface CassandraRollupStoreOptions {
  /** Shared with the other stores; the caller owns it and closes it. */
  readonly session: CassandraSession;
  /** Logic version of generation 1 when the store is new; an existing store keeps its own. */
  readonly logicVersion: string;
  readonly faults?: RollupFaults;
}

/** A claimed write (a live batch or a job's step) as the merge and finish steps need it. */
interface ClaimedWrite {
  readonly source: string;
  readonly id: string;
  readonly seq: number;
  readonly chunks: number;
  finish(): Promise<boolean>;
  release(): Promise<void>;
  stillPending(): Promise<boolean>;
}

export class CassandraRollupStore implements RollupStore {
  readonly #session: CassandraSession;
  readonly #layout: LayoutRow;
  readonly #partitions: PartitionRows;
  readonly #jobs: JobRows;
  readonly #cells: CellRows;
  readonly #intents: IntentRows;
  readonly #faults: RollupFaults | null;
  #closed = false;

  /** Checks the schema (`tally migrate` creates it) and creates the layout of a new store. */
  static async open(options: CassandraRollupStoreOptions): Promise<CassandraRollupStore> {
    await options.session.assertSchema(rollupStoreSchema);
    const store = new CassandraRollupStore(options);
    await store.#layout.initialize(options.logicVersion);
    return store;
  }

  private constructor(options: CassandraRollupStoreOptions) {
    const session = options.session;
    this.#session = session;
    this.#layout = new LayoutRow(session);
    this.#partitions = new PartitionRows(session);
    this.#jobs = new JobRows(session);
    this.#cells = new CellRows(session);
    this.#intents = new IntentRows(session);
    this.#faults = options.faults ?? null;
  }

  /** Finishes a batch left pending first: the offset returned is then final for the caller. */
  async appliedOffset(stream: string, partition: number): Promise<number> {
    this.#assertOpen();
    let state = await this.#partitions.read(stream, partition);
    if (state.pending) {
      await this.#finishFromIntent(this.#liveWrite(stream, partition, state.pending));
      state = await this.#partitions.read(stream, partition);
    }
    // Repairs the data version of a finisher that died before writing it (idempotent otherwise).
    if (state.appliedOffset >= 0) await this.#partitions.writeDataVersion(stream, partition, state.appliedOffset);
    return state.appliedOffset;
  }

  async apply(batch: ApplyBatch): Promise<void> {
    this.#assertOpen();
    assertOffsetRange(batch);
    for (const cell of batch.cells) assertCell(cell);
    const cells = combineCells(batch.cells);
    const { stream, partition } = batch;
    if (batch.fromOffset === 0) await this.#partitions.register(stream, partition);
    await this.#checkLayout(batch.layoutEpoch, cells);
    const chunks = encodeIntent(cells);
    const pending: PendingBatch = { id: randomUUID(), throughOffset: batch.throughOffset, chunks: chunks.length };
    const write = this.#liveWrite(stream, partition, pending);
    await this.#faults?.({ point: 'layout-checked', source: write.source, seq: write.seq });
    await this.#intents.write(write.source, pending.id, chunks);
    const claim = await this.#partitions.claim(stream, partition, batch.fromOffset, batch.layoutEpoch, pending);
    if (!claim.claimed) {
      await this.#intents.delete(write.source, pending.id);
      throw await this.#refusal(batch, claim.state);
    }
    await this.#faults?.({ point: 'claimed', source: write.source, seq: write.seq });
    await this.#finishWrite(write, cells);
  }

  async readCells(request: CellRangeRequest): Promise<Cell[]> {
    this.#assertOpen();
    return this.#cells.read(request);
  }

  async layout(): Promise<RollupLayout> {
    this.#assertOpen();
    for (let round = 0; round < contendedRoundsMax; round++) {
      const state = await this.#layout.read(round > 0);
      if (state.snapshot === null) return toRollupLayout(state);
      await this.#completeSnapshot(state);
    }
    throw stillContended('the layout');
  }

  async dataVersion(): Promise<string> {
    this.#assertOpen();
    const [fence, digest] = await Promise.all([this.#layout.readFence(), this.#partitions.dataVersionDigest()]);
    return `${fence.epoch}/${digest}`;
  }

  async startReprocess(input: StartReprocessInput): Promise<ReprocessJob> {
    this.#assertOpen();
    assertReprocessInput(input);
    for (let round = 0; round < contendedRoundsMax; round++) {
      const state = await this.#layout.read(true);
      if (state.snapshot !== null) {
        await this.#completeSnapshot(state);
        continue;
      }
      if (state.jobs.some((job) => job.id === input.id)) throw new Error(`reprocess job ${input.id} already exists`);
      const generation = state.maxGeneration + 1;
      const job: JobEntry = {
        id: input.id, generation, stream: input.stream, merchantId: input.merchantId, fromMs: input.fromMs, toMs: input.toMs,
        logicVersion: input.logicVersion, state: 'building', createdMs: input.nowMs, endedMs: null, error: null, boundary: null,
      };
      const next = {
        ...state, snapshot: input.id, maxGeneration: generation,
        generations: [...state.generations, { generation, logicVersion: input.logicVersion }], jobs: [...state.jobs, job],
      };
      if (!(await this.#layout.replace(state, next))) continue;
      await this.#faults?.({ point: 'snapshot-started', source: `job:${input.id}`, seq: state.epoch + 1 });
      await this.#completeSnapshot({ ...next, epoch: state.epoch + 1 });
      return composeJob(job, initialProgress(job.fromMs, job.createdMs));
    }
    throw stillContended('the layout');
  }

  async writeReprocessStep(input: ReprocessStepInput): Promise<void> {
    this.#assertOpen();
    for (const cell of input.cells) assertCell(cell);
    const entry = buildingEntry(await this.#layout.read(false), input.jobId);
    const progress = await this.#progressOf(entry);
    if (progress.pending) {
      // Its caller computed this step from the progress before that one: it must reload.
      await this.#finishFromIntent(this.#stepWrite(entry.id, progress.pending));
      throw new Error(`reprocess job ${entry.id} took another step meanwhile: reload its progress`);
    }
    const job = composeJob(entry, progress);
    assertStep(job, input);
    for (const cell of input.cells) assertCellInJob(job, cell);
    if (progress.closed) throw new Error(`reprocess job ${entry.id} is being switched and takes no more steps`);
    const cells = combineCells(input.cells);
    const chunks = encodeIntent(cells);
    const pending: PendingStep = {
      id: randomUUID(), step: progress.step + 1, chunks: chunks.length,
      doneThroughMs: input.doneThroughMs, eventsDone: input.eventsDone, eventsTotal: input.eventsTotal, updatedMs: input.nowMs,
    };
    const write = this.#stepWrite(entry.id, pending);
    await this.#intents.write(write.source, pending.id, chunks);
    if (!(await this.#jobs.claim(entry.id, progress, pending))) {
      await this.#intents.delete(write.source, pending.id);
      throw new Error(`reprocess job ${entry.id} moved on while this step was prepared: reload its progress`);
    }
    await this.#faults?.({ point: 'claimed', source: write.source, seq: write.seq });
    await this.#finishWrite(write, cells);
  }

  async finishReprocess(jobId: string, nowMs: number): Promise<ReprocessJob> {
    this.#assertOpen();
    for (let round = 0; round < contendedRoundsMax; round++) {
      const state = await this.#layout.read(true);
      const entry = buildingEntry(state, jobId);
      if (entry.boundary === null) {
        await this.#completeSnapshot(state);
        continue;
      }
      const progress = await this.#progressOf(entry);
      if (progress.pending) {
        await this.#finishFromIntent(this.#stepWrite(entry.id, progress.pending));
        continue;
      }
      if (progress.doneThroughMs < entry.toMs) {
        throw new Error(`reprocess job ${jobId} is complete only through ${progress.doneThroughMs}, not ${entry.toMs}`);
      }
      // No step may land after the switch: the row is closed first (a retry after a crash closes again).
      if (!(await this.#jobs.close(jobId, progress))) continue;
      const done: JobEntry = { ...entry, state: 'done', endedMs: nowMs, error: null };
      const overlay = { merchantId: entry.merchantId, fromMs: entry.fromMs, toMs: entry.toMs, generation: entry.generation };
      if (await this.#layout.replace(state, { ...state, overlays: [...state.overlays, overlay], jobs: withJob(state.jobs, done) })) {
        return composeJob(done, progress);
      }
    }
    throw stillContended('the layout');
  }

  async failReprocess(jobId: string, error: string, nowMs: number): Promise<void> {
    this.#assertOpen();
    for (let round = 0; round < contendedRoundsMax; round++) {
      const state = await this.#layout.read(true);
      const entry = findJob(state, jobId);
      // Failing twice is a retried call, not a bug: the first one already took effect.
      if (entry.state === 'failed') return;
      if (entry.state !== 'building') throw new Error(`reprocess job ${jobId} is ${entry.state}, not building`);
      const failed: JobEntry = { ...entry, state: 'failed', endedMs: nowMs, error };
      const snapshot = state.snapshot === jobId ? null : state.snapshot;
      if (await this.#layout.replace(state, { ...state, snapshot, jobs: withJob(state.jobs, failed) })) return;
    }
    throw stillContended('the layout');
  }

  async reprocessJob(jobId: string): Promise<ReprocessJob | null> {
    this.#assertOpen();
    const entry = (await this.#layout.read(false)).jobs.find((job) => job.id === jobId);
    return entry ? this.#currentJob(entry) : null;
  }

  async reprocessJobs(): Promise<ReprocessJob[]> {
    this.#assertOpen();
    const entries = [...(await this.#layout.read(false)).jobs].sort((a, b) => a.generation - b.generation);
    const jobs: ReprocessJob[] = new Array(entries.length);
    await this.#session.forEachConcurrently(entries.map((entry, index) => ({ entry, index })), requestsInFlightMax, async ({ entry, index }) => {
      jobs[index] = await this.#currentJob(entry);
    });
    return jobs;
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    await this.#session.ping();
  }

  /** The session belongs to the caller: closing the store only stops its use. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /** The layout half of apply's checks, before the claim (see 3 and 4 above). */
  async #checkLayout(epoch: number, cells: readonly Cell[]): Promise<void> {
    const fence = await this.#layout.readFence();
    if (fence.snapshot !== null) {
      await this.#completeSnapshot(await this.#layout.read(true));
      throw new RollupConflictError('layout', 'a reprocessing job was taking its boundary; reload the layout');
    }
    if (fence.epoch !== epoch) throw new RollupConflictError('layout', `layout epoch is ${fence.epoch}, batch was routed with ${epoch}`);
    for (const { key } of cells) {
      if (key.generation < 1 || key.generation > fence.maxGeneration) throw new RangeError(`cell names unknown generation ${key.generation}`);
    }
  }

  /** Why a claim was refused, as the conflict the caller must resolve by reloading. */
  async #refusal(batch: ApplyBatch, state: PartitionState): Promise<RollupConflictError> {
    const where = `${batch.stream}/${batch.partition}`;
    if (state.pending) {
      // Another member's batch (maybe of a member that died): finish it, so the reload sees it.
      await this.#finishFromIntent(this.#liveWrite(batch.stream, batch.partition, state.pending));
      return new RollupConflictError('offset', `${where}: a batch through ${state.pending.throughOffset} was pending; reload the applied offset`);
    }
    if (state.appliedOffset !== batch.fromOffset - 1) {
      return new RollupConflictError('offset', `${where}: applied offset is ${state.appliedOffset}, batch starts at ${batch.fromOffset}`);
    }
    if (state.fenceEpoch >= batch.layoutEpoch) {
      return new RollupConflictError('layout', `${where}: a reprocessing boundary fenced layout epochs up to ${state.fenceEpoch}`);
    }
    return new RollupConflictError('offset', `${where}: the partition changed while the batch was claimed; reload the applied offset`);
  }

  /** Merge and finish of a claimed write, by its owner or anyone who found it pending. */
  async #finishWrite(write: ClaimedWrite, cells: readonly Cell[]): Promise<void> {
    const hook: WriteHook | undefined = this.#faults
      ? (batchIndex, batchesTotal) => this.#faults!({ point: 'cell-batch', source: write.source, seq: write.seq, batchIndex, batchesTotal })
      : undefined;
    try {
      await this.#cells.merge(cells, write.source, write.seq, hook);
    } catch (error) {
      // The merge itself is impossible (revenue past 64 bits): nothing was written, by anyone.
      if (error instanceof RangeError) {
        await write.release();
        await this.#intents.delete(write.source, write.id);
      }
      throw error;
    }
    await this.#faults?.({ point: 'cells-written', source: write.source, seq: write.seq });
    if (!(await write.finish())) throw new Error(`rollup store: the claim ${write.id} of ${write.source} was released although its cells merged`);
    await this.#intents.delete(write.source, write.id);
  }

  /** Finishes another writer's pending write from its intent; one that cannot merge is released. */
  async #finishFromIntent(write: ClaimedWrite): Promise<void> {
    const cells = await this.#intents.read(write.source, write.id, write.chunks);
    if (cells === null) {
      // Its intent is gone: finished meanwhile (and deleted), or expired — then nobody can finish it.
      if (await write.stillPending()) throw new Error(`rollup store: the intent of ${write.source}'s pending write ${write.id} is lost`);
      return;
    }
    try {
      await this.#finishWrite(write, cells);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
    }
  }

  #liveWrite(stream: string, partition: number, pending: PendingBatch): ClaimedWrite {
    const partitions = this.#partitions;
    return {
      source: `${stream}/${partition}`, id: pending.id, seq: pending.throughOffset, chunks: pending.chunks,
      async finish() {
        if (!(await partitions.finish(stream, partition, pending))) return false;
        await partitions.writeDataVersion(stream, partition, pending.throughOffset);
        return true;
      },
      release: () => partitions.release(stream, partition, pending.id),
      stillPending: async () => (await partitions.read(stream, partition)).pending?.id === pending.id,
    };
  }

  #stepWrite(jobId: string, pending: PendingStep): ClaimedWrite {
    const jobs = this.#jobs;
    return {
      source: `job:${jobId}`, id: pending.id, seq: pending.step, chunks: pending.chunks,
      finish: () => jobs.finish(jobId, pending),
      release: () => jobs.release(jobId, pending.id),
      stillPending: async () => (await jobs.read(jobId))?.pending?.id === pending.id,
    };
  }

  /** Steps (ii) and (iii) of startReprocess, by whoever meets the snapshot (idempotent, see 4). */
  async #completeSnapshot(state: LayoutState): Promise<void> {
    const job = state.jobs.find((entry) => entry.id === state.snapshot);
    if (!job) return;
    const boundary: Record<number, number> = {};
    const partitions = await this.#partitions.partitionsOf(job.stream);
    await this.#session.forEachConcurrently(partitions, requestsInFlightMax, async (partition) => {
      const offset = await this.#fencePartition(job.stream, partition, state.epoch);
      if (offset >= 0) boundary[partition] = offset;
    });
    const jobs = withJob(state.jobs, { ...job, boundary });
    // False: a fellow helper published the same boundary first, or the job failed meanwhile.
    await this.#layout.replace(state, { ...state, snapshot: null, jobs });
  }

  /** Finishes the partition's pending batch and fences it at `epoch`; returns its applied offset then. */
  async #fencePartition(stream: string, partition: number, epoch: number): Promise<number> {
    for (let round = 0; round < contendedRoundsMax; round++) {
      const state = await this.#partitions.read(stream, partition);
      // Fenced by a fellow helper: nothing can claim until this snapshot's last step, so the offset holds.
      if (state.exists && state.fenceEpoch >= epoch) return state.appliedOffset;
      if (state.pending) {
        await this.#finishFromIntent(this.#liveWrite(stream, partition, state.pending));
        continue;
      }
      if (await this.#partitions.fence(stream, partition, epoch, state)) return state.appliedOffset;
    }
    throw stillContended(`partition ${partition} of ${stream}`);
  }

  async #progressOf(entry: JobEntry): Promise<JobProgress> {
    return (await this.#jobs.read(entry.id)) ?? initialProgress(entry.fromMs, entry.createdMs);
  }

  /** A building job's pending step is finished first, so its progress is final for the caller. */
  async #currentJob(entry: JobEntry): Promise<ReprocessJob> {
    let progress = await this.#progressOf(entry);
    if (progress.pending && entry.state === 'building') {
      await this.#finishFromIntent(this.#stepWrite(entry.id, progress.pending));
      progress = await this.#progressOf(entry);
    }
    return composeJob(entry, progress);
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('CassandraRollupStore is closed');
  }
}
