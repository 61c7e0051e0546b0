// Admin API: merchants and reprocessing, behind TALLY_ADMIN_TOKEN. Reprocessing jobs run in this
// process in the background; their state lives in the rollup store, so any instance can report it
// and a restarted one resumes unfinished jobs (see resumeReprocessJobs).
import type { FastifyInstance } from 'fastify';
import { TallyError } from '../core/errors.ts';
import type { ReprocessJob } from '../core/ports/rollup-store.ts';
import { checkAdminToken } from '../http/auth.ts';
import type { Services } from '../app/services.ts';
import { createMerchant, merchantView } from './merchants.ts';
import { runReprocess, startReprocess, type ReprocessDependencies } from '../analytics/reprocess.ts';
import { randomUUID } from 'node:crypto';

const merchantBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    allowed_origins: { type: 'array', maxItems: 50, items: { type: 'string', maxLength: 300 } },
  },
} as const;

const reprocessBody = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to'],
  properties: {
    from: { type: 'string', maxLength: 40 },
    to: { type: 'string', maxLength: 40 },
    merchant_id: { type: 'string', maxLength: 64 },
  },
} as const;

export function reprocessDependencies(services: Services): ReprocessDependencies {
  return {
    events: services.events, rollups: services.rollups, merchants: services.merchants,
    rules: services.rules, now: services.now, newId: () => `rp_${randomUUID()}`,
  };
}

export function jobView(job: ReprocessJob): Record<string, unknown> {
  const span = job.toMs - job.fromMs;
  const progress = span > 0 ? Math.min(1, (job.doneThroughMs - job.fromMs) / span) : 1;
  const elapsedMs = job.updatedMs - job.createdMs;
  const etaMs = progress > 0 && progress < 1 ? Math.round((elapsedMs / progress) * (1 - progress)) : null;
  return {
    id: job.id, state: job.state, merchant_id: job.merchantId === '*' ? null : job.merchantId,
    from: new Date(job.fromMs).toISOString(), to: new Date(job.toMs).toISOString(),
    logic_version: job.logicVersion, generation: job.generation,
    progress: Math.round(progress * 1000) / 1000, events_done: job.eventsDone, eta_ms: etaMs,
    done_through: new Date(job.doneThroughMs).toISOString(), error: job.error,
    created_at: new Date(job.createdMs).toISOString(), updated_at: new Date(job.updatedMs).toISOString(),
  };
}

function parseTime(value: string, field: string): number {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) throw new TallyError('reprocess_range_invalid', `${field} must be an RFC 3339 date or time`);
  return ms;
}

/** Runs a job in the background of this process, logging (not throwing) its failure. */
export function runInBackground(services: Services, jobId: string): void {
  runReprocess(reprocessDependencies(services), jobId).catch((error: unknown) => {
    services.logger.error({ err: error, jobId }, 'reprocessing job failed');
  });
}

export async function resumeReprocessJobs(services: Services): Promise<void> {
  for (const job of await services.rollups.reprocessJobs()) {
    if (job.state === 'building') runInBackground(services, job.id);
  }
}

export async function adminRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const adminTokenHash = services.adminTokenHash;
  app.addHook('onRequest', async (request) => {
    if (!adminTokenHash) throw new TallyError('unauthorized', 'the admin API is disabled: set TALLY_ADMIN_TOKEN');
    checkAdminToken(request, adminTokenHash);
  });

  app.post<{ Body: { name: string; currency?: string; allowed_origins?: string[] } }>(
    '/v1/admin/merchants', { schema: { body: merchantBody } },
    async (request, reply) => {
      const input = { name: request.body.name, currency: request.body.currency, allowedOrigins: request.body.allowed_origins };
      const created = await createMerchant(services.merchants, input, services.now());
      return reply.code(201).send({ ...merchantView(created.merchant), write_key: created.writeKey, secret_key: created.secretKey });
    },
  );

  app.get('/v1/admin/merchants', async () => ({ merchants: (await services.merchants.list()).map(merchantView) }));

  app.post<{ Body: { from: string; to: string; merchant_id?: string } }>(
    '/v1/admin/reprocess', { schema: { body: reprocessBody } },
    async (request, reply) => {
      const job = await startReprocess(reprocessDependencies(services), {
        fromMs: parseTime(request.body.from, 'from'), toMs: parseTime(request.body.to, 'to'), merchantId: request.body.merchant_id,
      });
      runInBackground(services, job.id);
      return reply.code(202).send(jobView(job));
    },
  );

  app.get<{ Params: { job: string } }>('/v1/admin/reprocess/:job', async (request) => {
    const job = await services.rollups.reprocessJob(request.params.job);
    if (!job) throw new TallyError('reprocess_job_not_found');
    return jobView(job);
  });
}
