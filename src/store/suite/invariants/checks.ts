// The invariants one reading of the store shows on its own (checkSnapshot),
// and those between two readings (checkTransitions). No ledger of what the
// test was told is needed, so the crash test (sqlite/crash.test.ts) uses them
// on a store it reopens after a kill.
import { isDeepStrictEqual } from 'node:util';
import { isGafferError, type ErrorCode } from '../../../types/errors.ts';
import { LIMITS, TRUST_DEFAULTS } from '../../../types/limits.ts';
import type { Attempt, Job, Worker } from '../../../types/model.ts';
import {
  ATTEMPT_STATES,
  canMoveAttempt,
  canMoveJob,
  isLiveAttemptState,
  isTerminalJobState,
  JOB_STATES,
} from '../../../types/states.ts';
import { resultHash } from '../../rules.ts';
import type { QueueCounts, Store } from '../../store.ts';

/** An invariant that did not hold, with the number of DESIGN.md's invariant or the check's name. */
export class InvariantViolation extends Error {
  readonly invariant: string;
  constructor(invariant: string, message: string) {
    super(`[${invariant}] ${message}`);
    this.name = 'InvariantViolation';
    this.invariant = invariant;
  }
}

export function violated(invariant: string, message: string): never {
  throw new InvariantViolation(invariant, message);
}

export function ensure(cond: unknown, invariant: string, message: () => string): asserts cond {
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

export const LIST_PAGE = 200;
export const LIST_PAGES_MAX = 10_000;

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

export const live = (a: Attempt): boolean => isLiveAttemptState(a.state);

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
  ensure(job.lost >= 0 && job.lost <= LIMITS.jobLostAttemptsMax, '7', () => `job ${id} was lost by ${job.lost} workers (at most ${LIMITS.jobLostAttemptsMax})`);
  ensure((job.state === 'succeeded') === (job.result !== null), '2', () => `job ${id} is ${job.state} with result ${JSON.stringify(job.result)}`);
  const liveOriginals = liveAttempts.filter((a) => a.backupOf === null).length;
  ensure(job.replicas > 1 || liveOriginals <= 1, '7', () => `job ${id} (1 replica) has ${liveOriginals} live attempts besides backups`);
  ensure(job.quorum >= 1 && job.quorum <= job.replicas, '7', () => `job ${id} has quorum ${job.quorum} of ${job.replicas}`);
  for (const a of attempts) checkAttempt(job, a);
  checkReplicas(job, attempts);
  checkBackups(job, attempts);
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

/**
 * 2, per replica slot: a backup backs up an attempt of its own job that is not
 * a backup, no attempt has two, and of a backup and the attempt it backs up at
 * most one brought a result (the first won, the other was revoked).
 */
function checkBackups(job: Job, attempts: Attempt[]): void {
  const byId = new Map(attempts.map((a) => [a.id, a]));
  const backedUp = new Set<string>();
  for (const b of attempts) {
    ensure((b.backupOf === null) === (b.backupReason === null), '2', () => `attempt ${b.id} is a backup of ${b.backupOf} for reason ${b.backupReason}`);
    if (b.backupOf === null) continue;
    const o = byId.get(b.backupOf);
    ensure(o !== undefined && o.backupOf === null, '2', () => `backup ${b.id} of job ${job.id} backs up ${b.backupOf}, not an attempt of its job that is no backup`);
    ensure(!backedUp.has(o.id), '2', () => `attempt ${o.id} of job ${job.id} has two backups`);
    backedUp.add(o.id);
    const voted = (a: Attempt): boolean => a.state === 'completed' || a.state === 'rejected';
    ensure(!(voted(b) && voted(o)), '2', () => `job ${job.id}: both attempt ${o.id} and its backup ${b.id} brought a result`);
  }
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
  // Not accepted (yet): no result group leads decisively (the quorum, and the margin over the
  // runner-up with every pending attempt counted for it), or it would have been accepted. A vote
  // won by workers on probation alone may be held for probationMarginBonus more while others can vote.
  // (Trace verification waits for every replica before it counts, so a job may end another way meanwhile.)
  // A job that ended another way (cancelled, say) may keep a vote that was not yet decisive when it ended.
  if (job.verify?.mode === 'trace' || isTerminalJobState(job.state)) return;
  const groups = new Map<string, number>();
  for (const a of completed) groups.set(a.resultHash ?? '', (groups.get(a.resultHash ?? '') ?? 0) + 1);
  const [top, second] = [...groups].sort((a, b) => b[1] - a[1]);
  if (top === undefined) return;
  const lead = top[1] - (second?.[1] ?? 0) - job.live - job.want;
  ensure(
    top[1] < job.quorum || lead < job.margin + TRUST_DEFAULTS.probationMarginBonus,
    '2',
    () => `job ${job.id} is ${job.state} though ${top[1]} completed attempts agree on ${top[0].slice(0, 8)}, ${lead} ahead (quorum ${job.quorum}, margin ${job.margin})`,
  );
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
  for (const c of s.counts) {
    const fillers = s.jobs.filter((j) => j.queue === c.queue && j.filler && j.state === 'queued').length;
    ensure(c.fillerQueued === fillers, 'counts', () => `queueCounts ${c.queue}.fillerQueued = ${c.fillerQueued}, jobs say ${fillers}`);
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

/** Awaits `p`, which must fail with one of `codes`. */
export async function expectError(p: Promise<unknown>, codes: ErrorCode[], what: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (isGafferError(err) && codes.includes(err.code)) return;
    violated('3', `${what} threw ${err instanceof Error ? `${err.name} ${(err as { code?: string }).code ?? ''} ${err.message}` : String(err)}, expected ${codes.join(' or ')}`);
  }
  violated('3', `${what} was accepted, expected ${codes.join(' or ')}`);
}
