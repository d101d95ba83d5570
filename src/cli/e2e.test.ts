// End to end: the `gaffer` command as users run it, as real processes on
// 127.0.0.1. A coordinator (`gaffer serve`), worker processes (`gaffer worker`
// with --exec or --module), the TypeScript client and the CLI client commands.
// Crashes are real SIGKILLs. Nothing here waits on a sleep: tests wait on
// stdout lines, process exits, or poll the API in bounded loops.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { GafferClient, type JobWithAttempts } from '../client/client.ts';
import type { Attempt, Job, JobSpec, Json, Worker as WorkerInfo } from '../types/model.ts';
import { resultHash } from '../store/rules.ts';
import {
  allEnded,
  BOUNDS,
  connectedWorkers,
  countsOf,
  exitWithin,
  freePort,
  gaffer,
  getAll,
  kill9,
  stop,
  sum,
  tails,
  until,
  type Exit,
  type Proc,
  type QueueStats,
} from './testing.ts';

const SQUARE_SH = fileURLToPath(new URL('./fixtures/square.sh', import.meta.url));
const SQUARE_MODULE = fileURLToPath(new URL('./fixtures/square-module.ts', import.meta.url));
const GPU_HOLD = fileURLToPath(new URL('./fixtures/gpu-hold.ts', import.meta.url));

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const SQUARE_CMD = `sh ${shellQuote(SQUARE_SH)}`;

/** An exec child whose worker was SIGKILLed is orphaned; it ends on its own in milliseconds, but is reaped here to be sure. */
function reapFixtureChildren(pidDir: string): void {
  if (!existsSync(pidDir)) return;
  for (const name of readdirSync(pidDir)) {
    const pid = Number(readFileSync(join(pidDir, name), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone
    }
    if (!cmdline.includes('square.sh')) continue; // the pid was reused by something else: not ours
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // not a group leader, or gone already
      }
    }
  }
}

// ---- Per-test scratch: a temp dir and the processes started in it ----

interface Scratch {
  dir: string;
  procs: Proc[];
}

let scratch: Scratch;

beforeEach(() => {
  scratch = { dir: mkdtempSync(join(tmpdir(), 'gaffer-e2e-')), procs: [] };
});

afterEach(async () => {
  // Workers first, so that they drain while their coordinator is still up.
  const [workers, others] = [scratch.procs.filter((p) => p.name.startsWith('worker')), scratch.procs.filter((p) => !p.name.startsWith('worker'))];
  await Promise.all(workers.map((p) => stop(p)));
  await Promise.all(others.map((p) => stop(p)));
  reapFixtureChildren(join(scratch.dir, 'pids'));
  rmSync(scratch.dir, { recursive: true, force: true });
});

function track(p: Proc): Proc {
  scratch.procs.push(p);
  return p;
}

const LISTENING = /^gaffer: listening on (http:\/\/127\.0\.0\.1:\d+) \(database (.+)\)$/;

async function startServe(port = 0, name = 'serve'): Promise<{ proc: Proc; url: string }> {
  const proc = track(gaffer(name, ['serve', '--port', String(port), '--db', join(scratch.dir, 'gaffer.db'), '--log-level', 'warn']));
  const m = await proc.waitLine(LISTENING);
  assert.equal(m[2], join(scratch.dir, 'gaffer.db'));
  return { proc, url: m[1]! };
}

interface WorkerArgs {
  url: string;
  name: string;
  queues: string[];
  exec?: string;
  module?: string;
  extra?: string[];
  env?: Record<string, string>;
}

function startWorker(w: WorkerArgs): Proc {
  const args = ['worker', '--url', w.url, '--name', w.name, '--log-level', 'warn'];
  for (const q of w.queues) args.push('--queue', q);
  if (w.exec) args.push('--exec', w.exec);
  if (w.module) args.push('--module', w.module);
  args.push('--tmp-dir', join(scratch.dir, 'tmp'), '--out-dir', join(scratch.dir, 'out'), ...(w.extra ?? []));
  return track(gaffer(`worker ${w.name}`, args, w.env));
}


interface SquareResult {
  n: number;
  square: number;
  attempt: string;
}

/**
 * The acceptance invariants for a job of the square fixture: it succeeded with
 * the square of its own input, exactly one of its attempts completed, and the
 * accepted result is that attempt's own (by its hash, and the fixture echoes its attempt id).
 */
function checkSquareJob(job: JobWithAttempts): Attempt {
  const n = (job.payload as { n: number }).n;
  assert.equal(job.state, 'succeeded', `job ${job.id} (n=${n}) ended ${job.state}: ${JSON.stringify(job.error)}`);
  const result = job.result as unknown as SquareResult;
  assert.equal(result.n, n, `job ${job.id}: result for another input`);
  assert.equal(result.square, n * n, `job ${job.id}: wrong square`);
  const completed = job.attemptList.filter((a) => a.state === 'completed');
  assert.equal(completed.length, 1, `job ${job.id}: ${completed.length} completed attempts: ${JSON.stringify(job.attemptList.map((a) => a.state))}`);
  const accepted = completed[0]!;
  // A single-replica attempt keeps the hash of its result (the job keeps the result itself).
  assert.equal(accepted.resultHash, resultHash(job.result), `job ${job.id}: accepted result differs from its completed attempt's`);
  assert.equal(result.attempt, accepted.id, `job ${job.id}: the accepted result came from attempt ${result.attempt}, not the completed ${accepted.id}`);
  return accepted;
}

// ---- The tests ----

describe('gaffer end to end (real processes on 127.0.0.1)', () => {
  it('runs 300 jobs on three exec workers and reassigns the attempts of a worker killed with SIGKILL', { timeout: 120_000 }, async (t) => {
    const { url } = await startServe();
    const client = new GafferClient({ url });
    const pidDir = join(scratch.dir, 'pids');
    mkdirSync(pidDir);
    const names = ['w1', 'w2', 'w3'];
    const procs = names.map((name) => startWorker({ url, name, queues: ['square:2'], exec: SQUARE_CMD, env: { E2E_PID_DIR: pidDir } }));
    const workers = await connectedWorkers(client, names);
    const victim = workers[0]!;

    // Every job holds at a gate until the test opens it, so the attempts w1 runs when it is killed
    // are still running then: none of them can finish first.
    const gate = join(scratch.dir, 'gate');
    const total = 300;
    const specs: JobSpec[] = Array.from({ length: total }, (_, i) => ({
      queue: 'square',
      payload: { n: i - 150, spin: 300, sleep: '0.02', gate },
      heartbeatTimeoutMs: 1500,
      maxAttempts: 5,
    }));
    const ids: string[] = [];
    for (let i = 0; i < total; i += 50) {
      const results = await client.submitMany(specs.slice(i, i + 50));
      assert.ok(results.every((r) => r.created));
      ids.push(...results.map((r) => r.job.id));
    }

    // Kill w1 while it runs jobs: both its slots hold attempts that the coordinator shows running
    // and whose child processes have started (they wrote their pid).
    const inFlight = await until('w1 running two attempts', async () => {
      const w = (await client.worker(victim.id)) as { attempts: Attempt[] };
      const started = w.attempts.filter((a) => a.state === 'running' && existsSync(join(pidDir, a.id)));
      return started.length === 2 ? started : undefined;
    });
    await kill9(procs[0]!);
    writeFileSync(gate, 'open');

    const counts = await allEnded(client, 'square', total);
    assert.equal(counts.succeeded, total, `counts: ${JSON.stringify(counts)}`);
    const jobs = await getAll(client, ids);
    for (const job of jobs) checkSquareJob(job);

    // The killed worker's attempts: each completed before the kill, or was lost (LEASE_LOST) and
    // its job completed later on another worker.
    let lost = 0;
    for (const job of jobs) {
      job.attemptList.forEach((a, i) => {
        if (a.workerId !== victim.id || a.state === 'completed') return;
        lost++;
        assert.equal(a.state, 'lost', `attempt ${a.id} of the killed worker ended ${a.state}`);
        assert.equal(a.error?.code, 'LEASE_LOST');
        const later = job.attemptList.slice(i + 1).find((b) => b.state === 'completed');
        assert.ok(later, `job ${job.id}: no completed attempt after the lost ${a.id}`);
        assert.notEqual(later.workerId, victim.id);
        assert.ok(later.leasedAt >= a.leasedAt);
      });
    }
    const lostIds = new Set(jobs.flatMap((j) => j.attemptList.filter((a) => a.state === 'lost').map((a) => a.id)));
    for (const a of inFlight) assert.ok(lostIds.has(a.id), `attempt ${a.id}, running on w1 when it was killed, was not marked lost`);
    assert.ok(lost >= inFlight.length);
    t.diagnostic(`attempts of the killed worker lost and run again elsewhere: ${lost}`);
    const after = (await client.workers()).find((w) => w.id === victim.id);
    assert.equal(after?.connected, false);
    assert.equal(after?.state, 'offline');
    const survivors = new Set(jobs.map((j) => j.attemptList.find((a) => a.state === 'completed')!.workerId));
    assert.ok(survivors.has(workers[1]!.id) && survivors.has(workers[2]!.id), 'both surviving workers completed jobs');
  });

  it('loses no acknowledged job and accepts one result per job across a coordinator SIGKILL and restart', { timeout: 120_000 }, async (t) => {
    const port = await freePort();
    const first = await startServe(port, 'serve (first)');
    const url = first.url;
    const client = new GafferClient({ url });
    const pidDir = join(scratch.dir, 'pids');
    mkdirSync(pidDir);
    const names = ['r1', 'r2'];
    for (const name of names) startWorker({ url, name, queues: ['restart:3'], exec: SQUARE_CMD, env: { E2E_PID_DIR: pidDir } });
    await connectedWorkers(client, names);

    // Jobs 0-29 run first (priority 1); jobs 30-59 hold at a gate that opens after the restart, so
    // when the coordinator dies the workers are certainly running attempts (all six slots); jobs
    // 60-119 are submitted while it is down.
    const gate = join(scratch.dir, 'gate');
    const total = 120;
    const batch = 15;
    const slots = 6;
    const specs: JobSpec[] = Array.from({ length: total }, (_, i) => ({
      queue: 'restart',
      payload: i >= 30 && i < 60 ? ({ n: i, sleep: '0.02', gate } as Json) : { n: i, sleep: '0.02' },
      priority: i < 30 ? 1 : 0,
      idempotencyKey: `e2e-restart-${i}`,
      heartbeatTimeoutMs: 3000,
      maxAttempts: 10,
    }));
    const acked = new Map<string, string>(); // idempotency key -> job id
    const submitBatch = async (from: number): Promise<boolean> => {
      try {
        const results = await client.submitMany(specs.slice(from, from + batch));
        results.forEach((r, k) => {
          const key = specs[from + k]!.idempotencyKey!;
          const seen = acked.get(key);
          if (seen !== undefined) assert.equal(r.job.id, seen, `idempotency key ${key} gave two jobs`);
          acked.set(key, r.job.id);
        });
        return true;
      } catch {
        return false; // not acknowledged: submitted again below with the same keys
      }
    };
    for (let i = 0; i < total / 2; i += batch) assert.ok(await submitBatch(i));

    await until('the ungated jobs done and every slot running a gated one', async () => {
      const c = await countsOf(client, 'restart');
      return (c.succeeded ?? 0) >= 30 && (c.running ?? 0) >= slots;
    });
    await kill9(first.proc);

    // Submits go on while the coordinator is down (the client retries for a while); it comes back
    // on the same port and database.
    const during = [];
    for (let i = total / 2; i < total; i += batch) during.push(submitBatch(i).then((ok) => ({ i, ok })));
    const second = await startServe(port, 'serve (restarted)');
    assert.equal(second.url, url);
    writeFileSync(gate, 'open');
    const outcomes = await Promise.all(during);
    for (const { i, ok } of outcomes) if (!ok) assert.ok(await submitBatch(i), `batch at ${i} refused after the restart`);
    assert.equal(acked.size, total);

    await connectedWorkers(client, names);
    const counts = await allEnded(client, 'restart', total);
    assert.equal(sum(counts), total, `one job per idempotency key: ${JSON.stringify(counts)}`);
    assert.equal(counts.succeeded, total, `counts: ${JSON.stringify(counts)}`);
    const jobs = await getAll(client, [...acked.values()]);
    for (const job of jobs) checkSquareJob(job);
    const lost = jobs.flatMap((j) => j.attemptList).filter((a) => a.state === 'lost').length;
    t.diagnostic(`batches acknowledged across the outage by client retries: ${outcomes.filter((o) => o.ok).length} of ${outcomes.length}; attempts lost: ${lost}`);
  });

  it('answers 100 concurrent request() callers each with its own result', { timeout: 90_000 }, async () => {
    const { url } = await startServe();
    const names = ['m1', 'm2'];
    for (const name of names) startWorker({ url, name, queues: ['rpc:4'], module: SQUARE_MODULE });
    const workers = await connectedWorkers(new GafferClient({ url }), names);

    const callers = Array.from({ length: 100 }, (_, i) => ({ client: new GafferClient({ url }), n: 7 * i - 300, tag: `caller-${i}-${randomUUID()}` }));
    const results = await Promise.all(
      callers.map(async (c) => ({ c, result: (await c.client.request('rpc', { n: c.n, tag: c.tag }, { timeoutMs: 60_000 })) as { n: number; square: number; tag: string; attemptId: string } })),
    );
    for (const { c, result } of results) {
      assert.equal(result.tag, c.tag, 'a caller got another caller\'s result');
      assert.equal(result.n, c.n);
      assert.equal(result.square, c.n * c.n);
    }
    assert.equal(new Set(results.map((r) => r.result.attemptId)).size, 100);
    const counts = await countsOf(new GafferClient({ url }), 'rpc');
    assert.equal(counts.succeeded, 100);
    assert.equal(workers.length, 2);
  });

  it('pins one GPU to each of two concurrent exec attempts (CUDA_VISIBLE_DEVICES)', { timeout: 60_000 }, async () => {
    const { url } = await startServe();
    const client = new GafferClient({ url });
    const cmd = `${shellQuote(process.execPath)} ${shellQuote(GPU_HOLD)}`;
    startWorker({ url, name: 'gpu-box', queues: ['gpu:2'], exec: cmd, extra: ['--gpus', '0,1'] });
    const [worker] = await connectedWorkers(client, ['gpu-box']);
    assert.deepEqual(worker!.gpuIds, [0, 1]);

    const rendezvous = join(scratch.dir, 'rendezvous');
    mkdirSync(rendezvous);
    const run = (): Promise<Json> => client.request('gpu', { dir: rendezvous, expect: 2 }, { requires: { gpus: 1 }, maxAttempts: 1, timeoutMs: 45_000 });
    const seen = (await Promise.all([run(), run()])) as { cuda: string; peers: Record<string, string> }[];
    assert.deepEqual(seen.map((r) => r.cuda).sort(), ['0', '1']);
    // Each saw the other running: both held their GPU at the same time.
    for (const r of seen) assert.deepEqual(Object.values(r.peers).sort(), ['0', '1']);
    const jobs = (await client.list({ queue: 'gpu' })).jobs;
    assert.equal(jobs.length, 2);
    const gpuIds = (await getAll(client, jobs.map((j) => j.id))).map((j) => j.attemptList.map((a) => a.gpuIds));
    assert.deepEqual(gpuIds.map((g) => JSON.stringify(g)).sort(), ['[[0]]', '[[1]]']);
  });

  it('devstack --workers 3 --jobs 100 --once --port 0 runs the demo and exits 0', { timeout: 120_000 }, async () => {
    const proc = track(gaffer('devstack', ['devstack', '--workers', '3', '--jobs', '100', '--once', '--port', '0'], {}, true));
    const exit = await exitWithin(proc, 110_000);
    assert.deepEqual(exit, { code: 0, signal: null }, tails(proc));
    assert.match(proc.stdout(), /^summary: 100 succeeded, 0 did not, of 100 jobs$/m, tails(proc));
    assert.match(proc.stdout(), /^ {2}3 workers connected; submitting 100 jobs/m);
    // The extra worker is frozen while it holds a job; its lease runs out and the job runs elsewhere.
    assert.match(proc.stdout(), /froze stall-1 while it held job/, tails(proc));
    assert.match(proc.stdout(), /stall-1's lease ran out: attempt lost/, tails(proc));
    assert.match(proc.stdout(), /jobs retried, [1-9]\d* attempts lost$/m, tails(proc));
  });

  it('devstack stopped by SIGTERM mid-run takes its worker processes with it', { timeout: 60_000 }, async () => {
    // More jobs than one batch holds (submitBatchMaxJobs), and far more than finish before the signal.
    const proc = track(gaffer('devstack (interrupted)', ['devstack', '--workers', '2', '--jobs', '1200', '--port', '0'], {}, true));
    await proc.waitLine(/^ {2}2 workers connected; submitting 1200 jobs/);
    await proc.waitLine(/^ {2}.*running \d+/);
    const pid = proc.child.pid!;
    const workers = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    assert.equal(workers.length, 3, `devstack's children (two workers and the one it freezes): ${workers.join(', ')}`);
    proc.child.kill('SIGTERM'); // devstack alone, not its group
    const exit = await exitWithin(proc, 30_000);
    assert.equal(exit.code, 143, tails(proc));
    for (const w of workers) assert.equal(existsSync(`/proc/${w}`), false, `worker ${w} outlived devstack`);
  });

  it('serves the CLI client commands: submit --wait, jobs, job, workers, stats, cancel', { timeout: 90_000 }, async () => {
    const { url } = await startServe();
    const client = new GafferClient({ url });
    startWorker({ url, name: 'cli-worker', queues: ['cli:2'], exec: SQUARE_CMD });
    await connectedWorkers(client, ['cli-worker']);
    const cli = async (args: string[], name = `gaffer ${args[0]}`): Promise<{ exit: Exit; out: string; proc: Proc }> => {
      const proc = track(gaffer(name, [...args, '--url', url]));
      const exit = await exitWithin(proc, 30_000);
      return { exit, out: proc.stdout(), proc };
    };

    const [ok, failing, queued] = await Promise.all([
      cli(['submit', 'cli', '--payload', '{"n":3}', '--wait']),
      cli(['submit', 'cli', '--payload', '{"n":4,"fail":true}', '--wait', '--json']),
      cli(['submit', 'nobody.serves.this', '--payload', '{"n":5}', '--json']),
    ]);
    assert.deepEqual(ok.exit, { code: 0, signal: null }, tails(ok.proc));
    const printed = JSON.parse(ok.out.trim().split('\n').at(-1)!) as SquareResult;
    assert.deepEqual([printed.n, printed.square], [3, 9]);

    assert.deepEqual(failing.exit, { code: 1, signal: null }, tails(failing.proc));
    const failed = (JSON.parse(failing.out) as { job: Job }).job;
    assert.equal(failed.state, 'failed');
    assert.match(failed.error?.message ?? '', /failing on request/);

    assert.deepEqual(queued.exit, { code: 0, signal: null }, tails(queued.proc));
    const submitted = JSON.parse(queued.out) as { job: Job; created: boolean };
    assert.equal(submitted.created, true);
    assert.equal(submitted.job.state, 'queued');
    const id = submitted.job.id;

    const cancelled = await cli(['cancel', id]);
    assert.deepEqual(cancelled.exit, { code: 0, signal: null }, tails(cancelled.proc));
    assert.equal(cancelled.out.trim(), `${id} cancelled`);

    const [jobs, job, workers, stats] = await Promise.all([
      cli(['jobs', '--json']),
      cli(['job', id, '--json']),
      cli(['workers', '--json']),
      cli(['stats', '--json']),
    ]);
    for (const r of [jobs, job, workers, stats]) assert.deepEqual(r.exit, { code: 0, signal: null }, tails(r.proc));
    const page = JSON.parse(jobs.out) as { jobs: Job[]; nextCursor: string | null };
    assert.equal(page.jobs.length, 3);
    assert.deepEqual(page.jobs.map((j) => j.state).sort(), ['cancelled', 'failed', 'succeeded']);
    assert.equal(page.nextCursor, null);
    const shown = (JSON.parse(job.out) as { job: JobWithAttempts }).job;
    assert.equal(shown.id, id);
    assert.equal(shown.state, 'cancelled');
    assert.equal(shown.error?.code, 'CANCELLED');
    const listed = (JSON.parse(workers.out) as { workers: WorkerInfo[] }).workers;
    assert.deepEqual(listed.map((w) => [w.name, w.connected, w.queues]), [['cli-worker', true, { cli: 2 }]]);
    const queues = (JSON.parse(stats.out) as { queues: QueueStats[] }).queues;
    const cliQueue = queues.find((q) => q.queue === 'cli');
    assert.deepEqual([cliQueue?.counts.succeeded, cliQueue?.counts.failed], [1, 1]);
    assert.equal(queues.find((q) => q.queue === 'nobody.serves.this')?.counts.cancelled, 1);

    // Without --json, stats is a table like jobs and workers: a header, a row per queue, the window.
    const table = await cli(['stats'], 'gaffer stats (table)');
    assert.deepEqual(table.exit, { code: 0, signal: null }, tails(table.proc));
    const [header, ...rows] = table.out.trimEnd().split('\n');
    assert.deepEqual(header!.split(/\s+/), ['QUEUE', 'WAITING', 'QUEUED', 'RUNNING', 'VERIFYING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED', 'WORKERS', 'SLOTS', 'PER-MIN', 'MEAN', 'P95']);
    const row = (queue: string): string[] => rows.find((r) => r.startsWith(`${queue} `))?.split(/\s+/) ?? [];
    assert.deepEqual(row('cli').slice(0, 11), ['cli', '0', '0', '0', '0', '1', '1', '0', '0', '1', '0/2'], table.out);
    assert.deepEqual(row('nobody.serves.this').slice(0, 11), ['nobody.serves.this', '0', '0', '0', '0', '0', '0', '1', '0', '0', '0/0'], table.out);
    assert.match(rows.at(-1)!, /^per-min, mean and p95 over the last /);
  });

  it('serve logs what an operator needs at info, and one line per request only at debug', { timeout: 60_000 }, async () => {
    const lines = (p: Proc): { msg?: string; level?: number }[] =>
      p.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; level?: number });
    const info = track(gaffer('serve (info)', ['serve', '--port', '0', '--db', join(scratch.dir, 'info.db'), '--log-level', 'info']));
    const url = (await info.waitLine(LISTENING))[1]!;
    await info.waitLine(/"msg":"gaffer coordinator listening"/);
    const client = new GafferClient({ url });
    const worker = startWorker({ url, name: 'log-worker', queues: ['logq:1'], exec: SQUARE_CMD });
    await connectedWorkers(client, ['log-worker']);
    await info.waitLine(/"msg":"worker attached"/);
    const { job } = await client.submit({ queue: 'logq', payload: { n: 2 } });
    assert.equal((await client.wait(job.id, 30_000)).state, 'succeeded');
    await stop(worker);
    await info.waitLine(/"msg":"worker disconnected"/);
    const start = lines(info).find((l) => l.msg === 'gaffer coordinator listening') as { url?: string; store?: string } | undefined;
    assert.deepEqual([start?.url, start?.store], [url, 'sqlite']);
    assert.deepEqual(lines(info).filter((l) => /request/.test(l.msg ?? '')), [], 'no request lines at info');

    const debug = track(gaffer('serve (debug)', ['serve', '--port', '0', '--db', join(scratch.dir, 'debug.db'), '--log-level', 'debug']));
    const debugUrl = (await debug.waitLine(LISTENING))[1]!;
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${debugUrl}/healthz`)).status, 200);
    await until('three request lines', async () => lines(debug).filter((l) => l.msg === 'request').length >= 3);
    const requests = lines(debug).filter((l) => /request/.test(l.msg ?? ''));
    assert.deepEqual(requests.map((l) => [l.msg, l.level]), [['request', 20], ['request', 20], ['request', 20]], 'one debug line per request');
  });

  it('serve --host 0.0.0.0 without a token refuses to start, with a clear message', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const db = join(scratch.dir, 'exposed.db');
    const proc = track(gaffer('serve (exposed)', ['serve', '--host', '0.0.0.0', '--port', String(port), '--db', db, '--log-level', 'warn']));
    const exit = await exitWithin(proc, 20_000);
    assert.notEqual(exit.code, 0, tails(proc));
    assert.match(proc.stderr(), /refusing to listen on 0\.0\.0\.0 without a token/);
    assert.match(proc.stderr(), /--token/);
    assert.doesNotMatch(proc.stdout(), /listening/);
    assert.equal(existsSync(db), false, 'a refused start wrote a database');
  });
});
