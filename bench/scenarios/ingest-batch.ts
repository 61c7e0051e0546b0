// Scenario "batch": 100-event batches (a server-side SDK or a tracker flushing its queue), end to
// end: from the first request to the moment every accepted event is counted by /v1/query.
// Targets: ≥ 100,000 events/s sustained end to end, server RSS ≤ 400 MB throughout.
import { batchBodies } from '../data.ts';
import { failures, failureText, postEvents, waitVisible } from '../client.ts';
import { startServer, sampleMemory } from '../server.ts';
import { startProbes } from '../probes.ts';
import { atLeast, atMost, quantile, formatCount, formatMb, formatMs, row, type BenchContext, type ScenarioReport } from '../report.ts';
import { drainTimeoutMs, measureCpu } from './measure.ts';

const eventsPerBatch = 100;
/** Several senders flushing at once; more connections only queue inside the one server. */
const connections = 16;
const bodiesCount = 500;
const eventsPerSecondGoal = 100_000;
const rssBytesGoal = 400 * 1024 * 1024;
const probeIntervalMs = 250;

export async function runBatch(context: BenchContext): Promise<ScenarioReport> {
  const server = await startServer({ nodeFlags: context.nodeFlags });
  try {
    const bodies = batchBodies(bodiesCount, eventsPerBatch, 2);
    context.log(`batch: warm-up ${context.scale.warmupSeconds} s`);
    const warmup = await postEvents(server, bodies, { connections, duration: context.scale.warmupSeconds });
    const warmupEvents = warmup['2xx'] * eventsPerBatch;
    // The warm-up's events must be counted before the clock starts, or they would flatter the rate.
    await waitVisible(server, warmupEvents, drainTimeoutMs);
    const requests = Math.ceil(context.scale.batchEvents / eventsPerBatch);
    context.log(`batch: ${formatCount(requests)} requests of ${eventsPerBatch} events at ${connections} connections`);
    const memory = sampleMemory(server);
    const cpu = measureCpu(server);
    const probes = startProbes(server, probeIntervalMs);
    const startedMs = performance.now();
    const result = await postEvents(server, bodies, { connections, amount: requests });
    const acceptedMs = performance.now();
    const accepted = result['2xx'] * eventsPerBatch;
    const visible = await waitVisible(server, warmupEvents + accepted, drainTimeoutMs);
    const probed = await probes.finish();
    const cpuNote = cpu.stop();
    const peaks = await memory.stop();
    const allVisible = visible.seen >= warmupEvents + accepted;
    const endToEnd = accepted / ((visible.atMs - startedMs) / 1000);
    const ingestOnly = accepted / ((acceptedMs - startedMs) / 1000);
    const failed = failures(result);
    const scenario = '100-event batches, 16 conns';
    return {
      rows: [
        row(scenario, `≥ ${formatCount(eventsPerSecondGoal)} events/s end to end`, `${formatCount(endToEnd)} events/s`,
          failed || !allVisible ? 'error' : atLeast(endToEnd, eventsPerSecondGoal)),
        row(scenario, `RSS ≤ ${formatMb(rssBytesGoal)}`, `max ${formatMb(peaks.rssBytes)} (main-thread heap ≤ ${formatMb(peaks.heapBytes)}, external ≤ ${formatMb(peaks.externalBytes)})`,
          atMost(peaks.rssBytes, rssBytesGoal)),
        row(scenario, '(202s only)', `${formatCount(ingestOnly)} events/s, p99 ${formatMs(result.latency.p99)}/request`, 'info'),
        row(scenario, '(freshness under it)', `p99 ${formatMs(quantile(probed.delaysMs, 0.99))} (${probed.delaysMs.length} probes, ${probed.missing} missing)`, 'info'),
      ],
      notes: [
        `batch: ${formatCount(accepted)} events accepted in ${((acceptedMs - startedMs) / 1000).toFixed(1)} s, all counted after ${((visible.atMs - startedMs) / 1000).toFixed(1)} s` +
          `${allVisible ? '' : ` — NOT ALL VISIBLE (${formatCount(visible.seen - warmupEvents)})`}${failed ? `; FAILURES: ${failureText(result)}` : ''}`,
        `batch: ${cpuNote}`,
      ],
    };
  } finally {
    await server.stop();
  }
}
