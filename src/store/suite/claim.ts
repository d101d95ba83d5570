// Store conformance, claim: which attempts fit which worker (slots, cores,
// memory, GPUs, labels, affinity, replicas on distinct workers), and in which
// order jobs are leased.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS } from '../../types/limits.ts';
import type { JobSpec } from '../../types/model.ts';
import { type ContractContext, ids, jobIds, MINUTE, SECOND, sorted } from './context.ts';

export function claimTests(ctx: ContractContext): void {
  const { spec, submit, submitOne, addWorker, claim, claimOne, getJob, attemptOf, complete } = ctx;

  // ---- Claim: what fits where ----

  describe('claim fit', () => {
    it('leases an attempt with everything the worker needs, and the job runs', async () => {
      await addWorker('w1');
      const job = await submitOne({
        payload: { n: 1 },
        deadline: ctx.t0 + 10 * MINUTE,
        timeoutMs: 60_000,
        heartbeatTimeoutMs: 10_000,
        requires: { cores: 2, memoryMb: 256 },
        labels: { team: 'a' },
      });
      ctx.clock.advance(SECOND);
      const now = ctx.t0 + SECOND;
      const [a, ...rest] = await claim('w1');
      assert.ok(a);
      assert.deepEqual(rest, []);
      assert.equal(typeof a.lease, 'string');
      assert.ok(a.lease.length >= 16, 'a lease is long enough not to be guessed');
      assert.deepEqual(a, {
        attemptId: a.attemptId,
        lease: a.lease,
        jobId: job.id,
        workerId: 'w1',
        queue: 'q',
        payload: { n: 1 },
        gpuIds: [],
        cores: 2,
        memoryMb: 256,
        attempt: 1,
        timeoutMs: 60_000,
        heartbeatTimeoutMs: 10_000,
        leaseExpiresAt: now + 10_000,
        deadline: ctx.t0 + 10 * MINUTE,
        labels: { team: 'a' },
        // Internal (the coordinator strips it before a worker sees it): when the job became ready.
        readyAt: job.runAt,
      });
      assert.deepEqual(await ctx.store.listAttempts({ jobId: job.id }), [
        {
          id: a.attemptId,
          jobId: job.id,
          workerId: 'w1',
          queue: 'q',
          state: 'leased',
          gpuIds: [],
          cores: 2,
          memoryMb: 256,
          leasedAt: now,
          startedAt: null,
          heartbeatAt: now,
          leaseExpiresAt: now + 10_000,
          timeoutAt: now + 60_000,
          finishedAt: null,
          result: null,
          resultHash: null,
          error: null,
          progress: null,
          trace: null,
          backupOf: null,
          backupReason: null,
        },
      ]);
      const after = await getJob(job.id);
      assert.deepEqual(
        [after.state, after.attempts, after.want, after.live, after.updatedAt],
        ['running', 1, 0, 1, now],
      );
      assert.deepEqual(await claim('w1'), [], 'a leased job is not handed out again');
    });

    it('leases only jobs of a queue the worker serves', async () => {
      await addWorker('w1', { queues: { a: 4 } });
      const [ja, jb] = await submit({ queue: 'b' }, { queue: 'a' });
      assert.ok(ja && jb);
      assert.deepEqual(jobIds(await claim('w1')), [jb.id]);
      assert.deepEqual(await claim('w1'), []);
      assert.equal((await getJob(ja.id)).state, 'queued');
    });

    it('never gives a worker more attempts than its slots for a queue', async () => {
      await addWorker('w1', { queues: { q: 2, other: 1 } });
      const jobs = await submit({}, {}, {}, {}, {});
      const first = await claim('w1');
      assert.deepEqual(jobIds(first), ids(jobs.slice(0, 2)));
      assert.deepEqual(await claim('w1'), []);
      await complete(first[0]!);
      assert.deepEqual(jobIds(await claim('w1')), [jobs[2]!.id]);
      assert.deepEqual(await claim('w1'), []);
    });

    it('hands out at most maxJobs', async () => {
      await addWorker('w1');
      await addWorker('w2');
      await submit({}, {}, {}, {}, {});
      assert.equal((await claim(['w1', 'w2'], 3)).length, 3);
      assert.equal((await claim(['w1', 'w2'], 1)).length, 1);
      assert.equal((await claim(['w1', 'w2'], 0)).length, 0);
    });

    it('never gives a worker more cores than it has free', async () => {
      await addWorker('w1', { cores: 8 });
      const [big1, big2, small] = await submit(
        { requires: { cores: 5 } },
        { requires: { cores: 5 } },
        { requires: { cores: 3 } },
      );
      assert.ok(big1 && big2 && small);
      const got = await claim('w1');
      assert.deepEqual(jobIds(got), [big1.id, small.id]); // 5 + 3 = 8; the second 5 does not fit
      await complete(got[0]!);
      assert.deepEqual(jobIds(await claim('w1')), [big2.id]);
    });

    it('never gives a worker more memory than it has free', async () => {
      await addWorker('w1', { memoryMb: 1000 });
      const [m1, m2, m3] = await submit(
        { requires: { memoryMb: 600 } },
        { requires: { memoryMb: 600 } },
        { requires: { memoryMb: 400 } },
      );
      assert.ok(m1 && m2 && m3);
      assert.deepEqual(jobIds(await claim('w1')), [m1.id, m3.id]); // 600 + 400 = 1000
      assert.equal((await getJob(m2.id)).state, 'queued');
    });

    it('hands out GPUs by id, each to one attempt at a time', async () => {
      await addWorker('w1', { gpuIds: [7, 3, 5] });
      const [one, two, three] = await submit({ requires: { gpus: 1 } }, { requires: { gpus: 2 } }, { requires: { gpus: 1 } });
      assert.ok(one && two && three);
      const got = await claim('w1');
      assert.deepEqual(got.map((a) => [a.jobId, a.gpuIds]), [
        [one.id, [3]],
        [two.id, [5, 7]],
      ]);
      assert.deepEqual((await attemptOf(got[1]!)).gpuIds, [5, 7]);
      assert.deepEqual(await claim('w1'), [], 'no GPU is left for the third job');
      await complete(got[0]!);
      const next = await claimOne('w1');
      assert.deepEqual([next.jobId, next.gpuIds], [three.id, [3]], 'GPU 3 is free again');
    });

    it('keeps what a revoked attempt held (slot, GPU) until its worker stops naming it, or its lease ends', async () => {
      await addWorker('w1', { gpuIds: [0], queues: { q: 1 } });
      const [first, second, third] = await submit(
        { requires: { gpus: 1 } },
        { requires: { gpus: 1 }, heartbeatTimeoutMs: SECOND },
        { requires: { gpus: 1 } },
      );
      assert.ok(first && second && third);
      const a = await claimOne('w1');
      assert.equal(a.jobId, first.id);
      await ctx.store.cancel({ jobId: first.id });
      assert.deepEqual(await claim('w1'), [], 'the cancelled attempt may still be stopping on the worker');
      const stillNamed = await ctx.store.heartbeat({ workerId: 'w1', attempts: [{ attemptId: a.attemptId, lease: a.lease }] });
      assert.deepEqual([stillNamed.revoked, stillNamed.released], [[a.attemptId], undefined]);
      assert.deepEqual(await claim('w1'), [], 'named in a heartbeat: still stopping');
      const stopped = await ctx.store.heartbeat({ workerId: 'w1', attempts: [] });
      assert.equal(stopped.released, true);
      const b = await claimOne('w1');
      assert.deepEqual([b.jobId, b.gpuIds], [second.id, [0]], 'the worker stopped it: the slot and GPU are free');
      // A worker that never says it stopped: the hold ends with the lease.
      await ctx.store.cancel({ jobId: second.id });
      assert.deepEqual(await claim('w1'), []);
      ctx.clock.advance(SECOND + 1);
      const c = await claimOne('w1');
      assert.deepEqual([c.jobId, c.gpuIds], [third.id, [0]]);
    });

    it('leases a job only to a worker carrying every required label', async () => {
      await addWorker('w1', { labels: { arch: 'arm' } });
      await addWorker('w2', { labels: { arch: 'arm', zone: 'us' } });
      await addWorker('w3', { labels: { arch: 'arm', zone: 'eu', extra: 'x' } });
      const job = await submitOne({ requires: { labels: { arch: 'arm', zone: 'eu' } } });
      assert.deepEqual(await claim(['w1', 'w2']), []);
      const a = await claimOne(['w1', 'w2', 'w3']);
      assert.deepEqual([a.jobId, a.workerId], [job.id, 'w3']);
    });

    it('leases an affinity-require job only to a worker holding the key', async () => {
      await addWorker('w1', { keys: ['other'] });
      await addWorker('w2', { keys: ['sector-1'] });
      const job = await submitOne({ affinity: { key: 'sector-1', mode: 'require' } });
      assert.deepEqual(await claim('w1'), []);
      const a = await claimOne(['w1', 'w2']);
      assert.deepEqual([a.jobId, a.workerId], [job.id, 'w2']);
    });

    it('prefers the key holder for an affinity-prefer job, and uses another worker when it is full', async () => {
      await addWorker('w1');
      await addWorker('w2', { keys: ['sector-1'], queues: { q: 3 } });
      await submit({}, {});
      assert.equal((await claim('w2')).length, 2); // w2 is now busier than w1
      const p1 = await submitOne({ affinity: { key: 'sector-1', mode: 'prefer' } });
      const a1 = await claimOne(['w1', 'w2']);
      assert.deepEqual([a1.jobId, a1.workerId], [p1.id, 'w2']);
      const p2 = await submitOne({ affinity: { key: 'sector-1', mode: 'prefer' } });
      const a2 = await claimOne(['w1', 'w2']);
      assert.deepEqual([a2.jobId, a2.workerId], [p2.id, 'w1']);
    });

    it('places replicas on distinct workers: 3 replicas on 3 workers', async () => {
      await addWorker('w1');
      await addWorker('w2');
      await addWorker('w3');
      const job = await submitOne({ replicas: 3 });
      const got = await claim(['w1', 'w2', 'w3']);
      assert.deepEqual(sorted(got.map((a) => a.workerId)), ['w1', 'w2', 'w3']);
      assert.deepEqual(jobIds(got), [job.id, job.id, job.id]);
      const after = await getJob(job.id);
      assert.deepEqual([after.state, after.want, after.live, after.attempts], ['running', 0, 3, 3]);
    });

    it('leases only as many replicas as there are distinct workers, and the rest later', async () => {
      await addWorker('w1');
      await addWorker('w2');
      const job = await submitOne({ replicas: 3 });
      const got = await claim(['w1', 'w2']);
      assert.deepEqual(sorted(got.map((a) => a.workerId)), ['w1', 'w2']);
      assert.deepEqual([(await getJob(job.id)).want, (await getJob(job.id)).live], [1, 2]);
      assert.deepEqual(await claim(['w1', 'w2']), [], 'neither may hold a second replica');
      await addWorker('w3');
      const third = await claimOne(['w1', 'w2', 'w3']);
      assert.deepEqual([third.jobId, third.workerId], [job.id, 'w3']);
    });

    it('finds a fitting job behind more than a page of jobs that fit no worker', async () => {
      await addWorker('w1');
      // 70 high-priority jobs no worker can run, then one that fits: more than
      // one page of candidates comes before it, both by priority and by age.
      await ctx.store.submit({ jobs: Array.from({ length: 70 }, () => spec({ priority: 5, requires: { labels: { zone: 'mars' } } })) });
      ctx.clock.advance(1);
      const fits = await submitOne({ priority: 0 });
      assert.deepEqual(jobIds(await claim('w1')), [fits.id]);
    });

    it('gives nothing to a worker that reconnected with fewer slots than it holds, and still serves the others', async () => {
      await addWorker('w1', { queues: { q: 2 } });
      await addWorker('w2');
      await submit({}, {}, {});
      assert.equal((await claim('w1')).length, 2);
      await addWorker('w1', { queues: { q: 1 } }); // restarted with one slot; still runs two
      const got = await claim(['w1', 'w2']);
      assert.deepEqual(got.map((a) => a.workerId), ['w2']);
    });
  });

  // ---- Claim: in which order ----

  describe('claim order', () => {
    it('leases by priority, then earlier deadline (none last), then age', async () => {
      await addWorker('w1', { queues: { q: 8 } });
      const submitAt = async (over: Partial<JobSpec>) => {
        ctx.clock.advance(1);
        return submitOne(over);
      };
      const low = await submitAt({ priority: 0 });
      const oldNoDeadline = await submitAt({ priority: 5 });
      const lateDeadline = await submitAt({ priority: 5, deadline: ctx.t0 + 60 * MINUTE });
      const soonDeadline = await submitAt({ priority: 5, deadline: ctx.t0 + 30 * MINUTE });
      const newNoDeadline = await submitAt({ priority: 5 });
      const high = await submitAt({ priority: 9 });
      const order: string[] = [];
      for (let i = 0; i < 6; i++) order.push((await claimOne('w1')).jobId);
      assert.deepEqual(order, ids([high, soonDeadline, lateDeadline, oldNoDeadline, newNoDeadline, low]));
    });

    it('lets a long-waiting low-priority job age past newer higher-priority work', async () => {
      await addWorker('w1');
      const old = await submitOne({ priority: 0 });
      ctx.clock.advance(10 * MINUTE); // one point per minute of waiting: 0 + 10 > 5
      await ctx.store.heartbeat({ workerId: 'w1' }); // a worker unseen for so long would be offline
      await ctx.store.submit({ jobs: Array.from({ length: 70 }, () => spec({ priority: 5 })) });
      assert.equal((await claimOne('w1')).jobId, old.id);
    });

    // More older jobs that fit no free worker than a claim reads pages of
    // (claimScanMaxPages x claimCandidatesPerPage) must not hide one that fits.
    const blockingHead = LIMITS.claimScanMaxPages * LIMITS.claimCandidatesPerPage + 100;

    it('finds a job that fits behind more older jobs than it reads that need a label no free worker has', async () => {
      await addWorker('w1');
      await addWorker('gone', { labels: { pool: 'gone' }, queues: { q: 1 } });
      await submitOne({ requires: { labels: { pool: 'gone' } } });
      assert.equal((await claimOne(['w1', 'gone'])).workerId, 'gone'); // now full
      await ctx.store.submit({ jobs: Array.from({ length: blockingHead }, () => spec({ requires: { labels: { pool: 'gone' } } })) });
      ctx.clock.advance(1);
      const fits = await submitOne();
      assert.deepEqual(jobIds(await claim(['w1', 'gone'])), [fits.id]);
    });

    it('finds a job that fits behind more older jobs than it reads that require a key no free worker holds', async () => {
      await addWorker('w1', { keys: ['here'] });
      await ctx.store.submit({
        jobs: Array.from({ length: blockingHead }, (_, i) => spec({ affinity: { key: `elsewhere-${i}`, mode: 'require' } })),
      });
      ctx.clock.advance(1);
      const preferred = await submitOne({ affinity: { key: 'nowhere', mode: 'prefer' } });
      const held = await submitOne({ affinity: { key: 'here', mode: 'require' } });
      assert.deepEqual(sorted(jobIds(await claim('w1'))), sorted(ids([preferred, held])));
    });

    it('holds a job with runAt until the clock passes it, and nextRunAt tells when', async () => {
      await addWorker('w1');
      assert.equal(await ctx.store.nextRunAt(), null);
      const later = await submitOne({ runAt: ctx.t0 + 5 * SECOND });
      const sooner = await submitOne({ runAt: ctx.t0 + 3 * SECOND });
      assert.deepEqual([later.state, later.runAt], ['queued', ctx.t0 + 5 * SECOND]);
      assert.equal(await ctx.store.nextRunAt(), ctx.t0 + 3 * SECOND);
      assert.deepEqual(await claim('w1'), []);
      ctx.clock.advance(3 * SECOND - 1);
      assert.deepEqual(await claim('w1'), []);
      ctx.clock.advance(1);
      assert.equal(await ctx.store.nextRunAt(), ctx.t0 + 5 * SECOND);
      assert.deepEqual(jobIds(await claim('w1')), [sooner.id]);
      ctx.clock.advance(2 * SECOND);
      assert.equal(await ctx.store.nextRunAt(), null);
      assert.equal(await ctx.store.nextRunAt({ afterMs: ctx.t0 + 4 * SECOND }), ctx.t0 + 5 * SECOND, 'ready since a claim at 4 s: due now');
      assert.equal(await ctx.store.nextRunAt({ afterMs: ctx.t0 + 9 * SECOND }), null, 'a time after now counts as now');
      assert.deepEqual(jobIds(await claim('w1')), [later.id]);
    });
  });
}
