// The ledger's invariant scenarios, TigerBeetle's auditor style, run on either deployment
// (test/support/ledger-deployments.ts): a seeded workload appended by concurrent producers while
// ledger children are SIGKILLed at random moments, then the auditor (test/support/ledger-audit.ts)
// checks every invariant from what the store and the log hold; and N concurrent debits beyond a
// balance across a kill. A deployment may add checks of its own (the embedded one replays SQLite's
// decision order through a reference model).
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { randomInteger, seededRandom } from '../../src/adapters/memory/prng.ts';
import { samePayload, type TransferCommand } from '../../src/core/payments/ledger.ts';
import type { AppendRecord, EventLog } from '../../src/core/ports/event-log.ts';
import { encodeTransferCommand, ledgerGroup, transferRequestedTopic } from '../../src/payments/codec.ts';
import { ledgerStream } from '../../src/payments/codec.ts';
import { auditLedger, auditReplies, type LedgerAudit } from './ledger-audit.ts';
import type { LedgerDeployment, LedgerMember } from './ledger-deployments.ts';
import { readCommandRecords } from './ledger.ts';
import { chooseSeed, generateWorkload, makeAccount, makeCommand, toRecord, type WorkloadOptions } from './ledger-workload.ts';
import { sleep } from './processes.ts';

export interface ScenarioTimings {
  /** A killed deployment may need this long to work off its backlog on a busy 2-core machine. */
  readonly catchUpMsMax: number;
  /** How long members dawdle between a settle and its replies: a kill on the settle line lands in that window. */
  readonly pauseAfterSettleMs: number;
  /** A kill waiting for a settle gives up waiting after this (the member may have nothing to do). */
  readonly settleWaitMsMax: number;
  /** The producers spread their appends over about this long, while members are killed. */
  readonly streamMs: number;
  /** Kills in [min, max). */
  readonly kills: readonly [number, number];
  /**
   * Freezes in [min, max): a member stopped (SIGSTOP) for freezeMs at a random moment, longer than
   * its session, so its partitions move on; then it goes on as a zombie from where it stopped.
   */
  readonly freezes: readonly [number, number];
  readonly freezeMs: number;
  /** How often to look whether the ledger caught up (each look is two admin requests on Kafka). */
  readonly caughtUpPollMs: number;
}

export interface RandomWorkloadOptions {
  readonly workload: WorkloadOptions;
  readonly timings: ScenarioTimings;
  /** The run must have moved at least this much money (succeeded transfers)… */
  readonly succeededMin: number;
  /** …and run accounts dry at least this often. */
  readonly insufficientFundsMin: number;
  /** Checks only this deployment allows, after the shared audit. */
  readonly extraAudit?: (audit: LedgerAudit) => Promise<void>;
}

/** The command topic's end offsets once the ledger group has committed every command below them. */
async function waitCaughtUp(deployment: LedgerDeployment, timings: ScenarioTimings): Promise<Map<number, number>> {
  const deadline = Date.now() + timings.catchUpMsMax;
  for (;;) {
    const [ends, committed] = await Promise.all([deployment.log.endOffsets(transferRequestedTopic), deployment.log.committedOffsets(ledgerGroup, transferRequestedTopic)]);
    if ([...ends].every(([partition, end]) => (committed.get(partition) ?? 0) >= end)) return ends;
    if (Date.now() > deadline) {
      throw new Error(`the ledger processors did not catch up within ${timings.catchUpMsMax} ms ` +
        `(ends ${JSON.stringify([...ends])}, committed ${JSON.stringify([...committed])})\n${deployment.children.output()}`);
    }
    await sleep(timings.caughtUpPollMs);
  }
}

/** True when some partition's ledger is settled past the group's commit: the redelivery must answer from the store. */
async function settledAheadOfCommit(deployment: LedgerDeployment): Promise<boolean> {
  const committed = await deployment.log.committedOffsets(ledgerGroup, transferRequestedTopic);
  const ends = await deployment.log.endOffsets(transferRequestedTopic);
  for (const partition of ends.keys()) {
    const settled = await deployment.store.settledOffset(ledgerStream, partition);
    if (settled + 1 > (committed.get(partition) ?? 0)) return true;
  }
  return false;
}

/** Appends until the log takes the records (a busy log is the producer's cue to resend). */
async function appendCommands(log: EventLog, records: readonly AppendRecord[]): Promise<void> {
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

/**
 * Random transfers from concurrent producers, redeliveries, reused ids, malformed records and
 * random SIGKILLs of two members: afterwards every invariant holds.
 */
export async function runRandomWorkload(t: TestContext, deployment: LedgerDeployment, options: RandomWorkloadOptions): Promise<void> {
  const { timings } = options;
  const seed = chooseSeed(t);
  const startedMs = performance.now();
  const workload = generateWorkload(seededRandom(seed), options.workload);
  // Pacing and kills draw from their own generators: concurrent draws from one would depend on timing.
  const killRandom = seededRandom(seed + 1);
  const { children, log, store } = deployment;
  for (const account of workload.accounts) await store.createAccount(account);
  const accounts = new Map(workload.accounts.map((account) => [account.id, account]));
  const appended: TransferCommand[] = [];
  const barriers: Map<number, number>[] = [];
  const members = await Promise.all([children.start(timings.pauseAfterSettleMs), children.start(timings.pauseAfterSettleMs)]);
  const setUpMs = performance.now() - startedMs;

  // Funding first (and the late accounts' transfers, which find nothing to spend), all settled.
  await appendCommands(log, [...workload.funding, ...workload.lateFailures].map(toRecord));
  appended.push(...workload.funding, ...workload.lateFailures);
  barriers.push(await waitCaughtUp(deployment, timings));
  const fundedMs = performance.now() - startedMs;

  // Then the producers, paced over the stream, while members are killed and restarted.
  const { streamMs } = timings;
  appended.push(...workload.lateFunding);
  await appendCommands(log, workload.lateFunding.map(toRecord));
  const producing = workload.producers.map(async (appends, producer) => {
    const pace = seededRandom(seed + 2 + producer);
    const producerLog = deployment.producerLog(producer);
    for (const chunk of appends) {
      await appendCommands(producerLog, chunk.map((item) => (typeof item === 'string' ? { key: 'malformed', value: item } : toRecord(item))));
      for (const item of chunk) if (typeof item !== 'string') appended.push(item);
      await sleep(randomInteger(pace, 0, (2 * streamMs) / appends.length));
    }
  });
  // Every other kill waits for the victim's next settle: it dies with its replies unsent. Freezes
  // come after the kills (they outlast a session: a kill after one would wait for two sessions).
  const kills = randomInteger(killRandom, timings.kills[0], timings.kills[1]);
  const freezes = timings.freezes[1] > timings.freezes[0] ? randomInteger(killRandom, timings.freezes[0], timings.freezes[1]) : 0;
  const killedAtMs: number[] = [];
  const frozenAtMs: number[] = [];
  let killsAheadOfCommit = 0;
  const killing = (async () => {
    for (let kill = 0; kill < kills; kill++) {
      await sleep(randomInteger(killRandom, 200, streamMs / (kills + freezes)));
      const victim: LedgerMember = members[randomInteger(killRandom, 0, members.length)]!;
      if (kill % 2 === 0) await Promise.race([victim.nextSettle(), sleep(timings.settleWaitMsMax)]);
      const exit = await victim.kill('SIGKILL');
      assert.equal(exit.signal, 'SIGKILL', `the member was killed, it did not exit on its own\n${children.output()}`);
      killedAtMs.push(Math.round(performance.now() - startedMs));
      if (await settledAheadOfCommit(deployment)) killsAheadOfCommit++;
      await sleep(randomInteger(killRandom, 50, 600));
      members[members.indexOf(victim)] = await children.start(timings.pauseAfterSettleMs);
    }
    for (let freeze = 0; freeze < freezes; freeze++) {
      await sleep(randomInteger(killRandom, 200, streamMs / (kills + freezes)));
      // Frozen as it starts a settle: it wakes up to settle offsets the other member has settled since.
      const victim = members[randomInteger(killRandom, 0, members.length)]!;
      await Promise.race([victim.nextSettling(), sleep(timings.settleWaitMsMax)]);
      frozenAtMs.push(Math.round(performance.now() - startedMs));
      await victim.freeze(timings.freezeMs);
    }
  })();
  await Promise.all([...producing, killing]);
  const streamedMs = performance.now() - startedMs;
  barriers.push(await waitCaughtUp(deployment, timings));
  const caughtUpMs = performance.now() - startedMs;

  // The late transfers again, now that their accounts hold funds: they stay failed.
  await appendCommands(log, workload.lateFailures.map(toRecord));
  appended.push(...workload.lateFailures);
  barriers.push(await waitCaughtUp(deployment, timings));
  for (const member of members) assert.deepEqual(await member.kill('SIGTERM'), { code: 0, signal: null }, `a member did not drain cleanly\n${children.output()}`);

  // Every append that resolved is in the command topic; the audit reads the topic, not our list.
  const commandRecords = await readCommandRecords(log);
  const inTopic = new Set(commandRecords.map((record) => (record.command === null ? null : encodeTransferCommand(record.command))));
  for (const command of appended) assert.ok(inTopic.has(encodeTransferCommand(command)), `${command.id} was appended but is not in the command topic`);

  const audit = await auditLedger({ store, accounts, commandRecords, barriers });
  const { report, transfers } = audit;
  for (const command of workload.lateFailures) {
    const transfer = transfers.get(command.id);
    assert.deepEqual([transfer?.status, transfer?.failureCode], ['failed', 'insufficient_funds'], `${command.id} stays failed once funds arrived`);
    assert.equal((await store.getAccount(command.merchantId, command.fromAccountId))?.balance, 1000n, 'funded after its transfer failed');
  }
  for (const { original, variant } of workload.reusedSamePartition) {
    assert.ok(samePayload(transfers.get(original.id)!, original), `${variant.id}: the later payload on the same partition replaced the original`);
  }
  const replies = await auditReplies(log, commandRecords, transfers);
  await options.extraAudit?.(audit);
  t.diagnostic(`${commandRecords.length} command records (${appended.length} commands appended), ${report.transfers} transfers (${report.succeeded} succeeded, ` +
    `failures ${JSON.stringify(report.failures)}), ${report.entries} entries, ${replies} replies; ${report.fundsChecksBounded} insufficient_funds decisions bounded by known funds; ` +
    `${kills} kills at ${killedAtMs.join(', ')} ms, ${killsAheadOfCommit} of them with the ledger ahead of the commit; ` +
    (freezes > 0 ? `${freezes} freezes of ${timings.freezeMs} ms at ${frozenAtMs.join(', ')} ms; ` : '') +
    `${children.conflicts()} settles met another member's work (LedgerConflictError); ` +
    `${workload.reusedSamePartition.length} reused ids; ` +
    `set up ${Math.round(setUpMs)} ms, funded ${Math.round(fundedMs)} ms, streamed ${Math.round(streamedMs)} ms, caught up ${Math.round(caughtUpMs)} ms, ` +
    `audited ${Math.round(performance.now() - startedMs)} ms`);
  assert.ok(report.succeeded >= options.succeededMin && (report.failures.insufficient_funds ?? 0) >= options.insufficientFundsMin, 'the workload moved money and ran accounts dry');
  assert.ok(killsAheadOfCommit >= 1, 'some kill left settled transfers unanswered and uncommitted (the redelivery had to answer them from the store)');
}

/** N concurrent debits that together exceed a balance, across a kill: exactly ⌊balance / amount⌋ succeed. */
export async function runConcurrentDebits(t: TestContext, deployment: LedgerDeployment, timings: ScenarioTimings): Promise<void> {
  const seed = chooseSeed(t);
  const random = seededRandom(seed);
  const balance = BigInt(randomInteger(random, 5_000, 20_000));
  const amount = BigInt(randomInteger(random, 300, 900));
  const debits = Number(balance / amount) + randomInteger(random, 5, 30);
  const { children, log, store } = deployment;
  const fund = makeAccount('fund', 'm_alpha', 'USD', true);
  const payer = makeAccount('payer', 'm_alpha', 'USD', false);
  const payees = Array.from({ length: 8 }, (_, index) => makeAccount(`payee_${index}`, 'm_alpha', 'USD', false));
  for (const account of [fund, payer, ...payees]) await store.createAccount(account);
  let member = await children.start(0);
  await appendCommands(log, [toRecord(makeCommand('t_fund', fund, payer, balance))]);
  const barriers = [await waitCaughtUp(deployment, timings)];

  const commands = Array.from({ length: debits }, (_, index) => makeCommand(`t_debit_${index}`, payer, payees[index % payees.length]!, amount));
  const killing = (async () => {
    await sleep(randomInteger(random, 0, 150));
    await member.kill('SIGKILL');
    member = await children.start(0);
  })();
  await Promise.all([...commands.map((command, index) => appendCommands(deployment.producerLog(index % 4), [toRecord(command)])), killing]);
  barriers.push(await waitCaughtUp(deployment, timings));
  assert.deepEqual(await member.kill('SIGTERM'), { code: 0, signal: null }, `the member did not drain cleanly\n${children.output()}`);

  const outcomes = await Promise.all(commands.map((command) => store.getTransfer('m_alpha', command.id)));
  const succeeded = outcomes.filter((transfer) => transfer?.status === 'succeeded').length;
  t.diagnostic(`balance ${balance}, ${debits} debits of ${amount}: ${succeeded} succeeded`);
  assert.equal(succeeded, Number(balance / amount));
  assert.ok(outcomes.every((transfer) => transfer?.status === 'succeeded' || transfer?.failureCode === 'insufficient_funds'));
  assert.equal((await store.getAccount('m_alpha', 'payer'))?.balance, balance % amount);
  const entries = await store.listEntries('m_alpha', 'payer');
  assert.equal(entries.length, 1 + succeeded);
  assert.ok(entries.every((entry) => entry.balanceAfter >= 0n));
  // And the whole ledger of the run passes the auditor.
  const accounts = new Map([fund, payer, ...payees].map((account) => [account.id, account]));
  const commandRecords = await readCommandRecords(log);
  const { transfers } = await auditLedger({ store, accounts, commandRecords, barriers });
  await auditReplies(log, commandRecords, transfers);
}
