// PostgreSQL's named queries: the forms it measured faster than the engine's
// general ones (each checked by the conformance suite, with fastPaths off, to
// end in the same state). Each is one statement over a whole batch, bound as
// typed arrays (unnest), so a batch costs one round trip.
import { assert } from '../../types/errors.ts';
import type { Assignment } from '../../types/model.ts';
import { assignmentOf, PRIORITY_FLOOR, SHARE_CHARS, SHARE_FROM_CHAR } from '../claiming.ts';
import { CANDIDATE_COLUMNS, INSERT_COLUMNS, insertValues, type NewJobRow } from '../engine/columns.ts';
import { perJob, type CandidatePage, type WriteLeases } from '../engine/claim.ts';
import type { InsertJobs } from '../engine/jobs.ts';
import { J, type Param } from '../engine/sql.ts';
import type { Row } from '../rows.ts';

export const INSERT_JOBS_SQL = `
  INSERT INTO jobs (${INSERT_COLUMNS.map((c) => c.name).join(', ')})
  SELECT * FROM unnest(${INSERT_COLUMNS.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ')})
  ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING *`;

/** New jobs' values as one array per column, for INSERT_JOBS_SQL. */
export function insertArrays(rows: readonly NewJobRow[]): Param[] {
  const values = rows.map(insertValues);
  return INSERT_COLUMNS.map((_, k) => values.map((v) => v[k] ?? null) as unknown as Param);
}

export const insertJobsUnnest: InsertJobs = async (tx, rows) => {
  const out = new Map<string, Row>();
  for (const r of await tx.all(INSERT_JOBS_SQL, insertArrays(rows))) out.set(String(r.id), r);
  return out;
};

/**
 * A batch of jobs with no idempotency keys and no dependencies in one
 * statement (one round trip, no BEGIN/COMMIT): insert them, and NOTIFY the
 * other coordinators when one is claimable. Parameters: INSERT_JOBS_SQL's,
 * then the NOTIFY channel and payload.
 */
export const SUBMIT_PLAIN_SQL = `
  WITH ins AS (${INSERT_JOBS_SQL}),
  n AS (SELECT pg_notify($${INSERT_COLUMNS.length + 1}, $${INSERT_COLUMNS.length + 2}) WHERE EXISTS (SELECT 1 FROM ins WHERE want > 0))
  SELECT ins.*, (SELECT count(*) FROM n) AS notified FROM ins`;

const CANDIDATE_WHERE = `want > 0 AND queue = q.name AND run_at <= $2 AND (deadline_at > $2 OR backup_of IS NOT NULL)
        AND req_cores <= $3 AND req_memory_mb <= $4 AND req_gpus <= $5
        AND req_labels <> ALL($9::text[])
        AND ($10::text[] IS NULL OR affinity_mode IS DISTINCT FROM 'require' OR affinity_key = ANY($10::text[]))
        AND ($11::text[] IS NULL OR substr(id, ${SHARE_FROM_CHAR}, ${SHARE_CHARS}) = ANY($11::text[]))
        AND priority > $12`;

/**
 * One page of candidates for every queue at once, locked FOR UPDATE SKIP
 * LOCKED: rows another coordinator's claim (or a settle in progress) holds are
 * passed over, not waited for. Per queue: the next page by priority, deadline
 * and age (jobs_claim), and on the first page also the oldest ready jobs
 * (jobs_claim_created). Parameters: $1 queues, $2 now, $3 cores, $4 memory,
 * $5 gpus, $6 page size, $7 offset, $8 how many oldest (0 after the first
 * page), $9 label sets left out, $10 the keys held (null: no key filter), $11
 * the shares read (null: all) and $12 the priority a job must be above.
 */
const CANDIDATES_SQL = `
  SELECT c.*, q.ord FROM unnest($1::text[]) WITH ORDINALITY AS q(name, ord)
  CROSS JOIN LATERAL (
    SELECT * FROM (
      SELECT 0 AS part, ${CANDIDATE_COLUMNS} FROM jobs WHERE ${CANDIDATE_WHERE}
      ORDER BY priority DESC, deadline_at, id LIMIT $6 OFFSET $7
      FOR UPDATE SKIP LOCKED) by_priority
    UNION ALL
    SELECT * FROM (
      SELECT 1 AS part, ${CANDIDATE_COLUMNS} FROM jobs WHERE ${CANDIDATE_WHERE}
      ORDER BY created_at, id LIMIT $8
      FOR UPDATE SKIP LOCKED) oldest
  ) c
  ORDER BY q.ord, c.part, CASE WHEN c.part = 0 THEN -c.priority END, CASE WHEN c.part = 0 THEN c.deadline_at END, c.created_at, c.id`;

export const candidatePageLateral: CandidatePage = async (tx, scope, filter, now, page, perPage) => {
  const rows = await tx.all(CANDIDATES_SQL, [
    scope.queues, now, scope.maxCores, scope.maxMemoryMb, scope.maxGpus, perPage, page * perPage, page === 0 ? perPage : 0,
    filter.excludedLabels, filter.heldKeys, filter.share, filter.priorityAbove ?? PRIORITY_FLOOR,
  ]);
  const perQueue = new Map<string, number>();
  for (const r of rows) if (Number(r.part) === 0) perQueue.set(String(r.queue), (perQueue.get(String(r.queue)) ?? 0) + 1);
  return { rows, more: [...perQueue.values()].some((n) => n === perPage) };
};

/**
 * A claim's writes in one statement: the placed jobs move to running (want,
 * live and attempts counted per job; an adaptive solo decision recorded) and
 * their attempts are inserted from what the update returns. $1 now; $2-$5 per
 * job: id, attempts placed, solo, decided; $6-$11 per placement: attempt id,
 * job id, worker id, lease, GPU ids (JSON), its number among its job's
 * placements. Returns the jobs' rows and how many attempts were inserted.
 */
const LEASE_SQL = `
  WITH u AS (
    UPDATE jobs AS j SET want = CASE WHEN v.solo = 1 THEN 0 ELSE j.want - v.n END, live = j.live + v.n,
      attempts = j.attempts + v.n, solo = greatest(j.solo, v.solo), adapted = greatest(j.adapted, v.decided),
      state = 'running', updated_at = $1
    FROM unnest($2::text[], $3::int[], $4::int[], $5::int[]) AS v(id, n, solo, decided)
    WHERE j.id = v.id AND j.want >= v.n AND j.state IN ('queued', 'running')
    RETURNING j.id, j.queue, j.payload, j.attempts, j.timeout_ms, j.heartbeat_timeout_ms, j.deadline_at, j.has_deadline,
      j.req_cores, j.req_memory_mb, j.req_gpus, j.labels, j.run_at, v.n
  ), ins AS (
    INSERT INTO attempts (id, job_id, worker_id, queue, seq, lease, gpu_ids, cores, memory_mb, heartbeat_timeout_ms,
      leased_at, heartbeat_at, lease_expires_at, timeout_at, state)
    SELECT p.attempt_id, p.job_id, p.worker_id, u.queue, u.attempts - u.n + p.k, p.lease, p.gpu_ids, u.req_cores,
      u.req_memory_mb, u.heartbeat_timeout_ms, $1, $1, $1 + u.heartbeat_timeout_ms, $1 + u.timeout_ms, 'leased'
    FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[]) AS p(attempt_id, job_id, worker_id, lease, gpu_ids, k)
    JOIN u ON u.id = p.job_id
    RETURNING 1
  )
  SELECT u.*, (SELECT count(*) FROM ins) AS inserted FROM u`;

export const writeLeasesBatch: WriteLeases = async (tx, plan, now) => {
  const n = perJob(plan);
  const ids = [...n.keys()];
  const { kept, made } = plan;
  const updated = await tx.all(LEASE_SQL, [
    now, ids, ids.map((id) => n.get(id)!), ids.map((id) => (plan.solo.has(id) ? 1 : 0)), ids.map((id) => (plan.decided.has(id) ? 1 : 0)),
    made.map((m) => m.attemptId), kept.map((p) => p.jobId), kept.map((p) => p.workerId), made.map((m) => m.lease),
    kept.map((p) => J(p.gpuIds)), made.map((m) => m.k),
  ]);
  assert(updated.length === n.size, 'a placed job still wants an attempt');
  assert(Number(updated[0]!.inserted) === kept.length, 'every placement gets its attempt');
  if (plan.soloSinceCheck.size > 0) {
    const changed = [...plan.soloSinceCheck.keys()].sort();
    await tx.run('UPDATE workers AS w SET solo_since_check = v.n FROM unnest($1::text[], $2::int[]) AS v(id, n) WHERE w.id = v.id', [
      changed,
      changed.map((id) => plan.soloSinceCheck.get(id)!),
    ]);
  }
  const jobs = new Map(updated.map((r) => [String(r.id), r]));
  return kept.map((p, i): Assignment => {
    const row = jobs.get(p.jobId)!;
    const m = made[i]!;
    return assignmentOf(row, p, { attemptId: m.attemptId, lease: m.lease, attempt: Number(row.attempts) - Number(row.n) + m.k }, now);
  });
};
