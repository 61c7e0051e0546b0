// A child process for the ledger's invariant tests: the LedgerProcessor on the processor runtime,
// on either deployment:
//   ledger-child.ts embedded <data directory> [pause ms]  — the two SQLite files (log.db, store.db);
//   ledger-child.ts distributed [pause ms]                — Kafka (namespaced) and the Cassandra
//     ledger store, from the TALLY_* settings in its environment (a short Kafka session, so a
//     SIGKILLed member's partitions move on quickly).
// It says `{"ready":true}` on stdout once its runtime runs, `{"settling":…}` before each settle (a
// test that freezes it on that line makes it settle from a stale view when it wakes up),
// `{"conflict":…}` when the store refuses a settle (another member settled those offsets), and
// `{"settled":…}` after each settle, then dawdles `pause ms` before the replies are appended: a test
// that kills it on that line hits the window between the ledger's commit and the log's (replies
// unsent, offsets uncommitted).
// SIGTERM drains it; SIGKILL is what the tests send. Batches are kept small: many settles per run.
import { join } from 'node:path';
import { writeSync } from 'node:fs';
import { SqliteEventLog } from '../../src/adapters/sqlite/event-log.ts';
import { SqliteLedgerStore } from '../../src/adapters/sqlite/ledger-store.ts';
import type { EventLog } from '../../src/core/ports/event-log.ts';
import { LedgerConflictError, type LedgerStore, type SettleBatch } from '../../src/core/ports/ledger-store.ts';
import { LedgerProcessor } from '../../src/payments/processor.ts';
import { ProcessorRuntime } from '../../src/runtime/processor-runtime.ts';

const usage = 'usage: ledger-child.ts embedded <data directory> [pause ms] | ledger-child.ts distributed [pause ms]';
const [deployment, ...rest] = process.argv.slice(2);
const pauseText = deployment === 'embedded' ? rest[1] : rest[0];
const pauseMs = Number(pauseText ?? 0);
if ((deployment !== 'embedded' && deployment !== 'distributed') || (deployment === 'embedded' && rest[0] === undefined) || !Number.isSafeInteger(pauseMs)) {
  throw new Error(usage);
}

/** Synchronous, so a line written before a kill reaches the parent. */
const report = (line: object): void => {
  writeSync(1, `${JSON.stringify(line)}\n`);
};

/** The store as the processor sees it, announcing each settle and pausing before the replies. */
function reportingStore(store: LedgerStore): LedgerStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'settle') {
        return async (batch: SettleBatch) => {
          report({ settling: batch.fromOffset, partition: batch.partition });
          const decisions = await target.settle(batch).catch((error: unknown) => {
            // The store refused a stale view (another member settled these offsets): say so, the test counts them.
            if (error instanceof LedgerConflictError) report({ conflict: error.message, partition: batch.partition });
            throw error;
          });
          report({ settled: batch.throughOffset, partition: batch.partition });
          if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
          return decisions;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      // Bound to the store itself: its private fields are not the proxy's.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

interface Opened {
  readonly log: EventLog;
  readonly ledger: LedgerStore;
  close(): Promise<void>;
}

async function openEmbedded(dataDir: string): Promise<Opened> {
  const log = SqliteEventLog.open({ path: join(dataDir, 'log.db'), sessionTimeoutMs: 3_000, heartbeatIntervalMs: 300 });
  const ledger = SqliteLedgerStore.create({ db: join(dataDir, 'store.db') });
  return { log, ledger, close: async () => void (await Promise.all([log.close(), ledger.close()])) };
}

async function openDistributed(): Promise<Opened> {
  // Imported here: the embedded child never loads the Kafka and Cassandra clients.
  const { openDistributedLedger } = await import('./ledger-distributed.ts');
  return openDistributedLedger(process.env);
}

const opened = deployment === 'embedded' ? await openEmbedded(rest[0]!) : await openDistributed();
const logger = {
  info() {},
  warn(object: object, message: string) {
    report({ level: 'warn', message, error: String((object as { err?: unknown }).err ?? '') });
  },
  error(object: object, message: string) {
    report({ level: 'error', message, error: String((object as { err?: unknown }).err ?? '') });
  },
};
// No linger: with pollRecordsMax below limits.pollLingerRecordsMin, a full poll makes the runtime
// poll again for 0 records, which throws and stops the loop (reported to the lead).
const runtime = new ProcessorRuntime({
  log: opened.log, logger, processor: new LedgerProcessor({ ledger: reportingStore(opened.ledger), log: opened.log }),
  pollRecordsMax: 400, pollWaitMs: 50, pollLingerMs: 0, retryBaseDelayMs: 5, retryDelayMsMax: 200,
});
runtime.start();
// Before saying ready: until a listener exists, a SIGTERM kills the process outright (the OS default).
process.once('SIGTERM', () => {
  void runtime.stop()
    .then(() => opened.close())
    .then(() => process.exit(0), (error: unknown) => {
      report({ level: 'error', message: 'stop failed', error: String(error) });
      process.exit(1);
    });
});
report({ ready: true, pid: process.pid });
