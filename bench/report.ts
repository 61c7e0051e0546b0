// What a scenario reports — rows of (scenario, target, measured, verdict) plus notes — and how the
// runner prints them: an aligned text table for the terminal and a Markdown table for the docs.

export type Verdict = 'pass' | 'miss' | 'info' | 'error';

export interface Row {
  readonly scenario: string;
  readonly target: string;
  readonly measured: string;
  readonly verdict: Verdict;
}

export interface ScenarioReport {
  readonly rows: Row[];
  /** Context a reader needs to trust the figures: settings, sanity checks, CPU split. */
  readonly notes: string[];
}

export const scales = ['full', 'small'] as const;
export type ScaleName = (typeof scales)[number];

export interface BenchContext {
  readonly scale: Scale;
  /** Node flags for the server and job child processes (--cpu-prof with --profile, --node-flags). */
  readonly nodeFlags: readonly string[];
  /** Directory keeping loaded datasets between runs, or null (temporary, removed at the end). */
  readonly dataCacheDir: string | null;
  log(message: string): void;
}

export interface Scale {
  readonly name: ScaleName;
  readonly warmupSeconds: number;
  readonly singleSeconds: number;
  readonly batchEvents: number;
  readonly freshnessSeconds: number;
  /** Dataset sizes for the query scenario: the first is the baseline, the last the target size. */
  readonly querySizes: readonly number[];
  readonly querySeconds: number;
  readonly reprocessEvents: number;
}

export const scaleSettings: Readonly<Record<ScaleName, Scale>> = {
  full: {
    name: 'full', warmupSeconds: 3, singleSeconds: 20, batchEvents: 3_000_000, freshnessSeconds: 30,
    querySizes: [1_000_000, 10_000_000], querySeconds: 10, reprocessEvents: 1_000_000,
  },
  small: {
    name: 'small', warmupSeconds: 1, singleSeconds: 5, batchEvents: 300_000, freshnessSeconds: 8,
    querySizes: [100_000, 1_000_000], querySeconds: 3, reprocessEvents: 100_000,
  },
};

export function row(scenario: string, target: string, measured: string, verdict: Verdict): Row {
  return { scenario, target, measured, verdict };
}

/** pass when `value` is at least `goal` (throughput targets). */
export function atLeast(value: number, goal: number): Verdict {
  return value >= goal ? 'pass' : 'miss';
}

/** pass when `value` is at most `goal` (latency and memory targets). */
export function atMost(value: number, goal: number): Verdict {
  return value <= goal ? 'pass' : 'miss';
}

/** The q-quantile (0..1) of the samples, nearest-rank; NaN for no samples. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** autocannon's histogram holds whole milliseconds: 0 means "under 1 ms". */
export function formatMs(value: number): string {
  if (value === 0) return '<1 ms';
  return value >= 100 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`;
}

export function formatMb(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MB`;
}

export function textTable(rows: readonly Row[]): string {
  const header: Row = { scenario: 'scenario', target: 'target', measured: 'measured', verdict: 'info' };
  const all = [header, ...rows];
  const width = (pick: (item: Row) => string): number => Math.max(...all.map((item) => pick(item).length));
  const widths = [width((item) => item.scenario), width((item) => item.target), width((item) => item.measured)];
  const line = (item: Row, verdict: string): string =>
    [item.scenario.padEnd(widths[0]!), item.target.padEnd(widths[1]!), item.measured.padEnd(widths[2]!), verdict].join('  ');
  const rule = '-'.repeat(widths[0]! + widths[1]! + widths[2]! + 12);
  return [line(header, 'result'), rule, ...rows.map((item) => line(item, item.verdict))].join('\n');
}

export function markdownTable(rows: readonly Row[]): string {
  const escape = (text: string): string => text.replaceAll('|', '\\|');
  return [
    '| scenario | target | measured | result |',
    '|---|---|---|---|',
    ...rows.map((item) => `| ${escape(item.scenario)} | ${escape(item.target)} | ${escape(item.measured)} | ${item.verdict} |`),
  ].join('\n');
}
