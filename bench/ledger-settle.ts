// Settle throughput of the SQLite ledger store (not a test): 1,000-command batches of random
// transfers among 10,000 customer accounts (funded first from overdraft accounts), each batch one
// settle() — one transaction with synchronous=FULL, as the ledger processor runs it. Prints
// transfers/s applied (wall clock, and per CPU second: the machine may be shared), per-batch
// latency, and checks the invariants afterwards. Uniformly random accounts are the worst case for
// the per-account indexes: every batch dirties pages all over them.
// Run: node bench/ledger-settle.ts [--batches=200] [--batch-commands=1000]
//        [--cache-mib=N (default: SQLite's 2)] [--wal-autocheckpoint=PAGES (default: SQLite's 1000)]
// The last two tune the connection as openDatabase could: a commit of 1,000 random transfers
// writes ~3,000 pages, so with the defaults every commit also checkpoints.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomInteger, seededRandom } from '../src/adapters/memory/prng.ts';
import { openDatabase } from '../src/adapters/sqlite/database.ts';
import { SqliteLedgerStore } from '../src/adapters/sqlite/ledger-store.ts';
import type { TransferCommand } from '../src/core/payments/ledger.ts';

const { values: args } = parseArgs({
  options: { batches: { type: 'string' }, 'batch-commands': { type: 'string' }, 'cache-mib': { type: 'string' }, 'wal-autocheckpoint': { type: 'string' } },
});
const batches = Number(args.batches ?? 200);
const batchCommands = Number(args['batch-commands'] ?? 1_000);
const cacheMiB = args['cache-mib'] === undefined ? null : Number(args['cache-mib']);
const walAutocheckpoint = args['wal-autocheckpoint'] === undefined ? null : Number(args['wal-autocheckpoint']);
const customers = 10_000;
const fundingAccounts = 10;
const merchantId = 'm_bench';
const stream = 'ledger:payments.transfer.requested';

const random = seededRandom(11);
const directory = mkdtempSync(join(tmpdir(), 'tally-bench-ledger-'));
const db = openDatabase(join(directory, 'store.db'));
if (cacheMiB !== null) db.exec(`PRAGMA cache_size = -${cacheMiB * 1024}`);
if (walAutocheckpoint !== null) db.exec(`PRAGMA wal_autocheckpoint = ${walAutocheckpoint}`);
const store = SqliteLedgerStore.create({ db });
let offset = 0;
let nextId = 0;

function command(from: string, to: string, amount: bigint): TransferCommand {
  return { id: `t_${nextId++}`, merchantId, fromAccountId: from, toAccountId: to, amount, currency: 'USD', description: null, metadata: {}, requestedMs: Date.now() };
}

/** Settles the commands as the next offsets; returns the time taken and how many succeeded. */
async function settle(commands: TransferCommand[]): Promise<{ ms: number; succeeded: number }> {
  const startedMs = performance.now();
  const decisions = await store.settle({ stream, partition: 0, fromOffset: offset, throughOffset: offset + commands.length - 1, commands, settledMs: Date.now() });
  const ms = performance.now() - startedMs;
  offset += commands.length;
  if (decisions.length !== commands.length) throw new Error('one decision per command');
  return { ms, succeeded: decisions.filter((decision) => decision.kind === 'succeeded').length };
}

try {
  for (let index = 0; index < fundingAccounts; index++) {
    await store.createAccount({ id: `fund_${index}`, merchantId, currency: 'USD', name: null, allowOverdraft: true, metadata: {}, balance: 0n, createdMs: 0 });
  }
  // One transaction for the set-up (the bench owns the connection): 10,000 fsyncs would take a while.
  db.exec('BEGIN');
  for (let index = 0; index < customers; index++) {
    await store.createAccount({ id: `acc_${index}`, merchantId, currency: 'USD', name: null, allowOverdraft: false, metadata: {}, balance: 0n, createdMs: 1 });
  }
  db.exec('COMMIT');
  for (let first = 0; first < customers; first += 1_000) {
    await settle(Array.from({ length: 1_000 }, (_, index) => command(`fund_${index % fundingAccounts}`, `acc_${first + index}`, 1_000_000n)));
  }

  const latencies: number[] = [];
  let succeeded = 0;
  const startedMs = performance.now();
  const startedCpu = process.cpuUsage();
  for (let batch = 0; batch < batches; batch++) {
    const commands = Array.from({ length: batchCommands }, () => {
      const from = randomInteger(random, 0, customers);
      const to = (from + randomInteger(random, 1, customers)) % customers;
      return command(`acc_${from}`, `acc_${to}`, BigInt(randomInteger(random, 1, 5_000)));
    });
    const settled = await settle(commands);
    latencies.push(settled.ms);
    succeeded += settled.succeeded;
  }
  const elapsedMs = performance.now() - startedMs;
  const cpu = process.cpuUsage(startedCpu);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const cpuShare = `user ${Math.round((100 * cpu.user) / 1e6 / cpuSeconds)}%`;
  const transfers = batches * batchCommands;
  latencies.sort((a, b) => a - b);
  const percentile = (p: number): string => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
  const tuning = `page cache ${cacheMiB === null ? 'default' : `${cacheMiB} MiB`}, wal_autocheckpoint ${walAutocheckpoint ?? 'default'}`;
  process.stdout.write(`${transfers} transfers in ${batches} settles of ${batchCommands} (${tuning}): ` +
    `${Math.round(transfers / (elapsedMs / 1000))} transfers/s, ${Math.round(transfers / cpuSeconds)} per CPU second (${cpuShare}) ` +
    `(${succeeded} succeeded); settle p50 ${percentile(0.5)} ms, p99 ${percentile(0.99)} ms\n`);

  // Afterwards: money is conserved and nothing without overdraft is below zero.
  const totals = db.prepare('SELECT sum(balance) AS total, min(CASE WHEN allow_overdraft = 0 THEN balance END) AS lowest FROM ledger_accounts').get();
  if (Number(totals?.total) !== 0 || Number(totals?.lowest) < 0) throw new Error(`invariants broken: ${JSON.stringify(totals)}`);
  process.stdout.write('invariants hold: balances sum to 0, no account without overdraft below 0\n');
} finally {
  await store.close();
  db.close();
  rmSync(directory, { recursive: true, force: true });
}
