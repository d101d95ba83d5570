// The coordinator core: it wires the store, the scheduler, the dispatcher
// (dispatcher.ts) and the sweeper (sweeper.ts) on an injected clock, and owns
// what clients and workers see: sessions, result waits, events, revocations.
// Workers attach through a WorkerLink (in-process here; the network layer
// implements the same link over a WebSocket).
//
// Several coordinators may share one PostgreSQL store. Each pushes work only to
// the workers attached to it; the store is the only thing they share:
// - Wake-ups: a submit or requeue through another coordinator reaches this one
//   through `store.onWake` (LISTEN/NOTIFY), which kicks the dispatcher. A
//   notification sent while nobody listened is lost, so with a shared store the
//   coordinator also polls every pollIntervalMs: it kicks the dispatcher and
//   re-reads the jobs its result waits are waiting for (a job that ends through
//   another coordinator raises no event here).
// - Sweepers run on every coordinator at once (see Sweeper.sweep() for why that is safe).
// - A store that stops answering makes the coordinator not ready until it
//   answers again (store-guard.ts); nothing it does crashes the process.
import { EventEmitter } from 'node:events';
import { place as defaultPlace } from '../scheduler/index.ts';
import type {
  Change,
  ListWorkersParams,
  OutputRef,
  PublishOrder,
  QueueCounts,
  QueueState,
  ReadHistoryParams,
  Store,
  SubmitPipelineResult,
  SubmitResult,
  SweepResult,
  TopUpBacklogResult,
} from '../store/store.ts';
import type { PipelineDetail } from '../types/pipeline.ts';
import { expandPipeline, type PipelineDefinition } from './pipelines.ts';
import { HintsSource } from './hints.ts';
import type { HistoryPoint, TrustPoint } from '../types/history.ts';
import { systemRandom, type Clock, type Random, type TimerHandle } from '../types/clock.ts';
import { GafferError, isGafferError } from '../types/errors.ts';
import { COORDINATOR_DEFAULTS, LIMITS, RETENTION_DEFAULTS, SCHEDULING_DEFAULTS } from '../types/limits.ts';
import type { Assignment, Job, Json, NewJob, PlaceFn, RetentionPolicy, Worker } from '../types/model.ts';
import { isTerminalJobState, type JobState } from '../types/states.ts';
import { speculationOf, type QueueConfig, type SpeculationPolicy } from './validate.ts';
import { resultHash } from '../store/rules.ts';
import { backlogJob, checkText, normalizeJob, normalizeJobs, normalizeWorker } from './validate.ts';
import { guardStore, StoreHealth } from './store-guard.ts';
import { Dispatcher, freesCapacity, groupByWorker } from './dispatcher.ts';
import { Sweeper } from './sweeper.ts';
import type { RetentionSweepResult } from './retention.ts';
import { MetricsHooks, timeStore } from './metrics-hooks.ts';
import { HistoryRecorder } from './history.ts';
import { BacklogKeeper, type Backlog } from './backlog.ts';
import { queueNameSchema } from '../types/schemas.ts';
import { PublishRelay, type PublishRelayOptions } from './publishing.ts';
import { WorkerSession } from './session.ts';
import { OpenSlots } from './open-slots.ts';
import { Membership } from './shares.ts';
import { unguessableId } from '../types/ids.ts';

export { attemptRefsMax, WorkerSession } from './session.ts';

const QUEUE_NAME = new RegExp(queueNameSchema.pattern);

/** Most ids one log line lists. */
const LOG_MAX_IDS = 20;

/** How the coordinator reaches one connected worker. */
export interface WorkerLink {
  assign(assignments: Assignment[]): void;
  /** Stop these attempts: the job was cancelled, settled elsewhere, or the lease was lost. */
  revoke(attemptIds: string[], reason: string): void;
  /** Publish the output of this accepted attempt (docs/publishing.md); a link without it never holds outputs. */
  publish?(order: PublishOrder): void;
  /** Delete these outputs: they will never be published. */
  discard?(refs: OutputRef[]): void;
}

export interface CoordinatorOptions {
  store: Store;
  clock: Clock;
  place?: PlaceFn;
  sweepIntervalMs?: number;
  /**
   * How often to look for work and for ended jobs without being told (a lost
   * wake-up, a job ended through another coordinator); null: never. Default:
   * COORDINATOR_DEFAULTS.pollIntervalMs with a shared (PostgreSQL) store, null otherwise.
   */
  pollIntervalMs?: number | null;
  /** How often the queue history counted here is added into the store (COORDINATOR_DEFAULTS.historyFlushIntervalMs). */
  historyFlushIntervalMs?: number;
  /** False: count no queue history here (nothing is flushed; the stored history shows what others flushed). Default true. */
  history?: boolean;
  /** For the jitter of store probes; Math.random when left out. */
  random?: Random;
  /** Per queue: defaults for fields a submit leaves out, and a reliability challenge for new workers. */
  queues?: Record<string, QueueConfig>;
  /** Pipeline templates by name (`[pipelines.NAME]`), checked with checkTemplate. */
  pipelines?: Record<string, PipelineDefinition>;
  /** How long finished jobs of a queue without a retention of its own are kept (RETENTION_DEFAULTS when left out). */
  retention?: RetentionPolicy;
  /** How long an offline worker record that holds nothing is kept (COORDINATOR_DEFAULTS.workerRetentionMs). */
  workerRetentionMs?: number;
  /** How often the retention sweep runs (COORDINATOR_DEFAULTS.retentionSweepIntervalMs). */
  retentionSweepIntervalMs?: number;
  /** How often the backlog keeper tops up the queues with a backlog (COORDINATOR_DEFAULTS.backlogIntervalMs). */
  backlogIntervalMs?: number;
  /** Speculative backups across queues (`[speculation]`); each queue may override it (`[queues.NAME.speculation]`). On by default. */
  speculation?: SpeculationPolicy;
  log?: Log;
  /** How publishes are relayed to workers (PUBLISH_DEFAULTS when left out). */
  publishing?: Pick<PublishRelayOptions, 'checkIntervalMs' | 'resendAfterMs' | 'failedRetryBaseDelayMs' | 'failedRetryMaxDelayMs'>;
}

/** The logging the coordinator needs; pino's logger fits it. */
export interface Log {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const stderrLog: Log = {
  error: (obj, msg) => console.error(msg, obj),
  warn: (obj, msg) => console.warn(msg, obj),
};

import type { JobEvent, WorkerEvent } from './events.ts';
export type { JobEvent, WorkerEvent };

export class Coordinator {
  /** The store, with every failure classified (NOT_READY, STORE_BUSY) and watched by `health`. */
  readonly store: Store;
  readonly clock: Clock;
  /** Whether the store answers; while it does not, no dispatch or sweep runs and /readyz is 503. */
  readonly health: StoreHealth;
  readonly events = new EventEmitter<{ job: [JobEvent]; worker: [WorkerEvent] }>();
  /** Where /metrics attaches; every hook is an increment or an observation, none reads the store. */
  readonly metrics: MetricsHooks;
  /** The queue history this coordinator counts and flushes (history.ts). */
  readonly history: HistoryRecorder;
  /** What the scheduler learns from this coordinator's traffic: declared slots, run times, the pipeline's edges (hints.ts). */
  readonly hints: HintsSource;
  private readonly dispatcher: Dispatcher;
  /** @internal Which attached workers may have a free slot: claims are made for them (open-slots.ts). */
  readonly openSlots: OpenSlots;
  /** With a shared store: this coordinator's row among the coordinators and its share of the ready jobs (shares.ts). */
  readonly membership: Membership | null;
  private readonly sweeper: Sweeper;
  private readonly backlog: BacklogKeeper;
  /** Tells workers to publish accepted outputs and discard the others (publishing.ts). */
  readonly publishing: PublishRelay;
  private readonly queueDefaults: Record<string, QueueConfig>;
  /** The pipeline templates the config names. */
  readonly pipelineTemplates: Readonly<Record<string, PipelineDefinition>>;
  private readonly sessions = new Map<string, WorkerSession>();
  private readonly waiters = new Map<string, Set<(job: Job) => void>>();
  private polling: Promise<void> | null = null;
  /** Where the next poll of result waits starts, so that more waits than one poll reads all get their turn. */
  private pollCursor = 0;
  private unsubscribeWake: (() => void) | null = null;
  private inFlight = new Set<Promise<unknown>>();
  private running = false;
  private readonly log: Log;

  constructor(options: CoordinatorOptions) {
    this.clock = options.clock;
    this.log = options.log ?? stderrLog;
    this.health = new StoreHealth({
      store: options.store,
      clock: options.clock,
      ...(options.random ? { random: options.random } : {}),
      log: this.log,
      onRecovered: () => this.kick(),
    });
    this.metrics = new MetricsHooks(options.clock);
    this.store = guardStore(timeStore(options.store, this.metrics), this.health);
    this.queueDefaults = options.queues ?? {};
    this.pipelineTemplates = options.pipelines ?? {};
    this.hints = new HintsSource({ store: this.store, clock: this.clock });
    const available = (): boolean => this.health.available;
    const onError = (err: unknown, msg: string): void => this.logStoreError(err, msg);
    this.openSlots = new OpenSlots((id) => {
      const s = this.sessions.get(id);
      return s !== undefined && !s.draining && !s.detached;
    });
    this.membership = this.membershipOf(options, onError);
    this.dispatcher = new Dispatcher({
      store: this.store,
      place: options.place ?? ((input) => defaultPlace(input, SCHEDULING_DEFAULTS, this.hints.hints())),
      pool: this.openSlots,
      share: () => this.membership?.share() ?? null,
      deliver: (assignments) => this.deliver(assignments),
      available,
      clock: this.clock,
      afterLoop: (lastClaimAtMs) => this.sweeper.armWake(lastClaimAtMs),
      onError,
    });
    this.history = new HistoryRecorder({
      store: this.store,
      clock: this.clock,
      ...(options.historyFlushIntervalMs !== undefined ? { flushIntervalMs: options.historyFlushIntervalMs } : {}),
      enabled: options.history !== false,
      available,
      onError,
    });
    this.sweeper = new Sweeper({
      store: this.store,
      clock: this.clock,
      ...(options.sweepIntervalMs !== undefined ? { sweepIntervalMs: options.sweepIntervalMs } : {}),
      ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
      available,
      onSwept: (result) => this.applySweep(result),
      onWake: () => this.kick(),
      onPoll: () => this.poll(),
      ...(options.retentionSweepIntervalMs !== undefined ? { retentionSweepIntervalMs: options.retentionSweepIntervalMs } : {}),
      retention: {
        policyOf: (queue) => this.queueDefaults[queue]?.retention ?? options.retention ?? RETENTION_DEFAULTS,
        ...(options.workerRetentionMs !== undefined ? { workerRetentionMs: options.workerRetentionMs } : {}),
      },
      speculation: {
        settings: (queue) => speculationOf(this.queueDefaults[queue]?.speculation, options.speculation),
        ...(options.speculation?.shareMax !== undefined ? { shareMax: options.speculation.shareMax } : {}),
        ...(options.speculation?.intervalMs !== undefined ? { intervalMs: options.speculation.intervalMs } : {}),
      },
      // The backups asked for are placed by the next dispatch.
      onSpeculated: () => this.kick(),
      onError,
    });
    this.backlog = new BacklogKeeper({
      store: this.store,
      clock: this.clock,
      backlogs: backlogsOf(this.queueDefaults),
      ...(options.backlogIntervalMs !== undefined ? { intervalMs: options.backlogIntervalMs } : {}),
      available,
      onTopUp: (result) => {
        if (result.created.length > 0) this.afterSubmit(result.created.map((job) => ({ job, created: true })));
        if (result.changes.length > 0) this.applyChanges(result.changes, 'backlog over its target');
      },
      onError,
    });
    const attached = (s: WorkerSession | undefined): WorkerSession | undefined => (s && !s.detached ? s : undefined);
    this.publishing = new PublishRelay({
      store: this.store,
      clock: this.clock,
      targets: () => [...this.sessions.values()].filter((s) => !s.detached),
      target: (workerId) => attached(this.sessions.get(workerId)),
      available,
      onError,
      ...options.publishing,
    });
  }

  /** With a store several coordinators share: this one's row among them, weighted by its workers' slots (shares.ts). */
  private membershipOf(options: CoordinatorOptions, onError: (err: unknown, msg: string) => void): Membership | null {
    if (!options.store.capabilities.shared) return null;
    const id = unguessableId(this.clock, options.random ?? systemRandom());
    return new Membership({ store: this.store, clock: this.clock, id, weight: () => this.openSlots.slots, onChange: () => this.kick(), onError });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribeWake =
      this.store.onWake?.(() => {
        this.membership?.refreshSoon();
        this.kick();
      }) ?? null;
    this.membership?.start();
    this.sweeper.start();
    this.publishing.start();
    this.history.start();
    this.dispatcher.start();
    this.backlog.start();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribeWake?.();
    this.unsubscribeWake = null;
    this.health.stop();
    this.sweeper.stop();
    this.backlog.stop();
    this.publishing.stop();
    this.dispatcher.stop();
    await this.settled();
    await this.membership?.stop();
    // What was counted since the last flush goes to the store before it closes.
    await this.history.stop();
  }

  /** Resolves when the store answers a ping in time; NOT_READY otherwise. */
  async checkReady(): Promise<void> {
    if (!(await this.health.check())) throw new GafferError('NOT_READY', 'the store does not answer');
  }

  /** Resolves when no dispatch, sweep or report started so far is still running. */
  async settled(): Promise<void> {
    for (;;) {
      const pending = [...this.inFlight, this.dispatcher.current(), this.sweeper.current(), this.history.current(), this.backlog.current(), this.publishing.current()].filter(
        (p) => p !== null,
      );
      if (pending.length === 0) return;
      await Promise.allSettled(pending);
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const done = (): void => void this.inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  // ---- Clients ----

  async submit(spec: unknown): Promise<SubmitResult> {
    const queue = (spec as { queue?: unknown } | null)?.queue;
    const job = normalizeJob(spec, typeof queue === 'string' ? this.queueDefaults[queue] : undefined);
    const submitted = this.store.submit({ jobs: [job] });
    this.dispatcher.kickWithSubmit();
    const [result] = await submitted;
    this.afterSubmit([result!]);
    return result!;
  }

  async submitMany(specs: unknown): Promise<SubmitResult[]> {
    const jobs = normalizeJobs(specs, (q) => this.queueDefaults[q] ?? {});
    const submitted = this.store.submit({ jobs });
    this.dispatcher.kickWithSubmit();
    const results = await submitted;
    this.afterSubmit(results);
    return results;
  }

  private afterSubmit(results: SubmitResult[]): void {
    this.metrics.submitted(results);
    this.history.submitted(results);
    for (const r of results) if (r.created) this.emitJob(r.job.id, r.job.state);
    if (results.some((r) => r.created && r.job.state === 'queued')) this.kick();
  }

  /** Makes a pipeline instance from a template (POST /v1/pipelines); a key seen before answers its instance. */
  async submitPipeline(spec: unknown): Promise<SubmitPipelineResult> {
    const pipeline = expandPipeline(spec, this.pipelineTemplates, (q) => this.queueDefaults[q] ?? {});
    const submitted = this.store.submitPipeline({ pipeline });
    this.dispatcher.kickWithSubmit();
    const out = await submitted;
    this.afterSubmit(out.jobs.map((job) => ({ job, created: true })));
    return out;
  }

  async getPipeline(id: string): Promise<PipelineDetail> {
    const p = await this.store.getPipeline({ id });
    if (!p) throw new GafferError('PIPELINE_NOT_FOUND', `no pipeline instance has id ${id}`, { pipelineId: id });
    return p;
  }

  async getJob(id: string): Promise<Job> {
    const job = await this.store.getJob({ id });
    if (!job) throw new GafferError('JOB_NOT_FOUND', `no job has id ${id}`, { jobId: id });
    return job;
  }

  async cancel(id: string, reason?: string): Promise<Job> {
    checkText(reason, 'reason');
    const out = await this.store.cancel(reason === undefined ? { jobId: id } : { jobId: id, reason });
    this.applyChanges(out.changes, 'job cancelled', out.job);
    return out.job;
  }

  async retry(id: string): Promise<Job> {
    const out = await this.store.retry({ jobId: id });
    this.applyChanges(out.changes, 'job retried', out.job);
    return out.job;
  }

  /** Resolves with the job once it has ended, or with its current state when the wait runs out. */
  async waitForJob(id: string, waitMs: number): Promise<Job> {
    if (waitMs <= 0) return this.getJob(id);
    // Register first, then read: a job that ends in between still wakes this waiter.
    let finish!: (job: Job) => void;
    const ended = new Promise<Job>((resolve) => (finish = resolve));
    let set = this.waiters.get(id);
    if (!set) this.waiters.set(id, (set = new Set()));
    set.add(finish);
    const forget = (): void => {
      set.delete(finish);
      if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
    };
    let timer: TimerHandle | null = null;
    try {
      const job = await this.getJob(id);
      if (isTerminalJobState(job.state)) return job;
      const timedOut = new Promise<null>((resolve) => (timer = this.clock.setTimeout(() => resolve(null), waitMs)));
      return (await Promise.race([ended, timedOut])) ?? (await this.getJob(id));
    } finally {
      if (timer) this.clock.clearTimeout(timer);
      forget();
    }
  }

  queueCounts(): Promise<QueueCounts[]> {
    return this.store.queueCounts();
  }

  /** Workers by id; `summary`: without labels and keys (see Store.listWorkers). */
  listWorkers(params: ListWorkersParams = {}): Promise<Worker[]> {
    return this.store.listWorkers(params);
  }

  /** Worker sessions attached to this coordinator now. */
  get attachedWorkers(): number {
    return this.sessions.size;
  }

  /**
   * Pauses a queue (no new attempts; running ones finish) or resumes it. A
   * resume dispatches at once here, and the store wakes the other coordinators.
   */
  async setQueuePaused(queue: string, paused: boolean, reason?: string): Promise<QueueState> {
    checkQueueName(queue);
    checkText(reason, 'reason');
    const state = await this.store.setQueuePaused(reason === undefined ? { queue, paused } : { queue, paused, reason });
    if (!paused) this.kick();
    return state;
  }

  /**
   * Pauses one queue on one worker (it is handed nothing of it; its running
   * attempts finish) or resumes it, on every coordinator and across the
   * worker's reconnects. A resume dispatches at once here, and the store wakes the others.
   */
  async setWorkerQueuePaused(workerId: string, queue: string, paused: boolean): Promise<Worker> {
    checkQueueName(queue);
    const worker = await this.store.setWorkerQueuePaused({ workerId, queue, paused });
    if (!paused) {
      this.openSlots.reopen(workerId);
      this.kick();
    }
    return worker;
  }

  /** Tops up every backlog now (the keeper also does on its beat); see backlog.ts. */
  topUpBacklogs(): Promise<TopUpBacklogResult[]> {
    return this.track(this.backlog.topUp());
  }

  listQueueStates(): Promise<QueueState[]> {
    return this.store.listQueueStates();
  }

  /** The stored queue history (what every coordinator flushed). */
  readHistory(params: ReadHistoryParams): Promise<HistoryPoint[]> {
    return this.store.readHistory(params);
  }

  /** Rejected results and failed reliability checks over time, read from the attempts and checks kept. */
  readTrustHistory(params: ReadHistoryParams): Promise<TrustPoint[]> {
    return this.store.readTrustHistory(params);
  }

  /** Quarantines a worker (no real work; its live attempts go back to the queue) or releases it with a fresh record. */
  async setQuarantine(workerId: string, quarantined: boolean, reason?: string): Promise<Worker> {
    checkText(reason, 'reason');
    const out = await this.store.setWorkerQuarantine(reason === undefined ? { workerId, quarantined } : { workerId, quarantined, reason });
    this.applyChanges(out.changes, 'worker quarantined');
    this.events.emit('worker', { workerId, event: quarantined ? 'quarantined' : 'released', at: this.clock.now() });
    // A released worker is checked again where it failed (the store set its challenges), and may take work at once.
    if (!quarantined) this.openSlots.reopen(workerId);
    this.kick();
    return out.worker;
  }

  /**
   * Builds the verification job for a result of a job with a verifier queue,
   * with that queue's defaults. Passed into the store's complete().
   */
  readonly verificationJob = (queue: string, payload: Json, priority: number): NewJob => {
    // A verification runs once and is not itself verified, whatever the verifier queue's defaults say.
    const { challenge: _challenge, ...defaults } = this.queueDefaults[queue] ?? {};
    return normalizeJob({ queue, payload, priority, replicas: 1, quorum: 1, adaptive: false }, { ...defaults, verify: null });
  };

  /** Starts the reliability checks a worker still owes for the queues it serves (those that declare a challenge). */
  private async startChecks(workerId: string, queues: Record<string, number>): Promise<void> {
    for (const queue of Object.keys(queues)) {
      const challenge = this.queueDefaults[queue]?.challenge;
      if (!challenge) continue;
      const job = normalizeJob(
        { queue, payload: challenge.payload, timeoutMs: challenge.timeLimitMs, maxAttempts: 1, priority: LIMITS.priorityMax, labels: { challenge: workerId } },
        {},
      );
      const { created } = await this.store.startCheck({ workerId, queue, job, answerHash: resultHash(challenge.answer), timeLimitMs: challenge.timeLimitMs });
      if (created) this.emitJob(job.queue, 'queued');
    }
  }

  async drainWorker(workerId: string): Promise<Worker> {
    const worker = await this.store.setWorkerDraining({ workerId, draining: true });
    this.sessions.get(workerId)?.markDraining();
    this.events.emit('worker', { workerId, event: 'draining', at: this.clock.now() });
    return worker;
  }

  // ---- Workers ----

  /**
   * A worker said hello. `operator` is the one its token names (null without
   * tokens): a worker id created under another operator is WORKER_ID_TAKEN,
   * and the session holding it is left alone.
   */
  async attachWorker(hello: unknown, link: WorkerLink, operator: string | null = null): Promise<WorkerSession> {
    const spec = normalizeWorker(hello);
    const worker = await this.store.upsertWorker({ spec, operator });
    // Before the worker can claim: a queue with a challenge gives it nothing else until it passes.
    await this.startChecks(worker.id, spec.queues);
    const previous = this.sessions.get(worker.id);
    if (previous) previous.detached = true;
    const session = new WorkerSession(this, worker.id, spec, link);
    this.sessions.set(worker.id, session);
    this.openSlots.attach(worker.id, spec);
    this.hints.declare(worker.id, spec.queues);
    this.events.emit('worker', { workerId: worker.id, event: 'attached', at: this.clock.now() });
    this.kick();
    // The publishes it owes (accepted while it was away) go out right after welcome.
    void this.track(this.publishing.attached(session));
    return session;
  }

  /** The connection dropped: leases stay until their heartbeat timeout, so a quick reconnect loses nothing. */
  async detachWorker(session: WorkerSession): Promise<void> {
    if (this.sessions.get(session.workerId) !== session) return;
    this.sessions.delete(session.workerId);
    this.openSlots.detach(session.workerId);
    this.hints.forget(session.workerId);
    session.detached = true;
    await this.store.disconnectWorker({ workerId: session.workerId });
    this.events.emit('worker', { workerId: session.workerId, event: 'detached', at: this.clock.now() });
  }

  /** @internal Called by sessions after a report. */
  applyChanges(changes: Change[], reason: string, job?: Job): void {
    this.metrics.changed(changes, reason, job);
    // A report's job moving back to queued is a retry; the other queued jobs of a report are children made ready.
    this.history.changes(changes, job?.id ?? 'all', job);
    this.publishing.changed(changes);
    for (const c of changes) {
      this.emitJob(c.jobId, c.state);
      for (const [workerId, list] of groupByWorker(c.cancelledAttempts)) {
        this.sessions.get(workerId)?.link.revoke(list.map((a) => a.attemptId), reason);
        for (const a of list) {
          this.openSlots.ended(workerId);
          this.hints.ended(a.attemptId, false);
        }
      }
    }
    if (freesCapacity(changes)) this.kick();
  }

  private emitJob(jobId: string, state: JobState): void {
    this.events.emit('job', { jobId, state, at: this.clock.now() });
    if (!isTerminalJobState(state) || !this.waiters.has(jobId)) return;
    // A failed read leaves the waiters waiting: the next poll, or their own timeout, reads the job again.
    void this.store.getJob({ id: jobId }).then(
      (job) => {
        if (job) this.finishWaiters(job);
      },
      (err: unknown) => this.logStoreError(err, 'reading an ended job for its waiters failed'),
    );
  }

  /** Hands an ended job to everyone waiting for it. */
  private finishWaiters(job: Job): void {
    if (!isTerminalJobState(job.state)) return;
    const set = this.waiters.get(job.id);
    if (!set) return;
    this.waiters.delete(job.id);
    for (const finish of set) finish(job);
  }

  /** Store failures are expected while the store is away (health logs that once); anything else is logged. */
  private logStoreError(err: unknown, msg: string): void {
    if (isGafferError(err, 'NOT_READY')) return;
    if (isGafferError(err, 'STORE_BUSY')) this.log.warn({ code: err.code, reason: err.message }, msg);
    else this.log.error({ err }, msg);
  }

  // ---- Dispatch and sweeps ----

  /** Asks for a dispatch pass; passes never overlap, and a request during one runs another after it. */
  kick(): void {
    if (!this.running) return;
    // The pipeline's edges are re-read now and then (hints.ts); this dispatch uses the last read.
    if (this.health.available) void this.track(this.hints.refresh()).catch((err: unknown) => this.logStoreError(err, 'reading the pipeline edges for the scheduler failed'));
    this.dispatcher.kick();
  }

  /** One claim's assignments: each worker hears of its own, then everyone of the jobs now running. */
  private deliver(assignments: readonly Assignment[]): void {
    this.metrics.assigned(assignments);
    this.history.leased(assignments);
    this.hints.leased(assignments);
    this.openSlots.delivered(assignments);
    // readyAt is the coordinator's (wait times), never sent to a worker.
    const wire = assignments.map(({ readyAt: _readyAt, ...a }) => a);
    for (const [workerId, list] of groupByWorker(wire)) {
      const session = this.sessions.get(workerId);
      if (session && !session.draining && !session.detached) session.link.assign(list);
      else void this.track(this.handBack(list));
    }
    for (const a of assignments) this.events.emit('job', { jobId: a.jobId, state: 'running', at: this.clock.now() });
    // Filler jobs handed out are replaced soon, not a whole interval later.
    if (assignments.some((a) => this.backlog.keeps(a.queue))) this.backlog.kick();
  }

  /** One retention sweep now (the sweeper also runs one on its beat); see retention.ts. */
  sweepRetention(): Promise<RetentionSweepResult> {
    return this.sweeper.sweepRetention();
  }

  /**
   * Assignments claimed for a worker that drained or left while the claim ran:
   * it never heard of them, so they go back to the queue as a draining worker's
   * hand-back does (WORKER_DRAINING: no failure counted, no backoff), rather
   * than wait out their leases and count as lost. Never rejects.
   */
  private async handBack(list: readonly Omit<Assignment, 'readyAt'>[]): Promise<void> {
    const error = { code: 'WORKER_DRAINING', message: 'the worker drained or left before its assignment reached it' };
    for (const a of list) {
      try {
        const out = await this.store.fail({ attemptId: a.attemptId, lease: a.lease, workerId: a.workerId, error, retryable: true });
        this.metrics.reported(a.attemptId);
        this.history.finished(a.attemptId);
        this.applyChanges(out.changes, 'handed back', out.job);
      } catch (err) {
        // Its lease runs out instead (or it already ended).
        if (!isGafferError(err, 'STALE_LEASE')) this.logStoreError(err, 'handing back an assignment of a draining worker failed');
      }
    }
  }

  /** One pass of every sweeper now (the sweeper also runs them on its beat); see Sweeper.sweep(). */
  sweep(): Promise<SweepResult> {
    return this.sweeper.sweep();
  }

  /** What a sweep changed: ended attempts are revoked from their workers, changes become events. */
  private applySweep(result: SweepResult): void {
    this.metrics.swept(result);
    const lost = [...new Set(result.endedAttempts.filter((e) => e.reason === 'LEASE_LOST').map((e) => e.workerId))];
    if (lost.length > 0) this.log.warn({ workerIds: lost.slice(0, LOG_MAX_IDS) }, 'workers lost: leases expired without a heartbeat; their jobs go back to the queue');
    this.history.swept(result);
    for (const e of result.endedAttempts) {
      this.sessions.get(e.workerId)?.link.revoke([e.attemptId], e.reason);
      this.openSlots.ended(e.workerId);
      this.hints.ended(e.attemptId, false);
    }
    this.applyChanges(result.changes, 'swept');
    if (result.endedAttempts.length > 0) this.kick();
  }

  // ---- Polling (shared store) ----

  /** A poll beat: a dispatch pass, and a read of the jobs that result waits wait for. */
  private poll(): void {
    this.kick();
    if (this.polling || this.waiters.size === 0) return;
    this.polling = this.track(this.pollWaiters()).finally(() => {
      this.polling = null;
    });
  }

  /** Reads up to pollWaitsMaxJobs waited-for jobs, each turn starting where the last stopped; never rejects. */
  private async pollWaiters(): Promise<void> {
    const ids = [...this.waiters.keys()];
    const count = Math.min(ids.length, COORDINATOR_DEFAULTS.pollWaitsMaxJobs);
    const start = this.pollCursor % ids.length;
    this.pollCursor = start + count;
    for (let i = 0; i < count && this.running; i++) {
      const id = ids[(start + i) % ids.length]!;
      if (!this.waiters.has(id)) continue;
      try {
        const job = await this.store.getJob({ id });
        if (job) this.finishWaiters(job);
      } catch (err) {
        this.logStoreError(err, 'reading a waited-for job failed; the next poll reads it again');
        return;
      }
    }
  }

  /** @internal */
  trackReport<T>(p: Promise<T>): Promise<T> {
    return this.track(p);
  }
}

/** A queue name as the store keeps it: dotted words of 1 to queueNameMaxChars characters (INVALID_INPUT otherwise). */
function checkQueueName(queue: string): void {
  if (!QUEUE_NAME.test(queue) || queue.length > LIMITS.queueNameMaxChars) {
    throw new GafferError('INVALID_INPUT', `a queue name is dotted words of 1 to ${LIMITS.queueNameMaxChars} characters`);
  }
}

/** The backlogs the queues' configuration asks for, each with its filler job. */
function backlogsOf(queues: Record<string, QueueConfig>): Map<string, Backlog> {
  const out = new Map<string, Backlog>();
  for (const [queue, config] of Object.entries(queues)) {
    if (config.backlog) out.set(queue, { target: config.backlog.target, job: backlogJob(queue, config, config.backlog) });
  }
  return out;
}
