// The main thread's handle on the processor worker (processor-worker.ts): starts it, restarts it
// if it dies (the log redelivers what it had not committed), merges its metrics into /metrics,
// and stops it gracefully on shutdown.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config/config.ts';
import type { FromWorker, ToWorker } from './processor-worker.ts';

/** Wait before restarting a crashed worker: a crash loop must not spin a core. */
const restartDelayMs = 1000;
/** A metrics scrape does not wait longer than this for the worker. */
const metricsTimeoutMs = 2000;

export interface ProcessorThread {
  metrics(): Promise<MetricObjectWithValues<MetricValue<string>>[]>;
  stop(): Promise<void>;
}

export function startProcessorThread(config: Config, logger: Logger): ProcessorThread {
  let stopping = false;
  let nextId = 0;
  const pending = new Map<number, (metrics: MetricObjectWithValues<MetricValue<string>>[]) => void>();
  let worker = spawn();

  function spawn(): Worker {
    const spawned = new Worker(new URL('./processor-worker.ts', import.meta.url), { workerData: { config } });
    spawned.on('message', (message: FromWorker) => {
      if (message.type === 'metrics') pending.get(message.id)?.(message.metrics as MetricObjectWithValues<MetricValue<string>>[]);
    });
    spawned.on('error', (error) => logger.error({ err: error }, 'processor thread failed'));
    spawned.on('exit', (code) => {
      if (stopping) return;
      logger.error({ code }, `processor thread exited; restarting in ${restartDelayMs} ms`);
      setTimeout(() => {
        if (!stopping) worker = spawn();
      }, restartDelayMs).unref();
    });
    return spawned;
  }

  return {
    metrics() {
      const id = nextId++;
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          resolve([]);
        }, metricsTimeoutMs);
        pending.set(id, (metrics) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(metrics);
        });
        worker.postMessage({ type: 'metrics', id } satisfies ToWorker);
      });
    },
    async stop() {
      stopping = true;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ type: 'stop' } satisfies ToWorker);
      await exited;
    },
  };
}
