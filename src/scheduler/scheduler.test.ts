import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Candidate, PlaceFn, PlaceInput, WorkerCapacity } from '../types/model.ts';
import { compareCandidates, effectivePriority, fits, place, sortCandidates, whyNot } from './index.ts';
import { followersFrom, NO_HINTS, RunTimes, type SchedulingHints } from './hints.ts';

const NOW = 1_000_000_000;
const MINUTE = 60_000;
const POLICY = { agingIntervalMs: MINUTE, agingMaxBoost: 10, deadlineUrgentMs: 5 * MINUTE };

function cand(jobId: string, over: Partial<Candidate> = {}): Candidate {
  return {
    jobId,
    queue: 'q',
    priority: 0,
    deadline: null,
    readyAt: NOW,
    createdAt: NOW,
    requires: { cores: 1, memoryMb: 100, gpus: 0, labels: {} },
    affinity: null,
    want: 1,
    excludedWorkerIds: [],
    pinnedWorkerId: null,
    ...over,
  };
}

function worker(workerId: string, over: Partial<WorkerCapacity> = {}): WorkerCapacity {
  return {
    workerId,
    labels: {},
    keys: new Set(),
    freeSlots: { q: 10 },
    totalSlots: 10,
    usedSlots: 0,
    freeCores: 64,
    freeMemoryMb: 64_000,
    totalCores: 64,
    totalMemoryMb: 64_000,
    freeGpuIds: [],
    blockedQueues: [],
    speedMs: {},
    ...over,
  };
}

function input(workers: WorkerCapacity[], candidates: Candidate[], maxPlacements = 1000): PlaceInput {
  return { now: NOW, workers, candidates, maxPlacements };
}

function countBy(placements: { workerId: string }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of placements) out[p.workerId] = (out[p.workerId] ?? 0) + 1;
  return out;
}

const order = (cs: Candidate[], now = NOW) => sortCandidates(cs, now, POLICY).map((c) => c.jobId);

describe('order', () => {
  it('puts higher priority first', () => {
    assert.deepEqual(order([cand('a', { priority: 1 }), cand('b', { priority: 5 })]), ['b', 'a']);
  });

  it('then earlier deadline, with no deadline last', () => {
    const cs = [cand('none'), cand('late', { deadline: NOW + 2000 }), cand('soon', { deadline: NOW + 1000 })];
    assert.deepEqual(order(cs), ['soon', 'late', 'none']);
  });

  it('then older first, then job id', () => {
    const cs = [cand('c', { createdAt: NOW - 1 }), cand('b', { createdAt: NOW - 5 }), cand('a', { createdAt: NOW - 1 })];
    assert.deepEqual(order(cs), ['b', 'a', 'c']);
  });

  it('is a total order: equal candidates compare by job id only', () => {
    assert.ok(compareCandidates(cand('a'), cand('b'), NOW, POLICY) < 0);
    assert.equal(compareCandidates(cand('a'), cand('a'), NOW, POLICY), 0);
  });

  it('ages a waiting job one point per interval, capped at agingMaxBoost', () => {
    assert.equal(effectivePriority(cand('a', { readyAt: NOW - 3 * MINUTE - 1 }), NOW, POLICY), 3);
    assert.equal(effectivePriority(cand('a', { readyAt: NOW - 1000 * MINUTE }), NOW, POLICY), 10);
    assert.equal(effectivePriority(cand('a', { priority: 2, readyAt: NOW + MINUTE }), NOW, POLICY), 2);
  });

  it('lifts an old low-priority job above a newer higher-priority one once it waited long enough', () => {
    const old = cand('old', { priority: 0, readyAt: NOW, createdAt: NOW });
    const fresh = (now: number) => cand('fresh', { priority: 5, readyAt: now, createdAt: now });
    assert.deepEqual(order([old, fresh(NOW + 4 * MINUTE)], NOW + 4 * MINUTE), ['fresh', 'old']);
    // At 5 minutes the two tie at 5; the older one wins on age.
    assert.deepEqual(order([old, fresh(NOW + 5 * MINUTE)], NOW + 5 * MINUTE), ['old', 'fresh']);
    assert.deepEqual(order([old, fresh(NOW + 6 * MINUTE)], NOW + 6 * MINUTE), ['old', 'fresh']);
  });

  it('never lifts past the cap', () => {
    const old = cand('old', { priority: 0, readyAt: NOW - 10_000 * MINUTE, createdAt: NOW - 10_000 * MINUTE });
    assert.deepEqual(order([old, cand('high', { priority: 11 })]), ['high', 'old']);
    assert.deepEqual(order([old, cand('tie', { priority: 10 })]), ['old', 'tie']);
  });

  it('uses SCHEDULING_DEFAULTS when no policy is given', () => {
    assert.equal(effectivePriority(cand('a', { readyAt: NOW - 2 * MINUTE }), NOW), 2);
  });
});

describe('fit', () => {
  const fitting = cand('j', { requires: { cores: 4, memoryMb: 1000, gpus: 1, labels: { arch: 'x86' } } });
  const roomy = worker('w', { labels: { arch: 'x86', zone: 'a' }, freeGpuIds: [3] });

  it('fits when every dimension fits', () => {
    assert.equal(fits(fitting, roomy), true);
    assert.equal(whyNot(fitting, roomy), null);
  });

  const misses: [string, Candidate, WorkerCapacity, RegExp][] = [
    ['queue', cand('j', { queue: 'other' }), worker('w'), /does not serve queue other/],
    ['slots', cand('j'), worker('w', { freeSlots: { q: 0 }, usedSlots: 10 }), /no free slot/],
    ['cores', cand('j', { requires: { cores: 65, memoryMb: 0, gpus: 0, labels: {} } }), worker('w'), /cores/],
    ['memory', cand('j', { requires: { cores: 0, memoryMb: 64_001, gpus: 0, labels: {} } }), worker('w'), /memory/],
    ['gpus', cand('j', { requires: { cores: 0, memoryMb: 0, gpus: 2, labels: {} } }), worker('w', { freeGpuIds: [0] }), /GPUs/],
    ['label missing', cand('j', { requires: { cores: 0, memoryMb: 0, gpus: 0, labels: { arch: 'arm' } } }), worker('w'), /label arch=arm/],
    ['label value', cand('j', { requires: { cores: 0, memoryMb: 0, gpus: 0, labels: { arch: 'arm' } } }), worker('w', { labels: { arch: 'x86' } }), /label arch=arm/],
    ['affinity require', cand('j', { affinity: { key: 's1', mode: 'require' } }), worker('w', { keys: new Set(['s2']) }), /affinity key s1/],
    ['replica exclusion', cand('j', { excludedWorkerIds: ['w'] }), worker('w'), /already holds/],
  ];
  for (const [what, c, w, reason] of misses) {
    it(`does not fit on ${what}`, () => {
      assert.equal(fits(c, w), false);
      assert.match(whyNot(c, w) ?? '', reason);
    });
  }

  it('fits affinity require on the key holder, and prefer anywhere', () => {
    assert.equal(fits(cand('j', { affinity: { key: 's1', mode: 'require' } }), worker('w', { keys: new Set(['s1']) })), true);
    assert.equal(fits(cand('j', { affinity: { key: 's1', mode: 'prefer' } }), worker('w')), true);
  });

  it('does not take inherited properties for a queue or a label', () => {
    assert.equal(fits(cand('j', { queue: 'toString' }), worker('w')), false);
    const c = cand('j', { requires: { cores: 0, memoryMb: 0, gpus: 0, labels: { constructor: 'x' } } });
    assert.equal(fits(c, worker('w')), false);
  });
});

describe('place', () => {
  it('is a PlaceFn', () => {
    const fn: PlaceFn = place;
    assert.deepEqual(fn(input([], [])), []);
  });

  it('prefers the affinity key holder when both fit', () => {
    const c = cand('j', { affinity: { key: 's1', mode: 'prefer' } });
    const ws = [worker('a'), worker('b', { keys: new Set(['s1']), usedSlots: 9, freeSlots: { q: 1 } })];
    assert.deepEqual(place(input(ws, [c])), [{ jobId: 'j', workerId: 'b', gpuIds: [] }]);
  });

  it('spreads 30 equal jobs over 3 equal idle workers, exactly 10 each', () => {
    const cs = Array.from({ length: 30 }, (_, i) => cand(`j${String(i).padStart(2, '0')}`));
    const out = place(input([worker('a'), worker('b'), worker('c')], cs));
    assert.equal(out.length, 30);
    assert.deepEqual(countBy(out), { a: 10, b: 10, c: 10 });
  });

  it('spreads by slot utilisation, not by free cores', () => {
    const small = worker('small', { freeCores: 16, totalCores: 16 });
    const cs = Array.from({ length: 10 }, (_, i) => cand(`j${i}`));
    assert.deepEqual(countBy(place(input([worker('big'), small], cs))), { big: 5, small: 5 });
    const coreless = Array.from({ length: 30 }, (_, i) => cand(`j${i}`, { requires: { cores: 0, memoryMb: 0, gpus: 0, labels: {} } }));
    assert.deepEqual(countBy(place(input([worker('a'), worker('b'), worker('c')], coreless))), { a: 10, b: 10, c: 10 });
  });

  it('breaks a utilisation tie by more free cores', () => {
    const out = place(input([worker('a', { freeCores: 8 }), worker('b', { freeCores: 9 })], [cand('j')]));
    assert.deepEqual(out.map((p) => p.workerId), ['b']);
  });

  it('gives a busier worker fewer', () => {
    const busy = worker('busy', { usedSlots: 6, freeSlots: { q: 4 }, freeCores: 58 });
    const cs = Array.from({ length: 8 }, (_, i) => cand(`j${i}`));
    // Idle takes 6 to catch up, then they alternate: idle 7, busy 1.
    assert.deepEqual(countBy(place(input([busy, worker('idle')], cs))), { idle: 7, busy: 1 });
  });

  it('hands out the lowest free GPU ids, each once', () => {
    const gpu = { cores: 1, memoryMb: 0, gpus: 1, labels: {} };
    const w = worker('g', { freeSlots: { q: 2 }, totalSlots: 2, freeGpuIds: [0, 1] });
    const out = place(input([w], [cand('a', { requires: gpu }), cand('b', { requires: gpu })]));
    assert.deepEqual(out, [
      { jobId: 'a', workerId: 'g', gpuIds: [0] },
      { jobId: 'b', workerId: 'g', gpuIds: [1] },
    ]);
  });

  it('does not over-commit cores, memory or GPUs across one call', () => {
    const big = { cores: 40, memoryMb: 40_000, gpus: 0, labels: {} };
    const out = place(input([worker('w')], [cand('a', { requires: big }), cand('b', { requires: big })]));
    assert.deepEqual(out.map((p) => p.jobId), ['a']);
  });

  it('places replicas on distinct workers', () => {
    const out = place(input([worker('a'), worker('b'), worker('c')], [cand('j', { want: 3 })]));
    assert.deepEqual(out.map((p) => p.workerId).sort(), ['a', 'b', 'c']);
  });

  it('places only as many replicas as there are fitting workers', () => {
    const ws = [worker('a'), worker('b'), worker('c', { freeSlots: { other: 10 } })];
    const out = place(input(ws, [cand('j', { want: 3 })]));
    assert.deepEqual(out.map((p) => p.workerId).sort(), ['a', 'b']);
  });

  it('never places a replica on an excluded worker', () => {
    const out = place(input([worker('a'), worker('b')], [cand('j', { want: 2, excludedWorkerIds: ['a'] })]));
    assert.deepEqual(out, [{ jobId: 'j', workerId: 'b', gpuIds: [] }]);
  });

  it('respects maxPlacements', () => {
    const cs = Array.from({ length: 10 }, (_, i) => cand(`j${i}`, { want: 2 }));
    assert.equal(place(input([worker('a'), worker('b')], cs, 5)).length, 5);
    assert.deepEqual(place(input([worker('a')], cs, 0)), []);
  });

  it('places in priority order when slots are short', () => {
    const cs = [cand('low', { priority: 1 }), cand('high', { priority: 9 }), cand('mid', { priority: 5 })];
    const w = worker('w', { freeSlots: { q: 2 }, totalSlots: 2 });
    assert.deepEqual(place(input([w], cs)).map((p) => p.jobId), ['high', 'mid']);
  });

  it('does not let a non-fitting head block a fitting job behind it', () => {
    const head = cand('head', { priority: 100, requires: { cores: 1000, memoryMb: 0, gpus: 0, labels: {} } });
    const out = place(input([worker('w')], [head, cand('tail')]));
    assert.deepEqual(out, [{ jobId: 'tail', workerId: 'w', gpuIds: [] }]);
  });

  it('leaves its input unchanged', () => {
    const gpu = { cores: 2, memoryMb: 500, gpus: 1, labels: {} };
    const ws = [worker('a', { freeGpuIds: [1, 0] }), worker('b', { freeGpuIds: [2], keys: new Set(['k']) })];
    const cs = [cand('x', { requires: gpu, want: 2 }), cand('y', { affinity: { key: 'k', mode: 'prefer' } })];
    const inp = input(ws, cs);
    const before = structuredClone(inp);
    const out = place(inp);
    assert.equal(out.length, 3);
    assert.deepEqual(inp, before);
  });

  it('is deterministic', () => {
    const mk = () => input(
      [worker('a', { freeCores: 10, totalCores: 10 }), worker('b', { freeCores: 20, totalCores: 64 }), worker('c')],
      Array.from({ length: 20 }, (_, i) => cand(`j${i}`, { priority: i % 3, want: 1 + (i % 2) })),
    );
    assert.deepEqual(place(mk()), place(mk()));
  });

  it('asserts on inconsistent input', () => {
    assert.throws(() => place(input([worker('a'), worker('a')], [])), /invariant violated: worker ids are unique/);
    assert.throws(() => place(input([worker('a', { usedSlots: 11 })], [])), /usedSlots/);
  });
});

describe('reliability checks and speed', () => {
  it('gives a challenge job only to its worker, and a blocked queue only its challenge', () => {
    const challenge = cand('c', { pinnedWorkerId: 'b' });
    const real = cand('r');
    const a = worker('a');
    const b = worker('b', { blockedQueues: ['q'] });
    assert.match(whyNot(challenge, a) ?? '', /challenge is for \(b\)/);
    assert.equal(whyNot(challenge, b), null);
    assert.match(whyNot(real, b) ?? '', /not passed the reliability check of queue q/);
    const out = place(input([a, b], [real, challenge]));
    assert.deepEqual(out.map((p) => `${p.jobId}@${p.workerId}`).sort(), ['c@b', 'r@a']);
  });

  it('sends a job near its deadline to the fastest measured worker, others by utilisation', () => {
    const fast = worker('z-fast', { speedMs: { q: 100 }, usedSlots: 5 });
    const slow = worker('a-slow', { speedMs: { q: 900 } });
    const unmeasured = worker('m');
    const near = cand('near', { deadline: NOW + MINUTE });
    const far = cand('far', { deadline: NOW + 60 * MINUTE });
    assert.deepEqual(place(input([slow, unmeasured, fast], [near])).map((p) => p.workerId), ['z-fast']);
    // Far from its deadline, speed does not count: the least utilised (then smaller id) wins.
    assert.deepEqual(place(input([slow, unmeasured, fast], [far])).map((p) => p.workerId), ['a-slow']);
    // Measured before unmeasured when urgent.
    assert.deepEqual(place(input([unmeasured, slow], [near])).map((p) => p.workerId), ['a-slow']);
  });
});

describe('pipeline hints', () => {
  // A sealing-like pipeline: ap (anywhere) is followed by pc1, which runs where the ap ran (its key).
  const hints = (over: Partial<SchedulingHints> = {}): SchedulingHints => ({ ...NO_HINTS, followers: { ap: ['pc1'] }, ...over });
  const sealer = (id: string, freeAp: number, freePc1: number, keys: string[] = []) =>
    worker(id, { freeSlots: { ap: freeAp, pc1: freePc1 }, keys: new Set(keys) });
  const ap = (id: string) => cand(id, { queue: 'ap' });
  const pc1 = (id: string, key: string) => cand(id, { queue: 'pc1', affinity: { key, mode: 'require' } });

  it('without hints decides as before', () => {
    const inp = input([sealer('a', 2, 0), sealer('b', 2, 1)], [ap('j1'), ap('j2')]);
    assert.deepEqual(place(inp, POLICY, NO_HINTS), place(inp, POLICY));
    assert.equal(place(inp, POLICY).length, 2);
  });

  it('admits a job only where a slot of its follower queue is in sight', () => {
    const out = place(input([sealer('a', 2, 0), sealer('b', 2, 1)], [ap('j1'), ap('j2')]), POLICY, hints());
    assert.deepEqual(out.map((p) => [p.jobId, p.workerId]), [['j1', 'b']]);
  });

  it('stages a job where a follower slot frees before the job would end', () => {
    // a's one pc1 slot is busy: leased 195 s ago, 200 s measured, so it frees 5 s from now; an ap takes 10 s there.
    const runTimeMs = { a: { ap: 10_000, pc1: 200_000 } };
    const busy = (agoMs: number) => hints({ runTimeMs, leasedAtMs: { a: { pc1: [NOW - agoMs] } } });
    assert.deepEqual(place(input([sealer('a', 1, 0)], [ap('j1')]), POLICY, busy(195_000)).map((p) => p.workerId), ['a']);
    // Freeing in 100 s, or past its expected end (a stall, a slower run), it is not in sight; nor without lease times.
    assert.deepEqual(place(input([sealer('a', 1, 0)], [ap('j1')]), POLICY, busy(100_000)), []);
    assert.deepEqual(place(input([sealer('a', 1, 0)], [ap('j1')]), POLICY, busy(201_000)), []);
    assert.deepEqual(place(input([sealer('a', 1, 0)], [ap('j1')]), POLICY, hints({ runTimeMs })), []);
    // The staged slot is one: a second ap waits.
    assert.equal(place(input([sealer('a', 2, 0)], [ap('j1'), ap('j2')]), POLICY, busy(195_000)).length, 1);
  });

  it('holds a job for a faster worker whose follower slot frees soon, and places it when the wait would cost more', () => {
    // s is free but slow (pc1 300 s); f runs its one pc1, leased 170 s ago with 200 s measured: it frees in 30 s.
    const runTimeMs = { s: { ap: 10_000, pc1: 300_000 }, f: { ap: 10_000, pc1: 200_000 } };
    const ws = () => [sealer('s', 1, 1), sealer('f', 1, 0)];
    const at = (agoMs: number) => hints({ runTimeMs, leasedAtMs: { f: { pc1: [NOW - agoMs] } } });
    // On f its pc1 ends at 30 + 200 s, on s at 10 + 300 s: it waits for f.
    assert.deepEqual(place(input(ws(), [ap('j1')]), POLICY, at(170_000)), []);
    // Freeing in 150 s, f would end it at 150 + 200 s, later than s: it goes to s.
    assert.deepEqual(place(input(ws(), [ap('j1')]), POLICY, at(50_000)).map((p) => p.workerId), ['s']);
    // Two jobs, one expected slot: the second goes to s at once.
    assert.deepEqual(place(input(ws(), [ap('j1'), ap('j2')]), POLICY, at(170_000)).map((p) => [p.jobId, p.workerId]), [['j2', 's']]);
  });

  it('counts on a worker full of data sets, from the chains it runs down the pipeline', () => {
    // f declares no free ap (its bays are full) and runs no ap; its pc2 (after pc1) ends in 5 s, then the data set goes.
    const followers = { ap: ['pc1'], pc1: ['pc2'] };
    const runTimeMs = { s: { ap: 10_000, pc1: 300_000, pc2: 20_000 }, f: { ap: 10_000, pc1: 200_000, pc2: 20_000 } };
    const full = worker('f', { freeSlots: { ap: 0, pc1: 1, pc2: 0 } });
    const ws = () => [worker('s', { freeSlots: { ap: 1, pc1: 1, pc2: 1 } }), full];
    const busy = (agoMs: number) => hints({ followers, runTimeMs, leasedAtMs: { f: { pc2: [NOW - agoMs] } } });
    assert.deepEqual(place(input(ws(), [ap('j1')]), POLICY, busy(15_000)), []);
    // Its pc2 long past its expected end (a stall): not counted on.
    assert.deepEqual(place(input(ws(), [ap('j1')]), POLICY, busy(60_000)).map((p) => p.workerId), ['s']);
    // Without lease times nothing is held.
    assert.deepEqual(place(input(ws(), [ap('j1')]), POLICY, hints({ followers, runTimeMs })).map((p) => p.workerId), ['s']);
  });

  it('counts follower jobs already waiting for the worker\'s data', () => {
    const out = place(input([sealer('a', 2, 1, ['s1'])], [ap('j1'), pc1('p1', 's1')]), POLICY, hints());
    assert.deepEqual(out.map((p) => p.jobId), ['p1']);
  });

  it('counts the jobs of the queue the worker already runs, from its declared slots', () => {
    const inp = input([sealer('a', 1, 1), sealer('b', 2, 1)], [ap('j1')]);
    assert.deepEqual(place(inp, POLICY, hints({ declaredSlots: { a: { ap: 2, pc1: 1 }, b: { ap: 2, pc1: 1 } } })).map((p) => p.workerId), ['b']);
    // Without declared slots, only what this claim gave counts: a is less used, and takes it.
    assert.deepEqual(place(inp, POLICY, hints()).map((p) => p.workerId), ['a']);
  });

  it('never holds back a job bound to its data, nor a worker that does not serve the follower', () => {
    const out = place(input([sealer('a', 1, 1, ['s1']), worker('c', { freeSlots: { ap: 1 } })], [pc1('p1', 's1'), ap('j1')]), POLICY, hints());
    assert.deepEqual(out.map((p) => [p.jobId, p.workerId]), [['j1', 'c'], ['p1', 'a']]);
  });

  it('sends a job to the worker with the shortest measured run time for it and its followers', () => {
    const ws = [sealer('a', 2, 2), sealer('b', 2, 2, [])];
    ws[1]!.usedSlots = 3;
    const runTimeMs = { a: { ap: 10, pc1: 300 }, b: { ap: 12, pc1: 200 } };
    assert.deepEqual(place(input(ws, [ap('j1')]), POLICY, hints({ runTimeMs })).map((p) => p.workerId), ['b']);
    // A worker with no measure counts at the mean of those measured: 250 + 11 beats a's 310.
    assert.deepEqual(place(input([sealer('a', 2, 2), sealer('n', 2, 2)], [ap('j1')]), POLICY, hints({ runTimeMs: { a: runTimeMs.a, b: runTimeMs.b } })).map((p) => p.workerId), ['n']);
  });

  it('keeps running means and builds followers from edges', () => {
    const rt = new RunTimes(2);
    rt.record('a', 'q', 100);
    rt.record('a', 'q', 300);
    rt.record('b', 'q', 50);
    rt.record('c', 'q', 70);
    assert.deepEqual(rt.snapshot(), { b: { q: 50 }, c: { q: 70 } });
    assert.deepEqual(followersFrom([{ from: 'ap', to: 'pc1' }, { from: 'ap', to: 'pc1' }, { from: 'x', to: 'x' }]), { ap: ['pc1'] });
  });
});

describe('sooner finish', () => {
  // slow: free now, 100 s a job; fast: busy with one attempt leased 20 s ago, 30 s a job.
  const slow = () => worker('slow', { freeSlots: { q: 1 } });
  const fast = () => worker('fast', { freeSlots: { q: 0 }, usedSlots: 1 });
  const hints = (leasedAgoMs: number): SchedulingHints => ({
    ...NO_HINTS,
    runTimeMs: { slow: { q: 100_000 }, fast: { q: 30_000 } },
    leasedAtMs: { fast: { q: [NOW - leasedAgoMs] } },
  });

  it('holds a job that a busy worker is expected to finish first', () => {
    assert.deepEqual(place(input([slow(), fast()], [cand('j1')]), POLICY, hints(20_000)), []);
  });

  it('still fills the free slot when more jobs wait than slots are expected', () => {
    const out = place(input([slow(), fast()], [cand('j1'), cand('j2')]), POLICY, hints(20_000));
    assert.deepEqual(out.map((p) => [p.jobId, p.workerId]), [['j2', 'slow']]);
  });

  it('does not count on an attempt past its expected end, nor hold without lease times', () => {
    assert.equal(place(input([slow(), fast()], [cand('j1')]), POLICY, hints(40_000)).length, 1);
    assert.equal(place(input([slow(), fast()], [cand('j1')]), POLICY, { ...hints(20_000), leasedAtMs: undefined }).length, 1);
  });

  it('never holds a job bound to its worker', () => {
    const bound = cand('j1', { pinnedWorkerId: 'slow' });
    assert.equal(place(input([slow(), fast()], [bound]), POLICY, hints(20_000)).length, 1);
  });
});

describe('place on random input', () => {
  const arbWorker = (i: number) =>
    fc.record({
      slots: fc.integer({ min: 0, max: 4 }),
      used: fc.integer({ min: 0, max: 4 }),
      cores: fc.integer({ min: 0, max: 16 }),
      gpus: fc.uniqueArray(fc.integer({ min: 0, max: 7 }), { maxLength: 4 }),
      key: fc.boolean(),
    }).map(({ slots, used, cores, gpus, key }) =>
      worker(`w${i}`, {
        freeSlots: { q: slots, r: 1 },
        totalSlots: slots + used + 1,
        usedSlots: used,
        freeCores: cores,
        totalCores: 16,
        freeMemoryMb: 1000,
        totalMemoryMb: 1000,
        freeGpuIds: gpus,
        keys: new Set(key ? ['k'] : []),
      }));
  const arbCand = (i: number) =>
    fc.record({
      queue: fc.constantFrom('q', 'r'),
      priority: fc.integer({ min: 0, max: 3 }),
      cores: fc.integer({ min: 0, max: 8 }),
      gpus: fc.integer({ min: 0, max: 2 }),
      want: fc.integer({ min: 0, max: 3 }),
      affinity: fc.constantFrom(null, 'prefer' as const, 'require' as const),
      excluded: fc.subarray(['w0', 'w1', 'w2']),
    }).map((r) =>
      cand(`j${i}`, {
        queue: r.queue,
        priority: r.priority,
        requires: { cores: r.cores, memoryMb: 100, gpus: r.gpus, labels: {} },
        want: r.want,
        affinity: r.affinity === null ? null : { key: 'k', mode: r.affinity },
        excludedWorkerIds: r.excluded,
      }));
  const arbInput = fc
    .tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 20 }))
    .chain(([nw, nc, max]) =>
      fc.tuple(
        fc.tuple(...Array.from({ length: nw }, (_, i) => arbWorker(i))),
        fc.tuple(...Array.from({ length: nc }, (_, i) => arbCand(i))),
      ).map(([ws, cs]) => input(ws, cs, max)));

  const arbHints: fc.Arbitrary<SchedulingHints> = fc.record({
    followers: fc.constantFrom<Record<string, string[]>>({}, { q: ['r'] }, { r: ['q'] }),
    declaredSlots: fc.constantFrom<Record<string, Record<string, number>>>({}, { w0: { q: 4, r: 1 }, w1: { q: 2 } }),
    runTimeMs: fc.constantFrom<Record<string, Record<string, number>>>({}, { w0: { q: 5, r: 1 }, w1: { q: 2 }, w2: { q: 1 } }),
    leasedAtMs: fc.constantFrom<Record<string, Record<string, number[]>>>({}, { w0: { q: [NOW - 3, NOW - 1] }, w1: { q: [NOW] } }),
  });

  it('never over-commits, never shares a worker between replicas, never mutates, with or without hints', () => {
    fc.assert(
      fc.property(arbInput, fc.option(arbHints), (inp, h) => {
        const before = structuredClone(inp);
        const out = h === null ? place(inp) : place(inp, POLICY, h);
        assert.deepEqual(inp, before);
        assert.ok(out.length <= inp.maxPlacements);
        for (const w of inp.workers) {
          const mine = out.filter((p) => p.workerId === w.workerId);
          const jobs = mine.map((p) => inp.candidates.find((c) => c.jobId === p.jobId)!);
          for (const q of ['q', 'r']) assert.ok(jobs.filter((c) => c.queue === q).length <= (w.freeSlots[q] ?? 0));
          assert.ok(jobs.reduce((n, c) => n + c.requires.cores, 0) <= w.freeCores);
          const gpus = mine.flatMap((p) => p.gpuIds);
          assert.equal(new Set(gpus).size, gpus.length);
          for (const g of gpus) assert.ok(w.freeGpuIds.includes(g));
          for (const c of jobs) {
            assert.ok(!c.excludedWorkerIds.includes(w.workerId));
            assert.ok(c.affinity?.mode !== 'require' || w.keys.has('k'));
          }
          assert.equal(new Set(mine.map((p) => p.jobId)).size, mine.length);
        }
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});
