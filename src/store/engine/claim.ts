// A claim: lease attempts to workers as the place function decides, in one
// transaction. The engine reads what the workers have free, leaves out the
// queues an operator paused (queues.ts), reads candidates page by page, asks
// the place function, re-checks its answer, decides adaptive replication, and
// writes the leases. How a page of candidates is read and how leases are
// written are the backend's (ClaimQueries), each with a general form here.
import { assert } from '../../types/errors.ts';
import { randomToken } from '../../types/ids.ts';
import { LIMITS } from '../../types/limits.ts';
import type { Assignment, Candidate, Placement, Reputation, WorkerCapacity } from '../../types/model.ts';
import {
  assertWithinDeclared,
  candidateFilter,
  candidateFromRow,
  candidatePaging,
  capacities,
  checkPlacements,
  claimScope,
  excludeUnplaceableLabels,
  isBackup,
  LIVE_ATTEMPT_COLUMNS,
  needsExclusions,
  type CandidateFilter,
  type ClaimScope,
} from '../claiming.ts';
import { reputationFromRow, type Row } from '../rows.ts';
import { soloDecision } from '../rules.ts';
import type { ClaimParams, ClaimReport } from '../store.ts';
import { SHARE_COUNT, shareOf } from '../../types/shares.ts';
import { J, LIVE, type Context, type Tx } from './sql.ts';
import { excludedWorkers, isGuarded, startsGuarded } from './exclusions.ts';
import { CANDIDATE_COLUMNS } from './columns.ts';
import { pausedAmong } from './queues.ts';
import { onProbation, refreshCredit } from './credit.ts';
import { withParentResults } from './pipelines.ts';
import { measureSpeeds, recordBackups } from './speculate.ts';

/** One page of candidates for every queue of the scope; `more` when some queue's priority page was full. */
export type CandidatePage = (tx: Tx, scope: ClaimScope, filter: CandidateFilter, now: number, page: number, perPage: number) => Promise<{ rows: Row[]; more: boolean }>;

/** The leases of a claim, decided: placements kept, and per job what the lease records. */
export interface LeasePlan {
  kept: Placement[];
  /** Jobs a trusted worker runs alone (adaptive replication). */
  solo: Set<string>;
  /** Adaptive jobs whose round was decided by this claim. */
  decided: Set<string>;
  /** Workers whose count of solo runs since their last spot check changed, with the new count. */
  soloSinceCheck: Map<string, number>;
  /** Per placement: its attempt id, its lease, and its number among its job's placements in this claim. */
  made: { attemptId: string; lease: string; k: number }[];
}

/** Writes a claim's leases: moves the jobs to running and inserts the attempts; returns the assignments in `kept` order. */
export type WriteLeases = (tx: Tx, plan: LeasePlan, now: number) => Promise<Assignment[]>;

export interface ClaimQueries {
  candidatePage: CandidatePage;
  writeLeases: WriteLeases;
}

export async function claim(c: Context, tx: Tx, params: ClaimParams, q: ClaimQueries): Promise<Assignment[]> {
  const now = c.clock.now();
  const { workers, rows: workerRows, live } = await readCapacities(c, tx, params.workerIds, now);
  if (params.report) params.report.unusable = unusableOf(params.workerIds, workers);
  if (workers.length === 0) return [];
  const { placements, candidates, rows } = await plan(c, tx, params, workers, [...workerRows.values()], now, q.candidatePage);
  checkPlacements(placements, workers, params.maxJobs, candidates);
  if (params.report) fillReport(params.report, params.share, placements, candidates);
  if (placements.length === 0) return [];
  const leases = decideLeases(c, placements, rows, workerRows);
  const assignments = await q.writeLeases(tx, leases, now);
  assert(assignments.length === leases.kept.length, 'every kept placement gets its attempt');
  await recordBackups(tx, leases, rows);
  assertLeasedWithinCapacity(assignments, workerRows, live);
  return withParentResults(c, tx, assignments, rows);
}

/**
 * What each eligible worker has free (from its live attempts, the revoked ones
 * still stopping on it, and its reliability checks), its row locked (in id order) until the claim commits;
 * with the rows, whose reputations adaptive replication reads.
 */
async function readCapacities(c: Context, tx: Tx, workerIds: readonly string[], now: number): Promise<{ workers: WorkerCapacity[]; rows: Map<string, Row>; live: Row[] }> {
  const rows = await tx.all(
    `SELECT * FROM workers WHERE id ${c.d.inList('$1')}
       AND connected = 1 AND draining = 0 AND quarantined = 0 AND last_seen_at >= $2
     ORDER BY id${c.d.forUpdate}`,
    [[...new Set(workerIds)], now - c.offlineAfterMs],
  );
  if (rows.length === 0) return { workers: [], rows: new Map(), live: [] };
  await refreshCredit(c, tx, rows, now);
  const ids = rows.map((w) => String(w.id));
  // Live attempts and reliability checks in one round trip: `kind` tells them apart.
  const { d } = c;
  const both = await tx.all(
    `SELECT 'live' AS kind, ${LIVE_ATTEMPT_COLUMNS}, ${d.nullOf('text')} AS state, ${d.nullOf('bigint')} AS speed_ms
       FROM attempts WHERE worker_id ${d.inList('$1')} AND state IN ${LIVE}
     UNION ALL
     SELECT 'live', ${LIVE_ATTEMPT_COLUMNS}, ${d.nullOf('text')}, ${d.nullOf('bigint')}
       FROM attempts WHERE worker_id ${d.inList('$1')} AND held_until IS NOT NULL AND held_until >= $2
     UNION ALL
     SELECT 'check', worker_id, queue, ${d.nullOf('int')}, ${d.nullOf('bigint')}, ${d.nullOf('text')}, state, speed_ms
       FROM worker_checks WHERE worker_id ${d.inList('$1')}`,
    [ids, now],
  );
  const live = both.filter((r) => r.kind === 'live');
  const checks = both.filter((r) => r.kind === 'check');
  return { workers: capacities(rows, live, checks).map(withoutPausedQueues(rows)), rows: new Map(rows.map((r) => [String(r.id), r])), live };
}

/**
 * Reads candidates page by page until the workers are full or the pages run
 * out; label sets no free worker has are learnt on the way and left out of the
 * reads that follow (from the first page again).
 */
async function plan(
  c: Context,
  tx: Tx,
  params: ClaimParams,
  workers: WorkerCapacity[],
  claimWorkers: readonly Row[],
  now: number,
  candidatePage: CandidatePage,
): Promise<{ placements: Placement[]; candidates: Map<string, Candidate>; rows: Map<string, Row> }> {
  const { scope, filter } = await readScope(c, tx, params, workers);
  if (scope.queues.length === 0 || scope.budget === 0) return { placements: [], candidates: new Map(), rows: new Map() };
  const paging = candidatePaging(scope.budget);
  const seen = new Map<string, Candidate>();
  let probation: Map<string, number> | null = null;
  const boundedJoins = new Set<string>();
  const seenRows = new Map<string, Row>();
  let placements: Placement[] = [];
  let rereads = 0;
  for (let page = 0; page < paging.maxPages; page++) {
    const read = await readPage(candidatePage, tx, scope, filter, now, page, paging.perPage);
    if (read === null) {
      // Nothing of its own share: every share, from the first page.
      filter.share = null;
      page = -1;
      continue;
    }
    const { rows, more } = read;
    const fresh = rows.filter((r) => !seenRows.has(String(r.id)) && seenRows.set(String(r.id), r));
    // Probation is read only once a replicated or verified job is among the candidates.
    if (probation === null && fresh.some(isGuarded)) probation = await onProbation(c, tx, claimWorkers);
    const { excluded, bounded } = await excludedWorkers(c, tx, fresh.filter(needsExclusions), claimWorkers, probation ?? NO_PROBATION, now);
    for (const id of bounded) boundedJoins.add(id);
    for (const r of fresh) seen.set(String(r.id), candidateFromRow(r, excluded.get(String(r.id)) ?? []));
    if (seen.size === 0) return { placements: [], candidates: seen, rows: seenRows };
    if (fresh.some(isBackup)) await measureSpeeds(c, tx, workers, seen.values());
    const placed = params.place({ now, workers, candidates: [...seen.values()], maxPlacements: scope.budget });
    placements = withinProbation(c, placed, seenRows, probation ?? NO_PROBATION, boundedJoins);
    if (placements.length >= scope.budget) break;
    if (!more || page === paging.maxPages - 1) {
      // Its own share has nothing more for these workers: the other shares, from the first page.
      if (filter.share === null) break;
      filter.share = null;
      page = -1;
      continue;
    }
    if (rereads < LIMITS.claimRereadsMax && excludeUnplaceableLabels(filter, fresh, workers)) {
      rereads++;
      page = -1;
    }
  }
  return { placements, candidates: seen, rows: seenRows };
}

/**
 * One page of candidates. With a share, the first page also brings the jobs
 * of other shares above the best priority of its own (so a share never holds
 * back more urgent work); null when its own share has none.
 */
async function readPage(
  candidatePage: CandidatePage,
  tx: Tx,
  scope: ClaimScope,
  filter: CandidateFilter,
  now: number,
  page: number,
  perPage: number,
): Promise<{ rows: Row[]; more: boolean } | null> {
  const out = await candidatePage(tx, scope, filter, now, page, perPage);
  if (page > 0 || filter.share === null) return out;
  if (out.rows.length === 0) return null;
  const best = Math.max(...out.rows.map((r) => Number(r.priority)));
  const above = await candidatePage(tx, scope, { ...filter, share: null, priorityAbove: best }, now, 0, perPage);
  return { rows: [...out.rows, ...above.rows], more: out.more };
}

/** What the claim's candidate reads cover: its workers' queues (less the paused ones) and sizes, widened by readFor, and its share. */
async function readScope(c: Context, tx: Tx, params: ClaimParams, workers: readonly WorkerCapacity[]): Promise<{ scope: ClaimScope; filter: CandidateFilter }> {
  const paused = await pausedAmong(c, tx, [...new Set([...workers.flatMap((w) => Object.keys(w.freeSlots)), ...(params.readFor?.queues ?? [])])]);
  const scope = widened(claimScope(params, workers, paused), params.readFor, paused);
  const filter = candidateFilter(workers);
  filter.share = ownShare(params.share);
  const keys = params.readFor?.keys;
  if (keys !== undefined) filter.heldKeys = keys === null || filter.heldKeys === null ? null : [...new Set([...filter.heldKeys, ...keys])].sort();
  return { scope, filter };
}

/** The workers of the claim with no usable free slot in the store's view. */
function unusableOf(ids: readonly string[], workers: readonly WorkerCapacity[]): string[] {
  const usable = new Set(workers.filter((w) => w.usedSlots < w.totalSlots && Object.values(w.freeSlots).some((n) => n > 0)).map((w) => w.workerId));
  return [...new Set(ids)].filter((id) => !usable.has(id));
}

/** The scope's reads widened to what any worker the coordinator may claim for could take (ClaimParams.readFor); paused queues stay out. */
function widened(scope: ClaimScope, readFor: ClaimParams['readFor'], paused: ReadonlySet<string>): ClaimScope {
  if (readFor === undefined || scope.budget === 0) return scope;
  return {
    ...scope,
    queues: [...new Set([...scope.queues, ...readFor.queues.filter((q) => !paused.has(q))])],
    maxCores: Math.max(scope.maxCores, readFor.maxCores),
    maxMemoryMb: Math.max(scope.maxMemoryMb, readFor.maxMemoryMb),
    maxGpus: Math.max(scope.maxGpus, readFor.maxGpus),
  };
}

/** The shares a claim reads first: null when it has none or all of them. */
function ownShare(share: readonly string[] | null | undefined): string[] | null {
  if (share === undefined || share === null || share.length === 0 || share.length >= SHARE_COUNT) return null;
  return [...share];
}

/** What the claim saw besides its placements (ClaimReport). */
function fillReport(report: ClaimReport, share: ClaimParams['share'], placements: readonly Placement[], candidates: ReadonlyMap<string, Candidate>): void {
  const placed = new Set(placements.map((p) => p.jobId));
  const unplaced = [...candidates.values()].filter((c) => !placed.has(c.jobId));
  report.unplaced = unplaced.length;
  report.unplacedCandidates = unplaced.slice(0, LIMITS.claimReportCandidatesMax);
  const own = ownShare(share);
  const mine = own === null ? null : new Set(own);
  report.outsideShare = mine === null ? 0 : placements.filter((p) => !mine.has(shareOf(p.jobId))).length;
}

/** A worker's queues an operator paused on it (paused_queues) have no free slot in a claim. */
function withoutPausedQueues(rows: readonly Row[]): (w: WorkerCapacity) => WorkerCapacity {
  const pausedOf = new Map(rows.map((r) => [String(r.id), JSON.parse(String(r.paused_queues ?? '[]')) as string[]]));
  return (w) => {
    const paused = pausedOf.get(w.workerId) ?? [];
    if (paused.length === 0) return w;
    const freeSlots = { ...w.freeSlots };
    for (const q of paused) if (q in freeSlots) freeSlots[q] = Math.min(0, freeSlots[q]!);
    return { ...w, freeSlots };
  };
}

const NO_PROBATION: ReadonlyMap<string, number> = new Map();

/**
 * Drops the placements that would take a worker on probation past its bounds
 * within this claim (the exclusions apply them to what it held before): a
 * start at probationUnjudgedMax undecided attempts, a join of a bounded vote
 * (one another worker below that bound could take) at probationUndecidedMax. Each
 * replicated or verified placement kept counts as one more undecided.
 */
function withinProbation(c: Context, placements: Placement[], rows: ReadonlyMap<string, Row>, probation: ReadonlyMap<string, number>, bounded: ReadonlySet<string>): Placement[] {
  if (probation.size === 0) return placements;
  const undecided = new Map(probation);
  return placements.filter((p) => {
    const n = undecided.get(p.workerId);
    const r = rows.get(p.jobId)!;
    if (n === undefined || !isGuarded(r)) return true;
    const starts = startsGuarded(r);
    const max = starts ? c.trust.probationUnjudgedMax : bounded.has(p.jobId) ? c.trust.probationUndecidedMax : Infinity;
    if (n >= max) return false;
    undecided.set(p.workerId, n + 1);
    return true;
  });
}

/**
 * Adaptive replication, decided before anything is written, once per round:
 * the first placement (in the place function's order) of an adaptive job
 * whose round is not decided yet asks whether its worker may run the job
 * alone; then that placement is kept and the job's other placements in this
 * claim are dropped. Either way the round is decided, so a solo round that
 * fails is rerun replicated, not decided again. Workers' counts of solo runs
 * since their last spot check are followed across the claim. Then each kept
 * placement gets its attempt id and lease.
 */
function decideLeases(c: Context, placements: readonly Placement[], jobRows: ReadonlyMap<string, Row>, workerRows: ReadonlyMap<string, Row>): LeasePlan {
  const solo = new Set<string>();
  const seen = new Set<string>();
  const decided = new Set<string>();
  const soloSinceCheck = new Map<string, number>();
  const kept: Placement[] = [];
  for (const p of placements) {
    if (solo.has(p.jobId)) continue;
    kept.push(p);
    if (seen.has(p.jobId)) continue;
    seen.add(p.jobId);
    const r = jobRows.get(p.jobId);
    assert(r, 'a placed job was read by the claim');
    if (Number(r.adaptive) !== 1 || Number(r.adapted) !== 0) continue;
    decided.add(p.jobId);
    const w = workerRows.get(p.workerId);
    assert(w, 'a placed worker was read by the claim');
    const rep: Reputation = { ...reputationFromRow(w), soloSinceCheck: soloSinceCheck.get(p.workerId) ?? Number(w.solo_since_check) };
    const decision = soloDecision(rep, c.trust, c.random);
    if (decision === 'spot-check') soloSinceCheck.set(p.workerId, 0);
    if (decision === 'solo') {
      soloSinceCheck.set(p.workerId, rep.soloSinceCheck + 1);
      solo.add(p.jobId);
    }
  }
  const counted = new Map<string, number>();
  const made = kept.map((p) => {
    const k = (counted.get(p.jobId) ?? 0) + 1;
    counted.set(p.jobId, k);
    return { attemptId: c.newId(), lease: randomToken(c.random), k };
  });
  return { kept, solo, decided, soloSinceCheck, made };
}

/** Placements per job, in first-placement order. */
export function perJob(plan: LeasePlan): Map<string, number> {
  const n = new Map<string, number>();
  for (const p of plan.kept) n.set(p.jobId, (n.get(p.jobId) ?? 0) + 1);
  return n;
}

/**
 * Invariant 5 after a claim's writes: each worker's live attempts as the claim
 * read them (under its worker's row lock or the database's write lock, so none
 * were added since; ended ones only free room) plus those just leased stay
 * within what the worker declared.
 */
function assertLeasedWithinCapacity(assignments: readonly Assignment[], workerRows: ReadonlyMap<string, Row>, live: readonly Row[]): void {
  for (const workerId of new Set(assignments.map((a) => a.workerId))) {
    const w = workerRows.get(workerId);
    assert(w, 'a leased attempt belongs to a worker the claim locked');
    const held = live.filter((a) => a.worker_id === workerId);
    for (const a of assignments) {
      if (a.workerId === workerId) held.push({ worker_id: workerId, queue: a.queue, cores: a.cores, memory_mb: a.memoryMb, gpu_ids: J(a.gpuIds) });
    }
    assertWithinDeclared(w, held);
  }
}

export { CANDIDATE_COLUMNS };
