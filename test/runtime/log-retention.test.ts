// Log retention deletes only what every consumer group has processed; reply topics nobody consumes
// lose records by age alone; dead letters and commands no group has read yet stay; a waiting
// requester is not disturbed; a failing pass is logged and never stops the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventLog } from '../../src/adapters/sqlite/event-log.ts';
import { startLogRetention, type PrunableLog } from '../../src/runtime/log-retention.ts';
import { ProcessorRuntime, deadLetterTopic } from '../../src/runtime/processor-runtime.ts';
import { ensureRequestReplyTopics, requestOnce, requestReplyTopics } from '../../src/runtime/request-reply.ts';
import { pingResponder } from '../../src/ping/responder.ts';
import type { ConsumedRecord, EventLog } from '../../src/core/ports/event-log.ts';

const quiet = { info() {}, warn() {} };

test('a pass deletes the records every group committed past, and keeps the rest and dead letters', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-retention-'));
  const log = SqliteEventLog.open({ path: join(dir, 'log.db') });
  try {
    await log.ensureTopic('events', 1);
    await log.ensureTopic('events.dlq', 1);
    await log.append('events', Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: `v${i}` })));
    await log.append('events.dlq', [{ key: 'k', value: 'dead letter' }]);
    const consumer = log.consumer({ group: 'analytics', topics: ['events'] });
    assert.equal((await consumer.poll(6, 1000)).length, 6);
    await consumer.commit([{ topic: 'events', partition: 0, offset: 6 }]);
    const retention = startLogRetention(log, { retentionMs: 0, intervalMs: 60_000, logger: quiet });
    assert.equal(await retention.runOnce(), 6);
    await retention.stop();
    const rest = await consumer.poll(10, 200);
    assert.deepEqual(rest.map((record) => record.offset), [6, 7, 8, 9], 'uncommitted records stay');
    await consumer.close();
    const reader = log.consumer({ group: 'people', topics: ['events.dlq'] });
    assert.equal((await reader.poll(10, 500)).length, 1, 'dead letters stay');
    await reader.close();
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
let readers = 0;

/** What is left of a topic, read by a fresh group. */
async function remaining(log: EventLog, topic: string): Promise<string[]> {
  const consumer = log.consumer({ group: `remaining-${readers++}`, topics: [topic] });
  const records: ConsumedRecord[] = [];
  for (let polls = 0; polls < 5; polls++) records.push(...(await consumer.poll(1000, 50)));
  await consumer.close();
  return records.map((record) => record.value);
}

test('reply topics no group consumes lose old records by age alone; dead letters, unread commands and recent replies stay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-retention-'));
  const log = SqliteEventLog.open({ path: join(dir, 'log.db') });
  const payments = requestReplyTopics('payments', 'transfer');
  try {
    await ensureRequestReplyTopics(log, payments, 2);
    await ensureRequestReplyTopics(log, pingResponder.topics, 1);
    await log.ensureTopic(deadLetterTopic(payments.requested), 1);
    const values = (name: string, count: number) => Array.from({ length: count }, (_, index) => ({ key: `acc_${index}`, value: `${name}${index}` }));
    await log.append(payments.succeeded, values('old-succeeded', 5));
    await log.append(payments.failed, values('old-failed', 3));
    await log.append(pingResponder.topics.succeeded, values('old-pong', 2));
    await log.append(payments.requested, values('unread-command', 4));
    await log.append(deadLetterTopic(payments.requested), values('dead-letter', 1));
    await sleep(400);
    await log.append(payments.succeeded, values('new-succeeded', 2));
    const retention = startLogRetention(log, { retentionMs: 200, intervalMs: 60_000, logger: quiet });
    assert.equal(await retention.runOnce(), 5 + 3 + 2, 'every old reply, and nothing else');
    await retention.stop();
    assert.deepEqual((await remaining(log, payments.succeeded)).sort(), ['new-succeeded0', 'new-succeeded1'], 'replies younger than the retention stay');
    assert.deepEqual(await remaining(log, payments.failed), []);
    assert.deepEqual(await remaining(log, pingResponder.topics.succeeded), []);
    assert.equal((await remaining(log, payments.requested)).length, 4, 'commands stay until a group has processed them');
    assert.deepEqual(await remaining(log, deadLetterTopic(payments.requested)), ['dead-letter0'], 'dead letters stay');
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a requester waiting for its reply gets it while retention passes run, and old replies are pruned meanwhile', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-retention-'));
  const log = SqliteEventLog.open({ path: join(dir, 'log.db') });
  const runtime = new ProcessorRuntime({ log, processor: pingResponder.processor({ log }), logger: { ...quiet, error() {} }, pollWaitMs: 10, pollLingerMs: 0 });
  let retention: ReturnType<typeof startLogRetention> | null = null;
  try {
    await ensureRequestReplyTopics(log, pingResponder.topics, 1);
    await log.append(pingResponder.topics.succeeded, [{ key: 'earlier', value: 'an old reply' }]);
    await sleep(400);
    runtime.start();
    // Passes back to back; the retention is far longer than the wait, as the configuration's hour is.
    retention = startLogRetention(log, { retentionMs: 200, intervalMs: 1, logger: quiet });
    for (let request = 0; request < 5; request++) {
      const reply = await requestOnce(log, pingResponder.topics, { key: `now-${request}`, value: '{}' }, { group: 'test.requester', timeoutMs: 5000 });
      assert.deepEqual(reply, { outcome: 'succeeded', result: { message: 'pong' } });
    }
    await retention.runOnce();
    assert.ok(!(await remaining(log, pingResponder.topics.succeeded)).includes('an old reply'), 'the old reply was pruned');
  } finally {
    await retention?.stop();
    await runtime.stop();
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('passes run on the timer, never overlap, and a failing pass is logged, not thrown', async () => {
  let calls = 0;
  let inFlight = 0;
  let overlapped = false;
  const warnings: string[] = [];
  const log: PrunableLog = {
    async prune() {
      calls++;
      inFlight++;
      if (inFlight > 1) overlapped = true;
      await new Promise((resolve) => setTimeout(resolve, 30));
      inFlight--;
      if (calls === 2) throw new Error('disk busy');
      return { recordsDeleted: 1 };
    },
  };
  const retention = startLogRetention(log, { retentionMs: 1000, intervalMs: 10, logger: { info() {}, warn: (_o, message) => warnings.push(message) } });
  await new Promise((resolve) => setTimeout(resolve, 150));
  await retention.stop();
  assert.ok(calls >= 3, `the timer ran passes (${calls})`);
  assert.equal(overlapped, false);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /retrying on the next tick/);
});
