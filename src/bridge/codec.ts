// What travels between AMQP and Gaffer: a request body as a job payload, a
// finished job as a reply, the idempotency key of a request, and the record
// of a reply owed (kept in the broker's durable pending queue until it is sent).
import { createHash } from 'node:crypto';
import { GafferError } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';
import type { Job, Json } from '../types/model.ts';

/** How a request body becomes a payload, and a result a reply body. */
export type PayloadFormat = 'json' | 'text' | 'bytes';
export const PAYLOAD_FORMATS: readonly PayloadFormat[] = ['json', 'text', 'bytes'];

/** The reply header that carries a failed job's error code (absent on success). */
export const ERROR_CODE_HEADER = 'x-gaffer-error-code';
export const JOB_ID_HEADER = 'x-gaffer-job-id';
export const JOB_STATE_HEADER = 'x-gaffer-state';

/** The message properties the bridge reads; the same names as AMQP's. */
export interface RequestProperties {
  messageId?: string | undefined;
  correlationId?: string | undefined;
  replyTo?: string | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The job payload for a request body; INVALID_INPUT when the body is not what the format says. */
export function payloadOf(body: Uint8Array | null, format: PayloadFormat): Json {
  const bytes = body ?? new Uint8Array(0);
  if (format === 'bytes') return Buffer.from(bytes).toString('base64');
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new GafferError('INVALID_INPUT', 'the message body is not UTF-8 text');
  }
  if (format === 'text') return text;
  try {
    return JSON.parse(text) as Json;
  } catch {
    throw new GafferError('INVALID_INPUT', 'the message body is not JSON');
  }
}

/**
 * The reply body for a result: JSON text in `json`; in `text` a string result as
 * itself; in `bytes` a string result read as base64. Other values are JSON.
 */
export function replyBodyOf(result: Json, format: PayloadFormat): Uint8Array {
  if (typeof result === 'string' && format === 'text') return Buffer.from(result, 'utf8');
  if (typeof result === 'string' && format === 'bytes') return Buffer.from(result, 'base64');
  return Buffer.from(JSON.stringify(result), 'utf8');
}

/**
 * The idempotency key of a request: its message id, else its correlation id,
 * scoped by the AMQP queue; hashed when it would pass keyMaxChars. Null when the
 * message has neither, so that a redelivery could not be told from a new request.
 */
export function idempotencyKeyOf(amqpQueue: string, props: RequestProperties): string | null {
  const id = props.messageId ? `m:${props.messageId}` : props.correlationId ? `c:${props.correlationId}` : null;
  if (id === null) return null;
  const key = `amqp:${amqpQueue}:${id}`;
  if (key.length <= LIMITS.keyMaxChars && !/[\u0000\uD800-\uDFFF]/u.test(key)) return key;
  return `amqp:${createHash('sha256').update(amqpQueue).update('\0').update(id).digest('hex')}`;
}

/** A reply owed: written to the pending queue in the same AMQP transaction that acks the request. */
export interface PendingReply {
  jobId: string;
  replyTo: string;
  correlationId: string | null;
}

export function encodePending(p: PendingReply): Uint8Array {
  return Buffer.from(JSON.stringify({ v: 1, ...p }), 'utf8');
}

/** The record back, or null when the message is not one (it is then dropped, never answered). */
export function decodePending(body: Uint8Array | null): PendingReply | null {
  try {
    const o = JSON.parse(utf8.decode(body ?? new Uint8Array(0))) as Record<string, unknown>;
    if (o.v !== 1 || typeof o.jobId !== 'string' || typeof o.replyTo !== 'string') return null;
    const correlationId = typeof o.correlationId === 'string' ? o.correlationId : null;
    return { jobId: o.jobId, replyTo: o.replyTo, correlationId };
  } catch {
    return null;
  }
}

export interface Reply {
  body: Uint8Array;
  contentType: string;
  headers: Record<string, string>;
}

/** The reply to a request that never became a job (refused by the bridge or the coordinator). */
export function errorReply(code: string, message: string, jobId: string | null, state = 'refused'): Reply {
  const headers: Record<string, string> = { [ERROR_CODE_HEADER]: code, [JOB_STATE_HEADER]: state };
  if (jobId !== null) headers[JOB_ID_HEADER] = jobId;
  return { body: Buffer.from(JSON.stringify({ error: { code, message } }), 'utf8'), contentType: 'application/json', headers };
}

/** The reply to a job that ended: its result, or its error with the code in ERROR_CODE_HEADER. */
export function replyOf(job: Job, format: PayloadFormat): Reply {
  if (job.state === 'succeeded') {
    const json = format === 'json' || typeof job.result !== 'string';
    return {
      body: replyBodyOf(job.result, format),
      contentType: json ? 'application/json' : format === 'text' ? 'text/plain; charset=utf-8' : 'application/octet-stream',
      headers: { [JOB_ID_HEADER]: job.id, [JOB_STATE_HEADER]: job.state },
    };
  }
  const code = job.error?.code ?? job.state.toUpperCase();
  return errorReply(code, job.error?.message ?? `job ${job.state}`, job.id, job.state);
}
