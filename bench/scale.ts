// `npm run bench:scale`: Gaffer at scale, on one machine.
//
// 1. Claim cost against the backlog: what one claim costs with 10 thousand,
//    100 thousand and 1 million no-op jobs waiting, on SQLite and PostgreSQL;
//    also with a head of the queue no worker can take, and with finished jobs
//    piling up ahead of the backlog. A few claims are profiled statement by
//    statement, and the candidate reads explained.
// 2. A thousand simulated workers on one coordinator (`gaffer serve` as a
//    child process) over real WebSockets on 127.0.0.1: the time to connect
//    them, the coordinator's CPU and memory idle and draining, jobs/s drained.
// 3. Coordinator restart with the largest backlog in the store: the time to
//    /readyz and to the first attempt handed out.
// 4. Placement cost per job as the pool grows, and claim contention between
//    coordinators on one PostgreSQL database.
// 5. Idle slots: a thousand workers of four slots running one-second jobs
//    from a backlog of a million: slot utilisation, a freed slot's wait for
//    its next assignment, the coordinator's memory.
//
// The report goes to stdout and to bench/results/scale-<date>-<host>.md and
// .json; progress goes to stderr. `--smoke` runs tiny sizes, only to check that
// everything works. `--help` lists the flags.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { backlogRun, blockedOlderRun, historyRun, load, noopJob, type BacklogResult, type BlockedOlderResult, type ClaimOptions, type HistoryResult } from './scale/claims.ts';
import { gafferVersion } from './machine.ts';
import { describeMachine } from './scale/machine.ts';
import { startPostgres, type PgServer } from './scale/pg.ts';
import { flatness, renderMarkdown, type ScaleReport } from './scale/report.ts';
import { idleRun, type IdleResult } from './scale/idle.ts';
import { restartRuns, type RestartResult } from './scale/restart.ts';
import { postgresFactory, sqliteFactory, type OpenStore, type StoreFactory } from './scale/stores.ts';
import { count, note, onExit } from './scale/util.ts';
import { workersRun, type WorkersResult } from './scale/workers.ts';
import { contentionRun, placementRun, postgresOpener, sqliteOpener } from './scale/placement.ts';
import type { PlacementReport } from './scale/placement-report.ts';
import { slotsRun, type SlotsOptions } from './scale/slots.ts';

const PHASES = ['claims', 'rest', 'history', 'restart', 'workers', 'placement', 'slots'] as const;
type Phase = (typeof PHASES)[number];

const HELP = `Usage: node bench/scale.ts [flags]

  --smoke                 tiny sizes (1000,5000; 50 workers), only to check that everything runs
  --sizes LIST            backlog sizes (default 10000,100000,1000000)
  --history LIST          finished jobs ahead of the backlog (default: the sizes; "none" skips)
  --workers N             simulated workers on one coordinator (default 1000)
  --drain-jobs N          jobs the workers drain (default 5000)
  --idle-s S              idle window with every worker heartbeating (default 30)
  --workers-baseline N    the same drain with this many workers first, for comparison (default 100; 0 skips)
  --rest-s S              window of a coordinator at rest on each backlog (default 10)
  --store KIND            sqlite, postgres or both (default both)
  --phases LIST           some of ${PHASES.join(',')} (default all)
  --claims N              timed claims per batch size (default 200)
  --warmup N              untimed claims before them (default 10)
  --profile-claims N      claims profiled statement by statement (default 20; 0 skips)
  --unplaceable N         jobs no worker can take, for the blocked-head runs (default 1000; 0 skips)
  --restart-reps N        restarts per store (default 3)
  --load-budget-s S       a bulk load stops after this long and the run reports the size reached (default 600)
  --placement-workers LIST  simulated pool sizes for the placement cost per job (default 1000,10000)
  --placement-rounds N    steady-state rounds per placement run (default 200)
  --coordinators LIST     coordinators on one PostgreSQL database for the contention runs (default 1,3,5)
  --slot-workers N        workers of the idle-slots run (default 1000)
  --slots-per-worker N    their slots (default 4)
  --job-ms MS             how long each of their attempts runs (default 1000)
  --slots-backlog N       jobs queued before it starts (default 1000000)
  --slots-window-s S      its measuring window, after a warm-up of 5 s (default 20)
  --sqlite-sync MODE      full (the default of gaffer serve) or normal
  --pg-url URL            a PostgreSQL server to use (schemas gaffer_scale_* are created and dropped) instead of a throwaway cluster
  --out DIR               where the report goes (default bench/results)
  --help`;

interface Flags {
  smoke: boolean;
  sizes: number[];
  history: number[];
  workers: number;
  drainJobs: number;
  idleMs: number;
  workersBaseline: number;
  restMs: number;
  stores: ('sqlite' | 'postgres')[];
  phases: Set<Phase>;
  claims: ClaimOptions;
  restartReps: number;
  placement: { workers: number[]; rounds: number; idleJobs: number; coordinators: number[] };
  slots: SlotsOptions;
  sqliteSync: 'full' | 'normal';
  pgUrl: string | undefined;
  out: string;
}

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      smoke: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      history: { type: 'string' },
      workers: { type: 'string' },
      'drain-jobs': { type: 'string' },
      'idle-s': { type: 'string' },
      'workers-baseline': { type: 'string' },
      'rest-s': { type: 'string' },
      store: { type: 'string', default: 'both' },
      phases: { type: 'string' },
      claims: { type: 'string' },
      warmup: { type: 'string' },
      'profile-claims': { type: 'string' },
      unplaceable: { type: 'string' },
      'restart-reps': { type: 'string' },
      'load-budget-s': { type: 'string' },
      'sqlite-sync': { type: 'string', default: 'full' },
      'placement-workers': { type: 'string' },
      'placement-rounds': { type: 'string' },
      coordinators: { type: 'string' },
      'slot-workers': { type: 'string' },
      'slots-per-worker': { type: 'string' },
      'job-ms': { type: 'string' },
      'slots-backlog': { type: 'string' },
      'slots-window-s': { type: 'string' },
      'pg-url': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const smoke = values.smoke;
  const int = (v: string | undefined, fallback: number, name: string, min = 0): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer of at least ${min}, got ${v}`);
    return n;
  };
  const list = (v: string | undefined, fallback: number[], name: string): number[] => {
    if (v === undefined) return fallback;
    if (v === 'none') return [];
    return v.split(',').map((x) => int(x.trim(), 0, name, 1));
  };
  const sizes = list(values.sizes, smoke ? [1000, 5000] : [10_000, 100_000, 1_000_000], 'sizes').sort((a, b) => a - b);
  if (sizes.length === 0) throw new Error('--sizes needs at least one size');
  const store = values.store;
  if (store !== 'sqlite' && store !== 'postgres' && store !== 'both') throw new Error(`--store must be sqlite, postgres or both, got ${store}`);
  const sync = values['sqlite-sync'];
  if (sync !== 'full' && sync !== 'normal') throw new Error(`--sqlite-sync must be full or normal, got ${sync}`);
  const phases = new Set<Phase>();
  for (const p of (values.phases ?? PHASES.join(',')).split(',').map((x) => x.trim())) {
    if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--phases takes ${PHASES.join(', ')}; got ${p}`);
    phases.add(p as Phase);
  }
  return {
    smoke,
    sizes,
    history: list(values.history, sizes, 'history').sort((a, b) => a - b),
    workers: int(values.workers, smoke ? 50 : 1000, 'workers', 1),
    drainJobs: int(values['drain-jobs'], smoke ? 200 : 5000, 'drain-jobs', 1),
    idleMs: int(values['idle-s'], smoke ? 1 : 30, 'idle-s', 1) * 1000,
    workersBaseline: int(values['workers-baseline'], smoke ? 10 : 100, 'workers-baseline'),
    restMs: int(values['rest-s'], smoke ? 1 : 10, 'rest-s', 1) * 1000,
    stores: store === 'both' ? ['sqlite', 'postgres'] : [store],
    phases,
    claims: {
      claims: int(values.claims, smoke ? 8 : 200, 'claims', 1),
      warmup: int(values.warmup, smoke ? 1 : 10, 'warmup'),
      profileClaims: int(values['profile-claims'], smoke ? 2 : 20, 'profile-claims'),
      unplaceable: int(values.unplaceable, smoke ? 600 : 1000, 'unplaceable'),
      loadBudgetMs: int(values['load-budget-s'], 600, 'load-budget-s', 1) * 1000,
    },
    restartReps: int(values['restart-reps'], smoke ? 1 : 3, 'restart-reps', 1),
    placement: {
      workers: list(values['placement-workers'], smoke ? [100, 400] : [1000, 10_000], 'placement-workers').sort((a, b) => a - b),
      rounds: int(values['placement-rounds'], smoke ? 10 : 200, 'placement-rounds', 1),
      idleJobs: smoke ? 20 : 200,
      coordinators: list(values.coordinators, smoke ? [1, 2] : [1, 3, 5], 'coordinators'),
    },
    slots: {
      workers: int(values['slot-workers'], smoke ? 20 : 1000, 'slot-workers', 1),
      slotsPerWorker: int(values['slots-per-worker'], smoke ? 2 : 4, 'slots-per-worker', 1),
      jobMs: int(values['job-ms'], smoke ? 200 : 1000, 'job-ms', 1),
      backlog: int(values['slots-backlog'], smoke ? 2000 : 1_000_000, 'slots-backlog', 1),
      warmupMs: smoke ? 500 : 5000,
      windowMs: int(values['slots-window-s'], smoke ? 2 : 20, 'slots-window-s', 1) * 1000,
      restMs: smoke ? 500 : 5000,
    },
    sqliteSync: sync,
    pgUrl: values['pg-url'],
    out: values.out ?? fileURLToPath(new URL('./results', import.meta.url)),
  };
}

async function jobsIn(open: OpenStore): Promise<{ total: number; queued: number }> {
  const counts = await open.store.queueCounts();
  let total = 0;
  let queued = 0;
  for (const q of counts) {
    for (const n of Object.values(q.counts)) total += n;
    queued += q.counts.queued;
  }
  return { total, queued };
}

/**
 * Per size: claims on the store, then a coordinator at rest on it; restarts on
 * the largest. An almost empty store is the baseline of the rest and restart runs.
 */
async function backlogPhases(factory: StoreFactory, flags: Flags): Promise<{ backlog: BacklogResult[]; rest: IdleResult[]; restart: RestartResult[] }> {
  const backlog: BacklogResult[] = [];
  const rest: IdleResult[] = [];
  const restart: RestartResult[] = [];
  const wantClaims = flags.phases.has('claims');
  const wantRest = flags.phases.has('rest');
  const wantRestart = flags.phases.has('restart');
  const largest = flags.sizes[flags.sizes.length - 1]!;
  if (wantRest || wantRestart) {
    const empty = await factory.open('almost-empty');
    try {
      // Just the jobs the restarts hand out.
      await empty.store.submit({ jobs: Array.from({ length: flags.restartReps }, (_, i) => noopJob(i)) });
      const jobs = await jobsIn(empty);
      await empty.close();
      if (wantRest) rest.push(await restRun(factory.kind, empty.serveArgs, jobs, flags.restMs));
      if (wantRestart) restart.push(await restartRun(factory.kind, empty.serveArgs, jobs, flags.restartReps));
    } finally {
      await empty.destroy();
    }
  }
  for (const size of flags.sizes) {
    const isLargest = size === largest;
    if (!wantClaims && !wantRest && !(wantRestart && isLargest)) continue;
    const open = await factory.open(`backlog-${size}`);
    try {
      if (wantClaims) backlog.push(await backlogRun(open, size, flags.claims));
      else {
        await load(open.store, size, noopJob, flags.claims.loadBudgetMs, `${factory.kind} backlog ${count(size)}`);
        await open.analyze();
      }
      const jobs = await jobsIn(open);
      await open.close();
      if (wantRest) rest.push(await restRun(factory.kind, open.serveArgs, jobs, flags.restMs));
      if (wantRestart && isLargest) restart.push(await restartRun(factory.kind, open.serveArgs, jobs, flags.restartReps));
    } finally {
      await open.destroy();
    }
  }
  return { backlog, rest, restart };
}

async function restRun(kind: string, serveArgs: string[], jobs: { total: number; queued: number }, windowMs: number): Promise<IdleResult> {
  const r = await idleRun(kind, serveArgs, jobs, windowMs, Math.min(1000, windowMs / 2));
  note(`${kind} at rest with ${count(jobs.queued)} queued: CPU ${r.usage.cpuPercent.toFixed(1)}%, /healthz p99 ${r.healthz.p99Ms.toFixed(1)} ms, max ${r.healthz.maxMs.toFixed(1)} ms`);
  return r;
}

async function restartRun(kind: string, serveArgs: string[], jobs: { total: number; queued: number }, reps: number): Promise<RestartResult> {
  const r = await restartRuns(kind, serveArgs, jobs, reps);
  note(`${kind} restart with ${count(jobs.total)} jobs: /readyz ${r.readyMedianMs.toFixed(0)} ms, first attempt ${r.firstAssignMedianMs.toFixed(0)} ms`);
  return r;
}

async function blockedAndHistory(factory: StoreFactory, flags: Flags): Promise<{ blockedOlder: BlockedOlderResult[]; history: HistoryResult[] }> {
  const blockedOlder: BlockedOlderResult[] = [];
  const history: HistoryResult[] = [];
  const backlog = flags.sizes[0]!;
  if (flags.phases.has('claims') && flags.claims.unplaceable > 0) {
    const open = await factory.open('blocked-older');
    try {
      blockedOlder.push(await blockedOlderRun(open, flags.claims.unplaceable, backlog, flags.claims));
    } finally {
      await open.destroy();
    }
  }
  if (flags.phases.has('history')) {
    // Each amount of finished jobs ahead of the smallest backlog; then one with as many queued as finished,
    // where the planner's guess that finished and queued jobs are spread evenly over the ids is furthest off.
    const runs = flags.history.map((finished) => ({ finished, queued: backlog }));
    const balanced = flags.history[flags.history.length - 2];
    if (balanced !== undefined && balanced !== backlog) runs.push({ finished: balanced, queued: balanced });
    for (const { finished, queued } of runs) {
      const open = await factory.open(`history-${finished}-${queued}`);
      try {
        history.push(await historyRun(open, finished, queued, flags.claims));
      } finally {
        await open.destroy();
      }
    }
  }
  return { blockedOlder, history };
}

/** Placement cost per job on each store and pool size, before and after OpenSlots; then contention on PostgreSQL. */
async function placementPhase(flags: Flags, work: string, pg: PgServer | null): Promise<PlacementReport> {
  const out: PlacementReport = { placement: [], contention: [] };
  const o = { rounds: flags.placement.rounds, idleJobs: flags.placement.idleJobs };
  for (const kind of flags.stores) {
    const open = kind === 'sqlite' ? sqliteOpener(work) : postgresOpener(pg!);
    for (const pool of ['open-slots', 'every-worker'] as const) {
      for (const workers of flags.placement.workers) out.placement.push(await placementRun(kind, open, pool, { ...o, workers }));
    }
  }
  if (pg) {
    const workers = flags.placement.workers[0]!;
    for (const n of flags.placement.coordinators) {
      for (const shares of n > 1 ? [true, false] : [false]) out.contention.push(await contentionRun(pg, n, shares, { ...o, workers }));
    }
  }
  return out;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const started = new Date();
  const t0 = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'gaffer-scale-'));
  const removeWork = onExit(() => rmSync(work, { recursive: true, force: true }));
  let pg: PgServer | null = null;
  try {
    if (flags.stores.includes('postgres') && [...flags.phases].some((p) => p !== 'workers' && p !== 'slots')) {
      note('starting PostgreSQL');
      pg = await startPostgres(flags.pgUrl, { unsafeFastCommits: flags.smoke });
    }
    const machine = describeMachine(pg?.version ?? null);
    const factories: StoreFactory[] = flags.stores.filter((k) => k === 'sqlite' || pg !== null).map((k) => (k === 'sqlite' ? sqliteFactory(work, flags.sqliteSync) : postgresFactory(pg!)));
    let workers: WorkersResult | null = null;
    let workersBaseline: WorkersResult | null = null;
    if (flags.phases.has('workers')) {
      const settleMs = flags.smoke ? 200 : 5000;
      if (flags.workersBaseline > 0 && flags.workersBaseline !== flags.workers) {
        workersBaseline = await workersRun({ workers: flags.workersBaseline, drainJobs: flags.drainJobs, idleMs: Math.min(flags.idleMs, 10_000), settleMs });
      }
      workers = await workersRun({ workers: flags.workers, drainJobs: flags.drainJobs, idleMs: flags.idleMs, settleMs });
    }
    const backlog: BacklogResult[] = [];
    const rest: IdleResult[] = [];
    const restart: RestartResult[] = [];
    const blockedOlder: BlockedOlderResult[] = [];
    const history: HistoryResult[] = [];
    for (const factory of factories) {
      const a = await backlogPhases(factory, flags);
      backlog.push(...a.backlog);
      rest.push(...a.rest);
      restart.push(...a.restart);
      const b = await blockedAndHistory(factory, flags);
      blockedOlder.push(...b.blockedOlder);
      history.push(...b.history);
    }
    const placement = flags.phases.has('placement') ? await placementPhase(flags, work, pg) : { placement: [], contention: [] };
    const slots = flags.phases.has('slots') ? await slotsRun(flags.slots) : null;
    const report: ScaleReport = {
      run: {
        date: started.toISOString(),
        smoke: flags.smoke,
        sizes: flags.sizes,
        historySizes: flags.phases.has('history') ? flags.history : [],
        claims: flags.claims.claims,
        warmup: flags.claims.warmup,
        profileClaims: flags.claims.profileClaims,
        unplaceable: flags.claims.unplaceable,
        restartReps: flags.restartReps,
        restSeconds: flags.restMs / 1000,
        loadBudgetS: flags.claims.loadBudgetMs / 1000,
        stores: factories.map((f) => ({ kind: f.kind, setup: f.setup })),
        wallSeconds: (performance.now() - t0) / 1000,
        loadAverageEnd1m: loadavg()[0] ?? NaN,
        codeChanged: gafferVersion() === machine.gaffer ? null : `${machine.gaffer} at the start, ${gafferVersion()} at the end`,
      },
      machine,
      flatness: flatness(backlog.map((b) => ({ store: b.store, size: b.backlog, runs: b.runs }))),
      backlog,
      blockedOlder,
      history,
      historyFlatness: flatness(history.filter((h) => h.backlog === flags.sizes[0]).map((h) => ({ store: h.store, size: h.finished, runs: h.runs }))),
      rest,
      restart,
      workers,
      workersBaseline,
      placement,
      slots,
    };
    const markdown = renderMarkdown(report);
    mkdirSync(flags.out, { recursive: true });
    const host = hostname().replace(/[^A-Za-z0-9_.-]/g, '_');
    const base = join(flags.out, `scale-${started.toISOString().slice(0, 10)}-${host}${flags.smoke ? '-smoke' : ''}`);
    writeFileSync(`${base}.md`, `${markdown}\n`);
    writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${markdown}\n`);
    note(`report written to ${base}.md and .json`);
  } finally {
    await pg?.stop().catch((err: unknown) => note(`stopping PostgreSQL failed: ${(err as Error).message}`));
    rmSync(work, { recursive: true, force: true });
    removeWork();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:scale failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
