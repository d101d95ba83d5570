// A second baseline: what Lotus' sealing scheduler (storage/sealer,
// sched_assigner_common.go and sched_resources.go) does, on Gaffer's inputs.
// docs/simulator.md, "The policies", says what is and is not modelled.
//
// Tasks go in priority order (higher priority first, then older, then job
// id; no aging, no deadlines). For each task, the acceptable workers are
// those whose open capacity passes the checks Lotus' CanHandleRequest makes:
// a free slot of the task's type (MaxConcurrent), threads (cores), memory and
// GPUs, plus the labels and required affinity key (fits). Among them the
// order of Lotus' window sort: a worker holding the sector's files first,
// then a worker serving fewer task types, then the lower utilisation. The
// last step is the window selector:
// - `utilization` (LowestUtilizationWS): the lowest utilisation, counting
//   what this round has already assigned to the worker;
// - `spread` (SpreadWS): the worker given the fewest tasks in this round.
import { fits, freeSlotsFor, holdsAffinityKey } from '../scheduler/fit.ts';
import { compareIds } from '../scheduler/order.ts';
import type { Candidate, PlaceFn, PlaceInput, Placement, WorkerCapacity } from '../types/model.ts';

export type LotusVariant = 'utilization' | 'spread';

export interface Tally {
  w: WorkerCapacity;
  /** Task types (queues) the worker serves, free slots or not. */
  taskTypes: number;
  /** Tasks this round gave it. */
  assigned: number;
}

export function lotusPlace(variant: LotusVariant): PlaceFn {
  return (input: PlaceInput): Placement[] => {
    const tallies: Tally[] = input.workers.map((w) => ({ w: copy(w), taskTypes: Object.keys(w.freeSlots).length, assigned: 0 }));
    const free = tallies.reduce((n, t) => n + Object.keys(t.w.freeSlots).reduce((a, q) => a + freeSlotsFor(t.w, q), 0), 0);
    const limit = Math.min(input.maxPlacements, free);
    const out: Placement[] = [];
    for (const c of [...input.candidates].sort(byPriority)) {
      const taken = new Set<string>();
      for (let i = 0; i < c.want && out.length < limit; i++) {
        const best = pick(c, tallies, taken, variant);
        if (best === undefined) break;
        taken.add(best.w.workerId);
        out.push(take(c, best));
      }
      if (out.length >= limit) break;
    }
    return out;
  };
}

/** Lotus' request queue order, with Gaffer's priority standing for its task priority and task-type order. */
function byPriority(a: Candidate, b: Candidate): number {
  return b.priority - a.priority || a.createdAt - b.createdAt || compareIds(a.jobId, b.jobId);
}

function pick(c: Candidate, tallies: readonly Tally[], taken: ReadonlySet<string>, variant: LotusVariant): Tally | undefined {
  let best: Tally | undefined;
  for (const t of tallies) {
    if (taken.has(t.w.workerId) || !fits(c, t.w)) continue;
    if (best === undefined || compareLotus(c, t, best, variant) < 0) best = t;
  }
  return best;
}

/** Negative when `a` is Lotus' better window for `c`. */
export function compareLotus(c: Candidate, a: Tally, b: Tally, variant: LotusVariant): number {
  return (
    Number(holdsAffinityKey(c, b.w)) - Number(holdsAffinityKey(c, a.w)) ||
    a.taskTypes - b.taskTypes ||
    (variant === 'spread' ? a.assigned - b.assigned : 0) ||
    utilisation(a.w) - utilisation(b.w) ||
    compareIds(a.w.workerId, b.w.workerId)
  );
}

/**
 * Lotus' ActiveResources.utilization: the largest used fraction of threads
 * and memory. (Its GPU term needs the worker's GPU count, which place() is
 * not given; GPUs are still checked, not weighed.)
 */
export function utilisation(w: WorkerCapacity): number {
  const cpu = w.totalCores > 0 ? 1 - w.freeCores / w.totalCores : 0;
  const mem = w.totalMemoryMb > 0 ? 1 - w.freeMemoryMb / w.totalMemoryMb : 0;
  return Math.max(cpu, mem);
}

function take(c: Candidate, t: Tally): Placement {
  const w = t.w;
  w.freeSlots[c.queue] = freeSlotsFor(w, c.queue) - 1;
  w.usedSlots += 1;
  w.freeCores -= c.requires.cores;
  w.freeMemoryMb -= c.requires.memoryMb;
  t.assigned += 1;
  return { jobId: c.jobId, workerId: w.workerId, gpuIds: w.freeGpuIds.splice(0, c.requires.gpus) };
}

function copy(w: WorkerCapacity): WorkerCapacity {
  return { ...w, freeSlots: { ...w.freeSlots }, freeGpuIds: [...w.freeGpuIds].sort((a, b) => a - b) };
}
