// Every bound and default in one place, units last in each name. The docs
// (docs/limits.md) list the same values; a test keeps the two in step.

export const LIMITS = {
  /** Largest job payload, as UTF-8 JSON. Large inputs travel by reference. */
  payloadMaxBytes: 1024 * 1024,
  /** Largest result a worker may return, as UTF-8 JSON. */
  resultMaxBytes: 1024 * 1024,
  /** Largest error message kept for a failed attempt. */
  errorMessageMaxChars: 8 * 1024,
  /** Largest progress value a worker may report, as UTF-8 JSON. */
  progressMaxBytes: 8 * 1024,
  /** Most jobs in one batch submit. */
  submitBatchMaxJobs: 1000,
  /** Longest queue name. Queue names are dotted words: `prove.outer`. */
  queueNameMaxChars: 128,
  /** Longest idempotency key, label key or label value, affinity key. */
  keyMaxChars: 256,
  /** Most labels on a job or a worker, and most required labels. */
  labelsMaxCount: 64,
  /** Most parents a job may depend on. */
  dependsOnMaxCount: 256,
  /** Lowest priority a job may have. */
  priorityMin: -1_000_000,
  /** Highest priority a job may have; higher runs first. */
  priorityMax: 1_000_000,
  /** Retries: attempts per job, from 1 (no retry) to this. */
  maxAttemptsMax: 100,
  /** Redundancy: replicas of one job. */
  replicasMax: 16,
  /** Longest run time of one attempt a job may ask for (7 days). */
  timeoutMaxMs: 7 * 24 * 3600 * 1000,
  /** Shortest heartbeat timeout a job may ask for. */
  heartbeatTimeoutMinMs: 100,
  /** Longest heartbeat timeout a job may ask for. */
  heartbeatTimeoutMaxMs: 3600 * 1000,
  /** Longest backoff base or cap a job may ask for. */
  backoffMaxMs: 24 * 3600 * 1000,
  /** Most cores a job may require or a worker declare. */
  coresMax: 4096,
  /** Most memory a job may require or a worker declare. */
  memoryMbMax: 64 * 1024 * 1024,
  /** Most GPUs a job may require or a worker declare. */
  gpusMax: 64,
  /** Most queues one worker serves. */
  workerQueuesMax: 64,
  /** Most slots a worker declares for one queue. */
  workerSlotsMax: 1024,
  /** Most affinity keys one worker may say it holds. */
  workerKeysMax: 10_000,
  /** Most jobs one claim hands out, over all workers in the claim. */
  claimBatchMaxJobs: 256,
  /** Candidate jobs read per queue and per page while claiming. */
  claimCandidatesPerPage: 64,
  /** Pages of candidates a claim reads before it gives up on a queue. */
  claimScanMaxPages: 8,
  /** Rows one sweeper pass handles; the rest wait for the next pass. */
  sweepBatchMaxRows: 500,
  /** Most jobs one list call returns. */
  listMaxJobs: 500,
  /** Most jobs one cascade of failures or cancels through dependants may reach. */
  cascadeMaxJobs: 100_000,
} as const;

/** Defaults for job fields a submit leaves out. Queues may override them. */
export const JOB_DEFAULTS = {
  /** Priority of a job that gives none. */
  priority: 0,
  /** Longest run of one attempt before it fails with TIMEOUT. */
  timeoutMs: 3600 * 1000,
  /** Silence after which a worker's attempt is lost (LEASE_LOST). */
  heartbeatTimeoutMs: 30 * 1000,
  /** Attempts before a job fails for good. */
  maxAttempts: 3,
  /** First retry waits between half and all of this. */
  backoffBaseMs: 1000,
  /** No retry waits longer than this. */
  backoffMaxMs: 5 * 60 * 1000,
  /** Attempts run at once on distinct workers; the default quorum is a majority of them. */
  replicas: 1,
} as const;

/** Scheduling policy defaults. */
export const SCHEDULING_DEFAULTS = {
  /** A waiting job gains one priority point per this much waiting. */
  agingIntervalMs: 60 * 1000,
  /** Aging never lifts a job by more than this many points. */
  agingMaxBoost: 1000,
} as const;

/** Coordinator defaults. */
export const COORDINATOR_DEFAULTS = {
  /** How often the lease, deadline and delayed-job sweepers run. */
  sweepIntervalMs: 250,
  /** Most dispatch rounds one dispatch pass runs before yielding. */
  dispatchMaxRounds: 64,
} as const;
