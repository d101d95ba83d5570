// Store conformance, the sweepers: lost leases and timeouts
// (expireAttempts), and jobs that pass their deadline (expireDeadlines).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS } from '../../types/limits.ts';
import type { Change } from '../store.ts';
import { byJobId, change, type ContractContext, MINUTE, SECOND, sorted } from './context.ts';

export function sweepTests(ctx: ContractContext): void {
  const { submitOne, addWorker, claim, claimOne, getJob, attemptOf, ref, complete } = ctx;

  // ---- Sweepers ----

  describe('expireAttempts', () => {
    it('marks an attempt lost after its heartbeat timeout (LEASE_LOST) and re-queues the job', async () => {
      await addWorker('w1');
      const job = await submitOne({ heartbeatTimeoutMs: 10_000, timeoutMs: MINUTE, backoff: { baseMs: 1_000, maxMs: 1_000 } });
      const a = await claimOne('w1');
      ctx.clock.advance(9_999);
      assert.deepEqual(await ctx.store.expireAttempts({ limit: 100 }), { changes: [], endedAttempts: [] });
      ctx.clock.advance(2); // t0 + 10_001: the lease ran out at t0 + 10_000
      const swept = await ctx.store.expireAttempts({ limit: 100 });
      assert.deepEqual(swept.endedAttempts, [{ attemptId: a.attemptId, workerId: 'w1', reason: 'LEASE_LOST' }]);
      assert.deepEqual(swept.changes, [change(job.id, 'queued')]);
      const at = await attemptOf(a);
      assert.deepEqual([at.state, at.finishedAt, at.error?.code, at.error?.attemptId], ['lost', ctx.t0 + 10_001, 'LEASE_LOST', a.attemptId]);
      const after = await getJob(job.id);
      assert.deepEqual([after.state, after.failures, after.lost, after.live, after.want, after.error?.code], ['queued', 0, 1, 0, 1, 'LEASE_LOST']);
      // A lost lease is the worker's failure, not the job's: it goes back at once, without backoff, its retry budget whole.
      assert.equal(after.runAt, ctx.t0 + 10_001);
      assert.deepEqual(await ctx.store.expireAttempts({ limit: 100 }), { changes: [], endedAttempts: [] }, 'once only');
    });

    it('gives a worker whose lease was lost for silence nothing new until it heartbeats again', async () => {
      await addWorker('silent');
      const job = await submitOne({ heartbeatTimeoutMs: 10_000 });
      await claimOne('silent');
      ctx.clock.advance(10_001);
      await ctx.store.expireAttempts({ limit: 100 });
      assert.deepEqual(await claim('silent'), [], 'not handed back the job it just lost');
      assert.equal((await ctx.store.getWorker({ id: 'silent' }))?.state, 'offline');
      await ctx.store.heartbeat({ workerId: 'silent' });
      const again = await claimOne('silent');
      assert.deepEqual([again.jobId, again.attempt], [job.id, 2]);
    });

    it('fails an attempt that runs past timeoutMs (TIMEOUT) even while it heartbeats, and re-queues the job', async () => {
      await addWorker('w1');
      const job = await submitOne({ heartbeatTimeoutMs: 10_000, timeoutMs: 25_000 });
      const a = await claimOne('w1');
      for (let i = 0; i < 4; i++) {
        ctx.clock.advance(5_000);
        await ctx.store.heartbeat({ workerId: 'w1' });
      }
      ctx.clock.advance(4_999); // t0 + 24_999
      assert.deepEqual((await ctx.store.expireAttempts({ limit: 100 })).endedAttempts, []);
      ctx.clock.advance(2); // t0 + 25_001; the lease holds until t0 + 30_000
      const swept = await ctx.store.expireAttempts({ limit: 100 });
      assert.deepEqual(swept.endedAttempts, [{ attemptId: a.attemptId, workerId: 'w1', reason: 'TIMEOUT' }]);
      assert.deepEqual(swept.changes, [change(job.id, 'queued')]);
      const at = await attemptOf(a);
      assert.deepEqual([at.state, at.error?.code], ['failed', 'TIMEOUT']);
      const after = await getJob(job.id);
      assert.deepEqual([after.state, after.failures, after.error?.code], ['queued', 1, 'TIMEOUT']);
    });

    it('tells a lost attempt and a timed-out one apart in the same sweep', async () => {
      await addWorker('silent');
      await addWorker('hung');
      const lostJob = await submitOne({ heartbeatTimeoutMs: 10_000 });
      const lost = await claimOne('silent');
      const hungJob = await submitOne({ heartbeatTimeoutMs: 10_000, timeoutMs: 5_000 });
      const hung = await claimOne('hung');
      ctx.clock.advance(4_000);
      await ctx.store.heartbeat({ workerId: 'hung' }); // its lease now runs to t0 + 14_000
      ctx.clock.advance(6_001); // t0 + 10_001
      const swept = await ctx.store.expireAttempts({ limit: 100 });
      assert.deepEqual(sorted(swept.endedAttempts.map((e) => `${e.attemptId}:${e.reason}`)), sorted([
        `${lost.attemptId}:LEASE_LOST`,
        `${hung.attemptId}:TIMEOUT`,
      ]));
      assert.deepEqual(byJobId(swept.changes), byJobId([change(lostJob.id, 'queued'), change(hungJob.id, 'queued')]));
      assert.equal((await attemptOf(lost)).state, 'lost');
      assert.equal((await attemptOf(hung)).state, 'failed');
    });

    it('charges a lost attempt to the worker, not to the retry budget, and fails a job only after its own bound of lost attempts', async () => {
      const workers = Array.from({ length: LIMITS.jobLostAttemptsMax }, (_, i) => `w${i}`);
      for (const id of workers) await addWorker(id);
      const job = await submitOne({ heartbeatTimeoutMs: 10_000, maxAttempts: 1 });
      let swept = { changes: [] as Change[] };
      for (const id of workers) {
        await ctx.store.heartbeat({ workerId: id }); // seen now: the clock has moved on since it said hello
        await claimOne(id);
        ctx.clock.advance(10_001);
        swept = await ctx.store.expireAttempts({ limit: 100 });
        const w = await ctx.store.getWorker({ id });
        assert.equal(w?.reputation.timedOut, 1, 'the lost attempt is on the worker\'s record');
      }
      assert.deepEqual(swept.changes, [change(job.id, 'failed')]);
      const after = await getJob(job.id);
      assert.deepEqual([after.state, after.failures, after.lost, after.error?.code], ['failed', 0, LIMITS.jobLostAttemptsMax, 'LEASE_LOST']);
      assert.match(after.error?.message ?? '', new RegExp(`was lost by ${LIMITS.jobLostAttemptsMax} silent workers`));
    });

    it('lets a worker that reconnects within its heartbeat timeout keep its attempts', async () => {
      await addWorker('w1');
      const job = await submitOne({ heartbeatTimeoutMs: 10_000 });
      const a = await claimOne('w1');
      ctx.clock.advance(3_000);
      await ctx.store.disconnectWorker({ workerId: 'w1' });
      assert.equal((await ctx.store.getWorker({ id: 'w1' }))?.state, 'offline');
      ctx.clock.advance(5_000); // t0 + 8_000: the leases are kept while disconnected
      assert.deepEqual((await ctx.store.expireAttempts({ limit: 100 })).endedAttempts, []);
      const back = await addWorker('w1');
      assert.deepEqual([back.connected, back.running], [true, { q: 1 }]);
      assert.equal((await attemptOf(a)).state, 'leased');
      assert.deepEqual(await ctx.store.heartbeat({ workerId: 'w1', attempts: [ref(a)] }), { extended: [a.attemptId], revoked: [] });
      assert.equal((await attemptOf(a)).leaseExpiresAt, ctx.t0 + 18_000);
      ctx.clock.advance(7_000); // t0 + 15_000: past the first lease, within the extended one
      assert.deepEqual((await ctx.store.expireAttempts({ limit: 100 })).endedAttempts, []);
      assert.equal((await complete(a, 'kept')).job.result, 'kept');
      assert.equal((await ctx.store.listAttempts({ jobId: job.id })).length, 1, 'nothing was rerun');
    });
  });

  // ---- Deadlines ----

  describe('deadlines', () => {
    it('ends a job not started by its deadline as expired, and fails its dependants', async () => {
      const job = await submitOne({ deadline: ctx.t0 + MINUTE });
      const child = await submitOne({ dependsOn: [job.id] });
      ctx.clock.advance(MINUTE - 1);
      assert.deepEqual(await ctx.store.expireDeadlines({ limit: 100 }), { changes: [], endedAttempts: [] });
      ctx.clock.advance(2); // t0 + MINUTE + 1
      const swept = await ctx.store.expireDeadlines({ limit: 100 });
      assert.deepEqual(byJobId(swept.changes), byJobId([change(job.id, 'expired'), change(child.id, 'failed')]));
      assert.deepEqual(swept.endedAttempts, []);
      const j = await getJob(job.id);
      assert.deepEqual([j.state, j.error?.code, j.finishedAt, j.want], ['expired', 'DEADLINE_EXCEEDED', ctx.t0 + MINUTE + 1, 0]);
      const c = await getJob(child.id);
      assert.deepEqual([c.state, c.error?.code, c.error?.jobId], ['failed', 'DEPENDENCY_FAILED', job.id]);
    });

    it('does not start a job whose deadline has passed, even before the sweeper ran', async () => {
      await addWorker('w1');
      const job = await submitOne({ deadline: ctx.t0 + MINUTE });
      ctx.clock.advance(MINUTE + 1);
      assert.deepEqual(await claim('w1'), []);
      assert.equal((await getJob(job.id)).state, 'queued');
    });

    it('expires a waiting job at its own deadline', async () => {
      const parent = await submitOne({ queue: 'nobody-serves-this' });
      const child = await submitOne({ dependsOn: [parent.id], deadline: ctx.t0 + SECOND });
      ctx.clock.advance(SECOND + 1);
      const swept = await ctx.store.expireDeadlines({ limit: 100 });
      assert.deepEqual(swept.changes, [change(child.id, 'expired')]);
      assert.equal((await getJob(parent.id)).state, 'queued');
    });

    it('leaves a job that started before its deadline running', async () => {
      await addWorker('w1');
      const job = await submitOne({ deadline: ctx.t0 + MINUTE, heartbeatTimeoutMs: 10 * MINUTE });
      const a = await claimOne('w1');
      ctx.clock.advance(2 * MINUTE);
      assert.deepEqual((await ctx.store.expireDeadlines({ limit: 100 })).changes, []);
      assert.equal((await getJob(job.id)).state, 'running');
      assert.equal((await complete(a)).job.state, 'succeeded');
    });
  });
}
