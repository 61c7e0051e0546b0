// Helpers of the distributed end-to-end tests (test/e2e/distributed.test.ts): `tally migrate` as a
// child, the test's own view of the installation's Kafka log and Cassandra raw event store (to see
// per-partition progress and every stored id without going through Tally's HTTP API), senders that
// resend until acknowledged and record every attempt, and the ground truth those tests compare with.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { loadConfig, cassandraReplication, type Config } from '../../src/config/config.ts';
import { KafkaEventLog } from '../../src/adapters/kafka/event-log.ts';
import { NamespacedEventLog } from '../../src/adapters/kafka/namespace.ts';
import { CassandraSession } from '../../src/adapters/cassandra/session.ts';
import { CassandraEventStore } from '../../src/adapters/cassandra/event-store.ts';
import { analyticsGroup, eventsTopic } from '../../src/analytics/processor.ts';
import type { EventLog } from '../../src/core/ports/event-log.ts';
import { readMetric, sleep, type TallyChild } from './processes.ts';

export const dayMs = 86_400_000;
const mainPath = resolve(import.meta.dirname, '../../src/cli/main.ts');
const repositoryRoot = resolve(import.meta.dirname, '../..');
/** `tally migrate` on a fresh keyspace creates a dozen tables: seconds, not minutes. */
const migrateTimeoutMs = 90_000;

/** DISTRIBUTED_TEST_SEED replays a failing run's stream and kill moments (not the OS scheduling). */
export function chooseSeed(t: TestContext): number {
  const seed = process.env.DISTRIBUTED_TEST_SEED ? Number(process.env.DISTRIBUTED_TEST_SEED) : Date.now() % 2 ** 31;
  t.diagnostic(`seed ${seed} (rerun with DISTRIBUTED_TEST_SEED=${seed})`);
  return seed;
}

/** The installation's Config, as the children read it from the same settings. */
export function installationConfig(env: Readonly<Record<string, string>>): Config {
  return loadConfig({ TALLY_LOG_LEVEL: 'silent', ...env });
}

/** Runs `tally migrate` as an operator would; resolves with its output, rejects (with it) on a non-zero exit. */
export async function runMigrate(env: Readonly<Record<string, string>>): Promise<string> {
  // The parent's TALLY_* settings must not leak into the child: it migrates exactly `env`.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TALLY_')));
  const child = spawn(process.execPath, [mainPath, 'migrate'], { cwd: repositoryRoot, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), migrateTimeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolveExit) => child.once('exit', (...exit) => resolveExit(exit)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`tally migrate exited with code ${code} (signal ${signal}):\n${output}`);
  return output;
}

/** The installation's Kafka log as its roles see it (same namespace); the test reads offsets through it. */
export function openInstallationLog(config: Config): EventLog {
  return NamespacedEventLog.wrap(KafkaEventLog.connect({
    brokers: [...(config.kafkaBrokers ?? [])],
    clientId: 'tally-e2e-observer',
    replicationFactor: config.kafkaReplicationFactor,
    minInsyncReplicas: config.kafkaMinInsyncReplicas,
  }), config.kafkaNamespace);
}

export interface PartitionProgress {
  /** Next offset to be written, per partition. */
  readonly ends: Map<number, number>;
  /** The analytics group's committed next offset, per partition (0 when nothing is committed). */
  readonly committed: Map<number, number>;
}

export async function partitionProgress(log: EventLog): Promise<PartitionProgress> {
  const [ends, committed] = await Promise.all([log.endOffsets(eventsTopic), log.committedOffsets(analyticsGroup, eventsTopic)]);
  return { ends, committed: new Map([...ends.keys()].map((partition) => [partition, committed.get(partition) ?? 0])) };
}

export function lagOf(progress: PartitionProgress): number {
  let lag = 0;
  for (const [partition, end] of progress.ends) lag += Math.max(0, end - progress.committed.get(partition)!);
  return lag;
}

/** How much of each watched processor's output a catch-up failure shows. */
const outputTailChars = 6_000;

/**
 * Waits until the analytics group has committed every appended record, read from Kafka itself, so it
 * holds whichever processors did the work. Fails at once when one of `watched` exits, and shows the
 * processors' output when time runs out.
 */
export async function waitCaughtUp(log: EventLog, timeoutMs: number, watched: readonly TallyChild[]): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const dead = watched.find((child) => !child.running());
    if (dead) throw new Error(`waiting for the processors to catch up: tally ${dead.role} (pid ${dead.pid}) exited\n--- its output ---\n${dead.output()}`);
    const progress = await partitionProgress(log).catch(() => null);
    if (progress !== null && lagOf(progress) === 0) return;
    if (performance.now() > deadline) {
      const state = progress === null ? 'Kafka did not answer' : `lag ${lagOf(progress)}: ends ${JSON.stringify([...progress.ends])}, committed ${JSON.stringify([...progress.committed])}`;
      const outputs = watched.filter((child) => child.role === 'processor').map((child) => `--- tally processor (pid ${child.pid}) ---\n${child.output().slice(-outputTailChars)}`);
      throw new Error(`the processors did not catch up within ${timeoutMs} ms (${state})\n${outputs.join('\n')}`);
    }
    await sleep(200);
  }
}

/** Every event id the installation's raw event store holds for the merchant in [fromMs, toMs), read from Cassandra directly. */
export async function storedEventIds(config: Config, merchantId: string, fromMs: number, toMs: number): Promise<Set<string>> {
  const session = await CassandraSession.connect({
    contactPoints: config.cassandraContactPoints ?? [], localDataCenter: config.cassandraDc,
    keyspace: config.cassandraKeyspace, replication: cassandraReplication(config),
  });
  const ids = new Set<string>();
  try {
    const store = await CassandraEventStore.open({ session });
    let cursor: string | null = null;
    do {
      const page = await store.scan({ merchantId, fromMs, toMs, limit: 5_000, after: cursor });
      for (const { event } of page.events) ids.add(event.id);
      cursor = page.next;
    } while (cursor !== null);
    await store.close();
  } finally {
    await session.close();
  }
  return ids;
}

export { createMerchant, makeEvent, type MerchantKeys, type SentEvent } from './traffic.ts';
import type { SentEvent } from './traffic.ts';

export interface Attempt {
  readonly sentMs: number;
  readonly answeredMs: number;
  readonly status: number | null;
  /** The error code of a non-2xx answer, or the fetch failure. */
  readonly code: string | null;
  readonly body: string;
}

/** A request that has no answer after this long counts as unanswered (the tests bound answers well below it). */
const requestTimeoutMs = 30_000;

export async function postEvents(url: string, writeKey: string, events: readonly SentEvent[]): Promise<Attempt> {
  const sentMs = performance.now();
  try {
    const response = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${writeKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(events),
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    const body = await response.text();
    return { sentMs, answeredMs: performance.now(), status: response.status, code: response.status === 202 ? null : errorCode(body), body };
  } catch (error) {
    return { sentMs, answeredMs: performance.now(), status: null, code: String(error), body: '' };
  }
}

function errorCode(body: string): string | null {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? null;
  } catch {
    return null;
  }
}

export interface SendOptions {
  /** Stop resending after this long (ms) and fail. */
  readonly giveUpAfterMs: number;
  /** Sees every attempt, the 503s and unanswered ones included. */
  readonly observe?: (attempt: Attempt) => void;
  /** Aborted when the test is torn down: a failed test leaves no sender resending in the background. */
  readonly signal?: AbortSignal;
}

/**
 * Sends a batch until it is answered 202, as a well-behaved client does: a 503 or no answer means
 * "not acknowledged, resend" (the resend has the same ids, which count once). Any other answer is a
 * bug and fails at once. Resolves with the acknowledging attempt.
 */
export async function sendUntilAccepted(url: string, writeKey: string, events: readonly SentEvent[], options: SendOptions): Promise<Attempt> {
  const startedMs = performance.now();
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const answer = await postEvents(url, writeKey, events);
    options.observe?.(answer);
    if (answer.status === 202) {
      assert.deepEqual(JSON.parse(answer.body), { accepted: events.length, rejected: [] });
      return answer;
    }
    if (answer.status !== null && answer.status !== 503) assert.fail(`POST /v1/events answered ${answer.status}: ${answer.body}`);
    if (performance.now() - startedMs > options.giveUpAfterMs) {
      throw new Error(`a batch was not acknowledged within ${options.giveUpAfterMs} ms; last answer ${answer.status}: ${answer.code} ${answer.body}`);
    }
    await sleep(Math.min(1_000, 100 * attempt));
  }
}

export interface QueryAnswer {
  readonly status: number;
  readonly body: string;
}

export async function queryDaysRaw(url: string, secretKey: string, fromMs: number, toMs: number): Promise<QueryAnswer> {
  const response = await fetch(`${url}/v1/query`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ metrics: ['events', 'revenue'], date_range: [new Date(fromMs).toISOString(), new Date(toMs).toISOString()], dimensions: ['time:day'] }),
    signal: AbortSignal.timeout(requestTimeoutMs),
  });
  return { status: response.status, body: await response.text() };
}

/** Per UTC day (YYYY-MM-DD) of [fromMs, toMs): [events, revenue], as /v1/query answers them. */
export type DayTotals = Record<string, [number, number]>;

export async function queryDays(url: string, secretKey: string, fromMs: number, toMs: number): Promise<DayTotals> {
  const answer = await queryDaysRaw(url, secretKey, fromMs, toMs);
  assert.equal(answer.status, 200, answer.body);
  const days: DayTotals = {};
  for (const row of (JSON.parse(answer.body) as { results: { dimensions: string[]; metrics: number[] }[] }).results) {
    days[new Date(Date.parse(row.dimensions[0]!)).toISOString().slice(0, 10)] = [row.metrics[0]!, row.metrics[1]!];
  }
  return days;
}

/** What Tally must report: each (merchant, event id) counts once, whichever copy or resend arrived. */
export class GroundTruth {
  readonly #seen = new Set<string>();
  readonly #days = new Map<string, Map<string, [number, number]>>();

  /** Records an acknowledged batch of the merchant. */
  add(merchantId: string, events: readonly SentEvent[]): void {
    let days = this.#days.get(merchantId);
    if (!days) this.#days.set(merchantId, (days = new Map()));
    for (const event of events) {
      const key = `${merchantId}\u0000${event.id}`;
      if (this.#seen.has(key)) continue;
      this.#seen.add(key);
      const day = event.timestamp.slice(0, 10);
      const totals = days.get(day) ?? [0, 0];
      days.set(day, [totals[0] + 1, totals[1] + (event.revenue?.amount ?? 0)]);
    }
  }

  /** Distinct events recorded, over all merchants. */
  get distinct(): number {
    return this.#seen.size;
  }

  /** Every UTC day of [fromMs, toMs), empty days as [0, 0] (the query answers those too). */
  days(merchantId: string, fromMs: number, toMs: number): DayTotals {
    const days: DayTotals = {};
    for (let dayStartMs = fromMs; dayStartMs < toMs; dayStartMs += dayMs) {
      const day = new Date(dayStartMs).toISOString().slice(0, 10);
      days[day] = this.#days.get(merchantId)?.get(day) ?? [0, 0];
    }
    return days;
  }
}

/** [fromMs, toMs) of whole UTC days around `nowMs`: the `daysBack` days before today, and today. */
export function dayRange(nowMs: number, daysBack: number): { fromMs: number; toMs: number } {
  const todayMs = Math.floor(nowMs / dayMs) * dayMs;
  return { fromMs: todayMs - daysBack * dayMs, toMs: todayMs + dayMs };
}

/**
 * What a test built, torn down after it in reverse order whether it passed or not: children before
 * the engines they use, every step even when an earlier one failed (the first failure is rethrown).
 */
export class Teardown {
  readonly #steps: { readonly what: string; readonly run: () => Promise<unknown> }[] = [];

  constructor(t: TestContext) {
    t.after(() => this.#runAll());
  }

  add(what: string, run: () => Promise<unknown>): void {
    this.#steps.push({ what, run });
  }

  async #runAll(): Promise<void> {
    const failures: unknown[] = [];
    for (const step of this.#steps.reverse()) {
      await step.run().catch((error: unknown) => failures.push(new Error(`teardown: ${step.what} failed`, { cause: error })));
    }
    if (failures.length > 0) throw failures[0];
  }
}

/** One sample of a processor's counter; a labelled counter is absent until first incremented: 0. */
export async function countedEvents(url: string): Promise<number> {
  return (await readMetric(url, 'tally_analytics_events_processed_total{outcome="counted"}')) ?? 0;
}
