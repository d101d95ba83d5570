// The lower bound with the seed's faults, on workloads small enough to solve
// by hand: a worker in a window does no work; across a lossy window's start
// (a departure, a stall past the heartbeat timeout) no job carries on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lowerBound } from './bound.ts';
import { Downtime, slotEndMs, workEndMs, type DownWindow } from './downtime.ts';
import type { Fault, Scenario } from './model.ts';

const S = 1000;
const lossy = (fromMs: number, toMs: number): DownWindow => ({ fromMs, toMs, lossy: true });
const pause = (fromMs: number, toMs: number): DownWindow => ({ fromMs, toMs, lossy: false });

describe('downtime', () => {
  it('ends a slot\'s jobs around its windows', () => {
    assert.equal(slotEndMs(0, 3, 10, 1, []), 30);
    // Jobs of 10 end at 10 and 20; the third would run across 25: lost, it runs again from 40.
    assert.equal(slotEndMs(0, 3, 10, 1, [lossy(25, 40)]), 50);
    // Paused instead, it has 5 done at 25 and ends 5 after 40.
    assert.equal(slotEndMs(0, 3, 10, 1, [pause(25, 40)]), 45);
    // Starting inside a window, it starts when the window closes; the factor scales each job.
    assert.equal(slotEndMs(30, 1, 10, 2, [lossy(25, 40)]), 60);
    assert.equal(slotEndMs(0, 0, 10, 1, [lossy(5, 15)]), 0);
    // Lengths are the simulator's, rounded to the millisecond: three of 10001 x 0.99995 ms end at 30000, before 30001.
    assert.equal(slotEndMs(0, 3, 10001, 0.99995, [lossy(30001, 90001)]), 30000);
  });

  it('does work at the rate of the workers that are up', () => {
    // Two workers of rate 1; one is down from 10 to 20: 20 by 10, 10 more by 20.
    const supply = [{ rate: 1, windows: [pause(10, 20)] }, { rate: 1, windows: [] }];
    assert.equal(workEndMs(0, 30, supply, 2), 20);
    assert.equal(workEndMs(0, 10, supply, 2), 5);
    assert.equal(workEndMs(0, 30, [{ rate: 1, windows: [] }], 1), 30);
  });

  const scenario = (faults: Fault[]): Pick<Scenario, 'queues' | 'workers' | 'jobs' | 'settings' | 'faults'> => ({
    queues: { q: { requires: { cores: 1, memoryMb: 0, gpus: 0, labels: {} }, timeoutMs: 3_600_000, heartbeatTimeoutMs: 60 * S } },
    workers: ['w1', 'w2'].map((name) => ({ name, cores: 1, memoryMb: 0, gpus: 0, labels: {}, queues: { q: 1 }, factor: {} })),
    jobs: [1, 2, 3, 4].map((i) => ({ key: `j${i}`, queue: 'q', baseMs: 10 * S, releaseMs: 0, priority: 0, parents: [], affinity: null, deadlineMs: null, dueMs: null })),
    settings: { heartbeatIntervalMs: 10 * S, sweepIntervalMs: 5 * S, workerOfflineAfterMs: 60 * S, horizonMs: 3_600_000 },
    faults,
  });

  it('bounds a schedule that meets the faults', () => {
    // Four jobs of 10 s on two one-slot workers: 20 s without faults.
    assert.equal(lowerBound(scenario([])).ms, 20 * S);
    // w1 leaves at 5 s for 20 s: nothing it starts before can end, so it ends one job at 35 s at the soonest
    // while w2 ends three by 30 s: 35 s, which a schedule meets.
    const left = scenario([{ atMs: 5 * S, worker: 'w1', kind: 'leave', durationMs: 20 * S }]);
    assert.equal(lowerBound(left, new Downtime(left)).ms, 35 * S);
    // A 10 s stall, shorter than the 60 s heartbeat timeout, only pauses w1's job (it ends at 20 s): 30 s.
    const stalled = scenario([{ atMs: 5 * S, worker: 'w1', kind: 'stall', durationMs: 10 * S }]);
    assert.equal(lowerBound(stalled, new Downtime(stalled)).ms, 30 * S);
    // Past the timeout and a sweep (70 s), the stall loses what w1 ran: as a departure, from 75 s.
    const lost = scenario([{ atMs: 5 * S, worker: 'w1', kind: 'stall', durationMs: 70 * S }]);
    assert.equal(lowerBound(lost, new Downtime(lost)).ms, 40 * S);
    // With no fault, the bound is the fault-free one.
    assert.ok(new Downtime(scenario([])).none);
    // A fault that strikes a worker already down is ignored, as the simulator ignores it: w1 leaves at 5 s for
    // 20 s, and a stall from 10 s to 50 s never happens; 35 s as with the departure alone.
    const both = scenario([
      { atMs: 10 * S, worker: 'w1', kind: 'stall', durationMs: 40 * S },
      { atMs: 5 * S, worker: 'w1', kind: 'leave', durationMs: 20 * S },
    ]);
    assert.deepEqual(new Downtime(both).windows('w1', 'q'), [lossy(5 * S, 25 * S)]);
    assert.equal(lowerBound(both, new Downtime(both)).ms, 35 * S);
  });
});
