// The processor runtime's promises: commit only after handle succeeds; retry transient failures
// without losing or skipping records; isolate a poison record into the dead-letter topic with the
// error, handling its neighbours; on stop, finish the batch in hand and commit it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventLog } from '../../src/adapters/memory/event-log.ts';
import { ProcessorRuntime } from '../../src/runtime/processor-runtime.ts';
import { TransientError, type HandleResult, type Processor } from '../../src/runtime/processor.ts';
import { LogUnavailableError, type ConsumedRecord, type EventLog } from '../../src/core/ports/event-log.ts';
import { quietLogger } from '../support/analytics.ts';

const topic = 'jobs';

async function logWith(values: readonly string[]): Promise<MemoryEventLog> {
  const log = MemoryEventLog.create();
  await log.ensureTopic(topic, 1);
  await log.append(topic, values.map((value) => ({ key: 'k', value })));
  return log;
}

function recordingProcessor(handle: (batch: readonly ConsumedRecord[]) => Promise<HandleResult>): Processor {
  return { name: 'test', group: 'test-group', topics: [topic], handle };
}

async function runUntil(log: MemoryEventLog, processor: Processor, done: () => boolean): Promise<void> {
  const runtime = new ProcessorRuntime({ log, processor, logger: quietLogger, pollWaitMs: 10, pollLingerMs: 0, retryBaseDelayMs: 1, retryDelayMsMax: 4, retryAttemptsMax: 3 });
  runtime.start();
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await runtime.stop();
}

async function readAll(log: MemoryEventLog, from: string): Promise<ConsumedRecord[]> {
  const consumer = log.consumer({ group: `reader-${Math.random()}`, topics: [from] });
  const records = await consumer.poll(1000, 200);
  await consumer.close();
  return records;
}

describe('processor runtime', () => {
  test('transient failures are retried until they pass, and nothing is committed before', async () => {
    const log = await logWith(['a', 'b', 'c']);
    let failuresLeft = 5;
    const handled: string[] = [];
    const processor = recordingProcessor(async (batch) => {
      const committed = await log.committedOffsets('test-group', topic);
      assert.equal(committed.get(0) ?? 0, 0, 'no commit while the batch still fails');
      if (failuresLeft-- > 0) throw new TransientError('store unavailable');
      handled.push(...batch.map((record) => record.value));
      return { deadLetters: [] };
    });
    await runUntil(log, processor, () => handled.length === 3);
    assert.deepEqual(handled, ['a', 'b', 'c']);
    assert.equal((await log.committedOffsets('test-group', topic)).get(0), 3);
  });

  test('a poison record is isolated to the dead-letter topic; the records around it are handled', async () => {
    const log = await logWith(['ok-1', 'poison', 'ok-2', 'ok-3']);
    const handled = new Set<string>();
    const processor = recordingProcessor(async (batch) => {
      if (batch.some((record) => record.value === 'poison')) throw new Error('cannot parse poison');
      for (const record of batch) handled.add(record.value);
      return { deadLetters: [] };
    });
    await runUntil(log, processor, () => handled.size === 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const letters = await readAll(log, `${topic}.dlq`);
    assert.equal(letters.length, 1);
    const letter = JSON.parse(letters[0]!.value) as { error: { code: string; message: string }; value: string; source: { offset: number } };
    assert.deepEqual([letter.value, letter.source.offset, letter.error.code], ['poison', 1, 'handler_failed']);
    assert.match(letter.error.message, /cannot parse poison/);
    assert.deepEqual([...handled].sort(), ['ok-1', 'ok-2', 'ok-3']);
    assert.equal((await log.committedOffsets('test-group', topic)).get(0), 4);
  });

  test('records the handler reports as dead letters go to the dead-letter topic with its code', async () => {
    const log = await logWith(['fine', 'bad']);
    let calls = 0;
    const processor = recordingProcessor(async (batch) => {
      calls++;
      return { deadLetters: batch.filter((r) => r.value === 'bad').map((record) => ({ record, code: 'invalid_format', message: 'not an event' })) };
    });
    await runUntil(log, processor, () => calls > 0);
    const letters = await readAll(log, `${topic}.dlq`);
    assert.equal(letters.length, 1);
    assert.equal((JSON.parse(letters[0]!.value) as { error: { code: string } }).error.code, 'invalid_format');
  });

  test('a small batch lingers for more records, so a trickle is handled in fewer batches', async () => {
    const log = await logWith(['first']);
    const batches: string[][] = [];
    const processor = recordingProcessor(async (batch) => {
      batches.push(batch.map((record) => record.value));
      return { deadLetters: [] };
    });
    const runtime = new ProcessorRuntime({ log, processor, logger: quietLogger, pollWaitMs: 10, pollLingerMs: 200 });
    runtime.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await log.append(topic, [{ key: 'k', value: 'second' }]);
    while (batches.flat().length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await runtime.stop();
    assert.deepEqual(batches, [['first', 'second']]);
  });

  test('a small maximum batch size that a poll fills is handled at once, never lingering for zero more records', async () => {
    const values = Array.from({ length: 25 }, (_, index) => `r${index}`);
    const log = await logWith(values);
    const batches: number[] = [];
    const processor = recordingProcessor(async (batch) => {
      batches.push(batch.length);
      return { deadLetters: [] };
    });
    const runtime = new ProcessorRuntime({ log, processor, logger: quietLogger, pollWaitMs: 10, pollLingerMs: 5, pollRecordsMax: 10 });
    runtime.start();
    const deadline = Date.now() + 10_000;
    while (batches.reduce((sum, size) => sum + size, 0) < values.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await runtime.stop();
    assert.equal(batches.reduce((sum, size) => sum + size, 0), values.length, `handled batches ${JSON.stringify(batches)}`);
    assert.ok(batches.every((size) => size <= 10));
  });

  test('stop() lets the batch in hand finish and commits it', async () => {
    const log = await logWith(['slow']);
    let started = false;
    let finished = false;
    const processor = recordingProcessor(async () => {
      started = true;
      await new Promise((resolve) => setTimeout(resolve, 150));
      finished = true;
      return { deadLetters: [] };
    });
    const runtime = new ProcessorRuntime({ log, processor, logger: quietLogger, pollWaitMs: 10 });
    runtime.start();
    while (!started) await new Promise((resolve) => setTimeout(resolve, 5));
    await runtime.stop();
    assert.equal(finished, true);
    assert.equal((await log.committedOffsets('test-group', topic)).get(0), 1);
  });

  test('stop() during endless transient failures leaves the batch uncommitted for redelivery', async () => {
    const log = await logWith(['stuck']);
    let attempts = 0;
    const processor = recordingProcessor(async () => {
      attempts++;
      throw new TransientError('still down');
    });
    const runtime = new ProcessorRuntime({ log, processor, logger: quietLogger, pollWaitMs: 10, retryBaseDelayMs: 1, retryDelayMsMax: 2 });
    runtime.start();
    while (attempts < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    await runtime.stop();
    assert.equal((await log.committedOffsets('test-group', topic)).get(0) ?? 0, 0);
  });

  test('an unavailable log at start and at commit is waited out: the loop survives and commits once the log is back', async () => {
    const log = await logWith(['a', 'b', 'c']);
    let ensureFailures = 2;
    let commitFailures = 3;
    const flaky: EventLog = {
      ensureTopic: async (name, partitions) => {
        if (ensureFailures-- > 0) throw new LogUnavailableError('log down');
        return log.ensureTopic(name, partitions);
      },
      append: (name, records) => log.append(name, records),
      consumer: (options) => {
        const inner = log.consumer(options);
        return {
          poll: (max, wait) => inner.poll(max, wait),
          commit: async (positions) => {
            if (commitFailures-- > 0) throw new LogUnavailableError('log down');
            return inner.commit(positions);
          },
          assignment: () => inner.assignment(),
          close: () => inner.close(),
        };
      },
      endOffsets: (name) => log.endOffsets(name),
      committedOffsets: (group, name) => log.committedOffsets(group, name),
      ping: () => log.ping(),
      close: () => log.close(),
    };
    const handled: string[] = [];
    const processor = recordingProcessor(async (batch) => {
      handled.push(...batch.map((record) => record.value));
      return { deadLetters: [] };
    });
    const runtime = new ProcessorRuntime({ log: flaky, processor, logger: quietLogger, pollWaitMs: 10, pollLingerMs: 0, retryBaseDelayMs: 1, retryDelayMsMax: 4 });
    runtime.start();
    const deadline = Date.now() + 10_000;
    while ((await log.committedOffsets('test-group', topic)).get(0) !== 3) {
      if (Date.now() > deadline) throw new Error('never committed');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await runtime.stop();
    assert.equal(ensureFailures, -1, 'ensureTopic was retried until it passed');
    assert.equal(commitFailures, -1, 'the commit was retried until it passed');
    assert.deepEqual(handled, ['a', 'b', 'c'], 'handled once: the loop did not die and restart');
  });
});
