// The EventLog contract: the behaviour every adapter (memory, sqlite, later kafka) must show.
// An adapter's test file calls runEventLogContract with a factory; a skipped case must say why.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { limits } from '../../src/core/limits.ts';
import { partitionForKey, topicNameCharsMax, topicPartitionsMax } from '../../src/core/partitioner.ts';
import { LogFencedError, LogUnavailableError } from '../../src/core/ports/event-log.ts';
import type { ConsumedRecord, EventLog, LogConsumer, LogPartition, LogPosition } from '../../src/core/ports/event-log.ts';

export interface EventLogFixture {
  readonly log: EventLog;
  /** Opens the same log again after the contract closed it (a restart); absent for in-memory logs. */
  readonly reopen?: () => Promise<EventLog>;
  readonly cleanup: () => Promise<void>;
}

export interface EventLogFixtureOptions {
  readonly appendQueueRecordsMax?: number;
}

export interface EventLogContractOptions {
  /**
   * A fresh, empty log. Its groups must use short timings (a member silent for about a second
   * loses its partitions) so the takeover cases finish quickly. `appendQueueRecordsMax`, when
   * given, bounds the adapter's append queue (the queue-bound case uses 10).
   */
  readonly create: (options?: EventLogFixtureOptions) => Promise<EventLogFixture>;
  /**
   * The longest topic name the fixture's log takes, when shorter than topicNameCharsMax: a log
   * whose names carry a namespace prefix (Kafka shared between test runs) has that much less room.
   */
  readonly topicNameCharsMax?: number;
}

interface Harness {
  log: EventLog;
  /** Closes the log and opens it again where the adapter can; otherwise keeps the same log. */
  restart(): Promise<EventLog>;
  readonly durable: boolean;
}

/** Long enough for rebalancing on a loaded machine; tests only fail if it is exceeded. */
const rebalanceMsMax = 15_000;

export function runEventLogContract(name: string, options: EventLogContractOptions): void {
  const withLog = async (run: (harness: Harness) => Promise<void>, fixtureOptions?: EventLogFixtureOptions): Promise<void> => {
    const fixture = await options.create(fixtureOptions);
    const opened: EventLog[] = [fixture.log];
    const harness: Harness = {
      log: fixture.log,
      durable: fixture.reopen !== undefined,
      async restart() {
        if (fixture.reopen === undefined) return harness.log;
        await harness.log.close();
        harness.log = await fixture.reopen();
        opened.push(harness.log);
        return harness.log;
      },
    };
    try {
      await run(harness);
    } finally {
      for (const log of opened) await log.close();
      await fixture.cleanup();
    }
  };

  describe(`EventLog contract: ${name}`, () => {
    describeAppend(withLog);
    describeAppendUnderLoad(withLog);
    describeTopics(withLog, options.topicNameCharsMax ?? topicNameCharsMax);
    describePoll(withLog);
    describeCommits(withLog);
    describeGroups(withLog);
    describeHooks(withLog);
    describeLifecycle(withLog);
  });
}

type WithLog = (run: (harness: Harness) => Promise<void>, fixtureOptions?: EventLogFixtureOptions) => Promise<void>;

function describeAppend(withLog: WithLog): void {
  test('append returns dense offsets from 0 per partition, in input order', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('orders', 3);
      const first = await log.append('orders', recordsFor('orders', 30, 10, 'a'));
      const second = await log.append('orders', recordsFor('orders', 30, 10, 'b'));
      assert.equal(first.length, 30);
      assert.equal(second.length, 30);
      const seen = new Map<number, number[]>();
      for (const position of [...first, ...second]) {
        assert.equal(position.topic, 'orders');
        seen.set(position.partition, [...(seen.get(position.partition) ?? []), position.offset]);
      }
      for (const offsets of seen.values()) assert.deepEqual(offsets, offsets.map((_, index) => index));
      const ends = await log.endOffsets('orders');
      for (const [partition, offsets] of seen) assert.equal(ends.get(partition), offsets.length);
    }));

  test('records with the same key land in the same partition: the one partitionForKey names', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('keyed', 4);
      const keys = ['merchant-1', 'merchant-2', 'café', '🙂', '', 'x'.repeat(300), ...Array.from({ length: 40 }, (_, i) => `k${i}`)];
      const first = await log.append('keyed', keys.map((key) => ({ key, value: 'one' })));
      const second = await log.append('keyed', keys.map((key) => ({ key, value: 'two' })));
      keys.forEach((key, index) => {
        assert.equal(first[index]!.partition, partitionForKey(key, 4), `key ${key}`);
        assert.equal(second[index]!.partition, first[index]!.partition, `key ${key}`);
        assert.ok(second[index]!.offset > first[index]!.offset, 'a later append of a key comes later in its partition');
      });
      assert.ok(new Set(first.map((position) => position.partition)).size > 1, 'keys spread over partitions');
    }));

  test('an empty append resolves to no positions; an unknown topic or a malformed record rejects', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('known', 1);
      assert.deepEqual(await log.append('known', []), []);
      await assert.rejects(log.append('unknown', [{ key: 'k', value: 'v' }]), /unknown topic/);
      const notString = { key: 7, value: 'v' } as unknown as { key: string; value: string };
      await assert.rejects(log.append('known', [{ key: 'k', value: 'v' }, notString]), TypeError);
      assert.deepEqual(await log.endOffsets('known'), new Map([[0, 0]]), 'a rejected append stores nothing');
    }));
}

function describeAppendUnderLoad(withLog: WithLog): void {
  test('2,000 one-record appends fired together all resolve with unique, dense offsets', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('burst', 4);
      const appends = Array.from({ length: 2000 }, (_, index) => log.append('burst', [{ key: `key-${index % 37}`, value: `v${index}` }]));
      const positions = (await Promise.all(appends)).map((list) => list[0]!);
      const byPartition = new Map<number, number[]>();
      for (const position of positions) byPartition.set(position.partition, [...(byPartition.get(position.partition) ?? []), position.offset]);
      let total = 0;
      for (const offsets of byPartition.values()) {
        const sorted = [...offsets].sort((left, right) => left - right);
        assert.deepEqual(sorted, sorted.map((_, index) => index), 'dense and unique');
        total += offsets.length;
      }
      assert.equal(total, 2000);
      const consumer = log.consumer({ group: 'check', topics: ['burst'] });
      const records = await pollCount(consumer, 2000);
      const valueAt = new Map(records.map((record) => [`${record.partition}:${record.offset}`, record.value]));
      positions.forEach((position, index) => assert.equal(valueAt.get(`${position.partition}:${position.offset}`), `v${index}`));
    }));

  test('the append queue takes appendQueueRecordsMax records and rejects one more with LogUnavailableError', () =>
    withLog(
      async ({ log }) => {
        await log.ensureTopic('bounded', 2);
        const atLimit = [4, 4, 2].map((count) => log.append('bounded', recordsFor('bounded', count, 3, 'fit')));
        const overLimit = log.append('bounded', [{ key: 'k', value: 'one too many' }]);
        await assert.rejects(overLimit, LogUnavailableError);
        const fitted = await Promise.all(atLimit);
        assert.equal(fitted.flat().length, 10);
        assert.equal((await log.append('bounded', recordsFor('bounded', 10, 3, 'again'))).length, 10, 'the queue drained');
        await assert.rejects(log.append('bounded', recordsFor('bounded', 11, 3, 'never')), RangeError);
        const ends = await log.endOffsets('bounded');
        assert.equal([...ends.values()].reduce((sum, end) => sum + end, 0), 20, 'rejected appends stored nothing');
      },
      { appendQueueRecordsMax: 10 },
    ));
}

function describeTopics(withLog: WithLog, nameCharsMax: number): void {
  test('ensureTopic is idempotent: a second call with the same count keeps the records', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('events', 2);
      await log.append('events', recordsFor('events', 6, 6, 'x'));
      const before = await log.endOffsets('events');
      await log.ensureTopic('events', 2);
      assert.deepEqual(await log.endOffsets('events'), before);
    }));

  test('ensureTopic rejects a changed partition count, and the count stays', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('events', 2);
      await assert.rejects(log.ensureTopic('events', 3), /has 2 partitions; asked for 3/);
      await assert.rejects(log.ensureTopic('events', 1), /has 2 partitions; asked for 1/);
      assert.equal((await log.endOffsets('events')).size, 2);
    }));

  test('ensureTopic takes the limits and rejects names and counts outside them', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('t'.repeat(nameCharsMax), 1);
      await log.ensureTopic('widest', topicPartitionsMax);
      assert.equal((await log.endOffsets('widest')).size, topicPartitionsMax);
      for (const topic of ['', 'has space', 'slash/topic', 't'.repeat(nameCharsMax + 1)]) {
        await assert.rejects(log.ensureTopic(topic, 1), RangeError, `name ${JSON.stringify(topic)}`);
      }
      for (const partitions of [0, -1, 1.5, Number.NaN, topicPartitionsMax + 1]) {
        await assert.rejects(log.ensureTopic('counted', partitions), RangeError, `count ${partitions}`);
      }
      await assert.rejects(log.endOffsets('counted'), /unknown topic/, 'nothing was created');
    }));
}

function describePoll(withLog: WithLog): void {
  test('poll returns at most maxRecords, in offset order, and the next poll continues after them', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('single', 1);
      await log.append('single', recordsFor('single', 10, 1, 'r'));
      const consumer = log.consumer({ group: 'g', topics: ['single'] });
      const batches: ConsumedRecord[][] = [];
      for (const size of [3, 3, 3, 3]) batches.push(await consumer.poll(size, 1000));
      assert.deepEqual(batches.map((batch) => batch.length), [3, 3, 3, 1]);
      assert.deepEqual(batches.flat().map((record) => record.offset), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.deepEqual(batches.flat().map((record) => record.value), Array.from({ length: 10 }, (_, i) => `r${i}`));
      for (const record of batches.flat()) assert.ok(Number.isSafeInteger(record.appendedMs) && record.appendedMs > 0);
    }));

  test('poll over several partitions still returns at most maxRecords', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('wide', 3);
      await log.append('wide', recordsFor('wide', 60, 12, 'w'));
      const consumer = log.consumer({ group: 'g', topics: ['wide'] });
      const first = await pollUntilAny(consumer, 7);
      assert.equal(first.length, 7);
      const rest = await pollCount(consumer, 53);
      assert.equal(new Set(valuesOf([...first, ...rest])).size, 60, 'nothing skipped or repeated');
    }));

  test('poll rejects maxRecords outside 1..pollRecordsMax and a negative wait', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('single', 1);
      const consumer = log.consumer({ group: 'g', topics: ['single'] });
      await assert.rejects(consumer.poll(0, 10), RangeError);
      await assert.rejects(consumer.poll(limits.pollRecordsMax + 1, 10), RangeError);
      await assert.rejects(consumer.poll(1.5, 10), RangeError);
      await assert.rejects(consumer.poll(10, -1), RangeError);
      assert.deepEqual(await consumer.poll(limits.pollRecordsMax, 0), []);
    }));

  test('poll on an empty topic waits maxWaitMs, then returns []', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('empty', 2);
      const consumer = log.consumer({ group: 'g', topics: ['empty'] });
      const startedMs = Date.now();
      assert.deepEqual(await consumer.poll(10, 200), []);
      // Timers may fire a millisecond early; the wait must not be cut short otherwise.
      assert.ok(Date.now() - startedMs >= 190, `waited ${Date.now() - startedMs} ms`);
    }));

  test('a waiting poll returns a record appended during the wait, before maxWaitMs', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('late', 1);
      const consumer = log.consumer({ group: 'g', topics: ['late'] });
      const waitMs = 20_000;
      const startedMs = Date.now();
      const polled = consumer.poll(10, waitMs);
      setTimeout(() => void log.append('late', [{ key: 'k', value: 'arrived' }]), 100);
      const records = await polled;
      assert.deepEqual(records.map((record) => record.value), ['arrived']);
      assert.ok(Date.now() - startedMs < waitMs, 'returned before the deadline');
    }));

  test('one consumer may not poll twice at once', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('single', 1);
      const consumer = log.consumer({ group: 'g', topics: ['single'] });
      const first = consumer.poll(10, 200);
      await assert.rejects(consumer.poll(10, 0), /already in progress/);
      assert.deepEqual(await first, []);
    }));
}

function describeCommits(withLog: WithLog): void {
  test('committed offsets survive a restart; the next consumer resumes there and re-delivers the uncommitted', () =>
    withLog(async (harness) => {
      await harness.log.ensureTopic('durable', 1);
      await harness.log.append('durable', recordsFor('durable', 10, 1, 'd'));
      const first = harness.log.consumer({ group: 'g', topics: ['durable'] });
      assert.equal((await pollCount(first, 10)).length, 10);
      await first.commit([{ topic: 'durable', partition: 0, offset: 4 }]);
      if (!harness.durable) await first.close();
      const log = await harness.restart();
      assert.deepEqual(await log.committedOffsets('g', 'durable'), new Map([[0, 4]]));
      const second = log.consumer({ group: 'g', topics: ['durable'] });
      const again = await pollCount(second, 6);
      assert.deepEqual(again.map((record) => record.offset), [4, 5, 6, 7, 8, 9]);
      assert.deepEqual(again.map((record) => record.value), ['d4', 'd5', 'd6', 'd7', 'd8', 'd9']);
      assert.deepEqual(await log.endOffsets('durable'), new Map([[0, 10]]));
    }));

  test('endOffsets lists every partition (0 when empty); committedOffsets only the committed ones', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('three', 3);
      assert.deepEqual(await log.endOffsets('three'), new Map([[0, 0], [1, 0], [2, 0]]));
      assert.deepEqual(await log.committedOffsets('g', 'three'), new Map());
      const positions = await log.append('three', [{ key: 'only', value: 'v' }, { key: 'only', value: 'w' }]);
      const partition = positions[0]!.partition;
      const ends = await log.endOffsets('three');
      assert.equal(ends.get(partition), 2);
      assert.equal([...ends.values()].reduce((sum, end) => sum + end, 0), 2);
      const consumer = log.consumer({ group: 'g', topics: ['three'] });
      await pollCount(consumer, 2);
      await consumer.commit([{ topic: 'three', partition, offset: 2 }]);
      assert.deepEqual(await log.committedOffsets('g', 'three'), new Map([[partition, 2]]));
      assert.deepEqual(await log.committedOffsets('other', 'three'), new Map());
      await assert.rejects(log.endOffsets('missing'), /unknown topic/);
    }));

  test('commit rejects an offset past the end (RangeError) and a partition the member does not own (LogFencedError)', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('single', 1);
      await log.ensureTopic('elsewhere', 1);
      await log.append('single', recordsFor('single', 3, 1, 's'));
      const consumer = log.consumer({ group: 'g', topics: ['single'] });
      await pollCount(consumer, 3);
      await consumer.commit([{ topic: 'single', partition: 0, offset: 3 }]);
      await assert.rejects(consumer.commit([{ topic: 'single', partition: 0, offset: 4 }]), RangeError);
      await assert.rejects(consumer.commit([{ topic: 'single', partition: 0, offset: -1 }]), RangeError);
      await assert.rejects(consumer.commit([{ topic: 'elsewhere', partition: 0, offset: 0 }]), LogFencedError);
      await assert.rejects(consumer.commit([{ topic: 'single', partition: 5, offset: 0 }]), LogFencedError);
      assert.deepEqual(await log.committedOffsets('g', 'single'), new Map([[0, 3]]), 'rejected commits changed nothing');
      await consumer.close();
      await assert.rejects(consumer.commit([{ topic: 'single', partition: 0, offset: 3 }]), LogFencedError);
    }));

  test('different groups each see every record, and one group’s commits leave the other’s alone', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('shared', 2);
      await log.append('shared', recordsFor('shared', 20, 5, 's'));
      const analytics = log.consumer({ group: 'analytics', topics: ['shared'] });
      const sheets = log.consumer({ group: 'sheets', topics: ['shared'] });
      const seenByAnalytics = await pollCount(analytics, 20);
      const seenBySheets = await pollCount(sheets, 20);
      assert.deepEqual(valuesOf(seenByAnalytics), valuesOf(seenBySheets));
      assert.equal(new Set(valuesOf(seenByAnalytics)).size, 20);
      await analytics.commit(nextPositions(seenByAnalytics));
      assert.equal((await log.committedOffsets('analytics', 'shared')).size, 2);
      assert.deepEqual(await log.committedOffsets('sheets', 'shared'), new Map());
    }));
}

function describeGroups(withLog: WithLog): void {
  test('two members of a group share the partitions, never hold one at once, and the survivor takes all', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('split', 4);
      await log.append('split', recordsFor('split', 40, 16, 'p'));
      const revokedFromFirst: LogPartition[] = [];
      const first = log.consumer({ group: 'g', topics: ['split'], onRevoked: async (parts) => void revokedFromFirst.push(...parts) });
      const second = log.consumer({ group: 'g', topics: ['split'] });
      await pollUntilAny(first, 1);
      assert.equal(first.assignment().length, 4, 'a lone member takes every partition');
      const checkDisjoint = async (consumer: LogConsumer): Promise<void> => {
        const records = await consumer.poll(5, 20);
        const mine = new Set(consumer.assignment().map((part) => part.partition));
        for (const record of records) assert.ok(mine.has(record.partition), 'records come only from owned partitions');
        const firstOwns = new Set(first.assignment().map((part) => part.partition));
        for (const part of second.assignment()) assert.ok(!firstOwns.has(part.partition), `partition ${part.partition} held twice`);
      };
      await until(async () => {
        await checkDisjoint(first);
        await checkDisjoint(second);
        return first.assignment().length === 2 && second.assignment().length === 2;
      }, 'the members to hold two partitions each');
      assert.equal(revokedFromFirst.length, 2, 'the first member was told which partitions it gave up');
      await first.close();
      await until(async () => {
        await checkDisjoint(second);
        return second.assignment().length === 4;
      }, 'the survivor to take every partition');
    }));

  test('a member that stops polling loses its partitions; its commit is fenced and its next poll reports the loss', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('lease', 1);
      await log.append('lease', recordsFor('lease', 5, 1, 'l'));
      const revoked: LogPartition[] = [];
      const silent = log.consumer({ group: 'g', topics: ['lease'], onRevoked: async (parts) => void revoked.push(...parts) });
      assert.equal((await pollCount(silent, 5)).length, 5);
      const successor = log.consumer({ group: 'g', topics: ['lease'] });
      const redelivered: ConsumedRecord[] = [];
      await until(async () => {
        redelivered.push(...(await successor.poll(10, 50)));
        return redelivered.length === 5;
      }, 'the successor to take the partition and re-deliver the uncommitted records');
      assert.deepEqual(redelivered.map((record) => record.offset), [0, 1, 2, 3, 4]);
      await assert.rejects(silent.commit([{ topic: 'lease', partition: 0, offset: 5 }]), LogFencedError);
      assert.deepEqual(await log.committedOffsets('g', 'lease'), new Map(), 'the fenced commit changed nothing');
      assert.deepEqual(await silent.poll(10, 0), [], 'the old member gets nothing from a partition it lost');
      assert.deepEqual(revoked, [{ topic: 'lease', partition: 0 }]);
      assert.deepEqual(silent.assignment(), []);
      await successor.commit([{ topic: 'lease', partition: 0, offset: 5 }]);
      assert.deepEqual(await log.committedOffsets('g', 'lease'), new Map([[0, 5]]));
    }));
}

function describeHooks(withLog: WithLog): void {
  test('onAssigned runs before records are returned; close runs onRevoked and frees the partitions at once', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('hooks', 2);
      await log.append('hooks', recordsFor('hooks', 10, 4, 'h'));
      const events: string[] = [];
      const first = log.consumer({
        group: 'g',
        topics: ['hooks'],
        onAssigned: async (parts) => void events.push(`assigned ${partitionNames(parts)}`),
        onRevoked: async (parts) => {
          events.push(`revoked ${partitionNames(parts)}`);
          // The handler may still commit inside onRevoked: it owns the partitions until it returns.
          await first.commit(parts.map((part) => ({ ...part, offset: 1 })));
        },
      });
      const records = await pollUntilAny(first, 100);
      events.push(`records ${records.length}`);
      await first.close();
      assert.deepEqual(events, ['assigned 0,1', 'records 10', 'revoked 0,1']);
      assert.deepEqual(await log.committedOffsets('g', 'hooks'), new Map([[0, 1], [1, 1]]));
      const next = log.consumer({ group: 'g', topics: ['hooks'] });
      const resumed = await pollCount(next, 8);
      assert.equal(resumed.length, 8, 'the next member starts from the commits made in onRevoked');
      assert.ok(resumed.every((record) => record.offset >= 1));
    }));
}

function describeLifecycle(withLog: WithLog): void {
  test('close flushes appends in flight; afterwards append and ping reject with LogUnavailableError', () =>
    withLog(async (harness) => {
      await harness.log.ensureTopic('closing', 1);
      const inFlight = harness.log.append('closing', recordsFor('closing', 5, 1, 'c'));
      await harness.log.close();
      assert.deepEqual((await inFlight).map((position) => position.offset), [0, 1, 2, 3, 4]);
      await assert.rejects(harness.log.append('closing', [{ key: 'k', value: 'late' }]), LogUnavailableError);
      await assert.rejects(harness.log.ping(), LogUnavailableError);
      await harness.log.close();
      if (harness.durable) {
        const log = await harness.restart();
        assert.deepEqual(await log.endOffsets('closing'), new Map([[0, 5]]));
      }
    }));

  test('ping resolves on an open log', () =>
    withLog(async ({ log }) => {
      await log.ping();
    }));

  test('a consumer closed during a waiting poll ends that poll with [] and rejects later polls', () =>
    withLog(async ({ log }) => {
      await log.ensureTopic('single', 1);
      const consumer = log.consumer({ group: 'g', topics: ['single'] });
      const waiting = consumer.poll(10, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const startedMs = Date.now();
      await consumer.close();
      assert.deepEqual(await waiting, []);
      assert.ok(Date.now() - startedMs < 20_000);
      await assert.rejects(consumer.poll(10, 0), /closed/);
    }));
}

// Helpers

function recordsFor(prefix: string, count: number, keys: number, valuePrefix: string): { key: string; value: string }[] {
  return Array.from({ length: count }, (_, index) => ({ key: `${prefix}-key-${index % keys}`, value: `${valuePrefix}${index}` }));
}

function valuesOf(records: readonly ConsumedRecord[]): string[] {
  return records.map((record) => record.value).sort();
}

function partitionNames(parts: readonly LogPartition[]): string {
  return parts.map((part) => part.partition).sort().join(',');
}

/** Per partition, the offset after the last record returned: what a handler commits. */
function nextPositions(records: readonly ConsumedRecord[]): LogPosition[] {
  const next = new Map<string, LogPosition>();
  for (const record of records) {
    const key = `${record.topic}:${record.partition}`;
    const known = next.get(key);
    if (known === undefined || known.offset <= record.offset) next.set(key, { topic: record.topic, partition: record.partition, offset: record.offset + 1 });
  }
  return [...next.values()];
}

/** Polls until `count` records arrived (fails past rebalanceMsMax, or if more arrive). */
async function pollCount(consumer: LogConsumer, count: number): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = [];
  await until(async () => {
    records.push(...(await consumer.poll(Math.min(limits.pollRecordsMax, count - records.length), 100)));
    return records.length >= count;
  }, `${count} records`);
  assert.equal(records.length, count);
  return records;
}

/** The first non-empty poll of at most maxRecords. */
async function pollUntilAny(consumer: LogConsumer, maxRecords: number): Promise<ConsumedRecord[]> {
  let records: ConsumedRecord[] = [];
  await until(async () => {
    records = await consumer.poll(maxRecords, 100);
    return records.length > 0;
  }, 'any record');
  return records;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadlineMs = Date.now() + rebalanceMsMax;
  while (!(await check())) {
    if (Date.now() > deadlineMs) assert.fail(`timed out waiting for ${what}`);
  }
}
