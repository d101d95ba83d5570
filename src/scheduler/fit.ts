// Whether a candidate fits a worker, and if not, why. One list of checks serves
// both: `fits` runs them without building strings (the hot path), `whyNot`
// names the first that fails (diagnostics).
import type { Candidate, WorkerCapacity } from '../types/model.ts';

interface FitCheck {
  readonly ok: (c: Candidate, w: WorkerCapacity) => boolean;
  readonly reason: (c: Candidate, w: WorkerCapacity) => string;
}

/** Free slots the worker has for a queue; 0 when it does not serve it. */
export function freeSlotsFor(w: WorkerCapacity, queue: string): number {
  return Object.hasOwn(w.freeSlots, queue) ? (w.freeSlots[queue] ?? 0) : 0;
}

/** Whether the worker holds the candidate's affinity key (false without affinity). */
export function holdsAffinityKey(c: Candidate, w: WorkerCapacity): boolean {
  return c.affinity !== null && w.keys.has(c.affinity.key);
}

function missingLabel(c: Candidate, w: WorkerCapacity): string | undefined {
  for (const [key, value] of Object.entries(c.requires.labels)) {
    if (!Object.hasOwn(w.labels, key) || w.labels[key] !== value) return key;
  }
  return undefined;
}

const CHECKS: readonly FitCheck[] = [
  {
    ok: (c, w) => Object.hasOwn(w.freeSlots, c.queue),
    reason: (c) => `does not serve queue ${c.queue}`,
  },
  {
    ok: (c, w) => freeSlotsFor(w, c.queue) > 0,
    reason: (c) => `has no free slot for queue ${c.queue}`,
  },
  {
    // A worker in slow start may hold fewer attempts than its queues' slots add up to.
    ok: (_c, w) => w.usedSlots < w.totalSlots,
    reason: (_c, w) => `holds as many attempts as it may at once (${w.totalSlots})`,
  },
  {
    ok: (c, w) => c.pinnedWorkerId === null || c.pinnedWorkerId === w.workerId,
    reason: (c) => `is not the worker this challenge is for (${c.pinnedWorkerId ?? ''})`,
  },
  {
    ok: (c, w) => c.pinnedWorkerId === w.workerId || !w.blockedQueues.includes(c.queue),
    reason: (c) => `has not passed the reliability check of queue ${c.queue}`,
  },
  {
    ok: (c, w) => !c.excludedWorkerIds.includes(w.workerId),
    reason: () => 'already holds an attempt of this job',
  },
  {
    ok: (c, w) => w.freeCores >= c.requires.cores,
    reason: (c, w) => `needs ${c.requires.cores} cores, ${w.freeCores} free`,
  },
  {
    ok: (c, w) => w.freeMemoryMb >= c.requires.memoryMb,
    reason: (c, w) => `needs ${c.requires.memoryMb} MB memory, ${w.freeMemoryMb} MB free`,
  },
  {
    ok: (c, w) => w.freeGpuIds.length >= c.requires.gpus,
    reason: (c, w) => `needs ${c.requires.gpus} GPUs, ${w.freeGpuIds.length} free`,
  },
  {
    ok: (c, w) => missingLabel(c, w) === undefined,
    reason: (c, w) => {
      const key = missingLabel(c, w) ?? '';
      return `lacks label ${key}=${c.requires.labels[key] ?? ''}`;
    },
  },
  {
    ok: (c, w) => c.affinity?.mode !== 'require' || holdsAffinityKey(c, w),
    reason: (c) => `does not hold required affinity key ${c.affinity?.key ?? ''}`,
  },
];

/** True when the worker can take one more attempt of the candidate now. */
export function fits(c: Candidate, w: WorkerCapacity): boolean {
  return CHECKS.every((check) => check.ok(c, w));
}

/** Why the candidate does not fit the worker, or null when it fits. */
export function whyNot(c: Candidate, w: WorkerCapacity): string | null {
  const failed = CHECKS.find((check) => !check.ok(c, w));
  return failed === undefined ? null : `worker ${w.workerId} ${failed.reason(c, w)}`;
}
