// Workers: registration, state, keys, heartbeats and progress. Decided once,
// for every backend.
import { GafferError } from '../../types/errors.ts';
import { checkWorkerKeys } from '../../types/schemas.ts';
import type { Json, Worker, WorkerCheck, WorkerSpec } from '../../types/model.ts';
import { checkFromRow, workerFromRow, type Row } from '../rows.ts';
import { LIMITS } from '../../types/limits.ts';
import type { HeartbeatParams, HeartbeatResult, LeaseRef, ListWorkersParams, SetWorkerQueuePausedParams } from '../store.ts';
import { throwNotHolder, throwStale } from './settle.ts';
import { J, LIVE, sortedIds, type Context, type Exec, type Tx } from './sql.ts';
import { withCurrentCredit } from './credit.ts';

/** Locks worker rows, in id order: every transaction takes workers in that order, before jobs. */
export async function lockWorkers(c: Context, tx: Exec, ids: readonly string[]): Promise<void> {
  if (!c.d.rowLocks || ids.length === 0) return;
  await tx.all(`SELECT id FROM workers WHERE id ${c.d.inList('$1')} ORDER BY id${c.d.forUpdate}`, [sortedIds(ids)]);
}

/**
 * Registers a worker, or refreshes it on reconnect (one statement). The
 * record belongs to the operator that created it: a hello under another
 * operator changes nothing and is WORKER_ID_TAKEN. A record without an
 * operator (made on a coordinator without tokens, or before operators) is
 * adopted by the first hello with one that names it.
 */
export async function upsertWorker(c: Context, tx: Exec, s: WorkerSpec, id: string, operator: string | null): Promise<void> {
  const now = c.clock.now();
  const n = await tx.run(
    `INSERT INTO workers (id, name, labels, cores, memory_mb, gpu_ids, queues, keys, connected, draining,
       connected_at, last_seen_at, created_at, operator, credit, credit_at, host, pid)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, 0, $9, $9, $9, $10, $11, $9, $12, $13)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, labels = excluded.labels, cores = excluded.cores,
       memory_mb = excluded.memory_mb, gpu_ids = excluded.gpu_ids, queues = excluded.queues, keys = excluded.keys,
       connected = 1, draining = 0, connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at,
       host = excluded.host, pid = excluded.pid, operator = coalesce(workers.operator, excluded.operator)
     WHERE workers.operator IS NULL OR workers.operator = excluded.operator`,
    [id, s.name, J(s.labels), s.cores, s.memoryMb, J(s.gpuIds), J(s.queues), J(s.keys), now, operator, c.trust.creditInitialSlots, s.host ?? null, s.pid ?? null],
  );
  if (n === 0) {
    throw new GafferError('WORKER_ID_TAKEN', `worker id ${id} belongs to another operator; say hello without an id, or with one of your own`, {
      workerId: id,
    });
  }
}

export async function getWorker(c: Context, x: Exec, id: string): Promise<Worker | null> {
  const row = await x.get('SELECT * FROM workers WHERE id = $1', [id]);
  return row ? (await withRunning(c, x, [row]))[0]! : null;
}

export async function mustGetWorker(c: Context, x: Exec, id: string): Promise<Worker> {
  const w = await getWorker(c, x, id);
  if (!w) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${id}`, { workerId: id });
  return w;
}

/** Every column of a worker but its labels and keys, which read as empty (the store suite checks the rest matches a whole read). */
const SUMMARY_COLUMNS = `id, name, '{}' AS labels, cores, memory_mb, gpu_ids, queues, '[]' AS keys, connected, draining, quarantined,
  connected_at, last_seen_at, created_at, valid_count, invalid_count, timed_out_count, valid_streak, solo_since_check,
  quarantine_reason, operator, credit, completed_count, credit_at, paused_queues, host, pid`;

export async function listWorkers(c: Context, x: Exec, p: ListWorkersParams): Promise<Worker[]> {
  const columns = p.summary ? SUMMARY_COLUMNS : '*';
  if (p.ids !== undefined && p.ids.length === 0) return [];
  const where = p.ids === undefined ? '' : ` WHERE id ${c.d.inList('$1')}`;
  return withRunning(c, x, await x.all(`SELECT ${columns} FROM workers${where} ORDER BY id`, p.ids === undefined ? [] : [[...p.ids]]));
}

/** Workers from their rows, with their live attempt counts per queue and their reliability checks (one query each for all). */
async function withRunning(c: Context, x: Exec, stored: readonly Row[]): Promise<Worker[]> {
  const rows = stored.length === 0 ? stored : await withCurrentCredit(c, x, stored);
  const running = new Map<string, Record<string, number>>(rows.map((r) => [String(r.id), {}]));
  const checks = new Map<string, Record<string, WorkerCheck>>(rows.map((r) => [String(r.id), {}]));
  if (rows.length > 0) {
    const ids = [...running.keys()];
    const counts = await x.all(
      `SELECT worker_id, queue, count(*) AS n FROM attempts WHERE worker_id ${c.d.inList('$1')} AND state IN ${LIVE}
       GROUP BY worker_id, queue ORDER BY worker_id, queue`,
      [ids],
    );
    for (const r of counts) running.get(String(r.worker_id))![String(r.queue)] = Number(r.n);
    for (const r of await x.all(`SELECT * FROM worker_checks WHERE worker_id ${c.d.inList('$1')} ORDER BY worker_id, queue`, [ids])) {
      checks.get(String(r.worker_id))![String(r.queue)] = checkFromRow(r);
    }
  }
  const now = c.clock.now();
  return rows.map((r) => workerFromRow(r, running.get(String(r.id))!, now, c.offlineAfterMs, checks.get(String(r.id))!));
}

export async function setDraining(tx: Exec, workerId: string, draining: boolean): Promise<void> {
  const n = await tx.run('UPDATE workers SET draining = $1 WHERE id = $2', [draining ? 1 : 0, workerId]);
  if (n === 0) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${workerId}`);
}

/**
 * Pauses or resumes one queue on one worker: its paused_queues, kept in
 * name order, at most LIMITS.workerQueuesMax. A resume wakes the coordinators.
 */
export async function setQueuePaused(c: Context, tx: Tx, p: SetWorkerQueuePausedParams): Promise<void> {
  const row = await tx.get(`SELECT paused_queues FROM workers WHERE id = $1${c.d.forUpdate}`, [p.workerId]);
  if (!row) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${p.workerId}`, { workerId: p.workerId });
  const paused = new Set(JSON.parse(String(row.paused_queues ?? '[]')) as string[]);
  if (p.paused) paused.add(p.queue);
  else paused.delete(p.queue);
  if (paused.size > LIMITS.workerQueuesMax) {
    throw new GafferError('INVALID_INPUT', `a worker has at most ${LIMITS.workerQueuesMax} paused queues`, { workerId: p.workerId });
  }
  await tx.run('UPDATE workers SET paused_queues = $1 WHERE id = $2', [J([...paused].sort()), p.workerId]);
  if (!p.paused) tx.wake();
}

/** Adds `hold`, then removes `release`; past workerKeysMax keys or workerKeysMaxBytes is INVALID_INPUT (checkWorkerKeys). */
export async function updateKeys(c: Context, tx: Tx, workerId: string, hold: readonly string[], release: readonly string[]): Promise<void> {
  const row = await tx.get(`SELECT keys FROM workers WHERE id = $1${c.d.forUpdate}`, [workerId]);
  if (!row) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${workerId}`);
  const keys = new Set(JSON.parse(String(row.keys ?? '[]')) as string[]);
  for (const k of hold) keys.add(k);
  for (const k of release) keys.delete(k);
  const list = [...keys];
  checkWorkerKeys(list, 'keys');
  await tx.run('UPDATE workers SET keys = $1 WHERE id = $2', [J(list), workerId]);
}

const EXTEND = `heartbeat_at = $1, lease_expires_at = $1 + heartbeat_timeout_ms, started_at = coalesce(started_at, $1),
  state = CASE WHEN state = 'leased' THEN 'running' ELSE state END`;

/** A lease named by a worker, as one text: neither ids nor leases hold a newline. */
const leaseKey = (id: string, lease: string): string => `${id}\n${lease}`;

/**
 * Extends the leases of the worker's live attempts (all of them, or those it
 * names, matched on id and lease) and marks leased ones running; the worker is
 * seen now and, if it had been marked disconnected, revived.
 */
export async function heartbeat(c: Context, tx: Tx, params: HeartbeatParams): Promise<HeartbeatResult> {
  const now = c.clock.now();
  const before = await tx.get(`SELECT connected FROM workers WHERE id = $1${c.d.forUpdate}`, [params.workerId]);
  if (!before) throw new GafferError('WORKER_NOT_FOUND', `no worker has id ${params.workerId}`);
  await tx.run('UPDATE workers SET last_seen_at = $1, connected = 1 WHERE id = $2', [now, params.workerId]);
  const flags: { revived?: true; released?: true } = Number(before.connected) === 0 ? { revived: true } : {};
  const live = `worker_id = $2 AND state IN ${LIVE} AND lease_expires_at >= $1`;
  const freed = params.attempts !== undefined && (await releaseStopped(c, tx, params.workerId, params.attempts)) > 0;
  if (freed) flags.released = true;
  if (params.attempts === undefined) {
    const rows = await tx.all(`UPDATE attempts SET ${EXTEND} WHERE ${live} RETURNING id`, [now, params.workerId]);
    return { extended: rows.map((r) => String(r.id)).sort(), revoked: [], ...flags };
  }
  if (params.attempts.length === 0) return { extended: [], revoked: [], ...flags };
  const named = [...new Set(params.attempts.map((r) => leaseKey(r.attemptId, r.lease)))];
  const rows = await tx.all(`UPDATE attempts SET ${EXTEND} WHERE ${live} AND (id || '\n' || lease) ${c.d.inList('$3')} RETURNING id, lease`, [
    now,
    params.workerId,
    named,
  ]);
  const ok = new Set(rows.map((r) => leaseKey(String(r.id), String(r.lease))));
  const extended: string[] = [];
  const revoked: string[] = [];
  for (const ref of params.attempts) (ok.has(leaseKey(ref.attemptId, ref.lease)) ? extended : revoked).push(ref.attemptId);
  return { extended, revoked, ...flags };
}

/**
 * Revoked attempts the worker no longer names have stopped: what they held is
 * free again. (One it still names is still stopping; it holds on until then, or
 * until its lease would have ended.)
 */
async function releaseStopped(c: Context, tx: Tx, workerId: string, named: readonly LeaseRef[]): Promise<number> {
  return tx.run(`UPDATE attempts SET held_until = NULL WHERE worker_id = $1 AND held_until IS NOT NULL AND id ${c.d.notInList('$2')}`, [
    workerId,
    [...new Set(named.map((r) => r.attemptId))],
  ]);
}

/** Records progress on a live attempt; also a heartbeat for it. */
export async function progress(c: Context, x: Exec, params: LeaseRef & { progress: Json | unknown }): Promise<void> {
  const now = c.clock.now();
  const n = await x.run(
    `UPDATE attempts SET progress = $2, ${EXTEND}
     WHERE id = $3 AND lease = $4 AND state IN ${LIVE} AND lease_expires_at >= $1 AND worker_id = coalesce($5, worker_id)`,
    [now, J(params.progress), params.attemptId, params.lease, params.workerId ?? null],
  );
  if (n > 0) return;
  if (params.workerId !== undefined) {
    const held = await x.get('SELECT worker_id FROM attempts WHERE id = $1', [params.attemptId]);
    if (held && String(held.worker_id) !== params.workerId) throwNotHolder(params);
  }
  await throwStale(x, params);
}
