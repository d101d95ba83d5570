// The seed's faults as windows in which a worker does no work, for the lower
// bound with faults (docs/simulator.md, "The lower bound"). The faults are
// fixed in time, whatever the scheduler does, so a bound that takes each
// worker's windows away from it still holds for every schedule:
//
// - a `leave` abandons the attempts the worker runs and it is gone until it
//   registers again: no job of it runs across the window's start and ends;
// - a `stall` freezes the worker; longer than a queue's heartbeat timeout
//   plus one sweep, every attempt it holds of that queue is lost before it
//   wakes (as a leave); shorter, its attempts may carry on where they stopped
//   (a pause: no progress in the window, none lost);
// - a `hang` stops progress but keeps the attempts: a pause.
//
// A lost attempt's work is not counted as lost by the pooled arguments (a
// schedule could have left the worker idle instead), only by the per-slot
// ones: a slot's job either ends before a lossy window opens or starts its
// work after it closes.
import type { Fault, Scenario, SimWorker } from './model.ts';

export interface DownWindow {
  fromMs: number;
  toMs: number;
  /** True: an attempt running when the window opens is lost; false: it only pauses. */
  lossy: boolean;
}

/** Per worker, per queue: the windows, earliest first (empty: always up). */
export class Downtime {
  private readonly byWorker = new Map<string, Fault[]>();
  private readonly s: Pick<Scenario, 'queues' | 'settings'>;

  constructor(s: Pick<Scenario, 'queues' | 'settings' | 'faults'>) {
    this.s = s;
    for (const f of [...s.faults].sort((a, b) => a.atMs - b.atMs)) {
      if (!(f.durationMs > 0)) continue;
      const list = this.byWorker.get(f.worker) ?? this.byWorker.set(f.worker, []).get(f.worker)!;
      // The simulator ignores a fault that strikes a worker already down (engine.ts, fault()); at the very
      // instant it comes back, which of the two goes first is left open, so the later fault is not counted.
      const last = list[list.length - 1];
      if (last !== undefined && f.atMs <= last.atMs + last.durationMs) continue;
      list.push(f);
    }
  }

  /** No fault at all: every bound is the fault-free one. */
  get none(): boolean {
    return this.byWorker.size === 0;
  }

  /** When the worker runs nothing of the queue (any queue when none is named: availability only). */
  windows(worker: string, queue?: string): DownWindow[] {
    const faults = this.byWorker.get(worker);
    if (faults === undefined) return [];
    return faults.map((f) => ({ fromMs: f.atMs, toMs: f.atMs + f.durationMs, lossy: queue !== undefined && this.lossy(f, queue) }));
  }

  private lossy(f: Fault, queue: string): boolean {
    if (f.kind === 'leave') return true;
    if (f.kind === 'hang') return false;
    const q = this.s.queues[queue];
    return q !== undefined && f.durationMs > q.heartbeatTimeoutMs + this.s.settings.sweepIntervalMs;
  }
}

export const NO_DOWNTIME = new Downtime({ queues: {}, settings: { heartbeatIntervalMs: 1, sweepIntervalMs: 1, workerOfflineAfterMs: 1, horizonMs: 1 }, faults: [] });

/**
 * The earliest one slot can end its j-th job of `shortestMs` times `factor`
 * each, starting no sooner than `startMs`, when it does no work in the
 * windows: across a lossy window's start no job carries on, across a pause
 * it carries on afterwards. With windows, a job's length is the simulator's
 * (engine.ts, runTimeMs: rounded to the millisecond, at least 1), so that a
 * fraction of a millisecond never moves a job across a window.
 */
export function slotEndMs(startMs: number, j: number, shortestMs: number, factor: number, windows: readonly DownWindow[]): number {
  if (windows.length === 0 || j === 0) return startMs + j * shortestMs * factor;
  const p = Math.max(1, Math.round(shortestMs * factor));
  let t = startMs;
  let left = j;
  // Progress of the job in hand, carried across a pause.
  let carry = 0;
  for (const w of windows) {
    if (w.toMs <= t) continue;
    const total = carry + Math.max(0, w.fromMs - t);
    const fit = Math.floor(total / p);
    if (fit >= left) return t + left * p - carry;
    left -= fit;
    carry = w.lossy ? 0 : total - fit * p;
    t = Math.max(t, w.toMs);
  }
  return t + left * p - carry;
}

/** A worker's rate of work (units over factor) and when it does none. */
export interface Supply {
  rate: number;
  windows: readonly DownWindow[];
}

/**
 * The earliest time by which the workers, from `startMs` on, can have done
 * `workMs` of reference work between them, each at its rate while it is up.
 */
export function workEndMs(startMs: number, workMs: number, supply: readonly Supply[], rateTotal: number): number {
  if (supply.every((s) => s.windows.length === 0)) return startMs + workMs / rateTotal;
  const edges = [...new Set(supply.flatMap((s) => s.windows.flatMap((w) => [w.fromMs, w.toMs])))].filter((e) => e > startMs).sort((a, b) => a - b);
  let t = startMs;
  let left = workMs;
  for (const edge of [...edges, Infinity]) {
    const mid = edge === Infinity ? t + 1 : (t + edge) / 2;
    const rate = supply.reduce((sum, s) => (s.windows.some((w) => w.fromMs <= mid && mid < w.toMs) ? sum : sum + s.rate), 0);
    if (rate > 0 && (edge === Infinity || rate * (edge - t) >= left)) return t + left / rate;
    if (rate > 0) left -= rate * (edge - t);
    t = edge;
  }
  return Infinity;
}

/** Each worker's supply for a class: its units over its factor, and its windows (availability only). */
export function supplyOf(units: Record<string, number>, factor: Record<string, number>, workers: readonly SimWorker[], down: Downtime): Supply[] {
  return workers.filter((w) => units[w.name] !== undefined).map((w) => ({ rate: units[w.name]! / factor[w.name]!, windows: down.windows(w.name) }));
}
