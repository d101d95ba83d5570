// One scenario over a range of seeds, every policy: median and worst of each
// figure over the seeds (docs/simulator.md, "Measured figures"). The runs are
// the same as `simulate` makes seed by seed, so each row replays.
import { LIMITS } from '../types/limits.ts';
import { percentile } from './engine.ts';
import { formatDuration, simulate, type SimulateOptions, type SimulationReport } from './index.ts';


export interface SeedSweepOptions extends Omit<SimulateOptions, 'seed'> {
  firstSeed: number;
  lastSeed: number;
}

export interface PolicySpread {
  policy: string;
  makespanMs: { median: number; worst: number };
  ratio: { median: number; worst: number };
  /** Makespan over the fault-free bound of the same jobs. */
  faultFreeRatio: { median: number; worst: number };
  deadlineMisses: { median: number; worst: number; total: number };
  /** Seeds on which this policy's makespan is shorter than every other policy's, and longer than some other's. */
  seedsBest: number;
  /** For each other policy: the seeds on which this one ended later than it. */
  seedsWorseThan: Record<string, number>;
}

export interface SeedSweep {
  scenario: string;
  seeds: number[];
  faults: boolean;
  stalls: boolean;
  speculation: boolean;
  /** The fault-free bound of the whole workload: median and worst (largest) over the seeds. */
  lowerBoundMs: { median: number; worst: number };
  /** The same with each seed's faults. */
  faultBoundMs: { median: number; worst: number };
  binding: string;
  policies: PolicySpread[];
}

export async function simulateSeeds(o: SeedSweepOptions): Promise<SeedSweep> {
  if (!(o.firstSeed <= o.lastSeed && o.lastSeed - o.firstSeed < LIMITS.simulateSeedsMax)) {
    throw new Error(`seeds must run from a first to a last, at most ${LIMITS.simulateSeedsMax} of them (got ${o.firstSeed}-${o.lastSeed})`);
  }
  const reports: SimulationReport[] = [];
  for (let seed = o.firstSeed; seed <= o.lastSeed; seed++) reports.push(await simulate({ ...o, seed }));
  const names = reports[0]!.policies.map((p) => p.policy);
  const mid = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);
  const worst = (xs: number[]): number => Math.max(...xs);
  const policies = names.map((name, i): PolicySpread => {
    const runs = reports.map((r) => r.policies[i]!);
    const spans = runs.map((p) => p.makespanMs);
    const misses = runs.map((p) => p.deadlines.missed);
    const seedsWorseThan: Record<string, number> = {};
    names.forEach((other, k) => {
      if (k !== i) seedsWorseThan[other] = reports.filter((r) => r.policies[i]!.makespanMs > r.policies[k]!.makespanMs).length;
    });
    const seedsBest = reports.filter((r) => r.policies.every((p, k) => k === i || r.policies[i]!.makespanMs < p.makespanMs)).length;
    return {
      policy: name,
      makespanMs: { median: mid(spans), worst: worst(spans) },
      ratio: { median: mid(runs.map((p) => p.ratio)), worst: worst(runs.map((p) => p.ratio)) },
      faultFreeRatio: { median: mid(runs.map((p) => p.faultFreeRatio)), worst: worst(runs.map((p) => p.faultFreeRatio)) },
      deadlineMisses: { median: mid(misses), worst: worst(misses), total: mid(runs.map((p) => p.deadlines.total)) },
      seedsBest,
      seedsWorseThan,
    };
  });
  const bounds = reports.map((r) => r.lowerBound.ms);
  const faultBounds = reports.map((r) => r.faultBound.ms);
  return {
    scenario: reports[0]!.scenario,
    seeds: reports.map((r) => r.seed),
    faults: o.faults ?? true,
    stalls: o.stalls === true,
    speculation: o.speculation === true,
    lowerBoundMs: { median: mid(bounds), worst: worst(bounds) },
    faultBoundMs: { median: mid(faultBounds), worst: worst(faultBounds) },
    binding: reports[0]!.lowerBound.binding,
    policies,
  };
}

/** The sweep as a Markdown table, one row per policy. */
export function formatSeedSweep(s: SeedSweep): string {
  const header = ['policy', 'makespan median', 'worst', 'makespan / bound median', 'worst', ...(s.faults ? ['over fault-free bound median', 'worst'] : []), 'deadline misses median', 'worst', 'seeds best'];
  const rows = s.policies.map((p) => [
    p.policy,
    formatDuration(p.makespanMs.median),
    formatDuration(p.makespanMs.worst),
    p.ratio.median.toFixed(3),
    p.ratio.worst.toFixed(3),
    ...(s.faults ? [p.faultFreeRatio.median.toFixed(3), p.faultFreeRatio.worst.toFixed(3)] : []),
    String(p.deadlineMisses.median),
    String(p.deadlineMisses.worst),
    `${p.seedsBest} / ${s.seeds.length}`,
  ]);
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  const first = s.seeds[0]!;
  const last = s.seeds[s.seeds.length - 1]!;
  return [
    `scenario ${s.scenario}, seeds ${first}-${last}, ${s.faults ? 'with' : 'without'} faults${s.stalls ? ', with hanging workers' : ''}${s.speculation ? ', with speculative backups' : ''}`,
    `lower bound (fault-free, all jobs): median ${formatDuration(s.lowerBoundMs.median)}, largest ${formatDuration(s.lowerBoundMs.worst)}; set by ${s.binding} on seed ${first}`,
    ...(s.faults ? [`with each seed's faults: median ${formatDuration(s.faultBoundMs.median)}, largest ${formatDuration(s.faultBoundMs.worst)}`] : []),
    '',
    line(header),
    line(header.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows.map(line),
    '',
    ...s.policies.map((p) => `${p.policy} ended later than ${Object.entries(p.seedsWorseThan).map(([o, n]) => `${o} on ${n}`).join(', ')} of ${s.seeds.length} seeds`),
  ].join('\n');
}
