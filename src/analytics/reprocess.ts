// Reprocessing history: rebuild the rollups of a range from the raw event store, with the current
// processing logic, into a new generation; then switch reads to it in one atomic step. Until the
// switch, queries read the old generation. Each UTC day is one atomic step that records progress,
// so a crash resumes at the first unfinished day. Live records past the job's boundary are added
// to the new generation by the processor (see targetGenerations), the rest come from here.
import type { EventStore } from '../core/ports/event-store.ts';
import type { MerchantStore } from '../core/ports/merchant-store.ts';
import type { ReprocessJob, RollupStore } from '../core/ports/rollup-store.ts';
import type { AnalyticsRules } from '../core/analytics/rules.ts';
import { CellBuilder } from '../core/analytics/rollup.ts';
import { TallyError } from '../core/errors.ts';
import { limits, time } from '../core/limits.ts';
import { analyticsStream } from './processor.ts';

export interface ReprocessDependencies {
  readonly events: EventStore;
  readonly rollups: RollupStore;
  readonly merchants: MerchantStore;
  readonly rules: AnalyticsRules;
  readonly now: () => number;
  readonly newId: () => string;
}

export interface ReprocessRequest {
  readonly fromMs: number;
  readonly toMs: number;
  /** '*' or omitted: every merchant. */
  readonly merchantId?: string;
}

/** Ranges widen to whole UTC days, so every minute, hour and day cell lies in one generation. */
export function alignToDays(fromMs: number, toMs: number): { fromMs: number; toMs: number } {
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || fromMs >= toMs) {
    throw new TallyError('reprocess_range_invalid', 'from must be before to');
  }
  const aligned = {
    fromMs: Math.floor(fromMs / time.dayMs) * time.dayMs,
    toMs: Math.ceil(toMs / time.dayMs) * time.dayMs,
  };
  if (aligned.toMs - aligned.fromMs > limits.reprocessRangeMsMax) {
    throw new TallyError('reprocess_range_invalid', 'the range is longer than reprocessing allows (5 years)');
  }
  return aligned;
}

export async function startReprocess(deps: ReprocessDependencies, request: ReprocessRequest): Promise<ReprocessJob> {
  const { fromMs, toMs } = alignToDays(request.fromMs, request.toMs);
  const merchantId = request.merchantId ?? '*';
  if (merchantId !== '*' && !(await deps.merchants.get(merchantId))) {
    throw new TallyError('not_found', `no merchant ${merchantId}`);
  }
  return deps.rollups.startReprocess({
    id: deps.newId(), stream: analyticsStream, merchantId, fromMs, toMs,
    logicVersion: deps.rules.logicVersion, nowMs: deps.now(),
  });
}

export type ProgressListener = (job: ReprocessJob) => void;

/** Runs (or resumes) a job to its switch. Safe to call again after a crash. */
export async function runReprocess(
  deps: ReprocessDependencies, jobId: string, onProgress?: ProgressListener, signal?: AbortSignal,
): Promise<ReprocessJob> {
  let job = await deps.rollups.reprocessJob(jobId);
  if (!job) throw new TallyError('reprocess_job_not_found');
  if (job.state !== 'building') return job;
  try {
    const merchantIds = job.merchantId === '*' ? (await deps.merchants.list()).map((m) => m.id) : [job.merchantId];
    const currencies = new Map((await deps.merchants.list()).map((m) => [m.id, m.currency]));
    const boundary = (await deps.rollups.layout()).building.find((b) => b.generation === job!.generation)?.boundary ?? {};
    let eventsDone = job.eventsDone;
    for (let dayMs = job.doneThroughMs; dayMs < job.toMs; dayMs += time.dayMs) {
      if (signal?.aborted) return job;
      const builder = new CellBuilder((id) => currencies.get(id) ?? 'USD');
      for (const merchantId of merchantIds) {
        eventsDone += await rebuildDay(deps, builder, merchantId, dayMs, boundary, job.generation);
      }
      await deps.rollups.writeReprocessStep({
        jobId, cells: builder.cells(), doneThroughMs: dayMs + time.dayMs, eventsDone, eventsTotal: job.eventsTotal, nowMs: deps.now(),
      });
      job = (await deps.rollups.reprocessJob(jobId))!;
      onProgress?.(job);
    }
    return await deps.rollups.finishReprocess(jobId, deps.now());
  } catch (error) {
    await deps.rollups.failReprocess(jobId, error instanceof Error ? error.message : String(error), deps.now());
    throw error;
  }
}

async function rebuildDay(
  deps: ReprocessDependencies, builder: CellBuilder, merchantId: string, dayMs: number,
  boundary: Readonly<Record<number, number>>, generation: number,
): Promise<number> {
  let after: string | null = null;
  let read = 0;
  do {
    const page = await deps.events.scan({ merchantId, fromMs: dayMs, toMs: dayMs + time.dayMs, limit: limits.reprocessStepEventsMax, after });
    for (const { event, source } of page.events) {
      read++;
      // Past the boundary the live processor writes this generation itself.
      if (source.offset > (boundary[source.partition] ?? -1)) continue;
      if (!deps.rules.isExcluded(event)) builder.add(event, generation);
    }
    after = page.next;
  } while (after !== null);
  return read;
}
