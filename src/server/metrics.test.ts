// GET /metrics over a real socket: a real SQLite store, a real coordinator on
// the system clock and an in-process worker. The scrape is parsed with a real
// exposition-format parser and checked against what the API says.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Coordinator } from '../coordinator/coordinator.ts';
import { LocalWorker, PermanentError } from '../coordinator/local-worker.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import type { Job, Worker } from '../types/model.ts';
import { Auth } from './auth.ts';
import { buildHttpApp } from './http.ts';

interface Sample {
  value?: string;
  labels?: Record<string, string>;
}
interface Family {
  name: string;
  type: string;
  metrics: Sample[];
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const CLIENT = 'scrape-secret';
const WORKER = 'worker-secret';

describe('GET /metrics', () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let app: FastifyInstance;
  let base: string;
  let worker: LocalWorker;

  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const headers: Record<string, string> = { authorization: `Bearer ${CLIENT}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    assert.ok(res.status < 300, `${method} ${path}: ${res.status}`);
    return res.json();
  };
  const scrape = async (): Promise<Map<string, Family>> => {
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${CLIENT}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    // The parser folds a labelled histogram into one sample; read as untyped, its _count, _sum and _bucket keep their labels.
    const retyped = text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped');
    const families = [...parsePrometheus(text), ...parsePrometheus(retyped).filter((f) => /_(count|sum|bucket)$/.test(f.name))];
    // Each label set's _bucket, _sum and _count lines come in turn, so one name may start several families.
    const byName = new Map<string, Family>();
    for (const f of families) {
      const seen = byName.get(f.name);
      if (seen) seen.metrics.push(...f.metrics);
      else byName.set(f.name, f);
    }
    return byName;
  };
  const value = (f: Family | undefined, labels: Record<string, string>): number => {
    const s = f?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return s ? Number(s.value) : 0;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-metrics-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    // m.cc keeps a backlog of two filler jobs that no worker serves.
    const queues = { 'm.cc': { backlog: { target: 2, job: { payload: 'cc' } } } };
    coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: 50, queues });
    coordinator.start();
    await coordinator.topUpBacklogs();
    const auth = new Auth([
      { token: CLIENT, scopes: ['client'] },
      { token: WORKER, scopes: ['worker'] },
    ]);
    app = await buildHttpApp({ coordinator, auth, logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    worker = new LocalWorker({
      coordinator,
      clock: systemClock,
      spec: { name: 'w-metrics', labels: {}, cores: 8, memoryMb: 8192, gpuIds: [], keys: [] },
      handlers: {
        'm.ok': { slots: 3, handler: (payload) => ({ echoed: payload }) },
        'm.bad': {
          slots: 1,
          handler: () => {
            throw new PermanentError('always fails');
          },
        },
      },
      heartbeatIntervalMs: 200,
    });
    await worker.start();
  });

  after(async () => {
    worker.freeze();
    await app.close();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after jobs ran, counts them per queue and agrees with /v1/queues and /v1/workers', async () => {
    const ok = await Promise.all([1, 2, 3].map((n) => api('POST', '/v1/jobs', { queue: 'm.ok', payload: { n } }) as Promise<Job>));
    const bad = (await api('POST', '/v1/jobs', { queue: 'm.bad', maxAttempts: 1 })) as Job;
    const idle = (await api('POST', '/v1/jobs', { queue: 'm.idle' })) as Job;
    for (const j of [...ok, bad]) assert.ok(['succeeded', 'failed'].includes((await coordinator.waitForJob(j.id, 30_000)).state));
    await api('POST', `/v1/jobs/${idle.id}/cancel`, {});

    const m = await scrape();
    const reads = (f: Map<string, Family>, operation: string): number => value(f.get('gaffer_store_operation_seconds_count'), { operation });
    const again = await scrape();
    assert.equal(reads(again, 'listWorkers') - reads(m, 'listWorkers'), 1, 'one listWorkers per scrape');
    assert.equal(reads(again, 'queueCounts') - reads(m, 'queueCounts'), 1, 'one queueCounts per scrape');
    const total = (event: string, queue: string): number => value(m.get(`gaffer_jobs_${event}_total`), { queue });
    assert.equal(total('submitted', 'm.ok'), 3);
    assert.equal(total('succeeded', 'm.ok'), 3);
    assert.equal(total('submitted', 'm.bad'), 1);
    assert.equal(total('failed', 'm.bad'), 1);
    assert.equal(total('cancelled', 'm.idle'), 1);
    assert.equal(total('retried', 'm.ok'), 0);
    assert.equal(m.get('gaffer_jobs_lost_total')?.type, 'COUNTER');

    assert.equal(m.get('gaffer_job_wait_seconds')?.type, 'HISTOGRAM');
    assert.equal(m.get('gaffer_attempt_run_seconds')?.type, 'HISTOGRAM');
    const wait = m.get('gaffer_job_wait_seconds_count');
    const run = m.get('gaffer_attempt_run_seconds_count');
    assert.equal(value(wait, { queue: 'm.ok' }), 3, 'one wait per leased job');
    assert.equal(value(run, { queue: 'm.ok' }), 3);
    assert.equal(value(run, { queue: 'm.bad' }), 1);
    assert.ok(value(m.get('gaffer_store_operation_seconds_count'), { operation: 'claim' }) > 0, 'claims are timed');
    assert.ok(value(m.get('gaffer_store_operation_seconds_count'), { operation: 'complete' }) >= 3);

    const queues = (await api('GET', '/v1/queues')) as { queues: { queue: string; counts: Record<string, number>; slots: { total: number; used: number } }[] };
    const jobs = m.get('gaffer_jobs');
    const slots = m.get('gaffer_slots');
    for (const q of queues.queues) {
      for (const [state, n] of Object.entries(q.counts)) assert.equal(value(jobs, { queue: q.queue, state }), n, `${q.queue} ${state}`);
      assert.equal(value(slots, { queue: q.queue, use: 'used' }), q.slots.used, `${q.queue} used slots`);
      assert.equal(value(slots, { queue: q.queue, use: 'free' }), q.slots.total - q.slots.used, `${q.queue} free slots`);
    }
    assert.equal(value(jobs, { queue: 'm.ok', state: 'succeeded' }), 3);
    const fillers = m.get('gaffer_filler_jobs_queued');
    assert.equal(value(fillers, { queue: 'm.cc' }), 2, 'the backlog, at its target');
    assert.equal(value(jobs, { queue: 'm.cc', state: 'queued' }), 2, 'filler jobs are queued jobs too');
    assert.equal(fillers?.metrics.length, 1, 'no series for a queue without filler jobs');
    assert.equal((queues.queues.find((q) => q.queue === 'm.cc') as unknown as { fillerQueued: number }).fillerQueued, 2);
    assert.equal(value(slots, { queue: 'm.ok', use: 'free' }), 3);

    const { workers } = (await api('GET', '/v1/workers')) as { workers: Worker[] };
    const states = new Set(workers.map((w) => w.state));
    for (const state of states) assert.equal(value(m.get('gaffer_workers'), { state }), workers.filter((w) => w.state === state).length);
    assert.equal(value(m.get('gaffer_workers_quarantined'), {}), 0);
    assert.equal(value(m.get('gaffer_worker_results'), { verdict: 'invalid' }), 0);
    assert.equal(value(m.get('gaffer_worker_connections'), {}), 1);

    assert.ok(m.has('nodejs_eventloop_lag_seconds'), 'event-loop lag');
    assert.ok(m.has('process_cpu_user_seconds_total'), 'process metrics');
    for (const f of m.values()) {
      for (const s of f.metrics) {
        for (const k of Object.keys(s.labels ?? {})) assert.ok(!/job_?id|worker_?id/i.test(k), `${f.name} has no id label`);
        for (const v of Object.values(s.labels ?? {})) assert.ok(![...ok, bad, idle].some((j) => j.id === v), `${f.name} has no job id`);
      }
    }
  });

  it('needs a token with the client scope: 401 without one or with a wrong one, 403 with a worker token', async () => {
    const status = async (headers: Record<string, string>): Promise<{ status: number; code: string | undefined }> => {
      const res = await fetch(`${base}/metrics`, { headers });
      const text = await res.text();
      return { status: res.status, code: res.status >= 400 ? (JSON.parse(text) as { error: { code: string } }).error.code : undefined };
    };
    assert.deepEqual(await status({}), { status: 401, code: 'UNAUTHORIZED' });
    assert.deepEqual(await status({ authorization: 'Bearer wrong' }), { status: 401, code: 'UNAUTHORIZED' });
    assert.deepEqual(await status({ authorization: `Bearer ${WORKER}` }), { status: 403, code: 'FORBIDDEN' });
    assert.deepEqual(await status({ authorization: `Bearer ${CLIENT}` }), { status: 200, code: undefined });
  });
});

describe('GET /metrics: retries and lost leases', () => {
  it('counts a retried job and a lost lease under their queues', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gaffer-metrics-lost-'));
    const store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    const coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: 50 });
    coordinator.start();
    const app = await buildHttpApp({ coordinator, auth: new Auth([]), logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    let calls = 0;
    let started!: () => void;
    const hanging = new Promise<void>((resolve) => (started = resolve));
    const worker = new LocalWorker({
      coordinator,
      clock: systemClock,
      spec: { name: 'w-lost', labels: {}, cores: 8, memoryMb: 8192, gpuIds: [], keys: [] },
      handlers: {
        'm.flaky': { slots: 1, handler: () => (++calls === 1 ? Promise.reject(new PermanentError('once')) : { ok: true }) },
        'm.hang': { slots: 1, handler: () => (started(), new Promise(() => undefined)) },
      },
      heartbeatIntervalMs: 50,
    });
    await worker.start();
    try {
      // Retried by hand, which needs no timer (a retry after backoff is in metrics-hooks.test.ts).
      const flaky = await coordinator.submit({ queue: 'm.flaky', maxAttempts: 1 });
      assert.equal((await coordinator.waitForJob(flaky.job.id, 30_000)).state, 'failed');
      await coordinator.retry(flaky.job.id);
      assert.equal((await coordinator.waitForJob(flaky.job.id, 30_000)).state, 'succeeded');
      const hang = await coordinator.submit({ queue: 'm.hang', maxAttempts: 1, heartbeatTimeoutMs: 200 });
      await hanging;
      worker.freeze();
      // A lost lease is the worker's fault: the job goes back to its queue, its one attempt unspent.
      const back = await waitFor(async () => {
        const j = await coordinator.getJob(hang.job.id);
        return j.lost === 1 && j.state === 'queued' ? j : null;
      });
      assert.deepEqual([back.failures, back.lost], [0, 1]);
      const text = await (await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/metrics`)).text();
      const families = new Map(parsePrometheus(text).map((f) => [f.name, f]));
      const total = (event: string, queue: string): number =>
        Number(families.get(`gaffer_jobs_${event}_total`)?.metrics.find((m) => m.labels?.queue === queue)?.value ?? 0);
      assert.deepEqual([total('retried', 'm.flaky'), total('succeeded', 'm.flaky'), total('failed', 'm.flaky')], [1, 1, 1]);
      assert.deepEqual([total('lost', 'm.hang'), total('failed', 'm.hang')], [1, 0]);
    } finally {
      await app.close();
      await coordinator.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('GET /metrics without tokens', () => {
  it('is open, like the API, and answers while the store does not', async () => {
    let closed = false;
    const dir = mkdtempSync(join(tmpdir(), 'gaffer-metrics-open-'));
    const store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    const coordinator = new Coordinator({ store, clock: systemClock });
    const app = await buildHttpApp({ coordinator, auth: new Auth([]), logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/metrics`;
      const res = await fetch(url);
      assert.equal(res.status, 200);
      const up = parsePrometheus(await res.text());
      assert.ok(up.some((f) => f.name === 'gaffer_jobs'));
      assert.equal(up.find((f) => f.name === 'gaffer_store_up')?.metrics[0]?.value, '1');

      // A store that stops answering: the scrape still answers, says so, and leaves the store's gauges empty.
      await store.close();
      closed = true;
      const down = await fetch(url);
      assert.equal(down.status, 200);
      const families = parsePrometheus(await down.text());
      assert.equal(families.find((f) => f.name === 'gaffer_store_up')?.metrics[0]?.value, '0');
      for (const name of ['gaffer_jobs', 'gaffer_slots', 'gaffer_workers', 'gaffer_worker_results']) {
        assert.deepEqual(families.find((f) => f.name === name)?.metrics ?? [], [], `${name} is left empty`);
      }
      assert.ok(families.some((f) => f.name === 'process_cpu_user_seconds_total'));
    } finally {
      await app.close();
      if (!closed) await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Polls `probe` every 20 ms until it gives a value (bounded: 30 s). */
async function waitFor<T>(probe: () => Promise<T | null>): Promise<T> {
  for (let i = 0; i < 1500; i++) {
    const v = await probe();
    if (v !== null) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('waited 30 s in vain');
}
