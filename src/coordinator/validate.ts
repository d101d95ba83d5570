// Validation of everything that enters the coordinator, before any write: a
// bad request gets a typed error and changes nothing.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { GafferError } from '../types/errors.ts';
import { exceedsJsonDepth } from '../types/json-depth.ts';
import { LIMITS, SPECULATION_DEFAULTS } from '../types/limits.ts';
import type { SpeculationSettings } from '../scheduler/speculation.ts';
import type { ChallengeSpec, JobSpec, Json, NewJob, RetentionPolicy, Trace, WorkerSpec } from '../types/model.ts';
import { newJob, type JobDefaults } from '../types/new-job.ts';
import { checkWorkerKeys, jobSpecSchema, traceSchema, UNSTORABLE_TEXT, workerSpecSchema } from '../types/schemas.ts';

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
ajv.addFormat('date-time', { type: 'string', validate: (s: string) => isIsoDateTime(s) });

const checkJob = ajv.compile(jobSpecSchema);
const checkWorker = ajv.compile(workerSpecSchema);
const checkTraceSchema = ajv.compile(traceSchema);

function isIsoDateTime(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s));
}

/** Turns the first schema error into a GafferError a person can act on. The HTTP layer maps its own request checks with it too. */
export function schemaError(what: string, errors: ErrorObject[] | null | undefined): GafferError {
  const e = errors?.[0];
  if (!e) return new GafferError('INVALID_INPUT', `${what} is not valid`);
  const where = e.instancePath ? `${what}${e.instancePath.replaceAll('/', '.')}` : what;
  if (/\/(runAt|deadline)$/.test(e.instancePath)) {
    return new GafferError('INVALID_INPUT', `${where} must be epoch milliseconds or an ISO 8601 date-time`, { path: where });
  }
  if (e.keyword === 'additionalProperties') {
    const field = (e.params as { additionalProperty: string }).additionalProperty;
    return new GafferError('UNKNOWN_FIELD', `${where} has an unknown field "${field}"`, { field: `${where}.${field}` });
  }
  return new GafferError('INVALID_INPUT', `${where} ${e.message ?? 'is not valid'}`, { path: where, rule: e.keyword });
}

function validate<T>(check: ValidateFunction, what: string, value: unknown): T {
  if (!check(value)) throw schemaError(what, check.errors);
  return value as T;
}

/** Bytes of a value as JSON, or an error when it is not JSON at all. */
export function jsonBytes(value: unknown, what: string): number {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    throw new GafferError('INVALID_INPUT', `${what} is not serialisable as JSON`);
  }
  if (text === undefined) throw new GafferError('INVALID_INPUT', `${what} is not a JSON value`);
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Free text a store keeps as text (a reason) holds no NUL and no lone UTF-16
 * surrogate: PostgreSQL cannot keep either and SQLite would alter them, so
 * both are refused here, the same on every store (INVALID_INPUT).
 */
export function checkText(value: string | undefined, what: string): void {
  if (value !== undefined && UNSTORABLE_TEXT.test(value)) {
    throw new GafferError('INVALID_INPUT', `${what} holds a NUL character or an unpaired UTF-16 surrogate`, { field: what });
  }
}

/**
 * The one nesting bound (LIMITS.jsonNestingMaxLevels) for payloads, results
 * and progress, on every path in: checked without recursion, before anything
 * (serialising, hashing) recurses over the value.
 */
export function checkDepth(value: unknown, what: string): void {
  const maxLevels = LIMITS.jsonNestingMaxLevels;
  if (exceedsJsonDepth(value, maxLevels)) {
    throw new GafferError('INVALID_INPUT', `${what} nests arrays and objects more than ${maxLevels} levels deep`, { maxLevels });
  }
}

/** Checks a JSON value's nesting (checkDepth), then its size as UTF-8 JSON. */
export function checkSize(value: unknown, maxBytes: number, what: string): void {
  checkDepth(value, what);
  const bytes = jsonBytes(value, what);
  if (bytes > maxBytes) {
    throw new GafferError('PAYLOAD_TOO_LARGE', `${what} is ${bytes} bytes; the limit is ${maxBytes}`, { bytes, maxBytes });
  }
}

/** Queue-level defaults that a submit's missing fields take (defined with newJob, which fills them). */
export type { JobDefaults };

/**
 * `[queues.NAME.backlog]`: keep `target` filler jobs queued in the queue, each
 * made from `job` (with the queue's defaults; priority LIMITS.priorityMin
 * unless it says otherwise), so that idle capacity always has work.
 */
export interface BacklogConfig {
  target: number;
  job: Omit<JobSpec, 'queue' | 'dependsOn' | 'idempotencyKey' | 'runAt' | 'deadline'>;
}

/** A queue's configuration: defaults for its jobs, an optional reliability challenge for new workers, retention, a backlog, speculation. */
export type QueueConfig = JobDefaults & { challenge?: ChallengeSpec; retention?: RetentionPolicy; backlog?: BacklogConfig; speculation?: SpeculationConfig };

/** The filler job of a queue's backlog, checked and filled as a submit to the queue would be. */
export function backlogJob(queue: string, config: QueueConfig, backlog: BacklogConfig): NewJob {
  const { challenge: _challenge, retention: _retention, backlog: _backlog, speculation: _speculation, ...defaults } = config;
  return normalizeJob({ queue, priority: LIMITS.priorityMin, ...backlog.job }, defaults, `queues.${queue}.backlog`);
}

/** `[queues.NAME.speculation]` (or, for every queue, `[speculation]`): what is left out comes from the level above, then SPECULATION_DEFAULTS. */
export interface SpeculationConfig {
  enabled?: boolean;
  quantile?: number;
  multiplier?: number;
}

/** The `[speculation]` table: the defaults of every queue, and what holds across queues. */
export interface SpeculationPolicy extends SpeculationConfig {
  /** Default SPECULATION_DEFAULTS.shareMax. */
  shareMax?: number;
  /** Default SPECULATION_DEFAULTS.intervalMs. */
  intervalMs?: number;
}

/** A queue's speculation settings: its own, else the policy's, else on with SPECULATION_DEFAULTS. */
export function speculationOf(own: SpeculationConfig | undefined, policy: SpeculationPolicy | undefined): SpeculationSettings {
  return {
    enabled: own?.enabled ?? policy?.enabled ?? true,
    quantile: own?.quantile ?? policy?.quantile ?? SPECULATION_DEFAULTS.quantile,
    multiplier: own?.multiplier ?? policy?.multiplier ?? SPECULATION_DEFAULTS.multiplier,
  };
}

/** The smallest number of replicas trace verification can work with: with two, both are equally far from their mean. */
export const TRACE_REPLICAS_MIN = 3;

/** Validates a submit and fills every default (newJob). Throws GafferError; never partially accepts. */
export function normalizeJob(input: unknown, defaults: JobDefaults = {}, what = 'job'): NewJob {
  const spec = validate<JobSpec>(checkJob, what, input);
  checkSize(spec.payload ?? null, LIMITS.payloadMaxBytes, `${what}.payload`);
  const job = newJob(spec, defaults);
  const { replicas, quorum, verify } = job;
  if (quorum > replicas) {
    throw new GafferError('INVALID_INPUT', `${what}.quorum (${quorum}) cannot exceed replicas (${replicas})`);
  }
  if (verify?.mode === 'trace' && replicas < TRACE_REPLICAS_MIN) {
    throw new GafferError('INVALID_INPUT', `${what}.verify trace needs at least ${TRACE_REPLICAS_MIN} replicas (got ${replicas}): traces are compared with each other`);
  }
  if (verify?.mode === 'queue' && replicas !== 1) {
    throw new GafferError('INVALID_INPUT', `${what}.verify queue checks one result at a time: replicas must be 1 (got ${replicas})`);
  }
  if (spec.adaptive === true && replicas < 2) {
    throw new GafferError('INVALID_INPUT', `${what}.adaptive needs replicas of 2 or more (got ${replicas})`);
  }
  if (job.backoff.maxMs < job.backoff.baseMs) throw new GafferError('INVALID_INPUT', `${what}.backoff.maxMs is below backoff.baseMs`);
  return job;
}

export function normalizeJobs(inputs: unknown, defaultsFor: (queue: string) => JobDefaults = () => ({})): NewJob[] {
  if (!Array.isArray(inputs)) throw new GafferError('INVALID_INPUT', 'jobs must be an array');
  if (inputs.length === 0) throw new GafferError('INVALID_INPUT', 'jobs must not be empty');
  if (inputs.length > LIMITS.submitBatchMaxJobs) {
    throw new GafferError('INVALID_INPUT', `a batch holds at most ${LIMITS.submitBatchMaxJobs} jobs, got ${inputs.length}`);
  }
  return inputs.map((j, i) => {
    const queue = typeof j === 'object' && j !== null && typeof (j as { queue?: unknown }).queue === 'string' ? (j as { queue: string }).queue : '';
    return normalizeJob(j, defaultsFor(queue), `jobs[${i}]`);
  });
}

/** Validates a worker's hello, filling defaults for what it left out. */
export function normalizeWorker(input: unknown): WorkerSpec {
  const s = validate<Partial<WorkerSpec> & Pick<WorkerSpec, 'name' | 'queues'>>(checkWorker, 'worker', input);
  const spec: WorkerSpec = {
    name: s.name,
    labels: s.labels ?? {},
    cores: s.cores ?? 0,
    memoryMb: s.memoryMb ?? 0,
    gpuIds: s.gpuIds ?? [],
    queues: s.queues,
    keys: s.keys ?? [],
    host: s.host ?? null,
    pid: s.pid ?? null,
  };
  checkWorkerKeys(spec.keys, 'worker.keys');
  if (s.id !== undefined) spec.id = s.id;
  return spec;
}

export function checkResult(result: unknown): Json {
  checkSize(result, LIMITS.resultMaxBytes, 'result');
  return result as Json;
}

/** A resource trace as a worker sends it: bounded, and its samples in time order. */
export function checkTrace(trace: unknown): Trace {
  const t = validate<Trace>(checkTraceSchema, 'trace', trace);
  for (let i = 1; i < t.samples.length; i++) {
    if (t.samples[i]!.tMs < t.samples[i - 1]!.tMs) throw new GafferError('INVALID_INPUT', 'trace.samples must be in time order');
  }
  return t;
}
