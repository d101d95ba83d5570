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
  /** Deepest nesting of arrays and objects in a payload, result or progress value (over HTTP and the worker socket); checked before anything recurses over the value. */
  jsonNestingMaxLevels: 128,
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
  /**
   * Workers one job may be lost to (each went silent holding it) before it
   * fails with LEASE_LOST: such losses are the workers' fault and spend none of
   * the job's maxAttempts, but a job that kills every worker it touches must
   * still end. One worker losing it again and again counts once.
   */
  jobLostAttemptsMax: 5,
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
  /** Most queues one worker serves, and most queues paused on one worker. */
  workerQueuesMax: 64,
  /** Largest backlog target ([queues.NAME.backlog] target): filler jobs kept queued in one queue. */
  backlogTargetMax: 10_000,
  /** Most filler jobs one top-up makes (one transaction); a larger shortfall is made up over the next top-ups. */
  backlogTopUpMaxJobs: 500,
  /** Most slots a worker declares for one queue. */
  workerSlotsMax: 1024,
  /** Most affinity keys one worker may say it holds. */
  workerKeysMax: 10_000,
  /** Largest list of affinity keys one worker may hold, as UTF-8 JSON (10,000 keys of 24 characters fit). */
  workerKeysMaxBytes: 256 * 1024,
  /** Most jobs one claim hands out, over all workers in the claim. */
  claimBatchMaxJobs: 256,
  /** Most candidate jobs read per queue and per page while claiming (a claim for few slots reads fewer: 4 per slot, at least claimCandidatesMinPerPage). */
  claimCandidatesPerPage: 64,
  /** Fewest candidate jobs read per queue and per page. */
  claimCandidatesMinPerPage: 16,
  /** Pages of the largest size a claim reads before it gives up on a queue; smaller pages get more of them, so a claim reads as deep. */
  claimScanMaxPages: 8,
  /** Label sets a claim learns that no free worker has, and leaves out of its candidate reads (it rereads from the first page after learning one). */
  claimExcludedLabelSetsMax: 32,
  /** Times one claim rereads its candidates from the first page after learning label sets to leave out. */
  claimRereadsMax: 4,
  /** Workers a claim reads per queue to learn whether one that could vote without probation's bound has not voted yet (more than any one vote has voters). */
  probationPeersReadMax: 64,
  /** Most affinity keys (over its free workers) a claim filters candidates on; with more, jobs requiring a key nobody free holds are read and skipped. */
  claimHeldKeysFilterMax: 4096,
  /**
   * Most workers the scheduler ranks for one attempt: with more that fit, those
   * holding the job's affinity key, then the highest by rendezvous weight of
   * the job and the worker (src/scheduler/place.ts).
   */
  placementCandidatesMax: 64,
  /** Unplaced candidates a claim reports back (ClaimReport.unplacedCandidates), for the coordinator to tell whether another window of workers could take them. */
  claimReportCandidatesMax: 32,
  /** Most points (minutes or hours) one GET /v1/history answer holds. */
  historyMaxPoints: 1440,
  /** Most job ids the history flush resolves to their queues in one read. */
  historyResolveBatchMaxJobs: 500,
  /** Most leased attempts a coordinator remembers for their run times; past it the oldest are forgotten. */
  historyOpenAttemptsMax: 100_000,
  /** Most events a coordinator holds for jobs whose queue it has still to read; past it new ones are dropped. */
  historyUnresolvedMaxEvents: 100_000,
  /** Most roll-up batches (of sweepBatchMaxRows rows each) one history sweep runs. */
  historyRollUpMaxBatches: 20,
  /** Rows one sweeper pass handles; the rest wait for the next pass. */
  sweepBatchMaxRows: 500,
  /** Most jobs one list call returns. */
  listMaxJobs: 500,
  /** Most workers one GET /v1/workers page holds. */
  listMaxWorkers: 500,
  /** Largest page of GET /v1/workers, as UTF-8 JSON of its workers; a page that would pass it ends early (it holds at least one worker). */
  listWorkersPageMaxBytes: 4 * 1024 * 1024,
  /** Most finished jobs one retention batch deletes; each batch is its own transaction. */
  retentionBatchMaxJobs: 500,
  /** Most retention batches one retention sweep runs, over all queues; the rest wait for the next sweep. */
  retentionSweepMaxBatches: 100,
  /** Most queues one retention sweep looks at (by name); the rest wait for the next sweep. */
  retentionSweepMaxQueues: 1000,
  /** Most worker records one prune batch deletes; each batch is its own transaction. */
  workerPruneBatchMax: 500,
  /** Most phases in one pipeline template. */
  pipelinePhasesMax: 64,
  /** Most jobs of one phase in one pipeline instance (its fan-out count). */
  pipelineFanOutMax: 256,
  /** Most jobs one pipeline instance makes, over all its phases; they are submitted in one transaction. */
  pipelineJobsMax: 1000,
  /** Largest payload of one pipeline instance times its jobs (each job keeps its own copy), as UTF-8 JSON. */
  pipelinePayloadsMaxBytes: 64 * 1024 * 1024,
  /** Most pipeline templates the config (`[pipelines.NAME]`) may name. */
  pipelineTemplatesMax: 256,
  /**
   * Largest sum of its parents' results a child's assignment carries inline,
   * as UTF-8 JSON; a parent whose result would pass it travels by reference
   * (its job id and size: GET /v1/jobs/:id has the result).
   */
  parentResultsMaxBytes: 256 * 1024,
  /** Most pipeline instances one list call returns. */
  listMaxPipelines: 500,
  /** Most jobs one cascade of failures or cancels through dependants may reach. */
  cascadeMaxJobs: 100_000,
  /** Largest HTTP request body; a batch of large payloads must be split to fit. */
  httpBodyMaxBytes: 8 * 1024 * 1024,
  /** Shortest bearer token a server listening beyond loopback accepts at start (a token never holds whitespace, wherever it listens). */
  tokenMinChars: 16,
  /** Largest HTTP request line and headers together; more is answered 431 HEADERS_TOO_LARGE. */
  httpHeadersMaxBytes: 16 * 1024,
  /** Longest a result long poll waits (`waitMs`); a longer wait is cut to this. */
  resultWaitMaxMs: 30 * 1000,
  /** Events queued for one event-stream client that reads too slowly (a full batch submit and a claim fit); one more and it is disconnected. */
  sseBufferMaxEvents: 4096,
  /** Newest finished attempts per queue that the run-time statistics read. */
  queueStatsSampleMaxRows: 10_000,
  /** Oldest jobs (by id) per queue that the oldest-ready figure looks at. */
  oldestReadyScanMaxRows: 1_000,
  /** Newest completed attempts per queue whose run times speculation measures (the median, and the spread a late attempt is judged by). */
  speculationSampleMaxRuns: 200,
  /** Fewest measured runs of a queue before any of its attempts gets a backup. */
  speculationRunsMin: 3,
  /** Newest jobs per queue (by id) that count as its recent jobs for the quantile of the slow rule. */
  speculationRecentJobsMax: 1000,
  /** Longest-running live attempts per queue one speculation pass looks at. */
  speculationScanMaxAttempts: 200,
  /** Newest jobs per queue that the advisor counts for a queue's arrival rate. */
  adviceArrivalsSampleMaxRows: 50_000,
  /** Newest jobs (over all queues) whose dependants the advisor follows to find the pipeline's edges. */
  adviceEdgesSampleMaxJobs: 10_000,
  /** Most dependency rows the advisor's edge read joins. */
  adviceEdgesMaxRows: 100_000,
  /** Workers whose measured run times the scheduler's hints keep (src/coordinator/hints.ts); past that the first seen are dropped. */
  hintsWorkersMax: 10_000,
  /** Attempts whose lease time the scheduler's hints keep until they end; past that the oldest are dropped (their run times go unmeasured). */
  hintsLeasesMax: 100_000,
  /** How often the scheduler's hints re-read the pipeline's edges between queues. */
  hintsEdgesRefreshMs: 60 * 1000,
  /** How far back the scheduler's hints look for jobs whose dependants show the pipeline's edges. */
  hintsEdgesWindowMs: 24 * 3600 * 1000,
  /** Most workers the advisor's plan adds. */
  adviceAddWorkersMax: 1000,
  /** Longest window the advisor may be asked to look back over (`windowMs`). */
  adviceWindowMaxMs: 7 * 24 * 3600 * 1000,
  /** Most samples in one resource trace; a longer run is sampled more sparsely to fit. */
  traceSamplesMax: 512,
  /** Most seeds one `gaffer simulate --seeds` sweep runs. */
  simulateSeedsMax: 1000,
  /** Most worker kinds (`[[workers]]` tables) one `gaffer simulate --config` farm file describes. */
  farmWorkerKindsMax: 64,
  /** Most workers one farm file describes, over all kinds (the sum of the counts). */
  farmWorkersMax: 1000,
  /** Most phases (`[[phases]]` tables, each a queue) of one farm file. */
  farmPhasesMax: 32,
  /** Most pipeline edges (`edges`) of one farm file. */
  farmEdgesMax: 256,
  /** Most jobs one farm file makes (arrivals times phases): a bound on the simulation's work. */
  farmJobsMax: 20_000,
  /** Most slots a worker declares for one phase in a farm file. */
  farmSlotsPerPhaseMax: 1000,
} as const;

/**
 * Speculative backups (docs/configuration.md, "Speculation"): when a running
 * attempt will probably miss its job's deadline, or runs past `multiplier`
 * times its queue's median run time once `quantile` of the queue's recent jobs
 * have finished (Spark's rule), the coordinator starts one backup attempt on
 * another worker; the first result wins. Queues may override enabled,
 * quantile and multiplier.
 */
export const SPECULATION_DEFAULTS = {
  /** Share of the recent jobs of a queue (speculationRecentJobsMax) that must have finished before the slow rule applies. */
  quantile: 0.75,
  /** An attempt running longer than this many times its queue's median run time gets a backup (the slow rule). */
  multiplier: 1.5,
  /** Most live attempts, as a share of all live attempts, that are backups (Hadoop caps it at 10 %). */
  shareMax: 0.1,
  /** Backups that may run (or wait to be placed) whatever the share, so that a small pool can still back up its stragglers (Hadoop's minimum is 10). */
  backupsMin: 3,
  /** No attempt younger than this gets a backup. */
  minRunMs: 1000,
  /** How often the coordinator looks for attempts to back up. */
  intervalMs: 1000,
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
  /**
   * A replicated job's leading result must be this far ahead of the runner-up
   * (pending attempts counted for the runner-up): two colluding workers can
   * then never outvote the rest when replicas go to distinct operators.
   */
  margin: 2,
} as const;

/** Trust: quorum, reputation, quarantine and adaptive replication (docs/trust.md). */
export const TRUST_DEFAULTS = {
  /**
   * Replicas a job may add beyond `replicas` after a split vote, before it
   * fails with NO_QUORUM: three colluders and a cheat who answer first need
   * five honest replicas against them (3 + 2 of margin), nine votes in all.
   */
  extraReplicasMax: 6,
  /** A worker whose invalid results pass this share of its judged results is quarantined... */
  quarantineInvalidShare: 0.2,
  /** ...once it has at least this many judged (valid or invalid) results. */
  quarantineMinResults: 3,
  /** Valid results in a row after which a worker is trusted to run adaptive jobs alone. */
  trustedStreakMin: 10,
  /** Chance that a trusted worker's adaptive job runs fully replicated anyway (a spot check). */
  spotCheckProbability: 0.1,
  /** A trusted worker runs at most this many adaptive jobs alone in a row before a spot check. */
  spotCheckMaxGapJobs: 15,
  /** Trace verification resamples every trace at this many evenly spaced points of its run. */
  traceWaypoints: 10,
  /** Attempts a new worker record may hold at once (slow start); each completed attempt adds one, each lost one halves it. */
  creditInitialSlots: 4,
  /** A worker that lost or overran more than this share of its finished attempts is quarantined... */
  quarantineLostShare: 0.5,
  /** ...once it has lost or overran at least this many. */
  quarantineLostMin: 8,
  /**
   * Probation: a worker with fewer valid judged results than this takes no new
   * replicated or verified work while it has probationUnjudgedMax of them
   * unjudged (running, or done and awaiting a verdict), so a fast liar is
   * judged before it can take part in many jobs.
   */
  probationValidMin: 10,
  probationUnjudgedMax: 2,
  /**
   * ...and with this many undecided it joins a vote under way only when no
   * other worker that could vote instead is below this or off probation: a
   * worker ten times faster than the rest does not cast ten times their share
   * of the votes before its first verdicts.
   */
  probationUndecidedMax: 4,
  /**
   * A vote won only by workers on probation needs a lead this much larger than
   * the job's margin while another worker could still vote: colluders who fill
   * a whole job before anyone has a record do not settle it among themselves.
   */
  probationMarginBonus: 2,
} as const;

/** Scheduling policy defaults. */
export const SCHEDULING_DEFAULTS = {
  /** A waiting job gains one priority point per this much waiting. */
  agingIntervalMs: 60 * 1000,
  /** Aging never lifts a job by more than this many points. */
  agingMaxBoost: 1000,
  /** A job whose deadline is this close goes to the fastest fitting worker (by reliability-check speed). */
  deadlineUrgentMs: 5 * 60 * 1000,
} as const;

/** HTTP API defaults. */
export const HTTP_DEFAULTS = {
  /** Jobs a list call returns when it gives no `limit`. */
  listDefaultJobs: 50,
  /** Pipeline instances per page of GET /v1/pipelines when `limit` is left out. */
  listDefaultPipelines: 50,
  /** Workers a GET /v1/workers page holds when it gives no `limit`. */
  listDefaultWorkers: 100,
  /** An event stream sends a comment this often, so that proxies and clients see it alive. */
  sseHeartbeatIntervalMs: 15 * 1000,
  /** Queue statistics (throughput, run times) cover the attempts that finished this recently. */
  queueStatsWindowMs: 5 * 60 * 1000,
  /** The advisor looks at the attempts that finished and the jobs submitted this recently, unless asked for another window. */
  adviceWindowMs: 6 * 3600 * 1000,
  /** A request's headers must all arrive within this long of its first byte, or it is answered 408 REQUEST_TIMEOUT and closed. */
  headersTimeoutMs: 10 * 1000,
  /** All of a request, body included, must arrive within this long, or it is answered 408 REQUEST_TIMEOUT and closed (a slow body). */
  requestTimeoutMs: 60 * 1000,
  /** A connection on which nothing moves for this long is closed; longer than the longest long poll (resultWaitMaxMs) and the event-stream heartbeat. */
  connectionIdleTimeoutMs: 120 * 1000,
  /** How often the server looks for requests past headersTimeoutMs or requestTimeoutMs: a timeout fires up to this much late. */
  timeoutCheckIntervalMs: 1000,
  /** An answer given before the request's body was read (401, 413, 408, ...) closes the connection; the body still arriving is read and dropped for at most this long, so that the client can read the answer instead of a reset. */
  closeLingerMs: 2000,
} as const;

/** Coordinator defaults. */
export const COORDINATOR_DEFAULTS = {
  /** How often the lease, deadline and delayed-job sweepers run. */
  sweepIntervalMs: 250,
  /** Most dispatch rounds one dispatch pass runs before yielding. */
  dispatchMaxRounds: 64,
  /**
   * Most workers one claim is made for. The coordinator offers only workers
   * that may have a free slot (open-slots.ts), this many at a time, so a claim
   * reads this many worker rows at most however large the pool.
   */
  claimWorkersMax: 256,
  /** A dispatch pass's first claim is made for at most this many workers; the window grows fourfold while claims place as many attempts as it holds. */
  claimWorkersFirst: 32,
  /** With a shared store, each coordinator writes its row in the coordinators table this often (shares.ts). */
  coordinatorBeatIntervalMs: 2000,
  /** A coordinator that has not beaten for this long is taken for gone: its share goes to the others. */
  coordinatorAliveWithinMs: 6000,
  /** A wake-up (another coordinator left, or made work) re-reads the coordinators at most this often. */
  coordinatorRefreshMinIntervalMs: 250,
  /** With a shared store (PostgreSQL), each coordinator also looks for work and for ended jobs this often, in case a wake-up notification was lost. */
  pollIntervalMs: 1000,
  /** How often the backlog keeper tops up the queues that have [queues.NAME.backlog] (also after it hands out filler jobs). */
  backlogIntervalMs: 1000,
  /** Result waits on this coordinator whose jobs one poll re-reads, for jobs that ended through another coordinator. */
  pollWaitsMaxJobs: 256,
  /** How often the coordinator adds what it counted into the stored history (one upsert per queue and minute). */
  historyFlushIntervalMs: 60 * 1000,
  /** Minutes of history older than this are rolled up into hours (2 days). */
  historyMinuteRetentionMs: 2 * 24 * 3600 * 1000,
  /** Hours of history older than this are dropped (30 days). */
  historyHourRetentionMs: 30 * 24 * 3600 * 1000,
  /** How often the sweeper rolls up and drops history. */
  historySweepIntervalMs: 5 * 60 * 1000,
  /** How often the sweeper deletes finished jobs past their queue's retention and prunes idle worker records. */
  retentionSweepIntervalMs: 5 * 60 * 1000,
  /** An offline worker record that holds nothing (no live attempt, not quarantined, no pending or failed check) is deleted this long after it was last seen (7 days). */
  workerRetentionMs: 7 * 24 * 3600 * 1000,
  /** After the store fails to answer, the first probe of it waits about this long; each failed probe doubles the wait. */
  storeRetryBaseDelayMs: 100,
  /** No probe of an unavailable store waits longer than this. */
  storeRetryMaxDelayMs: 5000,
  /** A store that does not answer a readiness ping within this long counts as unavailable. */
  storePingTimeoutMs: 2000,
} as const;

/**
 * How long finished jobs are kept when neither the queue's
 * `[queues.NAME.retention]` nor the server's `[retention]` says otherwise.
 */
export const RETENTION_DEFAULTS = {
  /** Finished jobs are deleted this many days after they finished. */
  keepDays: 30,
} as const;

/** The worker protocol on the coordinator's side (docs/worker-protocol.md). */
export const PROTOCOL_DEFAULTS = {
  /** Largest frame either side sends, as UTF-8 JSON. A larger one from a worker gets an error frame and is dropped. */
  frameMaxBytes: 4 * 1024 * 1024,
  /** A frame larger than this closes the connection at once (WebSocket close 1009); nothing of it is kept. */
  frameHardMaxBytes: 16 * 1024 * 1024,
  /** Protocol violations one connection may make, each answered by an error frame; the next one closes it (4400). */
  protocolViolationsMax: 10,
  /** A worker must send hello within this long of connecting, or the connection is closed (4408). */
  helloTimeoutMs: 10_000,
  /** The heartbeat interval the coordinator asks for in welcome. */
  heartbeatIntervalMs: 5_000,
  /** A connection that sends nothing for this long is closed (4408); its leases stay until their own timeout. */
  idleTimeoutMs: 15_000,
  /** Frames read from one connection and not yet handled; beyond this the coordinator stops reading it for a while. */
  frameQueueMax: 64,
  /** Most attempts named in one hello or heartbeat, whatever the worker's slots. */
  attemptsPerFrameMax: 65_536,
  /**
   * Most attempts one hello or heartbeat may name per slot the worker declares
   * (one running, one finished and awaiting its ack); a frame naming more is
   * refused (INVALID_INPUT) without touching the store.
   */
  attemptsPerSlotMax: 2,
  /**
   * Bytes of frames to one worker waiting unsent (WebSocket bufferedAmount) beyond which its
   * connection is closed (4413): a worker that stops reading must not grow the coordinator's memory.
   */
  sendBufferMaxBytes: 32 * 1024 * 1024,
  /**
   * Worker connections one coordinator holds at once; a WebSocket upgrade
   * beyond it is answered 503 (NOT_READY) and the worker reconnects after its
   * backoff, here or to another coordinator. With the bounds per connection
   * above, it bounds the coordinator's memory however many workers try.
   */
  connectionsMax: 20_000,
} as const;

/** The TypeScript SDK worker (src/worker). */
export const WORKER_DEFAULTS = {
  /** The first reconnect waits up to this long (with jitter); each failed try doubles it. */
  reconnectBaseDelayMs: 250,
  /** No reconnect waits longer than this. */
  reconnectMaxDelayMs: 15_000,
  /** Longest wait for a connection to open and welcome to arrive before trying the next URL. */
  connectTimeoutMs: 10_000,
  /** On drain (or SIGTERM), running attempts have this long to finish before they are given up. */
  drainTimeoutMs: 60_000,
  /** A handler thread that ignores its abort signal this long is terminated. */
  abortGraceMs: 5_000,
  /** Progress of one attempt is sent at most this often; the latest value wins. */
  progressMinIntervalMs: 100,
  /** After an INTERNAL ack, a report goes again after this long, doubling with each INTERNAL ack of the same report. */
  reportResendBaseDelayMs: 1_000,
  /** INTERNAL acks of one report after which the SDK gives the attempt up (its lease runs out; the job runs elsewhere). */
  reportInternalResendsMax: 5,
} as const;

/** Result publishers (docs/publishing.md): the worker's uploads, and the coordinator's re-sends. */
export const PUBLISH_DEFAULTS = {
  /** Files of one output directory a worker uploads at once. */
  publishConcurrencyMax: 4,
  /** Parts of one multipart upload in flight at once. */
  publishPartsInFlightMax: 4,
  /** A file larger than this goes to an S3-compatible store as a multipart upload in parts of this size (S3's smallest part is 5 MiB). */
  publishPartSizeBytes: 8 * 1024 * 1024,
  /** Tries of one file (each from its first byte) before the publish is reported failed. */
  publishFileTriesMax: 4,
  /** Before a file's next try the worker waits up to this long (with jitter), doubling with each try. */
  publishRetryBaseDelayMs: 500,
  /** No wait between a file's tries is longer than this. */
  publishRetryMaxDelayMs: 30_000,
  /** Most files an output directory may hold; a larger one fails its publish (the manifest must fit a frame). */
  publishFilesMax: 1000,
  /** Longest path of a file inside an output directory, in characters. */
  publishPathMaxChars: 1024,
  /** How often a coordinator looks for due publishes of the workers attached to it. */
  publishCheckIntervalMs: 2_000,
  /** Most due publishes one look reads. */
  publishCheckBatchMax: 100,
  /** A publish its worker has not answered within this long is sent again (a publish already under way there is not restarted). */
  publishResendAfterMs: 10 * 60 * 1000,
  /** After a failed publish the coordinator sends it again after this long, doubling with each failure. */
  publishFailedRetryBaseDelayMs: 5_000,
  /** No wait before sending a failed publish again is longer than this. */
  publishFailedRetryMaxDelayMs: 10 * 60 * 1000,
  /** An output directory neither published nor discarded within this long of its result is deleted by its worker. */
  outputKeepMaxMs: 7 * 24 * 3600 * 1000,
  /** How often a worker looks for output directories held past outputKeepMaxMs. */
  outputSweepIntervalMs: 3600 * 1000,
} as const;

/** The exec runner: one child process per attempt (`gaffer worker --exec`). */
export const EXEC_DEFAULTS = {
  /** After SIGTERM, a child that has not exited within this long gets SIGKILL. */
  killGraceMs: 10_000,
  /** Most bytes of stdout read as the result; more fails the attempt. */
  stdoutMaxBytes: 1024 * 1024,
  /** The tail of stderr kept for the error of a failed attempt. */
  stderrTailMaxBytes: 4 * 1024,
  /** A child exiting with this code fails the job at once, with no retry (sysexits EX_DATAERR). */
  permanentExitCode: 65,
  /** The child's CPU time and resident memory are sampled this often (from /proc, Linux) for its resource trace. */
  traceIntervalMs: 100,
} as const;

/** The PostgreSQL store (src/store/postgres): one pool per coordinator, plus one listening connection. */
export const POSTGRES_DEFAULTS = {
  /** Pooled connections one store (one coordinator) opens at most; the LISTEN connection is one more. */
  poolMax: 10,
  /** A store call that waits longer than this for a pooled connection fails with STORE_BUSY. */
  connectTimeoutMs: 10_000,
  /** A pooled connection left idle this long is closed. */
  idleTimeoutMs: 30_000,
  /** A transaction that ends in a deadlock or a serialization failure is run again at most this many times, then STORE_BUSY. */
  txRetryMax: 5,
  /** Results of plain jobs that arrive while one such statement runs are settled together in the next, at most this many (one commit, one WAL flush). */
  completeBatchMax: 256,
  /** Such a batch also stops growing once its results' JSON passes this many bytes (a batch holds at least one report). */
  completeBatchMaxBytes: 8 * 1024 * 1024,
  /** Before a retry the transaction waits up to this long times the retry number, with jitter. */
  txRetryBaseDelayMs: 5,
  /** The LISTEN connection's first reconnect waits this long; each failed try doubles it. */
  listenReconnectBaseDelayMs: 250,
  /** No reconnect of the LISTEN connection waits longer than this. */
  listenReconnectMaxDelayMs: 10_000,
  /** While the LISTEN connection is down, wake-up listeners are called this often instead (notifications sent meanwhile are lost). */
  wakePollIntervalMs: 1_000,
} as const;

/** The AMQP RPC bridge (`gaffer bridge amqp`, src/bridge; docs/tutorials/rabbitmq-rpc.md). */
export const BRIDGE_DEFAULTS = {
  /** Requests of one mapped queue the broker delivers and the bridge holds unacknowledged at once (basic.qos prefetch). */
  prefetchMaxMessages: 32,
  /** Jobs of one mapped queue whose reply the bridge awaits at once: the prefetch of its pending-reply queue. */
  awaitMaxJobs: 256,
  /** Acks and publishes committed together in one AMQP transaction. */
  commitBatchMaxOps: 64,
  /** A submit the coordinator could not take (network, 5xx, 408, 429) is tried again after this long, doubling each time. */
  submitRetryBaseDelayMs: 200,
  /** No submit retry waits longer than this; a request is retried until it is taken or refused. */
  submitRetryMaxDelayMs: 10_000,
  /** After the broker connection is lost, the first reconnect waits this long; each failed try doubles it. */
  reconnectBaseDelayMs: 250,
  /** No broker reconnect waits longer than this. */
  reconnectMaxDelayMs: 5_000,
  /** Every awaited job is read again this often, whatever the event stream said (a missed event costs at most this). */
  resyncIntervalMs: 30_000,
  /** Job reads one resync runs at once. */
  resyncMaxRequests: 8,
} as const;
