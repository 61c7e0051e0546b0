// Scenario "ledger": the payments ledger on the embedded deployment, in two phases.
//  1. Settle: the SQLite ledger store alone, 1,000-command batches of random transfers
//     (bench/ledger-settle.ts): the ledger's own ceiling, without HTTP, the log or replies.
//  2. HTTP: `tally start` in a child process; 1,000 customer accounts funded from one funding
//     account; one client alone times submit → final status (`?wait_ms=10000`: the answer comes
//     once the ledger decided); then 64 connections submit random transfers (unique
//     Idempotency-Keys; amounts such that some are refused for insufficient funds), 8 of them
//     timing submit → final as before. Applied is end to end: from the first request until the
//     server is idle and the ledger group has committed every command, counted by /metrics.
// After each phase the invariants are checked: balances sum to 0, no account without overdraft
// below 0, and every balance is the replay of its history (phase 1: the entries, each balance
// after; phase 2: through the API, every accepted transfer final and the succeeded ones summing to
// each balance). Target (issue 4): ≥ 20,000 transfers/s applied. Phase 2 is exported
// (measureTransfersOverHttp) for the same measurement on Kafka + Cassandra: `distributed-ledger`.
import autocannon, { type Result } from 'autocannon';
import { seededRandom, randomInteger, type Random } from '../../src/adapters/memory/prng.ts';
import { limits } from '../../src/core/limits.ts';
import type { AccountView, TransferView } from '../../src/payments/views.ts';
import { failureText } from '../client.ts';
import { Audit, cpuSeconds, measureSettle, settleAuditSummary, settlePerSecond, settleSummary, twoDistinct, type SettleResult } from '../ledger-settle.ts';
import { metricValue, sampleMemory, startServer, type BenchServer } from '../server.ts';
import { atLeast, formatCount, formatMb, formatMs, quantile, row, type BenchContext, type Row, type ScaleName, type ScenarioReport } from '../report.ts';
import { drainTimeoutMs, measureCpu } from './measure.ts';

const transfersPerSecondGoal = 20_000;

// autocannon calls a request's onResponse with each answer's body (bench/autocannon.d.ts lacks it).
declare module 'autocannon' {
  interface Request {
    onResponse?: (status: number, body: string) => void;
  }
}

export async function runLedger(context: BenchContext): Promise<ScenarioReport> {
  context.log(`ledger: settle ${settleBatches[context.scale.name]} batches of ${settleBatchCommands} commands on the SQLite store`);
  const settled = await measureSettle({ batches: settleBatches[context.scale.name], batchCommands: settleBatchCommands });
  const overHttp = await measureOverHttp(context);
  return {
    rows: [...settleRows(settled), ...overHttp.rows],
    notes: [
      `ledger settle: ${settleSummary(settled)}`,
      ...overHttp.notes,
      'ledger: on Kafka + Cassandra run `npm run bench -- --only=distributed-ledger` (needs the engines)',
    ],
  };
}

// ---- Phase 1: settle throughput of the SQLite ledger store ----

const settleBatches: Readonly<Record<ScaleName, number>> = { full: 200, small: 40 };
const settleBatchCommands = 1_000;

function settleRows(result: SettleResult): Row[] {
  const scenario = `ledger settle, SQLite store, ${formatCount(settleBatchCommands)}/batch`;
  const perSecond = settlePerSecond(result);
  return [
    row(scenario, `≥ ${formatCount(transfersPerSecondGoal)} transfers/s`, `${formatCount(perSecond)} transfers/s (${formatCount(result.transfers / cpuSeconds(result.cpu))} per CPU second)`,
      result.audit.holds() ? atLeast(perSecond, transfersPerSecondGoal) : 'error'),
    row(scenario, `(per settle of ${formatCount(settleBatchCommands)})`, `p50 ${formatMs(quantile(result.latenciesMs, 0.5))}, p99 ${formatMs(quantile(result.latenciesMs, 0.99))}`, 'info'),
    row(scenario, 'invariants afterwards', settleAuditSummary(result), result.audit.holds() ? 'pass' : 'error'),
  ];
}

// ---- Phase 2: transfers over HTTP against `tally start` (or the distributed roles) ----

const customers = 1_000;
const customerFunding = 10_000;
/** Up to half a funding: balances random-walk, so some accounts run dry and transfers are refused. */
const transferAmountMax = 5_000;
const connections = 64;
/** Clients timing submit → final with ?wait_ms under the load (their transfers count like the others). */
const latencyClients = 8;
/** How long one client alone times submit → final: the pipeline's latency without queueing. */
const aloneSeconds: Readonly<Record<ScaleName, number>> = { full: 10, small: 3 };
const finalWaitMs = limits.transferWaitMsMax;
/** Concurrent requests while setting up and auditing (not measured). */
const setupLanes = 16;
const drainPollMs = 100;
/** Ceiling on any single request of the load: a stuck request is an error, not a long sample. */
const requestTimeoutSeconds = 30;

/** Where the HTTP phase runs, and how it sees the ledger: one embedded `tally start`, or the distributed roles. */
export interface LedgerHttpTarget {
  /** Serves the payments API; its keys are the merchant's (one merchant whose only accounts are the phase's). */
  readonly api: BenchServer;
  /** Row prefix ('' or 'distributed: ') and note prefix ('ledger http'). */
  readonly rowPrefix: string;
  readonly notePrefix: string;
  /** The applied rate to reach (embedded: the issue's 20,000/s), or null: measured and reported only. */
  readonly goalPerSecond: number | null;
  /**
   * Concurrencies at which that many clients each submit one transfer after another with ?wait_ms
   * (closed loop: submit → final, then the next), after the client alone and before the load.
   */
  readonly concurrencies: readonly number[];
  /** Until nothing is in flight and the ledger group has committed every command; with the ledger's decided count. */
  waitDrained(): Promise<Drain>;
  /** Starts the load's measurements (CPU, memory); stop() gives their notes. */
  measure(): { stop(): Promise<string[]> };
}

interface HttpLoad {
  readonly result: Result;
  readonly latency: LatencySamples;
  /** Transfers answered 202 or 200: each must end final in the audit. */
  readonly acceptedIds: readonly string[];
  readonly startedMs: number;
  readonly startedWallMs: number;
  readonly endedMs: number;
}

async function measureOverHttp(context: BenchContext): Promise<ScenarioReport> {
  const server = await startServer({ nodeFlags: context.nodeFlags });
  try {
    return await measureTransfersOverHttp(context, {
      api: server, rowPrefix: '', notePrefix: 'ledger http', goalPerSecond: transfersPerSecondGoal, concurrencies: [],
      waitDrained: () => waitDrained(server),
      measure() {
        const memory = sampleMemory(server);
        const cpu = measureCpu(server);
        return {
          async stop() {
            const cpuNote = cpu.stop();
            return [cpuNote, `server RSS max ${formatMb((await memory.stop()).rssBytes)}`];
          },
        };
      },
    });
  } finally {
    await server.stop();
  }
}

/**
 * The HTTP phase on `target`: customers funded, a warm-up (drained), one client alone timing submit
 * → final, then each of `target.concurrencies`, then the load of 64 connections; drained, and every
 * account and transfer audited through the API.
 */
export async function measureTransfersOverHttp(context: BenchContext, target: LedgerHttpTarget): Promise<ScenarioReport> {
  const api = new PaymentsClient(target.api);
  const say = (message: string): void => context.log(`${target.notePrefix}: ${message}`);
  say(`${formatCount(customers)} customer accounts, funded over HTTP`);
  const book = await openAccounts(api);
  const random = seededRandom(12);
  say(`warm-up ${context.scale.warmupSeconds} s`);
  const warmup = await submitTransfers(api, book, random, context.scale.warmupSeconds);
  // The warm-up's transfers must be decided before the clock starts, or they would flatter the rate.
  if (!(await target.waitDrained()).drained) throw new Error(`${target.notePrefix}: the warm-up's transfers were not all decided within ${drainTimeoutMs / 1000} s`);
  say(`one client alone timing submit → final for ${aloneSeconds[context.scale.name]} s`);
  const aloneIds: string[] = [];
  const alone = await sampleFinalLatency(api, book, random, performance.now() + aloneSeconds[context.scale.name] * 1000, aloneIds, 1);
  const waitingIds: string[] = [];
  const waiting: WaitingClients[] = [];
  for (const clients of target.concurrencies) {
    say(`${clients} clients each timing submit → final, one transfer after another, for ${aloneSeconds[context.scale.name]} s`);
    const startedMs = performance.now();
    const samples = await sampleFinalLatency(api, book, random, startedMs + aloneSeconds[context.scale.name] * 1000, waitingIds, clients);
    waiting.push({ clients, seconds: (performance.now() - startedMs) / 1000, samples });
  }
  const baseline = await target.waitDrained();

  say(`${connections} connections for ${context.scale.singleSeconds} s, ${latencyClients} of them timing submit → final`);
  const measures = target.measure();
  const load = await submitTransfers(api, book, random, context.scale.singleSeconds);
  const measured = await measures.stop();
  const drained = await target.waitDrained();
  say('auditing every account and transfer through the API');
  const audit = await auditApi(api, book, [...book.fundingIds, ...warmup.acceptedIds, ...aloneIds, ...waitingIds, ...load.acceptedIds], drained.decided);
  const aloneSettled = settleDelaysMs(aloneIds.map((id) => audit.transfers.get(id)));
  return httpReport(target, load, { ...alone, settledMs: aloneSettled }, waiting, baseline, drained, audit, measured);
}

/** `clients` clients timing submit → final one transfer after another, for `seconds`. */
interface WaitingClients {
  readonly clients: number;
  readonly seconds: number;
  readonly samples: LatencySamples;
}

interface Book {
  readonly fundingAccountId: string;
  readonly customerIds: readonly string[];
  /** The funding transfers, one per customer. */
  readonly fundingIds: readonly string[];
}

/** A funding account and the customers, each funded with one transfer waited for. */
async function openAccounts(api: PaymentsClient): Promise<Book> {
  const funding = await api.createAccount({ currency: 'USD', name: 'Funding', allow_overdraft: true });
  const customerIds = await inLanes(customers, async (index) => (await api.createAccount({ currency: 'USD', name: `Customer ${index}` })).id);
  const fundingIds = await inLanes(customers, async (index) => {
    const answer = await api.submit({ from_account_id: funding.id, to_account_id: customerIds[index]!, amount: customerFunding, currency: 'USD' }, api.newKey(), finalWaitMs);
    const transfer = answer.body as TransferView;
    if (answer.status !== 200 || transfer.status !== 'succeeded') throw new Error(`ledger: funding customer ${index} answered ${answer.status} ${JSON.stringify(answer.body)}`);
    return transfer.id;
  });
  return { fundingAccountId: funding.id, customerIds, fundingIds };
}

/** A transfer between two distinct customers, of up to half a customer's funding. */
function randomTransfer(random: Random, book: Book): object {
  const [from, to] = twoDistinct(random, book.customerIds.length);
  return { from_account_id: book.customerIds[from], to_account_id: book.customerIds[to], amount: randomInteger(random, 1, transferAmountMax + 1), currency: 'USD' };
}

/** The load for `seconds`: autocannon on the other connections, the latency clients beside it. */
async function submitTransfers(api: PaymentsClient, book: Book, random: Random, seconds: number): Promise<HttpLoad> {
  const startedMs = performance.now();
  const startedWallMs = Date.now();
  const acceptedIds: string[] = [];
  const sampling = sampleFinalLatency(api, book, random, startedMs + seconds * 1000, acceptedIds, latencyClients);
  const result = await autocannon({
    url: api.server.url,
    connections: connections - latencyClients,
    duration: seconds,
    timeout: requestTimeoutSeconds,
    requests: [{
      method: 'POST', path: '/v1/transfers',
      setupRequest: (request) => ({
        ...request,
        headers: { ...api.headers, 'idempotency-key': api.newKey() },
        body: JSON.stringify(randomTransfer(random, book)),
      }),
      onResponse: (status, body) => {
        if (status === 202) acceptedIds.push((JSON.parse(body) as TransferView).id);
      },
    }],
  });
  const latency = await sampling;
  return { result, latency, acceptedIds, startedMs, startedWallMs, endedMs: performance.now() };
}

interface LatencySamples {
  /** Milliseconds from sending a transfer with ?wait_ms to its 200 with the final status. */
  readonly finalMs: number[];
  /** Answered 202: still pending when the wait ran out. */
  readonly undecided: number;
  /** Answered 402 by the pre-check: no transfer, no sample. */
  readonly refused: number;
  readonly errors: string[];
}

/** `clients` submitting one transfer after another with ?wait_ms until `untilMs`; the accepted ones' ids go to acceptedIds. */
async function sampleFinalLatency(api: PaymentsClient, book: Book, random: Random, untilMs: number, acceptedIds: string[], clients: number): Promise<LatencySamples> {
  const finalMs: number[] = [];
  const errors: string[] = [];
  let undecided = 0;
  let refused = 0;
  const client = async (): Promise<void> => {
    while (performance.now() < untilMs) {
      const sentMs = performance.now();
      const answer = await api.submit(randomTransfer(random, book), api.newKey(), finalWaitMs);
      const transfer = answer.body as TransferView;
      if (answer.status === 200 && (transfer.status === 'succeeded' || transfer.status === 'failed')) finalMs.push(performance.now() - sentMs);
      else if (answer.status === 202) undecided++;
      else if (answer.status === 402) refused++;
      else errors.push(`${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
      if (answer.status === 200 || answer.status === 202) acceptedIds.push(transfer.id);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return { finalMs, undecided, refused, errors };
}

/** Anything but 202 and 402 from the load: errors, not outcomes. */
function loadFailures(load: HttpLoad): number {
  const refusedByPrecheck = load.result.statusCodeStats['402']?.count ?? 0;
  return load.result.non2xx - refusedByPrecheck + load.result.errors + load.result.timeouts + load.latency.errors.length;
}

export interface Drain {
  readonly drained: boolean;
  /** When the server was first seen idle with the ledger caught up (performance.now ms). */
  readonly atMs: number;
  /** Transfers the ledger decided since the server started. */
  readonly decided: number;
}

/**
 * Waits until the server handles no request but the scrape itself and the ledger group has
 * committed every command, twice in a row: requests the load generator abandoned when it stopped
 * may still be appending a command.
 */
async function waitDrained(server: BenchServer): Promise<Drain> {
  const deadline = performance.now() + drainTimeoutMs;
  let idleSinceMs: number | null = null;
  for (;;) {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const atMs = performance.now();
    const idle = metricValue(text, 'tally_http_in_flight_requests') <= 1 && labelled(text, 'tally_processor_lag_records', 'processor', /ledger/) === 0;
    if (idle && idleSinceMs !== null) return { drained: true, atMs: idleSinceMs, decided: labelled(text, 'tally_ledger_commands_total', 'outcome', /succeeded|failed/) };
    idleSinceMs = idle ? atMs : null;
    if (atMs > deadline) return { drained: false, atMs, decided: labelled(text, 'tally_ledger_commands_total', 'outcome', /succeeded|failed/) };
    await new Promise((resolve) => setTimeout(resolve, drainPollMs));
  }
}

/** The sum of metric `name`'s samples whose `label` matches `values` (NaN when there are none). */
export function labelled(text: string, name: string, label: string, values: RegExp): number {
  let sum = Number.NaN;
  for (const match of text.matchAll(new RegExp(`^${name}\\{${label}="([^"]*)"\\} ([0-9.e+-]+)$`, 'gm'))) {
    if (values.test(match[1]!)) sum = (Number.isNaN(sum) ? 0 : sum) + Number(match[2]);
  }
  return sum;
}

interface ApiAudit {
  readonly audit: Audit;
  readonly succeeded: number;
  readonly failedByCode: Readonly<Record<string, number>>;
  /** Every transfer listed, by id. */
  readonly transfers: ReadonlyMap<string, TransferView>;
}

/**
 * Reads every account and every transfer back through the API and checks the invariants there:
 * each accepted transfer is listed and final, the ledger decided each listed one once (its
 * counter), and every balance is the sum of its account's succeeded transfers.
 */
async function auditApi(api: PaymentsClient, book: Book, acceptedIds: readonly string[], decided: number): Promise<ApiAudit> {
  const audit = new Audit();
  const accountViews = await api.list<AccountView>('/v1/accounts');
  const accounts = accountViews.map((view) => ({ id: view.id, balance: BigInt(view.balance as number), allowOverdraft: view.allow_overdraft }));
  audit.checkBalances(accounts);
  if (!accounts.some((account) => account.id === book.fundingAccountId)) audit.violation(`the funding account ${book.fundingAccountId} is not listed`);
  const listed = await inLanes(accounts.length, (index) => api.list<TransferView>(`/v1/accounts/${accounts[index]!.id}/transfers`));
  const transfers = new Map<string, TransferView>();
  for (const [index, account] of accounts.entries()) {
    let replayed = 0n;
    for (const transfer of listed[index]!) {
      transfers.set(transfer.id, transfer);
      if (transfer.status !== 'succeeded') continue;
      if (transfer.to_account_id === account.id) replayed += BigInt(transfer.amount);
      if (transfer.from_account_id === account.id) replayed -= BigInt(transfer.amount);
    }
    if (replayed !== account.balance) audit.violation(`${account.id}: balance ${account.balance}, its succeeded transfers sum to ${replayed}`);
  }
  const missing = acceptedIds.filter((id) => !transfers.has(id));
  if (missing.length > 0) audit.violation(`${formatCount(missing.length)} accepted transfers are not listed (${missing[0]})`);
  if (transfers.size !== decided) audit.violation(`${formatCount(transfers.size)} transfers listed, the ledger decided ${formatCount(decided)}`);
  const failedByCode: Record<string, number> = {};
  let succeeded = 0;
  for (const transfer of transfers.values()) {
    if (transfer.status === 'pending' || transfer.settled_at === null) {
      audit.violation(`transfer ${transfer.id} is still ${transfer.status}`);
      continue;
    }
    if (transfer.status === 'succeeded') succeeded++;
    else failedByCode[transfer.failure_code ?? 'none'] = (failedByCode[transfer.failure_code ?? 'none'] ?? 0) + 1;
  }
  audit.transfers = transfers.size;
  return { audit, succeeded, failedByCode, transfers };
}

/** created_at → settled_at of decided transfers, on the server's clock (whole milliseconds; no client, no poll). */
function settleDelaysMs(transfers: Iterable<TransferView | undefined>): number[] {
  const delays: number[] = [];
  for (const transfer of transfers) {
    if (transfer?.settled_at) delays.push(Date.parse(transfer.settled_at) - Date.parse(transfer.created_at));
  }
  return delays;
}

function httpReport(
  target: LedgerHttpTarget, load: HttpLoad, alone: LatencySamples & { readonly settledMs: number[] }, waiting: readonly WaitingClients[],
  baseline: Drain, drained: Drain, checked: ApiAudit, context: string[],
): ScenarioReport {
  const prefix = target.rowPrefix;
  const notePrefix = target.notePrefix;
  const scenario = `${prefix}transfers over HTTP, ${connections} conns`;
  const seconds = (load.endedMs - load.startedMs) / 1000;
  // Decided by the ledger during the load and its drain: every transfer the server accepted,
  // including requests in flight when the load generator stopped.
  const decided = drained.decided - baseline.decided;
  const applied = decided / ((drained.atMs - load.startedMs) / 1000);
  const refused = (load.result.statusCodeStats['402']?.count ?? 0) + load.latency.refused;
  const failed = loadFailures(load);
  const { finalMs } = load.latency;
  // The load's transfers include those of requests in flight at the stop: created since it started.
  const loadSettled = settleDelaysMs([...checked.transfers.values()].filter((transfer) => Date.parse(transfer.created_at) >= load.startedWallMs));
  const failures = Object.entries(checked.failedByCode).map(([code, count]) => `${code} ${formatCount(count)}`).join(', ') || 'none';
  return {
    rows: [
      row(scenario, target.goalPerSecond === null ? '(transfers/s applied)' : `≥ ${formatCount(target.goalPerSecond)} transfers/s applied`, `${formatCount(applied)} transfers/s end to end`,
        failed || !drained.drained || !checked.audit.holds() ? 'error' : target.goalPerSecond === null ? 'info' : atLeast(applied, target.goalPerSecond)),
      row(scenario, '(202s)', `${formatCount(load.acceptedIds.length / seconds)} accepted/s, ${formatCount(refused / seconds)} refused/s (402), p99 ${formatMs(load.result.latency.p99)}/request`, 'info'),
      row(scenario, 'submit → final status', `p50 ${formatMs(quantile(finalMs, 0.5))}, p99 ${formatMs(quantile(finalMs, 0.99))} (${formatCount(finalMs.length)} samples)`,
        load.latency.undecided > 0 ? 'miss' : 'info'),
      row(`${prefix}transfers over HTTP, 1 client alone`, 'submit → final status',
        `p50 ${formatMs(quantile(alone.finalMs, 0.5))}, p99 ${formatMs(quantile(alone.finalMs, 0.99))} (${formatCount(alone.finalMs.length)} samples; ` +
        `server created → settled p50 ${formatMs(quantile(alone.settledMs, 0.5))}, p99 ${formatMs(quantile(alone.settledMs, 0.99))})`,
        alone.errors.length > 0 ? 'error' : alone.undecided > 0 ? 'miss' : 'info'),
      ...waiting.map(({ clients, seconds, samples }) => row(`${prefix}transfers over HTTP, ${clients} clients waiting`, 'submit → final status',
        `p50 ${formatMs(quantile(samples.finalMs, 0.5))}, p99 ${formatMs(quantile(samples.finalMs, 0.99))}; ${formatCount(samples.finalMs.length / seconds)} decided/s ` +
        `(${formatCount(samples.finalMs.length)} samples${samples.refused > 0 ? `, ${formatCount(samples.refused)} refused 402` : ''})`,
        samples.errors.length > 0 ? 'error' : samples.undecided > 0 ? 'miss' : 'info')),
      row(scenario, 'invariants afterwards (via the API)', checked.audit.summary('all final, balances = their succeeded transfers'), checked.audit.holds() ? 'pass' : 'error'),
    ],
    notes: [
      `${notePrefix}: ${formatCount(load.acceptedIds.length)} transfers accepted and ${formatCount(refused)} refused by the pre-check (402 insufficient_funds) in ${seconds.toFixed(1)} s; ` +
        `${formatCount(decided)} decided (with requests in flight at the stop), the last ${((drained.atMs - load.endedMs) / 1000).toFixed(1)} s after the load stopped` +
        `${drained.drained ? '' : ` — NOT ALL DECIDED within ${drainTimeoutMs / 1000} s`}` +
        `${failed ? `; FAILURES: ${[failureText(load.result), ...load.latency.errors.slice(0, 3)].filter(Boolean).join(' ')}` : ''}` +
        `${alone.errors.length > 0 ? `; FAILURES of the client alone: ${alone.errors.slice(0, 3).join(' ')}` : ''}`,
      `${notePrefix}: over the whole run (funding and warm-up too) ${formatCount(checked.succeeded)} transfers succeeded, failed: ${failures} (the ledger's re-check catching what the pre-check let through)`,
      `${notePrefix}: submit → final with ?wait_ms=${finalWaitMs} from ${latencyClients} clients (the server polls the transfer every 2–20 ms: up to 20 ms of it is the poll), ` +
        `${load.latency.undecided} undecided after ${finalWaitMs / 1000} s; created_at → settled_at on the server for all ${formatCount(loadSettled.length)} transfers of the load: ` +
        `p50 ${formatMs(quantile(loadSettled, 0.5))}, p99 ${formatMs(quantile(loadSettled, 0.99))}`,
      `${notePrefix}: ${context.join('; ')}`,
    ],
  };
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** The merchant's secret key against the payments API (fetch keeps connections alive). */
class PaymentsClient {
  readonly server: BenchServer;
  readonly headers: Readonly<Record<string, string>>;
  readonly #run = Date.now().toString(36);
  #keys = 0;

  constructor(server: BenchServer) {
    this.server = server;
    this.headers = { authorization: `Bearer ${server.keys.secretKey}`, 'content-type': 'application/json' };
  }

  /** An Idempotency-Key no request of this run used. */
  newKey(): string {
    return `bench-${this.#run}-${this.#keys++}`;
  }

  async createAccount(body: object): Promise<AccountView> {
    const answer = await this.#request('POST', '/v1/accounts', body);
    if (answer.status !== 201) throw new Error(`ledger: creating an account answered ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body as AccountView;
  }

  submit(body: object, key: string, waitMs: number): Promise<Answer> {
    return this.#request('POST', `/v1/transfers?wait_ms=${waitMs}`, body, { 'idempotency-key': key });
  }

  /** Every item of a cursor-paginated list. */
  async list<T extends { id: string }>(path: string): Promise<T[]> {
    const items: T[] = [];
    for (let after: string | null = null; ;) {
      const answer = await this.#request('GET', `${path}?limit=${limits.pageItemsMax}${after ? `&starting_after=${after}` : ''}`);
      if (answer.status !== 200) throw new Error(`ledger: GET ${path} answered ${answer.status} ${JSON.stringify(answer.body)}`);
      const page = answer.body as { data: T[]; has_more: boolean };
      items.push(...page.data);
      if (!page.has_more) return items;
      after = page.data[page.data.length - 1]!.id;
    }
  }

  async #request(method: string, path: string, body?: object, headers: Readonly<Record<string, string>> = {}): Promise<Answer> {
    const response = await fetch(`${this.server.url}${path}`, body === undefined
      ? { method, headers: { authorization: this.headers.authorization!, ...headers } }
      : { method, headers: { ...this.headers, ...headers }, body: JSON.stringify(body) });
    return { status: response.status, body: await response.json() };
  }
}
/** fn(0 … count − 1) with at most `lanes` running at once; the results in index order. */
export async function inLanes<T>(count: number, fn: (index: number) => Promise<T>, lanes = setupLanes): Promise<T[]> {
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
