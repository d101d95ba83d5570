// The retention sweep: finished jobs past their queue's retention are deleted,
// and worker records that hold nothing are pruned, a short batch (one store
// transaction) at a time. What is eligible is the store's rule
// (src/store/engine/retention.ts); this decides which limits apply to which
// queue and how much one sweep does.
//
// One sweep runs at most LIMITS.retentionSweepMaxBatches job batches (of
// retentionBatchMaxJobs each) over the queues that have finished jobs, taken
// by name from where the last sweep stopped, then prunes worker records the
// same way. Several coordinators may sweep at once: a job or worker is
// deleted by whichever gets it first (the store skips rows another holds).
import { appendFile } from 'node:fs/promises';
import type { DeleteFinishedParams, Store } from '../store/store.ts';
import type { Clock } from '../types/clock.ts';
import { COORDINATOR_DEFAULTS, LIMITS, RETENTION_DEFAULTS } from '../types/limits.ts';
import type { Job, RetentionPolicy } from '../types/model.ts';

const DAY_MS = 24 * 3600 * 1000;

export interface RetentionOptions {
  /** The policy of a queue; the server's default for one the config does not name. */
  policyOf?: (queue: string) => RetentionPolicy;
  /** Default: COORDINATOR_DEFAULTS.workerRetentionMs. */
  workerRetentionMs?: number;
}

export interface RetentionSweepResult {
  deletedJobs: number;
  prunedWorkers: number;
}

/**
 * Appends jobs to a file as JSON lines, before the store deletes them (inside
 * its transaction): a failed append deletes nothing. A commit that fails after
 * the append leaves lines that the next sweep appends again, so a job may
 * appear twice in the file (the same id); none is deleted without its line.
 */
const archiveTo =
  (path: string) =>
  (jobs: Job[]): Promise<void> =>
    appendFile(path, jobs.map((j) => `${JSON.stringify(j)}\n`).join(''), 'utf8');

/** True when the policy deletes nothing: neither limit set. */
export const keepsForever = (p: RetentionPolicy): boolean => p.keepDays === undefined && p.keepJobs === undefined;

export class RetentionSweep {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly policyOf: (queue: string) => RetentionPolicy;
  private readonly workerRetentionMs: number;
  /** The queue after which the next sweep starts; '' from the first. */
  private cursor = '';

  constructor(store: Store, clock: Clock, options: RetentionOptions = {}) {
    this.store = store;
    this.clock = clock;
    this.policyOf = options.policyOf ?? (() => RETENTION_DEFAULTS);
    this.workerRetentionMs = options.workerRetentionMs ?? COORDINATOR_DEFAULTS.workerRetentionMs;
  }

  /** One sweep: finished jobs, then worker records. */
  async run(): Promise<RetentionSweepResult> {
    const deletedJobs = await this.deleteJobs();
    const prunedWorkers = await this.pruneWorkers();
    return { deletedJobs, prunedWorkers };
  }

  private async deleteJobs(): Promise<number> {
    let batches = 0;
    let deleted = 0;
    const queues = await this.store.finishedQueues({ after: this.cursor, limit: LIMITS.retentionSweepMaxQueues });
    for (const queue of queues) {
      const policy = this.policyOf(queue);
      if (!keepsForever(policy)) {
        const params = this.paramsFor(queue, policy);
        for (let full = true; full; ) {
          // Out of batches with this queue maybe not done: the next sweep starts at it.
          if (batches >= LIMITS.retentionSweepMaxBatches) return deleted;
          batches++;
          const n = (await this.store.deleteFinishedJobs(params)).deletedJobIds.length;
          deleted += n;
          full = n >= LIMITS.retentionBatchMaxJobs;
        }
      }
      this.cursor = queue;
    }
    // Every queue looked at: the next sweep starts from the first.
    if (queues.length < LIMITS.retentionSweepMaxQueues) this.cursor = '';
    return deleted;
  }

  private paramsFor(queue: string, policy: RetentionPolicy): DeleteFinishedParams {
    return {
      queue,
      finishedBeforeMs: policy.keepDays === undefined ? null : this.clock.now() - Math.round(policy.keepDays * DAY_MS),
      keepJobs: policy.keepJobs ?? null,
      limit: LIMITS.retentionBatchMaxJobs,
      ...(policy.archive !== undefined ? { archive: archiveTo(policy.archive) } : {}),
    };
  }

  private async pruneWorkers(): Promise<number> {
    let pruned = 0;
    for (let i = 0; i < LIMITS.retentionSweepMaxBatches; i++) {
      const ids = await this.store.pruneWorkers({ seenBeforeMs: this.clock.now() - this.workerRetentionMs, limit: LIMITS.workerPruneBatchMax });
      pruned += ids.length;
      if (ids.length < LIMITS.workerPruneBatchMax) break;
    }
    return pruned;
  }
}
