// Several coordinators on one PostgreSQL database, as real processes on
// 127.0.0.1: `gaffer serve --db postgres://... --pg-schema S` on three ports,
// `gaffer worker` processes that know all three URLs, and the TypeScript
// client. Crashes are real SIGKILLs; the database restart is a real pg_ctl
// stop and start of a cluster this file owns. Nothing waits on a sleep: tests
// wait on stdout lines, process exits, or poll the API in bounded loops.
//
// A `.solo.test.ts` file: its first test runs twenty-odd Node processes, which
// take a two-core machine whole, so `npm test` runs it on its own, after the
// other files (which run two at a time) have finished.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import pg from 'pg';
import { GafferClient, type JobWithAttempts } from '../client/client.ts';
import { resultHash } from '../store/rules.ts';
import type { Attempt, JobSpec, Json } from '../types/model.ts';
import { testDatabase, type TestDatabase } from '../store/postgres/testing.ts';
import { startPgCluster, type PgCluster } from './pg-cluster.ts';
import { allEnded, BOUNDS, connectedWorkers, gaffer, getAll, kill9, stop, sum, tails, until, type Proc } from './testing.ts';

const SQUARE_MODULE = fileURLToPath(new URL('./fixtures/square-module.ts', import.meta.url));

/** Sizes and bounds of this file's runs. */
const MULTI = {
  coordinators: 3,
  /** Worker processes in the big run, spread over the coordinators. */
  workers: 20,
  slotsPerWorker: 2,
  jobs: 5000,
  submitBatchJobs: 250,
  /** How long each job of the big run holds its slot, as real work would. Light: twenty workers share two cores. */
  jobHoldMs: 5,
  /**
   * The big run: this many jobs first (highest priority), then one gated job
   * per slot, which hold every slot until the test opens the gate, then the
   * rest. The coordinator is killed while the gated jobs hold every slot.
   */
  jobsBeforeKill: 1500,
  runMs: 300_000,
  /** Twenty Node processes starting at once on two cores take a while. */
  workersStartMs: 120_000,
  /** Polls of the queue statistics while a run goes on: each reads every job's state, so not too often. */
  statsPollMs: 250,
  /** Idempotency: keys, and concurrent submits of each through every coordinator. */
  idempotencyKeys: 20,
  submitsPerKeyPerCoordinator: 10,
} as const;

// ---- Per-test scratch ----

interface Scratch {
  dir: string;
  procs: Proc[];
  databases: TestDatabase[];
}

let scratch: Scratch;

beforeEach(() => {
  scratch = { dir: mkdtempSync(join(tmpdir(), 'gaffer-multi-')), procs: [], databases: [] };
});

afterEach(async () => {
  const workers = scratch.procs.filter((p) => p.name.startsWith('worker'));
  const others = scratch.procs.filter((p) => !p.name.startsWith('worker'));
  await Promise.all(workers.map((p) => stop(p)));
  await Promise.all(others.map((p) => stop(p)));
  for (const db of scratch.databases) await db.drop();
  rmSync(scratch.dir, { recursive: true, force: true });
});

function track(p: Proc): Proc {
  scratch.procs.push(p);
  return p;
}

/** A fresh schema on the suite's database, dropped after the test. */
async function freshDatabase(): Promise<{ url: string; schema: string }> {
  const db = await testDatabase();
  scratch.databases.push(db);
  return { url: db.url, schema: db.schema };
}

const LISTENING = /^gaffer: listening on (http:\/\/127\.0\.0\.1:\d+) \(database (.+)\)$/;

interface Coord {
  name: string;
  proc: Proc;
  url: string;
  client: GafferClient;
}

/** Starts coordinators at once on one database and schema (they create the tables together). */
async function startCoordinators(n: number, db: { url: string; schema: string }, extra: string[] = []): Promise<Coord[]> {
  const procs = Array.from({ length: n }, (_, i) =>
    track(gaffer(`serve ${i}`, ['serve', '--port', '0', '--db', db.url, '--pg-schema', db.schema, '--log-level', 'warn', ...extra])),
  );
  return Promise.all(
    procs.map(async (proc) => {
      const m = await proc.waitLine(LISTENING);
      assert.match(m[2]!, new RegExp(`, schema ${db.schema}$`));
      return { name: proc.name, proc, url: m[1]!, client: new GafferClient({ url: m[1]! }) };
    }),
  );
}

/** A worker that knows every coordinator, its own first (the list rotated by `first`). */
function startWorker(name: string, urls: string[], first: number, queue: string, slots: number): Proc {
  const rotated = urls.map((_, i) => urls[(first + i) % urls.length]!);
  const args = ['worker', ...rotated.flatMap((u) => ['--url', u]), '--name', name, '--queue', `${queue}:${slots}`, '--module', SQUARE_MODULE];
  // info: the worker logs each connection with its URL, which tells which coordinator it is attached to.
  return track(gaffer(`worker ${name}`, [...args, '--log-level', 'info']));
}

/** The coordinators this worker said it connected to, in order (from its log), as http:// base URLs. */
function connectionsOf(p: Proc): { url: string; resumed: number }[] {
  const out: { url: string; resumed: number }[] = [];
  for (const line of p.stdout().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; url?: string; resumed?: number };
      // Each connection is logged once, by the worker itself.
      if (entry.msg === 'connected' && entry.url) {
        out.push({ url: entry.url.replace(/^ws:/, 'http:').replace(/\/v1\/worker$/, ''), resumed: entry.resumed ?? 0 });
      }
    } catch {
      // not a log line
    }
  }
  return out;
}

interface SquareResult {
  n: number;
  square: number;
  attemptId: string;
}

/**
 * Exactly one accepted result: the job succeeded with the square of its own
 * input, exactly one attempt completed, the job's result hashes to that
 * attempt's, and the handler says it ran as that attempt.
 */
function checkOneResult(job: JobWithAttempts): Attempt {
  const n = (job.payload as { n: number }).n;
  assert.equal(job.state, 'succeeded', `job ${job.id} (n=${n}) ended ${job.state}: ${JSON.stringify(job.error)}`);
  const result = job.result as unknown as SquareResult;
  assert.deepEqual([result.n, result.square], [n, n * n], `job ${job.id}: result for another input`);
  const completed = job.attemptList.filter((a) => a.state === 'completed');
  assert.equal(completed.length, 1, `job ${job.id}: ${completed.length} completed attempts: ${JSON.stringify(job.attemptList.map((a) => a.state))}`);
  const accepted = completed[0]!;
  assert.equal(accepted.resultHash, resultHash(job.result), `job ${job.id}: the accepted result is not its completed attempt's`);
  assert.equal(result.attemptId, accepted.id, `job ${job.id}: the result came from attempt ${result.attemptId}, not ${accepted.id}`);
  return accepted;
}

/** Submits specs in batches, each through the next live coordinator; a refused batch goes again, with the same keys, elsewhere. */
async function submitAll(coords: () => Coord[], specs: JobSpec[], batchJobs: number): Promise<Map<string, string>> {
  const acked = new Map<string, string>(); // idempotency key -> job id
  const batches: JobSpec[][] = [];
  for (let i = 0; i < specs.length; i += batchJobs) batches.push(specs.slice(i, i + batchJobs));
  let turn = 0;
  await Promise.all(
    batches.map(async (batch, b) => {
      for (let attempt = 0; ; attempt++) {
        const live = coords();
        const coord = live[(b + turn++) % live.length]!;
        try {
          const results = await coord.client.submitMany(batch);
          results.forEach((r, k) => {
            const key = batch[k]!.idempotencyKey!;
            const seen = acked.get(key);
            if (seen !== undefined) assert.equal(r.job.id, seen, `idempotency key ${key} gave two jobs`);
            acked.set(key, r.job.id);
          });
          return;
        } catch (err) {
          if (attempt >= 5) throw err;
        }
      }
    }),
  );
  return acked;
}

// ---- The tests ----
// Like the store's own PostgreSQL tests, these fail (never skip) without a PostgreSQL: see PG_TEST_HELP.

describe('several coordinators on one PostgreSQL database (real processes on 127.0.0.1)', () => {
  it(
    `runs ${MULTI.jobs} jobs on ${MULTI.workers} workers over ${MULTI.coordinators} coordinators, one of them killed with SIGKILL mid-run`,
    { timeout: MULTI.runMs + 120_000 },
    async (t) => {
      const t0 = Date.now();
      const phases: string[] = [];
      const phase = (what: string): void => void phases.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      const db = await freshDatabase();
      const coords = await startCoordinators(MULTI.coordinators, db);
      const urls = coords.map((c) => c.url);
      const names = Array.from({ length: MULTI.workers }, (_, i) => `m${String(i).padStart(2, '0')}`);
      const workers = new Map(names.map((name, i) => [name, startWorker(name, urls, i, 'multi', MULTI.slotsPerWorker)]));
      await connectedWorkers(coords[1]!.client, names, MULTI.workersStartMs);
      phase('workers connected');

      // Priorities far apart, so that aging (a point a minute) never reorders the three groups.
      const slots = MULTI.workers * MULTI.slotsPerWorker;
      const gate = join(scratch.dir, 'gate');
      const specs: JobSpec[] = Array.from({ length: MULTI.jobs }, (_, i) => {
        const gated = i >= MULTI.jobsBeforeKill && i < MULTI.jobsBeforeKill + slots;
        return {
          queue: 'multi',
          payload: (gated ? { n: i - MULTI.jobs / 2, gate } : { n: i - MULTI.jobs / 2, holdMs: MULTI.jobHoldMs }) as Json,
          priority: i < MULTI.jobsBeforeKill ? 200 : gated ? 100 : 0,
          labels: { group: gated ? 'gated' : 'plain' },
          idempotencyKey: `multi-${i}`,
          heartbeatTimeoutMs: 10_000,
          maxAttempts: 10,
        };
      });
      const victim = coords[0]!;
      let killed = false;
      const alive = (): Coord[] => coords.filter((c) => !killed || c !== victim);
      const submitted = submitAll(alive, specs, MULTI.submitBatchJobs);

      // Mid-run, once the first jobs are done and the gated ones hold every slot: kill the first coordinator.
      // Its workers are those whose latest connection is to it; each is running two attempts then.
      const watcher = coords[1]!.client;
      await until('the gated jobs holding every slot', async () => {
        const running = (await watcher.list({ queue: 'multi', state: 'running', limit: 500 })).jobs;
        return running.length === slots && running.every((j) => j.labels.group === 'gated');
      }, MULTI.runMs, MULTI.statsPollMs);
      phase('kill');
      const onVictim = names.filter((n) => connectionsOf(workers.get(n)!).at(-1)?.url === victim.url);
      assert.ok(onVictim.length > 0, `some workers are attached to the coordinator about to die (${victim.url})\n${tails(workers.get(names[0]!)!)}`);
      const killedAt = Date.now();
      await kill9(victim.proc);
      killed = true;
      writeFileSync(gate, 'open');

      const acked = await submitted;
      phase('all submitted');
      assert.equal(acked.size, MULTI.jobs);
      const counts = await allEnded(watcher, 'multi', MULTI.jobs, MULTI.runMs, MULTI.statsPollMs);
      assert.equal(sum(counts), MULTI.jobs, `one job per idempotency key: ${JSON.stringify(counts)}`);
      assert.equal(counts.succeeded, MULTI.jobs, `counts: ${JSON.stringify(counts)}`);
      phase('all succeeded');

      // Every job: exactly one accepted result. Read through both survivors.
      const ids = [...acked.values()];
      const half = Math.ceil(ids.length / 2);
      const jobs = [...(await getAll(coords[1]!.client, ids.slice(0, half))), ...(await getAll(coords[2]!.client, ids.slice(half)))];
      const accepted = jobs.map(checkOneResult);

      // The dead coordinator's workers moved to the others, kept what they were running, and went on working.
      const listed = await watcher.workers();
      const movedIds = new Set(listed.filter((w) => onVictim.includes(w.name)).map((w) => w.id));
      // Every slot held a gated attempt when the coordinator died, so it had nothing leased and undelivered:
      // no attempt was lost, and each of its workers presented its two running attempts and kept them.
      const lost = jobs.flatMap((j) => j.attemptList.filter((a) => a.state === 'lost'));
      assert.deepEqual(lost, [], 'no attempt lost');
      let resumed = 0;
      for (const name of onVictim) {
        const p = workers.get(name)!;
        const conns = connectionsOf(p);
        const last = conns.at(-1)!;
        assert.notEqual(last.url, victim.url, `${name} still on the dead coordinator\n${tails(p)}`);
        assert.ok(urls.includes(last.url), `${name} connected to ${last.url}`);
        resumed += last.resumed;
        const info = listed.find((w) => w.name === name);
        assert.equal(info?.connected, true, `${name} shown connected`);
      }
      const doneAfterMove = accepted.filter((a) => movedIds.has(a.workerId) && (a.finishedAt ?? 0) > killedAt).length;
      assert.ok(doneAfterMove > 0, 'the moved workers completed jobs through their new coordinators');
      assert.equal(resumed, onVictim.length * MULTI.slotsPerWorker, 'the moved workers presented the attempts they were running, and kept them');
      for (const c of coords.slice(1)) assert.equal(c.proc.exit, null, `${c.name} is still up\n${tails(c.proc)}`);
      t.diagnostic(
        `workers moved off the killed coordinator: ${onVictim.length}; attempts they kept across the move: ${resumed}; ` +
          `jobs they completed after it: ${doneAfterMove}; attempts per job: ${(jobs.reduce((n, j) => n + j.attemptList.length, 0) / jobs.length).toFixed(3)}`,
      );
      phase('checked');
      t.diagnostic(`timeline: ${phases.join(', ')}`);
    },
  );

  it('makes one job of one idempotency key submitted concurrently through every coordinator', { timeout: 120_000 }, async () => {
    const db = await freshDatabase();
    const coords = await startCoordinators(MULTI.coordinators, db);
    const keys = Array.from({ length: MULTI.idempotencyKeys }, (_, k) => `idem-${k}`);
    const submit = async (coord: Coord, key: string): Promise<{ status: number; id: string }> => {
      const res = await fetch(`${coord.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ queue: 'idem', payload: { key }, idempotencyKey: key }),
      });
      const body = (await res.json()) as { id?: string; error?: unknown };
      assert.ok(res.status === 201 || res.status === 200, `${coord.name}: ${res.status} ${JSON.stringify(body)}`);
      return { status: res.status, id: body.id! };
    };
    const answers = await Promise.all(
      keys.flatMap((key) => coords.flatMap((c) => Array.from({ length: MULTI.submitsPerKeyPerCoordinator }, () => submit(c, key).then((a) => ({ key, ...a }))))),
    );
    for (const key of keys) {
      const mine = answers.filter((a) => a.key === key);
      assert.equal(new Set(mine.map((a) => a.id)).size, 1, `key ${key} gave ${new Set(mine.map((a) => a.id)).size} jobs`);
      assert.equal(mine.filter((a) => a.status === 201).length, 1, `key ${key}: exactly one submit created the job`);
    }
    for (const c of coords) {
      const page = await c.client.list({ queue: 'idem', limit: 500 });
      assert.equal(page.jobs.length, keys.length, `${c.name} sees one job per key`);
    }
  });
});

describe('a PostgreSQL restart under running coordinators (real processes, a private cluster)', () => {
  let cluster: PgCluster;

  before(async () => {
    cluster = await startPgCluster();
  });
  after(async () => {
    await cluster?.destroy();
  });

  it('answers 503 NOT_READY during the outage, 200 after, and loses no acknowledged job', { timeout: 240_000 }, async (t) => {
    const schema = `restart_${process.pid}`;
    const poolMax = 4;
    const coords = await startCoordinators(2, { url: cluster.url, schema }, ['--pg-pool-max', String(poolMax)]);
    const urls = coords.map((c) => c.url);
    const names = ['r0', 'r1', 'r2', 'r3'];
    names.forEach((name, i) => startWorker(name, urls, i, 'restart', 2));
    await connectedWorkers(coords[0]!.client, names);

    // Half before the outage (the database stops while they run), a quarter submitted while it is down (the
    // client retries 503s; they land once it is back), the last quarter after.
    const total = 600;
    const specs: JobSpec[] = Array.from({ length: total }, (_, i) => ({
      queue: 'restart',
      payload: { n: i, holdMs: 50 },
      idempotencyKey: `restart-${i}`,
      maxAttempts: 10,
    }));
    const [half, threeQuarters] = [total / 2, (3 * total) / 4];
    const first = await submitAll(() => coords, specs.slice(0, half), 50);
    const atStop = await until('some jobs done before the outage', async () => {
      const c = (await coords[0]!.client.queues()) as { queues: { queue: string; counts: Record<string, number> }[] };
      const counts = c.queues.find((q) => q.queue === 'restart')?.counts;
      return (counts?.succeeded ?? 0) >= 50 ? counts : undefined;
    }, BOUNDS.jobsMs, MULTI.statsPollMs);

    await cluster.stop();
    const during = submitAll(() => coords, specs.slice(half, threeQuarters), 50);
    const notReady = await Promise.all(
      coords.map((c) =>
        until(`${c.name} answering /readyz 503`, async () => {
          if (c.proc.exit) throw new Error(`${c.name} exited: ${JSON.stringify(c.proc.exit)}\n${tails(c.proc)}`);
          const res = await fetch(`${c.url}/readyz`);
          const body = (await res.json()) as { error?: { code: string } };
          return res.status === 503 ? body.error?.code : undefined;
        }, 30_000),
      ),
    );
    assert.deepEqual(notReady, ['NOT_READY', 'NOT_READY']);
    // A submit during the outage is refused with a retryable 503, never a crash or a 500.
    const refused = await fetch(`${coords[1]!.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(specs[threeQuarters]),
    });
    const refusedBody = (await refused.json()) as { error?: { code: string } };
    assert.equal(refused.status, 503);
    assert.ok(['NOT_READY', 'STORE_BUSY'].includes(refusedBody.error?.code ?? ''), JSON.stringify(refusedBody));
    assert.equal((await fetch(`${coords[0]!.url}/healthz`)).status, 200, 'the process is up');

    await cluster.start();
    for (const c of coords) {
      await until(`${c.name} answering /readyz 200`, async () => (await fetch(`${c.url}/readyz`)).status === 200, 60_000);
    }
    const second = await during;
    const rest = await submitAll(() => coords, specs.slice(threeQuarters), 50);
    const acked = new Map([...first, ...second, ...rest]);
    assert.equal(acked.size, total);

    const counts = await allEnded(coords[1]!.client, 'restart', total, BOUNDS.jobsMs * 2, MULTI.statsPollMs);
    assert.equal(sum(counts), total, `one job per idempotency key: ${JSON.stringify(counts)}`);
    assert.equal(counts.succeeded, total, `counts: ${JSON.stringify(counts)}`);
    const jobs = await getAll(coords[0]!.client, [...acked.values()]);
    for (const job of jobs) checkOneResult(job);
    for (const c of coords) assert.equal(c.proc.exit, null, `${c.name} survived the restart\n${tails(c.proc)}`);
    // The pool bound held: this cluster is the test's own, so every 'gaffer' connection on it is one of the two coordinators'.
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    const rows = (await admin.query(`SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'gaffer%' GROUP BY 1`)).rows as { app: string; n: number }[];
    await admin.end();
    const pooled = rows.find((r) => r.app === 'gaffer')?.n ?? 0;
    assert.ok(pooled > 0 && pooled <= coords.length * poolMax, `pooled connections: ${JSON.stringify(rows)}, bound ${coords.length} x ${poolMax}`);
    const lost = jobs.flatMap((j) => j.attemptList).filter((a) => a.state === 'lost').length;
    t.diagnostic(
      `jobs not yet ended when the database stopped: ${half - (atStop.succeeded ?? 0)} of ${half}; attempts lost across the restart: ${lost}; ` +
        `connections open at the end: ${JSON.stringify(rows)}`,
    );
  });
});
