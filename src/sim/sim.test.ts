// The simulator: the lower bound on hand-checked workloads, the FIFO baseline,
// a small smoke run of every scenario (it completes and reports every figure;
// nothing here asserts that a figure is good), and replay from a seed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Candidate, PlaceInput, WorkerCapacity } from '../types/model.ts';
import { lowerBound, wholeJobsWindowMs } from './bound.ts';
import { fifoPlace } from './fifo.ts';
import { lotusPlace } from './lotus.ts';
import { formatReport, SCENARIOS, simulate, type SimulationReport } from './index.ts';
import { formatSeedSweep, simulateSeeds } from './seeds.ts';
import type { SimJob, SimQueue, SimWorker } from './model.ts';

const S = 1000;

const queue = (r: Partial<SimQueue['requires']>): SimQueue => ({
  requires: { cores: 0, memoryMb: 0, gpus: 0, labels: {}, ...r },
  timeoutMs: 3_600_000,
  heartbeatTimeoutMs: 30_000,
});

const job = (key: string, q: string, baseMs: number, over: Partial<SimJob> = {}): SimJob => ({
  key,
  queue: q,
  baseMs,
  releaseMs: 0,
  priority: 0,
  parents: [],
  affinity: null,
  deadlineMs: null,
  dueMs: null,
  ...over,
});

const simWorker = (name: string, over: Partial<SimWorker>): SimWorker => ({
  name,
  cores: 0,
  memoryMb: 0,
  gpus: 0,
  labels: {},
  queues: {},
  factor: {},
  ...over,
});

describe('lower bound', () => {
  // w1 runs two q.a at once at reference speed; w2 runs one q.a at half speed and one q.b.
  const queues = { 'q.a': queue({ cores: 1 }), 'q.b': queue({ gpus: 1 }) };
  const workers = [
    simWorker('w1', { cores: 2, queues: { 'q.a': 2 } }),
    simWorker('w2', { cores: 1, gpus: 1, queues: { 'q.a': 1, 'q.b': 1 }, factor: { 'q.a': 2 } }),
  ];

  it('takes the largest of the critical path, work over capacity and whole jobs per slot', () => {
    // a1 -> b1 is the longest chain: 60 + 30 s. q.a: 240 s of work over 2 + 1/2 = 96 s; but four 60 s
    // jobs need 120 s of window (two on w1 in 60 s, five by 120 s with w2's one), which a schedule meets:
    // a1, a2 then a3, a4 on w1 end at 120 s; b1 runs 60..90 s on w2.
    const jobs = [
      job('a1', 'q.a', 60 * S),
      job('b1', 'q.b', 30 * S, { parents: ['a1'] }),
      job('a2', 'q.a', 60 * S),
      job('a3', 'q.a', 60 * S),
      job('a4', 'q.a', 60 * S),
    ];
    const lb = lowerBound({ queues, workers, jobs });
    assert.equal(lb.criticalPathMs, 90 * S);
    const a = lb.classes.find((c) => c.name === 'q.a slots')!;
    assert.equal(a.workMs, 240 * S);
    assert.equal(a.capacity, 2.5);
    assert.equal(a.by, 'whole jobs');
    assert.equal(a.boundMs, 120 * S);
    const b = lb.classes.find((c) => c.name === 'q.b slots')!;
    assert.equal(b.boundMs, 90 * S, 'q.b cannot start before a1 ends at 60 s');
    assert.equal(lb.classes.length, 2, 'cores and GPUs are each taken by one queue only: no shared class');
    assert.equal(lb.ms, 120 * S);
    assert.equal(lb.binding, 'q.a slots (whole jobs)');
  });

  it('counts work released later from its release, and the tail that must follow it', () => {
    // Released at 100 s: 2 x 100 s + 3 x 10 s of q.a, 230 s over capacity 2.5 = 92 s, then b1 (30 s) after c1.
    const jobs = [
      job('c1', 'q.a', 100 * S, { releaseMs: 100 * S }),
      job('b1', 'q.b', 30 * S, { parents: ['c1'] }),
      job('c2', 'q.a', 100 * S, { releaseMs: 100 * S }),
      job('c3', 'q.a', 10 * S, { releaseMs: 100 * S }),
      job('c4', 'q.a', 10 * S, { releaseMs: 100 * S }),
      job('c5', 'q.a', 10 * S, { releaseMs: 100 * S }),
    ];
    const lb = lowerBound({ queues, workers, jobs });
    assert.equal(lb.criticalPathMs, 230 * S);
    const a = lb.classes.find((c) => c.name === 'q.a slots')!;
    assert.equal(a.by, 'work');
    // Everything from 100 s: 100 + 230 / 2.5 + 0 = 192 s; c1 alone: 100 + 100 / 2.5 + 30 = 170 s.
    assert.equal(a.boundMs, 192 * S);
    assert.equal(lb.ms, 230 * S);
    assert.equal(lb.binding, 'critical path');
  });

  it('keeps a group of jobs on the worker that took its holder, in that worker\'s bays', () => {
    // Three sectors: h (10 s, takes a bay and holds the key) then l (20 s, requires the key, frees the bay).
    // Two workers with one bay each: pooled slots say 10 + two rounds of l = 50 s; but one worker must host
    // two sectors one after the other in its one bay, 2 x 30 s, which a schedule meets (h1 l1 h3 l3 | h2 l2).
    const qs = { 'q.h': queue({ cores: 1 }), 'q.l': queue({ cores: 1 }) };
    const ws = ['w1', 'w2'].map((n) => simWorker(n, { cores: 2, queues: { 'q.h': 1, 'q.l': 1 }, bays: { queue: 'q.h', count: 1 } }));
    const jobs = [1, 2, 3].flatMap((i) => [
      job(`h${i}`, 'q.h', 10 * S, { holds: `k${i}`, bay: 'occupy' }),
      job(`l${i}`, 'q.l', 20 * S, { parents: [`h${i}`], affinity: { key: `k${i}`, mode: 'require' }, releases: `k${i}`, bay: 'free' }),
    ]);
    const lb = lowerBound({ queues: qs, workers: ws, jobs });
    assert.equal(lb.classes.find((c) => c.name === 'q.l slots')!.boundMs, 50 * S);
    assert.equal(lb.localityMs, 60 * S);
    assert.equal(lb.ms, 60 * S);
    assert.match(lb.binding, /^locality/);
    // With a second bay each, the bays no longer bind: w1 runs l1 and l3 one after the other on its one slot.
    const roomy = ws.map((w) => ({ ...w, bays: { queue: 'q.h', count: 2 } }));
    assert.equal(lowerBound({ queues: qs, workers: roomy, jobs }).localityMs, 50 * S);
  });

  it('queues a group\'s later job behind the round of its earlier one on the same worker', () => {
    // Four groups h (10 s) -> a (30 s, two slots) -> b (10 s, one slot), all on one worker: a ends at 40, 40, 70, 70 s.
    // Each queue alone says 80 s; but the two groups whose a ends at 70 s still run their b one after the other: 90 s,
    // which a schedule meets (b at 40, 50, 70 and 80 s).
    const qs = { 'q.h': queue({ cores: 1 }), 'q.a': queue({ cores: 1 }), 'q.b': queue({ cores: 1 }) };
    const ws = [simWorker('w', { cores: 8, queues: { 'q.h': 4, 'q.a': 2, 'q.b': 1 } })];
    const jobs = [1, 2, 3, 4].flatMap((i) => [
      job(`h${i}`, 'q.h', 10 * S, { holds: `k${i}` }),
      job(`a${i}`, 'q.a', 30 * S, { parents: [`h${i}`], affinity: { key: `k${i}`, mode: 'require' } }),
      job(`b${i}`, 'q.b', 10 * S, { parents: [`a${i}`], affinity: { key: `k${i}`, mode: 'require' }, releases: `k${i}` }),
    ]);
    assert.equal(lowerBound({ queues: qs, workers: ws, jobs }).localityMs, 90 * S);
  });

  it('starts a group past the bays only once earlier groups have released theirs', () => {
    // Four groups h (10 s) -> a (40 s, two slots) -> r (20 s, one slot, frees the bay) on one worker with two bays.
    // Bays alone say two rounds of a 70 s hold, 140 s; but the second release waits for the first r: 50 + 2 x 20 = 90 s,
    // and the fourth group needs its 70 s after it: 160 s, which a schedule meets.
    const qs = { 'q.h': queue({ cores: 1 }), 'q.a': queue({ cores: 1 }), 'q.r': queue({ cores: 1 }) };
    const ws = [simWorker('w', { cores: 8, queues: { 'q.h': 2, 'q.a': 2, 'q.r': 1 }, bays: { queue: 'q.h', count: 2 } })];
    const jobs = [1, 2, 3, 4].flatMap((i) => [
      job(`h${i}`, 'q.h', 10 * S, { holds: `k${i}`, bay: 'occupy' }),
      job(`a${i}`, 'q.a', 40 * S, { parents: [`h${i}`], affinity: { key: `k${i}`, mode: 'require' } }),
      job(`r${i}`, 'q.r', 20 * S, { parents: [`a${i}`], affinity: { key: `k${i}`, mode: 'require' }, releases: `k${i}`, bay: 'free' }),
    ]);
    assert.equal(lowerBound({ queues: qs, workers: ws, jobs }).localityMs, 160 * S);
  });

  it('finds the shortest window that holds every job, slot by slot', () => {
    assert.equal(wholeJobsWindowMs(0, 10, { w: 1 }, { w: 1 }), 0);
    assert.equal(wholeJobsWindowMs(3, 10, { w: 1 }, { w: 1 }), 30);
    // 32 jobs of 193 on 12 slots at 1, 8 at 1.15, 3 at 1.3: one round holds 23, the second needs 2 x 193.
    assert.equal(wholeJobsWindowMs(32, 193, { a: 12, b: 8, c: 3 }, { a: 1, b: 1.15, c: 1.3 }), 386);
  });
});

/** A ready candidate of queue q needing `cores` cores, created (and ready) at `createdAt`. */
function candidate(jobId: string, createdAt: number, priority: number, cores: number, key: string | null = null): Candidate {
  return {
    jobId,
    queue: 'q',
    priority,
    deadline: null,
    readyAt: createdAt,
    createdAt,
    requires: { cores, memoryMb: 0, gpus: 0, labels: {} },
    affinity: key === null ? null : { key, mode: 'prefer' },
    want: 1,
    excludedWorkerIds: [],
    pinnedWorkerId: null,
  };
}

/** An 8-core worker with these free slots per queue, out of totalSlots, none used. */
function capacity(workerId: string, freeSlots: Record<string, number>, totalSlots: number, over: Partial<WorkerCapacity> = {}): WorkerCapacity {
  return {
    workerId,
    labels: {},
    keys: new Set(),
    freeSlots,
    totalSlots,
    usedSlots: 0,
    freeCores: 8,
    freeMemoryMb: 0,
    totalCores: 8,
    totalMemoryMb: 0,
    freeGpuIds: [],
    blockedQueues: [],
    speedMs: {},
    ...over,
  };
}

describe('fifo baseline', () => {
  const cand = (jobId: string, createdAt: number, priority: number): Candidate => candidate(jobId, createdAt, priority, 1);
  const cap = (workerId: string, slots: number): WorkerCapacity => capacity(workerId, { q: slots }, slots);

  it('gives the oldest jobs to the first workers that fit, whatever their priority', () => {
    const input: PlaceInput = {
      now: 10,
      workers: [cap('w2', 2), cap('w1', 1)],
      candidates: [cand('new-urgent', 5, 100), cand('old', 1, 0), cand('middle', 3, 0)],
      maxPlacements: 10,
    };
    assert.deepEqual(
      fifoPlace(input).map((p) => [p.jobId, p.workerId]),
      [['old', 'w1'], ['middle', 'w2'], ['new-urgent', 'w2']],
    );
    assert.equal(fifoPlace({ ...input, maxPlacements: 1 }).length, 1);
  });
});

describe('lotus-like baseline', () => {
  const cand = (jobId: string, createdAt: number, priority: number, key: string | null = null): Candidate => candidate(jobId, createdAt, priority, 2, key);
  const cap = (workerId: string, slots: Record<string, number>, over: Partial<WorkerCapacity> = {}): WorkerCapacity => capacity(workerId, slots, 8, over);
  const run = (variant: 'utilization' | 'spread', workers: WorkerCapacity[], candidates: Candidate[]): string[][] =>
    lotusPlace(variant)({ now: 10, workers, candidates, maxPlacements: 10 }).map((p) => [p.jobId, p.workerId]);

  it('takes tasks by priority and prefers the worker holding the sector, then fewer task types', () => {
    const workers = [cap('many', { q: 4, r: 1, s: 1 }), cap('few', { q: 4 }), cap('holder', { q: 4, r: 1, s: 1 }, { keys: new Set(['k']) })];
    const got = run('utilization', workers, [cand('low', 1, 0), cand('high', 5, 9), cand('local', 9, 5, 'k')]);
    assert.deepEqual(got, [['high', 'few'], ['local', 'holder'], ['low', 'few']]);
  });

  it('utilization weighs what the round assigned; spread counts the tasks it assigned', () => {
    // a is busier (4 of 8 cores used) than b: utilization fills b until it is as busy, spread alternates.
    const workers = [cap('a', { q: 4 }, { freeCores: 4 }), cap('b', { q: 4 })];
    const jobs = [cand('j1', 1, 0), cand('j2', 2, 0), cand('j3', 3, 0)];
    assert.deepEqual(run('utilization', workers, jobs), [['j1', 'b'], ['j2', 'b'], ['j3', 'a']]);
    assert.deepEqual(run('spread', workers, jobs), [['j1', 'b'], ['j2', 'a'], ['j3', 'b']]);
  });
});

/** Small enough to run in a second or two each: the figures are not the point. */
const SMOKE_SIZES: Record<string, number> = { sealing: 3, 'prover-burst': 16, 'verifier-pool': 40 };
/** Jobs per unit of size: a sector is six stages. */
const JOBS_PER_UNIT: Record<string, number> = { sealing: 6, 'prover-burst': 1, 'verifier-pool': 1 };

function assertFigures(r: SimulationReport): void {
  assert.deepEqual(r.policies.map((p) => p.policy), ['gaffer', 'fifo', 'lotus-util', 'lotus-spread']);
  assert.ok(r.lowerBound.ms > 0 && Number.isFinite(r.lowerBound.ms));
  assert.ok(r.lowerBound.criticalPathMs > 0 && r.lowerBound.criticalPathMs <= r.lowerBound.ms);
  assert.ok(r.lowerBound.classes.length > 0);
  for (const p of r.policies) {
    const finite = [p.makespanMs, p.lowerBoundMs, p.ratio, p.waitMs.p50, p.waitMs.p99, p.waitMs.max, ...Object.values(p.utilisation)];
    for (const x of finite) assert.ok(Number.isFinite(x) && x >= 0, `${p.policy}: ${x} is a finite figure`);
    // The bound must be one: no run, however scheduled, ends before it (1 ms for rounding run times to ms).
    assert.ok(p.makespanMs >= p.lowerBoundMs - 1, `${p.policy}: makespan ${p.makespanMs} >= bound ${p.lowerBoundMs}`);
    assert.ok(p.waitMs.p50 <= p.waitMs.p99 && p.waitMs.p99 <= p.waitMs.max);
    assert.deepEqual(Object.keys(p.utilisation).sort(), r.lowerBound.classes.map((c) => c.name).sort());
    for (const u of Object.values(p.utilisation)) assert.ok(u <= 1 + 1e-9, `${p.policy}: utilisation ${u} <= 1`);
    assert.equal(p.jobs.total, p.jobs.succeeded + p.jobs.expired + p.jobs.failed);
    assert.ok(p.attempts.completed >= p.jobs.succeeded && p.attempts.total >= p.attempts.completed + p.attempts.lost);
    assert.ok(p.deadlines.missed <= p.deadlines.total);
    // Faults are scheduled within the first 60% of the bound, so each strikes before any run ends.
    assert.equal(p.faults.stall + p.faults.leave + p.faults.hang, r.faults.length);
  }
  const table = formatReport(r);
  for (const row of ['makespan', 'lower bound', 'utilisation', 'deadline misses', 'wait p50', 'wait p99', 'attempts', 'faults injected']) {
    assert.ok(table.includes(row), `the table shows ${row}`);
  }
}

describe('simulate', () => {
  for (const name of Object.keys(SCENARIOS)) {
    it(`runs ${name} under every policy and reports every figure`, async () => {
      const r = await simulate({ scenario: name, seed: 3, size: SMOKE_SIZES[name]! });
      assert.equal(r.scenario, name);
      assert.ok(r.faults.length > 0, 'faults are injected by default');
      assertFigures(r);
      for (const p of r.policies) assert.equal(p.jobs.total, r.size * JOBS_PER_UNIT[name]!);
    });
  }

  it('replays: one seed, the same report', async () => {
    const run = (seed: number): Promise<SimulationReport> => simulate({ scenario: 'prover-burst', seed, size: 16 });
    const a = JSON.stringify(await run(5));
    assert.equal(JSON.stringify(await run(5)), a);
    assert.notEqual(JSON.stringify(await run(6)), a, 'another seed, another workload');
  });

  it('runs without faults when asked', async () => {
    const r = await simulate({ scenario: 'sealing', seed: 3, size: 2, faults: false });
    assert.deepEqual(r.faults, []);
    for (const p of r.policies) assert.deepEqual(p.faults, { stall: 0, leave: 0, hang: 0 });
    assertFigures(r);
  });

  it('hangs workers in the prover burst when asked, and runs the coordinator\'s backups', async () => {
    const r = await simulate({ scenario: 'prover-burst', seed: 2, size: 24, faults: false, stalls: true, speculation: true });
    assert.deepEqual(r.faults.map((f) => f.kind), ['hang', 'hang']);
    assert.equal(r.speculation, true);
    for (const p of r.policies) assert.ok(p.attempts.backups >= 0 && p.attempts.backups <= p.attempts.total);
    assertFigures(r);
    await assert.rejects(simulate({ scenario: 'sealing', seed: 1, size: 2, stalls: true }), /stalls apply to the prover-burst scenario/);
  });

  it('sweeps seeds: median and worst of every policy, the same on a second sweep', async () => {
    const sweep = (): ReturnType<typeof simulateSeeds> => simulateSeeds({ scenario: 'prover-burst', firstSeed: 4, lastSeed: 6, size: 8 });
    const a = await sweep();
    assert.deepEqual(a.seeds, [4, 5, 6]);
    assert.deepEqual(a.policies.map((p) => p.policy), ['gaffer', 'fifo', 'lotus-util', 'lotus-spread']);
    for (const p of a.policies) {
      assert.ok(p.makespanMs.median > 0 && p.makespanMs.median <= p.makespanMs.worst);
      assert.ok(p.ratio.median >= 1 - 1e-6 && p.ratio.median <= p.ratio.worst);
      assert.ok(p.deadlineMisses.median <= p.deadlineMisses.worst && p.deadlineMisses.worst <= p.deadlineMisses.total);
      assert.equal(Object.keys(p.seedsWorseThan).length, 3);
    }
    const table = formatSeedSweep(a);
    for (const p of a.policies) assert.match(table, new RegExp(`^\\| ${p.policy} \\|`, 'm'));
    assert.deepEqual(await sweep(), a);
    await assert.rejects(simulateSeeds({ scenario: 'prover-burst', firstSeed: 3, lastSeed: 2 }), /seeds must run/);
  });

  it('refuses an unknown scenario and a size below 1', async () => {
    await assert.rejects(simulate({ scenario: 'nope', seed: 1 }), /no scenario nope/);
    await assert.rejects(simulate({ scenario: 'sealing', seed: 1, size: 0 }), /size must be/);
  });
});
