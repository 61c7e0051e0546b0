// SQLite-only behaviour of the event log: durability across a SIGKILL, several processes on one
// file, group commit, retention (prune), and the shared openDatabase/transaction helpers.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDatabase, transaction } from '../../src/adapters/sqlite/database.ts';
import { SqliteEventLog } from '../../src/adapters/sqlite/event-log.ts';
import type { SqliteEventLogOptions } from '../../src/adapters/sqlite/event-log.ts';
import { LogUnavailableError } from '../../src/core/ports/event-log.ts';
import type { ConsumedRecord, LogConsumer } from '../../src/core/ports/event-log.ts';

const childScript = fileURLToPath(new URL('../support/event-log-child.ts', import.meta.url));
let directory = '';
let fileNumber = 0;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tally-sqlite-log-'));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

function freshPath(): string {
  fileNumber += 1;
  return join(directory, `log-${fileNumber}.db`);
}

function openLog(path: string, options: Partial<SqliteEventLogOptions> = {}): SqliteEventLog {
  return SqliteEventLog.open({ path, sessionTimeoutMs: 1000, heartbeatIntervalMs: 150, pollIntervalMsMax: 1000, ...options });
}

interface ChildResult {
  readonly signal: NodeJS.Signals | null;
  readonly lines: Record<string, unknown>[];
  readonly stderr: string;
}

function runChild(mode: 'append' | 'consume', path: string, count: number, env: Record<string, string> = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childScript, mode, path, String(count)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      const lines = stdout.split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as Record<string, unknown>);
      resolve({ signal, lines, stderr });
    });
  });
}

async function pollCount(consumer: LogConsumer, count: number, deadlineMs = 15_000): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = [];
  const endMs = Date.now() + deadlineMs;
  while (records.length < count) {
    if (Date.now() > endMs) assert.fail(`timed out with ${records.length} of ${count} records`);
    records.push(...(await consumer.poll(Math.min(5000, count - records.length), 100)));
  }
  return records;
}

describe('sqlite event log: crashes', () => {
  test('every append acknowledged before a SIGKILL is in the file after reopening, with dense offsets', async () => {
    const path = freshPath();
    const child = await runChild('append', path, 600);
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    assert.equal(child.lines.length, 600);
    const log = openLog(path);
    const ends = await log.endOffsets('crash');
    const consumer = log.consumer({ group: 'verify', topics: ['crash'] });
    const total = [...ends.values()].reduce((sum, end) => sum + end, 0);
    assert.ok(total >= 600, 'at least every acknowledged record');
    const stored = await pollCount(consumer, total);
    const byPosition = new Map(stored.map((record) => [`${record.partition}:${record.offset}`, record.value]));
    for (const line of child.lines) assert.equal(byPosition.get(`${line['partition']}:${line['offset']}`), line['value']);
    for (const [partition, end] of ends) {
      const offsets = stored.filter((record) => record.partition === partition).map((record) => record.offset).sort((a, b) => a - b);
      assert.deepEqual(offsets, Array.from({ length: end }, (_, index) => index), `partition ${partition} is dense`);
    }
    await log.close();
  });

  test('a consumer process killed mid-stream: a member in another process takes over at the last commit', async () => {
    const path = freshPath();
    const seed = openLog(path);
    await seed.ensureTopic('consumed', 1);
    await seed.append('consumed', Array.from({ length: 100 }, (_, index) => ({ key: 'k', value: `v${index}` })));
    await seed.close();
    const child = await runChild('consume', path, 35);
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const last = child.lines.at(-1)!;
    assert.equal(last['uncommittedFrom'], 30);
    const log = openLog(path);
    assert.deepEqual(await log.committedOffsets('crash-group', 'consumed'), new Map([[0, 30]]));
    const successor = log.consumer({ group: 'crash-group', topics: ['consumed'] });
    const resumed = await pollCount(successor, 70);
    assert.deepEqual(resumed.map((record) => record.offset), Array.from({ length: 70 }, (_, index) => 30 + index));
    await successor.commit([{ topic: 'consumed', partition: 0, offset: 100 }]);
    assert.deepEqual(await log.committedOffsets('crash-group', 'consumed'), new Map([[0, 100]]));
    await log.close();
  });
});

describe('sqlite event log: members on one host', () => {
  test('a member whose process died is replaced at once, not after the session timeout', async () => {
    const path = freshPath();
    const seed = openLog(path);
    await seed.ensureTopic('consumed', 2);
    await seed.append('consumed', Array.from({ length: 100 }, (_, index) => ({ key: `k${index}`, value: `v${index}` })));
    await seed.close();
    // The dead member's leases would otherwise stay valid for a minute.
    const child = await runChild('consume', path, 35, { CHILD_SESSION_TIMEOUT_MS: '60000' });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const log = openLog(path, { sessionTimeoutMs: 60_000, heartbeatIntervalMs: 1000, pollIntervalMsMax: 60_000 });
    const successor = log.consumer({ group: 'crash-group', topics: ['consumed'] });
    const startedMs = Date.now();
    const records = await pollCount(successor, 1, 5000);
    assert.ok(records.length > 0 && Date.now() - startedMs < 5000, 'the successor took the partitions within 5 s of a 60 s timeout');
    assert.equal(successor.assignment().length, 2);
    await successor.close();
    await log.close();
  });

  test('a live member on this host keeps its partitions', async () => {
    const path = freshPath();
    const log = openLog(path, { sessionTimeoutMs: 60_000, heartbeatIntervalMs: 1000, pollIntervalMsMax: 60_000 });
    await log.ensureTopic('kept', 2);
    const first = log.consumer({ group: 'g', topics: ['kept'] });
    await first.poll(10, 50);
    const other = openLog(path, { sessionTimeoutMs: 60_000, heartbeatIntervalMs: 1000, pollIntervalMsMax: 60_000 });
    const second = other.consumer({ group: 'g', topics: ['kept'] });
    await second.poll(10, 50);
    assert.equal(first.assignment().length + second.assignment().length <= 2, true, 'never more owners than partitions');
    assert.ok(first.assignment().length >= 1, 'the live member was not treated as dead');
    await second.close();
    await first.close();
    await other.close();
    await log.close();
  });
});

describe('sqlite event log: several connections on one file', () => {
  test('two logs on one file append with unique, dense offsets and see each other’s topics', async () => {
    const path = freshPath();
    const left = openLog(path);
    const right = openLog(path);
    await left.ensureTopic('shared', 3);
    const appends = Array.from({ length: 400 }, (_, index) =>
      (index % 2 === 0 ? left : right).append('shared', [{ key: `k${index % 7}`, value: `v${index}` }]),
    );
    const positions = (await Promise.all(appends)).flat();
    for (let partition = 0; partition < 3; partition++) {
      const offsets = positions.filter((position) => position.partition === partition).map((position) => position.offset).sort((a, b) => a - b);
      assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, index) => index));
    }
    assert.deepEqual(await left.endOffsets('shared'), await right.endOffsets('shared'));
    await left.close();
    await right.close();
  });

  test('members on two connections share a group’s partitions without overlap', async () => {
    const path = freshPath();
    const left = openLog(path);
    const right = openLog(path);
    await left.ensureTopic('split', 4);
    await left.append('split', Array.from({ length: 40 }, (_, index) => ({ key: `k${index % 16}`, value: `v${index}` })));
    const first = left.consumer({ group: 'g', topics: ['split'] });
    const second = right.consumer({ group: 'g', topics: ['split'] });
    const endMs = Date.now() + 15_000;
    while (!(first.assignment().length === 2 && second.assignment().length === 2)) {
      assert.ok(Date.now() < endMs, 'timed out waiting for a 2 + 2 split');
      await first.poll(10, 20);
      await second.poll(10, 20);
      const firstOwns = new Set(first.assignment().map((part) => part.partition));
      for (const part of second.assignment()) assert.ok(!firstOwns.has(part.partition), `partition ${part.partition} held twice`);
    }
    await left.close();
    await right.close();
  });
});

describe('sqlite event log: group commit and failures', () => {
  test('appends fired together share transactions: far fewer group commits than appends', async () => {
    const log = openLog(freshPath());
    await log.ensureTopic('burst', 4);
    await Promise.all(Array.from({ length: 2000 }, (_, index) => log.append('burst', [{ key: `k${index}`, value: 'v' }])));
    const stats = log.stats();
    assert.equal(stats.recordsAppended, 2000);
    assert.ok(stats.groupCommits >= 1 && stats.groupCommits <= 10, `${stats.groupCommits} group commits`);
    assert.equal(stats.queuedRecords, 0);
    await log.close();
  });

  test('a group commit that cannot get the write lock rejects its appends with LogUnavailableError and writes none', async () => {
    const path = freshPath();
    const log = openLog(path, { busyTimeoutMs: 50 });
    await log.ensureTopic('locked', 1);
    await log.append('locked', [{ key: 'k', value: 'before' }]);
    const blocker = new DatabaseSync(path);
    blocker.exec('BEGIN IMMEDIATE');
    const rejected = await Promise.allSettled([1, 2, 3].map((index) => log.append('locked', [{ key: 'k', value: `during-${index}` }])));
    for (const outcome of rejected) {
      assert.equal(outcome.status, 'rejected');
      assert.ok(outcome.status === 'rejected' && outcome.reason instanceof LogUnavailableError);
    }
    blocker.exec('ROLLBACK');
    blocker.close();
    const [position] = await log.append('locked', [{ key: 'k', value: 'after' }]);
    assert.equal(position!.offset, 1, 'the failed commit left no gap');
    await log.close();
  });

  test('a reopened log continues each partition after its last offset', async () => {
    const path = freshPath();
    const first = openLog(path);
    await first.ensureTopic('again', 1);
    await first.append('again', [{ key: 'k', value: 'a' }, { key: 'k', value: 'b' }]);
    await first.close();
    const second = openLog(path);
    await second.ensureTopic('again', 1);
    assert.deepEqual((await second.append('again', [{ key: 'k', value: 'c' }])).map((position) => position.offset), [2]);
    await assert.rejects(second.ensureTopic('again', 2), /has 1 partitions/);
    await second.close();
  });
});

describe('sqlite event log: prune', () => {
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  test('prune deletes old records below every group’s committed offset, never an uncommitted or a recent one', async () => {
    const log = openLog(freshPath());
    await log.ensureTopic('retained', 1);
    await log.append('retained', Array.from({ length: 10 }, (_, index) => ({ key: 'k', value: `old${index}` })));
    await sleep(400);
    await log.append('retained', Array.from({ length: 5 }, (_, index) => ({ key: 'k', value: `new${index}` })));
    const ahead = log.consumer({ group: 'ahead', topics: ['retained'] });
    const behind = log.consumer({ group: 'behind', topics: ['retained'] });
    await pollCount(ahead, 15);
    await pollCount(behind, 15);
    await ahead.commit([{ topic: 'retained', partition: 0, offset: 15 }]);
    await behind.commit([{ topic: 'retained', partition: 0, offset: 6 }]);
    assert.deepEqual(await log.prune({ olderThanMs: 200 }), { recordsDeleted: 6 }, 'offsets 0..5: below both commits');
    await behind.commit([{ topic: 'retained', partition: 0, offset: 15 }]);
    assert.deepEqual(await log.prune({ olderThanMs: 200 }), { recordsDeleted: 4 }, 'offsets 6..9: the recent 10..14 stay');
    assert.deepEqual(await log.prune({ olderThanMs: 200 }), { recordsDeleted: 0 });
    assert.deepEqual(await log.endOffsets('retained'), new Map([[0, 15]]), 'offsets are never reused');
    const latecomer = log.consumer({ group: 'latecomer', topics: ['retained'] });
    const remaining = await pollCount(latecomer, 5);
    assert.deepEqual(remaining.map((record) => record.value), ['new0', 'new1', 'new2', 'new3', 'new4']);
    await log.close();
  });

  test('prune keeps everything of a topic no group has committed, and of a group that holds a lease without a commit', async () => {
    const log = openLog(freshPath());
    await log.ensureTopic('unread', 1);
    await log.ensureTopic('leased', 1);
    await log.append('unread', [{ key: 'k', value: 'a' }]);
    await log.append('leased', [{ key: 'k', value: 'b' }]);
    const reader = log.consumer({ group: 'slow', topics: ['leased'] });
    await pollCount(reader, 1);
    await sleep(50);
    assert.deepEqual(await log.prune({ olderThanMs: 0 }), { recordsDeleted: 0 });
    await assert.rejects(log.prune({ olderThanMs: -1 }), RangeError);
    await log.close();
  });

  test('prune drops old records of an unconsumed topic expireUnconsumed names by age alone; others it does not name stay whole', async () => {
    const log = openLog(freshPath());
    for (const topic of ['replies', 'replies.dlq', 'commands', 'consumed']) await log.ensureTopic(topic, 2);
    const records = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => ({ key: `k${index}`, value: `${prefix}${index}` }));
    for (const topic of ['replies', 'replies.dlq', 'commands', 'consumed']) await log.append(topic, records('old', 8));
    await sleep(400);
    await log.append('replies', records('new', 4));
    const reader = log.consumer({ group: 'reader', topics: ['consumed'] });
    await pollCount(reader, 8);
    await reader.commit([...(await log.endOffsets('consumed'))].map(([partition]) => ({ topic: 'consumed', partition, offset: 0 })));
    const named = new Set(['replies', 'consumed']);
    const expireUnconsumed = (topic: string): boolean => named.has(topic);
    assert.deepEqual(await log.prune({ olderThanMs: 200, expireUnconsumed }), { recordsDeleted: 8 }, 'the 8 old replies; `consumed` has a group at offset 0');
    assert.deepEqual(await log.prune({ olderThanMs: 200 }), { recordsDeleted: 0 }, 'without expireUnconsumed unconsumed topics keep everything');
    const latecomer = log.consumer({ group: 'latecomer', topics: ['replies', 'replies.dlq', 'commands', 'consumed'] });
    const left = await pollCount(latecomer, 4 + 8 + 8 + 8);
    const valuesOf = (topic: string): string[] => left.filter((record) => record.topic === topic).map((record) => record.value).sort();
    assert.deepEqual(valuesOf('replies'), ['new0', 'new1', 'new2', 'new3'], 'recent replies stay');
    assert.equal(valuesOf('replies.dlq').length, 8, 'an unconsumed topic it does not name stays whole');
    assert.equal(valuesOf('commands').length, 8);
    assert.equal(valuesOf('consumed').length, 8, 'a consumed topic keeps what its group has not committed past');
    assert.deepEqual([...(await log.endOffsets('replies')).values()].reduce((sum, end) => sum + end, 0), 12, 'offsets are never reused');
    await log.close();
  });
});

describe('sqlite database helper', () => {
  test('openDatabase turns on WAL, synchronous FULL, foreign keys and the busy timeout', () => {
    const path = freshPath();
    const db = openDatabase(path, { busyTimeoutMs: 1234 });
    assert.equal(db.prepare('PRAGMA journal_mode').get()?.['journal_mode'], 'wal');
    assert.equal(db.prepare('PRAGMA synchronous').get()?.['synchronous'], 2);
    assert.equal(db.prepare('PRAGMA foreign_keys').get()?.['foreign_keys'], 1);
    assert.equal(db.prepare('PRAGMA busy_timeout').get()?.['timeout'], 1234);
    db.exec('CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (parent_id INTEGER REFERENCES parent (id))');
    assert.throws(() => db.exec('INSERT INTO child VALUES (42)'), /FOREIGN KEY/);
    db.close();
    const reader = openDatabase(path, { readOnly: true });
    assert.equal(reader.prepare('SELECT count(*) AS n FROM parent').get()?.['n'], 0);
    assert.throws(() => reader.exec('INSERT INTO parent VALUES (1)'), /readonly/);
    reader.close();
    assert.throws(() => openDatabase(path, { busyTimeoutMs: -1 }), RangeError);
  });

  test('transaction commits on return, rolls back on throw, and refuses nesting and async callbacks', () => {
    const db = openDatabase(freshPath());
    db.exec('CREATE TABLE items (name TEXT)');
    const count = (): unknown => db.prepare('SELECT count(*) AS n FROM items').get()?.['n'];
    assert.equal(transaction(db, () => db.prepare("INSERT INTO items VALUES ('kept')").run().changes), 1);
    assert.throws(() =>
      transaction(db, () => {
        db.exec("INSERT INTO items VALUES ('dropped')");
        throw new Error('boom');
      }), /boom/);
    assert.equal(count(), 1);
    assert.throws(() => transaction(db, () => transaction(db, () => 1)), /do not nest/);
    assert.throws(() => transaction(db, async () => db.exec("INSERT INTO items VALUES ('async')")), /synchronous/);
    assert.equal(count(), 1);
    assert.equal(db.isTransaction, false);
    db.close();
  });
});
