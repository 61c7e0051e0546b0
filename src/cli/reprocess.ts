// `tally reprocess --from --to [--merchant]`: rebuilds rollups from raw events with the current
// processing logic, showing a progress bar and ETA, then switches reads atomically. Interrupted,
// it leaves the old version serving; running it again resumes the unfinished job.
import type { Config } from '../config/config.ts';
import type { ReprocessJob } from '../core/ports/rollup-store.ts';
import { TallyError } from '../core/errors.ts';
import { runReprocess, startReprocess } from '../analytics/reprocess.ts';
import { jobView, reprocessDependencies } from '../admin/routes.ts';
import { openDeployment } from './compose.ts';

const barWidth = 30;

export async function reprocessCommand(config: Config, args: { from?: string; to?: string; merchant?: string }): Promise<number> {
  if (!args.from || !args.to) {
    process.stderr.write('usage: tally reprocess --from <time> --to <time> [--merchant <id>]\n');
    return 2;
  }
  const fromMs = Date.parse(args.from);
  const toMs = Date.parse(args.to);
  if (Number.isNaN(fromMs) || Number.isNaN(toMs)) throw new TallyError('reprocess_range_invalid', '--from and --to must be RFC 3339 dates or times');
  const deployment = await openDeployment({ ...config, logLevel: 'warn' });
  try {
    const deps = reprocessDependencies(deployment.services);
    const unfinished = (await deps.rollups.reprocessJobs()).find((job) =>
      job.state === 'building' && job.merchantId === (args.merchant ?? '*') && job.fromMs <= fromMs && job.toMs >= toMs);
    const job = unfinished ?? (await startReprocess(deps, { fromMs, toMs, merchantId: args.merchant }));
    if (unfinished) process.stderr.write(`resuming job ${job.id}\n`);
    const startedMs = Date.now();
    const done = await runReprocess(deps, job.id, (progress) => drawProgress(progress, startedMs));
    process.stderr.write('\n');
    process.stdout.write(`${JSON.stringify(jobView(done), null, 2)}\n`);
    return done.state === 'done' ? 0 : 1;
  } finally {
    await deployment.close();
  }
}

function drawProgress(job: ReprocessJob, startedMs: number): void {
  const fraction = Math.min(1, (job.doneThroughMs - job.fromMs) / Math.max(1, job.toMs - job.fromMs));
  const filled = Math.round(fraction * barWidth);
  const elapsedS = (Date.now() - startedMs) / 1000;
  const etaS = fraction > 0 ? Math.round((elapsedS / fraction) * (1 - fraction)) : null;
  const rate = elapsedS > 0 ? Math.round(job.eventsDone / elapsedS) : 0;
  const line = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${(fraction * 100).toFixed(1)}%  ${job.eventsDone} events  ${rate}/s  ETA ${etaS === null ? '?' : `${etaS}s`}`;
  process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`);
}
