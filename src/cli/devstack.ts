// `gaffer devstack`: a coordinator on the embedded store in a temporary
// directory, N worker processes, a demo workload, a live progress line and a
// summary. `npm start` runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { pino } from 'pino';
import { LIMITS } from '../types/limits.ts';
import type { JobSpec } from '../types/model.ts';
import { isTerminalJobState, type JobState } from '../types/states.ts';
import { serve, type Served } from './serve.ts';

export const DEVSTACK_DEFAULTS = {
  workers: 3,
  jobs: 100,
  port: 7070,
  /** sha256 rounds per demo job: a fraction of a second of CPU. */
  hashRounds: 40_000,
  /** How long to wait for the workers to connect before giving up. */
  workersReadyTimeoutMs: 30_000,
  progressEveryMs: 500,
} as const;

interface Flags {
  workers: string;
  jobs: string;
  port: string;
  once?: boolean;
}

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const HANDLERS = fileURLToPath(new URL('./demo-handlers.ts', import.meta.url));

/** Sectors whose files worker i holds: its PC1 and PC2 must run there. */
const sectorsOf = (i: number, sectors: number, workers: number): string[] =>
  Array.from({ length: sectors }, (_, s) => `sector-${s}`).filter((_, s) => s % workers === i);

function workload(jobs: number, workers: number): { specs: JobSpec[]; pipelines: { pc1: JobSpec; pc2: JobSpec }[] } {
  const sectors = Math.min(Math.floor(jobs / 5), workers * 2);
  const rounds = DEVSTACK_DEFAULTS.hashRounds;
  const specs: JobSpec[] = Array.from({ length: jobs - 2 * sectors }, (_, i) => ({
    queue: 'hash',
    payload: { seed: `job-${i}`, rounds },
    priority: i % 4 === 0 ? 10 : 0,
  }));
  const pipelines = Array.from({ length: sectors }, (_, s) => {
    const affinity = { key: `sector-${s}`, mode: 'require' as const };
    return {
      pc1: { queue: 'seal.pc1', payload: { seed: `s${s}`, sector: `sector-${s}`, rounds }, affinity, priority: 20 },
      pc2: { queue: 'seal.pc2', payload: { seed: `s${s}`, sector: `sector-${s}`, rounds: rounds / 2 }, affinity },
    };
  });
  return { specs, pipelines };
}

function startWorker(url: string, i: number, keys: string[]): ChildProcess {
  const args = [MAIN, 'worker', '--url', url, '--name', `dev-${i + 1}`, '--module', HANDLERS, '--log-level', 'warn'];
  for (const q of ['hash:2', 'seal.pc1:1', 'seal.pc2:1']) args.push('--queue', q);
  for (const k of keys) args.push('--key', k);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  return child;
}

async function listenOn(port: number, dir: string): Promise<Served> {
  const logger = pino({ level: 'warn' });
  const config = { host: '127.0.0.1', port, db: join(dir, 'gaffer.db'), tokens: [], queues: {} };
  try {
    return await serve(config, logger);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE' || port === 0) throw err;
    return serve({ ...config, port: 0 }, logger);
  }
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > giveUpAt) throw new Error(`devstack: ${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function runDevstack(flags: Flags): Promise<number> {
  const nWorkers = Number.parseInt(flags.workers, 10);
  const nJobs = Number.parseInt(flags.jobs, 10);
  if (!(nWorkers >= 1 && nJobs >= 1)) throw new Error('--workers and --jobs take whole numbers of at least 1');
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-devstack-'));
  const served = await listenOn(Number.parseInt(flags.port, 10), dir);
  const { coordinator, store } = served;
  console.log(`gaffer devstack: coordinator at ${served.server.url} (API under /v1, OpenAPI at /v1/openapi.json)`);
  console.log(`  database ${join(dir, 'gaffer.db')}; try: ./bin/gaffer workers --url ${served.server.url}`);

  const { specs, pipelines } = workload(nJobs, nWorkers);
  const children = Array.from({ length: nWorkers }, (_, i) => startWorker(served.server.url, i, sectorsOf(i, pipelines.length, nWorkers)));
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
      await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
      await served.close();
      rmSync(dir, { recursive: true, force: true });
    })());
  // A signal before the summary ends the run with its workers, so none is left reconnecting to nothing.
  const interrupt = (sig: NodeJS.Signals): void => void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    await until(async () => (await coordinator.listWorkers()).filter((w) => w.connected).length >= nWorkers, DEVSTACK_DEFAULTS.workersReadyTimeoutMs, `${nWorkers} workers connecting`);
    console.log(`  ${nWorkers} workers connected; submitting ${nJobs} jobs: ${specs.length} hash jobs and ${pipelines.length} two-phase sealing pipelines`);
    const started = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < specs.length; i += LIMITS.submitBatchMaxJobs) {
      ids.push(...(await coordinator.submitMany(specs.slice(i, i + LIMITS.submitBatchMaxJobs))).map((r) => r.job.id));
    }
    for (const p of pipelines) {
      const pc1 = await coordinator.submit(p.pc1);
      const pc2 = await coordinator.submit({ ...p.pc2, dependsOn: [pc1.job.id] });
      ids.push(pc1.job.id, pc2.job.id);
    }
    await showProgress(served, ids);
    const elapsedMs = Date.now() - started;
    const ok = await summary(served, ids, elapsedMs);
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    if (flags.once) {
      await cleanup();
      return ok ? 0 : 1;
    }
    console.log(`\ndevstack keeps serving at ${served.server.url}; Ctrl-C stops it.`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await cleanup();
    return ok ? 0 : 1;
  } catch (err) {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await cleanup();
    throw err;
  } finally {
    void store;
  }
}

async function showProgress(served: Served, ids: string[]): Promise<void> {
  const tty = process.stdout.isTTY;
  for (;;) {
    const jobs = await Promise.all(ids.map((id) => served.coordinator.getJob(id)));
    const counts: Partial<Record<JobState, number>> = {};
    for (const j of jobs) counts[j.state] = (counts[j.state] ?? 0) + 1;
    const line = `  ${Object.entries(counts).map(([s, n]) => `${s} ${n}`).join(' · ')}`;
    if (tty) process.stdout.write(`\r\x1b[2K${line}`);
    else console.log(line);
    if (jobs.every((j) => isTerminalJobState(j.state))) {
      if (tty) process.stdout.write('\n');
      return;
    }
    await new Promise((r) => setTimeout(r, DEVSTACK_DEFAULTS.progressEveryMs));
  }
}

async function summary(served: Served, ids: string[], elapsedMs: number): Promise<boolean> {
  const { coordinator, store } = served;
  const names = new Map((await coordinator.listWorkers()).map((w) => [w.id, w.name]));
  const jobs = await Promise.all(ids.map((id) => coordinator.getJob(id)));
  const perWorker = new Map<string, number>();
  let lost = 0;
  for (const j of jobs) {
    for (const a of await store.listAttempts({ jobId: j.id })) {
      if (a.state === 'completed') perWorker.set(a.workerId, (perWorker.get(a.workerId) ?? 0) + 1);
      if (a.state === 'lost') lost++;
    }
  }
  const succeeded = jobs.filter((j) => j.state === 'succeeded').length;
  const retried = jobs.filter((j) => j.attempts > 1).length;
  console.log(`\nsummary: ${succeeded} succeeded, ${jobs.length - succeeded} did not, of ${jobs.length} jobs`);
  console.log(`  ${(elapsedMs / 1000).toFixed(1)} s, ${((succeeded / elapsedMs) * 1000).toFixed(1)} jobs/s; ${retried} jobs retried, ${lost} attempts lost`);
  console.log('  per worker:');
  for (const [id, n] of [...perWorker.entries()].sort((a, b) => (names.get(a[0]) ?? a[0]).localeCompare(names.get(b[0]) ?? b[0]))) {
    console.log(`    ${(names.get(id) ?? id).padEnd(8)} ${String(n).padStart(4)} jobs (${((n / Math.max(1, succeeded)) * 100).toFixed(0)}%)`);
  }
  return succeeded === jobs.length;
}

export function registerDevstack(program: Command): void {
  program
    .command('devstack')
    .description('a playground: coordinator on a temporary embedded store, local worker processes, a demo workload')
    .option('--workers <n>', 'worker processes', String(DEVSTACK_DEFAULTS.workers))
    .option('--jobs <n>', 'demo jobs to submit', String(DEVSTACK_DEFAULTS.jobs))
    .option('--port <port>', 'port for the coordinator (a free one if it is taken)', String(DEVSTACK_DEFAULTS.port))
    .option('--once', 'exit after the summary (0 when every job succeeded)')
    .action(async (flags: Flags) => {
      process.exitCode = await runDevstack(flags);
    });
}
