// PostgreSQL's fast path for results: plain jobs' results settled in one
// statement per batch of reports, with no BEGIN/COMMIT and one WAL flush.
import type { Clock } from '../../types/clock.ts';
import { assert } from '../../types/errors.ts';
import { POSTGRES_DEFAULTS } from '../../types/limits.ts';
import { jobFromRow } from '../engine/columns.ts';
import { J, LIVE, type Param } from '../engine/sql.ts';
import { resultHash } from '../rules.ts';
import type { Row } from '../rows.ts';
import type { CompleteParams, SettleResult } from '../store.ts';
import { serverAnswered, type PgDb } from './db.ts';

/**
 * Results for common jobs (one replica, no verification of any kind, no
 * challenge, nothing depending on them, in no pipeline instance, the job's only live attempt,
 * no backup asked for) in one
 * statement for a whole batch of reports: lock the jobs in id order without
 * waiting (NOWAIT: a job another transaction holds fails the statement, and
 * every report of the batch takes the full transaction instead, so the
 * statement never waits behind a sweep nor deadlocks), complete each attempt
 * under its lease, accept its result. A report that does not qualify (another
 * kind of job, a stale lease, an unknown attempt) gets no row and changes
 * nothing: the full transaction then decides it. Jobs with dependants are left
 * out because a dependant submitted after this statement's snapshot would be
 * invisible to it; the submit sets has_dependants on the parent's row, which
 * the lock's recheck does see. $1-$5 per report: attempt id, lease, result
 * hash, trace, result; $6 now; $7 per report: the reporting worker's id, or
 * null when the report names none (an attempt of another worker is refused).
 */
const COMPLETE_SIMPLE_SQL = `
  WITH v AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $7::text[]) AS v(attempt_id, lease, hash, trace, result, worker_id)
  ), j AS (
    SELECT jobs.id, at.id AS attempt_id FROM v
    JOIN attempts at ON at.id = v.attempt_id
    JOIN jobs ON jobs.id = at.job_id
    WHERE jobs.replicas = 1 AND jobs.verify IS NULL AND jobs.verifies_job_id IS NULL AND jobs.pinned_worker_id IS NULL
      AND jobs.has_dependants = 0 AND jobs.pipeline_id IS NULL AND jobs.state = 'running' AND jobs.live = 1 AND jobs.backup_of IS NULL
    ORDER BY jobs.id
    FOR UPDATE OF jobs NOWAIT
  ), a AS (
    UPDATE attempts SET state = 'completed', finished_at = $6, result_hash = v.hash, trace = v.trace
    FROM v, j
    WHERE attempts.id = v.attempt_id AND j.attempt_id = v.attempt_id AND attempts.job_id = j.id
      AND attempts.lease = v.lease AND attempts.state IN ${LIVE} AND attempts.lease_expires_at >= $6
      AND attempts.worker_id = coalesce(v.worker_id, attempts.worker_id)
    RETURNING attempts.id AS attempt_id, attempts.job_id
  )
  UPDATE jobs SET state = 'succeeded', result = v.result, error = NULL, want = 0, live = 0, finished_at = $6, updated_at = $6
  FROM a JOIN v ON v.attempt_id = a.attempt_id
  WHERE jobs.id = a.job_id
  RETURNING jobs.*, a.attempt_id AS settled_attempt_id`;

/** `settled`: applied; `no`: not applied, nothing changed; `unknown`: the connection failed, so whether it committed is not known. */
export type SimpleOutcome = { kind: 'settled'; out: SettleResult } | { kind: 'no' } | { kind: 'unknown' };

interface PendingComplete {
  params: CompleteParams;
  /** The result as JSON text, made once: it is sent, and it counts towards completeBatchMaxBytes. */
  json: string;
  resolve: (out: SimpleOutcome) => void;
}

function batchParams(reports: readonly PendingComplete[], now: number): Param[] {
  return [
    reports.map((r) => r.params.attemptId),
    reports.map((r) => r.params.lease),
    reports.map((r) => resultHash(r.params.result)),
    reports.map((r) => (r.params.trace ? J(r.params.trace) : null)),
    reports.map((r) => r.json),
    now,
    reports.map((r) => r.params.workerId ?? null),
  ];
}

/** Gathers the reports that arrive in one turn, or while the previous batch runs, into one statement. */
export class CompleteBatcher {
  private readonly db: PgDb;
  private readonly clock: Clock;
  private readonly pending: PendingComplete[] = [];
  private sending = false;

  constructor(db: PgDb, clock: Clock) {
    this.db = db;
    this.clock = clock;
  }

  complete(params: CompleteParams): Promise<SimpleOutcome> {
    return new Promise((resolve) => {
      this.pending.push({ params, json: J(params.result), resolve });
      if (!this.sending) {
        this.sending = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) await this.send(this.pending.splice(0, this.nextBatchSize()));
    } finally {
      this.sending = false;
    }
  }

  /** Within completeBatchMax reports and completeBatchMaxBytes; one report per attempt (a resent one waits for the next batch). */
  private nextBatchSize(): number {
    const seen = new Set<string>();
    let size = 0;
    let bytes = 0;
    while (size < this.pending.length && size < POSTGRES_DEFAULTS.completeBatchMax) {
      const next = this.pending[size]!;
      if (seen.has(next.params.attemptId)) break;
      if (size > 0 && bytes + Buffer.byteLength(next.json) > POSTGRES_DEFAULTS.completeBatchMaxBytes) break;
      seen.add(next.params.attemptId);
      bytes += Buffer.byteLength(next.json);
      size++;
    }
    return size;
  }

  private async send(batch: readonly PendingComplete[]): Promise<void> {
    let rows: Row[];
    try {
      rows = await this.db.read((sql) => sql.all(COMPLETE_SIMPLE_SQL, batchParams(batch, this.clock.now())));
    } catch (err) {
      // The server refused the statement (a job locked elsewhere, say): it changed nothing. Otherwise the
      // connection failed and the statement may or may not have committed.
      const failure: SimpleOutcome = serverAnswered(err) ? { kind: 'no' } : { kind: 'unknown' };
      for (const b of batch) b.resolve(failure);
      return;
    }
    const byAttempt = new Map(rows.map((r) => [String(r.settled_attempt_id), r]));
    for (const b of batch) {
      const row = byAttempt.get(b.params.attemptId);
      if (!row) {
        b.resolve({ kind: 'no' });
        continue;
      }
      const job = jobFromRow(row);
      assert(job.state === 'succeeded', 'a simple result is accepted');
      b.resolve({ kind: 'settled', out: { job, changes: [{ jobId: job.id, state: 'succeeded', cancelledAttempts: [] }] } });
    }
  }
}

