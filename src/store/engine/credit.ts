// Slow start: how many attempts a worker may hold at once. A new record may
// hold creditInitialSlots; each attempt it completes adds one, each it loses
// or overruns halves it; it gets the lesser of its credit and its declared
// slots. Completions are never written to the worker's row on the hot path:
// the row keeps credit and completed_count as of credit_at, and the attempts
// completed from credit_at on are counted when a claim of a worker still in
// slow start, a listing of such a worker, or a lost attempt needs them. Each
// count moves credit_at past the time it was made, so no completion counts
// twice; one finishing in the very millisecond of a count may go uncounted,
// which only ever leaves a worker less credit. Decided once, for every backend.
import { creditAfterCompleted, creditAfterLost, lostWorkReason } from '../../trust/index.ts';
import type { Row } from '../rows.ts';
import type { Context, Exec, Tx } from './sql.ts';

/** Attempt states that mean the worker finished the work (a result came in, whatever its verdict). */
const DONE = `('completed', 'rejected')`;

/** Slots a worker row declares over all its queues. */
export function declaredSlots(w: Row): number {
  return Object.values(JSON.parse(String(w.queues)) as Record<string, number>).reduce((a, b) => a + b, 0);
}

/** A worker whose credit is below what it declares: its completions since credit_at still count. */
function inSlowStart(w: Row): boolean {
  return Number(w.credit) < declaredSlots(w);
}

/** Attempts each worker completed since its credit_at (one query for all). */
async function completedSince(c: Context, tx: Exec, ids: readonly string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows = await tx.all(
    `SELECT a.worker_id, count(*) AS n FROM attempts a JOIN workers w ON w.id = a.worker_id
     WHERE a.worker_id ${c.d.inList('$1')} AND a.state IN ${DONE} AND a.finished_at >= w.credit_at
     GROUP BY a.worker_id ORDER BY a.worker_id`,
    [[...ids]],
  );
  return new Map(rows.map((r) => [String(r.worker_id), Number(r.n)]));
}

/** Folds `n` completions into a row's counts: credit grows by one each. */
function grown(w: Row, n: number): { credit: number; completed: number } {
  let credit = Number(w.credit);
  for (let i = 0; i < n && credit < declaredSlots(w); i++) credit = creditAfterCompleted(credit);
  return { credit, completed: Number(w.completed_count) + n };
}

/** States of an attempt whose result is not judged yet while its job goes on. */
const UNJUDGED = `('leased', 'running', 'completed')`;

/** The join and condition of a worker's undecided attempts: of replicated or verified jobs still open (attempts `a`, jobs `j`). */
const UNDECIDED_FROM = `attempts a JOIN jobs j ON j.id = a.job_id`;
const UNDECIDED_WHERE = `a.state IN ${UNJUDGED} AND (j.replicas > 1 OR j.verify IS NOT NULL) AND j.state IN ('queued', 'running', 'verifying')`;

/** SQL: the count of undecided attempts of the worker whose id is the expression `workerId`. */
export function undecidedOf(workerId: string): string {
  return `(SELECT count(*) FROM ${UNDECIDED_FROM} WHERE a.worker_id = ${workerId} AND ${UNDECIDED_WHERE})`;
}

/** Whether a worker row is on probation: fewer valid judged results than probationValidMin. */
export function isOnProbation(c: Context, w: Row): boolean {
  return Number(w.valid_count) < c.trust.probationValidMin;
}

/**
 * Probation: the claim's workers with fewer than probationValidMin valid
 * judged results, each with how many attempts of replicated or verified jobs
 * it has undecided (running, or done and awaiting the other votes). With
 * probationUnjudgedMax of them it starts no such job; with
 * probationUndecidedMax it joins a vote under way only when no other worker
 * that could vote is below it (exclusions.ts). Other work it takes as usual.
 */
export async function onProbation(c: Context, tx: Tx, rows: readonly Row[]): Promise<Map<string, number>> {
  const ids = rows.filter((w) => isOnProbation(c, w)).map((w) => String(w.id));
  if (ids.length === 0) return new Map();
  const counts = await tx.all(
    `SELECT a.worker_id, count(*) AS n FROM ${UNDECIDED_FROM}
     WHERE a.worker_id ${c.d.inList('$1')} AND ${UNDECIDED_WHERE}
     GROUP BY a.worker_id ORDER BY a.worker_id`,
    [ids],
  );
  const undecided = new Map(counts.map((r) => [String(r.worker_id), Number(r.n)]));
  return new Map(ids.map((id) => [id, undecided.get(id) ?? 0]));
}

/**
 * The rows with completed_count and credit as they stand now (the completions
 * since credit_at folded in), for reading: nothing is written.
 */
export async function withCurrentCredit(c: Context, x: Exec, rows: readonly Row[]): Promise<Row[]> {
  const since = await completedSince(c, x, rows.filter(inSlowStart).map((w) => String(w.id)));
  return rows.map((w) => {
    const n = since.get(String(w.id)) ?? 0;
    if (n === 0) return w;
    const { credit, completed } = grown(w, n);
    return { ...w, credit, completed_count: completed };
  });
}

/**
 * Brings the credit of the claim's workers still in slow start (credit below
 * what they declare) up to date, under the rows' locks the claim holds, and
 * sets it on the rows the claim goes on with. Workers out of slow start cost nothing.
 */
export async function refreshCredit(c: Context, tx: Tx, rows: readonly Row[], now: number): Promise<void> {
  const starting = rows.filter(inSlowStart);
  const since = await completedSince(c, tx, starting.map((w) => String(w.id)));
  for (const w of starting) {
    const n = since.get(String(w.id)) ?? 0;
    if (n === 0) continue;
    const { credit, completed } = grown(w, n);
    await tx.run('UPDATE workers SET credit = $1, completed_count = $2, credit_at = $3 WHERE id = $4', [credit, completed, now + 1, String(w.id)]);
    w.credit = credit;
    w.completed_count = completed;
  }
}

/**
 * An attempt the worker lost (went silent) or overran counts against it: its
 * credit halves (after the completions since it was last counted), and past
 * the lost-work bound it is quarantined. The caller holds the worker's row
 * lock. Returns why it must now be quarantined, or null.
 */
export async function chargeLost(c: Context, tx: Tx, workerId: string, now: number): Promise<string | null> {
  const w = await tx.get('SELECT * FROM workers WHERE id = $1', [workerId]);
  if (!w) return null;
  const n = (await completedSince(c, tx, [workerId])).get(workerId) ?? 0;
  const { credit, completed } = grown(w, n);
  const timedOut = Number(w.timed_out_count) + 1;
  // One loss event halves it once: attempts lost together (in one sweep, one instant) count as one.
  const after = Number(w.credit_at) > now ? credit : creditAfterLost(credit);
  await tx.run('UPDATE workers SET timed_out_count = $1, credit = $2, completed_count = $3, credit_at = $4 WHERE id = $5', [
    timedOut,
    after,
    completed,
    now + 1,
    workerId,
  ]);
  if (Number(w.quarantined) === 1) return null;
  return lostWorkReason(timedOut, completed, c.trust);
}
