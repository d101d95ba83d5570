// What the SDK worker checks and turns into frames: its queue configs, its
// coordinator URLs, and a handler's result (worker.ts).
import type { ResourceLimits } from 'node:worker_threads';
import type { RawData } from 'ws';
import { exceedsJsonDepth } from '../types/json-depth.ts';
import { LIMITS } from '../types/limits.ts';
import type { Assignment, Json, Trace } from '../types/model.ts';
import { WORKER_PATH } from '../types/protocol.ts';
import { execOutDir, type ExecOptions } from './exec.ts';
import type { Handler } from './handler.ts';
import type { Publisher } from './publish/publisher.ts';

/** How one queue's attempts run: exactly one of handler, module or exec. */
export type QueueConfig = (
  | { slots: number; handler: Handler }
  | { slots: number; module: string | URL; resourceLimits?: ResourceLimits }
  | { slots: number; exec: ExecOptions }
) & {
  /**
   * Where this queue's outputs are published once a result is accepted (docs/publishing.md): an exec
   * attempt's GAFFER_OUT_DIR, or the directory a handler names with ctx.setOutputDir. Not for modules.
   */
  publish?: Publisher;
};

export type Outcome = { ok: true; result: Json; trace: Trace | null } | { ok: false; code: string; message: string; retryable: boolean };

export function resultOutcome(result: unknown, trace: Trace | null): Outcome {
  const value = result === undefined ? null : result;
  if (exceedsJsonDepth(value, LIMITS.jsonNestingMaxLevels)) {
    const message = `the result nests arrays and objects more than ${LIMITS.jsonNestingMaxLevels} levels deep`;
    return { ok: false, code: 'HANDLER_ERROR', message, retryable: false };
  }
  const bytes = jsonBytes(value);
  if (bytes === null) return { ok: false, code: 'HANDLER_ERROR', message: 'the handler returned a value that is not JSON', retryable: false };
  if (bytes > LIMITS.resultMaxBytes) {
    const message = `the result is ${bytes} bytes; the limit is ${LIMITS.resultMaxBytes}`;
    return { ok: false, code: 'HANDLER_ERROR', message, retryable: false };
  }
  return { ok: true, result: value as Json, trace };
}

export function jsonBytes(value: unknown): number | null {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? null : Buffer.byteLength(text);
  } catch {
    return null;
  }
}


export function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** ws:// or wss:// with the worker path; http(s):// becomes ws(s)://, and an empty path becomes /v1/worker. */
export function workerUrl(input: string): string {
  const u = new URL(input);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`a coordinator URL is ws://, wss://, http:// or https://, not ${input}`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = WORKER_PATH;
  return u.toString();
}

export function checkQueues(queues: Record<string, QueueConfig>): void {
  const names = Object.keys(queues);
  if (names.length === 0) throw new TypeError('a worker serves at least one queue');
  for (const [name, c] of Object.entries(queues)) {
    const kinds = ['handler', 'module', 'exec'].filter((k) => k in c);
    if (kinds.length !== 1) throw new TypeError(`queue ${name}: give exactly one of handler, module or exec`);
    if (!Number.isInteger(c.slots) || c.slots < 1 || c.slots > LIMITS.workerSlotsMax) {
      throw new TypeError(`queue ${name}: slots is an integer from 1 to ${LIMITS.workerSlotsMax}`);
    }
    if (c.publish !== undefined && 'module' in c) throw new TypeError(`queue ${name}: a module queue has no output directory to publish; use handler or exec`);
  }
}

/** The output directory of an exec attempt, or null when its ids are not of the issued shape (the runner refuses it). */
export function outDirOf(exec: Parameters<typeof execOutDir>[0], a: Assignment): string | null {
  try {
    return execOutDir(exec, a);
  } catch {
    return null;
  }
}
