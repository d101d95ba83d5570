// Reads that change nothing: listings, counts and run-time statistics.
import { idFactory } from '../../types/ids.ts';
import { LIMITS } from '../../types/limits.ts';
import type { Attempt, Job } from '../../types/model.ts';
import type { JobState } from '../../types/states.ts';
import { attemptFromRow, decodeCursor, emptyCounts, encodeCursor } from '../rows.ts';
import type { JobPage, ListJobsParams, QueueArrivals, QueueCounts, QueueEdges, QueueRunStats } from '../store.ts';
import { jobFromRow } from './columns.ts';
import { LIVE, type Context, type Exec, type Param } from './sql.ts';

export async function getJob(x: Exec, id: string): Promise<Job | null> {
  const row = await x.get('SELECT * FROM jobs WHERE id = $1', [id]);
  return row ? jobFromRow(row) : null;
}

export async function listJobs(c: Context, x: Exec, params: ListJobsParams): Promise<JobPage> {
  const where: string[] = [];
  const args: Param[] = [];
  const arg = (v: Param): string => (args.push(v), `$${args.length}`);
  if (params.queue !== undefined) where.push(`queue = ${arg(params.queue)}`);
  if (params.state !== undefined) where.push(`state = ${arg(params.state)}`);
  if (params.label !== undefined) where.push(`${c.d.jsonText('labels', arg(params.label.key))} = ${arg(params.label.value)}`);
  if (params.filler !== undefined) where.push(`filler = ${arg(params.filler ? 1 : 0)}`);
  if (params.workerId !== undefined) where.push(`EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = jobs.id AND a.worker_id = ${arg(params.workerId)})`);
  if (params.cursor !== undefined) where.push(`id < ${arg(decodeCursor(params.cursor))}`);
  const limit = Math.max(1, Math.min(params.limit, LIMITS.listMaxJobs));
  const sql = `SELECT * FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ${arg(limit + 1)}`;
  const rows = await x.all(sql, args);
  const jobs = rows.slice(0, limit).map(jobFromRow);
  const last = jobs[jobs.length - 1];
  return { jobs, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}

export async function listAttempts(x: Exec, jobId: string): Promise<Attempt[]> {
  return (await x.all('SELECT * FROM attempts WHERE job_id = $1 ORDER BY seq, id', [jobId])).map(attemptFromRow);
}

export async function listLiveAttempts(x: Exec, workerId: string): Promise<Attempt[]> {
  return (await x.all(`SELECT * FROM attempts WHERE worker_id = $1 AND state IN ${LIVE} ORDER BY id`, [workerId])).map(attemptFromRow);
}

export async function nextRunAt(c: Context, x: Exec, afterMs?: number): Promise<number | null> {
  const row = await x.get('SELECT min(run_at) AS t FROM jobs WHERE want > 0 AND run_at > $1', [Math.min(afterMs ?? Infinity, c.clock.now())]);
  return row?.t === null || row?.t === undefined ? null : Number(row.t);
}

export async function queueCounts(x: Exec): Promise<QueueCounts[]> {
  const byQueue = new Map<string, QueueCounts>();
  for (const r of await x.all('SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state ORDER BY queue, state')) {
    const name = String(r.queue);
    let entry = byQueue.get(name);
    if (!entry) {
      entry = { queue: name, counts: emptyCounts(), fillerQueued: 0 };
      byQueue.set(name, entry);
    }
    entry.counts[r.state as JobState] = Number(r.n);
  }
  // Queued filler jobs (index jobs_filler_queued): a queue has some only when it has queued jobs.
  for (const r of await x.all(`SELECT queue, count(*) AS n FROM jobs WHERE filler = 1 AND state = 'queued' GROUP BY queue`)) {
    const entry = byQueue.get(String(r.queue));
    if (entry) entry.fillerQueued = Number(r.n);
  }
  return [...byQueue.values()];
}

// The newest finished attempts of the queue (index attempts_queue_finished), then, over the
// completed ones, the mean and the nearest-rank 95th percentile: the smallest run time whose
// rank r among n satisfies r >= 0.95 n, written r * 100 >= 95 * n to stay in integers.
const QUEUE_STATS_SQL = `
  WITH recent AS (
    SELECT finished_at - leased_at AS ms, finished_at, CASE WHEN state IN ('completed', 'rejected') THEN 1 ELSE 0 END AS ok
    FROM attempts
    WHERE queue = $1 AND finished_at >= $2 AND state IN ('completed', 'rejected', 'failed', 'lost')
    ORDER BY finished_at DESC LIMIT $3
  ), ranked AS (
    SELECT ms, ok, finished_at, row_number() OVER (PARTITION BY ok ORDER BY ms) AS rn, sum(ok) OVER () AS n_ok
    FROM recent
  )
  SELECT count(*) AS n, coalesce(sum(ok), 0) AS completed, avg(CASE WHEN ok = 1 THEN ms END) AS mean_ms,
    min(CASE WHEN ok = 1 AND rn * 100 >= 95 * n_ok THEN ms END) AS p95_ms, min(finished_at) AS oldest
  FROM ranked`;

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export async function queueStats(x: Exec, params: { queues: readonly string[]; sinceMs: number; sampleMaxRows: number }): Promise<QueueRunStats[]> {
  const sample = Math.max(1, Math.min(params.sampleMaxRows, LIMITS.queueStatsSampleMaxRows));
  const out: QueueRunStats[] = [];
  for (const queue of new Set(params.queues)) {
    const r = await x.get(QUEUE_STATS_SQL, [queue, params.sinceMs, sample]);
    const n = Number(r?.n ?? 0);
    const completed = Number(r?.completed ?? 0);
    out.push({
      queue,
      completed,
      failed: n - completed,
      runTimeMeanMs: numOrNull(r?.mean_ms),
      runTimeP95Ms: numOrNull(r?.p95_ms),
      sampledSinceMs: n >= sample ? Number(r?.oldest) : params.sinceMs,
    });
  }
  return out;
}

// The queue's oldest claimable jobs by id (index jobs_claim_age: queue, id, where want > 0),
// and among those ready now the earliest run_at. Bounded: a queue holding many delayed jobs
// older than its ready ones may show none ready.
const OLDEST_READY_SQL = `
  SELECT min(run_at) AS at FROM (
    SELECT run_at FROM jobs WHERE queue = $1 AND want > 0 ORDER BY id LIMIT $3
  ) s WHERE run_at <= $2`;

export async function oldestReady(x: Exec, queues: readonly string[], nowMs: number): Promise<{ queue: string; readyAt: number | null }[]> {
  const out: { queue: string; readyAt: number | null }[] = [];
  for (const queue of new Set(queues)) {
    const r = await x.get(OLDEST_READY_SQL, [queue, nowMs, LIMITS.oldestReadyScanMaxRows]);
    out.push({ queue, readyAt: numOrNull(r?.at) });
  }
  return out;
}

// ---- The advisor's reads ----

/** The smallest id the engine makes at `ms`: ids are ULIDs, so `id >= idFloorAt(ms)` is "created at or after ms" on an index. */
export function idFloorAt(ms: number): string {
  return idFactory({ now: () => Math.max(0, Math.floor(ms)) }, { next: () => 0 })();
}

// The newest jobs of the queue created since the floor (index jobs_queue: queue, id), counted.
const QUEUE_ARRIVALS_SQL = `
  SELECT count(*) AS n, min(created_at) AS oldest FROM (
    SELECT created_at FROM jobs WHERE queue = $1 AND id >= $2 AND created_at >= $3 ORDER BY id DESC LIMIT $4
  ) s`;

export async function queueArrivals(x: Exec, params: { queues: readonly string[]; sinceMs: number; sampleMaxRows: number }): Promise<QueueArrivals[]> {
  const sample = Math.max(1, Math.min(params.sampleMaxRows, LIMITS.adviceArrivalsSampleMaxRows));
  const out: QueueArrivals[] = [];
  for (const queue of new Set(params.queues)) {
    const r = await x.get(QUEUE_ARRIVALS_SQL, [queue, idFloorAt(params.sinceMs), params.sinceMs, sample]);
    const n = Number(r?.n ?? 0);
    out.push({ queue, submitted: n, sampledSinceMs: n >= sample ? Number(r?.oldest) : params.sinceMs });
  }
  return out;
}

// The newest jobs since the floor (primary key), their dependency rows (job_deps' primary key
// starts with parent_id) and the dependants (primary key), cut at $4 rows, counted per pair of queues.
// CROSS JOIN keeps SQLite's loops in that order (else it may scan job_deps); PostgreSQL plans it freely.
const QUEUE_EDGES_SQL = `
  WITH p AS (
    SELECT id, queue, created_at FROM jobs WHERE id >= $1 AND created_at >= $2 ORDER BY id DESC LIMIT $3
  ), n AS (
    SELECT queue, count(*) AS jobs FROM p GROUP BY queue
  ), e AS (
    SELECT p.queue AS from_q, c.queue AS to_q, p.id AS parent_id, c.id AS child_id
    FROM p CROSS JOIN job_deps d CROSS JOIN jobs c
    WHERE d.parent_id = p.id AND c.id = d.job_id
    LIMIT $4
  )
  SELECT e.from_q, e.to_q, count(*) AS deps, count(DISTINCT e.parent_id) AS parents, count(DISTINCT e.child_id) AS children, n.jobs AS from_jobs
  FROM e JOIN n ON n.queue = e.from_q
  GROUP BY e.from_q, e.to_q, n.jobs
  ORDER BY e.from_q, e.to_q`;

const QUEUE_EDGES_SAMPLE_SQL = `
  SELECT count(*) AS n, min(created_at) AS oldest FROM (
    SELECT created_at FROM jobs WHERE id >= $1 AND created_at >= $2 ORDER BY id DESC LIMIT $3
  ) s`;

export async function queueEdges(x: Exec, params: { sinceMs: number; sampleMaxJobs: number; maxRows: number }): Promise<QueueEdges> {
  const sample = Math.max(1, Math.min(params.sampleMaxJobs, LIMITS.adviceEdgesSampleMaxJobs));
  const maxRows = Math.max(1, Math.min(params.maxRows, LIMITS.adviceEdgesMaxRows));
  const floor = idFloorAt(params.sinceMs);
  const rows = await x.all(QUEUE_EDGES_SQL, [floor, params.sinceMs, sample, maxRows]);
  const edges = rows.map((r) => ({
    from: String(r.from_q),
    to: String(r.to_q),
    deps: Number(r.deps),
    parents: Number(r.parents),
    children: Number(r.children),
    fromJobs: Number(r.from_jobs),
  }));
  const s = await x.get(QUEUE_EDGES_SAMPLE_SQL, [floor, params.sinceMs, sample]);
  const n = Number(s?.n ?? 0);
  const deps = edges.reduce((sum, e) => sum + e.deps, 0);
  return { edges, sampledSinceMs: n >= sample ? Number(s?.oldest) : params.sinceMs, truncated: deps >= maxRows };
}
