// The store invariants (../suite/invariants/) against SQLite: most runs in memory,
// and as many on a real file in a temp dir, with restarts mid-run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { storeInvariantProperties } from '../suite/invariants/index.ts';
import { openSqliteStore } from './store.ts';

storeInvariantProperties('sqlite :memory:', async ({ clock, random, trust }) => openSqliteStore({ path: ':memory:', clock, random, trust }), { numRuns: 300 });

const dir = mkdtempSync(join(tmpdir(), 'gaffer-invariants-'));
after(() => rmSync(dir, { recursive: true, force: true }));
storeInvariantProperties(
  'sqlite file',
  async ({ clock, random, name, defer, trust }) => {
    const path = join(dir, `${name}.db`);
    defer(() => ['', '-wal', '-shm'].forEach((suffix) => rmSync(path + suffix, { force: true })));
    return openSqliteStore({ path, clock, random, synchronous: 'normal', trust });
  },
  { numRuns: 200, maxCommands: 20, restart: true },
);
