// The coordinator's share of the queue history: it counts in memory what
// passes through it (each change passes through exactly one coordinator) and
// adds it into the store's minute rows every historyFlushIntervalMs, one
// additive upsert per queue and minute, so several coordinators add into the
// same rows. Nothing here touches the store on the hot path. A coordinator
// that crashes loses what it had not flushed: at most about one interval.
//
// What is counted, per queue and minute of the event:
// - submitted: jobs created by a submit through this coordinator;
// - succeeded, failed, cancelled: jobs that reached that state in a change
//   this coordinator applied (cascades to dependants included);
// - retried: a job put back in its queue for another attempt (after a failure,
//   a lost lease, a timeout, a split vote, a quarantine, or a manual retry);
// - lost: attempts whose lease ran out (this coordinator's sweep ended them);
// - wait: ready (run_at) to leased, for every attempt this coordinator leased;
// - run: leased to finished, for every attempt that this coordinator leased and
//   whose result or failure reached it (a worker that reconnects elsewhere
//   before it reports takes its run time with it).
// A change whose job's queue is not known here (a dependant, a sweep) is kept
// by id and its queue read at flush time, in batches.
import type { Change, Store, SubmitResult, SweepResult } from '../store/store.ts';
import type { Clock, TimerHandle } from '../types/clock.ts';
import { emptyPoint, MINUTE_MS, observe, stepStart, type HistoryCounter, type HistoryPoint } from '../types/history.ts';
import { COORDINATOR_DEFAULTS, LIMITS } from '../types/limits.ts';
import type { Assignment } from '../types/model.ts';

export interface HistoryRecorderOptions {
  store: Store;
  clock: Clock;
  /** Default: COORDINATOR_DEFAULTS.historyFlushIntervalMs. */
  flushIntervalMs?: number;
  /** False: count nothing and flush nothing (every method returns at once). Default true. */
  enabled?: boolean;
  /** Whether the store may be asked now; while it may not, flushes wait (nothing is dropped). */
  available?: () => boolean;
  onError: (err: unknown, msg: string) => void;
}

interface Unresolved {
  /** A job id or an attempt id. */
  id: string;
  counter: HistoryCounter;
  at: number;
}

export class HistoryRecorder {
  private readonly o: HistoryRecorderOptions;
  private readonly flushIntervalMs: number;
  private points = new Map<string, HistoryPoint>();
  private unresolved: Unresolved[] = [];
  /** Attempts leased here, for their run times: attemptId to queue and lease time (oldest first). */
  private readonly open = new Map<string, { queue: string; leasedAt: number }>();
  private timer: TimerHandle | null = null;
  private flushing: Promise<void> | null = null;
  private running = false;
  private readonly enabled: boolean;

  constructor(options: HistoryRecorderOptions) {
    this.o = options;
    this.flushIntervalMs = options.flushIntervalMs ?? COORDINATOR_DEFAULTS.historyFlushIntervalMs;
    this.enabled = options.enabled !== false;
  }

  start(): void {
    if (!this.enabled) return;
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /** Stops the beat and flushes what is counted (best effort); resolves when that flush ends. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }

  /** The flush in flight, or null; it never rejects. */
  current(): Promise<void> | null {
    return this.flushing;
  }

  submitted(results: readonly SubmitResult[]): void {
    if (!this.enabled) return;
    const at = this.o.clock.now();
    for (const r of results) if (r.created) this.count(r.job.queue, 'submitted', at);
  }

  leased(assignments: readonly Assignment[]): void {
    if (!this.enabled) return;
    const at = this.o.clock.now();
    for (const a of assignments) {
      if (a.readyAt !== undefined) observe(this.point(a.queue, at).wait, at - a.readyAt);
      if (this.open.size >= LIMITS.historyOpenAttemptsMax) this.open.delete(this.open.keys().next().value!);
      this.open.set(a.attemptId, { queue: a.queue, leasedAt: at });
    }
  }

  /** An attempt's result or failure reached this coordinator. */
  finished(attemptId: string): void {
    if (!this.enabled) return;
    const open = this.open.get(attemptId);
    if (!open) return;
    this.open.delete(attemptId);
    const at = this.o.clock.now();
    observe(this.point(open.queue, at).run, at - open.leasedAt);
  }

  /**
   * The changes of one store write. `retriedJob`: a job id when only that
   * job's move back to queued is a retry (a report, whose other queued jobs
   * are children made ready); 'all' when every one is.
   */
  changes(changes: readonly Change[], retriedJob: string | 'all', known?: { id: string; queue: string }): void {
    if (!this.enabled) return;
    const at = this.o.clock.now();
    for (const c of changes) {
      const counter = counterOf(c, retriedJob);
      if (counter === null) continue;
      if (known && known.id === c.jobId) this.count(known.queue, counter, at);
      else this.later(c.jobId, counter, at);
    }
  }

  /** The attempts a sweep ended (its job changes come through changes()). */
  swept(result: SweepResult): void {
    if (!this.enabled) return;
    const at = this.o.clock.now();
    for (const e of result.endedAttempts) {
      const open = this.open.get(e.attemptId);
      this.open.delete(e.attemptId);
      if (e.reason !== 'LEASE_LOST') continue;
      if (open) this.count(open.queue, 'lost', at);
      else this.later(e.attemptId, 'lost', at);
    }
  }

  /** Adds what is counted into the store; what fails to reach it is kept for the next flush. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = this.flushNow().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async flushNow(): Promise<void> {
    try {
      await this.resolve();
      const points = [...this.points.values()];
      if (points.length === 0) return;
      this.points = new Map();
      try {
        await this.o.store.addHistory({ points });
      } catch (err) {
        for (const p of points) this.merge(p);
        throw err;
      }
    } catch (err) {
      this.o.onError(err, 'flushing the queue history failed; the next flush retries it');
    }
  }

  /** Reads the queues of the ids counted without one, a batch at a time; ids the store does not know are dropped. */
  private async resolve(): Promise<void> {
    while (this.unresolved.length > 0) {
      const batch = this.unresolved.slice(0, LIMITS.historyResolveBatchMaxJobs);
      const found = new Map((await this.o.store.queuesOf({ ids: batch.map((u) => u.id) })).map((r) => [r.id, r.queue]));
      this.unresolved = this.unresolved.slice(batch.length);
      for (const u of batch) {
        const queue = found.get(u.id);
        if (queue !== undefined) this.count(queue, u.counter, u.at);
      }
    }
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.o.clock.setTimeout(() => {
      this.schedule();
      if (this.o.available?.() ?? true) void this.flush();
    }, this.flushIntervalMs);
  }

  private later(id: string, counter: HistoryCounter, at: number): void {
    if (this.unresolved.length < LIMITS.historyUnresolvedMaxEvents) this.unresolved.push({ id, counter, at });
  }

  private count(queue: string, counter: HistoryCounter, at: number): void {
    this.point(queue, at).counts[counter] += 1;
  }

  private point(queue: string, at: number): HistoryPoint {
    const minute = stepStart(at, MINUTE_MS);
    const key = `${queue}\u0000${minute}`;
    let p = this.points.get(key);
    if (!p) this.points.set(key, (p = emptyPoint(queue, minute)));
    return p;
  }

  private merge(p: HistoryPoint): void {
    const into = this.point(p.queue, p.at);
    for (const k of Object.keys(p.counts) as HistoryCounter[]) into.counts[k] += p.counts[k];
    for (const [h, from] of [[into.wait, p.wait], [into.run, p.run]] as const) {
      h.sumMs += from.sumMs;
      from.buckets.forEach((n, i) => (h.buckets[i]! += n));
    }
  }
}

function counterOf(c: Change, retriedJob: string | 'all'): HistoryCounter | null {
  switch (c.state) {
    case 'succeeded':
    case 'failed':
    case 'cancelled':
      return c.state;
    case 'queued':
      return retriedJob === 'all' || retriedJob === c.jobId ? 'retried' : null;
    default:
      return null;
  }
}
