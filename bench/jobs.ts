// Heavy in-process jobs the benchmark runs as child processes (their own heap, optional CPU
// profile): `load` fills a data directory with a 30-day dataset through the collector's own
// parse/validate/enrich code, the SqliteEventLog and the AnalyticsProcessor — the pipeline
// `tally start` runs, minus HTTP; `reprocess` times runReprocess over the dataset's 30 days.
// Each prints its result as one JSON line on stdout.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/config/config.ts';
import { openEmbedded, type Deployment } from '../src/cli/compose.ts';
import { createMerchant } from '../src/admin/merchants.ts';
import { reprocessDependencies } from '../src/admin/routes.ts';
import { AnalyticsProcessor, analyticsGroup, eventsTopic } from '../src/analytics/processor.ts';
import { encodeTrackedEvent } from '../src/analytics/event-codec.ts';
import { runReprocess, startReprocess } from '../src/analytics/reprocess.ts';
import { ProcessorRuntime } from '../src/runtime/processor-runtime.ts';
import { collectItems, createUuidV7Generator, dailySalt, parseEventsBody, utcDayIndex, type CollectLimits } from '../src/core/collect/index.ts';
import type { AppendRecord } from '../src/core/ports/event-log.ts';
import { createEventSource, historyTimestamp, historyWindow } from './data.ts';
import { adminToken, type MerchantKeys } from './server.ts';

export const datasetFile = 'dataset.json';

export interface DatasetInfo {
  readonly keys: MerchantKeys;
  readonly events: number;
  readonly window: { readonly fromMs: number; readonly toMs: number };
  readonly loadSeconds: number;
}

export interface ReprocessResult {
  readonly eventsDone: number;
  readonly seconds: number;
  readonly state: string;
}

/** Appends of this many records share one group commit (the log's groupCommitRecordsMax). */
const appendRecordsMax = 5000;
/** Appends in flight: one being committed while the next is built. */
const appendsInFlightMax = 2;
const caughtUpPollMs = 50;
const progressSteps = 10;
/** The dataset spans 30 days; the collector's default late window (7 days) would refuse most of it. */
const lateWindowDays = '31';

function configFor(dataDir: string): Config {
  return loadConfig({ TALLY_DATA_DIR: dataDir, TALLY_ADMIN_TOKEN: adminToken, TALLY_LOG_LEVEL: 'warn', TALLY_LATE_WINDOW_DAYS: lateWindowDays });
}

async function load(dataDir: string, total: number): Promise<DatasetInfo> {
  const config = configFor(dataDir);
  const logger = pino({ level: 'warn' });
  const embedded = await openEmbedded(config, { logger });
  const { services } = embedded;
  const created = await createMerchant(services.merchants, { name: 'Bench Shop', currency: 'USD' }, Date.now());
  const keys = { merchantId: created.merchant.id, writeKey: created.writeKey, secretKey: created.secretKey };
  const processor = new AnalyticsProcessor({
    events: services.events, rollups: services.rollups, merchants: services.merchants, rules: services.rules, observer: services.metrics,
  });
  const runtime = new ProcessorRuntime({ log: services.log, processor, logger, observer: services.metrics });
  runtime.start();
  const startedMs = performance.now();
  const window = historyWindow(Date.now());
  try {
    await appendHistory(embedded, keys.merchantId, total, window, startedMs);
    await waitCaughtUp(embedded);
  } finally {
    await runtime.stop();
    await embedded.close();
  }
  const info: DatasetInfo = { keys, events: total, window, loadSeconds: (performance.now() - startedMs) / 1000 };
  writeFileSync(join(dataDir, datasetFile), `${JSON.stringify(info)}\n`);
  return info;
}

/** Builds request bodies of requestEventsMax events and runs the collector's steps on each. */
async function appendHistory(embedded: Deployment, merchantId: string, total: number, window: { fromMs: number; toMs: number }, startedMs: number): Promise<void> {
  const { services } = embedded;
  const { config } = services;
  const limits: CollectLimits = {
    requestEventsMax: config.requestEventsMax, eventBytesMax: config.eventBytesMax, futureSkewMs: config.futureSkewMs, lateWindowMs: config.lateWindowMs,
  };
  const newId = createUuidV7Generator(Date.now, (count) => randomBytes(count));
  const next = createEventSource(5);
  const inFlight: Promise<unknown>[] = [];
  let index = 0;
  let reported = 0;
  while (index < total) {
    const records: AppendRecord[] = [];
    while (records.length < appendRecordsMax && index < total) {
      const count = Math.min(limits.requestEventsMax, appendRecordsMax - records.length, total - index);
      const body = JSON.stringify(Array.from({ length: count }, () => next(historyTimestamp(index++, total, window))));
      const nowMs = Date.now();
      const collected = collectItems(parseEventsBody('application/json', body, limits).items, {
        merchantId, nowMs, salt: dailySalt(services.saltSecret, utcDayIndex(nowMs)), geo: services.geo, newId,
        requestIp: '127.0.0.1', requestUserAgent: null,
      }, limits);
      if (collected.rejected.length > 0 || collected.bots > 0) {
        throw new Error(`the collector refused dataset events: ${JSON.stringify(collected.rejected.slice(0, 3))}, ${collected.bots} bots`);
      }
      for (const event of collected.events) records.push({ key: merchantId, value: encodeTrackedEvent(event) });
    }
    inFlight.push(services.log.append(eventsTopic, records));
    if (inFlight.length >= appendsInFlightMax) await inFlight.shift();
    if (index >= ((reported + 1) * total) / progressSteps) {
      reported++;
      const seconds = (performance.now() - startedMs) / 1000;
      process.stderr.write(`  load: ${index} events appended in ${seconds.toFixed(0)} s\n`);
    }
  }
  await Promise.all(inFlight);
}

async function waitCaughtUp(embedded: Deployment): Promise<void> {
  const { log } = embedded.services;
  for (;;) {
    const [ends, committed] = await Promise.all([log.endOffsets(eventsTopic), log.committedOffsets(analyticsGroup, eventsTopic)]);
    if ([...ends].every(([partition, end]) => (committed.get(partition) ?? 0) >= end)) return;
    await new Promise((resolve) => setTimeout(resolve, caughtUpPollMs));
  }
}

async function reprocess(dataDir: string): Promise<ReprocessResult> {
  const info = JSON.parse(readFileSync(join(dataDir, datasetFile), 'utf8')) as DatasetInfo;
  const embedded = await openEmbedded(configFor(dataDir), { logger: pino({ level: 'warn' }) });
  try {
    const deps = reprocessDependencies(embedded.services);
    const job = await startReprocess(deps, { fromMs: info.window.fromMs, toMs: info.window.toMs, merchantId: info.keys.merchantId });
    const startedMs = performance.now();
    const done = await runReprocess(deps, job.id);
    return { eventsDone: done.eventsDone, seconds: (performance.now() - startedMs) / 1000, state: done.state };
  } finally {
    await embedded.close();
  }
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { dir: { type: 'string' }, events: { type: 'string' } } });
  const [command] = positionals;
  if (!values.dir) throw new Error('usage: node bench/jobs.ts load --dir=<dir> --events=<n> | reprocess --dir=<dir>');
  if (command === 'load') {
    const total = Number(values.events);
    if (!Number.isSafeInteger(total) || total < 1) throw new Error('--events must be a positive integer');
    process.stdout.write(`${JSON.stringify(await load(values.dir, total))}\n`);
  } else if (command === 'reprocess') {
    process.stdout.write(`${JSON.stringify(await reprocess(values.dir))}\n`);
  } else {
    throw new Error(`unknown job "${command}"`);
  }
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench job: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
