// Time and randomness are injected everywhere, so that scheduling, leases and
// verification run in virtual time in tests and any failure replays from a seed.

import { setTimeout as delay } from 'node:timers/promises';

export type TimerHandle = { readonly id: number };

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** A source of uniform numbers in [0, 1). */
export interface Random {
  next(): number;
}

/** Node fires a timer longer than this (about 24.8 days) at once; longer waits are cut to it and re-armed by their owner. */
export const TIMER_MAX_DELAY_MS = 2_147_483_647;

export const systemClock: Clock = (() => {
  const timers = new Map<number, NodeJS.Timeout>();
  let nextId = 1;
  return {
    now: () => Date.now(),
    setTimeout(fn, delayMs) {
      const id = nextId++;
      const t = setTimeout(() => {
        timers.delete(id);
        fn();
      }, Math.min(TIMER_MAX_DELAY_MS, Math.max(0, delayMs)));
      t.unref?.();
      timers.set(id, t);
      return { id };
    },
    clearTimeout(handle) {
      const t = timers.get(handle.id);
      if (t) clearTimeout(t);
      timers.delete(handle.id);
    },
  };
})();

/**
 * A clock that only moves when told to. Timers fire, in order of due time, as
 * `advance` passes them.
 */
export class VirtualClock implements Clock {
  private nowMs: number;
  private nextId = 1;
  private readonly timers = new Map<number, { dueMs: number; fn: () => void }>();

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { dueMs: this.nowMs + Math.max(0, delayMs), fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle.id);
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance takes a non-negative ms, got ${ms}`);
    const targetMs = this.nowMs + ms;
    for (;;) {
      let dueId = -1;
      let dueMs = Infinity;
      for (const [id, t] of this.timers) {
        if (t.dueMs <= targetMs && t.dueMs < dueMs) {
          dueMs = t.dueMs;
          dueId = id;
        }
      }
      if (dueId < 0) break;
      const timer = this.timers.get(dueId)!;
      this.timers.delete(dueId);
      this.nowMs = Math.max(this.nowMs, timer.dueMs);
      timer.fn();
    }
    this.nowMs = targetMs;
  }

  /**
   * Like advance, but awaits `settle` after each timer fires, so async work a
   * timer starts (a sweep, a dispatch) finishes at the time it was due.
   */
  async advanceAsync(ms: number, settle: () => Promise<void> = () => new Promise((r) => setImmediate(r))): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance takes a non-negative ms, got ${ms}`);
    const targetMs = this.nowMs + ms;
    for (;;) {
      let next: { id: number; dueMs: number } | null = null;
      for (const [id, t] of this.timers) {
        if (t.dueMs <= targetMs && (next === null || t.dueMs < next.dueMs)) next = { id, dueMs: t.dueMs };
      }
      if (next === null) break;
      const timer = this.timers.get(next.id)!;
      this.timers.delete(next.id);
      this.nowMs = Math.max(this.nowMs, timer.dueMs);
      timer.fn();
      await settle();
    }
    this.nowMs = targetMs;
    await settle();
  }

  pendingTimers(): number {
    return this.timers.size;
  }
}

/** Small, fast, seedable generator (sfc32). Same seed, same sequence. */
export function seededRandom(seed: number): Random {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 ^ (seed * 31);
  let c = 0xb7e15162 ^ (seed >>> 3);
  let d = 1;
  const step = (): number => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) step();
  return { next: step };
}

/** Randomness from the operating system's generator. */
export function systemRandom(): Random {
  const buf = new Uint32Array(256);
  let i = buf.length;
  return {
    next() {
      if (i >= buf.length) {
        globalThis.crypto.getRandomValues(buf);
        i = 0;
      }
      return buf[i++]! / 4294967296;
    },
  };
}

/** Waits ms of real time, or less if signal aborts first; never rejects (retry loops that stop on abort). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).then(
    () => undefined,
    () => undefined,
  );
}
