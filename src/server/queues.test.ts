// Queue pause and resume, the paused flag of GET /v1/queues, and GET
// /v1/history, over a real socket on a coordinator in virtual time with a
// real SQLite file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { Coordinator } from '../coordinator/coordinator.ts';
import { LocalWorker } from '../coordinator/local-worker.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { HOUR_MS, MINUTE_MS } from '../types/history.ts';
import { LIMITS } from '../types/limits.ts';
import type { Json } from '../types/model.ts';
import { Auth } from './auth.ts';
import { buildHttpApp } from './http.ts';

const CLIENT = 'client-secret';
const ADMIN = 'admin-secret';

describe('queues over HTTP', () => {
  let dir: string;
  let clock: VirtualClock;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let app: FastifyInstance;
  let base: string;

  const call = async (method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: await res.json() };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-queues-http-'));
    clock = new VirtualClock();
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock, random: seededRandom(3) });
    coordinator = new Coordinator({ store, clock, sweepIntervalMs: 10 * MINUTE_MS });
    coordinator.start();
    const auth = new Auth([{ token: CLIENT, scopes: ['client'] }, { token: ADMIN, scopes: ['client', 'admin'] }]);
    app = await buildHttpApp({ coordinator, auth, logger: pino({ level: 'silent' }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await app.close();
    await coordinator.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pauses and resumes a queue (admin), and the listing shows it', async () => {
    assert.equal((await call('POST', '/v1/queues/render/pause', CLIENT, {})).status, 403, 'admin scope');
    const paused = await call('POST', '/v1/queues/render/pause', ADMIN, { reason: 'driver upgrade' });
    assert.deepEqual(paused, { status: 200, body: { queue: 'render', paused: true, pausedAt: clock.now(), reason: 'driver upgrade' } });
    const listed = (await call('GET', '/v1/queues', CLIENT)).body.queues.find((q: { queue: string }) => q.queue === 'render');
    assert.deepEqual([listed.paused, listed.pausedAt, listed.pauseReason], [true, clock.now(), 'driver upgrade'], 'a paused queue is listed even with no jobs');
    const resumed = await call('POST', '/v1/queues/render/resume', ADMIN);
    assert.deepEqual(resumed.body, { queue: 'render', paused: false, pausedAt: null, reason: null });
    assert.equal((await call('POST', '/v1/queues/render/pause', ADMIN, { nope: 1 })).status, 400);
    assert.equal((await call('POST', '/v1/queues/bad%20name/pause', ADMIN, {})).body.error.code, 'INVALID_INPUT');
  });

  it('answers the stored history in bounded series', async () => {
    const t0 = clock.now();
    await coordinator.submit({ queue: 'render', payload: 1 });
    await coordinator.submit({ queue: 'other', payload: 2 });
    await coordinator.history.flush();
    const all = await call('GET', `/v1/history?from=${t0}&to=${t0 + HOUR_MS}`, CLIENT);
    assert.equal(all.status, 200);
    assert.deepEqual([all.body.step, all.body.from, all.body.to, all.body.buckets.length], ['minute', t0, t0 + HOUR_MS, 8]);
    assert.deepEqual(all.body.points.map((p: { queue: string; counts: { submitted: number } }) => [p.queue, p.counts.submitted]), [['other', 1], ['render', 1]]);
    const one = await call('GET', `/v1/history?queue=render&step=hour&from=${t0}&to=${t0 + HOUR_MS}`, CLIENT);
    assert.deepEqual(one.body.points.map((p: { at: number }) => p.at), [t0]);
    const tooMany = await call('GET', `/v1/history?from=0&to=${(LIMITS.historyMaxPoints + 1) * MINUTE_MS}`, CLIENT);
    assert.deepEqual([tooMany.status, tooMany.body.error.code], [400, 'INVALID_INPUT']);
    assert.equal((await call('GET', '/v1/history?step=week', CLIENT)).status, 400);
  });

  it('dispatches nothing of a paused queue, or of a queue paused on a worker, while submits are accepted; a resume dispatches again', async () => {
    const ran: Json[] = [];
    const worker = new LocalWorker({
      coordinator,
      clock,
      spec: { name: 'box', labels: {}, cores: 4, memoryMb: 4096, gpuIds: [], keys: [] },
      handlers: { paint: { slots: 2, handler: (payload) => (ran.push(payload), { ok: true }) } },
    });
    await worker.start();
    const id = worker.id!;
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) (await coordinator.settled(), await new Promise((r) => setImmediate(r)));
    };
    try {
      await call('POST', '/v1/queues/paint/pause', ADMIN, {});
      assert.equal((await call('POST', '/v1/jobs', CLIENT, { queue: 'paint', payload: 1 })).status, 201, 'a submit to a paused queue is accepted');
      await settle();
      assert.deepEqual(ran, [], 'a paused queue dispatches nothing');
      await call('POST', '/v1/queues/paint/resume', ADMIN);
      await settle();
      assert.deepEqual(ran, [1], 'resumed: dispatched at once');

      assert.equal((await call('POST', `/v1/workers/${id}/queues/paint/pause`, CLIENT)).status, 403, 'admin scope');
      const paused = await call('POST', `/v1/workers/${id}/queues/paint/pause`, ADMIN);
      assert.deepEqual([paused.status, paused.body.pausedQueues], [200, ['paint']]);
      assert.deepEqual((await call('GET', `/v1/workers/${id}`, CLIENT)).body.pausedQueues, ['paint']);
      assert.equal((await call('POST', '/v1/jobs', CLIENT, { queue: 'paint', payload: 2 })).status, 201);
      await settle();
      assert.deepEqual(ran, [1], 'a queue paused on the worker dispatches nothing to it');
      const resumed = await call('POST', `/v1/workers/${id}/queues/paint/resume`, ADMIN, {});
      assert.deepEqual(resumed.body.pausedQueues, []);
      await settle();
      assert.deepEqual(ran, [1, 2], 'resumed on the worker: dispatched again');
      assert.equal((await call('POST', '/v1/workers/nobody/queues/paint/pause', ADMIN)).body.error.code, 'WORKER_NOT_FOUND');
      assert.equal((await call('POST', `/v1/workers/${id}/queues/bad%20name/pause`, ADMIN)).body.error.code, 'INVALID_INPUT');
    } finally {
      worker.freeze();
    }
  });
});
