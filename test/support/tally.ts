// A whole Tally in the test process: real SQLite files in a temp directory (or, distributed, the real
// engines in a fresh namespace), the HTTP app (app.inject, no port), and the analytics processor
// running in the background.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { openDeployment, type Deployment } from '../../src/cli/compose.ts';
import { CassandraSession } from '../../src/adapters/cassandra/session.ts';
import { engineAddresses, uniqueName } from './engines.ts';
import { buildApp } from '../../src/http/app.ts';
import { ProcessorRuntime } from '../../src/runtime/processor-runtime.ts';
import { AnalyticsProcessor, analyticsGroup, eventsTopic } from '../../src/analytics/processor.ts';
import { LedgerProcessor } from '../../src/payments/processor.ts';
import type { AnalyticsRules } from '../../src/core/analytics/rules.ts';

export const adminToken = 'test-admin-token-0123456789abcdef';

export interface TestTally {
  readonly app: FastifyInstance;
  readonly embedded: Deployment;
  readonly dataDir: string;
  /** Starts the processor (not running at first, so tests can control when events are processed). */
  startProcessor(): void;
  stopProcessor(): Promise<void>;
  /** Starts the ledger processor (payments), likewise not running at first. */
  startLedgerProcessor(): void;
  stopLedgerProcessor(): Promise<void>;
  waitCaughtUp(timeoutMs?: number): Promise<void>;
  createMerchant(name: string, currency?: string): Promise<{ id: string; writeKey: string; secretKey: string }>;
  close(): Promise<void>;
}

export type TestDeployment = 'embedded' | 'distributed';

export interface TestTallyOptions {
  readonly env?: Record<string, string>;
  readonly rules?: AnalyticsRules;
  readonly now?: () => number;
  readonly dataDir?: string;
  /** 'distributed': the real Kafka, Cassandra and Redis (test/support/engines.ts), in a fresh namespace and keyspace. */
  readonly deployment?: TestDeployment;
}

/**
 * Settings of a fresh distributed installation on the test engines: its own Kafka namespace and
 * Cassandra keyspace, so parallel test files never share topics, groups or tables.
 */
export function distributedTestEnv(): Record<string, string> {
  const engines = engineAddresses();
  const name = uniqueName('t');
  return {
    TALLY_KAFKA_BROKERS: engines.kafkaBrokers.join(','),
    TALLY_KAFKA_NAMESPACE: name,
    TALLY_KAFKA_REPLICATION_FACTOR: '1',
    TALLY_KAFKA_MIN_INSYNC_REPLICAS: '1',
    TALLY_CASSANDRA_CONTACT_POINTS: engines.cassandraContactPoints.join(','),
    TALLY_CASSANDRA_DC: engines.cassandraDc,
    TALLY_CASSANDRA_KEYSPACE: name,
    TALLY_CASSANDRA_REPLICATION: '1',
    TALLY_REDIS_URL: engines.redisUrl,
  };
}

/** Drops a test installation's keyspace (its topics are left to the test engines' fresh start). */
export async function dropTestKeyspace(config: Config): Promise<void> {
  const session = await CassandraSession.connect({
    contactPoints: config.cassandraContactPoints ?? [], localDataCenter: config.cassandraDc, keyspace: config.cassandraKeyspace, replication: { [config.cassandraDc]: 1 },
  });
  try {
    await session.dropKeyspace();
  } finally {
    await session.close();
  }
}

export async function startTestTally(options: TestTallyOptions = {}): Promise<TestTally> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tally-test-'));
  const distributed = options.deployment === 'distributed';
  const config = loadConfig({
    TALLY_DATA_DIR: dataDir, TALLY_ADMIN_TOKEN: adminToken, TALLY_LOG_LEVEL: 'silent', TALLY_EVENTS_PARTITIONS: '4',
    ...(distributed ? distributedTestEnv() : {}), ...options.env,
  });
  if (distributed) {
    const { migrateDistributed } = await import('../../src/cli/compose-distributed.ts');
    await migrateDistributed(config);
  }
  const embedded = await openDeployment(config, { logger: pino({ level: 'silent' }), ...(options.rules ? { rules: options.rules } : {}), ...(options.now ? { now: options.now } : {}) });
  const { services } = embedded;
  const app = await buildApp({ services, roles: ['collector', 'processor', 'query'] });
  let runtime: ProcessorRuntime | null = null;
  let ledgerRuntime: ProcessorRuntime | null = null;
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
    startLedgerProcessor() {
      if (!services.ledger) throw new Error('this deployment has no ledger store');
      if (ledgerRuntime) throw new Error('the ledger processor is already running');
      const processor = new LedgerProcessor({ ledger: services.ledger, log: services.log, observer: services.metrics, now: services.now });
      ledgerRuntime = new ProcessorRuntime({ log: services.log, processor, logger: services.logger, pollWaitMs: 20, pollLingerMs: 0, observer: services.metrics });
      ledgerRuntime.start();
    },
    async stopLedgerProcessor() {
      await ledgerRuntime?.stop();
      ledgerRuntime = null;
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
      await ledgerRuntime?.stop();
      await app.close();
      await embedded.close();
      if (distributed) await dropTestKeyspace(config);
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return tally;
}
