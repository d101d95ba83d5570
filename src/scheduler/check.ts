// Assertions on what place() is given and what it returns. They stay on in
// production: a failure here is a bug in the caller or in the scheduler.
import { assert } from '../types/errors.ts';
import type { Candidate, PlaceInput, Placement, WorkerCapacity } from '../types/model.ts';

const isCount = (n: number): boolean => Number.isInteger(n) && n >= 0;

export function assertInput(input: PlaceInput): void {
  assert(input.maxPlacements >= 0, `maxPlacements >= 0 (got ${input.maxPlacements})`);
  assertUnique(input.workers.map((w) => w.workerId), 'worker ids');
  assertUnique(input.candidates.map((c) => c.jobId), 'candidate job ids');
  for (const w of input.workers) assertWorker(w);
  for (const c of input.candidates) assertCandidate(c);
}

function assertUnique(ids: readonly string[], what: string): void {
  assert(new Set(ids).size === ids.length, `${what} are unique`);
}

/** A worker's tally is consistent: nothing over-committed, nothing negative. */
export function assertWorker(w: WorkerCapacity): void {
  const id = w.workerId;
  assert(isCount(w.usedSlots) && w.usedSlots <= w.totalSlots, `worker ${id}: 0 <= usedSlots <= totalSlots`);
  assert(w.freeCores >= 0 && w.freeCores <= w.totalCores, `worker ${id}: 0 <= freeCores <= totalCores`);
  assert(w.freeMemoryMb >= 0 && w.freeMemoryMb <= w.totalMemoryMb, `worker ${id}: 0 <= freeMemoryMb <= totalMemoryMb`);
  assert(new Set(w.freeGpuIds).size === w.freeGpuIds.length, `worker ${id}: free GPU ids are unique`);
  for (const n of Object.values(w.freeSlots)) assert(isCount(n), `worker ${id}: free slots are counts`);
}

function assertCandidate(c: Candidate): void {
  const r = c.requires;
  assert(isCount(c.want), `job ${c.jobId}: want is a count`);
  assert(r.cores >= 0 && r.memoryMb >= 0 && isCount(r.gpus), `job ${c.jobId}: requires are not negative`);
}

/** Replicas never share a worker, never go to an excluded one, and no job gets more than it wants. */
export function assertOutput(input: PlaceInput, placements: readonly Placement[]): void {
  assert(placements.length <= input.maxPlacements, 'placements <= maxPlacements');
  const byJob = new Map(input.candidates.map((c) => [c.jobId, c]));
  const seen = new Set<string>();
  const perJob = new Map<string, number>();
  for (const p of placements) {
    const c = byJob.get(p.jobId);
    assert(c !== undefined, `placement of job ${p.jobId} names a candidate`);
    const pair = JSON.stringify([p.jobId, p.workerId]);
    assert(!seen.has(pair) && !c.excludedWorkerIds.includes(p.workerId), `job ${p.jobId}: replicas on distinct workers`);
    seen.add(pair);
    perJob.set(p.jobId, (perJob.get(p.jobId) ?? 0) + 1);
    assert((perJob.get(p.jobId) ?? 0) <= c.want, `job ${p.jobId}: placements <= want`);
  }
}
