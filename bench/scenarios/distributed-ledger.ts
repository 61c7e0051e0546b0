// Scenario "distributed-ledger": the payments ledger on Kafka + Cassandra (Redis for the query
// cache, unused here), one fresh installation per run (bench/distributed.ts). Phases:
//  1. Backlog drains by `tally processor` processes, without HTTP. Accounts are created in the
//     Cassandra ledger store, then transfer commands appended to `payments.transfer.requested` (the
//     API's codec, keyed by the debited account; no pending record, so the ledger claims each id
//     itself) and drained (see DrainMode): the funding, then a backlog of random transfers, by ONE
//     process started after them (catching up after an outage); then another backlog of the same
//     size by ONE, and another by TWO processes (one consumer group) that joined before it was
//     appended: transfers applied per second, the 2-vs-1 ratio, the Cassandra CPU per transfer.
//     Every customer holds 1,000,000, so every transfer succeeds (as in the embedded settle phase).
//     A drain that commits nothing for 60 s fails the phase: the processors are stuck.
//  2. HTTP: `tally query` (the payments API) and a fresh `tally processor`; the embedded scenario's
//     phase 2 (bench/scenarios/ledger.ts, measureTransfersOverHttp) plus submit → final at a few
//     concurrencies: 1,000 customers funded over HTTP, one client alone, then 4, 16 and 64 clients
//     waiting for each transfer's outcome, then 64 connections of random transfers. Applied is end
//     to end: until the query process is idle and the ledger group has committed every command.
// After every drain and after the HTTP phase, the invariants from the store and the log (every
// merchant so far): each merchant's balances sum to 0 (what they were: all accounts opened at 0), no
// account without overdraft below 0 at any entry, every balance the replay of its entries, one debit
// and one credit per transfer, and every command answered by exactly one decision (replies read back
// from `.succeeded` / `.failed`, matched by position; copies must agree), succeeded exactly for the
// transfers that have entries. The HTTP phase also audits through the API.
// No target: the issue asks to measure and report (the embedded target is ≥ 20,000/s).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Admin } from '@platformatic/kafka';
import { randomInteger, seededRandom } from '../../src/adapters/memory/prng.ts';
import { loadConfig } from '../../src/config/config.ts';
import { openDistributed } from '../../src/cli/compose-distributed.ts';
import { limits } from '../../src/core/limits.ts';
import type { Account, TransferCommand } from '../../src/core/payments/ledger.ts';
import type { LedgerStore } from '../../src/core/ports/ledger-store.ts';
import type { ConsumedRecord, EventLog } from '../../src/core/ports/event-log.ts';
import {
  decodeTransferReply, encodeTransferCommand, ledgerGroup, transferFailedTopic, transferRequestedTopic, transferSucceededTopic,
} from '../../src/payments/codec.ts';
import { Audit, twoDistinct } from '../ledger-settle.ts';
import { createMerchant, readCpuSeconds, startServer, adminToken, metricValue, type BenchServer, type MerchantKeys, type ServerOptions } from '../server.ts';
import { asMerchant, createInstallation, measureCpuShares, steadyRate, type CaughtUp, type Installation } from '../distributed.ts';
import { formatCount, row, type BenchContext, type Row, type ScaleName, type ScenarioReport } from '../report.ts';
import { inLanes, labelled, measureTransfersOverHttp, type Drain } from './ledger.ts';
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
/** Commands per append (the log splits an append into produce requests as it needs). */
const appendChunk = 1_000;
/** Concurrent store calls while creating accounts and auditing (not measured). */
const storeLanes = 32;
const progressPollMs = 100;
const progressLogMs = 10_000;
/** A drain that commits nothing for this long is stuck (a poll of 20,000 commands takes 10–20 s here): the phase fails. */
const stallTimeoutMs = 60_000;
const drainTimeoutMsMax = 30 * 60_000;
const groupSettleTimeoutMs = 60_000;
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
  /** Runs a phase; false when it failed (its error is a row) or the run was interrupted. */
  const record = async (name: string, phase: () => Promise<ScenarioReport>): Promise<boolean> => {
    if (interruption.signal.aborted) return false;
    try {
      const done = await phase();
      rows.push(...done.rows);
      notes.push(...done.notes);
      return true;
    } catch (error) {
      const message = interruption.signal.aborted ? 'interrupted' : error instanceof Error ? error.message : String(error);
      if (!interruption.signal.aborted) context.log(`distributed ledger ${name} failed: ${error instanceof Error ? (error.stack ?? message) : message}`);
      rows.push(row(`distributed ledger: ${name}`, '-', message.split('\n')[0]!.slice(0, 160), 'error'));
      return false;
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
      const rig: Rig = { context, installation, ledger, log, admin, start, signal: interruption.signal, processorKeys: query.keys, merchants: [] };
      const drained = await record('backlog', () => backlogDrains(rig, query, size));
      // Stuck processors would leave the HTTP phase a ledger that never answers: its figures would say nothing.
      if (drained) await record('http', () => overHttp(rig, query));
      else if (!interruption.signal.aborted) rows.push(row('distributed ledger: http', '-', 'not run: the backlog phase failed', 'error'));
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
  /** Every merchant with ledger accounts so far, and how many accounts it should list (null: whatever the API created). */
  readonly merchants: { readonly merchantId: string; readonly accounts: number | null }[];
  start(options: ServerOptions): Promise<BenchServer>;
}

// ---- Phase 1: backlog drains by `tally processor` processes ----

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
  rig.merchants.push({ merchantId: book.merchantId, accounts: size.customers + fundingAccounts });
  context.log(`distributed ledger: ${formatCount(size.customers)} customer and ${fundingAccounts} funding accounts, created in the store`);
  const createdMs = Date.now();
  const newAccount = (id: string, allowOverdraft: boolean): Account =>
    ({ id, merchantId: book.merchantId, currency: 'USD', name: null, allowOverdraft, metadata: {}, balance: 0n, createdMs });
  const accountsStartedMs = performance.now();
  const all = [...book.fundingIds.map((id) => newAccount(id, true)), ...book.customerIds.map((id) => newAccount(id, false))];
  await inLanes(all.length, (index) => ledger.createAccount(all[index]!), storeLanes);
  const accountsSeconds = (performance.now() - accountsStartedMs) / 1000;

  const rows: Row[] = [];
  const notes: string[] = [];
  const audited = async (after: string): Promise<void> => {
    context.log(`distributed ledger: auditing the store (every account's entries) and the replies after ${after}`);
    const { audit, detail } = await auditLedger(rig);
    rows.push(row(`distributed ledger: after ${after}`, 'invariants (store + replies)', audit.summary(detail), audit.holds() ? 'pass' : 'error'));
  };

  // Funding: each customer gets 1,000,000 from one of ten funding accounts (hot accounts, few keys:
  // not measured as the backlog, reported as a note).
  const funding = () => appendCommands(rig, book, book.customerIds.map((to, index) => [book.fundingIds[index % fundingAccounts]!, to, customerFunding]));
  const funded = await drain(rig, 1, funding, 'catch-up');
  notes.push(`distributed ledger backlog: ${formatCount(all.length)} accounts created in ${accountsSeconds.toFixed(1)} s (${storeLanes} at once); ` +
    `funding: ${formatCount(funded.appended.commands)} commands from ${fundingAccounts} accounts appended at ${formatCount(funded.appended.perSecond)}/s, drained by ${funded.label}: ${drainText(funded)}`);
  await audited('the funding');

  const random = seededRandom(21);
  /** Draws a backlog now; the drain appends it when its processes are ready for it (DrainMode). */
  const backlog = (): (() => Promise<Appended>) => {
    const transfers = Array.from({ length: size.commands }, (): [string, string, bigint] => {
      const [from, to] = twoDistinct(random, book.customerIds.length);
      return [book.customerIds[from]!, book.customerIds[to]!, BigInt(randomInteger(random, 1, amountMax + 1))];
    });
    return () => {
      context.log(`distributed ledger: appending ${formatCount(size.commands)} random transfer commands`);
      return appendCommands(rig, book, transfers);
    };
  };
  const drains: DrainResult[] = [];
  for (const [processes, mode] of [[1, 'catch-up'], [1, 'joined first'], [2, 'joined first']] as const) {
    if (rig.signal.aborted) throw new Error('interrupted');
    const drained = await drain(rig, processes, backlog(), mode);
    drains.push(drained);
    rows.push(row(`distributed ledger: backlog drain, ${drained.label}`, '(transfers/s applied)',
      `${formatCount(drained.perSecond)}${drained.fromSpawn === null ? '' : ` from the group settling (${formatCount(drained.fromSpawn)} from spawning)`}; ` +
      `Cassandra ${drained.cassandraMsPerTransfer.toFixed(2)} ms CPU/transfer; ${drained.batches}`, 'info'));
    notes.push(`distributed ledger backlog, ${drained.label}: ${formatCount(drained.appended.commands)} commands appended at ${formatCount(drained.appended.perSecond)}/s; ${drainText(drained)}`);
    await audited(`the drain by ${drained.label}`);
  }
  const [, one, two] = drains as [DrainResult, DrainResult, DrainResult];
  rows.push(row('distributed ledger: backlog drain, 2 vs 1 tally processor', '(ratio, one consumer group, joined first)', `${(two.perSecond / one.perSecond).toFixed(2)}×`, 'info'));
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

/**
 * How a drain starts. catch-up: the backlog is appended with no processor running, then the processes
 * are spawned — a processor catching up after an outage (the first to join polls 20,000 commands
 * before a second one has joined, and a rebalance waits for that batch: fine for one process, not a
 * fair measure of two). joined first: the processes are spawned and their group settles (each owning
 * partitions), then the backlog is appended (~75× faster than it drains), so every process has its
 * share of the partitions from its first poll.
 */
type DrainMode = 'catch-up' | 'joined first';

interface DrainResult {
  /** '1 tally processor, catch-up', '2 tally processors, joined first'. */
  readonly label: string;
  readonly appended: Appended;
  /**
   * Transfers/s applied until the group committed the last command: from the group owning the
   * partitions (catch-up), or from the first append (joined first).
   */
  readonly perSecond: number;
  /** catch-up: transfers/s from spawning the processes; null when joined first. */
  readonly fromSpawn: number | null;
  /** From spawning (catch-up) or the first append (joined first) to drained. */
  readonly seconds: number;
  /** From spawning until every process owned partitions; null: not within 60 s (catch-up only: joined first fails). */
  readonly settledAfterMs: number | null;
  /** Cassandra's CPU (all its threads) over the drain, per command drained (NaN: its pid is unknown). */
  readonly cassandraMsPerTransfer: number;
  /** The processes' CPU over the drain (their start-up left out), per command drained. */
  readonly processorsMsPerTransfer: number;
  readonly cpu: string;
  /** The ledger runtime's batches: how many, their mean size and duration. */
  readonly batches: string;
  /** The processes' ledger counters (succeeded, failed, replayed) and retries. */
  readonly counted: string;
}

/**
 * Drains a backlog (appended by `append`) with `processes` `tally processor` children, in `mode`;
 * stops them. Throws when the group commits nothing for 60 s (or in 30 minutes has not finished):
 * the processes are stuck, and the error says how far they got and how often they retried.
 */
async function drain(rig: Rig, processes: number, append: () => Promise<Appended>, mode: DrainMode): Promise<DrainResult> {
  const { context } = rig;
  const label = `${processes} tally processor${processes > 1 ? 's' : ''}, ${mode}`;
  let appended: Appended | null = mode === 'catch-up' ? await append() : null;
  context.log(`distributed ledger: ${label}${appended ? `: draining ${formatCount(appended.commands)} commands` : ''}`);
  const before = await ledgerProgress(rig.log);
  const cassandraBeforeSpawn = cassandraCpu();
  const spawnedMs = performance.now();
  const processors = await Promise.all(Array.from({ length: processes }, () => rig.start({ command: 'processor', keys: rig.processorKeys })));
  try {
    const settling = new AbortController();
    const settled = waitLedgerGroup(rig, processes, settling.signal);
    let startedMs = spawnedMs;
    let cassandra = cassandraBeforeSpawn;
    if (mode === 'joined first') {
      if ((await settled) === null) throw new Error(`${label}: the ledger group did not settle with ${processes} members owning partitions within ${groupSettleTimeoutMs / 1000} s`);
      context.log(`distributed ledger: ${label}: group settled; appending the backlog`);
      cassandra = cassandraCpu();
      startedMs = performance.now();
    }
    const cpu = measureCpuShares(new Map(processors.map((processor, index) => [`processor ${index + 1}`, processor])));
    const processorCpuBefore = processors.reduce((sum, processor) => sum + processor.cpuSeconds(), 0);
    appended ??= await append();
    const caught = await waitLedgerDrained(rig, before.processed);
    settling.abort();
    const cpuNote = cpu.stop();
    const cassandraSeconds = cassandra.stop();
    const processorSeconds = processors.reduce((sum, processor) => sum + processor.cpuSeconds(), 0) - processorCpuBefore;
    const settledMs = await settled;
    const texts = await Promise.all(processors.map(async (processor) => (await fetch(`${processor.url}/metrics`)).text()));
    const ledgerMetric = (name: string): number => texts.reduce((sum, text) => sum + sumMetric(text, name, /processor="ledger"/), 0);
    const counter = (outcome: RegExp): number => texts.reduce((sum, text) => sum + (labelled(text, 'tally_ledger_commands_total', 'outcome', outcome) || 0), 0);
    const batchCount = ledgerMetric('tally_processor_batch_records_count');
    const batches = `${formatCount(batchCount)} batches of ${formatCount(ledgerMetric('tally_processor_batch_records_sum') / batchCount)} commands on average, ` +
      `${(ledgerMetric('tally_processor_batch_duration_seconds_sum') / ledgerMetric('tally_processor_batch_duration_seconds_count')).toFixed(1)} s each`;
    const counted = `succeeded ${formatCount(counter(/^succeeded$/))}, failed ${formatCount(counter(/^failed$/))}, replayed ${formatCount(counter(/^replayed$/))}; ` +
      `${formatCount(ledgerMetric('tally_processor_retries_total'))} batch retries`;
    const done = caught.processed - before.processed;
    if (!caught.caughtUp) {
      const why = rig.signal.aborted ? 'interrupted' : performance.now() - startedMs >= drainTimeoutMsMax
        ? `not drained in ${drainTimeoutMsMax / 60_000} minutes` : `no command committed for ${stallTimeoutMs / 1000} s — stuck`;
      throw new Error(`${label}: ${why}: ${formatCount(done)} of ${formatCount(caught.appended - before.processed)} commands drained; ${counted}; ${batches}`);
    }
    const seconds = (caught.atMs - startedMs) / 1000;
    return {
      label, appended,
      perSecond: mode === 'joined first' ? done / seconds : settledMs === null ? Number.NaN : steadyRate(caught, settledMs, 1),
      fromSpawn: mode === 'catch-up' ? done / seconds : null,
      seconds,
      settledAfterMs: settledMs === null ? null : settledMs - spawnedMs,
      cassandraMsPerTransfer: (1000 * cassandraSeconds) / done,
      processorsMsPerTransfer: (1000 * processorSeconds) / done,
      cpu: cpuNote,
      batches,
      counted,
    };
  } finally {
    await Promise.all(processors.map((processor) => processor.stop()));
  }
}

function drainText(drained: DrainResult): string {
  return `group settled ${drained.settledAfterMs === null ? 'NEVER' : `${(drained.settledAfterMs / 1000).toFixed(1)} s after spawning`}; drained in ${drained.seconds.toFixed(1)} s: ` +
    `${formatCount(drained.perSecond)}/s${drained.fromSpawn === null ? ' from the first append' : ` from the group settling, ${formatCount(drained.fromSpawn)}/s from spawning`}; ` +
    `CPU per transfer: Cassandra ${drained.cassandraMsPerTransfer.toFixed(2)} ms, tally processor(s) ${drained.processorsMsPerTransfer.toFixed(2)} ms; ` +
    `${drained.batches}; ledger counters ${drained.counted}; ${drained.cpu}`;
}

/**
 * The sum of a metric's samples whose labels match every pattern (the bench's `labelled` reads one
 * label only; the processor metrics have two).
 */
function sumMetric(text: string, name: string, ...labels: RegExp[]): number {
  let sum = 0;
  for (const match of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+-]+)$`, 'gm'))) {
    if (labels.every((label) => label.test(match[1]!))) sum += Number(match[2]);
  }
  return sum;
}

/** CPU seconds Cassandra (the JVM scripts/engines.sh started) uses from now until stop(); NaN when its pid is unknown. */
function cassandraCpu(): { stop(): number } {
  const home = process.env.TALLY_ENGINES_HOME ?? new URL('../../.tally-engines', import.meta.url).pathname;
  let pid: number | null = null;
  try {
    pid = Number(readFileSync(`${home}/run/cassandra.pid`, 'utf8').trim());
    readCpuSeconds(pid);
  } catch {
    // Not started by scripts/engines.sh here: the per-transfer figure is unknown, the rates stand.
    pid = null;
  }
  const before = pid === null ? Number.NaN : readCpuSeconds(pid);
  return { stop: () => (pid === null ? Number.NaN : readCpuSeconds(pid) - before) };
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
 * The invariants from the store and the log, over every merchant so far: every account's entries
 * replayed (each balance after, never below 0 without overdraft, the final balance), each merchant's
 * balances summing to 0, one debit and one credit per transfer, and every command answered by one
 * decision whose outcome matches the entries. Call it with no processor running (or a drained one).
 */
async function auditLedger(rig: Rig): Promise<{ audit: Audit; detail: string }> {
  const { ledger } = rig;
  const audit = new Audit();
  const accounts: Account[] = [];
  for (const merchant of rig.merchants) {
    const listed: Account[] = [];
    for (let after: string | null = null; ;) {
      const page = await ledger.listAccounts({ merchantId: merchant.merchantId, limit: limits.pageItemsMax, startingAfter: after });
      listed.push(...page.items);
      if (!page.hasMore) break;
      after = page.items[page.items.length - 1]!.id;
    }
    if (merchant.accounts !== null && listed.length !== merchant.accounts) audit.violation(`${merchant.merchantId}: ${listed.length} accounts listed, ${merchant.accounts} created`);
    const total = listed.reduce((sum, account) => sum + account.balance, 0n);
    if (total !== 0n) audit.violation(`${merchant.merchantId}: balances sum to ${total}, not 0`);
    accounts.push(...listed);
  }
  audit.checkBalances(accounts);
  const entriesOf = await inLanes(accounts.length, (index) => ledger.listEntries(accounts[index]!.merchantId, accounts[index]!.id), storeLanes);
  /** Per merchant and transfer: how many entries it has and their sum (a debit and its credit: 2 and 0). */
  const sides = new Map<string, { count: number; sum: bigint }>();
  let entries = 0;
  for (const [index, account] of accounts.entries()) {
    let running = 0n;
    for (const entry of entriesOf[index]!) {
      running += entry.amount;
      entries++;
      if (entry.balanceAfter !== running) audit.violation(`${account.id}: entry of ${entry.transferId} says balance ${entry.balanceAfter}, the replay ${running}`);
      if (!account.allowOverdraft && running < 0n) audit.violation(`${account.id} went below zero (${running}) at ${entry.transferId}`);
      const key = `${account.merchantId} ${entry.transferId}`;
      const side = sides.get(key) ?? { count: 0, sum: 0n };
      sides.set(key, { count: side.count + 1, sum: side.sum + entry.amount });
    }
    if (running !== account.balance) audit.violation(`${account.id}: balance ${account.balance}, replay of its entries ${running}`);
  }
  for (const [transfer, side] of sides) {
    if (side.count !== 2 || side.sum !== 0n) audit.violation(`transfer ${transfer}: ${side.count} entries summing to ${side.sum} (one debit and one credit expected)`);
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
    const says = `${reply.transfer?.merchantId ?? '?'} ${reply.transfer?.id ?? '?'} ${reply.error?.code ?? reply.transfer?.status ?? '?'}`;
    const position = `${reply.request.partition}:${reply.request.offset}`;
    const earlier = decided.get(position);
    if (earlier !== undefined && earlier !== says) audit.violation(`command ${position} answered twice, differently: ${earlier} / ${says}`);
    decided.set(position, says);
  }
  if (decided.size !== commands) audit.violation(`${formatCount(commands)} commands appended, ${formatCount(decided.size)} answered`);
  const succeeded = [...decided.values()].filter((says) => says.endsWith(' succeeded')).map((says) => says.split(' ').slice(0, 2).join(' '));
  const failed = decided.size - succeeded.length;
  const withoutEntries = succeeded.filter((key) => !sides.has(key));
  if (withoutEntries.length > 0) audit.violation(`${formatCount(withoutEntries.length)} transfers answered succeeded have no entries (${withoutEntries[0]})`);
  if (sides.size !== new Set(succeeded).size) audit.violation(`${formatCount(sides.size)} transfers have entries, ${formatCount(new Set(succeeded).size)} were answered succeeded`);
  const detail = `${rig.merchants.length} merchant(s); ${formatCount(entries)} entries replayed; ${formatCount(decided.size)} of ${formatCount(commands)} commands answered ` +
    `(${formatCount(succeeded.length)} succeeded, ${formatCount(failed)} failed; ${formatCount(replies)} reply records)`;
  return { audit, detail };
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
  rig.merchants.push({ merchantId: keys.merchantId, accounts: null });
  // A fresh processor: its counters count this phase's decisions only (the audit compares them).
  const processor = await rig.start({ command: 'processor', keys: rig.processorKeys });
  let report: ScenarioReport;
  try {
    report = await measureTransfersOverHttp(rig.context, {
      api: asMerchant(query, keys),
      rowPrefix: 'distributed: ',
      notePrefix: 'distributed ledger http',
      // The issue sets no target on Kafka + Cassandra: measure and report.
      goalPerSecond: null,
      concurrencies: waitingConcurrencies,
      waitDrained: () => waitHttpDrained(rig, query, processor),
      measure() {
        const cpu = measureCpuShares(new Map([['tally query', query], ['tally processor', processor]]));
        const cassandra = cassandraCpu();
        const decidedBefore = fetchDecided(processor);
        return {
          async stop() {
            const cpuNote = cpu.stop();
            const cassandraSeconds = cassandra.stop();
            const decided = (await fetchDecided(processor)) - (await decidedBefore);
            return [cpuNote, `Cassandra ${((1000 * cassandraSeconds) / decided).toFixed(2)} ms CPU per transfer the ledger decided during the load ` +
              `(${formatCount(decided)}; the API's work for refused requests counted in)`];
          },
        };
      },
    });
  } finally {
    await processor.stop();
  }
  rig.context.log('distributed ledger http: auditing the store (every account\'s entries) and the replies');
  const { audit, detail } = await auditLedger(rig);
  return {
    rows: [...report.rows, row('distributed ledger: after the HTTP phase', 'invariants (store + replies)', audit.summary(detail), audit.holds() ? 'pass' : 'error')],
    notes: report.notes,
  };
}

/** The processor's ledger decisions so far (succeeded + failed). */
async function fetchDecided(processor: BenchServer): Promise<number> {
  const text = await (await fetch(`${processor.url}/metrics`)).text();
  return labelled(text, 'tally_ledger_commands_total', 'outcome', /succeeded|failed/) || 0;
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
    const [queryMetrics, decided, progress] = await Promise.all([
      fetch(`${query.url}/metrics`).then((response) => response.text()),
      fetchDecided(processor),
      ledgerProgress(rig.log),
    ]);
    const atMs = performance.now();
    const idle = metricValue(queryMetrics, 'tally_http_in_flight_requests') <= 1 && progress.processed >= progress.appended;
    if (idle && idleSinceMs !== null) return { drained: true, atMs: idleSinceMs, decided };
    idleSinceMs = idle ? atMs : null;
    if (atMs > deadline) return { drained: false, atMs, decided };
    await new Promise((resolve) => setTimeout(resolve, progressPollMs));
  }
}
