// Configuration: a TOML file, then environment variables, then flags. Each
// layer overrides the one before it. docs/configuration.md lists every key.
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { SCOPES, type Scope, type TokenConfig } from '../server/auth.ts';
import {
  backlogJob,
  checkSize,
  normalizeJob,
  type BacklogConfig,
  type JobDefaults,
  type QueueConfig,
  type SpeculationConfig,
  type SpeculationPolicy,
} from '../coordinator/validate.ts';
import { checkTemplate, expandPipeline, type PipelineDefinition } from '../coordinator/pipelines.ts';
import { trustPolicy, type TrustPolicy } from '../trust/reputation.ts';
import { GafferError, isGafferError } from '../types/errors.ts';
import { LIMITS, TRUST_DEFAULTS } from '../types/limits.ts';
import type { ChallengeSpec, Distinct, Json, RetentionPolicy, VerifySpec } from '../types/model.ts';

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 7070,
  db: '.gaffer/gaffer.db',
} as const;

export interface ServeConfig {
  host: string;
  port: number;
  /** A SQLite file, or a postgres:// (postgresql://) URL: several coordinators may share one PostgreSQL database. */
  db: string;
  /** PostgreSQL only: the schema Gaffer's tables live in (the store's default when left out). */
  pgSchema?: string;
  /** PostgreSQL only: most connections this coordinator opens (the store's default when left out). */
  pgPoolMax?: number;
  /** SQLite only: 'full' (the default) fsyncs every commit that holds a submit or a result; 'normal' never waits for the disk. */
  sqliteSync?: 'full' | 'normal';
  /** False: this coordinator keeps no queue history (no minute rows, no history charts); the default is true. */
  history?: boolean;
  tokens: TokenConfig[];
  /** Per queue: defaults for the fields a submit leaves out, and an optional reliability challenge. */
  queues: Record<string, QueueConfig>;
  /** `[pipelines.NAME]`: pipeline templates by name, checked as a submit naming them would be; none when left out. */
  pipelines?: Record<string, PipelineDefinition>;
  /** `[retention]`: how long finished jobs of a queue without `[queues.NAME.retention]` are kept; RETENTION_DEFAULTS when the file has none. */
  retention?: RetentionPolicy;
  /** `server.workerRetentionDays`: how long an offline worker record that holds nothing is kept (COORDINATOR_DEFAULTS.workerRetentionMs when left out). */
  workerRetentionMs?: number;
  /** The `[trust]` settings given (the rest keep TRUST_DEFAULTS); left out when the file has none. */
  trust?: Partial<TrustPolicy>;
  /** `[speculation]`: speculative backups for every queue (each may override it); on with SPECULATION_DEFAULTS when the file has none. */
  speculation?: SpeculationPolicy;
}

/** The tolerance of trace verification when `--verify trace` or a queue's `verify = { mode = "trace" }` gives none. */
export const TRACE_TOLERANCE_DEFAULT = 0.2;

/** True when `db` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(db);
}

/** The database as it may be printed and logged: a PostgreSQL URL without its password. */
export function describeDb(db: string): string {
  if (!isPostgresUrl(db)) return db;
  return withoutPassword(db, 'postgres://(a URL that does not parse)');
}

/** A URL as it may be printed and logged: its password, if any, replaced by ***; `unparsable` when it does not parse. */
export function withoutPassword(url: string, unparsable: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return unparsable;
  }
}

/** A schema name as the PostgreSQL store takes it: a letter or _, then letters, digits or _, at most 63. */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

type Table = Record<string, unknown>;

export function readToml(path: string): Table {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new GafferError('INVALID_INPUT', `cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    return parseToml(text) as Table;
  } catch (err) {
    throw new GafferError('INVALID_INPUT', `config file ${path} is not valid TOML: ${(err as Error).message}`);
  }
}

function table(v: unknown, where: string): Table {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new GafferError('INVALID_INPUT', `${where} must be a table`);
  return v as Table;
}

function str(v: unknown, where: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new GafferError('INVALID_INPUT', `${where} must be a string`);
  return v;
}

function num(v: unknown, where: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new GafferError('INVALID_INPUT', `${where} must be a number`);
  return v;
}

function bool(v: unknown, where: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new GafferError('INVALID_INPUT', `${where} must be true or false`);
  return v;
}

/** A TOML value as JSON: tables, arrays, strings, numbers and booleans; a TOML date or time is refused. */
function json(v: unknown, where: string): Json {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new GafferError('INVALID_INPUT', `${where} must be a finite number (JSON has no inf or nan)`);
    return v;
  }
  if (Array.isArray(v)) return v.map((x, i) => json(x, `${where}[${i}]`));
  // TOML tables are plain objects (the parser makes them without a prototype); a TOML date is a Date.
  if (typeof v === 'object' && v !== null && [Object.prototype, null].includes(Object.getPrototypeOf(v) as object | null)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, json(x, `${where}.${k}`)]));
  }
  throw new GafferError('INVALID_INPUT', `${where} must be JSON-like: a table, an array, a string, a number or a boolean (a TOML date is not)`);
}

export function int(v: unknown, where: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new GafferError('INVALID_INPUT', `${where} must be a whole number`);
  return n;
}

function tokensOf(v: unknown): TokenConfig[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new GafferError('INVALID_INPUT', 'tokens must be an array of tables ([[tokens]])');
  return v.map((t, i) => {
    const entry = table(t, `tokens[${i}]`);
    const token = str(entry.token, `tokens[${i}].token`);
    if (!token) throw new GafferError('INVALID_INPUT', `tokens[${i}].token is required`);
    const scopes = (entry.scopes ?? SCOPES) as unknown;
    if (!Array.isArray(scopes) || !scopes.every((s) => SCOPES.includes(s as Scope))) {
      throw new GafferError('INVALID_INPUT', `tokens[${i}].scopes must list some of ${SCOPES.join(', ')}`);
    }
    const name = str(entry.name, `tokens[${i}].name`);
    const operator = str(entry.operator, `tokens[${i}].operator`);
    return { token, scopes: scopes as Scope[], ...(name ? { name } : {}), ...(operator ? { operator } : {}) };
  });
}

/** Merges file < env < flags for `gaffer serve`. */
export function serveConfig(
  flags: { host?: string; port?: string; db?: string; pgSchema?: string; pgPoolMax?: string; sqliteSync?: string; history?: boolean; config?: string; token?: string },
  env: NodeJS.ProcessEnv,
): ServeConfig {
  const file = flags.config ? readToml(flags.config) : {};
  const server = table(file.server, 'server');
  const host = flags.host ?? env.GAFFER_HOST ?? str(server.host, 'server.host') ?? SERVE_DEFAULTS.host;
  const port = int(flags.port, '--port') ?? int(env.GAFFER_PORT, 'GAFFER_PORT') ?? int(server.port, 'server.port') ?? SERVE_DEFAULTS.port;
  const db = flags.db ?? env.GAFFER_DB ?? str(server.db, 'server.db') ?? SERVE_DEFAULTS.db;
  const pgSchema = flags.pgSchema ?? (env.GAFFER_PG_SCHEMA || undefined) ?? str(server.pgSchema, 'server.pgSchema');
  if (pgSchema !== undefined && !SCHEMA_NAME.test(pgSchema)) {
    throw new GafferError('INVALID_INPUT', `the PostgreSQL schema "${pgSchema}" must be 1 to 63 letters, digits or _, not starting with a digit`);
  }
  const pgPoolMax =
    int(flags.pgPoolMax, '--pg-pool-max') ?? int(env.GAFFER_PG_POOL_MAX, 'GAFFER_PG_POOL_MAX') ?? int(server.pgPoolMax, 'server.pgPoolMax');
  if (pgPoolMax !== undefined && pgPoolMax < 1) throw new GafferError('INVALID_INPUT', 'the PostgreSQL pool needs at least 1 connection');
  if ((pgSchema !== undefined || pgPoolMax !== undefined) && !isPostgresUrl(db)) {
    throw new GafferError('INVALID_INPUT', 'pgSchema and pgPoolMax apply to a PostgreSQL database: give --db postgres://...');
  }
  const sqliteSync = flags.sqliteSync ?? (env.GAFFER_SQLITE_SYNC || undefined) ?? str(server.sqliteSync, 'server.sqliteSync');
  if (sqliteSync !== undefined && sqliteSync !== 'full' && sqliteSync !== 'normal') {
    throw new GafferError('INVALID_INPUT', `sqliteSync is full or normal, not "${sqliteSync}"`);
  }
  if (sqliteSync !== undefined && isPostgresUrl(db)) throw new GafferError('INVALID_INPUT', 'sqliteSync applies to a SQLite database file');
  const history = flags.history === false ? false : bool(server.history, 'server.history');
  const single = flags.token ?? env.GAFFER_TOKEN;
  const tokens = single ? [{ token: single, scopes: SCOPES, name: 'default' }] : tokensOf(file.tokens);
  const queues: Record<string, QueueConfig> = {};
  for (const [name, q] of Object.entries(table(file.queues, 'queues'))) queues[name] = queueConfig(table(q, `queues.${name}`), name);
  const pipelines = file.pipelines === undefined ? undefined : pipelinesOf(table(file.pipelines, 'pipelines'), queues);
  const trust = file.trust === undefined ? undefined : trustOf(table(file.trust, 'trust'));
  const retention = file.retention === undefined ? undefined : retentionOf(file.retention, 'retention');
  const speculation = file.speculation === undefined ? undefined : speculationPolicyOf(file.speculation);
  const workerRetentionDays = num(server.workerRetentionDays, 'server.workerRetentionDays');
  if (workerRetentionDays !== undefined && !(workerRetentionDays > 0)) throw new GafferError('INVALID_INPUT', 'server.workerRetentionDays must be more than 0');
  return {
    host,
    port,
    db,
    ...(pgSchema !== undefined ? { pgSchema } : {}),
    ...(pgPoolMax !== undefined ? { pgPoolMax } : {}),
    ...(sqliteSync !== undefined ? { sqliteSync } : {}),
    ...(history !== undefined ? { history } : {}),
    tokens,
    queues,
    ...(pipelines !== undefined ? { pipelines } : {}),
    ...(trust !== undefined ? { trust } : {}),
    ...(retention !== undefined ? { retention } : {}),
    ...(speculation !== undefined ? { speculation } : {}),
    ...(workerRetentionDays !== undefined ? { workerRetentionMs: Math.round(workerRetentionDays * DAY_MS) } : {}),
  };
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * `[pipelines.NAME]` with `onFailure` and `[[pipelines.NAME.phases]]`: each
 * template checked (checkTemplate), and its jobs as an instance would make
 * them with the queues' defaults, so a template that cannot make valid jobs
 * is refused at start rather than on each submit.
 */
function pipelinesOf(t: Table, queues: Record<string, QueueConfig>): Record<string, PipelineDefinition> {
  const names = Object.keys(t);
  if (names.length > LIMITS.pipelineTemplatesMax) {
    throw new GafferError('INVALID_INPUT', `the config names ${names.length} pipeline templates; the limit is ${LIMITS.pipelineTemplatesMax} (pipelineTemplatesMax)`);
  }
  const out: Record<string, PipelineDefinition> = {};
  for (const name of names) {
    const where = `pipelines.${name}`;
    const definition = checkTemplate(json(table(t[name], where), where), where);
    expandPipeline({ template: name }, { [name]: definition }, (q) => queues[q] ?? {});
    out[name] = definition;
  }
  return out;
}

/**
 * `[retention]` or `[queues.NAME.retention]`: keepDays (more than 0, may be
 * fractional) and keepJobs (a whole number, 0 or more), either or both; a
 * table with neither keeps finished jobs for ever. archive: a file the
 * deleted jobs are appended to first, as JSON lines.
 */
function retentionOf(v: unknown, where: string): RetentionPolicy {
  const t = table(v, where);
  for (const k of Object.keys(t)) {
    if (!['keepDays', 'keepJobs', 'archive'].includes(k)) throw new GafferError('INVALID_INPUT', `${where}.${k} is not a retention setting (keepDays, keepJobs, archive)`);
  }
  const keepDays = num(t.keepDays, `${where}.keepDays`);
  const keepJobs = int(t.keepJobs, `${where}.keepJobs`);
  if (keepDays !== undefined && !(keepDays > 0)) throw new GafferError('INVALID_INPUT', `${where}.keepDays must be more than 0`);
  if (keepJobs !== undefined && keepJobs < 0) throw new GafferError('INVALID_INPUT', `${where}.keepJobs must be 0 or more`);
  const archive = str(t.archive, `${where}.archive`);
  if (archive === '') throw new GafferError('INVALID_INPUT', `${where}.archive must name a file`);
  return { ...(keepDays !== undefined ? { keepDays } : {}), ...(keepJobs !== undefined ? { keepJobs } : {}), ...(archive !== undefined ? { archive } : {}) };
}

const SPECULATION_KEYS = ['enabled', 'quantile', 'multiplier'];

/** `[queues.NAME.speculation]`: enabled, quantile (0 to 1) and multiplier (1 or more), any of them. */
function speculationOf(v: unknown, where: string, extra: readonly string[] = []): SpeculationConfig {
  const t = table(v, where);
  for (const k of Object.keys(t)) {
    if (![...SPECULATION_KEYS, ...extra].includes(k)) {
      throw new GafferError('INVALID_INPUT', `${where}.${k} is not a speculation setting (${[...SPECULATION_KEYS, ...extra].join(', ')})`);
    }
  }
  const enabled = bool(t.enabled, `${where}.enabled`);
  const quantile = num(t.quantile, `${where}.quantile`);
  const multiplier = num(t.multiplier, `${where}.multiplier`);
  if (quantile !== undefined && !(quantile >= 0 && quantile <= 1)) throw new GafferError('INVALID_INPUT', `${where}.quantile must be from 0 to 1`);
  if (multiplier !== undefined && !(multiplier >= 1)) throw new GafferError('INVALID_INPUT', `${where}.multiplier must be 1 or more`);
  return { ...(enabled !== undefined ? { enabled } : {}), ...(quantile !== undefined ? { quantile } : {}), ...(multiplier !== undefined ? { multiplier } : {}) };
}

/** `[speculation]`: a queue's settings for every queue, and shareMax (more than 0, at most 1) and intervalMs (at least 1). */
function speculationPolicyOf(v: unknown): SpeculationPolicy {
  const out: SpeculationPolicy = speculationOf(v, 'speculation', ['shareMax', 'intervalMs']);
  const t = table(v, 'speculation');
  const shareMax = num(t.shareMax, 'speculation.shareMax');
  const intervalMs = int(t.intervalMs, 'speculation.intervalMs');
  if (shareMax !== undefined && !(shareMax > 0 && shareMax <= 1)) throw new GafferError('INVALID_INPUT', 'speculation.shareMax must be more than 0 and at most 1');
  if (intervalMs !== undefined && intervalMs < 1) throw new GafferError('INVALID_INPUT', 'speculation.intervalMs must be at least 1');
  if (shareMax !== undefined) out.shareMax = shareMax;
  if (intervalMs !== undefined) out.intervalMs = intervalMs;
  return out;
}

const TRUST_FIELDS = Object.keys(TRUST_DEFAULTS) as (keyof TrustPolicy)[];

/**
 * `[trust]`: any of the TrustPolicy fields, each checked as the store checks it.
 * An unknown key is refused rather than ignored: a misspelt threshold must not
 * leave the default silently in force.
 */
function trustOf(t: Table): Partial<TrustPolicy> {
  const out: Partial<TrustPolicy> = {};
  for (const [k, v] of Object.entries(t)) {
    if (!(TRUST_FIELDS as string[]).includes(k)) {
      throw new GafferError('INVALID_INPUT', `trust.${k} is not a trust setting; the settings are ${TRUST_FIELDS.join(', ')}`);
    }
    out[k as keyof TrustPolicy] = num(v, `trust.${k}`);
  }
  try {
    trustPolicy(out);
  } catch (err) {
    if (isGafferError(err)) throw new GafferError('INVALID_INPUT', err.message.replace(/^trust policy: /, 'trust.'));
    throw err;
  }
  return out;
}

/** `distinct = "operator"` or `"worker"`. */
function distinctOf(v: unknown, where: string): Distinct | undefined {
  const s = str(v, where);
  if (s === undefined || s === 'operator' || s === 'worker') return s;
  throw new GafferError('INVALID_INPUT', `${where} must be "operator" or "worker" (got ${JSON.stringify(s)})`);
}

/** `verify = { mode = "trace", tolerance = 0.2 }` or `verify = { queue = "NAME" }` (`mode = "queue"` may be given). */
function verifyOf(v: unknown, where: string): VerifySpec | undefined {
  if (v === undefined) return undefined;
  const t = table(v, where);
  for (const k of Object.keys(t)) {
    if (!['mode', 'tolerance', 'queue'].includes(k)) throw new GafferError('INVALID_INPUT', `${where}.${k} is not a verify setting (mode, tolerance, queue)`);
  }
  const mode = str(t.mode, `${where}.mode`) ?? (t.queue !== undefined ? 'queue' : undefined);
  if (mode === 'trace') {
    if (t.queue !== undefined) throw new GafferError('INVALID_INPUT', `${where}: trace verification takes a tolerance, not a queue`);
    const tolerance = num(t.tolerance, `${where}.tolerance`) ?? TRACE_TOLERANCE_DEFAULT;
    if (tolerance < 0) throw new GafferError('INVALID_INPUT', `${where}.tolerance must be 0 or more`);
    return { mode: 'trace', tolerance };
  }
  if (mode === 'queue') {
    if (t.tolerance !== undefined) throw new GafferError('INVALID_INPUT', `${where}: queue verification takes a queue, not a tolerance`);
    const queue = str(t.queue, `${where}.queue`);
    if (!queue) throw new GafferError('INVALID_INPUT', `${where}.queue is required: the queue whose workers check each result`);
    return { mode: 'queue', queue };
  }
  throw new GafferError('INVALID_INPUT', `${where} must be { mode = "trace", tolerance = N } or { queue = "NAME" }`);
}

/** `[queues.NAME.challenge]`: payload (default null), answer and timeLimitMs (both required). */
function challengeOf(v: unknown, where: string): ChallengeSpec | undefined {
  if (v === undefined) return undefined;
  const t = table(v, where);
  for (const k of Object.keys(t)) {
    if (!['payload', 'answer', 'timeLimitMs'].includes(k)) {
      throw new GafferError('INVALID_INPUT', `${where}.${k} is not a challenge setting (payload, answer, timeLimitMs)`);
    }
  }
  if (t.answer === undefined) throw new GafferError('INVALID_INPUT', `${where}.answer is required: the result an honest worker returns`);
  const timeLimitMs = int(t.timeLimitMs, `${where}.timeLimitMs`);
  if (timeLimitMs === undefined) throw new GafferError('INVALID_INPUT', `${where}.timeLimitMs is required`);
  if (timeLimitMs < 1) throw new GafferError('INVALID_INPUT', `${where}.timeLimitMs must be at least 1`);
  const answer = json(t.answer, `${where}.answer`);
  checkSize(answer, LIMITS.resultMaxBytes, `${where}.answer`);
  return { payload: t.payload === undefined ? null : json(t.payload, `${where}.payload`), answer, timeLimitMs };
}

function queueConfig(q: Table, name: string): QueueConfig {
  const out: QueueConfig = queueDefaults(q, name);
  const challenge = challengeOf(q.challenge, `queues.${name}.challenge`);
  // The defaults are checked as a submit giving them would be (ranges, and
  // combinations such as trace verification on fewer than 3 replicas): a queue
  // whose defaults cannot make a valid job is refused now rather than on each
  // submit. `adaptive` is left out: as a default it applies to the jobs that
  // are replicated and is simply off for the rest.
  const asSpec = { ...out };
  delete asSpec.adaptive;
  normalizeJob({ queue: name, ...asSpec }, {}, `queues.${name}`);
  if (challenge !== undefined) {
    // The challenge runs as a job of this queue, with its time limit as the run time limit.
    normalizeJob({ queue: name, payload: challenge.payload, timeoutMs: challenge.timeLimitMs, maxAttempts: 1 }, {}, `queues.${name}.challenge`);
    out.challenge = challenge;
  }
  if (q.retention !== undefined) out.retention = retentionOf(q.retention, `queues.${name}.retention`);
  if (q.backlog !== undefined) {
    out.backlog = backlogOf(q.backlog, `queues.${name}.backlog`);
    // The filler job is checked now, as a submit to the queue with its defaults would be.
    backlogJob(name, out, out.backlog);
  }
  if (q.speculation !== undefined) out.speculation = speculationOf(q.speculation, `queues.${name}.speculation`);
  return out;
}

const BACKLOG_JOB_FIELDS = ['payload', 'priority', 'requires', 'timeoutMs', 'heartbeatTimeoutMs', 'maxAttempts', 'labels'] as const;

/**
 * `[queues.NAME.backlog]`: target (required, 0 to backlogTargetMax) and the
 * filler job's fields (payload, priority, requires, timeoutMs,
 * heartbeatTimeoutMs, maxAttempts, labels); the rest come from the queue.
 */
function backlogOf(v: unknown, where: string): BacklogConfig {
  const t = table(v, where);
  for (const k of Object.keys(t)) {
    if (k !== 'target' && !(BACKLOG_JOB_FIELDS as readonly string[]).includes(k)) {
      throw new GafferError('INVALID_INPUT', `${where}.${k} is not a backlog setting (target, ${BACKLOG_JOB_FIELDS.join(', ')})`);
    }
  }
  const target = int(t.target, `${where}.target`);
  if (target === undefined) throw new GafferError('INVALID_INPUT', `${where}.target is required: the filler jobs to keep queued`);
  if (target < 0 || target > LIMITS.backlogTargetMax) throw new GafferError('INVALID_INPUT', `${where}.target must be 0 to ${LIMITS.backlogTargetMax}`);
  const job: Record<string, Json> = {};
  for (const k of BACKLOG_JOB_FIELDS) if (t[k] !== undefined) job[k] = json(t[k], `${where}.${k}`);
  return { target, job: job as BacklogConfig['job'] };
}

function queueDefaults(q: Table, name: string): JobDefaults {
  const out: JobDefaults = {};
  const at = (k: string): string => `queues.${name}.${k}`;
  const put = <K extends keyof JobDefaults>(k: K, v: JobDefaults[K] | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  put('priority', int(q.priority, at('priority')));
  put('timeoutMs', int(q.timeoutMs, at('timeoutMs')));
  put('heartbeatTimeoutMs', int(q.heartbeatTimeoutMs, at('heartbeatTimeoutMs')));
  put('maxAttempts', int(q.maxAttempts, at('maxAttempts')));
  put('replicas', int(q.replicas, at('replicas')));
  put('quorum', int(q.quorum, at('quorum')));
  put('margin', int(q.margin, at('margin')));
  put('distinct', distinctOf(q.distinct, at('distinct')));
  put('verify', verifyOf(q.verify, at('verify')));
  put('adaptive', bool(q.adaptive, at('adaptive')));
  const base = int(q.backoffBaseMs, at('backoffBaseMs'));
  const max = int(q.backoffMaxMs, at('backoffMaxMs'));
  if (base !== undefined && max !== undefined) out.backoff = { baseMs: base, maxMs: max };
  else if (base !== undefined || max !== undefined) {
    throw new GafferError('INVALID_INPUT', `${at('backoffBaseMs')} and ${at('backoffMaxMs')} go together`);
  }
  return out;
}
