// The HTTP API over real sockets: a real SQLite file, a real coordinator on
// the system clock, in-process workers, and fetch. Nothing sleeps to
// synchronise: tests wait on events, or poll a condition in a bounded loop.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Coordinator } from '../coordinator/coordinator.ts';
import { LocalWorker, type Handler } from '../coordinator/local-worker.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import { LIMITS } from '../types/limits.ts';
import type { Job, Json } from '../types/model.ts';
import { Auth } from './auth.ts';
import { buildHttpApp } from './http.ts';
import { ROUTES } from './routes.ts';
import { openApiChecker } from './testing.ts';

const ADMIN = 'admin-secret';
const CLIENT = 'client-secret';
const WORKER = 'worker-secret';

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** Waits for a condition, checking every few milliseconds, at most `tries` times. */
async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, tries = 2000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`timed out waiting until ${what}`);
}

/** A handler whose calls wait until the test releases them. */
function gatedHandler(): { handler: Handler; calls: { payload: Json; release: (v: Json) => void }[] } {
  const calls: { payload: Json; release: (v: Json) => void }[] = [];
  const handler: Handler = (payload) => new Promise<Json>((release) => calls.push({ payload, release }));
  return { handler, calls };
}

/** Reads server-sent events from a fetch response, frame by frame. */
class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = '';

  constructor(res: Response) {
    assert.ok(res.body);
    this.reader = res.body.getReader();
  }

  /** The next frame: `{ comment }` or `{ event, data }`; null when the stream ended. */
  async next(): Promise<{ comment?: string; event?: string; data?: any } | null> {
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end >= 0) {
        const frame = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        if (frame.startsWith(':')) return { comment: frame.slice(1).trim() };
        const out: { event?: string; data?: any } = {};
        for (const line of frame.split('\n')) {
          if (line.startsWith('event: ')) out.event = line.slice(7);
          if (line.startsWith('data: ')) out.data = JSON.parse(line.slice(6));
        }
        return out;
      }
      const { value, done } = await this.reader.read();
      if (done) return null;
      this.buffer += this.decoder.decode(value, { stream: true });
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}

describe('http api', () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let app: FastifyInstance;
  let base: string;
  const logs: { level: number; msg: string; [k: string]: unknown }[] = [];
  const workers: LocalWorker[] = [];
  const rpc = gatedHandler();

  async function call(method: string, path: string, opts: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? CLIENT : opts.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  async function totalJobs(): Promise<number> {
    const counts = await store.queueCounts();
    return counts.reduce((n, q) => n + Object.values(q.counts).reduce((a, b) => a + b, 0), 0);
  }

  async function worker(name: string, handlers: Record<string, { slots: number; handler: Handler }>): Promise<LocalWorker> {
    const w = new LocalWorker({
      coordinator,
      clock: systemClock,
      spec: { name, labels: {}, cores: 8, memoryMb: 8192, gpuIds: [], keys: [] },
      handlers,
      heartbeatIntervalMs: 200,
    });
    await w.start();
    workers.push(w);
    return w;
  }

  /** Checks an error answer: status, code, the one error shape, no stack; then that the server still answers. */
  async function expectError(answer: Answer, status: number, code: string): Promise<void> {
    assert.equal(answer.status, status, `status of ${answer.text}`);
    assert.equal(answer.body?.error?.code, code, answer.text);
    assert.equal(typeof answer.body.error.message, 'string');
    assert.deepEqual(Object.keys(answer.body), ['error']);
    assert.ok(!/\bat .+:\d+:\d+/.test(answer.text), 'no stack trace');
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal((await call('GET', '/healthz', { token: null })).status, 200, 'the server still answers');
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-http-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    coordinator = new Coordinator({ store, clock: systemClock, sweepIntervalMs: 50 });
    coordinator.start();
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line));
        done();
      },
    });
    const auth = new Auth([
      { token: ADMIN, scopes: ['admin'] },
      { token: CLIENT, scopes: ['client'] },
      { token: WORKER, scopes: ['worker'] },
    ]);
    app = await buildHttpApp({ coordinator, auth, logger: pino({ level: 'warn' }, sink), sse: { heartbeatIntervalMs: 50, bufferMaxEvents: 16 } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await worker('w-main', {
      echo: { slots: 4, handler: (payload) => ({ echoed: payload }) },
      rpc: { slots: 2, handler: rpc.handler },
    });
  });

  after(async () => {
    for (const c of rpc.calls) c.release(null);
    for (const w of workers) w.freeze();
    await app.close();
    await coordinator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('jobs', () => {
    it('submits a job (201), and the same idempotencyKey again returns the same job (200) without writing', async () => {
      const first = await call('POST', '/v1/jobs', { body: { queue: 'idle.q', payload: { n: 1 }, idempotencyKey: 'k-1', labels: { team: 'a' } } });
      assert.equal(first.status, 201);
      assert.equal(first.body.queue, 'idle.q');
      assert.equal(first.body.state, 'queued');
      assert.deepEqual(first.body.payload, { n: 1 });
      assert.equal(first.headers.get('location'), `/v1/jobs/${first.body.id}`);
      const total = await totalJobs();
      const again = await call('POST', '/v1/jobs', { body: { queue: 'idle.q', payload: { n: 2 }, idempotencyKey: 'k-1' } });
      assert.equal(again.status, 200);
      assert.equal(again.body.id, first.body.id);
      assert.deepEqual(again.body.payload, { n: 1 }, 'the existing job, not the new body');
      assert.equal(await totalJobs(), total);
    });

    it('submits a batch in one transaction: 201, then 200 when every key was seen, and all or none on a bad job', async () => {
      const jobs = [
        { queue: 'idle.q', idempotencyKey: 'b-1' },
        { queue: 'idle.q', idempotencyKey: 'b-2', priority: 5 },
      ];
      const first = await call('POST', '/v1/jobs/batch', { body: { jobs } });
      assert.equal(first.status, 201);
      assert.deepEqual(first.body.results.map((r: { created: boolean }) => r.created), [true, true]);
      assert.equal(first.body.results[1].job.priority, 5);
      const total = await totalJobs();
      const again = await call('POST', '/v1/jobs/batch', { body: { jobs } });
      assert.equal(again.status, 200);
      assert.deepEqual(again.body.results.map((r: { created: boolean; job: Job }) => [r.created, r.job.id]), [
        [false, first.body.results[0].job.id],
        [false, first.body.results[1].job.id],
      ]);
      const bad = await call('POST', '/v1/jobs/batch', { body: { jobs: [{ queue: 'idle.q' }, { queue: 'idle.q', priority: 'high' }] } });
      await expectError(bad, 400, 'INVALID_INPUT');
      assert.match(bad.body.error.message, /jobs\[1\]\.priority/);
      await expectError(await call('POST', '/v1/jobs/batch', { body: { jobs: [], extra: 1 } }), 400, 'UNKNOWN_FIELD');
      await expectError(await call('POST', '/v1/jobs/batch', { body: { jobs: {} } }), 400, 'INVALID_INPUT');
      await expectError(await call('POST', '/v1/jobs/batch', { body: { jobs: [] } }), 400, 'INVALID_INPUT');
      assert.equal(await totalJobs(), total, 'nothing written');
    });

    it('gets a job with its state, result and attempts', async () => {
      const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'echo', payload: 'hi' } });
      const done = await call('GET', `/v1/jobs/${job.id}/result?waitMs=10000`);
      assert.equal(done.body.state, 'succeeded');
      const got = await call('GET', `/v1/jobs/${job.id}`);
      assert.equal(got.status, 200);
      assert.equal(got.body.id, job.id);
      assert.equal(got.body.state, 'succeeded');
      assert.deepEqual(got.body.result, { echoed: 'hi' });
      assert.equal(got.body.error, null);
      assert.equal(got.body.attempts, 1);
      assert.deepEqual(got.body.attemptList.map((a: { state: string; jobId: string }) => [a.state, a.jobId]), [['completed', job.id]]);
      assert.equal(got.body.attemptList[0].lease, undefined, 'the lease (fencing token) is never shown');
    });

    it('lists jobs newest first, filtered by queue, state and label, page by page with a cursor', async () => {
      const made: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await call('POST', '/v1/jobs', { body: { queue: 'list.a', payload: { i }, labels: { team: i < 3 ? 'x' : 'y' } } });
        made.push(r.body.id);
      }
      const other = await call('POST', '/v1/jobs', { body: { queue: 'list.b' } });
      await call('POST', `/v1/jobs/${other.body.id}/cancel`, { body: {} });

      const seen: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10; page++) {
        const q: string = `/v1/jobs?queue=list.a&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const r = await call('GET', q);
        assert.equal(r.status, 200);
        assert.ok(r.body.jobs.length <= 2);
        for (const j of r.body.jobs) {
          assert.equal(j.payload, undefined, 'a list shows no payload');
          assert.equal(j.result, undefined, 'a list shows no result');
          seen.push(j.id);
        }
        cursor = r.body.nextCursor;
        if (cursor === null) break;
      }
      assert.deepEqual(seen, [...made].reverse());

      const x = await call('GET', '/v1/jobs?queue=list.a&label=team=x');
      assert.deepEqual(x.body.jobs.map((j: Job) => j.id), made.slice(0, 3).reverse());
      assert.equal(x.body.nextCursor, null);
      const cancelled = await call('GET', '/v1/jobs?queue=list.b&state=cancelled');
      assert.deepEqual(cancelled.body.jobs.map((j: Job) => j.id), [other.body.id]);
      assert.deepEqual((await call('GET', '/v1/jobs?queue=list.b&state=queued')).body.jobs, []);
    });

    it('refuses a bad list query with 400', async () => {
      await expectError(await call('GET', '/v1/jobs?limit=0'), 400, 'INVALID_INPUT');
      await expectError(await call('GET', `/v1/jobs?limit=${LIMITS.listMaxJobs + 1}`), 400, 'INVALID_INPUT');
      await expectError(await call('GET', '/v1/jobs?limit=ten'), 400, 'INVALID_INPUT');
      await expectError(await call('GET', '/v1/jobs?state=sleeping'), 400, 'INVALID_INPUT');
      await expectError(await call('GET', '/v1/jobs?label=nokey'), 400, 'INVALID_INPUT');
      await expectError(await call('GET', '/v1/jobs?queue=a&queue=b'), 400, 'INVALID_INPUT');
      await expectError(await call('GET', '/v1/jobs?cursor=not%20a%20cursor'), 400, 'INVALID_INPUT');
      const unknown = await call('GET', '/v1/jobs?stat=queued');
      await expectError(unknown, 400, 'UNKNOWN_FIELD');
      assert.match(unknown.body.error.message, /stat/);
    });

    it('cancels with a reason, answers a repeat cancel, retries, and refuses a retry of a queued job', async () => {
      const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'idle.q' } });
      const cancelled = await call('POST', `/v1/jobs/${job.id}/cancel`, { body: { reason: 'no longer needed' } });
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.body.state, 'cancelled');
      assert.deepEqual(cancelled.body.error, { code: 'CANCELLED', message: 'no longer needed' });
      const again = await call('POST', `/v1/jobs/${job.id}/cancel`);
      assert.equal(again.status, 200, 'no body at all is fine');
      assert.equal(again.body.state, 'cancelled');
      await expectError(await call('POST', `/v1/jobs/${job.id}/cancel`, { body: { reason: 5 } }), 400, 'INVALID_INPUT');
      await expectError(await call('POST', `/v1/jobs/${job.id}/cancel`, { body: { why: 'x' } }), 400, 'UNKNOWN_FIELD');

      const retried = await call('POST', `/v1/jobs/${job.id}/retry`, { raw: '', headers: { 'content-type': 'application/json' } });
      assert.equal(retried.status, 200, 'an empty JSON body counts as none');
      assert.equal(retried.body.state, 'queued');
      await expectError(await call('POST', `/v1/jobs/${job.id}/retry`, { body: {} }), 409, 'INVALID_STATE');
      await expectError(await call('POST', `/v1/jobs/${job.id}/retry`, { body: { force: true } }), 400, 'UNKNOWN_FIELD');
      assert.equal((await call('GET', `/v1/jobs/${job.id}`)).body.state, 'queued', 'the refused requests changed nothing');
    });
  });

  describe('long poll', () => {
    it('answers as soon as an in-process worker completes the job', async () => {
      const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'rpc', payload: { x: 21 } } });
      await waitUntil(() => rpc.calls.length === 1, 'the worker runs the job');
      const polling = call('GET', `/v1/jobs/${job.id}/result?waitMs=${LIMITS.resultWaitMaxMs}`);
      // Complete only once the request is waiting in the coordinator, so the answer is the wake-up, not a first read.
      await waitUntil(() => coordinator['waiters'].has(job.id), 'the long poll waits');
      rpc.calls.shift()!.release({ y: 42 });
      const answer = await polling;
      assert.equal(answer.status, 200);
      assert.equal(answer.body.id, job.id);
      assert.equal(answer.body.state, 'succeeded');
      assert.deepEqual(answer.body.result, { y: 42 });
    });

    it('answers with the job as it is when the wait runs out', async () => {
      const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'idle.q' } });
      const answer = await call('GET', `/v1/jobs/${job.id}/result?waitMs=30`);
      assert.equal(answer.status, 200);
      assert.equal(answer.body.state, 'queued');
      assert.equal(answer.body.result, null);
      const now = await call('GET', `/v1/jobs/${job.id}/result`);
      assert.equal(now.body.state, 'queued', 'no waitMs: answers at once');
    });

    it('cuts a long waitMs to the limit instead of refusing it, and refuses a negative or unknown one', async () => {
      const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'idle.q' } });
      await call('POST', `/v1/jobs/${job.id}/cancel`);
      const answer = await call('GET', `/v1/jobs/${job.id}/result?waitMs=999999999`);
      assert.equal(answer.status, 200);
      assert.equal(answer.body.state, 'cancelled');
      await expectError(await call('GET', `/v1/jobs/${job.id}/result?waitMs=-1`), 400, 'INVALID_INPUT');
      await expectError(await call('GET', `/v1/jobs/${job.id}/result?waitMs=soon`), 400, 'INVALID_INPUT');
      await expectError(await call('GET', `/v1/jobs/${job.id}/result?wait=5`), 400, 'UNKNOWN_FIELD');
      await expectError(await call('GET', '/v1/jobs/NO-SUCH-JOB/result?waitMs=10'), 404, 'JOB_NOT_FOUND');
    });
  });

  describe('workers and queues', () => {
    it('lists workers, gets one with its current attempts, and drains it with an admin token only', async () => {
      const gate = gatedHandler();
      const w = await worker('w-drain', { 'drain.q': { slots: 3, handler: gate.handler } });
      const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'drain.q' } });
      await waitUntil(() => gate.calls.length === 1, 'the worker runs the job');

      const list = await call('GET', '/v1/workers');
      assert.equal(list.status, 200);
      const listed = list.body.workers.find((x: { id: string }) => x.id === w.id);
      assert.equal(listed.name, 'w-drain');
      assert.equal(listed.state, 'busy');
      assert.deepEqual([listed.queues, listed.running], [{ 'drain.q': 3 }, { 'drain.q': 1 }]);
      assert.deepEqual([listed.cores, listed.memoryMb], [8, 8192]);

      const one = await call('GET', `/v1/workers/${w.id}`);
      assert.equal(one.status, 200);
      assert.deepEqual(one.body.attempts.map((a: { jobId: string }) => a.jobId), [job.id]);

      await expectError(await call('POST', `/v1/workers/${w.id}/drain`), 403, 'FORBIDDEN');
      assert.equal((await call('GET', `/v1/workers/${w.id}`)).body.state, 'busy', 'the refused drain changed nothing');
      const drained = await call('POST', `/v1/workers/${w.id}/drain`, { token: ADMIN });
      assert.equal(drained.status, 200);
      assert.equal(drained.body.state, 'draining');
      assert.equal(drained.body.draining, true);
      await expectError(await call('POST', '/v1/workers/nobody/drain', { token: ADMIN }), 404, 'WORKER_NOT_FOUND');
      await expectError(await call('GET', '/v1/workers/nobody'), 404, 'WORKER_NOT_FOUND');

      gate.calls.shift()!.release('done');
      assert.equal((await call('GET', `/v1/jobs/${job.id}/result?waitMs=10000`)).body.state, 'succeeded');
    });

    it('shows per queue the counts per state, worker slots, throughput and run times', async () => {
      for (let i = 0; i < 3; i++) {
        const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'echo', payload: i } });
        assert.equal((await call('GET', `/v1/jobs/${job.id}/result?waitMs=10000`)).body.state, 'succeeded');
      }
      const answer = await call('GET', '/v1/queues');
      assert.equal(answer.status, 200);
      assert.equal(answer.body.windowMs, 300_000);
      const echo = answer.body.queues.find((q: { queue: string }) => q.queue === 'echo');
      assert.ok(echo.counts.succeeded >= 3);
      assert.equal(echo.counts.running, 0);
      assert.deepEqual(echo.slots, { workers: 1, total: 4, used: 0 });
      assert.ok(echo.recent.completed >= 3);
      assert.equal(echo.recent.failed, 0);
      assert.ok(echo.recent.throughputPerMinute > 0);
      assert.equal(typeof echo.recent.runTimeMeanMs, 'number');
      assert.ok(echo.recent.runTimeP95Ms >= 0);
      const idle = answer.body.queues.find((q: { queue: string }) => q.queue === 'idle.q');
      assert.ok(idle.counts.queued >= 1);
      assert.deepEqual(idle.slots, { workers: 0, total: 0, used: 0 });
      assert.deepEqual([idle.recent.completed, idle.recent.runTimeMeanMs, idle.recent.runTimeP95Ms], [0, null, null]);
    });
  });

  describe('events', () => {
    it("delivers a job's state changes in order", async () => {
      const res = await fetch(`${base}/v1/events`, { headers: { authorization: `Bearer ${CLIENT}` } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      const sse = new SseReader(res);
      try {
        const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'echo', payload: 'sse' } });
        const states: string[] = [];
        let heartbeats = 0;
        while (states.at(-1) !== 'succeeded' || heartbeats === 0) {
          const frame = await sse.next();
          assert.ok(frame, 'the stream stays open');
          if (frame.comment === 'heartbeat') heartbeats++;
          if (frame.event === 'job' && frame.data.jobId === job.id) states.push(frame.data.state);
        }
        assert.deepEqual(states, ['queued', 'running', 'succeeded']);
      } finally {
        await sse.cancel();
      }
    });

    it('filters by job id and by type', async () => {
      const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'idle.q' } });
      const res = await fetch(`${base}/v1/events?jobId=${job.id}&type=job`, { headers: { authorization: `Bearer ${CLIENT}` } });
      const sse = new SseReader(res);
      try {
        await call('POST', '/v1/jobs', { body: { queue: 'echo', payload: 'noise' } });
        await call('POST', `/v1/jobs/${job.id}/cancel`);
        let frame = await sse.next();
        while (frame?.comment !== undefined) frame = await sse.next();
        assert.deepEqual([frame?.event, frame?.data.jobId, frame?.data.state], ['job', job.id, 'cancelled']);
      } finally {
        await sse.cancel();
      }
      await expectError(await call('GET', '/v1/events?type=jobs'), 400, 'INVALID_INPUT');
      await expectError(await call('GET', '/v1/events', { token: null }), 401, 'UNAUTHORIZED');
    });

    it('disconnects a client that reads too slowly instead of buffering without bound', async () => {
      const listeners = coordinator.events.listenerCount('job');
      const socket = connect((app.server.address() as AddressInfo).port, '127.0.0.1');
      const head = new Promise<string>((resolve) => socket.once('data', (d) => resolve(String(d))));
      socket.write(`GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CLIENT}\r\n\r\n`);
      assert.match(await head, /^HTTP\/1\.1 200/);
      socket.pause(); // never read again: the kernel buffers fill, then the server's queue
      const slow = (): boolean => logs.some((l) => l.msg.includes('reads too slowly'));
      const event = { jobId: 'x'.repeat(200), state: 'queued' as const, at: Date.now() };
      for (let batch = 0; batch < 2000 && !slow(); batch++) {
        for (let i = 0; i < 1000; i++) coordinator.events.emit('job', event);
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(slow(), 'the slow client was disconnected');
      await waitUntil(() => coordinator.events.listenerCount('job') === listeners, 'its subscription is gone');
      socket.destroy();
      assert.equal((await call('GET', '/healthz', { token: null })).status, 200);
    });
  });

  describe('documents and health', () => {
    it('serves an OpenAPI 3.1 document that lists every route, and responses that match its schemas', async () => {
      const answer = await call('GET', '/v1/openapi.json', { token: null });
      assert.equal(answer.status, 200);
      const doc = answer.body;
      assert.equal(doc.openapi, '3.1.0');
      const expected = [
        'GET /healthz', 'GET /readyz', 'GET /v1/openapi.json', 'POST /v1/jobs', 'POST /v1/jobs/batch', 'GET /v1/jobs',
        'GET /v1/jobs/{id}', 'GET /v1/jobs/{id}/result', 'POST /v1/jobs/{id}/cancel', 'POST /v1/jobs/{id}/retry',
        'GET /v1/workers', 'GET /v1/workers/{id}', 'POST /v1/workers/{id}/drain', 'POST /v1/workers/{id}/quarantine', 'POST /v1/workers/{id}/release',
        'POST /v1/workers/{id}/queues/{queue}/pause', 'POST /v1/workers/{id}/queues/{queue}/resume', 'GET /v1/queues', 'GET /v1/events',
        'GET /v1/advice', 'POST /v1/queues/{name}/pause', 'POST /v1/queues/{name}/resume', 'GET /v1/history',
        'GET /v1/history/trust', 'POST /v1/pipelines', 'GET /v1/pipelines', 'GET /v1/pipelines/{id}', 'GET /v1/pipeline-templates',
      ];
      const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
      );
      assert.deepEqual(documented.sort(), [...expected].sort());
      for (const r of ROUTES) assert.ok(app.hasRoute({ method: r.method, url: r.url }), `${r.method} ${r.url} is served`);
      assert.deepEqual(doc.components.securitySchemes.bearer, { ...doc.components.securitySchemes.bearer, type: 'http', scheme: 'bearer' });
      assert.deepEqual(doc.paths['/v1/workers/{id}/drain'].post.security, [{ bearer: ['admin'] }]);
      assert.deepEqual(doc.paths['/healthz'].get.security, []);
      assert.equal(doc.components.schemas.JobSpec.properties.queue.maxLength, LIMITS.queueNameMaxChars);

      // Every schema compiles, and real answers validate against the schemas the document names for them.
      const { conforms, has } = openApiChecker(doc);
      for (const name of Object.keys(doc.components.schemas)) assert.ok(has(name), name);
      const { body: job } = await call('POST', '/v1/jobs', { body: { queue: 'echo', payload: { a: [1] }, labels: { k: 'v' }, affinity: { key: 's', mode: 'prefer' } } });
      conforms('Job', job);
      await call('GET', `/v1/jobs/${job.id}/result?waitMs=10000`);
      conforms('JobDetail', (await call('GET', `/v1/jobs/${job.id}`)).body);
      conforms('JobPage', (await call('GET', '/v1/jobs?limit=5')).body);
      conforms('WorkerList', (await call('GET', '/v1/workers')).body);
      conforms('WorkerDetail', (await call('GET', `/v1/workers/${workers[0]!.id}`)).body);
      conforms('QueueList', (await call('GET', '/v1/queues')).body);
      conforms('History', (await call('GET', '/v1/history')).body);
      conforms('TrustHistory', (await call('GET', '/v1/history/trust?step=hour')).body);
      conforms('BatchResult', (await call('POST', '/v1/jobs/batch', { body: { jobs: [{ queue: 'idle.q' }] } })).body);
      conforms('Error', (await call('GET', '/v1/jobs/nope')).body);
      conforms('Ready', (await call('GET', '/readyz', { token: null })).body);
    });

    it('answers /healthz and /readyz without a token', async () => {
      const health = await call('GET', '/healthz', { token: null });
      assert.deepEqual([health.status, health.body], [200, { status: 'ok' }]);
      const ready = await call('GET', '/readyz', { token: null });
      assert.deepEqual([ready.status, ready.body], [200, { status: 'ready', store: 'sqlite' }]);
    });

    it('passes upgrade requests to the server\'s upgrade listener (the worker socket)', async () => {
      const seen: string[] = [];
      const onUpgrade = (req: { url?: string }, socket: { end: (s: string) => void }): void => {
        seen.push(req.url ?? '');
        socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      };
      app.server.on('upgrade', onUpgrade);
      try {
        const port = (app.server.address() as AddressInfo).port;
        const status = await new Promise<number>((resolve, reject) => {
          const req = httpRequest({ port, host: '127.0.0.1', path: '/v1/worker', headers: { connection: 'Upgrade', upgrade: 'websocket' } });
          req.on('upgrade', (res, socket) => {
            socket.destroy();
            resolve(res.statusCode ?? 0);
          });
          req.on('response', (res) => resolve(res.statusCode ?? 0));
          req.on('error', reject);
          req.end();
        });
        assert.equal(status, 101);
        assert.deepEqual(seen, ['/v1/worker']);
      } finally {
        app.server.off('upgrade', onUpgrade);
      }
    });
  });

  describe('bad input', () => {
    const submit = (raw: string, headers: Record<string, string> = {}, token: string | null = CLIENT) =>
      call('POST', '/v1/jobs', { raw, headers: { 'content-type': 'application/json', ...headers }, token });

    it('refuses each bad request with the right status and code, writes nothing, and stays up', async (t) => {
      const total = await totalJobs();
      const cases: [string, () => Promise<Answer>, number, string][] = [
        ['malformed JSON', () => submit('{"queue": "idle.q",'), 400, 'INVALID_INPUT'],
        ['an unknown field', () => submit(JSON.stringify({ queue: 'idle.q', colour: 'red' })), 400, 'UNKNOWN_FIELD'],
        ['an unknown nested field', () => submit(JSON.stringify({ queue: 'idle.q', requires: { cpus: 2 } })), 400, 'UNKNOWN_FIELD'],
        ['a wrong type', () => submit(JSON.stringify({ queue: 'idle.q', priority: 'high' })), 400, 'INVALID_INPUT'],
        ['a queue that is not a string', () => submit(JSON.stringify({ queue: 7 })), 400, 'INVALID_INPUT'],
        ['no queue', () => submit(JSON.stringify({ payload: 1 })), 400, 'INVALID_INPUT'],
        ['an array body', () => submit('[]'), 400, 'INVALID_INPUT'],
        ['a null body', () => submit('null'), 400, 'INVALID_INPUT'],
        ['no body', () => call('POST', '/v1/jobs'), 400, 'INVALID_INPUT'],
        ['a prototype-poisoning body', () => submit('{"queue":"idle.q","__proto__":{"admin":true}}'), 400, 'INVALID_INPUT'],
        ['a text body', () => submit('queue=idle.q', { 'content-type': 'text/plain' }), 400, 'INVALID_INPUT'],
        ['a form body', () => submit('queue=idle.q', { 'content-type': 'application/x-www-form-urlencoded' }), 400, 'INVALID_INPUT'],
        ['a body over the limit', () => submit(JSON.stringify({ queue: 'idle.q', payload: 'x'.repeat(LIMITS.httpBodyMaxBytes) })), 413, 'PAYLOAD_TOO_LARGE'],
        ['a payload over its limit', () => submit(JSON.stringify({ queue: 'idle.q', payload: 'x'.repeat(LIMITS.payloadMaxBytes) })), 413, 'PAYLOAD_TOO_LARGE'],
        ['a dependency that does not exist', () => submit(JSON.stringify({ queue: 'idle.q', dependsOn: ['NOPE'] })), 400, 'UNKNOWN_DEPENDENCY'],
        ['an unknown job id', () => call('GET', '/v1/jobs/01NOSUCHJOB'), 404, 'JOB_NOT_FOUND'],
        ['cancel of an unknown job', () => call('POST', '/v1/jobs/01NOSUCHJOB/cancel'), 404, 'JOB_NOT_FOUND'],
        ['retry of an unknown job', () => call('POST', '/v1/jobs/01NOSUCHJOB/retry'), 404, 'JOB_NOT_FOUND'],
        ['a very long job id', () => call('GET', `/v1/jobs/${'J'.repeat(LIMITS.keyMaxChars)}`), 404, 'JOB_NOT_FOUND'],
        ['an unknown route', () => call('GET', '/v1/nothing-here'), 404, 'ROUTE_NOT_FOUND'],
        ['a wrong method', () => call('DELETE', '/v1/jobs'), 404, 'ROUTE_NOT_FOUND'],
        ['a missing token', () => submit(JSON.stringify({ queue: 'idle.q' }), {}, null), 401, 'UNAUTHORIZED'],
        ['a wrong token', () => submit(JSON.stringify({ queue: 'idle.q' }), {}, 'not-a-token'), 401, 'UNAUTHORIZED'],
        ['a malformed authorization header', () => submit(JSON.stringify({ queue: 'idle.q' }), { authorization: 'Basic abc' }, null), 401, 'UNAUTHORIZED'],
        ['a token without the scope', () => submit(JSON.stringify({ queue: 'idle.q' }), {}, WORKER), 403, 'FORBIDDEN'],
        ['a token without the scope, on a read', () => call('GET', '/v1/jobs', { token: WORKER }), 403, 'FORBIDDEN'],
        ['a missing token with a body over the limit', () => submit('x'.repeat(LIMITS.httpBodyMaxBytes + 1), {}, null), 401, 'UNAUTHORIZED'],
      ];
      for (const [what, send, status, code] of cases) {
        await t.test(what, async () => {
          await expectError(await send(), status, code);
          assert.equal(await totalJobs(), total, `${what}: nothing written`);
        });
      }
      assert.equal(Object.getPrototypeOf({}).admin, undefined, 'no prototype was polluted');
    });

    it('answers an unexpected failure with 500 INTERNAL, logs it, and leaks nothing', async () => {
      const original = store.listWorkers;
      store.listWorkers = async () => {
        throw new Error('secret detail: /var/lib/gaffer/db password=hunter2');
      };
      try {
        const answer = await call('GET', '/v1/workers');
        await expectError(answer, 500, 'INTERNAL');
        assert.doesNotMatch(answer.text, /secret|hunter2/);
        assert.ok(logs.some((l) => l.msg === 'unexpected error' && JSON.stringify(l).includes('hunter2')), 'the cause is logged');
      } finally {
        store.listWorkers = original;
      }
      assert.equal((await call('GET', '/v1/workers')).status, 200);
    });
  });
});

describe('http api: readiness and shutdown', () => {
  it('answers /readyz with 503 NOT_READY when the store does not answer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gaffer-http-ready-'));
    const store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    const coordinator = new Coordinator({ store, clock: systemClock });
    const app = await buildHttpApp({ coordinator, auth: Auth.single('t'), logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      await store.close();
      const res = await fetch(`${base}/readyz`);
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'NOT_READY');
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 200, 'the process is still up');
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('allows every request when no token is configured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gaffer-http-open-'));
    const store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    const coordinator = new Coordinator({ store, clock: systemClock });
    const app = await buildHttpApp({ coordinator, auth: new Auth([]), logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"queue":"q"}' });
      assert.equal(res.status, 201);
      assert.equal((await fetch(`${base}/v1/workers/none/drain`, { method: 'POST' })).status, 404);
    } finally {
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on close, answers waiting long polls with the job as it is and ends event streams', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gaffer-http-close-'));
    const store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom() });
    const coordinator = new Coordinator({ store, clock: systemClock });
    coordinator.start();
    const app = await buildHttpApp({ coordinator, auth: Auth.single('t'), logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const headers = { authorization: 'Bearer t', 'content-type': 'application/json' };
      const job = (await (await fetch(`${base}/v1/jobs`, { method: 'POST', headers, body: '{"queue":"nobody.serves.this"}' })).json()) as Job;
      const stream = await fetch(`${base}/v1/events`, { headers });
      const sse = new SseReader(stream);
      assert.deepEqual(await sse.next(), { comment: 'connected' });
      const polling = fetch(`${base}/v1/jobs/${job.id}/result?waitMs=${LIMITS.resultWaitMaxMs}`, { headers });
      await waitUntil(() => coordinator['waiters'].has(job.id), 'the long poll waits');
      await app.close();
      const answer = await polling;
      assert.equal(answer.status, 200);
      assert.equal(((await answer.json()) as Job).state, 'queued');
      let frame = await sse.next();
      while (frame !== null) frame = await sse.next();
    } finally {
      await app.close();
      await coordinator.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
