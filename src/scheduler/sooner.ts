// Hold for a sooner finish (earliest finish time): a job free to go to any
// worker, whose best fitting worker now is w, is held back when a worker that
// is busy now is expected to free a slot of the job's queue and finish the
// job before w would: its attempt's lease time plus its measured run time,
// then the job's own run time there. The jobs held in one claim take the
// expected slots in turn (the k-th held job needs the k-th expected finish),
// so while many jobs wait, every free slot still gets one and no capacity
// stands idle; only when the expected slots are more than the jobs waiting do
// the slow slots stay empty. An attempt past its expected end (a stalled or
// slower worker) is not counted on. Needs measured run times and lease times
// (hints.ts); without them nothing is held.
import type { Candidate, WorkerCapacity } from '../types/model.ts';
import { freeSlotsFor } from './fit.ts';
import type { SchedulingHints } from './hints.ts';

interface Expected {
  finishMs: number;
  workerId: string;
  labels: Readonly<Record<string, string>>;
}

export class SoonerFinish {
  private readonly hints: SchedulingHints;
  private readonly workers: readonly WorkerCapacity[];
  private readonly now: number;
  /** Per queue: the finishes busy workers are expected to offer, soonest first (built when first asked). */
  private readonly expected = new Map<string, Expected[]>();
  /** Per queue: jobs held in this claim, each counting on one expected finish. */
  private readonly held = new Map<string, number>();

  constructor(hints: SchedulingHints, workers: readonly WorkerCapacity[], now: number) {
    this.hints = hints;
    this.workers = workers;
    this.now = now;
  }

  /** True (and the job counts as held) when a busy worker is expected to finish c before `w`, where it would start now. */
  holds(c: Candidate, w: WorkerCapacity): boolean {
    if (c.affinity?.mode === 'require' || c.pinnedWorkerId !== null || this.hints.leasedAtMs === undefined) return false;
    const mine = this.hints.runTimeMs[w.workerId]?.[c.queue];
    if (mine === undefined) return false;
    const k = this.held.get(c.queue) ?? 0;
    let seen = 0;
    for (const e of this.expectedFor(c.queue)) {
      if (e.finishMs >= this.now + mine) return false;
      if (c.excludedWorkerIds.includes(e.workerId) || !hasLabels(c, e.labels)) continue;
      if (seen++ < k) continue;
      this.held.set(c.queue, k + 1);
      return true;
    }
    return false;
  }

  private expectedFor(queue: string): Expected[] {
    const cached = this.expected.get(queue);
    if (cached !== undefined) return cached;
    const out: Expected[] = [];
    for (const x of this.workers) {
      if (!Object.hasOwn(x.freeSlots, queue) || freeSlotsFor(x, queue) > 0 || x.blockedQueues.includes(queue)) continue;
      const runMs = this.hints.runTimeMs[x.workerId]?.[queue];
      if (runMs === undefined) continue;
      for (const at of this.hints.leasedAtMs?.[x.workerId]?.[queue] ?? []) {
        const endMs = at + runMs;
        if (endMs >= this.now) out.push({ finishMs: endMs + runMs, workerId: x.workerId, labels: x.labels });
      }
    }
    out.sort((a, b) => a.finishMs - b.finishMs || (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
    this.expected.set(queue, out);
    return out;
  }
}

function hasLabels(c: Candidate, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(c.requires.labels)) if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  return true;
}
