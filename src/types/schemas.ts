// JSON Schemas for what comes in from outside: job submits and worker hellos.
// The same objects validate in-process calls, HTTP bodies and the OpenAPI
// document, so a limit is written once.
import { GafferError } from './errors.ts';
import { LIMITS } from './limits.ts';

export const QUEUE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]*$';

/**
 * Text every store keeps and compares exactly as given: no NUL and no lone
 * UTF-16 surrogate. PostgreSQL's text type holds neither (a NUL is refused, a
 * lone surrogate would be sent as U+FFFD, so two different keys would become
 * one), and SQLite must accept no more than PostgreSQL does.
 */
const TEXT_PATTERN = '^[^\\u0000\\uD800-\\uDFFF]*$';

/** The same rule as a RegExp: matches text with a NUL or a lone surrogate (with the u flag, a paired one is one code point and does not match). */
export const UNSTORABLE_TEXT = /[\u0000\uD800-\uDFFF]/u;

const key = { type: 'string', minLength: 1, maxLength: LIMITS.keyMaxChars, pattern: TEXT_PATTERN } as const;

const labels = {
  type: 'object',
  maxProperties: LIMITS.labelsMaxCount,
  propertyNames: { maxLength: LIMITS.keyMaxChars, minLength: 1, pattern: TEXT_PATTERN },
  additionalProperties: { type: 'string', maxLength: LIMITS.keyMaxChars, pattern: TEXT_PATTERN },
} as const;

const time = {
  oneOf: [
    { type: 'integer', minimum: 0, maximum: 8_640_000_000_000_000 },
    { type: 'string', format: 'date-time' },
  ],
} as const;

export const queueNameSchema = {
  type: 'string',
  minLength: 1,
  maxLength: LIMITS.queueNameMaxChars,
  pattern: QUEUE_PATTERN,
} as const;

export const jobSpecSchema = {
  $id: 'JobSpec',
  type: 'object',
  additionalProperties: false,
  required: ['queue'],
  properties: {
    queue: queueNameSchema,
    payload: {},
    priority: { type: 'integer', minimum: LIMITS.priorityMin, maximum: LIMITS.priorityMax },
    runAt: time,
    deadline: time,
    timeoutMs: { type: 'integer', minimum: 1, maximum: LIMITS.timeoutMaxMs },
    heartbeatTimeoutMs: { type: 'integer', minimum: LIMITS.heartbeatTimeoutMinMs, maximum: LIMITS.heartbeatTimeoutMaxMs },
    maxAttempts: { type: 'integer', minimum: 1, maximum: LIMITS.maxAttemptsMax },
    backoff: {
      type: 'object',
      additionalProperties: false,
      properties: {
        baseMs: { type: 'integer', minimum: 0, maximum: LIMITS.backoffMaxMs },
        maxMs: { type: 'integer', minimum: 0, maximum: LIMITS.backoffMaxMs },
      },
    },
    requires: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cores: { type: 'integer', minimum: 0, maximum: LIMITS.coresMax },
        memoryMb: { type: 'integer', minimum: 0, maximum: LIMITS.memoryMbMax },
        gpus: { type: 'integer', minimum: 0, maximum: LIMITS.gpusMax },
        labels,
      },
    },
    affinity: {
      type: 'object',
      additionalProperties: false,
      required: ['key', 'mode'],
      properties: { key, mode: { enum: ['prefer', 'require'] } },
    },
    dependsOn: { type: 'array', maxItems: LIMITS.dependsOnMaxCount, items: key },
    replicas: { type: 'integer', minimum: 1, maximum: LIMITS.replicasMax },
    quorum: { type: 'integer', minimum: 1, maximum: LIMITS.replicasMax },
    margin: { type: 'integer', minimum: 1, maximum: LIMITS.replicasMax },
    distinct: { enum: ['operator', 'worker'] },
    verify: {
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['mode', 'tolerance'],
          properties: { mode: { const: 'trace' }, tolerance: { type: 'number', minimum: 0 } },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['queue'],
          properties: { mode: { const: 'queue' }, queue: queueNameSchema },
        },
      ],
    },
    adaptive: { type: 'boolean' },
    idempotencyKey: key,
    labels,
  },
} as const;

export const workerSpecSchema = {
  $id: 'WorkerSpec',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'queues'],
  properties: {
    id: key,
    name: key,
    labels,
    cores: { type: 'integer', minimum: 0, maximum: LIMITS.coresMax },
    memoryMb: { type: 'integer', minimum: 0, maximum: LIMITS.memoryMbMax },
    gpuIds: { type: 'array', maxItems: LIMITS.gpusMax, uniqueItems: true, items: { type: 'integer', minimum: 0, maximum: 1023 } },
    host: key,
    pid: { type: 'integer', minimum: 0, maximum: 4_294_967_295 },
    queues: {
      type: 'object',
      minProperties: 1,
      maxProperties: LIMITS.workerQueuesMax,
      propertyNames: queueNameSchema,
      additionalProperties: { type: 'integer', minimum: 1, maximum: LIMITS.workerSlotsMax },
    },
    keys: { type: 'array', maxItems: LIMITS.workerKeysMax, items: key },
  },
} as const;

/**
 * The affinity keys one worker holds, in count and in bytes: at most
 * workerKeysMax keys, at most workerKeysMaxBytes as UTF-8 JSON (the form they
 * are stored and listed in). Past either, INVALID_INPUT naming both bounds. A
 * hello checks its keys here, and so does every change a keys frame makes.
 */
export function checkWorkerKeys(keys: readonly string[], what: string): void {
  const bytes = Buffer.byteLength(JSON.stringify(keys), 'utf8');
  if (keys.length <= LIMITS.workerKeysMax && bytes <= LIMITS.workerKeysMaxBytes) return;
  throw new GafferError(
    'INVALID_INPUT',
    `${what}: a worker holds at most ${LIMITS.workerKeysMax} keys and ${LIMITS.workerKeysMaxBytes} bytes of them (UTF-8 JSON); ` +
      `these are ${keys.length} keys and ${bytes} bytes`,
    { keys: keys.length, bytes, maxKeys: LIMITS.workerKeysMax, maxBytes: LIMITS.workerKeysMaxBytes },
  );
}

/** A resource trace sent with a result (docs/worker-protocol.md). */
export const traceSchema = {
  $id: 'Trace',
  type: 'object',
  additionalProperties: false,
  required: ['intervalMs', 'samples'],
  properties: {
    intervalMs: { type: 'number', minimum: 0 },
    samples: {
      type: 'array',
      maxItems: LIMITS.traceSamplesMax,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['tMs', 'cpuMs', 'rssKb'],
        properties: {
          tMs: { type: 'number', minimum: 0 },
          cpuMs: { type: 'number', minimum: 0 },
          rssKb: { type: 'number', minimum: 0 },
        },
      },
    },
  },
} as const;
