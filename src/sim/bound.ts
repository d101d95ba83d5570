// A lower bound on the makespan of a scenario's workload, whatever the
// scheduler does (docs/simulator.md, "The lower bound"). It ignores faults,
// affinity and which worker a job lands on, so no schedule can beat it:
//
// - Critical path: every chain of dependencies, each job at the fastest
//   factor any worker has for its queue, starting no earlier than its release.
// - Work over capacity, per resource class (the slots of one queue, or GPUs,
//   cores or memory shared by several queues): a worker with `u` units and
//   factor `f` does at most u/f units of reference work per unit of time. The
//   class's work cannot start before the earliest a job of it can start
//   (head) nor end later than the end minus the shortest chain that must
//   still follow it (tail): bound = head + work / capacity + tail, taken over
//   every subset of the class's jobs that starts at or after a time t, and
//   every subset with a tail of at least l.
// - Whole jobs, per queue: a slot runs one job at a time, so in a window of
//   length W a slot of a worker with factor f completes at most
//   floor(W / (d f)) jobs, d the queue's shortest reference run time. The
//   window between head and tail must be long enough for the slots to hold
//   every job of the queue. This is what makes 32 jobs of 3.5 hours on 23
//   slots take two rounds, where work over capacity counts 1.4.
import { assert } from '../types/errors.ts';
import type { Requires } from '../types/model.ts';
import { NO_DOWNTIME, slotEndMs, supplyOf, workEndMs, type DownWindow, type Downtime, type Supply } from './downtime.ts';
import { localityBound } from './locality.ts';
import type { Scenario, SimJob, SimQueue, SimWorker } from './model.ts';

/** Units of a resource that jobs of several queues take from one worker. */
export interface ResourceClass {
  name: string;
  queues: string[];
  /** Units one job of each queue takes. */
  demand: Record<string, number>;
  /** Units per worker that serves at least one of the queues. */
  units: Record<string, number>;
  /** Per worker: its smallest run-time factor over the class's queues it serves. */
  factor: Record<string, number>;
}

export interface ClassBound {
  name: string;
  /** Which argument set the class's bound: work over capacity, or whole jobs per slot. */
  by: 'work' | 'whole jobs';
  /** Reference work the class's jobs need: units times reference run time, in unit-ms. */
  workMs: number;
  /** Units of reference work the pool does per ms: the sum over workers of units / factor. */
  capacity: number;
  boundMs: number;
}

export interface LowerBound {
  ms: number;
  /** `critical path`, or the class whose bound is the largest, with the argument that set it: `seal.pc1 slots (whole jobs)`. */
  binding: string;
  criticalPathMs: number;
  /** The locality bound (locality.ts): groups of jobs tied to one worker's slots and bays; 0 without such groups. */
  localityMs: number;
  classes: ClassBound[];
}

const RESOURCES = [
  { key: 'gpus', name: 'gpus' },
  { key: 'cores', name: 'cores' },
  { key: 'memoryMb', name: 'memory' },
] as const;

export function factorOf(w: SimWorker, queue: string): number {
  return w.factor[queue] ?? 1;
}

/** How many jobs of the queue the worker can run at once: its slots, or fewer if cores, memory or GPUs run out first. */
export function concurrency(w: SimWorker, queue: string, q: SimQueue): number {
  const slots = w.queues[queue] ?? 0;
  const r = q.requires;
  const labelled = Object.entries(r.labels).every(([k, v]) => w.labels[k] === v);
  if (!labelled) return 0;
  const per = (have: number, need: number): number => (need > 0 ? Math.floor(have / need) : Infinity);
  return Math.min(slots, per(w.cores, r.cores), per(w.memoryMb, r.memoryMb), per(w.gpus, r.gpus));
}

/** One class per queue (its slots), and one per resource that two or more queues take. */
export function resourceClasses(queues: Record<string, SimQueue>, workers: readonly SimWorker[]): ResourceClass[] {
  const out: ResourceClass[] = [];
  for (const [name, q] of Object.entries(queues)) {
    const units: Record<string, number> = {};
    const factor: Record<string, number> = {};
    for (const w of workers) {
      const n = concurrency(w, name, q);
      if (n > 0) (units[w.name] = n), (factor[w.name] = factorOf(w, name));
    }
    out.push({ name: `${name} slots`, queues: [name], demand: { [name]: 1 }, units, factor });
  }
  for (const { key, name } of RESOURCES) {
    const using = Object.entries(queues).filter(([, q]) => q.requires[key as keyof Requires] as number > 0);
    if (using.length < 2) continue;
    const units: Record<string, number> = {};
    const factor: Record<string, number> = {};
    for (const w of workers) {
      const served = using.filter(([qn, q]) => concurrency(w, qn, q) > 0);
      if (served.length === 0) continue;
      units[w.name] = w[key];
      factor[w.name] = Math.min(...served.map(([qn]) => factorOf(w, qn)));
    }
    const demand = Object.fromEntries(using.map(([qn, q]) => [qn, q.requires[key as keyof Requires] as number]));
    out.push({ name, queues: using.map(([qn]) => qn), demand, units, factor });
  }
  return out;
}

/** Earliest start and finish of every job at the fastest factors, and the longest chain after it. */
export interface Timing {
  fastMs: number;
  startMs: number;
  finishMs: number;
  tailMs: number;
}

export function timings(s: Pick<Scenario, 'queues' | 'workers' | 'jobs'>): Map<string, Timing> {
  const fastest = new Map<string, number>();
  for (const [name, q] of Object.entries(s.queues)) {
    const factors = s.workers.filter((w) => concurrency(w, name, q) > 0).map((w) => factorOf(w, name));
    if (factors.length > 0) fastest.set(name, Math.min(...factors));
  }
  const out = new Map<string, Timing>();
  const children = new Map<string, SimJob[]>();
  for (const j of s.jobs) {
    const f = fastest.get(j.queue);
    assert(f !== undefined, `some worker can run queue ${j.queue} (job ${j.key})`);
    let startMs = j.releaseMs;
    for (const p of j.parents) {
      const t = out.get(p);
      assert(t !== undefined, `job ${j.key}: parent ${p} comes before it`);
      startMs = Math.max(startMs, t.finishMs);
      const siblings = children.get(p);
      if (siblings) siblings.push(j);
      else children.set(p, [j]);
    }
    const fastMs = j.baseMs * f;
    out.set(j.key, { fastMs, startMs, finishMs: startMs + fastMs, tailMs: 0 });
  }
  for (let i = s.jobs.length - 1; i >= 0; i--) {
    const j = s.jobs[i]!;
    const t = out.get(j.key)!;
    for (const c of children.get(j.key) ?? []) {
      const tc = out.get(c.key)!;
      t.tailMs = Math.max(t.tailMs, tc.fastMs + tc.tailMs);
    }
  }
  return out;
}

interface Item {
  startMs: number;
  tailMs: number;
  workMs: number;
}

/** The largest head + work / capacity + tail over the subsets the two sweeps consider (the work done only while workers are up). */
function classBound(items: Item[], capacity: number, supply: readonly Supply[]): number {
  let best = 0;
  // Jobs that can start no earlier than t: their work fits between t and the end minus their shortest tail.
  let work = 0;
  let minTail = Infinity;
  for (const it of [...items].sort((a, b) => b.startMs - a.startMs)) {
    work += it.workMs;
    minTail = Math.min(minTail, it.tailMs);
    best = Math.max(best, workEndMs(it.startMs, work, supply, capacity) + minTail);
  }
  // Jobs followed by a chain of at least l: their work fits between their earliest start and the end minus l.
  work = 0;
  let minStart = Infinity;
  for (const it of [...items].sort((a, b) => b.tailMs - a.tailMs)) {
    work += it.workMs;
    minStart = Math.min(minStart, it.startMs);
    best = Math.max(best, workEndMs(minStart, work, supply, capacity) + it.tailMs);
  }
  return best;
}

/**
 * The shortest window in which the slots (units and factor per worker) can
 * complete `count` jobs of at least `shortestMs` each, one at a time per slot.
 */
export function wholeJobsWindowMs(count: number, shortestMs: number, units: Record<string, number>, factor: Record<string, number>): number {
  if (count === 0) return 0;
  // The number of jobs that fit grows only at the ends of whole jobs: k jobs of a slot end at k * shortestMs * f.
  return whenSlotsHold(count, units, (w, k) => k * shortestMs * factor[w]!);
}

/** The first time at which the slots, the k-th job of each of worker w's ending at endMs(w, k), have ended `count` jobs. */
function whenSlotsHold(count: number, units: Record<string, number>, endMs: (w: string, k: number) => number): number {
  const steps: { atMs: number; slots: number }[] = [];
  for (const [w, u] of Object.entries(units)) {
    for (let k = 1; k <= count; k++) steps.push({ atMs: endMs(w, k), slots: u });
  }
  steps.sort((a, b) => a.atMs - b.atMs);
  let fitted = 0;
  for (const s of steps) {
    fitted += s.slots;
    if (fitted >= count) return s.atMs;
  }
  return Infinity;
}

/**
 * The earliest the slots can end `count` jobs of at least `shortestMs` each,
 * none starting before `headMs`, each worker's slots idle in its windows.
 */
export function wholeJobsEndMs(
  count: number,
  shortestMs: number,
  headMs: number,
  units: Record<string, number>,
  factor: Record<string, number>,
  windows: Record<string, readonly DownWindow[]>,
): number {
  if (Object.values(windows).every((w) => w.length === 0)) return headMs + wholeJobsWindowMs(count, shortestMs, units, factor);
  if (count === 0) return headMs;
  return whenSlotsHold(count, units, (w, k) => slotEndMs(headMs, k, shortestMs, factor[w]!, windows[w] ?? []));
}

/**
 * The bound of the workload; with `down` (the seed's faults, downtime.ts),
 * the bound for every schedule that meets those faults.
 */
export function lowerBound(s: Pick<Scenario, 'queues' | 'workers' | 'jobs'>, down: Downtime = NO_DOWNTIME): LowerBound {
  const t = timings(s);
  let criticalPathMs = 0;
  for (const x of t.values()) criticalPathMs = Math.max(criticalPathMs, x.finishMs);
  const classes: ClassBound[] = [];
  for (const rc of resourceClasses(s.queues, s.workers)) {
    const capacity = Object.keys(rc.units).reduce((sum, w) => sum + rc.units[w]! / rc.factor[w]!, 0);
    const supply = supplyOf(rc.units, rc.factor, s.workers, down);
    // With windows, a job's work counts as its rounded run time can make it (half a millisecond less, at the
    // fastest factor), so that rounding never moves the work's end across a window.
    const windowed = supply.some((x) => x.windows.length > 0);
    const slackPerUnitMs = windowed ? 0.5 / Math.min(...Object.values(rc.factor)) : 0;
    const items: Item[] = s.jobs
      .filter((j) => rc.queues.includes(j.queue))
      .map((j) => {
        const x = t.get(j.key)!;
        const units = rc.demand[j.queue] ?? 0;
        return { startMs: x.startMs, tailMs: x.tailMs, workMs: units * Math.max(0, j.baseMs - slackPerUnitMs) };
      });
    if (items.length === 0 || capacity === 0) continue;
    const workMs = items.reduce((sum, it) => sum + it.workMs, 0);
    const byWork = classBound(items, capacity, supply);
    let byWhole = 0;
    if (rc.queues.length === 1) {
      const head = Math.min(...items.map((it) => it.startMs));
      const tail = Math.min(...items.map((it) => it.tailMs));
      const shortest = Math.min(...s.jobs.filter((j) => j.queue === rc.queues[0]).map((j) => j.baseMs));
      const windows = Object.fromEntries(Object.keys(rc.units).map((w) => [w, down.windows(w, rc.queues[0])]));
      byWhole = wholeJobsEndMs(items.length, shortest, head, rc.units, rc.factor, windows) + tail;
    }
    const by = byWhole > byWork ? 'whole jobs' : 'work';
    classes.push({ name: rc.name, by, workMs, capacity, boundMs: Math.max(byWork, byWhole) });
  }
  let ms = criticalPathMs;
  let binding = 'critical path';
  for (const c of classes) if (c.boundMs > ms) (ms = c.boundMs), (binding = `${c.name} (${c.by})`);
  const localityMs = localityBound(s, t, down);
  if (localityMs > ms) (ms = localityMs), (binding = 'locality (each worker\'s own slots and bays)');
  return { ms, binding, criticalPathMs, localityMs, classes };
}
