// Crash tests of the embedded deployment: real `tally` child processes sharing one data directory,
// killed with SIGKILL (and stopped with SIGTERM) while events flow. Proves the two promises the
// architecture makes: nothing acknowledged is lost, and redelivery after a crash counts nothing twice.
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomInteger, seededRandom, type Random } from '../../src/adapters/memory/prng.ts';
import { openDatabase, transaction } from '../../src/adapters/sqlite/database.ts';
import { SqliteEventStore } from '../../src/adapters/sqlite/event-store.ts';
import { analyticsGroup, analyticsStream } from '../../src/analytics/processor.ts';
import { createMerchant, makeEvent, type MerchantKeys, type SentEvent } from '../support/traffic.ts';
import { TallyProcesses, readMetric, sleep, withTimeout, type TallyChild } from '../support/processes.ts';

const dayMs = 86_400_000;
const lagSample = 'tally_processor_lag_records{processor="analytics"}';
/** The ingest rate limit would turn the concurrent senders' requests into 429s: not what these tests are about. */
const childEnv = { TALLY_RATE_LIMIT_PER_SECOND: '1000000' };
/** How long a crashed deployment may take to process its backlog, including one session timeout. */
const catchUpMsMax = 60_000;
/**
 * A SIGTERM'd process must be gone well inside an orchestrator's grace period (Kubernetes: 30 s),
 * or it is SIGKILLed mid-drain. A deadline on the shutdown, not a performance figure.
 */
const drainMsMax = 20_000;

/** CRASH_TEST_SEED replays a failing run exactly (the stream and the kill moments; not the OS scheduling). */
function chooseSeed(t: TestContext): number {
  const seed = process.env.CRASH_TEST_SEED ? Number(process.env.CRASH_TEST_SEED) : Date.now() % 2 ** 31;
  t.diagnostic(`seed ${seed} (rerun with CRASH_TEST_SEED=${seed})`);
  return seed;
}

function postEvents(url: string, writeKey: string, events: readonly SentEvent[]): Promise<Response> {
  return fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${writeKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(events),
    signal: AbortSignal.timeout(15_000),
  });
}

/** Caught up = lag 0 on two scrapes in a row (the gauge is refreshed while a scrape is collected). */
async function waitCaughtUp(processor: TallyChild, timeoutMs = catchUpMsMax): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let zeros = 0;
  while (zeros < 2) {
    if (Date.now() > deadline || !processor.running()) {
      const why = processor.running() ? `did not catch up within ${timeoutMs} ms` : 'exited';
      throw new Error(`the processor ${why}\n--- processor output ---\n${processor.output()}`);
    }
    const lag = await readMetric(processor.url, lagSample).catch(() => null);
    zeros = lag === 0 ? zeros + 1 : 0;
    await sleep(100);
  }
}

/** Every event id the raw event store holds for the merchant (the master dataset, read directly). */
async function storedIds(dataDir: string, merchantId: string): Promise<Set<string>> {
  const store = SqliteEventStore.create({ db: join(dataDir, 'store.db') });
  const ids = new Set<string>();
  try {
    let cursor: string | null = null;
    do {
      const page = await store.scan({ merchantId, fromMs: 0, toMs: Date.now() + dayMs, limit: 5_000, after: cursor });
      for (const { event } of page.events) ids.add(event.id);
      cursor = page.next;
    } while (cursor !== null);
  } finally {
    await store.close();
  }
  return ids;
}

describe('processor crashes: SIGKILL at random moments while events flow', () => {
  const processes = new TallyProcesses({ env: childEnv });
  after(() => processes.close());

  const merchantCount = 3;
  const uniqueEvents = 20_000;
  const batchNewEvents = 95;
  const batchResentMax = 5;
  const streamMs = 10_000;
  const sendersMax = 8;
  const spreadMs = 3 * dayMs;
  /** Kill moments and downtimes are drawn from these ranges: 4–6 cycles fit in the stream. */
  const killAfterStartMs = [0, 600] as const;
  const downtimeMs = [300, 1_300] as const;
  /** A batch of ~100 events is handled within tens of milliseconds of its acknowledgement. */
  const killAfterAcknowledgementMs = [0, 40] as const;
  const acknowledgementWaitMsMax = 200;

  interface Batch {
    readonly merchant: number;
    readonly events: readonly SentEvent[];
  }

  /** Batches of new events plus resends of earlier ones (same id, same body): each id must count once. */
  function generateStream(random: Random, nowMs: number): Batch[] {
    const sent: SentEvent[][] = Array.from({ length: merchantCount }, () => []);
    const batches: Batch[] = [];
    for (let next = 0; next < uniqueEvents;) {
      const merchant = randomInteger(random, 0, merchantCount);
      const earlier = sent[merchant]!;
      const events: SentEvent[] = [];
      for (let index = 0; index < batchResentMax && earlier.length > 0; index++) events.push(earlier[randomInteger(random, 0, earlier.length)]!);
      const fresh = Array.from({ length: Math.min(batchNewEvents, uniqueEvents - next) }, (_, index) => makeEvent(random, `e${next + index}`, nowMs, spreadMs));
      next += fresh.length;
      earlier.push(...fresh);
      events.push(...fresh);
      batches.push({ merchant, events });
    }
    return batches;
  }

  /** Fires on every 202: the processor starts on that batch within milliseconds. */
  const acknowledged = new EventTarget();

  /** Resolves at the next acknowledged batch, or after `waitMs` when none comes (the stream is over). */
  function nextAcknowledgement(waitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      acknowledged.addEventListener('batch', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }

  /** Sends every batch, paced over `streamMs`; a failed request is resent as is (resends count once). */
  async function sendStream(url: string, merchants: readonly MerchantKeys[], batches: readonly Batch[]): Promise<void> {
    const intervalMs = streamMs / batches.length;
    const startedMs = Date.now();
    const inFlight = new Set<Promise<void>>();
    for (const [index, batch] of batches.entries()) {
      const dueMs = startedMs + index * intervalMs;
      if (dueMs > Date.now()) await sleep(dueMs - Date.now());
      while (inFlight.size >= sendersMax) await Promise.race(inFlight);
      const sending: Promise<void> = sendUntilAccepted(url, merchants[batch.merchant]!.writeKey, batch.events).finally(() => inFlight.delete(sending));
      inFlight.add(sending);
    }
    await Promise.all(inFlight);
  }

  async function sendUntilAccepted(url: string, writeKey: string, events: readonly SentEvent[]): Promise<void> {
    const attemptsMax = 8;
    for (let attempt = 1; ; attempt++) {
      let failure: string;
      try {
        const response = await postEvents(url, writeKey, events);
        const body = await response.text();
        if (response.status === 202) {
          assert.deepEqual(JSON.parse(body), { accepted: events.length, rejected: [] });
          acknowledged.dispatchEvent(new Event('batch'));
          return;
        }
        // 503 (log busy) is the client's cue to resend; anything else is a bug.
        if (response.status !== 503) assert.fail(`POST /v1/events answered ${response.status}: ${body}`);
        failure = body;
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        failure = String(error);
      }
      if (attempt >= attemptsMax) throw new Error(`a batch was never accepted: ${failure}`);
      await sleep(100 * attempt);
    }
  }

  interface CrashReport {
    kills: number;
    /** When each kill happened, ms after the crash loop began: printed so a run can be read back. */
    readonly killedAtMs: number[];
    /** Kills that left raw events stored but not yet in the rollups: the redelivered copies had to count once. */
    storedAheadOfRollups: number;
    /** Kills that left some partition's rollups ahead of the group's commit: the redelivery had to be skipped. */
    appliedAheadOfCommit: number;
    processor: TallyChild;
  }

  /**
   * Kills the processor `kills` times and restarts it: each time it stays down a random while (a
   * backlog builds), runs a random while, and dies a random few milliseconds after the next batch
   * is acknowledged — while it is most likely handling that batch, the moments that matter. After
   * every kill but the last, the dead member's session is expired in the log file (what the 10 s
   * session timeout does, without the wait); the last kill waits the timeout out for real.
   */
  async function crashRepeatedly(random: Random, kills: number): Promise<CrashReport> {
    const startedMs = performance.now();
    const report: CrashReport = { kills: 0, killedAtMs: [], storedAheadOfRollups: 0, appliedAheadOfCommit: 0, processor: await processes.start('processor') };
    for (let kill = 1; kill <= kills; kill++) {
      await sleep(randomInteger(random, ...killAfterStartMs));
      await nextAcknowledgement(acknowledgementWaitMsMax);
      await sleep(randomInteger(random, ...killAfterAcknowledgementMs));
      const exit = await report.processor.kill('SIGKILL');
      assert.equal(exit.signal, 'SIGKILL', `the processor was killed, not stopped on its own\n${report.processor.output()}`);
      report.kills++;
      report.killedAtMs.push(Math.round(performance.now() - startedMs));
      if (storedAheadOfRollups(processes.dataDir)) report.storedAheadOfRollups++;
      if (appliedAheadOfCommit(processes.dataDir)) report.appliedAheadOfCommit++;
      if (kill < kills) expireGroupSessions(processes.dataDir);
      await sleep(randomInteger(random, ...downtimeMs));
      report.processor = await processes.start('processor');
    }
    return report;
  }

  function storedAheadOfRollups(dataDir: string): boolean {
    const store = openDatabase(join(dataDir, 'store.db'));
    try {
      const row = store.prepare(
        'SELECT count(*) AS ahead FROM events e LEFT JOIN rollup_offsets o ON o.stream = ? AND o.log_partition = e.source_partition ' +
          'WHERE e.source_offset > coalesce(o.applied_offset, -1)',
      ).get(analyticsStream);
      return Number(row?.ahead) > 0;
    } finally {
      store.close();
    }
  }

  function appliedAheadOfCommit(dataDir: string): boolean {
    const store = openDatabase(join(dataDir, 'store.db'));
    const log = openDatabase(join(dataDir, 'log.db'));
    try {
      const applied = store.prepare('SELECT log_partition AS partition, applied_offset AS offset FROM rollup_offsets WHERE stream = ?').all(analyticsStream);
      const committed = new Map(
        log.prepare('SELECT c.partition AS partition, c.next_offset AS next FROM log_committed c JOIN log_topics t USING (topic_id) WHERE c.group_name = ? AND t.name = ?')
          .all(analyticsGroup, 'events').map((row) => [Number(row.partition), Number(row.next)]),
      );
      return applied.some((row) => Number(row.offset) + 1 > (committed.get(Number(row.partition)) ?? 0));
    } finally {
      store.close();
      log.close();
    }
  }

  /** Every member of the group is dead (the test killed it): their leases may be taken at once. */
  function expireGroupSessions(dataDir: string): void {
    const log = openDatabase(join(dataDir, 'log.db'));
    try {
      transaction(log, () => {
        log.prepare('UPDATE log_members SET expires_ms = 0 WHERE group_name = ?').run(analyticsGroup);
        log.prepare('UPDATE log_leases SET expires_ms = 0 WHERE group_name = ?').run(analyticsGroup);
      });
    } finally {
      log.close();
    }
  }

  /** Per merchant and UTC day: [events, revenue] of the distinct accepted ids. */
  function groundTruth(batches: readonly Batch[], fromMs: number, toMs: number): Map<number, Record<string, [number, number]>> {
    const truth = new Map<number, Record<string, [number, number]>>();
    const seen = new Set<string>();
    for (let merchant = 0; merchant < merchantCount; merchant++) {
      const days: Record<string, [number, number]> = {};
      for (let dayStartMs = fromMs; dayStartMs < toMs; dayStartMs += dayMs) days[new Date(dayStartMs).toISOString().slice(0, 10)] = [0, 0];
      truth.set(merchant, days);
    }
    for (const { merchant, events } of batches) {
      for (const event of events) {
        if (seen.has(event.id)) continue;
        seen.add(event.id);
        const day = truth.get(merchant)![event.timestamp.slice(0, 10)]!;
        day[0] += 1;
        day[1] += event.revenue?.amount ?? 0;
      }
    }
    return truth;
  }

  async function queryDays(query: TallyChild, merchant: MerchantKeys, fromMs: number, toMs: number): Promise<Record<string, [number, number]>> {
    const response = await fetch(`${query.url}/v1/query`, {
      method: 'POST',
      headers: { authorization: `Bearer ${merchant.secretKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ metrics: ['events', 'revenue'], date_range: [new Date(fromMs).toISOString(), new Date(toMs).toISOString()], dimensions: ['time:day'] }),
    });
    const body = (await response.json()) as { results: { dimensions: string[]; metrics: number[] }[] };
    assert.equal(response.status, 200, JSON.stringify(body));
    const days: Record<string, [number, number]> = {};
    for (const row of body.results) days[new Date(Date.parse(row.dimensions[0]!)).toISOString().slice(0, 10)] = [row.metrics[0]!, row.metrics[1]!];
    return days;
  }

  test('after 4–6 SIGKILLs and restarts of the processor, every day\'s events and revenue equal the ground truth exactly', { timeout: 120_000 }, async (t) => {
    const seed = chooseSeed(t);
    const random = seededRandom(seed);
    const startedMs = performance.now();
    const nowMs = Date.now();
    const fromMs = Math.floor(nowMs / dayMs) * dayMs - 3 * dayMs;
    const toMs = Math.floor(nowMs / dayMs) * dayMs + dayMs;
    const batches = generateStream(random, nowMs);
    const kills = randomInteger(random, 4, 7);

    const collector = await processes.start('collector');
    const merchants: MerchantKeys[] = [];
    for (let index = 0; index < merchantCount; index++) merchants.push(await createMerchant(collector.url, `shop-${index}`));

    // The last batches go out after the last kill: whichever partitions the dead member held must be
    // taken over once its session expires, even when the stream itself was done before the kill.
    const tail = batches.slice(-merchantCount);
    const sending = sendStream(collector.url, merchants, batches.slice(0, -merchantCount));
    const crashing = crashRepeatedly(random, kills);
    const [, report] = await Promise.all([sending, crashing]);
    for (const batch of tail) await sendUntilAccepted(collector.url, merchants[batch.merchant]!.writeKey, batch.events);
    const streamedMs = Math.round(performance.now() - startedMs);
    await waitCaughtUp(report.processor);
    const caughtUpMs = Math.round(performance.now() - startedMs);

    const query = await processes.start('query');
    const truth = groundTruth(batches, fromMs, toMs);
    for (const [index, merchant] of merchants.entries()) {
      assert.deepEqual(await queryDays(query, merchant, fromMs, toMs), truth.get(index), `merchant ${index}: [events, revenue] per day`);
    }
    const sent = batches.reduce((sum, batch) => sum + batch.events.length, 0);
    t.diagnostic(`${sent} events sent (${uniqueEvents} distinct), ${report.kills} SIGKILLs at ${report.killedAtMs.join(', ')} ms, ` +
      `${report.storedAheadOfRollups} left raw events ahead of the rollups, ${report.appliedAheadOfCommit} rollups ahead of the commit; stream and kills done at ${streamedMs} ms, ` +
      `caught up at ${caughtUpMs} ms, verified at ${Math.round(performance.now() - startedMs)} ms`);
    assert.ok(report.kills >= 4 && report.kills <= 6, `kills: ${report.kills}`);
  });
});

describe('collector crash: SIGKILL while requests are in flight', () => {
  const processes = new TallyProcesses({ env: childEnv });
  after(() => processes.close());

  const senders = 50;

  interface Ingest {
    readonly attempted: Set<string>;
    readonly acknowledged: Set<string>;
    inFlight: number;
    inFlightAtKill: number;
    failedAfterKill: number;
    failedBeforeKill: number;
    killed: boolean;
  }

  /** One sender: 1- and 10-event requests back to back until the collector stops answering. */
  async function sender(url: string, writeKey: string, random: Random, worker: number, ingest: Ingest): Promise<void> {
    const nowMs = Date.now();
    for (let sequence = 0; ; sequence++) {
      const size = random() < 0.5 ? 1 : 10;
      const events = Array.from({ length: size }, (_, index) => makeEvent(random, `w${worker}-${sequence}-${index}`, nowMs, dayMs));
      for (const event of events) ingest.attempted.add(event.id);
      ingest.inFlight++;
      try {
        const response = await postEvents(url, writeKey, events);
        const body = await response.text();
        if (response.status === 202) {
          assert.deepEqual(JSON.parse(body), { accepted: size, rejected: [] });
          for (const event of events) ingest.acknowledged.add(event.id);
        } else if (ingest.killed) return;
        else ingest.failedBeforeKill++;
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        // No answer: the events may or may not be in the log; they count neither way.
        if (ingest.killed) {
          ingest.failedAfterKill++;
          return;
        }
        ingest.failedBeforeKill++;
      } finally {
        ingest.inFlight--;
      }
    }
  }

  test('every event answered 202 is in the raw event store after the collector is SIGKILLed and restarted', { timeout: 120_000 }, async (t) => {
    const seed = chooseSeed(t);
    const random = seededRandom(seed);
    const startedMs = performance.now();
    let collector = await processes.start('collector');
    const merchant = await createMerchant(collector.url, 'shop');
    const ingest: Ingest = {
      attempted: new Set(), acknowledged: new Set(), inFlight: 0, inFlightAtKill: 0, failedAfterKill: 0, failedBeforeKill: 0, killed: false,
    };
    const sending = Promise.all(Array.from({ length: senders }, (_, worker) => sender(collector.url, merchant.writeKey, seededRandom(seed + worker + 1), worker, ingest)));
    const killAfterMs = randomInteger(random, 1_000, 2_000);
    await sleep(killAfterMs);
    ingest.killed = true;
    ingest.inFlightAtKill = ingest.inFlight;
    const exit = await collector.kill('SIGKILL');
    await sending;
    assert.equal(exit.signal, 'SIGKILL');

    collector = await processes.start('collector');
    const afterRestart = [makeEvent(random, 'after-restart', Date.now(), 1)];
    assert.equal((await postEvents(collector.url, merchant.writeKey, afterRestart)).status, 202, 'the restarted collector accepts events');
    const processor = await processes.start('processor');
    await waitCaughtUp(processor);
    const stored = await storedIds(processes.dataDir, merchant.id);

    t.diagnostic(`killed after ${killAfterMs} ms with ${ingest.inFlightAtKill} requests in flight; ${ingest.acknowledged.size} events acknowledged, ` +
      `${ingest.attempted.size} attempted, ${stored.size - 1} stored; ${ingest.failedAfterKill} requests cut off; ${Math.round(performance.now() - startedMs)} ms`);
    assert.equal(ingest.failedBeforeKill, 0, 'no request failed before the kill');
    assert.ok(ingest.acknowledged.size > 0, 'some events were acknowledged before the kill');
    assert.ok(ingest.inFlightAtKill > 0 && ingest.failedAfterKill > 0, 'the kill cut off requests in flight');
    const lost = [...ingest.acknowledged].filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `${lost.length} acknowledged events are missing`);
    assert.ok(stored.has('after-restart'));
    const unknown = [...stored].filter((id) => id !== 'after-restart' && !ingest.attempted.has(id));
    assert.deepEqual(unknown, [], 'the store holds only events that were sent');
  });
});

describe('graceful stop: SIGTERM of `tally start` drains', () => {
  const processes = new TallyProcesses({ env: childEnv });
  after(() => processes.close());

  test('SIGTERM while events arrive exits 0, and every acknowledged event is processed by the next start', { timeout: 120_000 }, async (t) => {
    const seed = chooseSeed(t);
    const random = seededRandom(seed);
    const startedMs = performance.now();
    let tally = await processes.start('start');
    const { url } = tally;
    const merchant = await createMerchant(url, 'shop');
    const acknowledged = new Set<string>();
    /** Outcome counts of the requests (diagnostics). */
    const outcomes = new Map<string, number>();
    let signalled = false;
    let inFlight = 0;
    // Senders stop at the signal: the sockets of the requests in flight then go idle once answered,
    // and nothing but the server's own drain closes them (the case that used to hold the exit for 65 s).
    const senders = Array.from({ length: 20 }, async (_, worker) => {
      for (let sequence = 0; !signalled; sequence++) {
        const events = Array.from({ length: 10 }, (_, index) => makeEvent(random, `w${worker}-${sequence}-${index}`, Date.now(), dayMs));
        inFlight++;
        const outcome = await postEvents(url, merchant.writeKey, events).then(
          async (response) => {
            if (response.status === 202) for (const event of events) acknowledged.add(event.id);
            await response.body?.cancel();
            return String(response.status);
          },
          () => 'no answer',
        );
        inFlight--;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (outcome !== '202') return;
      }
    });
    await sleep(randomInteger(random, 500, 1_000));
    const inFlightAtSignal = inFlight;
    signalled = true;
    const exit = await withTimeout(tally.kill('SIGTERM'), drainMsMax, `tally start did not exit within ${drainMsMax} ms of SIGTERM`);
    await Promise.all(senders);
    assert.deepEqual(exit, { code: 0, signal: null }, `tally start exits 0 after draining\n${tally.output()}`);
    const storedBeforeRestart = await storedIds(processes.dataDir, merchant.id);
    const processedBeforeExit = [...acknowledged].filter((id) => storedBeforeRestart.has(id)).length;

    tally = await processes.start('start');
    await waitCaughtUp(tally);
    assert.deepEqual(await withTimeout(tally.kill('SIGTERM'), drainMsMax, 'the second SIGTERM did not drain in time'), { code: 0, signal: null });
    const stored = await storedIds(processes.dataDir, merchant.id);
    t.diagnostic(`${inFlightAtSignal} requests in flight at SIGTERM; ${JSON.stringify(Object.fromEntries(outcomes))}; ` +
      `${acknowledged.size} events acknowledged, ${processedBeforeExit} of them processed before the exit; ${Math.round(performance.now() - startedMs)} ms`);
    assert.ok(acknowledged.size > 0 && inFlightAtSignal > 0, 'the signal came while events were being acknowledged');
    const lost = [...acknowledged].filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `${lost.length} acknowledged events are missing`);
  });
});
