// The baseline the simulator measures Gaffer's policy against: first in,
// first out. The oldest candidate goes to the first worker (by id) that fits
// it, with the same resource checks as place() (fits) and nothing else: no
// priority, no deadline, no affinity preference, no spreading of load.
import { fits } from '../scheduler/index.ts';
import { compareIds } from '../scheduler/order.ts';
import type { Candidate, PlaceFn, PlaceInput, Placement, WorkerCapacity } from '../types/model.ts';

export const fifoPlace: PlaceFn = (input: PlaceInput): Placement[] => {
  const workers = input.workers.map(copy).sort((a, b) => compareIds(a.workerId, b.workerId));
  const free = workers.reduce((n, w) => n + Object.values(w.freeSlots).reduce((a, b) => a + Math.max(0, b), 0), 0);
  const limit = Math.min(input.maxPlacements, free);
  const out: Placement[] = [];
  const oldestFirst = [...input.candidates].sort((a, b) => a.createdAt - b.createdAt || compareIds(a.jobId, b.jobId));
  for (const c of oldestFirst) {
    const taken = new Set<string>();
    for (let i = 0; i < c.want && out.length < limit; i++) {
      const w = workers.find((x) => !taken.has(x.workerId) && fits(c, x));
      if (w === undefined) break;
      taken.add(w.workerId);
      out.push(take(c, w));
    }
    if (out.length >= limit) break;
  }
  return out;
};

function take(c: Candidate, w: WorkerCapacity): Placement {
  w.freeSlots[c.queue] = (w.freeSlots[c.queue] ?? 0) - 1;
  w.usedSlots += 1;
  w.freeCores -= c.requires.cores;
  w.freeMemoryMb -= c.requires.memoryMb;
  return { jobId: c.jobId, workerId: w.workerId, gpuIds: w.freeGpuIds.splice(0, c.requires.gpus) };
}

function copy(w: WorkerCapacity): WorkerCapacity {
  return { ...w, freeSlots: { ...w.freeSlots }, freeGpuIds: [...w.freeGpuIds].sort((a, b) => a - b) };
}
