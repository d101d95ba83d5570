// Store conformance, speculative backups (engine/speculate.ts): a slow or
// late attempt gets one backup on another worker, the first result wins and
// the other attempt is revoked, fencing holds, the share bound holds, and a
// queue with speculation off gets none. Virtual time throughout.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isGafferError } from '../../types/errors.ts';
import type { Assignment, Job } from '../../types/model.ts';
import type { SpeculateParams } from '../store.ts';
import { type ContractContext, SECOND } from './context.ts';

const ON = { enabled: true, quantile: 0.75, multiplier: 1.5 };

export function speculationTests(ctx: ContractContext): void {
  const { submit, submitOne, addWorker, claim, claimOne, getJob, attemptOf, complete } = ctx;
  const speculate = (over: Partial<SpeculateParams> = {}) => ctx.store.speculate({ settings: () => ON, ...over });

  /** Four runs of 10 s on queue q, completed: the queue's median is 10 s. */
  async function measured(workers: string[]): Promise<void> {
    await submit({}, {}, {}, {});
    const runs = await claim(workers, 4);
    assert.equal(runs.length, 4);
    ctx.clock.advance(10 * SECOND);
    for (const a of runs) await complete(a);
  }

  /** Workers w1 and w2, the queue measured on w1, and a job whose attempt runs on w1 from now. */
  async function slowOnW1(): Promise<{ job: Job; slow: Assignment }> {
    await addWorker('w1');
    await addWorker('w2');
    await measured(['w1']);
    const job = await submitOne();
    return { job, slow: await claimOne('w1') };
  }

  async function refusedStale(a: Assignment): Promise<void> {
    await assert.rejects(complete(a, { late: true }), (err) => isGafferError(err, 'STALE_LEASE'));
  }

  describe('speculative backups', () => {
    it('gives a slow attempt exactly one backup on another worker; the backup wins, the slow one is revoked and refused', async () => {
      const { job, slow } = await slowOnW1();
      ctx.clock.advance(14 * SECOND);
      assert.deepEqual((await speculate()).backups, [], 'not past 1.5 x the 10 s median yet');
      ctx.clock.advance(2 * SECOND);
      assert.deepEqual((await speculate()).backups, [{ jobId: job.id, attemptId: slow.attemptId, reason: 'slow' }]);
      assert.deepEqual((await speculate()).backups, [], 'one backup, asked once');
      assert.deepEqual([(await getJob(job.id)).want, (await getJob(job.id)).live], [1, 1]);
      const backup = await claimOne(['w1', 'w2']);
      assert.deepEqual([backup.jobId, backup.workerId, backup.attempt], [job.id, 'w2', 2]);
      const b = await attemptOf(backup);
      assert.deepEqual([b.backupOf, b.backupReason], [slow.attemptId, 'slow']);
      assert.deepEqual((await speculate()).backups, [], 'never a backup of a backup, nor a second one');
      const won = await complete(backup, { by: 'backup' });
      assert.deepEqual([won.job.state, won.job.result], ['succeeded', { by: 'backup' }]);
      assert.deepEqual(won.changes.find((c) => c.jobId === job.id)?.cancelledAttempts, [{ attemptId: slow.attemptId, workerId: 'w1' }], 'its worker is told');
      await refusedStale(slow);
      assert.equal((await attemptOf(slow)).state, 'cancelled');
      const after = await getJob(job.id);
      assert.deepEqual([after.state, after.result, after.failures, after.lost], ['succeeded', { by: 'backup' }, 0, 0]);
      // The revoked attempt was not lost work: nothing is charged to its worker.
      assert.equal((await ctx.store.getWorker({ id: 'w1' }))?.reputation.timedOut, 0);
    });

    it('accepts the slow attempt when it finishes first, and refuses the revoked backup', async () => {
      const { job, slow } = await slowOnW1();
      ctx.clock.advance(16 * SECOND);
      assert.equal((await speculate()).backups.length, 1);
      const backup = await claimOne(['w1', 'w2']);
      const won = await complete(slow, { by: 'slow' });
      assert.deepEqual([won.job.state, won.job.result], ['succeeded', { by: 'slow' }]);
      assert.deepEqual(won.changes.find((c) => c.jobId === job.id)?.cancelledAttempts, [{ attemptId: backup.attemptId, workerId: 'w2' }]);
      await refusedStale(backup);
      const states = (await ctx.store.listAttempts({ jobId: job.id })).map((a) => a.state);
      assert.deepEqual(states, ['completed', 'cancelled']);
    });

    it('keeps the job running on the other attempt when one of a pair fails, and drops a backup not yet placed when its attempt ends', async () => {
      const { job, slow } = await slowOnW1();
      ctx.clock.advance(16 * SECOND);
      await speculate();
      const backup = await claimOne(['w1', 'w2']);
      const failed = await ctx.fail(backup, 'the backup broke');
      assert.deepEqual([failed.job.state, failed.job.want, failed.job.live, failed.job.failures], ['running', 0, 1, 1]);
      assert.equal((await complete(slow)).job.state, 'succeeded');

      const other = await submitOne();
      const second = await claimOne('w1');
      ctx.clock.advance(16 * SECOND);
      assert.deepEqual((await speculate()).backups.map((x) => x.jobId), [other.id]);
      // The slow attempt fails before its backup is placed: the backup asked for is its retry, not an extra attempt.
      const out = await ctx.fail(second);
      assert.deepEqual([out.job.state, out.job.want, out.job.live], ['queued', 1, 0]);
      ctx.clock.advance(10 * 60 * SECOND); // past its retry's backoff
      for (const w of ['w1', 'w2']) await ctx.store.heartbeat({ workerId: w });
      assert.equal((await attemptOf((await claimOne(['w1', 'w2'])))).backupOf, null);
    });

    it('backs up an attempt whose progress says it will miss its deadline, even past the start-by deadline', async () => {
      await addWorker('w1');
      await addWorker('w2');
      await measured(['w1']);
      const job = await submitOne({ deadline: ctx.clock.now() + 5 * SECOND });
      const late = await claimOne('w1');
      ctx.clock.advance(4 * SECOND);
      await ctx.store.progress({ attemptId: late.attemptId, lease: late.lease, progress: { fraction: 0.1 } });
      // 4 s for a tenth: about 40 s in all, past the due time (the deadline plus the 10 s median); a backup now ends by it.
      assert.deepEqual((await speculate()).backups, [{ jobId: job.id, attemptId: late.attemptId, reason: 'deadline' }]);
      ctx.clock.advance(2 * SECOND);
      const backup = await claimOne(['w1', 'w2']);
      assert.deepEqual([backup.jobId, backup.workerId], [job.id, 'w2']);
      assert.equal((await attemptOf(backup)).backupReason, 'deadline');
    });

    it('keeps the live backups within their share of the live attempts', async () => {
      const workers = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
      for (const w of workers) await addWorker(w);
      await measured(workers);
      await submit(...Array.from({ length: 20 }, () => ({})));
      assert.equal((await claim(workers, 20)).length, 20);
      ctx.clock.advance(20 * SECOND);
      const params = { settings: () => ({ ...ON, quantile: 0 }), shareMax: 0.1, backupsMin: 1 };
      assert.equal((await speculate(params)).backups.length, 2, '10 % of 20 live attempts');
      assert.equal((await claim(workers, 10)).length, 2);
      ctx.clock.advance(SECOND);
      assert.deepEqual((await speculate(params)).backups, [], '2 backups of 22 live attempts: the share is spent');
      const live = (await Promise.all(workers.map((w) => ctx.store.listLiveAttempts({ workerId: w })))).flat();
      const backups = live.filter((a) => a.backupOf !== null).length;
      assert.ok(backups <= Math.max(1, Math.floor(0.1 * live.length)), `${backups} backups of ${live.length} live attempts`);
    });

    it('gives no backup in a queue whose speculation is off, nor before the quantile of its recent jobs finished', async () => {
      await slowOnW1();
      ctx.clock.advance(60 * SECOND);
      assert.deepEqual((await speculate({ settings: (q) => ({ ...ON, enabled: q !== 'q' }) })).backups, []);
      await submit({}, {}, {}, {});
      // 4 of the queue's 9 recent jobs finished, fewer than 0.75 of them.
      assert.deepEqual((await speculate()).backups, []);
      assert.equal((await speculate({ settings: () => ({ ...ON, quantile: 0.4 }) })).backups.length, 1);
    });

    it('backs up one replica of a replicated job: the pair counts once in the vote', async () => {
      for (const w of ['w1', 'w2', 'w3']) await addWorker(w);
      await measured(['w1', 'w2']);
      const job = await submitOne({ replicas: 2, quorum: 2, distinct: 'worker' });
      const [x, y] = await claim(['w1', 'w2']);
      assert.ok(x && y);
      await complete(y, { v: 1 });
      ctx.clock.advance(16 * SECOND);
      assert.deepEqual((await speculate()).backups.map((b) => b.attemptId), [x.attemptId]);
      const backup = await claimOne(['w1', 'w2', 'w3']);
      assert.equal(backup.workerId, 'w3');
      const won = await complete(backup, { v: 1 });
      assert.deepEqual([won.job.state, won.job.result], ['succeeded', { v: 1 }]);
      await refusedStale(x);
      const states = (await ctx.store.listAttempts({ jobId: job.id })).map((a) => a.state).sort();
      assert.deepEqual(states, ['cancelled', 'completed', 'completed']);
    });
  });
}
