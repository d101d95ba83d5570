// The store invariants (../suite/invariants/) against PostgreSQL, with restarts
// mid-run. One schema for the whole file, migrated once; each run starts from
// empty tables (a restart within a run keeps them), and every store uses one
// shared pool, so that a run costs its own queries and little else.
import { after } from 'node:test';
import pg from 'pg';
import { seededRandom, VirtualClock } from '../../types/clock.ts';
import { storeInvariantProperties } from '../suite/invariants/index.ts';
import { quoteIdent } from './db.ts';
import { openPostgresStore } from './store.ts';
import { testDatabase, type TestDatabase } from './testing.ts';

let setup: Promise<{ db: TestDatabase; pool: pg.Pool }> | null = null;
let currentRun = '';

function shared(): Promise<{ db: TestDatabase; pool: pg.Pool }> {
  setup ??= (async () => {
    const db = await testDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 4, options: `-c search_path=${quoteIdent(db.schema)}` });
    await (await openPostgresStore({ pool, schema: db.schema, clock: new VirtualClock(), random: seededRandom(0) })).close();
    return { db, pool };
  })();
  return setup;
}

after(async () => {
  if (!setup) return;
  const { db, pool } = await setup;
  await pool.end();
  await db.drop();
});

storeInvariantProperties(
  'postgres',
  async ({ clock, random, name, trust }) => {
    const { db, pool } = await shared();
    if (name !== currentRun) {
      currentRun = name;
      await pool.query('DELETE FROM job_deps; DELETE FROM attempts; DELETE FROM jobs; DELETE FROM workers; DELETE FROM worker_checks');
    }
    return openPostgresStore({ pool, schema: db.schema, clock, random, trust });
  },
  // As on the SQLite file: 200 runs of up to 20 commands with restarts (every step is checked by
  // reading the whole store back, a few hundred queries per run).
  { numRuns: 200, maxCommands: 20, restart: true },
);
