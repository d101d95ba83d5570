// The scheduler's hints (src/scheduler/hints.ts), kept by the coordinator from
// what passes through it anyway: the slots each attached worker declares (its
// hello and every registration after), each attempt's lease time (delivery)
// and completion (its report), and the pipeline's edges between queues, read
// from the store (queueEdges, the advisor's read) at most every
// LIMITS.hintsEdgesRefreshMs. The simulator keeps the same object from the same
// events, so what it measures is what the coordinator would decide.
import { RunTimes, followersFrom, type SchedulingHints } from '../scheduler/hints.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../types/clock.ts';
import { LIMITS } from '../types/limits.ts';
import type { Assignment } from '../types/model.ts';

export class HintsSource {
  private readonly runTimes = new RunTimes(LIMITS.hintsWorkersMax);
  private readonly declared = new Map<string, Readonly<Record<string, number>>>();
  /** Live attempts this coordinator delivered: whose, which queue, when. Insertion order is lease order. */
  private readonly leases = new Map<string, { workerId: string; queue: string; atMs: number }>();
  private followers: Record<string, string[]> = {};
  private edgesReadAtMs = -Infinity;
  private reading: Promise<void> | null = null;
  private cached: SchedulingHints | null = null;
  private readonly store: Store;
  private readonly clock: Clock;

  constructor(o: { store: Store; clock: Clock }) {
    this.store = o.store;
    this.clock = o.clock;
  }

  /** The worker registered with these slots per queue. */
  declare(workerId: string, queues: Readonly<Record<string, number>>): void {
    this.declared.set(workerId, { ...queues });
    this.cached = null;
  }

  /** The worker detached: its declaration no longer counts (its measured run times stay). */
  forget(workerId: string): void {
    this.declared.delete(workerId);
    this.cached = null;
  }

  leased(assignments: readonly Assignment[]): void {
    const atMs = this.clock.now();
    for (const a of assignments) {
      if (this.leases.size >= LIMITS.hintsLeasesMax) this.leases.delete(this.leases.keys().next().value!);
      this.leases.set(a.attemptId, { workerId: a.workerId, queue: a.queue, atMs });
    }
    if (assignments.length > 0) this.cached = null;
  }

  /** The attempt ended; a completed one's run time, from its lease, is measured. */
  ended(attemptId: string, completed: boolean): void {
    const l = this.leases.get(attemptId);
    if (l === undefined) return;
    this.leases.delete(attemptId);
    this.cached = null;
    if (!completed) return;
    this.runTimes.record(l.workerId, l.queue, this.clock.now() - l.atMs);
    this.cached = null;
  }

  /** Re-reads the pipeline's edges if the last read is older than LIMITS.hintsEdgesRefreshMs; one read at a time. */
  refresh(): Promise<void> {
    const now = this.clock.now();
    if (this.reading !== null) return this.reading;
    if (now - this.edgesReadAtMs < LIMITS.hintsEdgesRefreshMs) return Promise.resolve();
    this.edgesReadAtMs = now;
    this.reading = this.store
      .queueEdges({ sinceMs: now - LIMITS.hintsEdgesWindowMs, sampleMaxJobs: LIMITS.adviceEdgesSampleMaxJobs, maxRows: LIMITS.adviceEdgesMaxRows })
      .then((e) => {
        this.followers = followersFrom(e.edges);
        this.cached = null;
      })
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }

  private leasedAt(): Record<string, Record<string, number[]>> {
    const out: Record<string, Record<string, number[]>> = {};
    for (const l of this.leases.values()) ((out[l.workerId] ??= {})[l.queue] ??= []).push(l.atMs);
    return out;
  }

  hints(): SchedulingHints {
    this.cached ??= {
      followers: this.followers,
      declaredSlots: Object.fromEntries(this.declared),
      runTimeMs: this.runTimes.snapshot(),
      leasedAtMs: this.leasedAt(),
    };
    return this.cached;
  }
}
