// Runs the EventLog contract against the memory and SQLite adapters, plus the pieces the contract
// leans on: the Kafka-compatible partitioner and the memory adapter's seeded fault injection.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryEventLog } from '../../src/adapters/memory/event-log.ts';
import { SqliteEventLog } from '../../src/adapters/sqlite/event-log.ts';
import { NamespacedEventLog } from '../../src/adapters/kafka/namespace.ts';
import { murmur2, partitionForKey } from '../../src/core/partitioner.ts';
import { LogUnavailableError } from '../../src/core/ports/event-log.ts';
import type { ConsumedRecord } from '../../src/core/ports/event-log.ts';
import { runEventLogContract } from './event-log.contract.ts';

// Short group timings: a silent member loses its partitions in about a second.
const sessionTimeoutMs = 600;
const pollIntervalMsMax = 400;

runEventLogContract('memory', {
  create: async (options) => ({
    log: MemoryEventLog.create({ sessionTimeoutMs, pollIntervalMsMax, appendQueueRecordsMax: options?.appendQueueRecordsMax }),
    cleanup: async () => {},
  }),
});

runEventLogContract('sqlite', {
  create: async (options) => {
    const directory = await mkdtemp(join(tmpdir(), 'tally-event-log-'));
    const open = (): SqliteEventLog =>
      SqliteEventLog.open({
        path: join(directory, 'log.db'),
        sessionTimeoutMs,
        heartbeatIntervalMs: 150,
        pollIntervalMsMax,
        appendQueueRecordsMax: options?.appendQueueRecordsMax,
      });
    return {
      log: open(),
      reopen: async () => open(),
      cleanup: () => rm(directory, { recursive: true, force: true }),
    };
  },
});

describe('partitionForKey', () => {
  test('murmur2 matches the values Kafka’s own tests pin', () => {
    const utf8 = new TextEncoder();
    const pinned: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [text, hash] of pinned) assert.equal(murmur2(utf8.encode(text)), hash, text);
  });

  test('maps a key to toPositive(murmur2) mod partitions, always within range', () => {
    assert.equal(partitionForKey('foobar', 7), (-790332482 & 0x7fffffff) % 7);
    for (const key of ['', 'é', '🙂', 'merchant-42']) {
      for (const partitions of [1, 2, 3, 12, 1024]) {
        const partition = partitionForKey(key, partitions);
        assert.ok(Number.isInteger(partition) && partition >= 0 && partition < partitions);
      }
    }
    assert.equal(partitionForKey('anything', 1), 0);
  });

  test('rejects a partition count that is not a positive integer', () => {
    for (const partitions of [0, -1, 2.5, Number.NaN]) assert.throws(() => partitionForKey('k', partitions), RangeError);
  });
});

describe('namespaced event log', () => {
  test('topics and groups are prefixed underneath, and callers see the plain names', async () => {
    const inner = MemoryEventLog.create({ sessionTimeoutMs, pollIntervalMsMax });
    const log = NamespacedEventLog.wrap(inner, 'ns');
    await log.ensureTopic('events', 2);
    const [position] = await log.append('events', [{ key: 'k', value: 'v' }]);
    assert.equal(position?.topic, 'events');
    assert.equal([...(await inner.endOffsets('ns.events')).values()].reduce((a, b) => a + b, 0), 1);
    await assert.rejects(inner.endOffsets('events'), 'the plain name does not exist underneath');
    const consumer = log.consumer({ group: 'g', topics: ['events'] });
    const records = await consumer.poll(10, 2000);
    assert.deepEqual(records.map((record) => [record.topic, record.value]), [['events', 'v']]);
    await consumer.commit([{ topic: 'events', partition: records[0]!.partition, offset: records[0]!.offset + 1 }]);
    assert.equal((await inner.committedOffsets('ns.g', 'ns.events')).get(records[0]!.partition), records[0]!.offset + 1);
    assert.equal(NamespacedEventLog.wrap(inner, ''), inner);
    await consumer.close();
    await log.close();
  });
});

describe('memory event log fault injection', () => {
  test('appendFailureRate 1 rejects every append with LogUnavailableError and stores nothing', async () => {
    const log = MemoryEventLog.create({ faults: { seed: 7, appendFailureRate: 1 } });
    await log.ensureTopic('t', 1);
    for (let attempt = 0; attempt < 20; attempt++) await assert.rejects(log.append('t', [{ key: 'k', value: 'v' }]), LogUnavailableError);
    assert.deepEqual(await log.endOffsets('t'), new Map([[0, 0]]));
    await log.close();
  });

  test('the same seed fails the same appends; another seed fails others', async () => {
    const pattern = async (seed: number): Promise<string> => {
      const log = MemoryEventLog.create({ faults: { seed, appendFailureRate: 0.3 } });
      await log.ensureTopic('t', 1);
      let outcomes = '';
      for (let attempt = 0; attempt < 60; attempt++) {
        outcomes += await log.append('t', [{ key: 'k', value: `${attempt}` }]).then(
          () => '.',
          (error: unknown) => (error instanceof LogUnavailableError ? 'x' : '?'),
        );
      }
      await log.close();
      return outcomes;
    };
    const first = await pattern(42);
    assert.equal(await pattern(42), first);
    assert.notEqual(await pattern(43), first);
    assert.match(first, /x/);
    assert.match(first, /\./);
    assert.doesNotMatch(first, /\?/);
  });

  test('duplicateRate re-delivers already-returned records in offset order, and still delivers every record', async () => {
    const log = MemoryEventLog.create({ faults: { seed: 3, duplicateRate: 0.5 } });
    await log.ensureTopic('t', 1);
    await log.append('t', Array.from({ length: 100 }, (_, index) => ({ key: 'k', value: `v${index}` })));
    const consumer = log.consumer({ group: 'g', topics: ['t'] });
    const deliveries: number[] = [];
    let highest = -1;
    let redelivered = 0;
    while (highest < 99) {
      const batch: ConsumedRecord[] = await consumer.poll(10, 100);
      assert.ok(batch.length > 0);
      batch.forEach((record, index) => {
        if (index > 0) assert.equal(record.offset, batch[index - 1]!.offset + 1, 'a batch is contiguous');
        assert.equal(record.value, `v${record.offset}`);
        assert.ok(record.offset <= highest + 1, 'nothing skipped');
        if (record.offset <= highest) redelivered += 1;
        highest = Math.max(highest, record.offset);
        deliveries.push(record.offset);
      });
    }
    assert.ok(redelivered > 0, 'some records came twice');
    assert.deepEqual([...new Set(deliveries)].sort((left, right) => left - right), Array.from({ length: 100 }, (_, index) => index));
    await log.close();
  });

  test('without faults nothing is re-delivered', async () => {
    const log = MemoryEventLog.create({ faults: { seed: 3 } });
    await log.ensureTopic('t', 1);
    await log.append('t', Array.from({ length: 50 }, (_, index) => ({ key: 'k', value: `v${index}` })));
    const consumer = log.consumer({ group: 'g', topics: ['t'] });
    const offsets: number[] = [];
    for (let poll = 0; poll < 5; poll++) offsets.push(...(await consumer.poll(10, 100)).map((record) => record.offset));
    assert.deepEqual(offsets, Array.from({ length: 50 }, (_, index) => index));
    assert.deepEqual(await consumer.poll(10, 0), []);
    await log.close();
  });

  test('fault rates outside 0..1 are refused', () => {
    assert.throws(() => MemoryEventLog.create({ faults: { seed: 1, duplicateRate: 1.5 } }), RangeError);
    assert.throws(() => MemoryEventLog.create({ faults: { seed: 1, appendFailureRate: -0.1 } }), RangeError);
    assert.throws(() => MemoryEventLog.create({ faults: { seed: 1.5 } }), RangeError);
  });
});
