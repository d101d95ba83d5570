// The jobs table's columns, once: what a new job writes into each, how a row
// becomes a Job, and which columns a claim reads of its candidates. Both
// backends use these names and keep JSON as text, so one table serves both.
//
// Adding a job field: add it to the model (src/types/model.ts), a column to
// each backend's schema in one migration each, and an entry here. Nothing
// else reads or writes the jobs table column by column.
import type { Job, JobError, JobPublish, Json, NewJob, PublishManifest, PublishState } from '../../types/model.ts';
import type { JobState } from '../../types/states.ts';
import type { Row } from '../rows.ts';
import { NO_DEADLINE, type JobLinks } from '../rules.ts';
import { J, type Param } from './sql.ts';

/** What a new job's row is made from: the spec, and what the store decided for it. */
export interface NewJobRow {
  id: string;
  spec: NewJob;
  state: JobState;
  /** Parents not yet succeeded. */
  pending: number;
  /** Set when a parent had already ended badly: the job starts ended. */
  error: JobError | null;
  links: JobLinks;
  now: number;
}

export type SqlType = 'text' | 'int' | 'bigint' | 'smallint';

export interface JobColumn {
  name: string;
  /** Its type, for backends that bind a whole batch of rows as typed arrays. */
  type: SqlType;
  /** The value a new job gets; a column without one takes its schema default. */
  insert?: (r: NewJobRow) => Param;
  /** The Job field this column alone makes, and how. */
  field?: keyof Job;
  read?: (v: unknown) => unknown;
  /** A claim reads this column of each candidate. */
  candidate?: true;
}

const num = (v: unknown): number => Number(v);
const text = (v: unknown): string => String(v);
const textOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const json = (v: unknown): unknown => JSON.parse(String(v));
const jsonOrNull = (v: unknown): unknown => (v === null || v === undefined ? null : JSON.parse(String(v)));
const flag = (v: unknown): boolean => Number(v) === 1;
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export const JOB_COLUMNS: readonly JobColumn[] = [
  { name: 'id', type: 'text', insert: (r) => r.id, field: 'id', read: text, candidate: true },
  { name: 'queue', type: 'text', insert: (r) => r.spec.queue, field: 'queue', read: text, candidate: true },
  { name: 'state', type: 'text', insert: (r) => r.state, field: 'state', read: text },
  { name: 'payload', type: 'text', insert: (r) => J(r.spec.payload), field: 'payload', read: json },
  { name: 'priority', type: 'int', insert: (r) => r.spec.priority, field: 'priority', read: num, candidate: true },
  { name: 'run_at', type: 'bigint', insert: (r) => r.spec.runAt ?? r.now, field: 'runAt', read: num, candidate: true },
  { name: 'deadline_at', type: 'bigint', insert: (r) => r.spec.deadline ?? NO_DEADLINE, candidate: true },
  { name: 'has_deadline', type: 'smallint', insert: (r) => (r.spec.deadline === null ? 0 : 1), candidate: true },
  { name: 'timeout_ms', type: 'bigint', insert: (r) => r.spec.timeoutMs, field: 'timeoutMs', read: num },
  { name: 'heartbeat_timeout_ms', type: 'bigint', insert: (r) => r.spec.heartbeatTimeoutMs, field: 'heartbeatTimeoutMs', read: num },
  { name: 'max_attempts', type: 'int', insert: (r) => r.spec.maxAttempts, field: 'maxAttempts', read: num },
  { name: 'backoff_base_ms', type: 'bigint', insert: (r) => r.spec.backoff.baseMs },
  { name: 'backoff_max_ms', type: 'bigint', insert: (r) => r.spec.backoff.maxMs },
  { name: 'req_cores', type: 'int', insert: (r) => r.spec.requires.cores, candidate: true },
  { name: 'req_memory_mb', type: 'bigint', insert: (r) => r.spec.requires.memoryMb, candidate: true },
  { name: 'req_gpus', type: 'int', insert: (r) => r.spec.requires.gpus, candidate: true },
  { name: 'req_labels', type: 'text', insert: (r) => J(r.spec.requires.labels), candidate: true },
  { name: 'affinity_key', type: 'text', insert: (r) => r.spec.affinity?.key ?? null, candidate: true },
  { name: 'affinity_mode', type: 'text', insert: (r) => r.spec.affinity?.mode ?? null, candidate: true },
  { name: 'depends_on', type: 'text', insert: (r) => J(r.spec.dependsOn), field: 'dependsOn', read: json },
  { name: 'replicas', type: 'int', insert: (r) => r.spec.replicas, field: 'replicas', read: num, candidate: true },
  { name: 'quorum', type: 'int', insert: (r) => r.spec.quorum, field: 'quorum', read: num },
  { name: 'margin', type: 'int', insert: (r) => r.spec.margin, field: 'margin', read: num },
  { name: 'distinct_by', type: 'text', insert: (r) => r.spec.distinct, field: 'distinct', read: text, candidate: true },
  { name: 'verify', type: 'text', insert: (r) => (r.spec.verify === null ? null : J(r.spec.verify)), field: 'verify', read: jsonOrNull, candidate: true },
  { name: 'idempotency_key', type: 'text', insert: (r) => r.spec.idempotencyKey, field: 'idempotencyKey', read: textOrNull },
  { name: 'labels', type: 'text', insert: (r) => J(r.spec.labels), field: 'labels', read: json },
  { name: 'want', type: 'int', insert: (r) => (r.state === 'queued' ? r.spec.replicas : 0), field: 'want', read: num, candidate: true },
  { name: 'pending_parents', type: 'int', insert: (r) => (r.state === 'waiting' ? r.pending : 0), field: 'pendingParents', read: num },
  { name: 'error', type: 'text', insert: (r) => (r.error === null ? null : J(r.error)), field: 'error', read: jsonOrNull },
  { name: 'created_at', type: 'bigint', insert: (r) => r.now, field: 'createdAt', read: num, candidate: true },
  { name: 'updated_at', type: 'bigint', insert: (r) => r.now, field: 'updatedAt', read: num },
  { name: 'finished_at', type: 'bigint', insert: (r) => (r.error !== null ? r.now : null), field: 'finishedAt', read: numOrNull },
  { name: 'adaptive', type: 'smallint', insert: (r) => (r.spec.adaptive ? 1 : 0), field: 'adaptive', read: flag, candidate: true },
  { name: 'verifies_job_id', type: 'text', insert: (r) => r.links.verifies?.jobId ?? null },
  { name: 'verifies_attempt_id', type: 'text', insert: (r) => r.links.verifies?.attemptId ?? null, candidate: true },
  { name: 'pinned_worker_id', type: 'text', insert: (r) => r.links.pinnedWorkerId ?? null, field: 'pinnedWorkerId', read: textOrNull, candidate: true },
  // A claim reads pipeline_id to know which leased jobs carry their parents' results.
  { name: 'pipeline_id', type: 'text', insert: (r) => r.links.pipeline?.id ?? null, candidate: true },
  { name: 'phase', type: 'text', insert: (r) => r.links.pipeline?.phase ?? null },
  { name: 'phase_index', type: 'int', insert: (r) => r.links.pipeline?.index ?? null },
  { name: 'filler', type: 'smallint', insert: (r) => (r.links.filler ? 1 : 0), field: 'filler', read: flag },
  // Kept by the store as the job runs; a new job takes the schema's defaults.
  { name: 'result', type: 'text', field: 'result', read: jsonOrNull },
  { name: 'attempts', type: 'int', field: 'attempts', read: num },
  { name: 'failures', type: 'int', field: 'failures', read: num },
  { name: 'lost', type: 'int', field: 'lost', read: num },
  { name: 'live', type: 'int', field: 'live', read: num },
  { name: 'solo', type: 'smallint', field: 'solo', read: flag },
  { name: 'round_seq', type: 'int', candidate: true },
  { name: 'adapted', type: 'smallint', candidate: true },
  // A speculative backup asked for and not yet placed: the attempt it backs up, and why (speculate.ts).
  { name: 'backup_of', type: 'text', candidate: true },
  { name: 'backup_reason', type: 'text', candidate: true },
];

/** The Job fields made of several columns (or of a column read another way). */
function compositeFields(r: Row): Pick<Job, 'deadline' | 'backoff' | 'requires' | 'affinity' | 'verifies' | 'pipeline' | 'publish'> {
  const deadline = num(r.deadline_at);
  return {
    deadline: num(r.has_deadline) === 1 && deadline !== NO_DEADLINE ? deadline : null,
    backoff: { baseMs: num(r.backoff_base_ms), maxMs: num(r.backoff_max_ms) },
    requires: { cores: num(r.req_cores), memoryMb: num(r.req_memory_mb), gpus: num(r.req_gpus), labels: json(r.req_labels) as Record<string, string> },
    affinity:
      r.affinity_key === null || r.affinity_key === undefined
        ? null
        : { key: String(r.affinity_key), mode: r.affinity_mode as 'prefer' | 'require' },
    verifies:
      r.verifies_job_id === null || r.verifies_job_id === undefined
        ? null
        : { jobId: String(r.verifies_job_id), attemptId: String(r.verifies_attempt_id) },
    pipeline:
      r.pipeline_id === null || r.pipeline_id === undefined
        ? null
        : { id: String(r.pipeline_id), phase: String(r.phase), index: num(r.phase_index) },
    publish: publishFromRow(r),
  };
}

/** The publish_* columns (migration 16) as the job's publish; null when the job has none. */
function publishFromRow(r: Row): JobPublish | null {
  if (r.publish_state === null || r.publish_state === undefined) return null;
  return {
    state: String(r.publish_state) as PublishState,
    attemptId: String(r.publish_attempt_id),
    workerId: String(r.publish_worker_id),
    tries: num(r.publish_tries),
    error: jsonOrNull(r.publish_error) as JobError | null,
    manifest: jsonOrNull(r.publish_manifest) as PublishManifest | null,
    updatedAt: num(r.publish_updated_at),
  };
}

const MAPPED = JOB_COLUMNS.filter((c): c is JobColumn & { field: keyof Job; read: (v: unknown) => unknown } => c.field !== undefined && c.read !== undefined);

/** A Job from a full jobs row (`SELECT *` or `RETURNING *`). */
export function jobFromRow(r: Row): Job {
  const job: Record<string, unknown> = {};
  for (const c of MAPPED) job[c.field] = c.read(r[c.name]);
  return Object.assign(job, compositeFields(r)) as unknown as Job;
}

/** The columns a new job's INSERT names, in table order. */
export const INSERT_COLUMNS = JOB_COLUMNS.filter((c): c is JobColumn & { insert: (r: NewJobRow) => Param } => c.insert !== undefined);

/** A new job's values, in INSERT_COLUMNS order. */
export function insertValues(r: NewJobRow): Param[] {
  return INSERT_COLUMNS.map((c) => c.insert(r));
}

/** The job columns a claim reads for each candidate. */
export const CANDIDATE_COLUMNS = JOB_COLUMNS.filter((c) => c.candidate).map((c) => c.name).join(', ');

export type { Json };
