// Scenario "single": one event per request at 50 connections, the way browser trackers send.
// Target: ≥ 20,000 events/s with p99 ≤ 25 ms (Umami's collector takes ~300/s on this machine).
import { singleEventBodies } from '../data.ts';
import { failures, failureText, postEvents } from '../client.ts';
import { startServer, sampleMemory } from '../server.ts';
import { atLeast, atMost, formatCount, formatMb, formatMs, row, type BenchContext, type ScenarioReport } from '../report.ts';
import { drainNote, measureCpu } from './measure.ts';

const connections = 50;
/** Distinct bodies cycled through (visitors drawn from 100,000; the server assigns ids). */
const bodiesCount = 10_000;
const eventsPerSecondGoal = 20_000;
const p99MsGoal = 25;

export async function runSingle(context: BenchContext): Promise<ScenarioReport> {
  const server = await startServer({ nodeFlags: context.nodeFlags });
  try {
    const bodies = singleEventBodies(bodiesCount, 1);
    context.log(`single: warm-up ${context.scale.warmupSeconds} s`);
    const warmup = await postEvents(server, bodies, { connections, duration: context.scale.warmupSeconds });
    context.log(`single: ${connections} connections for ${context.scale.singleSeconds} s`);
    const memory = sampleMemory(server);
    const cpu = measureCpu(server);
    const result = await postEvents(server, bodies, { connections, duration: context.scale.singleSeconds });
    const cpuNote = cpu.stop();
    const loadEndedMs = performance.now();
    const drained = await drainNote(server, warmup['2xx'] + result['2xx'], loadEndedMs);
    const peaks = await memory.stop();
    const eventsPerSecond = result['2xx'] / result.duration;
    const failed = failures(result);
    const scenario = 'single events, 50 conns';
    return {
      rows: [
        row(scenario, `≥ ${formatCount(eventsPerSecondGoal)} events/s`, `${formatCount(eventsPerSecond)} events/s`, failed ? 'error' : atLeast(eventsPerSecond, eventsPerSecondGoal)),
        row(scenario, `p99 ≤ ${p99MsGoal} ms`, `p99 ${formatMs(result.latency.p99)} (p50 ${formatMs(result.latency.p50)})`, atMost(result.latency.p99, p99MsGoal)),
      ],
      notes: [
        `single: ${formatCount(result['2xx'])} requests answered 202 in ${result.duration} s${failed ? `; FAILURES: ${failureText(result)}` : ''}`,
        `single: ${cpuNote}; server RSS max ${formatMb(peaks.rssBytes)} (main-thread heap ≤ ${formatMb(peaks.heapBytes)})`,
        `single: ${drained}`,
      ],
    };
  } finally {
    await server.stop();
  }
}
