// The code a handler thread runs: loads the handler module named in
// workerData, then runs one attempt at a time as the pool asks (threads.ts).
//
// Messages from the pool:   { type: 'run', id, payload, assignment } | { type: 'abort', id, reason }
// Messages to the pool:     { type: 'ready' } | { type: 'load-error', error }
//                           | { type: 'progress', id, value } | { type: 'done', id, result, trace? } | { type: 'error', id, error }
import { parentPort, workerData } from 'node:worker_threads';
import type { Assignment, Json, Trace } from '../types/model.ts';
import type { Handler, HandlerContext } from './handler.ts';
import { normalizeTrace } from './trace.ts';

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  retryable?: boolean;
}

export type ToThread =
  | { type: 'run'; id: number; payload: Json; assignment: Assignment }
  | { type: 'abort'; id: number; reason: string };

export type FromThread =
  | { type: 'ready' }
  | { type: 'load-error'; error: SerializedError }
  | { type: 'progress'; id: number; value: Json }
  | { type: 'done'; id: number; result: Json; trace?: Trace }
  | { type: 'error'; id: number; error: SerializedError };

export function serializeError(err: unknown): SerializedError {
  if (typeof err === 'object' && err !== null) {
    const e = err as { name?: unknown; message?: unknown; stack?: unknown; retryable?: unknown };
    const out: SerializedError = { name: String(e.name ?? 'Error'), message: String(e.message ?? err) };
    if (typeof e.stack === 'string') out.stack = e.stack;
    if (typeof e.retryable === 'boolean') out.retryable = e.retryable;
    return out;
  }
  return { name: 'Error', message: String(err) };
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) return;
  const post = (m: FromThread): void => port.postMessage(m);
  let handler: Handler;
  try {
    const mod = (await import((workerData as { moduleUrl: string }).moduleUrl)) as { handler?: unknown; default?: unknown };
    const found = typeof mod.handler === 'function' ? mod.handler : mod.default;
    if (typeof found !== 'function') throw new TypeError('the handler module exports no function named handler and no default function');
    handler = found as Handler;
  } catch (err) {
    post({ type: 'load-error', error: serializeError(err) });
    return;
  }
  const aborts = new Map<number, AbortController>();
  port.on('message', (m: ToThread) => {
    if (m.type === 'abort') {
      aborts.get(m.id)?.abort(new Error(m.reason));
      return;
    }
    const abort = new AbortController();
    aborts.set(m.id, abort);
    let trace: Trace | null = null;
    const ctx: HandlerContext = {
      assignment: m.assignment,
      signal: abort.signal,
      progress: (value: Json) => post({ type: 'progress', id: m.id, value }),
      setTrace: (value) => {
        trace = value === null ? null : normalizeTrace(value);
      },
      setOutputDir: () => {
        throw new TypeError('a handler module on worker threads has no output directory to publish; use a handler function or exec');
      },
    };
    void (async () => {
      try {
        const result = await handler(m.payload, ctx);
        const done: Extract<FromThread, { type: 'done' }> = { type: 'done', id: m.id, result: result === undefined ? null : result };
        if (trace) done.trace = trace;
        post(done);
      } catch (err) {
        post({ type: 'error', id: m.id, error: serializeError(err) });
      } finally {
        aborts.delete(m.id);
      }
    })().catch((err: unknown) => post({ type: 'error', id: m.id, error: serializeError(err) }));
  });
  post({ type: 'ready' });
}

await main();
