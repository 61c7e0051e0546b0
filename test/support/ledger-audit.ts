// The auditor of the ledger's invariant tests: every invariant of issue 4 checked from what the
// store guarantees on both deployments — accounts, transfers, and per account its entries in an
// order consistent with every decision (each debit placed after exactly the credits its funds
// check counted), balanceAfter the running balance along it — plus the command topic (where each
// transfer was decided) and the reply topics. No global order of decisions is assumed: the
// Cassandra ledger has none. (The embedded test adds a reference model replaying SQLite's order.)
import assert from 'node:assert/strict';
import { samePayload, type Account, type Entry, type Transfer, type TransferCommand, type TransferFailureCode } from '../../src/core/payments/ledger.ts';
import type { EventLog } from '../../src/core/ports/event-log.ts';
import type { LedgerStore } from '../../src/core/ports/ledger-store.ts';
import { transferRequestedTopic } from '../../src/payments/codec.ts';
import { readReplies, type CommandRecord } from './ledger.ts';

export interface LedgerAuditInput {
  readonly store: LedgerStore;
  /** The accounts the test created (balances 0): the static facts decisions are checked against. */
  readonly accounts: ReadonlyMap<string, Account>;
  /** The command topic read back: every record the ledger was given, with its position. */
  readonly commandRecords: readonly CommandRecord[];
  /**
   * Command-topic end offsets, each taken when the ledger had decided every command below it: a
   * command past a barrier was decided after every command below it, so its funds check counted
   * every credit of those.
   */
  readonly barriers: readonly ReadonlyMap<number, number>[];
}

export interface AuditReport {
  readonly transfers: number;
  readonly succeeded: number;
  readonly failures: Record<string, number>;
  readonly entries: number;
  /** insufficient_funds decisions whose funds check was bounded from below by known credits and debits. */
  readonly fundsChecksBounded: number;
}

export interface LedgerAudit {
  readonly report: AuditReport;
  readonly transfers: ReadonlyMap<string, Transfer>;
  /** Accounts as the store lists them. */
  readonly stored: ReadonlyMap<string, Account>;
  readonly entriesByTransfer: ReadonlyMap<string, readonly Entry[]>;
}

/** Lookups the store serves at once: Cassandra reads are round trips, SQLite's are not. */
const readConcurrency = 32;

async function mapConcurrently<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(readConcurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  }));
  return results;
}

/** The refusal a transfer meets whatever the balances: the ledger's precedence, written out on its own. */
export function staticFailure(command: TransferCommand, accounts: ReadonlyMap<string, Account>): TransferFailureCode | null {
  const from = accounts.get(command.fromAccountId);
  const to = accounts.get(command.toAccountId);
  if (!from || !to || from.merchantId !== command.merchantId || to.merchantId !== command.merchantId) return 'account_not_found';
  if (from.id === to.id) return 'same_account';
  if (from.currency !== command.currency || to.currency !== command.currency) return 'currency_mismatch';
  return null;
}

const position = (record: CommandRecord): string => `${record.partition}:${record.offset}`;

/** Every invariant of the issue that the store's guarantees make checkable, on either deployment. */
export async function auditLedger({ store, accounts, commandRecords, barriers }: LedgerAuditInput): Promise<LedgerAudit> {
  // Accounts as the ledger lists them (through the pagination clients use), with their static facts.
  const stored = new Map<string, Account>();
  for (const merchantId of new Set([...accounts.values()].map((account) => account.merchantId))) {
    let cursor: string | null = null;
    for (;;) {
      const page = await store.listAccounts({ merchantId, limit: 7, startingAfter: cursor });
      for (const account of page.items) {
        assert.ok(!stored.has(account.id), `${account.id} is listed twice`);
        stored.set(account.id, account);
      }
      if (!page.hasMore) break;
      cursor = page.items[page.items.length - 1]!.id;
    }
  }
  assert.deepEqual([...stored.keys()].sort(), [...accounts.keys()].sort(), 'every account is listed once');
  for (const [id, account] of stored) {
    const created = accounts.get(id)!;
    assert.deepEqual([account.merchantId, account.currency, account.allowOverdraft], [created.merchantId, created.currency, created.allowOverdraft], `${id}: static facts`);
  }

  // Every command the ledger was given ends succeeded or failed, holding a payload that was sent;
  // the first record with that payload is where the ledger decided it (any record of the id before
  // it, with another payload, would have taken the id instead).
  const commands = commandRecords.filter((record): record is CommandRecord & { command: TransferCommand } => record.command !== null);
  const ids = [...new Map(commands.map((record) => [record.command.id, record.command])).values()];
  const transfers = new Map<string, Transfer>();
  for (const [index, transfer] of (await mapConcurrently(ids, (command) => store.getTransfer(command.merchantId, command.id))).entries()) {
    const id = ids[index]!.id;
    assert.ok(transfer, `transfer ${id} was appended but is not in the ledger`);
    assert.ok(transfer.status === 'succeeded' || transfer.status === 'failed', `transfer ${id} is ${transfer.status}`);
    transfers.set(id, transfer);
  }
  const decidedAt = new Map<string, CommandRecord>();
  for (const record of commands) {
    const transfer = transfers.get(record.command.id)!;
    if (!decidedAt.has(transfer.id) && samePayload(transfer, record.command)) decidedAt.set(transfer.id, record);
  }
  for (const transfer of transfers.values()) assert.ok(decidedAt.has(transfer.id), `transfer ${transfer.id} holds a payload nobody sent`);

  // Entries: the balanceAfter chain of every account starts at zero, never dips below zero without
  // overdraft, and ends at the balance; the balances of a currency sum to zero (money only moves).
  const entriesByTransfer = new Map<string, Entry[]>();
  const entriesByAccount = new Map<string, Entry[]>();
  const totals = new Map<string, bigint>();
  let entryCount = 0;
  const accountList = [...stored.values()];
  const [entryLists, reread] = await Promise.all([
    mapConcurrently(accountList, (account) => store.listEntries(account.merchantId, account.id)),
    mapConcurrently(accountList, (account) => store.getAccount(account.merchantId, account.id)),
  ]);
  for (const [index, account] of accountList.entries()) {
    const entries = entryLists[index]!;
    let balance = 0n;
    for (const entry of entries) {
      assert.deepEqual([entry.accountId, entry.merchantId], [account.id, account.merchantId], `${account.id} lists an entry of another account`);
      balance += entry.amount;
      assert.equal(entry.balanceAfter, balance, `${account.id}: entry of ${entry.transferId} breaks the balanceAfter chain`);
      if (!account.allowOverdraft) assert.ok(entry.balanceAfter >= 0n, `${account.id} went to ${entry.balanceAfter} (transfer ${entry.transferId})`);
      entriesByTransfer.set(entry.transferId, [...(entriesByTransfer.get(entry.transferId) ?? []), entry]);
      entryCount++;
    }
    entriesByAccount.set(account.id, entries);
    assert.equal(account.balance, balance, `${account.id}: the listed balance is not the replay of its entries`);
    assert.equal(reread[index]?.balance, balance, `${account.id}: getAccount's balance is not the replay of its entries`);
    totals.set(account.currency, (totals.get(account.currency) ?? 0n) + balance);
  }
  for (const [currency, total] of totals) assert.equal(total, 0n, `${currency} balances sum to ${total}: money was created or lost`);

  // Each transfer id is applied at most once, across all accounts: a succeeded transfer has exactly
  // its debit and its credit, a failed one none, and entries belong to a known transfer.
  for (const [transferId, entries] of entriesByTransfer) {
    const transfer = transfers.get(transferId);
    assert.ok(transfer?.status === 'succeeded', `entries of ${transferId}, which did not succeed`);
    assert.equal(entries.length, 2, `transfer ${transferId} has ${entries.length} entries`);
    const debit = entries.find((entry) => entry.amount < 0n);
    const credit = entries.find((entry) => entry.amount > 0n);
    assert.deepEqual([debit?.accountId, debit?.amount, credit?.accountId, credit?.amount], [transfer.fromAccountId, -transfer.amount, transfer.toAccountId, transfer.amount],
      `the entries of ${transferId} are not its debit and its credit`);
  }
  const failures: Record<string, number> = {};
  let succeeded = 0;
  for (const transfer of transfers.values()) {
    if (transfer.status === 'succeeded') {
      succeeded++;
      assert.ok(entriesByTransfer.has(transfer.id), `transfer ${transfer.id} succeeded without entries`);
    } else {
      failures[transfer.failureCode!] = (failures[transfer.failureCode!] ?? 0) + 1;
    }
  }

  // Decisions against the static facts: account_not_found, same_account and currency_mismatch are
  // decidable without balances, so exactly those transfers fail with exactly that code; the rest
  // succeed, or fail for insufficient funds — which only an account without overdraft can lack.
  for (const transfer of transfers.values()) {
    const expected = staticFailure(transfer, accounts);
    if (expected !== null) {
      assert.deepEqual([transfer.status, transfer.failureCode], ['failed', expected], `transfer ${transfer.id} must fail with ${expected}`);
    } else if (transfer.status === 'failed') {
      assert.equal(transfer.failureCode, 'insufficient_funds', `transfer ${transfer.id} failed with ${transfer.failureCode}`);
      assert.equal(accounts.get(transfer.fromAccountId)!.allowOverdraft, false, `transfer ${transfer.id} from an overdraft account failed for insufficient funds`);
    }
  }

  // Each account's debits are applied in the order of its partition (the key), and a funds check
  // that failed had seen at least: the balance after the account's previous debit (every debit is
  // placed after exactly the credits its check counted, and a later check counts no fewer), plus
  // every credit decided before a barrier the failed command came after.
  const decidedBelow = (record: CommandRecord, barrier: ReadonlyMap<number, number>): boolean => record.offset < (barrier.get(record.partition) ?? 0);
  let fundsChecksBounded = 0;
  const failedByAccount = Map.groupBy([...transfers.values()].filter((transfer) => transfer.failureCode === 'insufficient_funds'), (transfer) => transfer.fromAccountId);
  for (const [accountId, entries] of entriesByAccount) {
    const debits = entries.flatMap((entry, index) => (entry.amount < 0n ? [{ entry, index, record: decidedAt.get(entry.transferId)! }] : []));
    for (const [index, debit] of debits.entries()) {
      assert.equal(debit.record.key, accountId, `debit ${debit.entry.transferId} of ${accountId} was decided from a record keyed ${debit.record.key}`);
      const previous = debits[index - 1];
      if (previous) {
        assert.equal(debit.record.partition, previous.record.partition, `${accountId}: debits decided on two partitions`);
        assert.ok(previous.record.offset < debit.record.offset,
          `${accountId}: debit ${debit.entry.transferId} (offset ${debit.record.offset}) is listed after ${previous.entry.transferId} (offset ${previous.record.offset})`);
      }
    }
    for (const failed of failedByAccount.get(accountId) ?? []) {
      const record = decidedAt.get(failed.id)!;
      const priorDebits = debits.filter((debit) => debit.record.partition === record.partition && debit.record.offset < record.offset);
      const last = priorDebits[priorDebits.length - 1];
      let seenAtLeast = last ? last.entry.balanceAfter : 0n;
      const barrier = barriers.findLast((candidate) => !decidedBelow(record, candidate));
      if (barrier) {
        for (const entry of entries.slice(last ? last.index + 1 : 0)) {
          if (entry.amount > 0n && decidedBelow(decidedAt.get(entry.transferId)!, barrier)) seenAtLeast += entry.amount;
        }
      }
      assert.ok(failed.amount > seenAtLeast,
        `transfer ${failed.id} of ${failed.amount} failed for insufficient funds, but ${accountId} had at least ${seenAtLeast} when it was decided (offset ${record.partition}:${record.offset})`);
      if (seenAtLeast > 0n) fundsChecksBounded++;
    }
  }

  return { report: { transfers: transfers.size, succeeded, failures, entries: entryCount, fundsChecksBounded }, transfers, stored, entriesByTransfer };
}

/**
 * Every command record got a reply on `.succeeded` or `.failed`, and each reply says what the
 * ledger holds, or refuses a reused id; a malformed record is answered invalid_format.
 */
export async function auditReplies(log: EventLog, commandRecords: readonly CommandRecord[], transfers: ReadonlyMap<string, Transfer>): Promise<number> {
  const replies = await readReplies(log, commandRecords);
  const answered = new Set(replies.map((reply) => `${reply.request.partition}:${reply.request.offset}`));
  const ends = await log.endOffsets(transferRequestedTopic);
  assert.equal(commandRecords.length, [...ends.values()].reduce((sum, end) => sum + end, 0), 'the command topic was read whole');
  for (const record of commandRecords) assert.ok(answered.has(position(record)), `the command at ${position(record)} got no reply`);
  for (const reply of replies) {
    if (reply.command === null) {
      assert.equal(reply.says, 'invalid_format');
      continue;
    }
    const stored = transfers.get(reply.command.id)!;
    if (samePayload(stored, reply.command)) {
      assert.equal(reply.says, stored.failureCode ?? stored.status, `reply to ${reply.command.id}`);
      assert.deepEqual(reply.transfer, stored, `the reply to ${reply.command.id} says another transfer than the ledger holds`);
    } else {
      assert.equal(reply.says, 'transfer_id_reused', `reply to a reused ${reply.command.id}`);
    }
  }
  return replies.length;
}
