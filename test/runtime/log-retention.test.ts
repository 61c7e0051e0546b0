// Log retention deletes only what every consumer group has processed; unconsumed topics (dead
// letters) stay; a failing pass is logged and never stops the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventLog } from '../../src/adapters/sqlite/event-log.ts';
import { startLogRetention, type PrunableLog } from '../../src/runtime/log-retention.ts';

const quiet = { info() {}, warn() {} };

test('a pass deletes the records every group committed past, and keeps the rest and unconsumed topics', async () => {
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
