// The ledger's invariants on the embedded deployment, TigerBeetle's auditor style: a seeded
// workload (many accounts, funding accounts with overdraft funded first, random transfers from
// several concurrent producers, redeliveries, reused ids, malformed records) is appended to the
// SQLite log while two child processes run the LedgerProcessor on the SQLite files and are
// SIGKILLed at random moments. Afterwards an independent reference model replays every transfer
// in the order the ledger decided it and must agree with each decision and each entry, and the
// invariants are checked from the entries, not only the final balances. LEDGER_TEST_SEED=<seed>
// replays a run's workload and kill moments (not the OS scheduling).
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomInteger, seededRandom, type Random } from '../../src/adapters/memory/prng.ts';
import { openDatabase } from '../../src/adapters/sqlite/database.ts';
import { SqliteEventLog } from '../../src/adapters/sqlite/event-log.ts';
import { SqliteLedgerStore } from '../../src/adapters/sqlite/ledger-store.ts';
import { samePayload, type Account, type Entry, type Transfer, type TransferCommand, type TransferFailureCode } from '../../src/core/payments/ledger.ts';
import { encodeTransferCommand, ledgerGroup, transferRequestedTopic } from '../../src/payments/codec.ts';
import { ledgerStream } from '../../src/payments/processor.ts';
import { ensureLedgerTopics, ledgerCaughtUp, readReplies } from '../support/ledger.ts';
import { sleep, withTimeout } from '../support/processes.ts';

const childPath = resolve(import.meta.dirname, '../support/ledger-child.ts');
const repositoryRoot = resolve(import.meta.dirname, '../..');
/** A killed deployment may need this long to work off its backlog on a busy 2-core machine. */
const catchUpMsMax = 45_000;
const childStartMsMax = 20_000;
/** How long members dawdle between a settle and its replies: a kill on the settle line lands in that window. */
const pauseAfterSettleMs = 20;
/** A kill waiting for a settle gives up waiting after this (the member may have nothing to do). */
const settleWaitMsMax = 3_000;

function chooseSeed(t: TestContext): number {
  const seed = process.env.LEDGER_TEST_SEED ? Number(process.env.LEDGER_TEST_SEED) : Date.now() % 2 ** 31;
  t.diagnostic(`seed ${seed} (rerun with LEDGER_TEST_SEED=${seed})`);
  return seed;
}

interface LedgerMember {
  kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<{ code: number | null; signal: string | null }>;
  /** Resolves when the member has settled its next batch (its replies are not appended yet). */
  nextSettle(): Promise<void>;
}

/** Processor children over one data directory; every one still running is SIGKILLed on close. */
class LedgerChildren {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'tally-ledger-e2e-'));
  readonly #running = new Set<ChildProcess>();
  #output = '';
  /** Last resort when the test process exits without its `after` hooks: no orphans. */
  readonly #killOnExit = (): void => {
    for (const child of this.#running) child.kill('SIGKILL');
  };

  constructor() {
    process.once('exit', this.#killOnExit);
  }

  /** Starts a member that pauses `pauseMs` after each settle, and resolves once it runs. */
  async start(pauseMs: number): Promise<LedgerMember> {
    const child = spawn(process.execPath, [childPath, this.dataDir, String(pauseMs)], { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#running.add(child);
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.#running.delete(child);
        resolveExit({ code, signal });
      });
    });
    const settled = new EventTarget();
    const ready = new Promise<void>((resolveReady, reject) => {
      let pending = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        this.#keep(chunk);
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          if (line.includes('"ready":true')) resolveReady();
          if (line.includes('"settled":')) settled.dispatchEvent(new Event('settled'));
        }
      });
      void exited.then((exit) => reject(new Error(`a ledger child exited before it was ready (${JSON.stringify(exit)})\n${this.#output}`)));
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.#keep(chunk));
    await withTimeout(ready, childStartMsMax, `a ledger child was not ready within ${childStartMsMax} ms\n${this.#output}`);
    return {
      kill: async (signal) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return exited;
      },
      nextSettle: () => new Promise((resolveSettle) => settled.addEventListener('settled', () => resolveSettle(), { once: true })),
    };
  }

  /** The children's last output lines: errors and warnings explain a failure. */
  output(): string {
    return this.#output;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#running].map((child) => {
      const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
      child.kill('SIGKILL');
      return exited;
    }));
    process.removeListener('exit', this.#killOnExit);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  #keep(chunk: string): void {
    this.#output = (this.#output + chunk).slice(-32 * 1024);
  }
}

/** Waits until the ledger group has committed every command (every reply is then durable). */
async function waitCaughtUp(log: SqliteEventLog, children: LedgerChildren): Promise<void> {
  const deadline = Date.now() + catchUpMsMax;
  while (!(await ledgerCaughtUp(log))) {
    if (Date.now() > deadline) throw new Error(`the ledger processors did not catch up within ${catchUpMsMax} ms\n${children.output()}`);
    await sleep(50);
  }
}

/** True when some partition's ledger is settled past the group's commit: the redelivery must answer from the store. */
function settledAheadOfCommit(dataDir: string): boolean {
  const store = openDatabase(join(dataDir, 'store.db'), { readOnly: true });
  const log = openDatabase(join(dataDir, 'log.db'), { readOnly: true });
  try {
    const settled = store.prepare('SELECT log_partition AS partition, settled_offset AS offset FROM ledger_offsets WHERE stream = ?').all(ledgerStream);
    const committed = new Map(
      log.prepare('SELECT c.partition AS partition, c.next_offset AS next FROM log_committed c JOIN log_topics t USING (topic_id) WHERE c.group_name = ? AND t.name = ?')
        .all(ledgerGroup, transferRequestedTopic).map((row) => [Number(row.partition), Number(row.next)]),
    );
    return settled.some((row) => Number(row.offset) + 1 > (committed.get(Number(row.partition)) ?? 0));
  } finally {
    store.close();
    log.close();
  }
}

/** Appends until the log takes the records (a busy log is the producer's cue to resend). */
async function appendCommands(log: SqliteEventLog, records: readonly { key: string; value: string }[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await log.append(transferRequestedTopic, records);
      return;
    } catch (error) {
      if (attempt >= 20) throw error;
      await sleep(20 * attempt);
    }
  }
}

const toRecord = (command: TransferCommand): { key: string; value: string } => ({ key: command.fromAccountId, value: encodeTransferCommand(command) });

function makeAccount(id: string, merchantId: string, currency: string, allowOverdraft: boolean): Account {
  return { id, merchantId, currency, name: null, allowOverdraft, metadata: {}, balance: 0n, createdMs: 1_700_000_000_000 };
}

function makeCommand(id: string, from: Account, to: Account | string, amount: bigint, overrides: Partial<TransferCommand> = {}): TransferCommand {
  return {
    id, merchantId: from.merchantId, fromAccountId: from.id, toAccountId: typeof to === 'string' ? to : to.id, amount,
    currency: from.currency, description: null, metadata: {}, requestedMs: 1_700_000_000_000, ...overrides,
  };
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[randomInteger(random, 0, items.length)]!;
}

/**
 * The reference model (the auditor): the ledger's rules written out on their own. Replaying the
 * transfers in the ledger's decision order, it must reach the same decision and the same balances.
 */
class ReferenceLedger {
  readonly #accounts: ReadonlyMap<string, Account>;
  readonly balances = new Map<string, bigint>();

  constructor(accounts: ReadonlyMap<string, Account>) {
    this.#accounts = accounts;
    for (const id of accounts.keys()) this.balances.set(id, 0n);
  }

  /** Applies the command if the rules allow it; returns the failure code, or null when it succeeded. */
  apply(command: TransferCommand): TransferFailureCode | null {
    const from = this.#accounts.get(command.fromAccountId);
    const to = this.#accounts.get(command.toAccountId);
    if (!from || !to || from.merchantId !== command.merchantId || to.merchantId !== command.merchantId) return 'account_not_found';
    if (from.id === to.id) return 'same_account';
    if (from.currency !== command.currency || to.currency !== command.currency) return 'currency_mismatch';
    const fromBalance = this.balances.get(from.id)!;
    if (!from.allowOverdraft && fromBalance < command.amount) return 'insufficient_funds';
    this.balances.set(from.id, fromBalance - command.amount);
    this.balances.set(to.id, this.balances.get(to.id)! + command.amount);
    return null;
  }
}

interface Workload {
  readonly accounts: Account[];
  readonly funding: TransferCommand[];
  /** Per producer, the appends it makes in order: commands, or a raw malformed record. */
  readonly producers: (TransferCommand | string)[][][];
  /** Reused ids whose original was appended earlier on the same partition: the original must stand. */
  readonly reusedSamePartition: { original: TransferCommand; variant: TransferCommand }[];
  /** Transfers from an account that had nothing when they were decided, redelivered once it has funds. */
  readonly lateFailures: TransferCommand[];
  readonly lateFunding: TransferCommand[];
}

const merchants = ['m_alpha', 'm_beta'] as const;
const currencies = ['USD', 'EUR'] as const;

function generateWorkload(random: Random, options: { producers: number; appendsPerProducer: number }): Workload {
  const accounts: Account[] = [];
  const funders: Account[] = [];
  const customers: Account[] = [];
  const late: Account[] = [];
  for (const merchantId of merchants) {
    for (const currency of currencies) {
      for (let index = 0; index < 2; index++) funders.push(makeAccount(`fund_${merchantId}_${currency}_${index}`, merchantId, currency, true));
      for (let index = 0; index < 12; index++) customers.push(makeAccount(`acc_${merchantId}_${currency}_${index}`, merchantId, currency, false));
    }
    late.push(makeAccount(`late_${merchantId}`, merchantId, 'USD', false));
  }
  accounts.push(...funders, ...customers, ...late);
  const sameBook = (account: Account, others: readonly Account[]): Account[] =>
    others.filter((other) => other.merchantId === account.merchantId && other.currency === account.currency);

  let next = 0;
  const newId = (prefix: string): string => `${prefix}_${(next++).toString(36)}`;
  const funding: TransferCommand[] = [];
  for (const customer of customers) {
    for (let round = randomInteger(random, 1, 4); round > 0; round--) {
      funding.push(makeCommand(newId('tf'), pick(random, sameBook(customer, funders)), customer, BigInt(randomInteger(random, 500, 3000))));
    }
  }
  const lateFailures = late.map((account) => makeCommand(newId('tl'), account, pick(random, sameBook(account, customers)), 500n));
  const lateFunding = late.map((account) => makeCommand(newId('tlf'), pick(random, sameBook(account, funders)), account, 1000n));

  /** A new command: mostly transfers between two customers of one book, plus each kind of refusal. */
  const freshCommand = (roll: number, from: Account, amount: bigint): TransferCommand => {
    if (roll < 0.13) return makeCommand(newId('t'), pick(random, sameBook(from, funders)), from, amount * 3n);
    if (roll < 0.15) return makeCommand(newId('t'), from, pick(random, customers.filter((other) => other.currency !== from.currency)), amount);
    if (roll < 0.17) return makeCommand(newId('t'), from, 'acc_nobody', amount);
    if (roll < 0.18) return makeCommand(newId('t'), from, from, amount);
    if (roll < 0.2) return makeCommand(newId('t'), from, pick(random, customers.filter((other) => other.merchantId !== from.merchantId)), amount);
    return makeCommand(newId('t'), from, pick(random, sameBook(from, customers).filter((other) => other !== from)), amount);
  };
  const producers: (TransferCommand | string)[][][] = [];
  const reusedSamePartition: { original: TransferCommand; variant: TransferCommand }[] = [];
  for (let producer = 0; producer < options.producers; producer++) {
    /** New commands of this producer; an id is reused either on its own partition or from another account, never both. */
    const issued: TransferCommand[] = [];
    const reusedHere = new Set<string>();
    const reusedElsewhere = new Set<string>();
    const appends: (TransferCommand | string)[][] = [];
    for (let append = 0; append < options.appendsPerProducer; append++) {
      const chunk: (TransferCommand | string)[] = [];
      for (let size = randomInteger(random, 1, 12); size > 0; size--) {
        const roll = random();
        const from = pick(random, customers);
        const amount = BigInt(Math.floor(Math.exp(random() * Math.log(1500))) + 1);
        const earlier = issued.length > 0 ? pick(random, issued) : null;
        let item: TransferCommand | string;
        if (roll < 0.06 && earlier) {
          item = earlier; // a redelivery: the same command again
        } else if (roll < 0.09 && earlier && !reusedElsewhere.has(earlier.id)) {
          // The same id with another payload from the same account: same partition, after the original.
          item = { ...earlier, amount: earlier.amount + 1n, description: 'another payload' };
          reusedHere.add(earlier.id);
          reusedSamePartition.push({ original: earlier, variant: item });
        } else if (roll < 0.1 && earlier && !reusedHere.has(earlier.id)) {
          // The same id from another account: another partition, so either may be decided first.
          item = { ...earlier, fromAccountId: pick(random, customers.filter((other) => other.id !== earlier.fromAccountId)).id };
          reusedElsewhere.add(earlier.id);
        } else if (roll < 0.105) {
          item = '{"id": "not a transfer command"';
        } else {
          item = freshCommand(roll, from, amount);
          issued.push(item);
        }
        chunk.push(item);
      }
      appends.push(chunk);
    }
    producers.push(appends);
  }
  return { accounts, funding, producers, reusedSamePartition, lateFailures, lateFunding };
}

interface AuditInput {
  readonly store: SqliteLedgerStore;
  readonly dataDir: string;
  readonly accounts: ReadonlyMap<string, Account>;
  /** Every command appended (redeliveries included). */
  readonly appended: readonly TransferCommand[];
}

interface AuditReport {
  readonly transfers: number;
  readonly succeeded: number;
  readonly failures: Record<string, number>;
  readonly entries: number;
}

/** Every invariant of the issue, from the stored accounts, transfers and entries. */
async function audit({ store, dataDir, accounts, appended }: AuditInput): Promise<{ report: AuditReport; transfers: Map<string, Transfer> }> {
  // Accounts as the ledger lists them (through the pagination clients use).
  const stored = new Map<string, Account>();
  for (const merchantId of merchants) {
    let cursor: string | null = null;
    for (;;) {
      const page = await store.listAccounts({ merchantId, limit: 7, startingAfter: cursor });
      for (const account of page.items) stored.set(account.id, account);
      if (!page.hasMore) break;
      cursor = page.items[page.items.length - 1]!.id;
    }
  }
  assert.deepEqual([...stored.keys()].sort(), [...accounts.keys()].sort(), 'every account is listed once');

  // Every accepted command ends succeeded or failed; a reused id holds one of its payloads.
  const transfers = new Map<string, Transfer>();
  for (const command of appended) {
    if (transfers.has(command.id)) continue;
    const transfer = await store.getTransfer(command.merchantId, command.id);
    assert.ok(transfer, `transfer ${command.id} was appended but is not in the ledger`);
    assert.ok(transfer.status === 'succeeded' || transfer.status === 'failed', `transfer ${command.id} is ${transfer.status}`);
    transfers.set(command.id, transfer);
  }
  for (const command of appended) {
    const transfer = transfers.get(command.id)!;
    if (!samePayload(transfer, command)) {
      assert.ok(appended.some((other) => other.id === command.id && samePayload(transfer, other)), `transfer ${command.id} holds a payload nobody sent`);
    }
  }

  // Entries: the balanceAfter chain of every account starts at zero, never dips below zero without
  // overdraft, and ends at the balance; each transfer id has two entries if it succeeded, none if not.
  const entriesByTransfer = new Map<string, Entry[]>();
  const totals = new Map<string, bigint>();
  let entryCount = 0;
  for (const account of stored.values()) {
    let balance = 0n;
    for (const entry of await store.listEntries(account.merchantId, account.id)) {
      balance += entry.amount;
      assert.equal(entry.balanceAfter, balance, `${account.id}: entry of ${entry.transferId} breaks the balanceAfter chain`);
      if (!account.allowOverdraft) assert.ok(entry.balanceAfter >= 0n, `${account.id} went to ${entry.balanceAfter} (transfer ${entry.transferId})`);
      entriesByTransfer.set(entry.transferId, [...(entriesByTransfer.get(entry.transferId) ?? []), entry]);
      entryCount++;
    }
    assert.equal(account.balance, balance, `${account.id}: the balance is not the replay of its entries`);
    totals.set(account.currency, (totals.get(account.currency) ?? 0n) + account.balance);
  }
  for (const [currency, total] of totals) assert.equal(total, 0n, `${currency} balances sum to ${total}: money was created or lost`);
  for (const [transferId, entries] of entriesByTransfer) {
    const transfer = transfers.get(transferId);
    assert.ok(transfer?.status === 'succeeded', `entries of ${transferId}, which did not succeed`);
    assert.equal(entries.length, 2, `transfer ${transferId} has ${entries.length} entries`);
    const debit = entries.find((entry) => entry.amount < 0n);
    const credit = entries.find((entry) => entry.amount > 0n);
    assert.deepEqual([debit?.accountId, debit?.amount, credit?.accountId, credit?.amount], [transfer.fromAccountId, -transfer.amount, transfer.toAccountId, transfer.amount]);
  }

  // The reference model replays every transfer in the order the ledger decided it (the order of
  // the transfer rows: one settle transaction at a time, decisions written in order).
  const readOnly = openDatabase(join(dataDir, 'store.db'), { readOnly: true });
  const order = readOnly.prepare('SELECT id FROM ledger_transfers ORDER BY rowid').all().map((row) => row.id as string);
  readOnly.close();
  assert.equal(order.length, transfers.size, 'the ledger holds exactly the transfers that were sent');
  const model = new ReferenceLedger(accounts);
  const failures: Record<string, number> = {};
  let succeeded = 0;
  for (const id of order) {
    const transfer = transfers.get(id)!;
    const expected = model.apply(transfer);
    assert.equal(transfer.failureCode, expected, `transfer ${id}: the ledger decided ${transfer.failureCode ?? 'succeeded'}, the model ${expected ?? 'succeeded'}`);
    assert.equal(transfer.status, expected === null ? 'succeeded' : 'failed');
    if (expected === null) {
      succeeded++;
      const [first, second] = entriesByTransfer.get(id) ?? [];
      const after = new Map([first, second].map((entry) => [entry?.accountId, entry?.balanceAfter]));
      assert.equal(after.get(transfer.fromAccountId), model.balances.get(transfer.fromAccountId), `transfer ${id}: debit balanceAfter`);
      assert.equal(after.get(transfer.toAccountId), model.balances.get(transfer.toAccountId), `transfer ${id}: credit balanceAfter`);
    } else {
      failures[expected] = (failures[expected] ?? 0) + 1;
    }
  }
  for (const [id, balance] of model.balances) assert.equal(stored.get(id)?.balance, balance, `${id}: the model's balance`);
  return { report: { transfers: transfers.size, succeeded, failures, entries: entryCount }, transfers };
}

/** Every command record got a reply, and each reply says what the ledger holds (or refuses a reused id). */
async function auditReplies(log: SqliteEventLog, transfers: ReadonlyMap<string, Transfer>): Promise<number> {
  const replies = await readReplies(log);
  const answered = new Set(replies.map((reply) => `${reply.request.partition}:${reply.request.offset}`));
  const ends = await log.endOffsets(transferRequestedTopic);
  for (const [partition, end] of ends) {
    for (let offset = 0; offset < end; offset++) assert.ok(answered.has(`${partition}:${offset}`), `the command at ${partition}:${offset} got no reply`);
  }
  for (const reply of replies) {
    if (reply.command === null) {
      assert.equal(reply.says, 'invalid_format');
      continue;
    }
    const stored = transfers.get(reply.command.id)!;
    if (samePayload(stored, reply.command)) {
      assert.equal(reply.says, stored.failureCode ?? stored.status, `reply to ${reply.command.id}`);
      assert.deepEqual(reply.transfer, stored);
    } else {
      assert.equal(reply.says, 'transfer_id_reused', `reply to a reused ${reply.command.id}`);
    }
  }
  return replies.length;
}

describe('ledger invariants under SIGKILL (embedded deployment)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  /** A data directory with the log's topics: the test's own log and store connections, and its members to come. */
  async function openDeployment(): Promise<{ children: LedgerChildren; log: SqliteEventLog; store: SqliteLedgerStore }> {
    const children = new LedgerChildren();
    const log = SqliteEventLog.open({ path: join(children.dataDir, 'log.db') });
    const store = SqliteLedgerStore.create({ db: join(children.dataDir, 'store.db') });
    cleanups.push(async () => {
      await log.close();
      await store.close();
      await children.close();
    });
    await ensureLedgerTopics(log, 4);
    return { children, log, store };
  }

  test('random transfers from concurrent producers, redeliveries, reused ids and 3–5 kills: the ledger stays exact', { timeout: 120_000 }, async (t) => {
    const seed = chooseSeed(t);
    const startedMs = performance.now();
    const workload = generateWorkload(seededRandom(seed), { producers: 4, appendsPerProducer: 150 });
    // Pacing and kills draw from their own generators: concurrent draws from one would depend on timing.
    const killRandom = seededRandom(seed + 1);
    const { children, log, store } = await openDeployment();
    for (const account of workload.accounts) await store.createAccount(account);
    const accounts = new Map(workload.accounts.map((account) => [account.id, account]));
    const appended: TransferCommand[] = [];
    const members = [await children.start(pauseAfterSettleMs), await children.start(pauseAfterSettleMs)];

    // Funding first (and the late accounts' transfers, which find nothing to spend), all settled.
    await appendCommands(log, [...workload.funding, ...workload.lateFailures].map(toRecord));
    appended.push(...workload.funding, ...workload.lateFailures);
    await waitCaughtUp(log, children);

    // Then the producers, paced over a few seconds, while members are killed and restarted.
    const streamMs = 6_000;
    appended.push(...workload.lateFunding);
    await appendCommands(log, workload.lateFunding.map(toRecord));
    const producing = workload.producers.map(async (appends, producer) => {
      const pace = seededRandom(seed + 2 + producer);
      for (const chunk of appends) {
        await appendCommands(log, chunk.map((item) => (typeof item === 'string' ? { key: 'malformed', value: item } : toRecord(item))));
        for (const item of chunk) if (typeof item !== 'string') appended.push(item);
        await sleep(randomInteger(pace, 0, (2 * streamMs) / appends.length));
      }
    });
    // Every other kill waits for the victim's next settle: it dies with its replies unsent.
    const kills = randomInteger(killRandom, 3, 6);
    const killedAtMs: number[] = [];
    let killsAheadOfCommit = 0;
    const killing = (async () => {
      for (let kill = 0; kill < kills; kill++) {
        await sleep(randomInteger(killRandom, 200, streamMs / kills));
        const victim = members[randomInteger(killRandom, 0, members.length)]!;
        if (kill % 2 === 0) await Promise.race([victim.nextSettle(), sleep(settleWaitMsMax)]);
        const exit = await victim.kill('SIGKILL');
        assert.equal(exit.signal, 'SIGKILL', `the member was killed, it did not exit on its own\n${children.output()}`);
        killedAtMs.push(Math.round(performance.now() - startedMs));
        if (settledAheadOfCommit(children.dataDir)) killsAheadOfCommit++;
        await sleep(randomInteger(killRandom, 50, 600));
        members[members.indexOf(victim)] = await children.start(pauseAfterSettleMs);
      }
    })();
    await Promise.all([...producing, killing]);
    await waitCaughtUp(log, children);

    // The late transfers again, now that their accounts hold funds: they stay failed.
    await appendCommands(log, workload.lateFailures.map(toRecord));
    appended.push(...workload.lateFailures);
    await waitCaughtUp(log, children);
    for (const member of members) assert.deepEqual(await member.kill('SIGTERM'), { code: 0, signal: null }, `a member did not drain cleanly\n${children.output()}`);

    const { report, transfers } = await audit({ store, dataDir: children.dataDir, accounts, appended });
    for (const command of workload.lateFailures) {
      const transfer = transfers.get(command.id);
      assert.deepEqual([transfer?.status, transfer?.failureCode], ['failed', 'insufficient_funds'], `${command.id} stays failed once funds arrived`);
      assert.equal((await store.getAccount(command.merchantId, command.fromAccountId))?.balance, 1000n, 'funded after its transfer failed');
    }
    for (const { original, variant } of workload.reusedSamePartition) {
      assert.ok(samePayload(transfers.get(original.id)!, original), `${variant.id}: the later payload on the same partition replaced the original`);
    }
    const replies = await auditReplies(log, transfers);
    t.diagnostic(`${appended.length} commands appended, ${report.transfers} transfers (${report.succeeded} succeeded, failures ${JSON.stringify(report.failures)}), ` +
      `${report.entries} entries, ${replies} replies; ${kills} kills at ${killedAtMs.join(', ')} ms, ${killsAheadOfCommit} of them with the ledger ahead of the commit; ` +
      `${workload.reusedSamePartition.length} reused ids; ` +
      `${Math.round(performance.now() - startedMs)} ms`);
    assert.ok(report.succeeded > 500 && (report.failures.insufficient_funds ?? 0) >= 5, 'the workload moved money and ran accounts dry');
    assert.ok(killsAheadOfCommit >= 1, 'some kill left settled transfers unanswered and uncommitted (the redelivery had to answer them from the store)');
  });

  test('N concurrent debits that together exceed a balance: exactly ⌊balance / amount⌋ succeed, across a kill', { timeout: 60_000 }, async (t) => {
    const seed = chooseSeed(t);
    const random = seededRandom(seed);
    const balance = BigInt(randomInteger(random, 5_000, 20_000));
    const amount = BigInt(randomInteger(random, 300, 900));
    const debits = Number(balance / amount) + randomInteger(random, 5, 30);
    const { children, log, store } = await openDeployment();
    const fund = makeAccount('fund', 'm_alpha', 'USD', true);
    const payer = makeAccount('payer', 'm_alpha', 'USD', false);
    const payees = Array.from({ length: 8 }, (_, index) => makeAccount(`payee_${index}`, 'm_alpha', 'USD', false));
    for (const account of [fund, payer, ...payees]) await store.createAccount(account);
    let member = await children.start(0);
    await appendCommands(log, [toRecord(makeCommand('t_fund', fund, payer, balance))]);
    await waitCaughtUp(log, children);

    const commands = Array.from({ length: debits }, (_, index) => makeCommand(`t_debit_${index}`, payer, payees[index % payees.length]!, amount));
    const killing = (async () => {
      await sleep(randomInteger(random, 0, 150));
      await member.kill('SIGKILL');
      member = await children.start(0);
    })();
    await Promise.all([...commands.map((command) => appendCommands(log, [toRecord(command)])), killing]);
    await waitCaughtUp(log, children);
    await member.kill('SIGTERM');

    const outcomes = await Promise.all(commands.map((command) => store.getTransfer('m_alpha', command.id)));
    const succeeded = outcomes.filter((transfer) => transfer?.status === 'succeeded').length;
    t.diagnostic(`balance ${balance}, ${debits} debits of ${amount}: ${succeeded} succeeded`);
    assert.equal(succeeded, Number(balance / amount));
    assert.ok(outcomes.every((transfer) => transfer?.status === 'succeeded' || transfer?.failureCode === 'insufficient_funds'));
    assert.equal((await store.getAccount('m_alpha', 'payer'))?.balance, balance % amount);
    const entries = await store.listEntries('m_alpha', 'payer');
    assert.equal(entries.length, 1 + succeeded);
    assert.ok(entries.every((entry) => entry.balanceAfter >= 0n));
  });
});
