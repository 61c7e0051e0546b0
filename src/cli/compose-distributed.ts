// The composition root of the distributed deployment: Kafka for the log, Cassandra for the stores,
// Redis for the shared query cache. Every role of every process opens the same way; `tally migrate`
// (migrateDistributed) creates the topics, the keyspace, the schema and the installation's secrets
// first, and a role refuses to start on a schema it does not know.
import type { Logger } from 'pino';
import { cassandraReplication, type Config } from '../config/config.ts';
import type { Services } from '../app/services.ts';
import { currentRules } from '../core/analytics/rules.ts';
import { CassandraSession, type SchemaComponent } from '../adapters/cassandra/session.ts';
import { ensureVisitorSaltSecret, installationSchema, readVisitorSaltSecret } from '../adapters/cassandra/installation.ts';
import { CassandraEventStore, eventStoreSchema } from '../adapters/cassandra/event-store.ts';
import { CassandraMerchantStore, merchantStoreSchema } from '../adapters/cassandra/merchant-store.ts';
import { CassandraRollupStore, rollupStoreSchema } from '../adapters/cassandra/rollup-store.ts';
import { CassandraLedgerStore, ledgerStoreSchema } from '../adapters/cassandra/ledger-store.ts';
import { KafkaEventLog } from '../adapters/kafka/event-log.ts';
import { NamespacedEventLog } from '../adapters/kafka/namespace.ts';
import type { EventLog } from '../core/ports/event-log.ts';
import { RedisCache } from '../adapters/redis/cache.ts';
import { MemoryCache } from '../adapters/memory/cache.ts';
import { openGeoLookup } from '../adapters/maxmind/geo-lookup.ts';
import { limits } from '../core/limits.ts';
import { TallyMetrics } from '../http/metrics.ts';
import { hashKey } from '../http/auth.ts';
import { eventsTopic } from '../analytics/processor.ts';
import { deadLetterTopic } from '../runtime/processor-runtime.ts';
import type { RequestReplyTopics } from '../runtime/request-reply.ts';
import type { Deployment, DeploymentOptions } from './compose.ts';
import { createLogger, paymentsTopics, processorLagSources } from './compose.ts';
import { pingPartitions, pingResponder } from '../ping/responder.ts';

/** Every schema component, in the order `tally migrate` applies them. */
export const cassandraSchemas: readonly SchemaComponent[] = [installationSchema, merchantStoreSchema, eventStoreSchema, rollupStoreSchema, ledgerStoreSchema];

/** Partitions of a dead-letter topic: poison records are rare and need no parallelism. */
const deadLetterPartitions = 1;

function sessionOptions(config: Config) {
  return {
    contactPoints: config.cassandraContactPoints ?? [],
    localDataCenter: config.cassandraDc,
    keyspace: config.cassandraKeyspace,
    replication: cassandraReplication(config),
    consistency: config.cassandraConsistency,
    ...(config.cassandraUsername ? { username: config.cassandraUsername, password: config.cassandraPassword ?? '' } : {}),
  };
}

function openLog(config: Config): EventLog {
  return NamespacedEventLog.wrap(KafkaEventLog.connect({
    brokers: [...(config.kafkaBrokers ?? [])],
    clientId: config.kafkaClientId,
    replicationFactor: config.kafkaReplicationFactor,
    minInsyncReplicas: config.kafkaMinInsyncReplicas,
    sessionTimeoutMs: config.kafkaSessionTimeoutMs,
    // Kafka's rule of thumb: a third of the session, so two heartbeats may be lost before eviction.
    heartbeatIntervalMs: Math.floor(config.kafkaSessionTimeoutMs / 3),
  }), config.kafkaNamespace);
}

export interface MigrationReport {
  readonly topics: readonly { name: string; partitions: number }[];
  readonly schemas: readonly { component: string; from: number; to: number }[];
}

/** `tally migrate`: idempotent, safe to run from several places at once, and on every upgrade. */
export async function migrateDistributed(config: Config): Promise<MigrationReport> {
  const log = openLog(config);
  const session = await CassandraSession.connect(sessionOptions(config));
  try {
    const topics = [
      { name: eventsTopic, partitions: config.eventsPartitions },
      { name: deadLetterTopic(eventsTopic), partitions: deadLetterPartitions },
      ...requestReplyTopicList(paymentsTopics, config.paymentsPartitions),
      ...requestReplyTopicList(pingResponder.topics, pingPartitions),
    ];
    for (const topic of topics) await log.ensureTopic(topic.name, topic.partitions);
    await session.createKeyspace();
    const schemas = [];
    for (const schema of cassandraSchemas) {
      const [from, to] = await session.migrate(schema);
      schemas.push({ component: schema.component, from, to });
    }
    await ensureVisitorSaltSecret(session);
    return { topics, schemas };
  } finally {
    await Promise.allSettled([log.close(), session.close()]);
  }
}

function requestReplyTopicList(topics: RequestReplyTopics, partitions: number): { name: string; partitions: number }[] {
  return [
    { name: topics.requested, partitions },
    { name: topics.succeeded, partitions },
    { name: topics.failed, partitions },
    { name: deadLetterTopic(topics.requested), partitions: deadLetterPartitions },
  ];
}

export async function openDistributed(config: Config, options: DeploymentOptions = {}): Promise<Deployment> {
  const logger: Logger = options.logger ?? createLogger(config);
  const rules = options.rules ?? currentRules;
  const session = await CassandraSession.connect(sessionOptions(config));
  const opened: { close(): Promise<void> }[] = [session];
  try {
    for (const schema of cassandraSchemas) await session.assertSchema(schema);
    const log = openLog(config);
    opened.unshift(log);
    // The topic must exist with its fixed partition count (created by `tally migrate`).
    await log.ensureTopic(eventsTopic, config.eventsPartitions);
    const events = await CassandraEventStore.open({ session });
    const rollups = await CassandraRollupStore.open({ session, logicVersion: rules.logicVersion });
    const merchants = await CassandraMerchantStore.open({ session });
    const ledger = await CassandraLedgerStore.open({ session });
    const queryCache = config.queryCacheMb === 0
      ? null
      : config.redisUrl
        ? await RedisCache.open({ url: config.redisUrl, logger })
        : new MemoryCache({ entriesMax: limits.queryCacheEntriesMax, bytesMax: config.queryCacheMb * 1024 * 1024 });
    if (queryCache) opened.unshift(queryCache);
    const metrics = new TallyMetrics({ log, lagSources: processorLagSources(), processMetrics: options.processMetrics ?? true });
    const services: Services = {
      config, logger, log, events, rollups, merchants, ledger, rules, metrics, queryCache,
      geo: openGeoLookup(config.geoipDatabase),
      saltSecret: await readVisitorSaltSecret(session),
      adminTokenHash: config.adminToken ? hashKey(config.adminToken) : null,
      now: options.now ?? Date.now,
    };
    return {
      services,
      firstStart: false,
      generatedAdminToken: null,
      prunableLog: null,
      async close() {
        await Promise.allSettled([events.close(), rollups.close(), merchants.close(), ledger.close()]);
        for (const item of opened) await item.close().catch(() => {});
      },
    };
  } catch (error) {
    for (const item of opened) await item.close().catch(() => {});
    throw error;
  }
}
