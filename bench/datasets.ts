// The loaded 30-day datasets of one benchmark run: loaded once (by `bench/jobs.ts load` in a child
// process), shared by the scenarios that need the same size, removed at the end — or kept in
// --data-cache=<dir> and reused by later runs on the same UTC day ("30d" queries are relative to now).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { time } from '../src/core/limits.ts';
import { datasetFile, type DatasetInfo, type ReprocessResult } from './jobs.ts';
import { formatCount, type BenchContext } from './report.ts';

export interface Dataset extends DatasetInfo {
  readonly dataDir: string;
  /** False when the dataset came from the cache (loadSeconds is then the original load's). */
  readonly loadedNow: boolean;
}

const jobsScript = new URL('./jobs.ts', import.meta.url).pathname;

export class Datasets {
  readonly #context: BenchContext;
  readonly #loaded = new Map<number, Dataset>();
  readonly #temporary = new Set<string>();

  constructor(context: BenchContext) {
    this.#context = context;
  }

  async get(events: number): Promise<Dataset> {
    const known = this.#loaded.get(events);
    if (known) return known;
    const cached = this.#fromCache(events);
    if (cached) {
      this.#context.log(`dataset: reusing ${formatCount(events)} events from ${cached.dataDir}`);
      this.#loaded.set(events, cached);
      return cached;
    }
    const dataDir = this.#newDir(events);
    this.#context.log(`dataset: loading ${formatCount(events)} events into ${dataDir}`);
    const info = JSON.parse(await runJob(this.#context, ['load', `--dir=${dataDir}`, `--events=${events}`])) as DatasetInfo;
    const dataset = { ...info, dataDir, loadedNow: true };
    this.#context.log(`dataset: ${formatCount(events)} events loaded in ${info.loadSeconds.toFixed(0)} s`);
    this.#loaded.set(events, dataset);
    return dataset;
  }

  async reprocess(dataset: Dataset): Promise<ReprocessResult> {
    return JSON.parse(await runJob(this.#context, ['reprocess', `--dir=${dataset.dataDir}`])) as ReprocessResult;
  }

  /** Frees the disk of a temporary dataset no later scenario needs. */
  release(events: number): void {
    const dataset = this.#loaded.get(events);
    if (!dataset || !this.#temporary.has(dataset.dataDir)) return;
    rmSync(dataset.dataDir, { recursive: true, force: true });
    this.#temporary.delete(dataset.dataDir);
    this.#loaded.delete(events);
  }

  cleanUp(): void {
    for (const dir of this.#temporary) rmSync(dir, { recursive: true, force: true });
    this.#temporary.clear();
  }

  #fromCache(events: number): Dataset | null {
    const cacheDir = this.#context.dataCacheDir;
    if (!cacheDir) return null;
    const dataDir = join(cacheDir, `events-${events}`);
    const file = join(dataDir, datasetFile);
    if (!existsSync(file)) return null;
    const info = JSON.parse(readFileSync(file, 'utf8')) as DatasetInfo;
    // A dataset from another UTC day no longer fills the "30d" range the queries ask for.
    if (Math.floor(info.window.toMs / time.dayMs) !== Math.floor(Date.now() / time.dayMs)) return null;
    return { ...info, dataDir, loadedNow: false };
  }

  #newDir(events: number): string {
    const cacheDir = this.#context.dataCacheDir;
    if (!cacheDir) {
      const dir = mkdtempSync(join(tmpdir(), `tally-bench-${events}-`));
      this.#temporary.add(dir);
      return dir;
    }
    const dir = join(cacheDir, `events-${events}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    return dir;
  }
}

/** Runs `node bench/jobs.ts <args>`; resolves with its last stdout line. */
async function runJob(context: BenchContext, args: readonly string[]): Promise<string> {
  const child = spawn(process.execPath, [...context.nodeFlags, jobsScript, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  if (code !== 0) throw new Error(`bench job ${args[0]} exited with ${code}`);
  const last = stdout.trim().split('\n').at(-1);
  if (!last) throw new Error(`bench job ${args[0]} printed no result`);
  return last;
}
