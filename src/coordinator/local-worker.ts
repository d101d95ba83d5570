// An in-process worker: handlers per queue, driven straight through the
// coordinator's WorkerLink. The demo and the coordinator tests use it; the
// network worker (src/worker) speaks the same steps over a WebSocket.
import type { Clock, TimerHandle } from '../types/clock.ts';
import { isGafferError } from '../types/errors.ts';
import type { Assignment, Json, WorkerSpec } from '../types/model.ts';
import type { Coordinator, WorkerSession } from './coordinator.ts';

export interface HandlerContext {
  assignment: Assignment;
  /** Aborted when the attempt is cancelled, settled elsewhere or its lease is lost. */
  signal: AbortSignal;
  progress(value: Json): Promise<void>;
}

export type Handler = (payload: Json, ctx: HandlerContext) => Promise<Json> | Json;

/** A handler throws this to fail the job at once, with no retry. */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

export interface LocalWorkerOptions {
  coordinator: Coordinator;
  clock: Clock;
  spec: Omit<WorkerSpec, 'queues'> & { queues?: never };
  handlers: Record<string, { slots: number; handler: Handler }>;
  /** How often to heartbeat; keep it well under the jobs' heartbeatTimeoutMs. */
  heartbeatIntervalMs?: number;
}

export interface LocalWorkerStats {
  completed: number;
  failed: number;
  /** Reports the coordinator refused because the lease was no longer current. */
  stale: number;
}

export class LocalWorker {
  readonly stats: LocalWorkerStats = { completed: 0, failed: 0, stale: 0 };
  private readonly options: LocalWorkerOptions;
  private session: WorkerSession | null = null;
  private readonly running = new Map<string, { assignment: Assignment; abort: AbortController; done: Promise<void> }>();
  private heartbeatTimer: TimerHandle | null = null;
  private paused = false;
  /** Reports the coordinator could not apply (its store away or busy): sent again with each heartbeat until they land. */
  private readonly unsent = new Map<string, () => Promise<void>>();

  constructor(options: LocalWorkerOptions) {
    this.options = options;
  }

  get id(): string | undefined {
    return this.session?.workerId;
  }

  get activeAttempts(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    const queues: Record<string, number> = {};
    for (const [q, h] of Object.entries(this.options.handlers)) queues[q] = h.slots;
    const spec = { ...this.options.spec, ...(this.session ? { id: this.session.workerId } : {}), queues };
    this.session = await this.options.coordinator.attachWorker(spec, {
      assign: (list) => list.forEach((a) => this.run(a)),
      revoke: (ids) => ids.forEach((id) => this.running.get(id)?.abort.abort(new Error('revoked'))),
    });
    this.paused = false;
    this.scheduleHeartbeat();
  }

  /** Stops heartbeating and reporting without telling anyone, as a hung or partitioned worker would. */
  freeze(): void {
    this.paused = true;
    if (this.heartbeatTimer) this.options.clock.clearTimeout(this.heartbeatTimer);
  }

  /** Drops the connection; running attempts keep their leases until the heartbeat timeout. */
  async disconnect(): Promise<void> {
    this.freeze();
    await this.session?.detach();
  }

  /** Graceful stop: drain, wait for running attempts, detach. */
  async stop(): Promise<void> {
    await this.session?.drain();
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
    await this.disconnect();
  }

  private scheduleHeartbeat(): void {
    const every = this.options.heartbeatIntervalMs ?? 1000;
    this.heartbeatTimer = this.options.clock.setTimeout(() => {
      if (this.paused || !this.session) return;
      const refs = [...this.running.values()].map((r) => ({ attemptId: r.assignment.attemptId, lease: r.assignment.lease }));
      for (const [attemptId, send] of [...this.unsent]) {
        this.unsent.delete(attemptId);
        void send();
      }
      void this.session
        .heartbeat(refs)
        .then((res) => res.revoked.forEach((id) => this.running.get(id)?.abort.abort(new Error('lease lost'))))
        .catch(() => undefined)
        .finally(() => {
          if (!this.paused) this.scheduleHeartbeat();
        });
    }, every);
  }

  private run(assignment: Assignment): void {
    const entry = this.options.handlers[assignment.queue];
    const session = this.session;
    if (!entry || !session) return;
    const abort = new AbortController();
    const ref = { attemptId: assignment.attemptId, lease: assignment.lease };
    const ctx: HandlerContext = {
      assignment,
      signal: abort.signal,
      progress: (value) => session.progress(ref, value),
    };
    const done = (async () => {
      let outcome: { ok: true; result: Json } | { ok: false; err: unknown };
      try {
        outcome = { ok: true, result: await entry.handler(assignment.payload, ctx) };
      } catch (err) {
        outcome = { ok: false, err };
      }
      if (this.paused || abort.signal.aborted) return;
      await this.report(session, ref, outcome);
    })().finally(() => {
      if (!this.unsent.has(assignment.attemptId)) this.running.delete(assignment.attemptId);
    });
    this.running.set(assignment.attemptId, { assignment, abort, done });
  }

  private async report(
    session: WorkerSession,
    ref: { attemptId: string; lease: string },
    outcome: { ok: true; result: Json } | { ok: false; err: unknown },
  ): Promise<void> {
    try {
      if (outcome.ok) {
        await session.complete(ref, outcome.result);
        this.stats.completed++;
      } else {
        const err = outcome.err;
        const message = err instanceof Error ? err.message : String(err);
        await session.fail(ref, { code: 'HANDLER_ERROR', message }, !(err instanceof PermanentError));
        this.stats.failed++;
      }
    } catch (err) {
      if (isGafferError(err, 'STORE_BUSY') || isGafferError(err, 'NOT_READY')) {
        // Not applied: keep the attempt (its lease is heartbeated) and send the report again.
        this.unsent.set(ref.attemptId, async () => {
          await this.report(session, ref, outcome);
          if (!this.unsent.has(ref.attemptId)) this.running.delete(ref.attemptId);
        });
      } else if (isGafferError(err, 'STALE_LEASE') || isGafferError(err, 'ATTEMPT_NOT_FOUND')) this.stats.stale++;
      else throw err;
    }
  }
}
