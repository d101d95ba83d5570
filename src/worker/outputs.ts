// The output directories a worker holds for publishing (docs/publishing.md).
// An attempt of a queue with a publisher that succeeds keeps its output
// directory (the exec runner's GAFFER_OUT_DIR, or the one a handler named);
// its result goes with `output: true`. The directory stays until:
// - publish: the result was accepted. Its files are published, the manifest
//   (or the error) goes in a published frame, sent again after a reconnect
//   until the coordinator answers with recorded; a recorded manifest lets
//   the directory go. A failed publish keeps it: the coordinator asks again.
// - discard: the result was rejected, or another replica's accepted.
// - outputKeepMaxMs passed without either (the disk use stays bounded).
// A failed or given-up attempt's output is removed at once. After a restart,
// an exec queue's output is found again where the runner put it.
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { PUBLISH_DEFAULTS, WORKER_DEFAULTS } from '../types/limits.ts';
import type { DiscardFrame, PublishedFrame, PublishFrame, RecordedFrame } from '../types/protocol.ts';
import type { QueueConfig } from './checks.ts';
import { execOutDir } from './exec.ts';
import { publishDir, PublishError, type PublishBounds, type Publisher } from './publish/publisher.ts';
import { RETRY_REPORT_CODES } from './report-retry.ts';

export interface OutputsOptions {
  log: Logger;
  /** Sends a frame when connected; drops it otherwise (resend() sends it again after welcome). */
  send(frame: PublishedFrame): void;
  publisherOf(queue: string): Publisher | undefined;
  /** Where an attempt of this queue left its output, when this process does not hold it (after a restart): exec queues only. */
  dirOf(queue: string, jobId: string, attemptId: string): string | undefined;
  bounds?: Partial<PublishBounds>;
  keepMaxMs?: number;
  sweepIntervalMs?: number;
  random?: () => number;
}

interface Held {
  jobId: string;
  queue: string;
  dir: string;
  heldAt: number;
}

interface Task {
  abort: AbortController;
  /** The directory published, when known. */
  dir: string | undefined;
  /** The answer, once the publish ended: sent until the coordinator records it. */
  frame: PublishedFrame | null;
  resends: number;
  timer: NodeJS.Timeout | null;
}

/** Attempts whose manifest was recorded, remembered so that a publish frame sent before the record is not done twice. */
const RECORDED_KEPT_MAX = 1024;

export class Outputs {
  private readonly o: OutputsOptions;
  private readonly held = new Map<string, Held>();
  private readonly tasks = new Map<string, Task>();
  private readonly recorded = new Set<string>();
  private readonly sweepTimer: NodeJS.Timeout;
  private idleWaiters: (() => void)[] = [];

  constructor(options: OutputsOptions) {
    this.o = options;
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? PUBLISH_DEFAULTS.outputSweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Publishes under way (uploading, or waiting for their record). */
  get publishing(): number {
    return this.tasks.size;
  }

  /** Output directories held for a publish or a discard. */
  get heldCount(): number {
    return this.held.size;
  }

  /** A succeeded attempt's output: kept until it is published or discarded. */
  hold(attemptId: string, jobId: string, queue: string, dir: string): void {
    this.held.set(attemptId, { jobId, queue, dir, heldAt: Date.now() });
  }

  /** Forgets a held output that will never be published; the caller removes its directory. */
  release(attemptId: string): void {
    this.held.delete(attemptId);
  }

  /** Removes an output directory that will never be published (the attempt failed or was given up). */
  remove(dir: string): void {
    void rm(dir, { recursive: true, force: true }).catch((err: unknown) => this.o.log.warn({ err, dir }, 'could not remove an output directory'));
  }

  onPublish(f: PublishFrame): void {
    const task = this.tasks.get(f.attemptId);
    if (task) {
      // Under way: its answer goes when it is ready; an answer already made was lost on the way, so it goes again.
      if (task.frame) this.o.send(task.frame);
      return;
    }
    if (this.recorded.has(f.attemptId)) return;
    const publisher = this.o.publisherOf(f.queue);
    const dir = this.held.get(f.attemptId)?.dir ?? this.o.dirOf(f.queue, f.jobId, f.attemptId);
    const t: Task = { abort: new AbortController(), dir, frame: null, resends: 0, timer: null };
    this.tasks.set(f.attemptId, t);
    const base = { type: 'published' as const, jobId: f.jobId, attemptId: f.attemptId };
    const run = async (): Promise<PublishedFrame> => {
      if (!publisher) return { ...base, error: { code: 'OUTPUT_MISSING', message: `this worker has no publisher for queue ${f.queue}` } };
      if (dir === undefined) return { ...base, error: { code: 'OUTPUT_MISSING', message: `this worker no longer knows where attempt ${f.attemptId} left its output` } };
      try {
        const onRetry = (path: string, n: number, err: unknown): void => this.o.log.warn({ attemptId: f.attemptId, path, try: n, err }, 'publishing a file failed; trying again');
        const manifest = await publishDir({ publisher, dir, jobId: f.jobId, signal: t.abort.signal, ...this.bounds(), onRetry });
        return { ...base, manifest };
      } catch (err) {
        const code = err instanceof PublishError ? err.code : 'PUBLISH_FAILED';
        const message = err instanceof Error ? err.message : String(err);
        this.o.log.warn({ attemptId: f.attemptId, jobId: f.jobId, code, message }, 'publishing an output failed; the coordinator will ask again');
        return { ...base, error: { code, message } };
      }
    };
    void run().then((frame) => {
      if (this.tasks.get(f.attemptId) !== t || t.abort.signal.aborted) return;
      t.frame = frame;
      this.o.send(frame);
      this.checkIdle();
    });
  }

  onDiscard(f: DiscardFrame): void {
    for (const a of f.attempts) {
      if (this.tasks.has(a.attemptId)) continue;
      const dir = this.held.get(a.attemptId)?.dir;
      this.held.delete(a.attemptId);
      if (dir !== undefined) this.remove(dir);
    }
  }

  onRecorded(f: RecordedFrame): void {
    const t = this.tasks.get(f.attemptId);
    if (!t?.frame) return;
    if (!f.ok && RETRY_REPORT_CODES.has(f.error?.code ?? '') && t.resends < WORKER_DEFAULTS.reportInternalResendsMax) {
      // Not recorded (the store is away): the same answer goes again after a doubling delay.
      const frame = t.frame;
      t.timer = setTimeout(() => this.o.send(frame), WORKER_DEFAULTS.reportResendBaseDelayMs * 2 ** t.resends++);
      return;
    }
    this.tasks.delete(f.attemptId);
    if (t.timer) clearTimeout(t.timer);
    const published = f.ok && t.frame.manifest !== undefined;
    // A refused answer (the job is gone, or it is not this worker's publish) will never be asked for again.
    const refused = !f.ok && !RETRY_REPORT_CODES.has(f.error?.code ?? '');
    if (published || refused) {
      if (!f.ok) this.o.log.warn({ attemptId: f.attemptId, code: f.error?.code, message: f.error?.message }, 'the coordinator refused a publish answer; removing the output');
      this.forget(f.attemptId, t.dir);
    }
    this.checkIdle();
  }

  /** After a welcome: answers not yet recorded go again. */
  resend(): void {
    for (const t of this.tasks.values()) if (t.frame) this.o.send(t.frame);
  }

  /** Resolves once no upload is under way (answers may still await their record). */
  whenIdle(): Promise<void> {
    if (!this.uploading()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops uploads under way (their outputs stay on disk) and the sweep. */
  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    for (const t of this.tasks.values()) {
      t.abort.abort();
      if (t.timer) clearTimeout(t.timer);
    }
    this.tasks.clear();
    this.checkIdle();
  }

  private uploading(): boolean {
    for (const t of this.tasks.values()) if (!t.frame) return true;
    return false;
  }

  private checkIdle(): void {
    if (!this.uploading()) for (const w of this.idleWaiters.splice(0)) w();
  }

  private forget(attemptId: string, dir: string | undefined): void {
    this.held.delete(attemptId);
    this.recorded.add(attemptId);
    if (this.recorded.size > RECORDED_KEPT_MAX) this.recorded.delete(this.recorded.values().next().value!);
    if (dir !== undefined) this.remove(dir);
  }

  private bounds(): { bounds?: Partial<PublishBounds>; random?: () => number } {
    return { ...(this.o.bounds ? { bounds: this.o.bounds } : {}), ...(this.o.random ? { random: this.o.random } : {}) };
  }

  /** Outputs held past outputKeepMaxMs are removed: their publish or discard never came. */
  private sweep(): void {
    const keepMaxMs = this.o.keepMaxMs ?? PUBLISH_DEFAULTS.outputKeepMaxMs;
    const now = Date.now();
    for (const [attemptId, h] of this.held) {
      if (now - h.heldAt < keepMaxMs || this.tasks.has(attemptId)) continue;
      this.o.log.warn({ attemptId, jobId: h.jobId, dir: h.dir }, 'removing an output held past outputKeepMaxMs without a publish or discard');
      this.held.delete(attemptId);
      this.remove(h.dir);
    }
  }
}

/** The outputs of a worker whose queues name publishers; null when none does. */
export function queueOutputs(
  o: { queues: Record<string, QueueConfig>; publishBounds?: Partial<PublishBounds>; outputKeepMaxMs?: number },
  log: Logger,
  send: (frame: PublishedFrame) => void,
  random: () => number,
): Outputs | null {
  if (!Object.values(o.queues).some((q) => q.publish !== undefined)) return null;
  return new Outputs({
    log,
    send,
    publisherOf: (queue) => o.queues[queue]?.publish,
    dirOf: (queue, jobId, attemptId) => {
      const q = o.queues[queue];
      if (!q || !('exec' in q)) return undefined;
      try {
        return execOutDir(q.exec, { jobId, attemptId });
      } catch {
        return undefined;
      }
    },
    ...(o.publishBounds ? { bounds: o.publishBounds } : {}),
    ...(o.outputKeepMaxMs !== undefined ? { keepMaxMs: o.outputKeepMaxMs } : {}),
    random,
  });
}
