// Scenario "distributed-ledger": the payments ledger on Kafka + Cassandra (Redis for the query
// cache, unused here), one fresh installation per run (bench/distributed.ts). Phases:
//  1. Backlog drain: accounts created in the Cassandra ledger store, then transfer commands appended
//     to `payments.transfer.requested` (the API's codec, keyed by the debited account) with no
//     processor running, then drained: first by the LedgerProcessor on a ProcessorRuntime in the
//     bench's own process with polls of at most 2,000 commands (the ledger alone: no analytics
//     beside it), then by ONE `tally processor` process, and (if that drained) another backlog by
//     TWO (one consumer group): transfers applied per second, without HTTP. The in-process drain
//     exists because a `tally processor` polls up to 20,000 commands and appends their replies in
//     one produce request, which Kafka refuses once it passes message.max.bytes — retried for ever
//     (see docs/benchmarks.md); a stalled drain is reported and finished in process.
//     Every customer holds 1,000,000, so every transfer succeeds (as in the embedded settle phase).
//     Afterwards, from the store and the log: balances sum to 0, no account without overdraft below
//     0 at any entry, every balance the replay of its entries, one debit and one credit per
//     transfer, and every command answered exactly by one decision (replies read back from
//     `.succeeded` / `.failed`, matched by position).
//  2. HTTP: `tally query` (the payments API) and a fresh `tally processor`; the embedded scenario's
//     phase 2 (bench/scenarios/ledger.ts, measureTransfersOverHttp) plus submit → final at a few
//     concurrencies: 1,000 customers funded over HTTP, one client alone, then 4, 16 and 64 clients
//     waiting for each transfer's outcome, then 64 connections of random transfers. Applied is end
//     to end: until the query process is idle and the ledger group has committed every command.
// No target: the issue asks to measure and report (the embedded target is ≥ 20,000/s).
import { randomUUID } from 'node:crypto';
import { Admin } from '@platformatic/kafka';
import { randomInteger, seededRandom } from '../../src/adapters/memory/prng.ts';
import { loadConfig } from '../../src/config/config.ts';
import { openDistributed } from '../../src/cli/compose-distributed.ts';
import { limits } from '../../src/core/limits.ts';
import type { Account, TransferCommand } from '../../src/core/payments/ledger.ts';
import type { LedgerStore } from '../../src/core/ports/ledger-store.ts';
import type { ConsumedRecord, EventLog } from '../../src/core/ports/event-log.ts';
import { LedgerProcessor } from '../../src/payments/processor.ts';
import { ProcessorRuntime } from '../../src/runtime/processor-runtime.ts';
import {
  decodeTransferReply, encodeTransferCommand, ledgerGroup, transferFailedTopic, transferRequestedTopic, transferSucceededTopic,
} from '../../src/payments/codec.ts';
import { Audit, twoDistinct } from '../ledger-settle.ts';
import { createMerchant, metricValue, startServer, adminToken, type BenchServer, type MerchantKeys, type ServerOptions } from '../server.ts';
import { asMerchant, createInstallation, measureCpuShares, steadyRate, type CaughtUp, type Installation } from '../distributed.ts';
import { formatCount, row, type BenchContext, type Row, type ScaleName, type ScenarioReport } from '../report.ts';
import { labelled, measureTransfersOverHttp, type Drain } from './ledger.ts';
import { drainTimeoutMs } from './measure.ts';

/** Partitions of the events topic (the payment events the ledger emits go there). */
const eventsPartitions = 4;
/** Partitions of the transfer command topic: the default TALLY_PAYMENTS_PARTITIONS. */
const commandPartitions = 8;
const backlogSizes: Readonly<Record<ScaleName, { readonly customers: number; readonly commands: number }>> = {
  full: { customers: 10_000, commands: 100_000 },
  small: { customers: 2_000, commands: 20_000 },
};
const fundingAccounts = 10;
const customerFunding = 1_000_000n;
const amountMax = 5_000;
/** Commands per append (one Kafka produce request each). */
const appendChunk = 1_000;
/** Concurrent store calls while creating accounts and auditing (not measured). */
const storeLanes = 32;
const progressPollMs = 100;
const progressLogMs = 10_000;
/** A backlog drain that commits nothing for this long is stuck (a batch of 2,000 takes seconds): stop waiting. */
const stallTimeoutMs = 60_000;
/** Commands per poll of the in-process drain: their replies and payment events stay well under Kafka's 1 MB per produce. */
const inProcessPollRecordsMax = 2_000;
const drainTimeoutMsMax = 30 * 60_000;
const groupSettleTimeoutMs = 60_000;
/** The steady rate runs from the group settling until this share of the backlog is done (no tail). */
const steadyTo = 0.9;
/** Clients waiting for each outcome in the HTTP phase, after the client alone. */
const waitingConcurrencies = [4, 16, 64];

export async function runDistributedLedger(context: BenchContext): Promise<ScenarioReport> {
  const size = backlogSizes[context.scale.name];
  context.log(`distributed ledger: migrating a fresh installation (${commandPartitions} command partitions)`);
  const installation = await createInstallation(eventsPartitions, { TALLY_PAYMENTS_PARTITIONS: String(commandPartitions) });
  context.log(`distributed ledger: installation ${installation.name}`);
  const live = new Set<BenchServer>();
  const interruption = new AbortController();
  const start = async (options: ServerOptions): Promise<BenchServer> => {
    const server = await startServer({ ...options, env: { ...installation.env, ...options.env }, nodeFlags: context.nodeFlags });
    live.add(server);
    server.onStop(() => live.delete(server));
    return server;
  };
  // On Ctrl-C the Tally processes stop and the installation is still removed from the shared engines.
  const interrupted = (signal: NodeJS.Signals): void => {
    context.log(`distributed ledger: ${signal}: stopping, then removing installation ${installation.name}`);
    interruption.abort();
    for (const server of live) void server.stop();
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const rows: Row[] = [];
  const notes: string[] = [`distributed ledger: installation ${installation.name} (removed afterwards); ${commandPartitions} command partitions, replication 1`];
  const record = async (name: string, phase: () => Promise<ScenarioReport>): Promise<void> => {
    if (interruption.signal.aborted) return;
    try {
      const done = await phase();
      rows.push(...done.rows);
      notes.push(...done.notes);
    } catch (error) {
      const message = interruption.signal.aborted ? 'interrupted' : error instanceof Error ? error.message : String(error);
      if (!interruption.signal.aborted) context.log(`distributed ledger ${name} failed: ${error instanceof Error ? (error.stack ?? message) : message}`);
      rows.push(row(`distributed ledger: ${name}`, '-', message.split('\n')[0]!.slice(0, 120), 'error'));
    }
  };
  // The bench's own view of the installation: the ledger store (accounts, audit) and the log (commands, progress, replies).
  const config = loadConfig({ ...installation.env, TALLY_ADMIN_TOKEN: adminToken, TALLY_LOG_LEVEL: 'warn' });
  const deployment = await openDistributed(config, { processMetrics: false });
  try {
    const { ledger, log } = deployment.services;
    if (!ledger) throw new Error('the distributed deployment has no ledger store (services.ledger is null): nothing to measure');
    const admin = new Admin({ clientId: 'tally-bench', bootstrapBrokers: [...(config.kafkaBrokers ?? [])] });
    try {
      // `tally query` serves the admin API (merchants) and, in phase 2, the payments API.
      const query = await start({ command: 'query' });
      const rig: Rig = { context, installation, ledger, log, admin, start, signal: interruption.signal, processorKeys: query.keys };
      await record('backlog', () => backlogDrains(rig, query, size));
      await record('http', () => overHttp(rig, query));
    } finally {
      await admin.close().catch(() => {});
    }
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await Promise.all([...live].map((server) => server.stop()));
    await deployment.close();
    await installation.remove().catch((error: unknown) => notes.push(`distributed ledger: CLEAN-UP FAILED: ${error instanceof Error ? error.message : String(error)}`));
  }
  if (interruption.signal.aborted) {
    context.log(`distributed ledger: installation ${installation.name} removed`);
    process.exit(130);
  }
  return { rows, notes };
}

interface Rig {
  readonly context: BenchContext;
  readonly installation: Installation;
  readonly ledger: LedgerStore;
  readonly log: EventLog;
  readonly admin: Admin;
  readonly signal: AbortSignal;
  /** Keys handed to `tally processor` children (they create no merchant). */
  readonly processorKeys: MerchantKeys;
  start(options: ServerOptions): Promise<BenchServer>;
}

// ---- Phase 1: backlog drains by the ledger processor(s) ----

interface BacklogBook {
  readonly merchantId: string;
  readonly customerIds: readonly string[];
  readonly fundingIds: readonly string[];
  nextCommand: number;
}

async function backlogDrains(rig: Rig, query: BenchServer, size: { customers: number; commands: number }): Promise<ScenarioReport> {
  const { context, ledger } = rig;
  const merchant = await createMerchant(query.url, 'Bench Ledger Backlog');
  const book: BacklogBook = {
    merchantId: merchant.merchantId,
    customerIds: Array.from({ length: size.customers }, () => `acct_${randomUUID()}`),
    fundingIds: Array.from({ length: fundingAccounts }, () => `acct_${randomUUID()}`),
    nextCommand: 0,
  };
  context.log(`distributed ledger: ${formatCount(size.customers)} customer and ${fundingAccounts} funding accounts, created in the store`);
  const createdMs = Date.now();
  const newAccount = (id: string, allowOverdraft: boolean): Account =>
    ({ id, merchantId: book.merchantId, currency: 'USD', name: null, allowOverdraft, metadata: {}, balance: 0n, createdMs });
  const accountsStartedMs = performance.now();
  const all = [...book.fundingIds.map((id) => newAccount(id, true)), ...book.customerIds.map((id) => newAccount(id, false))];
  await inLanes(all.length, storeLanes, (index) => ledger.createAccount(all[index]!));
  const accountsSeconds = (performance.now() - accountsStartedMs) / 1000;

  // Funding: each customer gets 1,000,000 from one of ten funding accounts (hot accounts, few keys:
  // not measured as the backlog, reported as a note).
  const funding = await appendCommands(rig, book, book.customerIds.map((to, index) => [book.fundingIds[index % fundingAccounts]!, to, customerFunding]));
  const funded = await drainInProcess(rig, funding);
  const notes = [
    `distributed ledger backlog: ${formatCount(all.length)} accounts created in ${accountsSeconds.toFixed(1)} s (${storeLanes} at once); ` +
      `funding: ${formatCount(funding.commands)} commands from ${fundingAccounts} accounts appended at ${formatCount(funding.perSecond)}/s, drained ${funded.label}: ${drainText(funded)}`,
  ];
  const rows: Row[] = [];
  const random = seededRandom(21);
  const backlog = async (): Promise<Appended> => {
    const transfers = Array.from({ length: size.commands }, (): [string, string, bigint] => {
      const [from, to] = twoDistinct(random, book.customerIds.length);
      return [book.customerIds[from]!, book.customerIds[to]!, BigInt(randomInteger(random, 1, amountMax + 1))];
    });
    context.log(`distributed ledger: appending ${formatCount(size.commands)} random transfer commands with no processor running`);
    return appendCommands(rig, book, transfers);
  };
  const drainRow = (drained: DrainResult): Row => row(`distributed ledger: backlog drain, ${drained.label}`, '(transfers/s applied)',
    drained.caught.caughtUp ? `${formatCount(drained.steady)} steady; ${formatCount(drained.whole)} from start to drained` : `STALLED after ${formatCount(drained.caught.processed - drained.processedBefore)} commands`,
    drained.caught.caughtUp ? 'info' : 'error');

  const inProcess = await drainInProcess(rig, await backlog());
  rows.push(drainRow(inProcess));
  notes.push(`distributed ledger backlog, ${inProcess.label}: ${formatCount(inProcess.appended.commands)} commands appended at ${formatCount(inProcess.appended.perSecond)}/s; ${drainText(inProcess)}`);
  const children: DrainResult[] = [];
  for (const processes of [1, 2]) {
    if (rig.signal.aborted) break;
    const drained = await drain(rig, processes, await backlog());
    children.push(drained);
    rows.push(drainRow(drained));
    notes.push(`distributed ledger backlog, ${drained.label}: ${formatCount(drained.appended.commands)} commands appended at ${formatCount(drained.appended.perSecond)}/s; ${drainText(drained)}`);
    if (!drained.caught.caughtUp) {
      // What is left is drained in process, so that the audit and the HTTP phase start from an idle ledger.
      const rest = await drainInProcess(rig, { commands: drained.caught.appended - drained.caught.processed, perSecond: Number.NaN });
      notes.push(`distributed ledger backlog: the stalled ${drained.label} left ${formatCount(drained.caught.appended - drained.caught.processed)} commands; ` +
        `the in-process drain finished them: ${drainText(rest)}`);
      break;
    }
  }
  const [one, two] = children;
  if (one?.caught.caughtUp && two?.caught.caughtUp) {
    rows.push(row('distributed ledger: backlog drain, 2 vs 1 tally processor', '(ratio, one consumer group)', `${(two.steady / one.steady).toFixed(2)}× steady`, 'info'));
  }
  context.log('distributed ledger: auditing the store (every account\'s entries) and the replies');
  const audit = await auditBacklog(rig, book);
  notes.push(`distributed ledger backlog invariants: ${audit.summary}`);
  rows.push(row('distributed ledger: backlog', 'invariants afterwards (store + replies)', audit.audit.summary(audit.detail), audit.audit.holds() ? 'pass' : 'error'));
  return { rows, notes };
}

interface Appended {
  readonly commands: number;
  readonly perSecond: number;
}

/** Appends transfer commands (from, to, amount) as the API would: its codec, keyed by the debited account. */
async function appendCommands(rig: Rig, book: BacklogBook, transfers: readonly (readonly [string, string, bigint])[]): Promise<Appended> {
  const startedMs = performance.now();
  for (let first = 0; first < transfers.length; first += appendChunk) {
    const records = transfers.slice(first, first + appendChunk).map(([from, to, amount]) => {
      const command: TransferCommand = {
        id: `tr_bench_${book.nextCommand++}`, merchantId: book.merchantId, fromAccountId: from, toAccountId: to, amount, currency: 'USD',
        description: null, metadata: {}, requestedMs: Date.now(),
      };
      return { key: from, value: encodeTransferCommand(command) };
    });
    await rig.log.append(transferRequestedTopic, records);
  }
  return { commands: transfers.length, perSecond: transfers.length / ((performance.now() - startedMs) / 1000) };
}

interface DrainResult {
  /** Who drained: '1 tally processor', 'in process (polls ≤ 2,000)'. */
  readonly label: string;
  readonly appended: Appended;
  /** Commands the group had committed before the drain. */
  readonly processedBefore: number;
  readonly caught: CaughtUp;
  /** Transfers/s from the group settling (every process owning partitions) until 90% were done. */
  readonly steady: number;
  /** Transfers/s from spawning the processes (starting the runtime) until the group committed the last command. */
  readonly whole: number;
  readonly settledAfterMs: number | null;
  /** performance.now() when the processes were spawned. */
  readonly spawnedMs: number;
  readonly cpu: string;
  /** The processes' ledger counters: succeeded, failed, replayed. */
  readonly counted: string;
}

/** Starts `processes` `tally processor` children, waits until the ledger group committed every command, stops them. */
async function drain(rig: Rig, processes: number, appended: Appended): Promise<DrainResult> {
  const { context } = rig;
  context.log(`distributed ledger: ${processes} processor process(es) draining ${formatCount(appended.commands)} commands`);
  const before = await ledgerProgress(rig.log);
  const startedMs = performance.now();
  const processors = await Promise.all(Array.from({ length: processes }, () => rig.start({ command: 'processor', keys: rig.processorKeys })));
  try {
    const cpu = measureCpuShares(new Map(processors.map((processor, index) => [`processor ${index + 1}`, processor])));
    const settling = new AbortController();
    const settled = waitLedgerGroup(rig, processes, settling.signal);
    const caught = await waitLedgerDrained(rig, before.processed);
    settling.abort();
    const cpuNote = cpu.stop();
    const settledMs = await settled;
    const texts = await Promise.all(processors.map(async (processor) => (await fetch(`${processor.url}/metrics`)).text()));
    const counter = (outcome: RegExp): number => texts.reduce((sum, text) => sum + (labelled(text, 'tally_ledger_commands_total', 'outcome', outcome) || 0), 0);
    return {
      label: `${processes} tally processor${processes > 1 ? 's' : ''}`, appended, processedBefore: before.processed, caught,
      steady: settledMs === null ? Number.NaN : steadyRate(caught, settledMs, steadyTo),
      whole: (caught.processed - before.processed) / ((caught.atMs - startedMs) / 1000),
      settledAfterMs: settledMs === null ? null : settledMs - startedMs,
      spawnedMs: startedMs,
      cpu: cpuNote,
      counted: `succeeded ${formatCount(counter(/^succeeded$/))}, failed ${formatCount(counter(/^failed$/))}, replayed ${formatCount(counter(/^replayed$/))}`,
    };
  } finally {
    await Promise.all(processors.map((processor) => processor.stop()));
  }
}

/**
 * The LedgerProcessor on a ProcessorRuntime in this process, polls of at most 2,000 commands and no
 * linger (as `tally processor` runs it, but for the poll size and without analytics beside it).
 */
async function drainInProcess(rig: Rig, appended: Appended): Promise<DrainResult> {
  const { context, ledger, log } = rig;
  context.log(`distributed ledger: the ledger processor in the bench process draining ${formatCount(appended.commands)} commands`);
  const counts = { succeeded: 0, failed: 0, replayed: 0, rejected: 0, malformed: 0 };
  let retries = 0;
  const processor = new LedgerProcessor({
    ledger, log, observer: { transfersDecided: (batch) => { for (const key of Object.keys(counts) as (keyof typeof counts)[]) counts[key] += batch[key]; } },
  });
  const runtime = new ProcessorRuntime({
    log, processor, pollRecordsMax: inProcessPollRecordsMax, pollLingerMs: 0,
    logger: { info() {}, warn: () => void retries++, error: (object, message) => context.log(`  ledger processor: ${message} ${JSON.stringify(object).slice(0, 300)}`) },
  });
  const before = await ledgerProgress(log);
  const startedMs = performance.now();
  const cpu = measureCpuShares(new Map());
  runtime.start();
  try {
    const settling = new AbortController();
    const settled = waitLedgerGroup(rig, 1, settling.signal);
    const caught = await waitLedgerDrained(rig, before.processed);
    settling.abort();
    const settledMs = await settled;
    return {
      label: `in the bench process (polls ≤ ${formatCount(inProcessPollRecordsMax)})`, appended, processedBefore: before.processed, caught,
      steady: settledMs === null ? Number.NaN : steadyRate(caught, settledMs, steadyTo),
      whole: (caught.processed - before.processed) / ((caught.atMs - startedMs) / 1000),
      settledAfterMs: settledMs === null ? null : settledMs - startedMs,
      spawnedMs: startedMs,
      cpu: cpu.stop().replace('load generator', 'bench process (the ledger processor)'),
      counted: `succeeded ${formatCount(counts.succeeded)}, failed ${formatCount(counts.failed)}, replayed ${formatCount(counts.replayed)}; ${retries} batch retries`,
    };
  } finally {
    await runtime.stop();
  }
}

function drainText(drained: DrainResult): string {
  const done = drained.caught.caughtUp
    ? `drained ${((drained.caught.atMs - drained.spawnedMs) / 1000).toFixed(1)} s after starting`
    : `NOT DRAINED (${formatCount(drained.caught.processed)} of ${formatCount(drained.caught.appended)} commands committed)`;
  return `group settled ${drained.settledAfterMs === null ? 'NEVER' : `${(drained.settledAfterMs / 1000).toFixed(1)} s`} and ${done}: ` +
    `${formatCount(drained.steady)}/s steady, ${formatCount(drained.whole)}/s from start; ledger counters ${drained.counted}; ${drained.cpu}`;
}

/** Commands in the command topic, and how many of them the ledger group has committed. */
async function ledgerProgress(log: EventLog): Promise<{ appended: number; processed: number }> {
  const [ends, committed] = await Promise.all([log.endOffsets(transferRequestedTopic), log.committedOffsets(ledgerGroup, transferRequestedTopic)]);
  let appended = 0;
  let processed = 0;
  for (const [partition, end] of ends) {
    appended += end;
    processed += Math.min(end, committed.get(partition) ?? 0);
  }
  return { appended, processed };
}

/** Samples the ledger group's progress until it has committed every command (or stalls, times out, is interrupted). */
async function waitLedgerDrained(rig: Rig, processedBefore: number): Promise<CaughtUp> {
  const deadline = performance.now() + drainTimeoutMsMax;
  const samples: { atMs: number; processed: number }[] = [{ atMs: performance.now(), processed: processedBefore }];
  let loggedMs = performance.now();
  let movedMs = performance.now();
  for (;;) {
    const { appended, processed } = await ledgerProgress(rig.log);
    const atMs = performance.now();
    if (processed > samples.at(-1)!.processed) movedMs = atMs;
    samples.push({ atMs, processed });
    const stalled = atMs - movedMs > stallTimeoutMs;
    if (stalled) rig.context.log(`  STALLED: no command committed for ${stallTimeoutMs / 1000} s (${formatCount(processed)} of ${formatCount(appended)})`);
    if (processed >= appended || atMs > deadline || stalled || rig.signal.aborted) return { atMs, caughtUp: processed >= appended, samples, appended, processed };
    if (atMs - loggedMs >= progressLogMs) {
      loggedMs = atMs;
      rig.context.log(`  committed ${formatCount(processed)} of ${formatCount(appended)} commands`);
    }
    await new Promise((resolve) => setTimeout(resolve, progressPollMs));
  }
}

/** performance.now() when `members` members of the ledger group own command partitions (null: not in time, or aborted). */
async function waitLedgerGroup(rig: Rig, members: number, signal: AbortSignal): Promise<number | null> {
  const group = `${rig.installation.name}.${ledgerGroup}`;
  const topic = `${rig.installation.name}.${transferRequestedTopic}`;
  const deadline = performance.now() + groupSettleTimeoutMs;
  while (performance.now() < deadline && !signal.aborted) {
    const described = (await rig.admin.describeGroups({ groups: [group] })).get(group);
    const working = described && /^stable$/i.test(described.state)
      ? [...described.members.values()].filter((member) => [...(member.assignments?.values() ?? [])].some((assignment) => assignment.topic === topic && assignment.partitions.length > 0)).length
      : 0;
    if (working >= members) return performance.now();
    await new Promise((resolve) => setTimeout(resolve, progressPollMs));
  }
  return null;
}

/**
 * The invariants from the store and the log: every account's entries replayed (each balance after,
 * never below 0 without overdraft, the final balance), balances summing to 0, one debit and one
 * credit per transfer, and every command answered by one decision whose outcome matches the entries.
 */
async function auditBacklog(rig: Rig, book: BacklogBook): Promise<{ audit: Audit; summary: string; detail: string }> {
  const { ledger } = rig;
  const audit = new Audit();
  const accounts: Account[] = [];
  for (let after: string | null = null; ;) {
    const page = await ledger.listAccounts({ merchantId: book.merchantId, limit: limits.pageItemsMax, startingAfter: after });
    accounts.push(...page.items);
    if (!page.hasMore) break;
    after = page.items[page.items.length - 1]!.id;
  }
  audit.checkBalances(accounts);
  if (accounts.length !== book.customerIds.length + book.fundingIds.length) audit.violation(`${accounts.length} accounts listed, ${book.customerIds.length + book.fundingIds.length} created`);
  const entriesOf = await inLanes(accounts.length, storeLanes, (index) => ledger.listEntries(book.merchantId, accounts[index]!.id));
  /** Per transfer: how many entries it has and their sum (a debit and its credit: 2 and 0). */
  const sides = new Map<string, { count: number; sum: bigint }>();
  let entries = 0;
  for (const [index, account] of accounts.entries()) {
    let running = 0n;
    for (const entry of entriesOf[index]!) {
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

  // Every command answered: one decision per command position (replies are at-least-once: a copy
  // must say the same), succeeded exactly for the transfers that have entries.
  const commands = (await ledgerProgress(rig.log)).appended;
  const decided = new Map<string, string>();
  let replies = 0;
  for (const record of await readAll(rig.log, [transferSucceededTopic, transferFailedTopic])) {
    replies++;
    const reply = decodeTransferReply(record.value);
    if (typeof reply === 'string') {
      audit.violation(`a reply on ${record.topic} does not decode: ${reply}`);
      continue;
    }
    const says = `${reply.transfer?.id ?? '?'} ${reply.error?.code ?? reply.transfer?.status ?? '?'}`;
    const position = `${reply.request.partition}:${reply.request.offset}`;
    const earlier = decided.get(position);
    if (earlier !== undefined && earlier !== says) audit.violation(`command ${position} answered twice, differently: ${earlier} / ${says}`);
    decided.set(position, says);
  }
  if (decided.size !== commands) audit.violation(`${formatCount(commands)} commands appended, ${formatCount(decided.size)} answered`);
  const succeeded = [...decided.values()].filter((says) => says.endsWith(' succeeded')).map((says) => says.split(' ')[0]!);
  const failed = decided.size - succeeded.length;
  const withoutEntries = succeeded.filter((id) => !sides.has(id));
  if (withoutEntries.length > 0) audit.violation(`${formatCount(withoutEntries.length)} transfers answered succeeded have no entries (${withoutEntries[0]})`);
  if (sides.size !== succeeded.length) audit.violation(`${formatCount(sides.size)} transfers have entries, ${formatCount(succeeded.length)} were answered succeeded`);
  const detail = `${formatCount(entries)} entries replayed; ${formatCount(decided.size)} of ${formatCount(commands)} commands answered ` +
    `(${formatCount(succeeded.length)} succeeded, ${formatCount(failed)} failed; ${formatCount(replies)} reply records)`;
  return { audit, summary: audit.summary(detail), detail };
}

let readers = 0;

/** Every record of the topics, read from the start by a fresh consumer group (deleted with the installation). */
async function readAll(log: EventLog, topics: readonly string[]): Promise<ConsumedRecord[]> {
  let total = 0;
  for (const topic of topics) for (const end of (await log.endOffsets(topic)).values()) total += end;
  const consumer = log.consumer({ group: `bench-audit-${process.pid}-${readers++}`, topics });
  const records: ConsumedRecord[] = [];
  try {
    let lastReadMs = performance.now();
    while (records.length < total) {
      const batch = await consumer.poll(5_000, 200);
      if (batch.length > 0) lastReadMs = performance.now();
      else if (performance.now() - lastReadMs > 30_000) throw new Error(`read ${records.length} of ${total} records of ${topics.join(', ')}`);
      records.push(...batch);
    }
  } finally {
    await consumer.close();
  }
  return records;
}

// ---- Phase 2: transfers over HTTP, `tally query` + `tally processor` ----

async function overHttp(rig: Rig, query: BenchServer): Promise<ScenarioReport> {
  const keys = await createMerchant(query.url, 'Bench Ledger HTTP');
  // A fresh processor: its counters count this phase's decisions only (the audit compares them).
  const processor = await rig.start({ command: 'processor', keys: rig.processorKeys });
  try {
    return await measureTransfersOverHttp(rig.context, {
      api: asMerchant(query, keys),
      rowPrefix: 'distributed: ',
      notePrefix: 'distributed ledger http',
      // The issue sets no target on Kafka + Cassandra: measure and report.
      goalPerSecond: null,
      concurrencies: waitingConcurrencies,
      waitDrained: () => waitHttpDrained(rig, query, processor),
      measure() {
        const cpu = measureCpuShares(new Map([['tally query', query], ['tally processor', processor]]));
        return { stop: async () => [cpu.stop()] };
      },
    });
  } finally {
    await processor.stop();
  }
}

/**
 * Until the query process handles no request but the scrape and the ledger group has committed
 * every command, twice in a row (a request abandoned by the load generator may still be appending);
 * decided is the processor's ledger counter (succeeded + failed).
 */
async function waitHttpDrained(rig: Rig, query: BenchServer, processor: BenchServer): Promise<Drain> {
  const deadline = performance.now() + drainTimeoutMs;
  let idleSinceMs: number | null = null;
  for (;;) {
    const [queryMetrics, processorMetrics, progress] = await Promise.all([
      fetch(`${query.url}/metrics`).then((response) => response.text()),
      fetch(`${processor.url}/metrics`).then((response) => response.text()),
      ledgerProgress(rig.log),
    ]);
    const atMs = performance.now();
    const decided = labelled(processorMetrics, 'tally_ledger_commands_total', 'outcome', /succeeded|failed/) || 0;
    const idle = metricValue(queryMetrics, 'tally_http_in_flight_requests') <= 1 && progress.processed >= progress.appended;
    if (idle && idleSinceMs !== null) return { drained: true, atMs: idleSinceMs, decided };
    idleSinceMs = idle ? atMs : null;
    if (atMs > deadline) return { drained: false, atMs, decided };
    await new Promise((resolve) => setTimeout(resolve, progressPollMs));
  }
}

/** fn(0 … count − 1) with at most `lanes` running at once; the results in index order. */
async function inLanes<T>(count: number, lanes: number, fn: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      results[index] = await fn(index);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return results;
}
