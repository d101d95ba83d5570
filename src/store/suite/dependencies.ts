// Store conformance, cancel and dependencies: cancelling stops live attempts
// and cascades to dependants; a child waits for its parents and ends with them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { byJobId, change, type ContractContext, jobIds, SECOND, sorted } from './context.ts';

export function dependencyTests(ctx: ContractContext): void {
  const { submit, submitOne, addWorker, claim, claimOne, getJob, attemptOf, complete, fail } = ctx;

  // ---- Cancel ----

  describe('cancel', () => {
    it('stops live attempts and cascades to waiting dependants', async () => {
      await addWorker('w1');
      await addWorker('w2');
      const parent = await submitOne({ replicas: 2 });
      const child = await submitOne({ dependsOn: [parent.id] });
      const grandchild = await submitOne({ dependsOn: [child.id] });
      const bystander = await submitOne({ queue: 'other' });
      const live = await claim(['w1', 'w2']);
      assert.equal(live.length, 2);
      ctx.clock.advance(1_000);
      const out = await ctx.store.cancel({ jobId: parent.id, reason: 'no longer needed' });
      assert.deepEqual([out.job.state, out.job.error, out.job.live, out.job.want, out.job.finishedAt], [
        'cancelled',
        { code: 'CANCELLED', message: 'no longer needed' },
        0,
        0,
        ctx.t0 + 1_000,
      ]);
      const stopped = out.changes.find((c) => c.jobId === parent.id)?.cancelledAttempts ?? [];
      assert.deepEqual(
        sorted(stopped.map((x) => `${x.attemptId}@${x.workerId}`)),
        sorted(live.map((a) => `${a.attemptId}@${a.workerId}`)),
      );
      assert.deepEqual(byJobId(out.changes.map((c) => ({ ...c, cancelledAttempts: [] }))), byJobId([
        change(parent.id, 'cancelled'),
        change(child.id, 'cancelled'),
        change(grandchild.id, 'cancelled'),
      ]));
      for (const a of live) {
        const at = await attemptOf(a);
        assert.deepEqual([at.state, at.finishedAt], ['cancelled', ctx.t0 + 1_000]);
      }
      const c = await getJob(child.id);
      assert.deepEqual([c.state, c.error?.code, c.error?.jobId], ['cancelled', 'DEPENDENCY_CANCELLED', parent.id]);
      const g = await getJob(grandchild.id);
      assert.deepEqual([g.state, g.error?.code, g.error?.jobId], ['cancelled', 'DEPENDENCY_CANCELLED', child.id]);
      assert.equal((await getJob(bystander.id)).state, 'queued');
      assert.deepEqual((await ctx.store.listWorkers()).map((w) => [w.id, w.state]).sort(), [['w1', 'idle'], ['w2', 'idle']]);
    });

    it('cancels a queued job, and a second cancel changes nothing', async () => {
      const job = await submitOne();
      const out = await ctx.store.cancel({ jobId: job.id });
      assert.deepEqual(out.changes, [change(job.id, 'cancelled')]);
      assert.equal(out.job.error?.code, 'CANCELLED');
      const again = await ctx.store.cancel({ jobId: job.id });
      assert.deepEqual(again, { job: out.job, changes: [] });
    });

    it('refuses to cancel a finished job with INVALID_STATE', async () => {
      await addWorker('w1');
      const [done, failed] = await submit({}, { maxAttempts: 1 });
      assert.ok(done && failed);
      const [a, b] = await claim('w1');
      await complete(a!);
      await fail(b!);
      const expired = await submitOne({ deadline: ctx.t0 + SECOND });
      ctx.clock.advance(SECOND + 1);
      await ctx.store.expireDeadlines({ limit: 100 });
      for (const job of [done, failed, expired]) {
        await assert.rejects(ctx.store.cancel({ jobId: job.id }), { code: 'INVALID_STATE' });
      }
      assert.deepEqual([(await getJob(done.id)).state, (await getJob(failed.id)).state, (await getJob(expired.id)).state], [
        'succeeded',
        'failed',
        'expired',
      ]);
      await assert.rejects(ctx.store.cancel({ jobId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }), { code: 'JOB_NOT_FOUND' });
    });
  });

  // ---- Dependencies ----

  describe('dependsOn', () => {
    it('holds a child until every parent succeeded, then queues it', async () => {
      await addWorker('w1');
      const [p1, p2] = await submit({}, {});
      assert.ok(p1 && p2);
      const child = await submitOne({ dependsOn: [p1.id, p2.id] });
      assert.deepEqual([child.state, child.pendingParents, child.want], ['waiting', 2, 0]);
      const [a1, a2] = await claim('w1');
      assert.deepEqual(jobIds([a1!, a2!]), [p1.id, p2.id], 'the waiting child is not leased');
      const first = await complete(a1!);
      assert.deepEqual(first.changes, [change(p1.id, 'succeeded')]);
      assert.deepEqual([(await getJob(child.id)).state, (await getJob(child.id)).pendingParents], ['waiting', 1]);
      assert.deepEqual(await claim('w1'), []);
      ctx.clock.advance(1_000);
      const second = await complete(a2!);
      assert.deepEqual(second.changes, [change(p2.id, 'succeeded'), change(child.id, 'queued')]);
      const c = await getJob(child.id);
      assert.deepEqual([c.state, c.pendingParents, c.want], ['queued', 0, 1]);
      assert.deepEqual(jobIds(await claim('w1')), [child.id]);
    });

    it('queues a child once when its parents succeed in reports that arrive together', async () => {
      await addWorker('w1');
      const [p1, p2, p3] = await submit({}, {}, {});
      assert.ok(p1 && p2 && p3);
      const both = await submitOne({ dependsOn: [p1.id, p2.id] });
      const all = await submitOne({ dependsOn: [p1.id, p2.id, p3.id] });
      const [a1, a2] = await claim('w1', 2);
      const [first, second] = await Promise.all([complete(a1!), complete(a2!)]);
      const changes = byJobId([...first.changes, ...second.changes]);
      assert.deepEqual(changes, byJobId([change(p1.id, 'succeeded'), change(p2.id, 'succeeded'), change(both.id, 'queued')]));
      const [b, a] = [await getJob(both.id), await getJob(all.id)];
      assert.deepEqual([b.state, b.pendingParents, b.want], ['queued', 0, 1]);
      assert.deepEqual([a.state, a.pendingParents, a.want], ['waiting', 1, 0]);
    });

    it('fails children and grandchildren of a failed parent with DEPENDENCY_FAILED naming the parent', async () => {
      await addWorker('w1');
      const parent = await submitOne({ maxAttempts: 1 });
      const other = await submitOne({ queue: 'other' });
      const child = await submitOne({ dependsOn: [parent.id] });
      const grandchild = await submitOne({ dependsOn: [child.id] });
      const both = await submitOne({ dependsOn: [other.id, parent.id] });
      const out = await fail(await claimOne('w1'));
      assert.deepEqual(byJobId(out.changes), byJobId([
        change(parent.id, 'failed'),
        change(child.id, 'failed'),
        change(grandchild.id, 'failed'),
        change(both.id, 'failed'),
      ]));
      for (const [id, parentId] of [[child.id, parent.id], [grandchild.id, child.id], [both.id, parent.id]] as const) {
        const j = await getJob(id);
        assert.deepEqual([j.state, j.error?.code, j.error?.jobId, j.finishedAt], ['failed', 'DEPENDENCY_FAILED', parentId, ctx.t0]);
      }
      assert.equal((await getJob(other.id)).state, 'queued');
    });

    it('creates a job whose parent already failed as failed, and one whose parents succeeded as queued', async () => {
      await addWorker('w1');
      const [bad, good] = await submit({}, {});
      assert.ok(bad && good);
      const [a, b] = await claim('w1');
      await fail(a!, 'gone', false);
      await complete(b!);
      ctx.clock.advance(1_000);
      const orphan = await submitOne({ dependsOn: [good.id, bad.id] });
      assert.deepEqual([orphan.state, orphan.error?.code, orphan.error?.jobId, orphan.finishedAt, orphan.want], [
        'failed',
        'DEPENDENCY_FAILED',
        bad.id,
        ctx.t0 + 1_000,
        0,
      ]);
      const ready = await submitOne({ dependsOn: [good.id] });
      assert.deepEqual([ready.state, ready.pendingParents, ready.want], ['queued', 0, 1]);
    });

    it('creates a job whose parent was already cancelled as cancelled, as the cascade would', async () => {
      await addWorker('w1');
      const parent = await submitOne();
      await ctx.store.cancel({ jobId: parent.id });
      const child = await submitOne({ dependsOn: [parent.id] });
      assert.deepEqual([child.state, child.error?.code, child.error?.jobId, child.finishedAt, child.want], [
        'cancelled',
        'DEPENDENCY_CANCELLED',
        parent.id,
        ctx.t0,
        0,
      ]);
      assert.deepEqual(await claim('w1'), []);
    });
  });
}
