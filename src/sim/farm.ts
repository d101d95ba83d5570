// A user's own farm as a scenario: worker kinds, phases (each a queue), the
// pipeline edges between them and the arrival of items (sectors, proofs),
// read from a parsed TOML table (`gaffer simulate --config`). Every mistake
// is refused with INVALID_INPUT naming the key. docs/simulator.md lists the keys.
import { GafferError } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';
import type { Fault, Scenario, SimJob, SimQueue, SimWorker } from './model.ts';
import { draw, faultSchedule, req } from './scenarios.ts';

const MINUTE = 60_000;
const GIB_MB = 1024;

type Table = Record<string, unknown>;

const bad = (msg: string): GafferError => new GafferError('INVALID_INPUT', `farm file: ${msg}`);

function table(v: unknown, where: string, keys: readonly string[]): Table {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${where} must be a table`);
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw bad(`${where}.${k} is not a key here; the keys are ${keys.join(', ')}`);
  return v as Table;
}

function num(t: Table, k: string, where: string, o: { min: number; max?: number; whole?: boolean; dflt?: number }): number {
  const v = t[k] ?? o.dflt;
  if (v === undefined) throw bad(`${where}.${k} is required`);
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${where}.${k} must be a number`);
  if (o.whole === true && !Number.isInteger(v)) throw bad(`${where}.${k} must be a whole number`);
  if (v < o.min) throw bad(`${where}.${k} must be at least ${o.min} (got ${v})`);
  if (o.max !== undefined && v > o.max) throw bad(`${where}.${k} must be at most ${o.max} (got ${v})`);
  return v;
}

function str(t: Table, k: string, where: string, dflt?: string): string {
  const v = t[k] ?? dflt;
  if (typeof v !== 'string' || v === '') throw bad(`${where}.${k} must be a non-empty string`);
  return v;
}

function list(v: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(v) || v.length === 0) throw bad(`${where} must be a non-empty array`);
  if (v.length > max) throw bad(`${where} has ${v.length} entries; at most ${max}`);
  return v;
}

export interface FarmPhase {
  name: string;
  durationMinutes: number;
  cores: number;
  memoryGib: number;
  gpus: number;
  local: boolean;
  bay: 'occupy' | 'free' | null;
  noise: number;
}

export interface Farm {
  name: string;
  unit: string;
  phases: FarmPhase[];
  /** [from, to]: `to` starts when `from` has succeeded. */
  edges: [string, string][];
  workers: SimWorker[];
  arrival: { count: number; intervalMinutes: number; dueMinutes: number | null };
}

const PHASE_KEYS = ['name', 'durationMinutes', 'cores', 'memoryGib', 'gpus', 'local', 'bay', 'noise'] as const;
const WORKER_KEYS = ['kind', 'count', 'cores', 'memoryGib', 'gpus', 'bays', 'slots', 'timeFactor'] as const;

function phase(v: unknown, i: number): FarmPhase {
  const w = `phases[${i}]`;
  const t = table(v, w, PHASE_KEYS);
  const name = str(t, 'name', w);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw bad(`${w}.name "${name}" must be letters, digits, . _ -`);
  const local = t.local ?? false;
  if (typeof local !== 'boolean') throw bad(`${w}.local must be true or false`);
  const bay = t.bay ?? null;
  if (bay !== null && bay !== 'occupy' && bay !== 'free') throw bad(`${w}.bay is "occupy" or "free", not ${JSON.stringify(bay)}`);
  return {
    name,
    durationMinutes: num(t, 'durationMinutes', w, { min: 0.001 }),
    cores: num(t, 'cores', w, { min: 0, dflt: 0 }),
    memoryGib: num(t, 'memoryGib', w, { min: 0, dflt: 0 }),
    gpus: num(t, 'gpus', w, { min: 0, whole: true, dflt: 0 }),
    local,
    bay,
    noise: num(t, 'noise', w, { min: 0, max: 0.9, dflt: 0.08 }),
  };
}

function workerKind(v: unknown, i: number, phases: ReadonlySet<string>, bayPhase: string | null): SimWorker[] {
  const w = `workers[${i}]`;
  const t = table(v, w, WORKER_KEYS);
  const kind = str(t, 'kind', w);
  const count = num(t, 'count', w, { min: 1, whole: true, max: LIMITS.farmWorkersMax });
  const slotsT = table(t.slots, `${w}.slots`, [...phases]);
  const queues: Record<string, number> = {};
  for (const k of Object.keys(slotsT)) queues[k] = num(slotsT, k, `${w}.slots`, { min: 1, whole: true, max: LIMITS.farmSlotsPerPhaseMax });
  if (Object.keys(queues).length === 0) throw bad(`${w}.slots must give at least one phase`);
  const factorT = t.timeFactor === undefined ? {} : table(t.timeFactor, `${w}.timeFactor`, [...phases]);
  const factor: Record<string, number> = {};
  for (const k of Object.keys(factorT)) factor[k] = num(factorT, k, `${w}.timeFactor`, { min: 0.01, max: 100 });
  const bays = t.bays === undefined ? undefined : num(t, 'bays', w, { min: 1, whole: true, max: LIMITS.farmSlotsPerPhaseMax });
  if (bays !== undefined && (bayPhase === null || queues[bayPhase] === undefined)) {
    throw bad(`${w}.bays needs a phase with bay = "occupy" that this kind has slots for`);
  }
  const base = { cores: num(t, 'cores', w, { min: 1 }), memoryMb: num(t, 'memoryGib', w, { min: 0 }) * GIB_MB, gpus: num(t, 'gpus', w, { min: 0, whole: true, dflt: 0 }) };
  return Array.from({ length: count }, (_, n): SimWorker => ({
    name: count === 1 ? kind : `${kind}-${n + 1}`,
    labels: {},
    ...base,
    queues: { ...queues },
    factor: { ...factor },
    ...(bays !== undefined && bayPhase !== null ? { bays: { queue: bayPhase, count: bays } } : {}),
  }));
}

/** Phases in an order where every edge points forward; a cycle is refused. */
function topo(phases: readonly FarmPhase[], edges: readonly [string, string][]): FarmPhase[] {
  const indeg = new Map(phases.map((p) => [p.name, 0]));
  for (const [, to] of edges) indeg.set(to, indeg.get(to)! + 1);
  const out: FarmPhase[] = [];
  const ready = phases.filter((p) => indeg.get(p.name) === 0);
  while (ready.length > 0) {
    const p = ready.shift()!;
    out.push(p);
    for (const [from, to] of edges) {
      if (from !== p.name) continue;
      indeg.set(to, indeg.get(to)! - 1);
      if (indeg.get(to) === 0) ready.push(phases.find((q) => q.name === to)!);
    }
  }
  if (out.length !== phases.length) throw bad('edges form a cycle; a pipeline must have a first phase and a last');
  return out;
}

/** The farm a parsed TOML table describes, validated. */
export function parseFarm(raw: Table): Farm {
  const top = table(raw, 'the file', ['farm', 'phases', 'edges', 'workers', 'arrival']);
  const info = top.farm === undefined ? {} : table(top.farm, 'farm', ['name', 'unit']);
  const phases = list(top.phases, 'phases ([[phases]])', LIMITS.farmPhasesMax).map(phase);
  const names = new Set<string>();
  for (const p of phases) {
    if (names.has(p.name)) throw bad(`phase ${p.name} is given twice`);
    names.add(p.name);
  }
  const occupy = phases.filter((p) => p.bay === 'occupy');
  const free = phases.filter((p) => p.bay === 'free');
  if (occupy.length > 1 || free.length > 1 || occupy.length !== free.length) throw bad('bays need exactly one phase with bay = "occupy" and one with bay = "free", or neither');
  // The bay is the item's data on the worker that holds it: only a phase that runs there can give it back.
  if (free[0] !== undefined && !free[0].local) throw bad(`phase ${free[0].name} has bay = "free" but is not local: the phase that frees a bay must run where the item's data is (local = true)`);
  const edges = (top.edges === undefined ? [] : list(top.edges, 'edges', LIMITS.farmEdgesMax)).map((e, i): [string, string] => {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'string') throw bad(`edges[${i}] must be ["FROM", "TO"]`);
    for (const n of e) if (!names.has(n)) throw bad(`edges[${i}] names phase "${n}", which no [[phases]] table defines; the phases are ${[...names].join(', ')}`);
    if (e[0] === e[1]) throw bad(`edges[${i}] joins ${e[0]} to itself`);
    return [e[0], e[1]];
  });
  const ordered = topo(phases, edges);
  const kinds = list(top.workers, 'workers ([[workers]])', LIMITS.farmWorkerKindsMax);
  const workers = kinds.flatMap((k, i) => workerKind(k, i, names, occupy[0]?.name ?? null));
  if (workers.length > LIMITS.farmWorkersMax) throw bad(`${workers.length} workers; at most ${LIMITS.farmWorkersMax}`);
  const seen = new Set<string>();
  for (const w of workers) {
    if (seen.has(w.name)) throw bad(`two workers are named ${w.name}; give each kind its own name`);
    seen.add(w.name);
  }
  for (const p of phases) {
    const fits = workers.some((w) => (w.queues[p.name] ?? 0) > 0 && w.cores >= p.cores && w.memoryMb >= p.memoryGib * GIB_MB && w.gpus >= p.gpus);
    if (!fits) throw bad(`no worker has slots for phase ${p.name} and the cores, memory and GPUs it needs`);
  }
  const a = table(top.arrival, 'arrival', ['count', 'intervalMinutes', 'dueMinutes']);
  const count = num(a, 'count', 'arrival', { min: 1, whole: true });
  if (count * phases.length > LIMITS.farmJobsMax) throw bad(`${count} arrivals of ${phases.length} phases make ${count * phases.length} jobs; at most ${LIMITS.farmJobsMax}`);
  const dueMinutes = a.dueMinutes === undefined ? null : num(a, 'dueMinutes', 'arrival', { min: 0.001 });
  return {
    name: info.name === undefined ? 'farm' : str(info, 'name', 'farm'),
    unit: info.unit === undefined ? 'items' : str(info, 'unit', 'farm'),
    phases: ordered,
    edges,
    workers,
    arrival: { count, intervalMinutes: num(a, 'intervalMinutes', 'arrival', { min: 0, dflt: 0 }), dueMinutes },
  };
}

export function farmSummary(f: Farm): string {
  return `${f.phases.map((p) => p.name).join(', ')} on ${f.workers.length} workers`;
}

/** The farm as a scenario for one seed: run-time noise and the faults drawn from it. */
export function farmScenario(f: Farm, o: { seed: number; faults?: boolean }): Scenario {
  const queues: Record<string, SimQueue> = {};
  for (const p of f.phases) {
    const requires = req({ cores: p.cores, memoryMb: p.memoryGib * GIB_MB, gpus: p.gpus });
    queues[p.name] = { requires, timeoutMs: 3 * p.durationMinutes * MINUTE + 30 * MINUTE, heartbeatTimeoutMs: 5 * MINUTE };
  }
  const sinks = new Set(f.phases.filter((p) => !f.edges.some(([from]) => from === p.name)).map((p) => p.name));
  const d = draw(o.seed, 1);
  const jobs: SimJob[] = [];
  for (let i = 1; i <= f.arrival.count; i++) {
    const item = `i${String(i).padStart(5, '0')}`;
    const key = `item-${item}`;
    const releaseMs = Math.round((i - 1) * f.arrival.intervalMinutes * MINUTE);
    f.phases.forEach((p, k) => {
      const job: SimJob = {
        key: `${item}.${p.name}`,
        queue: p.name,
        baseMs: Math.round(p.durationMinutes * MINUTE * d.uniform(1 - p.noise, 1 + p.noise)),
        releaseMs,
        // Later phases first, so that started items finish and free what they hold (as in the sealing scenario).
        priority: 10 * k,
        parents: f.edges.filter(([, to]) => to === p.name).map(([from]) => `${item}.${from}`),
        affinity: p.local ? { key, mode: 'require' } : null,
        deadlineMs: null,
        dueMs: f.arrival.dueMinutes !== null && sinks.has(p.name) ? releaseMs + Math.round(f.arrival.dueMinutes * MINUTE) : null,
      };
      if (p.bay === 'occupy') (job.holds = key), (job.bay = 'occupy');
      if (p.bay === 'free') (job.releases = key), (job.bay = 'free');
      jobs.push(job);
    });
  }
  const base = {
    name: f.name,
    seed: o.seed,
    size: f.arrival.count,
    queues,
    workers: f.workers.map((w) => ({ ...w, queues: { ...w.queues }, factor: { ...w.factor } })),
    jobs,
    settings: { heartbeatIntervalMs: MINUTE, sweepIntervalMs: 30_000, workerOfflineAfterMs: 3 * MINUTE, horizonMs: 60 * 24 * 60 * MINUTE },
  };
  const names = base.workers.map((w) => w.name);
  const faults: Fault[] = o.faults === false
    ? []
    : faultSchedule(base, draw(o.seed, 2), [
        { kind: 'stall', among: names, durationMs: [2 * MINUTE, 12 * MINUTE] },
        { kind: 'leave', among: names, durationMs: [15 * MINUTE, 45 * MINUTE] },
      ]);
  return { ...base, faults };
}
