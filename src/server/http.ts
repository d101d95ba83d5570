// The HTTP API: JSON under /v1, bearer tokens with scopes, one error shape.
// The coordinator validates jobs and owns every write; this layer checks only
// what is its own (the HTTP wrappers, query strings, tokens), turns every
// failure into `{ error: { code, message, details? } }`, and streams events.
//
// The app does not listen: the caller does, and may attach an 'upgrade'
// listener to `app.server` (the worker WebSocket); fastify never handles
// upgrade requests itself.
import type { ServerResponse } from 'node:http';
import { Ajv, type ValidateFunction } from 'ajv';
import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type Logger } from 'pino';
import type { Coordinator, JobEvent, WorkerEvent } from '../coordinator/coordinator.ts';
import { buildAdvice } from '../coordinator/advice.ts';
import type { ReadHistoryParams } from '../store/store.ts';
import { schemaError } from '../coordinator/validate.ts';
import type { Clock, TimerHandle } from '../types/clock.ts';
import { GafferError } from '../types/errors.ts';
import { HTTP_DEFAULTS, LIMITS } from '../types/limits.ts';
import type { Job, Worker } from '../types/model.ts';
import type { PipelineState } from '../types/pipeline.ts';
import { WORKER_STATES, type JobState, type WorkerState } from '../types/states.ts';
import { HISTORY_BUCKET_BOUNDS_MS, HISTORY_BUCKET_NAMES, STEP_MS, stepStart, type HistoryStep } from '../types/history.ts';
import type { Auth, Scope } from './auth.ts';
import { registerDashboard } from './dashboard.ts';
import { registerMetrics } from './metrics.ts';
import { bodyUnread, clientErrorHandler, httpTimeouts, lingerOnClose, serverOptions, type HttpTimeouts } from './connections.ts';
import { buildOpenApi } from './openapi.ts';
import { ROUTES, type JsonSchema, type RouteId } from './routes.ts';

export interface HttpDeps {
  coordinator: Coordinator;
  auth: Auth;
  /** A pino logger, or false for none. Left out: warnings and errors go to stderr. */
  logger?: Logger | false;
  /** Largest request body; LIMITS.httpBodyMaxBytes when left out. */
  bodyLimitBytes?: number;
  /** Event-stream tuning (tests shorten these); HTTP_DEFAULTS and LIMITS when left out. */
  sse?: { heartbeatIntervalMs?: number; bufferMaxEvents?: number };
  /** Header, request and idle timeouts and the closing linger (tests shorten these); HTTP_DEFAULTS when left out. */
  timeouts?: Partial<HttpTimeouts>;
}

/**
 * Long enough for any id of LIMITS.keyMaxChars characters once percent-encoded
 * (at most 9 encoded characters per UTF-16 unit).
 */
const PARAM_MAX_CHARS = 4096;

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export async function buildHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  const { coordinator, auth } = deps;
  const store = coordinator.store;
  const bodyLimit = deps.bodyLimitBytes ?? LIMITS.httpBodyMaxBytes;
  const logger = deps.logger === undefined ? pino({ level: 'warn' }, pino.destination(2)) : deps.logger;
  const timeouts = httpTimeouts(deps.timeouts);
  const app = fastify({
    bodyLimit,
    http: serverOptions(timeouts),
    requestTimeout: timeouts.requestTimeoutMs,
    connectionTimeout: timeouts.connectionIdleTimeoutMs,
    clientErrorHandler: clientErrorHandler(timeouts),
    routerOptions: { maxParamLength: PARAM_MAX_CHARS },
    // While closing, requests get NOT_READY in the one error shape (the onRequest hook below), not fastify's own 503.
    return503OnClosing: false,
    ...(logger === false ? { logger: false } : { loggerInstance: logger }),
    frameworkErrors: (err, req, reply) => sendError(reply, toGafferError(err, bodyLimit), req.log, err),
  }) as unknown as FastifyInstance;

  useJsonBodies(app);
  const check = validators();
  const hub = new EventHub(coordinator, {
    heartbeatIntervalMs: deps.sse?.heartbeatIntervalMs ?? HTTP_DEFAULTS.sseHeartbeatIntervalMs,
    bufferMaxEvents: deps.sse?.bufferMaxEvents ?? LIMITS.sseBufferMaxEvents,
  });
  const polls = new LongPolls(coordinator);
  const openapi = JSON.stringify(buildOpenApi());

  app.setErrorHandler((err, req, reply) => sendError(reply, toGafferError(err, bodyLimit), req.log, err));
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new GafferError('ROUTE_NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`), req.log),
  );
  // An answer sent before the body was read (a refused token, a body over the limit) closes the connection,
  // gracefully: nothing more of that body is kept, and the client can still read the answer.
  app.addHook('onSend', async (req, reply, payload) => {
    if (bodyUnread(req.raw)) {
      reply.header('connection', 'close');
      lingerOnClose(req.raw, timeouts.closeLingerMs);
    }
    return payload;
  });
  let closing = false;
  app.addHook('onRequest', async (_req, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw new GafferError('NOT_READY', 'the server is shutting down');
  });
  // Answer what is in flight before the server closes: long polls with the job as it is, streams end.
  app.addHook('preClose', async () => {
    closing = true;
    polls.releaseAll();
    hub.closeAll();
  });

  const idOf = (req: FastifyRequest): string => (req.params as { id: string }).id;
  const nameOf = (req: FastifyRequest): string => (req.params as { name: string }).name;
  const queueOf = (req: FastifyRequest): string => (req.params as { queue: string }).queue;
  const handlers: Record<RouteId, Handler> = {
    healthz: async () => ({ status: 'ok' }),
    // Ready when the store answers a ping within storePingTimeoutMs (the coordinator logs when it stops and starts answering).
    readyz: async () => {
      await coordinator.checkReady();
      return { status: 'ready', store: store.kind };
    },
    openapi: async (_req, reply) => reply.type('application/json; charset=utf-8').send(openapi),

    submitJob: async (req, reply) => {
      const { job, created } = await coordinator.submit(req.body);
      reply.code(created ? 201 : 200).header('location', `/v1/jobs/${encodeURIComponent(job.id)}`);
      return job;
    },
    submitBatch: async (req, reply) => {
      const body = check.submitBatch.body<{ jobs: unknown[] }>(req.body);
      const results = await coordinator.submitMany(body.jobs);
      reply.code(results.some((r) => r.created) ? 201 : 200);
      return { results: results.map((r) => ({ created: r.created, job: r.job })) };
    },
    listJobs: async (req) => {
      const q = check.listJobs.query<{ queue?: string; state?: JobState; label?: string; filler?: boolean; worker?: string; limit?: number; cursor?: string }>(req.query);
      const eq = q.label?.indexOf('=') ?? -1;
      const page = await store.listJobs({
        ...(q.queue !== undefined ? { queue: q.queue } : {}),
        ...(q.state !== undefined ? { state: q.state } : {}),
        ...(q.label !== undefined ? { label: { key: q.label.slice(0, eq), value: q.label.slice(eq + 1) } } : {}),
        ...(q.filler !== undefined ? { filler: q.filler } : {}),
        ...(q.worker !== undefined ? { workerId: q.worker } : {}),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
        limit: q.limit ?? HTTP_DEFAULTS.listDefaultJobs,
      });
      return { jobs: page.jobs.map(jobSummary), nextCursor: page.nextCursor };
    },
    getJob: async (req) => {
      const job = await coordinator.getJob(idOf(req));
      return { ...job, attemptList: await store.listAttempts({ jobId: job.id }) };
    },
    getResult: async (req) => {
      const q = check.getResult.query<{ waitMs?: number }>(req.query);
      return polls.wait(idOf(req), Math.min(q.waitMs ?? 0, LIMITS.resultWaitMaxMs));
    },
    cancelJob: async (req) => {
      const body = check.cancelJob.body<{ reason?: string }>(optionalBody(req));
      return coordinator.cancel(idOf(req), body.reason);
    },
    retryJob: async (req) => {
      check.retryJob.body(optionalBody(req));
      return coordinator.retry(idOf(req));
    },

    submitPipeline: async (req, reply) => {
      const { pipeline, created } = await coordinator.submitPipeline(req.body);
      reply.code(created ? 201 : 200).header('location', `/v1/pipelines/${encodeURIComponent(pipeline.id)}`);
      return pipeline;
    },
    listPipelines: async (req) => {
      const q = check.listPipelines.query<{ template?: string; state?: PipelineState; limit?: number; cursor?: string }>(req.query);
      return store.listPipelines({
        ...(q.template !== undefined ? { template: q.template } : {}),
        ...(q.state !== undefined ? { state: q.state } : {}),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
        limit: q.limit ?? HTTP_DEFAULTS.listDefaultPipelines,
      });
    },
    getPipeline: async (req) => coordinator.getPipeline(idOf(req)),
    listPipelineTemplates: async () => ({ templates: coordinator.pipelineTemplates }),

    listWorkers: async (req) =>
      workerPage(await coordinator.listWorkers({ summary: true }), check.listWorkers.query<WorkerPageQuery>(req.query), (ids) => coordinator.listWorkers({ ids })),
    getWorker: async (req) => {
      const id = idOf(req);
      const worker = await store.getWorker({ id });
      if (!worker) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${id}`, { workerId: id });
      return { ...worker, attempts: await store.listLiveAttempts({ workerId: id }) };
    },
    drainWorker: async (req) => {
      check.drainWorker.body(optionalBody(req));
      return coordinator.drainWorker(idOf(req));
    },
    quarantineWorker: async (req) => {
      const body = check.quarantineWorker.body<{ reason?: string }>(optionalBody(req));
      return coordinator.setQuarantine(idOf(req), true, body.reason);
    },
    releaseWorker: async (req) => {
      check.releaseWorker.body(optionalBody(req));
      return coordinator.setQuarantine(idOf(req), false);
    },
    pauseWorkerQueue: async (req) => {
      check.pauseWorkerQueue.body(optionalBody(req));
      return coordinator.setWorkerQueuePaused(idOf(req), queueOf(req), true);
    },
    resumeWorkerQueue: async (req) => {
      check.resumeWorkerQueue.body(optionalBody(req));
      return coordinator.setWorkerQueuePaused(idOf(req), queueOf(req), false);
    },

    listQueues: async () => queueStatistics(coordinator),
    pauseQueue: async (req) => {
      const body = check.pauseQueue.body<{ reason?: string }>(optionalBody(req));
      return coordinator.setQueuePaused(nameOf(req), true, body.reason);
    },
    resumeQueue: async (req) => {
      check.resumeQueue.body(optionalBody(req));
      return coordinator.setQueuePaused(nameOf(req), false);
    },
    history: async (req) => historyAnswer(coordinator, check.history.query<HistoryQuery>(req.query)),
    trustHistory: async (req) => trustHistoryAnswer(coordinator, check.trustHistory.query<HistoryQuery>(req.query)),
    advice: async (req) => {
      const q = check.advice.query<{ windowMs?: number }>(req.query);
      return buildAdvice(store, coordinator.clock.now(), q.windowMs ?? HTTP_DEFAULTS.adviceWindowMs);
    },
    events: async (req, reply) => {
      const q = check.events.query<{ jobId?: string; type?: 'job' | 'worker' }>(req.query);
      hub.open(reply, q, req.log);
    },
  };

  registerDashboard(app);
  registerMetrics(app, { coordinator, auth });
  for (const route of ROUTES) {
    app.route({
      method: route.method,
      url: route.url,
      ...(route.scope ? { onRequest: requireScope(auth, route.scope) } : {}),
      // HEAD of a stream would hold the connection open for nothing.
      exposeHeadRoute: route.id !== 'events',
      handler: handlers[route.id],
    });
  }
  return app;
}

/** A POST whose body is optional: no body (or an empty one) reads as `{}`; JSON `null` is still refused. */
function optionalBody(req: FastifyRequest): unknown {
  return req.body === undefined ? {} : req.body;
}

// ---- Auth ----

/** Runs before the body is read, so a request without the right token costs nothing and writes nothing. */
function requireScope(auth: Auth, scope: Scope) {
  return async (req: FastifyRequest): Promise<void> => {
    auth.check(req.headers.authorization, scope);
  };
}

// ---- Bodies and validation ----

/** JSON only; an empty body counts as no body, so a bodiless POST may still send the JSON content type. */
function useJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    parseJson(req, text, done);
  });
}

interface RouteCheck {
  body<T>(value: unknown): T;
  query<T>(value: unknown): T;
}

/** One compiled check per route for its body and query: HTTP wrappers only, never the jobs themselves. */
function validators(): Record<RouteId, RouteCheck> {
  // Bodies are taken as sent; query strings are text, so numbers in them are coerced.
  const bodies = new Ajv({ strict: true, allErrors: false });
  const queries = new Ajv({ strict: true, allErrors: false, coerceTypes: true });
  const compile = (ajv: Ajv, schema: JsonSchema | undefined, what: string) => {
    const fn: ValidateFunction | null = schema ? ajv.compile(schema) : null;
    return <T>(value: unknown): T => {
      if (fn && !fn(value)) throw schemaError(what, fn.errors);
      return value as T;
    };
  };
  const out = {} as Record<RouteId, RouteCheck>;
  for (const r of ROUTES) out[r.id] = { body: compile(bodies, r.body, 'body'), query: compile(queries, r.query, 'query') };
  return out;
}

// ---- Errors ----

/** Maps anything thrown onto the catalogue. Unknown errors become INTERNAL and say nothing of their insides. */
export function toGafferError(err: unknown, bodyLimitBytes: number): GafferError {
  if (err instanceof GafferError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; statusCode?: unknown };
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new GafferError('INVALID_INPUT', 'the body is not valid JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GafferError('INVALID_INPUT', 'the body is empty');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GafferError('PAYLOAD_TOO_LARGE', `the body is larger than ${bodyLimitBytes} bytes`, { maxBytes: bodyLimitBytes });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GafferError('INVALID_INPUT', 'send the body as JSON, with Content-Type: application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GafferError('INVALID_INPUT', 'the Content-Length does not match the body');
    case 'FST_ERR_BAD_URL':
      return new GafferError('INVALID_INPUT', 'the URL is not valid');
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 404) return new GafferError('ROUTE_NOT_FOUND');
  if (status === 413) return new GafferError('PAYLOAD_TOO_LARGE', `the body is larger than ${bodyLimitBytes} bytes`, { maxBytes: bodyLimitBytes });
  if (status >= 400 && status < 500) return new GafferError('INVALID_INPUT');
  return new GafferError('INTERNAL');
}

function sendError(reply: FastifyReply, err: GafferError, log: FastifyRequest['log'], cause?: unknown): void {
  if (err.code === 'INTERNAL') log.error({ err: cause ?? err }, 'unexpected error');
  else if (err.status >= 500) log.warn({ code: err.code, reason: err.message }, 'request failed');
  if (reply.sent || reply.raw.headersSent) return;
  void reply.code(err.status).type('application/json; charset=utf-8').send({ error: err.toJSON() });
}

// ---- Views ----

/** A job in a list: without its payload, result and publish manifest, which may be large; get the job for those. */
function jobSummary(job: Job): Omit<Job, 'payload' | 'result' | 'publish'> {
  const { payload: _payload, result: _result, publish: _publish, ...rest } = job;
  return rest;
}

interface WorkerPageQuery {
  state?: WorkerState;
  limit?: number;
  cursor?: string;
}

/**
 * GET /v1/workers: by id, after the cursor, at most `limit` and
 * listWorkersPageMaxBytes; counts by state over every worker. `all` may be
 * summaries (Store.listWorkers `summary`): the page's workers are then read
 * whole with `load`, so only a page of them is ever held in full.
 */
export async function workerPage(
  all: readonly Worker[],
  q: WorkerPageQuery,
  load: (ids: string[]) => Promise<Worker[]> = async (ids) => all.filter((w) => ids.includes(w.id)),
): Promise<{ workers: Worker[]; nextCursor: string | null; counts: { total: number; byState: Record<WorkerState, number> } }> {
  const byState = Object.fromEntries(WORKER_STATES.map((s) => [s, 0])) as Record<WorkerState, number>;
  for (const w of all) byState[w.state]++;
  const limit = Math.min(q.limit ?? HTTP_DEFAULTS.listDefaultWorkers, LIMITS.listMaxWorkers);
  const picked = all
    .filter((w) => (q.state === undefined || w.state === q.state) && (q.cursor === undefined || w.id > q.cursor))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const wanted = picked.slice(0, limit).map((w) => w.id);
  // A record pruned between the two reads is left out.
  const whole = new Map((await load(wanted)).map((w) => [w.id, w]));
  // At most listWorkersPageMaxBytes of them as JSON (at least one): a page of workers with many keys ends early.
  const workers: Worker[] = [];
  let bytes = 0;
  let last: string | null = null;
  for (const id of wanted) {
    const w = whole.get(id);
    if (w === undefined) {
      last = id;
      continue;
    }
    bytes += Buffer.byteLength(JSON.stringify(w), 'utf8') + 1;
    if (workers.length > 0 && bytes > LIMITS.listWorkersPageMaxBytes) break;
    workers.push(w);
    last = id;
  }
  const more = last !== null && picked.length > 0 && last !== picked[picked.length - 1]!.id;
  return { workers, nextCursor: more ? last : null, counts: { total: all.length, byState } };
}

const oldestAge = (readyAt: number | null, now: number): number | null => (readyAt === null ? null : Math.max(0, now - readyAt));

async function queueStatistics(coordinator: Coordinator): Promise<unknown> {
  const now = coordinator.clock.now();
  const windowMs = HTTP_DEFAULTS.queueStatsWindowMs;
  // Summaries: the slots need no worker's labels or keys.
  const [counts, workers, states] = await Promise.all([coordinator.queueCounts(), coordinator.listWorkers({ summary: true }), coordinator.listQueueStates()]);
  const slots = slotsByQueue(workers);
  const pausedOf = new Map(states.filter((q) => q.paused).map((q) => [q.queue, q]));
  const names = [...new Set([...counts.map((c) => c.queue), ...slots.keys(), ...pausedOf.keys()])].sort();
  const [stats, ready] = await Promise.all([
    coordinator.store.queueStats({ queues: names, sinceMs: now - windowMs, sampleMaxRows: LIMITS.queueStatsSampleMaxRows }),
    coordinator.store.oldestReady({ queues: names }),
  ]);
  const readyAtOf = new Map(ready.map((r) => [r.queue, r.readyAt]));
  const countsOf = new Map(counts.map((c) => [c.queue, c]));
  const statsOf = new Map(stats.map((s) => [s.queue, s]));
  const zero: Record<JobState, number> = { waiting: 0, queued: 0, running: 0, verifying: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 };
  return {
    windowMs,
    queues: names.map((queue) => {
      const s = statsOf.get(queue);
      const spanMs = Math.max(1, now - (s?.sampledSinceMs ?? now - windowMs));
      const completed = s?.completed ?? 0;
      const pause = pausedOf.get(queue);
      return {
        queue,
        paused: pause !== undefined,
        pausedAt: pause?.pausedAt ?? null,
        pauseReason: pause?.reason ?? null,
        counts: countsOf.get(queue)?.counts ?? zero,
        fillerQueued: countsOf.get(queue)?.fillerQueued ?? 0,
        slots: slots.get(queue) ?? { workers: 0, total: 0, used: 0 },
        oldestReadyAgeMs: oldestAge(readyAtOf.get(queue) ?? null, now),
        recent: {
          spanMs,
          completed,
          failed: s?.failed ?? 0,
          throughputPerMinute: Math.round((completed * 60_000 * 1000) / spanMs) / 1000,
          runTimeMeanMs: s?.runTimeMeanMs ?? null,
          runTimeP95Ms: s?.runTimeP95Ms ?? null,
        },
      };
    }),
  };
}

interface HistoryQuery {
  queue?: string;
  from?: number;
  to?: number;
  step?: HistoryStep;
}

/** The range a history read covers: at most historyMaxPoints steps; by default the last historyMaxPoints of them. */
function historyRange(coordinator: Coordinator, q: HistoryQuery): ReadHistoryParams {
  const step = q.step ?? 'minute';
  const stepMs = STEP_MS[step];
  const to = q.to ?? coordinator.clock.now();
  // Default: the last historyMaxPoints steps, the one holding `to` included (a day of minutes).
  const from = q.from !== undefined ? stepStart(q.from, stepMs) : Math.max(0, stepStart(to, stepMs) - (LIMITS.historyMaxPoints - 1) * stepMs);
  if (to < from) throw new GafferError('INVALID_INPUT', '`to` is before `from`');
  if (Math.ceil((to - from) / stepMs) > LIMITS.historyMaxPoints) {
    throw new GafferError('INVALID_INPUT', `at most ${LIMITS.historyMaxPoints} ${step}s per answer (historyMaxPoints): narrow from..to or use a larger step`);
  }
  return { ...(q.queue !== undefined ? { queue: q.queue } : {}), fromMs: from, toMs: to, step, maxPoints: LIMITS.historyMaxPoints };
}

/** GET /v1/history. */
async function historyAnswer(coordinator: Coordinator, q: HistoryQuery): Promise<unknown> {
  const range = historyRange(coordinator, q);
  const points = await coordinator.readHistory(range);
  const buckets = HISTORY_BUCKET_NAMES.map((name, i) => ({ name, leMs: HISTORY_BUCKET_BOUNDS_MS[i] ?? null }));
  return { step: range.step, from: range.fromMs, to: range.toMs, buckets, points, truncated: points.length >= LIMITS.historyMaxPoints };
}

/** GET /v1/history/trust. */
async function trustHistoryAnswer(coordinator: Coordinator, q: HistoryQuery): Promise<unknown> {
  const range = historyRange(coordinator, q);
  const points = await coordinator.readTrustHistory(range);
  return { step: range.step, from: range.fromMs, to: range.toMs, points, truncated: points.length >= LIMITS.historyMaxPoints };
}

function slotsByQueue(workers: readonly Worker[]): Map<string, { workers: number; total: number; used: number }> {
  const out = new Map<string, { workers: number; total: number; used: number }>();
  for (const w of workers) {
    if (w.state === 'offline') continue;
    for (const [queue, total] of Object.entries(w.queues)) {
      const entry = out.get(queue) ?? { workers: 0, total: 0, used: 0 };
      entry.workers += 1;
      entry.total += total;
      entry.used += w.running[queue] ?? 0;
      out.set(queue, entry);
    }
  }
  return out;
}

// ---- Long polls ----

/** Result waits, each released early (with the job as it is) when the server closes. */
class LongPolls {
  private readonly coordinator: Coordinator;
  private readonly pending = new Set<() => void>();

  constructor(coordinator: Coordinator) {
    this.coordinator = coordinator;
  }

  async wait(jobId: string, waitMs: number): Promise<Job> {
    if (waitMs <= 0) return this.coordinator.getJob(jobId);
    let release = (): void => undefined;
    const released = new Promise<null>((resolve) => {
      release = () => resolve(null);
    });
    this.pending.add(release);
    try {
      const job = await Promise.race([this.coordinator.waitForJob(jobId, waitMs), released]);
      return job ?? (await this.coordinator.getJob(jobId));
    } finally {
      this.pending.delete(release);
    }
  }

  releaseAll(): void {
    for (const release of this.pending) release();
  }
}

// ---- Server-sent events ----

interface StreamFilter {
  jobId?: string;
  type?: 'job' | 'worker';
}

interface HubOptions {
  heartbeatIntervalMs: number;
  bufferMaxEvents: number;
}

/** Subscribes once to the coordinator's events (while any stream is open) and fans each event out. */
class EventHub {
  private readonly coordinator: Coordinator;
  private readonly options: HubOptions;
  private readonly streams = new Set<SseStream>();
  private readonly onJob = (e: JobEvent): void => this.broadcast('job', e.jobId, e);
  private readonly onWorker = (e: WorkerEvent): void => this.broadcast('worker', null, e);

  constructor(coordinator: Coordinator, options: HubOptions) {
    this.coordinator = coordinator;
    this.options = options;
  }

  /** Takes over the response; the subscription is live before the first byte is sent. */
  open(reply: FastifyReply, filter: StreamFilter, log: FastifyRequest['log']): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const stream = new SseStream(res, filter, this.coordinator.clock, this.options, log);
    if (this.streams.size === 0) {
      this.coordinator.events.on('job', this.onJob);
      this.coordinator.events.on('worker', this.onWorker);
    }
    this.streams.add(stream);
    res.on('close', () => {
      stream.stop();
      this.streams.delete(stream);
      if (this.streams.size === 0) {
        this.coordinator.events.off('job', this.onJob);
        this.coordinator.events.off('worker', this.onWorker);
      }
    });
    stream.start();
  }

  private broadcast(type: 'job' | 'worker', jobId: string | null, data: JobEvent | WorkerEvent): void {
    const chunk = `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const s of this.streams) if (s.wants(type, jobId)) s.send(chunk);
  }

  closeAll(): void {
    for (const s of this.streams) s.end();
  }
}

/**
 * One event-stream client. Writes go straight to the socket while it keeps up;
 * when the socket pushes back, events wait in a queue of at most
 * bufferMaxEvents, and one more disconnects the client: a slow reader never
 * makes the server buffer without bound.
 */
class SseStream {
  private readonly res: ServerResponse;
  private readonly filter: StreamFilter;
  private readonly clock: Clock;
  private readonly options: HubOptions;
  private readonly log: FastifyRequest['log'];
  private readonly queued: string[] = [];
  private blocked = false;
  private closed = false;
  private heartbeat: TimerHandle | null = null;

  constructor(res: ServerResponse, filter: StreamFilter, clock: Clock, options: HubOptions, log: FastifyRequest['log']) {
    this.res = res;
    this.filter = filter;
    this.clock = clock;
    this.options = options;
    this.log = log;
  }

  start(): void {
    this.send(': connected\n\n');
    this.scheduleHeartbeat();
  }

  wants(type: 'job' | 'worker', jobId: string | null): boolean {
    if (this.filter.type !== undefined && this.filter.type !== type) return false;
    if (this.filter.jobId !== undefined && this.filter.jobId !== jobId) return false;
    return true;
  }

  send(chunk: string): void {
    if (this.closed) return;
    if (this.blocked) {
      if (this.queued.length >= this.options.bufferMaxEvents) {
        this.log.warn({ bufferMaxEvents: this.options.bufferMaxEvents }, 'event stream client reads too slowly; disconnected');
        this.stop();
        this.res.destroy();
        return;
      }
      this.queued.push(chunk);
      return;
    }
    if (!this.res.write(chunk)) this.waitForDrain();
  }

  private waitForDrain(): void {
    this.blocked = true;
    this.res.once('drain', () => this.flush());
  }

  private flush(): void {
    this.blocked = false;
    while (!this.closed && this.queued.length > 0) {
      if (!this.res.write(this.queued.shift()!)) {
        this.waitForDrain();
        return;
      }
    }
  }

  private scheduleHeartbeat(): void {
    this.heartbeat = this.clock.setTimeout(() => {
      if (this.closed) return;
      this.send(': heartbeat\n\n');
      this.scheduleHeartbeat();
    }, this.options.heartbeatIntervalMs);
  }

  /** The server is closing: finish the response cleanly. */
  end(): void {
    this.stop();
    this.res.end();
  }

  stop(): void {
    this.closed = true;
    this.queued.length = 0;
    if (this.heartbeat) this.clock.clearTimeout(this.heartbeat);
    this.heartbeat = null;
  }
}
