// The chaos run: one coordinator (`gaffer serve`) and a handful of
// `gaffer worker --exec` processes on 127.0.0.1, on SQLite and on PostgreSQL,
// while jobs are submitted; workers are SIGKILLed and replaced one after
// another, and the coordinator is SIGKILLed and restarted on the same port and
// database. At the end every acknowledged job must have succeeded exactly once:
// one completed attempt whose result is that attempt's, and whose run the
// task itself recorded. The coordinator's memory (VmRSS) is read before and
// after the part of the run it lives through, and must stay under a bound.
//
// Bounded in count (CHAOS) and time (each wait has a bound); it asserts
// nothing about speed. A `.solo.test.ts` file: `npm test` runs it on its own.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import { GafferClient, type JobWithAttempts } from '../client/client.ts';
import { testDatabase } from '../store/postgres/testing.ts';
import { LIMITS } from '../types/limits.ts';
import type { JobSpec } from '../types/model.ts';
import { countsOf, freePort, gaffer, getAll, kill9, stop, sum, tails, TERMINAL, until, type Proc } from './testing.ts';

const SQUARE_SH = fileURLToPath(new URL('./fixtures/square.sh', import.meta.url));

/** Sizes and bounds of one run (per backend). */
const CHAOS = {
  /** Worker processes alive at once; each killed one is replaced. */
  workers: 4,
  slotsPerWorker: 2,
  workerKills: 100,
  coordinatorKills: 20,
  /** Of the worker kills, at least this many while the last coordinator runs (its memory is measured around them). */
  workerKillsOnLastCoordinator: 30,
  /** A killed worker's leases run out this soon, so its jobs run again quickly. */
  heartbeatTimeoutMs: 2_000,
  /** Every lost lease counts as a failure: jobs get as many attempts as a job may have. */
  maxAttempts: LIMITS.maxAttemptsMax,
  submitBatchJobs: 10,
  /** Jobs submitted and not ended: the submitter waits while there are more. */
  backlogMaxJobs: 60,
  /** How long each job's task takes, in seconds (a string for sleep(1)). */
  jobSleepS: '0.02',
  /** A worker is killed between workerLifeMinMs and workerLifeMaxMs (uniformly) after it connected. */
  workerLifeMinMs: 100,
  workerLifeMaxMs: 600,
  /** The coordinator's resident memory must stay under this, before and after. */
  coordinatorRssMaxMb: 384,
  /**
   * Bounds of the waits. A restarted worker backs off up to reconnectMaxDelayMs
   * (15 s) between tries while coordinators die as soon as a job ends on them,
   * so its first connection can take several of those windows.
   */
  startMs: 180_000,
  drainMs: 120_000,
  runMs: 240_000,
} as const;

const LISTENING = /^gaffer: listening on (http:\/\/127\.0\.0\.1:\d+)/;
const CONNECTED = /"msg":"connected"/;

interface Run {
  dir: string;
  /** Each run of the task appends "<jobId> <attemptId>" here. */
  runsFile: string;
  port: number;
  db: string[];
  coordinator: Proc;
  client: GafferClient;
  workers: Set<Proc>;
  workerKills: number;
  coordinatorKills: number;
  workerSeq: number;
  /** Idempotency key -> job id, for every submit the coordinator acknowledged. */
  acked: Map<string, string>;
  hostile: boolean;
  /** Worker kills when the last coordinator started; null while coordinators are still being killed. */
  killsAtLastStart: number | null;
  timeline: string[];
  startedAt: number;
  lastSubmitError: string | null;
}

function mark(run: Run, what: string): void {
  run.timeline.push(`${what} ${((Date.now() - run.startedAt) / 1000).toFixed(1)}s (worker kills ${run.workerKills}, coordinator kills ${run.coordinatorKills}, acknowledged ${run.acked.size})`);
}

/** While coordinators die, workers die too, but some kills are kept for the last coordinator. */
function mayKill(run: Run): boolean {
  return run.killsAtLastStart !== null || run.workerKills < CHAOS.workerKills - CHAOS.workerKillsOnLastCoordinator;
}

function killsDone(run: Run): boolean {
  if (run.killsAtLastStart === null) return false;
  return run.workerKills >= Math.max(CHAOS.workerKills, run.killsAtLastStart + CHAOS.workerKillsOnLastCoordinator);
}

function rssKb(p: Proc): number {
  const status = readFileSync(`/proc/${p.child.pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  assert.ok(m, `no VmRSS for ${p.name}`);
  return Number(m[1]);
}

async function startCoordinator(run: Run): Promise<void> {
  const p = gaffer(`serve ${run.coordinatorKills}`, ['serve', '--port', String(run.port), ...run.db, '--log-level', 'warn']);
  await p.waitLine(LISTENING, CHAOS.startMs);
  run.coordinator = p;
}

function startWorker(run: Run): Proc {
  const name = `chaos-${run.workerSeq++}`;
  const task = `echo "$GAFFER_JOB_ID $GAFFER_ATTEMPT_ID" >> '${run.runsFile}'; exec sh '${SQUARE_SH}'`;
  const args = ['worker', '--url', `http://127.0.0.1:${run.port}`, '--name', name, '--queue', `chaos:${CHAOS.slotsPerWorker}`, '--exec', task];
  const p = gaffer(`worker ${name}`, [...args, '--tmp-dir', join(run.dir, 'tmp'), '--out-dir', join(run.dir, 'out'), '--log-level', 'info']);
  run.workers.add(p);
  return p;
}

/** One worker slot of the pool: start a worker, let it work a moment after it connected, SIGKILL it; again until the kills are done. */
async function workerLane(run: Run): Promise<void> {
  while (!killsDone(run)) {
    const p = startWorker(run);
    await p.waitLine(CONNECTED, CHAOS.startMs);
    await sleep(CHAOS.workerLifeMinMs + Math.random() * (CHAOS.workerLifeMaxMs - CHAOS.workerLifeMinMs));
    await until('a worker kill allowed', async () => mayKill(run) || killsDone(run), CHAOS.runMs, 50);
    if (killsDone(run)) return;
    run.workerKills++;
    await kill9(p);
    run.workers.delete(p);
  }
}

/** Kills the coordinator and starts it again, each time once some job has ended since the last start. */
async function coordinatorKiller(run: Run): Promise<void> {
  while (run.coordinatorKills < CHAOS.coordinatorKills) {
    const before = await endedJobs(run);
    await until('a job ending on this coordinator', async () => (await endedJobs(run)) > before, CHAOS.runMs, 100);
    await kill9(run.coordinator);
    run.coordinatorKills++;
    await startCoordinator(run);
    if (run.coordinatorKills % 5 === 0) mark(run, `coordinator kill ${run.coordinatorKills}`);
  }
}

async function endedJobs(run: Run): Promise<number> {
  return sum(await countsOf(run.client, 'chaos'), TERMINAL);
}

/** Submits batches while the run is hostile, keeping the backlog bounded; a batch refused (the coordinator is down) goes again with the same keys. */
async function submitter(run: Run): Promise<void> {
  let next = 0;
  while (run.hostile) {
    if (run.acked.size - (await endedJobs(run).catch(() => run.acked.size)) > CHAOS.backlogMaxJobs) {
      await sleep(100);
      continue;
    }
    const specs: JobSpec[] = Array.from({ length: CHAOS.submitBatchJobs }, (_, k) => ({
      queue: 'chaos',
      payload: { n: next + k, sleep: CHAOS.jobSleepS },
      idempotencyKey: `chaos-${next + k}`,
      heartbeatTimeoutMs: CHAOS.heartbeatTimeoutMs,
      maxAttempts: CHAOS.maxAttempts,
    }));
    try {
      const results = await run.client.submitMany(specs);
      results.forEach((r, k) => run.acked.set(specs[k]!.idempotencyKey!, r.job.id));
      next += specs.length;
    } catch (err) {
      run.lastSubmitError = String(err);
      await sleep(50);
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What the end of a run found: each acknowledged job's fate, counted. */
interface Verdict {
  acknowledged: number;
  lost: string[];
  /** Failed by the store's rule for jobs whose attempts keep dying with their workers (jobLostAttemptsMax): decided, not lost. */
  gaveUpOnLost: string[];
  acceptedTwice: string[];
  notRecorded: string[];
  attempts: number;
}

function judge(jobs: JobWithAttempts[], runs: Set<string>): Verdict {
  const v: Verdict = { acknowledged: jobs.length, lost: [], gaveUpOnLost: [], acceptedTwice: [], notRecorded: [], attempts: 0 };
  for (const job of jobs) {
    v.attempts += job.attemptList.length;
    const completed = job.attemptList.filter((a) => a.state === 'completed');
    const n = (job.payload as { n: number }).n;
    const result = job.result as { n?: number; square?: number; attempt?: string } | null;
    if (job.state === 'failed' && job.error?.code === 'LEASE_LOST' && job.lost >= LIMITS.jobLostAttemptsMax) v.gaveUpOnLost.push(job.id);
    else if (job.state !== 'succeeded' || completed.length === 0) v.lost.push(`${job.id} (${job.state}: ${JSON.stringify(job.error)})`);
    else if (completed.length > 1 || result?.attempt !== completed[0]!.id || result.square !== n * n) v.acceptedTwice.push(job.id);
    else if (!runs.has(`${job.id} ${completed[0]!.id}`)) v.notRecorded.push(job.id);
  }
  return v;
}

/** Both phases of killing, then a calm end; returns the last coordinator's VmRSS (KiB) before its share of the kills and at the end. */
async function hostileRun(run: Run): Promise<{ beforeKb: number; afterKb: number }> {
  await startCoordinator(run);
  const submitting = submitter(run);
  // Phase 1: workers and the coordinator die over and over.
  const lanes = Promise.all(Array.from({ length: CHAOS.workers }, () => workerLane(run)));
  lanes.catch(() => undefined);
  await coordinatorKiller(run);
  // Phase 2: the last coordinator lives through the rest of the worker kills; its memory is read around them.
  const beforeKb = rssKb(run.coordinator);
  run.killsAtLastStart = run.workerKills;
  mark(run, 'last coordinator');
  await lanes;
  run.hostile = false;
  await submitting;
  mark(run, 'kills done');
  // Calm: fresh workers finish the backlog.
  for (let i = 0; i < CHAOS.workers; i++) startWorker(run);
  await until(`${run.acked.size} jobs ending`, async () => (await endedJobs(run)) >= run.acked.size, CHAOS.drainMs, 100);
  mark(run, 'all ended');
  return { beforeKb, afterKb: rssKb(run.coordinator) };
}

/** Reads every acknowledged job back and checks it: none lost, none accepted twice, memory under its bound. */
async function verify(t: TestContext, backend: string, run: Run, rss: { beforeKb: number; afterKb: number }): Promise<void> {
  const jobs = await getAll(run.client, [...run.acked.values()]);
  const runs = new Set(readFileSync(run.runsFile, 'utf8').split('\n').filter((l) => l.length > 0));
  const v = judge(jobs, runs);
  const mib = (kb: number): number => Math.round(kb / 1024);
  t.diagnostic(
    `${backend}: acknowledged ${v.acknowledged}, lost ${v.lost.length}, accepted twice ${v.acceptedTwice.length}, ` +
      `failed after being lost by ${LIMITS.jobLostAttemptsMax} killed workers ${v.gaveUpOnLost.length}; ` +
      `worker SIGKILLs ${run.workerKills}, coordinator SIGKILLs ${run.coordinatorKills}; attempts ${v.attempts}, task runs ${runs.size}; ` +
      `coordinator RSS ${mib(rss.beforeKb)} MiB before, ${mib(rss.afterKb)} MiB after`,
  );
  t.diagnostic(`timeline: ${run.timeline.join('; ')}`);
  assert.ok(run.workerKills >= CHAOS.workerKills && run.coordinatorKills >= CHAOS.coordinatorKills);
  assert.ok(v.acknowledged > 0);
  assert.deepEqual(v.lost, [], 'no acknowledged job lost');
  assert.deepEqual(v.acceptedTwice, [], 'no job accepted twice');
  assert.deepEqual(v.notRecorded, [], 'every accepted result comes from a run the task recorded');
  assert.equal(sum(await countsOf(run.client, 'chaos')), run.acked.size, 'one job per idempotency key');
  for (const [when, kb] of [['before', rss.beforeKb], ['after', rss.afterKb]] as const) {
    assert.ok(kb < CHAOS.coordinatorRssMaxMb * 1024, `coordinator RSS ${when}: ${kb} KiB, bound ${CHAOS.coordinatorRssMaxMb} MiB`);
  }
}

async function chaosRun(t: TestContext, backend: string, db: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-chaos-'));
  const runsFile = join(dir, 'runs.txt');
  writeFileSync(runsFile, '');
  const port = await freePort();
  const client = new GafferClient({ url: `http://127.0.0.1:${port}` });
  const run: Run = {
    dir, runsFile, port, db, client, coordinator: null as unknown as Proc, workers: new Set(),
    workerKills: 0, coordinatorKills: 0, workerSeq: 0, acked: new Map(), hostile: true,
    killsAtLastStart: null, timeline: [], startedAt: Date.now(), lastSubmitError: null,
  };
  try {
    const rss = await hostileRun(run);
    await verify(t, backend, run, rss);
  } catch (err) {
    mark(run, `failed (last refused submit: ${run.lastSubmitError})`);
    throw new Error(`${(err as Error).message}\ntimeline: ${run.timeline.join('; ')}\n${run.coordinator ? tails(run.coordinator) : ''}`, { cause: err });
  } finally {
    run.hostile = false;
    await Promise.all([...run.workers].map((p) => kill9(p).catch(() => undefined)));
    if (run.coordinator) await stop(run.coordinator);
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('chaos: SIGKILLed workers and coordinators lose no acknowledged job and accept none twice (real processes on 127.0.0.1)', () => {
  it(`on SQLite: ${CHAOS.workerKills} worker and ${CHAOS.coordinatorKills} coordinator SIGKILLs`, { timeout: CHAOS.runMs + CHAOS.drainMs }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gaffer-chaos-db-'));
    try {
      await chaosRun(t, 'SQLite', ['--db', join(dir, 'gaffer.db')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`on PostgreSQL: ${CHAOS.workerKills} worker and ${CHAOS.coordinatorKills} coordinator SIGKILLs`, { timeout: CHAOS.runMs + CHAOS.drainMs }, async (t) => {
    const db = await testDatabase();
    try {
      await chaosRun(t, 'PostgreSQL', ['--db', db.url, '--pg-schema', db.schema]);
    } finally {
      await db.drop();
    }
  });
});
