// The load generator's side: autocannon runs over prepared bodies, the query calls the scenarios
// check results with, and the waits for "everything acknowledged is visible in /v1/query".
import autocannon, { type Result } from 'autocannon';
import { time } from '../src/core/limits.ts';
import type { BenchServer } from './server.ts';

/** Ceiling on any single request in a run: a stuck request is an error, not a long sample. */
const requestTimeoutSeconds = 30;
const visiblePollMs = 50;

export interface CannonOptions {
  readonly connections: number;
  readonly duration?: number;
  readonly amount?: number;
  readonly maxConnectionRequests?: number;
}

/**
 * POSTs the bodies round-robin across all connections with the merchant's write key. One shared
 * rotation (not a list per connection): autocannon pre-builds a per-connection list up front,
 * which at 1,000 connections would busy the load generator for seconds inside the measurement.
 */
export async function postEvents(server: BenchServer, bodies: readonly string[], options: CannonOptions): Promise<Result> {
  const encoded = bodies.map((body) => Buffer.from(body));
  let next = 0;
  return autocannon({
    url: server.url,
    timeout: requestTimeoutSeconds,
    ...options,
    requests: [{
      method: 'POST', path: '/v1/events',
      headers: { authorization: `Bearer ${server.keys.writeKey}`, 'content-type': 'application/json' },
      setupRequest: (request) => ({ ...request, body: encoded[next++ % encoded.length]! }),
    }],
  });
}

/** Sent on queries that must be computed, not answered from Tally's query-result cache. */
export const noCache: Readonly<Record<string, string>> = { 'cache-control': 'no-cache' };

/** POSTs one query body over and over with the merchant's secret key. */
export async function postQueries(server: BenchServer, query: object, options: CannonOptions, headers: Readonly<Record<string, string>> = {}): Promise<Result> {
  return autocannon({
    url: `${server.url}/v1/query`,
    method: 'POST',
    timeout: requestTimeoutSeconds,
    headers: { authorization: `Bearer ${server.keys.secretKey}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(query),
    ...options,
  });
}

/** Requests answered with anything but 2xx, plus socket errors and time-outs. */
export function failures(result: Result): number {
  return result.non2xx + result.errors + result.timeouts;
}

export function failureText(result: Result): string {
  const codes = Object.entries(result.statusCodeStats).filter(([code]) => !code.startsWith('2')).map(([code, stats]) => `${code}×${stats.count}`);
  return [...codes, result.errors ? `errors×${result.errors}` : '', result.timeouts ? `timeouts×${result.timeouts}` : ''].filter(Boolean).join(' ');
}

export interface QueryAnswer {
  readonly results: { dimensions: string[]; metrics: number[] }[];
  readonly meta: { took_ms: number; total_rows: number };
}

export async function query(server: BenchServer, body: object, headers: Readonly<Record<string, string>> = {}): Promise<QueryAnswer> {
  const response = await fetch(`${server.url}/v1/query`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.keys.secretKey}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`query failed: ${response.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as QueryAnswer;
}

export async function sendEvents(server: BenchServer, body: string): Promise<void> {
  const response = await fetch(`${server.url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.keys.writeKey}`, 'content-type': 'application/json' },
    body,
  });
  const text = await response.text();
  if (response.status !== 202) throw new Error(`ingest failed: ${response.status} ${text.slice(0, 500)}`);
}

/** Whole UTC days around now: answered from day cells alone, and safe across midnight. */
export function daysAroundNow(nowMs: number): [string, string] {
  const todayMs = Math.floor(nowMs / time.dayMs) * time.dayMs;
  return [new Date(todayMs - time.dayMs).toISOString(), new Date(todayMs + 2 * time.dayMs).toISOString()];
}

/** Events of the merchant visible in /v1/query around now (live-stamped events land there). */
export async function visibleLiveEvents(server: BenchServer): Promise<number> {
  const answer = await query(server, { metrics: ['events'], date_range: daysAroundNow(Date.now()) });
  return answer.results[0]?.metrics[0] ?? 0;
}

/** Waits until `expected` live events are visible: when (performance.now ms) and how many (fewer: timed out). */
export async function waitVisible(server: BenchServer, expected: number, timeoutMs: number): Promise<{ atMs: number; seen: number }> {
  const deadline = performance.now() + timeoutMs;
  let seen = 0;
  for (;;) {
    seen = await visibleLiveEvents(server);
    const atMs = performance.now();
    if (seen >= expected || atMs > deadline) return { atMs, seen };
    await new Promise((resolve) => setTimeout(resolve, visiblePollMs));
  }
}
