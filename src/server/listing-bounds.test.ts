// The listings stay bounded with fat workers (the hardening finding: many
// hellos with the most keys made GET /v1/workers answer 500 for good): over a
// real HTTP server on 127.0.0.1 and a real SQLite file, 40 workers each with
// keys near workerKeysMaxBytes. Every GET /v1/workers page fits
// listWorkersPageMaxBytes, the pages together list every worker once, and
// GET /v1/queues carries no worker's keys.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Coordinator } from '../coordinator/coordinator.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { LIMITS } from '../types/limits.ts';
import { Auth } from './auth.ts';
import { buildHttpApp } from './http.ts';

const WORKERS = 40;

describe('listings bounded in bytes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-listing-'));
  let store: SqliteStore;
  let coordinator: Coordinator;
  let app: FastifyInstance;
  let base = '';
  const get = async (path: string): Promise<{ text: string; body: unknown }> => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: 'Bearer t' } });
    assert.equal(res.status, 200, path);
    const text = await res.text();
    return { text, body: JSON.parse(text) as unknown };
  };

  before(async () => {
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom(), synchronous: 'normal' });
    coordinator = new Coordinator({ store, clock: systemClock });
    app = await buildHttpApp({ coordinator, auth: Auth.single('t'), logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    // As many keys of keyMaxChars as fit workerKeysMaxBytes: about 256 KiB of keys each.
    const keys = Array.from({ length: Math.floor(LIMITS.workerKeysMaxBytes / (LIMITS.keyMaxChars + 3)) }, (_, i) => String(i).padStart(LIMITS.keyMaxChars, 'k'));
    for (let i = 0; i < WORKERS; i++) {
      const id = `w${String(i).padStart(2, '0')}`;
      await store.upsertWorker({ spec: { id, name: id, labels: {}, cores: 1, memoryMb: 0, gpuIds: [], queues: { work: 1 }, keys } });
    }
  });

  after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pages GET /v1/workers within listWorkersPageMaxBytes, every worker once, by following the cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages <= WORKERS; pages++) {
      const { text, body } = await get(`/v1/workers?limit=${LIMITS.listMaxWorkers}${cursor ? `&cursor=${cursor}` : ''}`);
      const page = body as { workers: { id: string }[]; nextCursor: string | null; counts: { total: number } };
      assert.ok(Buffer.byteLength(text) <= LIMITS.listWorkersPageMaxBytes + 1024, `a page of ${Buffer.byteLength(text)} bytes`);
      assert.equal(page.counts.total, WORKERS);
      seen.push(...page.workers.map((w) => w.id));
      cursor = page.nextCursor;
      if (cursor === null) break;
    }
    assert.deepEqual(seen, Array.from({ length: WORKERS }, (_, i) => `w${String(i).padStart(2, '0')}`));
  });

  it('answers GET /v1/queues with slots only: no worker keys in it', async () => {
    const { text, body } = await get('/v1/queues');
    assert.ok(Buffer.byteLength(text) < 64 * 1024, `${Buffer.byteLength(text)} bytes`);
    const work = (body as { queues: { queue: string; slots: { workers: number } }[] }).queues.find((q) => q.queue === 'work');
    assert.equal(work?.slots.workers, WORKERS);
  });
});
