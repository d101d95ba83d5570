// Queue history in the store: per queue, minute rows that coordinators add
// into (an additive upsert, so several coordinators share the rows), rolled up
// into hour rows past a bound, and hour rows dropped past a retention. A read
// sums rows into points of the step asked for, so an hour read also counts
// the minutes not rolled up yet.
import { LIMITS } from '../../types/limits.ts';
import {
  HISTORY_BUCKETS,
  HISTORY_COUNTERS,
  HOUR_MS,
  MINUTE_MS,
  emptyPoint,
  stepStart,
  type HistoryPoint,
  type TrustPoint,
} from '../../types/history.ts';
import type { Row } from '../rows.ts';
import type { HistoryRollUpParams, HistoryRollUpResult, ReadHistoryParams } from '../store.ts';
import type { Context, Exec, Param, Tx } from './sql.ts';

const bucketColumns = (kind: 'wait' | 'run'): string[] => [`${kind}_sum_ms`, ...Array.from({ length: HISTORY_BUCKETS }, (_, i) => `${kind}_b${i}`)];

/** The additive columns, in the order pointValues gives them. */
export const HISTORY_VALUE_COLUMNS: readonly string[] = [...HISTORY_COUNTERS, ...bucketColumns('wait'), ...bucketColumns('run')];

function pointValues(p: HistoryPoint): number[] {
  return [...HISTORY_COUNTERS.map((k) => p.counts[k]), p.wait.sumMs, ...p.wait.buckets, p.run.sumMs, ...p.run.buckets];
}

function pointFromRow(queue: string, at: number, r: Row): HistoryPoint {
  const p = emptyPoint(queue, at);
  const v = HISTORY_VALUE_COLUMNS.map((col) => Number(r[col] ?? 0));
  let i = 0;
  for (const k of HISTORY_COUNTERS) p.counts[k] = v[i++]!;
  p.wait.sumMs = v[i++]!;
  for (let b = 0; b < HISTORY_BUCKETS; b++) p.wait.buckets[b] = v[i++]!;
  p.run.sumMs = v[i++]!;
  for (let b = 0; b < HISTORY_BUCKETS; b++) p.run.buckets[b] = v[i++]!;
  return p;
}

const UPSERT_SQL = `INSERT INTO queue_history (queue, step_ms, at_ms, ${HISTORY_VALUE_COLUMNS.join(', ')})
  VALUES ($1, $2, $3, ${HISTORY_VALUE_COLUMNS.map((_, i) => `$${i + 4}`).join(', ')})
  ON CONFLICT (queue, step_ms, at_ms) DO UPDATE SET
  ${HISTORY_VALUE_COLUMNS.map((col) => `${col} = queue_history.${col} + excluded.${col}`).join(', ')}`;

/** Adds points into the rows of their step, in (queue, at) order so that concurrent writers lock rows in one order. */
export async function addPoints(tx: Tx, stepMs: number, points: readonly HistoryPoint[]): Promise<void> {
  const sorted = [...points].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : a.at - b.at));
  for (const p of sorted) {
    await tx.run(UPSERT_SQL, [p.queue, stepMs, stepStart(p.at, stepMs), ...pointValues(p)]);
  }
}

export async function readHistory(x: Exec, params: ReadHistoryParams): Promise<HistoryPoint[]> {
  const stepMs = params.step === 'hour' ? HOUR_MS : MINUTE_MS;
  const from = stepStart(params.fromMs, stepMs);
  const max = Math.max(0, Math.min(params.maxPoints, LIMITS.historyMaxPoints));
  const rows = await x.all(
    // The step is cast: SQLite may bind a number as REAL, which would make the division exact.
    `SELECT queue, (at_ms / CAST($4 AS BIGINT)) * CAST($4 AS BIGINT) AS at, ${HISTORY_VALUE_COLUMNS.map((col) => `sum(${col}) AS ${col}`).join(', ')}
     FROM queue_history WHERE (CAST($1 AS TEXT) IS NULL OR queue = $1) AND at_ms >= $2 AND at_ms < $3 AND step_ms <= $4
     GROUP BY queue, 2 ORDER BY 2 DESC, queue DESC LIMIT $5`,
    [params.queue ?? null, from, params.toMs, stepMs, max],
  );
  // Cut at the bound, the newest points are kept; they are returned oldest first.
  return rows.reverse().map((r) => pointFromRow(String(r.queue), Number(r.at), r));
}

/**
 * Trust points: attempts rejected by a verdict, by the step their attempt
 * finished in, and reliability checks failed, by the step they were judged
 * in. Both are counted from their own rows (no counters to keep in step).
 */
export async function readTrustHistory(x: Exec, params: ReadHistoryParams): Promise<TrustPoint[]> {
  const stepMs = params.step === 'hour' ? HOUR_MS : MINUTE_MS;
  const from = stepStart(params.fromMs, stepMs);
  const max = Math.max(0, Math.min(params.maxPoints, LIMITS.historyMaxPoints));
  const args: Param[] = [params.queue ?? null, from, params.toMs, stepMs, max];
  const bucket = (col: string): string => `(${col} / CAST($4 AS BIGINT)) * CAST($4 AS BIGINT)`;
  const invalid = await x.all(
    `SELECT queue, ${bucket('finished_at')} AS at, count(*) AS n FROM attempts
     WHERE state = 'rejected' AND finished_at >= $2 AND finished_at < $3 AND (CAST($1 AS TEXT) IS NULL OR queue = $1)
     GROUP BY queue, 2 ORDER BY 2 DESC, queue DESC LIMIT $5`,
    args,
  );
  const checks = await x.all(
    `SELECT queue, ${bucket('updated_at')} AS at, count(*) AS n FROM worker_checks
     WHERE state = 'failed' AND updated_at >= $2 AND updated_at < $3 AND (CAST($1 AS TEXT) IS NULL OR queue = $1)
     GROUP BY queue, 2 ORDER BY 2 DESC, queue DESC LIMIT $5`,
    args,
  );
  const points = new Map<string, TrustPoint>();
  const add = (r: Row, key: 'invalid' | 'failedChecks'): void => {
    const queue = String(r.queue);
    const at = Number(r.at);
    const id = `${at}\u0000${queue}`;
    const p = points.get(id) ?? { queue, at, invalid: 0, failedChecks: 0 };
    p[key] += Number(r.n);
    points.set(id, p);
  };
  for (const r of invalid) add(r, 'invalid');
  for (const r of checks) add(r, 'failedChecks');
  // The newest `max` points, returned oldest first (as readHistory).
  const sorted = [...points.values()].sort((a, b) => a.at - b.at || (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
  return sorted.slice(Math.max(0, sorted.length - max));
}

/**
 * Rolls minute rows of whole hours older than the bound into hour rows, and
 * drops hour rows older than the retention; at most `limit` rows of each per
 * call. The minute rows are deleted by the statement that returns them, so
 * two coordinators rolling up at once never add a minute twice (PostgreSQL
 * skips rows the other holds; SQLite runs one write at a time).
 */
export async function rollUpHistory(c: Context, tx: Tx, params: HistoryRollUpParams): Promise<HistoryRollUpResult> {
  const limit = Math.min(params.limit, LIMITS.sweepBatchMaxRows);
  const cut = stepStart(params.minutesBeforeMs, HOUR_MS);
  const pick = (step: number, before: string): string =>
    `DELETE FROM queue_history WHERE step_ms = ${step} AND at_ms < ${before} AND (queue, step_ms, at_ms) IN (
       SELECT queue, step_ms, at_ms FROM queue_history WHERE step_ms = ${step} AND at_ms < ${before}
       ORDER BY at_ms, queue LIMIT $2${c.d.skipLocked})`;
  const minutes = await tx.all(`${pick(MINUTE_MS, '$1')} RETURNING *`, [cut, limit] as Param[]);
  const hours = new Map<string, HistoryPoint>();
  for (const r of minutes) {
    const queue = String(r.queue);
    const at = stepStart(Number(r.at_ms), HOUR_MS);
    const key = `${queue}\u0000${at}`;
    const m = pointFromRow(queue, at, r);
    const h = hours.get(key);
    if (!h) hours.set(key, m);
    else addInto(h, m);
  }
  await addPoints(tx, HOUR_MS, [...hours.values()]);
  const dropped = await tx.run(pick(HOUR_MS, '$1'), [params.hoursBeforeMs, limit]);
  return { rolledUpMinutes: minutes.length, droppedHours: dropped };
}

function addInto(into: HistoryPoint, p: HistoryPoint): void {
  for (const k of HISTORY_COUNTERS) into.counts[k] += p.counts[k];
  into.wait.sumMs += p.wait.sumMs;
  into.run.sumMs += p.run.sumMs;
  for (let b = 0; b < HISTORY_BUCKETS; b++) {
    into.wait.buckets[b]! += p.wait.buckets[b]!;
    into.run.buckets[b]! += p.run.buckets[b]!;
  }
}

/** The queues of the given jobs and attempts (ids of both kinds are unique across the two); unknown ids are left out. */
export async function queuesOf(c: Context, x: Exec, ids: readonly string[]): Promise<{ id: string; queue: string }[]> {
  if (ids.length === 0) return [];
  const list = [...new Set(ids)].slice(0, LIMITS.historyResolveBatchMaxJobs);
  const rows = await x.all(
    `SELECT id, queue FROM jobs WHERE id ${c.d.inList('$1')} UNION ALL SELECT id, queue FROM attempts WHERE id ${c.d.inList('$1')}`,
    [list],
  );
  return rows.map((r) => ({ id: String(r.id), queue: String(r.queue) }));
}
