// Runs what `tally start` runs — every role in one process — as a child process on its own data
// directory, so the load generator never shares the server's event loop; samples the child's
// memory (VmRSS) and CPU time from /proc while a scenario runs. The distributed benchmark also runs
// single roles (`tally collector`, `processor`, `query`) this way, with the engines' settings in env.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const adminToken = 'bench-admin-token-0123456789abcdef';
const mainScript = new URL('../src/cli/main.ts', import.meta.url).pathname;

/** How long a start may take before the benchmark gives up (a 10 M-event store opens slowly). */
const readyTimeoutMs = 60_000;
const readyPollMs = 50;
/** Graceful stop: drain, commit, close; past this the child is killed. */
const stopTimeoutMs = 60_000;
/** Output kept for the error message when the child fails. */
const outputCharsMax = 8_000;
/** Kernel clock ticks per second for /proc/<pid>/stat CPU times (USER_HZ is 100 on Linux). */
const clockTicksPerSecond = 100;

export interface MerchantKeys {
  readonly merchantId: string;
  readonly writeKey: string;
  readonly secretKey: string;
}

/** The `tally` commands that serve: every role, or one. */
export type ServerCommand = 'start' | 'collector' | 'processor' | 'query';

export interface ServerOptions {
  /** Default `start`: every role in one process. */
  readonly command?: ServerCommand;
  /** An existing data directory (a loaded dataset); default: a new temporary one, removed on stop. */
  readonly dataDir?: string;
  /** Keys of a merchant already in dataDir (or the engines); default: create one through the admin API. */
  readonly keys?: MerchantKeys;
  /** Extra TALLY_* settings. */
  readonly env?: Readonly<Record<string, string>>;
  /** Node flags for the server process, e.g. --cpu-prof (workers write their own profiles). */
  readonly nodeFlags?: readonly string[];
}

export interface BenchServer {
  readonly url: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly keys: MerchantKeys;
  /** Resident memory of the server process now (bytes). */
  rssBytes(): number;
  /** User + system CPU seconds the server process has used so far. */
  cpuSeconds(): number;
  /** Runs `cleanUp` when the server stops: samplers and probes must not outlive a failed scenario. */
  onStop(cleanUp: () => void): void;
  stop(): Promise<void>;
}

export async function startServer(options: ServerOptions = {}): Promise<BenchServer> {
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tally-bench-'));
  const command = options.command ?? 'start';
  const port = await freePort();
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), mainScript, command], {
    env: {
      PATH: process.env.PATH ?? '',
      TALLY_DATA_DIR: dataDir,
      TALLY_PORT: String(port),
      TALLY_HOST: '127.0.0.1',
      TALLY_ADMIN_TOKEN: adminToken,
      TALLY_LOG_LEVEL: 'warn',
      // The benchmark is one key sending as fast as it can: the limiter would measure itself.
      TALLY_RATE_LIMIT_PER_SECOND: '10000000',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = captureOutput(child);
  const url = `http://127.0.0.1:${port}`;
  let stopping = false;
  // A server that dies mid-scenario is a finding, not noise: show why.
  child.once('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`[bench] tally ${command} (pid ${child.pid}) exited unexpectedly: code ${code}, signal ${signal}\n${output.text}\n`);
  });
  try {
    await waitReady(url, child, output, command);
    const keys = options.keys ?? (await createMerchant(url));
    const pid = child.pid!;
    const cleanUps: (() => void)[] = [];
    return {
      url, pid, dataDir, keys,
      rssBytes: () => readRssBytes(pid),
      cpuSeconds: () => readCpuSeconds(pid),
      onStop: (cleanUp) => cleanUps.push(cleanUp),
      stop: async () => {
        stopping = true;
        for (const cleanUp of cleanUps.splice(0)) cleanUp();
        await stopChild(child);
        if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    stopping = true;
    child.kill('SIGKILL');
    if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

export interface MemoryPeaks {
  readonly rssBytes: number;
  /** Largest V8 heap (total) and off-heap (external: Buffers, typed arrays) seen in /metrics. */
  readonly heapBytes: number;
  readonly externalBytes: number;
}

/** How often /metrics is read for the heap figures (RSS is read from /proc ten times as often). */
const metricsSampleMs = 1000;

/** Samples a server's RSS (and, less often, its V8 heap) and keeps the largest values. */
export function sampleMemory(server: BenchServer, intervalMs = 100): { stop(): Promise<MemoryPeaks> } {
  let rssBytes = server.rssBytes();
  let heapBytes = 0;
  let externalBytes = 0;
  const timer = setInterval(() => {
    try {
      rssBytes = Math.max(rssBytes, server.rssBytes());
    } catch {
      // The process is exiting: the samples taken so far stand.
    }
  }, intervalMs);
  let sampling = Promise.resolve();
  const metricsTimer = setInterval(() => {
    sampling = fetch(`${server.url}/metrics`).then((response) => response.text()).then((text) => {
      heapBytes = Math.max(heapBytes, metricValue(text, 'nodejs_heap_size_total_bytes'));
      externalBytes = Math.max(externalBytes, metricValue(text, 'nodejs_external_memory_bytes'));
    }, () => undefined);
  }, metricsSampleMs);
  server.onStop(() => {
    clearInterval(timer);
    clearInterval(metricsTimer);
  });
  return {
    async stop() {
      clearInterval(timer);
      clearInterval(metricsTimer);
      await sampling;
      return { rssBytes, heapBytes, externalBytes };
    },
  };
}

/** The first sample of metric `name` in a Prometheus exposition (0 when absent). */
export function metricValue(text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

function captureOutput(child: ChildProcess): { text: string } {
  const output = { text: '' };
  const keep = (chunk: Buffer): void => {
    output.text = (output.text + chunk.toString('utf8')).slice(-outputCharsMax);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return output;
}

async function waitReady(url: string, child: ChildProcess, output: { text: string }, command: ServerCommand): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`tally ${command} exited with ${child.exitCode}:\n${output.text}`);
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, readyPollMs));
  }
  throw new Error(`tally ${command} was not ready within ${readyTimeoutMs} ms:\n${output.text}`);
}

/** Creates a merchant through the admin API of the server at `url`. */
export async function createMerchant(url: string, name = 'Bench Shop'): Promise<MerchantKeys> {
  const response = await fetch(`${url}/v1/admin/merchants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, currency: 'USD' }),
  });
  const body = (await response.json()) as { id: string; write_key: string; secret_key: string };
  if (response.status !== 201) throw new Error(`creating the bench merchant failed: ${response.status} ${JSON.stringify(body)}`);
  return { merchantId: body.id, writeKey: body.write_key, secretKey: body.secret_key };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
  await exited;
  clearTimeout(timer);
}

function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** User + system CPU seconds process `pid` has used so far (any process: the engines' JVMs too). */
export function readCpuSeconds(pid: number): number {
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}
