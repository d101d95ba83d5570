// The simulator's clock: a VirtualClock that also knows when its next timer
// falls due (the sweeper's beat, the dispatcher's wake-up), so that the event
// loop can run those timers in order with its own events.
import type { Clock, TimerHandle } from '../types/clock.ts';
import { VirtualClock } from '../types/clock.ts';

export class SimClock implements Clock {
  readonly virtual: VirtualClock;
  /** Due time of every pending timer, by handle id. */
  private readonly due = new Map<number, number>();

  constructor(startMs: number) {
    this.virtual = new VirtualClock(startMs);
  }

  now(): number {
    return this.virtual.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const handle = this.virtual.setTimeout(() => {
      this.due.delete(handle.id);
      fn();
    }, delayMs);
    this.due.set(handle.id, this.now() + Math.max(0, delayMs));
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.due.delete(handle.id);
    this.virtual.clearTimeout(handle);
  }

  /** When the next timer falls due; Infinity when none is pending. */
  nextDueMs(): number {
    let next = Infinity;
    for (const ms of this.due.values()) next = Math.min(next, ms);
    return next;
  }
}
