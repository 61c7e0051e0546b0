// The only reader of process.env. Configuration comes from defaults, then an optional JSON file
// (TALLY_CONFIG), then environment variables; it is validated once at start, with a message that
// names the bad setting, and frozen. Everything else receives a Config.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { limits, time } from '../core/limits.ts';

/**
 * Cassandra consistency levels Tally accepts for reads and writes: quorums only. The stores read
 * what they wrote a moment before (dedup, applied offsets), which ONE/LOCAL_ONE do not guarantee
 * with replication above 1: a resent event could count twice.
 */
export type ConsistencyName = 'QUORUM' | 'LOCAL_QUORUM' | 'EACH_QUORUM' | 'ALL';
export const consistencyNames: readonly ConsistencyName[] = ['QUORUM', 'LOCAL_QUORUM', 'EACH_QUORUM', 'ALL'];

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly adminToken: string | null;
  readonly logLevel: LogLevel;
  readonly bodyBytesMax: number;
  readonly requestEventsMax: number;
  readonly eventBytesMax: number;
  readonly lateWindowMs: number;
  readonly futureSkewMs: number;
  /** Requests per second per key (token bucket refill); burst is twice this. */
  readonly rateLimitPerSecond: number;
  readonly geoipDatabase: string | null;
  /** Use X-Forwarded-For for the client IP (only behind a proxy you run). */
  readonly trustProxy: boolean;
  /** Partitions of the events topic, fixed when the topic is created. */
  readonly eventsPartitions: number;
  /** Partitions of the payments command and outcome topics, fixed when they are created. */
  readonly paymentsPartitions: number;
  readonly queryScanEventsMax: number;
  /** Memory for cached query results (MiB); 0 turns the cache off. */
  readonly queryCacheMb: number;
  /** How long processed records stay in the embedded log (they are already in the stores). */
  readonly logRetentionMs: number;
  /** Distributed deployment: Kafka brokers (host:port). Null: the embedded default. */
  readonly kafkaBrokers: readonly string[] | null;
  readonly kafkaClientId: string;
  /** Prefix of every topic and consumer group ('' none): installations sharing a cluster stay apart. */
  readonly kafkaNamespace: string;
  /** Replicas of each topic `tally migrate` creates, and how many must have a write before it counts. */
  readonly kafkaReplicationFactor: number;
  readonly kafkaMinInsyncReplicas: number;
  /** A processor silent this long loses its partitions to the others (takeover time after a crash). */
  readonly kafkaSessionTimeoutMs: number;
  /** Distributed deployment: Cassandra contact points (host:port). */
  readonly cassandraContactPoints: readonly string[] | null;
  readonly cassandraDc: string;
  readonly cassandraKeyspace: string;
  /** Replication factor per data center for the keyspace `tally migrate` creates. */
  readonly cassandraReplication: Readonly<Record<string, number>> | null;
  readonly cassandraConsistency: ConsistencyName;
  readonly cassandraUsername: string | null;
  readonly cassandraPassword: string | null;
  /** Query-result cache shared by query instances; null: an in-process LRU. */
  readonly redisUrl: string | null;
}

interface Setting {
  readonly env: string;
  readonly key: keyof Config;
  readonly parse: (raw: string) => Config[keyof Config];
  readonly description: string;
}

const defaults: Config = Object.freeze({
  dataDir: './data',
  host: '127.0.0.1',
  port: 8080,
  adminToken: null,
  logLevel: 'info',
  bodyBytesMax: limits.bodyBytesMax,
  requestEventsMax: limits.requestEventsMax,
  eventBytesMax: limits.eventBytesMax,
  lateWindowMs: limits.lateWindowMs,
  futureSkewMs: limits.futureSkewMs,
  rateLimitPerSecond: 5000,
  geoipDatabase: null,
  trustProxy: false,
  eventsPartitions: 8,
  paymentsPartitions: 8,
  queryScanEventsMax: limits.queryScanEventsMax,
  queryCacheMb: 64,
  logRetentionMs: 24 * time.hourMs,
  kafkaBrokers: null,
  kafkaClientId: 'tally',
  kafkaNamespace: '',
  kafkaReplicationFactor: 3,
  kafkaMinInsyncReplicas: 2,
  kafkaSessionTimeoutMs: 10_000,
  cassandraContactPoints: null,
  cassandraDc: 'datacenter1',
  cassandraKeyspace: 'tally',
  cassandraReplication: null,
  cassandraConsistency: 'LOCAL_QUORUM',
  cassandraUsername: null,
  cassandraPassword: null,
  redisUrl: null,
});

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const integer = (min: number, max: number) => (raw: string): number => {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new ConfigError(`must be an integer from ${min} to ${max}`);
  return value;
};
const text = (raw: string): string => {
  if (raw.trim() === '') throw new ConfigError('must not be empty');
  return raw;
};
const boolean = (raw: string): boolean => {
  if (/^(1|true|yes)$/i.test(raw)) return true;
  if (/^(0|false|no)$/i.test(raw)) return false;
  throw new ConfigError('must be true or false');
};
const logLevels: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const logLevel = (raw: string): LogLevel => {
  if (!(logLevels as readonly string[]).includes(raw)) throw new ConfigError(`must be one of ${logLevels.join(', ')}`);
  return raw as LogLevel;
};
const adminToken = (raw: string): string => {
  if (raw.length < 24) throw new ConfigError('must be at least 24 characters (it guards every merchant)');
  return raw;
};
const hostPorts = (defaultPort: number) => (raw: string): string[] => {
  const items = raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (items.length === 0) throw new ConfigError('must list at least one host:port');
  return items.map((item) => {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(item);
    if (!match || Number(match[2] ?? defaultPort) > 65535) throw new ConfigError(`"${item}" is not host or host:port`);
    return `${match[1]}:${match[2] ?? defaultPort}`;
  });
};
/** Kafka's legal topic characters; the rest of the name is Tally's. */
const kafkaName = (raw: string): string => {
  if (raw.length > limits.kafkaNamespaceCharsMax || !/^[a-zA-Z0-9._-]+$/.test(raw)) {
    throw new ConfigError(`must be 1 to ${limits.kafkaNamespaceCharsMax} of a-z A-Z 0-9 . _ -`);
  }
  return raw;
};
/** "3" (the local data center) or "dc1:3,dc2:3". */
const replication = (raw: string): Record<string, number> => {
  const entries = raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
  const result: Record<string, number> = {};
  for (const entry of entries) {
    const [dc, factor] = entry.includes(':') ? entry.split(':') : ['', entry];
    const count = integer(1, 15)(factor!.trim());
    result[dc!.trim()] = count;
  }
  if (entries.length === 0) throw new ConfigError('must be a factor ("3") or data center factors ("dc1:3,dc2:3")');
  return result;
};
const consistency = (raw: string): ConsistencyName => {
  const upper = raw.toUpperCase();
  if (!(consistencyNames as readonly string[]).includes(upper)) throw new ConfigError(`must be one of ${consistencyNames.join(', ')}`);
  return upper as ConsistencyName;
};
const redisUrl = (raw: string): string => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('must be a redis:// or rediss:// URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError('must be a redis:// or rediss:// URL');
  return raw;
};
const days = (raw: string): number => integer(1, 366)(raw) * time.dayMs;
const minutes = (raw: string): number => integer(0, 24 * 60)(raw) * time.minuteMs;

export const settings: readonly Setting[] = [
  { env: 'TALLY_DATA_DIR', key: 'dataDir', parse: text, description: 'Directory of the embedded SQLite files.' },
  { env: 'TALLY_HOST', key: 'host', parse: text, description: 'Address the HTTP server binds.' },
  { env: 'TALLY_PORT', key: 'port', parse: integer(0, 65535), description: 'HTTP port (0 picks a free one).' },
  { env: 'TALLY_ADMIN_TOKEN', key: 'adminToken', parse: adminToken, description: 'Bearer token of the admin API (≥ 24 chars). Generated on first start when unset.' },
  { env: 'TALLY_LOG_LEVEL', key: 'logLevel', parse: logLevel, description: 'pino log level.' },
  { env: 'TALLY_BODY_BYTES_MAX', key: 'bodyBytesMax', parse: integer(1024, 64 * 1024 * 1024), description: 'Largest request body (bytes).' },
  { env: 'TALLY_REQUEST_EVENTS_MAX', key: 'requestEventsMax', parse: integer(1, 100_000), description: 'Most events in one request.' },
  { env: 'TALLY_EVENT_BYTES_MAX', key: 'eventBytesMax', parse: integer(256, 1024 * 1024), description: 'Largest single event (bytes of JSON).' },
  { env: 'TALLY_LATE_WINDOW_DAYS', key: 'lateWindowMs', parse: days, description: 'How old an event may be and still be accepted (days).' },
  { env: 'TALLY_FUTURE_SKEW_MINUTES', key: 'futureSkewMs', parse: minutes, description: 'How far ahead of the server clock a timestamp may be (minutes).' },
  { env: 'TALLY_RATE_LIMIT_PER_SECOND', key: 'rateLimitPerSecond', parse: integer(1, 10_000_000), description: 'Requests per second per key; bursts up to twice that.' },
  { env: 'TALLY_GEOIP_DB', key: 'geoipDatabase', parse: text, description: 'Path of a MaxMind/DB-IP country .mmdb file; unset: no country lookup.' },
  { env: 'TALLY_TRUST_PROXY', key: 'trustProxy', parse: boolean, description: 'Take the client IP from X-Forwarded-For (only behind your own proxy).' },
  { env: 'TALLY_EVENTS_PARTITIONS', key: 'eventsPartitions', parse: integer(1, 1024), description: 'Partitions of the events topic, fixed at creation.' },
  { env: 'TALLY_PAYMENTS_PARTITIONS', key: 'paymentsPartitions', parse: integer(1, limits.topicPartitionsMax), description: 'Partitions of the payments topics (transfer commands keyed by debited account), fixed at creation.' },
  { env: 'TALLY_LOG_RETENTION_HOURS', key: 'logRetentionMs', parse: (raw: string): number => integer(1, 24 * 366)(raw) * time.hourMs, description: 'Hours processed records stay in the embedded log before they are pruned.' },
  { env: 'TALLY_QUERY_CACHE_MB', key: 'queryCacheMb', parse: integer(0, 65_536), description: 'Memory for cached query results (MiB) in-process; 0 turns the cache off (Redis, when set, is bounded by its own maxmemory).' },
  { env: 'TALLY_KAFKA_BROKERS', key: 'kafkaBrokers', parse: hostPorts(9092), description: 'Distributed mode: Kafka brokers, host:port[,host:port…]. Unset: the embedded default.' },
  { env: 'TALLY_KAFKA_CLIENT_ID', key: 'kafkaClientId', parse: text, description: 'Client id this process gives Kafka (shows in broker logs and quotas).' },
  { env: 'TALLY_KAFKA_NAMESPACE', key: 'kafkaNamespace', parse: kafkaName, description: 'Prefix of every topic and consumer group, to share a Kafka cluster between installations.' },
  { env: 'TALLY_KAFKA_REPLICATION_FACTOR', key: 'kafkaReplicationFactor', parse: integer(1, 15), description: 'Replicas of each topic `tally migrate` creates (1 only for a single test broker).' },
  { env: 'TALLY_KAFKA_MIN_INSYNC_REPLICAS', key: 'kafkaMinInsyncReplicas', parse: integer(1, 15), description: 'Replicas that must hold a record before Kafka acknowledges it (acks=all).' },
  { env: 'TALLY_KAFKA_SESSION_TIMEOUT_MS', key: 'kafkaSessionTimeoutMs', parse: integer(1000, 300_000), description: 'A processor silent this long loses its partitions to the others (within the broker\'s group.min/max.session.timeout.ms).' },
  { env: 'TALLY_CASSANDRA_CONTACT_POINTS', key: 'cassandraContactPoints', parse: hostPorts(9042), description: 'Distributed mode: Cassandra nodes to contact first, host:port[,…].' },
  { env: 'TALLY_CASSANDRA_DC', key: 'cassandraDc', parse: text, description: 'The Cassandra data center local to this process (LOCAL_* consistency).' },
  { env: 'TALLY_CASSANDRA_KEYSPACE', key: 'cassandraKeyspace', parse: text, description: 'Keyspace holding Tally\'s tables.' },
  { env: 'TALLY_CASSANDRA_REPLICATION', key: 'cassandraReplication', parse: replication, description: 'Keyspace replication for `tally migrate`: "3" (local DC) or "dc1:3,dc2:3". Default 3.' },
  { env: 'TALLY_CASSANDRA_CONSISTENCY', key: 'cassandraConsistency', parse: consistency, description: 'Consistency of reads and writes (LOCAL_QUORUM; QUORUM spans data centers).' },
  { env: 'TALLY_CASSANDRA_USERNAME', key: 'cassandraUsername', parse: text, description: 'Cassandra user, when authentication is on.' },
  { env: 'TALLY_CASSANDRA_PASSWORD', key: 'cassandraPassword', parse: text, description: 'Cassandra password, when authentication is on.' },
  { env: 'TALLY_REDIS_URL', key: 'redisUrl', parse: redisUrl, description: 'Redis for the shared query cache (redis://host:6379). Unset: an in-process cache.' },
  { env: 'TALLY_QUERY_SCAN_EVENTS_MAX', key: 'queryScanEventsMax', parse: integer(1000, 100_000_000), description: 'Raw events one query may scan before query_too_large.' },
];

/** Reads file + env once; throws ConfigError naming the setting at fault. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const merged: Record<string, unknown> = { ...defaults };
  const file = env.TALLY_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  for (const setting of settings) {
    const fileValue = fromFile[setting.key] ?? fromFile[setting.env];
    const raw = env[setting.env] ?? (fileValue === undefined || fileValue === null ? undefined : String(fileValue));
    if (raw === undefined || raw === '') continue;
    try {
      merged[setting.key] = setting.parse(raw);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new ConfigError(`${setting.env}=${JSON.stringify(setting.key === 'adminToken' ? '…' : raw)}: ${why}`);
    }
  }
  merged.dataDir = resolve(String(merged.dataDir));
  checkDeployment(merged as unknown as Config);
  return Object.freeze(merged as unknown as Config);
}

/** The distributed deployment needs both engines; half of it would split the data silently. */
function checkDeployment(config: Config): void {
  if ((config.kafkaBrokers === null) !== (config.cassandraContactPoints === null)) {
    throw new ConfigError('TALLY_KAFKA_BROKERS and TALLY_CASSANDRA_CONTACT_POINTS go together: set both (distributed) or neither (embedded)');
  }
  if (config.kafkaBrokers !== null && config.kafkaMinInsyncReplicas > config.kafkaReplicationFactor) {
    throw new ConfigError(`TALLY_KAFKA_MIN_INSYNC_REPLICAS (${config.kafkaMinInsyncReplicas}) cannot exceed TALLY_KAFKA_REPLICATION_FACTOR (${config.kafkaReplicationFactor})`);
  }
}

/** True when the configuration names the engines of the distributed deployment. */
export function isDistributed(config: Config): boolean {
  return config.kafkaBrokers !== null;
}

/** Keyspace replication: a bare factor means the local data center. */
export function cassandraReplication(config: Config): Record<string, number> {
  const configured = config.cassandraReplication ?? { '': 3 };
  return Object.fromEntries(Object.entries(configured).map(([dc, factor]) => [dc === '' ? config.cassandraDc : dc, factor]));
}

function readConfigFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`TALLY_CONFIG=${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`TALLY_CONFIG=${path}: must hold a JSON object`);
  }
  const known = new Set(settings.flatMap((s) => [s.key, s.env]));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new ConfigError(`TALLY_CONFIG=${path}: unknown setting "${key}"`);
  }
  return parsed as Record<string, unknown>;
}

export { defaults as configDefaults };
