// The sweepers: attempts whose lease expired (lost) or whose run time passed
// (TIMEOUT), and jobs that did not start by their deadline. Several
// coordinators may sweep at once: every end is a guarded update, so each
// attempt and job ends once.
import type { JobError } from '../../types/model.ts';
import { LIMITS } from '../../types/limits.ts';
import type { Row } from '../rows.ts';
import type { Change, SweepResult } from '../store.ts';
import { endJob, lockJobRow } from './jobs.ts';
import { afterFailure } from './settle.ts';
import { J, LIVE, type Context, type Tx } from './sql.ts';
import { lockWorkers } from './workers.ts';

export async function expireAttempts(c: Context, tx: Tx, limit: number): Promise<SweepResult> {
  const now = c.clock.now();
  const max = Math.min(limit, LIMITS.sweepBatchMaxRows);
  const out: SweepResult = { changes: [], endedAttempts: [] };
  const lost = await tx.all(
    `SELECT id, job_id, worker_id, heartbeat_timeout_ms FROM attempts WHERE state IN ${LIVE} AND lease_expires_at < $1
     ORDER BY lease_expires_at, id LIMIT $2`,
    [now, max],
  );
  const hung = await tx.all(
    `SELECT id, job_id, worker_id FROM attempts WHERE state IN ${LIVE} AND timeout_at <= $1 AND id ${c.d.notInList('$3')}
     ORDER BY timeout_at, id LIMIT $2`,
    [now, max, lost.map((r) => String(r.id))],
  );
  // Workers first, as every transaction takes them: each attempt ended here counts against its worker.
  await lockWorkers(c, tx, [...lost, ...hung].map((r) => String(r.worker_id)));
  // A worker silent for a whole heartbeat timeout is gone until it heartbeats again: give it nothing new.
  for (const r of lost) {
    await tx.run('UPDATE workers SET connected = 0 WHERE id = $1 AND last_seen_at < $2', [String(r.worker_id), now - Number(r.heartbeat_timeout_ms)]);
  }
  for (const r of lost) await endAttempt(c, tx, r, 'lost', 'LEASE_LOST', 'no heartbeat within the heartbeat timeout', 'lease_expires_at < $2', now, out);
  for (const r of hung) await endAttempt(c, tx, r, 'failed', 'TIMEOUT', 'the attempt ran past its timeoutMs', 'timeout_at <= $2', now, out);
  // Holds whose lease has ended hold nothing more: cleared, so that the index of holds stays small.
  await tx.run('UPDATE attempts SET held_until = NULL WHERE held_until IS NOT NULL AND held_until < $1', [now]);
  return out;
}

/** Ends one attempt a sweep found, if it still qualifies once its job is locked (a heartbeat may have saved it meanwhile). */
async function endAttempt(
  c: Context,
  tx: Tx,
  r: Row,
  state: 'lost' | 'failed',
  code: 'LEASE_LOST' | 'TIMEOUT',
  message: string,
  still: string,
  now: number,
  out: SweepResult,
): Promise<void> {
  const attemptId = String(r.id);
  const jobId = String(r.job_id);
  if (c.d.rowLocks) await lockJobRow(c, tx, jobId);
  const error: JobError = { code, message, attemptId };
  // A timed-out attempt may still be running on its worker: it holds what it has until it stops (a lost one's lease has ended).
  const held = state === 'failed' ? 'lease_expires_at' : 'NULL';
  const n = await tx.run(`UPDATE attempts SET state = $1, finished_at = $2, error = $3, held_until = ${held} WHERE id = $4 AND state IN ${LIVE} AND ${still}`, [
    state,
    now,
    J(error),
    attemptId,
  ]);
  if (n === 0) return;
  out.endedAttempts.push({ attemptId, workerId: String(r.worker_id), reason: code });
  out.changes.push(...(await afterFailure(c, tx, jobId, error, true, now, String(r.worker_id))));
}

export async function expireDeadlines(c: Context, tx: Tx, limit: number): Promise<SweepResult> {
  const now = c.clock.now();
  const rows = await tx.all(
    `SELECT id FROM jobs ${c.d.indexedBy('jobs_deadline')} WHERE state IN ('waiting', 'queued') AND has_deadline = 1 AND deadline_at <= $1
     ORDER BY deadline_at, id LIMIT $2${c.d.skipLocked}`,
    [now, Math.min(limit, LIMITS.sweepBatchMaxRows)],
  );
  const changes: Change[] = [];
  for (const r of rows) {
    const error: JobError = { code: 'DEADLINE_EXCEEDED', message: 'the job did not start before its deadline' };
    changes.push(...(await endJob(c, tx, String(r.id), 'expired', error)));
  }
  return { changes, endedAttempts: [] };
}
