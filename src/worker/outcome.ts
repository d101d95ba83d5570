// What a handler's return value becomes: a result to send, or a failure the
// worker reports itself when the value cannot be sent (not JSON, nested too
// deep, larger than resultMaxBytes).
import { LIMITS } from '../types/limits.ts';
import { exceedsJsonDepth } from '../types/json-depth.ts';
import type { Json, Trace } from '../types/model.ts';

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
