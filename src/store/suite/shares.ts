// Store conformance, shares: a claim made with a share of the ready jobs reads
// its own share first, beside it the other shares' jobs of a higher priority,
// and the other shares only once its own has nothing left for its workers;
// and the coordinators' membership rows it is computed from.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ClaimReport } from '../store.ts';
import { shareOf } from '../../types/shares.ts';
import { type ContractContext, SECOND } from './context.ts';
import { place } from '../../scheduler/index.ts';

export function shareTests(ctx: ContractContext): void {
  const { submit, addWorker } = ctx;

  async function claimWithShare(workerId: string, share: readonly string[] | null, maxJobs: number): Promise<{ jobIds: string[]; report: ClaimReport }> {
    const report: ClaimReport = { unplaced: 0, unplacedCandidates: [], unusable: [], outsideShare: 0 };
    const out = await ctx.store.claim({ workerIds: [workerId], place, maxJobs, share, report });
    return { jobIds: out.map((a) => a.jobId), report };
  }

  describe('claim shares', () => {
    it('claims its own share first, and the others only once its own is empty', async () => {
      await addWorker('w1', { queues: { q: 40 } });
      const jobs = await submit(...Array.from({ length: 40 }, () => ({})));
      const byShare = new Map<string, string[]>();
      for (const j of jobs) byShare.set(shareOf(j.id), [...(byShare.get(shareOf(j.id)) ?? []), j.id]);
      assert.ok(byShare.size >= 2, 'the jobs fall into several shares');
      // The newest job's share: without the share, a claim would take the oldest jobs first.
      const shares = [...byShare.keys()];
      const mine = shares.at(-1);
      const others = shares.slice(0, -1);
      const own = byShare.get(mine!)!;
      const first = await claimWithShare('w1', [mine!], own.length);
      assert.deepEqual(first.jobIds.sort(), [...own].sort(), 'its own share, and nothing else, while it lasts');
      assert.equal(first.report.outsideShare, 0);
      const rest = await claimWithShare('w1', [mine!], 40);
      assert.equal(rest.jobIds.length, 40 - own.length, 'then every other share');
      assert.equal(rest.report.outsideShare, 40 - own.length);
      assert.ok(others.length > 0);
    });

    it('takes a job of another share first when its priority is above everything in its own', async () => {
      await addWorker('w1', { queues: { q: 1 } });
      const [low] = await submit({ priority: 0 });
      let urgent = (await submit({ priority: 5 }))[0]!;
      // A job of another share than the low one's (ids differ in their last characters).
      while (shareOf(urgent.id) === shareOf(low!.id)) urgent = (await submit({ priority: 5 }))[0]!;
      ctx.clock.advance(SECOND);
      const got = await claimWithShare('w1', [shareOf(low!.id)], 1);
      assert.deepEqual(got.jobIds, [urgent.id]);
      assert.equal(got.report.outsideShare, 1);
    });

    it('reports the candidates its workers could not take', async () => {
      await addWorker('w1', { queues: { q: 1 }, labels: {} });
      await submit({ requires: { labels: { gpu: 'a100' } } }, {});
      const got = await claimWithShare('w1', null, 5);
      assert.equal(got.jobIds.length, 1);
      assert.equal(got.report.unplaced, 1);
      assert.equal(got.report.outsideShare, 0);
    });
  });

  describe('coordinators', () => {
    it('beats, lists the live ones, leaves out and deletes the stale, and a leaver is gone at once', async () => {
      const a = await ctx.store.beatCoordinator({ id: 'c-a', weight: 4, aliveWithinMs: 6 * SECOND });
      assert.deepEqual(a.map((m) => [m.id, m.weight]), [['c-a', 4]]);
      ctx.clock.advance(SECOND);
      const b = await ctx.store.beatCoordinator({ id: 'c-b', weight: 2, aliveWithinMs: 6 * SECOND });
      assert.deepEqual(b.map((m) => [m.id, m.weight, m.seenAt]), [['c-a', 4, ctx.t0], ['c-b', 2, ctx.t0 + SECOND]]);
      ctx.clock.advance(6 * SECOND);
      const later = await ctx.store.beatCoordinator({ id: 'c-b', weight: 3, aliveWithinMs: 6 * SECOND });
      assert.deepEqual(later.map((m) => [m.id, m.weight]), [['c-b', 3]], 'c-a has not beaten for 7 s');
      await ctx.store.beatCoordinator({ id: 'c-c', weight: 1, aliveWithinMs: 6 * SECOND });
      await ctx.store.leaveCoordinator({ id: 'c-b' });
      const left = await ctx.store.beatCoordinator({ id: 'c-c', weight: 1, aliveWithinMs: 6 * SECOND });
      assert.deepEqual(left.map((m) => m.id), ['c-c']);
    });
  });
}
