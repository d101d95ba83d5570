// Which attached workers may have a free slot, so that a claim is made for
// them only, at most claimWorkersMax at a time, and costs the same in a pool
// of ten thousand as in one of a thousand: a pull scheduler knows who asked.
//
// The count of attempts each worker holds is the coordinator's belief: up by
// what a claim handed it, down by each result, failure, revocation or lost
// lease, and reset to what the worker names in each heartbeat. The store still
// decides every claim from the rows: a worker believed open that is not
// (slow start, a revoked attempt still stopping) just gets nothing, and a
// wrong belief lasts until the worker's next heartbeat at most.
//
// Workers are offered least recently offered first. A dispatch pass goes on to
// further windows while its claims fill up, left candidates unplaced, or some
// open worker of another shape (queues, labels, size) or holding affinity
// keys was not offered yet: a job such a worker alone can take is not even
// read by a claim made for the others.
import type { Assignment, WorkerSpec } from '../types/model.ts';
import type { ClaimReport } from '../store/store.ts';
import { assert } from '../types/errors.ts';

interface Entry {
  slots: number;
  held: number;
  shape: string;
  keys: boolean;
}

/** The windows of one dispatch pass. */
export interface PassWindows {
  /** Whether windows are cut to the size asked for (a pass then widens them while claims place as many as they hold). */
  readonly bounded: boolean;
  /** Up to `max` workers to claim for next; empty when none is open. */
  next(max: number): string[];
  /** After a claim that did not fill up: whether another window may place more. */
  more(report: ClaimReport): boolean;
}

/** The workers a dispatcher claims for. */
export interface ClaimPool {
  pass(): PassWindows;
}

/** A pool of the given workers, all in every claim (tests and the simulator). */
export function everyWorker(workers: () => readonly string[]): ClaimPool {
  return { pass: () => ({ bounded: false, next: () => [...workers()], more: () => false }) };
}

/** What one dispatch pass has offered. */
interface Offered {
  ids: Set<string>;
  shapes: Set<string>;
}

export class OpenSlots implements ClaimPool {
  private readonly entries = new Map<string, Entry>();
  /** Open workers, least recently offered first (a Set keeps insertion order). */
  private readonly open = new Set<string>();
  /** Open workers by shape, and those holding affinity keys. */
  private readonly openByShape = new Map<string, Set<string>>();
  private readonly openWithKeys = new Set<string>();
  private readonly eligible: (workerId: string) => boolean;

  /** `eligible`: whether a worker may be claimed for now (attached, not draining). */
  constructor(eligible: (workerId: string) => boolean) {
    this.eligible = eligible;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The slots the tracked workers declare, in all. */
  get slots(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.slots;
    return n;
  }

  /** Open workers now (for metrics and tests). */
  get openCount(): number {
    return this.open.size;
  }

  attach(workerId: string, spec: WorkerSpec): void {
    this.detach(workerId);
    const slots = Object.values(spec.queues).reduce((a, b) => a + b, 0);
    const shape = JSON.stringify([Object.keys(spec.queues).sort(), spec.labels, spec.cores, spec.memoryMb, spec.gpuIds.length]);
    this.entries.set(workerId, { slots, held: 0, shape, keys: spec.keys.length > 0 });
    this.update(workerId);
  }

  detach(workerId: string): void {
    this.close(workerId);
    this.entries.delete(workerId);
  }

  delivered(assignments: readonly Assignment[]): void {
    for (const a of assignments) this.adjust(a.workerId, 1);
  }

  /** An attempt of the worker ended (result, failure, revocation, lost lease). */
  ended(workerId: string): void {
    this.adjust(workerId, -1);
  }

  /** The worker named this many attempts in a heartbeat: what it holds, as it says. True when that opened it. */
  named(workerId: string, count: number): boolean {
    const e = this.entries.get(workerId);
    if (!e) return false;
    const was = this.open.has(workerId);
    e.held = count;
    this.update(workerId);
    return !was && this.open.has(workerId);
  }

  /** Something may have freed room on the worker the counts do not see (revoked attempts released, a queue resumed). */
  reopen(workerId: string): void {
    const e = this.entries.get(workerId);
    if (!e) return;
    e.held = Math.min(e.held, Math.max(0, e.slots - 1));
    this.update(workerId);
  }

  /** The worker now holds affinity keys. */
  holdsKeys(workerId: string): void {
    const e = this.entries.get(workerId);
    if (!e) return;
    e.keys = true;
    this.update(workerId);
  }

  pass(): PassWindows {
    const offered: Offered = { ids: new Set(), shapes: new Set() };
    return {
      bounded: true,
      next: (max) => this.window(max, offered),
      more: (report) => this.worthAnother(report, offered),
    };
  }

  private adjust(workerId: string, by: number): void {
    const e = this.entries.get(workerId);
    if (!e) return;
    e.held = Math.max(0, e.held + by);
    this.update(workerId);
  }

  private update(workerId: string): void {
    const e = this.entries.get(workerId);
    assert(e !== undefined, `worker ${workerId} is tracked`);
    if (e.held >= e.slots) return this.close(workerId);
    if (!this.open.has(workerId)) this.open.add(workerId);
    let same = this.openByShape.get(e.shape);
    if (!same) this.openByShape.set(e.shape, (same = new Set()));
    same.add(workerId);
    if (e.keys) this.openWithKeys.add(workerId);
  }

  private close(workerId: string): void {
    const e = this.entries.get(workerId);
    this.open.delete(workerId);
    this.openWithKeys.delete(workerId);
    if (!e) return;
    const same = this.openByShape.get(e.shape);
    same?.delete(workerId);
    if (same?.size === 0) this.openByShape.delete(e.shape);
  }

  /**
   * One worker of each shape this pass has not offered, then the least
   * recently offered open workers not offered in this pass, then (after a
   * claim that filled up) those offered already; each moves to the back.
   */
  private window(max: number, offered: Offered): string[] {
    assert(max > 0, `a claim window holds at least one worker (got ${max})`);
    const out = new Set<string>();
    // Each shape's least recently offered worker (the scan stops once every shape not yet offered has one).
    let shapesLeft = [...this.openByShape.keys()].filter((shape) => !offered.shapes.has(shape)).length;
    const represented = new Set<string>();
    for (const id of this.open) {
      if (shapesLeft === 0 || out.size >= max) break;
      const shape = this.entries.get(id)!.shape;
      if (offered.shapes.has(shape) || represented.has(shape) || offered.ids.has(id) || !this.eligible(id)) continue;
      represented.add(shape);
      shapesLeft--;
      out.add(id);
    }
    for (const pick of [(id: string) => !offered.ids.has(id), (id: string) => offered.ids.has(id)]) {
      for (const id of this.open) {
        if (out.size >= max) break;
        if (!out.has(id) && pick(id) && this.eligible(id)) out.add(id);
      }
    }
    for (const id of out) {
      offered.ids.add(id);
      offered.shapes.add(this.entries.get(id)!.shape);
      this.open.delete(id);
      this.open.add(id);
    }
    return [...out];
  }

  /** Whether an open, eligible worker this pass has not offered could place what its claims could not. */
  private worthAnother(report: ClaimReport, offered: Offered): boolean {
    const unoffered = (id: string): boolean => !offered.ids.has(id) && this.eligible(id);
    if (report.unplaced > 0) {
      for (const id of this.open) if (unoffered(id)) return true;
      return false;
    }
    for (const [shape, ids] of this.openByShape) {
      if (!offered.shapes.has(shape) && [...ids].some(unoffered)) return true;
    }
    for (const id of this.openWithKeys) if (unoffered(id)) return true;
    return false;
  }
}
