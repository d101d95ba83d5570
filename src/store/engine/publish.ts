// Publishing, decided once for every backend (docs/publishing.md). A worker
// that left an output directory says so with its result (attempts.output).
// When a result is accepted, the job's publish becomes pending for the
// accepted attempt's worker, and every other output of the job is discarded;
// the coordinators tell the worker (duePublishes) until it answers with a
// manifest or an error (recordPublish). A failed publish is due again after a
// backoff; the job stays succeeded with its result throughout.
import { assert, GafferError } from '../../types/errors.ts';
import type { Job, JobError } from '../../types/model.ts';
import { clipMessage } from '../rules.ts';
import type { Change, DuePublishesParams, OutputRef, PublishOrder, RecordPublishParams } from '../store.ts';
import { jobFromRow } from './columns.ts';
import { J, type Context, type Exec, type Tx } from './sql.ts';

/** The attempt a job succeeds with, and whether its worker holds an output to publish. */
export interface AcceptedAttempt {
  attemptId: string;
  workerId: string;
  output: boolean;
}

/** The SET clause of the succeeding UPDATE for the publish columns: $4 state (or NULL), $5 attempt, $6 worker; $2 is now. */
export const PUBLISH_ON_SUCCESS = `publish_state = $4, publish_attempt_id = $5, publish_worker_id = $6, publish_tries = 0,
  publish_next_at = $2, publish_error = NULL, publish_manifest = NULL, publish_updated_at = $2`;

/** The parameters $4-$6 of PUBLISH_ON_SUCCESS. */
export function publishParams(accepted: AcceptedAttempt | null): (string | null)[] {
  if (!accepted?.output) return [null, null, null];
  return ['pending', accepted.attemptId, accepted.workerId];
}

/** What a job that just succeeded tells workers: publish the accepted output, discard the others. */
export async function publishChanges(tx: Exec, job: Job, accepted: AcceptedAttempt | null): Promise<Pick<Change, 'publish' | 'discards'>> {
  const out: Pick<Change, 'publish' | 'discards'> = {};
  if (accepted?.output) out.publish = { jobId: job.id, attemptId: accepted.attemptId, workerId: accepted.workerId, queue: job.queue };
  if (job.replicas > 1) {
    const discards = await outputsOf(tx, job.id, accepted?.attemptId ?? null);
    if (discards.length > 0) out.discards = discards;
  }
  return out;
}

/** The outputs of a job's finished attempts (completed or rejected), but the one kept. */
export async function outputsOf(tx: Exec, jobId: string, keepAttemptId: string | null): Promise<OutputRef[]> {
  const rows = await tx.all(`SELECT id, worker_id FROM attempts WHERE job_id = $1 AND output = 1 AND state IN ('completed', 'rejected') AND id <> $2`, [
    jobId,
    keepAttemptId ?? '',
  ]);
  return rows.map((r) => ({ jobId, attemptId: String(r.id), workerId: String(r.worker_id) }));
}

/** Adds discards to the change of `jobId` in `changes` (one change per job: events and metrics count them). */
export function withDiscards(changes: Change[], jobId: string, discards: readonly OutputRef[]): Change[] {
  if (discards.length === 0) return changes;
  const own = changes.find((ch) => ch.jobId === jobId);
  assert(own, 'a job whose outputs are discarded has a change of its own');
  own.discards = [...(own.discards ?? []), ...discards];
  return changes;
}

/** Due publishes of these workers; each returned is not due again for resendAfterMs. */
export async function duePublishes(c: Context, tx: Tx, params: DuePublishesParams): Promise<PublishOrder[]> {
  if (params.workerIds.length === 0 || params.limit <= 0) return [];
  const now = c.clock.now();
  const rows = await tx.all(
    `SELECT id, queue, publish_attempt_id, publish_worker_id FROM jobs
     WHERE publish_worker_id ${c.d.inList('$1')} AND publish_state IN ('pending', 'failed') AND publish_next_at <= $2
     ORDER BY publish_next_at LIMIT $3${c.d.skipLocked}`,
    [params.workerIds, params.all === true ? Number.MAX_SAFE_INTEGER : now, params.limit],
  );
  const orders: PublishOrder[] = [];
  for (const r of rows) {
    await tx.run('UPDATE jobs SET publish_next_at = $1 WHERE id = $2', [now + params.resendAfterMs, String(r.id)]);
    orders.push({ jobId: String(r.id), queue: String(r.queue), attemptId: String(r.publish_attempt_id), workerId: String(r.publish_worker_id) });
  }
  return orders;
}

/** A worker's answer to a publish: done with a manifest, or failed and due again after retryDelayMs. */
export async function recordPublish(c: Context, tx: Tx, params: RecordPublishParams): Promise<Job> {
  assert((params.manifest === undefined) !== (params.error === undefined), 'a publish answer is a manifest or an error');
  const now = c.clock.now();
  const row = await tx.get(`SELECT * FROM jobs WHERE id = $1${c.d.forUpdate}`, [params.jobId]);
  if (!row) throw new GafferError('JOB_NOT_FOUND', `no job has id ${params.jobId}`, { jobId: params.jobId });
  const job = jobFromRow(row);
  if (job.publish === null || job.publish.attemptId !== params.attemptId) {
    throw new GafferError('INVALID_STATE', `job ${job.id} has no publish for attempt ${params.attemptId}`, { jobId: job.id, attemptId: params.attemptId });
  }
  if (job.publish.workerId !== params.workerId) {
    throw new GafferError('NOT_ATTEMPT_HOLDER', `the output of attempt ${params.attemptId} is held by another worker`, { attemptId: params.attemptId });
  }
  // Published once: a repeated answer (its recorded frame was lost) changes nothing, and nothing may undo it.
  if (job.publish.state === 'published') return job;
  let updated;
  if (params.manifest !== undefined) {
    updated = await tx.get(
      `UPDATE jobs SET publish_state = 'published', publish_manifest = $1, publish_error = NULL, publish_next_at = NULL, publish_updated_at = $2
       WHERE id = $3 RETURNING *`,
      [J(params.manifest), now, job.id],
    );
  } else {
    const error: JobError = { code: params.error!.code, message: clipMessage(params.error!.message), attemptId: params.attemptId };
    updated = await tx.get(
      `UPDATE jobs SET publish_state = 'failed', publish_error = $1, publish_tries = publish_tries + 1, publish_next_at = $2, publish_updated_at = $3
       WHERE id = $4 RETURNING *`,
      [J(error), now + Math.max(0, params.retryDelayMs ?? 0), now, job.id],
    );
  }
  assert(updated, 'a locked job row is updated');
  return jobFromRow(updated);
}
