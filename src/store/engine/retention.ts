// Retention: which finished jobs and which worker records may be deleted, and
// deleting them in short batches. Decided once, for every backend; the rule of
// what is eligible is written here and nowhere else.
//
// A finished job (succeeded, failed, cancelled, expired: finished_at is set)
// of the queue, past the queue's age or count limit, is eligible unless
// - a job not yet finished depends on it (a dependency row names it as parent),
// - a job not yet finished verifies it (verifies_job_id), or it verifies a
//   job not yet finished,
// - a reliability check names it as its challenge (the check's verdict is the
//   worker's record; the challenge goes with the worker, see pruneWorkers).
// Deleting a job deletes its attempts (results, traces) and every dependency
// row that names it, parent or dependant; an `archive` callback gets the jobs
// whole first, in the same transaction. Dependants keep their `dependsOn`,
// which may then name a deleted job. Its idempotency key is free again: a
// submit under it makes a new job.
//
// With row locks (PostgreSQL) a batch locks its candidates FOR UPDATE SKIP
// LOCKED: a job a submit is making a parent of (FOR SHARE), or that a retry or
// settle holds, is left for the next sweep, and one that a submit would name
// next finds it gone (UNKNOWN_DEPENDENCY). The rule is read again once the
// rows are locked, as a dependant may have committed between the candidates'
// snapshot and their lock; after the lock none can (its dependency row's
// foreign key waits for it).
import { LIMITS } from '../../types/limits.ts';
import { jobFromRow } from './columns.ts';
import type { DeleteFinishedParams, DeleteFinishedResult } from '../store.ts';
import { LIVE, str, type Context, type Exec, type Tx } from './sql.ts';

/** The part of the rule that is not about age or count: nothing unfinished needs the job `j`. */
const NOTHING_NEEDS_IT = `
  (j.has_dependants = 0 OR NOT EXISTS (
    SELECT 1 FROM job_deps d JOIN jobs c ON c.id = d.job_id WHERE d.parent_id = j.id AND c.finished_at IS NULL))
  AND NOT EXISTS (SELECT 1 FROM jobs v WHERE v.verifies_job_id = j.id AND v.finished_at IS NULL)
  AND (j.verifies_job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs t WHERE t.id = j.verifies_job_id AND t.finished_at IS NULL))
  AND NOT EXISTS (SELECT 1 FROM worker_checks k WHERE k.job_id = j.id)`;

/** Queues with finished jobs, by name after `after`: a loose scan of index jobs_finished, one probe per queue. */
export async function finishedQueues(x: Exec, after: string, limit: number): Promise<string[]> {
  const rows = await x.all(
    `WITH RECURSIVE q(name, n) AS (
       SELECT (SELECT min(queue) FROM jobs WHERE finished_at IS NOT NULL AND queue > $1), 1
       UNION ALL
       SELECT (SELECT min(queue) FROM jobs WHERE finished_at IS NOT NULL AND queue > q.name), q.n + 1 FROM q
       WHERE q.name IS NOT NULL AND q.n < $2)
     SELECT name FROM q WHERE name IS NOT NULL ORDER BY n`,
    [after, limit],
  );
  return rows.map((r) => str(r.name));
}

/** Where a queue's retention cuts: jobs finished strictly before (atMs, id). */
export interface Cutoff {
  atMs: number;
  id: string;
}

/**
 * Jobs finished strictly before the cutoff are past the limits; null: none
 * is. A read, run before the batch's transaction: the count limit walks the
 * index past the kept jobs (OFFSET keepJobs), which must not hold the write
 * lock. A cutoff read a moment early only errs towards keeping: jobs finish
 * newer, and it moves only forward (unless one of the kept jobs is retried
 * in between, which may let one job too many go).
 */
export async function cutoff(x: Exec, p: DeleteFinishedParams): Promise<Cutoff | null> {
  const byAge = p.finishedBeforeMs === null ? null : { atMs: p.finishedBeforeMs, id: '' };
  let byCount: { atMs: number; id: string } | null = null;
  if (p.keepJobs !== null && p.keepJobs <= 0) byCount = { atMs: Number.MAX_SAFE_INTEGER, id: '' };
  else if (p.keepJobs !== null) {
    // The oldest job kept: the keepJobs-th newest.
    const kept = await x.get(
      `SELECT finished_at, id FROM jobs WHERE queue = $1 AND finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1 OFFSET $2`,
      [p.queue, p.keepJobs - 1],
    );
    if (kept) byCount = { atMs: Number(kept.finished_at), id: str(kept.id) };
  }
  if (byAge === null || byCount === null) return byAge ?? byCount;
  return byAge.atMs > byCount.atMs || (byAge.atMs === byCount.atMs && byAge.id > byCount.id) ? byAge : byCount;
}

/** Deletes up to `limit` eligible finished jobs of one queue, oldest first, with their attempts and dependency rows. */
export async function deleteFinishedJobs(c: Context, tx: Tx, p: DeleteFinishedParams, cut: Cutoff): Promise<DeleteFinishedResult> {
  const limit = Math.min(p.limit, LIMITS.retentionBatchMaxJobs);
  if (limit <= 0) return { deletedJobIds: [] };
  const candidates = await tx.all(
    `SELECT j.id FROM jobs j ${c.d.indexedBy('jobs_finished')}
     WHERE j.queue = $1 AND j.finished_at IS NOT NULL AND (j.finished_at < $2 OR (j.finished_at = $2 AND j.id < $3))
       AND ${NOTHING_NEEDS_IT}
     ORDER BY j.finished_at, j.id LIMIT $4${c.d.skipLocked}`,
    [p.queue, cut.atMs, cut.id, limit],
  );
  let ids = candidates.map((r) => str(r.id));
  if (ids.length > 0 && c.d.rowLocks) {
    const still = new Set(
      (await tx.all(`SELECT j.id FROM jobs j WHERE j.id ${c.d.inList('$1')} AND j.finished_at IS NOT NULL AND ${NOTHING_NEEDS_IT}`, [ids])).map((r) =>
        str(r.id),
      ),
    );
    ids = ids.filter((id) => still.has(id));
  }
  if (ids.length === 0) return { deletedJobIds: [] };
  if (p.archive) {
    const rows = await tx.all(`SELECT * FROM jobs WHERE id ${c.d.inList('$1')} ORDER BY finished_at, id`, [ids]);
    await p.archive(rows.map(jobFromRow));
  }
  await tx.run(`DELETE FROM attempts WHERE job_id ${c.d.inList('$1')}`, [ids]);
  await tx.run(`DELETE FROM job_deps WHERE parent_id ${c.d.inList('$1')}`, [ids]);
  await tx.run(`DELETE FROM job_deps WHERE job_id ${c.d.inList('$1')}`, [ids]);
  await tx.run(`DELETE FROM jobs WHERE id ${c.d.inList('$1')}`, [ids]);
  return { deletedJobIds: ids };
}

/** What a worker record must not hold to be pruned: a live attempt, a quarantine, a pending or failed check. */
const HOLDS_NOTHING = `w.quarantined = 0
  AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.worker_id = w.id AND a.state IN ${LIVE})
  AND NOT EXISTS (SELECT 1 FROM worker_checks k WHERE k.worker_id = w.id AND k.state IN ('pending', 'failed'))`;

/**
 * Deletes up to `limit` worker records last seen before `seenBeforeMs` (and
 * never one seen within offlineAfterMs: it may be online) that hold nothing,
 * with their passed checks; returns their ids, oldest first. Their finished
 * attempts keep the worker's id.
 */
export async function pruneWorkers(c: Context, tx: Tx, seenBeforeMs: number, limit: number): Promise<string[]> {
  const before = Math.min(seenBeforeMs, c.clock.now() - c.offlineAfterMs);
  const n = Math.min(limit, LIMITS.workerPruneBatchMax);
  if (n <= 0) return [];
  const rows = await tx.all(
    `SELECT w.id FROM workers w WHERE w.last_seen_at < $1 AND ${HOLDS_NOTHING} ORDER BY w.last_seen_at, w.id LIMIT $2${c.d.skipLocked}`,
    [before, n],
  );
  let ids = rows.map((r) => str(r.id));
  if (ids.length > 0 && c.d.rowLocks) {
    // A claim that committed between the read and the lock may have given one an attempt.
    const still = new Set((await tx.all(`SELECT w.id FROM workers w WHERE w.id ${c.d.inList('$1')} AND ${HOLDS_NOTHING}`, [ids])).map((r) => str(r.id)));
    ids = ids.filter((id) => still.has(id));
  }
  if (ids.length === 0) return [];
  await tx.run(`DELETE FROM worker_checks WHERE worker_id ${c.d.inList('$1')}`, [ids]);
  await tx.run(`DELETE FROM workers WHERE id ${c.d.inList('$1')}`, [ids]);
  return ids;
}
