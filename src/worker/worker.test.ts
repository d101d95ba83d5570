// The SDK worker against a real coordinator over real sockets on 127.0.0.1.
// Every step waits for an event or a frame, never for a timer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startTestCoordinator, TEST_TOKEN, type TestCoordinator } from '../server/testing.ts';
import { GafferError } from '../types/errors.ts';
import { WORKER_DEFAULTS } from '../types/limits.ts';
import type { Json, Trace } from '../types/model.ts';
import type { HandlerContext } from './handler.ts';
import { Worker, type WorkerEvents, type WorkerOptions } from './worker.ts';

const T = { timeout: 30_000 };
const THREAD_HANDLER = new URL('./fixtures/thread-handler.ts', import.meta.url);

/** A handler whose calls wait until the test settles them. */
function gate(): { handler: (p: Json, ctx: HandlerContext) => Promise<Json>; calls: { payload: Json; ctx: HandlerContext; resolve: (v: Json) => void }[]; called: Promise<void> } {
  const calls: { payload: Json; ctx: HandlerContext; resolve: (v: Json) => void }[] = [];
  let first!: () => void;
  const called = new Promise<void>((r) => (first = r));
  return {
    calls,
    called,
    handler: (payload, ctx) =>
      new Promise<Json>((resolve) => {
        calls.push({ payload, ctx, resolve });
        first();
      }),
  };
}

/** The next event of a kind that matches. */
function next<K extends keyof WorkerEvents>(w: Worker, event: K, match: (...args: WorkerEvents[K]) => boolean = () => true): Promise<WorkerEvents[K]> {
  return new Promise((resolve) => {
    const on = (...args: WorkerEvents[K]): void => {
      if (!match(...args)) return;
      w.off(event, on as never);
      resolve(args);
    };
    w.on(event, on as never);
  });
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('sdk worker', () => {
  let tc: TestCoordinator;
  const workers: Worker[] = [];
  const worker = (o: Partial<WorkerOptions> & Pick<WorkerOptions, 'queues'>): Worker => {
    const w = new Worker({
      urls: [tc.url],
      token: TEST_TOKEN,
      name: 'w',
      handleSignals: false,
      reconnectBaseDelayMs: 10,
      reconnectMaxDelayMs: 100,
      ...o,
    });
    workers.push(w);
    return w;
  };

  beforeEach(async () => {
    tc = await startTestCoordinator();
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await tc.close();
  });

  it('stops, instead of fighting for the connection, when another process takes over its worker id', T, async () => {
    const first = worker({ queues: { work: { slots: 1, handler: () => null } } });
    await first.start();
    const stopped = once(first, 'stopped');
    const closed = next(first, 'disconnected');
    const second = worker({ id: first.id!, queues: { work: { slots: 1, handler: () => null } } });
    await second.start();
    const [{ code }] = await closed;
    assert.equal(code, 4409);
    await stopped;
    assert.equal(second.connected, true, 'the newer connection keeps the worker id');
  });

  it('runs a job with an in-process handler and reports the result', T, async () => {
    const seen: string[] = [];
    const w = worker({
      queues: {
        work: {
          slots: 2,
          handler: (payload, ctx) => {
            seen.push(`${ctx.assignment.queue}:${ctx.assignment.attempt}`);
            ctx.progress({ half: true });
            return { doubled: (payload as number) * 2 };
          },
        },
      },
    });
    await w.start();
    assert.ok(w.id);
    const acked = next(w, 'ack');
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 21 });
    const [ack] = await acked;
    assert.equal(ack.ok, true);
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result, done.attempts], ['succeeded', { doubled: 42 }, 1]);
    assert.deepEqual(seen, ['work:1']);
    assert.deepEqual(w.stats, { completed: 1, failed: 0, stale: 0, revoked: 0 });
    assert.equal(w.activeAttempts, 0);
  });

  it('keeps its attempt across a dropped socket, and nothing runs twice', T, async () => {
    const g = gate();
    const w = worker({ queues: { work: { slots: 1, handler: g.handler } } });
    await w.start();
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 'x', heartbeatTimeoutMs: 10_000 });
    await g.called;
    const reconnected = next(w, 'connected');
    tc.dropConnections();
    const [info] = await reconnected;
    assert.deepEqual(info.resumed, [g.calls[0]!.ctx.assignment.attemptId]);
    assert.deepEqual(info.revoked, []);
    g.calls[0]!.resolve('once');
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result, done.attempts], ['succeeded', 'once', 1]);
    assert.equal(g.calls.length, 1, 'the handler ran once');
    assert.equal(g.calls[0]!.ctx.signal.aborted, false);
  });

  it('finishes while the coordinator is unreachable and reports after reconnecting', T, async () => {
    const g = gate();
    const w = worker({ queues: { work: { slots: 1, handler: g.handler } } });
    await w.start();
    const { job } = await tc.coordinator.submit({ queue: 'work', heartbeatTimeoutMs: 10_000 });
    await g.called;
    await tc.pause();
    const finished = next(w, 'finished');
    g.calls[0]!.resolve('late but mine');
    await finished;
    const acked = next(w, 'ack');
    await tc.resume();
    const [ack] = await acked;
    assert.equal(ack.ok, true);
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result, done.attempts], ['succeeded', 'late but mine', 1]);
  });

  const TRACE: Trace = { intervalMs: 100, samples: [{ tMs: 0, cpuMs: 0, rssKb: 1024 }, { tMs: 100, cpuMs: 90, rssKb: 8192 }] };
  const attemptOf = async (jobId: string) => (await tc.store.listAttempts({ jobId }))[0]!;

  it('sends the trace a handler sets (ctx.setTrace) with its result, also when the result goes again after a reconnect', T, async () => {
    const g = gate();
    const w = worker({ queues: { work: { slots: 1, handler: g.handler } } });
    await w.start();
    const { job } = await tc.coordinator.submit({ queue: 'work', heartbeatTimeoutMs: 10_000 });
    await g.called;
    const ctx = g.calls[0]!.ctx;
    assert.throws(() => ctx.setTrace({ intervalMs: 1, samples: [{ tMs: 1, cpuMs: -1, rssKb: 0 }] }), TypeError, 'a trace the coordinator would refuse throws at once');
    ctx.setTrace({ intervalMs: 50, samples: [] });
    ctx.setTrace(TRACE); // the last one wins
    await tc.pause();
    const finished = next(w, 'finished');
    g.calls[0]!.resolve('measured');
    await finished;
    const acked = next(w, 'ack');
    await tc.resume();
    assert.equal((await acked)[0].ok, true);
    assert.equal((await tc.waitForJob(job.id)).state, 'succeeded');
    assert.deepEqual((await attemptOf(job.id)).trace, TRACE, 'the report kept while away carried the trace');
  });

  it('sends the trace a thread handler sets, and none when a handler sets none', T, async () => {
    const w = worker({ queues: { cpu: { slots: 1, module: THREAD_HANDLER }, work: { slots: 1, handler: () => 'plain' } } });
    await w.start();
    const { job: traced } = await tc.coordinator.submit({ queue: 'cpu', payload: { mode: 'trace', trace: TRACE } as unknown as Json });
    const { job: plain } = await tc.coordinator.submit({ queue: 'work' });
    assert.deepEqual((await tc.waitForJob(traced.id)).result, 'traced');
    assert.equal((await tc.waitForJob(plain.id)).state, 'succeeded');
    assert.deepEqual((await attemptOf(traced.id)).trace, TRACE);
    assert.equal((await attemptOf(plain.id)).trace, null);
  });

  it('sends a report again after an INTERNAL ack, with a backoff, and gives the attempt up after reportInternalResendsMax', T, async () => {
    const complete = tc.store.complete.bind(tc.store);
    let refusals = 2;
    tc.store.complete = (p) => (p.result === 'cursed' || refusals-- > 0 ? Promise.reject(new Error('made-up bug')) : complete(p));
    const w = worker({ heartbeatIntervalMs: 20, reportResendBaseDelayMs: 5, queues: { work: { slots: 1, handler: (p) => p } } });
    await w.start();
    const acks: string[] = [];
    w.on('ack', (a) => acks.push(a.ok ? 'ok' : (a.error?.code ?? '?')));
    const accepted = next(w, 'ack', (a) => a.ok);
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 'fine' });
    await accepted;
    assert.deepEqual(acks, ['INTERNAL', 'INTERNAL', 'ok']);
    assert.equal((await tc.waitForJob(job.id)).result, 'fine');
    // A report the coordinator can never apply is not sent for ever.
    acks.length = 0;
    const bound = WORKER_DEFAULTS.reportInternalResendsMax + 1;
    const last = next(w, 'ack', () => acks.length === bound);
    await tc.coordinator.submit({ queue: 'work', payload: 'cursed' });
    await last;
    assert.deepEqual(acks, Array.from({ length: bound }, () => 'INTERNAL'));
    assert.equal(w.activeAttempts, 0, 'the attempt was given up');
    assert.equal(w.stats.stale, 1);
  });

  it('sends the result again without its trace when the coordinator refuses the trace', T, async () => {
    const complete = tc.store.complete.bind(tc.store);
    tc.store.complete = (p) => (p.trace ? Promise.reject(new GafferError('INVALID_INPUT', 'trace: not today')) : complete(p));
    const w = worker({ queues: { work: { slots: 1, handler: (_p, ctx) => (ctx.setTrace(TRACE), 'kept') } } });
    await w.start();
    const refused = next(w, 'ack', (a) => !a.ok);
    const accepted = next(w, 'ack', (a) => a.ok);
    const { job } = await tc.coordinator.submit({ queue: 'work' });
    assert.equal((await refused)[0].error?.code, 'INVALID_INPUT');
    await accepted;
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result], ['succeeded', 'kept']);
    assert.equal((await attemptOf(job.id)).trace, null);
    assert.deepEqual(w.stats, { completed: 1, failed: 0, stale: 0, revoked: 0 });
  });

  it('aborts an attempt whose lease ran out while it was away, when welcome says it is revoked', T, async () => {
    const g = gate();
    const w = worker({ queues: { work: { slots: 1, handler: g.handler } } });
    await w.start();
    const { job } = await tc.coordinator.submit({ queue: 'work', heartbeatTimeoutMs: 200, backoff: { baseMs: 0, maxMs: 0 } });
    await g.called;
    const first = g.calls[0]!;
    const lost = new Promise<void>((resolve) =>
      tc.coordinator.events.on('job', (e) => e.jobId === job.id && e.state === 'queued' && resolve()),
    );
    await tc.pause();
    await lost; // the sweeper took the job back while the worker could not reach the coordinator
    const reconnected = next(w, 'connected');
    await tc.resume();
    const [info] = await reconnected;
    assert.deepEqual(info.revoked, [first.ctx.assignment.attemptId]);
    assert.equal(first.ctx.signal.aborted, true);
    // The job runs again (here, on the same worker) and its result is the one accepted.
    while (g.calls.length < 2) await next(w, 'assigned');
    first.resolve('stale');
    g.calls[1]!.resolve('fresh');
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result, done.attempts], ['succeeded', 'fresh', 2]);
  });

  it('keeps the lease of a CPU-bound handler module on a worker thread', T, async () => {
    const w = worker({ queues: { cpu: { slots: 1, module: THREAD_HANDLER } } });
    await w.start();
    // Busy for four heartbeat timeouts without yielding: only heartbeats from the main thread save the lease.
    const { job } = await tc.coordinator.submit({ queue: 'cpu', payload: { mode: 'busy', ms: 2000 }, heartbeatTimeoutMs: 500 });
    const done = await tc.waitForJob(job.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.attempts, 1);
    assert.deepEqual((done.result as { spins: boolean; attempt: number }).spins, true);
    assert.notEqual((done.result as { threadId: number }).threadId, 0, 'ran off the main thread');
  });

  it('fails a job at once when a thread handler throws a PermanentError, and retries other errors', T, async () => {
    const w = worker({ queues: { cpu: { slots: 2, module: THREAD_HANDLER } } });
    await w.start();
    const { job: p } = await tc.coordinator.submit({ queue: 'cpu', payload: { mode: 'permanent' }, maxAttempts: 5 });
    const { job: r } = await tc.coordinator.submit({ queue: 'cpu', payload: { mode: 'throw' }, maxAttempts: 2, backoff: { baseMs: 0, maxMs: 0 } });
    const permanent = await tc.waitForJob(p.id);
    assert.deepEqual([permanent.state, permanent.attempts, permanent.error?.code, permanent.error?.message], ['failed', 1, 'HANDLER_ERROR', 'the input can never work']);
    const retried = await tc.waitForJob(r.id);
    assert.deepEqual([retried.state, retried.attempts, retried.error?.message], ['failed', 2, 'a retryable failure']);
  });

  it('aborts the handler\'s signal when the job is cancelled', T, async () => {
    const g = gate();
    const w = worker({ queues: { work: { slots: 1, handler: g.handler } } });
    await w.start();
    const { job } = await tc.coordinator.submit({ queue: 'work' });
    await g.called;
    const signal = g.calls[0]!.ctx.signal;
    const aborted = once(signal, 'abort');
    await tc.coordinator.cancel(job.id, 'no longer needed');
    await aborted;
    assert.equal(signal.aborted, true);
    assert.equal(w.stats.revoked, 1);
    g.calls[0]!.resolve('too late');
    assert.equal((await tc.coordinator.getJob(job.id)).state, 'cancelled');
  });

  it('terminates a thread whose handler ignores the abort, after abortGraceMs', T, async () => {
    const w = worker({ abortGraceMs: 100, queues: { cpu: { slots: 1, module: THREAD_HANDLER } } });
    await w.start();
    const { job } = await tc.coordinator.submit({ queue: 'cpu', payload: { mode: 'spin-forever' } });
    await next(w, 'progress');
    const ended = next(w, 'ended');
    await tc.coordinator.cancel(job.id);
    const [e] = await ended;
    assert.equal(e.aborted, true);
    // The slot works again: the next job runs on a fresh thread.
    const { job: after } = await tc.coordinator.submit({ queue: 'cpu', payload: 'again' });
    assert.equal((await tc.waitForJob(after.id)).state, 'succeeded');
  });

  it('connects to the second URL when the first coordinator is down', T, async () => {
    const dead = `ws://127.0.0.1:${await deadPort()}`;
    const w = worker({ urls: [dead, tc.url], queues: { work: { slots: 1, handler: () => 'ok' } } });
    const failed = next(w, 'disconnected');
    const connected = next(w, 'connected');
    const started = w.start();
    const [d] = await failed;
    assert.equal(d.url, `${dead}/v1/worker`);
    const [c] = await connected;
    assert.equal(c.url, tc.url);
    await started;
    const { job } = await tc.coordinator.submit({ queue: 'work' });
    assert.equal((await tc.waitForJob(job.id)).result, 'ok');
  });

  it('reports a refused token and never connects with it', T, async () => {
    const w = worker({ token: 'wrong', queues: { work: { slots: 1, handler: () => 'ok' } } });
    const refused = next(w, 'refused');
    const started = w.start();
    started.catch(() => undefined);
    const [r] = await refused;
    assert.equal(r.status, 401);
    await w.stop();
    await assert.rejects(started, /stopped before it connected/);
  });

  it('drains: takes nothing new, lets the running attempt finish, then stops', T, async () => {
    const g = gate();
    const w = worker({ queues: { work: { slots: 1, handler: g.handler } } });
    const assigned: string[] = [];
    w.on('assigned', (a) => assigned.push(a.jobId));
    const [a, b] = await tc.coordinator.submitMany([{ queue: 'work', payload: 'a' }, { queue: 'work', payload: 'b' }]);
    await w.start();
    await g.called;
    const drained = w.drain();
    g.calls[0]!.resolve('done');
    await drained;
    const jobA = await tc.coordinator.getJob(g.calls[0]!.ctx.assignment.jobId);
    assert.equal(jobA.state, 'succeeded');
    const other = [a!.job.id, b!.job.id].find((id) => id !== jobA.id)!;
    assert.equal((await tc.coordinator.getJob(other)).state, 'queued', 'the other job was never handed to the draining worker');
    assert.equal(assigned.length, 1);
    assert.equal(w.connected, false);
  });

  it('gives up what is still running when the drain bound passes, so the job can run elsewhere', T, async () => {
    const g = gate();
    const w = worker({ drainTimeoutMs: 100, queues: { work: { slots: 1, handler: g.handler } } });
    await w.start();
    const { job } = await tc.coordinator.submit({ queue: 'work', backoff: { baseMs: 0, maxMs: 0 } });
    await g.called;
    const requeued = new Promise<void>((resolve) =>
      tc.coordinator.events.on('job', (e) => e.jobId === job.id && e.state === 'queued' && resolve()),
    );
    await w.drain();
    assert.equal(g.calls[0]!.ctx.signal.aborted, true);
    // The fail frame went out before the socket closed: the job is back in the queue at once, not after a lease timeout.
    await requeued;
    const [attempt] = await tc.store.listAttempts({ jobId: job.id });
    assert.deepEqual([attempt?.state, attempt?.error?.code], ['failed', 'WORKER_STOPPED']);
  });

  it('drains on SIGTERM, finishes the running attempt, and exits 0', T, async () => {
    const child = spawn(process.execPath, [new URL('./fixtures/sigterm-worker.ts', import.meta.url).pathname, tc.url, TEST_TOKEN], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout });
    const seen: string[] = [];
    const waitLine = (want: string): Promise<void> =>
      new Promise((resolve) => {
        if (seen.includes(want)) return resolve();
        const on = (line: string): void => {
          if (line !== want) return;
          lines.off('line', on);
          resolve();
        };
        lines.on('line', on);
      });
    lines.on('line', (l) => seen.push(l));
    const exited = once(child, 'exit');
    await waitLine('connected');
    const { job } = await tc.coordinator.submit({ queue: 'work' });
    await waitLine('started');
    child.kill('SIGTERM');
    await waitLine('draining');
    child.stdin.write('go\n');
    const [code] = await exited;
    assert.equal(code, 0);
    assert.ok(seen.includes('ack true'), seen.join('|'));
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result, done.attempts], ['succeeded', 'finished after SIGTERM', 1]);
  });
});
