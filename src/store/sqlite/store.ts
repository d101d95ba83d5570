// The embedded store: one SQLite file (WAL) for one coordinator. Every method
// is one transaction; node:sqlite is synchronous, so a transaction never
// interleaves with another in this process.
import type { Clock, Random } from '../../types/clock.ts';
import { assert, GafferError } from '../../types/errors.ts';
import { idFactory, randomToken, type IdFactory } from '../../types/ids.ts';
import { LIMITS } from '../../types/limits.ts';
import type {
  Assignment,
  Attempt,
  Candidate,
  Job,
  JobError,
  Json,
  NewJob,
  Placement,
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
  candidatePaging,
  claimScope,
  needsExclusions,
  EXCLUDING_ATTEMPT_STATES,
  LIVE_ATTEMPT_COLUMNS,
  candidateFilter,
  excludeUnplaceableLabels,
  type CandidateFilter,
  type ClaimScope,
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
import { SqliteDb, type SqliteOptions } from './db.ts';

export interface SqliteStoreOptions extends SqliteOptions {
  clock: Clock;
  random: Random;
  /** A worker not seen for this long is shown offline. */
  workerOfflineAfterMs?: number;
  /** Quarantine thresholds, adaptive replication, extra replicas (TRUST_DEFAULTS). */
  trust?: Partial<TrustPolicy>;
}

const LIVE = `('${LIVE_ATTEMPT_STATES.join("', '")}')`;
const TERMINAL = `('${TERMINAL_JOB_STATES.join("', '")}')`;
const EXCLUDING = `('${EXCLUDING_ATTEMPT_STATES.join("', '")}')`;
const J = JSON.stringify;

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}

/**
 * The CandidateFilter in SQL; parameters: the excluded label sets (JSON
 * array), then the held keys (JSON array, or null for no key filter) twice.
 */
const CANDIDATE_FILTER = `AND req_labels NOT IN (SELECT value FROM json_each(?))
         AND (? IS NULL OR affinity_mode IS NOT 'require' OR affinity_key IN (SELECT value FROM json_each(?)))`;

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly capabilities = { shared: false, groupCommit: true } as const;
  private readonly db: SqliteDb;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly newId: IdFactory;
  private readonly offlineAfterMs: number;
  private readonly trust: TrustPolicy;

  constructor(options: SqliteStoreOptions) {
    this.db = new SqliteDb(options);
    this.clock = options.clock;
    this.random = options.random;
    this.newId = idFactory(options.clock, options.random);
    this.offlineAfterMs = options.workerOfflineAfterMs ?? 30_000;
    this.trust = trustPolicy(options.trust);
  }

  // ---- Jobs ----

  async submit(params: { jobs: readonly NewJob[] }): Promise<SubmitResult[]> {
    assert(params.jobs.length <= LIMITS.submitBatchMaxJobs, 'submit batch within its bound');
    return this.db.write(() => params.jobs.map((job) => this.submitOne(job)));
  }

  private submitOne(spec: NewJob, links: JobLinks = {}): SubmitResult {
    if (spec.idempotencyKey !== null) {
      const existing = this.db.get('SELECT * FROM jobs WHERE idempotency_key = ?', spec.idempotencyKey);
      if (existing) return { job: jobFromRow(existing), created: false };
    }
    const now = this.clock.now();
    const id = this.newId();
    const parents = this.parentStates(spec.dependsOn);
    const { state, pending, error } = initialJobState(parents);
    const row = this.db.get(
      `INSERT INTO jobs (id, queue, state, payload, priority, run_at, deadline_at, has_deadline, timeout_ms,
         heartbeat_timeout_ms, max_attempts, backoff_base_ms, backoff_max_ms, req_cores, req_memory_mb, req_gpus,
         req_labels, affinity_key, affinity_mode, depends_on, replicas, quorum, verify, idempotency_key, labels,
         want, pending_parents, error, created_at, updated_at, finished_at, adaptive, verifies_job_id,
         verifies_attempt_id, pinned_worker_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       RETURNING *`,
      id, spec.queue, state, J(spec.payload), spec.priority, spec.runAt ?? now, spec.deadline ?? NO_DEADLINE,
      spec.deadline === null ? 0 : 1, spec.timeoutMs, spec.heartbeatTimeoutMs, spec.maxAttempts,
      spec.backoff.baseMs, spec.backoff.maxMs, spec.requires.cores, spec.requires.memoryMb, spec.requires.gpus,
      J(spec.requires.labels), spec.affinity?.key ?? null, spec.affinity?.mode ?? null, J(spec.dependsOn),
      spec.replicas, spec.quorum, spec.verify === null ? null : J(spec.verify), spec.idempotencyKey, J(spec.labels),
      state === 'queued' ? spec.replicas : 0, state === 'waiting' ? pending : 0, error === null ? null : J(error),
      now, now, error !== null ? now : null, spec.adaptive ? 1 : 0, links.verifies?.jobId ?? null,
      links.verifies?.attemptId ?? null, links.pinnedWorkerId ?? null,
    );
    assert(row, 'an inserted job is returned');
    for (const p of parents) {
      this.db.run('INSERT OR IGNORE INTO job_deps (parent_id, job_id) VALUES (?, ?)', p.id, id);
      this.db.run('UPDATE jobs SET has_dependants = 1 WHERE id = ? AND has_dependants = 0', p.id);
    }
    return { job: jobFromRow(row), created: true };
  }

  private parentStates(ids: readonly string[]): { id: string; state: JobState }[] {
    return [...new Set(ids)].map((id) => {
      const row = this.db.get('SELECT state FROM jobs WHERE id = ?', id);
      if (!row) throw new GafferError('UNKNOWN_DEPENDENCY', `dependsOn names ${id}, which does not exist`, { jobId: id });
      return { id, state: row.state as JobState };
    });
  }

  async getJob(params: { id: string }): Promise<Job | null> {
    const row = this.db.get('SELECT * FROM jobs WHERE id = ?', params.id);
    return row ? jobFromRow(row) : null;
  }

  private mustGetJob(id: string): Job {
    const row = this.db.get('SELECT * FROM jobs WHERE id = ?', id);
    if (!row) throw new GafferError('JOB_NOT_FOUND', `no job has id ${id}`, { jobId: id });
    return jobFromRow(row);
  }

  async listJobs(params: ListJobsParams): Promise<JobPage> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (params.queue !== undefined) (where.push('queue = ?'), args.push(params.queue));
    if (params.state !== undefined) (where.push('state = ?'), args.push(params.state));
    if (params.label !== undefined) {
      where.push("json_extract(labels, '$.' || json_quote(?)) = ?");
      args.push(params.label.key, params.label.value);
    }
    if (params.cursor !== undefined) (where.push('id < ?'), args.push(decodeCursor(params.cursor)));
    const limit = Math.max(1, Math.min(params.limit, LIMITS.listMaxJobs));
    const sql = `SELECT * FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.db.all(sql, ...args, limit + 1);
    const jobs = rows.slice(0, limit).map(jobFromRow);
    const last = jobs[jobs.length - 1];
    return { jobs, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
  }

  async listAttempts(params: { jobId: string }): Promise<Attempt[]> {
    return this.db.all('SELECT * FROM attempts WHERE job_id = ? ORDER BY seq, id', params.jobId).map(attemptFromRow);
  }

  async listLiveAttempts(params: { workerId: string }): Promise<Attempt[]> {
    return this.db
      .all(`SELECT * FROM attempts WHERE worker_id = ? AND state IN ${LIVE} ORDER BY id`, params.workerId)
      .map(attemptFromRow);
  }

  async cancel(params: { jobId: string; reason?: string }): Promise<SettleResult> {
    return this.db.write(() => {
      const job = this.mustGetJob(params.jobId);
      if (job.state === 'cancelled') return { job, changes: [] };
      if (TERMINAL_JOB_STATES.includes(job.state)) {
        throw new GafferError('INVALID_STATE', `job ${job.id} already ended ${job.state}`, { state: job.state });
      }
      const error: JobError = { code: 'CANCELLED', message: params.reason ?? 'cancelled by a client' };
      const changes = this.endJob(job.id, 'cancelled', error);
      return { job: this.mustGetJob(job.id), changes };
    });
  }

  async retry(params: { jobId: string }): Promise<SettleResult> {
    return this.db.write(() => {
      const job = this.mustGetJob(params.jobId);
      if (job.state !== 'failed' && job.state !== 'cancelled' && job.state !== 'expired') {
        throw new GafferError('INVALID_STATE', `only a failed, cancelled or expired job can be retried; ${job.id} is ${job.state}`);
      }
      assertRetryable(job);
      const blocking = this.parentStates(job.dependsOn).find((p) => p.state !== 'succeeded');
      if (blocking) {
        throw new GafferError('INVALID_STATE', `parent ${blocking.id} is ${blocking.state}; retry it first`, { jobId: blocking.id });
      }
      const now = this.clock.now();
      // A retry is a fresh round: results of earlier replicas no longer vote.
      this.db.run(`UPDATE attempts SET state = 'rejected' WHERE job_id = ? AND state = 'completed'`, job.id);
      this.db.run(
        `UPDATE jobs SET state = 'queued', want = replicas, failures = 0, error = NULL, result = NULL,
           finished_at = NULL, pending_parents = 0, run_at = ?, updated_at = ?, extra_replicas = 0, solo = 0,
           adapted = 0, round_seq = attempts
         WHERE id = ?`,
        now, now, job.id,
      );
      return { job: this.mustGetJob(job.id), changes: [{ jobId: job.id, state: 'queued', cancelledAttempts: [] }] };
    });
  }

  /**
   * Ends a job that has not ended: stops its live attempts and cascades to its
   * waiting dependants (cancelled with a cancel, failed otherwise).
   */
  private endJob(jobId: string, state: 'failed' | 'cancelled' | 'expired', error: JobError): Change[] {
    const now = this.clock.now();
    const changes: Change[] = [];
    const queue: { id: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError }[] = [{ id: jobId, state, error }];
    for (let i = 0; i < queue.length; i++) {
      assert(i < LIMITS.cascadeMaxJobs, 'a cascade through dependants stays within its bound');
      const item = queue[i]!;
      const cancelledAttempts = this.stopLiveAttempts(item.id, now);
      const ended = this.db.get(
        `UPDATE jobs SET state = ?, want = 0, live = 0, error = ?, finished_at = ?, updated_at = ?
         WHERE id = ? AND state NOT IN ${TERMINAL} RETURNING verifies_job_id, pinned_worker_id`,
        item.state, J(item.error), now, now, item.id,
      );
      if (!ended) continue;
      changes.push({ jobId: item.id, state: item.state, cancelledAttempts });
      queue.push(...this.endedLinks(item, ended, now));
      const childState = item.state === 'cancelled' ? 'cancelled' : 'failed';
      const code = item.state === 'cancelled' ? 'DEPENDENCY_CANCELLED' : 'DEPENDENCY_FAILED';
      for (const child of this.db.all(
        `SELECT j.id FROM job_deps d JOIN jobs j ON j.id = d.job_id WHERE d.parent_id = ? AND j.state = 'waiting'`,
        item.id,
      )) {
        const message = `parent ${item.id} ended ${item.state}`;
        queue.push({ id: String(child.id), state: childState, error: { code, message, jobId: item.id } });
      }
    }
    return changes;
  }

  /**
   * What else ends with a job: the job a verification job was checking (it
   * fails: no verdict came), the verification jobs of a job (cancelled), and a
   * challenge's reliability check (failed).
   */
  private endedLinks(
    item: { id: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError },
    ended: Row,
    now: number,
  ): { id: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError }[] {
    const more: { id: string; state: 'failed' | 'cancelled' | 'expired'; error: JobError }[] = [];
    if (ended.verifies_job_id !== null) {
      const original = this.db.get(`SELECT id FROM jobs WHERE id = ? AND state = 'verifying'`, String(ended.verifies_job_id));
      if (original) {
        const message = `verification job ${item.id} ended ${item.state}: ${item.error.message}`;
        more.push({ id: String(original.id), state: 'failed', error: { code: 'VERIFICATION_FAILED', message: clipMessage(message), jobId: item.id } });
      }
    }
    for (const v of this.db.all(`SELECT id FROM jobs WHERE verifies_job_id = ? AND state NOT IN ${TERMINAL}`, item.id)) {
      more.push({ id: String(v.id), state: 'cancelled', error: { code: 'CANCELLED', message: `the job it verifies ended ${item.state}`, jobId: item.id } });
    }
    if (ended.pinned_worker_id !== null) {
      this.db.run(
        `UPDATE worker_checks SET state = 'failed', reason = ?, updated_at = ? WHERE job_id = ? AND state = 'pending'`,
        clipMessage(`the challenge ended ${item.state}: ${item.error.message}`), now, item.id,
      );
    }
    return more;
  }

  private stopLiveAttempts(jobId: string, now: number): { attemptId: string; workerId: string }[] {
    return this.db
      .all(
        `UPDATE attempts SET state = 'cancelled', finished_at = ? WHERE job_id = ? AND state IN ${LIVE}
         RETURNING id, worker_id`,
        now, jobId,
      )
      .map((r) => ({ attemptId: String(r.id), workerId: String(r.worker_id) }));
  }

  /** A parent succeeded: its waiting children lose one pending parent, and the ready ones queue. */
  private releaseChildren(parentId: string, now: number): Change[] {
    const rows = this.db.all(
      `UPDATE jobs SET pending_parents = pending_parents - 1,
         state = CASE WHEN pending_parents = 1 THEN 'queued' ELSE state END,
         want = CASE WHEN pending_parents = 1 THEN replicas ELSE 0 END,
         run_at = CASE WHEN pending_parents = 1 THEN max(run_at, ?) ELSE run_at END,
         updated_at = ?
       WHERE state = 'waiting' AND id IN (SELECT job_id FROM job_deps WHERE parent_id = ?)
       RETURNING id, state`,
      now, now, parentId,
    );
    return rows
      .filter((r) => r.state === 'queued')
      .map((r) => ({ jobId: String(r.id), state: 'queued' as const, cancelledAttempts: [] }));
  }

  // ---- Workers ----

  async upsertWorker(params: { spec: WorkerSpec }): Promise<Worker> {
    const s = params.spec;
    const now = this.clock.now();
    const id = s.id ?? this.newId();
    await this.db.write(() =>
      this.db.run(
        `INSERT INTO workers (id, name, labels, cores, memory_mb, gpu_ids, queues, keys, connected, draining,
           connected_at, last_seen_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, labels = excluded.labels, cores = excluded.cores,
           memory_mb = excluded.memory_mb, gpu_ids = excluded.gpu_ids, queues = excluded.queues, keys = excluded.keys,
           connected = 1, draining = 0, connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at`,
        id, s.name, J(s.labels), s.cores, s.memoryMb, J(s.gpuIds), J(s.queues), J(s.keys), now, now, now,
      ),
      false,
    );
    return this.mustGetWorker(id);
  }

  async getWorker(params: { id: string }): Promise<Worker | null> {
    const row = this.db.get('SELECT * FROM workers WHERE id = ?', params.id);
    return row ? this.workerWithRunning(row) : null;
  }

  private mustGetWorker(id: string): Worker {
    const row = this.db.get('SELECT * FROM workers WHERE id = ?', id);
    if (!row) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${id}`, { workerId: id });
    return this.workerWithRunning(row);
  }

  private workerWithRunning(row: Row): Worker {
    const running: Record<string, number> = {};
    for (const r of this.db.all(
      `SELECT queue, count(*) AS n FROM attempts WHERE worker_id = ? AND state IN ${LIVE} GROUP BY queue`,
      String(row.id),
    )) {
      running[String(r.queue)] = Number(r.n);
    }
    const checks: Record<string, WorkerCheck> = {};
    for (const c of this.db.all('SELECT * FROM worker_checks WHERE worker_id = ? ORDER BY queue', String(row.id))) {
      checks[String(c.queue)] = checkFromRow(c);
    }
    return workerFromRow(row, running, this.clock.now(), this.offlineAfterMs, checks);
  }

  /** Every worker, with three queries in all (workers, live attempt counts, checks). */
  async listWorkers(): Promise<Worker[]> {
    const running = new Map<string, Record<string, number>>();
    for (const r of this.db.all(`SELECT worker_id, queue, count(*) AS n FROM attempts WHERE state IN ${LIVE} GROUP BY worker_id, queue`)) {
      const id = String(r.worker_id);
      running.set(id, { ...running.get(id), [String(r.queue)]: Number(r.n) });
    }
    const checks = new Map<string, Record<string, WorkerCheck>>();
    for (const c of this.db.all('SELECT * FROM worker_checks ORDER BY worker_id, queue')) {
      const id = String(c.worker_id);
      checks.set(id, { ...checks.get(id), [String(c.queue)]: checkFromRow(c) });
    }
    const now = this.clock.now();
    return this.db
      .all('SELECT * FROM workers ORDER BY id')
      .map((r) => workerFromRow(r, running.get(String(r.id)) ?? {}, now, this.offlineAfterMs, checks.get(String(r.id)) ?? {}));
  }

  async disconnectWorker(params: { workerId: string }): Promise<void> {
    await this.db.write(() => this.db.run('UPDATE workers SET connected = 0 WHERE id = ?', params.workerId), false);
  }

  async setWorkerDraining(params: { workerId: string; draining: boolean }): Promise<Worker> {
    const n = await this.db.write(() =>
      this.db.run('UPDATE workers SET draining = ? WHERE id = ?', params.draining ? 1 : 0, params.workerId),
    );
    if (n === 0) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
    return this.mustGetWorker(params.workerId);
  }

  async updateWorkerKeys(params: { workerId: string; hold?: readonly string[]; release?: readonly string[] }): Promise<Worker> {
    await this.db.write(() => {
      const row = this.db.get('SELECT keys FROM workers WHERE id = ?', params.workerId);
      if (!row) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
      const keys = new Set(JSON.parse(String(row.keys ?? '[]')) as string[]);
      for (const k of params.hold ?? []) keys.add(k);
      for (const k of params.release ?? []) keys.delete(k);
      if (keys.size > LIMITS.workerKeysMax) {
        throw new GafferError('INVALID_INPUT', `a worker holds at most ${LIMITS.workerKeysMax} keys; this would make ${keys.size}`, {
          maxKeys: LIMITS.workerKeysMax,
        });
      }
      this.db.run('UPDATE workers SET keys = ? WHERE id = ?', J([...keys]), params.workerId);
    });
    return this.mustGetWorker(params.workerId);
  }

  async setWorkerQuarantine(params: QuarantineParams): Promise<{ worker: Worker; changes: Change[] }> {
    const changes = await this.db.write(() => {
      const row = this.db.get('SELECT quarantined FROM workers WHERE id = ?', params.workerId);
      if (!row) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
      if (!params.quarantined) {
        this.db.run(
          `UPDATE workers SET quarantined = 0, quarantine_reason = NULL, valid_count = 0, invalid_count = 0,
             timed_out_count = 0, valid_streak = 0, solo_since_check = 0 WHERE id = ?`,
          params.workerId,
        );
        // Failed checks start again with the same challenge, so a released worker is checked before real work.
        const now = this.clock.now();
        const changes: Change[] = [];
        for (const c of this.db.all(`SELECT queue, job_id FROM worker_checks WHERE worker_id = ? AND state = 'failed'`, params.workerId)) {
          const { job } = this.submitOne(challengeAgain(this.mustGetJob(String(c.job_id))), { pinnedWorkerId: params.workerId });
          this.db.run(
            `UPDATE worker_checks SET state = 'pending', job_id = ?, speed_ms = NULL, reason = NULL, updated_at = ? WHERE worker_id = ? AND queue = ?`,
            job.id, now, params.workerId, String(c.queue),
          );
          changes.push({ jobId: job.id, state: job.state, cancelledAttempts: [] });
        }
        return changes;
      }
      this.db.run(
        'UPDATE workers SET quarantined = 1, quarantine_reason = ? WHERE id = ?',
        clipMessage(params.reason ?? 'quarantined by an admin'), params.workerId,
      );
      return this.evict(params.workerId, this.clock.now());
    });
    return { worker: this.mustGetWorker(params.workerId), changes };
  }

  /**
   * A quarantined worker's live attempts are cancelled and their jobs put back
   * (not counted as failures: the jobs did nothing wrong). A challenge of its
   * own ends, failing its check.
   */
  private evict(workerId: string, now: number): Change[] {
    const changes: Change[] = [];
    const stopped = this.db.all(
      `UPDATE attempts SET state = 'cancelled', finished_at = ? WHERE worker_id = ? AND state IN ${LIVE} RETURNING id, job_id`,
      now, workerId,
    );
    for (const a of stopped) {
      const jobId = String(a.job_id);
      const cancelledAttempts = [{ attemptId: String(a.id), workerId }];
      const job = this.db.get(
        `UPDATE jobs SET live = live - 1, want = CASE WHEN solo = 1 THEN replicas ELSE want + 1 END, solo = 0, updated_at = ?
         WHERE id = ? RETURNING pinned_worker_id, state`,
        now, jobId,
      );
      assert(job, 'a cancelled attempt belongs to a job');
      if (job.pinned_worker_id !== null) {
        const error: JobError = { code: 'QUARANTINED', message: `worker ${workerId} was quarantined` };
        changes.push(...this.endJob(jobId, 'cancelled', error).map((c) => (c.jobId === jobId ? { ...c, cancelledAttempts } : c)));
        continue;
      }
      const moved = this.settleLiveCount(jobId, now);
      changes.push({ jobId, state: moved[0]?.state ?? (job.state as JobState), cancelledAttempts });
    }
    return changes;
  }

  /** Records a judged result for a worker; quarantines it when its invalid share crosses the threshold. */
  private judgeWorker(workerId: string, verdict: 'valid' | 'invalid', now: number): Change[] {
    const row = this.db.get('SELECT * FROM workers WHERE id = ?', workerId);
    if (!row) return [];
    const rep = judge(reputationFromRow(row), verdict);
    const reason = Number(row.quarantined) === 1 ? null : quarantineReason(rep, this.trust);
    this.db.run(
      `UPDATE workers SET valid_count = ?, invalid_count = ?, valid_streak = ?, solo_since_check = ?,
         quarantined = CASE WHEN ? IS NULL THEN quarantined ELSE 1 END, quarantine_reason = coalesce(?, quarantine_reason)
       WHERE id = ?`,
      rep.valid, rep.invalid, rep.streak, rep.soloSinceCheck, reason, reason, workerId,
    );
    return reason === null ? [] : this.evict(workerId, now);
  }

  async startCheck(params: StartCheckParams): Promise<{ check: WorkerCheck; created: boolean }> {
    return this.db.write(() => {
      const existing = this.db.get(
        `SELECT c.*, j.state AS job_state FROM worker_checks c LEFT JOIN jobs j ON j.id = c.job_id
         WHERE c.worker_id = ? AND c.queue = ?`,
        params.workerId, params.queue,
      );
      const stale = existing && existing.state === 'pending' && (existing.job_state === null || TERMINAL_JOB_STATES.includes(existing.job_state as JobState));
      if (existing && !stale) return { check: checkFromRow(existing), created: false };
      if (!this.db.get('SELECT id FROM workers WHERE id = ?', params.workerId)) {
        throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
      }
      const { job } = this.submitOne({ ...params.job, idempotencyKey: null, dependsOn: [] }, { pinnedWorkerId: params.workerId });
      const now = this.clock.now();
      this.db.run(
        `INSERT INTO worker_checks (worker_id, queue, state, job_id, answer_hash, time_limit_ms, speed_ms, reason, updated_at)
         VALUES (?, ?, 'pending', ?, ?, ?, NULL, NULL, ?)
         ON CONFLICT (worker_id, queue) DO UPDATE SET state = 'pending', job_id = excluded.job_id,
           answer_hash = excluded.answer_hash, time_limit_ms = excluded.time_limit_ms, speed_ms = NULL, reason = NULL,
           updated_at = excluded.updated_at`,
        params.workerId, params.queue, job.id, params.answerHash, params.timeLimitMs, now,
      );
      const row = this.db.get('SELECT * FROM worker_checks WHERE worker_id = ? AND queue = ?', params.workerId, params.queue);
      assert(row, 'a check just written is there');
      return { check: checkFromRow(row), created: true };
    });
  }

  /** A challenge completed: the check passes when the answer matches and it came within the time limit. */
  private gradeCheck(jobId: string, hash: string, tookMs: number, now: number): void {
    const check = this.db.get(`SELECT * FROM worker_checks WHERE job_id = ? AND state = 'pending'`, jobId);
    if (!check) return;
    const right = check.answer_hash === hash;
    const inTime = tookMs <= Number(check.time_limit_ms);
    const reason = !right
      ? 'the challenge answer was wrong'
      : !inTime
        ? `the challenge took ${tookMs} ms; the limit is ${Number(check.time_limit_ms)} ms`
        : null;
    this.db.run(
      `UPDATE worker_checks SET state = ?, speed_ms = ?, reason = ?, updated_at = ? WHERE worker_id = ? AND queue = ?`,
      reason === null ? 'passed' : 'failed', tookMs, reason, now, String(check.worker_id), String(check.queue),
    );
  }

  // ---- Claim ----

  async claim(params: ClaimParams): Promise<Assignment[]> {
    if (params.workerIds.length === 0 || params.maxJobs <= 0) return [];
    return this.db.write(() => {
      const now = this.clock.now();
      const workers = this.capacities(params.workerIds);
      if (workers.length === 0) return [];
      const { placements, candidates } = this.plan(params, workers, now);
      checkPlacements(placements, workers, params.maxJobs, candidates);
      const soloJobs = new Set<string>();
      const out: Assignment[] = [];
      for (const p of placements) {
        const a = this.lease(p, now, soloJobs);
        if (a) out.push(a);
      }
      for (const id of new Set(out.map((a) => a.workerId))) this.assertWorkerWithinCapacity(id);
      return out;
    }, false);
  }

  /** What each eligible worker has free right now, from its live attempts. */
  private capacities(workerIds: readonly string[]): WorkerCapacity[] {
    const rows = this.db.all(
      `SELECT * FROM workers WHERE id IN (SELECT value FROM json_each(?))
         AND connected = 1 AND draining = 0 AND quarantined = 0 AND last_seen_at >= ?`,
      J(workerIds), this.clock.now() - this.offlineAfterMs,
    );
    const ids = J(rows.map((w) => String(w.id)));
    const live = this.db.all(
      `SELECT ${LIVE_ATTEMPT_COLUMNS} FROM attempts WHERE worker_id IN (SELECT value FROM json_each(?)) AND state IN ${LIVE}`,
      ids,
    );
    const checks = this.db.all(`SELECT ${CHECK_COLUMNS} FROM worker_checks WHERE worker_id IN (SELECT value FROM json_each(?))`, ids);
    return capacities(rows, live, checks);
  }

  /**
   * Reads candidates page by page until the workers are full or the pages run
   * out; label sets no free worker has are learnt on the way and left out of
   * the reads that follow (from the first page again).
   */
  private plan(params: ClaimParams, workers: WorkerCapacity[], now: number): { placements: Placement[]; candidates: Map<string, Candidate> } {
    const scope = claimScope(params, workers);
    const { budget, queues } = scope;
    const { perPage, maxPages } = candidatePaging(budget);
    const filter = candidateFilter(workers);
    const seen = new Map<string, Candidate>();
    let placements: Placement[] = [];
    let rereads = 0;
    for (let page = 0; page < maxPages; page++) {
      let more = false;
      const fresh: Row[] = [];
      for (const queue of queues) {
        const { rows, full } = this.candidateRows(queue, now, scope, filter, page, perPage);
        if (full) more = true;
        for (const r of rows) {
          if (seen.has(String(r.id))) continue;
          seen.set(String(r.id), this.candidateOf(r));
          fresh.push(r);
        }
      }
      if (seen.size === 0) return { placements: [], candidates: seen };
      placements = params.place({ now, workers, candidates: [...seen.values()], maxPlacements: budget });
      if (placements.length >= budget || !more) break;
      if (rereads < LIMITS.claimRereadsMax && excludeUnplaceableLabels(filter, fresh, workers)) {
        rereads++;
        page = -1;
      }
    }
    return { placements, candidates: seen };
  }

  /** One page of a queue's candidates; `full` when the priority page was full, so a next page may exist. */
  private candidateRows(queue: string, now: number, scope: ClaimScope, filter: CandidateFilter, page: number, perPage: number): { rows: Row[]; full: boolean } {
    const cols = CANDIDATE_COLUMNS;
    const { maxCores: cores, maxMemoryMb: memory, maxGpus: gpus } = scope;
    const excluded = J(filter.excludedLabels);
    const held = filter.heldKeys === null ? null : J(filter.heldKeys);
    const byPriority = this.db.all(
      `SELECT ${cols} FROM jobs WHERE want > 0 AND queue = ? AND run_at <= ? AND deadline_at > ?
         AND req_cores <= ? AND req_memory_mb <= ? AND req_gpus <= ? ${CANDIDATE_FILTER}
       ORDER BY priority DESC, deadline_at, id LIMIT ? OFFSET ?`,
      queue, now, now, cores, memory, gpus, excluded, held, held, perPage, page * perPage,
    );
    const full = byPriority.length === perPage;
    if (page > 0) return { rows: byPriority, full };
    // The oldest ready jobs too, so that aging can lift them past newer, higher-priority work. The
    // partial index holds only claimable jobs: without INDEXED BY the planner may walk jobs_queue
    // through every finished job of the queue.
    const oldest = this.db.all(
      `SELECT ${cols} FROM jobs INDEXED BY jobs_claim_age WHERE want > 0 AND queue = ? AND run_at <= ? AND deadline_at > ?
         AND req_cores <= ? AND req_memory_mb <= ? AND req_gpus <= ? ${CANDIDATE_FILTER}
       ORDER BY id LIMIT ?`,
      queue, now, now, cores, memory, gpus, excluded, held, held, perPage,
    );
    return { rows: byPriority.concat(oldest), full };
  }

  private candidateOf(r: Row): Candidate {
    const excluded =
      needsExclusions(r)
        ? this.db
            .all(
              `SELECT DISTINCT worker_id FROM attempts WHERE job_id = ? AND state IN ${EXCLUDING} AND seq > ?
               UNION SELECT worker_id FROM attempts WHERE id = ?`,
              String(r.id), Number(r.round_seq), r.verifies_attempt_id === null ? null : String(r.verifies_attempt_id),
            )
            .map((x) => String(x.worker_id))
        : [];
    return candidateFromRow(r, excluded);
  }

  /**
   * Writes one attempt for a placement and moves its job to running. Null when
   * the job went solo earlier in this claim (adaptive replication), so its
   * other placements are dropped.
   */
  private lease(p: Placement, now: number, soloJobs: Set<string>): Assignment | null {
    const job = this.db.get(
      `UPDATE jobs SET want = want - 1, live = live + 1, attempts = attempts + 1, state = 'running', updated_at = ?
       WHERE id = ? AND want > 0 AND state IN ('queued', 'running')
       RETURNING id, queue, payload, attempts, timeout_ms, heartbeat_timeout_ms, deadline_at, has_deadline,
         req_cores, req_memory_mb, req_gpus, labels, adaptive, adapted`,
      now, p.jobId,
    );
    if (!job && soloJobs.has(p.jobId)) return null;
    assert(job, 'a placed job still wants an attempt');
    // The first lease of a round of an adaptive job decides: a trusted worker may run it alone.
    if (Number(job.adaptive) === 1 && Number(job.adapted) === 0) this.adapt(p, now, soloJobs);
    const a = assignmentOf(job, p, { attemptId: this.newId(), lease: randomToken(this.random), attempt: Number(job.attempts) }, now);
    this.db.run(
      `INSERT INTO attempts (id, job_id, worker_id, queue, seq, state, lease, gpu_ids, cores, memory_mb,
         heartbeat_timeout_ms, leased_at, heartbeat_at, lease_expires_at, timeout_at)
       VALUES (?, ?, ?, ?, ?, 'leased', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      a.attemptId, a.jobId, a.workerId, a.queue, a.attempt, a.lease, J(a.gpuIds),
      a.cores, a.memoryMb, a.heartbeatTimeoutMs, now, now, a.leaseExpiresAt, now + a.timeoutMs,
    );
    return a;
  }

  private adapt(p: Placement, now: number, soloJobs: Set<string>): void {
    const w = this.db.get('SELECT * FROM workers WHERE id = ?', p.workerId);
    assert(w, 'a placed worker exists');
    const decision = soloDecision(reputationFromRow(w), this.trust, this.random);
    this.db.run('UPDATE jobs SET adapted = 1 WHERE id = ?', p.jobId);
    if (decision === 'spot-check') this.db.run('UPDATE workers SET solo_since_check = 0 WHERE id = ?', p.workerId);
    if (decision !== 'solo') return;
    this.db.run('UPDATE jobs SET solo = 1, want = 0, updated_at = ? WHERE id = ?', now, p.jobId);
    this.db.run('UPDATE workers SET solo_since_check = solo_since_check + 1 WHERE id = ?', p.workerId);
    soloJobs.add(p.jobId);
  }

  /** Invariant 5, checked against the database after a claim wrote its leases: never more than declared. */
  private assertWorkerWithinCapacity(workerId: string): void {
    const w = this.db.get('SELECT cores, memory_mb, gpu_ids, queues FROM workers WHERE id = ?', workerId);
    assert(w, 'a leased attempt belongs to a known worker');
    const live = this.db.all(`SELECT ${LIVE_ATTEMPT_COLUMNS} FROM attempts WHERE worker_id = ? AND state IN ${LIVE}`, workerId);
    assertWithinDeclared(w, live);
  }

  // ---- Heartbeats and reports ----

  async heartbeat(params: HeartbeatParams): Promise<HeartbeatResult> {
    return this.db.write(() => {
      const now = this.clock.now();
      const before = this.db.get('SELECT connected FROM workers WHERE id = ?', params.workerId);
      if (!before) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
      this.db.run('UPDATE workers SET last_seen_at = ?, connected = 1 WHERE id = ?', now, params.workerId);
      const revived = Number(before.connected) === 0 ? { revived: true as const } : {};
      const extend = `UPDATE attempts SET heartbeat_at = ?, lease_expires_at = ? + heartbeat_timeout_ms,
          started_at = coalesce(started_at, ?), state = CASE WHEN state = 'leased' THEN 'running' ELSE state END
        WHERE worker_id = ? AND state IN ${LIVE} AND lease_expires_at >= ?`;
      if (params.attempts === undefined) {
        const rows = this.db.all(`${extend} RETURNING id`, now, now, now, params.workerId, now);
        return { extended: rows.map((r) => String(r.id)), revoked: [], ...revived };
      }
      const extended: string[] = [];
      const revoked: string[] = [];
      for (const ref of params.attempts) {
        const ok = this.db.run(`${extend} AND id = ? AND lease = ?`, now, now, now, params.workerId, now, ref.attemptId, ref.lease);
        (ok === 1 ? extended : revoked).push(ref.attemptId);
      }
      return { extended, revoked, ...revived };
    }, false);
  }

  async progress(params: LeaseRef & { progress: unknown }): Promise<void> {
    await this.db.write(() => {
      const now = this.clock.now();
      const n = this.db.run(
        `UPDATE attempts SET progress = ?, heartbeat_at = ?, lease_expires_at = ? + heartbeat_timeout_ms,
           started_at = coalesce(started_at, ?), state = CASE WHEN state = 'leased' THEN 'running' ELSE state END
         WHERE id = ? AND lease = ? AND state IN ${LIVE} AND lease_expires_at >= ?`,
        J(params.progress), now, now, now, params.attemptId, params.lease, now,
      );
      if (n === 0) this.throwStale(params);
    }, false);
  }

  /** Finds the live attempt the lease names, or throws ATTEMPT_NOT_FOUND / STALE_LEASE. */
  private currentAttempt(ref: LeaseRef, now: number): { jobId: string; workerId: string } {
    const row = this.db.get('SELECT job_id, worker_id, state, lease, lease_expires_at FROM attempts WHERE id = ?', ref.attemptId);
    if (!row) throw new GafferError('ATTEMPT_NOT_FOUND', `no attempt has id ${ref.attemptId}`);
    const live = LIVE_ATTEMPT_STATES.includes(row.state as never);
    if (row.lease !== ref.lease || !live || Number(row.lease_expires_at) < now) this.throwStale(ref);
    return { jobId: String(row.job_id), workerId: String(row.worker_id) };
  }

  private throwStale(ref: LeaseRef): never {
    const row = this.db.get('SELECT state FROM attempts WHERE id = ?', ref.attemptId);
    if (!row) throw new GafferError('ATTEMPT_NOT_FOUND', `no attempt has id ${ref.attemptId}`);
    throw new GafferError('STALE_LEASE', `attempt ${ref.attemptId} no longer holds its job (it is ${String(row.state)})`, {
      attemptId: ref.attemptId,
      state: row.state,
    });
  }

  async complete(params: CompleteParams): Promise<SettleResult> {
    return this.db.write(() => {
      const now = this.clock.now();
      const { jobId, workerId } = this.currentAttempt(params, now);
      const job = this.mustGetJob(jobId);
      if (job.verifies !== null && !isVerdict(params.result)) {
        // A verifier that answers something other than a verdict failed its attempt.
        const error: JobError = {
          code: 'BAD_VERDICT',
          message: 'a verifier must return { "valid": true|false, "reason"?: string }',
          attemptId: params.attemptId,
        };
        this.db.run(
          `UPDATE attempts SET state = 'failed', finished_at = ?, error = ? WHERE id = ? AND lease = ? AND state IN ${LIVE}`,
          now, J(error), params.attemptId, params.lease,
        );
        const changes = this.afterFailure(jobId, error, true, now, workerId);
        return { job: this.mustGetJob(jobId), changes };
      }
      if (job.verify?.mode === 'queue' && params.verificationJob === undefined) {
        throw new GafferError('INVALID_STATE', `job ${jobId} needs a verifier queue's defaults to send its result for verification`);
      }
      const hash = resultHash(params.result);
      const keepResult = job.replicas > 1 || job.verify !== null ? J(params.result) : null;
      const row = this.db.get(
        `UPDATE attempts SET state = 'completed', finished_at = ?, result_hash = ?, result = ?, trace = ?
         WHERE id = ? AND lease = ? AND state IN ${LIVE} RETURNING leased_at`,
        now, hash, keepResult, params.trace ? J(params.trace) : null, params.attemptId, params.lease,
      );
      assert(row, 'the current lease completes its attempt exactly once');
      let changes: Change[];
      if (job.verify?.mode === 'queue') {
        changes = this.sendToVerifier(job, params.attemptId, workerId, params.result, params.verificationJob!, now);
      } else if (job.replicas === 1 || job.solo) {
        const accepted = this.succeedReturning(jobId, J(params.result), now, job.live > 1);
        changes = accepted.changes;
        if (job.pinnedWorkerId !== null) this.gradeCheck(jobId, hash, now - Number(row.leased_at), now);
        if (job.verifies !== null) changes.push(...this.applyVerdict(job.verifies, params.result as unknown as VerdictResult, now));
        // Neither a check's grade nor a verdict changes this job's row: the one the update returned is current.
        else return { job: accepted.job, changes };
      } else {
        this.db.run('UPDATE jobs SET live = live - 1, updated_at = ? WHERE id = ?', now, jobId);
        changes = this.tally(jobId, now);
      }
      return { job: this.mustGetJob(jobId), changes };
    });
  }

  /** Accepts a result: the job succeeds (once: the guard on state makes it so) and its children move. */
  /** `othersLive` false: the caller knows no other attempt of the job is live, so none needs stopping. */
  private succeed(jobId: string, resultJson: string, now: number, othersLive = true): Change[] {
    return this.succeedReturning(jobId, resultJson, now, othersLive).changes;
  }

  /** succeed, with the job's row as the update left it. */
  private succeedReturning(jobId: string, resultJson: string, now: number, othersLive = true): { job: Job; changes: Change[] } {
    const cancelledAttempts = othersLive ? this.stopLiveAttempts(jobId, now) : [];
    const row = this.db.get(
      `UPDATE jobs SET state = 'succeeded', result = ?, error = NULL, want = 0, live = 0, finished_at = ?, updated_at = ?
       WHERE id = ? AND state IN ('running', 'queued', 'verifying') RETURNING *`,
      resultJson, now, now, jobId,
    );
    assert(row, 'at most one result is accepted per job');
    return { job: jobFromRow(row), changes: [{ jobId, state: 'succeeded', cancelledAttempts }, ...this.releaseChildren(jobId, now)] };
  }

  /** A result of a job with a verifier queue: the job waits in `verifying` while a verification job checks it. */
  private sendToVerifier(
    job: Job,
    attemptId: string,
    workerId: string,
    result: Json,
    build: NonNullable<CompleteParams['verificationJob']>,
    now: number,
  ): Change[] {
    assert(job.verify?.mode === 'queue', 'only a job with a verifier queue is sent to one');
    this.db.run(
      `UPDATE jobs SET live = live - 1, want = 0, state = 'verifying', updated_at = ? WHERE id = ?`,
      now, job.id,
    );
    let spec: NewJob;
    try {
      spec = build(job.verify.queue, verifierPayload(job, attemptId, workerId, result), job.priority);
    } catch (err) {
      if (!(err instanceof GafferError)) throw err;
      // Nothing can verify this result (e.g. payload and result together are too large): the job fails, said plainly.
      const message = clipMessage(`could not make the verification job: ${err.message}`);
      return this.endJob(job.id, 'failed', { code: 'VERIFICATION_FAILED', message, attemptId });
    }
    assert(spec.replicas === 1 && spec.verify === null && !spec.adaptive, 'a verification job runs once, unverified');
    const { job: v } = this.submitOne({ ...spec, idempotencyKey: null, dependsOn: [] }, { verifies: { jobId: job.id, attemptId } });
    return [
      { jobId: job.id, state: 'verifying', cancelledAttempts: [] },
      { jobId: v.id, state: v.state, cancelledAttempts: [] },
    ];
  }

  /** A verifier's verdict on a result: the job succeeds with it, or runs again elsewhere. */
  private applyVerdict(verifies: { jobId: string; attemptId: string }, verdict: VerdictResult, now: number): Change[] {
    const original = this.db.get(`SELECT id FROM jobs WHERE id = ? AND state = 'verifying'`, verifies.jobId);
    if (!original) return [];
    const attempt = this.db.get(`SELECT worker_id, result FROM attempts WHERE id = ? AND state = 'completed'`, verifies.attemptId);
    assert(attempt, 'a result under verification stays completed until its verdict');
    const workerId = String(attempt.worker_id);
    if (verdict.valid) {
      return [...this.succeed(verifies.jobId, String(attempt.result), now, false), ...this.judgeWorker(workerId, 'valid', now)];
    }
    this.db.run(`UPDATE attempts SET state = 'rejected' WHERE id = ?`, verifies.attemptId);
    const changes = this.judgeWorker(workerId, 'invalid', now);
    const error: JobError = {
      code: 'RESULT_REJECTED',
      message: clipMessage(`the verifier rejected the result of attempt ${verifies.attemptId}: ${verdict.reason ?? 'no reason given'}`),
      attemptId: verifies.attemptId,
    };
    const job = this.db.get(
      `UPDATE jobs SET failures = failures + 1, error = ?, updated_at = ? WHERE id = ? RETURNING failures, max_attempts`,
      J(error), now, verifies.jobId,
    );
    assert(job, 'the verified job exists');
    if (Number(job.failures) >= Number(job.max_attempts)) return [...changes, ...this.endJob(verifies.jobId, 'failed', error)];
    this.db.run(`UPDATE jobs SET state = 'queued', want = 1, run_at = ?, updated_at = ? WHERE id = ?`, now, now, verifies.jobId);
    return [...changes, { jobId: verifies.jobId, state: 'queued', cancelledAttempts: [] }];
  }

  /**
   * Decides a replicated job from its completed attempts (this round's
   * ballots). Trace verification first rejects the attempts whose resource
   * use stands apart, once every replica is in; the quorum is then counted
   * over the rest.
   */
  private tally(jobId: string, now: number): Change[] {
    const job = this.mustGetJob(jobId);
    const extra = Number(this.db.get('SELECT extra_replicas FROM jobs WHERE id = ?', jobId)?.extra_replicas ?? 0);
    let done = this.db.all(
      `SELECT id, worker_id, result, result_hash, trace FROM attempts WHERE job_id = ? AND state = 'completed'
       ORDER BY finished_at, id`,
      jobId,
    );
    const pending = job.live + job.want;
    const changes: Change[] = [];
    if (job.verify?.mode === 'trace') {
      if (pending > 0) return this.settleLiveCount(jobId, now);
      const withTraces = done.map((r) => ({ row: r, trace: r.trace === null ? null : (JSON.parse(String(r.trace)) as Trace) }));
      const split = splitByTrace(withTraces, job.verify.tolerance, this.trust.traceWaypoints);
      if (split.kind === 'tie') {
        this.db.run(`UPDATE attempts SET state = 'rejected' WHERE job_id = ? AND state = 'completed'`, jobId);
        return this.endJob(jobId, 'failed', { code: 'NO_QUORUM', message: clipMessage(`resource traces: ${split.reason}`) });
      }
      for (const { row } of split.rejected) {
        this.db.run(`UPDATE attempts SET state = 'rejected' WHERE id = ?`, String(row.id));
        changes.push(...this.judgeWorker(String(row.worker_id), 'invalid', now));
      }
      done = split.accepted.map((x) => x.row);
    }
    const outcome = decideQuorum({
      ballots: done.map((r) => ({ attemptId: String(r.id), workerId: String(r.worker_id), hash: String(r.result_hash) })),
      quorum: job.quorum,
      pending,
      extraReplicasUsed: extra,
      extraReplicasMax: this.trust.extraReplicasMax,
    });
    if (outcome.kind === 'accept') {
      const winner = done.find((r) => r.result_hash === outcome.hash)!;
      const workerOf = new Map(done.map((r) => [String(r.id), String(r.worker_id)]));
      for (const id of outcome.invalid) this.db.run(`UPDATE attempts SET state = 'rejected' WHERE id = ?`, id);
      changes.push(...this.succeed(jobId, String(winner.result), now));
      for (const id of outcome.valid) changes.push(...this.judgeWorker(workerOf.get(id)!, 'valid', now));
      for (const id of outcome.invalid) changes.push(...this.judgeWorker(workerOf.get(id)!, 'invalid', now));
      return changes;
    }
    if (outcome.kind === 'add-replica') {
      this.db.run(
        `UPDATE jobs SET want = want + 1, extra_replicas = extra_replicas + 1,
           state = CASE WHEN live > 0 THEN 'running' ELSE 'queued' END, updated_at = ?
         WHERE id = ?`,
        now, jobId,
      );
      return job.live > 0 ? changes : [...changes, { jobId, state: 'queued', cancelledAttempts: [] }];
    }
    if (outcome.kind === 'no-quorum') {
      this.db.run(`UPDATE attempts SET state = 'rejected' WHERE job_id = ? AND state = 'completed'`, jobId);
      return [...changes, ...this.endJob(jobId, 'failed', { code: 'NO_QUORUM', message: clipMessage(outcome.reason) })];
    }
    return [...changes, ...this.settleLiveCount(jobId, now)];
  }

  /** After an attempt ended: a job with no live attempt left goes back to queued. */
  private settleLiveCount(jobId: string, now: number): Change[] {
    const row = this.db.get(
      `UPDATE jobs SET state = 'queued', updated_at = ? WHERE id = ? AND state = 'running' AND live = 0 RETURNING id`,
      now, jobId,
    );
    return row ? [{ jobId, state: 'queued', cancelledAttempts: [] }] : [];
  }

  async fail(params: FailParams): Promise<SettleResult> {
    return this.db.write(() => {
      const now = this.clock.now();
      const { jobId, workerId } = this.currentAttempt(params, now);
      const error = { ...params.error, attemptId: params.attemptId, message: clipMessage(params.error.message) };
      const n = this.db.run(
        `UPDATE attempts SET state = 'failed', finished_at = ?, error = ? WHERE id = ? AND lease = ? AND state IN ${LIVE}`,
        now, J(error), params.attemptId, params.lease,
      );
      assert(n === 1, 'the current lease fails its attempt exactly once');
      const changes = this.afterFailure(jobId, error, params.retryable, now, workerId);
      return { job: this.mustGetJob(jobId), changes };
    });
  }

  /**
   * An attempt failed, timed out or was lost: retry with backoff while the
   * budget lasts, else fail the job. One replica's non-retryable error does
   * not end a replicated job (another worker runs that replica: a single
   * untrusted worker must not be able to fail a job); the retry budget still
   * bounds it. A solo round that failed is rerun fully replicated.
   */
  private afterFailure(jobId: string, error: JobError, retryable: boolean, now: number, workerId: string): Change[] {
    const row = this.db.get(
      `UPDATE jobs SET live = live - 1, failures = failures + ?, error = ?, updated_at = ? WHERE id = ? RETURNING *`,
      countsAsFailure(error) ? 1 : 0, J(error), now, jobId,
    );
    assert(row, 'a failed attempt belongs to a job');
    if (error.code === 'TIMEOUT' || error.code === 'LEASE_LOST') {
      this.db.run('UPDATE workers SET timed_out_count = timed_out_count + 1 WHERE id = ?', workerId);
    }
    const job = jobFromRow(row);
    const giveUp = job.failures >= job.maxAttempts || (!retryable && job.replicas === 1) || job.pinnedWorkerId !== null;
    if (giveUp) return this.endJob(jobId, 'failed', error);
    const delayMs = retryDelayMs(job, error, this.random);
    this.db.run(
      'UPDATE jobs SET want = CASE WHEN solo = 1 THEN replicas ELSE want + 1 END, solo = 0, run_at = ? WHERE id = ?',
      now + delayMs, jobId,
    );
    return this.settleLiveCount(jobId, now);
  }

  // ---- Sweepers ----

  async expireAttempts(params: { limit: number }): Promise<SweepResult> {
    return this.db.write(() => {
      const now = this.clock.now();
      const limit = Math.min(params.limit, LIMITS.sweepBatchMaxRows);
      const out: SweepResult = { changes: [], endedAttempts: [] };
      const lost = this.db.all(
        `SELECT id, job_id, worker_id, heartbeat_timeout_ms FROM attempts WHERE state IN ${LIVE} AND lease_expires_at < ?
         ORDER BY lease_expires_at LIMIT ?`,
        now, limit,
      );
      for (const r of lost) {
        this.endAttempt(r, 'lost', 'LEASE_LOST', 'no heartbeat within the heartbeat timeout', now, out);
        // A worker silent for a whole heartbeat timeout is gone until it heartbeats again: give it nothing new.
        this.db.run(
          'UPDATE workers SET connected = 0 WHERE id = ? AND last_seen_at < ?',
          String(r.worker_id), now - Number(r.heartbeat_timeout_ms),
        );
      }
      const hung = this.db.all(
        `SELECT id, job_id, worker_id FROM attempts WHERE state IN ${LIVE} AND timeout_at <= ? ORDER BY timeout_at LIMIT ?`,
        now, limit,
      );
      for (const r of hung) this.endAttempt(r, 'failed', 'TIMEOUT', 'the attempt ran past its timeoutMs', now, out);
      return out;
    }, false);
  }

  private endAttempt(r: Row, state: 'lost' | 'failed', code: 'LEASE_LOST' | 'TIMEOUT', message: string, now: number, out: SweepResult): void {
    const attemptId = String(r.id);
    const error: JobError = { code, message, attemptId };
    const n = this.db.run(
      `UPDATE attempts SET state = ?, finished_at = ?, error = ? WHERE id = ? AND state IN ${LIVE}`,
      state, now, J(error), attemptId,
    );
    if (n === 0) return;
    out.endedAttempts.push({ attemptId, workerId: String(r.worker_id), reason: code });
    out.changes.push(...this.afterFailure(String(r.job_id), error, true, now, String(r.worker_id)));
  }

  async expireDeadlines(params: { limit: number }): Promise<SweepResult> {
    return this.db.write(() => {
      const now = this.clock.now();
      const rows = this.db.all(
        `SELECT id FROM jobs INDEXED BY jobs_deadline WHERE state IN ('waiting', 'queued') AND has_deadline = 1 AND deadline_at <= ?
         ORDER BY deadline_at LIMIT ?`,
        now, Math.min(params.limit, LIMITS.sweepBatchMaxRows),
      );
      const changes: Change[] = [];
      for (const r of rows) {
        const error: JobError = { code: 'DEADLINE_EXCEEDED', message: 'the job did not start before its deadline' };
        changes.push(...this.endJob(String(r.id), 'expired', error));
      }
      return { changes, endedAttempts: [] };
    }, false);
  }

  async nextRunAt(): Promise<number | null> {
    const row = this.db.get('SELECT min(run_at) AS t FROM jobs WHERE want > 0 AND run_at > ?', this.clock.now());
    return row?.t === null || row?.t === undefined ? null : Number(row.t);
  }

  async queueCounts(): Promise<QueueCounts[]> {
    const byQueue = new Map<string, QueueCounts>();
    for (const r of this.db.all('SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state ORDER BY queue')) {
      const q = String(r.queue);
      let entry = byQueue.get(q);
      if (!entry) {
        entry = { queue: q, counts: emptyCounts() };
        byQueue.set(q, entry);
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
        SELECT finished_at - leased_at AS ms, finished_at, state IN ('completed', 'rejected') AS ok
        FROM attempts
        WHERE queue = ? AND finished_at >= ? AND state IN ('completed', 'rejected', 'failed', 'lost')
        ORDER BY finished_at DESC LIMIT ?
      ), ranked AS (
        SELECT ms, ok, finished_at, row_number() OVER (PARTITION BY ok ORDER BY ms) AS rn, sum(ok) OVER () AS n_ok
        FROM recent
      )
      SELECT count(*) AS n, coalesce(sum(ok), 0) AS completed, avg(CASE WHEN ok THEN ms END) AS mean_ms,
        min(CASE WHEN ok AND rn * 100 >= 95 * n_ok THEN ms END) AS p95_ms, min(finished_at) AS oldest
      FROM ranked`;
    return [...new Set(params.queues)].map((queue) => {
      const r = this.db.get(sql, queue, params.sinceMs, sample);
      const n = Number(r?.n ?? 0);
      const completed = Number(r?.completed ?? 0);
      const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
      return {
        queue,
        completed,
        failed: n - completed,
        runTimeMeanMs: num(r?.mean_ms),
        runTimeP95Ms: num(r?.p95_ms),
        sampledSinceMs: n >= sample ? Number(r?.oldest) : params.sinceMs,
      };
    });
  }

  async ping(): Promise<void> {
    this.db.get('SELECT 1 AS ok');
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
