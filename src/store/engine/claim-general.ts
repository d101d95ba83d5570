// The general forms of a claim's two backend queries: a page of candidates
// read queue by queue, and leases written a statement per job and per
// attempt. A backend that measured something faster supplies its own (each
// checked by the conformance suite to end in the same state as these).
import { assert } from '../../types/errors.ts';
import type { Assignment } from '../../types/model.ts';
import { assignmentOf } from '../claiming.ts';
import type { Row } from '../rows.ts';
import { CANDIDATE_COLUMNS } from './columns.ts';
import { PRIORITY_FLOOR, SHARE_CHARS, SHARE_FROM_CHAR } from '../claiming.ts';
import { perJob, type CandidatePage, type WriteLeases } from './claim.ts';
import { J, type Context } from './sql.ts';

/**
 * Per queue: the next page by priority, deadline and age, and on the first
 * page also the oldest ready jobs (so that aging can lift them past newer,
 * higher-priority work), leaving out what no worker of the claim can take
 * (the CandidateFilter). Where rows can be locked, rows another claim holds
 * are passed over, not waited for.
 */
export function candidatePageByQueue(c: Context): CandidatePage {
  const { d } = c;
  const where = `want > 0 AND queue = $1 AND run_at <= $2 AND (deadline_at > $2 OR backup_of IS NOT NULL)
    AND req_cores <= $3 AND req_memory_mb <= $4 AND req_gpus <= $5
    AND req_labels ${d.notInList('$6')}
    AND (${d.isNullList('$7')} OR affinity_mode IS DISTINCT FROM 'require' OR affinity_key ${d.inList('$7')})
    AND (${d.isNullList('$9')} OR substr(id, ${SHARE_FROM_CHAR}, ${SHARE_CHARS}) ${d.inList('$9')})
    AND priority > $10`;
  const byPriority = `SELECT ${CANDIDATE_COLUMNS} FROM jobs WHERE ${where}
    ORDER BY priority DESC, deadline_at, id LIMIT $8 OFFSET $11${d.skipLocked}`;
  // The partial index holds only claimable jobs: a planner left to itself may walk every finished job of the queue.
  const oldest = `SELECT ${CANDIDATE_COLUMNS} FROM jobs ${d.indexedBy('jobs_claim_age')} WHERE ${where}
    ORDER BY id LIMIT $8${d.skipLocked}`;
  return async (tx, scope, filter, now, page, perPage) => {
    let more = false;
    const rows: Row[] = [];
    for (const queue of scope.queues) {
      const args = [
        queue, now, scope.maxCores, scope.maxMemoryMb, scope.maxGpus, filter.excludedLabels, filter.heldKeys, perPage,
        filter.share, filter.priorityAbove ?? PRIORITY_FLOOR,
      ];
      const ranked = await tx.all(byPriority, [...args, page * perPage]);
      if (ranked.length === perPage) more = true;
      rows.push(...ranked);
      if (page === 0) rows.push(...(await tx.all(oldest, args)));
    }
    return { rows, more };
  };
}

/** Leases a statement at a time: each job moves to running, then each attempt is inserted. */
export function writeLeasesOneByOne(c: Context): WriteLeases {
  const { d } = c;
  const updateJob = `UPDATE jobs SET want = CASE WHEN $3 = 1 THEN 0 ELSE want - $2 END, live = live + $2,
      attempts = attempts + $2, solo = ${d.greatest('solo', '$3')}, adapted = ${d.greatest('adapted', '$4')},
      state = 'running', updated_at = $5
    WHERE id = $1 AND want >= $2 AND state IN ('queued', 'running')
    RETURNING id, queue, payload, attempts, timeout_ms, heartbeat_timeout_ms, deadline_at, has_deadline,
      req_cores, req_memory_mb, req_gpus, labels, run_at`;
  const insertAttempt = `INSERT INTO attempts (id, job_id, worker_id, queue, seq, state, lease, gpu_ids, cores, memory_mb,
      heartbeat_timeout_ms, leased_at, heartbeat_at, lease_expires_at, timeout_at)
    VALUES ($1, $2, $3, $4, $5, 'leased', $6, $7, $8, $9, $10, $11, $11, $12, $13)`;
  return async (tx, plan, now) => {
    const jobs = new Map<string, Row>();
    for (const [jobId, n] of perJob(plan)) {
      const row = await tx.get(updateJob, [jobId, n, plan.solo.has(jobId) ? 1 : 0, plan.decided.has(jobId) ? 1 : 0, now]);
      assert(row, 'a placed job still wants an attempt');
      jobs.set(jobId, { ...row, n });
    }
    const out: Assignment[] = [];
    for (const [i, p] of plan.kept.entries()) {
      const job = jobs.get(p.jobId)!;
      const m = plan.made[i]!;
      const a = assignmentOf(job, p, { attemptId: m.attemptId, lease: m.lease, attempt: Number(job.attempts) - Number(job.n) + m.k }, now);
      await tx.run(insertAttempt, [
        a.attemptId, a.jobId, a.workerId, a.queue, a.attempt, a.lease, J(a.gpuIds), a.cores, a.memoryMb,
        a.heartbeatTimeoutMs, now, a.leaseExpiresAt, now + a.timeoutMs,
      ]);
      out.push(a);
    }
    for (const [workerId, n] of [...plan.soloSinceCheck].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      await tx.run('UPDATE workers SET solo_since_check = $1 WHERE id = $2', [n, workerId]);
    }
    return out;
  };
}
