// The distributed deployment of the ledger's invariant tests: a fresh Kafka namespace and Cassandra
// keyspace (`tally migrate`), and the ledger's two halves — the namespaced Kafka log and the
// Cassandra ledger store — opened from TALLY_* settings, as the test process and its ledger
// children (test/support/ledger-child.ts) both need them.
import { CassandraLedgerStore } from '../../src/adapters/cassandra/ledger-store.ts';
import { CassandraSession } from '../../src/adapters/cassandra/session.ts';
import { KafkaEventLog } from '../../src/adapters/kafka/event-log.ts';
import { NamespacedEventLog } from '../../src/adapters/kafka/namespace.ts';
import { cassandraReplication, loadConfig, type Config } from '../../src/config/config.ts';
import type { EventLog } from '../../src/core/ports/event-log.ts';
import type { LedgerStore } from '../../src/core/ports/ledger-store.ts';

/**
 * Settings of the test installation beyond its engines and names. Four command partitions, as on
 * the embedded deployment. A 2 s Kafka session (the test brokers allow 1 s): a SIGKILLed member's
 * partitions move on within seconds, not the 10 s default, so kills cost the run little time.
 */
export const ledgerInstallationSettings = {
  TALLY_PAYMENTS_PARTITIONS: '4',
  TALLY_KAFKA_SESSION_TIMEOUT_MS: '2000',
  TALLY_LOG_LEVEL: 'silent',
} as const;

export function connectSession(config: Config): Promise<CassandraSession> {
  return CassandraSession.connect({
    contactPoints: config.cassandraContactPoints ?? [],
    localDataCenter: config.cassandraDc,
    keyspace: config.cassandraKeyspace,
    replication: cassandraReplication(config),
    consistency: config.cassandraConsistency,
  });
}

/** The installation's log as its processors open it (namespace, session timeout, heartbeat a third of it). */
export function openKafkaLog(config: Config, clientId: string): EventLog {
  return NamespacedEventLog.wrap(KafkaEventLog.connect({
    brokers: [...(config.kafkaBrokers ?? [])],
    clientId,
    replicationFactor: config.kafkaReplicationFactor,
    minInsyncReplicas: config.kafkaMinInsyncReplicas,
    sessionTimeoutMs: config.kafkaSessionTimeoutMs,
    heartbeatIntervalMs: Math.floor(config.kafkaSessionTimeoutMs / 3),
  }), config.kafkaNamespace);
}

export interface DistributedLedger {
  readonly config: Config;
  readonly log: EventLog;
  readonly ledger: LedgerStore;
  close(): Promise<void>;
}

/** The Kafka log and the Cassandra ledger store of the installation the settings name. */
export async function openDistributedLedger(env: Readonly<Record<string, string | undefined>>, clientId = 'tally-ledger-test'): Promise<DistributedLedger> {
  const config = loadConfig(Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined)));
  const session = await connectSession(config);
  let ledger: LedgerStore;
  try {
    ledger = await CassandraLedgerStore.open({ session });
  } catch (error) {
    await session.close();
    throw error;
  }
  const log = openKafkaLog(config, clientId);
  return {
    config, log, ledger,
    async close() {
      await Promise.allSettled([log.close(), ledger.close()]);
      await session.close();
    },
  };
}
