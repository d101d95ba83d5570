// In a large pool each attempt is ranked among a bounded set of the workers
// that fit: key holders first, then the highest by rendezvous weight.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Candidate, WorkerCapacity } from '../types/model.ts';
import { LIMITS } from '../types/limits.ts';
import { candidateSet, place } from './place.ts';

const cand = (jobId: string, over: Partial<Candidate> = {}): Candidate => ({
  jobId, queue: 'q', priority: 0, deadline: null, readyAt: 0, createdAt: 0,
  requires: { cores: 1, memoryMb: 1, gpus: 0, labels: {} }, affinity: null, want: 1, excludedWorkerIds: [], pinnedWorkerId: null, ...over,
});
const worker = (workerId: string, keys: string[] = []): WorkerCapacity => ({
  workerId, labels: {}, keys: new Set(keys), freeSlots: { q: 1 }, totalSlots: 1, usedSlots: 0, freeCores: 8, freeMemoryMb: 1024,
  totalCores: 8, totalMemoryMb: 1024, freeGpuIds: [], blockedQueues: [], speedMs: {},
});
const pool = Array.from({ length: 500 }, (_, i) => worker(`w${String(i).padStart(3, '0')}`, i === 499 ? ['sector-7'] : []));

describe('candidate set (rendezvous)', () => {
  it('keeps every fitting worker in a small pool', () => {
    assert.equal(candidateSet(cand('j'), pool.slice(0, LIMITS.placementCandidatesMax)).length, LIMITS.placementCandidatesMax);
  });

  it('bounds a large pool, the same set for the same job, another for another job', () => {
    const a = candidateSet(cand('job-a'), pool).map((w) => w.workerId);
    assert.equal(a.length, LIMITS.placementCandidatesMax);
    assert.deepEqual(candidateSet(cand('job-a'), [...pool].reverse()).map((w) => w.workerId).sort(), [...a].sort(), 'it does not depend on the order of the workers');
    const b = candidateSet(cand('job-b'), pool).map((w) => w.workerId);
    const shared = a.filter((id) => b.includes(id)).length;
    assert.ok(shared < LIMITS.placementCandidatesMax / 2, `two jobs share few candidates (${shared})`);
  });

  it('puts the key holder in the set, and place() picks it', () => {
    const c = cand('job-k', { affinity: { key: 'sector-7', mode: 'prefer' } });
    assert.ok(candidateSet(c, pool).some((w) => w.workerId === 'w499'));
    const [p] = place({ now: 0, workers: pool, candidates: [c], maxPlacements: 10 });
    assert.equal(p?.workerId, 'w499');
  });

  it('spreads many jobs over the pool', () => {
    const jobs = Array.from({ length: 400 }, (_, i) => cand(`job-${i}`));
    const placed = place({ now: 0, workers: pool, candidates: jobs, maxPlacements: 1000 });
    assert.equal(placed.length, 400, 'every job placed, one slot each');
    assert.equal(new Set(placed.map((p) => p.workerId)).size, 400);
  });
});
