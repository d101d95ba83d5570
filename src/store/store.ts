// The store contract. The engine (engine/) implements it once, over the
// executor and dialect of each backend (sqlite/, postgres/), and every backend
// passes the one conformance suite in suite/.
//
// Rules every implementation keeps:
// - Each method is one transaction: it applies whole or not at all.
// - Time comes from the injected clock, randomness from the injected source.
// - State moves follow JOB_TRANSITIONS and ATTEMPT_TRANSITIONS; the database
//   itself refuses any other move.
// - A result or failure is accepted only from the attempt holding the current,
//   unexpired lease (the fencing token). Anything else is STALE_LEASE.
import type { SpeculationSettings } from '../scheduler/speculation.ts';
import type {
  Candidate,
  Assignment,
  BackupReason,
  Attempt,
  Job,
  JobError,
  Json,
  NewJob,
  PlaceFn,
  PublishManifest,
  Trace,
  Worker,
  WorkerCheck,
  WorkerSpec,
} from '../types/model.ts';
import type { JobState } from '../types/states.ts';
import type { NewPipeline, Pipeline, PipelineDetail, PipelineState } from '../types/pipeline.ts';
import type { HistoryPoint, HistoryStep, TrustPoint } from '../types/history.ts';

export interface SubmitResult {
  job: Job;
  /** False when the idempotency key was seen before and `job` is the existing one. */
  created: boolean;
}

export interface ListJobsParams {
  queue?: string;
  state?: JobState;
  /** `key=value`: only jobs carrying this label. */
  label?: { key: string; value: string };
  /** True: only the backlog keeper's filler jobs; false: only the others. */
  filler?: boolean;
  /** Only jobs this worker had an attempt of. */
  workerId?: string;
  limit: number;
  /** From a previous page's `nextCursor`. */
  cursor?: string;
}

export interface ListPipelinesParams {
  template?: string;
  state?: PipelineState;
  limit: number;
  /** From a previous page's `nextCursor`. */
  cursor?: string;
}

export interface PipelinePage {
  /** Newest first, without their payloads and phases: get an instance for those. */
  pipelines: Pipeline[];
  nextCursor: string | null;
}

export interface SubmitPipelineResult {
  pipeline: PipelineDetail;
  /** False when the key was seen before and `pipeline` is the instance it made. */
  created: boolean;
  /** The jobs made (none when `created` is false). */
  jobs: Job[];
}

export interface JobPage {
  jobs: Job[];
  nextCursor: string | null;
}

export interface ClaimParams {
  workerIds: readonly string[];
  place: PlaceFn;
  /** Hand out at most this many attempts over all workers. */
  maxJobs: number;
  /**
   * The shares of the ready jobs this coordinator claims first (each a job id's
   * last two characters, src/coordinator/shares.ts); absent or null: no share,
   * every job alike. A claim reads its own share, and beside it the jobs of
   * other shares of a higher priority than its own best; only when its own
   * share has nothing left for these workers does it read the others.
   */
  share?: readonly string[] | null;
  /**
   * What any worker the coordinator may claim for could take, when this claim
   * is made for some of them only (a window, open-slots.ts): the claim's reads
   * are not narrowed to its own workers' queues, sizes and keys, so that a job
   * only another worker can take is read, and reported unplaced.
   */
  readFor?: ClaimReadFor;
  /** Filled in by the claim, for the dispatcher and the bench. */
  report?: ClaimReport;
}

export interface ClaimReadFor {
  queues: readonly string[];
  maxCores: number;
  maxMemoryMb: number;
  maxGpus: number;
  /** Affinity keys held; null: too many to filter on. */
  keys: readonly string[] | null;
}

/** What one claim saw besides what it placed. */
export interface ClaimReport {
  /** Candidates read that no worker of the claim could take. */
  unplaced: number;
  /** Some of them (at most LIMITS.claimReportCandidatesMax), for the coordinator to tell whether another worker could. */
  unplacedCandidates: Candidate[];
  /** Workers of the claim the store found with no usable free slot (slow start, paused, quarantined, offline, full). */
  unusable: string[];
  /** Attempts placed of jobs outside the claim's share (0 without a share). */
  outsideShare: number;
}

/** A live coordinator as the store last saw it beat. */
export interface CoordinatorBeat {
  id: string;
  /** The slots of the workers attached to it when it beat. */
  weight: number;
  seenAt: number;
}

export interface LeaseRef {
  attemptId: string;
  lease: string;
  /**
   * The worker reporting. When given, an attempt held by another worker is
   * NOT_ATTEMPT_HOLDER, whatever lease it names: a result, failure or
   * progress counts only from the worker the attempt was given to.
   */
  workerId?: string;
}

export interface HeartbeatParams {
  workerId: string;
  /** The attempts the worker says it is running; absent means all it holds. */
  attempts?: readonly LeaseRef[];
}

export interface HeartbeatResult {
  /** Attempts whose lease was extended. */
  extended: string[];
  /** Present (true) when revoked attempts the worker no longer names stopped holding their slots and GPUs: work may now fit it. */
  released?: true;
  /** Attempts the worker named that it no longer owns: it must stop them. */
  revoked: string[];
  /**
   * Present (true) when the worker had been marked disconnected (its socket
   * dropped, or the lease sweeper found it silent) and this heartbeat made it
   * eligible again: work may now fit it, so the coordinator dispatches.
   */
  revived?: true;
}

export interface CompleteParams extends LeaseRef {
  result: Json;
  /** The attempt's resource trace (trace verification); kept with the attempt. */
  trace?: Trace | null;
  /**
   * Builds the verification job for a result of a job with `verify.queue`:
   * the coordinator fills the verifier queue's defaults. Pure; called inside
   * the store's transaction. Without it such a job's results go unverified
   * (the store throws INVALID_STATE rather than accept them).
   */
  verificationJob?: (queue: string, payload: Json, priority: number) => NewJob;
  /** True: the worker holds an output directory of this attempt, to publish if its result is accepted. */
  output?: boolean;
}

export interface FailParams extends LeaseRef {
  error: JobError;
  /** False: fail the job now, whatever retries remain. */
  retryable: boolean;
}

/** What a store operation did to jobs, for events and waiters. */
export interface Change {
  jobId: string;
  state: JobState;
  /** Attempts that were stopped by this change and whose workers should be told. */
  cancelledAttempts: { attemptId: string; workerId: string }[];
  /** The job succeeded with an attempt that holds an output: its worker is told to publish it. */
  publish?: PublishOrder;
  /** Outputs that will never be published (rejected, or another replica's was accepted): their workers delete them. */
  discards?: OutputRef[];
}

/** An output directory one worker holds. */
export interface OutputRef {
  jobId: string;
  attemptId: string;
  workerId: string;
}

/** A publish a worker is told to do: the output of this accepted attempt. */
export interface PublishOrder extends OutputRef {
  queue: string;
}

export interface DuePublishesParams {
  /** Workers whose publishes are wanted (those attached to the asking coordinator). */
  workerIds: readonly string[];
  /** Most orders returned. */
  limit: number;
  /** Each order returned is not due again for this long (its worker's answer is awaited meanwhile). */
  resendAfterMs: number;
  /**
   * True: every publish of these workers not yet done, due or not. For a
   * worker that just attached: one sent to its previous connection may have
   * been lost with it.
   */
  all?: boolean;
}

export interface RecordPublishParams {
  jobId: string;
  attemptId: string;
  /** The worker reporting: only the accepted attempt's own worker may. */
  workerId: string;
  manifest?: PublishManifest;
  /** Why the publish failed; it is sent again after retryDelayMs. */
  error?: JobError;
  retryDelayMs?: number;
}

export interface SettleResult {
  /** The attempt's job after the report. */
  job: Job;
  /** Every job whose state moved, including dependants reached by a cascade. */
  changes: Change[];
}

export interface SweepResult {
  changes: Change[];
  /** Attempts ended by the sweep: lost (heartbeat) or failed (TIMEOUT). */
  endedAttempts: { attemptId: string; workerId: string; reason: 'LEASE_LOST' | 'TIMEOUT' }[];
}

export interface SpeculateParams {
  /** Each queue's speculation settings (a queue whose `enabled` is false gets no backups). */
  settings: (queue: string) => SpeculationSettings;
  /** Default SPECULATION_DEFAULTS.shareMax. */
  shareMax?: number;
  /** Default SPECULATION_DEFAULTS.backupsMin. */
  backupsMin?: number;
  /** Default SPECULATION_DEFAULTS.minRunMs. */
  minRunMs?: number;
}

export interface SpeculateResult {
  /** The backups asked for: each job now wants one more attempt, which the next claim places on another worker. */
  backups: { jobId: string; attemptId: string; reason: BackupReason }[];
}

export interface ListWorkersParams {
  ids?: readonly string[];
  summary?: boolean;
}

export interface DeleteFinishedParams {
  queue: string;
  /** Finished jobs that finished before this are deleted; null: no age limit. */
  finishedBeforeMs: number | null;
  /** The newest this many finished jobs of the queue are kept, older ones deleted; null: no count limit. */
  keepJobs: number | null;
  /** Most jobs this call deletes (one transaction); at most LIMITS.retentionBatchMaxJobs. */
  limit: number;
  /**
   * Called with the jobs about to be deleted (whole, oldest first), inside the
   * transaction and before the delete: if it rejects, nothing is deleted.
   */
  archive?: (jobs: Job[]) => Promise<void>;
}

export interface DeleteFinishedResult {
  /** The jobs deleted, with their attempts and dependency rows, oldest first; fewer than `limit` when no more were eligible. */
  deletedJobIds: string[];
}

export interface QuarantineParams {
  workerId: string;
  /**
   * True: the worker gets no real work, and its live attempts are cancelled
   * and their jobs put back. False (release): it may work again, with its
   * reputation counts reset and its failed reliability checks forgotten (it is
   * checked again when it next connects).
   */
  quarantined: boolean;
  reason?: string;
}

export interface StartCheckParams {
  workerId: string;
  queue: string;
  /** The challenge job; the store pins it to the worker. */
  job: NewJob;
  /** resultHash() of the known answer. */
  answerHash: string;
  /** The challenge must complete within this long of being leased. */
  timeLimitMs: number;
}

export interface QueueCounts {
  queue: string;
  counts: Record<JobState, number>;
  /** Of the queued jobs, those the backlog keeper made (filler jobs). */
  fillerQueued: number;
}

/** What the recent finished attempts of one queue say about its run times. */
export interface QueueRunStats {
  queue: string;
  /** Attempts that ended with a result (completed, or rejected by a vote) in the sample. */
  completed: number;
  /** Attempts that failed, timed out or were lost in the sample. */
  failed: number;
  /** Mean of finishedAt - leasedAt over the completed attempts, or null when there are none. */
  runTimeMeanMs: number | null;
  /** 95th percentile (nearest rank) of the same, or null. */
  runTimeP95Ms: number | null;
  /** Start of the time the sample covers: `sinceMs`, or later when the sample was cut at its bound. */
  sampledSinceMs: number;
}

/** A queue's run-time state, set by an operator; a queue never paused reads as not paused. */
export interface QueueState {
  queue: string;
  paused: boolean;
  /** When it was paused (kept while it stays paused); null when not paused. */
  pausedAt: number | null;
  reason: string | null;
}

/** A backlog top-up: keep `target` queued filler jobs in `queue`, each made from `job`. */
export interface TopUpBacklogParams {
  queue: string;
  target: number;
  /** The filler job's spec (its queue is `queue`); made without key, parents or runAt. */
  job: NewJob;
}

export interface TopUpBacklogResult {
  queue: string;
  /** Queued filler jobs after the top-up. */
  queued: number;
  /** The filler jobs this top-up made (at most LIMITS.backlogTopUpMaxJobs). */
  created: Job[];
  /** Filler jobs cancelled because the queue held more than its target. */
  changes: Change[];
}

export interface SetWorkerQueuePausedParams {
  workerId: string;
  queue: string;
  paused: boolean;
}

export interface SetQueuePausedParams {
  queue: string;
  paused: boolean;
  /** Why, for operators; kept while paused, cleared on resume. */
  reason?: string;
}

export interface ReadHistoryParams {
  /** One queue's points, or (left out) every queue's, by time then queue. */
  queue?: string;
  /** From this time (rounded down to its step) up to `toMs`, excluded. */
  fromMs: number;
  toMs: number;
  step: HistoryStep;
  /** At most this many points (clamped to LIMITS.historyMaxPoints): the newest, returned oldest first. */
  maxPoints: number;
}

export interface HistoryRollUpParams {
  /** Minute rows of hours that ended before this (rounded down to the hour) are rolled up into hour rows. */
  minutesBeforeMs: number;
  /** Hour rows that start before this are dropped. */
  hoursBeforeMs: number;
  /** At most this many rows of each kind per call (clamped to LIMITS.sweepBatchMaxRows). */
  limit: number;
}

export interface HistoryRollUpResult {
  rolledUpMinutes: number;
  droppedHours: number;
}

/** The jobs submitted to one queue in a window (the advisor's arrival rate). */
export interface QueueArrivals {
  queue: string;
  /** Jobs of the queue created at or after `sampledSinceMs`. */
  submitted: number;
  /** Start of the time the count covers: `sinceMs`, or later when it was cut at its bound. */
  sampledSinceMs: number;
}

/** Dependencies from jobs of one queue to jobs of another, among recent jobs. */
export interface QueueEdge {
  /** The parents' queue. */
  from: string;
  /** The dependants' queue. */
  to: string;
  /** Dependency rows from a sampled job of `from` to a job of `to`. */
  deps: number;
  /** Distinct parents among them. */
  parents: number;
  /** Distinct dependants among them. */
  children: number;
  /** Jobs of `from` in the sample, with dependants or not. */
  fromJobs: number;
}

export interface QueueEdges {
  edges: QueueEdge[];
  /** Start of the time the sample covers: `sinceMs`, or later when it was cut at `sampleMaxJobs`. */
  sampledSinceMs: number;
  /** True when the dependency rows were cut at `maxRows`: the counts are then a part of the sample's. */
  truncated: boolean;
}

/** What a backend can do, for the coordinator to ask instead of testing which backend it is. */
export interface StoreCapabilities {
  /**
   * Other coordinators may share the database and change it under this one:
   * the coordinator then polls for claimable work as well as listening.
   */
  readonly shared: boolean;
  /**
   * Writes queued in one turn of the event loop share one transaction and one
   * commit (in queue order), so a claim queued right behind a submit leases the
   * new job in the transaction that stores it.
   */
  readonly groupCommit: boolean;
}

export interface Store {
  /** The backend's name, for logs and /readyz; behaviour follows `capabilities`. */
  readonly kind: 'sqlite' | 'postgres';
  readonly capabilities: StoreCapabilities;

  /** Submits jobs in one transaction: all or none. Repeated idempotency keys return the existing job. */
  submit(params: { jobs: readonly NewJob[] }): Promise<SubmitResult[]>;
  getJob(params: { id: string }): Promise<Job | null>;
  listJobs(params: ListJobsParams): Promise<JobPage>;
  listAttempts(params: { jobId: string }): Promise<Attempt[]>;
  /** The attempts a worker holds now (leased or running), oldest first. */
  listLiveAttempts(params: { workerId: string }): Promise<Attempt[]>;
  /** Cancels a job that has not ended, with its live attempts and its waiting dependants. */
  cancel(params: { jobId: string; reason?: string }): Promise<SettleResult>;
  /** Puts a failed, cancelled or expired job back in the queue with a fresh retry budget. */
  retry(params: { jobId: string }): Promise<SettleResult>;

  /**
   * Makes a pipeline instance and all its jobs with their dependencies in one
   * transaction; a key seen before answers the instance it made and writes nothing.
   */
  submitPipeline(params: { pipeline: NewPipeline }): Promise<SubmitPipelineResult>;
  /** An instance with each phase's state and jobs, or null. */
  getPipeline(params: { id: string }): Promise<PipelineDetail | null>;
  listPipelines(params: ListPipelinesParams): Promise<PipelinePage>;

  /**
   * Registers a worker or refreshes it on reconnect. `operator` is the one
   * named by the token that said hello: a record created under another
   * operator is WORKER_ID_TAKEN and left untouched. Without an id in the spec
   * the store makes an unguessable one.
   */
  upsertWorker(params: { spec: WorkerSpec; operator?: string | null }): Promise<Worker>;
  getWorker(params: { id: string }): Promise<Worker | null>;
  /**
   * Workers by id: all of them, or those of `ids`. `summary`: without their
   * labels and keys (read as empty), for reads that need only states, slots
   * and counts, so that a read of every worker costs little per worker.
   */
  listWorkers(params?: ListWorkersParams): Promise<Worker[]>;
  /** The worker's connection dropped. Its leases stay until their heartbeat timeout. */
  disconnectWorker(params: { workerId: string }): Promise<void>;
  setWorkerDraining(params: { workerId: string; draining: boolean }): Promise<Worker>;
  /**
   * Changes the affinity keys a worker holds: adds `hold`, then removes
   * `release` (a key in both ends up released). Keys stay unique and in the
   * order first held; more than LIMITS.workerKeysMax is INVALID_INPUT.
   */
  updateWorkerKeys(params: { workerId: string; hold?: readonly string[]; release?: readonly string[] }): Promise<Worker>;

  /** Quarantines or releases a worker (an admin's decision; the store also quarantines on its own, see docs/trust.md). */
  setWorkerQuarantine(params: QuarantineParams): Promise<{ worker: Worker; changes: Change[] }>;
  /**
   * Starts the worker's reliability check for a queue, unless it has one
   * already (pending, passed or failed): then returns that one. Until the check
   * passes, the worker gets no job of that queue but the challenge.
   */
  startCheck(params: StartCheckParams): Promise<{ check: WorkerCheck; created: boolean }>;

  /** Leases attempts to the given workers, as the place function decides. */
  claim(params: ClaimParams): Promise<Assignment[]>;
  /** Extends the leases of the worker's live attempts and marks leased ones running. */
  heartbeat(params: HeartbeatParams): Promise<HeartbeatResult>;
  /** Records progress on a live attempt; also a heartbeat for it. */
  progress(params: LeaseRef & { progress: Json }): Promise<void>;
  complete(params: CompleteParams): Promise<SettleResult>;
  fail(params: FailParams): Promise<SettleResult>;
  /** Publishes due (pending, or failed and past their retry time) of these workers; each is then not due for resendAfterMs. */
  duePublishes(params: DuePublishesParams): Promise<PublishOrder[]>;
  /**
   * A worker's answer to a publish: the manifest (the publish is done) or an
   * error (failed; due again after retryDelayMs). INVALID_STATE when the job
   * has no publish for that attempt; NOT_ATTEMPT_HOLDER for another worker.
   * A manifest for a publish already done is accepted again as it was.
   */
  recordPublish(params: RecordPublishParams): Promise<Job>;

  /** Ends attempts whose lease expired (lost) or whose run time passed (TIMEOUT). */
  expireAttempts(params: { limit: number }): Promise<SweepResult>;
  /** Ends jobs that did not start by their deadline. */
  expireDeadlines(params: { limit: number }): Promise<SweepResult>;
  /**
   * Asks for speculative backups of running attempts that will probably miss
   * their job's deadline or run far past their queue's usual time
   * (engine/speculate.ts; scheduler/speculation.ts has the rule). Safe on
   * several coordinators at once: they take turns, and keep the share bound together.
   */
  speculate(params: SpeculateParams): Promise<SpeculateResult>;
  /**
   * The earliest time after `afterMs` (default: now) at which a queued job
   * becomes ready, or null. The dispatcher passes the time of its last claim:
   * a job that became ready between that claim and this read is returned too
   * (at or before now), so that it is not left waiting for an unrelated kick.
   */
  nextRunAt(params?: { afterMs?: number }): Promise<number | null>;

  queueCounts(): Promise<QueueCounts[]>;
  /**
   * Run-time statistics per named queue, over the attempts that finished at or
   * after `sinceMs`: the newest `sampleMaxRows` of them per queue at most
   * (clamped to LIMITS.queueStatsSampleMaxRows), so a busy queue costs a bounded read.
   */
  queueStats(params: { queues: readonly string[]; sinceMs: number; sampleMaxRows: number }): Promise<QueueRunStats[]>;
  /**
   * Per queue, the earliest ready time (runAt) among its claimable jobs that
   * are ready now, looking at its oldest LIMITS.oldestReadyScanMaxRows
   * claimable jobs by id; null when none is ready.
   */
  oldestReady(params: { queues: readonly string[] }): Promise<{ queue: string; readyAt: number | null }[]>;
  /**
   * Jobs submitted per named queue since `sinceMs` (by id, index jobs_queue):
   * the newest `sampleMaxRows` per queue at most (clamped to
   * LIMITS.adviceArrivalsSampleMaxRows).
   */
  queueArrivals(params: { queues: readonly string[]; sinceMs: number; sampleMaxRows: number }): Promise<QueueArrivals[]>;
  /**
   * The pipeline's edges: over the newest `sampleMaxJobs` jobs created since
   * `sinceMs` (clamped to LIMITS.adviceEdgesSampleMaxJobs), their dependants'
   * queues, joining at most `maxRows` dependency rows (clamped to LIMITS.adviceEdgesMaxRows).
   */
  queueEdges(params: { sinceMs: number; sampleMaxJobs: number; maxRows: number }): Promise<QueueEdges>;
  /** Pauses a queue (no new attempts; running ones finish) or resumes it (claimable at once, other coordinators woken). */
  setQueuePaused(params: SetQueuePausedParams): Promise<QueueState>;
  /** Every queue that was ever paused, resumed or given a backlog (its row is the top-up lock), by name. */
  listQueueStates(): Promise<QueueState[]>;
  /**
   * The backlog keeper's top-up, in one transaction: counts the queue's queued
   * filler jobs and makes the missing ones (or cancels the excess), with the
   * queue locked so that coordinators sharing the database keep one backlog.
   */
  topUpBacklog(params: TopUpBacklogParams): Promise<TopUpBacklogResult>;
  /**
   * Pauses one queue on one worker (a claim hands it nothing of that queue;
   * its running attempts finish) or resumes it. Kept on the worker's record,
   * so it holds on every coordinator and across reconnects.
   */
  setWorkerQueuePaused(params: SetWorkerQueuePausedParams): Promise<Worker>;
  /** Adds minute points into the stored history (an additive upsert: several coordinators add into one row). */
  addHistory(params: { points: readonly HistoryPoint[] }): Promise<void>;
  /** History in points of a minute or an hour per queue; an hour point also sums minutes not rolled up yet. */
  readHistory(params: ReadHistoryParams): Promise<HistoryPoint[]>;
  /** Rejected results and failed reliability checks per queue and step (the same bounds as readHistory). */
  readTrustHistory(params: ReadHistoryParams): Promise<TrustPoint[]>;
  /** Rolls old minutes up into hours and drops old hours; safe to run on several coordinators at once. */
  rollUpHistory(params: HistoryRollUpParams): Promise<HistoryRollUpResult>;

  // ---- Retention ----

  /** Queues that have finished jobs, by name after `after`, at most `limit`. */
  finishedQueues(params: { after?: string; limit: number }): Promise<string[]>;
  /**
   * Deletes the oldest finished jobs of a queue past its retention, in one
   * short transaction, with their attempts and dependency rows. Never a job
   * that a job not yet finished depends on or verifies, nor a reliability
   * check's challenge (engine/retention.ts has the rule). Safe on several
   * coordinators at once.
   */
  deleteFinishedJobs(params: DeleteFinishedParams): Promise<DeleteFinishedResult>;
  /**
   * Deletes worker records last seen before `seenBeforeMs` that hold nothing:
   * no live attempt, not quarantined, no pending or failed reliability check
   * (one transaction, at most `limit`). Returns their ids.
   */
  pruneWorkers(params: { seenBeforeMs: number; limit: number }): Promise<string[]>;
  /** The queues of these jobs and attempts (at most LIMITS.historyResolveBatchMaxJobs ids; unknown ids left out). */
  queuesOf(params: { ids: readonly string[] }): Promise<{ id: string; queue: string }[]>;
  /**
   * Optional: calls `listener` when another coordinator sharing this store's
   * database made work claimable (a submit, a retry, a re-queue after a
   * failure, children made ready), so that this one can dispatch at once.
   * Best effort: a wake-up may be lost or repeated, so coordinators poll as
   * well. Returns a function that unsubscribes. A store only one coordinator
   * uses (SQLite) has nothing to hear and leaves it out. PostgreSQL implements
   * it with LISTEN/NOTIFY.
   */
  onWake?(listener: () => void): () => void;
  /**
   * The coordinator `id` is alive with `weight` (its workers' slots), by the
   * store's clock (each coordinator's own: keep them in step, as for leases). Returns every coordinator that beat within `aliveWithinMs`,
   * this one included, by id; rows older than that are deleted.
   */
  beatCoordinator(params: { id: string; weight: number; aliveWithinMs: number }): Promise<CoordinatorBeat[]>;
  /** The coordinator `id` stops: its row is deleted, and coordinators sharing the database are woken to take its share. */
  leaveCoordinator(params: { id: string }): Promise<void>;
  /** Resolves when the store answers a trivial query; rejects when it cannot. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
