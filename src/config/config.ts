// The only reader of process.env. Configuration comes from defaults, then an optional JSON file
// (TALLY_CONFIG), then environment variables; it is validated once at start, with a message that
// names the bad setting, and frozen. Everything else receives a Config.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { limits, time } from '../core/limits.ts';

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
  readonly queryScanEventsMax: number;
  /** Memory for cached query results (MiB); 0 turns the cache off. */
  readonly queryCacheMb: number;
  /** How long processed records stay in the embedded log (they are already in the stores). */
  readonly logRetentionMs: number;
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
  queryScanEventsMax: limits.queryScanEventsMax,
  queryCacheMb: 64,
  logRetentionMs: 24 * time.hourMs,
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
  { env: 'TALLY_LOG_RETENTION_HOURS', key: 'logRetentionMs', parse: (raw: string): number => integer(1, 24 * 366)(raw) * time.hourMs, description: 'Hours processed records stay in the embedded log before they are pruned.' },
  { env: 'TALLY_QUERY_CACHE_MB', key: 'queryCacheMb', parse: integer(0, 65_536), description: 'Memory for cached query results (MiB); 0 turns the cache off.' },
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
  return Object.freeze(merged as unknown as Config);
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
