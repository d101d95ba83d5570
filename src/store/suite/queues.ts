// Store conformance, queues at run time: pause and resume (a paused queue's
// jobs are not claimed, running attempts finish), and the stored history
// (additive minute rows, hour reads, the roll-up and the drop).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emptyPoint, HOUR_MS, MINUTE_MS, observe, stepStart, type HistoryPoint } from '../../types/history.ts';
import type { Json } from '../../types/model.ts';
import { newJob } from '../../types/new-job.ts';
import { resultHash } from '../rules.ts';
import type { ContractContext } from './context.ts';

function point(queue: string, at: number, submitted: number, waitMs: number[] = [], runMs: number[] = []): HistoryPoint {
  const p = emptyPoint(queue, at);
  p.counts.submitted = submitted;
  for (const t of waitMs) observe(p.wait, t);
  for (const t of runMs) observe(p.run, t);
  return p;
}

export function queueTests(ctx: ContractContext): void {
  const { submitOne, addWorker, claim, claimOne, complete, ref } = ctx;

  describe('setQueuePaused', () => {
    it('keeps a paused queue from being claimed, lets its running attempts finish, and resume makes it claimable', async () => {
      await addWorker('w1');
      const running = await submitOne();
      const a = await claimOne('w1');
      const waiting = await submitOne();
      const paused = await ctx.store.setQueuePaused({ queue: 'q', paused: true, reason: 'maintenance' });
      assert.deepEqual(paused, { queue: 'q', paused: true, pausedAt: ctx.t0, reason: 'maintenance' });
      assert.deepEqual(await claim('w1'), [], 'nothing of a paused queue is claimed');
      assert.equal((await complete(a)).job.state, 'succeeded', 'a running attempt finishes');
      assert.equal(running.id, a.jobId);
      ctx.clock.advance(1000);
      assert.deepEqual(await ctx.store.setQueuePaused({ queue: 'q', paused: true }), paused, 'pausing again keeps when and why');
      const resumed = await ctx.store.setQueuePaused({ queue: 'q', paused: false });
      assert.deepEqual(resumed, { queue: 'q', paused: false, pausedAt: null, reason: null });
      assert.equal((await claimOne('w1')).jobId, waiting.id);
    });

    it('leaves the other queues of a worker claimable', async () => {
      await addWorker('w1', { queues: { q: 2, r: 2 } });
      await submitOne({ queue: 'q' });
      const other = await submitOne({ queue: 'r' });
      await ctx.store.setQueuePaused({ queue: 'q', paused: true });
      const got = await claim('w1');
      assert.deepEqual(got.map((x) => x.jobId), [other.id]);
    });

    it('lists the queues ever paused or resumed, by name', async () => {
      assert.deepEqual(await ctx.store.listQueueStates(), []);
      await ctx.store.setQueuePaused({ queue: 'zeta', paused: true });
      await ctx.store.setQueuePaused({ queue: 'alpha', paused: false });
      assert.deepEqual(await ctx.store.listQueueStates(), [
        { queue: 'alpha', paused: false, pausedAt: null, reason: null },
        { queue: 'zeta', paused: true, pausedAt: ctx.t0, reason: null },
      ]);
    });

    it('refuses an empty queue name (INVALID_INPUT)', async () => {
      await assert.rejects(ctx.store.setQueuePaused({ queue: '', paused: true }), { code: 'INVALID_INPUT' });
    });
  });

  describe('claim readyAt', () => {
    it('tells the coordinator when the leased job became ready', async () => {
      await addWorker('w1');
      const job = await submitOne({ runAt: ctx.t0 + 5000 });
      ctx.clock.advance(7000);
      const a = await claimOne('w1');
      assert.equal(a.readyAt, ctx.t0 + 5000);
      assert.equal(job.runAt, ctx.t0 + 5000);
    });
  });

  describe('history', () => {
    const base = Math.floor(Date.UTC(2026, 0, 1) / HOUR_MS) * HOUR_MS;

    it('adds points into one row per queue and minute, as several coordinators would', async () => {
      await ctx.store.addHistory({ points: [point('q', base + 5, 2, [5, 50]), point('r', base, 1)] });
      await ctx.store.addHistory({ points: [point('q', base + 59_999, 3, [5_000], [2_000_000])] });
      const got = await ctx.store.readHistory({ queue: 'q', fromMs: base, toMs: base + HOUR_MS, step: 'minute', maxPoints: 100 });
      const want = point('q', base, 5, [5, 50, 5_000], [2_000_000]);
      assert.deepEqual(got, [want]);
      assert.deepEqual(want.wait.buckets, [1, 1, 0, 1, 0, 0, 0, 0]);
      assert.deepEqual(want.run.buckets, [0, 0, 0, 0, 0, 0, 1, 0]);
    });

    it('reads hours as the sum of their minutes and hour rows, within the bounds asked', async () => {
      await ctx.store.addHistory({ points: [point('q', base, 1), point('q', base + MINUTE_MS, 2), point('q', base + HOUR_MS, 4), point('q', base + 2 * HOUR_MS, 8)] });
      const hours = await ctx.store.readHistory({ queue: 'q', fromMs: base + 1, toMs: base + 2 * HOUR_MS, step: 'hour', maxPoints: 100 });
      assert.deepEqual(hours.map((p) => [p.at, p.counts.submitted]), [[base, 3], [base + HOUR_MS, 4]]);
      const capped = await ctx.store.readHistory({ queue: 'q', fromMs: base, toMs: base + HOUR_MS, step: 'minute', maxPoints: 1 });
      assert.deepEqual(capped.map((p) => p.at), [base + MINUTE_MS], 'cut at the bound, the newest are kept');
      await ctx.store.addHistory({ points: [point('r', base, 16)] });
      const all = await ctx.store.readHistory({ fromMs: base, toMs: base + HOUR_MS, step: 'hour', maxPoints: 100 });
      assert.deepEqual(all.map((p) => [p.queue, p.at, p.counts.submitted]), [['q', base, 3], ['r', base, 16]], 'every queue, by time then queue');
    });

    it('rolls old minutes up into hours once, and drops old hours', async () => {
      await ctx.store.addHistory({ points: [point('q', base, 1, [1]), point('q', base + 30 * MINUTE_MS, 2, [20]), point('q', base + HOUR_MS, 4)] });
      // Minutes of hours that ended before base + HOUR_MS + 1 minute: only the first hour's.
      const params = { minutesBeforeMs: base + HOUR_MS + MINUTE_MS, hoursBeforeMs: 0, limit: 100 };
      assert.deepEqual(await ctx.store.rollUpHistory(params), { rolledUpMinutes: 2, droppedHours: 0 });
      assert.deepEqual(await ctx.store.rollUpHistory(params), { rolledUpMinutes: 0, droppedHours: 0 }, 'idempotent');
      const minutes = await ctx.store.readHistory({ queue: 'q', fromMs: base, toMs: base + 2 * HOUR_MS, step: 'minute', maxPoints: 100 });
      assert.deepEqual(minutes.map((p) => [p.at, p.counts.submitted]), [[base + HOUR_MS, 4]], 'the rolled minutes are gone');
      const hours = await ctx.store.readHistory({ queue: 'q', fromMs: base, toMs: base + 2 * HOUR_MS, step: 'hour', maxPoints: 100 });
      assert.deepEqual(hours, [point('q', base, 3, [1, 20]), point('q', base + HOUR_MS, 4)]);
      assert.deepEqual(await ctx.store.rollUpHistory({ minutesBeforeMs: 0, hoursBeforeMs: base + 1, limit: 100 }), { rolledUpMinutes: 0, droppedHours: 1 });
      const left = await ctx.store.readHistory({ queue: 'q', fromMs: base, toMs: base + 2 * HOUR_MS, step: 'hour', maxPoints: 100 });
      assert.deepEqual(left.map((p) => p.at), [base + HOUR_MS]);
    });

    it('resolves job and attempt ids to their queues', async () => {
      await addWorker('w1', { queues: { q: 1, r: 1 } });
      const a = await submitOne({ queue: 'q' });
      const b = await submitOne({ queue: 'r' });
      const leased = await claimOne('w1');
      const got = await ctx.store.queuesOf({ ids: [a.id, b.id, leased.attemptId, 'nope'] });
      const want = [{ id: a.id, queue: 'q' }, { id: b.id, queue: 'r' }, { id: leased.attemptId, queue: leased.queue }];
      const order = (xs: { id: string }[]) => [...xs].sort((x, y) => (x.id < y.id ? -1 : 1));
      assert.deepEqual(order(got), order(want));
    });
  });

  describe('trust history', () => {
    const verificationJob = (queue: string, payload: Json, priority: number) => newJob({ queue, payload, priority });

    /** Lets time pass in steps short enough for the workers' heartbeats to keep their leases. */
    async function pass(ms: number): Promise<void> {
      for (let left = ms; left > 0; left -= 10_000) {
        ctx.clock.advance(Math.min(left, 10_000));
        for (const workerId of ['liar', 'checker', 'wrong']) await ctx.store.heartbeat({ workerId });
      }
    }

    it('counts rejected results by the step their attempt finished in, and failed checks by the step they were judged in', async () => {
      await addWorker('liar');
      await addWorker('checker', { queues: { verify: 1 } });
      await addWorker('wrong', { queues: { r: 1 } });
      const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
      const a = await claimOne('liar');
      await pass(MINUTE_MS);
      const finishedAt = ctx.clock.now();
      const out = await ctx.store.complete({ ...ref(a), result: 'wrong', verificationJob });
      const v = await claimOne('checker');
      assert.ok(out.changes.some((c) => c.jobId === v.jobId));
      await pass(MINUTE_MS);
      await ctx.store.complete({ ...ref(v), result: { valid: false, reason: 'does not verify' }, verificationJob });
      assert.equal((await ctx.store.listAttempts({ jobId: job.id }))[0]?.state, 'rejected');
      const check = await ctx.store.startCheck({
        workerId: 'wrong',
        queue: 'r',
        job: newJob({ queue: 'r', payload: { challenge: 1 }, maxAttempts: 1 }),
        answerHash: resultHash(42),
        timeLimitMs: 60_000,
      });
      const c = await claimOne('wrong');
      assert.equal(c.jobId, check.check.jobId);
      await pass(2 * MINUTE_MS);
      const judgedAt = ctx.clock.now();
      await complete(c, 41);
      const range = { fromMs: ctx.t0, toMs: ctx.clock.now() + 1, maxPoints: 100 };
      const minutes = await ctx.store.readTrustHistory({ ...range, step: 'minute' });
      assert.deepEqual(minutes, [
        { queue: 'q', at: stepStart(finishedAt, MINUTE_MS), invalid: 1, failedChecks: 0 },
        { queue: 'r', at: stepStart(judgedAt, MINUTE_MS), invalid: 0, failedChecks: 1 },
      ]);
      assert.deepEqual(await ctx.store.readTrustHistory({ ...range, step: 'minute', queue: 'r' }), [minutes[1]]);
      assert.deepEqual(await ctx.store.readTrustHistory({ ...range, step: 'minute', maxPoints: 1 }), [minutes[1]], 'the newest are kept');
      const hours = await ctx.store.readTrustHistory({ ...range, step: 'hour' });
      assert.equal(hours.reduce((n, p) => n + p.invalid + p.failedChecks, 0), 2);
      assert.deepEqual(await ctx.store.readTrustHistory({ fromMs: judgedAt + MINUTE_MS, toMs: judgedAt + HOUR_MS, step: 'minute', maxPoints: 100 }), []);
    });
  });
}
