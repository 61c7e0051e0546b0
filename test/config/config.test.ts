// Configuration is read once: defaults, then a JSON file, then the environment; a bad value stops
// start-up with a message naming the setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cassandraReplication, isDistributed, ConfigError, loadConfig } from '../../src/config/config.ts';

test('defaults apply when nothing is set, and the result is frozen', () => {
  const config = loadConfig({});
  assert.equal(config.port, 8080);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.adminToken, null);
  assert.ok(config.dataDir.endsWith('/data'));
  assert.ok(Object.isFrozen(config));
});

test('a bad value names the variable and says what is allowed', () => {
  assert.throws(() => loadConfig({ TALLY_PORT: '99999' }), (error: unknown) => error instanceof ConfigError && /TALLY_PORT="99999": must be an integer from 0 to 65535/.test(error.message));
  assert.throws(() => loadConfig({ TALLY_LOG_LEVEL: 'loud' }), /TALLY_LOG_LEVEL/);
  assert.throws(() => loadConfig({ TALLY_TRUST_PROXY: 'maybe' }), /TALLY_TRUST_PROXY/);
});

test('a short admin token is refused without echoing it', () => {
  assert.throws(() => loadConfig({ TALLY_ADMIN_TOKEN: 'short-secret' }), (error: unknown) =>
    error instanceof ConfigError && /TALLY_ADMIN_TOKEN/.test(error.message) && !error.message.includes('short-secret'));
});

test('a config file is read, the environment wins over it, and unknown keys are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-config-'));
  const file = join(dir, 'tally.json');
  writeFileSync(file, JSON.stringify({ port: 9000, TALLY_HOST: '0.0.0.0', lateWindowMs: undefined }));
  const fromFile = loadConfig({ TALLY_CONFIG: file });
  assert.equal(fromFile.port, 9000);
  assert.equal(fromFile.host, '0.0.0.0');
  assert.equal(loadConfig({ TALLY_CONFIG: file, TALLY_PORT: '9100' }).port, 9100);
  writeFileSync(file, JSON.stringify({ prot: 1 }));
  assert.throws(() => loadConfig({ TALLY_CONFIG: file }), /unknown setting "prot"/);
  writeFileSync(file, '{broken');
  assert.throws(() => loadConfig({ TALLY_CONFIG: file }), ConfigError);
});

test('distributed settings: host lists get default ports, replication and consistency parse, engines go together', () => {
  const config = loadConfig({
    TALLY_KAFKA_BROKERS: 'k1, k2:9093', TALLY_CASSANDRA_CONTACT_POINTS: '10.0.0.1,[::1]:9142', TALLY_CASSANDRA_DC: 'eu',
    TALLY_CASSANDRA_REPLICATION: '3', TALLY_CASSANDRA_CONSISTENCY: 'quorum', TALLY_REDIS_URL: 'redis://cache:6379',
  });
  assert.equal(isDistributed(config), true);
  assert.deepEqual(config.kafkaBrokers, ['k1:9092', 'k2:9093']);
  assert.deepEqual(config.cassandraContactPoints, ['10.0.0.1:9042', '[::1]:9142']);
  assert.deepEqual(cassandraReplication(config), { eu: 3 });
  assert.deepEqual(cassandraReplication(loadConfig({ TALLY_CASSANDRA_REPLICATION: 'eu:3, us:2' })), { eu: 3, us: 2 });
  assert.equal(config.cassandraConsistency, 'QUORUM');
  assert.equal(isDistributed(loadConfig({})), false);
  assert.throws(() => loadConfig({ TALLY_KAFKA_BROKERS: 'k1' }), /go together/);
  assert.throws(() => loadConfig({ TALLY_KAFKA_BROKERS: 'k1:99999', TALLY_CASSANDRA_CONTACT_POINTS: 'c' }), /TALLY_KAFKA_BROKERS/);
  assert.throws(() => loadConfig({ TALLY_CASSANDRA_CONSISTENCY: 'ONE' }), /TALLY_CASSANDRA_CONSISTENCY/);
  assert.throws(() => loadConfig({ TALLY_REDIS_URL: 'http://x' }), /TALLY_REDIS_URL/);
  assert.throws(() => loadConfig({ TALLY_KAFKA_BROKERS: 'k', TALLY_CASSANDRA_CONTACT_POINTS: 'c', TALLY_KAFKA_REPLICATION_FACTOR: '1' }), /MIN_INSYNC/);
});
