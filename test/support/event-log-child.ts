// A child process for the SQLite event log's crash tests: it appends or consumes, reports what
// the log acknowledged on stdout (one JSON line each, written synchronously), then SIGKILLs itself.

import { writeSync } from 'node:fs';
import { SqliteEventLog } from '../../src/adapters/sqlite/event-log.ts';

const [mode, path, countText] = process.argv.slice(2);
const count = Number(countText);
if (path === undefined || !Number.isSafeInteger(count) || count < 1) {
  throw new Error('usage: event-log-child.ts append|consume <path> <count>');
}
const report = (line: object): void => {
  // Synchronous, so every line written before the kill reaches the parent.
  writeSync(1, `${JSON.stringify(line)}\n`);
};

/** Keeps 50 appends in flight and dies right after the count-th acknowledgement, mid-stream. */
async function appendThenDie(log: SqliteEventLog): Promise<void> {
  await log.ensureTopic('crash', 4);
  const inFlightMax = 50;
  let acknowledged = 0;
  let sent = 0;
  const sendOne = (): void => {
    const value = `value-${sent}`;
    const key = `key-${sent % 13}`;
    sent += 1;
    void log.append('crash', [{ key, value }]).then((positions) => {
      const position = positions[0]!;
      report({ value, partition: position.partition, offset: position.offset });
      acknowledged += 1;
      if (acknowledged === count) process.kill(process.pid, 'SIGKILL');
      sendOne();
    });
  };
  for (let index = 0; index < inFlightMax; index++) sendOne();
}

/** Consumes, commits after every batch but the last, and dies holding its lease. */
async function consumeThenDie(log: SqliteEventLog): Promise<void> {
  const consumer = log.consumer({ group: 'crash-group', topics: ['consumed'] });
  let received = 0;
  for (;;) {
    const batch = await consumer.poll(10, 100);
    if (batch.length === 0) continue;
    received += batch.length;
    const last = batch[batch.length - 1]!;
    if (received >= count) {
      report({ uncommittedFrom: batch[0]!.offset, lastOffset: last.offset });
      process.kill(process.pid, 'SIGKILL');
    }
    await consumer.commit([{ topic: 'consumed', partition: last.partition, offset: last.offset + 1 }]);
    report({ committed: last.offset + 1 });
  }
}

const sessionTimeoutMs = Number(process.env.CHILD_SESSION_TIMEOUT_MS ?? 1000);
const log = SqliteEventLog.open({ path, sessionTimeoutMs, heartbeatIntervalMs: 200, pollIntervalMsMax: Math.max(1000, sessionTimeoutMs) });
if (mode === 'append') await appendThenDie(log);
else if (mode === 'consume') await consumeThenDie(log);
else throw new Error(`unknown mode ${mode}`);
