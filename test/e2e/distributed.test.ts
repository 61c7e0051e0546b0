// End-to-end tests of the distributed deployment on the real engines: `tally migrate`, then real
// `tally collector | query | processor` children on Kafka, Cassandra and Redis, with a processor
// SIGKILLed and with Kafka or Cassandra stopped while events flow. They prove what the embedded crash
// tests prove, across processes that share nothing but the engines: scaling out splits the work,
// a dead member's partitions are taken over, nothing acknowledged is lost, nothing counts twice,
// and an engine outage is a retryable 503 (never a 202 that cannot be kept, never a 500), from which
// every role recovers by itself. Tests that stop an engine use a private one (test/support/private-
// engines.ts): the shared engines serve other test files at the same moment.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInteger, seededRandom, type Random } from '../../src/adapters/memory/prng.ts';
import { partitionForKey } from '../../src/core/partitioner.ts';
import { enginesMissing } from '../support/engines.ts';
import { startPrivateEngine } from '../support/private-engines.ts';
import { TallyProcesses, readMetric, sleep, type TallyChild } from '../support/processes.ts';
import { distributedTestEnv, dropTestKeyspace } from '../support/tally.ts';
import type { Config } from '../../src/config/config.ts';
import type { EventLog } from '../../src/core/ports/event-log.ts';
import {
  GroundTruth, Teardown, chooseSeed, countedEvents, createMerchant, dayMs, dayRange, installationConfig, lagOf, makeEvent,
  openInstallationLog, partitionProgress, postEvents, queryDays, queryDaysRaw, runMigrate, sendUntilAccepted, storedEventIds, waitCaughtUp,
  type Attempt, type MerchantKeys, type SentEvent,
} from '../support/distributed.ts';

const missing = await enginesMissing('kafka', 'cassandra', 'redis');

/** The ingest rate limit would turn concurrent senders' requests into 429s: not what these tests are about. */
const childEnv = { TALLY_RATE_LIMIT_PER_SECOND: '1000000' };
/** Four or five node children start at once on a 2-core box next to the engines. */
const childStartTimeoutMs = 60_000;
const spreadMs = 3 * dayMs;
/** An outage answer must come while a client still waits for it: no request hangs on a dead engine. */
const outageAnswerMsMax = 15_000;

interface Installation {
  readonly config: Config;
  /** The test's own view of the installation's Kafka log (offsets, lag). */
  readonly log: EventLog;
  readonly processes: TallyProcesses;
  /** The children, in the order of `roles`. */
  readonly children: TallyChild[];
  /** Aborted at teardown: senders stop resending. */
  readonly abandon: AbortSignal;
}

/**
 * A fresh installation on the engines (`env` overrides the test engines' addresses): `tally
 * migrate`, then the children of `roles`; all of it torn down after the test, the keyspace dropped
 * unless its Cassandra is private (disposed of whole).
 */
async function setUpInstallation(
  teardown: Teardown, env: Record<string, string>, roles: readonly ('collector' | 'query' | 'processor')[], options: { readonly dropKeyspace: boolean },
): Promise<Installation> {
  const config = installationConfig(env);
  if (options.dropKeyspace) teardown.add('drop the keyspace', () => dropTestKeyspace(config));
  const migration = await runMigrate(env);
  assert.match(migration, new RegExp(`topic events: ${config.eventsPartitions} partitions`), migration);
  const log = openInstallationLog(config);
  teardown.add('close the observer log', () => log.close());
  const processes = new TallyProcesses({ env });
  teardown.add('stop the children', () => processes.close());
  const children = await Promise.all(roles.map((role) => processes.start(role, { startTimeoutMs: childStartTimeoutMs })));
  const abandon = new AbortController();
  teardown.add('abandon the senders', async () => abandon.abort());
  return { config, log, processes, children, abandon: abandon.signal };
}

/** A batch of fresh events plus resends of earlier ones (same id, same body): every id must count once. */
function nextBatch(random: Random, earlier: SentEvent[], ids: { next: number; prefix: string }, fresh: number, resentMax: number): SentEvent[] {
  const events: SentEvent[] = [];
  for (let index = 0; index < resentMax && earlier.length > 0; index++) events.push(earlier[randomInteger(random, 0, earlier.length)]!);
  const nowMs = Date.now();
  for (let index = 0; index < fresh; index++) {
    const event = makeEvent(random, `${ids.prefix}${ids.next++}`, nowMs, spreadMs);
    earlier.push(event);
    events.push(event);
  }
  return events;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** "+1.2 s" or "-0.3 s" (before the reference moment). */
function signedSeconds(ms: number): string {
  return `${ms < 0 ? '-' : '+'}${seconds(Math.abs(ms))}`;
}

/** An error answer is the catalogued JSON shape and nothing else: no stack trace or driver message leaks. */
function assertCleanError(body: string, code: string): void {
  const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
  assert.equal(parsed.error?.code, code, body);
  assert.deepEqual(Object.keys(parsed), ['error'], body);
  assert.doesNotMatch(body, /\bat .+:\d+:\d+|stack|node_modules|Error:/, body);
}

describe('distributed scale-out: two processors share the partitions; one is SIGKILLed mid-stream', { skip: missing ?? false }, () => {
  const partitions = 4;
  const merchantsMin = 4;
  /** Merchants are created until every partition has one (their ids hash at random): 40 leave a 4e-5 chance of failing. */
  const merchantsMax = 40;
  const uniqueEvents = 12_000;
  const batchNewEvents = 95;
  const batchResentMax = 5;
  const streamMs = 10_000;
  const sendersMax = 8;
  /** The kill comes in this part of the stream, once both processors have counted events. */
  const killWindow = [0.35, 0.6] as const;
  /** Kafka notices the dead member after its session timeout; then the group rebalances within this. */
  const rebalanceMsMax = 20_000;
  const catchUpMsMax = 60_000;

  test('both processors work, the survivor takes over the dead one\'s partitions, and every day\'s events and revenue equal the ground truth', { timeout: 240_000 }, async (t) => {
    const seed = chooseSeed(t);
    const random = seededRandom(seed);
    const startedMs = performance.now();
    // Fixed before the first event: a run that crosses midnight UTC compares the same days on both sides.
    const { fromMs, toMs } = dayRange(Date.now(), 3);
    const teardown = new Teardown(t);
    const { config, log, children, abandon } = await setUpInstallation(teardown, { ...distributedTestEnv(), ...childEnv, TALLY_EVENTS_PARTITIONS: String(partitions) },
      ['collector', 'query', 'processor', 'processor'], { dropKeyspace: true });
    const [collector, query, ...processors] = children;
    const setUpMs = performance.now() - startedMs;

    const merchants: MerchantKeys[] = [];
    const covered = new Set<number>();
    while (merchants.length < merchantsMin || covered.size < partitions) {
      assert.ok(merchants.length < merchantsMax, `${merchantsMax} merchants left a partition without one: ${[...covered]}`);
      const merchant = await createMerchant(collector!.url, `shop-${merchants.length}`);
      merchants.push(merchant);
      covered.add(partitionForKey(merchant.id, partitions));
    }

    const truth = new GroundTruth();
    const earlier: SentEvent[][] = merchants.map(() => []);
    const ids = { next: 0, prefix: 'e' };
    const batches: { merchant: number; events: SentEvent[] }[] = [];
    while (ids.next < uniqueEvents) {
      const merchant = randomInteger(random, 0, merchants.length);
      batches.push({ merchant, events: nextBatch(random, earlier[merchant]!, ids, Math.min(batchNewEvents, uniqueEvents - ids.next), batchResentMax) });
    }
    let notAcknowledged = 0;
    const send = async (merchant: number, events: SentEvent[]): Promise<void> => {
      await sendUntilAccepted(collector!.url, merchants[merchant]!.writeKey, events, {
        giveUpAfterMs: 30_000, signal: abandon, observe: (attempt) => { if (attempt.status !== 202) notAcknowledged++; },
      });
      truth.add(merchants[merchant]!.id, events);
    };

    // The stream, paced over streamMs with at most sendersMax requests in flight.
    const streamStartedMs = performance.now();
    const streaming = (async () => {
      const inFlight = new Set<Promise<void>>();
      for (const [index, batch] of batches.entries()) {
        const dueMs = streamStartedMs + (index * streamMs) / batches.length;
        if (dueMs > performance.now()) await sleep(dueMs - performance.now());
        while (inFlight.size >= sendersMax) await Promise.race(inFlight);
        const sending: Promise<void> = send(batch.merchant, batch.events).finally(() => inFlight.delete(sending));
        inFlight.add(sending);
      }
      await Promise.all(inFlight);
    })();
    // Awaited below; until then a failure must not surface as an unhandled rejection.
    streaming.catch(() => {});

    // Mid-stream: both processors have counted events (so both hold partitions); one dies.
    const killAtMs = streamStartedMs + streamMs * (killWindow[0] + random() * (killWindow[1] - killWindow[0]));
    await sleep(killAtMs - performance.now());
    let countedBeforeKill = await Promise.all(processors.map((processor) => countedEvents(processor.url)));
    for (const deadline = performance.now() + streamMs; countedBeforeKill.some((counted) => counted === 0) && performance.now() < deadline;) {
      await sleep(200);
      countedBeforeKill = await Promise.all(processors.map((processor) => countedEvents(processor.url)));
    }
    assert.ok(countedBeforeKill.every((counted) => counted > 0), `both processors had partitions with events before the kill: counted ${countedBeforeKill}\n` +
      processors.map((processor) => `--- tally processor (pid ${processor.pid}) ---\n${processor.output().slice(-4_000)}`).join('\n'));
    const victimIndex = randomInteger(random, 0, 2);
    const victim = processors[victimIndex]!;
    const survivor = processors[1 - victimIndex]!;
    const exit = await victim.kill('SIGKILL');
    const killedMs = performance.now();
    assert.equal(exit.signal, 'SIGKILL', `the processor was killed, not stopped on its own\n${victim.output()}`);
    const committedAtKill = (await partitionProgress(log)).committed;
    const survivorCountedAtKill = await countedEvents(survivor.url);

    // Each partition's first commit after the kill, by the only member left. The survivor's own
    // partitions move on at once; the dead member's wait for Kafka to expire its session.
    const advancedAfterMs = new Map<number, number>();
    const takeoverMsMax = config.kafkaSessionTimeoutMs + rebalanceMsMax;
    const watching = (async () => {
      while (advancedAfterMs.size < partitions) {
        assert.ok(performance.now() - killedMs < takeoverMsMax, `partitions ${[...committedAtKill.keys()].filter((p) => !advancedAfterMs.has(p))} ` +
          `were not taken over within ${takeoverMsMax} ms of the kill\n--- survivor output ---\n${survivor.output()}`);
        const { committed } = await partitionProgress(log);
        for (const [partition, offset] of committed) {
          if (!advancedAfterMs.has(partition) && offset > committedAtKill.get(partition)!) advancedAfterMs.set(partition, performance.now() - killedMs);
        }
        await sleep(100);
      }
    })();
    watching.catch(() => {});
    await streaming;
    // One more batch per merchant after the stream: every partition gets records after the kill,
    // so each one's progress shows who processes it now.
    await Promise.all(merchants.map((_, merchant) => send(merchant, nextBatch(random, earlier[merchant]!, ids, 10, 2))));
    const streamedMs = performance.now() - streamStartedMs;
    await watching;
    const takeoverMs = Math.max(...advancedAfterMs.values());
    await waitCaughtUp(log, catchUpMsMax, [collector!, query!, survivor]);
    const caughtUpAfterKillMs = performance.now() - killedMs;
    const survivorCounted = await countedEvents(survivor.url);

    const sent = batches.reduce((sum, batch) => sum + batch.events.length, 0);
    const perPartition = [...advancedAfterMs].sort(([a], [b]) => a - b).map(([partition, ms]) => `p${partition} +${seconds(ms)}`).join(', ');
    t.diagnostic(`${merchants.length} merchants over ${partitions} partitions; ${sent} events sent in ${batches.length} batches (${uniqueEvents} distinct in the stream), ` +
      `${notAcknowledged} attempts not acknowledged; set up in ${seconds(setUpMs)}`);
    t.diagnostic(`processors counted ${countedBeforeKill.join(' and ')} events before processor ${victimIndex} was SIGKILLed ${seconds(killedMs - streamStartedMs)} into the stream`);
    t.diagnostic(`first commit after the kill per partition: ${perPartition}; takeover (kill → last partition processed again) ${seconds(takeoverMs)} ` +
      `with a session timeout of ${seconds(config.kafkaSessionTimeoutMs)}`);
    t.diagnostic(`stream sent in ${seconds(streamedMs)}; caught up ${seconds(caughtUpAfterKillMs)} after the kill; the survivor counted ${survivorCountedAtKill} events by the kill, ` +
      `${survivorCounted} by the end; total ${seconds(performance.now() - startedMs)}`);
    assert.ok(survivorCounted > survivorCountedAtKill, 'the survivor processed events after the kill');
    for (const [index, merchant] of merchants.entries()) {
      assert.deepEqual(await queryDays(query!.url, merchant.secretKey, fromMs, toMs), truth.days(merchant.id, fromMs, toMs), `merchant ${index}: [events, revenue] per day`);
    }
  });
});

/** Concurrent senders that resend each batch until it is acknowledged, recording every attempt, until stopped. */
class Senders {
  readonly attempts: Attempt[] = [];
  readonly acknowledged = new Set<string>();
  readonly #running: Promise<void>[] = [];
  #stopped = false;

  constructor(
    url: string,
    merchant: MerchantKeys,
    random: Random,
    truth: GroundTruth,
    options: { readonly senders: number; readonly batchEvents: number; readonly giveUpAfterMs: number; readonly pauseMs: number; readonly prefix: string },
    signal: AbortSignal,
  ) {
    const earlier: SentEvent[] = [];
    for (let sender = 0; sender < options.senders; sender++) {
      const ids = { next: 0, prefix: `${options.prefix}${sender}-` };
      this.#running.push((async () => {
        while (!this.#stopped) {
          const events = nextBatch(random, earlier, ids, options.batchEvents, 2);
          await sendUntilAccepted(url, merchant.writeKey, events, { giveUpAfterMs: options.giveUpAfterMs, signal, observe: (attempt) => this.attempts.push(attempt) });
          truth.add(merchant.id, events);
          for (const event of events) this.acknowledged.add(event.id);
          await sleep(options.pauseMs);
        }
      })());
    }
    // Awaited by stop(); a failure before then must not surface as an unhandled rejection.
    for (const running of this.#running) running.catch(() => {});
  }

  /** Stops making new batches; resolves once every batch in hand is acknowledged. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#running);
  }

  /** Attempts sent at or after `fromMs` and answered by `toMs` (performance.now() ms). */
  within(fromMs: number, toMs: number): Attempt[] {
    return this.attempts.filter((attempt) => attempt.sentMs >= fromMs && attempt.answeredMs <= toMs);
  }
}

/** Answers counted by status and error code, for diagnostics: {"202":12,"503 log_unavailable":3}. */
function tally(answers: readonly { readonly status: number | null; readonly body: string }[]): string {
  const counts = new Map<string, number>();
  for (const answer of answers) {
    const key = answer.status === null ? 'no answer' : answer.status < 300 ? String(answer.status) : `${answer.status} ${errorCodeOf(answer.body)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return JSON.stringify(Object.fromEntries(counts));
}

function errorCodeOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string }; failing?: string[] };
    return parsed.error?.code ?? (parsed.failing ? `failing ${parsed.failing.join('+')}` : '?');
  } catch {
    return '(not JSON)';
  }
}

/** Polls `probe` every `everyMs` until it says true; resolves with the ms it took. */
async function timeUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<number> {
  const startedMs = performance.now();
  for (;;) {
    if (await probe().catch(() => false)) return performance.now() - startedMs;
    if (performance.now() - startedMs > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

async function readiness(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(outageAnswerMsMax) });
  return { status: response.status, body: await response.text() };
}

describe('distributed durability: the processor is SIGKILLed, then Kafka stops and starts, while events flow', { skip: missing ?? false }, () => {
  const outageMs = 6_000;
  const recoveryMsMax = 30_000;
  const catchUpMsMax = 60_000;

  test('the collector answers 503 log_unavailable while Kafka is down, recovers by itself, and every acknowledged event counts exactly once', { timeout: 180_000 }, async (t) => {
    const seed = chooseSeed(t);
    const random = seededRandom(seed);
    const startedMs = performance.now();
    // Fixed before the first event: a run that crosses midnight UTC compares the same days on both sides.
    const { fromMs, toMs } = dayRange(Date.now(), 3);
    const teardown = new Teardown(t);
    const kafka = await startPrivateEngine('kafka');
    teardown.add('dispose of the private Kafka', () => kafka.dispose());
    const { config, log, processes, children, abandon } = await setUpInstallation(
      teardown, { ...distributedTestEnv(), ...childEnv, TALLY_KAFKA_BROKERS: kafka.address, TALLY_EVENTS_PARTITIONS: '2' }, ['collector', 'query', 'processor'], { dropKeyspace: true });
    const [collector, query] = children;
    let processor = children[2]!;
    const merchant = await createMerchant(collector!.url, 'shop');
    const truth = new GroundTruth();
    const senders = new Senders(collector!.url, merchant, random, truth, { senders: 4, batchEvents: 20, giveUpAfterMs: 90_000, pauseMs: 20, prefix: 'k' }, abandon);
    const alive = () => [collector!, query!, processor];

    await sleep(randomInteger(random, 800, 1_500));
    const acknowledgedBeforeOutage = senders.acknowledged.size;

    // Kafka down: every request must be refused promptly, none acknowledged.
    const stopBeganMs = performance.now();
    await kafka.stop();
    const stoppedMs = performance.now();
    const readyDuringOutage: { status: number; body: string }[] = [];
    while (performance.now() - stoppedMs < outageMs) {
      readyDuringOutage.push(await readiness(collector!.url));
      await sleep(500);
    }
    const restartBeganMs = performance.now();
    await kafka.start();
    const kafkaBackMs = performance.now();
    const acceptedAgain = () => senders.attempts.find((attempt) => attempt.status === 202 && attempt.answeredMs > restartBeganMs);
    await timeUntil('a 202 after Kafka came back', async () => acceptedAgain() !== undefined, recoveryMsMax, 50);
    const readyAgainMs = performance.now() + (await timeUntil('/readyz 200 after Kafka came back', async () => (await readiness(collector!.url)).status === 200, recoveryMsMax));

    // Then a processor crash mid-flow (after the outage: a broker restart restarts the dead member's
    // session timeout, which would otherwise be paid twice): its partitions wait for Kafka to expire
    // the session, then the restarted member resumes from the group's commits.
    await sleep(randomInteger(random, 300, 1_000));
    const processorExit = await processor.kill('SIGKILL');
    const killedMs = performance.now();
    assert.equal(processorExit.signal, 'SIGKILL', `the processor lived through the Kafka outage\n${processor.output()}`);
    await sleep(randomInteger(random, 200, 800));
    processor = await processes.start('processor', { startTimeoutMs: childStartTimeoutMs });
    await sleep(1_000);
    await senders.stop();
    await waitCaughtUp(log, catchUpMsMax, alive());
    const caughtUpAfterKillMs = performance.now() - killedMs;

    const duringOutage = senders.within(stoppedMs, restartBeganMs);
    const sentDuringOutage = senders.attempts.filter((attempt) => attempt.sentMs >= stoppedMs && attempt.sentMs <= restartBeganMs);
    const slowest = Math.max(...sentDuringOutage.map((attempt) => attempt.answeredMs - attempt.sentMs));
    const stored = await storedEventIds(config, merchant.id, fromMs, toMs);
    const lost = [...senders.acknowledged].filter((id) => !stored.has(id));
    t.diagnostic(`Kafka stopped in ${seconds(stoppedMs - stopBeganMs)}, down ${seconds(restartBeganMs - stoppedMs)}, restarted in ${seconds(kafkaBackMs - restartBeganMs)}; ` +
      `attempts during the outage: ${tally(duringOutage)}, slowest answer ${seconds(slowest)}; /readyz during it: ${tally(readyDuringOutage)}`);
    t.diagnostic(`recovery, from Kafka answering again: first 202 at ${signedSeconds(acceptedAgain()!.answeredMs - kafkaBackMs)}, /readyz 200 at ${signedSeconds(readyAgainMs - kafkaBackMs)} ` +
      `(the restart itself took ${seconds(kafkaBackMs - restartBeganMs)})`);
    t.diagnostic(`processor SIGKILLed and restarted after the outage: caught up ${seconds(caughtUpAfterKillMs)} after the kill; ` +
      `${senders.acknowledged.size} events acknowledged (${acknowledgedBeforeOutage} before the outage), ${stored.size} stored; all attempts: ${tally(senders.attempts)}; total ${seconds(performance.now() - startedMs)}`);

    assert.ok(duringOutage.length >= 4, `requests were refused during the outage: ${duringOutage.length}`);
    for (const attempt of duringOutage) {
      assert.equal(attempt.status, 503, `no request is acknowledged (or fails otherwise) while Kafka is down: ${attempt.status} ${attempt.body}`);
      assertCleanError(attempt.body, 'log_unavailable');
    }
    assert.ok(slowest <= outageAnswerMsMax, `every request sent during the outage is answered within ${outageAnswerMsMax} ms: the slowest took ${Math.round(slowest)} ms`);
    assert.ok(readyDuringOutage.length > 0 && readyDuringOutage.every((ready) => ready.status === 503 && JSON.parse(ready.body).failing.includes('log')),
      `/readyz reports the log as failing while Kafka is down: ${JSON.stringify(readyDuringOutage)}`);
    assert.ok(!senders.attempts.some((attempt) => attempt.status !== null && attempt.status >= 500 && attempt.status !== 503), 'no 5xx but 503');
    assert.deepEqual(lost, [], `${lost.length} acknowledged events are missing from the raw event store`);
    assert.deepEqual(await queryDays(query!.url, merchant.secretKey, fromMs, toMs), truth.days(merchant.id, fromMs, toMs), '[events, revenue] per day');
  });
});

describe('distributed durability: Cassandra stops and starts while events flow', { skip: missing ?? false }, () => {
  const outageMs = 6_000;
  const recoveryMsMax = 60_000;
  const catchUpMsMax = 60_000;

  test('queries answer 503 store_unavailable, the collector keeps what Kafka holds, the processor waits, and all recover by themselves', { timeout: 240_000 }, async (t) => {
    const seed = chooseSeed(t);
    const random = seededRandom(seed);
    const startedMs = performance.now();
    // Fixed before the first event: a run that crosses midnight UTC compares the same days on both sides.
    const { fromMs, toMs } = dayRange(Date.now(), 3);
    const teardown = new Teardown(t);
    const cassandra = await startPrivateEngine('cassandra');
    teardown.add('dispose of the private Cassandra', () => cassandra.dispose());
    const { config, log, children, abandon } = await setUpInstallation(
      teardown, { ...distributedTestEnv(), ...childEnv, TALLY_CASSANDRA_CONTACT_POINTS: cassandra.address, TALLY_EVENTS_PARTITIONS: '2' }, ['collector', 'query', 'processor'], { dropKeyspace: false });
    const [collector, query, processor] = children;
    const watched = [collector!, query!, processor!];
    const shop = await createMerchant(collector!.url, 'shop');
    // Its keys are first used during the outage: nobody has them cached, so they must be looked up.
    const cold = await createMerchant(collector!.url, 'cold');
    const truth = new GroundTruth();
    const senders = new Senders(collector!.url, shop, random, truth, { senders: 2, batchEvents: 20, giveUpAfterMs: 120_000, pauseMs: 100, prefix: 'c' }, abandon);
    await timeUntil('the processor counting events', async () => (await countedEvents(processor!.url)) > 0, catchUpMsMax);
    // A first query caches the shop's secret key in the query process, as in steady state.
    await queryDays(query!.url, shop.secretKey, fromMs, toMs);
    const setUpMs = performance.now() - startedMs;

    const stopBeganMs = performance.now();
    await cassandra.stop();
    const stoppedMs = performance.now();
    const lagAtStop = lagOf(await partitionProgress(log));
    const queries: { status: number; body: string; ms: number }[] = [];
    const coldWrites: Attempt[] = [];
    const readyDuringOutage: { status: number; body: string }[] = [];
    while (performance.now() - stoppedMs < outageMs) {
      const queryStartedMs = performance.now();
      const answer = await queryDaysRaw(query!.url, shop.secretKey, fromMs, toMs);
      queries.push({ ...answer, ms: performance.now() - queryStartedMs });
      coldWrites.push(await postEvents(collector!.url, cold.writeKey, [makeEvent(random, `cold-outage-${coldWrites.length}`, Date.now(), spreadMs)]));
      readyDuringOutage.push(await readiness(collector!.url));
      await sleep(500);
    }
    const lagAtEndOfOutage = lagOf(await partitionProgress(log));
    const retries = await readMetric(processor!.url, 'tally_processor_retries_total{processor="analytics",transient="true"}');
    const processorUpDuringOutage = processor!.running();
    const restartBeganMs = performance.now();
    await cassandra.start();
    const cassandraBackMs = performance.now();

    const queryAgainMs = await timeUntil('/v1/query 200 after Cassandra came back', async () => (await queryDaysRaw(query!.url, shop.secretKey, fromMs, toMs)).status === 200, recoveryMsMax);
    // The key nobody had cached is looked up again once Cassandra answers.
    const coldAfter = [makeEvent(random, 'cold-after', Date.now(), spreadMs)];
    await sendUntilAccepted(collector!.url, cold.writeKey, coldAfter, { giveUpAfterMs: recoveryMsMax });
    truth.add(cold.id, coldAfter);
    await senders.stop();
    await waitCaughtUp(log, catchUpMsMax, watched);
    const caughtUpAfterBackMs = performance.now() - cassandraBackMs;

    const outageAttempts = senders.within(stoppedMs, restartBeganMs);
    const stored = await storedEventIds(config, shop.id, fromMs, toMs);
    const lost = [...senders.acknowledged].filter((id) => !stored.has(id));
    t.diagnostic(`set up in ${seconds(setUpMs)}; Cassandra stopped in ${seconds(stoppedMs - stopBeganMs)}, down ${seconds(restartBeganMs - stoppedMs)}, restarted in ${seconds(cassandraBackMs - restartBeganMs)}`);
    t.diagnostic(`during the outage: shop writes ${tally(outageAttempts)}; cold-key writes ${tally(coldWrites)}; queries ${tally(queries)}, slowest in ${Math.round(Math.max(...queries.map((answer) => answer.ms)))} ms; ` +
      `/readyz ${tally(readyDuringOutage)}; ` +
      `lag ${lagAtStop} → ${lagAtEndOfOutage}; processor retries ${retries}`);
    t.diagnostic(`recovery after Cassandra answered again: queries 200 +${seconds(queryAgainMs)}, caught up +${seconds(caughtUpAfterBackMs)}; ` +
      `${senders.acknowledged.size} shop events acknowledged, ${stored.size} stored; total ${seconds(performance.now() - startedMs)}`);

    assert.ok(processorUpDuringOutage, 'the processor survives the outage (it retries)');
    assert.ok((retries ?? 0) > 0, 'the processor retried while Cassandra was down');
    assert.ok(queries.length > 0);
    for (const answer of queries) {
      assert.equal(answer.status, 503, `a query while Cassandra is down: ${answer.status} ${answer.body}`);
      assertCleanError(answer.body, 'store_unavailable');
      assert.ok(answer.ms <= outageAnswerMsMax, `a query during the outage was answered in ${Math.round(answer.ms)} ms`);
    }
    // The collector needs Cassandra only to look up a key it has not cached: an unknown-to-it key
    // is refused as retryable (never 401, never 500), and a cached one goes on to Kafka.
    for (const attempt of coldWrites) {
      assert.equal(attempt.status, 503, `a write with an uncached key while Cassandra is down: ${attempt.status} ${attempt.body}`);
      assertCleanError(attempt.body, 'store_unavailable');
      assert.ok(attempt.answeredMs - attempt.sentMs <= outageAnswerMsMax);
    }
    assert.ok(outageAttempts.some((attempt) => attempt.status === 202), `the shop's cached key kept writing to Kafka: ${tally(outageAttempts)}`);
    for (const attempt of outageAttempts) {
      if (attempt.status !== 202) assertCleanError(attempt.body, 'store_unavailable');
    }
    assert.ok(lagAtEndOfOutage > lagAtStop, `lag grew while events arrived and nothing could be stored: ${lagAtStop} → ${lagAtEndOfOutage}`);
    assert.ok(readyDuringOutage.every((ready) => ready.status === 503), `/readyz fails while Cassandra is down: ${readyDuringOutage.map((ready) => ready.status)}`);
    assert.ok(!senders.attempts.some((attempt) => attempt.status !== null && attempt.status >= 500 && attempt.status !== 503), `no 5xx but 503: ${tally(senders.attempts)}`);
    assert.deepEqual(lost, [], `${lost.length} acknowledged events are missing from the raw event store`);
    for (const merchant of [shop, cold]) {
      assert.deepEqual(await queryDays(query!.url, merchant.secretKey, fromMs, toMs), truth.days(merchant.id, fromMs, toMs), '[events, revenue] per day');
    }
  });
});
