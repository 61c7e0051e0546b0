// The rig of the distributed benchmark: a fresh Tally installation on the running engines (Kafka,
// Cassandra, Redis) — its own Kafka namespace and Cassandra keyspace, both named `bench_<time>` —
// migrated with the composition root's migrateDistributed and removed afterwards (keyspace
// dropped, topics and consumer group deleted); the log's progress (records appended vs processed);
// merchants spread over the partitions; load sent as several merchants at once; and how the two
// cores were shared between Tally's processes, the engines' JVMs and the load generator.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Admin } from '@platformatic/kafka';
import { loadConfig, type Config } from '../src/config/config.ts';
import { migrateDistributed } from '../src/cli/compose-distributed.ts';
import { CassandraSession } from '../src/adapters/cassandra/session.ts';
import { KafkaEventLog } from '../src/adapters/kafka/event-log.ts';
import { NamespacedEventLog } from '../src/adapters/kafka/namespace.ts';
import { partitionForKey } from '../src/core/partitioner.ts';
import type { EventLog } from '../src/core/ports/event-log.ts';
import { analyticsGroup, eventsTopic } from '../src/analytics/processor.ts';
import type { Result } from 'autocannon';
import { failures, failureText, postEvents, visibleLiveEvents, type CannonOptions } from './client.ts';
import { adminToken, createMerchant, metricValue, readCpuSeconds, type BenchServer, type MerchantKeys } from './server.ts';
import { formatCount } from './report.ts';

/** Where the engines are: the variables scripts/engines.sh writes (or TALLY_* ones), else the local defaults. */
function engineAddresses(env: Readonly<Record<string, string | undefined>> = process.env) {
  return {
    kafkaBrokers: env.TALLY_KAFKA_BROKERS ?? env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    cassandraContactPoints: env.TALLY_CASSANDRA_CONTACT_POINTS ?? env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042',
    cassandraDc: env.TALLY_CASSANDRA_DC ?? env.CASSANDRA_LOCAL_DC ?? 'datacenter1',
    redisUrl: env.TALLY_REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
}

export interface Installation {
  /** Kafka namespace and Cassandra keyspace. */
  readonly name: string;
  /** TALLY_* settings every process of the installation runs with. */
  readonly env: Readonly<Record<string, string>>;
  readonly partitions: number;
  /** Records in the events topic, and how many of them the analytics group has processed (committed). */
  progress(): Promise<{ appended: number; processed: number }>;
  /** Members of the analytics group owning events partitions, once the group is stable (0 while it rebalances). */
  workingMembers(): Promise<number>;
  /** Drops the keyspace, deletes the topics and the consumer groups. */
  remove(): Promise<void>;
}

export async function createInstallation(partitions: number, extraEnv: Readonly<Record<string, string>> = {}): Promise<Installation> {
  const engines = engineAddresses();
  const name = `bench_${Date.now().toString(36)}`;
  const env: Record<string, string> = {
    TALLY_KAFKA_BROKERS: engines.kafkaBrokers,
    TALLY_KAFKA_NAMESPACE: name,
    // A single test broker and node: one replica of everything.
    TALLY_KAFKA_REPLICATION_FACTOR: '1',
    TALLY_KAFKA_MIN_INSYNC_REPLICAS: '1',
    TALLY_CASSANDRA_CONTACT_POINTS: engines.cassandraContactPoints,
    TALLY_CASSANDRA_DC: engines.cassandraDc,
    TALLY_CASSANDRA_KEYSPACE: name,
    TALLY_CASSANDRA_REPLICATION: '1',
    TALLY_REDIS_URL: engines.redisUrl,
    TALLY_EVENTS_PARTITIONS: String(partitions),
    ...extraEnv,
  };
  const config = loadConfig({ ...env, TALLY_ADMIN_TOKEN: adminToken, TALLY_LOG_LEVEL: 'warn' });
  await migrateDistributed(config);
  const log = openLog(config);
  const admin = new Admin({ clientId: 'tally-bench', bootstrapBrokers: [...(config.kafkaBrokers ?? [])] });
  const group = `${name}.${analyticsGroup}`;
  return {
    name, env, partitions,
    async progress() {
      const [ends, committed] = await Promise.all([log.endOffsets(eventsTopic), log.committedOffsets(analyticsGroup, eventsTopic)]);
      let appended = 0;
      let processed = 0;
      for (const [partition, end] of ends) {
        appended += end;
        processed += Math.min(end, committed.get(partition) ?? 0);
      }
      return { appended, processed };
    },
    async workingMembers() {
      const described = (await admin.describeGroups({ groups: [group] })).get(group);
      if (!described || !/^stable$/i.test(described.state)) return 0;
      return [...described.members.values()].filter((member) =>
        [...(member.assignments?.values() ?? [])].some((assignment) => assignment.topic === `${name}.${eventsTopic}` && assignment.partitions.length > 0)).length;
    },
    async remove() {
      await log.close().catch(() => {});
      const results = await Promise.allSettled([dropKeyspace(config), deleteTopicsAndGroups(admin, name)]);
      await admin.close().catch(() => {});
      const failed = results.flatMap((result) => (result.status === 'rejected' ? [String(result.reason)] : []));
      if (failed.length > 0) throw new Error(`removing the bench installation ${name} failed: ${failed.join('; ')}`);
    },
  };
}

function openLog(config: Config): EventLog {
  return NamespacedEventLog.wrap(KafkaEventLog.connect({
    brokers: [...(config.kafkaBrokers ?? [])], clientId: 'tally-bench', replicationFactor: 1, minInsyncReplicas: 1,
  }), config.kafkaNamespace);
}

async function dropKeyspace(config: Config): Promise<void> {
  const session = await CassandraSession.connect({
    contactPoints: config.cassandraContactPoints ?? [], localDataCenter: config.cassandraDc, keyspace: config.cassandraKeyspace,
    replication: { [config.cassandraDc]: 1 },
  });
  try {
    await session.dropKeyspace();
  } finally {
    await session.close();
  }
}

/** Every topic and consumer group under the namespace (events, dead letters, analytics, the log's own). */
async function deleteTopicsAndGroups(admin: Admin, namespace: string): Promise<void> {
  const topics = (await admin.listTopics()).filter((topic) => topic.startsWith(`${namespace}.`));
  if (topics.length > 0) await admin.deleteTopics({ topics });
  const groups = [...(await admin.listGroups()).keys()].filter((group) => group.startsWith(`${namespace}.`));
  if (groups.length > 0) await admin.deleteGroups({ groups });
}

/**
 * Merchants whose keys cover every partition once. A merchant's events share one partition (the
 * key is the merchant id), so one merchant would leave all but one partition idle and a second
 * processor with nothing to do; merchants are created until each partition has one.
 */
export async function merchantsPerPartition(server: BenchServer, partitions: number): Promise<MerchantKeys[]> {
  const byPartition = new Map<number, MerchantKeys>();
  for (let attempt = 0; byPartition.size < partitions; attempt++) {
    if (attempt > partitions * 20) throw new Error(`no merchant spread over ${partitions} partitions after ${attempt} tries`);
    const keys = await createMerchant(server.url, `Bench Shop ${attempt}`);
    const partition = partitionForKey(keys.merchantId, partitions);
    if (!byPartition.has(partition)) byPartition.set(partition, keys);
  }
  return [...byPartition.values()];
}

/** The server as seen by one merchant: the client helpers send and query with `server.keys`. */
export function asMerchant(server: BenchServer, keys: MerchantKeys): BenchServer {
  return { ...server, keys };
}

export interface SpreadResult {
  /** Requests answered 2xx. */
  readonly ok: number;
  readonly seconds: number;
  /** The largest of the merchants' p99 request latencies (autocannon keeps one histogram per run). */
  readonly p99Ms: number;
  readonly failures: number;
  readonly failureText: string;
}

/**
 * The bodies sent as every merchant at once, one autocannon run per merchant over its share of the
 * connections (and of `amount`): the load of several shops, spread over the partitions.
 */
export async function postAsMerchants(server: BenchServer, merchants: readonly MerchantKeys[], bodies: readonly string[], options: CannonOptions): Promise<SpreadResult> {
  const share = (total: number, index: number): number => Math.floor(total / merchants.length) + (index < total % merchants.length ? 1 : 0);
  const startedMs = performance.now();
  const results: Result[] = await Promise.all(merchants.map((keys, index) => postEvents(asMerchant(server, keys), bodies, {
    ...options,
    connections: Math.max(1, share(options.connections, index)),
    ...(options.amount === undefined ? {} : { amount: share(options.amount, index) }),
  })));
  return {
    ok: results.reduce((sum, result) => sum + result['2xx'], 0),
    seconds: (performance.now() - startedMs) / 1000,
    p99Ms: Math.max(...results.map((result) => result.latency.p99)),
    failures: results.reduce((sum, result) => sum + failures(result), 0),
    failureText: results.map(failureText).filter(Boolean).join(' '),
  };
}

/** Live events visible in /v1/query, summed over the merchants. */
export async function visibleAcross(server: BenchServer, merchants: readonly MerchantKeys[]): Promise<number> {
  const counts = await Promise.all(merchants.map((keys) => visibleLiveEvents(asMerchant(server, keys))));
  return counts.reduce((sum, count) => sum + count, 0);
}

const progressPollMs = 100;
const progressLogMs = 10_000;
/** Behind and no record processed for this long: the processors are stuck (failing batches), stop waiting. */
const stallTimeoutMs = 120_000;

export interface CaughtUp {
  /** performance.now() when the processed offsets reached the appended ones (or the time-out). */
  readonly atMs: number;
  readonly caughtUp: boolean;
  /** Samples (performance.now() ms, records processed) taken while waiting. */
  readonly samples: readonly { atMs: number; processed: number }[];
  readonly appended: number;
  readonly processed: number;
}

/** Waits until the analytics group has processed everything appended so far (or `signal` aborts), sampling progress. */
export async function waitProcessed(installation: Installation, timeoutMs: number, log: (message: string) => void, signal: AbortSignal): Promise<CaughtUp> {
  const deadline = performance.now() + timeoutMs;
  const samples: { atMs: number; processed: number }[] = [];
  let loggedMs = performance.now();
  let movedMs = performance.now();
  for (;;) {
    const { appended, processed } = await installation.progress();
    const atMs = performance.now();
    if (processed > (samples.at(-1)?.processed ?? -1)) movedMs = atMs;
    samples.push({ atMs, processed });
    const stalled = atMs - movedMs > stallTimeoutMs;
    if (stalled) log(`  STALLED: no record processed for ${stallTimeoutMs / 1000} s (${formatCount(processed)} of ${formatCount(appended)})`);
    if (processed >= appended || atMs > deadline || stalled || signal.aborted) return { atMs, caughtUp: processed >= appended, samples, appended, processed };
    if (atMs - loggedMs >= progressLogMs) {
      loggedMs = atMs;
      log(`  processed ${formatCount(processed)} of ${formatCount(appended)} records`);
    }
    await new Promise((resolve) => setTimeout(resolve, progressPollMs));
  }
}

/**
 * Records per second from the first sample at or after `fromMs` (the group settled) until `toShare`
 * of the records processed during the wait were done: the steady rate, without start-up, group
 * joins, or the tail where partitions with less backlog are already idle. NaN when the window is empty.
 */
export function steadyRate(caught: CaughtUp, fromMs: number, toShare: number): number {
  const first = caught.samples[0]!.processed;
  const from = caught.samples.find((sample) => sample.atMs >= fromMs);
  const to = caught.samples.find((sample) => sample.processed - first >= (caught.processed - first) * toShare);
  if (!from || !to || to.atMs <= from.atMs) return Number.NaN;
  return (to.processed - from.processed) / ((to.atMs - from.atMs) / 1000);
}

const groupPollMs = 100;

/** performance.now() when `members` members of the analytics group own partitions (null: not within the time-out, or aborted). */
export async function waitGroupSettled(installation: Installation, members: number, timeoutMs: number, signal: AbortSignal): Promise<number | null> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && !signal.aborted) {
    if ((await installation.workingMembers()) >= members) return performance.now();
    await new Promise((resolve) => setTimeout(resolve, groupPollMs));
  }
  return null;
}

/** Kafka and Cassandra JVMs started by scripts/engines.sh (their pid files); absent ones are left out. */
function enginePids(): Map<string, number> {
  const home = process.env.TALLY_ENGINES_HOME ?? new URL('../.tally-engines', import.meta.url).pathname;
  const pids = new Map<string, number>();
  for (const engine of ['kafka', 'cassandra']) {
    try {
      const pid = Number(readFileSync(`${home}/run/${engine}.pid`, 'utf8').trim());
      readCpuSeconds(pid);
      pids.set(engine, pid);
    } catch {
      // Not started by scripts/engines.sh here, or not running: its share stays in "other".
    }
  }
  return pids;
}

/** Busy CPU seconds of the whole machine so far (all cores; /proc/stat counts in USER_HZ = 1/100 s). */
function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: busy is everything but idle and iowait.
  const busy = fields.reduce((sum, value) => sum + value, 0) - fields[3]! - fields[4]!;
  return busy / 100;
}

export interface CpuShares {
  /** "tally start 0.92, Kafka 0.31, Cassandra 0.58, load generator 0.20, other 0.05 cores of 2 over 20.0 s". */
  stop(): string;
}

/** How the cores were shared during a phase: each Tally process, each engine JVM, the load generator, the rest. */
export function measureCpuShares(processes: ReadonlyMap<string, BenchServer>): CpuShares {
  const startedMs = performance.now();
  const engines = enginePids();
  const read = (): Map<string, number> => {
    const seconds = new Map<string, number>();
    for (const [label, server] of processes) seconds.set(label, server.cpuSeconds());
    for (const [label, pid] of engines) seconds.set(label, readCpuSeconds(pid));
    const self = process.cpuUsage();
    seconds.set('load generator', (self.user + self.system) / 1e6);
    return seconds;
  };
  const before = read();
  const machineBefore = machineBusySeconds();
  return {
    stop() {
      const wallSeconds = (performance.now() - startedMs) / 1000;
      const after = read();
      const parts: string[] = [];
      let accounted = 0;
      for (const [label, value] of after) {
        const used = value - (before.get(label) ?? 0);
        accounted += used;
        parts.push(`${label} ${(used / wallSeconds).toFixed(2)}`);
      }
      const other = Math.max(0, machineBusySeconds() - machineBefore - accounted);
      parts.push(`other ${(other / wallSeconds).toFixed(2)}`);
      return `CPU (cores of ${cpus().length}): ${parts.join(', ')} over ${wallSeconds.toFixed(1)} s`;
    },
  };
}

export interface BatchTotals {
  readonly batches: number;
  readonly records: number;
  /** Time spent handling and committing batches. */
  readonly seconds: number;
  /** Records sent to the dead-letter topic (never counted): a non-zero figure means a broken run. */
  readonly deadLetters: number;
}

export const noBatches: BatchTotals = { batches: 0, records: 0, seconds: 0, deadLetters: 0 };

export function addBatches(a: BatchTotals, b: BatchTotals): BatchTotals {
  return { batches: a.batches + b.batches, records: a.records + b.records, seconds: a.seconds + b.seconds, deadLetters: a.deadLetters + b.deadLetters };
}

/** The sum of every sample of a labelled counter (one per label set). */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'gm'))) sum += Number(match[1]);
  return sum;
}

/** The processor's batch histograms from a process's /metrics (the processor thread's included). */
export async function processorBatches(server: BenchServer): Promise<BatchTotals> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return {
    batches: metricValue(text, 'tally_processor_batch_records_count'),
    records: metricValue(text, 'tally_processor_batch_records_sum'),
    seconds: metricValue(text, 'tally_processor_batch_duration_seconds_sum'),
    deadLetters: metricSum(text, 'tally_processor_dead_letters_total'),
  };
}

/** "312 batches, 320 records and 41 ms each on average (13.2 s handling)": how the processor worked between two readings. */
export function batchNote(before: BatchTotals, after: BatchTotals): string {
  const batches = after.batches - before.batches;
  if (batches <= 0) return 'no processor batches';
  const records = after.records - before.records;
  const seconds = after.seconds - before.seconds;
  const deadLetters = after.deadLetters - before.deadLetters;
  return `${formatCount(batches)} batches, ${formatCount(records / batches)} records and ${Math.round((1000 * seconds) / batches)} ms each on average ` +
    `(${seconds.toFixed(1)} s handling and committing)${deadLetters > 0 ? `; ${formatCount(deadLetters)} RECORDS DEAD-LETTERED` : ''}`;
}
