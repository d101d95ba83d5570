// The backlog keeper's rule ([queues.NAME.backlog]): a queue holds `target`
// queued filler jobs, no fewer and no more, so idle capacity always has work
// while real work (at a higher priority) goes first. Decided once here, in one
// transaction that counts and tops up together.
//
// Several coordinators sharing one PostgreSQL database each run the keeper;
// they keep one backlog because each top-up first locks the queue's row in
// the queues table (made on the first top-up): a second top-up of the queue
// waits for the first to commit and then counts what it made (each statement
// of a READ COMMITTED transaction reads what was committed before it ran).
// SQLite holds the whole database for every write transaction.
import { assert, GafferError } from '../../types/errors.ts';
import { LIMITS } from '../../types/limits.ts';
import type { Job } from '../../types/model.ts';
import type { Change, TopUpBacklogParams, TopUpBacklogResult } from '../store.ts';
import { jobFromRow } from './columns.ts';
import { cancelJob, newJobRow, type InsertJobs } from './jobs.ts';
import type { Context, Exec, Tx } from './sql.ts';

/** Why the keeper cancels a filler job: the queue holds more than its target (a target lowered, a filler job put back). */
export const OVER_TARGET_REASON = 'the backlog holds more than its target';

export async function topUpBacklog(c: Context, tx: Tx, params: TopUpBacklogParams, insertJobs: InsertJobs): Promise<TopUpBacklogResult> {
  const { queue, target, job } = params;
  checkBacklogTarget(target);
  assert(job.queue === queue, 'a filler job belongs to the queue whose backlog it fills');
  const now = c.clock.now();
  await lockQueue(c, tx, queue, now);
  const queued = await countQueuedFillers(tx, queue);
  if (queued > target) {
    const { cancelled, changes } = await trim(c, tx, queue, queued - target);
    return { queue, queued: queued - cancelled, created: [], changes };
  }
  const missing = Math.min(target - queued, LIMITS.backlogTopUpMaxJobs);
  if (missing === 0) return { queue, queued, created: [], changes: [] };
  const spec = { ...job, idempotencyKey: null, dependsOn: [], runAt: null };
  const rows = Array.from({ length: missing }, () => newJobRow(c, spec, new Map(), now, { filler: true }));
  const inserted = await insertJobs(tx, rows);
  assert(inserted.size === missing, 'filler jobs have no key, so every one is inserted');
  const created: Job[] = rows.map((r) => jobFromRow(inserted.get(r.id)!));
  tx.wake();
  return { queue, queued: queued + missing, created, changes: [] };
}

/** A target within [0, backlogTargetMax] (INVALID_INPUT otherwise). */
export function checkBacklogTarget(target: number): void {
  if (!Number.isInteger(target) || target < 0 || target > LIMITS.backlogTargetMax) {
    throw new GafferError('INVALID_INPUT', `a backlog target is a whole number from 0 to ${LIMITS.backlogTargetMax}`);
  }
}

/** The queue's row, made if missing and locked until the transaction ends: top-ups of one queue take turns. */
async function lockQueue(c: Context, tx: Tx, queue: string, now: number): Promise<void> {
  await tx.run('INSERT INTO queues (name, paused, updated_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING', [queue, now]);
  const row = await tx.get(`SELECT name FROM queues WHERE name = $1${c.d.forUpdate}`, [queue]);
  assert(row, 'a queue row exists once made');
}

/** Queued filler jobs of the queue (index jobs_filler_queued), delayed ones included. */
export async function countQueuedFillers(x: Exec, queue: string): Promise<number> {
  const row = await x.get(`SELECT count(*) AS n FROM jobs WHERE queue = $1 AND filler = 1 AND state = 'queued'`, [queue]);
  return Number(row?.n ?? 0);
}

/** Cancels the newest `excess` queued filler jobs that nothing holds. */
async function trim(c: Context, tx: Tx, queue: string, excess: number): Promise<{ cancelled: number; changes: Change[] }> {
  const n = Math.min(excess, LIMITS.backlogTopUpMaxJobs);
  const rows = await tx.all(
    `SELECT id FROM jobs WHERE queue = $1 AND filler = 1 AND state = 'queued' AND live = 0 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [queue, n],
  );
  const changes: Change[] = [];
  for (const r of rows) changes.push(...(await cancelJob(c, tx, String(r.id), OVER_TARGET_REASON)).changes);
  return { cancelled: rows.length, changes };
}
