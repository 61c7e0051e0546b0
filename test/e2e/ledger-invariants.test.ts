// The ledger's invariants on the embedded deployment, TigerBeetle's auditor style: a seeded
// workload (many accounts, funding accounts with overdraft funded first, random transfers from
// several concurrent producers, redeliveries, reused ids, malformed records) is appended to the
// SQLite log while two child processes run the LedgerProcessor on the SQLite files and are
// SIGKILLed at random moments (test/support/ledger-scenarios.ts). Afterwards the auditor checks
// every invariant from the entries, as on Kafka + Cassandra (ledger-invariants-distributed.test.ts);
// and, because SQLite decides one transaction at a time, an independent reference model replays
// every transfer in the order the ledger decided it and must agree with each decision and each
// entry. LEDGER_TEST_SEED=<seed> replays a run's workload and kill moments (not the OS scheduling).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openDatabase } from '../../src/adapters/sqlite/database.ts';
import type { Account, Transfer, TransferCommand, TransferFailureCode } from '../../src/core/payments/ledger.ts';
import type { LedgerAudit } from '../support/ledger-audit.ts';
import { openEmbeddedDeployment, type EmbeddedLedgerDeployment } from '../support/ledger-deployments.ts';
import { runConcurrentDebits, runRandomWorkload, type ScenarioTimings } from '../support/ledger-scenarios.ts';

const timings: ScenarioTimings = {
  catchUpMsMax: 45_000,
  pauseAfterSettleMs: 20,
  settleWaitMsMax: 3_000,
  streamMs: 6_000,
  kills: [3, 6],
  freezes: [0, 0],
  freezeMs: 0,
  caughtUpPollMs: 50,
};
const childStartMsMax = 20_000;

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

/**
 * The reference model replays every transfer in the order the ledger decided it (the order of the
 * transfer rows: one settle transaction at a time, decisions written in order).
 */
function replayDecisionOrder(deployment: EmbeddedLedgerDeployment, { transfers, stored, entriesByTransfer }: LedgerAudit): void {
  const readOnly = openDatabase(join(deployment.dataDir, 'store.db'), { readOnly: true });
  const order = readOnly.prepare('SELECT id FROM ledger_transfers ORDER BY rowid').all().map((row) => row.id as string);
  readOnly.close();
  assert.equal(order.length, transfers.size, 'the ledger holds exactly the transfers that were sent');
  const model = new ReferenceLedger(stored);
  for (const id of order) {
    const transfer: Transfer = transfers.get(id)!;
    const expected = model.apply(transfer);
    assert.equal(transfer.failureCode, expected, `transfer ${id}: the ledger decided ${transfer.failureCode ?? 'succeeded'}, the model ${expected ?? 'succeeded'}`);
    assert.equal(transfer.status, expected === null ? 'succeeded' : 'failed');
    if (expected === null) {
      const [first, second] = entriesByTransfer.get(id) ?? [];
      const afterEntry = new Map([first, second].map((entry) => [entry?.accountId, entry?.balanceAfter]));
      assert.equal(afterEntry.get(transfer.fromAccountId), model.balances.get(transfer.fromAccountId), `transfer ${id}: debit balanceAfter`);
      assert.equal(afterEntry.get(transfer.toAccountId), model.balances.get(transfer.toAccountId), `transfer ${id}: credit balanceAfter`);
    }
  }
  for (const [id, balance] of model.balances) assert.equal(stored.get(id)?.balance, balance, `${id}: the model's balance`);
}

describe('ledger invariants under SIGKILL (embedded deployment)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  async function openDeployment(): Promise<EmbeddedLedgerDeployment> {
    const deployment = await openEmbeddedDeployment({ childStartMsMax });
    cleanups.push(() => deployment.close());
    return deployment;
  }

  test('random transfers from concurrent producers, redeliveries, reused ids and 3–5 kills: the ledger stays exact', { timeout: 120_000 }, async (t) => {
    const deployment = await openDeployment();
    await runRandomWorkload(t, deployment, {
      workload: { producers: 4, appendsPerProducer: 150 },
      timings,
      succeededMin: 501,
      insufficientFundsMin: 5,
      extraAudit: async (audit) => replayDecisionOrder(deployment, audit),
    });
  });

  test('N concurrent debits that together exceed a balance: exactly ⌊balance / amount⌋ succeed, across a kill', { timeout: 60_000 }, async (t) => {
    await runConcurrentDebits(t, await openDeployment(), timings);
  });
});
