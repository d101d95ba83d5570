// The sweeper: the timed side of a coordinator, on an injected clock. The
// coordinator drives it on its clock; the simulator (src/sim) drives the same
// sweeper on its virtual clock.
//
// - Sweeps on a fixed beat (sweepIntervalMs): lost leases and run-time
//   timeouts (expireAttempts), then start-by deadlines (expireDeadlines), at
//   most LIMITS.sweepBatchMaxRows rows each per pass; what changed goes to
//   `onSwept`. A beat that comes while the last pass still runs is skipped.
// - Wakes the dispatcher (`onWake`) when the next delayed job becomes ready:
//   armWake() reads store.nextRunAt() and keeps one timer for the earliest.
//   (Delayed jobs need no sweeper: a queued job is claimable once its runAt
//   passes.)
// - Polls (`onPoll`) every pollIntervalMs when the store is shared with other
//   coordinators (store.capabilities.shared), whose changes may raise no
//   wake-up here.
//
// - Rolls the queue history up on its own beat (historySweepIntervalMs):
//   minutes older than historyMinuteRetentionMs into hours, and hours older
//   than historyHourRetentionMs dropped (store.rollUpHistory), batch after
//   batch while batches come back full, at most historyRollUpMaxBatches.
// - Deletes finished jobs past their queue's retention and prunes worker
//   records that hold nothing, on its own beat (retentionSweepIntervalMs),
//   in short batches (retention.ts).
//
// - Asks for speculative backups on its own beat (speculation.intervalMs):
//   store.speculate with each queue's settings; what it asked for goes to
//   `onSpeculated`, so that the dispatcher places the backups.
//
// While `available` says the store is away, beats come and go without asking it.
import type { SpeculationSettings } from '../scheduler/speculation.ts';
import type { SpeculateResult, Store, SweepResult } from '../store/store.ts';
import { TIMER_MAX_DELAY_MS, type Clock, type TimerHandle } from '../types/clock.ts';
import { COORDINATOR_DEFAULTS, LIMITS, SPECULATION_DEFAULTS } from '../types/limits.ts';
import { RetentionSweep, type RetentionOptions, type RetentionSweepResult } from './retention.ts';

export interface SweeperOptions {
  store: Store;
  clock: Clock;
  /** Default: COORDINATOR_DEFAULTS.sweepIntervalMs. */
  sweepIntervalMs?: number;
  /**
   * How often to poll; null: never. Default: COORDINATOR_DEFAULTS.pollIntervalMs
   * with a shared store, null otherwise.
   */
  pollIntervalMs?: number | null;
  /** Whether the store may be asked now. Default: always. */
  available?: () => boolean;
  /** What one sweep pass changed: jobs whose state moved, attempts it ended. */
  onSwept: (result: SweepResult) => void;
  /** The earliest delayed job is ready now. */
  onWake: () => void;
  /** A poll beat (shared store only), while the store is available. */
  onPoll?: () => void;
  /** Default: COORDINATOR_DEFAULTS.historySweepIntervalMs. */
  historySweepIntervalMs?: number;
  /** Default: COORDINATOR_DEFAULTS.retentionSweepIntervalMs. */
  retentionSweepIntervalMs?: number;
  /** Which retention applies to which queue, and how long idle worker records are kept. */
  retention?: RetentionOptions;
  /** Speculative backups: each queue's settings, the share bound and the beat; left out, no backups. */
  speculation?: SweeperSpeculation;
  /** What a speculation pass asked for (only when it asked for some). */
  onSpeculated?: (result: SpeculateResult) => void;
  /** A failed store call; the next beat (or dispatch loop) retries it. */
  onError: (err: unknown, msg: string) => void;
}

export interface SweeperSpeculation {
  settings: (queue: string) => SpeculationSettings;
  /** Default SPECULATION_DEFAULTS.shareMax. */
  shareMax?: number;
  /** Default SPECULATION_DEFAULTS.intervalMs. */
  intervalMs?: number;
}

export class Sweeper {
  private readonly o: SweeperOptions;
  private readonly sweepIntervalMs: number;
  private readonly pollIntervalMs: number | null;
  private running = false;
  private readonly sweepBeat: Beat;
  private readonly historyBeat: Beat;
  private readonly retentionBeat: Beat;
  private readonly speculationBeat: Beat | null;
  private readonly retention: RetentionSweep;
  private pollTimer: TimerHandle | null = null;
  private wakeTimer: { handle: TimerHandle; atMs: number } | null = null;

  constructor(options: SweeperOptions) {
    this.o = options;
    this.sweepIntervalMs = options.sweepIntervalMs ?? COORDINATOR_DEFAULTS.sweepIntervalMs;
    this.pollIntervalMs =
      options.pollIntervalMs !== undefined ? options.pollIntervalMs : options.store.capabilities.shared ? COORDINATOR_DEFAULTS.pollIntervalMs : null;
    const may = (): boolean => this.running && this.isAvailable();
    this.sweepBeat = new Beat(options.clock, this.sweepIntervalMs, may, () => this.sweep(), (err) =>
      options.onError(err, 'sweep failed; the next one retries it'),
    );
    this.historyBeat = new Beat(options.clock, options.historySweepIntervalMs ?? COORDINATOR_DEFAULTS.historySweepIntervalMs, may, () => this.rollUpHistory(), (err) =>
      options.onError(err, 'rolling up the queue history failed; the next beat retries it'),
    );
    this.retention = new RetentionSweep(options.store, options.clock, options.retention);
    const retentionMs = options.retentionSweepIntervalMs ?? COORDINATOR_DEFAULTS.retentionSweepIntervalMs;
    this.retentionBeat = new Beat(options.clock, retentionMs, may, () => this.sweepRetention(), (err) =>
      options.onError(err, 'the retention sweep failed; the next beat retries it'),
    );
    const spec = options.speculation;
    this.speculationBeat =
      spec === undefined
        ? null
        : new Beat(options.clock, spec.intervalMs ?? SPECULATION_DEFAULTS.intervalMs, may, () => this.speculate(), (err) =>
            options.onError(err, 'looking for attempts to back up failed; the next beat looks again'),
          );
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.sweepBeat.start();
    this.schedulePoll();
    this.historyBeat.start();
    this.retentionBeat.start();
    this.speculationBeat?.start();
  }

  /** Clears every timer; a sweep pass in flight runs to its end (see current()). */
  stop(): void {
    this.running = false;
    this.sweepBeat.stop();
    this.historyBeat.stop();
    this.retentionBeat.stop();
    this.speculationBeat?.stop();
    for (const t of [this.pollTimer, this.wakeTimer?.handle]) if (t) this.o.clock.clearTimeout(t);
    this.pollTimer = null;
    this.wakeTimer = null;
  }

  /** The sweep pass (history roll-up, retention sweep) a beat started and that still runs, or null; it never rejects. */
  current(): Promise<void> | null {
    const passes = [this.sweepBeat.pass, this.historyBeat.pass, this.retentionBeat.pass, this.speculationBeat?.pass ?? null].filter((p) => p !== null);
    return passes.length === 0 ? null : Promise.all(passes).then(() => undefined);
  }

  /** One retention sweep now (the sweeper also runs one on its beat): finished jobs past their retention, idle worker records. */
  sweepRetention(): Promise<RetentionSweepResult> {
    return this.retention.run();
  }

  /**
   * Rolls old history minutes up into hours and drops old hours, batch after
   * batch while a batch comes back full (at most historyRollUpMaxBatches).
   * Safe on every coordinator at once: the store deletes each minute row in
   * the statement that returns it for rolling up, so it is added once.
   */
  async rollUpHistory(): Promise<{ rolledUpMinutes: number; droppedHours: number }> {
    const total = { rolledUpMinutes: 0, droppedHours: 0 };
    for (let i = 0; i < LIMITS.historyRollUpMaxBatches; i++) {
      const now = this.o.clock.now();
      const out = await this.o.store.rollUpHistory({
        minutesBeforeMs: now - COORDINATOR_DEFAULTS.historyMinuteRetentionMs,
        hoursBeforeMs: now - COORDINATOR_DEFAULTS.historyHourRetentionMs,
        limit: LIMITS.sweepBatchMaxRows,
      });
      total.rolledUpMinutes += out.rolledUpMinutes;
      total.droppedHours += out.droppedHours;
      if (out.rolledUpMinutes < LIMITS.sweepBatchMaxRows && out.droppedHours < LIMITS.sweepBatchMaxRows) break;
    }
    return total;
  }

  /**
   * One pass of every sweeper: lost leases, run-time timeouts, deadlines; hands
   * the result to onSwept, then returns it.
   *
   * With several coordinators on one store, every coordinator sweeps, at the
   * same time if it happens, rather than one holding a lease on the sweepers.
   * That is safe because each sweeper ends a row only through a guarded update
   * inside one transaction: an attempt only while it is still live and still
   * past its lease or run time (the store locks its job's row first), an
   * overdue job only from a state it may leave (PostgreSQL: FOR UPDATE SKIP
   * LOCKED). When two coordinators pick the same expired attempt, one ends it
   * and the other's update matches nothing and reports nothing, so no attempt
   * is counted lost twice and no job is retried twice
   * (src/coordinator/shared-store.test.ts runs the sweepers of three
   * coordinators at once on PostgreSQL and checks exactly that). A sweeper
   * lease would add a failover gap (nothing swept until the dead holder's lease
   * runs out), a table, and one more thing to get wrong; sweeping everywhere
   * costs each coordinator two indexed queries per sweepIntervalMs.
   * Leases are judged by each coordinator's own clock: keep the clocks of the
   * coordinators' machines in step (NTP), as a skew of S shortens leases by S.
   */
  async sweep(): Promise<SweepResult> {
    const attempts = await this.o.store.expireAttempts({ limit: LIMITS.sweepBatchMaxRows });
    const deadlines = await this.o.store.expireDeadlines({ limit: LIMITS.sweepBatchMaxRows });
    const result = { changes: [...attempts.changes, ...deadlines.changes], endedAttempts: attempts.endedAttempts };
    this.o.onSwept(result);
    return result;
  }

  /** One speculation pass (the sweeper also runs one on its beat): backups for slow or late attempts; see engine/speculate.ts. */
  async speculate(): Promise<SpeculateResult> {
    const spec = this.o.speculation;
    if (spec === undefined) return { backups: [] };
    const result = await this.o.store.speculate({ settings: spec.settings, shareMax: spec.shareMax ?? SPECULATION_DEFAULTS.shareMax });
    if (result.backups.length > 0) this.o.onSpeculated?.(result);
    return result;
  }

  /**
   * Arms the wake-up for the next delayed job, unless one is armed for that
   * time or earlier; never rejects. A wake-up further off than a timer can
   * wait (TIMER_MAX_DELAY_MS, about 24.8 days) fires early: the dispatch it
   * asks for ends by arming it again.
   */
  async armWake(afterMs: number | null = null): Promise<void> {
    if (!this.running) return;
    let next: number | null;
    try {
      next = await this.o.store.nextRunAt(afterMs === null ? {} : { afterMs });
    } catch (err) {
      this.o.onError(err, 'reading the next delayed job failed; the next dispatch pass reads it again');
      return;
    }
    if (next === null || !this.running) return;
    if (this.wakeTimer && this.wakeTimer.atMs <= next) return;
    if (this.wakeTimer) this.o.clock.clearTimeout(this.wakeTimer.handle);
    // A job that became ready since the last claim is due now: the timer fires at once.
    const delayMs = Math.max(0, Math.min(TIMER_MAX_DELAY_MS, next - this.o.clock.now()));
    const handle = this.o.clock.setTimeout(() => {
      this.wakeTimer = null;
      this.o.onWake();
    }, delayMs);
    this.wakeTimer = { handle, atMs: next };
  }

  /** On a fixed beat (shared store): onPoll, while the store is available. */
  private schedulePoll(): void {
    const intervalMs = this.pollIntervalMs;
    if (!this.running || intervalMs === null) return;
    this.pollTimer = this.o.clock.setTimeout(() => {
      this.schedulePoll();
      if (!this.isAvailable()) return;
      this.o.onPoll?.();
    }, intervalMs);
  }

  private isAvailable(): boolean {
    return this.o.available?.() ?? true;
  }
}

/**
 * Work on a fixed beat: each beat arms the next, and runs the work unless the
 * last run still runs or `may` says no (stopped, or the store away). A failed
 * run goes to onError; the next beat tries again.
 */
class Beat {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly may: () => boolean;
  private readonly work: () => Promise<unknown>;
  private readonly onError: (err: unknown) => void;
  private timer: TimerHandle | null = null;
  private on = false;
  /** The run a beat started that still runs, or null; it never rejects. */
  pass: Promise<void> | null = null;

  constructor(clock: Clock, intervalMs: number, may: () => boolean, work: () => Promise<unknown>, onError: (err: unknown) => void) {
    this.clock = clock;
    this.intervalMs = intervalMs;
    this.may = may;
    this.work = work;
    this.onError = onError;
  }

  start(): void {
    this.on = true;
    this.arm();
  }

  stop(): void {
    this.on = false;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (!this.on) return;
    this.timer = this.clock.setTimeout(() => {
      this.arm();
      if (this.pass || !this.may()) return;
      this.pass = this.work().then(() => undefined, this.onError).finally(() => {
        this.pass = null;
      });
    }, this.intervalMs);
  }
}
