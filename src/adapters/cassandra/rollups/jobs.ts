// A reprocessing job's progress row: the step count (each step's cells carry it as their seq), the
// progress the port reports, the one claimed step, and `closed` once the job's switch has begun.
// Written only by lightweight transactions. The job's identity and state live in the layout row.
import type { ReprocessJob } from '../../../core/ports/rollup-store.ts';
import type { CassandraSession, Row } from '../session.ts';
import { conditionalWrite, longOf, optionalLongOf, readSerial } from '../cql.ts';
import type { JobEntry } from './layout.ts';

export interface StepProgress {
  readonly doneThroughMs: number;
  readonly eventsDone: number;
  readonly eventsTotal: number | null;
  readonly updatedMs: number;
}

export interface PendingStep extends StepProgress {
  readonly id: string;
  /** The step's number: progress.step + 1. */
  readonly step: number;
  readonly chunks: number;
}

export interface JobProgress extends StepProgress {
  /** False for a job without a row yet (it has taken no step): see `initialProgress`. */
  readonly exists: boolean;
  readonly step: number;
  readonly closed: boolean;
  readonly pending: PendingStep | null;
}

/** A job's progress before its first step: the row is created by the first claim (or the close). */
export function initialProgress(fromMs: number, createdMs: number): JobProgress {
  return { exists: false, step: 0, doneThroughMs: fromMs, eventsDone: 0, eventsTotal: null, updatedMs: createdMs, closed: false, pending: null };
}

/** "No claimed step" is '', as for partitions: no tombstone per step. */
const none = '';

export class JobRows {
  readonly #session: CassandraSession;
  readonly #cql: {
    readonly read: string;
    readonly insertClaim: string;
    readonly claim: string;
    readonly finish: string;
    readonly release: string;
    readonly insertClosed: string;
    readonly close: string;
  };

  constructor(session: CassandraSession) {
    this.#session = session;
    const rows = session.table('rollup_jobs');
    const pendingColumns = 'pending_id, pending_chunks, pending_done_through_ms, pending_events_done, pending_events_total, pending_updated_ms';
    this.#cql = {
      read: `SELECT step, done_through_ms, events_done, events_total, updated_ms, closed, ${pendingColumns} FROM ${rows} WHERE id = ?`,
      insertClaim: `INSERT INTO ${rows} (id, step, done_through_ms, events_done, events_total, updated_ms, closed, ${pendingColumns})
        VALUES (?, 0, ?, 0, null, ?, false, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
      claim: `UPDATE ${rows} SET pending_id = ?, pending_chunks = ?, pending_done_through_ms = ?, pending_events_done = ?,
          pending_events_total = ?, pending_updated_ms = ?
        WHERE id = ? IF step = ? AND pending_id = '${none}' AND closed = false`,
      finish: `UPDATE ${rows} SET step = ?, done_through_ms = ?, events_done = ?, events_total = ?, updated_ms = ?, pending_id = '${none}'
        WHERE id = ? IF pending_id = ?`,
      release: `UPDATE ${rows} SET pending_id = '${none}' WHERE id = ? IF pending_id = ?`,
      insertClosed: `INSERT INTO ${rows} (id, step, done_through_ms, events_done, events_total, updated_ms, closed, pending_id)
        VALUES (?, 0, ?, 0, null, ?, true, '${none}') IF NOT EXISTS`,
      close: `UPDATE ${rows} SET closed = true WHERE id = ? IF pending_id = '${none}' AND step = ?`,
    };
  }

  /** Progress as the last LWT left it; null before the job's first step. */
  async read(jobId: string): Promise<JobProgress | null> {
    const row = await readSerial(this.#session, this.#cql.read, [jobId]);
    if (!row) return null;
    return {
      exists: true,
      step: longOf(row.get('step')),
      doneThroughMs: longOf(row.get('done_through_ms')),
      eventsDone: longOf(row.get('events_done')),
      eventsTotal: optionalLongOf(row.get('events_total')),
      updatedMs: longOf(row.get('updated_ms')),
      closed: row.get('closed') as boolean,
      pending: pendingOf(row),
    };
  }

  /** Claims the next step if the job is still at `progress` (no step claimed, not closed). */
  async claim(jobId: string, progress: JobProgress, pending: PendingStep): Promise<boolean> {
    const claimed = [pending.id, pending.chunks, pending.doneThroughMs, pending.eventsDone, pending.eventsTotal, pending.updatedMs];
    const applied = progress.exists
      ? await conditionalWrite(this.#session, this.#cql.claim, [...claimed, jobId, progress.step])
      : await conditionalWrite(this.#session, this.#cql.insertClaim, [jobId, progress.doneThroughMs, progress.updatedMs, ...claimed]);
    if (applied !== undefined) return applied;
    return (await this.read(jobId))?.pending?.id === pending.id;
  }

  /** Records the step's progress and clears the claim; false when the claim had been released instead. */
  async finish(jobId: string, pending: PendingStep): Promise<boolean> {
    for (;;) {
      const params = [pending.step, pending.doneThroughMs, pending.eventsDone, pending.eventsTotal, pending.updatedMs, jobId, pending.id];
      if (await conditionalWrite(this.#session, this.#cql.finish, params)) return true;
      const progress = await this.read(jobId);
      if (progress?.pending?.id !== pending.id) return (progress?.step ?? 0) >= pending.step;
    }
  }

  async release(jobId: string, pendingId: string): Promise<void> {
    for (;;) {
      const applied = await conditionalWrite(this.#session, this.#cql.release, [jobId, pendingId]);
      if (applied !== undefined || (await this.read(jobId))?.pending?.id !== pendingId) return;
    }
  }

  /** Closes the job to further steps if it is still at `progress` with nothing claimed. */
  async close(jobId: string, progress: JobProgress): Promise<boolean> {
    const applied = progress.exists
      ? await conditionalWrite(this.#session, this.#cql.close, [jobId, progress.step])
      : await conditionalWrite(this.#session, this.#cql.insertClosed, [jobId, progress.doneThroughMs, progress.updatedMs]);
    if (applied !== undefined) return applied;
    const now = await this.read(jobId);
    return now !== null && now.closed && now.step === progress.step && now.pending === null;
  }
}

function pendingOf(row: Row): PendingStep | null {
  const id = row.get('pending_id') as string;
  if (id === none) return null;
  return {
    id,
    step: longOf(row.get('step')) + 1,
    chunks: row.get('pending_chunks') as number,
    doneThroughMs: longOf(row.get('pending_done_through_ms')),
    eventsDone: longOf(row.get('pending_events_done')),
    eventsTotal: optionalLongOf(row.get('pending_events_total')),
    updatedMs: longOf(row.get('pending_updated_ms')),
  };
}

/** The port's job: identity and state from the layout, progress from the job's row. */
export function composeJob(entry: JobEntry, progress: JobProgress): ReprocessJob {
  return {
    id: entry.id, generation: entry.generation, merchantId: entry.merchantId, fromMs: entry.fromMs, toMs: entry.toMs,
    logicVersion: entry.logicVersion, state: entry.state,
    doneThroughMs: progress.doneThroughMs, eventsDone: progress.eventsDone, eventsTotal: progress.eventsTotal,
    createdMs: entry.createdMs, updatedMs: entry.endedMs ?? progress.updatedMs, error: entry.error,
  };
}
