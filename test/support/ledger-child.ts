// A child process for the ledger's invariant tests: the LedgerProcessor on the processor runtime,
// over the embedded deployment's two SQLite files (log.db, store.db) in the given directory. It
// says `{"ready":true}` on stdout once its runtime runs, and `{"settled":…}` after each settle,
// then dawdles `pauseMs` before the replies are appended: a test that kills it on that line hits
// the window between the ledger's commit and the log's (replies unsent, offsets uncommitted).
// SIGTERM drains it; SIGKILL is what the tests send. Batches are kept small: many settles per run.
import { join } from 'node:path';
import { writeSync } from 'node:fs';
import { SqliteEventLog } from '../../src/adapters/sqlite/event-log.ts';
import { SqliteLedgerStore } from '../../src/adapters/sqlite/ledger-store.ts';
import type { Decision } from '../../src/core/payments/ledger.ts';
import type { SettleBatch } from '../../src/core/ports/ledger-store.ts';
import { LedgerProcessor } from '../../src/payments/processor.ts';
import { ProcessorRuntime } from '../../src/runtime/processor-runtime.ts';

const [dataDir, pauseText] = process.argv.slice(2);
const pauseMs = Number(pauseText ?? 0);
if (dataDir === undefined || !Number.isSafeInteger(pauseMs)) throw new Error('usage: ledger-child.ts <data directory> [pause ms after each settle]');

/** Synchronous, so a line written before a kill reaches the parent. */
const report = (line: object): void => {
  writeSync(1, `${JSON.stringify(line)}\n`);
};

class ReportingLedgerStore extends SqliteLedgerStore {
  override async settle(batch: SettleBatch): Promise<Decision[]> {
    const decisions = await super.settle(batch);
    report({ settled: batch.throughOffset, partition: batch.partition });
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    return decisions;
  }
}

const log = SqliteEventLog.open({ path: join(dataDir, 'log.db'), sessionTimeoutMs: 3_000, heartbeatIntervalMs: 300 });
const ledger = new ReportingLedgerStore({ db: join(dataDir, 'store.db') });
const logger = {
  info() {},
  warn(object: object, message: string) {
    report({ level: 'warn', message, error: String((object as { err?: unknown }).err ?? '') });
  },
  error(object: object, message: string) {
    report({ level: 'error', message, error: String((object as { err?: unknown }).err ?? '') });
  },
};
const runtime = new ProcessorRuntime({
  log, logger, processor: new LedgerProcessor({ ledger, log }),
  pollRecordsMax: 400, pollWaitMs: 50, pollLingerMs: 5, retryBaseDelayMs: 5, retryDelayMsMax: 200,
});
runtime.start();
report({ ready: true, pid: process.pid });

process.once('SIGTERM', () => {
  void runtime.stop()
    .then(() => Promise.all([log.close(), ledger.close()]))
    .then(() => process.exit(0), (error: unknown) => {
      report({ level: 'error', message: 'stop failed', error: String(error) });
      process.exit(1);
    });
});
