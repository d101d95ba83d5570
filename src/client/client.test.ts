// The client SDK against a real coordinator on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Coordinator } from '../coordinator/coordinator.ts';
import { LocalWorker, PermanentError } from '../coordinator/local-worker.ts';
import { Auth } from '../server/auth.ts';
import { startServer, type RunningServer } from '../server/index.ts';
import { openSqliteStore } from '../store/sqlite/store.ts';
import type { Store } from '../store/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import type { Json } from '../types/model.ts';
import { GafferClient, GafferClientError, type GafferEvent } from './client.ts';

describe('client SDK', () => {
  let dir: string;
  let store: Store;
  let coordinator: Coordinator;
  let server: RunningServer;
  let worker: LocalWorker;
  let client: GafferClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-client-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: 50 });
    coordinator.start();
    server = await startServer({ coordinator, auth: Auth.single('secret'), host: '127.0.0.1', port: 0 });
    worker = new LocalWorker({
      coordinator,
      clock: systemClock,
      spec: { name: 'math', labels: {}, cores: 4, memoryMb: 1024, gpuIds: [], keys: [] },
      handlers: {
        square: { slots: 4, handler: (p) => ({ n: (p as { n: number }).n, square: (p as { n: number }).n ** 2 }) },
        broken: {
          slots: 1,
          handler: () => {
            throw new PermanentError('this input can never be proved');
          },
        },
      },
    });
    await worker.start();
    client = new GafferClient({ url: server.url, token: 'secret' });
  });

  after(async () => {
    await worker.stop();
    await server.close();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('request() resolves to the result, like a call', async () => {
    const results = await Promise.all([1, 2, 3].map((n) => client.request<{ n: number; square: number }>('square', { n })));
    assert.deepEqual(results, [
      { n: 1, square: 1 },
      { n: 2, square: 4 },
      { n: 3, square: 9 },
    ]);
  });

  it('request() rejects with the job’s error when it fails', async () => {
    await assert.rejects(client.request('broken', null), (e) => {
      assert.ok(e instanceof GafferClientError);
      assert.equal(e.code, 'HANDLER_ERROR');
      assert.match(e.message, /can never be proved/);
      assert.equal(e.job?.state, 'failed');
      return true;
    });
  });

  it('submit() is idempotent with a key; submitMany() submits a batch', async () => {
    const first = await client.submit({ queue: 'nobody', payload: 1, idempotencyKey: 'k-1' });
    const again = await client.submit({ queue: 'nobody', payload: 2, idempotencyKey: 'k-1' });
    assert.deepEqual([first.created, again.created, again.job.id], [true, false, first.job.id]);
    const many = await client.submitMany([{ queue: 'nobody' }, { queue: 'nobody', priority: 3 }]);
    assert.equal(many.length, 2);
    assert.ok(many.every((r) => r.created));
    const page = await client.list({ queue: 'nobody', limit: 10 });
    assert.equal(page.jobs.length, 3);
    const cancelled = await client.cancel(first.job.id, 'not needed');
    assert.equal(cancelled.state, 'cancelled');
    assert.equal((await client.retry(first.job.id)).state, 'queued');
  });

  it('surfaces the coordinator’s typed errors', async () => {
    await assert.rejects(client.get('01NOSUCHJOB00000000000000'), { name: 'GafferClientError', code: 'JOB_NOT_FOUND', status: 404 });
    await assert.rejects(client.submit({ queue: '' }), { code: 'INVALID_INPUT', status: 400 });
    const anonymous = new GafferClient({ url: server.url });
    await assert.rejects(anonymous.list(), { code: 'UNAUTHORIZED', status: 401 });
  });

  it('watch() yields job events as they happen, in order (type: job keeps only those)', async () => {
    const abort = new AbortController();
    const seen: GafferEvent[] = [];
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const events = client.watch({ type: 'job', signal: abort.signal, onOpen: opened });
    const first = events.next(); // opens the stream
    await open; // subscribed: the submit's events cannot be missed
    const { job } = await client.submit({ queue: 'square', payload: { n: 7 } as Json });
    const states: string[] = [];
    try {
      for (let next = await first; !next.done; next = await events.next()) {
        seen.push(next.value);
        const data = next.value.data as { jobId?: string; state?: string };
        if (data.jobId === job.id && data.state) states.push(data.state);
        if (data.jobId === job.id && data.state === 'succeeded') break;
      }
    } finally {
      abort.abort();
      await events.return(undefined).catch(() => undefined);
    }
    assert.deepEqual(states.filter((s, i) => s !== states[i - 1]), ['queued', 'running', 'succeeded']);
    assert.deepEqual([...new Set(seen.map((e) => e.type))], ['job']);
  });
});
