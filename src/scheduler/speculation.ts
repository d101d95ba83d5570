// Speculative backups, decided: which running attempts get one backup attempt
// on another worker. Pure: the store reads the inputs (speculate.ts in its
// engine) and writes what this returns; the simulator runs the same store.
//
// Two rules, per queue that has speculation on:
// - slow (Spark's TaskSetManager.checkSpeculatableTasks): once `quantile` of
//   the queue's recent jobs have finished, an attempt running longer than
//   `multiplier` times the median run time of the queue's recent completed
//   attempts (and at least minRunMs) gets a backup.
// - deadline: a job's deadline is when it must start, so it is due one median
//   run time after it. An attempt whose projected finish is past that, while a
//   backup started now would finish by it, gets a backup. The projected finish
//   is the elapsed time over the reported progress fraction when there is one
//   (a fraction still 0 once the queue's quickest run had finished: never);
//   else the median of the measured runs that lasted at least as long as this
//   one has (none that long: it is past every run measured, and late).
// Bounded: never a backup of a backup, at most one per attempt, none for a job
// that waits for an attempt already, and the live backups stay within
// max(backupsMin, shareMax of the live attempts) (Hadoop's cap); the most
// pressing go first (deadline before slow, then the earliest due, the longest over).
import { assert } from '../types/errors.ts';
import type { BackupReason } from '../types/model.ts';

export interface SpeculationSettings {
  /** False: no attempt of the queue gets a backup. */
  enabled: boolean;
  /** Share (0 to 1) of the queue's recent jobs that must have finished before the slow rule applies. */
  quantile: number;
  /** The slow rule's threshold, in median run times. */
  multiplier: number;
}

/** What the queue's recent work says. */
export interface QueueRuns {
  queue: string;
  /** Run times (finished - leased) of its newest completed attempts, ascending. */
  runTimesMs: readonly number[];
  /** Its newest jobs (by id) and how many of them have finished. */
  recentJobs: number;
  recentFinished: number;
}

/** A live attempt that may get a backup: not a backup itself, never backed up, its job wanting no other attempt. */
export interface RunningAttempt {
  attemptId: string;
  jobId: string;
  queue: string;
  leasedAt: number;
  /** The progress fraction (0 to 1) its worker reported, or null. */
  progress: number | null;
  /** The job's start-by deadline, or null. */
  deadline: number | null;
}

export interface SpeculationInput {
  now: number;
  settings: (queue: string) => SpeculationSettings;
  queues: readonly QueueRuns[];
  /** Oldest first within each queue. */
  attempts: readonly RunningAttempt[];
  /** Live attempts over all queues, and those of them that are backups (with the backups asked for and not yet placed). */
  liveAttempts: number;
  backups: number;
  shareMax: number;
  backupsMin: number;
  minRunMs: number;
  /** Fewest measured runs a queue needs before any rule applies. */
  runsMin: number;
}

export interface BackupDecision {
  attemptId: string;
  jobId: string;
  reason: BackupReason;
}

/** The backups to start now, most pressing first, within the share bound. */
export function decideBackups(input: SpeculationInput): BackupDecision[] {
  const runs = new Map(input.queues.map((q) => [q.queue, q]));
  const found: (BackupDecision & { rank: number })[] = [];
  // rank: a deadline backup's due time, a slow one's run time over its threshold (negated, so the furthest over goes first).
  for (const a of input.attempts) {
    const q = runs.get(a.queue);
    const settings = input.settings(a.queue);
    if (q === undefined || !settings.enabled || q.runTimesMs.length < Math.max(1, input.runsMin)) continue;
    const verdict = judge(a, q, settings, input);
    if (verdict !== null) found.push({ attemptId: a.attemptId, jobId: a.jobId, ...verdict });
  }
  found.sort((x, y) => Number(x.reason === 'slow') - Number(y.reason === 'slow') || x.rank - y.rank || (x.attemptId < y.attemptId ? -1 : 1));
  const room = Math.max(0, backupCap(input.liveAttempts, input.shareMax, input.backupsMin) - input.backups);
  const seen = new Set<string>();
  const out: BackupDecision[] = [];
  for (const f of found) {
    if (out.length >= room) break;
    // One backup per job at a time: the job row holds one that is asked for and not yet placed.
    if (seen.has(f.jobId)) continue;
    seen.add(f.jobId);
    out.push({ attemptId: f.attemptId, jobId: f.jobId, reason: f.reason });
  }
  assert(out.length === 0 || input.backups + out.length <= backupCap(input.liveAttempts, input.shareMax, input.backupsMin), 'backups stay within their share');
  return out;
}

/** Most backups that may be live (or asked for) with this many live attempts. */
export function backupCap(liveAttempts: number, shareMax: number, backupsMin: number): number {
  return Math.max(backupsMin, Math.floor(shareMax * liveAttempts));
}

/** Whether the attempt gets a backup, and why. */
function judge(a: RunningAttempt, q: QueueRuns, s: SpeculationSettings, input: SpeculationInput): { reason: BackupReason; rank: number } | null {
  const elapsed = input.now - a.leasedAt;
  if (elapsed < input.minRunMs) return null;
  const median = medianOf(q.runTimesMs);
  if (a.deadline !== null) {
    const dueAt = a.deadline + median;
    if (projectedFinish(a, elapsed, q.runTimesMs) > dueAt && input.now + median <= dueAt) return { reason: 'deadline', rank: dueAt };
  }
  const threshold = Math.max(s.multiplier * median, input.minRunMs);
  const gate = Math.max(1, Math.floor(s.quantile * q.recentJobs));
  if (q.recentFinished >= gate && elapsed > threshold) return { reason: 'slow', rank: -elapsed / threshold };
  return null;
}

/** Nearest-rank median of an ascending, non-empty list. */
export function medianOf(sorted: readonly number[]): number {
  assert(sorted.length > 0, 'a median needs runs');
  return sorted[Math.ceil(sorted.length / 2) - 1]!;
}

/** When the attempt will probably finish (Infinity: no measured run lasted this long). */
export function projectedFinish(a: Pick<RunningAttempt, 'leasedAt' | 'progress'>, elapsedMs: number, sorted: readonly number[]): number {
  if (a.progress !== null && a.progress > 0) return a.leasedAt + elapsedMs / Math.min(1, a.progress);
  // Still no progress reported when the queue's quickest run had finished: stuck.
  if (a.progress === 0 && elapsedMs > sorted[0]!) return Infinity;
  const longer = sorted.filter((ms) => ms >= elapsedMs);
  return longer.length === 0 ? Infinity : a.leasedAt + medianOf(longer);
}

/**
 * The progress fraction in a worker's progress value: a number from 0 to 1,
 * or an object whose `fraction` is one; anything else says nothing.
 */
export function progressFraction(progress: unknown): number | null {
  const v = typeof progress === 'object' && progress !== null && !Array.isArray(progress) ? (progress as Record<string, unknown>).fraction : progress;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1 ? v : null;
}
