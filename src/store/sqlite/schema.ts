// Numbered migrations for the SQLite store. A migration is never edited once
// released: a change is a new, higher number.
//
// Both stores number their migrations alike: version N is the same change,
// under the same name, here and in ../postgres/schema.ts (migrations.test.ts
// checks it). A change one store has no use for is a no-op in that store,
// kept under its number (version 5 below: PostgreSQL's claim index).
//
// The numbers once drifted: released SQLite files recorded "jobs know whether
// anything depends on them" as version 5, where PostgreSQL has it as 6 after
// its own 5. Renumbering the list alone would break those files (they would
// skip the new 5 and run the ALTER of 6 a second time), so RENUMBERED names
// each such record. migrate() (db.ts) moves it to its shared number, and
// records the no-ops it skipped over as applied, before it reads how far the
// file has got, all in the transaction that runs the missing migrations. A
// record is matched by version and name together: a file made under the
// shared numbering, whose 5 is the no-op, is never touched. PostgreSQL's
// numbers did not move, so its schemas need nothing of the kind.
import { ATTEMPT_STATES, JOB_STATES, LIVE_ATTEMPT_STATES, TERMINAL_JOB_STATES } from '../../types/states.ts';

const list = (xs: readonly string[]): string => xs.map((x) => `'${x}'`).join(', ');

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'jobs, attempts, dependencies, workers, transition rules',
    sql: `
CREATE TABLE jobs (
  id                   TEXT PRIMARY KEY,
  queue                TEXT NOT NULL,
  state                TEXT NOT NULL CHECK (state IN (${list(JOB_STATES)})),
  payload              TEXT NOT NULL,
  priority             INTEGER NOT NULL,
  run_at               INTEGER NOT NULL,
  deadline_at          INTEGER NOT NULL,
  has_deadline         INTEGER NOT NULL CHECK (has_deadline IN (0, 1)),
  timeout_ms           INTEGER NOT NULL CHECK (timeout_ms > 0),
  heartbeat_timeout_ms INTEGER NOT NULL CHECK (heartbeat_timeout_ms > 0),
  max_attempts         INTEGER NOT NULL CHECK (max_attempts >= 1),
  backoff_base_ms      INTEGER NOT NULL CHECK (backoff_base_ms >= 0),
  backoff_max_ms       INTEGER NOT NULL CHECK (backoff_max_ms >= 0),
  req_cores            INTEGER NOT NULL CHECK (req_cores >= 0),
  req_memory_mb        INTEGER NOT NULL CHECK (req_memory_mb >= 0),
  req_gpus             INTEGER NOT NULL CHECK (req_gpus >= 0),
  req_labels           TEXT NOT NULL,
  affinity_key         TEXT,
  affinity_mode        TEXT CHECK (affinity_mode IN ('prefer', 'require')),
  depends_on           TEXT NOT NULL,
  replicas             INTEGER NOT NULL CHECK (replicas >= 1),
  quorum               INTEGER NOT NULL CHECK (quorum >= 1 AND quorum <= replicas),
  verify               TEXT,
  idempotency_key      TEXT,
  labels               TEXT NOT NULL,
  attempts             INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  failures             INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
  want                 INTEGER NOT NULL DEFAULT 0 CHECK (want >= 0),
  live                 INTEGER NOT NULL DEFAULT 0 CHECK (live >= 0),
  pending_parents      INTEGER NOT NULL DEFAULT 0 CHECK (pending_parents >= 0),
  result               TEXT,
  error                TEXT,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL,
  finished_at          INTEGER,
  CHECK ((affinity_key IS NULL) = (affinity_mode IS NULL)),
  CHECK ((state IN (${list(TERMINAL_JOB_STATES)})) = (finished_at IS NOT NULL)),
  -- A live attempt means a running job. The converse (running means a live attempt)
  -- holds at every commit; the invariant tests check it.
  CHECK (live = 0 OR state = 'running'),
  CHECK (state IN ('queued', 'running') OR want = 0),
  CHECK ((state = 'waiting') = (pending_parents > 0) OR state IN (${list(TERMINAL_JOB_STATES)})),
  CHECK (state <> 'succeeded' OR result IS NOT NULL)
);
-- The claim path: ready jobs of a queue by priority, deadline, age.
CREATE INDEX jobs_claim ON jobs (queue, priority DESC, deadline_at, id) WHERE want > 0;
-- The aging path: the oldest ready jobs of a queue.
CREATE INDEX jobs_claim_age ON jobs (queue, id) WHERE want > 0;
-- Delayed jobs: when the next one becomes ready.
CREATE INDEX jobs_run_at ON jobs (run_at) WHERE want > 0;
-- The deadline sweeper: jobs not started yet, by deadline.
CREATE INDEX jobs_deadline ON jobs (deadline_at) WHERE state IN ('waiting', 'queued') AND has_deadline = 1;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_queue ON jobs (queue, id);

CREATE TABLE job_deps (
  parent_id TEXT NOT NULL REFERENCES jobs (id),
  job_id    TEXT NOT NULL REFERENCES jobs (id),
  PRIMARY KEY (parent_id, job_id)
) WITHOUT ROWID;

CREATE TABLE attempts (
  id                   TEXT PRIMARY KEY,
  job_id               TEXT NOT NULL REFERENCES jobs (id),
  worker_id            TEXT NOT NULL,
  queue                TEXT NOT NULL,
  seq                  INTEGER NOT NULL CHECK (seq >= 1),
  state                TEXT NOT NULL CHECK (state IN (${list(ATTEMPT_STATES)})),
  lease                TEXT NOT NULL,
  gpu_ids              TEXT NOT NULL,
  cores                INTEGER NOT NULL CHECK (cores >= 0),
  memory_mb            INTEGER NOT NULL CHECK (memory_mb >= 0),
  heartbeat_timeout_ms INTEGER NOT NULL CHECK (heartbeat_timeout_ms > 0),
  leased_at            INTEGER NOT NULL,
  started_at           INTEGER,
  heartbeat_at         INTEGER NOT NULL,
  lease_expires_at     INTEGER NOT NULL,
  timeout_at           INTEGER NOT NULL,
  finished_at          INTEGER,
  result               TEXT,
  result_hash          TEXT,
  error                TEXT,
  progress             TEXT,
  CHECK ((state IN (${list(LIVE_ATTEMPT_STATES)})) = (finished_at IS NULL)),
  CHECK (state NOT IN ('completed', 'rejected') OR result_hash IS NOT NULL)
);
CREATE INDEX attempts_job ON attempts (job_id);
CREATE INDEX attempts_worker_live ON attempts (worker_id, queue) WHERE state IN (${list(LIVE_ATTEMPT_STATES)});
CREATE INDEX attempts_lease_expiry ON attempts (lease_expires_at) WHERE state IN (${list(LIVE_ATTEMPT_STATES)});
CREATE INDEX attempts_timeout ON attempts (timeout_at) WHERE state IN (${list(LIVE_ATTEMPT_STATES)});

CREATE TABLE workers (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  labels       TEXT NOT NULL,
  cores        INTEGER NOT NULL CHECK (cores >= 0),
  memory_mb    INTEGER NOT NULL CHECK (memory_mb >= 0),
  gpu_ids      TEXT NOT NULL,
  queues       TEXT NOT NULL,
  keys         TEXT NOT NULL,
  connected    INTEGER NOT NULL CHECK (connected IN (0, 1)),
  draining     INTEGER NOT NULL DEFAULT 0 CHECK (draining IN (0, 1)),
  quarantined  INTEGER NOT NULL DEFAULT 0 CHECK (quarantined IN (0, 1)),
  connected_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  created_at   INTEGER NOT NULL
);

-- The legal state moves, loaded from the code's transition tables at every
-- start. The triggers refuse any other move.
CREATE TABLE job_transitions (
  from_state TEXT NOT NULL,
  to_state   TEXT NOT NULL,
  PRIMARY KEY (from_state, to_state)
) WITHOUT ROWID;
CREATE TABLE attempt_transitions (
  from_state TEXT NOT NULL,
  to_state   TEXT NOT NULL,
  PRIMARY KEY (from_state, to_state)
) WITHOUT ROWID;
CREATE TRIGGER jobs_legal_transition BEFORE UPDATE OF state ON jobs
  WHEN OLD.state <> NEW.state AND NOT EXISTS (
    SELECT 1 FROM job_transitions WHERE from_state = OLD.state AND to_state = NEW.state)
  BEGIN SELECT RAISE(ABORT, 'illegal job state transition'); END;
CREATE TRIGGER attempts_legal_transition BEFORE UPDATE OF state ON attempts
  WHEN OLD.state <> NEW.state AND NOT EXISTS (
    SELECT 1 FROM attempt_transitions WHERE from_state = OLD.state AND to_state = NEW.state)
  BEGIN SELECT RAISE(ABORT, 'illegal attempt state transition'); END;
`,
  },
  {
    version: 2,
    name: 'finished attempts by queue and time, for queue statistics',
    sql: `
-- Queue statistics read the newest finished attempts of one queue.
CREATE INDEX attempts_queue_finished ON attempts (queue, finished_at) WHERE finished_at IS NOT NULL;
`,
  },
  {
    version: 3,
    name: 'trust: adaptive and solo jobs, verification jobs, challenges, traces, reputation, reliability checks',
    sql: `
ALTER TABLE jobs ADD COLUMN adaptive INTEGER NOT NULL DEFAULT 0 CHECK (adaptive IN (0, 1));
-- This round runs on one trusted worker alone (adaptive replication).
ALTER TABLE jobs ADD COLUMN solo INTEGER NOT NULL DEFAULT 0 CHECK (solo IN (0, 1));
-- Replicas added this round after a tie or no quorum.
ALTER TABLE jobs ADD COLUMN extra_replicas INTEGER NOT NULL DEFAULT 0 CHECK (extra_replicas >= 0);
-- A verification job names the job and attempt whose result it checks.
ALTER TABLE jobs ADD COLUMN verifies_job_id TEXT;
ALTER TABLE jobs ADD COLUMN verifies_attempt_id TEXT;
-- A reliability challenge may run only on this worker.
ALTER TABLE jobs ADD COLUMN pinned_worker_id TEXT;
CREATE INDEX jobs_verifies ON jobs (verifies_job_id) WHERE verifies_job_id IS NOT NULL;

ALTER TABLE attempts ADD COLUMN trace TEXT;

ALTER TABLE workers ADD COLUMN valid_count INTEGER NOT NULL DEFAULT 0 CHECK (valid_count >= 0);
ALTER TABLE workers ADD COLUMN invalid_count INTEGER NOT NULL DEFAULT 0 CHECK (invalid_count >= 0);
ALTER TABLE workers ADD COLUMN timed_out_count INTEGER NOT NULL DEFAULT 0 CHECK (timed_out_count >= 0);
ALTER TABLE workers ADD COLUMN valid_streak INTEGER NOT NULL DEFAULT 0 CHECK (valid_streak >= 0);
ALTER TABLE workers ADD COLUMN solo_since_check INTEGER NOT NULL DEFAULT 0 CHECK (solo_since_check >= 0);
ALTER TABLE workers ADD COLUMN quarantine_reason TEXT;

-- One reliability check per worker and queue: the challenge job, its expected
-- answer, and the verdict with the measured time.
CREATE TABLE worker_checks (
  worker_id     TEXT NOT NULL,
  queue         TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('pending', 'passed', 'failed')),
  job_id        TEXT NOT NULL,
  answer_hash   TEXT NOT NULL,
  time_limit_ms INTEGER NOT NULL CHECK (time_limit_ms > 0),
  speed_ms      INTEGER,
  reason        TEXT,
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (worker_id, queue)
) WITHOUT ROWID;
CREATE INDEX worker_checks_job ON worker_checks (job_id);
`,
  },
  {
    version: 4,
    name: 'trust: one adaptive decision per round, and where a round starts',
    sql: `
-- Set when the first lease of a round made the adaptive decision (solo or not):
-- a solo round that fails is rerun replicated, not decided again.
ALTER TABLE jobs ADD COLUMN adapted INTEGER NOT NULL DEFAULT 0 CHECK (adapted IN (0, 1));
-- Attempts made before the current round began (0: none). A retry starts a new
-- round: the workers of earlier rounds may run the job again.
ALTER TABLE jobs ADD COLUMN round_seq INTEGER NOT NULL DEFAULT 0 CHECK (round_seq >= 0);
`,
  },
  {
    version: 5,
    name: 'claims: the oldest ready jobs by creation time, from their own index',
    sql: `
-- A no-op here, kept for the shared numbering: SQLite's claim reads name
-- jobs_claim_age (INDEXED BY), which serves them.
`,
  },
  {
    version: 6,
    name: 'jobs know whether anything depends on them',
    sql: `
-- Set (never cleared) by the submit that makes a job a parent. The PostgreSQL
-- store's one-statement result path needs it; kept here too so that both
-- stores have the same columns.
ALTER TABLE jobs ADD COLUMN has_dependants INTEGER NOT NULL DEFAULT 0 CHECK (has_dependants IN (0, 1));
UPDATE jobs SET has_dependants = 1 WHERE id IN (SELECT parent_id FROM job_deps);
`,
  },
  {
    version: 7,
    name: 'queues: pause and resume at run time',
    sql: `
-- A row per queue an operator has paused or resumed; a queue without one is
-- not paused. A claim leaves paused queues out; running attempts finish.
CREATE TABLE queues (
  name      TEXT PRIMARY KEY,
  paused    INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
  paused_at INTEGER,
  reason    TEXT,
  updated_at INTEGER NOT NULL,
  CHECK ((paused = 1) = (paused_at IS NOT NULL))
) WITHOUT ROWID;
`,
  },
  {
    version: 8,
    name: 'history: counts and time histograms per queue, by minute and by hour',
    sql: `
-- One row per queue, step (60 000: a minute; 3 600 000: an hour) and start of
-- the step (at_ms). Coordinators add into the rows (INSERT ... ON CONFLICT DO
-- UPDATE SET n = n + excluded.n); the sweeper rolls minutes up into hours and
-- drops old hours. wait_b0..b7 and run_b0..b7 count wait and run times by the
-- buckets of HISTORY_BUCKET_BOUNDS_MS (src/types/history.ts); _sum_ms sum them.
CREATE TABLE queue_history (
  queue     TEXT NOT NULL,
  step_ms   INTEGER NOT NULL CHECK (step_ms IN (60000, 3600000)),
  at_ms     INTEGER NOT NULL,
  submitted INTEGER NOT NULL DEFAULT 0,
  succeeded INTEGER NOT NULL DEFAULT 0,
  failed    INTEGER NOT NULL DEFAULT 0,
  lost      INTEGER NOT NULL DEFAULT 0,
  retried   INTEGER NOT NULL DEFAULT 0,
  cancelled INTEGER NOT NULL DEFAULT 0,
  wait_sum_ms  INTEGER NOT NULL DEFAULT 0,
  wait_b0  INTEGER NOT NULL DEFAULT 0,
  wait_b1  INTEGER NOT NULL DEFAULT 0,
  wait_b2  INTEGER NOT NULL DEFAULT 0,
  wait_b3  INTEGER NOT NULL DEFAULT 0,
  wait_b4  INTEGER NOT NULL DEFAULT 0,
  wait_b5  INTEGER NOT NULL DEFAULT 0,
  wait_b6  INTEGER NOT NULL DEFAULT 0,
  wait_b7  INTEGER NOT NULL DEFAULT 0,
  run_sum_ms  INTEGER NOT NULL DEFAULT 0,
  run_b0  INTEGER NOT NULL DEFAULT 0,
  run_b1  INTEGER NOT NULL DEFAULT 0,
  run_b2  INTEGER NOT NULL DEFAULT 0,
  run_b3  INTEGER NOT NULL DEFAULT 0,
  run_b4  INTEGER NOT NULL DEFAULT 0,
  run_b5  INTEGER NOT NULL DEFAULT 0,
  run_b6  INTEGER NOT NULL DEFAULT 0,
  run_b7  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, step_ms, at_ms)
) WITHOUT ROWID;
-- The roll-up and the drop read by step and time across queues.
CREATE INDEX queue_history_step ON queue_history (step_ms, at_ms);
`,
  },
  {
    version: 9,
    name: 'workers: the operator whose token created the record',
    sql: `
-- The operator named by the token that first said hello with this id. A hello
-- naming the id under another operator is refused (WORKER_ID_TAKEN). Records
-- made before this migration have none: the first hello after it adopts them.
ALTER TABLE workers ADD COLUMN operator TEXT;
`,
  },
  {
    version: 10,
    name: 'votes need a margin and distinct operators; lost leases are the worker\'s',
    sql: `
-- How far a replicated job's leading result must be ahead of the runner-up,
-- and whether its replicas go to distinct operators or distinct workers. Jobs
-- made before this migration keep the bare lead and distinct workers.
ALTER TABLE jobs ADD COLUMN margin INTEGER NOT NULL DEFAULT 1 CHECK (margin >= 1);
ALTER TABLE jobs ADD COLUMN distinct_by TEXT NOT NULL DEFAULT 'worker' CHECK (distinct_by IN ('operator', 'worker'));
-- Attempts lost because their worker went silent: not the job's failures, bounded on their own.
ALTER TABLE jobs ADD COLUMN lost INTEGER NOT NULL DEFAULT 0 CHECK (lost >= 0);
-- Slow start: the attempts a worker may hold at once grow by one with each
-- attempt it completes and halve with each it loses (a new record's credit is
-- set by the store from its trust policy). Completions are not written to the
-- worker's row as they happen: credit and completed_count hold the counts as
-- of credit_at, and the attempts it completed since are counted (by the index
-- below) when a claim or a lost attempt needs them.
ALTER TABLE workers ADD COLUMN credit INTEGER NOT NULL DEFAULT 4 CHECK (credit >= 1);
ALTER TABLE workers ADD COLUMN completed_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN credit_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX attempts_worker_completed ON attempts (worker_id, finished_at) WHERE state IN ('completed', 'rejected');
`,
  },
  {
    version: 11,
    name: 'retention: finished jobs by queue and time, dependency rows by dependant, workers by last seen',
    sql: `
-- The retention sweeper reads a queue's finished jobs oldest first, and the
-- queues that have any (one probe per queue).
CREATE INDEX jobs_finished ON jobs (queue, finished_at, id) WHERE finished_at IS NOT NULL;
-- Deleting a job deletes the dependency rows that name it as the dependant
-- (and the foreign key check of the delete looks them up the same way).
CREATE INDEX job_deps_job ON job_deps (job_id);
-- Pruning reads the worker records seen longest ago first.
CREATE INDEX workers_last_seen ON workers (last_seen_at);
`,
  },
  {
    version: 12,
    name: 'attempts: a revoked attempt holds its resources until it has stopped',
    sql: `
-- A revoked attempt (cancelled, settled by another replica, timed out) may
-- still be stopping on its worker: its slot, cores, memory and GPUs stay held
-- until held_until (the end of its lease), or until a heartbeat of its worker
-- no longer names it (the worker stopped it). NULL: it holds nothing.
ALTER TABLE attempts ADD COLUMN held_until INTEGER;
CREATE INDEX attempts_held ON attempts (worker_id) WHERE held_until IS NOT NULL;
`,
  },
  {
    version: 13,
    name: 'pipelines: instances of templates, and the jobs that belong to one',
    sql: `
-- One row per pipeline instance. definition: its template as it was when the
-- instance was made (JSON). idempotency_key: a submit naming a key seen before
-- answers this instance. state: running until every job succeeded
-- (succeeded) or one failed for good (failed; the rest failed or cancelled as
-- on_failure says) or was cancelled (cancelled); error says which job and why.
CREATE TABLE pipelines (
  id              TEXT PRIMARY KEY,
  template        TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
  idempotency_key TEXT UNIQUE,
  locality        TEXT NOT NULL,
  on_failure      TEXT NOT NULL CHECK (on_failure IN ('fail', 'cancel')),
  definition      TEXT NOT NULL,
  payload         TEXT NOT NULL,
  error           TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  finished_at     INTEGER,
  CHECK ((state = 'running') = (finished_at IS NULL))
);
-- GET /v1/pipelines?template=&state= reads newest first.
CREATE INDEX pipelines_template ON pipelines (template, id);
CREATE INDEX pipelines_state ON pipelines (state, id);
-- A job of an instance: the instance, its phase, its number in the phase.
-- (SQLite cannot add a table CHECK to an existing table: the store writes the three together.)
ALTER TABLE jobs ADD COLUMN pipeline_id TEXT REFERENCES pipelines (id);
ALTER TABLE jobs ADD COLUMN phase TEXT;
ALTER TABLE jobs ADD COLUMN phase_index INTEGER;
CREATE INDEX jobs_pipeline ON jobs (pipeline_id, id) WHERE pipeline_id IS NOT NULL;
`,
  },
  {
    version: 14,
    name: 'filler jobs of the backlog keeper, and queues paused on one worker',
    sql: `
-- A job the backlog keeper made ([queues.NAME.backlog]): the keeper counts a
-- queue's queued ones (the index below) and tops them up to the target.
ALTER TABLE jobs ADD COLUMN filler INTEGER NOT NULL DEFAULT 0 CHECK (filler IN (0, 1));
CREATE INDEX jobs_filler_queued ON jobs (queue) WHERE filler = 1 AND state = 'queued';
-- Queues an operator paused on this worker (a JSON array of names): a claim
-- gives it nothing of them. Kept when the worker says hello again.
ALTER TABLE workers ADD COLUMN paused_queues TEXT NOT NULL DEFAULT '[]';
`,
  },
  {
    version: 15,
    name: 'speculative backups: an attempt may back up a slow one',
    sql: `
-- A backup attempt runs the same job as a slow or late attempt (backup_of)
-- on another worker; the first result wins. The job row holds the backup
-- asked for and not yet placed (its want counts it), the attempt row the
-- one placed, with why (deadline or slow).
ALTER TABLE jobs ADD COLUMN backup_of TEXT;
ALTER TABLE jobs ADD COLUMN backup_reason TEXT CHECK (backup_reason IN ('deadline', 'slow'));
ALTER TABLE attempts ADD COLUMN backup_of TEXT;
ALTER TABLE attempts ADD COLUMN backup_reason TEXT CHECK (backup_reason IN ('deadline', 'slow'));
CREATE INDEX jobs_backup ON jobs (id) WHERE backup_of IS NOT NULL;
CREATE INDEX attempts_backup ON attempts (backup_of) WHERE backup_of IS NOT NULL;
-- The speculation pass reads each queue's longest-running live attempts first.
CREATE INDEX attempts_live_leased ON attempts (queue, leased_at) WHERE state IN (${list(LIVE_ATTEMPT_STATES)});
-- One row per named lock: several coordinators' speculation passes take it in
-- turn, so that together they keep the share of backups within its bound.
CREATE TABLE store_locks (name TEXT PRIMARY KEY);
INSERT INTO store_locks (name) VALUES ('speculation');
`,
  },
  {
    version: 16,
    name: 'publishing: attempts that hold an output, and the publish of an accepted one',
    sql: `
-- The attempt's worker holds an output directory, published only if the
-- attempt's result is accepted (docs/publishing.md).
ALTER TABLE attempts ADD COLUMN output INTEGER NOT NULL DEFAULT 0 CHECK (output IN (0, 1));
-- A succeeded job whose accepted attempt holds an output: its publish. NULL
-- state: nothing to publish. publish_next_at is when the coordinator next
-- tells the worker (a pending publish not yet answered, a failed one retried).
ALTER TABLE jobs ADD COLUMN publish_state TEXT CHECK (publish_state IN ('pending', 'published', 'failed'));
ALTER TABLE jobs ADD COLUMN publish_attempt_id TEXT;
ALTER TABLE jobs ADD COLUMN publish_worker_id TEXT;
ALTER TABLE jobs ADD COLUMN publish_tries INTEGER NOT NULL DEFAULT 0 CHECK (publish_tries >= 0);
ALTER TABLE jobs ADD COLUMN publish_next_at INTEGER;
ALTER TABLE jobs ADD COLUMN publish_error TEXT;
ALTER TABLE jobs ADD COLUMN publish_manifest TEXT;
ALTER TABLE jobs ADD COLUMN publish_updated_at INTEGER;
-- The coordinators read the due publishes of the workers attached to them.
CREATE INDEX jobs_publish_due ON jobs (publish_worker_id, publish_next_at) WHERE publish_state IN ('pending', 'failed');
`,
  },
  {
    version: 17,
    name: 'workers: the host and process id a worker reports',
    sql: `
-- What the worker's hello says of where it runs (its host name and process
-- id), shown to operators so a worker can be found on its machine. NULL for
-- a worker that does not say.
ALTER TABLE workers ADD COLUMN host TEXT;
ALTER TABLE workers ADD COLUMN pid INTEGER;
`,
  },
  {
    version: 18,
    name: 'coordinators: who claims which share of the ready jobs',
    sql: `
-- Every running coordinator beats here (seen_at) with its weight, the slots
-- of the workers attached to it. The live ones split the ready jobs into
-- shares by rendezvous hashing (src/coordinator/shares.ts); each claims from
-- its own share first. A coordinator that stops deletes its row; one that
-- dies is left out once it has not beaten for a while.
CREATE TABLE coordinators (
  id TEXT PRIMARY KEY,
  weight BIGINT NOT NULL,
  seen_at BIGINT NOT NULL
);
`,
  },
];

/** A migration that released files recorded under another number than the shared one. */
export interface Renumbering {
  name: string;
  fromVersion: number;
  toVersion: number;
}

/**
 * Records to move before migrating (see the top of this file). The versions
 * from fromVersion up to toVersion (excluded) must be no-ops here: a file
 * whose record moves is marked as having applied them.
 */
export const RENUMBERED: readonly Renumbering[] = [
  { name: 'jobs know whether anything depends on them', fromVersion: 5, toVersion: 6 },
];
