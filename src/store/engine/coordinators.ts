// Coordinators' membership: each running coordinator beats with its weight
// (the slots of its attached workers); the live ones split the ready jobs
// into shares (src/coordinator/shares.ts). Rows not beaten within the window
// are deleted by whoever beats next, so a coordinator that died drops out.
import { assert } from '../../types/errors.ts';
import type { CoordinatorBeat } from '../store.ts';
import type { Context, Tx } from './sql.ts';

export async function beatCoordinator(c: Context, tx: Tx, p: { id: string; weight: number; aliveWithinMs: number }): Promise<CoordinatorBeat[]> {
  assert(p.id.length > 0 && Number.isSafeInteger(p.weight) && p.weight >= 0, 'a coordinator beats with an id and a weight >= 0');
  assert(p.aliveWithinMs > 0, `aliveWithinMs > 0 (got ${p.aliveWithinMs})`);
  const now = c.clock.now();
  await tx.run(
    `INSERT INTO coordinators (id, weight, seen_at) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET weight = excluded.weight, seen_at = excluded.seen_at`,
    [p.id, p.weight, now],
  );
  await tx.run('DELETE FROM coordinators WHERE seen_at < $1', [now - p.aliveWithinMs]);
  const rows = await tx.all('SELECT id, weight, seen_at FROM coordinators ORDER BY id', []);
  return rows.map((r) => ({ id: String(r.id), weight: Number(r.weight), seenAt: Number(r.seen_at) }));
}

/** Deletes the row and wakes the others (sharing a database), so that they take the share at once. */
export async function leaveCoordinator(tx: Tx, id: string): Promise<void> {
  await tx.run('DELETE FROM coordinators WHERE id = $1', [id]);
  tx.wake();
}
