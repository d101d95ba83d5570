// Store conformance, retention: deleting finished jobs past their queue's age
// or count limit in batches (deleteFinishedJobs, finishedQueues), and pruning
// worker records that hold nothing (pruneWorkers).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resultHash } from '../rules.ts';
import { newJob } from '../../types/new-job.ts';
import type { Job } from '../../types/model.ts';
import type { DeleteFinishedParams } from '../store.ts';
import { type ContractContext, MINUTE } from './context.ts';

const DAY = 24 * 60 * MINUTE;

export function retentionTests(ctx: ContractContext): void {
  const { submitOne, addWorker, claimOne, getJob, complete } = ctx;

  /** Submits a job, runs it on w1 and completes it, 1 ms after the last one finished. */
  async function finished(over: Parameters<typeof submitOne>[0] = {}): Promise<Job> {
    const job = await submitOne(over);
    await ctx.store.heartbeat({ workerId: 'w1' }); // seen now, whatever the clock did
    const a = await claimOne('w1');
    assert.equal(a.jobId, job.id);
    ctx.clock.advance(1);
    await complete(a);
    return job;
  }

  const exists = async (id: string): Promise<boolean> => (await ctx.store.getJob({ id })) !== null;
  const sweep = (over: Partial<DeleteFinishedParams> = {}) =>
    ctx.store.deleteFinishedJobs({ queue: 'q', finishedBeforeMs: null, keepJobs: null, limit: 100, ...over });

  describe('deleteFinishedJobs', () => {
    it('deletes finished jobs older than the age limit, oldest first, a batch at a time, with their attempts', async () => {
      await addWorker('w1');
      const done = [await finished(), await finished(), await finished()]; // finished at t0 + 1, + 2, + 3
      const cancelled = await submitOne();
      ctx.clock.advance(1);
      await ctx.store.cancel({ jobId: cancelled.id }); // finished at t0 + 4
      const waiting = await submitOne({ runAt: ctx.t0 + 365 * DAY });
      ctx.clock.advance(10 * DAY);
      const young = await finished();
      const beforeMs = ctx.clock.now() - 5 * DAY;
      assert.deepEqual((await sweep({ finishedBeforeMs: beforeMs, limit: 2 })).deletedJobIds, [done[0]!.id, done[1]!.id]);
      assert.deepEqual((await sweep({ finishedBeforeMs: beforeMs, limit: 2 })).deletedJobIds, [done[2]!.id, cancelled.id]);
      assert.deepEqual((await sweep({ finishedBeforeMs: beforeMs, limit: 2 })).deletedJobIds, [], 'nothing more is eligible');
      for (const j of [...done, cancelled]) {
        assert.equal(await exists(j.id), false);
        assert.deepEqual(await ctx.store.listAttempts({ jobId: j.id }), []);
      }
      assert.deepEqual([(await getJob(waiting.id)).state, (await getJob(young.id)).state], ['queued', 'succeeded'], 'unfinished and young jobs stay');
      assert.equal((await ctx.store.listAttempts({ jobId: young.id })).length, 1);
    });

    it('keeps only the newest keepJobs finished jobs of the queue, and leaves other queues alone', async () => {
      await addWorker('w1', { queues: { q: 4, other: 4 } });
      const jobs = [];
      for (let i = 0; i < 5; i++) jobs.push(await finished());
      const other = await finished({ queue: 'other' });
      assert.deepEqual((await sweep({ keepJobs: 2 })).deletedJobIds, jobs.slice(0, 3).map((j) => j.id));
      assert.deepEqual((await sweep({ keepJobs: 2 })).deletedJobIds, []);
      assert.deepEqual((await sweep({ keepJobs: 10 })).deletedJobIds, [], 'fewer than keepJobs: all kept');
      // Either limit deletes: the age limit reaches past what the count keeps.
      assert.deepEqual((await sweep({ keepJobs: 2, finishedBeforeMs: ctx.clock.now() })).deletedJobIds, jobs.slice(3).map((j) => j.id));
      assert.equal(await exists(other.id), true);
      assert.deepEqual((await sweep({ queue: 'other', keepJobs: 0 })).deletedJobIds, [other.id]);
    });

    it('never deletes a job that an unfinished job depends on; deletes both, and their dependency rows, once it finishes', async () => {
      await addWorker('w1');
      const parent = await finished();
      const child = await submitOne({ dependsOn: [parent.id] });
      assert.deepEqual((await sweep({ keepJobs: 0 })).deletedJobIds, [], 'the parent stays while its dependant is queued');
      const a = await claimOne('w1');
      ctx.clock.advance(1);
      await complete(a);
      assert.deepEqual((await sweep({ keepJobs: 0 })).deletedJobIds, [parent.id, child.id]);
      assert.equal(await exists(child.id), false);
    });

    it('deletes a finished dependant of an unfinished parent, and the parent still settles', async () => {
      await addWorker('w1');
      const parent = await submitOne();
      const child = await submitOne({ dependsOn: [parent.id] });
      await ctx.store.cancel({ jobId: child.id });
      assert.deepEqual((await sweep({ keepJobs: 0 })).deletedJobIds, [child.id]);
      await ctx.store.heartbeat({ workerId: 'w1' });
      const a = await claimOne('w1');
      assert.equal(a.jobId, parent.id);
      const out = await complete(a);
      assert.deepEqual(out.changes.map((c) => [c.jobId, c.state]), [[parent.id, 'succeeded']]);
      assert.deepEqual((await sweep({ keepJobs: 0 })).deletedJobIds, [parent.id]);
    });

    it('frees a deleted job\'s idempotency key: the same key then makes a new job', async () => {
      await addWorker('w1');
      const first = await finished({ idempotencyKey: 'nightly-7' });
      assert.equal((await ctx.store.submit({ jobs: [ctx.spec({ idempotencyKey: 'nightly-7' })] }))[0]!.created, false);
      assert.deepEqual((await sweep({ keepJobs: 0 })).deletedJobIds, [first.id]);
      const again = (await ctx.store.submit({ jobs: [ctx.spec({ idempotencyKey: 'nightly-7' })] }))[0]!;
      assert.equal(again.created, true);
      assert.notEqual(again.job.id, first.id);
    });
  });

  describe('deleteFinishedJobs with an archive', () => {
    it('hands the jobs over whole before deleting them, and deletes nothing when the archive fails', async () => {
      await addWorker('w1');
      const a = await finished({ payload: { n: 1 } });
      const b = await finished({ payload: { n: 2 } });
      await assert.rejects(
        sweep({ keepJobs: 0, archive: async () => Promise.reject(new Error('disk full')) }),
        /disk full/,
      );
      assert.deepEqual([await exists(a.id), await exists(b.id)], [true, true], 'a failed archive deletes nothing');
      const archived: Job[] = [];
      const out = await sweep({ keepJobs: 0, archive: async (jobs) => void archived.push(...jobs) });
      assert.deepEqual(out.deletedJobIds, [a.id, b.id]);
      assert.deepEqual(archived.map((j) => [j.id, j.state, j.payload, j.result]), [
        [a.id, 'succeeded', { n: 1 }, { ok: true }],
        [b.id, 'succeeded', { n: 2 }, { ok: true }],
      ]);
    });
  });

  describe('finishedQueues', () => {
    it('names the queues that have finished jobs, by name, a page at a time', async () => {
      await addWorker('w1', { queues: { q: 4, b: 4, a: 4, idle: 4 } });
      await finished({ queue: 'b' });
      await finished();
      await finished({ queue: 'a' });
      await submitOne({ queue: 'idle', runAt: ctx.t0 + DAY });
      assert.deepEqual(await ctx.store.finishedQueues({ limit: 10 }), ['a', 'b', 'q']);
      assert.deepEqual(await ctx.store.finishedQueues({ limit: 2 }), ['a', 'b']);
      assert.deepEqual(await ctx.store.finishedQueues({ after: 'b', limit: 2 }), ['q']);
    });
  });

  describe('pruneWorkers', () => {
    it('deletes offline records that hold nothing, oldest first, a batch at a time; keeps busy, quarantined, checked and recent ones', async () => {
      await addWorker('idle-1');
      ctx.clock.advance(1);
      await addWorker('idle-2');
      await addWorker('busy');
      await addWorker('bad');
      await addWorker('probing');
      await addWorker('passed');
      await addWorker('recent');
      await submitOne();
      await claimOne('busy');
      await ctx.store.setWorkerQuarantine({ workerId: 'bad', quarantined: true, reason: 'wrong results' });
      const check = (workerId: string) =>
        ctx.store.startCheck({
          workerId,
          queue: 'q',
          job: newJob({ queue: 'q', payload: { challenge: 1 }, maxAttempts: 1, timeoutMs: 5000 }),
          answerHash: resultHash(42),
          timeLimitMs: 5000,
        });
      await check('probing');
      const passed = await check('passed');
      const challenge = await claimOne('passed');
      await complete(challenge, 42);
      ctx.clock.advance(8 * DAY);
      await ctx.store.heartbeat({ workerId: 'recent' });
      const seenBeforeMs = ctx.clock.now() - 7 * DAY;
      // The challenge stays while the check that names it does.
      assert.deepEqual((await sweep({ keepJobs: 0 })).deletedJobIds, []);
      assert.deepEqual(await ctx.store.pruneWorkers({ seenBeforeMs, limit: 1 }), ['idle-1']);
      assert.deepEqual((await ctx.store.pruneWorkers({ seenBeforeMs, limit: 10 })).sort(), ['idle-2', 'passed']);
      assert.deepEqual(await ctx.store.pruneWorkers({ seenBeforeMs, limit: 10 }), []);
      for (const id of ['idle-1', 'idle-2', 'passed']) assert.equal(await ctx.store.getWorker({ id }), null);
      const kept = await Promise.all(['busy', 'bad', 'probing', 'recent'].map((id) => ctx.store.getWorker({ id })));
      assert.deepEqual(kept.map((w) => w?.id), ['busy', 'bad', 'probing', 'recent']);
      assert.deepEqual((await sweep({ keepJobs: 0 })).deletedJobIds, [passed.check.jobId], 'its check went with the worker');
    });

    it('never deletes a worker seen within workerOfflineAfterMs, whatever it is asked', async () => {
      await addWorker('w1');
      assert.deepEqual(await ctx.store.pruneWorkers({ seenBeforeMs: ctx.clock.now() + DAY, limit: 10 }), []);
    });
  });
}
