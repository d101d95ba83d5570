// The store conformance suite. Every backend runs it with one call:
//
//   storeContract('sqlite', async (ctx) => openSqliteStore({ path, ...ctx }));
//
// Each test opens a fresh store on a fresh VirtualClock and seeded random
// source, and closes it afterwards. Time moves only when a test advances the
// clock, so nothing depends on the speed of the machine. The expected values
// are worked out by hand from the defaults and the times the test sets; the
// comments beside them show the arithmetic.
//
// The suite drives the store through the real scheduler (`place`) and the real
// submit validation (`normalizeJob`), as the coordinator does.
//
// Backends (sqlite/, postgres/) pass the same tests. Where one must behave
// differently, the difference is an option of StoreContractOptions, named with
// its reason, and the test checks each side: today only `unstorableText`.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeJob } from '../coordinator/validate.ts';
import { place } from '../scheduler/index.ts';
import { seededRandom, VirtualClock, type Random } from '../types/clock.ts';
import { GafferError } from '../types/errors.ts';
import { LIMITS, TRUST_DEFAULTS } from '../types/limits.ts';
import type { Assignment, Attempt, Job, JobSpec, Json, PlaceFn, Trace, Worker, WorkerSpec } from '../types/model.ts';
import type { JobState } from '../types/states.ts';
import type { Change, SettleResult, Store } from './store.ts';
import type { TrustPolicy } from '../trust/index.ts';
import { resultHash } from './rules.ts';

const EXTRA_REPLICAS_MAX = TRUST_DEFAULTS.extraReplicasMax;

export interface StoreContext {
  clock: VirtualClock;
  random: Random;
  /** Trust policy overrides (TRUST_DEFAULTS otherwise). */
  trust?: Partial<TrustPolicy>;
}

export interface StoreContractOptions {
  /**
   * A difference between backends: how a store answers a call naming text it
   * cannot hold (a NUL character, or a UTF-16 surrogate without its pair;
   * submit and worker validation refuse both, but an id in a URL may carry
   * one). 'not-found' (the default; SQLite, which stores any string): such an
   * id simply matches nothing. 'refused' (PostgreSQL, whose text type holds
   * neither): the store refuses the call with INVALID_INPUT instead of sending
   * it, since a lone surrogate would reach the server as U+FFFD and match a
   * different string.
   */
  unstorableText?: 'not-found' | 'refused';
}

/** The seed every test starts from, so that a failure replays exactly. */
const SEED = 0x5eed;
const SECOND = 1000;
const MINUTE = 60 * SECOND;

const placeFn: PlaceFn = (input) => place(input);

export function storeContract(
  name: string,
  open: (ctx: StoreContext) => Promise<Store>,
  options: StoreContractOptions = {},
): void {
  describe(`store contract: ${name}`, () => {
    let store!: Store;
    let clock!: VirtualClock;
    let t0 = 0;

    beforeEach(async () => {
      clock = new VirtualClock();
      t0 = clock.now();
      store = await open({ clock, random: seededRandom(SEED) });
    });

    afterEach(async () => {
      await store.close();
    });

    // ---- Helpers: each does one store call the way the coordinator would ----

    const spec = (over: Partial<JobSpec> = {}) => normalizeJob({ queue: 'q', ...over });

    async function submit(...overs: Partial<JobSpec>[]): Promise<Job[]> {
      const out = await store.submit({ jobs: overs.map((o) => spec(o)) });
      assert.ok(out.every((r) => r.created));
      return out.map((r) => r.job);
    }

    async function submitOne(over: Partial<JobSpec> = {}): Promise<Job> {
      const [job] = await submit(over);
      assert.ok(job);
      return job;
    }

    function addWorker(id: string, over: Partial<WorkerSpec> = {}): Promise<Worker> {
      const w: WorkerSpec = {
        id,
        name: id,
        labels: {},
        cores: 16,
        memoryMb: 65_536,
        gpuIds: [],
        queues: { q: 4 },
        keys: [],
        ...over,
      };
      return store.upsertWorker({ spec: w });
    }

    function claim(workerIds: string | string[], maxJobs = 100): Promise<Assignment[]> {
      const ids = typeof workerIds === 'string' ? [workerIds] : workerIds;
      return store.claim({ workerIds: ids, place: placeFn, maxJobs });
    }

    async function claimOne(workerIds: string | string[]): Promise<Assignment> {
      const out = await claim(workerIds, 1);
      assert.equal(out.length, 1, 'one attempt leased');
      return out[0]!;
    }

    async function getJob(id: string): Promise<Job> {
      const job = await store.getJob({ id });
      assert.ok(job, `job ${id} exists`);
      return job;
    }

    async function attemptOf(a: { jobId: string; attemptId: string }): Promise<Attempt> {
      const found = (await store.listAttempts({ jobId: a.jobId })).find((x) => x.id === a.attemptId);
      assert.ok(found, `attempt ${a.attemptId} exists`);
      return found;
    }

    const ref = (a: Assignment) => ({ attemptId: a.attemptId, lease: a.lease });

    function complete(a: Assignment, result: Json = { ok: true }): Promise<SettleResult> {
      return store.complete({ ...ref(a), result });
    }

    function fail(a: Assignment, message = 'boom', retryable = true): Promise<SettleResult> {
      return store.fail({ ...ref(a), error: { code: 'HANDLER_ERROR', message }, retryable });
    }

    const ids = (xs: readonly { id: string }[]) => xs.map((x) => x.id);
    const jobIds = (xs: readonly { jobId: string }[]) => xs.map((x) => x.jobId);
    const sorted = (xs: readonly string[]) => [...xs].sort();
    const byJobId = (changes: readonly Change[]) => [...changes].sort((a, b) => (a.jobId < b.jobId ? -1 : 1));
    const change = (jobId: string, state: JobState, cancelledAttempts: Change['cancelledAttempts'] = []): Change => ({
      jobId,
      state,
      cancelledAttempts,
    });

    // ---- Submit ----

    describe('submit', () => {
      it('submits one job, keeping every field and filling the store-owned ones', async () => {
        const newJob = spec({
          payload: { n: 1, nested: ['a', { b: null }] },
          priority: 7,
          deadline: t0 + 10 * MINUTE,
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
        const [r] = await store.submit({ jobs: [newJob] });
        assert.ok(r);
        assert.equal(r.created, true);
        const expected: Job = {
          ...newJob,
          id: r.job.id,
          state: 'queued',
          runAt: t0, // runAt left out: ready now
          attempts: 0,
          failures: 0,
          want: 3, // one attempt per replica
          live: 0,
          pendingParents: 0,
          solo: false,
          verifies: null,
          pinnedWorkerId: null,
          result: null,
          error: null,
          createdAt: t0,
          updatedAt: t0,
          finishedAt: null,
        };
        assert.deepEqual(r.job, expected);
        assert.deepEqual(await store.getJob({ id: r.job.id }), expected);
        assert.equal(await store.getJob({ id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }), null);
      });

      it('submits many in one call, in order, each with its own time-sortable id', async () => {
        const out = await store.submit({ jobs: [spec({ payload: 1 }), spec({ payload: 2 }), spec({ payload: 3 })] });
        assert.deepEqual(out.map((r) => [r.created, r.job.payload, r.job.state]), [
          [true, 1, 'queued'],
          [true, 2, 'queued'],
          [true, 3, 'queued'],
        ]);
        const got = out.map((r) => r.job.id);
        assert.equal(new Set(got).size, 3);
        assert.deepEqual(sorted(got), got, 'ids made in one millisecond still sort in submit order');
        for (const id of got) assert.equal((await getJob(id)).createdAt, t0);
      });

      it('applies a batch in one transaction: an unknown dependsOn in the 3rd job leaves none of the batch', async () => {
        const existing = await submitOne({ payload: 'existing' });
        clock.advance(1);
        const batch = [
          spec({ idempotencyKey: 'batch-1' }),
          spec({ idempotencyKey: 'batch-2', dependsOn: [existing.id] }),
          spec({ dependsOn: ['01ARZ3NDEKTSV4RRFFQ69G5FAV'] }),
          spec({ idempotencyKey: 'batch-4' }),
        ];
        await assert.rejects(store.submit({ jobs: batch }), { name: 'GafferError', code: 'UNKNOWN_DEPENDENCY' });
        assert.deepEqual(ids((await store.listJobs({ limit: 100 })).jobs), [existing.id]);
        assert.deepEqual(await store.queueCounts(), [
          { queue: 'q', counts: { waiting: 0, queued: 1, running: 0, verifying: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 } },
        ]);
        // The rolled-back jobs left no idempotency key and no dependency edge behind.
        const [again] = await store.submit({ jobs: [spec({ idempotencyKey: 'batch-1' })] });
        assert.equal(again?.created, true);
        const cancelled = await store.cancel({ jobId: existing.id });
        assert.deepEqual(cancelled.changes, [change(existing.id, 'cancelled')]);
      });
    });

    describe('idempotency', () => {
      it('returns the existing job for a key seen before, with created=false', async () => {
        const first = await submitOne({ payload: 'first', idempotencyKey: 'k1' });
        clock.advance(5 * SECOND);
        const [again] = await store.submit({ jobs: [spec({ payload: 'second', priority: 9, idempotencyKey: 'k1' })] });
        assert.ok(again);
        assert.equal(again.created, false);
        assert.deepEqual(again.job, first);
        assert.equal((await store.listJobs({ limit: 100 })).jobs.length, 1);
      });

      it('returns the job as it is now, even after it finished', async () => {
        const first = await submitOne({ idempotencyKey: 'k2' });
        await addWorker('w1');
        await complete(await claimOne('w1'), 'done');
        const [again] = await store.submit({ jobs: [spec({ idempotencyKey: 'k2' })] });
        assert.equal(again?.created, false);
        assert.equal(again?.job.id, first.id);
        assert.equal(again?.job.state, 'succeeded');
        assert.equal(again?.job.result, 'done');
      });

      it('dedupes a key repeated inside one batch', async () => {
        const out = await store.submit({ jobs: [spec({ idempotencyKey: 'k3' }), spec({ idempotencyKey: 'k3' }), spec()] });
        assert.deepEqual(out.map((r) => r.created), [true, false, true]);
        assert.equal(out[1]?.job.id, out[0]?.job.id);
        assert.equal((await store.listJobs({ limit: 100 })).jobs.length, 2);
      });
    });

    // ---- Get and list ----

    describe('get and list', () => {
      it('lists newest first, filtered by queue, state and label', async () => {
        await addWorker('wb', { queues: { b: 4 } });
        const [a1, a2, b1, b2, a3, a4] = await submit(
          { queue: 'a', labels: { env: 'prod' } },
          { queue: 'a', labels: { env: 'dev' } },
          { queue: 'b', labels: { env: 'prod' } },
          { queue: 'b' },
          { queue: 'a', labels: { env: 'prod', 'gaffer.io/team': 'x' } },
          { queue: 'a', labels: { 'gaffer.io/team': 'y' } },
        );
        assert.ok(a1 && a2 && b1 && b2 && a3 && a4);
        const running = await claimOne('wb'); // oldest b job: b1
        assert.equal(running.jobId, b1.id);
        const list = async (p: Omit<Parameters<Store['listJobs']>[0], 'limit'>) =>
          ids((await store.listJobs({ ...p, limit: 100 })).jobs);
        assert.deepEqual(await list({}), [a4.id, a3.id, b2.id, b1.id, a2.id, a1.id]);
        assert.deepEqual(await list({ queue: 'a' }), [a4.id, a3.id, a2.id, a1.id]);
        assert.deepEqual(await list({ state: 'running' }), [b1.id]);
        assert.deepEqual(await list({ queue: 'b', state: 'queued' }), [b2.id]);
        assert.deepEqual(await list({ label: { key: 'env', value: 'prod' } }), [a3.id, b1.id, a1.id]);
        assert.deepEqual(await list({ queue: 'a', label: { key: 'env', value: 'prod' } }), [a3.id, a1.id]);
        assert.deepEqual(await list({ label: { key: 'gaffer.io/team', value: 'y' } }), [a4.id]);
        assert.deepEqual(await list({ label: { key: 'env', value: 'staging' } }), []);
        assert.deepEqual(await list({ queue: 'nope' }), []);
        assert.deepEqual(await list({ state: 'failed' }), []);
      });

      it('pages with a cursor, with no duplicates or gaps, even while jobs arrive', async () => {
        const early = await submit({}, {}, {});
        clock.advance(10);
        const late = await submit({}, {}, {}, {});
        const all = sorted([...ids(early), ...ids(late)]).reverse(); // newest first
        const p1 = await store.listJobs({ limit: 3 });
        assert.deepEqual(ids(p1.jobs), all.slice(0, 3));
        assert.ok(p1.nextCursor !== null);
        // New jobs between pages are newer than the cursor: they neither shift nor repeat the rest.
        clock.advance(10);
        await submit({}, {});
        const p2 = await store.listJobs({ limit: 3, cursor: p1.nextCursor });
        assert.deepEqual(ids(p2.jobs), all.slice(3, 6));
        assert.ok(p2.nextCursor !== null);
        const p3 = await store.listJobs({ limit: 3, cursor: p2.nextCursor });
        assert.deepEqual(ids(p3.jobs), all.slice(6));
        assert.equal(p3.nextCursor, null);
        // A page that ends exactly at the last job has no next cursor.
        const exact = await store.listJobs({ limit: 9 });
        assert.equal(exact.jobs.length, 9);
        assert.equal(exact.nextCursor, null);
      });

      it('pages through a filter', async () => {
        const jobs = await submit({ queue: 'a' }, { queue: 'b' }, { queue: 'a' }, { queue: 'b' }, { queue: 'a' }, { queue: 'a' });
        const want = jobs.filter((j) => j.queue === 'a').map((j) => j.id).reverse();
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let i = 0; i < 10; i++) {
          const page = await store.listJobs({ queue: 'a', limit: 2, ...(cursor === undefined ? {} : { cursor }) });
          assert.ok(page.jobs.length <= 2);
          seen.push(...ids(page.jobs));
          if (page.nextCursor === null) break;
          cursor = page.nextCursor;
        }
        assert.deepEqual(seen, want);
      });
    });

    // ---- Claim: what fits where ----

    describe('claim fit', () => {
      it('leases an attempt with everything the worker needs, and the job runs', async () => {
        await addWorker('w1');
        const job = await submitOne({
          payload: { n: 1 },
          deadline: t0 + 10 * MINUTE,
          timeoutMs: 60_000,
          heartbeatTimeoutMs: 10_000,
          requires: { cores: 2, memoryMb: 256 },
          labels: { team: 'a' },
        });
        clock.advance(SECOND);
        const now = t0 + SECOND;
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
          deadline: t0 + 10 * MINUTE,
          labels: { team: 'a' },
        });
        assert.deepEqual(await store.listAttempts({ jobId: job.id }), [
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
        await store.submit({ jobs: Array.from({ length: 70 }, () => spec({ priority: 5, requires: { labels: { zone: 'mars' } } })) });
        clock.advance(1);
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
          clock.advance(1);
          return submitOne(over);
        };
        const low = await submitAt({ priority: 0 });
        const oldNoDeadline = await submitAt({ priority: 5 });
        const lateDeadline = await submitAt({ priority: 5, deadline: t0 + 60 * MINUTE });
        const soonDeadline = await submitAt({ priority: 5, deadline: t0 + 30 * MINUTE });
        const newNoDeadline = await submitAt({ priority: 5 });
        const high = await submitAt({ priority: 9 });
        const order: string[] = [];
        for (let i = 0; i < 6; i++) order.push((await claimOne('w1')).jobId);
        assert.deepEqual(order, ids([high, soonDeadline, lateDeadline, oldNoDeadline, newNoDeadline, low]));
      });

      it('lets a long-waiting low-priority job age past newer higher-priority work', async () => {
        await addWorker('w1');
        const old = await submitOne({ priority: 0 });
        clock.advance(10 * MINUTE); // one point per minute of waiting: 0 + 10 > 5
        await store.heartbeat({ workerId: 'w1' }); // a worker unseen for so long would be offline
        await store.submit({ jobs: Array.from({ length: 70 }, () => spec({ priority: 5 })) });
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
        await store.submit({ jobs: Array.from({ length: blockingHead }, () => spec({ requires: { labels: { pool: 'gone' } } })) });
        clock.advance(1);
        const fits = await submitOne();
        assert.deepEqual(jobIds(await claim(['w1', 'gone'])), [fits.id]);
      });

      it('finds a job that fits behind more older jobs than it reads that require a key no free worker holds', async () => {
        await addWorker('w1', { keys: ['here'] });
        await store.submit({
          jobs: Array.from({ length: blockingHead }, (_, i) => spec({ affinity: { key: `elsewhere-${i}`, mode: 'require' } })),
        });
        clock.advance(1);
        const preferred = await submitOne({ affinity: { key: 'nowhere', mode: 'prefer' } });
        const held = await submitOne({ affinity: { key: 'here', mode: 'require' } });
        assert.deepEqual(sorted(jobIds(await claim('w1'))), sorted(ids([preferred, held])));
      });

      it('holds a job with runAt until the clock passes it, and nextRunAt tells when', async () => {
        await addWorker('w1');
        assert.equal(await store.nextRunAt(), null);
        const later = await submitOne({ runAt: t0 + 5 * SECOND });
        const sooner = await submitOne({ runAt: t0 + 3 * SECOND });
        assert.deepEqual([later.state, later.runAt], ['queued', t0 + 5 * SECOND]);
        assert.equal(await store.nextRunAt(), t0 + 3 * SECOND);
        assert.deepEqual(await claim('w1'), []);
        clock.advance(3 * SECOND - 1);
        assert.deepEqual(await claim('w1'), []);
        clock.advance(1);
        assert.equal(await store.nextRunAt(), t0 + 5 * SECOND);
        assert.deepEqual(jobIds(await claim('w1')), [sooner.id]);
        clock.advance(2 * SECOND);
        assert.equal(await store.nextRunAt(), null);
        assert.deepEqual(jobIds(await claim('w1')), [later.id]);
      });
    });

    // ---- Workers ----

    describe('workers', () => {
      it('gives nothing to a worker not seen within the offline window, until it heartbeats', async () => {
        await addWorker('w1');
        await submitOne({});
        clock.advance(31 * SECOND); // the default offline window is 30 s
        assert.deepEqual(await claim('w1'), []);
        assert.equal((await store.getWorker({ id: 'w1' }))?.state, 'offline');
        await store.heartbeat({ workerId: 'w1' });
        assert.equal((await claim('w1')).length, 1);
      });

      it('registers a worker, making an id when none is given', async () => {
        const w = await store.upsertWorker({
          spec: { name: 'anon', labels: { a: 'b' }, cores: 4, memoryMb: 100, gpuIds: [0], queues: { q: 1 }, keys: ['k'] },
        });
        assert.ok(w.id.length > 0);
        assert.deepEqual(w, {
          id: w.id,
          name: 'anon',
          labels: { a: 'b' },
          cores: 4,
          memoryMb: 100,
          gpuIds: [0],
          queues: { q: 1 },
          keys: ['k'],
          state: 'idle',
          draining: false,
          quarantined: false,
          quarantineReason: null,
          reputation: { valid: 0, invalid: 0, timedOut: 0, streak: 0, soloSinceCheck: 0 },
          checks: {},
          connected: true,
          connectedAt: t0,
          lastSeenAt: t0,
          running: {},
          createdAt: t0,
        });
        assert.deepEqual(await store.getWorker({ id: w.id }), w);
        assert.equal(await store.getWorker({ id: 'nobody' }), null);
      });

      it('gives nothing to draining or disconnected workers, and work again when they return', async () => {
        await addWorker('drain');
        await addWorker('gone');
        const [j1, j2] = await submit({}, {});
        assert.ok(j1 && j2);
        await store.setWorkerDraining({ workerId: 'drain', draining: true });
        await store.disconnectWorker({ workerId: 'gone' });
        assert.deepEqual(await claim(['drain', 'gone']), []);
        await store.setWorkerDraining({ workerId: 'drain', draining: false });
        assert.deepEqual((await claim(['drain', 'gone'], 1)).map((a) => [a.jobId, a.workerId]), [[j1.id, 'drain']]);
        await addWorker('gone'); // reconnects
        assert.deepEqual((await claim('gone')).map((a) => [a.jobId, a.workerId]), [[j2.id, 'gone']]);
      });

      it('refuses to drain an unknown worker', async () => {
        await assert.rejects(store.setWorkerDraining({ workerId: 'nobody', draining: true }), { code: 'WORKER_NOT_FOUND' });
      });

      it('holds and releases affinity keys, and claims follow the keys held now', async () => {
        await addWorker('w1', { keys: ['a'] });
        const job = await submitOne({ affinity: { key: 'sector-9', mode: 'require' } });
        assert.deepEqual(await claim('w1'), []);
        const held = await store.updateWorkerKeys({ workerId: 'w1', hold: ['sector-9', 'a', 'b'] });
        assert.deepEqual(held.keys, ['a', 'sector-9', 'b'], 'unique, in the order first held');
        const a = await claimOne('w1');
        assert.equal(a.jobId, job.id);
        const released = await store.updateWorkerKeys({ workerId: 'w1', hold: ['c'], release: ['a', 'c', 'never-held'] });
        assert.deepEqual(released.keys, ['sector-9', 'b'], 'a key both held and released ends up released');
        assert.deepEqual((await store.getWorker({ id: 'w1' }))?.keys, ['sector-9', 'b']);
        await assert.rejects(store.updateWorkerKeys({ workerId: 'nobody', hold: ['x'] }), { code: 'WORKER_NOT_FOUND' });
      });

      it('refuses to hold more affinity keys than the bound, changing nothing', async () => {
        await addWorker('w1', { keys: ['a'] });
        const many = Array.from({ length: LIMITS.workerKeysMax }, (_, i) => `k${i}`);
        await assert.rejects(store.updateWorkerKeys({ workerId: 'w1', hold: many }), { code: 'INVALID_INPUT' });
        assert.deepEqual((await store.getWorker({ id: 'w1' }))?.keys, ['a']);
      });

      it('gives nothing to a quarantined worker', async () => {
        await addWorker('bad');
        await addWorker('good');
        await submitOne();
        await store.setWorkerQuarantine({ workerId: 'bad', quarantined: true });
        assert.deepEqual(await claim('bad'), []);
        assert.deepEqual((await claim(['bad', 'good'])).map((a) => a.workerId), ['good']);
        assert.equal((await store.getWorker({ id: 'bad' }))?.state, 'quarantined');
      });

      it('lists workers as idle, busy, draining or offline, with running counts per queue', async () => {
        await addWorker('idle', { queues: { a: 2, b: 2 } });
        await addWorker('busy', { queues: { a: 2, b: 2 } });
        await addWorker('drain', { queues: { a: 2, b: 2 } });
        await addWorker('off', { queues: { a: 2, b: 2 } });
        await submit({ queue: 'a' }, { queue: 'a' }, { queue: 'b' }, { queue: 'b' });
        const busy = await claim('busy', 3); // a, a, b in age order
        assert.equal(busy.length, 3);
        const draining = await claimOne('drain'); // the last b
        await store.setWorkerDraining({ workerId: 'drain', draining: true });
        await store.disconnectWorker({ workerId: 'off' });
        const view = async () =>
          Object.fromEntries((await store.listWorkers()).map((w) => [w.id, [w.state, w.running, w.connected, w.draining]]));
        assert.deepEqual(await view(), {
          idle: ['idle', {}, true, false],
          busy: ['busy', { a: 2, b: 1 }, true, false],
          drain: ['draining', { b: 1 }, true, true],
          off: ['offline', {}, false, false],
        });
        for (const a of busy) await complete(a);
        await complete(draining);
        assert.deepEqual(await view(), {
          idle: ['idle', {}, true, false],
          busy: ['idle', {}, true, false],
          drain: ['draining', {}, true, true],
          off: ['offline', {}, false, false],
        });
      });
    });

    // ---- Heartbeats and progress ----

    describe('heartbeat', () => {
      it('extends every lease of the worker in one call and marks leased attempts running', async () => {
        await addWorker('w1');
        await addWorker('w2');
        await submit({ heartbeatTimeoutMs: 10_000 }, { heartbeatTimeoutMs: 10_000 });
        const mine = await claim('w1');
        assert.equal(mine.length, 2);
        await submitOne({ heartbeatTimeoutMs: 10_000 });
        const other = await claimOne('w2');
        clock.advance(4_000);
        const hb = await store.heartbeat({ workerId: 'w1' });
        assert.deepEqual(sorted(hb.extended), sorted(mine.map((a) => a.attemptId)));
        assert.deepEqual(hb.revoked, []);
        for (const a of mine) {
          const at = await attemptOf(a);
          assert.deepEqual(
            [at.state, at.startedAt, at.heartbeatAt, at.leaseExpiresAt],
            ['running', t0 + 4_000, t0 + 4_000, t0 + 14_000],
          );
        }
        const untouched = await attemptOf(other);
        assert.deepEqual([untouched.state, untouched.leaseExpiresAt], ['leased', t0 + 10_000]);
        clock.advance(6_001); // t0 + 10_001: only w2's lease has run out
        const swept = await store.expireAttempts({ limit: 100 });
        assert.deepEqual(swept.endedAttempts, [{ attemptId: other.attemptId, workerId: 'w2', reason: 'LEASE_LOST' }]);
      });

      it('with a list, extends the named current leases and names the rest revoked', async () => {
        await addWorker('w1');
        await addWorker('w2');
        await submit({ heartbeatTimeoutMs: 10_000 }, { heartbeatTimeoutMs: 10_000 }, { heartbeatTimeoutMs: 10_000 });
        const [ok, wrongLease, cancelled] = await claim('w1');
        assert.ok(ok && wrongLease && cancelled);
        await submitOne({ heartbeatTimeoutMs: 10_000 });
        const elsewhere = await claimOne('w2');
        await store.cancel({ jobId: cancelled.jobId });
        clock.advance(2_000);
        const hb = await store.heartbeat({
          workerId: 'w1',
          attempts: [
            ref(ok),
            { attemptId: wrongLease.attemptId, lease: 'f'.repeat(32) },
            ref(cancelled),
            ref(elsewhere),
            { attemptId: '01ARZ3NDEKTSV4RRFFQ69G5FAV', lease: 'f'.repeat(32) },
          ],
        });
        assert.deepEqual(hb.extended, [ok.attemptId]);
        assert.deepEqual(sorted(hb.revoked), sorted([wrongLease.attemptId, cancelled.attemptId, elsewhere.attemptId, '01ARZ3NDEKTSV4RRFFQ69G5FAV']));
        assert.equal((await attemptOf(ok)).leaseExpiresAt, t0 + 12_000);
        assert.equal((await attemptOf(wrongLease)).leaseExpiresAt, t0 + 10_000);
        assert.equal((await attemptOf(elsewhere)).leaseExpiresAt, t0 + 10_000);
        assert.equal((await attemptOf(cancelled)).state, 'cancelled');
      });

      it('does not revive a lease that has already run out', async () => {
        await addWorker('w1');
        await submitOne({ heartbeatTimeoutMs: 10_000 });
        const a = await claimOne('w1');
        clock.advance(10_001);
        assert.deepEqual(await store.heartbeat({ workerId: 'w1' }), { extended: [], revoked: [] });
        assert.deepEqual(await store.heartbeat({ workerId: 'w1', attempts: [ref(a)] }), { extended: [], revoked: [a.attemptId] });
        const swept = await store.expireAttempts({ limit: 100 });
        assert.deepEqual(swept.endedAttempts.map((e) => e.attemptId), [a.attemptId]);
      });

      it('says when a heartbeat brings back a worker marked disconnected', async () => {
        await addWorker('w1');
        await store.disconnectWorker({ workerId: 'w1' });
        assert.deepEqual(await store.heartbeat({ workerId: 'w1' }), { extended: [], revoked: [], revived: true });
        assert.deepEqual(await store.heartbeat({ workerId: 'w1', attempts: [] }), { extended: [], revoked: [] });
        assert.equal((await store.getWorker({ id: 'w1' }))?.connected, true);
      });

      it('refuses a heartbeat from an unknown worker', async () => {
        await assert.rejects(store.heartbeat({ workerId: 'nobody' }), { code: 'WORKER_NOT_FOUND' });
      });

      it('records progress under the current lease, which is also a heartbeat', async () => {
        await addWorker('w1');
        await submitOne({ heartbeatTimeoutMs: 10_000 });
        const a = await claimOne('w1');
        clock.advance(3_000);
        await store.progress({ ...ref(a), progress: { pct: 50 } });
        const at = await attemptOf(a);
        assert.deepEqual([at.state, at.progress, at.startedAt, at.leaseExpiresAt], ['running', { pct: 50 }, t0 + 3_000, t0 + 13_000]);
        await assert.rejects(store.progress({ attemptId: a.attemptId, lease: 'f'.repeat(32), progress: 1 }), { code: 'STALE_LEASE' });
        await assert.rejects(store.progress({ attemptId: 'nope', lease: a.lease, progress: 1 }), { code: 'ATTEMPT_NOT_FOUND' });
        assert.deepEqual((await attemptOf(a)).progress, { pct: 50 });
      });
    });

    // ---- Complete: fencing ----

    describe('complete', () => {
      it('accepts the result under the current lease, once', async () => {
        await addWorker('w1');
        const job = await submitOne();
        const a = await claimOne('w1');
        clock.advance(2_000);
        const out = await complete(a, { proof: 'abc' });
        assert.deepEqual(out.changes, [change(job.id, 'succeeded')]);
        assert.deepEqual(
          [out.job.state, out.job.result, out.job.error, out.job.live, out.job.want, out.job.finishedAt],
          ['succeeded', { proof: 'abc' }, null, 0, 0, t0 + 2_000],
        );
        assert.deepEqual(await getJob(job.id), out.job);
        const at = await attemptOf(a);
        assert.equal(at.state, 'completed');
        assert.equal(at.finishedAt, t0 + 2_000);
        assert.equal(typeof at.resultHash, 'string');
        // At most one accepted result: the same lease cannot report again, either way.
        await assert.rejects(complete(a, { proof: 'other' }), { code: 'STALE_LEASE' });
        await assert.rejects(fail(a), { code: 'STALE_LEASE' });
        assert.deepEqual(await getJob(job.id), out.job);
      });

      it('refuses a wrong lease with STALE_LEASE and changes nothing', async () => {
        await addWorker('w1');
        const job = await submitOne();
        const a = await claimOne('w1');
        await assert.rejects(store.complete({ attemptId: a.attemptId, lease: 'f'.repeat(32), result: 1 }), { code: 'STALE_LEASE' });
        await assert.rejects(store.fail({ attemptId: a.attemptId, lease: 'f'.repeat(32), error: { code: 'X', message: 'x' }, retryable: false }), { code: 'STALE_LEASE' });
        assert.equal((await getJob(job.id)).state, 'running');
        assert.equal((await attemptOf(a)).state, 'leased');
        assert.equal((await complete(a, 1)).job.state, 'succeeded');
      });

      it('refuses a lease that ran out but was not swept yet', async () => {
        await addWorker('w1');
        const job = await submitOne({ heartbeatTimeoutMs: 10_000 });
        const a = await claimOne('w1');
        clock.advance(10_001);
        await assert.rejects(complete(a), { code: 'STALE_LEASE' });
        await assert.rejects(fail(a), { code: 'STALE_LEASE' });
        assert.equal((await getJob(job.id)).state, 'running');
        assert.equal((await attemptOf(a)).state, 'leased', 'the sweeper, not the refusal, ends the attempt');
      });

      it("refuses the attempt of a cancelled job", async () => {
        await addWorker('w1');
        const job = await submitOne();
        const a = await claimOne('w1');
        await store.cancel({ jobId: job.id });
        await assert.rejects(complete(a), { code: 'STALE_LEASE' });
        await assert.rejects(fail(a), { code: 'STALE_LEASE' });
        assert.equal((await getJob(job.id)).state, 'cancelled');
      });

      it('answers ATTEMPT_NOT_FOUND for an attempt that never existed', async () => {
        await assert.rejects(store.complete({ attemptId: '01ARZ3NDEKTSV4RRFFQ69G5FAV', lease: 'f'.repeat(32), result: 1 }), { code: 'ATTEMPT_NOT_FOUND' });
        await assert.rejects(store.fail({ attemptId: '01ARZ3NDEKTSV4RRFFQ69G5FAV', lease: 'f'.repeat(32), error: { code: 'X', message: 'x' }, retryable: true }), { code: 'ATTEMPT_NOT_FOUND' });
      });

      it('keeps a stale worker that wakes after its lease was lost from overwriting the new attempt', async () => {
        await addWorker('w1');
        await addWorker('w2');
        const job = await submitOne({ heartbeatTimeoutMs: 10_000, backoff: { baseMs: 1_000, maxMs: 1_000 } });
        const stale = await claimOne('w1');
        clock.advance(10_001);
        await store.expireAttempts({ limit: 100 });
        clock.advance(1_000); // past the backoff of at most 1 s
        const fresh = await claimOne('w2');
        assert.equal(fresh.attempt, 2);
        await assert.rejects(complete(stale, 'stale'), { code: 'STALE_LEASE' });
        assert.equal((await complete(fresh, 'fresh')).job.result, 'fresh');
        await assert.rejects(complete(stale, 'stale'), { code: 'STALE_LEASE' });
        assert.deepEqual((await store.listAttempts({ jobId: job.id })).map((x) => [x.id, x.state]), [
          [stale.attemptId, 'lost'],
          [fresh.attemptId, 'completed'],
        ]);
        assert.equal((await getJob(job.id)).result, 'fresh');
      });
    });

    // ---- Fail and retry ----

    describe('fail and retry', () => {
      it('re-queues a retryable failure with exponential backoff until maxAttempts, then fails with the last error', async () => {
        await addWorker('w1');
        const job = await submitOne({ maxAttempts: 3, backoff: { baseMs: 1_000, maxMs: 60_000 } });
        for (let n = 1; n <= 2; n++) {
          const a = await claimOne('w1');
          assert.equal(a.attempt, n);
          clock.advance(100);
          const out = await fail(a, `boom ${n}`);
          const now = clock.now();
          assert.deepEqual(out.changes, [change(job.id, 'queued')]);
          assert.deepEqual(
            [out.job.state, out.job.failures, out.job.live, out.job.want, out.job.finishedAt],
            ['queued', n, 0, 1, null],
          );
          assert.deepEqual(out.job.error, { code: 'HANDLER_ERROR', message: `boom ${n}`, attemptId: a.attemptId });
          // The n-th failure waits between half and all of baseMs * 2^(n-1): [500, 1000], then [1000, 2000].
          const fullMs = 1_000 * 2 ** (n - 1);
          const delayMs = out.job.runAt - now;
          assert.ok(delayMs >= fullMs / 2 && delayMs <= fullMs, `delay ${delayMs} in [${fullMs / 2}, ${fullMs}]`);
          assert.equal(await store.nextRunAt(), out.job.runAt);
          clock.advance(delayMs - 1);
          assert.deepEqual(await claim('w1'), [], 'not before run_at');
          clock.advance(1);
        }
        const last = await claimOne('w1');
        assert.equal(last.attempt, 3);
        const out = await fail(last, 'boom 3');
        assert.deepEqual(out.changes, [change(job.id, 'failed')]);
        assert.deepEqual(
          [out.job.state, out.job.failures, out.job.attempts, out.job.want, out.job.finishedAt],
          ['failed', 3, 3, 0, clock.now()],
        );
        assert.deepEqual(out.job.error, { code: 'HANDLER_ERROR', message: 'boom 3', attemptId: last.attemptId });
        assert.deepEqual(await claim('w1'), []);
        assert.deepEqual((await store.listAttempts({ jobId: job.id })).map((x) => [x.state, x.error?.message]), [
          ['failed', 'boom 1'],
          ['failed', 'boom 2'],
          ['failed', 'boom 3'],
        ]);
      });

      it('never waits longer than backoff.maxMs', async () => {
        await addWorker('w1');
        await submitOne({ maxAttempts: 5, backoff: { baseMs: 1_000, maxMs: 1_500 } });
        // Full delays: 1000, then min(1500, 2000) = 1500, then min(1500, 4000) = 1500.
        for (const fullMs of [1_000, 1_500, 1_500]) {
          const out = await fail(await claimOne('w1'));
          const delayMs = out.job.runAt - clock.now();
          assert.ok(delayMs >= fullMs / 2 && delayMs <= fullMs, `delay ${delayMs} in [${fullMs / 2}, ${fullMs}]`);
          clock.advance(delayMs);
        }
      });

      it('ends the job at once on a non-retryable failure', async () => {
        await addWorker('w1');
        const job = await submitOne({ maxAttempts: 5 });
        const a = await claimOne('w1');
        const out = await fail(a, 'bad input', false);
        assert.deepEqual(out.changes, [change(job.id, 'failed')]);
        assert.deepEqual([out.job.state, out.job.failures, out.job.finishedAt], ['failed', 1, t0]);
        assert.deepEqual(out.job.error, { code: 'HANDLER_ERROR', message: 'bad input', attemptId: a.attemptId });
        assert.deepEqual(await claim('w1'), []);
      });

      it('puts a failed job back in the queue with a fresh retry budget', async () => {
        await addWorker('w1');
        const job = await submitOne({ maxAttempts: 2, backoff: { baseMs: 0, maxMs: 0 } });
        await fail(await claimOne('w1'));
        const failed = (await fail(await claimOne('w1'))).job;
        assert.deepEqual([failed.state, failed.failures], ['failed', 2]);
        clock.advance(MINUTE);
        await store.heartbeat({ workerId: 'w1' }); // a worker unseen for a minute would be offline
        const out = await store.retry({ jobId: job.id });
        assert.deepEqual(out.changes, [change(job.id, 'queued')]);
        assert.deepEqual(
          [out.job.state, out.job.failures, out.job.error, out.job.finishedAt, out.job.want, out.job.runAt],
          ['queued', 0, null, null, 1, t0 + MINUTE],
        );
        const a = await claimOne('w1');
        assert.equal(a.attempt, 3);
        const again = await fail(a);
        assert.deepEqual([again.job.state, again.job.failures], ['queued', 1], 'one failure of a fresh budget of 2 retries');
      });

      it('retries a cancelled job', async () => {
        const job = await submitOne();
        await store.cancel({ jobId: job.id });
        const out = await store.retry({ jobId: job.id });
        assert.deepEqual([out.job.state, out.job.error, out.job.finishedAt], ['queued', null, null]);
      });

      it('refuses to retry a job that has not ended, or succeeded', async () => {
        await addWorker('w1');
        const [succeeded, running, queued] = await submit({}, {}, {});
        assert.ok(succeeded && running && queued);
        const got = await claim('w1', 2);
        assert.deepEqual(jobIds(got), [succeeded.id, running.id]);
        await complete(got[0]!);
        await assert.rejects(store.retry({ jobId: succeeded.id }), { code: 'INVALID_STATE' });
        await assert.rejects(store.retry({ jobId: running.id }), { code: 'INVALID_STATE' });
        await assert.rejects(store.retry({ jobId: queued.id }), { code: 'INVALID_STATE' });
        await assert.rejects(store.retry({ jobId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }), { code: 'JOB_NOT_FOUND' });
      });
    });

    // ---- Sweepers ----

    describe('expireAttempts', () => {
      it('marks an attempt lost after its heartbeat timeout (LEASE_LOST) and re-queues the job', async () => {
        await addWorker('w1');
        const job = await submitOne({ heartbeatTimeoutMs: 10_000, timeoutMs: MINUTE, backoff: { baseMs: 1_000, maxMs: 1_000 } });
        const a = await claimOne('w1');
        clock.advance(9_999);
        assert.deepEqual(await store.expireAttempts({ limit: 100 }), { changes: [], endedAttempts: [] });
        clock.advance(2); // t0 + 10_001: the lease ran out at t0 + 10_000
        const swept = await store.expireAttempts({ limit: 100 });
        assert.deepEqual(swept.endedAttempts, [{ attemptId: a.attemptId, workerId: 'w1', reason: 'LEASE_LOST' }]);
        assert.deepEqual(swept.changes, [change(job.id, 'queued')]);
        const at = await attemptOf(a);
        assert.deepEqual([at.state, at.finishedAt, at.error?.code, at.error?.attemptId], ['lost', t0 + 10_001, 'LEASE_LOST', a.attemptId]);
        const after = await getJob(job.id);
        assert.deepEqual([after.state, after.failures, after.live, after.want, after.error?.code], ['queued', 1, 0, 1, 'LEASE_LOST']);
        // A lost lease is the worker's failure, not the job's: it goes back at once, without backoff.
        assert.equal(after.runAt, t0 + 10_001);
        assert.deepEqual(await store.expireAttempts({ limit: 100 }), { changes: [], endedAttempts: [] }, 'once only');
      });

      it('gives a worker whose lease was lost for silence nothing new until it heartbeats again', async () => {
        await addWorker('silent');
        const job = await submitOne({ heartbeatTimeoutMs: 10_000 });
        await claimOne('silent');
        clock.advance(10_001);
        await store.expireAttempts({ limit: 100 });
        assert.deepEqual(await claim('silent'), [], 'not handed back the job it just lost');
        assert.equal((await store.getWorker({ id: 'silent' }))?.state, 'offline');
        await store.heartbeat({ workerId: 'silent' });
        const again = await claimOne('silent');
        assert.deepEqual([again.jobId, again.attempt], [job.id, 2]);
      });

      it('fails an attempt that runs past timeoutMs (TIMEOUT) even while it heartbeats, and re-queues the job', async () => {
        await addWorker('w1');
        const job = await submitOne({ heartbeatTimeoutMs: 10_000, timeoutMs: 25_000 });
        const a = await claimOne('w1');
        for (let i = 0; i < 4; i++) {
          clock.advance(5_000);
          await store.heartbeat({ workerId: 'w1' });
        }
        clock.advance(4_999); // t0 + 24_999
        assert.deepEqual((await store.expireAttempts({ limit: 100 })).endedAttempts, []);
        clock.advance(2); // t0 + 25_001; the lease holds until t0 + 30_000
        const swept = await store.expireAttempts({ limit: 100 });
        assert.deepEqual(swept.endedAttempts, [{ attemptId: a.attemptId, workerId: 'w1', reason: 'TIMEOUT' }]);
        assert.deepEqual(swept.changes, [change(job.id, 'queued')]);
        const at = await attemptOf(a);
        assert.deepEqual([at.state, at.error?.code], ['failed', 'TIMEOUT']);
        const after = await getJob(job.id);
        assert.deepEqual([after.state, after.failures, after.error?.code], ['queued', 1, 'TIMEOUT']);
      });

      it('tells a lost attempt and a timed-out one apart in the same sweep', async () => {
        await addWorker('silent');
        await addWorker('hung');
        const lostJob = await submitOne({ heartbeatTimeoutMs: 10_000 });
        const lost = await claimOne('silent');
        const hungJob = await submitOne({ heartbeatTimeoutMs: 10_000, timeoutMs: 5_000 });
        const hung = await claimOne('hung');
        clock.advance(4_000);
        await store.heartbeat({ workerId: 'hung' }); // its lease now runs to t0 + 14_000
        clock.advance(6_001); // t0 + 10_001
        const swept = await store.expireAttempts({ limit: 100 });
        assert.deepEqual(sorted(swept.endedAttempts.map((e) => `${e.attemptId}:${e.reason}`)), sorted([
          `${lost.attemptId}:LEASE_LOST`,
          `${hung.attemptId}:TIMEOUT`,
        ]));
        assert.deepEqual(byJobId(swept.changes), byJobId([change(lostJob.id, 'queued'), change(hungJob.id, 'queued')]));
        assert.equal((await attemptOf(lost)).state, 'lost');
        assert.equal((await attemptOf(hung)).state, 'failed');
      });

      it('counts a lost attempt against the retry budget', async () => {
        await addWorker('w1');
        const job = await submitOne({ heartbeatTimeoutMs: 10_000, maxAttempts: 1 });
        await claimOne('w1');
        clock.advance(10_001);
        const swept = await store.expireAttempts({ limit: 100 });
        assert.deepEqual(swept.changes, [change(job.id, 'failed')]);
        const after = await getJob(job.id);
        assert.deepEqual([after.state, after.error?.code, after.finishedAt], ['failed', 'LEASE_LOST', t0 + 10_001]);
      });

      it('lets a worker that reconnects within its heartbeat timeout keep its attempts', async () => {
        await addWorker('w1');
        const job = await submitOne({ heartbeatTimeoutMs: 10_000 });
        const a = await claimOne('w1');
        clock.advance(3_000);
        await store.disconnectWorker({ workerId: 'w1' });
        assert.equal((await store.getWorker({ id: 'w1' }))?.state, 'offline');
        clock.advance(5_000); // t0 + 8_000: the leases are kept while disconnected
        assert.deepEqual((await store.expireAttempts({ limit: 100 })).endedAttempts, []);
        const back = await addWorker('w1');
        assert.deepEqual([back.connected, back.running], [true, { q: 1 }]);
        assert.equal((await attemptOf(a)).state, 'leased');
        assert.deepEqual(await store.heartbeat({ workerId: 'w1', attempts: [ref(a)] }), { extended: [a.attemptId], revoked: [] });
        assert.equal((await attemptOf(a)).leaseExpiresAt, t0 + 18_000);
        clock.advance(7_000); // t0 + 15_000: past the first lease, within the extended one
        assert.deepEqual((await store.expireAttempts({ limit: 100 })).endedAttempts, []);
        assert.equal((await complete(a, 'kept')).job.result, 'kept');
        assert.equal((await store.listAttempts({ jobId: job.id })).length, 1, 'nothing was rerun');
      });
    });

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
        clock.advance(1_000);
        const out = await store.cancel({ jobId: parent.id, reason: 'no longer needed' });
        assert.deepEqual([out.job.state, out.job.error, out.job.live, out.job.want, out.job.finishedAt], [
          'cancelled',
          { code: 'CANCELLED', message: 'no longer needed' },
          0,
          0,
          t0 + 1_000,
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
          assert.deepEqual([at.state, at.finishedAt], ['cancelled', t0 + 1_000]);
        }
        const c = await getJob(child.id);
        assert.deepEqual([c.state, c.error?.code, c.error?.jobId], ['cancelled', 'DEPENDENCY_CANCELLED', parent.id]);
        const g = await getJob(grandchild.id);
        assert.deepEqual([g.state, g.error?.code, g.error?.jobId], ['cancelled', 'DEPENDENCY_CANCELLED', child.id]);
        assert.equal((await getJob(bystander.id)).state, 'queued');
        assert.deepEqual((await store.listWorkers()).map((w) => [w.id, w.state]).sort(), [['w1', 'idle'], ['w2', 'idle']]);
      });

      it('cancels a queued job, and a second cancel changes nothing', async () => {
        const job = await submitOne();
        const out = await store.cancel({ jobId: job.id });
        assert.deepEqual(out.changes, [change(job.id, 'cancelled')]);
        assert.equal(out.job.error?.code, 'CANCELLED');
        const again = await store.cancel({ jobId: job.id });
        assert.deepEqual(again, { job: out.job, changes: [] });
      });

      it('refuses to cancel a finished job with INVALID_STATE', async () => {
        await addWorker('w1');
        const [done, failed] = await submit({}, { maxAttempts: 1 });
        assert.ok(done && failed);
        const [a, b] = await claim('w1');
        await complete(a!);
        await fail(b!);
        const expired = await submitOne({ deadline: t0 + SECOND });
        clock.advance(SECOND + 1);
        await store.expireDeadlines({ limit: 100 });
        for (const job of [done, failed, expired]) {
          await assert.rejects(store.cancel({ jobId: job.id }), { code: 'INVALID_STATE' });
        }
        assert.deepEqual([(await getJob(done.id)).state, (await getJob(failed.id)).state, (await getJob(expired.id)).state], [
          'succeeded',
          'failed',
          'expired',
        ]);
        await assert.rejects(store.cancel({ jobId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }), { code: 'JOB_NOT_FOUND' });
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
        clock.advance(1_000);
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
          assert.deepEqual([j.state, j.error?.code, j.error?.jobId, j.finishedAt], ['failed', 'DEPENDENCY_FAILED', parentId, t0]);
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
        clock.advance(1_000);
        const orphan = await submitOne({ dependsOn: [good.id, bad.id] });
        assert.deepEqual([orphan.state, orphan.error?.code, orphan.error?.jobId, orphan.finishedAt, orphan.want], [
          'failed',
          'DEPENDENCY_FAILED',
          bad.id,
          t0 + 1_000,
          0,
        ]);
        const ready = await submitOne({ dependsOn: [good.id] });
        assert.deepEqual([ready.state, ready.pendingParents, ready.want], ['queued', 0, 1]);
      });

      it('creates a job whose parent was already cancelled as cancelled, as the cascade would', async () => {
        await addWorker('w1');
        const parent = await submitOne();
        await store.cancel({ jobId: parent.id });
        const child = await submitOne({ dependsOn: [parent.id] });
        assert.deepEqual([child.state, child.error?.code, child.error?.jobId, child.finishedAt, child.want], [
          'cancelled',
          'DEPENDENCY_CANCELLED',
          parent.id,
          t0,
          0,
        ]);
        assert.deepEqual(await claim('w1'), []);
      });
    });

    // ---- Deadlines ----

    describe('deadlines', () => {
      it('ends a job not started by its deadline as expired, and fails its dependants', async () => {
        const job = await submitOne({ deadline: t0 + MINUTE });
        const child = await submitOne({ dependsOn: [job.id] });
        clock.advance(MINUTE - 1);
        assert.deepEqual(await store.expireDeadlines({ limit: 100 }), { changes: [], endedAttempts: [] });
        clock.advance(2); // t0 + MINUTE + 1
        const swept = await store.expireDeadlines({ limit: 100 });
        assert.deepEqual(byJobId(swept.changes), byJobId([change(job.id, 'expired'), change(child.id, 'failed')]));
        assert.deepEqual(swept.endedAttempts, []);
        const j = await getJob(job.id);
        assert.deepEqual([j.state, j.error?.code, j.finishedAt, j.want], ['expired', 'DEADLINE_EXCEEDED', t0 + MINUTE + 1, 0]);
        const c = await getJob(child.id);
        assert.deepEqual([c.state, c.error?.code, c.error?.jobId], ['failed', 'DEPENDENCY_FAILED', job.id]);
      });

      it('does not start a job whose deadline has passed, even before the sweeper ran', async () => {
        await addWorker('w1');
        const job = await submitOne({ deadline: t0 + MINUTE });
        clock.advance(MINUTE + 1);
        assert.deepEqual(await claim('w1'), []);
        assert.equal((await getJob(job.id)).state, 'queued');
      });

      it('expires a waiting job at its own deadline', async () => {
        const parent = await submitOne({ queue: 'nobody-serves-this' });
        const child = await submitOne({ dependsOn: [parent.id], deadline: t0 + SECOND });
        clock.advance(SECOND + 1);
        const swept = await store.expireDeadlines({ limit: 100 });
        assert.deepEqual(swept.changes, [change(child.id, 'expired')]);
        assert.equal((await getJob(parent.id)).state, 'queued');
      });

      it('leaves a job that started before its deadline running', async () => {
        await addWorker('w1');
        const job = await submitOne({ deadline: t0 + MINUTE, heartbeatTimeoutMs: 10 * MINUTE });
        const a = await claimOne('w1');
        clock.advance(2 * MINUTE);
        assert.deepEqual((await store.expireDeadlines({ limit: 100 })).changes, []);
        assert.equal((await getJob(job.id)).state, 'running');
        assert.equal((await complete(a)).job.state, 'succeeded');
      });
    });

    // ---- Replicas and quorum ----

    describe('replicas and quorum', () => {
      async function threeReplicas(): Promise<{ job: Job; attempts: Assignment[] }> {
        for (const id of ['w1', 'w2', 'w3']) await addWorker(id);
        const job = await submitOne({ replicas: 3, quorum: 2 });
        const attempts = await claim(['w1', 'w2', 'w3']);
        assert.equal(attempts.length, 3);
        return { job, attempts };
      }

      it('succeeds with the result two of three agree on, and rejects the one that disagrees', async () => {
        const { job, attempts } = await threeReplicas();
        const [a, b, c] = attempts as [Assignment, Assignment, Assignment];
        const r1 = await complete(a, { x: 1, y: [1, 2] });
        assert.deepEqual([r1.job.state, r1.job.live, r1.changes], ['running', 2, []]);
        const r2 = await complete(b, { x: 2, y: [1, 2] });
        assert.deepEqual([r2.job.state, r2.job.live, r2.changes], ['running', 1, []]);
        // The same value with its keys in another order: results compare by canonical JSON.
        const r3 = await complete(c, { y: [1, 2], x: 1 });
        assert.deepEqual(r3.changes, [change(job.id, 'succeeded')]);
        assert.deepEqual([r3.job.state, r3.job.result, r3.job.live], ['succeeded', { x: 1, y: [1, 2] }, 0]);
        assert.deepEqual((await store.listAttempts({ jobId: job.id })).map((x) => [x.id, x.state]).sort(), [
          [a.attemptId, 'completed'],
          [b.attemptId, 'rejected'],
          [c.attemptId, 'completed'],
        ].sort());
      });

      it('cancels the remaining live replica once two agree', async () => {
        const { job, attempts } = await threeReplicas();
        const [a, b, c] = attempts as [Assignment, Assignment, Assignment];
        await complete(a, 'same');
        const out = await complete(b, 'same');
        assert.deepEqual(out.changes, [change(job.id, 'succeeded', [{ attemptId: c.attemptId, workerId: c.workerId }])]);
        assert.equal(out.job.result, 'same');
        assert.equal((await attemptOf(c)).state, 'cancelled');
        await assert.rejects(complete(c, 'same'), { code: 'STALE_LEASE' });
      });

      it('does not count votes from before a retry', async () => {
        const { job, attempts } = await threeReplicas();
        const [a] = attempts as [Assignment, Assignment, Assignment];
        await complete(a, 'old');
        await store.cancel({ jobId: job.id });
        await store.retry({ jobId: job.id });
        for (const id of ['w4', 'w5']) await addWorker(id);
        const fresh = await claim(['w4', 'w5']);
        assert.equal(fresh.length, 2);
        const out = await complete(fresh[0]!, 'old');
        assert.equal(out.job.state, 'running', 'one vote of this round is not a quorum of two');
        assert.equal((await attemptOf(a)).state, 'rejected');
      });

      it('adds replicas up to the bound when no quorum is reached, then fails NO_QUORUM', async () => {
        const bound = 3 + EXTRA_REPLICAS_MAX;
        const workers = Array.from({ length: bound }, (_, i) => `w${i + 1}`);
        for (const id of workers) await addWorker(id);
        const job = await submitOne({ replicas: 3, quorum: 2 });
        const first = await claim(workers);
        assert.equal(first.length, 3);
        const used = new Set(first.map((a) => a.workerId));
        let n = 0;
        for (const a of first.slice(0, 2)) await complete(a, `answer ${++n}`);
        let out = await complete(first[2]!, `answer ${++n}`);
        for (let extra = 1; extra <= EXTRA_REPLICAS_MAX; extra++) {
          assert.deepEqual(out.changes, [change(job.id, 'queued')], `no quorum after ${n}: one more replica`);
          assert.deepEqual([out.job.state, out.job.want, out.job.live], ['queued', 1, 0]);
          const more = await claim(workers);
          assert.equal(more.length, 1);
          assert.ok(!used.has(more[0]!.workerId), 'an added replica goes to a worker that has not run the job');
          used.add(more[0]!.workerId);
          out = await complete(more[0]!, `answer ${++n}`);
        }
        assert.deepEqual(out.changes, [change(job.id, 'failed')]);
        assert.deepEqual([out.job.state, out.job.error?.code, out.job.attempts, out.job.result], ['failed', 'NO_QUORUM', bound, null]);
        assert.deepEqual((await store.listAttempts({ jobId: job.id })).map((x) => x.state), Array(bound).fill('rejected'));
        assert.deepEqual(await claim(workers), []);
      });

      it('accepts when an added replica breaks the tie', async () => {
        for (const id of ['w1', 'w2', 'w3', 'w4']) await addWorker(id);
        const job = await submitOne({ replicas: 3, quorum: 2 });
        const [a, b, c] = (await claim(['w1', 'w2', 'w3', 'w4'])) as [Assignment, Assignment, Assignment];
        await complete(a, 'A');
        await complete(b, 'B');
        assert.equal((await complete(c, 'C')).job.state, 'queued');
        const d = await claimOne(['w1', 'w2', 'w3', 'w4']);
        const out = await complete(d, 'B');
        assert.deepEqual([out.job.state, out.job.result], ['succeeded', 'B']);
        assert.deepEqual((await store.listAttempts({ jobId: job.id })).map((x) => [x.id, x.state]).sort(), [
          [a.attemptId, 'rejected'],
          [b.attemptId, 'completed'],
          [c.attemptId, 'rejected'],
          [d.attemptId, 'completed'],
        ].sort());
      });
    });

    // ---- Counts ----

    describe('queueCounts', () => {
      it('counts jobs per queue and state', async () => {
        assert.deepEqual(await store.queueCounts(), []);
        await addWorker('w1', { queues: { a: 4 } });
        const [a1, , , a4] = await submit({ queue: 'a' }, { queue: 'a' }, { queue: 'a' }, { queue: 'a' });
        assert.ok(a1 && a4);
        const [x, y] = await claim('w1', 2); // a1, a2 run
        await complete(x!); // a1 succeeded, a2 running, a3 a4 queued
        assert.ok(y);
        const [, b2] = await submit({ queue: 'b', dependsOn: [a4.id] }, { queue: 'b' });
        assert.ok(b2);
        await store.cancel({ jobId: b2.id });
        const counts = (await store.queueCounts()).sort((p, q) => (p.queue < q.queue ? -1 : 1));
        const zero = { waiting: 0, queued: 0, running: 0, verifying: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 };
        assert.deepEqual(counts, [
          { queue: 'a', counts: { ...zero, queued: 2, running: 1, succeeded: 1 } },
          { queue: 'b', counts: { ...zero, waiting: 1, cancelled: 1 } },
        ]);
      });
    });

    describe('queueStats', () => {
      // 21 jobs leased together at t0 to one worker; attempt i (1..19) completes i s later, the 20th
      // fails at 20 s and the 21st is cancelled while running (cancelled attempts are not counted).
      async function runTwentyOne(): Promise<void> {
        await addWorker('w1', { queues: { a: 21 } });
        await submit(...Array.from({ length: 21 }, () => ({ queue: 'a', maxAttempts: 1 })));
        const leased = await claim('w1');
        assert.equal(leased.length, 21);
        for (let i = 1; i <= 20; i++) {
          clock.advance(SECOND);
          if (i < 20) await complete(leased[i - 1]!);
          else await fail(leased[i - 1]!);
        }
        await store.cancel({ jobId: leased[20]!.jobId });
      }

      it('counts the attempts finished since a time, with the mean and nearest-rank p95 of the completed ones', async () => {
        await runTwentyOne();
        const stats = (since: number, sampleMaxRows = 1000) => store.queueStats({ queues: ['a', 'b'], sinceMs: since, sampleMaxRows });
        // All of them: completed run times 1..19 s, mean 10 s, p95 at rank ceil(0.95 * 19) = 19, so 19 s.
        assert.deepEqual(await stats(t0), [
          { queue: 'a', completed: 19, failed: 1, runTimeMeanMs: 10_000, runTimeP95Ms: 19_000, sampledSinceMs: t0 },
          { queue: 'b', completed: 0, failed: 0, runTimeMeanMs: null, runTimeP95Ms: null, sampledSinceMs: t0 },
        ]);
        // The 1 s attempt finished at t0 + 1000: inclusive at that time, left out 1 ms later.
        assert.equal((await stats(t0 + SECOND))[0]?.completed, 19);
        // 2..19 s: mean 10.5 s; p95 at rank ceil(0.95 * 18) = 18, so 19 s.
        assert.deepEqual((await stats(t0 + SECOND + 1))[0], {
          queue: 'a', completed: 18, failed: 1, runTimeMeanMs: 10_500, runTimeP95Ms: 19_000, sampledSinceMs: t0 + SECOND + 1,
        });
      });

      it('reads only the newest attempts when the sample bound cuts, and says from when', async () => {
        await runTwentyOne();
        // The newest 5 finished at 16..20 s: completed 16..19 s (mean 17.5 s, p95 rank 4 of 4), one failed.
        const [a] = await store.queueStats({ queues: ['a'], sinceMs: t0, sampleMaxRows: 5 });
        assert.deepEqual(a, {
          queue: 'a', completed: 4, failed: 1, runTimeMeanMs: 17_500, runTimeP95Ms: 19_000, sampledSinceMs: t0 + 16 * SECOND,
        });
      });

      it('counts a lost attempt as failed', async () => {
        await addWorker('w1', { queues: { a: 1 } });
        await submitOne({ queue: 'a', heartbeatTimeoutMs: 10_000, maxAttempts: 1 });
        await claimOne('w1');
        clock.advance(10_001);
        await store.expireAttempts({ limit: 100 });
        const [a] = await store.queueStats({ queues: ['a'], sinceMs: t0, sampleMaxRows: 100 });
        assert.deepEqual([a?.completed, a?.failed, a?.runTimeMeanMs], [0, 1, null]);
      });
    });

    describe('listLiveAttempts and ping', () => {
      it('lists the attempts a worker holds now, oldest first, and nothing for an unknown worker', async () => {
        await addWorker('w1');
        await addWorker('w2', { queues: { q: 1 } });
        await submit({}, {}, {});
        const [first, second] = await claim('w1', 2);
        assert.ok(first && second);
        clock.advance(1);
        const other = await claimOne('w2');
        await complete(first);
        assert.deepEqual(ids(await store.listLiveAttempts({ workerId: 'w1' })), [second.attemptId]);
        const [live] = await store.listLiveAttempts({ workerId: 'w2' });
        assert.deepEqual([live?.id, live?.jobId, live?.state], [other.attemptId, other.jobId, 'leased']);
        assert.deepEqual(await store.listLiveAttempts({ workerId: 'nobody' }), []);
      });

      it('answers a ping', async () => {
        await store.ping();
      });
    });

    describe('text no store can hold', () => {
      const mode = options.unstorableText ?? 'not-found';
      it(`answers a lookup by an id with a NUL or an unpaired surrogate as ${mode}`, async () => {
        // (trust tests follow this block)
        await addWorker('w1');
        const job = await submitOne();
        const a = await claimOne('w1');
        for (const bad of ['x\u0000', 'x\uD800', `${job.id}\u0000`]) {
          if (mode === 'not-found') {
            assert.equal(await store.getJob({ id: bad }), null);
            assert.equal(await store.getWorker({ id: bad }), null);
            assert.deepEqual(await store.listAttempts({ jobId: bad }), []);
            await assert.rejects(store.cancel({ jobId: bad }), { name: 'GafferError', code: 'JOB_NOT_FOUND' });
            await assert.rejects(store.complete({ attemptId: bad, lease: a.lease, result: 1 }), { name: 'GafferError', code: 'ATTEMPT_NOT_FOUND' });
            assert.deepEqual((await store.listJobs({ limit: 10, queue: bad })).jobs, []);
          } else {
            const refused = { name: 'GafferError', code: 'INVALID_INPUT' };
            await assert.rejects(store.getJob({ id: bad }), refused);
            await assert.rejects(store.getWorker({ id: bad }), refused);
            await assert.rejects(store.listAttempts({ jobId: bad }), refused);
            await assert.rejects(store.cancel({ jobId: bad }), refused);
            await assert.rejects(store.complete({ attemptId: bad, lease: a.lease, result: 1 }), refused);
            await assert.rejects(store.listJobs({ limit: 10, queue: bad }), refused);
          }
        }
        // Either way nothing changed, and the store still serves.
        assert.equal((await getJob(job.id)).state, 'running');
        await complete(a);
        assert.equal((await getJob(job.id)).state, 'succeeded');
      });
    });

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
        const { job, attempts } = await runReplicas(['A', 'B', 'A']);
        const done = await getJob(job.id);
        assert.deepEqual([done.state, done.result], ['succeeded', 'A']);
        assert.deepEqual((await store.listAttempts({ jobId: job.id })).map((a) => a.state), ['completed', 'rejected', 'completed']);
        const [w1, w2] = [await store.getWorker({ id: attempts[0]!.workerId }), await store.getWorker({ id: attempts[1]!.workerId })];
        assert.deepEqual(w1?.reputation, { valid: 1, invalid: 0, timedOut: 0, streak: 1, soloSinceCheck: 0 });
        assert.deepEqual(w2?.reputation, { valid: 0, invalid: 1, timedOut: 0, streak: 0, soloSinceCheck: 0 });
      });

      it('accepts as soon as a quorum agrees, stopping the replicas still running', async () => {
        for (const id of ['r1', 'r2', 'r3']) await addWorker(id);
        const job = await submitOne({ replicas: 3, quorum: 2 });
        const [a, b, c] = (await claim(['r1', 'r2', 'r3'])) as [Assignment, Assignment, Assignment];
        await complete(a, 'A');
        const out = await complete(b, 'A');
        assert.deepEqual(out.changes, [change(job.id, 'succeeded', [{ attemptId: c.attemptId, workerId: c.workerId }])]);
      });

      it('says which results disagreed when no quorum is reached within the replica bound', async () => {
        const { job } = await runReplicas(['A', 'B', 'C']);
        for (let extra = 1; extra <= EXTRA_REPLICAS_MAX; extra++) {
          await addWorker(`x${extra}`);
          await complete(await claimOne(`x${extra}`), `D${extra}`);
        }
        const failed = await getJob(job.id);
        assert.equal(failed.state, 'failed');
        assert.equal(failed.error?.code, 'NO_QUORUM');
        assert.match(failed.error?.message ?? '', /no 2 of 5 results agreed/);
        assert.match(failed.error?.message ?? '', new RegExp(resultHash('A').slice(0, 12)));
      });

      it('does not count an attempt a draining worker handed straight back: no failure, no backoff', async () => {
        await addWorker('w1');
        const job = await submitOne({ maxAttempts: 1, backoff: { baseMs: 60_000 } });
        const a = await claimOne('w1');
        const out = await store.fail({ ...ref(a), error: { code: 'WORKER_DRAINING', message: 'draining' }, retryable: true });
        assert.deepEqual([out.job.state, out.job.failures, out.job.runAt], ['queued', 0, clock.now()]);
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
        await store.complete({ ...ref(a), result: 'R', trace: trace(90) });
        const mid = await store.complete({ ...ref(b), result: 'R', trace: trace(1) });
        assert.equal(mid.job.state, 'running', 'trace verification waits for every replica');
        const out = await store.complete({ ...ref(c), result: 'R', trace: trace(100) });
        assert.equal(out.job.state, 'succeeded');
        const attempts = await store.listAttempts({ jobId: job.id });
        assert.deepEqual(attempts.map((x) => x.state), ['completed', 'rejected', 'completed']);
        assert.deepEqual(attempts[0]!.trace, trace(90));
        assert.equal((await store.getWorker({ id: b.workerId }))?.reputation.invalid, 1);
      });

      it('rejects the replicas that sent no usable trace, whatever their number', async () => {
        for (const id of ['t1', 't2', 't3', 't4', 't5']) await addWorker(id);
        const job = await submitOne({ replicas: 5, quorum: 2, verify: { mode: 'trace', tolerance: 0.2 } });
        const all = await claim(['t1', 't2', 't3', 't4', 't5']);
        // Three send nothing (or a single sample) and a made-up result each; two do the work and agree.
        await store.complete({ ...ref(all[0]!), result: 'lazy 1' });
        await store.complete({ ...ref(all[1]!), result: 'lazy 2', trace: { intervalMs: 100, samples: [{ tMs: 0, cpuMs: 0, rssKb: 0 }] } });
        await store.complete({ ...ref(all[2]!), result: 'lazy 3' });
        await store.complete({ ...ref(all[3]!), result: 'R', trace: trace(100) });
        const out = await store.complete({ ...ref(all[4]!), result: 'R', trace: trace(95) });
        assert.deepEqual([out.job.state, out.job.result], ['succeeded', 'R']);
        assert.deepEqual((await store.listAttempts({ jobId: job.id })).map((x) => x.state), ['rejected', 'rejected', 'rejected', 'completed', 'completed']);
        assert.equal((await store.getWorker({ id: all[3]!.workerId }))?.reputation.invalid, 0);
      });

      it('fails a trace-verified job whose traces split evenly', async () => {
        for (const id of ['t1', 't2', 't3', 't4']) await addWorker(id);
        const job = await submitOne({ replicas: 4, quorum: 2, verify: { mode: 'trace', tolerance: 0.2 } });
        const all = await claim(['t1', 't2', 't3', 't4']);
        // Scores (distance from the mean trace, 200 per sample, scaled by it): 0.5, 0.5, 1, 1: two clusters of two.
        const cpu = [100, 300, 0, 400];
        for (let i = 0; i < 4; i++) await store.complete({ ...ref(all[i]!), result: 'R', trace: trace(cpu[i]!) });
        const failed = await getJob(job.id);
        assert.deepEqual([failed.state, failed.error?.code], ['failed', 'NO_QUORUM']);
        assert.match(failed.error?.message ?? '', /split evenly/);
      });

      describe('verifier queue', () => {
        const verificationJob = (queue: string, payload: Json, priority: number) => normalizeJob({ queue, payload, priority });

        async function produce(workerId: string, jobId: string, result: Json): Promise<{ attempt: Assignment; verifier: Job }> {
          const attempt = await claimOne(workerId);
          assert.equal(attempt.jobId, jobId);
          const out = await store.complete({ ...ref(attempt), result, verificationJob });
          assert.equal(out.job.state, 'verifying');
          const vId = out.changes.find((c) => c.jobId !== jobId)!.jobId;
          return { attempt, verifier: await getJob(vId) };
        }

        async function verdict(verifierJobId: string, result: Json): Promise<SettleResult> {
          const v = await claimOne('checker');
          assert.equal(v.jobId, verifierJobId);
          return store.complete({ ...ref(v), result, verificationJob });
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
          assert.deepEqual(await claim('liar'), [], 'the rejected worker does not get the job again');
          assert.equal((await store.getWorker({ id: 'liar' }))?.reputation.invalid, 1);
          const second = await produce('honest', job.id, 'right');
          await verdict(second.verifier.id, { valid: true });
          const done = await getJob(job.id);
          assert.deepEqual([done.state, done.result], ['succeeded', 'right']);
          assert.equal((await store.getWorker({ id: 'honest' }))?.reputation.valid, 1);
        });

        it('fails a verifier attempt that answers no verdict, and the job whose verification job ends without one', async () => {
          await addWorker('w1');
          await addWorker('checker', { queues: { verify: 1 } });
          const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
          const { verifier } = await produce('w1', job.id, 'x');
          const bad = await verdict(verifier.id, 'looks fine to me');
          assert.equal(bad.job.id, verifier.id);
          assert.equal((await store.listAttempts({ jobId: verifier.id }))[0]?.error?.code, 'BAD_VERDICT');
          await store.cancel({ jobId: verifier.id });
          const failed = await getJob(job.id);
          assert.deepEqual([failed.state, failed.error?.code], ['failed', 'VERIFICATION_FAILED']);
        });

        it('cancels the verification job with the job it verifies', async () => {
          await addWorker('w1');
          await addWorker('checker', { queues: { verify: 1 } });
          const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
          const { verifier } = await produce('w1', job.id, 'x');
          const out = await store.cancel({ jobId: job.id });
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
          const out = await store.complete({ ...ref(a), result: 'x', verificationJob: tooBig });
          assert.deepEqual([out.job.state, out.job.error?.code], ['failed', 'VERIFICATION_FAILED']);
          assert.match(out.job.error?.message ?? '', /too large/);
        });

        it('retries a verified job on a fresh round, its earlier worker included; a verification job is not retried by hand', async () => {
          await addWorker('only');
          await addWorker('checker', { queues: { verify: 1 } });
          const job = await submitOne({ verify: { mode: 'queue', queue: 'verify' } });
          const { verifier } = await produce('only', job.id, 'x');
          await store.cancel({ jobId: verifier.id });
          assert.equal((await getJob(job.id)).state, 'failed');
          await assert.rejects(store.retry({ jobId: verifier.id }), { code: 'INVALID_STATE' });
          await store.retry({ jobId: job.id });
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
          await submitOne({ replicas: 3, quorum: 2 });
          const round = await claim(['h1', 'h2', 'bad']);
          const mine = round.find((a) => a.workerId === 'bad')!;
          await complete(mine, `made up ${i}`);
          for (const a of round.filter((x) => x !== mine)) await complete(a, 'true answer');
        }
        // Before its last verdict it took one more job; quarantine takes it back.
        const w = await store.getWorker({ id: 'bad' });
        assert.equal(w?.state, 'quarantined');
        assert.match(w?.quarantineReason ?? '', /invalid/);
        assert.deepEqual(w?.reputation, { valid: 0, invalid: 3, timedOut: 0, streak: 0, soloSinceCheck: 0 });
        for (const id of ['h1', 'h2']) assert.equal((await store.getWorker({ id }))?.quarantined, false);
        await submitOne();
        assert.deepEqual(await claim('bad'), []);
        const released = await store.setWorkerQuarantine({ workerId: 'bad', quarantined: false });
        assert.deepEqual([released.worker.state, released.worker.quarantineReason, released.worker.reputation.invalid], ['idle', null, 0]);
        assert.equal((await claim('bad')).length, 1);
      });

      it('cancels a quarantined worker\'s live attempts and puts their jobs back without counting a failure', async () => {
        await addWorker('w1');
        const job = await submitOne();
        const a = await claimOne('w1');
        const out = await store.setWorkerQuarantine({ workerId: 'w1', quarantined: true, reason: 'caught by hand' });
        assert.deepEqual(out.changes, [change(job.id, 'queued', [{ attemptId: a.attemptId, workerId: 'w1' }])]);
        assert.equal(out.worker.quarantineReason, 'caught by hand');
        const back = await getJob(job.id);
        assert.deepEqual([back.state, back.want, back.failures], ['queued', 1, 0]);
        assert.equal((await attemptOf(a)).state, 'cancelled');
        await assert.rejects(store.setWorkerQuarantine({ workerId: 'nobody', quarantined: true }), { code: 'WORKER_NOT_FOUND' });
      });

      it('counts timeouts and lost leases against the worker', async () => {
        await addWorker('slow');
        await submitOne({ heartbeatTimeoutMs: 1000 });
        await claimOne('slow');
        clock.advance(2000);
        await store.expireAttempts({ limit: 10 });
        assert.equal((await store.getWorker({ id: 'slow' }))?.reputation.timedOut, 1);
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
          await store.close();
          store = await open({ clock, random: seededRandom(SEED), trust: { trustedStreakMin: 2, spotCheckProbability: 0, spotCheckMaxGapJobs: 3 } });
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
          await store.close();
          store = await open({ clock, random: seededRandom(SEED), trust: { trustedStreakMin: 2, spotCheckProbability: 1 } });
          for (const id of ['a', 'b', 'c']) await addWorker(id);
          await earnTrust(['a', 'b', 'c'], 2);
          const job = await submitOne({ replicas: 3, quorum: 2, adaptive: true });
          const placed = await claim(['a', 'b', 'c']);
          assert.equal(placed.length, 3, 'a spot check runs every replica');
          for (const a of placed) await complete(a, a.workerId === 'a' ? 'lie' : 'truth');
          assert.equal((await getJob(job.id)).result, 'truth');
          const a = await store.getWorker({ id: 'a' });
          assert.deepEqual([a?.reputation.streak, a?.reputation.invalid], [0, 1]);
        });

        it('reruns a solo job fully replicated when its one attempt fails', async () => {
          await store.close();
          store = await open({ clock, random: seededRandom(SEED), trust: { trustedStreakMin: 1, spotCheckProbability: 0 } });
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
          store.startCheck({
            workerId,
            queue: 'q',
            job: normalizeJob({ queue: 'q', payload: { challenge: 1 }, maxAttempts: 1, timeoutMs: over.timeLimitMs ?? 5000 }),
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
          assert.equal((await store.getWorker({ id: 'new' }))?.state, 'probing');
          const got = await claim('new');
          assert.deepEqual(got.map((a) => a.jobId), [check.jobId], 'only its challenge');
          assert.deepEqual((await claim('old')).map((a) => a.jobId), [real.id], 'nobody else gets the challenge');
          clock.advance(1200);
          await complete(got[0]!, 42);
          const w = await store.getWorker({ id: 'new' });
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
          clock.advance(999);
          await store.heartbeat({ workerId: 'late' });
          clock.advance(2);
          await complete(b!, 42);
          const [ww, lw] = [await store.getWorker({ id: 'wrong' }), await store.getWorker({ id: 'late' })];
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
          const released = await store.setWorkerQuarantine({ workerId: 'wrong', quarantined: false });
          const again = released.worker.checks.q!;
          assert.equal(again.state, 'pending');
          assert.notEqual(again.jobId, wrong.check.jobId);
          assert.deepEqual(released.changes, [change(again.jobId, 'queued')]);
          assert.deepEqual((await claim('wrong')).map((a) => a.jobId), [again.jobId]);
          assert.deepEqual((await getJob(again.jobId)).payload, { challenge: 1 });
          // A challenge is not retried by hand.
          await assert.rejects(store.retry({ jobId: wrong.check.jobId }), { code: 'INVALID_STATE' });
        });

        it('fails the check when the challenge itself fails or is lost', async () => {
          await addWorker('w');
          await challenge('w');
          const [a] = await claim('w');
          await fail(a!, 'cannot run it', true);
          const w = await store.getWorker({ id: 'w' });
          assert.equal(w?.checks.q?.state, 'failed');
          assert.match(w?.checks.q?.reason ?? '', /cannot run it/);
        });
      });
    });
  });
}
