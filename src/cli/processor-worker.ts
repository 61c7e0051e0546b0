// Worker-thread entry of the processor role when `tally start` runs every role in one process:
// the processors' synchronous SQLite work gets its own core instead of stalling HTTP requests.
// It opens its own connections to the same files; the main thread asks it for metrics and
// tells it when to stop (drain, commit, close).
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config/config.ts';
import { openDeployment } from './compose.ts';
import { startProcessors } from './processors.ts';

export type ToWorker = { readonly type: 'metrics'; readonly id: number } | { readonly type: 'stop' };
export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'metrics'; readonly id: number; readonly metrics: unknown }
  | { readonly type: 'stopped' };

const port = parentPort;
if (!port) throw new Error('processor-worker.ts runs only as a worker thread');

const { config } = workerData as { config: Config };
const deployment = await openDeployment(config, { processMetrics: false });
const { services } = deployment;
const runtime = await startProcessors(services);
port.postMessage({ type: 'ready' } satisfies FromWorker);

port.on('message', (message: ToWorker) => {
  if (message.type === 'metrics') {
    void services.metrics.registry.getMetricsAsJSON().then((metrics) => port.postMessage({ type: 'metrics', id: message.id, metrics } satisfies FromWorker));
    return;
  }
  void runtime.stop()
    .finally(() => deployment.close())
    .then(() => {
      port.postMessage({ type: 'stopped' } satisfies FromWorker);
      port.close();
    });
});
