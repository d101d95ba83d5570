// `gaffer devstack`: a coordinator on the embedded store in a temporary
// directory, N worker processes, a demo workload (hash jobs and instances of
// the six-phase sealing pipeline), a live progress line and a summary. `npm start` runs it. With `--bad-actors K`, K of the workers cheat
// and a replicated phase follows: the vote of the replicas must accept no
// wrong result, and must quarantine every bad actor and no honest worker.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { createLogger } from './log-format.ts';
import { GafferError } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';
import type { JobSpec, Worker } from '../types/model.ts';
import { isTerminalJobState, type JobState } from '../types/states.ts';
import { BAD_ACTOR_ENV, BAD_ACTOR_MODES, type BadActorMode } from './demo-bad-handlers.ts';
import { iteratedHash } from './demo-handlers.ts';
import { serve, type Served } from './serve.ts';
import { siblingModule } from '../types/modules.ts';
import type { PipelineSpec } from '../types/pipeline.ts';
import { checkTemplate } from '../coordinator/pipelines.ts';
import { DEMO_SEALER_QUEUES, DEMO_SEALER_RESOURCES, SEALING_TEMPLATE, SEALING_TEMPLATE_NAME } from './demo-sealing.ts';

export const DEVSTACK_DEFAULTS = {
  workers: 3,
  jobs: 100,
  port: 7070,
  /** sha256 rounds per demo job: a fraction of a second of CPU. */
  hashRounds: 40_000,
  /** How long to wait for the workers to connect before giving up: nine Node processes starting on a busy two-core machine take a while. */
  workersReadyTimeoutMs: 120_000,
  progressEveryMs: 500,
  /** Honest workers that are also sealers (serve the sealing queues); the rest serve hash jobs only. */
  sealersMax: 3,
  /** Bad actors among the workers: none unless asked for. */
  badActors: 0,
  /** Jobs of the replicated phase (run only with bad actors): enough for every bad actor to be judged several times. */
  replicatedJobs: 60,
  /** sha256 rounds per replicated job: less than a hash job, as each runs on several workers and is recomputed for the check. */
  replicatedHashRounds: 10_000,
  replicas: 3,
  quorum: 2,
  /** Hash jobs' heartbeat timeout: short, so the frozen worker's lease runs out within the demo. */
  hashHeartbeatTimeoutMs: 3_000,
  /** How long to wait for the worker to be frozen to take a job; past it the demo goes on without. */
  stallPickTimeoutMs: 60_000,
  /** Times the demo tries to freeze it while it holds a job (it may finish one just before the signal). */
  stallTriesMax: 5,
  /** How long the frozen worker's lease may take to be found lost: the heartbeat timeout, sweeps, and a loaded machine. */
  stallLostTimeoutMs: 60_000,
} as const;

/** The extra worker the demo freezes (SIGSTOP) once it holds a job, so that a lost lease is seen. */
const STALL_WORKER = 'stall-1';

/** The replicated queue: the only one the bad actors serve. */
const CHECKED_QUEUE = 'hash.checked';

interface Flags {
  workers: string;
  jobs: string;
  port: string;
  badActors?: string;
  replicatedJobs?: string;
  /** False (--no-stall-worker): no extra worker is frozen. */
  stallWorker?: boolean;
  once?: boolean;
}

/** One worker process to start. */
interface WorkerRole {
  name: string;
  module: string;
  queues: string[];
  keys: string[];
  /** Cores, memory and GPUs it declares (flags of `gaffer worker`); none when left out. */
  resources?: readonly string[];
  /** Set for a bad actor. */
  mode?: BadActorMode;
}

const MAIN = fileURLToPath(siblingModule(import.meta.url, 'main'));
const HANDLERS = fileURLToPath(siblingModule(import.meta.url, 'demo-handlers'));
const BAD_HANDLERS = fileURLToPath(siblingModule(import.meta.url, 'demo-bad-handlers'));

/** Sectors whose files worker i holds: every sealing phase but C2 of those sectors runs there. */
const sectorsOf = (i: number, sectors: number, workers: number): string[] =>
  Array.from({ length: sectors }, (_, s) => `sector-${s}`).filter((_, s) => s % workers === i);

/** A sealing pipeline instance per sector, and hash jobs for the rest of the demo's jobs. */
function workload(jobs: number, sealers: number): { specs: JobSpec[]; sectors: PipelineSpec[] } {
  const phases = SEALING_TEMPLATE.phases.length;
  const sectors = Math.min(Math.floor(jobs / (2 * phases)), sealers * 2);
  const rounds = DEVSTACK_DEFAULTS.hashRounds;
  const specs: JobSpec[] = Array.from({ length: jobs - phases * sectors }, (_, i) => ({
    queue: 'hash',
    payload: { seed: `job-${i}`, rounds },
    priority: i % 4 === 0 ? 10 : 0,
    heartbeatTimeoutMs: DEVSTACK_DEFAULTS.hashHeartbeatTimeoutMs,
  }));
  // Each sector's files are on the worker holding its key: every phase but C2 runs there.
  const instances = Array.from({ length: sectors }, (_, s) => ({
    template: SEALING_TEMPLATE_NAME,
    payload: { sector: `sector-${s}`, rounds },
    key: `devstack-sector-${s}`,
    locality: `sector-${s}`,
  }));
  return { specs, sectors: instances };
}

/**
 * Honest workers dev-1.. serve the hash queue (and the replicated one when
 * there are bad actors); the first `sealersMax` of them are also sealers,
 * serving every sealing queue and holding their sectors' keys (a worker loads
 * its handler once per queue it serves, so more sealers only slow the start).
 * Bad actors bad-1.. serve only the replicated queue, so no unreplicated job
 * ever runs on one. They alternate: liar, sleeper, liar, ...
 */
function roles(honest: number, bad: number, sectors: number, stall: boolean): WorkerRole[] {
  const sealers = Math.min(honest, DEVSTACK_DEFAULTS.sealersMax);
  const common = ['hash:2', ...(bad > 0 ? [`${CHECKED_QUEUE}:2`] : [])];
  const out: WorkerRole[] = Array.from({ length: honest }, (_, i) => ({
    name: `dev-${i + 1}`,
    module: HANDLERS,
    ...(i < sealers ? { queues: [...common, ...DEMO_SEALER_QUEUES], keys: sectorsOf(i, sectors, sealers), resources: DEMO_SEALER_RESOURCES } : { queues: common, keys: [] }),
  }));
  // It serves only hash jobs and holds no sector's files, so nothing waits for it once it is frozen.
  if (stall) out.push({ name: STALL_WORKER, module: HANDLERS, queues: ['hash:1'], keys: [] });
  for (let j = 0; j < bad; j++) {
    const mode = BAD_ACTOR_MODES[j % BAD_ACTOR_MODES.length]!;
    out.push({ name: `bad-${j + 1} (${mode})`, module: BAD_HANDLERS, queues: [`${CHECKED_QUEUE}:2`], keys: [], mode });
  }
  return out;
}

function startWorker(url: string, role: WorkerRole): ChildProcess {
  const args = [MAIN, 'worker', '--url', url, '--name', role.name, '--module', role.module, '--log-level', 'warn'];
  for (const q of role.queues) args.push('--queue', q);
  for (const k of role.keys) args.push('--key', k);
  args.push(...(role.resources ?? []));
  const env = role.mode === undefined ? process.env : { ...process.env, [BAD_ACTOR_ENV]: role.mode };
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
  return child;
}

async function listenOn(port: number, dir: string): Promise<Served> {
  const logger = createLogger('warn', 'auto');
  const pipelines = { [SEALING_TEMPLATE_NAME]: checkTemplate(SEALING_TEMPLATE, `pipelines.${SEALING_TEMPLATE_NAME}`) };
  const config = { host: '127.0.0.1', port, db: join(dir, 'gaffer.db'), tokens: [], queues: {}, pipelines };
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
  const nBad = Number(flags.badActors ?? DEVSTACK_DEFAULTS.badActors);
  if (!Number.isInteger(nBad) || nBad < 0) throw new GafferError('INVALID_INPUT', '--bad-actors takes a whole number (0 for none)');
  if (2 * nBad >= nWorkers && nBad > 0) {
    throw new GafferError(
      'INVALID_INPUT',
      `--bad-actors ${nBad} of --workers ${nWorkers}: bad actors must be fewer than half of the workers, or they could outvote the honest ones (give more workers, e.g. --workers ${2 * nBad + 1})`,
    );
  }
  const nReplicated = Number(flags.replicatedJobs ?? DEVSTACK_DEFAULTS.replicatedJobs);
  if (!Number.isInteger(nReplicated) || nReplicated < 1) throw new GafferError('INVALID_INPUT', '--replicated-jobs takes a whole number of at least 1');
  const nHonest = nWorkers - nBad;
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-devstack-'));
  const served = await listenOn(Number.parseInt(flags.port, 10), dir);
  const { coordinator, store } = served;
  console.log(`gaffer devstack: dashboard at ${served.server.url}/ (open it in a browser)`);
  console.log(`  coordinator at ${served.server.url} (API under /v1, OpenAPI at /v1/openapi.json)`);
  console.log(`  database ${join(dir, 'gaffer.db')}; try: ./bin/gaffer workers --url ${served.server.url}`);

  const { specs, sectors } = workload(nJobs, Math.min(nHonest, DEVSTACK_DEFAULTS.sealersMax));
  const stall = flags.stallWorker !== false;
  const workerRoles = roles(nHonest, nBad, sectors.length, stall);
  const children = workerRoles.map((role) => startWorker(served.server.url, role));
  const stallChild = stall ? children[workerRoles.findIndex((r) => r.name === STALL_WORKER)]! : null;
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      // The frozen worker cannot act on SIGTERM: it is killed.
      // A child ended by a signal keeps exitCode null: signalCode says it is gone.
      const running = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
      for (const c of children) if (running(c)) c.kill(c === stallChild ? 'SIGKILL' : 'SIGTERM');
      await Promise.all(children.map((c) => (running(c) ? new Promise((r) => c.once('exit', r)) : undefined)));
      await served.close();
      rmSync(dir, { recursive: true, force: true });
    })());
  // A signal before the summary ends the run with its workers, so none is left reconnecting to nothing.
  const interrupt = (sig: NodeJS.Signals): void => void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    await until(async () => (await coordinator.listWorkers()).filter((w) => w.connected).length >= children.length, DEVSTACK_DEFAULTS.workersReadyTimeoutMs, `${children.length} workers connecting`);
    console.log(
      `  ${nWorkers} workers connected; submitting ${nJobs} jobs: ${specs.length} hash jobs and ${sectors.length} instances of the six-phase sealing pipeline (${sectors.length * SEALING_TEMPLATE.phases.length} jobs)`,
    );
    if (stallChild) console.log(`  plus ${STALL_WORKER}, which the demo freezes (SIGSTOP) once it holds a hash job: its lease runs out and the job runs elsewhere`);
    if (nBad > 0) console.log(`  ${nBad} of them ${nBad === 1 ? 'is a bad actor' : 'are bad actors'}, serving only ${CHECKED_QUEUE}: a replicated phase follows this one`);
    const started = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < specs.length; i += LIMITS.submitBatchMaxJobs) {
      ids.push(...(await coordinator.submitMany(specs.slice(i, i + LIMITS.submitBatchMaxJobs))).map((r) => r.job.id));
    }
    const instances: string[] = [];
    for (const p of sectors) {
      const { pipeline } = await coordinator.submitPipeline(p);
      instances.push(pipeline.id);
      ids.push(...pipeline.phases.flatMap((ph) => ph.jobs.map((j) => j.id)));
    }
    console.log(`  sealing instances: ${served.server.url}/v1/pipelines; try: ./bin/gaffer pipeline show ${instances[0] ?? 'ID'} --url ${served.server.url}`);
    const stalled = stallChild ? freezeWhenBusy(served, stallChild) : Promise.resolve();
    // freezeWhenBusy never rejects, so nothing here can end the process before cleanup.
    await showProgress(served, ids);
    await stalled;
    const elapsedMs = Date.now() - started;
    let ok = await summary(served, ids, elapsedMs);
    ok = (await sealingSummary(served, instances)) && ok;
    if (nBad > 0) ok = (await replicatedPhase(served, nReplicated, nBad)) && ok;
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

/**
 * Freezes the stall worker once it holds an attempt, and kills it once that
 * attempt is lost: a worker gone silent, as a crashed or hung machine is.
 * Never rejects: the demo goes on whatever happens here.
 */
async function freezeWhenBusy(served: Served, child: ChildProcess): Promise<void> {
  try {
    await freezeAndWatch(served, child);
  } catch (err) {
    console.log(`\n  ${STALL_WORKER}: ${(err as Error).message}; it is killed and the demo goes on`);
  } finally {
    child.kill('SIGKILL');
  }
}

async function freezeAndWatch(served: Served, child: ChildProcess): Promise<void> {
  const held = async (): Promise<{ id: string; jobId: string }[]> => {
    const w = (await served.coordinator.listWorkers()).find((x) => x.name === STALL_WORKER);
    return w ? (await served.store.listLiveAttempts({ workerId: w.id })).map((a) => ({ id: a.id, jobId: a.jobId })) : [];
  };
  for (let tries = 0; tries < DEVSTACK_DEFAULTS.stallTriesMax; tries++) {
    await until(async () => (await held()).length > 0, DEVSTACK_DEFAULTS.stallPickTimeoutMs, `${STALL_WORKER} taking a job`);
    child.kill('SIGSTOP');
    // What it holds once frozen: an attempt it finished just before the signal is not among them.
    const frozen = await held();
    if (frozen.length === 0) {
      child.kill('SIGCONT');
      continue;
    }
    console.log(`\n  froze ${STALL_WORKER} while it held job ${frozen.map((a) => a.jobId).join(', ')}`);
    // A result it sent just before the signal may still settle one of them: the first lost one is the demo's.
    let lostJobId: string | null = null;
    let settled = false;
    const decided = async (): Promise<boolean> => {
      const states = await Promise.all(frozen.map(async (f) => ({ f, a: (await served.store.listAttempts({ jobId: f.jobId })).find((a) => a.id === f.id) })));
      lostJobId = states.find((x) => x.a?.state === 'lost')?.f.jobId ?? null;
      settled = states.every((x) => x.a !== undefined && x.a.state !== 'leased' && x.a.state !== 'running');
      return lostJobId !== null || settled;
    };
    await until(decided, DEVSTACK_DEFAULTS.stallLostTimeoutMs, `the lease of ${STALL_WORKER} running out`);
    if (lostJobId === null) {
      child.kill('SIGCONT');
      continue;
    }
    console.log(`\n  ${STALL_WORKER}'s lease ran out: attempt lost, job ${lostJobId} queued again; ${STALL_WORKER} killed`);
    return;
  }
  throw new Error(`it finished every job it held before it could be frozen (${DEVSTACK_DEFAULTS.stallTriesMax} tries)`);
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

/** Each sealing instance's state and where its phases ran (every phase but C2 on the sector's worker). */
async function sealingSummary(served: Served, instances: readonly string[]): Promise<boolean> {
  const names = new Map((await served.coordinator.listWorkers()).map((w) => [w.id, w.name]));
  let ok = true;
  if (instances.length > 0) console.log('  sealing pipelines (phase@worker):');
  for (const id of instances) {
    const p = await served.coordinator.getPipeline(id);
    const where: string[] = [];
    for (const ph of p.phases) {
      const jobId = ph.jobs[0]?.id;
      const done = jobId === undefined ? undefined : (await served.store.listAttempts({ jobId })).find((a) => a.state === 'completed');
      where.push(`${ph.name}@${done ? (names.get(done.workerId) ?? done.workerId) : '-'}`);
    }
    console.log(`    ${p.locality.padEnd(9)} ${p.state.padEnd(9)} ${where.join(' ')}`);
    ok = ok && p.state === 'succeeded';
  }
  return ok;
}

/**
 * The replicated phase: jobs on hash.checked, each run by several workers and
 * accepted by a vote. Checks that no wrong result was accepted (each accepted
 * digest is recomputed here), that every bad actor was quarantined and no
 * honest worker was, and that every job succeeded.
 */
async function replicatedPhase(served: Served, n: number, nBad: number): Promise<boolean> {
  const { coordinator, store } = served;
  const { replicas, quorum, replicatedHashRounds: rounds } = DEVSTACK_DEFAULTS;
  console.log(`\nreplicated phase: ${n} jobs on ${CHECKED_QUEUE}, each on ${replicas} workers, accepted when ${quorum} results agree`);
  const specs: JobSpec[] = Array.from({ length: n }, (_, i) => ({ queue: CHECKED_QUEUE, payload: { seed: `checked-${i}`, rounds }, replicas, quorum }));
  const started = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < specs.length; i += LIMITS.submitBatchMaxJobs) {
    ids.push(...(await coordinator.submitMany(specs.slice(i, i + LIMITS.submitBatchMaxJobs))).map((r) => r.job.id));
  }
  await showProgress(served, ids);
  const elapsedMs = Date.now() - started;

  const jobs = await Promise.all(ids.map((id) => coordinator.getJob(id)));
  const succeeded = jobs.filter((j) => j.state === 'succeeded');
  let wrong = 0;
  for (const j of succeeded) {
    const p = j.payload as { seed: string; rounds: number };
    if ((j.result as { digest?: unknown } | null)?.digest !== iteratedHash(p.seed, p.rounds)) wrong++;
  }
  let rejected = 0;
  for (const j of jobs) rejected += (await store.listAttempts({ jobId: j.id })).filter((a) => a.state === 'rejected').length;
  // The workers of this run: the bad actors by name, the honest ones are the rest (listed first).
  const isBad = (w: Worker): boolean => w.name.startsWith('bad-');
  const workers = (await coordinator.listWorkers()).sort((a, b) => Number(isBad(a)) - Number(isBad(b)) || a.name.localeCompare(b.name, 'en', { numeric: true }));
  const bad = workers.filter(isBad);
  const honest = workers.filter((w) => !isBad(w));
  const badQuarantined = bad.filter((w) => w.quarantined).length;
  const honestQuarantined = honest.filter((w) => w.quarantined).length;

  const width = Math.max(6, ...workers.map((w) => w.name.length));
  console.log(`\ntrust summary: ${(elapsedMs / 1000).toFixed(1)} s for the replicated phase`);
  console.log(`    ${'worker'.padEnd(width)}  valid  invalid  timed out  quarantined`);
  for (const w of workers) {
    const r = w.reputation;
    const q = w.quarantined ? `yes: ${w.quarantineReason ?? 'no reason given'}` : 'no';
    console.log(`    ${w.name.padEnd(width)}  ${String(r.valid).padStart(5)}  ${String(r.invalid).padStart(7)}  ${String(r.timedOut).padStart(9)}  ${q}`);
  }
  console.log(`  replicated jobs succeeded:    ${succeeded.length} of ${n}`);
  console.log(`  wrong results accepted:       ${wrong} (every accepted digest recomputed here)`);
  console.log(`  results rejected by the vote: ${rejected}`);
  console.log(`  bad actors quarantined:       ${badQuarantined} of ${nBad}`);
  console.log(`  honest workers quarantined:   ${honestQuarantined}`);
  const failed = [
    ...(succeeded.length === n ? [] : [`${n - succeeded.length} replicated jobs did not succeed`]),
    ...(wrong === 0 ? [] : [`${wrong} wrong results accepted`]),
    ...(badQuarantined === nBad && bad.length === nBad ? [] : [`${nBad - badQuarantined} bad actors not quarantined`]),
    ...(honestQuarantined === 0 ? [] : [`${honestQuarantined} honest workers quarantined`]),
  ];
  console.log(failed.length === 0 ? '  trust checks: all hold' : `  trust checks: FAILED: ${failed.join('; ')}`);
  return failed.length === 0;
}

export function registerDevstack(program: Command): void {
  program
    .command('devstack')
    .description('a playground: coordinator on a temporary embedded store, local worker processes, a demo workload')
    .option('--workers <n>', 'worker processes', String(DEVSTACK_DEFAULTS.workers))
    .option('--jobs <n>', 'demo jobs to submit', String(DEVSTACK_DEFAULTS.jobs))
    .option('--port <port>', 'port for the coordinator (a free one if it is taken)', String(DEVSTACK_DEFAULTS.port))
    .option('--bad-actors <k>', `this many of the workers cheat (fewer than half): a replicated phase on ${CHECKED_QUEUE} follows, and the summary shows whether they were caught`, String(DEVSTACK_DEFAULTS.badActors))
    .option('--replicated-jobs <n>', 'with --bad-actors: jobs of the replicated phase', String(DEVSTACK_DEFAULTS.replicatedJobs))
    .option('--no-stall-worker', `start no extra worker ${STALL_WORKER} to freeze (by default it is frozen while it holds a job, so a lost lease and a retry are seen)`)
    .option('--once', 'exit after the summary (0 when every job succeeded and, with --bad-actors, no wrong result was accepted and exactly the bad actors were quarantined)')
    .action(async (flags: Flags) => {
      process.exitCode = await runDevstack(flags);
    });
}
