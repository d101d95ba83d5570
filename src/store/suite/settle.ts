// Store conformance, settling attempts: complete under the current lease
// only (fencing), fail with backoff and retry, and votes of replicas.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Assignment, Job } from '../../types/model.ts';
import { change, type ContractContext, EXTRA_REPLICAS_MAX, jobIds, MINUTE } from './context.ts';

export function settleTests(ctx: ContractContext): void {
  const { submit, submitOne, addWorker, claim, claimOne, getJob, attemptOf, complete, fail } = ctx;

  // ---- Complete: fencing ----

  describe('complete', () => {
    it('accepts the result under the current lease, once', async () => {
      await addWorker('w1');
      const job = await submitOne();
      const a = await claimOne('w1');
      ctx.clock.advance(2_000);
      const out = await complete(a, { proof: 'abc' });
      assert.deepEqual(out.changes, [change(job.id, 'succeeded')]);
      assert.deepEqual(
        [out.job.state, out.job.result, out.job.error, out.job.live, out.job.want, out.job.finishedAt],
        ['succeeded', { proof: 'abc' }, null, 0, 0, ctx.t0 + 2_000],
      );
      assert.deepEqual(await getJob(job.id), out.job);
      const at = await attemptOf(a);
      assert.equal(at.state, 'completed');
      assert.equal(at.finishedAt, ctx.t0 + 2_000);
      assert.equal(typeof at.resultHash, 'string');
      // At most one accepted result: the same lease cannot report again, either way.
      await assert.rejects(complete(a, { proof: 'other' }), { code: 'STALE_LEASE' });
      await assert.rejects(fail(a), { code: 'STALE_LEASE' });
      assert.deepEqual(await getJob(job.id), out.job);
    });

    it('refuses a wrong lease with STALE_LEASE and changes nothing', async () => {
      await addWorker('w1');
      const job = await submitOne();
      const a = await claimOne('w1');
      await assert.rejects(ctx.store.complete({ attemptId: a.attemptId, lease: 'f'.repeat(32), result: 1 }), { code: 'STALE_LEASE' });
      await assert.rejects(ctx.store.fail({ attemptId: a.attemptId, lease: 'f'.repeat(32), error: { code: 'X', message: 'x' }, retryable: false }), { code: 'STALE_LEASE' });
      assert.equal((await getJob(job.id)).state, 'running');
      assert.equal((await attemptOf(a)).state, 'leased');
      assert.equal((await complete(a, 1)).job.state, 'succeeded');
    });

    it('refuses a lease that ran out but was not swept yet', async () => {
      await addWorker('w1');
      const job = await submitOne({ heartbeatTimeoutMs: 10_000 });
      const a = await claimOne('w1');
      ctx.clock.advance(10_001);
      await assert.rejects(complete(a), { code: 'STALE_LEASE' });
      await assert.rejects(fail(a), { code: 'STALE_LEASE' });
      assert.equal((await getJob(job.id)).state, 'running');
      assert.equal((await attemptOf(a)).state, 'leased', 'the sweeper, not the refusal, ends the attempt');
    });

    it("refuses the attempt of a cancelled job", async () => {
      await addWorker('w1');
      const job = await submitOne();
      const a = await claimOne('w1');
      await ctx.store.cancel({ jobId: job.id });
      await assert.rejects(complete(a), { code: 'STALE_LEASE' });
      await assert.rejects(fail(a), { code: 'STALE_LEASE' });
      assert.equal((await getJob(job.id)).state, 'cancelled');
    });

    it('answers ATTEMPT_NOT_FOUND for an attempt that never existed', async () => {
      await assert.rejects(ctx.store.complete({ attemptId: '01ARZ3NDEKTSV4RRFFQ69G5FAV', lease: 'f'.repeat(32), result: 1 }), { code: 'ATTEMPT_NOT_FOUND' });
      await assert.rejects(ctx.store.fail({ attemptId: '01ARZ3NDEKTSV4RRFFQ69G5FAV', lease: 'f'.repeat(32), error: { code: 'X', message: 'x' }, retryable: true }), { code: 'ATTEMPT_NOT_FOUND' });
    });

    it('keeps a stale worker that wakes after its lease was lost from overwriting the new attempt', async () => {
      await addWorker('w1');
      await addWorker('w2');
      const job = await submitOne({ heartbeatTimeoutMs: 10_000, backoff: { baseMs: 1_000, maxMs: 1_000 } });
      const stale = await claimOne('w1');
      ctx.clock.advance(10_001);
      await ctx.store.expireAttempts({ limit: 100 });
      ctx.clock.advance(1_000); // past the backoff of at most 1 s
      const fresh = await claimOne('w2');
      assert.equal(fresh.attempt, 2);
      await assert.rejects(complete(stale, 'stale'), { code: 'STALE_LEASE' });
      assert.equal((await complete(fresh, 'fresh')).job.result, 'fresh');
      await assert.rejects(complete(stale, 'stale'), { code: 'STALE_LEASE' });
      assert.deepEqual((await ctx.store.listAttempts({ jobId: job.id })).map((x) => [x.id, x.state]), [
        [stale.attemptId, 'lost'],
        [fresh.attemptId, 'completed'],
      ]);
      assert.equal((await getJob(job.id)).result, 'fresh');
    });
  });

  // ---- Fail and retry ----

  describe('fail and retry', () => {
    it('re-queues a retryable failure with exponential backoff until maxAttempts, then fails with the last error', async () => {
      await addWorker('w1');
      const job = await submitOne({ maxAttempts: 3, backoff: { baseMs: 1_000, maxMs: 60_000 } });
      for (let n = 1; n <= 2; n++) {
        const a = await claimOne('w1');
        assert.equal(a.attempt, n);
        ctx.clock.advance(100);
        const out = await fail(a, `boom ${n}`);
        const now = ctx.clock.now();
        assert.deepEqual(out.changes, [change(job.id, 'queued')]);
        assert.deepEqual(
          [out.job.state, out.job.failures, out.job.live, out.job.want, out.job.finishedAt],
          ['queued', n, 0, 1, null],
        );
        assert.deepEqual(out.job.error, { code: 'HANDLER_ERROR', message: `boom ${n}`, attemptId: a.attemptId });
        // The n-th failure waits between half and all of baseMs * 2^(n-1): [500, 1000], then [1000, 2000].
        const fullMs = 1_000 * 2 ** (n - 1);
        const delayMs = out.job.runAt - now;
        assert.ok(delayMs >= fullMs / 2 && delayMs <= fullMs, `delay ${delayMs} in [${fullMs / 2}, ${fullMs}]`);
        assert.equal(await ctx.store.nextRunAt(), out.job.runAt);
        ctx.clock.advance(delayMs - 1);
        assert.deepEqual(await claim('w1'), [], 'not before run_at');
        ctx.clock.advance(1);
      }
      const last = await claimOne('w1');
      assert.equal(last.attempt, 3);
      const out = await fail(last, 'boom 3');
      assert.deepEqual(out.changes, [change(job.id, 'failed')]);
      assert.deepEqual(
        [out.job.state, out.job.failures, out.job.attempts, out.job.want, out.job.finishedAt],
        ['failed', 3, 3, 0, ctx.clock.now()],
      );
      assert.deepEqual(out.job.error, { code: 'HANDLER_ERROR', message: 'boom 3', attemptId: last.attemptId });
      assert.deepEqual(await claim('w1'), []);
      assert.deepEqual((await ctx.store.listAttempts({ jobId: job.id })).map((x) => [x.state, x.error?.message]), [
        ['failed', 'boom 1'],
        ['failed', 'boom 2'],
        ['failed', 'boom 3'],
      ]);
    });

    it('never waits longer than backoff.maxMs', async () => {
      await addWorker('w1');
      await submitOne({ maxAttempts: 5, backoff: { baseMs: 1_000, maxMs: 1_500 } });
      // Full delays: 1000, then min(1500, 2000) = 1500, then min(1500, 4000) = 1500.
      for (const fullMs of [1_000, 1_500, 1_500]) {
        const out = await fail(await claimOne('w1'));
        const delayMs = out.job.runAt - ctx.clock.now();
        assert.ok(delayMs >= fullMs / 2 && delayMs <= fullMs, `delay ${delayMs} in [${fullMs / 2}, ${fullMs}]`);
        ctx.clock.advance(delayMs);
      }
    });

    it('ends the job at once on a non-retryable failure', async () => {
      await addWorker('w1');
      const job = await submitOne({ maxAttempts: 5 });
      const a = await claimOne('w1');
      const out = await fail(a, 'bad input', false);
      assert.deepEqual(out.changes, [change(job.id, 'failed')]);
      assert.deepEqual([out.job.state, out.job.failures, out.job.finishedAt], ['failed', 1, ctx.t0]);
      assert.deepEqual(out.job.error, { code: 'HANDLER_ERROR', message: 'bad input', attemptId: a.attemptId });
      assert.deepEqual(await claim('w1'), []);
    });

    it('puts a failed job back in the queue with a fresh retry budget', async () => {
      await addWorker('w1');
      const job = await submitOne({ maxAttempts: 2, backoff: { baseMs: 0, maxMs: 0 } });
      await fail(await claimOne('w1'));
      const failed = (await fail(await claimOne('w1'))).job;
      assert.deepEqual([failed.state, failed.failures], ['failed', 2]);
      ctx.clock.advance(MINUTE);
      await ctx.store.heartbeat({ workerId: 'w1' }); // a worker unseen for a minute would be offline
      const out = await ctx.store.retry({ jobId: job.id });
      assert.deepEqual(out.changes, [change(job.id, 'queued')]);
      assert.deepEqual(
        [out.job.state, out.job.failures, out.job.error, out.job.finishedAt, out.job.want, out.job.runAt],
        ['queued', 0, null, null, 1, ctx.t0 + MINUTE],
      );
      const a = await claimOne('w1');
      assert.equal(a.attempt, 3);
      const again = await fail(a);
      assert.deepEqual([again.job.state, again.job.failures], ['queued', 1], 'one failure of a fresh budget of 2 retries');
    });

    it('retries a cancelled job', async () => {
      const job = await submitOne();
      await ctx.store.cancel({ jobId: job.id });
      const out = await ctx.store.retry({ jobId: job.id });
      assert.deepEqual([out.job.state, out.job.error, out.job.finishedAt], ['queued', null, null]);
    });

    it('refuses to retry a job that has not ended, or succeeded', async () => {
      await addWorker('w1');
      const [succeeded, running, queued] = await submit({}, {}, {});
      assert.ok(succeeded && running && queued);
      const got = await claim('w1', 2);
      assert.deepEqual(jobIds(got), [succeeded.id, running.id]);
      await complete(got[0]!);
      await assert.rejects(ctx.store.retry({ jobId: succeeded.id }), { code: 'INVALID_STATE' });
      await assert.rejects(ctx.store.retry({ jobId: running.id }), { code: 'INVALID_STATE' });
      await assert.rejects(ctx.store.retry({ jobId: queued.id }), { code: 'INVALID_STATE' });
      await assert.rejects(ctx.store.retry({ jobId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }), { code: 'JOB_NOT_FOUND' });
    });
  });

  // ---- Replicas and quorum ----

  describe('replicas and quorum', () => {
    // margin 1: a bare lead decides, once the pending replicas cannot take it away.
    async function threeReplicas(margin = 1): Promise<{ job: Job; attempts: Assignment[] }> {
      for (const id of ['w1', 'w2', 'w3']) await addWorker(id);
      const job = await submitOne({ replicas: 3, quorum: 2, margin });
      const attempts = await claim(['w1', 'w2', 'w3']);
      assert.equal(attempts.length, 3);
      return { job, attempts };
    }

    it('with margin 1, succeeds with the result two of three agree on, and rejects the one that disagrees', async () => {
      const { job, attempts } = await threeReplicas();
      const [a, b, c] = attempts as [Assignment, Assignment, Assignment];
      const r1 = await complete(a, { x: 1, y: [1, 2] });
      assert.deepEqual([r1.job.state, r1.job.live, r1.changes], ['running', 2, []]);
      const r2 = await complete(b, { x: 2, y: [1, 2] });
      assert.deepEqual([r2.job.state, r2.job.live, r2.changes], ['running', 1, []]);
      // The same value with its keys in another order: results compare by canonical JSON.
      const r3 = await complete(c, { y: [1, 2], x: 1 });
      assert.deepEqual(r3.changes, [change(job.id, 'succeeded')]);
      assert.deepEqual([r3.job.state, r3.job.result, r3.job.live], ['succeeded', { x: 1, y: [1, 2] }, 0]);
      assert.deepEqual((await ctx.store.listAttempts({ jobId: job.id })).map((x) => [x.id, x.state]).sort(), [
        [a.attemptId, 'completed'],
        [b.attemptId, 'rejected'],
        [c.attemptId, 'completed'],
      ].sort());
    });

    it('with margin 1, cancels the remaining live replica once two agree', async () => {
      const { job, attempts } = await threeReplicas();
      const [a, b, c] = attempts as [Assignment, Assignment, Assignment];
      await complete(a, 'same');
      const out = await complete(b, 'same');
      assert.deepEqual(out.changes, [change(job.id, 'succeeded', [{ attemptId: c.attemptId, workerId: c.workerId }])]);
      assert.equal(out.job.result, 'same');
      assert.equal((await attemptOf(c)).state, 'cancelled');
      await assert.rejects(complete(c, 'same'), { code: 'STALE_LEASE' });
    });

    it('does not count votes from before a retry', async () => {
      const { job, attempts } = await threeReplicas();
      const [a] = attempts as [Assignment, Assignment, Assignment];
      await complete(a, 'old');
      await ctx.store.cancel({ jobId: job.id });
      await ctx.store.retry({ jobId: job.id });
      for (const id of ['w4', 'w5']) await addWorker(id);
      const fresh = await claim(['w4', 'w5']);
      assert.equal(fresh.length, 2);
      const out = await complete(fresh[0]!, 'old');
      assert.equal(out.job.state, 'running', 'one vote of this round is not a quorum of two');
      assert.equal((await attemptOf(a)).state, 'rejected');
    });

    it('adds replicas up to the bound when no quorum is reached, then fails NO_QUORUM', async () => {
      const bound = 3 + EXTRA_REPLICAS_MAX;
      const workers = Array.from({ length: bound }, (_, i) => `w${i + 1}`);
      for (const id of workers) await addWorker(id);
      const job = await submitOne({ replicas: 3, quorum: 2 });
      const first = await claim(workers);
      assert.equal(first.length, 3);
      const used = new Set(first.map((a) => a.workerId));
      let n = 0;
      for (const a of first.slice(0, 2)) await complete(a, `answer ${++n}`);
      let out = await complete(first[2]!, `answer ${++n}`);
      for (let extra = 1; extra <= EXTRA_REPLICAS_MAX; extra++) {
        assert.deepEqual(out.changes, [change(job.id, 'queued')], `no quorum after ${n}: one more replica`);
        assert.deepEqual([out.job.state, out.job.want, out.job.live], ['queued', 1, 0]);
        const more = await claim(workers);
        assert.equal(more.length, 1);
        assert.ok(!used.has(more[0]!.workerId), 'an added replica goes to a worker that has not run the job');
        used.add(more[0]!.workerId);
        out = await complete(more[0]!, `answer ${++n}`);
      }
      assert.deepEqual(out.changes, [change(job.id, 'failed')]);
      assert.deepEqual([out.job.state, out.job.error?.code, out.job.attempts, out.job.result], ['failed', 'NO_QUORUM', bound, null]);
      assert.deepEqual((await ctx.store.listAttempts({ jobId: job.id })).map((x) => x.state), Array(bound).fill('rejected'));
      assert.deepEqual(await claim(workers), []);
    });

    it('with margin 1, accepts when an added replica breaks the tie', async () => {
      for (const id of ['w1', 'w2', 'w3', 'w4']) await addWorker(id);
      const job = await submitOne({ replicas: 3, quorum: 2, margin: 1 });
      const [a, b, c] = (await claim(['w1', 'w2', 'w3', 'w4'])) as [Assignment, Assignment, Assignment];
      await complete(a, 'A');
      await complete(b, 'B');
      assert.equal((await complete(c, 'C')).job.state, 'queued');
      const d = await claimOne(['w1', 'w2', 'w3', 'w4']);
      const out = await complete(d, 'B');
      assert.deepEqual([out.job.state, out.job.result], ['succeeded', 'B']);
      assert.deepEqual((await ctx.store.listAttempts({ jobId: job.id })).map((x) => [x.id, x.state]).sort(), [
        [a.attemptId, 'rejected'],
        [b.attemptId, 'completed'],
        [c.attemptId, 'rejected'],
        [d.attemptId, 'completed'],
      ].sort());
    });

    it('with the default margin of 2, two agreeing results do not settle a job while its third is out, and a 2-1 split adds replicas', async () => {
      for (const id of ['w1', 'w2', 'w3', 'w4', 'w5', 'w6']) await addWorker(id);
      const job = await submitOne({ replicas: 3, quorum: 2 });
      assert.equal(job.margin, 2);
      const [a, b, c] = (await claim(['w1', 'w2', 'w3'])) as [Assignment, Assignment, Assignment];
      await complete(a, 'wrong');
      const early = await complete(b, 'wrong');
      assert.deepEqual([early.job.state, early.changes], ['running', []], 'two fast votes wait for the third');
      const split = await complete(c, 'right');
      assert.deepEqual([split.job.state, split.job.want], ['queued', 1], '2 against 1 is no verdict');
      const d = await claimOne(['w1', 'w2', 'w3', 'w4', 'w5']);
      assert.ok(!['w1', 'w2', 'w3'].includes(d.workerId), 'the added replica goes to a worker that has not voted');
      assert.equal((await complete(d, 'right')).job.state, 'queued', '2 against 2: another replica');
      const e = await claimOne(['w1', 'w2', 'w3', 'w4', 'w5']);
      const third = await complete(e, 'right');
      assert.equal(third.job.state, 'queued', '3 against 2 is a lead of 1: still short of 2');
      const f = await claimOne(['w6']);
      const won = await complete(f, 'right');
      assert.deepEqual([won.job.state, won.job.result], ['succeeded', 'right']);
      const states = new Map((await ctx.store.listAttempts({ jobId: job.id })).map((x) => [x.id, x.state]));
      assert.deepEqual([a, b].map((x) => states.get(x.attemptId)), ['rejected', 'rejected']);
      assert.deepEqual([c, d, e, f].map((x) => states.get(x.attemptId)), ['completed', 'completed', 'completed', 'completed']);
    });

    it('ends a split vote NO_QUORUM at once when no connected worker that has not voted serves the queue', async () => {
      for (const id of ['w1', 'w2', 'w3']) await addWorker(id);
      await addWorker('elsewhere', { queues: { other: 1 } });
      const job = await submitOne({ replicas: 3, quorum: 2 });
      const [a, b, c] = (await claim(['w1', 'w2', 'w3'])) as [Assignment, Assignment, Assignment];
      await complete(a, 'wrong');
      await complete(b, 'wrong');
      const out = await complete(c, 'right');
      assert.deepEqual([out.job.state, out.job.error?.code], ['failed', 'NO_QUORUM']);
      assert.match(out.job.error?.message ?? '', /the vote is split.*no connected worker that serves q and has not voted could add a replica$/);
      for (const w of await ctx.store.listWorkers()) assert.deepEqual([w.reputation.valid, w.reputation.invalid], [0, 0], w.id);
      assert.equal(job.id, out.job.id);
    });

    it('judges no worker while the vote is undecided, and none when it ends without a verdict', async () => {
      const workers = Array.from({ length: 3 + EXTRA_REPLICAS_MAX }, (_, i) => `w${i + 1}`);
      for (const id of workers) await addWorker(id);
      const job = await submitOne({ replicas: 3, quorum: 2 });
      const first = (await claim(workers)) as [Assignment, Assignment, Assignment];
      await complete(first[0], 'wrong');
      await complete(first[1], 'wrong');
      let out = await complete(first[2], 'right');
      // Alternate right and wrong answers so that no result ever leads by 2.
      for (let i = 0; out.job.state === 'queued'; i++) out = await complete(await claimOne(workers), i % 2 === 0 ? 'right' : 'wrong');
      assert.deepEqual([out.job.state, out.job.error?.code], ['failed', 'NO_QUORUM']);
      assert.match(out.job.error?.message ?? '', /the vote is split/);
      for (const w of await ctx.store.listWorkers()) assert.deepEqual([w.reputation.valid, w.reputation.invalid], [0, 0], w.id);
    });
  });
}
