// Shares of the ready jobs among coordinators sharing one database, by
// weighted rendezvous (highest-random-weight) hashing: each of the 1,024
// shares (src/types/shares.ts) goes to the coordinator with the highest
// score -weight / ln(u), u a hash of the share and the coordinator's id in
// (0, 1). Each coordinator thus owns shares in proportion to its weight (the
// slots of its workers), and when one leaves or joins only the shares it
// held or takes move; every other share stays where it was.
//
// Membership keeps this coordinator's row beating in the store and its share
// up to date. Only stores shared by several coordinators (PostgreSQL) have
// members; on SQLite there is one coordinator and no share.
import type { CoordinatorBeat, Store } from '../store/store.ts';
import type { Clock, TimerHandle } from '../types/clock.ts';
import { assert } from '../types/errors.ts';
import { COORDINATOR_DEFAULTS } from '../types/limits.ts';
import { ALL_SHARES } from '../types/shares.ts';
import { unitHash } from '../types/hash.ts';

export { unitHash };

/** The shares `me` owns among `members`; null when it owns all (alone, or no one else beats). */
export function sharesOf(me: string, members: readonly Pick<CoordinatorBeat, 'id' | 'weight'>[]): string[] | null {
  const others = members.filter((m) => m.id !== me);
  if (others.length === 0) return null;
  const all = [...others, { id: me, weight: members.find((m) => m.id === me)?.weight ?? 0 }];
  // Nobody has workers yet: equal weights, so that the split is ready when they come.
  const weightless = all.every((m) => m.weight <= 0);
  const owned: string[] = [];
  for (const share of ALL_SHARES) {
    let best = '';
    let bestScore = -Infinity;
    for (const m of all) {
      const w = weightless ? 1 : m.weight;
      if (w <= 0) continue;
      const score = -w / Math.log(unitHash(`${share}:${m.id}`));
      if (score > bestScore || (score === bestScore && m.id < best)) {
        best = m.id;
        bestScore = score;
      }
    }
    if (best === me) owned.push(share);
  }
  return owned;
}

export interface MembershipOptions {
  store: Store;
  clock: Clock;
  /** This coordinator's id in the coordinators table. */
  id: string;
  /** Its weight now: the slots of its attached workers. */
  weight: () => number;
  /** The share changed (the dispatcher may now claim other jobs first). */
  onChange?: () => void;
  onError: (err: unknown, msg: string) => void;
}

/** Beats every coordinatorBeatIntervalMs and keeps this coordinator's share; never rejects. */
export class Membership {
  private readonly o: MembershipOptions;
  private timer: TimerHandle | null = null;
  private running = false;
  private beating: Promise<void> | null = null;
  private lastBeatAtMs = -Infinity;
  /** A wake-up came during a beat: another follows it. */
  private again = false;
  private soon: TimerHandle | null = null;
  private owned: readonly string[] | null = null;
  /** The coordinators seen at the last beat, by id. */
  members: readonly CoordinatorBeat[] = [];

  constructor(options: MembershipOptions) {
    this.o = options;
  }

  /** The shares this coordinator claims first; null: all alike. */
  share(): readonly string[] | null {
    return this.owned;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.refresh();
  }

  /**
   * A wake-up (someone may have left): beats again once coordinatorRefreshMinIntervalMs
   * has passed since the last beat began, and after a beat in flight (it may have read the leaver's row).
   */
  refreshSoon(): void {
    if (!this.running) return;
    if (this.beating) {
      this.again = true;
      return;
    }
    const waitMs = this.lastBeatAtMs + COORDINATOR_DEFAULTS.coordinatorRefreshMinIntervalMs - this.o.clock.now();
    if (waitMs <= 0) return this.refresh();
    if (this.soon) return;
    this.soon = this.o.clock.setTimeout(() => {
      this.soon = null;
      this.refresh();
    }, waitMs);
  }

  /** Stops beating and deletes its row, so that the others take its share at once. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    if (this.soon) this.o.clock.clearTimeout(this.soon);
    this.timer = null;
    this.soon = null;
    await this.beating;
    try {
      await this.o.store.leaveCoordinator({ id: this.o.id });
    } catch (err) {
      this.o.onError(err, 'leaving the coordinators table failed; the others take this share once its row is stale');
    }
  }

  /** Beats now and resolves once the share is known (start-up in tests and the bench). */
  async beatNow(): Promise<void> {
    await this.beating;
    await this.beat();
  }

  private refresh(): void {
    if (!this.running || this.beating) return;
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    this.beating = this.beat().finally(() => {
      this.beating = null;
      if (!this.running) return;
      if (this.again) {
        this.again = false;
        return this.refreshSoon();
      }
      this.timer = this.o.clock.setTimeout(() => this.refresh(), COORDINATOR_DEFAULTS.coordinatorBeatIntervalMs);
    });
  }

  private async beat(): Promise<void> {
    this.lastBeatAtMs = this.o.clock.now();
    try {
      const weight = this.o.weight();
      assert(Number.isSafeInteger(weight) && weight >= 0, `a coordinator's weight is a whole number >= 0 (got ${weight})`);
      this.members = await this.o.store.beatCoordinator({ id: this.o.id, weight, aliveWithinMs: COORDINATOR_DEFAULTS.coordinatorAliveWithinMs });
      const next = sharesOf(this.o.id, this.members);
      const changed = (next === null) !== (this.owned === null) || next?.join() !== this.owned?.join();
      this.owned = next;
      if (changed) this.o.onChange?.();
    } catch (err) {
      // Keeps the share it had: claims read the other shares whenever their own runs dry.
      this.o.onError(err, 'beating in the coordinators table failed; the share stays as it was');
    }
  }
}
