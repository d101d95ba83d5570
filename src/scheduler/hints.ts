// What the scheduler may know beyond one claim's input, learnt by whoever
// runs it (the coordinator, the simulator) from traffic it sees anyway: the
// pipeline's edges between queues (which queue's jobs depend on which), the
// slots each worker declares per queue, and each worker's measured run time
// per queue. Every rule that reads a hint falls back to the plain policy when
// the hint is missing, so place() without hints decides as before.
//
// RunTimes is the running mean the coordinator and the simulator keep: an
// attempt's run time is recorded when it completes, from the time it was
// leased. It is bounded: a worker's mean per queue is one number and a count.
import { assert } from '../types/errors.ts';

export interface SchedulingHints {
  /** Per queue: the queues whose jobs depend on a job of it (the pipeline's edges), in no particular order. */
  readonly followers: Readonly<Record<string, readonly string[]>>;
  /** Per worker, per queue: the slots it declares (free slots come in the claim's input). */
  readonly declaredSlots: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Per worker, per queue: mean run time of its completed attempts. */
  readonly runTimeMs: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Per worker, per queue: when each attempt it runs now was leased (absent: unknown). */
  readonly leasedAtMs?: Readonly<Record<string, Readonly<Record<string, readonly number[]>>>>;
}

export const NO_HINTS: SchedulingHints = { followers: {}, declaredSlots: {}, runTimeMs: {} };

/** Running means of completed attempts' run times, per worker and queue. */
export class RunTimes {
  private readonly means = new Map<string, Map<string, { meanMs: number; n: number }>>();
  private readonly workersMax: number;

  /** At most `workersMax` workers are followed; past that, the first seen are dropped first. */
  constructor(workersMax: number) {
    assert(workersMax > 0, `workersMax > 0 (got ${workersMax})`);
    this.workersMax = workersMax;
  }

  record(workerId: string, queue: string, runMs: number): void {
    if (!(runMs >= 0) || !Number.isFinite(runMs)) return;
    let perQueue = this.means.get(workerId);
    if (perQueue === undefined) {
      if (this.means.size >= this.workersMax) this.means.delete(this.means.keys().next().value!);
      perQueue = new Map();
      this.means.set(workerId, perQueue);
    }
    const m = perQueue.get(queue) ?? { meanMs: 0, n: 0 };
    m.n += 1;
    m.meanMs += (runMs - m.meanMs) / m.n;
    perQueue.set(queue, m);
  }

  forget(workerId: string): void {
    this.means.delete(workerId);
  }

  /** Per worker, per queue: the mean, rounded to the millisecond. */
  snapshot(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [w, perQueue] of this.means) {
      out[w] = Object.fromEntries([...perQueue].map(([q, m]) => [q, Math.round(m.meanMs)]));
    }
    return out;
  }
}

/** The followers map from edges between queues (a queue following itself is left out). */
export function followersFrom(edges: readonly { from: string; to: string }[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of edges) {
    if (e.from === e.to) continue;
    const list = (out[e.from] ??= []);
    if (!list.includes(e.to)) list.push(e.to);
  }
  for (const list of Object.values(out)) list.sort();
  return out;
}
