// The HTTP API as one table: every route with its scope, its request checks
// and its responses. http.ts registers a handler for each entry and validates
// with these schemas; openapi.ts describes the same entries, so the document
// and the server cannot drift apart.
import { HTTP_DEFAULTS, LIMITS } from '../types/limits.ts';
import { queueNameSchema } from '../types/schemas.ts';
import { JOB_STATES, WORKER_STATES } from '../types/states.ts';
import { PIPELINE_STATES } from '../types/pipeline.ts';
import { templateNameSchema } from '../types/pipeline-schemas.ts';
import type { Scope } from './auth.ts';

export type RouteId =
  | 'healthz'
  | 'readyz'
  | 'openapi'
  | 'submitJob'
  | 'submitBatch'
  | 'listJobs'
  | 'getJob'
  | 'getResult'
  | 'cancelJob'
  | 'retryJob'
  | 'submitPipeline'
  | 'listPipelines'
  | 'getPipeline'
  | 'listPipelineTemplates'
  | 'listWorkers'
  | 'getWorker'
  | 'drainWorker'
  | 'quarantineWorker'
  | 'releaseWorker'
  | 'pauseWorkerQueue'
  | 'resumeWorkerQueue'
  | 'listQueues'
  | 'pauseQueue'
  | 'resumeQueue'
  | 'history'
  | 'trustHistory'
  | 'advice'
  | 'events';

export interface ResponseSpec {
  description: string;
  /** A schema name under components.schemas; absent for a stream. */
  schema?: string;
  /** Defaults to application/json. */
  contentType?: string;
}

export interface RouteSpec {
  id: RouteId;
  method: 'GET' | 'POST';
  /** In fastify's form: `/v1/jobs/:id`. */
  url: string;
  /** The scope a bearer token needs; null: no token needed. */
  scope: Scope | null;
  summary: string;
  description: string;
  /** Checked by the HTTP layer before the handler runs; unknown parameters are refused. */
  query?: JsonSchema;
  /** Checked by the HTTP layer (the job bodies are checked by the coordinator instead). */
  body?: JsonSchema;
  /** The body as the document shows it: a schema name under components.schemas. */
  bodyDoc: string | null;
  bodyRequired: boolean;
  responses: Record<number, ResponseSpec>;
  /** Error statuses this route may answer besides 401, 403 and 500. */
  errors: number[];
}

export type JsonSchema = Record<string, unknown>;

/** Ids of jobs and workers in paths and queries. */
export const idSchema = { type: 'string', minLength: 1, maxLength: LIMITS.keyMaxChars } as const;

export const listJobsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    queue: queueNameSchema,
    state: { type: 'string', enum: JOB_STATES },
    label: {
      type: 'string',
      description: '`key=value`: only jobs carrying this label with this value.',
      pattern: '^[^=]+=',
      maxLength: 2 * LIMITS.keyMaxChars + 1,
    },
    filler: { type: 'boolean', description: 'true: only the filler jobs the backlog keeper made; false: only the others.' },
    worker: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: LIMITS.keyMaxChars, description: 'A worker id: only jobs that worker had an attempt of.' },
    limit: { type: 'integer', minimum: 1, maximum: LIMITS.listMaxJobs, description: `Jobs per page; ${HTTP_DEFAULTS.listDefaultJobs} when left out.` },
    cursor: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 128, description: 'The `nextCursor` of the previous page.' },
  },
} as const;

export const listPipelinesQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    template: templateNameSchema,
    state: { type: 'string', enum: PIPELINE_STATES },
    limit: { type: 'integer', minimum: 1, maximum: LIMITS.listMaxPipelines, description: `Instances per page; ${HTTP_DEFAULTS.listDefaultPipelines} when left out.` },
    cursor: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 128, description: 'The `nextCursor` of the previous page.' },
  },
} as const;

export const listWorkersQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: WORKER_STATES },
    limit: { type: 'integer', minimum: 1, maximum: LIMITS.listMaxWorkers, description: `Workers per page; ${HTTP_DEFAULTS.listDefaultWorkers} when left out.` },
    cursor: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 128, description: 'The `nextCursor` of the previous page.' },
  },
} as const;

export const historyQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    queue: queueNameSchema,
    from: { type: 'integer', minimum: 0, description: 'Epoch ms; rounded down to its step. Default: the last historyMaxPoints steps up to `to` (a day of minutes).' },
    to: { type: 'integer', minimum: 0, description: 'Epoch ms, excluded; default now.' },
    step: { type: 'string', enum: ['minute', 'hour'], description: 'Default minute.' },
  },
} as const;

export const adviceQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    windowMs: {
      type: 'integer',
      minimum: 60_000,
      maximum: LIMITS.adviceWindowMaxMs,
      description: `How far back to look; default ${HTTP_DEFAULTS.adviceWindowMs} ms (adviceWindowMs), at most adviceWindowMaxMs.`,
    },
  },
} as const;

export const resultQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    waitMs: {
      type: 'integer',
      minimum: 0,
      description: `Wait up to this long for the job to end; 0 (the default) answers at once. Cut to ${LIMITS.resultWaitMaxMs}.`,
    },
  },
} as const;

export const eventsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    jobId: { ...idSchema, description: 'Only the events of this job.' },
    type: { type: 'string', enum: ['job', 'worker'], description: 'Only job events, or only worker events.' },
  },
} as const;

/** The HTTP wrapper of a batch; each job in it is checked by the coordinator. */
export const batchBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['jobs'],
  properties: { jobs: { type: 'array' } },
} as const;

export const cancelBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: LIMITS.errorMessageMaxChars } },
} as const;

/** For POSTs that take no fields: no body, or `{}`. */
export const emptyBodySchema = { type: 'object', additionalProperties: false, properties: {} } as const;

const JOB_ERRORS = [400, 404];

/** POST /v1/workers/:id/queues/:queue/pause and /resume: admin, no body, the worker back. */
function workerQueueRoute(action: 'pause' | 'resume', summary: string, description: string): RouteSpec {
  return {
    id: action === 'pause' ? 'pauseWorkerQueue' : 'resumeWorkerQueue',
    method: 'POST',
    url: `/v1/workers/:id/queues/:queue/${action}`,
    scope: 'admin',
    summary,
    description,
    body: emptyBodySchema,
    bodyDoc: 'Empty',
    bodyRequired: false,
    responses: { 200: { description: 'The worker, with its pausedQueues', schema: 'Worker' } },
    errors: [400, 404],
  };
}

export const ROUTES: readonly RouteSpec[] = [
  {
    id: 'healthz',
    method: 'GET',
    url: '/healthz',
    scope: null,
    summary: 'The process is up',
    description: 'Answers 200 while the process serves HTTP. It does not touch the store: use /readyz for that.',
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'Up', schema: 'Health' } },
    errors: [],
  },
  {
    id: 'readyz',
    method: 'GET',
    url: '/readyz',
    scope: null,
    summary: 'The store answers',
    description: 'Answers 200 when the store answers a trivial query, 503 NOT_READY when it does not.',
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'Ready', schema: 'Ready' } },
    errors: [503],
  },
  {
    id: 'openapi',
    method: 'GET',
    url: '/v1/openapi.json',
    scope: null,
    summary: 'This document',
    description: 'The OpenAPI 3.1 description of the API. It needs no token.',
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The OpenAPI document', schema: 'OpenApiDocument' } },
    errors: [],
  },
  {
    id: 'submitJob',
    method: 'POST',
    url: '/v1/jobs',
    scope: 'client',
    summary: 'Submit a job',
    description:
      'Validates and stores one job. 201 with the new job; 200 with the existing job when its idempotencyKey was seen before (nothing new is written).',
    bodyDoc: 'JobSpec',
    bodyRequired: true,
    responses: {
      201: { description: 'Created', schema: 'Job' },
      200: { description: 'The idempotencyKey was seen: the existing job', schema: 'Job' },
    },
    errors: [400, 413],
  },
  {
    id: 'submitBatch',
    method: 'POST',
    url: '/v1/jobs/batch',
    scope: 'client',
    summary: 'Submit many jobs in one transaction',
    description: `All or none: one invalid job refuses the whole batch and nothing is written. At most ${LIMITS.submitBatchMaxJobs} jobs. 201 when at least one job was created, 200 when every job was an idempotent repeat.`,
    body: batchBodySchema,
    bodyDoc: 'BatchSubmit',
    bodyRequired: true,
    responses: {
      201: { description: 'At least one job created', schema: 'BatchResult' },
      200: { description: 'Every job already existed', schema: 'BatchResult' },
    },
    errors: [400, 413],
  },
  {
    id: 'listJobs',
    method: 'GET',
    url: '/v1/jobs',
    scope: 'client',
    summary: 'List jobs, newest first',
    description: 'Filters combine with AND. Pages with an opaque cursor. Each job is shown without its payload and result: get the job for those.',
    query: listJobsQuerySchema,
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'One page', schema: 'JobPage' } },
    errors: [400],
  },
  {
    id: 'getJob',
    method: 'GET',
    url: '/v1/jobs/:id',
    scope: 'client',
    summary: 'Get a job',
    description: 'The job with its state, result or error, and every attempt so far (attemptList).',
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The job', schema: 'JobDetail' } },
    errors: [404],
  },
  {
    id: 'getResult',
    method: 'GET',
    url: '/v1/jobs/:id/result',
    scope: 'client',
    summary: 'Wait for a job to end (long poll)',
    description:
      'Answers with the job as soon as it is terminal (succeeded, failed, cancelled, expired), or with the job as it is when waitMs runs out. Look at state to tell which.',
    query: resultQuerySchema,
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The job, terminal or not', schema: 'Job' } },
    errors: JOB_ERRORS,
  },
  {
    id: 'cancelJob',
    method: 'POST',
    url: '/v1/jobs/:id/cancel',
    scope: 'client',
    summary: 'Cancel a job',
    description:
      'Cancels a job that has not ended, stops its live attempts and cancels its waiting dependants. Cancelling a cancelled job answers it again; a job that ended otherwise is 409 INVALID_STATE.',
    body: cancelBodySchema,
    bodyDoc: 'CancelRequest',
    bodyRequired: false,
    responses: { 200: { description: 'The cancelled job', schema: 'Job' } },
    errors: [400, 404, 409],
  },
  {
    id: 'retryJob',
    method: 'POST',
    url: '/v1/jobs/:id/retry',
    scope: 'client',
    summary: 'Retry a job that ended badly',
    description: 'Puts a failed, cancelled or expired job back in its queue with a fresh retry budget. Any other state is 409 INVALID_STATE.',
    body: emptyBodySchema,
    bodyDoc: 'Empty',
    bodyRequired: false,
    responses: { 200: { description: 'The queued job', schema: 'Job' } },
    errors: [400, 404, 409],
  },
  {
    id: 'submitPipeline',
    method: 'POST',
    url: '/v1/pipelines',
    scope: 'client',
    summary: 'Submit a pipeline instance',
    description:
      'Makes one instance of a template (named in the config, or given whole): all its jobs, with their dependencies, in one transaction. ' +
      `201 with the new instance; 200 with the existing one when its key was seen before (nothing new is written). At most ${LIMITS.pipelineJobsMax} jobs an instance. docs/pipelines.md.`,
    bodyDoc: 'PipelineSpec',
    bodyRequired: true,
    responses: {
      201: { description: 'Created', schema: 'PipelineDetail' },
      200: { description: 'The key was seen: the existing instance', schema: 'PipelineDetail' },
    },
    errors: [400, 413],
  },
  {
    id: 'listPipelines',
    method: 'GET',
    url: '/v1/pipelines',
    scope: 'client',
    summary: 'List pipeline instances, newest first',
    description: 'Filters combine with AND. Pages with an opaque cursor. Each instance is shown without its payload and phases: get the instance for those.',
    query: listPipelinesQuerySchema,
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'One page', schema: 'PipelinePage' } },
    errors: [400],
  },
  {
    id: 'getPipeline',
    method: 'GET',
    url: '/v1/pipelines/:id',
    scope: 'client',
    summary: 'Get a pipeline instance',
    description: 'The instance with its state (and why it failed or was cancelled), and each phase with its state and its jobs.',
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The instance', schema: 'PipelineDetail' } },
    errors: [404],
  },
  {
    id: 'listPipelineTemplates',
    method: 'GET',
    url: '/v1/pipeline-templates',
    scope: 'client',
    summary: 'The pipeline templates the config names',
    description: 'Each `[pipelines.NAME]` of the coordinator\'s config, with its defaults filled in.',
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The templates, by name', schema: 'PipelineTemplateList' } },
    errors: [],
  },
  {
    id: 'listWorkers',
    method: 'GET',
    url: '/v1/workers',
    scope: 'client',
    summary: 'List workers',
    description:
      'Known workers by id, a page at a time, each with its state, resources, slots per queue (queues) and slots in use per queue (running); ' +
      '`counts` gives how many workers there are in each state (over all of them, whatever the page and filter). ' +
      'A page also ends early once its workers pass listWorkersPageMaxBytes of JSON: follow nextCursor, not the count.',
    query: listWorkersQuerySchema,
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'A page of workers', schema: 'WorkerList' } },
    errors: [400],
  },
  {
    id: 'getWorker',
    method: 'GET',
    url: '/v1/workers/:id',
    scope: 'client',
    summary: 'Get a worker',
    description: 'The worker, and the attempts it holds now (attempts).',
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The worker', schema: 'WorkerDetail' } },
    errors: [404],
  },
  {
    id: 'drainWorker',
    method: 'POST',
    url: '/v1/workers/:id/drain',
    scope: 'admin',
    summary: 'Drain a worker',
    description: 'The worker finishes what it holds and is given nothing new. A worker that reconnects starts undrained.',
    body: emptyBodySchema,
    bodyDoc: 'Empty',
    bodyRequired: false,
    responses: { 200: { description: 'The draining worker', schema: 'Worker' } },
    errors: [400, 404],
  },
  {
    id: 'quarantineWorker',
    method: 'POST',
    url: '/v1/workers/:id/quarantine',
    scope: 'admin',
    summary: 'Quarantine a worker',
    description:
      'The worker gets no real work; the attempts it holds are cancelled and their jobs go back to the queue (not counted as failures). The store also quarantines workers on its own when their invalid share crosses quarantineInvalidShare (docs/trust.md).',
    body: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: LIMITS.errorMessageMaxChars } } },
    bodyDoc: 'QuarantineRequest',
    bodyRequired: false,
    responses: { 200: { description: 'The quarantined worker', schema: 'Worker' } },
    errors: [400, 404],
  },
  {
    id: 'releaseWorker',
    method: 'POST',
    url: '/v1/workers/:id/release',
    scope: 'admin',
    summary: 'Release a worker from quarantine',
    description:
      'The worker may take work again, with a fresh record: its reputation counts are reset and its failed reliability checks are forgotten, so it is checked again (at once if it is connected).',
    body: emptyBodySchema,
    bodyDoc: 'Empty',
    bodyRequired: false,
    responses: { 200: { description: 'The released worker', schema: 'Worker' } },
    errors: [400, 404],
  },
  workerQueueRoute(
    'pause',
    'Pause one queue on one worker',
    'The worker is handed nothing of the queue, by this coordinator or any other sharing the database; its running attempts finish, and its other queues go on. ' +
      `Kept on the worker's record by its id: a reconnect does not resume it. A worker has at most ${LIMITS.workerQueuesMax} paused queues (workerQueuesMax).`,
  ),
  workerQueueRoute(
    'resume',
    'Resume a queue paused on one worker',
    "The worker may be handed the queue's jobs again at once: this coordinator dispatches, and the others sharing the database are woken.",
  ),
  {
    id: 'listQueues',
    method: 'GET',
    url: '/v1/queues',
    scope: 'client',
    summary: 'Queue statistics',
    description:
      'Per queue: jobs per state, worker slots, and over the recent window (queueStatsWindowMs) the attempts completed and failed, the throughput, and the mean and p95 run time.',
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The queues', schema: 'QueueList' } },
    errors: [],
  },
  {
    id: 'pauseQueue',
    method: 'POST',
    url: '/v1/queues/:name/pause',
    scope: 'admin',
    summary: 'Pause a queue',
    description:
      'No new attempts of the queue are handed out, by this coordinator or any other sharing the database; running attempts finish. Jobs may still be submitted. Pausing a paused queue keeps when it was paused (and its reason, unless a new one is given).',
    body: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: LIMITS.errorMessageMaxChars } } },
    bodyDoc: 'PauseRequest',
    bodyRequired: false,
    responses: { 200: { description: 'The queue state', schema: 'QueueState' } },
    errors: [400],
  },
  {
    id: 'resumeQueue',
    method: 'POST',
    url: '/v1/queues/:name/resume',
    scope: 'admin',
    summary: 'Resume a paused queue',
    description: 'The queue is claimable again at once: this coordinator dispatches, and the others sharing the database are woken.',
    body: emptyBodySchema,
    bodyDoc: 'Empty',
    bodyRequired: false,
    responses: { 200: { description: 'The queue state', schema: 'QueueState' } },
    errors: [400],
  },
  {
    id: 'history',
    method: 'GET',
    url: '/v1/history',
    scope: 'client',
    summary: 'Queue history by minute or hour',
    description:
      'Per queue and step: jobs submitted, succeeded, failed, cancelled, attempts lost, jobs retried, and histograms of wait time (ready to leased) and run time (leased to finished) in the buckets of `buckets`. ' +
      `At most ${LIMITS.historyMaxPoints} points (historyMaxPoints); a range holding more steps than that is 400. ` +
      'Minutes are kept historyMinuteRetentionMs, then rolled up into hours, which are kept historyHourRetentionMs.',
    query: historyQuerySchema,
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The points, oldest first', schema: 'History' } },
    errors: [400],
  },
  {
    id: 'trustHistory',
    method: 'GET',
    url: '/v1/history/trust',
    scope: 'client',
    summary: 'Rejected results and failed reliability checks by minute or hour',
    description:
      'Per queue and step: results rejected by a verdict (a lost vote, a failed trace or verifier check), by when their attempt finished, and reliability checks failed, by when they were judged. ' +
      'Counted from the attempts and checks the store keeps (not from the minute rows), with the same range rules as GET /v1/history.',
    query: historyQuerySchema,
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The points, oldest first', schema: 'TrustHistory' } },
    errors: [400],
  },
  {
    id: 'advice',
    method: 'GET',
    url: '/v1/advice',
    scope: 'client',
    summary: 'Worker-ratio advice: capacity per phase, the bottleneck, the slots that balance the pipeline, workers to add',
    description:
      'From the run times of the attempts that finished in the window, the jobs submitted in it, the edges between queues that dependencies make ' +
      '(among recent jobs) and the slots of the workers that count (connected, not draining, not quarantined): per queue the capacity ' +
      '(slots x 1 h / mean run time), the arrival rate (submissions, or what the parent queues feed it), the utilisation, ' +
      "the slots Little's law says balance it (arrival rate x mean run time); the bottleneck, the headroom (1 / its utilisation), " +
      'and, by the kinds of workers connected (their slots per queue), which to add and how many. docs/advisor.md.',
    query: adviceQuerySchema,
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The advice', schema: 'Advice' } },
    errors: [400],
  },
  {
    id: 'events',
    method: 'GET',
    url: '/v1/events',
    scope: 'client',
    summary: 'Stream job and worker events (server-sent events)',
    description:
      'text/event-stream: `event: job` with a JobEvent, `event: worker` with a WorkerEvent, in the order they happened, ' +
      `from the moment of connecting (no replay). A comment line every ${HTTP_DEFAULTS.sseHeartbeatIntervalMs / 1000} s keeps the stream alive. ` +
      `A client that falls ${LIMITS.sseBufferMaxEvents} events behind is disconnected.`,
    query: eventsQuerySchema,
    bodyDoc: null,
    bodyRequired: false,
    responses: { 200: { description: 'The event stream', contentType: 'text/event-stream' } },
    errors: [400],
  },
];

export function routeById(id: RouteId): RouteSpec {
  const r = ROUTES.find((x) => x.id === id);
  if (!r) throw new Error(`no route ${id}`);
  return r;
}
