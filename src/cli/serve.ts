// Runs one or more roles in this process until SIGTERM/SIGINT, then shuts down gracefully:
// stop accepting requests and finish those in flight, let the processor finish and commit its
// batch, flush pending log appends, close the stores.
import type { FastifyInstance } from 'fastify';
import { isDistributed, type Config } from '../config/config.ts';
import type { Role, Services } from '../app/services.ts';
import { buildApp } from '../http/app.ts';
import { resumeReprocessJobs } from '../admin/routes.ts';
import { createMerchant } from '../admin/merchants.ts';
import { openDeployment } from './compose.ts';
import { startProcessorThread } from './processor-thread.ts';
import { startProcessors } from './processors.ts';
import { startLogRetention } from '../runtime/log-retention.ts';
import { limits } from '../core/limits.ts';

const listenBacklog = 4096;

export interface ServeOptions {
  /** `tally start` on an empty data directory creates a demo merchant and prints how to use it. */
  readonly firstStartDemo: boolean;
}

export async function runRoles(config: Config, roles: readonly Role[], options: ServeOptions): Promise<number> {
  const deployment = await openDeployment(config, { generateAdminToken: options.firstStartDemo });
  const { services } = deployment;
  const logger = services.logger;
  const app = await buildApp({ services, roles });
  let runtime: { stop(): Promise<void> } | null = null;
  if (roles.includes('processor')) {
    if (roles.length > 1) {
      // Sharing the process with HTTP roles: the processor gets a thread (a core) of its own.
      const thread = startProcessorThread(config, logger);
      services.metrics.addSource(() => thread.metrics());
      runtime = thread;
    } else {
      runtime = await startProcessors(services);
    }
    await resumeReprocessJobs(services);
  }
  // Bursts of new connections (1,000 users at once) overflow Node's default backlog of 511 and
  // cost the dropped ones a 1 s SYN retry.
  // The process that appends also prunes (several collectors pruning at once is safe).
  const retention = roles.includes('collector') && deployment.prunableLog
    ? startLogRetention(deployment.prunableLog, { retentionMs: config.logRetentionMs, intervalMs: limits.logRetentionIntervalMs, logger })
    : null;
  const address = await app.listen({ host: config.host, port: config.port, backlog: listenBacklog });
  const storage = isDistributed(config)
    ? { kafka: config.kafkaBrokers, cassandra: config.cassandraContactPoints, keyspace: config.cassandraKeyspace }
    : { dataDir: config.dataDir };
  logger.info({ address, roles, ...storage }, 'tally is running');
  if (options.firstStartDemo && deployment.firstStart) {
    await printFirstStart(deployment.generatedAdminToken, address, services);
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: draining');
      const results = await Promise.allSettled([closeHttp(app), runtime?.stop()]);
      await deployment.close();
      const failed = results.filter((result) => result.status === 'rejected');
      for (const failure of failed) logger.error({ err: (failure as PromiseRejectedResult).reason }, 'shutdown step failed');
      logger.info('stopped');
      resolve(failed.length === 0 ? 0 : 1);
    };
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
  });
}

/** How often a closing server ends keep-alive sockets that went idle after the close began. */
const idleSweepIntervalMs = 50;

/**
 * Closes the HTTP server, finishing requests in flight. Node ends idle keep-alive sockets only
 * when the close begins; a socket whose request was still in flight goes idle afterwards and
 * would hold the close open until the keep-alive timeout (65 s), so idle sockets are swept until done.
 */
async function closeHttp(app: FastifyInstance): Promise<void> {
  const sweep = setInterval(() => app.server.closeIdleConnections(), idleSweepIntervalMs);
  try {
    await app.close();
  } finally {
    clearInterval(sweep);
  }
}

async function printFirstStart(adminToken: string | null, address: string, services: Services): Promise<void> {
  const demo = await createMerchant(services.merchants, { name: 'demo', currency: 'USD' }, services.now());
  const lines = [
    '',
    'Tally is running on the deployment default. First start: a merchant "demo" was created.',
    '',
    adminToken ? `  admin token   ${adminToken}   (shown once; set TALLY_ADMIN_TOKEN to choose your own)` : '  admin token   from TALLY_ADMIN_TOKEN',
    `  merchant id   ${demo.merchant.id}`,
    `  write key     ${demo.writeKey}   (ingest only; may sit in a web page)`,
    `  secret key    ${demo.secretKey}   (queries; keep it server-side)`,
    '',
    'Send a first event:',
    `  curl -s ${address}/v1/events -H 'Authorization: Bearer ${demo.writeKey}' -H 'Content-Type: application/json' \\`,
    `    -d '{"type":"pageview","context":{"page":{"url":"https://shop.example/pricing"}}}'`,
    '',
    'Query it (a second or two later):',
    `  curl -s ${address}/v1/query -H 'Authorization: Bearer ${demo.secretKey}' -H 'Content-Type: application/json' \\`,
    `    -d '{"metrics":["events","users"],"date_range":"today","dimensions":["event:path"]}'`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
