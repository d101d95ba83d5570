// A worker attached to this coordinator: what the worker calls to report (its
// heartbeats, progress, results, keys, publishes) and how it is reached.
import type { Change, HeartbeatResult, LeaseRef, OutputRef, PublishOrder } from '../store/store.ts';
import { GafferError } from '../types/errors.ts';
import { LIMITS, PROTOCOL_DEFAULTS } from '../types/limits.ts';
import type { Job, JobError, Json, Worker, WorkerSpec } from '../types/model.ts';
import { checkResult, checkSize, checkTrace } from './validate.ts';
import type { Coordinator, WorkerLink } from './coordinator.ts';
import type { PublishAnswer } from './publishing.ts';

/** Most attempts a worker with this spec may name in one hello or heartbeat. */
export function attemptRefsMax(spec: WorkerSpec): number {
  const slots = Object.values(spec.queues).reduce((n, s) => n + s, 0);
  return Math.min(PROTOCOL_DEFAULTS.attemptsPerFrameMax, PROTOCOL_DEFAULTS.attemptsPerSlotMax * Math.max(1, slots));
}

function checkRefCount(count: number, spec: WorkerSpec): void {
  const max = attemptRefsMax(spec);
  if (count > max) {
    throw new GafferError('INVALID_INPUT', `a heartbeat of this worker names at most ${max} attempts (attemptsPerSlotMax per slot); it named ${count}`, {
      maxAttempts: max,
      named: count,
    });
  }
}

/** One attached worker: what the worker calls to report, and how it is reached. */
export class WorkerSession {
  readonly workerId: string;
  readonly spec: WorkerSpec;
  readonly link: WorkerLink;
  draining = false;
  detached = false;
  private readonly coordinator: Coordinator;

  constructor(coordinator: Coordinator, workerId: string, spec: WorkerSpec, link: WorkerLink) {
    this.coordinator = coordinator;
    this.workerId = workerId;
    this.spec = spec;
    this.link = link;
  }

  /**
   * Extends the leases of what the worker runs (one statement for all of them);
   * names what it must stop. Naming more attempts than attemptsPerSlotMax per
   * declared slot is INVALID_INPUT, refused before the store is asked.
   */
  async heartbeat(attempts?: readonly LeaseRef[]): Promise<HeartbeatResult> {
    if (attempts !== undefined) checkRefCount(attempts.length, this.spec);
    const params = attempts === undefined ? { workerId: this.workerId } : { workerId: this.workerId, attempts };
    const mark = this.coordinator.openSlots.mark(this.workerId);
    const out = await this.coordinator.trackReport(this.coordinator.store.heartbeat(params));
    // What it names and the store still has live is what it holds: a slot the coordinator had not seen free (an attempt ended
    // through another coordinator) is claimed for now. An attempt whose result is settled but not yet acknowledged is named
    // too, and is not counted: the worker's slot is free.
    const opened = attempts !== undefined && this.coordinator.openSlots.named(this.workerId, out.extended.length, mark);
    // A worker the sweeper had given up on is back, or revoked attempts stopped: jobs may be waiting for it.
    if (out.revived || out.released) this.coordinator.openSlots.reopen(this.workerId);
    if (opened || out.revived || out.released) this.coordinator.kick();
    return out;
  }

  async progress(ref: LeaseRef, progress: Json): Promise<void> {
    checkSize(progress, LIMITS.progressMaxBytes, 'progress');
    await this.coordinator.trackReport(this.coordinator.store.progress({ ...ref, workerId: this.workerId, progress }));
  }

  /**
   * A result under the lease `ref`; `trace` is the attempt's resource trace,
   * when the worker sampled one; `output`: the worker holds an output to publish once it is accepted.
   */
  async complete(ref: LeaseRef, result: unknown, trace?: unknown, output?: boolean): Promise<Job> {
    const out = await this.coordinator.trackReport(
      this.coordinator.store.complete({
        ...ref,
        workerId: this.workerId,
        result: checkResult(result),
        trace: trace === undefined || trace === null ? null : checkTrace(trace),
        verificationJob: this.coordinator.verificationJob,
        ...(output === true ? { output } : {}),
      }),
    );
    return this.ended(ref, out, true);
  }

  async fail(ref: LeaseRef, error: Pick<JobError, 'code' | 'message'>, retryable = true): Promise<Job> {
    const clean: JobError = { code: String(error.code).slice(0, 64), message: String(error.message) };
    const out = await this.coordinator.trackReport(this.coordinator.store.fail({ ...ref, workerId: this.workerId, error: clean, retryable }));
    return this.ended(ref, out, false);
  }

  /** What follows an attempt the worker reported ended: counts, its slot, the changes, and a dispatch. */
  private ended(ref: LeaseRef, out: { job: Job; changes: Change[] }, succeeded: boolean): Job {
    const c = this.coordinator;
    c.metrics.reported(ref.attemptId);
    c.history.finished(ref.attemptId);
    c.hints.ended(ref.attemptId, succeeded);
    c.openSlots.ended(this.workerId);
    c.applyChanges(out.changes, succeeded ? 'settled by another attempt' : 'job failed', out.job);
    c.kick();
    return out.job;
  }

  /** The worker now holds (or no longer holds) these affinity keys; jobs that require a held key may now fit it. */
  async keys(change: { hold?: readonly string[]; release?: readonly string[] }): Promise<Worker> {
    for (const k of [...(change.hold ?? []), ...(change.release ?? [])]) {
      if (typeof k !== 'string' || k.length === 0 || k.length > LIMITS.keyMaxChars) {
        throw new GafferError('INVALID_INPUT', `an affinity key is a string of 1 to ${LIMITS.keyMaxChars} characters`);
      }
    }
    const worker = await this.coordinator.trackReport(
      this.coordinator.store.updateWorkerKeys({ workerId: this.workerId, ...change }),
    );
    this.coordinator.openSlots.keysChanged(this.workerId, change.hold ?? [], change.release ?? []);
    if ((change.hold?.length ?? 0) > 0) this.coordinator.kick();
    return worker;
  }

  /** Tells the worker to publish an accepted output. */
  publish(order: PublishOrder): void {
    this.link.publish?.(order);
  }

  /** Tells the worker to delete outputs that will never be published. */
  discard(refs: OutputRef[]): void {
    this.link.discard?.(refs);
  }

  /** The worker's answer to a publish: its manifest, or why it failed (retried later). */
  published(answer: PublishAnswer): Promise<Job> {
    return this.coordinator.trackReport(this.coordinator.publishing.answer(this.workerId, answer));
  }

  /** The worker finishes what it holds and takes nothing new. */
  async drain(): Promise<void> {
    this.markDraining();
    await this.coordinator.store.setWorkerDraining({ workerId: this.workerId, draining: true });
  }

  markDraining(): void {
    this.draining = true;
  }

  detach(): Promise<void> {
    return this.coordinator.detachWorker(this);
  }
}
