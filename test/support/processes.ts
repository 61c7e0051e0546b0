// Real `tally <role>` child processes for crash tests: the test's own Node binary, one shared data
// directory, a port the child picks itself (read back from its startup log line), signals on
// demand, and a registry that reaps every child even when a test fails halfway.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export type TallyRole = 'collector' | 'processor' | 'query' | 'start';

/** Admin token of every child: the config requires at least 24 characters. */
export const processAdminToken = 'crash-test-admin-token-0123456789abcdef';

const mainPath = resolve(import.meta.dirname, '../../src/cli/main.ts');
const repositoryRoot = resolve(import.meta.dirname, '../..');
/** A child that has not bound its port in this long is reported with its output (cold start on a busy 2-core CI box). */
const startTimeoutMsDefault = 20_000;
/** Output kept per child for failure messages: the tail is what explains a crash. */
const outputCharsMax = 64 * 1024;
/** A SIGTERM'd child gets this long to drain before the reaper SIGKILLs it. */
const reapGraceMs = 5_000;

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface TallyChild {
  readonly role: TallyRole;
  readonly pid: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  /** Sends `signal` and waits for the exit. */
  kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<ChildExit>;
  /** False once the process has exited, for whatever reason. */
  running(): boolean;
  /** The last stdout and stderr lines, for assertion messages. */
  output(): string;
}

export interface TallyProcessesOptions {
  /** Extra environment of every child (TALLY_* settings). */
  readonly env?: Readonly<Record<string, string>>;
}

/** One data directory and every child started on it; `close()` kills survivors and deletes the directory. */
export class TallyProcesses {
  #dataDir: string | null = null;
  readonly #env: Readonly<Record<string, string>>;
  readonly #children = new Set<ChildProcess>();
  /** Last resort when the test process exits without running its `after` hooks: no orphans. */
  readonly #killOnExit = (): void => {
    for (const child of this.#children) child.kill('SIGKILL');
  };

  constructor(options: TallyProcessesOptions = {}) {
    this.#env = options.env ?? {};
  }

  /** Created on first use, so a suite whose tests are filtered out leaves nothing behind. */
  get dataDir(): string {
    if (this.#dataDir === null) {
      this.#dataDir = mkdtempSync(join(tmpdir(), 'tally-crash-'));
      process.once('exit', this.#killOnExit);
    }
    return this.#dataDir;
  }

  /** Starts `tally <role>` and resolves once its /healthz answers 200. */
  async start(role: TallyRole, options: { startTimeoutMs?: number } = {}): Promise<TallyChild> {
    const child = spawn(process.execPath, [mainPath, role], {
      cwd: repositoryRoot,
      env: this.#childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#children.add(child);
    const output = new OutputTail();
    const exited = new Promise<ChildExit>((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.#children.delete(child);
        resolveExit({ code, signal });
      });
    });
    const address = waitForAddress(child, output, exited);
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => output.add(chunk));
    const timeoutMs = options.startTimeoutMs ?? startTimeoutMsDefault;
    let url: string;
    try {
      url = await withTimeout(address, timeoutMs, `tally ${role} did not start within ${timeoutMs} ms`);
      await waitHealthy(url, timeoutMs);
    } catch (error) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`${(error as Error).message}\n--- output of tally ${role} ---\n${output.text()}`);
    }
    return {
      role, pid: child.pid!, url, exited,
      async kill(signal) {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return exited;
      },
      running: () => child.exitCode === null && child.signalCode === null,
      output: () => output.text(),
    };
  }

  /** SIGKILLs every child still running, waits for them, and removes the data directory. */
  async close(): Promise<void> {
    await Promise.all([...this.#children].map((child) => reap(child)));
    process.removeListener('exit', this.#killOnExit);
    if (this.#dataDir !== null) rmSync(this.#dataDir, { recursive: true, force: true });
    this.#dataDir = null;
  }

  #childEnv(): NodeJS.ProcessEnv {
    // The parent's TALLY_* settings (or a TALLY_CONFIG file) must not leak into the children.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TALLY_')));
    return {
      ...inherited,
      TALLY_DATA_DIR: this.dataDir,
      TALLY_HOST: '127.0.0.1',
      TALLY_PORT: '0',
      TALLY_ADMIN_TOKEN: processAdminToken,
      // info, not warn: the bound address is only announced on the 'tally is running' info line.
      TALLY_LOG_LEVEL: 'info',
      ...this.#env,
    };
  }
}

/** Resolves with the address from pino's 'tally is running' line; rejects if the child exits first. */
function waitForAddress(child: ChildProcess, output: OutputTail, exited: Promise<ChildExit>): Promise<string> {
  return new Promise<string>((resolveAddress, reject) => {
    let pending = '';
    let found = false;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output.add(chunk);
      if (found) return;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const address = runningAddress(line);
        if (address !== null) {
          found = true;
          resolveAddress(address);
          return;
        }
      }
    });
    void exited.then((exit) => reject(new Error(`tally exited before it was running (code ${exit.code}, signal ${exit.signal})`)));
  });
}

function runningAddress(line: string): string | null {
  if (!line.startsWith('{')) return null;
  try {
    const entry = JSON.parse(line) as { msg?: unknown; address?: unknown };
    return entry.msg === 'tally is running' && typeof entry.address === 'string' ? entry.address : null;
  } catch {
    return null;
  }
}

async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url}/healthz did not answer 200 within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function reap(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  child.kill('SIGKILL');
  await withTimeout(exited, reapGraceMs, `child ${child.pid} survived SIGKILL`).catch(() => undefined);
}

class OutputTail {
  #text = '';

  add(chunk: string): void {
    this.#text += chunk;
    if (this.#text.length > outputCharsMax * 2) this.#text = this.#text.slice(-outputCharsMax);
  }

  text(): string {
    return this.#text.slice(-outputCharsMax);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads one sample of a Prometheus text exposition, e.g. `tally_processor_lag_records{processor="analytics"}`. */
export async function readMetric(url: string, sample: string): Promise<number | null> {
  const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const body = await response.text();
  for (const line of body.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return null;
}
