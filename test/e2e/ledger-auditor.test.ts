// The auditor of the ledger's invariant tests (test/support/ledger-audit.ts) must fail when an
// invariant is broken, or its passes on both deployments prove nothing. A real ledger is built (the
// LedgerProcessor over a memory log and the SQLite store, a small seeded workload in phases) and
// passes the audit; then, for each invariant, a view of that same ledger breaks exactly it —
// one entry, one balance, one status — and the audit must refuse the view with that invariant's
// message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryEventLog } from '../../src/adapters/memory/event-log.ts';
import { seededRandom } from '../../src/adapters/memory/prng.ts';
import { SqliteLedgerStore } from '../../src/adapters/sqlite/ledger-store.ts';
import type { Account, Entry, Transfer, TransferCommand } from '../../src/core/payments/ledger.ts';
import type { LedgerStore } from '../../src/core/ports/ledger-store.ts';
import { transferRequestedTopic } from '../../src/payments/codec.ts';
import { LedgerProcessor } from '../../src/payments/processor.ts';
import { auditLedger, auditReplies, staticFailure } from '../support/ledger-audit.ts';
import { ensureLedgerTopics, processCommands, readCommandRecords, type CommandRecord } from '../support/ledger.ts';
import { generateWorkload, makeCommand, toRecord } from '../support/ledger-workload.ts';

/** What the audit reads, held apart from the store so one fact at a time can be broken. */
interface LedgerView {
  readonly transfers: Map<string, Transfer>;
  readonly entries: Map<string, Entry[]>;
  /** Balances as listAccounts and as getAccount report them. */
  readonly listedBalances: Map<string, bigint>;
  readonly accountBalances: Map<string, bigint>;
}

function copyView(view: LedgerView): LedgerView {
  return {
    transfers: new Map(view.transfers),
    entries: new Map([...view.entries].map(([id, entries]) => [id, [...entries]])),
    listedBalances: new Map(view.listedBalances),
    accountBalances: new Map(view.accountBalances),
  };
}

/** The store, answering the audit's reads from the view. */
function viewedStore(store: LedgerStore, view: LedgerView): LedgerStore {
  const reads: Partial<LedgerStore> = {
    getTransfer: async (_merchantId, transferId) => view.transfers.get(transferId) ?? null,
    listEntries: async (_merchantId, accountId) => view.entries.get(accountId) ?? [],
    getAccount: async (merchantId, accountId) => {
      const account = await store.getAccount(merchantId, accountId);
      return account && { ...account, balance: view.accountBalances.get(accountId)! };
    },
    listAccounts: async (request) => {
      const page = await store.listAccounts(request);
      return { ...page, items: page.items.map((account) => ({ ...account, balance: view.listedBalances.get(account.id)! })) };
    },
  };
  return new Proxy(store, {
    get: (target, property) => (reads as Record<PropertyKey, unknown>)[property] ?? (Reflect.get(target, property, target) as Function).bind(target),
  });
}

/** Recomputes an account's balanceAfter chain and both its balances after entries were moved or changed. */
function rechain(view: LedgerView, accountId: string): void {
  let balance = 0n;
  view.entries.set(accountId, view.entries.get(accountId)!.map((entry) => ({ ...entry, balanceAfter: (balance += entry.amount) })));
  view.listedBalances.set(accountId, balance);
  view.accountBalances.set(accountId, balance);
}

function dropEntriesOf(view: LedgerView, transfer: Transfer): void {
  for (const accountId of [transfer.fromAccountId, transfer.toAccountId]) {
    view.entries.set(accountId, view.entries.get(accountId)!.filter((entry) => entry.transferId !== transfer.id));
    rechain(view, accountId);
  }
}

const chainNonNegative = (view: LedgerView, accountId: string, accounts: ReadonlyMap<string, Account>): boolean =>
  accounts.get(accountId)!.allowOverdraft || view.entries.get(accountId)!.every((entry) => entry.balanceAfter >= 0n);

describe('the ledger auditor refuses every broken invariant', () => {
  const directory = mkdtempSync(join(tmpdir(), 'tally-ledger-auditor-'));
  const log = MemoryEventLog.create();
  const store = SqliteLedgerStore.create({ db: join(directory, 'store.db') });
  let accounts: Map<string, Account>;
  let commandRecords: CommandRecord[];
  const barriers: Map<number, number>[] = [];
  let real: LedgerView;

  after(async () => {
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  before(async () => {
    const workload = generateWorkload(seededRandom(20_240_601), { producers: 2, appendsPerProducer: 40, customersPerBook: 4 });
    accounts = new Map(workload.accounts.map((account) => [account.id, account]));
    for (const account of workload.accounts) await store.createAccount(account);
    await ensureLedgerTopics(log, 4);
    const settle = async (commands: readonly (TransferCommand | string)[]): Promise<void> => {
      await log.append(transferRequestedTopic, commands.map((item) => (typeof item === 'string' ? { key: 'malformed', value: item } : toRecord(item))));
      await processCommands(log, new LedgerProcessor({ ledger: store, log }), { pollRecordsMax: 25 });
      barriers.push(await log.endOffsets(transferRequestedTopic));
    };
    await settle([...workload.funding, ...workload.lateFailures]);
    await settle([...workload.lateFunding, ...workload.producers.flat(2)]);
    await settle(workload.lateFailures);
    commandRecords = await readCommandRecords(log);
    const merchantOf = new Map(commandRecords.flatMap((record) => (record.command ? [[record.command.id, record.command.merchantId] as const] : [])));
    real = { transfers: new Map(), entries: new Map(), listedBalances: new Map(), accountBalances: new Map() };
    for (const [id, merchantId] of merchantOf) real.transfers.set(id, (await store.getTransfer(merchantId, id))!);
    for (const account of accounts.values()) {
      real.entries.set(account.id, await store.listEntries(account.merchantId, account.id));
      const balance = (await store.getAccount(account.merchantId, account.id))!.balance;
      real.listedBalances.set(account.id, balance);
      real.accountBalances.set(account.id, balance);
    }
  });

  const audit = (view: LedgerView) => auditLedger({ store: viewedStore(store, view), accounts, commandRecords, barriers });
  /** Breaks one fact in a copy of the real ledger; the audit must refuse it with `message`. */
  const refuses = async (message: RegExp, breakIt: (view: LedgerView) => void): Promise<void> => {
    const view = copyView(real);
    breakIt(view);
    await assert.rejects(audit(view), message);
  };
  const transfersWhere = (predicate: (transfer: Transfer) => boolean): Transfer[] => [...real.transfers.values()].filter(predicate);
  const customers = (): Account[] => [...accounts.values()].filter((account) => !account.allowOverdraft && real.entries.get(account.id)!.length >= 3);

  test('the real ledger passes, with money moved, accounts run dry and funds checks bounded', async (t) => {
    const { report, transfers } = await audit(real);
    t.diagnostic(JSON.stringify(report));
    assert.ok(report.succeeded > 100 && (report.failures.insufficient_funds ?? 0) >= 3 && report.fundsChecksBounded >= 1, JSON.stringify(report));
    assert.ok(await auditReplies(log, commandRecords, transfers) >= commandRecords.length);
  });

  test('a balanceAfter off by one breaks the chain', async () => {
    await refuses(/breaks the balanceAfter chain/, (view) => {
      const [first, ...rest] = view.entries.get(customers()[0]!.id)!;
      view.entries.set(customers()[0]!.id, [{ ...first!, balanceAfter: first!.balanceAfter + 1n }, ...rest]);
    });
  });

  test('a balance that is not the replay of the entries, as listed or as read', async () => {
    const id = customers()[0]!.id;
    await refuses(/listed balance is not the replay/, (view) => void view.listedBalances.set(id, view.listedBalances.get(id)! + 1n));
    await refuses(/getAccount's balance is not the replay/, (view) => void view.accountBalances.set(id, view.accountBalances.get(id)! - 1n));
  });

  test('an account without overdraft below zero, checked along the chain (the final balance is fine)', async () => {
    await refuses(/went to -/, (view) => {
      const account = customers().find((candidate) => view.entries.get(candidate.id)!.some((entry, index) => index > 0 && entry.amount < 0n))!;
      const entries = view.entries.get(account.id)!;
      const debit = entries.findIndex((entry, index) => index > 0 && entry.amount < 0n);
      view.entries.set(account.id, [entries[debit]!, ...entries.filter((_, index) => index !== debit)]);
      rechain(view, account.id);
      assert.ok(view.listedBalances.get(account.id)! >= 0n);
    });
  });

  test('money created: a credit larger than its debit', async () => {
    await refuses(/money was created or lost/, (view) => {
      const id = customers()[0]!.id;
      const entries = view.entries.get(id)!;
      const credit = entries.findIndex((entry) => entry.amount > 0n);
      entries[credit] = { ...entries[credit]!, amount: entries[credit]!.amount + 1n };
      rechain(view, id);
    });
  });

  test('a transfer applied twice: its debit and credit written again', async () => {
    await refuses(/has 4 entries/, (view) => {
      const funding = transfersWhere((transfer) => transfer.id.startsWith('tf_') && transfer.status === 'succeeded')[0]!;
      for (const accountId of [funding.fromAccountId, funding.toAccountId]) {
        view.entries.get(accountId)!.push(view.entries.get(accountId)!.find((entry) => entry.transferId === funding.id)!);
        rechain(view, accountId);
      }
    });
  });

  test('entries of a transfer that did not succeed; a succeeded transfer without entries', async () => {
    const applied = transfersWhere((transfer) => transfer.status === 'succeeded' && !accounts.get(transfer.fromAccountId)!.allowOverdraft)[0]!;
    await refuses(/which did not succeed/, (view) => void view.transfers.set(applied.id, { ...applied, status: 'failed', failureCode: 'insufficient_funds' }));
    const refused = transfersWhere((transfer) => transfer.failureCode === 'insufficient_funds')[0]!;
    await refuses(/succeeded without entries/, (view) => void view.transfers.set(refused.id, { ...refused, status: 'succeeded', failureCode: null }));
  });

  test('failure codes against the static facts', async () => {
    const mismatch = transfersWhere((transfer) => transfer.failureCode === 'currency_mismatch')[0]!;
    await refuses(/must fail with currency_mismatch/, (view) => void view.transfers.set(mismatch.id, { ...mismatch, failureCode: 'account_not_found' }));
    const dry = transfersWhere((transfer) => transfer.failureCode === 'insufficient_funds')[0]!;
    await refuses(/failed with currency_mismatch/, (view) => void view.transfers.set(dry.id, { ...dry, failureCode: 'currency_mismatch' }));
    await refuses(/failed with balance_overflow/, (view) => void view.transfers.set(dry.id, { ...dry, failureCode: 'balance_overflow' }));
  });

  test('insufficient funds on an account with overdraft', async () => {
    await refuses(/from an overdraft account failed for insufficient funds/, (view) => {
      // A funding transfer whose credit the customer's chain can lose without going below zero.
      const funding = transfersWhere((transfer) => transfer.id.startsWith('tf_') && transfer.status === 'succeeded').find((transfer) => {
        const trial = copyView(view);
        dropEntriesOf(trial, transfer);
        return chainNonNegative(trial, transfer.toAccountId, accounts);
      });
      assert.ok(funding, 'a funding transfer the ledger could have done without');
      dropEntriesOf(view, funding);
      view.transfers.set(funding.id, { ...funding, status: 'failed', failureCode: 'insufficient_funds' });
    });
  });

  test('a transfer holding a payload nobody sent, or still pending', async () => {
    const some = transfersWhere((transfer) => transfer.status === 'failed')[0]!;
    await refuses(/holds a payload nobody sent/, (view) => void view.transfers.set(some.id, { ...some, description: 'edited' }));
    await refuses(/is pending/, (view) => void view.transfers.set(some.id, { ...some, status: 'pending', failureCode: null, settledMs: null }));
  });

  test('debits listed out of their partition order', async () => {
    await refuses(/is listed after/, (view) => {
      // Two debits of one account swapped, where the chain stays at or above zero either way.
      for (const account of customers()) {
        const entries = view.entries.get(account.id)!;
        const debits = entries.flatMap((entry, index) => (entry.amount < 0n ? [index] : []));
        for (let index = 1; index < debits.length; index++) {
          const trial = copyView(view);
          const swapped = [...entries];
          [swapped[debits[index - 1]!], swapped[debits[index]!]] = [swapped[debits[index]!]!, swapped[debits[index - 1]!]!];
          trial.entries.set(account.id, swapped);
          rechain(trial, account.id);
          if (!chainNonNegative(trial, account.id, accounts)) continue;
          view.entries.set(account.id, trial.entries.get(account.id)!);
          rechain(view, account.id);
          return;
        }
      }
      assert.fail('no account has two debits that can swap places');
    });
  });

  test('insufficient funds although the account certainly had them', async () => {
    await refuses(/failed for insufficient funds, but .* had at least/, (view) => {
      // A customer's first debit, decided after the funding phase (barrier 0) with only funding
      // credits before it: its check must have counted all of them, so it cannot have lacked funds.
      const decidedAt = new Map<string, CommandRecord>();
      for (const record of commandRecords) if (record.command && !decidedAt.has(record.command.id)) decidedAt.set(record.command.id, record);
      const candidate = customers().flatMap((account) => {
        const entries = view.entries.get(account.id)!;
        const first = entries.findIndex((entry) => entry.amount < 0n);
        if (first < 1) return [];
        const debit = decidedAt.get(entries[first]!.transferId)!;
        const fundedBefore = entries.slice(0, first).every((entry) => {
          const credit = decidedAt.get(entry.transferId)!;
          return credit.offset < barriers[0]!.get(credit.partition)!;
        });
        const transfer = view.transfers.get(entries[first]!.transferId)!;
        if (!fundedBefore || debit.offset < barriers[0]!.get(debit.partition)!) return [];
        const trial = copyView(view);
        dropEntriesOf(trial, transfer);
        return chainNonNegative(trial, transfer.toAccountId, accounts) ? [transfer] : [];
      })[0];
      assert.ok(candidate, 'a first debit after the funding phase');
      dropEntriesOf(view, candidate);
      view.transfers.set(candidate.id, { ...candidate, status: 'failed', failureCode: 'insufficient_funds' });
    });
  });

  test('replies: one that says another outcome than the ledger holds, and a command never answered', async () => {
    const { transfers } = await audit(real);
    const some = [...transfers.values()].find((transfer) => transfer.status === 'succeeded')!;
    await assert.rejects(auditReplies(log, commandRecords, new Map(transfers).set(some.id, { ...some, status: 'failed', failureCode: 'insufficient_funds' })), /reply to/);
    const fund = accounts.get('fund_m_alpha_USD_0')!;
    await log.append(transferRequestedTopic, [toRecord(makeCommand('t_never_answered', fund, 'acc_m_alpha_USD_0', 1n))]);
    await assert.rejects(auditReplies(log, await readCommandRecords(log), transfers), /got no reply/);
  });

  test('the static facts the failure codes are checked against follow the ledger\'s precedence', () => {
    const fund = accounts.get('fund_m_alpha_USD_0')!;
    assert.equal(staticFailure(makeCommand('x', fund, 'acc_nobody', 1n), accounts), 'account_not_found');
    assert.equal(staticFailure(makeCommand('x', fund, fund, 1n, { currency: 'EUR' }), accounts), 'same_account');
    assert.equal(staticFailure(makeCommand('x', fund, 'acc_m_alpha_EUR_0', 1n), accounts), 'currency_mismatch');
    assert.equal(staticFailure(makeCommand('x', fund, 'acc_m_beta_USD_0', 1n), accounts), 'account_not_found');
    assert.equal(staticFailure(makeCommand('x', fund, 'acc_m_alpha_USD_0', 1n), accounts), null);
  });
});
