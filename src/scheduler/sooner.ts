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
//
// A job that heads a pipeline (its queue has followers) compares where its
// followers would end, not where it would: the job's run time and its
// followers' on each worker (pipeline.ts, expectedMs). It also counts on a
// worker that takes no job of its queue now because its data sets fill it
// (it declares no free slot of the queue and runs none, as a sealer whose
// bays are full): each attempt it runs of a queue down the pipeline is a
// data set that frees a place when its chain ends, expected at that
// attempt's end plus the mean run times of the queues after it. So a sector
// whose PC1 would take a slow sealer half an hour longer waits for the fast
// sealer whose bay frees first, and goes to the slow one when none is in
// sight in time.
import type { Candidate, WorkerCapacity } from '../types/model.ts';
import { freeSlotsFor } from './fit.ts';
import type { SchedulingHints } from './hints.ts';
import type { Pipeline } from './pipeline.ts';

interface Expected {
  finishMs: number;
  workerId: string;
  labels: Readonly<Record<string, string>>;
}

/** Queues down the pipeline from a queue, each once, and the mean run time of the longest chain after each. */
interface Downstream {
  queues: string[];
  tailMs: Map<string, number>;
}

export class SoonerFinish {
  private readonly hints: SchedulingHints;
  private readonly workers: readonly WorkerCapacity[];
  private readonly now: number;
  /** Per queue: the finishes busy workers are expected to offer, soonest first (built when first asked). */
  private readonly expected = new Map<string, Expected[]>();
  /** Per queue: jobs held in this claim, each counting on one expected finish. */
  private readonly held = new Map<string, number>();

  private readonly pipeline: Pipeline | undefined;

  constructor(hints: SchedulingHints, workers: readonly WorkerCapacity[], now: number, pipeline?: Pipeline) {
    this.hints = hints;
    this.workers = workers;
    this.now = now;
    this.pipeline = pipeline;
  }

  /** True (and the job counts as held) when a busy worker is expected to finish c before `w`, where it would start now. */
  holds(c: Candidate, w: WorkerCapacity): boolean {
    if (c.affinity?.mode === 'require' || c.pinnedWorkerId !== null || this.hints.leasedAtMs === undefined) return false;
    if (this.hints.runTimeMs[w.workerId]?.[c.queue] === undefined) return false;
    const mine = this.finishMs(c, w, this.now);
    const k = this.held.get(c.queue) ?? 0;
    let seen = 0;
    for (const e of this.expectedFor(c)) {
      if (e.finishMs >= mine) return false;
      if (c.excludedWorkerIds.includes(e.workerId) || !hasLabels(c, e.labels)) continue;
      if (seen++ < k) continue;
      this.held.set(c.queue, k + 1);
      return true;
    }
    return false;
  }

  /** When c would end on w if it started at `startMs`: with followers, when its followers would end there. */
  private finishMs(c: Candidate, w: WorkerCapacity, startMs: number): number {
    if (this.pipeline !== undefined && this.hints.followers[c.queue] !== undefined) return startMs + this.pipeline.expectedMs(c, w);
    return startMs + this.hints.runTimeMs[w.workerId]![c.queue]!;
  }

  private expectedFor(c: Candidate): Expected[] {
    const queue = c.queue;
    const cached = this.expected.get(queue);
    if (cached !== undefined) return cached;
    const out: Expected[] = [];
    const down = this.pipeline !== undefined && this.hints.followers[queue] !== undefined ? this.downstream(queue) : undefined;
    for (const x of this.workers) {
      if (!Object.hasOwn(x.freeSlots, queue) || x.blockedQueues.includes(queue)) continue;
      const runMs = this.hints.runTimeMs[x.workerId]?.[queue];
      if (runMs === undefined) continue;
      const starts = freeSlotsFor(x, queue) > 0 ? (down !== undefined ? this.followerStarts(c, x, runMs) : []) : this.slotStarts(x, queue, runMs, down);
      for (const startMs of starts) out.push({ finishMs: this.finishMs(c, x, startMs), workerId: x.workerId, labels: x.labels });
    }
    out.sort((a, b) => a.finishMs - b.finishMs || (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
    this.expected.set(queue, out);
    return out;
  }

  /** A worker with a free slot of c's queue but its followers' slots busy: it can start c so as to end as one of those frees. */
  private followerStarts(c: Candidate, x: WorkerCapacity, runMs: number): number[] {
    return this.pipeline!.followerSlotsAtMs(c, x)
      .filter((at) => at > this.now)
      .map((at) => Math.max(this.now, at - runMs));
  }

  /**
   * A worker with no free slot of the queue: when its attempts of the queue
   * end; running none and heading a pipeline (full of data sets), when each
   * of its attempts down the pipeline ends its chain.
   */
  private slotStarts(x: WorkerCapacity, queue: string, runMs: number, down: Downstream | undefined): number[] {
    const leased = this.hints.leasedAtMs?.[x.workerId];
    const own = leased?.[queue] ?? [];
    const out = own.map((at) => at + runMs).filter((end) => end >= this.now);
    if (down === undefined || own.length > 0) return out;
    for (const q of down.queues) {
      const qRunMs = this.hints.runTimeMs[x.workerId]?.[q];
      if (qRunMs === undefined) continue;
      for (const at of leased?.[q] ?? []) if (at + qRunMs >= this.now) out.push(at + qRunMs + down.tailMs.get(q)!);
    }
    return out;
  }

  /** The queues down the pipeline from `queue` (bounded by the queues the hints name), with their tails at the mean run times. */
  private downstream(queue: string): Downstream {
    const queues: string[] = [];
    const seen = new Set<string>([queue]);
    for (let i = -1; i < queues.length; i++) {
      for (const b of this.hints.followers[i < 0 ? queue : queues[i]!] ?? []) if (!seen.has(b)) seen.add(b), queues.push(b);
    }
    const tailMs = new Map<string, number>();
    const tail = (q: string, depth: number): number => {
      const known = tailMs.get(q);
      if (known !== undefined) return known;
      let best = 0;
      // A cycle in the edges cannot recurse past the number of queues.
      if (depth <= queues.length) for (const b of this.hints.followers[q] ?? []) if (b !== queue) best = Math.max(best, this.pipeline!.meanMs(b) + tail(b, depth + 1));
      tailMs.set(q, best);
      return best;
    };
    for (const q of queues) tail(q, 0);
    return { queues, tailMs };
  }
}

function hasLabels(c: Candidate, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(c.requires.labels)) if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  return true;
}
