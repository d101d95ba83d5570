// Client commands: submit, jobs, job, workers, cancel, retry, stats.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { GafferClient } from '../client/client.ts';
import type { Job, JobSpec, Json } from '../types/model.ts';
import { isTerminalJobState } from '../types/states.ts';
import { clientFrom, tokenOption, urlOption } from './common.ts';

interface Common {
  url?: string;
  token?: string;
  json?: boolean;
}

const WAIT_POLL_MS = 1000;

function withCommon(cmd: Command): Command {
  return cmd.addOption(urlOption()).addOption(tokenOption()).option('--json', 'print JSON for scripts');
}

function out(opts: Common, value: unknown, human: () => string): void {
  console.log(opts.json ? JSON.stringify(value, null, 2) : human());
}

function parsePayload(text: string | undefined): Json {
  if (text === undefined) return null;
  const raw = text.startsWith('@') ? readFileSync(text.slice(1), 'utf8') : text;
  try {
    return JSON.parse(raw) as Json;
  } catch (err) {
    throw new Error(`--payload is not valid JSON: ${(err as Error).message}`);
  }
}

const time = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());

function jobLine(j: Job): string {
  return `${j.id}  ${j.queue.padEnd(16)} ${j.state.padEnd(10)} prio ${String(j.priority).padStart(4)}  attempts ${j.attempts}`;
}

function jobDetail(j: Job): string {
  const lines = [
    `id         ${j.id}`,
    `queue      ${j.queue}`,
    `state      ${j.state}`,
    `priority   ${j.priority}`,
    `attempts   ${j.attempts} (failures ${j.failures} of ${j.maxAttempts})`,
    `created    ${time(j.createdAt)}`,
    `finished   ${time(j.finishedAt)}`,
  ];
  if (j.deadline !== null) lines.push(`deadline   ${time(j.deadline)}`);
  if (j.dependsOn.length) lines.push(`dependsOn  ${j.dependsOn.join(', ')}`);
  if (j.error) lines.push(`error      ${j.error.code}: ${j.error.message}`);
  if (j.result !== null) lines.push(`result     ${JSON.stringify(j.result)}`);
  return lines.join('\n');
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
    .option('--wait', 'wait for the result, showing progress; exit 1 unless it succeeded')
    .action(async (queue: string, opts: Common & Record<string, unknown>) => {
      const client = clientFrom(opts);
      const spec: JobSpec = { queue, payload: parsePayload(opts.payload as string | undefined) };
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
    .option('--limit <n>', 'how many', '50')
    .option('--cursor <cursor>', 'from a previous page')
    .action(async (opts: Common & { queue?: string; state?: string; label?: string; limit: string; cursor?: string }) => {
      const page = await clientFrom(opts).list({
        ...(opts.queue ? { queue: opts.queue } : {}),
        ...(opts.state ? { state: opts.state as Job['state'] } : {}),
        ...(opts.label ? { label: opts.label } : {}),
        ...(opts.cursor ? { cursor: opts.cursor } : {}),
        limit: Number.parseInt(opts.limit, 10),
      });
      out(opts, page, () => [...page.jobs.map(jobLine), ...(page.nextCursor ? [`next page: --cursor ${page.nextCursor}`] : [])].join('\n'));
    });

  withCommon(program.command('job <id>'))
    .description('show one job')
    .action(async (id: string, opts: Common) => {
      const job = await clientFrom(opts).get(id);
      out(opts, { job }, () => jobDetail(job));
    });

  withCommon(program.command('workers'))
    .description('list workers and their state')
    .action(async (opts: Common) => {
      const workers = await clientFrom(opts).workers();
      out(opts, { workers }, () =>
        workers
          .map((w) => {
            const slots = Object.entries(w.queues).map(([q, n]) => `${q} ${w.running[q] ?? 0}/${n}`).join(', ');
            return `${w.id}  ${w.name.padEnd(14)} ${w.state.padEnd(11)} ${slots}`;
          })
          .join('\n') || 'no workers',
      );
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
    .description('queue statistics: counts per state, throughput, run times')
    .action(async (opts: Common) => {
      const stats = await clientFrom(opts).queues();
      out(opts, stats, () => JSON.stringify(stats, null, 2));
    });
}
