// One rule for text on every store: free text kept as text (a reason, a
// label, a key, a name) holding a NUL or an unpaired UTF-16 surrogate is
// refused with 400 INVALID_INPUT before the store sees it, on SQLite as on
// PostgreSQL; a payload is JSON and keeps any string exactly, on both.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Coordinator } from '../coordinator/coordinator.ts';
import { openTestStore } from '../store/postgres/testing.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { Auth } from './auth.ts';
import { buildHttpApp } from './http.ts';

const ADMIN = 'admin-secret-token-0001';
const BAD = { nul: 'stop\u0000here', lone: 'half \ud800 a pair', loneLow: 'x\udc00' };

const backends: { name: string; open: () => Promise<{ store: Store; cleanup: () => void }> }[] = [
  {
    name: 'sqlite',
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gaffer-text-'));
      const store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
      return { store, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    open: async () => ({ store: await openTestStore({ clock: systemClock, random: systemRandom() }), cleanup: () => undefined }),
  },
];

for (const backend of backends) {
  describe(`text input, ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => void;
    let coordinator: Coordinator;
    let app: FastifyInstance;
    let base: string;

    async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
      const headers: Record<string, string> = { authorization: `Bearer ${ADMIN}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: await res.json() };
    }

    before(async () => {
      ({ store, cleanup } = await backend.open());
      coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: 50 });
      coordinator.start();
      app = await buildHttpApp({ coordinator, auth: new Auth([{ token: ADMIN, scopes: ['admin'] }]), logger: false });
      await app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    });

    after(async () => {
      await app.close();
      await coordinator.stop();
      await store.close();
      cleanup();
    });

    it('refuses a quarantine, pause or cancel reason with a NUL or a lone surrogate, and changes nothing', async () => {
      const w = await store.upsertWorker({ spec: { name: 'w', labels: {}, cores: 1, memoryMb: 1, gpuIds: [], queues: { q: 1 }, keys: [] } });
      const { job } = await coordinator.submit({ queue: 'idle.q' });
      for (const reason of Object.values(BAD)) {
        for (const path of [`/v1/workers/${w.id}/quarantine`, '/v1/queues/idle.q/pause', `/v1/jobs/${job.id}/cancel`]) {
          const answer = await call('POST', path, { reason });
          assert.equal(answer.status, 400, `${path} ${JSON.stringify(reason)}`);
          assert.equal(answer.body.error.code, 'INVALID_INPUT');
          assert.match(answer.body.error.message, /reason holds a NUL character or an unpaired UTF-16 surrogate/);
        }
      }
      assert.equal((await store.getWorker({ id: w.id }))?.quarantined, false);
      assert.equal((await coordinator.listQueueStates()).some((q) => q.paused), false);
      assert.equal((await coordinator.getJob(job.id)).state, 'queued');
      // Paired surrogates (an emoji) are text like any other, and kept as sent.
      const ok = await call('POST', `/v1/workers/${w.id}/quarantine`, { reason: 'flaky \u{1F525} results' });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.quarantineReason, 'flaky \u{1F525} results');
    });

    it('refuses a label with a NUL or a lone surrogate, and keeps such strings in a payload exactly', async () => {
      for (const bad of Object.values(BAD)) {
        for (const labels of [{ team: bad }, { [bad]: 'x' }]) {
          const answer = await call('POST', '/v1/jobs', { queue: 'idle.q', labels });
          assert.equal(answer.status, 400, JSON.stringify(labels));
          assert.equal(answer.body.error.code, 'INVALID_INPUT');
        }
      }
      const payload = { ...BAD, list: [BAD.nul, BAD.lone] };
      const submitted = await call('POST', '/v1/jobs', { queue: 'idle.q', payload });
      assert.equal(submitted.status, 201);
      const read = await call('GET', `/v1/jobs/${submitted.body.id}`);
      assert.deepEqual(read.body.payload, payload, 'the payload comes back as sent');
    });
  });
}
