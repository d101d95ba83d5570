// One nesting bound (LIMITS.jsonNestingMaxLevels) for payloads, results and
// progress, over HTTP and over the worker socket: a real coordinator on a
// SQLite file behind the real server on 127.0.0.1, fetch and a raw protocol
// client. A value nested 4,000 (or 100,000) deep is refused with
// INVALID_INPUT before anything recurses over it, never INTERNAL.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Coordinator } from '../coordinator/coordinator.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { exceedsJsonDepth } from '../types/json-depth.ts';
import { LIMITS } from '../types/limits.ts';
import { WORKER_PATH } from '../types/protocol.ts';
import { Auth } from './auth.ts';
import { startServer, type RunningServer } from './index.ts';
import { RawClient } from './testing.ts';

const CLIENT = 'client-secret';
const WORKER = 'worker-secret';
const T = { timeout: 30_000 };

/** JSON text of `levels` nested arrays around 0, built as text so that no serialiser recurses. */
const deepText = (levels: number): string => '['.repeat(levels) + '0' + ']'.repeat(levels);
const deep = (levels: number): unknown => JSON.parse(deepText(levels));

describe('exceedsJsonDepth', () => {
  it('measures nesting without recursion, even far past the call stack', () => {
    assert.equal(exceedsJsonDepth(0, 0), false);
    assert.equal(exceedsJsonDepth([], 0), true);
    assert.equal(exceedsJsonDepth({ a: [1, { b: null }] }, 3), false);
    assert.equal(exceedsJsonDepth({ a: [1, { b: null }] }, 2), true);
    assert.equal(exceedsJsonDepth(deep(LIMITS.jsonNestingMaxLevels), LIMITS.jsonNestingMaxLevels), false);
    assert.equal(exceedsJsonDepth(deep(LIMITS.jsonNestingMaxLevels + 1), LIMITS.jsonNestingMaxLevels), true);
    assert.equal(exceedsJsonDepth(deep(1_000_000), LIMITS.jsonNestingMaxLevels), true);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(exceedsJsonDepth(cyclic, LIMITS.jsonNestingMaxLevels), true, 'a cycle ends as too deep');
  });
});

describe('the nesting bound over HTTP and the worker socket', () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let server: RunningServer;
  const clients: RawClient[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-depth-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: 50 });
    coordinator.start();
    const auth = new Auth([{ token: CLIENT, scopes: ['client'] }, { token: WORKER, scopes: ['worker'] }]);
    server = await startServer({ coordinator, auth, host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    for (const c of clients) c.close();
    await server.close();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function post(path: string, body: string): Promise<{ status: number; body: any }> {
    const res = await fetch(server.url + path, { method: 'POST', headers: { authorization: `Bearer ${CLIENT}`, 'content-type': 'application/json' }, body });
    return { status: res.status, body: await res.json() };
  }

  it('POST /v1/jobs: a payload 4,000 or 100,000 deep gets 400 INVALID_INPUT; one at the bound is taken', T, async () => {
    for (const levels of [4000, 100_000, LIMITS.jsonNestingMaxLevels + 1]) {
      const r = await post('/v1/jobs', `{"queue":"deep.http","payload":${deepText(levels)}}`);
      assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
      assert.equal(r.body.error.code, 'INVALID_INPUT');
      assert.match(r.body.error.message, new RegExp(`payload nests arrays and objects more than ${LIMITS.jsonNestingMaxLevels} levels deep`));
      assert.deepEqual(r.body.error.details, { maxLevels: LIMITS.jsonNestingMaxLevels });
    }
    const ok = await post('/v1/jobs', `{"queue":"deep.http","payload":${deepText(LIMITS.jsonNestingMaxLevels)}}`);
    assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 300));
  });

  it('POST /v1/jobs/batch: one deep payload refuses the whole batch', T, async () => {
    const before = (await store.listJobs({ queue: 'deep.batch', limit: 10 })).jobs.length;
    const r = await post('/v1/jobs/batch', `{"jobs":[{"queue":"deep.batch","payload":1},{"queue":"deep.batch","payload":${deepText(4000)}}]}`);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'INVALID_INPUT');
    assert.match(r.body.error.message, /jobs\[1\]\.payload nests/);
    assert.equal((await store.listJobs({ queue: 'deep.batch', limit: 10 })).jobs.length, before, 'nothing submitted');
  });

  it('worker socket: a result 4,000 deep is acked INVALID_INPUT (not INTERNAL), deep progress too; the attempt stays live', T, async () => {
    const ws = new RawClient(server.url.replace(/^http/, 'ws') + WORKER_PATH, WORKER);
    clients.push(ws);
    await ws.hello({ name: 'deep', queues: { 'deep.ws': 1 } });
    const { job } = await coordinator.submit({ queue: 'deep.ws', payload: 1 });
    const [a] = (await ws.next('assign')).assignments;
    assert.equal(a!.jobId, job.id);
    const head = `"attemptId":${JSON.stringify(a!.attemptId)},"lease":${JSON.stringify(a!.lease)}`;

    ws.sendText(`{"type":"complete",${head},"result":${deepText(4000)}}`);
    const refused = await ws.next('ack');
    assert.deepEqual([refused.attemptId, refused.ok, refused.error?.code], [a!.attemptId, false, 'INVALID_INPUT']);
    assert.match(refused.error!.message, /result nests arrays and objects more than 128 levels deep/);

    ws.sendText(`{"type":"progress",${head},"progress":${deepText(100_000)}}`);
    const err = await ws.next('error');
    assert.deepEqual([err.code, err.frame, err.attemptId], ['INVALID_INPUT', 'progress', a!.attemptId]);

    assert.equal((await coordinator.getJob(job.id)).state, 'running', 'nothing was applied');
    ws.sendText(`{"type":"complete",${head},"result":${deepText(LIMITS.jsonNestingMaxLevels)}}`);
    assert.equal((await ws.next('ack')).ok, true, 'a result at the bound lands');
    assert.equal((await coordinator.getJob(job.id)).state, 'succeeded');
  });
});
