// Turning database rows into model objects. Both backends use the same column
// names and keep JSON as text, so one mapping serves both. Jobs are mapped by
// their column table (engine/columns.ts).
import type { Attempt, BackupReason, JobError, Json, Trace, Worker, WorkerCheck, CheckState, Reputation } from '../types/model.ts';
import type { AttemptState, JobState, WorkerState } from '../types/states.ts';

export type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const json = <T>(v: unknown): T => JSON.parse(String(v)) as T;
const jsonOrNull = <T>(v: unknown): T | null => (v === null || v === undefined ? null : json<T>(v));

export function attemptFromRow(r: Row): Attempt {
  return {
    id: String(r.id),
    jobId: String(r.job_id),
    workerId: String(r.worker_id),
    queue: String(r.queue),
    state: r.state as AttemptState,
    gpuIds: json(r.gpu_ids),
    cores: num(r.cores),
    memoryMb: num(r.memory_mb),
    leasedAt: num(r.leased_at),
    startedAt: numOrNull(r.started_at),
    heartbeatAt: num(r.heartbeat_at),
    leaseExpiresAt: num(r.lease_expires_at),
    timeoutAt: num(r.timeout_at),
    finishedAt: numOrNull(r.finished_at),
    result: jsonOrNull<Json>(r.result),
    resultHash: r.result_hash === null || r.result_hash === undefined ? null : String(r.result_hash),
    error: jsonOrNull<JobError>(r.error),
    progress: jsonOrNull<Json>(r.progress),
    trace: jsonOrNull<Trace>(r.trace),
    backupOf: r.backup_of === null || r.backup_of === undefined ? null : String(r.backup_of),
    backupReason: r.backup_reason === null || r.backup_reason === undefined ? null : (String(r.backup_reason) as BackupReason),
  };
}

/** A worker's reputation columns. */
export function reputationFromRow(r: Row): Reputation {
  return {
    valid: num(r.valid_count),
    invalid: num(r.invalid_count),
    timedOut: num(r.timed_out_count),
    credit: num(r.credit),
    streak: num(r.valid_streak),
    soloSinceCheck: num(r.solo_since_check),
  };
}

/** A worker_checks row. */
export function checkFromRow(r: Row): WorkerCheck {
  return {
    state: r.state as CheckState,
    jobId: String(r.job_id),
    speedMs: numOrNull(r.speed_ms),
    reason: r.reason === null || r.reason === undefined ? null : String(r.reason),
    updatedAt: num(r.updated_at),
  };
}

/** A worker row plus its live attempt counts per queue and its reliability checks. */
export function workerFromRow(
  r: Row,
  running: Record<string, number>,
  now: number,
  offlineAfterMs: number,
  checks: Record<string, WorkerCheck> = {},
): Worker {
  const connected = num(r.connected) === 1 && now - num(r.last_seen_at) <= offlineAfterMs;
  const draining = num(r.draining) === 1;
  const quarantined = num(r.quarantined) === 1;
  const busy = Object.values(running).some((n) => n > 0);
  const state: WorkerState = quarantined
    ? 'quarantined'
    : !connected
      ? 'offline'
      : draining
        ? 'draining'
        : Object.values(checks).some((c) => c.state === 'pending')
          ? 'probing'
          : busy
          ? 'busy'
          : 'idle';
  return {
    id: String(r.id),
    name: String(r.name),
    labels: json(r.labels),
    cores: num(r.cores),
    memoryMb: num(r.memory_mb),
    gpuIds: json(r.gpu_ids),
    queues: json(r.queues),
    keys: json(r.keys),
    state,
    draining,
    quarantined,
    quarantineReason: r.quarantine_reason === null || r.quarantine_reason === undefined ? null : String(r.quarantine_reason),
    operator: r.operator === null || r.operator === undefined ? null : String(r.operator),
    host: r.host === null || r.host === undefined ? null : String(r.host),
    pid: r.pid === null || r.pid === undefined ? null : num(r.pid),
    reputation: reputationFromRow(r),
    checks,
    connected,
    connectedAt: num(r.connected_at),
    lastSeenAt: num(r.last_seen_at),
    running,
    pausedQueues: json(r.paused_queues ?? '[]'),
    createdAt: num(r.created_at),
  };
}

/** A count of zero for every job state: queueCounts fills in the states it finds. */
export function emptyCounts(): Record<JobState, number> {
  return { waiting: 0, queued: 0, running: 0, verifying: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 };
}

/** Cursors are opaque to clients: the last id seen, base64url-encoded. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  return Buffer.from(cursor, 'base64url').toString('utf8');
}
