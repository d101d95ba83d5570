// Which workers may not take another attempt of a job: those that hold or
// answered one of this round's attempts (replicas never share a worker, a
// worker votes once), the worker whose result a verification job checks, and,
// for a job whose replicas go to distinct operators (BOINC's
// one_result_per_user_per_wu), every worker of an operator already among them,
// as long as some other operator's worker could take the job; and workers on
// probation with too much of such work undecided: they start none, and join a
// vote under way only when nobody below the bound could. Decided once, for every backend.
import { operatorKey } from '../claiming.ts';
import type { Row } from '../rows.ts';
import { LIMITS } from '../../types/limits.ts';
import { declaredSlots, undecidedOf } from './credit.ts';
import { EXCLUDING, type Context, type Tx } from './sql.ts';


/** The SQL form of operatorKey, over the workers table. */
const OPERATOR_KEY_SQL = `(CASE WHEN operator IS NULL THEN 'worker:' || id ELSE 'operator:' || operator END)`;

interface Voter {
  workerId: string;
  operator: string;
}

/** Per job, the workers that may not take another of its attempts; and the votes under way whose joins probation bounds. */
export interface Exclusions {
  excluded: Map<string, string[]>;
  /**
   * Votes under way that a worker on probation joins only below
   * probationUndecidedMax undecided attempts, since another worker that could
   * vote is below it: the claim counts its own placements against that bound.
   */
  bounded: Set<string>;
}

/**
 * Per job (its candidate row), the workers that may not take another of its
 * attempts. `claimWorkers`: the rows of the workers this claim places on;
 * `probation`: those of them on probation, with their undecided attempts of
 * replicated or verified jobs (credit.ts, onProbation).
 */
export async function excludedWorkers(
  c: Context,
  tx: Tx,
  jobRows: readonly Row[],
  claimWorkers: readonly Row[],
  probation: ReadonlyMap<string, number>,
  now: number,
): Promise<Exclusions> {
  const voters = await votersOf(c, tx, jobRows);
  const out: Exclusions = { excluded: new Map(), bounded: new Set() };
  const othersCache = new Map<string, boolean>();
  const joins = joinBound(c, tx, claimWorkers, probation, now);
  for (const r of jobRows) {
    const jobId = String(r.id);
    const list = voters.get(jobId) ?? [];
    const ids = new Set(list.map((v) => v.workerId));
    if (String(r.distinct_by) === 'operator' && list.length > 0) {
      for (const id of await sameOperator(c, tx, r, list, claimWorkers, now, othersCache)) ids.add(id);
    }
    if (startsGuarded(r) && list.length === 0) {
      // Probation holds a worker back from starting such a job at probationUnjudgedMax undecided.
      for (const [id, n] of probation) if (n >= c.trust.probationUnjudgedMax) ids.add(id);
    } else if (isGuarded(r) && list.length > 0 && (await joins.bounds(r, list))) {
      out.bounded.add(jobId);
      for (const id of joins.full) ids.add(id);
    }
    if (ids.size > 0) out.excluded.set(jobId, [...ids].sort());
  }
  return out;
}

/** A replicated or verified job: probation bounds how many of these a new worker has undecided. */
export function isGuarded(r: Row): boolean {
  return Number(r.replicas) > 1 || (r.verify !== null && r.verify !== undefined);
}

/** A replicated or verified job none of whose attempts is placed yet: probation bounds how many of these a new worker starts. */
export function startsGuarded(r: Row): boolean {
  return isGuarded(r) && Number(r.want) >= Number(r.replicas);
}

/**
 * The bound on joining votes under way. `full`: the claim's workers on
 * probation at probationUndecidedMax undecided attempts. `bounds(job)`: when
 * some worker of the claim could reach that bound in this claim, whether
 * another worker (not one of those) that could take the vote's next replica
 * is below it or off probation; then the full ones are held back, and the
 * claim counts the rest.
 * Otherwise the vote takes whoever comes: a pool of new workers does not wait
 * on itself. The workers that could vote are read once per queue.
 */
function joinBound(c: Context, tx: Tx, claimWorkers: readonly Row[], probation: ReadonlyMap<string, number>, now: number) {
  const max = c.trust.probationUndecidedMax;
  const full = [...probation].filter(([, n]) => n >= max).map(([id]) => id);
  const slots = new Map(claimWorkers.map((w) => [String(w.id), declaredSlots(w)]));
  const near = new Set([...probation].filter(([id, n]) => n + (slots.get(id) ?? 0) > max).map(([id]) => id));
  const read = new Map<string, Promise<Voter[]>>();
  const bounds = async (job: Row, list: readonly Voter[]): Promise<boolean> => {
    if (near.size === 0) return false;
    const queue = String(job.queue);
    if (!read.has(queue)) read.set(queue, freeVoters(c, tx, queue, now));
    // The claim's own workers that may reach the bound in it are not the others who could vote instead.
    const voted = new Set([...list.map((v) => v.workerId), ...near]);
    const operators = String(job.distinct_by) === 'operator' ? new Set(list.map((v) => v.operator)) : new Set<string>();
    return (await read.get(queue)!).some((w) => !voted.has(w.workerId) && !operators.has(w.operator));
  };
  return { full, bounds };
}

/**
 * Up to probationPeersReadMax connected workers that may take work of
 * `queue` (none of them failing or still taking its reliability check) and
 * vote without the bound: off probation, or below probationUndecidedMax
 * undecided attempts. More than any one vote has voters, so one of them has
 * not voted, unless distinct operators leave them all out; then the vote
 * takes whoever comes.
 */
async function freeVoters(c: Context, tx: Tx, queue: string, now: number): Promise<Voter[]> {
  const rows = await tx.all(
    `SELECT id, operator FROM workers WHERE ${CAN_SERVE}
       AND (valid_count >= $3 OR ${undecidedOf('workers.id')} < $4)
       AND NOT EXISTS (SELECT 1 FROM worker_checks k WHERE k.worker_id = workers.id AND k.queue = $5 AND k.state <> 'passed')
     LIMIT $6`,
    [now - c.offlineAfterMs, servesPattern(queue), c.trust.probationValidMin, c.trust.probationUndecidedMax, queue, LIMITS.probationPeersReadMax],
  );
  return rows.map((r) => ({ workerId: String(r.id), operator: operatorKey(String(r.id), r.operator) }));
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
