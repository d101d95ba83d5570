// Store conformance, publishing (docs/publishing.md): an accepted attempt's
// output becomes a durable pending publish for its worker; due publishes are
// handed out with a resend delay; a failure is kept with its error and due
// again after its retry delay; a manifest ends it; outputs of rejected and
// losing replicas are discarded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Assignment, PublishManifest } from '../../types/model.ts';
import type { PublishOrder } from '../store.ts';
import type { ContractContext } from './context.ts';

const MANIFEST: PublishManifest = {
  publisher: 'store',
  kind: 's3',
  objects: [{ path: 'proof.bin', url: 'http://s3.test/outputs/proof.bin', bytes: 3, sha256: 'a'.repeat(64) }],
  bytes: 3,
};

export function publishTests(ctx: ContractContext): void {
  const { submitOne, addWorker, claim, claimOne, getJob } = ctx;
  const completeWithOutput = (a: Assignment, result: unknown = { ok: true }) => ctx.store.complete({ ...ctx.ref(a), result: result as never, output: true });
  const due = (workerIds: string[], resendAfterMs = 60_000): Promise<PublishOrder[]> => ctx.store.duePublishes({ workerIds, limit: 10, resendAfterMs });

  describe('publish', () => {
    it('makes an accepted output a pending publish for its worker, and a result without one none', async () => {
      await addWorker('w1');
      const plain = await submitOne();
      const out1 = await ctx.complete(await claimOne('w1'));
      assert.equal(out1.job.publish, null);
      assert.equal(out1.changes[0]!.publish, undefined);
      const job = await submitOne();
      const a = await claimOne('w1');
      ctx.clock.advance(1_000);
      const out = await completeWithOutput(a);
      const order = { jobId: job.id, attemptId: a.attemptId, workerId: 'w1', queue: job.queue };
      assert.deepEqual(out.changes[0]!.publish, order);
      assert.deepEqual(out.job.publish, { state: 'pending', attemptId: a.attemptId, workerId: 'w1', tries: 0, error: null, manifest: null, updatedAt: ctx.t0 + 1_000 });
      assert.deepEqual(await getJob(job.id), out.job);
      assert.equal((await getJob(plain.id)).publish, null);
      // Due at once; then not again until its resend delay has passed.
      assert.deepEqual(await due(['w1', 'w2']), [order]);
      assert.deepEqual(await due(['w1']), []);
      assert.deepEqual(await due(['w2']), [], "only its own worker's");
      assert.deepEqual(await ctx.store.duePublishes({ workerIds: ['w1'], limit: 10, resendAfterMs: 60_000, all: true }), [order], 'all: due or not (a worker that just attached)');
      ctx.clock.advance(60_000);
      assert.deepEqual(await due(['w1']), [order]);
    });

    it('keeps a failed publish with its error, due again after its retry delay, until a manifest ends it', async () => {
      await addWorker('w1');
      await addWorker('w2');
      const job = await submitOne();
      const a = await claimOne('w1');
      await completeWithOutput(a);
      const ref = { jobId: job.id, attemptId: a.attemptId };
      await assert.rejects(ctx.store.recordPublish({ ...ref, workerId: 'w2', manifest: MANIFEST }), { code: 'NOT_ATTEMPT_HOLDER' });
      await assert.rejects(ctx.store.recordPublish({ ...ref, attemptId: 'nope', workerId: 'w1', manifest: MANIFEST }), { code: 'INVALID_STATE' });
      await assert.rejects(ctx.store.recordPublish({ jobId: 'nope', attemptId: a.attemptId, workerId: 'w1', manifest: MANIFEST }), { code: 'JOB_NOT_FOUND' });
      await due(['w1']);
      ctx.clock.advance(500);
      const failed = await ctx.store.recordPublish({ ...ref, workerId: 'w1', error: { code: 'PUBLISH_FAILED', message: 'the store is down' }, retryDelayMs: 5_000 });
      assert.equal(failed.state, 'succeeded', 'the accepted result stays');
      assert.deepEqual(failed.result, { ok: true });
      assert.deepEqual(
        [failed.publish?.state, failed.publish?.tries, failed.publish?.error, failed.publish?.updatedAt],
        ['failed', 1, { code: 'PUBLISH_FAILED', message: 'the store is down', attemptId: a.attemptId }, ctx.t0 + 500],
      );
      ctx.clock.advance(4_999);
      assert.deepEqual(await due(['w1']), []);
      ctx.clock.advance(1);
      assert.equal((await due(['w1'])).length, 1, 'due again once its retry delay passed');
      const done = await ctx.store.recordPublish({ ...ref, workerId: 'w1', manifest: MANIFEST });
      assert.deepEqual([done.publish?.state, done.publish?.tries, done.publish?.error, done.publish?.manifest], ['published', 1, null, MANIFEST]);
      ctx.clock.advance(3_600_000);
      assert.deepEqual(await due(['w1']), [], 'a published output is never due');
      // A repeated answer (its record lost on the way) changes nothing, nor does a late failure.
      assert.deepEqual(await ctx.store.recordPublish({ ...ref, workerId: 'w1', manifest: MANIFEST }), done);
      assert.deepEqual(await ctx.store.recordPublish({ ...ref, workerId: 'w1', error: { code: 'OUTPUT_MISSING', message: 'gone' } }), done);
      assert.deepEqual(await getJob(job.id), done);
    });

    it("publishes the winning replica's output and discards the others, the rejected one's included", async () => {
      for (const w of ['w1', 'w2', 'w3']) await addWorker(w);
      const job = await submitOne({ replicas: 3, quorum: 2, margin: 1 });
      const [a, b, c] = (await claim(['w1', 'w2', 'w3'])) as [Assignment, Assignment, Assignment];
      await completeWithOutput(a, 'honest');
      await completeWithOutput(b, 'liar');
      const out = await completeWithOutput(c, 'honest');
      assert.equal(out.job.state, 'succeeded');
      assert.equal((await ctx.attemptOf(b)).state, 'rejected');
      const ch = out.changes.find((x) => x.jobId === job.id)!;
      assert.deepEqual(ch.publish, { jobId: job.id, attemptId: a.attemptId, workerId: a.workerId, queue: job.queue });
      const discarded = (ch.discards ?? []).map((d) => d.attemptId).sort();
      assert.deepEqual(discarded, [b.attemptId, c.attemptId].sort());
      assert.equal(out.job.publish?.workerId, a.workerId);
    });

    it('discards every output of a vote that ends without a quorum', async () => {
      for (const w of ['w1', 'w2']) await addWorker(w);
      const job = await submitOne({ replicas: 2, quorum: 2, margin: 1 });
      const [a, b] = (await claim(['w1', 'w2'])) as [Assignment, Assignment];
      await completeWithOutput(a, 'one');
      const out = await completeWithOutput(b, 'other');
      // No other worker could add a vote: the job fails.
      assert.equal(out.job.state, 'failed');
      const ch = out.changes.find((x) => x.jobId === job.id);
      assert.deepEqual((ch?.discards ?? []).map((d) => d.attemptId).sort(), [a.attemptId, b.attemptId].sort());
      assert.equal(out.job.publish, null);
    });
  });
}
