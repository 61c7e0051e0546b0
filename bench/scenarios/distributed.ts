// Scenario "distributed": Tally on Kafka (log), Cassandra (stores) and Redis (query cache), one
// fresh installation per run (bench/distributed.ts). Phases, all on one installation:
//  1. ingest: 100-event batches from 16 connections into `tally start`, end to end — acknowledged
//     (202) and processed into rollups. Target ≥ 50,000 events/s end to end.
//  2. freshness: single events at 50 connections (as the embedded "freshness" scenario), a marker
//     every 100 ms; 202 → counted by /v1/query. Target p99 ≤ 5 s.
//  3. queries: the query scenario's two questions over a 30-day history in Cassandra. Targets:
//     p99 ≤ 30 ms computed (cold), ≤ 5 ms answered from Redis (warm), one connection.
//  4. processor scaling: a backlog appended through `tally collector` alone, then drained by ONE
//     `tally processor` process, and another by TWO (one consumer group); the ratio is reported.
// Load goes to one merchant per partition: a merchant's events share a partition, so a single
// merchant would leave one processor thread doing all the work and a second process idle.
import { batchBodies, createEventSource, historyTimestamp, historyWindow, singleEventBodies } from '../data.ts';
import { noCache, postQueries, query, sendEvents, failures, failureText } from '../client.ts';
import { createMerchant, startServer, type BenchServer, type MerchantKeys, type ServerOptions } from '../server.ts';
import { startProbes } from '../probes.ts';
import { atLeast, atMost, quantile, formatCount, formatMs, row, type BenchContext, type Row, type ScenarioReport } from '../report.ts';
import {
  addBatches, asMerchant, batchNote, createInstallation, measureCpuShares, merchantsPerPartition, postAsMerchants, processorBatches, steadyRate,
  visibleAcross, waitGroupSettled, waitProcessed, noBatches, type CaughtUp, type Installation,
} from '../distributed.ts';
import { queries, timeAlone } from './queries.ts';

/** The default partition count of the events topic (TALLY_EVENTS_PARTITIONS). */
const partitions = 8;
const eventsPerBatch = 100;
const batchConnections = 16;
const batchBodiesCount = 500;
const singleConnections = 50;
const queryConnections = 20;
const freshnessProbeMs = 100;
const batchProbeMs = 250;
/** Sequential cold queries before measuring: JIT, Cassandra's caches. */
const warmupQueries = 100;
/** History load: requests in flight at once. */
const historyLanes = 8;
/** Waiting for the processors to catch up: generous, a slow run is a figure, not an error. */
const processTimeoutMs = 15 * 60_000;
/** The steady drain rate is taken from the group settling until this share of a backlog is done (no tail). */
const steadyTo = 0.9;
/** Processor processes joining one group: a join (and, for the second, a rebalance) takes seconds. */
const groupSettleTimeoutMs = 60_000;

const eventsPerSecondGoal = 50_000;
const freshnessP99MsGoal = 5000;
const coldP99MsGoal = 30;
const warmP99MsGoal = 5;

/** Events per phase, by scale: ingest, each processor backlog, the query history. */
const sizes = {
  full: { ingestEvents: 1_000_000, backlogEvents: 500_000, historyEvents: 1_000_000 },
  small: { ingestEvents: 100_000, backlogEvents: 50_000, historyEvents: 100_000 },
} as const;

/** The installation and the Tally processes running on it. */
interface Rig {
  readonly context: BenchContext;
  readonly installation: Installation;
  /** Starts a Tally process of the installation (stopped at once on Ctrl-C). */
  start(options: ServerOptions): Promise<BenchServer>;
  /** Until everything appended is processed (or the time-out, a stall, Ctrl-C). */
  waitProcessed(): Promise<CaughtUp>;
}

/** What the phases share: the rig, the merchants, and the live events accepted so far. */
interface Run extends Rig {
  /** One per partition, sending the load. */
  readonly merchants: readonly MerchantKeys[];
  /** Sends the freshness markers (kept out of the load's counts). */
  readonly probeKeys: MerchantKeys;
  /** Live events of `merchants` answered 202 so far: all must end up counted. */
  accepted: number;
}

export async function runDistributed(context: BenchContext): Promise<ScenarioReport> {
  const size = sizes[context.scale.name];
  context.log(`distributed: migrating a fresh installation (${partitions} partitions)`);
  const installation = await createInstallation(partitions);
  context.log(`distributed: installation ${installation.name}`);
  const interruption = new AbortController();
  const live = new Set<BenchServer>();
  const rig: Rig = {
    context, installation,
    async start(options) {
      const server = await startServer({ ...options, nodeFlags: context.nodeFlags });
      live.add(server);
      server.onStop(() => live.delete(server));
      return server;
    },
    waitProcessed: () => waitProcessed(installation, processTimeoutMs, context.log, interruption.signal),
  };
  // On Ctrl-C (or SIGTERM) the Tally processes stop, the phases end, and the installation is still
  // removed: it must not stay behind on the shared engines.
  const interrupted = (signal: NodeJS.Signals): void => {
    context.log(`distributed: ${signal}: stopping, then removing installation ${installation.name}`);
    interruption.abort();
    for (const server of live) void server.stop();
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const rows: Row[] = [];
  const notes: string[] = [`distributed: installation ${installation.name} (Kafka namespace and Cassandra keyspace, removed afterwards); ${partitions} partitions`];
  // A failed phase becomes one error row and the next phases still run: a long run keeps what it measured.
  const record = async (name: string, phase: () => Promise<ScenarioReport>): Promise<void> => {
    if (interruption.signal.aborted) return;
    try {
      const done = await phase();
      rows.push(...done.rows);
      notes.push(...done.notes);
    } catch (error) {
      const message = interruption.signal.aborted ? 'interrupted' : error instanceof Error ? error.message : String(error);
      if (!interruption.signal.aborted) context.log(`distributed ${name} failed: ${error instanceof Error ? (error.stack ?? message) : message}`);
      rows.push(row(`distributed: ${name}`, '-', message.split('\n')[0]!.slice(0, 120), 'error'));
    }
  };
  try {
    // The history is 30 days old at its start: the collector must accept it.
    const server = await rig.start({ env: { ...installation.env, TALLY_LATE_WINDOW_DAYS: '31' } });
    let run: Run;
    try {
      run = { ...rig, merchants: await merchantsPerPartition(server, partitions), probeKeys: server.keys, accepted: 0 };
      await record('ingest', () => ingest(run, server, size.ingestEvents));
      await record('freshness', () => freshness(run, server));
      await record('query', () => queriesOnCassandra(run, server, size.historyEvents));
    } finally {
      await server.stop();
    }
    await record('processor scaling', () => processorScaling(run, size.backlogEvents));
    await record('final count', async () => ({ rows: [], notes: [await finalCount(run)] }));
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await Promise.all([...live].map((server) => server.stop()));
    await installation.remove().catch((error: unknown) => notes.push(`distributed: CLEAN-UP FAILED: ${error instanceof Error ? error.message : String(error)}`));
  }
  if (interruption.signal.aborted) {
    context.log(`distributed: installation ${installation.name} removed`);
    process.exit(130);
  }
  return { rows, notes };
}

async function ingest(run: Run, server: BenchServer, events: number): Promise<ScenarioReport> {
  const { context, installation, merchants } = run;
  const bodies = batchBodies(batchBodiesCount, eventsPerBatch, 2);
  context.log(`distributed ingest: warm-up ${context.scale.warmupSeconds} s`);
  const warmup = await postAsMerchants(server, merchants, bodies, { connections: batchConnections, duration: context.scale.warmupSeconds });
  run.accepted += warmup.ok * eventsPerBatch;
  // The warm-up's events must be processed before the clock starts, or they would flatter the rate.
  await run.waitProcessed();
  const requests = Math.ceil(events / eventsPerBatch);
  context.log(`distributed ingest: ${formatCount(requests)} requests of ${eventsPerBatch} events at ${batchConnections} connections, ${merchants.length} merchants`);
  const cpu = measureCpuShares(new Map([['tally start', server]]));
  const batchesBefore = await processorBatches(server);
  const probes = startProbes(asMerchant(server, run.probeKeys), batchProbeMs);
  const startedMs = performance.now();
  const sent = await postAsMerchants(server, merchants, bodies, { connections: batchConnections, amount: requests });
  const acceptedMs = performance.now();
  const caught = await run.waitProcessed();
  const probed = await probes.finish();
  const cpuNote = cpu.stop();
  const batches = batchNote(batchesBefore, await processorBatches(server));
  const accepted = sent.ok * eventsPerBatch;
  run.accepted += accepted;
  const visible = await visibleAcross(server, merchants);
  const complete = caught.caughtUp && visible >= run.accepted;
  const endToEnd = accepted / ((caught.atMs - startedMs) / 1000);
  const acknowledged = accepted / ((acceptedMs - startedMs) / 1000);
  const scenario = `distributed: 100-event batches, ${batchConnections} conns`;
  return {
    rows: [
      row(scenario, `≥ ${formatCount(eventsPerSecondGoal)} events/s end to end`, `${formatCount(endToEnd)} events/s processed`,
        sent.failures || !complete ? 'error' : atLeast(endToEnd, eventsPerSecondGoal)),
      row(scenario, '(202s only)', `${formatCount(acknowledged)} events/s, p99 ${formatMs(sent.p99Ms)}/request`, 'info'),
      row(scenario, '(freshness under it)', `p99 ${formatMs(quantile(probed.delaysMs, 0.99))} (${probed.delaysMs.length} probes, ${probed.missing} missing)`, 'info'),
    ],
    notes: [
      `distributed ingest: ${formatCount(accepted)} events accepted in ${((acceptedMs - startedMs) / 1000).toFixed(1)} s, all processed after ` +
        `${((caught.atMs - startedMs) / 1000).toFixed(1)} s${complete ? '' : ` — NOT ALL PROCESSED (${formatCount(caught.processed)} of ${formatCount(caught.appended)} records; ${formatCount(visible)} of ${formatCount(run.accepted)} events visible)`}` +
        `${sent.failures ? `; FAILURES: ${sent.failureText}` : ''}`,
      `distributed ingest: ${cpuNote}`,
      `distributed ingest: processor ${batches}`,
    ],
  };
}

async function freshness(run: Run, server: BenchServer): Promise<ScenarioReport> {
  const { context, installation, merchants } = run;
  const bodies = singleEventBodies(10_000, 4);
  context.log(`distributed freshness: warm-up ${context.scale.warmupSeconds} s`);
  const warmup = await postAsMerchants(server, merchants, bodies, { connections: singleConnections, duration: context.scale.warmupSeconds });
  run.accepted += warmup.ok;
  await run.waitProcessed();
  context.log(`distributed freshness: ${singleConnections} connections for ${context.scale.freshnessSeconds} s, a marker every ${freshnessProbeMs} ms`);
  const cpu = measureCpuShares(new Map([['tally start', server]]));
  const batchesBefore = await processorBatches(server);
  const load = postAsMerchants(server, merchants, bodies, { connections: singleConnections, duration: context.scale.freshnessSeconds });
  const probes = startProbes(asMerchant(server, run.probeKeys), freshnessProbeMs);
  const sent = await load;
  const probed = await probes.finish();
  const cpuNote = cpu.stop();
  run.accepted += sent.ok;
  const caught = await run.waitProcessed();
  const batches = batchNote(batchesBefore, await processorBatches(server));
  const visible = await visibleAcross(server, merchants);
  const delays = probed.delaysMs;
  const p99 = quantile(delays, 0.99);
  return {
    rows: [
      row('distributed: freshness under single-event load', `p99 ≤ ${freshnessP99MsGoal / 1000} s (202 → in /v1/query)`,
        `p99 ${formatMs(p99)} (p50 ${formatMs(quantile(delays, 0.5))}, max ${formatMs(quantile(delays, 1))})`,
        probed.missing > 0 ? 'error' : atMost(p99, freshnessP99MsGoal)),
    ],
    notes: [
      `distributed freshness: ${delays.length} markers seen, ${probed.missing} missing; load ${formatCount(sent.ok / sent.seconds)} events/s at ` +
        `${singleConnections} connections (p99 ${formatMs(sent.p99Ms)}/request)${sent.failures ? `; FAILURES: ${sent.failureText}` : ''}; resolution 25 ms (poll interval)`,
      `distributed freshness: ${cpuNote}; processor ${batches}`,
      `distributed freshness: ${caught.caughtUp && visible >= run.accepted ? `all ${formatCount(run.accepted)} live events so far counted` : `NOT ALL COUNTED: ${formatCount(visible)} of ${formatCount(run.accepted)}`}`,
    ],
  };
}

async function queriesOnCassandra(run: Run, server: BenchServer, events: number): Promise<ScenarioReport> {
  const { context, installation } = run;
  const history = asMerchant(server, await createMerchant(server.url, 'Bench History'));
  context.log(`distributed query: loading ${formatCount(events)} events of 30-day history over HTTP`);
  const startedMs = performance.now();
  await loadHistory(history, events);
  const caught = await run.waitProcessed();
  const loadSeconds = (caught.atMs - startedMs) / 1000;
  const notes = [`distributed query: ${formatCount(events)} history events sent as 100-event batches (${historyLanes} in flight) and processed in ${loadSeconds.toFixed(0)} s ` +
    `(${formatCount(events / loadSeconds)} events/s)${caught.caughtUp ? '' : ' — NOT ALL PROCESSED'}`];
  const rows: Row[] = [];
  const aloneSeconds = Math.max(2, context.scale.querySeconds / 2);
  for (const item of queries) {
    item.check(await query(history, item.body, noCache), events);
    for (let count = 0; count < warmupQueries; count++) await query(history, item.body, noCache);
    context.log(`distributed query: ${item.name}: cold and warm, 1 connection, then ${queryConnections}`);
    const cold = await timeAlone(history, item.body, aloneSeconds);
    const cpu = measureCpuShares(new Map([['tally start', server]]));
    const coldLoaded = await postQueries(history, item.body, { connections: queryConnections, duration: context.scale.querySeconds }, noCache);
    const cpuNote = cpu.stop();
    await query(history, item.body);
    const warm = await timeAlone(history, item.body, aloneSeconds, {});
    const warmLoaded = await postQueries(history, item.body, { connections: queryConnections, duration: aloneSeconds });
    const scenario = `distributed: ${item.name} @ ${formatCount(events)}`;
    rows.push(
      row(scenario, `p99 ≤ ${coldP99MsGoal} ms, 1 conn, cold (Cassandra)`, `p99 ${formatMs(quantile(cold, 0.99))} (p50 ${formatMs(quantile(cold, 0.5))})`, atMost(quantile(cold, 0.99), coldP99MsGoal)),
      row(scenario, `p99 ≤ ${warmP99MsGoal} ms, 1 conn, warm (Redis)`, `p99 ${formatMs(quantile(warm, 0.99))} (p50 ${formatMs(quantile(warm, 0.5))})`, atMost(quantile(warm, 0.99), warmP99MsGoal)),
      row(scenario, `(${queryConnections} conns, cold)`, `${formatCount(coldLoaded['2xx'] / coldLoaded.duration)} queries/s, p99 ${formatMs(coldLoaded.latency.p99)}`, failures(coldLoaded) ? 'error' : 'info'),
      row(scenario, `(${queryConnections} conns, warm)`, `${formatCount(warmLoaded['2xx'] / warmLoaded.duration)} queries/s, p99 ${formatMs(warmLoaded.latency.p99)}`, failures(warmLoaded) ? 'error' : 'info'),
    );
    notes.push(`distributed query: ${item.name}, ${queryConnections} connections cold: ${cpuNote}`);
    for (const [label, result] of [['cold', coldLoaded], ['warm', warmLoaded]] as const) {
      if (failures(result)) notes.push(`distributed query: ${item.name} ${label}: FAILURES ${failureText(result)}`);
    }
  }
  return { rows, notes };
}

/** The 30-day history of the query scenario's datasets (same source and seed), sent through the collector. */
async function loadHistory(server: BenchServer, total: number): Promise<void> {
  const window = historyWindow(Date.now());
  const next = createEventSource(5);
  let index = 0;
  const lane = async (): Promise<void> => {
    while (index < total) {
      const count = Math.min(eventsPerBatch, total - index);
      await sendEvents(server, JSON.stringify(Array.from({ length: count }, () => next(historyTimestamp(index++, total, window)))));
    }
  };
  await Promise.all(Array.from({ length: historyLanes }, lane));
}

/**
 * A backlog appended with no processor running, drained by one processor process, then another
 * backlog by two: processing capacity alone, without the collector competing for the cores.
 */
async function processorScaling(run: Run, backlogEvents: number): Promise<ScenarioReport> {
  const { context, installation, merchants } = run;
  const bodies = batchBodies(batchBodiesCount, eventsPerBatch, 6);
  const collector = await run.start({ command: 'collector', env: installation.env, keys: run.probeKeys });
  const rates: { processes: number; steady: number; whole: number }[] = [];
  const notes: string[] = [];
  try {
    for (const processes of [1, 2]) {
      context.log(`distributed scaling: appending a backlog of ${formatCount(backlogEvents)} events through tally collector`);
      const fill = await postAsMerchants(collector, merchants, bodies, { connections: batchConnections, amount: Math.ceil(backlogEvents / eventsPerBatch) });
      run.accepted += fill.ok * eventsPerBatch;
      const before = await installation.progress();
      context.log(`distributed scaling: ${processes} processor process(es) draining ${formatCount(before.appended - before.processed)} records`);
      const startedMs = performance.now();
      const processors = await Promise.all(Array.from({ length: processes }, () =>
        run.start({ command: 'processor', env: installation.env, keys: run.probeKeys })));
      try {
        const cpu = measureCpuShares(new Map(processors.map((processor, index) => [`processor ${index + 1}`, processor])));
        const drained = new AbortController();
        const settled = waitGroupSettled(installation, processes, groupSettleTimeoutMs, drained.signal);
        const caught = await run.waitProcessed();
        drained.abort();
        const cpuNote = cpu.stop();
        const settledMs = await settled;
        const batchTotals = await Promise.all(processors.map(processorBatches));
        const batches = batchNote(noBatches, batchTotals.reduce(addBatches, noBatches));
        const steady = settledMs === null ? Number.NaN : steadyRate(caught, settledMs, steadyTo);
        const whole = (caught.processed - before.processed) / ((caught.atMs - startedMs) / 1000);
        rates.push({ processes, steady, whole });
        notes.push(
          `distributed scaling, ${processes} process(es): backlog of ${formatCount(before.appended - before.processed)} records appended at ` +
            `${formatCount((fill.ok * eventsPerBatch) / fill.seconds)} events/s (collector alone${fill.failures ? `; FAILURES: ${fill.failureText}` : ''}); ` +
            `group settled ${settledMs === null ? 'NEVER' : `${((settledMs - startedMs) / 1000).toFixed(1)} s`} and drained ${((caught.atMs - startedMs) / 1000).toFixed(1)} s after spawning` +
            `${caught.caughtUp ? '' : ` — NOT DRAINED (${formatCount(caught.processed)} of ${formatCount(caught.appended)})`}`,
          `distributed scaling, ${processes} process(es): ${cpuNote}; processors: ${batches}`,
        );
      } finally {
        await Promise.all(processors.map((processor) => processor.stop()));
      }
    }
  } finally {
    await collector.stop();
  }
  const [one, two] = rates;
  const rows: Row[] = rates.map((rate) => row(`distributed: processor, ${rate.processes} process${rate.processes > 1 ? 'es' : ''}`, '(backlog drain, steady)',
    `${formatCount(rate.steady)} events/s (${formatCount(rate.whole)} from spawn to drained)`, 'info'));
  if (one && two) {
    rows.push(row('distributed: processor, 2 vs 1 processes', '(ratio, one consumer group)', `${(two.steady / one.steady).toFixed(2)}× steady; ${(two.whole / one.whole).toFixed(2)}× spawn to drained`, 'info'));
  }
  return { rows, notes };
}

/** The drain check over the whole run: every live event answered 202 is counted (through `tally query`). */
async function finalCount(run: Run): Promise<string> {
  const server = await run.start({ command: 'query', env: run.installation.env, keys: run.probeKeys });
  try {
    const visible = await visibleAcross(server, run.merchants);
    if (visible < run.accepted) return `distributed: NOT ALL VISIBLE: ${formatCount(visible)} of ${formatCount(run.accepted)} accepted live events counted at the end`;
    const extra = visible > run.accepted ? ` (+${formatCount(visible - run.accepted)}: requests in flight when a timed load stopped)` : '';
    return `distributed: all ${formatCount(run.accepted)} accepted live events counted in /v1/query at the end${extra}`;
  } finally {
    await server.stop();
  }
}
