// The composition roots: openDeployment picks the embedded default (here) or the distributed
// deployment (compose-distributed.ts); these are the only places that pick adapters. The log
// and the stores live in separate SQLite files, because SQLite has one writer per file and the
// collector's appends must not queue behind the processor's rollup writes.
import { mkdirSync, existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { isDistributed, type Config } from '../config/config.ts';
import type { Services } from '../app/services.ts';
import { currentRules, type AnalyticsRules } from '../core/analytics/rules.ts';
import { openDatabase } from '../adapters/sqlite/database.ts';
import { SqliteEventLog } from '../adapters/sqlite/event-log.ts';
import { SqliteEventStore } from '../adapters/sqlite/event-store.ts';
import { SqliteRollupStore } from '../adapters/sqlite/rollup-store.ts';
import { SqliteMerchantStore } from '../adapters/sqlite/merchant-store.ts';
import { SqliteLedgerStore } from '../adapters/sqlite/ledger-store.ts';
import { openGeoLookup } from '../adapters/maxmind/geo-lookup.ts';
import { MemoryCache } from '../adapters/memory/cache.ts';
import { limits } from '../core/limits.ts';
import { TallyMetrics } from '../http/metrics.ts';
import type { PrunableLog } from '../runtime/log-retention.ts';
import { hashKey } from '../http/auth.ts';
import { analyticsGroup, eventsTopic } from '../analytics/processor.ts';
import { ledgerGroup, transferFailedTopic, transferRequestedTopic, transferSucceededTopic } from '../payments/codec.ts';
import { pingPartitions, pingResponder } from '../ping/responder.ts';
import { ensureRequestReplyTopics } from '../runtime/request-reply.ts';
import type { LagSource } from '../http/metrics.ts';

/** What a composition root hands the roles, whichever deployment it opened. */
export interface Deployment {
  readonly services: Services;
  /** True when this start found an empty data directory (first start). */
  readonly firstStart: boolean;
  /** The admin token generated on a first start without TALLY_ADMIN_TOKEN: print it once. */
  readonly generatedAdminToken: string | null;
  /** The embedded log, for retention (not part of the EventLog port: Kafka has its own); null on Kafka. */
  readonly prunableLog: PrunableLog | null;
  close(): Promise<void>;
}

const files = {
  log: 'log.db',
  store: 'store.db',
  saltSecret: 'visitor-salt.key',
  adminTokenHash: 'admin-token.sha256',
} as const;

export function createLogger(config: Config): Logger {
  return pino({ level: config.logLevel, base: { pid: process.pid } });
}

export interface DeploymentOptions {
  readonly logger?: Logger;
  readonly rules?: AnalyticsRules;
  readonly now?: () => number;
  /** On a first start without TALLY_ADMIN_TOKEN, generate one (tally start does). */
  readonly generateAdminToken?: boolean;
  /** False in a worker thread: process-wide metrics are collected once, by the main thread. */
  readonly processMetrics?: boolean;
}

/** The deployment the configuration names: distributed when engines are configured, else embedded. */
export async function openDeployment(config: Config, options: DeploymentOptions = {}): Promise<Deployment> {
  if (!isDistributed(config)) return openEmbedded(config, options);
  // Loaded only when used: the embedded default never loads the engines' client libraries.
  const { openDistributed } = await import('./compose-distributed.ts');
  return openDistributed(config, options);
}

export async function openEmbedded(config: Config, options: DeploymentOptions = {}): Promise<Deployment> {
  const logger = options.logger ?? createLogger(config);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const firstStart = readdirSync(config.dataDir).length === 0;
  const generated = firstStart && !config.adminToken && options.generateAdminToken ? generateAdminToken(config.dataDir) : null;
  const rules = options.rules ?? currentRules;
  const log = SqliteEventLog.open({ path: join(config.dataDir, files.log) });
  await log.ensureTopic(eventsTopic, config.eventsPartitions);
  await ensureRequestReplyTopics(log, paymentsTopics, config.paymentsPartitions);
  await ensureRequestReplyTopics(log, pingResponder.topics, pingPartitions);
  const storeDb = openDatabase(join(config.dataDir, files.store));
  const events = SqliteEventStore.create({ db: storeDb });
  const rollups = SqliteRollupStore.create({ db: storeDb, logicVersion: rules.logicVersion });
  const merchants = SqliteMerchantStore.create({ db: storeDb });
  const ledger = SqliteLedgerStore.create({ db: storeDb });
  const metrics = new TallyMetrics({ log, lagSources: processorLagSources(), processMetrics: options.processMetrics ?? true });
  const services: Services = {
    config, logger, log, events, rollups, merchants, ledger, rules, metrics,
    geo: openGeoLookup(config.geoipDatabase),
    queryCache: config.queryCacheMb === 0 ? null : new MemoryCache({ entriesMax: limits.queryCacheEntriesMax, bytesMax: config.queryCacheMb * 1024 * 1024 }),
    saltSecret: readOrCreateSecret(join(config.dataDir, files.saltSecret)),
    adminTokenHash: config.adminToken ? hashKey(config.adminToken) : (generated?.hash ?? readAdminTokenHash(config.dataDir)),
    now: options.now ?? Date.now,
  };
  return {
    services,
    firstStart,
    generatedAdminToken: generated?.token ?? null,
    prunableLog: log,
    async close() {
      await log.close();
      await Promise.allSettled([events.close(), rollups.close(), merchants.close(), ledger.close()]);
      storeDb.close();
    },
  };
}

/** The payments job's topics, named by the request/reply convention (docs/request-reply.md). */
export const paymentsTopics = { requested: transferRequestedTopic, succeeded: transferSucceededTopic, failed: transferFailedTopic } as const;

/** The consumer groups whose lag /metrics reports. */
export function processorLagSources(): LagSource[] {
  return [
    { processor: 'analytics', group: analyticsGroup, topics: [eventsTopic] },
    { processor: 'ping responder', group: pingResponder.group, topics: [pingResponder.topics.requested] },
    { processor: 'ledger', group: ledgerGroup, topics: [transferRequestedTopic] },
  ];
}

/** A 32-byte server secret, created once with owner-only permissions. */
function readOrCreateSecret(path: string): Uint8Array {
  if (existsSync(path)) return readFileSync(path);
  const secret = randomBytes(32);
  writeFileSync(path, secret, { mode: 0o600, flag: 'wx' });
  return secret;
}

function readAdminTokenHash(dataDir: string): string | null {
  const path = join(dataDir, files.adminTokenHash);
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : null;
}

/** Generates an admin token, keeps only its hash in the data directory, returns the token once. */
export function generateAdminToken(dataDir: string): { token: string; hash: string } {
  const token = `tadm_${randomBytes(24).toString('base64url')}`;
  const hash = hashKey(token);
  writeFileSync(join(dataDir, files.adminTokenHash), `${hash}\n`, { mode: 0o600 });
  return { token, hash };
}
