// Driving a store until every job has ended (liveness): the end of every
// invariant run, and of the crash test.
import { isGafferError } from '../../../types/errors.ts';
import type { Assignment, Job, Json, PlaceFn, Trace } from '../../../types/model.ts';
import type { VirtualClock } from '../../../types/clock.ts';
import { isTerminalJobState } from '../../../types/states.ts';
import type { LeaseRef, Store } from '../../store.ts';
import { LIST_PAGE, LIST_PAGES_MAX } from './checks.ts';

export interface DrainOptions {
  /** Workers that heartbeat, claim and complete: they must be registered and able to run every job. */
  workerIds: readonly string[];
  place: PlaceFn;
  /** Live attempts whose leases the caller holds, by attempt id: they are completed too. */
  held?: Map<string, LeaseRef & { jobId: string }>;
  /** The result an attempt returns (make it equal across the replicas of a job, so they agree). */
  result: (ref: { jobId: string; attemptId: string }) => Json;
  /** The resource trace it sends with it, as an honest worker would (trace verification), if any. */
  trace?: Trace;
  onAssign?: (a: Assignment) => void;
  onComplete?: (attemptId: string, jobId: string) => void;
  afterRound?: (round: number) => Promise<void>;
  maxRounds?: number;
  /** How far the clock moves when nothing is due sooner. */
  stepMs?: number;
}

/**
 * Heartbeats, completes whatever it holds, sweeps, claims and completes, and
 * moves the clock, until every job has ended or the rounds run out. Returns the
 * jobs still open.
 */
export async function drainToTerminal(store: Store, clock: VirtualClock, o: DrainOptions): Promise<{ rounds: number; open: Job[] }> {
  const maxRounds = o.maxRounds ?? 200;
  let open: Job[] = [];
  for (let round = 0; round < maxRounds; round++) {
    for (const workerId of o.workerIds) await store.heartbeat({ workerId });
    if (round === 0) for (const ref of o.held?.values() ?? []) await completeOne(store, ref, o);
    await store.expireAttempts({ limit: 500 });
    await store.expireDeadlines({ limit: 500 });
    for (let i = 0; i < 50; i++) {
      const assigned = await store.claim({ workerIds: o.workerIds, place: o.place, maxJobs: 256 });
      if (assigned.length === 0) break;
      for (const a of assigned) {
        o.onAssign?.(a);
        await completeOne(store, a, o);
      }
    }
    await o.afterRound?.(round);
    open = await openJobs(store);
    if (open.length === 0) return { rounds: round + 1, open };
    const now = clock.now();
    const next = await store.nextRunAt();
    clock.advance(next !== null && next > now ? Math.min(next - now, o.stepMs ?? 1000) : (o.stepMs ?? 1000));
  }
  return { rounds: maxRounds, open };
}

/** Completes an attempt; a lease that lapsed or an attempt that ended meanwhile is fine. */
async function completeOne(store: Store, ref: LeaseRef & { jobId: string }, o: DrainOptions): Promise<void> {
  try {
    await store.complete({ attemptId: ref.attemptId, lease: ref.lease, result: o.result(ref), ...(o.trace ? { trace: o.trace } : {}) });
    o.onComplete?.(ref.attemptId, ref.jobId);
  } catch (err) {
    if (!isGafferError(err, 'STALE_LEASE')) throw err;
  }
}

async function allJobs(store: Store): Promise<Job[]> {
  const out: Job[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < LIST_PAGES_MAX; page++) {
    const res = await store.listJobs(cursor === undefined ? { limit: LIST_PAGE } : { limit: LIST_PAGE, cursor });
    out.push(...res.jobs);
    if (res.nextCursor === null) break;
    cursor = res.nextCursor;
  }
  return out;
}

async function openJobs(store: Store): Promise<Job[]> {
  return (await allJobs(store)).filter((j) => !isTerminalJobState(j.state));
}
