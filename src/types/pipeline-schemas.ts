// JSON Schemas of pipeline templates and submits: the config's
// `[pipelines.NAME]` tables, inline templates and `POST /v1/pipelines`
// bodies are checked with the same objects, and the OpenAPI document shows them.
import { LIMITS } from './limits.ts';
import { jobSpecSchema, queueNameSchema } from './schemas.ts';

const PHASE_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_-]{0,63}$';
const TEMPLATE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';
const job = jobSpecSchema.properties;

export const templateNameSchema = { type: 'string', pattern: TEMPLATE_NAME_PATTERN } as const;

export const phaseTemplateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'queue'],
  properties: {
    name: { type: 'string', pattern: PHASE_NAME_PATTERN },
    queue: queueNameSchema,
    count: { type: 'integer', minimum: 1, maximum: LIMITS.pipelineFanOutMax },
    after: { type: 'array', maxItems: LIMITS.pipelinePhasesMax, uniqueItems: true, items: { type: 'string', pattern: PHASE_NAME_PATTERN } },
    requires: job.requires,
    affinity: { const: 'parent' },
    affinityMode: { enum: ['prefer', 'require'] },
    maxAttempts: job.maxAttempts,
    priority: job.priority,
    timeoutMs: job.timeoutMs,
    heartbeatTimeoutMs: job.heartbeatTimeoutMs,
  },
} as const;

export const pipelineTemplateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['phases'],
  properties: {
    name: templateNameSchema,
    phases: { type: 'array', minItems: 1, maxItems: LIMITS.pipelinePhasesMax, items: phaseTemplateSchema },
    onFailure: { enum: ['fail', 'cancel'] },
  },
} as const;

export const pipelineSpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['template'],
  properties: {
    template: { oneOf: [templateNameSchema, pipelineTemplateSchema] },
    payload: {},
    key: job.idempotencyKey,
    locality: { type: 'string', minLength: 1, maxLength: LIMITS.keyMaxChars, pattern: job.idempotencyKey.pattern },
  },
} as const;
