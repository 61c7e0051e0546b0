// End-to-end freshness probes: send a marker event with a type no other event has, note when its
// 202 arrives, and poll /v1/query until the marker is counted. The delay is what a merchant waits
// between "accepted" and "in my dashboard", measured from outside the server.
import { daysAroundNow, query, sendEvents } from './client.ts';
import type { BenchServer } from './server.ts';
import { limits } from '../src/core/limits.ts';

/** How often one poll asks for every outstanding marker: the measurement's resolution. */
const pollIntervalMs = 25;
/** A marker not visible this long after the load stopped counts as never visible. */
const settleTimeoutMs = 10_000;

export interface ProbeResults {
  /** Milliseconds from each marker's 202 to the first query answer that counts it. */
  readonly delaysMs: number[];
  readonly sent: number;
  /** Markers never seen (or whose send failed). */
  readonly missing: number;
}

export interface Probes {
  /** Stops sending markers, waits for the outstanding ones (bounded), returns the delays. */
  finish(): Promise<ProbeResults>;
}

export function startProbes(server: BenchServer, intervalMs: number): Probes {
  const run = Date.now().toString(36);
  const outstanding = new Map<string, number>();
  const delaysMs: number[] = [];
  let sent = 0;
  let failed = 0;
  let inFlight = 0;
  let sending = true;
  let polling = true;

  const sender = setInterval(() => {
    const type = `bench_probe_${run}_${sent++}`;
    inFlight++;
    sendEvents(server, JSON.stringify({ type }))
      .then(() => outstanding.set(type, performance.now()), () => failed++)
      .finally(() => inFlight--);
  }, intervalMs);

  const poller = (async () => {
    while (polling) {
      await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
      if (outstanding.size === 0) continue;
      // The oldest markers first: a filter takes at most queryFilterValuesMax values.
      const asked = [...outstanding.keys()].slice(0, limits.queryFilterValuesMax);
      try {
        const answer = await query(server, {
          metrics: ['events'], date_range: daysAroundNow(Date.now()), dimensions: ['event:type'],
          filters: [['is', 'event:type', asked]], limit: limits.queryFilterValuesMax,
        });
        const seenMs = performance.now();
        for (const result of answer.results) {
          const type = result.dimensions[0]!;
          const sentMs = outstanding.get(type);
          if (sentMs === undefined || (result.metrics[0] ?? 0) < 1) continue;
          delaysMs.push(seenMs - sentMs);
          outstanding.delete(type);
        }
      } catch {
        // A failed poll delays the markers' sighting; the next poll asks again.
      }
    }
  })();

  server.onStop(() => {
    clearInterval(sender);
    polling = false;
  });
  return {
    async finish() {
      if (sending) {
        sending = false;
        clearInterval(sender);
      }
      const deadline = performance.now() + settleTimeoutMs;
      while ((inFlight > 0 || outstanding.size > 0) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
      polling = false;
      await poller;
      return { delaysMs, sent, missing: outstanding.size + failed + inFlight };
    },
  };
}
