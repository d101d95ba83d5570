// The Store, once: every method a transaction of the engine's lifecycle
// decisions, run on a backend's executor. A backend subclasses EngineStore
// with its executor, its dialect, and the named queries it measured faster
// than the general ones; it may put a fast path in front of a method, which
// the conformance suite checks ends in the state the general path would.
import type { Clock, Random } from '../../types/clock.ts';
import { assert } from '../../types/errors.ts';
import { idFactory, unguessableId } from '../../types/ids.ts';
import { LIMITS } from '../../types/limits.ts';
import type { Assignment, Attempt, Job, NewJob, Worker, WorkerCheck, WorkerSpec } from '../../types/model.ts';
import { trustPolicy, type TrustPolicy } from '../../trust/index.ts';
import type {
  CoordinatorBeat,
  Change,
  ClaimParams,
  CompleteParams,
  DeleteFinishedParams,
  DeleteFinishedResult,
  DuePublishesParams,
  PublishOrder,
  RecordPublishParams,
  FailParams,
  HeartbeatParams,
  HeartbeatResult,
  JobPage,
  LeaseRef,
  ListPipelinesParams,
  PipelinePage,
  SubmitPipelineResult,
  ListJobsParams,
  ListWorkersParams,
  QuarantineParams,
  QueueArrivals,
  QueueCounts,
  QueueEdges,
  QueueRunStats,
  QueueState,
  ReadHistoryParams,
  HistoryRollUpParams,
  HistoryRollUpResult,
  SetQueuePausedParams,
  SetWorkerQueuePausedParams,
  TopUpBacklogParams,
  TopUpBacklogResult,
  SettleResult,
  SpeculateParams,
  SpeculateResult,
  StartCheckParams,
  Store,
  StoreCapabilities,
  SubmitResult,
  SweepResult,
} from '../store.ts';
import { claim, type CandidatePage, type WriteLeases } from './claim.ts';
import { candidatePageByQueue, writeLeasesOneByOne } from './claim-general.ts';
import { cancelJob, insertJobsOneByOne, retryJob, submitJobs, type InsertJobs } from './jobs.ts';
import * as reads from './reads.ts';
import * as pipelines from './pipelines.ts';
import type { NewPipeline, PipelineDetail } from '../../types/pipeline.ts';
import { completeAttempt, failAttempt } from './settle.ts';
import type { Context, Dialect, Exec, Tx, WriteOptions } from './sql.ts';
import { expireAttempts, expireDeadlines } from './sweep.ts';
import { speculate } from './speculate.ts';
import { setQuarantine, startCheck } from './trust.ts';
import * as workers from './workers.ts';
import * as queues from './queues.ts';
import { checkBacklogTarget, countQueuedFillers, topUpBacklog } from './backlog.ts';
import * as history from './history.ts';
import * as retention from './retention.ts';
import * as publish from './publish.ts';
import * as coordinators from './coordinators.ts';
import { MINUTE_MS, type HistoryPoint, type TrustPoint } from '../../types/history.ts';

/** How a backend runs SQL: autocommit reads, and write transactions. */
export interface Executor {
  read<T>(fn: (x: Exec) => Promise<T>): Promise<T>;
  write<T>(fn: (tx: Tx) => Promise<T>, options: WriteOptions): Promise<T>;
}

/** The queries a backend may supply in place of the engine's general ones. */
export interface NamedQueries {
  insertJobs: InsertJobs;
  candidatePage: CandidatePage;
  writeLeases: WriteLeases;
}

export interface EngineOptions {
  clock: Clock;
  random: Random;
  /** A worker not seen for this long is shown offline. */
  workerOfflineAfterMs?: number;
  /** Quarantine thresholds, adaptive replication, extra replicas (TRUST_DEFAULTS). */
  trust?: Partial<TrustPolicy>;
  /**
   * False: the backend's fast paths and named queries are left out and only
   * the engine's general path runs. For the suite that checks they agree.
   */
  fastPaths?: boolean;
}

export const WORKER_OFFLINE_AFTER_MS_DEFAULT = 30_000;

const DURABLE: WriteOptions = { durable: true };
const LIGHT: WriteOptions = { durable: false };

export abstract class EngineStore implements Store {
  abstract readonly kind: 'sqlite' | 'postgres';
  abstract readonly capabilities: StoreCapabilities;
  protected readonly ctx: Context;
  protected readonly queries: NamedQueries;
  protected readonly fastPaths: boolean;
  private readonly x: Executor;

  protected constructor(x: Executor, d: Dialect, options: EngineOptions, queries: Partial<NamedQueries>) {
    this.x = x;
    this.fastPaths = options.fastPaths ?? true;
    this.ctx = {
      d,
      clock: options.clock,
      random: options.random,
      newId: idFactory(options.clock, options.random),
      trust: trustPolicy(options.trust),
      offlineAfterMs: options.workerOfflineAfterMs ?? WORKER_OFFLINE_AFTER_MS_DEFAULT,
    };
    const general: NamedQueries = { insertJobs: insertJobsOneByOne, candidatePage: candidatePageByQueue(this.ctx), writeLeases: writeLeasesOneByOne(this.ctx) };
    this.queries = this.fastPaths ? { ...general, ...queries } : general;
  }

  protected read<T>(fn: (x: Exec) => Promise<T>): Promise<T> {
    return this.x.read(fn);
  }

  protected write<T>(fn: (tx: Tx) => Promise<T>, options: WriteOptions = DURABLE): Promise<T> {
    return this.x.write(fn, options);
  }

  // ---- Jobs ----

  submit(params: { jobs: readonly NewJob[] }): Promise<SubmitResult[]> {
    assert(params.jobs.length <= LIMITS.submitBatchMaxJobs, 'submit batch within its bound');
    if (params.jobs.length === 0) return Promise.resolve([]);
    return this.write((tx) => submitJobs(this.ctx, tx, params.jobs, this.queries.insertJobs));
  }

  getJob(params: { id: string }): Promise<Job | null> {
    return this.read((x) => reads.getJob(x, params.id));
  }

  listJobs(params: ListJobsParams): Promise<JobPage> {
    return this.read((x) => reads.listJobs(this.ctx, x, params));
  }

  listAttempts(params: { jobId: string }): Promise<Attempt[]> {
    return this.read((x) => reads.listAttempts(x, params.jobId));
  }

  listLiveAttempts(params: { workerId: string }): Promise<Attempt[]> {
    return this.read((x) => reads.listLiveAttempts(x, params.workerId));
  }

  cancel(params: { jobId: string; reason?: string }): Promise<SettleResult> {
    return this.write((tx) => cancelJob(this.ctx, tx, params.jobId, params.reason));
  }

  retry(params: { jobId: string }): Promise<SettleResult> {
    return this.write((tx) => retryJob(this.ctx, tx, params.jobId));
  }

  // ---- Pipelines ----

  async submitPipeline(params: { pipeline: NewPipeline }): Promise<SubmitPipelineResult> {
    const { id, created, jobs } = await this.write((tx) => pipelines.submitPipeline(this.ctx, tx, params.pipeline, this.queries.insertJobs));
    const pipeline = await this.getPipeline({ id });
    assert(pipeline, 'an instance just submitted can be read');
    return { pipeline, created, jobs };
  }

  getPipeline(params: { id: string }): Promise<PipelineDetail | null> {
    return this.read((x) => pipelines.getPipeline(x, params.id));
  }

  listPipelines(params: ListPipelinesParams): Promise<PipelinePage> {
    return this.read((x) => pipelines.listPipelines(x, params));
  }

  // ---- Workers ----

  async upsertWorker(params: { spec: WorkerSpec; operator?: string | null }): Promise<Worker> {
    const id = params.spec.id ?? unguessableId(this.ctx.clock, this.ctx.random);
    const operator = params.operator ?? null;
    await this.write((tx) => workers.upsertWorker(this.ctx, tx, params.spec, id, operator), { durable: false, single: true });
    return this.read((x) => workers.mustGetWorker(this.ctx, x, id));
  }

  getWorker(params: { id: string }): Promise<Worker | null> {
    return this.read((x) => workers.getWorker(this.ctx, x, params.id));
  }

  listWorkers(params: ListWorkersParams = {}): Promise<Worker[]> {
    return this.read((x) => workers.listWorkers(this.ctx, x, params));
  }

  async disconnectWorker(params: { workerId: string }): Promise<void> {
    await this.write((tx) => tx.run('UPDATE workers SET connected = 0 WHERE id = $1', [params.workerId]), { durable: false, single: true });
  }

  async setWorkerDraining(params: { workerId: string; draining: boolean }): Promise<Worker> {
    await this.write((tx) => workers.setDraining(tx, params.workerId, params.draining), { durable: true, single: true });
    return this.read((x) => workers.mustGetWorker(this.ctx, x, params.workerId));
  }

  async setWorkerQueuePaused(params: SetWorkerQueuePausedParams): Promise<Worker> {
    await this.write((tx) => workers.setQueuePaused(this.ctx, tx, params));
    return this.read((x) => workers.mustGetWorker(this.ctx, x, params.workerId));
  }

  async updateWorkerKeys(params: { workerId: string; hold?: readonly string[]; release?: readonly string[] }): Promise<Worker> {
    await this.write((tx) => workers.updateKeys(this.ctx, tx, params.workerId, params.hold ?? [], params.release ?? []));
    return this.read((x) => workers.mustGetWorker(this.ctx, x, params.workerId));
  }

  async setWorkerQuarantine(params: QuarantineParams): Promise<{ worker: Worker; changes: Change[] }> {
    const changes = await this.write((tx) => setQuarantine(this.ctx, tx, params, this.queries.insertJobs));
    return { worker: await this.read((x) => workers.mustGetWorker(this.ctx, x, params.workerId)), changes };
  }

  startCheck(params: StartCheckParams): Promise<{ check: WorkerCheck; created: boolean }> {
    return this.write((tx) => startCheck(this.ctx, tx, params, this.queries.insertJobs));
  }

  // ---- Claims and reports ----

  claim(params: ClaimParams): Promise<Assignment[]> {
    if (params.workerIds.length === 0 || params.maxJobs <= 0) return Promise.resolve([]);
    return this.write((tx) => claim(this.ctx, tx, params, this.queries), LIGHT);
  }

  heartbeat(params: HeartbeatParams): Promise<HeartbeatResult> {
    return this.write((tx) => workers.heartbeat(this.ctx, tx, params), LIGHT);
  }

  progress(params: LeaseRef & { progress: unknown }): Promise<void> {
    return this.write((tx) => workers.progress(this.ctx, tx, params), { durable: false, single: true });
  }

  complete(params: CompleteParams): Promise<SettleResult> {
    return this.write((tx) => completeAttempt(this.ctx, tx, params, { insertJobs: this.queries.insertJobs }));
  }

  fail(params: FailParams): Promise<SettleResult> {
    return this.write((tx) => failAttempt(this.ctx, tx, params));
  }

  duePublishes(params: DuePublishesParams): Promise<PublishOrder[]> {
    return this.write((tx) => publish.duePublishes(this.ctx, tx, params));
  }

  recordPublish(params: RecordPublishParams): Promise<Job> {
    return this.write((tx) => publish.recordPublish(this.ctx, tx, params));
  }

  // ---- Sweepers and reads ----

  expireAttempts(params: { limit: number }): Promise<SweepResult> {
    return this.write((tx) => expireAttempts(this.ctx, tx, params.limit), LIGHT);
  }

  expireDeadlines(params: { limit: number }): Promise<SweepResult> {
    return this.write((tx) => expireDeadlines(this.ctx, tx, params.limit), LIGHT);
  }

  speculate(params: SpeculateParams): Promise<SpeculateResult> {
    return this.write((tx) => speculate(this.ctx, tx, params), LIGHT);
  }

  nextRunAt(params: { afterMs?: number } = {}): Promise<number | null> {
    return this.read((x) => reads.nextRunAt(this.ctx, x, params.afterMs));
  }

  queueCounts(): Promise<QueueCounts[]> {
    return this.read((x) => reads.queueCounts(x));
  }

  queueStats(params: { queues: readonly string[]; sinceMs: number; sampleMaxRows: number }): Promise<QueueRunStats[]> {
    return this.read((x) => reads.queueStats(x, params));
  }

  oldestReady(params: { queues: readonly string[] }): Promise<{ queue: string; readyAt: number | null }[]> {
    return this.read((x) => reads.oldestReady(x, params.queues, this.ctx.clock.now()));
  }

  queueArrivals(params: { queues: readonly string[]; sinceMs: number; sampleMaxRows: number }): Promise<QueueArrivals[]> {
    return this.read((x) => reads.queueArrivals(x, params));
  }

  queueEdges(params: { sinceMs: number; sampleMaxJobs: number; maxRows: number }): Promise<QueueEdges> {
    return this.read((x) => reads.queueEdges(x, params));
  }

  // ---- Queues and history ----

  setQueuePaused(params: SetQueuePausedParams): Promise<QueueState> {
    return this.write((tx) => queues.setQueuePaused(this.ctx, tx, params));
  }

  listQueueStates(): Promise<QueueState[]> {
    return this.read((x) => queues.listQueueStates(x));
  }

  async topUpBacklog(params: TopUpBacklogParams): Promise<TopUpBacklogResult> {
    checkBacklogTarget(params.target);
    // A backlog at its target, as a plain read finds it, needs no write (the usual case on every beat).
    const queued = await this.read((x) => countQueuedFillers(x, params.queue));
    if (queued === params.target) return { queue: params.queue, queued, created: [], changes: [] };
    // Filler jobs lost in a power cut are made again by the next top-up.
    return this.write((tx) => topUpBacklog(this.ctx, tx, params, this.queries.insertJobs), LIGHT);
  }

  async addHistory(params: { points: readonly HistoryPoint[] }): Promise<void> {
    if (params.points.length === 0) return;
    await this.write((tx) => history.addPoints(tx, MINUTE_MS, params.points));
  }

  readHistory(params: ReadHistoryParams): Promise<HistoryPoint[]> {
    return this.read((x) => history.readHistory(x, params));
  }

  readTrustHistory(params: ReadHistoryParams): Promise<TrustPoint[]> {
    return this.read((x) => history.readTrustHistory(x, params));
  }

  rollUpHistory(params: HistoryRollUpParams): Promise<HistoryRollUpResult> {
    return this.write((tx) => history.rollUpHistory(this.ctx, tx, params), LIGHT);
  }

  // ---- Retention ----

  finishedQueues(params: { after?: string; limit: number }): Promise<string[]> {
    return this.read((x) => retention.finishedQueues(x, params.after ?? '', params.limit));
  }

  async deleteFinishedJobs(params: DeleteFinishedParams): Promise<DeleteFinishedResult> {
    const cut = params.limit > 0 ? await this.read((x) => retention.cutoff(x, params)) : null;
    if (cut === null) return { deletedJobIds: [] };
    return this.write((tx) => retention.deleteFinishedJobs(this.ctx, tx, params, cut), LIGHT);
  }

  pruneWorkers(params: { seenBeforeMs: number; limit: number }): Promise<string[]> {
    return this.write((tx) => retention.pruneWorkers(this.ctx, tx, params.seenBeforeMs, params.limit), LIGHT);
  }

  beatCoordinator(params: { id: string; weight: number; aliveWithinMs: number }): Promise<CoordinatorBeat[]> {
    return this.write((tx) => coordinators.beatCoordinator(this.ctx, tx, params), LIGHT);
  }

  leaveCoordinator(params: { id: string }): Promise<void> {
    return this.write((tx) => coordinators.leaveCoordinator(tx, params.id), LIGHT);
  }

  queuesOf(params: { ids: readonly string[] }): Promise<{ id: string; queue: string }[]> {
    return this.read((x) => history.queuesOf(this.ctx, x, params.ids));
  }

  async ping(): Promise<void> {
    await this.read((x) => x.get('SELECT 1 AS ok'));
  }

  abstract close(): Promise<void>;
}
