// Store conformance, pipelines: an instance is made whole in one transaction
// and idempotently; children's assignments carry their parents' results (by
// reference past the bound); fan-out and fan-in; the first failure ends the
// rest of the instance with its reason, as the template says.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS } from '../../types/limits.ts';
import type { JobSpec } from '../../types/model.ts';
import { newJob } from '../../types/new-job.ts';
import type { NewPipeline, NewPipelineJob, OnFailure, PhaseTemplate } from '../../types/pipeline.ts';
import { type ContractContext, SECOND } from './context.ts';

type Phase = PhaseTemplate & { count: number; after: string[] };

/** An instance of `phases` as the coordinator would expand it (count jobs per phase, each after every job of its `after`). */
export function pipelineOf(phases: Phase[], over: Partial<NewPipeline> = {}, job: Partial<JobSpec> = {}): NewPipeline {
  const jobs: NewPipelineJob[] = [];
  const at = new Map<string, number[]>();
  for (const ph of phases) {
    const after = ph.after.flatMap((a) => at.get(a)!);
    const mine: number[] = [];
    for (let index = 0; index < ph.count; index++) {
      mine.push(jobs.length);
      const spec = newJob({ queue: ph.queue, payload: { sector: 7 }, maxAttempts: ph.maxAttempts ?? 1, ...job });
      jobs.push({ phase: ph.name, index, spec, after, parentAffinity: ph.affinity === 'parent' ? (ph.affinityMode ?? 'prefer') : null });
    }
    at.set(ph.name, mine);
  }
  const onFailure: OnFailure = over.definition?.onFailure ?? 'fail';
  return { template: 'sealing', definition: { phases, onFailure }, payload: { sector: 7 }, key: null, locality: null, jobs, ...over };
}

const phase = (name: string, after: string[] = [], more: Partial<Phase> = {}): Phase => ({ name, queue: 'q', count: 1, after, ...more });

export function pipelineTests(ctx: ContractContext): void {
  const { addWorker, claim, claimOne, complete, fail, getJob } = ctx;
  const submitPipeline = async (p: NewPipeline) => (await ctx.store.submitPipeline({ pipeline: p })).pipeline;
  const phaseStates = async (id: string) => (await ctx.store.getPipeline({ id }))!.phases.map((ph) => `${ph.name}:${ph.state}`);

  describe('pipelines', () => {
    it('runs a template end to end: fan-out, fan-in, affinity to the parent, parents\' results in the assignment', async () => {
      await addWorker('w1', { keys: ['sector-7'] });
      await addWorker('w2');
      const phases = [phase('ap'), phase('pc1', ['ap'], { affinity: 'parent', affinityMode: 'require' }), phase('pc2', ['pc1'], { count: 3 }), phase('c1', ['pc2'])];
      const p = await submitPipeline(pipelineOf(phases, { locality: 'sector-7' }));
      assert.deepEqual([p.state, p.locality, p.onFailure, p.error, p.finishedAt], ['running', 'sector-7', 'fail', null, null]);
      assert.deepEqual(p.phases.map((ph) => [ph.name, ph.state, ph.jobs.length]), [['ap', 'queued', 1], ['pc1', 'waiting', 1], ['pc2', 'waiting', 3], ['c1', 'waiting', 1]]);
      const apJob = p.phases[0]!.jobs[0]!.id;
      assert.deepEqual((await getJob(apJob)).pipeline, { id: p.id, phase: 'ap', index: 0 });

      const ap = await claimOne(['w1', 'w2']);
      assert.deepEqual([ap.jobId, ap.pipeline, ap.parents], [apJob, { id: p.id, phase: 'ap', index: 0, locality: 'sector-7' }, []]);
      ctx.clock.advance(SECOND);
      await complete(ap, { unsealed: 'ap-out' });
      // PC1 requires the instance's locality key: only w1 holds it.
      assert.deepEqual(await claim('w2'), []);
      const pc1 = await claimOne(['w1', 'w2']);
      assert.equal(pc1.workerId, 'w1');
      assert.deepEqual(pc1.parents, [{ jobId: apJob, phase: 'ap', index: 0, result: { unsealed: 'ap-out' } }]);
      assert.deepEqual((await getJob(pc1.jobId)).affinity, { key: 'sector-7', mode: 'require' });
      await complete(pc1, { layers: 11 });
      assert.deepEqual(await phaseStates(p.id), ['ap:succeeded', 'pc1:succeeded', 'pc2:queued', 'c1:waiting']);

      const pc2 = await claim(['w1', 'w2']);
      assert.deepEqual(pc2.map((a) => a.pipeline?.index).sort(), [0, 1, 2]);
      for (const a of pc2) assert.deepEqual(a.parents, [{ jobId: pc1.jobId, phase: 'pc1', index: 0, result: { layers: 11 } }]);
      await complete(pc2[0]!, { part: pc2[0]!.pipeline!.index });
      await complete(pc2[1]!, { part: pc2[1]!.pipeline!.index });
      // Fan-in: C1 waits for all three.
      assert.deepEqual(await claim(['w1', 'w2']), []);
      assert.deepEqual(await phaseStates(p.id), ['ap:succeeded', 'pc1:succeeded', 'pc2:running', 'c1:waiting']);
      await complete(pc2[2]!, { part: pc2[2]!.pipeline!.index });

      const c1 = await claimOne(['w1', 'w2']);
      const byIndex = [...pc2].sort((a, b) => a.pipeline!.index - b.pipeline!.index);
      assert.deepEqual(
        [...c1.parents!].sort((a, b) => a.index - b.index),
        byIndex.map((a) => ({ jobId: a.jobId, phase: 'pc2', index: a.pipeline!.index, result: { part: a.pipeline!.index } })),
      );
      ctx.clock.advance(SECOND);
      await complete(c1, { commit: 'c1' });
      const done = await ctx.store.getPipeline({ id: p.id });
      assert.deepEqual([done!.state, done!.finishedAt, done!.error], ['succeeded', ctx.t0 + 2 * SECOND, null]);
      assert.ok(done!.phases.every((ph) => ph.state === 'succeeded'));
    });

    it('sends a parent result past parentResultsMaxBytes by reference: its job id and size', async () => {
      await addWorker('w1');
      const p = await submitPipeline(pipelineOf([phase('small'), phase('big'), phase('next', ['small', 'big'])]));
      const [x, y] = await claim('w1');
      const big = 'x'.repeat(LIMITS.parentResultsMaxBytes);
      const bigOne = x!.pipeline!.phase === 'big' ? x! : y!;
      const smallOne = bigOne === x ? y! : x!;
      await complete(bigOne, big);
      await complete(smallOne, { ok: 1 });
      const next = await claimOne('w1');
      const parents = [...next.parents!].sort((a, b) => a.phase.localeCompare(b.phase));
      assert.deepEqual(parents, [
        { jobId: bigOne.jobId, phase: 'big', index: 0, resultBytes: LIMITS.parentResultsMaxBytes + 2, byReference: true },
        { jobId: smallOne.jobId, phase: 'small', index: 0, result: { ok: 1 } },
      ]);
      assert.equal((await getJob(bigOne.jobId)).result, big);
      assert.equal((await ctx.store.getPipeline({ id: p.id }))!.state, 'running');
    });

    for (const onFailure of ['cancel', 'fail'] as const) {
      it(`a job failing for good in the middle ends the rest of its instance (onFailure ${onFailure}) with its reason`, async () => {
        await addWorker('w1');
        const def = { phases: [phase('ap'), phase('pc2', ['ap'], { count: 2 }), phase('c1', ['pc2'])], onFailure };
        const p = await submitPipeline(pipelineOf(def.phases, { definition: def }));
        await complete(await claimOne('w1'));
        const [a, b] = await claim('w1');
        assert.ok(a && b);
        ctx.clock.advance(SECOND);
        const out = await fail(a, 'disk full', false);
        const rest = onFailure === 'cancel' ? 'cancelled' : 'failed';
        const code = onFailure === 'cancel' ? 'PIPELINE_CANCELLED' : 'PIPELINE_FAILED';
        const reason = `phase pc2 job ${a.jobId} ended failed: disk full`;
        // The sibling still running is stopped, and its worker is to be told.
        assert.deepEqual(out.changes.find((c) => c.jobId === b.jobId)?.cancelledAttempts, [{ attemptId: b.attemptId, workerId: 'w1' }]);
        const sibling = await getJob(b.jobId);
        assert.deepEqual([sibling.state, sibling.error], [rest, { code, message: reason, jobId: a.jobId }]);
        const after = await ctx.store.getPipeline({ id: p.id });
        const c1 = await getJob(after!.phases[2]!.jobs[0]!.id);
        assert.deepEqual([c1.state, c1.error?.code, c1.error?.message], [rest, code, reason]);
        assert.deepEqual([after!.state, after!.error, after!.finishedAt], ['failed', { code: 'HANDLER_ERROR', message: reason, jobId: a.jobId }, ctx.t0 + SECOND]);
        assert.deepEqual(after!.phases.map((ph) => ph.state), ['succeeded', 'failed', rest]);
        // The stopped attempt's late result is refused.
        await assert.rejects(complete(b), { code: 'STALE_LEASE' });
      });
    }

    it('a job of an instance cancelled by a client cancels the instance', async () => {
      const p = await submitPipeline(pipelineOf([phase('ap'), phase('pc1', ['ap']), phase('other')]));
      const ap = p.phases[0]!.jobs[0]!.id;
      await ctx.store.cancel({ jobId: ap, reason: 'sector abandoned' });
      const after = await ctx.store.getPipeline({ id: p.id });
      assert.deepEqual([after!.state, after!.error?.code, after!.error?.message], ['cancelled', 'CANCELLED', `phase ap job ${ap} ended cancelled: sector abandoned`]);
      assert.deepEqual(after!.phases.map((ph) => ph.state), ['cancelled', 'cancelled', 'cancelled']);
    });

    it('is idempotent by key: the same key answers the same instance and makes no second set of jobs', async () => {
      const first = await ctx.store.submitPipeline({ pipeline: pipelineOf([phase('ap'), phase('pc1', ['ap'])], { key: 'sector-7' }) });
      assert.equal(first.created, true);
      assert.equal(first.jobs.length, 2);
      const again = await ctx.store.submitPipeline({ pipeline: pipelineOf([phase('ap'), phase('pc1', ['ap'])], { key: 'sector-7' }) });
      assert.deepEqual([again.created, again.pipeline, again.jobs], [false, first.pipeline, []]);
      assert.equal((await ctx.store.listJobs({ limit: 100 })).jobs.length, 2);
      const other = await ctx.store.submitPipeline({ pipeline: pipelineOf([phase('ap')], { key: 'sector-8' }) });
      assert.notEqual(other.pipeline.id, first.pipeline.id);
      assert.equal(first.pipeline.key, 'sector-7');
      // Without a locality key an instance's is its id.
      assert.equal(first.pipeline.locality, first.pipeline.id);
    });

    it('lists instances newest first, by template and state, a page at a time', async () => {
      await addWorker('w1');
      const a = await submitPipeline(pipelineOf([phase('ap')]));
      ctx.clock.advance(1);
      const b = await submitPipeline(pipelineOf([phase('ap')], { template: 'snap' }));
      ctx.clock.advance(1);
      const c = await submitPipeline(pipelineOf([phase('ap')]));
      await complete((await claim('w1')).find((x) => x.pipeline!.id === a.id)!);
      const ids = async (params: Parameters<typeof ctx.store.listPipelines>[0]) => (await ctx.store.listPipelines(params)).pipelines.map((x) => x.id);
      assert.deepEqual(await ids({ limit: 10 }), [c.id, b.id, a.id]);
      assert.deepEqual(await ids({ limit: 10, template: 'sealing' }), [c.id, a.id]);
      assert.deepEqual(await ids({ limit: 10, state: 'succeeded' }), [a.id]);
      assert.deepEqual(await ids({ limit: 10, template: 'sealing', state: 'running' }), [c.id]);
      const page = await ctx.store.listPipelines({ limit: 2 });
      assert.deepEqual(page.pipelines.map((x) => x.id), [c.id, b.id]);
      assert.ok(page.nextCursor);
      assert.deepEqual(await ids({ limit: 2, cursor: page.nextCursor }), [a.id]);
      assert.equal(await ctx.store.getPipeline({ id: 'no-such-instance' }), null);
    });
  });
}
