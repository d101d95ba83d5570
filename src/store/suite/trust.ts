// Store conformance, trust: quorum, traces, verifier queues, reputation and
// quarantine, adaptive replication, reliability checks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GafferError } from '../../types/errors.ts';
import { LIMITS, TRUST_DEFAULTS } from '../../types/limits.ts';
import type { Assignment, Job, JobSpec, Json, Trace } from '../../types/model.ts';
import { newJob } from '../../types/new-job.ts';
import { resultHash } from '../rules.ts';
import type { SettleResult } from '../store.ts';
import { change, type ContractContext, EXTRA_REPLICAS_MAX, sorted } from './context.ts';

export function trustTests(ctx: ContractContext): void {
  const { submitOne, addWorker, claim, claimOne, getJob, attemptOf, ref, complete, fail } = ctx;

  // ---- Trust: quorum, traces, verifiers, reputation, adaptive replication, reliability checks ----

  describe('trust', () => {
    /** Three workers each complete one replica with the given answers, in order. */
    async function runReplicas(answers: Json[], over: Partial<JobSpec> = {}): Promise<{ job: Job; attempts: Assignment[]; last: SettleResult }> {
      const ids = answers.map((_, i) => `r${i + 1}`);
      for (const id of ids) await addWorker(id);
      const job = await submitOne({ replicas: answers.length, quorum: Math.floor(answers.length / 2) + 1, ...over });
      const attempts = await claim(ids);
      assert.equal(attempts.length, answers.length);
      let last!: SettleResult;
      for (let i = 0; i < answers.length; i++) last = await complete(attempts[i]!, answers[i]!);
      return { job, attempts, last };
    }

    const trace = (cpuPerSample: number, n = 10): Trace => ({
      intervalMs: 100,
      samples: Array.from({ length: n }, (_, i) => ({ tMs: (i + 1) * 100, cpuMs: cpuPerSample * (i + 1), rssKb: 10_000 })),
    });

    it('accepts the result a quorum agrees on, rejects the rest, and records each worker\'s verdict', async () => {
      const { job, attempts } = await runReplicas(['A', 'B', 'A'], { margin: 1 });
      const done = await getJob(job.id);
      assert.deepEqual([done.state, done.result], ['succeeded', 'A']);
      const attempts2 = await ctx.store.listAttempts({ jobId: job.id });
      assert.deepEqual(attempts2.map((a) => a.state), ['completed', 'rejected', 'completed']);
      assert.deepEqual(attempts2.map((a) => a.error?.code ?? null), [null, 'OUTVOTED', null], 'a rejected attempt says why');
      assert.match(attempts2[1]!.error!.message, /differs from the accepted one, which 2 of 3 results agreed on/);
      const [w1, w2] = [await ctx.store.getWorker({ id: attempts[0]!.workerId }), await ctx.store.getWorker({ id: attempts[1]!.workerId })];
      const credit = LIMITS.workerSlotsMax; // the suite's workers start out of slow start
      assert.deepEqual(w1?.reputation, { valid: 1, invalid: 0, timedOut: 0, credit, streak: 1, soloSinceCheck: 0 });
      assert.deepEqual(w2?.reputation, { valid: 0, invalid: 1, timedOut: 0, credit, streak: 0, soloSinceCheck: 0 });
    });

    it('with margin 1, accepts as soon as a quorum agrees, stopping the replicas still running', async () => {
      for (const id of ['r1', 'r2', 'r3']) await addWorker(id);
      const job = await submitOne({ replicas: 3, quorum: 2, margin: 1 });
      const [a, b, c] = (await claim(['r1', 'r2', 'r3'])) as [Assignment, Assignment, Assignment];
      await complete(a, 'A');
      const out = await complete(b, 'A');
      assert.deepEqual(out.changes, [change(job.id, 'succeeded', [{ attemptId: c.attemptId, workerId: c.workerId }])]);
    });

    it('says which results disagreed when no quorum is reached within the replica bound', async () => {
      // The workers for the extra replicas are connected before the vote splits: otherwise it would end at once.
      for (let extra = 1; extra <= EXTRA_REPLICAS_MAX; extra++) await addWorker(`x${extra}`);
      const { job } = await runReplicas(['A', 'B', 'C']);
      for (let extra = 1; extra <= EXTRA_REPLICAS_MAX; extra++) {
        await complete(await claimOne(`x${extra}`), `D${extra}`);
      }
      const failed = await getJob(job.id);
      assert.equal(failed.state, 'failed');
      assert.equal(failed.error?.code, 'NO_QUORUM');
      assert.match(failed.error?.message ?? '', new RegExp(`no 2 of ${3 + EXTRA_REPLICAS_MAX} results agreed`));
      assert.match(failed.error?.message ?? '', new RegExp(resultHash('A').slice(0, 12)));
      const rejected = await ctx.store.listAttempts({ jobId: job.id });
      assert.ok(rejected.every((a) => a.state === 'rejected' && a.error?.code === 'NO_QUORUM'), 'every attempt of an undecided vote carries the job\'s NO_QUORUM');
    });

    it('does not count an attempt a draining worker handed straight back: no failure, no backoff', async () => {
      await addWorker('w1');
      const job = await submitOne({ maxAttempts: 1, backoff: { baseMs: 60_000 } });
      const a = await claimOne('w1');
      const out = await ctx.store.fail({ ...ref(a), error: { code: 'WORKER_DRAINING', message: 'draining' }, retryable: true });
      assert.deepEqual([out.job.state, out.job.failures, out.job.runAt], ['queued', 0, ctx.clock.now()]);
      assert.equal((await claimOne('w1')).jobId, job.id);
    });

    it('does not end a replicated job on one replica\'s non-retryable error', async () => {
      for (const id of ['r1', 'r2']) await addWorker(id);
      await addWorker('r3', { queues: { p: 1 } });
      const job = await submitOne({ replicas: 2, quorum: 2, maxAttempts: 3 });
      const [a] = (await claim(['r1', 'r2'])) as [Assignment, Assignment];
      const out = await fail(a, 'made-up permanent error', false);
      assert.deepEqual([out.job.state, out.job.want, out.job.failures], ['running', 1, 1]);
      // A plain job still fails at once.
      const plain = await submitOne({ queue: 'p' });
      const p = await claimOne('r3');
      assert.equal(p.jobId, plain.id);
      assert.equal((await fail(p, 'bad input', false)).job.state, 'failed');
      assert.equal((await getJob(job.id)).state, 'running');
    });

    it('keeps each attempt\'s trace, and with trace verification rejects the replica whose resource use stands apart', async () => {
      for (const id of ['t1', 't2', 't3']) await addWorker(id);
      const job = await submitOne({ replicas: 3, quorum: 2, verify: { mode: 'trace', tolerance: 0.2 } });
      const [a, b, c] = (await claim(['t1', 't2', 't3'])) as [Assignment, Assignment, Assignment];
      await ctx.store.complete({ ...ref(a), result: 'R', trace: trace(90) });
      const mid = await ctx.store.complete({ ...ref(b), result: 'R', trace: trace(1) });
      assert.equal(mid.job.state, 'running', 'trace verification waits for every replica');
      const out = await ctx.store.complete({ ...ref(c), result: 'R', trace: trace(100) });
      assert.equal(out.job.state, 'succeeded');
      const attempts = await ctx.store.listAttempts({ jobId: job.id });
      assert.deepEqual(attempts.map((x) => x.state), ['completed', 'rejected', 'completed']);
      assert.equal(attempts[1]!.error?.code, 'TRACE_REJECTED');
      assert.match(attempts[1]!.error!.message, /^its resource trace scored \d+\.\d{3}, in a cluster centred on \d+\.\d{3}; 2 of 3 traces centre on \d+\.\d{3} \(tolerance 0\.2\)$/);
      assert.deepEqual(attempts[0]!.trace, trace(90));
      assert.equal((await ctx.store.getWorker({ id: b.workerId }))?.reputation.invalid, 1);
    });

    it('rejects the replicas that sent no usable trace, whatever their number', async () => {
      for (const id of ['t1', 't2', 't3', 't4', 't5']) await addWorker(id);
      const job = await submitOne({ replicas: 5, quorum: 2, verify: { mode: 'trace', tolerance: 0.2 } });
      const all = await claim(['t1', 't2', 't3', 't4', 't5']);
      // Three send nothing (or a single sample) and a made-up result each; two do the work and agree.
      await ctx.store.complete({ ...ref(all[0]!), result: 'lazy 1' });
      await ctx.store.complete({ ...ref(all[1]!), result: 'lazy 2', trace: { intervalMs: 100, samples: [{ tMs: 0, cpuMs: 0, rssKb: 0 }] } });
      await ctx.store.complete({ ...ref(all[2]!), result: 'lazy 3' });
      await ctx.store.complete({ ...ref(all[3]!), result: 'R', trace: trace(100) });
      const out = await ctx.store.complete({ ...ref(all[4]!), result: 'R', trace: trace(95) });
      assert.deepEqual([out.job.state, out.job.result], ['succeeded', 'R']);
      const judged = await ctx.store.listAttempts({ jobId: job.id });
      assert.deepEqual(judged.map((x) => x.state), ['rejected', 'rejected', 'rejected', 'completed', 'completed']);
      assert.match(judged[0]!.error?.message ?? '', /^no usable resource trace/);
      assert.equal((await ctx.store.getWorker({ id: all[3]!.workerId }))?.reputation.invalid, 0);
    });

    /** Four replicas whose traces split into two clusters of two (scores 0.5, 0.5, 1, 1 from the mean trace). */
    async function evenTraceSplit(): Promise<Job> {
      for (const id of ['t1', 't2', 't3', 't4', 't5']) await addWorker(id);
      const job = await submitOne({ replicas: 4, quorum: 2, verify: { mode: 'trace', tolerance: 0.2 } });
      const all = await claim(['t1', 't2', 't3', 't4']);
      const cpu = [100, 300, 0, 400];
      for (let i = 0; i < 4; i++) await ctx.store.complete({ ...ref(all[i]!), result: 'R', trace: trace(cpu[i]!) });
      return getJob(job.id);
    }

    it('adds a replica when the traces split evenly: clusters too close to call are no verdict', async () => {
      const split = await evenTraceSplit();
      assert.deepEqual([split.state, split.want, split.error], ['queued', 1, null]);
      const extra = await claimOne(['t1', 't2', 't3', 't4', 't5']);
      assert.equal(extra.workerId, 't5', 'the added replica goes to a worker that has not run the job');
      for (const w of await ctx.store.listWorkers()) assert.equal(w.reputation.invalid, 0, `${w.id} is not judged on an undecided split`);
    });

    it('fails a trace-verified job whose traces split evenly once no extra replica is allowed', async () => {
      await ctx.reopen({ extraReplicasMax: 0 });
      const failed = await evenTraceSplit();
      assert.deepEqual([failed.state, failed.error?.code], ['failed', 'NO_QUORUM']);
      assert.match(failed.error?.message ?? '', /split evenly.*no extra replicas allowed/);
    });

    describe('verifier queue', () => {
      const verificationJob = (queue: string, payload: Json, priority: number) => newJob({ queue, payload, priority });

      async function produce(workerId: string, jobId: string, result: Json): Promise<{ attempt: Assignment; verifier: Job }> {
        const attempt = await claimOne(workerId);
        assert.equal(attempt.jobId, jobId);
        const out = await ctx.store.complete({ ...ref(attempt), result, verificationJob });
        assert.equal(out.job.state, 'verifying');
        const vId = out.changes.find((c) => c.jobId !== jobId)!.jobId;
        return { attempt, verifier: await getJob(vId) };
      }

      async function verdict(verifierJobId: string, result: Json): Promise<SettleResult> {
        const v = await claimOne('checker');
        assert.equal(v.jobId, verifierJobId);
        return ctx.store.complete({ ...ref(v), result, verificationJob });
      }

      it('sends each result to the verifier queue; a rejected result runs again elsewhere, an accepted one ends the job', async () => {
        await addWorker('liar');
        await addWorker('honest');
        await addWorker('checker', { queues: { verify: 1 } });
        const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' }, maxAttempts: 3 });
        const first = await produce('liar', job.id, 'wrong');
        assert.equal(first.verifier.queue, 'verify');
        assert.deepEqual(first.verifier.verifies, { jobId: job.id, attemptId: first.attempt.attemptId });
        assert.deepEqual(first.verifier.payload, { jobId: job.id, attemptId: first.attempt.attemptId, workerId: 'liar', queue: 'q', payload: null, result: 'wrong' });
        const rejected = await verdict(first.verifier.id, { valid: false, reason: 'proof does not verify' });
        assert.ok(rejected.changes.some((c) => c.jobId === job.id && c.state === 'queued'));
        const again = await getJob(job.id);
        assert.deepEqual([again.state, again.failures, again.error?.code], ['queued', 1, 'RESULT_REJECTED']);
        assert.match(again.error?.message ?? '', /proof does not verify/);
        const judged = (await ctx.store.listAttempts({ jobId: job.id }))[0]!;
        assert.deepEqual([judged.state, judged.error?.code], ['rejected', 'RESULT_REJECTED']);
        assert.deepEqual(await claim('liar'), [], 'the rejected worker does not get the job again');
        assert.equal((await ctx.store.getWorker({ id: 'liar' }))?.reputation.invalid, 1);
        const second = await produce('honest', job.id, 'right');
        await verdict(second.verifier.id, { valid: true });
        const done = await getJob(job.id);
        assert.deepEqual([done.state, done.result], ['succeeded', 'right']);
        assert.equal((await ctx.store.getWorker({ id: 'honest' }))?.reputation.valid, 1);
      });

      it('fails a verifier attempt that answers no verdict, and the job whose verification job ends without one', async () => {
        await addWorker('w1');
        await addWorker('checker', { queues: { verify: 1 } });
        const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
        const { verifier } = await produce('w1', job.id, 'x');
        const bad = await verdict(verifier.id, 'looks fine to me');
        assert.equal(bad.job.id, verifier.id);
        assert.equal((await ctx.store.listAttempts({ jobId: verifier.id }))[0]?.error?.code, 'BAD_VERDICT');
        await ctx.store.cancel({ jobId: verifier.id });
        const failed = await getJob(job.id);
        assert.deepEqual([failed.state, failed.error?.code], ['failed', 'VERIFICATION_FAILED']);
      });

      it('cancels the verification job with the job it verifies', async () => {
        await addWorker('w1');
        await addWorker('checker', { queues: { verify: 1 } });
        const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
        const { verifier } = await produce('w1', job.id, 'x');
        const out = await ctx.store.cancel({ jobId: job.id });
        assert.deepEqual(sorted(out.changes.map((c) => `${c.jobId === job.id ? 'job' : 'verifier'}:${c.state}`)), ['job:cancelled', 'verifier:cancelled']);
        assert.equal((await getJob(verifier.id)).state, 'cancelled');
      });

      it('never sends a result to be verified by the worker that produced it', async () => {
        await addWorker('both', { queues: { q: 1, verify: 1 } });
        await addWorker('checker', { queues: { verify: 1 } });
        const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
        const { verifier } = await produce('both', job.id, 'x');
        assert.deepEqual(await claim('both'), []);
        assert.equal((await claimOne('checker')).jobId, verifier.id);
      });

      it('fails the job when its verification job cannot be made', async () => {
        await addWorker('w1');
        const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
        const a = await claimOne('w1');
        const tooBig = () => {
          throw new GafferError('PAYLOAD_TOO_LARGE', 'verification payload is too large');
        };
        const out = await ctx.store.complete({ ...ref(a), result: 'x', verificationJob: tooBig });
        assert.deepEqual([out.job.state, out.job.error?.code], ['failed', 'VERIFICATION_FAILED']);
        assert.match(out.job.error?.message ?? '', /too large/);
      });

      it('retries a verified job on a fresh round, its earlier worker included; a verification job is not retried by hand', async () => {
        await addWorker('only');
        await addWorker('checker', { queues: { verify: 1 } });
        const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
        const { verifier } = await produce('only', job.id, 'x');
        await ctx.store.cancel({ jobId: verifier.id });
        assert.equal((await getJob(job.id)).state, 'failed');
        await assert.rejects(ctx.store.retry({ jobId: verifier.id }), { code: 'INVALID_STATE' });
        await ctx.store.retry({ jobId: job.id });
        assert.equal((await claimOne('only')).jobId, job.id, 'the only worker may run it again');
      });

      it('refuses a result it cannot send for verification', async () => {
        await addWorker('w1');
        await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
        const a = await claimOne('w1');
        await assert.rejects(complete(a, 'x'), { code: 'INVALID_STATE' });
        assert.equal((await attemptOf(a)).state, 'leased');
      });
    });

    it('quarantines a worker whose results are mostly invalid, takes its work back, and an admin can release it', async () => {
      for (const id of ['h1', 'h2', 'bad']) await addWorker(id);
      for (let i = 0; i < TRUST_DEFAULTS.quarantineMinResults; i++) {
        await submitOne({ replicas: 3, quorum: 2, margin: 1 }); // three workers: a 2-1 vote must decide
        const round = await claim(['h1', 'h2', 'bad']);
        const mine = round.find((a) => a.workerId === 'bad')!;
        await complete(mine, `made up ${i}`);
        for (const a of round.filter((x) => x !== mine)) await complete(a, 'true answer');
      }
      // Before its last verdict it took one more job; quarantine takes it back.
      const w = await ctx.store.getWorker({ id: 'bad' });
      assert.equal(w?.state, 'quarantined');
      assert.match(w?.quarantineReason ?? '', /invalid/);
      assert.deepEqual(w?.reputation, { valid: 0, invalid: 3, timedOut: 0, credit: LIMITS.workerSlotsMax, streak: 0, soloSinceCheck: 0 });
      for (const id of ['h1', 'h2']) assert.equal((await ctx.store.getWorker({ id }))?.quarantined, false);
      await submitOne();
      assert.deepEqual(await claim('bad'), []);
      const released = await ctx.store.setWorkerQuarantine({ workerId: 'bad', quarantined: false });
      assert.deepEqual([released.worker.state, released.worker.quarantineReason, released.worker.reputation.invalid], ['idle', null, 0]);
      assert.equal((await claim('bad')).length, 1);
    });

    it('cancels a quarantined worker\'s live attempts and puts their jobs back without counting a failure', async () => {
      await addWorker('w1');
      const job = await submitOne();
      const a = await claimOne('w1');
      const out = await ctx.store.setWorkerQuarantine({ workerId: 'w1', quarantined: true, reason: 'caught by hand' });
      assert.deepEqual(out.changes, [change(job.id, 'queued', [{ attemptId: a.attemptId, workerId: 'w1' }])]);
      assert.equal(out.worker.quarantineReason, 'caught by hand');
      const back = await getJob(job.id);
      assert.deepEqual([back.state, back.want, back.failures], ['queued', 1, 0]);
      assert.equal((await attemptOf(a)).state, 'cancelled');
      await assert.rejects(ctx.store.setWorkerQuarantine({ workerId: 'nobody', quarantined: true }), { code: 'WORKER_NOT_FOUND' });
    });

    it('counts timeouts and lost leases against the worker', async () => {
      await addWorker('slow');
      await submitOne({ heartbeatTimeoutMs: 1000 });
      await claimOne('slow');
      ctx.clock.advance(2000);
      await ctx.store.expireAttempts({ limit: 10 });
      assert.equal((await ctx.store.getWorker({ id: 'slow' }))?.reputation.timedOut, 1);
    });

    describe('adaptive replication', () => {
      /** Builds a valid streak for `ids` with replicated, non-adaptive jobs that they all answer alike. */
      async function earnTrust(ids: string[], rounds: number): Promise<void> {
        for (let i = 0; i < rounds; i++) {
          await submitOne({ replicas: ids.length, quorum: ids.length });
          for (const a of await claim(ids)) await complete(a, `answer ${i}`);
        }
      }

      it('lets a trusted worker run an adaptive job alone, and spot-checks it at least every spotCheckMaxGapJobs', async () => {
        await ctx.reopen({ trustedStreakMin: 2, spotCheckProbability: 0, spotCheckMaxGapJobs: 3 });
        for (const id of ['a', 'b', 'c']) await addWorker(id);
        await earnTrust(['a', 'b'], 2);
        const runs: string[] = [];
        for (let i = 0; i < 8; i++) {
          const job = await submitOne({ replicas: 2, quorum: 2, adaptive: true });
          const placed = await claim(['a', 'b']);
          const solo = (await getJob(job.id)).solo;
          runs.push(solo ? 'solo' : 'check');
          if (solo) assert.equal(placed.length, 1, 'a solo job has one attempt');
          for (const a of placed) await complete(a, `job ${i}`);
          if (!solo && placed.length < 2) {
            // The second replica of a spot check: the other trusted worker.
            for (const a of await claim(['a', 'b'])) await complete(a, `job ${i}`);
          }
          assert.equal((await getJob(job.id)).state, 'succeeded');
        }
        // Gap 3: three solo runs, then a spot check, again and again.
        assert.deepEqual(runs, ['solo', 'solo', 'solo', 'check', 'solo', 'solo', 'solo', 'check']);
        // An untrusted worker never runs one alone.
        const job = await submitOne({ replicas: 2, quorum: 2, adaptive: true });
        await claim('c');
        assert.equal((await getJob(job.id)).solo, false);
      });

      it('resets a worker\'s trust when a spot check finds it wrong', async () => {
        await ctx.reopen({ trustedStreakMin: 2, spotCheckProbability: 1 });
        for (const id of ['a', 'b', 'c']) await addWorker(id);
        await earnTrust(['a', 'b', 'c'], 2);
        const job = await submitOne({ replicas: 3, quorum: 2, margin: 1, adaptive: true });
        const placed = await claim(['a', 'b', 'c']);
        assert.equal(placed.length, 3, 'a spot check runs every replica');
        for (const a of placed) await complete(a, a.workerId === 'a' ? 'lie' : 'truth');
        assert.equal((await getJob(job.id)).result, 'truth');
        const a = await ctx.store.getWorker({ id: 'a' });
        assert.deepEqual([a?.reputation.streak, a?.reputation.invalid], [0, 1]);
      });

      it('reruns a solo job fully replicated when its one attempt fails', async () => {
        await ctx.reopen({ trustedStreakMin: 1, spotCheckProbability: 0 });
        for (const id of ['a', 'b']) await addWorker(id);
        await earnTrust(['a', 'b'], 1);
        const job = await submitOne({ replicas: 2, quorum: 2, adaptive: true, maxAttempts: 3 });
        const [solo] = await claim('a');
        assert.equal((await getJob(job.id)).solo, true);
        const out = await fail(solo!, 'crashed');
        assert.deepEqual([out.job.solo, out.job.want], [false, 2]);
        // The round decided once: the trusted worker does not get it alone again.
        const again = await claim(['a', 'b']);
        assert.equal(again.length, 2);
        assert.equal((await getJob(job.id)).solo, false);
      });
    });

    describe('reliability checks', () => {
      const challenge = (workerId: string, over: Partial<{ answer: Json; timeLimitMs: number }> = {}) =>
        ctx.store.startCheck({
          workerId,
          queue: 'q',
          job: newJob({ queue: 'q', payload: { challenge: 1 }, maxAttempts: 1, timeoutMs: over.timeLimitMs ?? 5000 }),
          answerHash: resultHash(over.answer ?? 42),
          timeLimitMs: over.timeLimitMs ?? 5000,
        });

      it('gives a new worker its challenge and nothing else of the queue until it passes; keeps its speed', async () => {
        await addWorker('new');
        await addWorker('old');
        const real = await submitOne();
        const { check, created } = await challenge('new');
        assert.deepEqual([check.state, created], ['pending', true]);
        assert.deepEqual((await challenge('new')).created, false, 'one check per worker and queue');
        assert.equal((await ctx.store.getWorker({ id: 'new' }))?.state, 'probing');
        const got = await claim('new');
        assert.deepEqual(got.map((a) => a.jobId), [check.jobId], 'only its challenge');
        assert.deepEqual((await claim('old')).map((a) => a.jobId), [real.id], 'nobody else gets the challenge');
        ctx.clock.advance(1200);
        await complete(got[0]!, 42);
        const w = await ctx.store.getWorker({ id: 'new' });
        assert.deepEqual([w?.checks.q?.state, w?.checks.q?.speedMs, w?.state], ['passed', 1200, 'idle']);
        await submitOne();
        assert.equal((await claim('new')).length, 1);
      });

      it('fails a wrong or late answer, and a failed worker gets no real work of that queue', async () => {
        await addWorker('wrong');
        await addWorker('late');
        const wrong = await challenge('wrong');
        const late = await challenge('late', { timeLimitMs: 1000 });
        const [a] = await claim('wrong');
        const [b] = await claim('late');
        await complete(a!, 41);
        ctx.clock.advance(999);
        await ctx.store.heartbeat({ workerId: 'late' });
        ctx.clock.advance(2);
        await complete(b!, 42);
        const [ww, lw] = [await ctx.store.getWorker({ id: 'wrong' }), await ctx.store.getWorker({ id: 'late' })];
        assert.deepEqual([ww?.checks.q?.state, ww?.checks.q?.reason], ['failed', 'the challenge answer was wrong']);
        assert.equal(lw?.checks.q?.state, 'failed');
        assert.match(lw?.checks.q?.reason ?? '', /took 1001 ms; the limit is 1000 ms/);
        assert.equal(wrong.check.jobId, a!.jobId);
        assert.equal(late.check.jobId, b!.jobId);
        await submitOne();
        assert.deepEqual(await claim(['wrong', 'late']), []);
        // A failed check stays failed across reconnects, until an admin releases the worker.
        await addWorker('wrong');
        assert.equal((await challenge('wrong')).created, false);
        // Released, it faces the same challenge again before any real work.
        const released = await ctx.store.setWorkerQuarantine({ workerId: 'wrong', quarantined: false });
        const again = released.worker.checks.q!;
        assert.equal(again.state, 'pending');
        assert.notEqual(again.jobId, wrong.check.jobId);
        assert.deepEqual(released.changes, [change(again.jobId, 'queued')]);
        assert.deepEqual((await claim('wrong')).map((a) => a.jobId), [again.jobId]);
        assert.deepEqual((await getJob(again.jobId)).payload, { challenge: 1 });
        // A challenge is not retried by hand.
        await assert.rejects(ctx.store.retry({ jobId: wrong.check.jobId }), { code: 'INVALID_STATE' });
      });

      it('fails the check when the challenge itself fails or is lost', async () => {
        await addWorker('w');
        await challenge('w');
        const [a] = await claim('w');
        await fail(a!, 'cannot run it', true);
        const w = await ctx.store.getWorker({ id: 'w' });
        assert.equal(w?.checks.q?.state, 'failed');
        assert.match(w?.checks.q?.reason ?? '', /cannot run it/);
      });
    });
  });
}
