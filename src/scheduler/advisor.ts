// The worker-ratio advisor: from measured run times, arrival rates, the
// pipeline's edges between queues and the slots workers declare, what each
// phase (queue) can sustain, which one holds the pipeline back, how many slots
// would balance it, and which workers to add. Pure: figures in, figures out.
// docs/advisor.md gives the formulas and their limits.

const HOUR_MS = 3_600_000;

export interface AdvicePhaseInput {
  queue: string;
  /** Mean run time of the queue's recent completed attempts, or null when none completed. */
  runTimeMeanMs: number | null;
  /** Jobs submitted to the queue over `arrivalsSpanMs`. */
  submitted: number;
  arrivalsSpanMs: number;
}

/** Dependencies from jobs of `from` to jobs of `to`, in a sample of recent jobs. */
export interface AdviceEdgeInput {
  from: string;
  to: string;
  /** Distinct jobs of `to` with a parent in `from`. */
  children: number;
  /** Jobs of `from` in the sample, with dependants or not. */
  fromJobs: number;
}

/** A worker that counts: connected, not draining, not quarantined. */
export interface AdviceWorkerInput {
  name: string;
  /** Slots per queue it declares. */
  queues: Readonly<Record<string, number>>;
}

export interface AdviceInput {
  phases: readonly AdvicePhaseInput[];
  edges: readonly AdviceEdgeInput[];
  workers: readonly AdviceWorkerInput[];
  /** The plan adds at most this many workers. */
  addWorkersMax: number;
}

export type PhaseStatus = 'unmeasured' | 'idle' | 'keeping-up' | 'overloaded' | 'no-slots';

export interface PhaseAdvice {
  queue: string;
  status: PhaseStatus;
  runTimeMeanMs: number | null;
  /** Slots the counted workers declare for the queue. */
  slots: number;
  /** What the slots sustain: slots x 1 h / mean run time. */
  capacityPerHour: number | null;
  /** Jobs submitted to the queue, per hour. */
  submittedPerHour: number;
  /** Work arriving: the submissions, or what the parent queues feed it when that is more. */
  arrivalPerHour: number;
  /** Queues whose jobs this queue's jobs depend on. */
  fedBy: string[];
  /** Arrival over capacity; null when unmeasured or when there are no slots. */
  utilisation: number | null;
  /** Little's law: arrival rate x mean run time, the slots busy on average. */
  slotsNeeded: number | null;
  /** Whole slots to carry the arrival rate: ceil(slotsNeeded). */
  slotsToBalance: number | null;
  /** Slots missing: slotsToBalance - slots, at least 0. */
  slotsShort: number | null;
}

export interface WorkerKindAdvice {
  /** The slots per queue this kind of worker declares. */
  queues: Record<string, number>;
  workers: number;
  /** Names of a few workers of the kind. */
  examples: string[];
  /** Headroom with one more worker of this kind, or null when nothing arrives. */
  headroomWithOneMore: number | null;
}

export interface Advice {
  phases: PhaseAdvice[];
  /** The measured phase with the highest utilisation, or null when nothing arrives. */
  bottleneck: string | null;
  /** How much every arrival rate could grow before the bottleneck saturates: 1 / its utilisation (0: a phase has work and no slots). */
  headroom: number | null;
  kinds: WorkerKindAdvice[];
  /** Workers to add, by kind, until the headroom reaches 1 (or addWorkersMax). */
  add: { queues: Record<string, number>; workers: number }[];
  /** Headroom once `add` is carried out. */
  headroomAfterAdd: number | null;
}

const EXAMPLES_MAX = 3;

export function advise(input: AdviceInput): Advice {
  const arrivals = arrivalRates(input.phases, input.edges);
  const slots = slotsOf(input.workers.map((w) => w.queues));
  const phases = input.phases.map((p) => phaseAdvice(p, arrivals.get(p.queue) ?? 0, slots.get(p.queue) ?? 0, parentsOf(input.edges, p.queue)));
  const now = headroomOf(phases, slots);
  const kinds = workerKinds(input.workers).map((k) => ({ ...k, headroomWithOneMore: headroomOf(phases, addSlots(slots, k.queues, 1)).headroom }));
  const plan = planAdds(phases, slots, kinds, input.addWorkersMax);
  return { phases, bottleneck: now.bottleneck, headroom: now.headroom, kinds, add: plan.add, headroomAfterAdd: plan.headroom };
}

// ---- Arrival rates through the pipeline ----

function parentsOf(edges: readonly AdviceEdgeInput[], queue: string): string[] {
  return [...new Set(edges.filter((e) => e.to === queue && e.from !== queue).map((e) => e.from))].sort();
}

/** Per queue, jobs per hour: a queue's submissions, or what its parents feed it when that is more, in topological order. */
export function arrivalRates(phases: readonly AdvicePhaseInput[], edges: readonly AdviceEdgeInput[]): Map<string, number> {
  const rate = new Map(phases.map((p) => [p.queue, p.arrivalsSpanMs > 0 ? (p.submitted * HOUR_MS) / p.arrivalsSpanMs : 0]));
  for (const queue of topologicalOrder(phases.map((p) => p.queue), edges)) {
    for (const e of edges) {
      if (e.to !== queue || e.from === queue || e.fromJobs <= 0) continue;
      const fed = (rate.get(e.from) ?? 0) * (e.children / e.fromJobs);
      if (fed > (rate.get(queue) ?? 0)) rate.set(queue, fed);
    }
  }
  return rate;
}

/** Queues parents first (Kahn); queues on a cycle between queues come last, in name order. */
function topologicalOrder(queues: readonly string[], edges: readonly AdviceEdgeInput[]): string[] {
  const known = new Set(queues);
  const links = edges.filter((e) => e.from !== e.to && known.has(e.from) && known.has(e.to));
  const indegree = new Map(queues.map((q) => [q, 0]));
  for (const e of links) indegree.set(e.to, (indegree.get(e.to) ?? 0) + 1);
  const ready = [...known].filter((q) => indegree.get(q) === 0).sort();
  const out: string[] = [];
  while (ready.length > 0) {
    const q = ready.shift()!;
    out.push(q);
    for (const e of links.filter((l) => l.from === q)) {
      indegree.set(e.to, indegree.get(e.to)! - 1);
      if (indegree.get(e.to) === 0) ready.push(e.to);
    }
  }
  return [...out, ...[...known].filter((q) => !out.includes(q)).sort()];
}

// ---- One phase ----

function slotsOf(declarations: readonly Readonly<Record<string, number>>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const queues of declarations) for (const [q, n] of Object.entries(queues)) out.set(q, (out.get(q) ?? 0) + n);
  return out;
}

function addSlots(slots: ReadonlyMap<string, number>, queues: Readonly<Record<string, number>>, times: number): Map<string, number> {
  const out = new Map(slots);
  for (const [q, n] of Object.entries(queues)) out.set(q, (out.get(q) ?? 0) + n * times);
  return out;
}

function phaseAdvice(p: AdvicePhaseInput, arrivalPerHour: number, slots: number, fedBy: string[]): PhaseAdvice {
  const submittedPerHour = p.arrivalsSpanMs > 0 ? (p.submitted * HOUR_MS) / p.arrivalsSpanMs : 0;
  const mean = p.runTimeMeanMs !== null && p.runTimeMeanMs > 0 ? p.runTimeMeanMs : null;
  const base = { queue: p.queue, runTimeMeanMs: p.runTimeMeanMs, slots, submittedPerHour, arrivalPerHour, fedBy };
  if (mean === null) {
    return { ...base, status: 'unmeasured', capacityPerHour: null, utilisation: null, slotsNeeded: null, slotsToBalance: null, slotsShort: null };
  }
  const capacityPerHour = (slots * HOUR_MS) / mean;
  const slotsNeeded = (arrivalPerHour * mean) / HOUR_MS;
  const slotsToBalance = Math.ceil(slotsNeeded - 1e-9);
  const utilisation = capacityPerHour > 0 ? arrivalPerHour / capacityPerHour : null;
  return { ...base, status: statusOf(arrivalPerHour, slots, utilisation), capacityPerHour, utilisation, slotsNeeded, slotsToBalance, slotsShort: Math.max(0, slotsToBalance - slots) };
}

function statusOf(arrivalPerHour: number, slots: number, utilisation: number | null): PhaseStatus {
  if (arrivalPerHour <= 0) return 'idle';
  if (slots <= 0 || utilisation === null) return 'no-slots';
  return utilisation > 1 ? 'overloaded' : 'keeping-up';
}

// ---- The pipeline ----

/** Utilisation of each measured phase that has arrivals, under the given slots (Infinity: work and no slots). */
function utilisations(phases: readonly PhaseAdvice[], slots: ReadonlyMap<string, number>): { queue: string; rho: number }[] {
  return phases
    .filter((p) => p.runTimeMeanMs !== null && p.runTimeMeanMs > 0 && p.arrivalPerHour > 0)
    .map((p) => {
      const n = slots.get(p.queue) ?? 0;
      return { queue: p.queue, rho: n > 0 ? (p.arrivalPerHour * p.runTimeMeanMs!) / (n * HOUR_MS) : Infinity };
    });
}

function headroomOf(phases: readonly PhaseAdvice[], slots: ReadonlyMap<string, number>): { bottleneck: string | null; headroom: number | null } {
  let worst: { queue: string; rho: number } | null = null;
  for (const u of utilisations(phases, slots)) if (!worst || u.rho > worst.rho || (u.rho === worst.rho && u.queue < worst.queue)) worst = u;
  if (!worst) return { bottleneck: null, headroom: null };
  return { bottleneck: worst.queue, headroom: worst.rho === Infinity ? 0 : 1 / worst.rho };
}

// ---- Kinds of workers and what to add ----

function kindKey(queues: Readonly<Record<string, number>>): string {
  return JSON.stringify(Object.entries(queues).filter(([, n]) => n > 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function workerKinds(workers: readonly AdviceWorkerInput[]): Omit<WorkerKindAdvice, 'headroomWithOneMore'>[] {
  const byKey = new Map<string, Omit<WorkerKindAdvice, 'headroomWithOneMore'>>();
  for (const w of [...workers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const key = kindKey(w.queues);
    if (key === '[]') continue;
    const kind = byKey.get(key) ?? { queues: Object.fromEntries(JSON.parse(key) as [string, number][]), workers: 0, examples: [] };
    kind.workers += 1;
    if (kind.examples.length < EXAMPLES_MAX) kind.examples.push(w.name);
    byKey.set(key, kind);
  }
  return [...byKey.values()].sort((a, b) => b.workers - a.workers || (kindKey(a.queues) < kindKey(b.queues) ? -1 : 1));
}

/**
 * Greedy: while the headroom is below 1, add one worker of the kind that
 * serves the bottleneck and leaves the most headroom (ties: more slots for the
 * bottleneck, then the commoner kind). Stops when no kind serves the bottleneck.
 */
function planAdds(
  phases: readonly PhaseAdvice[],
  start: ReadonlyMap<string, number>,
  kinds: readonly Omit<WorkerKindAdvice, 'headroomWithOneMore'>[],
  addWorkersMax: number,
): { add: Advice['add']; headroom: number | null } {
  let slots = new Map(start);
  let state = headroomOf(phases, slots);
  const added = new Map<number, number>();
  for (let step = 0; step < addWorkersMax && state.headroom !== null && state.headroom < 1; step++) {
    const pick = bestKind(phases, slots, kinds, state.bottleneck!);
    if (pick === null) break;
    slots = addSlots(slots, kinds[pick]!.queues, 1);
    added.set(pick, (added.get(pick) ?? 0) + 1);
    state = headroomOf(phases, slots);
  }
  const add = [...added.entries()].sort(([a], [b]) => a - b).map(([i, workers]) => ({ queues: kinds[i]!.queues, workers }));
  return { add, headroom: state.headroom };
}

function bestKind(phases: readonly PhaseAdvice[], slots: ReadonlyMap<string, number>, kinds: readonly { queues: Record<string, number> }[], bottleneck: string): number | null {
  let best: { i: number; headroom: number; share: number } | null = null;
  for (const [i, k] of kinds.entries()) {
    const share = k.queues[bottleneck] ?? 0;
    if (share <= 0) continue;
    const headroom = headroomOf(phases, addSlots(slots, k.queues, 1)).headroom ?? 0;
    const better = !best || headroom > best.headroom + 1e-12 || (Math.abs(headroom - best.headroom) <= 1e-12 && share > best.share);
    if (better) best = { i, headroom, share };
  }
  return best?.i ?? null;
}
