// Scenario "users": the seed design's load test — 1,000 concurrent users, 5 requests each (one
// event per request, like a form submission) — which averaged 1,858 ms there. Target: ≤ 20 ms.
import { singleEventBodies } from '../data.ts';
import { failures, failureText, postEvents } from '../client.ts';
import { startServer } from '../server.ts';
import { atMost, formatCount, formatMs, row, type BenchContext, type ScenarioReport } from '../report.ts';
import { drainNote, measureCpu } from './measure.ts';

const users = 1000;
const requestsPerUser = 5;
const averageMsGoal = 20;

export async function runUsers(context: BenchContext): Promise<ScenarioReport> {
  const server = await startServer({ nodeFlags: context.nodeFlags });
  try {
    const bodies = singleEventBodies(users * requestsPerUser, 3);
    context.log(`users: warm-up ${context.scale.warmupSeconds} s`);
    const warmup = await postEvents(server, bodies, { connections: 50, duration: context.scale.warmupSeconds });
    context.log(`users: ${users} connections × ${requestsPerUser} requests`);
    const cpu = measureCpu(server);
    const result = await postEvents(server, bodies, {
      connections: users, amount: users * requestsPerUser, maxConnectionRequests: requestsPerUser,
    });
    const cpuNote = cpu.stop();
    const drained = await drainNote(server, warmup['2xx'] + result['2xx'], performance.now());
    const failed = failures(result);
    const scenario = '1,000 users × 5 requests';
    return {
      rows: [
        row(scenario, `average ≤ ${averageMsGoal} ms`, `average ${formatMs(result.latency.average)} (p99 ${formatMs(result.latency.p99)}, max ${formatMs(result.latency.max)})`,
          failed ? 'error' : atMost(result.latency.average, averageMsGoal)),
      ],
      notes: [
        `users: ${formatCount(result['2xx'])} of ${formatCount(users * requestsPerUser)} requests answered 202 in ${result.duration} s${failed ? `; FAILURES: ${failureText(result)}` : ''}`,
        `users: ${cpuNote}`,
        `users: ${drained}`,
      ],
    };
  } finally {
    await server.stop();
  }
}
