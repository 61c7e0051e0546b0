// A Kafka or Cassandra of a test's own, for tests that stop and restart an engine: they must not
// take down the shared engines other test files are using at the same moment. Same recipe as CI's
// (scripts/engines.sh, jars cached), in a temporary home on free ports; restarts keep the data.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = resolve(import.meta.dirname, '../../scripts/engines.sh');

export type PrivateEngineName = 'kafka' | 'cassandra';

export interface PrivateEngine {
  /** host:port clients connect to. */
  readonly address: string;
  /** Stops the engine (SIGTERM, then SIGKILL after the grace period); data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same data and port; resolves once it answers. */
  start(): Promise<void>;
  /** Stops it and deletes its home. */
  dispose(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function startPrivateEngine(name: PrivateEngineName): Promise<PrivateEngine> {
  const home = mkdtempSync(join(tmpdir(), `tally-${name}-`));
  const [port, second] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ENGINES: name,
    TALLY_ENGINES_HOME: home,
    TALLY_ENGINES_STOP_GRACE_S: '10',
    ...(name === 'kafka'
      ? { TALLY_KAFKA_PORT: String(port), TALLY_KAFKA_CONTROLLER_PORT: String(second) }
      : { TALLY_CASSANDRA_PORT: String(port), TALLY_CASSANDRA_STORAGE_PORT: String(second) }),
  };
  const engines = async (command: 'up' | 'down', fresh: boolean): Promise<void> => {
    try {
      await run('bash', [script, command], { env: { ...env, TALLY_ENGINES_FRESH: fresh ? '1' : '0' }, timeout: 240_000 });
    } catch (error) {
      const output = error as { stdout?: string; stderr?: string };
      throw new Error(`scripts/engines.sh ${command} (${name}) failed:\n${output.stdout ?? ''}\n${output.stderr ?? ''}`, { cause: error });
    }
  };
  await engines('up', true);
  return {
    address: `127.0.0.1:${port}`,
    stop: () => engines('down', false),
    start: () => engines('up', false),
    async dispose() {
      await engines('down', false).catch(() => {});
      rmSync(home, { recursive: true, force: true });
    },
  };
}
