// gaffer queue pause / resume and gaffer history against a real HTTP server
// on a real SQLite file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { Coordinator } from '../coordinator/coordinator.ts';
import { Auth } from '../server/auth.ts';
import { buildHttpApp } from '../server/http.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { BOUNDS, exitWithin, gaffer, tails } from './testing.ts';

const ADMIN = 'admin-secret';

describe('gaffer queue and gaffer history', () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-queue-cli-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    coordinator = new Coordinator({ store, clock: systemClock });
    coordinator.start();
    app = await buildHttpApp({ coordinator, auth: new Auth([{ token: ADMIN, scopes: ['client', 'admin'] }]), logger: pino({ level: 'silent' }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await app.close();
    await coordinator.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (args: string[]): Promise<string> => {
    const p = gaffer(args.join(' '), [...args, '--url', url, '--token', ADMIN]);
    const exit = await exitWithin(p, BOUNDS.startMs);
    assert.equal(exit.code, 0, tails(p));
    return p.stdout();
  };

  it('pauses and resumes a queue, and prints the history', async () => {
    assert.match(await run(['queue', 'pause', 'render', '--reason', 'driver upgrade']), /^render paused since .*: driver upgrade\n$/);
    assert.equal((await store.listQueueStates())[0]?.paused, true);
    assert.equal(await run(['queue', 'resume', 'render']), 'render resumed\n');
    assert.equal((await store.listQueueStates())[0]?.paused, false);
    await coordinator.submit({ queue: 'render', payload: 1 });
    await coordinator.history.flush();
    const table = await run(['history', '--queue', 'render']);
    assert.match(table, /^AT\s+QUEUE\s+SUBMITTED/);
    assert.match(table, /render\s+1\s+0\s+0\s+0\s+0\s+0\s+-\s+-/);
  });
});
