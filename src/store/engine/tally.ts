// The vote of a replicated job: trace verification first (once every replica
// is in), then the quorum over what is left. Decided once, for every backend.
import { assert } from '../../types/errors.ts';
import type { JobError, Trace } from '../../types/model.ts';
import { decideQuorum, extraReplicasSpent } from '../../trust/index.ts';
import type { Row } from '../rows.ts';
import { clipMessage, splitByTrace } from '../rules.ts';
import type { Change } from '../store.ts';
import { jobFromRow } from './columns.ts';
import { isOnProbation } from './credit.ts';
import { anotherVoterServes } from './exclusions.ts';
import { endJob } from './jobs.ts';
import { settleLiveCount, succeed } from './settle.ts';
import { J, type Context, type Tx } from './sql.ts';
import { judgeWorker } from './trust.ts';
import { doubledSlots } from './speculate.ts';
import { outputsOf, withDiscards } from './publish.ts';

/**
 * Decides a replicated job from its completed attempts (this round's
 * ballots). Trace verification first rejects the attempts whose resource use
 * stands apart, once every replica is in; the quorum is then counted over the
 * rest.
 */
export async function tally(c: Context, tx: Tx, jobId: string, now: number): Promise<Change[]> {
  const row = await tx.get('SELECT * FROM jobs WHERE id = $1', [jobId]);
  assert(row, 'a tallied job exists');
  const job = jobFromRow(row);
  let done = await tx.all(
    `SELECT id, worker_id, result, result_hash, trace, output FROM attempts WHERE job_id = $1 AND state = 'completed' ORDER BY finished_at, id`,
    [jobId],
  );
  const pending = job.live + job.want - (await doubledSlots(tx, jobId, row.backup_of !== null && row.backup_of !== undefined));
  const changes: Change[] = [];
  if (job.verify?.mode === 'trace') {
    if (pending > 0) return settleLiveCount(tx, jobId, now);
    const judged = await judgeTraces(c, tx, jobId, done, job.verify.tolerance, now);
    if (judged.kind === 'stop') return judged.changes;
    changes.push(...judged.changes);
    done = judged.accepted;
  }
  const vote = (margin: number) =>
    decideQuorum({
      ballots: done.map((r) => ({ attemptId: String(r.id), workerId: String(r.worker_id), hash: String(r.result_hash) })),
      quorum: job.quorum,
      margin,
      pending,
      extraReplicasUsed: Number(row.extra_replicas),
      extraReplicasMax: c.trust.extraReplicasMax,
    });
  const outcome = vote(job.margin);
  const extraUsed = Number(row.extra_replicas);
  if (outcome.kind === 'accept' && (await onlyProbationWon(c, tx, done, outcome.valid))) {
    // Won by workers without a record only: the larger lead, while more votes can be had.
    const strict = vote(job.margin + c.trust.probationMarginBonus);
    if (strict.kind === 'wait') return [...changes, ...(await settleLiveCount(tx, jobId, now))];
    if (strict.kind !== 'accept' && (await roomForVoter(c, tx, job, extraUsed, now))) return [...changes, ...(await addReplica(tx, job.id, job.live, now))];
  }
  if (outcome.kind === 'accept') return [...changes, ...(await accept(c, tx, jobId, done, outcome, now))];
  if (outcome.kind === 'add-replica' && (await roomForVoter(c, tx, job, extraUsed, now))) {
    return [...changes, ...(await addReplica(tx, job.id, job.live, now))];
  }
  if (outcome.kind === 'add-replica' || outcome.kind === 'no-quorum') {
    const reason = outcome.kind === 'no-quorum' ? outcome.reason : `${outcome.split}; ${NO_OTHER_VOTER(job.queue)}`;
    return [...changes, ...(await noQuorum(c, tx, jobId, reason))];
  }
  return [...changes, ...(await settleLiveCount(tx, jobId, now))];
}

/** The vote's result wins: the job succeeds with it, the attempts that disagree are rejected, and every voter is judged. */
async function accept(c: Context, tx: Tx, jobId: string, done: readonly Row[], outcome: { hash: string; valid: string[]; invalid: string[] }, now: number): Promise<Change[]> {
  const winner = done.find((r) => r.result_hash === outcome.hash)!;
  const workerOf = new Map(done.map((r) => [String(r.id), String(r.worker_id)]));
  const outvoted = { code: 'OUTVOTED', message: `its result differs from the accepted one, which ${outcome.valid.length} of ${done.length} results agreed on` };
  for (const id of outcome.invalid) await rejectAttempt(tx, id, outvoted);
  const accepted = { attemptId: String(winner.id), workerId: String(winner.worker_id), output: Number(winner.output) === 1 };
  const changes = (await succeed(c, tx, jobId, String(winner.result), now, accepted)).changes;
  for (const id of outcome.valid) changes.push(...(await judgeWorker(c, tx, workerOf.get(id)!, 'valid', now)));
  for (const id of outcome.invalid) changes.push(...(await judgeWorker(c, tx, workerOf.get(id)!, 'invalid', now)));
  return changes;
}

/** Whether a split vote can have one more replica: room under extraReplicasMax, and a connected worker that serves the queue and has not voted. */
async function roomForVoter(c: Context, tx: Tx, job: { id: string; queue: string }, extraUsed: number, now: number): Promise<boolean> {
  return extraUsed < c.trust.extraReplicasMax && (await anotherVoterServes(c, tx, job.id, job.queue, now));
}

/** Whether every worker of the winning attempts is on probation (fewer valid judged results than probationValidMin). */
async function onlyProbationWon(c: Context, tx: Tx, done: readonly Row[], valid: readonly string[]): Promise<boolean> {
  if (c.trust.probationMarginBonus === 0) return false;
  const winners = new Set(valid);
  const ids = [...new Set(done.filter((r) => winners.has(String(r.id))).map((r) => String(r.worker_id)))];
  const rows = await tx.all(`SELECT valid_count FROM workers WHERE id ${c.d.inList('$1')}`, [ids]);
  return rows.every((w) => isOnProbation(c, w));
}

/** Why a split vote ended without the replicas it could still add. */
const NO_OTHER_VOTER = (queue: string): string => `no connected worker that serves ${queue} and has not voted could add a replica`;

/** A vote that cannot be decided: every result is rejected, and no worker is judged. */
async function noQuorum(c: Context, tx: Tx, jobId: string, reason: string): Promise<Change[]> {
  const error = { code: 'NO_QUORUM', message: clipMessage(reason) };
  await tx.run(`UPDATE attempts SET state = 'rejected', error = $2 WHERE job_id = $1 AND state = 'completed'`, [jobId, J(error)]);
  const discards = await outputsOf(tx, jobId, null);
  return withDiscards(await endJob(c, tx, jobId, 'failed', error), jobId, discards);
}

/** One more replica for a split vote: the job wants another attempt, placed on a worker (and operator) that has not voted. */
async function addReplica(tx: Tx, jobId: string, live: number, now: number): Promise<Change[]> {
  await tx.run(
    `UPDATE jobs SET want = want + 1, extra_replicas = extra_replicas + 1,
       state = CASE WHEN live > 0 THEN 'running' ELSE 'queued' END, updated_at = $1
     WHERE id = $2`,
    [now, jobId],
  );
  tx.wake();
  return live > 0 ? [] : [{ jobId, state: 'queued', cancelledAttempts: [] }];
}

/** Trace verification: attempts without a usable trace are rejected outright; the rest are compared. */
async function judgeTraces(
  c: Context,
  tx: Tx,
  jobId: string,
  done: readonly Row[],
  tolerance: number,
  now: number,
): Promise<{ kind: 'stop'; changes: Change[] } | { kind: 'split'; changes: Change[]; accepted: Row[] }> {
  const withTraces = done.map((r) => ({ row: r, trace: r.trace === null ? null : (JSON.parse(String(r.trace)) as Trace) }));
  const split = splitByTrace(withTraces, tolerance, c.trust.traceWaypoints);
  if (split.kind === 'tie') {
    // Clusters too close to call are no verdict: another replica, within the bound, may tell them apart.
    const row = await tx.get('SELECT queue, live, extra_replicas FROM jobs WHERE id = $1', [jobId]);
    assert(row, 'a tallied job exists');
    const extraUsed = Number(row.extra_replicas);
    if (await roomForVoter(c, tx, { id: jobId, queue: String(row.queue) }, extraUsed, now)) {
      return { kind: 'stop', changes: await addReplica(tx, jobId, Number(row.live), now) };
    }
    const why = extraUsed < c.trust.extraReplicasMax ? NO_OTHER_VOTER(String(row.queue)) : extraReplicasSpent(c.trust.extraReplicasMax);
    return { kind: 'stop', changes: await noQuorum(c, tx, jobId, `resource traces: ${split.reason}; ${why}`) };
  }
  const changes: Change[] = [];
  for (const [i, { row }] of split.rejected.entries()) {
    await rejectAttempt(tx, String(row.id), { code: 'TRACE_REJECTED', message: clipMessage(split.why[i]!) });
    changes.push(...(await judgeWorker(c, tx, String(row.worker_id), 'invalid', now)));
  }
  return { kind: 'split', changes, accepted: split.accepted.map((x) => x.row) };
}

/** A result that does not count: its attempt ends rejected, with why (listed with the job's attempts). */
export async function rejectAttempt(tx: Tx, attemptId: string, error: JobError): Promise<void> {
  await tx.run(`UPDATE attempts SET state = 'rejected', error = $2 WHERE id = $1`, [attemptId, J(error)]);
}
