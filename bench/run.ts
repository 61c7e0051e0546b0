// `npm run bench` (options: --help): runs the benchmark scenarios against `tally start` in a child
// process and prints one table of (scenario, target, measured, result). Figures, not pass/fail:
// the exit code is 0 unless a scenario could not run at all.
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { markdownTable, row, scaleSettings, scales, textTable, type BenchContext, type Row, type ScaleName, type ScenarioReport } from './report.ts';
import { runSingle } from './scenarios/ingest-single.ts';
import { runBatch } from './scenarios/ingest-batch.ts';
import { runUsers } from './scenarios/seed-load-test.ts';
import { runFreshness } from './scenarios/freshness.ts';
import { runQueries } from './scenarios/queries.ts';
import { runReprocessScenario } from './scenarios/reprocess.ts';
import { runLedger } from './scenarios/ledger.ts';
import { Datasets } from './datasets.ts';

type Scenario = (context: BenchContext, datasets: Datasets) => Promise<ScenarioReport>;

/** In the order they run; the query scenario leaves its baseline dataset for reprocess. */
const scenarios: ReadonlyMap<string, Scenario> = new Map<string, Scenario>([
  ['single', (context) => runSingle(context)],
  ['batch', (context) => runBatch(context)],
  ['users', (context) => runUsers(context)],
  ['freshness', (context) => runFreshness(context)],
  ['query', runQueries],
  ['reprocess', runReprocessScenario],
  ['ledger', (context) => runLedger(context)],
  // Loaded only when chosen: the embedded scenarios never load the engines' client libraries.
  ['distributed', async (context) => (await import('./scenarios/distributed.ts')).runDistributed(context)],
  ['distributed-ledger', async (context) => (await import('./scenarios/distributed-ledger.ts')).runDistributedLedger(context)],
]);

/** Run only when named in --only: they need the engines running (scripts/engines.sh up, Redis). */
const onRequest: ReadonlySet<string> = new Set(['distributed', 'distributed-ledger']);

const usage = `Usage: npm run bench -- [--only=${[...scenarios.keys()].join(',')}] [--scale=${scales.join('|')}] [--profile] [--data-cache=<dir>]
       [--node-flags="<flags for the server and job processes>"] [--markdown]
  default       every scenario except ${[...onRequest].join(', ')}, which needs the engines (Kafka, Cassandra,
                Redis: scripts/engines.sh up) and runs only when named in --only
  --profile     write V8 CPU profiles of the server (and its processor thread) and the jobs to a temporary
                directory (printed at the end); summarize one with: node bench/profile.ts <file>.cpuprofile`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      scale: { type: 'string', default: 'full' },
      profile: { type: 'boolean', default: false },
      'data-cache': { type: 'string' },
      'node-flags': { type: 'string', default: '' },
      markdown: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (!(scales as readonly string[]).includes(values.scale)) throw new Error(`--scale must be one of ${scales.join(', ')}\n${usage}`);
  const chosen = values.only ? values.only.split(',').map((name) => name.trim()) : [...scenarios.keys()].filter((name) => !onRequest.has(name));
  for (const name of chosen) if (!scenarios.has(name)) throw new Error(`unknown scenario "${name}"\n${usage}`);

  // Profiles go to a temporary directory, never into the checkout; its path is printed at the end.
  const profileDir = values.profile ? mkdtempSync(join(tmpdir(), 'tally-bench-profiles-')) : null;
  const nodeFlags = [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...values['node-flags'].split(' ').filter(Boolean)];
  const context: BenchContext = {
    scale: scaleSettings[values.scale as ScaleName],
    nodeFlags,
    dataCacheDir: values['data-cache'] ? resolve(values['data-cache']) : null,
    log: (message) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`),
  };
  const machine = `${sourceVersion()}; ${availableParallelism()} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${process.platform}`;
  context.log(`${machine}; scale ${context.scale.name}; scenarios ${chosen.join(', ')}${nodeFlags.length ? `; server flags ${nodeFlags.join(' ')}` : ''}`);

  const datasets = new Datasets(context);
  const rows: Row[] = [];
  const notes: string[] = [];
  let broken = false;
  try {
    for (const name of chosen) {
      const loadBefore = loadavg()[0]!;
      try {
        const report = await scenarios.get(name)!(context, datasets);
        rows.push(...report.rows);
        notes.push(...report.notes);
        // Other processes on a 2-core machine move every figure: say how busy it was.
        notes.push(`${name}: machine load average ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after (this run's own server and load generator count too)`);
      } catch (error) {
        broken = true;
        const message = error instanceof Error ? error.message : String(error);
        context.log(`${name} failed: ${error instanceof Error ? (error.stack ?? message) : message}`);
        rows.push(row(name, '-', message.split('\n')[0]!.slice(0, 120), 'error'));
      }
    }
  } finally {
    datasets.cleanUp();
  }

  const flagsText = nodeFlags.length ? ` — server flags ${nodeFlags.join(' ')}` : '';
  const out = [`Tally benchmarks — ${new Date().toISOString()} — ${machine} — scale ${context.scale.name}${flagsText}`, '', textTable(rows), '', ...notes.map((note) => `- ${note}`)];
  if (values.markdown) out.push('', markdownTable(rows));
  if (profileDir) out.push('', `CPU profiles: ${profileDir} (summarize one with: node bench/profile.ts <file>)`);
  process.stdout.write(`${out.join('\n')}\n`);
  return broken ? 1 : 0;
}

/** The commit measured, and whether src/ differs from it: figures belong to a version. */
function sourceVersion(): string {
  const git = (args: string[]): string => spawnSync('git', args, { encoding: 'utf8' }).stdout?.trim() ?? '';
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown commit';
  return git(['status', '--porcelain', '--', 'src']) ? `${commit} + uncommitted src changes` : commit;
}

// Exit explicitly: a scenario that failed half-way may leave a socket or timer behind.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
