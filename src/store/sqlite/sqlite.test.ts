// The SQLite store: the shared conformance suite on a real file and in memory,
// then what only SQLite has (the file across reopen, migrations, and the
// triggers and CHECK constraints that refuse bad writes made behind its back).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { place } from '../../scheduler/index.ts';
import { seededRandom, VirtualClock } from '../../types/clock.ts';
import type { JobSpec } from '../../types/model.ts';
import { newJob } from '../../types/new-job.ts';
import { ATTEMPT_TRANSITIONS, JOB_TRANSITIONS } from '../../types/states.ts';
import { storeContract, type StoreContractOptions } from '../suite/contract.ts';
import type { Store } from '../store.ts';
import { MIGRATIONS } from './schema.ts';
import { openSqliteStore, SqliteStore } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'gaffer-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = (): string => join(dir, `store-${++files}.db`);

storeContract('sqlite file', async (ctx) => openSqliteStore({ path: freshPath(), ...ctx }));
storeContract('sqlite :memory:', async (ctx) => openSqliteStore({ path: ':memory:', ...ctx }));

describe('sqlite store', () => {
  const spec = (over: Partial<JobSpec> = {}) => newJob({ queue: 'q', ...over });
  const worker = { id: 'w1', name: 'w1', labels: {}, cores: 8, memoryMb: 8192, gpuIds: [], queues: { q: 8 }, keys: [] };

  it('keeps every job, attempt and worker across close and reopen', async () => {
    const path = freshPath();
    const clock = new VirtualClock();
    let store = openSqliteStore({ path, clock, random: seededRandom(1) });
    await store.upsertWorker({ spec: worker });
    const [done, failed, running, queued] = (
      await store.submit({ jobs: [spec({ payload: 'done' }), spec({ maxAttempts: 1 }), spec({ heartbeatTimeoutMs: 60_000 }), spec({ idempotencyKey: 'keep' })] })
    ).map((r) => r.job);
    assert.ok(done && failed && running && queued);
    const claimed = await store.claim({ workerIds: ['w1'], place: (i) => place(i), maxJobs: 3 });
    assert.deepEqual(claimed.map((a) => a.jobId), [done.id, failed.id, running.id]);
    const [a, b, c] = claimed;
    assert.ok(a && b && c);
    await store.complete({ attemptId: a.attemptId, lease: a.lease, result: { proof: 1 } });
    await store.fail({ attemptId: b.attemptId, lease: b.lease, error: { code: 'HANDLER_ERROR', message: 'no' }, retryable: true });
    const [waiting] = (await store.submit({ jobs: [spec({ dependsOn: [running.id] })] })).map((r) => r.job);
    assert.ok(waiting);
    const snapshot = async (s: Store) => {
      const jobs = (await s.listJobs({ limit: 100 })).jobs;
      const attempts = await Promise.all(jobs.map((j) => s.listAttempts({ jobId: j.id })));
      return { jobs, attempts, workers: await s.listWorkers(), counts: await s.queueCounts() };
    };
    const before = await snapshot(store);
    assert.deepEqual(before.jobs.map((j) => j.state).sort(), ['failed', 'queued', 'running', 'succeeded', 'waiting']);
    await store.close();

    clock.advance(1_000);
    store = openSqliteStore({ path, clock, random: seededRandom(2) });
    assert.deepEqual(await snapshot(store), before);
    // It carries on where it stopped: the lease still holds, the key is still known.
    const [again] = await store.submit({ jobs: [spec({ idempotencyKey: 'keep' })] });
    assert.deepEqual([again?.created, again?.job.id], [false, queued.id]);
    const out = await store.complete({ attemptId: c.attemptId, lease: c.lease, result: 'late' });
    assert.deepEqual(out.changes.map((x) => [x.jobId, x.state]), [[running.id, 'succeeded'], [waiting.id, 'queued']]);
    await store.close();
  });

  it('records each migration once in schema_migrations, and reopening does not run them again', async () => {
    const path = freshPath();
    const open = () => openSqliteStore({ path, clock: new VirtualClock(), random: seededRandom(1) });
    await open().close();
    const read = () => {
      const db = new DatabaseSync(path);
      try {
        return {
          migrations: db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all().map((r) => ({ ...r })),
          jobTransitions: Number(db.prepare('SELECT count(*) AS n FROM job_transitions').get()?.n),
          attemptTransitions: Number(db.prepare('SELECT count(*) AS n FROM attempt_transitions').get()?.n),
        };
      } finally {
        db.close();
      }
    };
    const first = read();
    assert.deepEqual(first.migrations.map((r) => [r.version, r.name]), MIGRATIONS.map((m) => [m.version, m.name]));
    for (const r of first.migrations) assert.equal(typeof r.applied_at, 'number');
    assert.equal(first.jobTransitions, JOB_TRANSITIONS.length);
    assert.equal(first.attemptTransitions, ATTEMPT_TRANSITIONS.length);
    const store = open(); // would throw "table jobs already exists" if migration 1 ran again
    await store.submit({ jobs: [spec()] });
    await store.close();
    await open().close();
    assert.deepEqual(read(), first, 'the same rows, the same applied_at: nothing was re-applied');
  });

  it('refuses an illegal state move written directly in SQL (the transition triggers)', async () => {
    const path = freshPath();
    const store = openSqliteStore({ path, clock: new VirtualClock(), random: seededRandom(1) });
    await store.upsertWorker({ spec: worker });
    const [done, queued] = (await store.submit({ jobs: [spec(), spec()] })).map((r) => r.job);
    assert.ok(done && queued);
    const [a] = await store.claim({ workerIds: ['w1'], place: (i) => place(i), maxJobs: 1 });
    assert.ok(a);
    await store.complete({ attemptId: a.attemptId, lease: a.lease, result: 1 });

    const db = new DatabaseSync(path);
    try {
      // Every CHECK would pass: only the trigger stands between succeeded and running.
      assert.throws(
        () => db.prepare("UPDATE jobs SET state = 'running', finished_at = NULL, live = 1 WHERE id = ?").run(done.id),
        /illegal job state transition/,
      );
      assert.throws(
        () => db.prepare("UPDATE attempts SET state = 'running', finished_at = NULL WHERE id = ?").run(a.attemptId),
        /illegal attempt state transition/,
      );
      // A legal move goes through: the triggers refuse only what the tables do not list.
      const legal = db.prepare("UPDATE jobs SET state = 'cancelled', want = 0, finished_at = 1 WHERE id = ?").run(queued.id);
      assert.equal(Number(legal.changes), 1);
    } finally {
      db.close();
    }
    assert.equal((await store.getJob({ id: done.id }))?.state, 'succeeded');
    assert.equal((await store.listAttempts({ jobId: done.id }))[0]?.state, 'completed');
    await store.close();
  });

  it('refuses a negative want, and other broken rows, by CHECK constraints', async () => {
    const path = freshPath();
    const store = openSqliteStore({ path, clock: new VirtualClock(), random: seededRandom(1) });
    const [job] = (await store.submit({ jobs: [spec()] })).map((r) => r.job);
    assert.ok(job);
    const db = new DatabaseSync(path);
    try {
      assert.throws(() => db.prepare('UPDATE jobs SET want = -1 WHERE id = ?').run(job.id), /CHECK constraint failed/);
      // A live attempt on a job that is not running.
      assert.throws(() => db.prepare('UPDATE jobs SET live = 1 WHERE id = ?').run(job.id), /CHECK constraint failed/);
      // quorum above replicas.
      assert.throws(() => db.prepare('UPDATE jobs SET quorum = replicas + 1 WHERE id = ?').run(job.id), /CHECK constraint failed/);
      assert.throws(
        () =>
          db
            .prepare(
              `INSERT INTO workers (id, name, labels, cores, memory_mb, gpu_ids, queues, keys, connected, connected_at, last_seen_at, created_at)
               VALUES ('bad', 'bad', '{}', -1, 0, '[]', '{}', '[]', 1, 0, 0, 0)`,
            )
            .run(),
        /CHECK constraint failed/,
      );
    } finally {
      db.close();
    }
    assert.equal((await store.getJob({ id: job.id }))?.want, 1);
    await store.close();
  });
});
