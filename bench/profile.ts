// `node bench/profile.ts <file.cpuprofile> [rows]`: the functions a V8 CPU profile (node
// --cpu-prof, or `npm run bench -- --profile`) spent the most time in — self time, and total time
// including callees — so a missed target can name its bottleneck. Time blocked in a synchronous
// call (an fsync inside SQLite's COMMIT) counts as that call's self time.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const rowsDefault = 25;

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^file:\/\//, '').replace(/^.*\/(src|bench|node_modules)\//, '$1/');
  return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
}

export function summarize(profile: CpuProfile, rows: number): string {
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, index) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const totalUs = [...selfUs.values()].reduce((sum, value) => sum + value, 0);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    self.set(frameName(node), (self.get(frameName(node)) ?? 0) + us);
    // Each frame on the sample's stack gets the sample once, however often it recurses.
    const seen = new Set<string>();
    for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
      const name = frameName(byId.get(current)!);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + us);
    }
  }
  const table = (title: string, values: Map<string, number>): string[] => [
    title,
    ...[...values].sort((a, b) => b[1] - a[1]).slice(0, rows)
      .map(([name, us]) => `${((100 * us) / totalUs).toFixed(1).padStart(6)}%  ${(us / 1e6).toFixed(2).padStart(7)} s  ${name}`),
  ];
  return [`profile: ${(totalUs / 1e6).toFixed(1)} s sampled`, '', ...table('self time', self), '', ...table('total time (with callees)', inclusive)].join('\n');
}

if (import.meta.main) {
  const [path, rows] = process.argv.slice(2);
  if (!path) {
    process.stderr.write('usage: node bench/profile.ts <file.cpuprofile> [rows]\n');
    process.exitCode = 2;
  } else {
    process.stdout.write(`${summarize(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile, Number(rows ?? rowsDefault))}\n`);
  }
}
