// Parsing and validating the frames a worker sends. Each frame is one
// WebSocket text message holding one JSON object with a `type`. Anything else
// is a protocol violation, reported as a GafferError the socket turns into an
// error frame. The worker's own description inside hello is validated by the
// coordinator (normalizeWorker), not here.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { GafferError } from '../types/errors.ts';
import { LIMITS, PROTOCOL_DEFAULTS, PUBLISH_DEFAULTS } from '../types/limits.ts';
import type { WorkerFrame } from '../types/protocol.ts';

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });

const id = { type: 'string', minLength: 1, maxLength: 128 } as const;
const key = { type: 'string', minLength: 1, maxLength: LIMITS.keyMaxChars } as const;
const leaseRef = {
  type: 'object',
  additionalProperties: false,
  required: ['attemptId', 'lease'],
  properties: { attemptId: id, lease: id },
} as const;
const attempts = { type: 'array', maxItems: PROTOCOL_DEFAULTS.attemptsPerFrameMax, items: leaseRef } as const;
const keys = { type: 'array', maxItems: LIMITS.workerKeysMax, items: key } as const;
const publishedObject = {
  type: 'object',
  additionalProperties: false,
  required: ['path', 'url', 'bytes', 'sha256'],
  properties: {
    path: { type: 'string', minLength: 1, maxLength: PUBLISH_DEFAULTS.publishPathMaxChars },
    // A URL is the publisher's location (at most a path's length) and the path, escaped.
    url: { type: 'string', minLength: 1, maxLength: 4 * PUBLISH_DEFAULTS.publishPathMaxChars },
    bytes: { type: 'integer', minimum: 0 },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
} as const;
const manifest = {
  type: 'object',
  additionalProperties: false,
  required: ['publisher', 'kind', 'objects', 'bytes'],
  properties: {
    publisher: { type: 'string', minLength: 1, maxLength: 128 },
    kind: { enum: ['dir', 's3'] },
    objects: { type: 'array', maxItems: PUBLISH_DEFAULTS.publishFilesMax, items: publishedObject },
    bytes: { type: 'integer', minimum: 0 },
  },
} as const;
const frameError = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'message'],
  properties: { code: { type: 'string', minLength: 1, maxLength: 64 }, message: { type: 'string' } },
} as const;

/** One schema per frame type; `type` itself is checked before these run. */
const SCHEMAS = {
  hello: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'protocol', 'worker'],
    properties: { type: {}, protocol: { type: 'integer' }, worker: { type: 'object' }, attempts },
  },
  heartbeat: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'attempts'],
    properties: { type: {}, attempts },
  },
  progress: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'attemptId', 'lease', 'progress'],
    properties: { type: {}, attemptId: id, lease: id, progress: {} },
  },
  complete: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'attemptId', 'lease', 'result'],
    // The trace's contents are checked by the coordinator (checkTrace), which answers a bad one with an ack.
    properties: { type: {}, attemptId: id, lease: id, result: {}, trace: { type: ['object', 'null'] }, output: { type: 'boolean' } },
  },
  fail: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'attemptId', 'lease', 'error'],
    properties: {
      type: {},
      attemptId: id,
      lease: id,
      error: frameError,
      retryable: { type: 'boolean' },
    },
  },
  keys: {
    type: 'object',
    additionalProperties: false,
    required: ['type'],
    properties: { type: {}, hold: keys, release: keys },
  },
  drain: {
    type: 'object',
    additionalProperties: false,
    required: ['type'],
    properties: { type: {} },
  },
  published: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'jobId', 'attemptId'],
    properties: { type: {}, jobId: id, attemptId: id, manifest, error: frameError },
  },
} as const;

export type WorkerFrameType = keyof typeof SCHEMAS;

export const WORKER_FRAME_TYPES = Object.keys(SCHEMAS) as WorkerFrameType[];

const validators = Object.fromEntries(
  Object.entries(SCHEMAS).map(([type, schema]) => [type, ajv.compile(schema)]),
) as Record<WorkerFrameType, ValidateFunction>;

/** A protocol violation: the error frame carries `frame` (the type, when known). */
export class FrameError extends GafferError {
  readonly frame: string | undefined;
  readonly attemptId: string | undefined;

  constructor(error: GafferError, frame?: string, attemptId?: string) {
    super(error.code, error.message, error.details);
    this.frame = frame;
    this.attemptId = attemptId;
  }
}

function violation(message: string, frame?: string, code: 'PROTOCOL_ERROR' | 'PAYLOAD_TOO_LARGE' = 'PROTOCOL_ERROR'): FrameError {
  return new FrameError(new GafferError(code, message), frame);
}

function describe(type: string, e: ErrorObject | undefined): string {
  if (!e) return `${type} frame is not valid`;
  const where = `${type}${e.instancePath.replaceAll('/', '.')}`;
  if (e.keyword === 'additionalProperties') {
    return `${where} has an unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  }
  return `${where} ${e.message ?? 'is not valid'}`;
}

/**
 * Turns one WebSocket message into a worker frame, or throws a FrameError
 * naming what is wrong. `frameMaxBytes` bounds the text before it is parsed.
 */
export function parseWorkerFrame(data: Buffer, isBinary: boolean, frameMaxBytes: number): WorkerFrame {
  if (isBinary) throw violation('frames are text messages holding UTF-8 JSON, not binary');
  if (data.byteLength > frameMaxBytes) {
    throw violation(`the frame is ${data.byteLength} bytes; the limit is ${frameMaxBytes}`, undefined, 'PAYLOAD_TOO_LARGE');
  }
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    throw violation('the frame is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw violation('a frame is a JSON object');
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') throw violation('a frame has a string field "type"');
  if (!Object.hasOwn(validators, type)) {
    throw violation(`unknown frame type "${type.slice(0, 64)}"; a worker sends ${WORKER_FRAME_TYPES.join(', ')}`, type.slice(0, 64));
  }
  const check = validators[type as WorkerFrameType];
  if (!check(value)) {
    const attemptId = (value as { attemptId?: unknown }).attemptId;
    const err = violation(describe(type, check.errors?.[0]), type);
    throw typeof attemptId === 'string' ? new FrameError(err, type, attemptId.slice(0, 128)) : err;
  }
  return value as WorkerFrame;
}
