// A worker's id across restarts: a real coordinator on a SQLite file behind the
// real server on 127.0.0.1 (HTTP API and worker socket), SDK workers, and
// GET /v1/workers to count the records.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Coordinator } from '../coordinator/coordinator.ts';
import { Auth } from '../server/auth.ts';
import { startServer, type RunningServer } from '../server/index.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { savedWorkerId, saveWorkerId } from './state-file.ts';
import { Worker, type WorkerOptions } from './worker.ts';

const T = { timeout: 30_000 };
const CLIENT = 'client-secret';
const ALICE = 'alice-worker-token';
const BOB = 'bob-worker-token';

describe('worker state file', () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let server: RunningServer;
  const running: Worker[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-state-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: 50 });
    coordinator.start();
    const auth = new Auth([
      { token: CLIENT, scopes: ['client'] },
      { token: ALICE, scopes: ['worker'], operator: 'alice' },
      { token: BOB, scopes: ['worker'], operator: 'bob' },
    ]);
    server = await startServer({ coordinator, auth, host: '127.0.0.1', port: 0 });
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((w) => w.stop()));
  });

  after(async () => {
    await server.close();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a worker and resolves once it is welcomed. */
  async function start(o: Partial<WorkerOptions> & Pick<WorkerOptions, 'name'>): Promise<Worker> {
    const w = new Worker({ urls: server.url, token: ALICE, handleSignals: false, queues: { q: { slots: 1, handler: () => null } }, ...o });
    running.push(w);
    await w.start();
    return w;
  }

  async function stop(w: Worker): Promise<void> {
    await w.stop();
    running.splice(running.indexOf(w), 1);
  }

  async function listed(name: string): Promise<{ id: string; name: string }[]> {
    const res = await fetch(`${server.url}/v1/workers?limit=500`, { headers: { authorization: `Bearer ${CLIENT}` } });
    assert.equal(res.status, 200);
    const page = (await res.json()) as { workers: { id: string; name: string }[] };
    return page.workers.filter((w) => w.name === name);
  }

  it('a restarted worker keeps its id and its one record', T, async () => {
    const file = join(dir, 'restart', 'worker.state.json');
    const first = await start({ name: 'keeper', stateFile: file });
    const id = first.id!;
    assert.equal(savedWorkerId(file, 'keeper'), id, 'saved after the welcome');
    await stop(first);
    const second = await start({ name: 'keeper', stateFile: file });
    assert.equal(second.id, id, 'the same id after a restart');
    await stop(second);
    const third = await start({ name: 'keeper', stateFile: file });
    assert.equal(third.id, id);
    assert.deepEqual((await listed('keeper')).map((w) => w.id), [id], 'GET /v1/workers shows one record');
    assert.deepEqual(readdirSync(join(dir, 'restart')), ['worker.state.json'], 'no temp file left beside it');
  });

  it('keeps one id per name in one file, and without a state file a restart is a new record', T, async () => {
    const file = join(dir, 'shared.json');
    const a = await start({ name: 'pair-a', stateFile: file });
    const b = await start({ name: 'pair-b', stateFile: file });
    assert.notEqual(a.id, b.id);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { workers: { 'pair-a': a.id, 'pair-b': b.id } });
    const plain = await start({ name: 'forgetful' });
    await stop(plain);
    await start({ name: 'forgetful' });
    assert.equal((await listed('forgetful')).length, 2, 'the behaviour the state file is for');
  });

  it('a saved id of another operator is refused (WORKER_ID_TAKEN): logged, replaced by a fresh id, the owner\'s record untouched', T, async () => {
    const bobs = await start({ name: 'bobs', token: BOB });
    const file = join(dir, 'copied.json');
    saveWorkerId(file, 'mine', bobs.id!);
    const lines: { msg: string; workerId?: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
        done();
      },
    });
    const mine = await start({ name: 'mine', stateFile: file, logger: pino({ level: 'error' }, sink) });
    assert.notEqual(mine.id, bobs.id, 'a fresh id');
    assert.equal(savedWorkerId(file, 'mine'), mine.id, 'the fresh id replaced the refused one in the file');
    assert.ok(lines.some((l) => /belongs to another operator \(WORKER_ID_TAKEN\)/.test(l.msg) && l.workerId === bobs.id), JSON.stringify(lines));
    assert.equal(bobs.connected, true, 'the owner keeps its connection');
    assert.deepEqual((await listed('bobs')).map((w) => w.id), [bobs.id]);
  });

  it('an explicit id wins over the file; a state file that is not one fails start() with its path', T, async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, 'not json');
    await assert.rejects(start({ name: 'broken', stateFile: file }), /worker state file .*broken\.json is not JSON/);
    assert.equal(readFileSync(file, 'utf8'), 'not json', 'left as it was');
    const other = join(dir, 'explicit.json');
    saveWorkerId(other, 'explicit', '01J0000000000000000000000X');
    const w = await start({ name: 'explicit', id: '01J0000000000000000000000Y', stateFile: other });
    assert.equal(w.id, '01J0000000000000000000000Y');
    assert.equal(savedWorkerId(other, 'explicit'), w.id);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
  });
});
