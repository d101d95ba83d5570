// The states of jobs, attempts and workers, and the one table of legal moves
// between them. The stores load these tables into the database and refuse any
// update that is not listed here, so this file is the single source of truth.

export const JOB_STATES = [
  'waiting', // dependencies not done yet
  'queued', // ready to run, or delayed until runAt
  'running', // has at least one live attempt
  'verifying', // a result awaits its verifier's verdict (verify: { queue })
  'succeeded',
  'failed',
  'cancelled',
  'expired',
] as const;
export type JobState = (typeof JOB_STATES)[number];

export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'expired'];

export function isTerminalJobState(state: JobState): boolean {
  return TERMINAL_JOB_STATES.includes(state);
}

export const ATTEMPT_STATES = [
  'leased', // handed to a worker, not yet confirmed as started
  'running', // the worker confirmed it started
  'completed', // the worker returned a result under a valid lease
  'failed', // the worker reported an error, or the run time limit passed
  'lost', // the lease expired: the worker stopped heartbeating
  'cancelled', // the job was cancelled, or another replica settled it
  'rejected', // completed, but lost the verification vote
] as const;
export type AttemptState = (typeof ATTEMPT_STATES)[number];

export const LIVE_ATTEMPT_STATES: readonly AttemptState[] = ['leased', 'running'];

export function isLiveAttemptState(state: AttemptState): boolean {
  return LIVE_ATTEMPT_STATES.includes(state);
}

export const WORKER_STATES = [
  'connecting',
  'probing', // running a reliability challenge before real work
  'idle',
  'busy',
  'draining', // finishing what it holds, takes nothing new
  'offline',
  'quarantined',
] as const;
export type WorkerState = (typeof WORKER_STATES)[number];

/** A legal move, with who makes it. */
export interface Transition<S extends string> {
  from: S;
  to: S;
  by: string;
}

export const JOB_TRANSITIONS: readonly Transition<JobState>[] = [
  { from: 'waiting', to: 'queued', by: 'store: the last parent succeeded' },
  { from: 'waiting', to: 'failed', by: 'store: a parent failed or expired' },
  { from: 'waiting', to: 'cancelled', by: 'client cancel, or a parent was cancelled' },
  { from: 'waiting', to: 'expired', by: 'deadline sweeper: deadline passed before the job started' },
  { from: 'queued', to: 'running', by: 'claim: an attempt was leased to a worker' },
  { from: 'queued', to: 'failed', by: 'store: retries exhausted while no attempt was live' },
  { from: 'queued', to: 'cancelled', by: 'client cancel' },
  { from: 'queued', to: 'expired', by: 'deadline sweeper: deadline passed before the job started' },
  { from: 'running', to: 'queued', by: 'store: the last live attempt failed or was lost and a retry is due' },
  { from: 'running', to: 'verifying', by: 'complete: a result went to the verifier queue' },
  { from: 'running', to: 'succeeded', by: 'complete: a result arrived under the current lease' },
  { from: 'running', to: 'failed', by: 'fail or lease sweeper: retries exhausted, or a non-retryable error' },
  { from: 'running', to: 'cancelled', by: 'client cancel' },
  { from: 'verifying', to: 'queued', by: 'verification: the verifier rejected the result; another worker runs the job' },
  { from: 'verifying', to: 'succeeded', by: 'verification: the result was accepted' },
  { from: 'verifying', to: 'failed', by: 'verification: rejected with no attempts left, or the verification job ended without a verdict' },
  { from: 'verifying', to: 'cancelled', by: 'client cancel' },
  { from: 'failed', to: 'queued', by: 'client retry' },
  { from: 'cancelled', to: 'queued', by: 'client retry' },
  { from: 'expired', to: 'queued', by: 'client retry' },
];

export const ATTEMPT_TRANSITIONS: readonly Transition<AttemptState>[] = [
  { from: 'leased', to: 'running', by: 'worker: started, or its first heartbeat' },
  { from: 'leased', to: 'completed', by: 'worker: result under the current lease' },
  { from: 'leased', to: 'failed', by: 'worker: error, or the run time limit passed' },
  { from: 'leased', to: 'lost', by: 'lease sweeper: heartbeat timeout' },
  { from: 'leased', to: 'cancelled', by: 'job cancelled or settled by other replicas' },
  { from: 'running', to: 'completed', by: 'worker: result under the current lease' },
  { from: 'running', to: 'failed', by: 'worker: error, or the run time limit passed' },
  { from: 'running', to: 'lost', by: 'lease sweeper: heartbeat timeout' },
  { from: 'running', to: 'cancelled', by: 'job cancelled or settled by other replicas' },
  { from: 'completed', to: 'rejected', by: 'verification: the result lost the vote' },
];

export function canMoveJob(from: JobState, to: JobState): boolean {
  return JOB_TRANSITIONS.some((t) => t.from === from && t.to === to);
}

export function canMoveAttempt(from: AttemptState, to: AttemptState): boolean {
  return ATTEMPT_TRANSITIONS.some((t) => t.from === from && t.to === to);
}
