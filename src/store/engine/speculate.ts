// Speculative backups in the store: the pass that asks for them, and what a
// backup changes when either attempt of a pair ends. Decided once, for every
// backend; which attempts qualify is the scheduler's pure decideBackups.
//
// A backup is asked for on the job's row: want grows by one and backup_of
// names the attempt it backs up, so the next claim places it like any
// attempt (on another worker, the fastest that fits; a start-by deadline
// that passed does not hold it back, since the job did start), and the claim
// writes backup_of onto the attempt it makes (claim.ts). From then on the two
// attempts are one slot of the job: the first result wins and the other is
// revoked (cancelled, its worker told, its late result STALE_LEASE); a pair
// counts once in a vote; an attempt of a pair that fails or is lost leaves the
// job running on the other, with nothing added.
import { LIMITS, SPECULATION_DEFAULTS } from '../../types/limits.ts';
import { decideBackups, medianOf, progressFraction, type QueueRuns, type RunningAttempt } from '../../scheduler/speculation.ts';
import type { Candidate, WorkerCapacity } from '../../types/model.ts';
import { isBackup } from '../claiming.ts';
import type { Row } from '../rows.ts';
import type { LeasePlan } from './claim.ts';
import type { SpeculateParams, SpeculateResult } from '../store.ts';
import { LIVE, TERMINAL, type Context, type Exec, type Tx } from './sql.ts';

export async function speculate(c: Context, tx: Tx, params: SpeculateParams): Promise<SpeculateResult> {
  const now = c.clock.now();
  // Coordinators sharing a database take turns, so that together they keep the share bound.
  await tx.get(`SELECT name FROM store_locks WHERE name = 'speculation'${c.d.forUpdate}`);
  const perQueue = await tx.all(`SELECT queue, count(*) AS n FROM attempts WHERE state IN ${LIVE} GROUP BY queue ORDER BY queue`);
  const liveAttempts = perQueue.reduce((n, r) => n + Number(r.n), 0);
  const minRunMs = params.minRunMs ?? SPECULATION_DEFAULTS.minRunMs;
  const queues: QueueRuns[] = [];
  const attempts: RunningAttempt[] = [];
  for (const r of perQueue) {
    const queue = String(r.queue);
    if (!params.settings(queue).enabled) continue;
    const mine = await eligibleAttempts(tx, queue, now - minRunMs);
    if (mine.length === 0) continue;
    attempts.push(...mine);
    queues.push(await queueRuns(tx, queue));
  }
  if (attempts.length === 0) return { backups: [] };
  const decided = decideBackups({
    now,
    settings: params.settings,
    queues,
    attempts,
    liveAttempts,
    backups: await countBackups(tx),
    shareMax: params.shareMax ?? SPECULATION_DEFAULTS.shareMax,
    backupsMin: params.backupsMin ?? SPECULATION_DEFAULTS.backupsMin,
    minRunMs,
    runsMin: LIMITS.speculationRunsMin,
  });
  const backups: SpeculateResult['backups'] = [];
  for (const d of [...decided].sort((a, b) => (a.jobId < b.jobId ? -1 : 1))) {
    const n = await tx.run(
      `UPDATE jobs SET want = want + 1, backup_of = $2, backup_reason = $3, run_at = ${c.d.greatest('run_at', '$4')}, updated_at = $4
       WHERE id = $1 AND state = 'running' AND want = 0 AND backup_of IS NULL
         AND EXISTS (SELECT 1 FROM attempts WHERE id = $2 AND job_id = $1 AND state IN ${LIVE})`,
      [d.jobId, d.attemptId, d.reason, now],
    );
    if (n === 1) backups.push(d);
  }
  if (backups.length > 0) tx.wake();
  return { backups };
}

/**
 * The queue's longest-running live attempts that may get a backup: not a
 * backup, never backed up, of a running job (not a challenge) that wants no
 * other attempt, leased at or before `leasedBy`.
 */
async function eligibleAttempts(tx: Exec, queue: string, leasedBy: number): Promise<RunningAttempt[]> {
  const rows = await tx.all(
    `SELECT a.id, a.job_id, a.leased_at, a.progress, j.deadline_at, j.has_deadline
     FROM attempts a JOIN jobs j ON j.id = a.job_id
     WHERE a.queue = $1 AND a.state IN ${LIVE} AND a.leased_at <= $2 AND a.backup_of IS NULL
       AND j.state = 'running' AND j.want = 0 AND j.backup_of IS NULL AND j.pinned_worker_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM attempts b WHERE b.backup_of = a.id)
     ORDER BY a.leased_at, a.id LIMIT $3`,
    [queue, leasedBy, LIMITS.speculationScanMaxAttempts],
  );
  return rows.map((r) => ({
    attemptId: String(r.id),
    jobId: String(r.job_id),
    queue,
    leasedAt: Number(r.leased_at),
    progress: r.progress === null || r.progress === undefined ? null : progressFraction(JSON.parse(String(r.progress))),
    deadline: Number(r.has_deadline) === 1 ? Number(r.deadline_at) : null,
  }));
}

/** The run times of the queue's newest completed attempts, and how many of its newest jobs have finished. */
async function queueRuns(tx: Exec, queue: string): Promise<QueueRuns> {
  const runs = await tx.all(
    `SELECT finished_at - leased_at AS ms FROM attempts
     WHERE queue = $1 AND finished_at IS NOT NULL AND state IN ('completed', 'rejected')
     ORDER BY finished_at DESC LIMIT $2`,
    [queue, LIMITS.speculationSampleMaxRuns],
  );
  const recent = await tx.get(
    `SELECT count(*) AS n, coalesce(sum(CASE WHEN state IN ${TERMINAL} THEN 1 ELSE 0 END), 0) AS done
     FROM (SELECT state FROM jobs WHERE queue = $1 ORDER BY id DESC LIMIT $2) s`,
    [queue, LIMITS.speculationRecentJobsMax],
  );
  return {
    queue,
    runTimesMs: runs.map((r) => Number(r.ms)).sort((a, b) => a - b),
    recentJobs: Number(recent?.n ?? 0),
    recentFinished: Number(recent?.done ?? 0),
  };
}

/** Live backup attempts, and backups asked for and not yet placed. */
async function countBackups(tx: Exec): Promise<number> {
  const r = await tx.get(
    `SELECT (SELECT count(*) FROM attempts WHERE backup_of IS NOT NULL AND state IN ${LIVE})
       + (SELECT count(*) FROM jobs WHERE backup_of IS NOT NULL) AS n`,
  );
  return Number(r?.n ?? 0);
}

/** The attempt's pair: its live backup, or the live attempt it backs up (SQL, `$1` the job, `$2` the attempt). */
const PARTNER = `job_id = $1 AND id <> $2 AND state IN ${LIVE}
  AND (backup_of = $2 OR id = (SELECT p.backup_of FROM attempts p WHERE p.id = $2))`;

/**
 * An attempt brought a result: its pair is revoked (cancelled, holding what it
 * holds until it stops, as any revoked attempt), and a backup of it that was
 * asked for and not yet placed is no longer wanted. Returns the revoked attempts.
 */
export async function stopPartner(tx: Tx, jobId: string, attemptId: string, now: number): Promise<{ attemptId: string; workerId: string }[]> {
  await tx.run('UPDATE jobs SET want = want - 1, backup_of = NULL, backup_reason = NULL WHERE id = $1 AND backup_of = $2 AND want > 0', [jobId, attemptId]);
  const rows = await tx.all(
    `UPDATE attempts SET state = 'cancelled', finished_at = $3, held_until = lease_expires_at WHERE ${PARTNER} RETURNING id, worker_id`,
    [jobId, attemptId, now],
  );
  if (rows.length > 0) await tx.run('UPDATE jobs SET live = live - $1, updated_at = $2 WHERE id = $3', [rows.length, now, jobId]);
  return rows.map((r) => ({ attemptId: String(r.id), workerId: String(r.worker_id) }));
}

/**
 * How an attempt that ended without a result stands with backups: `partner`
 * when its pair still runs (the job goes on with it, wanting nothing more);
 * `pending` when a backup of it was asked for and not yet placed (that backup,
 * already counted in want, takes its place; the request is cleared); `none`.
 */
export async function endedUnpaired(tx: Tx, jobId: string, attemptId: string | undefined): Promise<'partner' | 'pending' | 'none'> {
  if (attemptId === undefined) return 'none';
  const pending = await tx.run('UPDATE jobs SET backup_of = NULL, backup_reason = NULL WHERE id = $1 AND backup_of = $2', [jobId, attemptId]);
  if (pending > 0) return 'pending';
  const partner = await tx.get(`SELECT 1 AS one FROM attempts WHERE ${PARTNER} LIMIT 1`, [jobId, attemptId]);
  return partner ? 'partner' : 'none';
}

/** How much a replicated job's live + want overcounts the results its vote may still hear: each live pair, and a backup not yet placed, is one slot. */
export async function doubledSlots(tx: Exec, jobId: string, pendingBackup: boolean): Promise<number> {
  const r = await tx.get(
    `SELECT count(*) AS n FROM attempts b JOIN attempts o ON o.id = b.backup_of
     WHERE b.job_id = $1 AND b.state IN ${LIVE} AND o.state IN ${LIVE}`,
    [jobId],
  );
  return Number(r?.n ?? 0) + (pendingBackup ? 1 : 0);
}

/**
 * For a claim that places a backup: each worker's speed on the backup's queue
 * becomes the median run time of its recent completed attempts there
 * (unmeasured workers none), so that the backup goes to the fastest worker
 * that fits. Every worker of the claim is set from the same measure, never a
 * mix with reliability-check times.
 */
export async function measureSpeeds(c: Context, tx: Exec, workers: WorkerCapacity[], candidates: Iterable<Candidate>): Promise<void> {
  const queues = new Set<string>();
  for (const cand of candidates) if (cand.backup === true) queues.add(cand.queue);
  for (const queue of [...queues].sort()) {
    const rows = await tx.all(
      `SELECT worker_id, finished_at - leased_at AS ms FROM attempts
       WHERE queue = $1 AND finished_at IS NOT NULL AND state IN ('completed', 'rejected') AND worker_id ${c.d.inList('$3')}
       ORDER BY finished_at DESC LIMIT $2`,
      [queue, LIMITS.speculationSampleMaxRuns, workers.map((w) => w.workerId)],
    );
    const byWorker = new Map<string, number[]>();
    for (const r of rows) byWorker.set(String(r.worker_id), [...(byWorker.get(String(r.worker_id)) ?? []), Number(r.ms)]);
    for (const w of workers) {
      const runs = byWorker.get(w.workerId);
      const speedMs: Record<string, number> = { ...w.speedMs };
      if (runs === undefined) delete speedMs[queue];
      else speedMs[queue] = medianOf(runs.sort((a, b) => a - b));
      w.speedMs = speedMs;
    }
  }
}

/** The attempts a claim made that are backups: each records the attempt it backs up, and its job no longer asks for one. */
export async function recordBackups(tx: Tx, plan: LeasePlan, jobRows: ReadonlyMap<string, Row>): Promise<void> {
  for (const [i, p] of plan.kept.entries()) {
    const r = jobRows.get(p.jobId);
    if (r === undefined || !isBackup(r) || plan.made[i]!.k !== 1) continue;
    await tx.run('UPDATE attempts SET backup_of = $1, backup_reason = $2 WHERE id = $3', [String(r.backup_of), String(r.backup_reason), plan.made[i]!.attemptId]);
    await tx.run('UPDATE jobs SET backup_of = NULL, backup_reason = NULL WHERE id = $1', [p.jobId]);
  }
}
