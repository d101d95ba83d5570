// The coordinator in virtual time: real SQLite store, real scheduler, in-process
// workers whose handlers the test finishes by hand.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openSqliteStore } from '../store/sqlite/store.ts';
import { LIMITS } from '../types/limits.ts';
import type { Store } from '../store/store.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { isGafferError } from '../types/errors.ts';
import type { Json } from '../types/model.ts';
import { Coordinator } from './coordinator.ts';
import { LocalWorker, type Handler, type HandlerContext } from './local-worker.ts';

interface Pending {
  payload: Json;
  ctx: HandlerContext;
  resolve: (v: Json) => void;
  reject: (e: unknown) => void;
}

/** A handler whose calls wait until the test resolves them. */
function manualHandler(): { handler: Handler; calls: Pending[] } {
  const calls: Pending[] = [];
  const handler: Handler = (payload, ctx) =>
    new Promise<Json>((resolve, reject) => {
      calls.push({ payload, ctx, resolve, reject });
    });
  return { handler, calls };
}

const flush = async (c: Coordinator): Promise<void> => {
  for (let i = 0; i < 5; i++) {
    await c.settled();
    await new Promise((r) => setImmediate(r));
  }
};

describe('coordinator', () => {
  let dir: string;
  let clock: VirtualClock;
  let store: Store;
  let coordinator: Coordinator;
  const workers: LocalWorker[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-coord-'));
    clock = new VirtualClock();
    // Placement tests: a new worker may hold all it declares at once (no slow start; that is the store suite's).
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock, random: seededRandom(7), trust: { creditInitialSlots: LIMITS.workerSlotsMax } });
    coordinator = new Coordinator({ store, clock, sweepIntervalMs: 100 });
    coordinator.start();
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) w.freeze();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function worker(name: string, handler: Handler, slots = 1, extra: { keys?: string[]; cores?: number } = {}): Promise<LocalWorker> {
    const w = new LocalWorker({
      coordinator,
      clock,
      spec: { name, labels: {}, cores: extra.cores ?? 8, memoryMb: 16_000, gpuIds: [], keys: extra.keys ?? [] },
      handlers: { work: { slots, handler } },
      heartbeatIntervalMs: 500,
    });
    await w.start();
    workers.push(w);
    return w;
  }

  it('runs a job on a worker and hands the result to a waiting client', async () => {
    const h = manualHandler();
    await worker('a', h.handler);
    const { job } = await coordinator.submit({ queue: 'work', payload: { n: 2 } });
    const waiting = coordinator.waitForJob(job.id, 60_000);
    await flush(coordinator);
    assert.equal(h.calls.length, 1);
    assert.deepEqual(h.calls[0]!.payload, { n: 2 });
    h.calls[0]!.resolve({ square: 4 });
    await flush(coordinator);
    const done = await waiting;
    assert.equal(done.state, 'succeeded');
    assert.deepEqual(done.result, { square: 4 });
  });

  it('gives a stalled worker’s job to another after the heartbeat timeout, and refuses the stale result', async () => {
    const slow = manualHandler();
    const a = await worker('a', slow.handler);
    const { job } = await coordinator.submit({ queue: 'work', payload: 1, heartbeatTimeoutMs: 2000 });
    await flush(coordinator);
    assert.equal(slow.calls.length, 1);
    const stale = slow.calls[0]!;
    a.freeze(); // hung: no heartbeats, no reports

    const fresh = manualHandler();
    await worker('b', fresh.handler);
    await clock.advanceAsync(1500, () => flush(coordinator));
    assert.equal(fresh.calls.length, 0, 'the lease has not expired yet');
    await clock.advanceAsync(1000, () => flush(coordinator));
    assert.equal(fresh.calls.length, 1, 'the job moved to worker b');

    // The stalled worker wakes up and reports: refused.
    const session = (coordinator as unknown as { sessions: Map<string, { complete: Function }> }).sessions.get(a.id!)!;
    await assert.rejects(
      () => session.complete({ attemptId: stale.ctx.assignment.attemptId, lease: stale.ctx.assignment.lease }, 'stale'),
      (e) => isGafferError(e, 'STALE_LEASE'),
    );
    fresh.calls[0]!.resolve('fresh');
    await flush(coordinator);
    const final = await coordinator.getJob(job.id);
    assert.equal(final.state, 'succeeded');
    assert.equal(final.result, 'fresh');
    const attempts = await store.listAttempts({ jobId: job.id });
    assert.deepEqual(attempts.map((x) => x.state), ['lost', 'completed']);
    assert.equal(attempts[0]!.error?.code, 'LEASE_LOST');
  });

  it('keeps the attempt of a worker that reconnects within its heartbeat timeout', async () => {
    const h = manualHandler();
    const a = await worker('a', h.handler);
    const { job } = await coordinator.submit({ queue: 'work', payload: 1, heartbeatTimeoutMs: 3000 });
    await flush(coordinator);
    const call = h.calls[0]!;
    await a.disconnect();
    await clock.advanceAsync(2000, () => flush(coordinator));
    await a.start(); // same worker id: it reattaches
    await flush(coordinator);
    // Past the first lease expiry: only the heartbeats after reattaching keep it alive.
    await clock.advanceAsync(2000, () => flush(coordinator));
    assert.equal(call.ctx.signal.aborted, false);
    call.resolve('kept');
    await flush(coordinator);
    const final = await coordinator.getJob(job.id);
    assert.equal(final.state, 'succeeded');
    assert.equal(final.attempts, 1, 'nothing ran twice');
  });

  it('separates a hung job (TIMEOUT) from a gone worker (LEASE_LOST)', async () => {
    const h = manualHandler();
    await worker('a', h.handler);
    const { job } = await coordinator.submit({ queue: 'work', payload: 1, timeoutMs: 1000, maxAttempts: 1 });
    await flush(coordinator);
    // Heartbeats keep flowing, but the attempt runs too long.
    await clock.advanceAsync(1200, () => flush(coordinator));
    const final = await coordinator.getJob(job.id);
    assert.equal(final.state, 'failed');
    assert.equal(final.error?.code, 'TIMEOUT');
    assert.equal(h.calls[0]!.ctx.signal.aborted, true, 'the worker was told to stop');
  });

  it('cancels a running job and aborts its handler', async () => {
    const h = manualHandler();
    await worker('a', h.handler);
    const { job } = await coordinator.submit({ queue: 'work', payload: 1 });
    await flush(coordinator);
    const cancelled = await coordinator.cancel(job.id, 'no longer needed');
    assert.equal(cancelled.state, 'cancelled');
    assert.equal(h.calls[0]!.ctx.signal.aborted, true);
  });

  it('holds a delayed job until runAt, then dispatches it without any other event', async () => {
    const h = manualHandler();
    await worker('a', h.handler);
    await coordinator.submit({ queue: 'work', payload: 1, runAt: clock.now() + 10_000 });
    await flush(coordinator);
    assert.equal(h.calls.length, 0);
    await clock.advanceAsync(9_000, () => flush(coordinator));
    assert.equal(h.calls.length, 0);
    await clock.advanceAsync(1_000, () => flush(coordinator));
    assert.equal(h.calls.length, 1);
  });

  it('expires a job that has not started by its deadline', async () => {
    const { job } = await coordinator.submit({ queue: 'work', payload: 1, deadline: clock.now() + 500 });
    await clock.advanceAsync(600, () => flush(coordinator));
    const final = await coordinator.getJob(job.id);
    assert.equal(final.state, 'expired');
    assert.equal(final.error?.code, 'DEADLINE_EXCEEDED');
  });

  it('spreads a burst evenly over equal idle workers', async () => {
    const handlers = [manualHandler(), manualHandler(), manualHandler()];
    for (const [i, h] of handlers.entries()) await worker(`w${i}`, h.handler, 10);
    await coordinator.submitMany(Array.from({ length: 30 }, (_, i) => ({ queue: 'work', payload: i })));
    await flush(coordinator);
    assert.deepEqual(handlers.map((h) => h.calls.length), [10, 10, 10]);
  });

  it('sends a job with required affinity only to the worker holding the key', async () => {
    const other = manualHandler();
    const holder = manualHandler();
    await worker('other', other.handler, 4);
    await worker('holder', holder.handler, 4, { keys: ['sector-9'] });
    await coordinator.submit({ queue: 'work', payload: 1, affinity: { key: 'sector-9', mode: 'require' } });
    await flush(coordinator);
    assert.equal(other.calls.length, 0);
    assert.equal(holder.calls.length, 1);
  });

  it('gives a draining worker no new work', async () => {
    const h = manualHandler();
    const a = await worker('a', h.handler, 4);
    await coordinator.drainWorker(a.id!);
    await coordinator.submit({ queue: 'work', payload: 1 });
    await flush(coordinator);
    assert.equal(h.calls.length, 0);
    const [w] = await coordinator.listWorkers();
    assert.equal(w!.state, 'draining');
  });

  it('refuses bad input with a typed error and writes nothing', async () => {
    const bad: unknown[] = [
      null,
      { queue: '' },
      { queue: 'work', surprise: true },
      { queue: 'work', priority: 'high' },
      { queue: 'work', payload: 'x'.repeat(2 * 1024 * 1024) },
      { queue: 'work', replicas: 2, quorum: 3 },
      { queue: 'work', dependsOn: ['01NOSUCHJOB0000000000000000'] },
    ];
    for (const b of bad) {
      await assert.rejects(() => coordinator.submit(b), (e) => isGafferError(e), JSON.stringify(b)?.slice(0, 60));
    }
    await assert.rejects(
      () => coordinator.submitMany([{ queue: 'work' }, { queue: 'work', timeoutMs: -1 }]),
      (e) => isGafferError(e, 'INVALID_INPUT'),
    );
    const page = await store.listJobs({ limit: 10 });
    assert.equal(page.jobs.length, 0, 'nothing was written');
  });

  it('runs a pipeline: the child starts only after its parent succeeded', async () => {
    const h = manualHandler();
    await worker('a', h.handler, 2);
    const parent = await coordinator.submit({ queue: 'work', payload: 'parent' });
    const child = await coordinator.submit({ queue: 'work', payload: 'child', dependsOn: [parent.job.id] });
    await flush(coordinator);
    assert.deepEqual(h.calls.map((c) => c.payload), ['parent']);
    h.calls[0]!.resolve(1);
    await flush(coordinator);
    assert.deepEqual(h.calls.map((c) => c.payload), ['parent', 'child']);
    h.calls[1]!.resolve(2);
    await flush(coordinator);
    assert.equal((await coordinator.getJob(child.job.id)).state, 'succeeded');
  });
});
