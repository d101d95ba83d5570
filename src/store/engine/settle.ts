// Settling an attempt: a result (accepted, sent to a verifier, or counted in
// a vote) or a failure (retried with backoff, or the job ends). Decided once,
// for every backend.
import { assert, GafferError } from '../../types/errors.ts';
import type { Job, JobError, Json, NewJob } from '../../types/model.ts';
import { LIVE_ATTEMPT_STATES } from '../../types/states.ts';
import { countsAgainstWorker, clipMessage, countsAsFailure, isHandBack, isLostLease, isVerdict, resultHash, retryDelayMs, verifierPayload, type VerdictResult } from '../rules.ts';
import type { Change, CompleteParams, FailParams, LeaseRef, SettleResult } from '../store.ts';
import { jobFromRow } from './columns.ts';
import { succeededInPipeline } from './pipeline-end.ts';
import { endJob, insertLinked, lockJobRow, mustGetJob, releaseChildren, stopLiveAttempts, type InsertJobs } from './jobs.ts';
import { J, LIVE, type Context, type Exec, type Tx } from './sql.ts';
import { tally } from './tally.ts';
import { gradeCheck, judgeWorker, quarantine } from './trust.ts';
import { chargeLost } from './credit.ts';
import { LIMITS } from '../../types/limits.ts';
import { lockWorkers } from './workers.ts';
import { endedUnpaired, stopPartner } from './speculate.ts';
import { PUBLISH_ON_SUCCESS, publishChanges, publishParams, withDiscards, type AcceptedAttempt } from './publish.ts';

/** What settling needs beyond the context: how the backend inserts jobs (a verification job is one). */
export interface SettleDeps {
  insertJobs: InsertJobs;
}

/**
 * Locks what settling the attempt the lease names may change, in the lock
 * order: first the workers it may judge ('judged' for a result, 'own' for a
 * failure counted against the worker), then the job a verification job
 * checks, then the attempt's job. Then checks the lease: the attempt is read
 * after the locks, so nothing can end it before the commit. Throws
 * ATTEMPT_NOT_FOUND or STALE_LEASE.
 */
export async function lockCurrent(c: Context, tx: Tx, ref: LeaseRef, now: number, workers: 'judged' | 'own' | 'none'): Promise<{ job: Job; workerId: string }> {
  const pre = await tx.get(
    `SELECT a.job_id, a.worker_id, a.state, a.lease, a.lease_expires_at, j.replicas, j.verifies_job_id, j.verifies_attempt_id
     FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.id = $1`,
    [ref.attemptId],
  );
  if (!pre) throw new GafferError('ATTEMPT_NOT_FOUND', `no attempt has id ${ref.attemptId}`);
  // An attempt's worker never changes, so this read needs no lock.
  if (ref.workerId !== undefined && String(pre.worker_id) !== ref.workerId) throwNotHolder(ref);
  const jobId = String(pre.job_id);
  if (c.d.rowLocks && workers === 'own') await lockWorkers(c, tx, [String(pre.worker_id)]);
  if (c.d.rowLocks && workers === 'judged') await lockWorkers(c, tx, await judgedWorkers(tx, jobId, pre));
  const row = await lockJobRow(c, tx, jobId, pre.verifies_job_id === null ? null : String(pre.verifies_job_id));
  assert(row, 'a job is never deleted');
  // Where the write transaction holds the whole database, what the first read saw still holds.
  const a = c.d.rowLocks ? await tx.get('SELECT state, lease, lease_expires_at FROM attempts WHERE id = $1', [ref.attemptId]) : pre;
  assert(a, 'an attempt is never deleted');
  const live = LIVE_ATTEMPT_STATES.includes(a.state as never);
  if (a.lease !== ref.lease || !live || Number(a.lease_expires_at) < now) await throwStale(tx, ref);
  return { job: jobFromRow(row), workerId: String(pre.worker_id) };
}

/** A vote judges the workers of the job's replicas; a verdict, the worker of the verified attempt. */
async function judgedWorkers(tx: Exec, jobId: string, pre: Record<string, unknown>): Promise<string[]> {
  const ids: string[] = [];
  if (Number(pre.replicas) > 1) {
    const rows = await tx.all(`SELECT DISTINCT worker_id FROM attempts WHERE job_id = $1 AND (state IN ${LIVE} OR state = 'completed')`, [jobId]);
    ids.push(...rows.map((r) => String(r.worker_id)));
  }
  if (pre.verifies_attempt_id !== null) {
    const verified = await tx.get('SELECT worker_id FROM attempts WHERE id = $1', [String(pre.verifies_attempt_id)]);
    if (verified) ids.push(String(verified.worker_id));
  }
  return ids;
}

export function throwNotHolder(ref: LeaseRef): never {
  throw new GafferError('NOT_ATTEMPT_HOLDER', `attempt ${ref.attemptId} was given to another worker, not to ${ref.workerId ?? '?'}`, {
    attemptId: ref.attemptId,
  });
}

export async function throwStale(tx: Exec, ref: LeaseRef): Promise<never> {
  const row = await tx.get('SELECT state FROM attempts WHERE id = $1', [ref.attemptId]);
  if (!row) throw new GafferError('ATTEMPT_NOT_FOUND', `no attempt has id ${ref.attemptId}`);
  throw new GafferError('STALE_LEASE', `attempt ${ref.attemptId} no longer holds its job (it is ${String(row.state)})`, {
    attemptId: ref.attemptId,
    state: row.state,
  });
}

/** A result from the attempt holding the current lease. */
export async function completeAttempt(c: Context, tx: Tx, params: CompleteParams, deps: SettleDeps): Promise<SettleResult> {
  const now = c.clock.now();
  const { job, workerId } = await lockCurrent(c, tx, params, now, 'judged');
  if (job.verifies !== null && !isVerdict(params.result)) return badVerdict(c, tx, params, job, workerId, now);
  if (job.verify?.mode === 'queue' && params.verificationJob === undefined) {
    throw new GafferError('INVALID_STATE', `job ${job.id} needs a verifier queue's defaults to send its result for verification`);
  }
  const hash = resultHash(params.result);
  const keepResult = job.replicas > 1 || job.verify !== null ? J(params.result) : null;
  const row = await tx.get(
    `UPDATE attempts SET state = 'completed', finished_at = $1, result_hash = $2, result = $3, trace = $4, output = $7
     WHERE id = $5 AND lease = $6 AND state IN ${LIVE} RETURNING leased_at`,
    [now, hash, keepResult, params.trace ? J(params.trace) : null, params.attemptId, params.lease, params.output ? 1 : 0],
  );
  assert(row, 'the current lease completes its attempt exactly once');
  // The first result of a backup pair wins: the other attempt is revoked before anything counts this one.
  // A pair needs two live attempts, a backup asked for a want: a plain job's only attempt pays for neither.
  const revoked = job.live > 1 || job.want > 0 ? await stopPartner(tx, job.id, params.attemptId, now) : [];
  const settled = await settleResult(c, tx, params, job, workerId, hash, Number(row.leased_at), now, deps);
  return revoked.length === 0 ? settled : { ...settled, changes: withRevoked(settled.changes, settled.job, revoked) };
}

/** The completed attempt's result, by the kind of job: sent to a verifier, accepted, or counted in a vote. */
async function settleResult(
  c: Context,
  tx: Tx,
  params: CompleteParams,
  job: Job,
  workerId: string,
  hash: string,
  leasedAt: number,
  now: number,
  deps: SettleDeps,
): Promise<SettleResult> {
  let changes: Change[];
  if (job.verify?.mode === 'queue') {
    changes = await sendToVerifier(c, tx, job, params.attemptId, workerId, params.result, params.verificationJob!, now, deps);
  } else if (job.replicas === 1 || job.solo) {
    const own = { attemptId: params.attemptId, workerId, output: params.output === true };
    const accepted = await succeed(c, tx, job.id, J(params.result), now, own, job.live > 1);
    changes = accepted.changes;
    if (job.pinnedWorkerId !== null) await gradeCheck(c, tx, job.id, hash, now - leasedAt, now);
    // Neither a check's grade nor anything else but a verdict changes this job's row: the one succeed returned is current.
    if (job.verifies === null) return { job: accepted.job, changes };
    changes.push(...(await applyVerdict(c, tx, job.verifies, params.result as unknown as VerdictResult, now)));
  } else {
    await tx.run('UPDATE jobs SET live = live - 1, updated_at = $1 WHERE id = $2', [now, job.id]);
    changes = await tally(c, tx, job.id, now);
  }
  return { job: await mustGetJob(tx, job.id), changes };
}

/** The attempts a result revoked, told with the change of their job (or one of its own when its state did not move). */
function withRevoked(changes: Change[], job: Job, revoked: Change['cancelledAttempts']): Change[] {
  const i = changes.findIndex((ch) => ch.jobId === job.id);
  if (i < 0) return [{ jobId: job.id, state: job.state, cancelledAttempts: revoked }, ...changes];
  const out = [...changes];
  out[i] = { ...out[i]!, cancelledAttempts: [...out[i]!.cancelledAttempts, ...revoked] };
  return out;
}

/** A verifier that answers something other than a verdict failed its attempt. */
async function badVerdict(c: Context, tx: Tx, ref: LeaseRef, job: Job, workerId: string, now: number): Promise<SettleResult> {
  const error: JobError = {
    code: 'BAD_VERDICT',
    message: 'a verifier must return { "valid": true|false, "reason"?: string }',
    attemptId: ref.attemptId,
  };
  await endAttemptAs(tx, ref, 'failed', error, now);
  const changes = await afterFailure(c, tx, job.id, error, true, now, workerId);
  return { job: await mustGetJob(tx, job.id), changes };
}

async function endAttemptAs(tx: Tx, ref: LeaseRef, state: 'failed', error: JobError, now: number): Promise<void> {
  const n = await tx.run(`UPDATE attempts SET state = $1, finished_at = $2, error = $3 WHERE id = $4 AND lease = $5 AND state IN ${LIVE}`, [
    state,
    now,
    J(error),
    ref.attemptId,
    ref.lease,
  ]);
  assert(n === 1, 'the current lease fails its attempt exactly once');
}

/** A failure reported by the attempt holding the current lease. */
export async function failAttempt(c: Context, tx: Tx, params: FailParams): Promise<SettleResult> {
  const now = c.clock.now();
  const { job, workerId } = await lockCurrent(c, tx, params, now, countsAgainstWorker(params.error) ? 'own' : 'none');
  const error = { ...params.error, attemptId: params.attemptId, message: clipMessage(params.error.message) };
  await endAttemptAs(tx, params, 'failed', error, now);
  const changes = await afterFailure(c, tx, job.id, error, params.retryable, now, workerId);
  return { job: await mustGetJob(tx, job.id), changes };
}

/**
 * Accepts a result: the job succeeds (once: the guard on state makes it so)
 * and its children move. `accepted`: the attempt whose result it is; when its
 * worker holds an output, the job's publish becomes pending (publish.ts).
 * `othersLive` false: the caller knows no other attempt of the job is live,
 * so none needs stopping. Returns the job's row as the update left it.
 */
export async function succeed(
  c: Context,
  tx: Tx,
  jobId: string,
  resultJson: string,
  now: number,
  accepted: AcceptedAttempt | null,
  othersLive = true,
): Promise<{ job: Job; changes: Change[] }> {
  const cancelledAttempts = othersLive ? await stopLiveAttempts(tx, jobId, now) : [];
  const row = await tx.get(
    `UPDATE jobs SET state = 'succeeded', result = $1, error = NULL, want = 0, live = 0, finished_at = $2, updated_at = $2,
       backup_of = NULL, backup_reason = NULL, ${PUBLISH_ON_SUCCESS}
     WHERE id = $3 AND state IN ('running', 'queued', 'verifying') RETURNING *`,
    [resultJson, now, jobId, ...publishParams(accepted)],
  );
  assert(row, 'at most one result is accepted per job');
  const job = jobFromRow(row);
  const publishing = await publishChanges(tx, job, accepted);
  const children = await releaseChildren(c, tx, jobId, now);
  if (row.pipeline_id !== null) await succeededInPipeline(tx, String(row.pipeline_id), now);
  return { job, changes: [{ jobId, state: 'succeeded', cancelledAttempts, ...publishing }, ...children] };
}

/** A result of a job with a verifier queue: the job waits in `verifying` while a verification job checks it. */
async function sendToVerifier(
  c: Context,
  tx: Tx,
  job: Job,
  attemptId: string,
  workerId: string,
  result: Json,
  build: NonNullable<CompleteParams['verificationJob']>,
  now: number,
  deps: SettleDeps,
): Promise<Change[]> {
  assert(job.verify?.mode === 'queue', 'only a job with a verifier queue is sent to one');
  await tx.run(`UPDATE jobs SET live = live - 1, want = 0, state = 'verifying', updated_at = $1 WHERE id = $2`, [now, job.id]);
  let spec: NewJob;
  try {
    spec = build(job.verify.queue, verifierPayload(job, attemptId, workerId, result), job.priority);
  } catch (err) {
    if (!(err instanceof GafferError)) throw err;
    // Nothing can verify this result (e.g. payload and result together are too large): the job fails, said plainly.
    const message = clipMessage(`could not make the verification job: ${err.message}`);
    return endJob(c, tx, job.id, 'failed', { code: 'VERIFICATION_FAILED', message, attemptId });
  }
  assert(spec.replicas === 1 && spec.verify === null && !spec.adaptive, 'a verification job runs once, unverified');
  const v = await insertLinked(c, tx, spec, { verifies: { jobId: job.id, attemptId } }, now, deps.insertJobs);
  return [
    { jobId: job.id, state: 'verifying', cancelledAttempts: [] },
    { jobId: v.id, state: v.state, cancelledAttempts: [] },
  ];
}

/**
 * A verifier's verdict on a result: the job succeeds with it, or runs again
 * elsewhere. lockCurrent locked the verified job's row and the judged worker's.
 */
async function applyVerdict(c: Context, tx: Tx, verifies: { jobId: string; attemptId: string }, verdict: VerdictResult, now: number): Promise<Change[]> {
  const original = await tx.get(`SELECT id FROM jobs WHERE id = $1 AND state = 'verifying'${c.d.forUpdate}`, [verifies.jobId]);
  if (!original) return [];
  const attempt = await tx.get(`SELECT worker_id, result, output FROM attempts WHERE id = $1 AND state = 'completed'`, [verifies.attemptId]);
  assert(attempt, 'a result under verification stays completed until its verdict');
  const workerId = String(attempt.worker_id);
  if (verdict.valid) {
    const accepted = { attemptId: verifies.attemptId, workerId, output: Number(attempt.output) === 1 };
    const { changes } = await succeed(c, tx, verifies.jobId, String(attempt.result), now, accepted, false);
    return [...changes, ...(await judgeWorker(c, tx, workerId, 'valid', now))];
  }
  const discards = Number(attempt.output) === 1 ? [{ jobId: verifies.jobId, attemptId: verifies.attemptId, workerId }] : [];
  const error: JobError = {
    code: 'RESULT_REJECTED',
    message: clipMessage(`the verifier rejected the result of attempt ${verifies.attemptId}: ${verdict.reason ?? 'no reason given'}`),
    attemptId: verifies.attemptId,
  };
  await tx.run(`UPDATE attempts SET state = 'rejected', error = $2 WHERE id = $1`, [verifies.attemptId, J(error)]);
  const changes = await judgeWorker(c, tx, workerId, 'invalid', now);
  const job = await tx.get(`UPDATE jobs SET failures = failures + 1, error = $1, updated_at = $2 WHERE id = $3 RETURNING failures, max_attempts`, [
    J(error),
    now,
    verifies.jobId,
  ]);
  assert(job, 'the verified job exists');
  if (Number(job.failures) >= Number(job.max_attempts)) {
    return [...changes, ...withDiscards(await endJob(c, tx, verifies.jobId, 'failed', error), verifies.jobId, discards)];
  }
  await tx.run(`UPDATE jobs SET state = 'queued', want = 1, run_at = $1, updated_at = $1 WHERE id = $2`, [now, verifies.jobId]);
  tx.wake();
  return [...changes, { jobId: verifies.jobId, state: 'queued', cancelledAttempts: [], ...(discards.length > 0 ? { discards } : {}) }];
}

/** After an attempt ended: a job with no live attempt left goes back to queued. */
export async function settleLiveCount(tx: Tx, jobId: string, now: number): Promise<Change[]> {
  const row = await tx.get(`UPDATE jobs SET state = 'queued', updated_at = $1 WHERE id = $2 AND state = 'running' AND live = 0 RETURNING id`, [
    now,
    jobId,
  ]);
  return row ? [{ jobId, state: 'queued', cancelledAttempts: [] }] : [];
}

/**
 * An attempt failed, timed out or was lost: retry with backoff while the
 * budget lasts, else fail the job. One replica's non-retryable error does not
 * end a replicated job (another worker runs that replica: a single untrusted
 * worker must not be able to fail a job); the retry budget still bounds it. A
 * challenge gives up at once. A solo round that failed is rerun fully
 * replicated. An attempt whose backup pair still runs leaves the job running
 * on it (neither a retry nor an end); one whose backup was asked for and not
 * yet placed is retried by that backup. A timeout or lost lease counts against the worker, whose row
 * the caller locked first.
 */
export async function afterFailure(c: Context, tx: Tx, jobId: string, error: JobError, retryable: boolean, now: number, workerId: string): Promise<Change[]> {
  const paired = await endedUnpaired(tx, jobId, error.attemptId);
  const lost = isLostLease(error) && (await firstLossTo(tx, jobId, workerId, error.attemptId)) ? 1 : 0;
  const row = await tx.get(
    `UPDATE jobs SET live = live - 1, failures = failures + $4, lost = lost + $5, error = $1, updated_at = $2 WHERE id = $3 RETURNING *`,
    [J(error), now, jobId, countsAsFailure(error) ? 1 : 0, lost],
  );
  assert(row, 'a failed attempt belongs to a job');
  const changes = countsAgainstWorker(error) ? await chargeWorker(c, tx, workerId, now) : [];
  const job = jobFromRow(row);
  // Its backup pair runs on: the job goes on with it, wanting nothing more.
  if (paired === 'partner') return changes;
  // An attempt handed straight back (a draining worker's) never ran: it goes back as it was, whatever the job's rules for failures.
  const charged = !isHandBack(error);
  const giveUp =
    charged &&
    (job.failures >= job.maxAttempts || job.lost >= LIMITS.jobLostAttemptsMax || (!retryable && job.replicas === 1) || job.pinnedWorkerId !== null);
  if (giveUp) return [...changes, ...(await endJob(c, tx, jobId, 'failed', lostError(job, error)))];
  const delayMs = retryDelayMs(job, error, c.random);
  // A backup of it asked for and not yet placed is already in want: it is the retry.
  const add = paired === 'pending' ? 0 : 1;
  const want = charged ? `want = CASE WHEN solo = 1 THEN replicas ELSE want + ${add} END, solo = 0` : `want = want + ${add}`;
  await tx.run(`UPDATE jobs SET ${want}, run_at = $1 WHERE id = $2`, [now + delayMs, jobId]);
  tx.wake();
  return [...changes, ...(await settleLiveCount(tx, jobId, now))];
}

/**
 * Whether this is the first attempt of the job this worker lost: the job's
 * `lost` counts the workers it was lost to, so one silent worker taking it
 * again and again (it is quarantined for that) can never fail it.
 */
async function firstLossTo(tx: Tx, jobId: string, workerId: string, attemptId: string | undefined): Promise<boolean> {
  const before = await tx.get(`SELECT 1 AS one FROM attempts WHERE job_id = $1 AND worker_id = $2 AND state = 'lost' AND id <> $3 LIMIT 1`, [
    jobId,
    workerId,
    attemptId ?? '',
  ]);
  return before === undefined;
}

/** A lost or overrun attempt counts against its worker (row locked by the caller), which may be quarantined for it. */
async function chargeWorker(c: Context, tx: Tx, workerId: string, now: number): Promise<Change[]> {
  const reason = await chargeLost(c, tx, workerId, now);
  return reason === null ? [] : quarantine(c, tx, workerId, reason, now);
}

/** The error a job ends with once its lost attempts reach their bound says so. */
function lostError(job: Job, error: JobError): JobError {
  if (!isLostLease(error) || job.lost < LIMITS.jobLostAttemptsMax) return error;
  return { ...error, message: clipMessage(`${error.message}; the job was lost by ${job.lost} silent workers (at most ${LIMITS.jobLostAttemptsMax})`) };
}
