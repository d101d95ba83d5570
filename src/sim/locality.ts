// The locality bound (docs/simulator.md, "The lower bound", part 4): where a
// job holds a data set (`holds`: a sealing sector's AP) and later jobs
// require it (`affinity: require`: PC1, PC2, C1, Finalize), the whole group
// runs on the worker that took the holder. A worker hosting n groups must run
// n jobs of each local queue on its own slots, and keep each group in one of
// its bays from the holder's start to the releaser's end. T_w(n), the
// earliest that worker can be done with n groups, is the largest of
// - per local queue: earliest start + whole-jobs window of n jobs on its own
//   slots + shortest tail;
// - per pair of local queues A before B (every group's B job descends from
//   its A job): the i-th A to end on w ends no sooner than A's earliest start
//   + the whole-jobs window of i A jobs, and the n - i + 1 groups whose A
//   ends then or later still run their B after it, on w's B slots: for every
//   i, that + the whole-jobs window of n - i + 1 B jobs + B's shortest tail
//   (a sealer's PC1 rounds end together and its PC2s queue on one GPU);
// - bays: earliest holder start + whole-jobs window of n bay holdings of at
//   least the shortest holder-to-releaser span each, on its bays;
// - bay turnover, when n is more than w's b bays: the (b + k)-th holder can
//   start only once k groups have released their bays, and the k-th release
//   comes no sooner than the k-th end of any local queue B (by the pair
//   argument on the first k) + the shortest chain from B to the releaser;
//   from there that group still needs its whole span.
// No schedule spreads N groups so that every worker ends sooner: the bound is
// the smallest T with sum over workers of max{n : T_w(n) <= T} >= N.
import type { Scenario, SimJob } from './model.ts';
import { concurrency, factorOf, wholeJobsWindowMs, type Timing } from './bound.ts';
import { NO_DOWNTIME, slotEndMs, type Downtime } from './downtime.ts';

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
  /** Over every group: the shortest chain from the end of its job of this queue to the end of its releaser (Infinity: none). */
  toReleaseMs: number;
}

/** Chains between jobs, at the fastest factors (timings' fastMs). */
class Chains {
  private readonly byKey: ReadonlyMap<string, SimJob>;
  private readonly t: ReadonlyMap<string, Timing>;
  private readonly ancestors = new Map<string, Set<string>>();

  constructor(jobs: readonly SimJob[], t: ReadonlyMap<string, Timing>) {
    this.byKey = new Map(jobs.map((j) => [j.key, j]));
    this.t = t;
  }

  /** Every job `key` depends on, directly or not. */
  ancestorsOf(key: string): Set<string> {
    const known = this.ancestors.get(key);
    if (known !== undefined) return known;
    const out = new Set<string>();
    for (const p of this.byKey.get(key)?.parents ?? []) {
      out.add(p);
      for (const a of this.ancestorsOf(p)) out.add(a);
    }
    this.ancestors.set(key, out);
    return out;
  }

  /** The longest chain of jobs after `from` up to and including `to` (`to` descends from `from`), each at its fastest. */
  afterMs(from: string, to: string): number {
    if (from === to) return 0;
    let best = 0;
    for (const p of this.byKey.get(to)!.parents) {
      if (p === from || this.ancestorsOf(p).has(from)) best = Math.max(best, this.afterMs(from, p));
    }
    return best + this.t.get(to)!.fastMs;
  }
}

/** Over the local queues every group has a job of (a queue only some groups have is left out: fewer jobs, a weaker bound). */
function floors(gs: readonly Group[], t: ReadonlyMap<string, Timing>, chains: Chains): QueueFloor[] {
  const out = new Map<string, QueueFloor>();
  const groupsWith = new Map<string, number>();
  for (const g of gs) for (const q of new Set([g.holder, ...g.local].map((j) => j.queue))) groupsWith.set(q, (groupsWith.get(q) ?? 0) + 1);
  for (const g of gs) {
    for (const j of [g.holder, ...g.local]) {
      if (groupsWith.get(j.queue) !== gs.length) continue;
      const x = t.get(j.key)!;
      const r = g.releaser;
      const toRelease = r !== undefined && (r === j || chains.ancestorsOf(r.key).has(j.key)) ? chains.afterMs(j.key, r.key) : Infinity;
      const f = out.get(j.queue);
      if (f === undefined) out.set(j.queue, { queue: j.queue, shortestMs: j.baseMs, headMs: x.startMs, tailMs: x.tailMs, toReleaseMs: toRelease });
      else {
        f.shortestMs = Math.min(f.shortestMs, j.baseMs);
        f.headMs = Math.min(f.headMs, x.startMs);
        f.tailMs = Math.min(f.tailMs, x.tailMs);
        // Infinity (no use) unless every group's job of the queue comes before that group's releaser.
        f.toReleaseMs = f.toReleaseMs === Infinity || toRelease === Infinity ? Infinity : Math.min(f.toReleaseMs, toRelease);
      }
    }
  }
  return [...out.values()];
}

/** Local queue pairs [a, b] (indices into floors) where every group's job of b descends from its job of a. */
function orderedPairs(gs: readonly Group[], local: readonly QueueFloor[], chains: Chains): [number, number][] {
  const index = new Map(local.map((f, i) => [f.queue, i]));
  const pairs: [number, number][] = [];
  for (let a = 0; a < local.length; a++) {
    for (let b = 0; b < local.length; b++) {
      if (a === b) continue;
      const always = gs.every((g) => {
        const jobs = [g.holder, ...g.local];
        const ja = jobs.filter((j) => index.get(j.queue) === a);
        const jb = jobs.filter((j) => index.get(j.queue) === b);
        return ja.length === 1 && jb.length === 1 && chains.ancestorsOf(jb[0]!.key).has(ja[0]!.key);
      });
      if (always) pairs.push([a, b]);
    }
  }
  // Earlier queues first, so that a pair reads the ends of a already raised by the pairs into a.
  const head = (i: number): number => local[i]!.headMs;
  return pairs.sort((x, y) => head(x[1]) - head(y[1]) || head(x[0]) - head(y[0]));
}

/** The locality bound in ms, or 0 when the workload has no groups. */
export function localityBound(s: Pick<Scenario, 'queues' | 'workers' | 'jobs'>, t: ReadonlyMap<string, Timing>, down: Downtime = NO_DOWNTIME): number {
  const gs = groups(s.jobs);
  const n = gs.length;
  if (n === 0) return 0;
  const chains = new Chains(s.jobs, t);
  const local = floors(gs, t, chains);
  const pairs = orderedPairs(gs, local, chains);
  const holderHead = Math.min(...gs.map((g) => t.get(g.holder.key)!.startMs));
  // The shortest holder-to-releaser chain, holder included: how long any group keeps its bay. The bay
  // arguments need every group to give its bay back after its holder: otherwise none is made (Infinity).
  let spanMs = Infinity;
  for (const g of gs) {
    const r = g.releaser;
    if (r === undefined || (r !== g.holder && !chains.ancestorsOf(r.key).has(g.holder.key))) {
      spanMs = Infinity;
      break;
    }
    spanMs = Math.min(spanMs, t.get(g.holder.key)!.fastMs + chains.afterMs(g.holder.key, r.key));
  }
  // T_w(k) for k = 1..n, per worker that can host a group (Infinity where it cannot hold k).
  const curves: number[][] = [];
  for (const w of s.workers) {
    const units = local.map((f) => concurrency(w, f.queue, s.queues[f.queue]!));
    if (units.some((u) => u === 0)) continue;
    // The earliest w's slots of queue i, from startMs, end k jobs of it: one slot's ceil(k / units)-th, idle in w's windows.
    const downs = local.map((f) => down.windows(w.name, f.queue));
    const endOn = (i: number, startMs: number, k: number): number =>
      slotEndMs(startMs, Math.ceil(k / units[i]!), local[i]!.shortestMs, factorOf(w, local[i]!.queue), downs[i]!);
    // ends[i][k - 1]: no schedule ends the k-th job of queue i on w sooner.
    const ends = local.map((f, i) => Array.from({ length: n }, (_, k) => endOn(i, f.headMs, k + 1)));
    for (const [a, b] of pairs) {
      // By the pair argument: the k-th end of b is no sooner than the i-th end of a, then k - i + 1 b jobs.
      for (let k = 1; k <= n; k++) for (let i = 1; i <= k; i++) ends[b]![k - 1] = Math.max(ends[b]![k - 1]!, endOn(b, ends[a]![i - 1]!, k - i + 1));
    }
    const bays = w.bays?.count;
    const curve: number[] = [];
    let turnover = 0;
    for (let k = 1; k <= n; k++) {
      let tk = 0;
      local.forEach((f, i) => (tk = Math.max(tk, ends[i]![k - 1]! + f.tailMs)));
      if (bays !== undefined && spanMs < Infinity) {
        tk = Math.max(tk, holderHead + wholeJobsWindowMs(k, spanMs, { w: bays }, { w: 1 }));
        // Bay turnover: the k-th group, past the bays, starts after the (k - bays)-th release.
        const r = k - bays;
        if (r >= 1) {
          local.forEach((f, i) => f.toReleaseMs < Infinity && (turnover = Math.max(turnover, ends[i]![r - 1]! + f.toReleaseMs)));
          tk = Math.max(tk, turnover + spanMs);
        }
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
