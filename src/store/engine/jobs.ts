// Jobs: submit, cancel, retry, and the cascade that ends a job with what
// depends on it. Decided once, for every backend.
//
// Lock order (where the backend has row locks): workers, then jobs (a job
// before the verification jobs that check it), then attempts. Parents a
// submit depends on are locked FOR SHARE, so that a parent cannot end between
// reading its state and the child's dependency row being committed.
import { assert, GafferError } from '../../types/errors.ts';
import { LIMITS } from '../../types/limits.ts';
import type { Job, JobError, NewJob } from '../../types/model.ts';
import { TERMINAL_JOB_STATES, type JobState } from '../../types/states.ts';
import type { Row } from '../rows.ts';
import { assertRetryable, clipMessage, initialJobState, type JobLinks } from '../rules.ts';
import type { Change, SettleResult, SubmitResult } from '../store.ts';
import { insertValues, INSERT_COLUMNS, jobFromRow, type NewJobRow } from './columns.ts';
import { J, LIVE, TERMINAL, type Context, type Exec, type Tx } from './sql.ts';
import { endedInPipeline } from './pipeline-end.ts';

/** Inserts new jobs' rows; a row whose idempotency key exists already is skipped. Returns the inserted rows by id. */
export type InsertJobs = (tx: Tx, rows: readonly NewJobRow[]) => Promise<Map<string, Row>>;

const INSERT_ONE = `INSERT INTO jobs (${INSERT_COLUMNS.map((c) => c.name).join(', ')})
  VALUES (${INSERT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})
  ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING *`;

/** The general way: one INSERT per job. */
export const insertJobsOneByOne: InsertJobs = async (tx, rows) => {
  const out = new Map<string, Row>();
  for (const r of rows) {
    const row = await tx.get(INSERT_ONE, insertValues(r));
    if (row) out.set(String(row.id), row);
  }
  return out;
};

/** A new job's row: its state from its parents' (UNKNOWN_DEPENDENCY when one does not exist). */
export function newJobRow(c: Context, spec: NewJob, parents: ReadonlyMap<string, JobState>, now: number, links: JobLinks = {}): NewJobRow & { parents: string[] } {
  const own = [...new Set(spec.dependsOn)].map((pid) => {
    const state = parents.get(pid);
    if (state === undefined) throw new GafferError('UNKNOWN_DEPENDENCY', `dependsOn names ${pid}, which does not exist`, { jobId: pid });
    return { id: pid, state };
  });
  const { state, pending, error } = initialJobState(own);
  return { id: c.newId(), spec, state, pending, error, links, now, parents: own.map((p) => p.id) };
}

/**
 * Submits a batch in one transaction: the keys already known, the parents
 * (locked FOR SHARE), the new jobs, their dependency rows. A key that another
 * coordinator inserts meanwhile makes the insert skip that job; the existing
 * job is then read back.
 */
export async function submitJobs(c: Context, tx: Tx, jobs: readonly NewJob[], insertJobs: InsertJobs): Promise<SubmitResult[]> {
  const now = c.clock.now();
  const keys = [...new Set(jobs.map((j) => j.idempotencyKey).filter((k): k is string => k !== null))];
  const existing = await byKey(c, tx, keys);
  // Which jobs are new: the first of each key not seen before, and every job without a key.
  const firstOfKey = new Set<string>();
  const fresh: number[] = [];
  jobs.forEach((j, i) => {
    if (j.idempotencyKey === null) return void fresh.push(i);
    if (existing.has(j.idempotencyKey) || firstOfKey.has(j.idempotencyKey)) return;
    firstOfKey.add(j.idempotencyKey);
    fresh.push(i);
  });
  const parents = await lockParents(c, tx, fresh.flatMap((i) => jobs[i]!.dependsOn));
  const rows = fresh.map((i) => newJobRow(c, jobs[i]!, parents, now));
  const inserted = rows.length > 0 ? await insertJobs(tx, rows) : new Map<string, Row>();
  // Keys another coordinator committed between our read and our insert.
  const lost = rows.filter((r) => !inserted.has(r.id)).map((r) => String(r.spec.idempotencyKey));
  for (const [k, row] of await byKey(c, tx, lost)) existing.set(k, row);
  await recordDependencies(c, tx, rows.filter((r) => inserted.has(r.id)));
  const rowOfIndex = new Map(fresh.map((i, k) => [i, rows[k]!]));
  const out = jobs.map((j, i) => {
    const mine = rowOfIndex.get(i);
    const created = mine !== undefined ? inserted.get(mine.id) : undefined;
    if (created) return { job: jobFromRow(created), created: true };
    const found = j.idempotencyKey === null ? undefined : (existing.get(j.idempotencyKey) ?? inserted.get(idOfKey(rows, j.idempotencyKey)));
    assert(found, 'a job not inserted has a key that names an existing job');
    return { job: jobFromRow(found), created: false };
  });
  if (out.some((r) => r.created && r.job.want > 0)) tx.wake();
  return out;
}

function idOfKey(rows: readonly NewJobRow[], key: string): string {
  return rows.find((r) => r.spec.idempotencyKey === key)?.id ?? '';
}

async function byKey(c: Context, tx: Exec, keys: readonly string[]): Promise<Map<string, Row>> {
  const out = new Map<string, Row>();
  if (keys.length === 0) return out;
  for (const r of await tx.all(`SELECT * FROM jobs WHERE idempotency_key ${c.d.inList('$1')}`, [keys])) {
    out.set(String(r.idempotency_key), r);
  }
  return out;
}

async function lockParents(c: Context, tx: Exec, ids: readonly string[]): Promise<Map<string, JobState>> {
  const parents = new Map<string, JobState>();
  const sorted = [...new Set(ids)].sort();
  if (sorted.length === 0) return parents;
  for (const r of await tx.all(`SELECT id, state FROM jobs WHERE id ${c.d.inList('$1')} ORDER BY id${c.d.forShare}`, [sorted])) {
    parents.set(String(r.id), r.state as JobState);
  }
  return parents;
}

/**
 * The dependency rows of new jobs, and has_dependants on each parent's own
 * row (a fast path that settles a job in one statement must see it under the
 * lock it takes; parents are locked above, in id order).
 */
export async function recordDependencies(c: Context, tx: Tx, rows: readonly (NewJobRow & { parents: string[] })[]): Promise<void> {
  const deps = rows.flatMap((r) => r.parents.map((p) => [p, r.id] as const));
  if (deps.length === 0) return;
  for (const [parent, child] of deps) {
    await tx.run('INSERT INTO job_deps (parent_id, job_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [parent, child]);
  }
  const parents = [...new Set(deps.map((d) => d[0]))].sort();
  await tx.run(`UPDATE jobs SET has_dependants = 1 WHERE id ${c.d.inList('$1')} AND has_dependants = 0`, [parents]);
}

/** A job the store makes itself (a verification job, a challenge): no key, no parents, tied to what it checks. */
export async function insertLinked(c: Context, tx: Tx, spec: NewJob, links: JobLinks, now: number, insertJobs: InsertJobs): Promise<Job> {
  const row = newJobRow(c, { ...spec, idempotencyKey: null, dependsOn: [] }, new Map(), now, links);
  const inserted = (await insertJobs(tx, [row])).get(row.id);
  assert(inserted, 'a job without a key is always inserted');
  if (Number(inserted.want) > 0) tx.wake();
  return jobFromRow(inserted);
}

export async function mustGetJob(tx: Exec, id: string, lock = ''): Promise<Job> {
  const row = await tx.get(`SELECT * FROM jobs WHERE id = $1${lock}`, [id]);
  if (!row) throw new GafferError('JOB_NOT_FOUND', `no job has id ${id}`, { jobId: id });
  return jobFromRow(row);
}

/**
 * Locks a job's row and returns it; a verification job's verified job is
 * locked first (the order endJob takes them in). `verifiesJobId` when the
 * caller read it already (it never changes). Undefined when there is no such job.
 */
export async function lockJobRow(c: Context, tx: Exec, jobId: string, verifiesJobId?: string | null): Promise<Row | undefined> {
  if (c.d.rowLocks) {
    let verified = verifiesJobId;
    if (verified === undefined) {
      const link = await tx.get('SELECT verifies_job_id FROM jobs WHERE id = $1', [jobId]);
      if (!link) return undefined;
      verified = link.verifies_job_id === null ? null : String(link.verifies_job_id);
    }
    if (verified !== null) await tx.get(`SELECT id FROM jobs WHERE id = $1${c.d.forUpdate}`, [verified]);
  }
  return tx.get(`SELECT * FROM jobs WHERE id = $1${c.d.forUpdate}`, [jobId]);
}

export async function cancelJob(c: Context, tx: Tx, jobId: string, reason: string | undefined): Promise<SettleResult> {
  const row = await lockJobRow(c, tx, jobId);
  if (!row) throw new GafferError('JOB_NOT_FOUND', `no job has id ${jobId}`, { jobId });
  const job = jobFromRow(row);
  if (job.state === 'cancelled') return { job, changes: [] };
  if (TERMINAL_JOB_STATES.includes(job.state)) {
    throw new GafferError('INVALID_STATE', `job ${job.id} already ended ${job.state}`, { state: job.state });
  }
  const error: JobError = { code: 'CANCELLED', message: reason ?? 'cancelled by a client' };
  const changes = await endJob(c, tx, job.id, 'cancelled', error);
  return { job: await mustGetJob(tx, job.id), changes };
}

/**
 * Puts a failed, cancelled or expired job back with a fresh budget. A retry is
 * a fresh round: earlier replicas' results no longer vote, their workers may
 * run it again (round_seq), and an adaptive job is decided anew.
 */
export async function retryJob(c: Context, tx: Tx, jobId: string): Promise<SettleResult> {
  const job = await mustGetJob(tx, jobId, c.d.forUpdate);
  if (job.state !== 'failed' && job.state !== 'cancelled' && job.state !== 'expired') {
    throw new GafferError('INVALID_STATE', `only a failed, cancelled or expired job can be retried; ${job.id} is ${job.state}`);
  }
  assertRetryable(job);
  const parents = [...new Set(job.dependsOn)];
  if (parents.length > 0) {
    const rows = await tx.all(`SELECT id, state FROM jobs WHERE id ${c.d.inList('$1')}`, [parents]);
    const states = new Map(rows.map((r) => [String(r.id), String(r.state)]));
    const blocking = parents.find((p) => states.get(p) !== 'succeeded');
    if (blocking !== undefined) {
      throw new GafferError('INVALID_STATE', `parent ${blocking} is ${states.get(blocking)}; retry it first`, { jobId: blocking });
    }
  }
  const now = c.clock.now();
  const retried = { code: 'RETRIED', message: 'the job was put back in the queue by hand; this result no longer counts' };
  await tx.run(`UPDATE attempts SET state = 'rejected', error = $2 WHERE job_id = $1 AND state = 'completed'`, [job.id, J(retried)]);
  await tx.run(
    `UPDATE jobs SET state = 'queued', want = replicas, failures = 0, error = NULL, result = NULL,
       finished_at = NULL, pending_parents = 0, run_at = $1, updated_at = $1, extra_replicas = 0, solo = 0,
       adapted = 0, round_seq = attempts, backup_of = NULL, backup_reason = NULL
     WHERE id = $2`,
    [now, job.id],
  );
  tx.wake();
  return { job: await mustGetJob(tx, job.id), changes: [{ jobId: job.id, state: 'queued', cancelledAttempts: [] }] };
}

type Ending = { id: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError };

/**
 * Ends a job that has not ended: stops its live attempts and cascades to its
 * waiting dependants (cancelled with a cancel, failed otherwise) and to what
 * is tied to it (endedLinks). The caller holds the job's row lock;
 * dependants are locked as they are updated, linked jobs before.
 */
export async function endJob(c: Context, tx: Tx, jobId: string, state: Ending['state'], error: JobError): Promise<Change[]> {
  const now = c.clock.now();
  const changes: Change[] = [];
  const queue: Ending[] = [{ id: jobId, state, error }];
  for (let i = 0; i < queue.length; i++) {
    assert(i < LIMITS.cascadeMaxJobs, 'a cascade through dependants stays within its bound');
    const item = queue[i]!;
    const cancelledAttempts = await stopLiveAttempts(tx, item.id, now);
    const ended = await tx.get(
      `UPDATE jobs SET state = $1, want = 0, live = 0, error = $2, finished_at = $3, updated_at = $3, backup_of = NULL, backup_reason = NULL
       WHERE id = $4 AND state NOT IN ${TERMINAL} RETURNING verify, verifies_job_id, pinned_worker_id, pipeline_id, phase`,
      [item.state, J(item.error), now, item.id],
    );
    if (!ended) continue;
    changes.push({ jobId: item.id, state: item.state, cancelledAttempts });
    queue.push(...(await endedLinks(c, tx, item, ended, now)));
    // Before the dependants: the rest of a pipeline instance ends with the instance's reason.
    if (ended.pipeline_id !== null) {
      queue.push(...(await endedInPipeline(c, tx, { ...item, pipelineId: String(ended.pipeline_id), phase: String(ended.phase) }, now)));
    }
    const childState = item.state === 'cancelled' ? 'cancelled' : 'failed';
    const code = item.state === 'cancelled' ? 'DEPENDENCY_CANCELLED' : 'DEPENDENCY_FAILED';
    const children = await tx.all(
      `SELECT j.id FROM job_deps d JOIN jobs j ON j.id = d.job_id WHERE d.parent_id = $1 AND j.state = 'waiting' ORDER BY j.id`,
      [item.id],
    );
    for (const child of children) {
      queue.push({ id: String(child.id), state: childState, error: { code, message: `parent ${item.id} ended ${item.state}`, jobId: item.id } });
    }
  }
  return changes;
}

/**
 * What else ends with a job: the job a verification job was checking (it
 * fails: no verdict came), the verification jobs of a job (cancelled), and a
 * challenge's reliability check (failed). Linked jobs are locked here, before
 * endJob stops their attempts.
 */
async function endedLinks(c: Context, tx: Tx, item: Ending, ended: Row, now: number): Promise<Ending[]> {
  const more: Ending[] = [];
  if (ended.verifies_job_id !== null) {
    const original = await tx.get(`SELECT id FROM jobs WHERE id = $1 AND state = 'verifying'${c.d.forUpdate}`, [String(ended.verifies_job_id)]);
    if (original) {
      const message = clipMessage(`verification job ${item.id} ended ${item.state}: ${item.error.message}`);
      more.push({ id: String(original.id), state: 'failed', error: { code: 'VERIFICATION_FAILED', message, jobId: item.id } });
    }
  }
  // Only a job with a verifier queue has verification jobs.
  if (ended.verify !== null) {
    const verifiers = await tx.all(`SELECT id FROM jobs WHERE verifies_job_id = $1 AND state NOT IN ${TERMINAL} ORDER BY id${c.d.forUpdate}`, [item.id]);
    for (const v of verifiers) {
      more.push({ id: String(v.id), state: 'cancelled', error: { code: 'CANCELLED', message: `the job it verifies ended ${item.state}`, jobId: item.id } });
    }
  }
  if (ended.pinned_worker_id !== null) {
    await tx.run(`UPDATE worker_checks SET state = 'failed', reason = $1, updated_at = $2 WHERE job_id = $3 AND state = 'pending'`, [
      clipMessage(`the challenge ended ${item.state}: ${item.error.message}`),
      now,
      item.id,
    ]);
  }
  return more;
}

export async function stopLiveAttempts(tx: Tx, jobId: string, now: number): Promise<{ attemptId: string; workerId: string }[]> {
  const rows = await tx.all(
    `UPDATE attempts SET state = 'cancelled', finished_at = $1, held_until = lease_expires_at WHERE job_id = $2 AND state IN ${LIVE} RETURNING id, worker_id`,
    [now, jobId],
  );
  return rows.map((r) => ({ attemptId: String(r.id), workerId: String(r.worker_id) })).sort((a, b) => (a.attemptId < b.attemptId ? -1 : 1));
}

/** A parent succeeded: its waiting children lose one pending parent, and the ready ones queue. */
export async function releaseChildren(c: Context, tx: Tx, parentId: string, now: number): Promise<Change[]> {
  const rows = await tx.all(
    `UPDATE jobs SET pending_parents = pending_parents - 1,
       state = CASE WHEN pending_parents = 1 THEN 'queued' ELSE state END,
       want = CASE WHEN pending_parents = 1 THEN replicas ELSE 0 END,
       run_at = CASE WHEN pending_parents = 1 THEN ${c.d.greatest('run_at', '$1')} ELSE run_at END,
       updated_at = $1
     WHERE state = 'waiting' AND id IN (SELECT job_id FROM job_deps WHERE parent_id = $2)
     RETURNING id, state`,
    [now, parentId],
  );
  const queued = rows
    .filter((r) => r.state === 'queued')
    .map((r) => ({ jobId: String(r.id), state: 'queued' as const, cancelledAttempts: [] }))
    .sort((a, b) => (a.jobId < b.jobId ? -1 : 1));
  if (queued.length > 0) tx.wake();
  return queued;
}
