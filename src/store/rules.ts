// Decisions every backend makes the same way. Backends own their SQL; the
// rules that decide what the SQL writes live here, once.
import { createHash } from 'node:crypto';
import type { Random } from '../types/clock.ts';
import { LIMITS } from '../types/limits.ts';
import { GafferError } from '../types/errors.ts';
import type { Backoff, Job, JobError, Json, NewJob, Reputation, Trace } from '../types/model.ts';
import { isSpotCheck, isTrusted, traceVerdict, type TrustPolicy } from '../trust/index.ts';
import type { JobState } from '../types/states.ts';

/** JSON with object keys sorted, so equal values always give equal text. */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(',')}}`;
}

/** The hash results are compared by: sha256 of canonical JSON, hex. */
export function resultHash(result: Json): string {
  return createHash('sha256').update(canonicalJson(result)).digest('hex');
}

/**
 * Whether an ended attempt spends the job's retry budget. An attempt a
 * draining worker handed straight back never ran: it neither counts nor backs
 * off. An attempt lost because its worker went silent is the worker's fault:
 * it is charged to the worker and counted in the job's `lost` (isLostLease),
 * bounded on its own by LIMITS.jobLostAttemptsMax.
 */
export function countsAsFailure(error: { code: string }): boolean {
  return !isHandBack(error) && !isLostLease(error);
}

/** An attempt a draining worker (or the coordinator, for a worker that drained or left) handed straight back: it never ran. */
export function isHandBack(error: { code: string }): boolean {
  return error.code === 'WORKER_DRAINING';
}

/** An attempt whose worker went silent for a whole heartbeat timeout. */
export function isLostLease(error: { code: string }): boolean {
  return error.code === 'LEASE_LOST';
}

/** Whether an ended attempt counts against its worker's record: it ran past its timeout or went silent. */
export function countsAgainstWorker(error: { code: string }): boolean {
  return error.code === 'TIMEOUT' || error.code === 'LEASE_LOST';
}

/**
 * Exponential backoff with jitter: the n-th failure waits between half and all
 * of min(maxMs, baseMs * 2^(n-1)).
 */
export function backoffDelayMs(backoff: Backoff, failures: number, random: Random): number {
  const exp = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exp / 2 + (random.next() * exp) / 2);
}

/**
 * How long a job waits before its next attempt. A lost lease is the worker's
 * failure, not the job's, and a replica is someone else's turn: both go back at
 * once. Errors and timeouts back off.
 */
export function retryDelayMs(job: { backoff: Backoff; failures: number; replicas: number }, error: { code: string }, random: Random): number {
  if (error.code === 'LEASE_LOST' || job.replicas > 1 || !countsAsFailure(error)) return 0;
  return backoffDelayMs(job.backoff, job.failures, random);
}

/** What ties a new job to another: the result it verifies, or the worker whose challenge it is. */
export interface JobLinks {
  verifies?: { jobId: string; attemptId: string };
  pinnedWorkerId?: string;
  /** A job of a pipeline instance: the instance, its phase and its number in the phase. */
  pipeline?: { id: string; phase: string; index: number };
  /** Made by the backlog keeper (engine/backlog.ts). */
  filler?: true;
}

/** A verifier's answer: `{ valid: true }` or `{ valid: false, reason: "..." }`. */
export interface VerdictResult {
  valid: boolean;
  reason?: string;
}

export function isVerdict(v: Json): v is { valid: boolean; reason?: string } {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, Json>;
  return typeof o.valid === 'boolean' && (o.reason === undefined || typeof o.reason === 'string');
}

/** The payload of a verification job: what was asked, and what the worker answered. */
export function verifierPayload(job: { id: string; queue: string; payload: Json }, attemptId: string, workerId: string, result: Json): Json {
  return { jobId: job.id, attemptId, workerId, queue: job.queue, payload: job.payload, result };
}

/**
 * Adaptive replication, at the first lease of a fresh round of an adaptive
 * job: an untrusted worker gets an ordinary replica; a trusted one runs the
 * job alone (`solo`) unless this is a spot check, when the job runs fully
 * replicated with the trusted worker as one of the replicas.
 */
export function soloDecision(rep: Reputation, policy: TrustPolicy, random: Random): 'solo' | 'spot-check' | 'replicate' {
  if (!isTrusted(rep, policy)) return 'replicate';
  return isSpotCheck(rep, policy, random) ? 'spot-check' : 'solo';
}

/** A trace too thin to compare: none at all, fewer than two samples, or no time covered. */
export function isUsableTrace(trace: Trace | null): trace is Trace {
  return trace !== null && trace.samples.length >= 2 && trace.samples[trace.samples.length - 1]!.tMs > 0;
}

/** `why[i]` says why `rejected[i]` was rejected: no usable trace, or its score against the majority's. */
export type TraceSplit<T> = { kind: 'tie'; reason: string } | { kind: 'split'; accepted: T[]; rejected: T[]; why: string[] };

/**
 * Trace verification over a job's completed attempts: those without a usable
 * trace are rejected first (a missing trace must not pass for the honest
 * majority's), then the rest are compared (traceVerdict). The quorum is
 * counted over `accepted` afterwards.
 */
export function splitByTrace<T extends { trace: Trace | null }>(ballots: readonly T[], tolerance: number, waypoints: number): TraceSplit<T> {
  const usable = ballots.filter((b) => isUsableTrace(b.trace));
  const missing = ballots.filter((b) => !isUsableTrace(b.trace));
  const noTrace = missing.map(() => 'no usable resource trace (fewer than two samples, or no time covered)');
  if (usable.length === 0) return { kind: 'split', accepted: [], rejected: missing, why: noTrace };
  const verdict = traceVerdict(usable.map((b) => b.trace), tolerance, waypoints);
  if (verdict.kind === 'tie') return { kind: 'tie', reason: verdict.reason };
  // The accepted cluster is the one whose centre its scores lie nearer to.
  const acceptedMean = verdict.accepted.reduce((sum, i) => sum + verdict.scores[i]!, 0) / verdict.accepted.length;
  const acceptedIsLow = Math.abs(acceptedMean - verdict.low) <= Math.abs(acceptedMean - verdict.high);
  const [mine, theirs] = acceptedIsLow ? [verdict.high, verdict.low] : [verdict.low, verdict.high];
  const scored = (i: number): string =>
    `its resource trace scored ${verdict.scores[i]!.toFixed(3)}, in a cluster centred on ${mine.toFixed(3)}; ${verdict.accepted.length} of ${usable.length} traces centre on ${theirs.toFixed(3)} (tolerance ${tolerance})`;
  return {
    kind: 'split',
    accepted: verdict.accepted.map((i) => usable[i]!),
    rejected: [...missing, ...verdict.rejected.map((i) => usable[i]!)],
    why: [...noTrace, ...verdict.rejected.map(scored)],
  };
}

/** A challenge job again, for a worker checked anew after its release: the same spec as the last one. */
export function challengeAgain(job: Job): NewJob {
  return {
    queue: job.queue,
    payload: job.payload,
    priority: job.priority,
    runAt: null,
    deadline: null,
    timeoutMs: job.timeoutMs,
    heartbeatTimeoutMs: job.heartbeatTimeoutMs,
    maxAttempts: 1,
    backoff: job.backoff,
    requires: job.requires,
    affinity: null,
    dependsOn: [],
    replicas: 1,
    quorum: 1,
    margin: 1,
    distinct: 'worker',
    verify: null,
    adaptive: false,
    idempotencyKey: null,
    labels: job.labels,
  };
}

/** A verification job or a challenge belongs to another job's round or to a worker's check: only its owner reruns it. */
export function assertRetryable(job: Job): void {
  if (job.verifies !== null) {
    throw new GafferError('INVALID_STATE', `job ${job.id} verifies job ${job.verifies.jobId}; retry that job instead`, { jobId: job.verifies.jobId });
  }
  if (job.pinnedWorkerId !== null) {
    throw new GafferError('INVALID_STATE', `job ${job.id} is the reliability challenge of worker ${job.pinnedWorkerId}; release the worker to check it again`);
  }
}

/** A time far in the future that stands for "no deadline" in sortable columns. */
export const NO_DEADLINE = 8_640_000_000_000_000;

/** An error message as a store keeps it: cut at LIMITS.errorMessageMaxChars. */
export function clipMessage(message: string): string {
  return message.length > LIMITS.errorMessageMaxChars ? message.slice(0, LIMITS.errorMessageMaxChars) : message;
}

/**
 * The state a new job starts in, from its parents' states: waiting while any
 * has not succeeded; and, as the cascade through dependants would have done,
 * cancelled when a parent was cancelled, failed when one failed or expired.
 */
export function initialJobState(parents: readonly { id: string; state: JobState }[]): {
  state: JobState;
  pending: number;
  error: JobError | null;
} {
  const pending = parents.filter((p) => p.state !== 'succeeded').length;
  const dead = parents.find((p) => p.state === 'failed' || p.state === 'cancelled' || p.state === 'expired');
  if (!dead) return { state: pending > 0 ? 'waiting' : 'queued', pending, error: null };
  const cancelled = dead.state === 'cancelled';
  return {
    state: cancelled ? 'cancelled' : 'failed',
    pending,
    error: {
      code: cancelled ? 'DEPENDENCY_CANCELLED' : 'DEPENDENCY_FAILED',
      message: `parent ${dead.id} ended ${dead.state}`,
      jobId: dead.id,
    },
  };
}
