// The scheduling simulator: a scenario run in virtual time under Gaffer's
// policy (place) and under the baselines (FIFO, and two variants of Lotus'
// assigner), on the same workload and the same fault schedule, measured
// against a lower bound on the makespan.
import { place } from '../scheduler/index.ts';
import { SCHEDULING_DEFAULTS } from '../types/limits.ts';
import { lowerBound, type LowerBound } from './bound.ts';
import { Downtime } from './downtime.ts';
import { runScenario } from './engine.ts';
import { fifoPlace } from './fifo.ts';
import { lotusPlace } from './lotus.ts';
import type { Fault, Policy, RunResult } from './model.ts';
import { makeScenario, SCENARIOS } from './scenarios.ts';
import { farmScenario, farmSummary, type Farm } from './farm.ts';

export { lowerBound, resourceClasses, type LowerBound } from './bound.ts';
export { runScenario, SIM_START_MS } from './engine.ts';
export { fifoPlace } from './fifo.ts';
export { lotusPlace, type LotusVariant } from './lotus.ts';
export type { Fault, Policy, RunResult, Scenario, SimJob, SimQueue, SimWorker } from './model.ts';
export { makeScenario, SCENARIOS } from './scenarios.ts';
export { farmScenario, farmSummary, parseFarm, type Farm } from './farm.ts';

export const POLICIES: readonly Policy[] = [
  { name: 'gaffer', place: (input) => place(input), hinted: (input, hints) => place(input, SCHEDULING_DEFAULTS, hints) },
  { name: 'fifo', place: fifoPlace },
  { name: 'lotus-util', place: lotusPlace('utilization') },
  { name: 'lotus-spread', place: lotusPlace('spread') },
];

export interface SimulateOptions {
  /** A built-in scenario's name; ignored when `farm` is given. */
  scenario: string;
  /** The user's own farm (`gaffer simulate --config`), run instead of a built-in scenario. */
  farm?: Farm;
  seed: number;
  size?: number;
  faults?: boolean;
  /** True (prover-burst): two more workers hang for a while, heartbeating while their attempts stand still. */
  stalls?: boolean;
  /** True: the coordinator's speculative backups run, with its default settings. Default false: the figures compare placement alone. */
  speculation?: boolean;
}

export interface PolicyFigures extends RunResult {
  /**
   * The lower bound of the jobs this run completed, with the seed's faults:
   * the same as the scenario's unless jobs expired unstarted (or failed),
   * which did no work.
   */
  lowerBoundMs: number;
  /** makespan / lowerBoundMs: 1 is the best any scheduler could do against the same faults. */
  ratio: number;
  /** The same jobs' bound without the faults, and makespan over it. */
  faultFreeBoundMs: number;
  faultFreeRatio: number;
}

export interface SimulationReport {
  scenario: string;
  summary: string;
  seed: number;
  size: number;
  unit: string;
  /** The fault schedule every policy ran under. */
  faults: Fault[];
  /** Whether speculative backups ran. */
  speculation: boolean;
  /** Of the whole workload, fault-free. */
  lowerBound: LowerBound;
  /** Of the whole workload, with the seed's faults (downtime.ts): what no schedule that meets them can beat. */
  faultBound: LowerBound;
  /** The resource class whose utilisation the table shows: the most loaded one (largest work over capacity). */
  bottleneck: string;
  policies: PolicyFigures[];
}

export async function simulate(o: SimulateOptions): Promise<SimulationReport> {
  if (o.farm !== undefined && o.stalls === true) throw new Error('stalls apply to the prover-burst scenario, not to a farm file');
  const scenario = o.farm !== undefined ? farmScenario(o.farm, o) : makeScenario(o.scenario, o);
  const info = o.farm !== undefined ? { summary: farmSummary(o.farm), unit: o.farm.unit } : SCENARIOS[o.scenario]!;
  const down = new Downtime(scenario);
  const bound = lowerBound(scenario);
  const faultBound = down.none ? bound : lowerBound(scenario, down);
  const policies: PolicyFigures[] = [];
  for (const policy of POLICIES) {
    const r = await runScenario(scenario, policy, { speculation: o.speculation === true });
    const dropped = new Set(r.unfinished);
    const done = { ...scenario, jobs: scenario.jobs.filter((j) => !dropped.has(j.key)) };
    const faultFreeBoundMs = dropped.size === 0 ? bound.ms : lowerBound(done).ms;
    const lowerBoundMs = dropped.size === 0 ? faultBound.ms : down.none ? faultFreeBoundMs : lowerBound(done, down).ms;
    const over = (b: number): number => (b > 0 ? r.makespanMs / b : 1);
    policies.push({ ...r, lowerBoundMs, ratio: over(lowerBoundMs), faultFreeBoundMs, faultFreeRatio: over(faultFreeBoundMs) });
  }
  const bottleneck = [...bound.classes].sort((a, b) => b.workMs / b.capacity - a.workMs / a.capacity)[0]?.name ?? '';
  return {
    scenario: scenario.name,
    summary: info.summary,
    seed: scenario.seed,
    size: scenario.size,
    unit: info.unit,
    faults: scenario.faults,
    speculation: o.speculation === true,
    lowerBound: bound,
    faultBound,
    bottleneck,
    policies,
  };
}

// ---- The table ----

/** 4h 05m, 3m 20s, 12.5s or 250 ms. */
export function formatDuration(ms: number): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  if (ms >= 3_600_000) {
    const m = Math.round(ms / 60_000);
    return `${Math.floor(m / 60)}h ${two(m % 60)}m`;
  }
  if (ms >= 60_000) {
    const s = Math.round(ms / 1000);
    return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  }
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.round(ms)} ms`;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function faultLine(f: Fault): string {
  return `${f.kind} ${f.worker} at ${formatDuration(f.atMs)} for ${formatDuration(f.durationMs)}`;
}

export function formatReport(r: SimulationReport): string {
  const lb = r.lowerBound;
  const rows: [string, (p: PolicyFigures) => string][] = [
    ['makespan', (p) => formatDuration(p.makespanMs)],
    ['lower bound (jobs completed, faults)', (p) => formatDuration(p.lowerBoundMs)],
    ['makespan / lower bound', (p) => p.ratio.toFixed(3)],
    ...(r.faults.length > 0 ? [['makespan / fault-free bound', (p: PolicyFigures) => p.faultFreeRatio.toFixed(3)] as [string, (p: PolicyFigures) => string]] : []),
    [`utilisation (${r.bottleneck})`, (p) => pct(p.utilisation[r.bottleneck] ?? 0)],
    ['deadline misses', (p) => `${p.deadlines.missed} / ${p.deadlines.total}`],
    ['wait p50 (ready to leased)', (p) => formatDuration(p.waitMs.p50)],
    ['wait p99', (p) => formatDuration(p.waitMs.p99)],
    ['attempts (lost, stale)', (p) => `${p.attempts.total} (${p.attempts.lost}, ${p.attempts.stale})`],
    ...(r.speculation ? [['backup attempts', (p: PolicyFigures) => String(p.attempts.backups)] as [string, (p: PolicyFigures) => string]] : []),
    ['jobs succeeded / expired / failed', (p) => `${p.jobs.succeeded} / ${p.jobs.expired} / ${p.jobs.failed}`],
    r.faults.some((f) => f.kind === 'hang')
      ? ['faults injected (stall, leave, hang)', (p) => `${p.faults.stall + p.faults.leave + p.faults.hang} (${p.faults.stall}, ${p.faults.leave}, ${p.faults.hang})`]
      : ['faults injected (stall, leave)', (p) => `${p.faults.stall + p.faults.leave} (${p.faults.stall}, ${p.faults.leave})`],
  ];
  const header = ['figure', ...r.policies.map((p) => p.policy)];
  const body = rows.map(([name, f]) => [name, ...r.policies.map(f)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const binding = lb.binding === 'critical path' ? 'the critical path' : lb.binding;
  return [
    `scenario ${r.scenario}: ${r.summary}`,
    `${r.size} ${r.unit}, seed ${r.seed}`,
    `faults: ${r.faults.length === 0 ? 'none' : r.faults.map(faultLine).join('; ')}`,
    ...(r.speculation ? ['speculative backups: on (the coordinator\'s defaults)'] : []),
    `lower bound: ${formatDuration(lb.ms)}, set by ${binding} (critical path ${formatDuration(lb.criticalPathMs)}); fault-free, all jobs`,
    ...(r.faults.length > 0 ? [`with the faults: ${formatDuration(r.faultBound.ms)}, set by ${r.faultBound.binding === 'critical path' ? 'the critical path' : r.faultBound.binding}`] : []),
    '',
    line(header),
    rule,
    ...body.map(line),
  ].join('\n');
}
