// Decisions every backend makes the same way. Backends own their SQL; the
// rules that decide what the SQL writes live here, once.
import { createHash } from 'node:crypto';
import type { Random } from '../types/clock.ts';
import { LIMITS } from '../types/limits.ts';
import type { Backoff, JobError, Json } from '../types/model.ts';
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
  if (error.code === 'LEASE_LOST' || job.replicas > 1) return 0;
  return backoffDelayMs(job.backoff, job.failures, random);
}

/** Extra replicas a job may add after a tie or no quorum, beyond `replicas`. */
export const EXTRA_REPLICAS_MAX = 2;

export type Vote =
  | { kind: 'accept'; hash: string }
  | { kind: 'wait' }
  | { kind: 'add-replica' }
  | { kind: 'no-quorum'; reason: string };

/**
 * Decides a replicated job from the hashes of its completed attempts.
 * `pending` counts attempts still live or still wanted.
 */
export function vote(params: {
  hashes: readonly string[];
  quorum: number;
  pending: number;
  attemptsMade: number;
  replicas: number;
}): Vote {
  const tally = new Map<string, number>();
  for (const h of params.hashes) tally.set(h, (tally.get(h) ?? 0) + 1);
  for (const [hash, n] of tally) if (n >= params.quorum) return { kind: 'accept', hash };
  if (params.pending > 0) return { kind: 'wait' };
  if (params.attemptsMade < params.replicas + EXTRA_REPLICAS_MAX) return { kind: 'add-replica' };
  const groups = [...tally.values()].sort((a, b) => b - a).join(', ');
  return {
    kind: 'no-quorum',
    reason: `no ${params.quorum} of ${params.hashes.length} results agreed (groups of equal results: ${groups || 'none'})`,
  };
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
