// Store conformance, submit: what a submitted job holds, batches as one
// transaction, and idempotency keys. See contract.ts for how the suite runs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Job } from '../../types/model.ts';
import { change, type ContractContext, ids, MINUTE, SECOND, sorted } from './context.ts';

export function submitTests(ctx: ContractContext): void {
  const { spec, submitOne, addWorker, claimOne, getJob, complete } = ctx;

  // ---- Submit ----

  describe('submit', () => {
    it('submits one job, keeping every field and filling the store-owned ones', async () => {
      const newJob = spec({
        payload: { n: 1, nested: ['a', { b: null }] },
        priority: 7,
        deadline: ctx.t0 + 10 * MINUTE,
        timeoutMs: 60_000,
        heartbeatTimeoutMs: 5_000,
        maxAttempts: 4,
        backoff: { baseMs: 10, maxMs: 100 },
        requires: { cores: 2, memoryMb: 512, gpus: 1, labels: { arch: 'x86' } },
        affinity: { key: 'sector-1', mode: 'prefer' },
        replicas: 3,
        quorum: 2,
        idempotencyKey: 'submit-one',
        labels: { team: 'a' },
      });
      const [r] = await ctx.store.submit({ jobs: [newJob] });
      assert.ok(r);
      assert.equal(r.created, true);
      const expected: Job = {
        ...newJob,
        id: r.job.id,
        state: 'queued',
        runAt: ctx.t0, // runAt left out: ready now
        attempts: 0,
        failures: 0,
        lost: 0,
        want: 3, // one attempt per replica
        live: 0,
        pendingParents: 0,
        solo: false,
        verifies: null,
        pipeline: null,
        pinnedWorkerId: null,
        filler: false,
        result: null,
        publish: null,
        error: null,
        createdAt: ctx.t0,
        updatedAt: ctx.t0,
        finishedAt: null,
      };
      assert.deepEqual(r.job, expected);
      assert.deepEqual(await ctx.store.getJob({ id: r.job.id }), expected);
      assert.equal(await ctx.store.getJob({ id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }), null);
    });

    it('submits many in one call, in order, each with its own time-sortable id', async () => {
      const out = await ctx.store.submit({ jobs: [spec({ payload: 1 }), spec({ payload: 2 }), spec({ payload: 3 })] });
      assert.deepEqual(out.map((r) => [r.created, r.job.payload, r.job.state]), [
        [true, 1, 'queued'],
        [true, 2, 'queued'],
        [true, 3, 'queued'],
      ]);
      const got = out.map((r) => r.job.id);
      assert.equal(new Set(got).size, 3);
      assert.deepEqual(sorted(got), got, 'ids made in one millisecond still sort in submit order');
      for (const id of got) assert.equal((await getJob(id)).createdAt, ctx.t0);
    });

    it('applies a batch in one transaction: an unknown dependsOn in the 3rd job leaves none of the batch', async () => {
      const existing = await submitOne({ payload: 'existing' });
      ctx.clock.advance(1);
      const batch = [
        spec({ idempotencyKey: 'batch-1' }),
        spec({ idempotencyKey: 'batch-2', dependsOn: [existing.id] }),
        spec({ dependsOn: ['01ARZ3NDEKTSV4RRFFQ69G5FAV'] }),
        spec({ idempotencyKey: 'batch-4' }),
      ];
      await assert.rejects(ctx.store.submit({ jobs: batch }), { name: 'GafferError', code: 'UNKNOWN_DEPENDENCY' });
      assert.deepEqual(ids((await ctx.store.listJobs({ limit: 100 })).jobs), [existing.id]);
      assert.deepEqual(await ctx.store.queueCounts(), [
        { queue: 'q', counts: { waiting: 0, queued: 1, running: 0, verifying: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 }, fillerQueued: 0 },
      ]);
      // The rolled-back jobs left no idempotency key and no dependency edge behind.
      const [again] = await ctx.store.submit({ jobs: [spec({ idempotencyKey: 'batch-1' })] });
      assert.equal(again?.created, true);
      const cancelled = await ctx.store.cancel({ jobId: existing.id });
      assert.deepEqual(cancelled.changes, [change(existing.id, 'cancelled')]);
    });
  });

  describe('idempotency', () => {
    it('returns the existing job for a key seen before, with created=false', async () => {
      const first = await submitOne({ payload: 'first', idempotencyKey: 'k1' });
      ctx.clock.advance(5 * SECOND);
      const [again] = await ctx.store.submit({ jobs: [spec({ payload: 'second', priority: 9, idempotencyKey: 'k1' })] });
      assert.ok(again);
      assert.equal(again.created, false);
      assert.deepEqual(again.job, first);
      assert.equal((await ctx.store.listJobs({ limit: 100 })).jobs.length, 1);
    });

    it('returns the job as it is now, even after it finished', async () => {
      const first = await submitOne({ idempotencyKey: 'k2' });
      await addWorker('w1');
      await complete(await claimOne('w1'), 'done');
      const [again] = await ctx.store.submit({ jobs: [spec({ idempotencyKey: 'k2' })] });
      assert.equal(again?.created, false);
      assert.equal(again?.job.id, first.id);
      assert.equal(again?.job.state, 'succeeded');
      assert.equal(again?.job.result, 'done');
    });

    it('dedupes a key repeated inside one batch', async () => {
      const out = await ctx.store.submit({ jobs: [spec({ idempotencyKey: 'k3' }), spec({ idempotencyKey: 'k3' }), spec()] });
      assert.deepEqual(out.map((r) => r.created), [true, false, true]);
      assert.equal(out[1]?.job.id, out[0]?.job.id);
      assert.equal((await ctx.store.listJobs({ limit: 100 })).jobs.length, 2);
    });
  });
}
