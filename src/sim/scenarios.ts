// The scenarios: workloads, pools and fault schedules, each generated from a
// seed. docs/simulator.md describes what each one models and why.
import { seededRandom, type Random } from '../types/clock.ts';
import type { Requires } from '../types/model.ts';
import { lowerBound } from './bound.ts';
import type { Fault, FaultKind, Scenario, SimJob, SimQueue, SimWorker } from './model.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const GB = 1024;

export interface ScenarioOptions {
  seed: number;
  /** Sectors, proofs or verifications; each scenario has a default. */
  size?: number;
  /** False: no faults at all. */
  faults?: boolean;
  /** True (prover-burst only): two more workers hang for a while (the `hang` fault), heartbeating while their attempts stand still. */
  stalls?: boolean;
}

export interface ScenarioInfo {
  summary: string;
  /** What `size` counts. */
  unit: string;
  defaultSize: number;
  make: (o: Required<ScenarioOptions>) => Scenario;
}

export const SCENARIOS: Readonly<Record<string, ScenarioInfo>> = {
  sealing: {
    summary: 'Filecoin sealing pipeline (AP, PC1, PC2, C1, C2, Finalize) on 5 sealers and 3 C2 provers',
    unit: 'sectors',
    defaultSize: 32,
    make: sealing,
  },
  'prover-burst': {
    summary: 'a burst of zk proofs with mixed priorities and deadlines on 6 GPU workers of 3 generations',
    unit: 'proofs',
    defaultSize: 120,
    make: proverBurst,
  },
  'verifier-pool': {
    summary: 'waves of short verifications on 16 verifiers, some of which stall',
    unit: 'verifications',
    defaultSize: 600,
    make: verifierPool,
  },
};

export function makeScenario(name: string, options: ScenarioOptions): Scenario {
  const info = SCENARIOS[name];
  if (info === undefined) throw new Error(`no scenario ${name}; the scenarios are ${Object.keys(SCENARIOS).join(', ')}`);
  const size = options.size ?? info.defaultSize;
  if (!Number.isSafeInteger(size) || size < 1) throw new Error(`size must be a whole number of at least 1 (got ${size})`);
  if (options.stalls === true && name !== 'prover-burst') throw new Error(`stalls apply to the prover-burst scenario, not ${name}`);
  return info.make({ seed: options.seed, size, faults: options.faults ?? true, stalls: options.stalls ?? false });
}

// ---- Randomness ----

interface Draw {
  uniform(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

/** Independent streams per purpose, so that changing one part of a scenario leaves the others' draws alone. */
export function draw(seed: number, stream: number): Draw {
  const r: Random = seededRandom((seed * 0x9e3779b1 + stream * 0x85ebca77) | 0);
  return {
    uniform: (lo, hi) => lo + (hi - lo) * r.next(),
    chance: (p) => r.next() < p,
    pick: (items) => items[Math.floor(r.next() * items.length)]!,
  };
}

export const req = (r: Partial<Requires>): Requires => ({ cores: 0, memoryMb: 0, gpus: 0, labels: {}, ...r });

function worker(name: string, w: Omit<SimWorker, 'name' | 'labels'> & { labels?: SimWorker['labels'] }): SimWorker {
  return { name, labels: {}, ...w };
}

/**
 * Faults at times spread over the fault-free lower bound of the workload, so
 * that they land while work runs whatever the size: one per entry of `plan`,
 * each on a worker not yet faulted.
 */
export function faultSchedule(
  s: Omit<Scenario, 'faults'>,
  d: Draw,
  plan: readonly { kind: FaultKind; among: readonly string[]; durationMs: readonly [number, number] }[],
): Fault[] {
  const lb = lowerBound(s).ms;
  const used = new Set<string>();
  const out: Fault[] = [];
  for (const p of plan) {
    const free = p.among.filter((w) => !used.has(w));
    if (free.length === 0) continue;
    const w = d.pick(free);
    used.add(w);
    out.push({
      atMs: Math.round(d.uniform(0.1, 0.6) * lb),
      worker: w,
      kind: p.kind,
      durationMs: Math.round(d.uniform(p.durationMs[0], p.durationMs[1])),
    });
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}

// ---- sealing ----

interface Stage {
  name: string;
  queue: string;
  /** Reference run time for a 32 GiB sector. */
  baseMs: number;
  requires: Requires;
  /** Runs where the sector's data is (affinity require on the sector key). */
  local: boolean;
}

export const SEALING_STAGES: readonly Stage[] = [
  { name: 'ap', queue: 'seal.ap', baseMs: 10 * MINUTE, requires: req({ cores: 1, memoryMb: 4 * GB }), local: false },
  { name: 'pc1', queue: 'seal.pc1', baseMs: 210 * MINUTE, requires: req({ cores: 4, memoryMb: 64 * GB }), local: true },
  { name: 'pc2', queue: 'seal.pc2', baseMs: 20 * MINUTE, requires: req({ cores: 8, memoryMb: 48 * GB, gpus: 1 }), local: true },
  { name: 'c1', queue: 'seal.c1', baseMs: 1 * MINUTE, requires: req({ cores: 1, memoryMb: 2 * GB }), local: true },
  { name: 'c2', queue: 'seal.c2', baseMs: 18 * MINUTE, requires: req({ cores: 16, memoryMb: 192 * GB, gpus: 1 }), local: false },
  { name: 'finalize', queue: 'seal.finalize', baseMs: 8 * MINUTE, requires: req({ cores: 1, memoryMb: 2 * GB }), local: true },
];

function sealer(name: string, o: { cores: number; memoryGb: number; ap: number; pc1: number; bays: number; cpu: number; gpu: number }): SimWorker {
  return worker(name, {
    cores: o.cores,
    memoryMb: o.memoryGb * GB,
    gpus: 1,
    queues: { 'seal.ap': o.ap, 'seal.pc1': o.pc1, 'seal.pc2': 1, 'seal.c1': 2, 'seal.finalize': 2 },
    factor: { 'seal.pc1': o.cpu, 'seal.pc2': o.gpu },
    bays: { queue: 'seal.ap', count: o.bays },
  });
}

function c2Prover(name: string, o: { cores: number; memoryGb: number; gpus: number; gpu: number }): SimWorker {
  return worker(name, { cores: o.cores, memoryMb: o.memoryGb * GB, gpus: o.gpus, queues: { 'seal.c2': o.gpus }, factor: { 'seal.c2': o.gpu } });
}

function sealing(o: Required<ScenarioOptions>): Scenario {
  const queues: Record<string, SimQueue> = {};
  for (const st of SEALING_STAGES) {
    queues[st.queue] = { requires: st.requires, timeoutMs: 3 * st.baseMs + 30 * MINUTE, heartbeatTimeoutMs: 5 * MINUTE };
  }
  const workers = [
    sealer('sealer-1', { cores: 48, memoryGb: 512, ap: 2, pc1: 6, bays: 8, cpu: 1, gpu: 1 }),
    sealer('sealer-2', { cores: 48, memoryGb: 512, ap: 2, pc1: 6, bays: 8, cpu: 1, gpu: 1 }),
    sealer('sealer-3', { cores: 32, memoryGb: 384, ap: 2, pc1: 4, bays: 6, cpu: 1.15, gpu: 1.2 }),
    sealer('sealer-4', { cores: 32, memoryGb: 384, ap: 2, pc1: 4, bays: 6, cpu: 1.15, gpu: 1.2 }),
    sealer('sealer-5', { cores: 24, memoryGb: 256, ap: 1, pc1: 3, bays: 4, cpu: 1.3, gpu: 1.5 }),
    c2Prover('prover-1', { cores: 32, memoryGb: 512, gpus: 2, gpu: 0.8 }),
    c2Prover('prover-2', { cores: 32, memoryGb: 512, gpus: 2, gpu: 0.8 }),
    c2Prover('prover-3', { cores: 16, memoryGb: 256, gpus: 1, gpu: 1.2 }),
  ];
  const d = draw(o.seed, 1);
  const jobs: SimJob[] = [];
  for (let i = 1; i <= o.size; i++) {
    const sector = `s${String(i).padStart(3, '0')}`;
    const key = `sector-${sector}`;
    // A deal sector carries client data: its AP takes longer, and it goes before committed-capacity filler.
    const deal = d.chance(0.25);
    let parent: string | null = null;
    SEALING_STAGES.forEach((st, k) => {
      const noise = d.uniform(0.92, 1.08);
      const job: SimJob = {
        key: `${sector}.${st.name}`,
        queue: st.queue,
        baseMs: Math.round(st.baseMs * noise * (deal && st.name === 'ap' ? 1.5 : 1)),
        releaseMs: 0,
        // Later stages first, so that started sectors finish and free their bays; deals before filler.
        priority: 10 * k + (deal ? 5 : 0),
        parents: parent === null ? [] : [parent],
        affinity: st.local ? { key, mode: 'require' } : null,
        deadlineMs: null,
        dueMs: null,
      };
      // AP writes the sector to the sealer's scratch space; the layers PC1 builds stay there
      // (PC2 and C1 read them) until Finalize moves the sealed sector away.
      if (st.name === 'ap') (job.holds = key), (job.bay = 'occupy');
      if (st.name === 'finalize') (job.releases = key), (job.bay = 'free');
      jobs.push(job);
      parent = job.key;
    });
  }
  const base = {
    name: 'sealing',
    seed: o.seed,
    size: o.size,
    queues,
    workers,
    jobs,
    settings: { heartbeatIntervalMs: MINUTE, sweepIntervalMs: 30 * SECOND, workerOfflineAfterMs: 3 * MINUTE, horizonMs: 30 * 24 * HOUR },
  };
  const sealers = workers.filter((w) => w.bays !== undefined).map((w) => w.name);
  const faults = o.faults
    ? faultSchedule(base, draw(o.seed, 2), [
        // A stall of a few minutes: past the 5-minute heartbeat timeout, its attempts are lost and rerun on it.
        { kind: 'stall', among: sealers, durationMs: [2 * MINUTE, 12 * MINUTE] },
        // A machine reboots: its running attempts are lost; its sectors' data waits on its disks for it.
        { kind: 'leave', among: workers.map((w) => w.name), durationMs: [15 * MINUTE, 45 * MINUTE] },
      ])
    : [];
  return { ...base, faults };
}

// ---- prover-burst ----

function proverBurst(o: Required<ScenarioOptions>): Scenario {
  const block = { requires: req({ gpus: 1, cores: 8, memoryMb: 32 * GB }), timeoutMs: HOUR, heartbeatTimeoutMs: 30 * SECOND };
  const aggregate = { requires: req({ gpus: 2, cores: 16, memoryMb: 96 * GB }), timeoutMs: HOUR, heartbeatTimeoutMs: 30 * SECOND };
  const queues: Record<string, SimQueue> = { 'prove.block': block, 'prove.aggregate': aggregate };
  const nominal: Record<string, number> = { 'prove.block': 4 * MINUTE, 'prove.aggregate': 10 * MINUTE };
  const gpuBox = (name: string, gpus: number, f: number, aggregateSlots: number): SimWorker =>
    worker(name, {
      cores: 16 * gpus,
      memoryMb: 64 * GB * gpus,
      gpus,
      queues: aggregateSlots > 0 ? { 'prove.block': gpus, 'prove.aggregate': aggregateSlots } : { 'prove.block': gpus },
      factor: { 'prove.block': f, 'prove.aggregate': f },
    });
  const workers = [
    gpuBox('gpu-a1', 4, 0.6, 2),
    gpuBox('gpu-a2', 4, 0.6, 2),
    gpuBox('gpu-b1', 2, 1, 1),
    gpuBox('gpu-b2', 2, 1, 1),
    gpuBox('gpu-c1', 1, 1.6, 0),
    gpuBox('gpu-c2', 1, 1.6, 0),
  ];
  const d = draw(o.seed, 1);
  const releases = Array.from({ length: o.size }, () => Math.round(d.uniform(0, 2 * MINUTE))).sort((a, b) => a - b);
  const jobs: SimJob[] = releases.map((releaseMs, i) => {
    const queue = d.chance(0.2) ? 'prove.aggregate' : 'prove.block';
    const nominalMs = nominal[queue]!;
    const c = d.uniform(0, 1);
    // Urgent: a block whose proof is due within 15 minutes; normal: within 40; batch: whenever.
    const klass = c < 0.2 ? { priority: 10, withinMs: 15 * MINUTE } : c < 0.7 ? { priority: 5, withinMs: 40 * MINUTE } : { priority: 0, withinMs: null };
    const dueMs = klass.withinMs === null ? null : releaseMs + klass.withinMs;
    return {
      key: `p${String(i + 1).padStart(4, '0')}`,
      queue,
      baseMs: Math.round(nominalMs * d.uniform(0.85, 1.15)),
      releaseMs,
      priority: klass.priority,
      parents: [],
      affinity: null,
      // The store's deadline is a start-by time: the latest start that can finish in time on reference hardware.
      deadlineMs: dueMs === null ? null : dueMs - nominalMs,
      dueMs,
    };
  });
  const base = {
    name: 'prover-burst',
    seed: o.seed,
    size: o.size,
    queues,
    workers,
    jobs,
    settings: { heartbeatIntervalMs: 10 * SECOND, sweepIntervalMs: SECOND, workerOfflineAfterMs: 30 * SECOND, horizonMs: 7 * 24 * HOUR },
  };
  const names = workers.map((w) => w.name);
  // Hanging workers (stalls) come after the other faults, so that those draw what they drew without them.
  const hang = { kind: 'hang' as const, among: names, durationMs: [30 * MINUTE, 60 * MINUTE] as const };
  const plan = [
    ...(o.faults ? [{ kind: 'leave' as const, among: names, durationMs: [5 * MINUTE, 15 * MINUTE] as const }] : []),
    ...(o.faults ? [{ kind: 'stall' as const, among: names, durationMs: [20 * SECOND, 90 * SECOND] as const }] : []),
    ...(o.stalls ? [hang, hang] : []),
  ];
  const faults = plan.length > 0 ? faultSchedule(base, draw(o.seed, 2), plan) : [];
  return { ...base, faults };
}

// ---- verifier-pool ----

const VERIFY_WAVES = 20;

function verifierPool(o: Required<ScenarioOptions>): Scenario {
  const queue = 'verify.contribution';
  const queues: Record<string, SimQueue> = {
    [queue]: { requires: req({ cores: 2, memoryMb: 4 * GB }), timeoutMs: 10 * MINUTE, heartbeatTimeoutMs: 20 * SECOND },
  };
  const d = draw(o.seed, 1);
  const workers = Array.from({ length: 16 }, (_, i) => {
    const big = i % 2 === 0;
    return worker(`verifier-${String(i + 1).padStart(2, '0')}`, {
      cores: big ? 8 : 4,
      memoryMb: 16 * GB,
      gpus: 0,
      queues: { [queue]: big ? 4 : 2 },
      factor: { [queue]: Math.round(d.uniform(0.7, 1.5) * 100) / 100 },
    });
  });
  const jobs: SimJob[] = [];
  for (let i = 0; i < o.size; i++) {
    // Contributions arrive in waves, 15 seconds apart, as participants finish theirs.
    const wave = Math.floor((i * VERIFY_WAVES) / o.size);
    jobs.push({
      key: `v${String(i + 1).padStart(5, '0')}`,
      queue,
      baseMs: Math.round(d.uniform(10 * SECOND, 40 * SECOND)),
      releaseMs: wave * 15 * SECOND,
      priority: 0,
      parents: [],
      affinity: null,
      deadlineMs: null,
      dueMs: null,
    });
  }
  const base = {
    name: 'verifier-pool',
    seed: o.seed,
    size: o.size,
    queues,
    workers,
    jobs,
    settings: { heartbeatIntervalMs: 5 * SECOND, sweepIntervalMs: SECOND, workerOfflineAfterMs: 15 * SECOND, horizonMs: 7 * 24 * HOUR },
  };
  const names = workers.map((w) => w.name);
  const stall = { kind: 'stall' as const, among: names, durationMs: [30 * SECOND, 2 * MINUTE] as const };
  const faults = o.faults
    ? faultSchedule(base, draw(o.seed, 2), [stall, stall, stall, { kind: 'leave', among: names, durationMs: [MINUTE, 3 * MINUTE] }])
    : [];
  return { ...base, faults };
}
