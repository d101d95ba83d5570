// Reputation, quarantine and reliability checks. Decided once, for every
// backend. Reputation lives on worker rows: whoever may judge a worker locks
// its row before the job (lockCurrent), keeping the lock order.
import { assert, GafferError } from '../../types/errors.ts';
import type { JobError, WorkerCheck } from '../../types/model.ts';
import { TERMINAL_JOB_STATES, type JobState } from '../../types/states.ts';
import { judge, quarantineReason } from '../../trust/index.ts';
import { checkFromRow, reputationFromRow } from '../rows.ts';
import { challengeAgain, clipMessage } from '../rules.ts';
import type { Change, QuarantineParams, StartCheckParams } from '../store.ts';
import { endJob, insertLinked, mustGetJob, type InsertJobs } from './jobs.ts';
import { settleLiveCount } from './settle.ts';
import { endedUnpaired } from './speculate.ts';
import { LIVE, sortedIds, type Context, type Tx } from './sql.ts';

/**
 * Records a judged result for a worker (its row locked: claims and other
 * verdicts change it too); quarantines it when its invalid share crosses the
 * threshold.
 */
export async function judgeWorker(c: Context, tx: Tx, workerId: string, verdict: 'valid' | 'invalid', now: number): Promise<Change[]> {
  const row = await tx.get(`SELECT * FROM workers WHERE id = $1${c.d.forUpdate}`, [workerId]);
  if (!row) return [];
  const rep = judge(reputationFromRow(row), verdict);
  const reason = Number(row.quarantined) === 1 ? null : quarantineReason(rep, c.trust);
  await tx.run('UPDATE workers SET valid_count = $1, invalid_count = $2, valid_streak = $3, solo_since_check = $4 WHERE id = $5', [
    rep.valid,
    rep.invalid,
    rep.streak,
    rep.soloSinceCheck,
    workerId,
  ]);
  if (reason === null) return [];
  return quarantine(c, tx, workerId, reason, now);
}

/** Quarantines a worker whose row the caller locked: its live attempts go back to their queues. */
export async function quarantine(c: Context, tx: Tx, workerId: string, reason: string, now: number): Promise<Change[]> {
  await tx.run('UPDATE workers SET quarantined = 1, quarantine_reason = $1 WHERE id = $2', [clipMessage(reason), workerId]);
  return evict(c, tx, workerId, now);
}

/** Quarantines or releases a worker, its row locked first (as startCheck does). */
export async function setQuarantine(c: Context, tx: Tx, params: QuarantineParams, insertJobs: InsertJobs): Promise<Change[]> {
  const row = await tx.get(`SELECT id FROM workers WHERE id = $1${c.d.forUpdate}`, [params.workerId]);
  if (!row) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
  const now = c.clock.now();
  if (!params.quarantined) {
    await tx.run(
      `UPDATE workers SET quarantined = 0, quarantine_reason = NULL, valid_count = 0, invalid_count = 0,
         timed_out_count = 0, valid_streak = 0, solo_since_check = 0, credit = $2, completed_count = 0, credit_at = $3 WHERE id = $1`,
      [params.workerId, c.trust.creditInitialSlots, now + 1],
    );
    return checkAgain(c, tx, params.workerId, now, insertJobs);
  }
  return quarantine(c, tx, params.workerId, params.reason ?? 'quarantined by an admin', now);
}

/**
 * A released worker faces each challenge it failed again, before any real
 * work: a new challenge job like the last one, pinned to it, and its check
 * pending on that job. The caller holds the worker's row lock, so the checks
 * it reads hold.
 */
async function checkAgain(c: Context, tx: Tx, workerId: string, now: number, insertJobs: InsertJobs): Promise<Change[]> {
  const failed = await tx.all(`SELECT queue, job_id FROM worker_checks WHERE worker_id = $1 AND state = 'failed' ORDER BY queue`, [workerId]);
  const changes: Change[] = [];
  for (const check of failed) {
    // The last challenge ended (its check failed): nothing changes it any more, so it is read unlocked.
    const last = await mustGetJob(tx, String(check.job_id));
    const job = await insertLinked(c, tx, challengeAgain(last), { pinnedWorkerId: workerId }, now, insertJobs);
    await tx.run(
      `UPDATE worker_checks SET state = 'pending', job_id = $1, speed_ms = NULL, reason = NULL, updated_at = $2
       WHERE worker_id = $3 AND queue = $4`,
      [job.id, now, workerId, String(check.queue)],
    );
    changes.push({ jobId: job.id, state: job.state, cancelledAttempts: [] });
  }
  return changes;
}

/**
 * A quarantined worker's live attempts are cancelled and their jobs put back
 * (not counted as failures: the jobs did nothing wrong). A challenge of its
 * own ends, failing its check. The caller holds the worker's row lock; the
 * jobs are locked (in id order) before their attempts change.
 */
async function evict(c: Context, tx: Tx, workerId: string, now: number): Promise<Change[]> {
  const live = await tx.all(`SELECT id, job_id FROM attempts WHERE worker_id = $1 AND state IN ${LIVE} ORDER BY id`, [workerId]);
  if (live.length === 0) return [];
  if (c.d.rowLocks) {
    const jobIds = sortedIds(live.map((a) => String(a.job_id)));
    await tx.all(`SELECT id FROM jobs WHERE id ${c.d.inList('$1')} ORDER BY id${c.d.forUpdate}`, [jobIds]);
  }
  const changes: Change[] = [];
  for (const a of live) {
    const attemptId = String(a.id);
    const jobId = String(a.job_id);
    const n = await tx.run(`UPDATE attempts SET state = 'cancelled', finished_at = $1 WHERE id = $2 AND state IN ${LIVE}`, [now, attemptId]);
    if (n === 0) continue;
    const cancelledAttempts = [{ attemptId, workerId }];
    // A backup pair runs on without it; a backup of it not yet placed is already in want.
    const paired = await endedUnpaired(tx, jobId, attemptId);
    const want = paired === 'partner' ? '' : `, want = CASE WHEN solo = 1 THEN replicas ELSE want + ${paired === 'pending' ? 0 : 1} END, solo = 0`;
    const job = await tx.get(`UPDATE jobs SET live = live - 1${want}, updated_at = $1 WHERE id = $2 RETURNING pinned_worker_id, state`, [now, jobId]);
    assert(job, 'a cancelled attempt belongs to a job');
    if (job.pinned_worker_id !== null) {
      const error: JobError = { code: 'QUARANTINED', message: `worker ${workerId} was quarantined` };
      const ended = await endJob(c, tx, jobId, 'cancelled', error);
      changes.push(...ended.map((ch) => (ch.jobId === jobId ? { ...ch, cancelledAttempts } : ch)));
      continue;
    }
    tx.wake();
    const moved = await settleLiveCount(tx, jobId, now);
    changes.push({ jobId, state: moved[0]?.state ?? (job.state as JobState), cancelledAttempts });
  }
  return changes;
}

/**
 * Starts a worker's reliability check for a queue, unless it has one (a
 * pending check whose challenge ended is stale and starts again). The worker's
 * row is locked first: two coordinators starting the same check take turns.
 */
export async function startCheck(c: Context, tx: Tx, params: StartCheckParams, insertJobs: InsertJobs): Promise<{ check: WorkerCheck; created: boolean }> {
  const worker = await tx.get(`SELECT id FROM workers WHERE id = $1${c.d.forUpdate}`, [params.workerId]);
  if (!worker) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
  const existing = await tx.get(
    `SELECT c.*, j.state AS job_state FROM worker_checks c LEFT JOIN jobs j ON j.id = c.job_id
     WHERE c.worker_id = $1 AND c.queue = $2`,
    [params.workerId, params.queue],
  );
  const stale =
    existing !== undefined &&
    existing.state === 'pending' &&
    (existing.job_state === null || TERMINAL_JOB_STATES.includes(existing.job_state as JobState));
  if (existing && !stale) return { check: checkFromRow(existing), created: false };
  const now = c.clock.now();
  const job = await insertLinked(c, tx, params.job, { pinnedWorkerId: params.workerId }, now, insertJobs);
  const row = await tx.get(
    `INSERT INTO worker_checks (worker_id, queue, state, job_id, answer_hash, time_limit_ms, speed_ms, reason, updated_at)
     VALUES ($1, $2, 'pending', $3, $4, $5, NULL, NULL, $6)
     ON CONFLICT (worker_id, queue) DO UPDATE SET state = 'pending', job_id = excluded.job_id,
       answer_hash = excluded.answer_hash, time_limit_ms = excluded.time_limit_ms, speed_ms = NULL, reason = NULL,
       updated_at = excluded.updated_at
     RETURNING *`,
    [params.workerId, params.queue, job.id, params.answerHash, params.timeLimitMs, now],
  );
  assert(row, 'a check just written is there');
  return { check: checkFromRow(row), created: true };
}

/** A challenge completed: the check passes when the answer matches and it came within the time limit. */
export async function gradeCheck(c: Context, tx: Tx, jobId: string, hash: string, tookMs: number, now: number): Promise<void> {
  const check = await tx.get(`SELECT * FROM worker_checks WHERE job_id = $1 AND state = 'pending'${c.d.forUpdate}`, [jobId]);
  if (!check) return;
  const limitMs = Number(check.time_limit_ms);
  const reason =
    check.answer_hash !== hash ? 'the challenge answer was wrong' : tookMs > limitMs ? `the challenge took ${tookMs} ms; the limit is ${limitMs} ms` : null;
  await tx.run(`UPDATE worker_checks SET state = $1, speed_ms = $2, reason = $3, updated_at = $4 WHERE worker_id = $5 AND queue = $6`, [
    reason === null ? 'passed' : 'failed',
    tookMs,
    reason,
    now,
    String(check.worker_id),
    String(check.queue),
  ]);
}
