// PgDb on the test server: the wait before a lost race runs again is on the
// injected clock and jittered by the injected randomness. The server is made
// to answer with a given SQLSTATE by a DO block that raises it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock, type Random } from '../../types/clock.ts';
import { POSTGRES_DEFAULTS } from '../../types/limits.ts';
import { PgDb, type PgOptions } from './db.ts';
import { testDatabase, type TestDatabase } from './testing.ts';

/** A statement the server refuses with this SQLSTATE. */
const raising = (sqlstate: string): string => `DO $$ BEGIN RAISE EXCEPTION 'raised for a test' USING ERRCODE = '${sqlstate}'; END $$`;

/** Turns of the event loop until `done` holds (bounded: a test fails rather than hang). */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(done(), `timed out waiting for ${what}`);
}

describe('PgDb', () => {
  let db: TestDatabase;
  const opened: PgDb[] = [];

  before(async () => {
    db = await testDatabase();
  });

  after(async () => {
    for (const d of opened) await d.close();
    await db.drop();
  });

  async function open(over: Partial<PgOptions> & { clock: VirtualClock; random: Random }): Promise<PgDb> {
    const d = await PgDb.open({ url: db.url, schema: db.schema, ...over }, 'db-test');
    opened.push(d);
    return d;
  }

  it('waits on the injected clock, jittered by the injected randomness, before it runs a lost race again', async () => {
    const clock = new VirtualClock();
    const pg = await open({ clock, random: { next: () => 0 } });
    let runs = 0;
    let settled = false;
    const out = pg
      .tx(async (tx) => {
        runs++;
        if (runs === 1) await tx.run(raising('40001'));
        return runs;
      })
      .finally(() => (settled = true));
    await until(() => clock.pendingTimers() === 1, 'the retry wait');
    // random 0: half the base delay.
    const waitMs = POSTGRES_DEFAULTS.txRetryBaseDelayMs / 2;
    clock.advance(waitMs - 0.5);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([runs, settled], [1, false], 'nothing runs before the injected clock reaches the wait');
    clock.advance(0.5);
    assert.equal(await out, 2);
  });
});
