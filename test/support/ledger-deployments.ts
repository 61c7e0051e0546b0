// The two deployments the ledger's invariant tests run on, behind one shape: the test's own log
// and store connections, producers' logs, and ledger children (test/support/ledger-child.ts) to
// start and kill. Embedded: a temp directory with SQLite's log.db and store.db. Distributed: a
// fresh Kafka namespace and Cassandra keyspace (`tally migrate`), torn down with the deployment.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SqliteEventLog } from '../../src/adapters/sqlite/event-log.ts';
import { SqliteLedgerStore } from '../../src/adapters/sqlite/ledger-store.ts';
import type { EventLog } from '../../src/core/ports/event-log.ts';
import type { LedgerStore } from '../../src/core/ports/ledger-store.ts';
import { ensureLedgerTopics } from './ledger.ts';
import { sleep, withTimeout } from './processes.ts';

const childPath = resolve(import.meta.dirname, 'ledger-child.ts');
const repositoryRoot = resolve(import.meta.dirname, '../..');

export interface LedgerMember {
  kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<{ code: number | null; signal: string | null }>;
  /** Stops the process (SIGSTOP) for `ms`, then lets it go on (SIGCONT): it wakes up as a zombie. */
  freeze(ms: number): Promise<void>;
  /** Resolves when the member has settled its next batch (its replies are not appended yet). */
  nextSettle(): Promise<void>;
  /** Resolves when the member is about to settle its next batch. */
  nextSettling(): Promise<void>;
}

/** Ledger children of one deployment; every one still running is SIGKILLed on close. */
export class LedgerChildren {
  readonly #args: readonly string[];
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #startMsMax: number;
  readonly #running = new Set<ChildProcess>();
  #output = '';
  #conflicts = 0;
  /** Last resort when the test process exits without its `after` hooks: no orphans. */
  readonly #killOnExit = (): void => {
    for (const child of this.#running) child.kill('SIGKILL');
  };

  /** `args`: the child's arguments before the pause; `env`: its whole environment. */
  constructor(options: { args: readonly string[]; env: Readonly<Record<string, string | undefined>>; startMsMax: number }) {
    this.#args = options.args;
    this.#env = options.env;
    this.#startMsMax = options.startMsMax;
    process.once('exit', this.#killOnExit);
  }

  /** Starts a member that pauses `pauseMs` after each settle, and resolves once it runs. */
  async start(pauseMs: number): Promise<LedgerMember> {
    const child = spawn(process.execPath, [childPath, ...this.#args, String(pauseMs)], { cwd: repositoryRoot, env: this.#env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#running.add(child);
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.#running.delete(child);
        resolveExit({ code, signal });
      });
    });
    const settled = new EventTarget();
    const ready = new Promise<void>((resolveReady, reject) => {
      let pending = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        this.#keep(chunk);
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          if (line.includes('"ready":true')) resolveReady();
          if (line.includes('"settled":')) settled.dispatchEvent(new Event('settled'));
          if (line.includes('"settling":')) settled.dispatchEvent(new Event('settling'));
          if (line.includes('"conflict":')) this.#conflicts++;
        }
      });
      void exited.then((exit) => reject(new Error(`a ledger child exited before it was ready (${JSON.stringify(exit)})\n${this.#output}`)));
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.#keep(chunk));
    await withTimeout(ready, this.#startMsMax, `a ledger child was not ready within ${this.#startMsMax} ms\n${this.#output}`);
    return {
      kill: async (signal) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return exited;
      },
      freeze: async (ms) => {
        child.kill('SIGSTOP');
        await sleep(ms);
        child.kill('SIGCONT');
      },
      nextSettle: () => new Promise((resolveSettle) => settled.addEventListener('settled', () => resolveSettle(), { once: true })),
      nextSettling: () => new Promise((resolveSettle) => settled.addEventListener('settling', () => resolveSettle(), { once: true })),
    };
  }

  /** Settles the store refused (LedgerConflictError): another member had settled, claimed or left pending those offsets. */
  conflicts(): number {
    return this.#conflicts;
  }

  /** The children's last output lines: errors and warnings explain a failure. */
  output(): string {
    return this.#output;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#running].map((child) => {
      const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
      child.kill('SIGKILL');
      return exited;
    }));
    process.removeListener('exit', this.#killOnExit);
  }

  #keep(chunk: string): void {
    this.#output = (this.#output + chunk).slice(-32 * 1024);
  }
}

export interface LedgerDeployment {
  readonly kind: 'embedded' | 'distributed';
  /** The test's own connection to the log: offsets, reading replies back, and the first producer. */
  readonly log: EventLog;
  readonly store: LedgerStore;
  readonly children: LedgerChildren;
  /** A producer's log: on Kafka each producer has its own client (its own producer id and batches). */
  producerLog(index: number): EventLog;
  close(): Promise<void>;
}

export interface EmbeddedLedgerDeployment extends LedgerDeployment {
  readonly kind: 'embedded';
  readonly dataDir: string;
}

/** A data directory with the log's topics (four command partitions), and children that run on it. */
export async function openEmbeddedDeployment(options: { childStartMsMax: number }): Promise<EmbeddedLedgerDeployment> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tally-ledger-e2e-'));
  const children = new LedgerChildren({ args: ['embedded', dataDir], env: process.env, startMsMax: options.childStartMsMax });
  const log = SqliteEventLog.open({ path: join(dataDir, 'log.db') });
  const store = SqliteLedgerStore.create({ db: join(dataDir, 'store.db') });
  await ensureLedgerTopics(log, 4);
  return {
    kind: 'embedded', dataDir, log, store, children,
    producerLog: () => log,
    async close() {
      await log.close();
      await store.close();
      await children.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface DistributedLedgerDeployment extends LedgerDeployment {
  readonly kind: 'distributed';
}

/**
 * A fresh installation on the test engines (`tally migrate` in a new namespace and keyspace: the
 * topics with four command partitions, the ledger's tables) and children that run the ledger
 * processor on it; closing drops the keyspace (topics are left to the engines' fresh start, as the
 * other distributed tests do).
 */
export async function openDistributedDeployment(options: { childStartMsMax: number }): Promise<DistributedLedgerDeployment> {
  const [{ distributedTestEnv, dropTestKeyspace }, { installationConfig, runMigrate }, { ledgerInstallationSettings, openDistributedLedger, openKafkaLog }] =
    await Promise.all([import('./tally.ts'), import('./distributed.ts'), import('./ledger-distributed.ts')]);
  const env = { ...distributedTestEnv(), ...ledgerInstallationSettings };
  const config = installationConfig(env);
  let own: Awaited<ReturnType<typeof openDistributedLedger>>;
  try {
    const migration = await runMigrate(env);
    if (!/schema ledger:/.test(migration) || !/topic payments\.transfer\.requested: 4 partitions/.test(migration)) {
      throw new Error(`tally migrate did not create the ledger's schema and topics:\n${migration}`);
    }
    own = await openDistributedLedger(env);
  } catch (error) {
    await dropTestKeyspace(config).catch(() => {});
    throw error;
  }
  // The children see exactly the installation's settings: the parent's TALLY_* must not leak in.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TALLY_')));
  const children = new LedgerChildren({ args: ['distributed'], env: { ...inherited, ...env }, startMsMax: options.childStartMsMax });
  const producerLogs = new Map<number, EventLog>();
  return {
    kind: 'distributed', log: own.log, store: own.ledger, children,
    producerLog(index) {
      if (index === 0) return own.log;
      let log = producerLogs.get(index);
      if (!log) producerLogs.set(index, (log = openKafkaLog(own.config, `tally-ledger-producer-${index}`)));
      return log;
    },
    async close() {
      await children.close();
      await Promise.allSettled([...producerLogs.values()].map((log) => log.close()));
      await own.close();
      await dropTestKeyspace(own.config);
    },
  };
}
