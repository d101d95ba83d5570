// The placement decision (the PlaceFn): which candidate goes to which worker.
// Pure: it reads its input, copies the workers' tallies, and returns placements.
//
// Candidates go in compareCandidates order. Each attempt a candidate wants goes
// to the best worker that fits (in a large pool, among the
// placementCandidatesMax chosen by rendezvous hashing: candidateSet), does not
// yet hold an attempt of that job and, with hints (hints.ts), admits it (pipeline.ts: a slot of its followers'
// queue in sight there): first a worker holding the affinity key, then, for a
// job whose deadline is near (SCHEDULING_DEFAULTS.deadlineUrgentMs) or a
// speculative backup, the fastest by its measured reliability-check time,
// then, with measured run times, the fastest for its queue and followers, then
// the least utilised (on the running tally, so equal workers take turns), then
// more free cores, then the smaller worker id. A candidate that fits nowhere
// is skipped; the scan goes on. A lone attempt that a busy worker is expected
// to finish sooner than its best worker now is held back (sooner.ts).
import { assert } from '../types/errors.ts';
import { LIMITS, SCHEDULING_DEFAULTS } from '../types/limits.ts';
import { unitHash } from '../types/hash.ts';
import type { Candidate, PlaceInput, Placement, WorkerCapacity } from '../types/model.ts';
import { assertInput, assertOutput, assertWorker } from './check.ts';
import { fits, freeSlotsFor, holdsAffinityKey } from './fit.ts';
import { NO_HINTS, type SchedulingHints } from './hints.ts';
import { compareIds, sortCandidates, type SchedulingPolicy } from './order.ts';
import { Pipeline } from './pipeline.ts';
import { SoonerFinish } from './sooner.ts';

export function place(input: PlaceInput, policy: SchedulingPolicy = SCHEDULING_DEFAULTS, hints: SchedulingHints = NO_HINTS): Placement[] {
  assertInput(input);
  // Workers with no free slot can take nothing: leave them out of every scan
  // (with a thousand workers and a backlog, nearly all of them are full).
  const tallies = input.workers.filter(hasFreeSlot).map(copyTally);
  const limit = Math.min(input.maxPlacements, totalFreeSlots(tallies));
  const placements: Placement[] = [];
  const pipeline = new Pipeline(hints, input.candidates, tallies, input.now);
  const sooner = new SoonerFinish(hints, input.workers, input.now, pipeline);
  for (const c of sortCandidates(input.candidates, input.now, policy)) {
    if (placements.length >= limit) break;
    const urgent = c.backup === true || (c.deadline !== null && c.deadline - input.now <= policy.deadlineUrgentMs);
    placeCandidate(c, tallies, limit - placements.length, placements, { urgent, pipeline, sooner });
  }
  assertOutput(input, placements);
  return placements;
}

/** Places up to `budget` attempts of one candidate, each on a different worker (and operator, when it spreads over them). */
function placeCandidate(c: Candidate, tallies: WorkerCapacity[], budget: number, out: Placement[], how: Ranking): void {
  const taken = new Set<string>();
  const attempts = Math.min(c.want, budget);
  const spread = c.spreadOperators === true && attempts > 1;
  const pool = spread ? [...tallies] : tallies;
  for (let i = 0; i < attempts; i++) {
    const w = chooseWorker(c, pool, taken, how);
    if (w === undefined) return;
    if (attempts === 1 && how.sooner?.holds(c, w) === true) return;
    taken.add(w.workerId);
    out.push(commit(c, w));
    how.pipeline?.placed(c, w);
    if (spread) removeOperator(pool, operatorOf(w));
  }
}

const operatorOf = (w: WorkerCapacity): string => w.operator ?? `worker:${w.workerId}`;

/** Leaves the operator's workers out of the rest of one candidate's placements. */
function removeOperator(pool: WorkerCapacity[], operator: string): void {
  for (let i = pool.length - 1; i >= 0; i--) if (operatorOf(pool[i]!) === operator) pool.splice(i, 1);
}

/** How workers are ranked for one candidate: `urgent` (its deadline is near), and the pipeline rules when there are hints. */
export interface Ranking {
  urgent: boolean;
  pipeline?: Pipeline;
  /** Holds back a lone attempt that a busy worker is expected to finish sooner (sooner.ts). */
  sooner?: SoonerFinish;
}

/** The best worker that fits `c`, is not in `taken` and admits it, or undefined. */
export function chooseWorker(
  c: Candidate,
  workers: readonly WorkerCapacity[],
  taken: ReadonlySet<string> = new Set(),
  how: Ranking = { urgent: false },
): WorkerCapacity | undefined {
  const ok = (w: WorkerCapacity): boolean => !taken.has(w.workerId) && fits(c, w) && (how.pipeline === undefined || how.pipeline.admits(c, w));
  // The common case, a pool no larger than the bound, ranks in one pass with nothing allocated.
  const pool = workers.length <= LIMITS.placementCandidatesMax ? workers : candidateSet(c, workers.filter(ok));
  let best: WorkerCapacity | undefined;
  for (const w of pool) {
    if (pool === workers && !ok(w)) continue;
    if (best === undefined || compareWorkers(c, w, best, how) < 0) best = w;
  }
  return best;
}

/**
 * The workers ranked for one attempt of `c`: all that fit, or with more than
 * LIMITS.placementCandidatesMax, those holding its affinity key first, then
 * the highest by rendezvous weight of (job, worker). The weight is a hash, so
 * each job sees its own subset, the same on every replay, and jobs spread over
 * the pool; the ranking inside it (speed, utilisation) then picks as usual.
 */
export function candidateSet(c: Candidate, fitting: readonly WorkerCapacity[]): readonly WorkerCapacity[] {
  const max = LIMITS.placementCandidatesMax;
  if (fitting.length <= max) return fitting;
  const holders = fitting.filter((w) => holdsAffinityKey(c, w)).slice(0, max);
  const others = fitting
    .filter((w) => !holdsAffinityKey(c, w))
    .map((w) => ({ w, weight: unitHash(`${c.jobId}:${w.workerId}`) }))
    .sort((a, b) => b.weight - a.weight || compareIds(a.w.workerId, b.w.workerId))
    .slice(0, max - holders.length)
    .map((x) => x.w);
  return [...holders, ...others];
}

/** Negative when `a` is the better home for `c`. Total over distinct worker ids. */
export function compareWorkers(c: Candidate, a: WorkerCapacity, b: WorkerCapacity, how: Ranking = { urgent: false }): number {
  const p = how.pipeline;
  return (
    Number(holdsAffinityKey(c, b)) - Number(holdsAffinityKey(c, a)) ||
    (how.urgent ? compareSpeed(c.queue, a, b) : 0) ||
    (p !== undefined ? p.expectedMs(c, a) - p.expectedMs(c, b) : 0) ||
    compareUtilisation(a, b) ||
    b.freeCores - a.freeCores ||
    compareIds(a.workerId, b.workerId)
  );
}

/** The faster worker for `queue` by its reliability-check time; a worker never measured comes after. */
function compareSpeed(queue: string, a: WorkerCapacity, b: WorkerCapacity): number {
  const sa = a.speedMs[queue];
  const sb = b.speedMs[queue];
  if (sa === undefined || sb === undefined) return Number(sa === undefined) - Number(sb === undefined);
  return sa - sb;
}

/** usedSlots / totalSlots, compared exactly by cross-multiplying; no slots counts as full. */
function compareUtilisation(a: WorkerCapacity, b: WorkerCapacity): number {
  if (a.totalSlots === 0 || b.totalSlots === 0) return Number(a.totalSlots === 0) - Number(b.totalSlots === 0);
  return a.usedSlots * b.totalSlots - b.usedSlots * a.totalSlots;
}

/** Takes one attempt of `c` off the worker's tally and returns its placement. */
function commit(c: Candidate, w: WorkerCapacity): Placement {
  const r = c.requires;
  const slots = freeSlotsFor(w, c.queue);
  assert(slots > 0 && w.usedSlots < w.totalSlots, `worker ${w.workerId}: a free slot for ${c.queue}`);
  w.freeSlots[c.queue] = slots - 1;
  w.usedSlots += 1;
  w.freeCores -= r.cores;
  w.freeMemoryMb -= r.memoryMb;
  const gpuIds = w.freeGpuIds.splice(0, r.gpus);
  assert(gpuIds.length === r.gpus, `worker ${w.workerId}: ${r.gpus} free GPUs`);
  assertWorker(w);
  return { jobId: c.jobId, workerId: w.workerId, gpuIds };
}

/** A copy of the worker that place() may update; labels and keys are only read. */
function copyTally(w: WorkerCapacity): WorkerCapacity {
  return {
    ...w,
    freeSlots: { ...w.freeSlots },
    freeGpuIds: [...w.freeGpuIds].sort((a, b) => a - b),
  };
}

function hasFreeSlot(w: WorkerCapacity): boolean {
  if (w.usedSlots >= w.totalSlots) return false;
  for (const q of Object.keys(w.freeSlots)) if (freeSlotsFor(w, q) > 0) return true;
  return false;
}

function totalFreeSlots(workers: readonly WorkerCapacity[]): number {
  let n = 0;
  for (const w of workers) {
    let free = 0;
    for (const q of Object.keys(w.freeSlots)) free += freeSlotsFor(w, q);
    n += Math.min(free, w.totalSlots - w.usedSlots);
  }
  return n;
}
