// The ledger processor's promises, on the memory log and the SQLite store: every command gets a
// reply on `.succeeded` or `.failed`; a malformed one is answered with invalid_format and committed
// past (the same reply as any responder's); a command that keeps failing is answered handler_failed and
// dead-lettered; a redelivery (after a crash, a failed reply append or a rebalance) answers again from the
// store and never applies twice; each succeeded transfer feeds the merchant's analytics exactly once.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryEventLog } from '../../src/adapters/memory/event-log.ts';
import { MemoryEventStore } from '../../src/adapters/memory/event-store.ts';
import { MemoryMerchantStore } from '../../src/adapters/memory/merchant-store.ts';
import { MemoryRollupStore } from '../../src/adapters/memory/rollup-store.ts';
import { SqliteLedgerStore } from '../../src/adapters/sqlite/ledger-store.ts';
import { AnalyticsProcessor, eventsTopic } from '../../src/analytics/processor.ts';
import { currentRules } from '../../src/core/analytics/rules.ts';
import { TallyError } from '../../src/core/errors.ts';
import { time } from '../../src/core/limits.ts';
import type { Account, TransferCommand } from '../../src/core/payments/ledger.ts';
import { LogUnavailableError, type AppendRecord, type ConsumedRecord, type EventLog, type LogPosition } from '../../src/core/ports/event-log.ts';
import type { LedgerStore } from '../../src/core/ports/ledger-store.ts';
import { encodeTransferCommand, ledgerStream, transferFailedTopic, transferRequestedTopic, transferSucceededTopic } from '../../src/payments/codec.ts';
import { LedgerProcessor, type LedgerCounts } from '../../src/payments/processor.ts';
import { TransientError, type HandleResult, type Processor } from '../../src/runtime/processor.ts';
import { ensureRequestReplyTopics } from '../../src/runtime/request-reply.ts';
import { pingResponder } from '../../src/ping/responder.ts';
import { ensureLedgerTopics, processCommands, readPaymentEvents, readReplies, readTopic, type Reply } from '../support/ledger.ts';
import { snapshotCells } from '../support/analytics.ts';

const merchant = 'm_shop';
const settledMs = Date.UTC(2024, 0, 15, 12, 0, 0);
const opened: { directory: string; ledger: LedgerStore }[] = [];
after(async () => {
  for (const { directory, ledger } of opened) {
    await ledger.close();
    rmSync(directory, { recursive: true, force: true });
  }
});

function account(id: string, overrides: Partial<Account> = {}): Account {
  return { id, merchantId: merchant, currency: 'USD', name: null, allowOverdraft: false, metadata: {}, balance: 0n, createdMs: 1, ...overrides };
}

function command(id: string, from: string, to: string, amount: bigint, overrides: Partial<TransferCommand> = {}): TransferCommand {
  return { id, merchantId: merchant, fromAccountId: from, toAccountId: to, amount, currency: 'USD', description: null, metadata: {}, requestedMs: 1, ...overrides };
}

interface Rig {
  readonly log: MemoryEventLog;
  readonly ledger: SqliteLedgerStore;
  readonly counts: LedgerCounts[];
  processor(): LedgerProcessor;
}

/** A memory log with the ledger topics, a SQLite ledger in a temp directory, accounts fund (overdraft), a, b. */
async function rig(partitions = 2): Promise<Rig> {
  const directory = mkdtempSync(join(tmpdir(), 'tally-ledger-processor-'));
  const log = MemoryEventLog.create();
  await ensureLedgerTopics(log, partitions);
  const ledger = SqliteLedgerStore.create({ db: join(directory, 'store.db') });
  opened.push({ directory, ledger });
  for (const item of [account('fund', { allowOverdraft: true }), account('a'), account('b')]) await ledger.createAccount(item);
  const counts: LedgerCounts[] = [];
  const observer = { transfersDecided: (batch: LedgerCounts) => counts.push(batch) };
  return { log, ledger, counts, processor: () => new LedgerProcessor({ ledger, log, observer, now: () => settledMs }) };
}

async function append(log: EventLog, ...commands: TransferCommand[]): Promise<LogPosition[]> {
  return log.append(transferRequestedTopic, commands.map((item) => ({ key: item.fromAccountId, value: encodeTransferCommand(item) })));
}

async function balances(ledger: LedgerStore, ...ids: string[]): Promise<(bigint | null)[]> {
  return Promise.all(ids.map(async (id) => (await ledger.getAccount(merchant, id))?.balance ?? null));
}

/** What the replies said per transfer id (status, or error code), sorted: `id → ['insufficient_funds', 'succeeded', …]`. */
function repliesById(replies: readonly Reply[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { command, says } of replies) {
    if (!command) continue;
    out.set(command.id, [...(out.get(command.id) ?? []), says].sort());
  }
  return out;
}

function sum(counts: readonly LedgerCounts[], key: keyof LedgerCounts): number {
  return counts.reduce((total, item) => total + item[key], 0);
}

/** One delivery of records to a member, as the runtime makes it. */
function deliver(member: Processor, records: readonly ConsumedRecord[]): Promise<HandleResult> {
  return member.handle(records, { signal: new AbortController().signal, attempt: 1 });
}

/** Records of the command topic, as a consumer would receive them (for direct handle() calls). */
async function commandRecords(log: EventLog): Promise<ConsumedRecord[]> {
  return readTopic(log, transferRequestedTopic);
}

describe('ledger processor', () => {
  test('every command gets its reply on .succeeded or .failed, keyed by the debited account', async () => {
    const { log, ledger, counts, processor } = await rig();
    await append(log,
      command('t_fund', 'fund', 'a', 1000n, { description: 'top-up', metadata: { source: 'card' } }),
      command('t_ok', 'a', 'b', 400n),
      command('t_poor', 'a', 'b', 601n),
      command('t_ghost', 'b', 'nobody', 1n),
    );
    await processCommands(log, processor());
    const replies = await readReplies(log);
    assert.deepEqual(Object.fromEntries(repliesById(replies)), {
      t_fund: ['succeeded'], t_ok: ['succeeded'], t_poor: ['insufficient_funds'], t_ghost: ['account_not_found'],
    });
    for (const reply of replies) {
      const { transfer } = reply;
      assert.ok(transfer && reply.command);
      assert.equal(reply.topic, transfer.status === 'succeeded' ? transferSucceededTopic : transferFailedTopic);
      assert.equal(reply.error?.code ?? null, transfer.failureCode);
      assert.equal(reply.key, transfer.fromAccountId, 'keyed like the command');
      assert.equal(transfer.settledMs, settledMs);
      assert.deepEqual(transfer, await ledger.getTransfer(merchant, transfer.id), 'the reply says what the store holds');
    }
    assert.deepEqual(await balances(ledger, 'fund', 'a', 'b'), [-1000n, 600n, 400n]);
    assert.equal(sum(counts, 'succeeded'), 2);
    assert.equal(sum(counts, 'failed'), 2);
  });

  test('a malformed command is answered with invalid_format, committed past and never dead-lettered', async () => {
    const { log, ledger, counts, processor } = await rig(1);
    await log.append(transferRequestedTopic, [
      { key: 'a', value: '{not json' },
      { key: 'a', value: JSON.stringify({ ...JSON.parse(encodeTransferCommand(command('t_bad', 'a', 'b', 1n))), amount: 5 }) },
    ]);
    await append(log, command('t_after', 'fund', 'b', 10n));
    await processCommands(log, processor());
    const failed = await readTopic(log, transferFailedTopic);
    assert.deepEqual(failed.map((record) => [record.key, JSON.parse(record.value)]), [
      ['a', { request: { partition: 0, offset: 0, key: 'a' }, error: { code: 'invalid_format', message: 'the command is not JSON' } }],
      ['a', {
        request: { partition: 0, offset: 1, key: 'a' },
        error: { code: 'invalid_format', message: 'amount must be a decimal string of an integer in [1, 9007199254740991]' },
      }],
    ]);
    assert.equal((await ledger.getTransfer(merchant, 't_after'))?.status, 'succeeded', 'the command after them was decided');
    assert.equal(await ledger.getTransfer(merchant, 't_bad'), null);
    assert.equal(await ledger.settledOffset(ledgerStream, 0), 2);
    assert.deepEqual(await log.endOffsets(`${transferRequestedTopic}.dlq`), new Map([[0, 0]]));
    assert.equal(sum(counts, 'malformed'), 2);
  });

  test('a malformed command gets the reply any responder gives it: the same request reference, error, and nothing else', async () => {
    const { log, processor } = await rig(1);
    const malformed = ['{not json', '[1]', '"ping"', JSON.stringify({ id: 't_x' })];
    await log.append(transferRequestedTopic, malformed.map((value) => ({ key: 'a', value })));
    const records = await commandRecords(log);
    const pingLog = MemoryEventLog.create();
    await ensureRequestReplyTopics(pingLog, pingResponder.topics, 1);
    await pingLog.append(pingResponder.topics.requested, malformed.map((value) => ({ key: 'a', value })));
    await deliver(processor(), records);
    await deliver(pingResponder.processor({ log: pingLog }), await readTopic(pingLog, pingResponder.topics.requested));
    const ledgerReplies = (await readTopic(log, transferFailedTopic)).map((record) => JSON.parse(record.value) as Record<string, unknown>);
    const pingReplies = (await readTopic(pingLog, pingResponder.topics.failed)).map((record) => JSON.parse(record.value) as Record<string, unknown>);
    assert.equal(ledgerReplies.length, malformed.length);
    assert.equal(pingReplies.length, 3, 'ping takes any JSON object, so the last record is a valid ping');
    assert.deepEqual(ledgerReplies[0], pingReplies[0], 'a record that is not JSON: the very same reply');
    const shape = (reply: Record<string, unknown>): unknown => ({
      keys: Object.keys(reply), request: Object.keys(reply.request as object), error: Object.keys(reply.error as object),
      code: (reply.error as { code: string }).code,
    });
    const expected = { keys: ['request', 'error'], request: ['partition', 'offset', 'key'], error: ['code', 'message'], code: 'invalid_format' };
    for (const reply of [...ledgerReplies, ...pingReplies]) assert.deepEqual(shape(reply), expected, JSON.stringify(reply));
    assert.deepEqual(ledgerReplies.map((reply) => reply.request), records.map((record) => ({ partition: record.partition, offset: record.offset, key: record.key })));
  });

  test('a command that keeps failing is answered handler_failed on .failed and dead-lettered; its neighbours are decided', async () => {
    const { log, ledger } = await rig(1);
    const buggy = failingSettle(ledger, 't_poison', 'ledger bug (test): cannot settle t_poison');
    await append(log, command('t_ok1', 'fund', 'a', 10n), command('t_poison', 'fund', 'a', 5n), command('t_ok2', 'fund', 'b', 7n));
    await processCommands(log, new LedgerProcessor({ ledger: buggy, log, now: () => settledMs }));
    const failed = await readTopic(log, transferFailedTopic);
    assert.deepEqual(failed.map((record) => [record.key, JSON.parse(record.value)]), [
      ['fund', { request: { partition: 0, offset: 1, key: 'fund' }, error: { code: 'handler_failed', message: 'ledger bug (test): cannot settle t_poison' } }],
    ]);
    const letters = (await readTopic(log, `${transferRequestedTopic}.dlq`)).map((record) => JSON.parse(record.value) as { error: { code: string }; source: { offset: number } });
    assert.deepEqual(letters.map((letter) => [letter.error.code, letter.source.offset]), [['handler_failed', 1]]);
    assert.deepEqual(await balances(ledger, 'fund', 'a', 'b'), [-17n, 10n, 7n]);
    assert.equal(await ledger.getTransfer(merchant, 't_poison'), null, 'nothing of it was applied');
  });

  test('a redelivered batch answers again from the store and applies nothing twice', async () => {
    const { log, ledger, counts, processor } = await rig(1);
    await append(log, command('t_fund', 'fund', 'a', 100n), command('t_1', 'a', 'b', 70n), command('t_2', 'a', 'b', 70n));
    const records = await commandRecords(log);
    const first = processor();
    await deliver(first, records);
    // The same records again, to the same member (a failed commit) and to a new one (a crash).
    await deliver(first, records);
    await deliver(processor(), records);
    const replies = await readReplies(log);
    assert.deepEqual(Object.fromEntries(repliesById(replies)), {
      t_fund: ['succeeded', 'succeeded', 'succeeded'], t_1: ['succeeded', 'succeeded', 'succeeded'],
      t_2: ['insufficient_funds', 'insufficient_funds', 'insufficient_funds'],
    });
    const [original, ...again] = replies.filter((reply) => reply.command?.id === 't_1');
    for (const reply of again) assert.deepEqual(reply, original, 'a re-sent reply is the same reply, naming the same request');
    assert.deepEqual(await balances(ledger, 'fund', 'a', 'b'), [-100n, 30n, 70n]);
    assert.equal((await ledger.listEntries(merchant, 'b')).length, 1);
    assert.deepEqual(counts.map((item) => [item.succeeded, item.failed, item.replayed]), [[2, 1, 0], [0, 0, 3], [0, 0, 3]]);
  });

  test('replies lost to a failed append are sent on the retry, from the store, without a second settle', async () => {
    const { log, ledger } = await rig(1);
    await append(log, command('t_fund', 'fund', 'a', 100n), command('t_1', 'a', 'b', 30n));
    const records = await commandRecords(log);
    const flaky = new FlakyLog(log, 1);
    const member = new LedgerProcessor({ ledger, log: flaky, now: () => settledMs });
    await assert.rejects(deliver(member, records), TransientError);
    assert.equal(await ledger.settledOffset(ledgerStream, 0), 1, 'the settle happened before the append failed');
    assert.deepEqual(await readReplies(log), []);
    await deliver(member, records);
    assert.deepEqual(Object.fromEntries(repliesById(await readReplies(log))), { t_fund: ['succeeded'], t_1: ['succeeded'] });
    assert.deepEqual(await balances(ledger, 'a', 'b'), [70n, 30n]);
  });

  test('a member whose view of the partition is stale reloads it on the conflict and answers the overlap from the store', async () => {
    const { log, ledger, processor } = await rig(1);
    await append(log, command('t_0', 'fund', 'a', 100n), command('t_1', 'a', 'b', 10n), command('t_2', 'a', 'b', 20n), command('t_3', 'a', 'b', 30n), command('t_4', 'a', 'b', 40n));
    const records = await commandRecords(log);
    const zombie = processor();
    await deliver(zombie, records.slice(0, 2));
    // Another member took the partition over and settled further; the zombie still believes offset 1.
    await deliver(processor(), records.slice(2, 4));
    await deliver(zombie, records.slice(2));
    assert.deepEqual(await balances(ledger, 'a', 'b'), [0n, 100n]);
    assert.equal(await ledger.settledOffset(ledgerStream, 0), 4);
    const byId = repliesById(await readReplies(log));
    assert.deepEqual(byId.get('t_2'), ['succeeded', 'succeeded']);
    assert.deepEqual(byId.get('t_4'), ['succeeded']);
    assert.equal((await ledger.listEntries(merchant, 'b')).length, 4);
  });

  test('a failed transfer redelivered after the funds arrived is answered failed again; a reused id is refused', async () => {
    const { log, ledger, processor } = await rig();
    const poor = command('t_poor', 'a', 'b', 500n);
    const paid = command('t_paid', 'fund', 'b', 5n);
    await append(log, poor, paid);
    await processCommands(log, processor());
    await append(log, command('t_fund', 'fund', 'a', 1000n));
    await processCommands(log, processor());
    await append(log, { ...poor, requestedMs: 99 }, { ...paid, amount: 6n }, command('t_poor', 'fund', 'a', 1n, { description: 'another payload' }));
    await processCommands(log, processor());
    const replies = await readReplies(log);
    assert.deepEqual(repliesById(replies).get('t_poor'), ['insufficient_funds', 'insufficient_funds', 'transfer_id_reused']);
    assert.deepEqual(repliesById(replies).get('t_paid'), ['succeeded', 'transfer_id_reused']);
    const refused = replies.find((reply) => reply.says === 'transfer_id_reused' && reply.command?.id === 't_paid');
    assert.equal(refused?.command?.amount, 6n, 'the refusal names the refused command');
    assert.equal(refused?.transfer, null, 'and does not pass the stored transfer off as its outcome');
    assert.equal((await ledger.getTransfer(merchant, 't_poor'))?.status, 'failed');
    assert.equal((await ledger.getTransfer(merchant, 't_paid'))?.amount, 5n);
    assert.deepEqual(await balances(ledger, 'fund', 'a', 'b'), [-1005n, 1000n, 5n]);
  });

  test('store failures are transient (retried forever), not poison records', async () => {
    const { log, processor } = await rig(1);
    await append(log, command('t_1', 'fund', 'a', 1n));
    const records = await commandRecords(log);
    const down = new LedgerProcessor({ ledger: new UnavailableLedger(), log, now: () => settledMs });
    await assert.rejects(deliver(down, records), TransientError);
    await deliver(processor(), records);
    assert.deepEqual(Object.fromEntries(repliesById(await readReplies(log))), { t_1: ['succeeded'] });
  });

  test('each succeeded transfer emits one payment event for the merchant, counted once by analytics however often it is re-sent', async () => {
    const { log, ledger, processor } = await rig();
    await append(log, command('t_1', 'fund', 'a', 1250n), command('t_2', 'a', 'b', 250n), command('t_3', 'a', 'b', 99_999n));
    await processCommands(log, processor());
    // A redelivery of everything re-sends the events (with the same ids).
    await deliver(processor(), await commandRecords(log));
    const events = await readPaymentEvents(log);
    assert.equal(events.length, 4);
    const first = events.find(({ event }) => event.id === 'payment:t_1');
    assert.deepEqual(first?.key, merchant);
    assert.deepEqual(first?.event, {
      merchantId: merchant, id: 'payment:t_1', type: 'payment', timestampMs: settledMs, receivedMs: settledMs,
      userId: null, anonymousId: 'fund', sessionId: null, visitorId: 'a:fund', properties: null,
      revenue: { amount: 1250, currency: 'USD' }, page: null,
      visit: { source: null, utmSource: null, utmMedium: null, utmCampaign: null, country: null, browser: null, os: null, device: null },
      locale: null,
    });
    assert.ok(!events.some(({ event }) => event.id === 'payment:t_3'), 'a failed transfer is no payment');

    const rollups = MemoryRollupStore.create({ logicVersion: currentRules.logicVersion });
    const merchants = MemoryMerchantStore.create();
    await merchants.create({ merchant: { id: merchant, name: 'Shop', currency: 'USD', allowedOrigins: [], createdMs: 0 }, writeKeyHash: 'w', secretKeyHash: 's' });
    const analytics = new AnalyticsProcessor({ events: MemoryEventStore.create(), rollups, merchants, rules: currentRules });
    const runs = await deliver(analytics, await readTopic(log, eventsTopic));
    assert.deepEqual(runs.deadLetters, []);
    const cells = await snapshotCells(rollups, [merchant], ['event:type']);
    const day = Math.floor(settledMs / time.dayMs) * time.dayMs;
    const payments = cells.get(`${merchant}|day|${day}|event:type|payment`);
    assert.deepEqual([payments?.events, payments?.revenue, payments?.users], [2, '1500', 2], 'two payments by two paying accounts');
  });
});

/** The memory log, whose first `failures` appends reject as an unavailable log would. */
class FlakyLog implements EventLog {
  readonly #log: EventLog;
  #failures: number;
  constructor(log: EventLog, failures: number) {
    this.#log = log;
    this.#failures = failures;
  }
  async append(topic: string, records: readonly AppendRecord[]): Promise<LogPosition[]> {
    if (this.#failures > 0) {
      this.#failures--;
      throw new LogUnavailableError('log down (test)');
    }
    return this.#log.append(topic, records);
  }
  ensureTopic(topic: string, partitions: number): Promise<void> {
    return this.#log.ensureTopic(topic, partitions);
  }
  consumer(...args: Parameters<EventLog['consumer']>): ReturnType<EventLog['consumer']> {
    return this.#log.consumer(...args);
  }
  endOffsets(topic: string): Promise<Map<number, number>> {
    return this.#log.endOffsets(topic);
  }
  committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    return this.#log.committedOffsets(group, topic);
  }
  ping(): Promise<void> {
    return this.#log.ping();
  }
  close(): Promise<void> {
    return this.#log.close();
  }
}

/** A ledger store that is down: every call rejects with the retryable store_unavailable. */
/** The ledger, except that settling a batch holding `transferId` throws a plain (non-transient) error. */
function failingSettle(ledger: LedgerStore, transferId: string, message: string): LedgerStore {
  return new Proxy(ledger, {
    get(target, property) {
      if (property === 'settle') {
        return async (batch: Parameters<LedgerStore['settle']>[0]) => {
          if (batch.commands.some((item) => item.id === transferId)) throw new Error(message);
          return target.settle(batch);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

class UnavailableLedger implements LedgerStore {
  #down(): Promise<never> {
    return Promise.reject(new TallyError('store_unavailable', 'ledger down (test)'));
  }
  createAccount = () => this.#down();
  getAccount = () => this.#down();
  listAccounts = () => this.#down();
  recordPending = () => this.#down();
  getTransfer = () => this.#down();
  listAccountTransfers = () => this.#down();
  listEntries = () => this.#down();
  settledOffset = () => this.#down();
  settle = () => this.#down();
  getIdempotency = () => this.#down();
  putIdempotency = () => this.#down();
  pruneIdempotency = () => this.#down();
  ping = () => this.#down();
  close = async (): Promise<void> => {};
}
