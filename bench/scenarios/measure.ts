// Shared by the scenarios: how the two cores were split between the server and the load
// generator during a run, and the drain check (everything acknowledged ends up counted).
import type { BenchServer } from '../server.ts';
import { waitVisible } from '../client.ts';
import { formatCount } from '../report.ts';

/** After the load stops, the processor gets this long to make every accepted event visible. */
export const drainTimeoutMs = 120_000;

export interface CpuSplit {
  /** "server 1.62 cores, load generator 0.41 cores over 20.0 s". */
  stop(): string;
}

export function measureCpu(server: BenchServer): CpuSplit {
  const startedMs = performance.now();
  const serverStart = server.cpuSeconds();
  const selfStart = process.cpuUsage();
  return {
    stop() {
      const seconds = (performance.now() - startedMs) / 1000;
      const serverCores = (server.cpuSeconds() - serverStart) / seconds;
      const self = process.cpuUsage(selfStart);
      const selfCores = (self.user + self.system) / 1e6 / seconds;
      return `CPU: server ${serverCores.toFixed(2)} cores, load generator ${selfCores.toFixed(2)} cores over ${seconds.toFixed(1)} s`;
    },
  };
}

/** Waits until `accepted` live events are counted; a note saying how long that took, or how many are missing. */
export async function drainNote(server: BenchServer, accepted: number, loadEndedMs: number): Promise<string> {
  const visible = await waitVisible(server, accepted, drainTimeoutMs);
  if (visible.seen < accepted) {
    return `NOT ALL VISIBLE: ${formatCount(visible.seen)} of ${formatCount(accepted)} accepted events counted ${drainTimeoutMs / 1000} s after the load`;
  }
  const extra = visible.seen > accepted ? ` (+${formatCount(visible.seen - accepted)}: requests in flight when the load generator stopped)` : '';
  return `all ${formatCount(accepted)} accepted events visible in /v1/query ${((visible.atMs - loadEndedMs) / 1000).toFixed(1)} s after the load stopped${extra}`;
}
