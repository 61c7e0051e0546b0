// Scenario "freshness": under sustained ingest (single events at 50 connections, as in "single"),
// how long from a marker event's 202 until /v1/query counts it. Target: p99 ≤ 2 s.
import { singleEventBodies } from '../data.ts';
import { failures, failureText, postEvents } from '../client.ts';
import { startServer } from '../server.ts';
import { startProbes } from '../probes.ts';
import { atMost, quantile, formatCount, formatMs, row, type BenchContext, type ScenarioReport } from '../report.ts';
import { drainNote, measureCpu } from './measure.ts';

const connections = 50;
const probeIntervalMs = 100;
const p99MsGoal = 2000;

export async function runFreshness(context: BenchContext): Promise<ScenarioReport> {
  const server = await startServer({ nodeFlags: context.nodeFlags });
  try {
    const bodies = singleEventBodies(10_000, 4);
    context.log(`freshness: warm-up ${context.scale.warmupSeconds} s`);
    const warmup = await postEvents(server, bodies, { connections, duration: context.scale.warmupSeconds });
    context.log(`freshness: ${connections} connections for ${context.scale.freshnessSeconds} s, a marker every ${probeIntervalMs} ms`);
    const cpu = measureCpu(server);
    const load = postEvents(server, bodies, { connections, duration: context.scale.freshnessSeconds });
    const probes = startProbes(server, probeIntervalMs);
    const result = await load;
    const probed = await probes.finish();
    const cpuNote = cpu.stop();
    const drained = await drainNote(server, warmup['2xx'] + result['2xx'] + probed.sent - probed.missing, performance.now());
    const failed = failures(result);
    const delays = probed.delaysMs;
    const p99 = quantile(delays, 0.99);
    return {
      rows: [
        row('freshness under single-event load', `p99 ≤ ${formatMs(p99MsGoal)} (202 → in /v1/query)`,
          `p99 ${formatMs(p99)} (p50 ${formatMs(quantile(delays, 0.5))}, max ${formatMs(quantile(delays, 1))})`,
          probed.missing > 0 ? 'error' : atMost(p99, p99MsGoal)),
      ],
      notes: [
        `freshness: ${delays.length} markers seen, ${probed.missing} missing; load ${formatCount(result['2xx'] / result.duration)} events/s` +
          `${failed ? `; FAILURES: ${failureText(result)}` : ''}; resolution 25 ms (poll interval)`,
        `freshness: ${cpuNote}`,
        `freshness: ${drained}`,
      ],
    };
  } finally {
    await server.stop();
  }
}
