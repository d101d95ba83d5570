// Idle slots: do they cost anything? A backlog in the store (a million no-op
// jobs by default, loaded before the coordinator starts), `gaffer serve` on
// it, and a thousand simulated workers of four slots each over real
// WebSockets on 127.0.0.1, each attempt "running" one second. Over a window
// after a warm-up, measured at the workers: slot utilisation (busy
// slot-time over slots times the window) and, for every slot that freed, the
// time until its next assignment arrived; at the coordinator, its CPU and
// resident memory with the backlog queued, before the workers connect and
// while they run. A slot that freed in the window counts however late its
// next assignment came (up to lateAssignMs after the window; one still waiting
// then counts with what it waited so far).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock, seededRandom } from '../../src/types/clock.ts';
import { openSqliteStore } from '../../src/store/sqlite/store.ts';
import { load, noopJob, QUEUE } from './claims.ts';
import { fileLimit, startServe, waitReady, watch, type Usage } from './proc.ts';
import { newTally, SimWorker, SlotClock, type SimTally } from './sim.ts';
import { count, note, since, sleep, summarize, withBound, type Summary } from './util.ts';

export const SLOTS_BOUNDS = {
  /** Connections opening at once. */
  connectConcurrency: 100,
  /** All workers must have their welcome within this long. */
  connectMs: 300_000,
  /** Open files kept free beyond one per worker. */
  fileHeadroom: 256,
  /** Most time the backlog may take to load before the run goes on with what was loaded. */
  loadBudgetMs: 600_000,
  /** After the window, how long slots freed in it may still get their assignment before the rest count with what they waited so far. */
  lateAssignMs: 2_000,
} as const;

export interface SlotsOptions {
  workers: number;
  slotsPerWorker: number;
  /** How long each attempt runs. */
  jobMs: number;
  /** Jobs queued before the coordinator starts. */
  backlog: number;
  /** After every worker connected, this long before the window opens. */
  warmupMs: number;
  windowMs: number;
  /** The coordinator at rest on the backlog, before any worker connects. */
  restMs: number;
}

export interface SlotsResult {
  store: string;
  workers: number;
  slotsPerWorker: number;
  jobMs: number;
  backlogQueued: number;
  loadMs: number;
  connectMs: number;
  windowMs: number;
  /** Busy slot-time over slots times the window. */
  utilisation: number;
  /** Attempts the slots could have run in the window, and the rate that takes. */
  neededJobsPerS: number;
  completedJobsPerS: number;
  /** From a slot freeing (its complete sent) to its next assignment arriving. */
  slotWait: Summary & { counted: number };
  rest: Usage;
  running: Usage & { benchCpuPercent: number };
  tally: SimTally;
}

export async function slotsRun(options: SlotsOptions): Promise<SlotsResult> {
  const needed = options.workers + SLOTS_BOUNDS.fileHeadroom;
  if (fileLimit('self').soft < needed) throw new Error(`${count(options.workers)} workers need ${count(needed)} open files (raise ulimit -n)`);
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-scale-slots-'));
  const path = join(dir, 'gaffer.db');
  const sims: SimWorker[] = [];
  try {
    const store = openSqliteStore({ path, clock: systemClock, random: seededRandom(1) });
    const loaded = await load(store, options.backlog, noopJob, SLOTS_BOUNDS.loadBudgetMs, `slots backlog ${count(options.backlog)}`);
    await store.close();
    note(`slots: ${count(loaded.loaded)} jobs queued in ${(loaded.ms / 1000).toFixed(1)} s`);
    const serve = await startServe(['--db', path]);
    try {
      await waitReady(serve);
      const restWatch = watch(serve.pid);
      await sleep(options.restMs);
      const rest = restWatch.end();
      note(`slots: coordinator at rest on the backlog: CPU ${rest.cpuPercent.toFixed(1)}%, RSS ${rest.rssMaxMiB.toFixed(0)} MiB`);

      const tally = newTally();
      const clock = new SlotClock();
      const t0 = performance.now();
      let next = 0;
      const connectOne = async (): Promise<void> => {
        while (next < options.workers) {
          const i = next++;
          const sim = new SimWorker({ url: serve.workerUrl, name: `slots-${i}`, queue: QUEUE, tally, slots: options.slotsPerWorker, runMs: options.jobMs, slotClock: clock });
          sims.push(sim);
          await sim.welcome;
        }
      };
      await withBound(Promise.all(Array.from({ length: SLOTS_BOUNDS.connectConcurrency }, connectOne)), SLOTS_BOUNDS.connectMs, 'connecting the workers');
      const connectMs = since(t0);
      note(`slots: ${count(options.workers)} workers of ${options.slotsPerWorker} slots connected in ${(connectMs / 1000).toFixed(2)} s; warming up ${options.warmupMs / 1000} s`);
      await sleep(options.warmupMs);

      const runWatch = watch(serve.pid);
      const benchWatch = watch(process.pid);
      const done0 = tally.completed;
      const w0 = performance.now();
      clock.open(w0);
      await sleep(options.windowMs);
      const w1 = performance.now();
      clock.close(w1);
      const running = runWatch.end();
      const bench = benchWatch.end();
      const completed = tally.completed - done0;
      await sleep(SLOTS_BOUNDS.lateAssignMs);
      const late = performance.now();
      for (const sim of sims) clock.stillWaiting(sim.freedSlots(), late);
      const windowMs = w1 - w0;
      const slots = options.workers * options.slotsPerWorker;
      const utilisation = clock.busyMs / (slots * windowMs);
      const slotWait = { ...summarize(clock.waitsMs), counted: clock.waitsCounted };
      note(
        `slots: utilisation ${(utilisation * 100).toFixed(1)}% over ${(windowMs / 1000).toFixed(1)} s; slot wait p50 ${slotWait.p50Ms.toFixed(1)} ms, p99 ${slotWait.p99Ms.toFixed(1)} ms; ` +
          `coordinator CPU ${running.cpuPercent.toFixed(0)}%, RSS ${running.rssMaxMiB.toFixed(0)} MiB`,
      );
      return {
        store: 'sqlite',
        workers: options.workers,
        slotsPerWorker: options.slotsPerWorker,
        jobMs: options.jobMs,
        backlogQueued: loaded.loaded,
        loadMs: loaded.ms,
        connectMs,
        windowMs,
        utilisation,
        neededJobsPerS: (slots / options.jobMs) * 1000,
        completedJobsPerS: (completed / windowMs) * 1000,
        slotWait,
        rest,
        running: { ...running, benchCpuPercent: bench.cpuPercent },
        tally,
      };
    } finally {
      await Promise.all(sims.map((s) => s.close()));
      await serve.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
