// Waits for jobs to end, many at once, without one long poll per job: one
// event stream (GET /v1/events) says which awaited job may have ended, and each
// is then read once. The stream can miss events (a coordinator restart, a
// client that fell behind), so every awaited job is also read when the stream
// (re)opens and every resyncIntervalMs.
import type { GafferClient } from '../client/client.ts';
import { GafferClientError } from '../client/client.ts';
import { BRIDGE_DEFAULTS } from '../types/limits.ts';
import type { Job } from '../types/model.ts';
import { isTerminalJobState, type JobState } from '../types/states.ts';
import { pause } from '../types/clock.ts';

export interface TrackerLog {
  warn(obj: object, msg: string): void;
}

/** BRIDGE_DEFAULTS, any of them overridden. */
export type BridgeSettings = { -readonly [K in keyof typeof BRIDGE_DEFAULTS]: number };
export type TrackerSettings = Pick<BridgeSettings, 'resyncIntervalMs' | 'resyncMaxRequests' | 'reconnectBaseDelayMs' | 'reconnectMaxDelayMs'>;

interface Waiter {
  resolve(job: Job): void;
  reject(err: Error): void;
}

export class JobTracker {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly stopped = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;

  private readonly client: GafferClient;
  private readonly log: TrackerLog;
  private readonly settings: TrackerSettings;

  constructor(client: GafferClient, log: TrackerLog, settings: TrackerSettings = BRIDGE_DEFAULTS) {
    this.client = client;
    this.log = log;
    this.settings = settings;
  }

  start(): void {
    this.loop = this.stream();
    this.timer = setInterval(() => void this.resync(), this.settings.resyncIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    clearInterval(this.timer);
    await this.loop;
    for (const set of this.waiters.values()) for (const w of set) w.reject(new Error('the tracker stopped'));
    this.waiters.clear();
  }

  /** Jobs awaited now. */
  get size(): number {
    return this.waiters.size;
  }

  /** Resolves with the job once it has ended; rejects when `signal` aborts first. */
  wait(jobId: string, signal: AbortSignal): Promise<Job> {
    return new Promise<Job>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const waiter: Waiter = {
        resolve: (job) => {
          signal.removeEventListener('abort', onAbort);
          resolve(job);
        },
        reject,
      };
      const onAbort = (): void => {
        this.drop(jobId, waiter);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      let set = this.waiters.get(jobId);
      if (!set) this.waiters.set(jobId, (set = new Set()));
      set.add(waiter);
      // Read it once now: it may have ended before anyone listened.
      void this.check(jobId);
    });
  }

  private drop(jobId: string, waiter: Waiter): void {
    const set = this.waiters.get(jobId);
    set?.delete(waiter);
    if (set?.size === 0) this.waiters.delete(jobId);
  }

  /** Reads the job; when it has ended (or is gone), settles everyone waiting for it. */
  private async check(jobId: string): Promise<void> {
    let job: Job;
    try {
      job = await this.client.get(jobId);
    } catch (err) {
      if (err instanceof GafferClientError && err.code === 'JOB_NOT_FOUND') return this.settle(jobId, goneJob(jobId));
      // The coordinator is away: the next resync or stream (re)open reads it again.
      return;
    }
    if (isTerminalJobState(job.state)) this.settle(jobId, job);
  }

  private settle(jobId: string, job: Job): void {
    const set = this.waiters.get(jobId);
    if (!set) return;
    this.waiters.delete(jobId);
    for (const w of set) w.resolve(job);
  }

  private async resync(): Promise<void> {
    const ids = [...this.waiters.keys()];
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < ids.length && !this.stopped.signal.aborted) await this.check(ids[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.resyncMaxRequests, ids.length) }, lane));
  }

  private async stream(): Promise<void> {
    let delay = this.settings.reconnectBaseDelayMs;
    let warned = false;
    while (!this.stopped.signal.aborted) {
      try {
        const opened = (): void => {
          warned = false;
          delay = this.settings.reconnectBaseDelayMs;
          void this.resync();
        };
        const events = this.client.watch({ type: 'job', signal: this.stopped.signal, onOpen: opened });
        for await (const ev of events) {
          const data = ev.data as { jobId?: string; state?: JobState };
          if (ev.type === 'job' && data.jobId && data.state && isTerminalJobState(data.state) && this.waiters.has(data.jobId)) void this.check(data.jobId);
        }
      } catch (err) {
        if (this.stopped.signal.aborted) return;
        // Once per outage: the coordinator may be away for a while.
        if (!warned) this.log.warn({ err: (err as Error).message }, 'job event stream lost; reconnecting');
        warned = true;
      }
      await pause(delay, this.stopped.signal);
      delay = Math.min(delay * 2, this.settings.reconnectMaxDelayMs);
    }
  }
}

/** A job the coordinator no longer has (its retention removed it): answered as an error. */
function goneJob(jobId: string): Job {
  return { id: jobId, state: 'failed', result: null, error: { code: 'JOB_NOT_FOUND', message: `job ${jobId} is no longer known to the coordinator` } } as Job;
}
