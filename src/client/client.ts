// The TypeScript client: submit jobs, await their results like an RPC, watch
// events. It speaks the HTTP API (docs/http-api.md) with fetch.
import type { AdviceReport } from '../coordinator/advice.ts';
import type { Attempt, Job, JobSpec, Json, Worker } from '../types/model.ts';
import type { Pipeline, PipelineDetail, PipelineSpec, PipelineState, PipelineTemplate } from '../types/pipeline.ts';
import type { JobState } from '../types/states.ts';
import { isTerminalJobState } from '../types/states.ts';
import type { HistoryAnswer, HistoryStep, QueueStateAnswer } from '../types/history.ts';
import { GafferError } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';

export const CLIENT_DEFAULTS = {
  /** How long one long-poll request waits for a result before asking again. */
  pollWaitMs: 30_000,
  /** Give up a request() after this long, unless told otherwise. */
  requestTimeoutMs: 24 * 3600 * 1000,
  /** Retries of a request that failed on the network or with 503, before the error surfaces. */
  networkRetries: 5,
  /** First wait between network retries; doubles each time. */
  networkRetryBaseMs: 200,
} as const;

export interface ClientOptions {
  /** The coordinator's base URL, e.g. http://127.0.0.1:7070 */
  url: string;
  token?: string;
  /** Called instead of globalThis.fetch (tests, proxies). */
  fetch?: typeof fetch;
}

/** An error the coordinator answered with (see docs/errors.md), or a job that ended without success. */
/** Most pages of GET /v1/workers that workers() reads: 200 pages of listMaxWorkers (500) is 100,000 workers. */
export const WORKER_LIST_MAX_PAGES = 200;

export class GafferClientError extends Error {
  override name = 'GafferClientError';
  readonly code: string;
  readonly status: number;
  readonly details: unknown;
  /** For request(): the job that failed, was cancelled or expired. */
  readonly job: Job | undefined;

  constructor(code: string, message: string, status: number, details?: unknown, job?: Job) {
    super(message);
    this.code = code;
    this.status = status;
    this.details = details;
    this.job = job;
  }
}

export interface ListJobsQuery {
  queue?: string;
  state?: JobState;
  /** `key=value` */
  label?: string;
  /** A worker id: only jobs that worker had an attempt of. */
  worker?: string;
  /** true: only the backlog keeper's filler jobs; false: only the others. */
  filler?: boolean;
  limit?: number;
  cursor?: string;
}

/** `?k=v&...` of the fields given, or '' when none is. */
function queryString(query: Record<string, string | number | boolean | undefined>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
  return qs.size > 0 ? `?${qs}` : '';
}

export interface ListPipelinesQuery {
  template?: string;
  state?: PipelineState;
  limit?: number;
  cursor?: string;
}

export interface JobWithAttempts extends Job {
  attemptList: Attempt[];
}

export interface GafferEvent {
  type: string;
  data: unknown;
}

export class GafferClient {
  private readonly base: string;
  private readonly token: string | undefined;
  private readonly fetchFn: typeof fetch;

  constructor(options: ClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.token = options.token;
    this.fetchFn = options.fetch ?? globalThis.fetch;
  }

  /** Submits one job. `created` is false when the idempotency key was seen before. */
  async submit(spec: JobSpec): Promise<{ job: Job; created: boolean }> {
    const res = await this.call('POST', '/v1/jobs', spec);
    return { job: res.body as Job, created: res.status === 201 };
  }

  async submitMany(specs: JobSpec[]): Promise<{ job: Job; created: boolean }[]> {
    const res = await this.call('POST', '/v1/jobs/batch', { jobs: specs });
    return (res.body as { results: { job: Job; created: boolean }[] }).results;
  }

  /** The job with its attempts (attemptList). */
  async get(id: string): Promise<JobWithAttempts> {
    return (await this.call('GET', `/v1/jobs/${encodeURIComponent(id)}`)).body as JobWithAttempts;
  }

  /** Waits up to waitMs for the job to end; returns it, ended or not. */
  async wait(id: string, waitMs: number): Promise<Job> {
    const path = `/v1/jobs/${encodeURIComponent(id)}/result?waitMs=${Math.max(0, Math.floor(waitMs))}`;
    return (await this.call('GET', path)).body as Job;
  }

  /**
   * Submits a job and resolves to its result once it succeeded, like a remote
   * call; rejects with the job's error when it failed, was cancelled or expired.
   */
  async request<T extends Json = Json>(
    queue: string,
    payload: Json,
    options: Omit<JobSpec, 'queue' | 'payload'> & { timeoutMs?: number } = {},
  ): Promise<T> {
    const { timeoutMs: waitLimitMs, ...rest } = options;
    const { job } = await this.submit({ ...rest, queue, payload });
    const giveUpAt = Date.now() + (waitLimitMs ?? CLIENT_DEFAULTS.requestTimeoutMs);
    let current = job;
    while (!isTerminalJobState(current.state)) {
      const left = giveUpAt - Date.now();
      if (left <= 0) throw new GafferClientError('REQUEST_TIMEOUT', `job ${job.id} did not end in time`, 0, undefined, current);
      current = await this.wait(job.id, Math.min(left, CLIENT_DEFAULTS.pollWaitMs));
    }
    if (current.state === 'succeeded') return current.result as T;
    const err = current.error;
    throw new GafferClientError(err?.code ?? current.state.toUpperCase(), err?.message ?? `job ${current.state}`, 0, err, current);
  }

  async list(query: ListJobsQuery = {}): Promise<{ jobs: Job[]; nextCursor: string | null }> {
    const res = await this.call('GET', `/v1/jobs${queryString({ ...query })}`);
    return res.body as { jobs: Job[]; nextCursor: string | null };
  }

  async cancel(id: string, reason?: string): Promise<Job> {
    const body = reason === undefined ? {} : { reason };
    return (await this.call('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`, body)).body as Job;
  }

  async retry(id: string): Promise<Job> {
    return (await this.call('POST', `/v1/jobs/${encodeURIComponent(id)}/retry`, {})).body as Job;
  }

  /** Every known worker, by id: the pages of GET /v1/workers followed to the last (at most WORKER_LIST_MAX_PAGES). */
  /** Submits one pipeline instance (all its jobs in one transaction). `created` is false when its key was seen before. */
  async submitPipeline(spec: PipelineSpec): Promise<{ pipeline: PipelineDetail; created: boolean }> {
    const res = await this.call('POST', '/v1/pipelines', spec);
    return { pipeline: res.body as PipelineDetail, created: res.status === 201 };
  }

  /** An instance with each phase's state and jobs. */
  async pipeline(id: string): Promise<PipelineDetail> {
    return (await this.call('GET', `/v1/pipelines/${encodeURIComponent(id)}`)).body as PipelineDetail;
  }

  /** A page of instances, newest first; pass `nextCursor` back as `cursor` for the next. */
  async pipelines(query: ListPipelinesQuery = {}): Promise<{ pipelines: Pipeline[]; nextCursor: string | null }> {
    return (await this.call('GET', `/v1/pipelines${queryString({ ...query })}`)).body as { pipelines: Pipeline[]; nextCursor: string | null };
  }

  /** The templates the coordinator's config names, by name. */
  async pipelineTemplates(): Promise<Record<string, PipelineTemplate>> {
    return ((await this.call('GET', '/v1/pipeline-templates')).body as { templates: Record<string, PipelineTemplate> }).templates;
  }

  async workers(options: { state?: string } = {}): Promise<Worker[]> {
    const out: Worker[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < WORKER_LIST_MAX_PAGES; page++) {
      const query = new URLSearchParams({ limit: String(LIMITS.listMaxWorkers), ...(options.state ? { state: options.state } : {}), ...(cursor ? { cursor } : {}) });
      const body = (await this.call('GET', `/v1/workers?${query}`)).body as { workers: Worker[]; nextCursor?: string | null };
      out.push(...body.workers);
      cursor = body.nextCursor ?? null;
      if (cursor === null) return out;
    }
    throw new GafferError('INVALID_INPUT', `more than ${WORKER_LIST_MAX_PAGES} pages of workers: list them by state`);
  }

  async worker(id: string): Promise<unknown> {
    return (await this.call('GET', `/v1/workers/${encodeURIComponent(id)}`)).body;
  }

  /** Quarantines a worker: no real work, its attempts go back to the queue (admin). */
  async quarantine(id: string, reason?: string): Promise<unknown> {
    return (await this.call('POST', `/v1/workers/${encodeURIComponent(id)}/quarantine`, reason === undefined ? {} : { reason })).body;
  }

  /** Releases a worker from quarantine with a fresh record (admin). */
  async release(id: string): Promise<unknown> {
    return (await this.call('POST', `/v1/workers/${encodeURIComponent(id)}/release`, {})).body;
  }

  /** Pauses one queue on one worker (admin): it is handed nothing of it until resumed; kept across its reconnects. */
  async pauseWorkerQueue(workerId: string, queue: string): Promise<Worker> {
    return (await this.call('POST', `/v1/workers/${encodeURIComponent(workerId)}/queues/${encodeURIComponent(queue)}/pause`, {})).body as Worker;
  }

  /** Resumes a queue paused on one worker (admin). */
  async resumeWorkerQueue(workerId: string, queue: string): Promise<Worker> {
    return (await this.call('POST', `/v1/workers/${encodeURIComponent(workerId)}/queues/${encodeURIComponent(queue)}/resume`, {})).body as Worker;
  }

  async drain(id: string): Promise<unknown> {
    return (await this.call('POST', `/v1/workers/${encodeURIComponent(id)}/drain`, {})).body;
  }

  async queues(): Promise<unknown> {
    return (await this.call('GET', '/v1/queues')).body;
  }

  /** Pauses a queue (admin): its jobs are not handed out until it is resumed; running attempts finish. */
  async pauseQueue(name: string, reason?: string): Promise<QueueStateAnswer> {
    return (await this.call('POST', `/v1/queues/${encodeURIComponent(name)}/pause`, reason === undefined ? {} : { reason })).body as QueueStateAnswer;
  }

  /** Resumes a paused queue (admin): claimable again at once. */
  async resumeQueue(name: string): Promise<QueueStateAnswer> {
    return (await this.call('POST', `/v1/queues/${encodeURIComponent(name)}/resume`, {})).body as QueueStateAnswer;
  }

  /** Per-minute or per-hour counts and wait/run histograms per queue (GET /v1/history). */
  async history(query: { queue?: string; from?: number; to?: number; step?: HistoryStep } = {}): Promise<HistoryAnswer> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    const text = q.toString();
    return (await this.call('GET', `/v1/history${text === '' ? '' : `?${text}`}`)).body as HistoryAnswer;
  }

  /** Worker-ratio advice over the last `windowMs` (the server's default when left out): docs/advisor.md. */
  async advice(query: { windowMs?: number } = {}): Promise<AdviceReport> {
    const q = query.windowMs === undefined ? '' : `?windowMs=${encodeURIComponent(String(query.windowMs))}`;
    return (await this.call('GET', `/v1/advice${q}`)).body as AdviceReport;
  }

  /**
   * Server-sent events of job and worker changes, as an async iterator. Break
   * out of the loop (or abort the signal) to stop. `onOpen` runs once the
   * stream is subscribed. `type` keeps only job or only worker events.
   */
  async *watch(options: { signal?: AbortSignal; onOpen?: () => void; type?: 'job' | 'worker' } = {}): AsyncGenerator<GafferEvent> {
    const query = options.type === undefined ? '' : `?type=${options.type}`;
    const res = await this.fetchFn(`${this.base}/v1/events${query}`, {
      headers: this.headers(false),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (!res.ok || !res.body) throw await this.errorOf(res);
    // The server subscribes before it answers: from here on, no event is missed.
    options.onOpen?.();
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parseSse(block);
        if (event) yield event;
      }
    }
  }

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = {};
    if (json) h['content-type'] = 'application/json';
    if (this.token) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  private async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.fetchFn(`${this.base}${path}`, {
          method,
          headers: this.headers(body !== undefined),
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
      } catch (err) {
        if (attempt >= CLIENT_DEFAULTS.networkRetries) {
          throw new GafferClientError('NETWORK', `cannot reach ${this.base}: ${(err as Error).message}`, 0);
        }
        await pause(attempt);
        continue;
      }
      if (res.status === 503 && attempt < CLIENT_DEFAULTS.networkRetries) {
        await res.body?.cancel();
        await pause(attempt);
        continue;
      }
      if (!res.ok) throw await this.errorOf(res);
      return { status: res.status, body: await res.json() };
    }
  }

  private async errorOf(res: Response): Promise<GafferClientError> {
    let parsed: { error?: { code?: string; message?: string; details?: unknown } } = {};
    try {
      parsed = (await res.json()) as typeof parsed;
    } catch {
      // not JSON: fall through to a generic error
    }
    const e = parsed.error ?? {};
    return new GafferClientError(e.code ?? `HTTP_${res.status}`, e.message ?? res.statusText, res.status, e.details);
  }
}

function pause(attempt: number): Promise<void> {
  const ms = CLIENT_DEFAULTS.networkRetryBaseMs * 2 ** attempt * (0.5 + Math.random() / 2);
  return new Promise((r) => setTimeout(r, ms));
}

function parseSse(block: string): GafferEvent | null {
  let type = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return null;
  const text = data.join('\n');
  try {
    return { type, data: JSON.parse(text) };
  } catch {
    return { type, data: text };
  }
}
