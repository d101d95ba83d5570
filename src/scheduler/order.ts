// The order in which candidates are considered: effective priority (priority
// plus aging), then earlier deadline (none last), then older, then job id, so
// that the order is total and a placement replays exactly.
import { assert } from '../types/errors.ts';
import { SCHEDULING_DEFAULTS } from '../types/limits.ts';
import type { Candidate } from '../types/model.ts';

/** The knobs of scheduling; SCHEDULING_DEFAULTS is one. */
export interface SchedulingPolicy {
  /** A waiting job gains one priority point per this much waiting. */
  readonly agingIntervalMs: number;
  /** Aging never lifts a job by more than this many points. */
  readonly agingMaxBoost: number;
  /** A job whose deadline is this close goes to the fastest fitting worker. */
  readonly deadlineUrgentMs: number;
}

export function assertPolicy(policy: SchedulingPolicy): void {
  assert(policy.agingIntervalMs > 0, `agingIntervalMs > 0 (got ${policy.agingIntervalMs})`);
  assert(policy.agingMaxBoost >= 0, `agingMaxBoost >= 0 (got ${policy.agingMaxBoost})`);
  assert(policy.deadlineUrgentMs >= 0, `deadlineUrgentMs >= 0 (got ${policy.deadlineUrgentMs})`);
}

/** Priority plus one point per agingIntervalMs waited since readyAt, capped at agingMaxBoost. */
export function effectivePriority(
  c: Candidate,
  now: number,
  policy: SchedulingPolicy = SCHEDULING_DEFAULTS,
): number {
  const waitedMs = Math.max(0, now - c.readyAt);
  const boost = Math.min(policy.agingMaxBoost, Math.floor(waitedMs / policy.agingIntervalMs));
  return c.priority + boost;
}

/** Negative when `a` goes before `b`. A total order over distinct job ids. */
export function compareCandidates(
  a: Candidate,
  b: Candidate,
  now: number,
  policy: SchedulingPolicy = SCHEDULING_DEFAULTS,
): number {
  return (
    effectivePriority(b, now, policy) - effectivePriority(a, now, policy) ||
    compareDeadlines(a.deadline, b.deadline) ||
    a.createdAt - b.createdAt ||
    compareIds(a.jobId, b.jobId)
  );
}

/** A new array of the candidates in the order they are considered. */
export function sortCandidates(
  candidates: readonly Candidate[],
  now: number,
  policy: SchedulingPolicy = SCHEDULING_DEFAULTS,
): Candidate[] {
  assertPolicy(policy);
  return [...candidates].sort((a, b) => compareCandidates(a, b, now, policy));
}

/** Earlier deadline first; no deadline goes last. */
function compareDeadlines(a: number | null, b: number | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a - b;
}

/** Code-unit order, the same on every machine and locale. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
