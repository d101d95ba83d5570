// The sweeper in virtual time on a store whose sweeps, next delayed job and
// sharing the test sets: the sweep beat, the wake-up, polling, availability.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Store, SweepResult } from '../store/store.ts';
import { TIMER_MAX_DELAY_MS, VirtualClock } from '../types/clock.ts';
import { COORDINATOR_DEFAULTS } from '../types/limits.ts';
import { Sweeper, type SweeperOptions } from './sweeper.ts';

interface FakeStore {
  store: Store;
  sweeps: number;
  nextRunAt: number | null;
  /** The afterMs of each nextRunAt call that gave one. */
  nextRunAfter: number[];
  /** While set, expireAttempts waits for it. */
  hold: Promise<void> | null;
}

function fakeStore(shared = false): FakeStore {
  const fake: FakeStore = { store: null as unknown as Store, sweeps: 0, nextRunAt: null, nextRunAfter: [], hold: null };
  fake.store = {
    capabilities: { shared, groupCommit: false },
    expireAttempts: async () => {
      fake.sweeps++;
      if (fake.hold) await fake.hold;
      return { changes: [{ jobId: 'lost', state: 'queued', cancelledAttempts: [] }], endedAttempts: [{ attemptId: 'a', workerId: 'w', reason: 'LEASE_LOST' }] };
    },
    expireDeadlines: async () => ({ changes: [{ jobId: 'late', state: 'expired', cancelledAttempts: [] }], endedAttempts: [] }),
    nextRunAt: async (p?: { afterMs?: number }) => {
      if (p?.afterMs !== undefined) fake.nextRunAfter.push(p.afterMs);
      return fake.nextRunAt;
    },
    rollUpHistory: async () => ({ rolledUpMinutes: 0, droppedHours: 0 }),
    finishedQueues: async () => [],
    pruneWorkers: async () => [],
  } as unknown as Store;
  return fake;
}

function sweeper(fake: FakeStore, clock: VirtualClock, extra: Partial<SweeperOptions> = {}) {
  const swept: SweepResult[] = [];
  const seen = { wakes: 0, polls: 0 };
  const s = new Sweeper({
    store: fake.store,
    clock,
    sweepIntervalMs: 100,
    onSwept: (r) => void swept.push(r),
    onWake: () => void seen.wakes++,
    onPoll: () => void seen.polls++,
    onError: (err) => assert.fail(String(err)),
    ...extra,
  });
  return { s, swept, seen };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('sweeper', () => {
  it('sweeps on its beat and reports both sweepers’ changes in one result', async () => {
    const clock = new VirtualClock();
    const fake = fakeStore();
    const { s, swept } = sweeper(fake, clock);
    s.start();
    await clock.advanceAsync(99, settle);
    assert.equal(fake.sweeps, 0);
    await clock.advanceAsync(1, settle);
    assert.equal(fake.sweeps, 1);
    assert.deepEqual(swept[0]!.changes.map((c) => c.jobId), ['lost', 'late']);
    assert.deepEqual(swept[0]!.endedAttempts.map((e) => e.attemptId), ['a']);
    await clock.advanceAsync(200, settle);
    assert.equal(fake.sweeps, 3);
    s.stop();
    assert.equal(clock.pendingTimers(), 0, 'stop clears every timer');
  });

  it('skips a beat while the last pass still runs, and every beat while the store is away', async () => {
    const clock = new VirtualClock();
    const fake = fakeStore();
    let up = true;
    const { s } = sweeper(fake, clock, { available: () => up });
    const gate = Promise.withResolvers<void>();
    fake.hold = gate.promise;
    s.start();
    await clock.advanceAsync(300, settle);
    assert.equal(fake.sweeps, 1, 'beats during a running pass are skipped');
    assert.notEqual(s.current(), null);
    gate.resolve();
    fake.hold = null;
    await s.current();
    assert.equal(s.current(), null);
    up = false;
    await clock.advanceAsync(500, settle);
    assert.equal(fake.sweeps, 1, 'no sweep while the store is away');
    up = true;
    await clock.advanceAsync(100, settle);
    assert.equal(fake.sweeps, 2);
    s.stop();
  });

  it('wakes at the next delayed job, keeps the earliest wake-up, and caps a far one', async () => {
    const clock = new VirtualClock(1_000_000);
    const fake = fakeStore();
    const { s, seen } = sweeper(fake, clock, { sweepIntervalMs: 10_000_000_000, historySweepIntervalMs: 10_000_000_000, retentionSweepIntervalMs: 10_000_000_000 });
    s.start();
    await s.armWake();
    assert.equal(clock.pendingTimers(), 3, 'no delayed job: only the sweep, history and retention beats');
    fake.nextRunAt = clock.now() + 500;
    await s.armWake();
    fake.nextRunAt = clock.now() + 800;
    await s.armWake();
    await clock.advanceAsync(499, settle);
    assert.equal(seen.wakes, 0);
    await clock.advanceAsync(1, settle);
    assert.equal(seen.wakes, 1, 'woken at the earliest');
    fake.nextRunAt = clock.now() + TIMER_MAX_DELAY_MS + 1000;
    await s.armWake();
    await clock.advanceAsync(TIMER_MAX_DELAY_MS, settle);
    assert.equal(seen.wakes, 2, 'a wake-up further than a timer can wait fires early, to be armed again');
    s.stop();
    assert.equal(clock.pendingTimers(), 0);
    await s.armWake();
    assert.equal(clock.pendingTimers(), 0, 'nothing is armed once stopped');
  });

  it('wakes at once for a job that became ready since the last claim', async () => {
    const clock = new VirtualClock(1_000_000);
    const fake = fakeStore();
    const { s, seen } = sweeper(fake, clock, { sweepIntervalMs: 10_000_000_000, historySweepIntervalMs: 10_000_000_000 });
    s.start();
    fake.nextRunAt = clock.now() - 5;
    await s.armWake(clock.now() - 10);
    assert.deepEqual(fake.nextRunAfter, [clock.now() - 10], 'asks for what became ready after the claim');
    await clock.advanceAsync(0, settle);
    assert.equal(seen.wakes, 1, 'due already: woken at once');
    s.stop();
  });

  it('polls with a shared store (by default), not with an embedded one, and not while the store is away', async () => {
    for (const shared of [false, true]) {
      const clock = new VirtualClock();
      let up = true;
      const { s, seen } = sweeper(fakeStore(shared), clock, { available: () => up });
      s.start();
      await clock.advanceAsync(COORDINATOR_DEFAULTS.pollIntervalMs * 3, settle);
      assert.equal(seen.polls, shared ? 3 : 0, `shared ${shared}`);
      up = false;
      await clock.advanceAsync(COORDINATOR_DEFAULTS.pollIntervalMs * 2, settle);
      assert.equal(seen.polls, shared ? 3 : 0);
      s.stop();
    }
    const clock = new VirtualClock();
    const { s, seen } = sweeper(fakeStore(false), clock, { pollIntervalMs: 50 });
    s.start();
    await clock.advanceAsync(100, settle);
    assert.equal(seen.polls, 2, 'an explicit interval polls any store');
    s.stop();
  });
});
