// The model: jobs, attempts, workers, and what passes between the store and the
// scheduler. Times are milliseconds since the Unix epoch throughout.
import type { AttemptState, JobState, WorkerState } from './states.ts';
import type { JobPipelineRef, ParentResult } from './pipeline.ts';

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

/**
 * How a job's results are checked beyond replica agreement:
 * - `trace`: the resource traces of its replicas are compared; those far from
 *   the rest are rejected (needs at least 3 replicas to tell anything apart).
 * - `queue`: each result becomes a verification job on that queue; a verifier
 *   worker returns `{ valid: boolean, reason?: string }`.
 */
export type VerifySpec = { mode: 'trace'; tolerance: number } | { mode: 'queue'; queue: string };

/** One sample of an attempt's resource use, taken by the worker while it ran. */
export interface TraceSample {
  /** Time since the attempt started. */
  tMs: number;
  /** CPU time (user + system) the attempt's process used so far. */
  cpuMs: number;
  /** Resident memory of the attempt's process at that moment. */
  rssKb: number;
}

/** An attempt's resource use over time, sent with its result (trace verification). */
export interface Trace {
  /** Time between samples. */
  intervalMs: number;
  /** Ascending in tMs; at most LIMITS.traceSamplesMax. */
  samples: TraceSample[];
}

/** A worker's record of judged results. */
export interface Reputation {
  /** Results accepted by a vote, a trace comparison or a verifier. */
  valid: number;
  /** Results rejected by the same. */
  invalid: number;
  /** Attempts that ran past their timeout or went silent (lost lease). */
  timedOut: number;
  /**
   * Attempts it may hold at once now (slow start): grows by one with each
   * attempt it completes, halves with each it loses; it gets the lesser of
   * this and the slots it declares.
   */
  credit: number;
  /** Valid results in a row since the last invalid one. */
  streak: number;
  /** Jobs run alone (adaptive replication) since the last spot check. */
  soloSinceCheck: number;
}

export type CheckState = 'pending' | 'passed' | 'failed';

/** A worker's reliability check for one queue. */
export interface WorkerCheck {
  state: CheckState;
  /** The challenge job. */
  jobId: string;
  /** How long the challenge took, once passed (or failed on time). */
  speedMs: number | null;
  /** Why it failed. */
  reason: string | null;
  updatedAt: number;
}

/** A queue's reliability check: a job with a known answer that a new worker must pass. */
export interface ChallengeSpec {
  payload: Json;
  /** The expected result; compared by the hash of its canonical JSON. */
  answer: Json;
  /** The challenge must finish within this long, or it fails. */
  timeLimitMs: number;
}

/**
 * How long a queue keeps its finished jobs (succeeded, failed, cancelled,
 * expired). A job past either limit is deleted; with neither, they are kept
 * for ever. docs/configuration.md, "Retention".
 */
export interface RetentionPolicy {
  /** Finished jobs are deleted this many days after they finished. */
  keepDays?: number;
  /** Only the newest this many finished jobs of the queue are kept. */
  keepJobs?: number;
  /** A file the deleted jobs are appended to first, one JSON object a line. */
  archive?: string;
}

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
  /** How far the leading result must be ahead of the runner-up to be accepted (replicated jobs). */
  margin?: number;
  /** Replicas go to workers of distinct operators (the default) or only to distinct workers. */
  distinct?: Distinct;
  verify?: VerifySpec;
  /** Adaptive replication: a trusted worker may run it alone (spot-checked). */
  adaptive?: boolean;
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
  margin: number;
  distinct: Distinct;
  verify: VerifySpec | null;
  adaptive: boolean;
  idempotencyKey: string | null;
  labels: Labels;
}

/**
 * Whom a replicated job's replicas must not share: `operator` (the token a
 * worker says hello with; workers without one count as their own operator),
 * or only `worker`.
 */
export type Distinct = 'operator' | 'worker';

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
  /** Attempts that failed or timed out: the retry budget spent. */
  failures: number;
  /** Workers that lost an attempt of it by going silent: charged to them, not to maxAttempts; bounded by LIMITS.jobLostAttemptsMax. */
  lost: number;
  /** Attempts wanted and not yet handed out (more than one only with replicas). */
  want: number;
  /** Attempts currently leased or running. */
  live: number;
  /** Parents that have not yet succeeded. */
  pendingParents: number;
  /** True when adaptive replication let one trusted worker run this round alone. */
  solo: boolean;
  /** For a verification job: the job and attempt whose result it checks. */
  verifies: { jobId: string; attemptId: string } | null;
  /** For a reliability challenge: the only worker that may run it. */
  pinnedWorkerId: string | null;
  /** For a job of a pipeline instance: the instance, its phase, and its number in the phase. */
  pipeline: JobPipelineRef | null;
  /** True for a job the backlog keeper made to keep idle capacity busy ([queues.NAME.backlog]). */
  filler: boolean;
  /** The accepted result, once the job succeeded. */
  result: Json | null;
  /** The accepted attempt's output directory, published by its worker (docs/publishing.md); null when it had none. */
  publish: JobPublish | null;
  error: JobError | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

/** Where an accepted attempt's output stands: waiting for its worker, published, or failed (and retried). */
export type PublishState = 'pending' | 'published' | 'failed';

/** One file of an output directory, as published. */
export interface PublishedObject {
  /** The file's path inside the output directory, with / between segments. */
  path: string;
  /** Where it was published: an s3-compatible store's object URL, or a file:// URL. */
  url: string;
  bytes: number;
  /** SHA-256 of the file's bytes, lowercase hex. */
  sha256: string;
}

/** What a worker published of one output directory. */
export interface PublishManifest {
  /** The publisher's name in the worker's config. */
  publisher: string;
  kind: 'dir' | 's3';
  objects: PublishedObject[];
  /** Sum of the objects' bytes. */
  bytes: number;
}

/** A job's publish: the accepted attempt's worker is told to publish its output, and reports the manifest. */
export interface JobPublish {
  state: PublishState;
  attemptId: string;
  workerId: string;
  /** Publishes the worker reported as failed so far. */
  tries: number;
  /** The last failure, while state is failed (kept until a publish succeeds). */
  error: JobError | null;
  manifest: PublishManifest | null;
  updatedAt: number;
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
  /** The resource trace the worker sent with its result, if any. */
  trace: Trace | null;
  /** A speculative backup: the attempt it backs up (the first of the two to bring a result wins), else null. */
  backupOf: string | null;
  /** Why the backup was started: the attempt it backs up would probably miss its job's deadline, or ran far past its queue's usual time. */
  backupReason: BackupReason | null;
}

export type BackupReason = 'deadline' | 'slow';

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
  /** For a job of a pipeline instance: where it sits, and the instance's locality key (a handler that leaves files for the next phase holds it). */
  pipeline?: JobPipelineRef & { locality: string };
  /** For a job of a pipeline instance with parents: their results, in phase order (inline, or by reference past LIMITS.parentResultsMaxBytes). */
  parents?: ParentResult[];
  /**
   * Internal, never sent to workers: when the job became ready (its run_at),
   * read by the claim that leased it; leasedAt minus this is the wait time.
   * The coordinator strips it before an assignment leaves for a worker.
   */
  readyAt?: number;
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
  /** Where it runs, as it says: its host name and process id (null when it does not say). */
  host?: string | null;
  pid?: number | null;
}

export interface Worker extends Required<WorkerSpec> {
  state: WorkerState;
  draining: boolean;
  quarantined: boolean;
  /** Why it was quarantined, or null. */
  quarantineReason: string | null;
  /**
   * The operator named by the token whose hello created this record (null for
   * records older than operators). Only that operator may say hello as it.
   */
  operator: string | null;
  reputation: Reputation;
  /** Reliability checks per queue that declares a challenge. */
  checks: Record<string, WorkerCheck>;
  connected: boolean;
  connectedAt: number;
  lastSeenAt: number;
  /** Live attempts per queue. */
  running: Record<string, number>;
  /** Queues an operator paused on this worker: it is handed nothing of them until they are resumed. Kept across reconnects. */
  pausedQueues: string[];
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
  /** Attempts it may hold at once (its slots over all queues, or less while in slow start), and how many it holds. */
  totalSlots: number;
  usedSlots: number;
  freeCores: number;
  freeMemoryMb: number;
  totalCores: number;
  totalMemoryMb: number;
  /** GPU ids not held by a live attempt, ascending. */
  freeGpuIds: number[];
  /** Queues whose reliability check this worker has not passed: only its own challenge job may go to it. */
  blockedQueues: readonly string[];
  /** Challenge run time per queue, where measured (smaller is faster). */
  speedMs: Readonly<Record<string, number>>;
  /** Whom it works for (its token's operator); replicas of a job that spreads over operators go to distinct ones. Absent: its own. */
  operator?: string;
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
  /** A reliability challenge: only this worker may run it. */
  pinnedWorkerId: string | null;
  /** The attempts placed in one decision go to workers of distinct operators (absent: only distinct workers). */
  spreadOperators?: boolean;
  /** A speculative backup of a slow attempt: it goes to the fastest worker that fits (by `speedMs`). */
  backup?: true;
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
