// Claim cost against the size of the backlog, in the bench process, straight
// on the store (no coordinator, no network): what one `store.claim` costs when
// N no-op jobs wait. Also: a head of the queue that no worker can take, and
// finished jobs piling up ahead of the backlog.
import { normalizeJob } from '../../src/coordinator/validate.ts';
import { place as defaultPlace } from '../../src/scheduler/index.ts';
import type { Store } from '../../src/store/store.ts';
import { LIMITS } from '../../src/types/limits.ts';
import type { Assignment, NewJob, PlaceFn } from '../../src/types/model.ts';
import { oneLine, type OpenStore, type PlanCacheStat, type StatementTiming } from './stores.ts';
import { count, note, since, summarize, type Summary } from './util.ts';

export const QUEUE = 'scale';
/** The workers the claims are made for: a few, whose slots add up to the largest batch measured. */
export const CLAIM_WORKERS = { count: 4, slots: 16 } as const;
/** A label no worker has: jobs requiring it can be placed nowhere. */
const NOWHERE = { pool: 'nowhere' } as const;
/** Workers are heartbeated (outside the timings) at least this often, so that they stay eligible. */
const KEEPALIVE_MS = 5_000;

const place: PlaceFn = (input) => defaultPlace(input);

export function noopJob(i: number): NewJob {
  return normalizeJob({ queue: QUEUE, payload: { i } });
}

export function unplaceableJob(i: number, priority: number): NewJob {
  return normalizeJob({ queue: QUEUE, payload: { i }, priority, requires: { labels: NOWHERE } });
}

export interface LoadResult {
  /** Jobs asked for. */
  wanted: number;
  /** Jobs written (fewer when the time budget ran out). */
  loaded: number;
  ms: number;
  jobsPerS: number;
  truncated: boolean;
}

/**
 * Writes `n` jobs through store.submit, in batches of LIMITS.submitBatchMaxJobs
 * (one transaction each), one batch after another. Stops early, and says so,
 * once `budgetMs` has passed.
 */
export async function load(store: Store, n: number, make: (i: number) => NewJob, budgetMs: number, what: string): Promise<LoadResult> {
  const batch = LIMITS.submitBatchMaxJobs;
  const t0 = performance.now();
  let loaded = 0;
  let nextNote = Math.max(n / 10, 100_000);
  while (loaded < n) {
    const size = Math.min(batch, n - loaded);
    const jobs: NewJob[] = new Array(size);
    for (let k = 0; k < size; k++) jobs[k] = make(loaded + k);
    await store.submit({ jobs });
    loaded += size;
    if (loaded >= nextNote && loaded < n) {
      note(`  ${what}: ${count(loaded)} of ${count(n)} in ${(since(t0) / 1000).toFixed(1)} s`);
      nextNote += Math.max(n / 10, 100_000);
    }
    if (since(t0) > budgetMs && loaded < n) {
      note(`  ${what}: the load budget of ${Math.round(budgetMs / 1000)} s ran out at ${count(loaded)} of ${count(n)} jobs`);
      break;
    }
  }
  const ms = since(t0);
  return { wanted: n, loaded, ms, jobsPerS: (loaded / ms) * 1000, truncated: loaded < n };
}

/** Registers the claim workers: CLAIM_WORKERS.count workers of CLAIM_WORKERS.slots slots on QUEUE. */
export async function registerWorkers(store: Store, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let w = 0; w < CLAIM_WORKERS.count; w++) {
    const worker = await store.upsertWorker({
      spec: { name: `${tag}-${w}`, labels: {}, cores: 0, memoryMb: 0, gpuIds: [], queues: { [QUEUE]: CLAIM_WORKERS.slots }, keys: [] },
    });
    ids.push(worker.id);
  }
  return ids;
}

export interface ClaimRun {
  maxJobs: number;
  /** Time of each store.claim call. */
  claim: Summary;
  /** Attempts handed out per claim: mean, and the fewest. */
  jobsPerClaim: number;
  fewestJobs: number;
  /** Total claim time over the jobs handed out: the cost per job, in ms. */
  perJobMs: number;
  /** Mean of the first and of the last tenth of the claims: a drift as finished jobs pile up shows here. */
  firstTenthMeanMs: number;
  lastTenthMeanMs: number;
}

/**
 * `claims` claims of at most `maxJobs` for the workers, each timed alone.
 * Between claims, untimed: every attempt handed out is completed, and as many
 * new no-op jobs are submitted, so the backlog stays at its size; the workers
 * are heartbeated every KEEPALIVE_MS.
 */
export async function measureClaims(
  store: Store,
  workerIds: readonly string[],
  maxJobs: number,
  claims: number,
  options: { warmup?: number; replace?: boolean; onBetween?: () => Promise<void> } = {},
): Promise<ClaimRun> {
  const times: number[] = [];
  const handed: number[] = [];
  let lastKeepalive = performance.now();
  const warmup = options.warmup ?? 0;
  for (let i = 0; i < warmup + claims; i++) {
    const t0 = performance.now();
    const assignments = await store.claim({ workerIds, place, maxJobs });
    const ms = since(t0);
    if (i >= warmup) {
      times.push(ms);
      handed.push(assignments.length);
    }
    await settle(store, assignments, options.replace ?? true);
    if (since(lastKeepalive) > KEEPALIVE_MS) {
      for (const workerId of workerIds) await store.heartbeat({ workerId });
      lastKeepalive = performance.now();
    }
    await options.onBetween?.();
  }
  const tenth = Math.max(1, Math.floor(times.length / 10));
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const jobs = handed.reduce((a, b) => a + b, 0);
  return {
    maxJobs,
    claim: summarize(times),
    jobsPerClaim: jobs / handed.length,
    fewestJobs: Math.min(...handed),
    perJobMs: jobs === 0 ? NaN : times.reduce((a, b) => a + b, 0) / jobs,
    firstTenthMeanMs: mean(times.slice(0, tenth)),
    lastTenthMeanMs: mean(times.slice(-tenth)),
  };
}

/** Completes what a claim handed out and submits as many new jobs: the backlog keeps its size. */
async function settle(store: Store, assignments: readonly Assignment[], replace: boolean): Promise<void> {
  for (const a of assignments) await store.complete({ attemptId: a.attemptId, lease: a.lease, result: null });
  if (replace && assignments.length > 0) await store.submit({ jobs: assignments.map((_, k) => noopJob(k)) });
}

/** Where a claim's time goes: per SQL statement, per claim. */
export interface ClaimProfile {
  claims: number;
  claimMeanMs: number;
  statements: { sql: string; callsPerClaim: number; msPerClaim: number; share: number }[];
  /** Claim time outside the statements timed: the place function and other JS, and (PostgreSQL) BEGIN, COMMIT and the pool. */
  otherMsPerClaim: number;
  /** The plans of the candidate reads (and of the costliest statement). */
  plans: { sql: string; plans: { label: string; lines: string[] }[] }[];
  /** PostgreSQL: how the candidate reads had been planned so far on the connection of the last profiled claim. */
  planCache: PlanCacheStat[];
}

/** Profiles `claims` claims of maxJobs 64 (each statement timed), then explains the candidate reads. */
export async function profileClaims(open: OpenStore, workerIds: readonly string[], claims: number): Promise<ClaimProfile> {
  let total = 0;
  const all = new Map<string, StatementTiming>();
  let planCache: PlanCacheStat[] = [];
  const maxJobs = CLAIM_WORKERS.count * CLAIM_WORKERS.slots;
  for (let i = 0; i < claims; i++) {
    const profiler = open.profile();
    const t0 = performance.now();
    let assignments: Assignment[];
    try {
      assignments = await open.store.claim({ workerIds, place, maxJobs });
    } finally {
      total += since(t0);
      const result = profiler.stop();
      planCache = result.planCache;
      for (const t of result.timings) {
        const seen = all.get(t.sql);
        if (seen) {
          seen.calls += t.calls;
          seen.totalMs += t.totalMs;
          seen.lastParams = t.lastParams;
        } else all.set(t.sql, { ...t });
      }
    }
    await settle(open.store, assignments, true);
  }
  const ranked = [...all.values()].sort((a, b) => b.totalMs - a.totalMs);
  const statementsMs = ranked.reduce((a, t) => a + t.totalMs, 0);
  const isCandidateRead = (sql: string): boolean => /\bFROM jobs\b/.test(sql) && /want > 0/.test(sql) && /ORDER BY/.test(sql) && !/^\s*(UPDATE|INSERT)/i.test(sql);
  const toExplain = ranked.filter((t) => isCandidateRead(t.sql));
  const top = ranked.find((t) => /^\s*SELECT/i.test(t.sql));
  if (top && !toExplain.includes(top)) toExplain.push(top);
  const plans: ClaimProfile['plans'] = [];
  for (const t of toExplain) {
    try {
      plans.push({ sql: oneLine(t.sql), plans: await open.explain(t.sql, t.lastParams) });
    } catch (err) {
      plans.push({ sql: oneLine(t.sql), plans: [{ label: 'could not explain', lines: [(err as Error).message] }] });
    }
  }
  return {
    claims,
    claimMeanMs: total / claims,
    statements: ranked.map((t) => ({
      sql: oneLine(t.sql),
      callsPerClaim: t.calls / claims,
      msPerClaim: t.totalMs / claims,
      share: t.totalMs / total,
    })),
    otherMsPerClaim: (total - statementsMs) / claims,
    plans,
    planCache: planCache.filter((p) => isCandidateRead(p.sql)).map((p) => ({ ...p, sql: oneLine(p.sql) })),
  };
}

export interface BacklogResult {
  store: string;
  /** Jobs waiting when the claims were measured. */
  backlog: number;
  load: LoadResult;
  analyzeMs: number | null;
  runs: ClaimRun[];
  /** Unplaceable jobs of a higher priority ahead of the backlog (newer than it): the claims measured then. */
  blockedByPriority: (ClaimRun & { unplaceable: number }) | null;
  profile: ClaimProfile | null;
}

export interface ClaimOptions {
  claims: number;
  warmup: number;
  profileClaims: number;
  loadBudgetMs: number;
  /** Unplaceable jobs for the blocked-head measurements. */
  unplaceable: number;
}

/**
 * On a fresh store: load `size` no-op jobs, ANALYZE (PostgreSQL), register the
 * workers, measure claims of maxJobs 1 and of maxJobs 64, profile a few, then
 * add unplaceable jobs of a higher priority ahead of the backlog and measure again.
 */
export async function backlogRun(open: OpenStore, size: number, options: ClaimOptions): Promise<BacklogResult> {
  const what = `${open.kind} backlog ${count(size)}`;
  note(`${what}: loading`);
  const loaded = await load(open.store, size, noopJob, options.loadBudgetMs, what);
  note(`${what}: loaded ${count(loaded.loaded)} in ${(loaded.ms / 1000).toFixed(1)} s (${Math.round(loaded.jobsPerS)} jobs/s)`);
  const analyzeMs = await open.analyze();
  const workers = await registerWorkers(open.store, 'claim');
  const runs: ClaimRun[] = [];
  for (const maxJobs of [1, CLAIM_WORKERS.count * CLAIM_WORKERS.slots]) {
    runs.push(await measureClaims(open.store, workers, maxJobs, options.claims, { warmup: options.warmup }));
    const r = runs[runs.length - 1]!;
    note(`${what}: maxJobs ${maxJobs}: mean ${r.claim.meanMs.toFixed(2)} ms, p99 ${r.claim.p99Ms.toFixed(2)} ms, ${r.jobsPerClaim.toFixed(1)} jobs per claim`);
  }
  const profile = options.profileClaims > 0 ? await profileClaims(open, workers, options.profileClaims) : null;
  let blockedByPriority: BacklogResult['blockedByPriority'] = null;
  if (options.unplaceable > 0) {
    await load(open.store, options.unplaceable, (i) => unplaceableJob(i, 1), options.loadBudgetMs, `${what}: unplaceable`);
    const run = await measureClaims(open.store, workers, CLAIM_WORKERS.count * CLAIM_WORKERS.slots, Math.max(4, Math.floor(options.claims / 4)), { warmup: Math.min(2, options.warmup) });
    blockedByPriority = { ...run, unplaceable: options.unplaceable };
    note(`${what}: ${count(options.unplaceable)} unplaceable ahead by priority: mean ${run.claim.meanMs.toFixed(2)} ms, ${run.jobsPerClaim.toFixed(1)} jobs per claim`);
  }
  return { store: open.kind, backlog: loaded.loaded, load: loaded, analyzeMs, runs, blockedByPriority, profile };
}

export interface BlockedOlderResult {
  store: string;
  unplaceable: number;
  backlog: number;
  run: ClaimRun;
}

/**
 * The head of the queue is `unplaceable` jobs no worker can take, older than a
 * backlog of `backlog` placeable ones (same priority): what a claim costs, and
 * how many jobs it hands out.
 */
export async function blockedOlderRun(open: OpenStore, unplaceable: number, backlog: number, options: ClaimOptions): Promise<BlockedOlderResult> {
  const what = `${open.kind} head of ${count(unplaceable)} unplaceable`;
  await load(open.store, unplaceable, (i) => unplaceableJob(i, 0), options.loadBudgetMs, what);
  await load(open.store, backlog, noopJob, options.loadBudgetMs, what);
  await open.analyze();
  const workers = await registerWorkers(open.store, 'blocked');
  const run = await measureClaims(open.store, workers, CLAIM_WORKERS.count * CLAIM_WORKERS.slots, Math.max(4, Math.floor(options.claims / 4)), { warmup: Math.min(2, options.warmup) });
  note(`${what}, then ${count(backlog)} placeable: mean ${run.claim.meanMs.toFixed(2)} ms, ${run.jobsPerClaim.toFixed(1)} jobs per claim`);
  return { store: open.kind, unplaceable, backlog, run };
}

export interface HistoryResult {
  store: string;
  /** Finished jobs of the queue, older than the backlog. */
  finished: number;
  backlog: number;
  load: LoadResult;
  analyzeMs: number | null;
  runs: ClaimRun[];
  profile: ClaimProfile | null;
}

/**
 * Finished jobs ahead of the backlog: `finished` jobs that ended at submit
 * (their one parent was cancelled, so submit writes them `cancelled`, want 0:
 * in every index the same as a job that ran and finished), then `backlog`
 * no-op jobs; then the claims as in backlogRun.
 */
export async function historyRun(open: OpenStore, finished: number, backlog: number, options: ClaimOptions): Promise<HistoryResult> {
  const what = `${open.kind} history ${count(finished)}`;
  const [parent] = await open.store.submit({ jobs: [noopJob(-1)] });
  await open.store.cancel({ jobId: parent!.job.id, reason: 'the parent of the finished jobs of a scale run' });
  const base = normalizeJob({ queue: QUEUE, payload: { i: 0 }, dependsOn: [parent!.job.id] });
  note(`${what}: loading finished jobs`);
  const loaded = await load(open.store, finished, (i) => ({ ...base, payload: { i } }), options.loadBudgetMs, what);
  note(`${what}: loaded ${count(loaded.loaded)} in ${(loaded.ms / 1000).toFixed(1)} s; then ${count(backlog)} queued`);
  await load(open.store, backlog, noopJob, options.loadBudgetMs, what);
  const analyzeMs = await open.analyze();
  const workers = await registerWorkers(open.store, 'history');
  const runs: ClaimRun[] = [];
  for (const maxJobs of [1, CLAIM_WORKERS.count * CLAIM_WORKERS.slots]) {
    runs.push(await measureClaims(open.store, workers, maxJobs, options.claims, { warmup: options.warmup }));
    const r = runs[runs.length - 1]!;
    note(`${what}: maxJobs ${maxJobs}: mean ${r.claim.meanMs.toFixed(2)} ms, p99 ${r.claim.p99Ms.toFixed(2)} ms`);
  }
  const profile = options.profileClaims > 0 ? await profileClaims(open, workers, options.profileClaims) : null;
  return { store: open.kind, finished: loaded.loaded, backlog, load: loaded, analyzeMs, runs, profile };
}
