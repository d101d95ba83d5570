// The dispatcher: claims work for the attached workers that have free slots
// and hands each claim's assignments on. The coordinator drives it for its
// connected workers; the simulator (src/sim) drives the same dispatcher for its
// virtual ones.
//
// A dispatch is asked for with kick(). Kicks coalesce: at most one dispatch
// loop runs at a time, so at most one claim is in flight, and a kick that comes
// while one runs makes the loop run one more pass after the current one. A
// pass claims in batches of LIMITS.claimBatchMaxJobs for windows of at most
// claimWorkersMax workers (open-slots.ts), round after round while a claim
// comes back full or another window may place what the last could not, for at
// most COORDINATOR_DEFAULTS.dispatchMaxRounds rounds. After the loop, `afterLoop` runs (the coordinator arms the wake-up
// for the next delayed job there).
import type { Change, ClaimReport, Store, SweepResult } from '../store/store.ts';
import type { ClaimPool } from './open-slots.ts';
import { COORDINATOR_DEFAULTS, LIMITS } from '../types/limits.ts';
import type { Assignment, PlaceFn } from '../types/model.ts';
import type { Clock } from '../types/clock.ts';

export interface DispatcherOptions {
  store: Store;
  clock: Clock;
  place: PlaceFn;
  /** The workers claims are made for (open-slots.ts); `everyWorker(list)` offers all of them to every claim. */
  pool: ClaimPool;
  /** The shares of the ready jobs this coordinator claims first (shares.ts); absent or null: all alike. */
  share?: () => readonly string[] | null;
  /** Hands on the assignments of one claim (several workers' at once); called before the next claim starts. */
  deliver: (assignments: readonly Assignment[]) => void;
  /** Whether the store may be asked now; while it may not, kicks wait (kick again once it may). Default: always. */
  available?: () => boolean;
  /**
   * Runs at the end of every dispatch loop, inside it; must not reject. Gets
   * the time just before the loop's last claim (null: it made none), from when
   * on a job that becomes ready was not seen by it.
   */
  afterLoop?: (lastClaimAtMs: number | null) => Promise<void>;
  /** A failed pass; the next kick retries it. */
  onError: (err: unknown, msg: string) => void;
}

export class Dispatcher {
  private readonly o: DispatcherOptions;
  private running = false;
  private loop: Promise<void> | null = null;
  private again = false;
  /** Just before the latest claim of the loop in flight. */
  private lastClaimAtMs: number | null = null;
  /** Claims made, and attempts they placed outside this coordinator's share (for metrics and the bench). */
  readonly claims = { count: 0, outsideShare: 0 };

  constructor(options: DispatcherOptions) {
    this.o = options;
  }

  /** Starts taking kicks, and dispatches once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.kick();
  }

  /** Takes no more kicks; a loop in flight ends after its current pass (see idle()). */
  stop(): void {
    this.running = false;
  }

  /** The dispatch loop in flight, or null; it never rejects. */
  current(): Promise<void> | null {
    return this.loop;
  }

  /** Resolves once no dispatch loop runs, including those kicked while waiting. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /** Asks for a dispatch pass; passes never overlap, and a request during one runs another after it. */
  kick(): void {
    if (!this.running) return;
    this.again = true;
    // While the store is away the request waits: the store answering again kicks.
    if (this.loop || !this.isAvailable()) return;
    this.loop = this.runLoop().finally(() => {
      this.loop = null;
      // A kick that landed after the loop's last check must not be lost.
      if (this.again) this.kick();
    });
  }

  /**
   * Call right before awaiting a submit. On a store with group commit, a
   * dispatch started now queues its claim right behind the submit, in the
   * same group commit: the new job is leased in the transaction that stores
   * it, one fsync for both, and its worker hears of it once that commit is
   * done. (With a shared store the claim would run in a separate transaction
   * before the submit commits and find nothing: the kick after the submit
   * serves it.)
   */
  kickWithSubmit(): void {
    if (this.o.store.capabilities.groupCommit) this.kick();
  }

  private isAvailable(): boolean {
    return this.o.available?.() ?? true;
  }

  private async runLoop(): Promise<void> {
    this.lastClaimAtMs = null;
    while (this.again && this.running && this.isAvailable()) {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        this.o.onError(err, 'dispatch pass failed; the next kick retries it');
      }
    }
    try {
      await this.o.afterLoop?.(this.lastClaimAtMs);
    } catch (err) {
      this.o.onError(err, 'after a dispatch loop');
    }
  }

  /**
   * Claims round after round: for the pool's next window of workers, while a
   * claim comes back full, or placed as many attempts as its window had
   * workers (the window widens, up to claimWorkersMax), or the pool says
   * another window may place what this one could not.
   */
  private async pass(): Promise<void> {
    const windows = this.o.pool.pass();
    // A pass starts with a small window (a job submitted to an idle pool reads few workers) and widens it while claims place as many as it holds.
    let size: number = COORDINATOR_DEFAULTS.claimWorkersFirst;
    let placed = 0;
    for (let round = 0; round < COORDINATOR_DEFAULTS.dispatchMaxRounds; round++) {
      const workerIds = windows.next(size);
      if (workerIds.length === 0) return;
      this.lastClaimAtMs = this.o.clock.now();
      const report: ClaimReport = { unplaced: 0, unplacedCandidates: [], unusable: [], outsideShare: 0 };
      const share = this.o.share?.() ?? null;
      const readFor = windows.readFor();
      const assignments = await this.o.store.claim({ workerIds, place: this.o.place, maxJobs: LIMITS.claimBatchMaxJobs, share, report, ...(readFor ? { readFor } : {}) });
      placed = assignments.length;
      this.claims.count++;
      this.claims.outsideShare += report.outsideShare;
      if (assignments.length > 0) this.o.deliver(assignments);
      if (assignments.length >= LIMITS.claimBatchMaxJobs) continue;
      if (windows.bounded && workerIds.length >= size && assignments.length >= workerIds.length && size < COORDINATOR_DEFAULTS.claimWorkersMax) {
        size = Math.min(COORDINATOR_DEFAULTS.claimWorkersMax, size * 4);
        continue;
      }
      if (!windows.more(report)) return;
    }
    // Out of rounds while work was still being placed: another pass follows, after whatever kicked meanwhile.
    if (placed > 0) this.again = true;
  }
}

/**
 * Whether a change may let a claim hand out more: a job back in the queue, or
 * attempts stopped (their slots come free). Whoever applies changes kicks the
 * dispatcher when this holds.
 */
export function freesCapacity(changes: readonly Change[], endedAttempts: SweepResult['endedAttempts'] = []): boolean {
  return endedAttempts.length > 0 || changes.some((c) => c.cancelledAttempts.length > 0 || c.state === 'queued');
}

/** Assignments (or anything else with a worker) grouped by worker, in order of first appearance. */
export function groupByWorker<T extends { workerId: string }>(items: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const list = out.get(item.workerId);
    if (list) list.push(item);
    else out.set(item.workerId, [item]);
  }
  return out;
}
