// The layout row: epoch, generations, overlays and every reprocessing job's identity and state, in
// one row changed only by `IF epoch = ?` lightweight transactions — so a switch (overlay + job done
// + epoch) is one atomic step. The lists are small JSON texts; the hot path reads three scalars.
import { randomUUID } from 'node:crypto';
import { TallyError } from '../../../core/errors.ts';
import type {
  BuildingGeneration, GenerationInfo, LayoutOverlay, ReprocessState, RollupLayout,
} from '../../../core/ports/rollup-store.ts';
import type { CassandraSession, Row } from '../session.ts';
import { conditionalWrite, longOf, readSerial } from '../cql.ts';

/** A job as the layout knows it; its progress is in the job's own row (jobs.ts). */
export interface JobEntry {
  readonly id: string;
  readonly generation: number;
  readonly stream: string;
  readonly merchantId: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly logicVersion: string;
  readonly state: ReprocessState;
  readonly createdMs: number;
  /** When the job was finished or failed. */
  readonly endedMs: number | null;
  readonly error: string | null;
  /** Null while its start's snapshot of the applied offsets is under way. */
  readonly boundary: Readonly<Record<number, number>> | null;
}

export interface LayoutState {
  readonly epoch: number;
  /** Id of the job whose boundary is being taken; claims are refused meanwhile. */
  readonly snapshot: string | null;
  readonly maxGeneration: number;
  readonly base: GenerationInfo;
  readonly generations: readonly GenerationInfo[];
  readonly overlays: readonly LayoutOverlay[];
  readonly jobs: readonly JobEntry[];
}

/** What apply checks a batch against: three scalars, not the lists. */
export interface LayoutFence {
  readonly epoch: number;
  readonly snapshot: string | null;
  readonly maxGeneration: number;
}

const layoutId = 'layout';

export class LayoutRow {
  readonly #session: CassandraSession;
  readonly #cql: { readonly insert: string; readonly read: string; readonly readFence: string; readonly replace: string; readonly readChange: string };

  constructor(session: CassandraSession) {
    this.#session = session;
    const table = session.table('rollup_layout');
    const columns = 'epoch, snapshot, max_generation, base, generations, overlays, jobs';
    this.#cql = {
      insert: `INSERT INTO ${table} (id, ${columns}, change_id) VALUES ('${layoutId}', 1, null, 1, ?, ?, '[]', '[]', '') IF NOT EXISTS`,
      read: `SELECT ${columns} FROM ${table} WHERE id = '${layoutId}'`,
      readFence: `SELECT epoch, snapshot, max_generation FROM ${table} WHERE id = '${layoutId}'`,
      replace: `UPDATE ${table} SET epoch = ?, change_id = ?, snapshot = ?, max_generation = ?, base = ?, generations = ?, overlays = ?, jobs = ?
        WHERE id = '${layoutId}' IF epoch = ?`,
      readChange: `SELECT epoch, change_id FROM ${table} WHERE id = '${layoutId}'`,
    };
  }

  /** A new store: generation 1 built by `logicVersion`, epoch 1. An existing layout is kept as it is. */
  async initialize(logicVersion: string): Promise<void> {
    const base: GenerationInfo = { generation: 1, logicVersion };
    const applied = await conditionalWrite(this.#session, this.#cql.insert, [JSON.stringify(base), JSON.stringify([base])]);
    if (applied === undefined && !(await readSerial(this.#session, this.#cql.readFence, []))) throw unknownOutcome('initialising the layout');
  }

  /** The whole layout; `serial` when the caller is about to change it. */
  async read(serial: boolean): Promise<LayoutState> {
    const row = serial
      ? await readSerial(this.#session, this.#cql.read, [])
      : (await this.#session.execute(this.#cql.read, [], { idempotent: true })).first();
    if (!row) throw missingLayout();
    return {
      ...fenceOf(row),
      base: JSON.parse(row.get('base') as string) as GenerationInfo,
      generations: JSON.parse(row.get('generations') as string) as GenerationInfo[],
      overlays: JSON.parse(row.get('overlays') as string) as LayoutOverlay[],
      jobs: JSON.parse(row.get('jobs') as string) as JobEntry[],
    };
  }

  /**
   * Read at LOCAL_QUORUM: every layout change is an LWT whose commit was written at LOCAL_QUORUM
   * before it returned, so a change that completed before this read began is seen.
   */
  async readFence(): Promise<LayoutFence> {
    const row = (await this.#session.execute(this.#cql.readFence, [], { idempotent: true })).first();
    if (!row) throw missingLayout();
    return fenceOf(row);
  }

  /**
   * Replaces `current` with `next` and the next epoch, if the layout is still at current's epoch.
   * False when it moved on (the caller re-reads and decides again).
   */
  async replace(current: LayoutState, next: Omit<LayoutState, 'epoch'>): Promise<boolean> {
    const changeId = randomUUID();
    const applied = await conditionalWrite(this.#session, this.#cql.replace, [
      current.epoch + 1, changeId, next.snapshot, next.maxGeneration, JSON.stringify(next.base), JSON.stringify(next.generations),
      JSON.stringify(next.overlays), JSON.stringify(next.jobs), current.epoch,
    ]);
    if (applied !== undefined) return applied;
    // Timed out: the SERIAL read settles the round; the change id says whether it was ours.
    const row = await readSerial(this.#session, this.#cql.readChange, []);
    if (row?.get('change_id') === changeId) return true;
    if (row && longOf(row.get('epoch')) === current.epoch) return false;
    throw unknownOutcome('a layout change');
  }
}

/** The port's view: building generations are the jobs building, with their boundaries taken. */
export function toRollupLayout(state: LayoutState): RollupLayout {
  const building: BuildingGeneration[] = state.jobs
    .filter((job) => job.state === 'building' && job.boundary !== null)
    .sort((a, b) => a.generation - b.generation)
    .map((job) => ({ generation: job.generation, merchantId: job.merchantId, fromMs: job.fromMs, toMs: job.toMs, boundary: { ...job.boundary } }));
  return {
    epoch: state.epoch,
    base: { ...state.base },
    overlays: state.overlays.map((overlay) => ({ ...overlay })),
    generations: state.generations.map((info) => ({ ...info })),
    building,
  };
}

/** The job, or reprocess_job_not_found. */
export function findJob(state: LayoutState, jobId: string): JobEntry {
  const entry = state.jobs.find((job) => job.id === jobId);
  if (!entry) throw new TallyError('reprocess_job_not_found', `no reprocessing job ${jobId}`);
  return entry;
}

/** The job, which must be building (finishing, stepping). */
export function buildingEntry(state: LayoutState, jobId: string): JobEntry {
  const entry = findJob(state, jobId);
  if (entry.state !== 'building') throw new Error(`reprocess job ${jobId} is ${entry.state}, not building`);
  return entry;
}

/** The jobs with `changed` in place of its former entry. */
export function withJob(jobs: readonly JobEntry[], changed: JobEntry): JobEntry[] {
  return jobs.map((job) => (job.id === changed.id ? changed : job));
}

function fenceOf(row: Row): LayoutFence {
  return { epoch: longOf(row.get('epoch')), snapshot: (row.get('snapshot') as string | null) ?? null, maxGeneration: row.get('max_generation') as number };
}

function missingLayout(): Error {
  return new Error('rollup store: the layout row is missing (was the store opened with CassandraRollupStore.open?)');
}

function unknownOutcome(what: string): TallyError {
  return new TallyError('store_unavailable', `rollup store: the outcome of ${what} is unknown (Cassandra timed out); retry`);
}
