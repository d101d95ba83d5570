// Client commands: submit, jobs, job, workers, cancel, retry, stats, and the
// admin commands quarantine and release.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { GafferClient } from '../client/client.ts';
import { TRACE_REPLICAS_MIN } from '../coordinator/validate.ts';
import { GafferError } from '../types/errors.ts';
import type { Job, JobSpec, Json, Worker } from '../types/model.ts';
import { isTerminalJobState } from '../types/states.ts';
import { clientFrom, tokenOption, urlOption } from './common.ts';
import { TRACE_TOLERANCE_DEFAULT } from './config.ts';
import { jobDetail, jobsTable, shortDuration, table } from './job-views.ts';

interface Common {
  url?: string;
  token?: string;
  json?: boolean;
}

const WAIT_POLL_MS = 1000;

export function withCommon(cmd: Command): Command {
  return cmd.addOption(urlOption()).addOption(tokenOption()).option('--json', 'print JSON for scripts');
}

function out(opts: Common, value: unknown, human: () => string): void {
  console.log(opts.json ? JSON.stringify(value, null, 2) : human());
}

export function parsePayload(text: string | undefined): Json {
  if (text === undefined) return null;
  const raw = text.startsWith('@') ? readFileSync(text.slice(1), 'utf8') : text;
  try {
    return JSON.parse(raw) as Json;
  } catch (err) {
    throw new Error(`--payload is not valid JSON: ${(err as Error).message}`);
  }
}

/** A whole number of at least `min`, for an option's value; commander reports the error with the option's name. */
const wholeAtLeast = (min: number) => (v: string): number => {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`takes a whole number of at least ${min}`);
  return n;
};

const nonNegative = (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('takes a number of 0 or more');
  return n;
};

interface TrustFlags {
  replicas?: number;
  quorum?: number;
  margin?: number;
  distinct?: string;
  verify?: string;
  tolerance?: number;
  verifyQueue?: string;
  adaptive?: boolean;
}

const refuse = (message: string): never => {
  throw new GafferError('INVALID_INPUT', message);
};

/**
 * The replication and verification fields of a submit, from its flags. The
 * combinations the flags alone show to be wrong are refused here; the rest
 * (with the queue's defaults) the coordinator checks.
 */
export function trustFields(f: TrustFlags): Pick<JobSpec, 'replicas' | 'quorum' | 'margin' | 'distinct' | 'verify' | 'adaptive'> {
  const out: Pick<JobSpec, 'replicas' | 'quorum' | 'margin' | 'distinct' | 'verify' | 'adaptive'> = {};
  if (f.replicas !== undefined) out.replicas = f.replicas;
  if (f.quorum !== undefined) {
    if (f.replicas !== undefined && f.quorum > f.replicas) refuse(`--quorum ${f.quorum} cannot exceed --replicas ${f.replicas}`);
    out.quorum = f.quorum;
  }
  if (f.margin !== undefined) out.margin = f.margin;
  if (f.distinct !== undefined) {
    const by = f.distinct;
    if (by !== 'operator' && by !== 'worker') return refuse(`--distinct takes "operator" or "worker" (got "${by}")`);
    out.distinct = by;
  }
  if (f.verify !== undefined && f.verifyQueue !== undefined) refuse('give --verify trace or --verify-queue QUEUE, not both');
  if (f.verify !== undefined) {
    if (f.verify !== 'trace') refuse(`--verify takes "trace" (got "${f.verify}"); for a verifier queue give --verify-queue QUEUE`);
    if (f.replicas !== undefined && f.replicas < TRACE_REPLICAS_MIN) {
      refuse(`--verify trace compares the replicas' resource traces: it needs --replicas ${TRACE_REPLICAS_MIN} or more (got ${f.replicas})`);
    }
    out.verify = { mode: 'trace', tolerance: f.tolerance ?? TRACE_TOLERANCE_DEFAULT };
  } else if (f.tolerance !== undefined) {
    refuse('--tolerance goes with --verify trace');
  }
  if (f.verifyQueue !== undefined) {
    if (f.verifyQueue.trim() === '') refuse('--verify-queue takes a queue name');
    if (f.replicas !== undefined && f.replicas !== 1) refuse(`--verify-queue checks one result at a time: it needs --replicas 1 (got ${f.replicas})`);
    out.verify = { mode: 'queue', queue: f.verifyQueue };
  }
  if (f.adaptive) {
    if (f.replicas !== undefined && f.replicas < 2) refuse(`--adaptive lets a trusted worker run a replicated job alone: it needs --replicas 2 or more (got ${f.replicas})`);
    out.adaptive = true;
  }
  return out;
}

/** Long-polls until the job ends, showing its state and progress as it goes. */
async function waitWithProgress(client: GafferClient, job: Job, quiet: boolean): Promise<Job> {
  const tty = process.stderr.isTTY && !quiet;
  let last = '';
  let current = job;
  const started = Date.now();
  while (!isTerminalJobState(current.state)) {
    current = await client.wait(job.id, WAIT_POLL_MS);
    const attempts = (await client.get(job.id)).attemptList;
    const progress = attempts.length ? attempts[attempts.length - 1]?.progress : undefined;
    const secs = ((Date.now() - started) / 1000).toFixed(0);
    const line = `${current.state} · attempt ${current.attempts}${progress !== undefined && progress !== null ? ` · ${JSON.stringify(progress)}` : ''} · ${secs}s`;
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (!quiet && line.replace(/ · \d+s$/, '') !== last) console.error(line);
    last = line.replace(/ · \d+s$/, '');
  }
  if (tty) process.stderr.write('\n');
  return current;
}

export function registerClientCommands(program: Command): void {
  withCommon(program.command('submit <queue>'))
    .description('submit a job')
    .option('--payload <json>', 'the payload as JSON, or @file to read it from a file')
    .option('--priority <n>', 'higher runs first', (v) => Number.parseInt(v, 10))
    .option('--deadline <iso>', 'must start by this time (ISO 8601), or it ends expired')
    .option('--run-at <iso>', 'not before this time (ISO 8601)')
    .option('--idempotency-key <key>', 'a repeat with the same key returns the existing job')
    .option('--max-attempts <n>', 'attempts before the job fails', (v) => Number.parseInt(v, 10))
    .option('--timeout-ms <n>', 'longest run of one attempt', (v) => Number.parseInt(v, 10))
    .option('--heartbeat-timeout-ms <n>', 'silence after which a worker is taken for gone and the job moves', (v) => Number.parseInt(v, 10))
    .option('--label <k=v...>', 'labels (repeatable)')
    .option('--replicas <n>', 'run on this many distinct workers at once and compare the results', wholeAtLeast(1))
    .option('--quorum <m>', 'matching results needed to accept one (default: a majority of the replicas)', wholeAtLeast(1))
    .option('--margin <k>', 'how far the leading result must be ahead of the runner-up to be accepted (default 2)', wholeAtLeast(1))
    .option('--distinct <by>', '"operator" (default): replicas on workers of distinct operators; "worker": only distinct workers')
    .option('--verify <mode>', `"trace": compare the replicas' resource traces and reject those far from the rest (needs --replicas ${TRACE_REPLICAS_MIN} or more)`)
    .option('--tolerance <x>', `with --verify trace: how far a trace may stand from the rest (default ${TRACE_TOLERANCE_DEFAULT})`, nonNegative)
    .option('--verify-queue <queue>', 'have each result checked by a verification job on this queue (one replica)')
    .option('--adaptive', 'a worker with a long record of valid results may run it alone, with spot checks (needs --replicas 2 or more)')
    .option('--wait', 'wait for the result, showing progress; exit 1 unless it succeeded')
    .action(async (queue: string, opts: Common & Record<string, unknown>) => {
      const client = clientFrom(opts);
      const spec: JobSpec = { queue, payload: parsePayload(opts.payload as string | undefined), ...trustFields(opts as TrustFlags) };
      if (opts.priority !== undefined) spec.priority = opts.priority as number;
      if (opts.deadline !== undefined) spec.deadline = opts.deadline as string;
      if (opts.runAt !== undefined) spec.runAt = opts.runAt as string;
      if (opts.idempotencyKey !== undefined) spec.idempotencyKey = opts.idempotencyKey as string;
      if (opts.maxAttempts !== undefined) spec.maxAttempts = opts.maxAttempts as number;
      if (opts.timeoutMs !== undefined) spec.timeoutMs = opts.timeoutMs as number;
      if (opts.heartbeatTimeoutMs !== undefined) spec.heartbeatTimeoutMs = opts.heartbeatTimeoutMs as number;
      if (opts.label) spec.labels = Object.fromEntries((opts.label as string[]).map((kv) => kv.split(/=(.*)/s).slice(0, 2)));
      const { job, created } = await client.submit(spec);
      if (!opts.wait) return out(opts, { job, created }, () => `${job.id}${created ? '' : ' (existing job for this idempotency key)'}`);
      const done = await waitWithProgress(client, job, Boolean(opts.json));
      out(opts, { job: done }, () => (done.state === 'succeeded' ? JSON.stringify(done.result) : jobDetail(done)));
      if (done.state !== 'succeeded') process.exitCode = 1;
    });

  withCommon(program.command('jobs'))
    .description('list jobs, newest first')
    .option('--queue <name>')
    .option('--state <state>')
    .option('--label <k=v>')
    .option('--filler', "only the backlog keeper's filler jobs")
    .option('--no-filler', 'leave the filler jobs out')
    .option('--worker <name|id>', 'only jobs this worker had an attempt of')
    .option('--limit <n>', 'how many', '50')
    .option('--cursor <cursor>', 'from a previous page')
    .action(async (opts: Common & { queue?: string; state?: string; label?: string; filler?: boolean; worker?: string; limit: string; cursor?: string }) => {
      const client = clientFrom(opts);
      const page = await client.list({
        ...(opts.worker ? { worker: await workerIdOf(client, opts.worker) } : {}),
        ...(opts.queue ? { queue: opts.queue } : {}),
        ...(opts.state ? { state: opts.state as Job['state'] } : {}),
        ...(opts.label ? { label: opts.label } : {}),
        ...(opts.filler !== undefined ? { filler: opts.filler } : {}),
        ...(opts.cursor ? { cursor: opts.cursor } : {}),
        limit: Number.parseInt(opts.limit, 10),
      });
      out(opts, page, () => jobsTable(page.jobs, page.nextCursor));
    });

  withCommon(program.command('job <id>'))
    .description('show one job and its attempts: on which worker each ran, how it ended and why')
    .action(async (id: string, opts: Common) => {
      const client = clientFrom(opts);
      const job = await client.get(id);
      const names = opts.json ? new Map<string, string>() : await workerNames(client, job.attemptList.map((a) => a.workerId));
      out(opts, { job }, () => jobDetail(job, job.attemptList, names));
    });

  withCommon(program.command('workers'))
    .description('list workers: state, slots, judged results (valid, invalid, timed out, streak) and reliability checks')
    .action(async (opts: Common) => {
      const workers = await clientFrom(opts).workers();
      out(opts, { workers }, () => workersTable(workers));
    });

  withCommon(program.command('quarantine <workerId>'))
    .description('quarantine a worker (admin): it gets no real work, and the attempts it holds go back to the queue')
    .option('--reason <text>', 'why, shown in listings')
    .action(async (id: string, opts: Common & { reason?: string }) => {
      const worker = (await clientFrom(opts).quarantine(id, opts.reason)) as Worker;
      out(opts, { worker }, () => `${worker.id} quarantined${worker.quarantineReason ? `: ${worker.quarantineReason}` : ''}`);
    });

  withCommon(program.command('release <workerId>'))
    .description('release a worker from quarantine (admin), with a fresh record: it is checked again where it failed')
    .action(async (id: string, opts: Common) => {
      const worker = (await clientFrom(opts).release(id)) as Worker;
      out(opts, { worker }, () => `${worker.id} released (${worker.state})`);
    });

  withCommon(program.command('cancel <id>'))
    .description('cancel a job')
    .option('--reason <text>')
    .action(async (id: string, opts: Common & { reason?: string }) => {
      const job = await clientFrom(opts).cancel(id, opts.reason);
      out(opts, { job }, () => `${job.id} ${job.state}`);
    });

  withCommon(program.command('retry <id>'))
    .description('put a failed, cancelled or expired job back in the queue')
    .action(async (id: string, opts: Common) => {
      const job = await clientFrom(opts).retry(id);
      out(opts, { job }, () => `${job.id} ${job.state}`);
    });

  withCommon(program.command('stats'))
    .description('queue statistics: jobs per state, slots used of total, completions per minute and run times over the recent window')
    .action(async (opts: Common) => {
      const stats = (await clientFrom(opts).queues()) as QueuesAnswer;
      out(opts, stats, () => statsTable(stats));
    });
}

/** A check, compactly: `hash ok 812ms`, `hash pending`, `hash FAILED`. */
function checkCell(queue: string, c: Worker['checks'][string]): string {
  const state = c.state === 'passed' ? 'ok' : c.state === 'failed' ? 'FAILED' : 'pending';
  return `${queue} ${state}${c.speedMs !== null ? ` ${c.speedMs}ms` : ''}`;
}

/** One line per worker under a header; a quarantined worker's reason and a failed check's on a line below it. */
export function workersTable(workers: readonly Worker[]): string {
  if (workers.length === 0) return 'no workers';
  const rows = workers.map((w) => {
    const r = w.reputation;
    const declared = Object.values(w.queues).reduce((a, b) => a + b, 0);
    // Slow start: while its credit is below what it declares, say how many it may hold at once.
    const held = r.credit < declared ? ` (credit ${r.credit})` : '';
    const paused = new Set(w.pausedQueues ?? []);
    const slots = Object.entries(w.queues).map(([q, n]) => `${q} ${w.running[q] ?? 0}/${n}${paused.has(q) ? ' paused' : ''}`).join(', ') + held;
    const checks = Object.entries(w.checks).map(([q, c]) => checkCell(q, c)).join(', ');
    const state = w.draining && w.state !== 'draining' ? `${w.state}, draining` : w.state;
    const cells = [w.id, w.name, w.operator ?? '-', w.host ?? '-', w.pid === null ? '-' : String(w.pid), state, String(r.valid), String(r.invalid), String(r.timedOut), String(r.streak), slots, checks || '-'];
    return { cells, w };
  });
  const header = ['ID', 'NAME', 'OPERATOR', 'HOST', 'PID', 'STATE', 'VALID', 'INVALID', 'TIMEDOUT', 'STREAK', 'SLOTS', 'CHECKS'];
  const [head, ...body] = table(header, rows.map((r) => r.cells), new Set([4, 6, 7, 8, 9]));
  const lines = [head!];
  for (const [i, { w }] of rows.entries()) {
    lines.push(body[i]!);
    if (w.quarantined) lines.push(`    quarantined: ${w.quarantineReason ?? 'no reason given'}`);
    for (const [q, c] of Object.entries(w.checks)) if (c.state === 'failed' && c.reason) lines.push(`    check ${q} failed: ${c.reason}`);
  }
  return lines.join('\n');
}

/** What GET /v1/queues answers, as far as the table shows it. */
export interface QueuesAnswer {
  windowMs: number;
  queues: {
    queue: string;
    paused?: boolean;
    counts: Record<string, number>;
    slots: { workers: number; total: number; used: number };
    recent: { completed: number; failed: number; throughputPerMinute: number; runTimeMeanMs: number | null; runTimeP95Ms: number | null };
  }[];
}

const STATS_HEADER = ['QUEUE', 'WAITING', 'QUEUED', 'RUNNING', 'VERIFYING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED', 'WORKERS', 'SLOTS', 'PER-MIN', 'MEAN', 'P95'];
const STATS_STATES = ['waiting', 'queued', 'running', 'verifying', 'succeeded', 'failed', 'cancelled', 'expired'];

/** One line per queue under a header: jobs per state, slots used/total, and the recent window's rate and run times. */
export function statsTable(stats: QueuesAnswer): string {
  if (stats.queues.length === 0) return 'no queues';
  const rows = stats.queues.map((q) => [
    q.paused ? `${q.queue} (paused)` : q.queue,
    ...STATS_STATES.map((s) => String(q.counts[s] ?? 0)),
    String(q.slots.workers),
    `${q.slots.used}/${q.slots.total}`,
    String(q.recent.throughputPerMinute),
    shortDuration(q.recent.runTimeMeanMs),
    shortDuration(q.recent.runTimeP95Ms),
  ]);
  const widths = STATS_HEADER.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const window = `per-min, mean and p95 over the last ${shortDuration(stats.windowMs)}`;
  return [line(STATS_HEADER), ...rows.map(line), window].join('\n');
}

/** A worker's id from its id or name; a name two workers share is refused with their ids. */
async function workerIdOf(client: GafferClient, nameOrId: string): Promise<string> {
  const workers = await client.workers();
  if (workers.some((w) => w.id === nameOrId)) return nameOrId;
  const named = workers.filter((w) => w.name === nameOrId);
  if (named.length === 1) return named[0]!.id;
  if (named.length === 0) throw new GafferError('WORKER_NOT_FOUND', `no worker is named or has the id ${nameOrId} (gaffer workers lists them)`);
  throw new GafferError('INVALID_INPUT', `${named.length} workers are named ${nameOrId}: give one of their ids (${named.map((w) => w.id).join(', ')})`);
}

/** Names of the workers with these ids, for a job's attempts; a worker that cannot be read keeps its id. */
async function workerNames(client: GafferClient, ids: readonly string[]): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  await Promise.all(
    [...new Set(ids)].map((id) =>
      client.worker(id).then(
        (w) => names.set(id, (w as Worker).name),
        () => undefined,
      ),
    ),
  );
  return names;
}
