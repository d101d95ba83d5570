// The OpenAPI 3.1 document of the HTTP API, built from the route table
// (routes.ts) and the request schemas the coordinator validates with
// (types/schemas.ts), so that the document describes what the server does.
import { ERRORS } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';
import { jobSpecSchema, queueNameSchema } from '../types/schemas.ts';
import { phaseTemplateSchema, pipelineSpecSchema, pipelineTemplateSchema } from '../types/pipeline-schemas.ts';
import { PIPELINE_STATES } from '../types/pipeline.ts';
import { ATTEMPT_STATES, JOB_STATES, WORKER_STATES } from '../types/states.ts';
import { HISTORY_COUNTERS } from '../types/history.ts';
import { SCOPES } from './auth.ts';
import { idSchema, ROUTES, type JsonSchema, type RouteSpec } from './routes.ts';

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const int = { type: 'integer' } as const;
const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const ms = (description: string): JsonSchema => ({ type: 'integer', description });
const msOrNull = (description: string): JsonSchema => ({ type: ['integer', 'null'], description });
const orNull = (schema: JsonSchema): JsonSchema => ({ oneOf: [schema, { type: 'null' }] });
const object = (properties: Record<string, JsonSchema>, extra: JsonSchema = {}): JsonSchema => ({
  type: 'object',
  required: Object.keys(properties),
  properties,
  ...extra,
});
const labels = { type: 'object', additionalProperties: { type: 'string' } } as const;
const countsByName = { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } } as const;

/** The submit schema without its Ajv `$id`; everything else is what the coordinator enforces. */
function jobSpecDoc(): JsonSchema {
  const { $id: _id, ...rest } = jobSpecSchema;
  return { ...rest, description: 'What a client submits. Everything but queue is optional; defaults come from the queue, then from docs/limits.md.' };
}

const jobError = object(
  { code: str, message: str },
  { properties: { code: str, message: str, attemptId: str, jobId: str }, description: 'Why a job or attempt ended badly: HANDLER_ERROR, TIMEOUT, LEASE_LOST, DEADLINE_EXCEEDED, DEPENDENCY_FAILED, DEPENDENCY_CANCELLED, PIPELINE_FAILED, PIPELINE_CANCELLED, CANCELLED, NO_QUORUM, RESULT_REJECTED, VERIFICATION_FAILED, BAD_VERDICT, QUARANTINED (docs/errors.md).' },
);

const verify = {
  oneOf: [
    object({ mode: { const: 'trace' }, tolerance: { type: 'number' } }),
    object({ mode: { const: 'queue' }, queue: queueNameSchema }),
    { type: 'null' },
  ],
};

const jobProperties: Record<string, JsonSchema> = {
  id: { type: 'string', description: 'Time-sortable (ULID).' },
  queue: queueNameSchema,
  state: { type: 'string', enum: [...JOB_STATES] },
  payload: { description: 'The JSON the client submitted.' },
  priority: int,
  runAt: ms('Not before this time (epoch ms).'),
  deadline: msOrNull('Must start by this time (epoch ms), or it ends expired.'),
  timeoutMs: int,
  heartbeatTimeoutMs: int,
  maxAttempts: int,
  backoff: object({ baseMs: int, maxMs: int }),
  requires: object({ cores: int, memoryMb: int, gpus: int, labels }),
  affinity: orNull(object({ key: str, mode: { type: 'string', enum: ['prefer', 'require'] } })),
  dependsOn: { type: 'array', items: str },
  replicas: int,
  quorum: int,
  margin: { type: 'integer', description: 'How far the leading result must be ahead of the runner-up, pending replicas counted for the runner-up (docs/trust.md).' },
  distinct: { type: 'string', enum: ['operator', 'worker'], description: 'Replicas go to workers of distinct operators, or only to distinct workers.' },
  verify,
  adaptive: { type: 'boolean', description: 'Adaptive replication: a trusted worker may run it alone, spot-checked (docs/trust.md).' },
  idempotencyKey: { type: ['string', 'null'] },
  labels,
  attempts: { type: 'integer', description: 'Attempts created so far.' },
  failures: { type: 'integer', description: 'Attempts that failed or timed out: the retry budget spent.' },
  lost: { type: 'integer', description: 'Workers that lost an attempt of it by going silent: charged to them, not to maxAttempts; at most jobLostAttemptsMax.' },
  want: { type: 'integer', description: 'Attempts wanted and not yet handed out.' },
  live: { type: 'integer', description: 'Attempts leased or running now.' },
  pendingParents: { type: 'integer', description: 'Parents in dependsOn that have not yet succeeded.' },
  solo: { type: 'boolean', description: 'This round runs on one trusted worker alone (adaptive replication).' },
  verifies: orNull(object({ jobId: str, attemptId: str }, { description: 'For a verification job: the job and attempt whose result it checks.' })),
  pinnedWorkerId: { type: ['string', 'null'], description: 'For a reliability challenge: the only worker that may run it.' },
  pipeline: orNull(object({ id: str, phase: str, index: int }, { description: 'For a job of a pipeline instance: the instance, its phase, its number in the phase (from 0).' })),
  filler: { type: 'boolean', description: 'Made by the backlog keeper to keep idle capacity busy ([queues.NAME.backlog], docs/configuration.md).' },
  result: { description: 'The accepted result once the job succeeded, else null.' },
  publish: orNull(
    object(
      {
        state: { type: 'string', enum: ['pending', 'published', 'failed'] },
        attemptId: str,
        workerId: str,
        tries: { type: 'integer', description: 'Publishes the worker reported as failed so far.' },
        error: orNull(ref('JobError')),
        manifest: orNull(
          object({
            publisher: str,
            kind: { type: 'string', enum: ['dir', 's3'] },
            objects: { type: 'array', items: object({ path: str, url: str, bytes: int, sha256: str }) },
            bytes: int,
          }),
        ),
        updatedAt: ms('Epoch ms.'),
      },
      { description: "The accepted attempt's output, published by its worker (docs/publishing.md); null when it left none." },
    ),
  ),
  error: orNull(ref('JobError')),
  createdAt: ms('Epoch ms.'),
  updatedAt: ms('Epoch ms.'),
  finishedAt: msOrNull('When the job reached a terminal state (epoch ms).'),
};

const { payload: _payload, result: _result, publish: _publish, ...summaryProperties } = jobProperties;

const attempt = object({
  id: str,
  jobId: str,
  workerId: str,
  queue: str,
  state: { type: 'string', enum: [...ATTEMPT_STATES] },
  gpuIds: { type: 'array', items: int },
  cores: int,
  memoryMb: int,
  leasedAt: ms('Epoch ms.'),
  startedAt: msOrNull('First heartbeat or progress (epoch ms).'),
  heartbeatAt: ms('Epoch ms.'),
  leaseExpiresAt: ms('The worker must heartbeat before this (epoch ms).'),
  timeoutAt: ms('The attempt must finish before this (epoch ms).'),
  finishedAt: msOrNull('Epoch ms.'),
  result: { description: 'Kept per attempt only for replicated jobs.' },
  resultHash: { type: ['string', 'null'] },
  error: orNull(ref('JobError')),
  progress: { description: 'The last progress value the worker reported, or null.' },
  trace: {
    description: 'The resource trace the worker sent with its result, or null: { intervalMs, samples: [{ tMs, cpuMs, rssKb }] } (docs/worker-protocol.md).',
  },
  backupOf: { type: ['string', 'null'], description: 'A speculative backup: the attempt it backs up (the first of the two to bring a result wins), or null.' },
  backupReason: { enum: ['deadline', 'slow', null], description: 'Why the backup was started: the attempt would miss its deadline, or ran far past its queue\'s usual time.' },
});

const worker = object({
  id: str,
  name: str,
  labels,
  cores: int,
  memoryMb: int,
  gpuIds: { type: 'array', items: int },
  queues: { ...countsByName, description: 'Slots per queue served.' },
  keys: { type: 'array', items: str, description: 'Affinity keys the worker holds.' },
  state: { type: 'string', enum: [...WORKER_STATES] },
  draining: bool,
  quarantined: bool,
  quarantineReason: { type: ['string', 'null'], description: 'Why it was quarantined.' },
  operator: { type: ['string', 'null'], description: 'The operator named by the token whose hello created the record; only it may say hello as this worker.' },
  host: { type: ['string', 'null'], description: 'The host name the worker reported in its hello (null when it did not say).' },
  pid: { type: ['integer', 'null'], description: 'The process id the worker reported in its hello (null when it did not say).' },
  reputation: object(
    { valid: int, invalid: int, timedOut: int, credit: int, streak: int, soloSinceCheck: int },
    {
      description:
        'Judged results (valid, invalid), timeouts and lost leases, the attempts it may hold at once (slow start), ' +
        'the current valid streak, and adaptive jobs run alone since the last spot check.',
    },
  ),
  checks: {
    type: 'object',
    description: 'Reliability checks per queue: state (pending, passed, failed), the challenge jobId, speedMs, reason, updatedAt.',
    additionalProperties: object({
      state: { type: 'string', enum: ['pending', 'passed', 'failed'] },
      jobId: str,
      speedMs: { type: ['integer', 'null'] },
      reason: { type: ['string', 'null'] },
      updatedAt: int,
    }),
  },
  connected: bool,
  connectedAt: ms('Epoch ms.'),
  lastSeenAt: ms('Epoch ms.'),
  running: { ...countsByName, description: 'Slots in use per queue: attempts leased or running.' },
  pausedQueues: { type: 'array', items: str, description: 'Queues paused on this worker (POST /v1/workers/{id}/queues/{queue}/pause): it is handed nothing of them.' },
  createdAt: ms('Epoch ms.'),
});

const stateCounts = object(Object.fromEntries(JOB_STATES.map((s) => [s, int])));

const queueStats = object({
  queue: str,
  paused: { type: 'boolean', description: 'Paused by an operator (POST /v1/queues/{name}/pause): no new attempts are handed out.' },
  pausedAt: msOrNull('When it was paused; null when not paused.'),
  pauseReason: { type: ['string', 'null'] },
  counts: stateCounts,
  fillerQueued: { type: 'integer', description: 'Of the queued jobs, the filler jobs the backlog keeper made.' },
  slots: object(
    { workers: int, total: int, used: int },
    { description: 'Over workers that are not offline and serve the queue: how many, their slots, and the slots in use.' },
  ),
  oldestReadyAgeMs: { type: ['integer', 'null'], description: 'How long the job ready longest has waited (now - its runAt); null when no job is ready.' },
  recent: object(
    {
      spanMs: { type: 'integer', description: 'The time the figures cover: the window, or less when the sample bound cut it.' },
      completed: { type: 'integer', description: 'Attempts that ended with a result.' },
      failed: { type: 'integer', description: 'Attempts that failed, timed out or were lost.' },
      throughputPerMinute: { type: 'number', description: 'completed per minute over spanMs.' },
      runTimeMeanMs: { type: ['number', 'null'], description: 'Mean of finishedAt - leasedAt over completed attempts.' },
      runTimeP95Ms: { type: ['number', 'null'], description: 'Nearest-rank 95th percentile of the same.' },
    },
  ),
});

const pipelineProperties: Record<string, JsonSchema> = {
  id: { type: 'string', description: 'Time-sortable (ULID).' },
  template: str,
  state: { type: 'string', enum: [...PIPELINE_STATES] },
  key: { type: ['string', 'null'], description: 'The idempotency key it was submitted with.' },
  locality: { type: 'string', description: 'The locality key its `affinity = "parent"` phases run by (its id when the submit gave none).' },
  onFailure: { type: 'string', enum: ['fail', 'cancel'] },
  error: orNull(ref('JobError')),
  createdAt: ms('Epoch ms.'),
  updatedAt: ms('Epoch ms.'),
  finishedAt: msOrNull('When it succeeded, failed or was cancelled (epoch ms).'),
};

const pipelineSchemas = (): Record<string, JsonSchema> => ({
  PipelineSpec: { ...pipelineSpecSchema, description: 'A submit: a template (its name, or the template itself), the payload every job gets, an idempotency key, a locality key.' },
  PipelineTemplate: pipelineTemplateSchema,
  PhaseTemplate: phaseTemplateSchema,
  Pipeline: object(pipelineProperties),
  PipelineDetail: object({
    ...pipelineProperties,
    payload: { description: 'The JSON every job of the instance got.' },
    phases: {
      type: 'array',
      items: object({
        name: str,
        queue: queueNameSchema,
        state: { type: 'string', enum: ['waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled'] },
        jobs: { type: 'array', items: object({ id: str, index: int, state: { type: 'string', enum: [...JOB_STATES] } }) },
      }),
    },
  }),
  PipelinePage: object({ pipelines: { type: 'array', items: ref('Pipeline') }, nextCursor: { type: ['string', 'null'] } }),
  PipelineTemplateList: object({ templates: { type: 'object', additionalProperties: ref('PipelineTemplate') } }),
});

const numOrNull = (description: string): JsonSchema => ({ type: ['number', 'null'], description });
const adviceSchemas = (): Record<string, JsonSchema> => ({
  AdvicePhase: object({
    queue: str,
    status: { type: 'string', enum: ['unmeasured', 'idle', 'keeping-up', 'overloaded', 'no-slots'] },
    runTimeMeanMs: numOrNull('Mean run time of the attempts completed in the window; null: none completed.'),
    slots: { type: 'integer', description: 'Slots of the workers that count.' },
    capacityPerHour: numOrNull('slots x 3 600 000 / runTimeMeanMs.'),
    submittedPerHour: { type: 'number', description: 'Jobs submitted to the queue per hour.' },
    arrivalPerHour: { type: 'number', description: 'submittedPerHour, or what the parent queues feed it when that is more.' },
    fedBy: { type: 'array', items: str, description: 'Queues this queue\'s jobs depend on.' },
    utilisation: numOrNull('arrivalPerHour / capacityPerHour; null when unmeasured or without slots.'),
    slotsNeeded: numOrNull("Little's law: arrivalPerHour x runTimeMeanMs / 3 600 000."),
    slotsToBalance: { type: ['integer', 'null'], description: 'ceil(slotsNeeded).' },
    slotsShort: { type: ['integer', 'null'], description: 'slotsToBalance - slots, at least 0.' },
  }),
  Advice: object({
    at: ms('Epoch ms.'),
    windowMs: int,
    workersCounted: int,
    phases: { type: 'array', items: ref('AdvicePhase') },
    bottleneck: { type: ['string', 'null'], description: 'The measured queue with the highest utilisation; null when nothing arrives.' },
    headroom: numOrNull('1 / the bottleneck\'s utilisation: how much every arrival rate may grow (below 1: the pipeline falls behind; 0: a queue has work and no slots).'),
    kinds: {
      type: 'array',
      items: object({ queues: countsByName, workers: int, examples: { type: 'array', items: str }, headroomWithOneMore: { type: ['number', 'null'] } }),
      description: 'Kinds of connected workers by the slots per queue they declare.',
    },
    add: { type: 'array', items: object({ queues: countsByName, workers: int }), description: 'Workers to add, by kind, until the headroom reaches 1.' },
    headroomAfterAdd: numOrNull('The headroom once `add` is carried out.'),
    edges: {
      type: 'array',
      items: object({ from: str, to: str, deps: int, parents: int, children: int, fromJobs: int }),
      description: 'Dependencies between queues among the sampled jobs.',
    },
    edgesTruncated: bool,
  }),
});

export function componentSchemas(): Record<string, JsonSchema> {
  return {
    Error: object(
      {
        error: object(
          { code: { type: 'string', enum: Object.keys(ERRORS) }, message: str },
          { properties: { code: { type: 'string', enum: Object.keys(ERRORS) }, message: str, details: { description: 'Machine-readable context.' } } },
        ),
      },
      { description: 'Every error answer. Match on code (docs/errors.md).' },
    ),
    JobSpec: jobSpecDoc(),
    JobError: jobError,
    Job: object(jobProperties),
    JobSummary: object(summaryProperties, { description: 'A job without its payload, result and publish.' }),
    JobDetail: { allOf: [ref('Job'), object({ attemptList: { type: 'array', items: ref('Attempt') } })] },
    Attempt: attempt,
    JobPage: object({ jobs: { type: 'array', items: ref('JobSummary') }, nextCursor: { type: ['string', 'null'] } }),
    BatchSubmit: object({ jobs: { type: 'array', minItems: 1, maxItems: LIMITS.submitBatchMaxJobs, items: ref('JobSpec') } }, { additionalProperties: false }),
    BatchResult: object({ results: { type: 'array', items: object({ created: bool, job: ref('Job') }) } }),
    CancelRequest: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: LIMITS.errorMessageMaxChars } } },
    Empty: { type: 'object', additionalProperties: false, properties: {} },
    Worker: worker,
    WorkerDetail: { allOf: [ref('Worker'), object({ attempts: { type: 'array', items: ref('Attempt') } })] },
    WorkerList: object({
      workers: { type: 'array', items: ref('Worker') },
      nextCursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null on the last.' },
      counts: object({ total: int, byState: object(Object.fromEntries(WORKER_STATES.map((s) => [s, int]))) }),
    }),
    QueueStats: queueStats,
    QueueList: object({ windowMs: int, queues: { type: 'array', items: ref('QueueStats') } }),
    ...adviceSchemas(),
    ...pipelineSchemas(),
    JobEvent: object({ jobId: str, state: { type: 'string', enum: [...JOB_STATES] }, at: ms('Epoch ms.') }),
    WorkerEvent: object({ workerId: str, event: { type: 'string', enum: ['attached', 'detached', 'draining', 'quarantined', 'released'] }, at: ms('Epoch ms.') }),
    PauseRequest: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: LIMITS.errorMessageMaxChars } } },
    QueueState: object({ queue: str, paused: bool, pausedAt: { type: ['integer', 'null'], description: 'Epoch ms; null when not paused.' }, reason: { type: ['string', 'null'] } }),
    TrustHistory: object({
      step: { type: 'string', enum: ['minute', 'hour'] },
      from: ms('Epoch ms, the start of the first step.'),
      to: ms('Epoch ms, excluded.'),
      truncated: { type: 'boolean', description: 'historyMaxPoints points were returned: older ones in the range were left out.' },
      points: {
        type: 'array',
        items: object({ queue: str, at: ms('Epoch ms, the start of the minute or hour.'), invalid: int, failedChecks: int }),
      },
    }),
    History: object({
      step: { type: 'string', enum: ['minute', 'hour'] },
      from: ms('Epoch ms, the start of the first step.'),
      to: ms('Epoch ms, excluded.'),
      truncated: { type: 'boolean', description: 'historyMaxPoints points were returned: older ones in the range were left out.' },
      buckets: { type: 'array', items: object({ name: str, leMs: { type: ['integer', 'null'], description: 'Upper bound, inclusive; null: the open last bucket.' } }) },
      points: {
        type: 'array',
        items: object({
          queue: str,
          at: ms('Epoch ms, the start of the minute or hour.'),
          counts: object(Object.fromEntries(HISTORY_COUNTERS.map((k) => [k, int]))),
          wait: object({ buckets: { type: 'array', items: int }, sumMs: int }),
          run: object({ buckets: { type: 'array', items: int }, sumMs: int }),
        }),
      },
    }),
    QuarantineRequest: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: LIMITS.errorMessageMaxChars } } },
    Health: object({ status: { const: 'ok' } }),
    Ready: object({ status: { const: 'ready' }, store: { type: 'string', enum: ['sqlite', 'postgres'] } }),
    OpenApiDocument: { type: 'object' },
  };
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad input: INVALID_INPUT, UNKNOWN_FIELD, UNKNOWN_DEPENDENCY or UNKNOWN_TEMPLATE',
  401: 'UNAUTHORIZED: no token, or not a known one',
  403: 'FORBIDDEN: the token lacks the scope',
  404: 'JOB_NOT_FOUND, WORKER_NOT_FOUND or PIPELINE_NOT_FOUND',
  409: 'INVALID_STATE: the job is not in a state that allows this',
  413: 'PAYLOAD_TOO_LARGE: the body or the payload is over its limit',
  500: 'INTERNAL',
  503: 'NOT_READY or STORE_BUSY',
};

const openApiPath = (url: string): string => url.replace(/:([A-Za-z]+)/g, '{$1}');

function operation(route: RouteSpec): JsonSchema {
  const parameters: JsonSchema[] = [];
  for (const m of route.url.matchAll(/:([A-Za-z]+)/g)) {
    parameters.push({ name: m[1], in: 'path', required: true, schema: idSchema });
  }
  const query = (route.query?.properties ?? {}) as Record<string, JsonSchema>;
  for (const [name, schema] of Object.entries(query)) {
    const { description, ...rest } = schema;
    parameters.push({ name, in: 'query', required: false, schema: rest, ...(description ? { description } : {}) });
  }
  const responses: Record<string, JsonSchema> = {};
  for (const [status, r] of Object.entries(route.responses)) {
    const contentType = r.contentType ?? 'application/json';
    responses[status] = {
      description: r.description,
      content: { [contentType]: { schema: r.schema ? ref(r.schema) : { type: 'string' } } },
    };
  }
  const errors = [...route.errors, ...(route.scope ? [401, 403] : []), 500];
  for (const status of [...new Set(errors)].sort()) {
    responses[String(status)] = { description: STATUS_TEXT[status] ?? 'Error', content: { 'application/json': { schema: ref('Error') } } };
  }
  return {
    operationId: route.id,
    summary: route.summary,
    description: route.scope ? `${route.description}\n\nScope: ${route.scope}.` : `${route.description}\n\nNo token needed.`,
    tags: [route.url.startsWith('/v1/') ? route.url.split('/')[2] : 'health'],
    'x-gaffer-scope': route.scope,
    security: route.scope ? [{ bearer: [route.scope] }] : [],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.bodyDoc
      ? { requestBody: { required: route.bodyRequired, content: { 'application/json': { schema: ref(route.bodyDoc) } } } }
      : {}),
    responses,
  };
}

/** The whole document, as GET /v1/openapi.json serves it. */
export function buildOpenApi(version = '0.1.0'): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of ROUTES) {
    const path = openApiPath(route.url);
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation(route) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gaffer',
      version,
      description:
        'A coordinator for pools of heavy compute workers. JSON over HTTP under /v1. Every error answers `{ error: { code, message, details? } }`. ' +
        'Execution is at least once; acceptance of a result is exactly once.',
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: `Authorization: Bearer <token>. A token carries scopes (${SCOPES.join(', ')}); admin implies every scope. A server with no token configured allows every request.`,
        },
      },
    },
  };
}
