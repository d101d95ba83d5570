// Store conformance, reads: listing and paging jobs, queue counts and stats,
// a worker's live attempts, ping, and lookups by ids no store can hold (the
// one place backends differ: StoreContractOptions.unstorableText).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../store.ts';
import { type ContractContext, ids, SECOND, sorted } from './context.ts';

export function readTests(ctx: ContractContext): void {
  const { submit, submitOne, addWorker, claim, claimOne, getJob, complete, fail } = ctx;

  // ---- Get and list ----

  describe('get and list', () => {
    it('lists newest first, filtered by queue, state and label', async () => {
      await addWorker('wb', { queues: { b: 4 } });
      const [a1, a2, b1, b2, a3, a4] = await submit(
        { queue: 'a', labels: { env: 'prod' } },
        { queue: 'a', labels: { env: 'dev' } },
        { queue: 'b', labels: { env: 'prod' } },
        { queue: 'b' },
        { queue: 'a', labels: { env: 'prod', 'gaffer.io/team': 'x' } },
        { queue: 'a', labels: { 'gaffer.io/team': 'y' } },
      );
      assert.ok(a1 && a2 && b1 && b2 && a3 && a4);
      const running = await claimOne('wb'); // oldest b job: b1
      assert.equal(running.jobId, b1.id);
      const list = async (p: Omit<Parameters<Store['listJobs']>[0], 'limit'>) =>
        ids((await ctx.store.listJobs({ ...p, limit: 100 })).jobs);
      assert.deepEqual(await list({}), [a4.id, a3.id, b2.id, b1.id, a2.id, a1.id]);
      assert.deepEqual(await list({ queue: 'a' }), [a4.id, a3.id, a2.id, a1.id]);
      assert.deepEqual(await list({ state: 'running' }), [b1.id]);
      assert.deepEqual(await list({ queue: 'b', state: 'queued' }), [b2.id]);
      assert.deepEqual(await list({ label: { key: 'env', value: 'prod' } }), [a3.id, b1.id, a1.id]);
      assert.deepEqual(await list({ queue: 'a', label: { key: 'env', value: 'prod' } }), [a3.id, a1.id]);
      assert.deepEqual(await list({ label: { key: 'gaffer.io/team', value: 'y' } }), [a4.id]);
      assert.deepEqual(await list({ label: { key: 'env', value: 'staging' } }), []);
      assert.deepEqual(await list({ queue: 'nope' }), []);
      assert.deepEqual(await list({ state: 'failed' }), []);
    });

    it('pages with a cursor, with no duplicates or gaps, even while jobs arrive', async () => {
      const early = await submit({}, {}, {});
      ctx.clock.advance(10);
      const late = await submit({}, {}, {}, {});
      const all = sorted([...ids(early), ...ids(late)]).reverse(); // newest first
      const p1 = await ctx.store.listJobs({ limit: 3 });
      assert.deepEqual(ids(p1.jobs), all.slice(0, 3));
      assert.ok(p1.nextCursor !== null);
      // New jobs between pages are newer than the cursor: they neither shift nor repeat the rest.
      ctx.clock.advance(10);
      await submit({}, {});
      const p2 = await ctx.store.listJobs({ limit: 3, cursor: p1.nextCursor });
      assert.deepEqual(ids(p2.jobs), all.slice(3, 6));
      assert.ok(p2.nextCursor !== null);
      const p3 = await ctx.store.listJobs({ limit: 3, cursor: p2.nextCursor });
      assert.deepEqual(ids(p3.jobs), all.slice(6));
      assert.equal(p3.nextCursor, null);
      // A page that ends exactly at the last job has no next cursor.
      const exact = await ctx.store.listJobs({ limit: 9 });
      assert.equal(exact.jobs.length, 9);
      assert.equal(exact.nextCursor, null);
    });

    it('pages through a filter', async () => {
      const jobs = await submit({ queue: 'a' }, { queue: 'b' }, { queue: 'a' }, { queue: 'b' }, { queue: 'a' }, { queue: 'a' });
      const want = jobs.filter((j) => j.queue === 'a').map((j) => j.id).reverse();
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await ctx.store.listJobs({ queue: 'a', limit: 2, ...(cursor === undefined ? {} : { cursor }) });
        assert.ok(page.jobs.length <= 2);
        seen.push(...ids(page.jobs));
        if (page.nextCursor === null) break;
        cursor = page.nextCursor;
      }
      assert.deepEqual(seen, want);
    });
  });

  // ---- Counts ----

  describe('queueCounts', () => {
    it('counts jobs per queue and state', async () => {
      assert.deepEqual(await ctx.store.queueCounts(), []);
      await addWorker('w1', { queues: { a: 4 } });
      const [a1, , , a4] = await submit({ queue: 'a' }, { queue: 'a' }, { queue: 'a' }, { queue: 'a' });
      assert.ok(a1 && a4);
      const [x, y] = await claim('w1', 2); // a1, a2 run
      await complete(x!); // a1 succeeded, a2 running, a3 a4 queued
      assert.ok(y);
      const [, b2] = await submit({ queue: 'b', dependsOn: [a4.id] }, { queue: 'b' });
      assert.ok(b2);
      await ctx.store.cancel({ jobId: b2.id });
      const counts = (await ctx.store.queueCounts()).sort((p, q) => (p.queue < q.queue ? -1 : 1));
      const zero = { waiting: 0, queued: 0, running: 0, verifying: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 };
      assert.deepEqual(counts, [
        { queue: 'a', counts: { ...zero, queued: 2, running: 1, succeeded: 1 }, fillerQueued: 0 },
        { queue: 'b', counts: { ...zero, waiting: 1, cancelled: 1 }, fillerQueued: 0 },
      ]);
    });
  });

  describe('queueStats', () => {
    // 21 jobs leased together at t0 to one worker; attempt i (1..19) completes i s later, the 20th
    // fails at 20 s and the 21st is cancelled while running (cancelled attempts are not counted).
    async function runTwentyOne(): Promise<void> {
      await addWorker('w1', { queues: { a: 21 } });
      await submit(...Array.from({ length: 21 }, () => ({ queue: 'a', maxAttempts: 1 })));
      const leased = await claim('w1');
      assert.equal(leased.length, 21);
      for (let i = 1; i <= 20; i++) {
        ctx.clock.advance(SECOND);
        if (i < 20) await complete(leased[i - 1]!);
        else await fail(leased[i - 1]!);
      }
      await ctx.store.cancel({ jobId: leased[20]!.jobId });
    }

    it('counts the attempts finished since a time, with the mean and nearest-rank p95 of the completed ones', async () => {
      await runTwentyOne();
      const stats = (since: number, sampleMaxRows = 1000) => ctx.store.queueStats({ queues: ['a', 'b'], sinceMs: since, sampleMaxRows });
      // All of them: completed run times 1..19 s, mean 10 s, p95 at rank ceil(0.95 * 19) = 19, so 19 s.
      assert.deepEqual(await stats(ctx.t0), [
        { queue: 'a', completed: 19, failed: 1, runTimeMeanMs: 10_000, runTimeP95Ms: 19_000, sampledSinceMs: ctx.t0 },
        { queue: 'b', completed: 0, failed: 0, runTimeMeanMs: null, runTimeP95Ms: null, sampledSinceMs: ctx.t0 },
      ]);
      // The 1 s attempt finished at t0 + 1000: inclusive at that time, left out 1 ms later.
      assert.equal((await stats(ctx.t0 + SECOND))[0]?.completed, 19);
      // 2..19 s: mean 10.5 s; p95 at rank ceil(0.95 * 18) = 18, so 19 s.
      assert.deepEqual((await stats(ctx.t0 + SECOND + 1))[0], {
        queue: 'a', completed: 18, failed: 1, runTimeMeanMs: 10_500, runTimeP95Ms: 19_000, sampledSinceMs: ctx.t0 + SECOND + 1,
      });
    });

    it('reads only the newest attempts when the sample bound cuts, and says from when', async () => {
      await runTwentyOne();
      // The newest 5 finished at 16..20 s: completed 16..19 s (mean 17.5 s, p95 rank 4 of 4), one failed.
      const [a] = await ctx.store.queueStats({ queues: ['a'], sinceMs: ctx.t0, sampleMaxRows: 5 });
      assert.deepEqual(a, {
        queue: 'a', completed: 4, failed: 1, runTimeMeanMs: 17_500, runTimeP95Ms: 19_000, sampledSinceMs: ctx.t0 + 16 * SECOND,
      });
    });

    it('counts a lost attempt as failed', async () => {
      await addWorker('w1', { queues: { a: 1 } });
      await submitOne({ queue: 'a', heartbeatTimeoutMs: 10_000, maxAttempts: 1 });
      await claimOne('w1');
      ctx.clock.advance(10_001);
      await ctx.store.expireAttempts({ limit: 100 });
      const [a] = await ctx.store.queueStats({ queues: ['a'], sinceMs: ctx.t0, sampleMaxRows: 100 });
      assert.deepEqual([a?.completed, a?.failed, a?.runTimeMeanMs], [0, 1, null]);
    });
  });

  describe('oldestReady', () => {
    it('gives the earliest ready time among claimable jobs that are ready now, per queue', async () => {
      await addWorker('w1');
      const a = await submitOne();
      await submitOne({ runAt: ctx.t0 + 5000 });
      ctx.clock.advance(1000);
      const c = await submitOne();
      ctx.clock.advance(1000);
      const ready = () => ctx.store.oldestReady({ queues: ['q', 'empty'] });
      assert.deepEqual(await ready(), [{ queue: 'q', readyAt: a.runAt }, { queue: 'empty', readyAt: null }]);
      assert.equal((await claimOne('w1')).jobId, a.id);
      assert.deepEqual((await ready())[0], { queue: 'q', readyAt: c.runAt }, 'a leased job is no longer ready; the delayed one is not yet');
      assert.equal(c.runAt, ctx.t0 + 1000);
    });
  });

  describe('listLiveAttempts and ping', () => {
    it('lists the attempts a worker holds now, oldest first, and nothing for an unknown worker', async () => {
      await addWorker('w1');
      await addWorker('w2', { queues: { q: 1 } });
      await submit({}, {}, {});
      const [first, second] = await claim('w1', 2);
      assert.ok(first && second);
      ctx.clock.advance(1);
      const other = await claimOne('w2');
      await complete(first);
      assert.deepEqual(ids(await ctx.store.listLiveAttempts({ workerId: 'w1' })), [second.attemptId]);
      const [live] = await ctx.store.listLiveAttempts({ workerId: 'w2' });
      assert.deepEqual([live?.id, live?.jobId, live?.state], [other.attemptId, other.jobId, 'leased']);
      assert.deepEqual(await ctx.store.listLiveAttempts({ workerId: 'nobody' }), []);
      // The jobs a worker had an attempt of, in any state, newest first.
      const byW1 = await ctx.store.listJobs({ workerId: 'w1', limit: 10 });
      assert.deepEqual(byW1.jobs.map((j) => j.id).sort(), [first.jobId, second.jobId].sort());
      assert.deepEqual((await ctx.store.listJobs({ workerId: 'w2', limit: 10 })).jobs.map((j) => j.id), [other.jobId]);
      assert.deepEqual((await ctx.store.listJobs({ workerId: 'nobody', limit: 10 })).jobs, []);
    });

    it('answers a ping', async () => {
      await ctx.store.ping();
    });
  });

  describe('text no store can hold', () => {
    const mode = ctx.options.unstorableText ?? 'not-found';
    it(`answers a lookup by an id with a NUL or an unpaired surrogate as ${mode}`, async () => {
      await addWorker('w1');
      const job = await submitOne();
      const a = await claimOne('w1');
      for (const bad of ['x\u0000', 'x\uD800', `${job.id}\u0000`]) {
        if (mode === 'not-found') {
          assert.equal(await ctx.store.getJob({ id: bad }), null);
          assert.equal(await ctx.store.getWorker({ id: bad }), null);
          assert.deepEqual(await ctx.store.listAttempts({ jobId: bad }), []);
          await assert.rejects(ctx.store.cancel({ jobId: bad }), { name: 'GafferError', code: 'JOB_NOT_FOUND' });
          await assert.rejects(ctx.store.complete({ attemptId: bad, lease: a.lease, result: 1 }), { name: 'GafferError', code: 'ATTEMPT_NOT_FOUND' });
          assert.deepEqual((await ctx.store.listJobs({ limit: 10, queue: bad })).jobs, []);
        } else {
          const refused = { name: 'GafferError', code: 'INVALID_INPUT' };
          await assert.rejects(ctx.store.getJob({ id: bad }), refused);
          await assert.rejects(ctx.store.getWorker({ id: bad }), refused);
          await assert.rejects(ctx.store.listAttempts({ jobId: bad }), refused);
          await assert.rejects(ctx.store.cancel({ jobId: bad }), refused);
          await assert.rejects(ctx.store.complete({ attemptId: bad, lease: a.lease, result: 1 }), refused);
          await assert.rejects(ctx.store.listJobs({ limit: 10, queue: bad }), refused);
        }
      }
      // Either way nothing changed, and the store still serves.
      assert.equal((await getJob(job.id)).state, 'running');
      await complete(a);
      assert.equal((await getJob(job.id)).state, 'succeeded');
    });
  });
}
