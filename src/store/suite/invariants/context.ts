// What a backend gets to open one store for one run of an invariant property.
import type { TrustPolicy } from '../../../trust/index.ts';
import type { Random, VirtualClock } from '../../../types/clock.ts';
import type { Store } from '../../store.ts';

/** What a backend gets to open one store for one run. */
export interface StoreContext {
  /** The run's clock: the store must take time from it. */
  clock: VirtualClock;
  /** The run's random source, seeded from the run: the store must draw from it. */
  random: Random;
  /** Unique per run and stable within it: a restart opens the store again with the same context. */
  name: string;
  /** Registers clean-up (a temp file, a schema) to run after the run's store is closed. */
  defer(fn: () => Promise<void> | void): void;
  /** Trust policy the store must use: thresholds low enough that short runs reach quarantine and adaptive replication. */
  trust: Partial<TrustPolicy>;
}

export type OpenStore = (ctx: StoreContext) => Promise<Store>;
