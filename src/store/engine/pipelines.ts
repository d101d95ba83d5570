// Pipeline instances: made whole in one transaction (the instance, its jobs,
// their dependencies), idempotent by key; read with each phase's state; and
// the parents' results a child's assignment carries. How an instance ends is
// pipeline-end.ts. Decided once, for every backend.
import { assert } from '../../types/errors.ts';
import { LIMITS } from '../../types/limits.ts';
import type { Assignment, Job, JobError, Json } from '../../types/model.ts';
import type { JobState } from '../../types/states.ts';
import type {
  NewPipeline,
  ParentResult,
  PhaseState,
  PhaseView,
  Pipeline,
  PipelineDetail,
  PipelineState,
  PipelineTemplate,
} from '../../types/pipeline.ts';
import { decodeCursor, encodeCursor, type Row } from '../rows.ts';
import type { ListPipelinesParams, PipelinePage } from '../store.ts';
import { jobFromRow, type NewJobRow } from './columns.ts';
import { newJobRow, recordDependencies, type InsertJobs } from './jobs.ts';
import { J, type Context, type Exec, type Param, type Tx } from './sql.ts';

/**
 * Makes an instance and all its jobs, or (its key seen before) answers the
 * instance that key made, writing nothing. Jobs are inserted in the order
 * given: each depends only on earlier ones, so each gets its parents' new ids.
 */
export async function submitPipeline(c: Context, tx: Tx, p: NewPipeline, insertJobs: InsertJobs): Promise<{ id: string; created: boolean; jobs: Job[] }> {
  assert(p.jobs.length >= 1 && p.jobs.length <= LIMITS.pipelineJobsMax, 'an instance has 1 to pipelineJobsMax jobs');
  const byKey = async (): Promise<string | null> => {
    if (p.key === null) return null;
    const found = await tx.get('SELECT id FROM pipelines WHERE idempotency_key = $1', [p.key]);
    return found ? String(found.id) : null;
  };
  const known = await byKey();
  if (known !== null) return { id: known, created: false, jobs: [] };
  const id = c.newId();
  const now = c.clock.now();
  const inserted = await tx.get(
    `INSERT INTO pipelines (id, template, state, idempotency_key, locality, on_failure, definition, payload, created_at, updated_at)
     VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, $8)
     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`,
    [id, p.template, p.key, p.locality ?? id, p.definition.onFailure, J(p.definition), J(p.payload), now],
  );
  if (!inserted) {
    // Another coordinator committed the same key between our read and our insert.
    const theirs = await byKey();
    assert(theirs !== null, 'an instance insert skipped only for a key that exists');
    return { id: theirs, created: false, jobs: [] };
  }
  const rows: (NewJobRow & { parents: string[] })[] = [];
  for (const [k, j] of p.jobs.entries()) {
    assert(j.after.every((i) => i < k), 'a job of an instance depends only on earlier ones');
    const parents = new Map<string, JobState>(j.after.map((i) => [rows[i]!.id, rows[i]!.state]));
    const affinity = j.parentAffinity === null ? j.spec.affinity : { key: p.locality ?? id, mode: j.parentAffinity };
    const spec = { ...j.spec, affinity, dependsOn: [...parents.keys()], idempotencyKey: null };
    rows.push(newJobRow(c, spec, parents, now, { pipeline: { id, phase: j.phase, index: j.index } }));
  }
  const written = await insertJobs(tx, rows);
  assert(written.size === rows.length, 'every job of a new instance is inserted');
  await recordDependencies(c, tx, rows);
  if (rows.some((r) => r.state === 'queued')) tx.wake();
  return { id, created: true, jobs: rows.map((r) => jobFromRow(written.get(r.id)!)) };
}

const jsonOrNull = (v: unknown): unknown => (v === null || v === undefined ? null : JSON.parse(String(v)));

function pipelineFromRow(r: Row): Pipeline {
  return {
    id: String(r.id),
    template: String(r.template),
    state: r.state as PipelineState,
    key: r.idempotency_key === null ? null : String(r.idempotency_key),
    locality: String(r.locality),
    onFailure: r.on_failure as Pipeline['onFailure'],
    error: jsonOrNull(r.error) as JobError | null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
  };
}

/** A phase's state from its jobs' states: the worst ending first, then how far it got. */
export function phaseState(states: readonly JobState[], instance: PipelineState): PhaseState {
  if (states.length === 0) return instance === 'running' ? 'waiting' : instance;
  if (states.some((s) => s === 'failed' || s === 'expired')) return 'failed';
  if (states.some((s) => s === 'cancelled')) return 'cancelled';
  if (states.every((s) => s === 'succeeded')) return 'succeeded';
  if (states.some((s) => s === 'running' || s === 'verifying' || s === 'succeeded')) return 'running';
  return states.some((s) => s === 'queued') ? 'queued' : 'waiting';
}

export async function getPipeline(x: Exec, id: string): Promise<PipelineDetail | null> {
  const row = await x.get('SELECT * FROM pipelines WHERE id = $1', [id]);
  if (!row) return null;
  const pipeline = pipelineFromRow(row);
  const definition = JSON.parse(String(row.definition)) as Required<PipelineTemplate>;
  const jobs = await x.all('SELECT id, phase, phase_index, state FROM jobs WHERE pipeline_id = $1 ORDER BY id LIMIT $2', [id, LIMITS.pipelineJobsMax]);
  const phases: PhaseView[] = definition.phases.map((ph) => {
    const mine = jobs.filter((j) => j.phase === ph.name).map((j) => ({ id: String(j.id), index: Number(j.phase_index), state: j.state as JobState }));
    return { name: ph.name, queue: ph.queue, state: phaseState(mine.map((j) => j.state), pipeline.state), jobs: mine };
  });
  return { ...pipeline, payload: JSON.parse(String(row.payload)) as Json, phases };
}

/** Newest first, filtered by template and state, a page at a time (an opaque cursor, as jobs are). */
export async function listPipelines(x: Exec, params: ListPipelinesParams): Promise<PipelinePage> {
  const where: string[] = [];
  const args: Param[] = [];
  const arg = (v: Param): string => (args.push(v), `$${args.length}`);
  if (params.template !== undefined) where.push(`template = ${arg(params.template)}`);
  if (params.state !== undefined) where.push(`state = ${arg(params.state)}`);
  if (params.cursor !== undefined) where.push(`id < ${arg(decodeCursor(params.cursor))}`);
  const limit = Math.max(1, Math.min(params.limit, LIMITS.listMaxPipelines));
  const columns = 'id, template, state, idempotency_key, locality, on_failure, error, created_at, updated_at, finished_at';
  const rows = await x.all(`SELECT ${columns} FROM pipelines ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ${arg(limit + 1)}`, args);
  const pipelines = rows.slice(0, limit).map(pipelineFromRow);
  const last = pipelines[pipelines.length - 1];
  return { pipelines, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}

/**
 * Adds to each leased job of an instance where it sits and its parents'
 * results, in the order their jobs were made (phase order, then index): inline
 * while they sum to at most LIMITS.parentResultsMaxBytes, by reference (job id
 * and size) past that. Reads nothing when no leased job is in an instance.
 */
export async function withParentResults(c: Context, tx: Tx, assignments: Assignment[], rows: ReadonlyMap<string, Row>): Promise<Assignment[]> {
  const ids = [...new Set(assignments.map((a) => a.jobId).filter((id) => rows.get(id)?.pipeline_id != null))];
  if (ids.length === 0) return assignments;
  const refs = await tx.all(
    `SELECT j.id, j.pipeline_id, j.phase, j.phase_index, p.locality FROM jobs j JOIN pipelines p ON p.id = j.pipeline_id WHERE j.id ${c.d.inList('$1')}`,
    [ids],
  );
  const deps = await tx.all(
    `SELECT d.job_id, pj.id, pj.phase, pj.phase_index, ${c.d.octetLength('pj.result')} AS bytes
     FROM job_deps d JOIN jobs pj ON pj.id = d.parent_id WHERE d.job_id ${c.d.inList('$1')} ORDER BY d.job_id, pj.id`,
    [ids],
  );
  const inline = new Set<string>();
  const spent = new Map<string, number>();
  for (const d of deps) {
    const child = String(d.job_id);
    const total = (spent.get(child) ?? 0) + Number(d.bytes ?? 0);
    if (total > LIMITS.parentResultsMaxBytes) continue;
    spent.set(child, total);
    inline.add(String(d.id));
  }
  const results = new Map<string, Json>();
  if (inline.size > 0) {
    for (const r of await tx.all(`SELECT id, result FROM jobs WHERE id ${c.d.inList('$1')}`, [[...inline]])) {
      results.set(String(r.id), jsonOrNull(r.result) as Json);
    }
  }
  const parentsOf = new Map<string, ParentResult[]>();
  for (const d of deps) {
    const jobId = String(d.id);
    const base = { jobId, phase: String(d.phase), index: Number(d.phase_index) };
    const list = parentsOf.get(String(d.job_id)) ?? [];
    list.push(results.has(jobId) ? { ...base, result: results.get(jobId)! } : { ...base, resultBytes: Number(d.bytes ?? 0), byReference: true });
    parentsOf.set(String(d.job_id), list);
  }
  const refOf = new Map(refs.map((r) => [String(r.id), r]));
  return assignments.map((a) => {
    const r = refOf.get(a.jobId);
    if (!r) return a;
    const pipeline = { id: String(r.pipeline_id), phase: String(r.phase), index: Number(r.phase_index), locality: String(r.locality) };
    return { ...a, pipeline, parents: parentsOf.get(a.jobId) ?? [] };
  });
}
