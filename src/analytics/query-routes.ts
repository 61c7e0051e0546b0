// POST /v1/query: a merchant's secret key reads its own metrics. The body is validated by the
// query engine's parser (typed error codes), not by a route schema, so every mistake gets the
// precise code (unknown_metric, invalid_date_range, …) rather than a generic schema error.
import type { FastifyInstance } from 'fastify';
import type { Services } from '../app/services.ts';
import { KeyResolver } from '../http/auth.ts';
import { RateLimiter } from '../http/rate-limit.ts';
import { runCachedQuery } from './query/index.ts';

/** Query bodies are small; a large one is a mistake or an attack. */
const queryBodyBytesMax = 64 * 1024;

export async function queryRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const keys = new KeyResolver(services.merchants);
  const limiter = new RateLimiter(services.config.rateLimitPerSecond, services.now);
  app.post('/v1/query', { bodyLimit: queryBodyBytesMax }, async (request) => {
    const merchant = await keys.resolve(request, 'secret');
    limiter.take(`secret:${merchant.id}`);
    const cacheControl = request.headers['cache-control'];
    return runCachedQuery(request.body, {
      merchantId: merchant.id, merchantCurrency: merchant.currency,
      rollups: services.rollups, events: services.events, rules: services.rules,
      scanEventsMax: services.config.queryScanEventsMax,
    }, services.now(), { cache: services.queryCache, bypass: typeof cacheControl === 'string' && /\bno-cache\b/i.test(cacheControl) });
  });
}
