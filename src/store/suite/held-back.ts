// Store conformance, the rules that hold against colluders and greedy
// workers: replicas on distinct operators, slow start and the lost-work
// quarantine, probation, and the larger lead a vote won by new workers needs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isGafferError } from '../../types/errors.ts';
import { TRUST_DEFAULTS } from '../../types/limits.ts';
import type { Assignment, WorkerSpec } from '../../types/model.ts';
import { type ContractContext, SECOND } from './context.ts';

function spec(id: string, slots = 1): WorkerSpec {
  return { id, name: id, labels: {}, cores: 16, memoryMb: 65_536, gpuIds: [], queues: { q: slots }, keys: [] };
}

export function heldBackTests(ctx: ContractContext): void {
  const { submitOne, claim, complete, getJob } = ctx;
  const hello = (id: string, operator: string | null, slots = 1) => ctx.store.upsertWorker({ spec: spec(id, slots), operator });

  describe('distinct operators', () => {
    it('puts the replicas of one job on workers of distinct operators while another operator can take them', async () => {
      for (const [id, op] of [['a1', 'lab-a'], ['a2', 'lab-a'], ['b1', 'lab-b'], ['c1', 'lab-c']] as const) await hello(id, op);
      const job = await submitOne({ replicas: 3, quorum: 2 });
      assert.equal(job.distinct, 'operator');
      const placed = await claim(['a1', 'a2', 'b1', 'c1']);
      assert.equal(placed.length, 3);
      const ops = placed.map((a) => a.workerId.slice(0, 1)).sort();
      assert.deepEqual(ops, ['a', 'b', 'c'], 'one replica per operator');
    });

    it('falls back to distinct workers when no other operator serves the queue, and takes distinct: worker as asked', async () => {
      for (const id of ['a1', 'a2', 'a3']) await hello(id, 'lab-a');
      await submitOne({ replicas: 2, quorum: 2 });
      // One replica per operator in one decision; the next claim sees no other operator and falls back.
      assert.equal((await claim(['a1', 'a2', 'a3'])).length, 1);
      assert.equal((await claim(['a1', 'a2', 'a3'])).length, 1, 'one operator alone: its workers serve the replicas');
      await hello('b1', 'lab-b');
      const job = await submitOne({ replicas: 2, quorum: 2, distinct: 'worker' });
      const both = await claim(['a3', 'b1']);
      assert.deepEqual(both.filter((a) => a.jobId === job.id).length, 2);
    });

    it('never places two replicas of one job on one operator while others are free (property)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.constantFrom('x', 'y', 'z', 'w'), { minLength: 4, maxLength: 8 }), async (ops) => {
          await ctx.reopen({});
          const ids = ops.map((op, i) => `${op}${i}`);
          for (const [i, id] of ids.entries()) await hello(id, `lab-${ops[i]}`);
          const distinctOps = new Set(ops).size;
          const job = await submitOne({ replicas: Math.min(3, distinctOps), quorum: 1 });
          const placed = (await claim(ids)).filter((a) => a.jobId === job.id);
          const used = placed.map((a) => a.workerId.slice(0, 1));
          assert.equal(new Set(used).size, used.length, `operators ${used.join(',')}`);
        }),
        { numRuns: 15, seed: 11 },
      );
    });
  });

  describe('votes (property)', () => {
    it('settles only on the margin, and judges workers only on a verdict', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 8, maxLength: 8 }), fc.integer({ min: 1, max: 2 }), async (answers, margin) => {
          await ctx.reopen({});
          const ids = answers.map((_, i) => `v${i}`);
          for (const id of ids) await hello(id, id);
          const job = await submitOne({ replicas: 3, quorum: 2, margin });
          const given = new Map<string, string>();
          for (let round = 0; round < answers.length; round++) {
            const now = await getJob(job.id);
            if (now.state !== 'queued' && now.state !== 'running') break;
            for (const a of await claim(ids.filter((id) => !given.has(id)))) {
              const answer = answers[ids.indexOf(a.workerId)]!;
              try {
                await ctx.store.complete({ attemptId: a.attemptId, lease: a.lease, result: answer });
                given.set(a.workerId, answer);
              } catch (err) {
                // The vote was won meanwhile and this replica stopped: it never voted.
                if (!isGafferError(err, 'STALE_LEASE')) throw err;
                given.set(a.workerId, 'stopped');
              }
            }
          }
          const end = await getJob(job.id);
          const workers = (await ctx.store.listWorkers()).filter((w) => given.has(w.id) && given.get(w.id) !== 'stopped');
          if (end.state !== 'succeeded') {
            for (const w of workers) assert.deepEqual([w.reputation.valid, w.reputation.invalid], [0, 0], `${w.id} judged on a job that ended ${end.state}`);
            return;
          }
          const votes = [...given.values()].filter((v) => v !== 'stopped');
          const won = votes.filter((v) => v === end.result).length;
          const counts = ['a', 'b', 'c'].filter((x) => x !== end.result).map((x) => votes.filter((v) => v === x).length);
          assert.ok(won - Math.max(...counts) >= margin, `won ${won} against ${counts.join('/')} with margin ${margin}`);
          for (const w of workers) {
            const right = given.get(w.id) === end.result;
            assert.deepEqual([w.reputation.valid, w.reputation.invalid], right ? [1, 0] : [0, 1], w.id);
          }
        }),
        { numRuns: 25, seed: 5 },
      );
    });
  });

  describe('slow start and lost work', () => {
    it('gives a new worker creditInitialSlots attempts at once, one more per attempt it completes', async () => {
      await ctx.reopen({ creditInitialSlots: TRUST_DEFAULTS.creditInitialSlots });
      await hello('big', null, 16);
      for (let i = 0; i < 20; i++) await submitOne();
      const first = await claim('big', 16);
      assert.equal(first.length, TRUST_DEFAULTS.creditInitialSlots);
      ctx.clock.advance(SECOND);
      for (const a of first.slice(0, 2)) await complete(a);
      ctx.clock.advance(SECOND);
      assert.equal((await claim('big', 16)).length, 4, 'two slots freed, two more credited');
      assert.equal((await ctx.store.getWorker({ id: 'big' }))?.reputation.credit, TRUST_DEFAULTS.creditInitialSlots + 2);
    });

    it('halves the credit of a worker that goes silent, quarantines it past the lost-work bound, and fails no job for it', async () => {
      await ctx.reopen({ creditInitialSlots: TRUST_DEFAULTS.creditInitialSlots });
      await hello('greedy', null, 1024);
      const jobs = [];
      for (let i = 0; i < 30; i++) jobs.push(await submitOne({ heartbeatTimeoutMs: SECOND, maxAttempts: 1 }));
      const taken: number[] = [];
      for (let round = 0; round < 20; round++) {
        await ctx.store.heartbeat({ workerId: 'greedy', attempts: [] });
        const got = await claim('greedy', 1024);
        if (got.length === 0) break;
        taken.push(got.length);
        ctx.clock.advance(SECOND + 1);
        await ctx.store.expireAttempts({ limit: 1000 });
      }
      const w = await ctx.store.getWorker({ id: 'greedy' });
      assert.equal(w?.state, 'quarantined');
      assert.match(w?.quarantineReason ?? '', /attempts lost or timed out/);
      assert.deepEqual(taken.slice(0, 3), [4, 2, 1], 'four at first, then halved with each loss');
      assert.ok(w!.reputation.timedOut >= TRUST_DEFAULTS.quarantineLostMin);
      for (const j of jobs) {
        const now = await getJob(j.id);
        assert.notEqual(now.state, 'failed', `job ${j.id} failed because of the greedy worker`);
        assert.equal(now.failures, 0);
      }
    });
  });

  describe('probation', () => {
    it('starts no new replicated job for a worker without a record while two of its results await a verdict', async () => {
      await ctx.reopen({ probationMarginBonus: 0 });
      for (const id of ['fast', 'slow1', 'slow2']) await hello(id, id, 4);
      for (let i = 0; i < 4; i++) await submitOne({ replicas: 2, quorum: 2, distinct: 'worker' });
      const placed = await claim(['fast']);
      assert.equal(placed.length, TRUST_DEFAULTS.probationUnjudgedMax, 'two undecided replicated jobs at most');
      // A plain job still goes to it.
      await submitOne();
      assert.equal((await claim(['fast'])).length, 1);
      // It may join a vote under way: the slow workers' jobs.
      const slow = await claim(['slow1']);
      assert.ok(slow.length > 0);
    });

    it('lets a worker on probation with probationUndecidedMax undecided join a vote under way only when nobody below the bound could', async () => {
      // Starts are not the bound here: one worker starts every job, the others only join.
      await ctx.reopen({ probationMarginBonus: 0, probationUnjudgedMax: 8, probationUndecidedMax: 2 });
      for (const [id, slots] of [['starter', 5], ['fast', 4], ['slow', 2]] as const) await hello(id, id, slots);
      for (let i = 0; i < 5; i++) await submitOne({ replicas: 2, quorum: 2, distinct: 'worker' });
      assert.equal((await claim('starter')).length, 5, 'five votes under way');
      const first = await claim('fast');
      assert.equal(first.length, 2, 'two joins, though it has four free slots: slow is below the bound and could vote');
      assert.equal((await claim('fast')).length, 0, 'at its bound while slow could still vote');
      assert.equal((await claim('slow')).length, 2, 'slow joins two; now it is at the bound too');
      const last = await claim('fast');
      assert.equal(last.length, 1, 'nobody below the bound could take the last vote: fast takes it rather than leave it waiting');
      const joined = new Set([...first, ...last].map((a) => a.jobId));
      assert.equal(joined.size, 3);
    });

    it('holds no worker back from a vote under way when everyone that could vote is at the bound', async () => {
      await ctx.reopen({ probationMarginBonus: 0, probationUndecidedMax: 1 });
      for (const id of ['p1', 'p2', 'p3']) await hello(id, id, 4);
      for (let i = 0; i < 2; i++) await submitOne({ replicas: 3, quorum: 2, distinct: 'worker' });
      const placed = [];
      for (let round = 0; round < 4; round++) for (const id of ['p1', 'p2', 'p3']) placed.push(...(await claim(id)));
      assert.equal(placed.length, 6, 'both jobs fully placed on three new workers');
      for (const a of placed) await complete(a, 'same');
      for (const a of placed) assert.equal((await getJob(a.jobId)).state, 'succeeded');
    });

    it('needs a larger lead for a vote won by workers on probation while another worker can vote', async () => {
      await ctx.reopen({ probationMarginBonus: TRUST_DEFAULTS.probationMarginBonus });
      for (const id of ['c1', 'c2', 'c3', 'h1', 'h2']) await hello(id, id);
      await submitOne({ replicas: 3, quorum: 2 });
      const three = (await claim(['c1', 'c2', 'c3'])) as Assignment[];
      for (const a of three) await complete(a, 'colluded');
      const job = await getJob(three[0]!.jobId);
      assert.deepEqual([job.state, job.want], ['queued', 1], 'three new workers agreeing do not settle it while h1 could vote');
      const fourth = (await claim(['h1']))[0]!;
      const out = await complete(fourth, 'honest');
      assert.notEqual(out.job.state, 'succeeded', '3 against 1 from new workers is no verdict while h2 could vote');
      for (const w of await ctx.store.listWorkers()) assert.equal(w.reputation.invalid, 0, `${w.id} judged without a verdict`);
    });

    it('accepts a unanimous vote of new workers on the job\'s own margin when no other worker could vote', async () => {
      await ctx.reopen({ probationMarginBonus: TRUST_DEFAULTS.probationMarginBonus });
      for (const id of ['n1', 'n2', 'n3']) await hello(id, id);
      await submitOne({ replicas: 3, quorum: 2 });
      let out;
      for (const a of await claim(['n1', 'n2', 'n3'])) out = await complete(a, 'same');
      assert.equal(out?.job.state, 'succeeded');
    });
  });
}
