// Queue states an operator sets at run time: a paused queue gets no new
// attempts (running ones finish); a resumed one is claimable at once. Kept in
// the queues table, so every coordinator sharing the database sees them.
import { GafferError } from '../../types/errors.ts';
import { LIMITS } from '../../types/limits.ts';
import type { Row } from '../rows.ts';
import type { QueueState, SetQueuePausedParams } from '../store.ts';
import type { Context, Exec, Tx } from './sql.ts';

function stateFromRow(r: Row): QueueState {
  return {
    queue: String(r.name),
    paused: Number(r.paused) === 1,
    pausedAt: r.paused_at === null || r.paused_at === undefined ? null : Number(r.paused_at),
    reason: r.reason === null || r.reason === undefined ? null : String(r.reason),
  };
}

export async function setQueuePaused(c: Context, tx: Tx, params: SetQueuePausedParams): Promise<QueueState> {
  if (typeof params.queue !== 'string' || params.queue.length === 0 || params.queue.length > LIMITS.queueNameMaxChars) {
    throw new GafferError('INVALID_INPUT', `a queue name is 1 to ${LIMITS.queueNameMaxChars} characters`);
  }
  const now = c.clock.now();
  const reason = params.paused ? (params.reason ?? null) : null;
  // Pausing a paused queue keeps when it was first paused; a new reason replaces the old one.
  const row = await tx.get(
    `INSERT INTO queues (name, paused, paused_at, reason, updated_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,
       paused_at = CASE WHEN excluded.paused = 0 THEN NULL WHEN queues.paused = 1 THEN queues.paused_at ELSE excluded.paused_at END,
       reason = CASE WHEN excluded.paused = 1 AND excluded.reason IS NULL THEN queues.reason ELSE excluded.reason END,
       updated_at = excluded.updated_at
     RETURNING name, paused, paused_at, reason`,
    [params.queue, params.paused ? 1 : 0, params.paused ? now : null, reason, now],
  );
  // Other coordinators dispatch the resumed queue at once.
  if (!params.paused) tx.wake();
  return stateFromRow(row!);
}

export async function listQueueStates(x: Exec): Promise<QueueState[]> {
  const rows = await x.all('SELECT name, paused, paused_at, reason FROM queues ORDER BY name');
  return rows.map(stateFromRow);
}

/** The paused queues among `queues`, read inside a claim. */
export async function pausedAmong(c: Context, tx: Tx, queues: readonly string[]): Promise<Set<string>> {
  if (queues.length === 0) return new Set();
  const rows = await tx.all(`SELECT name FROM queues WHERE paused = 1 AND name ${c.d.inList('$1')}`, [[...queues]]);
  return new Set(rows.map((r) => String(r.name)));
}
