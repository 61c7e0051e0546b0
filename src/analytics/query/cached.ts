// Query results cached by (merchant, logic version, data version, the parsed query): an answer is
// reused only while no batch has been applied and no reprocessing has switched since — never
// stale, just recomputed after each change. A dashboard polling the same query pays once per
// applied batch instead of once per request.
import { createHash } from 'node:crypto';
import type { Cache } from '../../core/ports/cache.ts';
import { executeQuery, type QueryContext, type QueryResponse } from './execute.ts';
import { parseQuery } from './parse.ts';

export interface CachedQueryOptions {
  readonly cache: Cache | null;
  /** Compute afresh (the client sent Cache-Control: no-cache); the result still refreshes the cache. */
  readonly bypass: boolean;
}

export async function runCachedQuery(body: unknown, context: QueryContext, nowMs: number, options: CachedQueryOptions): Promise<QueryResponse> {
  const clockMs = context.clockMs ?? performance.now.bind(performance);
  const startedMs = clockMs();
  // Parsing resolves relative ranges against now: "30d" keeps one key all day, "24h" none.
  const query = parseQuery(body, nowMs);
  if (options.cache === null) return executeQuery(query, context, startedMs);
  const fingerprint = createHash('sha256').update(JSON.stringify(query)).digest('base64url');
  const key = `query:${context.merchantId}:${context.rules.logicVersion}:${await context.rollups.dataVersion()}:${fingerprint}`;
  if (!options.bypass) {
    const hit = await options.cache.get(key);
    if (hit !== null) {
      const cached = JSON.parse(hit) as QueryResponse;
      return { results: cached.results, meta: { ...cached.meta, took_ms: Math.round((clockMs() - startedMs) * 100) / 100 } };
    }
  }
  const response = await executeQuery(query, context, startedMs);
  await options.cache.set(key, JSON.stringify(response));
  return response;
}
