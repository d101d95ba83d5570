// The retention sweep in virtual time, on a real SQLite store: the sweeper's
// beat deletes finished jobs past each queue's retention (age or count) in
// batches of retentionBatchMaxJobs, keeps a queue that keeps them for ever,
// and prunes worker records that hold nothing once workerRetentionMs passed.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { place } from '../scheduler/index.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { LIMITS } from '../types/limits.ts';
import type { RetentionPolicy } from '../types/model.ts';
import { newJob } from '../types/new-job.ts';
import { RetentionSweep } from './retention.ts';
import { Sweeper } from './sweeper.ts';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
const HOUR_MS = 60 * MINUTE_MS;

const POLICIES: Record<string, RetentionPolicy> = { short: { keepDays: 1 }, few: { keepJobs: 2 }, forever: {} };

/** A real store whose deleteFinishedJobs calls are counted. */
function counted(store: Store): { store: Store; batches: number[] } {
  const out = { store, batches: [] as number[] };
  out.store = new Proxy(store, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (prop !== 'deleteFinishedJobs' || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
      return async (p: Parameters<Store['deleteFinishedJobs']>[0]) => {
        const r = await store.deleteFinishedJobs(p);
        out.batches.push(r.deletedJobIds.length);
        return r;
      };
    },
  });
  return out;
}

async function setUp() {
  const clock = new VirtualClock();
  const real = openSqliteStore({ path: ':memory:', clock, random: seededRandom(11) });
  const { store, batches } = counted(real);
  const worker = (id: string) =>
    store.upsertWorker({ spec: { id, name: id, labels: {}, cores: 1, memoryMb: 0, gpuIds: [], queues: { short: 1, few: 1, forever: 1 }, keys: [] } });
  const errors: unknown[] = [];
  const sweeper = new Sweeper({
    store,
    clock,
    sweepIntervalMs: DAY_MS * 10,
    historySweepIntervalMs: DAY_MS * 10,
    retentionSweepIntervalMs: HOUR_MS,
    retention: { policyOf: (q) => POLICIES[q] ?? {}, workerRetentionMs: 2 * DAY_MS },
    onSwept: () => undefined,
    onWake: () => undefined,
    onError: (err) => void errors.push(err),
  });
  return { clock, store, batches, worker, sweeper, errors };
}

describe('retention sweep (virtual time, SQLite)', () => {
  it('deletes finished jobs past each queue\'s retention on its beat, in batches, and prunes idle worker records', async () => {
    const { clock, store, batches, worker, sweeper, errors } = await setUp();
    await worker('idle');
    await worker('busy');
    // 1,200 cancelled jobs in `few` (which keeps 2), one finished and one running job in `short` (1 day), one in `forever`.
    const many = LIMITS.retentionBatchMaxJobs * 2 + 200;
    const fewIds: string[] = [];
    for (let i = 0; i < many; i += LIMITS.submitBatchMaxJobs) {
      const jobs = Array.from({ length: Math.min(LIMITS.submitBatchMaxJobs, many - i) }, () => newJob({ queue: 'few', runAt: clock.now() + DAY_MS * 365 }));
      fewIds.push(...(await store.submit({ jobs })).map((r) => r.job.id));
    }
    for (const id of fewIds) await store.cancel({ jobId: id });
    const [shortDone, shortRunning, kept] = (await store.submit({ jobs: [newJob({ queue: 'short' }), newJob({ queue: 'short' }), newJob({ queue: 'forever' })] })).map((r) => r.job.id);
    for (const id of [shortDone!, kept!]) await store.cancel({ jobId: id });
    const [running] = await store.claim({ workerIds: ['busy'], place: (input) => place(input), maxJobs: 1 });
    assert.equal(running?.jobId, shortRunning);

    // After each timer, the pass it started runs to its end: every beat sweeps.
    const settle = async (): Promise<void> => {
      await new Promise((r) => setImmediate(r));
      await sweeper.current();
    };
    sweeper.start();
    await clock.advanceAsync(HOUR_MS, settle);
    assert.deepEqual(errors, []);
    assert.deepEqual(batches, [LIMITS.retentionBatchMaxJobs, LIMITS.retentionBatchMaxJobs, 198, 0], 'few in batches (all but its newest 2), then short: nothing old enough');
    const left = await Promise.all(fewIds.map((id) => store.getJob({ id })));
    assert.deepEqual(left.filter((j) => j !== null).map((j) => j!.id), fewIds.slice(-2), 'the newest 2 are kept');

    await clock.advanceAsync(DAY_MS, settle);
    assert.equal(await store.getJob({ id: shortDone! }), null, 'a day after it finished');
    assert.equal((await store.getJob({ id: shortRunning! }))?.state, 'running', 'an unfinished job stays');
    assert.equal((await store.getJob({ id: kept! }))?.state, 'cancelled', 'a queue that keeps its jobs for ever');
    assert.notEqual(await store.getWorker({ id: 'idle' }), null, 'not yet: last seen a day ago');

    await clock.advanceAsync(DAY_MS + HOUR_MS, settle);
    assert.equal(await store.getWorker({ id: 'idle' }), null, 'two days after it was last seen, holding nothing');
    assert.notEqual(await store.getWorker({ id: 'busy' }), null, 'it holds an attempt');
    sweeper.stop();
    assert.deepEqual(errors, []);
    await store.close();
  });

  it('appends the jobs of a queue with an archive to its file, one JSON line each, before deleting them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gaffer-archive-'));
    try {
      const clock = new VirtualClock();
      const store = openSqliteStore({ path: ':memory:', clock, random: seededRandom(12) });
      const path = join(dir, 'done.jsonl');
      const ids = (await store.submit({ jobs: [newJob({ queue: 'arch', payload: { n: 1 } }), newJob({ queue: 'arch', payload: { n: 2 } })] })).map((r) => r.job.id);
      for (const id of ids) await store.cancel({ jobId: id });
      const sweep = new RetentionSweep(store, clock, { policyOf: () => ({ keepJobs: 0, archive: path }) });
      assert.deepEqual(await sweep.run(), { deletedJobs: 2, prunedWorkers: 0 });
      const lines = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { id: string; state: string; payload: unknown });
      assert.deepEqual(lines.map((j) => [j.id, j.state, j.payload]), [[ids[0], 'cancelled', { n: 1 }], [ids[1], 'cancelled', { n: 2 }]]);
      assert.equal(await store.getJob({ id: ids[0]! }), null);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
