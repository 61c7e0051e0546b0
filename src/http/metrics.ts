// Prometheus metrics (prom-client), one registry per process: HTTP requests and latency by route,
// events accepted and rejected by code, processor batches, lag (records and seconds), freshness
// (now − arrival of the newest processed event), ledger commands by outcome and in-flight work. Lag is read from the log at
// scrape time, so it is right even when the processor is stuck.
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { ConsumedRecord, EventLog } from '../core/ports/event-log.ts';
import type { RuntimeObserver } from '../runtime/processor-runtime.ts';
import type { AnalyticsObserver } from '../analytics/processor.ts';
import type { DeadLetter } from '../runtime/processor.ts';
import type { LedgerCounts, LedgerObserver } from '../payments/processor.ts';

/** Both lag gauges of one scrape share a read of the log made within this window. */
const lagReadReuseMs = 500;

export interface LagSource {
  readonly processor: string;
  readonly group: string;
  readonly topics: readonly string[];
}

/** Metrics of another thread of this process (the processor worker), as prom-client JSON. */
export type MetricsSource = () => Promise<MetricObjectWithValues<MetricValue<string>>[]>;

export class TallyMetrics implements RuntimeObserver, AnalyticsObserver, LedgerObserver {
  readonly registry = new Registry();
  readonly #sources: MetricsSource[] = [];
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly httpDuration: Histogram<'route' | 'method' | 'status'>;
  readonly httpInFlight: Gauge;
  readonly eventsAccepted: Counter;
  readonly eventsRejected: Counter<'code'>;
  readonly botsDropped: Counter;
  readonly batchSize: Histogram<'processor'>;
  readonly batchDuration: Histogram<'processor'>;
  readonly deadLetters: Counter<'processor' | 'code'>;
  readonly retries: Counter<'processor' | 'transient'>;
  readonly processedEvents: Counter<'outcome'>;
  readonly ledgerCommands: Counter<'outcome'>;
  #newestReceivedMs = 0;
  readonly #lastAppendedMs = new Map<string, number>();
  #lagRead: { atMs: number; lag: Map<string, number> } | null = null;

  constructor(options: { log: EventLog; lagSources: readonly LagSource[]; now?: () => number; processMetrics?: boolean }) {
    const registers = [this.registry];
    const now = options.now ?? Date.now;
    // Process-wide metrics (CPU, memory, event loop) once per process, not once per thread.
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({ name: 'tally_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'method', 'status'], registers });
    this.httpDuration = new Histogram({
      name: 'tally_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['route', 'method', 'status'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    this.httpInFlight = new Gauge({ name: 'tally_http_in_flight_requests', help: 'HTTP requests being handled', registers });
    this.eventsAccepted = new Counter({ name: 'tally_events_accepted_total', help: 'Events durably appended to the log', registers });
    this.eventsRejected = new Counter({ name: 'tally_events_rejected_total', help: 'Events rejected, by error code', labelNames: ['code'], registers });
    this.botsDropped = new Counter({ name: 'tally_bot_events_dropped_total', help: 'Events from known bots, dropped at collection', registers });
    this.batchSize = new Histogram({ name: 'tally_processor_batch_records', help: 'Records per handled batch', labelNames: ['processor'], registers, buckets: [1, 10, 100, 500, 1000, 2500, 5000] });
    this.batchDuration = new Histogram({ name: 'tally_processor_batch_duration_seconds', help: 'Time to handle and commit a batch', labelNames: ['processor'], registers, buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5] });
    this.deadLetters = new Counter({ name: 'tally_processor_dead_letters_total', help: 'Records sent to a dead-letter topic', labelNames: ['processor', 'code'], registers });
    this.retries = new Counter({ name: 'tally_processor_retries_total', help: 'Batch retries', labelNames: ['processor', 'transient'], registers });
    this.processedEvents = new Counter({ name: 'tally_analytics_events_processed_total', help: 'Events the analytics processor handled, by outcome', labelNames: ['outcome'], registers });
    this.ledgerCommands = new Counter({ name: 'tally_ledger_commands_total', help: 'Transfer commands the ledger processor answered, by outcome', labelNames: ['outcome'], registers });
    const self = this;
    new Gauge({
      name: 'tally_analytics_freshness_seconds', help: 'Now minus the arrival time of the newest processed event', registers,
      // Threads that process nothing report 0; the one that does reports the truth.
      aggregator: 'max',
      collect() {
        this.set(self.#newestReceivedMs === 0 ? 0 : Math.max(0, (now() - self.#newestReceivedMs) / 1000));
      },
    });
    // Every thread reads the same lag from the log: merged by max, not summed. One read of the
    // log serves both gauges of a scrape.
    const lagNow = async (): Promise<Map<string, number>> => {
      const cached = self.#lagRead;
      if (cached && now() - cached.atMs < lagReadReuseMs) return cached.lag;
      const lag = new Map<string, number>();
      for (const source of options.lagSources) lag.set(source.processor, await lagOf(options.log, source).catch(() => Number.NaN));
      self.#lagRead = { atMs: now(), lag };
      return lag;
    };
    new Gauge({
      name: 'tally_processor_lag_records', help: 'Records appended but not yet committed by the group', labelNames: ['processor'], registers,
      aggregator: 'max',
      async collect() {
        for (const [processor, records] of await lagNow()) this.set({ processor }, records);
      },
    });
    new Gauge({
      name: 'tally_processor_lag_seconds', help: 'Age of the last handled record while there is lag; 0 when caught up', labelNames: ['processor'], registers,
      aggregator: 'max',
      async collect() {
        for (const [processor, records] of await lagNow()) {
          const last = self.#lastAppendedMs.get(processor);
          this.set({ processor }, records > 0 && last ? (now() - last) / 1000 : 0);
        }
      },
    });
  }

  /** Adds another thread's metrics to this process's exposition. */
  addSource(source: MetricsSource): void {
    this.#sources.push(source);
  }

  /** The Prometheus text of this thread plus every added source, merged metric by metric. */
  async exposition(): Promise<string> {
    if (this.#sources.length === 0) return this.registry.metrics();
    const parts = await Promise.all([this.registry.getMetricsAsJSON(), ...this.#sources.map((source) => source().catch(() => []))]);
    return AggregatorRegistry.aggregate(parts).metrics();
  }

  batchHandled(processor: string, records: readonly ConsumedRecord[], durationMs: number): void {
    this.batchSize.observe({ processor }, records.length);
    this.batchDuration.observe({ processor }, durationMs / 1000);
    const last = records[records.length - 1];
    if (last) this.#lastAppendedMs.set(processor, last.appendedMs);
  }

  deadLettered(processor: string, letter: DeadLetter): void {
    this.deadLetters.inc({ processor, code: letter.code });
  }

  retried(processor: string, transient: boolean): void {
    this.retries.inc({ processor, transient: String(transient) });
  }

  transfersDecided(counts: LedgerCounts): void {
    for (const [outcome, count] of Object.entries(counts)) {
      if (count > 0) this.ledgerCommands.inc({ outcome }, count);
    }
  }

  processed(events: number, excluded: number, duplicates: number, newestReceivedMs: number): void {
    this.processedEvents.inc({ outcome: 'counted' }, events);
    if (excluded > 0) this.processedEvents.inc({ outcome: 'excluded' }, excluded);
    if (duplicates > 0) this.processedEvents.inc({ outcome: 'duplicate' }, duplicates);
    if (newestReceivedMs > this.#newestReceivedMs) this.#newestReceivedMs = newestReceivedMs;
  }
}

async function lagOf(log: EventLog, source: LagSource): Promise<number> {
  let lag = 0;
  for (const topic of source.topics) {
    const [ends, committed] = await Promise.all([log.endOffsets(topic), log.committedOffsets(source.group, topic)]);
    for (const [partition, end] of ends) lag += Math.max(0, end - (committed.get(partition) ?? 0));
  }
  return lag;
}
