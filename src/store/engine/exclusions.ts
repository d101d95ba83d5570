// Which workers may not take another attempt of a job: those that hold or
// answered one of this round's attempts (replicas never share a worker, a
// worker votes once), the worker whose result a verification job checks, and,
// for a job whose replicas go to distinct operators (BOINC's
// one_result_per_user_per_wu), every worker of an operator already among them,
// as long as some other operator's worker could take the job; and workers on
// probation with too much of such work unjudged. Decided once, for every backend.
import { operatorKey } from '../claiming.ts';
import type { Row } from '../rows.ts';
import { EXCLUDING, type Context, type Tx } from './sql.ts';


/** The SQL form of operatorKey, over the workers table. */
const OPERATOR_KEY_SQL = `(CASE WHEN operator IS NULL THEN 'worker:' || id ELSE 'operator:' || operator END)`;

interface Voter {
  workerId: string;
  operator: string;
}

/**
 * Per job (its candidate row), the workers that may not take another of its
 * attempts. `claimWorkers`: the rows of the workers this claim places on;
 * `probation`: those of them that take no more replicated or verified work
 * until a verdict on what they did (credit.ts, onProbation).
 */
export async function excludedWorkers(
  c: Context,
  tx: Tx,
  jobRows: readonly Row[],
  claimWorkers: readonly Row[],
  probation: ReadonlyMap<string, number>,
  now: number,
): Promise<Map<string, string[]>> {
  const voters = await votersOf(c, tx, jobRows);
  const out = new Map<string, string[]>();
  const othersCache = new Map<string, boolean>();
  for (const r of jobRows) {
    const jobId = String(r.id);
    const list = voters.get(jobId) ?? [];
    const ids = new Set(list.map((v) => v.workerId));
    if (String(r.distinct_by) === 'operator' && list.length > 0) {
      for (const id of await sameOperator(c, tx, r, list, claimWorkers, now, othersCache)) ids.add(id);
    }
    // Probation holds a worker back from starting such a job, never from a vote under way: that would deadlock a pool of new workers.
    if (startsGuarded(r) && list.length === 0) for (const [id, left] of probation) if (left <= 0) ids.add(id);
    if (ids.size > 0) out.set(jobId, [...ids].sort());
  }
  return out;
}

/** A replicated or verified job none of whose attempts is placed yet: probation bounds how many of these a new worker starts. */
export function startsGuarded(r: Row): boolean {
  const guarded = Number(r.replicas) > 1 || (r.verify !== null && r.verify !== undefined);
  return guarded && Number(r.want) >= Number(r.replicas);
}

/** This round's voters of each job (and the worker a verification job checks), with their operators. */
async function votersOf(c: Context, tx: Tx, jobRows: readonly Row[]): Promise<Map<string, Voter[]>> {
  const out = new Map<string, Voter[]>();
  if (jobRows.length === 0) return out;
  const verifying = jobRows.filter((r) => r.verifies_attempt_id !== null && r.verifies_attempt_id !== undefined);
  const rows = await tx.all(
    `SELECT x.job_id, x.worker_id, w.operator FROM (
       SELECT DISTINCT job_id, worker_id FROM (
         SELECT a.job_id, a.worker_id FROM jobs j JOIN attempts a ON a.job_id = j.id
         WHERE j.id ${c.d.inList('$1')} AND a.state IN ${EXCLUDING} AND a.seq > j.round_seq
         UNION ALL
         SELECT j.id, a.worker_id FROM jobs j JOIN attempts a ON a.id = j.verifies_attempt_id
         WHERE j.id ${c.d.inList('$2')}
       ) y
     ) x LEFT JOIN workers w ON w.id = x.worker_id ORDER BY x.job_id, x.worker_id`,
    [jobRows.map((r) => String(r.id)), verifying.map((r) => String(r.id))],
  );
  for (const r of rows) {
    const v = { workerId: String(r.worker_id), operator: operatorKey(String(r.worker_id), r.operator) };
    const list = out.get(String(r.job_id));
    if (list) list.push(v);
    else out.set(String(r.job_id), [v]);
  }
  return out;
}

/**
 * The claim's workers whose operator already voted on the job, when another
 * operator could still take it: one of the claim's own workers serving its
 * queue, or else (asked once per queue and operator set) a connected, eligible
 * worker anywhere that serves it. When none could, the job falls back to
 * distinct workers rather than wait for ever.
 */
async function sameOperator(
  c: Context,
  tx: Tx,
  job: Row,
  voters: readonly Voter[],
  claimWorkers: readonly Row[],
  now: number,
  cache: Map<string, boolean>,
): Promise<string[]> {
  const taken = new Set(voters.map((v) => v.operator));
  const queue = String(job.queue);
  const serves = (w: Row): boolean => Object.hasOwn(JSON.parse(String(w.queues)) as object, queue);
  const same = claimWorkers.filter((w) => taken.has(operatorKey(String(w.id), w.operator))).map((w) => String(w.id));
  if (same.length === 0) return [];
  if (claimWorkers.some((w) => !taken.has(operatorKey(String(w.id), w.operator)) && serves(w))) return same;
  const key = `${queue}\n${[...taken].sort().join('\n')}`;
  let others = cache.get(key);
  if (others === undefined) {
    others = await otherOperatorServes(c, tx, queue, [...taken], now);
    cache.set(key, others);
  }
  return others ? same : [];
}

/** A LIKE pattern matching a workers.queues text that serves `queue`. */
function servesPattern(queue: string): string {
  return `%${JSON.stringify(queue).replace(/[\\%_]/g, (ch) => `\\${ch}`)}:%`;
}

/** Connected workers that may take work and serve the queue (`$1` now less offlineAfterMs, `$2` the pattern). */
const CAN_SERVE = `connected = 1 AND draining = 0 AND quarantined = 0 AND last_seen_at >= $1 AND queues LIKE $2 ESCAPE '\\'`;

/** Whether a connected worker that may take work, of an operator not in `taken`, serves `queue`. */
async function otherOperatorServes(c: Context, tx: Tx, queue: string, taken: readonly string[], now: number): Promise<boolean> {
  const row = await tx.get(`SELECT 1 AS one FROM workers WHERE ${CAN_SERVE} AND ${OPERATOR_KEY_SQL} ${c.d.notInList('$3')} LIMIT 1`, [
    now - c.offlineAfterMs,
    servesPattern(queue),
    [...taken],
  ]);
  return row !== undefined;
}

/**
 * Whether a replica added to a split vote could be placed at all: a connected
 * worker that serves the job's queue and has not voted in this round. When
 * none is, the vote cannot be decided and the job ends NO_QUORUM rather than wait.
 */
export async function anotherVoterServes(c: Context, tx: Tx, jobId: string, queue: string, now: number): Promise<boolean> {
  const row = await tx.get(
    `SELECT 1 AS one FROM workers WHERE ${CAN_SERVE} AND id NOT IN (
       SELECT a.worker_id FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.id = $3 AND a.state IN ${EXCLUDING} AND a.seq > j.round_seq
     ) LIMIT 1`,
    [now - c.offlineAfterMs, servesPattern(queue), jobId],
  );
  return row !== undefined;
}
