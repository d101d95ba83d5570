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
import type { Assignment, WorkerCapacity, WorkerSpec } from '../types/model.ts';
import type { ClaimReadFor, ClaimReport } from '../store/store.ts';
import { fits } from '../scheduler/index.ts';
import { assert } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';

interface Entry {
  slots: number;
  held: number;
  shape: string;
  /** What it declared, as the scheduler sees an idle worker: a candidate that does not fit this never fits it. */
  declared: WorkerCapacity;
  keys: Set<string>;
  /** Attempts handed to it and ended, since it attached: a heartbeat's count is corrected by what moved while it was stored. */
  deliveredTotal: number;
  endedTotal: number;
}

/** Where a worker's counts stood when a heartbeat arrived (mark()); `of` tells a mark of an earlier attachment apart. */
export interface SlotsMark {
  of: object;
  deliveredTotal: number;
  endedTotal: number;
}

/** The windows of one dispatch pass. */
export interface PassWindows {
  /** Whether windows are cut to the size asked for (a pass then widens them while claims place as many as they hold). */
  readonly bounded: boolean;
  /** Up to `max` workers to claim for next; empty when none is open. */
  next(max: number): string[];
  /** What any open worker could take: a windowed claim reads for all of them (ClaimParams.readFor). */
  readFor(): ClaimReadFor | undefined;
  /** After a claim that did not fill up: whether another window may place more. */
  more(report: ClaimReport): boolean;
}

/** The workers a dispatcher claims for. */
export interface ClaimPool {
  pass(): PassWindows;
}

/** A pool of the given workers, all in every claim (tests and the simulator). */
export function everyWorker(workers: () => readonly string[]): ClaimPool {
  return { pass: () => ({ bounded: false, next: () => [...workers()], readFor: () => undefined, more: () => false }) };
}

/** What one dispatch pass has offered. */
interface Offered {
  ids: Set<string>;
  shapes: Set<string>;
  /** Each offered worker's counts when it was offered (markFull). */
  endedAt: Map<string, SlotsMark>;
}

export class OpenSlots implements ClaimPool {
  private readonly entries = new Map<string, Entry>();
  /** Open workers, least recently offered first (a Set keeps insertion order). */
  private readonly open = new Set<string>();
  /** Open workers by shape, and how many open workers hold each affinity key. */
  private readonly openByShape = new Map<string, Set<string>>();
  private readonly openKeys = new Map<string, number>();
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
    const declared: WorkerCapacity = {
      workerId, labels: spec.labels, keys: new Set(), freeSlots: { ...spec.queues }, totalSlots: slots, usedSlots: 0,
      freeCores: spec.cores, freeMemoryMb: spec.memoryMb, totalCores: spec.cores, totalMemoryMb: spec.memoryMb,
      freeGpuIds: [...spec.gpuIds], blockedQueues: [], speedMs: {},
    };
    this.entries.set(workerId, { slots, held: 0, shape, declared, keys: new Set(spec.keys), deliveredTotal: 0, endedTotal: 0 });
    this.update(workerId);
  }

  detach(workerId: string): void {
    this.close(workerId);
    this.entries.delete(workerId);
  }

  delivered(assignments: readonly Assignment[]): void {
    for (const a of assignments) {
      const e = this.entries.get(a.workerId);
      if (e) e.deliveredTotal++;
      this.adjust(a.workerId, 1);
    }
  }

  /** An attempt of the worker ended (result, failure, revocation, lost lease). */
  ended(workerId: string): void {
    const e = this.entries.get(workerId);
    if (e) e.endedTotal++;
    this.adjust(workerId, -1);
  }

  /** The worker's counts as a heartbeat arrives, for named() once the store has it. */
  mark(workerId: string): SlotsMark | null {
    const e = this.entries.get(workerId);
    return e ? { of: e, deliveredTotal: e.deliveredTotal, endedTotal: e.endedTotal } : null;
  }

  /**
   * The worker named this many attempts in a heartbeat that arrived at
   * `mark`: what it holds, as it says, moved by what was handed to it and
   * what ended while the heartbeat was being stored (without that, a count
   * read before results that landed meanwhile would close a worker with free
   * slots until its next heartbeat). True when that opened it.
   */
  named(workerId: string, count: number, mark: SlotsMark | null): boolean {
    const e = this.entries.get(workerId);
    // A heartbeat of an earlier attachment (the worker reconnected meanwhile) says nothing of this one.
    if (!e || (mark !== null && mark.of !== e)) return false;
    const was = this.open.has(workerId);
    const moved = mark === null ? 0 : e.deliveredTotal - mark.deliveredTotal - (e.endedTotal - mark.endedTotal);
    e.held = Math.max(0, count + moved);
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

  /** The worker's affinity keys changed (a key in both ends up released, as the store has it). */
  keysChanged(workerId: string, hold: readonly string[], release: readonly string[]): void {
    const e = this.entries.get(workerId);
    if (!e) return;
    this.close(workerId);
    for (const k of hold) e.keys.add(k);
    for (const k of release) e.keys.delete(k);
    this.update(workerId);
  }

  /**
   * The store found these workers with no usable free slot (full, slow start,
   * paused, quarantined, not seen lately): closed until something may have
   * changed that, an attempt ending, a heartbeat (which also refreshes when it
   * was last seen), a reopen. `endedAt`: each worker's count of ended
   * attempts when the claim was made for it; attempts that ended since may
   * have ended after the claim read it full (a result settled right behind
   * the claim), so each leaves a slot open.
   */
  markFull(workerIds: readonly string[], endedAt: ReadonlyMap<string, SlotsMark> = new Map()): void {
    for (const id of workerIds) {
      const e = this.entries.get(id);
      const at = endedAt.get(id);
      // Attached again since the claim was made for it: what the claim read was of the earlier attachment.
      if (!e || (at !== undefined && at.of !== e)) continue;
      const endedSince = Math.max(0, e.endedTotal - (at?.endedTotal ?? e.endedTotal));
      e.held = Math.max(e.held, e.slots - endedSince);
      this.update(id);
    }
  }

  pass(): PassWindows {
    const offered: Offered = { ids: new Set(), shapes: new Set(), endedAt: new Map() };
    return {
      bounded: true,
      next: (max) => this.window(max, offered),
      readFor: () => this.readFor(),
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
    if (this.open.has(workerId)) return;
    this.open.add(workerId);
    let same = this.openByShape.get(e.shape);
    if (!same) this.openByShape.set(e.shape, (same = new Set()));
    same.add(workerId);
    for (const k of e.keys) this.openKeys.set(k, (this.openKeys.get(k) ?? 0) + 1);
  }

  private close(workerId: string): void {
    const e = this.entries.get(workerId);
    if (!this.open.delete(workerId) || !e) return;
    for (const k of e.keys) {
      const n = (this.openKeys.get(k) ?? 1) - 1;
      if (n > 0) this.openKeys.set(k, n);
      else this.openKeys.delete(k);
    }
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
      offered.endedAt.set(id, this.mark(id)!);
      offered.shapes.add(this.entries.get(id)!.shape);
      this.open.delete(id);
      this.open.add(id);
    }
    return [...out];
  }

  /** Over every open worker's declaration (one per shape), and the keys they hold. */
  private readFor(): ClaimReadFor {
    const out = { queues: new Set<string>(), maxCores: 0, maxMemoryMb: 0, maxGpus: 0 };
    for (const ids of this.openByShape.values()) {
      const first = ids.values().next();
      if (first.done) continue;
      const d = this.entries.get(first.value)!.declared;
      for (const q of Object.keys(d.freeSlots)) out.queues.add(q);
      out.maxCores = Math.max(out.maxCores, d.freeCores);
      out.maxMemoryMb = Math.max(out.maxMemoryMb, d.freeMemoryMb);
      out.maxGpus = Math.max(out.maxGpus, d.freeGpuIds.length);
    }
    const keys = this.openKeys.size > LIMITS.claimHeldKeysFilterMax ? null : [...this.openKeys.keys()];
    return { ...out, queues: [...out.queues], keys };
  }

  /**
   * Whether another window may place more: the store found workers of this one
   * unusable (now closed, so the next window holds others), or an open worker
   * this pass has not offered could, by what it declared, take a candidate the
   * claim left unplaced.
   */
  private worthAnother(report: ClaimReport, offered: Offered): boolean {
    if (report.unusable.length > 0) this.markFull(report.unusable, offered.endedAt);
    const unoffered = (id: string): boolean => !offered.ids.has(id) && this.eligible(id);
    if (report.unusable.length > 0 && [...this.open].some(unoffered)) return true;
    for (const c of report.unplacedCandidates) {
      const key = c.affinity?.mode === 'require' ? c.affinity.key : null;
      for (const ids of this.openByShape.values()) {
        for (const id of ids) {
          if (!unoffered(id)) continue;
          const e = this.entries.get(id)!;
          if (key !== null && !e.keys.has(key)) continue;
          if (fits(c, { ...e.declared, keys: e.keys, workerId: id })) return true;
          // Alike workers (same shape) that do not need the key either: none fits.
          if (key === null) break;
        }
      }
    }
    return false;
  }
}
