// Store conformance, the pool that keeps itself busy: the backlog keeper's
// top-up (filler jobs kept at a queue's target, real work claimed first, no
// overfill however many top-ups race), and queues paused on one worker.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS } from '../../types/limits.ts';
import type { ContractContext } from './context.ts';

export function backlogTests(ctx: ContractContext): void {
  const { submitOne, addWorker, claim, claimOne, complete } = ctx;
  const filler = (target: number, queue = 'q') => ctx.store.topUpBacklog({ queue, target, job: ctx.spec({ queue, payload: { cc: true }, priority: -10 }) });
  const queuedFiller = async (queue = 'q') => (await ctx.store.queueCounts()).find((c) => c.queue === queue)?.fillerQueued ?? 0;

  describe('topUpBacklog', () => {
    it('makes the missing filler jobs, marked as such, and none once the target is met', async () => {
      const first = await filler(3);
      assert.equal(first.created.length, 3);
      assert.equal(first.queued, 3);
      for (const j of first.created) {
        assert.equal(j.filler, true);
        assert.equal(j.state, 'queued');
        assert.equal(j.priority, -10);
        assert.deepEqual(j.payload, { cc: true });
      }
      const again = await filler(3);
      assert.deepEqual([again.created.length, again.queued], [0, 3]);
      const real = await submitOne();
      assert.equal(real.filler, false);
      assert.equal(await queuedFiller(), 3);
      const counts = (await ctx.store.queueCounts()).find((c) => c.queue === 'q');
      assert.equal(counts?.counts.queued, 4, 'filler jobs are queued jobs too');
      const fillers = await ctx.store.listJobs({ filler: true, limit: 10 });
      assert.deepEqual(fillers.jobs.map((j) => j.id).sort(), first.created.map((j) => j.id).sort());
      assert.deepEqual((await ctx.store.listJobs({ filler: false, limit: 10 })).jobs.map((j) => j.id), [real.id]);
    });

    it('lets real work go first and holds the backlog at its target as filler jobs are taken', async () => {
      await addWorker('w1', { queues: { q: 1 } });
      await filler(2);
      const real = await submitOne({ priority: 0 });
      const a = await claimOne('w1');
      assert.equal(a.jobId, real.id, 'the real job is claimed before the filler jobs');
      await complete(a);
      const b = await claimOne('w1');
      assert.equal((await ctx.store.getJob({ id: b.jobId }))?.filler, true);
      assert.equal(await queuedFiller(), 1);
      const topUp = await filler(2);
      assert.deepEqual([topUp.created.length, topUp.queued], [1, 2], 'the one taken is replaced');
      await complete(b);
      assert.equal((await ctx.store.getJob({ id: b.jobId }))?.state, 'succeeded');
      assert.equal(await queuedFiller(), 2);
    });

    it('cancels the newest queued filler jobs past a lowered target', async () => {
      const made = await filler(3);
      const out = await filler(1);
      assert.equal(out.queued, 1);
      assert.deepEqual(out.created, []);
      const newest = made.created.map((j) => j.id).sort().slice(1);
      assert.deepEqual(out.changes.map((c) => c.jobId).sort(), newest);
      for (const id of newest) assert.equal((await ctx.store.getJob({ id }))?.error?.code, 'CANCELLED');
      assert.equal(await queuedFiller(), 1);
    });

    it('never overfills when many top-ups of one queue race', async () => {
      for (let round = 1; round <= 3; round++) {
        const outs = await Promise.all(Array.from({ length: 6 }, () => filler(5)));
        assert.equal(outs.reduce((n, o) => n + o.created.length, 0), round === 1 ? 5 : 0);
        assert.equal(await queuedFiller(), 5);
      }
    });

    it('keeps one queue’s backlog apart from another’s, and refuses a target past backlogTargetMax', async () => {
      await filler(2, 'q');
      await filler(1, 'r');
      assert.deepEqual([await queuedFiller('q'), await queuedFiller('r')], [2, 1]);
      await assert.rejects(filler(LIMITS.backlogTargetMax + 1), { code: 'INVALID_INPUT' });
      await assert.rejects(filler(-1), { code: 'INVALID_INPUT' });
    });
  });

  describe('setWorkerQueuePaused', () => {
    it('hands the worker nothing of a queue paused on it, while other workers and queues go on', async () => {
      await addWorker('w1', { queues: { q: 2, r: 2 } });
      await addWorker('w2', { queues: { q: 1 } });
      const running = await submitOne();
      const a = await claimOne('w1');
      assert.equal(a.jobId, running.id);
      const w = await ctx.store.setWorkerQueuePaused({ workerId: 'w1', queue: 'q', paused: true });
      assert.deepEqual(w.pausedQueues, ['q']);
      const waiting = await submitOne();
      const other = await submitOne({ queue: 'r' });
      assert.deepEqual((await claim('w1')).map((x) => x.jobId), [other.id], 'only the queue not paused on w1');
      assert.equal((await complete(a)).job.state, 'succeeded', 'its running attempt finishes');
      assert.equal((await claimOne('w2')).jobId, waiting.id, 'another worker takes the paused queue');
    });

    it('holds across a reconnect, and a resume makes the queue claimable again', async () => {
      await addWorker('w1');
      await ctx.store.setWorkerQueuePaused({ workerId: 'w1', queue: 'q', paused: true });
      await ctx.store.setWorkerQueuePaused({ workerId: 'w1', queue: 'q', paused: true });
      const job = await submitOne();
      await ctx.store.disconnectWorker({ workerId: 'w1' });
      const back = await addWorker('w1');
      assert.deepEqual(back.pausedQueues, ['q'], 'kept by worker id across a reconnect');
      assert.deepEqual(await claim('w1'), []);
      const resumed = await ctx.store.setWorkerQueuePaused({ workerId: 'w1', queue: 'q', paused: false });
      assert.deepEqual(resumed.pausedQueues, []);
      assert.equal((await claimOne('w1')).jobId, job.id);
    });

    it('refuses an unknown worker (WORKER_NOT_FOUND)', async () => {
      await assert.rejects(ctx.store.setWorkerQueuePaused({ workerId: 'nobody', queue: 'q', paused: true }), { code: 'WORKER_NOT_FOUND' });
    });
  });
}
