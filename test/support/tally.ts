// A whole embedded Tally in the test process: real SQLite files in a temp directory, the HTTP app
// (app.inject, no port), and the analytics processor running in the background.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { openEmbedded, type Embedded } from '../../src/cli/compose.ts';
import { buildApp } from '../../src/http/app.ts';
import { ProcessorRuntime } from '../../src/runtime/processor-runtime.ts';
import { AnalyticsProcessor, analyticsGroup, eventsTopic } from '../../src/analytics/processor.ts';
import type { AnalyticsRules } from '../../src/core/analytics/rules.ts';

export const adminToken = 'test-admin-token-0123456789abcdef';

export interface TestTally {
  readonly app: FastifyInstance;
  readonly embedded: Embedded;
  readonly dataDir: string;
  /** Starts the processor (not running at first, so tests can control when events are processed). */
  startProcessor(): void;
  stopProcessor(): Promise<void>;
  waitCaughtUp(timeoutMs?: number): Promise<void>;
  createMerchant(name: string, currency?: string): Promise<{ id: string; writeKey: string; secretKey: string }>;
  close(): Promise<void>;
}

export async function startTestTally(options: { env?: Record<string, string>; rules?: AnalyticsRules; now?: () => number; dataDir?: string } = {}): Promise<TestTally> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tally-test-'));
  const config = loadConfig({ TALLY_DATA_DIR: dataDir, TALLY_ADMIN_TOKEN: adminToken, TALLY_LOG_LEVEL: 'silent', TALLY_EVENTS_PARTITIONS: '4', ...options.env });
  const embedded = await openEmbedded(config, { logger: pino({ level: 'silent' }), ...(options.rules ? { rules: options.rules } : {}), ...(options.now ? { now: options.now } : {}) });
  const { services } = embedded;
  const app = await buildApp({ services, roles: ['collector', 'processor', 'query'] });
  let runtime: ProcessorRuntime | null = null;
  const tally: TestTally = {
    app, embedded, dataDir,
    startProcessor() {
      const processor = new AnalyticsProcessor({ events: services.events, rollups: services.rollups, merchants: services.merchants, rules: services.rules, observer: services.metrics });
      runtime = new ProcessorRuntime({ log: services.log, processor, logger: services.logger, pollWaitMs: 20, observer: services.metrics });
      runtime.start();
    },
    async stopProcessor() {
      await runtime?.stop();
      runtime = null;
    },
    async waitCaughtUp(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [ends, committed] = await Promise.all([services.log.endOffsets(eventsTopic), services.log.committedOffsets(analyticsGroup, eventsTopic)]);
        if ([...ends].every(([partition, end]) => (committed.get(partition) ?? 0) >= end)) return;
        if (Date.now() > deadline) throw new Error('the processor did not catch up in time');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async createMerchant(name, currency = 'USD') {
      const response = await app.inject({ method: 'POST', url: '/v1/admin/merchants', headers: { authorization: `Bearer ${adminToken}` }, payload: { name, currency } });
      if (response.statusCode !== 201) throw new Error(`merchant creation failed: ${response.body}`);
      const body = response.json() as { id: string; write_key: string; secret_key: string };
      return { id: body.id, writeKey: body.write_key, secretKey: body.secret_key };
    },
    async close() {
      await runtime?.stop();
      await app.close();
      await embedded.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return tally;
}
