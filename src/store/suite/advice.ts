// Store conformance, the advisor's reads: jobs submitted per queue since a
// time, and the edges between queues that dependencies make.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ContractContext, MINUTE } from './context.ts';

export function adviceTests(ctx: ContractContext): void {
  const { submit, submitOne } = ctx;

  // At t0: a1, a2, a3. At t0 + 1 min: b1 <- a1; b2 <- a1, a2; c1 <- b1, a3. At t0 + 2 min: a4, a5.
  async function pipeline(): Promise<void> {
    const [a1, a2, a3] = await submit({ queue: 'a' }, { queue: 'a' }, { queue: 'a' });
    ctx.clock.advance(MINUTE);
    const b1 = await submitOne({ queue: 'b', dependsOn: [a1!.id] });
    await submitOne({ queue: 'b', dependsOn: [a1!.id, a2!.id] });
    await submitOne({ queue: 'c', dependsOn: [b1.id, a3!.id] });
    ctx.clock.advance(MINUTE);
    await submit({ queue: 'a' }, { queue: 'a' });
  }

  describe('queueArrivals', () => {
    it('counts the jobs created per queue at or after a time', async () => {
      await pipeline();
      const arrivals = async (sinceMs: number) => (await ctx.store.queueArrivals({ queues: ['a', 'b', 'c', 'z'], sinceMs, sampleMaxRows: 100 })).map((r) => [r.queue, r.submitted, r.sampledSinceMs]);
      const t1 = ctx.t0 + MINUTE;
      assert.deepEqual(await arrivals(ctx.t0), [['a', 5, ctx.t0], ['b', 2, ctx.t0], ['c', 1, ctx.t0], ['z', 0, ctx.t0]]);
      // Inclusive at t0 + 1 min, and the jobs made then are left out 1 ms later.
      assert.deepEqual(await arrivals(t1), [['a', 2, t1], ['b', 2, t1], ['c', 1, t1], ['z', 0, t1]]);
      assert.deepEqual(await arrivals(t1 + 1), [['a', 2, t1 + 1], ['b', 0, t1 + 1], ['c', 0, t1 + 1], ['z', 0, t1 + 1]]);
    });

    it('counts only the newest jobs when the sample bound cuts, and says from when', async () => {
      await pipeline();
      // The newest 2 of a are a4 and a5, made at t0 + 2 min.
      assert.deepEqual(await ctx.store.queueArrivals({ queues: ['a'], sinceMs: ctx.t0, sampleMaxRows: 2 }), [
        { queue: 'a', submitted: 2, sampledSinceMs: ctx.t0 + 2 * MINUTE },
      ]);
    });
  });

  describe('queueEdges', () => {
    it('counts dependency rows, parents and dependants per pair of queues, with the parents queue sampled', async () => {
      await pipeline();
      const all = await ctx.store.queueEdges({ sinceMs: ctx.t0, sampleMaxJobs: 100, maxRows: 100 });
      // a -> b: a1->b1, a1->b2, a2->b2 (3 rows, parents a1 a2, dependants b1 b2); 5 a jobs sampled.
      // a -> c: a3->c1. b -> c: b1->c1, of 2 b jobs.
      assert.deepEqual(all, {
        edges: [
          { from: 'a', to: 'b', deps: 3, parents: 2, children: 2, fromJobs: 5 },
          { from: 'a', to: 'c', deps: 1, parents: 1, children: 1, fromJobs: 5 },
          { from: 'b', to: 'c', deps: 1, parents: 1, children: 1, fromJobs: 2 },
        ],
        sampledSinceMs: ctx.t0,
        truncated: false,
      });
      // From t0 + 1 min the a jobs with dependants are out of the sample: only b -> c is left.
      assert.deepEqual((await ctx.store.queueEdges({ sinceMs: ctx.t0 + MINUTE, sampleMaxJobs: 100, maxRows: 100 })).edges, [
        { from: 'b', to: 'c', deps: 1, parents: 1, children: 1, fromJobs: 2 },
      ]);
    });

    it('samples the newest jobs and cuts the dependency rows at their bound', async () => {
      await pipeline();
      // The newest 3 jobs: a5, a4 (t0 + 2 min) and c1 (t0 + 1 min); none of them has dependants.
      assert.deepEqual(await ctx.store.queueEdges({ sinceMs: ctx.t0, sampleMaxJobs: 3, maxRows: 100 }), {
        edges: [],
        sampledSinceMs: ctx.t0 + MINUTE,
        truncated: false,
      });
      const cut = await ctx.store.queueEdges({ sinceMs: ctx.t0, sampleMaxJobs: 100, maxRows: 1 });
      assert.equal(cut.truncated, true);
      assert.equal(cut.edges.reduce((n, e) => n + e.deps, 0), 1);
    });
  });
}
