// `npm start`: a coordinator on the embedded store, three in-process workers
// and a small mixed workload, all through the real SQLite store and scheduler.
// It prints what happens and a summary, then exits.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Coordinator } from '../coordinator/coordinator.ts';
import { LocalWorker, type Handler } from '../coordinator/local-worker.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import type { Job, JobSpec, Json } from '../types/model.ts';
import { isTerminalJobState, type JobState } from '../types/states.ts';

const HASH_JOBS = 36;
const SECTORS = 6;
const HASH_ROUNDS = 40_000;
const HASH_CHUNK_ROUNDS = 2_000;
const REPORT_EVERY_MS = 500;

/** Deterministic CPU work: sha256 applied `rounds` times, yielding between chunks so heartbeats flow. */
async function iteratedHash(seed: string, rounds: number, signal: AbortSignal): Promise<string> {
  let digest = Buffer.from(seed);
  for (let i = 0; i < rounds; i++) {
    digest = createHash('sha256').update(digest).digest();
    if (i % HASH_CHUNK_ROUNDS === HASH_CHUNK_ROUNDS - 1) {
      signal.throwIfAborted();
      await yieldToLoop();
    }
  }
  return digest.toString('hex');
}

const handlers: Record<string, Handler> = {
  hash: async (payload, ctx) => {
    const p = payload as { seed: string; rounds: number };
    return { digest: await iteratedHash(p.seed, p.rounds, ctx.signal) };
  },
  'seal.pc1': async (payload, ctx) => {
    const p = payload as { sector: string };
    return { sector: p.sector, layers: await iteratedHash(`pc1:${p.sector}`, HASH_ROUNDS / 2, ctx.signal) };
  },
  'seal.pc2': async (payload, ctx) => {
    const p = payload as { sector: string };
    return { sector: p.sector, commR: (await iteratedHash(`pc2:${p.sector}`, HASH_ROUNDS / 4, ctx.signal)).slice(0, 16) };
  },
  flaky: async (_payload, ctx) => {
    if (ctx.assignment.attempt === 1) throw new Error('first attempt fails on purpose, to show a retry');
    return { ok: true, attempt: ctx.assignment.attempt };
  },
};

function workload(): JobSpec[] {
  const jobs: JobSpec[] = [];
  for (let i = 0; i < HASH_JOBS; i++) {
    jobs.push({ queue: 'hash', payload: { seed: `job-${i}`, rounds: HASH_ROUNDS }, priority: i % 3 === 0 ? 10 : 0 });
  }
  jobs.push({ queue: 'flaky', payload: null, backoff: { baseMs: 200, maxMs: 1000 } });
  jobs.push({ queue: 'hash', payload: { seed: 'delayed', rounds: 1000 }, runAt: Date.now() + 1500, labels: { kind: 'delayed' } });
  return jobs;
}

async function main(): Promise<void> {
  const dir = join(process.cwd(), '.gaffer');
  mkdirSync(dir, { recursive: true });
  const dbPath = join(dir, `demo-${Date.now()}.db`);
  const clock = systemClock;
  const store = openSqliteStore({ path: dbPath, clock, random: systemRandom() });
  const coordinator = new Coordinator({ store, clock, sweepIntervalMs: 100 });
  coordinator.start();
  console.log(`gaffer demo: coordinator on ${relative(process.cwd(), dbPath)} (SQLite, WAL)`);

  // Sectors are staged on disk of one worker each: their PC2 must run where their PC1 files are.
  const sectorsOf = (w: number): string[] => Array.from({ length: SECTORS }, (_, i) => `sector-${i}`).filter((_, i) => i % 3 === w);
  const workers = ['alpha', 'bravo', 'charlie'].map(
    (name, w) =>
      new LocalWorker({
        coordinator,
        clock,
        spec: { name, labels: { zone: 'local' }, cores: 4, memoryMb: 8192, gpuIds: [], keys: sectorsOf(w) },
        handlers: Object.fromEntries(Object.entries(handlers).map(([q, handler]) => [q, { slots: 2, handler }])),
        heartbeatIntervalMs: 1000,
      }),
  );
  for (const w of workers) await w.start();

  const submitted = await coordinator.submitMany(workload());
  const ids = submitted.map((r) => r.job.id);
  for (let s = 0; s < SECTORS; s++) {
    const sector = `sector-${s}`;
    const pc1 = await coordinator.submit({ queue: 'seal.pc1', payload: { sector }, affinity: { key: sector, mode: 'require' }, priority: 5 });
    const pc2 = await coordinator.submit({ queue: 'seal.pc2', payload: { sector }, dependsOn: [pc1.job.id], affinity: { key: sector, mode: 'require' } });
    ids.push(pc1.job.id, pc2.job.id);
  }
  console.log(`submitted ${ids.length} jobs: ${HASH_JOBS} hash jobs, ${SECTORS} two-phase sealing pipelines, a flaky job, a delayed job\n`);

  const started = Date.now();
  const jobs = await waitForAll(coordinator, ids);
  const elapsedMs = Date.now() - started;
  await Promise.all(workers.map((w) => w.stop()));
  await coordinator.stop();
  const names = new Map((await coordinator.listWorkers()).map((w) => [w.id, w.name]));
  const ranOn = new Map<string, string>();
  for (const j of jobs) {
    const done = (await store.listAttempts({ jobId: j.id })).find((a) => a.state === 'completed');
    if (done) ranOn.set(j.id, names.get(done.workerId) ?? done.workerId);
  }
  printSummary(jobs, workers, elapsedMs, names, ranOn);
  await store.close();
}

async function waitForAll(coordinator: Coordinator, ids: string[]): Promise<Job[]> {
  for (;;) {
    const jobs = await Promise.all(ids.map((id) => coordinator.getJob(id)));
    const counts: Partial<Record<JobState, number>> = {};
    for (const j of jobs) counts[j.state] = (counts[j.state] ?? 0) + 1;
    console.log(`  ${Object.entries(counts).map(([s, n]) => `${s} ${n}`).join(', ')}`);
    if (jobs.every((j) => isTerminalJobState(j.state))) return jobs;
    await new Promise((r) => setTimeout(r, REPORT_EVERY_MS));
  }
}

function printSummary(jobs: Job[], workers: LocalWorker[], elapsedMs: number, names: Map<string, string>, ranOn: Map<string, string>): void {
  const ok = jobs.filter((j) => j.state === 'succeeded').length;
  const retried = jobs.filter((j) => j.attempts > 1).length;
  console.log(`\n${ok} of ${jobs.length} jobs succeeded in ${(elapsedMs / 1000).toFixed(1)} s (${((ok / elapsedMs) * 1000).toFixed(1)} jobs/s); ${retried} needed a retry`);
  console.log('per worker:');
  for (const w of workers) {
    const name = (w.id && names.get(w.id)) ?? w.id ?? '?';
    console.log(`  ${name.padEnd(8)} completed ${w.stats.completed}, failed ${w.stats.failed}`);
  }
  console.log('sealing (PC2 must run where PC1 left its files):');
  const pc1 = jobs.filter((j) => j.queue === 'seal.pc1');
  for (const p1 of pc1) {
    const p2 = jobs.find((j) => j.queue === 'seal.pc2' && j.dependsOn.includes(p1.id));
    const r = p2?.result as { sector: string; commR: string } | null | undefined;
    console.log(`  ${r?.sector ?? '?'}: PC1 on ${ranOn.get(p1.id) ?? '?'}, PC2 on ${(p2 && ranOn.get(p2.id)) ?? '?'}, commR ${r?.commR ?? '-'}`);
  }
  const flaky = jobs.find((j) => j.queue === 'flaky');
  if (flaky) console.log(`flaky job: ${flaky.state} after ${flaky.attempts} attempts, result ${JSON.stringify(flaky.result as Json)}`);
  if (ok !== jobs.length) process.exitCode = 1;
}

await main();
