// Builds the HTTP server of one process: health, readiness and metrics always; the collector,
// query (with payments) and admin routes per role. Tests call buildApp() and use app.inject() with no open port.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Role, Services } from '../app/services.ts';
import { installErrorHandling } from './errors.ts';
import { adminRoutes } from '../admin/routes.ts';
import { collectorRoutes } from '../collector/routes.ts';
import { queryRoutes } from '../analytics/query-routes.ts';
import { paymentsRoutes } from '../payments/routes.ts';

export interface AppOptions {
  readonly services: Services;
  readonly roles: readonly Role[];
}

/** Slow clients must not hold sockets forever; bounded by named constants. */
const requestTimeoutMs = 30_000;
const keepAliveTimeoutMs = 65_000;

export async function buildApp({ services, roles }: AppOptions): Promise<FastifyInstance> {
  const loggerInstance: FastifyBaseLogger = services.logger;
  const app = Fastify({
    loggerInstance,
    // Per-request log lines would cost more than the requests at ingest rates; metrics count them.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: services.config.bodyBytesMax,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    trustProxy: services.config.trustProxy,
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  installErrorHandling(app);
  instrument(app, services);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const components: [string, { ping(): Promise<void> }][] = [
      ['log', services.log], ['events', services.events], ['rollups', services.rollups], ['merchants', services.merchants],
      ['ledger', services.ledger],
    ];
    const checks = await Promise.allSettled(components.map(([, component]) => component.ping()));
    const failed = checks.flatMap((check, index) => (check.status === 'rejected' ? [components[index]![0]] : []));
    if (failed.length > 0) return reply.code(503).send({ status: 'unavailable', failing: failed });
    return { status: 'ready' };
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await services.metrics.exposition();
    return reply.type(services.metrics.registry.contentType).send(body);
  });

  await app.register(async (scope) => adminRoutes(scope, services));
  if (roles.includes('collector')) await app.register(async (scope) => collectorRoutes(scope, services));
  if (roles.includes('query')) {
    // The secret-key APIs: queries and payments share the query role's servers.
    await app.register(async (scope) => queryRoutes(scope, services));
    await app.register(async (scope) => paymentsRoutes(scope, services));
  }
  return app;
}

function instrument(app: FastifyInstance, services: Services): void {
  const { metrics } = services;
  const started = new WeakMap<object, bigint>();
  app.addHook('onRequest', async (request, reply) => {
    started.set(request, process.hrtime.bigint());
    metrics.httpInFlight.inc();
    // 'close' fires once whether the response finished or the client went away first; onResponse
    // runs only for the former, so a hung-up request would stay "in flight" for ever.
    reply.raw.once('close', () => metrics.httpInFlight.dec());
  });
  app.addHook('onResponse', async (request, reply) => {
    const begin = started.get(request);
    const labels = { route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    if (begin !== undefined) metrics.httpDuration.observe(labels, Number(process.hrtime.bigint() - begin) / 1e9);
  });
}
