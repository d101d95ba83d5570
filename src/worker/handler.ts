// What a handler is given and what it returns: the same for an in-process
// handler (main thread) and a handler module run on a worker thread.
import type { Assignment, Json, Trace } from '../types/model.ts';

export interface HandlerContext {
  /** The attempt as the coordinator handed it out: ids, queue, GPU ids, timeouts, labels. */
  assignment: Assignment;
  /**
   * Aborted when the attempt is cancelled, settled elsewhere, times out, loses
   * its lease, or the worker gives it up (drain bound passed, stop). Once it is
   * aborted, whatever the handler returns is thrown away.
   */
  signal: AbortSignal;
  /** Reports progress (JSON, at most LIMITS.progressMaxBytes). Lossy: the latest value wins. */
  progress(value: Json): void;
  /**
   * Attaches a resource trace to the result, for trace verification: the
   * handler's own measure of the work, `{ intervalMs, samples: [{ tMs, cpuMs,
   * rssKb }] }` with tMs ascending from the attempt's start (see Trace). There
   * is no per-attempt process to sample here, so the handler measures itself.
   * The last call before the handler returns wins; `null` removes it. A trace
   * of more than LIMITS.traceSamplesMax samples is thinned to fit; one that
   * is not valid throws a TypeError at once.
   */
  setTrace(trace: Trace | null): void;
  /**
   * Names the directory this attempt's output is in, for a queue with a
   * publisher (docs/publishing.md): it is published if the result is
   * accepted, and deleted otherwise. The worker keeps it until then: the
   * handler must not remove it. The last call wins; `null` names none.
   * Modules on worker threads have none (their call throws).
   */
  setOutputDir(dir: string | null): void;
}

/**
 * A handler: takes the job's payload, returns its result (JSON, at most
 * LIMITS.resultMaxBytes). Throwing fails the attempt (it is retried while the
 * job has attempts left); throwing a PermanentError, or any error with
 * `retryable: false`, fails the job at once.
 */
export type Handler = (payload: Json, ctx: HandlerContext) => Promise<Json> | Json;

/** A handler throws this to fail the job now, with no retry. Recognised by name across threads. */
export class PermanentError extends Error {
  override name = 'PermanentError';
  readonly retryable = false;
}

/** How a failed run is reported: the error as the coordinator will keep it, and whether to retry. */
export interface FailureReport {
  code: string;
  message: string;
  retryable: boolean;
}

/** Classifies what a handler threw. */
export function failureOf(err: unknown): FailureReport {
  const e = err as { name?: unknown; message?: unknown; retryable?: unknown } | null;
  const message = err instanceof Error || (typeof e === 'object' && e !== null && typeof e.message === 'string')
    ? String(e!.message)
    : String(err);
  const permanent = typeof e === 'object' && e !== null && (e.name === 'PermanentError' || e.retryable === false);
  // An assignment the runner refused before running anything (exec.ts) keeps its own code.
  const code = typeof e === 'object' && e !== null && e.name === 'InvalidAssignmentError' ? 'INVALID_ASSIGNMENT' : 'HANDLER_ERROR';
  return { code, message: message || 'the handler failed', retryable: !permanent };
}
