// The coordinator's side of a store that can go away: a PostgreSQL server
// restarting, a network cut, a pool with no free connection. Two parts:
//
// - guardStore: watches every store call. A store throws the catalogue's
//   errors itself (each backend's db.ts turns its driver's failures into
//   them): NOT_READY when it cannot be reached, STORE_BUSY when it is
//   reachable but could not do it now (a deadlock, a serialization failure,
//   no pooled connection in time). Both are 503s that a client retries and
//   acks that a worker sends again. This module reacts to those two codes
//   only and knows nothing of any backend's error codes or messages;
//   anything else passes through.
// - StoreHealth: the first NOT_READY marks the store unavailable. While it is,
//   the coordinator runs no dispatch or sweep pass (they would only fail and
//   flood the log) and /readyz answers 503; the store is probed with a ping
//   that backs off from storeRetryBaseDelayMs to storeRetryMaxDelayMs. The
//   first call that succeeds, probe or not, marks it available again and the
//   coordinator resumes.
import type { Store } from '../store/store.ts';
import type { Clock, Random, TimerHandle } from '../types/clock.ts';
import { GafferError, isGafferError } from '../types/errors.ts';
import { COORDINATOR_DEFAULTS } from '../types/limits.ts';

/** The store failure, when it is about the store's availability (NOT_READY, STORE_BUSY); null otherwise. */
export function classifyStoreError(err: unknown): GafferError | null {
  return isGafferError(err, 'NOT_READY') || isGafferError(err, 'STORE_BUSY') ? err : null;
}

/** The logging StoreHealth needs; pino's logger fits it. */
export interface HealthLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface StoreHealthOptions {
  /** The store itself (not a guarded one): probes ping it. */
  store: Store;
  clock: Clock;
  random?: Random;
  log: HealthLog;
  /** Called once each time the store answers again after being unavailable. */
  onRecovered: () => void;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  pingTimeoutMs?: number;
}

/** Whether the store answers, and the probes that find out when it answers again. */
export class StoreHealth {
  private readonly o: Required<Omit<StoreHealthOptions, 'random'>> & { random: Random };
  private downSince: number | null = null;
  private failedProbes = 0;
  private probeTimer: TimerHandle | null = null;
  private probing = false;
  private stopped = false;

  constructor(options: StoreHealthOptions) {
    this.o = {
      retryBaseDelayMs: COORDINATOR_DEFAULTS.storeRetryBaseDelayMs,
      retryMaxDelayMs: COORDINATOR_DEFAULTS.storeRetryMaxDelayMs,
      pingTimeoutMs: COORDINATOR_DEFAULTS.storePingTimeoutMs,
      random: { next: Math.random },
      ...options,
    };
  }

  get available(): boolean {
    return this.downSince === null;
  }

  /** A store call answered: the store is back if it was away. */
  succeeded(): void {
    if (this.downSince === null) return;
    const downForMs = this.o.clock.now() - this.downSince;
    this.downSince = null;
    this.failedProbes = 0;
    if (this.probeTimer) this.o.clock.clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.o.log.warn({ downForMs }, 'the store answers again; resuming');
    if (!this.stopped) this.o.onRecovered();
  }

  /** A store call failed with this (already classified) error. */
  failed(err: GafferError): void {
    if (err.code !== 'NOT_READY' || this.stopped) return;
    if (this.downSince !== null) return;
    this.downSince = this.o.clock.now();
    this.o.log.error({ code: err.code, reason: err.message }, 'the store does not answer: not ready; probing it with backoff');
    this.scheduleProbe();
  }

  /** Pings the store within pingTimeoutMs. Resolves true when it answered; false marks it unavailable. */
  async check(): Promise<boolean> {
    let timer: TimerHandle | null = null;
    const bound = new Promise<'timeout'>((resolve) => {
      timer = this.o.clock.setTimeout(() => resolve('timeout'), this.o.pingTimeoutMs);
    });
    try {
      const outcome = await Promise.race([this.o.store.ping().then(() => 'ok' as const), bound]);
      if (outcome === 'ok') {
        this.succeeded();
        return true;
      }
      this.failed(new GafferError('NOT_READY', `the store did not answer a ping within ${this.o.pingTimeoutMs} ms`));
      return false;
    } catch (err) {
      this.failed(classifyStoreError(err) ?? new GafferError('NOT_READY', `the store failed a ping: ${String((err as Error)?.message ?? err)}`));
      return false;
    } finally {
      if (timer) this.o.clock.clearTimeout(timer);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.probeTimer) this.o.clock.clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  /** The next probe: after base * 2^failures (capped at the max), between half and all of it. */
  private scheduleProbe(): void {
    if (this.stopped || this.probeTimer || this.downSince === null) return;
    const ceiling = Math.min(this.o.retryMaxDelayMs, this.o.retryBaseDelayMs * 2 ** Math.min(this.failedProbes, 30));
    const delayMs = ceiling / 2 + (this.o.random.next() * ceiling) / 2;
    this.probeTimer = this.o.clock.setTimeout(() => {
      this.probeTimer = null;
      void this.probe();
    }, delayMs);
  }

  private async probe(): Promise<void> {
    if (this.probing || this.stopped || this.downSince === null) return;
    this.probing = true;
    try {
      if (!(await this.check())) this.failedProbes++;
    } finally {
      this.probing = false;
    }
    this.scheduleProbe();
  }
}

/**
 * The store as the coordinator, the HTTP API and the worker endpoint use it:
 * the same calls, with failures classified and reported to `health`.
 */
export function guardStore(store: Store, health: StoreHealth): Store {
  const run = async <T>(call: () => Promise<T>): Promise<T> => {
    let value: T;
    try {
      value = await call();
    } catch (err) {
      const classified = classifyStoreError(err);
      if (!classified) {
        // The store answered (with a refusal such as STALE_LEASE, or a bug): it is reachable.
        if (isGafferError(err)) health.succeeded();
        throw err;
      }
      health.failed(classified);
      throw classified;
    }
    health.succeeded();
    return value;
  };
  const guarded: Store = {
    kind: store.kind,
    capabilities: store.capabilities,
    submit: (p) => run(() => store.submit(p)),
    getJob: (p) => run(() => store.getJob(p)),
    listJobs: (p) => run(() => store.listJobs(p)),
    listAttempts: (p) => run(() => store.listAttempts(p)),
    listLiveAttempts: (p) => run(() => store.listLiveAttempts(p)),
    cancel: (p) => run(() => store.cancel(p)),
    retry: (p) => run(() => store.retry(p)),
    submitPipeline: (p) => run(() => store.submitPipeline(p)),
    getPipeline: (p) => run(() => store.getPipeline(p)),
    listPipelines: (p) => run(() => store.listPipelines(p)),
    upsertWorker: (p) => run(() => store.upsertWorker(p)),
    getWorker: (p) => run(() => store.getWorker(p)),
    listWorkers: (p) => run(() => store.listWorkers(p)),
    disconnectWorker: (p) => run(() => store.disconnectWorker(p)),
    setWorkerDraining: (p) => run(() => store.setWorkerDraining(p)),
    updateWorkerKeys: (p) => run(() => store.updateWorkerKeys(p)),
    setWorkerQuarantine: (p) => run(() => store.setWorkerQuarantine(p)),
    startCheck: (p) => run(() => store.startCheck(p)),
    claim: (p) => run(() => store.claim(p)),
    heartbeat: (p) => run(() => store.heartbeat(p)),
    progress: (p) => run(() => store.progress(p)),
    complete: (p) => run(() => store.complete(p)),
    fail: (p) => run(() => store.fail(p)),
    duePublishes: (p) => run(() => store.duePublishes(p)),
    recordPublish: (p) => run(() => store.recordPublish(p)),
    expireAttempts: (p) => run(() => store.expireAttempts(p)),
    expireDeadlines: (p) => run(() => store.expireDeadlines(p)),
    speculate: (p) => run(() => store.speculate(p)),
    nextRunAt: (p) => run(() => store.nextRunAt(p)),
    queueCounts: () => run(() => store.queueCounts()),
    queueStats: (p) => run(() => store.queueStats(p)),
    oldestReady: (p) => run(() => store.oldestReady(p)),
    queueArrivals: (p) => run(() => store.queueArrivals(p)),
    queueEdges: (p) => run(() => store.queueEdges(p)),
    setQueuePaused: (p) => run(() => store.setQueuePaused(p)),
    listQueueStates: () => run(() => store.listQueueStates()),
    topUpBacklog: (p) => run(() => store.topUpBacklog(p)),
    setWorkerQueuePaused: (p) => run(() => store.setWorkerQueuePaused(p)),
    addHistory: (p) => run(() => store.addHistory(p)),
    readHistory: (p) => run(() => store.readHistory(p)),
    readTrustHistory: (p) => run(() => store.readTrustHistory(p)),
    rollUpHistory: (p) => run(() => store.rollUpHistory(p)),
    queuesOf: (p) => run(() => store.queuesOf(p)),
    finishedQueues: (p) => run(() => store.finishedQueues(p)),
    deleteFinishedJobs: (p) => run(() => store.deleteFinishedJobs(p)),
    pruneWorkers: (p) => run(() => store.pruneWorkers(p)),
    beatCoordinator: (p) => run(() => store.beatCoordinator(p)),
    leaveCoordinator: (p) => run(() => store.leaveCoordinator(p)),
    ping: () => run(() => store.ping()),
    close: () => store.close(),
  };
  const onWake = store.onWake?.bind(store);
  if (onWake) guarded.onWake = (listener) => onWake(listener);
  return guarded;
}
