// The machine's description, the figures, their ratios to the best peer, and
// the markdown and JSON written under bench/results/.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, hostname, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuModel, gafferVersion, osName } from './machine.ts';

export interface Machine {
  host: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string | null;
  redis: string | null;
  packages: Record<string, string>;
  gaffer: string;
}

export interface SystemResult {
  id: string;
  label: string;
  store: string;
  gaffer: boolean;
  setup: string;
  n: number;
  enqueueMs: number;
  drainMs: number;
  e2eMs: number;
  /** Jobs per second. */
  enqueueRate: number;
  drainRate: number;
  e2eRate: number;
  latency: { samples: number; p50Ms: number; p99Ms: number; meanMs: number; maxMs: number };
}

export const FIGURES = [
  { key: 'enqueueRate', title: 'enqueue (jobs/s)', higherIsBetter: true },
  { key: 'drainRate', title: 'drain (jobs/s)', higherIsBetter: true },
  { key: 'e2eRate', title: 'end-to-end (jobs/s)', higherIsBetter: true },
  { key: 'p50Ms', title: 'latency p50 (ms)', higherIsBetter: false },
  { key: 'p99Ms', title: 'latency p99 (ms)', higherIsBetter: false },
] as const;
export type FigureKey = (typeof FIGURES)[number]['key'];

export function figure(r: SystemResult, key: FigureKey): number {
  return key === 'p50Ms' || key === 'p99Ms' ? r.latency[key] : r[key];
}

/** The best value among `among` (the peers): the highest rate, the lowest latency; null without peers. */
export function best(among: SystemResult[], key: FigureKey): number | null {
  if (among.length === 0) return null;
  const values = among.map((r) => figure(r, key));
  return FIGURES.find((f) => f.key === key)!.higherIsBetter ? Math.max(...values) : Math.min(...values);
}

/** Value over the best peer's value (for latency, above 1 is slower). */
export function ratios(results: SystemResult[]): Record<string, Record<FigureKey, number | null>> {
  const peers = results.filter((r) => !r.gaffer);
  const out: Record<string, Record<FigureKey, number | null>> = {};
  for (const r of results) {
    const row = {} as Record<FigureKey, number | null>;
    for (const f of FIGURES) {
      const b = best(peers, f.key);
      row[f.key] = b === null || b === 0 ? null : figure(r, f.key) / b;
    }
    out[r.id] = row;
  }
  return out;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

function packageVersion(name: string): string {
  const path = fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url));
  return existsSync(path) ? String((JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version) : 'not installed';
}

export function describeMachine(postgres: string | null, redis: string | null): Machine {
  return {
    host: hostname(),
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: osName(),
    node: process.version,
    postgres,
    redis,
    packages: Object.fromEntries(['bullmq', 'ioredis', 'graphile-worker', 'pg-boss', 'pg'].map((p) => [p, packageVersion(p)])),
    gaffer: gafferVersion(),
  };
}

export interface RunInfo {
  date: string;
  smoke: boolean;
  n: number;
  concurrency: number;
  batchSize: number;
  latencyWarmup: number;
  latencySamples: number;
  postgresSetup: string | null;
  redisSetup: string | null;
  wallSeconds: number;
  /** The machine's 1-minute load average when the run started and when it ended: other work skews the figures. */
  loadAverage: { start: number; end: number };
}

const num = (v: number): string => {
  if (!Number.isFinite(v)) return String(v);
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
};
const ratio = (v: number | null): string => (v === null ? '–' : `${v >= 10 ? v.toFixed(1) : v.toFixed(2)}×`);

export function renderMarkdown(machine: Machine, run: RunInfo, results: SystemResult[]): string {
  const r = ratios(results);
  const lines: string[] = [];
  lines.push(`# Gaffer benchmark: ${run.date.slice(0, 10)} on ${machine.host}${run.smoke ? ' (smoke run: figures mean nothing)' : ''}`, '');
  lines.push('## Machine', '', '| | |', '| --- | --- |');
  lines.push(`| CPU | ${machine.cpu}, ${machine.cores} cores |`);
  lines.push(`| Memory | ${machine.memoryGiB} GiB |`);
  lines.push(`| OS | ${machine.os} |`);
  lines.push(`| Node.js | ${machine.node} |`);
  if (machine.postgres) lines.push(`| PostgreSQL | ${machine.postgres}${run.postgresSetup ? `: ${run.postgresSetup}` : ''} |`);
  if (machine.redis) lines.push(`| Redis | ${machine.redis}${run.redisSetup ? `: ${run.redisSetup}` : ''} |`);
  lines.push(`| Peers | ${Object.entries(machine.packages).map(([k, v]) => `${k} ${v}`).join(', ')} |`);
  lines.push(`| Gaffer | ${machine.gaffer} |`);
  lines.push(`| Load average (1 min) | ${run.loadAverage.start.toFixed(2)} at the start, ${run.loadAverage.end.toFixed(2)} at the end |`, '');
  lines.push('## Workload', '');
  lines.push(
    `${run.n.toLocaleString('en-US')} no-op jobs (payload \`{"i": n}\`) enqueued in batches of ${run.batchSize} by one producer in the bench process, ` +
      `consumed by one worker process with at most ${run.concurrency} jobs in flight; latency over ${run.latencySamples} sequential jobs after ${run.latencyWarmup} warm-up jobs. ` +
      `Each system starts from an empty database (or an emptied Redis). The whole run took ${Math.round(run.wallSeconds)} s.`,
    '',
  );
  lines.push('## Results', '');
  lines.push('Each cell: the figure, then its ratio to the best peer (peers: every system but Gaffer). For rates higher is better; for latency lower is better, so a latency ratio above 1× is slower than the best peer.', '');
  lines.push(`| system | store | ${FIGURES.map((f) => f.title).join(' | ')} |`);
  lines.push(`| --- | --- | ${FIGURES.map(() => '---:').join(' | ')} |`);
  for (const res of results) {
    const cells = FIGURES.map((f) => `${num(figure(res, f.key))} (${ratio(r[res.id]![f.key])})`);
    lines.push(`| ${res.gaffer ? `**${res.label}**` : res.label} | ${res.store} | ${cells.join(' | ')} |`);
  }
  lines.push('');
  const issue = performanceIssueBars(results);
  if (issue.length > 0) {
    lines.push('## Against the bars of the performance issue', '');
    for (const b of issue) lines.push(`- ${b}`);
    lines.push('');
  }
  const bars = qualityBars(results);
  if (bars.length > 0) {
    lines.push('## Against the quality bars (DESIGN.md section 7)', '');
    for (const b of bars) lines.push(`- ${b}`);
    lines.push('');
  }
  lines.push('## How each system runs', '');
  for (const res of results) lines.push(`- **${res.label}** on ${res.store}: ${res.setup}.`);
  lines.push('');
  lines.push('## What each figure means', '');
  lines.push(
    '- **enqueue**: N jobs over the time the producer took to enqueue them, one batch call after another (each awaited), with no worker running.',
    '- **drain**: those N jobs over the time from the worker process starting its consumer (connections it can open ahead are open) to the system having recorded the N-th completion, measured in the worker process. PostgreSQL tables that hold rows are ANALYZEd between enqueue and drain, outside both timings (an empty table is left to autovacuum, as statistics that say \"empty\" make the planner scan it sequentially while it fills).',
    '- **end-to-end**: with the consumer already running and idle, N more jobs over the time from the first enqueue call to the worker process reporting the N-th recorded completion (measured in the bench process: submit, dispatch and complete, overlapped).',
    '- **latency p50 / p99**: one job at a time on an otherwise idle system, from just before the submit call to the first line of the handler, both read on one clock in one process (the worker process runs its own producer for this); the next job is submitted once the previous completion is recorded.',
    '- **recorded completion**: Gaffer, the coordinator\'s ack of the result (sent after the store commits it); BullMQ, the Worker\'s `completed` event (after Redis moved the job); graphile-worker and pg-boss, the handler returned and the store then shows no job of the queue unfinished.',
    '',
  );
  return lines.join('\n');
}

/**
 * The bars of the performance issue (docs/performance.md), as measured in this
 * run: rates at least 1.0x the best peer (on PostgreSQL, the best PostgreSQL
 * peer); submit-to-start on the embedded store at most 1.5x the best peer's
 * p50 and p99; on PostgreSQL a p50 at most graphile-worker's.
 */
export function performanceIssueBars(results: SystemResult[]): string[] {
  const out: string[] = [];
  const peers = results.filter((r) => !r.gaffer);
  const pgPeers = peers.filter((r) => r.store === 'PostgreSQL');
  const mark = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const rate = (g: SystemResult | undefined, among: SystemResult[], key: 'e2eRate' | 'drainRate', what: string): void => {
    const b = best(among, key);
    if (!g || b === null || b === 0) return;
    const x = g[key] / b;
    out.push(`${what} at least 1.0× the best ${among === pgPeers ? 'PostgreSQL peer' : 'peer'}: ${x.toFixed(2)}× (${mark(x >= 1)}).`);
  };
  const sqlite = results.find((r) => r.id === 'gaffer-sqlite');
  const onPg = results.find((r) => r.id === 'gaffer-pg');
  rate(sqlite, peers, 'e2eRate', 'End to end on the embedded store');
  rate(onPg, pgPeers, 'e2eRate', 'End to end on PostgreSQL');
  rate(sqlite, peers, 'drainRate', 'Drain on the embedded store');
  rate(onPg, pgPeers, 'drainRate', 'Drain on PostgreSQL');
  const p50 = best(peers, 'p50Ms');
  const p99 = best(peers, 'p99Ms');
  if (sqlite && p50 !== null && p99 !== null && p50 > 0 && p99 > 0) {
    const a = sqlite.latency.p50Ms / p50;
    const b = sqlite.latency.p99Ms / p99;
    out.push(`Submit-to-start on the embedded store at most 1.5× the best peer's p50 and p99: ${a.toFixed(2)}× and ${b.toFixed(2)}× (${mark(a <= 1.5 && b <= 1.5)}).`);
  }
  const graphile = results.find((r) => r.id === 'graphile-worker');
  if (onPg && graphile) {
    const x = onPg.latency.p50Ms / graphile.latency.p50Ms;
    out.push(`Submit-to-start p50 on PostgreSQL at most graphile-worker's: ${num(onPg.latency.p50Ms)} ms against ${num(graphile.latency.p50Ms)} ms, ${x.toFixed(2)}× (${mark(x <= 1)}).`);
  }
  return out;
}

/** DESIGN.md section 7's performance bars, as measured in this run. */
export function qualityBars(results: SystemResult[]): string[] {
  const out: string[] = [];
  const peers = results.filter((r) => !r.gaffer);
  const pgPeers = peers.filter((r) => r.store === 'PostgreSQL');
  const sqlite = results.find((r) => r.id === 'gaffer-sqlite');
  const onPg = results.find((r) => r.id === 'gaffer-pg');
  const mark = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const bestPeer = best(peers, 'e2eRate');
  if (sqlite && bestPeer !== null) {
    const x = sqlite.e2eRate / bestPeer;
    out.push(`End-to-end on the embedded store at least 2× the fastest peer: ${x.toFixed(2)}× (${mark(x >= 2)}).`);
  }
  const normal = results.find((r) => r.id === 'gaffer-sqlite-normal');
  if (normal && bestPeer !== null) {
    out.push(`(For comparison, not a bar: on SQLite without an fsync per commit, ${(normal.e2eRate / bestPeer).toFixed(2)}× the fastest peer end-to-end, latency p50 ${num(normal.latency.p50Ms)} ms.)`);
  }
  const noHistory = results.find((r) => r.id === 'gaffer-sqlite-nohistory');
  if (sqlite && noHistory) {
    const x = sqlite.e2eRate / noHistory.e2eRate;
    out.push(`Queue history costs the hot path at most 5 % (end-to-end with it on over with it off, same run): ${x.toFixed(2)}× (${mark(x >= 0.95)}).`);
  }
  const bestPg = best(pgPeers, 'e2eRate');
  if (onPg && bestPg !== null) {
    const x = onPg.e2eRate / bestPg;
    out.push(`End-to-end on PostgreSQL at least the fastest PostgreSQL peer: ${x.toFixed(2)}× (${mark(x >= 1)}).`);
  }
  for (const g of [sqlite, onPg]) {
    if (!g) continue;
    const ok = g.latency.p50Ms <= 0.5 && g.latency.p99Ms <= 2;
    out.push(`Submit-to-start latency on ${g.store} p50 ≤ 0.5 ms and p99 ≤ 2 ms: p50 ${num(g.latency.p50Ms)} ms, p99 ${num(g.latency.p99Ms)} ms (${mark(ok)}).`);
  }
  return out;
}

export function renderJson(machine: Machine, run: RunInfo, results: SystemResult[]): string {
  return `${JSON.stringify({ machine, run, results, ratiosToBestPeer: ratios(results) }, null, 2)}\n`;
}
