// The two rules that read the pipeline (hints.ts), for a candidate free to
// choose its worker (no required affinity key):
//
// - Admission: a job whose queue is followed by queue B (its dependants run
//   on B) goes to a worker that serves B only if one of that worker's B slots
//   is in sight for it: the worker's free B slots, less the B jobs already
//   waiting for data it holds (their affinity key requires it), less the jobs
//   of this candidate's queue it runs or was given in this claim (each of them
//   will want a B slot there too), must be above zero. With lease times
//   (hints.ts), a B slot whose attempt is expected to end (its lease time
//   plus the worker's measured B run time) before this job would end there
//   counts as free: the job starts in time to hand its data to that slot as
//   it frees (a sector's AP staged in a free bay while the sealer's PC1 round
//   ends). This is what keeps a
//   sealer from taking sectors it can only park in its bays until one of its
//   PC1 slots frees: the sector waits in the queue instead, free to go to the
//   first sealer whose PC1 slot frees.
// - Speed: among the workers that fit, the one with the shortest measured run
//   time for the candidate's queue and the followers it serves goes first. A
//   queue a worker has no measure for counts at the mean of the workers that
//   have one, so that a new worker is neither shunned nor preferred.
import type { Candidate, WorkerCapacity } from '../types/model.ts';
import { freeSlotsFor } from './fit.ts';
import type { SchedulingHints } from './hints.ts';

export class Pipeline {
  private readonly hints: SchedulingHints;
  /** Per worker, per queue: candidates that require a key the worker holds, not placed yet. */
  private readonly waiting = new Map<string, Map<string, number>>();
  /** Per worker, per queue: placements made in this claim (where the declared slots are unknown). */
  private readonly given = new Map<string, Map<string, number>>();
  /** Per queue: the mean over workers of their measured run times. */
  private readonly meanRunMs = new Map<string, number>();

  private readonly now: number;

  constructor(hints: SchedulingHints, candidates: readonly Candidate[], workers: readonly WorkerCapacity[], now: number) {
    this.hints = hints;
    this.now = now;
    const holders = new Map<string, string[]>();
    for (const w of workers) for (const k of w.keys) (holders.get(k) ?? holders.set(k, []).get(k)!).push(w.workerId);
    for (const c of candidates) {
      if (c.affinity?.mode !== 'require') continue;
      for (const w of holders.get(c.affinity.key) ?? []) bump(this.waiting, w, c.queue, c.want);
    }
    const sums = new Map<string, { sum: number; n: number }>();
    for (const perQueue of Object.values(hints.runTimeMs)) {
      for (const [q, ms] of Object.entries(perQueue)) {
        const s = sums.get(q) ?? { sum: 0, n: 0 };
        s.sum += ms;
        s.n += 1;
        sums.set(q, s);
      }
    }
    for (const [q, s] of sums) this.meanRunMs.set(q, s.sum / s.n);
  }

  /** Whether a slot of every follower queue the worker serves is in sight for one more job of c's queue. */
  admits(c: Candidate, w: WorkerCapacity): boolean {
    if (c.affinity?.mode === 'require') return true;
    const followers = this.hints.followers[c.queue];
    if (followers === undefined) return true;
    const ahead = this.aheadOf(w, c.queue);
    for (const b of followers) {
      if (!this.serves(w, b)) continue;
      const inSight = freeSlotsFor(w, b) + this.endingWithin(w.workerId, b, this.hints.runTimeMs[w.workerId]?.[c.queue]);
      if (inSight - count(this.waiting, w.workerId, b) - ahead <= 0) return false;
    }
    return true;
  }

  /**
   * When a slot of c's followers on w is expected to be there for each next
   * job of c's queue, soonest first: w's running follower attempts' expected
   * ends (lease time plus w's measured run time), less those the jobs waiting
   * for w's data and those of c's queue ahead of it will take. With several
   * followers, the later of theirs. Empty without followers, lease times or
   * run times.
   */
  followerSlotsAtMs(c: Candidate, w: WorkerCapacity): number[] {
    const followers = this.hints.followers[c.queue];
    if (followers === undefined || c.affinity?.mode === 'require') return [];
    let out: number[] | undefined;
    const ahead = this.aheadOf(w, c.queue);
    for (const b of followers) {
      if (!this.serves(w, b)) continue;
      const runMs = this.runMs(w.workerId, b);
      const leased = this.hints.leasedAtMs?.[w.workerId]?.[b];
      if (runMs === 0 || leased === undefined) return [];
      const ends = [...Array.from({ length: freeSlotsFor(w, b) }, () => this.now), ...leased.map((at) => at + runMs).filter((t) => t >= this.now).sort((x, y) => x - y)];
      const mine = ends.slice(count(this.waiting, w.workerId, b) + ahead);
      out = out === undefined ? mine : out.slice(0, mine.length).map((t, i) => Math.max(t, mine[i]!));
    }
    return out ?? [];
  }

  /** Attempts of the queue on the worker expected to end from now to now + withinMs (0 without lease or run times). */
  private endingWithin(workerId: string, queue: string, withinMs: number | undefined): number {
    const runMs = this.hints.runTimeMs[workerId]?.[queue];
    const leased = this.hints.leasedAtMs?.[workerId]?.[queue];
    if (withinMs === undefined || runMs === undefined || leased === undefined) return 0;
    let n = 0;
    for (const at of leased) if (at + runMs >= this.now && at + runMs <= this.now + withinMs) n += 1;
    return n;
  }

  /** Notes a placement of c on w (its tally already updated). */
  placed(c: Candidate, w: WorkerCapacity): void {
    bump(this.given, w.workerId, c.queue, 1);
    if (c.affinity?.mode === 'require' && w.keys.has(c.affinity.key)) bump(this.waiting, w.workerId, c.queue, -1);
  }

  /** Measured run time of c's queue and of the followers the worker serves; 0 when nothing is measured. */
  expectedMs(c: Candidate, w: WorkerCapacity): number {
    let ms = this.runMs(w.workerId, c.queue);
    if (c.affinity?.mode !== 'require') for (const b of this.hints.followers[c.queue] ?? []) if (this.serves(w, b)) ms += this.runMs(w.workerId, b);
    return ms;
  }

  /** The mean over workers of the queue's measured run times; 0 when none is measured. */
  meanMs(queue: string): number {
    return this.meanRunMs.get(queue) ?? 0;
  }

  private runMs(workerId: string, queue: string): number {
    return this.hints.runTimeMs[workerId]?.[queue] ?? this.meanRunMs.get(queue) ?? 0;
  }

  private serves(w: WorkerCapacity, queue: string): boolean {
    return Object.hasOwn(w.freeSlots, queue) || this.hints.declaredSlots[w.workerId]?.[queue] !== undefined;
  }

  /** Jobs of the queue the worker runs or was given in this claim: from its declared slots, else what this claim gave it. */
  private aheadOf(w: WorkerCapacity, queue: string): number {
    const declared = this.hints.declaredSlots[w.workerId]?.[queue];
    if (declared === undefined) return count(this.given, w.workerId, queue);
    return Math.max(0, declared - freeSlotsFor(w, queue));
  }
}

function count(m: ReadonlyMap<string, ReadonlyMap<string, number>>, worker: string, queue: string): number {
  return m.get(worker)?.get(queue) ?? 0;
}

function bump(m: Map<string, Map<string, number>>, worker: string, queue: string, by: number): void {
  const perQueue = m.get(worker) ?? m.set(worker, new Map()).get(worker)!;
  perQueue.set(queue, Math.max(0, (perQueue.get(queue) ?? 0) + by));
}
