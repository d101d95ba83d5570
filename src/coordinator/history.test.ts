// Queues at run time through the coordinator, in virtual time on a real
// SQLite file: pause and resume, and the queue history counted in memory,
// flushed once per interval into the store, read back after a restart, and
// rolled up by the sweeper.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { bucketOf, HOUR_MS, MINUTE_MS } from '../types/history.ts';
import { COORDINATOR_DEFAULTS } from '../types/limits.ts';
import type { Json } from '../types/model.ts';
import { Coordinator } from './coordinator.ts';
import { LocalWorker, type Handler } from './local-worker.ts';
import { HistoryRecorder } from './history.ts';
import { Sweeper } from './sweeper.ts';

interface Pending {
  resolve: (v: Json) => void;
  reject: (e: unknown) => void;
}

function manualHandler(): { handler: Handler; calls: Pending[] } {
  const calls: Pending[] = [];
  const handler: Handler = () => new Promise<Json>((resolve, reject) => void calls.push({ resolve, reject }));
  return { handler, calls };
}

const settle = async (c: Coordinator): Promise<void> => {
  for (let i = 0; i < 5; i++) {
    await c.settled();
    await new Promise((r) => setImmediate(r));
  }
};

describe('coordinator: queues at run time', () => {
  let dir: string;
  let clock: VirtualClock;
  let store: Store;
  let coordinator: Coordinator;
  const workers: LocalWorker[] = [];

  const open = (): void => {
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock, random: seededRandom(7) });
    coordinator = new Coordinator({ store, clock, sweepIntervalMs: 100 });
    coordinator.start();
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-history-'));
    clock = new VirtualClock();
    open();
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) w.freeze();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function worker(handler: Handler, slots = 1): Promise<void> {
    const w = new LocalWorker({
      coordinator,
      clock,
      spec: { name: 'a', labels: {}, cores: 8, memoryMb: 16_000, gpuIds: [], keys: [] },
      handlers: { work: { slots, handler } },
      heartbeatIntervalMs: 500,
    });
    await w.start();
    workers.push(w);
  }

  it('dispatches nothing of a paused queue, and resume dispatches at once', async () => {
    const h = manualHandler();
    await worker(h.handler);
    const state = await coordinator.setQueuePaused('work', true, 'upgrade');
    assert.deepEqual([state.paused, state.reason], [true, 'upgrade']);
    await coordinator.submit({ queue: 'work', payload: 1 });
    await settle(coordinator);
    assert.equal(h.calls.length, 0, 'a paused queue is not dispatched');
    await coordinator.setQueuePaused('work', false);
    await settle(coordinator);
    assert.equal(h.calls.length, 1, 'resume dispatches without waiting for a poll');
    await assert.rejects(coordinator.setQueuePaused('no spaces', true), { code: 'INVALID_INPUT' });
  });

  it('counts in memory, flushes once per interval, and the history survives a restart', async () => {
    const h = manualHandler();
    await worker(h.handler, 2);
    const t0 = clock.now();
    await coordinator.submit({ queue: 'work', payload: 'ok' });
    await coordinator.submit({ queue: 'work', payload: 'bad', maxAttempts: 1 });
    await settle(coordinator);
    assert.equal(h.calls.length, 2);
    clock.advance(1_500);
    h.calls[0]!.resolve({ done: true });
    h.calls[1]!.reject(new Error('boom'));
    await settle(coordinator);
    const minute = await store.readHistory({ fromMs: t0, toMs: t0 + HOUR_MS, step: 'minute', maxPoints: 10 });
    assert.deepEqual(minute, [], 'nothing is written before the flush');
    await clock.advanceAsync(COORDINATOR_DEFAULTS.historyFlushIntervalMs, () => settle(coordinator));
    const [p, ...rest] = await store.readHistory({ fromMs: t0, toMs: t0 + HOUR_MS, step: 'minute', maxPoints: 10 });
    assert.deepEqual(rest, []);
    assert.ok(p);
    assert.deepEqual([p.queue, p.at], ['work', Math.floor(t0 / MINUTE_MS) * MINUTE_MS]);
    assert.deepEqual(p.counts, { submitted: 2, succeeded: 1, failed: 1, lost: 0, retried: 0, cancelled: 0 });
    // Both leased at once (wait 0), both reported 1.5 s later.
    assert.equal(p.wait.buckets[bucketOf(0)], 2);
    assert.deepEqual([p.run.buckets[bucketOf(1_500)], p.run.sumMs], [2, 3_000]);

    // A cascade: the dependant's queue is read at flush time.
    const parent = await coordinator.submit({ queue: 'work', payload: 'parent', runAt: clock.now() + HOUR_MS });
    await coordinator.submit({ queue: 'work', payload: 'child', dependsOn: [parent.job.id] });
    await coordinator.cancel(parent.job.id);
    for (const w of workers.splice(0)) w.freeze();
    await coordinator.stop(); // flushes what it counted
    await store.close();
    open();
    const hours = await coordinator.readHistory({ fromMs: t0, toMs: t0 + 2 * HOUR_MS, step: 'hour', maxPoints: 10 });
    assert.equal(hours.length, 1);
    assert.deepEqual(hours[0]!.counts, { submitted: 4, succeeded: 1, failed: 1, lost: 0, retried: 0, cancelled: 2 });
  });

  it('counts a lost lease and the retry it causes, and reads the queue of an attempt it never leased', async () => {
    const h = manualHandler();
    await worker(h.handler);
    const t0 = clock.now();
    const { job } = await coordinator.submit({ queue: 'work', payload: 1, heartbeatTimeoutMs: 1_000 });
    await settle(coordinator);
    assert.equal(h.calls.length, 1);
    workers[0]!.freeze(); // no more heartbeats: the sweeper finds the lease lost
    await clock.advanceAsync(1_200, () => settle(coordinator));
    await coordinator.history.flush();
    const [p] = await store.readHistory({ fromMs: t0, toMs: t0 + HOUR_MS, step: 'minute', maxPoints: 10 });
    assert.deepEqual([p?.counts.lost, p?.counts.retried], [1, 1]);

    // Another coordinator's recorder, which never leased the attempt, reads its queue at flush time.
    const [attempt] = await store.listAttempts({ jobId: job.id });
    const other = new HistoryRecorder({ store, clock, onError: (err) => assert.fail(String(err)) });
    other.swept({ changes: [], endedAttempts: [{ attemptId: attempt!.id, workerId: 'x', reason: 'LEASE_LOST' }] });
    await other.flush();
    const [q] = await store.readHistory({ fromMs: t0, toMs: t0 + HOUR_MS, step: 'hour', maxPoints: 10 });
    assert.deepEqual([q?.queue, q?.counts.lost], ['work', 2]);
  });

  it('the sweeper rolls minutes past historyMinuteRetentionMs up into hours, and drops hours past historyHourRetentionMs', async () => {
    await coordinator.submit({ queue: 'work', payload: 1 });
    const t0 = clock.now();
    await coordinator.stop(); // flushes; the sweeper below runs alone, on a beat of an hour
    const errors: unknown[] = [];
    const sweeper = new Sweeper({
      store, clock, sweepIntervalMs: 365 * 24 * HOUR_MS, pollIntervalMs: null, historySweepIntervalMs: HOUR_MS,
      onSwept: () => {}, onWake: () => {}, onError: (err) => errors.push(err),
    });
    sweeper.start();
    const until = async (ms: number): Promise<void> => clock.advanceAsync(ms, async () => {
      await sweeper.current();
      await new Promise((r) => setImmediate(r));
    });
    const range = { fromMs: t0 - HOUR_MS, toMs: t0 + HOUR_MS, maxPoints: 10 };
    await until(COORDINATOR_DEFAULTS.historyMinuteRetentionMs);
    assert.equal((await store.readHistory({ ...range, step: 'minute' })).length, 1, 'kept as a minute until its hour is past the bound');
    await until(2 * HOUR_MS);
    assert.deepEqual(await store.readHistory({ ...range, step: 'minute' }), [], 'the minute was rolled up');
    assert.deepEqual((await store.readHistory({ ...range, step: 'hour' })).map((p) => p.counts.submitted), [1]);
    await until(COORDINATOR_DEFAULTS.historyHourRetentionMs);
    assert.deepEqual(await store.readHistory({ ...range, step: 'hour' }), [], 'the hour was dropped');
    sweeper.stop();
    assert.deepEqual(errors, []);
    await store.close();
    open(); // afterEach stops and closes its own
  });
});
