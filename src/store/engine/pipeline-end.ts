// How a pipeline instance ends, decided once: it succeeds with its last job,
// and the first of its jobs to end otherwise ends the rest (failed or
// cancelled, as its template's onFailure says) with that job's reason.
import type { JobError } from '../../types/model.ts';
import { clipMessage } from '../rules.ts';
import { J, TERMINAL, type Context, type Tx } from './sql.ts';

/** Codes the rule gives the jobs it ends: such an ending is the rule's own and starts nothing more. */
export const PIPELINE_ENDING_CODES: readonly string[] = ['PIPELINE_FAILED', 'PIPELINE_CANCELLED'];

export interface PipelineEnding {
  id: string;
  state: 'failed' | 'cancelled';
  error: JobError;
}

/**
 * A job of an instance ended without succeeding (failed, expired, or
 * cancelled). The first such job ends the instance: failed, or cancelled when
 * the job was cancelled; the instance's other unfinished jobs are returned to
 * be ended, failed with PIPELINE_FAILED (onFailure `fail`) or cancelled with
 * PIPELINE_CANCELLED (onFailure `cancel`, or the instance was cancelled).
 * Lock order: the job (the caller holds it), the instance, its other jobs.
 */
export async function endedInPipeline(
  c: Context,
  tx: Tx,
  ended: { id: string; pipelineId: string; phase: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError },
  now: number,
): Promise<PipelineEnding[]> {
  if (PIPELINE_ENDING_CODES.includes(ended.error.code)) return [];
  const cancelled = ended.state === 'cancelled';
  const reason = clipMessage(`phase ${ended.phase} job ${ended.id} ended ${ended.state}: ${ended.error.message}`);
  const row = await tx.get(
    `UPDATE pipelines SET state = $1, error = $2, finished_at = $3, updated_at = $3 WHERE id = $4 AND state = 'running' RETURNING on_failure`,
    [cancelled ? 'cancelled' : 'failed', J({ code: ended.error.code, message: reason, jobId: ended.id }), now, ended.pipelineId],
  );
  if (!row) return [];
  const rest: PipelineEnding['state'] = cancelled || row.on_failure === 'cancel' ? 'cancelled' : 'failed';
  const code = rest === 'cancelled' ? 'PIPELINE_CANCELLED' : 'PIPELINE_FAILED';
  const others = await tx.all(
    `SELECT id FROM jobs WHERE pipeline_id = $1 AND id <> $2 AND state NOT IN ${TERMINAL} ORDER BY id${c.d.forUpdate}`,
    [ended.pipelineId, ended.id],
  );
  return others.map((o) => ({ id: String(o.id), state: rest, error: { code, message: reason, jobId: ended.id } }));
}

/** A job of an instance succeeded: the instance succeeds once every job of it has. */
export async function succeededInPipeline(tx: Tx, pipelineId: string, now: number): Promise<void> {
  await tx.run(
    `UPDATE pipelines SET state = 'succeeded', finished_at = $1, updated_at = $1
     WHERE id = $2 AND state = 'running' AND NOT EXISTS (SELECT 1 FROM jobs WHERE pipeline_id = $2 AND state <> 'succeeded')`,
    [now, pipelineId],
  );
}
