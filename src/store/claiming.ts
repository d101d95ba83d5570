// The backend-neutral parts of a claim: what a worker has free, which
// candidates a claim reads, how a candidate row becomes a Candidate, and the
// checks a store makes on the place function's answer before it writes
// anything. Each backend owns the SQL that reads and writes; this module owns
// what the rows mean, once.
import { assert } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';
import type { Assignment, Candidate, Placement, WorkerCapacity } from '../types/model.ts';
import type { Row } from './rows.ts';
import type { ClaimParams } from './store.ts';

export { SHARE_CHARS, SHARE_FROM_CHAR } from '../types/shares.ts';

/** Below every priority a job can have: a read with it leaves no job out. */
export const PRIORITY_FLOOR = LIMITS.priorityMin - 1;

/** A worker's operator: the one its token names, or, without one, the worker itself. */
export function operatorKey(workerId: string, operator: unknown): string {
  return operator === null || operator === undefined ? `worker:${workerId}` : `operator:${String(operator)}`;
}

/** The attempt columns capacityOf reads for each live attempt. */
export const LIVE_ATTEMPT_COLUMNS = 'worker_id, queue, cores, memory_mb, gpu_ids';

/** The worker_checks columns a claim reads: worker_id, queue, state, speed_ms. */
export const CHECK_COLUMNS = 'worker_id, queue, state, speed_ms';

/** A worker's free capacity, from its row, the rows of its live attempts and of its reliability checks. */
export function capacityOf(w: Row, live: readonly Row[], checks: readonly Row[] = []): WorkerCapacity {
  const queues = JSON.parse(String(w.queues)) as Record<string, number>;
  const freeSlots: Record<string, number> = { ...queues };
  let cores = Number(w.cores);
  let memory = Number(w.memory_mb);
  const held = new Set<number>();
  for (const a of live) {
    const q = String(a.queue);
    freeSlots[q] = (freeSlots[q] ?? 0) - 1;
    cores -= Number(a.cores);
    memory -= Number(a.memory_mb);
    for (const g of JSON.parse(String(a.gpu_ids)) as number[]) held.add(g);
  }
  const gpuIds = JSON.parse(String(w.gpu_ids)) as number[];
  const declared = Object.values(queues).reduce((a, b) => a + b, 0);
  // Slow start: a worker holds at most its credit, however many slots it declares (rows without one: no bound).
  const credit = w.credit === undefined || w.credit === null ? declared : Number(w.credit);
  return {
    workerId: String(w.id),
    labels: JSON.parse(String(w.labels ?? '{}')),
    keys: new Set(JSON.parse(String(w.keys ?? '[]')) as string[]),
    freeSlots,
    totalSlots: Math.min(declared, credit),
    usedSlots: live.length,
    freeCores: cores,
    freeMemoryMb: memory,
    totalCores: Number(w.cores),
    totalMemoryMb: Number(w.memory_mb),
    freeGpuIds: gpuIds.filter((g) => !held.has(g)).sort((a, b) => a - b),
    blockedQueues: checks.filter((c) => c.state !== 'passed').map((c) => String(c.queue)),
    operator: operatorKey(String(w.id), w.operator),
    speedMs: Object.fromEntries(
      checks.filter((c) => c.state === 'passed' && c.speed_ms !== null && c.speed_ms !== undefined).map((c) => [String(c.queue), Number(c.speed_ms)]),
    ),
  };
}

/**
 * False when a worker holds more than it now declares (it reconnected with fewer
 * slots, cores or memory than its running attempts use). Such a worker takes
 * nothing new until enough of them end; the scheduler never sees it over-committed.
 */
export function withinCapacity(cap: WorkerCapacity): boolean {
  return (
    cap.usedSlots <= cap.totalSlots &&
    cap.freeCores >= 0 &&
    cap.freeMemoryMb >= 0 &&
    Object.values(cap.freeSlots).every((n) => n >= 0)
  );
}

/**
 * Capacities of the given workers (rows of eligible workers; live attempt and
 * check rows keyed by worker_id), over-committed ones left out.
 */
export function capacities(workers: readonly Row[], live: readonly Row[], checks: readonly Row[] = []): WorkerCapacity[] {
  const attempts = groupByWorker(live);
  const checksOf = groupByWorker(checks);
  return workers
    .map((w) => capacityOf(w, attempts.get(String(w.id)) ?? [], checksOf.get(String(w.id)) ?? []))
    .filter(withinCapacity);
}

function groupByWorker(rows: readonly Row[]): Map<string, Row[]> {
  const byWorker = new Map<string, Row[]>();
  for (const r of rows) {
    const id = String(r.worker_id);
    const list = byWorker.get(id);
    if (list) list.push(r);
    else byWorker.set(id, [r]);
  }
  return byWorker;
}

/**
 * Candidates read per queue and page for a claim of `budget` placements: 4 per
 * placement within [claimCandidatesMinPerPage, claimCandidatesPerPage], and the
 * pages to read so that every claim scans as deep as claimScanMaxPages full
 * pages. Reading 128 rows to place one job was most of a claim's cost.
 */
export function candidatePaging(budget: number): { perPage: number; maxPages: number } {
  const perPage = Math.min(LIMITS.claimCandidatesPerPage, Math.max(LIMITS.claimCandidatesMinPerPage, 4 * budget));
  return { perPage, maxPages: Math.ceil((LIMITS.claimScanMaxPages * LIMITS.claimCandidatesPerPage) / perPage) };
}

/** What a claim over these workers may read and hand out. */
export interface ClaimScope {
  /** Most placements: maxJobs, the workers' free slots and the batch bound, whichever is least. */
  budget: number;
  /** Queues in which some worker has a free slot. */
  queues: string[];
  /** No candidate needing more than the roomiest worker has free can be placed: the SQL filters on these. */
  maxCores: number;
  maxMemoryMb: number;
  maxGpus: number;
}

/** `paused`: queues an operator paused (the queues table); a claim reads nothing of them. */
export function claimScope(params: ClaimParams, workers: readonly WorkerCapacity[], paused: ReadonlySet<string> = new Set()): ClaimScope {
  const free = workers.reduce((n, w) => n + Object.values(w.freeSlots).reduce((a, b) => a + b, 0), 0);
  return {
    budget: Math.min(params.maxJobs, free, LIMITS.claimBatchMaxJobs),
    queues: [...new Set(workers.flatMap((w) => Object.keys(w.freeSlots).filter((q) => w.freeSlots[q]! > 0 && !paused.has(q))))],
    maxCores: Math.max(...workers.map((w) => w.freeCores)),
    maxMemoryMb: Math.max(...workers.map((w) => w.freeMemoryMb)),
    maxGpus: Math.max(...workers.map((w) => w.freeGpuIds.length)),
  };
}

/**
 * What a claim's candidate reads leave out because no worker of the claim with
 * a free slot could take it: label sets no such worker has, and jobs that
 * require an affinity key none of them holds. Without it, enough older jobs
 * that fit nowhere (a label only an offline box has) fill every page a claim
 * reads, and a job behind them that fits is never considered.
 */
export interface CandidateFilter {
  /** req_labels texts that no free worker satisfies (at most claimExcludedLabelSetsMax). */
  excludedLabels: string[];
  /** Every affinity key the free workers hold; null when there are more than claimHeldKeysFilterMax (no key filter then). */
  heldKeys: string[] | null;
  /** Only jobs of these shares (a job id's last two characters); null: every share. */
  share: readonly string[] | null;
  /** Only jobs of a priority above this; null: any priority. */
  priorityAbove: number | null;
}

/** Workers with a free slot: only they can take anything in this claim. */
function freeWorkers(workers: readonly WorkerCapacity[]): WorkerCapacity[] {
  return workers.filter((w) => w.usedSlots < w.totalSlots && Object.values(w.freeSlots).some((n) => n > 0));
}

export function candidateFilter(workers: readonly WorkerCapacity[]): CandidateFilter {
  const held = new Set<string>();
  for (const w of freeWorkers(workers)) {
    for (const k of w.keys) held.add(k);
    if (held.size > LIMITS.claimHeldKeysFilterMax) return { excludedLabels: [], heldKeys: null, share: null, priorityAbove: null };
  }
  return { excludedLabels: [], heldKeys: [...held].sort(), share: null, priorityAbove: null };
}

/**
 * Adds to `filter` the label sets of `rows` that no free worker satisfies.
 * True when it added one: the claim then reads its pages again from the first,
 * as the rows it skipped change every later page.
 */
export function excludeUnplaceableLabels(filter: CandidateFilter, rows: readonly Row[], workers: readonly WorkerCapacity[]): boolean {
  const free = freeWorkers(workers);
  let added = false;
  const known = new Set(filter.excludedLabels);
  for (const r of rows) {
    const text = String(r.req_labels);
    if (known.has(text) || filter.excludedLabels.length >= LIMITS.claimExcludedLabelSetsMax) continue;
    known.add(text);
    const labels = JSON.parse(text) as Record<string, string>;
    const entries = Object.entries(labels);
    if (entries.length === 0) continue;
    if (free.some((w) => entries.every(([k, v]) => Object.hasOwn(w.labels, k) && w.labels[k] === v))) continue;
    filter.excludedLabels.push(text);
    added = true;
  }
  return added;
}

/**
 * A candidate from its row (engine/columns.ts, CANDIDATE_COLUMNS). `excluded` are the workers
 * holding a live attempt or a result of this job: replicas never share a worker
 * and a worker votes once. One whose attempt failed or was lost may run it
 * again, or a pool of `replicas` workers would strand the job after a single
 * lost lease. Backends read them only for replicated jobs.
 */
export function candidateFromRow(r: Row, excluded: readonly string[]): Candidate {
  return {
    jobId: String(r.id),
    queue: String(r.queue),
    priority: Number(r.priority),
    deadline: Number(r.has_deadline) === 1 ? Number(r.deadline_at) : null,
    readyAt: Number(r.run_at),
    createdAt: Number(r.created_at),
    requires: {
      cores: Number(r.req_cores),
      memoryMb: Number(r.req_memory_mb),
      gpus: Number(r.req_gpus),
      labels: JSON.parse(String(r.req_labels)),
    },
    affinity:
      r.affinity_key === null || r.affinity_key === undefined
        ? null
        : { key: String(r.affinity_key), mode: r.affinity_mode as 'prefer' | 'require' },
    want: Number(r.want),
    excludedWorkerIds: excluded,
    pinnedWorkerId: r.pinned_worker_id === null || r.pinned_worker_id === undefined ? null : String(r.pinned_worker_id),
    spreadOperators: r.distinct_by === 'operator' && Number(r.replicas) > 1,
    ...(isBackup(r) ? { backup: true as const } : {}),
  };
}

/**
 * Whether a candidate's workers so far matter: a backup never runs where the
 * attempt it backs up runs, replicas never share a worker,
 * a verified job is not rerun where its result was rejected, and no worker
 * verifies its own result. Backends then read the workers of this round's
 * attempts in EXCLUDING_ATTEMPT_STATES (seq above round_seq), plus the
 * worker of the attempt a verification job checks.
 */
export function needsExclusions(r: Row): boolean {
  return isBackup(r) || Number(r.replicas) > 1 || (r.verify !== null && r.verify !== undefined) || (r.verifies_attempt_id !== null && r.verifies_attempt_id !== undefined);
}

/** A job whose next attempt is a speculative backup (engine/speculate.ts): it goes to another worker than the attempt it backs up. */
export function isBackup(r: Row): boolean {
  return r.backup_of !== null && r.backup_of !== undefined;
}

/** The attempt states whose worker may not take another replica of the same job. */
export const EXCLUDING_ATTEMPT_STATES = ['leased', 'running', 'completed', 'rejected'] as const;

/** The store does not trust the place function: it re-checks every bound it can before writing. */
export function checkPlacements(
  placements: readonly Placement[],
  workers: readonly WorkerCapacity[],
  maxJobs: number,
  candidates: ReadonlyMap<string, Candidate>,
): void {
  assert(placements.length <= maxJobs, 'a claim hands out no more than asked');
  const byId = new Map(workers.map((w) => [w.workerId, { ...w, freeSlots: { ...w.freeSlots }, gpus: new Set(w.freeGpuIds) }]));
  const pairs = new Set<string>();
  for (const p of placements) {
    const w = byId.get(p.workerId);
    assert(w, 'placement names a worker in the claim');
    assert(!pairs.has(`${p.jobId}/${p.workerId}`), 'replicas of one job go to distinct workers');
    const c = candidates.get(p.jobId);
    assert(c, 'placement names a candidate the claim read');
    assert(c.pinnedWorkerId === null || c.pinnedWorkerId === p.workerId, 'a challenge job goes only to its worker');
    assert(c.pinnedWorkerId === p.workerId || !w.blockedQueues.includes(c.queue), 'a worker gets no real work of a queue whose check it has not passed');
    pairs.add(`${p.jobId}/${p.workerId}`);
    for (const g of p.gpuIds) {
      assert(w.gpus.has(g), 'a GPU id is handed to one attempt at a time');
      w.gpus.delete(g);
    }
  }
}

/** Invariant 5, checked against the database after leasing: a worker never holds more than it declared. */
export function assertWithinDeclared(w: Row, live: readonly Row[]): void {
  const cap = capacityOf(w, live);
  assert(cap.freeCores >= 0 && cap.freeMemoryMb >= 0, 'a worker never holds more cores or memory than it declared');
  assert(Object.values(cap.freeSlots).every((n) => n >= 0), 'a worker never holds more attempts than its slots');
  const gpus = live.flatMap((a) => JSON.parse(String(a.gpu_ids)) as number[]);
  assert(new Set(gpus).size === gpus.length, 'a GPU is held by one attempt at a time');
}

/**
 * What a worker is handed for one placement, from the job's row (as the
 * claim's UPDATE ... RETURNING gives it): ids, lease, payload, resources, limits.
 */
export function assignmentOf(
  job: Row,
  p: Placement,
  lease: { attemptId: string; lease: string; attempt: number },
  now: number,
): Assignment {
  assert(p.gpuIds.length === Number(job.req_gpus), 'an attempt gets exactly the GPUs its job requires');
  const heartbeatTimeoutMs = Number(job.heartbeat_timeout_ms);
  return {
    attemptId: lease.attemptId,
    lease: lease.lease,
    jobId: p.jobId,
    workerId: p.workerId,
    queue: String(job.queue),
    payload: JSON.parse(String(job.payload)),
    gpuIds: p.gpuIds,
    cores: Number(job.req_cores),
    memoryMb: Number(job.req_memory_mb),
    attempt: lease.attempt,
    timeoutMs: Number(job.timeout_ms),
    heartbeatTimeoutMs,
    leaseExpiresAt: now + heartbeatTimeoutMs,
    deadline: Number(job.has_deadline) === 1 ? Number(job.deadline_at) : null,
    labels: JSON.parse(String(job.labels)),
    ...(job.run_at !== undefined && job.run_at !== null ? { readyAt: Number(job.run_at) } : {}),
  };
}
