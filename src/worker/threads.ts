// Handler modules on worker threads. A CPU-bound handler on the main thread
// would stop the socket and the heartbeats (and so lose its own lease); on a
// thread of its own it burns a core while the main thread keeps talking.
//
// The handler module: an ES module (`.js`, `.mjs`, or `.ts` with erasable
// syntax) that exports `handler` or a default function with the signature of
// `Handler` (handler.ts):
//
//   export async function handler(payload, { assignment, signal, progress }) {
//     ...; progress({ done: 0.5 }); ...
//     return { proof: '...' };             // JSON, the attempt's result
//   }
//
// It runs on a pool thread, one attempt per thread at a time; a thread is
// reused for the next attempt, so module state (a loaded key, a warm cache)
// survives between attempts. `signal` aborts on cancel or lost lease: a
// handler that ignores it for abortGraceMs has its thread terminated (a busy
// loop is stopped too). Throw to fail; throw an error named PermanentError (or
// with `retryable: false`) to fail without retry. Payload and result cross the
// thread boundary by structured clone. A handler that measures its own resource
// use may attach it with `ctx.setTrace(trace)`; it goes with the result.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker as Thread, type ResourceLimits } from 'node:worker_threads';
import { WORKER_DEFAULTS } from '../types/limits.ts';
import type { Assignment, Json, Trace } from '../types/model.ts';
import type { FromThread, SerializedError, ToThread } from './thread-entry.ts';
import { siblingModule } from '../types/modules.ts';

export interface ThreadPoolOptions {
  /** A file path (relative to the working directory) or a file: URL. */
  module: string | URL;
  /** Threads kept ready: the queue's slot count. */
  size: number;
  abortGraceMs?: number;
  resourceLimits?: ResourceLimits;
}

export interface ThreadRunHooks {
  signal: AbortSignal;
  progress(value: Json): void;
  /** The trace the handler attached (ctx.setTrace), called just before the run resolves. */
  trace?(value: Trace): void;
}

/** What a handler on a thread threw, with its name, message and retryable flag carried across. */
export class ThreadHandlerError extends Error {
  readonly retryable: boolean | undefined;

  constructor(e: SerializedError) {
    super(e.message);
    this.name = e.name;
    this.retryable = e.retryable;
    if (e.stack) this.stack = e.stack;
  }
}

const ENTRY = siblingModule(import.meta.url, 'thread-entry');

interface Job {
  id: number;
  resolve(result: Json): void;
  reject(err: unknown): void;
  progress(value: Json): void;
  trace?(value: Trace): void;
}

/** One thread: loaded once, then one run at a time. */
class PoolThread {
  readonly thread: Thread;
  readonly ready: Promise<void>;
  job: Job | null = null;
  dead = false;

  constructor(moduleUrl: string, resourceLimits: ResourceLimits | undefined, onGone: (t: PoolThread) => void) {
    this.thread = new Thread(ENTRY, { workerData: { moduleUrl }, ...(resourceLimits ? { resourceLimits } : {}) });
    this.ready = new Promise<void>((ok, fail) => {
      this.thread.on('message', (m: FromThread) => {
        if (m.type === 'ready') ok();
        else if (m.type === 'load-error') fail(new ThreadHandlerError(m.error));
        else this.onMessage(m);
      });
      const gone = (err: unknown): void => {
        if (this.dead) return;
        this.dead = true;
        fail(err);
        this.job?.reject(err);
        this.job = null;
        onGone(this);
      };
      this.thread.on('error', gone);
      this.thread.on('exit', (code) => gone(new Error(`the handler thread exited (code ${code})`)));
    });
    this.ready.catch(() => undefined);
  }

  private onMessage(m: FromThread): void {
    const job = this.job;
    if (!job || !('id' in m) || m.id !== job.id) return;
    if (m.type === 'progress') job.progress(m.value);
    else if (m.type === 'done') {
      this.job = null;
      if (m.trace) job.trace?.(m.trace);
      job.resolve(m.result);
    } else if (m.type === 'error') {
      this.job = null;
      job.reject(new ThreadHandlerError(m.error));
    }
  }

  post(m: ToThread): void {
    if (!this.dead) this.thread.postMessage(m);
  }

  terminate(): Promise<unknown> {
    return this.thread.terminate();
  }
}

export class ThreadPool {
  private readonly moduleUrl: string;
  private readonly size: number;
  private readonly abortGraceMs: number;
  private readonly resourceLimits: ResourceLimits | undefined;
  private readonly idle: PoolThread[] = [];
  private readonly all = new Set<PoolThread>();
  private nextId = 1;
  private closed = false;

  constructor(options: ThreadPoolOptions) {
    const m = options.module;
    this.moduleUrl = m instanceof URL ? m.href : m.startsWith('file:') ? m : pathToFileURL(resolve(m)).href;
    this.size = Math.max(1, options.size);
    this.abortGraceMs = options.abortGraceMs ?? WORKER_DEFAULTS.abortGraceMs;
    this.resourceLimits = options.resourceLimits;
  }

  /** Starts one thread and loads the module; rejects when the module cannot be loaded or has no handler. */
  async ready(): Promise<void> {
    const t = this.spawn();
    await t.ready;
    this.idle.push(t);
  }

  /** Runs one attempt on a free thread (a new one when all are busy). */
  async run(payload: Json, assignment: Assignment, hooks: ThreadRunHooks): Promise<Json> {
    if (this.closed) throw new Error('the thread pool is closed');
    hooks.signal.throwIfAborted();
    const t = this.idle.pop() ?? this.spawn();
    await t.ready;
    const id = this.nextId++;
    let graceTimer: NodeJS.Timeout | null = null;
    const onAbort = (): void => {
      t.post({ type: 'abort', id, reason: String((hooks.signal.reason as Error | undefined)?.message ?? 'aborted') });
      // A handler that does not stop in time (a busy loop) loses its thread.
      graceTimer = setTimeout(() => void this.discard(t), this.abortGraceMs);
      graceTimer.unref();
    };
    try {
      const result = await new Promise<Json>((resolve, reject) => {
        t.job = { id, resolve, reject, progress: hooks.progress, ...(hooks.trace ? { trace: hooks.trace } : {}) };
        hooks.signal.addEventListener('abort', onAbort, { once: true });
        t.post({ type: 'run', id, payload, assignment });
      });
      return result;
    } finally {
      hooks.signal.removeEventListener('abort', onAbort);
      if (graceTimer) clearTimeout(graceTimer);
      this.giveBack(t);
    }
  }

  private spawn(): PoolThread {
    const t = new PoolThread(this.moduleUrl, this.resourceLimits, (gone) => {
      this.all.delete(gone);
      const i = this.idle.indexOf(gone);
      if (i >= 0) this.idle.splice(i, 1);
    });
    this.all.add(t);
    return t;
  }

  private giveBack(t: PoolThread): void {
    if (t.dead || t.job) return;
    if (this.closed || this.idle.length >= this.size) void this.discard(t);
    else this.idle.push(t);
  }

  private async discard(t: PoolThread): Promise<void> {
    this.all.delete(t);
    const i = this.idle.indexOf(t);
    if (i >= 0) this.idle.splice(i, 1);
    await t.terminate();
  }

  /** Terminates every thread; runs still going reject. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.all].map((t) => this.discard(t)));
  }

  /** Threads alive now (busy or idle). */
  get threads(): number {
    return this.all.size;
  }
}
