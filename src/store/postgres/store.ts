// The PostgreSQL store: several coordinators on one database. Every method is
// one READ COMMITTED transaction; where coordinators race, row locks decide:
//
// - Locks are taken in one order, workers, then jobs, then attempts, so that
//   transactions wait on each other but rarely deadlock; a deadlock that does
//   happen rolls back whole and is run again (db.ts).
// - A claim locks its workers' rows FOR UPDATE (two coordinators never
//   over-commit one worker) and reads candidate jobs FOR UPDATE SKIP LOCKED
//   (two coordinators never lease one job, and never wait on each other's
//   candidates).
// - complete, fail, cancel, retry and the sweepers lock the job row before
//   they read or change its attempts, so every check they make holds until
//   they commit.
// - submit locks the parents it depends on FOR SHARE, so a parent cannot end
//   between reading its state and the child's dependency row being committed.
// - Reputation lives on worker rows: a transaction that may judge a worker
//   (complete of a replicated or verification job, a timeout or lost lease)
//   locks those workers FOR UPDATE before it locks the job, keeping the order
//   above; so does a quarantine, before it takes the worker's jobs back. A job
//   is locked before the verification jobs that check its results.
// - startCheck locks the worker row first, so that two coordinators starting
//   the same worker's check at once create one challenge between them.
// - Times are the injected clock's, passed as parameters; now() is never used.
// - submit, retry, and anything that makes a job claimable again NOTIFY the
//   other coordinators (onWake): a new verification job or challenge, a
//   rejected result's job back in the queue, an added replica, an evicted
//   worker's jobs put back.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Clock, Random } from '../../types/clock.ts';
import { assert, GafferError } from '../../types/errors.ts';
import { idFactory, randomToken, type IdFactory } from '../../types/ids.ts';
import { LIMITS, POSTGRES_DEFAULTS } from '../../types/limits.ts';
import type {
  Assignment,
  Attempt,
  Candidate,
  Job,
  JobError,
  Json,
  NewJob,
  Placement,
  Reputation,
  Trace,
  Worker,
  WorkerCapacity,
  WorkerCheck,
  WorkerSpec,
} from '../../types/model.ts';
import { decideQuorum, judge, quarantineReason, trustPolicy, type TrustPolicy } from '../../trust/index.ts';
import { LIVE_ATTEMPT_STATES, TERMINAL_JOB_STATES, type JobState } from '../../types/states.ts';
import {
  assertWithinDeclared,
  assignmentOf,
  CANDIDATE_COLUMNS,
  candidateFromRow,
  CHECK_COLUMNS,
  capacities,
  checkPlacements,
  type ClaimScope,
  candidatePaging,
  claimScope,
  EXCLUDING_ATTEMPT_STATES,
  LIVE_ATTEMPT_COLUMNS,
  needsExclusions,
  candidateFilter,
  excludeUnplaceableLabels,
  type CandidateFilter,
} from '../claiming.ts';
import { attemptFromRow, checkFromRow, decodeCursor, emptyCounts, encodeCursor, jobFromRow, reputationFromRow, workerFromRow, type Row } from '../rows.ts';
import {
  assertRetryable,
  challengeAgain,
  clipMessage,
  countsAsFailure,
  initialJobState,
  isVerdict,
  NO_DEADLINE,
  resultHash,
  retryDelayMs,
  soloDecision,
  splitByTrace,
  verifierPayload,
  type JobLinks,
  type VerdictResult,
} from '../rules.ts';
import type {
  Change,
  ClaimParams,
  CompleteParams,
  FailParams,
  HeartbeatParams,
  HeartbeatResult,
  JobPage,
  LeaseRef,
  ListJobsParams,
  QuarantineParams,
  QueueCounts,
  QueueRunStats,
  SettleResult,
  StartCheckParams,
  Store,
  SubmitResult,
  SweepResult,
} from '../store.ts';
import { PgDb, WAKE_CHANNEL, type Param, type Sql, type Tx } from './db.ts';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database. Either this or `pool`. */
  url?: string;
  /** A pool the caller owns (and ends): the store uses it and leaves it open on close. */
  pool?: pg.Pool;
  /** The schema of Gaffer's tables: created when missing, set as the search_path of the store's connections. */
  schema?: string;
  clock: Clock;
  random: Random;
  /** Most pooled connections, when the store makes its own pool (POSTGRES_DEFAULTS.poolMax). */
  poolMax?: number;
  /** A worker not seen for this long is shown offline. */
  workerOfflineAfterMs?: number;
  /** Quarantine thresholds, adaptive replication, extra replicas (TRUST_DEFAULTS). */
  trust?: Partial<TrustPolicy>;
}

const q = (xs: readonly string[]): string => `(${xs.map((x) => `'${x}'`).join(', ')})`;
const LIVE = q(LIVE_ATTEMPT_STATES);
const TERMINAL = q(TERMINAL_JOB_STATES);
const EXCLUDING = q(EXCLUDING_ATTEMPT_STATES);
const J = JSON.stringify;
/** Error codes of a failure that counts against the worker (its timed-out count). */
const COUNTED_AGAINST_WORKER: ReadonlySet<string> = new Set(['TIMEOUT', 'LEASE_LOST']);

/** Connects, migrates, and returns a store. Several stores (coordinators) may share one database and schema. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  // A bad policy is refused before any connection is opened.
  trustPolicy(options.trust);
  const storeId = randomUUID();
  const db = await PgDb.open(options, storeId);
  return new PostgresStore(db, storeId, options);
}

/** The columns submit inserts, with their types for unnest. */
const JOB_INSERT_COLUMNS = [
  ['id', 'text'], ['queue', 'text'], ['state', 'text'], ['payload', 'text'], ['priority', 'int'], ['run_at', 'bigint'],
  ['deadline_at', 'bigint'], ['has_deadline', 'smallint'], ['timeout_ms', 'bigint'], ['heartbeat_timeout_ms', 'bigint'],
  ['max_attempts', 'int'], ['backoff_base_ms', 'bigint'], ['backoff_max_ms', 'bigint'], ['req_cores', 'int'],
  ['req_memory_mb', 'bigint'], ['req_gpus', 'int'], ['req_labels', 'text'], ['affinity_key', 'text'], ['affinity_mode', 'text'],
  ['depends_on', 'text'], ['replicas', 'int'], ['quorum', 'int'], ['verify', 'text'], ['idempotency_key', 'text'],
  ['labels', 'text'], ['want', 'int'], ['pending_parents', 'int'], ['error', 'text'], ['created_at', 'bigint'],
  ['updated_at', 'bigint'], ['finished_at', 'bigint'], ['adaptive', 'smallint'], ['verifies_job_id', 'text'],
  ['verifies_attempt_id', 'text'], ['pinned_worker_id', 'text'],
] as const;

const INSERT_JOBS_SQL = `
  INSERT INTO jobs (${JOB_INSERT_COLUMNS.map(([c]) => c).join(', ')})
  SELECT * FROM unnest(${JOB_INSERT_COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')})
  ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING *`;

/**
 * A batch of jobs with no idempotency keys and no dependencies in one
 * statement (one round trip, no BEGIN/COMMIT): insert them, and NOTIFY the
 * other coordinators when one is claimable. Parameters: INSERT_JOBS_SQL's,
 * then the NOTIFY channel and payload.
 */
const SUBMIT_PLAIN_SQL = `
  WITH ins AS (${INSERT_JOBS_SQL}),
  n AS (SELECT pg_notify($${JOB_INSERT_COLUMNS.length + 1}, $${JOB_INSERT_COLUMNS.length + 2}) WHERE EXISTS (SELECT 1 FROM ins WHERE want > 0))
  SELECT ins.*, (SELECT count(*) FROM n) AS notified FROM ins`;

/**
 * A claim's writes in one statement: the placed jobs move to running (want,
 * live and attempts counted per job; an adaptive solo decision recorded) and
 * their attempts are inserted from what the update returns. $1 now;
 * $2-$5 per job: id, attempts placed, solo, decided; $6-$11 per placement:
 * attempt id, job id, worker id, lease, GPU ids (JSON), its number among its
 * job's placements. Returns the jobs' rows and how many attempts were
 * inserted.
 */
const LEASE_SQL = `
  WITH u AS (
    UPDATE jobs AS j SET want = CASE WHEN v.solo = 1 THEN 0 ELSE j.want - v.n END, live = j.live + v.n,
      attempts = j.attempts + v.n, solo = greatest(j.solo, v.solo), adapted = greatest(j.adapted, v.decided),
      state = 'running', updated_at = $1
    FROM unnest($2::text[], $3::int[], $4::int[], $5::int[]) AS v(id, n, solo, decided)
    WHERE j.id = v.id AND j.want >= v.n AND j.state IN ('queued', 'running')
    RETURNING j.id, j.queue, j.payload, j.attempts, j.timeout_ms, j.heartbeat_timeout_ms, j.deadline_at, j.has_deadline,
      j.req_cores, j.req_memory_mb, j.req_gpus, j.labels, v.n
  ), ins AS (
    INSERT INTO attempts (id, job_id, worker_id, queue, seq, lease, gpu_ids, cores, memory_mb, heartbeat_timeout_ms,
      leased_at, heartbeat_at, lease_expires_at, timeout_at, state)
    SELECT p.attempt_id, p.job_id, p.worker_id, u.queue, u.attempts - u.n + p.k, p.lease, p.gpu_ids, u.req_cores,
      u.req_memory_mb, u.heartbeat_timeout_ms, $1, $1, $1 + u.heartbeat_timeout_ms, $1 + u.timeout_ms, 'leased'
    FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[]) AS p(attempt_id, job_id, worker_id, lease, gpu_ids, k)
    JOIN u ON u.id = p.job_id
    RETURNING 1
  )
  SELECT u.*, (SELECT count(*) FROM ins) AS inserted FROM u`;

/** What a claim reads of a candidate beyond CANDIDATE_COLUMNS: whether its round still awaits the adaptive decision. */
const LEASE_COLUMNS = 'adaptive, adapted';

/**
 * One page of candidates for every queue at once, locked FOR UPDATE SKIP LOCKED:
 * rows another coordinator's claim (or a settle in progress) holds are passed
 * over, not waited for. Per queue: the next page by priority, deadline and age
 * (the jobs_claim index), and on the first page also the oldest ready jobs
 * (jobs_claim_created, by creation time), so that aging can lift them past newer, higher-priority
 * work. Parameters: $1 queues, $2 now, $3 cores, $4 memory, $5 gpus,
 * $6 page size, $7 offset, $8 how many oldest (0 after the first page),
 * $9 label sets left out and $10 the keys held (null: no key filter), the
 * CandidateFilter.
 */
const CANDIDATES_SQL = `
  SELECT c.*, q.ord FROM unnest($1::text[]) WITH ORDINALITY AS q(name, ord)
  CROSS JOIN LATERAL (
    SELECT * FROM (
      SELECT 0 AS part, ${CANDIDATE_COLUMNS}, ${LEASE_COLUMNS} FROM jobs
      WHERE want > 0 AND queue = q.name AND run_at <= $2 AND deadline_at > $2
        AND req_cores <= $3 AND req_memory_mb <= $4 AND req_gpus <= $5
        AND req_labels <> ALL($9::text[])
        AND ($10::text[] IS NULL OR affinity_mode IS DISTINCT FROM 'require' OR affinity_key = ANY($10::text[]))
      ORDER BY priority DESC, deadline_at, id LIMIT $6 OFFSET $7
      FOR UPDATE SKIP LOCKED) by_priority
    UNION ALL
    SELECT * FROM (
      SELECT 1 AS part, ${CANDIDATE_COLUMNS}, ${LEASE_COLUMNS} FROM jobs
      WHERE want > 0 AND queue = q.name AND run_at <= $2 AND deadline_at > $2
        AND req_cores <= $3 AND req_memory_mb <= $4 AND req_gpus <= $5
        AND req_labels <> ALL($9::text[])
        AND ($10::text[] IS NULL OR affinity_mode IS DISTINCT FROM 'require' OR affinity_key = ANY($10::text[]))
      ORDER BY created_at, id LIMIT $8
      FOR UPDATE SKIP LOCKED) oldest
  ) c
  ORDER BY q.ord, c.part, CASE WHEN c.part = 0 THEN -c.priority END, CASE WHEN c.part = 0 THEN c.deadline_at END, c.created_at, c.id`;

/**
 * Results for common jobs (one replica, no verification of any kind, no
 * challenge, nothing depending on them, the job's only live attempt) in one
 * statement, so one round trip and no BEGIN/COMMIT, for a whole batch of
 * reports: lock the jobs in id order without waiting (NOWAIT: a job another
 * transaction holds fails the statement, and every report of the batch takes
 * the full transaction instead, so the statement never waits behind a sweep
 * nor deadlocks), complete each attempt under its lease, accept its result.
 * A report that does not qualify (another kind of job, a stale lease, an
 * unknown attempt) gets no row and changes nothing: the full transaction then
 * decides it. Jobs with dependants are left out because a dependant submitted
 * after this statement's snapshot would be invisible to it; the submit sets
 * has_dependants on the parent's row, which the lock's recheck does see.
 * $1-$5 per report: attempt id, lease, result hash, trace, result; $6 now.
 */
const COMPLETE_SIMPLE_SQL = `
  WITH v AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS v(attempt_id, lease, hash, trace, result)
  ), j AS (
    SELECT jobs.id, at.id AS attempt_id FROM v
    JOIN attempts at ON at.id = v.attempt_id
    JOIN jobs ON jobs.id = at.job_id
    WHERE jobs.replicas = 1 AND jobs.verify IS NULL AND jobs.verifies_job_id IS NULL AND jobs.pinned_worker_id IS NULL
      AND jobs.has_dependants = 0 AND jobs.state = 'running' AND jobs.live = 1
    ORDER BY jobs.id
    FOR UPDATE OF jobs NOWAIT
  ), a AS (
    UPDATE attempts SET state = 'completed', finished_at = $6, result_hash = v.hash, trace = v.trace
    FROM v, j
    WHERE attempts.id = v.attempt_id AND j.attempt_id = v.attempt_id AND attempts.job_id = j.id
      AND attempts.lease = v.lease AND attempts.state IN ${LIVE} AND attempts.lease_expires_at >= $6
    RETURNING attempts.id AS attempt_id, attempts.job_id
  )
  UPDATE jobs SET state = 'succeeded', result = v.result, error = NULL, want = 0, live = 0, finished_at = $6, updated_at = $6
  FROM a JOIN v ON v.attempt_id = a.attempt_id
  WHERE jobs.id = a.job_id
  RETURNING jobs.*, a.attempt_id AS settled_attempt_id`;

type SimpleOutcome = { kind: 'settled'; out: SettleResult } | { kind: 'no' } | { kind: 'unknown' };

interface PendingComplete {
  params: CompleteParams;
  /** The result as JSON text, made once: it is sent, and it counts towards completeBatchMaxBytes. */
  json: string;
  resolve: (out: SimpleOutcome) => void;
}

function completeSimpleParams(reports: readonly PendingComplete[], now: number): Param[] {
  return [
    reports.map((r) => r.params.attemptId),
    reports.map((r) => r.params.lease),
    reports.map((r) => resultHash(r.params.result)),
    reports.map((r) => (r.params.trace ? J(r.params.trace) : null)),
    reports.map((r) => r.json),
    now,
  ];
}

/** An error the server answered with (a SQLSTATE): the statement did not commit. */
function isServerError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

/**
 * Invariant 5 after a claim's writes: each worker's live attempts as the claim
 * read them (under its worker's row lock, which every claim takes, so none
 * were added since; ended ones only free room) plus those just leased stay
 * within what the worker declared.
 */
function assertLeasedWithinCapacity(assignments: readonly Assignment[], workerRows: ReadonlyMap<string, Row>, live: readonly Row[]): void {
  for (const workerId of new Set(assignments.map((a) => a.workerId))) {
    const w = workerRows.get(workerId);
    assert(w, 'a leased attempt belongs to a worker the claim locked');
    const held = live.filter((a) => a.worker_id === workerId);
    for (const a of assignments) {
      if (a.workerId === workerId) held.push({ worker_id: workerId, queue: a.queue, cores: a.cores, memory_mb: a.memoryMb, gpu_ids: J(a.gpuIds) });
    }
    assertWithinDeclared(w, held);
  }
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly capabilities = { shared: true, groupCommit: false } as const;
  private readonly db: PgDb;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly newId: IdFactory;
  private readonly offlineAfterMs: number;
  private readonly wake: WakeListener;
  private readonly trust: TrustPolicy;
  /** Results waiting for the next COMPLETE_SIMPLE_SQL batch, and whether one is being sent. */
  private readonly pendingCompletes: PendingComplete[] = [];
  private completing = false;

  constructor(db: PgDb, storeId: string, options: PostgresStoreOptions) {
    this.db = db;
    this.clock = options.clock;
    this.random = options.random;
    this.newId = idFactory(options.clock, options.random);
    this.offlineAfterMs = options.workerOfflineAfterMs ?? 30_000;
    this.wake = new WakeListener(db, storeId);
    this.trust = trustPolicy(options.trust);
  }

  /**
   * Calls `listener` when another coordinator on this database and schema
   * submitted, retried or re-queued work (LISTEN/NOTIFY on one dedicated
   * connection, re-established after it drops). Notifications sent while no
   * connection listens are lost: meanwhile, and once after it is back, the
   * listener is called on a timer instead. Returns the unsubscribe function.
   */
  onWake(listener: () => void): () => void {
    return this.wake.add(listener);
  }

  /**
   * Resolves once the wake-up connection LISTENs (it opens with the first
   * onWake listener): a NOTIFY committed after this is heard. For tests.
   */
  whenListening(): Promise<void> {
    return this.wake.ready();
  }

  // ---- Jobs ----

  async submit(params: { jobs: readonly NewJob[] }): Promise<SubmitResult[]> {
    assert(params.jobs.length <= LIMITS.submitBatchMaxJobs, 'submit batch within its bound');
    if (params.jobs.length === 0) return [];
    if (params.jobs.every((j) => j.idempotencyKey === null && j.dependsOn.length === 0)) return this.submitPlain(params.jobs);
    return this.db.tx(async (tx) => {
      const out = await this.submitBatch(tx, params.jobs);
      if (out.some((r) => r.created && r.job.want > 0)) tx.wake();
      return out;
    });
  }

  /**
   * The whole batch in a few statements: the keys already known, the parents
   * (locked FOR SHARE), one INSERT of every new job, one of their dependency
   * rows. A key that another coordinator inserts meanwhile makes the INSERT
   * skip that job (ON CONFLICT DO NOTHING); the existing job is then read back.
   */
  /** SUBMIT_PLAIN_SQL: jobs that need no idempotency check and no parent read. */
  private async submitPlain(jobs: readonly NewJob[]): Promise<SubmitResult[]> {
    const now = this.clock.now();
    const rows = jobs.map((j) => this.newJobRow(j, new Map(), now));
    const columns = JOB_INSERT_COLUMNS.map(([c]) => rows.map((r) => r[c] ?? null) as unknown as Param);
    const [channel, payload] = this.db.notifyArgs();
    const inserted = await this.db.read((sql) => sql.all(SUBMIT_PLAIN_SQL, [...columns, channel, payload]));
    const byId = new Map(inserted.map((r) => [String(r.id), r]));
    return rows.map((r) => {
      const row = byId.get(String(r.id));
      assert(row, 'a job with no idempotency key is always inserted');
      return { job: jobFromRow(row), created: true };
    });
  }

  private async submitBatch(tx: Tx, jobs: readonly NewJob[]): Promise<SubmitResult[]> {
    const now = this.clock.now();
    const keys = [...new Set(jobs.map((j) => j.idempotencyKey).filter((k): k is string => k !== null))];
    const existing = new Map<string, Row>();
    if (keys.length > 0) {
      for (const r of await tx.all('SELECT * FROM jobs WHERE idempotency_key = ANY($1::text[])', [keys])) {
        existing.set(String(r.idempotency_key), r);
      }
    }
    // Which jobs are new: the first of each key not seen before, and every job without a key.
    const firstOfKey = new Map<string, number>();
    const fresh: number[] = [];
    jobs.forEach((j, i) => {
      if (j.idempotencyKey === null) return void fresh.push(i);
      if (existing.has(j.idempotencyKey) || firstOfKey.has(j.idempotencyKey)) return;
      firstOfKey.set(j.idempotencyKey, i);
      fresh.push(i);
    });
    const parentIds = [...new Set(fresh.flatMap((i) => jobs[i]!.dependsOn))].sort();
    const parents = new Map<string, JobState>();
    if (parentIds.length > 0) {
      for (const r of await tx.all('SELECT id, state FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE', [parentIds])) {
        parents.set(String(r.id), r.state as JobState);
      }
    }
    const rows = fresh.map((i) => this.newJobRow(jobs[i]!, parents, now));
    const inserted = new Map<string, Row>();
    if (rows.length > 0) {
      const columns = JOB_INSERT_COLUMNS.map(([c]) => rows.map((r) => r[c] ?? null) as unknown as Param);
      for (const r of await tx.all(INSERT_JOBS_SQL, columns)) inserted.set(String(r.id), r);
    }
    // Keys another coordinator committed between our read and our insert.
    const lost = rows.filter((r) => !inserted.has(String(r.id))).map((r) => String(r.idempotency_key));
    if (lost.length > 0) {
      for (const r of await tx.all('SELECT * FROM jobs WHERE idempotency_key = ANY($1::text[])', [lost])) {
        existing.set(String(r.idempotency_key), r);
      }
    }
    const deps = rows.filter((r) => inserted.has(String(r.id))).flatMap((r) => (r.parents as string[]).map((p) => [p, String(r.id)] as const));
    if (deps.length > 0) {
      await tx.run('INSERT INTO job_deps (parent_id, job_id) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING', [
        deps.map((d) => d[0]),
        deps.map((d) => d[1]),
      ]);
      // On the parent's own row, so that COMPLETE_SIMPLE_SQL's recheck of a row it waited for sees it (parents are locked, in id order, above).
      await tx.run('UPDATE jobs SET has_dependants = 1 WHERE id = ANY($1::text[]) AND has_dependants = 0', [[...new Set(deps.map((d) => d[0]))].sort()]);
    }
    const rowOfIndex = new Map(fresh.map((i, k) => [i, rows[k]!]));
    return jobs.map((j, i) => {
      const mine = rowOfIndex.get(i);
      const created = mine !== undefined ? inserted.get(String(mine.id)) : undefined;
      if (created) return { job: jobFromRow(created), created: true };
      const found = j.idempotencyKey === null ? undefined : existing.get(j.idempotencyKey) ?? inserted.get(this.idOfKey(rows, j.idempotencyKey));
      assert(found, 'a job not inserted has a key that names an existing job');
      return { job: jobFromRow(found), created: false };
    });
  }

  private idOfKey(rows: readonly Row[], key: string): string {
    return String(rows.find((r) => r.idempotency_key === key)?.id ?? '');
  }

  /**
   * A job the store makes itself (a verification job, a challenge): no key, no
   * parents, tied to what it checks. One INSERT.
   */
  private async insertLinked(tx: Tx, spec: NewJob, links: JobLinks, now: number): Promise<Job> {
    const row = this.newJobRow({ ...spec, idempotencyKey: null, dependsOn: [] }, new Map(), now, links);
    const columns = JOB_INSERT_COLUMNS.map(([c]) => [row[c] ?? null] as unknown as Param);
    const inserted = await tx.get(INSERT_JOBS_SQL, columns);
    assert(inserted, 'a job without a key is always inserted');
    if (Number(inserted.want) > 0) tx.wake();
    return jobFromRow(inserted);
  }

  /** The row of a new job, as submitOne in the SQLite store makes it; throws UNKNOWN_DEPENDENCY. */
  private newJobRow(spec: NewJob, parents: ReadonlyMap<string, JobState>, now: number, links: JobLinks = {}): Row {
    const id = this.newId();
    const own = [...new Set(spec.dependsOn)].map((pid) => {
      const state = parents.get(pid);
      if (state === undefined) throw new GafferError('UNKNOWN_DEPENDENCY', `dependsOn names ${pid}, which does not exist`, { jobId: pid });
      return { id: pid, state };
    });
    const { state, pending, error } = initialJobState(own);
    return {
      id, queue: spec.queue, state, payload: J(spec.payload), priority: spec.priority, run_at: spec.runAt ?? now,
      deadline_at: spec.deadline ?? NO_DEADLINE, has_deadline: spec.deadline === null ? 0 : 1, timeout_ms: spec.timeoutMs,
      heartbeat_timeout_ms: spec.heartbeatTimeoutMs, max_attempts: spec.maxAttempts, backoff_base_ms: spec.backoff.baseMs,
      backoff_max_ms: spec.backoff.maxMs, req_cores: spec.requires.cores, req_memory_mb: spec.requires.memoryMb,
      req_gpus: spec.requires.gpus, req_labels: J(spec.requires.labels), affinity_key: spec.affinity?.key ?? null,
      affinity_mode: spec.affinity?.mode ?? null, depends_on: J(spec.dependsOn), replicas: spec.replicas, quorum: spec.quorum,
      verify: spec.verify === null ? null : J(spec.verify), idempotency_key: spec.idempotencyKey, labels: J(spec.labels),
      want: state === 'queued' ? spec.replicas : 0, pending_parents: state === 'waiting' ? pending : 0,
      error: error === null ? null : J(error), created_at: now, updated_at: now, finished_at: error !== null ? now : null,
      adaptive: spec.adaptive ? 1 : 0, verifies_job_id: links.verifies?.jobId ?? null,
      verifies_attempt_id: links.verifies?.attemptId ?? null, pinned_worker_id: links.pinnedWorkerId ?? null,
      parents: own.map((p) => p.id),
    };
  }

  async getJob(params: { id: string }): Promise<Job | null> {
    const row = await this.db.read((sql) => sql.get('SELECT * FROM jobs WHERE id = $1', [params.id]));
    return row ? jobFromRow(row) : null;
  }

  private async mustGetJob(sql: Sql, id: string, lock = false): Promise<Job> {
    const row = await sql.get(`SELECT * FROM jobs WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
    if (!row) throw new GafferError('JOB_NOT_FOUND', `no job has id ${id}`, { jobId: id });
    return jobFromRow(row);
  }

  async listJobs(params: ListJobsParams): Promise<JobPage> {
    const where: string[] = [];
    const args: Param[] = [];
    const arg = (v: Param): string => (args.push(v), `$${args.length}`);
    if (params.queue !== undefined) where.push(`queue = ${arg(params.queue)}`);
    if (params.state !== undefined) where.push(`state = ${arg(params.state)}`);
    if (params.label !== undefined) where.push(`(labels::json ->> ${arg(params.label.key)}) = ${arg(params.label.value)}`);
    if (params.cursor !== undefined) where.push(`id < ${arg(decodeCursor(params.cursor))}`);
    const limit = Math.max(1, Math.min(params.limit, LIMITS.listMaxJobs));
    const sql = `SELECT * FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ${arg(limit + 1)}`;
    const rows = await this.db.read((s) => s.all(sql, args));
    const jobs = rows.slice(0, limit).map(jobFromRow);
    const last = jobs[jobs.length - 1];
    return { jobs, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
  }

  async listAttempts(params: { jobId: string }): Promise<Attempt[]> {
    const rows = await this.db.read((sql) => sql.all('SELECT * FROM attempts WHERE job_id = $1 ORDER BY seq, id', [params.jobId]));
    return rows.map(attemptFromRow);
  }

  async listLiveAttempts(params: { workerId: string }): Promise<Attempt[]> {
    const rows = await this.db.read((sql) =>
      sql.all(`SELECT * FROM attempts WHERE worker_id = $1 AND state IN ${LIVE} ORDER BY id`, [params.workerId]),
    );
    return rows.map(attemptFromRow);
  }

  async cancel(params: { jobId: string; reason?: string }): Promise<SettleResult> {
    return this.db.tx(async (tx) => {
      const row = await this.lockJobRow(tx, params.jobId);
      if (!row) throw new GafferError('JOB_NOT_FOUND', `no job has id ${params.jobId}`, { jobId: params.jobId });
      const job = jobFromRow(row);
      if (job.state === 'cancelled') return { job, changes: [] };
      if (TERMINAL_JOB_STATES.includes(job.state)) {
        throw new GafferError('INVALID_STATE', `job ${job.id} already ended ${job.state}`, { state: job.state });
      }
      const error: JobError = { code: 'CANCELLED', message: params.reason ?? 'cancelled by a client' };
      const changes = await this.endJob(tx, job.id, 'cancelled', error);
      return { job: await this.mustGetJob(tx, job.id), changes };
    });
  }

  async retry(params: { jobId: string }): Promise<SettleResult> {
    return this.db.tx(async (tx) => {
      const job = await this.mustGetJob(tx, params.jobId, true);
      if (job.state !== 'failed' && job.state !== 'cancelled' && job.state !== 'expired') {
        throw new GafferError('INVALID_STATE', `only a failed, cancelled or expired job can be retried; ${job.id} is ${job.state}`);
      }
      assertRetryable(job);
      const parents = [...new Set(job.dependsOn)];
      if (parents.length > 0) {
        const states = new Map(
          (await tx.all('SELECT id, state FROM jobs WHERE id = ANY($1::text[])', [parents])).map((r) => [String(r.id), String(r.state)]),
        );
        const blocking = parents.find((p) => states.get(p) !== 'succeeded');
        if (blocking !== undefined) {
          throw new GafferError('INVALID_STATE', `parent ${blocking} is ${states.get(blocking)}; retry it first`, { jobId: blocking });
        }
      }
      const now = this.clock.now();
      // A retry is a fresh round: results of earlier replicas no longer vote, their workers may run it
      // again (round_seq), and an adaptive job is decided anew.
      await tx.run(`UPDATE attempts SET state = 'rejected' WHERE job_id = $1 AND state = 'completed'`, [job.id]);
      await tx.run(
        `UPDATE jobs SET state = 'queued', want = replicas, failures = 0, error = NULL, result = NULL,
           finished_at = NULL, pending_parents = 0, run_at = $1, updated_at = $1, extra_replicas = 0, solo = 0,
           adapted = 0, round_seq = attempts
         WHERE id = $2`,
        [now, job.id],
      );
      tx.wake();
      return { job: await this.mustGetJob(tx, job.id), changes: [{ jobId: job.id, state: 'queued', cancelledAttempts: [] }] };
    });
  }

  /**
   * Locks a job's row FOR UPDATE and returns it; a verification job's verified
   * job is locked first (a job before the verification jobs that check it, the
   * order endJob takes them in). `verifiesJobId`, when the caller read it
   * already (it never changes). Undefined when there is no such job.
   */
  private async lockJobRow(tx: Tx, jobId: string, verifiesJobId?: string | null): Promise<Row | undefined> {
    let verified = verifiesJobId;
    if (verified === undefined) {
      const link = await tx.get('SELECT verifies_job_id FROM jobs WHERE id = $1', [jobId]);
      if (!link) return undefined;
      verified = link.verifies_job_id === null ? null : String(link.verifies_job_id);
    }
    if (verified !== null) await tx.get('SELECT id FROM jobs WHERE id = $1 FOR UPDATE', [verified]);
    return tx.get('SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [jobId]);
  }

  /**
   * Ends a job that has not ended: stops its live attempts and cascades to its
   * waiting dependants (cancelled with a cancel, failed otherwise) and to what
   * is tied to it (endedLinks). The caller holds the job's row lock;
   * dependants are locked as they are updated, linked jobs before.
   */
  private async endJob(tx: Tx, jobId: string, state: 'failed' | 'cancelled' | 'expired', error: JobError): Promise<Change[]> {
    const now = this.clock.now();
    const changes: Change[] = [];
    const queue: { id: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError }[] = [{ id: jobId, state, error }];
    for (let i = 0; i < queue.length; i++) {
      assert(i < LIMITS.cascadeMaxJobs, 'a cascade through dependants stays within its bound');
      const item = queue[i]!;
      const cancelledAttempts = await this.stopLiveAttempts(tx, item.id, now);
      const ended = await tx.get(
        `UPDATE jobs SET state = $1, want = 0, live = 0, error = $2, finished_at = $3, updated_at = $3
         WHERE id = $4 AND state NOT IN ${TERMINAL} RETURNING verify, verifies_job_id, pinned_worker_id`,
        [item.state, J(item.error), now, item.id],
      );
      if (!ended) continue;
      changes.push({ jobId: item.id, state: item.state, cancelledAttempts });
      queue.push(...(await this.endedLinks(tx, item, ended, now)));
      const childState = item.state === 'cancelled' ? 'cancelled' : 'failed';
      const code = item.state === 'cancelled' ? 'DEPENDENCY_CANCELLED' : 'DEPENDENCY_FAILED';
      const children = await tx.all(
        `SELECT j.id FROM job_deps d JOIN jobs j ON j.id = d.job_id WHERE d.parent_id = $1 AND j.state = 'waiting' ORDER BY j.id`,
        [item.id],
      );
      for (const child of children) {
        const message = `parent ${item.id} ended ${item.state}`;
        queue.push({ id: String(child.id), state: childState, error: { code, message, jobId: item.id } });
      }
    }
    return changes;
  }

  /**
   * What else ends with a job: the job a verification job was checking (it
   * fails: no verdict came), the verification jobs of a job (cancelled), and a
   * challenge's reliability check (failed). The linked jobs are locked here,
   * before endJob stops their attempts.
   */
  private async endedLinks(
    tx: Tx,
    item: { id: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError },
    ended: Row,
    now: number,
  ): Promise<{ id: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError }[]> {
    const more: { id: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError }[] = [];
    if (ended.verifies_job_id !== null) {
      const original = await tx.get(`SELECT id FROM jobs WHERE id = $1 AND state = 'verifying' FOR UPDATE`, [String(ended.verifies_job_id)]);
      if (original) {
        const message = `verification job ${item.id} ended ${item.state}: ${item.error.message}`;
        more.push({ id: String(original.id), state: 'failed', error: { code: 'VERIFICATION_FAILED', message: clipMessage(message), jobId: item.id } });
      }
    }
    // Only a job with a verifier queue has verification jobs.
    if (ended.verify !== null) {
      const verifiers = await tx.all(`SELECT id FROM jobs WHERE verifies_job_id = $1 AND state NOT IN ${TERMINAL} ORDER BY id FOR UPDATE`, [item.id]);
      for (const v of verifiers) {
        more.push({ id: String(v.id), state: 'cancelled', error: { code: 'CANCELLED', message: `the job it verifies ended ${item.state}`, jobId: item.id } });
      }
    }
    if (ended.pinned_worker_id !== null) {
      await tx.run(`UPDATE worker_checks SET state = 'failed', reason = $1, updated_at = $2 WHERE job_id = $3 AND state = 'pending'`, [
        clipMessage(`the challenge ended ${item.state}: ${item.error.message}`),
        now,
        item.id,
      ]);
    }
    return more;
  }

  private async stopLiveAttempts(tx: Tx, jobId: string, now: number): Promise<{ attemptId: string; workerId: string }[]> {
    const rows = await tx.all(
      `UPDATE attempts SET state = 'cancelled', finished_at = $1 WHERE job_id = $2 AND state IN ${LIVE} RETURNING id, worker_id`,
      [now, jobId],
    );
    return rows.map((r) => ({ attemptId: String(r.id), workerId: String(r.worker_id) })).sort((a, b) => (a.attemptId < b.attemptId ? -1 : 1));
  }

  /** A parent succeeded: its waiting children lose one pending parent, and the ready ones queue. */
  private async releaseChildren(tx: Tx, parentId: string, now: number): Promise<Change[]> {
    const rows = await tx.all(
      `UPDATE jobs SET pending_parents = pending_parents - 1,
         state = CASE WHEN pending_parents = 1 THEN 'queued' ELSE state END,
         want = CASE WHEN pending_parents = 1 THEN replicas ELSE 0 END,
         run_at = CASE WHEN pending_parents = 1 THEN greatest(run_at, $1) ELSE run_at END,
         updated_at = $1
       WHERE state = 'waiting' AND id IN (SELECT job_id FROM job_deps WHERE parent_id = $2)
       RETURNING id, state`,
      [now, parentId],
    );
    const queued = rows
      .filter((r) => r.state === 'queued')
      .map((r) => ({ jobId: String(r.id), state: 'queued' as const, cancelledAttempts: [] }))
      .sort((a, b) => (a.jobId < b.jobId ? -1 : 1));
    if (queued.length > 0) tx.wake();
    return queued;
  }

  // ---- Workers ----

  async upsertWorker(params: { spec: WorkerSpec }): Promise<Worker> {
    const s = params.spec;
    const now = this.clock.now();
    const id = s.id ?? this.newId();
    return this.db.read(async (sql) => {
      await sql.run(
        `INSERT INTO workers (id, name, labels, cores, memory_mb, gpu_ids, queues, keys, connected, draining,
           connected_at, last_seen_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, 0, $9, $9, $9)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, labels = excluded.labels, cores = excluded.cores,
           memory_mb = excluded.memory_mb, gpu_ids = excluded.gpu_ids, queues = excluded.queues, keys = excluded.keys,
           connected = 1, draining = 0, connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at`,
        [id, s.name, J(s.labels), s.cores, s.memoryMb, J(s.gpuIds), J(s.queues), J(s.keys), now],
      );
      return this.mustGetWorker(sql, id);
    });
  }

  async getWorker(params: { id: string }): Promise<Worker | null> {
    return this.db.read(async (sql) => {
      const row = await sql.get('SELECT * FROM workers WHERE id = $1', [params.id]);
      return row ? (await this.withRunning(sql, [row]))[0]! : null;
    });
  }

  private async mustGetWorker(sql: Sql, id: string): Promise<Worker> {
    const row = await sql.get('SELECT * FROM workers WHERE id = $1', [id]);
    if (!row) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${id}`, { workerId: id });
    return (await this.withRunning(sql, [row]))[0]!;
  }

  /**
   * Workers from their rows, with their live attempt counts per queue and their
   * reliability checks (one query each for all of them).
   */
  private async withRunning(sql: Sql, rows: readonly Row[]): Promise<Worker[]> {
    const running = new Map<string, Record<string, number>>(rows.map((r) => [String(r.id), {}]));
    const checks = new Map<string, Record<string, WorkerCheck>>(rows.map((r) => [String(r.id), {}]));
    if (rows.length > 0) {
      const ids = [...running.keys()];
      const counts = await sql.all(
        `SELECT worker_id, queue, count(*) AS n FROM attempts WHERE worker_id = ANY($1::text[]) AND state IN ${LIVE}
         GROUP BY worker_id, queue ORDER BY worker_id, queue`,
        [ids],
      );
      for (const c of counts) running.get(String(c.worker_id))![String(c.queue)] = Number(c.n);
      for (const c of await sql.all('SELECT * FROM worker_checks WHERE worker_id = ANY($1::text[]) ORDER BY worker_id, queue', [ids])) {
        checks.get(String(c.worker_id))![String(c.queue)] = checkFromRow(c);
      }
    }
    const now = this.clock.now();
    return rows.map((r) => workerFromRow(r, running.get(String(r.id))!, now, this.offlineAfterMs, checks.get(String(r.id))!));
  }

  /** Every worker, with three queries in all (workers, live attempt counts, checks). */
  async listWorkers(): Promise<Worker[]> {
    return this.db.read(async (sql) => this.withRunning(sql, await sql.all('SELECT * FROM workers ORDER BY id')));
  }

  async disconnectWorker(params: { workerId: string }): Promise<void> {
    await this.db.read((sql) => sql.run('UPDATE workers SET connected = 0 WHERE id = $1', [params.workerId]));
  }

  async setWorkerDraining(params: { workerId: string; draining: boolean }): Promise<Worker> {
    return this.db.read(async (sql) => {
      const n = await sql.run('UPDATE workers SET draining = $1 WHERE id = $2', [params.draining ? 1 : 0, params.workerId]);
      if (n === 0) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
      return this.mustGetWorker(sql, params.workerId);
    });
  }

  async updateWorkerKeys(params: { workerId: string; hold?: readonly string[]; release?: readonly string[] }): Promise<Worker> {
    return this.db.tx(async (tx) => {
      const row = await tx.get('SELECT keys FROM workers WHERE id = $1 FOR UPDATE', [params.workerId]);
      if (!row) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
      const keys = new Set(JSON.parse(String(row.keys ?? '[]')) as string[]);
      for (const k of params.hold ?? []) keys.add(k);
      for (const k of params.release ?? []) keys.delete(k);
      if (keys.size > LIMITS.workerKeysMax) {
        throw new GafferError('INVALID_INPUT', `a worker holds at most ${LIMITS.workerKeysMax} keys; this would make ${keys.size}`, {
          maxKeys: LIMITS.workerKeysMax,
        });
      }
      await tx.run('UPDATE workers SET keys = $1 WHERE id = $2', [J([...keys]), params.workerId]);
      return this.mustGetWorker(tx, params.workerId);
    });
  }

  async setWorkerQuarantine(params: QuarantineParams): Promise<{ worker: Worker; changes: Change[] }> {
    return this.db.tx(async (tx) => {
      const row = await tx.get('SELECT id FROM workers WHERE id = $1 FOR UPDATE', [params.workerId]);
      if (!row) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
      let changes: Change[] = [];
      if (!params.quarantined) {
        await tx.run(
          `UPDATE workers SET quarantined = 0, quarantine_reason = NULL, valid_count = 0, invalid_count = 0,
             timed_out_count = 0, valid_streak = 0, solo_since_check = 0 WHERE id = $1`,
          [params.workerId],
        );
        changes = await this.checkAgain(tx, params.workerId, this.clock.now());
      } else {
        await tx.run('UPDATE workers SET quarantined = 1, quarantine_reason = $1 WHERE id = $2', [
          clipMessage(params.reason ?? 'quarantined by an admin'),
          params.workerId,
        ]);
        changes = await this.evict(tx, params.workerId, this.clock.now());
      }
      return { worker: await this.mustGetWorker(tx, params.workerId), changes };
    });
  }

  /**
   * A released worker faces each challenge it failed again, before any real
   * work: a new challenge job like the last one, pinned to it, and its check
   * pending on that job. The caller holds the worker's row lock (as startCheck
   * does), so the checks it reads hold; insertLinked NOTIFYs, as the new jobs
   * are claimable.
   */
  private async checkAgain(tx: Tx, workerId: string, now: number): Promise<Change[]> {
    const failed = await tx.all(`SELECT queue, job_id FROM worker_checks WHERE worker_id = $1 AND state = 'failed' ORDER BY queue`, [workerId]);
    const changes: Change[] = [];
    for (const c of failed) {
      // The last challenge ended (its check failed): nothing changes it any more, so it is read unlocked.
      const last = await this.mustGetJob(tx, String(c.job_id));
      const job = await this.insertLinked(tx, challengeAgain(last), { pinnedWorkerId: workerId }, now);
      await tx.run(
        `UPDATE worker_checks SET state = 'pending', job_id = $1, speed_ms = NULL, reason = NULL, updated_at = $2
         WHERE worker_id = $3 AND queue = $4`,
        [job.id, now, workerId, String(c.queue)],
      );
      changes.push({ jobId: job.id, state: job.state, cancelledAttempts: [] });
    }
    return changes;
  }

  /**
   * A quarantined worker's live attempts are cancelled and their jobs put back
   * (not counted as failures: the jobs did nothing wrong). A challenge of its
   * own ends, failing its check. The caller holds the worker's row lock; the
   * jobs are locked (in id order) before their attempts change.
   */
  private async evict(tx: Tx, workerId: string, now: number): Promise<Change[]> {
    const live = await tx.all(`SELECT id, job_id FROM attempts WHERE worker_id = $1 AND state IN ${LIVE} ORDER BY id`, [workerId]);
    if (live.length === 0) return [];
    const jobIds = [...new Set(live.map((a) => String(a.job_id)))].sort();
    await tx.all('SELECT id FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [jobIds]);
    const changes: Change[] = [];
    for (const a of live) {
      const attemptId = String(a.id);
      const jobId = String(a.job_id);
      const n = await tx.run(`UPDATE attempts SET state = 'cancelled', finished_at = $1 WHERE id = $2 AND state IN ${LIVE}`, [now, attemptId]);
      if (n === 0) continue;
      const cancelledAttempts = [{ attemptId, workerId }];
      const job = await tx.get(
        `UPDATE jobs SET live = live - 1, want = CASE WHEN solo = 1 THEN replicas ELSE want + 1 END, solo = 0, updated_at = $1
         WHERE id = $2 RETURNING pinned_worker_id, state`,
        [now, jobId],
      );
      assert(job, 'a cancelled attempt belongs to a job');
      if (job.pinned_worker_id !== null) {
        const error: JobError = { code: 'QUARANTINED', message: `worker ${workerId} was quarantined` };
        const ended = await this.endJob(tx, jobId, 'cancelled', error);
        changes.push(...ended.map((c) => (c.jobId === jobId ? { ...c, cancelledAttempts } : c)));
        continue;
      }
      tx.wake();
      const moved = await this.settleLiveCount(tx, jobId, now);
      changes.push({ jobId, state: moved[0]?.state ?? (job.state as JobState), cancelledAttempts });
    }
    return changes;
  }

  /**
   * Records a judged result for a worker (its row locked FOR UPDATE: claims and
   * other verdicts change it too); quarantines it when its invalid share
   * crosses the threshold.
   */
  private async judgeWorker(tx: Tx, workerId: string, verdict: 'valid' | 'invalid', now: number): Promise<Change[]> {
    const row = await tx.get('SELECT * FROM workers WHERE id = $1 FOR UPDATE', [workerId]);
    if (!row) return [];
    const rep = judge(reputationFromRow(row), verdict);
    const reason = Number(row.quarantined) === 1 ? null : quarantineReason(rep, this.trust);
    await tx.run('UPDATE workers SET valid_count = $1, invalid_count = $2, valid_streak = $3, solo_since_check = $4 WHERE id = $5', [
      rep.valid,
      rep.invalid,
      rep.streak,
      rep.soloSinceCheck,
      workerId,
    ]);
    if (reason === null) return [];
    await tx.run('UPDATE workers SET quarantined = 1, quarantine_reason = $1 WHERE id = $2', [reason, workerId]);
    return this.evict(tx, workerId, now);
  }

  /**
   * The worker's row is locked first: two coordinators starting the same check
   * at once take turns, and the second finds the first one's check.
   */
  async startCheck(params: StartCheckParams): Promise<{ check: WorkerCheck; created: boolean }> {
    return this.db.tx(async (tx) => {
      const worker = await tx.get('SELECT id FROM workers WHERE id = $1 FOR UPDATE', [params.workerId]);
      if (!worker) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
      const existing = await tx.get(
        `SELECT c.*, j.state AS job_state FROM worker_checks c LEFT JOIN jobs j ON j.id = c.job_id
         WHERE c.worker_id = $1 AND c.queue = $2`,
        [params.workerId, params.queue],
      );
      const stale =
        existing !== undefined &&
        existing.state === 'pending' &&
        (existing.job_state === null || TERMINAL_JOB_STATES.includes(existing.job_state as JobState));
      if (existing && !stale) return { check: checkFromRow(existing), created: false };
      const now = this.clock.now();
      const job = await this.insertLinked(tx, params.job, { pinnedWorkerId: params.workerId }, now);
      const row = await tx.get(
        `INSERT INTO worker_checks (worker_id, queue, state, job_id, answer_hash, time_limit_ms, speed_ms, reason, updated_at)
         VALUES ($1, $2, 'pending', $3, $4, $5, NULL, NULL, $6)
         ON CONFLICT (worker_id, queue) DO UPDATE SET state = 'pending', job_id = excluded.job_id,
           answer_hash = excluded.answer_hash, time_limit_ms = excluded.time_limit_ms, speed_ms = NULL, reason = NULL,
           updated_at = excluded.updated_at
         RETURNING *`,
        [params.workerId, params.queue, job.id, params.answerHash, params.timeLimitMs, now],
      );
      assert(row, 'a check just written is there');
      return { check: checkFromRow(row), created: true };
    });
  }

  /** A challenge completed: the check passes when the answer matches and it came within the time limit. */
  private async gradeCheck(tx: Tx, jobId: string, hash: string, tookMs: number, now: number): Promise<void> {
    const check = await tx.get(`SELECT * FROM worker_checks WHERE job_id = $1 AND state = 'pending' FOR UPDATE`, [jobId]);
    if (!check) return;
    const right = check.answer_hash === hash;
    const inTime = tookMs <= Number(check.time_limit_ms);
    const reason = !right
      ? 'the challenge answer was wrong'
      : !inTime
        ? `the challenge took ${tookMs} ms; the limit is ${Number(check.time_limit_ms)} ms`
        : null;
    await tx.run(`UPDATE worker_checks SET state = $1, speed_ms = $2, reason = $3, updated_at = $4 WHERE worker_id = $5 AND queue = $6`, [
      reason === null ? 'passed' : 'failed',
      tookMs,
      reason,
      now,
      String(check.worker_id),
      String(check.queue),
    ]);
  }

  // ---- Claim ----

  /**
   * One transaction per batch: lock the workers, read what they hold, read
   * candidates page by page (FOR UPDATE SKIP LOCKED), let the place function
   * decide, re-check its answer, then write every job update in one statement
   * and every attempt in another.
   */
  async claim(params: ClaimParams): Promise<Assignment[]> {
    if (params.workerIds.length === 0 || params.maxJobs <= 0) return [];
    return this.db.tx(async (tx) => {
      const now = this.clock.now();
      const { workers, rows: workerRows, live } = await this.capacities(tx, params.workerIds, now);
      if (workers.length === 0) return [];
      const { placements, candidates, rows } = await this.plan(tx, params, workers, now);
      checkPlacements(placements, workers, params.maxJobs, candidates);
      if (placements.length === 0) return [];
      const assignments = await this.lease(tx, placements, rows, workerRows, now);
      assertLeasedWithinCapacity(assignments, workerRows, live);
      return assignments;
    });
  }

  /**
   * What each eligible worker has free (from its live attempts and its
   * reliability checks), its row locked (in id order) until the claim commits;
   * with the rows, whose reputations adaptive replication reads.
   */
  private async capacities(
    tx: Tx,
    workerIds: readonly string[],
    now: number,
  ): Promise<{ workers: WorkerCapacity[]; rows: Map<string, Row>; live: Row[] }> {
    const rows = await tx.all(
      `SELECT * FROM workers WHERE id = ANY($1::text[])
         AND connected = 1 AND draining = 0 AND quarantined = 0 AND last_seen_at >= $2
       ORDER BY id FOR UPDATE`,
      [[...new Set(workerIds)], now - this.offlineAfterMs],
    );
    if (rows.length === 0) return { workers: [], rows: new Map(), live: [] };
    const ids = rows.map((w) => String(w.id));
    // Live attempts and reliability checks in one round trip: `kind` tells them apart.
    const both = await tx.all(
      `SELECT 'live' AS kind, ${LIVE_ATTEMPT_COLUMNS}, NULL::text AS state, NULL::bigint AS speed_ms
         FROM attempts WHERE worker_id = ANY($1::text[]) AND state IN ${LIVE}
       UNION ALL
       SELECT 'check', worker_id, queue, NULL::integer, NULL::bigint, NULL::text, state, speed_ms
         FROM worker_checks WHERE worker_id = ANY($1::text[])`,
      [ids],
    );
    const live = both.filter((r) => r.kind === 'live');
    const checks = both.filter((r) => r.kind === 'check');
    return { workers: capacities(rows, live, checks), rows: new Map(rows.map((r) => [String(r.id), r])), live };
  }

  /**
   * Reads candidates page by page until the workers are full or the pages run
   * out. Returns the placements, and the candidates read with their rows.
   */
  private async plan(
    tx: Tx,
    params: ClaimParams,
    workers: WorkerCapacity[],
    now: number,
  ): Promise<{ placements: Placement[]; candidates: Map<string, Candidate>; rows: Map<string, Row> }> {
    const scope = claimScope(params, workers);
    const paging = candidatePaging(scope.budget);
    const filter = candidateFilter(workers);
    const seen = new Map<string, Candidate>();
    const seenRows = new Map<string, Row>();
    let placements: Placement[] = [];
    let rereads = 0;
    for (let page = 0; page < paging.maxPages; page++) {
      const { rows, more } = await this.candidatePage(tx, scope, filter, now, page, paging.perPage);
      const pageIds = new Set<string>();
      const fresh = rows.filter((r) => {
        const id = String(r.id);
        if (seen.has(id) || pageIds.has(id)) return false;
        pageIds.add(id);
        return true;
      });
      const excluded = await this.excludedWorkers(tx, fresh.filter(needsExclusions));
      for (const r of fresh) {
        seen.set(String(r.id), candidateFromRow(r, excluded.get(String(r.id)) ?? []));
        seenRows.set(String(r.id), r);
      }
      if (seen.size === 0) return { placements: [], candidates: seen, rows: seenRows };
      placements = params.place({ now, workers, candidates: [...seen.values()], maxPlacements: scope.budget });
      if (placements.length >= scope.budget || !more) break;
      // Label sets no free worker has: read again from the first page without them.
      if (rereads < LIMITS.claimRereadsMax && excludeUnplaceableLabels(filter, fresh, workers)) {
        rereads++;
        page = -1;
      }
    }
    return { placements, candidates: seen, rows: seenRows };
  }

  /** One page of every queue's candidates; `more` when some queue's priority page was full, so a next page may exist. */
  private async candidatePage(
    tx: Tx,
    scope: ClaimScope,
    filter: CandidateFilter,
    now: number,
    page: number,
    perPage: number,
  ): Promise<{ rows: Row[]; more: boolean }> {
    const rows = await tx.all(CANDIDATES_SQL, [
      scope.queues, now, scope.maxCores, scope.maxMemoryMb, scope.maxGpus, perPage, page * perPage, page === 0 ? perPage : 0,
      filter.excludedLabels, filter.heldKeys,
    ]);
    const perQueue = new Map<string, number>();
    for (const r of rows) if (Number(r.part) === 0) perQueue.set(String(r.queue), (perQueue.get(String(r.queue)) ?? 0) + 1);
    return { rows, more: [...perQueue.values()].some((n) => n === perPage) };
  }

  /**
   * Per replicated, verified or verification job (its candidate row), the
   * workers that may not take another of its attempts: those of this round's
   * attempts (seq above round_seq) in EXCLUDING_ATTEMPT_STATES, and the worker
   * of the attempt a verification job checks.
   */
  private async excludedWorkers(tx: Tx, jobRows: readonly Row[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (jobRows.length === 0) return out;
    const verifying = jobRows.filter((r) => r.verifies_attempt_id !== null && r.verifies_attempt_id !== undefined);
    const rows = await tx.all(
      `SELECT DISTINCT job_id, worker_id FROM (
         SELECT a.job_id, a.worker_id FROM unnest($1::text[], $2::int[]) AS v(id, round_seq)
         JOIN attempts a ON a.job_id = v.id
         WHERE a.state IN ${EXCLUDING} AND a.seq > v.round_seq
         UNION ALL
         SELECT v.id, a.worker_id FROM unnest($3::text[], $4::text[]) AS v(id, attempt_id)
         JOIN attempts a ON a.id = v.attempt_id
       ) x ORDER BY job_id, worker_id`,
      [
        jobRows.map((r) => String(r.id)),
        jobRows.map((r) => Number(r.round_seq)),
        verifying.map((r) => String(r.id)),
        verifying.map((r) => String(r.verifies_attempt_id)),
      ],
    );
    for (const r of rows) {
      const list = out.get(String(r.job_id));
      if (list) list.push(String(r.worker_id));
      else out.set(String(r.job_id), [String(r.worker_id)]);
    }
    return out;
  }

  /**
   * Writes the attempts of a batch of placements and moves their jobs to
   * running: one UPDATE, one INSERT (and one more UPDATE when adaptive
   * replication changed a worker's count of solo runs).
   */
  private async lease(
    tx: Tx,
    placements: readonly Placement[],
    jobRows: ReadonlyMap<string, Row>,
    workerRows: ReadonlyMap<string, Row>,
    now: number,
  ): Promise<Assignment[]> {
    const { kept, solo, decided, soloSinceCheck } = this.adapt(placements, jobRows, workerRows);
    const perJob = new Map<string, number>();
    for (const p of kept) perJob.set(p.jobId, (perJob.get(p.jobId) ?? 0) + 1);
    const ids = [...perJob.keys()];
    // Each placement's attempt: ids and lease made here, its number within its job in this claim.
    const made = kept.map(() => ({ attemptId: this.newId(), lease: randomToken(this.random) }));
    const kth: number[] = [];
    const counted = new Map<string, number>();
    for (const p of kept) {
      const k = (counted.get(p.jobId) ?? 0) + 1;
      counted.set(p.jobId, k);
      kth.push(k);
    }
    const updated = await tx.all(LEASE_SQL, [
      now, ids, ids.map((id) => perJob.get(id)!), ids.map((id) => (solo.has(id) ? 1 : 0)), ids.map((id) => (decided.has(id) ? 1 : 0)),
      made.map((m) => m.attemptId), kept.map((p) => p.jobId), kept.map((p) => p.workerId), made.map((m) => m.lease),
      kept.map((p) => J(p.gpuIds)), kth,
    ]);
    assert(updated.length === perJob.size, 'a placed job still wants an attempt');
    assert(Number(updated[0]!.inserted) === kept.length, 'every placement gets its attempt');
    if (soloSinceCheck.size > 0) {
      const changed = [...soloSinceCheck.keys()].sort();
      await tx.run('UPDATE workers AS w SET solo_since_check = v.n FROM unnest($1::text[], $2::int[]) AS v(id, n) WHERE w.id = v.id', [
        changed,
        changed.map((id) => soloSinceCheck.get(id)!),
      ]);
    }
    const jobs = new Map(updated.map((r) => [String(r.id), r]));
    const out = kept.map((p, i) => {
      const row = jobs.get(p.jobId)!;
      const attempt = Number(row.attempts) - Number(row.n) + kth[i]!;
      return assignmentOf(row, p, { attemptId: made[i]!.attemptId, lease: made[i]!.lease, attempt }, now);
    });
    return out;
  }

  /**
   * Adaptive replication, decided before anything is written, once per round:
   * the first placement (in the place function's order) of an adaptive job
   * whose round is not decided yet (adapted = 0) asks whether its worker may
   * run the job alone: then that placement is kept and the job's other
   * placements in this claim are dropped. Either way the round is decided
   * (`decided`: the lease sets adapted), so a solo round that fails or loses
   * its worker is rerun replicated, not decided again. Workers' counts of solo
   * runs since their last spot check are followed across the claim, as each
   * decision reads the one before. The job rows are locked (the claim read
   * them FOR UPDATE SKIP LOCKED), so what they say holds.
   */
  private adapt(
    placements: readonly Placement[],
    jobRows: ReadonlyMap<string, Row>,
    workerRows: ReadonlyMap<string, Row>,
  ): { kept: Placement[]; solo: Set<string>; decided: Set<string>; soloSinceCheck: Map<string, number> } {
    const solo = new Set<string>();
    const seen = new Set<string>();
    const decided = new Set<string>();
    const soloSinceCheck = new Map<string, number>();
    const kept: Placement[] = [];
    for (const p of placements) {
      if (solo.has(p.jobId)) continue;
      kept.push(p);
      if (seen.has(p.jobId)) continue;
      seen.add(p.jobId);
      const r = jobRows.get(p.jobId);
      assert(r, 'a placed job was read by the claim');
      if (Number(r.adaptive) !== 1 || Number(r.adapted) !== 0) continue;
      decided.add(p.jobId);
      const w = workerRows.get(p.workerId);
      assert(w, 'a placed worker was read by the claim');
      const rep: Reputation = { ...reputationFromRow(w), soloSinceCheck: soloSinceCheck.get(p.workerId) ?? Number(w.solo_since_check) };
      const decision = soloDecision(rep, this.trust, this.random);
      if (decision === 'spot-check') soloSinceCheck.set(p.workerId, 0);
      if (decision === 'solo') {
        soloSinceCheck.set(p.workerId, rep.soloSinceCheck + 1);
        solo.add(p.jobId);
      }
    }
    return { kept, solo, decided, soloSinceCheck };
  }

  /** Invariant 5, checked against the database after a claim wrote its leases: never more than declared. */
  // ---- Heartbeats and reports ----

  async heartbeat(params: HeartbeatParams): Promise<HeartbeatResult> {
    return this.db.tx(async (tx) => {
      const now = this.clock.now();
      const before = await tx.get('SELECT connected FROM workers WHERE id = $1 FOR UPDATE', [params.workerId]);
      if (!before) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
      await tx.run('UPDATE workers SET last_seen_at = $1, connected = 1 WHERE id = $2', [now, params.workerId]);
      const revived = Number(before.connected) === 0 ? { revived: true as const } : {};
      const set = `heartbeat_at = $1, lease_expires_at = $1 + heartbeat_timeout_ms, started_at = coalesce(started_at, $1),
        state = CASE WHEN state = 'leased' THEN 'running' ELSE state END`;
      if (params.attempts === undefined) {
        const rows = await tx.all(
          `UPDATE attempts SET ${set} WHERE worker_id = $2 AND state IN ${LIVE} AND lease_expires_at >= $1 RETURNING id`,
          [now, params.workerId],
        );
        return { extended: rows.map((r) => String(r.id)).sort(), revoked: [], ...revived };
      }
      if (params.attempts.length === 0) return { extended: [], revoked: [], ...revived };
      const rows = await tx.all(
        `UPDATE attempts AS a SET ${set}
         FROM (SELECT DISTINCT id, lease FROM unnest($3::text[], $4::text[]) AS r(id, lease)) AS v
         WHERE a.id = v.id AND a.lease = v.lease AND a.worker_id = $2 AND a.state IN ${LIVE} AND a.lease_expires_at >= $1
         RETURNING a.id, a.lease`,
        [now, params.workerId, params.attempts.map((r) => r.attemptId), params.attempts.map((r) => r.lease)],
      );
      const ok = new Set(rows.map((r) => `${String(r.id)}\n${String(r.lease)}`));
      const extended: string[] = [];
      const revoked: string[] = [];
      for (const ref of params.attempts) (ok.has(`${ref.attemptId}\n${ref.lease}`) ? extended : revoked).push(ref.attemptId);
      return { extended, revoked, ...revived };
    });
  }

  async progress(params: LeaseRef & { progress: unknown }): Promise<void> {
    const now = this.clock.now();
    await this.db.read(async (sql) => {
      const n = await sql.run(
        `UPDATE attempts SET progress = $1, heartbeat_at = $2, lease_expires_at = $2 + heartbeat_timeout_ms,
           started_at = coalesce(started_at, $2), state = CASE WHEN state = 'leased' THEN 'running' ELSE state END
         WHERE id = $3 AND lease = $4 AND state IN ${LIVE} AND lease_expires_at >= $2`,
        [J(params.progress), now, params.attemptId, params.lease],
      );
      if (n === 0) await this.throwStale(sql, params);
    });
  }

  /**
   * Locks what settling the attempt the lease names may change, in the
   * store's lock order: first the workers it may judge (`workers`: 'judged'
   * for a result, 'own' for a failure counted against the worker), then the job
   * a verification job checks, then the attempt's job. Then checks the lease:
   * the attempt is read after the lock, so nothing can end it before we
   * commit. Throws ATTEMPT_NOT_FOUND or STALE_LEASE.
   */
  private async lockCurrent(
    tx: Tx,
    ref: LeaseRef,
    now: number,
    workers: 'judged' | 'own' | 'none',
  ): Promise<{ job: Job; workerId: string }> {
    const pre = await tx.get(
      `SELECT a.job_id, a.worker_id, j.replicas, j.verifies_job_id, j.verifies_attempt_id
       FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.id = $1`,
      [ref.attemptId],
    );
    if (!pre) throw new GafferError('ATTEMPT_NOT_FOUND', `no attempt has id ${ref.attemptId}`);
    const jobId = String(pre.job_id);
    if (workers === 'own') await this.lockWorkers(tx, [String(pre.worker_id)]);
    if (workers === 'judged') {
      // A vote judges the workers of the job's replicas; a verdict, the worker of the verified attempt.
      const ids: string[] = [];
      if (Number(pre.replicas) > 1) {
        const rows = await tx.all(`SELECT DISTINCT worker_id FROM attempts WHERE job_id = $1 AND (state IN ${LIVE} OR state = 'completed')`, [jobId]);
        ids.push(...rows.map((r) => String(r.worker_id)));
      }
      if (pre.verifies_attempt_id !== null) {
        const verified = await tx.get('SELECT worker_id FROM attempts WHERE id = $1', [String(pre.verifies_attempt_id)]);
        if (verified) ids.push(String(verified.worker_id));
      }
      await this.lockWorkers(tx, ids);
    }
    const row = await this.lockJobRow(tx, jobId, pre.verifies_job_id === null ? null : String(pre.verifies_job_id));
    assert(row, 'a job is never deleted');
    const a = await tx.get('SELECT state, lease, lease_expires_at FROM attempts WHERE id = $1', [ref.attemptId]);
    assert(a, 'an attempt is never deleted');
    const live = LIVE_ATTEMPT_STATES.includes(a.state as never);
    if (a.lease !== ref.lease || !live || Number(a.lease_expires_at) < now) await this.throwStale(tx, ref);
    return { job: jobFromRow(row), workerId: String(pre.worker_id) };
  }

  /** Locks worker rows FOR UPDATE, in id order (every transaction takes workers in that order, before jobs). */
  private async lockWorkers(tx: Tx, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await tx.all('SELECT id FROM workers WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [[...new Set(ids)].sort()]);
  }

  private async throwStale(sql: Sql, ref: LeaseRef): Promise<never> {
    const row = await sql.get('SELECT state FROM attempts WHERE id = $1', [ref.attemptId]);
    if (!row) throw new GafferError('ATTEMPT_NOT_FOUND', `no attempt has id ${ref.attemptId}`);
    throw new GafferError('STALE_LEASE', `attempt ${ref.attemptId} no longer holds its job (it is ${String(row.state)})`, {
      attemptId: ref.attemptId,
      state: row.state,
    });
  }

  async complete(params: CompleteParams): Promise<SettleResult> {
    const fast = await this.completeSimple(params);
    if (fast.kind === 'settled') return fast.out;
    if (fast.kind === 'unknown') {
      // The connection failed under the fast statement: if it committed, this very result is already the job's.
      const done = await this.db.read((sql) =>
        sql.get(`SELECT a.job_id FROM attempts a WHERE a.id = $1 AND a.lease = $2 AND a.state = 'completed' AND a.result_hash = $3`, [
          params.attemptId, params.lease, resultHash(params.result),
        ]),
      );
      if (done) return { job: await this.db.read((sql) => this.mustGetJob(sql, String(done.job_id))), changes: [] };
    }
    return this.db.tx(async (tx) => {
      const now = this.clock.now();
      const { job, workerId } = await this.lockCurrent(tx, params, now, 'judged');
      if (job.verifies !== null && !isVerdict(params.result)) {
        // A verifier that answers something other than a verdict failed its attempt.
        const error: JobError = {
          code: 'BAD_VERDICT',
          message: 'a verifier must return { "valid": true|false, "reason"?: string }',
          attemptId: params.attemptId,
        };
        const n = await tx.run(
          `UPDATE attempts SET state = 'failed', finished_at = $1, error = $2 WHERE id = $3 AND lease = $4 AND state IN ${LIVE}`,
          [now, J(error), params.attemptId, params.lease],
        );
        assert(n === 1, 'the current lease fails its attempt exactly once');
        const changes = await this.afterFailure(tx, job.id, error, true, now, workerId);
        return { job: await this.mustGetJob(tx, job.id), changes };
      }
      if (job.verify?.mode === 'queue' && params.verificationJob === undefined) {
        throw new GafferError('INVALID_STATE', `job ${job.id} needs a verifier queue's defaults to send its result for verification`);
      }
      const hash = resultHash(params.result);
      const keepResult = job.replicas > 1 || job.verify !== null ? J(params.result) : null;
      const row = await tx.get(
        `UPDATE attempts SET state = 'completed', finished_at = $1, result_hash = $2, result = $3, trace = $4
         WHERE id = $5 AND lease = $6 AND state IN ${LIVE} RETURNING leased_at`,
        [now, hash, keepResult, params.trace ? J(params.trace) : null, params.attemptId, params.lease],
      );
      assert(row, 'the current lease completes its attempt exactly once');
      let changes: Change[];
      if (job.verify?.mode === 'queue') {
        changes = await this.sendToVerifier(tx, job, params.attemptId, workerId, params.result, params.verificationJob!, now);
      } else if (job.replicas === 1 || job.solo) {
        changes = await this.succeed(tx, job.id, J(params.result), now, job.live > 1);
        if (job.pinnedWorkerId !== null) await this.gradeCheck(tx, job.id, hash, now - Number(row.leased_at), now);
        if (job.verifies !== null) changes.push(...(await this.applyVerdict(tx, job.verifies, params.result as unknown as VerdictResult, now)));
      } else {
        await tx.run('UPDATE jobs SET live = live - 1, updated_at = $1 WHERE id = $2', [now, job.id]);
        changes = await this.tally(tx, job.id, now);
      }
      return { job: await this.mustGetJob(tx, job.id), changes };
    });
  }

  /**
   * COMPLETE_SIMPLE_SQL for this report, together with the others that arrive
   * in the same turn or while the previous batch runs. `settled` when it
   * applied; `no` when it did not (nothing of the report was changed); `unknown`
   * when the connection failed so that whether the statement committed is not
   * known.
   */
  private completeSimple(params: CompleteParams): Promise<SimpleOutcome> {
    return new Promise((resolve) => {
      this.pendingCompletes.push({ params, json: J(params.result), resolve });
      if (!this.completing) {
        this.completing = true;
        setImmediate(() => void this.flushCompletes());
      }
    });
  }

  private async flushCompletes(): Promise<void> {
    try {
      while (this.pendingCompletes.length > 0) {
        // One report per attempt in a batch: a resent report waits for the next, where it finds the attempt settled.
        const seen = new Set<string>();
        let size = 0;
        let bytes = 0;
        while (size < this.pendingCompletes.length && size < POSTGRES_DEFAULTS.completeBatchMax) {
          const next = this.pendingCompletes[size]!;
          if (seen.has(next.params.attemptId)) break;
          if (size > 0 && bytes + Buffer.byteLength(next.json) > POSTGRES_DEFAULTS.completeBatchMaxBytes) break;
          seen.add(next.params.attemptId);
          bytes += Buffer.byteLength(next.json);
          size++;
        }
        const batch = this.pendingCompletes.splice(0, size);
        let rows: Row[] | null = null;
        let failure: SimpleOutcome = { kind: 'no' };
        const now = this.clock.now();
        try {
          rows = await this.db.read((sql) => sql.all(COMPLETE_SIMPLE_SQL, completeSimpleParams(batch, now)));
        } catch (err) {
          // The server refused the statement (a job locked elsewhere, say): it changed nothing. Otherwise the
          // connection failed and the statement may or may not have committed.
          if (!isServerError(err)) failure = { kind: 'unknown' };
        }
        if (rows === null) {
          for (const b of batch) b.resolve(failure);
          continue;
        }
        const byAttempt = new Map(rows.map((r) => [String(r.settled_attempt_id), r]));
        for (const b of batch) {
          const row = byAttempt.get(b.params.attemptId);
          if (!row) {
            b.resolve({ kind: 'no' });
            continue;
          }
          const job = jobFromRow(row);
          assert(job.state === 'succeeded', 'a simple result is accepted');
          b.resolve({ kind: 'settled', out: { job, changes: [{ jobId: job.id, state: 'succeeded', cancelledAttempts: [] }] } });
        }
      }
    } finally {
      this.completing = false;
    }
  }

  /** Accepts a result: the job succeeds (once: the guard on state makes it so) and its children move. */
  /** `othersLive` false: the caller knows no other attempt of the job is live, so none needs stopping. */
  private async succeed(tx: Tx, jobId: string, resultJson: string, now: number, othersLive = true): Promise<Change[]> {
    const cancelledAttempts = othersLive ? await this.stopLiveAttempts(tx, jobId, now) : [];
    const n = await tx.run(
      `UPDATE jobs SET state = 'succeeded', result = $1, error = NULL, want = 0, live = 0, finished_at = $2, updated_at = $2
       WHERE id = $3 AND state IN ('running', 'queued', 'verifying')`,
      [resultJson, now, jobId],
    );
    assert(n === 1, 'at most one result is accepted per job');
    return [{ jobId, state: 'succeeded', cancelledAttempts }, ...(await this.releaseChildren(tx, jobId, now))];
  }

  /** A result of a job with a verifier queue: the job waits in `verifying` while a verification job checks it. */
  private async sendToVerifier(
    tx: Tx,
    job: Job,
    attemptId: string,
    workerId: string,
    result: Json,
    build: NonNullable<CompleteParams['verificationJob']>,
    now: number,
  ): Promise<Change[]> {
    assert(job.verify?.mode === 'queue', 'only a job with a verifier queue is sent to one');
    await tx.run(`UPDATE jobs SET live = live - 1, want = 0, state = 'verifying', updated_at = $1 WHERE id = $2`, [now, job.id]);
    let spec: NewJob;
    try {
      spec = build(job.verify.queue, verifierPayload(job, attemptId, workerId, result), job.priority);
    } catch (err) {
      if (!(err instanceof GafferError)) throw err;
      // Nothing can verify this result (e.g. payload and result together are too large): the job fails, said plainly.
      const message = clipMessage(`could not make the verification job: ${err.message}`);
      return this.endJob(tx, job.id, 'failed', { code: 'VERIFICATION_FAILED', message, attemptId });
    }
    assert(spec.replicas === 1 && spec.verify === null && !spec.adaptive, 'a verification job runs once, unverified');
    const v = await this.insertLinked(tx, spec, { verifies: { jobId: job.id, attemptId } }, now);
    return [
      { jobId: job.id, state: 'verifying', cancelledAttempts: [] },
      { jobId: v.id, state: v.state, cancelledAttempts: [] },
    ];
  }

  /**
   * A verifier's verdict on a result: the job succeeds with it, or runs again
   * elsewhere. The verified job's row and the judged worker's were locked by
   * lockCurrent.
   */
  private async applyVerdict(tx: Tx, verifies: { jobId: string; attemptId: string }, verdict: VerdictResult, now: number): Promise<Change[]> {
    const original = await tx.get(`SELECT id FROM jobs WHERE id = $1 AND state = 'verifying' FOR UPDATE`, [verifies.jobId]);
    if (!original) return [];
    const attempt = await tx.get(`SELECT worker_id, result FROM attempts WHERE id = $1 AND state = 'completed'`, [verifies.attemptId]);
    assert(attempt, 'a result under verification stays completed until its verdict');
    const workerId = String(attempt.worker_id);
    if (verdict.valid) {
      return [...(await this.succeed(tx, verifies.jobId, String(attempt.result), now, false)), ...(await this.judgeWorker(tx, workerId, 'valid', now))];
    }
    await tx.run(`UPDATE attempts SET state = 'rejected' WHERE id = $1`, [verifies.attemptId]);
    const changes = await this.judgeWorker(tx, workerId, 'invalid', now);
    const error: JobError = {
      code: 'RESULT_REJECTED',
      message: clipMessage(`the verifier rejected the result of attempt ${verifies.attemptId}: ${verdict.reason ?? 'no reason given'}`),
      attemptId: verifies.attemptId,
    };
    const job = await tx.get(
      `UPDATE jobs SET failures = failures + 1, error = $1, updated_at = $2 WHERE id = $3 RETURNING failures, max_attempts`,
      [J(error), now, verifies.jobId],
    );
    assert(job, 'the verified job exists');
    if (Number(job.failures) >= Number(job.max_attempts)) return [...changes, ...(await this.endJob(tx, verifies.jobId, 'failed', error))];
    await tx.run(`UPDATE jobs SET state = 'queued', want = 1, run_at = $1, updated_at = $1 WHERE id = $2`, [now, verifies.jobId]);
    tx.wake();
    return [...changes, { jobId: verifies.jobId, state: 'queued', cancelledAttempts: [] }];
  }

  /**
   * Decides a replicated job from its completed attempts (this round's
   * ballots). Trace verification first rejects the attempts whose resource
   * use stands apart, once every replica is in; the quorum is then counted
   * over the rest.
   */
  private async tally(tx: Tx, jobId: string, now: number): Promise<Change[]> {
    const row = await tx.get('SELECT * FROM jobs WHERE id = $1', [jobId]);
    assert(row, 'a tallied job exists');
    const job = jobFromRow(row);
    let done = await tx.all(
      `SELECT id, worker_id, result, result_hash, trace FROM attempts WHERE job_id = $1 AND state = 'completed' ORDER BY finished_at, id`,
      [jobId],
    );
    const pending = job.live + job.want;
    const changes: Change[] = [];
    if (job.verify?.mode === 'trace') {
      if (pending > 0) return this.settleLiveCount(tx, jobId, now);
      // Attempts without a usable trace are rejected outright; the rest are compared.
      const withTraces = done.map((r) => ({ row: r, trace: r.trace === null ? null : (JSON.parse(String(r.trace)) as Trace) }));
      const split = splitByTrace(withTraces, job.verify.tolerance, this.trust.traceWaypoints);
      if (split.kind === 'tie') {
        await tx.run(`UPDATE attempts SET state = 'rejected' WHERE job_id = $1 AND state = 'completed'`, [jobId]);
        return this.endJob(tx, jobId, 'failed', { code: 'NO_QUORUM', message: clipMessage(`resource traces: ${split.reason}`) });
      }
      for (const { row: r } of split.rejected) {
        await tx.run(`UPDATE attempts SET state = 'rejected' WHERE id = $1`, [String(r.id)]);
        changes.push(...(await this.judgeWorker(tx, String(r.worker_id), 'invalid', now)));
      }
      done = split.accepted.map((x) => x.row);
    }
    const outcome = decideQuorum({
      ballots: done.map((r) => ({ attemptId: String(r.id), workerId: String(r.worker_id), hash: String(r.result_hash) })),
      quorum: job.quorum,
      pending,
      extraReplicasUsed: Number(row.extra_replicas),
      extraReplicasMax: this.trust.extraReplicasMax,
    });
    if (outcome.kind === 'accept') {
      const winner = done.find((r) => r.result_hash === outcome.hash)!;
      const workerOf = new Map(done.map((r) => [String(r.id), String(r.worker_id)]));
      if (outcome.invalid.length > 0) {
        await tx.run(`UPDATE attempts SET state = 'rejected' WHERE id = ANY($1::text[])`, [outcome.invalid]);
      }
      changes.push(...(await this.succeed(tx, jobId, String(winner.result), now)));
      for (const id of outcome.valid) changes.push(...(await this.judgeWorker(tx, workerOf.get(id)!, 'valid', now)));
      for (const id of outcome.invalid) changes.push(...(await this.judgeWorker(tx, workerOf.get(id)!, 'invalid', now)));
      return changes;
    }
    if (outcome.kind === 'add-replica') {
      await tx.run(
        `UPDATE jobs SET want = want + 1, extra_replicas = extra_replicas + 1,
           state = CASE WHEN live > 0 THEN 'running' ELSE 'queued' END, updated_at = $1
         WHERE id = $2`,
        [now, jobId],
      );
      tx.wake();
      return job.live > 0 ? changes : [...changes, { jobId, state: 'queued', cancelledAttempts: [] }];
    }
    if (outcome.kind === 'no-quorum') {
      await tx.run(`UPDATE attempts SET state = 'rejected' WHERE job_id = $1 AND state = 'completed'`, [jobId]);
      return [...changes, ...(await this.endJob(tx, jobId, 'failed', { code: 'NO_QUORUM', message: clipMessage(outcome.reason) }))];
    }
    return [...changes, ...(await this.settleLiveCount(tx, jobId, now))];
  }

  /** After an attempt ended: a job with no live attempt left goes back to queued. */
  private async settleLiveCount(tx: Tx, jobId: string, now: number): Promise<Change[]> {
    const row = await tx.get(
      `UPDATE jobs SET state = 'queued', updated_at = $1 WHERE id = $2 AND state = 'running' AND live = 0 RETURNING id`,
      [now, jobId],
    );
    return row ? [{ jobId, state: 'queued', cancelledAttempts: [] }] : [];
  }

  async fail(params: FailParams): Promise<SettleResult> {
    return this.db.tx(async (tx) => {
      const now = this.clock.now();
      const counted = COUNTED_AGAINST_WORKER.has(params.error.code);
      const { job, workerId } = await this.lockCurrent(tx, params, now, counted ? 'own' : 'none');
      const error = { ...params.error, attemptId: params.attemptId, message: clipMessage(params.error.message) };
      const n = await tx.run(
        `UPDATE attempts SET state = 'failed', finished_at = $1, error = $2 WHERE id = $3 AND lease = $4 AND state IN ${LIVE}`,
        [now, J(error), params.attemptId, params.lease],
      );
      assert(n === 1, 'the current lease fails its attempt exactly once');
      const changes = await this.afterFailure(tx, job.id, error, params.retryable, now, workerId);
      return { job: await this.mustGetJob(tx, job.id), changes };
    });
  }

  /**
   * An attempt failed, timed out or was lost: retry with backoff while the
   * budget lasts, else fail the job. One replica's non-retryable error does
   * not end a replicated job (another worker runs that replica: a single
   * untrusted worker must not be able to fail a job); the retry budget still
   * bounds it. A challenge gives up at once. A solo round that failed is rerun
   * fully replicated. A timeout or lost lease counts against the worker, whose
   * row the caller locked first.
   */
  private async afterFailure(tx: Tx, jobId: string, error: JobError, retryable: boolean, now: number, workerId: string): Promise<Change[]> {
    const row = await tx.get(
      `UPDATE jobs SET live = live - 1, failures = failures + $4, error = $1, updated_at = $2 WHERE id = $3 RETURNING *`,
      [J(error), now, jobId, countsAsFailure(error) ? 1 : 0],
    );
    assert(row, 'a failed attempt belongs to a job');
    if (COUNTED_AGAINST_WORKER.has(error.code)) {
      await tx.run('UPDATE workers SET timed_out_count = timed_out_count + 1 WHERE id = $1', [workerId]);
    }
    const job = jobFromRow(row);
    const giveUp = job.failures >= job.maxAttempts || (!retryable && job.replicas === 1) || job.pinnedWorkerId !== null;
    if (giveUp) return this.endJob(tx, jobId, 'failed', error);
    const delayMs = retryDelayMs(job, error, this.random);
    await tx.run('UPDATE jobs SET want = CASE WHEN solo = 1 THEN replicas ELSE want + 1 END, solo = 0, run_at = $1 WHERE id = $2', [
      now + delayMs,
      jobId,
    ]);
    tx.wake();
    return this.settleLiveCount(tx, jobId, now);
  }

  // ---- Sweepers ----

  async expireAttempts(params: { limit: number }): Promise<SweepResult> {
    return this.db.tx(async (tx) => {
      const now = this.clock.now();
      const limit = Math.min(params.limit, LIMITS.sweepBatchMaxRows);
      const out: SweepResult = { changes: [], endedAttempts: [] };
      const lost = await tx.all(
        `SELECT id, job_id, worker_id, heartbeat_timeout_ms FROM attempts WHERE state IN ${LIVE} AND lease_expires_at < $1
         ORDER BY lease_expires_at, id LIMIT $2`,
        [now, limit],
      );
      const hung = await tx.all(
        `SELECT id, job_id, worker_id FROM attempts WHERE state IN ${LIVE} AND timeout_at <= $1 AND id <> ALL($3::text[])
         ORDER BY timeout_at, id LIMIT $2`,
        [now, limit, lost.map((r) => String(r.id))],
      );
      // Workers first (in id order), as every transaction takes them: before jobs and attempts. Each
      // attempt ended here counts against its worker.
      await this.lockWorkers(tx, [...lost, ...hung].map((r) => String(r.worker_id)));
      // A worker silent for a whole heartbeat timeout is gone until it heartbeats again: give it nothing new.
      if (lost.length > 0) {
        await tx.run(
          `UPDATE workers SET connected = 0 WHERE id IN (
             SELECT w.id FROM workers w JOIN unnest($1::text[], $2::bigint[]) AS v(id, hb) ON w.id = v.id
             WHERE w.last_seen_at < $3 - v.hb ORDER BY w.id FOR UPDATE OF w)`,
          [lost.map((r) => String(r.worker_id)), lost.map((r) => Number(r.heartbeat_timeout_ms)), now],
        );
      }
      for (const r of lost) {
        await this.endAttempt(tx, r, 'lost', 'LEASE_LOST', 'no heartbeat within the heartbeat timeout', `lease_expires_at < $2`, now, out);
      }
      for (const r of hung) {
        await this.endAttempt(tx, r, 'failed', 'TIMEOUT', 'the attempt ran past its timeoutMs', 'timeout_at <= $2', now, out);
      }
      return out;
    });
  }

  /** Ends one attempt a sweep found, if it still qualifies once its job is locked (a heartbeat may have saved it meanwhile). */
  private async endAttempt(
    tx: Tx,
    r: Row,
    state: 'lost' | 'failed',
    code: 'LEASE_LOST' | 'TIMEOUT',
    message: string,
    still: string,
    now: number,
    out: SweepResult,
  ): Promise<void> {
    const attemptId = String(r.id);
    const jobId = String(r.job_id);
    await this.lockJobRow(tx, jobId);
    const error: JobError = { code, message, attemptId };
    const n = await tx.run(
      `UPDATE attempts SET state = $1, finished_at = $2, error = $3 WHERE id = $4 AND state IN ${LIVE} AND ${still}`,
      [state, now, J(error), attemptId],
    );
    if (n === 0) return;
    out.endedAttempts.push({ attemptId, workerId: String(r.worker_id), reason: code });
    out.changes.push(...(await this.afterFailure(tx, jobId, error, true, now, String(r.worker_id))));
  }

  async expireDeadlines(params: { limit: number }): Promise<SweepResult> {
    return this.db.tx(async (tx) => {
      const now = this.clock.now();
      const rows = await tx.all(
        `SELECT id FROM jobs WHERE state IN ('waiting', 'queued') AND has_deadline = 1 AND deadline_at <= $1
         ORDER BY deadline_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [now, Math.min(params.limit, LIMITS.sweepBatchMaxRows)],
      );
      const changes: Change[] = [];
      for (const r of rows) {
        const error: JobError = { code: 'DEADLINE_EXCEEDED', message: 'the job did not start before its deadline' };
        changes.push(...(await this.endJob(tx, String(r.id), 'expired', error)));
      }
      return { changes, endedAttempts: [] };
    });
  }

  async nextRunAt(): Promise<number | null> {
    const row = await this.db.read((sql) => sql.get('SELECT min(run_at) AS t FROM jobs WHERE want > 0 AND run_at > $1', [this.clock.now()]));
    return row?.t === null || row?.t === undefined ? null : Number(row.t);
  }

  async queueCounts(): Promise<QueueCounts[]> {
    const rows = await this.db.read((sql) => sql.all('SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state ORDER BY queue, state'));
    const byQueue = new Map<string, QueueCounts>();
    for (const r of rows) {
      const name = String(r.queue);
      let entry = byQueue.get(name);
      if (!entry) {
        entry = { queue: name, counts: emptyCounts() };
        byQueue.set(name, entry);
      }
      entry.counts[r.state as JobState] = Number(r.n);
    }
    return [...byQueue.values()];
  }

  async queueStats(params: { queues: readonly string[]; sinceMs: number; sampleMaxRows: number }): Promise<QueueRunStats[]> {
    const sample = Math.max(1, Math.min(params.sampleMaxRows, LIMITS.queueStatsSampleMaxRows));
    // The newest finished attempts of the queue (index attempts_queue_finished), then, over the
    // completed ones, the mean and the nearest-rank 95th percentile: the smallest run time whose
    // rank r among n satisfies r >= 0.95 n, written r * 100 >= 95 * n to stay in integers.
    const sql = `
      WITH recent AS (
        SELECT finished_at - leased_at AS ms, finished_at, CASE WHEN state IN ('completed', 'rejected') THEN 1 ELSE 0 END AS ok
        FROM attempts
        WHERE queue = $1 AND finished_at >= $2 AND state IN ('completed', 'rejected', 'failed', 'lost')
        ORDER BY finished_at DESC LIMIT $3
      ), ranked AS (
        SELECT ms, ok, finished_at, row_number() OVER (PARTITION BY ok ORDER BY ms) AS rn, sum(ok) OVER () AS n_ok
        FROM recent
      )
      SELECT count(*) AS n, coalesce(sum(ok), 0) AS completed, avg(CASE WHEN ok = 1 THEN ms END) AS mean_ms,
        min(CASE WHEN ok = 1 AND rn * 100 >= 95 * n_ok THEN ms END) AS p95_ms, min(finished_at) AS oldest
      FROM ranked`;
    return this.db.read(async (s) => {
      const out: QueueRunStats[] = [];
      for (const queue of new Set(params.queues)) {
        const r = await s.get(sql, [queue, params.sinceMs, sample]);
        const n = Number(r?.n ?? 0);
        const completed = Number(r?.completed ?? 0);
        const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
        out.push({
          queue,
          completed,
          failed: n - completed,
          runTimeMeanMs: num(r?.mean_ms),
          runTimeP95Ms: num(r?.p95_ms),
          sampledSinceMs: n >= sample ? Number(r?.oldest) : params.sinceMs,
        });
      }
      return out;
    });
  }

  async ping(): Promise<void> {
    await this.db.read((sql) => sql.get('SELECT 1 AS ok'));
  }

  async close(): Promise<void> {
    await this.wake.close();
    await this.db.close();
  }
}

/**
 * The LISTEN side of wake-ups: one dedicated connection (not from the pool,
 * which recycles its connections), opened on the first listener, re-opened
 * with backoff when it drops, LISTENing again each time. While it is down the
 * listeners are called every wakePollIntervalMs instead, and once when it is
 * back, since notifications sent meanwhile were lost.
 */
class WakeListener {
  private readonly db: PgDb;
  private readonly storeId: string;
  private readonly listeners = new Set<() => void>();
  private client: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private waiters: (() => void)[] = [];
  /** What woke the listeners, for tests and diagnostics. */
  readonly stats = { notified: 0, polled: 0, reconnects: 0 };
  /** The server process of the listening connection, while there is one. */
  pid: number | null = null;

  constructor(db: PgDb, storeId: string) {
    this.db = db;
    this.storeId = storeId;
  }

  add(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.client && !this.reconnectTimer && !this.closed) void this.connect();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) void this.stop();
    };
  }

  ready(): Promise<void> {
    if (this.listening) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private fire(why: 'notified' | 'polled'): void {
    this.stats[why]++;
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the others still hear the wake-up.
      }
    }
  }

  private async connect(): Promise<void> {
    this.startPolling();
    // The pool's own connection settings (pg-pool keeps the password out of enumeration: copy it by name).
    const options = this.db.pool.options;
    const client = new pg.Client({ ...options, password: options.password, application_name: 'gaffer-listen' });
    this.client = client;
    client.on('notification', (msg) => {
      if (msg.channel === WAKE_CHANNEL && this.db.wakeIsForUs(msg.payload, this.storeId)) this.fire('notified');
    });
    client.on('error', () => this.dropped(client));
    client.on('end', () => this.dropped(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${WAKE_CHANNEL}`);
      this.pid = Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
    } catch {
      this.dropped(client);
      return;
    }
    if (this.client !== client) return;
    const reconnected = this.failures > 0;
    this.failures = 0;
    this.listening = true;
    this.stopPolling();
    for (const resolve of this.waiters.splice(0)) resolve();
    // Anything sent while nobody listened was lost: look once.
    if (reconnected) this.fire('polled');
  }

  private dropped(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.listening = false;
    this.pid = null;
    void client.end().catch(() => {});
    if (this.closed || this.listeners.size === 0) return;
    this.startPolling();
    const delay = Math.min(POSTGRES_DEFAULTS.listenReconnectMaxDelayMs, POSTGRES_DEFAULTS.listenReconnectBaseDelayMs * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, 30);
    this.stats.reconnects++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed && this.listeners.size > 0) void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private startPolling(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => this.fire('polled'), POSTGRES_DEFAULTS.wakePollIntervalMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  private async stop(): Promise<void> {
    this.stopPolling();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const client = this.client;
    this.client = null;
    this.listening = false;
    this.pid = null;
    this.failures = 0;
    if (client) await client.end().catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    await this.stop();
  }
}
