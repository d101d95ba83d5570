// The invariants of DESIGN.md section 3 as model-based property tests, for any
// store backend.
//
// 1. Random command sequences (submit, register, claim, heartbeat, progress,
//    complete, fail, cancel, retry, clock moves, sweeps, disconnects, drains,
//    restarts) run against a fresh store. After every step the store is read
//    through its public API and checked on its own, against the previous
//    reading (states move only along the transition tables), and against a
//    ledger of what the test was told: acknowledged jobs, leases handed out,
//    results accepted. Each run ends with liveness: with workers that heartbeat
//    and complete everything, and the clock running with sweeps, every job ends.
// 2. Replicated jobs on a fixed pool of workers whose attempts fail or lose
//    their leases: once the workers behave, every job still succeeds.
//
// A backend runs them all with one call (see sqlite/invariants.test.ts):
//
//   storeInvariantProperties('sqlite', async ({ clock, random }) => openSqliteStore({ path: ':memory:', clock, random }));
//
// The store's clock and random source come from the run, so a failure replays
// exactly from the seed and path it prints:
//
//   GAFFER_PROP_SEED=<seed> GAFFER_PROP_PATH=<path> npx node --test --test-name-pattern='<test>' <test file>
import { isDeepStrictEqual } from 'node:util';
import { describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { normalizeJob } from '../coordinator/validate.ts';
import { place as schedulerPlace } from '../scheduler/index.ts';
import { seededRandom, VirtualClock, type Random } from '../types/clock.ts';
import { isGafferError, type ErrorCode } from '../types/errors.ts';
import type { Assignment, Attempt, Job, JobSpec, Json, NewJob, PlaceFn, Trace, Worker, WorkerSpec } from '../types/model.ts';
import type { TrustPolicy } from '../trust/index.ts';
import {
  ATTEMPT_STATES,
  canMoveAttempt,
  canMoveJob,
  isLiveAttemptState,
  isTerminalJobState,
  JOB_STATES,
  type JobState,
} from '../types/states.ts';
import { canonicalJson, resultHash } from './rules.ts';
import type { LeaseRef, QueueCounts, Store } from './store.ts';

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/** What a backend gets to open one store for one run. */
export interface StoreContext {
  /** The run's clock: the store must take time from it. */
  clock: VirtualClock;
  /** The run's random source, seeded from the run: the store must draw from it. */
  random: Random;
  /** Unique per run and stable within it: a restart opens the store again with the same context. */
  name: string;
  /** Registers clean-up (a temp file, a schema) to run after the run's store is closed. */
  defer(fn: () => Promise<void> | void): void;
  /** Trust policy the store must use: thresholds low enough that short runs reach quarantine and adaptive replication. */
  trust: Partial<TrustPolicy>;
}

/** Quarantine after two judged results, trust after a streak of two, frequent spot checks. */
const INVARIANT_TRUST: Partial<TrustPolicy> = { quarantineMinResults: 2, trustedStreakMin: 2, spotCheckProbability: 0.3, spotCheckMaxGapJobs: 3 };

export type OpenStore = (ctx: StoreContext) => Promise<Store>;

export interface InvariantOptions {
  /** Runs of the property (default 200; GAFFER_PROP_RUNS overrides). */
  numRuns?: number;
  /** Longest command sequence (default 40). */
  maxCommands?: number;
  /** Close and reopen the store mid-run (only for stores that persist: a file, a database). */
  restart?: boolean;
  /** The fast-check seed; default GAFFER_PROP_SEED, else a fresh one that is printed. */
  seed?: number;
  /** With seed: the path of a failure to replay (GAFFER_PROP_PATH). */
  path?: string;
  /** The place function claims use (default: the scheduler's). */
  place?: PlaceFn;
  /** node:test timeout for the property, ms (default 10 minutes). */
  timeoutMs?: number;
}

/**
 * Registers the invariant properties of a store backend with node:test: one
 * property of random command sequences, checked after every step and ending
 * with liveness; and one of replicated jobs on a fixed pool of workers, whose
 * attempts fail or lose their leases, ending with liveness on that same pool.
 */
export function storeInvariantProperties(name: string, open: OpenStore, options: InvariantOptions = {}): void {
  const numRuns = envInt('GAFFER_PROP_RUNS') ?? options.numRuns ?? 200;
  const maxCommands = options.maxCommands ?? 40;
  const place = options.place ?? ((input) => schedulerPlace(input));
  const slug = name.replace(/[^A-Za-z0-9]+/g, '-');
  let runNo = 0;
  const nextName = (): string => `${slug}-${runNo++}`;
  describe(`store invariants: ${name}`, () => {
    const title = `after every step of ${numRuns} random command sequences (up to ${maxCommands}) every invariant holds, and every job then ends`;
    test(title, { timeout: options.timeoutMs ?? 600_000 }, async (t) => {
      const stats = new Map<string, number>();
      await assertProperty(t, numRuns, options, scenarioArb(maxCommands, options.restart === true), (scenario) =>
        runScenario(scenario, open, place, nextName(), stats),
      );
      // What the runs exercised, so that a property that passes by doing nothing shows.
      t.diagnostic([...stats].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}=${n}`).join(' '));
    });
    const poolTitle = `${numRuns} runs: replicated jobs whose attempts fail or lose their leases still end on a fixed pool of workers`;
    test(poolTitle, { timeout: options.timeoutMs ?? 600_000 }, async (t) => {
      await assertProperty(t, numRuns, options, poolScenarioArb, (scenario) => runPoolScenario(scenario, open, place, nextName()));
    });
  });
}

/** fc.assert with a seed that is printed first and a path from the environment, so a failure replays exactly. */
async function assertProperty<T>(
  t: TestContext,
  numRuns: number,
  options: InvariantOptions,
  arb: fc.Arbitrary<T>,
  run: (value: T) => Promise<void>,
): Promise<void> {
  const seed = options.seed ?? envInt('GAFFER_PROP_SEED') ?? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const path = options.path ?? process.env.GAFFER_PROP_PATH;
  t.diagnostic(`seed ${seed}: replay with GAFFER_PROP_SEED=${seed} GAFFER_PROP_PATH=<path of the failure> --test-name-pattern=<this test>`);
  await fc.assert(fc.asyncProperty(arb, run), {
    numRuns,
    seed,
    ...(path !== undefined && path !== '' ? { path, endOnFailure: true } : {}),
  });
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isInteger(n) ? n : undefined;
}

/** An invariant that did not hold, with the number of DESIGN.md's invariant or the check's name. */
export class InvariantViolation extends Error {
  readonly invariant: string;
  constructor(invariant: string, message: string) {
    super(`[${invariant}] ${message}`);
    this.name = 'InvariantViolation';
    this.invariant = invariant;
  }
}

function violated(invariant: string, message: string): never {
  throw new InvariantViolation(invariant, message);
}

function ensure(cond: unknown, invariant: string, message: () => string): asserts cond {
  if (!cond) violated(invariant, message());
}

// ---------------------------------------------------------------------------
// Snapshots: the whole store, read through its public API
// ---------------------------------------------------------------------------

export interface Snapshot {
  now: number;
  /** As listJobs returns them, newest first. */
  jobs: Job[];
  jobById: Map<string, Job>;
  /** Attempts per job, as listAttempts returns them. */
  attempts: Map<string, Attempt[]>;
  attemptById: Map<string, Attempt>;
  workers: Worker[];
  workerById: Map<string, Worker>;
  counts: QueueCounts[];
}

const LIST_PAGE = 200;
const LIST_PAGES_MAX = 10_000;

export async function readSnapshot(store: Store, now: number): Promise<Snapshot> {
  const jobs: Job[] = [];
  let cursor: string | undefined;
  for (let page = 0; ; page++) {
    ensure(page < LIST_PAGES_MAX, 'listing', () => 'listJobs pages never end');
    const res = await store.listJobs(cursor === undefined ? { limit: LIST_PAGE } : { limit: LIST_PAGE, cursor });
    jobs.push(...res.jobs);
    if (res.nextCursor === null) break;
    ensure(res.jobs.length > 0, 'listing', () => 'a page with a next cursor holds jobs');
    cursor = res.nextCursor;
  }
  const jobById = new Map<string, Job>();
  for (const j of jobs) {
    ensure(!jobById.has(j.id), 'listing', () => `listJobs returns job ${j.id} twice`);
    jobById.set(j.id, j);
  }
  const attempts = new Map<string, Attempt[]>();
  const attemptById = new Map<string, Attempt>();
  for (const j of jobs) {
    const list = await store.listAttempts({ jobId: j.id });
    attempts.set(j.id, list);
    for (const a of list) {
      ensure(!attemptById.has(a.id), 'listing', () => `attempt ${a.id} listed twice`);
      attemptById.set(a.id, a);
    }
  }
  const workers = await store.listWorkers();
  const workerById = new Map(workers.map((w) => [w.id, w]));
  const counts = await store.queueCounts();
  return { now, jobs, jobById, attempts, attemptById, workers, workerById, counts };
}

/** The parts of a snapshot a failed operation must leave exactly as they were. */
function stateOf(s: Snapshot): unknown {
  return { jobs: s.jobs, attempts: [...s.attempts.entries()], workers: s.workers, counts: s.counts };
}

export function assertUnchanged(before: Snapshot, after: Snapshot, what: string): void {
  if (isDeepStrictEqual(stateOf(before), stateOf(after))) return;
  violated('3', `${what} changed the store: ${firstDifference(before, after)}`);
}

function firstDifference(a: Snapshot, b: Snapshot): string {
  for (const j of b.jobs) {
    const old = a.jobById.get(j.id);
    if (!old) return `job ${j.id} appeared`;
    if (!isDeepStrictEqual(old, j)) return `job ${j.id}: ${JSON.stringify(old)} -> ${JSON.stringify(j)}`;
  }
  for (const [id, list] of b.attempts) {
    if (!isDeepStrictEqual(a.attempts.get(id), list)) return `attempts of ${id}: ${JSON.stringify(a.attempts.get(id))} -> ${JSON.stringify(list)}`;
  }
  for (const w of b.workers) {
    if (!isDeepStrictEqual(a.workerById.get(w.id), w)) return `worker ${w.id}: ${JSON.stringify(a.workerById.get(w.id))} -> ${JSON.stringify(w)}`;
  }
  return `jobs ${a.jobs.length} -> ${b.jobs.length}, or queue counts`;
}

// ---------------------------------------------------------------------------
// Checks on one snapshot: no ledger needed (the crash test uses these too)
// ---------------------------------------------------------------------------

/** Every invariant that one reading of the store can show on its own. */
export function checkSnapshot(s: Snapshot): void {
  for (const job of s.jobs) checkJob(s, job);
  checkWorkers(s);
  checkIdempotencyKeys(s);
  checkQueueCounts(s);
}

const live = (a: Attempt): boolean => isLiveAttemptState(a.state);

function checkJob(s: Snapshot, job: Job): void {
  const id = job.id;
  const attempts = s.attempts.get(id) ?? [];
  const liveAttempts = attempts.filter(live);
  // 7: state consistency.
  ensure((job.state === 'running') === liveAttempts.length > 0, '7', () => `job ${id} is ${job.state} with ${liveAttempts.length} live attempts`);
  ensure(job.live === liveAttempts.length, '7', () => `job ${id} counts live=${job.live}, has ${liveAttempts.length} live attempts`);
  ensure(job.attempts === attempts.length, '7', () => `job ${id} counts attempts=${job.attempts}, has ${attempts.length}`);
  ensure(isTerminalJobState(job.state) === (job.finishedAt !== null), '7', () => `job ${id} is ${job.state} with finishedAt ${job.finishedAt}`);
  ensure(job.want >= 0 && job.live >= 0 && job.failures >= 0, '7', () => `job ${id} has a negative counter`);
  ensure(job.want === 0 || job.state === 'queued' || job.state === 'running', '7', () => `job ${id} is ${job.state} and wants ${job.want}`);
  ensure(job.state !== 'queued' || job.want > 0, 'liveness', () => `job ${id} is queued but wants no attempt: it can never run`);
  ensure(job.failures <= job.maxAttempts, '7', () => `job ${id} failed ${job.failures} times of maxAttempts ${job.maxAttempts}`);
  ensure((job.state === 'succeeded') === (job.result !== null), '2', () => `job ${id} is ${job.state} with result ${JSON.stringify(job.result)}`);
  ensure(job.replicas > 1 || liveAttempts.length <= 1, '7', () => `job ${id} (1 replica) has ${liveAttempts.length} live attempts`);
  ensure(job.quorum >= 1 && job.quorum <= job.replicas, '7', () => `job ${id} has quorum ${job.quorum} of ${job.replicas}`);
  for (const a of attempts) checkAttempt(job, a);
  checkReplicas(job, attempts);
  checkAcceptedResult(job, attempts);
  checkDependencies(s, job);
}

function checkAttempt(job: Job, a: Attempt): void {
  const where = `attempt ${a.id} of job ${job.id}`;
  ensure(a.jobId === job.id && a.queue === job.queue, '7', () => `${where} names job ${a.jobId} / queue ${a.queue}`);
  ensure(live(a) === (a.finishedAt === null), '7', () => `${where} is ${a.state} with finishedAt ${a.finishedAt}`);
  ensure(a.state !== 'leased' || a.startedAt === null, '7', () => `${where} is leased but started at ${a.startedAt}`);
  ensure(a.state !== 'running' || a.startedAt !== null, '7', () => `${where} is running but never started`);
  ensure(
    a.cores === job.requires.cores && a.memoryMb === job.requires.memoryMb && a.gpuIds.length === job.requires.gpus,
    '5',
    () => `${where} holds ${a.cores} cores, ${a.memoryMb} MB, GPUs ${JSON.stringify(a.gpuIds)}; the job requires ${JSON.stringify(job.requires)}`,
  );
  ensure(new Set(a.gpuIds).size === a.gpuIds.length, '5', () => `${where} holds a GPU twice: ${JSON.stringify(a.gpuIds)}`);
  const voted = a.state === 'completed' || a.state === 'rejected';
  ensure(voted === (a.resultHash !== null), '2', () => `${where} is ${a.state} with result hash ${a.resultHash}`);
  if (a.result !== null) {
    ensure(voted && resultHash(a.result) === a.resultHash, '2', () => `${where} keeps a result that does not match its hash`);
  }
  if (live(a)) ensure(job.state === 'running', '7', () => `${where} is live but its job is ${job.state}`);
}

/** 6: replicas of one job run on distinct workers, and no worker votes twice on one job. */
function checkReplicas(job: Job, attempts: Attempt[]): void {
  const liveWorkers = attempts.filter(live).map((a) => a.workerId);
  ensure(new Set(liveWorkers).size === liveWorkers.length, '6', () => `job ${job.id} runs twice on one worker: ${liveWorkers.join(', ')}`);
  if (job.replicas === 1) return;
  // Rejected attempts are left out: a retry rejects the old round's results, and their workers may run the new round.
  const counted = attempts.filter((a) => live(a) || a.state === 'completed').map((a) => a.workerId);
  ensure(new Set(counted).size === counted.length, '6', () => `job ${job.id}: one worker holds two replicas or votes twice: ${counted.join(', ')}`);
}

/** 2: at most one accepted result, from a completed attempt. */
function checkAcceptedResult(job: Job, attempts: Attempt[]): void {
  const completed = attempts.filter((a) => a.state === 'completed');
  const rejected = attempts.filter((a) => a.state === 'rejected');
  if (job.replicas === 1) {
    ensure(rejected.length === 0, '2', () => `job ${job.id} (1 replica) has rejected attempts`);
    ensure(
      completed.length === (job.state === 'succeeded' ? 1 : 0),
      '2',
      () => `job ${job.id} is ${job.state} with ${completed.length} completed attempts`,
    );
  }
  if (job.state === 'succeeded') {
    const hash = resultHash(job.result);
    const winners = completed.filter((a) => a.resultHash === hash);
    const needed = job.replicas > 1 && !job.solo ? job.quorum : 1;
    ensure(winners.length >= needed, '2', () => `job ${job.id} succeeded with ${winners.length} completed attempts agreeing on its result (needed ${needed})`);
    ensure(winners.length === completed.length, '2', () => `job ${job.id} succeeded but keeps completed attempts with other results`);
    return;
  }
  // Not accepted (yet): no result group has reached the quorum, or it would have been accepted.
  // (Trace verification waits for every replica before it counts, so a job may end another way meanwhile.)
  if (job.verify?.mode === 'trace') return;
  const groups = new Map<string, number>();
  for (const a of completed) groups.set(a.resultHash ?? '', (groups.get(a.resultHash ?? '') ?? 0) + 1);
  for (const [hash, n] of groups) {
    ensure(n < job.quorum, '2', () => `job ${job.id} is ${job.state} though ${n} completed attempts agree on ${hash.slice(0, 8)} (quorum ${job.quorum})`);
  }
}

/** Dependencies: a waiting job waits on live parents; a ready job's parents all succeeded. */
function checkDependencies(s: Snapshot, job: Job): void {
  const parents = [...new Set(job.dependsOn)].map((pid) => {
    const p = s.jobById.get(pid);
    ensure(p, '1', () => `job ${job.id} depends on ${pid}, which is gone`);
    return p;
  });
  const pending = parents.filter((p) => p.state !== 'succeeded').length;
  if (job.state === 'waiting') {
    ensure(pending > 0 && job.pendingParents === pending, '7', () => `job ${job.id} waits with pendingParents=${job.pendingParents}, ${pending} parents not succeeded`);
    const dead = parents.find((p) => isTerminalJobState(p.state) && p.state !== 'succeeded');
    ensure(!dead, '7', () => `job ${job.id} still waits on ${dead?.id}, which ended ${dead?.state}`);
  } else if (!isTerminalJobState(job.state)) {
    ensure(pending === 0, '7', () => `job ${job.id} is ${job.state} while ${pending} of its parents have not succeeded`);
  }
}

/** 5: no worker holds more attempts than its slots, nor more cores, memory or GPUs than it declared. */
function checkWorkers(s: Snapshot): void {
  const byWorker = new Map<string, Attempt[]>();
  for (const a of s.attemptById.values()) {
    if (!live(a)) continue;
    const list = byWorker.get(a.workerId) ?? [];
    list.push(a);
    byWorker.set(a.workerId, list);
  }
  for (const [workerId, held] of byWorker) {
    ensure(s.workerById.has(workerId), '5', () => `live attempts on unknown worker ${workerId}`);
  }
  for (const w of s.workers) {
    const held = byWorker.get(w.id) ?? [];
    const perQueue: Record<string, number> = {};
    for (const a of held) perQueue[a.queue] = (perQueue[a.queue] ?? 0) + 1;
    for (const [q, n] of Object.entries(perQueue)) {
      ensure(n <= (Object.hasOwn(w.queues, q) ? (w.queues[q] ?? 0) : 0), '5', () => `worker ${w.id} holds ${n} attempts of ${q}, slots ${JSON.stringify(w.queues)}`);
    }
    const shown = Object.fromEntries(Object.entries(w.running).filter(([, n]) => n > 0));
    ensure(isDeepStrictEqual(shown, perQueue), '5', () => `worker ${w.id} shows running ${JSON.stringify(w.running)}, holds ${JSON.stringify(perQueue)}`);
    const cores = held.reduce((n, a) => n + a.cores, 0);
    const memoryMb = held.reduce((n, a) => n + a.memoryMb, 0);
    ensure(cores <= w.cores && memoryMb <= w.memoryMb, '5', () => `worker ${w.id} holds ${cores} cores / ${memoryMb} MB of ${w.cores} / ${w.memoryMb}`);
    const gpus = held.flatMap((a) => a.gpuIds);
    ensure(new Set(gpus).size === gpus.length, '5', () => `worker ${w.id}: a GPU id is held twice: ${JSON.stringify(gpus)}`);
    ensure(!w.quarantined || held.length === 0, 'trust', () => `quarantined worker ${w.id} holds ${held.map((a) => a.id).join(', ')}`);
    ensure(gpus.every((g) => w.gpuIds.includes(g)), '5', () => `worker ${w.id} holds GPUs ${JSON.stringify(gpus)}, declared ${JSON.stringify(w.gpuIds)}`);
  }
}

/** 4: one job per idempotency key. */
function checkIdempotencyKeys(s: Snapshot): void {
  const seen = new Map<string, string>();
  for (const j of s.jobs) {
    if (j.idempotencyKey === null) continue;
    const other = seen.get(j.idempotencyKey);
    ensure(other === undefined, '4', () => `jobs ${other} and ${j.id} share idempotency key ${j.idempotencyKey}`);
    seen.set(j.idempotencyKey, j.id);
  }
}

function checkQueueCounts(s: Snapshot): void {
  const expected = new Map<string, Record<string, number>>();
  for (const j of s.jobs) {
    const c = expected.get(j.queue) ?? {};
    c[j.state] = (c[j.state] ?? 0) + 1;
    expected.set(j.queue, c);
  }
  const shown = new Map(s.counts.map((c) => [c.queue, c.counts]));
  ensure(shown.size === expected.size, 'counts', () => `queueCounts lists ${[...shown.keys()].join(',')}; jobs are in ${[...expected.keys()].join(',')}`);
  for (const [q, c] of expected) {
    const got = shown.get(q);
    for (const state of JOB_STATES) {
      ensure((got?.[state] ?? 0) === (c[state] ?? 0), 'counts', () => `queueCounts ${q}.${state} = ${got?.[state]}, jobs say ${c[state] ?? 0}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Checks between two snapshots
// ---------------------------------------------------------------------------

/** Whether `to` can be reached from `from` in some number of legal moves (or zero). */
function reachable<S extends string>(from: S, to: S, canMove: (a: S, b: S) => boolean, states: readonly S[]): boolean {
  const seen = new Set<S>([from]);
  const todo: S[] = [from];
  while (todo.length > 0) {
    const s = todo.pop()!;
    if (s === to) return true;
    for (const n of states) if (!seen.has(n) && canMove(s, n)) (seen.add(n), todo.push(n));
  }
  return false;
}

/**
 * 1, 2 and 7 across time: nothing disappears, states move only along the
 * transition tables, accepted results never change. `step`: one operation
 * lies between the readings, so each state moved at most once; otherwise
 * (several operations, a crash) each state moved along a path of legal moves.
 */
export function checkTransitions(prev: Snapshot, next: Snapshot, step = true, completedNow?: string): void {
  for (const old of prev.jobs) {
    const cur = next.jobById.get(old.id);
    ensure(cur, '1', () => `job ${old.id} (${old.state}) is gone`);
    ensure(cur.createdAt === old.createdAt, '1', () => `job ${old.id} createdAt changed`);
    const jobOk = step ? cur.state === old.state || canMoveJob(old.state, cur.state) : reachable(old.state, cur.state, canMoveJob, JOB_STATES);
    ensure(jobOk, '7', () => `job ${old.id} moved ${old.state} -> ${cur.state}`);
    if (old.state === 'succeeded') {
      ensure(cur.state === 'succeeded' && isDeepStrictEqual(cur.result, old.result), '2', () => `job ${old.id}'s accepted result changed: ${JSON.stringify(old.result)} -> ${cur.state} ${JSON.stringify(cur.result)}`);
    }
    ensure(cur.attempts >= old.attempts, '7', () => `job ${old.id} attempts went down`);
  }
  for (const old of prev.attemptById.values()) {
    const cur = next.attemptById.get(old.id);
    ensure(cur, '1', () => `attempt ${old.id} is gone`);
    // The attempt whose result this step delivered may also lose the vote its
    // own result settled (trace clustering), in the same transaction.
    const viaCompleted = old.id === completedNow && cur.state === 'rejected' && canMoveAttempt(old.state, 'completed');
    const attemptOk = step
      ? cur.state === old.state || canMoveAttempt(old.state, cur.state) || viaCompleted
      : reachable(old.state, cur.state, canMoveAttempt, ATTEMPT_STATES);
    ensure(attemptOk, '7', () => `attempt ${old.id} moved ${old.state} -> ${cur.state}`);
    ensure(
      cur.jobId === old.jobId && cur.workerId === old.workerId && cur.leasedAt === old.leasedAt && isDeepStrictEqual(cur.gpuIds, old.gpuIds),
      '7',
      () => `attempt ${old.id} changed its job, worker, lease time or GPUs`,
    );
    if (!live(old)) {
      ensure(cur.finishedAt === old.finishedAt && cur.resultHash === old.resultHash, '2', () => `ended attempt ${old.id} changed its finish or result`);
    }
  }
}

// ---------------------------------------------------------------------------
// The command model
// ---------------------------------------------------------------------------

const QUEUES = ['q.a', 'q.b'] as const;
const KEYS = ['k1', 'k2', 'k3'] as const;
const ZONES = ['x', 'y'] as const;
const START_MS = Date.UTC(2026, 0, 1);
const MAX_WORKERS = 6;

interface JobGen {
  queue: (typeof QUEUES)[number];
  priority: number;
  replicas: number;
  quorumPick: number;
  cores: number;
  memoryMb: number;
  gpus: number;
  zone: (typeof ZONES)[number] | null;
  affinity: { key: (typeof KEYS)[number]; mode: 'prefer' | 'require' } | null;
  deps: number[];
  key: number | null;
  heartbeatTimeoutMs: number;
  timeoutMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  runAtInMs: number | null;
  deadlineInMs: number | null;
  payload: number;
  /** With replicas: adaptive replication. */
  adaptive: boolean;
  /** With 3 or more replicas: trace verification. */
  trace: boolean;
}

interface WorkerGen {
  slotsA: number;
  slotsB: number;
  cores: number;
  memoryMb: number;
  gpus: number;
  keys: string[];
  zone: (typeof ZONES)[number] | null;
}

type LeaseChoice = 'right' | 'stale' | 'wrong' | 'missing';

type Op =
  | { kind: 'submit'; jobs: JobGen[]; bogusDep: boolean }
  | { kind: 'register'; worker: WorkerGen }
  | { kind: 'claim'; mask: number; maxJobs: number }
  | { kind: 'heartbeat'; worker: number; named: boolean; mask: number; wrongMask: number; foreign: boolean }
  | { kind: 'progress'; pick: number; lease: LeaseChoice }
  | { kind: 'complete'; pick: number; lease: LeaseChoice; result: number }
  | { kind: 'fail'; pick: number; lease: LeaseChoice; retryable: boolean }
  | { kind: 'cancel'; job: number }
  | { kind: 'retry'; job: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'expireAttempts'; limit: number }
  | { kind: 'expireDeadlines'; limit: number }
  | { kind: 'disconnect'; worker: number }
  | { kind: 'reconnect'; worker: number }
  | { kind: 'drain'; worker: number; draining: boolean }
  | { kind: 'quarantine'; worker: number; on: boolean }
  | { kind: 'restart' };

interface Scenario {
  /** Seeds the store's random source: lease tokens, ids, backoff jitter. */
  storeSeed: number;
  workers: WorkerGen[];
  ops: Op[];
}

/** `arb` in `some` of `some + none` cases, else null. */
function maybe<T>(some: number, none: number, arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.oneof({ arbitrary: fc.constant(null), weight: none }, { arbitrary: arb, weight: some });
}

const jobGenArb: fc.Arbitrary<JobGen> = fc
  .record({
    queue: fc.constantFrom(...QUEUES),
    priority: fc.integer({ min: -2, max: 2 }),
    replicas: fc.oneof({ arbitrary: fc.constant(1), weight: 3 }, { arbitrary: fc.integer({ min: 2, max: 3 }), weight: 1 }),
    quorumPick: fc.nat({ max: 2 }),
    cores: fc.oneof({ arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 1 }),
    memoryMb: fc.constantFrom(0, 0, 512, 1024, 3000),
    gpus: fc.oneof({ arbitrary: fc.constant(0), weight: 2 }, { arbitrary: fc.integer({ min: 1, max: 2 }), weight: 1 }),
    zone: maybe(1, 4, fc.constantFrom(...ZONES)),
    affinity: maybe(1, 3, fc.record({ key: fc.constantFrom(...KEYS), mode: fc.constantFrom('prefer' as const, 'require' as const) })),
    deps: fc.oneof({ arbitrary: fc.constant([] as number[]), weight: 3 }, { arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 2 }), weight: 1 }),
    key: maybe(1, 2, fc.nat({ max: 5 })),
    heartbeatTimeoutMs: fc.oneof(fc.integer({ min: 100, max: 1000 }), fc.integer({ min: 2000, max: 30_000 })),
    timeoutMs: fc.oneof(fc.integer({ min: 200, max: 3000 }), fc.integer({ min: 5000, max: 60_000 })),
    maxAttempts: fc.integer({ min: 1, max: 3 }),
    backoffBaseMs: fc.integer({ min: 0, max: 400 }),
    runAtInMs: maybe(1, 4, fc.integer({ min: 0, max: 3000 })),
    deadlineInMs: maybe(1, 4, fc.integer({ min: 0, max: 20_000 })),
    payload: fc.nat({ max: 1000 }),
    adaptive: fc.boolean(),
    trace: fc.nat({ max: 2 }).map((n) => n === 0),
  })
  .map((g) => g);

const workerGenArb: fc.Arbitrary<WorkerGen> = fc.record({
  slotsA: fc.integer({ min: 0, max: 3 }),
  slotsB: fc.integer({ min: 0, max: 3 }),
  cores: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3 }), weight: 1 }, { arbitrary: fc.integer({ min: 4, max: 8 }), weight: 3 }),
  memoryMb: fc.constantFrom(0, 2048, 4096, 8192),
  gpus: fc.integer({ min: 0, max: 3 }),
  keys: fc.subarray([...KEYS]),
  zone: maybe(1, 1, fc.constantFrom(...ZONES)),
});

const leaseChoiceArb = fc.constantFrom<LeaseChoice>('right', 'right', 'right', 'right', 'right', 'stale', 'wrong', 'missing');

function opArb(restart: boolean): fc.Arbitrary<Op> {
  const w = (weight: number, arbitrary: fc.Arbitrary<Op>): fc.WeightedArbitrary<Op> => ({ weight, arbitrary });
  const ops: fc.WeightedArbitrary<Op>[] = [
    w(7, fc.record({ kind: fc.constant('submit' as const), jobs: fc.array(jobGenArb, { minLength: 1, maxLength: 4 }), bogusDep: fc.nat({ max: 11 }).map((n) => n === 0) })),
    w(1, fc.record({ kind: fc.constant('register' as const), worker: workerGenArb })),
    w(8, fc.record({ kind: fc.constant('claim' as const), mask: fc.nat({ max: 63 }), maxJobs: fc.integer({ min: 1, max: 8 }) })),
    w(3, fc.record({ kind: fc.constant('heartbeat' as const), worker: fc.nat(), named: fc.boolean(), mask: fc.nat({ max: 255 }), wrongMask: fc.nat({ max: 255 }), foreign: fc.boolean() })),
    w(1, fc.record({ kind: fc.constant('progress' as const), pick: fc.nat(), lease: leaseChoiceArb })),
    w(8, fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), lease: leaseChoiceArb, result: fc.nat({ max: 2 }) })),
    w(3, fc.record({ kind: fc.constant('fail' as const), pick: fc.nat(), lease: leaseChoiceArb, retryable: fc.boolean() })),
    w(1, fc.record({ kind: fc.constant('cancel' as const), job: fc.nat() })),
    w(1, fc.record({ kind: fc.constant('retry' as const), job: fc.nat() })),
    w(4, fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(0, 50, 150, 500, 1500, 5000) })),
    w(2, fc.record({ kind: fc.constant('expireAttempts' as const), limit: fc.constantFrom(1, 500) })),
    w(1, fc.record({ kind: fc.constant('expireDeadlines' as const), limit: fc.constantFrom(1, 500) })),
    w(1, fc.record({ kind: fc.constant('disconnect' as const), worker: fc.nat() })),
    w(1, fc.record({ kind: fc.constant('reconnect' as const), worker: fc.nat() })),
    w(1, fc.record({ kind: fc.constant('drain' as const), worker: fc.nat(), draining: fc.boolean() })),
    w(1, fc.record({ kind: fc.constant('quarantine' as const), worker: fc.nat(), on: fc.boolean() })),
  ];
  if (restart) ops.push(w(1, fc.constant({ kind: 'restart' as const })));
  return fc.oneof(...ops);
}

function scenarioArb(maxCommands: number, restart: boolean): fc.Arbitrary<Scenario> {
  return fc.record({
    storeSeed: fc.integer(),
    workers: fc.array(workerGenArb, { minLength: 2, maxLength: 4 }),
    ops: fc.array(opArb(restart), { minLength: Math.ceil(maxCommands / 4), maxLength: maxCommands, size: 'max' }),
  });
}

// ---------------------------------------------------------------------------
// Running a scenario
// ---------------------------------------------------------------------------

/** What the test was told: the model the store is checked against. */
interface Ledger {
  jobs: Map<string, { spec: NewJob; createdAt: number }>;
  jobOrder: string[];
  keys: Map<string, string>;
  workers: Map<string, WorkerSpec>;
  workerOrder: string[];
  disconnected: Set<string>;
  draining: Set<string>;
  assignments: Map<string, Assignment>;
  assignmentOrder: string[];
  /** Results accepted by a complete that returned, by attempt. */
  completed: Map<string, Json>;
  /** Attempts a fail that returned ended. */
  failed: Set<string>;
}

/** What a command returns when it found nothing to act on (no job, worker or attempt yet). */
const SKIP = 'skip' as const;

const SUBMITTED_FIELDS = [
  'queue', 'payload', 'priority', 'deadline', 'timeoutMs', 'heartbeatTimeoutMs', 'maxAttempts', 'backoff',
  'requires', 'affinity', 'dependsOn', 'replicas', 'quorum', 'verify', 'idempotencyKey', 'labels',
] as const satisfies readonly (keyof NewJob)[];

async function runScenario(scenario: Scenario, open: OpenStore, place: PlaceFn, name: string, stats: Map<string, number>): Promise<void> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const ctx: StoreContext = {
    clock: new VirtualClock(START_MS),
    random: seededRandom(scenario.storeSeed),
    name,
    defer: (fn) => void cleanups.push(fn),
    trust: INVARIANT_TRUST,
  };
  const run = new Run(ctx, open, place, await open(ctx), stats);
  try {
    await run.check('open');
    for (const [i, g] of scenario.workers.entries()) await run.step(`prelude ${i}`, { kind: 'register', worker: g });
    for (const [i, op] of scenario.ops.entries()) await run.step(`step ${i}`, op);
    await run.drainToEnd();
  } finally {
    await run.store.close();
    for (const fn of cleanups.reverse()) await fn();
  }
}

class Run {
  store: Store;
  private readonly ctx: StoreContext;
  private readonly open: OpenStore;
  private readonly place: PlaceFn;
  private readonly ledger: Ledger = {
    jobs: new Map(),
    jobOrder: [],
    keys: new Map(),
    workers: new Map(),
    workerOrder: [],
    disconnected: new Set(),
    draining: new Set(),
    assignments: new Map(),
    assignmentOrder: [],
    completed: new Map(),
    failed: new Set(),
  };
  private prev: Snapshot | null = null;
  /** The attempt a `complete` step just delivered a result for, until that step's check. */
  private completedNow: string | undefined;
  private readonly stats: Map<string, number>;

  constructor(ctx: StoreContext, open: OpenStore, place: PlaceFn, store: Store, stats: Map<string, number>) {
    this.ctx = ctx;
    this.open = open;
    this.place = place;
    this.store = store;
    this.stats = stats;
  }

  private count(what: string, n = 1): void {
    this.stats.set(what, (this.stats.get(what) ?? 0) + n);
  }

  private get now(): number {
    return this.ctx.clock.now();
  }

  private get before(): Snapshot {
    if (!this.prev) throw new Error('no snapshot yet');
    return this.prev;
  }

  async step(label: string, op: Op): Promise<void> {
    const where = `${label} ${JSON.stringify(op)}`;
    try {
      const outcome = await this.apply(op);
      this.count(`${op.kind}${outcome === SKIP ? '.skipped' : outcome ? '.unchanged' : ''}`);
      await this.check(where, outcome !== false);
    } catch (err) {
      if (err instanceof Error && !err.message.startsWith('at ')) err.message = `at ${where}: ${err.message}`;
      throw err;
    }
  }

  /** Reads the store, checks everything, and keeps the reading for the next step. */
  async check(label: string, unchanged = false, oneStep = true): Promise<Snapshot> {
    const next = await readSnapshot(this.store, this.now);
    try {
      checkSnapshot(next);
      if (this.prev) checkTransitions(this.prev, next, oneStep, this.completedNow);
      this.checkLedger(next);
      if (unchanged && this.prev) assertUnchanged(this.prev, next, label);
    } catch (err) {
      if (err instanceof Error && !err.message.startsWith('at ')) err.message = `at ${label}: ${err.message}`;
      throw err;
    }
    this.prev = next;
    this.completedNow = undefined;
    return next;
  }

  /** Applies one command and checks its answer; true (or SKIP: nothing to act on) when the store must be left unchanged. */
  private async apply(op: Op): Promise<boolean | typeof SKIP> {
    switch (op.kind) {
      case 'submit':
        return this.submit(op.jobs, op.bogusDep);
      case 'register':
        return this.register(op.worker);
      case 'claim':
        await this.claim(this.pickWorkers(op.mask), op.maxJobs);
        return false;
      case 'heartbeat':
        return this.heartbeat(op);
      case 'progress':
      case 'complete':
      case 'fail':
        return this.report(op);
      case 'cancel':
        return this.cancel(op.job);
      case 'retry':
        return this.retry(op.job);
      case 'advance':
        this.ctx.clock.advance(op.ms);
        return false;
      case 'expireAttempts':
        await this.expireAttempts(op.limit);
        return false;
      case 'expireDeadlines':
        await this.expireDeadlines(op.limit);
        return false;
      case 'disconnect':
      case 'reconnect':
      case 'drain':
        return this.connection(op);
      case 'quarantine':
        return this.quarantine(op.worker, op.on);
      case 'restart':
        await this.store.close();
        this.store = await this.open(this.ctx);
        return true;
    }
  }

  // ---- Jobs ----

  private toNewJob(g: JobGen): NewJob {
    const now = this.now;
    const order = this.ledger.jobOrder;
    const spec: JobSpec = {
      queue: g.queue,
      payload: { n: g.payload },
      priority: g.priority,
      timeoutMs: g.timeoutMs,
      heartbeatTimeoutMs: g.heartbeatTimeoutMs,
      maxAttempts: g.maxAttempts,
      backoff: { baseMs: g.backoffBaseMs, maxMs: g.backoffBaseMs * 4 },
      requires: { cores: g.cores, memoryMb: g.memoryMb, gpus: g.gpus, ...(g.zone ? { labels: { zone: g.zone } } : {}) },
      replicas: g.replicas,
      quorum: 1 + (g.quorumPick % g.replicas),
      labels: { gen: String(g.payload % 3) },
    };
    if (g.replicas > 1 && g.adaptive) spec.adaptive = true;
    if (g.replicas >= 3 && g.trace) spec.verify = { mode: 'trace', tolerance: 0.2 };
    if (g.affinity) spec.affinity = { ...g.affinity };
    if (order.length > 0 && g.deps.length > 0) spec.dependsOn = g.deps.map((d) => order[d % order.length]!);
    if (g.key !== null) spec.idempotencyKey = `key-${g.key}`;
    if (g.runAtInMs !== null) spec.runAt = now + g.runAtInMs;
    if (g.deadlineInMs !== null) spec.deadline = now + g.deadlineInMs;
    return normalizeJob(spec);
  }

  private async submit(gens: JobGen[], bogusDep: boolean): Promise<boolean> {
    const specs = gens.map((g) => this.toNewJob(g));
    // A job whose key was seen is answered with the existing job, unchecked: the bad parent goes on a new one.
    const seenKeys = new Set(this.ledger.keys.keys());
    const fresh = specs.find((j) => {
      const isNew = j.idempotencyKey === null || !seenKeys.has(j.idempotencyKey);
      if (j.idempotencyKey !== null) seenKeys.add(j.idempotencyKey);
      return isNew;
    });
    if (bogusDep && fresh) {
      fresh.dependsOn.push('01ZZZZZZZZZZZZZZZZNOSUCHJOB');
      await expectError(this.store.submit({ jobs: specs }), ['UNKNOWN_DEPENDENCY'], 'a batch naming an unknown parent');
      return true;
    }
    const results = await this.store.submit({ jobs: specs });
    ensure(results.length === specs.length, '1', () => `submit of ${specs.length} jobs answered ${results.length}`);
    for (const [i, r] of results.entries()) {
      const spec = specs[i]!;
      const key = spec.idempotencyKey;
      const existing = key === null ? undefined : this.ledger.keys.get(key);
      if (existing !== undefined) {
        ensure(!r.created && r.job.id === existing, '4', () => `a repeated key ${key} gave ${r.created ? 'a new job' : 'job'} ${r.job.id}, not ${existing}`);
        this.expectSubmitted(r.job, this.ledger.jobs.get(existing)!.spec);
        continue;
      }
      ensure(r.created, '4', () => `a new key ${key} was answered as seen before (job ${r.job.id})`);
      ensure(!this.ledger.jobs.has(r.job.id), '1', () => `submit reused job id ${r.job.id}`);
      this.expectSubmitted(r.job, spec);
      ensure(r.job.createdAt === this.now && r.job.runAt === (spec.runAt ?? this.now), '1', () => `job ${r.job.id} createdAt/runAt ${r.job.createdAt}/${r.job.runAt}, submitted at ${this.now} runAt ${spec.runAt}`);
      const initial = this.expectedInitialStates(spec);
      ensure(initial.includes(r.job.state), '7', () => `job ${r.job.id} starts ${r.job.state}, its parents say ${initial.join(' or ')}`);
      this.ledger.jobs.set(r.job.id, { spec, createdAt: r.job.createdAt });
      this.ledger.jobOrder.push(r.job.id);
      if (key !== null) this.ledger.keys.set(key, r.job.id);
    }
    return false;
  }

  /** A new job waits for live parents, and ends at once, as the cascade would end it, when one already ended badly. */
  private expectedInitialStates(spec: NewJob): JobState[] {
    const parents = [...new Set(spec.dependsOn)].map((id) => this.before.jobById.get(id)!);
    const dead = parents.filter((p) => isTerminalJobState(p.state) && p.state !== 'succeeded');
    if (dead.length > 0) return [...new Set(dead.map((p): JobState => (p.state === 'cancelled' ? 'cancelled' : 'failed')))];
    return parents.some((p) => p.state !== 'succeeded') ? ['waiting'] : ['queued'];
  }

  private expectSubmitted(job: Job, spec: NewJob): void {
    for (const f of SUBMITTED_FIELDS) {
      ensure(isDeepStrictEqual(job[f], spec[f]), '1', () => `job ${job.id}.${f} is ${JSON.stringify(job[f])}, submitted ${JSON.stringify(spec[f])}`);
    }
  }

  private pickJob(n: number): Job | undefined {
    const order = this.ledger.jobOrder;
    return order.length === 0 ? undefined : this.before.jobById.get(order[n % order.length]!);
  }

  private async cancel(n: number): Promise<boolean | typeof SKIP> {
    const job = this.pickJob(n);
    if (!job) return SKIP;
    if (job.state === 'cancelled' || isTerminalJobState(job.state)) {
      if (job.state === 'cancelled') {
        const out = await this.store.cancel({ jobId: job.id });
        ensure(out.changes.length === 0 && out.job.state === 'cancelled', 'cancel', () => `cancelling a cancelled job changed ${JSON.stringify(out.changes)}`);
      } else {
        await expectError(this.store.cancel({ jobId: job.id }), ['INVALID_STATE'], `cancel of a ${job.state} job`);
      }
      return true;
    }
    const out = await this.store.cancel({ jobId: job.id, reason: 'test' });
    ensure(out.job.state === 'cancelled', 'cancel', () => `cancel left job ${job.id} ${out.job.state}`);
    const next = await readSnapshot(this.store, this.now);
    for (const a of this.before.attempts.get(job.id) ?? []) {
      if (!live(a)) continue;
      const cur = next.attemptById.get(a.id);
      ensure(cur?.state === 'cancelled', 'cancel', () => `cancel left attempt ${a.id} ${cur?.state}`);
    }
    ensure(isDeepStrictEqual(next.jobById.get(job.id), out.job), 'cancel', () => 'cancel answered a job that differs from the stored one');
    return false;
  }

  private async retry(n: number): Promise<boolean | typeof SKIP> {
    // Mostly a job that can be retried, so that retries happen; every third pick is any job.
    const ended = this.before.jobs.filter((j) => j.state === 'failed' || j.state === 'cancelled' || j.state === 'expired');
    const job = n % 3 === 0 || ended.length === 0 ? this.pickJob(n) : ended[n % ended.length];
    if (!job) return SKIP;
    const parentsOk = [...new Set(job.dependsOn)].every((p) => this.before.jobById.get(p)?.state === 'succeeded');
    if (!(job.state === 'failed' || job.state === 'cancelled' || job.state === 'expired') || !parentsOk) {
      await expectError(this.store.retry({ jobId: job.id }), ['INVALID_STATE'], `retry of a ${job.state} job`);
      return true;
    }
    const out = await this.store.retry({ jobId: job.id });
    const j = out.job;
    ensure(
      j.state === 'queued' && j.want === job.replicas && j.failures === 0 && j.finishedAt === null && j.result === null && j.runAt === this.now,
      'retry',
      () => `retry left job ${job.id} as ${JSON.stringify(j)}`,
    );
    return false;
  }

  // ---- Workers ----

  private async register(g: WorkerGen): Promise<boolean | typeof SKIP> {
    if (this.ledger.workerOrder.length >= MAX_WORKERS) return this.connection({ kind: 'reconnect', worker: g.cores });
    const id = `w${this.ledger.workerOrder.length}`;
    const queues: Record<string, number> = {};
    if (g.slotsA > 0 || g.slotsB === 0) queues['q.a'] = Math.max(1, g.slotsA);
    if (g.slotsB > 0) queues['q.b'] = g.slotsB;
    const spec: WorkerSpec = {
      id,
      name: `worker ${id}`,
      labels: g.zone ? { zone: g.zone } : {},
      cores: g.cores,
      memoryMb: g.memoryMb,
      gpuIds: Array.from({ length: g.gpus }, (_, i) => i),
      queues,
      keys: g.keys,
    };
    await this.upsert(spec);
    this.ledger.workerOrder.push(id);
    return false;
  }

  private async upsert(spec: WorkerSpec): Promise<void> {
    const w = await this.store.upsertWorker({ spec });
    ensure(w.id === spec.id && w.connected && !w.draining, 'workers', () => `upsertWorker answered ${JSON.stringify(w)}`);
    for (const f of ['name', 'labels', 'cores', 'memoryMb', 'gpuIds', 'queues', 'keys'] as const) {
      ensure(isDeepStrictEqual(w[f], spec[f]), 'workers', () => `worker ${w.id}.${f} is ${JSON.stringify(w[f])}, declared ${JSON.stringify(spec[f])}`);
    }
    this.ledger.workers.set(w.id, spec);
    this.ledger.disconnected.delete(w.id);
    this.ledger.draining.delete(w.id);
  }

  private pickWorker(n: number): string | undefined {
    const order = this.ledger.workerOrder;
    return order.length === 0 ? undefined : order[n % order.length];
  }

  private pickWorkers(mask: number): string[] {
    const order = this.ledger.workerOrder;
    const ids = order.filter((_, i) => (mask >> i) & 1);
    return ids.length > 0 || order.length === 0 ? ids : [order[mask % order.length]!];
  }

  /** Quarantine: the worker's live attempts are cancelled and their jobs put back; release: a fresh record. */
  private async quarantine(n: number, on: boolean): Promise<boolean | typeof SKIP> {
    const id = this.pickWorker(n);
    if (id === undefined) return SKIP;
    const held = [...this.before.attemptById.values()].filter((a) => live(a) && a.workerId === id).map((a) => a.id).sort();
    const out = await this.store.setWorkerQuarantine({ workerId: id, quarantined: on, reason: 'by the test' });
    this.count(`quarantine.${on ? 'on' : 'off'}${held.length > 0 && on ? '.held' : ''}`);
    ensure(out.worker.quarantined === on, 'trust', () => `setWorkerQuarantine(${on}) answered ${JSON.stringify(out.worker)}`);
    const next = await readSnapshot(this.store, this.now);
    if (on) {
      const stopped = out.changes.flatMap((c) => c.cancelledAttempts.map((a) => a.attemptId)).sort();
      ensure(isDeepStrictEqual(stopped, held), 'trust', () => `quarantine stopped ${stopped.join(', ')}, the worker held ${held.join(', ')}`);
      for (const a of held) ensure(next.attemptById.get(a)?.state === 'cancelled', 'trust', () => `attempt ${a} of a quarantined worker is ${next.attemptById.get(a)?.state}`);
    } else {
      ensure(isDeepStrictEqual(out.worker.reputation, { valid: 0, invalid: 0, timedOut: 0, streak: 0, soloSinceCheck: 0 }), 'trust', () => `a released worker keeps ${JSON.stringify(out.worker.reputation)}`);
      ensure(isDeepStrictEqual([...this.before.attempts.entries()], [...next.attempts.entries()]), 'trust', () => 'a release changed attempts');
    }
    return false;
  }

  /** Disconnect, reconnect, drain: none of them touches a lease (invariant 8). */
  private async connection(op: Extract<Op, { kind: 'disconnect' | 'reconnect' | 'drain' }>): Promise<boolean | typeof SKIP> {
    const id = this.pickWorker(op.worker);
    if (id === undefined) return SKIP;
    if (op.kind === 'disconnect') {
      await this.store.disconnectWorker({ workerId: id });
      this.ledger.disconnected.add(id);
    } else if (op.kind === 'reconnect') {
      await this.upsert(this.ledger.workers.get(id)!);
    } else {
      const w = await this.store.setWorkerDraining({ workerId: id, draining: op.draining });
      ensure(w.draining === op.draining, 'workers', () => `setWorkerDraining(${op.draining}) answered draining=${w.draining}`);
      if (op.draining) this.ledger.draining.add(id);
      else this.ledger.draining.delete(id);
    }
    const next = await readSnapshot(this.store, this.now);
    ensure(isDeepStrictEqual([...this.before.attempts.entries()], [...next.attempts.entries()]), '8', () => `${op.kind} changed attempts`);
    return false;
  }

  // ---- Claims and reports ----

  private async claim(workerIds: string[], maxJobs: number): Promise<Assignment[]> {
    const before = this.before;
    const out = await this.store.claim({ workerIds, place: this.place, maxJobs });
    ensure(out.length <= maxJobs, 'claim', () => `claim of at most ${maxJobs} handed out ${out.length}`);
    const perJob = new Map<string, number>();
    const perJobWorkers = new Set<string>();
    for (const a of out) {
      const job = before.jobById.get(a.jobId);
      const spec = this.ledger.workers.get(a.workerId);
      ensure(job && spec && workerIds.includes(a.workerId), 'claim', () => `assignment ${JSON.stringify(a)} names an unknown job or a worker not in the claim`);
      ensure(!this.ledger.assignments.has(a.attemptId) && !before.attemptById.has(a.attemptId), 'claim', () => `attempt id ${a.attemptId} reused`);
      ensure(!this.ledger.disconnected.has(a.workerId) && !this.ledger.draining.has(a.workerId), 'claim', () => `work handed to ${a.workerId}, which is disconnected or draining`);
      ensure((job.state === 'queued' || job.state === 'running') && job.runAt <= this.now, 'claim', () => `job ${job.id} handed out while ${job.state}, runAt ${job.runAt} > now ${this.now}`);
      ensure(job.deadline === null || job.deadline > this.now || job.state === 'running', 'claim', () => `job ${job.id} handed out past its deadline ${job.deadline} (now ${this.now}) before it started`);
      perJob.set(job.id, (perJob.get(job.id) ?? 0) + 1);
      ensure((perJob.get(job.id) ?? 0) <= job.want, 'claim', () => `job ${job.id} wanted ${job.want} attempts, got more`);
      ensure(!perJobWorkers.has(`${job.id}/${a.workerId}`), '6', () => `job ${job.id} handed twice to ${a.workerId}`);
      perJobWorkers.add(`${job.id}/${a.workerId}`);
      ensure((spec.queues[job.queue] ?? 0) > 0, 'claim', () => `job ${job.id} of ${job.queue} handed to ${a.workerId}, which does not serve it`);
      for (const [k, v] of Object.entries(job.requires.labels)) {
        ensure(spec.labels[k] === v, 'claim', () => `job ${job.id} requires ${k}=${v}; worker ${a.workerId} has ${JSON.stringify(spec.labels)}`);
      }
      if (job.affinity?.mode === 'require') {
        ensure(spec.keys.includes(job.affinity.key), 'claim', () => `job ${job.id} requires key ${job.affinity?.key}; worker ${a.workerId} holds ${spec.keys}`);
      }
      ensure(
        a.queue === job.queue && isDeepStrictEqual(a.payload, job.payload) && a.cores === job.requires.cores && a.memoryMb === job.requires.memoryMb && a.gpuIds.length === job.requires.gpus && a.attempt === job.attempts + (perJob.get(job.id) ?? 0),
        'claim',
        () => `assignment ${JSON.stringify(a)} does not match job ${JSON.stringify(job)}`,
      );
      this.ledger.assignments.set(a.attemptId, a);
      this.ledger.assignmentOrder.push(a.attemptId);
    }
    this.count('claim.assigned', out.length);
    if (out.length === 0) this.count('claim.empty');
    return out;
  }

  private async heartbeat(op: Extract<Op, { kind: 'heartbeat' }>): Promise<boolean | typeof SKIP> {
    const workerId = this.pickWorker(op.worker);
    if (workerId === undefined) return SKIP;
    const before = this.before;
    const now = this.now;
    const fresh = (a: Attempt | undefined): boolean => a !== undefined && live(a) && a.leaseExpiresAt >= now;
    let expected: string[];
    let res: { extended: string[]; revoked: string[] };
    if (!op.named) {
      expected = [...before.attemptById.values()].filter((a) => a.workerId === workerId && fresh(a)).map((a) => a.id);
      res = await this.store.heartbeat({ workerId });
      ensure(res.revoked.length === 0, '3', () => `a heartbeat naming nothing revoked ${res.revoked}`);
    } else {
      const mine = this.ledger.assignmentOrder.filter((id) => this.ledger.assignments.get(id)!.workerId === workerId);
      const refs: LeaseRef[] = mine
        .filter((_, i) => (op.mask >> i % 8) & 1)
        .map((id, i) => ({ attemptId: id, lease: (op.wrongMask >> i % 8) & 1 ? wrongLease(this.ledger.assignments.get(id)!.lease) : this.ledger.assignments.get(id)!.lease }));
      const other = this.ledger.assignmentOrder.find((id) => this.ledger.assignments.get(id)!.workerId !== workerId);
      if (op.foreign && other !== undefined) refs.push({ attemptId: other, lease: this.ledger.assignments.get(other)!.lease });
      expected = refs
        .filter((r) => r.lease === this.ledger.assignments.get(r.attemptId)!.lease && this.ledger.assignments.get(r.attemptId)!.workerId === workerId)
        .filter((r) => fresh(before.attemptById.get(r.attemptId)))
        .map((r) => r.attemptId);
      res = await this.store.heartbeat({ workerId, attempts: refs });
      const revokedExpected = refs.map((r) => r.attemptId).filter((id) => !expected.includes(id));
      ensure(isDeepStrictEqual([...res.revoked].sort(), revokedExpected.sort()), '3', () => `heartbeat revoked ${res.revoked}, expected ${revokedExpected}`);
    }
    ensure(isDeepStrictEqual([...res.extended].sort(), [...expected].sort()), '3', () => `heartbeat extended ${res.extended}, expected ${expected}`);
    this.ledger.disconnected.delete(workerId);
    const next = await readSnapshot(this.store, now);
    for (const id of expected) {
      const a = next.attemptById.get(id)!;
      const job = next.jobById.get(a.jobId)!;
      ensure(a.state === 'running' && a.heartbeatAt === now && a.leaseExpiresAt === now + job.heartbeatTimeoutMs, '7', () => `heartbeat left attempt ${id} as ${JSON.stringify(a)}`);
    }
    for (const [id, a] of before.attemptById) {
      if (expected.includes(id)) continue;
      ensure(isDeepStrictEqual(next.attemptById.get(id), a), '3', () => `heartbeat changed attempt ${id}, which it did not extend`);
    }
    return false;
  }

  /** A lease reference for a report: the right one, a stale one, a wrong one, or a missing attempt. */
  private pickRef(pick: number, choice: LeaseChoice): LeaseRef | null {
    if (choice === 'missing') return { attemptId: `0000000000NOSUCHATTEMPT${pick % 100}`, lease: 'ab'.repeat(16) };
    const all = this.ledger.assignmentOrder;
    if (all.length === 0) return null;
    const isLive = (id: string): boolean => {
      const a = this.before.attemptById.get(id);
      return a !== undefined && live(a);
    };
    const liveIds = all.filter(isLive);
    const ended = all.filter((id) => !isLive(id));
    const pool = choice === 'right' && liveIds.length > 0 ? liveIds : choice === 'stale' && ended.length > 0 ? ended : all;
    const id = pool[pick % pool.length]!;
    const lease = this.ledger.assignments.get(id)!.lease;
    if (choice !== 'wrong') return { attemptId: id, lease };
    const other = all.map((x) => this.ledger.assignments.get(x)!.lease).find((l) => l !== lease);
    return { attemptId: id, lease: other ?? wrongLease(lease) };
  }

  /** What a report under `ref` must do: succeed, or fail with this code and change nothing. */
  private expectedReport(ref: LeaseRef): 'ok' | ErrorCode {
    const a = this.before.attemptById.get(ref.attemptId);
    if (!a) return 'ATTEMPT_NOT_FOUND';
    if (this.ledger.assignments.get(ref.attemptId)?.lease !== ref.lease) return 'STALE_LEASE';
    return live(a) && a.leaseExpiresAt >= this.now ? 'ok' : 'STALE_LEASE';
  }

  private async report(op: Extract<Op, { kind: 'progress' | 'complete' | 'fail' }>): Promise<boolean | typeof SKIP> {
    const ref = this.pickRef(op.pick, op.lease);
    if (!ref) return SKIP;
    const expected = this.expectedReport(ref);
    const call = (): Promise<unknown> => {
      if (op.kind === 'progress') return this.store.progress({ ...ref, progress: { at: this.now } });
      if (op.kind === 'complete') {
        const job = this.before.jobById.get(this.before.attemptById.get(ref.attemptId)?.jobId ?? '');
        const trace = job?.verify?.mode === 'trace' ? traceOf(op.result) : null;
        return this.store.complete({ ...ref, result: resultValue(op.result), ...(trace ? { trace } : {}) });
      }
      return this.store.fail({ ...ref, error: { code: 'HANDLER_ERROR', message: 'boom' }, retryable: op.retryable });
    };
    this.count(`${op.kind}.${op.lease}.${expected}`);
    if (expected !== 'ok') {
      await expectError(call(), [expected], `${op.kind} with a ${op.lease} lease`);
      return true;
    }
    const before = this.before;
    const prevAttempt = before.attemptById.get(ref.attemptId)!;
    const prevJob = before.jobById.get(prevAttempt.jobId)!;
    const out = await call();
    const next = await readSnapshot(this.store, this.now);
    const a = next.attemptById.get(ref.attemptId)!;
    const job = next.jobById.get(a.jobId)!;
    if (op.kind === 'progress') {
      ensure(a.state === 'running' && isDeepStrictEqual(a.progress, { at: this.now }) && a.leaseExpiresAt === this.now + job.heartbeatTimeoutMs, '7', () => `progress left attempt ${a.id} as ${JSON.stringify(a)}`);
      return false;
    }
    const settled = out as { job: Job };
    ensure(isDeepStrictEqual(settled.job, job), op.kind, () => `${op.kind} answered ${JSON.stringify(settled.job)}, the store holds ${JSON.stringify(job)}`);
    if (op.kind === 'complete') {
      this.completedNow = a.id;
      this.ledger.completed.set(a.id, resultValue(op.result));
      ensure(a.state === 'completed' || a.state === 'rejected', '2', () => `complete left attempt ${a.id} ${a.state}`);
      if (job.replicas === 1) {
        ensure(job.state === 'succeeded' && isDeepStrictEqual(job.result, resultValue(op.result)), '2', () => `complete under the current lease left job ${job.id} ${job.state} with ${JSON.stringify(job.result)}`);
      }
    } else {
      this.ledger.failed.add(a.id);
      ensure(a.state === 'failed' && a.error?.code === 'HANDLER_ERROR', '7', () => `fail left attempt ${a.id} as ${JSON.stringify(a)}`);
      // A replicated job is not ended by one replica's non-retryable error: another worker runs that replica.
      const exhausted = (!op.retryable && prevJob.replicas === 1) || prevJob.failures + 1 >= prevJob.maxAttempts;
      ensure(job.failures === prevJob.failures + 1, '7', () => `fail counted failures ${prevJob.failures} -> ${job.failures}`);
      if (exhausted) ensure(job.state === 'failed', '7', () => `job ${job.id} is ${job.state} after a fail with no retry left`);
      else if (prevJob.replicas === 1) ensure(job.state === 'queued' && job.runAt >= this.now, '7', () => `job ${job.id} is ${job.state} after a retryable fail with retries left`);
    }
    return false;
  }

  // ---- Sweeps ----

  private async expireAttempts(limit: number): Promise<void> {
    const before = this.before;
    const now = this.now;
    const out = await this.store.expireAttempts({ limit });
    for (const e of out.endedAttempts) {
      const a = before.attemptById.get(e.attemptId);
      ensure(a && live(a) && a.workerId === e.workerId, '7', () => `the sweep ended ${JSON.stringify(e)}, which was not live`);
      const due = e.reason === 'LEASE_LOST' ? a.leaseExpiresAt < now : a.timeoutAt <= now;
      ensure(due, '7', () => `the sweep ended attempt ${a.id} (${e.reason}) before it was due: ${JSON.stringify(a)} at ${now}`);
    }
    const next = await readSnapshot(this.store, now);
    const overdue = [...next.attemptById.values()].filter((a) => live(a) && (a.leaseExpiresAt < now || a.timeoutAt <= now));
    if (limit >= before.attemptById.size) {
      ensure(overdue.length === 0, '7', () => `live attempts past their lease or timeout after a full sweep: ${overdue.map((a) => a.id)}`);
    }
    for (const a of next.attemptById.values()) {
      if (a.state === 'lost') ensure(a.error?.code === 'LEASE_LOST', '7', () => `lost attempt ${a.id} with error ${JSON.stringify(a.error)}`);
    }
  }

  private async expireDeadlines(limit: number): Promise<void> {
    const before = this.before;
    const now = this.now;
    const due = before.jobs.filter((j) => (j.state === 'waiting' || j.state === 'queued') && j.deadline !== null && j.deadline <= now);
    await this.store.expireDeadlines({ limit });
    if (limit < due.length) return;
    const next = await readSnapshot(this.store, now);
    for (const j of due) {
      const cur = next.jobById.get(j.id)!;
      ensure(isTerminalJobState(cur.state), '7', () => `job ${j.id} passed its deadline unstarted but is ${cur.state} after the sweep`);
    }
  }

  // ---- The ledger ----

  private checkLedger(s: Snapshot): void {
    const L = this.ledger;
    // 1: every acknowledged job is there, as submitted.
    for (const [id, { spec, createdAt }] of L.jobs) {
      const job = s.jobById.get(id);
      ensure(job, '1', () => `acknowledged job ${id} is gone`);
      ensure(job.createdAt === createdAt, '1', () => `job ${id} createdAt changed`);
      this.expectSubmitted(job, spec);
    }
    ensure(s.jobs.length === L.jobs.size, '1', () => `the store holds ${s.jobs.length} jobs; ${L.jobs.size} were acknowledged`);
    // 4: one job per key, the one the first submit returned.
    for (const [key, id] of L.keys) {
      const holders = s.jobs.filter((j) => j.idempotencyKey === key);
      ensure(holders.length === 1 && holders[0]!.id === id, '4', () => `key ${key} is held by ${holders.map((j) => j.id)}, not ${id}`);
    }
    // 2 and 3: attempts come from claims; results and failures from reports under the current lease.
    for (const a of s.attemptById.values()) {
      const given = L.assignments.get(a.id);
      ensure(given && given.jobId === a.jobId && given.workerId === a.workerId && isDeepStrictEqual(given.gpuIds, a.gpuIds), '3', () => `attempt ${a.id} was never handed out as it is: ${JSON.stringify(a)}`);
      if (a.state === 'completed' || a.state === 'rejected') {
        ensure(L.completed.has(a.id), '3', () => `attempt ${a.id} is ${a.state} but no complete under its lease returned`);
        ensure(a.resultHash === resultHash(L.completed.get(a.id)!), '2', () => `attempt ${a.id} holds a result hash that is not its result's`);
      } else {
        ensure(!L.completed.has(a.id), '2', () => `attempt ${a.id} accepted a result but is ${a.state}`);
      }
      if (a.state === 'failed' && a.error?.code !== 'TIMEOUT') {
        ensure(L.failed.has(a.id), '3', () => `attempt ${a.id} failed (${JSON.stringify(a.error)}) but no fail under its lease returned`);
      }
    }
    // 2: a succeeded job's result is the result of one of its completed attempts.
    for (const job of s.jobs) {
      if (job.state !== 'succeeded') continue;
      const text = canonicalJson(job.result);
      const from = (s.attempts.get(job.id) ?? []).filter((a) => a.state === 'completed' && L.completed.has(a.id) && canonicalJson(L.completed.get(a.id)!) === text);
      ensure(from.length > 0, '2', () => `job ${job.id} succeeded with ${text}, which no completed attempt returned`);
    }
  }

  // ---- Liveness ----

  /** With fresh capable workers, heartbeats, completes and sweeps, every job ends. */
  async drainToEnd(): Promise<void> {
    const fresh: string[] = [];
    for (const zone of [...ZONES, null]) {
      for (let i = 0; i < 6; i++) {
        const id = `drain-${zone ?? 'any'}-${i}`;
        await this.upsert({
          id,
          name: id,
          labels: zone === null ? {} : { zone },
          cores: 64,
          memoryMb: 65_536,
          gpuIds: [0, 1, 2, 3],
          queues: { 'q.a': 8, 'q.b': 8 },
          keys: [...KEYS],
        });
        fresh.push(id);
      }
    }
    const workers = [...this.ledger.workerOrder, ...fresh];
    for (const w of this.ledger.workerOrder) if (this.ledger.draining.has(w)) await this.connection({ kind: 'drain', worker: this.ledger.workerOrder.indexOf(w), draining: false });
    const held = new Map<string, Assignment>();
    for (const a of this.before.attemptById.values()) if (live(a)) held.set(a.id, this.ledger.assignments.get(a.id)!);
    const result = (ref: { jobId: string }): Json => ({ drained: ref.jobId });
    const outcome = await drainToTerminal(this.store, this.ctx.clock, {
      workerIds: workers,
      place: this.place,
      held,
      result,
      onAssign: (a) => {
        this.ledger.assignments.set(a.attemptId, a);
        this.ledger.assignmentOrder.push(a.attemptId);
      },
      onComplete: (attemptId, jobId) => void this.ledger.completed.set(attemptId, result({ jobId })),
      afterRound: async (round) => void (await this.check(`drain round ${round}`, false, false)),
    });
    this.ledger.disconnected.clear();
    this.count('drain.rounds', outcome.rounds);
    for (const j of this.before.jobs) this.count(`end.${j.state}${j.replicas > 1 ? '.replicated' : ''}${j.solo ? '.solo' : ''}${j.verify ? `.${j.verify.mode}` : ''}`);
    for (const w of this.before.workers) if (w.reputation.invalid > 0) this.count(w.quarantined ? 'end.worker.quarantined' : 'end.worker.judged-invalid');
    ensure(outcome.open.length === 0, 'liveness', () => `after ${outcome.rounds} rounds these jobs never ended: ${outcome.open.map((j) => `${j.id} ${j.state} ${JSON.stringify(j)}`).join('; ')}`);
  }
}

function resultValue(n: number): Json {
  return { v: n };
}

/** The trace sent with result n on a trace-verified job: two close honest shapes, and none at all for result 2. */
function traceOf(n: number): Trace | null {
  if (n === 2) return null;
  const cpuPerSample = n === 0 ? 100 : 96;
  return { intervalMs: 100, samples: Array.from({ length: 5 }, (_, i) => ({ tMs: (i + 1) * 100, cpuMs: cpuPerSample * (i + 1), rssKb: 1000 })) };
}

function wrongLease(lease: string): string {
  const flipped = (lease[0] === '0' ? '1' : '0') + lease.slice(1);
  return flipped;
}

async function expectError(p: Promise<unknown>, codes: ErrorCode[], what: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (isGafferError(err) && codes.includes(err.code)) return;
    violated('3', `${what} threw ${err instanceof Error ? `${err.name} ${(err as { code?: string }).code ?? ''} ${err.message}` : String(err)}, expected ${codes.join(' or ')}`);
  }
  violated('3', `${what} was accepted, expected ${codes.join(' or ')}`);
}

// ---------------------------------------------------------------------------
// Replicated jobs on a fixed pool: failures and lost leases must not strand them
// ---------------------------------------------------------------------------

interface PoolScenario {
  storeSeed: number;
  replicas: number;
  quorumPick: number;
  /** Workers beyond `replicas` in the pool. */
  spare: number;
  jobs: number;
  /** Each acts on one live attempt: its worker completes it, fails it, or stops heartbeating it. */
  events: { kind: 'complete' | 'fail' | 'lose'; pick: number }[];
}

const poolScenarioArb: fc.Arbitrary<PoolScenario> = fc.record({
  storeSeed: fc.integer(),
  replicas: fc.integer({ min: 2, max: 3 }),
  quorumPick: fc.nat({ max: 2 }),
  spare: fc.integer({ min: 0, max: 1 }),
  jobs: fc.integer({ min: 1, max: 3 }),
  events: fc.array(fc.record({ kind: fc.constantFrom('complete' as const, 'fail' as const, 'lose' as const), pick: fc.nat() }), { minLength: 1, maxLength: 12 }),
});

const POOL_HEARTBEAT_MS = 1000;

/**
 * Liveness (invariant 1) on a pool that can run every job: as many workers as
 * replicas, or one more. Retries are plentiful and results always agree, so
 * once the workers behave every job must succeed; no worker is left out for
 * good because an attempt of it failed or was lost.
 */
async function runPoolScenario(sc: PoolScenario, open: OpenStore, place: PlaceFn, name: string): Promise<void> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const clock = new VirtualClock(START_MS);
  const store = await open({ clock, random: seededRandom(sc.storeSeed), name, defer: (fn) => void cleanups.push(fn), trust: {} });
  try {
    const pool = Array.from({ length: sc.replicas + sc.spare }, (_, i) => `p${i}`);
    for (const id of pool) {
      await store.upsertWorker({ spec: { id, name: id, labels: {}, cores: 8, memoryMb: 8192, gpuIds: [], queues: { 'q.a': sc.jobs }, keys: [] } });
    }
    const spec = normalizeJob({
      queue: 'q.a',
      replicas: sc.replicas,
      quorum: 1 + (sc.quorumPick % sc.replicas),
      maxAttempts: 50,
      heartbeatTimeoutMs: POOL_HEARTBEAT_MS,
      backoff: { baseMs: 0, maxMs: 0 },
    });
    await store.submit({ jobs: Array.from({ length: sc.jobs }, () => spec) });
    const result = (ref: { jobId: string }): Json => ({ ok: ref.jobId });
    const held = new Map<string, Assignment>();
    let prev = await readSnapshot(store, clock.now());
    for (const [i, ev] of sc.events.entries()) {
      for (const a of await store.claim({ workerIds: pool, place, maxJobs: 100 })) held.set(a.attemptId, a);
      const holding = [...held.values()];
      const a = holding[ev.pick % Math.max(1, holding.length)];
      if (a) {
        held.delete(a.attemptId);
        if (ev.kind === 'complete') await store.complete({ attemptId: a.attemptId, lease: a.lease, result: result(a) });
        else if (ev.kind === 'fail') await store.fail({ attemptId: a.attemptId, lease: a.lease, error: { code: 'HANDLER_ERROR', message: 'x' }, retryable: true });
        else await loseOne(store, clock, held);
      }
      const next = await readSnapshot(store, clock.now());
      try {
        checkSnapshot(next);
        checkTransitions(prev, next, false);
      } catch (err) {
        if (err instanceof Error) err.message = `at event ${i} ${JSON.stringify(ev)}: ${err.message}`;
        throw err;
      }
      prev = next;
      // Attempts ended by the store (another replica settled the job) are no longer the workers' to report.
      for (const id of held.keys()) if (!live(next.attemptById.get(id)!)) held.delete(id);
    }
    const out = await drainToTerminal(store, clock, { workerIds: pool, place, held, result, maxRounds: 50 });
    ensure(out.open.length === 0, 'liveness', () => `on a pool of ${pool.length} workers these jobs never ended: ${out.open.map((j) => `${j.id} ${j.state} want=${j.want}`).join('; ')}`);
    const end = await readSnapshot(store, clock.now());
    checkSnapshot(end);
    const unfinished = end.jobs.filter((j) => j.state !== 'succeeded');
    ensure(unfinished.length === 0, 'liveness', () => `with agreeing results and retries to spare, jobs ended ${unfinished.map((j) => `${j.state} ${JSON.stringify(j.error)}`)}`);
  } finally {
    await store.close();
    for (const fn of cleanups.reverse()) await fn();
  }
}

/** The attempt just taken out of `held` stops heartbeating; the others keep theirs alive until it is swept as lost. */
async function loseOne(store: Store, clock: VirtualClock, held: Map<string, Assignment>): Promise<void> {
  const beat = async (): Promise<void> => {
    const byWorker = new Map<string, LeaseRef[]>();
    for (const a of held.values()) byWorker.set(a.workerId, [...(byWorker.get(a.workerId) ?? []), { attemptId: a.attemptId, lease: a.lease }]);
    for (const [workerId, attempts] of byWorker) await store.heartbeat({ workerId, attempts });
  };
  await beat();
  clock.advance(POOL_HEARTBEAT_MS / 2);
  await beat();
  clock.advance(POOL_HEARTBEAT_MS / 2 + 1);
  await store.expireAttempts({ limit: 500 });
}

// ---------------------------------------------------------------------------
// Driving a store until every job has ended (liveness), shared with the crash test
// ---------------------------------------------------------------------------

export interface DrainOptions {
  /** Workers that heartbeat, claim and complete: they must be registered and able to run every job. */
  workerIds: readonly string[];
  place: PlaceFn;
  /** Live attempts whose leases the caller holds, by attempt id: they are completed too. */
  held?: Map<string, LeaseRef & { jobId: string }>;
  /** The result an attempt returns (make it equal across the replicas of a job, so they agree). */
  result: (ref: { jobId: string; attemptId: string }) => Json;
  onAssign?: (a: Assignment) => void;
  onComplete?: (attemptId: string, jobId: string) => void;
  afterRound?: (round: number) => Promise<void>;
  maxRounds?: number;
  /** How far the clock moves when nothing is due sooner. */
  stepMs?: number;
}

/**
 * Heartbeats, completes whatever it holds, sweeps, claims and completes, and
 * moves the clock, until every job has ended or the rounds run out. Returns the
 * jobs still open.
 */
export async function drainToTerminal(store: Store, clock: VirtualClock, o: DrainOptions): Promise<{ rounds: number; open: Job[] }> {
  const maxRounds = o.maxRounds ?? 200;
  let open: Job[] = [];
  for (let round = 0; round < maxRounds; round++) {
    for (const workerId of o.workerIds) await store.heartbeat({ workerId });
    if (round === 0) for (const ref of o.held?.values() ?? []) await completeOne(store, ref, o);
    await store.expireAttempts({ limit: 500 });
    await store.expireDeadlines({ limit: 500 });
    for (let i = 0; i < 50; i++) {
      const assigned = await store.claim({ workerIds: o.workerIds, place: o.place, maxJobs: 256 });
      if (assigned.length === 0) break;
      for (const a of assigned) {
        o.onAssign?.(a);
        await completeOne(store, a, o);
      }
    }
    await o.afterRound?.(round);
    open = await openJobs(store);
    if (open.length === 0) return { rounds: round + 1, open };
    const now = clock.now();
    const next = await store.nextRunAt();
    clock.advance(next !== null && next > now ? Math.min(next - now, o.stepMs ?? 1000) : (o.stepMs ?? 1000));
  }
  return { rounds: maxRounds, open };
}

/** Completes an attempt; a lease that lapsed or an attempt that ended meanwhile is fine. */
async function completeOne(store: Store, ref: LeaseRef & { jobId: string }, o: DrainOptions): Promise<void> {
  try {
    await store.complete({ attemptId: ref.attemptId, lease: ref.lease, result: o.result(ref) });
    o.onComplete?.(ref.attemptId, ref.jobId);
  } catch (err) {
    if (!isGafferError(err, 'STALE_LEASE')) throw err;
  }
}

async function allJobs(store: Store): Promise<Job[]> {
  const out: Job[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < LIST_PAGES_MAX; page++) {
    const res = await store.listJobs(cursor === undefined ? { limit: LIST_PAGE } : { limit: LIST_PAGE, cursor });
    out.push(...res.jobs);
    if (res.nextCursor === null) break;
    cursor = res.nextCursor;
  }
  return out;
}

async function openJobs(store: Store): Promise<Job[]> {
  return (await allJobs(store)).filter((j) => !isTerminalJobState(j.state));
}
