// What the coordinator tells a metrics sink (the server's /metrics), from what
// it sees anyway: submits, assignments, reports, changes, sweeps and store
// calls. Increments and observations only; nothing here reads the store. With
// no sink attached every hook returns at once.
//
// Changes name a job, not its queue, so the hooks remember the queue (and the
// time it became ready) of the jobs this coordinator submitted or leased, in
// maps bounded by trackedMaxJobs and trackedMaxAttempts (the oldest entry goes
// first). A job it never saw (submitted through another coordinator and never
// leased here) is counted under the queue "".
import type { Change, Store, SubmitResult, SweepResult } from '../store/store.ts';
import type { Clock } from '../types/clock.ts';
import type { Assignment, Job } from '../types/model.ts';

export const JOB_EVENTS = ['submitted', 'succeeded', 'failed', 'cancelled', 'expired', 'retried', 'lost', 'timed_out'] as const;
export type JobEventName = (typeof JOB_EVENTS)[number];

export interface MetricsSink {
  jobs(event: JobEventName, queue: string): void;
  /** A job was leased this long after it became ready. */
  waited(queue: string, ms: number): void;
  /** An attempt reported this long after it was leased. */
  ran(queue: string, ms: number): void;
  /** A store call (by method name) took this long. */
  storeCall(op: string, ms: number): void;
}

export const METRICS_BOUNDS = { trackedMaxJobs: 100_000, trackedMaxAttempts: 100_000 } as const;

interface TrackedJob {
  queue: string;
  /** When it became claimable, when known. */
  readyAt: number | null;
  leased: boolean;
}

const ENDED: Partial<Record<Change['state'], JobEventName>> = {
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  expired: 'expired',
};

export class MetricsHooks {
  private sink: MetricsSink | null = null;
  private readonly clock: Clock;
  private readonly jobs = new Map<string, TrackedJob>();
  private readonly attempts = new Map<string, { jobId: string; queue: string; leasedAt: number }>();

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Starts telling `sink`; null stops. One sink at a time. */
  attach(sink: MetricsSink | null): void {
    this.sink = sink;
    if (!sink) {
      this.jobs.clear();
      this.attempts.clear();
    }
  }

  submitted(results: readonly SubmitResult[]): void {
    if (!this.sink) return;
    for (const r of results) {
      if (!r.created) continue;
      this.sink.jobs('submitted', r.job.queue);
      this.track(r.job.id, { queue: r.job.queue, readyAt: r.job.state === 'queued' ? r.job.runAt : null, leased: false });
    }
  }

  assigned(assignments: readonly Assignment[]): void {
    if (!this.sink) return;
    const now = this.clock.now();
    for (const a of assignments) {
      const readyAt = a.readyAt ?? this.jobs.get(a.jobId)?.readyAt;
      if (readyAt != null) this.sink.waited(a.queue, Math.max(0, now - readyAt));
      this.track(a.jobId, { queue: a.queue, readyAt: null, leased: true });
      bounded(this.attempts, a.attemptId, { jobId: a.jobId, queue: a.queue, leasedAt: now }, METRICS_BOUNDS.trackedMaxAttempts);
    }
  }

  /** A worker reported on an attempt (complete or fail): its run time. */
  reported(attemptId: string): void {
    if (!this.sink) return;
    const a = this.attempts.get(attemptId);
    if (!a) return;
    this.attempts.delete(attemptId);
    this.sink.ran(a.queue, Math.max(0, this.clock.now() - a.leasedAt));
  }

  /** Changes the coordinator applied; `job` is the job the call was about, when it has it. */
  changed(changes: readonly Change[], reason: string, job?: Job): void {
    if (!this.sink) return;
    if (job) this.track(job.id, { queue: job.queue, readyAt: null, leased: this.jobs.get(job.id)?.leased ?? false });
    for (const c of changes) this.changedOne(c, reason === 'job retried' || reason === 'swept', job);
  }

  private changedOne(c: Change, requeue: boolean, job: Job | undefined): void {
    for (const a of c.cancelledAttempts) this.attempts.delete(a.attemptId);
    const tracked = this.jobs.get(c.jobId);
    const queue = tracked?.queue ?? '';
    const ended = ENDED[c.state];
    if (ended) {
      this.sink!.jobs(ended, queue);
      this.jobs.delete(c.jobId);
      return;
    }
    if (c.state !== 'queued') return;
    // Back in the queue after an attempt (or after it ended); a child released by its parents is not a retry.
    if (requeue || tracked?.leased) this.sink!.jobs('retried', queue);
    const readyAt = job?.id === c.jobId ? job.runAt : null;
    this.track(c.jobId, { queue, readyAt, leased: false });
  }

  swept(result: SweepResult): void {
    if (!this.sink) return;
    for (const e of result.endedAttempts) {
      const a = this.attempts.get(e.attemptId);
      this.attempts.delete(e.attemptId);
      this.sink.jobs(e.reason === 'LEASE_LOST' ? 'lost' : 'timed_out', a?.queue ?? '');
    }
  }

  storeCall(op: string, ms: number): void {
    this.sink?.storeCall(op, ms);
  }

  private track(jobId: string, job: TrackedJob): void {
    bounded(this.jobs, jobId, job, METRICS_BOUNDS.trackedMaxJobs);
  }
}

/** Sets key to value as the newest entry; drops the oldest past maxEntries. */
function bounded<K, V>(map: Map<K, V>, key: K, value: V, maxEntries: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > maxEntries) map.delete(map.keys().next().value as K);
}

/** The store with every call's latency told to `hooks` (by method name, a fixed set). */
export function timeStore(store: Store, hooks: MetricsHooks): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]): unknown => {
        // A latency of real I/O, measured on the monotonic clock (a virtual clock would say 0).
        const startedAt = performance.now();
        const out: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (out instanceof Promise) {
          const done = (): void => hooks.storeCall(prop, performance.now() - startedAt);
          out.then(done, done);
        }
        return out;
      };
    },
  });
}
