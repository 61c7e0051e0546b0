// `npm run bench [-- --only=<name,…>] [--scale=small] [--profile] [--data-cache=<dir>] [--node-flags=…]`: runs the
// benchmark scenarios against `tally start` in a child process and prints one table of
// (scenario, target, measured, result). Figures, not pass/fail: the exit code is 0 unless a
// scenario could not run at all.
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { markdownTable, row, scaleSettings, scales, textTable, type BenchContext, type Row, type ScaleName, type ScenarioReport } from './report.ts';
import { runSingle } from './scenarios/ingest-single.ts';
import { runBatch } from './scenarios/ingest-batch.ts';
import { runUsers } from './scenarios/seed-load-test.ts';
import { runFreshness } from './scenarios/freshness.ts';
import { runQueries } from './scenarios/queries.ts';
import { runReprocessScenario } from './scenarios/reprocess.ts';
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
]);

const usage = `Usage: npm run bench -- [--only=${[...scenarios.keys()].join(',')}] [--scale=${scales.join('|')}] [--profile] [--data-cache=<dir>]
       [--node-flags="<flags for the server and job processes>"] [--markdown]
  --profile     write V8 CPU profiles of the server (and its processor thread) and jobs to ./bench-profiles;
                summarize one with: node bench/profile.ts bench-profiles/<file>.cpuprofile`;

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
  const chosen = values.only ? values.only.split(',').map((name) => name.trim()) : [...scenarios.keys()];
  for (const name of chosen) if (!scenarios.has(name)) throw new Error(`unknown scenario "${name}"\n${usage}`);

  const profileDir = values.profile ? resolve('bench-profiles') : null;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const nodeFlags = [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...values['node-flags'].split(' ').filter(Boolean)];
  const context: BenchContext = {
    scale: scaleSettings[values.scale as ScaleName],
    nodeFlags,
    dataCacheDir: values['data-cache'] ? resolve(values['data-cache']) : null,
    log: (message) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`),
  };
  const machine = `${availableParallelism()} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${process.platform}`;
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
  process.stdout.write(`${out.join('\n')}\n`);
  return broken ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
