// The settle phase of the `ledger` benchmark (bench/scenarios/ledger.ts), and the ledger audit both
// of its phases use. Settle throughput of the SQLite ledger store alone, in this process:
// batches of random transfers among 10,000 customer accounts (funded first from overdraft
// accounts), each batch one settle() — one transaction with synchronous=FULL, as the ledger
// processor runs it — without HTTP, the log or replies: the ledger's own ceiling. Uniformly random
// accounts are the worst case for the per-account indexes: every batch dirties pages all over
// them. Afterwards every account's entries are replayed (see auditStore).
// Run alone, with knobs for tuning experiments the scenario does not take:
//   node bench/ledger-settle.ts [--batches=200] [--batch-commands=1000]
//     [--cache-mib=N (default: openDatabase's)] [--wal-autocheckpoint=PAGES (default: openDatabase's)]
// The last two override the connection's page cache and checkpoint interval: a commit of 1,000
// random transfers writes ~3,000 pages, so with SQLite's defaults every commit also checkpoints.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomInteger, seededRandom, type Random } from '../src/adapters/memory/prng.ts';
import { openDatabase } from '../src/adapters/sqlite/database.ts';
import { SqliteLedgerStore } from '../src/adapters/sqlite/ledger-store.ts';
import { limits } from '../src/core/limits.ts';
import type { Account, TransferCommand } from '../src/core/payments/ledger.ts';
import { formatCount, formatMs, quantile } from './report.ts';

const settleCustomers = 10_000;
const settleFundingAccounts = 10;
const settleFundingAmount = 1_000_000n;
const settleAmountMax = 5_000;
const settleMerchant = 'm_bench';
const settleStream = 'ledger:payments.transfer.requested';
/** The customers are funded in batches of this many transfers (not measured). */
const fundingBatchCommands = 1_000;

export interface SettleOptions {
  readonly batches: number;
  readonly batchCommands: number;
  /** PRAGMAs applied after openDatabase's own (e.g. `cache_size = -65536`): tuning experiments. */
  readonly pragmas?: readonly string[];
}

export interface SettleResult {
  readonly transfers: number;
  readonly succeeded: number;
  readonly elapsedMs: number;
  readonly cpu: NodeJS.CpuUsage;
  /** Milliseconds per settle() of the measured batches. */
  readonly latenciesMs: number[];
  readonly audit: Audit;
  /** Entries replayed by the audit (the funding's too). */
  readonly entries: number;
}

/** Runs the settle workload on a fresh store in a temporary directory and audits it afterwards. */
export async function measureSettle(options: SettleOptions): Promise<SettleResult> {
  const random = seededRandom(11);
  const directory = mkdtempSync(join(tmpdir(), 'tally-bench-ledger-'));
  const db = openDatabase(join(directory, 'store.db'));
  for (const pragma of options.pragmas ?? []) db.exec(`PRAGMA ${pragma}`);
  const store = SqliteLedgerStore.create({ db });
  let offset = 0;
  let nextId = 0;
  const command = (from: string, to: string, amount: bigint): TransferCommand => ({
    id: `t_${nextId++}`, merchantId: settleMerchant, fromAccountId: from, toAccountId: to, amount, currency: 'USD', description: null, metadata: {}, requestedMs: Date.now(),
  });
  /** Settles the commands as the next offsets; returns the time taken and how many succeeded. */
  const settle = async (commands: TransferCommand[]): Promise<{ ms: number; succeeded: number }> => {
    const startedMs = performance.now();
    const decisions = await store.settle({ stream: settleStream, partition: 0, fromOffset: offset, throughOffset: offset + commands.length - 1, commands, settledMs: Date.now() });
    const ms = performance.now() - startedMs;
    offset += commands.length;
    if (decisions.length !== commands.length) throw new Error('ledger settle: one decision per command expected');
    return { ms, succeeded: decisions.filter((decision) => decision.kind === 'succeeded').length };
  };
  const newAccount = (id: string, allowOverdraft: boolean): Account =>
    ({ id, merchantId: settleMerchant, currency: 'USD', name: null, allowOverdraft, metadata: {}, balance: 0n, createdMs: 0 });

  try {
    for (let index = 0; index < settleFundingAccounts; index++) await store.createAccount(newAccount(`fund_${index}`, true));
    // One transaction for the set-up (the bench owns the connection): 10,000 fsyncs would take a while.
    db.exec('BEGIN');
    for (let index = 0; index < settleCustomers; index++) await store.createAccount(newAccount(`acc_${index}`, false));
    db.exec('COMMIT');
    for (let first = 0; first < settleCustomers; first += fundingBatchCommands) {
      await settle(Array.from({ length: fundingBatchCommands }, (_, index) =>
        command(`fund_${index % settleFundingAccounts}`, `acc_${first + index}`, settleFundingAmount)));
    }

    const latenciesMs: number[] = [];
    let succeeded = 0;
    const startedMs = performance.now();
    const startedCpu = process.cpuUsage();
    for (let batch = 0; batch < options.batches; batch++) {
      const settled = await settle(Array.from({ length: options.batchCommands }, () => {
        const [from, to] = twoDistinct(random, settleCustomers);
        return command(`acc_${from}`, `acc_${to}`, BigInt(randomInteger(random, 1, settleAmountMax + 1)));
      }));
      latenciesMs.push(settled.ms);
      succeeded += settled.succeeded;
    }
    const elapsedMs = performance.now() - startedMs;
    const cpu = process.cpuUsage(startedCpu);
    return { transfers: options.batches * options.batchCommands, succeeded, elapsedMs, cpu, latenciesMs, ...(await auditStore(store)) };
  } finally {
    await store.close();
    db.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Every account's entries replayed from zero: each balance after, the final balance, and each transfer's two sides. */
async function auditStore(store: SqliteLedgerStore): Promise<{ audit: Audit; entries: number }> {
  const audit = new Audit();
  const accounts: Account[] = [];
  for (let after: string | null = null; ;) {
    const page = await store.listAccounts({ merchantId: settleMerchant, limit: limits.pageItemsMax, startingAfter: after });
    accounts.push(...page.items);
    if (!page.hasMore) break;
    after = page.items[page.items.length - 1]!.id;
  }
  audit.checkBalances(accounts);
  /** Per transfer: how many entries it has and their sum (a debit and its credit: 2 and 0). */
  const sides = new Map<string, { count: number; sum: bigint }>();
  let entries = 0;
  for (const account of accounts) {
    let running = 0n;
    for (const entry of await store.listEntries(settleMerchant, account.id)) {
      running += entry.amount;
      entries++;
      if (entry.balanceAfter !== running) audit.violation(`${account.id}: entry of ${entry.transferId} says balance ${entry.balanceAfter}, the replay ${running}`);
      if (!account.allowOverdraft && running < 0n) audit.violation(`${account.id} went below zero (${running}) at ${entry.transferId}`);
      const side = sides.get(entry.transferId) ?? { count: 0, sum: 0n };
      sides.set(entry.transferId, { count: side.count + 1, sum: side.sum + entry.amount });
    }
    if (running !== account.balance) audit.violation(`${account.id}: balance ${account.balance}, replay of its entries ${running}`);
  }
  for (const [transferId, side] of sides) {
    if (side.count !== 2 || side.sum !== 0n) audit.violation(`transfer ${transferId}: ${side.count} entries summing to ${side.sum} (one debit and one credit expected)`);
  }
  audit.transfers = sides.size;
  return { audit, entries };
}

export function settleSummary(result: SettleResult): string {
  const seconds = cpuSeconds(result.cpu);
  return `${formatCount(result.transfers)} random transfers (${formatCount(result.succeeded)} succeeded) among ${formatCount(settleCustomers)} accounts ` +
    `in ${result.latenciesMs.length} settles, ${(result.elapsedMs / 1000).toFixed(1)} s, CPU ${seconds.toFixed(1)} s (user ${Math.round((100 * result.cpu.user) / 1e6 / seconds)}%); ` +
    `settle p50 ${formatMs(quantile(result.latenciesMs, 0.5))}, p99 ${formatMs(quantile(result.latenciesMs, 0.99))}; ${settleAuditSummary(result)}`;
}

export function settleAuditSummary(result: SettleResult): string {
  return result.audit.summary(`${formatCount(result.entries)} entries replayed`);
}

export function settlePerSecond(result: SettleResult): number {
  return result.transfers / (result.elapsedMs / 1000);
}

export const cpuSeconds = (cpu: NodeJS.CpuUsage): number => (cpu.user + cpu.system) / 1e6;

export interface AuditedAccount {
  readonly id: string;
  readonly balance: bigint;
  readonly allowOverdraft: boolean;
}

/** Violations of the ledger's invariants found afterwards (none: they hold), and what was checked. */
export class Audit {
  readonly #violations: string[] = [];
  accounts = 0;
  transfers = 0;

  /** Money is conserved, and nothing without overdraft is below zero. */
  checkBalances(accounts: readonly AuditedAccount[]): void {
    this.accounts = accounts.length;
    const total = accounts.reduce((sum, account) => sum + account.balance, 0n);
    if (total !== 0n) this.violation(`balances sum to ${total}, not 0`);
    for (const account of accounts) {
      if (!account.allowOverdraft && account.balance < 0n) this.violation(`${account.id} is below zero (${account.balance}) without overdraft`);
    }
  }

  violation(message: string): void {
    this.#violations.push(message);
  }

  holds(): boolean {
    return this.#violations.length === 0;
  }

  /** What was checked, and the first violations if any; `detail` says what else the phase checked. */
  summary(detail: string): string {
    const checked = `${formatCount(this.accounts)} accounts, ${formatCount(this.transfers)} transfers, ${detail}`;
    if (this.holds()) return `hold: sum of balances 0, none below 0 without overdraft; ${checked}`;
    return `BROKEN (${this.#violations.length}): ${this.#violations.slice(0, 3).join('; ')}; ${checked}`;
  }
}

/** Two different indexes below `count`, uniformly. */
export function twoDistinct(random: Random, count: number): [number, number] {
  const first = randomInteger(random, 0, count);
  return [first, (first + randomInteger(random, 1, count)) % count];
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    options: { batches: { type: 'string' }, 'batch-commands': { type: 'string' }, 'cache-mib': { type: 'string' }, 'wal-autocheckpoint': { type: 'string' } },
  });
  const pragmas = [
    ...(args['cache-mib'] === undefined ? [] : [`cache_size = -${Number(args['cache-mib']) * 1024}`]),
    ...(args['wal-autocheckpoint'] === undefined ? [] : [`wal_autocheckpoint = ${Number(args['wal-autocheckpoint'])}`]),
  ];
  const result = await measureSettle({ batches: Number(args.batches ?? 200), batchCommands: Number(args['batch-commands'] ?? 1_000), pragmas });
  process.stdout.write(`${formatCount(settlePerSecond(result))} transfers/s${pragmas.length ? ` (PRAGMA ${pragmas.join(', ')})` : ''}: ${settleSummary(result)}\n`);
  if (!result.audit.holds()) process.exitCode = 1;
}
