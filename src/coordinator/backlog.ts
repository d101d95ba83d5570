// The backlog keeper: for each queue with [queues.NAME.backlog], it asks the
// store every backlogIntervalMs (and soon after it hands out a filler job) to
// top the queue's filler jobs up to their target. The rule, and what keeps
// coordinators sharing one database to one backlog, is the store's
// (store/engine/backlog.ts); this only decides when to ask. Passes never
// overlap: a kick during one runs another after it.
import type { Store, TopUpBacklogResult } from '../store/store.ts';
import type { Clock, TimerHandle } from '../types/clock.ts';
import { COORDINATOR_DEFAULTS } from '../types/limits.ts';
import type { NewJob } from '../types/model.ts';

/** One queue's backlog: its target and the filler job it is made of. */
export interface Backlog {
  target: number;
  job: NewJob;
}

export interface BacklogKeeperOptions {
  store: Store;
  clock: Clock;
  /** Per queue; empty: the keeper does nothing. */
  backlogs: ReadonlyMap<string, Backlog>;
  /** Default: COORDINATOR_DEFAULTS.backlogIntervalMs. */
  intervalMs?: number;
  /** Whether the store may be asked now; while it may not, passes are skipped. */
  available: () => boolean;
  onTopUp: (result: TopUpBacklogResult) => void;
  onError: (err: unknown, msg: string) => void;
}

export class BacklogKeeper {
  private readonly o: BacklogKeeperOptions;
  private readonly intervalMs: number;
  private timer: TimerHandle | null = null;
  private pass: Promise<void> | null = null;
  private again = false;
  private running = false;

  constructor(options: BacklogKeeperOptions) {
    this.o = options;
    this.intervalMs = options.intervalMs ?? COORDINATOR_DEFAULTS.backlogIntervalMs;
  }

  /** True when some queue has a backlog. */
  get active(): boolean {
    return this.o.backlogs.size > 0;
  }

  /** Whether `queue` has a backlog: handing out its jobs calls for a top-up. */
  keeps(queue: string): boolean {
    return this.o.backlogs.has(queue);
  }

  start(): void {
    if (this.running || !this.active) return;
    this.running = true;
    this.kick();
  }

  stop(): void {
    this.running = false;
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** The pass in flight, or null; it never rejects. */
  current(): Promise<void> | null {
    return this.pass;
  }

  /** Asks for a pass now (after the one in flight, if any). */
  kick(): void {
    if (!this.running) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    this.pass = this.run().finally(() => {
      this.pass = null;
      if (!this.running) return;
      if (this.again) {
        this.again = false;
        this.kick();
      } else this.timer = this.o.clock.setTimeout(() => ((this.timer = null), this.kick()), this.intervalMs);
    });
  }

  /** One top-up of every backlog, queue by queue; what each made or cancelled goes to onTopUp. */
  async topUp(): Promise<TopUpBacklogResult[]> {
    const out: TopUpBacklogResult[] = [];
    for (const [queue, b] of this.o.backlogs) {
      const result = await this.o.store.topUpBacklog({ queue, target: b.target, job: b.job });
      this.o.onTopUp(result);
      out.push(result);
    }
    return out;
  }

  private async run(): Promise<void> {
    if (!this.o.available()) return;
    try {
      await this.topUp();
    } catch (err) {
      this.o.onError(err, 'topping up a backlog failed');
    }
  }
}
