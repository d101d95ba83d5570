// The PostgreSQL store: the shared conformance suite, then what only a shared
// database has: several stores (coordinators) at once on one schema, its
// migrations, the triggers and CHECK constraints that refuse bad writes made
// behind the store's back, and wake-ups by LISTEN/NOTIFY.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { place } from '../../scheduler/index.ts';
import { seededRandom, VirtualClock } from '../../types/clock.ts';
import type { Assignment, Job, JobSpec, Json, PlaceFn } from '../../types/model.ts';
import { newJob } from '../../types/new-job.ts';
import { ATTEMPT_TRANSITIONS, JOB_TRANSITIONS } from '../../types/states.ts';
import { storeContract } from '../suite/contract.ts';
import { SUITE_TRUST } from '../suite/context.ts';
import { pipelineOf } from '../suite/pipelines.ts';
import { resultHash } from '../rules.ts';
import { MIGRATIONS } from './schema.ts';
import { openPostgresStore, type PostgresStore } from './store.ts';
import { openTestStore, pgContractOptions, testDatabase, testDatabaseUrl, type TestDatabase } from './testing.ts';

storeContract('postgres', (ctx) => openTestStore(ctx), pgContractOptions);

const placeFn: PlaceFn = (input) => place(input);
const spec = (over: Partial<JobSpec> = {}) => newJob({ queue: 'q', ...over });
const workerSpec = (id: string, slots = 4) => ({ id, name: id, labels: {}, cores: 64, memoryMb: 65_536, gpuIds: [], queues: { q: slots }, keys: [] });

/** A raw connection to the test database, outside any store, with the given search_path. */
async function rawClient(db: TestDatabase): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(`SET search_path TO ${db.schema}`);
  return client;
}

describe('postgres store', () => {
  before(async () => {
    // Fails here, once and clearly, when there is no PostgreSQL: the message says how to get one.
    await testDatabaseUrl();
  });

  /** Several stores on one fresh schema, as several coordinators on one database; closed and dropped after the test. */
  async function coordinators(
    n: number,
    o: { missingSchema?: boolean } = {},
  ): Promise<{ db: TestDatabase; stores: PostgresStore[]; clock: VirtualClock; done: () => Promise<void> }> {
    const clock = new VirtualClock();
    const db = await testDatabase();
    if (o.missingSchema) await db.drop(); // the stores race to create it
    const stores = await Promise.all(
      Array.from({ length: n }, (_, i) => openPostgresStore({ url: db.url, schema: db.schema, clock, random: seededRandom(1000 + i), trust: SUITE_TRUST })),
    );
    return {
      db,
      stores,
      clock,
      done: async () => {
        for (const s of stores) await s.close();
        await db.drop();
      },
    };
  }

  /** Counts a store's wake-ups; `next()` resolves on the next one (bounded: it fails after 10 s rather than hang). */
  function wakes(store: PostgresStore): { count: () => number; next: () => Promise<void>; stop: () => void } {
    let n = 0;
    const waiters: (() => void)[] = [];
    const stop = store.onWake(() => {
      n++;
      for (const resolve of waiters.splice(0)) resolve();
    });
    const next = () =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no wake-up within 10 s')), 10_000);
        waiters.push(() => (clearTimeout(timer), resolve()));
      });
    return { count: () => n, next, stop };
  }

  it('creates the schema and records each migration once when several stores open a missing schema at the same time', async () => {
    const { db, stores, done } = await coordinators(4, { missingSchema: true });
    try {
      const client = await rawClient(db);
      try {
        const read = async () => ({
          migrations: (await client.query('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')).rows,
          jobTransitions: Number((await client.query('SELECT count(*) AS n FROM job_transitions')).rows[0].n),
          attemptTransitions: Number((await client.query('SELECT count(*) AS n FROM attempt_transitions')).rows[0].n),
        });
        const first = await read();
        assert.deepEqual(first.migrations.map((r) => [r.version, r.name]), MIGRATIONS.map((m) => [m.version, m.name]));
        assert.equal(first.jobTransitions, JOB_TRANSITIONS.length);
        assert.equal(first.attemptTransitions, ATTEMPT_TRANSITIONS.length);
        // Opening again (a coordinator restarting) applies nothing and loads the same transitions.
        const again = await openPostgresStore({ url: db.url, schema: db.schema, clock: new VirtualClock(), random: seededRandom(9) });
        await again.submit({ jobs: [spec()] });
        await again.close();
        assert.deepEqual(await read(), first, 'the same rows, the same applied_at: nothing was re-applied');
      } finally {
        await client.end();
      }
      // Every store works on the one schema.
      const [a, b] = stores;
      assert.ok(a && b);
      const [job] = (await a.submit({ jobs: [spec()] })).map((r) => r.job);
      assert.equal((await b.getJob({ id: job!.id }))?.state, 'queued');
    } finally {
      await done();
    }
  });

  it('creates a missing schema and puts every table, index and trigger function in it', async () => {
    const url = await testDatabaseUrl();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const schemas = [`gaffer_test_new_${Date.now().toString(36)}a`, `gaffer_test_new_${Date.now().toString(36)}b`];
    try {
      const inPublic = async () => (await admin.query(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`)).rows[0].n;
      const before = await inPublic();
      // Its own pool (search_path set at connect, before the schema exists), and a caller's pool whose
      // connection was opened, and its search_path set, before the schema existed.
      const own = await openPostgresStore({ url, schema: schemas[0], clock: new VirtualClock(), random: seededRandom(1) });
      const pool = new pg.Pool({ connectionString: url, max: 1 });
      await pool.query('SELECT 1');
      const theirs = await openPostgresStore({ pool, schema: schemas[1], clock: new VirtualClock(), random: seededRandom(2) });
      for (const [store, schema] of [[own, schemas[0]], [theirs, schemas[1]]] as const) {
        const tables = await admin.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', [schema]);
        assert.deepEqual(tables.rows.map((r) => r.table_name), [
          'attempt_transitions', 'attempts', 'coordinators', 'job_deps', 'job_transitions', 'jobs', 'pipelines', 'queue_history', 'queues', 'schema_migrations', 'store_locks', 'worker_checks', 'workers',
        ]);
        const fns = await admin.query(`SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 ORDER BY 1`, [schema]);
        assert.deepEqual(fns.rows.map((r) => r.proname), ['attempts_legal_transition', 'jobs_legal_transition']);
        const [r] = await store.submit({ jobs: [spec()] });
        assert.equal((await admin.query(`SELECT state FROM ${schema}.jobs WHERE id = $1`, [r!.job.id])).rows[0].state, 'queued');
        await store.close();
      }
      await pool.end();
      assert.equal(await inPublic(), before, 'nothing was created in public');
    } finally {
      for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  });

  it('refuses an illegal state move written directly in SQL (the transition triggers), whatever the search_path', async () => {
    const { db, stores, done } = await coordinators(1);
    const [store] = stores;
    assert.ok(store);
    const client = await rawClient(db);
    try {
      await store.upsertWorker({ spec: workerSpec('w1') });
      const [finished, queued] = (await store.submit({ jobs: [spec(), spec()] })).map((r) => r.job);
      assert.ok(finished && queued);
      const [a] = await store.claim({ workerIds: ['w1'], place: placeFn, maxJobs: 1 });
      assert.ok(a);
      await store.complete({ attemptId: a.attemptId, lease: a.lease, result: 1 });

      // Every CHECK would pass: only the trigger stands between succeeded and running.
      await assert.rejects(
        client.query("UPDATE jobs SET state = 'running', finished_at = NULL, live = 1 WHERE id = $1", [finished.id]),
        /illegal job state transition: succeeded -> running/,
      );
      await assert.rejects(
        client.query("UPDATE attempts SET state = 'running', finished_at = NULL WHERE id = $1", [a.attemptId]),
        /illegal attempt state transition: completed -> running/,
      );
      // The trigger functions read this schema's transition tables even from a session whose search_path is elsewhere.
      await client.query('SET search_path TO public');
      await assert.rejects(
        client.query(`UPDATE ${db.schema}.jobs SET state = 'waiting', pending_parents = 1, want = 0 WHERE id = $1`, [queued.id]),
        /illegal job state transition: queued -> waiting/,
      );
      // A legal move goes through: the triggers refuse only what the tables do not list.
      const legal = await client.query(`UPDATE ${db.schema}.jobs SET state = 'cancelled', want = 0, finished_at = 1 WHERE id = $1`, [queued.id]);
      assert.equal(legal.rowCount, 1);
    } finally {
      await client.end();
    }
    assert.equal((await store.getJob({ id: (await store.listJobs({ limit: 10, state: 'succeeded' })).jobs[0]!.id }))?.result, 1);
    await done();
  });

  it('refuses a negative want, and other broken rows, by CHECK constraints', async () => {
    const { db, stores, done } = await coordinators(1);
    const [store] = stores;
    assert.ok(store);
    const [job] = (await store.submit({ jobs: [spec()] })).map((r) => r.job);
    assert.ok(job);
    const client = await rawClient(db);
    try {
      const check = /violates check constraint/;
      await assert.rejects(client.query('UPDATE jobs SET want = -1 WHERE id = $1', [job.id]), check);
      // A live attempt on a job that is not running.
      await assert.rejects(client.query('UPDATE jobs SET live = 1 WHERE id = $1', [job.id]), check);
      // quorum above replicas.
      await assert.rejects(client.query('UPDATE jobs SET quorum = replicas + 1 WHERE id = $1', [job.id]), check);
      await assert.rejects(
        client.query(`INSERT INTO workers (id, name, labels, cores, memory_mb, gpu_ids, queues, keys, connected, connected_at, last_seen_at, created_at)
                      VALUES ('bad', 'bad', '{}', -1, 0, '[]', '{}', '[]', 1, 0, 0, 0)`),
        check,
      );
    } finally {
      await client.end();
    }
    assert.equal((await store.getJob({ id: job.id }))?.want, 1);
    await done();
  });

  /**
   * Two coordinators, each in its own loop: claim for a set of workers, then
   * complete half of what it holds, until no job is left. Resolves with every
   * assignment made; after every claim, no worker may hold more than `slots`.
   */
  async function claimRace(o: { jobs: number; slots: number; sets: [string[], string[]]; maxJobs: number }) {
    const all = [...new Set(o.sets.flat())].sort();
    const { db, stores, done } = await coordinators(2);
    const client = await rawClient(db);
    try {
      for (const id of all) await stores[0]!.upsertWorker({ spec: workerSpec(id, o.slots) });
      await stores[0]!.submit({ jobs: Array.from({ length: o.jobs }, (_, i) => spec({ payload: i, priority: i % 3 })) });
      const leased: Assignment[][] = [[], []];
      let overCommitted: string | null = null;
      const run = async (k: 0 | 1): Promise<void> => {
        const store = stores[k]!;
        const held: Assignment[] = [];
        for (let round = 0; round < 4 * o.jobs; round++) {
          const got = await store.claim({ workerIds: o.sets[k], place: placeFn, maxJobs: 1 + ((round + k) % o.maxJobs) });
          leased[k]!.push(...got);
          held.push(...got);
          const over = await client.query(
            `SELECT worker_id, count(*)::int AS n FROM attempts WHERE state IN ('leased', 'running') GROUP BY worker_id HAVING count(*) > $1`,
            [o.slots],
          );
          if (over.rows.length > 0) overCommitted ??= JSON.stringify(over.rows);
          for (const x of held.splice(0, Math.ceil(held.length / 2))) await store.complete({ attemptId: x.attemptId, lease: x.lease, result: x.jobId });
          if (got.length === 0 && held.length === 0 && (await store.queueCounts())[0]?.counts.queued === 0) break;
        }
        for (const x of held) await store.complete({ attemptId: x.attemptId, lease: x.lease, result: x.jobId });
      };
      await Promise.all([run(0), run(1)]);
      const attempts = (await client.query('SELECT count(*)::int AS n, count(DISTINCT job_id)::int AS jobs FROM attempts')).rows[0];
      const succeeded = (await stores[1]!.queueCounts())[0]?.counts.succeeded;
      return { leased, overCommitted, attempts, succeeded };
    } finally {
      await client.end();
      await done();
    }
  }

  it('two coordinators claiming at once from one queue of 200 jobs, for different workers, never lease a job twice', async () => {
    const out = await claimRace({ jobs: 200, slots: 3, sets: [['w0', 'w1', 'w2', 'w3'], ['w4', 'w5', 'w6', 'w7']], maxJobs: 8 });
    const jobIds = out.leased.flat().map((x) => x.jobId);
    assert.equal(new Set(jobIds).size, jobIds.length, 'no job was leased twice');
    assert.equal(jobIds.length, 200, 'every job was leased once');
    assert.ok(out.leased.every((l) => l.length > 0), `both coordinators leased work (${out.leased.map((l) => l.length).join(' and ')})`);
    assert.deepEqual(out.attempts, { n: 200, jobs: 200 });
    assert.equal(out.succeeded, 200);
    assert.equal(out.overCommitted, null);
  });

  it("two coordinators claiming at once for the same workers never exceed a worker's slots", async () => {
    const workers = ['w0', 'w1', 'w2', 'w3'];
    const out = await claimRace({ jobs: 80, slots: 2, sets: [workers, [...workers].reverse()], maxJobs: 8 });
    assert.equal(out.overCommitted, null, 'a worker held more attempts than its slots');
    const jobIds = out.leased.flat().map((x) => x.jobId);
    assert.equal(new Set(jobIds).size, 80);
    assert.deepEqual(out.attempts, { n: 80, jobs: 80 });
  });

  it('passes over jobs another transaction holds locked, without waiting for it (SKIP LOCKED)', async () => {
    const { db, stores, done } = await coordinators(1);
    const [store] = stores;
    assert.ok(store);
    const client = await rawClient(db);
    try {
      await store.upsertWorker({ spec: workerSpec('w1', 4) });
      const jobs = (await store.submit({ jobs: Array.from({ length: 6 }, (_, i) => spec({ payload: i })) })).map((r) => r.job.id);
      // Another coordinator's claim in progress: it holds the three oldest jobs.
      await client.query('BEGIN');
      await client.query('SELECT id FROM jobs WHERE id = ANY($1) FOR UPDATE', [jobs.slice(0, 3)]);
      let timer: NodeJS.Timeout | undefined;
      const blocked = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the claim waited for the other transaction')), 5_000);
      });
      const got = await Promise.race([store.claim({ workerIds: ['w1'], place: placeFn, maxJobs: 4 }), blocked]);
      clearTimeout(timer);
      assert.deepEqual(got.map((a) => a.jobId).sort(), jobs.slice(3).sort(), 'the unlocked jobs, and only those');
      await client.query('ROLLBACK');
      const rest = await store.claim({ workerIds: ['w1'], place: placeFn, maxJobs: 4 });
      assert.equal(rest.length, 1, 'the fourth slot takes one of the jobs the other transaction let go');
    } finally {
      await client.end();
      await done();
    }
  });

  it('gives one job for an idempotency key submitted at once through three coordinators', async () => {
    const { db, stores, done } = await coordinators(3);
    const client = await rawClient(db);
    try {
      for (let round = 0; round < 20; round++) {
        const key = `key-${round}`;
        // Each batch also carries a job without a key, so that the race is inside a larger transaction.
        const results = await Promise.all(stores.map((s, i) => s.submit({ jobs: [spec({ payload: i }), spec({ idempotencyKey: key, payload: i })] })));
        const keyed = results.map((r) => r[1]!);
        assert.equal(new Set(keyed.map((r) => r.job.id)).size, 1, `round ${round}: one job for the key`);
        assert.equal(keyed.filter((r) => r.created).length, 1, `round ${round}: exactly one submit created it`);
        assert.ok(results.every((r) => r[0]!.created), 'the jobs without a key were all created');
      }
      const rows = await client.query('SELECT count(*)::int AS n, count(DISTINCT idempotency_key)::int AS keys FROM jobs WHERE idempotency_key IS NOT NULL');
      assert.deepEqual(rows.rows[0], { n: 20, keys: 20 });
    } finally {
      await client.end();
      await done();
    }
  });

  it('gives one pipeline instance, and one set of its jobs, for a key submitted at once through three coordinators', async () => {
    const { db, stores, done } = await coordinators(3);
    const client = await rawClient(db);
    const phases = [{ name: 'ap', queue: 'q', count: 1, after: [] }, { name: 'pc1', queue: 'q', count: 2, after: ['ap'] }];
    try {
      for (let round = 0; round < 10; round++) {
        const pipeline = pipelineOf(phases, { key: `sector-${round}` });
        const results = await Promise.all(stores.map((s) => s.submitPipeline({ pipeline })));
        assert.equal(new Set(results.map((r) => r.pipeline.id)).size, 1, `round ${round}: one instance for the key`);
        assert.equal(results.filter((r) => r.created).length, 1, `round ${round}: exactly one submit created it`);
      }
      const rows = await client.query('SELECT (SELECT count(*)::int FROM pipelines) AS instances, (SELECT count(*)::int FROM jobs) AS jobs');
      assert.deepEqual(rows.rows[0], { instances: 10, jobs: 30 });
    } finally {
      await client.end();
      await done();
    }
  });

  it('wakes a second coordinator when the first submits, re-queues or retries, and not the one that sent it', async () => {
    const { stores, done } = await coordinators(2);
    const [a, b] = stores;
    assert.ok(a && b);
    const notified = (s: PostgresStore) => s['wake'].stats.notified;
    const wa = wakes(a);
    const wb = wakes(b);
    try {
      await Promise.all([a.whenListening(), b.whenListening()]);
      let woken = wb.next();
      await a.submit({ jobs: [spec({ maxAttempts: 2, backoff: { baseMs: 0, maxMs: 0 } })] });
      await woken;
      assert.equal(notified(b), 1, 'woken by a notification, not by the polling fallback');

      // A retryable failure re-queues the job: a notification.
      await a.upsertWorker({ spec: workerSpec('w1') });
      const fail = async () => {
        const [x] = await a.claim({ workerIds: ['w1'], place: placeFn, maxJobs: 1 });
        assert.ok(x);
        return a.fail({ attemptId: x.attemptId, lease: x.lease, error: { code: 'HANDLER_ERROR', message: 'x' }, retryable: true });
      };
      woken = wb.next();
      assert.deepEqual((await fail()).changes.map((c) => c.state), ['queued']);
      await woken;
      assert.equal(notified(b), 2);

      // The last failure ends the job (nothing to claim: no notification); a client's retry queues it again (one).
      woken = wb.next();
      const failed = await fail();
      assert.equal(failed.job.state, 'failed');
      await a.retry({ jobId: failed.job.id });
      await woken;
      assert.equal(notified(b), 3, 'notifications arrive in commit order: the retry\'s came, the failure sent none');

      assert.equal(wa.count(), 0, "a store is not woken by its own notifications");
      assert.equal(notified(a), 0);
    } finally {
      wa.stop();
      wb.stop();
      await done();
    }
  });

  it('listens again after its listening connection drops, and looks once for what it missed', async () => {
    const { stores, done } = await coordinators(2);
    const [a, b] = stores;
    assert.ok(a && b);
    const wb = wakes(b);
    try {
      await b.whenListening();
      const pid = b['wake'].pid;
      assert.ok(pid !== null);
      const caughtUp = wb.next();
      await a['db'].read((sql) => sql.get('SELECT pg_terminate_backend($1)', [pid]));
      await caughtUp; // the look once it is back (or a poll while it is down)
      await b.whenListening();
      assert.ok(b['wake'].stats.reconnects >= 1);
      assert.notEqual(b['wake'].pid, pid);
      const woken = wb.next();
      await a.submit({ jobs: [spec()] });
      await woken;
      assert.equal(b['wake'].stats.notified, 1);
    } finally {
      wb.stop();
      await done();
    }
  });

  it('wakes nobody on another schema of the same database', async () => {
    const one = await coordinators(1);
    const two = await coordinators(2);
    const [a] = one.stores;
    const [b, c] = two.stores;
    assert.ok(a && b && c);
    const wb = wakes(b);
    try {
      await b.whenListening();
      await a.submit({ jobs: [spec()] });
      // Notifications arrive in commit order: once c's (same schema as b) is heard, a's was heard first and ignored.
      const woken = wb.next();
      await c.submit({ jobs: [spec()] });
      await woken;
      assert.equal(wb.count(), 1, "only the submit on b's schema woke b");
    } finally {
      wb.stop();
      await one.done();
      await two.done();
    }
  });

  it('works on a pool the caller owns, with a schema, and leaves the pool open on close', async () => {
    const db = await testDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 3 });
    try {
      const store = await openPostgresStore({ pool, schema: db.schema, clock: new VirtualClock(), random: seededRandom(3) });
      const [r] = await store.submit({ jobs: [spec({ payload: 'mine' })] });
      assert.equal((await store.getJob({ id: r!.job.id }))?.payload, 'mine');
      await store.close();
      const rows = await pool.query(`SELECT payload FROM ${db.schema}.jobs`);
      assert.deepEqual(rows.rows, [{ payload: '"mine"' }]);
    } finally {
      await pool.end();
      await db.drop();
    }
  });

  it('survives the server cutting a connection in the middle of a call: that call fails, the next one works', async () => {
    const db = await testDatabase();
    const name = `gaffer-test-${Date.now().toString(36)}`;
    const pool = new pg.Pool({ connectionString: db.url, max: 2, application_name: name });
    const client = await rawClient(db);
    try {
      const store = await openPostgresStore({ pool, schema: db.schema, clock: new VirtualClock(), random: seededRandom(4) });
      const [r] = await store.submit({ jobs: [spec()] });
      const id = r!.job.id;
      // Hold the job's row, so that the store's cancel waits on it with its connection checked out.
      await client.query('BEGIN');
      await client.query('SELECT id FROM jobs WHERE id = $1 FOR UPDATE', [id]);
      // Its failure is awaited below; the handler is attached now, since it may come before the terminate's answer.
      const cancel = assert.rejects(store.cancel({ jobId: id }), /terminat/i);
      let pid: number | undefined;
      for (let i = 0; i < 500 && pid === undefined; i++) {
        const rows = await client.query(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [name]);
        pid = rows.rows[0]?.pid;
      }
      assert.ok(pid !== undefined, 'the cancel waits on the row lock');
      await client.query('SELECT pg_terminate_backend($1)', [pid]);
      await cancel;
      await client.query('ROLLBACK');
      // The process is still here (an unhandled 'error' event would have ended it), and the store serves.
      assert.equal((await store.cancel({ jobId: id })).job.state, 'cancelled');
      await store.close();
    } finally {
      await client.end();
      await pool.end();
      await db.drop();
    }
  });

  it('migrates a database made by an earlier version (migration 2) to the trust columns, keeping its rows', async () => {
    const db = await testDatabase();
    const client = await rawClient(db);
    try {
      await client.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      for (const m of MIGRATIONS.filter((x) => x.version <= 2)) {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)', [m.version, m.name]);
      }
      await client.query(`INSERT INTO workers (id, name, labels, cores, memory_mb, gpu_ids, queues, keys, connected, connected_at, last_seen_at, created_at)
                          VALUES ('w1', 'w1', '{}', 4, 1024, '[]', '{"q":1}', '[]', 1, 0, 0, 0)`);
      await client.query(`INSERT INTO jobs (id, queue, state, payload, priority, run_at, deadline_at, has_deadline, timeout_ms,
                            heartbeat_timeout_ms, max_attempts, backoff_base_ms, backoff_max_ms, req_cores, req_memory_mb, req_gpus,
                            req_labels, depends_on, replicas, quorum, labels, want, created_at, updated_at)
                          VALUES ('old', 'q', 'queued', '"kept"', 0, 0, 9007199254740991, 0, 60000, 30000, 3, 1000, 60000, 0, 0, 0,
                            '{}', '[]', 1, 1, '{}', 1, 0, 0)`);
      const store = await openPostgresStore({ url: db.url, schema: db.schema, clock: new VirtualClock(), random: seededRandom(1) });
      try {
        const versions = (await client.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version);
        assert.deepEqual(versions, MIGRATIONS.map((m) => m.version));
        const job = await store.getJob({ id: 'old' });
        assert.deepEqual([job?.payload, job?.adaptive, job?.solo, job?.verifies, job?.pinnedWorkerId], ['kept', false, false, null, null]);
        const w = await store.getWorker({ id: 'w1' });
        assert.deepEqual([w?.reputation, w?.checks, w?.quarantineReason], [{ valid: 0, invalid: 0, timedOut: 0, credit: 4, streak: 0, soloSinceCheck: 0 }, {}, null]);
        await store.heartbeat({ workerId: 'w1' });
        const [a] = await store.claim({ workerIds: ['w1'], place: placeFn, maxJobs: 1 });
        assert.equal(a?.jobId, 'old');
        assert.equal((await store.complete({ attemptId: a.attemptId, lease: a.lease, result: 1 })).job.state, 'succeeded');
      } finally {
        await store.close();
      }
    } finally {
      await client.end();
      await db.drop();
    }
  });

  it('starts one reliability check between two coordinators that start it at once', async () => {
    const { db, stores, done } = await coordinators(2);
    const client = await rawClient(db);
    try {
      for (let round = 0; round < 10; round++) {
        const workerId = `w${round}`;
        await stores[0]!.upsertWorker({ spec: workerSpec(workerId) });
        const results = await Promise.all(
          stores.map((s) =>
            s.startCheck({
              workerId,
              queue: 'q',
              job: spec({ payload: { challenge: round }, maxAttempts: 1 }),
              answerHash: resultHash(round),
              timeLimitMs: 5000,
            }),
          ),
        );
        assert.equal(results.filter((r) => r.created).length, 1, `round ${round}: one of them created it`);
        assert.equal(new Set(results.map((r) => r.check.jobId)).size, 1, `round ${round}: both name the one challenge`);
        const jobs = await client.query('SELECT count(*)::int AS n FROM jobs WHERE pinned_worker_id = $1', [workerId]);
        assert.equal(jobs.rows[0].n, 1, `round ${round}: one challenge job`);
      }
    } finally {
      await client.end();
      await done();
    }
  });

  it('wakes a second coordinator when trust makes work claimable: a challenge, a verification job, a rejected result, an eviction', async () => {
    const { stores, done } = await coordinators(2);
    const [a, b] = stores;
    assert.ok(a && b);
    const notified = (s: PostgresStore) => s['wake'].stats.notified;
    const wb = wakes(b);
    const verificationJob = (queue: string, payload: Json, priority: number) => newJob({ queue, payload, priority });
    const step = async (what: string, n: number, act: () => Promise<unknown>): Promise<void> => {
      const woken = wb.next();
      await act();
      await woken;
      assert.equal(notified(b), n, what);
    };
    try {
      await b.whenListening();
      for (const id of ['fresh', 'w1', 'w2']) await a.upsertWorker({ spec: workerSpec(id) });
      await a.upsertWorker({ spec: { ...workerSpec('checker'), queues: { verify: 1 } } });
      await step('a challenge', 1, () =>
        a.startCheck({ workerId: 'fresh', queue: 'q', job: spec({ maxAttempts: 1 }), answerHash: resultHash(1), timeLimitMs: 5000 }),
      );
      let job!: Job;
      await step('a submit', 2, async () => {
        const [r] = await a.submit({ jobs: [spec({ verify: { mode: 'queue', queue: 'verify' }, maxAttempts: 3 })] });
        assert.ok(r);
        job = r.job;
      });
      await step('a verification job', 3, async () => {
        const [x] = await a.claim({ workerIds: ['w1'], place: placeFn, maxJobs: 1 });
        assert.equal(x?.jobId, job.id);
        assert.equal((await a.complete({ attemptId: x.attemptId, lease: x.lease, result: 'wrong', verificationJob })).job.state, 'verifying');
      });
      await step('a rejected result', 4, async () => {
        const [v] = await a.claim({ workerIds: ['checker'], place: placeFn, maxJobs: 1 });
        assert.ok(v);
        await a.complete({ attemptId: v.attemptId, lease: v.lease, result: { valid: false, reason: 'no' }, verificationJob });
        assert.equal((await a.getJob({ id: job.id }))?.state, 'queued');
      });
      await step('an eviction', 5, async () => {
        const [x] = await a.claim({ workerIds: ['w2'], place: placeFn, maxJobs: 1 });
        assert.equal(x?.jobId, job.id);
        const out = await a.setWorkerQuarantine({ workerId: 'w2', quarantined: true });
        assert.deepEqual(out.changes.map((c) => [c.jobId, c.state]), [[job.id, 'queued']]);
      });
    } finally {
      wb.stop();
      await done();
    }
  });

  it('keeps every verdict when two coordinators settle replicated jobs while their workers heartbeat', async () => {
    const { db, stores, done } = await coordinators(2);
    const client = await rawClient(db);
    const workers = ['w0', 'w1', 'w2', 'w3'];
    try {
      for (const id of workers) await stores[0]!.upsertWorker({ spec: workerSpec(id, 3) });
      await stores[0]!.submit({ jobs: Array.from({ length: 40 }, (_, i) => spec({ payload: i, replicas: 3, quorum: 2 })) });
      const run = async (store: PostgresStore, k: number): Promise<void> => {
        for (let round = 0; round < 400; round++) {
          const got = await store.claim({ workerIds: k === 0 ? workers : [...workers].reverse(), place: placeFn, maxJobs: 4 });
          await Promise.all([
            ...workers.map((w) => store.heartbeat({ workerId: w })),
            ...got.map(async (x) => {
              try {
                await store.complete({ attemptId: x.attemptId, lease: x.lease, result: x.jobId });
              } catch (err) {
                // The job succeeded meanwhile and stopped this replica.
                if ((err as { code?: string }).code !== 'STALE_LEASE') throw err;
              }
            }),
          ]);
          if (got.length === 0 && (await store.queueCounts())[0]?.counts.succeeded === 40) break;
        }
      };
      await Promise.all(stores.map((s, k) => run(s, k)));
      assert.equal((await stores[0]!.queueCounts())[0]?.counts.succeeded, 40);
      const completed = await client.query(`SELECT worker_id, count(*)::int AS n FROM attempts WHERE state = 'completed' GROUP BY worker_id ORDER BY worker_id`);
      const valid = await client.query('SELECT id AS worker_id, valid_count AS n FROM workers WHERE valid_count > 0 ORDER BY id');
      assert.deepEqual(valid.rows, completed.rows, 'one valid verdict per accepted result, none lost');
    } finally {
      await client.end();
      await done();
    }
  });

  // A plain result settles in one statement (COMPLETE_SIMPLE_SQL); these are the cases where it must not.
  it('settles a result whose job another transaction holds once it lets go, through the full transaction', async () => {
    const { db, stores, done } = await coordinators(1);
    const store = stores[0]!;
    const client = await rawClient(db);
    try {
      await store.upsertWorker({ spec: workerSpec('w1') });
      const [job] = await store.submit({ jobs: [spec()] });
      const [a] = await store.claim({ workerIds: ['w1'], maxJobs: 1, place: placeFn });
      assert.ok(job && a);
      await client.query('BEGIN');
      await client.query('SELECT id FROM jobs WHERE id = $1 FOR UPDATE', [job.job.id]);
      let settled = false;
      const completing = store.complete({ attemptId: a.attemptId, lease: a.lease, result: 42 }).then((out) => ((settled = true), out));
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(settled, false, 'the result waits for the lock, it is not refused');
      await client.query('COMMIT');
      const out = await completing;
      assert.deepEqual([out.job.state, out.job.result], ['succeeded', 42]);
      assert.equal((await store.listAttempts({ jobId: job.job.id }))[0]?.state, 'completed');
    } finally {
      await client.end();
      await done();
    }
  });

  it('settles results that arrive together past the byte bound of one statement, each once', async () => {
    const { stores, done } = await coordinators(1);
    const store = stores[0]!;
    try {
      await store.upsertWorker({ spec: workerSpec('w1', 12) });
      await store.submit({ jobs: Array.from({ length: 12 }, () => spec()) });
      const leased = await store.claim({ workerIds: ['w1'], maxJobs: 12, place: placeFn });
      assert.equal(leased.length, 12);
      // Twelve results of about 0.9 MB: more than completeBatchMaxBytes (8 MiB) together.
      const big = (i: number): Json => ({ i, blob: 'x'.repeat(900_000) });
      const outs = await Promise.all(leased.map((a, i) => store.complete({ attemptId: a.attemptId, lease: a.lease, result: big(i) })));
      assert.deepEqual(outs.map((o) => o.job.state), Array(12).fill('succeeded'));
      for (const [i, a] of leased.entries()) {
        const job = await store.getJob({ id: a.jobId });
        assert.equal((job?.result as { i: number }).i, i);
      }
    } finally {
      await done();
    }
  });

  it('marks a job as a parent in the submit that makes it one, and migrates existing parents', async () => {
    const { db, stores, done } = await coordinators(1);
    const store = stores[0]!;
    const client = await rawClient(db);
    try {
      const [p1, p2] = await store.submit({ jobs: [spec(), spec()] });
      assert.ok(p1 && p2);
      await store.submit({ jobs: [spec({ dependsOn: [p1.job.id] })] });
      const flags = async () =>
        (await client.query('SELECT id, has_dependants FROM jobs WHERE id = ANY($1::text[]) ORDER BY id', [[p1.job.id, p2.job.id]])).rows.map((r) => [r.id, r.has_dependants]);
      assert.deepEqual(await flags(), [[p1.job.id, 1], [p2.job.id, 0]]);
      const migration = MIGRATIONS.find((m) => m.version === 6);
      assert.ok(migration);
      await client.query('UPDATE jobs SET has_dependants = 0');
      await client.query(migration.sql.split('\n').filter((l) => l.startsWith('UPDATE')).join('\n'));
      assert.deepEqual(await flags(), [[p1.job.id, 1], [p2.job.id, 0]]);
    } finally {
      await client.end();
      await done();
    }
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    const url = await testDatabaseUrl();
    await assert.rejects(
      openPostgresStore({ url, schema: 'x; DROP TABLE jobs', clock: new VirtualClock(), random: seededRandom(1) }),
      { name: 'GafferError', code: 'INVALID_INPUT' },
    );
  });
});
