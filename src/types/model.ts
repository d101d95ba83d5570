// The model: jobs, attempts, workers, and what passes between the store and the
// scheduler. Times are milliseconds since the Unix epoch throughout.
import type { AttemptState, JobState, WorkerState } from './states.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type Labels = Record<string, string>;

export interface Backoff {
  /** First retry waits about this long; each later one twice as long. */
  baseMs: number;
  /** No retry waits longer than this. */
  maxMs: number;
}

export interface Requires {
  cores: number;
  memoryMb: number;
  gpus: number;
  /** Labels the worker must carry, each with this exact value. */
  labels: Labels;
}

export type AffinityMode = 'prefer' | 'require';

export interface Affinity {
  /** A locality key, e.g. the sector whose files a worker holds. */
  key: string;
  /** `require`: only a worker holding the key may run it. `prefer`: such a worker goes first. */
  mode: AffinityMode;
}

export type VerifySpec = { mode: 'trace'; tolerance: number } | { mode: 'queue'; queue: string };

/** What a client submits. Everything but `queue` is optional. */
export interface JobSpec {
  queue: string;
  payload?: Json;
  priority?: number;
  /** Not before this time: epoch ms or an ISO 8601 string. */
  runAt?: number | string;
  /** Must start by this time, or it ends `expired`: epoch ms or ISO 8601. */
  deadline?: number | string;
  timeoutMs?: number;
  heartbeatTimeoutMs?: number;
  maxAttempts?: number;
  backoff?: Partial<Backoff>;
  requires?: Partial<Requires>;
  affinity?: Affinity;
  dependsOn?: string[];
  replicas?: number;
  quorum?: number;
  verify?: VerifySpec;
  idempotencyKey?: string;
  labels?: Labels;
}

/** A submit after validation: every default filled in, times in epoch ms. */
export interface NewJob {
  queue: string;
  payload: Json;
  priority: number;
  runAt: number | null;
  deadline: number | null;
  timeoutMs: number;
  heartbeatTimeoutMs: number;
  maxAttempts: number;
  backoff: Backoff;
  requires: Requires;
  affinity: Affinity | null;
  dependsOn: string[];
  replicas: number;
  quorum: number;
  verify: VerifySpec | null;
  idempotencyKey: string | null;
  labels: Labels;
}

export interface JobError {
  /** A stable code: `HANDLER_ERROR`, `TIMEOUT`, `LEASE_LOST`, `DEPENDENCY_FAILED`, `NO_QUORUM`, ... */
  code: string;
  message: string;
  attemptId?: string;
  /** For DEPENDENCY_FAILED and DEPENDENCY_CANCELLED: the parent that ended the job. */
  jobId?: string;
}

export interface Job extends NewJob {
  id: string;
  state: JobState;
  runAt: number;
  /** Attempts created so far. */
  attempts: number;
  /** Attempts that failed, timed out or were lost: the retry budget spent. */
  failures: number;
  /** Attempts wanted and not yet handed out (more than one only with replicas). */
  want: number;
  /** Attempts currently leased or running. */
  live: number;
  /** Parents that have not yet succeeded. */
  pendingParents: number;
  /** The accepted result, once the job succeeded. */
  result: Json | null;
  error: JobError | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export interface Attempt {
  id: string;
  jobId: string;
  workerId: string;
  queue: string;
  state: AttemptState;
  gpuIds: number[];
  cores: number;
  memoryMb: number;
  leasedAt: number;
  startedAt: number | null;
  heartbeatAt: number;
  /** The worker must heartbeat before this, or the attempt is lost. */
  leaseExpiresAt: number;
  /** The attempt must finish before this, or it fails with TIMEOUT. */
  timeoutAt: number;
  finishedAt: number | null;
  result: Json | null;
  resultHash: string | null;
  error: JobError | null;
  progress: Json | null;
}

/** What a worker is told when it gets an attempt. The lease is its fencing token. */
export interface Assignment {
  attemptId: string;
  lease: string;
  jobId: string;
  workerId: string;
  queue: string;
  payload: Json;
  gpuIds: number[];
  cores: number;
  memoryMb: number;
  /** 1 for the first attempt of a job, 2 for the next, ... */
  attempt: number;
  timeoutMs: number;
  heartbeatTimeoutMs: number;
  leaseExpiresAt: number;
  deadline: number | null;
  labels: Labels;
}

/** What a worker says about itself when it connects. */
export interface WorkerSpec {
  /** Stable across reconnects; the store makes one when it is left out. */
  id?: string;
  name: string;
  labels: Labels;
  cores: number;
  memoryMb: number;
  /** The GPU ids this worker may hand to attempts. */
  gpuIds: number[];
  /** The queues it serves, with how many attempts of each it runs at once. */
  queues: Record<string, number>;
  /** Affinity keys it holds (data it has locally). */
  keys: string[];
}

export interface Worker extends Required<WorkerSpec> {
  state: WorkerState;
  draining: boolean;
  quarantined: boolean;
  connected: boolean;
  connectedAt: number;
  lastSeenAt: number;
  /** Live attempts per queue. */
  running: Record<string, number>;
  createdAt: number;
}

// ---- The seam between the store (I/O) and the scheduler (pure decisions) ----

/** A worker as the scheduler sees it: what it has and what it has free. */
export interface WorkerCapacity {
  workerId: string;
  labels: Labels;
  keys: ReadonlySet<string>;
  /** Free slots per served queue. */
  freeSlots: Record<string, number>;
  /** Total slots over all queues, and how many are in use. */
  totalSlots: number;
  usedSlots: number;
  freeCores: number;
  freeMemoryMb: number;
  totalCores: number;
  totalMemoryMb: number;
  /** GPU ids not held by a live attempt, ascending. */
  freeGpuIds: number[];
}

/** A job that may be placed, with what the scheduler needs to rank and fit it. */
export interface Candidate {
  jobId: string;
  queue: string;
  priority: number;
  deadline: number | null;
  /** When the job became ready to run: aging counts from here. Age order uses createdAt. */
  readyAt: number;
  createdAt: number;
  requires: Requires;
  affinity: Affinity | null;
  /** How many more attempts of this job may be placed now. */
  want: number;
  /** Workers that already hold an attempt of this job (replicas never share a worker). */
  excludedWorkerIds: readonly string[];
}

export interface Placement {
  jobId: string;
  workerId: string;
  gpuIds: number[];
}

export interface PlaceInput {
  now: number;
  workers: readonly WorkerCapacity[];
  candidates: readonly Candidate[];
  /** Place at most this many attempts in all. */
  maxPlacements: number;
}

/** The scheduler's decision: which candidate goes to which worker. Pure. */
export type PlaceFn = (input: PlaceInput) => Placement[];
