// Where the real engines of the distributed deployment are, for tests. Locally a test whose engine
// is absent skips with the reason printed; under CI (CI set) an absent engine fails the test,
// because CI starts every engine (`.ci/run` → scripts/engines.sh) and a skip there would hide a gap.
import { Socket } from 'node:net';
import { after, type TestContext } from 'node:test';

/**
 * The engines' client libraries keep sockets and timers of their own. A test file whose tests have
 * all finished must not keep CI waiting on one that leaked (a run once hung 13 minutes on a timer):
 * 10 s after the file's last hook, say what is still open and exit with the runner's exit code.
 * The timer is unref'd, so a file that ends cleanly exits at once and never sees it.
 */
after(() => {
  setTimeout(() => {
    process.stderr.write(`test process still alive 10 s after its tests ended; open: ${process.getActiveResourcesInfo().join(', ')}\n`);
    process.exit();
  }, 10_000).unref();
});

export interface EngineAddresses {
  /** host:port list of Kafka brokers. */
  readonly kafkaBrokers: string[];
  /** host:port list of Cassandra contact points. */
  readonly cassandraContactPoints: string[];
  readonly cassandraDc: string;
  readonly redisUrl: string;
}

const list = (raw: string | undefined, fallback: string): string[] =>
  (raw && raw.trim() !== '' ? raw : fallback).split(',').map((item) => item.trim()).filter((item) => item !== '');

export function engineAddresses(env: Readonly<Record<string, string | undefined>> = process.env): EngineAddresses {
  return {
    kafkaBrokers: list(env.TALLY_KAFKA_BROKERS ?? env.KAFKA_BROKERS, '127.0.0.1:9092'),
    cassandraContactPoints: list(env.TALLY_CASSANDRA_CONTACT_POINTS ?? env.CASSANDRA_CONTACT_POINTS, '127.0.0.1:9042'),
    cassandraDc: env.TALLY_CASSANDRA_DC ?? env.CASSANDRA_LOCAL_DC ?? 'datacenter1',
    redisUrl: env.TALLY_REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
}

export type Engine = 'kafka' | 'cassandra' | 'redis';

const howToStart: Readonly<Record<Engine, string>> = {
  kafka: 'start it with scripts/engines.sh up, or set KAFKA_BROKERS',
  cassandra: 'start it with scripts/engines.sh up, or set CASSANDRA_CONTACT_POINTS',
  redis: 'start redis-server on 6379, or set TALLY_REDIS_URL',
};

/** True when a TCP connection to host:port opens within the timeout. */
export function canConnect(hostPort: string, timeoutMs = 1000): Promise<boolean> {
  const separator = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, separator).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(separator + 1));
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

function endpointOf(engine: Engine, addresses: EngineAddresses): string {
  if (engine === 'kafka') return addresses.kafkaBrokers[0]!;
  if (engine === 'cassandra') return addresses.cassandraContactPoints[0]!;
  const url = new URL(addresses.redisUrl);
  return `${url.hostname}:${url.port || '6379'}`;
}

const probed = new Map<Engine, Promise<string | null>>();

/** Null when the engine answers; otherwise why not (probed once per process). */
export function engineMissing(engine: Engine): Promise<string | null> {
  let result = probed.get(engine);
  if (!result) {
    const endpoint = endpointOf(engine, engineAddresses());
    result = canConnect(endpoint).then((ok) => (ok ? null : `no ${engine} answers at ${endpoint}: ${howToStart[engine]}`));
    probed.set(engine, result);
  }
  return result;
}

/**
 * Call first in a test that needs real engines. Returns false (and marks the test skipped with the
 * reason) when one is absent outside CI; under CI throws, failing the test.
 */
export async function requireEngines(t: TestContext, ...engines: Engine[]): Promise<boolean> {
  for (const engine of engines) {
    const missing = await engineMissing(engine);
    if (missing === null) continue;
    if (process.env.CI) throw new Error(`${missing} (CI must run every engine test)`);
    t.skip(missing);
    return false;
  }
  return true;
}

/** For describe-level gating: the reason to skip a whole suite, or null. Throws under CI. */
export async function enginesMissing(...engines: Engine[]): Promise<string | null> {
  for (const engine of engines) {
    const missing = await engineMissing(engine);
    if (missing === null) continue;
    if (process.env.CI) throw new Error(`${missing} (CI must run every engine test)`);
    return missing;
  }
  return null;
}

/** A name no parallel test run will also pick: prefix + time + random. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}
