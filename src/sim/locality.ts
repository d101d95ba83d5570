// The locality bound (docs/simulator.md, "The lower bound", part 4): where a
// job holds a data set (`holds`: a sealing sector's AP) and later jobs
// require it (`affinity: require`: PC1, PC2, C1, Finalize), the whole group
// runs on the worker that took the holder. A worker hosting n groups must run
// n jobs of each local queue on its own slots, and keep each group in one of
// its bays from the holder's start to the releaser's end. T_w(n), the
// earliest that worker can be done with n groups, is the largest of
// - per local queue: earliest start + whole-jobs window of n jobs on its own
//   slots + shortest tail;
// - bays: earliest holder start + whole-jobs window of n bay holdings of at
//   least the shortest holder-to-releaser span each, on its bays.
// No schedule spreads N groups so that every worker ends sooner: the bound is
// the smallest T with sum over workers of max{n : T_w(n) <= T} >= N.
import type { Scenario, SimJob } from './model.ts';
import { concurrency, factorOf, wholeJobsWindowMs, type Timing } from './bound.ts';

interface Group {
  holder: SimJob;
  local: SimJob[];
  releaser: SimJob | undefined;
}

function groups(jobs: readonly SimJob[]): Group[] {
  const byKey = new Map<string, Group>();
  for (const j of jobs) if (j.holds !== undefined) byKey.set(j.holds, { holder: j, local: [], releaser: undefined });
  for (const j of jobs) {
    const g = j.affinity?.mode === 'require' ? byKey.get(j.affinity.key) : undefined;
    if (g !== undefined) g.local.push(j);
    if (j.releases !== undefined) {
      const r = byKey.get(j.releases);
      if (r !== undefined) r.releaser = j;
    }
  }
  return [...byKey.values()];
}

interface QueueFloor {
  queue: string;
  /** Over every group's job of the queue: shortest reference time, earliest start, shortest tail. */
  shortestMs: number;
  headMs: number;
  tailMs: number;
}

function floors(gs: readonly Group[], t: ReadonlyMap<string, Timing>, pick: (g: Group) => SimJob[]): QueueFloor[] {
  const out = new Map<string, QueueFloor>();
  for (const g of gs) {
    for (const j of pick(g)) {
      const x = t.get(j.key)!;
      const f = out.get(j.queue);
      if (f === undefined) out.set(j.queue, { queue: j.queue, shortestMs: j.baseMs, headMs: x.startMs, tailMs: x.tailMs });
      else (f.shortestMs = Math.min(f.shortestMs, j.baseMs)), (f.headMs = Math.min(f.headMs, x.startMs)), (f.tailMs = Math.min(f.tailMs, x.tailMs));
    }
  }
  return [...out.values()];
}

/** The locality bound in ms, or 0 when the workload has no groups. */
export function localityBound(s: Pick<Scenario, 'queues' | 'workers' | 'jobs'>, t: ReadonlyMap<string, Timing>): number {
  const gs = groups(s.jobs);
  const n = gs.length;
  if (n === 0) return 0;
  const local = floors(gs, t, (g) => [g.holder, ...g.local]);
  const holderHead = Math.min(...gs.map((g) => t.get(g.holder.key)!.startMs));
  let spanMs = Infinity;
  for (const g of gs) {
    if (g.releaser !== undefined) spanMs = Math.min(spanMs, t.get(g.releaser.key)!.finishMs - t.get(g.holder.key)!.startMs);
  }
  // T_w(k) for k = 1..n, per worker that can host a group (Infinity where it cannot hold k).
  const curves: number[][] = [];
  for (const w of s.workers) {
    const units = local.map((f) => concurrency(w, f.queue, s.queues[f.queue]!));
    if (units.some((u) => u === 0)) continue;
    const curve: number[] = [];
    for (let k = 1; k <= n; k++) {
      let tk = 0;
      local.forEach((f, i) => {
        const win = wholeJobsWindowMs(k, f.shortestMs, { w: units[i]! }, { w: factorOf(w, f.queue) });
        tk = Math.max(tk, f.headMs + win + f.tailMs);
      });
      if (w.bays !== undefined && spanMs < Infinity) {
        tk = Math.max(tk, holderHead + wholeJobsWindowMs(k, spanMs, { w: w.bays.count }, { w: 1 }));
      }
      curve.push(tk);
    }
    curves.push(curve);
  }
  const candidates = [...new Set(curves.flat())].filter(Number.isFinite).sort((a, b) => a - b);
  for (const T of candidates) {
    let hosted = 0;
    for (const c of curves) {
      let k = 0;
      while (k < c.length && c[k]! <= T) k++;
      hosted += k;
    }
    if (hosted >= n) return T;
  }
  return Infinity;
}
