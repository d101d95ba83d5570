// A backend's fast paths end in exactly the state the engine's general path
// would: the same workload, from the same clock and seed, runs once with the
// backend's fast paths and named queries and once with the general path only,
// and every job, attempt and worker must come out the same, field for field.
// Ids are made from the clock and the seed, so they match too.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { place } from '../../scheduler/index.ts';
import { seededRandom, VirtualClock, type Random } from '../../types/clock.ts';
import type { Assignment, Attempt, Job, JobSpec, Json, WorkerSpec } from '../../types/model.ts';
import { newJob } from '../../types/new-job.ts';
import type { Store } from '../store.ts';
import { pipelineOf } from './pipelines.ts';

export type OpenWithFastPaths = (ctx: { clock: VirtualClock; random: Random; fastPaths: boolean }) => Promise<Store>;

interface Snapshot {
  jobs: Job[];
  attempts: Attempt[];
  workers: unknown[];
  /** Per claim, what it leased: job, worker, when the job became ready, and its parents' results (pipeline jobs). */
  claims: [string, string, number | undefined, string | undefined][][];
  pipelines: unknown[];
}

export function fastPathEquivalence(name: string, open: OpenWithFastPaths): void {
  describe(`fast paths: ${name}`, () => {
    it('a mixed workload ends in the same jobs, attempts and workers with and without them', async () => {
      const fast = await runWorkload(open, true);
      const general = await runWorkload(open, false);
      assert.ok(fast.jobs.length > 20 && fast.attempts.length > 20, 'the workload did something');
      assert.deepEqual(fast.jobs, general.jobs);
      assert.deepEqual(fast.attempts, general.attempts);
      assert.deepEqual(fast.workers, general.workers);
      assert.deepEqual(fast.claims, general.claims);
      assert.deepEqual(fast.pipelines, general.pipelines);
      assert.ok(fast.claims.flat().some(([, , , parents]) => parents !== undefined && parents !== '[]'), 'a pipeline job was leased with its parents\' results');
      assert.ok(fast.claims.flat().every(([, , readyAt]) => typeof readyAt === 'number'), 'every lease says when its job became ready');
    });
  });
}

const WORKERS: WorkerSpec[] = [
  { id: 'w1', name: 'w1', labels: { zone: 'a' }, cores: 8, memoryMb: 8192, gpuIds: [], queues: { q: 4, r: 2 }, keys: ['sector-1'] },
  { id: 'w2', name: 'w2', labels: {}, cores: 8, memoryMb: 8192, gpuIds: [0, 1], queues: { q: 2, r: 2 }, keys: [] },
  { id: 'w3', name: 'w3', labels: {}, cores: 4, memoryMb: 4096, gpuIds: [], queues: { q: 2, r: 2 }, keys: [] },
];

const spec = (over: Partial<JobSpec>): ReturnType<typeof newJob> => newJob({ queue: 'q', ...over });

async function runWorkload(open: OpenWithFastPaths, fastPaths: boolean): Promise<Snapshot> {
  const clock = new VirtualClock(Date.UTC(2026, 5, 1));
  const store = await open({ clock, random: seededRandom(0xfa57), fastPaths });
  try {
    for (const w of WORKERS) await store.upsertWorker({ spec: w });
    await submitAll(store);
    const claims: Snapshot['claims'] = [];
    for (let round = 0; round < 6; round++) {
      // Queue r is paused for rounds 1 and 2: its claims skip it, and take it up again after.
      if (round === 1 || round === 3) await store.setQueuePaused({ queue: 'r', paused: round === 1 });
      const assigned = await store.claim({ workerIds: WORKERS.map((w) => w.id!), place: (input) => place(input), maxJobs: 32 });
      if (round === 1 || round === 2) assert.ok(assigned.every((a) => a.queue !== 'r'), 'nothing of a paused queue is leased');
      claims.push(assigned.map((a) => [a.jobId, a.workerId, a.readyAt, a.parents && JSON.stringify(a.parents)]));
      await settle(store, assigned, round);
      clock.advance(1_000);
      if (round === 3) {
        clock.advance(120_000);
        await store.expireAttempts({ limit: 100 });
        for (const w of WORKERS) await store.heartbeat({ workerId: w.id! });
      }
    }
    return { ...(await snapshot(store)), claims };
  } finally {
    await store.close();
  }
}

/** Plain jobs (one batch), keyed ones with a repeated key, a parent with children, replicated, adaptive, GPU and affinity jobs, a pipeline instance (submitted twice by key). */
async function submitAll(store: Store): Promise<void> {
  await store.submit({ jobs: Array.from({ length: 12 }, (_, i) => spec({ payload: { i }, priority: i % 3 })) });
  await store.submit({ jobs: [spec({ idempotencyKey: 'k1' }), spec({ idempotencyKey: 'k2', queue: 'r' }), spec({ idempotencyKey: 'k1' })] });
  const [parent] = await store.submit({ jobs: [spec({ payload: 'parent' })] });
  await store.submit({ jobs: [spec({ dependsOn: [parent!.job.id], payload: 'child-1' }), spec({ dependsOn: [parent!.job.id], queue: 'r' })] });
  await store.submit({
    jobs: [
      spec({ replicas: 3, quorum: 2, payload: 'vote-1' }),
      spec({ replicas: 3, quorum: 2, payload: 'vote-2', queue: 'r' }),
      spec({ adaptive: true, replicas: 2, quorum: 2, payload: 'adaptive' }),
      spec({ requires: { gpus: 1 }, payload: 'gpu' }),
      spec({ affinity: { key: 'sector-1', mode: 'require' }, payload: 'near' }),
      spec({ requires: { labels: { zone: 'a' } }, payload: 'zoned', maxAttempts: 2, heartbeatTimeoutMs: 60_000 }),
    ],
  });
  const phase = (name: string, after: string[], count = 1) => ({ name, queue: 'q', count, after });
  const pipeline = pipelineOf([phase('a', []), phase('b', ['a'], 2), phase('c', ['b'])], { key: 'pipe-1' }, { maxAttempts: 3 });
  await store.submitPipeline({ pipeline });
  await store.submitPipeline({ pipeline });
}

/**
 * Plain results arrive together (a backend may settle them in one batch);
 * replicas report one at a time, so that the order of the votes is the same
 * in both runs; every fourth assignment of an early round fails, and one of
 * round 2 is left silent so that the sweep takes it back.
 */
async function settle(store: Store, assigned: readonly Assignment[], round: number): Promise<void> {
  const jobs = new Map<string, Job>();
  for (const a of assigned) jobs.set(a.jobId, (await store.getJob({ id: a.jobId }))!);
  const plain: Promise<unknown>[] = [];
  for (const [i, a] of assigned.entries()) {
    const job = jobs.get(a.jobId)!;
    if (round === 2 && i === 0) continue;
    if (round < 2 && i % 4 === 3) {
      await store.fail({ attemptId: a.attemptId, lease: a.lease, error: { code: 'HANDLER_ERROR', message: 'boom' }, retryable: true });
    } else if (job.replicas > 1) {
      const result: Json = a.workerId === 'w3' ? { lie: true } : { ok: a.jobId };
      await store.complete({ attemptId: a.attemptId, lease: a.lease, result });
    } else {
      plain.push(store.complete({ attemptId: a.attemptId, lease: a.lease, result: { ok: a.jobId } }));
    }
  }
  await Promise.all(plain);
}

async function snapshot(store: Store): Promise<Omit<Snapshot, 'claims'>> {
  const jobs: Job[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listJobs({ limit: 100, ...(cursor === undefined ? {} : { cursor }) });
    jobs.push(...page.jobs);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  jobs.sort((a, b) => (a.id < b.id ? -1 : 1));
  const attempts: Attempt[] = [];
  for (const j of jobs) attempts.push(...(await store.listAttempts({ jobId: j.id })));
  const pipelines = [];
  for (const p of (await store.listPipelines({ limit: 10 })).pipelines) pipelines.push(await store.getPipeline({ id: p.id }));
  return { jobs, attempts, workers: await store.listWorkers(), pipelines };
}
